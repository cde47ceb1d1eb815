/* SPDX-License-Identifier: MIT */
/*
 * storvsp against a scripted storvsc (storvsp_fixture.h): the init
 * sequence at every protocol version, data through GPA-direct packets
 * checked against the disk, sub-channels, SCSI errors with their sense,
 * a malicious guest, flow control, and durability across SIGKILL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hvkit/vmbus_classes.h"
#include "backend_powercut.h"
#include "storvsp_fixture.h"

#define BLOCKS 4096u

static void fill(uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i * 13 + (i >> 9));
}

static void cdb_rw10(uint8_t *cdb, uint8_t op, uint32_t lba, uint16_t blocks)
{
	memset(cdb, 0, 10);
	cdb[0] = op;
	scsi_put_be32(cdb + 2, lba);
	scsi_put_be16(cdb + 7, blocks);
}

static void expect_srb_ok(const struct vstor_packet *r, uint32_t transferred)
{
	assert_int_equal(r->status, 0);
	assert_int_equal(r->vm_srb.srb_status, SRB_STATUS_SUCCESS);
	assert_int_equal(r->vm_srb.scsi_status, SCSI_STATUS_GOOD);
	assert_int_equal(r->vm_srb.data_transfer_length, transferred);
}

static void expect_srb_sense(const struct vstor_packet *r, uint8_t key, uint16_t asc,
			     uint8_t sense_len)
{
	assert_int_equal(r->status, 0);
	assert_int_equal(r->vm_srb.srb_status, SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID);
	assert_int_equal(r->vm_srb.scsi_status, SCSI_STATUS_CHECK_CONDITION);
	assert_int_equal(r->vm_srb.sense_info_length, sense_len);
	assert_int_equal(r->vm_srb.sense_data[0], 0x70);
	assert_int_equal(r->vm_srb.sense_data[2] & 0xf, key);
	assert_int_equal(r->vm_srb.sense_data[12], asc >> 8);
	assert_int_equal(r->vm_srb.sense_data[13], asc & 0xff);
	assert_int_equal(r->vm_srb.data_transfer_length, 0);
}

/* REPORT LUNS into the page at pfn; returns the LUN list's byte count. */
static uint32_t report_luns(struct sfix *s, uint64_t pfn)
{
	struct vstor_packet r;
	uint8_t rl[12] = {SCSI_REPORT_LUNS};
	scsi_put_be32(rl + 6, 4096);
	sf_scsi(s, 0, 0, rl, 12, VSTOR_DATA_READ, pfn, 4096, &r);
	uint32_t n = scsi_get_be32(sf_ptr(s, pfn));
	expect_srb_ok(&r, 8 + n);
	return n;
}

/* ---- initialization ---- */

static void init_linux_sequence(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, BLOCKS, false);
	struct vmstorage_channel_properties props;
	assert_int_equal(sf_init(s, &props), VSTOR_PROTO_VERSION_WIN10);
	assert_int_equal(props.max_channel_cnt, 4);
	assert_int_equal(props.flags & VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL,
			 VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL);
	assert_int_equal(props.max_transfer_bytes, 2u << 20);
	struct storvsp_stats st = sf_stats(s);
	assert_int_equal(st.version, VSTOR_PROTO_VERSION_WIN10);
	assert_int_equal(st.bad_packets, 0);
	sf_free(s);
}

static void init_every_version(void **state)
{
	(void)state;
	const uint16_t versions[] = {VSTOR_PROTO_VERSION_WIN10, VSTOR_PROTO_VERSION_WIN8_1,
				     VSTOR_PROTO_VERSION_WIN8, VSTOR_PROTO_VERSION_WIN7,
				     VSTOR_PROTO_VERSION_WIN6};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		struct sfix *s = sf_new(NULL, 1, BLOCKS, false);
		assert_int_equal(sf_init_version(s, versions[i]), 0);
		assert_int_equal(sf_stats(s).version, versions[i]);
		bool pre_win8 = versions[i] < VSTOR_PROTO_VERSION_WIN8;
		/* Data and sense both work with the version's sizes (the
		 * fixture checks the completion size). */
		uint64_t pfn = sf_alloc(s, 1);
		uint8_t inq[6] = {SCSI_INQUIRY, 0, 0, 0, 96, 0};
		struct vstor_packet r;
		sf_scsi(s, 0, 0, inq, 6, VSTOR_DATA_READ, pfn, 96, &r);
		expect_srb_ok(&r, 96);
		assert_memory_equal((uint8_t *)sf_ptr(s, pfn) + 8, "hvkit   ", 8);
		uint8_t bad[10];
		cdb_rw10(bad, SCSI_READ_10, BLOCKS, 1);
		sf_scsi(s, 0, 0, bad, 10, VSTOR_DATA_READ, pfn, 512, &r);
		expect_srb_sense(&r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE,
				 pre_win8 ? VSTOR_SENSE_BUFFER_SIZE_PRE_WIN8 : 18);
		/* Multi-channel only from Win8. */
		s->version = versions[i];
		struct vstor_packet q = {.operation = VSTOR_OPERATION_CREATE_SUB_CHANNELS};
		q.sub_channel_count = 1;
		uint32_t status = sf_op(s, 0, &q);
		if (pre_win8)
			assert_int_not_equal(status, 0);
		else
			assert_int_equal(status, 0);
		sf_free(s);
	}
}

