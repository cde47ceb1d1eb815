/* SPDX-License-Identifier: MIT */
/*
 * netvsp: the synthetic NIC's VSP, behind a VMBus offer of class
 * NETVSC_CLASS_GUID. It speaks NVSP 1 through 6.1 on the primary channel
 * and its sub-channels (include/hvkit/proto/netvsc.h), runs the RNDIS
 * device (rndis.h) on the bytes the guest sends, and moves frames between
 * the guest and a network backend.
 *
 * Locking: everything runs under the device lock. VMBus callbacks hold
 * it already; a backend delivering frames from its own thread calls
 * netvsp_receive, which takes it.
 *
 * Threads: with config.drain_thread (what hvkit run uses) a guest's signal
 * only marks its channel ready and wakes the NIC's device thread, which
 * reads the rings, a budget of NETVSP_DRAIN_BUDGET packets per channel a
 * turn with the device lock dropped between turns: the vCPU thread that
 * signalled does no device work, and a busy channel neither starves the
 * others nor holds the lock for long. Without it the ring is read on the
 * signalling thread, to the end, as tests that step the device by hand
 * need. Backend callbacks are called with it held
 * and must not block: the interface is asynchronous both ways —
 *  - transmit hands the backend a frame it must copy or drop at once;
 *  - netvsp_receive returns -ENOBUFS when the guest has no free receive
 *    section or ring room; the backend keeps the frame and waits for
 *    rx_ready, which comes once the guest has completed enough.
 *
 * The guest is untrusted: every section index, range, GPA and length is
 * checked before use, and everything refused is counted (netvsp_stats).
 */
#ifndef HVKIT_NETVSP_H
#define HVKIT_NETVSP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "guest_memory.h"
#include "hvkit/proto/netvsc.h"
#include "rndis.h"
#include "vmbus_server.h"

struct netvsp;

struct netvsp_backend_ops {
	/* A frame from the guest (valid during the call only). Lock held.
	 * It may be the guest's own send section, which the guest can still
	 * write: copy it once, decide nothing on bytes read twice. */
	void (*transmit)(void *be, struct netvsp *nic, const uint8_t *frame, uint32_t len,
			 const struct rndis_frame_info *info);
	/* Receive room is back after a -ENOBUFS. Lock held. */
	void (*rx_ready)(void *be, struct netvsp *nic);
};

#define NETVSP_MTU_DEFAULT 1500u
#define NETVSP_MTU_MAX 65521u /* NETVSC_MTU 65535 less the Ethernet header */
#define NETVSP_QUEUES_MAX 16u
/* Packets the device thread handles from one channel before it looks at
 * the others and lets go of the device lock. */
#define NETVSP_DRAIN_BUDGET 64u

struct netvsp_config {
	const struct guest_memory *mem; /* guest RAM, for buffers and GPA-direct pages */
	uint32_t instance;   /* tells NICs apart: instance GUID, default MAC */
	struct hv_guid instance_id; /* null: netvsp_instance_guid(instance) */
	bool has_mac;
	uint8_t mac[6];      /* default: 00:15:5d (Hyper-V's OUI) + instance hash */
	uint32_t mtu;        /* 0: NETVSP_MTU_DEFAULT */
	uint32_t queues;     /* channels offered for RSS, 1..NETVSP_QUEUES_MAX; 0: 4 */
	uint32_t max_version; /* highest NVSP version accepted; 0: 6.1 */
	bool link_down;
	bool drain_thread;   /* read the rings on a device thread (above) */
	const struct netvsp_backend_ops *backend;
	void *backend_ctx;
	void (*log)(void *ctx, const char *fmt, va_list ap); /* NULL: quiet */
	void *log_ctx;
};

struct netvsp_stats {
	uint32_t version;          /* negotiated NVSP version; 0 before */
	uint32_t recv_sections, send_sections;
	uint32_t recv_in_flight;   /* sections the guest has not completed */
	uint32_t subchannels;      /* offered on the guest's request, in all */
	uint32_t open_channels;
	uint64_t tx_frames, tx_bytes; /* guest to backend */
	uint64_t tx_in_place;      /* sends read from their send section in place */
	uint64_t rx_frames, rx_bytes; /* backend to guest */
	/* The same frames by channel index (0 = primary). */
	uint64_t chan_tx_frames[NETVSP_QUEUES_MAX];
	uint64_t chan_rx_frames[NETVSP_QUEUES_MAX];
	uint64_t rx_filtered;      /* refused by the guest's packet filter */
	uint64_t rx_no_buffer;     /* -ENOBUFS answers */
	uint64_t bad_messages;     /* NVSP messages refused */
	uint64_t bad_sections;     /* send-section indices or sizes refused */
	uint64_t bad_ranges;       /* GPA-direct ranges refused */
	uint64_t bad_completions;  /* completions of unknown transactions */
	uint64_t bad_rndis;        /* RNDIS messages refused (rndis_dev) */
	uint64_t broken_rings;
};

