/* SPDX-License-Identifier: MIT */
/*
 * netvsp: the synthetic NIC's VSP (see netvsp.h). Layout: logging and
 * counting; guest buffers (receive and send, shared by GPADL); writing to
 * the guest (completions, in-band messages, receive indications); the
 * NVSP messages; reading a channel; the VMBus device ops; the public calls.
 *
 * What the host does, in Linux 6.1's order (drivers/net/hyperv/netvsc.c
 * netvsc_connect_vsp, netvsc_init_buf; rndis_filter.c):
 *  1. INIT with one version: INIT_COMPLETE, success if we speak it;
 *  2. SEND_NDIS_CONFIG (NVSP 2+) and SEND_NDIS_VER: recorded;
 *  3. SEND_RECV_BUF: the receive buffer, cut into sections of
 *     recv_section_size, one section per indication;
 *     SEND_SEND_BUF: the send buffer, with NVSP_SEND_SECTION_SIZE sections;
 *     then (NVSP 4+) a VF association saying "no VF";
 *  4. RNDIS over SEND_RNDIS_PKT both ways; SUBCHANNEL (NVSP 5+) offers
 *     sub-channels and is followed by the send indirection table.
 * A receive section is reused only after the guest completes the
 * transfer-page packet that used it; a completion naming a transaction we
 * do not have in flight is counted and ignored.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netvsp.h"
#include "record.h"
#include "ring_buffer.h"
#include "vmbus_device.h"

#define PAGE 4096u
/* Ring room kept for any one answer: a completion or in-band NVSP message
 * with the send table is at most 16 + 104 bytes, plus the trailer. */
#define ANSWER_ROOM 256u
#define PENDING_MAX 16u
#define NVSP_LEN ((uint32_t)sizeof(struct nvsp_message))
/* Ring bytes of one receive indication of `ranges` ranges: descriptor,
 * transfer-page header, the ranges, the NVSP message, the trailer. */
#define XFER_BYTES(ranges) (16u + 8u + 8u * (ranges) + NVSP_LEN + 8u)
#define NO_SECTION UINT32_MAX

enum bad_kind {
	LOG_MESSAGE,
	LOG_SECTION,
	LOG_RANGE,
	LOG_COMPLETION,
	LOG_RNDIS,
	LOG_RING,
	LOG_PENDING,
};

/* A guest buffer shared by GPADL: our copy of its page list. */
struct guest_buf {
	bool set;
	uint16_t id;
	uint32_t gpadl;
	uint64_t *pfns;
	uint32_t pages;
	uint32_t size; /* bytes: pages * PAGE */
	uint32_t section_size, sections;
	/* Send buffer, per section: where it is in our address space if its
	 * pages are one run of guest RAM (read in place), else NULL. */
	const uint8_t **in_place;
};

struct chan {
	struct vmbus_channel *ch;
	uint16_t index;
	bool broken;  /* the guest corrupted a ring: stop touching it */
	bool waiting; /* pending_send_sz armed on our outgoing ring */
	uint8_t *pkt; /* private copy of the packet being handled */
	uint32_t pkt_cap;
};

struct pending {
	uint32_t len;
	uint8_t msg[RNDIS_RESPONSE_MAX];
};

struct netvsp {
	struct netvsp_config cfg;
	struct vmbus_device *dev;
	uint8_t mac[6];

	/* What the guest set up; all reset when the primary channel closes. */
	uint32_t version;
	uint32_t ndis_version;
	uint32_t guest_mtu;
	uint64_t guest_caps;
	uint32_t datapath;
	struct guest_buf recv, send;
	uint64_t *rx_tid;   /* per receive section: its transaction, 0 if free */
	uint32_t *rx_next;  /* per section in flight: the packet's next, or NO_SECTION */
	uint32_t *rx_free;  /* stack of free receive sections */
	uint32_t rx_free_count;
	uint32_t rx_seq;
	bool rx_blocked;    /* a -ENOBUFS is owed an rx_ready */
	bool rx_streak;     /* a source said NETVSP_RX_MORE: it polls the rings */
	struct rndis_dev rndis;
	struct pending pending[PENDING_MAX]; /* control answers waiting for room */
	uint32_t pending_head, pending_count;

	struct chan *chans[NETVSP_QUEUES_MAX];
	uint32_t subchannels; /* offered on this opening of the primary */
	uint32_t subchannels_offered; /* in all, for the statistics */
	uint8_t *gather;      /* one send's RNDIS bytes, gathered */
	uint32_t gather_cap;
	uint32_t logged;
	struct netvsp_stats st;

	/* The device thread (config.drain_thread). `ready` has a bit per
	 * channel index the guest signalled and the thread has yet to read;
	 * work_lock guards it and `stop`, and is taken inside the device lock
	 * (by notify), never around it. */
	pthread_t worker;
	bool worker_running;
	pthread_mutex_t work_lock;
	pthread_cond_t work_cond;
	pthread_cond_t idle_cond; /* ready is 0 and no turn runs */
	uint32_t ready;
	bool busy; /* a turn runs */
	bool stop;
};

/* ------------------------------------------------------------------ */
/* Logging and counting                                                */
/* ------------------------------------------------------------------ */

__attribute__((format(printf, 2, 3)))
static void nlog(struct netvsp *n, const char *fmt, ...)
{
	if (!n->cfg.log)
		return;
	va_list ap;
	va_start(ap, fmt);
	n->cfg.log(n->cfg.log_ctx, fmt, ap);
	va_end(ap);
}

