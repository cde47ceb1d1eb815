/* SPDX-License-Identifier: MIT */
/*
 * A guest for the netvsc end-to-end tests: the VMBus client and netvsc on
 * the POSIX port, against netvsp with the loopback backend (every frame
 * comes back) in the process partition. Exit 0 if every check held.
 *
 *   hvkit-test-netvsc-guest SCENARIO [ARG...]
 *
 *   frames VERSION MTU CHANNELS STRIDE   NVSP VERSION (hex) agreed, CHANNELS
 *                                        open, frames of 60..MTU+14 bytes
 *                                        (every STRIDE-th size) sent and
 *                                        each reflected intact
 *   link                                 sends one frame, then hears the
 *                                        link go down and come up
 *   hibernate CHANNELS                   frames through CHANNELS channels,
 *                                        the bus suspended and resumed
 *                                        (hibernation.rst), the same NIC
 *                                        with its MAC, CHANNELS channels
 *                                        and RSS again, frames again
 *   bench-tx COUNT SIZE [QUEUES]         sends COUNT frames of SIZE bytes as
 *                                        fast as it can (hvkit-bench net);
 *                                        with QUEUES, that many channels
 *                                        and threads (each its VP), each
 *                                        sending COUNT frames of a UDP flow
 *                                        netvsc puts on its own channel
 *   bench-rx COUNT                       takes COUNT frames, then exits
 *   bench-tcp SINK_PORT LISTEN_PORT BYTES
 *                                        mini_ip over netvsc on user-mode
 *                                        networking, as fast as it goes:
 *                                        BYTES to the host's sink (via
 *                                        10.0.2.2), then BYTES taken from
 *                                        the host through a port forward
 *   ip ECHO_PORT LISTEN_PORT BYTES       mini_ip over netvsc on user-mode
 *                                        networking: an address by DHCP,
 *                                        pings of the gateway, BYTES to the
 *                                        host's echo server on ECHO_PORT
 *                                        (via 10.0.2.2) and back, then a
 *                                        connection from the host through a
 *                                        port forward to LISTEN_PORT, echoed
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv_guest.h"
#include "mini_ip.h"
#include "netvsc.h"
#include "posix.h"
#include "process_guest.h"
#include "vmbus_client.h"

static struct hv_posix *px;
static struct hv_guest guest;
static struct vmbus_client *client;
static struct netvsc_driver *drv;
static int failures;

#define CHECK(cond, ...)                                                                  \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "netvsc guest: check failed (line %d): ", __LINE__); \
			fprintf(stderr, __VA_ARGS__);                                      \
			fputc('\n', stderr);                                               \
			failures++;                                                        \
		}                                                                          \
	} while (0)

#define MAX_FRAME (65535 + 18)
#define MAX_SEQ 70000
#define WINDOW 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static uint8_t *seen;           /* per sequence number: received intact */
static uint64_t received, wrong;
static uint32_t link_downs, link_ups;
static uint8_t mac[6];

/* Frame seq of len bytes: to us, from a MAC that varies with seq (so flows
 * spread over the channels), a local EtherType, then bytes from seq. */
static void make_frame(uint32_t seq, uint32_t len, uint8_t *f)
{
	memcpy(f, mac, 6);
	uint8_t src[6] = {0x02, 0x00, (uint8_t)(seq >> 16), (uint8_t)(seq >> 8), (uint8_t)seq, 1};
	memcpy(f + 6, src, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	memcpy(f + 14, &seq, 4);
	for (uint32_t i = 18; i < len; i++)
		f[i] = (uint8_t)(seq * 31 + i);
}

static void on_rx(void *ctx, const void *frame, size_t len)
{
	(void)ctx;
	static uint8_t expect[MAX_FRAME];
	uint32_t seq;
	pthread_mutex_lock(&lock);
	bool ok = len >= 18 && len <= MAX_FRAME;
	if (ok) {
		memcpy(&seq, (const uint8_t *)frame + 14, 4);
		ok = seq < MAX_SEQ;
	}
	if (ok) {
		make_frame(seq, (uint32_t)len, expect);
		ok = memcmp(frame, expect, len) == 0 && !seen[seq];
	}
	if (ok)
		seen[seq] = 1;
	else
		wrong++;
	received++;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
}

static void on_link(void *ctx, bool up)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	if (up)
		link_ups++;
	else
		link_downs++;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
}

