/* SPDX-License-Identifier: MIT */
/*
 * guest/hv facing a hostile host: arbitrary SIMP slot, SIEFP and TSC page
 * contents, a host that rewrites the slot while the handler runs and a TSC
 * page whose sequence moves under the reader, fed through the SINT
 * handler, hv_guest_take_events and the time read (fake port: fake_hv.c).
 * Nothing may crash or read outside its pages; a message handed on must
 * have a payload_size of at most 240.
 *
 * Input (missing bytes read as zero):
 *   byte 0    options: bit 0 message-mode stimers, bit 1 deprecating AEOI,
 *             bit 2 no TSC page, bits 4:3 TSC sequence bumps, bit 5 the
 *             host rewrites the slot from the events callback
 *   1..256    the SINT 2 slot of the SIMP page
 *   257..512  a second slot image (what the racing host writes)
 *   513..1024 SIEFP bytes of SINT 2 and SINT 3
 *   1025..1048 TSC page header; 1049..1056 TSC; 1057..1072 next scale/offset
 *   1073      which SINT take_events reads; 1074 post_message size
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_hv.h"
#include "hv_guest.h"
#include "hvkit/vmbus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct cursor {
	const uint8_t *data;
	size_t size, pos;
};

static void take(struct cursor *c, void *out, size_t n)
{
	size_t have = c->pos < c->size ? c->size - c->pos : 0;
	size_t k = have < n ? have : n;
	memcpy(out, c->data + c->pos, k);
	memset((uint8_t *)out + k, 0, n - k);
	c->pos += n;
}

struct ctx {
	struct fake_hv f;
	struct hv_guest g;
	uint8_t race[HV_MESSAGE_SIZE];
	bool race_pending;
	uint32_t messages;
	uint32_t timers;
};

static void on_message(void *arg, uint32_t vp, uint32_t sint, const struct hv_guest_message *m)
{
	struct ctx *c = arg;
	(void)vp;
	if (sint != VMBUS_MESSAGE_SINT || m->payload_size > HV_MESSAGE_PAYLOAD_BYTES ||
	    m->message_type == HVMSG_NONE || m->message_type == HVMSG_TIMER_EXPIRED)
		abort();
	volatile uint8_t sink = 0;
	for (uint32_t i = 0; i < m->payload_size; i++)
		sink ^= m->payload[i];
	(void)sink;
	c->messages++;
}

static void on_events(void *arg, uint32_t vp, uint32_t sint)
{
	struct ctx *c = arg;
	uint8_t flags[HV_EVENT_FLAGS_BYTES] = {0};
	(void)vp;
	if (hv_guest_take_events(&c->g, sint, flags) > HV_EVENT_FLAGS_COUNT)
		abort();
	/* A host writing the slot between our look and our copy. */
	if (c->race_pending) {
		c->race_pending = false;
		memcpy(&c->g.vps[0].simp->sint_message[VMBUS_MESSAGE_SINT], c->race,
		       sizeof(c->race));
	}
}

static void on_timer(void *arg, uint32_t vp)
{
	struct ctx *c = arg;
	(void)vp;
	c->timers++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cursor cur = {data, size, 0};
	uint8_t options, slot[HV_MESSAGE_SIZE], flags[2 * HV_EVENT_FLAGS_BYTES];
	uint8_t tsc_hdr[sizeof(struct hv_tsc_page)], which, post_size;
	uint64_t tsc, next_scale;
	int64_t next_offset;
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return 0;
	take(&cur, &options, 1);
	take(&cur, slot, sizeof(slot));
	take(&cur, c->race, sizeof(c->race));
	take(&cur, flags, sizeof(flags));
	take(&cur, tsc_hdr, sizeof(tsc_hdr));
	take(&cur, &tsc, sizeof(tsc));
	take(&cur, &next_scale, sizeof(next_scale));
	take(&cur, &next_offset, sizeof(next_offset));
	take(&cur, &which, 1);
	take(&cur, &post_size, 1);

	fake_hv_init(&c->f);
	if (options & 2)
		c->f.hv_leaf[4][0] |= HV_HINT_DEPRECATING_AEOI;
	if (options & 4)
		c->f.hv_leaf[3][0] &= ~HV_FEAT_REFERENCE_TSC_MSR;
	struct hv_guest_config cfg = {.vp_count = 1, .prefer_message_mode = options & 1};
	if (hv_guest_init(&c->g, &c->f.port, &cfg) || hv_guest_vp_init(&c->g))
		abort();
	hv_guest_set_callbacks(&c->g, on_message, on_events, on_timer, c);

	struct hv_guest_vp *vp = &c->g.vps[0];
	memcpy(&vp->simp->sint_message[VMBUS_MESSAGE_SINT], slot, sizeof(slot));
	memcpy(&vp->siefp->sint_flags[VMBUS_MESSAGE_SINT], flags, sizeof(flags));
	c->race_pending = options & 0x20;
	if (c->g.tsc_page)
		memcpy(c->g.tsc_page, tsc_hdr, sizeof(tsc_hdr));
	c->f.tsc = tsc;
	c->f.bump_sequence = (options >> 3) & 3;
	c->f.next_scale = next_scale;
	c->f.next_offset = next_offset;

	/* The interrupt, twice: the second sees whatever the first left. */
	for (int i = 0; i < 2; i++) {
		fake_raise(&c->f, 0, c->g.config.sint_vector);
		fake_raise(&c->f, 0, HV_STIMER0_DIRECT_VECTOR);
	}
	if (c->f.eom_count[0] > 2 || vp->bad_messages > 2)
		abort();

	uint8_t out[HV_EVENT_FLAGS_BYTES] = {0};
	if (hv_guest_take_events(&c->g, which % 20, out) > HV_EVENT_FLAGS_COUNT)
		abort();

	uint64_t t;
	(void)hv_guest_time_tsc_page(&c->g, &t);
	(void)hv_guest_time(&c->g);
	if (hv_guest_timer_start(&c->g, tsc & 0xFFFF) == 0)
		hv_guest_timer_stop(&c->g);

	uint32_t calls = c->f.call_count;
	uint16_t st = hv_guest_post_message(&c->g, 1, 1, slot, post_size);
	if (post_size > HV_MESSAGE_PAYLOAD_BYTES &&
	    (st != HV_STATUS_INVALID_PARAMETER || c->f.call_count != calls))
		abort();

	hv_guest_vp_exit(&c->g);
	fake_hv_destroy(&c->f);
	free(c);
	return 0;
}