static void init_refusals(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, BLOCKS, false);
	/* Version before BEGIN; properties before a version; an SRB before
	 * END: each refused with a status, counted. */
	struct vstor_packet p = {.operation = VSTOR_OPERATION_QUERY_PROTOCOL_VERSION};
	p.version.major_minor = VSTOR_PROTO_VERSION_WIN10;
	assert_int_not_equal(sf_op(s, 0, &p), 0);
	struct vstor_packet b = {.operation = VSTOR_OPERATION_BEGIN_INITIALIZATION};
	assert_int_equal(sf_op(s, 0, &b), 0);
	struct vstor_packet q = {.operation = VSTOR_OPERATION_QUERY_PROPERTIES};
	assert_int_not_equal(sf_op(s, 0, &q), 0);
	/* Unknown versions: REVISION_MISMATCH, not counted as bad. */
	uint64_t bad = sf_stats(s).bad_packets;
	const uint16_t unknown[] = {0x0602 + 1, 0x0700, 0x0100, 0};
	for (size_t i = 0; i < 4; i++) {
		struct vstor_packet v = {.operation = VSTOR_OPERATION_QUERY_PROTOCOL_VERSION};
		v.version.major_minor = unknown[i];
		assert_int_equal(sf_op(s, 0, &v), VSTOR_STATUS_REVISION_MISMATCH);
	}
	assert_int_equal(sf_stats(s).bad_packets, bad);
	struct vstor_packet srb;
	uint8_t tur[6] = {SCSI_TEST_UNIT_READY};
	sf_srb_build(&srb, 0, tur, 6, VSTOR_DATA_UNKNOWN, 0);
	assert_int_equal(sf_op(s, 0, &srb), VSTOR_STATUS_INVALID_DEVICE_STATE);
	/* Operations only the host sends, and FC data. */
	const uint32_t host_ops[] = {VSTOR_OPERATION_COMPLETE_IO, VSTOR_OPERATION_REMOVE_DEVICE,
				     VSTOR_OPERATION_ENUMERATE_BUS, VSTOR_OPERATION_FCHBA_DATA, 99};
	for (size_t i = 0; i < 5; i++) {
		struct vstor_packet h = {.operation = host_ops[i]};
		assert_int_not_equal(sf_op(s, 0, &h), 0);
	}
	assert_true(sf_stats(s).bad_packets >= bad + 6);
	/* And the sequence still completes. */
	assert_int_equal(sf_init(s, NULL), VSTOR_PROTO_VERSION_WIN10);
	sf_free(s);
}

/* ---- data ---- */

static void read_write_through_gpa(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, BLOCKS, false);
	sf_init(s, NULL);
	const uint32_t len = 5 * 4096 + 1024; /* 42 blocks, six pages */
	uint64_t wpfn = sf_alloc(s, 6), rpfn = sf_alloc(s, 6);
	uint8_t *w = sf_ptr(s, wpfn), *rd = sf_ptr(s, rpfn);
	fill(w, len, 7);
	uint8_t cdb[16];
	cdb_rw10(cdb, SCSI_WRITE_10, 100, len / 512);
	cdb[1] = 0x08; /* FUA */
	struct vstor_packet r;
	sf_scsi(s, 0, 0, cdb, 10, VSTOR_DATA_WRITE, wpfn, len, &r);
	expect_srb_ok(&r, len);
	assert_memory_equal(sf_disk(s, 0) + 100 * 512, w, len);

	memset(cdb, 0, 16);
	cdb[0] = SCSI_READ_16;
	scsi_put_be64(cdb + 2, 100);
	scsi_put_be32(cdb + 10, len / 512);
	memset(rd, 0, len);
	sf_scsi(s, 0, 0, cdb, 16, VSTOR_DATA_READ, rpfn, len, &r);
	expect_srb_ok(&r, len);
	assert_memory_equal(rd, w, len);

	uint8_t sync[10] = {SCSI_SYNCHRONIZE_CACHE_10};
	sf_scsi(s, 0, 0, sync, 10, VSTOR_DATA_UNKNOWN, 0, 0, &r);
	expect_srb_ok(&r, 0);

	/* A buffer that starts mid-page and spans scattered pages. */
	uint64_t pfns[3] = {sf_alloc(s, 1), sf_alloc(s, 1) + 0, 0};
	pfns[2] = sf_alloc(s, 1);
	uint64_t t = pfns[0];
	pfns[0] = pfns[2];
	pfns[2] = t;
	uint8_t *pages[3] = {sf_ptr(s, pfns[0]), sf_ptr(s, pfns[1]), sf_ptr(s, pfns[2])};
	fill(pages[0] + 3584, 512, 1);
	fill(pages[1], 4096, 2);
	fill(pages[2], 3584, 3);
	struct vstor_packet p;
	cdb_rw10(cdb, SCSI_WRITE_10, 7, 16);
	sf_srb_build(&p, 0, cdb, 10, VSTOR_DATA_WRITE, 8192);
	assert_int_equal(sf_send_gpa(s, 0, 77, &p, sizeof(p), 3584, 8192, pfns, 3), 0);
	uint64_t id;
	sf_wait(s, 0, &r, NULL, &id);
	assert_int_equal(id, 77);
	expect_srb_ok(&r, 8192);
	uint8_t *img = sf_disk(s, 0) + 7 * 512;
	assert_memory_equal(img, pages[0] + 3584, 512);
	assert_memory_equal(img + 512, pages[1], 4096);
	assert_memory_equal(img + 4608, pages[2], 3584);
	struct storvsp_stats st = sf_stats(s);
	assert_int_equal(st.bad_packets, 0);
	assert_int_equal(st.requests, 4);
	sf_free(s);
}

static void scsi_errors_keep_disk_usable(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, BLOCKS, false);
	sf_init(s, NULL);
	uint64_t pfn = sf_alloc(s, 2);
	uint8_t cdb[10];
	struct vstor_packet r;
	/* Out-of-range LBA. */
	cdb_rw10(cdb, SCSI_READ_10, BLOCKS - 1, 2);
	sf_scsi(s, 0, 0, cdb, 10, VSTOR_DATA_READ, pfn, 1024, &r);
	expect_srb_sense(&r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE, 18);
	/* Unsupported opcode. */
	uint8_t op[10] = {0x2e};
	sf_scsi(s, 0, 0, op, 10, VSTOR_DATA_UNKNOWN, 0, 0, &r);
	expect_srb_sense(&r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE, 18);
	/* The CDB asks for more than the buffer holds. */
	cdb_rw10(cdb, SCSI_READ_10, 0, 16);
	sf_scsi(s, 0, 0, cdb, 10, VSTOR_DATA_READ, pfn, 4096, &r);
	expect_srb_sense(&r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB, 18);
	/* Still fine. */
	cdb_rw10(cdb, SCSI_READ_10, 0, 8);
	sf_scsi(s, 0, 0, cdb, 10, VSTOR_DATA_READ, pfn, 4096, &r);
	expect_srb_ok(&r, 4096);
	assert_int_equal(sf_stats(s).check_conditions, 3);
	sf_free(s);
}

static void read_only_disk(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, BLOCKS, true);
	sf_init(s, NULL);
	uint64_t pfn = sf_alloc(s, 1);
	uint8_t cdb[10];
	struct vstor_packet r;
	cdb_rw10(cdb, SCSI_WRITE_10, 0, 1);
	sf_scsi(s, 0, 0, cdb, 10, VSTOR_DATA_WRITE, pfn, 512, &r);
	expect_srb_sense(&r, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED, 18);
	cdb_rw10(cdb, SCSI_READ_10, 0, 1);
	sf_scsi(s, 0, 0, cdb, 10, VSTOR_DATA_READ, pfn, 512, &r);
	expect_srb_ok(&r, 512);
	sf_free(s);
}

