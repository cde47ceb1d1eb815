/* SPDX-License-Identifier: MIT */
/*
 * Private state of the hypervisor interface, shared by its files:
 *   hv_partition.c  config, new/free, time and TSC page, CPUID,
 *                   partition-wide MSRs, crash, logging, state getters
 *   msr.c           MSR routing: which feature an MSR needs, #GP accounting
 *   synic.c         SynIC MSRs, message queues and slots, event flags
 *   stimer.c        synthetic timers and hv_scan
 *   hypercall.c     hypercall dispatcher and the connection registry
 * Like Xen's Viridian and OpenVMM's hv1 emulator, partition-wide state sits
 * in struct hv_partition and per-VP state in struct hv_vp.
 */
#ifndef HVKIT_HOST_HV_INTERNAL_H
#define HVKIT_HOST_HV_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv.h"

#define HV_ATTR_PRINTF(f, a) __attribute__((format(printf, f, a)))

/*
 * A FIFO of host messages for one (VP, SINT), kept as ready-made slot
 * images. A growable ring: most SINTs never queue anything, so nothing is
 * allocated until a message has to wait.
 */
struct hv_msg_queue {
	struct hv_message *items;
	uint32_t head;  /* index of the oldest message */
	uint32_t count;
	uint32_t cap;   /* power of two, <= HV_SYNIC_QUEUE_MAX */
	uint64_t taken; /* messages ever moved into the slot */
};

/* The shortest period a periodic synthetic timer runs at, in 100 ns
 * units: 200 us (stimer.c, stimer_period). */
#define HV_STIMER_MIN_PERIOD 2000u

struct hv_stimer {
	uint64_t config;
	uint64_t count;
	bool armed;
	uint64_t expiration;        /* reference time, valid while armed */
	/* A one-shot message-mode timer expired but its slot was busy or
	 * unusable; the message goes in on a later EOM (like KVM's
	 * msg_pending). */
	bool message_pending;
	uint64_t pending_expiration;
	bool mode_logged;           /* log_milestones: its mode was reported */
};

/* Everything of one VP; under its lock (see hv.h, Threads). */
struct hv_vp {
	pthread_mutex_t lock;
	uint64_t vp_assist_page;
	uint64_t scontrol;
	uint64_t simp;
	uint64_t siefp;
	uint64_t sint[HV_SYNIC_SINT_COUNT];
	struct hv_msg_queue queue[HV_SYNIC_SINT_COUNT];
	struct hv_stimer stimer[HV_STIMER_COUNT];
};

struct hv_connection {
	uint32_t id;
	bool is_event;
	hv_message_handler on_message;
	hv_event_handler on_event;
	void *ctx;
};

/* One-time log slots besides per-MSR and per-status ones. */
enum hv_log_once {
	HV_LOG_BAD_VP,
	HV_LOG_QUEUE_FULL,
	HV_LOG_BAD_TSC_HZ,
	HV_LOG_BAD_STIMER_VECTOR,
	HV_LOG_SHORT_STIMER_PERIOD,
	HV_LOG_TSC_PAGE_GONE,
	HV_LOG_CRASH_MESSAGE,
	HV_LOG_COUNT
};
_Static_assert(HV_LOG_COUNT <= 64, "hv_log_once bits fit logged_misc");

/* Per-MSR log bits: the synthetic range, plus one for everything else. */
#define HV_MSR_LOG_BITS (HV_MSR_RANGE_LAST - HV_MSR_RANGE_FIRST + 2)

/*
 * Locks (hv.h, Threads): `lock` for the partition-wide state below it,
 * each VP's own for that VP, `conn_lock` for the connection table; the
 * order is lock, then a VP's lock. The counters and log-once bits are
 * atomics, and the time parameters a sequence count, so the hot paths
 * (a VP's own MSRs, reference time) take no partition-wide lock.
 */
