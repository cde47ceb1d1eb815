/* SPDX-License-Identifier: MIT */
/*
 * The SCSI target of a disk. Each command is parsed strictly (length,
 * reserved bits, control byte), its LBA range checked against the capacity
 * and its transfer against the buffer before the backend sees it. Replies
 * follow SPC-4 / SBC-3 as Linux's sd (drivers/scsi/sd.c) reads them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_disk.h"

#define DEFAULT_MAX_TRANSFER (2u << 20)
#define SERIAL_MAX 20
/* UNMAP: descriptors per command, blocks per descriptor (VPD B0). */
#define MAX_UNMAP_DESCRIPTORS 256u
#define MAX_UNMAP_BLOCKS 0x400000u
#define UNMAP_PARAM_MAX (8u + 16u * MAX_UNMAP_DESCRIPTORS)

struct scsi_disk {
	struct storage_backend be;
	char serial[SERIAL_MAX + 1];
	uint32_t max_transfer_bytes;
	uint64_t blocks;
	uint32_t bs;
};

/* ---- data buffer ---- */

static uint64_t data_copy(const struct scsi_data *d, uint64_t offset, void *flat, uint64_t len,
			  bool in)
{
	uint64_t done = 0;
	for (int i = 0; i < d->iovcnt && done < len; i++) {
		uint64_t l = d->iov[i].iov_len;
		if (offset >= l) {
			offset -= l;
			continue;
		}
		uint64_t n = l - offset;
		if (n > len - done)
			n = len - done;
		uint8_t *p = (uint8_t *)d->iov[i].iov_base + offset;
		if (in)
			memcpy(p, (const uint8_t *)flat + done, n);
		else
			memcpy((uint8_t *)flat + done, p, n);
		done += n;
		offset = 0;
	}
	return done;
}

uint64_t scsi_data_copy_in(const struct scsi_data *d, uint64_t offset, const void *src,
			   uint64_t len)
{
	return data_copy(d, offset, (void *)src, len, true);
}

uint64_t scsi_data_copy_out(const struct scsi_data *d, uint64_t offset, void *dst, uint64_t len)
{
	return data_copy(d, offset, dst, len, false);
}

/* ---- results ---- */

void scsi_set_sense(struct scsi_result *res, uint8_t key, uint16_t asc_ascq)
{
	struct scsi_sense_fixed s = {
		.response_code = SCSI_SENSE_FIXED_CURRENT,
		.sense_key = key,
		.additional_length = SCSI_SENSE_FIXED_LEN - 8,
		.asc = (uint8_t)(asc_ascq >> 8),
		.ascq = (uint8_t)asc_ascq,
	};
	res->status = SCSI_STATUS_CHECK_CONDITION;
	res->sense_len = SCSI_SENSE_FIXED_LEN;
	res->transferred = 0;
	memcpy(res->sense, &s, sizeof(s));
}

static void invalid_field(struct scsi_result *res)
{
	scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_CDB);
}

static void good(struct scsi_result *res, uint64_t transferred)
{
	res->status = SCSI_STATUS_GOOD;
	res->sense_len = 0;
	res->transferred = (uint32_t)transferred;
}

/* Returns a reply built in a flat buffer: at most the allocation length
 * and the data buffer. */
static void reply(struct scsi_result *res, const struct scsi_data *buf, const void *data,
		  uint64_t len, uint64_t alloc_len)
{
	if (len > alloc_len)
		len = alloc_len;
	good(res, scsi_data_copy_in(buf, 0, data, len));
}