static void several_luns(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 3, 64, false);
	sf_init(s, NULL);
	uint64_t pfn = sf_alloc(s, 1);
	uint8_t *buf = sf_ptr(s, pfn);
	struct vstor_packet r;
	assert_int_equal(report_luns(s, pfn), 24);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(buf[8 + 8 * i + 1], i);
	/* Each LUN is its own disk. */
	for (uint8_t lun = 0; lun < 3; lun++) {
		uint8_t cdb[10];
		memset(buf, 0x40 + lun, 512);
		cdb_rw10(cdb, SCSI_WRITE_10, 5, 1);
		sf_scsi(s, 0, lun, cdb, 10, VSTOR_DATA_WRITE, pfn, 512, &r);
		expect_srb_ok(&r, 512);
	}
	for (uint8_t lun = 0; lun < 3; lun++)
		assert_int_equal(sf_disk(s, lun)[5 * 512 + 100], 0x40 + lun);
	assert_int_equal(sf_stats(s).bad_packets, 0);
	sf_free(s);
}

/* ---- empty slots, as Linux 6.1 reads the answers ---- */

#define LINUX_MAX_PATHS 8u   /* storvsc_drv.c: max_channel = 7 */
#define LINUX_MAX_TARGETS 2u /* max_id = STORVSC_MAX_TARGETS */
#define LINUX_SCSI_2 3u      /* include/scsi/scsi.h scsi_level */

/* What Linux's scan made of the bus. */
struct linux_scan {
	struct sf_addr found[64]; /* SCSI devices it created, the first 64 */
	uint32_t nfound;
	uint32_t removals_of_disks; /* storvsc_remove_lun that hit a disk */
};

static bool has_disk(const uint8_t *luns, uint32_t n, struct sf_addr at)
{
	for (uint32_t i = 0; i < n; i++)
		if (!at.path && !at.target && at.lun == luns[i])
			return true;
	return false;
}

/* A completion as storvsc hands it on: INVALID_LUN to anything but an
 * INQUIRY removes the device at path 0 with the SRB's target and LUN
 * (storvsc_handle_error, storvsc_remove_lun). */
static void linux_completion(struct linux_scan *ls, const struct vstor_packet *r,
			     struct sf_addr at, const uint8_t *disks, uint32_t ndisks)
{
	struct sf_addr path0 = {0, at.target, at.lun};
	if (r->vm_srb.cdb[0] != SCSI_INQUIRY && r->vm_srb.srb_status == SRB_STATUS_INVALID_LUN &&
	    has_disk(disks, ndisks, path0))
		ls->removals_of_disks++;
}

/* scsi_probe_lun: a 36-byte INQUIRY into a zeroed buffer. storvsc makes
 * every INQUIRY completion a success, so whatever the host left unwritten
 * reads as zeros: peripheral qualifier 0, a disk. Returns byte 0 and sets
 * *level as scsi_probe_lun derives scsi_level from byte 2. */
static uint8_t linux_inquiry(struct sfix *s, struct linux_scan *ls, struct sf_addr at,
			     uint64_t pfn, uint8_t *level, const uint8_t *disks, uint32_t ndisks)
{
	uint8_t *buf = sf_ptr(s, pfn);
	memset(buf, 0, 36);
	uint8_t inq[6] = {SCSI_INQUIRY, 0, 0, 0, 36, 0};
	struct vstor_packet r;
	sf_scsi_at(s, 0, at, inq, 6, VSTOR_DATA_READ, pfn, 36, &r);
	linux_completion(ls, &r, at, disks, ndisks);
	uint8_t version = buf[2] & 7;
	*level = version >= 2 ? version + 1 : version;
	return buf[0];
}

/* scsi_probe_and_add_lun: a device unless the qualifier says none. */
static bool linux_probe(struct sfix *s, struct linux_scan *ls, struct sf_addr at, uint64_t pfn,
			uint8_t *level, const uint8_t *disks, uint32_t ndisks)
{
	uint8_t b0 = linux_inquiry(s, ls, at, pfn, level, disks, ndisks);
	uint8_t pq = b0 >> 5, type = b0 & 0x1f;
	if (pq == 3 || (pq == 1 && type == 0x1f))
		return false;
	if (ls->nfound < sizeof(ls->found) / sizeof(ls->found[0]))
		ls->found[ls->nfound] = at;
	ls->nfound++;
	/* sd then starts with TEST UNIT READY. */
	uint8_t tur[6] = {SCSI_TEST_UNIT_READY};
	struct vstor_packet r;
	sf_scsi_at(s, 0, at, tur, 6, VSTOR_DATA_UNKNOWN, 0, 0, &r);
	linux_completion(ls, &r, at, disks, ndisks);
	return true;
}

/* scsi_scan_host over every path and target (__scsi_scan_target): LUN 0,
 * then REPORT LUNS (storvsc sets BLIST_REPORTLUN2, so from SCSI-2 on)
 * or, where that fails, LUNs 1-7 one by one. */
static void linux_scan(struct sfix *s, struct linux_scan *ls, const uint8_t *disks,
		       uint32_t ndisks)
{
	uint64_t pfn = sf_alloc(s, 1);
	uint8_t *buf = sf_ptr(s, pfn);
	*ls = (struct linux_scan){0};
	for (uint8_t path = 0; path < LINUX_MAX_PATHS; path++) {
		for (uint8_t target = 0; target < LINUX_MAX_TARGETS; target++) {
			struct sf_addr at = {path, target, 0};
			uint8_t level;
			linux_probe(s, ls, at, pfn, &level, disks, ndisks);
			uint8_t rl[12] = {SCSI_REPORT_LUNS};
			scsi_put_be32(rl + 6, 4096);
			struct vstor_packet r = {0};
			if (level >= LINUX_SCSI_2) {
				memset(buf, 0, 4096);
				sf_scsi_at(s, 0, at, rl, 12, VSTOR_DATA_READ, pfn, 4096, &r);
				linux_completion(ls, &r, at, disks, ndisks);
			}
			if (r.vm_srb.srb_status != SRB_STATUS_SUCCESS) {
				for (at.lun = 1; at.lun < 8; at.lun++)
					if (!linux_probe(s, ls, at, pfn, &level, disks, ndisks))
						break;
				continue;
			}
			uint32_t n = scsi_get_be32(buf) / 8;
			assert_true(n <= 256);
			uint8_t luns[256];
			for (uint32_t i = 0; i < n; i++)
				luns[i] = buf[8 + 8 * i + 1];
			for (uint32_t i = 0; i < n; i++) {
				at.lun = luns[i];
				if (at.lun)
					linux_probe(s, ls, at, pfn, &level, disks, ndisks);
			}
		}
	}
}

