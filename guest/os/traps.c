/* SPDX-License-Identifier: MIT */
/*
 * The IDT: every vector goes to trap(). A #GP on an RDMSR/WRMSR issued by
 * msr_read/msr_write is expected (probing an MSR the hypervisor lacks) and
 * skipped; any other exception is fatal and reported.
 */
#include "os.h"

#define KERNEL_CS 0x08
#define GP_VECTOR 13
#define GATE_INTERRUPT 0x8e

struct idt_gate {
	uint16_t offset_low, selector;
	uint8_t ist, type;
	uint16_t offset_mid;
	uint32_t offset_high, reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "a long-mode gate is 16 bytes");

extern const uint8_t isr_stubs[];
static struct idt_gate idt[256] __attribute__((aligned(16)));

static struct {
	void (*fn)(void *arg);
	void *arg;
} handlers[256];

int set_vector(uint8_t vector, void (*fn)(void *arg), void *arg)
{
	if (vector < 32)
		return -1;
	handlers[vector].arg = arg;
	handlers[vector].fn = fn;
	return 0;
}

/* Set around one RDMSR/WRMSR; the handler clears it on a #GP. */
static volatile bool msr_probing, msr_ok;

void idt_init(void)
{
	for (unsigned v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)(uintptr_t)(isr_stubs + 16 * v);
		idt[v] = (struct idt_gate){(uint16_t)a, KERNEL_CS, 0, GATE_INTERRUPT,
					   (uint16_t)(a >> 16), (uint32_t)(a >> 32), 0};
	}
	idt_load();
}

/* Every VP loads the one IDT. */
void idt_load(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) ptr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
	__asm__ volatile("lidt %0" : : "m"(ptr));
}

static bool is_msr_instruction(uint64_t rip)
{
	const uint8_t *p = (const uint8_t *)(uintptr_t)rip;
	return p[0] == 0x0f && (p[1] == 0x30 || p[1] == 0x32);
}

void trap(struct trap_frame *f)
{
	if (f->vector == GP_VECTOR && msr_probing && is_msr_instruction(f->rip)) {
		msr_ok = false;
		f->rip += 2;
		return;
	}
	if (f->vector >= 32) {
		if (f->vector == OS_SPURIOUS_VECTOR)
			return; /* no EOI for spurious interrupts */
		if (handlers[f->vector].fn)
			handlers[f->vector].fn(handlers[f->vector].arg);
		lapic_eoi();
		return;
	}
	kprintf("hvkit-os: exception %llu (error %#llx) at %#llx, rsp %#llx\n",
		(unsigned long long)f->vector, (unsigned long long)f->error,
		(unsigned long long)f->rip, (unsigned long long)f->rsp);
	halt_forever();
}

bool msr_read(uint32_t msr, uint64_t *value)
{
	uint32_t lo = 0, hi = 0;
	msr_ok = true;
	msr_probing = true;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
	msr_probing = false;
	*value = (uint64_t)hi << 32 | lo;
	return msr_ok;
}

bool msr_write(uint32_t msr, uint64_t value)
{
	msr_ok = true;
	msr_probing = true;
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32))
			 : "memory");
	msr_probing = false;
	return msr_ok;
}
