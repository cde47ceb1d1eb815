/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netvsp_guest.h"
#include "ring_buffer.h"

#define SCRATCH_PAGES 20u /* GPA-direct data, up to 64 KiB + MTU */
#define STASH_MAX NG_STASH_MAX
#define FRAME_BUF (SCRATCH_PAGES * 4096u)
#define CONTROL 1u


static uint32_t rd(const uint8_t *p, uint32_t off)
{
	uint32_t v;
	memcpy(&v, p + off, 4);
	return v;
}

static void wr(uint8_t *p, uint32_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

struct ng *ng_new(const struct netvsp_config *cfg, bool reflect)
{
	return ng_new_ring(cfg, reflect, 16);
}

static struct ng *attach(struct vfix *f, bool owns, const struct netvsp_config *cfg,
			 bool reflect, uint32_t ring_pages)
{
	struct ng *g = calloc(1, sizeof(*g));
	assert_non_null(g);
	g->f = f;
	g->owns_f = owns;
	g->lb = netvsp_loopback_new(reflect);
	assert_non_null(g->lb);
	if (cfg)
		g->cfg = *cfg;
	g->gpadl_base = g->cfg.instance << 16;
	g->cfg.mem = &g->f->mem;
	g->cfg.backend = netvsp_loopback_ops();
	g->cfg.backend_ctx = g->lb;
	assert_int_equal(netvsp_add(g->f->s, &g->cfg, &g->nic), 0);
	struct vmbus_msg_offer_channel o;
	if (owns) {
		vf_connect(g->f);
		assert_int_equal(vf_request_offers(g->f, &o, 1), 1);
	} else {
		/* Hot-added: offered to the connected guest at once. */
		memcpy(&o, vf_take(g->f, VMBUS_MSG_OFFERCHANNEL, sizeof(o))->data, sizeof(o));
	}
	struct hv_guid nic = NETVSC_CLASS_GUID;
	struct hv_guid inst = netvsp_instance_guid(g->cfg.instance);
	assert_true(hv_guid_equal(&o.offer.if_type, &nic));
	assert_true(hv_guid_equal(&o.offer.if_instance, &inst));
	g->relid = o.child_relid;
	vf_chan_prepare(g->f, &g->ch[0].c, g->relid, g->gpadl_base + 1, ring_pages, ring_pages,
			false);
	assert_int_equal(vf_chan_open(g->f, &g->ch[0].c, 0), 0);
	g->ch[0].open = true;
	g->next_tid = 1;
	g->scratch_pfn = vf_alloc(g->f, SCRATCH_PAGES);
	g->frame_buf = malloc(FRAME_BUF);
	assert_non_null(g->frame_buf);
	return g;
}

struct ng *ng_new_ring(const struct netvsp_config *cfg, bool reflect, uint32_t ring_pages)
{
	return attach(vf_new(NULL), true, cfg, reflect, ring_pages);
}

struct ng *ng_new_on(struct ng *first, const struct netvsp_config *cfg, bool reflect)
{
	return attach(first->f, false, cfg, reflect, 16);
}

void ng_free(struct ng *g)
{
	netvsp_remove(g->f->s, g->nic);
	for (uint32_t i = 0; i < NG_MAX_CHANS; i++)
		if (g->ch[i].open)
			vf_chan_free(&g->ch[i].c);
	if (g->owns_f)
		vf_free(g->f);
	netvsp_loopback_free(g->lb);
	free(g->frame_buf);
	free(g);
}

int ng_restore_as(struct ng *g, const struct netvsp_config *cfg)
{
	assert_true(g->owns_f);
	netvsp_flush(g->nic);
	size_t len;
	uint8_t *rec = vf_save(g->f, &len);
	netvsp_remove(g->f->s, g->nic);
	vf_replace_server(g->f);
	if (cfg)
		g->cfg = *cfg;
	assert_int_equal(netvsp_add(g->f->s, &g->cfg, &g->nic), 0);
	int err = vmbus_server_load(g->f->s, rec, len);
	free(rec);
	netvsp_flush(g->nic);
	return err;
}

void ng_restore(struct ng *g)
{
	assert_int_equal(ng_restore_as(g, NULL), 0);
}

/* HvSignalEvent on channel i; with a device thread (drain_thread), back
 * once it has read the ring, so the fixture stays step by step. */
static void signal_host(struct ng *g, uint32_t i)
{
	vf_signal_relid(g->f, g->ch[i].c.relid);
	netvsp_flush(g->nic);
}

static void kick(struct ng *g, uint32_t i)
{
	/* The host drains before signal_host returns; always signal, as the
	 * fixture's host unmasks after every drain. */
	vmbus_ring_publish(&g->ch[i].c.w);
	signal_host(g, i);
}

void ng_send_nvsp(struct ng *g, uint32_t i, uint64_t tid, const void *msg, uint32_t len,
		  bool completion)
{
	struct vmbus_ring_iov iov = {msg, len};
	assert_int_equal(vmbus_ring_put_inband(&g->ch[i].c.w, tid,
					       completion ? VMBUS_PKT_FLAG_COMPLETION_REQUESTED : 0,
					       &iov, 1, NULL),
			 0);
	kick(g, i);
}

void ng_send_gpa(struct ng *g, uint32_t i, uint64_t tid, const struct vmbus_gpa_range_out *r,
		 uint32_t n, const void *msg, uint32_t len)
{
	assert_int_equal(vmbus_ring_put_gpa_direct(&g->ch[i].c.w, tid, r, n, msg, len, NULL), 0);
	kick(g, i);
}

void ng_send_completion(struct ng *g, uint32_t i, uint64_t tid, const void *msg, uint32_t len)
{
	assert_int_equal(vmbus_ring_put_completion(&g->ch[i].c.w, tid, msg, len, NULL), 0);
	kick(g, i);
}

bool ng_recv(struct ng *g, uint32_t i, uint8_t *buf, uint32_t cap, struct vmbus_packet *pkt)
{
	int err = vmbus_ring_recv(&g->ch[i].c.r, buf, cap, pkt);
	if (err == -EAGAIN)
		return false;
	assert_int_equal(err, 0);
	if (vmbus_ring_commit(&g->ch[i].c.r))
		signal_host(g, i);
	return true;
}

/* Host-initiated in-band messages, as netvsc_receive_inband takes them. */
static void inband(struct ng *g, const struct vmbus_packet *pkt)
{
	assert_true(pkt->data_len >= 4);
	uint32_t type = rd(pkt->data, 0);
	if (type == NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION) {
		assert_true(pkt->data_len >= 12);
		assert_int_equal(rd(pkt->data, 4), 0); /* no VF */
		g->vf_messages++;
		return;
	}
	assert_int_equal(type, NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE);
	/* netvsc_send_table's checks. */
	uint32_t count = rd(pkt->data, 4), offset = rd(pkt->data, 8);
	assert_int_equal(count, NVSP_SEND_TABLE_SIZE);
	assert_true(offset <= pkt->data_len - count * 4);
	for (uint32_t k = 0; k < count; k++)
		g->send_table[k] = rd(pkt->data, offset + 4 * k);
	g->have_table = true;
}

static void stash_xfer(struct ng *g, uint32_t i, const struct vmbus_packet *pkt)
{
	struct vmbus_xfer_pages_in x;
	assert_int_equal(vmbus_xfer_pages_parse(pkt, &x), 0);
	struct ng_stash *s = &g->stash[i];
	/* One entry per range (one RNDIS message each, as Linux's
	 * netvsc_receive walks them); the packet's last entry is marked. */
	assert_true(x.range_count >= 1 && x.range_count <= NETVSP_RX_BURST_MAX);
	assert_true(pkt->data_len >= 16);
	for (uint32_t k = 0; k < x.range_count; k++) {
		assert_true(s->n < STASH_MAX);
		struct ng_xfer *e = &s->x[(s->head + s->n++) % STASH_MAX];
		e->tid = pkt->trans_id;
		e->pageset = x.pageset_id;
		e->ranges = x.range_count;
		e->range = k;
		struct vmbus_xfer_page_range r = vmbus_xfer_pages_range(&x, k);
		e->off = r.byte_offset;
		e->count = r.byte_count;
		e->nvsp_type = rd(pkt->data, 0);
		e->channel_type = rd(pkt->data, 4);
	}
}

/* Reads everything waiting on channel i: in-band messages noted, transfer
 * pages stashed; stops at (and returns) the completion of tid, if any. */
static bool poll_chan(struct ng *g, uint32_t i, uint64_t tid, uint8_t *out, uint32_t *out_len)
{
	uint8_t buf[512];
	struct vmbus_packet pkt;
	while (ng_recv(g, i, buf, sizeof(buf), &pkt)) {
		if (pkt.type == VMBUS_PKT_DATA_INBAND) {
			inband(g, &pkt);
		} else if (pkt.type == VMBUS_PKT_DATA_USING_XFER_PAGES) {
			stash_xfer(g, i, &pkt);
		} else {
			assert_int_equal(pkt.type, VMBUS_PKT_COMP);
			assert_true(pkt.trans_id == tid);
			if (out) {
				memcpy(out, pkt.data, pkt.data_len);
				*out_len = pkt.data_len;
			}
			return true;
		}
	}
	return false;
}

static void take_completion(struct ng *g, uint32_t i, uint64_t tid, struct nvsp_message *m,
			    uint32_t *len)
{
	uint8_t buf[512];
	uint32_t l = 0;
	assert_true(poll_chan(g, i, tid, buf, &l));
	memset(m, 0, sizeof(*m));
	memcpy(m, buf, l < sizeof(*m) ? l : sizeof(*m));
	if (len)
		*len = l;
}

uint32_t ng_init(struct ng *g, uint32_t version)
{
	struct nvsp_message m = {.msg_type = NVSP_MSG_TYPE_INIT};
	m.init.min_protocol_ver = m.init.max_protocol_ver = version;
	uint64_t tid = g->next_tid++;
	ng_send_nvsp(g, 0, tid, &m, sizeof(m), true);
	uint32_t len;
	take_completion(g, 0, tid, &m, &len);
	/* netvsc_send_completion's size checks fall through to the largest. */
	assert_int_equal(len, sizeof(struct nvsp_message));
	assert_int_equal(m.msg_type, NVSP_MSG_TYPE_INIT_COMPLETE);
	if (m.init_complete.status != NVSP_STAT_SUCCESS)
		return m.init_complete.status;
	assert_int_equal(m.init_complete.negotiated_protocol_ver, version);
	g->version = version;
	if (version > NVSP_PROTOCOL_VERSION_1) {
		struct nvsp_message c = {.msg_type = NVSP_MSG2_TYPE_SEND_NDIS_CONFIG};
		c.send_ndis_config.mtu = 1500 + 14;
		c.send_ndis_config.capability = NVSP_CAP_IEEE8021Q |
			(version >= NVSP_PROTOCOL_VERSION_5 ? NVSP_CAP_SRIOV | NVSP_CAP_TEAMING : 0) |
			(version >= NVSP_PROTOCOL_VERSION_61 ? NVSP_CAP_RSC : 0);
		ng_send_nvsp(g, 0, 0, &c, sizeof(c), false);
	}
	struct nvsp_message v = {.msg_type = NVSP_MSG1_TYPE_SEND_NDIS_VER};
	uint32_t ndis = version <= NVSP_PROTOCOL_VERSION_4 ? NVSP_NDIS_VERSION_6_1
							   : NVSP_NDIS_VERSION_6_30;
	v.send_ndis_ver.ndis_major_ver = ndis >> 16;
	v.send_ndis_ver.ndis_minor_ver = ndis & 0xffff;
	ng_send_nvsp(g, 0, 0, &v, sizeof(v), false);
	return NVSP_STAT_SUCCESS;
}

/* A buffer of `pages` pages by GPADL; its page list into pfns. Scattered:
 * pages swapped in pairs (1, 0, 3, 2 ...), so no two neighbours in the
 * buffer are neighbours in guest memory. */
static uint64_t buffer_gpadl(struct ng *g, uint32_t handle, uint32_t pages, bool scattered,
			     uint64_t *pfns)
{
	uint64_t first = vf_alloc(g->f, pages);
	for (uint32_t k = 0; k < pages; k++)
		pfns[k] = first + (scattered && (k ^ 1) < pages ? k ^ 1 : k);
	assert_int_equal(vf_gpadl(g->f, g->relid, handle, pfns, pages), 0);
	return first;
}

void ng_send_buf_write(struct ng *g, uint32_t off, const void *bytes, uint32_t len)
{
	const uint8_t *b = bytes;
	assert_true(off <= NG_SEND_PAGES * 4096u && len <= NG_SEND_PAGES * 4096u - off);
	while (len) {
		uint32_t in_page = off % 4096, chunk = 4096 - in_page < len ? 4096 - in_page : len;
		memcpy((uint8_t *)vf_page(g->f, g->send_pfns[off / 4096]) + in_page, b, chunk);
		b += chunk;
		off += chunk;
		len -= chunk;
	}
}

void ng_buffers(struct ng *g)
{
	uint64_t *recv_pfns = malloc(sizeof(*recv_pfns) * NG_RECV_PAGES);
	assert_non_null(recv_pfns);
	g->recv_pfn = buffer_gpadl(g, g->gpadl_base + NG_RECV_GPADL, NG_RECV_PAGES, false,
				   recv_pfns);
	free(recv_pfns);
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RECV_BUF};
	m.send_recv_buf.gpadl_handle = g->gpadl_base + NG_RECV_GPADL;
	m.send_recv_buf.id = NVSP_RECV_BUFFER_ID;
	uint64_t tid = g->next_tid++;
	ng_send_nvsp(g, 0, tid, &m, sizeof(m), true);
	take_completion(g, 0, tid, &m, NULL);
	assert_int_equal(m.msg_type, NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE);
	assert_int_equal(m.send_recv_buf_complete.status, NVSP_STAT_SUCCESS);
	/* netvsc_init_buf's checks. */
	const struct nvsp_1_receive_buffer_section *s = &m.send_recv_buf_complete.sections[0];
	assert_int_equal(m.send_recv_buf_complete.num_sections, 1);
	assert_int_equal(s->offset, 0);
	assert_true(s->sub_alloc_size >= NVSP_RECV_SECTION_MIN);
	assert_true((uint64_t)s->sub_alloc_size * s->num_sub_allocs <= NG_RECV_PAGES * 4096ull);
	g->recv_section_size = s->sub_alloc_size;
	g->recv_sections = s->num_sub_allocs;

	g->send_pfn = buffer_gpadl(g, g->gpadl_base + NG_SEND_GPADL, NG_SEND_PAGES,
				   g->send_scattered, g->send_pfns);
	m = (struct nvsp_message){.msg_type = NVSP_MSG1_TYPE_SEND_SEND_BUF};
	m.send_send_buf.gpadl_handle = g->gpadl_base + NG_SEND_GPADL;
	m.send_send_buf.id = NVSP_SEND_BUFFER_ID;
	tid = g->next_tid++;
	ng_send_nvsp(g, 0, tid, &m, sizeof(m), true);
	take_completion(g, 0, tid, &m, NULL);
	assert_int_equal(m.msg_type, NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE);
	assert_int_equal(m.send_send_buf_complete.status, NVSP_STAT_SUCCESS);
	g->send_section_size = m.send_send_buf_complete.section_size;
	assert_true(g->send_section_size >= 1024);
	poll_chan(g, 0, 0, NULL, NULL); /* the VF association, if any */
	assert_int_equal(g->vf_messages, g->version >= NVSP_PROTOCOL_VERSION_4 ? 1 : 0);
}

