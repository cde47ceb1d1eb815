/* SPDX-License-Identifier: MIT */
/*
 * The SCSI target: every command Linux's sd sends, and every error with
 * its fixed-format sense, over the in-memory backend.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hvkit/proto/storvsc.h" /* compiled for its _Static_asserts */
#include "scsi_disk.h"

#define BS 512u
#define BLOCKS 2048u

struct t {
	struct scsi_disk *d;
	uint8_t *img;
	uint8_t buf[1 << 16];
	struct scsi_result res;
};

static struct t *mk(bool read_only)
{
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	struct storage_backend be;
	assert_int_equal(storage_backend_mem_new((uint64_t)BLOCKS * BS, BS, read_only, &be), 0);
	t->img = storage_backend_mem_data(&be);
	struct scsi_disk_config cfg = {.serial = "SER-1234", .max_transfer_bytes = 1 << 16};
	assert_int_equal(scsi_disk_new(&cfg, &be, &t->d), 0);
	return t;
}

static void rm(struct t *t)
{
	scsi_disk_free(t->d);
	free(t);
}

/* Runs cdb with len bytes of t->buf. */
static struct scsi_result *run(struct t *t, const uint8_t *cdb, uint32_t cdb_len, uint32_t len)
{
	struct iovec v = {t->buf, len};
	struct scsi_data data = {&v, len ? 1 : 0, len};
	scsi_disk_execute(t->d, cdb, cdb_len, &data, &t->res);
	return &t->res;
}

static void expect_good(const struct scsi_result *r)
{
	assert_int_equal(r->status, SCSI_STATUS_GOOD);
	assert_int_equal(r->sense_len, 0);
}