static void backend_error(struct scsi_result *res, int err, bool write)
{
	if (err == -EROFS || err == -EPERM)
		scsi_set_sense(res, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
	else if (err == -ENOSPC)
		scsi_set_sense(res, SCSI_SENSE_MEDIUM_ERROR, SCSI_ASC_WRITE_ERROR);
	else
		scsi_set_sense(res, SCSI_SENSE_MEDIUM_ERROR,
			       write ? SCSI_ASC_WRITE_ERROR : SCSI_ASC_READ_ERROR);
}

/* ---- CDB checks ---- */

uint32_t scsi_cdb_length(uint8_t opcode)
{
	switch (opcode >> 5) {
	case 0:
		return 6;
	case 1:
	case 2:
		return 10;
	case 4:
		return 16;
	case 5:
		return 12;
	default:
		return 0;
	}
}

/* The control byte (last byte): NACA and LINK are not supported. */
static bool control_ok(const uint8_t *cdb, uint32_t len)
{
	return (cdb[len - 1] & 0x05) == 0;
}

static bool range_ok(const struct scsi_disk *d, uint64_t lba, uint64_t count)
{
	return lba <= d->blocks && count <= d->blocks - lba;
}

/* ---- INQUIRY ---- */

static uint32_t inquiry_standard(const struct scsi_disk *d, uint8_t *p)
{
	(void)d;
	memset(p, 0, 96);
	p[0] = SCSI_TYPE_DISK;
	p[2] = SCSI_VERSION_SPC4;
	p[3] = 0x02 | 0x10; /* response data format 2, HiSup */
	p[4] = 96 - 5;
	p[7] = 0x02; /* CmdQue */
	memcpy(p + 8, "hvkit   ", 8);
	memcpy(p + 16, "Virtual Disk    ", 16);
	memcpy(p + 32, "1.0 ", 4);
	return 96;
}

static const uint8_t vpd_pages[] = {
	SCSI_VPD_SUPPORTED_PAGES, SCSI_VPD_UNIT_SERIAL,	     SCSI_VPD_DEVICE_ID,
	SCSI_VPD_BLOCK_LIMITS,	  SCSI_VPD_BLOCK_DEV_CHARS, SCSI_VPD_LOGICAL_BLOCK_PROV,
};

/* Builds VPD page `page` into p (room for 256 bytes); 0 if unsupported. */
static uint32_t inquiry_vpd(const struct scsi_disk *d, uint8_t page, uint8_t *p)
{
	bool discard = d->be.ops->discard && !d->be.read_only;
	uint32_t n;
	memset(p, 0, 256);
	p[0] = SCSI_TYPE_DISK;
	p[1] = page;
	switch (page) {
	case SCSI_VPD_SUPPORTED_PAGES:
		memcpy(p + 4, vpd_pages, sizeof(vpd_pages));
		n = sizeof(vpd_pages);
		break;
	case SCSI_VPD_UNIT_SERIAL:
		n = (uint32_t)strlen(d->serial);
		memcpy(p + 4, d->serial, n);
		break;
	case SCSI_VPD_DEVICE_ID: {
		/* One T10 vendor ID designator: vendor, then the serial. */
		uint32_t sl = (uint32_t)strlen(d->serial);
		p[4] = 0x02; /* code set ASCII */
		p[5] = 0x01; /* association LUN, type T10 vendor ID */
		p[7] = (uint8_t)(8 + sl);
		memcpy(p + 8, "hvkit   ", 8);
		memcpy(p + 16, d->serial, sl);
		n = 4 + 8 + sl;
		break;
	}
	case SCSI_VPD_BLOCK_LIMITS: {
		uint32_t max_blocks = d->max_transfer_bytes / d->bs;
		p[4] = 0x01; /* WSNZ: WRITE SAME of 0 blocks is refused */
		scsi_put_be32(p + 8, max_blocks);   /* maximum transfer length */
		scsi_put_be32(p + 12, max_blocks);  /* optimal transfer length */
		if (discard) {
			scsi_put_be32(p + 20, MAX_UNMAP_BLOCKS);
			scsi_put_be32(p + 24, MAX_UNMAP_DESCRIPTORS);
			scsi_put_be32(p + 28, 1); /* optimal unmap granularity */
		}
		scsi_put_be64(p + 36, MAX_UNMAP_BLOCKS); /* maximum WRITE SAME length */
		n = 0x3c;
		break;
	}
	case SCSI_VPD_BLOCK_DEV_CHARS:
		scsi_put_be16(p + 4, 1); /* non-rotating medium */
		n = 0x3c;
		break;
	case SCSI_VPD_LOGICAL_BLOCK_PROV:
		if (discard) {
			/* LBPU, LBPWS; LBPRZ: unmapped blocks read zero. */
			p[5] = 0x80 | 0x40 | 0x04;
			p[6] = 0x02; /* thin provisioned */
		}
		n = 4;
		break;
	default:
		return 0;
	}
	scsi_put_be16(p + 2, (uint16_t)n);
	return 4 + n;
}

static void cmd_inquiry(struct scsi_disk *d, const uint8_t *cdb, const struct scsi_data *buf,
			struct scsi_result *res)
{
	uint8_t page[256];
	uint32_t alloc = scsi_get_be16(cdb + 3);
	uint32_t n;
	if (cdb[1] & ~SCSI_INQUIRY_EVPD) {
		invalid_field(res);
		return;
	}
	if (cdb[1] & SCSI_INQUIRY_EVPD) {
		n = inquiry_vpd(d, cdb[2], page);
		if (!n) {
			invalid_field(res);
			return;
		}
	} else {
		if (cdb[2]) { /* a page code without EVPD */
			invalid_field(res);
			return;
		}
		n = inquiry_standard(d, page);
	}
	reply(res, buf, page, n, alloc);
}

/* ---- capacity ---- */

static void cmd_read_capacity_10(struct scsi_disk *d, const uint8_t *cdb,
				 const struct scsi_data *buf, struct scsi_result *res)
{
	uint8_t p[8];
	/* PMI and the LBA field are obsolete; both must be zero. */
	if ((cdb[8] & 0x01) || scsi_get_be32(cdb + 2) || cdb[1]) {
		invalid_field(res);
		return;
	}
	uint64_t last = d->blocks - 1;
	scsi_put_be32(p, last > 0xfffffffeu ? 0xffffffffu : (uint32_t)last);
	scsi_put_be32(p + 4, d->bs);
	reply(res, buf, p, sizeof(p), sizeof(p));
}

static void cmd_read_capacity_16(struct scsi_disk *d, const uint8_t *cdb,
				 const struct scsi_data *buf, struct scsi_result *res)
{
	uint8_t p[32] = {0};
	if ((cdb[1] & 0xe0) || (cdb[14] & 0x01) || scsi_get_be64(cdb + 2)) {
		invalid_field(res);
		return;
	}
	scsi_put_be64(p, d->blocks - 1);
	scsi_put_be32(p + 8, d->bs);
	if (d->be.ops->discard && !d->be.read_only)
		p[14] = 0x80 | 0x40; /* LBPME, LBPRZ */
	reply(res, buf, p, sizeof(p), scsi_get_be32(cdb + 10));
}

/* ---- READ / WRITE ---- */

struct rw {
	uint64_t lba;
	uint32_t blocks;
	bool write, fua;
};

/* Decodes a READ/WRITE CDB; false for bad fields. */
static bool rw_decode(const uint8_t *cdb, struct rw *rw)
{
	uint8_t op = cdb[0];
	rw->write = op == SCSI_WRITE_6 || op == SCSI_WRITE_10 || op == SCSI_WRITE_12 ||
		    op == SCSI_WRITE_16;
	rw->fua = false;
	if (op == SCSI_READ_6 || op == SCSI_WRITE_6) {
		rw->lba = (uint64_t)(cdb[1] & 0x1f) << 16 | scsi_get_be16(cdb + 2);
		rw->blocks = cdb[4] ? cdb[4] : 256; /* 0 means 256 */
		return (cdb[1] & 0xe0) == 0;
	}
	/* Byte 1: RDPROTECT/WRPROTECT (7-5) unsupported; DPO 0x10 and FUA
	 * 0x08 fine; bit 2 reserved (RARC for reads is harmless: ignore);
	 * bit 1 FUA_NV obsolete; bit 0 reserved. */
	if (cdb[1] & 0xe0 || cdb[1] & 0x01)
		return false;
	rw->fua = cdb[1] & 0x08;
	switch (op) {
	case SCSI_READ_10:
	case SCSI_WRITE_10:
		rw->lba = scsi_get_be32(cdb + 2);
		rw->blocks = scsi_get_be16(cdb + 7);
		return (cdb[6] & 0xe0) == 0;
	case SCSI_READ_12:
	case SCSI_WRITE_12:
		rw->lba = scsi_get_be32(cdb + 2);
		rw->blocks = scsi_get_be32(cdb + 6);
		return (cdb[10] & 0xe0) == 0;
	default: /* 16 */
		rw->lba = scsi_get_be64(cdb + 2);
		rw->blocks = scsi_get_be32(cdb + 10);
		return (cdb[14] & 0xe0) == 0;
	}
}

/* The first len bytes of buf as an iovec array (a copy when shorter). */
static struct iovec *iov_prefix(const struct scsi_data *buf, uint64_t len, int *cnt)
{
	struct iovec *v = malloc(sizeof(*v) * (size_t)(buf->iovcnt ? buf->iovcnt : 1));
	if (!v)
		return NULL;
	int n = 0;
	for (int i = 0; i < buf->iovcnt && len; i++) {
		size_t l = buf->iov[i].iov_len < len ? buf->iov[i].iov_len : len;
		v[n].iov_base = buf->iov[i].iov_base;
		v[n].iov_len = l;
		n++;
		len -= l;
	}
	*cnt = n;
	return v;
}

/* Whether a checked command goes to the caller's ring (io non-NULL). */
static bool use_ring(const struct scsi_disk *d, struct scsi_io *io)
{
	return io && d->be.uring;
}

/* Describes a checked I/O in io for the caller's ring. */
static void start_io(struct scsi_disk *d, struct scsi_io *io, enum storage_aio_op op,
		     uint64_t offset, uint64_t len, uint32_t transferred)
{
	memset(io, 0, sizeof(*io));
	io->aio.op = op;
	io->aio.fd = d->be.fd;
	io->aio.offset = offset;
	io->aio.len = len;
	io->write = op != STORAGE_AIO_READ;
	io->transferred = transferred;
}

static void cmd_rw(struct scsi_disk *d, const uint8_t *cdb, const struct scsi_data *buf,
		   struct scsi_result *res, struct scsi_io *io)
{
	struct rw rw;
	if (!rw_decode(cdb, &rw)) {
		invalid_field(res);
		return;
	}
	if (!range_ok(d, rw.lba, rw.blocks)) {
		scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return;
	}
	uint64_t bytes = (uint64_t)rw.blocks * d->bs;
	if (bytes > buf->len || bytes > d->max_transfer_bytes) {
		invalid_field(res);
		return;
	}
	if (rw.write && d->be.read_only) {
		scsi_set_sense(res, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return;
	}
	if (!bytes) {
		good(res, 0);
		return;
	}
	const struct iovec *iov = buf->iov;
	struct iovec *prefix = NULL;
	int cnt = buf->iovcnt;
	if (bytes < buf->len) {
		prefix = iov_prefix(buf, bytes, &cnt);
		if (!prefix) {
			scsi_set_sense(res, SCSI_SENSE_HARDWARE_ERROR,
				       SCSI_ASC_INTERNAL_TARGET_FAILURE);
			return;
		}
		iov = prefix;
	}
	uint64_t off = rw.lba * d->bs;
	if (use_ring(d, io)) {
		start_io(d, io, rw.write ? STORAGE_AIO_WRITE : STORAGE_AIO_READ, off, bytes,
			 (uint32_t)bytes);
		io->aio.fua = rw.fua;
		io->aio.iov = iov;
		io->aio.iovcnt = cnt;
		io->owned = prefix;
		return;
	}
	int err = rw.write ? d->be.ops->writev(d->be.ctx, iov, cnt, off, rw.fua)
			   : d->be.ops->readv(d->be.ctx, iov, cnt, off);
	free(prefix);
	if (err)
		backend_error(res, err, rw.write);
	else
		good(res, bytes);
}

/* ---- cache, unmap, write same ---- */

static void cmd_sync_cache(struct scsi_disk *d, const uint8_t *cdb, struct scsi_result *res,
			   struct scsi_io *io)
{
	bool is16 = cdb[0] == SCSI_SYNCHRONIZE_CACHE_16;
	uint64_t lba = is16 ? scsi_get_be64(cdb + 2) : scsi_get_be32(cdb + 2);
	uint64_t count = is16 ? scsi_get_be32(cdb + 10) : scsi_get_be16(cdb + 7);
	/* Byte 1: IMMED (0x02) is fine; the rest reserved or obsolete. */
	if (cdb[1] & ~0x02) {
		invalid_field(res);
		return;
	}
	if (!range_ok(d, lba, count)) {
		scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return;
	}
	if (use_ring(d, io)) {
		start_io(d, io, STORAGE_AIO_FLUSH, 0, 0, 0);
		return;
	}
	int err = d->be.ops->flush(d->be.ctx);
	if (err)
		backend_error(res, err, true);
	else
		good(res, 0);
}

static int discard_blocks(struct scsi_disk *d, uint64_t lba, uint64_t count)
{
	if (!count)
		return 0;
	return d->be.ops->discard(d->be.ctx, lba * d->bs, count * d->bs);
}

static void cmd_unmap(struct scsi_disk *d, const uint8_t *cdb, const struct scsi_data *buf,
		      struct scsi_result *res, struct scsi_io *io)
{
	uint32_t plen = scsi_get_be16(cdb + 7);
	if (cdb[1] & ~0x01 || cdb[6] & 0xe0) { /* ANCHOR allowed, ignored */
		invalid_field(res);
		return;
	}
	if (!d->be.ops->discard) {
		scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
		return;
	}
	if (d->be.read_only) {
		scsi_set_sense(res, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return;
	}
	if (plen == 0) {
		good(res, 0);
		return;
	}
	if (plen > buf->len) {
		invalid_field(res);
		return;
	}
	if (plen < 8 || plen > UNMAP_PARAM_MAX) {
		scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_PARAMETER_LIST_LENGTH);
		return;
	}
	/* A private copy: the guest may change its buffer meanwhile. */
	uint8_t p[UNMAP_PARAM_MAX];
	scsi_data_copy_out(buf, 0, p, plen);
	uint32_t dlen = scsi_get_be16(p);
	uint32_t blen = scsi_get_be16(p + 2);
	if (dlen + 2 > plen || blen + 8 > plen || blen % 16) {
		scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_FIELD_IN_PARAM);
		return;
	}
	uint32_t n = blen / 16;
	/* Check every descriptor before unmapping any. */
	for (uint32_t i = 0; i < n; i++) {
		uint64_t lba = scsi_get_be64(p + 8 + 16 * i);
		uint32_t count = scsi_get_be32(p + 16 + 16 * i);
		if (count > MAX_UNMAP_BLOCKS) {
			scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST,
				       SCSI_ASC_INVALID_FIELD_IN_PARAM);
			return;
		}
		if (!range_ok(d, lba, count)) {
			scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
			return;
		}
	}
	/* Linux's sd sends one descriptor per UNMAP: that one goes to the
	 * ring; several (other initiators) are punched here in turn. */
	uint32_t count0 = n ? scsi_get_be32(p + 16) : 0;
	if (n == 1 && count0 && use_ring(d, io)) {
		start_io(d, io, STORAGE_AIO_DISCARD, scsi_get_be64(p + 8) * d->bs,
			 (uint64_t)count0 * d->bs, plen);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		int err = discard_blocks(d, scsi_get_be64(p + 8 + 16 * i),
					 scsi_get_be32(p + 16 + 16 * i));
		if (err) {
			backend_error(res, err, true);
			return;
		}
	}
	good(res, plen);
}

