/* SPDX-License-Identifier: MIT */
/* netvsc: the guest's synthetic NIC driver (netvsc.h). */
#include "netvsc.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "hvkit/proto/netvsc.h"
#include "hvkit/proto/rndis.h"
#include "netvsc_rx.h"
#include "port.h"

#define PAGE 4096u
#define DEFAULT_RECV_SECTIONS 1024u
#define DEFAULT_SEND_SECTIONS 192u /* Linux's NETVSC_DEFAULT_TX */
#define DEFAULT_RING (128u * 1024u)
#define DEFAULT_TIMEOUT_NS 5000000000ull
#define ETH_HLEN 14u
#define VLAN_HLEN 4u
#define MTU_MAX 65521u
#define BOUNCE_SLOTS 16u
#define PKT_BUF 16384u     /* one ring packet, copied out of the ring */
#define PENDING_MAX 64u    /* receive completions waiting for ring room */

/* Transaction ids: the kind in the top byte, an index below. */
#define TID_KIND(t) ((uint32_t)((t) >> 56))
#define TID_INDEX(t) ((uint32_t)(t))
#define TID(kind, i) (((uint64_t)(kind) << 56) | (uint32_t)(i))
enum { TID_NVSP = 1, TID_SECTION = 2, TID_BOUNCE = 3 };

static const uint32_t versions[] = {
	NVSP_PROTOCOL_VERSION_61, NVSP_PROTOCOL_VERSION_6, NVSP_PROTOCOL_VERSION_5,
	NVSP_PROTOCOL_VERSION_4,  NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_1,
};

enum log_kind { LOG_PACKET, LOG_RANGE, LOG_RNDIS, LOG_COMPLETION, LOG_RING, LOG_KINDS };

struct netvsc_chan {
	struct netvsc *nic;
	struct vmbus_client_channel *ch;
	bool open;
	bool broken;
	uint64_t pending[PENDING_MAX]; /* receive completions not sent yet */
	uint32_t npending;
	struct netvsc_rx_stats rx; /* only this channel's callback writes it */
	/* Frames batched in one send section (NETVSC_SEND_MORE), as Linux's
	 * multi-send data: under batch_lock. */
	struct hv_port_lock *batch_lock;
	uint32_t batch_sec; /* NO_BATCH if none */
	uint32_t batch_len, batch_count;
	bool batch_stalled; /* its send found the ring full: retried later */
	uint8_t pkt[PKT_BUF];
};

#define NO_BATCH UINT32_MAX

struct netvsc {
	struct netvsc_driver *d;
	const struct hv_port *port;
	struct vmbus_client_channel *primary;
	struct netvsc_chan *chans[NETVSC_MAX_CHANNELS];
	uint32_t nchan;     /* published with release: senders read it */
	uint32_t want_subs; /* sub-channels the host allocated */
	uint32_t mtu;
	uint8_t mac[6];
	bool link_up;
	bool opened;
	bool gone;
	struct netvsc_ops ops;
	uint32_t max_pkts;  /* RNDIS packets per message the host takes */
	uint32_t pkt_align; /* and their alignment in a batch */
	struct netvsc_stats st;
	bool logged[LOG_KINDS];

	/* The receive buffer. */
	uint8_t *rbuf;
	uint32_t rbuf_pages, rbuf_size, rgpadl;
	bool rgpadl_made;
	/* The send buffer: sections handed out from a stack under tx_lock. */
	uint8_t *sbuf;
	uint32_t sbuf_pages, sgpadl;
	bool sgpadl_made;
	uint32_t *free_secs;
	uint32_t nfree;
	uint8_t *sec_busy;
	/* Bounce buffers for frames bigger than a section (GPA-direct). */
	uint8_t *bounce;
	uint32_t bounce_pages; /* per slot */
	uint8_t bounce_busy[BOUNCE_SLOTS];
	struct hv_port_lock *tx_lock;

	/* One request at a time waits for its answer (bring-up, open). */
	struct hv_port_lock *lock;
	struct hv_port_event *ev;
	bool nvsp_waiting, nvsp_done;
	struct nvsp_message nvsp_answer;
	uint32_t rndis_req_id, next_req_id;
	bool rndis_waiting, rndis_done;
	uint8_t rndis_answer[NETVSC_RX_CONTROL_MAX];
	uint32_t rndis_answer_len;
};

struct netvsc_driver {
	struct vmbus_client *c;
	const struct hv_port *port;
	struct netvsc_config cfg;
	struct hv_port_lock *lock;
	struct netvsc *nics[NETVSC_MAX_NICS];
	uint32_t count;
};

/* ---- Small helpers ---- */

static void nlog(const struct netvsc *n, const char *fmt, ...)
{
	if (!n->port->log)
		return;
	va_list ap;
	va_start(ap, fmt);
	n->port->log(n->port->ctx, fmt, ap);
	va_end(ap);
}

static void count_bad(struct netvsc *n, uint64_t *counter, enum log_kind k, const char *what)
{
	__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
	if (!__atomic_exchange_n(&n->logged[k], true, __ATOMIC_RELAXED))
		nlog(n, "netvsc: %s (logged once)\n", what);
}

static void add(uint64_t *counter, uint64_t v)
{
	__atomic_add_fetch(counter, v, __ATOMIC_RELAXED);
}

static uint32_t pages_for(uint64_t bytes)
{
	return (uint32_t)((bytes + PAGE - 1) / PAGE);
}

static uint64_t timeout_ns(const struct netvsc *n)
{
	return n->d->cfg.timeout_ns ? n->d->cfg.timeout_ns : DEFAULT_TIMEOUT_NS;
}

/* Waits (process context) until *flag is set under n->lock. */
static int wait_flag(struct netvsc *n, bool *flag)
{
	uint64_t limit = timeout_ns(n), waited = 0, step = 10000000;
	for (;;) {
		n->port->lock(n->port->ctx, n->lock);
		bool done = *flag;
		n->port->unlock(n->port->ctx, n->lock);
		if (done)
			return 0;
		if (waited >= limit)
			return -ETIMEDOUT;
		n->port->event_wait(n->port->ctx, n->ev, step);
		waited += step;
	}
}

/* ---- NVSP requests during bring-up ---- */

static int nvsp_post(struct netvsc *n, const struct nvsp_message *m, bool want_answer)
{
	return vmbus_client_channel_send_inband(n->primary, want_answer ? TID(TID_NVSP, 0) : 0,
						want_answer ? VMBUS_PKT_FLAG_COMPLETION_REQUESTED : 0,
						m, sizeof(*m));
}

/* Sends m and waits for the completion, copied to *answer. */
static int nvsp_request(struct netvsc *n, const struct nvsp_message *m,
			struct nvsp_message *answer)
{
	n->port->lock(n->port->ctx, n->lock);
	n->nvsp_waiting = true;
	n->nvsp_done = false;
	n->port->unlock(n->port->ctx, n->lock);
	int err = nvsp_post(n, m, true);
	if (!err)
		err = wait_flag(n, &n->nvsp_done);
	n->port->lock(n->port->ctx, n->lock);
	n->nvsp_waiting = false;
	*answer = n->nvsp_answer;
	n->port->unlock(n->port->ctx, n->lock);
	return err;
}

/* ---- Send buffer sections ---- */

static int section_get(struct netvsc *n, uint32_t *idx)
{
	int err = -EAGAIN;
	n->port->lock(n->port->ctx, n->tx_lock);
	if (n->nfree) {
		*idx = n->free_secs[--n->nfree];
		n->sec_busy[*idx] = 1;
		err = 0;
	}
	n->port->unlock(n->port->ctx, n->tx_lock);
	return err;
}

