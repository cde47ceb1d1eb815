/* SPDX-License-Identifier: MIT */
/* Synthetic timers, driven by an injected clock: hv_scan(now). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hv_fixture.h"

#define SIMP 0x2000ull
#define SIEFP 0x3000ull
#define TIMER_SINT 3
#define TIMER_VECTOR 0x31

#define CFG_SINT(s) ((uint64_t)(s) << HV_STIMER_SINT_SHIFT)
#define CFG_VECTOR(v) ((uint64_t)(v) << HV_STIMER_VECTOR_SHIFT)
/* What Linux writes for stimer0 (hyperv_timer.c, hv_stimer_init). */
#define LINUX_MESSAGE_CFG (HV_STIMER_ENABLE | HV_STIMER_AUTO_ENABLE | CFG_SINT(TIMER_SINT))
#define LINUX_DIRECT_CFG                                                                     \
	(HV_STIMER_ENABLE | HV_STIMER_AUTO_ENABLE | HV_STIMER_DIRECT_MODE |                  \
	 CFG_VECTOR(HV_STIMER0_DIRECT_VECTOR))

static int setup(void **state)
{
	struct fixture *f = fix_new(NULL);
	fix_synic_on(f, 0, SIMP, SIEFP, TIMER_SINT, TIMER_VECTOR);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fix_free(*state);
	return 0;
}

static struct hv_timer_message_payload timer_payload(const struct hv_message *m)
{
	struct hv_timer_message_payload t;
	memcpy(&t, m->payload, sizeof(t));
	return t;
}

static void expect_timer_message(struct fixture *f, uint64_t simp, uint32_t index,
				 uint64_t expiration, uint64_t delivery)
{
	struct hv_message m = fix_slot(f, simp, TIMER_SINT);
	assert_int_equal(m.header.message_type, HVMSG_TIMER_EXPIRED);
	assert_int_equal(m.header.payload_size, sizeof(struct hv_timer_message_payload));
	struct hv_timer_message_payload t = timer_payload(&m);
	assert_int_equal(t.timer_index, index);
	assert_int_equal(t.reserved, 0);
	assert_int_equal(t.expiration_time, expiration);
	assert_int_equal(t.delivery_time, delivery);
}

static void one_shot_message_mode(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_MESSAGE_CFG, 0);
	uint32_t changed = f->timers_changed;
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 1000, 0);
	assert_true(f->timers_changed > changed);

	assert_int_equal(hv_scan(f->p, 500), 1000);
	assert_int_equal(f->n_inj, 0);
	assert_int_equal(fix_slot(f, SIMP, TIMER_SINT).header.message_type, HVMSG_NONE);

	assert_int_equal(hv_scan(f->p, 1000), UINT64_MAX);
	expect_timer_message(f, SIMP, 0, 1000, 1000);
	assert_int_equal(f->n_inj, 1);
	assert_int_equal(f->inj[0].vector, TIMER_VECTOR);
	/* Done: the enable bit goes, the count stays. */
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(0)),
			 LINUX_MESSAGE_CFG & ~HV_STIMER_ENABLE);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_COUNT(0)), 1000);
	assert_int_equal(hv_scan(f->p, 5000), UINT64_MAX);
	assert_int_equal(f->n_inj, 1);
}

static void one_shot_in_the_past_fires_at_once(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(2), LINUX_MESSAGE_CFG, 5000);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(2), 1000, 5000);
	assert_int_equal(hv_scan(f->p, 5000), UINT64_MAX);
	expect_timer_message(f, SIMP, 2, 1000, 5000);
	assert_int_equal(f->n_inj, 1);
}

static void direct_mode_raises_vector(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 1, HV_MSR_STIMER_CONFIG(0), LINUX_DIRECT_CFG, 0);
	fix_wrmsr_ok(f, 1, HV_MSR_STIMER_COUNT(0), 200, 0);
	assert_int_equal(hv_scan(f->p, 199), 200);
	assert_int_equal(f->n_inj, 0);
	assert_int_equal(hv_scan(f->p, 250), UINT64_MAX);
	assert_int_equal(f->n_inj, 1);
	assert_int_equal(f->inj[0].vp, 1);
	assert_int_equal(f->inj[0].vector, HV_STIMER0_DIRECT_VECTOR);
	assert_false(f->inj[0].auto_eoi);
	assert_int_equal(fix_rdmsr(f, 1, HV_MSR_STIMER_CONFIG(0)) & HV_STIMER_ENABLE, 0);

	/* Re-armed by the next COUNT (auto-enable), as Linux does. */
	fix_wrmsr_ok(f, 1, HV_MSR_STIMER_COUNT(0), 400, 250);
	assert_int_equal(hv_scan(f->p, 400), UINT64_MAX);
	assert_int_equal(f->n_inj, 2);
}

