/* SPDX-License-Identifier: MIT */
/*
 * The VMBus ring buffer engine, shared by the host and the guest side.
 *
 * One ring carries packets one way. Each side of a channel holds a writer
 * for one ring and a reader for the other. Both ends keep their own index
 * privately and only ever *publish* it into the shared header; the index the
 * other side owns is read, validated, and never trusted to stay put.
 *
 * Nothing here blocks, sleeps or signals: a writer that finds no room gets
 * -EAGAIN and the space it needs, and "the other side must be signalled" is a
 * return value. The caller owns locking (one writer and one reader per ring)
 * and the actual signal (HvSignalEvent, an eventfd, an interrupt).
 *
 * Freestanding: needs only memcpy/memset and the compiler's atomics.
 */
#ifndef HVKIT_RING_BUFFER_H
#define HVKIT_RING_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvkit/ring.h"

/* Where one ring lives in this address space. */
struct vmbus_ring_mem {
	struct vmbus_ring_header *hdr;
	uint8_t *data;
	uint32_t size; /* bytes in the data area: a multiple of 4 KiB */
	/* The data pages are mapped a second time right after the first, so a
	 * packet that wraps can still be read and written in one piece. */
	bool mirrored;
};

/*
 * Describes the ring at base: one header page then data pages, ring_bytes in
 * all (Linux's ring_size). With mirrored, the caller guarantees the data
 * pages repeat once more after base + ring_bytes. -EINVAL if ring_bytes is
 * not a multiple of 4 KiB of at least two pages, or over 2 GiB.
 */
int vmbus_ring_mem_init(struct vmbus_ring_mem *mem, void *base, size_t ring_bytes,
			bool mirrored);

/* Makes a fresh ring, as the side that allocates it (the guest) does:
 * indices zero, pending_send_sz flow control advertised. */
void vmbus_ring_mem_reset(const struct vmbus_ring_mem *mem);

/* A piece of a packet to gather. */
struct vmbus_ring_iov {
	const void *base;
	uint32_t len;
};

/*
 * A packet to write. The ring engine builds the 16-byte descriptor; iov
 * supplies the rest. The first ext_len bytes of iov are descriptor
 * extension (GPA ranges, transfer ranges), so the payload offset (offset8)
 * is 16 + ext_len; ext_len must be a multiple of 8.
 */
struct vmbus_packet_out {
	uint16_t type;
	uint16_t flags;
	uint64_t trans_id;
	uint32_t ext_len;
	const struct vmbus_ring_iov *iov;
	uint32_t iov_count;
};

/* Ring bytes a packet takes: descriptor, iov, padding to 8, trailer. 0 if
 * the packet cannot be described (len8 overflow, unaligned ext_len). */
uint32_t vmbus_packet_out_ring_bytes(const struct vmbus_packet_out *p);

struct vmbus_ring_writer_stats {
	uint64_t packets;
	uint64_t bytes;
	uint64_t publishes;
	uint64_t signals;   /* publish()/space checks that asked for a signal */
	uint64_t full;      /* puts refused for lack of space */
	uint64_t corrupt;   /* bad read_index seen from the other side */
};

struct vmbus_ring_writer {
	struct vmbus_ring_mem mem;
	uint32_t write_index;      /* next byte to write, private */
	uint32_t published;        /* last write_index made visible */
	uint32_t read_index_seen;  /* last validated read_index: a lower bound on free space */
	bool broken;               /* the other side corrupted the ring */
	struct vmbus_ring_writer_stats stats;
};

/*
 * Takes the writing end of a ring whose header already holds the current
 * indices (fresh from vmbus_ring_mem_reset, or left by an earlier writer on
 * restore). -EBADMSG if the header's indices are out of range or unaligned.
 */
int vmbus_ring_writer_attach(struct vmbus_ring_writer *w, const struct vmbus_ring_mem *mem);

/*
 * Queues one packet after those already queued, without publishing it.
 * 0 on success; -EAGAIN if it does not fit now, with *space_needed (if not
 * NULL) set to the free space it needs beyond what is queued (for
 * vmbus_ring_writer_want_space); -EMSGSIZE if it never fits in this ring;
 * -EINVAL if it cannot be framed; -EBADMSG if the ring is corrupt.
 */