/* false if the section was not in flight. */
static bool section_put(struct netvsc *n, uint32_t idx)
{
	bool ok = false;
	n->port->lock(n->port->ctx, n->tx_lock);
	if (idx < n->st.send_sections && n->sec_busy[idx]) {
		n->sec_busy[idx] = 0;
		n->free_secs[n->nfree++] = idx;
		ok = true;
	}
	n->port->unlock(n->port->ctx, n->tx_lock);
	return ok;
}

static int bounce_get(struct netvsc *n, uint32_t *slot)
{
	int err = -EAGAIN;
	n->port->lock(n->port->ctx, n->tx_lock);
	for (uint32_t i = 0; i < BOUNCE_SLOTS; i++) {
		if (!n->bounce_busy[i]) {
			n->bounce_busy[i] = 1;
			*slot = i;
			err = 0;
			break;
		}
	}
	n->port->unlock(n->port->ctx, n->tx_lock);
	return err;
}

static bool bounce_put(struct netvsc *n, uint32_t slot)
{
	bool ok = false;
	n->port->lock(n->port->ctx, n->tx_lock);
	if (slot < BOUNCE_SLOTS && n->bounce_busy[slot]) {
		n->bounce_busy[slot] = 0;
		ok = true;
	}
	n->port->unlock(n->port->ctx, n->tx_lock);
	return ok;
}

/* Sends RNDIS bytes (already in section idx) on channel ch. */
static int send_section(struct vmbus_client_channel *ch, uint32_t idx,
			uint32_t len, uint32_t channel_type)
{
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT};
	m.send_rndis_pkt.channel_type = channel_type;
	m.send_rndis_pkt.send_buf_section_index = idx;
	m.send_rndis_pkt.send_buf_section_size = len;
	return vmbus_client_channel_send_inband(ch, TID(TID_SECTION, idx),
						VMBUS_PKT_FLAG_COMPLETION_REQUESTED, &m, sizeof(m));
}

/* Sends the channel's batch (batch_lock held). On failure the batch
 * stays and is retried by the next send, netvsc_flush or a completion. */
static int batch_flush_locked(struct netvsc_chan *c)
{
	if (c->batch_sec == NO_BATCH)
		return 0;
	int err = send_section(c->ch, c->batch_sec, c->batch_len, NVSP_RMC_DATA);
	__atomic_store_n(&c->batch_stalled, err != 0, __ATOMIC_RELAXED);
	if (err)
		return err;
	add(&c->nic->st.tx_sends, 1);
	__atomic_store_n(&c->batch_sec, NO_BATCH, __ATOMIC_RELAXED);
	c->batch_len = c->batch_count = 0;
	return 0;
}

static int batch_flush(struct netvsc_chan *c)
{
	const struct hv_port *p = c->nic->port;
	p->lock(p->ctx, c->batch_lock);
	int err = batch_flush_locked(c);
	p->unlock(p->ctx, c->batch_lock);
	return err;
}

/* ---- RNDIS control requests ---- */

/* Sends an RNDIS request (msg: header and body, whose first field is the
 * request id, filled in here) and waits for the answer of that id. */
static int rndis_request(struct netvsc *n, uint8_t *msg, uint32_t len, uint32_t answer_type)
{
	uint32_t idx;
	int err;

	if (len > n->st.send_section_size)
		return -EMSGSIZE;
	n->port->lock(n->port->ctx, n->lock);
	uint32_t id = ++n->next_req_id;
	n->rndis_req_id = id;
	n->rndis_waiting = true;
	n->rndis_done = false;
	n->port->unlock(n->port->ctx, n->lock);
	memcpy(msg + sizeof(struct rndis_msg_header), &id, sizeof(id));

	uint64_t waited = 0;
	while ((err = section_get(n, &idx)) == -EAGAIN && waited < timeout_ns(n)) {
		n->port->event_wait(n->port->ctx, n->ev, 1000000);
		waited += 1000000;
	}
	if (!err) {
		memcpy(n->sbuf + (size_t)idx * n->st.send_section_size, msg, len);
		err = send_section(n->primary, idx, len, NVSP_RMC_CONTROL);
		if (err)
			section_put(n, idx);
	}
	if (!err)
		err = wait_flag(n, &n->rndis_done);
	n->port->lock(n->port->ctx, n->lock);
	n->rndis_waiting = false;
	if (!err) {
		struct rndis_msg_header h;
		memcpy(&h, n->rndis_answer, sizeof(h));
		/* Every answer carries its request id and a status. */
		if (h.msg_type != answer_type || n->rndis_answer_len < sizeof(h) + 8)
			err = -EIO;
		memcpy(msg, n->rndis_answer, n->rndis_answer_len < NETVSC_RX_CONTROL_MAX
						     ? n->rndis_answer_len
						     : NETVSC_RX_CONTROL_MAX);
	}
	n->port->unlock(n->port->ctx, n->lock);
	return err;
}

/* Builds a QUERY or SET of oid with len bytes of data after the request
 * (the two requests share their layout), sends it and waits. */
static int rndis_oid_request(struct netvsc *n, uint32_t type, uint32_t oid, const void *data,
			     uint32_t len, uint8_t msg[NETVSC_RX_CONTROL_MAX])
{
	const uint32_t hdr = sizeof(struct rndis_msg_header);
	struct rndis_query_request q = {
		.oid = oid,
		.info_buflen = len,
		.info_buf_offset = sizeof(q),
	};
	_Static_assert(sizeof(struct rndis_query_request) == sizeof(struct rndis_set_request),
		       "QUERY and SET share their layout");
	uint32_t total = hdr + (uint32_t)sizeof(q) + len;
	if (total > NETVSC_RX_CONTROL_MAX)
		return -EINVAL;
	struct rndis_msg_header h = {type, total};
	memcpy(msg, &h, hdr);
	memcpy(msg + hdr, &q, sizeof(q));
	if (len)
		memcpy(msg + hdr + sizeof(q), data, len);
	return rndis_request(n, msg, total, type | RNDIS_MSG_COMPLETION);
}

/* Queries an OID; copies up to *len bytes of the answer to out. */
static int rndis_query(struct netvsc *n, uint32_t oid, const void *in, uint32_t in_len,
		       void *out, uint32_t *len)
{
	uint8_t msg[NETVSC_RX_CONTROL_MAX] = {0};
	const uint32_t hdr = sizeof(struct rndis_msg_header);
	int err = rndis_oid_request(n, RNDIS_MSG_QUERY, oid, in, in_len, msg);
	if (err)
		return err;
	/* The answer: checked as Linux's rndis_filter_query_device does. */
	struct rndis_msg_header h;
	struct rndis_query_complete c;
	memcpy(&h, msg, hdr);
	memcpy(&c, msg + hdr, sizeof(c));
	if (c.status != RNDIS_STATUS_SUCCESS)
		return -EIO;
	if (h.msg_len > NETVSC_RX_CONTROL_MAX || h.msg_len < hdr + sizeof(c) ||
	    c.info_buf_offset < sizeof(c) || c.info_buf_offset > h.msg_len - hdr ||
	    c.info_buflen > h.msg_len - hdr - c.info_buf_offset || c.info_buflen > *len) {
		count_bad(n, &n->st.bad_rndis, LOG_RNDIS, "a query answer that does not fit");
		return -EBADMSG;
	}
	memcpy(out, msg + hdr + c.info_buf_offset, c.info_buflen);
	*len = c.info_buflen;
	return 0;
}

