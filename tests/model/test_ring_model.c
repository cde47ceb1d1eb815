/* SPDX-License-Identifier: MIT */
/*
 * Model-based test of the ring engine: a producer thread and a consumer
 * thread, random packet shapes and sizes, random batching, commit cadence
 * and receive-buffer sizes, using the real signaling protocol (interrupt
 * mask, pending_send_sz) with semaphores standing in for interrupts.
 *
 * The reference model is the packet sequence itself: packet i is a pure
 * function of (seed, i), so the consumer regenerates what it must receive
 * and compares every field and byte. Any loss, duplicate, reordering or
 * corruption fails; a lost wakeup shows as a wait that times out.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../unit/ring_fixture.h"

/* No wakeup in a healthy run takes anywhere near this long. */
#define WAKEUP_TIMEOUT_SECONDS 20

struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	/* splitmix64 */
	uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(rng_next(r) % n);
}

enum shape { SHAPE_INBAND, SHAPE_COMPLETION, SHAPE_GPA, SHAPE_XFER };

#define MAX_RANGES 4
#define MAX_PFNS 8
#define MAX_XFER 8

/* What packet i is. */
struct spec {
	enum shape shape;
	uint32_t len;
	uint32_t nranges;
	struct vmbus_gpa_range_out ranges[MAX_RANGES];
	uint64_t pfns[MAX_RANGES][MAX_PFNS];
	struct vmbus_xfer_page_range xfer[MAX_XFER];
	uint8_t payload[];
};

struct model {
	struct ring_fixture f; /* its writer and reader sit on separate cache lines */
	uint64_t seed;
	uint64_t count;
	uint32_t max_payload;
	sem_t data_ready;  /* "interrupt" to the consumer */
	sem_t space_ready; /* "interrupt" to the producer */
	const char *failure; /* set by a thread that gave up */
	uint64_t failed_at;
	uint64_t producer_waits, consumer_waits;
};

static void make_spec(const struct model *m, uint64_t i, struct spec *s)
{
	struct rng r = {m->seed ^ (i * 0xD1B54A32D192ED03ull)};
	uint32_t pick = rng_below(&r, 100);

	s->shape = pick < 60 ? SHAPE_INBAND : pick < 75 ? SHAPE_COMPLETION
					    : pick < 90 ? SHAPE_GPA
							: SHAPE_XFER;
	/* Mostly small, sometimes large, now and then as big as allowed. */
	uint32_t size_pick = rng_below(&r, 100);
	s->len = size_pick < 70 ? rng_below(&r, 257)
		 : size_pick < 97 ? rng_below(&r, 4097)
				  : rng_below(&r, m->max_payload + 1);
	if (s->len > m->max_payload)
		s->len = m->max_payload;
	for (uint32_t b = 0; b < s->len; b++)
		s->payload[b] = (uint8_t)rng_next(&r);
	s->nranges = 0;
	if (s->shape == SHAPE_GPA) {
		s->nranges = 1 + rng_below(&r, MAX_RANGES);
		for (uint32_t k = 0; k < s->nranges; k++) {
			uint32_t offset = rng_below(&r, HV_PAGE_SIZE);
			uint32_t max_count = MAX_PFNS * HV_PAGE_SIZE - offset;
			uint32_t count = 1 + rng_below(&r, max_count);
			s->ranges[k] = (struct vmbus_gpa_range_out){count, offset, s->pfns[k]};
			for (uint32_t p = 0; p < MAX_PFNS; p++)
				s->pfns[k][p] = rng_next(&r) & VMBUS_GPA_MAX_PFN; /* any valid PFN */
		}
	} else if (s->shape == SHAPE_XFER) {
		s->nranges = 1 + rng_below(&r, MAX_XFER);
		for (uint32_t k = 0; k < s->nranges; k++)
			s->xfer[k] = (struct vmbus_xfer_page_range){(uint32_t)rng_next(&r),
								    (uint32_t)rng_next(&r)};
	}
}

static int put_spec(struct vmbus_ring_writer *w, uint64_t i, const struct spec *s,
		    uint32_t *needed)
{
	struct vmbus_ring_iov iov = {s->payload, s->len};

	switch (s->shape) {
	case SHAPE_INBAND:
		return vmbus_ring_put_inband(w, i, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, &iov,
					     1, needed);
	case SHAPE_COMPLETION:
		return vmbus_ring_put_completion(w, i, s->payload, s->len, needed);
	case SHAPE_GPA:
		return vmbus_ring_put_gpa_direct(w, i, s->ranges, s->nranges, s->payload,
						 s->len, needed);
	case SHAPE_XFER:
		return vmbus_ring_put_xfer_pages(w, i, (uint16_t)i, s->xfer, s->nranges,
						 s->payload, s->len, needed);
	}
	return -EINVAL;
}

static bool timed_wait(sem_t *sem)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAKEUP_TIMEOUT_SECONDS;
	while (sem_timedwait(sem, &deadline) != 0) {
		if (errno != EINTR)
			return false;
	}
	return true;
}

