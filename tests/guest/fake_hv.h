/* SPDX-License-Identifier: MIT */
/*
 * A scripted little Hyper-V behind a struct hv_port, for testing guest/hv
 * without a hypervisor: a CPUID table, an MSR store with the rules the
 * library relies on (and #GP on demand), a SynIC whose pages the test
 * writes and whose vectors it raises by calling the registered handler,
 * recorded hypercalls, a fake TSC and a page allocator with fake GPAs.
 */
#ifndef HVKIT_TESTS_FAKE_HV_H
#define HVKIT_TESTS_FAKE_HV_H

#include <stdbool.h>
#include <stdint.h>

#include "hv_guest.h"
#include "port.h"

#define FAKE_MAX_VPS 4
#define FAKE_MSR_COUNT 0x200 /* 0x40000000..0x400001FF */
#define FAKE_MAX_WRITES 256
#define FAKE_MAX_CALLS 32
#define FAKE_MAX_ALLOCS 256
#define FAKE_MAX_REFUSED 4
#define FAKE_GPA_BASE 0x10000000ull

struct fake_msr_write {
	uint32_t vp;
	uint32_t msr;
	uint64_t value;
};

struct fake_call {
	uint32_t vp;
	uint64_t control, input, output;
	bool input_mapped;              /* input named a page we allocated */
	uint8_t input_block[256];       /* its first 256 bytes, at call time */
};

struct fake_alloc {
	void *p;
	uint32_t count;
	uint64_t gpa;
};

struct fake_handler {
	void (*fn)(void *arg);
	void *arg;
};

struct hv_port_lock {
	bool in_use;
	int held;
};
#define FAKE_MAX_LOCKS 128

/* An auto-reset event: a flag. Nothing runs concurrently in the fake, so a
 * wait that finds it clear first lets the scripted host run (on_wait), then
 * times out at once, advancing the fake clock by the timeout. */
struct hv_port_event {
	bool in_use;
	bool set;
};
#define FAKE_MAX_EVENTS 64
/* Fake time past which a wait is taken for a hang: abort. */
#define FAKE_HANG_NS (3600ull * 1000000000ull)

struct fake_hv {
	struct hv_port port;

	/* CPUID: leaf 1 ECX and leaves 0x40000000..0x40000005. */
	uint32_t cpuid1_ecx;
	uint32_t hv_leaf[6][4];

	/* MSRs: per VP, plus one row for the partition-wide ones. */
	uint64_t msr[FAKE_MAX_VPS + 1][FAKE_MSR_COUNT];
	uint32_t vp_index[FAKE_MAX_VPS]; /* what HV_MSR_VP_INDEX reads */
	uint32_t refuse_read[FAKE_MAX_REFUSED];  /* #GP on rdmsr; 0 = unused */
	uint32_t refuse_write[FAKE_MAX_REFUSED]; /* #GP on wrmsr */
	bool hypercall_ignores_enable;   /* the enable bit never reads back */
	uint64_t crash_ctl_caps;         /* what HV_MSR_CRASH_CTL reads */
	uint64_t ref_time;               /* what HV_MSR_TIME_REF_COUNT reads */
	struct fake_msr_write writes[FAKE_MAX_WRITES];
	uint32_t write_count;
	uint32_t eom_count[FAKE_MAX_VPS];

	/* Hypercalls. A hook, if set, answers them (its return is RAX) after
	 * they are recorded; otherwise they return hypercall_result. */
	struct fake_call calls[FAKE_MAX_CALLS];
	uint32_t call_count;
	uint64_t hypercall_result;
	uint64_t (*hypercall_hook)(void *arg, uint64_t control, uint64_t input,
				   uint64_t output);
	void *hook_arg;

	/* TSC: rdtsc returns tsc; while bump_sequence > 0, each rdtsc bumps
	 * the TSC page's sequence and installs next_scale/next_offset. */
	uint64_t tsc;
	uint32_t rdtsc_count;
	uint32_t bump_sequence;
	uint64_t next_scale;
	int64_t next_offset;

	/* Memory. */
	struct fake_alloc allocs[FAKE_MAX_ALLOCS];
	uint32_t live_allocs;
	uint64_t next_gpa;
	int alloc_fail_after; /* <0: never; n: the (n+1)th allocation fails */

	/* Interrupts, current VP, locks, log. */
	struct fake_handler handlers[256];
	uint32_t current_vp;
	struct hv_port_lock locks[FAKE_MAX_LOCKS]; /* a pool: nothing to leak */
	int lock_errors;
	int locks_live;
	uint32_t log_count;

	/* Events and time. event_wait on a clear event calls on_wait (with
	 * hook_arg) for as long as it returns true and the event stays clear:
	 * the scripted host delivers what it has. monotonic_ns is now_ns. */
	struct hv_port_event events[FAKE_MAX_EVENTS];
	int events_live;
	int event_errors;
	bool (*on_wait)(void *arg);
	uint32_t event_waits, event_timeouts;
	uint64_t now_ns;
};

/* A Hyper-V offering everything the library uses, direct-mode stimers,
 * crash MSRs; VP n's index is 100 + n. */
void fake_hv_init(struct fake_hv *f);
/* Frees whatever the library left allocated. */
void fake_hv_destroy(struct fake_hv *f);

/* The stored value of an MSR on a VP (partition-wide MSRs ignore vp). */
uint64_t fake_msr(const struct fake_hv *f, uint32_t vp, uint32_t msr);
void fake_set_msr(struct fake_hv *f, uint32_t vp, uint32_t msr, uint64_t value);
/* Number of writes to msr, and the value of the nth (0-based). */
uint32_t fake_write_count(const struct fake_hv *f, uint32_t msr);
uint64_t fake_write_value(const struct fake_hv *f, uint32_t msr, uint32_t nth);
/* Index in the write log of the first write to msr at or after `from`, or -1. */
int fake_write_index(const struct fake_hv *f, uint32_t msr, uint32_t from);

/* The GPA of a pointer into an allocation, or HV_GPA_INVALID. */
uint64_t fake_gpa(const struct fake_hv *f, const void *p);
/* The host's view of a GPA: pointer into the allocation holding it. */
void *fake_gpa_ptr(const struct fake_hv *f, uint64_t gpa);

/* Raises a vector on VP vp: calls its handler with vp current. false if no
 * handler is registered. */
bool fake_raise(struct fake_hv *f, uint32_t vp, uint8_t vector);

#endif /* HVKIT_TESTS_FAKE_HV_H */
