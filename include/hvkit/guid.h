/* SPDX-License-Identifier: MIT */
/*
 * GUIDs as VMBus carries them: the Windows mixed-endian layout. The text
 * form "aabbccdd-eeff-gghh-iijj-kkllmmnnoopp" stores its first three groups
 * little-endian (dd cc bb aa, ff ee, hh gg) and the last two in text order.
 * Linux: guid_t and GUID_INIT in include/linux/uuid.h.
 */
#ifndef HVKIT_GUID_H
#define HVKIT_GUID_H

#include <stdbool.h>
#include <stdint.h>

struct hv_guid {
	uint8_t b[16];
};
_Static_assert(sizeof(struct hv_guid) == 16, "GUID size");

/* A GUID constant from its text groups, e.g. HV_GUID(0xf8615163, 0xdf3e, ...). */
#define HV_GUID(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7)                       \
	((struct hv_guid){{(uint8_t)(a), (uint8_t)((a) >> 8), (uint8_t)((a) >> 16),  \
			   (uint8_t)((a) >> 24), (uint8_t)(b), (uint8_t)((b) >> 8),  \
			   (uint8_t)(c), (uint8_t)((c) >> 8), (d0), (d1), (d2),      \
			   (d3), (d4), (d5), (d6), (d7)}})

/* Text form length without the terminating NUL. */
#define HV_GUID_STRING_LEN 36

/* Parses the 36-character text form (either case, no braces). 0 or -EINVAL. */
int hv_guid_parse(const char *text, struct hv_guid *out);

/* Writes the lower-case text form and a NUL into out (37 bytes). */
void hv_guid_format(const struct hv_guid *g, char out[HV_GUID_STRING_LEN + 1]);

bool hv_guid_equal(const struct hv_guid *a, const struct hv_guid *b);
bool hv_guid_is_null(const struct hv_guid *g);

/* Total order over the wire bytes; used to sort offers deterministically. */
int hv_guid_compare(const struct hv_guid *a, const struct hv_guid *b);

#endif /* HVKIT_GUID_H */