static int rndis_set(struct netvsc *n, uint32_t oid, const void *val, uint32_t val_len)
{
	uint8_t msg[NETVSC_RX_CONTROL_MAX] = {0};
	const uint32_t hdr = sizeof(struct rndis_msg_header);
	int err = rndis_oid_request(n, RNDIS_MSG_SET, oid, val, val_len, msg);
	if (err)
		return err;
	struct rndis_set_complete c;
	memcpy(&c, msg + hdr, sizeof(c));
	return c.status == RNDIS_STATUS_SUCCESS ? 0 : -EIO;
}

static int rndis_init(struct netvsc *n)
{
	uint8_t msg[NETVSC_RX_CONTROL_MAX] = {0};
	const uint32_t hdr = sizeof(struct rndis_msg_header);
	struct rndis_initialize_request r = {
		.major_ver = RNDIS_MAJOR_VERSION,
		.minor_ver = RNDIS_MINOR_VERSION,
		.max_xfer_size = 0x4000, /* rndis_filter_init_device */
	};
	struct rndis_msg_header h = {RNDIS_MSG_INIT, hdr + (uint32_t)sizeof(r)};
	memcpy(msg, &h, hdr);
	memcpy(msg + hdr, &r, sizeof(r));
	int err = rndis_request(n, msg, h.msg_len, RNDIS_MSG_INIT_C);
	if (err)
		return err;
	struct rndis_initialize_complete c;
	memcpy(&c, msg + hdr, sizeof(c));
	if (c.status != RNDIS_STATUS_SUCCESS)
		return -EIO;
	/* Batching as rndis_filter_init_device sets it up: the host's packets
	 * per message and alignment; an alignment past a page disables it. */
	n->max_pkts = c.max_pkt_per_msg ? c.max_pkt_per_msg : 1;
	if (n->max_pkts > 64)
		n->max_pkts = 64;
	n->pkt_align = c.pkt_alignment_factor <= 12 ? 1u << c.pkt_alignment_factor : 8;
	if (c.pkt_alignment_factor > 12)
		n->max_pkts = 1;
	return 0;
}

/* ---- Receive path (channel callbacks) ---- */

static void set_link(struct netvsc *n, bool up)
{
	bool was = __atomic_exchange_n(&n->link_up, up, __ATOMIC_ACQ_REL);
	if (was == up)
		return;
	add(&n->st.link_changes, 1);
	if (__atomic_load_n(&n->opened, __ATOMIC_ACQUIRE) && n->ops.link)
		n->ops.link(n->ops.ctx, up);
}

static void on_control(void *ctx, const uint8_t *msg, uint32_t len)
{
	struct netvsc *n = ctx;
	struct rndis_msg_header h;
	uint32_t id;

	memcpy(&h, msg, sizeof(h));
	if (h.msg_type == RNDIS_MSG_INDICATE) {
		struct rndis_indicate_status s;
		if (len < sizeof(h) + sizeof(s)) {
			count_bad(n, &n->st.bad_rndis, LOG_RNDIS, "a short indication");
			return;
		}
		memcpy(&s, msg + sizeof(h), sizeof(s));
		if (s.status == RNDIS_STATUS_MEDIA_CONNECT)
			set_link(n, true);
		else if (s.status == RNDIS_STATUS_MEDIA_DISCONNECT)
			set_link(n, false);
		return;
	}
	/* An answer: its request id first in the body. */
	if (!(h.msg_type & RNDIS_MSG_COMPLETION) || len < sizeof(h) + sizeof(id)) {
		count_bad(n, &n->st.bad_rndis, LOG_RNDIS, "an unexpected RNDIS message");
		return;
	}
	memcpy(&id, msg + sizeof(h), sizeof(id));
	n->port->lock(n->port->ctx, n->lock);
	bool mine = n->rndis_waiting && !n->rndis_done && id == n->rndis_req_id;
	if (mine) {
		memcpy(n->rndis_answer, msg, len);
		n->rndis_answer_len = len;
		n->rndis_done = true;
	}
	n->port->unlock(n->port->ctx, n->lock);
	if (mine)
		n->port->event_set(n->port->ctx, n->ev);
	else
		count_bad(n, &n->st.bad_rndis, LOG_RNDIS, "an answer nobody asked for");
}

static void on_data(void *ctx, const uint8_t *frame, uint32_t len)
{
	struct netvsc *n = ctx;
	if (!__atomic_load_n(&n->opened, __ATOMIC_ACQUIRE) || !n->ops.rx) {
		add(&n->st.rx_dropped, 1);
		return;
	}
	add(&n->st.rx_frames, 1);
	add(&n->st.rx_bytes, len);
	n->ops.rx(n->ops.ctx, frame, len);
}

/* Completes a transfer-page packet so the host may reuse its sections. */
static int complete_rx(struct netvsc_chan *c, uint64_t tid)
{
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE};
	m.send_rndis_pkt_complete.status = NVSP_STAT_SUCCESS;
	/* Linux sends the type and the status only (netvsc_send_recv_completion). */
	struct vmbus_ring_iov iov = {&m, 8};
	struct vmbus_packet_out p = {.type = VMBUS_PKT_COMP, .trans_id = tid, .iov = &iov,
				     .iov_count = 1};
	return vmbus_client_channel_send(c->ch, &p);
}

static void flush_pending(struct netvsc_chan *c)
{
	uint32_t done = 0;
	while (done < c->npending && complete_rx(c, c->pending[done]) == 0)
		done++;
	memmove(c->pending, c->pending + done, (c->npending - done) * sizeof(c->pending[0]));
	c->npending -= done;
}

static void on_send_complete(struct netvsc *n, const struct vmbus_packet *pkt)
{
	struct nvsp_message m = {0};
	memcpy(&m, pkt->data, pkt->data_len < sizeof(m) ? pkt->data_len : sizeof(m));
	uint32_t kind = TID_KIND(pkt->trans_id), idx = TID_INDEX(pkt->trans_id);
	bool ok = false;

	if (kind == TID_NVSP && pkt->trans_id == TID(TID_NVSP, 0)) {
		n->port->lock(n->port->ctx, n->lock);
		ok = n->nvsp_waiting && !n->nvsp_done;
		if (ok) {
			n->nvsp_answer = m;
			n->nvsp_done = true;
		}
		n->port->unlock(n->port->ctx, n->lock);
		if (ok)
			n->port->event_set(n->port->ctx, n->ev);
	} else if (m.msg_type == NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE &&
		   pkt->trans_id == TID(kind, idx)) {
		if (kind == TID_SECTION)
			ok = section_put(n, idx);
		else if (kind == TID_BOUNCE)
			ok = bounce_put(n, idx);
		if (ok)
			add(&n->st.tx_completions, 1);
	}
	if (!ok)
		count_bad(n, &n->st.bad_completions, LOG_COMPLETION,
			  "a completion of nothing in flight");
}

static void on_inband(struct netvsc *n, const struct vmbus_packet *pkt)
{
	struct nvsp_message m = {0};
	memcpy(&m, pkt->data, pkt->data_len < sizeof(m) ? pkt->data_len : sizeof(m));
	switch (m.msg_type) {
	case NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE: {
		/* The table at offset `offset` from the message; Linux accepts
		 * 16 entries only (netvsc_send_table). */
		uint32_t count = m.send_table.count, off = m.send_table.offset;
		if (count != NVSP_SEND_TABLE_SIZE || off < sizeof(m.msg_type) ||
		    off > pkt->data_len || pkt->data_len - off < count * sizeof(uint32_t)) {
			count_bad(n, &n->st.bad_packets, LOG_PACKET, "a bad send table");
			return;
		}
		uint32_t t[NVSP_SEND_TABLE_SIZE];
		memcpy(t, pkt->data + off, sizeof(t));
		for (uint32_t i = 0; i < NVSP_SEND_TABLE_SIZE; i++)
			__atomic_store_n(&n->st.send_table[i], t[i], __ATOMIC_RELAXED);
		return;
	}
	case NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION:
		return; /* no VF here: the synthetic path stays */
	default:
		count_bad(n, &n->st.bad_packets, LOG_PACKET, "an unexpected NVSP message");
	}
}

