/* SPDX-License-Identifier: MIT */
/*
 * hvkit run: start a machine and its guest. On the KVM partition (the
 * default where /dev/kvm works) the guest is a kernel: hvkit-os, hvkit's
 * own (built-in default), or any bzImage, PVH ELF or Multiboot kernel; on
 * the process partition it is hvkit-guest, the VMBus client with an echo
 * driver and the integration components.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hvkit/vmbus_classes.h"
#include "hvkit_cmd.h"
#include "control_ic.h"
#include "control_machine.h"
#include "hv_testdev.h"
#include "kvm_platform.h"
#include "machine.h"
#include "landlock.h"
#include "sandbox.h"
#include "serial.h"

/*
 * hvkit run's exit statuses (listed in --help and docs/kvm.md). hvkit's
 * own are even, so that none is taken for a --debug-exit status: those are
 * odd, (value << 1) | 1, as QEMU's isa-debug-exit makes them.
 */
enum {
	EXIT_POWERED_OFF = 0,  /* ACPI S5; hvkit-os or the process guest passed */
	EXIT_GUEST_FAILED = 1, /* hvkit-os or the process guest failed a check */
	EXIT_USAGE = 2,        /* a bad option */
	EXIT_HIBERNATED = KVM_PLATFORM_EXIT_HIBERNATED, /* ACPI S4 */
	EXIT_RESET = KVM_PLATFORM_EXIT_RESET,           /* the guest asked for a reset */
	EXIT_CRASHED = KVM_PARTITION_EXIT_CRASHED,      /* a crash report (crash MSRs) */
	EXIT_HVKIT_FAILED = 70, /* hvkit could not start or run the machine (EX_SOFTWARE) */
	EXIT_TIMEOUT = 124,     /* --timeout passed, as timeout(1) says it */
	EXIT_SIGNAL_BASE = 128, /* + the signal that stopped a --control machine */
};
_Static_assert(EXIT_HIBERNATED == 4 && EXIT_RESET == 6 && EXIT_CRASHED == 8,
	       "documented exit statuses");

/* How a run ended, before the guest's own status is read. */
enum run_end {
	RUN_GUEST_ENDED = 0, /* the guest powered off, reset, exited... (status) */
	RUN_QUIT = 1,        /* hvkit ctl quit */
	RUN_TIMED_OUT = 2,   /* --timeout */
	RUN_SANDBOX_FAILED = 3, /* the sandbox could not be entered */
	/* EXIT_SIGNAL_BASE + signal: SIGINT, SIGTERM or SIGHUP (--control) */
};

/* --landlock-rule options at most. */
#define MAX_FILE_RULES 16

