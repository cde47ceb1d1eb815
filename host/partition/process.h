/* SPDX-License-Identifier: MIT */
/*
 * The process partition, host side: a guest that is an ordinary Linux
 * process (spawned here), its RAM a memfd both map, its MSR accesses and
 * hypercalls requests on a socket per VP, its interrupts eventfds. The same
 * host/hv emulation as under KVM answers them. Wire format:
 * include/hvkit/proto/process.h; docs/process-partition.md.
 *
 * The guest is untrusted: a malformed request, a bad GPA or a guest that
 * dies mid-call ends the partition cleanly and never the host.
 *
 * Threads: one per VP serving its socket, one for timers, fast events and
 * the guest's exit. host/hv locks itself: these threads call it with no
 * lock, so VPs never wait for each other on their own MSRs; connection
 * handlers run on them with no lock held.
 */
#ifndef HVKIT_PROCESS_PARTITION_H
#define HVKIT_PROCESS_PARTITION_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hv.h"
#include "partition.h"

struct process_partition;

struct process_partition_config {
	uint32_t vp_count;      /* 1..HVKIT_PROC_MAX_VPS */
	uint64_t memory_size;   /* guest RAM in bytes, a 4 KiB multiple */
	uint32_t hv_features;   /* HV_OFFER_*; 0 means HV_OFFER_ALL */
	uint64_t tsc_hz;        /* 0: calibrate */
	const char *guest_path; /* program to run as the guest */
	char *const *guest_argv; /* its argv (argv[0] included); NULL: {guest_path} */
	/* Diagnostics, one line at a time; NULL: stderr with "hvkit: ". */
	void (*log)(void *ctx, const char *fmt, va_list ap);
	void *log_ctx;
	/* Called once hv exists, before the guest starts: add connections
	 * and devices here. A
	 * negative return aborts the start with that error. Optional. */
	int (*prepare)(void *ctx, struct process_partition *pp);
	void *prepare_ctx;
	/* The guest reported a crash (optional). */
	void (*crash)(void *ctx, uint32_t vp, const uint64_t params[5], const char *message,
		      uint32_t len);
	void *crash_ctx;
};

/* Sets the partition up and starts the guest: process_partition_new, the
 * config's prepare callback, then process_partition_launch. 0 or a
 * negative errno (nothing is left behind). */
int process_partition_start(const struct process_partition_config *cfg,
			    struct process_partition **out);

/* The partition's memory, hv and channels, without threads or guest:
 * attach devices, then launch. Free with process_partition_stop. */
int process_partition_new(const struct process_partition_config *cfg,
			  struct process_partition **out);

/* Starts the threads and the guest program. */
int process_partition_launch(struct process_partition *pp);

/* Ends the guest (SIGKILL if still running) and joins every thread; hv
 * stays usable, for tearing down what sits on it. Idempotent. */
void process_partition_halt(struct process_partition *pp);

/* Waits up to timeout_ms (-1: forever) for the guest to exit. 0 and
 * *status (as from waitpid) when it has, once the partition has finished
 * reacting to it (stats are final); -ETIMEDOUT otherwise. */
int process_partition_wait(struct process_partition *pp, int timeout_ms, int *status);
/* Polls readable once the guest process has ended (its pidfd; a
 * partition failure kills it). */
int process_partition_end_fd(struct process_partition *pp);

/* Halts (if not yet) and frees everything. */
void process_partition_stop(struct process_partition *pp);

/* The device lock (partition.h): the owner's devices serialize on it;
 * the partition takes it for nothing on its hot paths. */
void process_partition_lock(struct process_partition *pp);
void process_partition_unlock(struct process_partition *pp);
struct hv_partition *process_partition_hv(struct process_partition *pp);
const struct guest_memory *process_partition_memory(const struct process_partition *pp);

/* The partition interface to it (partition.h), for code that drives any
 * backend. */
struct partition *process_partition_base(struct process_partition *pp);

/* Reference time now (100 ns units), for calls into hv. */
uint64_t process_partition_now(const struct process_partition *pp);

/* Tell the timer thread that deadlines changed (after hv calls made by the
 * owner that can arm timers). */
void process_partition_kick(struct process_partition *pp);

/* Raises `vector` on VP vp (its pending bit and its eventfd). 0 or -EINVAL
 * for a VP the partition does not have. */
int process_partition_interrupt(struct process_partition *pp, uint32_t vp, uint8_t vector);

struct process_partition_stats {
	uint64_t requests;        /* socket requests served */
	uint64_t fast_events;     /* signals taken from connection eventfds */
	uint64_t interrupts;      /* vectors raised */
	uint64_t bad_requests;    /* answered BADREQ */
	bool failed;              /* the partition was torn down ... */
	char failure[128];        /* ... for this reason */
	pid_t guest_pid;
};
void process_partition_get_stats(struct process_partition *pp,
				 struct process_partition_stats *out);

/* The TSC frequency measured against CLOCK_MONOTONIC_RAW (~20 ms). */
uint64_t process_partition_calibrate_tsc(void);

#endif /* HVKIT_PROCESS_PARTITION_H */