/* The phantom disks Linux once saw: every path and target it scans must
 * read as empty except path 0, target 0, where exactly the disks are, and
 * no answer may make storvsc remove one of them. */
static void linux_scan_finds_exactly_the_disks(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 3, 64, false);
	sf_init(s, NULL);
	/* LUNs 0 and 2: a gap at 1. */
	assert_int_equal(storvsp_remove_disk(s->sv, 1), 0);
	struct vstor_packet notice;
	uint64_t id;
	sf_wait(s, 0, &notice, NULL, &id);
	assert_int_equal(id, 0);
	assert_int_equal(notice.operation, VSTOR_OPERATION_ENUMERATE_BUS);
	const uint8_t disks[] = {0, 2};
	struct linux_scan ls;
	linux_scan(s, &ls, disks, 2);
	assert_int_equal(ls.nfound, 2);
	for (uint32_t i = 0; i < ls.nfound; i++) {
		assert_int_equal(ls.found[i].path, 0);
		assert_int_equal(ls.found[i].target, 0);
		assert_int_equal(ls.found[i].lun, disks[i]);
	}
	assert_int_equal(ls.removals_of_disks, 0);
	assert_int_equal(sf_stats(s).bad_packets, 0);
	sf_free(s);
}

/* The answers themselves: "no device" INQUIRY data of the full standard
 * length on every empty slot, an empty REPORT LUNS off target 0, and for
 * other commands the answer that removes only what is really gone. */
static void empty_slot_answers(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, 64, false);
	sf_init(s, NULL);
	uint64_t pfn = sf_alloc(s, 1);
	uint8_t *buf = sf_ptr(s, pfn);
	struct vstor_packet r;
	const struct sf_addr empty[] = {{0, 0, 3}, {0, 1, 0}, {1, 0, 0}, {7, 1, 5}};
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		uint8_t inq[6] = {SCSI_INQUIRY, 0, 0, 0, 96, 0};
		memset(buf, 0xee, 96);
		sf_scsi_at(s, 0, empty[i], inq, 6, VSTOR_DATA_READ, pfn, 96, &r);
		expect_srb_ok(&r, SCSI_INQUIRY_STANDARD_LEN);
		assert_int_equal(buf[0], SCSI_PQ_NOT_CONNECTED);
		assert_int_equal(buf[4] + 5, SCSI_INQUIRY_STANDARD_LEN);
		assert_true((buf[2] & 7) >= 3); /* REPORT LUNS, not a LUN-by-LUN scan */
	}
	/* REPORT LUNS: the disk on target 0, nothing anywhere else. */
	assert_int_equal(report_luns(s, pfn), 8);
	const struct sf_addr targets[] = {{0, 1, 0}, {3, 0, 0}, {7, 1, 0}};
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		uint8_t rl[12] = {SCSI_REPORT_LUNS};
		scsi_put_be32(rl + 6, 4096);
		memset(buf, 0xee, 16);
		sf_scsi_at(s, 0, targets[i], rl, 12, VSTOR_DATA_READ, pfn, 4096, &r);
		expect_srb_ok(&r, 8);
		assert_int_equal(scsi_get_be32(buf), 0);
	}
	/* A LUN the host does not have on path 0: INVALID_LUN, as Hyper-V,
	 * so storvsc drops a disk the host took away. */
	uint8_t tur[6] = {SCSI_TEST_UNIT_READY};
	sf_scsi_at(s, 0, (struct sf_addr){0, 0, 3}, tur, 6, VSTOR_DATA_UNKNOWN, 0, 0, &r);
	assert_int_equal(r.vm_srb.srb_status, SRB_STATUS_INVALID_LUN);
	sf_scsi_at(s, 0, (struct sf_addr){2, 1, 0}, tur, 6, VSTOR_DATA_UNKNOWN, 0, 0, &r);
	assert_int_equal(r.vm_srb.srb_status, SRB_STATUS_INVALID_LUN);
	/* The same LUN on another path while path 0 has a disk there:
	 * INVALID_LUN would make storvsc remove that disk; sense instead. */
	sf_scsi_at(s, 0, (struct sf_addr){2, 0, 0}, tur, 6, VSTOR_DATA_UNKNOWN, 0, 0, &r);
	expect_srb_sense(&r, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED, 18);
	assert_int_equal(sf_stats(s).bad_packets, 0);
	sf_free(s);
}

static void several_controllers(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct storvsp *a, *b;
	struct storvsp_config ca = {.instance = 0}, cb = {.instance = 1};
	assert_int_equal(storvsp_add(f->s, &f->mem, &ca, &a), 0);
	assert_int_equal(storvsp_add(f->s, &f->mem, &cb, &b), 0);
	vf_connect(f);
	struct vmbus_msg_offer_channel o[4];
	assert_int_equal(vf_request_offers(f, o, 4), 2);
	struct hv_guid scsi = VMBUS_CLASS_SCSI;
	assert_true(hv_guid_equal(&o[0].offer.if_type, &scsi));
	assert_true(hv_guid_equal(&o[1].offer.if_type, &scsi));
	assert_false(hv_guid_equal(&o[0].offer.if_instance, &o[1].offer.if_instance));
	storvsp_remove(f->s, a);
	storvsp_remove(f->s, b);
	vf_free(f);
}

/* ---- sub-channels ---- */