/* Counts a refusal and logs its kind the first time. */
static void refuse(struct netvsp *n, uint64_t *counter, enum bad_kind kind, const char *what)
{
	(*counter)++;
	if (!(n->logged & (1u << kind))) {
		n->logged |= 1u << kind;
		nlog(n, "netvsp%u: %s (logged once)", n->cfg.instance, what);
	}
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* ------------------------------------------------------------------ */
/* Guest buffers                                                       */
/* ------------------------------------------------------------------ */

static void buf_drop(struct guest_buf *b)
{
	free(b->pfns);
	free(b->in_place);
	memset(b, 0, sizeof(*b));
}

/* Copies between a guest buffer at [off, off + len) and host memory, page
 * by page through guest_memory (each PFN checked against guest RAM).
 * -EFAULT if any part is outside the buffer or guest RAM. */
static int buf_copy(struct netvsp *n, const struct guest_buf *b, uint32_t off, void *host,
		    uint32_t len, bool to_guest)
{
	if (off > b->size || len > b->size - off)
		return -EFAULT;
	uint8_t *h = host;
	while (len) {
		uint32_t in_page = off % PAGE;
		uint32_t chunk = PAGE - in_page < len ? PAGE - in_page : len;
		uint64_t gpa = b->pfns[off / PAGE] * PAGE + in_page;
		int err = to_guest ? guest_memory_write(n->cfg.mem, gpa, h, chunk)
				   : guest_memory_read(n->cfg.mem, gpa, h, chunk);
		if (err)
			return err;
		h += chunk;
		off += chunk;
		len -= chunk;
	}
	return 0;
}

/* Takes the GPADL as a buffer: a copy of its page list, checked. */
static uint32_t buf_take(struct netvsp *n, struct chan *c, struct guest_buf *b, uint32_t gpadl,
			 uint16_t id, uint32_t max_bytes)
{
	const uint64_t *pfns;
	uint32_t count;
	if (b->set)
		return NVSP_STAT_FAIL; /* revoke first */
	if (vmbus_channel_gpadl_pfns_locked(c->ch, gpadl, &pfns, &count) || count == 0 ||
	    count > max_bytes / PAGE)
		return NVSP_STAT_FAIL;
	b->pfns = malloc(sizeof(*pfns) * count);
	if (!b->pfns)
		return NVSP_STAT_FAIL;
	memcpy(b->pfns, pfns, sizeof(*pfns) * count);
	b->pages = count;
	b->size = count * PAGE;
	b->gpadl = gpadl;
	b->id = id;
	b->set = true;
	(void)n;
	return NVSP_STAT_SUCCESS;
}

/* The host address of [off, off + len) of b if its pages are consecutive
 * guest pages inside one region of guest RAM, else NULL. */
static const uint8_t *buf_run(const struct netvsp *n, const struct guest_buf *b, uint32_t off,
			      uint32_t len)
{
	uint32_t first = off / PAGE, last = (off + len - 1) / PAGE;
	for (uint32_t i = first; i < last; i++)
		if (b->pfns[i + 1] != b->pfns[i] + 1)
			return NULL;
	return guest_memory_ptr(n->cfg.mem, b->pfns[first] * PAGE + off % PAGE, len);
}

/* Which send sections can be read in place (rndis_dev_handle_shared)
 * rather than gathered: those of one run of guest pages, as our guests
 * allocate them. A Linux guest's vmalloc'd buffer is mostly scattered;
 * without the table (no memory) every section is gathered. */
static void map_sections_in_place(struct netvsp *n, struct guest_buf *b)
{
	b->in_place = calloc(b->sections, sizeof(*b->in_place));
	for (uint32_t i = 0; b->in_place && i < b->sections; i++)
		b->in_place[i] = buf_run(n, b, i * b->section_size, b->section_size);
}

/* Receive sections: big enough for the RNDIS header and a frame of MTU plus
 * Ethernet header and VLAN tag, rounded to 64 bytes; never below Linux's own
 * plan (NVSP_RECV_SECTION_SIZE). */
static uint32_t recv_section_size(const struct netvsp *n)
{
	uint32_t need = RNDIS_RX_HEADER_MAX + n->cfg.mtu + RNDIS_ETH_HLEN + RNDIS_VLAN_HLEN;
	need = (need + 63) & ~63u;
	return need < NVSP_RECV_SECTION_SIZE ? NVSP_RECV_SECTION_SIZE : need;
}

static void recv_sections_free(struct netvsp *n)
{
	free(n->rx_tid);
	free(n->rx_next);
	free(n->rx_free);
	n->rx_tid = NULL;
	n->rx_next = NULL;
	n->rx_free = NULL;
	n->rx_free_count = 0;
	buf_drop(&n->recv);
}

static int recv_sections_init(struct netvsp *n)
{
	struct guest_buf *b = &n->recv;
	b->section_size = recv_section_size(n);
	b->sections = b->size / b->section_size;
	if (b->sections == 0)
		return -EINVAL;
	n->rx_tid = calloc(b->sections, sizeof(*n->rx_tid));
	n->rx_next = malloc(sizeof(*n->rx_next) * b->sections);
	n->rx_free = malloc(sizeof(*n->rx_free) * b->sections);
	if (!n->rx_tid || !n->rx_next || !n->rx_free)
		return -ENOMEM;
	/* Lowest first out, so a quiet guest sees the start of its buffer. */
	for (uint32_t i = 0; i < b->sections; i++)
		n->rx_free[i] = b->sections - 1 - i;
	n->rx_free_count = b->sections;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Writing to the guest                                                */
/* ------------------------------------------------------------------ */

static void chan_flush(struct chan *c)
{
	if (vmbus_ring_publish(vmbus_channel_out(c->ch)))
		vmbus_channel_signal_locked(c->ch);
}

/* A completion for trans_id carrying msg (the room was checked first). */
static void complete(struct netvsp *n, struct chan *c, uint64_t trans_id, const void *msg,
		     uint32_t len)
{
	int err = vmbus_ring_put_completion(vmbus_channel_out(c->ch), trans_id, msg, len, NULL);
	if (err == -EBADMSG) {
		c->broken = true;
		refuse(n, &n->st.broken_rings, LOG_RING, "guest corrupted a ring");
	}
}

static void complete_nvsp(struct netvsp *n, struct chan *c, uint64_t trans_id,
			  const struct nvsp_message *m)
{
	complete(n, c, trans_id, m, NVSP_LEN);
}

static void send_inband(struct netvsp *n, struct chan *c, const void *msg, uint32_t len)
{
	struct vmbus_ring_iov iov = {msg, len};
	int err = vmbus_ring_put_inband(vmbus_channel_out(c->ch), 0, 0, &iov, 1, NULL);
	if (err == -EBADMSG) {
		c->broken = true;
		refuse(n, &n->st.broken_rings, LOG_RING, "guest corrupted a ring");
	}
}

static uint32_t open_channels(const struct netvsp *n)
{
	uint32_t k = 0;
	for (uint32_t i = 0; i < NETVSP_QUEUES_MAX; i++)
		k += n->chans[i] && !n->chans[i]->broken;
	return k;
}

/* A received frame's RSS hash, when the guest's RSS settings give one. */
struct rx_hash {
	bool valid;
	uint32_t hash;
};

/* The channel for a received frame, so a flow stays on one channel: the
 * guest's RSS indirection table over the Toeplitz hash it asked for (the
 * hash also goes to the guest as per-packet info, as Hyper-V's does);
 * without RSS, a cheap hash of the addresses over the sub-channels. With
 * one channel and no RSS there is nothing to choose, and no hash (it was a
 * tenth of the receive path's time). */
static struct chan *rx_channel(struct netvsp *n, const uint8_t *frame, uint32_t len,
			       struct rx_hash *rh)
{
	uint32_t q = 0;
	rh->valid = rndis_dev_rx_hash(&n->rndis, frame, len, &rh->hash);
	if (rh->valid) {
		/* The guest's RSS: its key and types, its indirection table. */
		q = n->rndis.rss_table[rh->hash % n->rndis.rss_table_len];
	} else if (n->subchannels) {
		/* No RSS set up (or not a type it hashes): still spread flows,
		 * by their Ethernet header and IPv4 addresses. */
		uint32_t h = 2166136261u;
		uint32_t end = len < 34 ? len : 34;
		for (uint32_t i = 0; i < end; i++)
			h = (h ^ frame[i]) * 16777619u;
		q = h % (n->subchannels + 1);
	}
	if (q < NETVSP_QUEUES_MAX && n->chans[q] && !n->chans[q]->broken)
		return n->chans[q];
	return n->chans[0] && !n->chans[0]->broken ? n->chans[0] : NULL;
}

/*
 * Receive indications. A batch is one transfer-page packet: up to
 * NETVSP_RX_BURST_MAX RNDIS messages, each in a receive section of its own
 * and named by one range, as Hyper-V sends them and Linux 6.1's
 * netvsc_receive walks them (drivers/net/hyperv/netvsc.c: every range one
 * RNDIS message, one completion for the packet's transaction). The
 * transaction names the first section; the others hang off it in rx_next,
 * and the one completion frees them all.
 */
struct rx_batch {
	struct chan *c;
	uint32_t channel_type;
	uint32_t count;
	uint32_t sections[NETVSP_RX_BURST_MAX];
	struct vmbus_xfer_page_range ranges[NETVSP_RX_BURST_MAX];
};

/* Gives the batch's sections back unsent (last taken, first back). */
static void batch_drop(struct netvsp *n, struct rx_batch *b)
{
	while (b->count)
		n->rx_free[n->rx_free_count++] = b->sections[--b->count];
}

/*
 * Copies one RNDIS message (header bytes, then body bytes) into a free
 * section and adds its range. 0; -ENOBUFS no free section; -ENOTCONN the
 * guest put its buffer outside RAM (counted).
 */
static int batch_add(struct netvsp *n, struct rx_batch *b, const void *hdr, uint32_t hdr_len,
		     const void *body, uint32_t body_len)
{
	if (!n->rx_free_count)
		return -ENOBUFS;
	uint32_t idx = n->rx_free[n->rx_free_count - 1];
	uint32_t off = idx * n->recv.section_size;
	if (buf_copy(n, &n->recv, off, (void *)hdr, hdr_len, true) ||
	    (body_len && buf_copy(n, &n->recv, off + hdr_len, (void *)body, body_len, true))) {
		refuse(n, &n->st.bad_ranges, LOG_RANGE, "receive buffer page outside guest RAM");
		return -ENOTCONN;
	}
	n->rx_free_count--;
	b->sections[b->count] = idx;
	b->ranges[b->count] = (struct vmbus_xfer_page_range){hdr_len + body_len, off};
	b->count++;
	return 0;
}

/*
 * Queues the batch as one transfer-page packet on its channel, unpublished
 * (the caller flushes once for all it sends). 0: its sections are in flight
 * under one transaction. -ENOBUFS: no ring room (pending_send_sz is armed,
 * the channel's next notify brings rx_ready); -ENOTCONN: the ring is
 * broken. On failure the sections are free again.
 */
static int batch_send(struct netvsp *n, struct rx_batch *b)
{
	if (!b->count)
		return 0;
	struct chan *c = b->c;
	/* Transaction id: a sequence number over the first section's index,
	 * so a stale or forged completion does not match. */
	if (++n->rx_seq == 0)
		n->rx_seq = 1;
	uint64_t tid = (uint64_t)n->rx_seq << 32 | b->sections[0];
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT};
	m.send_rndis_pkt.channel_type = b->channel_type;
	m.send_rndis_pkt.send_buf_section_index = NVSP_INVALID_SECTION_INDEX;
	struct vmbus_ring_writer *w = vmbus_channel_out(c->ch);
	uint32_t bytes = XFER_BYTES(b->count), need = 0;
	int err = 0;
	/* Leave room for an answer: indications made while a guest packet is
	 * handled (a reflected frame, an RNDIS answer) must not take the
	 * space its completion needs. */
	if (vmbus_ring_writer_free(w) <= bytes + ANSWER_ROOM) {
		chan_flush(c);
		if (!vmbus_ring_writer_want_space(w, bytes + ANSWER_ROOM)) {
			c->waiting = !w->broken;
			err = w->broken ? -EBADMSG : -EAGAIN;
		}
	}
	if (!err)
		err = vmbus_ring_put_xfer_pages(w, tid, n->recv.id, b->ranges, b->count, &m,
						NVSP_LEN, &need);
	if (err == -EAGAIN && need) {
		chan_flush(c);
		if (vmbus_ring_writer_want_space(w, need))
			err = vmbus_ring_put_xfer_pages(w, tid, n->recv.id, b->ranges, b->count,
							&m, NVSP_LEN, &need);
		else
			c->waiting = true;
	}
	if (err) {
		if (err == -EBADMSG) {
			c->broken = true;
			refuse(n, &n->st.broken_rings, LOG_RING, "guest corrupted a ring");
		}
		batch_drop(n, b);
		return err == -EAGAIN ? -ENOBUFS : -ENOTCONN;
	}
	for (uint32_t i = 0; i < b->count; i++) {
		n->rx_tid[b->sections[i]] = tid;
		n->rx_next[b->sections[i]] = i + 1 < b->count ? b->sections[i + 1] : NO_SECTION;
	}
	b->count = 0;
	return 0;
}

/* One RNDIS message to the guest on channel c, published at once: 0,
 * -ENOBUFS (no section or ring room), -ENOTCONN. */
static int indicate(struct netvsp *n, struct chan *c, uint32_t channel_type, const void *hdr,
		    uint32_t hdr_len)
{
	struct rx_batch b = {.c = c, .channel_type = channel_type};
	int err = batch_add(n, &b, hdr, hdr_len, NULL, 0);
	if (!err)
		err = batch_send(n, &b);
	if (!err)
		chan_flush(c);
	return err;
}

static bool rx_ready_for_control(const struct netvsp *n)
{
	return n->recv.set && n->chans[0] && !n->chans[0]->broken;
}

/* Sends queued control answers in order while there is room. */
static void pending_flush(struct netvsp *n)
{
	while (n->pending_count && rx_ready_for_control(n)) {
		struct pending *p = &n->pending[n->pending_head];
		if (indicate(n, n->chans[0], NVSP_RMC_CONTROL, p->msg, p->len) == -ENOBUFS)
			return; /* sent or undeliverable, it is done with */
		n->pending_head = (n->pending_head + 1) % PENDING_MAX;
		n->pending_count--;
	}
}

/* rndis_dev answers: to the guest on the primary channel, in order. */
static void on_rndis_respond(void *ctx, const void *msg, uint32_t len)
{
	struct netvsp *n = ctx;
	pending_flush(n);
	if (!n->pending_count && rx_ready_for_control(n) &&
	    indicate(n, n->chans[0], NVSP_RMC_CONTROL, msg, len) != -ENOBUFS)
		return; /* sent, or undeliverable (counted) */
	if (n->pending_count == PENDING_MAX || len > RNDIS_RESPONSE_MAX) {
		/* Only a guest that never completes gets here. */
		refuse(n, &n->st.bad_rndis, LOG_PENDING, "control answers piling up; dropped");
		return;
	}
	struct pending *p = &n->pending[(n->pending_head + n->pending_count) % PENDING_MAX];
	memcpy(p->msg, msg, len);
	p->len = len;
	n->pending_count++;
}

static void on_rndis_frame(void *ctx, const uint8_t *data, uint32_t len,
			   const struct rndis_frame_info *info)
{
	struct netvsp *n = ctx;
	n->st.tx_frames++;
	n->st.tx_bytes += len;
	if (n->cfg.backend && n->cfg.backend->transmit)
		n->cfg.backend->transmit(n->cfg.backend_ctx, n, data, len, info);
}

static void on_rndis_bad(void *ctx, const char *what)
{
	struct netvsp *n = ctx;
	nlog(n, "netvsp%u: %s (logged once)", n->cfg.instance, what);
}

static const struct rndis_dev_ops rndis_ops = {on_rndis_respond, on_rndis_frame, on_rndis_bad};

/* ------------------------------------------------------------------ */
/* NVSP messages                                                       */
/* ------------------------------------------------------------------ */

static const uint32_t versions[] = {
	NVSP_PROTOCOL_VERSION_1, NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_4,
	NVSP_PROTOCOL_VERSION_5, NVSP_PROTOCOL_VERSION_6, NVSP_PROTOCOL_VERSION_61,
};

/* The newest version we speak in [min, max], or 0. */
static uint32_t pick_version(const struct netvsp *n, uint32_t min, uint32_t max)
{
	uint32_t cap = n->cfg.max_version ? n->cfg.max_version : NVSP_PROTOCOL_VERSION_61;
	for (int i = (int)(sizeof(versions) / sizeof(versions[0])) - 1; i >= 0; i--)
		if (versions[i] >= min && versions[i] <= max && versions[i] <= cap)
			return versions[i];
	return 0;
}

static void handle_init(struct netvsp *n, struct chan *c, uint64_t tid,
			const struct nvsp_message *in)
{
	struct nvsp_message m = {.msg_type = NVSP_MSG_TYPE_INIT_COMPLETE};
	uint32_t v = pick_version(n, in->init.min_protocol_ver, in->init.max_protocol_ver);
	if (v) {
		n->version = v;
		m.init_complete.negotiated_protocol_ver = v;
		m.init_complete.max_mdl_chain_len = 34;
		m.init_complete.status = NVSP_STAT_SUCCESS;
	} else {
		m.init_complete.negotiated_protocol_ver = NVSP_INVALID_PROTOCOL_VERSION;
		m.init_complete.status = NVSP_STAT_PROTOCOL_UNSUPPORTED;
	}
	complete_nvsp(n, c, tid, &m);
}

static void handle_recv_buf(struct netvsp *n, struct chan *c, uint64_t tid,
			    const struct nvsp_message *in)
{
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE};
	uint32_t max = n->version <= NVSP_PROTOCOL_VERSION_2 ? NVSP_RECV_BUFFER_MAX_LEGACY
							     : NVSP_RECV_BUFFER_MAX;
	uint32_t st = buf_take(n, c, &n->recv, in->send_recv_buf.gpadl_handle,
			       in->send_recv_buf.id, max);
	if (st == NVSP_STAT_SUCCESS && recv_sections_init(n)) {
		recv_sections_free(n);
		st = NVSP_STAT_FAIL;
	}
	m.send_recv_buf_complete.status = st;
	if (st == NVSP_STAT_SUCCESS) {
		struct nvsp_1_receive_buffer_section *s = &m.send_recv_buf_complete.sections[0];
		m.send_recv_buf_complete.num_sections = 1;
		s->offset = 0;
		s->sub_alloc_size = n->recv.section_size;
		s->num_sub_allocs = n->recv.sections;
		s->end_offset = n->recv.section_size * n->recv.sections;
	} else {
		refuse(n, &n->st.bad_messages, LOG_MESSAGE, "receive buffer refused");
	}
	complete_nvsp(n, c, tid, &m);
}

