/* SPDX-License-Identifier: MIT */
/*
 * netvsp with a scripted Linux-like guest (netvsp_guest.h) over the VMBus
 * server fixture: NVSP negotiation at every version, buffers, frames of
 * every size both ways through the loopback backend, receive sections
 * recycled only on completion, sub-channels, link indications, and a
 * guest that lies — refused and counted, the host still serving.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netvsp_guest.h"
#include "netvsp_nic.h"
#include "ring_buffer.h"
#include "rss_param.h"

static const uint32_t versions[] = {
	NVSP_PROTOCOL_VERSION_1, NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_4,
	NVSP_PROTOCOL_VERSION_5, NVSP_PROTOCOL_VERSION_6, NVSP_PROTOCOL_VERSION_61,
};
#define NVERSIONS (sizeof(versions) / sizeof(versions[0]))

/* A frame to the guest's own MAC with a pattern that depends on len. */
static void make_frame(const struct ng *g, uint8_t *f, uint32_t len, uint32_t seed)
{
	memcpy(f, g->mac, 6);
	const uint8_t src[6] = {0x02, 0, 0, 0, 0, 1};
	memcpy(f + 6, src, 6);
	f[12] = 0x88;
	f[13] = 0xb5; /* local experimental ethertype */
	for (uint32_t i = 14; i < len; i++)
		f[i] = (uint8_t)(i * 31 + len + seed);
}

/* Frames in a transfer-page packet: one per range. */
static uint32_t xfer_ranges(const struct vmbus_packet *pkt)
{
	struct vmbus_xfer_pages_in x;
	assert_int_equal(vmbus_xfer_pages_parse(pkt, &x), 0);
	return x.range_count;
}

static struct netvsp_stats stats(struct ng *g)
{
	struct netvsp_stats s;
	netvsp_get_stats(g->nic, &s);
	return s;
}

static void assert_clean(struct ng *g)
{
	struct netvsp_stats s = stats(g);
	assert_int_equal(s.bad_messages, 0);
	assert_int_equal(s.bad_sections, 0);
	assert_int_equal(s.bad_ranges, 0);
	assert_int_equal(s.bad_completions, 0);
	assert_int_equal(s.bad_rndis, 0);
	assert_int_equal(s.broken_rings, 0);
}

/* Sends a frame and takes it back through the loopback, intact. */
#define MAX_TEST_FRAME 9014 /* jumbo_frames: MTU 9000 and the Ethernet header */

static void roundtrip(struct ng *g, uint32_t chan, uint32_t len, bool via_section)
{
	/* Buffers of the largest size: with malloc(len) gcc 12 -O3 warns of
	 * the vectorised pattern loop overrunning a [60, 282]-byte object. */
	assert_true(len <= MAX_TEST_FRAME);
	uint8_t *f = malloc(MAX_TEST_FRAME), *back = malloc(MAX_TEST_FRAME + 64);
	assert_non_null(f);
	assert_non_null(back);
	make_frame(g, f, len, chan);
	ng_send_frame(g, chan, f, len, via_section);
	uint8_t seen[64];
	assert_int_equal(netvsp_loopback_last(g->lb, seen, sizeof(seen)), len);
	assert_memory_equal(seen, f, len < 64 ? len : 64);
	uint32_t got = 0;
	/* The host picks the channel by flow: look on each open one. */
	for (uint32_t i = 0; i < NG_MAX_CHANS && !got; i++)
		if (g->ch[i].open)
			got = ng_recv_frame(g, i, back, len + 64);
	assert_int_equal(got, len);
	assert_memory_equal(back, f, len);
	free(f);
	free(back);
}

static void negotiates_every_version(void **state)
{
	(void)state;
	for (uint32_t v = 0; v < NVERSIONS; v++) {
		struct ng *g = ng_new(NULL, true);
		ng_up(g, versions[v]);
		struct netvsp_stats s = stats(g);
		assert_int_equal(s.version, versions[v]);
		assert_true(s.recv_sections > 100);
		assert_int_equal(s.send_sections, NG_SEND_PAGES * 4096 / NVSP_SEND_SECTION_SIZE);
		roundtrip(g, 0, 60, true);
		roundtrip(g, 0, 1514, false);
		assert_clean(g);
		ng_free(g);
	}
}

/* Linux offers one version at a time, newest first; an older host answers
 * each newer one with a failure until it meets one it speaks. */
static void older_host_falls_back(void **state)
{
	(void)state;
	struct netvsp_config cfg = {.max_version = NVSP_PROTOCOL_VERSION_4};
	struct ng *g = ng_new(&cfg, true);
	assert_int_not_equal(ng_init(g, NVSP_PROTOCOL_VERSION_61), NVSP_STAT_SUCCESS);
	assert_int_not_equal(ng_init(g, NVSP_PROTOCOL_VERSION_6), NVSP_STAT_SUCCESS);
	assert_int_not_equal(ng_init(g, NVSP_PROTOCOL_VERSION_5), NVSP_STAT_SUCCESS);
	assert_int_equal(ng_init(g, NVSP_PROTOCOL_VERSION_4), NVSP_STAT_SUCCESS);
	ng_buffers(g);
	ng_rndis_up(g);
	roundtrip(g, 0, 100, true);
	/* Sub-channels need NVSP 5: refused with a failure. */
	struct nvsp_message m = {.msg_type = NVSP_MSG5_TYPE_SUBCHANNEL};
	m.subchn_req.op = NVSP_SUBCHANNEL_ALLOCATE;
	m.subchn_req.num_subchannels = 2;
	ng_send_nvsp(g, 0, 99, &m, sizeof(m), true);
	uint8_t buf[256];
	struct vmbus_packet pkt;
	assert_true(ng_recv(g, 0, buf, sizeof(buf), &pkt));
	assert_int_equal(pkt.type, VMBUS_PKT_COMP);
	assert_int_equal(pkt.trans_id, 99);
	/* Answered as netvsc_send_completion expects: its own type, a failure. */
	memcpy(&m, pkt.data, sizeof(m));
	assert_int_equal(m.msg_type, NVSP_MSG5_TYPE_SUBCHANNEL);
	assert_int_equal(m.subchn_comp.status, NVSP_STAT_FAIL);
	assert_int_equal(stats(g).bad_messages, 1);
	assert_int_equal(stats(g).subchannels, 0);
	ng_free(g);
}