static void subchannels_in_parallel(void **state)
{
	(void)state;
	struct storvsp_config cfg = {.workers = 3};
	struct sfix *s = sf_new(&cfg, 1, BLOCKS, false);
	sf_init(s, NULL);
	assert_int_equal(sf_subchannels(s, 3), 0);
	assert_int_equal(s->nchan, 4);
	assert_int_equal(sf_stats(s).subchannels, 3);
	/* Asking past max_channel_cnt is refused. */
	struct vstor_packet q = {.operation = VSTOR_OPERATION_CREATE_SUB_CHANNELS};
	q.sub_channel_count = 2;
	assert_int_not_equal(sf_op(s, 0, &q), 0);
	/* Sub-channels carry I/O, not control. */
	struct vstor_packet b = {.operation = VSTOR_OPERATION_BEGIN_INITIALIZATION};
	assert_int_not_equal(sf_op(s, 2, &b), 0);

	/* Eight writes in flight on each channel at once, then read back. */
	enum { PER = 8 };
	uint64_t pfn[4][PER];
	struct vstor_packet p;
	uint8_t cdb[10];
	for (uint32_t c = 0; c < 4; c++) {
		for (uint32_t k = 0; k < PER; k++) {
			pfn[c][k] = sf_alloc(s, 1);
			fill(sf_ptr(s, pfn[c][k]), 4096, c * PER + k);
			cdb_rw10(cdb, SCSI_WRITE_10, (c * PER + k) * 8, 8);
			sf_srb_build(&p, 0, cdb, 10, VSTOR_DATA_WRITE, 4096);
			assert_int_equal(sf_send_gpa(s, c, 1000 + c * PER + k, &p, sizeof(p), 0,
						     4096, &pfn[c][k], 1),
					 0);
		}
	}
	for (uint32_t c = 0; c < 4; c++) {
		bool seen[PER] = {false};
		for (uint32_t k = 0; k < PER; k++) {
			struct vstor_packet r;
			uint64_t id;
			sf_wait(s, c, &r, NULL, &id);
			assert_true(id >= 1000 + c * PER && id < 1000 + (c + 1) * PER);
			assert_false(seen[id - 1000 - c * PER]);
			seen[id - 1000 - c * PER] = true;
			expect_srb_ok(&r, 4096);
		}
	}
	for (uint32_t i = 0; i < 4 * PER; i++) {
		uint8_t want[4096];
		fill(want, 4096, i);
		assert_memory_equal(sf_disk(s, 0) + i * 4096, want, 4096);
	}
	sf_free(s);
}

/* A driver reload: close everything, open the primary again, initialize
 * and ask for sub-channels again; I/O works on the new ones. */
static void reload_driver(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, BLOCKS, false);
	sf_init(s, NULL);
	assert_int_equal(sf_subchannels(s, 2), 0);
	sf_reopen(s);
	assert_int_equal(sf_stats(s).version, VSTOR_PROTO_VERSION_WIN10);
	/* Not initialized any more: SRBs are refused until it is. */
	struct vstor_packet srb;
	uint8_t tur[6] = {SCSI_TEST_UNIT_READY};
	sf_srb_build(&srb, 0, tur, 6, VSTOR_DATA_UNKNOWN, 0);
	assert_int_equal(sf_op(s, 0, &srb), VSTOR_STATUS_INVALID_DEVICE_STATE);
	assert_int_equal(sf_init(s, NULL), VSTOR_PROTO_VERSION_WIN10);
	assert_int_equal(sf_subchannels(s, 2), 0);
	struct vstor_packet r;
	sf_scsi(s, 2, 0, tur, 6, VSTOR_DATA_UNKNOWN, 0, 0, &r);
	expect_srb_ok(&r, 0);
	sf_free(s);
}

/* ---- a malicious guest ---- */

static void expect_rejected_gpa(struct sfix *s, const struct vstor_packet *p, uint32_t off,
				uint32_t count, const uint64_t *pfns, uint32_t n)
{
	uint64_t bad = sf_stats(s).bad_gpas;
	struct vstor_packet r;
	assert_int_equal(sf_send_gpa(s, 0, 5, p, sizeof(*p), off, count, pfns, n), 0);
	sf_wait(s, 0, &r, NULL, NULL);
	assert_int_equal(r.vm_srb.srb_status, SRB_STATUS_INVALID_REQUEST);
	assert_int_equal(r.vm_srb.data_transfer_length, 0);
	assert_int_equal(sf_stats(s).bad_gpas, bad + 1);
}

static void malicious_gpa_lists(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, BLOCKS, false);
	sf_init(s, NULL);
	uint64_t good = sf_alloc(s, 2);
	uint8_t cdb[10];
	struct vstor_packet p;
	cdb_rw10(cdb, SCSI_READ_10, 0, 16);
	sf_srb_build(&p, 0, cdb, 10, VSTOR_DATA_READ, 8192);
	/* Outside RAM: the hole, past the end, a PFN that overflows. */
	uint64_t hole[2] = {good, VF_HOLE_PFN};
	expect_rejected_gpa(s, &p, 0, 8192, hole, 2);
	uint64_t past[2] = {VF_RAM_PAGES, VF_RAM_PAGES + 1};
	expect_rejected_gpa(s, &p, 0, 8192, past, 2);
	uint64_t huge[2] = {UINT64_MAX, good};
	expect_rejected_gpa(s, &p, 0, 8192, huge, 2);
	/* Overlap: the same page twice. */
	uint64_t twice[2] = {good, good};
	expect_rejected_gpa(s, &p, 0, 8192, twice, 2);
	/* Transfer length larger than the GPA list, and a list larger than
	 * the transfer. */
	uint64_t two[3] = {good, good + 1, good + 2};
	p.vm_srb.data_transfer_length = 8192 + 512;
	expect_rejected_gpa(s, &p, 0, 8192, two, 2);
	p.vm_srb.data_transfer_length = 4096;
	expect_rejected_gpa(s, &p, 0, 8192, two, 2);
	/* Over the maximum transfer. */
	p.vm_srb.data_transfer_length = (2u << 20) + 4096;
	expect_rejected_gpa(s, &p, 0, 8192, two, 2);
	/* A transfer length with no GPA list at all. */
	p.vm_srb.data_transfer_length = 8192;
	uint64_t before = sf_stats(s).bad_packets;
	struct vstor_packet r;
	sf_send(s, 0, 6, &p, sizeof(p));
	sf_wait(s, 0, &r, NULL, NULL);
	assert_int_equal(r.vm_srb.srb_status, SRB_STATUS_INVALID_REQUEST);
	assert_int_equal(sf_stats(s).bad_packets, before + 1);
	/* Nothing reached the disk; the good request still works. */
	sf_scsi(s, 0, 0, cdb, 10, VSTOR_DATA_READ, good, 8192, &r);
	expect_srb_ok(&r, 8192);
	assert_int_equal(sf_stats(s).requests, 1);
	sf_free(s);
}