struct hv_partition {
	struct hv_config cfg; /* cfg.hypercall_code points at our copy */
	const struct guest_memory *mem;
	struct hv_host_ops ops; /* zeroed members: not called */
	void *ctx;

	/* Reference time = ((tsc * tsc_scale) >> 64) + tsc_offset (mod 2^64),
	 * exactly what the guest computes from the TSC page. Written under
	 * `lock` inside a time_seq write (odd while it changes:
	 * hv_time_params_set), read without a lock (hv_partition.c,
	 * time_params). */
	uint32_t time_seq;
	uint64_t tsc_hz;
	uint64_t tsc_scale;
	uint64_t tsc_offset;

	pthread_mutex_t lock;
	uint64_t guest_os_id;
	uint64_t hypercall_msr;
	uint64_t reference_tsc_msr;
	uint32_t tsc_sequence; /* last value written to the TSC page */
	uint64_t tsc_invariant_control;
	uint64_t crash_params[5];

	/* Atomics. */
	uint64_t bad_msr_accesses;
	uint64_t bad_hypercalls;
	uint64_t short_stimer_periods; /* periodic timers run at the minimum period */
	uint64_t logged_msr[(HV_MSR_LOG_BITS + 63) / 64];
	uint64_t logged_status; /* bit per status (status >= 63 share bit 63) */
	uint64_t logged_misc;   /* bit per enum hv_log_once */

	pthread_rwlock_t conn_lock;
	struct hv_connection *conns;
	uint32_t conn_count;
	uint32_t conn_cap;

	uint8_t *hypercall_code; /* copy of cfg.hypercall_code, or NULL */
	struct hv_vp vps[];
};

/* hv_partition.c */
void hv_log(const struct hv_partition *p, const char *fmt, ...) HV_ATTR_PRINTF(2, 3);
/* True the first time it is called for `what` on this partition. */
bool hv_log_first(struct hv_partition *p, enum hv_log_once what);
/* True the first time bit `bit` of the bitmap `bits` is set (atomic). */
bool hv_first_bit(uint64_t *bits, uint32_t bit);
/* Adds one to a counter read by hv_get_state (atomic). */
void hv_count(uint64_t *counter);
/* The TSC frequency, scale and offset, as one change readers of
 * reference time never see half done. With p->lock held. */
void hv_time_params_set(struct hv_partition *p, uint64_t hz, uint64_t scale, uint64_t offset);
void hv_inject(struct hv_partition *p, uint32_t vp, uint8_t vector, bool auto_eoi);
int hv_partition_msr_read(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t now,
			  uint64_t *value);
int hv_partition_msr_write(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t value);

/* synic.c; the msr and timer functions with the VP's lock held */
int hv_synic_msr_read(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t *value);
int hv_synic_msr_write(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t value,
		       uint64_t now);
/* Tries to put timer `index`'s expiry message into its SINT's slot. True if
 * it went in (and the SINT's vector was raised). A busy slot gets the
 * pending flag, so the guest writes EOM once it frees the slot. */
bool hv_synic_timer_message(struct hv_partition *p, uint32_t vp, uint32_t index,
			    uint64_t expiration, uint64_t now);
void hv_synic_free(struct hv_partition *p);

/* stimer.c; the msr functions with the VP's lock held */
int hv_stimer_msr_read(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t *value);
int hv_stimer_msr_write(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t value,
			uint64_t now);
/* The message-mode SINT a timer's pending message waits for, or -1. */
int hv_stimer_pending_sint(const struct hv_stimer *t);
void hv_stimer_build_message(uint32_t index, uint64_t expiration, uint64_t now,
			     struct hv_message *msg);
/* A pending one-shot message went in: the timer is done. */
void hv_stimer_message_delivered(struct hv_stimer *t);

/* hypercall.c */
void hv_connections_free(struct hv_partition *p);

#endif /* HVKIT_HOST_HV_INTERNAL_H */
