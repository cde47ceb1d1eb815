/* SPDX-License-Identifier: MIT */
/*
 * guest/vmbus facing a hostile host: a client connected (through the
 * scripted host of fake_vmbus_host.c, on the fake port) with a storage
 * driver bound and its channel open, then arbitrary host messages (raw and
 * well-sized with chosen fields), event flags on any VP, raw writes into
 * the shared ring pages, host packets, host misbehaviour switches and guest
 * operations, in any order. Nothing may crash, hang, leak a lock or an
 * event, or touch memory outside what it was given (ASan); a received
 * packet must lie inside the caller's buffer.
 *
 * Input (missing bytes read as zero):
 *   byte 0   options: bits 2:0 max version (index, newest first), bit 3
 *            answers inside the post, bit 4 connection 4 refused, bit 5 a
 *            slow driver, bit 6 a NIC with sub-channels offered too
 *   then records of an op byte (op % 8) and its operands:
 *   0 raw message: length, bytes (queued)
 *   1 shaped message: type, relid (2), id (4), status, class, instance,
 *     sub-channel index (queued)
 *   2 event: VP, relid (2)
 *   3 ring write: channel, length, offset (2), bytes; then its event
 *   4 host packet: channel, length, bytes
 *   5 guest op: which, argument
 *   6 host switches: one byte of drop/status flags
 *   7 deliver everything queued
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_hv.h"
#include "fake_vmbus_host.h"
#include "hv_guest.h"
#include "vmbus_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VPS 4
#define MAX_OPS 512
#define MAX_CH 16

static const struct hv_guid SCSI =
	HV_GUID(0xba6163d9, 0x04a1, 0x4d29, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f);
static const struct hv_guid NIC =
	HV_GUID(0xf8615163, 0xdf3e, 0x46c5, 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e);
static const struct hv_guid OTHER =
	HV_GUID(0x12345678, 0x1111, 0x2222, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x66, 0x66);

static const uint32_t versions[] = {
	VMBUS_VERSION_WIN10_V5_3, VMBUS_VERSION_WIN10_V5_2, VMBUS_VERSION_WIN10_V5_1,
	VMBUS_VERSION_WIN10_V5,	  VMBUS_VERSION_WIN10_V4_1, VMBUS_VERSION_WIN10,
	VMBUS_VERSION_WIN8_1,	  VMBUS_VERSION_WIN8,
};

struct cursor {
	const uint8_t *data;
	size_t size, pos;
};

static bool more(const struct cursor *c)
{
	return c->pos < c->size;
}

static void take(struct cursor *c, void *out, size_t n)
{
	size_t have = c->pos < c->size ? c->size - c->pos : 0;
	size_t k = have < n ? have : n;
	memcpy(out, c->data + c->pos, k);
	memset((uint8_t *)out + k, 0, n - k);
	c->pos += k;
}

static uint8_t byte(struct cursor *c)
{
	uint8_t b;
	take(c, &b, 1);
	return b;
}

static uint16_t u16(struct cursor *c)
{
	uint16_t v;
	take(c, &v, 2);
	return v;
}

static uint32_t u32(struct cursor *c)
{
	uint32_t v;
	take(c, &v, 4);
	return v;
}

struct ctx {
	struct fake_hv f;
	struct hv_guest g;
	struct fake_vmbus_host *h;
	struct vmbus_client *c;
	struct vmbus_driver scsi, nic;
	/* Channels the drivers hold: from probe or subchannel to remove. */
	struct vmbus_client_channel *ch[MAX_CH];
	uint32_t nch;
	uint64_t received;
};

static void hold(struct ctx *x, struct vmbus_client_channel *ch)
{
	for (uint32_t i = 0; i < x->nch; i++)
		if (x->ch[i] == ch)
			abort(); /* handed over twice */
	if (x->nch < MAX_CH)
		x->ch[x->nch++] = ch;
}

static void drop(struct ctx *x, struct vmbus_client_channel *ch)
{
	for (uint32_t i = 0; i < x->nch; i++) {
		if (x->ch[i] == ch) {
			x->ch[i] = x->ch[--x->nch];
			return;
		}
	}
}

