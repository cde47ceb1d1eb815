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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "machine.h"

static const char *guest_path;
static char copy_root[64]; /* the guest's --copy-dir, under /tmp */

static struct machine *start(const char *const *args, const uint32_t *host_max)
{
	char *argv[20] = {(char *)guest_path, "--copy-dir", copy_root};
	for (int i = 0; args && args[i] && i < 16; i++)
		argv[i + 3] = (char *)args[i];
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
	assert_int_equal(machine_start(&cfg, &m, NULL, 0), 0);
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

/* The request sent (0, and its answer in *d) or refused at once (the
 * channel not ready: -errno). */
static int kvp_try(struct machine *m, enum kvp_op op, uint32_t pool, const char *key,
		   const char *value, uint32_t index, struct done *d)
{
	*d = (struct done){0};
	struct ic_host *h = machine_ic(m);
	ic_host_lock(h);
	int err = op == SET   ? kvp_host_set(h, pool, key, value, 0, on_kvp, d)
		  : op == GET ? kvp_host_get(h, pool, key, 0, on_kvp, d)
		  : op == DEL ? kvp_host_delete(h, pool, key, 0, on_kvp, d)
			      : kvp_host_enumerate(h, pool, index, 0, on_kvp, d);
	ic_host_unlock(h);
	if (!err)
		wait_done(m, d);
	return err;
}

static struct done kvp(struct machine *m, enum kvp_op op, uint32_t pool, const char *key,
		       const char *value, uint32_t index)
{
	struct done d;
	assert_int_equal(kvp_try(m, op, pool, key, value, index, &d), 0);
	return d;
}

/* Polls the guest pool for key until it holds want. */
static bool guest_says(struct machine *m, const char *key, const char *want)
{
	for (int i = 0; i < 500; i++) {
		/* KVP may be closed for a moment (hibernation): ask again. */
		struct done d;
		if (kvp_try(m, GET, IC_KVP_POOL_GUEST, key, NULL, 0, &d) == 0 && d.err == 0 &&
		    d.status == IC_S_OK && !strcmp(d.kvp.value, want))
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
	for (int s = 0; s <= IC_KVP; s++) {
		assert_true(wait_ready(m, (enum ic_service)s, 1));
		struct ic_service_status st = status(m, (enum ic_service)s);
		assert_int_equal(st.fw_version, IC_FW_VERSION_1);
		assert_int_equal(st.msg_version, IC_VERSION(1, 0));
	}
	/* VSS and file copy need framework 3.0: the guest matches nothing
	 * (counts 0/0) and they stay unnegotiated. */
	assert_false(status(m, IC_VSS).negotiated);
	assert_false(status(m, IC_FCOPY).negotiated);
	assert_true(status(m, IC_VSS).responses >= 1);
	machine_stop(m);
}

/* A host capped below the guest: the host's newest is what is used. */
static void host_cap_limits_versions(void **state)
{
	(void)state;
	uint32_t cap[IC_SERVICE_COUNT] = {IC_VERSION(1, 0), IC_VERSION(3, 0), IC_VERSION(3, 0),
					  IC_VERSION(3, 0), IC_VSS_VERSION_5, IC_FCOPY_VERSION_1_1};
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
 * (hibernation.rst); the guest binds the new offer and KVP works again. */
static void kvp_close_rescinds_and_reoffers(void **state)
{
	(void)state;
	struct machine *m = start(NULL, NULL);
	assert_true(wait_ready(m, IC_KVP, 1));
	struct done d = kvp(m, SET, IC_KVP_POOL_EXTERNAL, "reopen", "1", 0);
	assert_int_equal(d.status, IC_S_OK);
	assert_true(wait_ready(m, IC_KVP, 2));
	d = kvp(m, SET, IC_KVP_POOL_EXTERNAL, "ping", "again", 0);
	assert_int_equal(d.status, IC_S_OK);
	assert_true(guest_says(m, "pong", "again"));
	struct vmbus_server_stats st;
	vmbus_server_get_stats(machine_vmbus(m), &st);
	assert_int_equal(st.bad_messages, 0);
	machine_stop(m);
}

/* The guest's bus suspend and resume (hibernation.rst), asked for over
 * KVP: every service negotiates again on its reopened channel (KVP, which
 * the host rescinds when closed, as a new device), heartbeats go on, and
 * the guest's pool keeps what it held. */
static void hibernation_keeps_the_services(void **state)
{
	(void)state;
	struct machine *m = start(NULL, NULL);
	assert_true(wait_ready(m, IC_KVP, 1));
	assert_true(wait_ready(m, IC_HEARTBEAT, 1));
	assert_int_equal(kvp(m, SET, IC_KVP_POOL_EXTERNAL, "ping", "before", 0).status, IC_S_OK);
	assert_true(guest_says(m, "pong", "before"));
	assert_int_equal(kvp(m, SET, IC_KVP_POOL_EXTERNAL, "hibernate", "1", 0).status, IC_S_OK);
	assert_true(guest_says(m, "hibernated", "ok"));
	assert_true(guest_says(m, "pong", "before")); /* the pool was kept */
	for (int s = 0; s < IC_SERVICE_COUNT; s++)
		assert_true(wait_ready(m, (enum ic_service)s, 2));
	assert_int_equal(kvp(m, SET, IC_KVP_POOL_EXTERNAL, "ping", "after", 0).status, IC_S_OK);
	assert_true(guest_says(m, "pong", "after"));
	struct vmbus_server_stats st;
	vmbus_server_get_stats(machine_vmbus(m), &st);
	assert_int_equal(st.bad_messages, 0);
	assert_int_equal(st.connects, 2);
	machine_stop(m);
}

static struct done vss(struct machine *m, uint32_t op)
{
	struct done d = {0};
	ic_host_lock(machine_ic(m));
	int err = vss_request(machine_ic(m), op, 0, on_done, &d);
	ic_host_unlock(machine_ic(m));
	assert_int_equal(err, 0);
	wait_done(m, &d);
	return d;
}

static void vss_freeze_thaw_and_hot_backup(void **state)
{
	(void)state;
	struct machine *m = start(NULL, NULL);
	assert_true(wait_ready(m, IC_VSS, 1));
	assert_true(wait_ready(m, IC_KVP, 1));
	assert_int_equal(status(m, IC_VSS).msg_version, IC_VSS_VERSION_5);
	struct done d = vss(m, IC_VSS_OP_FREEZE);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.status, IC_S_OK);
	assert_true(guest_says(m, "vss", "freeze"));
	d = vss(m, IC_VSS_OP_THAW);
	assert_int_equal(d.status, IC_S_OK);
	assert_true(guest_says(m, "vss", "thaw"));
	d = vss(m, IC_VSS_OP_HOT_BACKUP);
	assert_int_equal(d.status, IC_S_OK);
	machine_stop(m);
}

static struct done copy(struct machine *m, const char *host, const char *guest, uint32_t flags)
{
	struct done d = {0};
	ic_host_lock(machine_ic(m));
	int err = fcopy_start(machine_ic(m), host, guest, flags, 0, on_done, &d);
	ic_host_unlock(machine_ic(m));
	assert_int_equal(err, 0);
	wait_done(m, &d);
	return d;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(*len + 1);
	assert_int_equal(fread(b, 1, *len, f), *len);
	fclose(f);
	return b;
}

static void file_copy_10mib_arrives_identical(void **state)
{
	(void)state;
	char host_file[] = "/tmp/hvkit-ic-src-XXXXXX";
	int fd = mkstemp(host_file);
	assert_true(fd >= 0);
	size_t size = 10u << 20;
	uint8_t *data = malloc(size);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < size; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		data[i] = (uint8_t)x;
	}
	assert_int_equal(write(fd, data, size), (ssize_t)size);
	close(fd);

	struct machine *m = start(NULL, NULL);
	assert_true(wait_ready(m, IC_FCOPY, 1));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct done d = copy(m, host_file, "/in/sub/file.bin", IC_FCOPY_FLAG_CREATE_PATH);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* A figure, not a check. */
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct ic_service_status st = status(m, IC_FCOPY);
	print_message("# 10 MiB file copy: %.3f s, %.1f MiB/s, %llu messages\n", s, 10.0 / s,
		      (unsigned long long)st.responses);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.status, IC_S_OK);
	char path[128];
	snprintf(path, sizeof(path), "%s/in/sub/file.bin", copy_root);
	size_t got_len = 0;
	uint8_t *got = slurp(path, &got_len);
	assert_non_null(got);
	assert_int_equal(got_len, size);
	assert_memory_equal(got, data, size);
	free(got);
	/* Again without OVERWRITE: the guest says it exists. */
	d = copy(m, host_file, "/in/sub/file.bin", 0);
	assert_int_equal(d.status, IC_ERROR_ALREADY_EXISTS);
	d = copy(m, host_file, "/in/sub/file.bin", IC_FCOPY_FLAG_OVERWRITE);
	assert_int_equal(d.status, IC_S_OK);
	machine_stop(m);
	unlink(path);
	unlink(host_file);
	free(data);
}

