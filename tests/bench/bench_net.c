/* SPDX-License-Identifier: MIT */
/*
 * hvkit-bench net: frames through the synthetic NIC in the process
 * partition, 64- and 1500-byte frames, both ways:
 *
 *   guest -> sink:   the guest (hvkit-test-netvsc-guest bench-tx) sends as
 *                    fast as netvsc lets it; netvsp hands each frame to the
 *                    loopback backend as a sink. Timed on the host from the
 *                    first frame netvsp counts to the last.
 *   source -> guest: a host thread (hvkit-bench scale: one per queue)
 *                    pushes frames into netvsp (netvsp_receive_burst, 32
 *                    frames a call, saying more follow, retrying while
 *                    the guest's receive sections are all taken); the
 *                    guest (bench-rx) copies them out in netvsc's rx
 *                    callback. Timed from the first frame accepted until
 *                    the guest completed the last.
 *
 * The bound is the same frames copied between two threads over a plain
 * memcpy ring (one copy in, one copy out, as netvsc and netvsp each copy
 * once), on the same machine. Printed, not asserted.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_net.h"
#include "machine.h"
#include "mini_ip_env.h"

#define RING_SLOTS 256
#define SLOT 2048

/* ---- The bound: a memcpy SPSC ring between two threads ---- */

struct spsc {
	uint8_t (*slots)[SLOT];
	uint32_t head __attribute__((aligned(64)));
	uint32_t tail __attribute__((aligned(64)));
	uint32_t size;
	uint64_t count;
};

