/* SPDX-License-Identifier: MIT */
/*
 * host/hv called from many threads at once, as the backends now do: VP
 * threads consuming their message slots (EOM), reading their SynIC MSRs,
 * programming a timer and signalling events; device threads posting
 * messages to both VPs; a timer thread scanning; a thread adding and
 * removing connections. Checks that every message reaches its VP exactly
 * once and in the order its poster sent it, and that every signal reaches
 * its handler. Run under the sanitizers, it also shows any memory error a
 * missing lock causes (remove the VP lock in hv_synic_post: messages are
 * lost or duplicated and this fails).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hv.h"

#define VPS 2
#define POSTERS 2
#define MESSAGES_PER_POSTER 20000
#define SINT 2
#define VECTOR 0x30
#define TIMER_VECTOR 0x40
#define SIGNAL_CONNECTION 5
#define CHURN_CONNECTION 6
#define RAM_PAGES 16
#define SIMP_GPA(vp) ((uint64_t)(1 + 2 * (vp)) * HV_PAGE_SIZE)
#define SIEFP_GPA(vp) ((uint64_t)(2 + 2 * (vp)) * HV_PAGE_SIZE)
#define DEADLINE_SECONDS 60

struct payload {
	uint32_t poster;
	uint32_t seq;
};

struct world {
	struct guest_memory mem;
	uint8_t *ram;
	struct hv_partition *p;
	uint64_t injected[VPS]; /* atomics */
	uint64_t signals;       /* atomics: SIGNAL_CONNECTION's handler */
	bool stop;              /* atomic: ends the timer and churn threads */
	uint64_t now;           /* atomic: the reference time the threads use */
	time_t deadline;
	/* Per VP: the last sequence number seen from each poster. */
	int64_t last[VPS][POSTERS];
	uint32_t received[VPS];
	uint32_t disorder[VPS];
};

static bool past_deadline(const struct world *w)
{
	return time(NULL) > w->deadline;
}

static uint64_t now_of(struct world *w)
{
	return __atomic_add_fetch(&w->now, 10, __ATOMIC_RELAXED);
}

static void on_inject(void *ctx, uint32_t vp, uint8_t vector, bool auto_eoi)
{
	struct world *w = ctx;
	(void)vector, (void)auto_eoi;
	__atomic_fetch_add(&w->injected[vp], 1, __ATOMIC_RELAXED);
}

static const struct hv_host_ops ops = {.inject = on_inject};

static uint16_t on_signal(void *ctx, uint32_t vp, uint16_t flag)
{
	struct world *w = ctx;
	(void)vp, (void)flag;
	__atomic_fetch_add(&w->signals, 1, __ATOMIC_RELAXED);
	return HV_STATUS_SUCCESS;
}

static void wrmsr(struct world *w, uint32_t vp, uint32_t msr, uint64_t value)
{
	assert_int_equal(hv_msr_write(w->p, vp, msr, value, now_of(w)), 0);
}

static struct world *world_new(void)
{
	struct world *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	w->ram = aligned_alloc(HV_PAGE_SIZE, RAM_PAGES * HV_PAGE_SIZE);
	assert_non_null(w->ram);
	memset(w->ram, 0, RAM_PAGES * HV_PAGE_SIZE);
	assert_int_equal(guest_memory_add(&w->mem, 0, RAM_PAGES * HV_PAGE_SIZE, w->ram), 0);
	struct hv_config cfg = {.vp_count = VPS,
				.tsc_hz = 2500000000ull,
				.apic_hz = 1000000000ull,
				.features = HV_OFFER_ALL};
	w->p = hv_partition_new(&cfg, &w->mem, &ops, w);
	assert_non_null(w->p);
	for (uint32_t vp = 0; vp < VPS; vp++) {
		wrmsr(w, vp, HV_MSR_SIMP, SIMP_GPA(vp) | HV_MSR_PAGE_ENABLE);
		wrmsr(w, vp, HV_MSR_SIEFP, SIEFP_GPA(vp) | HV_MSR_PAGE_ENABLE);
		wrmsr(w, vp, HV_MSR_SINT0 + SINT, VECTOR);
		wrmsr(w, vp, HV_MSR_SCONTROL, HV_SCONTROL_ENABLE);
		for (uint32_t k = 0; k < POSTERS; k++)
			w->last[vp][k] = -1;
	}
	assert_int_equal(hv_connection_add_event(w->p, SIGNAL_CONNECTION, on_signal, w), 0);
	w->deadline = time(NULL) + DEADLINE_SECONDS;
	return w;
}

static void world_free(struct world *w)
{
	hv_partition_free(w->p);
	free(w->ram);
	free(w);
}

/* ---- the threads ---- */

struct vp_arg {
	struct world *w;
	uint32_t vp;
	uint32_t signals_sent;
};

/* Takes what is in the slot, as Linux's vmbus_on_msg_dpc and
 * vmbus_signal_eom do: copy, type := NONE, then EOM if pending. */
static bool consume(struct world *w, uint32_t vp)
{
	uint8_t *slot = w->ram + SIMP_GPA(vp) + SINT * HV_MESSAGE_SIZE;
	uint32_t *type = (uint32_t *)(slot + offsetof(struct hv_message_header, message_type));
	uint8_t *flags = slot + offsetof(struct hv_message_header, message_flags);
	if (__atomic_load_n(type, __ATOMIC_ACQUIRE) == HVMSG_NONE)
		return false;
	struct payload pl;
	memcpy(&pl, slot + offsetof(struct hv_message, payload), sizeof(pl));
	__atomic_store_n(type, HVMSG_NONE, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(flags, __ATOMIC_SEQ_CST) & HV_MESSAGE_FLAG_PENDING)
		wrmsr(w, vp, HV_MSR_EOM, 0);
	if (pl.poster >= POSTERS || (int64_t)pl.seq <= w->last[vp][pl.poster])
		w->disorder[vp]++;
	else
		w->last[vp][pl.poster] = pl.seq;
	w->received[vp]++;
	return true;
}