static void file_copy_cannot_escape(void **state)
{
	(void)state;
	char host_file[] = "/tmp/hvkit-ic-src-XXXXXX";
	int fd = mkstemp(host_file);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "escape", 6), 6);
	close(fd);
	char outside[128], link_path[128];
	snprintf(outside, sizeof(outside), "%s-outside", copy_root);
	mkdir(outside, 0755);
	snprintf(link_path, sizeof(link_path), "%s/link", copy_root);
	unlink(link_path);
	assert_int_equal(symlink(outside, link_path), 0);

	struct machine *m = start(NULL, NULL);
	assert_true(wait_ready(m, IC_FCOPY, 1));
	static const char *const bad[] = {"../escape.bin", "/a/../../escape.bin", "link/escape.bin",
					  "ok/.."};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct done d = copy(m, host_file, bad[i], IC_FCOPY_FLAG_CREATE_PATH);
		assert_int_equal(d.err, 0);
		assert_int_equal(d.status, IC_E_FAIL);
	}
	char p[160];
	snprintf(p, sizeof(p), "%s/escape.bin", outside);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(access("/tmp/escape.bin", F_OK), -1); /* root/.. */
	machine_stop(m);
	unlink(link_path);
	rmdir(outside);
	unlink(host_file);
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
	snprintf(copy_root, sizeof(copy_root), "/tmp/hvkit-ic-copy-XXXXXX");
	if (!mkdtemp(copy_root))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_service_version_negotiates),
		cmocka_unit_test(old_guest_gets_old_versions),
		cmocka_unit_test(host_cap_limits_versions),
		cmocka_unit_test(shutdown_kinds_reach_the_guest),
		cmocka_unit_test(reboot_of_unresponsive_guest_times_out),
		cmocka_unit_test(kvp_set_get_delete_and_intrinsics),
		cmocka_unit_test(kvp_close_rescinds_and_reoffers),
		cmocka_unit_test(hibernation_keeps_the_services),
		cmocka_unit_test(heartbeat_alive),
		cmocka_unit_test(vss_freeze_thaw_and_hot_backup),
		cmocka_unit_test(file_copy_10mib_arrives_identical),
		cmocka_unit_test(file_copy_cannot_escape),
	};
	/* IC_TEST=name runs one test (while debugging). */
	if (getenv("IC_TEST"))
		cmocka_set_test_filter(getenv("IC_TEST"));
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", copy_root);
	if (system(cmd))
		failed++;
	return failed;
}