static void on_packets(void *arg, struct vmbus_client_channel *ch)
{
	struct netvsc_chan *c = arg;
	struct netvsc *n = c->nic;
	struct vmbus_packet pkt;
	int err;

	if (c->broken)
		return;
	flush_pending(c);
	const struct netvsc_rx_sink sink = {on_data, on_control, n};
	while ((err = vmbus_client_channel_recv(ch, c->pkt, sizeof(c->pkt), &pkt)) == 0) {
		switch (pkt.type) {
		case VMBUS_PKT_COMP:
			on_send_complete(n, &pkt);
			break;
		case VMBUS_PKT_DATA_INBAND:
			on_inband(n, &pkt);
			break;
		case VMBUS_PKT_DATA_USING_XFER_PAGES: {
			struct netvsc_rx_stats before = c->rx;
			netvsc_rx_xfer(n->rbuf, n->rbuf_size, &pkt, &sink, &c->rx);
			if (c->rx.bad_packets != before.bad_packets)
				count_bad(n, &n->st.bad_packets, LOG_PACKET,
					  "a transfer-page packet refused");
			if (c->rx.bad_ranges != before.bad_ranges)
				count_bad(n, &n->st.bad_ranges, LOG_RANGE,
					  "a range outside the receive buffer");
			if (c->rx.bad_rndis != before.bad_rndis)
				count_bad(n, &n->st.bad_rndis, LOG_RNDIS, "an RNDIS message that lies");
			if (c->npending || complete_rx(c, pkt.trans_id) != 0) {
				if (c->npending < PENDING_MAX)
					c->pending[c->npending++] = pkt.trans_id;
				else
					count_bad(n, &n->st.broken_rings, LOG_RING,
						  "receive completions lost: ring full");
			}
			break;
		}
		default:
			count_bad(n, &n->st.bad_packets, LOG_PACKET, "an unexpected packet type");
		}
	}
	/* Completions freed ring room: a batch whose send found none goes now. */
	if (__atomic_load_n(&c->batch_stalled, __ATOMIC_RELAXED))
		batch_flush(c);
	if (err == -EBADMSG || err == -EMSGSIZE) {
		c->broken = true;
		count_bad(n, &n->st.broken_rings, LOG_RING, "a broken ring: channel stopped");
	}
}

/* ---- Bring-up ---- */

static int negotiate(struct netvsc *n)
{
	uint32_t cap = n->d->cfg.max_version ? n->d->cfg.max_version : NVSP_PROTOCOL_VERSION_61;
	struct nvsp_message a;

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		if (versions[i] > cap)
			continue;
		struct nvsp_message m = {.msg_type = NVSP_MSG_TYPE_INIT};
		m.init.min_protocol_ver = versions[i];
		m.init.max_protocol_ver = versions[i];
		int err = nvsp_request(n, &m, &a);
		if (err)
			return err;
		if (a.msg_type == NVSP_MSG_TYPE_INIT_COMPLETE &&
		    a.init_complete.status == NVSP_STAT_SUCCESS) {
			n->st.nvsp_version = versions[i];
			return 0;
		}
	}
	return -EPROTONOSUPPORT;
}

static int send_config(struct netvsc *n)
{
	struct nvsp_message m;
	int err;
	if (n->st.nvsp_version >= NVSP_PROTOCOL_VERSION_2) {
		/* netvsc_connect_vsp: MTU + Ethernet header, VLAN and teaming;
		 * SR-IOV from NVSP 5 (we take no VF, but say what Linux says). */
		memset(&m, 0, sizeof(m));
		m.msg_type = NVSP_MSG2_TYPE_SEND_NDIS_CONFIG;
		m.send_ndis_config.mtu = n->mtu + ETH_HLEN;
		m.send_ndis_config.capability = NVSP_CAP_IEEE8021Q | NVSP_CAP_TEAMING;
		if (n->st.nvsp_version >= NVSP_PROTOCOL_VERSION_5)
			m.send_ndis_config.capability |= NVSP_CAP_SRIOV;
		if ((err = nvsp_post(n, &m, false)) != 0)
			return err;
	}
	n->st.ndis_version = n->st.nvsp_version > NVSP_PROTOCOL_VERSION_4 ? NVSP_NDIS_VERSION_6_30
									   : NVSP_NDIS_VERSION_6_1;
	memset(&m, 0, sizeof(m));
	m.msg_type = NVSP_MSG1_TYPE_SEND_NDIS_VER;
	m.send_ndis_ver.ndis_major_ver = n->st.ndis_version >> 16;
	m.send_ndis_ver.ndis_minor_ver = n->st.ndis_version & 0xffff;
	return nvsp_post(n, &m, false);
}

