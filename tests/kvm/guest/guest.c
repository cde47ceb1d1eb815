/* SPDX-License-Identifier: MIT */
/*
 * The KVM test guest: a freestanding 64-bit image the harness starts in
 * long mode at CPL0 (page tables, GDT and control registers set from the
 * host). It exercises the Hyper-V interface of the KVM partition and
 * reports each check on an I/O port (tests/kvm/kvm_test.h).
 *
 * CPL0 code is emulated ~1000x slower under PVM, so everything here is
 * short and straight: no libraries, no loops beyond what a check needs.
 */
#include <stddef.h>
#include <stdint.h>

#include "guest_x86.h"
#include "hvkit/tlfs.h"
#include "kvm_test.h"

#define PAGE __attribute__((aligned(4096)))
#define LAPIC_BASE 0xFEE00000ul
#define LAPIC_EOI 0xB0
#define LAPIC_SVR 0xF0
#define LAPIC_SVR_ENABLE (1u << 8)
#define GP_VECTOR 13
#define CODE_SELECTOR 0x08
#define MSR_APIC_BASE 0x1Bu

static uint8_t hypercall_page[4096] PAGE;
static uint8_t input_page[4096] PAGE;
static struct hv_message_page simp PAGE;
static struct hv_event_flags_page siefp PAGE;
static struct hv_tsc_page tsc_page PAGE;
static uint64_t idt[256 * 2] PAGE;

/* Written by the interrupt handlers (asm below). */
volatile uint64_t kt_gp_count, kt_sint_count, kt_stimer_count, kt_stop;
volatile uint64_t kt_auto_eoi_count, kt_low_count;
/* Registers a hypercall changed besides RAX (kt_hypercall_keeps_regs). */
volatile uint64_t kt_regs_changed;

/* ---- Instructions ---- */

static inline void cpuid(uint32_t leaf, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void lapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(LAPIC_BASE + reg) = v;
}

static uint64_t hypercall(uint64_t control, uint64_t input, uint64_t output)
{
	return hv_page_call(hypercall_page, control, input, output);
}

/* Sleeps until *counter moves from `seen` (interrupts enabled while
 * halted; sti's one-instruction shadow closes the check/hlt race). */
static int wait_for(volatile uint64_t *counter, uint64_t seen)
{
	for (uint32_t spins = 0; spins < 100000; spins++) {
		__asm__ volatile("cli");
		if (*counter != seen) {
			__asm__ volatile("sti");
			return 0;
		}
		__asm__ volatile("sti; hlt" ::: "memory");
	}
	return 1;
}

static void report(enum kt_check check, uint32_t code)
{
	outl(KT_PORT_REPORT, (uint32_t)check << 16 | (code & 0xFFFF));
}

static void report_value(uint64_t v)
{
	outl(KT_PORT_VALUE, (uint32_t)v);
	outl(KT_PORT_VALUE, (uint32_t)(v >> 32));
}

/* ---- Interrupts ---- */

/* Each handler: count, EOI (not for the #GP exception), return. The #GP
 * handler skips the faulting 2-byte RDMSR/WRMSR. */
__asm__(".text\n"
	/* The LAPIC EOI register lies above 2 GiB: through a register. */
	"eoi_return:\n"
	"	pushq %rax\n"
	"	movl $0xFEE000B0, %eax\n"
	"	movl $0, (%rax)\n"
	"	popq %rax\n"
	"	iretq\n"
	"isr_gp:\n"
	"	addq $2, 8(%rsp)\n" /* error code at 0(%rsp), RIP above it */
	"	lock incq kt_gp_count(%rip)\n"
	"	addq $8, %rsp\n"
	"	iretq\n"
	"isr_sint:\n"
	"	lock incq kt_sint_count(%rip)\n"
	"	jmp eoi_return\n"
	"isr_stimer:\n"
	"	lock incq kt_stimer_count(%rip)\n"
	"	jmp eoi_return\n"
	"isr_ping:\n"
	"	pushq %rax\n"
	"	pushq %rdx\n"
	"	movl $0x50C, %edx\n"
	"	xorl %eax, %eax\n"
	"	outl %eax, %dx\n"
	"	popq %rdx\n"
	"	popq %rax\n"
	"	jmp eoi_return\n"
	"isr_stop:\n"
	"	lock incq kt_stop(%rip)\n"
	"	jmp eoi_return\n"
	/* The auto-EOI check's handlers, in x2APIC mode: the SINT's ends
	 * without an EOI, as a guest that set auto-EOI does; the lower one
	 * EOIs through the x2APIC EOI MSR. */
	"isr_auto_eoi:\n"
	"	lock incq kt_auto_eoi_count(%rip)\n"
	"	iretq\n"
	"isr_low:\n"
	"	lock incq kt_low_count(%rip)\n"
	"	pushq %rax\n"
	"	pushq %rcx\n"
	"	pushq %rdx\n"
	"	movl $0x80B, %ecx\n"
	"	xorl %eax, %eax\n"
	"	xorl %edx, %edx\n"
	"	wrmsr\n"
	"	popq %rdx\n"
	"	popq %rcx\n"
	"	popq %rax\n"
	"	iretq\n");