static uint8_t *recv_buf(struct ng *g)
{
	return vf_page(g->f, g->recv_pfn);
}

/* Takes the next stashed (or arriving) transfer-page packet of channel i,
 * checked as netvsc_receive checks it; copies its bytes to out. */
static bool take_xfer(struct ng *g, uint32_t i, struct ng_xfer *x, uint8_t *out, uint32_t cap)
{
	struct ng_stash *s = &g->stash[i];
	if (!s->n)
		poll_chan(g, i, 0, NULL, NULL);
	if (!s->n)
		return false;
	*x = s->x[s->head];
	s->head = (s->head + 1) % STASH_MAX;
	s->n--;
	assert_int_equal(x->nvsp_type, NVSP_MSG1_TYPE_SEND_RNDIS_PKT);
	assert_int_equal(x->pageset, NVSP_RECV_BUFFER_ID);
	assert_true(x->off <= NG_RECV_PAGES * 4096u && x->count <= NG_RECV_PAGES * 4096u - x->off);
	assert_true(x->count <= g->recv_section_size);
	assert_true(x->off % g->recv_section_size == 0);
	assert_true(x->count <= cap);
	memcpy(out, recv_buf(g) + x->off, x->count);
	return true;
}

void ng_complete_xfer(struct ng *g, uint32_t i, uint64_t tid)
{
	/* As send_recv_completions: the header and a status. */
	uint32_t msg[2] = {NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE, NVSP_STAT_SUCCESS};
	ng_send_completion(g, i, tid, msg, sizeof(msg));
}

