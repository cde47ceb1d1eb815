/* SPDX-License-Identifier: MIT */
/*
 * VMBus end to end: hvkit's VMBus server and echo devices on host/hv in the
 * process partition, the VMBus client in a guest process
 * (hvkit-test-vmbus-guest). The host side changes things under the guest's
 * feet (hot add, rescind) and checks the server's view; the guest checks
 * its own and exits 0 if all held.
 *
 *   test-vmbus GUEST
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
	uint32_t echo_devices;
	struct vmbus_server_config vmbus;
	const char *args[6];
};

static struct machine *start(const struct run *r)
{
	char *argv[8] = {(char *)guest_path};
	for (int i = 0; i < 6 && r->args[i]; i++)
		argv[i + 1] = (char *)r->args[i];
	struct machine_config cfg = {
		.cpus = r->cpus ? r->cpus : 1,
		.memory = 32 << 20,
		.guest_path = guest_path,
		.guest_argv = argv,
		.echo_devices = r->echo_devices,
		.vmbus = r->vmbus,
	};
	struct machine *m = NULL;
	assert_int_equal(machine_start(&cfg, &m, NULL, 0), 0);
	return m;
}

static void expect_guest_success(struct machine *m)
{
	int status = -1;
	assert_int_equal(machine_wait(m, 60000, &status), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(machine_failed(m, NULL, 0));
}

static void run_to_success(const struct run *r)
{
	struct machine *m = start(r);
	expect_guest_success(m);
	machine_stop(m);
}

/* ---- The server's view ---- */

struct census {
	uint32_t channels, open, rescinded;
	uint64_t guest_signals;
};

static void count(void *arg, const struct vmbus_server_channel_info *ci)
{
	struct census *c = arg;
	c->channels++;
	c->open += ci->state == VMBUS_CHANNEL_OPEN;
	c->rescinded += ci->state == VMBUS_CHANNEL_RESCINDED;
	c->guest_signals += ci->guest_signals;
}

static struct census census(struct machine *m)
{
	struct census c = {0};
	vmbus_server_for_each_channel(machine_vmbus(m), count, &c);
	return c;
}

/* Polls the server until pred holds (10 s at most). */
static bool wait_server(struct machine *m, bool (*pred)(const struct census *))
{
	for (int i = 0; i < 1000; i++) {
		struct census c = census(m);
		if (pred(&c))
			return true;
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	return false;
}

/* ---- Tests ---- */

static void negotiates_every_version_the_host_offers(void **state)
{
	(void)state;
	static const struct {
		uint32_t version;
		const char *text;
	} versions[] = {
		{VMBUS_VERSION_WIN10_V5_3, "5.3"}, {VMBUS_VERSION_WIN10_V5_2, "5.2"},
		{VMBUS_VERSION_WIN10_V5_1, "5.1"}, {VMBUS_VERSION_WIN10_V5, "5.0"},
		{VMBUS_VERSION_WIN10_V4_1, "4.1"}, {VMBUS_VERSION_WIN10, "4.0"},
		{VMBUS_VERSION_WIN8_1, "3.0"},     {VMBUS_VERSION_WIN8, "2.4"},
	};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		struct run r = {.echo_devices = 1,
				.vmbus = {.max_version = versions[i].version},
				.args = {"connect", versions[i].text}};
		run_to_success(&r);
	}
}

static void client_cap_limits_the_version(void **state)
{
	(void)state;
	struct run r = {.echo_devices = 1, .args = {"connect", "4.1", "4.1"}};
	run_to_success(&r);
	struct run r2 = {.echo_devices = 1, .args = {"connect", "3.0", "3.0"}};
	run_to_success(&r2);
}

static void thousands_of_packets_on_several_channels(void **state)
{
	(void)state;
	struct run r = {.cpus = 2, .echo_devices = 4, .args = {"echo", "4", "3000"}};
	struct machine *m = start(&r);
	expect_guest_success(m);
	struct vmbus_server_stats st;
	vmbus_server_get_stats(machine_vmbus(m), &st);
	assert_int_equal(st.bad_messages, 0);
	machine_stop(m);
}

static bool one_open(const struct census *c)
{
	return c->open >= 1;
}

static void hot_added_device_is_used(void **state)
{
	(void)state;
	struct run r = {.echo_devices = 1, .args = {"hotadd"}};
	struct machine *m = start(&r);
	assert_true(wait_server(m, one_open));
	assert_int_equal(machine_add_echo(m, 1), 0);
	expect_guest_success(m);
	assert_int_equal(census(m).channels, 2);
	machine_stop(m);
}

static bool busy(const struct census *c)
{
	return c->open >= 1 && c->guest_signals > 20;
}

static bool all_gone(const struct census *c)
{
	return c->channels == 0;
}

