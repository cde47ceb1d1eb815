/* SPDX-License-Identifier: MIT */
/*
 * netvsc end to end: netvsp with the loopback backend (or user-mode
 * networking, for mini_ip over netvsc) on the host of the process
 * partition, netvsc in a guest process (hvkit-test-netvsc-guest).
 * The guest checks what it sees and exits 0 if all held; the host checks
 * netvsp's view (nothing refused).
 *
 *   test-netvsc GUEST
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include <cmocka.h>

#include "machine.h"
#include "mini_ip_env.h"

static const char *guest_path;

struct run {
	uint32_t cpus;
	bool user; /* user-mode networking (libslirp) instead of the loopback */
	struct netvsp_nic_opts nic;
	const char *args[6];
};

static struct machine *start(const struct run *r)
{
	char *argv[8] = {(char *)guest_path};
	for (int i = 0; i < 6 && r->args[i]; i++)
		argv[i + 1] = (char *)r->args[i];
	struct netvsp_nic_opts nic = r->nic;
	nic.backend = r->user ? NETVSP_BACKEND_USER : NETVSP_BACKEND_LOOPBACK;
	struct machine_config cfg = {
		.cpus = r->cpus ? r->cpus : 1,
		.memory = 64 << 20,
		.guest_path = guest_path,
		.guest_argv = argv,
		.nics = &nic,
		.nic_count = 1,
	};
	struct machine *m = NULL;
	assert_int_equal(machine_start(&cfg, &m, NULL, 0), 0);
	return m;
}

static void finish(struct machine *m)
{
	int status = -1;
	assert_int_equal(machine_wait(m, 120000, &status), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(machine_failed(m, NULL, 0));
	struct netvsp_stats st;
	netvsp_get_stats(machine_nic(m, 0), &st);
	assert_int_equal(st.bad_messages + st.bad_sections + st.bad_ranges + st.bad_completions +
				 st.bad_rndis + st.broken_rings,
			 0);
	machine_stop(m);
}

static void run_to_success(const struct run *r)
{
	finish(start(r));
}

static void negotiates_every_nvsp_version(void **state)
{
	(void)state;
	static const char *versions[] = {"60001", "60000", "50000", "40000", "30002", "2"};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		struct run r = {.nic = {.queues = 1, .max_version = (uint32_t)strtoul(versions[i], NULL, 16)},
				.args = {"frames", versions[i], "1500", "1", "97"}};
		run_to_success(&r);
	}
}

static void every_frame_size_both_ways(void **state)
{
	(void)state;
	struct run r = {.nic = {.queues = 1}, .args = {"frames", "60001", "1500", "1", "1"}};
	run_to_success(&r);
}

static void jumbo_frames(void **state)
{
	(void)state;
	/* 9000 bytes do not fit a 6144-byte send section: GPA-direct. */
	struct run r = {.nic = {.queues = 1, .mtu = 9000},
			.args = {"frames", "60001", "9000", "1", "7"}};
	run_to_success(&r);
}

