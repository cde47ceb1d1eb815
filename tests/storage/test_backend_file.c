/* SPDX-License-Identifier: MIT */
/*
 * The raw-image backend through the SCSI target: data lands at the right
 * file offsets, discard punches holes that read back as zeros, read-only
 * images refuse writes, O_DIRECT works where the file system allows it,
 * and odd images are refused or truncated to whole blocks. Each of those
 * runs twice: synchronously (scsi_disk_execute, as aio=threads does) and
 * through an io_uring (scsi_disk_start, storage_ring, scsi_disk_finish, as
 * the storvsp workers do). Then the ring itself: many requests in flight
 * at once, short transfers finished by resubmission, a read past the end
 * of the file, errors turned into sense data.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "scsi_disk.h"

#define IMG_BYTES (4u << 20)

static char *make_image(uint64_t bytes)
{
	char *path = strdup("/tmp/hvkit-backend-XXXXXX");
	assert_non_null(path);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)bytes), 0);
	close(fd);
	return path;
}

static void file_read(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static struct scsi_disk *open_disk(const char *path, bool ro, bool direct, int *err)
{
	struct storage_file_config fc = {.path = path, .read_only = ro, .direct = direct};
	struct storage_backend be;
	*err = storage_backend_file_open(&fc, &be);
	if (*err)
		return NULL;
	struct scsi_disk *d;
	assert_int_equal(scsi_disk_new(NULL, &be, &d), 0);
	return d;
}

/* Set by the io_uring runs' setup: run() then goes through the ring. */
static struct storage_ring *test_ring;

static int ring_setup(void **state)
{
	(void)state;
	return storage_ring_new(32, &test_ring);
}

static int ring_teardown(void **state)
{
	(void)state;
	storage_ring_free(test_ring);
	test_ring = NULL;
	return 0;
}

struct done_rec {
	int calls, err;
};

static struct done_rec *rec_of(struct storage_aio *a);

static void record_done(struct storage_aio *a, int err)
{
	struct done_rec *r = rec_of(a);
	r->calls++;
	r->err = err;
}

/* A request and what its callback saw. */
struct tio {
	struct scsi_io io;
	struct done_rec rec;
};

static struct done_rec *rec_of(struct storage_aio *a)
{
	return &((struct tio *)((char *)a - offsetof(struct tio, io.aio)))->rec;
}

/* Reaps until every one of n records has been called. */
static void reap_all(struct tio *t, int n)
{
	for (int guard = 0; guard < 100000; guard++) {
		int left = 0;
		for (int i = 0; i < n; i++)
			left += t[i].rec.calls == 0;
		if (!left)
			break;
		storage_ring_reap(test_ring, true);
	}
	for (int i = 0; i < n; i++)
		assert_int_equal(t[i].rec.calls, 1); /* exactly once */
}

/* Queues n requests, submits them at once and reaps them all. */
static void run_aio(struct tio *t, int n)
{
	for (int i = 0; i < n; i++) {
		t[i].io.aio.done = record_done;
		assert_int_equal(storage_ring_queue(test_ring, &t[i].io.aio), 0);
	}
	assert_int_equal(storage_ring_submit(test_ring), 0);
	reap_all(t, n);
}

static void run(struct scsi_disk *d, const uint8_t *cdb, uint32_t cdb_len, void *buf,
		uint32_t len, struct scsi_result *res)
{
	struct iovec v = {buf, len};
	struct scsi_data data = {&v, len ? 1 : 0, len};
	struct tio t = {0};
	if (!test_ring || !scsi_disk_start(d, cdb, cdb_len, &data, res, &t.io)) {
		if (!test_ring)
			scsi_disk_execute(d, cdb, cdb_len, &data, res);
		return;
	}
	run_aio(&t, 1);
	scsi_disk_finish(d, &t.io, t.rec.err, res);
}

static void rw16(uint8_t *cdb, uint8_t op, uint64_t lba, uint32_t blocks)
{
	memset(cdb, 0, 16);
	cdb[0] = op;
	scsi_put_be64(cdb + 2, lba);
	scsi_put_be32(cdb + 10, blocks);
}