struct run_options {
	enum machine_partition partition;
	bool partition_given;   /* --partition */
	bool process_options;   /* options only the process guest takes */
	const char *kernel, *initrd, *cmdline; /* KVM */
	bool debug_exit, no_s4;                /* KVM */
	bool pause_on_crash;                   /* KVM: --on-crash pause */
	const char *restore;                   /* KVM: --restore FILE */
	bool hyperv_testdev;                   /* KVM */
	const char *serial;                    /* KVM: where COM1 goes; NULL: stdio */
	const char *kvm_device;                /* --kvm-device; NULL: /dev/kvm */
	int64_t timeout_s;                     /* 0: none; -1: the default */
	uint32_t cpus;
	uint64_t memory;
	struct hv_guid vm_id; /* --vm-id; null: none */
	uint32_t echo_devices;
	bool echo_given; /* --device echo */
	char packets[24];     /* decimal, for hvkit-guest's command line */
	char subchannels[24];
	uint64_t heartbeat_ns, timesync_ns; /* --ic; 0: the default */
	char max_version[16];
	bool scramble;
	bool no_ic;
	bool no_sandbox; /* --sandbox off, or built without it */
	bool landlock;   /* --landlock */
	struct file_rule file_rules[MAX_FILE_RULES]; /* --landlock-rule */
	uint32_t file_rule_count;
	uint64_t gpadl_limit;
	char guest[PATH_MAX];
	const char *control; /* the control socket, or NULL */
	const char *copy_dir; /* where the process guest writes copied files */
	struct netvsp_nic_opts nics[MACHINE_MAX_NICS];
	uint32_t nic_count;
	struct machine_disk disks[MACHINE_MAX_DISKS];
	uint32_t disk_count;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hvkit run [options]\n"
		"  --partition process|kvm  where the guest runs (kvm: a virtual machine\n"
		"                         booting a kernel, the default where /dev/kvm works;\n"
		"                         process: the guest side as a process, the default\n"
		"                         otherwise and with --guest/--packets/--subchannels/\n"
		"                         --copy-dir)\n"
		"  --kvm-device PATH      (kvm) the KVM device node (default /dev/kvm, or\n"
		"                         $HVKIT_KVM_DEVICE: tests point it elsewhere)\n"
		"  --kernel PATH          (kvm) bzImage, PVH ELF or Multiboot kernel\n"
		"                         (default: the built-in hvkit-os)\n"
		"  --initrd PATH          (kvm) initrd, or the Multiboot module\n"
		"  --cmdline TEXT         (kvm) kernel command line\n"
		"  --debug-exit           (kvm) QEMU's isa-debug-exit port at 0xf4: the\n"
		"                         guest's write V ends hvkit with (V << 1) | 1\n"
		"  --no-s4                (kvm) no \\_S4 (hibernation) in the ACPI tables\n"
		"  --restore FILE         (kvm) continue the VM saved in FILE (hvkit ctl\n"
		"                         snapshot) instead of booting; give the options\n"
		"                         it ran with (--cpus, --memory, devices, --vm-id)\n"
		"  --on-crash stop|pause  (kvm) a crash report through the crash MSRs\n"
		"                         stops the VM (default), or pauses it for\n"
		"                         inspection: hvkit ctl status shows the report,\n"
		"                         ctl resume runs it on, ctl quit ends (needs\n"
		"                         --control)\n"
		"  --serial stdio|file:PATH|unix:PATH|pty|none\n"
		"                         (kvm) where COM1 goes (default stdio: output\n"
		"                         only); unix: a listening socket, one client at a\n"
		"                         time gets the output and types the input; pty:\n"
		"                         a new pseudo-terminal, its name printed\n"
		"  --timeout SECONDS      stop the guest after this long (0: never; default:\n"
		"                         never with --kernel or --control, else 300)\n"
		"  --cpus N               virtual processors (default 2)\n"
		"  --memory SIZE          guest RAM, with K/M/G (default 64M)\n"
		"  --vm-id UUID           the VM's identity: its SCSI controller's and NICs'\n"
		"                         instance GUIDs (and NICs' default MACs) follow\n"
		"                         from it, the same on every run (default: fixed\n"
		"                         built-in GUIDs, the same for every VM)\n"
		"  --device echo          add an echo device (repeat for more; default: 2 for\n"
		"                         hvkit-os and the process guest, none with --kernel)\n"
		"  --device hyperv-testdev (kvm) QEMU's Hyper-V test device at port 0x3000\n"
		"                         (kvm-unit-tests' SINT routes and connections)\n"
		"  --device isa-debug-exit (kvm) the same as --debug-exit\n"
		"  --packets N            packets the guest exchanges per channel (default 1000)\n"
		"  --subchannels N        sub-channels the guest asks per echo device (default 1)\n"
		"  --vmbus KEY=VALUE,...  max-version=X.Y, scramble-relids=on|off,\n"
		"                         gpadl-limit=SIZE\n"
		"  --net [user|tap=NAME|loopback|sink][,OPTION]...\n"
		"                         add a synthetic NIC (repeat for more; each its own\n"
		"                         channel and instance). Backends: user = NAT through\n"
		"                         libslirp (the default: 10.0.2.15 by DHCP, gateway\n"
		"                         and host 10.0.2.2, DNS 10.0.2.3), tap=NAME a TAP\n"
		"                         device, loopback (frames come back), sink (dropped).\n"
		"                         Options: mac=XX:XX:XX:XX:XX:XX (default 00:15:5d:..\n"
		"                         from the NIC's index), mtu=N, queues=N; for user:\n"
		"                         hostfwd=[tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT\n"
		"                         (repeatable), restrict=on|off\n"
		"  --disk path=FILE[,readonly=on][,direct=on][,serial=S][,aio=io_uring|threads]\n"
		"                         a raw disk image on the SCSI controller (repeat\n"
		"                         for more; LUNs in order); aio: asynchronous\n"
		"                         io_uring (default) or preadv2/pwritev2 on the\n"
		"                         worker threads\n"
		"  --guest PATH           the guest program (default: hvkit-guest beside hvkit)\n"
		"  --control PATH         serve the control socket at PATH (see hvkit ctl);\n"
		"                         the guest then stays up after its echo exchange and\n"
		"                         the machine runs until a 'quit' request or\n"
		"                         SIGINT/SIGTERM/SIGHUP (docs/control.md)\n"
		"  --no-ic                offer no integration components (heartbeat,\n"
		"                         shutdown, time sync, KVP, VSS, file copy)\n"
		"  --ic heartbeat=SECONDS,timesync=SECONDS\n"
		"                         their periods (default 1 and 5, as Hyper-V; 0.2 and\n"
		"                         1 for hvkit's own guests)\n"
		"  --copy-dir DIR         where the process guest puts files the host copies\n"
		"                         (hvkit ctl copy); without it copies are refused\n"
		"  --sandbox on|off       capabilities dropped and seccomp filters on every\n"
		"                         thread once the machine runs (default on where\n"
		"                         hvkit was built with it; docs/sandbox.md)\n"
		"  --landlock             from set-up on, hvkit and its guest process reach\n"
		"                         only the files this command line names (Landlock;\n"
		"                         docs/sandbox.md)\n"
		"  --landlock-rule path=P[,access=ro|rw]\n"
		"                         with --landlock, allow P too (a file or everything\n"
		"                         beneath a directory: disks to hot add, files to\n"
		"                         copy; repeatable; default ro)\n"
		"exit status: 0 the guest powered off (ACPI S5), or hvkit-os / the process\n"
		"guest passed; 1 hvkit-os / the process guest failed a check; 2 bad usage;\n"
		"4 the guest hibernated (ACPI S4); 6 the guest asked for a reset; 8 the\n"
		"guest reported a crash (crash MSRs); 70 hvkit could not start or run the\n"
		"machine; 124 --timeout passed; 128+N signal N stopped a --control machine;\n"
		"an odd value V is a --debug-exit write ((value << 1) | 1, as QEMU).\n");
}

/* A whole number for option `name` between min and max; false after a
 * message that names the option, the range and what was given. */
static bool number_option(const char *name, const char *text, uint64_t min, uint64_t max,
			  uint64_t *out)
{
	uint64_t v;
	if (cli_number(text, &v) && v >= min && v <= max) {
		*out = v;
		return true;
	}
	fprintf(stderr, "hvkit run: %s takes a whole number from %llu to %llu, not '%s'\n", name,
		(unsigned long long)min, (unsigned long long)max, text);
	return false;
}

/* --ic heartbeat=SECONDS,timesync=SECONDS: the integration components'
 * periods (default: Hyper-V's pace, or short ones for hvkit's own guests). */
