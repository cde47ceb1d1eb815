/* SPDX-License-Identifier: MIT */
/*
 * The user-mode backend (libslirp) end to end, without VMBus: the mini IP
 * stack plays the guest over netvsp_slirp's frame interface. It gets its
 * address by DHCP, pings the gateway, opens a TCP stream to a server on
 * the host's 127.0.0.1 (through 10.0.2.2) and accepts one from the host
 * through a hostfwd port; bytes are checked both ways. Waiting is bounded
 * by rounds, not by the clock.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mini_ip_env.h"

#define STREAM (200u * 1024u)

/* A free TCP port on 127.0.0.1 (the kernel's pick, released at once). */
static uint16_t free_port(void)
{
	uint16_t port;
	int fd = mini_env_listen_loopback(0, &port);
	assert_true(fd >= 0);
	close(fd);
	return port;
}

struct env {
	struct mini_env m; /* first: the tests use e->m.ip through it */
	struct netvsp_slirp *slirp;
	uint16_t fwd_port;
};

static int slirp_send(void *be, const uint8_t *frame, uint32_t len)
{
	return netvsp_slirp_send(be, frame, len);
}

static void slirp_kick(void *be)
{
	netvsp_slirp_kick(be);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	const uint8_t mac[6] = {0x00, 0x15, 0x5d, 0x00, 0x00, 0x01};
	mini_env_init(&e->m, mac);
	e->fwd_port = free_port();
	struct netvsp_slirp_opts o = {.nfwd = 1};
	assert_int_equal(netvsp_hostfwd_parse("tcp:127.0.0.1:0-:7000", &o.fwd[0]), 0);
	o.fwd[0].host_port = e->fwd_port;
	char why[200];
	e->slirp = netvsp_slirp_new(&o, mini_env_rx, mini_env_rx_burst, &e->m, why, sizeof(why));
	if (!e->slirp)
		fail_msg("%s", why);
	e->m.send = slirp_send;
	e->m.kick = slirp_kick;
	e->m.be = e->slirp;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	netvsp_slirp_free(e->slirp);
	mini_env_fini(&e->m);
	free(e);
	return 0;
}

static void dhcp(struct env *e)
{
	mini_ip_dhcp_start(&e->m.ip);
	for (int i = 0; i < MINI_ENV_ROUNDS && !mini_ip_configured(&e->m.ip); i++)
		mini_env_pump(&e->m);
	assert_true(mini_ip_configured(&e->m.ip));
}

static void dhcp_and_ping(void **state)
{
	struct env *e = *state;
	e->m.refuse = 3; /* the first frames find the "guest" full: held, then delivered */
	dhcp(e);
	assert_int_equal(e->m.ip.addr, mini_ip_addr("10.0.2.15"));
	assert_int_equal(e->m.ip.gateway, mini_ip_addr("10.0.2.2"));
	assert_int_equal(e->m.ip.dns, mini_ip_addr("10.0.2.3"));
	assert_int_equal(e->m.ip.mask, 0xffffff00u);
	for (uint16_t seq = 1; seq <= 3; seq++) {
		uint32_t before = e->m.ip.ping_replies;
		assert_int_equal(mini_ip_ping(&e->m.ip, e->m.ip.gateway, seq), 0);
		for (int i = 0; i < MINI_ENV_ROUNDS && e->m.ip.ping_replies == before; i++)
			mini_env_pump(&e->m);
		assert_int_equal(e->m.ip.ping_replies, before + 1);
		assert_int_equal(e->m.ip.ping_last_seq, seq);
	}
	struct netvsp_backend_stats st;
	netvsp_slirp_get_stats(e->slirp, &st);
	assert_true(st.tx_frames >= 5); /* DISCOVER, REQUEST, ARP, 3 pings */
	assert_true(st.rx_frames >= 5);
	assert_int_equal(st.tx_dropped, 0);
	/* The held frames went back through the burst callback. */
	assert_true(__atomic_load_n(&e->m.bursts, __ATOMIC_RELAXED) >= 1);
	assert_int_equal(e->m.ip.bad, 0);
}

