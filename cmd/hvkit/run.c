/* SPDX-License-Identifier: MIT */
/*
 * hvkit run: start a machine and its guest. Today the partition is the
 * process partition and the guest is hvkit-guest (the VMBus client with an
 * echo driver); the KVM partition and its mini guest OS come next.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hvkit/vmbus_classes.h"
#include "hvkit_cmd.h"
#include "machine.h"

struct run_options {
	uint32_t cpus;
	uint64_t memory;
	uint32_t echo_devices;
	char packets[16];
	char subchannels[16];
	char max_version[16];
	bool scramble;
	uint64_t gpadl_limit;
	char guest[PATH_MAX];
	struct machine_disk disks[MACHINE_MAX_DISKS];
	uint32_t disk_count;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hvkit run [options]\n"
		"  --partition process    where the guest runs (process: a guest process;\n"
		"                         the default until the KVM partition exists)\n"
		"  --cpus N               virtual processors (default 2)\n"
		"  --memory SIZE          guest RAM, with K/M/G (default 64M)\n"
		"  --device echo          add an echo device (repeat for more; default 2)\n"
		"  --packets N            packets the guest exchanges per channel (default 1000)\n"
		"  --subchannels N        sub-channels the guest asks per echo device (default 1)\n"
		"  --vmbus KEY=VALUE,...  max-version=X.Y, scramble-relids=on|off,\n"
		"                         gpadl-limit=SIZE\n"
		"  --disk path=FILE[,readonly=on][,direct=on][,serial=S]\n"
		"                         a raw disk image on the SCSI controller (repeat\n"
		"                         for more; LUNs in order)\n"
		"  --guest PATH           the guest program (default: hvkit-guest beside hvkit)\n");
}

/* "64M" -> bytes; 0 if malformed. */
static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	uint64_t unit = 1;
	if (*end == 'K' || *end == 'k')
		unit = 1ull << 10;
	else if (*end == 'M' || *end == 'm')
		unit = 1ull << 20;
	else if (*end == 'G' || *end == 'g')
		unit = 1ull << 30;
	else if (*end)
		return 0;
	if (*end && end[1])
		return 0;
	return v > UINT64_MAX / unit ? 0 : v * unit;
}

