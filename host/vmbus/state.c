/* SPDX-License-Identifier: MIT */
/*
 * The VMBus server's state as a record (vmbus_server.h, "Save and load";
 * host/record/record.h). Layout, every field little-endian:
 *
 *   header  magic "HVKITVMB", u32 version, u32 VP count, u32 body
 *           length, u32 CRC-32 (zlib's) of the body
 *   body    u8 connected, u8 offers requested, u32 version, u32 message
 *           VP, u32 message SINT, u32 connects, u32 unloads;
 *           u32 offer count, then each offer in the server's order:
 *             class GUID, instance GUID (16 bytes each, as on the wire),
 *             u16 sub-channel index, u8 state, u8 re-offer pending (the
 *             KVP anomaly: offered again once its relid is released),
 *             u32 relid, u32 target VP; if open: u32 ring GPADL handle,
 *             u32 downstream ring offset (pages), u32 length and the
 *             device's state of the channel (vmbus_device_ops.save);
 *           u32 GPADL count, then each GPADL:
 *             u32 handle, u32 owner relid, u8 state, u8 teardown
 *             pending, u16 range count; pending: u32 range_buflen, u32
 *             bytes received, u32 failure status, the range words
 *             received (none once failed); created: u32 page count, the
 *             u64 PFNs
 *
 * The rings and every page a GPADL names are guest memory: they travel
 * with it. Neither the counters of status displays nor the throttle's
 * window are kept. Loading checks the whole record against the server
 * it goes into before anything changes (the same limits the message
 * handlers enforce: relids, VPs, GPADL sizes and RAM, the GPADL limit).
 */
#define _GNU_SOURCE /* qsort_r */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "vmbus_internal.h"

static const char state_magic[RECORD_MAGIC_BYTES] = "HVKITVMB";
#define STATE_VERSION 1u
/* A device's state of one channel, at most (a sanity bound). */
#define MAX_DEVICE_STATE (16u << 20)
/* The fewest bytes an offer and a GPADL take in a record: counts are
 * checked against what is left before anything is allocated. */
#define OFFER_MIN_BYTES (16 + 16 + 2 + 1 + 1 + 4 + 4)
#define GPADL_MIN_BYTES (4 + 4 + 1 + 1 + 2 + 4)

/* ------------------------------------------------------------------ */
/* Saving                                                              */
/* ------------------------------------------------------------------ */

static void put_guid(struct record_writer *w, const struct hv_guid *g)
{
	record_put(w, g, sizeof(*g));
}

/* The device's state of ch: a length, then what its save wrote. */
static int put_device_state(struct record_writer *w, struct vmbus_channel *ch)
{
	const struct vmbus_device_ops *ops = ch->dev->desc.ops;
	if (!ops->save || !ops->restore)
		return -ENOTSUP;
	size_t at = w->len;
	record_put32(w, 0); /* the length, once known */
	size_t room = w->len < w->cap ? w->cap - w->len : 0;
	size_t n = room;
	int err = ops->save(ch->dev->desc.dev, ch, room ? w->buf + w->len : NULL, &n);
	if (err == -ENOSPC && n <= room)
		err = -EIO; /* a device that had room and said it had not */
	else if (err == -ENOSPC)
		err = 0; /* counted on: the caller learns the size */
	if (err)
		return err;
	if (n > MAX_DEVICE_STATE)
		return -EOVERFLOW;
	if (at + 4 <= w->cap)
		for (int i = 0; i < 4; i++)
			w->buf[at + i] = (uint8_t)(n >> (8 * i));
	w->len += n;
	return 0;
}

static int put_offer(struct record_writer *w, const struct vmbus_offer_rec *o)
{
	put_guid(w, &o->class_id);
	put_guid(w, &o->instance_id);
	record_put16(w, o->sub_index);
	record_put8(w, (uint8_t)o->state);
	record_put8(w, o->reoffer != NULL);
	record_put32(w, o->relid);
	record_put32(w, o->target_vp);
	if (o->state != VMBUS_CHANNEL_OPEN)
		return 0;
	record_put32(w, o->open->ring_gpadl->handle);
	record_put32(w, o->open->downstream_offset);
	return put_device_state(w, o->open);
}