static void on_packets(void *arg, struct vmbus_client_channel *ch)
{
	struct ctx *x = arg;
	uint8_t buf[512];
	struct vmbus_packet pkt;
	int err, n = 0;

	while ((err = vmbus_client_channel_recv(ch, buf, sizeof(buf), &pkt)) == 0) {
		if (pkt.len > sizeof(buf) || pkt.data < buf || pkt.data + pkt.data_len > buf + pkt.len ||
		    pkt.ext + pkt.ext_len > pkt.data)
			abort();
		x->received++;
		/* Answer a completion-requested packet, as drivers do. */
		if (pkt.flags & VMBUS_PKT_FLAG_COMPLETION_REQUESTED)
			vmbus_client_channel_send_inband(ch, pkt.trans_id, 0, pkt.data,
						  pkt.data_len < 64 ? pkt.data_len : 64);
		if (++n > 4096)
			abort(); /* a ring cannot hold this many */
	}
	if (err != -EAGAIN && err != -EBADMSG && err != -EMSGSIZE && err != -ENOTCONN)
		abort();
}

static int probe(void *ctx, struct vmbus_client_channel *ch)
{
	struct ctx *x = ctx;
	int err = vmbus_client_channel_open(ch, 2 * HV_PAGE_SIZE, 3 * HV_PAGE_SIZE, "fuzz", 4,
				     on_packets, x);
	if (err == 0)
		hold(x, ch);
	return err;
}

static void removed(void *ctx, struct vmbus_client_channel *ch)
{
	drop(ctx, ch);
}

static void subchannel(void *ctx, struct vmbus_client_channel *primary,
		       struct vmbus_client_channel *sub)
{
	struct ctx *x = ctx;
	(void)primary;
	hold(x, sub);
	vmbus_client_channel_open(sub, 2 * HV_PAGE_SIZE, 2 * HV_PAGE_SIZE, NULL, 0, on_packets, x);
}

static struct hv_guid instance(uint8_t n)
{
	return HV_GUID(0xC0000000u + n, 0, 0, 0, 0, 0, 0, 0, 0, 0, n);
}

static void shaped_message(struct ctx *x, struct cursor *cur)
{
	uint8_t m[VMBUS_MAX_MESSAGE_SIZE];
	uint32_t type = byte(cur) % VMBUS_MSG_COUNT;
	uint32_t relid = u16(cur) % 2100;
	uint32_t id = u32(cur);
	uint32_t status = byte(cur) < 200 ? 0 : 1;
	uint8_t cls = byte(cur), inst = byte(cur), sub = byte(cur) % 4;
	uint32_t size = 8;

	memset(m, 0, sizeof(m));
	memcpy(m, &type, 4);
	/* Handles and open ids near what the client uses. */
	uint32_t near_gpadl = 0xE1E10u + (id % 8);
	switch (type) {
	case VMBUS_MSG_OFFERCHANNEL: {
		struct hv_guid g = instance(inst % 8);
		struct vmbus_msg_offer_channel o = fh_make_offer(
			cls % 3 == 0 ? &SCSI : cls % 3 == 1 ? &NIC : &OTHER, &g, sub, relid);
		o.interrupt_flags = (uint16_t)(id & 1);
		memcpy(m, &o, sizeof(o));
		size = sizeof(o);
		break;
	}
	case VMBUS_MSG_RESCIND_CHANNELOFFER:
	case VMBUS_MSG_CLOSECHANNEL:
	case VMBUS_MSG_RELID_RELEASED:
		memcpy(m + 8, &relid, 4);
		size = 12;
		break;
	case VMBUS_MSG_OPENCHANNEL_RESULT: {
		struct vmbus_msg_open_result r = {{type, 0}, relid, id & 1 ? relid : id, status};
		memcpy(m, &r, sizeof(r));
		size = sizeof(r);
		break;
	}
	case VMBUS_MSG_GPADL_CREATED: {
		struct vmbus_msg_gpadl_created r = {{type, 0}, relid, near_gpadl, status};
		memcpy(m, &r, sizeof(r));
		size = sizeof(r);
		break;
	}
	case VMBUS_MSG_GPADL_TORNDOWN: {
		struct vmbus_msg_gpadl_torndown r = {{type, 0}, near_gpadl};
		memcpy(m, &r, sizeof(r));
		size = sizeof(r);
		break;
	}
	case VMBUS_MSG_VERSION_RESPONSE: {
		struct vmbus_msg_version_response r = {{type, 0}, (uint8_t)(id & 1), 0, 0, id >> 8};
		memcpy(m, &r, sizeof(r));
		size = sizeof(r);
		break;
	}
	case VMBUS_MSG_MODIFYCHANNEL_RESPONSE: {
		struct vmbus_msg_modify_channel_response r = {{type, 0}, relid, status};
		memcpy(m, &r, sizeof(r));
		size = sizeof(r);
		break;
	}
	default:
		size = 8 + (id % 64);
		break;
	}
	fh_queue(x->h, m, size);
}

