/* SPDX-License-Identifier: MIT */
/*
 * netvsc against a scripted host: the VMBus client functions netvsc calls
 * are replaced here by a fake channel whose "host" answers as netvsp does
 * (or lies when a test says so), writing into a real ring that netvsc
 * reads. Checks the bring-up Linux does, the frame paths, and that every
 * kind of bad host input is refused and counted without a crash.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hvkit/proto/netvsc.h"
#include "hvkit/proto/rndis.h"
#include "netvsc.h"
#include "ring_buffer.h"
#include "ring_fixture.h"

#define RING (64 * 1024)

/* ---- A port on the heap ---- */

struct hv_port_lock {
	pthread_mutex_t m;
};
struct hv_port_event {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool set;
};

static void *t_alloc(void *ctx, uint32_t count)
{
	(void)ctx;
	void *p = aligned_alloc(4096, (size_t)count * 4096);
	if (p)
		memset(p, 0, (size_t)count * 4096);
	return p;
}
static void t_free(void *ctx, void *p, uint32_t count)
{
	(void)ctx;
	(void)count;
	free(p);
}
/* A "GPA" is the address itself. */
static uint64_t t_gpa(void *ctx, const void *p)
{
	(void)ctx;
	return (uint64_t)(uintptr_t)p;
}
static struct hv_port_lock *t_lock_new(void *ctx)
{
	(void)ctx;
	struct hv_port_lock *l = calloc(1, sizeof(*l));
	pthread_mutex_init(&l->m, NULL);
	return l;
}
static void t_lock_free(void *ctx, struct hv_port_lock *l)
{
	(void)ctx;
	pthread_mutex_destroy(&l->m);
	free(l);
}
static void t_lock(void *ctx, struct hv_port_lock *l)
{
	(void)ctx;
	pthread_mutex_lock(&l->m);
}
static void t_unlock(void *ctx, struct hv_port_lock *l)
{
	(void)ctx;
	pthread_mutex_unlock(&l->m);
}
static struct hv_port_event *t_ev_new(void *ctx)
{
	(void)ctx;
	struct hv_port_event *e = calloc(1, sizeof(*e));
	pthread_mutex_init(&e->m, NULL);
	pthread_cond_init(&e->c, NULL);
	return e;
}
static void t_ev_free(void *ctx, struct hv_port_event *e)
{
	(void)ctx;
	pthread_mutex_destroy(&e->m);
	pthread_cond_destroy(&e->c);
	free(e);
}
static void t_ev_set(void *ctx, struct hv_port_event *e)
{
	(void)ctx;
	pthread_mutex_lock(&e->m);
	e->set = true;
	pthread_cond_signal(&e->c);
	pthread_mutex_unlock(&e->m);
}
static int t_ev_wait(void *ctx, struct hv_port_event *e, uint64_t ns)
{
	(void)ctx;
	(void)ns;
	/* The scripted host answers at once: nothing is ever waited for long. */
	pthread_mutex_lock(&e->m);
	int r = e->set ? 0 : -ETIMEDOUT;
	e->set = false;
	pthread_mutex_unlock(&e->m);
	return r;
}
static uint64_t t_now(void *ctx)
{
	(void)ctx;
	return 0;
}

static const struct hv_port port = {
	.alloc_pages = t_alloc,
	.free_pages = t_free,
	.gpa_of = t_gpa,
	.lock_new = t_lock_new,
	.lock_free = t_lock_free,
	.lock = t_lock,
	.unlock = t_unlock,
	.event_new = t_ev_new,
	.event_free = t_ev_free,
	.event_set = t_ev_set,
	.event_wait = t_ev_wait,
	.monotonic_ns = t_now,
};

/* ---- The fake channel and its scripted host ---- */

struct vmbus_client {
	int unused;
};

struct vmbus_client_channel {
	vmbus_client_channel_callback cb;
	void *arg;
	void *data;
	bool open;
	struct ring_fixture in; /* the host writes (in.w), netvsc reads */
};

static struct {
	struct vmbus_client client;
	struct vmbus_client_channel ch;
	struct vmbus_driver drv;
	/* How the host answers. */
	uint32_t max_version;
	uint32_t rnum_sections, roffset, rsec_size, rsec_count, ssec_size;
	bool hold_completions;
	uint8_t mac[6];
	/* What it saw. */
	uint8_t *gpadl[4];
	uint32_t gpadl_pages[4], ngpadl, gpadls_torn;
	uint8_t *rbuf, *sbuf;
	uint32_t rbuf_size;
	uint32_t versions_tried, filter, next_rsec;
	uint64_t held[512];
	uint32_t nheld;
	uint64_t guest_completed[512];
	uint32_t ncompleted;
	uint8_t frame[70000];
	uint32_t frame_len, frames, gpa_direct_frames, sends;
	uint32_t max_pkts; /* RNDIS INITIALIZE's answer */
} H;

static void kick(void)
{
	vmbus_ring_publish(&H.ch.in.w);
	if (H.ch.open && H.ch.cb)
		H.ch.cb(H.ch.arg, &H.ch);
}