/* One completion per transfer-page packet, after its last range. */
static void complete_last(struct ng *g, uint32_t i, const struct ng_xfer *x)
{
	if (x->range + 1 == x->ranges)
		ng_complete_xfer(g, i, x->tid);
}

bool ng_take_xfer(struct ng *g, uint32_t i, struct ng_xfer *x, uint8_t *out, uint32_t cap)
{
	return take_xfer(g, i, x, out, cap);
}

/* Puts bytes into the guest's scratch pages at offset off (0..4095) and
 * describes them as one GPA range. */
static struct vmbus_gpa_range_out scratch(struct ng *g, const void *data, uint32_t len,
					  uint32_t off, uint64_t *pfns)
{
	assert_true(off + len <= SCRATCH_PAGES * 4096u);
	memcpy((uint8_t *)vf_page(g->f, g->scratch_pfn) + off, data, len);
	for (uint32_t k = 0; k < SCRATCH_PAGES; k++)
		pfns[k] = g->scratch_pfn + k;
	return (struct vmbus_gpa_range_out){len, off, pfns};
}

/* Sends RNDIS bytes as netvsc_send_pkt: in a section or GPA-direct. */
static uint64_t send_rndis(struct ng *g, uint32_t i, const void *bytes, uint32_t len,
			   bool via_section, uint32_t channel_type)
{
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT};
	m.send_rndis_pkt.channel_type = channel_type;
	uint64_t tid = g->next_tid++;
	if (via_section) {
		assert_true(len <= g->send_section_size);
		uint32_t sections = NG_SEND_PAGES * 4096u / g->send_section_size;
		uint32_t idx = g->next_section++ % sections;
		ng_send_buf_write(g, idx * g->send_section_size, bytes, len);
		m.send_rndis_pkt.send_buf_section_index = idx;
		m.send_rndis_pkt.send_buf_section_size = len;
		ng_send_nvsp(g, i, tid, &m, sizeof(m), true);
	} else {
		uint64_t pfns[SCRATCH_PAGES];
		/* Start mid-page, so the data crosses pages as a skb's does. */
		struct vmbus_gpa_range_out r = scratch(g, bytes, len, 4096 - 100, pfns);
		m.send_rndis_pkt.send_buf_section_index = NVSP_INVALID_SECTION_INDEX;
		ng_send_gpa(g, i, tid, &r, 1, &m, sizeof(m));
	}
	return tid;
}

