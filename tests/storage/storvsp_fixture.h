/* SPDX-License-Identifier: MIT */
/*
 * A scripted storvsc against storvsp, through the VMBus server and its fake
 * glue (tests/vmbus_server/vmbus_fixture.h). The guest side builds its
 * packets as Linux 6.1's drivers/scsi/storvsc_drv.c does: in-band
 * vstor_packets for control, GPA-direct packets with one multi-page range
 * for SRBs that move data (vmbus_sendpacket_mpb_desc). Completions come
 * from storvsp's worker threads, so waiting for one polls the guest's end
 * of the ring (with a generous hang guard, not a timing assertion).
 *
 * Reusable: the guest driver's tests can swap storvsp for their own host,
 * and storvsp's tests (and fuzzer) build on the packet helpers.
 */
#ifndef HVKIT_TESTS_STORVSP_FIXTURE_H
#define HVKIT_TESTS_STORVSP_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "hvkit/proto/storvsc.h"
#include "storvsp.h"
#include "vmbus_fixture.h"

#define SF_MAX_CHANNELS 8u
#define SF_RING_PAGES 8u /* each way, per channel */

struct sfix {
	struct vfix *f;
	struct storvsp *sv;
	uint32_t instance;
	uint8_t *img[STORVSP_MAX_LUNS]; /* disks' bytes (see sf_new) */
	size_t img_map[STORVSP_MAX_LUNS]; /* bytes mapped, for file-backed disks */
	struct vf_chan chan[SF_MAX_CHANNELS];
	uint32_t nchan;
	uint16_t version; /* negotiated */
	uint32_t next_gpadl;
	uint64_t next_trans;
	struct storvsp_config cfg;
	uint32_t disks;
	uint64_t blocks;
	bool read_only;
	int img_fd[STORVSP_MAX_LUNS]; /* file-backed disks: the image, kept open */
};

/* A controller (cfg may be NULL) with `disks` disks of `blocks` 512-byte
 * blocks at LUN 0.., offered to a connected guest whose primary channel is
 * open. The disks are in memory, or, with HVKIT_TEST_STORVSP_AIO set to
 * io_uring or threads, unlinked image files run that way, whose bytes
 * img[] maps (shared, so it sees what the backend wrote). */
struct sfix *sf_new(const struct storvsp_config *cfg, uint32_t disks, uint64_t blocks,
		    bool read_only);
void sf_free(struct sfix *s);

/* Closes every channel (sub-channels first, as Linux) and opens the
 * primary again: a driver reload. Its state starts over (version 0). */
void sf_reopen(struct sfix *s);

/* A snapshot and restore: the controller quiesced, the server's state
 * saved, controller and server dropped without a word to the guest, new
 * ones on the same guest memory and disk images loaded from it. The
 * guest's channels go on as they were. */
void sf_restore(struct sfix *s);

/* The bytes of LUN n's in-memory disk. */
uint8_t *sf_disk(struct sfix *s, uint32_t lun);

/* ---- packets ---- */

/* Sends p (len bytes) in-band on channel i, completion requested. */
void sf_send(struct sfix *s, uint32_t i, uint64_t trans_id, const void *p, uint32_t len);
/* Sends p with one GPA range (byte_offset, byte_count, pfns). Returns
 * the ring's result (0, or -EAGAIN when full). */
int sf_send_gpa(struct sfix *s, uint32_t i, uint64_t trans_id, const void *p, uint32_t len,
		uint32_t byte_offset, uint32_t byte_count, const uint64_t *pfns,
		uint32_t npfns);

/* The next packet from the host on channel i, if any (a completion, or an
 * unsolicited in-band notice with id 0): its payload in
 * *out (zeroed first, up to sizeof(*out)), payload length and id. */
bool sf_poll(struct sfix *s, uint32_t i, struct vstor_packet *out, uint32_t *len,
	     uint64_t *trans_id);
/* Waits for the next packet (fails the test after a long hang guard). */
void sf_wait(struct sfix *s, uint32_t i, struct vstor_packet *out, uint32_t *len,
	     uint64_t *trans_id);
/* Asserts nothing came back on channel i. Meaningful for packets the host
 * drops in its callback (which has run when sf_send returns): only SRBs
 * go to the workers, and each of those is completed. */
void sf_expect_quiet(struct sfix *s, uint32_t i);

/* One control operation on channel i; returns the reply's status and
 * asserts it is a COMPLETE_IO of the version's packet size. */
uint32_t sf_op(struct sfix *s, uint32_t i, struct vstor_packet *p);

/* storvsc_channel_init with just this version; returns the version
 * query's status (0: the rest of the sequence ran and succeeded). */
uint32_t sf_init_version(struct sfix *s, uint16_t version);
/* The Linux 6.1 sequence: newest first. Returns the version agreed. */
uint16_t sf_init(struct sfix *s, struct vmstorage_channel_properties *props);
/* CREATE_SUB_CHANNELS(n); takes the offers and opens each sub-channel. */
uint32_t sf_subchannels(struct sfix *s, uint16_t n);

/* ---- SCSI ---- */

/* A guest data buffer: n contiguous pages; returns the first PFN. */
uint64_t sf_alloc(struct sfix *s, uint32_t pages);
void *sf_ptr(struct sfix *s, uint64_t pfn);

/* An SRB as storvsc_queuecommand builds it. */
void sf_srb_build(struct vstor_packet *p, uint8_t lun, const uint8_t *cdb, uint8_t cdb_len,
		  uint8_t data_in, uint32_t len);

/* Runs one SCSI command on channel i with len bytes of the buffer at pfn
 * (offset 0), waits for and returns its completion. */
void sf_scsi(struct sfix *s, uint32_t i, uint8_t lun, const uint8_t *cdb, uint8_t cdb_len,
	     uint8_t data_in, uint64_t pfn, uint32_t len, struct vstor_packet *reply);

/* A SCSI address as storvsc_queuecommand fills it: path_id is the SCSI
 * channel, target_id the target, lun the LUN. */
struct sf_addr {
	uint8_t path, target, lun;
};

/* sf_scsi for a command addressed to `at`. */
void sf_scsi_at(struct sfix *s, uint32_t i, struct sf_addr at, const uint8_t *cdb,
		uint8_t cdb_len, uint8_t data_in, uint64_t pfn, uint32_t len,
		struct vstor_packet *reply);

struct storvsp_stats sf_stats(struct sfix *s);

#endif /* HVKIT_TESTS_STORVSP_FIXTURE_H */