static void put_comp(uint64_t tid, const struct nvsp_message *m)
{
	assert_int_equal(vmbus_ring_put_completion(&H.ch.in.w, tid, m, sizeof(*m), NULL), 0);
}

static void put_xfer(uint64_t tid, uint16_t pageset, uint32_t nvsp_type, uint32_t channel_type,
		     const struct vmbus_xfer_page_range *r, uint32_t n)
{
	struct nvsp_message m = {.msg_type = nvsp_type};
	m.send_rndis_pkt.channel_type = channel_type;
	m.send_rndis_pkt.send_buf_section_index = NVSP_INVALID_SECTION_INDEX;
	assert_int_equal(vmbus_ring_put_xfer_pages(&H.ch.in.w, tid, pageset, r, n, &m, sizeof(m), NULL),
			 0);
}

/* An RNDIS message into the next receive section; its range. */
static struct vmbus_xfer_page_range put_rndis(const void *msg, uint32_t len)
{
	uint32_t off = (H.next_rsec++ % 64) * 1728;
	memcpy(H.rbuf + off, msg, len);
	return (struct vmbus_xfer_page_range){len, off};
}

static void answer_rndis(const uint8_t *req, uint32_t len)
{
	struct rndis_msg_header h;
	uint32_t id, oid = 0;
	uint8_t a[256] = {0};
	uint32_t alen = 8 + 8;
	uint32_t status = RNDIS_STATUS_SUCCESS;

	assert_true(len >= 12);
	memcpy(&h, req, 8);
	memcpy(&id, req + 8, 4);
	if (len >= 16)
		memcpy(&oid, req + 12, 4);
	if (h.msg_type == RNDIS_MSG_INIT) {
		struct rndis_initialize_complete c = {.req_id = id, .max_pkt_per_msg = H.max_pkts,
						      .pkt_alignment_factor = 3};
		memcpy(a + 8, &c, sizeof(c));
		alen = 8 + sizeof(c);
	} else if (h.msg_type == RNDIS_MSG_QUERY) {
		struct rndis_query_complete c = {.req_id = id, .info_buf_offset = sizeof(c)};
		if (oid == RNDIS_OID_802_3_PERMANENT_ADDRESS) {
			c.info_buflen = 6;
			memcpy(a + 8 + sizeof(c), H.mac, 6);
		} else if (oid == RNDIS_OID_GEN_MEDIA_CONNECT_STATUS) {
			c.info_buflen = 4;
		} else {
			c.status = RNDIS_STATUS_NOT_SUPPORTED;
		}
		status = c.status;
		memcpy(a + 8, &c, sizeof(c));
		alen = 8 + (uint32_t)sizeof(c) + c.info_buflen;
	} else if (h.msg_type == RNDIS_MSG_SET) {
		if (oid == RNDIS_OID_GEN_CURRENT_PACKET_FILTER)
			memcpy(&H.filter, req + 28, 4);
	} else {
		fail_msg("unexpected RNDIS request %#x", h.msg_type);
	}
	struct rndis_msg_header ah = {h.msg_type | RNDIS_MSG_COMPLETION, alen};
	memcpy(a, &ah, 8);
	memcpy(a + 8, &id, 4);
	memcpy(a + 12, &status, 4);
	struct vmbus_xfer_page_range r = put_rndis(a, alen);
	put_xfer(0x1000 + H.next_rsec, NVSP_RECV_BUFFER_ID, NVSP_MSG1_TYPE_SEND_RNDIS_PKT,
		 NVSP_RMC_CONTROL, &r, 1);
}

/* One send's RNDIS packets, back to back (a batch), each taken. */
static void take_frame(const uint8_t *rndis, uint32_t len)
{
	H.sends++;
	while (len) {
		struct rndis_msg_header h;
		struct rndis_packet p;
		assert_true(len >= 8 + sizeof(p));
		memcpy(&h, rndis, 8);
		memcpy(&p, rndis + 8, sizeof(p));
		assert_int_equal(h.msg_type, RNDIS_MSG_PACKET);
		assert_true(h.msg_len <= len);
		assert_true(8 + p.data_offset + p.data_len <= h.msg_len);
		/* Inside a batch, every message but the last is padded to 8. */
		if (h.msg_len < len)
			assert_int_equal(h.msg_len % 8, 0);
		memcpy(H.frame, rndis + 8 + p.data_offset, p.data_len);
		H.frame_len = p.data_len;
		H.frames++;
		rndis += h.msg_len;
		len -= h.msg_len;
	}
}

static void complete_send(uint64_t tid)
{
	struct nvsp_message a = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE};
	a.send_rndis_pkt_complete.status = NVSP_STAT_SUCCESS;
	if (H.hold_completions && H.nheld < 512)
		H.held[H.nheld++] = tid;
	else
		put_comp(tid, &a);
}

