/* SPDX-License-Identifier: MIT */
/* Shared helpers of the hvkit-bench programs. */
#ifndef HVKIT_BENCH_H
#define HVKIT_BENCH_H

#include <stdint.h>

uint64_t bench_now_ns(void);

/* The n-th CPU this process may run on, or -1 if there are fewer. */
int bench_cpu(int n);

/* Keeps the compiler from dropping a copy whose result is never read. */
static inline void bench_clobber(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

int bench_ring_main(int argc, char **argv);
int bench_signal_main(int argc, char **argv);

#endif