static void handle_send_buf(struct netvsp *n, struct chan *c, uint64_t tid,
			    const struct nvsp_message *in)
{
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE};
	uint32_t st = buf_take(n, c, &n->send, in->send_send_buf.gpadl_handle,
			       in->send_send_buf.id, NVSP_SEND_BUFFER_MAX);
	m.send_send_buf_complete.status = st;
	if (st == NVSP_STAT_SUCCESS) {
		n->send.section_size = NVSP_SEND_SECTION_SIZE;
		n->send.sections = n->send.size / NVSP_SEND_SECTION_SIZE;
		map_sections_in_place(n, &n->send);
		m.send_send_buf_complete.section_size = NVSP_SEND_SECTION_SIZE;
	} else {
		refuse(n, &n->st.bad_messages, LOG_MESSAGE, "send buffer refused");
	}
	complete_nvsp(n, c, tid, &m);
	/* The end of the guest's buffer setup: say there is no VF to team
	 * with (Linux logs "VF slot 0 removed" and stays synthetic). */
	if (st == NVSP_STAT_SUCCESS && n->version >= NVSP_PROTOCOL_VERSION_4) {
		struct nvsp_message vf = {.msg_type = NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION};
		send_inband(n, c, &vf, NVSP_LEN);
	}
}

/* The send indirection table: send queue i to channel i mod channels. */
static void send_table(struct netvsp *n, struct chan *c)
{
	struct nvsp_send_indirection_table_msg t = {0};
	t.msg.msg_type = NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE;
	t.msg.send_table.count = NVSP_SEND_TABLE_SIZE;
	t.msg.send_table.offset = NVSP_LEN;
	for (uint32_t i = 0; i < NVSP_SEND_TABLE_SIZE; i++)
		t.table[i] = i % (n->subchannels + 1);
	send_inband(n, c, &t, sizeof(t));
}

