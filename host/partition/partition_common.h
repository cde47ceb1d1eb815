/* SPDX-License-Identifier: MIT */
/*
 * What the partition backends (process, KVM) share: guest RAM in a memfd,
 * TSC calibration, arming a timer fd for host/hv's next deadline, and the
 * diagnostics callbacks host/hv gets.
 */
#ifndef HVKIT_PARTITION_COMMON_H
#define HVKIT_PARTITION_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* A logging callback as the partition configs carry it. */
typedef void (*partition_log_fn)(void *ctx, const char *fmt, va_list ap);

/* One line through fn, or to stderr with "hvkit: " when fn is NULL. */
__attribute__((format(printf, 3, 0))) void partition_log_va(partition_log_fn fn, void *ctx,
							    const char *fmt, va_list ap);

/* Logs a guest crash report (the crash MSRs) as one line. */
void partition_log_crash(partition_log_fn fn, void *ctx, uint32_t vp, const uint64_t params[5],
			 const char *message, uint32_t len);

/* A memfd of `size` bytes mapped shared: 0 or a negative errno (what was
 * made is left in *fd and *map for the caller to free). */
int partition_map_memfd(const char *name, size_t size, int *fd, void **map);

/* Closes *fd if open and marks it closed (-1). */
void partition_close_fd(int *fd);

/* The host TSC frequency measured against CLOCK_MONOTONIC_RAW (~20 ms). */
uint64_t partition_calibrate_tsc(void);

/* Arms timer_fd (CLOCK_MONOTONIC, relative) to fire at reference time
 * `next` given reference time `now`; UINT64_MAX disarms it. */
void partition_arm_timer(int timer_fd, uint64_t now, uint64_t next);

/* Statistics counters, read at any time without a lock. */
/* One any thread may add to. */
static inline void partition_count(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* One only a single thread adds to (a VP's own): no locked instruction,
 * so VPs never contend for each other's counter lines. */
static inline void partition_count_own(uint64_t *counter)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

static inline uint64_t partition_counted(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

#endif
