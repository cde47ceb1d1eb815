/* SPDX-License-Identifier: MIT */
/*
 * State records: how a component's state travels in a snapshot, a
 * hibernation test or a migration (docs/lifecycle.md). A record is a
 * header, then a body of little-endian fields:
 *
 *   magic (8 bytes, the component's), u32 version, u32 count (what the
 *   loader must match: a VP count, say), u32 body length, u32 CRC-32
 *   (zlib's) of the body
 *
 * The writer counts on past the buffer's end, so a caller learns the size
 * it needs from one dry run; the reader turns every short read into a
 * sticky error, so a loader checks once at the end.
 */
#ifndef HVKIT_RECORD_H
#define HVKIT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECORD_HEADER_BYTES (8 + 4 * 4)
#define RECORD_MAGIC_BYTES 8

/* Bytes go to buf[len] on while they fit in cap; len counts on past it. */
struct record_writer {
	uint8_t *buf;
	size_t cap, len;
};

/* A writer whose body starts after the header's room. */
struct record_writer record_writer(void *buf, size_t cap);
void record_put(struct record_writer *w, const void *v, size_t n);
void record_put8(struct record_writer *w, uint8_t v);
void record_put16(struct record_writer *w, uint16_t v);
void record_put32(struct record_writer *w, uint32_t v);
void record_put64(struct record_writer *w, uint64_t v);
/* Writes the header over the room left for it: 0, or -ENOSPC (nothing
 * usable written; *len says how much room the record needs). */
int record_finish(struct record_writer *w, const char magic[RECORD_MAGIC_BYTES],
		  uint32_t version, uint32_t count, size_t *len);

struct record_reader {
	const uint8_t *p, *end;
	bool bad; /* a read went past the end (sticky; reads then give 0) */
};

/* Checks the header (magic, version, count, the body's length and CRC)
 * and gives a reader over the body: 0, or -EINVAL. */
int record_open(const void *buf, size_t len, const char magic[RECORD_MAGIC_BYTES],
		uint32_t version, uint32_t count, struct record_reader *body);
void record_get(struct record_reader *r, void *v, size_t n);
uint8_t record_get8(struct record_reader *r);
uint16_t record_get16(struct record_reader *r);
uint32_t record_get32(struct record_reader *r);
uint64_t record_get64(struct record_reader *r);
/* Whether the body was read exactly to its end, with no short read. */
bool record_done(const struct record_reader *r);

#endif /* HVKIT_RECORD_H */
