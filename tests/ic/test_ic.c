/* SPDX-License-Identifier: MIT */
/*
 * Integration components end to end: hvkit's IC host on the process
 * partition, the IC drivers in a guest process (hvkit-test-ic-guest). The
 * host drives requests and checks what came back; the guest reports
 * through KVP (see ic_test_guest.c).
 *
 *   test-ic GUEST
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
#include <time.h>

#include <cmocka.h>

#include "machine.h"

static const char *guest_path;

static struct machine *start(const char *const *args, const uint32_t *host_max)
{
	char *argv[16] = {(char *)guest_path};
	for (int i = 0; args && args[i] && i < 14; i++)
		argv[i + 1] = (char *)args[i];
	struct machine_config cfg = {
		.cpus = 1,
		.memory = 32 << 20,
		.guest_path = guest_path,
		.guest_argv = argv,
		.ic = true,
		.ic_config = {.heartbeat_interval_ns = 50000000ull,
			      .heartbeat_timeout_ns = 1000000000ull,
			      .timesync_interval_ns = 100000000ull},
	};
	for (int s = 0; host_max && s < IC_SERVICE_COUNT; s++)
		cfg.ic_config.max_version[s] = host_max[s];
	struct machine *m = NULL;
	assert_int_equal(machine_start(&cfg, &m), 0);
	return m;
}

static struct ic_service_status status(struct machine *m, enum ic_service s)
{
	struct ic_service_status st;
	ic_host_lock(machine_ic(m));
	ic_host_status(machine_ic(m), s, &st);
	ic_host_unlock(machine_ic(m));
	return st;
}

static void nap(void)
{
	nanosleep(&(struct timespec){0, 10000000}, NULL);
}

/* Polls until service s has negotiated (and, for heartbeat and time sync,
 * been answered). 20 s at most. */
static bool wait_ready(struct machine *m, enum ic_service s, uint32_t opens)
{
	for (int i = 0; i < 2000; i++) {
		struct ic_service_status st = status(m, s);
		bool ready = st.negotiated && st.opens >= opens;
		if (s == IC_HEARTBEAT)
			ready &= st.heartbeats_answered > 0 && st.heartbeat == IC_HEARTBEAT_ALIVE;
		if (s == IC_TIMESYNC)
			ready &= st.samples_acked > 1;
		if (ready)
			return true;
		nap();
	}
	return false;
}

/* ---- Synchronous wrappers over the asynchronous API ---- */

struct done {
	bool fired;
	int err;
	uint32_t status;
	struct ic_kvp_result kvp;
};

static void on_done(void *arg, int err, uint32_t status)
{
	struct done *d = arg;
	d->err = err;
	d->status = status;
	d->fired = true;
}

static void on_kvp(void *arg, const struct ic_kvp_result *r)
{
	struct done *d = arg;
	d->kvp = *r;
	d->err = r->err;
	d->status = r->status;
	d->fired = true;
}

static void wait_done(struct machine *m, struct done *d)
{
	for (int i = 0; i < 3000; i++) {
		ic_host_lock(machine_ic(m));
		bool fired = d->fired;
		ic_host_unlock(machine_ic(m));
		if (fired)
			return;
		nap();
	}
	fail_msg("no completion");
}

enum kvp_op { SET, GET, DEL, ENUM };

static struct done kvp(struct machine *m, enum kvp_op op, uint32_t pool, const char *key,
		       const char *value, uint32_t index)
{
	struct done d = {0};
	struct ic_host *h = machine_ic(m);
	ic_host_lock(h);
	int err = op == SET   ? kvp_host_set(h, pool, key, value, 0, on_kvp, &d)
		  : op == GET ? kvp_host_get(h, pool, key, 0, on_kvp, &d)
		  : op == DEL ? kvp_host_delete(h, pool, key, 0, on_kvp, &d)
			      : kvp_host_enumerate(h, pool, index, 0, on_kvp, &d);
	ic_host_unlock(h);
	assert_int_equal(err, 0);
	wait_done(m, &d);
	return d;
}