static bool all_zero(const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Writes `block` over [lba, lba + count) a chunk at a time. */
static int write_repeated(struct scsi_disk *d, const uint8_t *block, uint64_t lba,
			  uint64_t count)
{
	enum { CHUNK = 64 };
	struct iovec v[CHUNK];
	for (int i = 0; i < CHUNK; i++)
		v[i] = (struct iovec){(void *)block, d->bs};
	while (count) {
		int n = count < CHUNK ? (int)count : CHUNK;
		int err = d->be.ops->writev(d->be.ctx, v, n, lba * d->bs, false);
		if (err)
			return err;
		lba += (uint64_t)n;
		count -= (uint64_t)n;
	}
	return 0;
}

static void cmd_write_same_16(struct scsi_disk *d, const uint8_t *cdb,
			      const struct scsi_data *buf, struct scsi_result *res)
{
	bool unmap = cdb[1] & 0x08, ndob = cdb[1] & 0x01;
	uint64_t lba = scsi_get_be64(cdb + 2);
	uint32_t count = scsi_get_be32(cdb + 10);
	/* WRPROTECT, ANCHOR (0x10), reserved bits: unsupported. */
	if (cdb[1] & ~0x09 || cdb[14] & 0xe0 || count == 0 || count > MAX_UNMAP_BLOCKS ||
	    (ndob && !unmap)) {
		invalid_field(res);
		return;
	}
	if (!range_ok(d, lba, count)) {
		scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LBA_OUT_OF_RANGE);
		return;
	}
	if (!ndob && buf->len < d->bs) {
		invalid_field(res);
		return;
	}
	if (d->be.read_only) {
		scsi_set_sense(res, SCSI_SENSE_DATA_PROTECT, SCSI_ASC_WRITE_PROTECTED);
		return;
	}
	uint8_t *block = calloc(1, d->bs);
	if (!block) {
		scsi_set_sense(res, SCSI_SENSE_HARDWARE_ERROR, SCSI_ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	if (!ndob)
		scsi_data_copy_out(buf, 0, block, d->bs);
	int err;
	/* Unmapped blocks read zero (LBPRZ), so only a zero block may be
	 * unmapped instead of written. */
	if (unmap && d->be.ops->discard && all_zero(block, d->bs))
		err = discard_blocks(d, lba, count);
	else
		err = write_repeated(d, block, lba, count);
	free(block);
	if (err)
		backend_error(res, err, true);
	else
		good(res, ndob ? 0 : d->bs);
}

/* ---- MODE SENSE ---- */

/* Appends page `code` (current values, or the changeable mask: all zero,
 * nothing is changeable) at p; returns its length. */
static uint32_t mode_page(uint8_t code, bool changeable, uint8_t *p)
{
	if (code == SCSI_MODE_PAGE_CACHING) {
		memset(p, 0, 20);
		p[0] = SCSI_MODE_PAGE_CACHING;
		p[1] = 18;
		if (!changeable)
			p[2] = 0x04; /* WCE: flushes are honoured */
		return 20;
	}
	/* Control: D_SENSE 0 (fixed sense), QERR 0, TST 0. */
	memset(p, 0, 12);
	p[0] = SCSI_MODE_PAGE_CONTROL;
	p[1] = 10;
	if (!changeable)
		scsi_put_be16(p + 8, 0xffff); /* busy timeout period: unlimited */
	return 12;
}

static void cmd_mode_sense(struct scsi_disk *d, const uint8_t *cdb, const struct scsi_data *buf,
			   struct scsi_result *res)
{
	bool ten = cdb[0] == SCSI_MODE_SENSE_10;
	uint8_t pc = cdb[2] >> 6, code = cdb[2] & 0x3f, sub = cdb[3];
	uint32_t alloc = ten ? scsi_get_be16(cdb + 7) : cdb[4];
	/* Byte 1: DBD (0x08) and, for 10, LLBAA (0x10); no block
	 * descriptors are returned either way. */
	if (cdb[1] & ~(ten ? 0x18 : 0x08)) {
		invalid_field(res);
		return;
	}
	if (pc == SCSI_MODE_PC_SAVED) {
		scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_SAVING_NOT_SUPPORTED);
		return;
	}
	uint8_t p[64] = {0};
	uint32_t hdr = ten ? 8 : 4, n = hdr;
	bool changeable = pc == SCSI_MODE_PC_CHANGEABLE;
	if (code == SCSI_MODE_PAGE_ALL && (sub == 0 || sub == 0xff)) {
		n += mode_page(SCSI_MODE_PAGE_CACHING, changeable, p + n);
		n += mode_page(SCSI_MODE_PAGE_CONTROL, changeable, p + n);
	} else if ((code == SCSI_MODE_PAGE_CACHING || code == SCSI_MODE_PAGE_CONTROL) &&
		   sub == 0) {
		n += mode_page(code, changeable, p + n);
	} else {
		invalid_field(res);
		return;
	}
	uint8_t dsp = SCSI_MODE_DSP_DPOFUA | (d->be.read_only ? SCSI_MODE_DSP_WP : 0);
	if (ten) {
		scsi_put_be16(p, (uint16_t)(n - 2));
		p[3] = dsp;
	} else {
		p[0] = (uint8_t)(n - 1);
		p[2] = dsp;
	}
	reply(res, buf, p, n, alloc);
}

/* ---- the rest ---- */

void scsi_report_luns(const uint8_t *cdb, uint32_t cdb_len, const uint16_t *luns,
		      uint32_t count, const struct scsi_data *buf, struct scsi_result *res)
{
	if (cdb_len < 12 || !control_ok(cdb, 12)) {
		invalid_field(res);
		return;
	}
	uint32_t alloc = scsi_get_be32(cdb + 6);
	/* Select report 0, 1 (well-known: none) or 2 (all); alloc >= 16. */
	if (cdb[2] > 2 || alloc < 16) {
		invalid_field(res);
		return;
	}
	uint32_t n = cdb[2] == 1 ? 0 : count;
	uint8_t head[8] = {0};
	scsi_put_be32(head, n * 8);
	uint64_t done = scsi_data_copy_in(buf, 0, head, alloc < 8 ? alloc : 8);
	for (uint32_t i = 0; i < n && 8 + 8 * (uint64_t)i < alloc; i++) {
		uint8_t e[8] = {0};
		/* Peripheral device addressing: bus 0, LUN in byte 1 (256+
		 * would need flat addressing; we stay below 256). */
		e[1] = (uint8_t)luns[i];
		uint64_t room = alloc - 8 - 8 * (uint64_t)i;
		done += scsi_data_copy_in(buf, 8 + 8 * (uint64_t)i, e, room < 8 ? room : 8);
	}
	good(res, done);
}

void scsi_inquiry_absent(const uint8_t *cdb, uint32_t cdb_len, const struct scsi_data *buf,
			 struct scsi_result *res)
{
	if (cdb_len < 6 || !control_ok(cdb, 6) || (cdb[1] & ~SCSI_INQUIRY_EVPD)) {
		invalid_field(res);
		return;
	}
	if ((cdb[1] & SCSI_INQUIRY_EVPD) || cdb[2]) {
		scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED);
		return;
	}
	uint8_t p[SCSI_INQUIRY_STANDARD_LEN] = {0};
	p[0] = SCSI_PQ_NOT_CONNECTED;
	p[2] = SCSI_VERSION_SPC4;
	p[3] = 0x02 | 0x10;
	p[4] = SCSI_INQUIRY_STANDARD_LEN - 5;
	reply(res, buf, p, sizeof(p), scsi_get_be16(cdb + 3));
}

