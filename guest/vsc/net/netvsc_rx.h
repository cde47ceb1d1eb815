/* SPDX-License-Identifier: MIT */
/*
 * netvsc's receive-path parser, pure: one transfer-page packet from the
 * host, its ranges in the receive buffer, the RNDIS message in each range.
 * Checks what Linux 6.1 checks (netvsc.c netvsc_receive,
 * rndis_filter.c rndis_filter_receive, rndis_filter_receive_data) and a
 * little more: the NVSP message, the page set, every range inside the
 * buffer, msg_len inside its range, data and per-packet info inside the
 * message, every per-packet info element inside its area.
 *
 * The receive buffer is shared with the host, which may rewrite it while
 * it is read: headers are copied once and only the copies are checked and
 * used. Frame bytes are handed out in place (the host can only corrupt its
 * own frame); control messages are copied whole.
 */
#ifndef HVKIT_NETVSC_RX_H
#define HVKIT_NETVSC_RX_H

#include <stdint.h>

#include "ring_buffer.h"

/* The longest RNDIS control message taken (query answers, indications). */
#define NETVSC_RX_CONTROL_MAX 1024u

struct netvsc_rx_stats {
	uint64_t bad_packets; /* not SEND_RNDIS_PKT, wrong page set, too short */
	uint64_t bad_ranges;  /* outside the receive buffer, shorter than a header */
	uint64_t bad_rndis;   /* lengths and offsets that lie */
};

struct netvsc_rx_sink {
	/* A data packet's frame, in the receive buffer. */
	void (*data)(void *ctx, const uint8_t *frame, uint32_t len);
	/* Any other RNDIS message, copied: msg_len bytes, header included. */
	void (*control)(void *ctx, const uint8_t *msg, uint32_t len);
	void *ctx;
};

/*
 * Parses one transfer-page packet over the receive buffer buf (size bytes;
 * page set NVSP_RECV_BUFFER_ID). Returns the number of messages delivered,
 * or -EBADMSG when the packet as a whole is refused. Either way the caller
 * completes pkt->trans_id so the host gets its sections back.
 */
int netvsc_rx_xfer(const uint8_t *buf, uint32_t size, const struct vmbus_packet *pkt,
		   const struct netvsc_rx_sink *sink, struct netvsc_rx_stats *st);

/* One RNDIS message of len bytes at msg (in the receive buffer): 0 if
 * delivered, -EBADMSG if refused (counted). */
int netvsc_rx_rndis(const uint8_t *msg, uint32_t len, const struct netvsc_rx_sink *sink,
		    struct netvsc_rx_stats *st);

#endif /* HVKIT_NETVSC_RX_H */
