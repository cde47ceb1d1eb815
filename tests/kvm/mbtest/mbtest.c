/* SPDX-License-Identifier: MIT */
/*
 * The Multiboot test kernel: what a QEMU-style test kernel does with
 * hvkit's QEMU-compatible test devices. Entered from entry.S in long mode
 * with the Multiboot magic and information, it
 *
 *   1. checks the loader's magic and information (flags, command line);
 *   2. checks the one module against the command line's "mod=SIZE": SIZE
 *      bytes, byte i = (i * 7 + 3) & 0xff;
 *   3. with "hyperv" on the command line, drives QEMU's Hyper-V test device
 *      (include/hvkit/proto/hv_testdev.h) as kvm-unit-tests'
 *      hyperv_synic/hyperv_connections do: a SINT route and SET_SINT, a
 *      message connection that echoes HvPostMessage into the SIMP slot, an
 *      event connection that sets its flag in the SIEFP;
 *   4. with "echo", reads a line from COM1 and prints it back (console
 *      input: hvkit run --serial unix:PATH);
 *   5. with "fwcfg=CPUS,MIB", reads QEMU's fw_cfg as kvm-unit-tests do
 *      (selector 0x510, data 0x511): the "QEMU" signature, the CPU count
 *      and the RAM size must be what the command line says;
 *
 * prints each step to COM1 and ends through isa-debug-exit at 0xf4 with
 * MBTEST_PASS, or with the number of the first failed check (the host sees
 * (V << 1) | 1). Everything runs at CPL0, which PVM emulates ~1000x slower
 * than native: no loops beyond what a check needs.
 */
#include <stddef.h>
#include <stdint.h>

#include "hvkit/boot.h"
#include "hvkit/proto/hv_testdev.h"
#include "guest_x86.h"
#include "hvkit/tlfs.h"
#include "mbtest.h"

#define PAGE __attribute__((aligned(4096)))
#define COM1 0x3f8
#define DEBUG_EXIT 0xf4
#define LAPIC_SVR 0xFEE000F0ul
#define LAPIC_LVT_TIMER 0xFEE00320ul
#define LAPIC_TIMER_INITIAL 0xFEE00380ul
#define LAPIC_TIMER_DIVIDE 0xFEE003E0ul
#define SINT 2
#define VECTOR 0x50
#define TIMER_VECTOR 0x51
/* The one-shot wake-up while waiting for a SINT: 10 ms at KVM's 1 GHz APIC
 * bus, divide by 1; interrupted() gives up after WAIT_WAKEUPS of them. */
#define WAKE_TICKS 10000000u
#define WAIT_WAKEUPS 1000u

static uint8_t hypercall_page[4096] PAGE;
static struct hv_input_post_message post_input PAGE;
static struct hv_message_page simp PAGE;
static struct hv_event_flags_page siefp PAGE;
static uint64_t idt[256 * 2] PAGE;

volatile uint64_t mbtest_interrupts; /* isr_sint */

void mbtest_main(uint32_t magic, uint32_t info);
void isr_sint(void);
void isr_timer(void);

/* The SINT's handler: count, EOI (the register lies above 2 GiB, so
 * through RAX), return. */
__asm__(".text\n"
	"isr_sint:\n"
	"	lock incq mbtest_interrupts(%rip)\n"
	"	pushq %rax\n"
	"	movl $0xFEE000B0, %eax\n"
	"	movl $0, (%rax)\n"
	"	popq %rax\n"
	"	iretq\n"
	/* The wake-up timer's: EOI only, it counts nothing. */
	"isr_timer:\n"
	"	pushq %rax\n"
	"	movl $0xFEE000B0, %eax\n"
	"	movl $0, (%rax)\n"
	"	popq %rax\n"
	"	iretq\n");

static void puts_com1(const char *s)
{
	while (*s)
		outb(COM1, (uint8_t)*s++);
}

static void put_dec(uint64_t v)
{
	char buf[24];
	int i = sizeof(buf) - 1;
	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_com1(&buf[i]);
}