static void cmd_request_sense(const uint8_t *cdb, const struct scsi_data *buf,
			      struct scsi_result *res)
{
	/* Sense is always returned with the failed command (autosense), so
	 * nothing is pending: NO SENSE, fixed format even if DESC is asked. */
	if (cdb[1] & ~0x01) {
		invalid_field(res);
		return;
	}
	struct scsi_sense_fixed s = {
		.response_code = SCSI_SENSE_FIXED_CURRENT,
		.sense_key = SCSI_SENSE_NO_SENSE,
		.additional_length = SCSI_SENSE_FIXED_LEN - 8,
	};
	reply(res, buf, &s, sizeof(s), cdb[4]);
}

static void cmd_start_stop(const uint8_t *cdb, struct scsi_result *res)
{
	/* IMMED in byte 1; power condition in byte 4 bits 7-4 (only 0,
	 * START_VALID); LOEJ (0x02) on a fixed disk is refused. */
	if (cdb[1] & ~0x01 || cdb[3] & 0xf0 || cdb[4] & 0x0c || cdb[4] & 0x02 ||
	    (cdb[4] >> 4) != 0) {
		invalid_field(res);
		return;
	}
	good(res, 0);
}

/* Runs a command, or (io non-NULL) leaves its I/O in io: see scsi_disk_start. */
static void dispatch(struct scsi_disk *d, const uint8_t *cdb, uint32_t cdb_len,
		     const struct scsi_data *buf, struct scsi_result *res, struct scsi_io *io)
{
	memset(res, 0, sizeof(*res));
	if (cdb_len == 0 || cdb_len > 16) {
		invalid_field(res);
		return;
	}
	uint8_t op = cdb[0];
	uint32_t need = scsi_cdb_length(op);
	if (need == 0) {
		scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
		return;
	}
	if (cdb_len < need || !control_ok(cdb, need)) {
		invalid_field(res);
		return;
	}
	switch (op) {
	case SCSI_TEST_UNIT_READY:
		if (scsi_get_be32(cdb + 1))
			invalid_field(res);
		else
			good(res, 0);
		return;
	case SCSI_REQUEST_SENSE:
		cmd_request_sense(cdb, buf, res);
		return;
	case SCSI_INQUIRY:
		cmd_inquiry(d, cdb, buf, res);
		return;
	case SCSI_MODE_SENSE_6:
	case SCSI_MODE_SENSE_10:
		cmd_mode_sense(d, cdb, buf, res);
		return;
	case SCSI_START_STOP_UNIT:
		cmd_start_stop(cdb, res);
		return;
	case SCSI_READ_CAPACITY_10:
		cmd_read_capacity_10(d, cdb, buf, res);
		return;
	case SCSI_SERVICE_ACTION_IN_16:
		if ((cdb[1] & 0x1f) == SCSI_SAI_READ_CAPACITY_16)
			cmd_read_capacity_16(d, cdb, buf, res);
		else
			invalid_field(res);
		return;
	case SCSI_READ_6:
	case SCSI_WRITE_6:
	case SCSI_READ_10:
	case SCSI_WRITE_10:
	case SCSI_READ_12:
	case SCSI_WRITE_12:
	case SCSI_READ_16:
	case SCSI_WRITE_16:
		cmd_rw(d, cdb, buf, res, io);
		return;
	case SCSI_SYNCHRONIZE_CACHE_10:
	case SCSI_SYNCHRONIZE_CACHE_16:
		cmd_sync_cache(d, cdb, res, io);
		return;
	case SCSI_UNMAP:
		cmd_unmap(d, cdb, buf, res, io);
		return;
	case SCSI_WRITE_SAME_16:
		cmd_write_same_16(d, cdb, buf, res);
		return;
	default:
		scsi_set_sense(res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_INVALID_OPCODE);
		return;
	}
}

