/* SPDX-License-Identifier: MIT */
/*
 * hvkit-bench: benchmark programs. Each prints its figures and the bound it
 * is measured against; none asserts a timing.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The CPUs the process was allowed at start, before any thread pinned
 * itself (a pinned thread's own mask would hide the others). */
static cpu_set_t allowed_cpus;

int bench_cpu(int n)
{
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &allowed_cpus) && n-- == 0)
			return cpu;
	return -1;
}

void bench_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int bench_cpu_count(void)
{
	return CPU_COUNT(&allowed_cpus);
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), compare_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_path_near_self(const char *rel, char *path, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	snprintf(path, size, "%s/%s", dirname(self), rel);
}

int bench_guest_options(int argc, char **argv, const char *name, const char *rel,
			unsigned long *samples, char *guest, size_t size)
{
	static const struct option opts[] = {
		{"samples", required_argument, NULL, 'n'},
		{"guest", required_argument, NULL, 'g'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	bench_path_near_self(rel, guest, size);
	while ((c = getopt_long(argc, argv, "n:g:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			*samples = strtoul(optarg, NULL, 0);
			break;
		case 'g':
			snprintf(guest, size, "%s", optarg);
			break;
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"usage: hvkit-bench %s [--samples N] [--guest PATH]\n", name);
			return c == 'h' ? 0 : 2;
		}
	}
	if (*samples == 0 || *samples > 100000000ul) {
		fprintf(stderr, "hvkit-bench %s: --samples must be positive\n", name);
		return 2;
	}
	return -1;
}

static const struct {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *what;
} benches[] = {
	{"ring", bench_ring_main, "VMBus ring buffer: two threads, 64 B / 1 KiB / 4 KiB packets"},
	{"signal", bench_signal_main, "HvSignalEvent round trip in the process partition"},
	{"net", bench_net_main, "synthetic NIC: netvsc to netvsp and back, 64 B / 1500 B frames"},
	{"storage", bench_storage_main,
	 "storvsc in a guest against storvsp on /dev/shm, next to io_uring on the file"},
	{"kvm", bench_kvm_main, "KVM partition: MSR exit, hypercall, MSI delivery latencies"},
	{"scale", bench_scale_main, "1 VP against 2 (and more): MSR exits, storage, net"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: hvkit-bench BENCHMARK [options]\n\nbenchmarks:\n");
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++)
		fprintf(out, "  %-8s %s\n", benches[i].name, benches[i].what);
}

int main(int argc, char **argv)
{
	if (sched_getaffinity(0, sizeof(allowed_cpus), &allowed_cpus) != 0)
		CPU_ZERO(&allowed_cpus);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++)
		if (!strcmp(argv[1], benches[i].name))
			return benches[i].main(argc - 1, argv + 1);
	fprintf(stderr, "hvkit-bench: unknown benchmark '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
