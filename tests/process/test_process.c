/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of the process partition: host/hv and the process
 * backend here, the guest library on its POSIX port in a guest process
 * (hvkit-test-guest), or a hostile guest speaking the protocol by hand
 * (hvkit-evil-guest).
 *
 *   test-process GUEST EVIL_GUEST
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "process.h"
#include "scenario_ids.h"

static const char *guest_path;
static const char *evil_path;
static uint64_t tsc_hz;

struct host {
	struct process_partition *pp;
	uint32_t echoes;
	uint32_t reflections;
	uint32_t crashes;
	uint64_t crash_p0;
	char crash_text[128];
};

static uint16_t echo(void *ctx, uint32_t vp, const struct hv_posted_message *msg)
{
	struct host *h = ctx;
	int err = hv_synic_post(process_partition_hv(h->pp), vp, 2, ECHO_MESSAGE_TYPE,
				msg->payload, msg->payload_size, 0);
	if (err == -EAGAIN)
		return HV_STATUS_INSUFFICIENT_BUFFERS;
	h->echoes++;
	return err ? HV_STATUS_INVALID_PARAMETER : HV_STATUS_SUCCESS;
}

static uint16_t reflect(void *ctx, uint32_t vp, uint16_t flag)
{
	struct host *h = ctx;
	(void)vp;
	(void)flag;
	/* Fast signals carry no VP: answer VP 0, where the guest listens. */
	if (hv_synic_signal(process_partition_hv(h->pp), 0, 2, REFLECT_FLAG))
		return HV_STATUS_INVALID_PARAMETER;
	h->reflections++;
	return HV_STATUS_SUCCESS;
}

static int prepare(void *ctx, struct process_partition *pp)
{
	struct host *h = ctx;
	h->pp = pp;
	process_partition_lock(pp);
	int err = hv_connection_add_message(process_partition_hv(pp), ECHO_CONNECTION, echo, h);
	if (!err)
		err = hv_connection_add_event(process_partition_hv(pp), REFLECT_CONNECTION,
					      reflect, h);
	process_partition_unlock(pp);
	return err;
}

static void on_crash(void *ctx, uint32_t vp, const uint64_t params[5], const char *message,
		     uint32_t len)
{
	struct host *h = ctx;
	(void)vp;
	h->crashes++;
	h->crash_p0 = params[0];
	if (message)
		snprintf(h->crash_text, sizeof(h->crash_text), "%.*s", (int)len, message);
}

static void quiet(void *ctx, const char *fmt, va_list ap)
{
	(void)ctx;
	(void)fmt;
	(void)ap;
}

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Runs one guest to its end; returns its wait status, -1 on timeout. */
static int run_guest(struct host *h, const char *path, uint32_t vps, const char *scenario,
		     const char *count, bool quiet_log)
{
	char *argv[] = {(char *)path, (char *)scenario, (char *)count, NULL};
	struct process_partition_config cfg = {
		.vp_count = vps,
		.memory_size = 16 << 20,
		.tsc_hz = tsc_hz,
		.guest_path = path,
		.guest_argv = argv,
		.prepare = prepare,
		.prepare_ctx = h,
		.crash = on_crash,
		.crash_ctx = h,
		.log = quiet_log ? quiet : NULL,
	};
	int status = -1;

	assert_int_equal(process_partition_start(&cfg, &h->pp), 0);
	if (process_partition_wait(h->pp, 60000, &status) < 0)
		status = -1;
	return status;
}

