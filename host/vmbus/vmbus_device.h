/* SPDX-License-Identifier: MIT */
/*
 * The device-provider interface (VSPs): what a host device implements to sit
 * behind a VMBus offer, and the channel calls it makes. See the locking
 * rules in vmbus_server.h: callbacks run with the device lock held, must
 * not block, and may call only *_locked functions.
 *
 * Channel lifetime: the server holds a reference on a channel from open to
 * close. A device that keeps using a channel outside its callbacks (a
 * worker thread) takes its own with vmbus_channel_get and drops it with
 * vmbus_channel_put once it has stopped touching the rings; the rings stay
 * mapped until the last reference goes, so a close never pulls memory from
 * under a worker.
 */
#ifndef HVKIT_VMBUS_DEVICE_H
#define HVKIT_VMBUS_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvkit/proto/echo.h"
#include "ring_buffer.h"
#include "vmbus_server.h"

struct vmbus_channel; /* one offer: a primary channel or a sub-channel */
struct vmbus_device;  /* a device added to the server */

struct vmbus_device_ops {
	/* The guest opened ch; its rings are mapped. 0 accepts; a negative
	 * errno refuses (the guest sees the open fail). */
	int (*open)(void *dev, struct vmbus_channel *ch,
		    const uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES]);
	/* ch is closing (guest close, rescind, unload, server free): stop
	 * using its rings; put any references taken. */
	void (*close)(void *dev, struct vmbus_channel *ch);
	/* The guest signalled ch: packets to read, or room it was asked for. */
	void (*notify)(void *dev, struct vmbus_channel *ch);
	/* Both or neither; without them a server with the device's channel
	 * open cannot be saved (vmbus_server_save, VM snapshots).
	 * save: the device's own state of the open channel ch (the primary's
	 * carries the device's, if it has any beyond its channels), into
	 * buf if it fits in *len bytes; *len becomes its size either way.
	 * 0; -ENOSPC if it did not fit (the server asks again); another
	 * -errno if it cannot be saved now (-EBUSY: work in flight; the
	 * caller quiesces the device first). The device's rings are in
	 * guest memory and travel with it: what save writes is what is not
	 * there (negotiated protocol, buffers the guest named, ...).
	 * restore: in place of open, on a server being loaded: ch is open
	 * again on the same rings; take the saved state (len bytes; check
	 * it all: it may be corrupt) or refuse with a negative errno. */
	int (*save)(void *dev, struct vmbus_channel *ch, void *buf, size_t *len);
	int (*restore)(void *dev, struct vmbus_channel *ch, const void *buf, size_t len);
};

struct vmbus_device_desc {
	struct hv_guid class_id;
	struct hv_guid instance_id;
	uint16_t flags;          /* VMBUS_OFFER_FLAG_* */
	uint16_t mmio_megabytes;
	uint8_t user_def[VMBUS_OFFER_USER_DEFINED_BYTES];
	/* Closing the primary channel rescinds the offer and offers it again
	 * at once (the KVP anomaly of hibernation.rst). */
	bool rescind_on_close;
	const char *name;        /* for logs and status */
	const struct vmbus_device_ops *ops;
	void *dev;               /* passed back to ops */
};

/* Adds a device: offered at once if the guest is connected (hot add),
 * otherwise at its next REQUESTOFFERS. Takes the lock. */
int vmbus_server_add_device(struct vmbus_server *s, const struct vmbus_device_desc *desc,
			    struct vmbus_device **out);

/* Rescinds every channel of the device and forgets it; its channels close
 * first (ops->close). Takes the lock. */
void vmbus_server_remove_device(struct vmbus_server *s, struct vmbus_device *d);

/* Offers `count` more sub-channels of a device's primary channel (index
 * 1, 2, ... after those it has). Typically from a device callback. */
int vmbus_device_add_subchannels_locked(struct vmbus_device *d, uint32_t count);

/* ---- Channel calls ---- */

struct vmbus_ring_writer *vmbus_channel_out(struct vmbus_channel *ch); /* host to guest */
struct vmbus_ring_reader *vmbus_channel_in(struct vmbus_channel *ch);  /* guest to host */

/* Raises the channel interrupt in the guest (event flag relid on the
 * target VP). Call when vmbus_ring_publish or vmbus_ring_commit says so. */
void vmbus_channel_signal(struct vmbus_channel *ch);
void vmbus_channel_signal_locked(struct vmbus_channel *ch);

void vmbus_channel_get(struct vmbus_channel *ch);
/* The last put unmaps the rings; it touches no server state, so it needs
 * no lock and may come from anywhere. */
void vmbus_channel_put(struct vmbus_channel *ch);

struct vmbus_device *vmbus_channel_device(const struct vmbus_channel *ch);
uint16_t vmbus_channel_subchannel_index(const struct vmbus_channel *ch);
uint32_t vmbus_channel_relid(const struct vmbus_channel *ch);
uint32_t vmbus_channel_target_vp(const struct vmbus_channel *ch);
/* The negotiated VMBus version (devices vary their protocol by it). */
uint32_t vmbus_channel_version(const struct vmbus_channel *ch);

/* The pages of a complete GPADL the guest created on this channel's relid
 * (device buffers such as netvsc's receive and send buffers): 0 with
 * *pfns pointing at the server's array (valid only until the callback
 * returns: copy it) and *count pages; -ENOENT if there is none. A guest
 * may tear the GPADL down while the device still uses its copy: the
 * device reaches those pages only through guest_memory, so the guest
 * can only hurt itself. */
int vmbus_channel_gpadl_pfns_locked(struct vmbus_channel *ch, uint32_t handle,
				    const uint64_t **pfns, uint32_t *count);

/* The device lock, for a device's own threads (backends delivering
 * work): with it held they may make _locked calls. Never from a callback. */
void vmbus_device_lock(struct vmbus_device *d);
void vmbus_device_unlock(struct vmbus_device *d);

/* A pointer the device keeps with the channel. */
void vmbus_channel_set_data(struct vmbus_channel *ch, void *data);
void *vmbus_channel_data(const struct vmbus_channel *ch);

/* ---- The echo device (tests, demos) ---- */

/* hvkit's echo device (wire format: include/hvkit/proto/echo.h). */
struct vmbus_echo;
/* instance distinguishes several echo devices in one VM. */
int vmbus_echo_add(struct vmbus_server *s, uint32_t instance, struct vmbus_echo **out);
void vmbus_echo_remove(struct vmbus_server *s, struct vmbus_echo *e);
uint64_t vmbus_echo_packets(const struct vmbus_echo *e);

#endif /* HVKIT_VMBUS_DEVICE_H */
