/* SPDX-License-Identifier: MIT */
/*
 * A SCSI direct-access target over a block backend: the commands Linux's
 * sd driver sends (see include/hvkit/scsi.h), each answered GOOD or with a
 * CHECK CONDITION and fixed-format sense. Pure: no VMBus, no threads; the
 * data buffer is an iovec the caller has already validated (guest memory
 * checked against the transfer length), and the CDB a private copy.
 * Thread-safe: the only state a command changes lives in the backend.
 */
#ifndef HVKIT_SCSI_DISK_H
#define HVKIT_SCSI_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "hvkit/scsi.h"
#include "storage_backend.h"
#include "storage_ring.h"

/* The data buffer of one command: len bytes over iovcnt pieces. */
struct scsi_data {
	const struct iovec *iov;
	int iovcnt;
	uint64_t len;
};

/* What a command did. */
struct scsi_result {
	uint8_t status;      /* SCSI_STATUS_* */
	uint8_t sense_len;   /* 0 or SCSI_SENSE_FIXED_LEN */
	uint32_t transferred; /* bytes moved to or from the buffer */
	uint8_t sense[SCSI_SENSE_FIXED_LEN];
};

struct scsi_disk_config {
	const char *serial; /* up to 20 printable characters; NULL: "hvkit" */
	uint32_t max_transfer_bytes; /* 0: 2 MiB */
};

struct scsi_disk;

/* The disk takes the backend (closing it when freed). */
int scsi_disk_new(const struct scsi_disk_config *cfg, struct storage_backend *be,
		  struct scsi_disk **out);
void scsi_disk_free(struct scsi_disk *d);

const struct storage_backend *scsi_disk_backend(const struct scsi_disk *d);

/*
 * Runs one command. cdb_len is what the initiator sent (1..16); a CDB
 * shorter than its opcode needs, a reserved or unsupported bit set, or a
 * transfer longer than buf gives CHECK CONDITION with ILLEGAL REQUEST.
 * Commands with no data take buf->len 0.
 */
void scsi_disk_execute(struct scsi_disk *d, const uint8_t *cdb, uint32_t cdb_len,
		       const struct scsi_data *buf, struct scsi_result *res);

/*
 * An I/O scsi_disk_start leaves to its caller: aio is ready to queue on a
 * storage_ring (the caller sets aio.done), and scsi_disk_finish turns its
 * result into the command's. Internal fields are the disk's.
 */
struct scsi_io {
	struct storage_aio aio;
	bool write;            /* for the sense of an error */
	uint32_t transferred;  /* reported on success */
	struct iovec *owned;   /* an iovec copy aio uses, freed by finish */
};

/*
 * scsi_disk_execute for callers with a ring: a READ or WRITE, SYNCHRONIZE
 * CACHE or single-descriptor UNMAP that passed every check, on a backend
 * that offers its fd for io_uring, is not run but described in io, and
 * true returned; the caller queues io->aio and, once it completed, calls
 * scsi_disk_finish. Anything else runs here (false returned, res final).
 */
bool scsi_disk_start(struct scsi_disk *d, const uint8_t *cdb, uint32_t cdb_len,
		     const struct scsi_data *buf, struct scsi_result *res, struct scsi_io *io);
/* The result of a started command whose I/O ended with err (0 or -errno). */
void scsi_disk_finish(struct scsi_disk *d, struct scsi_io *io, int err, struct scsi_result *res);

/* CDB length for an opcode by its group code, 0 for the vendor groups. */
uint32_t scsi_cdb_length(uint8_t opcode);

/* Fills res with CHECK CONDITION and fixed sense (key, asc << 8 | ascq). */
void scsi_set_sense(struct scsi_result *res, uint8_t key, uint16_t asc_ascq);

/* REPORT LUNS for a target holding the luns[count] given (a bus-level
 * command: the controller answers it on behalf of any of its LUNs). */
void scsi_report_luns(const uint8_t *cdb, uint32_t cdb_len, const uint16_t *luns,
		      uint32_t count, const struct scsi_data *buf, struct scsi_result *res);

/* INQUIRY for a LUN with no disk: peripheral qualifier 3 (not connected),
 * as SPC wants, so a scan of LUN 0 goes on to REPORT LUNS; VPD pages get
 * LOGICAL UNIT NOT SUPPORTED. */
void scsi_inquiry_absent(const uint8_t *cdb, uint32_t cdb_len, const struct scsi_data *buf,
			 struct scsi_result *res);

/* Copies between a flat buffer and a scsi_data at offset; returns bytes
 * copied (stops at the end of either). */
uint64_t scsi_data_copy_in(const struct scsi_data *d, uint64_t offset, const void *src,
			   uint64_t len);
uint64_t scsi_data_copy_out(const struct scsi_data *d, uint64_t offset, void *dst,
			    uint64_t len);

#endif /* HVKIT_SCSI_DISK_H */
