/* SPDX-License-Identifier: MIT */
/*
 * The process partition's request handling facing a hostile guest: any
 * bytes, or well-formed requests with any op and arguments, on any VP.
 * Each input gets a fresh partition (no guest process, no threads) with a
 * message and an event connection, so every path into host/hv is open.
 *
 * Input: byte 0 = VP count - 1 (mod 2); then records of
 *   [kind][vp][n] + n bytes: kind bit 7 clear sends the n bytes as they
 *   are; set builds a request with magic and the given vp, op = kind & 0x7F
 *   and args from the bytes.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "process_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t accept_message(void *ctx, uint32_t vp, const struct hv_posted_message *m)
{
	struct process_partition *pp = ctx;
	/* Answer into the guest's SynIC, as the VMBus server will. */
	hv_synic_post(process_partition_hv(pp), vp, 2, 1, m->payload, m->payload_size, 0);
	return HV_STATUS_SUCCESS;
}

static uint16_t accept_event(void *ctx, uint32_t vp, uint16_t flag)
{
	struct process_partition *pp = ctx;
	hv_synic_signal(process_partition_hv(pp), vp, 2, flag);
	return HV_STATUS_SUCCESS;
}

static void quiet(void *ctx, const char *fmt, va_list ap)
{
	(void)ctx;
	(void)fmt;
	(void)ap;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct process_partition_config cfg = {
		.vp_count = 1 + (data[0] & 1),
		.memory_size = 64 * 1024,
		.tsc_hz = 2000000000ull,
		.log = quiet,
	};
	struct process_partition *pp;
	if (process_partition_new(&cfg, &pp))
		return 0;
	struct hv_partition *hv = process_partition_hv(pp);
	process_partition_lock(pp);
	hv_connection_add_message(hv, 1, accept_message, pp);
	hv_connection_add_event(hv, 2, accept_event, pp);
	process_partition_unlock(pp);

	size_t pos = 1;
	while (pos + 3 <= size) {
		uint8_t kind = data[pos], vp = data[pos + 1] % 3, n = data[pos + 2];
		pos += 3;
		if (n > size - pos)
			n = (uint8_t)(size - pos);
		uint8_t msg[64];
		size_t len = n < sizeof(msg) ? n : sizeof(msg);
		memcpy(msg, data + pos, len);
		pos += n;
		if (kind & 0x80) {
			struct hvkit_proc_request req = {
				.magic = HVKIT_PROC_MAGIC, .op = kind & 0x7F, .vp = vp};
			memcpy(req.args, msg, len < sizeof(req.args) ? len : sizeof(req.args));
			memcpy(msg, &req, sizeof(req));
			len = sizeof(req);
		}
		struct hvkit_proc_reply reply;
		int fd;
		if (process_partition_handle(pp, vp, msg, len, &reply, &fd) < 0)
			break; /* the partition would end here */
	}
	process_partition_stop(pp);
	return 0;
}