static void put_gpadl(struct record_writer *w, const struct gpadl *g)
{
	record_put32(w, g->handle);
	record_put32(w, g->owner_relid);
	record_put8(w, (uint8_t)g->state);
	record_put8(w, g->teardown_pending);
	record_put16(w, g->range_count);
	if (g->state == GPADL_PENDING) {
		record_put32(w, g->want);
		record_put32(w, g->have);
		record_put32(w, g->failed);
		if (!g->failed)
			record_put(w, g->buf, g->have);
		return;
	}
	record_put32(w, g->pfn_count);
	for (uint32_t i = 0; i < g->pfn_count; i++)
		record_put64(w, g->pfns[i]);
}

static int put_state(struct record_writer *w, struct vmbus_server *s)
{
	record_put8(w, s->conn == VMBUS_SERVER_CONNECTED);
	record_put8(w, s->offers_requested);
	record_put32(w, s->version);
	record_put32(w, s->msg_vp);
	record_put32(w, s->msg_sint);
	record_put32(w, s->connects);
	record_put32(w, s->unloads);
	record_put32(w, s->offer_count);
	for (struct vmbus_list *l = s->offers.next; l != &s->offers; l = l->next) {
		int err = put_offer(w, container_of(l, struct vmbus_offer_rec, link));
		if (err)
			return err;
	}
	record_put32(w, s->gpadls.count);
	for (struct vmbus_list *l = s->gpadls.all.next; l != &s->gpadls.all; l = l->next)
		put_gpadl(w, container_of(l, struct gpadl, link));
	return 0;
}

int vmbus_server_save_locked(struct vmbus_server *s, void *buf, size_t cap, size_t *len)
{
	struct record_writer w = record_writer(buf, cap);
	int err = put_state(&w, s);
	if (err)
		return err;
	return record_finish(&w, state_magic, STATE_VERSION, s->cfg.vp_count, len);
}

int vmbus_server_save(struct vmbus_server *s, void *buf, size_t cap, size_t *len)
{
	s->ops.lock(s->ctx);
	int err = vmbus_server_save_locked(s, buf, cap, len);
	s->ops.unlock(s->ctx);
	return err;
}

/* ------------------------------------------------------------------ */
/* Reading and checking                                                */
/* ------------------------------------------------------------------ */

struct loaded_offer {
	struct hv_guid class_id, instance_id;
	uint16_t sub_index;
	uint8_t state;
	bool reoffer;
	uint32_t relid, target_vp;
	/* Open: the rings and the device's state (inside the record). */
	uint32_t ring_gpadl, downstream_offset;
	const uint8_t *saved;
	uint32_t saved_len;
	struct vmbus_device *dev; /* live offers and re-offers: matched */
};

struct loaded_gpadl {
	uint32_t handle, owner_relid;
	uint8_t state;
	bool teardown_pending, used;
	uint16_t range_count;
	uint32_t want, have, failed;
	uint64_t *words; /* pending and not failed: `have` bytes */
	uint64_t *pfns;  /* created */
	uint32_t pfn_count;
	uint64_t reserved; /* held against the GPADL limit */
};

struct loaded {
	bool connected, offers_requested;
	uint32_t version, msg_vp, msg_sint, connects, unloads;
	uint32_t n_offers, n_gpadls;
	struct loaded_offer *offers;
	struct loaded_gpadl *gpadls;
	uint32_t *by_handle;                  /* GPADL indexes sorted by handle */
	int32_t by_relid[VMBUS_RELID_MAX + 1]; /* offer index, or -1 */
};

static void loaded_free(struct loaded *l)
{
	for (uint32_t i = 0; l->gpadls && i < l->n_gpadls; i++) {
		free(l->gpadls[i].words);
		free(l->gpadls[i].pfns);
	}
	free(l->gpadls);
	free(l->offers);
	free(l->by_handle);
}

static size_t left(const struct record_reader *r)
{
	return r->bad ? 0 : (size_t)(r->end - r->p);
}