static void direct_mode_needs_offer(void **state)
{
	(void)state;
	struct hv_config cfg = fix_config(HV_OFFER_SYNIC | HV_OFFER_STIMER, 1);
	struct fixture *f = fix_new(&cfg);
	assert_int_equal(fix_wrmsr(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_DIRECT_CFG, 0), -EINVAL);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(0)), 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_MESSAGE_CFG, 0);
	fix_free(f);
}

/* Times in the periodic tests: a period of P, 1 ms (over the minimum). */
#define P 10000ull

static void periodic_skips_missed_ticks(void **state)
{
	struct fixture *f = *state;
	uint64_t cfg = HV_STIMER_ENABLE | HV_STIMER_PERIODIC | HV_STIMER_DIRECT_MODE |
		       CFG_VECTOR(0x40);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(1), P, 10);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(1), cfg, 10);
	/* The period starts at the write. */
	assert_int_equal(hv_scan(f->p, P / 2), P + 10);
	assert_int_equal(hv_scan(f->p, P + 10), 2 * P + 10);
	assert_int_equal(f->n_inj, 1);
	/* Late by three and a half periods: one tick, then the next boundary. */
	assert_int_equal(hv_scan(f->p, 5 * P + P / 2 + 10), 6 * P + 10);
	assert_int_equal(f->n_inj, 2);
	assert_int_equal(hv_scan(f->p, 6 * P + 10), 7 * P + 10);
	assert_int_equal(f->n_inj, 3);
	/* Periodic timers stay enabled. */
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(1)), cfg);
}

static void periodic_message_tick_dropped_when_busy(void **state)
{
	struct fixture *f = *state;
	uint64_t cfg = HV_STIMER_ENABLE | HV_STIMER_PERIODIC | CFG_SINT(TIMER_SINT);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), P, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), cfg, 0);

	assert_int_equal(hv_scan(f->p, P), 2 * P);
	expect_timer_message(f, SIMP, 0, P, P);
	assert_int_equal(f->n_inj, 1);

	/* Not consumed: the next tick finds the slot busy and is dropped. */
	assert_int_equal(hv_scan(f->p, 2 * P + 5), 3 * P);
	expect_timer_message(f, SIMP, 0, P, P);
	assert_int_equal(fix_slot(f, SIMP, TIMER_SINT).header.message_flags,
			 HV_MESSAGE_FLAG_PENDING);
	assert_int_equal(f->n_inj, 1);

	/* The EOM brings nothing: ticks are not retried. */
	assert_true(fix_consume(f, 0, SIMP, TIMER_SINT, 2 * P + P / 2));
	assert_int_equal(f->n_inj, 1);
	assert_int_equal(fix_slot(f, SIMP, TIMER_SINT).header.message_type, HVMSG_NONE);

	assert_int_equal(hv_scan(f->p, 3 * P), 4 * P);
	expect_timer_message(f, SIMP, 0, 3 * P, 3 * P);
	assert_int_equal(f->n_inj, 2);
}

/* A hostile period (100 ns): the timer runs at the 200 us minimum, so the
 * host does not expire it ten million times a second; counted, and the
 * register keeps what the guest wrote. */
static void periodic_period_has_a_floor(void **state)
{
	struct fixture *f = *state;
	uint64_t cfg = HV_STIMER_ENABLE | HV_STIMER_PERIODIC | HV_STIMER_DIRECT_MODE |
		       CFG_VECTOR(0x40);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(2), 1, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(2), cfg, 0);
	assert_int_equal(hv_scan(f->p, 1), 2000);
	assert_int_equal(hv_scan(f->p, 2000), 4000);
	/* Late by many short periods: still one tick. */
	assert_int_equal(hv_scan(f->p, 100000), 102000);
	assert_int_equal(f->n_inj, 2);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_COUNT(2)), 1);
	struct hv_partition_state st;
	hv_get_state(f->p, &st);
	assert_int_equal(st.short_stimer_periods, 1);
}

