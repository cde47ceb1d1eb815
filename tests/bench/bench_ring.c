/* SPDX-License-Identifier: MIT */
/*
 * hvkit-bench ring: one producer thread and one consumer thread on a
 * mirrored ring, each pinned to its own CPU, the producer saturating.
 *
 * Both sides follow the real protocol: the producer batches puts and
 * publishes once per batch; the consumer drains with the interrupt mask
 * set, commits every few packets, and when it runs dry polls for a while
 * (--poll-us) before unmasking and sleeping; a producer that finds the ring
 * full polls likewise, then arms pending_send_sz for a quarter of the ring
 * (hysteresis, so that it is not woken for every packet) and sleeps. A
 * "signal" is a signal-needed answer from the engine (what would be an
 * HvSignalEvent or an interrupt); here it posts a semaphore.
 *
 * The reference bound is single-thread memcpy of the same block size over a
 * working set the size of the ring (source and destination each that big),
 * the copy the writer does into a ring it cycles through.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "ring_buffer.h"
#include "ring_map.h"


struct ring_run {
	/* Each end on its own cache lines, as if in two address spaces: the
	 * ends update their state on every packet. */
	_Alignas(128) struct vmbus_ring_writer w;
	_Alignas(128) struct vmbus_ring_reader r;
	_Alignas(128) int stop; /* set by the producer when time is up */
	uint32_t payload;
	uint32_t batch;        /* packets per publish */
	uint32_t commit_bytes; /* consumed bytes per commit */
	double seconds;
	sem_t data_ready, space_ready;
	uint64_t sent, received;
	uint64_t producer_sleeps, consumer_sleeps;
	uint64_t bad;         /* packets that came out wrong */
	uint64_t poll_ns;     /* how long a side polls before it sleeps */
	int cpu_producer, cpu_consumer;
};

/* A spinning side backs off a little between looks, so that it does not
 * pull the shared header line away from the other side on every cycle. */
static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Polls cond for up to run->poll_ns; true as soon as it holds. */
static bool poll_until(struct ring_run *run, bool (*cond)(struct ring_run *, void *), void *arg)
{
	uint64_t deadline = 0;

	for (uint32_t spin = 0;; spin++) {
		if (cond(run, arg))
			return true;
		cpu_relax();
		if (spin % 64 == 0) {
			uint64_t now = bench_now_ns();
			if (!deadline)
				deadline = now + run->poll_ns;
			else if (now >= deadline)
				return false;
		}
	}
}

static bool producer_has_room(struct ring_run *run, void *needed)
{
	return vmbus_ring_writer_free(&run->w) > *(uint32_t *)needed;
}

static bool consumer_has_data(struct ring_run *run, void *unused)
{
	(void)unused;
	return vmbus_ring_reader_available(&run->r) != 0;
}

static void *producer(void *arg)
{
	struct ring_run *run = arg;
	uint8_t *src = malloc(run->payload);
	struct vmbus_ring_iov iov = {src, run->payload};
	uint64_t deadline = bench_now_ns() + (uint64_t)(run->seconds * 1e9);
	uint64_t seq = 0;

	bench_pin(run->cpu_producer);
	memset(src, 0x5A, run->payload);
	while (bench_now_ns() < deadline) {
		int err = 0;
		uint32_t needed = 0;
		for (uint32_t k = 0; k < run->batch; k++) {
			err = vmbus_ring_put_inband(&run->w, seq, 0, &iov, 1, &needed);
			if (err)
				break;
			seq++;
		}
		if (vmbus_ring_publish(&run->w))
			sem_post(&run->data_ready);
		if (err != -EAGAIN)
			continue;
		/* Full: poll for a while, then ask to be woken once a quarter of
		 * the ring is free. */
		if (poll_until(run, producer_has_room, &needed))
			continue;
		uint32_t want = run->w.mem.size / 4 > needed ? run->w.mem.size / 4 : needed;
		if (!vmbus_ring_writer_want_space(&run->w, want)) {
			run->producer_sleeps++;
			sem_wait(&run->space_ready);
		}
		vmbus_ring_writer_space_done(&run->w);
	}
	run->sent = seq;
	__atomic_store_n(&run->stop, 1, __ATOMIC_RELEASE);
	sem_post(&run->data_ready);
	free(src);
	return NULL;
}