static int share_buffers(struct netvsc *n)
{
	const struct netvsc_config *cfg = &n->d->cfg;
	uint32_t rsecs = cfg->recv_sections ? cfg->recv_sections : DEFAULT_RECV_SECTIONS;
	uint32_t ssecs = cfg->send_sections ? cfg->send_sections : DEFAULT_SEND_SECTIONS;
	uint64_t rmax = n->st.nvsp_version <= NVSP_PROTOCOL_VERSION_2 ? NVSP_RECV_BUFFER_MAX_LEGACY
								       : NVSP_RECV_BUFFER_MAX;
	uint64_t rbytes = (uint64_t)rsecs * NVSP_RECV_SECTION_SIZE;
	uint64_t sbytes = (uint64_t)ssecs * NVSP_SEND_SECTION_SIZE;
	struct nvsp_message m, a;
	int err;

	if (rbytes > rmax)
		rbytes = rmax;
	if (sbytes > NVSP_SEND_BUFFER_MAX)
		sbytes = NVSP_SEND_BUFFER_MAX;
	n->rbuf_pages = pages_for(rbytes);
	n->rbuf_size = n->rbuf_pages * PAGE;
	n->rbuf = n->port->alloc_pages(n->port->ctx, n->rbuf_pages);
	n->sbuf_pages = pages_for(sbytes);
	n->sbuf = n->port->alloc_pages(n->port->ctx, n->sbuf_pages);
	if (!n->rbuf || !n->sbuf)
		return -ENOMEM;

	if ((err = vmbus_client_gpadl_create(n->primary, n->rbuf, n->rbuf_pages, &n->rgpadl)) != 0)
		return err;
	n->rgpadl_made = true;
	memset(&m, 0, sizeof(m));
	m.msg_type = NVSP_MSG1_TYPE_SEND_RECV_BUF;
	m.send_recv_buf.gpadl_handle = n->rgpadl;
	m.send_recv_buf.id = NVSP_RECV_BUFFER_ID;
	if ((err = nvsp_request(n, &m, &a)) != 0)
		return err;
	/* netvsc_init_buf: one section at offset 0, inside the buffer. */
	const struct nvsp_1_receive_buffer_section *s = &a.send_recv_buf_complete.sections[0];
	if (a.msg_type != NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE ||
	    a.send_recv_buf_complete.status != NVSP_STAT_SUCCESS)
		return -EIO;
	if (a.send_recv_buf_complete.num_sections != 1 || s->offset != 0 ||
	    s->sub_alloc_size < NVSP_RECV_SECTION_MIN || s->num_sub_allocs == 0 ||
	    (uint64_t)s->sub_alloc_size * s->num_sub_allocs > n->rbuf_size ||
	    s->end_offset > n->rbuf_size) {
		count_bad(n, &n->st.bad_packets, LOG_PACKET, "receive sections that do not fit");
		return -EPROTO;
	}
	n->st.recv_sections = s->num_sub_allocs;
	n->st.recv_section_size = s->sub_alloc_size;

	if ((err = vmbus_client_gpadl_create(n->primary, n->sbuf, n->sbuf_pages, &n->sgpadl)) != 0)
		return err;
	n->sgpadl_made = true;
	memset(&m, 0, sizeof(m));
	m.msg_type = NVSP_MSG1_TYPE_SEND_SEND_BUF;
	m.send_send_buf.gpadl_handle = n->sgpadl;
	m.send_send_buf.id = NVSP_SEND_BUFFER_ID;
	if ((err = nvsp_request(n, &m, &a)) != 0)
		return err;
	if (a.msg_type != NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE ||
	    a.send_send_buf_complete.status != NVSP_STAT_SUCCESS)
		return -EIO;
	uint32_t ssz = a.send_send_buf_complete.section_size;
	/* A section must hold an RNDIS packet header and a minimal frame. */
	if (ssz < 128 || ssz > n->sbuf_pages * PAGE) {
		count_bad(n, &n->st.bad_packets, LOG_PACKET, "a send section size that does not fit");
		return -EPROTO;
	}
	n->st.send_section_size = ssz;
	n->st.send_sections = n->sbuf_pages * PAGE / ssz;
	n->free_secs = n->port->alloc_pages(n->port->ctx,
					    pages_for((uint64_t)n->st.send_sections * 5));
	if (!n->free_secs)
		return -ENOMEM;
	n->sec_busy = (uint8_t *)(n->free_secs + n->st.send_sections);
	for (uint32_t i = 0; i < n->st.send_sections; i++)
		n->free_secs[i] = n->st.send_sections - 1 - i;
	n->nfree = n->st.send_sections;
	return 0;
}

static int query_device(struct netvsc *n)
{
	uint32_t len = 6, status = 0;
	int err = rndis_query(n, RNDIS_OID_802_3_PERMANENT_ADDRESS, NULL, 0, n->mac, &len);
	if (err)
		return err;
	if (len != 6)
		return -EPROTO;
	len = sizeof(status);
	if (rndis_query(n, RNDIS_OID_GEN_MEDIA_CONNECT_STATUS, NULL, 0, &status, &len) == 0 &&
	    len == sizeof(status))
		__atomic_store_n(&n->link_up, status == RNDIS_MEDIA_STATE_CONNECTED,
				 __ATOMIC_RELEASE);
	return 0;
}

/* Receive queues the host offers (NVSP 5+), as rndis_filter_device_add
 * asks: RSS capabilities, then SUBCHANNEL for min(queues, wanted) - 1. */
static int request_subchannels(struct netvsc *n)
{
	struct ndis_recv_scale_cap caps = {
		.hdr = {NDIS_OBJECT_TYPE_RSS_CAPABILITIES, NDIS_RECEIVE_SCALE_CAPABILITIES_REVISION_2,
			sizeof(caps)},
	};
	uint32_t len = sizeof(caps);
	uint32_t want = n->d->cfg.max_channels ? n->d->cfg.max_channels : NETVSC_MAX_CHANNELS;
	if (n->st.nvsp_version < NVSP_PROTOCOL_VERSION_5 || want <= 1)
		return 0;
	if (rndis_query(n, OID_GEN_RECEIVE_SCALE_CAPABILITIES, &caps, sizeof(caps), &caps, &len) ||
	    len < sizeof(caps))
		return 0; /* no RSS: one channel */
	uint32_t queues = caps.num_recv_que;
	if (want > NETVSC_MAX_CHANNELS)
		want = NETVSC_MAX_CHANNELS;
	if (queues > want)
		queues = want;
	if (queues <= 1)
		return 0;
	struct nvsp_message m = {.msg_type = NVSP_MSG5_TYPE_SUBCHANNEL}, a;
	m.subchn_req.op = NVSP_SUBCHANNEL_ALLOCATE;
	m.subchn_req.num_subchannels = queues - 1;
	int err = nvsp_request(n, &m, &a);
	if (err)
		return err;
	if (a.msg_type != NVSP_MSG5_TYPE_SUBCHANNEL || a.subchn_comp.status != NVSP_STAT_SUCCESS)
		return 0;
	uint32_t got = a.subchn_comp.num_subchannels;
	n->want_subs = got < queues - 1 ? got : queues - 1;
	return 0;
}

static struct netvsc_chan *chan_new(struct netvsc *n, struct vmbus_client_channel *ch)
{
	uint32_t pages = pages_for(sizeof(struct netvsc_chan));
	struct netvsc_chan *c = n->port->alloc_pages(n->port->ctx, pages);
	if (!c)
		return NULL;
	c->nic = n;
	c->ch = ch;
	c->batch_sec = NO_BATCH;
	c->batch_lock = n->port->lock_new(n->port->ctx);
	if (!c->batch_lock) {
		n->port->free_pages(n->port->ctx, c, pages);
		return NULL;
	}
	return c;
}

static int chan_open(struct netvsc *n, struct netvsc_chan *c)
{
	uint32_t ring = n->d->cfg.ring_bytes ? n->d->cfg.ring_bytes : DEFAULT_RING;
	int err = vmbus_client_channel_open(c->ch, ring, ring, NULL, 0, on_packets, c);
	if (!err) {
		c->open = true;
		vmbus_client_channel_set_data(c->ch, c);
	}
	return err;
}

static void chan_free(struct netvsc *n, struct netvsc_chan *c)
{
	if (c->open)
		vmbus_client_channel_close(c->ch);
	if (c->ch) /* NULL: its rescind took it already */
		vmbus_client_channel_set_data(c->ch, NULL);
	n->port->lock_free(n->port->ctx, c->batch_lock);
	n->port->free_pages(n->port->ctx, c, pages_for(sizeof(*c)));
}

/* Everything the host shares with the NIC goes: buffers revoked and torn
 * down, channels closed, pages freed (netvsc_device_remove). The NIC
 * itself, its settings and statistics stay. */