int vmbus_ring_put(struct vmbus_ring_writer *w, const struct vmbus_packet_out *p,
		   uint32_t *space_needed);

/*
 * Makes every queued packet visible with one index update. Returns true if
 * the reader must be signalled: it was not polling (interrupt_mask clear)
 * and had drained the ring before these packets.
 */
bool vmbus_ring_publish(struct vmbus_ring_writer *w);

/* put + publish. *signal (if not NULL) is set only on success. */
int vmbus_ring_send(struct vmbus_ring_writer *w, const struct vmbus_packet_out *p,
		    bool *signal);

/* In-band packet of the gathered payload. */
int vmbus_ring_put_inband(struct vmbus_ring_writer *w, uint64_t trans_id, uint16_t flags,
			  const struct vmbus_ring_iov *payload, uint32_t payload_count,
			  uint32_t *space_needed);

/* Completion packet (type 11) for trans_id carrying the payload. */
int vmbus_ring_put_completion(struct vmbus_ring_writer *w, uint64_t trans_id,
			      const void *payload, uint32_t len, uint32_t *space_needed);

/* One GPA range as a GPA-direct packet's writer supplies it. */
struct vmbus_gpa_range_out {
	uint32_t byte_count;
	uint32_t byte_offset; /* into the first page; below 4096 */
	const uint64_t *pfns; /* ceil((byte_offset + byte_count) / 4096) of them */
};

/* Most ranges one GPA-direct packet built by vmbus_ring_put_gpa_direct may
 * hold (Linux: 32 page buffers, or one multi-page buffer). */
#define VMBUS_RING_MAX_GPA_RANGES 32

/*
 * GPA-direct packet (type 9, completion requested): range_count ranges, then
 * the payload. A page-buffer packet is range_count one-page ranges; a
 * multi-page-buffer packet is one range of many pages.
 */
int vmbus_ring_put_gpa_direct(struct vmbus_ring_writer *w, uint64_t trans_id,
			      const struct vmbus_gpa_range_out *ranges, uint32_t range_count,
			      const void *payload, uint32_t len, uint32_t *space_needed);

/* Transfer-page packet (type 7): ranges into transfer page set id. */
int vmbus_ring_put_xfer_pages(struct vmbus_ring_writer *w, uint64_t trans_id,
			      uint16_t pageset_id, const struct vmbus_xfer_page_range *ranges,
			      uint32_t range_count, const void *payload, uint32_t len,
			      uint32_t *space_needed);

/*
 * Flow control for a blocked writer. want_space arms pending_send_sz so the
 * reader signals once `needed` bytes (a put's *space_needed) are free after
 * the queued packets, then checks again; it returns true if the space is
 * there already (retry the put at once). Publish queued packets before
 * waiting: the reader cannot free space it has not been shown. The request
 * stays armed until vmbus_ring_writer_space_done.
 */
bool vmbus_ring_writer_want_space(struct vmbus_ring_writer *w, uint32_t needed);
void vmbus_ring_writer_space_done(struct vmbus_ring_writer *w);

/* Free bytes as of the last read_index seen (refreshed by this call). */
uint32_t vmbus_ring_writer_free(struct vmbus_ring_writer *w);

struct vmbus_ring_reader_stats {
	uint64_t packets;
	uint64_t bytes;
	uint64_t commits;
	uint64_t signals; /* commits that asked for a signal */
	uint64_t corrupt; /* malformed packets or indices from the other side */
};

struct vmbus_ring_reader {
	struct vmbus_ring_mem mem;
	uint32_t read_index;       /* next byte to read, private */
	uint32_t published;        /* last read_index made visible */
	uint32_t write_index_seen; /* last validated write_index: data up to here is whole */
	uint32_t peeked;           /* ring bytes of the packet peek() returned; 0 if none */
	bool broken;
	struct vmbus_ring_reader_stats stats;
};

/* Takes the reading end; -EBADMSG if the header's indices are bad. */
int vmbus_ring_reader_attach(struct vmbus_ring_reader *r, const struct vmbus_ring_mem *mem);

/* A received packet: a view into the caller's private copy. */
struct vmbus_packet {
	uint16_t type;
	uint16_t flags;
	uint64_t trans_id;
	uint32_t len;        /* len8 * 8: descriptor + extension + payload */
	const uint8_t *ext;  /* descriptor extension: bytes 16 .. offset8 * 8 */
	uint32_t ext_len;
	const uint8_t *data; /* payload: offset8 * 8 .. len8 * 8 */
	uint32_t data_len;
};