static void malicious_packets(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, BLOCKS, false);
	sf_init(s, NULL);
	struct vf_chan *c = &s->chan[0];
	uint64_t bad = sf_stats(s).bad_packets;
	/* Short packets, empty ones: dropped in the callback, no reply. */
	uint8_t junk[64];
	memset(junk, 0xa5, sizeof(junk));
	sf_send(s, 0, 1, junk, 8);
	sf_send(s, 0, 2, junk, 0);
	sf_send(s, 0, 3, junk, 47);
	sf_expect_quiet(s, 0);
	assert_int_equal(sf_stats(s).bad_packets, bad + 3);
	/* A completion flood: the guest sends completions to the host. */
	for (uint32_t i = 0; i < 2000; i++) {
		int err = vmbus_ring_put_completion(&c->w, i, junk, sizeof(junk), NULL);
		if (err == -EAGAIN) {
			vf_signal_relid(s->f, c->relid); /* let it drain */
			vmbus_ring_publish(&c->w);
			vf_signal_relid(s->f, c->relid);
			i--;
			continue;
		}
		assert_int_equal(err, 0);
		if (vmbus_ring_publish(&c->w))
			vf_signal_relid(s->f, c->relid);
	}
	vf_signal_relid(s->f, c->relid);
	sf_expect_quiet(s, 0);
	assert_int_equal(sf_stats(s).bad_packets, bad + 3 + 2000);
	/* Garbage SRBs: CDB length 0 and 17; random bytes as an SRB. */
	struct vstor_packet p, r;
	uint8_t tur[6] = {0};
	sf_srb_build(&p, 0, tur, 6, VSTOR_DATA_UNKNOWN, 0);
	p.vm_srb.cdb_length = 0;
	sf_send(s, 0, 10, &p, sizeof(p));
	sf_wait(s, 0, &r, NULL, NULL);
	assert_int_equal(r.vm_srb.srb_status, SRB_STATUS_INVALID_REQUEST);
	p.vm_srb.cdb_length = 17;
	sf_send(s, 0, 11, &p, sizeof(p));
	sf_wait(s, 0, &r, NULL, NULL);
	assert_int_equal(r.vm_srb.srb_status, SRB_STATUS_INVALID_REQUEST);
	for (uint32_t i = 0; i < 64; i++) {
		memset(&p, 0, sizeof(p));
		for (uint32_t k = 0; k < sizeof(p); k++)
			((uint8_t *)&p)[k] = (uint8_t)(i * 131 + k * 17);
		p.operation = VSTOR_OPERATION_EXECUTE_SRB;
		p.vm_srb.data_transfer_length = 0;
		sf_send(s, 0, 100 + i, &p, sizeof(p));
		uint64_t id;
		sf_wait(s, 0, &r, NULL, &id);
		assert_int_equal(id, 100 + i);
		assert_int_equal(r.operation, VSTOR_OPERATION_COMPLETE_IO);
	}
	/* A GPA list on a control operation. */
	struct vstor_packet b = {.operation = VSTOR_OPERATION_BEGIN_INITIALIZATION};
	uint64_t pfn = sf_alloc(s, 1);
	assert_int_equal(sf_send_gpa(s, 0, 12, &b, sizeof(b), 0, 512, &pfn, 1), 0);
	sf_expect_quiet(s, 0);
	/* The host is up and the disk fine. */
	uint8_t cdb[10];
	cdb_rw10(cdb, SCSI_READ_10, 0, 1);
	sf_scsi(s, 0, 0, cdb, 10, VSTOR_DATA_READ, pfn, 512, &r);
	expect_srb_ok(&r, 512);
	sf_free(s);
}

/* ---- flow control ---- */

/* Many more requests than max_outstanding, and than the completion ring
 * holds, while the guest reads completions only when its ring is full:
 * every request is completed exactly once. */
static void flow_control(void **state)
{
	(void)state;
	struct storvsp_config cfg = {.max_outstanding = 8, .workers = 2};
	struct sfix *s = sf_new(&cfg, 1, BLOCKS, false);
	sf_init(s, NULL);
	enum { N = 3000 };
	static bool seen[N];
	memset(seen, 0, sizeof(seen));
	uint32_t got = 0;
	struct vstor_packet p, r;
	uint8_t tur[6] = {SCSI_TEST_UNIT_READY};
	sf_srb_build(&p, 0, tur, 6, VSTOR_DATA_UNKNOWN, 0);
	struct vf_chan *c = &s->chan[0];
	for (uint32_t i = 0; i < N;) {
		struct vmbus_ring_iov iov = {&p, sizeof(p)};
		int err = vmbus_ring_put_inband(&c->w, i + 1, VMBUS_PKT_FLAG_COMPLETION_REQUESTED,
						&iov, 1, NULL);
		if (err == 0) {
			if (vmbus_ring_publish(&c->w))
				vf_signal_relid(s->f, c->relid);
			i++;
			continue;
		}
		assert_int_equal(err, -EAGAIN);
		uint64_t id;
		sf_wait(s, 0, &r, NULL, &id);
		assert_true(id >= 1 && id <= N && !seen[id - 1]);
		seen[id - 1] = true;
		expect_srb_ok(&r, 0);
		got++;
	}
	while (got < N) {
		uint64_t id;
		sf_wait(s, 0, &r, NULL, &id);
		assert_true(id >= 1 && id <= N && !seen[id - 1]);
		seen[id - 1] = true;
		got++;
	}
	struct storvsp_stats st = sf_stats(s);
	assert_int_equal(st.requests, N);
	assert_int_equal(st.completions, N + 4); /* and the init sequence's */
	assert_true(st.throttled > 0);
	printf("# flow control: %llu throttles, %llu completions waited for ring space\n",
	       (unsigned long long)st.throttled, (unsigned long long)st.ring_full);
	sf_free(s);
}

/* Closing with requests in flight drops their completions, leaks nothing. */
static void close_with_requests_in_flight(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, BLOCKS, false);
	sf_init(s, NULL);
	uint64_t pfn = sf_alloc(s, 16);
	uint8_t cdb[10];
	struct vstor_packet p;
	cdb_rw10(cdb, SCSI_WRITE_10, 0, 128);
	sf_srb_build(&p, 0, cdb, 10, VSTOR_DATA_WRITE, 65536);
	uint64_t pfns[16];
	for (uint32_t i = 0; i < 16; i++)
		pfns[i] = pfn + i;
	for (uint32_t i = 0; i < 20; i++)
		assert_int_equal(sf_send_gpa(s, 0, i + 1, &p, sizeof(p), 0, 65536, pfns, 16), 0);
	vf_chan_close(s->f, &s->chan[0]);
	sf_free(s);
}

