/* SPDX-License-Identifier: MIT */
/*
 * hvkit-bench storage: storvsc in a process-partition guest against
 * storvsp on an image in /dev/shm, next to the same workload issued with
 * io_uring straight on the file (the bound). Three workloads: 4 KiB random
 * read at QD 32, 1 MiB sequential read and write at QD 4.
 *
 * The guest (hvkit-test-storvsc-guest bench ...) keeps the queue full by
 * resubmitting from its completion callback and reports I/Os, wall time
 * and its own CPU time (CLOCK_PROCESS_CPUTIME_ID: every VP thread). The
 * host's CPU time is this process's (getrusage) over the guest's run,
 * bring-up included (tens of milliseconds).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "bench_storage.h"
#include "machine.h"

#define IMG_BYTES (256ull << 20)

const struct storage_workload storage_workloads[STORAGE_WORKLOADS] = {
	{"4 KiB random read, QD 32", 4096, 32, false, true},
	{"1 MiB sequential read, QD 4", 1 << 20, 4, false, false},
	{"1 MiB sequential write, QD 4", 1 << 20, 4, true, false},
};

static uint64_t rusage_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static uint64_t offset_of(const struct storage_workload *w, uint64_t k)
{
	if (w->random) {
		k = k * 6364136223846793005ull + 1442695040888963407ull;
		k >>= 23;
	}
	return k % (IMG_BYTES / w->bytes) * w->bytes;
}

/* Queues request i (buffer i) at the workload's next offset. */
static void queue_one(struct io_uring *ring, int fd, const struct storage_workload *w,
		      uint8_t *buf, uint64_t i, uint64_t *k)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	uint8_t *b = buf + i * w->bytes;
	if (w->write)
		io_uring_prep_write(sqe, fd, b, w->bytes, offset_of(w, (*k)++));
	else
		io_uring_prep_read(sqe, fd, b, w->bytes, offset_of(w, (*k)++));
	io_uring_sqe_set_data64(sqe, i);
}

/* The bound: the same queue depth with io_uring on the image. */
static int run_direct(const char *img, const struct storage_workload *w, uint32_t ms,
		      struct storage_result *r)
{
	int fd = open(img, O_RDWR);
	struct io_uring ring;
	if (fd < 0 || io_uring_queue_init(64, &ring, 0)) {
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	uint8_t *buf = aligned_alloc(4096, (size_t)w->bytes * w->depth);
	memset(buf, 0x5a, (size_t)w->bytes * w->depth);
	uint64_t k = 0, ios = 0, t0 = bench_now_ns(), c0 = rusage_ns(), end = t0 + ms * 1000000ull;
	for (uint32_t i = 0; i < w->depth; i++)
		queue_one(&ring, fd, w, buf, i, &k);
	io_uring_submit(&ring);
	uint32_t inflight = w->depth;
	bool stop = false;
	while (inflight) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&ring, &cqe))
			break;
		uint64_t i = io_uring_cqe_get_data64(cqe);
		io_uring_cqe_seen(&ring, cqe);
		ios++;
		stop = stop || bench_now_ns() >= end;
		if (stop) {
			inflight--;
			continue;
		}
		queue_one(&ring, fd, w, buf, i, &k);
		io_uring_submit(&ring);
	}
	*r = (struct storage_result){ios, bench_now_ns() - t0, rusage_ns() - c0, 0};
	io_uring_queue_exit(&ring);
	free(buf);
	close(fd);
	return 0;
}

int storage_guest_run(const char *guest, const char *img, const char *aio,
		      const struct storage_workload *w, uint32_t vps, uint32_t depth, uint32_t ms,
		      struct storage_result *r)
{
	char out[64], bytes[16], qd[16], rnd[4], wr[4], msv[16];
	snprintf(out, sizeof(out), "/tmp/hvkit-bench-storage-XXXXXX");
	int fd = mkstemp(out);
	if (fd < 0)
		return -errno;
	close(fd);
	snprintf(bytes, sizeof(bytes), "%u", w->bytes);
	snprintf(qd, sizeof(qd), "%u", depth);
	snprintf(rnd, sizeof(rnd), "%d", w->random);
	snprintf(wr, sizeof(wr), "%d", w->write);
	snprintf(msv, sizeof(msv), "%u", ms);
	char *argv[] = {(char *)guest, "bench", bytes, qd, rnd, wr, msv, out, NULL};
	struct machine_disk d = {.path = img, .aio = aio};
	struct machine_config cfg = {.cpus = vps, .memory = 256 << 20, .guest_path = guest,
				     .guest_argv = argv, .disks = &d, .disk_count = 1};
	struct machine *m;
	uint64_t c0 = rusage_ns();
	int err = machine_start(&cfg, &m, NULL, 0);
	if (err) {
		unlink(out);
		return err;
	}
	int status = -1;
	err = machine_wait(m, 120000, &status);
	uint64_t host_cpu = rusage_ns() - c0;
	machine_stop(m);
	FILE *f = fopen(out, "r");
	unsigned long long ios = 0, ns = 0, cpu = 0, vp_ios[STORAGE_MAX_VPS] = {0};
	bool ok = f && fscanf(f, "%llu %llu %llu", &ios, &ns, &cpu) == 3;
	for (uint32_t vp = 0; ok && vp < vps && vp < STORAGE_MAX_VPS; vp++)
		ok = fscanf(f, "%llu", &vp_ios[vp]) == 1;
	if (f)
		fclose(f);
	unlink(out);
	if (err || !WIFEXITED(status) || WEXITSTATUS(status) || !ok)
		return -EIO;
	*r = (struct storage_result){ios, ns, host_cpu, cpu, {0}};
	for (uint32_t vp = 0; vp < STORAGE_MAX_VPS; vp++)
		r->vp_ios[vp] = vp_ios[vp];
	return 0;
}