/*
 * uint64_t kt_hypercall_keeps_regs(page, control, input): a hypercall with
 * every other general register holding a known value; OR of what changed
 * lands in kt_regs_changed, the status in RAX.
 */
__asm__(".text\n"
	"kt_hypercall_keeps_regs:\n"
	"	pushq %rbx\n"
	"	pushq %rbp\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	movq %rdi, %rax\n"
	"	movq %rsi, %rcx\n"
	"	pushq %rcx\n"
	"	pushq %rdx\n"
	"	xorl %r8d, %r8d\n"
	"	movl $0x1111, %ebx\n"
	"	movl $0x2222, %ebp\n"
	"	movl $0x3333, %esi\n"
	"	movl $0x4444, %edi\n"
	"	movl $0x5555, %r9d\n"
	"	movl $0x6666, %r10d\n"
	"	movl $0x7777, %r11d\n"
	"	movl $0x8888, %r12d\n"
	"	movl $0x9999, %r13d\n"
	"	movl $0xAAAA, %r14d\n"
	"	movl $0xBBBB, %r15d\n"
	"	call *%rax\n"
	"	xorq (%rsp), %rdx\n"
	"	xorq 8(%rsp), %rcx\n"
	"	addq $16, %rsp\n"
	"	xorq $0x1111, %rbx\n"
	"	xorq $0x2222, %rbp\n"
	"	xorq $0x3333, %rsi\n"
	"	xorq $0x4444, %rdi\n"
	"	xorq $0x5555, %r9\n"
	"	xorq $0x6666, %r10\n"
	"	xorq $0x7777, %r11\n"
	"	xorq $0x8888, %r12\n"
	"	xorq $0x9999, %r13\n"
	"	xorq $0xAAAA, %r14\n"
	"	xorq $0xBBBB, %r15\n"
	"	orq %rcx, %rbx\n"
	"	orq %rdx, %rbx\n"
	"	orq %rbp, %rbx\n"
	"	orq %rsi, %rbx\n"
	"	orq %rdi, %rbx\n"
	"	orq %r8, %rbx\n"
	"	orq %r9, %rbx\n"
	"	orq %r10, %rbx\n"
	"	orq %r11, %rbx\n"
	"	orq %r12, %rbx\n"
	"	orq %r13, %rbx\n"
	"	orq %r14, %rbx\n"
	"	orq %r15, %rbx\n"
	"	movq %rbx, kt_regs_changed(%rip)\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbp\n"
	"	popq %rbx\n"
	"	ret\n");
uint64_t kt_hypercall_keeps_regs(void *page, uint64_t control, uint64_t input);
void isr_gp(void);
void isr_sint(void);
void isr_stimer(void);
void isr_ping(void);
void isr_stop(void);
void isr_auto_eoi(void);
void isr_low(void);

static void set_gate(uint8_t vector, void (*fn)(void))
{
	uint64_t a = (uint64_t)(uintptr_t)fn;
	/* Present, DPL 0, 64-bit interrupt gate (0xE): IF cleared on entry. */
	idt[vector * 2] = (a & 0xFFFF) | (uint64_t)CODE_SELECTOR << 16 | 0x8Eull << 40 |
			  ((a >> 16) & 0xFFFF) << 48;
	idt[vector * 2 + 1] = a >> 32;
}

static void setup_interrupts(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};

	set_gate(GP_VECTOR, isr_gp);
	set_gate(KT_SINT_VECTOR, isr_sint);
	set_gate(KT_STIMER_VECTOR, isr_stimer);
	set_gate(KT_PING_VECTOR, isr_ping);
	set_gate(KT_STOP_VECTOR, isr_stop);
	set_gate(KT_AUTO_EOI_VECTOR, isr_auto_eoi);
	set_gate(KT_LOW_VECTOR, isr_low);
	__asm__ volatile("lidt %0" : : "m"(idtr));
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | 0xFF);
}