static int parse_ic(struct run_options *o, char *arg)
{
	char *save;
	for (char *kv = strtok_r(arg, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *value = strchr(kv, '=');
		uint64_t ns;
		if (!value) {
			fprintf(stderr, "hvkit run: --ic: '%s' is not KEY=SECONDS\n", kv);
			return -EINVAL;
		}
		*value++ = '\0';
		bool hb = !strcmp(kv, "heartbeat"), ts = !strcmp(kv, "timesync");
		if (!hb && !ts) {
			fprintf(stderr, "hvkit run: --ic: unknown '%s' (heartbeat, timesync)\n", kv);
			return -EINVAL;
		}
		if (!cli_seconds(value, &ns) || ns < 10000000ull || ns > 3600000000000ull) {
			fprintf(stderr, "hvkit run: --ic %s= takes seconds from 0.01 to 3600, not '%s'\n",
				kv, value);
			return -EINVAL;
		}
		*(hb ? &o->heartbeat_ns : &o->timesync_ns) = ns;
	}
	return 0;
}

static int parse_vmbus(struct run_options *o, char *arg)
{
	for (char *kv = strtok(arg, ","); kv; kv = strtok(NULL, ",")) {
		char *value = strchr(kv, '=');
		if (!value)
			return -EINVAL;
		*value++ = '\0';
		if (!strcmp(kv, "max-version")) {
			uint64_t major, minor;
			if (!cli_version(value, &major, &minor) || major > 0xffff || minor > 0xffff)
				return -EINVAL;
			snprintf(o->max_version, sizeof(o->max_version), "%llu.%llu",
				 (unsigned long long)major, (unsigned long long)minor);
		} else if (!strcmp(kv, "scramble-relids")) {
			if (strcmp(value, "on") && strcmp(value, "off"))
				return -EINVAL;
			o->scramble = !strcmp(value, "on");
		} else if (!strcmp(kv, "gpadl-limit")) {
			if (!cli_size(value, &o->gpadl_limit) || !o->gpadl_limit)
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

/* --disk path=FILE[,readonly=on][,direct=on][,serial=S][,aio=io_uring|threads];
 * arg is kept (the disk points into it). The aio value is checked when the
 * disk opens. */
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
		else if (!strcmp(kv, "aio"))
			d->aio = value;
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
		{"kernel", required_argument, NULL, 'K'},
		{"initrd", required_argument, NULL, 'I'},
		{"cmdline", required_argument, NULL, 'L'},
		{"debug-exit", no_argument, NULL, 'D'},
		{"no-s4", no_argument, NULL, 'S'},
		{"on-crash", required_argument, NULL, 'P'},
		{"restore", required_argument, NULL, 'Q'},
		{"serial", required_argument, NULL, 'O'},
		{"timeout", required_argument, NULL, 'T'},
		{"cpus", required_argument, NULL, 'c'},
		{"memory", required_argument, NULL, 'm'},
		{"vm-id", required_argument, NULL, 'U'},
		{"device", required_argument, NULL, 'd'},
		{"packets", required_argument, NULL, 'n'},
		{"subchannels", required_argument, NULL, 's'},
		{"vmbus", required_argument, NULL, 'v'},
		{"guest", required_argument, NULL, 'g'},
		{"control", required_argument, NULL, 'C'},
		{"net", required_argument, NULL, 'N'},
		{"no-ic", no_argument, NULL, 'X'},
		{"copy-dir", required_argument, NULL, 'Y'},
		{"disk", required_argument, NULL, 'k'},
		{"ic", required_argument, NULL, 'i'},
		{"kvm-device", required_argument, NULL, 'V'},
		{"sandbox", required_argument, NULL, 'B'},
		{"landlock", no_argument, NULL, 'l'},
		{"landlock-rule", required_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "p:c:m:d:n:s:v:g:C:N:k:h", opts, NULL)) != -1) {
		uint64_t n;
		switch (c) {
		case 'p':
			o->partition_given = true;
			if (!strcmp(optarg, "process")) {
				o->partition = MACHINE_PROCESS;
			} else if (!strcmp(optarg, "kvm")) {
				o->partition = MACHINE_KVM;
			} else {
				fprintf(stderr, "hvkit run: unknown partition '%s' (process or kvm)\n",
					optarg);
				return 2;
			}
			break;
		case 'K':
			o->kernel = optarg;
			break;
		case 'I':
			o->initrd = optarg;
			break;
		case 'L':
			o->cmdline = optarg;
			break;
		case 'D':
			o->debug_exit = true;
			break;
		case 'B': {
			bool on;
			if (parse_on_off(optarg, &on)) {
				fprintf(stderr, "hvkit run: --sandbox takes on or off, not '%s'\n",
					optarg);
				return 2;
			}
			if (on && !sandbox_available()) {
				fprintf(stderr, "hvkit run: --sandbox on: this hvkit was built without "
						"it (libseccomp and libcap-ng, -Dsandbox=enabled)\n");
				return 2;
			}
			o->no_sandbox = !on;
			break;
		}
		case 'l':
			if (!file_rules_abi()) {
				fprintf(stderr, "hvkit run: --landlock: this kernel has no Landlock "
						"(or it is not enabled)\n");
				return 2;
			}
			o->landlock = true;
			break;
		case 'R': {
			char why[128];
			if (o->file_rule_count == MAX_FILE_RULES) {
				fprintf(stderr, "hvkit run: at most %d --landlock-rule\n", MAX_FILE_RULES);
				return 2;
			}
			if (file_rule_parse(optarg, &o->file_rules[o->file_rule_count], why,
					    sizeof(why))) {
				fprintf(stderr, "hvkit run: --landlock-rule: %s\n", why);
				return 2;
			}
			o->file_rule_count++;
			break;
		}
		case 'S':
			o->no_s4 = true;
			break;
		case 'Q':
			o->restore = optarg;
			break;
		case 'P':
			if (strcmp(optarg, "stop") && strcmp(optarg, "pause")) {
				fprintf(stderr, "hvkit run: --on-crash takes stop or pause, not '%s'\n",
					optarg);
				return 2;
			}
			o->pause_on_crash = !strcmp(optarg, "pause");
			break;
		case 'T':
			/* machine_wait takes milliseconds in an int: 23 days. */
			if (!number_option("--timeout (seconds, 0 for none)", optarg, 0,
					   2000000, &n))
				return 2;
			o->timeout_s = (int64_t)n;
			break;
		case 'c':
			if (!number_option("--cpus", optarg, 1, 64, &n))
				return 2;
			o->cpus = (uint32_t)n;
			break;
		case 'm':
			if (!cli_size(optarg, &o->memory) || o->memory < (1 << 20) ||
			    o->memory > (1ull << 40) || o->memory % 4096) {
				fprintf(stderr, "hvkit run: --memory takes a size from 1M to 1T in "
						"whole pages, like 64M, not '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'U':
			if (hv_guid_parse(optarg, &o->vm_id) || hv_guid_is_null(&o->vm_id)) {
				fprintf(stderr, "hvkit run: --vm-id takes a UUID other than the nil "
						"one, like 3f2504e0-4f89-11d3-9a0c-0305e82c3301, "
						"not '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'O':
			if (strcmp(optarg, "stdio") && strcmp(optarg, "none") && strcmp(optarg, "pty") &&
			    ((strncmp(optarg, "file:", 5) && strncmp(optarg, "unix:", 5)) ||
			     !optarg[5])) {
				fprintf(stderr, "hvkit run: --serial takes stdio, file:PATH, "
						"unix:PATH, pty or none\n");
				return 2;
			}
			o->serial = optarg;
			break;
		case 'd':
			if (!strcmp(optarg, "hyperv-testdev")) {
				o->hyperv_testdev = true;
				break;
			}
			if (!strcmp(optarg, "isa-debug-exit")) {
				o->debug_exit = true;
				break;
			}
			if (strcmp(optarg, "echo")) {
				fprintf(stderr, "hvkit run: unknown device '%s' (known: echo, "
						"hyperv-testdev, isa-debug-exit)\n",
					optarg);
				return 2;
			}
			if (!o->echo_given)
				o->echo_devices = 0;
			o->echo_given = true;
			o->echo_devices++;
			break;
		case 'n':
			o->process_options = true;
			if (!number_option("--packets", optarg, 0, UINT32_MAX, &n))
				return 2;
			snprintf(o->packets, sizeof(o->packets), "%llu", (unsigned long long)n);
			break;
		case 's':
			o->process_options = true;
			/* 256: the VMBus server's cap per device. */
			if (!number_option("--subchannels", optarg, 0, 256, &n))
				return 2;
			snprintf(o->subchannels, sizeof(o->subchannels), "%llu",
				 (unsigned long long)n);
			break;
		case 'v':
			if (parse_vmbus(o, optarg)) {
				fprintf(stderr, "hvkit run: bad --vmbus options\n");
				return 2;
			}
			break;
		case 'g':
			o->process_options = true;
			if (strlen(optarg) >= sizeof(o->guest)) {
				fprintf(stderr, "hvkit run: --guest: the path is longer than %zu "
						"bytes\n",
					sizeof(o->guest) - 1);
				return 2;
			}
			snprintf(o->guest, sizeof(o->guest), "%s", optarg);
			break;
		case 'C':
			o->control = optarg;
			break;
		case 'N': {
			char why[160];
			if (o->nic_count == MACHINE_MAX_NICS) {
				fprintf(stderr, "hvkit run: at most %u NICs\n", MACHINE_MAX_NICS);
				return 2;
			}
			struct netvsp_nic_opts *nic = &o->nics[o->nic_count];
			if (netvsp_nic_parse(optarg, nic, why, sizeof(why))) {
				fprintf(stderr, "hvkit run: %s\n", why);
				return 2;
			}
			o->nic_count++;
			break;
		}
		case 'X':
			o->no_ic = true;
			break;
		case 'i':
			if (parse_ic(o, optarg))
				return 2;
			break;
		case 'V':
			o->kvm_device = optarg;
			break;
		case 'Y': {
			o->process_options = true;
			struct stat st;
			const char *bad = stat(optarg, &st)	    ? strerror(errno)
					  : !S_ISDIR(st.st_mode) ? "not a directory"
								 : NULL;
			if (bad) {
				fprintf(stderr, "hvkit run: --copy-dir %s: %s\n", optarg, bad);
				return 2;
			}
			o->copy_dir = optarg;
			break;
		}
		case 'k':
			if (parse_disk(o, optarg)) {
				fprintf(stderr, "hvkit run: bad --disk (path=FILE[,readonly=on]"
						"[,direct=on][,serial=S][,aio=io_uring|threads], at most %u)\n",
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
	if (!o->partition_given)
		o->partition = o->process_options ? MACHINE_PROCESS : MACHINE_KVM;
	/* The echo devices are hvkit's own test devices: hvkit-os and the
	 * process guest drive them, another kernel only sees unknown GUIDs. */
	if (o->kernel && !o->echo_given)
		o->echo_devices = 0;
	if (o->partition != MACHINE_KVM && (o->kernel || o->initrd || o->cmdline || o->debug_exit ||
					    o->hyperv_testdev || o->serial || o->pause_on_crash ||
					    o->restore)) {
		fprintf(stderr, "hvkit run: --kernel, --initrd, --cmdline, --serial, --debug-exit, "
				"--on-crash pause, --restore and --device hyperv-testdev are for "
				"--partition kvm\n");
		return 2;
	}
	if (o->pause_on_crash && !o->control) {
		/* Nothing could see the report, run the guest on or end it. */
		fprintf(stderr, "hvkit run: --on-crash pause needs --control\n");
		return 2;
	}
	if (o->file_rule_count && !o->landlock) {
		fprintf(stderr, "hvkit run: --landlock-rule needs --landlock\n");
		return 2;
	}
	return 0;
}

static void own_directory(char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	snprintf(out, size, "%s", dirname(self));
}

/* hvkit-guest is built and installed beside hvkit. */
static void default_guest(char *out, size_t size)
{
	char dir[PATH_MAX - 64]; /* room for the file name */
	own_directory(dir, sizeof(dir));
	snprintf(out, size, "%s/hvkit-guest", dir);
}

/* hvkit-os: installed beside hvkit, or where the build tree puts it. */
static void default_kernel(char *out, size_t size)
{
	char dir[PATH_MAX - 64]; /* room for the file name */
	own_directory(dir, sizeof(dir));
	snprintf(out, size, "%s/hvkit-os", dir);
	if (access(out, R_OK))
		snprintf(out, size, "%s/../guest/os/hvkit-os", dir);
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

/* One line per integration component, as the host saw it. */
static void print_ic(struct machine *m)
{
	struct ic_host *ic = machine_ic(m);
	if (!ic)
		return;
	ic_host_lock(ic);
	for (int s = 0; s < IC_SERVICE_COUNT; s++) {
		struct ic_service_status st;
		ic_host_status(ic, (enum ic_service)s, &st);
		if (!st.offered)
			continue;
		printf("host: ic %-9s ", ic_service_name((enum ic_service)s));
		if (!st.negotiated) {
			/* Not a failure: Linux answers KVP's negotiation only once
			 * its user-space daemon runs. */
			printf("%s\n", !st.open ? "not opened by the guest"
				       : s == IC_KVP ? "opened, not negotiated: the guest has not "
						       "answered (Linux does once its KVP daemon, "
						       "hv_kvp_daemon, runs)"
						     : "opened, not negotiated: the guest has not "
						       "answered");
			continue;
		}
		printf("framework %u.%u, version %u.%u, %llu requests, %llu answers",
		       IC_VERSION_MAJOR(st.fw_version), IC_VERSION_MINOR(st.fw_version),
		       IC_VERSION_MAJOR(st.msg_version), IC_VERSION_MINOR(st.msg_version),
		       (unsigned long long)st.requests, (unsigned long long)st.responses);
		if (s == IC_HEARTBEAT)
			printf(", heartbeat %s (%llu answered)",
			       st.heartbeats_answered ? "seen" : "not seen",
			       (unsigned long long)st.heartbeats_answered);
		if (s == IC_TIMESYNC)
			printf(", %llu time samples sent, %llu applied",
			       (unsigned long long)st.samples_sent,
			       (unsigned long long)st.samples_acked);
		if (st.bad)
			printf(", %llu bad", (unsigned long long)st.bad);
		printf("\n");
	}
	ic_host_unlock(ic);
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

static bool kvm_only_options(const struct run_options *o);

static bool has_backend(const struct run_options *o, enum netvsp_backend_kind backend)
{
	for (uint32_t i = 0; i < o->nic_count; i++)
		if (o->nics[i].backend == backend)
			return true;
	return false;
}

/* The directory of a path, in buf. */
static const char *directory_of(const char *path, char *buf, size_t size)
{
	snprintf(buf, size, "%s", path);
	return dirname(buf);
}

/*
 * What --landlock lets hvkit reach once set up (docs/sandbox.md): the
 * files this run names, the devices it opens at start, the directory of
 * its control socket (to bind and remove it), and for a process guest its
 * program and the system libraries its exec loads. Files opened before
 * (the serial sink, the terminal) need nothing.
 */
static uint32_t landlock_rules(const struct run_options *o, const char *kernel,
			       struct file_rule *rules, char *socket_dir, size_t socket_dir_len,
			       char *serial_dir, size_t serial_dir_len)
{
	uint32_t n = 0;
	bool kvm = o->partition == MACHINE_KVM;
	/* Without --partition either may run (KVM, or the process partition
	 * where /dev/kvm does not work): the rules of the one that may not
	 * are kept only for what exists. */
	bool fallback = kvm && !o->partition_given && !kvm_only_options(o);
	if (kvm) {
		rules[n++] = (struct file_rule){o->kvm_device ? o->kvm_device : "/dev/kvm",
						FILE_READ_WRITE, fallback};
		/* The built-in hvkit-os: its absence is the loader's to report. */
		rules[n++] = (struct file_rule){kernel, FILE_READ, !o->kernel};
		if (o->initrd)
			rules[n++] = (struct file_rule){o->initrd, FILE_READ};
		if (o->restore)
			rules[n++] = (struct file_rule){o->restore, FILE_READ};
	}
	if (!kvm || fallback) {
		rules[n++] = (struct file_rule){o->guest, FILE_EXECUTE, fallback};
		rules[n++] = (struct file_rule){"/usr/lib", FILE_EXECUTE};
		rules[n++] = (struct file_rule){"/etc/ld.so.cache", FILE_READ, true};
	}
	for (uint32_t i = 0; i < o->disk_count; i++)
		rules[n++] = (struct file_rule){o->disks[i].path, o->disks[i].read_only
									 ? FILE_READ
									 : FILE_READ_WRITE};
	if (o->copy_dir)
		rules[n++] = (struct file_rule){o->copy_dir, FILE_READ_WRITE};
	if (o->control)
		rules[n++] = (struct file_rule){directory_of(o->control, socket_dir, socket_dir_len),
						FILE_MAKE_SOCKET};
	/* The serial socket is bound already; this is for its removal. */
	if (o->serial && !strncmp(o->serial, "unix:", 5))
		rules[n++] = (struct file_rule){
			directory_of(o->serial + 5, serial_dir, serial_dir_len), FILE_MAKE_SOCKET};
	if (has_backend(o, NETVSP_BACKEND_TAP))
		rules[n++] = (struct file_rule){"/dev/net/tun", FILE_READ_WRITE};
	/* libslirp reads the host's resolver list when the guest asks DNS. */
	if (has_backend(o, NETVSP_BACKEND_USER) && !access("/etc/resolv.conf", F_OK))
		rules[n++] = (struct file_rule){"/etc/resolv.conf", FILE_READ};
	/* The sanitizer runtimes read /proc and run their symbolizer. */
	if (sandbox_widened_for_sanitizers()) {
		rules[n++] = (struct file_rule){"/proc", FILE_READ};
		rules[n++] = (struct file_rule){"/usr", FILE_EXECUTE};
	}
	for (uint32_t i = 0; i < o->file_rule_count; i++)
		rules[n++] = o->file_rules[i];
	return n;
}

/* Before the machine starts, while hvkit is one thread: capabilities
 * (CAP_NET_ADMIN stays while a TAP NIC may need it), then with --landlock
 * the files hvkit may reach. */
static int drop_privileges(const struct run_options *o, const char *kernel)
{
	char why[PATH_MAX + 64];
	int err = 0;
	if (!o->no_sandbox) {
		err = sandbox_drop_privileges(has_backend(o, NETVSP_BACKEND_TAP), why, sizeof(why));
		if (err) {
			fprintf(stderr, "hvkit run: sandbox: %s\n", why);
			return err;
		}
	}
	if (o->landlock) {
		struct file_rule rules[MAX_FILE_RULES + MACHINE_MAX_DISKS + 16];
		char socket_dir[PATH_MAX], serial_dir[PATH_MAX];
		uint32_t n = landlock_rules(o, kernel, rules, socket_dir, sizeof(socket_dir),
					    serial_dir, sizeof(serial_dir));
		err = file_rules_enforce(rules, n, why, sizeof(why));
		if (err)
			fprintf(stderr, "hvkit run: --landlock: %s\n", why);
		else
			printf("hvkit: landlocked: %u file rules\n", n);
	}
	return err;
}

static int stack_vcpu_filter(void *ctx)
{
	(void)ctx;
	return sandbox_enter_vcpu();
}

/* Once the machine runs: the seccomp filters (docs/sandbox.md), the
 * thread filter everywhere and the vCPU filter on KVM's vCPU threads (the
 * process partition's guest is a process of the same user already). */
static int enter_sandbox(const struct run_options *o, struct machine *m)
{
	if (o->no_sandbox)
		return 0;
	char why[256];
	int err = sandbox_enter(why, sizeof(why));
	if (err) {
		fprintf(stderr, "hvkit run: sandbox: %s\n", why);
		return err;
	}
	err = machine_on_vp_threads(m, stack_vcpu_filter, NULL);
	bool vcpus = !err;
	if (err == -ENOTSUP || err == -ESRCH) /* no vCPU threads, or no longer */
		err = 0;
	if (err) {
		fprintf(stderr, "hvkit run: sandbox: the vCPU filter: %s\n", strerror(-err));
		return err;
	}
	printf("hvkit: sandboxed: capabilities dropped, seccomp filter on every thread%s\n",
	       vcpus ? ", vCPU filter on each vCPU" : "");
	fflush(stdout);
	return 0;
}

/* With a control socket the machine runs until a 'quit' request, SIGINT,
 * SIGTERM or SIGHUP (blocked in every thread, taken here), or the guest's
 * own end or --timeout, whichever comes first: enum run_end, or 128 + the
 * signal that stopped it, or -errno if the control socket cannot start. */
static int run_controlled(struct machine *m, const struct run_options *o,
			  const sigset_t *stop_signals, int *status)
{
	const char *path = o->control;
	int64_t deadline = o->timeout_s ? cli_now_ms() + o->timeout_s * 1000 : INT64_MAX;
	struct control_server_config ccfg = {.path = path, .backend = control_machine_backend(m)};
	struct control_server *srv;
	/* The stop signals are blocked in every thread: they queue here. */
	int signals = signalfd(-1, stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
	if (signals < 0)
		return -errno;
	int err = control_server_start(&ccfg, &srv);
	if (err) {
		close(signals);
		return err;
	}
	printf("hvkit: control socket %s\n", path);
	fflush(stdout);
	if (enter_sandbox(o, m)) {
		control_server_stop(srv);
		close(signals);
		return RUN_SANDBOX_FAILED;
	}
	if (machine_ic(m)) {
		struct control_ic_provider ic = control_ic_provider(machine_ic(m));
		control_server_set_ic(srv, &ic);
	}
	/* Asleep until one of them happens: no polling. */
	struct pollfd ends[] = {{machine_end_fd(m), POLLIN, 0},
				{control_server_quit_fd(srv), POLLIN, 0},
				{signals, POLLIN, 0}};
	struct signalfd_siginfo si;
	for (;;) {
		/* Any answer but "not yet" ends it: an error would leave the
		 * end descriptor readable and this loop spinning. */
		if (machine_wait(m, 0, status) != -ETIMEDOUT) {
			err = RUN_GUEST_ENDED;
			break;
		}
		if (control_server_quit_requested(srv)) {
			err = RUN_QUIT;
			break;
		}
		int64_t now = cli_now_ms();
		if (now >= deadline) {
			err = RUN_TIMED_OUT;
			break;
		}
		if (read(signals, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			printf("hvkit: %s, stopping\n", strsignal((int)si.ssi_signo));
			err = EXIT_SIGNAL_BASE + (int)si.ssi_signo;
			break;
		}
		int64_t left = deadline - now;
		poll(ends, 3, deadline == INT64_MAX ? -1 : left > INT32_MAX ? INT32_MAX : (int)left);
	}
	control_server_stop(srv);
	close(signals);
	return err;
}

/* The process guest's end, as the user should see it. */
static int process_verdict(int status)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "hvkit run: the guest failed (status %d)\n", status);
		return EXIT_GUEST_FAILED;
	}
	return EXIT_POWERED_OFF;
}

/* KVM: hvkit-os reports its verdict through isa-debug-exit ((V << 1) | 1),
 * which becomes 0 or EXIT_GUEST_FAILED. Another kernel ends with S5 (0),
 * S4, a reset, a crash report, or a --debug-exit value, which hvkit
 * passes on as it is, as QEMU does. */
static int kvm_verdict(int status, bool builtin)
{
	if (status == EXIT_HIBERNATED) {
		printf("hvkit: the guest hibernated (ACPI S4)\n");
		return status;
	}
	if (status == EXIT_RESET) {
		printf("hvkit: the guest asked for a reset; hvkit does not reboot, it stops\n");
		return status;
	}
	if (!builtin)
		return status;
	int guest_status = status & 1 ? status >> 1 : status;
	if (guest_status)
		fprintf(stderr, "hvkit run: hvkit-os finished with status %d\n", guest_status);
	return guest_status ? EXIT_GUEST_FAILED : EXIT_POWERED_OFF;
}

/* hvkit run's exit status for how the run ended. failure: why the
 * partition failed, or NULL. */
static int run_verdict(const struct run_options *o, bool builtin, int end, int status,
		       const char *failure, bool crashed)
{
	if (failure) {
		fprintf(stderr, "hvkit run: the partition failed: %s\n", failure);
		return EXIT_HVKIT_FAILED;
	}
	if (crashed) {
		fprintf(stderr, "hvkit run: the guest reported a crash\n");
		return EXIT_CRASHED;
	}
	if (end == RUN_SANDBOX_FAILED)
		return EXIT_HVKIT_FAILED;
	if (end == RUN_TIMED_OUT) {
		fprintf(stderr, "hvkit run: the guest did not finish in %lld s (--timeout)\n",
			(long long)o->timeout_s);
		return EXIT_TIMEOUT;
	}
	if (end == RUN_QUIT) {
		printf("hvkit: stopped on request\n");
		return EXIT_POWERED_OFF;
	}
	if (end >= EXIT_SIGNAL_BASE)
		return end;
	return o->partition == MACHINE_KVM ? kvm_verdict(status, builtin) : process_verdict(status);
}

/* Where COM1 goes (--serial): the platform's standard output, a file,
 * nowhere, a UNIX socket or a pseudo-terminal. */
struct serial_sink {
	int fd; /* file:PATH, or -1 */
	bool write_failed; /* logged */
	struct serial_unix *sock;
	struct serial_pty *pty;
};

/* write(), not stdio: a vCPU thread must not sit on a FILE lock, and a
 * reader that went away (EPIPE; SIGPIPE is ignored) is reported once. */
static void serial_to_file(void *ctx, const uint8_t *bytes, size_t len)
{
	struct serial_sink *sink = ctx;
	while (sink && sink->fd >= 0 && len) {
		ssize_t n = write(sink->fd, bytes, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!sink->write_failed)
				fprintf(stderr, "hvkit: --serial: write: %s (COM1 output is "
					"dropped from now on)\n", n < 0 ? strerror(errno) : "short");
			sink->write_failed = true;
			close(sink->fd);
			sink->fd = -1;
			return;
		}
		bytes += n;
		len -= (size_t)n;
	}
}

static size_t serial_to_uart(void *ctx, const uint8_t *bytes, size_t len)
{
	return machine_console_input(ctx, bytes, len);
}

/* Sets cfg's console per --serial. 0, or 1 after a message. */
static int open_serial(const char *spec, struct machine_config *cfg, struct serial_sink *sink)
{
	*sink = (struct serial_sink){.fd = -1};
	if (!spec || !strcmp(spec, "stdio"))
		return 0; /* the platform's default */
	cfg->kvm.console = serial_to_file;
	if (!strcmp(spec, "none"))
		return 0;
	if (!strcmp(spec, "pty")) {
		int err = serial_pty_new(&sink->pty);
		if (err) {
			fprintf(stderr, "hvkit run: --serial pty: %s\n", strerror(-err));
			return 1;
		}
		/* Printed at once: a terminal program can attach before boot. */
		fprintf(stderr, "hvkit: --serial pty: COM1 is %s\n", serial_pty_name(sink->pty));
		cfg->kvm.console = serial_pty_output;
		cfg->kvm.console_ctx = sink->pty;
		return 0;
	}
	if (!strncmp(spec, "unix:", 5)) {
		int err = serial_unix_new(spec + 5, &sink->sock);
		if (err) {
			fprintf(stderr, "hvkit run: --serial %s: %s\n", spec,
				err == -EEXIST	       ? "that path exists and is not a socket"
				: err == -EADDRINUSE ? "another process is listening there"
						     : strerror(-err));
			return 1;
		}
		cfg->kvm.console = serial_unix_output;
		cfg->kvm.console_ctx = sink->sock;
		return 0;
	}
	sink->fd = open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (sink->fd < 0) {
		fprintf(stderr, "hvkit run: --serial %s: %s\n", spec, strerror(errno));
		return 1;
	}
	cfg->kvm.console_ctx = sink;
	return 0;
}

/* Before the machine stops: no input goes to its UART after this. */
static void detach_serial(struct serial_sink *sink)
{
	serial_unix_detach(sink->sock);
	serial_pty_detach(sink->pty);
}

/* After the machine stopped (or never started). */
static void close_serial(struct serial_sink *sink)
{
	serial_unix_free(sink->sock);
	serial_pty_free(sink->pty);
	if (sink->fd >= 0)
		close(sink->fd);
}

/* Options only a KVM machine has: with any of them, no /dev/kvm is an
 * error, not a quiet switch to the process partition. */
static bool kvm_only_options(const struct run_options *o)
{
	return o->kernel || o->initrd || o->cmdline || o->debug_exit || o->hyperv_testdev ||
	       o->pause_on_crash || o->restore || (o->serial && strcmp(o->serial, "stdio"));
}

static void print_testdev(struct machine *m)
{
	struct hv_testdev_stats st;
	if (!machine_testdev_stats(m, &st))
		return;
	printf("hvkit: hyperv-testdev: %llu commands (%llu rejected), %llu messages echoed, "
	       "%llu refused as busy, %llu flags set, %llu lost\n",
	       (unsigned long long)st.commands, (unsigned long long)st.rejected,
	       (unsigned long long)st.echoed, (unsigned long long)st.busy,
	       (unsigned long long)st.signalled, (unsigned long long)st.lost);
}

static void print_start(const struct run_options *o, const struct machine_config *cfg)
{
	bool kvm = cfg->partition == MACHINE_KVM;
	printf("hvkit: %s partition, %u VPs, %llu MiB, %u echo device(s), %u NIC(s), "
	       "%u disk(s); %s %s\n",
	       kvm ? "KVM" : "process", o->cpus, (unsigned long long)(o->memory >> 20),
	       o->echo_devices, o->nic_count, o->disk_count, kvm ? "kernel" : "guest",
	       kvm ? cfg->kvm.kernel : o->guest);
	fflush(stdout);
}

static void start_failed(const struct machine_config *cfg, int err, const char *why)
{
	if (cfg->partition == MACHINE_KVM && err == -ENODEV)
		fprintf(stderr, "hvkit run: no usable /dev/kvm here; --partition process runs "
				"the guest side as a process instead\n");
	else
		fprintf(stderr, "hvkit run: cannot start the machine: %s\n",
			why[0] ? why : strerror(-err));
}

int cmd_run(int argc, char **argv)
{
	struct run_options o = {
		.cpus = 2,
		.memory = 64ull << 20,
		.echo_devices = 2,
		.packets = "1000",
		.subchannels = "1",
		.timeout_s = -1,
		.no_sandbox = !sandbox_available(),
	};
	int err = parse_options(argc, argv, &o);
	if (err)
		return err == 1 ? 0 : err;
	/* hvkit's own guests end by themselves within seconds: a bound keeps
	 * a broken one from hanging a script. Another kernel runs until it
	 * powers off, as under QEMU, and a --control machine until it is
	 * told to stop. */
	if (o.timeout_s < 0)
		o.timeout_s = o.kernel || o.control ? 0 : 300;
	/* The test suites' hook for "no usable KVM here", read at the edge. */
	if (!o.kvm_device)
		o.kvm_device = getenv("HVKIT_KVM_DEVICE");
	if (!o.guest[0])
		default_guest(o.guest, sizeof(o.guest));
	char kernel[PATH_MAX];
	bool builtin = !o.kernel;
	if (builtin)
		default_kernel(kernel, sizeof(kernel));
	else
		snprintf(kernel, sizeof(kernel), "%s", o.kernel);

	char *gargv[12] = {o.guest, "--packets", o.packets, "--subchannels", o.subchannels};
	int gargc = 5;
	if (o.max_version[0]) {
		gargv[gargc++] = "--max-version";
		gargv[gargc++] = o.max_version;
	}
	if (o.control)
		gargv[gargc++] = "--serve";
	if (o.copy_dir) {
		gargv[gargc++] = "--copy-dir";
		gargv[gargc++] = (char *)o.copy_dir;
	}
	struct machine_config cfg = {
		.partition = o.partition,
		.cpus = o.cpus,
		.memory = o.memory,
		.vm_id = o.vm_id,
		.guest_path = o.guest,
		.guest_argv = gargv,
		.kvm = {.device = o.kvm_device, .kernel = kernel, .initrd = o.initrd,
			/* hvkit-os reports its verdict on the debug port; with a
			 * control socket it serves until asked to shut down, as
			 * the process guest does with --serve */
			.cmdline = o.cmdline    ? o.cmdline
				   : !builtin  ? ""
				   : o.control ? "hvkit.debug_exit hvkit.expect_hv hvkit.serve"
					       : "hvkit.debug_exit hvkit.expect_hv",
			.debug_exit = o.debug_exit || builtin, .no_s4 = o.no_s4,
			.pause_on_crash = o.pause_on_crash,
			.hyperv_testdev = o.hyperv_testdev},
		.echo_devices = o.echo_devices,
		.nics = o.nics,
		.nic_count = o.nic_count,
		.disks = o.disks,
		.disk_count = o.disk_count,
		.vmbus = {.scramble_relids = o.scramble, .gpadl_limit = o.gpadl_limit},
		.ic = !o.no_ic,
		.restore = o.restore,
	};
	/* hvkit's own guests run for seconds: short periods, so that they
	 * see heartbeats and samples. Another kernel gets the IC library's
	 * (Hyper-V's pace: a heartbeat each second, a time sample every 5 s). */
	if (builtin || cfg.partition == MACHINE_PROCESS)
		cfg.ic_config = (struct ic_host_config){.heartbeat_interval_ns = 200000000ull,
							.timesync_interval_ns = 1000000000ull};
	if (o.heartbeat_ns)
		cfg.ic_config.heartbeat_interval_ns = o.heartbeat_ns;
	if (o.timesync_ns)
		cfg.ic_config.timesync_interval_ns = o.timesync_ns;
	err = o.control ? control_server_check_path(o.control) : 0;
	if (err) {
		fprintf(stderr, "hvkit run: cannot serve the control socket %s: %s\n", o.control,
			err == -EADDRINUSE ? "a machine is listening there"
			: err == -EEXIST   ? "that path exists and is not a socket"
					   : strerror(-err));
		return EXIT_HVKIT_FAILED;
	}
	struct serial_sink serial;
	if (open_serial(o.serial, &cfg, &serial))
		return EXIT_HVKIT_FAILED;
	struct machine *m;
	print_start(&o, &cfg);
	/* Blocked before any thread exists, so the control loop takes them
	 * (the guest inherits the mask; the host stops it). */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGHUP);
	if (o.control)
		pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	/* A console or pipe reader that goes away is a write error, not the
	 * end of the VMM. */
	signal(SIGPIPE, SIG_IGN);
	if (drop_privileges(&o, kernel)) {
		close_serial(&serial);
		return EXIT_HVKIT_FAILED;
	}
	char why[256];
	err = machine_start(&cfg, &m, why, sizeof(why));
	if (err == -ENODEV && cfg.partition == MACHINE_KVM && !o.partition_given &&
	    !kvm_only_options(&o)) {
		/* The same guest library, run as a process. */
		printf("hvkit: no usable /dev/kvm here; running the guest side in the process "
		       "partition instead\n");
		cfg.partition = o.partition = MACHINE_PROCESS;
		print_start(&o, &cfg);
		err = machine_start(&cfg, &m, why, sizeof(why));
	}
	if (err == -ENODEV && cfg.partition == MACHINE_KVM && kvm_only_options(&o)) {
		fprintf(stderr, "hvkit run: no usable /dev/kvm here; --kernel, --initrd, --cmdline, "
				"--serial, --debug-exit, --on-crash pause, --restore and --device "
				"hyperv-testdev need /dev/kvm\n");
		close_serial(&serial);
		return EXIT_HVKIT_FAILED;
	}
	if (err) {
		start_failed(&cfg, err, why);
		close_serial(&serial);
		return EXIT_HVKIT_FAILED;
	}
	if (serial.sock || serial.pty) {
		err = serial.sock ? serial_unix_attach(serial.sock, serial_to_uart, m)
				  : serial_pty_attach(serial.pty, serial_to_uart, m);
		if (err) {
			fprintf(stderr, "hvkit run: --serial %s: %s\n", o.serial, strerror(-err));
			machine_stop(m);
			close_serial(&serial);
			return EXIT_HVKIT_FAILED;
		}
	}
	int status = 0, end;
	if (o.control) {
		end = run_controlled(m, &o, &stop_signals, &status);
		if (end < 0) {
			fprintf(stderr, "hvkit run: cannot serve the control socket %s: %s\n",
				o.control, strerror(-end));
			detach_serial(&serial);
			machine_stop(m);
			close_serial(&serial);
			return EXIT_HVKIT_FAILED;
		}
	} else if (enter_sandbox(&o, m)) {
		end = RUN_SANDBOX_FAILED;
	} else {
		end = machine_wait(m, o.timeout_s ? (int)(o.timeout_s * 1000) : -1, &status)
			      ? RUN_TIMED_OUT
			      : RUN_GUEST_ENDED;
	}
	bool failed = machine_failed(m, why, sizeof(why));
	bool crashed = machine_guest_crashed(m);
	struct vmbus_server_stats vs;
	vmbus_server_get_stats(machine_vmbus(m), &vs);
	if (o.partition == MACHINE_PROCESS || vs.connects)
		print_host_view(m);
	print_ic(m);
	print_testdev(m);
	detach_serial(&serial);
	machine_stop(m);
	close_serial(&serial);
	return run_verdict(&o, builtin, end, status, failed ? why : NULL, crashed);
}
