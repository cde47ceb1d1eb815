/* SPDX-License-Identifier: MIT */
/*
 * Open channels: the two rings mapped from the ring GPADL, references,
 * signals from the guest (with interrupt hygiene) and to it.
 *
 * A struct vmbus_channel is one opening of an offer. The server holds a
 * reference from OPENCHANNEL to close; devices may hold more. Closing
 * detaches it from its offer (signals stop, the device is told), and the
 * last reference unmaps the rings and frees it. That last put needs no
 * lock: the instance is off every server list by then, and what it still
 * points to (its device) is reference-counted, so a worker thread may drop
 * its reference from anywhere.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmbus_internal.h"

/* ------------------------------------------------------------------ */
/* References                                                          */
/* ------------------------------------------------------------------ */

void vmbus_device_get(struct vmbus_device *d)
{
	__atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
}

void vmbus_device_put(struct vmbus_device *d)
{
	if (__atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	free(d->name);
	free(d);
}

void vmbus_channel_get(struct vmbus_channel *ch)
{
	__atomic_add_fetch(&ch->refs, 1, __ATOMIC_RELAXED);
}

void vmbus_channel_put(struct vmbus_channel *ch)
{
	if (__atomic_sub_fetch(&ch->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	vmbus_ring_unmap(&ch->in_map);
	vmbus_ring_unmap(&ch->out_map);
	vmbus_device_put(ch->dev);
	free(ch);
}

/* ------------------------------------------------------------------ */
/* Open and close                                                      */
/* ------------------------------------------------------------------ */

/* Maps pages [first, first + count) of the GPADL as one mirrored ring. */
static int map_ring(struct vmbus_server *s, const struct gpadl *g, uint32_t first,
		    uint32_t count, struct vmbus_ring_mapping *map, struct vmbus_ring_mem *mem)
{
	uint64_t *offsets = malloc(sizeof(*offsets) * count);
	int fd = -1, err = 0;

	if (!offsets)
		return -ENOMEM;
	for (uint32_t i = 0; i < count && !err; i++) {
		int page_fd;
		/* PFNs were checked to be RAM when the GPADL was created. */
		err = guest_memory_file_offset(s->mem, g->pfns[first + i] << 12, &page_fd,
					       &offsets[i]);
		if (!err && fd >= 0 && page_fd != fd)
			err = -EXDEV; /* one mapping needs one file */
		fd = page_fd;
	}
	if (!err)
		err = vmbus_ring_map(fd, offsets, count, map, mem);
	free(offsets);
	return err;
}

int vmbus_channel_open(struct vmbus_server *s, struct vmbus_offer_rec *o, struct gpadl *g,
		       uint32_t downstream_offset, uint32_t target_vp,
		       const uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES],
		       const void *saved, size_t saved_len)
{
	struct vmbus_channel *ch = calloc(1, sizeof(*ch));
	struct vmbus_ring_mem in_mem, out_mem;
	uint32_t connection_id = VMBUS_SERVER_CHANNEL_CONNECTION_BASE + o->relid;
	int err;

	if (!ch)
		return -ENOMEM;
	ch->s = s;
	ch->dev = o->dev;
	vmbus_device_get(ch->dev);
	ch->refs = 1; /* the server's, until close */
	ch->relid = o->relid;
	ch->target_vp = target_vp;
	ch->downstream_offset = downstream_offset;
	ch->version = s->version;
	ch->sub_index = o->sub_index;

	/* The guest's outbound ring (pages [0, offset)) is what the device
	 * reads; the rest is what it writes (channel.c __vmbus_open). */
	err = map_ring(s, g, 0, downstream_offset, &ch->in_map, &in_mem);
	if (!err)
		err = map_ring(s, g, downstream_offset, g->pfn_count - downstream_offset,
			       &ch->out_map, &out_mem);
	/* The guest reset both headers (ring_buffer.c hv_ringbuffer_init);
	 * restored, they hold the indices of the save. */
	if (!err)
		err = vmbus_ring_reader_attach(&ch->in, &in_mem);
	if (!err)
		err = vmbus_ring_writer_attach(&ch->out, &out_mem);
	if (err) {
		vmbus_log(s, "vmbus: relid %u: ring mapping failed (%d)", o->relid, err);
		vmbus_channel_put(ch);
		return err;
	}
	if (s->ops.connection_add) {
		err = s->ops.connection_add(s->ctx, connection_id);
		if (err) {
			vmbus_log(s, "vmbus: relid %u: connection %#x refused (%d)", o->relid,
				  connection_id, err);
			vmbus_channel_put(ch);
			return err;
		}
	}
	/* Open before the device sees it: it may signal from open. */
	ch->offer = o;
	ch->ring_gpadl = g;
	o->open = ch;
	o->state = VMBUS_CHANNEL_OPEN;
	o->target_vp = target_vp;
	o->window_start_ns = s->ops.now_ns(s->ctx);
	o->window_spurious = 0;
	o->throttled = false;
	g->in_use = true;

	const struct vmbus_device_ops *ops = ch->dev->desc.ops;
	err = saved ? ops->restore(ch->dev->desc.dev, ch, saved, saved_len)
		    : ops->open(ch->dev->desc.dev, ch, user_data);
	if (err) {
		o->open = NULL;
		o->state = VMBUS_CHANNEL_OFFERED;
		ch->offer = NULL;
		ch->ring_gpadl = NULL;
		g->in_use = false;
		if (s->ops.connection_remove)
			s->ops.connection_remove(s->ctx, connection_id);
		vmbus_channel_put(ch);
		return err < 0 ? err : -EIO;
	}
	return 0;
}

void vmbus_channel_close(struct vmbus_server *s, struct vmbus_offer_rec *o)
{
	struct vmbus_channel *ch = o->open;

	if (!ch)
		return;
	ch->dev->desc.ops->close(ch->dev->desc.dev, ch);
	if (s->ops.connection_remove)
		s->ops.connection_remove(s->ctx, VMBUS_SERVER_CHANNEL_CONNECTION_BASE + o->relid);
	o->open = NULL;
	o->state = VMBUS_CHANNEL_OFFERED;
	struct gpadl *g = ch->ring_gpadl;
	ch->offer = NULL;
	ch->ring_gpadl = NULL;
	gpadl_release_use(s, g);
	vmbus_channel_put(ch);
}

void vmbus_channel_set_target(struct vmbus_offer_rec *o, uint32_t vp)
{
	o->target_vp = vp;
	if (o->open)
		__atomic_store_n(&o->open->target_vp, vp, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Signals                                                             */
/* ------------------------------------------------------------------ */

/*
 * Nothing for the host to do: the guest-to-host ring holds nothing unread
 * and the host-to-guest ring has no space request armed. Read from the
 * shared headers, not the device's reader, which a device worker may be
 * using right now.
 */
static bool signal_is_spurious(const struct vmbus_channel *ch)
{
	const struct vmbus_ring_header *in = ch->in.mem.hdr;
	const struct vmbus_ring_header *out = ch->out.mem.hdr;

	return __atomic_load_n(&in->write_index, __ATOMIC_ACQUIRE) ==
		       __atomic_load_n(&in->read_index, __ATOMIC_RELAXED) &&
	       __atomic_load_n(&out->pending_send_sz, __ATOMIC_RELAXED) == 0;
}

/*
 * Interrupt hygiene. Spurious signals are counted per channel in one-second
 * windows; past spurious_signal_limit in a window the channel is throttled
 * until a window stays under it. Throttled, a spurious signal reaches the
 * device at most once per millisecond; a signal that has work always
 * does: without a server timer a held-back signal could be the guest's
 * last (it signals only an empty ring), and the guest would stall.
 */
void vmbus_server_handle_signal(struct vmbus_server *s, uint32_t vp, uint32_t connection_id)
{
	(void)vp;
	struct vmbus_offer_rec *o = NULL;
	if (connection_id > VMBUS_SERVER_CHANNEL_CONNECTION_BASE)
		o = vmbus_offer_by_relid(s, connection_id - VMBUS_SERVER_CHANNEL_CONNECTION_BASE);
	if (!o || !o->open) {
		if (!s->signal_log_done) {
			s->signal_log_done = true;
			vmbus_log(s, "vmbus: signal on connection %#x, no open channel",
				  connection_id);
		}
		return;
	}
	struct vmbus_channel *ch = o->open;
	uint64_t now = s->ops.now_ns(s->ctx);
	uint32_t limit = s->cfg.spurious_signal_limit;

	o->guest_signals++;
	if (now - o->window_start_ns >= VMBUS_NS_PER_SEC) {
		if (o->throttled && o->window_spurious <= limit)
			o->throttled = false;
		o->window_start_ns = now;
		o->window_spurious = 0;
	}
	bool spurious = signal_is_spurious(ch);
	if (spurious) {
		o->spurious_signals++;
		o->window_spurious++;
		if (!o->throttled && o->window_spurious > limit) {
			o->throttled = true;
			if (!o->throttle_logged) {
				o->throttle_logged = true;
				vmbus_log(s,
					  "vmbus: relid %u: over %u spurious signals a second, "
					  "throttled",
					  o->relid, limit);
			}
		}
		if (o->throttled && now - o->last_notify_ns < VMBUS_THROTTLE_INTERVAL_NS) {
			s->throttled_signals++;
			return;
		}
	}
	o->last_notify_ns = now;
	ch->dev->desc.ops->notify(ch->dev->desc.dev, ch);
}

void vmbus_channel_signal_locked(struct vmbus_channel *ch)
{
	struct vmbus_offer_rec *o = ch->offer;
	struct vmbus_server *s = ch->s;

	if (!o)
		return; /* closed: the guest no longer listens */
	o->host_signals++;
	/* Linux scans SINT 2's event flags by relid (vmbus_drv.c
	 * vmbus_chan_sched). */
	s->ops.signal(s->ctx, o->target_vp, VMBUS_MESSAGE_SINT, o->relid);
}

void vmbus_channel_signal(struct vmbus_channel *ch)
{
	struct vmbus_server *s = ch->s;
	s->ops.lock(s->ctx);
	vmbus_channel_signal_locked(ch);
	s->ops.unlock(s->ctx);
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */
/* ------------------------------------------------------------------ */

struct vmbus_ring_writer *vmbus_channel_out(struct vmbus_channel *ch)
{
	return &ch->out;
}

struct vmbus_ring_reader *vmbus_channel_in(struct vmbus_channel *ch)
{
	return &ch->in;
}

struct vmbus_device *vmbus_channel_device(const struct vmbus_channel *ch)
{
	return ch->dev;
}

uint16_t vmbus_channel_subchannel_index(const struct vmbus_channel *ch)
{
	return ch->sub_index;
}

uint32_t vmbus_channel_relid(const struct vmbus_channel *ch)
{
	return ch->relid;
}

uint32_t vmbus_channel_target_vp(const struct vmbus_channel *ch)
{
	return __atomic_load_n(&ch->target_vp, __ATOMIC_RELAXED);
}

uint32_t vmbus_channel_version(const struct vmbus_channel *ch)
{
	return ch->version;
}

void vmbus_channel_set_data(struct vmbus_channel *ch, void *data)
{
	ch->data = data;
}

void *vmbus_channel_data(const struct vmbus_channel *ch)
{
	return ch->data;
}

int vmbus_channel_gpadl_pfns_locked(struct vmbus_channel *ch, uint32_t handle,
				    const uint64_t **pfns, uint32_t *count)
{
	struct gpadl *g = ch->offer ? gpadl_find(ch->s, handle) : NULL;
	if (!g || g->state != GPADL_READY || g->owner != ch->offer || g->teardown_pending)
		return -ENOENT;
	*pfns = g->pfns;
	*count = g->pfn_count;
	return 0;
}

void vmbus_device_lock(struct vmbus_device *d)
{
	d->s->ops.lock(d->s->ctx);
}

void vmbus_device_unlock(struct vmbus_device *d)
{
	d->s->ops.unlock(d->s->ctx);
}
