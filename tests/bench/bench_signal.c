/* SPDX-License-Identifier: MIT */
/*
 * hvkit-bench signal: the HvSignalEvent round trip in the process
 * partition. The guest signals an event connection (fast path: an
 * eventfd), the host's handler sets an event flag back in the guest's
 * SynIC, the guest's interrupt handler sees it. The guest program
 * (hvkit-test-guest bench-signal) times each round trip and prints the
 * median and p99.
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

#include "../process/scenario_ids.h"
#include "bench.h"
#include "process.h"

static uint16_t reflect(void *ctx, uint32_t vp, uint16_t flag)
{
	struct process_partition *pp = ctx;
	(void)vp;
	(void)flag;
	return hv_synic_signal(process_partition_hv(pp), 0, 2, REFLECT_FLAG)
		       ? HV_STATUS_INVALID_PARAMETER
		       : HV_STATUS_SUCCESS;
}

static int prepare(void *ctx, struct process_partition *pp)
{
	(void)ctx;
	process_partition_lock(pp);
	int err = hv_connection_add_event(process_partition_hv(pp), REFLECT_CONNECTION, reflect,
					  pp);
	process_partition_unlock(pp);
	return err;
}

/* The test guest is built next to this program, under process/. */
static void default_guest(char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	snprintf(out, size, "%s/process/hvkit-test-guest", dirname(self));
}

int bench_signal_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"samples", required_argument, NULL, 'n'},
		{"guest", required_argument, NULL, 'g'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char guest[PATH_MAX];
	char samples[32] = "20000";
	int c;

	default_guest(guest, sizeof(guest));
	while ((c = getopt_long(argc, argv, "n:g:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			snprintf(samples, sizeof(samples), "%lu", strtoul(optarg, NULL, 0));
			break;
		case 'g':
			snprintf(guest, sizeof(guest), "%s", optarg);
			break;
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"usage: hvkit-bench signal [--samples N] [--guest PATH]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (atol(samples) <= 0) {
		fprintf(stderr, "hvkit-bench signal: --samples must be positive\n");
		return 2;
	}

	char *gargv[] = {guest, "bench-signal", samples, NULL};
	struct process_partition_config cfg = {
		.vp_count = 1,
		.memory_size = 16 << 20,
		.guest_path = guest,
		.guest_argv = gargv,
		.prepare = prepare,
	};
	struct process_partition *pp;
	int status = 0;

	printf("process partition, 1 VP, %s round trips\n", samples);
	fflush(stdout);
	int err = process_partition_start(&cfg, &pp);
	if (err) {
		fprintf(stderr, "hvkit-bench signal: cannot start %s: %s\n", guest, strerror(-err));
		return 1;
	}
	err = process_partition_wait(pp, 120000, &status);
	struct process_partition_stats st;
	process_partition_get_stats(pp, &st);
	process_partition_stop(pp);
	if (err || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "hvkit-bench signal: the guest failed\n");
		return 1;
	}
	printf("host: %llu fast events, %llu interrupts, %llu socket requests\n",
	       (unsigned long long)st.fast_events, (unsigned long long)st.interrupts,
	       (unsigned long long)st.requests);
	return 0;
}
