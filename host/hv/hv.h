/* SPDX-License-Identifier: MIT */
/*
 * The Hyper-V hypervisor interface, emulated for one partition: CPUID
 * leaves, synthetic MSRs, hypercalls, the SynIC, synthetic timers, the
 * reference counter and the reference TSC page. KVM-agnostic and pure: the
 * caller (a partition backend: KVM, process) delivers traps, passes the
 * current time in, and is called back only to inject an interrupt, to
 * re-arm its timer, to report a crash, and to log.
 *
 * Time. The partition's reference time counts 100 ns units since the
 * partition started. It is derived from the guest's TSC:
 *     ref = (guest_tsc - tsc_at_start) * 10^7 / tsc_hz
 * with exactly the arithmetic of the TSC page, so the reference counter MSR
 * and a guest reading the TSC page agree to the tick. Every call that needs
 * the time takes `now`, a reference time from hv_ref_time().
 *
 * Threads. Every call may come from any thread; hv locks what it touches.
 * A VP's own state (SynIC, message queues, timers, assist page) is under
 * that VP's lock, the partition-wide MSRs under a partition lock taken
 * first where both are needed, the connection table under a reader-writer
 * lock; counters are atomics and the time parameters a sequence count, so
 * reference time, VP_INDEX and a VP's SynIC and timer MSRs never wait for
 * another VP. Callers need no lock of their own, and may hold theirs
 * (the VMBus server holds its lock when it posts).
 * Calls out: inject, timers_changed and log may come with a VP's lock
 * held, so they must not call into hv or wait for a lock whose holder
 * might; crash and the connection handlers come with no hv lock held.
 *
 * Errors. Nothing the guest does crashes the host or touches host memory
 * outside guest RAM: a bad MSR access is -EINVAL (inject #GP), a bad
 * hypercall is a Hyper-V status, and each kind of misuse is logged once.
 */
#ifndef HVKIT_HOST_HV_H
#define HVKIT_HOST_HV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "guest_memory.h"
#include "hvkit/tlfs.h"

/* Enlightenments a partition may offer; hv_config.features. */
#define HV_OFFER_TIME_REF_COUNT (1u << 0) /* reference counter MSR */
#define HV_OFFER_SYNIC (1u << 1)
#define HV_OFFER_STIMER (1u << 2)         /* needs SYNIC */
#define HV_OFFER_STIMER_DIRECT (1u << 3)  /* needs STIMER */
#define HV_OFFER_TSC_PAGE (1u << 4)
#define HV_OFFER_FREQUENCY_MSRS (1u << 5) /* needs apic_hz */
#define HV_OFFER_CRASH_MSRS (1u << 6)
#define HV_OFFER_INVARIANT_TSC (1u << 7)
#define HV_OFFER_ALL ((1u << 8) - 1)
/* The VP assist page MSR is always accepted (Linux 6.1 writes it whatever
 * CPUID says) and its feature bit never advertised: that bit also offers
 * the APIC access MSRs, which need a LAPIC hvkit does not emulate. */

struct hv_config {
	uint32_t vp_count;    /* 1..HV_MAX_VPS */
	uint64_t tsc_hz;      /* guest TSC frequency */
	uint64_t apic_hz;     /* LAPIC timer frequency; 0 if unknown */
	uint64_t tsc_at_start; /* guest TSC value at reference time 0 */
	uint32_t features;    /* HV_OFFER_* */
	/* Recommend that the guest not use auto-EOI (CPUID 0x40000004 bit 9).
	 * Set it whenever interrupts go through a normal LAPIC. */
	bool deprecate_auto_eoi;
	/* The backend can honour a SINT's auto-EOI bit. */
	bool auto_eoi_supported;
	/* Log the guest's enlightenment milestones as they happen (guest OS
	 * id, hypercall page, TSC page, SynIC per VP, stimer mode). */
	bool log_milestones;
	/* Written at the start of the hypercall page when the guest enables
	 * it: code that traps to the backend (KVM: port I/O), then ret. May be
	 * empty where the guest calls the backend directly (process). */
	const uint8_t *hypercall_code;
	uint32_t hypercall_code_len; /* <= 4096 */
};

#define HV_MAX_VPS 256

