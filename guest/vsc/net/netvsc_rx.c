/* SPDX-License-Identifier: MIT */
/* netvsc's receive-path parser (netvsc_rx.h). */
#include "netvsc_rx.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "hvkit/proto/netvsc.h"
#include "hvkit/proto/rndis.h"

/* A copy of a shared header is taken with one memcpy; the host's later
 * writes cannot change what was checked. */
static void snapshot(void *dst, const uint8_t *src, size_t len)
{
	memcpy(dst, src, len);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* Every per-packet info element inside [0, len) of the area at ppi. */
static bool ppis_fit(const uint8_t *ppi, uint32_t len)
{
	while (len) {
		struct rndis_per_packet_info e;
		if (len < sizeof(e))
			return false;
		snapshot(&e, ppi, sizeof(e));
		if (e.size < sizeof(e) || e.size > len || e.ppi_offset < sizeof(e) ||
		    e.ppi_offset > e.size)
			return false;
		ppi += e.size;
		len -= e.size;
	}
	return true;
}

static int rx_data(const uint8_t *msg, uint32_t msg_len, const struct netvsc_rx_sink *sink,
		   struct netvsc_rx_stats *st)
{
	const uint32_t hdr = sizeof(struct rndis_msg_header);
	struct rndis_packet p;
	uint32_t body = msg_len - hdr;

	if (body < sizeof(p))
		goto bad;
	snapshot(&p, msg + hdr, sizeof(p));
	/* Offsets count from the start of the body (rndis_filter_receive_data). */
	if (p.data_len == 0 || p.data_offset < sizeof(p) || p.data_offset > body ||
	    p.data_len > body - p.data_offset)
		goto bad;
	if (p.per_pkt_info_len) {
		if (p.per_pkt_info_offset < sizeof(p) || p.per_pkt_info_offset > body ||
		    p.per_pkt_info_len > body - p.per_pkt_info_offset ||
		    !ppis_fit(msg + hdr + p.per_pkt_info_offset, p.per_pkt_info_len))
			goto bad;
	}
	if (sink->data)
		sink->data(sink->ctx, msg + hdr + p.data_offset, p.data_len);
	return 0;
bad:
	st->bad_rndis++;
	return -EBADMSG;
}

int netvsc_rx_rndis(const uint8_t *msg, uint32_t len, const struct netvsc_rx_sink *sink,
		    struct netvsc_rx_stats *st)
{
	struct rndis_msg_header h;
	uint8_t copy[NETVSC_RX_CONTROL_MAX];

	if (len < sizeof(h)) {
		st->bad_rndis++;
		return -EBADMSG;
	}
	snapshot(&h, msg, sizeof(h));
	/* msg_len is the message; the range may be longer (padding), never
	 * shorter. */
	if (h.msg_len < sizeof(h) || h.msg_len > len) {
		st->bad_rndis++;
		return -EBADMSG;
	}
	if (h.msg_type == RNDIS_MSG_PACKET)
		return rx_data(msg, h.msg_len, sink, st);
	if (h.msg_len > sizeof(copy)) {
		st->bad_rndis++;
		return -EBADMSG;
	}
	snapshot(copy, msg, h.msg_len);
	/* The copy's own header is what counts from here on. */
	memcpy(copy, &h, sizeof(h));
	if (sink->control)
		sink->control(sink->ctx, copy, h.msg_len);
	return 0;
}

int netvsc_rx_xfer(const uint8_t *buf, uint32_t size, const struct vmbus_packet *pkt,
		   const struct netvsc_rx_sink *sink, struct netvsc_rx_stats *st)
{
	struct vmbus_xfer_pages_in x;
	struct nvsp_message m = {0};
	int delivered = 0;

	if (vmbus_xfer_pages_parse(pkt, &x) != 0 || x.pageset_id != NVSP_RECV_BUFFER_ID ||
	    pkt->data_len < sizeof(m.msg_type) + sizeof(m.send_rndis_pkt)) {
		st->bad_packets++;
		return -EBADMSG;
	}
	memcpy(&m, pkt->data, pkt->data_len < sizeof(m) ? pkt->data_len : sizeof(m));
	if (m.msg_type != NVSP_MSG1_TYPE_SEND_RNDIS_PKT) {
		st->bad_packets++;
		return -EBADMSG;
	}
	for (uint32_t i = 0; i < x.range_count; i++) {
		struct vmbus_xfer_page_range r = vmbus_xfer_pages_range(&x, i);
		if (r.byte_offset > size || r.byte_count > size - r.byte_offset ||
		    r.byte_count < sizeof(struct rndis_msg_header)) {
			st->bad_ranges++;
			continue;
		}
		if (netvsc_rx_rndis(buf + r.byte_offset, r.byte_count, sink, st) == 0)
			delivered++;
	}
	return delivered;
}