static void rescind_while_busy(void **state)
{
	(void)state;
	struct run r = {.echo_devices = 1, .args = {"rescind"}};
	struct machine *m = start(&r);
	assert_true(wait_server(m, busy));
	assert_int_equal(machine_remove_echo(m, 0), 0);
	expect_guest_success(m);
	/* The guest released the relid: nothing is left. */
	assert_true(wait_server(m, all_gone));
	machine_stop(m);
}

static void open_close_reopen(void **state)
{
	(void)state;
	struct run r = {.echo_devices = 1, .args = {"reopen"}};
	run_to_success(&r);
}

static void subchannels_are_offered_and_used(void **state)
{
	(void)state;
	struct run r = {.cpus = 2, .echo_devices = 1, .args = {"subchannels", "3"}};
	struct machine *m = start(&r);
	expect_guest_success(m); /* it echoed through each sub-channel */
	/* The guest closed the primary at its end: its sub-channels were
	 * rescinded with it (and released), the primary stays offered. */
	assert_int_equal(census(m).channels, 1);
	machine_stop(m);
}

/* The guest's bus suspend and resume (hibernation.rst) against the
 * server, without a memory image: the guest keeps its state, the server
 * rescinds the sub-channels of the closed primaries, unloads, offers
 * again; the echo devices answer on. Both with stable and scrambled
 * relids. */
static void hibernate_and_resume(void **state)
{
	(void)state;
	struct run r = {.cpus = 2, .echo_devices = 2, .args = {"hibernate", "same"}};
	struct machine *m = start(&r);
	expect_guest_success(m);
	struct vmbus_server_stats st;
	vmbus_server_get_stats(machine_vmbus(m), &st);
	assert_int_equal(st.connects, 2);
	assert_true(st.unloads >= 1);
	assert_int_equal(st.bad_messages, 0);
	machine_stop(m);
}

static void hibernate_and_resume_scrambled(void **state)
{
	(void)state;
	struct run r = {.cpus = 2,
			.echo_devices = 2,
			.vmbus = {.scramble_relids = true, .scramble_seed = 7},
			.args = {"hibernate", "different"}};
	run_to_success(&r);
}

static void retarget_moves_interrupts(void **state)
{
	(void)state;
	struct run r = {.cpus = 2, .echo_devices = 1, .args = {"retarget"}};
	run_to_success(&r);
}

static void reconnect_keeps_relids(void **state)
{
	(void)state;
	struct run r = {.echo_devices = 4, .args = {"reconnect", "same"}};
	run_to_success(&r);
}

static void scrambled_relids_change_on_reconnect(void **state)
{
	(void)state;
	struct run r = {.echo_devices = 4,
			.vmbus = {.scramble_relids = true, .scramble_seed = 42},
			.args = {"reconnect", "different"}};
	struct machine *m = start(&r);
	expect_guest_success(m); /* the guest compared the relids */
	struct vmbus_server_stats st;
	vmbus_server_get_stats(machine_vmbus(m), &st);
	assert_int_equal(st.connects, 2);
	machine_stop(m);
}

static void gpadl_over_the_limit_is_refused(void **state)
{
	(void)state;
	struct run r = {.echo_devices = 2,
			.vmbus = {.gpadl_limit = 512 * 1024},
			.args = {"gpadl-limit"}};
	run_to_success(&r);
}

static void gpadl_with_bad_pfns_is_refused(void **state)
{
	(void)state;
	struct run r = {.echo_devices = 1, .args = {"bad-gpadl"}};
	struct machine *m = start(&r);
	expect_guest_success(m);
	struct vmbus_server_stats st;
	vmbus_server_get_stats(machine_vmbus(m), &st);
	assert_true(st.bad_messages >= 1);
	machine_stop(m);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test-vmbus GUEST\n");
		return 2;
	}
	guest_path = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(negotiates_every_version_the_host_offers),
		cmocka_unit_test(client_cap_limits_the_version),
		cmocka_unit_test(thousands_of_packets_on_several_channels),
		cmocka_unit_test(hot_added_device_is_used),
		cmocka_unit_test(rescind_while_busy),
		cmocka_unit_test(open_close_reopen),
		cmocka_unit_test(subchannels_are_offered_and_used),
		cmocka_unit_test(retarget_moves_interrupts),
		cmocka_unit_test(reconnect_keeps_relids),
		cmocka_unit_test(scrambled_relids_change_on_reconnect),
		cmocka_unit_test(hibernate_and_resume),
		cmocka_unit_test(hibernate_and_resume_scrambled),
		cmocka_unit_test(gpadl_over_the_limit_is_refused),
		cmocka_unit_test(gpadl_with_bad_pfns_is_refused),
	};
	return cmocka_run_group_tests_name("vmbus end to end", tests, NULL, NULL);
}
