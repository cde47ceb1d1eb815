/* SPDX-License-Identifier: MIT */
/*
 * The guest's Hyper-V enlightenments, freestanding, behind guest/port:
 * detection, guest OS id, hypercall page and calls, VP index, SynIC (SIMP,
 * SIEFP, SINTs, EOM as Linux does it), the reference TSC page clock with its
 * MSR fallback, the stimer0 clock event (direct mode if offered, message
 * mode otherwise) and the crash-MSR panic report.
 *
 * Behaviour follows Linux 6.1 (arch/x86/kernel/cpu/mshyperv.c,
 * arch/x86/hyperv/hv_init.c, drivers/hv/hv.c, drivers/hv/vmbus_drv.c,
 * drivers/clocksource/hyperv_timer.c) so that a host serving Linux serves
 * this library too, and the other way round.
 *
 * Everything read from the host is checked before use: a SIMP slot's
 * payload size, a timer message's size.
 */
#ifndef HVKIT_GUEST_HV_H
#define HVKIT_GUEST_HV_H

#include <stdbool.h>
#include <stdint.h>

#include "hvkit/tlfs.h"
#include "port.h"

#define HV_GUEST_MAX_VPS 64

/*
 * hvkit's own guest OS id (hyperv-tlfs.h layout): open source (bit 63), OS
 * type 0, OS id 0x48 ('H') in bits 55:48, version 0x00000100 in bits 47:16.
 */
#define HV_GUEST_OS_ID_HVKIT                                                  \
	(HV_GUEST_OS_ID_OPEN_SOURCE | (0x48ull << 48) | (0x00000100ull << 16))

/* What CPUID says. */
struct hv_guest_features {
	uint32_t max_leaf;   /* 0x40000000 EAX */
	uint32_t features;   /* 0x40000003 EAX: HV_FEAT_* */
	uint32_t privileges; /* 0x40000003 EBX: HV_PRIV_* */
	uint32_t misc;       /* 0x40000003 EDX: HV_FEAT_X64_* */
	uint32_t hints;      /* 0x40000004 EAX: HV_HINT_* */
	uint32_t max_vps;    /* 0x40000005 EAX */
};

/*
 * 0 if the CPU reports a hypervisor, it is Hyper-V ("Microsoft Hv", a max
 * leaf in [0x40000005, 0x4000FFFF]) and it offers the hypercall and VP index
 * MSRs, as Linux requires; -ENODEV otherwise. *out is filled either way with
 * what was found (zeros if nothing).
 */
int hv_guest_detect(const struct hv_port *port, struct hv_guest_features *out);

enum hv_stimer_mode {
	HV_STIMER_MODE_NONE = 0,   /* not offered: no clock event */
	HV_STIMER_MODE_DIRECT,     /* a vector straight to the VP */
	HV_STIMER_MODE_MESSAGE,    /* a timer message in the SINT slot */
};

struct hv_guest_config {
	uint32_t vp_count;     /* VPs that will call hv_guest_vp_init */
	uint64_t guest_os_id;  /* 0: hvkit's own id */
	uint8_t sint_vector;   /* vector for VMBUS_MESSAGE_SINT; 0: 0xF3 as Linux */
	bool prefer_message_mode; /* use message-mode stimers even if direct is offered */
};

/* A message taken out of a SIMP slot, validated (payload_size <= 240). */
struct hv_guest_message {
	uint32_t message_type;
	uint32_t payload_size;
	uint64_t sender;
	uint8_t payload[HV_MESSAGE_PAYLOAD_BYTES];
};

/* Called on the VP that received it, after the slot was released (EOM). */
typedef void (*hv_guest_message_fn)(void *arg, uint32_t vp, uint32_t sint,
				    const struct hv_guest_message *msg);
/* The SINT's interrupt fired: event flags may be set (take them with
 * hv_guest_take_events). Called before any message of the same interrupt. */
typedef void (*hv_guest_events_fn)(void *arg, uint32_t vp, uint32_t sint);
/* stimer0 expired on this VP. */
typedef void (*hv_guest_timer_fn)(void *arg, uint32_t vp);

struct hv_port_lock;