static struct vmbus_device *device_find(struct vmbus_server *s, const struct hv_guid *class_id,
					const struct hv_guid *instance_id)
{
	for (struct vmbus_list *l = s->devices.next; l != &s->devices; l = l->next) {
		struct vmbus_device *d = container_of(l, struct vmbus_device, link);
		if (hv_guid_equal(&d->desc.class_id, class_id) &&
		    hv_guid_equal(&d->desc.instance_id, instance_id))
			return d;
	}
	return NULL;
}

static int read_header(struct record_reader *r, const struct vmbus_server *s, struct loaded *l)
{
	uint8_t connected = record_get8(r), requested = record_get8(r);
	l->version = record_get32(r);
	l->msg_vp = record_get32(r);
	l->msg_sint = record_get32(r);
	l->connects = record_get32(r);
	l->unloads = record_get32(r);
	l->connected = connected == 1;
	l->offers_requested = requested == 1;
	if (r->bad || connected > 1 || requested > 1 || l->msg_vp >= s->cfg.vp_count ||
	    l->msg_sint >= HV_SYNIC_SINT_COUNT)
		return -EINVAL;
	if (!l->connected)
		return l->version || l->offers_requested ? -EINVAL : 0;
	/* What INITIATE_CONTACT would have accepted from this server. */
	return vmbus_version_known(l->version) && l->version <= s->cfg.max_version &&
			       l->msg_sint == VMBUS_MESSAGE_SINT && l->connects
		       ? 0
		       : -EINVAL;
}

static int read_offer(struct record_reader *r, struct vmbus_server *s, const struct loaded *l,
		      struct loaded_offer *o)
{
	record_get(r, &o->class_id, sizeof(o->class_id));
	record_get(r, &o->instance_id, sizeof(o->instance_id));
	o->sub_index = record_get16(r);
	o->state = record_get8(r);
	uint8_t reoffer = record_get8(r);
	o->relid = record_get32(r);
	o->target_vp = record_get32(r);
	o->reoffer = reoffer == 1;
	if (r->bad || o->state > VMBUS_CHANNEL_RESCINDED || reoffer > 1 ||
	    o->target_vp >= s->cfg.vp_count)
		return -EINVAL;
	if (o->reoffer && (o->state != VMBUS_CHANNEL_RESCINDED || o->sub_index))
		return -EINVAL;
	bool offered = o->state != VMBUS_CHANNEL_UNOFFERED;
	if (offered != (o->relid != 0) || o->relid > VMBUS_RELID_MAX ||
	    (offered && !(l->connected && l->offers_requested)))
		return -EINVAL;
	if (o->state == VMBUS_CHANNEL_OPEN) {
		o->ring_gpadl = record_get32(r);
		o->downstream_offset = record_get32(r);
		o->saved_len = record_get32(r);
		if (o->saved_len > left(r))
			return -EINVAL;
		o->saved = r->p;
		r->p += o->saved_len;
	}
	if (o->state != VMBUS_CHANNEL_RESCINDED || o->reoffer) {
		o->dev = device_find(s, &o->class_id, &o->instance_id);
		if (!o->dev)
			return -ENODEV; /* not a device of this machine */
	}
	if (o->state == VMBUS_CHANNEL_OPEN &&
	    (!o->dev->desc.ops->save || !o->dev->desc.ops->restore))
		return -ENOTSUP;
	return r->bad ? -EINVAL : 0;
}

/* Offer i against those before it: one relid each, one offer per device
 * and sub-channel index, a re-offer only for a device without offers. */
static int check_offer_unique(struct loaded *l, uint32_t i)
{
	const struct loaded_offer *o = &l->offers[i];
	if (o->relid) {
		if (l->by_relid[o->relid] >= 0)
			return -EINVAL;
		l->by_relid[o->relid] = (int32_t)i;
	}
	if (!o->dev)
		return 0;
	bool live = o->state != VMBUS_CHANNEL_RESCINDED;
	for (uint32_t k = 0; k < i; k++) {
		const struct loaded_offer *p = &l->offers[k];
		if (p->dev != o->dev)
			continue;
		bool p_live = p->state != VMBUS_CHANNEL_RESCINDED;
		if ((live && p_live && p->sub_index == o->sub_index) || (live && p->reoffer) ||
		    (p_live && o->reoffer) || (p->reoffer && o->reoffer))
			return -EINVAL;
	}
	return 0;
}