void scsi_disk_execute(struct scsi_disk *d, const uint8_t *cdb, uint32_t cdb_len,
		       const struct scsi_data *buf, struct scsi_result *res)
{
	dispatch(d, cdb, cdb_len, buf, res, NULL);
}

bool scsi_disk_start(struct scsi_disk *d, const uint8_t *cdb, uint32_t cdb_len,
		     const struct scsi_data *buf, struct scsi_result *res, struct scsi_io *io)
{
	/* start_io sets fd from the backend (which offers a real one): a
	 * command run here leaves the -1. */
	io->aio.fd = -1;
	dispatch(d, cdb, cdb_len, buf, res, io);
	return io->aio.fd >= 0;
}

void scsi_disk_finish(struct scsi_disk *d, struct scsi_io *io, int err, struct scsi_result *res)
{
	free(io->owned);
	io->owned = NULL;
	/* A file system that cannot punch holes: the backend's own discard
	 * writes zeros instead (slow, rare). */
	if (io->aio.op == STORAGE_AIO_DISCARD && (err == -EOPNOTSUPP || err == -ENOSYS))
		err = d->be.ops->discard(d->be.ctx, io->aio.offset, io->aio.len);
	memset(res, 0, sizeof(*res));
	if (err)
		backend_error(res, err, io->write);
	else
		good(res, io->transferred);
}

int scsi_disk_new(const struct scsi_disk_config *cfg, struct storage_backend *be,
		  struct scsi_disk **out)
{
	if (!be->block_size || be->size < be->block_size || be->size % be->block_size)
		return -EINVAL;
	struct scsi_disk *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->be = *be;
	d->bs = be->block_size;
	d->blocks = be->size / be->block_size;
	d->max_transfer_bytes = cfg && cfg->max_transfer_bytes ? cfg->max_transfer_bytes
							     : DEFAULT_MAX_TRANSFER;
	const char *serial = cfg && cfg->serial ? cfg->serial : "hvkit";
	size_t n = 0;
	/* Printable ASCII only: it lands in sysfs and udev names. */
	for (; serial[n] && n < SERIAL_MAX; n++)
		d->serial[n] = serial[n] > 0x20 && serial[n] < 0x7f ? serial[n] : '_';
	d->serial[n] = 0;
	*out = d;
	return 0;
}

void scsi_disk_free(struct scsi_disk *d)
{
	if (!d)
		return;
	storage_backend_close(&d->be);
	free(d);
}

const struct storage_backend *scsi_disk_backend(const struct scsi_disk *d)
{
	return &d->be;
}
