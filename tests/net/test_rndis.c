/* SPDX-License-Identifier: MIT */
/*
 * The RNDIS device alone: the control messages as Linux 6.1 rndis_filter.c
 * sends them, data packets with the per-packet info netvsc_drv.c adds, and
 * messages whose lengths lie.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rndis.h"
#include "rss_param.h"

struct sink {
	uint8_t resp[16][RNDIS_RESPONSE_MAX];
	uint32_t resp_len[16];
	uint32_t n_resp;
	uint8_t frame[70000];
	uint32_t frame_len;
	const uint8_t *frame_at; /* where the device said the frame was */
	struct rndis_frame_info info;
	uint32_t n_frames;
	uint32_t n_bad_logs;
};

static void on_respond(void *ctx, const void *msg, uint32_t len)
{
	struct sink *s = ctx;
	assert_true(s->n_resp < 16);
	assert_true(len <= RNDIS_RESPONSE_MAX);
	memcpy(s->resp[s->n_resp], msg, len);
	s->resp_len[s->n_resp++] = len;
}

static void on_frame(void *ctx, const uint8_t *data, uint32_t len,
		     const struct rndis_frame_info *info)
{
	struct sink *s = ctx;
	assert_true(len <= sizeof(s->frame));
	memcpy(s->frame, data, len);
	s->frame_len = len;
	s->frame_at = data;
	s->info = *info;
	s->n_frames++;
}

static void on_bad(void *ctx, const char *what)
{
	(void)what;
	((struct sink *)ctx)->n_bad_logs++;
}

static const struct rndis_dev_ops ops = {on_respond, on_frame, on_bad};

static const uint8_t MAC[6] = {0x00, 0x15, 0x5d, 0x01, 0x02, 0x03};

static void setup(struct rndis_dev *d, struct sink *s, uint32_t queues)
{
	memset(s, 0, sizeof(*s));
	struct rndis_dev_config cfg = {.mtu = 1500, .rss_queues = queues};
	memcpy(cfg.mac, MAC, 6);
	rndis_dev_init(d, &cfg, &ops, s);
}

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

/* A message: header, then words, then extra bytes. */
static uint32_t msg(uint8_t *buf, uint32_t type, const uint32_t *words, uint32_t n,
		    const void *extra, uint32_t extra_len)
{
	wr(buf, 0, type);
	for (uint32_t i = 0; i < n; i++)
		wr(buf, 8 + 4 * i, words[i]);
	if (extra_len)
		memcpy(buf + 8 + 4 * n, extra, extra_len);
	uint32_t len = 8 + 4 * n + extra_len;
	wr(buf, 4, len);
	return len;
}

static void do_init(struct rndis_dev *d, struct sink *s)
{
	uint8_t b[64];
	uint32_t w[] = {7, 1, 0, 0x4000};
	assert_int_equal(rndis_dev_handle(d, b, msg(b, RNDIS_MSG_INIT, w, 4, NULL, 0)), 0);
	assert_int_equal(s->n_resp, 1);
	assert_int_equal(s->resp_len[0], 8 + sizeof(struct rndis_initialize_complete));
	assert_int_equal(rd(s->resp[0], 0), RNDIS_MSG_INIT_C);
	assert_int_equal(rd(s->resp[0], 8), 7);                    /* req_id */
	assert_int_equal(rd(s->resp[0], 12), RNDIS_STATUS_SUCCESS); /* status */
	assert_int_equal(rd(s->resp[0], 16), 1);                    /* major */
	assert_int_equal(rd(s->resp[0], 28), RNDIS_MEDIUM_802_3);
	assert_true(rd(s->resp[0], 32) >= 1);                       /* max_pkt_per_msg */
	assert_int_equal(rd(s->resp[0], 40), 3);                    /* align 1 << 3 */
	s->n_resp = 0;
}