struct hv_guest_vp {
	bool online;
	uint32_t vp_index;                 /* from HV_MSR_VP_INDEX */
	struct hv_message_page *simp;      /* NULL until the SynIC is on */
	struct hv_event_flags_page *siefp;
	uint8_t *post_page;                /* HvPostMessage input block */
	struct hv_port_lock *post_lock;    /* guards post_page */
	bool timer_configured;             /* stimer0 CONFIG written (one-shot) */
	uint64_t timer_interrupts;
	uint64_t bad_messages;             /* slots with an impossible payload size */
};

struct hv_guest {
	const struct hv_port *port;
	struct hv_guest_features features;
	struct hv_guest_config config;
	void *hypercall_page;
	struct hv_tsc_page *tsc_page;      /* NULL: no TSC page, use the MSR */
	enum hv_stimer_mode stimer_mode;
	hv_guest_message_fn on_message;
	hv_guest_events_fn on_events;
	hv_guest_timer_fn on_timer;
	void *callback_arg;
	struct hv_guest_vp vps[HV_GUEST_MAX_VPS];
};

/*
 * Partition-wide set-up, once, after hv_guest_detect: guest OS id, the
 * hypercall page, the reference TSC page (if offered), invariant TSC (if
 * offered), the stimer mode. -ENODEV if Hyper-V is not there, -ENOMEM,
 * -EIO if the host refused an MSR, -EINVAL for a bad config or a port
 * missing a required op.
 */
int hv_guest_init(struct hv_guest *g, const struct hv_port *port,
		  const struct hv_guest_config *cfg);

/* Where messages, events and timer expiries go; set before hv_guest_vp_init. */
void hv_guest_set_callbacks(struct hv_guest *g, hv_guest_message_fn on_message,
			    hv_guest_events_fn on_events, hv_guest_timer_fn on_timer,
			    void *arg);

/* On the current VP: VP index, SIMP and SIEFP, SINT 2 (and the stimer's
 * vector or SINT), SynIC enable. 0, -ENOMEM or -EIO (-EBUSY if the VP is
 * already up, -EINVAL if current_vp is not below vp_count). */
int hv_guest_vp_init(struct hv_guest *g);

/* On the current VP: stimer0 off, SINTs masked, SynIC disabled, pages freed
 * (Linux's hv_synic_disable_regs; used before unload or hibernation). */
void hv_guest_vp_exit(struct hv_guest *g);

/* ---- Calls ---- */

/* HvPostMessage from the current VP; returns the Hyper-V status. */
uint16_t hv_guest_post_message(struct hv_guest *g, uint32_t connection_id,
			       uint32_t message_type, const void *payload, uint32_t size);

/* HvSignalEvent (fast); returns the Hyper-V status. */
uint16_t hv_guest_signal_event(struct hv_guest *g, uint32_t connection_id, uint16_t flag);

/* ---- Events ---- */

/* Takes (reads and clears, atomically per word) the event flags of `sint`
 * on the current VP, ORing them into out (256 bytes; the caller clears it).
 * Returns the number of flags taken. */
uint32_t hv_guest_take_events(struct hv_guest *g, uint32_t sint,
			      uint8_t out[HV_EVENT_FLAGS_BYTES]);

/* ---- Time ---- */

/* Reference time (100 ns units): TSC page if valid, else the MSR. */
uint64_t hv_guest_time(const struct hv_guest *g);

/* The TSC page alone: false if it is absent or invalid (sequence 0). */
bool hv_guest_time_tsc_page(const struct hv_guest *g, uint64_t *ref);

/* The reference counter MSR alone. */
uint64_t hv_guest_time_msr(const struct hv_guest *g);

/* ---- stimer0 clock event, on the current VP ---- */

/* One shot: on_timer runs once `delta` (100 ns units) from now. -ENODEV if
 * the host has no synthetic timers. */
int hv_guest_timer_start(struct hv_guest *g, uint64_t delta);
void hv_guest_timer_stop(struct hv_guest *g);

/* ---- Crash ---- */

/* Reports a panic through the crash MSRs (if offered): five parameters and
 * a message (at most 4096 bytes). -ENODEV if not offered. */
int hv_guest_report_crash(struct hv_guest *g, const uint64_t params[5], const char *message,
			  uint32_t len);

#endif /* HVKIT_GUEST_HV_H */
