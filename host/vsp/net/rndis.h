/* SPDX-License-Identifier: MIT */
/*
 * The RNDIS device behind a synthetic NIC: a pure state machine. The VSP
 * (netvsp.c) hands it the RNDIS bytes the guest sent (one or several
 * messages back to back, as Linux batches them), and it answers through
 * callbacks: control completions and status indications to send back to
 * the guest, data frames to hand to the network backend. It owns no
 * memory of the guest and no VMBus state, so it can be tested and fuzzed
 * alone.
 *
 * Behaviour follows what Linux 6.1 drivers/net/hyperv/rndis_filter.c asks
 * and checks (wire format: include/hvkit/proto/rndis.h). Everything in a
 * message is checked against the message's own length and the message's
 * length against the buffer; a message that lies is counted, logged once
 * and dropped (a control request with a request id still gets an answer
 * with a failure status, so the guest does not wait forever).
 */
#ifndef HVKIT_NETVSP_RNDIS_H
#define HVKIT_NETVSP_RNDIS_H

#include <stdbool.h>
#include <stdint.h>

#include "hvkit/proto/rndis.h"

#define RNDIS_ETH_HLEN 14u
#define RNDIS_VLAN_HLEN 4u
/* Largest control response this device builds. */
#define RNDIS_RESPONSE_MAX 512u
/* Bytes of RNDIS header and per-packet info in front of a received frame
 * (rndis_dev_build_packet: the packet header, checksum, VLAN and hash info). */
#define RNDIS_RX_HEADER_MAX (8u + 36u + 3u * 16u)

enum rndis_dev_state {
	RNDIS_DEV_UNINITIALIZED,
	RNDIS_DEV_INITIALIZED,
};

struct rndis_dev_config {
	uint8_t mac[6];
	uint32_t mtu;            /* largest frame payload, Ethernet header excluded */
	uint64_t link_speed_bps; /* 0: 10 Gbit/s */
	uint32_t rss_queues;     /* receive queues offered (1: no RSS) */
	bool link_down;          /* start with the cable out */
};

/* Per-packet info the guest sent with a frame (only what was there). */
struct rndis_frame_info {
	bool has_csum, has_vlan, has_lso, has_hash;
	uint32_t csum; /* NDIS_CSUM_TX_* */
	uint32_t vlan; /* NDIS_VLAN_* fields */
	uint32_t lso;  /* NDIS_LSO_* fields */
	uint32_t hash;
};

struct rndis_dev_ops {
	/* A control completion or status indication for the guest. */
	void (*respond)(void *ctx, const void *msg, uint32_t len);
	/* A frame the guest sent (data valid during the call only). */
	void (*frame)(void *ctx, const uint8_t *data, uint32_t len,
		      const struct rndis_frame_info *info);
	/* Optional: a bad message, for the owner's log (called once per kind). */
	void (*bad)(void *ctx, const char *what);
};

struct rndis_dev_stats {
	uint64_t control;      /* control messages handled */
	uint64_t frames;       /* data frames handed on */
	uint64_t bad_messages; /* malformed or misplaced control messages */
	uint64_t bad_packets;  /* malformed data packets */
	uint64_t dropped;      /* well-formed frames dropped (not initialized) */
};

struct rndis_dev {
	struct rndis_dev_config cfg;
	const struct rndis_dev_ops *ops;
	void *ctx;
	enum rndis_dev_state state;
	uint8_t current_mac[6];
	uint32_t packet_filter;
	bool link_up;
	struct ndis_offload_params offload; /* as last set */
	uint32_t rss_hashinfo;
	uint32_t rss_table_len; /* entries */
	uint32_t rss_table[NDIS_RSS_INDIRECTION_TABLE_MAX_SIZE / 4];
	uint8_t rss_key[NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE];
	uint32_t multicast_count;
	uint32_t logged; /* bad kinds reported */
	struct rndis_dev_stats stats;
};

void rndis_dev_init(struct rndis_dev *d, const struct rndis_dev_config *cfg,
		    const struct rndis_dev_ops *ops, void *ctx);

/*
 * The RNDIS bytes of one guest send (one or more messages). Returns 0 if
 * every message was well formed, -EBADMSG if any was not (counted; the
 * ones before it were handled, the rest of the buffer is dropped).
 */
int rndis_dev_handle(struct rndis_dev *d, const uint8_t *buf, uint32_t len);

/*
 * The same for bytes the guest can still write while we read them (a send
 * section mapped in place): each header is fetched once into private
 * memory before it is checked, control messages are copied whole into
 * scratch, and data frames are handed to ops->frame by reference into buf.
 * scratch holds cap bytes: at least the longest message buf may hold.
 */
int rndis_dev_handle_shared(struct rndis_dev *d, const uint8_t *buf, uint32_t len,
			    uint8_t *scratch, uint32_t cap);

/* Link state; indicates the change to an initialized guest. */
void rndis_dev_set_link(struct rndis_dev *d, bool up);

/* Whether the guest's packet filter takes a frame for this destination. */
bool rndis_dev_accepts(const struct rndis_dev *d, const uint8_t *frame, uint32_t len);

/*
 * The receive-side scaling hash of a frame for the guest, as the guest set
 * it up (OID_GEN_RECEIVE_SCALE_PARAMETERS: Toeplitz, its key, the header
 * types): over IPv4 or IPv6 source and destination addresses, and the TCP
 * ports when TCP hashing is on and the packet is not a fragment. False
 * (no hash) when RSS is off or the frame is none of the types asked for.
 */
bool rndis_dev_rx_hash(const struct rndis_dev *d, const uint8_t *frame, uint32_t len,
		       uint32_t *hash);

/*
 * Writes the RNDIS data packet header for a received frame of frame_len
 * bytes into out (at least RNDIS_RX_HEADER_MAX bytes); the frame goes
 * right after the returned number of bytes. csum_rx (NDIS_CSUM_RX_*) and
 * vlan are added as per-packet info when nonzero, the RSS hash when hash
 * is not NULL (Linux sets it as the skb's hash).
 */
uint32_t rndis_dev_build_packet(uint8_t *out, uint32_t frame_len, uint32_t csum_rx,
				uint32_t vlan, const uint32_t *hash);

#endif /* HVKIT_NETVSP_RNDIS_H */