static void host_handle(uint64_t tid, const struct nvsp_message *m)
{
	struct nvsp_message a = {0};
	switch (m->msg_type) {
	case NVSP_MSG_TYPE_INIT:
		H.versions_tried++;
		a.msg_type = NVSP_MSG_TYPE_INIT_COMPLETE;
		a.init_complete.status = m->init.max_protocol_ver <= H.max_version
						 ? NVSP_STAT_SUCCESS
						 : NVSP_STAT_FAIL;
		put_comp(tid, &a);
		break;
	case NVSP_MSG1_TYPE_SEND_RECV_BUF:
		assert_true(m->send_recv_buf.gpadl_handle < H.ngpadl);
		H.rbuf = H.gpadl[m->send_recv_buf.gpadl_handle];
		H.rbuf_size = H.gpadl_pages[m->send_recv_buf.gpadl_handle] * 4096;
		a.msg_type = NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE;
		a.send_recv_buf_complete.status = NVSP_STAT_SUCCESS;
		a.send_recv_buf_complete.num_sections = H.rnum_sections;
		a.send_recv_buf_complete.sections[0] = (struct nvsp_1_receive_buffer_section){
			H.roffset, H.rsec_size, H.rsec_count, H.rsec_size * H.rsec_count};
		put_comp(tid, &a);
		break;
	case NVSP_MSG1_TYPE_SEND_SEND_BUF:
		assert_true(m->send_send_buf.gpadl_handle < H.ngpadl);
		H.sbuf = H.gpadl[m->send_send_buf.gpadl_handle];
		a.msg_type = NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE;
		a.send_send_buf_complete.status = NVSP_STAT_SUCCESS;
		a.send_send_buf_complete.section_size = H.ssec_size;
		put_comp(tid, &a);
		break;
	case NVSP_MSG1_TYPE_SEND_RNDIS_PKT: {
		uint32_t idx = m->send_rndis_pkt.send_buf_section_index;
		const uint8_t *rndis = H.sbuf + (size_t)idx * H.ssec_size;
		uint32_t len = m->send_rndis_pkt.send_buf_section_size;
		if (m->send_rndis_pkt.channel_type == NVSP_RMC_CONTROL)
			answer_rndis(rndis, len);
		else
			take_frame(rndis, len);
		complete_send(tid);
		break;
	}
	case NVSP_MSG2_TYPE_SEND_NDIS_CONFIG:
	case NVSP_MSG1_TYPE_SEND_NDIS_VER:
	case NVSP_MSG1_TYPE_REVOKE_RECV_BUF:
	case NVSP_MSG1_TYPE_REVOKE_SEND_BUF:
		break;
	default:
		fail_msg("unexpected NVSP message %u", m->msg_type);
	}
}

/* The VMBus client functions netvsc uses. */

const struct hv_port *vmbus_client_port(const struct vmbus_client *c)
{
	(void)c;
	return &port;
}

int vmbus_client_register_driver(struct vmbus_client *c, const struct vmbus_driver *drv)
{
	(void)c;
	H.drv = *drv;
	return 0;
}

int vmbus_client_channel_open(struct vmbus_client_channel *ch, uint32_t send_ring_bytes,
			      uint32_t recv_ring_bytes, const void *user_data, uint32_t user_len,
			      vmbus_client_channel_callback cb, void *arg)
{
	(void)send_ring_bytes;
	(void)recv_ring_bytes;
	(void)user_data;
	(void)user_len;
	/* RING, not what netvsc asks: the tests fill it to known depths. */
	assert_int_equal(ring_fixture_init(&ch->in, false, RING), 0);
	ch->cb = cb;
	ch->arg = arg;
	ch->open = true;
	return 0;
}

void vmbus_client_channel_close(struct vmbus_client_channel *ch)
{
	ch->open = false;
	ring_fixture_destroy(&ch->in);
}

void vmbus_client_channel_set_data(struct vmbus_client_channel *ch, void *data)
{
	ch->data = data;
}

void *vmbus_client_channel_data(const struct vmbus_client_channel *ch)
{
	return ch->data;
}

void vmbus_client_channel_info(const struct vmbus_client_channel *ch,
			       struct vmbus_client_channel_info *out)
{
	(void)ch;
	memset(out, 0, sizeof(*out));
}

int vmbus_client_gpadl_create(struct vmbus_client_channel *ch, const void *pages, uint32_t count,
			      uint32_t *handle)
{
	(void)ch;
	assert_true(H.ngpadl < 4);
	H.gpadl[H.ngpadl] = (uint8_t *)pages;
	H.gpadl_pages[H.ngpadl] = count;
	*handle = H.ngpadl++;
	return 0;
}

int vmbus_client_gpadl_teardown(struct vmbus_client_channel *ch, uint32_t handle)
{
	(void)ch;
	(void)handle;
	H.gpadls_torn++;
	return 0;
}

int vmbus_client_channel_send_inband(struct vmbus_client_channel *ch, uint64_t trans_id,
				     uint16_t flags, const void *data, uint32_t len)
{
	(void)ch;
	(void)flags;
	struct nvsp_message m = {0};
	assert_int_equal(len, sizeof(m));
	memcpy(&m, data, len);
	host_handle(trans_id, &m);
	kick();
	return 0;
}

