/* SPDX-License-Identifier: MIT */
/*
 * netvsc: the guest's driver for Hyper-V's synthetic NIC, freestanding, on
 * the VMBus client. It brings a NIC up as Linux 6.1 does
 * (drivers/net/hyperv/netvsc.c netvsc_connect_vsp, netvsc_init_buf;
 * rndis_filter.c rndis_filter_device_add):
 *
 *  - NVSP INIT with one version per request, newest first (6.1, 6, 5, 4,
 *    2, 1), then NDIS config (MTU, capabilities; NVSP 2+) and the NDIS
 *    version (6.1 up to NVSP 4, 6.30 from 5);
 *  - the receive buffer and the send buffer, each shared by one GPADL; the
 *    host's answers (one receive section at offset 0, its sub-allocation
 *    size and count; the send section size) are checked against what was
 *    shared;
 *  - RNDIS INITIALIZE, the MAC (permanent address), the link state, the
 *    RSS capabilities (NVSP 5+), then sub-channels (SUBCHANNEL) opened on
 *    the VPs the VMBus client spreads them over; frames are sent on the
 *    channel the host's send indirection table names for the flow;
 *  - the packet filter (directed, multicast, broadcast) at netvsc_open,
 *    as netvsc_open -> rndis_filter_open.
 *
 * Sending: a frame that fits in a send-buffer section is copied there and
 * announced in-band (SEND_RNDIS_PKT with the section index); a larger one
 * (jumbo frames) is built in a bounce buffer and sent GPA-direct. Each
 * completion frees what it names; one that names nothing in flight is
 * counted and ignored.
 *
 * Receiving: transfer-page packets whose ranges are RNDIS messages in the
 * receive buffer. Everything the host wrote is untrusted: the page set,
 * every range (inside the buffer), every RNDIS length and offset, every
 * per-packet info; bad input is counted (netvsc_stats), logged once per
 * kind, and the packet completed so the host gets its sections back.
 * Frames go to the rx callback, RNDIS status indications to the link
 * callback; both run in the channel's interrupt handler and must not block.
 */
#ifndef HVKIT_NETVSC_H
#define HVKIT_NETVSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmbus_client.h"

#define NETVSC_MAX_NICS 8
#define NETVSC_MAX_CHANNELS 16 /* primary and sub-channels per NIC */

struct netvsc_config {
	uint32_t max_version;   /* highest NVSP version offered; 0: 6.1 */
	uint32_t mtu;           /* 0: 1500; up to 65521 (NETVSC_MTU less 14) */
	uint32_t max_channels;  /* 0: as many as the host has queues, at most 16 */
	/* Receive-buffer sections of 1728 bytes (Linux: 10240, i.e. 17 MiB);
	 * 0: 1024 (1.7 MiB). The buffer is rounded up to pages. */
	uint32_t recv_sections;
	/* Send-buffer sections of 6144 bytes (Linux: 192); 0: 192. */
	uint32_t send_sections;
	uint32_t ring_bytes;    /* each ring of each channel; 0: 128 KiB */
	uint64_t timeout_ns;    /* each answer from the host; 0: 5 s */
};

struct netvsc_ops {
	/* A received frame (Ethernet header first), valid during the call. */
	void (*rx)(void *ctx, const void *frame, size_t len);
	/* The host's link indication: cable in or out. */
	void (*link)(void *ctx, bool up);
	void *ctx;
};

struct netvsc;        /* one NIC */
struct netvsc_driver; /* every NIC on a VMBus client */

/* Registers the driver with the client; NICs come up as the host offers
 * them (in vmbus_client_process). NULL and *err on failure. */
struct netvsc_driver *netvsc_driver_new(struct vmbus_client *c, const struct netvsc_config *cfg,
					int *err);
/* Brings every NIC down; call after vmbus_client_unload or before the
 * client is freed. */
void netvsc_driver_free(struct netvsc_driver *d);

/* NICs up so far, in offer order; netvsc_nic(d, i) is NULL past them. */
uint32_t netvsc_count(struct netvsc_driver *d);
struct netvsc *netvsc_nic(struct netvsc_driver *d, uint32_t i);

/* Starts frame delivery: registers the callbacks and sets the packet
 * filter. 0, -EIO (the host refused), -ETIMEDOUT. */
int netvsc_open(struct netvsc *nic, const struct netvsc_ops *ops);

/* Sends one Ethernet frame (14 .. MTU + 14 bytes, copied before this
 * returns). 0; -EAGAIN no send section, bounce buffer or ring room now
 * (try again after completions arrive); -EMSGSIZE; -ENOTCONN (not open or
 * gone). Callable from any thread. */
int netvsc_send(struct netvsc *nic, const void *frame, size_t len);

/* Batching, as Linux does with xmit_more: with NETVSC_SEND_MORE a small
 * frame may wait in a send section for the next ones (up to the host's
 * packets per message, 8 on Hyper-V and netvsp) and goes out when the
 * section is full or a send without the flag, or netvsc_flush, comes. */
#define NETVSC_SEND_MORE 1u
int netvsc_send_flags(struct netvsc *nic, const void *frame, size_t len, uint32_t flags);
int netvsc_flush(struct netvsc *nic);

/* The channel (0 = primary) a send of this frame takes now: its flow's
 * entry in the host's send indirection table, as Linux's
 * netvsc_pick_tx. For tests and benchmarks that spread flows. */
uint32_t netvsc_tx_queue(struct netvsc *nic, const void *frame, size_t len);

void netvsc_get_mac(const struct netvsc *nic, uint8_t mac[6]);
bool netvsc_link_up(const struct netvsc *nic);
uint32_t netvsc_mtu(const struct netvsc *nic);

struct netvsc_stats {
	uint32_t nvsp_version;
	uint32_t ndis_version;
	uint32_t channels;        /* open: primary + sub-channels */
	uint32_t recv_sections;   /* host's answers */
	uint32_t recv_section_size;
	uint32_t send_sections;
	uint32_t send_section_size;
	uint32_t send_table[16];  /* the host's send indirection table */
	uint32_t rss_channels;    /* RSS set over this many channels at open; 0: not */
	uint64_t tx_frames, tx_bytes, tx_copied, tx_gpa_direct, tx_busy;
	uint64_t tx_sends;        /* SEND_RNDIS_PKT messages for data */
	uint64_t tx_completions;  /* data and RNDIS control sends */
	uint32_t tx_in_flight;    /* sends not completed yet */
	uint64_t rx_frames, rx_bytes, rx_dropped; /* dropped: not open yet */
	uint64_t link_changes;
	/* The host's mistakes, refused and counted. */
	uint64_t bad_packets;     /* packet types, NVSP messages, page sets */
	uint64_t bad_ranges;      /* transfer-page ranges outside the buffer */
	uint64_t bad_rndis;       /* RNDIS lengths, offsets, PPIs that lie */
	uint64_t bad_completions; /* completions of nothing in flight */
	uint64_t broken_rings;
};
void netvsc_get_stats(const struct netvsc *nic, struct netvsc_stats *out);

#endif /* HVKIT_NETVSC_H */
