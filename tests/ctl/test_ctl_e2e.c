/* SPDX-License-Identifier: MIT */
/*
 * The control socket end to end, as a user drives it: `hvkit run
 * --control` with hvkit-guest on the process partition, and the `hvkit
 * ctl` binary against it. Status shows the echo channels the guest
 * opened; device add makes a channel the guest opens; device remove
 * rescinds it; the integration commands answer service-not-offered; quit
 * stops the machine and hvkit run exits 0.
 *
 *   test-ctl-e2e HVKIT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ctl_run.h"

#define SETTLE_STEPS 300 /* x 100 ms: how long the guest may take to react */

extern char **environ;

static const char *hvkit;
static char dir[64], sock[128], copies[96];
static pid_t run_pid;

/* hvkit ctl SOCKET-or-options args..., NULL-terminated. */
#define ctl(o, ...) assert_int_equal(ctl_run(hvkit, (o), __VA_ARGS__), 0)

static json_t *status_json(void)
{
	struct ctl_output o;
	ctl(&o, "--json", sock, "status", NULL);
	if (o.status)
		return NULL;
	json_t *r = json_loads(o.out, 0, NULL);
	assert_non_null(r);
	return r;
}

static bool is_echo(json_t *channel)
{
	const char *cls = json_string_value(json_object_get(channel, "class"));
	return cls && !strcmp(cls, "echo");
}

/* Open channels of echo instance `instance` (-1: all echo channels). */
static uint32_t open_channels(json_t *st, long instance)
{
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "%08lx-", instance);
	uint32_t n = 0;
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(json_object_get(st, "vmbus"), "channels"), i, c)
	{
		const char *id = json_string_value(json_object_get(c, "instance"));
		const char *state = json_string_value(json_object_get(c, "state"));
		if (is_echo(c) && (instance < 0 || !strncmp(id, prefix, 9)) &&
		    !strcmp(state, "open"))
			n++;
	}
	return n;
}

/* Echo channels in any state (the integration components are there too). */
static uint32_t all_channels(json_t *st)
{
	uint32_t n = 0;
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(json_object_get(st, "vmbus"), "channels"), i, c)
		n += is_echo(c);
	return n;
}

/* Polls status until `want` holds. */
static json_t *wait_for(bool (*want)(json_t *st))
{
	for (int i = 0; i < SETTLE_STEPS; i++) {
		json_t *st = status_json();
		if (st && want(st))
			return st;
		json_decref(st);
		usleep(100000);
	}
	fail_msg("the machine never reached the expected state");
	return NULL;
}

static bool booted(json_t *st)
{
	return open_channels(st, -1) == 4; /* 2 echo devices x (primary + 1 sub) */
}

static bool hot_added(json_t *st)
{
	return open_channels(st, 5) == 2 && open_channels(st, -1) == 6;
}

static bool hot_removed(json_t *st)
{
	return all_channels(st) == 4 && open_channels(st, -1) == 4;
}

static void expect_failure(struct ctl_output *o, int status, const char *text)
{
	if (o->status != status || !strstr(o->err, text))
		fail_msg("expected exit %d and '%s', got exit %d: %s", status, text, o->status,
			 o->err);
}

/* The socket, the copy directory and what the tests left in them. */
static void remove_workdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir[0] && system(cmd))
		fprintf(stderr, "cannot remove %s\n", dir);
}

static int start_machine(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/hvkit-ctl-e2e-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/vm.sock", dir);
	snprintf(copies, sizeof(copies), "%s/copies", dir);
	if (mkdir(copies, 0700))
		return -1;
	const char *argv[] = {hvkit,	"run",	    "--control", sock, "--packets",
			      "20",	"--copy-dir", copies,	 NULL};
	return ctl_machine_start(hvkit, argv, &run_pid);
}

static int stop_machine(void **state)
{
	(void)state;
	ctl_machine_kill(&run_pid);
	unlink(sock);
	remove_workdir();
	return 0;
}

