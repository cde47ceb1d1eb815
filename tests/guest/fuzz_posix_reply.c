/* SPDX-License-Identifier: MIT */
/*
 * The posix port's reply validation facing a hostile host: arbitrary bytes
 * as a reply to an arbitrary request, then, if it passes as a HELLO, the
 * HELLO checks. Nothing may crash, and what passes must be consistent.
 *
 * Input: byte 0 the op we asked, bytes 1..4 the seq, byte 5 the fd count,
 * the rest the reply as received.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "posix_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hvkit_proc_reply r;
	struct hv_posix_hello h;
	uint32_t seq;

	if (size < 6)
		return 0;
	uint16_t op = data[0] % 8;
	memcpy(&seq, data + 1, sizeof(seq));
	uint32_t nfds = data[5];
	const uint8_t *reply = data + 6;
	size_t len = size - 6;

	/* A copy of exactly the received length, so overreads are caught. */
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, reply, len);
	if (hv_posix_check_reply(buf, len, op, seq, nfds, &r) == 0) {
		if (len != sizeof(r) || r.magic != HVKIT_PROC_MAGIC || r.op != op || r.seq != seq)
			abort();
		if (op == HVKIT_PROC_HELLO && hv_posix_check_hello(&r, nfds, &h) == 0) {
			if (h.vp_count < 1 || h.vp_count > HVKIT_PROC_MAX_VPS ||
			    nfds != HVKIT_PROC_HELLO_FDS(h.vp_count) ||
			    h.memory_size % HV_PAGE_SIZE || h.memory_size < 2 * HV_PAGE_SIZE ||
			    h.memory_size > HV_POSIX_MAX_MEMORY)
				abort();
		}
	}
	free(buf);
	return 0;
}