static int bring_up(uint32_t mtu)
{
	struct hv_guest_features f;
	int err = hv_posix_connect_env(&px);
	if (err)
		return err;
	struct hv_guest_config gc = {0};
	if ((err = process_guest_enlighten(px, &guest, &gc, &f)) != 0)
		return err;
	struct vmbus_client_config cc = {0};
	client = vmbus_client_new(&guest, &cc, &err);
	if (!client)
		return err;
	struct netvsc_config nc = {.mtu = mtu};
	/* The benchmark tries other buffer sizes than Linux's. */
	const char *e = getenv("HVKIT_NETVSC_SEND_SECTIONS");
	nc.send_sections = e ? (uint32_t)atoi(e) : 0;
	e = getenv("HVKIT_NETVSC_RECV_SECTIONS");
	nc.recv_sections = e ? (uint32_t)atoi(e) : 0;
	drv = netvsc_driver_new(client, &nc, &err);
	if (!drv)
		return err;
	return vmbus_client_connect(client);
}

/* Runs the client's work until a NIC has `channels` channels open. */
static struct netvsc *settle(uint32_t channels)
{
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		vmbus_client_process(client);
		struct netvsc *n = netvsc_nic(drv, 0);
		if (n) {
			struct netvsc_stats st;
			netvsc_get_stats(n, &st);
			if (st.channels >= channels)
				return n;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= 20)
			return n;
		vmbus_client_wait_work(client, 5000000);
	}
}

static bool wait_for(bool (*cond)(void *), void *arg)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 20;
	pthread_mutex_lock(&lock);
	bool ok;
	while (!(ok = cond(arg)))
		if (pthread_cond_timedwait(&changed, &lock, &dl))
			break;
	ok = cond(arg);
	pthread_mutex_unlock(&lock);
	return ok;
}

static bool received_at_least(void *arg)
{
	return received >= *(uint64_t *)arg;
}

/* Sends one frame, waiting while the NIC is busy. */
static int send_frame(struct netvsc *n, const uint8_t *f, uint32_t len, uint32_t flags)
{
	for (int tries = 0; tries < 200000; tries++) {
		int err = netvsc_send_flags(n, f, len, flags);
		if (err != -EAGAIN)
			return err;
		nanosleep(&(struct timespec){0, 20000}, NULL);
	}
	return -ETIMEDOUT;
}

static struct netvsc *open_nic_with(uint32_t channels,
				    void (*rx)(void *ctx, const void *frame, size_t len))
{
	struct netvsc *n = settle(channels);
	CHECK(n != NULL, "no NIC came up");
	if (!n)
		return NULL;
	netvsc_get_mac(n, mac);
	struct netvsc_ops ops = {.rx = rx, .link = on_link};
	int err = netvsc_open(n, &ops);
	CHECK(err == 0, "open: %d", err);
	return err ? NULL : n;
}

static struct netvsc *open_nic(uint32_t channels)
{
	return open_nic_with(channels, on_rx);
}