static void tcp_to_host(void **state)
{
	struct env *e = *state;
	dhcp(e);
	uint16_t port;
	int ls = mini_env_listen_loopback(SOCK_NONBLOCK, &port);
	assert_true(ls >= 0);
	/* 10.0.2.2 is the host's loopback, as in QEMU. */
	assert_int_equal(mini_ip_tcp_connect(&e->m.ip, mini_ip_addr("10.0.2.2"), port, 40000),
			 0);
	int fd = -1;
	for (int i = 0; i < MINI_ENV_ROUNDS && fd < 0; i++) {
		fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
		mini_env_pump(&e->m);
	}
	assert_true(fd >= 0);
	for (int i = 0; i < MINI_ENV_ROUNDS && e->m.ip.tcp.state != MINI_TCP_ESTABLISHED; i++)
		mini_env_pump(&e->m);
	assert_int_equal(e->m.ip.tcp.state, MINI_TCP_ESTABLISHED);
	mini_env_exchange(&e->m, fd, STREAM);
	close(fd);
	close(ls);
}

static void tcp_from_host_by_hostfwd(void **state)
{
	struct env *e = *state;
	dhcp(e);
	assert_int_equal(mini_ip_tcp_listen(&e->m.ip, 7000), 0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(e->fwd_port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	assert_true(r == 0 || errno == EINPROGRESS);
	for (int i = 0; i < MINI_ENV_ROUNDS && e->m.ip.tcp.state != MINI_TCP_ESTABLISHED; i++)
		mini_env_pump(&e->m);
	assert_int_equal(e->m.ip.tcp.state, MINI_TCP_ESTABLISHED);
	assert_int_equal(e->m.ip.tcp.rip, mini_ip_addr("10.0.2.2"));
	mini_env_exchange(&e->m, fd, STREAM);
	close(fd);
}

/* Frames libslirp cannot make sense of are dropped; the stack goes on. */
static void garbage_frames_dropped(void **state)
{
	struct env *e = *state;
	uint8_t junk[64];
	for (unsigned i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37);
	for (uint32_t len = 0; len <= sizeof(junk); len += 7)
		assert_int_equal(netvsp_slirp_send(e->slirp, junk, len), 0);
	uint8_t big[70000] = {0};
	assert_int_equal(netvsp_slirp_send(e->slirp, big, sizeof(big)), -EMSGSIZE);
	dhcp(e);
	assert_int_equal(e->m.ip.addr, mini_ip_addr("10.0.2.15"));
	struct netvsp_backend_stats st;
	netvsp_slirp_get_stats(e->slirp, &st);
	assert_int_equal(st.tx_dropped, 1);
}

/* A fake guest for frameq_retry: takes up to `room` frames a call and
 * records each call's size and flags. */
struct burst_log {
	uint32_t room;
	uint32_t calls, counts[8], flags[8];
};

static uint32_t logged_burst(void *ctx, const uint8_t *const *frames, const uint32_t *lens,
			     uint32_t count, int *errs, uint32_t flags)
{
	(void)frames;
	(void)lens;
	struct burst_log *l = ctx;
	assert_true(l->calls < 8);
	l->counts[l->calls] = count;
	l->flags[l->calls++] = flags;
	uint32_t took = count < l->room ? count : l->room;
	l->room -= took;
	for (uint32_t i = 0; i < took; i++)
		errs[i] = 0;
	if (took < count)
		errs[took] = -ENOBUFS;
	return took;
}

/* Held frames go back in bursts; each but the last says more follow, and a
 * burst short of room stops the retry with the rest still held. */
static void held_frames_retried_in_bursts(void **state)
{
	(void)state;
	struct frameq q = {0};
	struct netvsp_backend_stats st = {0};
	uint8_t frame[64] = {0};
	for (uint32_t i = 0; i < 2 * FRAMEQ_BURST + 6; i++)
		assert_int_equal(frameq_push(&q, frame, sizeof(frame)), 0);
	struct burst_log l = {.room = UINT32_MAX};
	frameq_retry(&q, NULL, logged_burst, &l, &st);
	assert_int_equal(l.calls, 3);
	const uint32_t counts[] = {FRAMEQ_BURST, FRAMEQ_BURST, 6};
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(l.counts[i], counts[i]);
		assert_int_equal(l.flags[i], i < 2 ? NETVSP_RX_BURST_MORE : 0);
	}
	assert_int_equal(q.count, 0);
	assert_int_equal(st.rx_frames, 2 * FRAMEQ_BURST + 6);

	for (uint32_t i = 0; i < 2 * FRAMEQ_BURST; i++)
		assert_int_equal(frameq_push(&q, frame, sizeof(frame)), 0);
	l = (struct burst_log){.room = 10};
	frameq_retry(&q, NULL, logged_burst, &l, &st);
	assert_int_equal(l.calls, 1);
	assert_int_equal(l.flags[0], NETVSP_RX_BURST_MORE);
	assert_int_equal(q.count, 2 * FRAMEQ_BURST - 10);
	frameq_free(&q);
}

/* One frame at a time, for a backend without the burst call. */
static int logged_one(void *ctx, const uint8_t *frame, uint32_t len)
{
	int err;
	return logged_burst(ctx, &frame, &len, 1, &err, 0) ? err : -ENOBUFS;
}

/* Frames gathered in a batch reach the guest in bursts of up to 32; what
 * it has no room for is held in order, and a later batch queues behind
 * those without a call. */
static void batched_frames_go_in_bursts(void **state)
{
	(void)state;
	struct frameq held = {0};
	struct netvsp_backend_stats st = {0};
	struct burst_log l = {.room = UINT32_MAX};
	struct frame_batch b;
	assert_int_equal(frame_batch_init(&b, 64, &held, NULL, logged_burst, &l, &st), 0);
	uint8_t f[64] = {0};
	for (uint8_t i = 0; i < FRAMEQ_BURST + 8; i++) {
		f[0] = i;
		frame_batch_add(&b, f, 14u + i);
	}
	frame_batch_flush(&b);
	assert_int_equal(l.calls, 2);
	assert_int_equal(l.counts[0], FRAMEQ_BURST);
	assert_int_equal(l.counts[1], 8);
	assert_int_equal(l.flags[0] | l.flags[1], 0);
	assert_int_equal(st.rx_frames, FRAMEQ_BURST + 8);
	assert_int_equal(held.count, 0);

	l = (struct burst_log){.room = 5};
	for (uint8_t i = 0; i < 10; i++) {
		f[0] = i;
		frame_batch_add(&b, f, 14);
	}
	frame_batch_flush(&b);
	for (uint8_t i = 10; i < 13; i++) {
		f[0] = i;
		memcpy(frame_batch_slot(&b), f, 14); /* filled in place */
		frame_batch_commit(&b, 14);
	}
	frame_batch_flush(&b);
	assert_int_equal(l.calls, 1);
	assert_int_equal(held.count, 8);
	for (uint8_t i = 5; i < 13; i++) {
		uint32_t len;
		const uint8_t *h = frameq_peek(&held, &len);
		assert_int_equal(len, 14);
		assert_int_equal(h[0], i);
		frameq_pop(&held);
	}
	frame_batch_free(&b);

	/* Without the burst call: frame by frame, the same holding. */
	l = (struct burst_log){.room = 2};
	assert_int_equal(frame_batch_init(&b, 64, &held, logged_one, NULL, &l, &st), 0);
	for (uint8_t i = 0; i < 4; i++)
		frame_batch_add(&b, f, 14);
	frame_batch_flush(&b);
	assert_int_equal(l.calls, 3); /* two taken, the third refused */
	assert_int_equal(held.count, 2);
	frame_batch_free(&b);
	frameq_free(&held);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(dhcp_and_ping, setup, teardown),
		cmocka_unit_test_setup_teardown(tcp_to_host, setup, teardown),
		cmocka_unit_test_setup_teardown(tcp_from_host_by_hostfwd, setup, teardown),
		cmocka_unit_test_setup_teardown(garbage_frames_dropped, setup, teardown),
		cmocka_unit_test(held_frames_retried_in_bursts),
		cmocka_unit_test(batched_frames_go_in_bursts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
