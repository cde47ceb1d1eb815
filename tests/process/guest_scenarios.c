/* SPDX-License-Identifier: MIT */
/*
 * A guest for the process partition's end-to-end tests: the guest library
 * on the POSIX port, as any process guest uses it. It runs one scenario and
 * exits 0 if every check held (a line per failure on stderr otherwise).
 *
 *   hvkit-test-guest SCENARIO [N]
 *
 * Scenarios (the host test sets up the matching connections):
 *   features      detection, set-up, what the host offers, VP indexes
 *   messages N    N HvPostMessage to the echo connection, N echoes back
 *   events N      N fast HvSignalEvent to the reflector, N event flags back
 *   timer-direct N / timer-message N   N one-shot stimer0 expiries
 *   clock         TSC page time against the reference counter MSR
 *   crash         a panic report through the crash MSRs
 *   bench-signal N  HvSignalEvent round trips, median and p99 on stdout
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv_guest.h"
#include "hvkit/vmbus.h"
#include "posix.h"
#include "process_guest.h"
#include "scenario_ids.h"

static struct hv_posix *px;
static const struct hv_port *port;
static struct hv_guest guest;
static int failures;

#define CHECK(cond, ...)                                                          \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "guest: check failed (%s:%d): ", __FILE__, \
				__LINE__);                                         \
			fprintf(stderr, __VA_ARGS__);                              \
			fputc('\n', stderr);                                       \
			failures++;                                                \
		}                                                                  \
	} while (0)

/* ---- What the interrupt handlers saw (dispatcher threads write) ---- */

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t seen_cond = PTHREAD_COND_INITIALIZER;
static uint32_t messages_seen;
static uint32_t messages_bad;
static uint32_t events_seen;
static uint32_t timers_seen;
static uint64_t timer_fired_at;
static uint32_t timer_vp;

static void on_message(void *arg, uint32_t vp, uint32_t sint, const struct hv_guest_message *m)
{
	(void)arg;
	pthread_mutex_lock(&seen_lock);
	/* The echo connection returns payload i of size i % 241, bytes i+k. */
	uint32_t i = messages_seen;
	bool ok = vp == 0 && sint == VMBUS_MESSAGE_SINT && m->message_type == ECHO_MESSAGE_TYPE &&
		  m->payload_size == i % 241;
	for (uint32_t k = 0; ok && k < m->payload_size; k++)
		ok = m->payload[k] == (uint8_t)(i + k);
	if (!ok)
		messages_bad++;
	messages_seen++;
	pthread_cond_broadcast(&seen_cond);
	pthread_mutex_unlock(&seen_lock);
}

static void on_events(void *arg, uint32_t vp, uint32_t sint)
{
	uint8_t flags[HV_EVENT_FLAGS_BYTES] = {0};
	(void)arg;
	(void)vp;
	uint32_t n = hv_guest_take_events(&guest, sint, flags);
	pthread_mutex_lock(&seen_lock);
	if (n == 1 && (flags[REFLECT_FLAG / 8] & (1u << (REFLECT_FLAG % 8))))
		events_seen++;
	else if (n)
		messages_bad++;
	pthread_cond_broadcast(&seen_cond);
	pthread_mutex_unlock(&seen_lock);
}

static void on_timer(void *arg, uint32_t vp)
{
	(void)arg;
	uint64_t now = hv_guest_time(&guest);
	pthread_mutex_lock(&seen_lock);
	timers_seen++;
	timer_fired_at = now;
	timer_vp = vp;
	pthread_cond_broadcast(&seen_cond);
	pthread_mutex_unlock(&seen_lock);
}

/* Waits until *counter reaches target; false after 10 s. */
static bool wait_for(uint32_t *counter, uint32_t target)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	pthread_mutex_lock(&seen_lock);
	while (*counter < target)
		if (pthread_cond_timedwait(&seen_cond, &seen_lock, &deadline))
			break;
	bool done = *counter >= target;
	pthread_mutex_unlock(&seen_lock);
	return done;
}

/* ---- Set-up ---- */

static int bring_up(bool message_mode)
{
	struct hv_guest_features f;
	int err = hv_posix_connect_env(&px);
	if (err) {
		fprintf(stderr, "guest: cannot connect: %s\n", strerror(-err));
		return err;
	}
	port = hv_posix_port(px);
	hv_posix_bind_vp(px, 0);
	err = hv_guest_detect(port, &f);
	CHECK(err == 0, "Hyper-V not detected (%d)", err);
	struct hv_guest_config cfg = {
		.vp_count = hv_posix_vp_count(px),
		.prefer_message_mode = message_mode,
	};
	if (!err)
		err = hv_guest_init(&guest, port, &cfg);
	CHECK(err == 0, "hv_guest_init: %d", err);
	if (err)
		return err;
	hv_guest_set_callbacks(&guest, on_message, on_events, on_timer, NULL);
	/* Each VP brings up its own SynIC, on a thread bound to it. */
	err = process_guest_init_vps(px, &guest);
	CHECK(err == 0, "vp_init: %d", err);
	if (err)
		return err;
	return 0;
}