static void take_send_completion(struct ng *g, uint32_t i, uint64_t tid, uint32_t want_status)
{
	struct nvsp_message m;
	uint32_t len;
	take_completion(g, i, tid, &m, &len);
	assert_true(len >= 8);
	assert_int_equal(m.msg_type, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE);
	assert_int_equal(m.send_rndis_pkt_complete.status, want_status);
}

uint32_t ng_rndis(struct ng *g, const void *req, uint32_t len, bool via_section, uint8_t *resp,
		  uint32_t cap)
{
	uint64_t tid = send_rndis(g, 0, req, len, via_section, CONTROL);
	take_send_completion(g, 0, tid, NVSP_STAT_SUCCESS);
	uint32_t n = ng_rndis_next(g, resp, cap);
	assert_true(n > 0);
	return n;
}

uint32_t ng_rndis_next(struct ng *g, uint8_t *resp, uint32_t cap)
{
	struct ng_xfer x;
	if (!take_xfer(g, 0, &x, resp, cap))
		return 0;
	assert_int_equal(x.channel_type, CONTROL);
	complete_last(g, 0, &x);
	/* rndis_filter_receive: the message length fits the range. */
	assert_true(x.count >= 8 && rd(resp, 4) <= x.count);
	return x.count;
}

void ng_rndis_up(struct ng *g)
{
	uint8_t req[64], resp[512];
	uint32_t init[] = {RNDIS_MSG_INIT, 24, 1, RNDIS_MAJOR_VERSION, RNDIS_MINOR_VERSION, 0x4000};
	ng_rndis(g, init, sizeof(init), false, resp, sizeof(resp));
	assert_int_equal(rd(resp, 0), RNDIS_MSG_INIT_C);
	assert_int_equal(rd(resp, 12), RNDIS_STATUS_SUCCESS);

	uint32_t q[] = {RNDIS_MSG_QUERY, 28, 2, RNDIS_OID_802_3_PERMANENT_ADDRESS, 0, 20, 0};
	ng_rndis(g, q, sizeof(q), false, resp, sizeof(resp));
	assert_int_equal(rd(resp, 0), RNDIS_MSG_QUERY_C);
	assert_int_equal(rd(resp, 16), 6);
	memcpy(g->mac, resp + 8 + rd(resp, 20), 6);

	memset(req, 0, sizeof(req));
	uint32_t s[] = {RNDIS_MSG_SET, 32, 3, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, 4, 20, 0,
			NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_BROADCAST};
	memcpy(req, s, sizeof(s));
	ng_rndis(g, req, sizeof(s), true, resp, sizeof(resp));
	assert_int_equal(rd(resp, 0), RNDIS_MSG_SET_C);
	assert_int_equal(rd(resp, 12), RNDIS_STATUS_SUCCESS);
}

