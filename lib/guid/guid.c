/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "hvkit/guid.h"

/* Wire byte index of each pair of hex digits in the text form, in order. */
static const uint8_t text_to_wire[16] = {3, 2, 1, 0, 5, 4, 7, 6,
					 8, 9, 10, 11, 12, 13, 14, 15};
/* Text offsets after which a dash follows. */
static bool dash_at(unsigned pos)
{
	return pos == 8 || pos == 13 || pos == 18 || pos == 23;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hv_guid_parse(const char *text, struct hv_guid *out)
{
	struct hv_guid g;
	unsigned pos = 0;

	for (unsigned byte = 0; byte < 16; byte++) {
		if (dash_at(pos)) {
			if (text[pos] != '-')
				return -EINVAL;
			pos++;
		}
		int hi = hex_value(text[pos]);
		int lo = hi < 0 ? -1 : hex_value(text[pos + 1]);
		if (lo < 0)
			return -EINVAL;
		g.b[text_to_wire[byte]] = (uint8_t)(hi << 4 | lo);
		pos += 2;
	}
	if (text[pos] != '\0')
		return -EINVAL;
	*out = g;
	return 0;
}

void hv_guid_format(const struct hv_guid *g, char out[HV_GUID_STRING_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned pos = 0;

	for (unsigned byte = 0; byte < 16; byte++) {
		if (dash_at(pos))
			out[pos++] = '-';
		uint8_t v = g->b[text_to_wire[byte]];
		out[pos++] = digits[v >> 4];
		out[pos++] = digits[v & 0xF];
	}
	out[pos] = '\0';
}

bool hv_guid_equal(const struct hv_guid *a, const struct hv_guid *b)
{
	return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

bool hv_guid_is_null(const struct hv_guid *g)
{
	static const struct hv_guid null_guid;
	return hv_guid_equal(g, &null_guid);
}

int hv_guid_compare(const struct hv_guid *a, const struct hv_guid *b)
{
	return memcmp(a->b, b->b, sizeof(a->b));
}