static void *consumer(void *arg)
{
	struct ring_run *run = arg;
	uint32_t buflen = run->payload + 64;
	uint8_t *buf = malloc(buflen);
	uint64_t expect = 0;
	uint32_t uncommitted = 0;

	bench_pin(run->cpu_consumer);
	vmbus_ring_reader_mask(&run->r);
	for (;;) {
		struct vmbus_packet pkt;
		if (vmbus_ring_recv(&run->r, buf, buflen, &pkt) == 0) {
			if (pkt.trans_id != expect || pkt.data_len < run->payload)
				run->bad++;
			expect++;
			/* Give space back a slice of the ring at a time: often
			 * enough that the producer never waits on it, rarely
			 * enough that the commit's fence is amortized. */
			uncommitted += pkt.len + VMBUS_RING_TRAILER_SIZE;
			if (uncommitted >= run->commit_bytes) {
				uncommitted = 0;
				if (vmbus_ring_commit(&run->r))
					sem_post(&run->space_ready);
			}
			continue;
		}
		if (poll_until(run, consumer_has_data, NULL))
			continue;
		/* About to sleep: everything consumed must be visible first. */
		uncommitted = 0;
		if (vmbus_ring_commit(&run->r))
			sem_post(&run->space_ready);
		if (__atomic_load_n(&run->stop, __ATOMIC_ACQUIRE) &&
		    vmbus_ring_reader_available(&run->r) == 0)
			break;
		if (!vmbus_ring_reader_unmask(&run->r)) {
			run->consumer_sleeps++;
			sem_wait(&run->data_ready);
		}
		vmbus_ring_reader_mask(&run->r);
	}
	run->received = expect;
	free(buf);
	return NULL;
}

struct ring_result {
	double packets_per_s;
	double gbytes_per_s; /* payload bytes */
	double signals_per_1000;
	uint64_t packets, sleeps, bad;
};

struct ring_params {
	size_t ring_bytes;
	uint32_t batch, commit_bytes;
	double seconds;
	uint64_t poll_ns;
};

static int run_ring(const struct ring_params *prm, uint32_t payload, struct ring_result *res)
{
	struct vmbus_ring_mapping map;
	struct vmbus_ring_mem mem;
	struct ring_run *run = aligned_alloc(128, sizeof(*run));
	int fd, err;
	pthread_t prod, cons;

	if (!run)
		return -ENOMEM;
	memset(run, 0, sizeof(*run));
	err = vmbus_ring_map_new(prm->ring_bytes, &fd, &map, &mem);
	if (err) {
		free(run);
		return err;
	}
	vmbus_ring_writer_attach(&run->w, &mem);
	vmbus_ring_reader_attach(&run->r, &mem);
	run->payload = payload;
	run->batch = prm->batch;
	run->commit_bytes = prm->commit_bytes;
	run->seconds = prm->seconds;
	run->poll_ns = prm->poll_ns;
	run->cpu_producer = bench_cpu(0);
	run->cpu_consumer = bench_cpu(1);
	sem_init(&run->data_ready, 0, 0);
	sem_init(&run->space_ready, 0, 0);

	uint64_t t0 = bench_now_ns();
	pthread_create(&cons, NULL, consumer, run);
	pthread_create(&prod, NULL, producer, run);
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	double elapsed = (double)(bench_now_ns() - t0) / 1e9;

	uint64_t signals = run->w.stats.signals + run->r.stats.signals;
	res->packets = run->received;
	res->packets_per_s = (double)run->received / elapsed;
	res->gbytes_per_s = res->packets_per_s * payload / 1e9;
	res->signals_per_1000 = run->received ? 1000.0 * (double)signals / (double)run->received : 0;
	res->sleeps = run->producer_sleeps + run->consumer_sleeps;
	res->bad = run->bad + (run->sent != run->received);

	sem_destroy(&run->data_ready);
	sem_destroy(&run->space_ready);
	vmbus_ring_unmap(&map);
	close(fd);
	free(run);
	return 0;
}