int vmbus_client_channel_send_gpa_direct(struct vmbus_client_channel *ch, uint64_t trans_id,
					 const struct vmbus_gpa_range_out *ranges,
					 uint32_t range_count, const void *data, uint32_t len)
{
	(void)ch;
	(void)data;
	(void)len;
	assert_int_equal(range_count, 1);
	/* The test's GPAs are addresses: the pages are contiguous. */
	take_frame((const uint8_t *)(uintptr_t)(ranges[0].pfns[0] * 4096 + ranges[0].byte_offset),
		   ranges[0].byte_count);
	H.gpa_direct_frames++;
	complete_send(trans_id);
	kick();
	return 0;
}

int vmbus_client_channel_send(struct vmbus_client_channel *ch, const struct vmbus_packet_out *p)
{
	(void)ch;
	assert_int_equal(p->type, VMBUS_PKT_COMP);
	if (H.ncompleted < 512)
		H.guest_completed[H.ncompleted++] = p->trans_id;
	return 0;
}

int vmbus_client_channel_recv(struct vmbus_client_channel *ch, void *buf, uint32_t len,
			      struct vmbus_packet *pkt)
{
	int err = vmbus_ring_recv(&ch->in.r, buf, len, pkt);
	vmbus_ring_commit(&ch->in.r);
	return err;
}

/* ---- Fixture ---- */

static uint64_t rx_frames;
static uint8_t rx_last[70000];
static uint32_t rx_len;
static int link_events[8];
static uint32_t nlink;

static void on_rx(void *ctx, const void *frame, size_t len)
{
	(void)ctx;
	rx_frames++;
	memcpy(rx_last, frame, len);
	rx_len = (uint32_t)len;
}

static void on_link(void *ctx, bool up)
{
	(void)ctx;
	if (nlink < 8)
		link_events[nlink++] = up;
}

static void host_defaults(void)
{
	memset(&H, 0, sizeof(H));
	H.max_version = NVSP_PROTOCOL_VERSION_61;
	H.rnum_sections = 1;
	H.rsec_size = 1728;
	H.rsec_count = 64;
	H.ssec_size = NVSP_SEND_SECTION_SIZE;
	H.max_pkts = 8;
	memcpy(H.mac, (uint8_t[]){0x00, 0x15, 0x5d, 1, 2, 3}, 6);
	rx_frames = 0;
	rx_len = 0;
	nlink = 0;
}

static struct netvsc_driver *new_driver(uint32_t mtu)
{
	int err;
	struct netvsc_config cfg = {.mtu = mtu, .recv_sections = 64, .send_sections = 8};
	struct netvsc_driver *d = netvsc_driver_new(&H.client, &cfg, &err);
	assert_non_null(d);
	return d;
}

/* A NIC up and open on the scripted host. */
static struct netvsc *up(struct netvsc_driver **d, uint32_t mtu)
{
	*d = new_driver(mtu);
	assert_int_equal(H.drv.probe(H.drv.ctx, &H.ch), 0);
	struct netvsc *n = netvsc_nic(*d, 0);
	assert_non_null(n);
	struct netvsc_ops ops = {.rx = on_rx, .link = on_link};
	assert_int_equal(netvsc_open(n, &ops), 0);
	return n;
}

static struct netvsc_stats stats(struct netvsc *n)
{
	struct netvsc_stats st;
	netvsc_get_stats(n, &st);
	return st;
}

static bool guest_completed(uint64_t tid)
{
	for (uint32_t i = 0; i < H.ncompleted; i++)
		if (H.guest_completed[i] == tid)
			return true;
	return false;
}

/* An RNDIS data packet around frame (len bytes) in buffer out. */
static uint32_t rndis_packet(uint8_t *out, const uint8_t *frame, uint32_t len)
{
	struct rndis_packet p = {.data_offset = sizeof(p), .data_len = len};
	struct rndis_msg_header h = {RNDIS_MSG_PACKET, 8 + (uint32_t)sizeof(p) + len};
	memcpy(out, &h, 8);
	memcpy(out + 8, &p, sizeof(p));
	memcpy(out + 8 + sizeof(p), frame, len);
	return h.msg_len;
}

/* ---- Tests ---- */