/* ---- hot plug ---- */

static void expect_rescan(struct sfix *s)
{
	struct vstor_packet r;
	uint64_t id = 1;
	uint32_t len;
	sf_wait(s, 0, &r, &len, &id);
	assert_int_equal(id, 0); /* unsolicited */
	assert_int_equal(len, sizeof(r));
	assert_int_equal(r.operation, VSTOR_OPERATION_ENUMERATE_BUS);
}

static void hot_add_and_remove(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, 64, false);
	/* Before initialization nothing is sent. */
	struct storage_backend be;
	struct scsi_disk *d;
	assert_int_equal(storage_backend_mem_new(64 * 512, 512, false, &be), 0);
	assert_int_equal(scsi_disk_new(NULL, &be, &d), 0);
	assert_int_equal(storvsp_add_disk(s->sv, 1, d), 0);
	sf_expect_quiet(s, 0);
	sf_init(s, NULL);

	assert_int_equal(storage_backend_mem_new(64 * 512, 512, false, &be), 0);
	uint8_t *img = storage_backend_mem_data(&be);
	assert_int_equal(scsi_disk_new(NULL, &be, &d), 0);
	assert_int_equal(storvsp_add_disk(s->sv, 2, d), 0);
	expect_rescan(s);
	assert_int_equal(storvsp_add_disk(s->sv, 2, d), -EEXIST);

	uint64_t pfn = sf_alloc(s, 1);
	uint8_t *buf = sf_ptr(s, pfn);
	struct vstor_packet r;
	assert_int_equal(report_luns(s, pfn), 24);
	assert_int_equal(buf[8 + 16 + 1], 2);
	uint8_t cdb[10];
	memset(buf, 0x99, 512);
	cdb_rw10(cdb, SCSI_WRITE_10, 3, 1);
	sf_scsi(s, 0, 2, cdb, 10, VSTOR_DATA_WRITE, pfn, 512, &r);
	expect_srb_ok(&r, 512);
	assert_int_equal(img[3 * 512], 0x99);

	/* Removal with a request in flight: it completes; later ones find
	 * no LUN; the guest is told to rescan. */
	struct vstor_packet p;
	cdb_rw10(cdb, SCSI_READ_10, 3, 1);
	sf_srb_build(&p, 2, cdb, 10, VSTOR_DATA_READ, 512);
	assert_int_equal(sf_send_gpa(s, 0, 4242, &p, sizeof(p), 0, 512, &pfn, 1), 0);
	assert_int_equal(storvsp_remove_disk(s->sv, 2), 0);
	assert_int_equal(storvsp_remove_disk(s->sv, 2), -ENOENT);
	bool got_io = false, got_rescan = false;
	for (int i = 0; i < 2; i++) {
		uint64_t id;
		sf_wait(s, 0, &r, NULL, &id);
		if (id == 0) {
			assert_int_equal(r.operation, VSTOR_OPERATION_ENUMERATE_BUS);
			got_rescan = true;
		} else {
			assert_int_equal(id, 4242);
			/* Either it ran before the removal or found no LUN. */
			assert_true(r.vm_srb.srb_status == SRB_STATUS_SUCCESS ||
				    r.vm_srb.srb_status == SRB_STATUS_INVALID_LUN);
			got_io = true;
		}
	}
	assert_true(got_io && got_rescan);
	sf_scsi(s, 0, 2, cdb, 10, VSTOR_DATA_READ, pfn, 512, &r);
	assert_int_equal(r.vm_srb.srb_status, SRB_STATUS_INVALID_LUN);
	assert_int_equal(report_luns(s, pfn), 16);
	sf_free(s);
}

/* ---- durability ---- */

/*
 * The disk has a volatile write cache (backend_powercut.h): what the guest
 * was told is durable must survive a power cut. A storvsp or SCSI target
 * that acknowledged SYNCHRONIZE CACHE or a FUA write without passing it on
 * fails here (unflushed_writes_are_lost shows the model does lose data).
 */
struct cut {
	struct sfix *s;
	struct storage_backend be;
	uint64_t pfn;
	uint8_t want[8192];
};

static void cut_setup(struct cut *c)
{
	struct scsi_disk *d;
	c->s = sf_new(NULL, 0, 0, false);
	assert_int_equal(powercut_backend_new(1 << 20, &c->be), 0);
	assert_int_equal(scsi_disk_new(NULL, &c->be, &d), 0);
	assert_int_equal(storvsp_add_disk(c->s->sv, 0, d), 0);
	sf_init(c->s, NULL);
	c->pfn = sf_alloc(c->s, 2);
	fill(c->want, sizeof(c->want), 99);
	memcpy(sf_ptr(c->s, c->pfn), c->want, sizeof(c->want));
}

/* WRITE(10) of want at LBA 64, with or without FUA. */
static void cut_write(struct cut *c, bool fua)
{
	uint8_t cdb[10];
	struct vstor_packet r;
	cdb_rw10(cdb, SCSI_WRITE_10, 64, 16);
	if (fua)
		cdb[1] |= 0x08;
	sf_scsi(c->s, 0, 0, cdb, 10, VSTOR_DATA_WRITE, c->pfn, sizeof(c->want), &r);
	expect_srb_ok(&r, sizeof(c->want));
}

static bool cut_survived(struct cut *c)
{
	powercut_cut(&c->be);
	bool ok = !memcmp(powercut_durable(&c->be) + 64 * 512, c->want, sizeof(c->want));
	sf_free(c->s);
	return ok;
}

static void flushed_writes_survive_a_power_cut(void **state)
{
	(void)state;
	const uint8_t syncs[][16] = {{SCSI_SYNCHRONIZE_CACHE_10}, {SCSI_SYNCHRONIZE_CACHE_16}};
	const uint8_t lens[] = {10, 16};
	for (size_t i = 0; i < 2; i++) {
		struct cut c;
		cut_setup(&c);
		cut_write(&c, false);
		struct vstor_packet r;
		sf_scsi(c.s, 0, 0, syncs[i], lens[i], VSTOR_DATA_UNKNOWN, 0, 0, &r);
		expect_srb_ok(&r, 0);
		assert_true(cut_survived(&c));
	}
}

static void fua_writes_survive_a_power_cut(void **state)
{
	(void)state;
	struct cut c;
	cut_setup(&c);
	cut_write(&c, true);
	assert_true(cut_survived(&c));
}

