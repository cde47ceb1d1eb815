/* SPDX-License-Identifier: MIT */
/*
 * hvkit-bench scale: the same workloads on 1 VP and on 2 VPs (and on every
 * CPU where there are more than 2), to show how the host side scales:
 *
 *   msr      every VP of a KVM partition reads a synthetic MSR in a loop
 *            (bench_scale_msr.c): exits/s per VP and in all; then the
 *            same with an MSR KVM serves itself, the bound KVM sets;
 *   storage  the workloads of hvkit-bench storage in the storvsc test
 *            guest, a channel per VP and the queue depth per VP;
 *   net      the "source -> guest" run of hvkit-bench net with a queue
 *            (channel, host source thread) per VP.
 *
 * Runs alternate (1 VP, 2 VPs, 1 VP, 2 VPs ...: the machine's load swings
 * between minutes, not within a pair); each figure is the median over the
 * samples, the scaling factor the median of total(n) / total(1) within
 * each sample. Figures only, nothing asserted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_net.h"
#include "bench_scale.h"
#include "bench_storage.h"
#include "hvkit/tlfs.h"
#include "kvm.h"

#define MAX_SAMPLES 99
#define MAX_COUNTS 3 /* 1, 2, and every CPU when there are more */

struct scale_env {
	uint32_t ms;     /* a run (msr: its window) */
	uint64_t frames; /* net: per queue */
	const char *dir; /* storage: where the image goes */
	char img[PATH_MAX];
	char storvsc_guest[PATH_MAX], netvsc_guest[PATH_MAX];
};

struct scale_case {
	const char *title;
	const char *unit;     /* of the rate */
	uint32_t bytes;       /* a unit's bytes, for MB/s; 0: none */
	const char *per;      /* what the per-VP figures are of; NULL: not measured */
	int (*run)(const struct scale_env *env, const struct scale_case *c, uint32_t vps,
		   struct scale_figures *out);
	const void *arg;
};

/* ---- The parts ---- */

static int run_msr(const struct scale_env *env, const struct scale_case *c, uint32_t vps,
		   struct scale_figures *out)
{
	const uint32_t *msr = c->arg;
	return scale_msr_run(*msr, vps, env->ms, out);
}

static int run_storage(const struct scale_env *env, const struct scale_case *c, uint32_t vps,
		       struct scale_figures *out)
{
	const struct storage_workload *w = c->arg;
	struct storage_result r;
	int err = storage_guest_run(env->storvsc_guest, env->img, "io_uring", w, vps,
				    w->depth * vps, env->ms, &r);
	if (err)
		return err;
	out->total = (double)r.ios * 1e9 / (double)r.ns;
	for (uint32_t vp = 0; vp < vps && vp < STORAGE_MAX_VPS; vp++)
		out->per_vp[vp] = (double)r.vp_ios[vp] * 1e9 / (double)r.ns;
	return 0;
}

/* A network direction at one frame size. */
struct net_case {
	uint32_t size;
	int (*run)(const char *guest, uint32_t size, uint64_t count, uint32_t queues,
		   struct net_result *r);
};

static int run_net(const struct scale_env *env, const struct scale_case *c, uint32_t vps,
		   struct scale_figures *out)
{
	const struct net_case *nc = c->arg;
	struct net_result r;
	int err = nc->run(env->netvsc_guest, nc->size, env->frames, vps, &r);
	if (err)
		return err;
	out->total = r.total_fps;
	for (uint32_t q = 0; q < vps; q++)
		out->per_vp[q] = r.queue_fps[q];
	return 0;
}

/* ---- Samples and report ---- */

struct case_samples {
	double total[MAX_COUNTS][MAX_SAMPLES];
	double scaling[MAX_COUNTS][MAX_SAMPLES];
	double per_vp[MAX_COUNTS][SCALE_MAX_VPS][MAX_SAMPLES];
};

static void print_row(const struct scale_case *c, uint32_t vps, struct case_samples *s, int k,
		      int samples)
{
	double total = bench_median(s->total[k], samples);
	printf("  %3u %14.0f", vps, total);
	if (c->bytes)
		printf(" %9.1f", total * c->bytes / 1e6);
	printf(" %8.2fx", bench_median(s->scaling[k], samples));
	for (uint32_t vp = 0; c->per && vp < vps; vp++)
		printf(" %12.0f", bench_median(s->per_vp[k][vp], samples));
	printf("\n");
}