/* ---- Scenarios ---- */

static void features(void)
{
	const struct hv_guest_features *f = &guest.features;
	uint64_t v = 0;

	CHECK(f->max_leaf >= HV_CPUID_MAX_LEAF_MIN, "max leaf %#x", f->max_leaf);
	CHECK(f->features & HV_FEAT_SYNIC_MSRS, "no SynIC");
	CHECK(f->features & HV_FEAT_STIMER_MSRS, "no stimers");
	CHECK(f->features & HV_FEAT_REFERENCE_TSC_MSR, "no TSC page");
	CHECK(f->features & HV_FEAT_TIME_REF_COUNT_MSR, "no reference counter");
	CHECK(!(f->privileges & HV_PRIV_CPU_MANAGEMENT), "root partition bit set");
	CHECK(!(f->features & HV_FEAT_FREQUENCY_MSRS), "frequency MSRs without a LAPIC");
	CHECK(f->misc & HV_FEAT_X64_STIMER_DIRECT_MODE, "no direct mode");
	CHECK(f->hints & HV_HINT_DEPRECATING_AEOI, "auto-EOI not deprecated");
	CHECK(guest.tsc_page != NULL, "TSC page not set up");
	CHECK(guest.stimer_mode == HV_STIMER_MODE_DIRECT, "stimer mode %d", guest.stimer_mode);
	CHECK(port->rdmsr(port->ctx, HV_MSR_HYPERCALL, &v) && (v & HV_MSR_PAGE_ENABLE),
	      "hypercall page not enabled: %#llx", (unsigned long long)v);
	CHECK(port->rdmsr(port->ctx, HV_MSR_GUEST_OS_ID, &v) && v != 0, "guest OS id unset");
	for (uint32_t vp = 0; vp < hv_posix_vp_count(px); vp++)
		CHECK(guest.vps[vp].online && guest.vps[vp].vp_index == vp, "VP %u index %u", vp,
		      guest.vps[vp].vp_index);
	/* An unknown synthetic MSR is #GP, not a crash. */
	CHECK(!port->rdmsr(port->ctx, 0x400001F0u, &v), "unknown MSR read succeeded");
}

static void messages(uint32_t n)
{
	uint8_t payload[HV_MESSAGE_PAYLOAD_BYTES];

	for (uint32_t i = 0; i < n; i++) {
		uint32_t size = i % 241;
		for (uint32_t k = 0; k < size; k++)
			payload[k] = (uint8_t)(i + k);
		uint16_t st;
		/* The host asks for a retry while its queue for us is full. */
		while ((st = hv_guest_post_message(&guest, ECHO_CONNECTION, ECHO_MESSAGE_TYPE,
						   payload, size)) ==
		       HV_STATUS_INSUFFICIENT_BUFFERS)
			nanosleep(&(struct timespec){0, 100000}, NULL);
		CHECK(st == HV_STATUS_SUCCESS, "post %u: status %u", i, st);
	}
	CHECK(wait_for(&messages_seen, n), "%u of %u echoes arrived", messages_seen, n);
	CHECK(messages_bad == 0, "%u echoes differ", messages_bad);
	CHECK(hv_guest_post_message(&guest, UNKNOWN_CONNECTION, 1, payload, 8) ==
		      HV_STATUS_INVALID_CONNECTION_ID,
	      "post to an unknown connection");
	CHECK(hv_guest_post_message(&guest, ECHO_CONNECTION, 0, payload, 8) ==
		      HV_STATUS_INVALID_PARAMETER,
	      "message type 0 accepted");
}

static void events(uint32_t n)
{
	struct hv_posix_stats st;

	for (uint32_t i = 0; i < n; i++) {
		uint16_t status = hv_guest_signal_event(&guest, REFLECT_CONNECTION, 0);
		CHECK(status == HV_STATUS_SUCCESS, "signal %u: status %u", i, status);
		CHECK(wait_for(&events_seen, i + 1), "event %u not reflected", i);
	}
	CHECK(messages_bad == 0, "unexpected event flags");
	hv_posix_get_stats(px, &st);
	CHECK(st.fast_signals == n, "%llu of %u signals took the fast path",
	      (unsigned long long)st.fast_signals, n);
	CHECK(hv_guest_signal_event(&guest, UNKNOWN_CONNECTION, 0) ==
		      HV_STATUS_INVALID_CONNECTION_ID,
	      "signal to an unknown connection");
}