/* One line from COM1 (polling LSR.DR: no interrupts needed), echoed. */
static void echo_line(void)
{
	char line[64];
	size_t n = 0;
	puts_com1("mbtest: type a line\n");
	for (;;) {
		while (!(inb(COM1 + 5) & 1))
			__asm__ volatile("pause");
		char c = (char)inb(COM1);
		if (c == '\n' || c == '\r')
			break;
		if (n < sizeof(line) - 1)
			line[n++] = c;
	}
	line[n] = 0;
	puts_com1("mbtest: got \"");
	puts_com1(line);
	puts_com1("\"\n");
}

static __attribute__((noreturn)) void finish(uint32_t verdict)
{
	if (verdict == MBTEST_PASS) {
		puts_com1("mbtest: PASS\n");
	} else {
		puts_com1("mbtest: FAIL at check ");
		put_dec(verdict);
		puts_com1("\n");
	}
	outl(DEBUG_EXIT, verdict);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static void check(int ok, uint32_t which, const char *what)
{
	puts_com1(ok ? "mbtest: ok   " : "mbtest: FAIL ");
	puts_com1(what);
	puts_com1("\n");
	if (!ok)
		finish(which);
}

/* "word" as a whole word of the command line; its "=value" or "". */
static const char *option(const char *cmdline, const char *word)
{
	for (const char *p = cmdline; *p;) {
		const char *w = word;
		while (*w && *p == *w) {
			p++;
			w++;
		}
		if (!*w && (*p == 0 || *p == ' ' || *p == '='))
			return *p == '=' ? p + 1 : p;
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
	return NULL;
}

static uint64_t parse_dec(const char *s)
{
	uint64_t v = 0;
	while (s && *s >= '0' && *s <= '9')
		v = v * 10 + (uint64_t)(*s++ - '0');
	return v;
}

static void check_module(const struct multiboot_info *mi, const char *cmdline)
{
	uint64_t want = parse_dec(option(cmdline, "mod"));
	check((mi->flags & MULTIBOOT_INFO_MODS) && mi->mods_count == 1, MBTEST_MODULE_COUNT,
	      "one module");
	const struct multiboot_module *mod =
		(const struct multiboot_module *)(uintptr_t)mi->mods_addr;
	check(mod->mod_end >= mod->mod_start && mod->mod_end - mod->mod_start == want &&
		      !(mod->mod_start & 4095),
	      MBTEST_MODULE_SIZE, "module size and page alignment");
	const volatile uint8_t *b = (const volatile uint8_t *)(uintptr_t)mod->mod_start;
	uint32_t bad = 0;
	for (uint64_t i = 0; i < want; i++)
		bad |= b[i] ^ (uint8_t)(i * 7 + 3);
	check(!bad, MBTEST_MODULE_BYTES, "module bytes");
}

/* ---- fw_cfg (QEMU docs/specs/fw_cfg.rst) ---- */

/* The first `bytes` of item `key`, little-endian. */
static uint64_t fw_cfg_read(uint16_t key, unsigned bytes)
{
	uint64_t v = 0;
	outw(0x510, key);
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)inb(0x511) << (8 * i);
	return v;
}

static void check_fw_cfg(const char *spec)
{
	uint64_t cpus = parse_dec(spec), mib = 0;
	while (*spec && *spec != ',')
		spec++;
	if (*spec == ',')
		mib = parse_dec(spec + 1);
	check(fw_cfg_read(0x0000, 4) == 0x554d4551, MBTEST_FW_CFG_SIGNATURE,
	      "fw_cfg: signature QEMU");
	check(fw_cfg_read(0x0005, 2) == cpus, MBTEST_FW_CFG_CPUS, "fw_cfg: CPU count");
	check(fw_cfg_read(0x0003, 8) == mib << 20, MBTEST_FW_CFG_RAM, "fw_cfg: RAM size");
}

/* ---- Hyper-V ---- */

static uint64_t hypercall(uint64_t control, uint64_t input, uint64_t output)
{
	return hv_page_call(hypercall_page, control, input, output);
}

static void lapic_write(uintptr_t reg, uint32_t value)
{
	*(volatile uint32_t *)reg = value;
}

/* Sleeps until an interrupt moves the count from `seen` (sti's shadow
 * closes the check/hlt race). A one-shot LAPIC timer wakes each hlt, so a
 * SINT that never comes fails its own check instead of hanging the run. */
static int interrupted(uint64_t seen)
{
	int got = 0;
	for (uint32_t wakeups = 0; wakeups < WAIT_WAKEUPS && !got; wakeups++) {
		__asm__ volatile("cli");
		got = mbtest_interrupts != seen;
		if (!got) {
			lapic_write(LAPIC_TIMER_INITIAL, WAKE_TICKS);
			__asm__ volatile("sti; hlt" ::: "memory");
		}
		__asm__ volatile("sti");
	}
	lapic_write(LAPIC_TIMER_INITIAL, 0); /* disarmed */
	return got || mbtest_interrupts != seen;
}

static void set_gate(uint8_t vector, void (*isr)(void))
{
	uint64_t a = (uint64_t)(uintptr_t)isr;
	/* Present, DPL 0, 64-bit interrupt gate, code selector 0x08. */
	idt[vector * 2] = (a & 0xFFFF) | 0x08ull << 16 | 0x8Eull << 40 | ((a >> 16) & 0xFFFF) << 48;
	idt[vector * 2 + 1] = a >> 32;
}

static void testdev(uint8_t op, uint8_t conn)
{
	outl(HV_TESTDEV_PORT, hv_testdev_word(op, 0, SINT, conn));
}

static void setup_synic(void)
{
	set_gate(VECTOR, isr_sint);
	set_gate(TIMER_VECTOR, isr_timer);
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
	__asm__ volatile("lidt %0" : : "m"(idtr));
	lapic_write(LAPIC_SVR, 0x1FF); /* enabled, spurious vector 0xff */
	lapic_write(LAPIC_TIMER_DIVIDE, 0xB); /* divide by 1 */
	lapic_write(LAPIC_LVT_TIMER, TIMER_VECTOR); /* one-shot, unmasked */

	wrmsr(HV_MSR_GUEST_OS_ID, 0x8100000000000000ull); /* open source, no vendor */
	wrmsr(HV_MSR_HYPERCALL, (uint64_t)(uintptr_t)hypercall_page | HV_HYPERCALL_MSR_ENABLE);
	wrmsr(HV_MSR_SIMP, (uint64_t)(uintptr_t)&simp | HV_MSR_PAGE_ENABLE);
	wrmsr(HV_MSR_SIEFP, (uint64_t)(uintptr_t)&siefp | HV_MSR_PAGE_ENABLE);
	wrmsr(HV_MSR_SINT(SINT), VECTOR);
	wrmsr(HV_MSR_SCONTROL, HV_SCONTROL_ENABLE);
	check(rdmsr(HV_MSR_SINT(SINT)) == VECTOR && (rdmsr(HV_MSR_HYPERCALL) & 1), MBTEST_SYNIC,
	      "SynIC and hypercall page enabled");
	__asm__ volatile("sti");
}

static void check_set_sint(void)
{
	uint64_t seen = mbtest_interrupts;
	testdev(HV_TESTDEV_SINT_ROUTE_CREATE, 0);
	testdev(HV_TESTDEV_SINT_ROUTE_SET_SINT, 0);
	check(interrupted(seen), MBTEST_SET_SINT, "SINT route: SET_SINT interrupts");
	testdev(HV_TESTDEV_SINT_ROUTE_DESTROY, 0);
}

static void check_message_echo(void)
{
	static const char hello[] = "hello, testdev";
	volatile struct hv_message *m = &simp.sint_message[SINT];
	testdev(HV_TESTDEV_MSG_CONN_CREATE, MBTEST_MSG_CONN);
	post_input.connection_id = MBTEST_MSG_CONN;
	post_input.message_type = MBTEST_MSG_TYPE;
	post_input.payload_size = sizeof(hello);
	for (size_t i = 0; i < sizeof(hello); i++)
		post_input.payload[i] = (uint8_t)hello[i];
	uint64_t seen = mbtest_interrupts;
	uint64_t status = hypercall(HVCALL_POST_MESSAGE, (uint64_t)(uintptr_t)&post_input, 0);
	check((status & 0xffff) == HV_STATUS_SUCCESS, MBTEST_POST, "HvPostMessage accepted");
	check(interrupted(seen), MBTEST_ECHO, "message connection: echo interrupts");
	uint32_t bad = m->header.message_type != MBTEST_MSG_TYPE ||
		       m->header.payload_size != sizeof(hello);
	for (size_t i = 0; i < sizeof(hello); i++)
		bad |= m->payload[i] != (uint8_t)hello[i];
	check(!bad, MBTEST_ECHO_BYTES, "message connection: type and payload echoed");
	/* The slot is full: the next echo waits in the host's queue, and
	 * while it does the connection takes no other (QEMU's staged
	 * message), the guest is told to retry. */
	status = hypercall(HVCALL_POST_MESSAGE, (uint64_t)(uintptr_t)&post_input, 0);
	uint64_t busy = hypercall(HVCALL_POST_MESSAGE, (uint64_t)(uintptr_t)&post_input, 0);
	check((status & 0xffff) == HV_STATUS_SUCCESS &&
		      (busy & 0xffff) == HV_STATUS_INSUFFICIENT_BUFFERS,
	      MBTEST_ECHO_BUSY, "message connection: one echo in flight");
	/* Free the slot; EOM lets the queued echo follow, then free it too. */
	seen = mbtest_interrupts;
	m->header.message_type = HVMSG_NONE;
	wrmsr(HV_MSR_EOM, 0);
	check(interrupted(seen) && m->header.message_type == MBTEST_MSG_TYPE, MBTEST_ECHO_BUSY,
	      "message connection: the queued echo follows the EOM");
	m->header.message_type = HVMSG_NONE;
	wrmsr(HV_MSR_EOM, 0);
	testdev(HV_TESTDEV_MSG_CONN_DESTROY, MBTEST_MSG_CONN);
}

static void check_event(void)
{
	volatile uint8_t *flags = siefp.sint_flags[SINT].flags;
	testdev(HV_TESTDEV_EVT_CONN_CREATE, MBTEST_EVT_CONN);
	/* A flag number (bits 47:32) is an unknown port, as KVM and QEMU
	 * answer it. */
	uint64_t status = hypercall(HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				    MBTEST_EVT_CONN | 1ull << 32, 0);
	check((status & 0xffff) == HV_STATUS_INVALID_PORT_ID && !flags[MBTEST_EVT_CONN / 8],
	      MBTEST_SIGNAL_FLAG_NUMBER, "HvSignalEvent with a flag number: invalid port");
	uint64_t seen = mbtest_interrupts;
	status = hypercall(HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, MBTEST_EVT_CONN, 0);
	check((status & 0xffff) == HV_STATUS_SUCCESS, MBTEST_SIGNAL, "HvSignalEvent accepted");
	check(interrupted(seen), MBTEST_EVENT, "event connection: interrupts");
	check(flags[MBTEST_EVT_CONN / 8] & (1u << (MBTEST_EVT_CONN % 8)), MBTEST_EVENT_FLAG,
	      "event connection: its flag set");
	flags[MBTEST_EVT_CONN / 8] = 0;
	testdev(HV_TESTDEV_EVT_CONN_DESTROY, MBTEST_EVT_CONN);
}

void mbtest_main(uint32_t magic, uint32_t info)
{
	puts_com1("mbtest: started\n");
	check(magic == MULTIBOOT_BOOTLOADER_MAGIC, MBTEST_MAGIC, "Multiboot magic");
	const struct multiboot_info *mi = (const struct multiboot_info *)(uintptr_t)info;
	check((mi->flags & MULTIBOOT_INFO_MEMORY) && mi->mem_upper >= 1024, MBTEST_MEMORY,
	      "memory size");
	const char *cmdline = mi->flags & MULTIBOOT_INFO_CMDLINE
				      ? (const char *)(uintptr_t)mi->cmdline : "";
	puts_com1("mbtest: command line: ");
	puts_com1(cmdline);
	puts_com1("\n");
	if (option(cmdline, "mod"))
		check_module(mi, cmdline);
	if (option(cmdline, "hyperv")) {
		setup_synic();
		check_set_sint();
		check_message_echo();
		check_event();
	}
	if (option(cmdline, "echo"))
		echo_line();
	if (option(cmdline, "fwcfg"))
		check_fw_cfg(option(cmdline, "fwcfg"));
	finish(MBTEST_PASS);
}