static void one_shot_retried_on_eom(void **state)
{
	struct fixture *f = *state;
	/* A host message holds the slot. */
	assert_int_equal(hv_synic_post(f->p, 0, TIMER_SINT, 1, "abc", 3, 0), 0);
	assert_int_equal(f->n_inj, 1);

	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(1), LINUX_MESSAGE_CFG, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(1), 1000, 0);
	assert_int_equal(hv_scan(f->p, 1000), UINT64_MAX);
	assert_int_equal(f->n_inj, 1);
	assert_int_equal(fix_slot(f, SIMP, TIMER_SINT).header.message_flags,
			 HV_MESSAGE_FLAG_PENDING);
	/* Still enabled until the message is in. */
	assert_true(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(1)) & HV_STIMER_ENABLE);
	/* Scanning again does not fire it twice. */
	assert_int_equal(hv_scan(f->p, 1500), UINT64_MAX);
	assert_int_equal(f->n_inj, 1);

	/* The guest frees the slot at 1700: delivered then, saying so. */
	assert_true(fix_consume(f, 0, SIMP, TIMER_SINT, 1700));
	expect_timer_message(f, SIMP, 1, 1000, 1700);
	assert_int_equal(fix_slot(f, SIMP, TIMER_SINT).header.message_flags, 0);
	assert_int_equal(f->n_inj, 2);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(1)) & HV_STIMER_ENABLE, 0);
	assert_false(fix_consume(f, 0, SIMP, TIMER_SINT, 1800));
	assert_int_equal(f->n_inj, 2);
}

static void timer_and_host_messages_share_the_slot(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hv_synic_post(f->p, 0, TIMER_SINT, 1, "a", 1, 0), 0);
	assert_int_equal(hv_synic_post(f->p, 0, TIMER_SINT, 1, "b", 1, 0), 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_MESSAGE_CFG, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 10, 0);
	hv_scan(f->p, 10);
	/* Every message gets through, each EOM bringing the next. */
	int timer = 0, host = 0;
	for (int i = 0; i < 3; i++) {
		struct hv_message m = fix_slot(f, SIMP, TIMER_SINT);
		if (m.header.message_type == HVMSG_TIMER_EXPIRED)
			timer++;
		else
			assert_int_equal(m.payload[0], "ab"[host++]);
		assert_int_equal(fix_consume(f, 0, SIMP, TIMER_SINT, 20), i != 2);
	}
	assert_int_equal(timer, 1);
	assert_int_equal(host, 2);
	assert_int_equal(f->n_inj, 3);
}

static void masked_sint_holds_one_shot_until_unmasked(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 0, HV_MSR_SINT(TIMER_SINT), HV_SINT_MASKED | TIMER_VECTOR, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_MESSAGE_CFG, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 10, 0);
	hv_scan(f->p, 10);
	assert_int_equal(f->n_inj, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_SINT(TIMER_SINT), TIMER_VECTOR, 42);
	expect_timer_message(f, SIMP, 0, 10, 42);
	assert_int_equal(f->n_inj, 1);
}

static void reprogramming_drops_pending_message(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hv_synic_post(f->p, 0, TIMER_SINT, 1, "a", 1, 0), 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_MESSAGE_CFG, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 10, 0);
	hv_scan(f->p, 10);
	/* Linux's shutdown: COUNT 0, CONFIG 0. The stale expiry is gone: the
	 * guest's EOM (the slot was flagged) brings nothing. */
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 0, 11);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), 0, 11);
	assert_true(fix_consume(f, 0, SIMP, TIMER_SINT, 12));
	assert_int_equal(fix_slot(f, SIMP, TIMER_SINT).header.message_type, HVMSG_NONE);
	assert_int_equal(f->n_inj, 1);
}

static void count_write_auto_enables(void **state)
{
	struct fixture *f = *state;
	uint64_t cfg = HV_STIMER_AUTO_ENABLE | HV_STIMER_DIRECT_MODE | CFG_VECTOR(0x50);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(3), cfg, 0);
	assert_int_equal(hv_scan(f->p, 0), UINT64_MAX);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(3), 300, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(3)), cfg | HV_STIMER_ENABLE);
	assert_int_equal(hv_scan(f->p, 0), 300);

	/* Without auto-enable a COUNT write arms nothing. */
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(2), HV_STIMER_DIRECT_MODE | CFG_VECTOR(0x50), 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(2), 100, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(2)) & HV_STIMER_ENABLE, 0);
	assert_int_equal(hv_scan(f->p, 0), 300);
	/* ... until CONFIG enables it, with the stored count. */
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(2),
		     HV_STIMER_ENABLE | HV_STIMER_DIRECT_MODE | CFG_VECTOR(0x50), 0);
	assert_int_equal(hv_scan(f->p, 0), 100);
}

static void count_zero_disables(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_DIRECT_CFG, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 100, 0);
	assert_int_equal(hv_scan(f->p, 0), 100);
	uint32_t changed = f->timers_changed;
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 0, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(0)) & HV_STIMER_ENABLE, 0);
	assert_int_equal(f->timers_changed, changed); /* later, not earlier */
	assert_int_equal(hv_scan(f->p, 1000), UINT64_MAX);
	assert_int_equal(f->n_inj, 0);
	/* An enabled CONFIG with count 0 arms nothing either. */
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_DIRECT_CFG, 0);
	assert_int_equal(hv_scan(f->p, 1000), UINT64_MAX);
}