static void timer(uint32_t n, enum hv_stimer_mode expect)
{
	CHECK(guest.stimer_mode == expect, "stimer mode %d, expected %d", guest.stimer_mode,
	      expect);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t start = hv_guest_time(&guest);
		uint64_t delta = 10000; /* 1 ms */
		CHECK(hv_guest_timer_start(&guest, delta) == 0, "timer start");
		CHECK(wait_for(&timers_seen, i + 1), "expiry %u missing", i);
		/* Never early (late is the host's scheduling, not an error). */
		CHECK(timer_fired_at >= start + delta, "expiry %u early by %lld", i,
		      (long long)(start + delta - timer_fired_at));
		CHECK(timer_vp == 0, "expiry on VP %u", timer_vp);
	}
	hv_guest_timer_stop(&guest);
}

static void clock_agreement(void)
{
	uint64_t worst_below = 0, worst_above = 0;

	for (int i = 0; i < 2000; i++) {
		uint64_t t1, t2;
		bool ok1 = hv_guest_time_tsc_page(&guest, &t1);
		uint64_t m = hv_guest_time_msr(&guest);
		bool ok2 = hv_guest_time_tsc_page(&guest, &t2);
		CHECK(ok1 && ok2, "TSC page invalid");
		CHECK(t2 >= t1, "TSC page time went back");
		/* The host read the MSR between our two page reads: within 1 us
		 * (10 units) of that window, or the clocks disagree. */
		if (m < t1 && t1 - m > worst_below)
			worst_below = t1 - m;
		if (m > t2 && m - t2 > worst_above)
			worst_above = m - t2;
	}
	CHECK(worst_below <= 10 && worst_above <= 10,
	      "MSR and TSC page disagree by up to %llu/%llu x 100 ns",
	      (unsigned long long)worst_below, (unsigned long long)worst_above);
}

static void crash(void)
{
	static const char text[] = CRASH_TEXT;
	uint64_t params[5] = {CRASH_P0, 2, 3, 4, 5};
	CHECK(hv_guest_report_crash(&guest, params, text, sizeof(text) - 1) == 0, "crash report");
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Signal -> host handler -> event flag back -> our handler, n times. */
static void bench_signal(uint32_t n)
{
	uint64_t *rtt = calloc(n, sizeof(*rtt));

	for (uint32_t i = 0; i < n; i++) {
		uint64_t t0 = monotonic_ns();
		hv_guest_signal_event(&guest, REFLECT_CONNECTION, 0);
		if (!wait_for(&events_seen, i + 1)) {
			CHECK(false, "round trip %u lost", i);
			break;
		}
		rtt[i] = monotonic_ns() - t0;
	}
	qsort(rtt, n, sizeof(*rtt), compare_u64);
	printf("HvSignalEvent round trip (guest signal -> host handler -> guest interrupt), "
	       "%u samples:\n  median %.1f us, p99 %.1f us, min %.1f us, max %.1f us\n",
	       n, rtt[n / 2] / 1e3, rtt[(uint64_t)n * 99 / 100] / 1e3, rtt[0] / 1e3,
	       rtt[n - 1] / 1e3);
	free(rtt);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: hvkit-test-guest SCENARIO [N]\n");
		return 2;
	}
	const char *scenario = argv[1];
	uint32_t n = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 100;
	if (bring_up(!strcmp(scenario, "timer-message")))
		return 1;

	if (!strcmp(scenario, "features"))
		features();
	else if (!strcmp(scenario, "messages"))
		messages(n);
	else if (!strcmp(scenario, "events"))
		events(n);
	else if (!strcmp(scenario, "timer-direct"))
		timer(n, HV_STIMER_MODE_DIRECT);
	else if (!strcmp(scenario, "timer-message"))
		timer(n, HV_STIMER_MODE_MESSAGE);
	else if (!strcmp(scenario, "clock"))
		clock_agreement();
	else if (!strcmp(scenario, "crash"))
		crash();
	else if (!strcmp(scenario, "bench-signal"))
		bench_signal(n);
	else {
		fprintf(stderr, "guest: unknown scenario '%s'\n", scenario);
		return 2;
	}
	hv_posix_disconnect(px);
	return failures ? 1 : 0;
}