/* ---- Checks ---- */

static void check_cpuid(void)
{
	uint32_t r[4];

	cpuid(1, r);
	report(KT_CPUID_HYPERVISOR, (r[2] & HV_CPUID1_ECX_HYPERVISOR) ? 0 : 1);
	cpuid(HV_CPUID_VENDOR_AND_MAX, r);
	uint32_t code = r[1] != HV_CPUID_VENDOR_EBX || r[2] != HV_CPUID_VENDOR_ECX ||
			r[3] != HV_CPUID_VENDOR_EDX;
	if (!code && r[0] < HV_CPUID_MAX_LEAF_MIN)
		code = 2;
	cpuid(HV_CPUID_INTERFACE, r);
	if (!code && r[0] != HV_CPUID_INTERFACE_SIGNATURE)
		code = 3;
	report(KT_CPUID_VENDOR, code);

	cpuid(HV_CPUID_FEATURES, r);
	uint32_t want_a = HV_FEAT_HYPERCALL_MSRS | HV_FEAT_VP_INDEX_MSR |
			  HV_FEAT_TIME_REF_COUNT_MSR | HV_FEAT_SYNIC_MSRS | HV_FEAT_STIMER_MSRS |
			  HV_FEAT_REFERENCE_TSC_MSR;
	uint32_t want_b = HV_PRIV_POST_MESSAGES | HV_PRIV_SIGNAL_EVENTS;
	code = (r[0] & want_a) != want_a ? 1
	       : (r[1] & want_b) != want_b ? 2
	       : !(r[3] & HV_FEAT_X64_STIMER_DIRECT_MODE) ? 3
						       : 0;
	report(KT_CPUID_FEATURES, code);
}

static void check_msrs(void)
{
	uint64_t id = HV_GUEST_OS_ID_OPEN_SOURCE |
		      (uint64_t)HV_GUEST_OS_ID_VENDOR_LINUX << HV_GUEST_OS_ID_VENDOR_SHIFT | 0x1234;
	wrmsr(HV_MSR_GUEST_OS_ID, id);
	report(KT_GUEST_OS_ID, rdmsr(HV_MSR_GUEST_OS_ID) == id ? 0 : 1);

	uint32_t r[4];
	cpuid(1, r);
	report(KT_VP_INDEX, rdmsr(HV_MSR_VP_INDEX) == r[1] >> 24 ? 0 : 1);

	uint64_t before = kt_gp_count;
	(void)rdmsr(HV_MSR_RESET); /* never offered: #GP, skipped by isr_gp */
	report(KT_UNKNOWN_MSR_GP, kt_gp_count == before + 1 ? 0 : 1);
}

static void check_hypercalls(void)
{
	wrmsr(HV_MSR_HYPERCALL, (uint64_t)(uintptr_t)hypercall_page | HV_HYPERCALL_MSR_ENABLE);
	static const uint8_t endbr64[4] = {0xF3, 0x0F, 0x1E, 0xFA};
	uint32_t code = 0;
	for (int i = 0; i < 4; i++)
		if (hypercall_page[i] != endbr64[i])
			code = 1;
	if (!(rdmsr(HV_MSR_HYPERCALL) & HV_HYPERCALL_MSR_ENABLE))
		code = 2;
	report(KT_HYPERCALL_PAGE, code);
	if (code)
		return;

	struct hv_input_post_message *in = (void *)input_page;
	static const char hello[KT_MESSAGE_BYTES] = "hello from guest";
	in->connection_id = KT_MESSAGE_CONNECTION;
	in->message_type = KT_MESSAGE_TYPE;
	in->payload_size = KT_MESSAGE_BYTES;
	for (int i = 0; i < KT_MESSAGE_BYTES; i++)
		in->payload[i] = (uint8_t)hello[i];
	uint64_t status = hypercall(HVCALL_POST_MESSAGE, (uint64_t)(uintptr_t)in, 0);
	report(KT_POST_MESSAGE, (uint32_t)(status & HV_HYPERCALL_STATUS_MASK));

	status = hypercall(HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, KT_EVENT_CONNECTION, 0);
	report(KT_SIGNAL_EVENT, (uint32_t)(status & HV_HYPERCALL_STATUS_MASK));

	/* A spin-wait notice: a fast call that changes nothing else. */
	kt_regs_changed = ~0ull;
	status = kt_hypercall_keeps_regs(hypercall_page,
					 HVCALL_NOTIFY_LONG_SPIN_WAIT | HV_HYPERCALL_FAST, 1);
	report(KT_HYPERCALL_REGS, (status & HV_HYPERCALL_STATUS_MASK) ? 1
				  : kt_regs_changed			  ? 2
									  : 0);

	in->connection_id = 0x777;
	status = hypercall(HVCALL_POST_MESSAGE, (uint64_t)(uintptr_t)in, 0);
	report(KT_BAD_CONNECTION,
	       (status & HV_HYPERCALL_STATUS_MASK) == HV_STATUS_INVALID_CONNECTION_ID ? 0 : 1);
}