static void report(const char *who, const struct storage_workload *w,
		   const struct storage_result *r, const struct storage_result *bound)
{
	double s = (double)r->ns / 1e9, iops = (double)r->ios / s;
	printf("  %-9s %9.0f IOPS %8.1f MB/s", who, iops, iops * w->bytes / 1e6);
	if (bound) {
		double biops = (double)bound->ios / ((double)bound->ns / 1e9);
		printf(" %5.1f%% of bound  host %6.2f us/IO  guest %6.2f us/IO", 100 * iops / biops,
		       (double)r->host_cpu_ns / (double)r->ios / 1e3,
		       (double)r->guest_cpu_ns / (double)r->ios / 1e3);
	} else {
		printf("                  CPU  %6.2f us/IO", (double)r->host_cpu_ns / (double)r->ios / 1e3);
	}
	printf("\n");
}

int storage_image_create(const char *dir, char *path, size_t size)
{
	snprintf(path, size, "%s/hvkit-bench-storage-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	static uint8_t chunk[1 << 20];
	memset(chunk, 0xa5, sizeof(chunk));
	for (uint64_t off = 0; off < IMG_BYTES; off += sizeof(chunk))
		if (pwrite(fd, chunk, sizeof(chunk), (off_t)off) != (ssize_t)sizeof(chunk)) {
			int err = errno ? -errno : -ENOSPC;
			close(fd);
			unlink(path);
			return err;
		}
	close(fd);
	return 0;
}

int bench_storage_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"seconds", required_argument, NULL, 's'},
		{"guest", required_argument, NULL, 'g'},
		{"dir", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char guest[PATH_MAX];
	const char *dir = "/dev/shm";
	double seconds = 2;
	bench_path_near_self("storage/hvkit-test-storvsc-guest", guest, sizeof(guest));
	int c;
	while ((c = getopt_long(argc, argv, "s:g:d:h", opts, NULL)) != -1) {
		if (c == 's')
			seconds = atof(optarg);
		else if (c == 'g')
			snprintf(guest, sizeof(guest), "%s", optarg);
		else if (c == 'd')
			dir = optarg;
		else {
			fprintf(c == 'h' ? stdout : stderr,
				"usage: hvkit-bench storage [--seconds S] [--dir DIR] [--guest PATH]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (seconds <= 0 || seconds > 600)
		return 2;
	char img[PATH_MAX];
	int err = storage_image_create(dir, img, sizeof(img));
	if (err) {
		fprintf(stderr, "hvkit-bench storage: image in %s: %s\n", dir, strerror(-err));
		return 1;
	}
	printf("storage: 256 MiB image in %s, %.1f s per run, guest: 2 VPs (2 channels)\n", dir,
	       seconds);
	int rc = 0;
	uint32_t ms = (uint32_t)(seconds * 1000);
	for (size_t i = 0; i < STORAGE_WORKLOADS; i++) {
		const struct storage_workload *w = &storage_workloads[i];
		struct storage_result bound = {0}, vm = {0};
		printf("%s\n", w->name);
		if (run_direct(img, w, ms, &bound)) {
			fprintf(stderr, "hvkit-bench storage: io_uring failed\n");
			rc = 1;
			continue;
		}
		report("io_uring", w, &bound, NULL);
		/* The disk's two back ends: io_uring (the default) and
		 * preadv2/pwritev2 on the storvsp workers. */
		static const char *const aio[][2] = {{"io_uring", "storvsc"},
						     {"threads", "threads"}};
		for (size_t a = 0; a < 2; a++) {
			err = storage_guest_run(guest, img, aio[a][0], w, 2, w->depth, ms, &vm);
			if (err) {
				fprintf(stderr,
					"hvkit-bench storage: the guest run (aio=%s) failed (%s)\n",
					aio[a][0], strerror(-err));
				rc = 1;
				continue;
			}
			report(aio[a][1], w, &vm, &bound);
		}
	}
	unlink(img);
	return rc;
}
