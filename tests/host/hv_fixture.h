/* SPDX-License-Identifier: MIT */
/*
 * A fake partition backend for the hypervisor interface tests: guest RAM
 * from aligned_alloc, and records of everything hv calls back (interrupt
 * injections, timer re-arm requests, crashes, log lines, messages and
 * events reaching the connection handlers). Time is whatever the test says.
 */
#ifndef HVKIT_TESTS_HV_FIXTURE_H
#define HVKIT_TESTS_HV_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "hv.h"

/* Guest RAM: two regions with a hole between them. */
#define FIX_RAM0_GPA 0x0ull
#define FIX_RAM0_SIZE (64 * 4096ull)
#define FIX_RAM1_GPA 0x100000ull
#define FIX_RAM1_SIZE (16 * 4096ull)
#define FIX_NOT_RAM 0x80000000ull /* never guest RAM */

#define FIX_TSC_HZ 2500000000ull /* 2.5 GHz */
#define FIX_APIC_HZ 1000000000ull
#define FIX_TSC_AT_START 123456789ull

#define FIX_MAX_RECORDS 4096
#define FIX_LOG_LINE 256

struct fix_injection {
	uint32_t vp;
	uint8_t vector;
	bool auto_eoi;
};

struct fix_crash {
	uint32_t vp;
	uint64_t params[5];
	bool has_message;
	uint32_t len;
	char message[4096];
};

struct fix_posted {
	uint32_t vp;
	struct hv_posted_message msg;
};

struct fix_event {
	uint32_t vp;
	uint16_t flag;
};

struct fixture {
	struct guest_memory mem;
	uint8_t *ram0;
	uint8_t *ram1;
	struct hv_config cfg;
	struct hv_partition *p;

	struct fix_injection inj[FIX_MAX_RECORDS];
	uint32_t n_inj;
	uint32_t timers_changed;
	struct fix_crash crash;
	uint32_t n_crash;
	char log[64][FIX_LOG_LINE];
	uint32_t n_log;

	/* Connection handlers: what they saw and what they answer. */
	struct fix_posted posted[64];
	uint32_t n_posted;
	struct fix_event events[64];
	uint32_t n_events;
	uint16_t handler_status;
};

/* A configuration with these offers, the fixture's clock and no code. */
struct hv_config fix_config(uint32_t features, uint32_t vp_count);

/* Allocates RAM and a partition with cfg (NULL: fix_config(HV_OFFER_ALL, 2)).
 * The fixture owns everything; fix_free() releases it. */
struct fixture *fix_new(const struct hv_config *cfg);
void fix_free(struct fixture *f);

/* Host pointer to a guest GPA in the fixture's RAM (asserts it is RAM). */
void *fix_ptr(struct fixture *f, uint64_t gpa);

/* MSR helpers; rdmsr/wrmsr_ok assert success. */
int fix_wrmsr(struct fixture *f, uint32_t vp, uint32_t msr, uint64_t value, uint64_t now);
void fix_wrmsr_ok(struct fixture *f, uint32_t vp, uint32_t msr, uint64_t value, uint64_t now);
uint64_t fix_rdmsr(struct fixture *f, uint32_t vp, uint32_t msr);

/* SCONTROL on, SIMP and SIEFP enabled at the given pages, SINT `sint`
 * unmasked on `vector`. */
void fix_synic_on(struct fixture *f, uint32_t vp, uint64_t simp, uint64_t siefp, uint32_t sint,
		  uint8_t vector);

/* Reads slot `sint` of the SIMP page at gpa. */
struct hv_message fix_slot(struct fixture *f, uint64_t simp, uint32_t sint);
/* The guest consumes a slot: type := NONE, and EOM if it was pending
 * (Linux vmbus_signal_eom). Returns whether it wrote EOM. */
bool fix_consume(struct fixture *f, uint32_t vp, uint64_t simp, uint32_t sint, uint64_t now);

/* Message and event handlers recording into the fixture (ctx = fixture). */
uint16_t fix_on_message(void *ctx, uint32_t vp, const struct hv_posted_message *msg);
uint16_t fix_on_event(void *ctx, uint32_t vp, uint16_t flag);

/* The host ops recording into the fixture. */
extern const struct hv_host_ops fix_ops;

#endif /* HVKIT_TESTS_HV_FIXTURE_H */