/* A device's live sub-channels are 1..n under a live primary, as the
 * server numbers them. */
static int check_subchannels(const struct loaded *l)
{
	for (uint32_t i = 0; i < l->n_offers; i++) {
		const struct loaded_offer *o = &l->offers[i];
		if (o->state == VMBUS_CHANNEL_RESCINDED || !o->sub_index)
			continue;
		uint32_t subs = 0;
		bool primary = false;
		for (uint32_t k = 0; k < l->n_offers; k++) {
			const struct loaded_offer *p = &l->offers[k];
			if (p->dev != o->dev || p->state == VMBUS_CHANNEL_RESCINDED)
				continue;
			primary |= p->sub_index == 0;
			subs += p->sub_index != 0;
		}
		if (!primary || o->sub_index > subs || subs > VMBUS_SERVER_MAX_SUBCHANNELS)
			return -EINVAL;
	}
	return 0;
}

static int read_offers(struct record_reader *r, struct vmbus_server *s, struct loaded *l)
{
	for (uint32_t i = 0; i <= VMBUS_RELID_MAX; i++)
		l->by_relid[i] = -1;
	l->n_offers = record_get32(r);
	if (r->bad || l->n_offers > VMBUS_RELID_MAX || l->n_offers > left(r) / OFFER_MIN_BYTES)
		return -EINVAL;
	l->offers = calloc(l->n_offers ? l->n_offers : 1, sizeof(*l->offers));
	if (!l->offers)
		return -ENOMEM;
	for (uint32_t i = 0; i < l->n_offers; i++) {
		int err = read_offer(r, s, l, &l->offers[i]);
		if (!err)
			err = check_offer_unique(l, i);
		if (err)
			return err;
	}
	return check_subchannels(l);
}

static const uint32_t gpadl_failures[] = {
	0, VMBUS_STATUS_UNSUCCESSFUL, VMBUS_STATUS_INVALID_PARAMETER, VMBUS_STATUS_QUOTA_EXCEEDED,
};

static bool failure_known(uint32_t status)
{
	for (size_t i = 0; i < sizeof(gpadl_failures) / sizeof(gpadl_failures[0]); i++)
		if (gpadl_failures[i] == status)
			return true;
	return false;
}

/* A GPADL still being sent: what gpadl_handle_header and _body let
 * through, and the bytes it holds against the limit as they reserved. */
static int read_pending(struct record_reader *r, const struct vmbus_server *s,
			struct loaded_gpadl *g)
{
	g->want = record_get32(r);
	g->have = record_get32(r);
	g->failed = record_get32(r);
	if (r->bad || !g->range_count || g->want % 8 || g->want / 16 < g->range_count ||
	    g->have % 8 || g->have < 8 || g->have >= g->want || !failure_known(g->failed))
		return -EINVAL;
	uint64_t bound = ((uint64_t)g->want / 8 - g->range_count) * HV_PAGE_SIZE;
	/* A header over the limit failed at once, holding nothing. */
	if (g->failed == VMBUS_STATUS_QUOTA_EXCEEDED || g->failed == VMBUS_STATUS_UNSUCCESSFUL)
		return 0;
	if (bound > s->cfg.gpadl_limit)
		return -EINVAL;
	g->reserved = bound;
	if (g->failed)
		return 0;
	if (g->have > left(r))
		return -EINVAL;
	g->words = malloc(g->want);
	if (!g->words)
		return -ENOMEM;
	record_get(r, g->words, g->have);
	return gpadl_ranges_plausible(g->words, g->have, g->want, g->range_count) ? 0 : -EINVAL;
}

/* A created GPADL: every page guest RAM, as gpadl_complete checked. */
static int read_created(struct record_reader *r, const struct vmbus_server *s,
			struct loaded_gpadl *g)
{
	g->pfn_count = record_get32(r);
	if (r->bad || !g->pfn_count || g->pfn_count > left(r) / 8)
		return -EINVAL;
	g->pfns = malloc((size_t)g->pfn_count * sizeof(*g->pfns));
	if (!g->pfns)
		return -ENOMEM;
	for (uint32_t i = 0; i < g->pfn_count; i++) {
		g->pfns[i] = record_get64(r);
		if (g->pfns[i] > VMBUS_GPA_MAX_PFN ||
		    !guest_memory_ptr(s->mem, g->pfns[i] << 12, HV_PAGE_SIZE))
			return -EINVAL;
	}
	g->reserved = (uint64_t)g->pfn_count * HV_PAGE_SIZE;
	return 0;
}