static void handle_subchannel(struct netvsp *n, struct chan *c, uint64_t tid,
			      const struct nvsp_message *in)
{
	struct nvsp_message m = {.msg_type = NVSP_MSG5_TYPE_SUBCHANNEL};
	uint32_t want = in->subchn_req.num_subchannels;
	uint32_t max = n->cfg.queues - 1;
	m.subchn_comp.status = NVSP_STAT_FAIL;
	if (in->subchn_req.op == NVSP_SUBCHANNEL_ALLOCATE && c->index == 0) {
		if (want > max)
			want = max;
		/* Sub-channels already offered on this opening are kept;
		 * only the difference is added. */
		if (want > n->subchannels &&
		    vmbus_device_add_subchannels_locked(n->dev, want - n->subchannels) == 0) {
			n->subchannels_offered += want - n->subchannels;
			n->subchannels = want;
		}
		m.subchn_comp.status = NVSP_STAT_SUCCESS;
		m.subchn_comp.num_subchannels = want < n->subchannels ? want : n->subchannels;
	} else {
		refuse(n, &n->st.bad_messages, LOG_MESSAGE, "bad sub-channel request");
	}
	complete_nvsp(n, c, tid, &m);
	if (m.subchn_comp.status == NVSP_STAT_SUCCESS)
		send_table(n, c);
}

/* The send section a packet names exists and the size it gives fits it. */
static bool send_section_valid(const struct netvsp *n, const struct nvsp_1_send_rndis_packet *rp)
{
	return n->send.set && rp->send_buf_section_index < n->send.sections &&
	       rp->send_buf_section_size != 0 && rp->send_buf_section_size <= n->send.section_size;
}

/* Gathers one send's RNDIS bytes: the send-section part, then the pages
 * of a GPA-direct packet (Linux puts the RNDIS header of a partly copied
 * packet in the section and the rest in pages). 0 and *len, or -EINVAL. */
static int gather(struct netvsp *n, const struct vmbus_packet *pkt,
		  const struct nvsp_1_send_rndis_packet *rp, uint32_t *len)
{
	uint32_t total = 0;
	if (rp->send_buf_section_index != NVSP_INVALID_SECTION_INDEX) {
		if (!send_section_valid(n, rp)) {
			refuse(n, &n->st.bad_sections, LOG_SECTION, "bad send section");
			return -EINVAL;
		}
		uint32_t off = rp->send_buf_section_index * n->send.section_size;
		if (buf_copy(n, &n->send, off, n->gather, rp->send_buf_section_size, false)) {
			refuse(n, &n->st.bad_ranges, LOG_RANGE, "send buffer page outside guest RAM");
			return -EINVAL;
		}
		total = rp->send_buf_section_size;
	}
	if (pkt->type == VMBUS_PKT_DATA_USING_GPA_DIRECT) {
		struct vmbus_gpa_range_iter it;
		struct vmbus_gpa_range_in r;
		int more;
		if (vmbus_gpa_ranges_begin(pkt, &it)) {
			refuse(n, &n->st.bad_ranges, LOG_RANGE, "malformed GPA-direct packet");
			return -EINVAL;
		}
		while ((more = vmbus_gpa_ranges_next(&it, &r)) == 1) {
			if (r.byte_count > n->gather_cap - total) {
				refuse(n, &n->st.bad_ranges, LOG_RANGE, "GPA-direct data too long");
				return -EINVAL;
			}
			uint32_t off = r.byte_offset, left = r.byte_count;
			for (uint32_t i = 0; left; i++) {
				uint32_t chunk = PAGE - off < left ? PAGE - off : left;
				if (i >= r.pfn_count ||
				    guest_memory_read(n->cfg.mem, vmbus_gpa_range_pfn(&r, i) * PAGE + off,
						      n->gather + total, chunk)) {
					refuse(n, &n->st.bad_ranges, LOG_RANGE,
					       "GPA-direct page outside guest RAM or its range");
					return -EINVAL;
				}
				total += chunk;
				left -= chunk;
				off = 0;
			}
		}
		if (more < 0) {
			refuse(n, &n->st.bad_ranges, LOG_RANGE, "malformed GPA-direct range");
			return -EINVAL;
		}
	}
	if (total == 0) {
		refuse(n, &n->st.bad_messages, LOG_MESSAGE, "RNDIS packet with no data");
		return -EINVAL;
	}
	*len = total;
	return 0;
}

/* A send of a section alone, when that section can be read in place: its
 * address, else NULL (gather it; a bad section is refused and counted
 * there). */
static const uint8_t *send_in_place(const struct netvsp *n, const struct vmbus_packet *pkt,
				    const struct nvsp_1_send_rndis_packet *rp)
{
	if (pkt->type == VMBUS_PKT_DATA_USING_GPA_DIRECT || !n->send.in_place ||
	    !send_section_valid(n, rp))
		return NULL;
	return n->send.in_place[rp->send_buf_section_index];
}

static void handle_rndis_pkt(struct netvsp *n, struct chan *c, const struct vmbus_packet *pkt,
			     const struct nvsp_message *in)
{
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE};
	const struct nvsp_1_send_rndis_packet *rp = &in->send_rndis_pkt;
	const uint8_t *section = send_in_place(n, pkt, rp);
	uint64_t before = n->rndis.stats.bad_messages + n->rndis.stats.bad_packets;
	uint64_t frames_before = n->st.tx_frames;
	uint32_t len;
	int err;
	m.send_rndis_pkt_complete.status = NVSP_STAT_INVALID_RNDIS_PKT;
	/* In place, the frames reach the backend without a copy of ours:
	 * the guest's copy into the section and the backend's are all. */
	if (section) {
		n->st.tx_in_place++;
		err = rndis_dev_handle_shared(&n->rndis, section, rp->send_buf_section_size,
					      n->gather, n->gather_cap);
	} else if ((err = gather(n, pkt, rp, &len)) == 0) {
		err = rndis_dev_handle(&n->rndis, n->gather, len);
	}
	if (err == 0)
		m.send_rndis_pkt_complete.status = NVSP_STAT_SUCCESS;
	n->st.bad_rndis += n->rndis.stats.bad_messages + n->rndis.stats.bad_packets - before;
	n->st.chan_tx_frames[c->index] += n->st.tx_frames - frames_before;
	if (pkt->flags & VMBUS_PKT_FLAG_COMPLETION_REQUESTED)
		complete_nvsp(n, c, pkt->trans_id, &m);
}

/* The guest completed a transfer-page packet: all its sections are free.
 * Only the first section's transaction matches; one completion frees the
 * chain once (the transaction is cleared as it goes). */
static void handle_completion(struct netvsp *n, const struct vmbus_packet *pkt)
{
	uint32_t idx = (uint32_t)pkt->trans_id;
	if (!n->recv.set || idx >= n->recv.sections || n->rx_tid[idx] == 0 ||
	    n->rx_tid[idx] != pkt->trans_id) {
		refuse(n, &n->st.bad_completions, LOG_COMPLETION,
		       "completion of an unknown transaction");
		return;
	}
	while (idx != NO_SECTION) {
		uint32_t next = n->rx_next[idx];
		n->rx_tid[idx] = 0;
		n->rx_free[n->rx_free_count++] = idx;
		idx = next;
	}
}

static bool version_at_least(struct netvsp *n, uint32_t v)
{
	return n->version && n->version >= v;
}

/* The completion Linux waits for, with a failure status: requests with a
 * *_COMPLETE type are answered with it (status first, but INIT_COMPLETE's
 * is its third word); SUBCHANNEL is answered with its own type. */
static void refusal_answer(struct netvsp *n, struct chan *c, uint64_t tid, uint32_t type)
{
	struct nvsp_message f = {.msg_type = type};
	switch (type) {
	case NVSP_MSG_TYPE_INIT:
		f.msg_type = NVSP_MSG_TYPE_INIT_COMPLETE;
		f.init_complete.negotiated_protocol_ver = NVSP_INVALID_PROTOCOL_VERSION;
		f.init_complete.status = NVSP_STAT_FAIL;
		break;
	case NVSP_MSG1_TYPE_SEND_RECV_BUF:
	case NVSP_MSG1_TYPE_SEND_SEND_BUF:
	case NVSP_MSG1_TYPE_SEND_RNDIS_PKT:
		f.msg_type = type + 1;
		f.send_rndis_pkt_complete.status = NVSP_STAT_FAIL;
		break;
	default:
		f.send_rndis_pkt_complete.status = NVSP_STAT_FAIL; /* SUBCHANNEL's status too */
		break;
	}
	complete_nvsp(n, c, tid, &f);
}

