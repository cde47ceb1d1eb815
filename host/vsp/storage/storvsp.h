/* SPDX-License-Identifier: MIT */
/*
 * storvsp: the synthetic SCSI controller behind a VMBus offer of class
 * VMBUS_CLASS_SCSI, speaking VSTOR (include/hvkit/proto/storvsc.h) to the
 * guest's storvsc and SCSI (scsi_disk.h) to its disks.
 *
 * Control packets (initialization, version, properties, sub-channels,
 * resets) are answered inline in the channel callback. SCSI requests are
 * validated there (SRB fields, every GPA range against guest memory and
 * against the transfer length) and handed to the controller's worker
 * threads, which run them against the disk and complete them. The
 * callback never blocks on I/O.
 *
 * Disks sit at path 0, target 0, LUN n (as Hyper-V places them).
 */
#ifndef HVKIT_STORVSP_H
#define HVKIT_STORVSP_H

#include <stdarg.h>
#include <stdint.h>

#include "guest_memory.h"
#include "scsi_disk.h"
#include "vmbus_device.h"
#include "vmbus_server.h"

#define STORVSP_MAX_LUNS 64u

struct storvsp_config {
	uint32_t instance;          /* distinguishes controllers of one VM */
	struct hv_guid instance_id; /* null: storvsp_instance_guid(instance) */
	uint32_t workers;           /* I/O threads; 0: 2 */
	uint16_t max_subchannels;   /* offered in QUERY_PROPERTIES; 0: 4 */
	uint32_t max_transfer_bytes; /* 0: 2 MiB; a multiple of 4096 */
	uint32_t max_outstanding;   /* per channel before reading pauses; 0: 1024 */
	void (*log)(void *ctx, const char *fmt, va_list ap); /* NULL: silent */
	void *log_ctx;
};

struct storvsp_stats {
	uint16_t version;         /* negotiated VSTOR version; 0 before */
	uint64_t requests;        /* SRBs run against a disk */
	uint64_t completions;     /* completion packets written */
	uint64_t check_conditions; /* SRBs that ended with sense data */
	uint64_t bad_packets;     /* refused guest input of any kind */
	uint64_t bad_gpas;        /* GPA lists refused (outside RAM, overlap, length) */
	uint64_t ring_full;       /* completions that waited for ring space */
	uint64_t throttled;       /* times a channel paused reading */
	uint64_t subchannels;     /* sub-channels offered on request */
	uint64_t resets;
};

struct storvsp;

/* A controller, offered at once (or at the guest's next REQUESTOFFERS).
 * mem is the guest RAM data buffers are checked against. */
int storvsp_add(struct vmbus_server *s, const struct guest_memory *mem,
		const struct storvsp_config *cfg, struct storvsp **out);

/* Attaches disk at LUN lun (taking it). -EEXIST, -EINVAL (lun too big).
 * Any time: an initialized guest is told to rescan (ENUMERATE_BUS). */
int storvsp_add_disk(struct storvsp *sv, uint32_t lun, struct scsi_disk *disk);

/* Detaches the disk at lun (hot removal): requests in flight on it finish,
 * later ones find no LUN, the guest is told to rescan, and the disk is
 * freed with its last request. -ENOENT if there is none. */
int storvsp_remove_disk(struct storvsp *sv, uint32_t lun);

/* Waits up to timeout_ns for the workers to finish every request they
 * hold (the VM paused, for a snapshot: nothing new comes in): 0, or
 * -EBUSY. Completions the guest's full ring holds back do not count:
 * they are saved with the channel. Not with the device lock held. */
int storvsp_quiesce(struct storvsp *sv, uint64_t timeout_ns);

/* Rescinds the controller, finishes in-flight requests, frees the disks. */
void storvsp_remove(struct vmbus_server *s, struct storvsp *sv);

void storvsp_get_stats(struct storvsp *sv, struct storvsp_stats *out);

/* The instance GUID of controller n (n in its first field). */
struct hv_guid storvsp_instance_guid(uint32_t instance);

#endif /* HVKIT_STORVSP_H */