/* A, B (, C), A, B ...; 0 or the first run's error. */
static int run_case(const struct scale_env *env, const struct scale_case *c,
		    const uint32_t *counts, int ncounts, int samples)
{
	struct case_samples s;
	printf("\n%s\n  VPs %14s%s  scaling   %s%s\n", c->title, c->unit, c->bytes ? "      MB/s" : "",
	       c->per ? "per " : "per VP: not measured", c->per ? c->per : "");
	fflush(stdout);
	for (int i = 0; i < samples; i++)
		for (int k = 0; k < ncounts; k++) {
			struct scale_figures f = {0};
			int err = c->run(env, c, counts[k], &f);
			if (err) {
				printf("  %3u failed: %s\n", counts[k], strerror(-err));
				return err;
			}
			s.total[k][i] = f.total;
			s.scaling[k][i] = f.total / s.total[0][i];
			for (uint32_t vp = 0; vp < counts[k]; vp++)
				s.per_vp[k][vp][i] = f.per_vp[vp];
		}
	for (int k = 0; k < ncounts; k++)
		print_row(c, counts[k], &s, k, samples);
	fflush(stdout);
	return 0;
}

static int msr_part(const struct scale_env *env, const uint32_t *counts, int ncounts,
		    int samples)
{
	if (kvm_partition_probe(NULL)) {
		printf("\nmsr: skipped (no usable /dev/kvm)\n");
		return 0;
	}
	static const struct {
		uint32_t msr;
		const char *what;
	} loops[] = {
		{HV_MSR_VP_INDEX, "HV_X64_MSR_VP_INDEX (an exit to hvkit each)"},
		{SCALE_MSR_APIC_BASE, "IA32_APIC_BASE, the baseline (KVM serves it, no exit to hvkit)"},
	};
	int err = 0;
	for (size_t i = 0; i < sizeof(loops) / sizeof(loops[0]) && !err; i++) {
		char title[320];
		snprintf(title, sizeof(title),
			 "msr: RDMSR in a loop on every VP of a KVM partition, %u ms windows:\n  %s",
			 env->ms, loops[i].what);
		const struct scale_case c = {title, "reads/s", 0, "VP", run_msr, &loops[i].msr};
		err = run_case(env, &c, counts, ncounts, samples);
	}
	return err;
}

static int storage_part(struct scale_env *env, const uint32_t *counts, int ncounts,
			int samples)
{
	int err = storage_image_create(env->dir, env->img, sizeof(env->img));
	if (err) {
		printf("\nstorage: no image in %s: %s\n", env->dir, strerror(-err));
		return err;
	}
	for (int i = 0; i < STORAGE_WORKLOADS && !err; i++) {
		const struct storage_workload *w = &storage_workloads[i];
		char title[320];
		snprintf(title, sizeof(title),
			 "storage: %s per VP, a channel per VP,\n  storvsp on io_uring, %u ms runs",
			 w->name, env->ms);
		const struct scale_case c = {title, "IOPS", w->bytes, "VP (its channel's IOPS)",
					     run_storage, w};
		err = run_case(env, &c, counts, ncounts, samples);
	}
	unlink(env->img);
	printf("  (storvsc spreads requests round robin over the channels, and each\n"
	       "  channel's completions run on its own VP: a VP's figure is its channel's)\n");
	return err;
}

static int net_part(const struct scale_env *env, const uint32_t *counts, int ncounts,
		    int samples)
{
	static const struct {
		struct net_case net;
		const char *path, *how;
	} cases[] = {
		{{64, net_rx_run}, "source -> netvsp -> netvsc -> guest",
		 "(a channel and a host source thread each)"},
		{{1500, net_rx_run}, "source -> netvsp -> netvsc -> guest",
		 "(a channel and a host source thread each)"},
		{{64, net_tx_run}, "guest -> netvsc -> netvsp -> sink",
		 "(a channel and a guest thread each, a UDP flow netvsc puts on it;\n"
		 "  one device thread reads every channel)"},
		{{1500, net_tx_run}, "guest -> netvsc -> netvsp -> sink",
		 "(a channel and a guest thread each, a UDP flow netvsc puts on it;\n"
		 "  one device thread reads every channel)"},
	};
	int err = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && !err; i++) {
		char title[320];
		snprintf(title, sizeof(title),
			 "net: %s, %u B frames, a queue per VP\n  %s, %llu frames a queue",
			 cases[i].path, cases[i].net.size, cases[i].how,
			 (unsigned long long)env->frames);
		const struct scale_case c = {title, "frames/s", cases[i].net.size, "queue",
					     run_net, &cases[i].net};
		err = run_case(env, &c, counts, ncounts, samples);
	}
	return err;
}