/* A query as rndis_filter_query_device builds it; returns the info. */
static const uint8_t *do_query(struct rndis_dev *d, struct sink *s, uint32_t oid,
			       const void *in, uint32_t in_len, uint32_t *status,
			       uint32_t *info_len)
{
	uint8_t b[512];
	uint32_t w[] = {42, oid, in_len, in_len ? 20 : 20, 0};
	s->n_resp = 0;
	assert_int_equal(rndis_dev_handle(d, b, msg(b, RNDIS_MSG_QUERY, w, 5, in, in_len)), 0);
	assert_int_equal(s->n_resp, 1);
	const uint8_t *r = s->resp[0];
	assert_int_equal(rd(r, 0), RNDIS_MSG_QUERY_C);
	assert_int_equal(rd(r, 4), s->resp_len[0]);
	assert_int_equal(rd(r, 8), 42);
	*status = rd(r, 12);
	*info_len = rd(r, 16);
	if (*info_len) {
		/* Linux's checks of the answer (rndis_filter_query_device). */
		assert_true(rd(r, 20) >= 16);
		assert_true(8 + rd(r, 20) + *info_len <= s->resp_len[0]);
	}
	return r + 8 + rd(r, 20);
}

static uint32_t do_set(struct rndis_dev *d, struct sink *s, uint32_t oid, const void *in,
		       uint32_t in_len)
{
	uint8_t b[1024];
	uint32_t w[] = {43, oid, in_len, 20, 0};
	s->n_resp = 0;
	rndis_dev_handle(d, b, msg(b, RNDIS_MSG_SET, w, 5, in, in_len));
	assert_int_equal(s->n_resp, 1);
	assert_int_equal(rd(s->resp[0], 0), RNDIS_MSG_SET_C);
	assert_int_equal(rd(s->resp[0], 8), 43);
	return rd(s->resp[0], 12);
}