/* Polls the guest pool for key until it holds want. */
static bool guest_says(struct machine *m, const char *key, const char *want)
{
	for (int i = 0; i < 500; i++) {
		struct done d = kvp(m, GET, IC_KVP_POOL_GUEST, key, NULL, 0);
		if (d.err == 0 && d.status == IC_S_OK && !strcmp(d.kvp.value, want))
			return true;
		nap();
	}
	return false;
}

/* ---- Tests ---- */

static const char *const version_text[] = {"1.0", "3.0", "3.1", "3.2", "4.0"};

static const char *text_of(uint32_t v)
{
	for (size_t i = 0; i < sizeof(version_text) / sizeof(version_text[0]); i++) {
		unsigned major, minor;
		sscanf(version_text[i], "%u.%u", &major, &minor);
		if (IC_VERSION(major, minor) == v)
			return version_text[i];
	}
	return NULL;
}

/* Every version Linux accepts, per service: the guest caps itself there,
 * the host offers everything, and that version is negotiated and used. */
static void every_service_version_negotiates(void **state)
{
	(void)state;
	uint32_t max = 0;
	for (int s = 0; s < IC_SERVICE_COUNT; s++) {
		uint32_t n;
		ic_service_versions((enum ic_service)s, &n);
		max = n > max ? n : max;
	}
	for (uint32_t i = 0; i < max; i++) {
		char arg[IC_SERVICE_COUNT][32];
		const char *args[2 * IC_SERVICE_COUNT + 1] = {0};
		uint32_t want[IC_SERVICE_COUNT];
		int a = 0;
		for (int s = 0; s < IC_SERVICE_COUNT; s++) {
			uint32_t n;
			const uint32_t *list = ic_service_versions((enum ic_service)s, &n);
			want[s] = list[i < n ? i : n - 1];
			snprintf(arg[s], sizeof(arg[s]), "%s=%s", ic_service_name((enum ic_service)s),
				 text_of(want[s]));
			args[a++] = "--version";
			args[a++] = arg[s];
		}
		struct machine *m = start(args, NULL);
		for (int s = 0; s < IC_SERVICE_COUNT; s++) {
			assert_true(wait_ready(m, (enum ic_service)s, 1));
			struct ic_service_status st = status(m, (enum ic_service)s);
			assert_int_equal(st.msg_version, want[s]);
			assert_int_equal(st.fw_version, IC_FW_VERSION_3);
			assert_int_equal(st.bad, 0);
		}
		/* KVP works at this version too. */
		struct done d = kvp(m, SET, IC_KVP_POOL_EXTERNAL, "ping", "v", 0);
		assert_int_equal(d.status, IC_S_OK);
		assert_true(guest_says(m, "pong", "v"));
		machine_stop(m);
	}
}

/* A guest that offers only the oldest framework and versions. */
static void old_guest_gets_old_versions(void **state)
{
	(void)state;
	const char *args[] = {"--fw",      "1.0",          "--version", "heartbeat=1.0",
			      "--version", "shutdown=1.0", "--version", "timesync=1.0",
			      "--version", "kvp=1.0",      NULL};
	struct machine *m = start(args, NULL);
	for (int s = 0; s < IC_SERVICE_COUNT; s++) {
		assert_true(wait_ready(m, (enum ic_service)s, 1));
		struct ic_service_status st = status(m, (enum ic_service)s);
		assert_int_equal(st.fw_version, IC_FW_VERSION_1);
		assert_int_equal(st.msg_version, IC_VERSION(1, 0));
	}
	machine_stop(m);
}

