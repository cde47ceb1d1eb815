/* SPDX-License-Identifier: MIT */
/*
 * netvsc end to end: netvsp with the loopback backend on the host of the
 * process partition, netvsc in a guest process (hvkit-test-netvsc-guest).
 * The guest checks what it sees and exits 0 if all held; the host checks
 * netvsp's view (nothing refused).
 *
 *   test-netvsc GUEST
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "machine.h"

static const char *guest_path;

struct run {
	uint32_t cpus;
	struct netvsp_nic_opts nic;
	const char *args[6];
};

static struct machine *start(const struct run *r)
{
	char *argv[8] = {(char *)guest_path};
	for (int i = 0; i < 6 && r->args[i]; i++)
		argv[i + 1] = (char *)r->args[i];
	struct netvsp_nic_opts nic = r->nic;
	nic.backend = NETVSP_BACKEND_LOOPBACK;
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

static void several_subchannels(void **state)
{
	(void)state;
	struct run r = {.cpus = 2, .nic = {.queues = 4},
			.args = {"frames", "60001", "1500", "4", "3"}};
	struct machine *m = start(&r);
	int status = -1;
	assert_int_equal(machine_wait(m, 120000, &status), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	struct netvsp_stats st;
	netvsp_get_stats(machine_nic(m, 0), &st);
	assert_int_equal(st.subchannels, 3);
	assert_int_equal(st.bad_messages + st.bad_completions + st.bad_rndis, 0);
	machine_stop(m);
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
		cmocka_unit_test(link_down_and_up_reach_the_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
