/* SPDX-License-Identifier: MIT */
/*
 * hvkit run --vm-id (docs/lifecycle.md): the SCSI controller's and the
 * NICs' instance GUIDs follow from the VM id, the same on every run and
 * different for another id; without one, the built-in GUIDs. Seen as a
 * guest sees them, in the offers (hvkit ctl status lists each channel's
 * instance GUID), with the process guest connected.
 */
#include <fcntl.h>
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

#define SETTLE_STEPS 300 /* x 100 ms: how long the guest may take to connect */

static const char *hvkit;
static char dir[64], sock[128], disk[128];

/* uuid.uuid5(UUID(VM_A), 'hvkit/storvsp/0'), ... 'hvkit/netvsp/0', '/1'. */
#define VM_A "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
#define VM_A_SCSI "6c40b2d3-c5be-50f6-b2f2-c46975140ec0"
#define VM_A_NIC0 "9d991b7a-2785-5e3a-96e4-bb086c7b68b6"
#define VM_A_NIC1 "ea9868a7-a481-521f-9c5f-3e575f3cd105"
#define VM_B "3f2504e0-4f89-11d3-9a0c-0305e82c3302"
/* storvsp_instance_guid(0), netvsp_instance_guid(0) and (1). */
#define BUILTIN_SCSI "00000000-04a1-4d29-b605-72e2ffb1dc80"
#define BUILTIN_NIC0 "00000000-6e65-4e49-4300-68766b697408"
#define BUILTIN_NIC1 "00000001-6e65-4e49-4300-68766b697408"

struct instances {
	char scsi[40], nic[2][40];
	char vm_id[40];
};

static json_t *status_json(void)
{
	struct ctl_output o;
	assert_int_equal(ctl_run(hvkit, &o, "--json", sock, "status", NULL), 0);
	return o.status ? NULL : json_loads(o.out, 0, NULL);
}

/* The primaries' instance GUIDs once all three devices are offered; the
 * NICs in instance order (their offers may come in any). */
static bool read_instances(json_t *st, struct instances *out)
{
	memset(out, 0, sizeof(*out));
	unsigned nics = 0;
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(json_object_get(st, "vmbus"), "channels"), i, c)
	{
		const char *cls = json_string_value(json_object_get(c, "class"));
		const char *id = json_string_value(json_object_get(c, "instance"));
		if (!cls || !id || json_integer_value(json_object_get(c, "sub_index")) ||
		    !json_integer_value(json_object_get(c, "relid")))
			continue;
		if (!strcmp(cls, "scsi"))
			snprintf(out->scsi, sizeof(out->scsi), "%s", id);
		else if (!strcmp(cls, "nic") && nics < 2)
			snprintf(out->nic[nics++], sizeof(out->nic[0]), "%s", id);
	}
	if (nics == 2 && strcmp(out->nic[0], out->nic[1]) > 0) {
		char t[40];
		memcpy(t, out->nic[0], sizeof(t));
		memcpy(out->nic[0], out->nic[1], sizeof(t));
		memcpy(out->nic[1], t, sizeof(t));
	}
	const char *vm = json_string_value(
		json_object_get(json_object_get(st, "machine"), "vm_id"));
	snprintf(out->vm_id, sizeof(out->vm_id), "%s", vm ? vm : "");
	return out->scsi[0] && nics == 2;
}

/* Runs a machine (with --vm-id if vm_id), reads its devices' GUIDs once
 * the guest is connected, and stops it. */
static void run_and_read(const char *vm_id, struct instances *out)
{
	char disk_arg[160];
	snprintf(disk_arg, sizeof(disk_arg), "path=%s", disk);
	const char *argv[16] = {hvkit,	 "run",	  "--partition", "process", "--control",
				sock,	 "--net", "sink",	 "--net",   "sink",
				"--disk", disk_arg};
	int n = 12;
	if (vm_id) {
		argv[n++] = "--vm-id";
		argv[n++] = vm_id;
	}
	argv[n] = NULL;
	pid_t pid;
	assert_int_equal(ctl_machine_start(hvkit, argv, &pid), 0);
	bool seen = false;
	for (int i = 0; i < SETTLE_STEPS && !seen; i++) {
		json_t *st = status_json();
		seen = st && read_instances(st, out);
		json_decref(st);
		if (!seen)
			usleep(100000);
	}
	ctl_machine_kill(&pid);
	unlink(sock);
	assert_true(seen);
}

static void with_vm_id(void **state)
{
	(void)state;
	struct instances a, again, b;
	run_and_read(VM_A, &a);
	assert_string_equal(a.vm_id, VM_A);
	assert_string_equal(a.scsi, VM_A_SCSI);
	/* Sorted as text: 9d99... before ea98... */
	assert_string_equal(a.nic[0], VM_A_NIC0);
	assert_string_equal(a.nic[1], VM_A_NIC1);
	run_and_read(VM_A, &again);
	assert_memory_equal(&a, &again, sizeof(a));
	run_and_read(VM_B, &b);
	assert_string_equal(b.vm_id, VM_B);
	assert_string_not_equal(b.scsi, a.scsi);
	assert_string_not_equal(b.nic[0], a.nic[0]);
	assert_string_not_equal(b.nic[1], a.nic[1]);
}

static void without_vm_id(void **state)
{
	(void)state;
	struct instances d;
	run_and_read(NULL, &d);
	assert_string_equal(d.vm_id, "");
	assert_string_equal(d.scsi, BUILTIN_SCSI);
	assert_string_equal(d.nic[0], BUILTIN_NIC0);
	assert_string_equal(d.nic[1], BUILTIN_NIC1);
}

static void bad_vm_id(void **state)
{
	(void)state;
	static const char *const bad[] = {"nope", "3f2504e0-4f89-11d3-9a0c-0305e82c330",
					  "00000000-0000-0000-0000-000000000000",
					  "3f2504e0-4f89-11d3-9a0c-0305e82c33011"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ctl_output o;
		assert_int_equal(ctl_run_tool(hvkit, &o, "run", "--vm-id", bad[i], NULL), 0);
		assert_int_equal(o.status, 2);
		assert_non_null(strstr(o.err, "--vm-id"));
		assert_non_null(strstr(o.err, bad[i]));
	}
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/hvkit-vm-id-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/vm.sock", dir);
	snprintf(disk, sizeof(disk), "%s/disk.img", dir);
	int fd = open(disk, O_CREAT | O_WRONLY, 0600);
	if (fd < 0 || ftruncate(fd, 1 << 20))
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(sock);
	unlink(disk);
	rmdir(dir);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-ctl-vm-id HVKIT\n");
		return 2;
	}
	hvkit = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(with_vm_id),
		cmocka_unit_test(without_vm_id),
		cmocka_unit_test(bad_vm_id),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
