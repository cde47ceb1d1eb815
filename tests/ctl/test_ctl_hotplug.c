/* SPDX-License-Identifier: MIT */
/*
 * Hot-plugged devices through the control socket, end to end: `hvkit run
 * --control` with one NIC and one disk on the process partition, and
 * `hvkit ctl` hot-adding a NIC (a new VMBus offer with its own instance),
 * plugging its cable out and in, and rescinding it; rescinding the storage
 * controller and bringing one back with a disk; bad requests get clear
 * errors.
 *
 *   test-ctl-hotplug HVKIT
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ctl_run.h"

#define SETTLE_STEPS 300 /* x 100 ms: how long the machine may take to react */

static const char *hvkit;
static char dir[64], sock[128], disk[96];
static pid_t run_pid;

#define ctl(o, ...) assert_int_equal(ctl_run(hvkit, (o), __VA_ARGS__), 0)

static json_t *status_json(void)
{
	struct ctl_output o;
	ctl(&o, "--json", sock, "status", NULL);
	return o.status ? NULL : json_loads(o.out, 0, NULL);
}

/* Primary channels of class cls not rescinded. */
static uint32_t offers_of(json_t *st, const char *want)
{
	uint32_t n = 0;
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(json_object_get(st, "vmbus"), "channels"), i, c)
	{
		const char *cls = json_string_value(json_object_get(c, "class"));
		const char *state = json_string_value(json_object_get(c, "state"));
		n += cls && !strcmp(cls, want) && strcmp(state, "rescinded") &&
		     json_integer_value(json_object_get(c, "sub_index")) == 0;
	}
	return n;
}

static uint32_t nic_devices(json_t *st)
{
	uint32_t n = 0;
	size_t i;
	json_t *d;
	json_array_foreach(json_object_get(st, "devices"), i, d)
		n += !strcmp(json_string_value(json_object_get(d, "kind")), "nic");
	return n;
}

/* Polls status until settled(status, n) holds; fails naming what. */
static void wait_status(bool (*settled)(json_t *st, uint32_t n), uint32_t n, const char *what)
{
	for (int i = 0; i < SETTLE_STEPS; i++) {
		json_t *st = status_json();
		bool ok = st && settled(st, n);
		json_decref(st);
		if (ok)
			return;
		usleep(100000);
	}
	fail_msg("never saw %u %s offered", n, what);
}

static bool nics_settled(json_t *st, uint32_t n)
{
	const char *vb = json_string_value(json_object_get(json_object_get(st, "vmbus"), "state"));
	return vb && !strcmp(vb, "connected") && offers_of(st, "nic") == n && nic_devices(st) == n;
}

static void wait_nics(uint32_t n)
{
	wait_status(nics_settled, n, "NICs");
}

static void expect(struct ctl_output *o, int status, const char *text)
{
	const char *where = status ? o->err : o->out;
	if (o->status != status || !strstr(where, text))
		fail_msg("expected exit %d and '%s', got exit %d: %s%s", status, text, o->status,
			 o->out, o->err);
}

static int start_machine(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/hvkit-ctl-hotplug-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/vm.sock", dir);
	snprintf(disk, sizeof(disk), "%s/a.img", dir);
	FILE *f = fopen(disk, "w");
	if (!f || ftruncate(fileno(f), 1 << 20) || fclose(f))
		return -1;
	char disk_arg[112];
	snprintf(disk_arg, sizeof(disk_arg), "path=%s", disk);
	const char *argv[] = {hvkit, "run", "--control", sock, "--packets", "20",
			      "--net", "loopback", "--disk", disk_arg, NULL};
	return ctl_machine_start(hvkit, argv, &run_pid);
}

static int stop_machine(void **state)
{
	(void)state;
	ctl_machine_kill(&run_pid);
	unlink(sock);
	unlink(disk);
	rmdir(dir);
	return 0;
}

