/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the guest's IC message handler, for every service. The
 * first byte picks the service; the rest is the packet the host sent.
 * Each service has negotiated (its newest versions) before, so the
 * per-service parsers are reached; a NEGOTIATE in the input renegotiates.
 */
#include <stdint.h>
#include <string.h>

#include "ic_guest.h"

static struct ic_guest *g;

/* A NEGOTIATE offering framework 3.0 and the service's newest version. */
static void negotiate(enum ic_service s)
{
	uint8_t buf[IC_MAX_PACKET];
	uint32_t fw = IC_FW_VERSION_3, count;
	const uint32_t *msg = ic_service_versions(s, &count);
	uint32_t len = ic_negotiate_request(buf, sizeof(buf), &fw, 1, msg, 1, 0);
	ic_guest_handle(g, s, buf, len, sizeof(buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const intrinsic[] = {"k", "v", NULL, NULL};
	if (!g) {
		struct ic_guest_config cfg = {.intrinsic = intrinsic};
		if (ic_guest_register(NULL, &cfg, &g))
			return 0;
	}
	if (size < 1 || size - 1 > IC_MAX_PACKET)
		return 0;
	enum ic_service s = (enum ic_service)(data[0] % IC_SERVICE_COUNT);
	struct ic_guest_status st;
	ic_guest_status(g, s, &st);
	if (!st.negotiated)
		negotiate(s);
	uint8_t buf[IC_MAX_PACKET];
	memcpy(buf, data + 1, size - 1);
	uint32_t out = ic_guest_handle(g, s, buf, (uint32_t)(size - 1), sizeof(buf));
	if (out > sizeof(buf))
		__builtin_trap();
	return 0;
}
