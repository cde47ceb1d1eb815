/* SPDX-License-Identifier: MIT */
/*
 * x86 instructions for the freestanding test kernels (tests/kvm/guest,
 * tests/kvm/mbtest), 64-bit, CPL0.
 */
#ifndef HVKIT_TESTS_GUEST_X86_H
#define HVKIT_TESTS_GUEST_X86_H

#include <stdint.h>

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
	return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
			 : "memory");
}

/* A hypercall through the hypercall page: control in RCX, input in RDX,
 * output in R8; the status comes back in RAX. */
static inline uint64_t hv_page_call(void *page, uint64_t control, uint64_t input,
				    uint64_t output)
{
	uint64_t status;
	register uint64_t r8 __asm__("r8") = output;
	__asm__ volatile("call *%[page]"
			 : "=a"(status), "+c"(control), "+d"(input), "+r"(r8)
			 : [page] "r"(page)
			 : "memory", "cc");
	return status;
}

#endif /* HVKIT_TESTS_GUEST_X86_H */