static void test_status(void **state)
{
	(void)state;
	json_t *st = wait_for(booted);
	json_t *m = json_object_get(st, "machine");
	assert_string_equal(json_string_value(json_object_get(m, "partition")), "process");
	assert_int_equal(json_integer_value(json_object_get(m, "vps")), 2);
	assert_int_equal(json_integer_value(json_object_get(m, "memory")), 64 << 20);
	json_t *vb = json_object_get(st, "vmbus");
	assert_string_equal(json_string_value(json_object_get(vb, "state")), "connected");
	assert_string_equal(json_string_value(json_object_get(vb, "version")), "5.3");
	size_t i;
	json_t *c;
	uint32_t echoes = 0;
	json_array_foreach(json_object_get(vb, "channels"), i, c)
	{
		assert_non_null(json_string_value(json_object_get(c, "class")));
		echoes += is_echo(c);
		assert_true(json_integer_value(json_object_get(c, "relid")) > 0);
		assert_true(json_integer_value(json_object_get(c, "target_vp")) < 2);
		assert_true(json_integer_value(json_object_get(c, "sub_index")) <= 1);
	}
	assert_int_equal(echoes, 4);
	assert_int_equal(json_array_size(json_object_get(st, "devices")), 2);
	assert_false(json_is_true(json_object_get(m, "paused")));
	json_decref(st);

	/* The process partition's guest is a program: it cannot pause. */
	struct ctl_output p;
	ctl(&p, sock, "pause", NULL);
	expect_failure(&p, 1, "this partition cannot pause");

	/* The human form says the same. */
	struct ctl_output o;
	ctl(&o, sock, "status", NULL);
	assert_int_equal(o.status, 0);
	assert_non_null(strstr(o.out, "process partition, 2 VPs"));
	assert_non_null(strstr(o.out, "vmbus: connected 5.3, 10 channels")); /* 4 echo, 6 ICs */
}

static void test_hot_add_and_remove(void **state)
{
	(void)state;
	struct ctl_output o;
	ctl(&o, sock, "device", "add", "echo", "5", NULL);
	assert_int_equal(o.status, 0);
	assert_string_equal(o.out, "added echo 5\n");
	/* The guest opens it and its sub-channel. */
	json_decref(wait_for(hot_added));

	ctl(&o, sock, "device", "add", "echo", "5", NULL);
	expect_failure(&o, 1, "(exists)");

	ctl(&o, sock, "device", "remove", "echo", "5", NULL);
	assert_int_equal(o.status, 0);
	/* Rescinded; the guest releases it and it is gone. */
	json_decref(wait_for(hot_removed));

	ctl(&o, sock, "device", "remove", "echo", "5", NULL);
	expect_failure(&o, 1, "(not-found)");
	ctl(&o, sock, "device", "add", "disk", "1", NULL);
	expect_failure(&o, 1, "(bad-args)");
}

static bool heartbeat_alive(json_t *st)
{
	const char *hb = json_string_value(json_object_get(json_object_get(st, "services"),
							   "heartbeat"));
	return hb && !strcmp(hb, "alive");
}

static void expect_success(struct ctl_output *o, const char *out)
{
	if (o->status != 0 || (out && strcmp(o->out, out)))
		fail_msg("expected exit 0 and '%s', got exit %d: %s%s", out ? out : "", o->status,
			 o->out, o->err);
}

