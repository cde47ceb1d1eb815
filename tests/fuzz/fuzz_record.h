/* SPDX-License-Identifier: MIT */
/*
 * The input of a state-record fuzz target (host/record/record.h): the
 * record as it is (first byte odd), or mutations of a real one the
 * target saved. Mutations: from byte 2 on, (offset u16, xor u8)
 * triples; byte 1 odd makes the CRC right again afterwards (so content
 * checks, not the checksum, stand in the way); byte 1 bit 1 truncates to
 * len * byte 1 / 256.
 */
#ifndef HVKIT_TESTS_FUZZ_RECORD_H
#define HVKIT_TESTS_FUZZ_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#define FUZZ_RECORD_HEADER_BYTES 24

static inline bool fuzz_record_is_raw(const uint8_t *data, size_t size)
{
	return size && (data[0] & 1);
}

/* The raw record into rec (cap bytes at most): its length. */
static inline size_t fuzz_record_raw(const uint8_t *data, size_t size, uint8_t *rec, size_t cap)
{
	size_t len = size - 1 < cap ? size - 1 : cap;
	memcpy(rec, data + 1, len);
	return len;
}

/* The input's (offset u16, xor u8) triples from byte 2 on, applied to
 * the len bytes at buf (any real file a target writes, not only a
 * record). */
static inline void fuzz_xor_triples(const uint8_t *data, size_t size, uint8_t *buf, size_t len)
{
	for (size_t i = 2; len && i + 2 < size; i += 3) {
		size_t at = (size_t)(data[i] | data[i + 1] << 8) % len;
		buf[at] ^= data[i + 2];
	}
}

/* Mutates the real record rec of len bytes as the input says: its new
 * length. */
static inline size_t fuzz_record_mutate(const uint8_t *data, size_t size, uint8_t *rec, size_t len)
{
	fuzz_xor_triples(data, size, rec, len);
	if (size > 1 && (data[1] & 1) && len > FUZZ_RECORD_HEADER_BYTES) {
		uint32_t crc = (uint32_t)crc32(0, rec + FUZZ_RECORD_HEADER_BYTES,
					       (uInt)(len - FUZZ_RECORD_HEADER_BYTES));
		memcpy(rec + FUZZ_RECORD_HEADER_BYTES - 4, &crc, 4);
	}
	if (size > 1 && (data[1] & 2))
		len = len * data[1] / 256;
	return len;
}

#endif /* HVKIT_TESTS_FUZZ_RECORD_H */