static void check_time(void)
{
	uint64_t t0 = rdmsr(HV_MSR_TIME_REF_COUNT);
	uint64_t t1 = rdmsr(HV_MSR_TIME_REF_COUNT);
	report(KT_REF_COUNTER, t1 > t0 ? 0 : 1);

	wrmsr(HV_MSR_REFERENCE_TSC, (uint64_t)(uintptr_t)&tsc_page | HV_MSR_PAGE_ENABLE);
	uint64_t before = rdmsr(HV_MSR_TIME_REF_COUNT);
	uint32_t seq = tsc_page.sequence;
	uint64_t tsc = rdtsc();
	uint64_t ref = (uint64_t)(((unsigned __int128)tsc * tsc_page.scale) >> 64) +
		       (uint64_t)tsc_page.offset;
	uint64_t after = rdmsr(HV_MSR_TIME_REF_COUNT);
	uint32_t code = seq == HV_TSC_PAGE_SEQUENCE_INVALID ? 1
			: seq != tsc_page.sequence          ? 2
			: ref < before                      ? 3
			: ref > after                       ? 4
							    : 0;
	report(KT_TSC_PAGE, code);
}

static void check_synic(void)
{
	wrmsr(HV_MSR_SIMP, (uint64_t)(uintptr_t)&simp | HV_MSR_PAGE_ENABLE);
	wrmsr(HV_MSR_SIEFP, (uint64_t)(uintptr_t)&siefp | HV_MSR_PAGE_ENABLE);
	wrmsr(HV_MSR_SINT(KT_SINT), KT_SINT_VECTOR);
	wrmsr(HV_MSR_SCONTROL, 1);

	uint64_t seen = kt_sint_count;
	outl(KT_PORT_REQUEST, KT_REQ_POST_MESSAGE);
	uint32_t code = wait_for(&kt_sint_count, seen);
	volatile struct hv_message *m = &simp.sint_message[KT_SINT];
	static const char hello[KT_MESSAGE_BYTES] = "hello from host!";
	if (!code && m->header.message_type != KT_MESSAGE_TYPE)
		code = 2;
	if (!code && m->header.payload_size != KT_MESSAGE_BYTES)
		code = 3;
	for (int i = 0; !code && i < KT_MESSAGE_BYTES; i++)
		if (m->payload[i] != (uint8_t)hello[i])
			code = 4;
	/* Free the slot, then EOM so a queued message can follow. */
	m->header.message_type = HVMSG_NONE;
	wrmsr(HV_MSR_EOM, 0);
	report(KT_SYNIC_MESSAGE, code);
}

static void check_stimer(void)
{
	uint64_t seen = kt_stimer_count;
	uint64_t now = rdmsr(HV_MSR_TIME_REF_COUNT);

	/* One shot, 1 ms from now (absolute), straight to our vector. */
	wrmsr(HV_MSR_STIMER_COUNT(0), now + 10000);
	wrmsr(HV_MSR_STIMER_CONFIG(0), HV_STIMER_ENABLE | HV_STIMER_DIRECT_MODE |
					       (uint64_t)KT_STIMER_VECTOR << HV_STIMER_VECTOR_SHIFT);
	uint32_t code = wait_for(&kt_stimer_count, seen);
	if (!code && rdmsr(HV_MSR_TIME_REF_COUNT) < now + 10000)
		code = 2; /* fired early */
	report(KT_STIMER_DIRECT, code);
}

/* Last: it leaves the LAPIC in x2APIC mode, where the other handlers'
 * xAPIC EOI no longer works. The host posts a message to an auto-EOI SINT
 * and at once sends a vector of a lower priority class. The guest takes
 * the SINT's and does not EOI it; on Hyper-V that vector is out of
 * service as soon as it is taken, so the lower one must follow while the
 * guest sits in HLT (no exit to hvkit: only hvkit's own kick ends it). */
