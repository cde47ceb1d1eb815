/* SPDX-License-Identifier: MIT */
/*
 * The NIC self-test's check of frames the host hands back: input is a
 * frame. Whatever it holds, the check reads inside it only, and a frame it
 * calls intact is exactly the one the builder makes for that sequence
 * number and length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netvsc_selftest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	/* A copy of exactly the frame, so reads past it are caught. */
	uint8_t *f = malloc(size ? size : 1);
	if (!f)
		return 0;
	memcpy(f, data, size);
	uint32_t seq = 0;
	int r = netvsc_selftest_check(mac, f, size, &seq);
	if (r < -1 || r > 1)
		abort();
	if (r == 1) {
		uint8_t *again = malloc(size);
		if (!again)
			abort();
		netvsc_selftest_frame(mac, seq, (uint32_t)size, again);
		/* The source address is not checked: the rest must match. */
		if (memcmp(again, f, 6) || memcmp(again + 12, f + 12, size - 12))
			abort();
		free(again);
	}
	free(f);
	return 0;
}