static void brings_up_as_linux(void **state)
{
	(void)state;
	host_defaults();
	struct netvsc_driver *d;
	struct netvsc *n = up(&d, 0);
	struct netvsc_stats st = stats(n);
	assert_int_equal(H.versions_tried, 1);
	assert_int_equal(st.nvsp_version, NVSP_PROTOCOL_VERSION_61);
	assert_int_equal(st.ndis_version, NVSP_NDIS_VERSION_6_30);
	assert_int_equal(st.recv_section_size, 1728);
	assert_int_equal(st.recv_sections, 64);
	assert_int_equal(st.send_section_size, NVSP_SEND_SECTION_SIZE);
	assert_int_equal(H.ngpadl, 2);
	uint8_t mac[6];
	netvsc_get_mac(n, mac);
	assert_memory_equal(mac, H.mac, 6);
	assert_true(netvsc_link_up(n));
	assert_int_equal(H.filter, NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_MULTICAST |
					   NDIS_PACKET_TYPE_BROADCAST);

	/* A frame out, copied into a section. */
	uint8_t f[1514];
	for (uint32_t i = 0; i < sizeof(f); i++)
		f[i] = (uint8_t)(i * 7);
	assert_int_equal(netvsc_send(n, f, sizeof(f)), 0);
	assert_int_equal(H.frame_len, sizeof(f));
	assert_memory_equal(H.frame, f, sizeof(f));
	st = stats(n);
	assert_int_equal(st.tx_copied, 1);
	assert_int_equal(st.tx_in_flight, 0);

	/* A frame in, delivered, then completed with its transaction id. */
	uint8_t msg[1600];
	uint32_t len = rndis_packet(msg, f, 60);
	struct vmbus_xfer_page_range r = put_rndis(msg, len);
	put_xfer(0xabc, NVSP_RECV_BUFFER_ID, NVSP_MSG1_TYPE_SEND_RNDIS_PKT, NVSP_RMC_DATA, &r, 1);
	kick();
	assert_int_equal(rx_frames, 1);
	assert_int_equal(rx_len, 60);
	assert_memory_equal(rx_last, f, 60);
	assert_true(guest_completed(0xabc));

	/* Sizes the interface refuses. */
	assert_int_equal(netvsc_send(n, f, 13), -EMSGSIZE);
	assert_int_equal(netvsc_send(n, f, 1500 + 18 + 1), -EMSGSIZE);
	netvsc_driver_free(d);
	assert_int_equal(H.gpadls_torn, 2);
}

static void falls_back_one_version_at_a_time(void **state)
{
	(void)state;
	host_defaults();
	H.max_version = NVSP_PROTOCOL_VERSION_2;
	struct netvsc_driver *d;
	struct netvsc *n = up(&d, 0);
	assert_int_equal(H.versions_tried, 5); /* 6.1, 6, 5, 4, 2 */
	assert_int_equal(stats(n).nvsp_version, NVSP_PROTOCOL_VERSION_2);
	assert_int_equal(stats(n).ndis_version, NVSP_NDIS_VERSION_6_1);
	netvsc_driver_free(d);
}

static void a_host_refusing_every_version_is_left_alone(void **state)
{
	(void)state;
	host_defaults();
	H.max_version = 1; /* below NVSP 1 */
	struct netvsc_driver *d = new_driver(0);
	assert_int_equal(H.drv.probe(H.drv.ctx, &H.ch), -EPROTONOSUPPORT);
	assert_int_equal(H.versions_tried, 6);
	assert_int_equal(netvsc_count(d), 0);
	netvsc_driver_free(d);
}

static void receive_sections_that_do_not_fit_are_refused(void **state)
{
	(void)state;
	static const struct {
		uint32_t sections, offset, size, count;
	} lies[] = {
		{2, 0, 1728, 64},    /* two sections */
		{1, 4096, 1728, 32}, /* not at offset 0 */
		{1, 0, 1728, 1000},  /* beyond the buffer */
		{1, 0, 16, 64},      /* smaller than a minimal frame */
		{1, 0, 1728, 0},     /* none */
		{1, 0, 0x80000000u, 2}, /* size * count overflows 32 bits */
	};
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		host_defaults();
		H.rnum_sections = lies[i].sections;
		H.roffset = lies[i].offset;
		H.rsec_size = lies[i].size;
		H.rsec_count = lies[i].count;
		struct netvsc_driver *d = new_driver(0);
		assert_int_equal(H.drv.probe(H.drv.ctx, &H.ch), -EPROTO);
		assert_int_equal(netvsc_count(d), 0);
		netvsc_driver_free(d);
	}
	/* A send section too small for a packet header. */
	host_defaults();
	H.ssec_size = 8;
	struct netvsc_driver *d = new_driver(0);
	assert_int_equal(H.drv.probe(H.drv.ctx, &H.ch), -EPROTO);
	netvsc_driver_free(d);
}

static void bad_ranges_are_counted_and_completed(void **state)
{
	(void)state;
	host_defaults();
	struct netvsc_driver *d;
	struct netvsc *n = up(&d, 0);
	uint32_t size = H.rbuf_size;
	const struct vmbus_xfer_page_range bad[] = {
		{60, size},           /* starts at the end */
		{100, size - 50},     /* runs past the end */
		{0xffffffffu, 8},     /* wraps */
		{4, 0},               /* shorter than an RNDIS header */
	};
	for (uint32_t i = 0; i < 4; i++)
		put_xfer(0x100 + i, NVSP_RECV_BUFFER_ID, NVSP_MSG1_TYPE_SEND_RNDIS_PKT, NVSP_RMC_DATA,
			 &bad[i], 1);
	kick();
	struct netvsc_stats st = stats(n);
	assert_int_equal(st.bad_ranges, 4);
	assert_int_equal(rx_frames, 0);
	for (uint32_t i = 0; i < 4; i++)
		assert_true(guest_completed(0x100 + i)); /* the host gets its sections back */
	netvsc_driver_free(d);
}