static void handle_inband(struct netvsp *n, struct chan *c, const struct vmbus_packet *pkt)
{
	struct nvsp_message m = {0};
	if (pkt->data_len < 4) {
		refuse(n, &n->st.bad_messages, LOG_MESSAGE, "short NVSP message");
		return;
	}
	/* Short messages read as zero-padded: every field is then checked. */
	memcpy(&m, pkt->data, pkt->data_len < NVSP_LEN ? pkt->data_len : NVSP_LEN);
	bool primary = c->index == 0;
	switch (m.msg_type) {
	case NVSP_MSG_TYPE_INIT:
		if (primary) {
			handle_init(n, c, pkt->trans_id, &m);
			return;
		}
		break;
	case NVSP_MSG1_TYPE_SEND_NDIS_VER:
		if (primary && n->version) {
			n->ndis_version = m.send_ndis_ver.ndis_major_ver << 16 |
					  (m.send_ndis_ver.ndis_minor_ver & 0xffff);
			return;
		}
		break;
	case NVSP_MSG2_TYPE_SEND_NDIS_CONFIG:
		if (primary && version_at_least(n, NVSP_PROTOCOL_VERSION_2)) {
			n->guest_mtu = m.send_ndis_config.mtu;
			n->guest_caps = m.send_ndis_config.capability;
			return;
		}
		break;
	case NVSP_MSG1_TYPE_SEND_RECV_BUF:
		if (primary && n->version) {
			handle_recv_buf(n, c, pkt->trans_id, &m);
			return;
		}
		break;
	case NVSP_MSG1_TYPE_SEND_SEND_BUF:
		if (primary && n->version) {
			handle_send_buf(n, c, pkt->trans_id, &m);
			return;
		}
		break;
	case NVSP_MSG1_TYPE_REVOKE_RECV_BUF:
		if (primary && n->recv.set && m.revoke_buf.id == n->recv.id) {
			/* Sections still out are forgotten with the buffer. */
			recv_sections_free(n);
			return;
		}
		break;
	case NVSP_MSG1_TYPE_REVOKE_SEND_BUF:
		if (primary && n->send.set && m.revoke_buf.id == n->send.id) {
			buf_drop(&n->send);
			return;
		}
		break;
	case NVSP_MSG1_TYPE_SEND_RNDIS_PKT:
		if (n->version) {
			handle_rndis_pkt(n, c, pkt, &m);
			return;
		}
		break;
	case NVSP_MSG4_TYPE_SWITCH_DATA_PATH:
		if (primary && version_at_least(n, NVSP_PROTOCOL_VERSION_4)) {
			/* There is no VF: note the wish, stay synthetic. Linux
			 * waits for an empty completion (netvsc_switch_datapath). */
			n->datapath = m.active_dp.active_datapath;
			if (pkt->flags & VMBUS_PKT_FLAG_COMPLETION_REQUESTED)
				complete(n, c, pkt->trans_id, NULL, 0);
			return;
		}
		break;
	case NVSP_MSG5_TYPE_SUBCHANNEL:
		if (version_at_least(n, NVSP_PROTOCOL_VERSION_5)) {
			handle_subchannel(n, c, pkt->trans_id, &m);
			return;
		}
		break;
	case NVSP_MSG4_TYPE_UPLINK_CONNECT_STATE_DEPRECATED:
		return; /* deprecated, ignored */
	default:
		break;
	}
	refuse(n, &n->st.bad_messages, LOG_MESSAGE, "NVSP message refused (type, state or channel)");
	/* An answer with a failure, where Linux would wait for one. */
	if (pkt->flags & VMBUS_PKT_FLAG_COMPLETION_REQUESTED)
		refusal_answer(n, c, pkt->trans_id, m.msg_type);
}

static void handle_packet(struct netvsp *n, struct chan *c, const struct vmbus_packet *pkt)
{
	switch (pkt->type) {
	case VMBUS_PKT_DATA_INBAND:
		handle_inband(n, c, pkt);
		return;
	case VMBUS_PKT_DATA_USING_GPA_DIRECT:
		if (pkt->data_len >= 4 && rd32(pkt->data) == NVSP_MSG1_TYPE_SEND_RNDIS_PKT &&
		    n->version) {
			struct nvsp_message m = {0};
			memcpy(&m, pkt->data, pkt->data_len < NVSP_LEN ? pkt->data_len : NVSP_LEN);
			handle_rndis_pkt(n, c, pkt, &m);
			return;
		}
		refuse(n, &n->st.bad_messages, LOG_MESSAGE, "GPA-direct packet that is not RNDIS");
		return;
	case VMBUS_PKT_COMP:
		handle_completion(n, pkt);
		return;
	default:
		refuse(n, &n->st.bad_messages, LOG_MESSAGE, "unexpected VMBus packet type");
		return;
	}
}

/* ------------------------------------------------------------------ */
/* Reading a channel                                                   */
/* ------------------------------------------------------------------ */

/*
 * Drains the guest's ring (the echo device's pattern, vmbus/echo.c): masked
 * while draining, committed per batch, and when our ring has no room for
 * an answer the packet stays put and pending_send_sz asks for a signal.
 * At most `budget` packets: true if it stopped there with the ring still
 * masked, so the caller must come back (the guest will not signal).
 */
static bool chan_drain(struct netvsp *n, struct chan *c, uint32_t budget)
{
	struct vmbus_ring_reader *r = vmbus_channel_in(c->ch);
	struct vmbus_ring_writer *w = vmbus_channel_out(c->ch);
	struct vmbus_packet pkt;
	bool signal = false, more = false;
	uint32_t handled = 0;

	if (c->waiting) {
		vmbus_ring_writer_space_done(w);
		c->waiting = false;
	}
	vmbus_ring_reader_mask(r);
	while (!c->broken) {
		if (handled == budget) {
			more = true;
			break;
		}
		int err = vmbus_ring_peek(r, c->pkt, c->pkt_cap, &pkt);
		if (err == -EAGAIN) {
			signal |= vmbus_ring_commit(r);
			/* In a streak the source comes back to this ring: it
			 * stays masked, the guest's packets wake no thread. */
			if (n->rx_streak)
				break;
			if (!vmbus_ring_reader_unmask(r))
				break;
			vmbus_ring_reader_mask(r);
			continue;
		}
		if (err) {
			c->broken = true;
			refuse(n, &n->st.broken_rings, LOG_RING, "guest corrupted a ring");
			break;
		}
		if (vmbus_ring_writer_free(w) <= ANSWER_ROOM) {
			signal |= vmbus_ring_publish(w);
			signal |= vmbus_ring_commit(r);
			if (!vmbus_ring_writer_want_space(w, ANSWER_ROOM)) {
				if (w->broken) {
					c->broken = true;
					break;
				}
				c->waiting = true;
				vmbus_ring_reader_unmask(r);
				break;
			}
			vmbus_ring_writer_space_done(w);
		}
		handle_packet(n, c, &pkt);
		vmbus_ring_advance(r);
		handled++;
	}
	signal |= vmbus_ring_commit(r);
	signal |= vmbus_ring_publish(w);
	if (signal)
		vmbus_channel_signal_locked(c->ch);
	return more;
}

/*
 * The guest's completions waiting at the front of c's ring, taken now: a
 * source short of sections need not wait for the channel's notify, which
 * is another thread's wake-up on the shared cores. Anything else stops
 * it and is left for the notify. True if a section came free.
 */
static bool take_completions(struct netvsp *n, struct chan *c)
{
	struct vmbus_ring_reader *r = vmbus_channel_in(c->ch);
	struct vmbus_packet pkt;
	/* A buffer of its own: a burst may run inside chan_drain (a reflected
	 * frame), whose packet in c->pkt must not be copied over. A completion
	 * is 24 bytes from Linux; a longer one waits for the notify. */
	uint64_t buf[16];
	uint32_t before = n->rx_free_count;
	while (!c->broken && vmbus_ring_peek(r, buf, sizeof(buf), &pkt) == 0 &&
	       pkt.type == VMBUS_PKT_COMP) {
		handle_completion(n, &pkt);
		vmbus_ring_advance(r);
	}
	/* The guest may wait for this room (pending_send_sz). */
	if (vmbus_ring_commit(r))
		vmbus_channel_signal_locked(c->ch);
	return n->rx_free_count > before;
}

static bool take_all_completions(struct netvsp *n)
{
	bool freed = false;
	for (uint32_t i = 0; i < NETVSP_QUEUES_MAX; i++)
		if (n->chans[i] && !n->chans[i]->broken)
			freed |= take_completions(n, n->chans[i]);
	return freed;
}

/* After anything that may have freed receive room. */
static void rx_resume(struct netvsp *n)
{
	pending_flush(n);
	if (n->rx_blocked && n->rx_free_count && !n->pending_count) {
		n->rx_blocked = false;
		if (n->cfg.backend && n->cfg.backend->rx_ready)
			n->cfg.backend->rx_ready(n->cfg.backend_ctx, n);
	}
}