static void expect_success(int status)
{
	assert_true(status >= 0 && WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void guest_sees_hyper_v_on_one_vp(void **state)
{
	(void)state;
	struct host h = {0};
	struct hv_partition_state st;

	expect_success(run_guest(&h, guest_path, 1, "features", NULL, false));
	process_partition_lock(h.pp);
	hv_get_state(process_partition_hv(h.pp), &st);
	process_partition_unlock(h.pp);
	assert_int_not_equal(st.guest_os_id, 0);
	assert_true(st.hypercall_msr & HV_MSR_PAGE_ENABLE);
	assert_true(st.reference_tsc_msr & HV_MSR_PAGE_ENABLE);
	assert_int_not_equal(st.tsc_page_sequence, 0);
	assert_int_equal(st.bad_msr_accesses, 1); /* the unknown MSR it probed */
	process_partition_stop(h.pp);
}

static void guest_sees_hyper_v_on_two_vps(void **state)
{
	(void)state;
	struct host h = {0};
	struct hv_vp_state vs;

	expect_success(run_guest(&h, guest_path, 2, "features", NULL, false));
	for (uint32_t vp = 0; vp < 2; vp++) {
		process_partition_lock(h.pp);
		assert_int_equal(hv_get_vp_state(process_partition_hv(h.pp), vp, &vs), 0);
		process_partition_unlock(h.pp);
		assert_true(vs.synic_enabled);
		assert_true(vs.simp & HV_MSR_PAGE_ENABLE);
		assert_true(vs.siefp & HV_MSR_PAGE_ENABLE);
		assert_false(vs.sint[2] & HV_SINT_MASKED);
	}
	process_partition_stop(h.pp);
}

static void messages_are_echoed_in_order(void **state)
{
	(void)state;
	struct host h = {0};

	expect_success(run_guest(&h, guest_path, 1, "messages", "3000", false));
	assert_int_equal(h.echoes, 3000);
	process_partition_stop(h.pp);
}

static void events_take_the_fast_path(void **state)
{
	(void)state;
	struct host h = {0};
	struct process_partition_stats st;

	expect_success(run_guest(&h, guest_path, 1, "events", "500", false));
	process_partition_get_stats(h.pp, &st);
	assert_int_equal(h.reflections, 500);
	assert_int_equal(st.fast_events, 500);
	process_partition_stop(h.pp);
}

static void direct_mode_timer_fires(void **state)
{
	(void)state;
	struct host h = {0};
	expect_success(run_guest(&h, guest_path, 1, "timer-direct", "20", false));
	process_partition_stop(h.pp);
}

static void message_mode_timer_fires(void **state)
{
	(void)state;
	struct host h = {0};
	expect_success(run_guest(&h, guest_path, 1, "timer-message", "20", false));
	process_partition_stop(h.pp);
}

static void tsc_page_agrees_with_reference_counter(void **state)
{
	(void)state;
	struct host h = {0};
	expect_success(run_guest(&h, guest_path, 2, "clock", NULL, false));
	process_partition_stop(h.pp);
}

static void crash_report_reaches_the_host(void **state)
{
	(void)state;
	struct host h = {0};

	expect_success(run_guest(&h, guest_path, 1, "crash", NULL, true));
	assert_int_equal(h.crashes, 1);
	assert_int_equal(h.crash_p0, CRASH_P0);
	assert_string_equal(h.crash_text, CRASH_TEXT);
	process_partition_stop(h.pp);
}

/* ---- Hostile guests ---- */

/* A guest that breaks the protocol one way. */
struct hostile_case {
	const char *name;
	const char *scenario;
	bool partition_fails; /* false: the guest just goes away */
};

/* The partition ends (or the guest just goes), the host stays up, nothing
 * leaks. */
static void hostile_guest_is_survived(void **state)
{
	const struct hostile_case *c = *state;
	struct host h = {0};
	struct process_partition_stats st;
	int before = count_fds();

	run_guest(&h, evil_path, 1, c->scenario, NULL, true);
	process_partition_get_stats(h.pp, &st);
	assert_int_equal(st.failed, c->partition_fails);
	process_partition_stop(h.pp);
	assert_int_equal(count_fds(), before);
}

static const struct hostile_case hostile_cases[] = {
	{"garbage request ends the partition", "garbage", true},
	{"bad magic ends the partition", "bad-magic", true},
	{"another VP's number ends the partition", "wrong-vp", true},
	{"an oversized request ends the partition", "oversized", true},
	{"passing fds ends the partition", "with-fd", true},
	{"a second HELLO ends the partition", "hello-twice", true},
	{"no HELLO ends the partition", "no-hello", true},
	{"a guest dying mid-call is survived", "die-mid-call", false},
};

static void hostile_arguments_get_statuses(void **state)
{
	(void)state;
	struct host h = {0};
	struct process_partition_stats st;

	/* Valid protocol, hostile values: every answer is a status and the
	 * partition lives on (the guest checks the answers). */
	expect_success(run_guest(&h, evil_path, 1, "hostile-args", NULL, true));
	process_partition_get_stats(h.pp, &st);
	assert_false(st.failed);
	assert_int_equal(st.bad_requests, 1);
	process_partition_stop(h.pp);
}

static void missing_guest_program_is_an_error(void **state)
{
	(void)state;
	int before = count_fds();
	struct process_partition *pp;
	struct process_partition_config cfg = {
		.vp_count = 1,
		.memory_size = 1 << 20,
		.tsc_hz = tsc_hz,
		.guest_path = "/nonexistent/hvkit-guest",
		.log = quiet,
	};
	assert_int_equal(process_partition_start(&cfg, &pp), -ENOENT);
	cfg.vp_count = 0;
	cfg.guest_path = guest_path;
	assert_int_equal(process_partition_start(&cfg, &pp), -EINVAL);
	assert_int_equal(count_fds(), before);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: test-process GUEST EVIL_GUEST\n");
		return 2;
	}
	guest_path = argv[1];
	evil_path = argv[2];
	tsc_hz = process_partition_calibrate_tsc();

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(guest_sees_hyper_v_on_one_vp),
		cmocka_unit_test(guest_sees_hyper_v_on_two_vps),
		cmocka_unit_test(messages_are_echoed_in_order),
		cmocka_unit_test(events_take_the_fast_path),
		cmocka_unit_test(direct_mode_timer_fires),
		cmocka_unit_test(message_mode_timer_fires),
		cmocka_unit_test(tsc_page_agrees_with_reference_counter),
		cmocka_unit_test(crash_report_reaches_the_host),
#define HOSTILE(i)                                                                \
	{hostile_cases[i].name, hostile_guest_is_survived, NULL, NULL,               \
	 (void *)&hostile_cases[i]}
		HOSTILE(0), HOSTILE(1), HOSTILE(2), HOSTILE(3),
		HOSTILE(4), HOSTILE(5), HOSTILE(6), HOSTILE(7),
		cmocka_unit_test(hostile_arguments_get_statuses),
		cmocka_unit_test(missing_guest_program_is_an_error),
	};
	return cmocka_run_group_tests_name("process partition", tests, NULL, NULL);
}