/* A host capped below the guest: the host's newest is what is used. */
static void host_cap_limits_versions(void **state)
{
	(void)state;
	uint32_t cap[IC_SERVICE_COUNT] = {IC_VERSION(1, 0), IC_VERSION(3, 0), IC_VERSION(3, 0),
					  IC_VERSION(3, 0)};
	struct machine *m = start(NULL, cap);
	for (int s = 0; s < IC_SERVICE_COUNT; s++) {
		assert_true(wait_ready(m, (enum ic_service)s, 1));
		assert_int_equal(status(m, (enum ic_service)s).msg_version, cap[s]);
	}
	machine_stop(m);
}

static void shutdown_kinds_reach_the_guest(void **state)
{
	(void)state;
	static const char *const names[] = {"poweroff", "reboot", "hibernate"};
	struct machine *m = start(NULL, NULL);
	assert_true(wait_ready(m, IC_SHUTDOWN, 1));
	assert_true(wait_ready(m, IC_KVP, 1));
	for (int k = IC_SHUTDOWN_POWEROFF; k <= IC_SHUTDOWN_HIBERNATE; k++) {
		struct done d = {0};
		ic_host_lock(machine_ic(m));
		int err = ic_shutdown_request(machine_ic(m), (enum ic_shutdown_kind)k, false, 0x80000000,
					      30, "test", 0, on_done, &d);
		ic_host_unlock(machine_ic(m));
		assert_int_equal(err, 0);
		wait_done(m, &d);
		assert_int_equal(d.err, 0);
		assert_int_equal(d.status, IC_S_OK);
		assert_true(guest_says(m, "shutdown", names[k]));
	}
	machine_stop(m);
}

static void reboot_of_unresponsive_guest_times_out(void **state)
{
	(void)state;
	const char *args[] = {"--mute-shutdown", NULL};
	struct machine *m = start(args, NULL);
	assert_true(wait_ready(m, IC_SHUTDOWN, 1));
	struct done d = {0};
	ic_host_lock(machine_ic(m));
	assert_int_equal(ic_shutdown_request(machine_ic(m), IC_SHUTDOWN_REBOOT, true, 0, 0, NULL,
					     300000000ull, on_done, &d),
			 0);
	ic_host_unlock(machine_ic(m));
	wait_done(m, &d);
	assert_int_equal(d.err, -ETIMEDOUT);
	assert_int_equal(status(m, IC_SHUTDOWN).timeouts, 1);
	machine_stop(m);
}

static void kvp_set_get_delete_and_intrinsics(void **state)
{
	(void)state;
	struct machine *m = start(NULL, NULL);
	assert_true(wait_ready(m, IC_KVP, 1));
	/* Set from the host, read in the guest (its main loop copies it). */
	struct done d = kvp(m, SET, IC_KVP_POOL_EXTERNAL, "ping", "h\xc3\xa9llo \xf0\x9f\x98\x80", 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.status, IC_S_OK);
	assert_true(guest_says(m, "pong", "h\xc3\xa9llo \xf0\x9f\x98\x80"));
	d = kvp(m, GET, IC_KVP_POOL_EXTERNAL, "ping", NULL, 0);
	assert_string_equal(d.kvp.value, "h\xc3\xa9llo \xf0\x9f\x98\x80");
	d = kvp(m, DEL, IC_KVP_POOL_EXTERNAL, "ping", NULL, 0);
	assert_int_equal(d.status, IC_S_OK);
	d = kvp(m, GET, IC_KVP_POOL_EXTERNAL, "ping", NULL, 0);
	assert_int_equal(d.status, IC_E_FAIL);
	/* The guest's intrinsic data, by index, to the end. */
	d = kvp(m, ENUM, IC_KVP_POOL_AUTO, NULL, NULL, 0);
	assert_int_equal(d.status, IC_S_OK);
	assert_string_equal(d.kvp.key, "FullyQualifiedDomainName");
	assert_string_equal(d.kvp.value, "ic-test-guest");
	d = kvp(m, ENUM, IC_KVP_POOL_AUTO, NULL, NULL, 1);
	assert_string_equal(d.kvp.key, "OSName");
	d = kvp(m, ENUM, IC_KVP_POOL_AUTO, NULL, NULL, 2);
	assert_int_equal(d.status, IC_S_CONT);
	/* The host may not write the guest's pools, nor overlong keys. */
	char longkey[300];
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	ic_host_lock(machine_ic(m));
	assert_int_equal(kvp_host_set(machine_ic(m), IC_KVP_POOL_GUEST, "a", "b", 0, on_kvp, &d),
			 -EPERM);
	assert_int_equal(kvp_host_set(machine_ic(m), IC_KVP_POOL_EXTERNAL, longkey, "b", 0, on_kvp,
				      &d),
			 -ENAMETOOLONG);
	ic_host_unlock(machine_ic(m));
	machine_stop(m);
}