/* The integration components through hvkit ctl, against the real guest. */
static void test_ic_commands(void **state)
{
	(void)state;
	struct ctl_output o;
	json_decref(wait_for(heartbeat_alive));

	ctl(&o, sock, "kvp", "set", "colour", "blue", NULL);
	expect_success(&o, NULL);
	ctl(&o, sock, "kvp", "get", "colour", NULL);
	expect_success(&o, "blue\n");
	ctl(&o, sock, "kvp", "list", NULL);
	expect_success(&o, "colour=blue\n");
	ctl(&o, sock, "kvp", "delete", "colour", NULL);
	expect_success(&o, NULL);
	ctl(&o, sock, "kvp", "get", "colour", NULL);
	expect_failure(&o, 1, "(not-found)");
	ctl(&o, sock, "kvp", "list", "--pool", "2", NULL); /* auto: the intrinsic data */
	assert_int_equal(o.status, 0);
	assert_non_null(strstr(o.out, "FullyQualifiedDomainName="));

	ctl(&o, sock, "vss", "freeze", NULL);
	expect_success(&o, NULL);
	ctl(&o, sock, "vss", "thaw", NULL);
	expect_success(&o, NULL);
	ctl(&o, sock, "hibernate", "--reason", "test", NULL);
	expect_success(&o, NULL);

	char file[160], copied[192];
	snprintf(file, sizeof(file), "%s/payload", dir);
	FILE *fp = fopen(file, "w");
	for (int i = 0; i < 20000; i++)
		fprintf(fp, "line %d\n", i);
	fclose(fp);
	ctl(&o, sock, "copy", file, "in/payload", NULL);
	assert_int_equal(o.status, 0);
	snprintf(copied, sizeof(copied), "%s/copies/in/payload", dir);
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cmp -s %s %s", file, copied);
	assert_int_equal(system(cmd), 0);
	ctl(&o, sock, "copy", file, "../outside", NULL); /* out of the copy directory */
	expect_failure(&o, 1, "guest refused");
	unlink(copied);
}

static void test_usage_errors(void **state)
{
	(void)state;
	struct ctl_output o;
	ctl(&o, sock, "kvp", "frob", NULL);
	expect_failure(&o, 2, "kvp set KEY VALUE");
	ctl(&o, sock, "device", "add", "echo", "five", NULL);
	expect_failure(&o, 2, "bad instance");
	ctl(&o, sock, "launch", NULL);
	expect_failure(&o, 2, "unknown command");
	ctl(&o, sock, "shutdown", "--timeout", "0", NULL);
	expect_failure(&o, 2, "--timeout");
	ctl(&o, "/nonexistent/vm.sock", "status", NULL);
	expect_failure(&o, 3, "no such socket");

	/* A second machine on the same socket is refused before it starts;
	 * the first one is unharmed. */
	struct ctl_output second;
	assert_int_equal(ctl_run_tool(hvkit, &second, "run", "--control", sock, NULL), 0);
	expect_failure(&second, 70, "a machine is listening there");
	ctl(&o, sock, "status", NULL);
	assert_int_equal(o.status, 0);
}

static void test_quit(void **state)
{
	(void)state;
	struct ctl_output o;
	ctl(&o, sock, "quit", NULL);
	assert_int_equal(o.status, 0);
	int st;
	assert_int_equal(waitpid(run_pid, &st, 0), run_pid);
	run_pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* Nothing is left listening. */
	ctl(&o, sock, "status", NULL);
	expect_failure(&o, 3, "no such socket");
}

/* SIGTERM stops the machine as quit does, and removes the socket; the
 * exit status says a signal did it (128 + SIGTERM). */
static void test_sigterm(void **state)
{
	remove_workdir(); /* the first machine's */
	assert_int_equal(start_machine(state), 0);
	json_decref(wait_for(booted));
	assert_int_equal(kill(run_pid, SIGTERM), 0);
	int st;
	assert_int_equal(waitpid(run_pid, &st, 0), run_pid);
	run_pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 128 + SIGTERM);
	assert_int_equal(access(sock, F_OK), -1);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-ctl-e2e HVKIT\n");
		return 2;
	}
	hvkit = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_hot_add_and_remove),
		cmocka_unit_test(test_ic_commands),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_quit),
		cmocka_unit_test(test_sigterm),
	};
	return cmocka_run_group_tests(tests, start_machine, stop_machine);
}