static void frames(uint32_t version, uint32_t mtu, uint32_t channels, uint32_t stride)
{
	struct netvsc *n = open_nic(channels);
	if (!n)
		return;
	struct netvsc_stats st;
	netvsc_get_stats(n, &st);
	CHECK(st.nvsp_version == version, "NVSP %#x, expected %#x", st.nvsp_version, version);
	CHECK(st.channels == channels, "%u channels, expected %u", st.channels, channels);
	CHECK(st.rss_channels == (channels > 1 ? channels : 0), "RSS over %u channels",
	      st.rss_channels);
	CHECK(netvsc_mtu(n) == mtu, "MTU %u", netvsc_mtu(n));
	CHECK(netvsc_link_up(n), "link down at start");
	CHECK(st.recv_section_size >= mtu + 14, "receive section %u", st.recv_section_size);

	static uint8_t f[MAX_FRAME];
	uint64_t sent = 0;
	uint32_t seq = 0;
	for (uint32_t len = 60; len <= mtu + 14; len += stride, seq++) {
		/* A window of frames in flight: the loopback's queue is bounded
		 * and drops what does not fit (a backend's right). */
		uint64_t low = sent > WINDOW ? sent - WINDOW : 0;
		if (seq % 4 == 0)
			CHECK(wait_for(received_at_least, &low), "stalled at %lu of %lu",
			      (unsigned long)received, (unsigned long)sent);
		make_frame(seq, len, f);
		/* Three of every four batched behind the next (NETVSC_SEND_MORE). */
		int err = send_frame(n, f, len, seq % 4 != 3 ? NETVSC_SEND_MORE : 0);
		CHECK(err == 0, "send of %u bytes: %d", len, err);
		sent += err == 0;
	}
	/* The largest size too, whatever the stride. */
	make_frame(seq, mtu + 14, f);
	sent += send_frame(n, f, mtu + 14, 0) == 0;
	seq++;
	CHECK(wait_for(received_at_least, &sent), "%lu of %lu frames came back",
	      (unsigned long)received, (unsigned long)sent);
	pthread_mutex_lock(&lock);
	uint32_t missing = 0;
	for (uint32_t s = 0; s < seq; s++)
		missing += !seen[s];
	pthread_mutex_unlock(&lock);
	CHECK(missing == 0 && wrong == 0, "%u missing, %lu wrong", missing, (unsigned long)wrong);
	netvsc_get_stats(n, &st);
	CHECK(st.bad_packets == 0 && st.bad_ranges == 0 && st.bad_rndis == 0 &&
		      st.bad_completions == 0 && st.broken_rings == 0,
	      "host input refused: %lu %lu %lu %lu %lu", (unsigned long)st.bad_packets,
	      (unsigned long)st.bad_ranges, (unsigned long)st.bad_rndis,
	      (unsigned long)st.bad_completions, (unsigned long)st.broken_rings);
	CHECK(st.tx_frames == sent && st.rx_frames == sent, "tx %lu rx %lu",
	      (unsigned long)st.tx_frames, (unsigned long)st.rx_frames);
	if (channels == 1)
		CHECK(st.tx_sends < st.tx_frames, "no batch: %lu sends for %lu frames",
	      (unsigned long)st.tx_sends, (unsigned long)st.tx_frames);
	if (mtu + 14 + 44 > st.send_section_size)
		CHECK(st.tx_gpa_direct > 0, "no frame went GPA-direct");
	/* Every send completed: give the last completions a moment. */
	for (int i = 0; i < 2000; i++) {
		netvsc_get_stats(n, &st);
		if (st.tx_in_flight == 0)
			break;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	CHECK(st.tx_in_flight == 0 && st.tx_completions >= st.tx_sends, "%u sends not completed",
	      st.tx_in_flight);
	if (channels > 1) {
		/* The host's table names more than one channel. */
		uint32_t distinct = 0;
		for (uint32_t i = 0; i < 16; i++)
			distinct |= 1u << (st.send_table[i] % 16);
		CHECK(__builtin_popcount(distinct) > 1, "send table uses one channel");
	}
}

/* count frames of 60..1514 bytes, every one reflected intact. */
static void burst(struct netvsc *n, uint32_t first_seq, uint32_t count)
{
	static uint8_t f[MAX_FRAME];
	uint64_t base = received, want = base + count;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t len = 60 + (i * 97) % 1455;
		make_frame(first_seq + i, len, f);
		CHECK(send_frame(n, f, len, 0) == 0, "send %u", first_seq + i);
		/* At most 8 in flight: the loopback's queue is bounded. */
		if (i % 16 == 15) {
			uint64_t low = base + i + 1 - 8;
			CHECK(wait_for(received_at_least, &low), "stalled at %lu of %lu",
			      (unsigned long)received, (unsigned long)(base + i + 1));
		}
	}
	CHECK(wait_for(received_at_least, &want), "%lu of %lu frames came back",
	      (unsigned long)received, (unsigned long)want);
	pthread_mutex_lock(&lock);
	for (uint32_t i = 0; i < count; i++)
		CHECK(seen[first_seq + i], "frame %u missing", first_seq + i);
	pthread_mutex_unlock(&lock);
}

