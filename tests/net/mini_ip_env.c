/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
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

int mini_env_listen_loopback(int flags, uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | flags, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1) ||
	    getsockname(fd, (struct sockaddr *)&a, &al)) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		errno = err;
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

int mini_env_rx(void *ctx, const uint8_t *frame, uint32_t len)
{
	struct mini_env *e = ctx;
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

uint32_t mini_env_rx_burst(void *ctx, const uint8_t *const *frames, const uint32_t *lens,
			   uint32_t count, int *errs, uint32_t flags)
{
	(void)flags;
	struct mini_env *e = ctx;
	__atomic_add_fetch(&e->bursts, 1, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < count; i++) {
		errs[i] = mini_env_rx(ctx, frames[i], lens[i]);
		if (errs[i] == -ENOBUFS)
			return i;
	}
	return count;
}

static int env_send(void *ctx, const void *frame, size_t len)
{
	struct mini_env *e = ctx;
	return e->send(e->be, frame, (uint32_t)len);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool mini_env_feed(struct mini_env *e)
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
	e->kick(e->be); /* held frames, if any, are tried again */
	return any;
}

void mini_env_pump(struct mini_env *e)
{
	if (!mini_env_feed(e))
		usleep(1000);
}

static uint8_t pattern(size_t i, unsigned salt)
{
	return (uint8_t)((i * 131u + salt) ^ (i >> 9));
}

void mini_env_exchange(struct mini_env *e, int fd, size_t len)
{
	uint8_t *got_host = malloc(len), *got_guest = malloc(len), *src_g = malloc(len),
		*src_h = malloc(len);
	for (size_t i = 0; i < len; i++) {
		src_g[i] = pattern(i, 7);
		src_h[i] = pattern(i, 99);
	}
	size_t g_sent = 0, g_got = 0, h_sent = 0, h_got = 0;
	bool h_closed = false;
	for (int i = 0; i < MINI_ENV_ROUNDS * 2; i++) {
		if (g_sent < len)
			g_sent += mini_ip_tcp_send(&e->ip, src_g + g_sent, len - g_sent);
		else if (!e->ip.tcp.close_wanted)
			mini_ip_tcp_close(&e->ip);
		g_got += mini_ip_tcp_recv(&e->ip, got_guest + g_got, len - g_got);
		ssize_t n;
		if (h_sent < len) {
			n = send(fd, src_h + h_sent, len - h_sent, MSG_NOSIGNAL);
			if (n > 0)
				h_sent += (size_t)n;
		} else if (!h_closed) {
			shutdown(fd, SHUT_WR);
			h_closed = true;
		}
		if (h_got < len) {
			n = recv(fd, got_host + h_got, len - h_got, 0);
			if (n > 0)
				h_got += (size_t)n;
		}
		mini_env_pump(e);
		if (g_got == len && h_got == len && mini_ip_tcp_done(&e->ip))
			break;
	}
	assert_int_equal(g_got, len);
	assert_int_equal(h_got, len);
	assert_memory_equal(got_host, src_g, len);
	assert_memory_equal(got_guest, src_h, len);
	assert_true(mini_ip_tcp_eof(&e->ip));
	assert_true(mini_ip_tcp_done(&e->ip));
	assert_false(e->ip.tcp.reset);
	/* The host sees the guest's FIN as end of stream. */
	char c;
	ssize_t n = -1;
	for (int i = 0; i < MINI_ENV_ROUNDS && n != 0; i++) {
		n = recv(fd, &c, 1, 0);
		mini_env_pump(e);
	}
	assert_int_equal(n, 0);
	free(got_host);
	free(got_guest);
	free(src_g);
	free(src_h);
}


void mini_env_init(struct mini_env *e, const uint8_t mac[6])
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->lock, NULL);
	struct mini_ip_link link = {.send = env_send, .ctx = e};
	mini_ip_init(&e->ip, &link, mac);
	mini_ip_poll(&e->ip, now_ms());
}

void mini_env_fini(struct mini_env *e)
{
	frameq_free(&e->in);
	pthread_mutex_destroy(&e->lock);
}
