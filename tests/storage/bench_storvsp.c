/* SPDX-License-Identifier: MIT */
/*
 * storvsp-bench: figures, not assertions. The scripted storvsc
 * (storvsp_fixture.h) drives storvsp over a raw image on tmpfs at a fixed
 * queue depth, next to the same workload issued directly with io_uring on
 * the same file (the bound). Prints IOPS, MB/s and the process's CPU time
 * per I/O (guest and host share the process here; the real guest driver
 * and the process partition come with storvsc).
 *
 *   storvsp-bench [seconds per workload, default 2] [image dir, default /dev/shm]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <liburing.h>

#include "storvsp_fixture.h"

#define IMG_BYTES (256ull << 20)

struct workload {
	const char *name;
	uint32_t io_bytes;
	uint32_t depth;
	bool write, random;
};

static const struct workload workloads[] = {
	{"4 KiB random read, QD 32", 4096, 32, false, true},
	{"1 MiB sequential read, QD 4", 1 << 20, 4, false, false},
	{"1 MiB sequential write, QD 4", 1 << 20, 4, true, false},
};

static double seconds = 2;
static char img[4096];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t next_offset(const struct workload *w, uint64_t *seq, uint64_t *rng)
{
	uint64_t slots = IMG_BYTES / w->io_bytes;
	if (!w->random)
		return (*seq)++ % slots * w->io_bytes;
	*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
	return (*rng >> 33) % slots * w->io_bytes;
}

static void report(const char *who, const struct workload *w, uint64_t ios, double t, double c)
{
	printf("  %-9s %10.0f IOPS %9.1f MB/s %8.2f us CPU/IO\n", who, (double)ios / t,
	       (double)ios * w->io_bytes / t / 1e6, c / (double)ios * 1e6);
}

/* The bound: io_uring straight on the image. */
static void run_direct(const struct workload *w)
{
	int fd = open(img, O_RDWR);
	assert_true(fd >= 0);
	struct io_uring ring;
	assert_int_equal(io_uring_queue_init(64, &ring, 0), 0);
	uint8_t *buf = aligned_alloc(4096, (size_t)w->io_bytes * w->depth);
	assert_non_null(buf);
	memset(buf, 0x5a, (size_t)w->io_bytes * w->depth);
	uint64_t seq = 0, rng = 1, ios = 0;
	double t0 = now(), c0 = cpu(), end = t0 + seconds;
	for (uint32_t i = 0; i < w->depth; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		uint8_t *b = buf + (size_t)i * w->io_bytes;
		if (w->write)
			io_uring_prep_write(sqe, fd, b, w->io_bytes, next_offset(w, &seq, &rng));
		else
			io_uring_prep_read(sqe, fd, b, w->io_bytes, next_offset(w, &seq, &rng));
		io_uring_sqe_set_data64(sqe, i);
	}
	io_uring_submit(&ring);
	uint32_t inflight = w->depth;
	while (inflight) {
		struct io_uring_cqe *cqe;
		assert_int_equal(io_uring_wait_cqe(&ring, &cqe), 0);
		assert_int_equal(cqe->res, (int)w->io_bytes);
		uint64_t i = io_uring_cqe_get_data64(cqe);
		io_uring_cqe_seen(&ring, cqe);
		ios++;
		inflight--;
		if (now() < end) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			uint8_t *b = buf + i * w->io_bytes;
			if (w->write)
				io_uring_prep_write(sqe, fd, b, w->io_bytes,
						    next_offset(w, &seq, &rng));
			else
				io_uring_prep_read(sqe, fd, b, w->io_bytes,
						   next_offset(w, &seq, &rng));
			io_uring_sqe_set_data64(sqe, i);
			io_uring_submit(&ring);
			inflight++;
		}
	}
	report("io_uring", w, ios, now() - t0, cpu() - c0);
	io_uring_queue_exit(&ring);
	free(buf);
	close(fd);
}