static void hibernate(uint32_t channels)
{
	struct netvsc *n = open_nic(channels);
	if (!n)
		return;
	burst(n, 0, 200);
	struct netvsc_stats before, after;
	netvsc_get_stats(n, &before);
	uint8_t mac_before[6];
	netvsc_get_mac(n, mac_before);

	CHECK(vmbus_client_suspend(client) == 0, "suspend");
	netvsc_get_stats(n, &after);
	CHECK(after.channels == 0, "%u channels while suspended", after.channels);
	CHECK(vmbus_client_resume(client) == 0, "resume");
	/* The sub-channels are offered as the NIC resumes: the client's work
	 * opens them (and sets RSS over them) when it runs. */
	CHECK(settle(channels) == n, "not the same NIC, or fewer channels than %u", channels);
	netvsc_get_stats(n, &after);
	CHECK(after.channels == channels && after.rss_channels == (channels > 1 ? channels : 0),
	      "%u channels, RSS over %u", after.channels, after.rss_channels);
	uint8_t mac_after[6];
	netvsc_get_mac(n, mac_after);
	CHECK(!memcmp(mac_before, mac_after, 6), "the MAC changed");
	burst(n, 200, 200);
	netvsc_get_stats(n, &after);
	CHECK(after.nvsp_version == before.nvsp_version, "NVSP %#x, before %#x",
	      after.nvsp_version, before.nvsp_version);
	CHECK(after.bad_packets == 0 && after.bad_rndis == 0 && after.bad_completions == 0 &&
		      after.broken_rings == 0,
	      "host input refused");
	CHECK(after.rx_frames == 400 && after.tx_frames == 400, "tx %lu rx %lu",
	      (unsigned long)after.tx_frames, (unsigned long)after.rx_frames);
}

static bool link_went_down(void *arg)
{
	(void)arg;
	return link_downs >= 1;
}

static bool link_came_up(void *arg)
{
	(void)arg;
	return link_ups >= 1;
}

static void link(void)
{
	struct netvsc *n = open_nic(1);
	if (!n)
		return;
	static uint8_t f[64];
	make_frame(0, 60, f);
	CHECK(send_frame(n, f, 60, 0) == 0, "send");
	/* The host pulls the cable once it has seen the frame, then plugs it. */
	CHECK(wait_for(link_went_down, NULL), "no link-down indication");
	CHECK(wait_for(link_came_up, NULL), "no link-up indication");
	CHECK(netvsc_link_up(n), "link still down");
	struct netvsc_stats st;
	netvsc_get_stats(n, &st);
	CHECK(st.link_changes == 2, "%lu link changes", (unsigned long)st.link_changes);
}

/* ---- Benchmarks (hvkit-bench net times them on the host) ---- */

static uint64_t bench_rx;

/* Takes each frame as a stack would: copied out of the receive section
 * into a buffer of its own (Linux copies into an skb,
 * netvsc_alloc_recv_skb), so the bench's path has the bound's two copies. */
static void count_rx(void *ctx, const void *frame, size_t len)
{
	(void)ctx;
	static uint8_t taken[MAX_FRAME];
	memcpy(taken, frame, len < sizeof(taken) ? len : sizeof(taken));
	__asm__ volatile("" : : "r"(taken) : "memory"); /* the copy is not dead */
	__atomic_add_fetch(&bench_rx, 1, __ATOMIC_RELAXED);
}

/* Sends count frames f of size bytes in bursts of 32; false after a check
 * failed. */