/* Adds a NIC to the server (offered at once if the guest is there). */
int netvsp_add(struct vmbus_server *s, const struct netvsp_config *cfg, struct netvsp **out);
void netvsp_remove(struct vmbus_server *s, struct netvsp *n);

/* A frame for the guest: 0 queued to it; -ENOBUFS no room now (keep it,
 * rx_ready follows); -ENOTCONN the guest is not ready for frames (drop);
 * -EMSGSIZE longer than MTU + header + VLAN tag; -EPERM refused by the
 * guest's packet filter. The _locked form from backend callbacks. */
int netvsp_receive(struct netvsp *n, const uint8_t *frame, uint32_t len);
int netvsp_receive_locked(struct netvsp *n, const uint8_t *frame, uint32_t len);

/* Most frames one transfer-page packet carries (one range each). Linux
 * 6.1's netvsc_receive walks any range count the packet's header holds. */
#define NETVSP_RX_BURST_MAX 32u

/*
 * netvsp_receive_burst flag: another call follows at once (a source with
 * a backlog). From this call until one without it, or one answering
 * -ENOBUFS, the caller's thread reads the guest's rings at each call and
 * leaves them masked, so the guest's completions signal nobody: on two
 * cores a server thread woken per burst takes the core from the source or
 * the guest. The guest's other packets (its frames too: the backend's
 * transmit then runs on the caller's thread) wait for the next call, so a
 * caller that says MORE must make it without waiting for anything.
 */
#define NETVSP_RX_MORE 1u

/*
 * Several frames for the guest under one lock: they go in order, up to
 * NETVSP_RX_BURST_MAX to a transfer-page packet (one range and receive
 * section each, one completion frees them all), published once per
 * channel with at most one signal. Returns how many frames from the front
 * were taken; errs[i] (count of them) says, for each taken, 0 or why it
 * was dropped (as netvsp_receive: -ENOTCONN, -EMSGSIZE, -EPERM). When fewer
 * than count are taken, errs[taken] is -ENOBUFS: keep that frame and the
 * rest, rx_ready follows. flags: 0 or NETVSP_RX_MORE, which only this
 * call (not from inside a backend callback) takes.
 */
uint32_t netvsp_receive_burst(struct netvsp *n, const uint8_t *const *frames,
			      const uint32_t *lens, uint32_t count, int *errs, uint32_t flags);
uint32_t netvsp_receive_burst_locked(struct netvsp *n, const uint8_t *const *frames,
				     const uint32_t *lens, uint32_t count, int *errs);

/* Cable in or out; the guest hears of it by an RNDIS indication. */
void netvsp_set_link(struct netvsp *n, bool up);

void netvsp_get_stats(struct netvsp *n, struct netvsp_stats *out);

/* With a device thread: returns once every channel signalled before the
 * call has been read as far as the ring allowed (the thread is idle). For
 * tests and for quiescing; never with the device lock held. At once
 * without a thread. */
void netvsp_flush(struct netvsp *n);
void netvsp_get_mac(const struct netvsp *n, uint8_t mac[6]);
struct hv_guid netvsp_instance_guid(uint32_t instance);

/* ---- Backends ---- */

/*
 * The loopback backend: every frame the guest sends comes back to it
 * (reflect = true) or is counted and dropped (a sink). Frames the guest
 * cannot take yet wait in a bounded queue for rx_ready.
 */
struct netvsp_loopback;
struct netvsp_loopback *netvsp_loopback_new(bool reflect);
void netvsp_loopback_free(struct netvsp_loopback *lb);
const struct netvsp_backend_ops *netvsp_loopback_ops(void);
struct netvsp_loopback_stats {
	uint64_t frames, bytes; /* taken from the guest */
	uint64_t returned;      /* delivered back */
	uint64_t dropped;       /* queue full or refused */
	uint32_t queued;
};
void netvsp_loopback_get_stats(const struct netvsp_loopback *lb,
			       struct netvsp_loopback_stats *out);
/* The last frame taken (for tests): copies up to max bytes, returns its length. */
uint32_t netvsp_loopback_last(const struct netvsp_loopback *lb, uint8_t *out, uint32_t max);

#endif /* HVKIT_NETVSP_H */
