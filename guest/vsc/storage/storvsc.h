/* SPDX-License-Identifier: MIT */
/*
 * storvsc: the guest's driver for the synthetic SCSI controller (VSTOR over
 * VMBus, class VMBUS_CLASS_SCSI), freestanding on guest/vmbus and
 * guest/port. It follows Linux 6.1 drivers/scsi/storvsc_drv.c: versions
 * newest first, QUERY_PROPERTIES, sub-channels spread over the VPs, a LUN
 * scan, and SRBs sent as GPA-direct packets (one multi-page range).
 *
 * The block interface is asynchronous: storvsc_submit queues a request and
 * its done callback runs later, in the interrupt handler of the channel
 * that completed it (or in process context for timeouts and removal).
 * storvsc_io_sync wraps it for process context.
 *
 * Errors (io->status after done, or the return of the sync calls):
 *   0           success
 *   -ERANGE     LBA out of range (ILLEGAL REQUEST / 0x21)
 *   -EROFS      write protected (DATA PROTECT)
 *   -EINVAL     ILLEGAL REQUEST otherwise, or a bad request
 *   -EIO        MEDIUM/HARDWARE ERROR, or an SRB error without sense
 *   -ENODEV     the disk or the controller is gone
 *   -ETIMEDOUT  no completion within the timeout (the bus was reset)
 *   -EBADMSG    the host's completion was malformed
 * io->sense holds the decoded fixed-format sense when there was one.
 */
#ifndef HVKIT_STORVSC_H
#define HVKIT_STORVSC_H

#include <stdbool.h>
#include <stdint.h>

#include "vmbus_client.h"

struct storvsc;

#define STORVSC_MAX_DISKS 16
#define STORVSC_MAX_SG 64
#define STORVSC_SERIAL_MAX 32
/* The largest request: what storvsp allows (max_transfer_bytes may lower it). */
#define STORVSC_MAX_TRANSFER (2u << 20)

struct storvsc_config {
	uint16_t max_version;   /* 0: WIN10; lower caps the negotiation */
	uint32_t sub_channels;  /* asked for; UINT32_MAX: Linux's (VPs - 1), 0: none */
	uint32_t queue_depth;   /* requests in flight per controller; 0: 256 */
	uint64_t timeout_ns;    /* per request; 0: 30 s (Linux's sd default) */
	/* The host sent ENUMERATE_BUS (interrupt context): call
	 * storvsc_rescan from process context. Optional. */
	void (*rescan_needed)(void *ctx, struct storvsc *s);
	/* The controller is bound and scanned / has been removed (process
	 * context). Optional. */
	void (*attached)(void *ctx, struct storvsc *s);
	void (*detached)(void *ctx, struct storvsc *s);
	void *ctx;
};

struct storvsc_disk {
	bool present;
	uint8_t lun;
	uint32_t block_size;
	uint64_t blocks;
	bool read_only;   /* MODE SENSE WP */
	bool thin;        /* READ CAPACITY 16 LBPME: UNMAP works */
	/* The unit serial number (VPD page 0x80), printable ASCII, trailing
	 * blanks cut; empty if the disk has none. */
	char serial[STORVSC_SERIAL_MAX + 1];
};

/* Decoded fixed-format sense (SPC-4 4.5.3). */
struct storvsc_sense {
	bool valid;
	uint8_t key, asc, ascq;
};

enum storvsc_op {
	STORVSC_READ,
	STORVSC_WRITE,
	STORVSC_FLUSH,    /* SYNCHRONIZE CACHE 16 over the whole disk */
	STORVSC_DISCARD,  /* UNMAP of lba..lba+blocks */
	STORVSC_SCSI,     /* the CDB below, xfer bytes in sg (pass-through) */
};

/* A piece of guest memory from the port's alloc_pages. Every segment but
 * the first starts on a page boundary and every one but the last ends on
 * one (the transfer is one multi-page range, as Linux sends it). */