void ng_up(struct ng *g, uint32_t version)
{
	assert_int_equal(ng_init(g, version), NVSP_STAT_SUCCESS);
	ng_buffers(g);
	ng_rndis_up(g);
}

/* An RNDIS data packet carrying frame, built in g->frame_buf: its length. */
static uint32_t build_data_packet(struct ng *g, const uint8_t *frame, uint32_t len)
{
	uint32_t total = 8 + 36 + len;
	assert_true(total <= FRAME_BUF);
	struct rndis_packet p = {.data_offset = 36, .data_len = len};
	wr(g->frame_buf, 0, RNDIS_MSG_PACKET);
	wr(g->frame_buf, 4, total);
	memcpy(g->frame_buf + 8, &p, sizeof(p));
	memcpy(g->frame_buf + 44, frame, len);
	return total;
}

void ng_send_frame(struct ng *g, uint32_t i, const uint8_t *frame, uint32_t len,
		   bool via_section)
{
	uint32_t total = build_data_packet(g, frame, len);
	uint64_t tid = send_rndis(g, i, g->frame_buf, total, via_section, 0);
	take_send_completion(g, i, tid, NVSP_STAT_SUCCESS);
}

uint64_t ng_post_frame(struct ng *g, uint32_t i, const uint8_t *frame, uint32_t len,
		       bool *signal)
{
	uint32_t total = build_data_packet(g, frame, len);
	assert_true(total <= g->send_section_size);
	uint32_t idx = g->next_section++ % (NG_SEND_PAGES * 4096u / g->send_section_size);
	ng_send_buf_write(g, idx * g->send_section_size, g->frame_buf, total);
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT};
	m.send_rndis_pkt.send_buf_section_index = idx;
	m.send_rndis_pkt.send_buf_section_size = total;
	uint64_t tid = g->next_tid++;
	struct vmbus_ring_iov iov = {&m, sizeof(m)};
	assert_int_equal(vmbus_ring_put_inband(&g->ch[i].c.w, tid,
					       VMBUS_PKT_FLAG_COMPLETION_REQUESTED, &iov, 1, NULL),
			 0);
	*signal = vmbus_ring_publish(&g->ch[i].c.w);
	return tid;
}

