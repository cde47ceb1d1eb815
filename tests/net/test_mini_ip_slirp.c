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

#include "frameq.h"
#include "mini_ip.h"
#include "netvsp_backend.h"

#define STREAM (200u * 1024u)
#define ROUNDS 20000 /* 1 ms each at most: a stuck test fails, it does not hang */

struct env {
	struct netvsp_slirp *slirp;
	pthread_mutex_t lock;
	struct frameq in; /* frames slirp sent, for the stack */
	uint32_t refuse;  /* answer -ENOBUFS this many times (hold path) */
	struct mini_ip ip;
	uint16_t fwd_port;
};

static int env_rx(void *ctx, const uint8_t *frame, uint32_t len)
{
	struct env *e = ctx;
	pthread_mutex_lock(&e->lock);
	int err = 0;
	if (e->refuse) {
		e->refuse--;
		err = -ENOBUFS;
	} else {
		err = frameq_push(&e->in, frame, len);
	}
	pthread_mutex_unlock(&e->lock);
	return err;
}

static int env_send(void *ctx, const void *frame, size_t len)
{
	struct env *e = ctx;
	return netvsp_slirp_send(e->slirp, frame, (uint32_t)len);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One round: frames to the stack, its timeouts, a short nap if idle. */
static void pump(struct env *e)
{
	bool any = false;
	for (;;) {
		uint8_t buf[2048];
		uint32_t len = 0;
		pthread_mutex_lock(&e->lock);
		const uint8_t *f = frameq_peek(&e->in, &len);
		if (f && len <= sizeof(buf))
			memcpy(buf, f, len);
		frameq_pop(&e->in);
		pthread_mutex_unlock(&e->lock);
		if (!f)
			break;
		if (len <= sizeof(buf))
			mini_ip_input(&e->ip, buf, len);
		any = true;
	}
	mini_ip_poll(&e->ip, now_ms());
	netvsp_slirp_kick(e->slirp); /* held frames, if any, are tried again */
	if (!any)
		usleep(1000);
}

/* A free TCP port on 127.0.0.1 (the kernel's pick, released at once). */
static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	pthread_mutex_init(&e->lock, NULL);
	e->fwd_port = free_port();
	struct netvsp_slirp_opts o = {.nfwd = 1};
	assert_int_equal(netvsp_hostfwd_parse("tcp:127.0.0.1:0-:7000", &o.fwd[0]), 0);
	o.fwd[0].host_port = e->fwd_port;
	char why[200];
	e->slirp = netvsp_slirp_new(&o, env_rx, e, why, sizeof(why));
	if (!e->slirp)
		fail_msg("%s", why);
	struct mini_ip_link link = {.send = env_send, .ctx = e};
	const uint8_t mac[6] = {0x00, 0x15, 0x5d, 0x00, 0x00, 0x01};
	mini_ip_init(&e->ip, &link, mac);
	mini_ip_poll(&e->ip, now_ms());
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	netvsp_slirp_free(e->slirp);
	frameq_free(&e->in);
	pthread_mutex_destroy(&e->lock);
	free(e);
	return 0;
}

static void dhcp(struct env *e)
{
	mini_ip_dhcp_start(&e->ip);
	for (int i = 0; i < ROUNDS && !mini_ip_configured(&e->ip); i++)
		pump(e);
	assert_true(mini_ip_configured(&e->ip));
}

static void dhcp_and_ping(void **state)
{
	struct env *e = *state;
	e->refuse = 3; /* the first frames find the "guest" full: held, then delivered */
	dhcp(e);
	assert_int_equal(e->ip.addr, mini_ip_addr("10.0.2.15"));
	assert_int_equal(e->ip.gateway, mini_ip_addr("10.0.2.2"));
	assert_int_equal(e->ip.dns, mini_ip_addr("10.0.2.3"));
	assert_int_equal(e->ip.mask, 0xffffff00u);
	for (uint16_t seq = 1; seq <= 3; seq++) {
		uint32_t before = e->ip.ping_replies;
		assert_int_equal(mini_ip_ping(&e->ip, e->ip.gateway, seq), 0);
		for (int i = 0; i < ROUNDS && e->ip.ping_replies == before; i++)
			pump(e);
		assert_int_equal(e->ip.ping_replies, before + 1);
		assert_int_equal(e->ip.ping_last_seq, seq);
	}
	struct netvsp_backend_stats st;
	netvsp_slirp_get_stats(e->slirp, &st);
	assert_true(st.tx_frames >= 5); /* DISCOVER, REQUEST, ARP, 3 pings */
	assert_true(st.rx_frames >= 5);
	assert_int_equal(st.tx_dropped, 0);
	assert_int_equal(e->ip.bad, 0);
}

