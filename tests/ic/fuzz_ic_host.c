/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: every parser the host runs over a guest's IC answers. The
 * first byte picks the service (and bit 7 the time sync version); the
 * rest is the answer: read as that service's answer, as a negotiate
 * answer, and its body as UTF-16 text.
 */
#include <stdint.h>
#include <string.h>

#include "ic_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t util_fw[] = {IC_FW_VERSION_3, IC_FW_VERSION_1};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size - 1 > IC_MAX_PACKET)
		return 0;
	enum ic_service s = (enum ic_service)(data[0] % IC_SERVICE_COUNT);
	const uint8_t *p = data + 1;
	uint32_t len = (uint32_t)(size - 1), count;
	struct ic_kvp_result kvp;
	ic_host_parse_answer(s, data[0] & 0x80 ? IC_TIMESYNC_VERSION_4 : IC_TIMESYNC_VERSION_3, p,
			     len, 41, &kvp);
	const uint32_t *msg = ic_service_versions(s, &count);
	uint32_t fw, mv;
	ic_negotiate_result(p, len, util_fw, 2, msg, count, &fw, &mv);
	char text[IC_KVP_VALUE_MAX_UTF8];
	ic_utf16_to_utf8(p, len & ~1u, IC_KVP_MAX_VALUE_SIZE, text, sizeof(text));
	return 0;
}