void ng_take_send_completion(struct ng *g, uint32_t i, uint64_t tid)
{
	take_send_completion(g, i, tid, NVSP_STAT_SUCCESS);
}

uint32_t ng_recv_frame(struct ng *g, uint32_t i, uint8_t *frame, uint32_t cap)
{
	struct ng_xfer x;
	if (!take_xfer(g, i, &x, g->frame_buf, FRAME_BUF))
		return 0;
	assert_int_equal(x.channel_type, 0);
	/* rndis_filter_receive_data's checks. */
	assert_int_equal(rd(g->frame_buf, 0), RNDIS_MSG_PACKET);
	assert_true(rd(g->frame_buf, 4) <= x.count);
	uint32_t data_offset = rd(g->frame_buf, 8), data_len = rd(g->frame_buf, 12);
	assert_true(data_offset < x.count - 8);
	assert_true(data_len <= x.count - 8 - data_offset);
	assert_true(data_len <= cap);
	memcpy(frame, g->frame_buf + 8 + data_offset, data_len);
	complete_last(g, i, &x);
	return data_len;
}

uint32_t ng_subchannels(struct ng *g, uint32_t n)
{
	struct nvsp_message m = {.msg_type = NVSP_MSG5_TYPE_SUBCHANNEL};
	m.subchn_req.op = NVSP_SUBCHANNEL_ALLOCATE;
	m.subchn_req.num_subchannels = n;
	uint64_t tid = g->next_tid++;
	ng_send_nvsp(g, 0, tid, &m, sizeof(m), true);
	take_completion(g, 0, tid, &m, NULL);
	assert_int_equal(m.msg_type, NVSP_MSG5_TYPE_SUBCHANNEL);
	assert_int_equal(m.subchn_comp.status, NVSP_STAT_SUCCESS);
	uint32_t got = m.subchn_comp.num_subchannels;
	assert_true(got <= n && got + 1 < NG_MAX_CHANS);
	poll_chan(g, 0, 0, NULL, NULL);
	assert_true(g->have_table);
	struct vmbus_msg_offer_channel o[NG_MAX_CHANS];
	for (uint32_t k = 0; k < got; k++)
		memcpy(&o[k], vf_take(g->f, VMBUS_MSG_OFFERCHANNEL, sizeof(o[k]))->data,
		       sizeof(o[k]));
	for (uint32_t k = 0; k < got; k++) {
		uint16_t idx = o[k].offer.sub_channel_index;
		assert_true(idx >= 1 && idx < NG_MAX_CHANS && !g->ch[idx].open);
		vf_chan_prepare(g->f, &g->ch[idx].c, o[k].child_relid, g->gpadl_base + 0x100 + idx, 8, 8, false);
		assert_int_equal(vf_chan_open(g->f, &g->ch[idx].c, idx % VF_VPS), 0);
		g->ch[idx].open = true;
	}
	return got;
}