static int read_gpadl(struct record_reader *r, const struct vmbus_server *s,
		      const struct loaded *l, struct loaded_gpadl *g)
{
	g->handle = record_get32(r);
	g->owner_relid = record_get32(r);
	g->state = record_get8(r);
	uint8_t teardown = record_get8(r);
	g->range_count = record_get16(r);
	g->teardown_pending = teardown == 1;
	/* Its channel must be one the guest knows (GPADLs of unoffered
	 * channels go with them). */
	if (r->bad || g->owner_relid < VMBUS_RELID_MIN || g->owner_relid > VMBUS_RELID_MAX ||
	    l->by_relid[g->owner_relid] < 0 || teardown > 1 ||
	    (g->state != GPADL_PENDING && g->state != GPADL_READY) ||
	    (g->teardown_pending && g->state != GPADL_READY))
		return -EINVAL;
	return g->state == GPADL_PENDING ? read_pending(r, s, g) : read_created(r, s, g);
}

static int by_handle_order(const void *a, const void *b, void *arg)
{
	const struct loaded_gpadl *g = arg;
	uint32_t x = g[*(const uint32_t *)a].handle, y = g[*(const uint32_t *)b].handle;
	return x < y ? -1 : x > y;
}

/* Sorted by handle, refusing duplicates. */
static int index_gpadls(struct loaded *l)
{
	l->by_handle = malloc(sizeof(*l->by_handle) * (l->n_gpadls ? l->n_gpadls : 1));
	if (!l->by_handle)
		return -ENOMEM;
	for (uint32_t i = 0; i < l->n_gpadls; i++)
		l->by_handle[i] = i;
	qsort_r(l->by_handle, l->n_gpadls, sizeof(*l->by_handle), by_handle_order, l->gpadls);
	for (uint32_t i = 1; i < l->n_gpadls; i++)
		if (l->gpadls[l->by_handle[i]].handle == l->gpadls[l->by_handle[i - 1]].handle)
			return -EINVAL;
	return 0;
}

