/* SPDX-License-Identifier: MIT */
/* hvkit-os internals: CPU helpers, console, traps, ACPI power-off. */
#ifndef HVKIT_OS_H
#define HVKIT_OS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* ---- CPU ---- */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(subleaf));
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

__attribute__((noreturn)) static inline void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* MSR accesses that may #GP: the trap handler skips the instruction and
 * the call returns false. */
bool msr_read(uint32_t msr, uint64_t *value);
bool msr_write(uint32_t msr, uint64_t value);

/* ---- Console (COM1) ---- */

void console_init(void);
void console_write(const char *s, size_t n);
__attribute__((format(printf, 1, 2))) void kprintf(const char *fmt, ...);
void kvprintf(const char *fmt, va_list ap);

/* ---- Traps ---- */

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

void idt_init(void);
void idt_load(void);
void trap(struct trap_frame *f);

/* Interrupt vectors >= 32: fn(arg) runs with interrupts off, then EOI. */
#define OS_TICK_VECTOR 0xef
#define OS_SPURIOUS_VECTOR 0xff
int set_vector(uint8_t vector, void (*fn)(void *arg), void *arg);

static inline uint64_t irq_save(void)
{
	uint64_t flags;
	__asm__ volatile("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
	return flags;
}

static inline void irq_restore(uint64_t flags)
{
	if (flags & 0x200)
		__asm__ volatile("sti" : : : "memory");
}

/* Waits for an interrupt with interrupts enabled (sti; hlt is atomic). */
static inline void wait_for_interrupt(void)
{
	__asm__ volatile("sti; hlt; cli" : : : "memory");
}

/* ---- Local APIC and time ---- */

void lapic_init(void);   /* BSP: PICs masked, APIC on, the tick */
void lapic_enable(void); /* any VP: its APIC on */
void lapic_eoi(void);
uint32_t lapic_id(void);
/* The TSC frequency from Hyper-V's MSR where offered (as Linux, only if
 * CPUID says so: hv_frequency_msr), else measured with the PM timer
 * (pm_timer: its port, 0 if none). 0 or -1 (no way to know). */
int time_init(uint16_t pm_timer, bool hv_frequency_msr);
uint64_t tsc_frequency(void);
uint64_t monotonic_ns(void);

/* ---- Memory ---- */

struct hvm_start_info;
void memory_init(const struct hvm_start_info *si);
void *pages_alloc(uint32_t count); /* zeroed, contiguous, identity-mapped */
void pages_free(void *pages, uint32_t count);
uint64_t memory_free_bytes(void);

/* ---- ACPI ---- */

/* A table by signature through the RSDP (hint or searched for), checksum
 * verified; NULL if absent. */
const void *acpi_find_table(uint64_t rsdp, const char *sig);

/* The PM timer port from the FADT, 0 if none. */
uint16_t acpi_pm_timer(uint64_t rsdp);

/* ---- Power ---- */

/* Ends the run: the status goes to isa-debug-exit if the command line
 * asked for it, then ACPI S5; halts if neither works. */
__attribute__((noreturn)) void power_off(uint64_t rsdp, int status);

/* ---- Boot ---- */

void kmain(uint32_t start_info);
bool cmdline_has(const char *word);

#endif /* HVKIT_OS_H */