struct storvsc_sg {
	void *buf;
	uint32_t len;
};

struct storvsc_io {
	/* in */
	enum storvsc_op op;
	uint8_t lun;
	bool fua;                   /* writes: force unit access */
	uint64_t lba;
	uint32_t blocks;            /* READ/WRITE/DISCARD */
	const struct storvsc_sg *sg; /* READ/WRITE: blocks * block_size bytes */
	uint32_t sg_count;
	uint8_t cdb[16];            /* STORVSC_SCSI */
	uint8_t cdb_len;
	bool data_in;
	uint32_t xfer;
	void (*done)(void *arg, struct storvsc_io *io);
	void *arg;
	/* out (valid in done) */
	int status;
	uint32_t transferred;
	struct storvsc_sense sense;
	uint16_t channel;           /* the sub-channel index it went on */
};

/* Registers the driver with the client; it binds every controller offered
 * (one struct storvsc each, given through cfg->attached). Its state comes
 * from the alloc of g's port (-EINVAL if the port has none). */
struct storvsc_driver;
int storvsc_driver_register(struct vmbus_client *c, struct hv_guest *g,
			    const struct storvsc_config *cfg, struct storvsc_driver **out);
/* After vmbus_client_unload or _free (which remove the controllers). */
void storvsc_driver_free(struct storvsc_driver *d);

/* Queues io (any context). 0: done will be called exactly once. -EAGAIN:
 * no slot or ring space now (retry); -ENODEV: controller or disk gone;
 * -ESHUTDOWN: the bus is suspended (hibernation), until it resumes;
 * -EINVAL: a malformed request. done is not called on failure. */
int storvsc_submit(struct storvsc *s, struct storvsc_io *io);

/* Submits and waits (process context), retrying -EAGAIN. Returns io->status. */
int storvsc_io_sync(struct storvsc *s, struct storvsc_io *io);
int storvsc_read(struct storvsc *s, uint8_t lun, uint64_t lba, uint32_t blocks, void *buf);
int storvsc_write(struct storvsc *s, uint8_t lun, uint64_t lba, uint32_t blocks, const void *buf);
int storvsc_flush(struct storvsc *s, uint8_t lun);
int storvsc_discard(struct storvsc *s, uint8_t lun, uint64_t lba, uint32_t blocks);

/* Fails requests older than the timeout: the bus is reset (RESET_BUS) and
 * each fails with -ETIMEDOUT. The sync calls run it while they wait; an OS
 * calls it periodically. Returns the number failed. Process context. */
uint32_t storvsc_check_timeouts(struct storvsc *s);

/* REPORT LUNS, INQUIRY, READ CAPACITY 16, MODE SENSE, INQUIRY of the
 * serial-number page of each LUN
 * (process context). The disk table changes under no request in flight:
 * I/O to a LUN that went away fails with -ENODEV from the host. */
int storvsc_rescan(struct storvsc *s);

/* The disk at lun (false if none). */
bool storvsc_disk(struct storvsc *s, uint8_t lun, struct storvsc_disk *out);

struct storvsc_stats {
	uint16_t version;         /* VSTOR protocol negotiated */
	uint32_t channels;        /* open: primary + sub-channels */
	uint32_t channels_wanted; /* the primary and the sub-channels the host granted */
	uint32_t max_transfer;
	uint64_t submitted, completed, errors, timeouts, resets;
	uint64_t bad_packets;     /* malformed or unexpected host packets dropped */
	uint64_t enumerate_bus;   /* rescans the host asked for */
	uint64_t per_channel[8];  /* completions per channel (first 8) */
};
void storvsc_get_stats(struct storvsc *s, struct storvsc_stats *out);

/* The port the controller was bound through (for allocating I/O buffers). */
const struct hv_port *storvsc_port(struct storvsc *s);

#endif /* HVKIT_STORVSC_H */
