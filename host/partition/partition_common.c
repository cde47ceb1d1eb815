/* SPDX-License-Identifier: MIT */
/* What the partition backends share (see partition_common.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "partition_common.h"

void partition_log_va(partition_log_fn fn, void *ctx, const char *fmt, va_list ap)
{
	if (fn) {
		fn(ctx, fmt, ap);
		return;
	}
	fputs("hvkit: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

__attribute__((format(printf, 3, 4))) static void log_line(partition_log_fn fn, void *ctx,
							  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	partition_log_va(fn, ctx, fmt, ap);
	va_end(ap);
}

void partition_log_crash(partition_log_fn fn, void *ctx, uint32_t vp, const uint64_t params[5],
			 const char *message, uint32_t len)
{
	log_line(fn, ctx, "guest crash on VP %u: %#llx %#llx %#llx %#llx %#llx%s%.*s", vp,
		 (unsigned long long)params[0], (unsigned long long)params[1],
		 (unsigned long long)params[2], (unsigned long long)params[3],
		 (unsigned long long)params[4], message ? ": " : "", message ? (int)len : 0,
		 message ? message : "");
}

int partition_map_memfd(const char *name, size_t size, int *fd, void **map)
{
	*map = NULL;
	*fd = memfd_create(name, MFD_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (ftruncate(*fd, (off_t)size) < 0)
		return -errno;
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (*map == MAP_FAILED) {
		*map = NULL;
		return -errno;
	}
	return 0;
}

void partition_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static uint64_t monotonic_raw_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t partition_calibrate_tsc(void)
{
	uint64_t ns0 = monotonic_raw_ns(), tsc0 = __rdtsc(), ns1;

	do
		ns1 = monotonic_raw_ns();
	while (ns1 - ns0 < 20000000ull);
	uint64_t tsc1 = __rdtsc();
	return (uint64_t)((unsigned __int128)(tsc1 - tsc0) * 1000000000u / (ns1 - ns0));
}

void partition_arm_timer(int timer_fd, uint64_t now, uint64_t next)
{
	struct itimerspec its = {0};

	if (next != UINT64_MAX) {
		uint64_t ns = next > now ? (next - now) * 100 : 1; /* 0 would disarm */
		its.it_value.tv_sec = (time_t)(ns / 1000000000ull);
		its.it_value.tv_nsec = (long)(ns % 1000000000ull);
	}
	timerfd_settime(timer_fd, 0, &its, NULL);
}