static void message_mode_sint0_disables_enabled_timer(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 100, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), HV_STIMER_ENABLE | CFG_SINT(TIMER_SINT), 0);
	assert_int_equal(hv_scan(f->p, 0), 100);
	/* KVM's rule: an enabled timer rewritten to message mode, SINT 0. */
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), HV_STIMER_ENABLE, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(0)), 0);
	assert_int_equal(hv_scan(f->p, 0), UINT64_MAX);
	/* From disabled, SINT 0 may be enabled. */
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), HV_STIMER_ENABLE, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(0)), HV_STIMER_ENABLE);
	/* Direct mode is not affected by the rule. */
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(1), LINUX_DIRECT_CFG, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(1), LINUX_DIRECT_CFG, 0);
	assert_true(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(1)) & HV_STIMER_ENABLE);
}

static void scan_returns_earliest_deadline(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_DIRECT_CFG, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 1000, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(1), LINUX_DIRECT_CFG, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(1), 700, 0);
	fix_wrmsr_ok(f, 1, HV_MSR_STIMER_CONFIG(3), LINUX_DIRECT_CFG, 0);
	fix_wrmsr_ok(f, 1, HV_MSR_STIMER_COUNT(3), 900, 0);
	assert_int_equal(hv_scan(f->p, 0), 700);
	assert_int_equal(hv_scan(f->p, 700), 900);
	assert_int_equal(f->n_inj, 1);
	assert_int_equal(f->inj[0].vp, 0);
	assert_int_equal(hv_scan(f->p, 950), 1000);
	assert_int_equal(f->n_inj, 2);
	assert_int_equal(f->inj[1].vp, 1);
	assert_int_equal(hv_scan(f->p, 1000), UINT64_MAX);
	assert_int_equal(f->n_inj, 3);
	assert_int_equal(f->inj[2].vp, 0);
}

static void several_vps_message_mode(void **state)
{
	struct fixture *f = *state;
	fix_synic_on(f, 1, 0x4000, 0x5000, TIMER_SINT, 0x61);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_MESSAGE_CFG, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 50, 0);
	fix_wrmsr_ok(f, 1, HV_MSR_STIMER_CONFIG(0), LINUX_MESSAGE_CFG, 0);
	fix_wrmsr_ok(f, 1, HV_MSR_STIMER_COUNT(0), 60, 0);
	assert_int_equal(hv_scan(f->p, 60), UINT64_MAX);
	expect_timer_message(f, SIMP, 0, 50, 60);
	expect_timer_message(f, 0x4000, 0, 60, 60);
	assert_int_equal(f->n_inj, 2);
	assert_int_equal(f->inj[0].vp, 0);
	assert_int_equal(f->inj[0].vector, TIMER_VECTOR);
	assert_int_equal(f->inj[1].vp, 1);
	assert_int_equal(f->inj[1].vector, 0x61);
}

static void timers_changed_on_arming_writes(void **state)
{
	struct fixture *f = *state;
	uint32_t n = f->timers_changed;
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_DIRECT_CFG, 0);
	assert_int_equal(f->timers_changed, n); /* count 0: nothing armed */
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 5000, 0);
	assert_int_equal(f->timers_changed, n + 1);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_COUNT(0), 100, 0);
	assert_int_equal(f->timers_changed, n + 2);
	fix_wrmsr_ok(f, 0, HV_MSR_STIMER_CONFIG(0), LINUX_DIRECT_CFG, 0);
	assert_int_equal(f->timers_changed, n + 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(one_shot_message_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(one_shot_in_the_past_fires_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(direct_mode_raises_vector, setup, teardown),
		cmocka_unit_test(direct_mode_needs_offer),
		cmocka_unit_test_setup_teardown(periodic_skips_missed_ticks, setup, teardown),
		cmocka_unit_test_setup_teardown(periodic_period_has_a_floor, setup, teardown),
		cmocka_unit_test_setup_teardown(periodic_message_tick_dropped_when_busy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(one_shot_retried_on_eom, setup, teardown),
		cmocka_unit_test_setup_teardown(timer_and_host_messages_share_the_slot, setup,
						teardown),
		cmocka_unit_test_setup_teardown(masked_sint_holds_one_shot_until_unmasked, setup,
						teardown),
		cmocka_unit_test_setup_teardown(reprogramming_drops_pending_message, setup, teardown),
		cmocka_unit_test_setup_teardown(count_write_auto_enables, setup, teardown),
		cmocka_unit_test_setup_teardown(count_zero_disables, setup, teardown),
		cmocka_unit_test_setup_teardown(message_mode_sint0_disables_enabled_timer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(scan_returns_earliest_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(several_vps_message_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(timers_changed_on_arming_writes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
