/* SPDX-License-Identifier: MIT */
/*
 * The raw-image backend through the SCSI target: data lands at the right
 * file offsets, discard punches holes that read back as zeros, read-only
 * images refuse writes, O_DIRECT works where the file system allows it,
 * and odd images are refused or truncated to whole blocks.
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

static void run(struct scsi_disk *d, const uint8_t *cdb, uint32_t cdb_len, void *buf,
		uint32_t len, struct scsi_result *res)
{
	struct iovec v = {buf, len};
	struct scsi_data data = {&v, len ? 1 : 0, len};
	scsi_disk_execute(d, cdb, cdb_len, &data, res);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(write_read_flush),
		cmocka_unit_test(discard_punches_holes),
		cmocka_unit_test(read_only_image),
		cmocka_unit_test(direct_io),
		cmocka_unit_test(odd_images),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