static bool send_frames(struct netvsc *n, const uint8_t *f, uint32_t size, uint64_t count)
{
	for (uint64_t i = 0; i < count;) {
		/* A burst, as a stack with frames queued sends it (xmit_more). */
		uint32_t flags = (i + 1) % 32 && i + 1 < count ? NETVSC_SEND_MORE : 0;
		int err = netvsc_send_flags(n, f, size, flags);
		if (err == 0)
			i++;
		else if (err == -EAGAIN)
			sched_yield(); /* the host needs the shared cores to complete */
		else {
			CHECK(false, "send: %d", err);
			return false;
		}
	}
	return true;
}

/* Waits (a bounded while) until every send has been completed. */
static void sends_completed(struct netvsc *n)
{
	struct netvsc_stats st;
	for (int i = 0; i < 20000; i++) {
		netvsc_get_stats(n, &st);
		if (st.tx_in_flight == 0)
			break;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	CHECK(st.tx_in_flight == 0, "%u sends never completed", st.tx_in_flight);
}

/* An Ethernet frame that is not IP: every send takes the primary. */
static void bench_frame(uint8_t *f)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x88;
	f[13] = 0xb5;
}

/* IPv4/UDP from 10.0.0.2 port `sport` to 10.0.0.1: a flow netvsc hashes
 * (checksums are not checked on this path). */
static void udp_frame(uint8_t *f, uint32_t size, uint16_t sport)
{
	memset(f, 0, size);
	bench_frame(f);
	f[12] = 0x08;
	f[13] = 0x00;
	uint8_t *ip = f + 14, *udp = ip + 20;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((size - 14) >> 8);
	ip[3] = (uint8_t)(size - 14);
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, (const uint8_t[]){10, 0, 0, 2, 10, 0, 0, 1}, 8);
	udp[0] = (uint8_t)(sport >> 8);
	udp[1] = (uint8_t)sport;
	udp[2] = 0x13;
	udp[3] = 0x88; /* port 5000 */
	udp[4] = (uint8_t)((size - 34) >> 8);
	udp[5] = (uint8_t)(size - 34);
}

struct tx_queue {
	struct netvsc *n;
	uint32_t index, size;
	uint64_t count;
	uint8_t frame[MAX_FRAME];
};

static void *tx_queue_thread(void *arg)
{
	struct tx_queue *q = arg;
	hv_posix_bind_vp(px, q->index);
	send_frames(q->n, q->frame, q->size, q->count);
	return NULL;
}

static void bench_tx(uint64_t count, uint32_t size, uint32_t queues)
{
	struct netvsc *n = open_nic_with(queues, count_rx);
	if (!n)
		return;
	static struct tx_queue q[8];
	CHECK(queues >= 1 && queues <= 8 && queues <= hv_posix_vp_count(px) &&
		      size >= 60 && size <= MAX_FRAME,
	      "bench-tx: %u queues of %u-byte frames", queues, size);
	if (failures)
		return;
	if (queues == 1) {
		bench_frame(q[0].frame);
		send_frames(n, q[0].frame, size, count);
		sends_completed(n);
		return;
	}
	/* A flow per queue, each found on the channel it is for. */
	uint16_t sport = 1024;
	for (uint32_t i = 0; i < queues; i++) {
		q[i] = (struct tx_queue){n, i, size, count, {0}};
		do
			udp_frame(q[i].frame, size, sport++);
		while (netvsc_tx_queue(n, q[i].frame, size) != i && sport < 60000);
		CHECK(netvsc_tx_queue(n, q[i].frame, size) == i, "no flow for channel %u", i);
	}
	pthread_t t[8];
	for (uint32_t i = 0; i < queues; i++)
		pthread_create(&t[i], NULL, tx_queue_thread, &q[i]);
	for (uint32_t i = 0; i < queues; i++)
		pthread_join(t[i], NULL);
	sends_completed(n);
}

static void bench_rx_frames(uint64_t count)
{
	struct netvsc *n = open_nic_with(1, count_rx);
	if (!n)
		return;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(&bench_rx, __ATOMIC_RELAXED) < count) {
		nanosleep(&(struct timespec){0, 1000000}, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 120)
			break;
	}
	CHECK(bench_rx >= count, "%lu of %lu frames", (unsigned long)bench_rx,
	      (unsigned long)count);
}