static void submit_vsp(struct sfix *s, const struct workload *w, uint64_t base_pfn, uint32_t slot,
		       uint64_t off)
{
	uint32_t pages = w->io_bytes / 4096;
	uint64_t pfns[256];
	for (uint32_t k = 0; k < pages; k++)
		pfns[k] = base_pfn + (uint64_t)slot * pages + k;
	uint8_t cdb[16] = {w->write ? SCSI_WRITE_16 : SCSI_READ_16};
	scsi_put_be64(cdb + 2, off / 512);
	scsi_put_be32(cdb + 10, w->io_bytes / 512);
	struct vstor_packet p;
	sf_srb_build(&p, 0, cdb, 16, w->write ? VSTOR_DATA_WRITE : VSTOR_DATA_READ, w->io_bytes);
	while (sf_send_gpa(s, 0, slot + 1, &p, sizeof(p), 0, w->io_bytes, pfns, pages) == -EAGAIN)
		; /* the ring drains as the host reads */
}

/* The same through storvsp and the scripted guest. */
static void run_vsp(const struct workload *w)
{
	struct storvsp_config cfg = {.workers = 2};
	struct sfix *s = sf_new(&cfg, 0, 0, false);
	struct storage_file_config fc = {.path = img};
	struct storage_backend be;
	struct scsi_disk *d;
	assert_int_equal(storage_backend_file_open(&fc, &be), 0);
	assert_int_equal(scsi_disk_new(NULL, &be, &d), 0);
	assert_int_equal(storvsp_add_disk(s->sv, 0, d), 0);
	sf_init(s, NULL);
	uint64_t base = sf_alloc(s, w->io_bytes / 4096 * w->depth);
	uint64_t seq = 0, rng = 1, ios = 0;
	double t0 = now(), c0 = cpu(), end = t0 + seconds;
	for (uint32_t i = 0; i < w->depth; i++)
		submit_vsp(s, w, base, i, next_offset(w, &seq, &rng));
	uint32_t inflight = w->depth;
	while (inflight) {
		struct vstor_packet r;
		uint64_t id;
		if (!sf_poll(s, 0, &r, NULL, &id))
			continue;
		assert_int_equal(r.vm_srb.srb_status, SRB_STATUS_SUCCESS);
		ios++;
		inflight--;
		if (now() < end) {
			submit_vsp(s, w, base, (uint32_t)id - 1, next_offset(w, &seq, &rng));
			inflight++;
		}
	}
	report("storvsp", w, ios, now() - t0, cpu() - c0);
	struct storvsp_stats st = sf_stats(s);
	printf("  (storvsp: %llu completions waited for ring space, %llu throttles)\n",
	       (unsigned long long)st.ring_full, (unsigned long long)st.throttled);
	sf_free(s);
}

static void bench(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
		printf("%s:\n", workloads[i].name);
		run_direct(&workloads[i]);
		run_vsp(&workloads[i]);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1)
		seconds = atof(argv[1]);
	snprintf(img, sizeof(img), "%s/hvkit-bench-XXXXXX", argc > 2 ? argv[2] : "/dev/shm");
	int fd = mkstemp(img);
	if (fd < 0 || ftruncate(fd, (off_t)IMG_BYTES)) {
		perror(img);
		return 1;
	}
	/* Allocate it, so reads hit data rather than holes. */
	static uint8_t chunk[1 << 20];
	memset(chunk, 0xa5, sizeof(chunk));
	for (uint64_t off = 0; off < IMG_BYTES; off += sizeof(chunk))
		if (pwrite(fd, chunk, sizeof(chunk), (off_t)off) != (ssize_t)sizeof(chunk)) {
			perror(img);
			return 1;
		}
	close(fd);
	printf("storvsp-bench: %s, %.1f s per workload\n", img, seconds);
	const struct CMUnitTest tests[] = {cmocka_unit_test(bench)};
	int err = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(img);
	return err;
}
