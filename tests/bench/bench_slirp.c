/* SPDX-License-Identifier: MIT */
/*
 * hvkit-bench net, the libslirp part: frames through the user-mode backend
 * to a TCP sink on the host's loopback. The guest side is the mini IP
 * stack (tests/net/mini_ip.h) on the test thread, busy-polling; libslirp
 * runs on the backend's own thread; a host thread reads the sink socket.
 * Prints MiB/s of payload and frames/s each way; figures, not a test.
 *
 *   bench_slirp_main: [MiB] (default 64)
 *
 * hvkit-bench net runs it last; tests/net also builds it standalone as
 * build/tests/net/slirp-bench.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "mini_ip_env.h"

struct sink {
	int listener;
	uint64_t want, got;
	uint64_t done_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *sink_thread(void *arg)
{
	struct sink *s = arg;
	int fd = accept(s->listener, NULL, NULL);
	if (fd < 0)
		return NULL;
	static char buf[256 * 1024];
	ssize_t n;
	while (__atomic_load_n(&s->got, __ATOMIC_RELAXED) < s->want &&
	       (n = read(fd, buf, sizeof(buf))) > 0)
		__atomic_add_fetch(&s->got, (uint64_t)n, __ATOMIC_RELAXED);
	__atomic_store_n(&s->done_ns, now_ns(), __ATOMIC_RELEASE);
	close(fd);
	return NULL;
}

static int slirp_send(void *be, const uint8_t *frame, uint32_t len)
{
	return netvsp_slirp_send(be, frame, len);
}

static void slirp_kick(void *be)
{
	netvsp_slirp_kick(be);
}

/* The harness's round without its idle nap. */
static void spin(struct mini_env *e)
{
	if (!mini_env_feed(e))
		sched_yield();
}

int bench_slirp_main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 64;
	if (!mib || mib > 4096) {
		fprintf(stderr, "usage: %s [MiB 1..4096]\n", argv[0]);
		return 2;
	}
	static struct mini_env e;
	const uint8_t mac[6] = {0x00, 0x15, 0x5d, 0x00, 0x00, 0x01};
	mini_env_init(&e, mac);
	char why[200];
	struct netvsp_slirp_opts o = {0};
	struct netvsp_slirp *slirp = netvsp_slirp_new(&o, mini_env_rx, NULL, &e, why, sizeof(why));
	if (!slirp) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	e.send = slirp_send;
	e.kick = slirp_kick;
	e.be = slirp;

	struct sink s = {.want = mib << 20};
	uint16_t port;
	s.listener = mini_env_listen_loopback(0, &port);
	if (s.listener < 0) {
		perror("sink");
		return 1;
	}
	pthread_t t;
	pthread_create(&t, NULL, sink_thread, &s);

	mini_ip_dhcp_start(&e.ip);
	while (!mini_ip_configured(&e.ip))
		spin(&e);
	mini_ip_tcp_connect(&e.ip, mini_ip_addr("10.0.2.2"), port, 40000);
	while (e.ip.tcp.state != MINI_TCP_ESTABLISHED)
		spin(&e);

	static uint8_t chunk[64 * 1024];
	memset(chunk, 0x5a, sizeof(chunk));
	uint64_t sent = 0, frames_out = e.ip.frames_out, frames_in = e.ip.frames_in;
	uint64_t t0 = now_ns();
	while (!__atomic_load_n(&s.done_ns, __ATOMIC_ACQUIRE)) {
		if (sent < s.want) {
			uint64_t left = s.want - sent;
			sent += mini_ip_tcp_send(&e.ip, chunk,
						 left < sizeof(chunk) ? (size_t)left : sizeof(chunk));
		}
		spin(&e);
	}
	double secs = (double)(s.done_ns - t0) / 1e9;
	frames_out = e.ip.frames_out - frames_out;
	frames_in = e.ip.frames_in - frames_in;
	printf("  mini_ip -> libslirp -> 127.0.0.1 TCP sink: %llu MiB in %.2f s\n",
	       (unsigned long long)mib, secs);
	printf("  %10.1f MiB/s payload   %9.0f frames/s out   %9.0f frames/s in (ACKs)\n",
	       (double)mib / secs, (double)frames_out / secs, (double)frames_in / secs);
	pthread_join(t, NULL);
	close(s.listener);
	netvsp_slirp_free(slirp);
	mini_env_fini(&e);
	return 0;
}

#ifdef BENCH_SLIRP_STANDALONE
int main(int argc, char **argv)
{
	return bench_slirp_main(argc, argv);
}
#endif