static void check_auto_eoi(void)
{
	uint32_t eax = 1, ebx, ecx = 0, edx;
	__asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
	if (!(ecx & 1u << 21)) {
		report(KT_AUTO_EOI, KT_NO_X2APIC);
		return;
	}
	wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | 1u << 10); /* EXTD */
	wrmsr(HV_MSR_SINT(KT_SINT), KT_AUTO_EOI_VECTOR | HV_SINT_AUTO_EOI);
	uint64_t seen = kt_auto_eoi_count, low_seen = kt_low_count;
	outl(KT_PORT_REQUEST, KT_REQ_AUTO_EOI);
	uint32_t code = wait_for(&kt_auto_eoi_count, seen);
	if (!code && wait_for(&kt_low_count, low_seen))
		code = 2;
	simp.sint_message[KT_SINT].header.message_type = HVMSG_NONE;
	report(KT_AUTO_EOI, code);
}

/* ---- Benchmark mode ---- */

#define BENCH_ROUNDS 2000

static void bench(void)
{
	wrmsr(HV_MSR_GUEST_OS_ID, HV_GUEST_OS_ID_OPEN_SOURCE | 1);
	wrmsr(HV_MSR_HYPERCALL, (uint64_t)(uintptr_t)hypercall_page | HV_HYPERCALL_MSR_ENABLE);

	uint64_t t0 = rdtsc();
	for (int i = 0; i < BENCH_ROUNDS; i++)
		(void)rdmsr(HV_MSR_TIME_REF_COUNT);
	report_value(rdtsc() - t0);

	t0 = rdtsc();
	for (int i = 0; i < BENCH_ROUNDS; i++)
		(void)hypercall(HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, KT_EVENT_CONNECTION, 0);
	report_value(rdtsc() - t0);

	/* Baselines: an MSR KVM serves in the kernel (the APIC base), and
	 * the bare loop, both as emulated CPL0 code. */
	t0 = rdtsc();
	for (int i = 0; i < BENCH_ROUNDS; i++)
		(void)rdmsr(MSR_APIC_BASE);
	report_value(rdtsc() - t0);
	t0 = rdtsc();
	for (int i = 0; i < BENCH_ROUNDS; i++)
		__asm__ volatile("" ::: "memory");
	report_value(rdtsc() - t0);

	/* The host now sends KT_PING_VECTOR interrupts, each answered from
	 * the handler, then KT_STOP_VECTOR. */
	outl(KT_PORT_REQUEST, KT_REQ_BENCH_READY);
	while (!kt_stop)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
}

/* KT_MODE_COUNT: see kvm_test.h. */
static __attribute__((noreturn)) void count_forever(void)
{
	struct kt_count_page *page = (struct kt_count_page *)(uintptr_t)KT_COUNT_GPA;
	uint64_t count = 0, last_tsc = 0, last_ref = 0;
	for (;;) {
		if (page->count != count)
			page->memory_mismatch++;
		page->count = ++count;
		uint32_t lo, hi;
		__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
		uint64_t tsc = (uint64_t)hi << 32 | lo;
		if (tsc < last_tsc)
			page->tsc_back++;
		last_tsc = tsc;
		if ((count & 63) == 0) {
			uint64_t ref = rdmsr(HV_MSR_TIME_REF_COUNT);
			if (ref < last_ref)
				page->ref_back++;
			last_ref = ref;
			page->ref_reads++;
		}
	}
}

__attribute__((section(".text.start"), used, noreturn)) void _start(uint64_t mode);
void _start(uint64_t mode)
{
	if (mode == KT_MODE_SPIN)
		for (;;)
			__asm__ volatile("cli; pause");
	if (mode == KT_MODE_TRIPLE_FAULT) {
		struct __attribute__((packed)) {
			uint16_t limit;
			uint64_t base;
		} empty = {0, 0};
		__asm__ volatile("lidt %0; ud2" : : "m"(empty));
	}
	if (mode == KT_MODE_COUNT)
		count_forever();
	setup_interrupts();
	if (mode == KT_MODE_BENCH) {
		bench();
	} else {
		check_cpuid();
		check_msrs();
		check_hypercalls();
		check_time();
		check_synic();
		check_stimer();
		check_auto_eoi();
	}
	/* isa-debug-exit: status (0 << 1) | 1. */
	outl(0xF4, 0);
	for (;;)
		__asm__ volatile("cli; hlt");
}