static void nic_down(struct netvsc *n)
{
	const struct hv_port *p = n->port;
	__atomic_store_n(&n->gone, true, __ATOMIC_RELEASE);
	__atomic_store_n(&n->nchan, 0, __ATOMIC_RELEASE);
	/* Every slot: a rescinded sub-channel may have left a hole below
	 * ones still there (nchan stops at the hole). */
	for (uint32_t i = NETVSC_MAX_CHANNELS; i-- > 1;)
		if (n->chans[i]) {
			chan_free(n, n->chans[i]);
			n->chans[i] = NULL;
		}
	/* Revoke the buffers before the primary closes (netvsc_revoke_*). */
	if (n->chans[0] && n->chans[0]->open && !n->chans[0]->broken) {
		struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_REVOKE_RECV_BUF};
		m.revoke_buf.id = NVSP_RECV_BUFFER_ID;
		if (n->rgpadl_made)
			nvsp_post(n, &m, false);
		m.msg_type = NVSP_MSG1_TYPE_REVOKE_SEND_BUF;
		m.revoke_buf.id = NVSP_SEND_BUFFER_ID;
		if (n->sgpadl_made)
			nvsp_post(n, &m, false);
	}
	if (n->rgpadl_made)
		vmbus_client_gpadl_teardown(n->primary, n->rgpadl);
	if (n->sgpadl_made)
		vmbus_client_gpadl_teardown(n->primary, n->sgpadl);
	n->rgpadl_made = n->sgpadl_made = false;
	if (n->chans[0])
		chan_free(n, n->chans[0]);
	n->chans[0] = NULL;
	if (n->rbuf)
		p->free_pages(p->ctx, n->rbuf, n->rbuf_pages);
	if (n->sbuf)
		p->free_pages(p->ctx, n->sbuf, n->sbuf_pages);
	if (n->free_secs)
		p->free_pages(p->ctx, n->free_secs, pages_for((uint64_t)n->st.send_sections * 5));
	if (n->bounce)
		p->free_pages(p->ctx, n->bounce, n->bounce_pages * BOUNCE_SLOTS);
	n->rbuf = n->sbuf = n->bounce = NULL;
	n->free_secs = NULL;
	n->sec_busy = NULL;
	n->nfree = 0;
	n->want_subs = 0;
	memset(n->bounce_busy, 0, sizeof(n->bounce_busy));
}

static void nic_free(struct netvsc *n)
{
	const struct hv_port *p = n->port;
	__atomic_store_n(&n->opened, false, __ATOMIC_RELEASE);
	nic_down(n);
	if (n->ev)
		p->event_free(p->ctx, n->ev);
	if (n->lock)
		p->lock_free(p->ctx, n->lock);
	if (n->tx_lock)
		p->lock_free(p->ctx, n->tx_lock);
	p->free_pages(p->ctx, n, pages_for(sizeof(*n)));
}

static int bring_up(struct netvsc *n)
{
	int err;
	if ((err = negotiate(n)) != 0) {
		nlog(n, "netvsc: no NVSP version agreed (%d)\n", err);
		return err;
	}
	if ((err = send_config(n)) != 0 || (err = share_buffers(n)) != 0)
		return err;
	/* Jumbo frames travel GPA-direct from bounce buffers. */
	n->bounce_pages = pages_for(ETH_HLEN + VLAN_HLEN + n->mtu + 256);
	n->bounce = n->port->alloc_pages(n->port->ctx, n->bounce_pages * BOUNCE_SLOTS);
	if (!n->bounce)
		return -ENOMEM;
	if ((err = rndis_init(n)) != 0 || (err = query_device(n)) != 0)
		return err;
	return request_subchannels(n);
}

static int probe(void *ctx, struct vmbus_client_channel *ch)
{
	struct netvsc_driver *d = ctx;
	const struct hv_port *p = d->port;
	struct netvsc *n = p->alloc_pages(p->ctx, pages_for(sizeof(*n)));
	if (!n)
		return -ENOMEM;
	n->d = d;
	n->port = p;
	n->primary = ch;
	n->mtu = d->cfg.mtu ? d->cfg.mtu : 1500;
	n->lock = p->lock_new(p->ctx);
	n->tx_lock = p->lock_new(p->ctx);
	n->ev = p->event_new(p->ctx);
	n->chans[0] = chan_new(n, ch);
	int err = -ENOMEM;
	if (n->lock && n->tx_lock && n->ev && n->chans[0]) {
		n->nchan = 1;
		err = chan_open(n, n->chans[0]);
		if (!err)
			err = bring_up(n);
	}
	p->lock(p->ctx, d->lock);
	if (!err && d->count == NETVSC_MAX_NICS)
		err = -ENOSPC;
	if (!err)
		d->nics[d->count++] = n;
	p->unlock(p->ctx, d->lock);
	if (err) {
		nlog(n, "netvsc: NIC not brought up (%d)\n", err);
		nic_free(n);
		vmbus_client_channel_set_data(ch, NULL);
		return err;
	}
	n->st.channels = 1;
	return 0;
}

/* Receive-side scaling over the channels open now, as
 * rndis_filter_set_rss_param lays it out: Toeplitz over IPv4/IPv6
 * addresses and TCP ports, table entry i to channel i % channels
 * (ethtool_rxfh_indir_default), then the key. */
static int set_rss(struct netvsc *n, uint32_t channels)
{
	enum { TABLE = NDIS_RSS_INDIRECTION_TABLE_MAX_SIZE, KEY = NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE };
	uint8_t info[sizeof(struct ndis_recv_scale_param) + TABLE + KEY];
	struct ndis_recv_scale_param p = {
		.hdr = {NDIS_OBJECT_TYPE_RSS_PARAMETERS, NDIS_RECEIVE_SCALE_PARAMETERS_REVISION_2,
			sizeof(p)},
		.hashinfo = NDIS_HASH_FUNC_TOEPLITZ | NDIS_HASH_IPV4 | NDIS_HASH_TCP_IPV4 |
			    NDIS_HASH_IPV6 | NDIS_HASH_TCP_IPV6,
		.indirect_tabsize = TABLE,
		.indirect_taboffset = sizeof(p),
		.hashkey_size = KEY,
		.hashkey_offset = sizeof(p) + TABLE,
	};
	memcpy(info, &p, sizeof(p));
	for (uint32_t i = 0; i < TABLE / 4; i++) {
		uint32_t q = i % channels;
		memcpy(info + sizeof(p) + 4 * i, &q, 4);
	}
	static const uint8_t key[KEY] = NDIS_RSS_DEFAULT_KEY; /* Linux's */
	memcpy(info + sizeof(p) + TABLE, key, KEY);
	return rndis_set(n, OID_GEN_RECEIVE_SCALE_PARAMETERS, info, sizeof(info));
}

static struct netvsc *nic_of(struct netvsc_driver *d, struct vmbus_client_channel *primary)
{
	struct netvsc *n = NULL;
	d->port->lock(d->port->ctx, d->lock);
	for (uint32_t i = 0; i < d->count; i++)
		if (d->nics[i]->primary == primary)
			n = d->nics[i];
	d->port->unlock(d->port->ctx, d->lock);
	return n;
}

/* A sub-channel the host offered after SUBCHANNEL: opened, then used. */
static void subchannel(void *ctx, struct vmbus_client_channel *primary,
		       struct vmbus_client_channel *sub)
{
	struct netvsc *n = nic_of(ctx, primary);
	struct vmbus_client_channel_info ci;
	vmbus_client_channel_info(sub, &ci);
	if (!n || ci.sub_channel_index == 0 || ci.sub_channel_index >= NETVSC_MAX_CHANNELS ||
	    n->chans[ci.sub_channel_index])
		return;
	struct netvsc_chan *c = chan_new(n, sub);
	if (!c)
		return;
	if (chan_open(n, c) != 0) {
		chan_free(n, c);
		return;
	}
	n->chans[ci.sub_channel_index] = c;
	/* Channels are used once every lower index is open. */
	uint32_t k = 1;
	while (k < NETVSC_MAX_CHANNELS && n->chans[k])
		k++;
	__atomic_store_n(&n->nchan, k, __ATOMIC_RELEASE);
	n->st.channels = k;
	/* Opened before its sub-channels came (a resume): receive is spread
	 * once they all have, as rndis_filter_device_add does after waiting
	 * for them. */
	if (__atomic_load_n(&n->opened, __ATOMIC_ACQUIRE) && k == 1 + n->want_subs && k > 1 &&
	    n->st.rss_channels != k && set_rss(n, k) == 0)
		n->st.rss_channels = k;
}