static uint8_t pattern(size_t i, unsigned salt)
{
	return (uint8_t)((i * 131u + salt) ^ (i >> 9));
}

/* Moves STREAM bytes each way between the stack's connection and the host
 * socket fd (non-blocking), then closes both. */
static void exchange(struct env *e, int fd)
{
	uint8_t *got_host = malloc(STREAM), *got_guest = malloc(STREAM), *src_g = malloc(STREAM),
		*src_h = malloc(STREAM);
	for (size_t i = 0; i < STREAM; i++) {
		src_g[i] = pattern(i, 7);
		src_h[i] = pattern(i, 99);
	}
	size_t g_sent = 0, g_got = 0, h_sent = 0, h_got = 0;
	bool h_closed = false;
	for (int i = 0; i < ROUNDS * 2; i++) {
		if (g_sent < STREAM)
			g_sent += mini_ip_tcp_send(&e->ip, src_g + g_sent, STREAM - g_sent);
		else if (!e->ip.tcp.close_wanted)
			mini_ip_tcp_close(&e->ip);
		g_got += mini_ip_tcp_recv(&e->ip, got_guest + g_got, STREAM - g_got);
		ssize_t n;
		if (h_sent < STREAM) {
			n = send(fd, src_h + h_sent, STREAM - h_sent, MSG_NOSIGNAL);
			if (n > 0)
				h_sent += (size_t)n;
		} else if (!h_closed) {
			shutdown(fd, SHUT_WR);
			h_closed = true;
		}
		if (h_got < STREAM) {
			n = recv(fd, got_host + h_got, STREAM - h_got, 0);
			if (n > 0)
				h_got += (size_t)n;
		}
		pump(e);
		if (g_got == STREAM && h_got == STREAM && mini_ip_tcp_done(&e->ip))
			break;
	}
	assert_int_equal(g_got, STREAM);
	assert_int_equal(h_got, STREAM);
	assert_memory_equal(got_host, src_g, STREAM);
	assert_memory_equal(got_guest, src_h, STREAM);
	assert_true(mini_ip_tcp_eof(&e->ip));
	assert_true(mini_ip_tcp_done(&e->ip));
	assert_false(e->ip.tcp.reset);
	/* The host sees the guest's FIN as end of stream. */
	char c;
	ssize_t n = -1;
	for (int i = 0; i < ROUNDS && n != 0; i++) {
		n = recv(fd, &c, 1, 0);
		pump(e);
	}
	assert_int_equal(n, 0);
	free(got_host);
	free(got_guest);
	free(src_g);
	free(src_h);
}

static void tcp_to_host(void **state)
{
	struct env *e = *state;
	dhcp(e);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
	/* 10.0.2.2 is the host's loopback, as in QEMU. */
	assert_int_equal(mini_ip_tcp_connect(&e->ip, mini_ip_addr("10.0.2.2"), ntohs(a.sin_port),
					     40000),
			 0);
	int fd = -1;
	for (int i = 0; i < ROUNDS && fd < 0; i++) {
		fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
		pump(e);
	}
	assert_true(fd >= 0);
	for (int i = 0; i < ROUNDS && e->ip.tcp.state != MINI_TCP_ESTABLISHED; i++)
		pump(e);
	assert_int_equal(e->ip.tcp.state, MINI_TCP_ESTABLISHED);
	exchange(e, fd);
	close(fd);
	close(ls);
}

static void tcp_from_host_by_hostfwd(void **state)
{
	struct env *e = *state;
	dhcp(e);
	assert_int_equal(mini_ip_tcp_listen(&e->ip, 7000), 0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(e->fwd_port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	assert_true(r == 0 || errno == EINPROGRESS);
	for (int i = 0; i < ROUNDS && e->ip.tcp.state != MINI_TCP_ESTABLISHED; i++)
		pump(e);
	assert_int_equal(e->ip.tcp.state, MINI_TCP_ESTABLISHED);
	assert_int_equal(e->ip.tcp.rip, mini_ip_addr("10.0.2.2"));
	exchange(e, fd);
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
	assert_int_equal(e->ip.addr, mini_ip_addr("10.0.2.15"));
	struct netvsp_backend_stats st;
	netvsp_slirp_get_stats(e->slirp, &st);
	assert_int_equal(st.tx_dropped, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(dhcp_and_ping, setup, teardown),
		cmocka_unit_test_setup_teardown(tcp_to_host, setup, teardown),
		cmocka_unit_test_setup_teardown(tcp_from_host_by_hostfwd, setup, teardown),
		cmocka_unit_test_setup_teardown(garbage_frames_dropped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