/* What hv needs from the backend. */
struct hv_host_ops {
	/* Raise `vector` on VP `vp` (edge). auto_eoi: the SINT asked for it
	 * and the partition supports it; the backend completes it itself. */
	void (*inject)(void *ctx, uint32_t vp, uint8_t vector, bool auto_eoi);
	/* A timer deadline may have moved earlier: call hv_scan() soon. */
	void (*timers_changed)(void *ctx);
	/* The guest reported a crash through the crash MSRs. message is
	 * NULL or the guest's text (not NUL-terminated, len bytes), made
	 * printable ASCII lines: anything else is a '?'. */
	void (*crash)(void *ctx, uint32_t vp, const uint64_t params[5], const char *message,
		      uint32_t len);
	/* A line of diagnostics (no trailing newline). */
	void (*log)(void *ctx, const char *fmt, va_list ap);
};

struct hv_partition;

/* NULL (and errno set) if the configuration is invalid. mem must outlive
 * the partition; guest RAM may grow later only by adding regions. */
struct hv_partition *hv_partition_new(const struct hv_config *cfg,
				      const struct guest_memory *mem,
				      const struct hv_host_ops *ops, void *ctx);
void hv_partition_free(struct hv_partition *p);

/* ---- Time ---- */

/* Reference time (100 ns units) at guest TSC value tsc. */
uint64_t hv_ref_time(const struct hv_partition *p, uint64_t tsc);

/* Guest TSC value at reference time ref (rounded up): to arm host timers. */
uint64_t hv_ref_to_tsc(const struct hv_partition *p, uint64_t ref);

/* The guest TSC runs at a new frequency from guest TSC value `tsc` on
 * (migration, host change): reference time continues without a jump, and
 * an enabled TSC page is rewritten (sequence 0 while it changes). */
void hv_set_tsc_frequency(struct hv_partition *p, uint64_t tsc_hz, uint64_t tsc);

/* After hv_load, on a host whose guest TSC runs at another frequency than
 * the saving one's (this partition's is hv_config.tsc_hz): reference time
 * re-scaled at guest TSC value tsc (hv_set_tsc_frequency: continuous, the
 * TSC page rewritten through its sequence while the guest may read it),
 * as Hyper-V does after a live migration. True if it had to. */
bool hv_adopt_tsc_frequency(struct hv_partition *p, uint64_t tsc);

/* ---- CPUID ---- */

/* The Hyper-V leaves 0x40000000..max. Returns false for leaves it does not
 * own (the caller answers those). Only what is offered is advertised. */
bool hv_cpuid(const struct hv_partition *p, uint32_t leaf, uint32_t regs[4]);

/* ---- MSRs ---- */

/* True for the synthetic MSR range the backend must route here. */
bool hv_msr_is_synthetic(uint32_t msr);

/* 0, or -EINVAL: the guest gets #GP. */
int hv_msr_read(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t now,
		uint64_t *value);
int hv_msr_write(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t value,
		 uint64_t now);

/* ---- Hypercalls ---- */

struct hv_hypercall {
	uint64_t control; /* RCX */
	uint64_t input;   /* RDX: input GPA, or the first 8 bytes of a fast call */
	uint64_t output;  /* R8: output GPA, or the next 8 bytes of a fast call */
};

/* Executes one hypercall from VP vp; returns the value for RAX (status in
 * 15:0, reps completed in 43:32). */
uint64_t hv_hypercall(struct hv_partition *p, uint32_t vp, const struct hv_hypercall *hc,
		      uint64_t now);

/* A message the guest posted with HvPostMessage, already validated and
 * copied out of guest memory. */
struct hv_posted_message {
	uint32_t connection_id;
	uint32_t message_type;
	uint32_t payload_size; /* <= 240 */
	uint8_t payload[HV_MESSAGE_PAYLOAD_BYTES];
};

/* Handlers return a Hyper-V status for the guest (HV_STATUS_SUCCESS,
 * HV_STATUS_INSUFFICIENT_BUFFERS to make it retry, ...). They run inside
 * the hypercall on the calling VP's thread, with no hv lock held, and may
 * call back into hv (post messages, signal events); they take whatever
 * lock their own state needs. A call can still be under way when
 * hv_connection_remove returns (the connection was looked up just
 * before), so ctx must stay valid for as long as the partition runs. */
typedef uint16_t (*hv_message_handler)(void *ctx, uint32_t vp,
				       const struct hv_posted_message *msg);
typedef uint16_t (*hv_event_handler)(void *ctx, uint32_t vp, uint16_t flag_number);

/* Connection ids are 24 bits; messages and events have a namespace each
 * (as KVM and QEMU), so a message and an event connection may share an id.
 * -EEXIST if taken (for that kind), -EINVAL if out of range. */
int hv_connection_add_message(struct hv_partition *p, uint32_t connection_id,
			      hv_message_handler fn, void *ctx);
int hv_connection_add_event(struct hv_partition *p, uint32_t connection_id,
			    hv_event_handler fn, void *ctx);
