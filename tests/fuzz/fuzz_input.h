/* SPDX-License-Identifier: MIT */
/*
 * Reading a fuzz input as a stream of little-endian fields; a short input
 * reads as zeros, so every input decodes to some sequence of operations.
 */
#ifndef HVKIT_TESTS_FUZZ_INPUT_H
#define HVKIT_TESTS_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct fuzz_input {
	const uint8_t *d;
	size_t n, i;
};

static inline uint8_t fuzz_u8(struct fuzz_input *in)
{
	return in->i < in->n ? in->d[in->i++] : 0;
}

/* One read per statement, as operands are unsequenced. */
static inline uint16_t fuzz_u16(struct fuzz_input *in)
{
	uint16_t lo = fuzz_u8(in);
	return (uint16_t)(lo | fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(struct fuzz_input *in)
{
	uint32_t lo = fuzz_u16(in);
	return lo | (uint32_t)fuzz_u16(in) << 16;
}

static inline uint64_t fuzz_u64(struct fuzz_input *in)
{
	uint64_t lo = fuzz_u32(in);
	return lo | (uint64_t)fuzz_u32(in) << 32;
}

/* n bytes into dst (zeros past the input's end). */
static inline void fuzz_bytes(struct fuzz_input *in, void *dst, size_t n)
{
	for (size_t k = 0; k < n; k++)
		((uint8_t *)dst)[k] = fuzz_u8(in);
}

#endif /* HVKIT_TESTS_FUZZ_INPUT_H */