/* The guest closes KVP: the host rescinds it and offers it again at once
 * (hibernation.rst). The guest's re-binding of that offer is not checked
 * here: the VMBus client drops an offer whose instance is still held by
 * the rescinded channel it has not yet released (docs/ic.md). */
static void count_kvp_offers(void *arg, const struct vmbus_server_channel_info *ci)
{
	struct hv_guid kvp = IC_KVP_INSTANCE;
	if (hv_guid_equal(&ci->instance_id, &kvp) && ci->state == VMBUS_CHANNEL_OFFERED)
		(*(uint32_t *)arg)++;
}

static void kvp_close_rescinds_and_reoffers(void **state)
{
	(void)state;
	struct machine *m = start(NULL, NULL);
	assert_true(wait_ready(m, IC_KVP, 1));
	struct done d = kvp(m, SET, IC_KVP_POOL_EXTERNAL, "reopen", "1", 0);
	assert_int_equal(d.status, IC_S_OK);
	uint32_t offered = 0;
	for (int i = 0; i < 2000 && !offered; i++) {
		nap();
		vmbus_server_for_each_channel(machine_vmbus(m), count_kvp_offers, &offered);
	}
	assert_int_equal(offered, 1);
	struct ic_service_status st = status(m, IC_KVP);
	assert_false(st.open);
	assert_int_equal(st.opens, 1);
	/* A KVP request now finds no channel. */
	ic_host_lock(machine_ic(m));
	assert_int_equal(kvp_host_get(machine_ic(m), 0, "x", 0, on_kvp, &d), -ENOTCONN);
	ic_host_unlock(machine_ic(m));
	machine_stop(m);
}

/* Heartbeats flow; a guest that stops (killed) becomes unresponsive or
 * unknown (its channels close with it). */
static void heartbeat_alive(void **state)
{
	(void)state;
	struct machine *m = start(NULL, NULL);
	assert_true(wait_ready(m, IC_HEARTBEAT, 1));
	assert_true(wait_ready(m, IC_TIMESYNC, 1));
	ic_host_lock(machine_ic(m));
	assert_int_equal(ic_heartbeat_state(machine_ic(m)), IC_HEARTBEAT_ALIVE);
	ic_host_unlock(machine_ic(m));
	struct ic_service_status st = status(m, IC_TIMESYNC);
	assert_true(st.samples_acked >= 2);
	machine_stop(m);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test-ic GUEST\n");
		return 2;
	}
	guest_path = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_service_version_negotiates),
		cmocka_unit_test(old_guest_gets_old_versions),
		cmocka_unit_test(host_cap_limits_versions),
		cmocka_unit_test(shutdown_kinds_reach_the_guest),
		cmocka_unit_test(reboot_of_unresponsive_guest_times_out),
		cmocka_unit_test(kvp_set_get_delete_and_intrinsics),
		cmocka_unit_test(kvp_close_rescinds_and_reoffers),
		cmocka_unit_test(heartbeat_alive),
	};
	/* IC_TEST=name runs one test (while debugging). */
	if (getenv("IC_TEST"))
		cmocka_set_test_filter(getenv("IC_TEST"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