/* The host rescinded a sub-channel on its own (as it does each one before
 * the primary when a NIC goes): frames stop going to it and it is closed
 * now, because the client frees it after this returns; its state stays
 * until the NIC goes. A sender that picked it just before keeps its
 * pointer for one send (Linux covers that window with RCU). */
static void sub_remove(struct vmbus_client_channel *ch)
{
	struct netvsc_chan *c = vmbus_client_channel_data(ch);
	if (!c || c->ch != ch)
		return;
	struct netvsc *n = c->nic;
	for (uint32_t i = 1; i < NETVSC_MAX_CHANNELS; i++)
		if (n->chans[i] == c && i < __atomic_load_n(&n->nchan, __ATOMIC_ACQUIRE)) {
			__atomic_store_n(&n->nchan, i, __ATOMIC_RELEASE);
			n->st.channels = i;
		}
	__atomic_store_n(&c->broken, true, __ATOMIC_RELEASE); /* senders use the primary */
	if (c->open)
		vmbus_client_channel_close(ch);
	vmbus_client_channel_set_data(ch, NULL);
	c->open = false;
	c->ch = NULL;
}

static void nic_remove(void *ctx, struct vmbus_client_channel *ch)
{
	struct netvsc_driver *d = ctx;
	struct netvsc *n = NULL;
	d->port->lock(d->port->ctx, d->lock);
	for (uint32_t i = 0; i < d->count; i++) {
		if (d->nics[i]->primary == ch) {
			n = d->nics[i];
			d->nics[i] = d->nics[--d->count];
			break;
		}
	}
	d->port->unlock(d->port->ctx, d->lock);
	if (n)
		nic_free(n);
	else
		sub_remove(ch);
}

/* netvsc_suspend -> netvsc_detach: sending stops, everything shared with
 * the host goes (the sub-channels with the primary's close), the NIC and
 * what the OS set on it (its callbacks) stay. */
static int nic_suspend(void *ctx, struct vmbus_client_channel *ch)
{
	struct netvsc *n = nic_of(ctx, ch);
	if (!n)
		return -EINVAL;
	nic_down(n);
	n->st.channels = 0;
	n->st.rss_channels = 0;
	return 0;
}

/* netvsc_resume -> netvsc_attach: the primary opened again, NVSP, the
 * buffers and RNDIS from the start, new sub-channels asked for; if the OS
 * had opened the NIC, its filter again (RSS once the sub-channels are
 * open: subchannel()). */
static int nic_resume(void *ctx, struct vmbus_client_channel *ch)
{
	struct netvsc *n = nic_of(ctx, ch);
	if (!n)
		return -EINVAL;
	n->primary = ch;
	n->chans[0] = chan_new(n, ch);
	if (!n->chans[0])
		return -ENOMEM;
	__atomic_store_n(&n->nchan, 1, __ATOMIC_RELEASE);
	int err = chan_open(n, n->chans[0]);
	if (!err)
		err = bring_up(n);
	if (err)
		return err;
	n->st.channels = 1;
	__atomic_store_n(&n->gone, false, __ATOMIC_RELEASE);
	if (!__atomic_load_n(&n->opened, __ATOMIC_ACQUIRE))
		return 0;
	uint32_t filter = NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_MULTICAST |
			  NDIS_PACKET_TYPE_BROADCAST;
	return rndis_set(n, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, &filter, sizeof(filter));
}

/* ---- Interface ---- */

struct netvsc_driver *netvsc_driver_new(struct vmbus_client *c, const struct netvsc_config *cfg,
					int *err)
{
	const struct hv_port *p = vmbus_client_port(c);
	struct netvsc_config k = cfg ? *cfg : (struct netvsc_config){0};
	*err = -EINVAL;
	if (k.mtu > MTU_MAX || (k.mtu && k.mtu < 68) || k.max_channels > NETVSC_MAX_CHANNELS)
		return NULL;
	*err = -ENOMEM;
	struct netvsc_driver *d = p->alloc_pages(p->ctx, pages_for(sizeof(*d)));
	if (!d)
		return NULL;
	d->c = c;
	d->port = p;
	d->cfg = k;
	d->lock = p->lock_new(p->ctx);
	struct vmbus_driver drv = {
		.class_id = NETVSC_CLASS_GUID,
		.name = "netvsc",
		.fast = true,
		.probe = probe,
		.remove = nic_remove,
		.subchannel = subchannel,
		.suspend = nic_suspend,
		.resume = nic_resume,
		.ctx = d,
	};
	*err = d->lock ? vmbus_client_register_driver(c, &drv) : -ENOMEM;
	if (*err) {
		if (d->lock)
			p->lock_free(p->ctx, d->lock);
		p->free_pages(p->ctx, d, pages_for(sizeof(*d)));
		return NULL;
	}
	return d;
}

void netvsc_driver_free(struct netvsc_driver *d)
{
	if (!d)
		return;
	while (d->count)
		nic_remove(d, d->nics[0]->primary);
	d->port->lock_free(d->port->ctx, d->lock);
	d->port->free_pages(d->port->ctx, d, pages_for(sizeof(*d)));
}

uint32_t netvsc_count(struct netvsc_driver *d)
{
	d->port->lock(d->port->ctx, d->lock);
	uint32_t n = d->count;
	d->port->unlock(d->port->ctx, d->lock);
	return n;
}

struct netvsc *netvsc_nic(struct netvsc_driver *d, uint32_t i)
{
	d->port->lock(d->port->ctx, d->lock);
	struct netvsc *n = i < d->count ? d->nics[i] : NULL;
	d->port->unlock(d->port->ctx, d->lock);
	return n;
}

int netvsc_open(struct netvsc *n, const struct netvsc_ops *ops)
{
	if (!n || !ops)
		return -EINVAL;
	n->ops = *ops;
	__atomic_store_n(&n->opened, true, __ATOMIC_RELEASE);
	uint32_t filter = NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_MULTICAST |
			  NDIS_PACKET_TYPE_BROADCAST;
	int err = rndis_set(n, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, &filter, sizeof(filter));
	if (err) {
		__atomic_store_n(&n->opened, false, __ATOMIC_RELEASE);
		return err;
	}
	/* Spread receive over the sub-channels open now; a host refusing it
	 * still spreads by its own choice, so that is no failure. */
	uint32_t nchan = __atomic_load_n(&n->nchan, __ATOMIC_ACQUIRE);
	if (nchan > 1 && set_rss(n, nchan) == 0)
		n->st.rss_channels = nchan;
	else if (nchan > 1)
		nlog(n, "netvsc: the host refused RSS over %u channels\n", nchan);
	return 0;
}

/* The flow's hash: addresses and, for IPv4 TCP/UDP, ports, so one flow
 * keeps one channel (Linux hashes the skb's flow the same way). */
static uint32_t flow_hash(const uint8_t *f, size_t len)
{
	uint32_t h = 2166136261u;
	size_t from = 0, to = 12;
	if (len >= 38 && f[12] == 0x08 && f[13] == 0x00 && (f[23] == 6 || f[23] == 17)) {
		from = 26; /* IPv4 source, destination, then the ports */
		to = 38;
	}
	for (size_t i = from; i < to; i++)
		h = (h ^ f[i]) * 16777619u;
	return h;
}

/* Appends an RNDIS packet to the channel's send section (taking one if
 * needed), then sends the section unless more is coming and there is room
 * for another. With batching, each msg_len is padded to the host's
 * alignment (netvsc_copy_to_send_buf). */
