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

int bench_signal_main(int argc, char **argv)
{
	char guest[PATH_MAX];
	char samples[32];
	unsigned long count = 20000;

	/* The test guest is built next to this program, under process/. */
	int status_or_go = bench_guest_options(argc, argv, "signal", "process/hvkit-test-guest",
					       &count, guest, sizeof(guest));
	if (status_or_go >= 0)
		return status_or_go;
	snprintf(samples, sizeof(samples), "%lu", count);

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
