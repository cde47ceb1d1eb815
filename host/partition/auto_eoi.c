/* SPDX-License-Identifier: MIT */
#include "auto_eoi.h"

#include <string.h>

#define APIC_ISR 0x100
#define APIC_IRR 0x200

bool vector_set_empty(const struct vector_set *s)
{
	for (int i = 0; i < 8; i++)
		if (s->w[i])
			return false;
	return true;
}

int vector_set_highest(const struct vector_set *s)
{
	for (int i = 7; i >= 0; i--)
		if (s->w[i])
			return i * 32 + 31 - __builtin_clz(s->w[i]);
	return -1;
}

static void read_bank(const unsigned char *regs, unsigned offset, struct vector_set *out)
{
	for (unsigned i = 0; i < 8; i++)
		memcpy(&out->w[i], regs + offset + i * 16, sizeof(out->w[i]));
}

void auto_eoi_read_lapic(const void *regs, struct vector_set *irr, struct vector_set *isr)
{
	read_bank(regs, APIC_IRR, irr);
	read_bank(regs, APIC_ISR, isr);
}

int auto_eoi_next(struct vector_set *outstanding, const struct vector_set *irr,
		  const struct vector_set *isr, unsigned *vanished)
{
	int highest = vector_set_highest(isr);
	int end = -1;
	for (unsigned v = 0; v < 256; v++) {
		if (!vector_set_has(outstanding, v))
			continue;
		if (vector_set_has(isr, v)) {
			if ((int)v == highest)
				end = (int)v;
		} else if (!vector_set_has(irr, v)) {
			vector_set_del(outstanding, v);
			(*vanished)++;
		}
	}
	return end;
}

int auto_eoi_settle(struct vector_set *outstanding, const struct vector_set *sent_since_read,
		    const struct vector_set *irr, const struct vector_set *isr,
		    unsigned *vanished)
{
	struct vector_set judged;
	for (int i = 0; i < 8; i++)
		judged.w[i] = outstanding->w[i] & ~sent_since_read->w[i];
	int end = auto_eoi_next(&judged, irr, isr, vanished);
	for (int i = 0; i < 8; i++)
		outstanding->w[i] = judged.w[i] | (outstanding->w[i] & sent_since_read->w[i]);
	return end;
}

void auto_eoi_ended(struct vector_set *outstanding, const struct vector_set *irr, unsigned v)
{
	if (!vector_set_has(irr, v))
		vector_set_del(outstanding, v);
}