/* ---- mini_ip over netvsc ---- */

/* Frames from netvsc's rx callback (the client's channel work) wait here
 * for the test thread, which owns the stack. A full queue drops: TCP sends
 * again. */
#define IPQ_FRAMES 512
static struct {
	uint32_t len[IPQ_FRAMES];
	uint8_t data[IPQ_FRAMES][MINI_IP_FRAME_MAX];
	uint32_t head, count;
	uint64_t dropped;
} ipq;
static struct netvsc *ip_nic;
static struct mini_ip ip;
static bool ip_spin; /* benchmarks: idle rounds yield instead of napping */

static void ip_rx(void *ctx, const void *frame, size_t len)
{
	(void)ctx;
	pthread_mutex_lock(&lock);
	if (len <= MINI_IP_FRAME_MAX && ipq.count < IPQ_FRAMES) {
		uint32_t slot = (ipq.head + ipq.count++) % IPQ_FRAMES;
		memcpy(ipq.data[slot], frame, len);
		ipq.len[slot] = (uint32_t)len;
	} else {
		ipq.dropped++;
	}
	pthread_mutex_unlock(&lock);
}

static int ip_send(void *ctx, const void *frame, size_t len)
{
	(void)ctx;
	/* Benchmarks batch as a stack's xmit_more does: frames wait in the
	 * send section until the end of the round (ip_pump flushes). */
	return send_frame(ip_nic, frame, (uint32_t)len, ip_spin ? NETVSC_SEND_MORE : 0);
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Frames into the stack and its timeouts; a short nap when idle. */
static void ip_pump(void)
{
	static uint8_t frame[MINI_IP_FRAME_MAX];
	bool any = false;
	for (;;) {
		pthread_mutex_lock(&lock);
		uint32_t len = 0;
		if (ipq.count) {
			len = ipq.len[ipq.head];
			memcpy(frame, ipq.data[ipq.head], len);
			ipq.head = (ipq.head + 1) % IPQ_FRAMES;
			ipq.count--;
		}
		pthread_mutex_unlock(&lock);
		if (!len)
			break;
		mini_ip_input(&ip, frame, len);
		any = true;
	}
	mini_ip_poll(&ip, now_ms());
	if (ip_spin)
		netvsc_flush(ip_nic);
	if (any)
		return;
	if (ip_spin)
		sched_yield();
	else
		nanosleep(&(struct timespec){0, 200000}, NULL);
}

/* Pumps until cond holds or 20 s pass. */
static bool ip_wait(bool (*cond)(void))
{
	uint64_t deadline = now_ms() + 20000;
	while (!cond() && now_ms() < deadline)
		ip_pump();
	return cond();
}

static bool ip_configured(void) { return mini_ip_configured(&ip); }
static uint32_t pings_wanted;
static bool ip_pings_answered(void) { return ip.ping_replies >= pings_wanted; }
static bool ip_established(void) { return ip.tcp.state == MINI_TCP_ESTABLISHED; }
static bool ip_tcp_done(void) { return mini_ip_tcp_done(&ip); }

static uint8_t stream_byte(size_t i)
{
	return (uint8_t)(i * 131u + (i >> 11));
}

/* Sends `bytes` of the stream and takes as many back (the peer echoes);
 * true if every byte came back as sent. */
static bool ip_echo_out(size_t bytes)
{
	uint8_t chunk[4096];
	size_t sent = 0, got = 0;
	bool intact = true;
	uint64_t deadline = now_ms() + 30000;
	while (got < bytes && now_ms() < deadline) {
		while (sent < bytes) {
			size_t n = bytes - sent < sizeof(chunk) ? bytes - sent : sizeof(chunk);
			for (size_t i = 0; i < n; i++)
				chunk[i] = stream_byte(sent + i);
			size_t took = mini_ip_tcp_send(&ip, chunk, n);
			sent += took;
			if (took < n)
				break;
		}
		size_t n;
		while ((n = mini_ip_tcp_recv(&ip, chunk, sizeof(chunk))) > 0) {
			for (size_t i = 0; i < n; i++)
				intact &= chunk[i] == stream_byte(got + i);
			got += n;
		}
		ip_pump();
	}
	CHECK(got == bytes, "%zu of %zu bytes echoed", got, bytes);
	return intact && got == bytes;
}

/* Echoes whatever the peer sends until its FIN; returns the byte count. */
static size_t ip_echo_in(void)
{
	uint8_t chunk[4096];
	size_t echoed = 0;
	uint64_t deadline = now_ms() + 30000;
	while (!mini_ip_tcp_eof(&ip) && now_ms() < deadline) {
		size_t n = mini_ip_tcp_recv(&ip, chunk, sizeof(chunk));
		for (size_t off = 0; off < n && now_ms() < deadline;) {
			off += mini_ip_tcp_send(&ip, chunk + off, n - off);
			ip_pump();
		}
		echoed += n;
		if (!n)
			ip_pump();
	}
	return echoed;
}

/* The NIC opened for mini_ip and an address from libslirp's DHCP. */
static bool ip_start(void)
{
	ip_nic = open_nic_with(1, ip_rx);
	if (!ip_nic)
		return false;
	mini_ip_init(&ip, &(struct mini_ip_link){.send = ip_send}, mac);
	mini_ip_poll(&ip, now_ms());

	CHECK(mini_ip_dhcp_start(&ip) == 0, "DHCP start");
	CHECK(ip_wait(ip_configured), "no address by DHCP");
	CHECK(ip.addr == mini_ip_addr("10.0.2.15"), "address %#x", ip.addr);
	CHECK(ip.gateway == mini_ip_addr("10.0.2.2"), "gateway %#x", ip.gateway);
	CHECK(ip.dns == mini_ip_addr("10.0.2.3"), "DNS %#x", ip.dns);
	return mini_ip_configured(&ip);
}

static void ip_report(void)
{
	printf("# netvsc guest: ip %u frames in, %u out, %u refused by the stack, %u queue drops\n",
	       (unsigned)ip.frames_in, (unsigned)ip.frames_out, (unsigned)ip.bad,
	       (unsigned)ipq.dropped);
}

static void ip_scenario(uint16_t echo_port, uint16_t listen_port, size_t bytes)
{
	if (!ip_start())
		return;

	/* One at a time: the first waits for ARP, which holds one packet. */
	for (uint16_t seq = 1; seq <= 3; seq++) {
		CHECK(mini_ip_ping(&ip, ip.gateway, seq) == 0, "ping %u", seq);
		pings_wanted = seq;
		CHECK(ip_wait(ip_pings_answered), "%u of %u echo replies", ip.ping_replies, seq);
	}

	CHECK(mini_ip_tcp_connect(&ip, ip.gateway, echo_port, 40000) == 0, "connect");
	CHECK(ip_wait(ip_established), "no connection to the host's port %u", echo_port);
	CHECK(ip_echo_out(bytes), "the stream to the host did not come back intact");
	mini_ip_tcp_close(&ip);
	CHECK(ip_wait(ip_tcp_done), "the outbound connection did not close");

	CHECK(mini_ip_tcp_listen(&ip, listen_port) == 0, "listen");
	printf("# netvsc guest: listening on %u\n", listen_port);
	fflush(stdout);
	CHECK(ip_wait(ip_established), "no connection through the port forward");
	size_t echoed = ip_echo_in();
	CHECK(echoed == bytes, "echoed %zu of %zu bytes from the host", echoed, bytes);
	mini_ip_tcp_close(&ip);
	CHECK(ip_wait(ip_tcp_done), "the inbound connection did not close");
	CHECK(!ip.tcp.reset, "a connection was reset");
	ip_report();
}

/* hvkit-bench net through libslirp: `bytes` to the host's TCP sink on
 * sink_port (via 10.0.2.2) as fast as the stack goes, then the same
 * amount taken from the host through the port forward to listen_port,
 * discarded. The host times both. */
static void bench_tcp(uint16_t sink_port, uint16_t listen_port, size_t bytes)
{
	if (!ip_start())
		return;
	ip_spin = true;
	CHECK(mini_ip_tcp_connect(&ip, ip.gateway, sink_port, 40000) == 0, "connect");
	CHECK(ip_wait(ip_established), "no connection to the host's sink on %u", sink_port);
	static uint8_t chunk[64 * 1024];
	memset(chunk, 0x5a, sizeof(chunk));
	size_t sent = 0;
	uint64_t deadline = now_ms() + 120000;
	while (sent < bytes && ip.tcp.state == MINI_TCP_ESTABLISHED && now_ms() < deadline) {
		size_t left = bytes - sent;
		sent += mini_ip_tcp_send(&ip, chunk, left < sizeof(chunk) ? left : sizeof(chunk));
		ip_pump();
	}
	CHECK(sent == bytes, "sent %zu of %zu bytes", sent, bytes);
	mini_ip_tcp_close(&ip);
	CHECK(ip_wait(ip_tcp_done), "the outbound connection did not close");

	CHECK(mini_ip_tcp_listen(&ip, listen_port) == 0, "listen");
	CHECK(ip_wait(ip_established), "no connection through the port forward");
	size_t got = 0;
	deadline = now_ms() + 120000;
	while (!mini_ip_tcp_eof(&ip) && now_ms() < deadline) {
		size_t n;
		while ((n = mini_ip_tcp_recv(&ip, chunk, sizeof(chunk))) > 0)
			got += n;
		ip_pump();
	}
	CHECK(got == bytes, "took %zu of %zu bytes from the host", got, bytes);
	/* The count back: the host's proof that the stream reached us. */
	uint64_t count = got;
	for (size_t off = 0; off < sizeof(count) && now_ms() < deadline; ip_pump())
		off += mini_ip_tcp_send(&ip, (uint8_t *)&count + off, sizeof(count) - off);
	mini_ip_tcp_close(&ip);
	CHECK(ip_wait(ip_tcp_done), "the inbound connection did not close");
	ip_report();
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *s = argv[1];
	bool is_frames = !strcmp(s, "frames") && argc > 5;
	uint32_t mtu = is_frames ? (uint32_t)strtoul(argv[3], NULL, 0) : 1500;
	seen = calloc(MAX_SEQ, 1);
	int err = bring_up(mtu);
	if (err) {
		fprintf(stderr, "netvsc guest: bring-up failed: %s\n", strerror(-err));
		return 1;
	}
	if (is_frames)
		frames((uint32_t)strtoul(argv[2], NULL, 16), mtu, (uint32_t)atoi(argv[4]),
		       (uint32_t)atoi(argv[5]));
	else if (!strcmp(s, "link"))
		link();
	else if (!strcmp(s, "hibernate") && argc > 2)
		hibernate((uint32_t)atoi(argv[2]));
	else if (!strcmp(s, "bench-tx") && argc > 3)
		bench_tx(strtoull(argv[2], NULL, 0), (uint32_t)atoi(argv[3]),
			 argc > 4 ? (uint32_t)atoi(argv[4]) : 1);
	else if (!strcmp(s, "ip") && argc > 4)
		ip_scenario((uint16_t)atoi(argv[2]), (uint16_t)atoi(argv[3]),
			    strtoul(argv[4], NULL, 0));
	else if (!strcmp(s, "bench-tcp") && argc > 4)
		bench_tcp((uint16_t)atoi(argv[2]), (uint16_t)atoi(argv[3]),
			  strtoul(argv[4], NULL, 0));
	else if (!strcmp(s, "bench-rx") && argc > 2)
		bench_rx_frames(strtoull(argv[2], NULL, 0));
	else {
		fprintf(stderr, "netvsc guest: unknown scenario '%s'\n", s);
		return 2;
	}
	vmbus_client_unload(client);
	netvsc_driver_free(drv);
	vmbus_client_free(client);
	hv_posix_disconnect(px);
	free(seen);
	return failures ? 1 : 0;
}
