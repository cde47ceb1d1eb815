/* SPDX-License-Identifier: MIT */
/*
 * OID_GEN_RECEIVE_SCALE_PARAMETERS as Linux 6.1's rndis_filter_set_rss_param
 * lays it out, for the host-side tests (test_rndis.c, test_netvsp.c). Built
 * here, not by netvsc, so the host is not judged by our own guest's code.
 */
#ifndef HVKIT_TESTS_RSS_PARAM_H
#define HVKIT_TESTS_RSS_PARAM_H

#include <stdint.h>
#include <string.h>

#include "hvkit/proto/rndis.h"

#define TEST_RSS_TABLE 128u
#define TEST_RSS_PARAM_LEN (sizeof(struct ndis_recv_scale_param) + 4 * TEST_RSS_TABLE + 40)

/* The parameters with these hash types, Microsoft's verification key (as
 * Linux's default), and table entry i naming queue first + i % queues. */
static inline void test_rss_param(uint8_t out[TEST_RSS_PARAM_LEN], uint32_t hashinfo,
				  uint32_t first, uint32_t queues)
{
	static const uint8_t key[40] = NDIS_RSS_DEFAULT_KEY;
	struct ndis_recv_scale_param p = {
		.hdr = {NDIS_OBJECT_TYPE_RSS_PARAMETERS, NDIS_RECEIVE_SCALE_PARAMETERS_REVISION_2,
			sizeof(p)},
		.hashinfo = hashinfo,
		.indirect_tabsize = 4 * TEST_RSS_TABLE,
		.indirect_taboffset = sizeof(p),
		.hashkey_size = sizeof(key),
		.hashkey_offset = sizeof(p) + 4 * TEST_RSS_TABLE,
	};
	memset(out, 0, TEST_RSS_PARAM_LEN);
	memcpy(out, &p, sizeof(p));
	for (uint32_t i = 0; i < TEST_RSS_TABLE; i++) {
		uint32_t q = first + i % queues;
		memcpy(out + sizeof(p) + 4 * i, &q, 4);
	}
	memcpy(out + p.hashkey_offset, key, sizeof(key));
}

#endif /* HVKIT_TESTS_RSS_PARAM_H */
