/* SPDX-License-Identifier: MIT */
/*
 * The RNDIS parser on arbitrary guest bytes: the first byte picks whether
 * the device is initialized first (bit 0), and whether the bytes are read
 * as a send section in place (bit 1) with a scratch buffer of
 * (byte >> 2) * 128 bytes; the rest is one send's RNDIS bytes. Whatever
 * comes in, nothing is read outside it or the scratch buffer and answers
 * stay small.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rndis.h"

static void on_respond(void *ctx, const void *msg, uint32_t len)
{
	(void)ctx;
	(void)msg;
	if (len > RNDIS_RESPONSE_MAX)
		abort();
}

static void on_frame(void *ctx, const uint8_t *data, uint32_t len,
		     const struct rndis_frame_info *info)
{
	(void)info;
	uint8_t sum = 0;
	for (uint32_t i = 0; i < len; i++) /* touch all of it */
		sum = (uint8_t)(sum + data[i]);
	*(volatile uint8_t *)ctx = sum;
}

static const struct rndis_dev_ops ops = {on_respond, on_frame, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 20)
		return 0;
	struct rndis_dev d;
	struct rndis_dev_config cfg = {.mac = {0, 0x15, 0x5d, 1, 2, 3}, .mtu = 1500, .rss_queues = 4};
	uint8_t sink;
	rndis_dev_init(&d, &cfg, &ops, &sink);
	if (data[0] & 1) {
		const uint32_t init[6] = {RNDIS_MSG_INIT, 24, 1, 1, 0, 0x4000};
		rndis_dev_handle(&d, (const uint8_t *)init, sizeof(init));
	}
	/* An exact-size copy, so a read past the end is caught. */
	uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 2) {
		uint32_t cap = (uint32_t)(data[0] >> 2) * 128;
		uint8_t *scratch = malloc(cap ? cap : 1);
		if (scratch)
			rndis_dev_handle_shared(&d, copy, (uint32_t)(size - 1), scratch, cap);
		free(scratch);
	} else {
		rndis_dev_handle(&d, copy, (uint32_t)(size - 1));
	}
	rndis_dev_set_link(&d, false);
	free(copy);
	return 0;
}