static void init_and_queries(void **state)
{
	(void)state;
	struct rndis_dev d;
	struct sink s;
	uint32_t st, len;
	setup(&d, &s, 4);
	do_init(&d, &s);

	const uint8_t *info = do_query(&d, &s, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE, NULL, 0, &st, &len);
	assert_int_equal(st, RNDIS_STATUS_SUCCESS);
	assert_int_equal(len, 4);
	assert_int_equal(rd(info, 0), 1500);
	info = do_query(&d, &s, RNDIS_OID_802_3_PERMANENT_ADDRESS, NULL, 0, &st, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(info, MAC, 6);
	info = do_query(&d, &s, RNDIS_OID_GEN_MEDIA_CONNECT_STATUS, NULL, 0, &st, &len);
	assert_int_equal(rd(info, 0), RNDIS_MEDIA_STATE_CONNECTED);
	info = do_query(&d, &s, RNDIS_OID_GEN_LINK_SPEED, NULL, 0, &st, &len);
	assert_int_equal(rd(info, 0), 100000000u); /* 10 Gbit/s in 100 bit/s */
	info = do_query(&d, &s, OID_GEN_RECEIVE_SCALE_CAPABILITIES, NULL, 0, &st, &len);
	assert_int_equal(len, sizeof(struct ndis_recv_scale_cap));
	struct ndis_recv_scale_cap cap;
	memcpy(&cap, info, sizeof(cap));
	assert_int_equal(cap.hdr.type, NDIS_OBJECT_TYPE_RSS_CAPABILITIES);
	assert_int_equal(cap.num_recv_que, 4);
	info = do_query(&d, &s, RNDIS_OID_GEN_SUPPORTED_LIST, NULL, 0, &st, &len);
	assert_true(len >= 4 * 10 && len % 4 == 0);
	/* Unknown OIDs are refused, not counted as bad. */
	do_query(&d, &s, RNDIS_OID_GEN_FRIENDLY_NAME, NULL, 0, &st, &len);
	assert_int_equal(st, RNDIS_STATUS_NOT_SUPPORTED);
	assert_int_equal(len, 0);
	assert_int_equal(d.stats.bad_messages, 0);
}

/* The revision and size Linux asks for per NVSP version come back, and
 * pass rndis_query_hwcaps' checks. */
static void offload_caps_by_revision(void **state)
{
	(void)state;
	struct rndis_dev d;
	struct sink s;
	setup(&d, &s, 1);
	do_init(&d, &s);
	const uint32_t sizes[] = {0, NDIS_OFFLOAD_SIZE_6_0, NDIS_OFFLOAD_SIZE_6_1, NDIS_OFFLOAD_SIZE};
	for (uint8_t rev = 1; rev <= 3; rev++) {
		struct ndis_offload req = {.header = {NDIS_OBJECT_TYPE_OFFLOAD, rev, (uint16_t)sizes[rev]}};
		uint32_t st, len;
		const uint8_t *info = do_query(&d, &s, OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, &req,
					       sizes[rev], &st, &len);
		assert_int_equal(st, RNDIS_STATUS_SUCCESS);
		assert_int_equal(len, sizes[rev]);
		struct ndis_offload caps;
		memcpy(&caps, info, len);
		assert_int_equal(caps.header.type, NDIS_OBJECT_TYPE_OFFLOAD);
		assert_int_equal(caps.header.revision, rev);
		assert_true(caps.header.size <= sizeof(caps) && caps.header.size >= NDIS_OFFLOAD_SIZE_6_0);
	}
	struct ndis_offload_params p = {.header = {NDIS_OBJECT_TYPE_DEFAULT, 3, sizeof(p)},
					.tcp_ip_v4_csum = NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED};
	assert_int_equal(do_set(&d, &s, OID_TCP_OFFLOAD_PARAMETERS, &p, sizeof(p)),
			 RNDIS_STATUS_SUCCESS);
	assert_int_equal(d.offload.tcp_ip_v4_csum, NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED);
	assert_int_not_equal(do_set(&d, &s, OID_TCP_OFFLOAD_PARAMETERS, &p, 8), RNDIS_STATUS_SUCCESS);
}

static void sets_filter_mac_rss(void **state)
{
	(void)state;
	struct rndis_dev d;
	struct sink s;
	uint32_t st, len;
	setup(&d, &s, 4);
	do_init(&d, &s);
	uint32_t filter = NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_BROADCAST;
	assert_int_equal(do_set(&d, &s, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, &filter, 4),
			 RNDIS_STATUS_SUCCESS);
	const uint8_t *info = do_query(&d, &s, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, NULL, 0, &st, &len);
	assert_int_equal(rd(info, 0), filter);

	/* The MAC as rndis_filter_set_device_mac sets it: UTF-16 name and hex. */
	uint8_t cp[20 + 28 + 24] = {0};
	struct rndis_config_parameter_info *pi = (void *)cp;
	pi->parameter_name_offset = 20;
	pi->parameter_name_length = 28;
	pi->parameter_type = RNDIS_CONFIG_PARAM_TYPE_STRING;
	pi->parameter_value_offset = 48;
	pi->parameter_value_length = 24;
	const char *name = "NetworkAddress", *val = "02aabbccddee";
	for (int i = 0; i < 14; i++)
		cp[20 + 2 * i] = (uint8_t)name[i];
	for (int i = 0; i < 12; i++)
		cp[48 + 2 * i] = (uint8_t)val[i];
	assert_int_equal(do_set(&d, &s, RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER, cp, sizeof(cp)),
			 RNDIS_STATUS_SUCCESS);
	info = do_query(&d, &s, RNDIS_OID_802_3_CURRENT_ADDRESS, NULL, 0, &st, &len);
	const uint8_t want[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};
	assert_memory_equal(info, want, 6);
	info = do_query(&d, &s, RNDIS_OID_802_3_PERMANENT_ADDRESS, NULL, 0, &st, &len);
	assert_memory_equal(info, MAC, 6);
	/* A value offset past the buffer is refused. */
	pi->parameter_value_offset = 60;
	assert_int_equal(do_set(&d, &s, RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER, cp, sizeof(cp)),
			 RNDIS_STATUS_INVALID_DATA);

	uint8_t rp[TEST_RSS_PARAM_LEN];
	struct ndis_recv_scale_param *p = (void *)rp;
	test_rss_param(rp, 0, 0, 4);
	assert_int_equal(do_set(&d, &s, OID_GEN_RECEIVE_SCALE_PARAMETERS, rp, sizeof(rp)),
			 RNDIS_STATUS_SUCCESS);
	assert_int_equal(d.rss_table_len, 128);
	assert_int_equal(d.rss_table[5], 1);
	/* A queue the device does not have, or a key past the buffer: refused. */
	wr(rp, sizeof(*p), 2);
	wr(rp, sizeof(*p) + 4 * 100, 9);
	assert_int_equal(do_set(&d, &s, OID_GEN_RECEIVE_SCALE_PARAMETERS, rp, sizeof(rp)),
			 RNDIS_STATUS_INVALID_DATA);
	assert_int_equal(d.rss_table[0], 0); /* a refused set changes nothing */
	wr(rp, sizeof(*p) + 4 * 100, 0);
	wr(rp, sizeof(*p), 0);
	p->hashkey_offset = sizeof(rp) - 20;
	assert_int_equal(do_set(&d, &s, OID_GEN_RECEIVE_SCALE_PARAMETERS, rp, sizeof(rp)),
			 RNDIS_STATUS_INVALID_DATA);
}

static void halt_reset_keepalive_link(void **state)
{
	(void)state;
	struct rndis_dev d;
	struct sink s;
	uint8_t b[64];
	setup(&d, &s, 1);
	/* Before INITIALIZE: answered with a failure, counted. */
	uint32_t q[] = {5, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE, 0, 20, 0};
	assert_int_equal(rndis_dev_handle(&d, b, msg(b, RNDIS_MSG_QUERY, q, 5, NULL, 0)), -EBADMSG);
	assert_int_equal(rd(s.resp[0], 12), RNDIS_STATUS_FAILURE);
	assert_int_equal(d.stats.bad_messages, 1);
	s.n_resp = 0;
	/* Link changes before INITIALIZE are not indicated. */
	rndis_dev_set_link(&d, false);
	assert_int_equal(s.n_resp, 0);
	do_init(&d, &s);
	uint32_t st, len;
	const uint8_t *info = do_query(&d, &s, RNDIS_OID_GEN_MEDIA_CONNECT_STATUS, NULL, 0, &st, &len);
	assert_int_equal(rd(info, 0), RNDIS_MEDIA_STATE_DISCONNECTED);
	s.n_resp = 0;
	rndis_dev_set_link(&d, true);
	assert_int_equal(s.n_resp, 1);
	assert_int_equal(rd(s.resp[0], 0), RNDIS_MSG_INDICATE);
	assert_int_equal(rd(s.resp[0], 8), RNDIS_STATUS_MEDIA_CONNECT);
	rndis_dev_set_link(&d, true); /* no change, no indication */
	rndis_dev_set_link(&d, false);
	assert_int_equal(s.n_resp, 2);
	assert_int_equal(rd(s.resp[1], 8), RNDIS_STATUS_MEDIA_DISCONNECT);

	s.n_resp = 0;
	uint32_t k[] = {77};
	assert_int_equal(rndis_dev_handle(&d, b, msg(b, RNDIS_MSG_KEEPALIVE, k, 1, NULL, 0)), 0);
	assert_int_equal(rd(s.resp[0], 0), RNDIS_MSG_KEEPALIVE_C);
	assert_int_equal(rd(s.resp[0], 8), 77);
	assert_int_equal(rd(s.resp[0], 12), RNDIS_STATUS_SUCCESS);
	uint32_t r[] = {0};
	assert_int_equal(rndis_dev_handle(&d, b, msg(b, RNDIS_MSG_RESET, r, 1, NULL, 0)), 0);
	assert_int_equal(rd(s.resp[1], 0), RNDIS_MSG_RESET_C);
	assert_int_equal(rd(s.resp[1], 8), RNDIS_STATUS_SUCCESS);
	uint32_t h[] = {9};
	assert_int_equal(rndis_dev_handle(&d, b, msg(b, RNDIS_MSG_HALT, h, 1, NULL, 0)), 0);
	assert_int_equal(s.n_resp, 2); /* HALT has no completion */
	assert_int_equal(d.state, RNDIS_DEV_UNINITIALIZED);
}

/* A data packet as netvsc_xmit builds it, with PPIs in Linux's order. */
static uint32_t data_packet(uint8_t *b, const uint8_t *frame, uint32_t len, bool ppis)
{
	uint32_t ppi_len = ppis ? 4 * 16 : 0;
	struct rndis_packet p = {.data_offset = 36 + ppi_len, .data_len = len,
				 .per_pkt_info_offset = 36, .per_pkt_info_len = ppi_len};
	wr(b, 0, RNDIS_MSG_PACKET);
	wr(b, 4, 8 + 36 + ppi_len + len);
	memcpy(b + 8, &p, sizeof(p));
	const uint32_t types[] = {NBL_HASH_VALUE, IEEE_8021Q_INFO, TCP_LARGESEND_PKTINFO,
				  TCPIP_CHKSUM_PKTINFO};
	const uint32_t vals[] = {0x12345678, NDIS_VLAN_MAKE(3, 100), 0,
				 NDIS_CSUM_TX_IS_IPV4 | NDIS_CSUM_TX_TCP | (34u << 16)};
	for (uint32_t i = 0; ppis && i < 4; i++) {
		uint32_t o = 8 + 36 + 16 * i;
		wr(b, o, 16);
		wr(b, o + 4, types[i]);
		wr(b, o + 8, 12);
		wr(b, o + 12, vals[i]);
	}
	memcpy(b + 8 + 36 + ppi_len, frame, len);
	return 8 + 36 + ppi_len + len;
}

static void data_packets(void **state)
{
	(void)state;
	struct rndis_dev d;
	struct sink s;
	static uint8_t b[4 * 2048], frame[1514];
	setup(&d, &s, 1);
	for (uint32_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7 + 1);
	/* Not initialized: dropped, not bad. */
	assert_int_equal(rndis_dev_handle(&d, b, data_packet(b, frame, 60, false)), 0);
	assert_int_equal(d.stats.dropped, 1);
	assert_int_equal(s.n_frames, 0);
	do_init(&d, &s);
	uint32_t len = data_packet(b, frame, 1514, true);
	assert_int_equal(rndis_dev_handle(&d, b, len), 0);
	assert_int_equal(s.n_frames, 1);
	assert_int_equal(s.frame_len, 1514);
	assert_memory_equal(s.frame, frame, 1514);
	assert_true(s.info.has_hash && s.info.has_vlan && s.info.has_lso && s.info.has_csum);
	assert_int_equal(s.info.hash, 0x12345678);
	assert_int_equal(NDIS_VLAN_ID(s.info.vlan), 100);
	assert_int_equal(NDIS_CSUM_TX_TCP_HDR_OFFSET(s.info.csum), 34);

	/* Batched as Linux does: each message padded to 8 in its msg_len. */
	uint32_t off = 0;
	for (uint32_t n = 60; n < 64; n++) {
		uint32_t l = data_packet(b + off, frame, n, false);
		uint32_t padded = (l + 7) & ~7u;
		wr(b + off, 4, padded);
		off += padded;
	}
	assert_int_equal(rndis_dev_handle(&d, b, off), 0);
	assert_int_equal(s.n_frames, 5);
	assert_int_equal(s.frame_len, 63);
	assert_int_equal(d.stats.bad_packets, 0);
}

/* Private bytes, or shared ones with an exact-size scratch buffer. */
static int handle(struct rndis_dev *d, const uint8_t *b, uint32_t len, bool shared)
{
	if (!shared)
		return rndis_dev_handle(d, b, len);
	uint8_t *scratch = test_malloc(len);
	int err = rndis_dev_handle_shared(d, b, len, scratch, len);
	test_free(scratch);
	return err;
}

/* Each kind of lie: counted, no frame, nothing read past the message
 * (ASan watches; the buffers are exact-size copies), read privately or in
 * place. */
static void lying_lengths(void **state)
{
	(void)state;
	struct rndis_dev d;
	struct sink s;
	static uint8_t good[2048], frame[100];
	setup(&d, &s, 1);
	do_init(&d, &s);
	uint32_t len = data_packet(good, frame, sizeof(frame), true);
	struct {
		uint32_t off, val;
	} lies[] = {
		{4, 0xffffffff},           /* msg_len past the buffer */
		{4, 4},                    /* msg_len under the header */
		{8, 0},                    /* data_offset inside the header */
		{8, 0xfffffff0},           /* data_offset past the message */
		{12, 0xffffffff},          /* data_len past the message */
		{12, 0},                   /* empty frame */
		{8 + 20, 8},               /* ppi offset inside the header */
		{8 + 24, 0x7fffffff},      /* ppi len past the message */
		{8 + 36, 0xffff},          /* a ppi's size past the area */
		{8 + 36, 4},               /* a ppi smaller than its header */
		{8 + 36 + 8, 100},         /* a ppi's data offset past its size */
		{8 + 36 + 8, 16},          /* a known ppi with no room for its value */
	};
	for (uint32_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		uint8_t *b = test_malloc(len);
		memcpy(b, good, len);
		wr(b, lies[i].off, lies[i].val);
		for (int shared = 0; shared < 2; shared++) {
			uint64_t before = d.stats.bad_packets + d.stats.bad_messages;
			assert_int_equal(handle(&d, b, len, shared), -EBADMSG);
			assert_int_equal(d.stats.bad_packets + d.stats.bad_messages, before + 1);
		}
		test_free(b);
	}
	assert_int_equal(s.n_frames, 0);
	/* Truncated buffers of every length. */
	for (uint32_t l = 1; l < len; l++) {
		uint8_t *b = test_malloc(l);
		memcpy(b, good, l);
		assert_int_equal(handle(&d, b, l, false), -EBADMSG);
		assert_int_equal(handle(&d, b, l, true), -EBADMSG);
		test_free(b);
	}
	assert_int_equal(s.n_frames, 0);
	/* A query whose info lies. */
	uint8_t q[64];
	uint32_t w[] = {1, RNDIS_OID_GEN_LINK_SPEED, 100, 20, 0};
	s.n_resp = 0;
	assert_int_equal(rndis_dev_handle(&d, q, msg(q, RNDIS_MSG_QUERY, w, 5, NULL, 0)), -EBADMSG);
	assert_int_equal(rd(s.resp[0], 12), RNDIS_STATUS_INVALID_DATA);
	/* Each kind is logged once. */
	assert_true(s.n_bad_logs <= 6);
	/* Still works. */
	assert_int_equal(rndis_dev_handle(&d, good, len), 0);
	assert_int_equal(s.n_frames, 1);
}

/* Bytes the guest can still write (a send section read in place): frames
 * are handed on by reference, control messages and per-packet info go
 * through the scratch buffer, and what does not fit it is refused. */
static void shared_buffers(void **state)
{
	(void)state;
	struct rndis_dev d;
	struct sink s;
	static uint8_t b[4096], frame[1514], scratch[256];
	setup(&d, &s, 1);
	for (uint32_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 5 + 3);
	uint32_t w[] = {7, 1, 0, 0x4000};
	uint32_t len = msg(b, RNDIS_MSG_INIT, w, 4, NULL, 0);
	assert_int_equal(rndis_dev_handle_shared(&d, b, len, scratch, sizeof(scratch)), 0);
	assert_int_equal(s.n_resp, 1);
	assert_int_equal(rd(s.resp[0], 0), RNDIS_MSG_INIT_C);
	assert_int_equal(d.state, RNDIS_DEV_INITIALIZED);

	len = data_packet(b, frame, 1514, true);
	assert_int_equal(rndis_dev_handle_shared(&d, b, len, scratch, sizeof(scratch)), 0);
	assert_int_equal(s.n_frames, 1);
	assert_ptr_equal(s.frame_at, b + 8 + 36 + 64); /* by reference */
	assert_memory_equal(s.frame, frame, 1514);
	assert_true(s.info.has_hash && s.info.has_vlan && s.info.has_lso && s.info.has_csum);
	assert_int_equal(s.info.hash, 0x12345678);

	/* Per-packet info longer than the scratch buffer: refused. */
	assert_int_equal(rndis_dev_handle_shared(&d, b, len, scratch, 63), -EBADMSG);
	assert_int_equal(d.stats.bad_packets, 1);
	/* A control message longer than it: refused, not answered. */
	s.n_resp = 0;
	uint32_t q[] = {2, RNDIS_OID_GEN_LINK_SPEED, 0, 0, 0};
	len = msg(b, RNDIS_MSG_QUERY, q, 5, NULL, 0);
	assert_int_equal(rndis_dev_handle_shared(&d, b, len, scratch, len - 8 - 1), -EBADMSG);
	assert_int_equal(s.n_resp, 0);
	assert_int_equal(d.stats.bad_messages, 1);
	assert_int_equal(rndis_dev_handle_shared(&d, b, len, scratch, len - 8), 0);
	assert_int_equal(s.n_resp, 1);
	assert_int_equal(s.n_frames, 1);
}

static void filter_and_receive_header(void **state)
{
	(void)state;
	struct rndis_dev d;
	struct sink s;
	setup(&d, &s, 1);
	uint8_t f[64] = {0};
	memcpy(f, MAC, 6);
	assert_false(rndis_dev_accepts(&d, f, 60)); /* no filter yet */
	d.packet_filter = NDIS_PACKET_TYPE_DIRECTED;
	assert_true(rndis_dev_accepts(&d, f, 60));
	assert_false(rndis_dev_accepts(&d, f, 10));
	memset(f, 0xff, 6);
	assert_false(rndis_dev_accepts(&d, f, 60));
	d.packet_filter |= NDIS_PACKET_TYPE_BROADCAST;
	assert_true(rndis_dev_accepts(&d, f, 60));
	f[0] = 0x01;
	f[5] = 0;
	assert_false(rndis_dev_accepts(&d, f, 60));
	d.packet_filter |= NDIS_PACKET_TYPE_PROMISCUOUS;
	assert_true(rndis_dev_accepts(&d, f, 60));

	/* What the host builds parses as Linux's receive path would. */
	do_init(&d, &s);
	uint8_t b[RNDIS_RX_HEADER_MAX + 100];
	uint32_t h = rndis_dev_build_packet(b, 100, NDIS_CSUM_RX_TCP_SUCCEEDED, NDIS_VLAN_MAKE(0, 7),
					    NULL);
	assert_true(h <= RNDIS_RX_HEADER_MAX);
	for (int i = 0; i < 100; i++)
		b[h + i] = (uint8_t)i;
	assert_int_equal(rd(b, 4), h + 100);
	assert_int_equal(rndis_dev_handle(&d, b, h + 100), 0);
	assert_int_equal(s.frame_len, 100);
	assert_int_equal(s.frame[99], 99);
	assert_true(s.info.has_csum && s.info.has_vlan);
	assert_int_equal(NDIS_VLAN_ID(s.info.vlan), 7);
	h = rndis_dev_build_packet(b, 60, 0, 0, NULL);
	assert_int_equal(h, 8 + 36);
	const uint32_t hash = 0x51ccc178;
	h = rndis_dev_build_packet(b, 60, NDIS_CSUM_RX_TCP_SUCCEEDED, NDIS_VLAN_MAKE(0, 7), &hash);
	assert_int_equal(h, RNDIS_RX_HEADER_MAX);
	assert_int_equal(rndis_dev_handle(&d, b, h + 60), 0);
	assert_true(s.info.has_hash && s.info.has_csum && s.info.has_vlan);
	assert_int_equal(s.info.hash, hash);
}

/* A frame of Microsoft's RSS verification suite: IPv4 or IPv6, TCP, from
 * src:sport to dst:dport, behind an Ethernet header (and a VLAN tag). */
static uint32_t rss_frame(uint8_t *f, bool v6, bool vlan, const uint8_t *src,
			  const uint8_t *dst, uint16_t sport, uint16_t dport)
{
	memset(f, 0, 128);
	uint32_t o = 12;
	if (vlan) {
		f[o++] = 0x81;
		f[o++] = 0x00;
		o += 2;
	}
	f[o++] = v6 ? 0x86 : 0x08;
	f[o++] = v6 ? 0xdd : 0x00;
	uint32_t alen = v6 ? 16 : 4;
	if (v6) {
		f[o] = 0x60;
		f[o + 6] = 6; /* next header: TCP */
		memcpy(f + o + 8, src, alen);
		memcpy(f + o + 24, dst, alen);
		o += 40;
	} else {
		f[o] = 0x45;
		f[o + 9] = 6;
		memcpy(f + o + 12, src, alen);
		memcpy(f + o + 16, dst, alen);
		o += 20;
	}
	f[o] = (uint8_t)(sport >> 8), f[o + 1] = (uint8_t)sport;
	f[o + 2] = (uint8_t)(dport >> 8), f[o + 3] = (uint8_t)dport;
	return o + 20;
}

/* Sets RSS as rndis_filter_set_rss_param does, with the given hash types
 * and Microsoft's verification key; table entry i is queue i % queues. */
static void set_rss(struct rndis_dev *d, struct sink *s, uint32_t hashinfo, uint32_t queues)
{
	uint8_t rp[TEST_RSS_PARAM_LEN];
	test_rss_param(rp, hashinfo, 0, queues);
	assert_int_equal(do_set(d, s, OID_GEN_RECEIVE_SCALE_PARAMETERS, rp, sizeof(rp)),
			 RNDIS_STATUS_SUCCESS);
}

/* The receive hash against the published Toeplitz vectors ("Verifying the
 * RSS Hash Calculation"), for the header types the guest asked for. */
static void rss_hash_vectors(void **state)
{
	(void)state;
	struct rndis_dev d;
	struct sink s;
	uint8_t f[128];
	uint32_t h, len;
	setup(&d, &s, 4);
	do_init(&d, &s);
	const uint8_t src4[4] = {66, 9, 149, 187}, dst4[4] = {161, 142, 100, 80};
	const uint8_t src4b[4] = {199, 92, 111, 2}, dst4b[4] = {65, 69, 140, 83};
	const uint8_t src6[16] = {0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 7};
	const uint8_t dst6[16] = {0x3f, 0xfe, 0x25, 0x01, 0x02, 0x00, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 1};

	len = rss_frame(f, false, false, src4, dst4, 2794, 1766);
	assert_false(rndis_dev_rx_hash(&d, f, len, &h)); /* RSS not set up */

	const uint32_t all = NDIS_HASH_FUNC_TOEPLITZ | NDIS_HASH_IPV4 | NDIS_HASH_TCP_IPV4 |
			     NDIS_HASH_IPV6 | NDIS_HASH_TCP_IPV6; /* what Linux 6.1 asks */
	set_rss(&d, &s, all, 4);
	assert_true(rndis_dev_rx_hash(&d, f, len, &h));
	assert_int_equal(h, 0x51ccc178);
	len = rss_frame(f, false, true, src4b, dst4b, 14230, 4739); /* behind a VLAN tag */
	assert_true(rndis_dev_rx_hash(&d, f, len, &h));
	assert_int_equal(h, 0xc626b0ea);
	len = rss_frame(f, true, false, src6, dst6, 2794, 1766);
	assert_true(rndis_dev_rx_hash(&d, f, len, &h));
	assert_int_equal(h, 0x40207d3d);
	/* A fragment: addresses only. */
	len = rss_frame(f, false, false, src4, dst4, 2794, 1766);
	f[14 + 6] = 0x20; /* more fragments */
	assert_true(rndis_dev_rx_hash(&d, f, len, &h));
	assert_int_equal(h, 0x323e8fc2);
	/* A TCP header cut off after its ports: still the TCP hash. */
	f[14 + 6] = 0;
	assert_true(rndis_dev_rx_hash(&d, f, 14 + 20 + 4, &h));
	assert_int_equal(h, 0x51ccc178);
	/* Not IP, or an IP header cut short: no hash. */
	assert_false(rndis_dev_rx_hash(&d, f, 14 + 19, &h));
	f[12] = 0x88, f[13] = 0xb5;
	assert_false(rndis_dev_rx_hash(&d, f, len, &h));

	/* Addresses only asked for: the address hashes. */
	set_rss(&d, &s, NDIS_HASH_FUNC_TOEPLITZ | NDIS_HASH_IPV4 | NDIS_HASH_IPV6, 4);
	len = rss_frame(f, false, false, src4b, dst4b, 14230, 4739);
	assert_true(rndis_dev_rx_hash(&d, f, len, &h));
	assert_int_equal(h, 0xd718262a);
	len = rss_frame(f, true, false, src6, dst6, 2794, 1766);
	assert_true(rndis_dev_rx_hash(&d, f, len, &h));
	assert_int_equal(h, 0x2cc18cd5);
	/* TCP over IPv4 only: IPv6 and cut-short TCP get none. */
	set_rss(&d, &s, NDIS_HASH_FUNC_TOEPLITZ | NDIS_HASH_TCP_IPV4, 4);
	assert_false(rndis_dev_rx_hash(&d, f, len, &h));
	len = rss_frame(f, false, false, src4, dst4, 2794, 1766);
	assert_false(rndis_dev_rx_hash(&d, f, 14 + 20 + 2, &h));
	assert_true(rndis_dev_rx_hash(&d, f, len, &h));
	assert_int_equal(h, 0x51ccc178);
	/* Turned off. */
	uint8_t off[sizeof(struct ndis_recv_scale_param)] = {0};
	struct ndis_recv_scale_param *p = (void *)off;
	p->hdr.type = NDIS_OBJECT_TYPE_RSS_PARAMETERS;
	p->flag = NDIS_RSS_PARAM_FLAG_DISABLE_RSS;
	assert_int_equal(do_set(&d, &s, OID_GEN_RECEIVE_SCALE_PARAMETERS, off, sizeof(off)),
			 RNDIS_STATUS_SUCCESS);
	assert_false(rndis_dev_rx_hash(&d, f, len, &h));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_and_queries),
		cmocka_unit_test(offload_caps_by_revision),
		cmocka_unit_test(sets_filter_mac_rss),
		cmocka_unit_test(halt_reset_keepalive_link),
		cmocka_unit_test(data_packets),
		cmocka_unit_test(lying_lengths),
		cmocka_unit_test(shared_buffers),
		cmocka_unit_test(filter_and_receive_header),
		cmocka_unit_test(rss_hash_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