/* ------------------------------------------------------------------ */
/* VMBus device ops                                                    */
/* ------------------------------------------------------------------ */

static void reset_guest_state(struct netvsp *n)
{
	recv_sections_free(n);
	buf_drop(&n->send);
	n->version = n->ndis_version = n->guest_mtu = n->datapath = 0;
	n->guest_caps = 0;
	n->pending_count = n->pending_head = 0;
	n->rx_blocked = n->rx_streak = false;
	struct rndis_dev_config rc = n->rndis.cfg;
	bool up = n->rndis.link_up;
	rc.link_down = !up;
	rndis_dev_init(&n->rndis, &rc, &rndis_ops, n);
}

static int netvsp_open(void *dev, struct vmbus_channel *ch,
		       const uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES])
{
	(void)user_data;
	struct netvsp *n = dev;
	uint16_t index = vmbus_channel_subchannel_index(ch);
	if (index >= NETVSP_QUEUES_MAX || n->chans[index])
		return -EINVAL;
	struct chan *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	uint32_t size = vmbus_channel_in(ch)->mem.size;
	c->pkt_cap = size < VMBUS_PACKET_MAX_LEN ? size : VMBUS_PACKET_MAX_LEN;
	c->pkt = malloc(c->pkt_cap);
	if (!c->pkt) {
		free(c);
		return -ENOMEM;
	}
	c->ch = ch;
	c->index = index;
	if (index == 0)
		reset_guest_state(n);
	n->chans[index] = c;
	vmbus_channel_set_data(ch, c);
	return 0;
}

static void netvsp_close(void *dev, struct vmbus_channel *ch)
{
	struct netvsp *n = dev;
	struct chan *c = vmbus_channel_data(ch);
	if (!c)
		return;
	n->chans[c->index] = NULL;
	/* The guest's driver is gone with its primary channel: so are its
	 * buffers, everything negotiated and its sub-channels (the server
	 * rescinds them). */
	if (c->index == 0) {
		reset_guest_state(n);
		n->subchannels = 0;
	}
	vmbus_channel_set_data(ch, NULL);
	free(c->pkt);
	free(c);
}

/* Marks channels for the device thread and wakes it. */
static void mark_ready(struct netvsp *n, uint32_t channels)
{
	pthread_mutex_lock(&n->work_lock);
	n->ready |= channels;
	pthread_cond_signal(&n->work_cond);
	pthread_mutex_unlock(&n->work_lock);
}

/* The channels to read next; false once the thread must stop. */
static bool wait_ready(struct netvsp *n, uint32_t *channels)
{
	pthread_mutex_lock(&n->work_lock);
	n->busy = false;
	while (!n->ready && !n->stop) {
		pthread_cond_broadcast(&n->idle_cond);
		pthread_cond_wait(&n->work_cond, &n->work_lock);
	}
	*channels = n->ready;
	n->ready = 0;
	n->busy = true;
	bool stop = n->stop;
	pthread_mutex_unlock(&n->work_lock);
	return !stop;
}

void netvsp_flush(struct netvsp *n)
{
	if (!n->worker_running)
		return;
	pthread_mutex_lock(&n->work_lock);
	while (n->ready || n->busy)
		pthread_cond_wait(&n->idle_cond, &n->work_lock);
	pthread_mutex_unlock(&n->work_lock);
}

/* One turn: each ready channel read up to the budget, under the device
 * lock. The channels that had more than that. */
static uint32_t drain_turn(struct netvsp *n, uint32_t channels)
{
	uint32_t again = 0;
	vmbus_device_lock(n->dev);
	for (uint32_t i = 0; i < NETVSP_QUEUES_MAX; i++) {
		/* A channel closed since its signal is gone from chans[]. */
		struct chan *c = n->chans[i];
		if ((channels & (1u << i)) && c && chan_drain(n, c, NETVSP_DRAIN_BUDGET))
			again |= 1u << i;
	}
	rx_resume(n);
	vmbus_device_unlock(n->dev);
	return again;
}

static void *drain_thread(void *arg)
{
	struct netvsp *n = arg;
	uint32_t channels;
	while (wait_ready(n, &channels)) {
		uint32_t again = drain_turn(n, channels);
		if (again)
			mark_ready(n, again);
	}
	return NULL;
}

static int start_drain_thread(struct netvsp *n)
{
	pthread_mutex_init(&n->work_lock, NULL);
	pthread_cond_init(&n->work_cond, NULL);
	pthread_cond_init(&n->idle_cond, NULL);
	if (!n->cfg.drain_thread)
		return 0;
	int err = -pthread_create(&n->worker, NULL, drain_thread, n);
	n->worker_running = !err;
	return err;
}

/* Joins the thread; its lock and conditions stay, since a signal may
 * still mark a channel until the device is gone (free_drain_sync). */
static void stop_drain_thread(struct netvsp *n)
{
	if (!n->worker_running)
		return;
	pthread_mutex_lock(&n->work_lock);
	n->stop = true;
	pthread_cond_signal(&n->work_cond);
	pthread_mutex_unlock(&n->work_lock);
	pthread_join(n->worker, NULL);
	n->worker_running = false;
}

static void free_drain_sync(struct netvsp *n)
{
	pthread_cond_destroy(&n->work_cond);
	pthread_cond_destroy(&n->idle_cond);
	pthread_mutex_destroy(&n->work_lock);
}

static void netvsp_notify(void *dev, struct vmbus_channel *ch)
{
	struct netvsp *n = dev;
	struct chan *c = vmbus_channel_data(ch);
	if (!c)
		return;
	if (n->cfg.drain_thread) {
		mark_ready(n, 1u << c->index);
		return;
	}
	chan_drain(n, c, UINT32_MAX);
	rx_resume(n);
}

/* ------------------------------------------------------------------ */
/* Snapshots (vmbus_device_ops.save / restore)                         */
/* ------------------------------------------------------------------ */

/*
 * A channel's state: u8 format (1), u8 primary; every channel's u8 ring
 * broken and u8 waiting for room; the primary's also the NIC's:
 *   u32 NVSP version, NDIS version, guest MTU, u64 guest capabilities,
 *   u32 datapath, u32 sub-channels offered on this opening;
 *   receive buffer: u8 set, u16 id, u32 GPADL, u32 sections; the
 *     sections in flight (u32 count; each u32 section, u64 transaction,
 *     u32 next section of its packet); u32 receive sequence, u8 blocked;
 *   send buffer: u8 set, u16 id, u32 GPADL;
 *   control answers waiting for room (u32 count; each u32 length, bytes);
 *   RNDIS: u8 state, the MAC in use, u32 packet filter, the offload
 *     parameters as set, u32 RSS hash info, u32 table entries, the table,
 *     the key, u32 multicast addresses.
 * A buffer's pages are the server's GPADL's, taken again on restore; its
 * sections follow from the configuration, which must be the saving one's.
 * The backend starts afresh (libslirp's connections are not kept).
 */
#define NETVSP_STATE_FORMAT 1u

static void put_rndis(struct record_writer *w, const struct rndis_dev *d)
{
	record_put8(w, (uint8_t)d->state);
	record_put(w, d->current_mac, sizeof(d->current_mac));
	record_put32(w, d->packet_filter);
	record_put(w, &d->offload, sizeof(d->offload));
	record_put32(w, d->rss_hashinfo);
	record_put32(w, d->rss_table_len);
	for (uint32_t i = 0; i < d->rss_table_len; i++)
		record_put32(w, d->rss_table[i]);
	record_put(w, d->rss_key, sizeof(d->rss_key));
	record_put32(w, d->multicast_count);
}

static void put_recv_buf(struct record_writer *w, const struct netvsp *n)
{
	const struct guest_buf *b = &n->recv;
	record_put8(w, b->set);
	record_put16(w, b->id);
	record_put32(w, b->gpadl);
	record_put32(w, b->sections);
	uint32_t in_flight = 0;
	for (uint32_t i = 0; b->set && i < b->sections; i++)
		in_flight += n->rx_tid[i] != 0;
	record_put32(w, in_flight);
	for (uint32_t i = 0; b->set && i < b->sections; i++) {
		if (!n->rx_tid[i])
			continue;
		record_put32(w, i);
		record_put64(w, n->rx_tid[i]);
		record_put32(w, n->rx_next[i]);
	}
	record_put32(w, n->rx_seq);
	record_put8(w, n->rx_blocked);
}

