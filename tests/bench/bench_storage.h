/* SPDX-License-Identifier: MIT */
/*
 * The storage workloads of hvkit-bench storage and the pieces that run
 * them in a process-partition guest (storvsc against storvsp), shared with
 * hvkit-bench scale.
 */
#ifndef HVKIT_BENCH_STORAGE_H
#define HVKIT_BENCH_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct storage_workload {
	const char *name;
	uint32_t bytes, depth;
	bool write, random;
};

#define STORAGE_WORKLOADS 3
extern const struct storage_workload storage_workloads[STORAGE_WORKLOADS];

#define STORAGE_MAX_VPS 8

struct storage_result {
	uint64_t ios, ns, host_cpu_ns, guest_cpu_ns;
	/* Completions per VP (so per channel: each channel completes on its
	 * own VP), for the VPs of the run. */
	uint64_t vp_ios[STORAGE_MAX_VPS];
};

/* A 256 MiB image in dir, written out (so reads hit data); its name goes
 * to path. 0 or -errno. */
int storage_image_create(const char *dir, char *path, size_t size);

/*
 * One run of w in the storvsc test guest with `vps` VPs (storvsc opens a
 * channel per VP) and `depth` requests in flight, for ms milliseconds,
 * on img through the disk back end aio ("io_uring" or "threads"). The
 * host's CPU time counts the whole run, bring-up included.
 */
int storage_guest_run(const char *guest, const char *img, const char *aio,
		      const struct storage_workload *w, uint32_t vps, uint32_t depth, uint32_t ms,
		      struct storage_result *r);

#endif