static struct vmbus_client_channel *pick(struct ctx *x, uint8_t b)
{
	return x->nch ? x->ch[b % x->nch] : NULL;
}

static void ring_write(struct ctx *x, struct cursor *cur)
{
	uint8_t which = byte(cur), len = byte(cur), bytes[256];
	uint16_t off = u16(cur);
	struct vmbus_client_channel *ch = pick(x, which);
	take(cur, bytes, len);
	if (!ch)
		return;
	struct vmbus_client_channel_info info;
	vmbus_client_channel_info(ch, &info);
	struct fh_chan *hc = fh_chan(x->h, info.relid);
	if (!hc || !hc->open || !hc->base)
		return;
	/* Any byte of the GPADL's pages: headers, data, the trailer words. */
	uint32_t span = hc->pages * HV_PAGE_SIZE;
	uint32_t at = off % span;
	uint32_t n = len < span - at ? len : span - at;
	memcpy(hc->base + at, bytes, n);
	fh_raise_event(x->h, info.target_vp < VPS ? info.target_vp : 0, info.relid);
}

static void guest_op(struct ctx *x, struct cursor *cur)
{
	uint8_t which = byte(cur), arg = byte(cur);
	struct vmbus_client_channel *ch = pick(x, arg);
	uint8_t buf[256];
	struct vmbus_packet pkt;

	memset(buf, which, sizeof(buf));
	switch (which % 11) {
	case 0:
		vmbus_client_process(x->c);
		break;
	case 1:
		if (ch)
			vmbus_client_channel_send_inband(ch, arg, arg & 1, buf, arg);
		break;
	case 2:
		if (ch)
			vmbus_client_channel_close(ch);
		break;
	case 3:
		if (ch)
			vmbus_client_channel_open(ch, 2 * HV_PAGE_SIZE, (2 + arg % 3) * HV_PAGE_SIZE, NULL, 0,
					   on_packets, x);
		break;
	case 4:
		if (ch)
			vmbus_client_channel_retarget(ch, arg % (VPS + 1));
		break;
	case 5:
		vmbus_client_unload(x->c);
		if (x->nch)
			abort(); /* every driver heard of every channel going */
		break;
	case 6:
		vmbus_client_connect(x->c);
		break;
	case 7:
		vmbus_client_wait_work(x->c, 0);
		break;
	case 8:
		if (ch && vmbus_client_channel_recv(ch, buf, arg, &pkt) == 0 && pkt.len > arg)
			abort();
		break;
	case 9:
		if (ch) {
			struct vmbus_client_channel_info info;
			vmbus_client_channel_info(ch, &info);
			while (fh_recv(x->h, info.relid, buf, sizeof(buf), &pkt) == 0)
				;
		}
		break;
	case 10:
		if (ch) {
			uint64_t pfn = arg;
			struct vmbus_gpa_range_out r = {.byte_count = 1 + arg, .pfns = &pfn};
			vmbus_client_channel_send_gpa_direct(ch, arg, &r, 1, buf, arg % 32);
		}
		break;
	}
}

static void switches(struct ctx *x, uint8_t b)
{
	struct fake_vmbus_host *h = x->h;
	h->drop_gpadl_created = b & 1;
	h->drop_open_result = b & 2;
	h->drop_torndown = b & 4;
	h->drop_modify_response = b & 8;
	h->drop_unload_response = b & 16;
	h->gpadl_status = b & 32 ? 1 : 0;
	h->open_status = b & 64 ? 1 : 0;
	h->modify_status = b & 128 ? 1 : 0;
	h->rescind_on_open = (b & 0x60) == 0x60;
}