static void put_nic(struct record_writer *w, const struct netvsp *n)
{
	record_put32(w, n->version);
	record_put32(w, n->ndis_version);
	record_put32(w, n->guest_mtu);
	record_put64(w, n->guest_caps);
	record_put32(w, n->datapath);
	record_put32(w, n->subchannels);
	put_recv_buf(w, n);
	record_put8(w, n->send.set);
	record_put16(w, n->send.id);
	record_put32(w, n->send.gpadl);
	record_put32(w, n->pending_count);
	for (uint32_t k = 0; k < n->pending_count; k++) {
		const struct pending *p = &n->pending[(n->pending_head + k) % PENDING_MAX];
		record_put32(w, p->len);
		record_put(w, p->msg, p->len);
	}
	put_rndis(w, &n->rndis);
}

static int netvsp_save(void *dev, struct vmbus_channel *ch, void *buf, size_t *len)
{
	struct netvsp *n = dev;
	struct chan *c = vmbus_channel_data(ch);
	if (!c)
		return -EINVAL;
	struct record_writer w = {buf, *len, 0};
	record_put8(&w, NETVSP_STATE_FORMAT);
	record_put8(&w, c->index == 0);
	record_put8(&w, c->broken);
	record_put8(&w, c->waiting);
	if (c->index == 0)
		put_nic(&w, n);
	bool fits = w.len <= *len;
	*len = w.len;
	return fits ? 0 : -ENOSPC;
}

static int read_rndis(struct record_reader *r, struct rndis_dev *d)
{
	uint8_t state = record_get8(r);
	record_get(r, d->current_mac, sizeof(d->current_mac));
	d->packet_filter = record_get32(r);
	record_get(r, &d->offload, sizeof(d->offload));
	d->rss_hashinfo = record_get32(r);
	d->rss_table_len = record_get32(r);
	if (r->bad || state > RNDIS_DEV_INITIALIZED ||
	    d->rss_table_len > NDIS_RSS_INDIRECTION_TABLE_MAX_SIZE / 4)
		return -EINVAL;
	d->state = state;
	for (uint32_t i = 0; i < d->rss_table_len; i++) {
		d->rss_table[i] = record_get32(r);
		if (d->rss_table[i] >= d->cfg.rss_queues)
			return -EINVAL; /* as set_rss checks */
	}
	record_get(r, d->rss_key, sizeof(d->rss_key));
	d->multicast_count = record_get32(r);
	return r->bad ? -EINVAL : 0;
}

/* A buffer again from the server's GPADL, as the guest named it. */
static int read_buf_head(struct record_reader *r, struct netvsp *n, struct chan *c,
			 struct guest_buf *b, uint32_t max_bytes)
{
	uint8_t set = record_get8(r);
	uint16_t id = record_get16(r);
	uint32_t gpadl = record_get32(r);
	if (r->bad || set > 1)
		return -EINVAL;
	if (!set)
		return 0;
	return buf_take(n, c, b, gpadl, id, max_bytes) == NVSP_STAT_SUCCESS ? 0 : -EINVAL;
}

/* The receive sections the guest has yet to complete, each chain as it
 * was sent; the free ones are the rest. */
static int read_in_flight(struct record_reader *r, struct netvsp *n)
{
	uint32_t sections = n->recv.sections, count = record_get32(r);
	if (r->bad || count > sections)
		return -EINVAL;
	for (uint32_t k = 0; k < count; k++) {
		uint32_t i = record_get32(r);
		uint64_t tid = record_get64(r);
		uint32_t next = record_get32(r);
		if (r->bad || i >= sections || !tid || n->rx_tid[i] ||
		    (next != NO_SECTION && next >= sections))
			return -EINVAL;
		n->rx_tid[i] = tid;
		n->rx_next[i] = next;
	}
	n->rx_free_count = 0;
	for (uint32_t i = sections; i-- > 0;)
		if (!n->rx_tid[i])
			n->rx_free[n->rx_free_count++] = i;
	return 0;
}

static int read_recv_buf(struct record_reader *r, struct netvsp *n, struct chan *c)
{
	uint32_t max = n->version <= NVSP_PROTOCOL_VERSION_2 ? NVSP_RECV_BUFFER_MAX_LEGACY
							     : NVSP_RECV_BUFFER_MAX;
	int err = read_buf_head(r, n, c, &n->recv, max);
	uint32_t sections = record_get32(r);
	if (err || r->bad)
		return -EINVAL;
	if (n->recv.set) {
		/* The sections must fall as they did: the same MTU. */
		if (recv_sections_init(n) || sections != n->recv.sections)
			return -EINVAL;
		err = read_in_flight(r, n);
	} else if (sections || record_get32(r)) {
		return -EINVAL;
	}
	n->rx_seq = record_get32(r);
	uint8_t blocked = record_get8(r);
	n->rx_blocked = blocked == 1;
	return err || r->bad || blocked > 1 ? -EINVAL : 0;
}

static int read_nic(struct record_reader *r, struct netvsp *n, struct chan *c)
{
	n->version = record_get32(r);
	n->ndis_version = record_get32(r);
	n->guest_mtu = record_get32(r);
	n->guest_caps = record_get64(r);
	n->datapath = record_get32(r);
	n->subchannels = record_get32(r);
	if (r->bad || (n->version && !pick_version(n, n->version, n->version)) ||
	    n->subchannels > n->cfg.queues - 1)
		return -EINVAL;
	int err = read_recv_buf(r, n, c);
	if (!err)
		err = read_buf_head(r, n, c, &n->send, NVSP_SEND_BUFFER_MAX);
	if (!err && n->send.set) {
		n->send.section_size = NVSP_SEND_SECTION_SIZE;
		n->send.sections = n->send.size / NVSP_SEND_SECTION_SIZE;
		map_sections_in_place(n, &n->send);
	}
	uint32_t pending = record_get32(r);
	if (err || r->bad || pending > PENDING_MAX)
		return -EINVAL;
	for (uint32_t k = 0; k < pending; k++) {
		struct pending *p = &n->pending[k];
		p->len = record_get32(r);
		if (r->bad || !p->len || p->len > RNDIS_RESPONSE_MAX)
			return -EINVAL;
		record_get(r, p->msg, p->len);
	}
	n->pending_head = 0;
	n->pending_count = pending;
	return read_rndis(r, &n->rndis);
}

static int netvsp_restore(void *dev, struct vmbus_channel *ch, const void *buf, size_t len)
{
	struct netvsp *n = dev;
	struct record_reader r = {buf, (const uint8_t *)buf + len, false};
	uint8_t format = record_get8(&r), primary = record_get8(&r), broken = record_get8(&r),
		waiting = record_get8(&r);
	bool is_primary = vmbus_channel_subchannel_index(ch) == 0;
	if (r.bad || format != NETVSP_STATE_FORMAT || primary != is_primary || broken > 1 ||
	    waiting > 1)
		return -EINVAL;
	int err = netvsp_open(dev, ch, NULL);
	if (err)
		return err;
	struct chan *c = vmbus_channel_data(ch);
	c->broken = broken;
	c->waiting = waiting;
	if (is_primary)
		err = read_nic(&r, n, c);
	if (!err && !record_done(&r))
		err = -EINVAL;
	if (err)
		netvsp_close(dev, ch); /* the primary's close resets the NIC */
	return err;
}

static const struct vmbus_device_ops netvsp_ops = {
	.open = netvsp_open,
	.close = netvsp_close,
	.notify = netvsp_notify,
	.save = netvsp_save,
	.restore = netvsp_restore,
};

/* ------------------------------------------------------------------ */
/* Public calls                                                        */
/* ------------------------------------------------------------------ */

struct hv_guid netvsp_instance_guid(uint32_t instance)
{
	/* hvkit's own: "hvkit" in the node, the NIC number in the first field. */
	return HV_GUID(instance, 0x6e65, 0x4e49, 0x43, 0x00, 0x68, 0x76, 0x6b, 0x69, 0x74, 0x08);
}

/* A stable MAC from the instance: Hyper-V's OUI 00:15:5d, then a hash. */
static void default_mac(uint32_t instance, uint8_t mac[6])
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 4; i++)
		h = (h ^ ((instance >> (8 * i)) & 0xff)) * 16777619u;
	mac[0] = 0x00;
	mac[1] = 0x15;
	mac[2] = 0x5d;
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)(instance & 0xff);
}