static void give_up(struct model *m, const char *why, uint64_t i)
{
	if (!__atomic_load_n(&m->failure, __ATOMIC_ACQUIRE)) {
		m->failed_at = i;
		__atomic_store_n(&m->failure, why, __ATOMIC_RELEASE);
	}
	/* Unblock the other thread so the test ends. */
	sem_post(&m->data_ready);
	sem_post(&m->space_ready);
}

static bool gave_up(struct model *m)
{
	return __atomic_load_n(&m->failure, __ATOMIC_ACQUIRE) != NULL;
}

static void *producer(void *arg)
{
	struct model *m = arg;
	struct vmbus_ring_writer *w = &m->f.w;
	struct rng choice = {m->seed * 3 + 1};
	struct spec *s = malloc(sizeof(*s) + m->max_payload);
	uint64_t i = 0;

	while (i < m->count && !gave_up(m)) {
		uint32_t batch = 1 + rng_below(&choice, 32);
		for (uint32_t k = 0; k < batch && i < m->count; k++) {
			uint32_t needed;
			make_spec(m, i, s);
			int err = put_spec(w, i, s, &needed);
			while (err == -EAGAIN && !gave_up(m)) {
				/* Publish what is queued, then wait for room. */
				if (vmbus_ring_publish(w))
					sem_post(&m->data_ready);
				if (!vmbus_ring_writer_want_space(w, needed)) {
					m->producer_waits++;
					if (!timed_wait(&m->space_ready))
						give_up(m, "producer: lost wakeup", i);
				}
				err = put_spec(w, i, s, &needed);
			}
			vmbus_ring_writer_space_done(w);
			if (err && !gave_up(m))
				give_up(m, "producer: put failed", i);
			i++;
		}
		if (vmbus_ring_publish(w))
			sem_post(&m->data_ready);
	}
	free(s);
	return NULL;
}

static bool check_packet(struct model *m, uint64_t i, const struct vmbus_packet *pkt,
			 struct spec *s)
{
	static const uint16_t types[] = {
		[SHAPE_INBAND] = VMBUS_PKT_DATA_INBAND,
		[SHAPE_COMPLETION] = VMBUS_PKT_COMP,
		[SHAPE_GPA] = VMBUS_PKT_DATA_USING_GPA_DIRECT,
		[SHAPE_XFER] = VMBUS_PKT_DATA_USING_XFER_PAGES,
	};

	make_spec(m, i, s);
	if (pkt->trans_id != i || pkt->type != types[s->shape])
		return false;
	if (pkt->data_len != ((s->len + 7) & ~7u) || memcmp(pkt->data, s->payload, s->len))
		return false;
	for (uint32_t b = s->len; b < pkt->data_len; b++)
		if (pkt->data[b] != 0)
			return false; /* padding */
	if (s->shape == SHAPE_GPA) {
		struct vmbus_gpa_range_iter it;
		struct vmbus_gpa_range_in r;
		if (vmbus_gpa_ranges_begin(pkt, &it))
			return false;
		for (uint32_t k = 0; k < s->nranges; k++) {
			if (vmbus_gpa_ranges_next(&it, &r) != 1 ||
			    r.byte_count != s->ranges[k].byte_count ||
			    r.byte_offset != s->ranges[k].byte_offset)
				return false;
			for (uint32_t p = 0; p < r.pfn_count; p++)
				if (vmbus_gpa_range_pfn(&r, p) != s->pfns[k][p])
					return false;
		}
		return vmbus_gpa_ranges_next(&it, &r) == 0;
	}
	if (s->shape == SHAPE_XFER) {
		struct vmbus_xfer_pages_in x;
		if (vmbus_xfer_pages_parse(pkt, &x) || x.range_count != s->nranges ||
		    x.pageset_id != (uint16_t)i)
			return false;
		for (uint32_t k = 0; k < s->nranges; k++) {
			struct vmbus_xfer_page_range r = vmbus_xfer_pages_range(&x, k);
			if (r.byte_count != s->xfer[k].byte_count ||
			    r.byte_offset != s->xfer[k].byte_offset)
				return false;
		}
	}
	return true;
}