static struct loaded_gpadl *gpadl_by_handle(struct loaded *l, uint32_t handle)
{
	uint32_t lo = 0, hi = l->n_gpadls;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		struct loaded_gpadl *g = &l->gpadls[l->by_handle[mid]];
		if (g->handle == handle)
			return g;
		if (g->handle < handle)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int read_gpadls(struct record_reader *r, const struct vmbus_server *s, struct loaded *l)
{
	l->n_gpadls = record_get32(r);
	if (r->bad || l->n_gpadls > VMBUS_SERVER_MAX_GPADLS ||
	    l->n_gpadls > left(r) / GPADL_MIN_BYTES)
		return -EINVAL;
	l->gpadls = calloc(l->n_gpadls ? l->n_gpadls : 1, sizeof(*l->gpadls));
	if (!l->gpadls)
		return -ENOMEM;
	uint64_t reserved = 0;
	for (uint32_t i = 0; i < l->n_gpadls; i++) {
		int err = read_gpadl(r, s, l, &l->gpadls[i]);
		if (err)
			return err;
		reserved += l->gpadls[i].reserved;
		if (reserved > s->cfg.gpadl_limit)
			return -EINVAL;
	}
	return index_gpadls(l);
}

/* Each open channel's rings: a created GPADL of its own relid that no
 * other channel uses, split as handle_open allows; a teardown pending
 * only on GPADLs in use. */
static int check_rings(struct loaded *l)
{
	for (uint32_t i = 0; i < l->n_offers; i++) {
		const struct loaded_offer *o = &l->offers[i];
		if (o->state != VMBUS_CHANNEL_OPEN)
			continue;
		struct loaded_gpadl *g = gpadl_by_handle(l, o->ring_gpadl);
		uint32_t off = o->downstream_offset;
		if (!g || g->state != GPADL_READY || g->owner_relid != o->relid || g->used ||
		    off < 2 || off > g->pfn_count || g->pfn_count - off < 2)
			return -EINVAL;
		g->used = true;
	}
	for (uint32_t i = 0; i < l->n_gpadls; i++)
		if (l->gpadls[i].teardown_pending && !l->gpadls[i].used)
			return -EINVAL;
	return 0;
}

static int read_state(struct record_reader *r, struct vmbus_server *s, struct loaded *l)
{
	int err = read_header(r, s, l);
	if (!err)
		err = read_offers(r, s, l);
	if (!err)
		err = read_gpadls(r, s, l);
	if (!err)
		err = check_rings(l);
	if (!err && !record_done(r))
		err = -EINVAL; /* nothing may follow */
	return err;
}

/* ------------------------------------------------------------------ */
/* Applying                                                            */
/* ------------------------------------------------------------------ */

/* A server that has met no guest: disconnected, never connected, no
 * GPADLs, and only its devices' unoffered primaries. */
static bool fresh(const struct vmbus_server *s)
{
	if (s->conn != VMBUS_SERVER_DISCONNECTED || s->connects || s->gpadls.count)
		return false;
	for (const struct vmbus_list *l = s->offers.next; l != &s->offers; l = l->next) {
		const struct vmbus_offer_rec *o = container_of(l, struct vmbus_offer_rec, link);
		if (o->state != VMBUS_CHANNEL_UNOFFERED || o->sub_index || !o->dev)
			return false;
	}
	return true;
}

/* A rescinded offer the guest has not released: on no device's list. */
static struct vmbus_offer_rec *rescinded_offer_new(struct vmbus_server *s,
						   const struct loaded_offer *lo)
{
	struct vmbus_offer_rec *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->class_id = lo->class_id;
	o->instance_id = lo->instance_id;
	o->sub_index = lo->sub_index;
	vmbus_list_init(&o->dev_link);
	vmbus_list_add_tail(&s->offers, &o->link);
	s->offer_count++;
	return o;
}

static int apply_offers(struct vmbus_server *s, const struct loaded *l)
{
	for (uint32_t i = 0; i < l->n_offers; i++) {
		const struct loaded_offer *lo = &l->offers[i];
		bool live = lo->state != VMBUS_CHANNEL_RESCINDED;
		struct vmbus_offer_rec *o = live ? vmbus_offer_new(s, lo->dev, lo->sub_index)
						 : rescinded_offer_new(s, lo);
		if (!o)
			return -ENOMEM;
		/* Open channels open below, from offered. */
		o->state = lo->state == VMBUS_CHANNEL_OPEN ? VMBUS_CHANNEL_OFFERED
							   : (enum vmbus_server_channel_state)lo->state;
		o->relid = lo->relid;
		o->target_vp = lo->target_vp;
		if (lo->relid)
			s->relids[lo->relid] = o;
		if (live && lo->sub_index > lo->dev->subchannels)
			lo->dev->subchannels = lo->sub_index;
		if (lo->reoffer) {
			vmbus_device_get(lo->dev);
			o->reoffer = lo->dev;
		}
	}
	return 0;
}

static int apply_gpadls(struct vmbus_server *s, struct loaded *l)
{
	for (uint32_t i = 0; i < l->n_gpadls; i++) {
		struct loaded_gpadl *lg = &l->gpadls[i];
		struct gpadl *g = calloc(1, sizeof(*g));
		if (!g)
			return -ENOMEM;
		g->handle = lg->handle;
		g->owner = s->relids[lg->owner_relid];
		g->owner_relid = lg->owner_relid;
		g->state = lg->state;
		g->range_count = lg->range_count;
		g->want = lg->want;
		g->have = lg->have;
		g->failed = lg->failed;
		g->reserved = lg->reserved;
		g->buf = lg->words;
		g->pfns = lg->pfns;
		g->pfn_count = lg->pfn_count;
		g->teardown_pending = lg->teardown_pending;
		lg->words = NULL;
		lg->pfns = NULL;
		gpadl_insert_loaded(s, g);
	}
	return 0;
}

static int apply_channels(struct vmbus_server *s, const struct loaded *l)
{
	for (uint32_t i = 0; i < l->n_offers; i++) {
		const struct loaded_offer *lo = &l->offers[i];
		if (lo->state != VMBUS_CHANNEL_OPEN)
			continue;
		/* A device with no state saves nothing: give it a non-NULL
		 * pointer all the same, so it restores rather than opens. */
		static const uint8_t none;
		int err = vmbus_channel_open(s, s->relids[lo->relid],
					     gpadl_find(s, lo->ring_gpadl), lo->downstream_offset,
					     lo->target_vp, NULL, lo->saved_len ? lo->saved : &none,
					     lo->saved_len);
		if (err) {
			vmbus_log(s, "vmbus: relid %u: its device refused its saved state (%d)",
				  lo->relid, err);
			return err;
		}
	}
	return 0;
}

/* Each reopened channel's device looks at its rings once: the guest may
 * have signalled just before the save, and a device may hold work for
 * it (completions that waited for ring space). */
static void notify_open_channels(struct vmbus_server *s)
{
	for (struct vmbus_list *l = s->offers.next; l != &s->offers; l = l->next) {
		struct vmbus_offer_rec *o = container_of(l, struct vmbus_offer_rec, link);
		if (o->state == VMBUS_CHANNEL_OPEN)
			o->dev->desc.ops->notify(o->dev->desc.dev, o->open);
	}
}

/* Devices the record does not know (added since the save): a primary
 * offer, sent at once if the guest listens, as a hot add. */
static void offer_new_devices(struct vmbus_server *s)
{
	for (struct vmbus_list *l = s->devices.next; l != &s->devices; l = l->next) {
		struct vmbus_device *d = container_of(l, struct vmbus_device, link);
		bool known = !vmbus_list_empty(&d->offers);
		for (struct vmbus_list *k = s->offers.next; !known && k != &s->offers; k = k->next)
			known = container_of(k, struct vmbus_offer_rec, link)->reoffer == d;
		if (known)
			continue;
		struct vmbus_offer_rec *o = vmbus_offer_new(s, d, 0);
		if (o)
			vmbus_offer_now(s, o);
		else
			vmbus_log(s, "vmbus: out of memory offering %s", d->name);
	}
}

/* After a refusal part-way: as new, nothing of the record left (every
 * device gets a fresh primary from offer_new_devices). */
static void forget(struct vmbus_server *s)
{
	vmbus_connection_reset(s);
	/* Freeing a re-offer's rescinded offer adds a primary: go on until
	 * none is left. */
	while (!vmbus_list_empty(&s->offers))
		vmbus_offer_free(s, container_of(s->offers.next, struct vmbus_offer_rec, link));
	for (struct vmbus_list *l = s->devices.next; l != &s->devices; l = l->next)
		container_of(l, struct vmbus_device, link)->subchannels = 0;
	s->connects = s->unloads = 0;
}

static int apply(struct vmbus_server *s, struct loaded *l)
{
	while (!vmbus_list_empty(&s->offers))
		vmbus_offer_free(s, container_of(s->offers.next, struct vmbus_offer_rec, link));
	s->conn = l->connected ? VMBUS_SERVER_CONNECTED : VMBUS_SERVER_DISCONNECTED;
	s->version = l->version;
	s->msg_vp = l->msg_vp;
	s->msg_sint = l->msg_sint;
	s->offers_requested = l->offers_requested;
	s->connects = l->connects;
	s->unloads = l->unloads;
	int err = apply_offers(s, l);
	if (!err)
		err = apply_gpadls(s, l);
	if (!err)
		err = apply_channels(s, l);
	if (err)
		forget(s);
	else
		notify_open_channels(s);
	offer_new_devices(s);
	return err;
}

int vmbus_server_load(struct vmbus_server *s, const void *buf, size_t len)
{
	struct record_reader r;
	int err = record_open(buf, len, state_magic, STATE_VERSION, s->cfg.vp_count, &r);
	if (err)
		return err;
	struct loaded *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	s->ops.lock(s->ctx);
	err = fresh(s) ? read_state(&r, s, l) : -EBUSY;
	if (!err)
		err = apply(s, l);
	s->ops.unlock(s->ctx);
	loaded_free(l);
	free(l);
	return err;
}