static void unflushed_writes_are_lost(void **state)
{
	(void)state;
	struct cut c;
	cut_setup(&c);
	cut_write(&c, false);
	assert_false(cut_survived(&c));
}

/* ---- Snapshot and restore (the controller's state in the server's) ---- */

/* Written before, read after, on other channels: the restored controller
 * takes SRBs at once (no new initialisation), on every channel. */
static void restore_keeps_the_controller(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 2, BLOCKS, false);
	uint16_t version = sf_init(s, NULL);
	assert_int_equal(sf_subchannels(s, 2), 0);
	assert_int_equal(s->nchan, 3);
	const uint32_t len = 8192;
	uint64_t wpfn = sf_alloc(s, 2), rpfn = sf_alloc(s, 2);
	uint8_t *w = sf_ptr(s, wpfn), *rd = sf_ptr(s, rpfn);
	uint8_t cdb[10];
	struct vstor_packet r;
	for (uint32_t lun = 0; lun < 2; lun++) {
		fill(w, len, 40 + lun);
		cdb_rw10(cdb, SCSI_WRITE_10, 64 * lun, len / 512);
		sf_scsi(s, 1 + lun, (uint8_t)lun, cdb, 10, VSTOR_DATA_WRITE, wpfn, len, &r);
		expect_srb_ok(&r, len);
	}
	sf_restore(s);
	assert_int_equal(sf_stats(s).version, version);
	for (uint32_t lun = 0; lun < 2; lun++) {
		fill(w, len, 40 + lun);
		memset(rd, 0, len);
		cdb_rw10(cdb, SCSI_READ_10, 64 * lun, len / 512);
		sf_scsi(s, 2 * lun, (uint8_t)lun, cdb, 10, VSTOR_DATA_READ, rpfn, len, &r);
		expect_srb_ok(&r, len);
		assert_memory_equal(rd, w, len);
	}
	assert_int_equal(sf_stats(s).bad_packets, 0);
	sf_free(s);
}

/* Waits (with a hang guard) until the controller has taken n requests. */
static void wait_requests(struct sfix *s, uint64_t n)
{
	for (long i = 0; i < 300000 && sf_stats(s).requests < n; i++) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(sf_stats(s).requests, n);
}

/* Completions the guest's full ring held back are saved with the channel
 * and delivered by the restored controller, each exactly once. */
static void restore_delivers_waiting_completions(void **state)
{
	(void)state;
	struct storvsp_config cfg = {.max_outstanding = 4096};
	struct sfix *s = sf_new(&cfg, 1, BLOCKS, false);
	sf_init(s, NULL);
	uint64_t before = sf_stats(s).requests;
	enum { BATCH = 300, N = 3 * BATCH };
	struct vstor_packet p, r;
	uint8_t tur[6] = {SCSI_TEST_UNIT_READY};
	sf_srb_build(&p, 0, tur, 6, VSTOR_DATA_UNKNOWN, 0);
	struct vf_chan *c = &s->chan[0];
	for (uint32_t i = 0; i < N; i++) {
		struct vmbus_ring_iov iov = {&p, sizeof(p)};
		assert_int_equal(vmbus_ring_put_inband(&c->w, 1000 + i,
						       VMBUS_PKT_FLAG_COMPLETION_REQUESTED, &iov, 1,
						       NULL),
				 0);
		if (vmbus_ring_publish(&c->w))
			vf_signal_relid(s->f, c->relid);
		if ((i + 1) % BATCH == 0)
			wait_requests(s, before + i + 1);
	}
	assert_true(sf_stats(s).ring_full > 0); /* some wait for ring space */
	sf_restore(s);
	static bool seen[N];
	memset(seen, 0, sizeof(seen));
	for (uint32_t got = 0; got < N; got++) {
		uint64_t id;
		sf_wait(s, 0, &r, NULL, &id);
		assert_true(id >= 1000 && id < 1000 + N && !seen[id - 1000]);
		seen[id - 1000] = true;
		expect_srb_ok(&r, 0);
	}
	sf_expect_quiet(s, 0);
	sf_free(s);
}

/* Requests the guest wrote just before the save, whose signal the host
 * never saw: the restored controller reads them on its own. */
static void restore_reads_unsignalled_requests(void **state)
{
	(void)state;
	struct sfix *s = sf_new(NULL, 1, BLOCKS, false);
	sf_init(s, NULL);
	struct vstor_packet p, r;
	uint8_t tur[6] = {SCSI_TEST_UNIT_READY};
	sf_srb_build(&p, 0, tur, 6, VSTOR_DATA_UNKNOWN, 0);
	struct vf_chan *c = &s->chan[0];
	for (uint64_t id = 1; id <= 5; id++) {
		struct vmbus_ring_iov iov = {&p, sizeof(p)};
		assert_int_equal(vmbus_ring_put_inband(&c->w, id, VMBUS_PKT_FLAG_COMPLETION_REQUESTED,
						       &iov, 1, NULL),
				 0);
	}
	vmbus_ring_publish(&c->w); /* and no signal */
	sf_restore(s);
	for (uint64_t want = 1; want <= 5; want++) {
		uint64_t id;
		sf_wait(s, 0, &r, NULL, &id);
		assert_int_equal(id, want);
		expect_srb_ok(&r, 0);
	}
	sf_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(restore_keeps_the_controller),
		cmocka_unit_test(restore_delivers_waiting_completions),
		cmocka_unit_test(restore_reads_unsignalled_requests),
		cmocka_unit_test(init_linux_sequence),
		cmocka_unit_test(init_every_version),
		cmocka_unit_test(init_refusals),
		cmocka_unit_test(read_write_through_gpa),
		cmocka_unit_test(scsi_errors_keep_disk_usable),
		cmocka_unit_test(read_only_disk),
		cmocka_unit_test(several_luns),
		cmocka_unit_test(linux_scan_finds_exactly_the_disks),
		cmocka_unit_test(empty_slot_answers),
		cmocka_unit_test(several_controllers),
		cmocka_unit_test(subchannels_in_parallel),
		cmocka_unit_test(reload_driver),
		cmocka_unit_test(malicious_gpa_lists),
		cmocka_unit_test(malicious_packets),
		cmocka_unit_test(flow_control),
		cmocka_unit_test(close_with_requests_in_flight),
		cmocka_unit_test(hot_add_and_remove),
		cmocka_unit_test(flushed_writes_survive_a_power_cut),
		cmocka_unit_test(fua_writes_survive_a_power_cut),
		cmocka_unit_test(unflushed_writes_are_lost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
