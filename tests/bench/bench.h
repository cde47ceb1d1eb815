/* SPDX-License-Identifier: MIT */
/* Shared helpers of the hvkit-bench programs. */
#ifndef HVKIT_BENCH_H
#define HVKIT_BENCH_H

#include <stddef.h>
#include <stdint.h>

uint64_t bench_now_ns(void);

/* The n-th CPU this process may run on, or -1 if there are fewer. */
int bench_cpu(int n);

/* How many CPUs this process may run on. */
int bench_cpu_count(void);

/* Pins the calling thread to cpu (nothing if cpu < 0). */
void bench_pin(int cpu);

/* The median of v[0..n) (sorts v). */
double bench_median(double *v, int n);

/* path = rel next to this program (the guests are built beside it). */
void bench_path_near_self(const char *rel, char *path, size_t size);

/* Keeps the compiler from dropping a copy whose result is never read. */
static inline void bench_clobber(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

/*
 * The options of the benchmarks that run a guest: --samples N, --guest
 * PATH (default: `rel` next to this program). Fills *samples (kept if not
 * given) and guest; returns -1 to go on, or the exit status (--help, bad
 * usage).
 */
int bench_guest_options(int argc, char **argv, const char *name, const char *rel,
			unsigned long *samples, char *guest, size_t size);

int bench_ring_main(int argc, char **argv);
int bench_signal_main(int argc, char **argv);
int bench_kvm_main(int argc, char **argv);
int bench_net_main(int argc, char **argv);
int bench_slirp_main(int argc, char **argv); /* run by bench_net_main */
int bench_storage_main(int argc, char **argv);
int bench_scale_main(int argc, char **argv);

#endif