struct memcpy_run {
	size_t block, working_set;
	double seconds;
	double gbytes_per_s;
};

/* Single-thread memcpy of `block` bytes at a time over source and
 * destination regions of `working_set` bytes each, on the producer's CPU. */
static void *memcpy_thread(void *arg)
{
	struct memcpy_run *m = arg;
	uint8_t *src = aligned_alloc(4096, m->working_set);
	uint8_t *dst = aligned_alloc(4096, m->working_set);
	uint64_t bytes = 0;
	size_t off = 0;

	bench_pin(bench_cpu(0));
	memset(src, 1, m->working_set);
	memset(dst, 2, m->working_set);
	uint64_t t0 = bench_now_ns(), deadline = t0 + (uint64_t)(m->seconds * 1e9), now;
	do {
		for (int i = 0; i < 256; i++) {
			memcpy(dst + off, src + off, m->block);
			bench_clobber(dst + off);
			off += m->block;
			if (off + m->block > m->working_set)
				off = 0;
		}
		bytes += 256 * m->block;
		now = bench_now_ns();
	} while (now < deadline);
	free(src);
	free(dst);
	m->gbytes_per_s = (double)bytes / ((double)(now - t0) / 1e9) / 1e9;
	return NULL;
}

static double memcpy_gbytes_per_s(size_t block, size_t working_set, double seconds)
{
	struct memcpy_run m = {block, working_set, seconds, 0};
	pthread_t t;

	pthread_create(&t, NULL, memcpy_thread, &m);
	pthread_join(t, NULL);
	return m.gbytes_per_s;
}

/*
 * The plain reference: a two-thread copy ring of fixed slots with no
 * framing, no validation and no signaling, head and tail on their own
 * cache lines, published every 32 slots. What moving the bytes alone costs.
 */
struct plain_ring {
	uint8_t *slots;
	uint32_t slot_size, nslots;
	double seconds;
	_Alignas(128) uint64_t head;
	_Alignas(128) uint64_t tail;
	_Alignas(128) int stop;
	uint64_t received;
};

static void *plain_producer(void *arg)
{
	struct plain_ring *p = arg;
	uint8_t *src = malloc(p->slot_size);
	uint64_t head = 0, tail_seen = 0;
	uint64_t deadline = bench_now_ns() + (uint64_t)(p->seconds * 1e9);

	bench_pin(bench_cpu(0));
	memset(src, 0x5A, p->slot_size);
	while (bench_now_ns() < deadline) {
		for (int k = 0; k < 32; k++) {
			if (head - tail_seen == p->nslots) {
				tail_seen = __atomic_load_n(&p->tail, __ATOMIC_ACQUIRE);
				if (head - tail_seen == p->nslots)
					break;
			}
			memcpy(p->slots + (head % p->nslots) * p->slot_size, src, p->slot_size);
			head++;
		}
		__atomic_store_n(&p->head, head, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	free(src);
	return NULL;
}

static void *plain_consumer(void *arg)
{
	struct plain_ring *p = arg;
	uint8_t *dst = malloc(p->slot_size);
	uint64_t tail = 0, head_seen = 0;

	bench_pin(bench_cpu(1));
	for (;;) {
		if (tail == head_seen) {
			head_seen = __atomic_load_n(&p->head, __ATOMIC_ACQUIRE);
			if (tail == head_seen) {
				if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE) &&
				    tail == __atomic_load_n(&p->head, __ATOMIC_ACQUIRE))
					break;
				continue;
			}
		}
		memcpy(dst, p->slots + (tail % p->nslots) * p->slot_size, p->slot_size);
		bench_clobber(dst);
		if (++tail % 32 == 0)
			__atomic_store_n(&p->tail, tail, __ATOMIC_RELEASE);
	}
	p->received = tail;
	free(dst);
	return NULL;
}