int netvsp_add(struct vmbus_server *s, const struct netvsp_config *cfg, struct netvsp **out)
{
	if (!cfg->mem || (cfg->mtu && (cfg->mtu < 68 || cfg->mtu > NETVSP_MTU_MAX)) ||
	    cfg->queues > NETVSP_QUEUES_MAX)
		return -EINVAL;
	struct netvsp *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->cfg = *cfg;
	if (!n->cfg.mtu)
		n->cfg.mtu = NETVSP_MTU_DEFAULT;
	if (!n->cfg.queues)
		n->cfg.queues = 4;
	if (cfg->has_mac)
		memcpy(n->mac, cfg->mac, 6);
	else
		default_mac(cfg->instance, n->mac);
	/* The largest send: a full send section plus a GPA-direct frame of
	 * the largest transfer RNDIS allows (rndis.c packet). */
	n->gather_cap = NVSP_SEND_SECTION_SIZE + 0x10000 + n->cfg.mtu + 2 * PAGE;
	n->gather = malloc(n->gather_cap);
	if (!n->gather) {
		free(n);
		return -ENOMEM;
	}
	struct rndis_dev_config rc = {.mtu = n->cfg.mtu, .rss_queues = n->cfg.queues,
				      .link_down = cfg->link_down};
	memcpy(rc.mac, n->mac, 6);
	rndis_dev_init(&n->rndis, &rc, &rndis_ops, n);
	int err = start_drain_thread(n);
	if (err) {
		free_drain_sync(n);
		free(n->gather);
		free(n);
		return err;
	}

	struct vmbus_device_desc desc = {
		.class_id = NETVSC_CLASS_GUID,
		.instance_id = hv_guid_is_null(&cfg->instance_id) ? netvsp_instance_guid(cfg->instance)
								 : cfg->instance_id,
		.name = "netvsp",
		.ops = &netvsp_ops,
		.dev = n,
	};
	/* The thread takes the device lock only once a channel is marked,
	 * which needs n->dev: nothing marks one before the offer exists. */
	err = vmbus_server_add_device(s, &desc, &n->dev);
	if (err) {
		stop_drain_thread(n);
		free_drain_sync(n);
		free(n->gather);
		free(n);
		return err;
	}
	*out = n;
	return 0;
}

void netvsp_remove(struct vmbus_server *s, struct netvsp *n)
{
	if (!n)
		return;
	/* First the thread: it must not read a channel being closed. A signal
	 * that comes meanwhile marks a channel nobody reads (its lock still
	 * there), and the close below makes it moot. */
	stop_drain_thread(n);
	vmbus_server_remove_device(s, n->dev); /* closes the channels first */
	free_drain_sync(n);
	recv_sections_free(n);
	buf_drop(&n->send);
	free(n->gather);
	free(n);
}

/* Whether a frame can go to the guest at all: 0 and its channel, or
 * -EMSGSIZE, -ENOTCONN, -EPERM (counted as filtered). */
static int rx_check(struct netvsp *n, const uint8_t *frame, uint32_t len, struct chan **c,
		    struct rx_hash *rh)
{
	if (len > n->cfg.mtu + RNDIS_ETH_HLEN + RNDIS_VLAN_HLEN || len < RNDIS_ETH_HLEN)
		return -EMSGSIZE;
	if (!n->recv.set || n->rndis.state != RNDIS_DEV_INITIALIZED || !n->chans[0])
		return -ENOTCONN;
	if (!rndis_dev_accepts(&n->rndis, frame, len)) {
		n->st.rx_filtered++;
		return -EPERM;
	}
	*c = rx_channel(n, frame, len, rh);
	return *c ? 0 : -ENOTCONN;
}

/* Sends the batch holding frames [first, end) (those with errs[i] == 0).
 * Success counts them received; a broken ring drops them. 0 or -ENOBUFS. */
static int rx_commit(struct netvsp *n, struct rx_batch *b, const uint32_t *lens, int *errs,
		     uint32_t first, uint32_t end)
{
	if (!b->count)
		return 0;
	int err = batch_send(n, b);
	if (err == -ENOBUFS)
		return err;
	for (uint32_t i = first; i < end; i++) {
		if (errs[i])
			continue;
		if (err) {
			errs[i] = err;
			continue;
		}
		n->st.rx_frames++;
		n->st.chan_rx_frames[b->c->index]++;
		n->st.rx_bytes += lens[i];
	}
	return 0;
}

/* Notes channel c among those to publish once at the end. */
static void note_channel(struct chan **used, uint32_t *nused, struct chan *c)
{
	for (uint32_t k = 0; k < *nused; k++)
		if (used[k] == c)
			return;
	used[(*nused)++] = c;
}

/*
 * Frames go into sections in order; a batch is sent when it is full, when
 * the next frame is for another channel, and at the end. A batch the ring
 * has no room for is given back whole, so the frames taken are always a
 * prefix. Everything sent is published once per channel at the end.
 */
uint32_t netvsp_receive_burst_locked(struct netvsp *n, const uint8_t *const *frames,
				     const uint32_t *lens, uint32_t count, int *errs)
{
	struct chan *used[NETVSP_QUEUES_MAX];
	uint32_t nused = 0, first = 0, i;
	struct rx_batch b = {.channel_type = NVSP_RMC_DATA};
	int err = 0;

	/* Control answers first, so they keep their order. */
	pending_flush(n);
	for (i = 0; i < count; i++) {
		struct chan *c = NULL;
		struct rx_hash rh;
		errs[i] = rx_check(n, frames[i], lens[i], &c, &rh);
		if (errs[i])
			continue;
		if (b.count && (b.c != c || b.count == NETVSP_RX_BURST_MAX)) {
			err = rx_commit(n, &b, lens, errs, first, i);
			if (err) {
				i = first; /* that batch was given back */
				break;
			}
		}
		if (n->pending_count) {
			err = -ENOBUFS;
			break;
		}
		if (!b.count) {
			b.c = c;
			first = i;
			note_channel(used, &nused, c);
		}
		uint8_t hdr[RNDIS_RX_HEADER_MAX];
		uint32_t hlen = rndis_dev_build_packet(hdr, lens[i], 0, 0, rh.valid ? &rh.hash : NULL);
		errs[i] = batch_add(n, &b, hdr, hlen, frames[i], lens[i]);
		if (errs[i] == -ENOBUFS && take_all_completions(n))
			errs[i] = batch_add(n, &b, hdr, hlen, frames[i], lens[i]);
		if (errs[i] == -ENOBUFS) {
			err = -ENOBUFS;
			break;
		}
	}
	/* What is batched goes; if the ring refuses it, those frames wait. */
	if (rx_commit(n, &b, lens, errs, first, i) == -ENOBUFS) {
		err = -ENOBUFS;
		i = first;
	}
	for (uint32_t k = 0; k < nused; k++)
		chan_flush(used[k]);
	if (err == -ENOBUFS && i < count) {
		errs[i] = -ENOBUFS;
		n->st.rx_no_buffer++;
		n->rx_blocked = true;
	}
	return i;
}

/* Every open channel's ring read now, on the caller's thread. */
static void drain_all(struct netvsp *n)
{
	for (uint32_t i = 0; i < NETVSP_QUEUES_MAX; i++)
		if (n->chans[i] && !n->chans[i]->broken)
			chan_drain(n, n->chans[i], UINT32_MAX);
}

/*
 * A streak (NETVSP_RX_MORE, netvsp.h): the rings are read before each
 * burst and left masked (chan_drain sees rx_streak). Its end reads them
 * once more and unmasks, as a notify would, so whatever the guest wrote
 * meanwhile is handled or will be signalled.
 */
uint32_t netvsp_receive_burst(struct netvsp *n, const uint8_t *const *frames,
			      const uint32_t *lens, uint32_t count, int *errs, uint32_t flags)
{
	vmbus_device_lock(n->dev);
	bool more = flags & NETVSP_RX_MORE;
	if (more)
		n->rx_streak = true;
	if (n->rx_streak)
		drain_all(n);
	uint32_t taken = netvsp_receive_burst_locked(n, frames, lens, count, errs);
	if (n->rx_streak && (!more || taken < count)) {
		n->rx_streak = false;
		drain_all(n);
		rx_resume(n);
	}
	vmbus_device_unlock(n->dev);
	return taken;
}

int netvsp_receive_locked(struct netvsp *n, const uint8_t *frame, uint32_t len)
{
	int err;
	netvsp_receive_burst_locked(n, &frame, &len, 1, &err);
	return err;
}

int netvsp_receive(struct netvsp *n, const uint8_t *frame, uint32_t len)
{
	int err;
	netvsp_receive_burst(n, &frame, &len, 1, &err, 0); /* ends a streak */
	return err;
}

void netvsp_set_link(struct netvsp *n, bool up)
{
	vmbus_device_lock(n->dev);
	rndis_dev_set_link(&n->rndis, up);
	vmbus_device_unlock(n->dev);
}

void netvsp_get_stats(struct netvsp *n, struct netvsp_stats *out)
{
	vmbus_device_lock(n->dev);
	*out = n->st;
	out->version = n->version;
	out->recv_sections = n->recv.set ? n->recv.sections : 0;
	out->send_sections = n->send.set ? n->send.sections : 0;
	out->recv_in_flight = n->recv.set ? n->recv.sections - n->rx_free_count : 0;
	out->subchannels = n->subchannels_offered;
	out->open_channels = open_channels(n);
	vmbus_device_unlock(n->dev);
}

void netvsp_get_mac(const struct netvsp *n, uint8_t mac[6])
{
	memcpy(mac, n->mac, 6);
}