static void signal_event(struct world *w, struct vp_arg *a)
{
	struct hv_hypercall hc = {.control = HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				  .input = SIGNAL_CONNECTION};
	assert_int_equal(hv_hypercall(w->p, a->vp, &hc, now_of(w)) & 0xFFFF, HV_STATUS_SUCCESS);
	a->signals_sent++;
}

static void *vp_thread(void *arg)
{
	struct vp_arg *a = arg;
	struct world *w = a->w;
	uint32_t want = POSTERS * MESSAGES_PER_POSTER / VPS;
	uint64_t value;

	for (uint32_t round = 0; w->received[a->vp] < want && !past_deadline(w); round++) {
		if (!consume(w, a->vp))
			sched_yield();
		/* The VP's own state, which the posters' and the scanner's
		 * calls touch too. */
		assert_int_equal(hv_msr_read(w->p, a->vp, HV_MSR_SINT0 + SINT, now_of(w), &value), 0);
		assert_int_equal(value, VECTOR);
		if (round % 256 == 0) {
			wrmsr(w, a->vp, HV_MSR_STIMER0_CONFIG,
			      HV_STIMER_ENABLE | HV_STIMER_PERIODIC | HV_STIMER_DIRECT_MODE |
				      (uint64_t)TIMER_VECTOR << HV_STIMER_VECTOR_SHIFT);
			wrmsr(w, a->vp, HV_MSR_STIMER0_COUNT, 2000);
		}
		if (round % 64 == 0)
			signal_event(w, a);
	}
	return NULL;
}

struct poster_arg {
	struct world *w;
	uint32_t poster;
};

static void *poster_thread(void *arg)
{
	struct poster_arg *a = arg;
	struct world *w = a->w;
	for (uint32_t seq = 0; seq < MESSAGES_PER_POSTER && !past_deadline(w); seq++) {
		struct payload pl = {a->poster, seq};
		int err;
		/* A full queue (4096) waits for the VP to drain it. */
		while ((err = hv_synic_post(w->p, seq % VPS, SINT, 1, &pl, sizeof(pl), 0)) ==
			       -EAGAIN &&
		       !past_deadline(w))
			sched_yield();
		assert_int_equal(err, 0);
	}
	return NULL;
}

static void *scanner_thread(void *arg)
{
	struct world *w = arg;
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		hv_scan(w->p, __atomic_add_fetch(&w->now, 5000, __ATOMIC_RELAXED));
		sched_yield();
	}
	return NULL;
}

static uint16_t churn_handler(void *ctx, uint32_t vp, uint16_t flag)
{
	(void)ctx, (void)vp, (void)flag;
	return HV_STATUS_SUCCESS;
}

static void *churn_thread(void *arg)
{
	struct world *w = arg;
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		assert_int_equal(hv_connection_add_event(w->p, CHURN_CONNECTION, churn_handler, w), 0);
		hv_connection_remove(w->p, true, CHURN_CONNECTION);
	}
	return NULL;
}

static void every_message_once_in_order(void **state)
{
	(void)state;
	struct world *w = world_new();
	pthread_t vps[VPS], posters[POSTERS], scanner, churn;
	struct vp_arg va[VPS];
	struct poster_arg pa[POSTERS];

	assert_int_equal(pthread_create(&scanner, NULL, scanner_thread, w), 0);
	assert_int_equal(pthread_create(&churn, NULL, churn_thread, w), 0);
	for (uint32_t i = 0; i < VPS; i++) {
		va[i] = (struct vp_arg){w, i, 0};
		assert_int_equal(pthread_create(&vps[i], NULL, vp_thread, &va[i]), 0);
	}
	for (uint32_t i = 0; i < POSTERS; i++) {
		pa[i] = (struct poster_arg){w, i};
		assert_int_equal(pthread_create(&posters[i], NULL, poster_thread, &pa[i]), 0);
	}
	for (uint32_t i = 0; i < POSTERS; i++)
		pthread_join(posters[i], NULL);
	for (uint32_t i = 0; i < VPS; i++)
		pthread_join(vps[i], NULL);
	__atomic_store_n(&w->stop, true, __ATOMIC_RELEASE);
	pthread_join(scanner, NULL);
	pthread_join(churn, NULL);

	uint32_t signals_sent = 0;
	for (uint32_t vp = 0; vp < VPS; vp++) {
		assert_int_equal(w->disorder[vp], 0);
		assert_int_equal(w->received[vp], POSTERS * MESSAGES_PER_POSTER / VPS);
		for (uint32_t k = 0; k < POSTERS; k++)
			assert_int_equal(w->last[vp][k], MESSAGES_PER_POSTER - VPS + vp);
		assert_int_equal(hv_synic_queued(w->p, vp, SINT), 0);
		/* Every message raised the SINT once, besides timer ticks. */
		assert_true(w->injected[vp] >= w->received[vp]);
		signals_sent += va[vp].signals_sent;
	}
	assert_int_equal(w->signals, signals_sent);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_message_once_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