static void every_frame_size_both_ways(void **state)
{
	(void)state;
	struct ng *g = ng_new(NULL, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	for (uint32_t len = 60; len <= 1514; len++)
		roundtrip(g, 0, len, len % 2);
	struct netvsp_stats s = stats(g);
	assert_int_equal(s.tx_frames, 1514 - 60 + 1);
	assert_int_equal(s.rx_frames, 1514 - 60 + 1);
	assert_int_equal(s.recv_in_flight, 0);
	assert_clean(g);
	ng_free(g);
}

static void jumbo_frames(void **state)
{
	(void)state;
	struct netvsp_config cfg = {.mtu = 9000};
	struct ng *g = ng_new(&cfg, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	uint8_t resp[512];
	uint32_t q[] = {RNDIS_MSG_QUERY, 28, 9, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE, 0, 20, 0};
	ng_rndis(g, q, sizeof(q), false, resp, sizeof(resp));
	uint32_t mtu;
	memcpy(&mtu, resp + 8 + 16, 4);
	assert_int_equal(mtu, 9000);
	assert_true(g->recv_section_size >= 9014 + 44);
	for (uint32_t len = 9014 - 20; len <= 9014; len++)
		roundtrip(g, 0, len, false);
	/* Longer than MTU + header + tag: refused before the guest sees it. */
	uint8_t *big = calloc(1, 9100);
	memcpy(big, g->mac, 6);
	assert_int_equal(netvsp_receive(g->nic, big, 9019), -EMSGSIZE);
	free(big);
	assert_clean(g);
	ng_free(g);
}

/* The same traffic with the rings read on the NIC's device thread (what
 * hvkit run does): the fixture's signal waits for it (netvsp_flush). */
static void device_thread_both_ways(void **state)
{
	(void)state;
	struct netvsp_config cfg = {.queues = 4, .drain_thread = true};
	struct ng *g = ng_new(&cfg, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	assert_int_equal(ng_subchannels(g, 3), 3);
	uint32_t frames = 0, per_channel = 0;
	for (uint32_t len = 60; len <= 1514; len += 97)
		per_channel++;
	for (uint32_t i = 0; i < 4; i++)
		for (uint32_t len = 60; len <= 1514; len += 97, frames++)
			roundtrip(g, i, len, len % 2);
	struct netvsp_stats s = stats(g);
	assert_int_equal(s.tx_frames, frames);
	assert_int_equal(s.rx_frames, frames);
	uint64_t rx = 0;
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(s.chan_tx_frames[i], per_channel); /* sent on channel i */
		rx += s.chan_rx_frames[i];
	}
	assert_int_equal(rx, frames);
	assert_clean(g);
	ng_free(g);
}

/* One signal for more packets than a turn's budget: the thread comes back
 * for the rest on its own (the ring stays masked, so the guest would not
 * signal again). Stopping after one budget fails this. */
static void device_thread_comes_back_after_its_budget(void **state)
{
	(void)state;
	struct netvsp_config cfg = {.drain_thread = true};
	struct ng *g = ng_new(&cfg, false);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	enum { N = 3 * NETVSP_DRAIN_BUDGET + 5 };
	uint8_t f[60];
	uint64_t tids[N];
	bool signal;
	for (uint32_t k = 0; k < N; k++) {
		make_frame(g, f, sizeof(f), k);
		tids[k] = ng_post_frame(g, 0, f, sizeof(f), &signal);
	}
	vf_signal_relid(g->f, g->ch[0].c.relid);
	netvsp_flush(g->nic);
	assert_int_equal(stats(g).tx_frames, N);
	for (uint32_t k = 0; k < N; k++)
		ng_take_send_completion(g, 0, tids[k]);
	assert_clean(g);
	ng_free(g);
}

/* With a sink backend the host's frames fill the receive buffer; sections
 * come back only with their completions. */
static void sections_recycled_on_completion(void **state)
{
	(void)state;
	struct ng *g = ng_new(NULL, false);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	uint8_t f[60];
	make_frame(g, f, sizeof(f), 0);
	uint32_t n = 0;
	while (netvsp_receive(g->nic, f, sizeof(f)) == 0)
		n++;
	assert_int_equal(n, g->recv_sections);
	assert_int_equal(netvsp_receive(g->nic, f, sizeof(f)), -ENOBUFS);
	struct netvsp_stats s = stats(g);
	assert_int_equal(s.recv_in_flight, n);
	assert_true(s.rx_no_buffer >= 1);
	/* Complete one: exactly one more fits. */
	uint8_t back[64];
	assert_int_equal(ng_recv_frame(g, 0, back, sizeof(back)), 60);
	assert_int_equal(netvsp_receive(g->nic, f, sizeof(f)), 0);
	assert_int_equal(netvsp_receive(g->nic, f, sizeof(f)), -ENOBUFS);
	/* Drain everything: all completed, all sections back. */
	uint32_t got = 0;
	while (ng_recv_frame(g, 0, back, sizeof(back)))
		got++;
	assert_int_equal(got, n);
	assert_int_equal(stats(g).recv_in_flight, 0);
	/* Not to this guest's MAC: its packet filter refuses it. */
	f[0] = 0x02;
	assert_int_equal(netvsp_receive(g->nic, f, sizeof(f)), -EPERM);
	assert_clean(g);
	ng_free(g);
}

/* The frame inside a received RNDIS packet message (checked as Linux's
 * rndis_filter_receive_data does). */
static const uint8_t *rndis_frame(const uint8_t *msg, uint32_t count, uint32_t *len)
{
	uint32_t data_offset, data_len;
	memcpy(&data_offset, msg + 8, 4);
	memcpy(&data_len, msg + 12, 4);
	assert_true(count >= 16 && data_offset < count - 8 && data_len <= count - 8 - data_offset);
	*len = data_len;
	return msg + 8 + data_offset;
}

/* A burst goes as transfer-page packets of up to NETVSP_RX_BURST_MAX
 * ranges, one section each; one completion frees a whole packet, a stale
 * or forged one (naming another of its sections) is refused. */
static void burst_receive_many_ranges(void **state)
{
	(void)state;
	struct ng *g = ng_new(NULL, false);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	enum { N = NETVSP_RX_BURST_MAX + 8, LEN = 200 };
	static uint8_t f[N][LEN];
	const uint8_t *frames[N];
	uint32_t lens[N];
	int errs[N];
	for (uint32_t k = 0; k < N; k++) {
		make_frame(g, f[k], LEN, k);
		frames[k] = f[k];
		lens[k] = LEN;
	}
	f[5][0] = 0x02; /* not to this guest: filtered, the rest still go */
	assert_int_equal(netvsp_receive_burst(g->nic, frames, lens, N, errs, 0), N);
	for (uint32_t k = 0; k < N; k++)
		assert_int_equal(errs[k], k == 5 ? -EPERM : 0);
	assert_int_equal(stats(g).recv_in_flight, N - 1);

	/* First packet: frames 0..32 less 5, one section each. */
	uint8_t buf[8192];
	struct ng_xfer x;
	uint64_t tid[2];
	uint32_t secs[2][NETVSP_RX_BURST_MAX];
	uint32_t k = 0;
	for (uint32_t p = 0; p < 2; p++) {
		uint32_t want = p == 0 ? NETVSP_RX_BURST_MAX : N - 1 - NETVSP_RX_BURST_MAX;
		for (uint32_t r = 0; r < want; r++, k++) {
			if (k == 5)
				k++;
			assert_true(ng_take_xfer(g, 0, &x, buf, sizeof(buf)));
			assert_int_equal(x.ranges, want);
			assert_int_equal(x.range, r);
			if (r == 0)
				tid[p] = x.tid;
			assert_true(x.tid == tid[p]);
			secs[p][r] = x.off / g->recv_section_size;
			for (uint32_t q = 0; q < r; q++)
				assert_int_not_equal(secs[p][q], secs[p][r]);
			uint32_t len;
			const uint8_t *got = rndis_frame(buf, x.count, &len);
			assert_int_equal(len, LEN);
			assert_memory_equal(got, f[k], LEN);
		}
	}
	assert_false(ng_take_xfer(g, 0, &x, buf, sizeof(buf)));
	assert_clean(g);

	/* One completion frees the first packet's 32 sections. */
	ng_complete_xfer(g, 0, tid[0]);
	assert_int_equal(stats(g).recv_in_flight, N - 1 - NETVSP_RX_BURST_MAX);
	/* Stale: that packet again. Forged: the second packet's transaction
	 * moved to its second section. Both refused, nothing freed. */
	ng_complete_xfer(g, 0, tid[0]);
	ng_complete_xfer(g, 0, (tid[1] & ~0xffffffffull) | secs[1][1]);
	assert_int_equal(stats(g).recv_in_flight, N - 1 - NETVSP_RX_BURST_MAX);
	assert_int_equal(stats(g).bad_completions, 2);
	ng_complete_xfer(g, 0, tid[1]);
	assert_int_equal(stats(g).recv_in_flight, 0);
	assert_int_equal(stats(g).rx_frames, N - 1);

	/* More than the free sections: a prefix is taken, the rest wait for
	 * completions, nothing lost. */
	uint32_t total = g->recv_sections, sent = 0, got = 0;
	while (sent < total + 10) {
		uint32_t want = total + 10 - sent < N ? total + 10 - sent : N;
		uint32_t took = netvsp_receive_burst(g->nic, frames, lens, want, errs, 0);
		for (uint32_t q = 0; q < took; q++)
			sent += errs[q] == 0;
		if (took < want) {
			assert_int_equal(errs[took], -ENOBUFS);
			assert_int_equal(stats(g).recv_in_flight, total);
			uint8_t back[LEN];
			for (uint32_t q = 0; q < 40 && ng_recv_frame(g, 0, back, sizeof(back)); q++)
				got++;
		}
	}
	uint8_t back[LEN];
	while (ng_recv_frame(g, 0, back, sizeof(back)))
		got++;
	assert_int_equal(got, sent);
	assert_int_equal(stats(g).recv_in_flight, 0);
	assert_int_equal(stats(g).bad_completions, 2);
	ng_free(g);
}

/* NETVSP_RX_BURST_MAX times one frame, for netvsp_receive_burst. */
struct same_frames {
	const uint8_t *frames[NETVSP_RX_BURST_MAX];
	uint32_t lens[NETVSP_RX_BURST_MAX];
	int errs[NETVSP_RX_BURST_MAX];
};

static void same_frames(struct same_frames *b, const uint8_t *f, uint32_t len)
{
	for (uint32_t k = 0; k < NETVSP_RX_BURST_MAX; k++) {
		b->frames[k] = f;
		b->lens[k] = len;
	}
}

/* The first n of them to the guest: how many were taken. */
static uint32_t push(struct ng *g, struct same_frames *b, uint32_t n, uint32_t flags)
{
	return netvsp_receive_burst(g->nic, b->frames, b->lens, n, b->errs, flags);
}

/* The guest completes transfer-page packet tid (as ng_complete_xfer) but
 * only publishes: whether the ring says the host must be signalled. */
static bool complete_unsignalled(struct ng *g, uint64_t tid)
{
	uint32_t done[2] = {NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE, NVSP_STAT_SUCCESS};
	assert_int_equal(vmbus_ring_put_completion(&g->ch[0].c.w, tid, done, sizeof(done), NULL), 0);
	return vmbus_ring_publish(&g->ch[0].c.w);
}

/* A burst short of sections takes the guest's completions from the ring
 * itself, without waiting for the guest's signal; it stops at anything
 * else, which waits for the notify. */
static void burst_takes_unsignalled_completions(void **state)
{
	(void)state;
	struct ng *g = ng_new(NULL, false);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	enum { LEN = 100 };
	uint8_t f[LEN];
	make_frame(g, f, LEN, 0);
	struct same_frames b;
	same_frames(&b, f, LEN);
	while (push(g, &b, NETVSP_RX_BURST_MAX, 0) == NETVSP_RX_BURST_MAX)
		;
	assert_int_equal(stats(g).recv_in_flight, g->recv_sections);
	/* The guest completes the first packet but does not signal. */
	uint8_t buf[8192];
	struct ng_xfer x;
	assert_true(ng_take_xfer(g, 0, &x, buf, sizeof(buf)));
	complete_unsignalled(g, x.tid);
	assert_int_equal(push(g, &b, 1, 0), 1);
	assert_int_equal(b.errs[0], 0);
	assert_int_equal(stats(g).recv_in_flight, g->recv_sections - x.ranges + 1);
	/* An in-band message in front of a completion: left for the notify. */
	for (uint32_t r = 1; r < x.ranges; r++)
		assert_true(ng_take_xfer(g, 0, &x, buf, sizeof(buf)));
	while (push(g, &b, 1, 0) == 1)
		;
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_NDIS_VER};
	struct vmbus_ring_iov iov = {&m, sizeof(m)};
	assert_int_equal(vmbus_ring_put_inband(&g->ch[0].c.w, 77, 0, &iov, 1, NULL), 0);
	assert_true(ng_take_xfer(g, 0, &x, buf, sizeof(buf)));
	complete_unsignalled(g, x.tid);
	assert_int_equal(push(g, &b, 1, 0), 0);
	assert_int_equal(b.errs[0], -ENOBUFS);
	/* The signal brings both, and room. */
	vf_signal_relid(g->f, g->ch[0].c.relid);
	assert_int_equal(push(g, &b, 1, 0), 1);
	assert_clean(g);
	ng_free(g);
}

/* A source saying more frames follow (NETVSP_RX_MORE) reads the guest's
 * ring itself and keeps it masked: the guest's completions and frames
 * need no signal, the next call handles them. The call without the flag,
 * and one short of sections, end it: the ring is read once more and
 * unmasked, so the guest signals again. */
static void rx_streak_reads_the_ring_masked(void **state)
{
	(void)state;
	struct ng *g = ng_new(NULL, false);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	enum { LEN = 300 };
	uint8_t f[LEN], buf[8192];
	make_frame(g, f, LEN, 0);
	struct same_frames b;
	same_frames(&b, f, LEN);
	struct ng_xfer x;
	bool signal;

	assert_int_equal(push(g, &b, 1, NETVSP_RX_MORE), 1);
	assert_true(ng_take_xfer(g, 0, &x, buf, sizeof(buf)));
	assert_false(complete_unsignalled(g, x.tid));
	uint64_t tx = stats(g).tx_frames;
	uint64_t tid = ng_post_frame(g, 0, f, LEN, &signal);
	assert_false(signal);
	assert_int_equal(stats(g).recv_in_flight, 1);
	assert_int_equal(stats(g).tx_frames, tx);

	/* The next burst takes both before its frame. */
	assert_int_equal(push(g, &b, 1, NETVSP_RX_MORE), 1);
	assert_int_equal(stats(g).tx_frames, tx + 1);
	assert_int_equal(stats(g).recv_in_flight, 1);
	ng_take_send_completion(g, 0, tid);
	assert_true(ng_take_xfer(g, 0, &x, buf, sizeof(buf)));
	assert_false(complete_unsignalled(g, x.tid));

	/* The last burst: its end reads the completion and unmasks. */
	assert_int_equal(push(g, &b, 1, 0), 1);
	assert_int_equal(stats(g).recv_in_flight, 1);
	assert_true(ng_take_xfer(g, 0, &x, buf, sizeof(buf)));
	assert_true(complete_unsignalled(g, x.tid));
	vf_signal_relid(g->f, g->ch[0].c.relid);
	assert_int_equal(stats(g).recv_in_flight, 0);

	/* Out of sections: -ENOBUFS ends the streak as well. */
	while (push(g, &b, NETVSP_RX_BURST_MAX, NETVSP_RX_MORE) == NETVSP_RX_BURST_MAX)
		;
	assert_int_equal(stats(g).recv_in_flight, g->recv_sections);
	uint32_t ranges = 0;
	do
		assert_true(ng_take_xfer(g, 0, &x, buf, sizeof(buf)));
	while (++ranges < x.ranges);
	assert_true(complete_unsignalled(g, x.tid));
	vf_signal_relid(g->f, g->ch[0].c.relid);
	assert_int_equal(stats(g).recv_in_flight, g->recv_sections - x.ranges);
	assert_clean(g);
	ng_free(g);
}

static void subchannels_and_send_table(void **state)
{
	(void)state;
	struct netvsp_config cfg = {.queues = 4};
	struct ng *g = ng_new(&cfg, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	/* RSS capabilities say 4 queues; asking for 7 sub-channels gives 3. */
	uint8_t resp[512];
	uint32_t q[] = {RNDIS_MSG_QUERY, 28, 9, OID_GEN_RECEIVE_SCALE_CAPABILITIES, 0, 20, 0};
	ng_rndis(g, q, sizeof(q), false, resp, sizeof(resp));
	struct ndis_recv_scale_cap cap;
	memcpy(&cap, resp + 8 + 16, sizeof(cap));
	assert_int_equal(cap.num_recv_que, 4);
	assert_int_equal(ng_subchannels(g, 7), 3);
	for (uint32_t i = 0; i < NVSP_SEND_TABLE_SIZE; i++)
		assert_true(g->send_table[i] < 4);
	struct netvsp_stats s = stats(g);
	assert_int_equal(s.subchannels, 3);
	assert_int_equal(s.open_channels, 4);
	/* Frames go out on every channel and come back on one of them. */
	for (uint32_t i = 0; i < 4; i++)
		for (uint32_t len = 60; len < 300; len += 37)
			roundtrip(g, i, len, len % 2);
	assert_clean(g);
	ng_free(g);
}

static void link_indications(void **state)
{
	(void)state;
	struct ng *g = ng_new(NULL, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_5);
	netvsp_set_link(g->nic, false);
	uint8_t buf[512];
	/* The indication waits in the receive buffer as a control message;
	 * the next control message the guest takes is it, then the answer
	 * to its query. */
	uint32_t q[] = {RNDIS_MSG_QUERY, 28, 9, RNDIS_OID_GEN_MEDIA_CONNECT_STATUS, 0, 20, 0};
	ng_rndis(g, q, sizeof(q), false, buf, sizeof(buf));
	uint32_t type;
	memcpy(&type, buf, 4);
	assert_int_equal(type, RNDIS_MSG_INDICATE);
	uint32_t status;
	memcpy(&status, buf + 8, 4);
	assert_int_equal(status, RNDIS_STATUS_MEDIA_DISCONNECT);
	assert_true(ng_rndis_next(g, buf, sizeof(buf)) > 0);
	memcpy(&type, buf, 4);
	assert_int_equal(type, RNDIS_MSG_QUERY_C);
	memcpy(&status, buf + 8 + 16, 4);
	assert_int_equal(status, RNDIS_MEDIA_STATE_DISCONNECTED);
	netvsp_set_link(g->nic, true);
	assert_true(ng_rndis_next(g, buf, sizeof(buf)) > 0);
	memcpy(&status, buf + 8, 4);
	assert_int_equal(status, RNDIS_STATUS_MEDIA_CONNECT);
	assert_clean(g);
	ng_free(g);
}

static void macs_stable_and_configurable(void **state)
{
	(void)state;
	uint8_t a[6], b[6], c[6];
	struct netvsp_config cfg = {.instance = 1};
	struct ng *g = ng_new(&cfg, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	netvsp_get_mac(g->nic, a);
	assert_memory_equal(a, g->mac, 6);
	assert_int_equal(a[0], 0x00);
	assert_int_equal(a[1], 0x15);
	assert_int_equal(a[2], 0x5d);
	ng_free(g);
	g = ng_new(&cfg, true);
	netvsp_get_mac(g->nic, b);
	assert_memory_equal(a, b, 6); /* same instance, same MAC */
	ng_free(g);
	cfg.instance = 2;
	g = ng_new(&cfg, true);
	netvsp_get_mac(g->nic, c);
	assert_memory_not_equal(a, c, 6);
	ng_free(g);
	const uint8_t mine[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	cfg.has_mac = true;
	memcpy(cfg.mac, mine, 6);
	g = ng_new(&cfg, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	assert_memory_equal(g->mac, mine, 6);
	ng_free(g);
}

/* The guest's RSS settings steer what the host receives: a TCP frame goes
 * to the channel its indirection table names for the frame's Toeplitz
 * hash, and the hash comes with it as per-packet info (NBL_HASH_VALUE),
 * which Linux sets as the skb's hash. */
static void rss_steers_and_reports_hash(void **state)
{
	(void)state;
	struct netvsp_config cfg = {.queues = 4};
	struct ng *g = ng_new(&cfg, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	assert_int_equal(ng_subchannels(g, 3), 3);

	/* Every table entry queue 2, the hash types Linux asks for. */
	uint8_t req[28 + TEST_RSS_PARAM_LEN] = {0}, resp[512];
	uint32_t h[7] = {RNDIS_MSG_SET, sizeof(req), 21, OID_GEN_RECEIVE_SCALE_PARAMETERS,
			 TEST_RSS_PARAM_LEN, 20, 0};
	memcpy(req, h, sizeof(h));
	test_rss_param(req + 28,
		       NDIS_HASH_FUNC_TOEPLITZ | NDIS_HASH_IPV4 | NDIS_HASH_TCP_IPV4 |
			       NDIS_HASH_IPV6 | NDIS_HASH_TCP_IPV6,
		       2, 1);
	ng_rndis(g, req, sizeof(req), false, resp, sizeof(resp));
	uint32_t status;
	memcpy(&status, resp + 12, 4);
	assert_int_equal(status, RNDIS_STATUS_SUCCESS);

	/* 66.9.149.187:2794 -> 161.142.100.80:1766, TCP: hash 0x51ccc178. */
	uint8_t f[60] = {0};
	memcpy(f, g->mac, 6);
	f[12] = 0x08;
	f[14] = 0x45;
	f[14 + 9] = 6;
	const uint8_t addrs[8] = {66, 9, 149, 187, 161, 142, 100, 80};
	memcpy(f + 14 + 12, addrs, 8);
	const uint8_t ports[4] = {2794 >> 8, 2794 & 0xff, 1766 >> 8, 1766 & 0xff};
	memcpy(f + 34, ports, 4);
	assert_int_equal(netvsp_receive(g->nic, f, sizeof(f)), 0);
	struct ng_xfer x;
	uint8_t buf[256];
	for (uint32_t i = 0; i < 4; i++)
		if (i != 2)
			assert_false(ng_take_xfer(g, i, &x, buf, sizeof(buf)));
	assert_true(ng_take_xfer(g, 2, &x, buf, sizeof(buf)));
	struct rndis_packet rp;
	memcpy(&rp, buf + 8, sizeof(rp));
	bool found = false;
	for (uint32_t off = 0; off + 16 <= rp.per_pkt_info_len;) {
		struct rndis_per_packet_info pi;
		memcpy(&pi, buf + 8 + rp.per_pkt_info_offset + off, sizeof(pi));
		if (pi.type == NBL_HASH_VALUE) {
			uint32_t v;
			memcpy(&v, buf + 8 + rp.per_pkt_info_offset + off + pi.ppi_offset, 4);
			assert_int_equal(v, 0x51ccc178);
			found = true;
		}
		assert_true(pi.size >= sizeof(pi));
		off += pi.size;
	}
	assert_true(found);
	assert_memory_equal(buf + 8 + rp.data_offset, f, sizeof(f));
	ng_complete_xfer(g, 2, x.tid);
	assert_clean(g);
	ng_free(g);
}

/* The guest queues many sends at once, each a batch of four frames as
 * Linux batches them, and does not read meanwhile: the reflected frames
 * fill its ring, yet no send completion is lost — the host keeps room for
 * answers and waits for the guest to read. */
static void ring_pressure_keeps_completions(void **state)
{
	(void)state;
	/* A small ring: it fills before the receive sections run out. */
	struct ng *g = ng_new_ring(NULL, true, 4);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	enum { N = 150, BATCH = 4 };
	uint32_t sections = NG_SEND_PAGES * 4096 / g->send_section_size;
	uint8_t f[200];
	make_frame(g, f, sizeof(f), 0);
	uint32_t one = 8 + 36 + sizeof(f), total = BATCH * one; /* one is 8-aligned */
	for (uint32_t k = 0; k < sections; k++) {
		for (uint32_t b = 0; b < BATCH; b++) {
			uint8_t msg[8 + 36 + sizeof(f)];
			struct rndis_packet p = {.data_offset = 36, .data_len = sizeof(f)};
			uint32_t h[2] = {RNDIS_MSG_PACKET, one};
			memcpy(msg, h, 8);
			memcpy(msg + 8, &p, sizeof(p));
			memcpy(msg + 44, f, sizeof(f));
			ng_send_buf_write(g, k * g->send_section_size + b * one, msg, one);
		}
	}
	for (uint32_t k = 0; k < N; k++) {
		struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT};
		m.send_rndis_pkt.send_buf_section_index = k % sections;
		m.send_rndis_pkt.send_buf_section_size = total;
		struct vmbus_ring_iov iov = {&m, sizeof(m)};
		assert_int_equal(vmbus_ring_put_inband(&g->ch[0].c.w, 10000 + k,
						       VMBUS_PKT_FLAG_COMPLETION_REQUESTED, &iov, 1, NULL),
				 0);
	}
	vmbus_ring_publish(&g->ch[0].c.w);
	vf_signal_relid(g->f, g->ch[0].c.relid);

	uint32_t completions = 0, frames = 0, idle = 0;
	uint8_t buf[512];
	struct vmbus_packet pkt;
	while (completions < N && idle < 3) {
		bool any = false;
		while (ng_recv(g, 0, buf, sizeof(buf), &pkt)) {
			any = true;
			if (pkt.type == VMBUS_PKT_COMP) {
				assert_int_equal(pkt.trans_id, 10000 + completions);
				completions++;
			} else {
				assert_int_equal(pkt.type, VMBUS_PKT_DATA_USING_XFER_PAGES);
				uint32_t done[2] = {NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE, 1};
				ng_send_completion(g, 0, pkt.trans_id, done, sizeof(done));
				frames += xfer_ranges(&pkt);
			}
		}
		idle = any ? 0 : idle + 1;
		vf_signal_relid(g->f, g->ch[0].c.relid); /* as a polling guest would */
	}
	assert_int_equal(completions, N);
	struct netvsp_loopback_stats ls;
	netvsp_loopback_get_stats(g->lb, &ls);
	assert_int_equal(ls.frames, N * BATCH);
	/* Every frame came back or was dropped by the bounded loopback queue,
	 * and what is queued still arrives. */
	while (ng_recv(g, 0, buf, sizeof(buf), &pkt)) {
		assert_int_equal(pkt.type, VMBUS_PKT_DATA_USING_XFER_PAGES);
		uint32_t done[2] = {NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE, 1};
		ng_send_completion(g, 0, pkt.trans_id, done, sizeof(done));
		frames += xfer_ranges(&pkt);
	}
	netvsp_loopback_get_stats(g->lb, &ls);
	assert_int_equal(frames, ls.returned);
	assert_int_equal(ls.returned + ls.dropped + ls.queued, N * BATCH);
	assert_true(frames > 0);
	assert_clean(g);
	ng_free(g);
}

/* Two NICs on one server: one whose guest side never completes and then
 * corrupts its ring does not stall the other. */
static void one_nic_cannot_stall_another(void **state)
{
	(void)state;
	struct netvsp_config ca = {.instance = 0}, cb = {.instance = 1};
	struct ng *a = ng_new(&ca, false);
	struct ng *b = ng_new_on(a, &cb, true);
	ng_up(a, NVSP_PROTOCOL_VERSION_61);
	ng_up(b, NVSP_PROTOCOL_VERSION_5);
	assert_memory_not_equal(a->mac, b->mac, 6);
	/* A's guest takes nothing: its sections run out. */
	uint8_t f[60];
	make_frame(a, f, sizeof(f), 0);
	while (netvsp_receive(a->nic, f, sizeof(f)) == 0)
		;
	assert_int_equal(netvsp_receive(a->nic, f, sizeof(f)), -ENOBUFS);
	for (uint32_t len = 60; len < 1514; len += 97)
		roundtrip(b, 0, len, len % 2);
	/* A's guest scribbles over its ring indices. */
	a->ch[0].c.w.mem.hdr->write_index = 0xfffffff0;
	vf_signal_relid(a->f, a->relid);
	assert_int_equal(stats(a).broken_rings, 1);
	roundtrip(b, 0, 1514, true);
	assert_clean(b);
	ng_free(b);
	ng_free(a);
}

/* ---- A guest that lies ---- */

static void expect_send_status(struct ng *g, uint64_t tid, uint32_t status)
{
	uint8_t buf[256];
	struct vmbus_packet pkt;
	assert_true(ng_recv(g, 0, buf, sizeof(buf), &pkt));
	assert_int_equal(pkt.type, VMBUS_PKT_COMP);
	assert_int_equal(pkt.trans_id, tid);
	struct nvsp_message m = {0};
	memcpy(&m, pkt.data, pkt.data_len < sizeof(m) ? pkt.data_len : sizeof(m));
	assert_int_equal(m.msg_type, NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE);
	assert_int_equal(m.send_rndis_pkt_complete.status, status);
}

/* A send section is read in place when its pages are one run of guest
 * memory and gathered when they are scattered (a Linux guest's vmalloc'd
 * buffer); either way every frame arrives intact, several RNDIS packets
 * in one section each arrive, and a packet whose lengths lie is refused. */
static void send_sections_in_place_or_gathered(void **state)
{
	(void)state;
	for (int scattered = 0; scattered < 2; scattered++) {
		struct ng *g = ng_new(NULL, false); /* a sink: frames checked as it takes them */
		g->send_scattered = scattered;
		ng_up(g, NVSP_PROTOCOL_VERSION_61);
		uint64_t in_place = stats(g).tx_in_place;
		uint32_t sends = 0;
		uint8_t f[1514], got[1514];
		for (uint32_t len = 60; len <= 1514; len += 7, sends++) {
			make_frame(g, f, len, 7);
			ng_send_frame(g, 0, f, len, true);
			assert_int_equal(netvsp_loopback_last(g->lb, got, len), len);
			assert_memory_equal(got, f, len);
		}

		/* Three packets back to back in section 5, one send. */
		enum { N = 3, LEN = 1000, ONE = 8 + 36 + LEN };
		uint8_t msg[ONE];
		for (uint32_t k = 0; k < N; k++) {
			make_frame(g, f, LEN, 100 + k);
			struct rndis_packet p = {.data_offset = 36, .data_len = LEN};
			uint32_t h[2] = {RNDIS_MSG_PACKET, ONE};
			memcpy(msg, h, 8);
			memcpy(msg + 8, &p, sizeof(p));
			memcpy(msg + 44, f, LEN);
			ng_send_buf_write(g, 5 * g->send_section_size + k * ONE, msg, ONE);
		}
		struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT};
		m.send_rndis_pkt.send_buf_section_index = 5;
		m.send_rndis_pkt.send_buf_section_size = N * ONE;
		uint64_t frames = stats(g).tx_frames;
		ng_send_nvsp(g, 0, 900, &m, sizeof(m), true);
		sends++;
		expect_send_status(g, 900, NVSP_STAT_SUCCESS);
		assert_int_equal(stats(g).tx_frames, frames + N);
		assert_int_equal(netvsp_loopback_last(g->lb, got, LEN), LEN);
		assert_memory_equal(got, f, LEN); /* the third */

		/* Lies: a frame past its message. */
		uint32_t w[11] = {RNDIS_MSG_PACKET, 8 + 36 + 60, 36, 61};
		ng_send_buf_write(g, 7 * g->send_section_size, w, sizeof(w));
		m.send_rndis_pkt.send_buf_section_index = 7;
		m.send_rndis_pkt.send_buf_section_size = 8 + 36 + 60;
		ng_send_nvsp(g, 0, 901, &m, sizeof(m), true);
		sends++;
		expect_send_status(g, 901, NVSP_STAT_INVALID_RNDIS_PKT);
		assert_int_equal(stats(g).bad_rndis, 1);

		assert_int_equal(stats(g).tx_in_place - in_place, scattered ? 0 : sends);
		ng_free(g);
	}
}

static void malicious_sections_and_ranges(void **state)
{
	(void)state;
	struct ng *g = ng_new(NULL, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT};
	/* A section index past the send buffer, a size past a section, zero. */
	const uint32_t idx[] = {1000, 0xfffffffe, 0, 0};
	const uint32_t size[] = {100, 100, NVSP_SEND_SECTION_SIZE + 1, 0};
	for (uint32_t k = 0; k < 4; k++) {
		m.send_rndis_pkt.send_buf_section_index = idx[k];
		m.send_rndis_pkt.send_buf_section_size = size[k];
		ng_send_nvsp(g, 0, 500 + k, &m, sizeof(m), true);
		expect_send_status(g, 500 + k, NVSP_STAT_INVALID_RNDIS_PKT);
	}
	assert_int_equal(stats(g).bad_sections, 4);
	/* An in-band RNDIS packet with no section: no data at all. */
	m.send_rndis_pkt.send_buf_section_index = NVSP_INVALID_SECTION_INDEX;
	ng_send_nvsp(g, 0, 510, &m, sizeof(m), true);
	expect_send_status(g, 510, NVSP_STAT_INVALID_RNDIS_PKT);

	/* GPA-direct pages outside guest RAM (the fixture's hole) and past
	 * the end of RAM. */
	uint64_t hole[2] = {VF_HOLE_PFN, VF_HOLE_PFN + 1};
	struct vmbus_gpa_range_out r = {200, 100, hole};
	ng_send_gpa(g, 0, 520, &r, 1, &m, sizeof(m));
	expect_send_status(g, 520, NVSP_STAT_INVALID_RNDIS_PKT);
	uint64_t past[1] = {~0ull >> 12};
	r = (struct vmbus_gpa_range_out){100, 0, past};
	ng_send_gpa(g, 0, 521, &r, 1, &m, sizeof(m));
	expect_send_status(g, 521, NVSP_STAT_INVALID_RNDIS_PKT);
	assert_int_equal(stats(g).bad_ranges, 2);

	/* A GPA-direct packet that is not NVSP RNDIS. */
	struct nvsp_message junk = {.msg_type = NVSP_MSG1_TYPE_SEND_RECV_BUF};
	uint64_t ok_pfn[1] = {g->send_pfn};
	r = (struct vmbus_gpa_range_out){100, 0, ok_pfn};
	ng_send_gpa(g, 0, 522, &r, 1, &junk, sizeof(junk));
	assert_int_equal(stats(g).bad_messages, 2); /* with the empty packet above */

	/* Still serving. */
	roundtrip(g, 0, 200, true);
	roundtrip(g, 0, 200, false);
	ng_free(g);
}

static void malicious_completions(void **state)
{
	(void)state;
	struct ng *g = ng_new(NULL, false);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	uint8_t f[60];
	make_frame(g, f, sizeof(f), 0);
	assert_int_equal(netvsp_receive(g->nic, f, sizeof(f)), 0);
	uint8_t buf[256];
	struct vmbus_packet pkt;
	assert_true(ng_recv(g, 0, buf, sizeof(buf), &pkt));
	assert_int_equal(pkt.type, VMBUS_PKT_DATA_USING_XFER_PAGES);
	uint64_t tid = pkt.trans_id;
	uint32_t done[2] = {NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE, NVSP_STAT_SUCCESS};
	/* Forged: a section index past the buffer, the right index with the
	 * wrong sequence, a section that is free. */
	ng_send_completion(g, 0, 0xffffffffull, done, sizeof(done));
	ng_send_completion(g, 0, tid ^ (1ull << 40), done, sizeof(done));
	ng_send_completion(g, 0, (tid & 0xffffffff00000000ull) | ((uint32_t)tid + 1), done,
			   sizeof(done));
	assert_int_equal(stats(g).bad_completions, 3);
	assert_int_equal(stats(g).recv_in_flight, 1);
	/* The real one, then the same again. */
	ng_send_completion(g, 0, tid, done, sizeof(done));
	assert_int_equal(stats(g).recv_in_flight, 0);
	ng_send_completion(g, 0, tid, done, sizeof(done));
	assert_int_equal(stats(g).bad_completions, 4);
	ng_free(g);
}

static void malicious_rndis_and_nvsp(void **state)
{
	(void)state;
	struct ng *g = ng_new(NULL, true);
	/* Before INIT: buffers, RNDIS and NDIS messages are refused. */
	struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RECV_BUF};
	m.send_recv_buf.gpadl_handle = 77;
	ng_send_nvsp(g, 0, 1, &m, sizeof(m), true);
	assert_int_equal(stats(g).bad_messages, 1);
	uint8_t buf[256];
	struct vmbus_packet pkt;
	assert_true(ng_recv(g, 0, buf, sizeof(buf), &pkt)); /* a failure answer */
	assert_int_equal(pkt.type, VMBUS_PKT_COMP);
	struct nvsp_message fa;
	memcpy(&fa, pkt.data, sizeof(fa));
	assert_int_equal(fa.msg_type, NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE);
	assert_int_equal(fa.send_recv_buf_complete.status, NVSP_STAT_FAIL);
	/* A 2-byte message, an unknown type. */
	ng_send_nvsp(g, 0, 2, &m, 2, false);
	m.msg_type = 9999;
	ng_send_nvsp(g, 0, 3, &m, sizeof(m), false);
	assert_int_equal(stats(g).bad_messages, 3);

	assert_int_equal(ng_init(g, NVSP_PROTOCOL_VERSION_61), NVSP_STAT_SUCCESS);
	/* A receive buffer GPADL that does not exist. */
	m = (struct nvsp_message){.msg_type = NVSP_MSG1_TYPE_SEND_RECV_BUF};
	m.send_recv_buf.gpadl_handle = 0xdead;
	m.send_recv_buf.id = NVSP_RECV_BUFFER_ID;
	ng_send_nvsp(g, 0, 4, &m, sizeof(m), true);
	assert_true(ng_recv(g, 0, buf, sizeof(buf), &pkt));
	struct nvsp_message r;
	memcpy(&r, pkt.data, sizeof(r));
	assert_int_equal(r.send_recv_buf_complete.status, NVSP_STAT_FAIL);
	ng_buffers(g);
	ng_rndis_up(g);
	uint64_t before = stats(g).bad_rndis;

	/* RNDIS data packets whose lengths lie, sent through a section. */
	uint32_t pkt_words[13] = {RNDIS_MSG_PACKET, 8 + 36 + 60, 36, 60, 0, 0, 0, 0, 0, 0, 0, 0};
	uint8_t msg[8 + 36 + 60] = {0};
	const struct {
		uint32_t word, val;
	} lies[] = {{1, 0xffff}, {2, 0x7fffffff}, {3, 61}, {2, 4}, {7, 30}};
	for (uint32_t k = 0; k < 5; k++) {
		memcpy(msg, pkt_words, sizeof(pkt_words) - 4);
		uint32_t w[13];
		memcpy(w, pkt_words, sizeof(w));
		w[lies[k].word] = lies[k].val;
		if (lies[k].word == 7)
			w[8] = 100; /* ppi offset 30 inside the header, len 100 */
		memcpy(msg, w, 4 * 9);
		uint32_t idx = 3;
		ng_send_buf_write(g, idx * g->send_section_size, msg, sizeof(msg));
		struct nvsp_message s = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT};
		s.send_rndis_pkt.send_buf_section_index = idx;
		s.send_rndis_pkt.send_buf_section_size = sizeof(msg);
		ng_send_nvsp(g, 0, 600 + k, &s, sizeof(s), true);
		expect_send_status(g, 600 + k, NVSP_STAT_INVALID_RNDIS_PKT);
	}
	assert_int_equal(stats(g).bad_rndis, before + 5);
	struct netvsp_loopback_stats ls;
	netvsp_loopback_get_stats(g->lb, &ls);
	assert_int_equal(ls.frames, 0);
	/* Still serving. */
	roundtrip(g, 0, 1514, true);
	ng_free(g);
}

/* The guest reloads its driver: the primary closes (everything it set up
 * is forgotten) and opens again for a fresh bring-up. */
static void reopen_starts_over(void **state)
{
	(void)state;
	struct ng *g = ng_new(NULL, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	roundtrip(g, 0, 64, true);
	vf_chan_close(g->f, &g->ch[0].c);
	vf_chan_free(&g->ch[0].c);
	g->ch[0].open = false;
	struct netvsp_stats s = stats(g);
	assert_int_equal(s.version, 0);
	assert_int_equal(s.recv_sections, 0);
	vf_gpadl_teardown(g->f, g->relid, g->gpadl_base + NG_RECV_GPADL, true);
	vf_gpadl_teardown(g->f, g->relid, g->gpadl_base + NG_SEND_GPADL, true);
	vf_chan_prepare(g->f, &g->ch[0].c, g->relid, 2, 16, 16, false);
	assert_int_equal(vf_chan_open(g->f, &g->ch[0].c, 0), 0);
	g->ch[0].open = true;
	g->vf_messages = 0;
	ng_up(g, NVSP_PROTOCOL_VERSION_2);
	roundtrip(g, 0, 1000, false);
	assert_clean(g);
	ng_free(g);
}

static void net_option_parsing(void **state)
{
	(void)state;
	struct netvsp_nic_opts o;
	char why[200];
	assert_int_equal(netvsp_nic_parse("loopback", &o, why, sizeof(why)), 0);
	assert_int_equal(o.backend, NETVSP_BACKEND_LOOPBACK);
	assert_false(o.has_mac);
	assert_int_equal(netvsp_nic_parse("tap=hv0,mac=52:54:00:ab:cd:ef,mtu=9000,queues=8", &o,
					  why, sizeof(why)),
			 0);
	assert_int_equal(o.backend, NETVSP_BACKEND_TAP);
	assert_string_equal(o.tap, "hv0");
	assert_true(o.has_mac);
	assert_int_equal(o.mac[5], 0xef);
	assert_int_equal(o.mtu, 9000);
	assert_int_equal(o.queues, 8);
	/* No backend named: user mode, the default. */
	assert_int_equal(netvsp_nic_parse("mtu=1400", &o, why, sizeof(why)), 0);
	assert_int_equal(o.backend, NETVSP_BACKEND_USER);
	const char *bad[] = {"bogus", "loopback,mac=01:00:00:00:00:01", "loopback,mac=00:00:00:00:00:00",
			     "loopback,mac=52:54:00:12:34", "loopback,mtu=67", "loopback,mtu=70000",
			     "loopback,queues=0", "tap=", "tap=waytoolonginterfacename",
			     "mac=52:54:00:12:34:56,loopback", "user,hostfwd=tcp:1.2.3:80-:80",
			     "user,hostfwd=8080", "user,hostfwd=tcp::8080-:0", "user,hostfwd=tcp::70000-:1",
			     "loopback,hostfwd=:8080-:80", "user,restrict=on", "user,restrict=maybe",
			     "user,mac", "sink=1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = 0;
		assert_int_equal(netvsp_nic_parse(bad[i], &o, why, sizeof(why)), -EINVAL);
		assert_true(why[0] != 0);
	}
	/* Port forwards, QEMU's spelling, several. */
	assert_int_equal(netvsp_nic_parse("user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::53-"
					  "10.0.2.16:5353,hostfwd=2222-22,restrict=on",
					  &o, why, sizeof(why)),
			 0);
	assert_int_equal(o.user.nfwd, 3);
	assert_true(o.user.restrict_);
	assert_false(o.user.fwd[0].udp);
	assert_int_equal(ntohl(o.user.fwd[0].host_addr.s_addr), 0x7f000001);
	assert_int_equal(o.user.fwd[0].host_port, 8080);
	assert_int_equal(o.user.fwd[0].guest_addr.s_addr, 0);
	assert_int_equal(o.user.fwd[0].guest_port, 80);
	assert_true(o.user.fwd[1].udp);
	assert_int_equal(ntohl(o.user.fwd[1].guest_addr.s_addr), 0x0a000210);
	assert_int_equal(o.user.fwd[2].guest_port, 22);
	assert_int_equal(netvsp_nic_parse("sink", &o, why, sizeof(why)), 0);
	assert_int_equal(o.backend, NETVSP_BACKEND_SINK);
	/* Every backend but TAP (privileged) comes up and goes again. */
	struct vfix *f = vf_new(NULL);
	struct netvsp_nic *nic = NULL;
	assert_int_equal(netvsp_nic_parse("user,hostfwd=tcp:127.0.0.1:0-:80", &o, why, sizeof(why)),
			 0);
	assert_int_equal(netvsp_nic_add(f->s, &f->mem, 0, &o, NULL, NULL, &nic, why, sizeof(why)),
			 0);
	netvsp_nic_remove(f->s, nic);
	assert_int_equal(netvsp_nic_parse("sink", &o, why, sizeof(why)), 0);
	assert_int_equal(netvsp_nic_add(f->s, &f->mem, 0, &o, NULL, NULL, &nic, why, sizeof(why)),
			 0);
	netvsp_nic_remove(f->s, nic);
	assert_int_equal(netvsp_nic_parse("loopback,queues=2", &o, why, sizeof(why)), 0);
	assert_int_equal(netvsp_nic_add(f->s, &f->mem, 0, &o, NULL, NULL, &nic, why, sizeof(why)),
			 0);
	assert_non_null(netvsp_nic_netvsp(nic));
	netvsp_nic_remove(f->s, nic);
	vf_free(f);
}

/* ---- Snapshot and restore (the NIC's state in the server's) ---- */

/* A NIC in use (four channels, frames in the guest's receive buffer not
 * yet completed) saved and restored: the guest completes those, and
 * frames go both ways on every channel, with nothing negotiated again. */
static void restore_keeps_the_nic(void **state)
{
	(void)state;
	struct netvsp_config cfg = {.queues = 4};
	struct ng *g = ng_new(&cfg, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	assert_int_equal(ng_subchannels(g, 3), 3);
	for (uint32_t i = 0; i < 4; i++)
		roundtrip(g, i, 100 + 10 * i, i % 2);
	uint8_t f[60];
	make_frame(g, f, sizeof(f), 9);
	for (int i = 0; i < 5; i++)
		assert_int_equal(netvsp_receive(g->nic, f, sizeof(f)), 0);
	struct netvsp_stats before = stats(g);
	ng_restore(g);
	struct netvsp_stats after = stats(g);
	assert_int_equal(after.version, before.version);
	assert_int_equal(after.recv_sections, before.recv_sections);
	assert_int_equal(after.send_sections, before.send_sections);
	assert_int_equal(after.recv_in_flight, 5);
	assert_int_equal(after.open_channels, 4);
	/* The host picked their channel by flow: the same one each time. */
	uint8_t back[64];
	uint32_t got = 0;
	for (uint32_t i = 0; i < 4; i++)
		while (ng_recv_frame(g, i, back, sizeof(back)) == 60)
			got++;
	assert_int_equal(got, 5);
	assert_int_equal(stats(g).recv_in_flight, 0);
	for (uint32_t i = 0; i < 4; i++)
		for (uint32_t len = 60; len < 200; len += 70)
			roundtrip(g, i, len, len % 2);
	assert_clean(g);
	ng_free(g);
}

/* A NIC of another MTU cuts its receive buffer otherwise: the record is
 * refused, and the server is as new. */
static void restore_refuses_another_mtu(void **state)
{
	(void)state;
	struct ng *g = ng_new(NULL, true);
	ng_up(g, NVSP_PROTOCOL_VERSION_61);
	struct netvsp_config jumbo = g->cfg;
	jumbo.mtu = 9000;
	assert_int_equal(ng_restore_as(g, &jumbo), -EINVAL);
	assert_int_equal(vf_stats(g->f).connection, VMBUS_SERVER_DISCONNECTED);
	ng_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(restore_keeps_the_nic),
		cmocka_unit_test(restore_refuses_another_mtu),
		cmocka_unit_test(negotiates_every_version),
		cmocka_unit_test(older_host_falls_back),
		cmocka_unit_test(every_frame_size_both_ways),
		cmocka_unit_test(device_thread_both_ways),
		cmocka_unit_test(device_thread_comes_back_after_its_budget),
		cmocka_unit_test(jumbo_frames),
		cmocka_unit_test(sections_recycled_on_completion),
		cmocka_unit_test(subchannels_and_send_table),
		cmocka_unit_test(rss_steers_and_reports_hash),
		cmocka_unit_test(ring_pressure_keeps_completions),
		cmocka_unit_test(one_nic_cannot_stall_another),
		cmocka_unit_test(link_indications),
		cmocka_unit_test(macs_stable_and_configurable),
		cmocka_unit_test(send_sections_in_place_or_gathered),
		cmocka_unit_test(malicious_sections_and_ranges),
		cmocka_unit_test(malicious_completions),
		cmocka_unit_test(burst_receive_many_ranges),
		cmocka_unit_test(burst_takes_unsignalled_completions),
		cmocka_unit_test(rx_streak_reads_the_ring_masked),
		cmocka_unit_test(malicious_rndis_and_nvsp),
		cmocka_unit_test(reopen_starts_over),
		cmocka_unit_test(net_option_parsing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