static void rndis_lengths_that_lie_are_refused(void **state)
{
	(void)state;
	host_defaults();
	struct netvsc_driver *d;
	struct netvsc *n = up(&d, 0);
	uint8_t f[100] = {1, 2, 3};
	uint8_t msg[256];
	uint32_t lies = 0;

	for (int kind = 0; kind < 8; kind++) {
		uint32_t len = rndis_packet(msg, f, sizeof(f));
		struct rndis_packet p;
		memcpy(&p, msg + 8, sizeof(p));
		struct vmbus_xfer_page_range r;
		switch (kind) {
		case 0: /* msg_len beyond its range */
			r = put_rndis(msg, len);
			r.byte_count = len - 1;
			break;
		case 1: /* data past the message */
			p.data_len = len;
			break;
		case 2: /* data offset inside the header */
			p.data_offset = 8;
			break;
		case 3: /* data offset far out */
			p.data_offset = 0xfffffff0u;
			break;
		case 4: /* per-packet info past the message */
			p.per_pkt_info_offset = sizeof(p);
			p.per_pkt_info_len = 4096;
			break;
		case 5: { /* a PPI element claiming more than its area */
			struct rndis_per_packet_info e = {.size = 64, .type = 0, .ppi_offset = 12};
			memcpy(msg + 8 + sizeof(p), &e, sizeof(e));
			p.per_pkt_info_offset = sizeof(p);
			p.per_pkt_info_len = 16;
			break;
		}
		case 6: { /* a PPI element whose data starts past it */
			struct rndis_per_packet_info e = {.size = 16, .type = 0, .ppi_offset = 40};
			memcpy(msg + 8 + sizeof(p), &e, sizeof(e));
			p.per_pkt_info_offset = sizeof(p);
			p.per_pkt_info_len = 16;
			break;
		}
		case 7: /* msg_len below the header */
			memcpy(msg + 4, &(uint32_t){4}, 4);
			break;
		}
		if (kind != 0) {
			memcpy(msg + 8, &p, sizeof(p));
			r = put_rndis(msg, len);
		}
		put_xfer(0x200 + (uint64_t)kind, NVSP_RECV_BUFFER_ID, NVSP_MSG1_TYPE_SEND_RNDIS_PKT,
			 NVSP_RMC_DATA, &r, 1);
		lies++;
	}
	kick();
	struct netvsc_stats st = stats(n);
	assert_int_equal(st.bad_rndis, lies);
	assert_int_equal(rx_frames, 0);
	assert_true(guest_completed(0x207));
	/* A control message bigger than netvsc takes. */
	uint8_t big[1200] = {0};
	memcpy(big, &(struct rndis_msg_header){RNDIS_MSG_INDICATE, sizeof(big)}, 8);
	struct vmbus_xfer_page_range r = put_rndis(big, sizeof(big));
	put_xfer(0x300, NVSP_RECV_BUFFER_ID, NVSP_MSG1_TYPE_SEND_RNDIS_PKT, NVSP_RMC_CONTROL, &r, 1);
	kick();
	assert_int_equal(stats(n).bad_rndis, lies + 1);
	/* And the path still works. */
	uint32_t len = rndis_packet(msg, f, sizeof(f));
	r = put_rndis(msg, len);
	put_xfer(0x301, NVSP_RECV_BUFFER_ID, NVSP_MSG1_TYPE_SEND_RNDIS_PKT, NVSP_RMC_DATA, &r, 1);
	kick();
	assert_int_equal(rx_frames, 1);
	netvsc_driver_free(d);
}

