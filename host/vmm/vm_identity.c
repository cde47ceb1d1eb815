// SPDX-License-Identifier: MIT
#include "vm_identity.h"

#include <stdio.h>
#include <uuid/uuid.h>

/* struct hv_guid stores the first three groups little-endian; an RFC UUID
 * (libuuid's uuid_t) stores every group in text order. The swap is its
 * own inverse. */
static void swap_groups(const uint8_t in[16], uint8_t out[16])
{
	static const uint8_t order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
	for (int i = 0; i < 16; i++)
		out[i] = in[order[i]];
}

struct hv_guid vm_device_instance(const struct hv_guid *vm_id, const char *kind,
				  uint32_t index)
{
	uuid_t ns, id;
	swap_groups(vm_id->b, ns);
	char name[64];
	int len = snprintf(name, sizeof(name), "hvkit/%s/%u", kind, index);
	if (len < 0 || (size_t)len >= sizeof(name))
		len = (int)sizeof(name) - 1; /* kinds are short constants */
	uuid_generate_sha1(id, ns, name, (size_t)len);
	struct hv_guid out;
	swap_groups(id, out.b);
	return out;
}

void vm_device_mac(const struct hv_guid *instance, uint8_t mac[6])
{
	mac[0] = 0x00;
	mac[1] = 0x15;
	mac[2] = 0x5d;
	/* The node group: hash bytes only (the version and variant bits sit
	 * in bytes 7 and 8). */
	mac[3] = instance->b[13];
	mac[4] = instance->b[14];
	mac[5] = instance->b[15];
}
