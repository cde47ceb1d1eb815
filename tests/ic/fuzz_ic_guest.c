/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the guest's IC message handler, for every service. The
 * first byte picks the service; the rest is the packet the host sent.
 * Each service has negotiated (its newest versions) before, so the
 * per-service parsers are reached; a NEGOTIATE in the input renegotiates.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "heap_port.h"
#include "ic_guest.h"

static struct heap_port heap;
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

/* Behaviour stubs, so the VSS and file-copy parsers run to the end. */
static int vss(void *ctx, uint32_t op)
{
	(void)ctx;
	return op == IC_VSS_OP_FREEZE ? 0 : -EIO;
}

static int start(void *ctx, const char *path, const char *name, uint32_t flags, uint64_t size)
{
	(void)ctx, (void)flags, (void)size;
	return strlen(path) + strlen(name) > 0 ? 0 : -EINVAL;
}

static int write_data(void *ctx, uint64_t offset, const void *data, uint32_t len)
{
	(void)ctx, (void)offset;
	uint32_t sum = 0;
	for (uint32_t i = 0; i < len; i++) /* reads every byte it was given */
		sum += ((const uint8_t *)data)[i];
	return sum == UINT32_MAX ? -EIO : 0;
}

static int finish(void *ctx)
{
	(void)ctx;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const intrinsic[] = {"k", "v", NULL, NULL};
	if (!g) {
		struct ic_guest_config cfg = {
			.intrinsic = intrinsic,
			.ops = {.vss = vss,
				.fcopy_start = start,
				.fcopy_write = write_data,
				.fcopy_complete = finish,
				.fcopy_cancel = finish},
		};
		heap_port_init(&heap, -1);
		if (ic_guest_register(NULL, &heap.port, &cfg, &g))
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