/* Runs the guest to success; NIC 0's statistics at its end. */
static struct netvsp_stats nic_stats_after(const struct run *r)
{
	struct machine *m = start(r);
	int status = -1;
	assert_int_equal(machine_wait(m, 120000, &status), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	struct netvsp_stats st;
	netvsp_get_stats(machine_nic(m, 0), &st);
	machine_stop(m);
	assert_int_equal(st.bad_messages + st.bad_completions + st.bad_rndis, 0);
	return st;
}

static void several_subchannels(void **state)
{
	(void)state;
	struct run r = {.cpus = 2, .nic = {.queues = 4},
			.args = {"frames", "60001", "1500", "4", "3"}};
	assert_int_equal(nic_stats_after(&r).subchannels, 3);
}

/* The guest's bus suspend and resume with netvsc (hibernation.rst): the
 * same NIC object, its MAC, its channels and RSS again, frames before
 * and after; netvsp offered its sub-channel twice (the first went with
 * the primary's close). */
static void hibernation_keeps_the_nic(void **state)
{
	(void)state;
	struct run r = {.cpus = 2, .nic = {.queues = 2}, .args = {"hibernate", "2"}};
	assert_int_equal(nic_stats_after(&r).subchannels, 2);
}

static void link_down_and_up_reach_the_callback(void **state)
{
	(void)state;
	struct run r = {.nic = {.queues = 1}, .args = {"link"}};
	struct machine *m = start(&r);
	struct netvsp *nic = machine_nic(m, 0);
	struct netvsp_stats st;
	for (int i = 0; i < 2000; i++) {
		netvsp_get_stats(nic, &st);
		if (st.tx_frames >= 1)
			break;
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	assert_true(st.tx_frames >= 1);
	netvsp_set_link(nic, false);
	nanosleep(&(struct timespec){0, 50000000}, NULL);
	netvsp_set_link(nic, true);
	finish(m);
}

/* ---- mini_ip over netvsc, through libslirp ---- */

#define IP_STREAM_BYTES (256u << 10)
#define GUEST_LISTEN_PORT 7000

static uint8_t host_stream_byte(size_t i)
{
	return (uint8_t)(i * 7u + 3u + (i >> 10));
}

struct ip_host {
	int listener;         /* the echo server the guest connects to */
	uint16_t fwd_port;    /* host side of the port forward to the guest */
	size_t echoed;        /* bytes the echo server returned */
	bool echo_done;       /* atomic: the guest's outbound stream is over */
	size_t fwd_got;       /* bytes back from the guest through the forward */
	bool fwd_intact;
};

/* Echoes one connection until the guest's FIN. */
static void *echo_server(void *arg)
{
	struct ip_host *h = arg;
	struct pollfd p = {h->listener, POLLIN, 0};
	if (poll(&p, 1, 60000) == 1) {
		int fd = accept(h->listener, NULL, NULL);
		char buf[16384];
		ssize_t n;
		while (fd >= 0 && (n = recv(fd, buf, sizeof(buf), 0)) > 0) {
			for (ssize_t off = 0; off < n;) {
				ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
				if (w <= 0)
					break;
				off += w;
			}
			h->echoed += (size_t)n;
		}
		if (fd >= 0)
			close(fd);
	}
	__atomic_store_n(&h->echo_done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* One try through the port forward: the stream out, FIN, everything the
 * guest echoes back until its FIN. False if the guest was not listening
 * yet (libslirp accepted, the guest refused). */
static bool forward_once(struct ip_host *h)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(h->fwd_port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {30, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return false;
	}
	uint8_t *out = malloc(IP_STREAM_BYTES), *back = malloc(IP_STREAM_BYTES + 1);
	for (size_t i = 0; i < IP_STREAM_BYTES; i++)
		out[i] = host_stream_byte(i);
	size_t sent = 0, got = 0;
	ssize_t n = 1;
	/* Our writes and the guest's echo interleave: read whatever is there
	 * between writes so neither side's window stays shut. */
	while (n > 0 && got <= IP_STREAM_BYTES) {
		if (sent < IP_STREAM_BYTES) {
			n = send(fd, out + sent, IP_STREAM_BYTES - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0)
				sent += (size_t)n;
			else if (errno != EAGAIN)
				break;
			if (sent == IP_STREAM_BYTES)
				shutdown(fd, SHUT_WR);
		}
		n = recv(fd, back + got, IP_STREAM_BYTES + 1 - got,
			 sent < IP_STREAM_BYTES ? MSG_DONTWAIT : 0);
		if (n > 0)
			got += (size_t)n;
		else if (n < 0 && errno == EAGAIN)
			n = 1;
	}
	close(fd);
	h->fwd_got = got;
	h->fwd_intact = got == IP_STREAM_BYTES && !memcmp(out, back, got);
	free(out);
	free(back);
	return got > 0;
}

static void *forward_client(void *arg)
{
	struct ip_host *h = arg;
	/* The guest listens once its outbound stream is over. */
	for (int i = 0; i < 6000 && !__atomic_load_n(&h->echo_done, __ATOMIC_ACQUIRE); i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	for (int i = 0; i < 300 && !forward_once(h); i++)
		nanosleep(&(struct timespec){0, 100000000}, NULL);
	return NULL;
}

/* The guest (mini_ip on netvsc) gets 10.0.2.15 by DHCP from libslirp,
 * pings 10.0.2.2, streams to an echo server on the host's 127.0.0.1 and
 * echoes a stream the host sends through a port forward. */
static void ip_over_user_networking(void **state)
{
	(void)state;
	struct ip_host h = {0};
	uint16_t echo_port;
	h.listener = mini_env_listen_loopback(0, &echo_port);
	int probe = mini_env_listen_loopback(0, &h.fwd_port);
	assert_true(h.listener >= 0 && probe >= 0);
	close(probe); /* a free port for the forward; libslirp listens there */

	char echo_arg[8], listen_arg[8], bytes_arg[16];
	snprintf(echo_arg, sizeof(echo_arg), "%u", echo_port);
	snprintf(listen_arg, sizeof(listen_arg), "%u", GUEST_LISTEN_PORT);
	snprintf(bytes_arg, sizeof(bytes_arg), "%u", IP_STREAM_BYTES);
	struct run r = {.user = true, .nic = {.queues = 1, .user.nfwd = 1},
			.args = {"ip", echo_arg, listen_arg, bytes_arg}};
	assert_int_equal(netvsp_hostfwd_parse("tcp:127.0.0.1:0-:7000", &r.nic.user.fwd[0]), 0);
	r.nic.user.fwd[0].host_port = h.fwd_port;

	pthread_t echo, fwd;
	pthread_create(&echo, NULL, echo_server, &h);
	pthread_create(&fwd, NULL, forward_client, &h);
	struct machine *m = start(&r);
	pthread_join(echo, NULL);
	pthread_join(fwd, NULL);
	close(h.listener);
	assert_int_equal(h.echoed, IP_STREAM_BYTES);
	assert_int_equal(h.fwd_got, IP_STREAM_BYTES);
	assert_true(h.fwd_intact);
	finish(m);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test-netvsc GUEST\n");
		return 2;
	}
	guest_path = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(negotiates_every_nvsp_version),
		cmocka_unit_test(every_frame_size_both_ways),
		cmocka_unit_test(jumbo_frames),
		cmocka_unit_test(several_subchannels),
		cmocka_unit_test(hibernation_keeps_the_nic),
		cmocka_unit_test(link_down_and_up_reach_the_callback),
		cmocka_unit_test(ip_over_user_networking),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