static void hot_add_link_remove(void **state)
{
	(void)state;
	struct ctl_output o;
	wait_nics(1);

	ctl(&o, sock, "net-add", "sink,mac=52:54:00:00:00:09", NULL);
	expect(&o, 0, "added NIC 1\n");
	wait_nics(2);
	ctl(&o, sock, "net-add", "user,hostfwd=tcp:127.0.0.1:0-:80", NULL);
	expect(&o, 0, "added NIC 2\n");
	wait_nics(3);

	ctl(&o, sock, "net-link", "1", "down", NULL);
	expect(&o, 0, "NIC 1 link down\n");
	ctl(&o, sock, "net-link", "1", "up", NULL);
	expect(&o, 0, "NIC 1 link up\n");

	ctl(&o, sock, "net-remove", "1", NULL);
	expect(&o, 0, "removed NIC 1\n");
	wait_nics(2);
	ctl(&o, sock, "net-remove", "1", NULL);
	expect(&o, 1, "(not-found)");
	ctl(&o, sock, "net-link", "1", "up", NULL);
	expect(&o, 1, "there is no NIC 1");

	/* The free slot is used again. */
	ctl(&o, sock, "net-add", "loopback", NULL);
	expect(&o, 0, "added NIC 1\n");
	wait_nics(3);
	ctl(&o, sock, "net-remove", "2", NULL);
	expect(&o, 0, "removed NIC 2\n");
	wait_nics(2);
}

static bool controllers_settled(json_t *st, uint32_t n)
{
	return offers_of(st, "scsi") == n;
}

static void wait_controllers(uint32_t n)
{
	wait_status(controllers_settled, n, "storage controllers");
}

static void storage_controller_remove_and_add(void **state)
{
	(void)state;
	struct ctl_output o;
	wait_controllers(1);
	ctl(&o, sock, "storage-remove", NULL);
	expect(&o, 0, "removed the storage controller\n");
	wait_controllers(0);
	ctl(&o, sock, "storage-remove", NULL);
	expect(&o, 1, "there is no storage controller");
	ctl(&o, sock, "disk-remove", "0", NULL);
	expect(&o, 1, "(not-found)");
	ctl(&o, sock, "storage-remove", "now", NULL);
	expect(&o, 2, "storage-remove takes no arguments");
	/* A disk brings a new controller. */
	char arg[112];
	snprintf(arg, sizeof(arg), "path=%s", disk);
	ctl(&o, sock, "disk-add", arg, NULL);
	expect(&o, 0, "added disk at LUN 0\n");
	wait_controllers(1);
}

static void bad_requests(void **state)
{
	(void)state;
	struct ctl_output o;
	ctl(&o, sock, "net-add", "bogus", NULL);
	expect(&o, 1, "unknown backend 'bogus'");
	ctl(&o, sock, "net-add", "user,hostfwd=nonsense", NULL);
	expect(&o, 1, "hostfwd=nonsense");
	ctl(&o, sock, "net-link", "0", "sideways", NULL);
	expect(&o, 2, "net-link NIC up|down");
	ctl(&o, sock, "net-remove", "zero", NULL);
	expect(&o, 2, "bad NIC number");
	ctl(&o, sock, "net-add", NULL);
	expect(&o, 2, "net-add SPEC");
	/* The raw protocol checks too. */
	ctl(&o, sock, "status", NULL);
	assert_int_equal(o.status, 0);
	wait_nics(2);
}

static void quit(void **state)
{
	(void)state;
	struct ctl_output o;
	ctl(&o, sock, "quit", NULL);
	assert_int_equal(o.status, 0);
	assert_int_equal(ctl_machine_wait(&run_pid), 0);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-ctl-hotplug HVKIT\n");
		return 2;
	}
	hvkit = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hot_add_link_remove),
		cmocka_unit_test(storage_controller_remove_and_add),
		cmocka_unit_test(bad_requests),
		cmocka_unit_test(quit),
	};
	return cmocka_run_group_tests(tests, start_machine, stop_machine);
}