static void write_read_flush(void **state)
{
	(void)state;
	char *path = make_image(IMG_BYTES);
	int err;
	struct scsi_disk *d = open_disk(path, false, false, &err);
	assert_non_null(d);
	static uint8_t buf[65536] __attribute__((aligned(4096)));
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	uint8_t cdb[16];
	struct scsi_result res;
	rw16(cdb, SCSI_WRITE_16, 1000, 128);
	cdb[1] = 0x08; /* FUA */
	run(d, cdb, 16, buf, sizeof(buf), &res);
	assert_int_equal(res.status, SCSI_STATUS_GOOD);
	uint8_t sync[10] = {SCSI_SYNCHRONIZE_CACHE_10};
	run(d, sync, 10, NULL, 0, &res);
	assert_int_equal(res.status, SCSI_STATUS_GOOD);
	static uint8_t got[65536];
	file_read(path, 1000 * 512, got, sizeof(got));
	assert_memory_equal(got, buf, sizeof(got));
	memset(got, 0, sizeof(got));
	rw16(cdb, SCSI_READ_16, 1000, 128);
	run(d, cdb, 16, got, sizeof(got), &res);
	assert_int_equal(res.status, SCSI_STATUS_GOOD);
	assert_memory_equal(got, buf, sizeof(got));
	/* The last block, and one past it. */
	rw16(cdb, SCSI_READ_16, IMG_BYTES / 512 - 1, 1);
	run(d, cdb, 16, got, 512, &res);
	assert_int_equal(res.status, SCSI_STATUS_GOOD);
	rw16(cdb, SCSI_READ_16, IMG_BYTES / 512, 1);
	run(d, cdb, 16, got, 512, &res);
	assert_int_equal(res.status, SCSI_STATUS_CHECK_CONDITION);
	scsi_disk_free(d);
	unlink(path);
	free(path);
}

static void discard_punches_holes(void **state)
{
	(void)state;
	char *path = make_image(IMG_BYTES);
	int err;
	struct scsi_disk *d = open_disk(path, false, false, &err);
	assert_non_null(d);
	static uint8_t buf[1 << 20];
	memset(buf, 0x77, sizeof(buf));
	uint8_t cdb[16];
	struct scsi_result res;
	rw16(cdb, SCSI_WRITE_16, 0, sizeof(buf) / 512);
	run(d, cdb, 16, buf, sizeof(buf), &res);
	assert_int_equal(res.status, SCSI_STATUS_GOOD);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	blkcnt_t before = st.st_blocks;

	uint8_t param[24] = {0};
	scsi_put_be16(param, 22);
	scsi_put_be16(param + 2, 16);
	scsi_put_be64(param + 8, 0);
	scsi_put_be32(param + 16, 1024); /* the first 512 KiB */
	uint8_t unmap[10] = {SCSI_UNMAP};
	scsi_put_be16(unmap + 7, sizeof(param));
	run(d, unmap, 10, param, sizeof(param), &res);
	assert_int_equal(res.status, SCSI_STATUS_GOOD);
	uint8_t got[4096];
	file_read(path, 0, got, sizeof(got));
	for (size_t i = 0; i < sizeof(got); i++)
		assert_int_equal(got[i], 0);
	file_read(path, 1024 * 512, got, sizeof(got));
	assert_int_equal(got[0], 0x77);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, IMG_BYTES); /* the size is kept */
	assert_true(st.st_blocks <= before);
	scsi_disk_free(d);
	unlink(path);
	free(path);
}