static double plain_ring_packets_per_s(size_t data_bytes, uint32_t payload, double seconds)
{
	struct plain_ring *p = aligned_alloc(128, sizeof(*p));
	pthread_t prod, cons;

	memset(p, 0, sizeof(*p));
	p->slot_size = payload;
	p->nslots = (uint32_t)(data_bytes / payload);
	p->slots = aligned_alloc(4096, data_bytes);
	p->seconds = seconds;
	memset(p->slots, 0, data_bytes);
	uint64_t t0 = bench_now_ns();
	pthread_create(&cons, NULL, plain_consumer, p);
	pthread_create(&prod, NULL, plain_producer, p);
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	double rate = (double)p->received / ((double)(bench_now_ns() - t0) / 1e9);
	free(p->slots);
	free(p);
	return rate;
}

/* Round trip of one cache line between the two CPUs: the cost every index
 * publication pays. Shown because it changes with where the host places
 * this machine's vCPUs. */
struct pingpong {
	_Alignas(128) uint64_t ping;
	_Alignas(128) uint64_t pong;
};

#define PINGPONG_ROUNDS 200000

static void *pong_thread(void *arg)
{
	struct pingpong *pp = arg;

	bench_pin(bench_cpu(1));
	for (uint64_t i = 1; i <= PINGPONG_ROUNDS; i++) {
		while (__atomic_load_n(&pp->ping, __ATOMIC_ACQUIRE) != i)
			;
		__atomic_store_n(&pp->pong, i, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void *ping_thread(void *arg)
{
	struct pingpong *pp = arg;

	bench_pin(bench_cpu(0));
	for (uint64_t i = 1; i <= PINGPONG_ROUNDS; i++) {
		__atomic_store_n(&pp->ping, i, __ATOMIC_RELEASE);
		while (__atomic_load_n(&pp->pong, __ATOMIC_ACQUIRE) != i)
			;
	}
	return NULL;
}

static double cache_line_round_trip_ns(void)
{
	struct pingpong *pp = aligned_alloc(128, sizeof(*pp));
	pthread_t a, b;

	memset(pp, 0, sizeof(*pp));
	uint64_t t0 = bench_now_ns();
	pthread_create(&b, NULL, pong_thread, pp);
	pthread_create(&a, NULL, ping_thread, pp);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	double ns = (double)(bench_now_ns() - t0) / PINGPONG_ROUNDS;
	free(pp);
	return ns;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: hvkit-bench ring [--seconds S] [--ring-kib N] [--batch N] [--poll-us U]\n"
		"  --seconds S   time per measurement (default 1)\n"
		"  --ring-kib N  ring data area in KiB (default 512)\n"
		"  --batch N     packets per publish (default 32)\n"
		"  --commit-kib N  consumer commits after this much (default: ring / 8)\n"
		"  --poll-us U   how long a side polls before sleeping (default 50)\n"
		"  --repeat N    measurements per point; the median is shown (default 3)\n");
}

int bench_ring_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"seconds", required_argument, NULL, 's'},
		{"ring-kib", required_argument, NULL, 'r'},
		{"batch", required_argument, NULL, 'b'},
		{"poll-us", required_argument, NULL, 'p'},
		{"commit-kib", required_argument, NULL, 'c'},
		{"repeat", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	double seconds = 1;
	unsigned long ring_kib = 512, batch = 32, commit_kib = 0, poll_us = 50, repeat = 3;
	int c;

	while ((c = getopt_long(argc, argv, "s:r:b:c:p:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			seconds = atof(optarg);
			break;
		case 'r':
			ring_kib = strtoul(optarg, NULL, 0);
			break;
		case 'b':
			batch = strtoul(optarg, NULL, 0);
			break;
		case 'c':
			commit_kib = strtoul(optarg, NULL, 0);
			break;
		case 'p':
			poll_us = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			repeat = strtoul(optarg, NULL, 0);
			break;
		default:
			usage();
			return c == 'h' ? 0 : 2;
		}
	}
	if (seconds <= 0 || ring_kib < 8 || ring_kib % 4 || ring_kib > (1u << 20) || batch == 0 || commit_kib >= ring_kib ||
	    repeat == 0 || repeat > 99) {
		fprintf(stderr, "hvkit-bench ring: bad option value\n");
		usage();
		return 2;
	}
	size_t data_bytes = ring_kib * 1024;
	size_t ring_bytes = data_bytes + HV_PAGE_SIZE;

	if (commit_kib == 0)
		commit_kib = ring_kib / 8;
	struct ring_params prm = {ring_bytes, (uint32_t)batch, (uint32_t)(commit_kib * 1024),
				  seconds, (uint64_t)poll_us * 1000};
	printf("ring benchmark: %lu KiB ring (mirrored), publish every %lu packets, commit every "
	       "%lu KiB,\n  poll %lu us, median of %lu x %.1f s, producer on CPU %d, consumer on "
	       "CPU %d\n",
	       ring_kib, batch, commit_kib, poll_us, repeat, seconds, bench_cpu(0), bench_cpu(1));
	printf("memcpy bound: one thread, 4096-byte blocks, %lu KiB source and %lu KiB "
	       "destination,\n  measured right before each ring run; ratios are medians of "
	       "those pairs\n",
	       ring_kib, ring_kib);
	printf("cache-line round trip between the two CPUs: %.0f ns\n", cache_line_round_trip_ns());
	printf("plain ring: two threads copying fixed slots, no framing, checks or signals\n\n");
	printf("%8s %14s %8s %8s %10s %8s %14s %9s %7s\n", "payload", "packets/s", "GB/s",
	       "bound", "of bound", "sig/1k", "plain ring/s", "of plain", "sleeps");

	static const uint32_t payloads[] = {64, 1024, 4096};
	int failures = 0;
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		double pps[99], signals[99], bounds[99], of_bound[99], plain[99], of_plain[99];
		uint64_t sleeps = 0, bad = 0;
		for (unsigned long k = 0; k < repeat; k++) {
			struct ring_result res;
			bounds[k] = memcpy_gbytes_per_s(4096, data_bytes, seconds);
			int err = run_ring(&prm, payloads[i], &res);
			if (err) {
				fprintf(stderr, "hvkit-bench ring: %s\n", strerror(-err));
				return 1;
			}
			plain[k] = plain_ring_packets_per_s(data_bytes, payloads[i], seconds);
			pps[k] = res.packets_per_s;
			signals[k] = res.signals_per_1000;
			of_bound[k] = res.gbytes_per_s / bounds[k];
			of_plain[k] = res.packets_per_s / plain[k];
			sleeps += res.sleeps;
			bad += res.bad;
		}
		int n = (int)repeat;
		double p = bench_median(pps, n);
		printf("%8u %14.0f %8.2f %8.2f %9.0f%% %8.2f %14.0f %8.0f%% %7llu%s\n", payloads[i],
		       p, p * payloads[i] / 1e9, bench_median(bounds, n),
		       100.0 * bench_median(of_bound, n), bench_median(signals, n),
		       bench_median(plain, n), 100.0 * bench_median(of_plain, n),
		       (unsigned long long)sleeps, bad ? "  DATA ERROR" : "");
		failures += bad != 0;
	}
	return failures ? 1 : 0;
}