/* ---- Options ---- */

static double load_average(void)
{
	double load = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &load) != 1)
			load = -1;
		fclose(f);
	}
	return load;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hvkit-bench scale [--samples N] [--seconds S] [--frames N] [--dir DIR]\n"
		"                         [--only msr|storage|net]\n"
		"  --samples N  runs at each VP count, alternating (default 5)\n"
		"  --seconds S  msr window and storage run (default 1)\n"
		"  --frames N   net: frames per queue (default 2000000)\n"
		"  --dir DIR    storage: where the 256 MiB image goes (default /dev/shm)\n"
		"  --only PART  that part alone\n");
}

static int parse(int argc, char **argv, struct scale_env *env, int *samples, const char **only)
{
	static const struct option opts[] = {
		{"samples", required_argument, NULL, 'n'}, {"seconds", required_argument, NULL, 's'},
		{"frames", required_argument, NULL, 'f'},  {"dir", required_argument, NULL, 'd'},
		{"only", required_argument, NULL, 'o'},    {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	double seconds = 1;
	int c;
	while ((c = getopt_long(argc, argv, "n:s:f:d:o:h", opts, NULL)) != -1) {
		if (c == 'n')
			*samples = atoi(optarg);
		else if (c == 's')
			seconds = atof(optarg);
		else if (c == 'f')
			env->frames = strtoull(optarg, NULL, 0);
		else if (c == 'd')
			env->dir = optarg;
		else if (c == 'o')
			*only = optarg;
		else {
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	bool part_ok = !*only || !strcmp(*only, "msr") || !strcmp(*only, "storage") ||
		       !strcmp(*only, "net");
	if (*samples < 1 || *samples > MAX_SAMPLES || seconds < 0.01 || seconds > 600 ||
	    env->frames < 1 || env->frames > 1000000000ull || !part_ok) {
		usage(stderr);
		return 2;
	}
	env->ms = (uint32_t)(seconds * 1000);
	return -1;
}

int bench_scale_main(int argc, char **argv)
{
	static struct scale_env env = {.frames = 2000000, .dir = "/dev/shm"};
	int samples = 5;
	const char *only = NULL;
	int status_or_go = parse(argc, argv, &env, &samples, &only);
	if (status_or_go >= 0)
		return status_or_go;
	bench_path_near_self("storage/hvkit-test-storvsc-guest", env.storvsc_guest,
			     sizeof(env.storvsc_guest));
	bench_path_near_self("net/hvkit-test-netvsc-guest", env.netvsc_guest,
			     sizeof(env.netvsc_guest));
	/* The guest program takes its send-buffer size from here, as in
	 * hvkit-bench net. */
	setenv("HVKIT_NETVSC_SEND_SECTIONS", "1024", 0);

	uint32_t counts[MAX_COUNTS] = {1, 2};
	int ncounts = 2, cpus = bench_cpu_count();
	if (cpus > 2)
		counts[ncounts++] = cpus < SCALE_MAX_VPS ? (uint32_t)cpus : SCALE_MAX_VPS;
	printf("hvkit-bench scale: %d CPUs, load average %.2f at the start\n"
	       "  runs alternate between the VP counts, %d at each; figures are medians,\n"
	       "  scaling the median of total(n VPs) / total(1 VP) within a sample\n",
	       cpus, load_average(), samples);
	bool failed = false;
	if (!only || !strcmp(only, "msr"))
		failed |= msr_part(&env, counts, ncounts, samples) != 0;
	if (!only || !strcmp(only, "storage"))
		failed |= storage_part(&env, counts, ncounts, samples) != 0;
	if (!only || !strcmp(only, "net"))
		failed |= net_part(&env, counts, ncounts, samples) != 0;
	printf("\nload average at the end: %.2f\n", load_average());
	return failed ? 1 : 0;
}