static void read_only_image(void **state)
{
	(void)state;
	char *path = make_image(IMG_BYTES);
	int err;
	struct scsi_disk *d = open_disk(path, true, false, &err);
	assert_non_null(d);
	uint8_t buf[512] = {1};
	uint8_t cdb[16];
	struct scsi_result res;
	rw16(cdb, SCSI_WRITE_16, 0, 1);
	run(d, cdb, 16, buf, 512, &res);
	assert_int_equal(res.status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(res.sense[2], SCSI_SENSE_DATA_PROTECT);
	rw16(cdb, SCSI_READ_16, 0, 1);
	run(d, cdb, 16, buf, 512, &res);
	assert_int_equal(res.status, SCSI_STATUS_GOOD);
	scsi_disk_free(d);
	unlink(path);
	free(path);
}

static void direct_io(void **state)
{
	(void)state;
	char *path = make_image(IMG_BYTES);
	int err;
	struct scsi_disk *d = open_disk(path, false, true, &err);
	if (!d) {
		/* tmpfs has no O_DIRECT. */
		assert_int_equal(err, -EINVAL);
		unlink(path);
		free(path);
		skip();
	}
	static uint8_t buf[8192] __attribute__((aligned(4096)));
	memset(buf, 0x3c, sizeof(buf));
	uint8_t cdb[16];
	struct scsi_result res;
	rw16(cdb, SCSI_WRITE_16, 8, 16);
	run(d, cdb, 16, buf, sizeof(buf), &res);
	assert_int_equal(res.status, SCSI_STATUS_GOOD);
	uint8_t got[8192];
	file_read(path, 8 * 512, got, sizeof(got));
	assert_memory_equal(got, buf, sizeof(got));
	scsi_disk_free(d);
	unlink(path);
	free(path);
}

static void odd_images(void **state)
{
	(void)state;
	int err;
	assert_null(open_disk("/nonexistent/hvkit.img", false, false, &err));
	assert_int_equal(err, -ENOENT);
	char *path = make_image(100); /* under one block */
	assert_null(open_disk(path, false, false, &err));
	assert_int_equal(err, -EINVAL);
	unlink(path);
	free(path);
	/* A partial last block is not addressable. */
	path = make_image(4096 + 100);
	struct storage_file_config fc = {.path = path};
	struct storage_backend be;
	assert_int_equal(storage_backend_file_open(&fc, &be), 0);
	assert_int_equal(be.size, 4096);
	storage_backend_close(&be);
	unlink(path);
	free(path);
}

/* ---- the ring itself ---- */

static int open_image(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* The ring's whole depth in flight at once, each a two-piece iovec, then
 * read back the same way: every byte where it belongs. */
static void ring_queue_depth(void **state)
{
	(void)state;
	enum { N = 32, BS = 4096 };
	char *path = make_image(IMG_BYTES);
	int fd = open_image(path, O_RDWR);
	static uint8_t wbuf[N][BS], rbuf[N][BS];
	static struct iovec wv[N][2], rv[N][2];
	static struct tio t[N];
	memset(t, 0, sizeof(t));
	for (int i = 0; i < N; i++) {
		memset(wbuf[i], 0x40 + i, BS);
		wbuf[i][0] = (uint8_t)i;
		wv[i][0] = (struct iovec){wbuf[i], 512};
		wv[i][1] = (struct iovec){wbuf[i] + 512, BS - 512};
		t[i].io.aio = (struct storage_aio){.op = STORAGE_AIO_WRITE, .fd = fd, .iov = wv[i],
						  .iovcnt = 2, .offset = (uint64_t)(N - i) * 3 * BS,
						  .len = BS, .done = record_done, .fua = i & 1};
		assert_int_equal(storage_ring_queue(test_ring, &t[i].io.aio), 0);
	}
	/* Full: the ring refuses more until something completes. */
	struct tio extra = {0};
	extra.io.aio = (struct storage_aio){.op = STORAGE_AIO_FLUSH, .fd = fd, .done = record_done};
	assert_int_equal(storage_ring_queue(test_ring, &extra.io.aio), -EBUSY);
	assert_int_equal(storage_ring_inflight(test_ring), N);
	assert_int_equal(storage_ring_submit(test_ring), 0);
	reap_all(t, N);
	assert_int_equal(storage_ring_inflight(test_ring), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(t[i].rec.err, 0);
		uint8_t got[BS];
		file_read(path, (uint64_t)(N - i) * 3 * BS, got, BS);
		assert_memory_equal(got, wbuf[i], BS);
	}
	memset(t, 0, sizeof(t));
	for (int i = 0; i < N; i++) {
		rv[i][0] = (struct iovec){rbuf[i], BS - 1024};
		rv[i][1] = (struct iovec){rbuf[i] + BS - 1024, 1024};
		t[i].io.aio = (struct storage_aio){.op = STORAGE_AIO_READ, .fd = fd, .iov = rv[i],
						  .iovcnt = 2, .offset = (uint64_t)(N - i) * 3 * BS,
						  .len = BS, .done = record_done};
		assert_int_equal(storage_ring_queue(test_ring, &t[i].io.aio), 0);
	}
	assert_int_equal(storage_ring_submit(test_ring), 0);
	reap_all(t, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(t[i].rec.err, 0);
		assert_memory_equal(rbuf[i], wbuf[i], BS);
	}
	close(fd);
	unlink(path);
	free(path);
}

/* A pipe may give what has been written so far: the rest of the read
 * goes again, into the right place of the right iovec piece. */
static void ring_short_read_resubmits(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	uint8_t want[6000], got[6000] = {0};
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(i * 7 + 1);
	struct iovec v[3] = {{got, 1000}, {got + 1000, 3000}, {got + 4000, 2000}};
	struct tio t = {0};
	t.io.aio = (struct storage_aio){.op = STORAGE_AIO_READ, .fd = p[0], .iov = v, .iovcnt = 3,
				       .len = sizeof(got), .done = record_done};
	assert_int_equal(write(p[1], want, 2500), 2500);
	assert_int_equal(storage_ring_queue(test_ring, &t.io.aio), 0);
	assert_int_equal(storage_ring_submit(test_ring), 0);
	/* The first 2500 bytes arrive; the read is queued again (some
	 * kernels wait in the pipe for the whole length instead). */
	for (int i = 0; i < 100; i++)
		storage_ring_reap(test_ring, false);
	assert_int_equal(t.rec.calls, 0);
	assert_int_equal(write(p[1], want + 2500, 3500), 3500);
	reap_all(&t, 1);
	assert_int_equal(t.rec.err, 0);
	assert_memory_equal(got, want, sizeof(want));
	assert_int_equal(v[1].iov_len, 3000); /* the caller's iovec is left alone */
	close(p[0]);
	close(p[1]);
}

/* Reading across the end of the file: the part before it moves, then
 * the rest finds nothing, an error (-EIO) and a READ ERROR for SCSI. */
static void ring_read_past_the_end(void **state)
{
	(void)state;
	char *path = make_image(8192);
	int fd = open_image(path, O_RDWR);
	static uint8_t buf[8192];
	memset(buf, 0xee, 4096);
	assert_int_equal(pwrite(fd, buf, 4096, 4096), 4096);
	memset(buf, 0, sizeof(buf));
	struct iovec v = {buf, sizeof(buf)};
	struct tio t = {0};
	t.io.aio = (struct storage_aio){.op = STORAGE_AIO_READ, .fd = fd, .iov = &v, .iovcnt = 1,
				       .offset = 4096, .len = sizeof(buf), .done = record_done};
	run_aio(&t, 1);
	assert_int_equal(t.rec.err, -EIO);
	assert_int_equal(buf[4095], 0xee); /* the first, short, transfer */
	close(fd);
	unlink(path);
	free(path);
}

/* A write the kernel refuses (the descriptor is read-only) becomes a
 * MEDIUM ERROR with WRITE ERROR, and a flush and a discard through the
 * ring do what they say. */
static void ring_errors_flush_discard(void **state)
{
	(void)state;
	char *path = make_image(IMG_BYTES);
	int ro = open_image(path, O_RDONLY), rw = open_image(path, O_RDWR);
	static uint8_t buf[65536];
	memset(buf, 0x5e, sizeof(buf));
	struct iovec v = {buf, sizeof(buf)};
	struct tio t[4] = {0};
	t[0].io.aio = (struct storage_aio){.op = STORAGE_AIO_WRITE, .fd = ro, .iov = &v,
					  .iovcnt = 1, .len = sizeof(buf), .done = record_done};
	t[0].io.write = true;
	t[1].io.aio = (struct storage_aio){.op = STORAGE_AIO_WRITE, .fd = rw, .iov = &v,
					  .iovcnt = 1, .offset = 1 << 20, .len = sizeof(buf),
					  .done = record_done};
	t[2].io.aio = (struct storage_aio){.op = STORAGE_AIO_FLUSH, .fd = rw, .done = record_done};
	run_aio(t, 3);
	assert_int_equal(t[0].rec.err, -EBADF);
	assert_int_equal(t[1].rec.err, 0);
	assert_int_equal(t[2].rec.err, 0);
	struct scsi_result res;
	int err;
	struct scsi_disk *d = open_disk(path, false, false, &err);
	assert_non_null(d);
	scsi_disk_finish(d, &t[0].io, t[0].rec.err, &res);
	assert_int_equal(res.status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(res.sense[2], SCSI_SENSE_MEDIUM_ERROR);
	assert_int_equal(res.sense[12] << 8 | res.sense[13], SCSI_ASC_WRITE_ERROR);
	scsi_disk_free(d);
	/* Punch the middle 16 KiB of what was written. */
	t[3].io.aio = (struct storage_aio){.op = STORAGE_AIO_DISCARD, .fd = rw,
					  .offset = (1 << 20) + 16384, .len = 16384,
					  .done = record_done};
	run_aio(&t[3], 1);
	assert_int_equal(t[3].rec.err, 0);
	uint8_t got[65536];
	file_read(path, 1 << 20, got, sizeof(got));
	for (size_t i = 0; i < sizeof(got); i++)
		assert_int_equal(got[i], i >= 16384 && i < 32768 ? 0 : 0x5e);
	close(ro);
	close(rw);
	unlink(path);
	free(path);
}

/* What goes to the ring and what does not: checks run first, and an
 * aio=threads disk never offers its fd. */
static void start_only_checked_io(void **state)
{
	(void)state;
	char *path = make_image(IMG_BYTES);
	int err;
	uint8_t buf[512] = {0};
	struct iovec v = {buf, sizeof(buf)};
	struct scsi_data data = {&v, 1, sizeof(buf)};
	uint8_t cdb[16];
	struct scsi_result res;
	struct scsi_io io;
	struct scsi_disk *d = open_disk(path, true, false, &err);
	assert_non_null(d);
	rw16(cdb, SCSI_WRITE_16, 0, 1);
	assert_false(scsi_disk_start(d, cdb, 16, &data, &res, &io)); /* read-only */
	assert_int_equal(res.sense[2], SCSI_SENSE_DATA_PROTECT);
	rw16(cdb, SCSI_READ_16, IMG_BYTES / 512, 1);
	assert_false(scsi_disk_start(d, cdb, 16, &data, &res, &io)); /* out of range */
	assert_int_equal(res.sense[2], SCSI_SENSE_ILLEGAL_REQUEST);
	rw16(cdb, SCSI_READ_16, 3, 1);
	assert_true(scsi_disk_start(d, cdb, 16, &data, &res, &io));
	assert_int_equal(io.aio.op, STORAGE_AIO_READ);
	assert_int_equal(io.aio.offset, 3 * 512);
	assert_int_equal(io.aio.len, 512);
	scsi_disk_finish(d, &io, 0, &res);
	assert_int_equal(res.status, SCSI_STATUS_GOOD);
	assert_int_equal(res.transferred, 512);
	uint8_t inq[6] = {SCSI_INQUIRY, 0, 0, 0, 36, 0};
	assert_false(scsi_disk_start(d, inq, 6, &data, &res, &io));
	assert_int_equal(res.status, SCSI_STATUS_GOOD);
	scsi_disk_free(d);

	struct storage_file_config fc = {.path = path, .aio = STORAGE_AIO_THREADS};
	struct storage_backend be;
	assert_int_equal(storage_backend_file_open(&fc, &be), 0);
	assert_false(be.uring);
	assert_int_equal(scsi_disk_new(NULL, &be, &d), 0);
	assert_false(scsi_disk_start(d, cdb, 16, &data, &res, &io));
	assert_int_equal(res.status, SCSI_STATUS_GOOD);
	scsi_disk_free(d);
	enum storage_aio_mode m;
	assert_int_equal(storage_aio_mode_parse("io_uring", &m), 0);
	assert_int_equal(m, STORAGE_AIO_URING);
	assert_int_equal(storage_aio_mode_parse("aio", &m), -EINVAL);
	unlink(path);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(write_read_flush),
		cmocka_unit_test(discard_punches_holes),
		cmocka_unit_test(read_only_image),
		cmocka_unit_test(direct_io),
		cmocka_unit_test(odd_images),
#define RING_TEST(f) cmocka_unit_test_setup_teardown(f, ring_setup, ring_teardown)
		RING_TEST(write_read_flush),
		RING_TEST(discard_punches_holes),
		RING_TEST(read_only_image),
		RING_TEST(direct_io),
		RING_TEST(ring_queue_depth),
		RING_TEST(ring_read_past_the_end),
		RING_TEST(ring_short_read_resubmits),
		RING_TEST(ring_errors_flush_discard),
		cmocka_unit_test(start_only_checked_io),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