static void *consume(void *arg)
{
	struct spsc *r = arg;
	static uint8_t out[SLOT];
	bench_pin(bench_cpu(1));
	for (uint64_t i = 0; i < r->count; i++) {
		uint32_t t = __atomic_load_n(&r->tail, __ATOMIC_RELAXED);
		while (__atomic_load_n(&r->head, __ATOMIC_ACQUIRE) == t)
			sched_yield(); /* the cores are shared: let the producer run */
		memcpy(out, r->slots[t % RING_SLOTS], r->size);
		bench_clobber(out);
		__atomic_store_n(&r->tail, t + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void *produce(void *arg)
{
	struct spsc *r = arg;
	uint8_t frame[SLOT];
	memset(frame, 0x5a, sizeof(frame));
	bench_pin(bench_cpu(0));
	for (uint64_t i = 0; i < r->count; i++) {
		uint32_t h = __atomic_load_n(&r->head, __ATOMIC_RELAXED);
		while (h - __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) == RING_SLOTS)
			sched_yield();
		memcpy(r->slots[h % RING_SLOTS], frame, r->size);
		__atomic_store_n(&r->head, h + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Producer and consumer pinned to two different CPUs, as the guest's and
 * the host's threads are when they run at once: unpinned, the scheduler
 * sometimes puts both on one CPU, where the ring stays in that core's
 * cache and the "bound" measured 19.5 M frames/s at 1500 B one run and
 * 10.5 M the next. */
static double bound_fps(uint32_t size, uint64_t count)
{
	struct spsc r = {.size = size, .count = count};
	r.slots = aligned_alloc(64, (size_t)RING_SLOTS * SLOT);
	pthread_t prod, cons;
	uint64_t t0 = bench_now_ns();
	pthread_create(&cons, NULL, consume, &r);
	pthread_create(&prod, NULL, produce, &r);
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	uint64_t t1 = bench_now_ns();
	free(r.slots);
	return (double)count * 1e9 / (double)(t1 - t0);
}

/* ---- Through netvsc and netvsp ---- */

/* A guest with a VP per queue of the NIC, so its channels go to VPs of
 * their own. */
static struct machine *start_with(const char *guest, char **gargv, struct netvsp_nic_opts *nic)
{
	struct machine_config cfg = {
		.cpus = nic->queues,
		.memory = 64 << 20,
		.guest_path = guest,
		.guest_argv = gargv,
		.nics = nic,
		.nic_count = 1,
		.vmbus = {0},
	};
	struct machine *m = NULL;
	int err = machine_start(&cfg, &m, NULL, 0);
	if (err) {
		fprintf(stderr, "hvkit-bench net: cannot start %s: %s\n", guest, strerror(-err));
		return NULL;
	}
	return m;
}

static struct machine *start(const char *guest, char **gargv, uint32_t queues)
{
	struct netvsp_nic_opts nic = {.backend = NETVSP_BACKEND_SINK, .queues = queues};
	return start_with(guest, gargv, &nic);
}

static int finish(struct machine *m)
{
	int status = -1;
	int err = machine_wait(m, 180000, &status);
	machine_stop(m);
	if (err || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "hvkit-bench net: the guest failed\n");
		return -1;
	}
	return 0;
}

static void pause_us(long us)
{
	nanosleep(&(struct timespec){0, us * 1000}, NULL);
}

/* When a counter was first seen above zero (and at what), and when it
 * reached its goal. */
struct tx_watch {
	uint64_t goal, first, t0, t1;
};

/* Notes counter `frames` at time now; true once it reached its goal. */
static bool tx_watch(struct tx_watch *w, uint64_t frames, uint64_t now)
{
	if (!w->t0 && frames) {
		w->t0 = now;
		w->first = frames;
	}
	if (!w->t1 && frames >= w->goal)
		w->t1 = now;
	return w->t1 != 0;
}

static double tx_watch_fps(const struct tx_watch *w)
{
	return w->t1 > w->t0 ? (double)(w->goal - w->first) * 1e9 / (double)(w->t1 - w->t0) : -1;
}

/* The sink's counters, every 200 us, until every channel has its frames. */
static int watch_tx(struct netvsp *nic, uint32_t queues, struct tx_watch *total,
		    struct tx_watch *chan, uint64_t deadline)
{
	struct netvsp_stats st;
	while (bench_now_ns() < deadline) {
		netvsp_get_stats(nic, &st);
		uint64_t now = bench_now_ns();
		bool done = tx_watch(total, st.tx_frames, now);
		for (uint32_t q = 0; q < queues; q++)
			done &= tx_watch(&chan[q], st.chan_tx_frames[q], now);
		if (done)
			return 0;
		pause_us(200);
	}
	return -ETIMEDOUT;
}

int net_tx_run(const char *guest, uint32_t size, uint64_t count, uint32_t queues,
	       struct net_result *r)
{
	if (queues < 1 || queues > NET_RX_MAX_QUEUES)
		return -EINVAL;
	char n[32], s[32], q[16];
	snprintf(n, sizeof(n), "%llu", (unsigned long long)count);
	snprintf(s, sizeof(s), "%u", size);
	snprintf(q, sizeof(q), "%u", queues);
	char *gargv[] = {(char *)guest, "bench-tx", n, s, q, NULL};
	struct machine *m = start(guest, gargv, queues);
	if (!m)
		return -EIO;
	struct tx_watch total = {.goal = count * queues}, chan[NET_RX_MAX_QUEUES];
	for (uint32_t i = 0; i < queues; i++)
		chan[i] = (struct tx_watch){.goal = count};
	int err = watch_tx(machine_nic(m, 0), queues, &total, chan,
			   bench_now_ns() + 120000000000ull);
	if (finish(m))
		err = err ? err : -EIO;
	if (err)
		return err;
	r->total_fps = tx_watch_fps(&total);
	for (uint32_t i = 0; i < queues; i++)
		r->queue_fps[i] = tx_watch_fps(&chan[i]);
	return r->total_fps > 0 ? 0 : -EIO;
}

static double guest_to_sink(const char *guest, uint32_t size, uint64_t count)
{
	struct net_result r;
	return net_tx_run(guest, size, count, 1, &r) ? -1 : r.total_fps;
}

/* ---- Frames from the host to the guest: a source thread per queue ---- */

struct rx_source {
	struct netvsp *nic;
	uint32_t index, size, burst;
	uint64_t count, deadline;
	uint64_t t0, t1; /* its first frame accepted, its last */
	int err;
};

/* Flows a source rotates over, one a burst: a burst stays one
 * transfer-page packet on one channel, and over many bursts every source
 * spreads over every channel (netvsp picks a frame's channel by a hash of
 * its addresses). */
#define RX_FLOWS 16

/* Broadcast (the guest's filter takes it), a local EtherType, a source
 * address per flow. */
static void make_rx_frame(uint8_t frame[SLOT], uint32_t source, uint32_t flow)
{
	memset(frame, 0xff, 6);
	uint8_t src[6] = {0x02, 0x00, 0x00, 0x00, (uint8_t)source, (uint8_t)flow};
	memcpy(frame + 6, src, 6);
	frame[12] = 0x88;
	frame[13] = 0xb5;
	memset(frame + 14, 0xa5, SLOT - 14);
}

static void *push_frames(void *arg)
{
	struct rx_source *s = arg;
	uint8_t (*flows)[SLOT] = malloc(RX_FLOWS * SLOT);
	if (!flows) {
		s->err = -ENOMEM;
		return NULL;
	}
	for (uint32_t f = 0; f < RX_FLOWS; f++)
		make_rx_frame(flows[f], s->index, f);
	const uint8_t *frames[NETVSP_RX_BURST_MAX];
	uint32_t lens[NETVSP_RX_BURST_MAX];
	int errs[NETVSP_RX_BURST_MAX];
	for (uint32_t i = 0; i < NETVSP_RX_BURST_MAX; i++)
		lens[i] = s->size;
	uint64_t sent = 0;
	for (uint32_t spin = 0; sent < s->count; spin++) {
		if ((spin & 1023) == 0 && bench_now_ns() > s->deadline) {
			s->err = -ETIMEDOUT;
			break;
		}
		for (uint32_t i = 0; i < NETVSP_RX_BURST_MAX; i++)
			frames[i] = flows[spin % RX_FLOWS];
		uint32_t want = s->count - sent < s->burst ? (uint32_t)(s->count - sent) : s->burst;
		/* A backlog once the guest takes frames: more follows, the
		 * last burst says not (nor a call that may be followed by a
		 * wait for the guest to open the NIC). */
		uint32_t more = s->t0 && sent + want < s->count ? NETVSP_RX_MORE : 0;
		uint32_t took = netvsp_receive_burst(s->nic, frames, lens, want, errs, more);
		int bad = 0;
		for (uint32_t i = 0; i < took; i++)
			bad = errs[i] ? errs[i] : bad;
		if (bad && !s->t0) {
			pause_us(1000); /* the guest has not opened the NIC yet */
			continue;
		}
		if (bad) {
			fprintf(stderr, "hvkit-bench net: netvsp_receive: %s\n", strerror(-bad));
			s->err = bad;
			break;
		}
		if (took && !s->t0)
			s->t0 = bench_now_ns();
		sent += took;
		/* Short: the guest owns every section; give it the core to
		 * complete some (a real backend waits for rx_ready). With
		 * bursts a yield, not a sleep: 20 us asked is 60-80 us slept,
		 * and bursts refill the guest's 1024 sections faster than
		 * that. One frame a call (burst 1, as before bursts) sleeps:
		 * a source yielding there takes the lock per frame from the
		 * threads that complete, and the rate falls by a third. */
		if (took < want && s->burst > 1)
			sched_yield();
		else if (took < want)
			pause_us(20);
	}
	s->t1 = bench_now_ns();
	free(flows);
	return NULL;
}

/* Bursts of NETVSP_RX_BURST_MAX (HVKIT_BENCH_RX_BURST=1: one frame per
 * netvsp call, as before the burst API). */
static uint32_t rx_burst(void)
{
	const char *bs = getenv("HVKIT_BENCH_RX_BURST");
	uint32_t burst = bs ? (uint32_t)strtoul(bs, NULL, 0) : NETVSP_RX_BURST_MAX;
	return burst < 1 || burst > NETVSP_RX_BURST_MAX ? NETVSP_RX_BURST_MAX : burst;
}

/* Until the guest has opened all `queues` channels (the sub-channels
 * follow the primary), so no source starts on fewer. */
static bool wait_channels(struct netvsp *nic, uint32_t queues, uint64_t deadline)
{
	struct netvsp_stats st;
	for (;;) {
		netvsp_get_stats(nic, &st);
		if (st.open_channels >= queues)
			return true;
		if (bench_now_ns() > deadline)
			return false;
		pause_us(1000);
	}
}

/* Until the guest has completed every frame: the time it did. */
static uint64_t wait_rx_drained(struct netvsp *nic, uint64_t deadline)
{
	struct netvsp_stats st;
	uint64_t t;
	do {
		netvsp_get_stats(nic, &st);
		t = bench_now_ns();
		if (st.recv_in_flight)
			pause_us(100);
	} while (st.recv_in_flight && t < deadline);
	return t;
}

/* Starts a source per queue, waits for them and for the guest. */
static int run_sources(struct netvsp *nic, uint32_t size, uint64_t count, uint32_t queues,
		       uint64_t deadline, struct net_result *r)
{
	struct rx_source src[NET_RX_MAX_QUEUES];
	pthread_t threads[NET_RX_MAX_QUEUES];
	uint32_t started = 0, burst = rx_burst();
	for (uint32_t q = 0; q < queues; q++) {
		src[q] = (struct rx_source){.nic = nic, .index = q, .size = size, .burst = burst,
					    .count = count, .deadline = deadline};
		if (pthread_create(&threads[q], NULL, push_frames, &src[q]))
			break;
		started++;
	}
	int err = started == queues ? 0 : -EAGAIN;
	uint64_t first = UINT64_MAX;
	for (uint32_t q = 0; q < started; q++) {
		pthread_join(threads[q], NULL);
		if (!src[q].err && !src[q].t0)
			src[q].err = -ETIMEDOUT;
		err = err ? err : src[q].err;
		if (src[q].err)
			continue;
		first = src[q].t0 < first ? src[q].t0 : first;
		r->queue_fps[q] = (double)count * 1e9 / (double)(src[q].t1 - src[q].t0);
	}
	uint64_t end = wait_rx_drained(nic, deadline);
	if (!err)
		r->total_fps = (double)count * queues * 1e9 / (double)(end - first);
	return err;
}

int net_rx_run(const char *guest, uint32_t size, uint64_t count, uint32_t queues,
	       struct net_result *r)
{
	if (queues < 1 || queues > NET_RX_MAX_QUEUES)
		return -EINVAL;
	char n[32];
	snprintf(n, sizeof(n), "%llu", (unsigned long long)(count * queues));
	char *gargv[] = {(char *)guest, "bench-rx", n, NULL};
	struct machine *m = start(guest, gargv, queues);
	if (!m)
		return -EIO;
	struct netvsp *nic = machine_nic(m, 0);
	uint64_t deadline = bench_now_ns() + 120000000000ull;
	int err = wait_channels(nic, queues, deadline) ? 0 : -ETIMEDOUT;
	if (!err)
		err = run_sources(nic, size, count, queues, deadline, r);
	if (finish(m))
		err = err ? err : -EIO;
	return err;
}

static double source_to_guest(const char *guest, uint32_t size, uint64_t count)
{
	struct net_result r;
	return net_rx_run(guest, size, count, 1, &r) ? -1 : r.total_fps;
}

/* ---- Through netvsc and netvsp to libslirp ---- */

struct tcp_figures {
	double out_mib_s, in_mib_s;    /* payload each way */
	double out_fps, in_fps;        /* netvsp frames/s guest -> libslirp, back */
};

static double fps_between(const struct netvsp_stats *a, const struct netvsp_stats *b,
			  bool out, uint64_t ns)
{
	uint64_t frames = out ? b->tx_frames - a->tx_frames : b->rx_frames - a->rx_frames;
	return (double)frames * 1e9 / (double)ns;
}

/* The guest's stream into our sink: timed from its first byte to its last. */
static int sink_stream(struct machine *m, int listener, uint64_t bytes, struct tcp_figures *f)
{
	struct pollfd p = {listener, POLLIN, 0};
	if (poll(&p, 1, 60000) != 1)
		return -1;
	int fd = accept(listener, NULL, NULL);
	if (fd < 0)
		return -1;
	static uint8_t buf[256 * 1024];
	struct netvsp_stats a, b;
	uint64_t got = 0, t0 = 0;
	ssize_t n;
	while (got < bytes && (n = read(fd, buf, sizeof(buf))) > 0) {
		if (!t0) {
			t0 = bench_now_ns();
			netvsp_get_stats(machine_nic(m, 0), &a);
		}
		got += (uint64_t)n;
	}
	uint64_t ns = bench_now_ns() - t0;
	netvsp_get_stats(machine_nic(m, 0), &b);
	close(fd);
	if (got < bytes || !ns)
		return -1;
	f->out_mib_s = (double)got / (1 << 20) * 1e9 / (double)ns;
	f->out_fps = fps_between(&a, &b, true, ns);
	return 0;
}

/* One try at our stream into the guest through the forward: true when
 * the guest answered with the byte count (it listens only once its own
 * stream is over; before that libslirp accepts and the guest refuses). */
static bool source_stream_once(struct machine *m, uint16_t port, uint64_t bytes,
			       struct tcp_figures *f)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {60, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return false;
	}
	static uint8_t chunk[64 * 1024];
	memset(chunk, 0xa5, sizeof(chunk));
	struct netvsp_stats s0, s1;
	netvsp_get_stats(machine_nic(m, 0), &s0);
	uint64_t t0 = bench_now_ns(), sent = 0, count = 0;
	ssize_t n = 1;
	while (sent < bytes && n > 0) {
		uint64_t left = bytes - sent;
		n = send(fd, chunk, left < sizeof(chunk) ? (size_t)left : sizeof(chunk),
			 MSG_NOSIGNAL);
		sent += n > 0 ? (uint64_t)n : 0;
	}
	shutdown(fd, SHUT_WR);
	size_t have = 0;
	while (have < sizeof(count) &&
	       (n = recv(fd, (uint8_t *)&count + have, sizeof(count) - have, 0)) > 0)
		have += (size_t)n;
	uint64_t ns = bench_now_ns() - t0;
	netvsp_get_stats(machine_nic(m, 0), &s1);
	close(fd);
	if (sent < bytes || have < sizeof(count) || count != bytes)
		return false;
	f->in_mib_s = (double)bytes / (1 << 20) * 1e9 / (double)ns;
	f->in_fps = fps_between(&s0, &s1, false, ns);
	return true;
}

static int tcp_through_guest(const char *guest, uint64_t bytes, struct tcp_figures *f)
{
	uint16_t sink_port, fwd_port;
	int listener = mini_env_listen_loopback(0, &sink_port);
	int probe = mini_env_listen_loopback(0, &fwd_port);
	if (listener < 0 || probe < 0) {
		perror("hvkit-bench net: loopback listener");
		return -1;
	}
	close(probe); /* a free port for the forward; libslirp listens there */
	struct netvsp_nic_opts nic = {.backend = NETVSP_BACKEND_USER, .queues = 1};
	nic.user.nfwd = 1;
	nic.user.fwd[0] = (struct netvsp_hostfwd){.host_addr.s_addr = htonl(INADDR_LOOPBACK),
						  .host_port = fwd_port, .guest_port = 7000};
	char sp[8], n[24];
	snprintf(sp, sizeof(sp), "%u", sink_port);
	snprintf(n, sizeof(n), "%llu", (unsigned long long)bytes);
	char *gargv[] = {(char *)guest, "bench-tcp", sp, "7000", n, NULL};
	struct machine *m = start_with(guest, gargv, &nic);
	int err = m ? sink_stream(m, listener, bytes, f) : -1;
	close(listener);
	bool in = false;
	for (int i = 0; m && !err && !in && i < 200; i++) {
		in = source_stream_once(m, fwd_port, bytes, f);
		if (!in)
			pause_us(50000);
	}
	if (!m)
		return -1;
	return finish(m) || err || !in ? -1 : 0;
}

static void line(const char *what, uint32_t size, double fps, double bound)
{
	if (fps < 0) {
		printf("  %-34s %5u B   failed\n", what, size);
		return;
	}
	printf("  %-34s %5u B %12.0f frames/s %8.2f Gbit/s", what, size, fps,
	       fps * size * 8 / 1e9);
	if (bound > 0)
		printf("  %5.1f%% of bound", 100.0 * fps / bound);
	printf("\n");
	fflush(stdout);
}

/* The best of `runs` (the machine's cores are shared: the best run is
 * the one least disturbed). */
static double best(double (*fn)(const char *, uint32_t, uint64_t), const char *guest,
		   uint32_t size, uint64_t count, int runs)
{
	double b = -1;
	for (int i = 0; i < runs; i++) {
		double v = fn(guest, size, count);
		if (v < 0)
			return -1;
		if (v > b)
			b = v;
	}
	return b;
}

static double bound_run(const char *guest, uint32_t size, uint64_t count)
{
	(void)guest;
	return bound_fps(size, count);
}

static void tcp_line(const char *what, double mib_s, double fps)
{
	printf("  %-58s %8.1f MiB/s %6.2f Gbit/s %9.0f frames/s\n", what, mib_s,
	       mib_s * 8 * 1.048576 / 1000, fps);
}

/* TCP through the guest and libslirp, then libslirp alone; 1 if either failed. */
static int tcp_section(const char *guest)
{
	printf("\nuser-mode networking (libslirp), mini_ip TCP in the guest, 64 MiB each way, "
	       "best of 3:\n");
	fflush(stdout);
	struct tcp_figures tf, best_out = {0}, best_in = {0};
	int failed = 0;
	for (int i = 0; i < 3 && !failed; i++) {
		failed = tcp_through_guest(guest, 64u << 20, &tf) != 0;
		if (!failed && tf.out_mib_s > best_out.out_mib_s)
			best_out = tf;
		if (!failed && tf.in_mib_s > best_in.in_mib_s)
			best_in = tf;
	}
	if (best_out.out_mib_s > 0) { /* the best of the runs that finished */
		tcp_line("guest -> netvsc -> netvsp -> libslirp -> 127.0.0.1 TCP sink",
			 best_out.out_mib_s, best_out.out_fps);
		tcp_line("127.0.0.1 -> hostfwd -> libslirp -> netvsp -> netvsc -> guest",
			 best_in.in_mib_s, best_in.in_fps);
	} else {
		printf("  through the guest: failed\n");
	}
	printf("\nthe backend alone (mini_ip on libslirp in this process, no VMBus):\n");
	fflush(stdout);
	char *slirp_argv[] = {"slirp", "64", NULL};
	failed |= bench_slirp_main(2, slirp_argv) != 0;
	return failed;
}

int bench_net_main(int argc, char **argv)
{
	char guest[PATH_MAX];
	unsigned long count = 200000;
	int status_or_go = bench_guest_options(argc, argv, "net", "net/hvkit-test-netvsc-guest",
					       &count, guest, sizeof(guest));
	if (status_or_go >= 0)
		return status_or_go;
	/* The guest program takes its send-buffer size from here: 1024
	 * sections (6 MiB, Linux allows 15) rather than Linux's 192, so the
	 * frames in flight cover the host's wake-up latency. */
	setenv("HVKIT_NETVSC_SEND_SECTIONS", "1024", 0);

	printf("process partition, 1 VP, netvsc -> netvsp (NVSP 6.1, 1 channel), %lu frames, "
	       "%s send sections; best of 3 (bound: of 5)\n",
	       count, getenv("HVKIT_NETVSC_SEND_SECTIONS"));
	int failed = 0;
	/* HVKIT_BENCH_NET_ONLY=rx, tx or tcp: that part alone. */
	const char *only = getenv("HVKIT_BENCH_NET_ONLY");
	static const uint32_t sizes[] = {64, 1500};
	for (size_t i = 0; i < 2 && (!only || strcmp(only, "tcp")); i++) {
		uint32_t size = sizes[i];
		double bound = best(bound_run, guest, size, count * 5, 5);
		line("bound: two threads, memcpy ring", size, bound, 0);
		if (!only || !strcmp(only, "tx")) {
			double tx = best(guest_to_sink, guest, size, count, 3);
			line("guest -> netvsc -> netvsp -> sink", size, tx, bound);
			failed |= tx < 0;
		}
		if (!only || !strcmp(only, "rx")) {
			double rx = best(source_to_guest, guest, size, count, 3);
			line("source -> netvsp -> netvsc -> guest", size, rx, bound);
			failed |= rx < 0;
		}
	}
	if (!only || !strcmp(only, "tcp"))
		failed |= tcp_section(guest);
	return failed ? 1 : 0;
}
