/* SPDX-License-Identifier: MIT */
/*
 * netvsc's receive path on arbitrary host bytes: a transfer-page packet
 * (its descriptor extension: page set, range count, ranges; its payload:
 * the NVSP message) over a receive buffer holding whatever the host wrote.
 * Input: u16 extension length, u16 payload length, the extension, the
 * payload, then the receive buffer (the rest). Nothing may be read outside
 * the buffer, the packet or a delivered frame.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netvsc_rx.h"

static void on_data(void *ctx, const uint8_t *frame, uint32_t len)
{
	uint8_t sum = 0;
	for (uint32_t i = 0; i < len; i++) /* touch all of it */
		sum = (uint8_t)(sum + frame[i]);
	*(volatile uint8_t *)ctx = sum;
}

static void on_control(void *ctx, const uint8_t *msg, uint32_t len)
{
	if (len > NETVSC_RX_CONTROL_MAX)
		abort();
	on_data(ctx, msg, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4 || size > 1 << 20)
		return 0;
	size_t ext_len = (size_t)(data[0] | data[1] << 8) & ~(size_t)7;
	size_t data_len = (size_t)(data[2] | data[3] << 8);
	size_t rest = size - 4;
	if (ext_len > rest)
		ext_len = rest & ~(size_t)7;
	if (data_len > rest - ext_len)
		data_len = rest - ext_len;
	/* Each part in its own allocation, so a read past one is caught. */
	uint8_t *ext = malloc(ext_len + 1), *payload = malloc(data_len + 1);
	size_t buf_len = rest - ext_len - data_len;
	uint8_t *buf = malloc(buf_len + 1);
	memcpy(ext, data + 4, ext_len);
	memcpy(payload, data + 4 + ext_len, data_len);
	memcpy(buf, data + 4 + ext_len + data_len, buf_len);

	struct vmbus_packet pkt = {
		.type = VMBUS_PKT_DATA_USING_XFER_PAGES,
		.trans_id = 1,
		.ext = ext,
		.ext_len = (uint32_t)ext_len,
		.data = payload,
		.data_len = (uint32_t)data_len,
	};
	volatile uint8_t sink_byte = 0;
	struct netvsc_rx_sink sink = {on_data, on_control, (void *)&sink_byte};
	struct netvsc_rx_stats st = {0};
	int r = netvsc_rx_xfer(buf, (uint32_t)buf_len, &pkt, &sink, &st);
	if (r > 0 && (uint64_t)r > buf_len / 8)
		abort(); /* more messages than the buffer can hold */
	free(ext);
	free(payload);
	free(buf);
	return 0;
}