/*
 * Validates the next packet and copies all of it into buf (which the other
 * side cannot reach), then describes it in *pkt. The packet stays in the
 * ring until vmbus_ring_advance. Returns 0; -EAGAIN if the ring is empty;
 * -EMSGSIZE if buflen is too small (pkt->len tells how much is needed);
 * -EBADMSG if the ring is corrupt (it stays unusable from then on).
 */
int vmbus_ring_peek(struct vmbus_ring_reader *r, void *buf, uint32_t buflen,
		    struct vmbus_packet *pkt);

/* Consumes the packet peek() returned (privately: see commit). */
void vmbus_ring_advance(struct vmbus_ring_reader *r);

/* peek + advance. */
int vmbus_ring_recv(struct vmbus_ring_reader *r, void *buf, uint32_t buflen,
		    struct vmbus_packet *pkt);

/*
 * Publishes the consumed space to the writer. Returns true if the writer
 * must be signalled: it asked for space (pending_send_sz, with the feature
 * bit) and this commit moved free space across that threshold. Commit after
 * every batch read, not only when the ring runs dry: a reader that always
 * finds more to read would otherwise never give the writer its space back.
 */
bool vmbus_ring_commit(struct vmbus_ring_reader *r);

/*
 * interrupt_mask: a reader that is draining masks so the writer does not
 * signal it; when the ring looks empty it unmasks, and unmask() returns true
 * if data arrived meanwhile (keep draining, do not sleep). Commit before
 * unmasking, or the writer cannot tell the ring was drained.
 */
void vmbus_ring_reader_mask(struct vmbus_ring_reader *r);
bool vmbus_ring_reader_unmask(struct vmbus_ring_reader *r);

/* Bytes published but not yet consumed (refreshes the write index seen). */
uint32_t vmbus_ring_reader_available(struct vmbus_ring_reader *r);

/* ---- Parsing the descriptor extension of a received packet ---- */

/* One range of a received GPA-direct packet. */
struct vmbus_gpa_range_in {
	uint32_t byte_count;
	uint32_t byte_offset;
	uint32_t pfn_count;
	const uint8_t *pfns; /* pfn_count little-endian u64, maybe unaligned */
};

struct vmbus_gpa_range_iter {
	const uint8_t *next;
	uint32_t left;   /* extension bytes not yet parsed */
	uint32_t ranges; /* ranges not yet returned */
};

/* Starts iterating a GPA-direct packet's ranges; -EBADMSG if the packet is
 * not GPA-direct or its range count does not fit its extension. */
int vmbus_gpa_ranges_begin(const struct vmbus_packet *pkt, struct vmbus_gpa_range_iter *it);

/* The largest PFN a range may name: a 52-bit guest physical address, the
 * most x86-64 can address, so pfn * 4096 + offset never overflows. */
#define VMBUS_GPA_MAX_PFN ((1ull << 40) - 1)

/* Next range: 1 and *out filled, 0 at the end, -EBADMSG if malformed (a
 * range over its extension, a zero byte_count, byte_offset >= 4096, a PFN
 * over VMBUS_GPA_MAX_PFN). */
int vmbus_gpa_ranges_next(struct vmbus_gpa_range_iter *it, struct vmbus_gpa_range_in *out);

uint64_t vmbus_gpa_range_pfn(const struct vmbus_gpa_range_in *r, uint32_t i);

/* A received transfer-page packet's header and ranges. */
struct vmbus_xfer_pages_in {
	uint16_t pageset_id;
	uint8_t sender_owns_set;
	uint32_t range_count;
	const uint8_t *ranges; /* range_count struct vmbus_xfer_page_range */
};

/* -EBADMSG if not a transfer-page packet or the ranges overrun its extension. */
int vmbus_xfer_pages_parse(const struct vmbus_packet *pkt, struct vmbus_xfer_pages_in *out);
struct vmbus_xfer_page_range vmbus_xfer_pages_range(const struct vmbus_xfer_pages_in *x,
						    uint32_t i);

#endif /* HVKIT_RING_BUFFER_H */