static void bad_packets_are_counted(void **state)
{
	(void)state;
	host_defaults();
	struct netvsc_driver *d;
	struct netvsc *n = up(&d, 0);
	uint8_t f[60] = {0};
	uint8_t msg[256];
	uint32_t len = rndis_packet(msg, f, sizeof(f));
	struct vmbus_xfer_page_range r = put_rndis(msg, len);
	/* Another page set; another NVSP type. */
	put_xfer(0x400, 0x1234, NVSP_MSG1_TYPE_SEND_RNDIS_PKT, NVSP_RMC_DATA, &r, 1);
	put_xfer(0x401, NVSP_RECV_BUFFER_ID, NVSP_MSG1_TYPE_SEND_RECV_BUF, NVSP_RMC_DATA, &r, 1);
	/* A transfer-page packet with a 2-byte payload. */
	assert_int_equal(vmbus_ring_put_xfer_pages(&H.ch.in.w, 0x402, NVSP_RECV_BUFFER_ID, &r, 1,
						   "\x6b\x00", 2, NULL),
			 0);
	/* In-band: an unknown NVSP type, a send table of the wrong size. */
	struct nvsp_message m = {.msg_type = 9999};
	assert_int_equal(vmbus_ring_put_inband(&H.ch.in.w, 0, 0,
					       &(struct vmbus_ring_iov){&m, sizeof(m)}, 1, NULL),
			 0);
	struct nvsp_send_indirection_table_msg t = {
		.msg = {.msg_type = NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE}};
	t.msg.send_table.count = 8;
	t.msg.send_table.offset = sizeof(t.msg);
	assert_int_equal(vmbus_ring_put_inband(&H.ch.in.w, 0, 0,
					       &(struct vmbus_ring_iov){&t, sizeof(t)}, 1, NULL),
			 0);
	t.msg.send_table.count = 16;
	t.msg.send_table.offset = 100; /* the table would run past the packet */
	assert_int_equal(vmbus_ring_put_inband(&H.ch.in.w, 0, 0,
					       &(struct vmbus_ring_iov){&t, sizeof(t)}, 1, NULL),
			 0);
	kick();
	struct netvsc_stats st = stats(n);
	assert_int_equal(st.bad_packets, 6);
	assert_int_equal(rx_frames, 0);
	assert_true(guest_completed(0x400) && guest_completed(0x401) && guest_completed(0x402));
	/* A good table is taken. */
	t.msg.send_table.offset = sizeof(t.msg);
	for (uint32_t i = 0; i < 16; i++)
		t.table[i] = i % 3;
	assert_int_equal(vmbus_ring_put_inband(&H.ch.in.w, 0, 0,
					       &(struct vmbus_ring_iov){&t, sizeof(t)}, 1, NULL),
			 0);
	kick();
	st = stats(n);
	assert_int_equal(st.bad_packets, 6);
	assert_int_equal(st.send_table[5], 2);
	netvsc_driver_free(d);
}

/* A packet larger than netvsc copies out (16 KiB) cannot be read: the
 * channel stops, counted once, rather than reading it again for ever. */
static void an_oversized_packet_stops_the_channel_once(void **state)
{
	(void)state;
	host_defaults();
	struct netvsc_driver *d;
	struct netvsc *n = up(&d, 0);
	static uint8_t big[20 * 1024];
	assert_int_equal(vmbus_ring_put_inband(&H.ch.in.w, 0, 0,
					       &(struct vmbus_ring_iov){big, sizeof(big)}, 1, NULL),
			 0);
	kick();
	assert_int_equal(stats(n).broken_rings, 1);
	kick();
	assert_int_equal(stats(n).broken_rings, 1);
	assert_int_equal(rx_frames, 0);
	netvsc_driver_free(d);
}

static void unknown_completions_are_counted(void **state)
{
	(void)state;
	host_defaults();
	struct netvsc_driver *d;
	struct netvsc *n = up(&d, 0);
	uint64_t before = stats(n).tx_completions;
	struct nvsp_message c = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE};
	put_comp(0xdeadbeef, &c);              /* no such kind */
	put_comp((2ull << 56) | 5, &c);        /* a free section */
	put_comp((2ull << 56) | 999999, &c);   /* a section past the buffer */
	put_comp((3ull << 56) | 3, &c);        /* a free bounce buffer */
	put_comp((1ull << 56), &c);            /* an NVSP answer nobody waits for */
	kick();
	struct netvsc_stats st = stats(n);
	assert_int_equal(st.bad_completions, 5);
	assert_int_equal(st.tx_completions, before);

	/* A completion given twice counts once. */
	H.hold_completions = true;
	uint8_t f[60] = {0};
	assert_int_equal(netvsc_send(n, f, sizeof(f)), 0);
	assert_int_equal(H.nheld, 1);
	put_comp(H.held[0], &c);
	put_comp(H.held[0], &c);
	kick();
	st = stats(n);
	assert_int_equal(st.tx_completions, before + 1);
	assert_int_equal(st.bad_completions, 6);
	assert_int_equal(st.tx_in_flight, 0);
	netvsc_driver_free(d);
}

static void sends_wait_for_sections(void **state)
{
	(void)state;
	host_defaults();
	struct netvsc_driver *d;
	struct netvsc *n = up(&d, 0);
	H.hold_completions = true;
	uint8_t f[60] = {0};
	uint32_t sent = 0;
	while (netvsc_send(n, f, sizeof(f)) == 0)
		sent++;
	struct netvsc_stats st = stats(n);
	assert_int_equal(sent, st.send_sections);
	assert_int_equal(st.tx_in_flight, sent);
	assert_int_equal(netvsc_send(n, f, sizeof(f)), -EAGAIN);
	struct nvsp_message c = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE};
	for (uint32_t i = 0; i < H.nheld; i++)
		put_comp(H.held[i], &c);
	H.nheld = 0;
	kick();
	assert_int_equal(stats(n).tx_in_flight, 0);
	assert_int_equal(netvsc_send(n, f, sizeof(f)), 0);
	netvsc_driver_free(d);
}