static void expect_sense(const struct scsi_result *r, uint8_t key, uint16_t asc)
{
	assert_int_equal(r->status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(r->sense_len, SCSI_SENSE_FIXED_LEN);
	assert_int_equal(r->sense[0], 0x70);
	assert_int_equal(r->sense[7], 10);
	assert_int_equal(r->sense[2] & 0xf, key);
	assert_int_equal(r->sense[12], asc >> 8);
	assert_int_equal(r->sense[13], asc & 0xff);
	assert_int_equal(r->transferred, 0);
}

static void test_tur_and_request_sense(void **state)
{
	(void)state;
	struct t *t = mk(false);
	uint8_t tur[6] = {SCSI_TEST_UNIT_READY};
	expect_good(run(t, tur, 6, 0));
	tur[5] = 0x01; /* LINK */
	expect_sense(run(t, tur, 6, 0), SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	uint8_t rs[6] = {SCSI_REQUEST_SENSE, 0, 0, 0, 252, 0};
	expect_good(run(t, rs, 6, 252));
	assert_int_equal(t->res.transferred, 18);
	assert_int_equal(t->buf[0], 0x70);
	assert_int_equal(t->buf[2], SCSI_SENSE_NO_SENSE);
	rs[4] = 8; /* allocation length truncates */
	expect_good(run(t, rs, 6, 252));
	assert_int_equal(t->res.transferred, 8);
	rm(t);
}

static void test_inquiry_standard(void **state)
{
	(void)state;
	struct t *t = mk(false);
	uint8_t cdb[6] = {SCSI_INQUIRY, 0, 0, 0, 96, 0};
	expect_good(run(t, cdb, 6, 96));
	assert_int_equal(t->res.transferred, 96);
	assert_int_equal(t->buf[0], SCSI_TYPE_DISK);
	assert_int_equal(t->buf[2], SCSI_VERSION_SPC4);
	assert_int_equal(t->buf[3] & 0xf, 2);
	assert_int_equal(t->buf[4], 91);
	assert_memory_equal(t->buf + 8, "hvkit   ", 8);
	/* Allocation length 36, as the SCSI midlayer first asks. */
	cdb[4] = 36;
	expect_good(run(t, cdb, 6, 36));
	assert_int_equal(t->res.transferred, 36);
	/* A page code without EVPD, and CmdDt. */
	cdb[2] = 0x80;
	expect_sense(run(t, cdb, 6, 96), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);
	cdb[2] = 0;
	cdb[1] = 0x02;
	expect_sense(run(t, cdb, 6, 96), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);
	rm(t);
}

static uint32_t vpd(struct t *t, uint8_t page)
{
	uint8_t cdb[6] = {SCSI_INQUIRY, 1, page, 1, 0, 0};
	expect_good(run(t, cdb, 6, 256));
	assert_int_equal(t->buf[1], page);
	return scsi_get_be16(t->buf + 2);
}

static void test_inquiry_vpd(void **state)
{
	(void)state;
	struct t *t = mk(false);
	uint32_t n = vpd(t, SCSI_VPD_SUPPORTED_PAGES);
	const uint8_t want[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(t->buf + 4, want, sizeof(want));

	n = vpd(t, SCSI_VPD_UNIT_SERIAL);
	assert_int_equal(n, 8);
	assert_memory_equal(t->buf + 4, "SER-1234", 8);

	n = vpd(t, SCSI_VPD_DEVICE_ID);
	assert_int_equal(n, 4 + 16);
	assert_int_equal(t->buf[5] & 0xf, 1); /* T10 vendor ID */
	assert_memory_equal(t->buf + 16, "SER-1234", 8);

	n = vpd(t, SCSI_VPD_BLOCK_LIMITS);
	assert_int_equal(n, 0x3c);
	assert_int_equal(scsi_get_be32(t->buf + 8), (1u << 16) / BS);
	assert_true(scsi_get_be32(t->buf + 20) > 0); /* max unmap LBA count */
	assert_true(scsi_get_be32(t->buf + 24) > 0);

	n = vpd(t, SCSI_VPD_BLOCK_DEV_CHARS);
	assert_int_equal(scsi_get_be16(t->buf + 4), 1);

	n = vpd(t, SCSI_VPD_LOGICAL_BLOCK_PROV);
	assert_int_equal(n, 4);
	assert_int_equal(t->buf[5] & 0xc0, 0xc0); /* LBPU, LBPWS */

	uint8_t bad[6] = {SCSI_INQUIRY, 1, 0x89, 1, 0, 0};
	expect_sense(run(t, bad, 6, 256), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);
	rm(t);
}

static void test_read_capacity(void **state)
{
	(void)state;
	struct t *t = mk(false);
	uint8_t rc10[10] = {SCSI_READ_CAPACITY_10};
	expect_good(run(t, rc10, 10, 8));
	assert_int_equal(scsi_get_be32(t->buf), BLOCKS - 1);
	assert_int_equal(scsi_get_be32(t->buf + 4), BS);
	rc10[8] = 1; /* PMI */
	expect_sense(run(t, rc10, 10, 8), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);

	uint8_t rc16[16] = {SCSI_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16};
	scsi_put_be32(rc16 + 10, 32);
	expect_good(run(t, rc16, 16, 32));
	assert_int_equal(t->res.transferred, 32);
	assert_int_equal(scsi_get_be64(t->buf), BLOCKS - 1);
	assert_int_equal(scsi_get_be32(t->buf + 8), BS);
	assert_int_equal(t->buf[14] & 0xc0, 0xc0); /* LBPME, LBPRZ */
	rc16[1] = 0x11; /* another service action */
	expect_sense(run(t, rc16, 16, 32), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);
	rm(t);
}

static void fill(uint8_t *p, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* Writes then reads back 2 blocks at lba with each CDB size. */
static void rw_cdbs(uint8_t *w, uint8_t *r, uint32_t *len, uint8_t size, uint64_t lba,
		    uint32_t blocks, bool fua)
{
	memset(w, 0, 16);
	memset(r, 0, 16);
	switch (size) {
	case 6:
		w[0] = SCSI_WRITE_6;
		r[0] = SCSI_READ_6;
		w[1] = r[1] = (uint8_t)(lba >> 16);
		scsi_put_be16(w + 2, (uint16_t)lba);
		scsi_put_be16(r + 2, (uint16_t)lba);
		w[4] = r[4] = (uint8_t)blocks;
		break;
	case 10:
		w[0] = SCSI_WRITE_10;
		r[0] = SCSI_READ_10;
		scsi_put_be32(w + 2, (uint32_t)lba);
		scsi_put_be32(r + 2, (uint32_t)lba);
		scsi_put_be16(w + 7, (uint16_t)blocks);
		scsi_put_be16(r + 7, (uint16_t)blocks);
		break;
	case 12:
		w[0] = SCSI_WRITE_12;
		r[0] = SCSI_READ_12;
		scsi_put_be32(w + 2, (uint32_t)lba);
		scsi_put_be32(r + 2, (uint32_t)lba);
		scsi_put_be32(w + 6, blocks);
		scsi_put_be32(r + 6, blocks);
		break;
	default:
		w[0] = SCSI_WRITE_16;
		r[0] = SCSI_READ_16;
		scsi_put_be64(w + 2, lba);
		scsi_put_be64(r + 2, lba);
		scsi_put_be32(w + 10, blocks);
		scsi_put_be32(r + 10, blocks);
	}
	if (fua && size != 6)
		w[1] |= 0x08;
	*len = size;
}

static void test_read_write_all_sizes(void **state)
{
	(void)state;
	struct t *t = mk(false);
	const uint8_t sizes[] = {6, 10, 12, 16};
	for (size_t i = 0; i < 4; i++) {
		uint8_t w[16], r[16];
		uint32_t cl;
		uint64_t lba = 10 + i * 5;
		rw_cdbs(w, r, &cl, sizes[i], lba, 2, i & 1);
		fill(t->buf, 2 * BS, (uint8_t)i);
		expect_good(run(t, w, cl, 2 * BS));
		assert_int_equal(t->res.transferred, 2 * BS);
		assert_memory_equal(t->img + lba * BS, t->buf, 2 * BS);
		memset(t->buf, 0xee, 2 * BS);
		expect_good(run(t, r, cl, 2 * BS));
		assert_memory_equal(t->img + lba * BS, t->buf, 2 * BS);
	}
	/* A buffer larger than the transfer: only the transfer moves. */
	uint8_t w[16], r[16];
	uint32_t cl;
	rw_cdbs(w, r, &cl, 10, 100, 1, false);
	memset(t->buf, 0x5a, 3 * BS);
	expect_good(run(t, w, cl, 3 * BS));
	assert_int_equal(t->res.transferred, BS);
	assert_int_equal(t->img[101 * BS], 0);
	/* Zero blocks: nothing happens, GOOD. */
	rw_cdbs(w, r, &cl, 10, 0, 0, false);
	expect_good(run(t, w, cl, 0));
	rm(t);
}

static void test_read_write_scattered(void **state)
{
	(void)state;
	struct t *t = mk(false);
	uint8_t a[700], b[324];
	fill(a, sizeof(a), 1);
	fill(b, sizeof(b), 2);
	struct iovec v[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct scsi_data data = {v, 2, 1024};
	uint8_t w[16], r[16];
	uint32_t cl;
	rw_cdbs(w, r, &cl, 16, 7, 2, false);
	scsi_disk_execute(t->d, w, cl, &data, &t->res);
	expect_good(&t->res);
	assert_memory_equal(t->img + 7 * BS, a, sizeof(a));
	assert_memory_equal(t->img + 7 * BS + sizeof(a), b, sizeof(b));
	rm(t);
}

static void test_rw_errors(void **state)
{
	(void)state;
	struct t *t = mk(false);
	uint8_t w[16], r[16];
	uint32_t cl;
	/* Past the end, and wrapping. */
	rw_cdbs(w, r, &cl, 10, BLOCKS - 1, 2, false);
	expect_sense(run(t, r, cl, 2 * BS), SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	rw_cdbs(w, r, &cl, 16, UINT64_MAX, 2, false);
	expect_sense(run(t, w, cl, 2 * BS), SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	/* Transfer length larger than the buffer. */
	rw_cdbs(w, r, &cl, 10, 0, 4, false);
	expect_sense(run(t, r, cl, 3 * BS), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* Over the maximum transfer length (64 KiB here). */
	rw_cdbs(w, r, &cl, 12, 0, 129, false);
	expect_sense(run(t, r, cl, sizeof(t->buf)), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* RDPROTECT; a CDB shorter than its opcode. */
	rw_cdbs(w, r, &cl, 10, 0, 1, false);
	r[1] = 0x20;
	expect_sense(run(t, r, cl, BS), SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	r[1] = 0;
	expect_sense(run(t, r, 6, BS), SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* The disk is still usable. */
	expect_good(run(t, r, cl, BS));
	rm(t);
}

static void test_read_only(void **state)
{
	(void)state;
	struct t *t = mk(true);
	uint8_t w[16], r[16];
	uint32_t cl;
	rw_cdbs(w, r, &cl, 10, 0, 1, false);
	expect_sense(run(t, w, cl, BS), SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	expect_good(run(t, r, cl, BS));
	uint8_t ms[6] = {SCSI_MODE_SENSE_6, 0, SCSI_MODE_PAGE_ALL, 0, 255, 0};
	expect_good(run(t, ms, 6, 255));
	assert_int_equal(t->buf[2] & SCSI_MODE_DSP_WP, SCSI_MODE_DSP_WP);
	uint8_t ws[16] = {SCSI_WRITE_SAME_16, 0x09};
	scsi_put_be32(ws + 10, 1);
	expect_sense(run(t, ws, 16, 0), SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	rm(t);
}

static void test_sync_cache(void **state)
{
	(void)state;
	struct t *t = mk(false);
	uint8_t s10[10] = {SCSI_SYNCHRONIZE_CACHE_10};
	expect_good(run(t, s10, 10, 0));
	s10[1] = 0x02; /* IMMED */
	expect_good(run(t, s10, 10, 0));
	uint8_t s16[16] = {SCSI_SYNCHRONIZE_CACHE_16};
	scsi_put_be64(s16 + 2, BLOCKS - 1);
	scsi_put_be32(s16 + 10, 1);
	expect_good(run(t, s16, 16, 0));
	scsi_put_be32(s16 + 10, 2);
	expect_sense(run(t, s16, 16, 0), SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	rm(t);
}

static uint32_t unmap_params(uint8_t *p, const uint64_t *lba, const uint32_t *n, uint32_t count)
{
	memset(p, 0, 8 + 16 * count);
	scsi_put_be16(p, (uint16_t)(6 + 16 * count));
	scsi_put_be16(p + 2, (uint16_t)(16 * count));
	for (uint32_t i = 0; i < count; i++) {
		scsi_put_be64(p + 8 + 16 * i, lba[i]);
		scsi_put_be32(p + 16 + 16 * i, n[i]);
	}
	return 8 + 16 * count;
}

static void test_unmap(void **state)
{
	(void)state;
	struct t *t = mk(false);
	memset(t->img, 0xab, 64 * BS);
	uint64_t lba[2] = {2, 10};
	uint32_t n[2] = {3, 1};
	uint32_t plen = unmap_params(t->buf, lba, n, 2);
	uint8_t cdb[10] = {SCSI_UNMAP};
	scsi_put_be16(cdb + 7, (uint16_t)plen);
	expect_good(run(t, cdb, 10, plen));
	for (uint32_t b = 0; b < 12; b++) {
		bool gone = (b >= 2 && b < 5) || b == 10;
		assert_int_equal(t->img[b * BS + 17], gone ? 0 : 0xab);
	}
	/* One bad descriptor: nothing is unmapped. */
	uint64_t lba2[2] = {20, BLOCKS};
	plen = unmap_params(t->buf, lba2, n, 2);
	expect_sense(run(t, cdb, 10, plen), SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	assert_int_equal(t->img[20 * BS], 0xab);
	/* Short parameter list; parameter length over the buffer. */
	scsi_put_be16(cdb + 7, 4);
	expect_sense(run(t, cdb, 10, 4), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_PARAMETER_LIST_LENGTH);
	scsi_put_be16(cdb + 7, 24);
	expect_sense(run(t, cdb, 10, 8), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);
	/* Block descriptor length not a multiple of 16. */
	plen = unmap_params(t->buf, lba, n, 1);
	scsi_put_be16(t->buf + 2, 15);
	scsi_put_be16(cdb + 7, (uint16_t)plen);
	expect_sense(run(t, cdb, 10, plen), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_PARAM);
	rm(t);
}

static void test_write_same(void **state)
{
	(void)state;
	struct t *t = mk(false);
	uint8_t cdb[16] = {SCSI_WRITE_SAME_16, 0};
	scsi_put_be64(cdb + 2, 30);
	scsi_put_be32(cdb + 10, 4);
	fill(t->buf, BS, 9);
	expect_good(run(t, cdb, 16, BS));
	for (uint32_t b = 30; b < 34; b++)
		assert_memory_equal(t->img + b * BS, t->buf, BS);
	assert_int_equal(t->img[34 * BS], 0);
	/* With UNMAP and a zero block: the range reads zero. */
	cdb[1] = 0x08;
	memset(t->buf, 0, BS);
	expect_good(run(t, cdb, 16, BS));
	for (uint32_t b = 30; b < 34; b++)
		assert_int_equal(t->img[b * BS + 5], 0);
	/* NDOB with UNMAP; NDOB alone is refused; zero blocks refused. */
	memset(t->img + 30 * BS, 1, 4 * BS);
	cdb[1] = 0x09;
	expect_good(run(t, cdb, 16, 0));
	assert_int_equal(t->img[31 * BS], 0);
	cdb[1] = 0x01;
	expect_sense(run(t, cdb, 16, 0), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);
	cdb[1] = 0;
	scsi_put_be32(cdb + 10, 0);
	expect_sense(run(t, cdb, 16, BS), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);
	scsi_put_be64(cdb + 2, BLOCKS - 1);
	scsi_put_be32(cdb + 10, 2);
	expect_sense(run(t, cdb, 16, BS), SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
	rm(t);
}

static void test_mode_sense(void **state)
{
	(void)state;
	struct t *t = mk(false);
	uint8_t ms6[6] = {SCSI_MODE_SENSE_6, 0x08, SCSI_MODE_PAGE_CACHING, 0, 255, 0};
	expect_good(run(t, ms6, 6, 255));
	assert_int_equal(t->res.transferred, 4 + 20);
	assert_int_equal(t->buf[0], 23);
	assert_int_equal(t->buf[3], 0); /* no block descriptors */
	assert_int_equal(t->buf[4], SCSI_MODE_PAGE_CACHING);
	assert_int_equal(t->buf[6] & 0x04, 0x04); /* WCE */
	assert_int_equal(t->buf[2] & SCSI_MODE_DSP_WP, 0);

	uint8_t ms10[10] = {SCSI_MODE_SENSE_10, 0, SCSI_MODE_PAGE_ALL};
	scsi_put_be16(ms10 + 7, 512);
	expect_good(run(t, ms10, 10, 512));
	assert_int_equal(t->res.transferred, 8 + 20 + 12);
	assert_int_equal(scsi_get_be16(t->buf), 8 + 20 + 12 - 2);
	assert_int_equal(t->buf[8], SCSI_MODE_PAGE_CACHING);
	assert_int_equal(t->buf[28], SCSI_MODE_PAGE_CONTROL);

	/* The control page alone; changeable values are all zero. */
	ms6[2] = (SCSI_MODE_PC_CHANGEABLE << 6) | SCSI_MODE_PAGE_CONTROL;
	expect_good(run(t, ms6, 6, 255));
	assert_int_equal(t->buf[4], SCSI_MODE_PAGE_CONTROL);
	assert_int_equal(t->buf[6], 0);
	/* Saved values; an unknown page; a truncated reply. */
	ms6[2] = (SCSI_MODE_PC_SAVED << 6) | SCSI_MODE_PAGE_CACHING;
	expect_sense(run(t, ms6, 6, 255), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_SAVING_NOT_SUPPORTED);
	ms6[2] = 0x1c;
	expect_sense(run(t, ms6, 6, 255), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);
	ms6[2] = SCSI_MODE_PAGE_ALL;
	ms6[4] = 4;
	expect_good(run(t, ms6, 6, 255));
	assert_int_equal(t->res.transferred, 4);
	rm(t);
}

static void test_report_luns(void **state)
{
	(void)state;
	struct t *t = mk(false);
	const uint16_t luns[3] = {0, 1, 5};
	uint8_t cdb[12] = {SCSI_REPORT_LUNS};
	scsi_put_be32(cdb + 6, 256);
	struct iovec v = {t->buf, 256};
	struct scsi_data data = {&v, 1, 256};
	scsi_report_luns(cdb, 12, luns, 3, &data, &t->res);
	expect_good(&t->res);
	assert_int_equal(t->res.transferred, 8 + 24);
	assert_int_equal(scsi_get_be32(t->buf), 24);
	assert_int_equal(t->buf[8 + 8 + 1], 1);
	assert_int_equal(t->buf[8 + 16 + 1], 5);
	scsi_put_be32(cdb + 6, 16); /* truncated to one entry */
	scsi_report_luns(cdb, 12, luns, 3, &data, &t->res);
	expect_good(&t->res);
	assert_int_equal(t->res.transferred, 16);
	assert_int_equal(scsi_get_be32(t->buf), 24);
	scsi_put_be32(cdb + 6, 8); /* under the minimum */
	scsi_report_luns(cdb, 12, luns, 3, &data, &t->res);
	expect_sense(&t->res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	rm(t);
}

static void test_inquiry_absent(void **state)
{
	(void)state;
	struct t *t = mk(false);
	uint8_t cdb[6] = {SCSI_INQUIRY, 0, 0, 0, 96, 0};
	struct iovec v = {t->buf, 96};
	struct scsi_data data = {&v, 1, 96};
	scsi_inquiry_absent(cdb, 6, &data, &t->res);
	expect_good(&t->res);
	assert_int_equal(t->res.transferred, 36);
	assert_int_equal(t->buf[0], SCSI_PQ_NOT_CONNECTED);
	cdb[1] = 1;
	scsi_inquiry_absent(cdb, 6, &data, &t->res);
	expect_sense(&t->res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED);
	rm(t);
}

static void test_start_stop_and_unknown(void **state)
{
	(void)state;
	struct t *t = mk(false);
	uint8_t ss[6] = {SCSI_START_STOP_UNIT, 0, 0, 0, 0x01, 0};
	expect_good(run(t, ss, 6, 0));
	ss[4] = 0x00;
	expect_good(run(t, ss, 6, 0));
	ss[4] = 0x02; /* LOEJ */
	expect_sense(run(t, ss, 6, 0), SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
	uint8_t unknown[10] = {0x2e}; /* WRITE AND VERIFY 10 */
	expect_sense(run(t, unknown, 10, 0), SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	uint8_t vendor[6] = {0xc0};
	expect_sense(run(t, vendor, 6, 0), SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
	expect_sense(run(t, vendor, 0, 0), SCSI_SENSE_ILLEGAL_REQUEST,
		     SCSI_ASC_INVALID_FIELD_IN_CDB);
	rm(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tur_and_request_sense),
		cmocka_unit_test(test_inquiry_standard),
		cmocka_unit_test(test_inquiry_vpd),
		cmocka_unit_test(test_read_capacity),
		cmocka_unit_test(test_read_write_all_sizes),
		cmocka_unit_test(test_read_write_scattered),
		cmocka_unit_test(test_rw_errors),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_sync_cache),
		cmocka_unit_test(test_unmap),
		cmocka_unit_test(test_write_same),
		cmocka_unit_test(test_mode_sense),
		cmocka_unit_test(test_report_luns),
		cmocka_unit_test(test_inquiry_absent),
		cmocka_unit_test(test_start_stop_and_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