static int parse_vmbus(struct run_options *o, char *arg)
{
	for (char *kv = strtok(arg, ","); kv; kv = strtok(NULL, ",")) {
		char *value = strchr(kv, '=');
		if (!value)
			return -EINVAL;
		*value++ = '\0';
		if (!strcmp(kv, "max-version")) {
			unsigned major, minor;
			if (sscanf(value, "%u.%u", &major, &minor) != 2)
				return -EINVAL;
			snprintf(o->max_version, sizeof(o->max_version), "%u.%u", major, minor);
		} else if (!strcmp(kv, "scramble-relids")) {
			if (strcmp(value, "on") && strcmp(value, "off"))
				return -EINVAL;
			o->scramble = !strcmp(value, "on");
		} else if (!strcmp(kv, "gpadl-limit")) {
			o->gpadl_limit = parse_size(value);
			if (!o->gpadl_limit)
				return -EINVAL;
		} else {
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_on_off(const char *value, bool *out)
{
	if (strcmp(value, "on") && strcmp(value, "off"))
		return -EINVAL;
	*out = !strcmp(value, "on");
	return 0;
}

/* --disk path=FILE[,readonly=on][,direct=on][,serial=S]; arg is kept (the
 * disk points into it). */
static int parse_disk(struct run_options *o, char *arg)
{
	if (o->disk_count == MACHINE_MAX_DISKS)
		return -ENOSPC;
	struct machine_disk *d = &o->disks[o->disk_count];
	*d = (struct machine_disk){0};
	char *save;
	for (char *kv = strtok_r(arg, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *value = strchr(kv, '=');
		if (!value)
			return -EINVAL;
		*value++ = '\0';
		int err = 0;
		if (!strcmp(kv, "path"))
			d->path = value;
		else if (!strcmp(kv, "readonly"))
			err = parse_on_off(value, &d->read_only);
		else if (!strcmp(kv, "direct"))
			err = parse_on_off(value, &d->direct);
		else if (!strcmp(kv, "serial"))
			d->serial = value;
		else
			err = -EINVAL;
		if (err)
			return err;
	}
	if (!d->path || !*d->path)
		return -EINVAL;
	o->disk_count++;
	return 0;
}

static int parse_options(int argc, char **argv, struct run_options *o)
{
	static const struct option opts[] = {
		{"partition", required_argument, NULL, 'p'},
		{"cpus", required_argument, NULL, 'c'},
		{"memory", required_argument, NULL, 'm'},
		{"device", required_argument, NULL, 'd'},
		{"packets", required_argument, NULL, 'n'},
		{"subchannels", required_argument, NULL, 's'},
		{"vmbus", required_argument, NULL, 'v'},
		{"guest", required_argument, NULL, 'g'},
		{"disk", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool devices_given = false;
	int c;

	while ((c = getopt_long(argc, argv, "p:c:m:d:n:s:v:g:k:h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'p':
			if (strcmp(optarg, "process")) {
				fprintf(stderr, "hvkit run: partition '%s' is not available yet "
						"(only 'process')\n", optarg);
				return 2;
			}
			break;
		case 'c':
			o->cpus = (uint32_t)strtoul(optarg, &end, 0);
			if (*end || o->cpus == 0 || o->cpus > 64) {
				fprintf(stderr, "hvkit run: --cpus takes 1 to 64\n");
				return 2;
			}
			break;
		case 'm':
			o->memory = parse_size(optarg);
			if (o->memory < (1 << 20) || o->memory % 4096) {
				fprintf(stderr, "hvkit run: --memory takes a size of at least 1M "
						"in whole pages, like 64M\n");
				return 2;
			}
			break;
		case 'd':
			if (strcmp(optarg, "echo")) {
				fprintf(stderr, "hvkit run: unknown device '%s' (known: echo)\n",
					optarg);
				return 2;
			}
			if (!devices_given)
				o->echo_devices = 0;
			devices_given = true;
			o->echo_devices++;
			break;
		case 'n':
			snprintf(o->packets, sizeof(o->packets), "%lu", strtoul(optarg, NULL, 0));
			break;
		case 's':
			snprintf(o->subchannels, sizeof(o->subchannels), "%lu",
				 strtoul(optarg, NULL, 0));
			break;
		case 'v':
			if (parse_vmbus(o, optarg)) {
				fprintf(stderr, "hvkit run: bad --vmbus options\n");
				return 2;
			}
			break;
		case 'g':
			snprintf(o->guest, sizeof(o->guest), "%s", optarg);
			break;
		case 'k':
			if (parse_disk(o, optarg)) {
				fprintf(stderr, "hvkit run: bad --disk (path=FILE[,readonly=on]"
						"[,direct=on][,serial=S], at most %u)\n",
					MACHINE_MAX_DISKS);
				return 2;
			}
			break;
		default:
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 1 : 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hvkit run: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

/* hvkit-guest is built and installed beside hvkit. */
static void default_guest(char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	snprintf(out, size, "%s/hvkit-guest", dirname(self));
}

static void print_host_channel(void *arg, const struct vmbus_server_channel_info *ci)
{
	(void)arg;
	const struct vmbus_class_info *cls = vmbus_class_find(&ci->class_id);
	char instance[HV_GUID_STRING_LEN + 1];
	hv_guid_format(&ci->instance_id, instance);
	printf("  %-10s %-36s %3u %10llu %10llu %9llu\n", cls ? cls->name : "unknown", instance,
	       ci->sub_channel_index, (unsigned long long)ci->guest_signals,
	       (unsigned long long)ci->host_signals, (unsigned long long)ci->spurious_signals);
}

/* Printed after the guest has unloaded, so relids and channel states are
 * already reset; what remains is the per-channel signal accounting. */
static void print_host_view(struct machine *m)
{
	struct vmbus_server_stats st;
	vmbus_server_get_stats(machine_vmbus(m), &st);
	printf("\nhost: %u connect(s), %u unload(s), %u channels, %llu bad guest messages\n",
	       st.connects, st.unloads, st.channels, (unsigned long long)st.bad_messages);
	printf("  %-10s %-36s %3s %10s %10s %9s\n", "class", "instance", "sub", "guest sig",
	       "host sig", "spurious");
	vmbus_server_for_each_channel(machine_vmbus(m), print_host_channel, NULL);
}

int cmd_run(int argc, char **argv)
{
	struct run_options o = {
		.cpus = 2,
		.memory = 64ull << 20,
		.echo_devices = 2,
		.packets = "1000",
		.subchannels = "1",
	};
	int err = parse_options(argc, argv, &o);
	if (err)
		return err == 1 ? 0 : err;
	if (!o.guest[0])
		default_guest(o.guest, sizeof(o.guest));

	char *gargv[] = {o.guest,        "--packets",  o.packets,     "--subchannels",
			 o.subchannels, o.max_version[0] ? "--max-version" : NULL,
			 o.max_version, NULL};
	struct machine_config cfg = {
		.cpus = o.cpus,
		.memory = o.memory,
		.guest_path = o.guest,
		.guest_argv = gargv,
		.echo_devices = o.echo_devices,
		.disks = o.disks,
		.disk_count = o.disk_count,
		.vmbus = {.scramble_relids = o.scramble, .gpadl_limit = o.gpadl_limit},
	};
	struct machine *m;
	printf("hvkit: process partition, %u VPs, %llu MiB, %u echo device(s), %u disk(s); "
	       "guest %s\n",
	       o.cpus, (unsigned long long)(o.memory >> 20), o.echo_devices, o.disk_count, o.guest);
	fflush(stdout);
	err = machine_start(&cfg, &m);
	if (err) {
		fprintf(stderr, "hvkit run: cannot start the machine: %s\n", strerror(-err));
		return 1;
	}
	int status = 0;
	err = machine_wait(m, 300000, &status);
	char why[160];
	bool failed = machine_failed(m, why, sizeof(why));
	print_host_view(m);
	machine_stop(m);
	if (err) {
		fprintf(stderr, "hvkit run: the guest did not finish in time\n");
		return 1;
	}
	if (failed) {
		fprintf(stderr, "hvkit run: the partition failed: %s\n", why);
		return 1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "hvkit run: the guest failed (status %d)\n", status);
		return 1;
	}
	return 0;
}