static int send_copied(struct netvsc *n, struct netvsc_chan *c, const struct rndis_packet *p,
		       const void *frame, uint32_t len, bool more)
{
	const uint32_t hdr = sizeof(struct rndis_msg_header) + sizeof(struct rndis_packet);
	const uint32_t ssz = n->st.send_section_size;
	uint32_t total = hdr + len;
	uint32_t padded = (total + n->pkt_align - 1) & ~(n->pkt_align - 1);
	int err = 0;

	n->port->lock(n->port->ctx, c->batch_lock);
	if (c->batch_sec != NO_BATCH &&
	    (c->batch_stalled || c->batch_len + padded > ssz || c->batch_count >= n->max_pkts))
		err = batch_flush_locked(c);
	if (!err && c->batch_sec == NO_BATCH)
		err = section_get(n, &c->batch_sec);
	if (err) {
		n->port->unlock(n->port->ctx, c->batch_lock);
		return err;
	}
	/* Pad only when another packet may follow in the same section. */
	uint32_t msg_len = (more && n->max_pkts > 1 && padded <= ssz) ? padded : total;
	uint8_t *d = n->sbuf + (size_t)c->batch_sec * ssz + c->batch_len;
	struct rndis_msg_header h = {RNDIS_MSG_PACKET, msg_len};
	memcpy(d, &h, sizeof(h));
	memcpy(d + sizeof(h), p, sizeof(*p));
	memcpy(d + hdr, frame, len);
	memset(d + total, 0, msg_len - total);
	c->batch_len += msg_len;
	c->batch_count++;
	add(&n->st.tx_copied, 1);
	if (!more || msg_len != padded || c->batch_count >= n->max_pkts ||
	    c->batch_len + hdr + ETH_HLEN > ssz)
		batch_flush_locked(c); /* a stalled batch goes with the next call */
	n->port->unlock(n->port->ctx, c->batch_lock);
	return 0;
}

static int send_direct(struct netvsc *n, struct netvsc_chan *c, const struct rndis_packet *p,
		       const void *frame, uint32_t len)
{
	const uint32_t hdr = sizeof(struct rndis_msg_header) + sizeof(struct rndis_packet);
	uint32_t total = hdr + len, idx;
	int err = bounce_get(n, &idx);
	if (err)
		return err;
	uint8_t *b = n->bounce + (size_t)idx * n->bounce_pages * PAGE;
	struct rndis_msg_header h = {RNDIS_MSG_PACKET, total};
	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), p, sizeof(*p));
	memcpy(b + hdr, frame, len);
	uint64_t pfns[32];
	uint32_t np = pages_for(total);
	for (uint32_t i = 0; i < np; i++)
		pfns[i] = n->port->gpa_of(n->port->ctx, b + (size_t)i * PAGE) / PAGE;
	struct vmbus_gpa_range_out r = {.byte_count = total, .byte_offset = 0, .pfns = pfns};
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT};
	m.send_rndis_pkt.channel_type = NVSP_RMC_DATA;
	m.send_rndis_pkt.send_buf_section_index = NVSP_INVALID_SECTION_INDEX;
	err = vmbus_client_channel_send_gpa_direct(c->ch, TID(TID_BOUNCE, idx), &r, 1, &m,
						   sizeof(m));
	if (err) {
		bounce_put(n, idx);
		return err;
	}
	add(&n->st.tx_gpa_direct, 1);
	add(&n->st.tx_sends, 1);
	return 0;
}

uint32_t netvsc_tx_queue(struct netvsc *n, const void *frame, size_t len)
{
	uint32_t nchan = __atomic_load_n(&n->nchan, __ATOMIC_ACQUIRE);
	uint32_t q = 0;
	if (nchan > 1)
		q = __atomic_load_n(&n->st.send_table[flow_hash(frame, len) % NVSP_SEND_TABLE_SIZE],
				    __ATOMIC_RELAXED) % nchan;
	return n->chans[q]->broken ? 0 : q;
}

static struct netvsc_chan *tx_channel(struct netvsc *n, const void *frame, size_t len)
{
	return n->chans[netvsc_tx_queue(n, frame, len)];
}

int netvsc_send_flags(struct netvsc *n, const void *frame, size_t len, uint32_t flags)
{
	if (!n || !frame)
		return -EINVAL;
	if (__atomic_load_n(&n->gone, __ATOMIC_ACQUIRE) ||
	    !__atomic_load_n(&n->opened, __ATOMIC_ACQUIRE))
		return -ENOTCONN;
	if (len < ETH_HLEN || len > n->mtu + ETH_HLEN + VLAN_HLEN)
		return -EMSGSIZE;

	struct netvsc_chan *c = tx_channel(n, frame, len);
	/* The RNDIS packet header, then the frame (rndis_filter_send). */
	const uint32_t hdr = sizeof(struct rndis_msg_header) + sizeof(struct rndis_packet);
	struct rndis_packet p = {.data_offset = sizeof(p), .data_len = (uint32_t)len};
	bool more = flags & NETVSC_SEND_MORE;
	int err;
	if (hdr + len <= n->st.send_section_size) {
		err = send_copied(n, c, &p, frame, (uint32_t)len, more);
	} else {
		/* Frames batched on this channel go first, in order. */
		err = batch_flush(c);
		if (!err)
			err = send_direct(n, c, &p, frame, (uint32_t)len);
	}
	/* The end of a burst: what waits on the other channels goes too. */
	if (!err && !more)
		netvsc_flush(n);
	if (err) {
		if (err == -EAGAIN)
			add(&n->st.tx_busy, 1);
		return err == -EAGAIN ? -EAGAIN : (err == -ENODEV ? -ENOTCONN : err);
	}
	add(&n->st.tx_frames, 1);
	add(&n->st.tx_bytes, len);
	return 0;
}

int netvsc_send(struct netvsc *n, const void *frame, size_t len)
{
	return netvsc_send_flags(n, frame, len, 0);
}

int netvsc_flush(struct netvsc *n)
{
	if (!n)
		return -EINVAL;
	uint32_t nchan = __atomic_load_n(&n->nchan, __ATOMIC_ACQUIRE);
	int err = 0;
	for (uint32_t i = 0; i < nchan; i++) {
		/* A hint read without the lock: a batch being built now is
		 * its sender's to finish. */
		if (__atomic_load_n(&n->chans[i]->batch_sec, __ATOMIC_RELAXED) == NO_BATCH)
			continue;
		int e = batch_flush(n->chans[i]);
		if (e && !err)
			err = e == -ENODEV ? -ENOTCONN : e;
	}
	return err;
}

void netvsc_get_mac(const struct netvsc *n, uint8_t mac[6])
{
	memcpy(mac, n->mac, 6);
}

bool netvsc_link_up(const struct netvsc *n)
{
	return __atomic_load_n(&n->link_up, __ATOMIC_ACQUIRE);
}

uint32_t netvsc_mtu(const struct netvsc *n)
{
	return n->mtu;
}

void netvsc_get_stats(const struct netvsc *n, struct netvsc_stats *out)
{
	struct netvsc *m = (struct netvsc *)n; /* the locks are not state */
	m->port->lock(m->port->ctx, m->tx_lock);
	*out = n->st;
	out->tx_in_flight = n->st.send_sections - n->nfree;
	for (uint32_t i = 0; i < BOUNCE_SLOTS; i++)
		out->tx_in_flight += n->bounce_busy[i];
	m->port->unlock(m->port->ctx, m->tx_lock);
	out->channels = __atomic_load_n(&n->nchan, __ATOMIC_ACQUIRE);
}