static void *consumer(void *arg)
{
	struct model *m = arg;
	struct vmbus_ring_reader *r = &m->f.r;
	struct rng choice = {m->seed * 7 + 3};
	uint32_t big = (uint32_t)m->f.ring_bytes;
	uint8_t *buf = malloc(big);
	struct spec *s = malloc(sizeof(*s) + m->max_payload);
	uint64_t i = 0;
	uint32_t until_commit = 1;

	vmbus_ring_reader_mask(r);
	while (i < m->count && !gave_up(m)) {
		struct vmbus_packet pkt;
		/* Now and then offer a buffer that may be too small. */
		uint32_t buflen = rng_below(&choice, 8) == 0 ? rng_below(&choice, 512) : big;
		int err = vmbus_ring_recv(r, buf, buflen, &pkt);
		if (err == -EMSGSIZE) {
			if (pkt.len <= buflen) {
				give_up(m, "consumer: EMSGSIZE with room", i);
				break;
			}
			err = vmbus_ring_recv(r, buf, big, &pkt);
		}
		if (err == -EAGAIN) {
			/* Drained: publish progress, unmask, sleep unless data raced in. */
			if (vmbus_ring_commit(r))
				sem_post(&m->space_ready);
			if (!vmbus_ring_reader_unmask(r)) {
				m->consumer_waits++;
				if (!timed_wait(&m->data_ready))
					give_up(m, "consumer: lost wakeup", i);
			}
			vmbus_ring_reader_mask(r);
			continue;
		}
		if (err) {
			give_up(m, "consumer: ring reported corrupt", i);
			break;
		}
		if (!check_packet(m, i, &pkt, s)) {
			give_up(m, "consumer: packet differs from the model", i);
			break;
		}
		i++;
		if (--until_commit == 0) {
			until_commit = 1 + rng_below(&choice, 16);
			if (vmbus_ring_commit(r))
				sem_post(&m->space_ready);
		}
	}
	vmbus_ring_commit(r);
	free(s);
	free(buf);
	return NULL;
}

struct model_config {
	bool mirrored;
	size_t ring_bytes;
	uint64_t count;
	uint64_t seed;
};

static void run_model(void **state)
{
	const struct model_config *c = *state;
	struct model *m = aligned_alloc(_Alignof(struct model), sizeof(*m));
	pthread_t prod, cons;

	assert_non_null(m);
	memset(m, 0, sizeof(*m));
	assert_int_equal(ring_fixture_init(&m->f, c->mirrored, c->ring_bytes), 0);
	m->seed = c->seed;
	m->count = c->count;
	/* Leave room for the largest descriptor and GPA ranges. */
	m->max_payload = (uint32_t)(c->ring_bytes - HV_PAGE_SIZE) / 2 - 512;
	sem_init(&m->data_ready, 0, 0);
	sem_init(&m->space_ready, 0, 0);

	pthread_create(&cons, NULL, consumer, m);
	pthread_create(&prod, NULL, producer, m);
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);

	if (m->failure)
		fail_msg("%s at packet %llu (seed %llu)", m->failure,
			 (unsigned long long)m->failed_at, (unsigned long long)c->seed);
	/* Everything sent was received exactly once, and nothing is left. */
	assert_int_equal(m->f.w.stats.packets, c->count);
	assert_int_equal(m->f.r.stats.packets, c->count);
	assert_int_equal(vmbus_ring_reader_available(&m->f.r), 0);
	assert_int_equal(m->f.r.stats.corrupt + m->f.w.stats.corrupt, 0);
	printf("# %llu packets, %llu publishes, %llu writer signals, %llu reader signals, "
	       "%llu producer waits, %llu consumer waits\n",
	       (unsigned long long)c->count, (unsigned long long)m->f.w.stats.publishes,
	       (unsigned long long)m->f.w.stats.signals, (unsigned long long)m->f.r.stats.signals,
	       (unsigned long long)m->producer_waits, (unsigned long long)m->consumer_waits);

	sem_destroy(&m->data_ready);
	sem_destroy(&m->space_ready);
	ring_fixture_destroy(&m->f);
	free(m);
}

static uint64_t scaled(uint64_t n)
{
	/* HVKIT_MODEL_SCALE=0.1 shortens a local run; CI uses the full count. */
	const char *scale = getenv("HVKIT_MODEL_SCALE");
	double f = scale ? atof(scale) : 1.0;
	uint64_t v = (uint64_t)((double)n * (f > 0 ? f : 1.0));
	return v ? v : 1;
}

int main(void)
{
	/* A tiny ring (constant wrap and full), a medium and a large one, in
	 * both layouts: 4 million packets in all. */
	static struct model_config configs[] = {
		{false, 3 * HV_PAGE_SIZE, 500000, 1},
		{true, 3 * HV_PAGE_SIZE, 500000, 2},
		{false, 17 * HV_PAGE_SIZE, 750000, 3},
		{true, 17 * HV_PAGE_SIZE, 750000, 4},
		{false, 129 * HV_PAGE_SIZE, 750000, 5},
		{true, 129 * HV_PAGE_SIZE, 750000, 6},
	};
	static const char *names[] = {
		"8 KiB ring, single mapping",  "8 KiB ring, mirrored",
		"64 KiB ring, single mapping", "64 KiB ring, mirrored",
		"512 KiB ring, single mapping", "512 KiB ring, mirrored",
	};
	struct CMUnitTest tests[sizeof(configs) / sizeof(configs[0])];

	for (size_t k = 0; k < sizeof(configs) / sizeof(configs[0]); k++) {
		configs[k].count = scaled(configs[k].count);
		tests[k] = (struct CMUnitTest){names[k], run_model, NULL, NULL, &configs[k]};
	}
	return cmocka_run_group_tests_name("ring model", tests, NULL, NULL);
}