static void check_listing(void *arg, const struct vmbus_client_channel_info *i)
{
	(void)arg;
	if (i->relid < VMBUS_RELID_MIN || i->relid > VMBUS_RELID_MAX || i->target_vp >= VPS ||
	    i->state > VMBUS_CLIENT_RESCINDED)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cursor cur = {data, size, 0};
	struct ctx *x = calloc(1, sizeof(*x));

	if (!x)
		return 0;
	uint8_t options = byte(&cur);
	fake_hv_init(&x->f);
	struct hv_guest_config gcfg = {.vp_count = VPS};
	if (hv_guest_init(&x->g, &x->f.port, &gcfg))
		abort();
	for (uint32_t i = 0; i < VPS; i++) {
		x->f.current_vp = i;
		if (hv_guest_vp_init(&x->g))
			abort();
	}
	x->f.current_vp = 0;
	uint32_t allocs = x->f.live_allocs;
	int locks = x->f.locks_live;

	x->h = fh_new(&x->f, &x->g);
	x->h->deliver_in_hypercall = options & 8;
	x->h->refuse_conn4 = options & 16;
	x->h->honest_words = true;
	struct hv_guid i0 = instance(0), i1 = instance(1), i2 = instance(2);
	fh_add_offer(x->h, &SCSI, &i0, 0, 1);
	fh_add_offer(x->h, &OTHER, &i1, 0, 2);
	if (options & 64) {
		fh_add_offer(x->h, &NIC, &i2, 0, 3);
		fh_add_offer(x->h, &NIC, &i2, 1, 4);
	}

	int err;
	struct vmbus_client_config cfg = {.max_version = versions[options & 7],
					  .timeout_ns = 1000000};
	x->c = vmbus_client_new(&x->g, &cfg, &err);
	if (!x->c)
		abort();
	x->scsi = (struct vmbus_driver){.class_id = SCSI, .name = "scsi", .fast = !(options & 32),
					.probe = probe, .remove = removed,
					.subchannel = subchannel, .ctx = x};
	x->nic = x->scsi;
	x->nic.class_id = NIC;
	x->nic.name = "nic";
	if (vmbus_client_register_driver(x->c, &x->scsi) ||
	    vmbus_client_register_driver(x->c, &x->nic))
		abort();
	int conn = vmbus_client_connect(x->c);
	/* Refused connection 4 still leaves 4.1 and older. */
	if (conn != 0 || x->nch == 0)
		abort();

	struct vmbus_client_stats before, after;
	vmbus_client_get_stats(x->c, &before);
	for (int ops = 0; more(&cur) && ops < MAX_OPS; ops++) {
		uint8_t op = byte(&cur) % 8;
		switch (op) {
		case 0: {
			uint8_t len = byte(&cur), m[256];
			take(&cur, m, len);
			fh_queue(x->h, m, len > VMBUS_MAX_MESSAGE_SIZE ? VMBUS_MAX_MESSAGE_SIZE : len);
			break;
		}
		case 1:
			shaped_message(x, &cur);
			break;
		case 2: {
			uint8_t vp = byte(&cur);
			fh_raise_event(x->h, vp % VPS, u16(&cur) % HV_EVENT_FLAGS_COUNT);
			break;
		}
		case 3:
			ring_write(x, &cur);
			break;
		case 4: {
			uint8_t which = byte(&cur), len = byte(&cur), m[256];
			take(&cur, m, len);
			struct vmbus_client_channel *ch = pick(x, which);
			if (ch) {
				struct vmbus_client_channel_info info;
				vmbus_client_channel_info(ch, &info);
				fh_send(x->h, info.relid, which, m, len);
			}
			break;
		}
		case 5:
			guest_op(x, &cur);
			break;
		case 6:
			switches(x, byte(&cur));
			break;
		case 7:
			fh_deliver_all(x->h);
			break;
		}
		vmbus_client_for_each_channel(x->c, check_listing, NULL);
		vmbus_client_get_stats(x->c, &after);
		if (after.bad_messages < before.bad_messages || after.offers < before.offers)
			abort();
		before = after;
	}
	fh_deliver_all(x->h);
	vmbus_client_process(x->c);

	vmbus_client_free(x->c);
	/* Every lock and event back; pages only as many as the host kept. */
	if (x->nch || x->f.locks_live != locks || x->f.events_live || x->f.lock_errors ||
	    x->f.event_errors || x->f.live_allocs < allocs)
		abort();
	for (uint32_t i = 0; i < VPS; i++) {
		x->f.current_vp = i;
		hv_guest_vp_exit(&x->g);
	}
	fh_free(x->h);
	fake_hv_destroy(&x->f);
	free(x);
	return 0;
}