void hv_connection_remove(struct hv_partition *p, bool is_event, uint32_t connection_id);

/* For backends with a fast signal path (ioeventfd-like): the handler of an
 * event connection, or false. */
bool hv_connection_find_event(struct hv_partition *p, uint32_t connection_id,
			      hv_event_handler *fn, void **ctx);

/* ---- SynIC, host side ---- */

/*
 * Queues a message for SINT `sint` of VP `vp` and delivers it as soon as the
 * slot is free (now if it is). Messages of one SINT arrive in order. 0;
 * -EINVAL for a bad vp, sint, type or size; -EAGAIN if that SINT's queue is
 * full (the caller retries later).
 */
int hv_synic_post(struct hv_partition *p, uint32_t vp, uint32_t sint, uint32_t message_type,
		  const void *payload, uint32_t payload_size, uint64_t sender);

/* Messages queued for (vp, sint), not yet in the slot. */
uint32_t hv_synic_queued(struct hv_partition *p, uint32_t vp, uint32_t sint);
/* How many queued messages of (vp, sint) ever went into the slot. With
 * hv_synic_queued right after a post, a poster can tell when its message
 * has left the queue (taken reaches taken-then + queued-then). */
uint64_t hv_synic_taken(struct hv_partition *p, uint32_t vp, uint32_t sint);

/* Enough for every offer of a full VMBus (2047 relids) and its control
 * messages in one burst: the VMBus server has no retry path for offers. */
#define HV_SYNIC_QUEUE_MAX 4096

/*
 * Sets event flag `flag` in SINT `sint`'s event flags of VP `vp`. If the
 * flag was clear, interrupts the VP on that SINT's vector (unless masked).
 * 0; -EINVAL for bad arguments; -ENODEV if the event page is not enabled.
 */
int hv_synic_signal(struct hv_partition *p, uint32_t vp, uint32_t sint, uint32_t flag);

/*
 * Raises SINT `sint`'s interrupt on VP `vp` once, with neither a message nor
 * an event flag (QEMU's hyperv_sint_route_set_sint: test devices). 0;
 * -EINVAL for bad arguments; -ENODEV if the SINT is masked (nothing sent).
 */
int hv_synic_assert(struct hv_partition *p, uint32_t vp, uint32_t sint);

/* ---- Timers ---- */

/* Fires every synthetic timer due at `now` and returns the next deadline
 * (reference time), or UINT64_MAX if none is armed. */
uint64_t hv_scan(struct hv_partition *p, uint64_t now);

/* ---- Observation (boot milestones, status, tests) ---- */

struct hv_vp_state {
	bool synic_enabled;   /* SCONTROL enable */
	uint64_t simp, siefp; /* MSR values */
	uint64_t sint[HV_SYNIC_SINT_COUNT];
	uint64_t stimer_config[HV_STIMER_COUNT];
	uint64_t stimer_count[HV_STIMER_COUNT];
};

struct hv_partition_state {
	uint64_t guest_os_id;
	uint64_t hypercall_msr;
	uint64_t reference_tsc_msr;
	uint32_t tsc_page_sequence;
	uint64_t tsc_hz;            /* the guest TSC frequency reference time follows */
	uint64_t crash_params[5];
	uint64_t bad_msr_accesses;  /* #GPs given */
	uint64_t bad_hypercalls;    /* non-success statuses from validation */
	uint64_t short_stimer_periods; /* periodic timers armed below the minimum */
};

void hv_get_state(struct hv_partition *p, struct hv_partition_state *out);
int hv_get_vp_state(struct hv_partition *p, uint32_t vp, struct hv_vp_state *out);

/* ---- State (snapshot, restore; host/hv/state.c) ---- */

/*
 * The partition's state as a versioned record with a CRC-32: the
 * partition-wide MSRs and time parameters, and per VP its SynIC
 * registers, queued messages and timers (deadlines in reference time).
 * Not guest RAM (the SynIC, hypercall and TSC pages travel with it), not
 * the connections (their owners add them again), not the configuration
 * (a record loads into a partition of the same VP count and offers).
 * The caller quiesces first: no VP runs and nothing posts meanwhile.
 *
 * hv_save: 0 and the record's length in *len; -ENOSPC (and the length
 * needed in *len) if cap is too small.
 * hv_load: all or nothing: 0, or -EINVAL (truncated, corrupt, another
 * version or VP count, a value no guest could have set) or -ENOMEM with
 * the partition unchanged.
 */
int hv_save(struct hv_partition *p, void *buf, size_t cap, size_t *len);
int hv_load(struct hv_partition *p, const void *buf, size_t len);

#endif /* HVKIT_HOST_HV_H */
