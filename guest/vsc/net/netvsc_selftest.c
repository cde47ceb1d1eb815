/* SPDX-License-Identifier: MIT */
/* The NIC loopback self-test's frames (see netvsc_selftest.h). */
#include <string.h>

#include "netvsc_selftest.h"

#define HDR 14u
#define BODY (HDR + 8u) /* header, then seq and len, little endian */

static uint8_t pattern(uint32_t seq, uint32_t i)
{
	return (uint8_t)(seq * 131u + i * 7u + (i >> 8));
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t netvsc_selftest_len(uint32_t seq, uint32_t mtu)
{
	uint32_t max = mtu + HDR;
	if (max <= NETVSC_SELFTEST_MIN || NETVSC_SELFTEST_FRAMES < 2)
		return NETVSC_SELFTEST_MIN;
	seq %= NETVSC_SELFTEST_FRAMES;
	return NETVSC_SELFTEST_MIN +
	       (uint32_t)((uint64_t)(max - NETVSC_SELFTEST_MIN) * seq / (NETVSC_SELFTEST_FRAMES - 1));
}

void netvsc_selftest_frame(const uint8_t mac[6], uint32_t seq, uint32_t len, uint8_t *out)
{
	memcpy(out, mac, 6);
	/* A locally administered source that is not ours: a bridge would
	 * not take the frame for one we received. */
	const uint8_t src[6] = {0x02, 0x68, 0x76, 0x6b, 0x69, 0x74};
	memcpy(out + 6, src, 6);
	out[12] = (uint8_t)(NETVSC_SELFTEST_ETHERTYPE >> 8);
	out[13] = (uint8_t)NETVSC_SELFTEST_ETHERTYPE;
	put32(out + HDR, seq);
	put32(out + HDR + 4, len);
	for (uint32_t i = BODY; i < len; i++)
		out[i] = pattern(seq, i);
}

int netvsc_selftest_check(const uint8_t mac[6], const void *frame, size_t len, uint32_t *seq)
{
	const uint8_t *f = frame;
	if (len < HDR || f[12] != (uint8_t)(NETVSC_SELFTEST_ETHERTYPE >> 8) ||
	    f[13] != (uint8_t)NETVSC_SELFTEST_ETHERTYPE || memcmp(f, mac, 6))
		return 0;
	if (len < BODY || get32(f + HDR + 4) != len)
		return -1;
	*seq = get32(f + HDR);
	for (uint32_t i = BODY; i < len; i++)
		if (f[i] != pattern(*seq, i))
			return -1;
	return 1;
}