static void jumbo_frames_go_gpa_direct(void **state)
{
	(void)state;
	host_defaults();
	H.rsec_size = 9216;
	H.rsec_count = 8;
	struct netvsc_driver *d;
	struct netvsc *n = up(&d, 9000);
	static uint8_t f[9014];
	for (uint32_t i = 0; i < sizeof(f); i++)
		f[i] = (uint8_t)(i * 13);
	assert_int_equal(netvsc_send(n, f, sizeof(f)), 0);
	assert_int_equal(H.gpa_direct_frames, 1);
	assert_int_equal(H.frame_len, sizeof(f));
	assert_memory_equal(H.frame, f, sizeof(f));
	assert_int_equal(stats(n).tx_in_flight, 0);
	netvsc_driver_free(d);
}

static void small_frames_share_a_section(void **state)
{
	(void)state;
	host_defaults();
	struct netvsc_driver *d;
	struct netvsc *n = up(&d, 0);
	uint8_t f[1514];
	for (uint32_t i = 0; i < sizeof(f); i++)
		f[i] = (uint8_t)i;
	/* Five with "more": one send of five. */
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(netvsc_send_flags(n, f, 61 + i, NETVSC_SEND_MORE), 0);
	assert_int_equal(H.sends, 0);
	assert_int_equal(netvsc_send(n, f, 65), 0);
	assert_int_equal(H.sends, 1);
	assert_int_equal(H.frames, 5);
	assert_int_equal(H.frame_len, 65);
	/* The host's limit of 8 per message, then the rest by netvsc_flush. */
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(netvsc_send_flags(n, f, 60, NETVSC_SEND_MORE), 0);
	assert_int_equal(H.sends, 2);
	assert_int_equal(H.frames, 13);
	assert_int_equal(netvsc_flush(n), 0);
	assert_int_equal(H.sends, 3);
	assert_int_equal(H.frames, 15);
	/* 1514-byte frames: four fill a 6144-byte section. */
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(netvsc_send_flags(n, f, sizeof(f), NETVSC_SEND_MORE), 0);
	assert_int_equal(H.sends, 4);
	assert_int_equal(netvsc_flush(n), 0);
	assert_int_equal(H.sends, 5);
	assert_int_equal(H.frames, 20);
	assert_memory_equal(H.frame, f, sizeof(f));
	struct netvsc_stats st = stats(n);
	assert_int_equal(st.tx_sends, 5);
	assert_int_equal(st.tx_in_flight, 0);
	netvsc_driver_free(d);

	/* A host that takes one packet per message gets one per send. */
	host_defaults();
	H.max_pkts = 1;
	n = up(&d, 0);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(netvsc_send_flags(n, f, 60, NETVSC_SEND_MORE), 0);
	assert_int_equal(H.sends, 3);
	netvsc_driver_free(d);
}

static void link_indications_reach_the_callback(void **state)
{
	(void)state;
	host_defaults();
	struct netvsc_driver *d;
	struct netvsc *n = up(&d, 0);
	uint8_t msg[20];
	const uint32_t statuses[] = {RNDIS_STATUS_MEDIA_DISCONNECT, RNDIS_STATUS_MEDIA_DISCONNECT,
				     RNDIS_STATUS_MEDIA_CONNECT, RNDIS_STATUS_NETWORK_CHANGE};
	for (uint32_t i = 0; i < 4; i++) {
		struct rndis_msg_header h = {RNDIS_MSG_INDICATE, sizeof(msg)};
		struct rndis_indicate_status s = {.status = statuses[i]};
		memcpy(msg, &h, 8);
		memcpy(msg + 8, &s, sizeof(s));
		struct vmbus_xfer_page_range r = put_rndis(msg, sizeof(msg));
		put_xfer(0x500 + i, NVSP_RECV_BUFFER_ID, NVSP_MSG1_TYPE_SEND_RNDIS_PKT,
			 NVSP_RMC_CONTROL, &r, 1);
	}
	kick();
	/* A repeated state is no change. */
	assert_int_equal(nlink, 2);
	assert_false(link_events[0]);
	assert_true(link_events[1]);
	assert_true(netvsc_link_up(n));
	assert_int_equal(stats(n).link_changes, 2);
	netvsc_driver_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(brings_up_as_linux),
		cmocka_unit_test(falls_back_one_version_at_a_time),
		cmocka_unit_test(a_host_refusing_every_version_is_left_alone),
		cmocka_unit_test(receive_sections_that_do_not_fit_are_refused),
		cmocka_unit_test(bad_ranges_are_counted_and_completed),
		cmocka_unit_test(rndis_lengths_that_lie_are_refused),
		cmocka_unit_test(bad_packets_are_counted),
		cmocka_unit_test(an_oversized_packet_stops_the_channel_once),
		cmocka_unit_test(unknown_completions_are_counted),
		cmocka_unit_test(sends_wait_for_sections),
		cmocka_unit_test(jumbo_frames_go_gpa_direct),
		cmocka_unit_test(small_frames_share_a_section),
		cmocka_unit_test(link_indications_reach_the_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
