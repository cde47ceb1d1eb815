/* SPDX-License-Identifier: MIT */
/*
 * The VMBus server: the host's side of vmbus.rst. A control-path state
 * machine (connection and version, offers and relids, GPADLs, opening,
 * closing, retargeting, rescinding and unloading channels) plus the channel
 * plumbing devices use (rings mapped from the guest's GPADL, signals both
 * ways). Devices plug in through vmbus_device.h.
 *
 * Behaviour follows what Linux 6.1's VMBus driver expects
 * (drivers/hv/connection.c, channel_mgmt.c, channel.c, vmbus_drv.c and
 * include/linux/hyperv.h); wire formats are include/hvkit/vmbus.h.
 *
 * Locking. One lock serializes the server and its devices: the device
 * lock, reached through ops->lock/unlock (host/hv locks itself and is
 * called with this lock held, never the other way round).
 *  - vmbus_server_handle_message/handle_signal are called by the
 *    hypervisor glue with that lock held;
 *  - every other vmbus_server_* and vmbus_channel_* call takes it itself,
 *    unless its name ends in _locked;
 *  - device callbacks (vmbus_device.h) run with it held: they must not
 *    block and may call only _locked functions.
 *
 * The guest is untrusted: every message is checked for size, state and
 * ownership before use, every PFN against guest RAM, and the total shared
 * memory against a limit; a bad message is counted, logged once, and
 * otherwise ignored (or refused with a failure status where the protocol
 * has one). Nothing the guest sends crashes the host.
 */
#ifndef HVKIT_VMBUS_SERVER_H
#define HVKIT_VMBUS_SERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "guest_memory.h"
#include "hvkit/vmbus.h"

/* Channel connection ids (guest-to-host HvSignalEvent) are this + relid. */
#define VMBUS_SERVER_CHANNEL_CONNECTION_BASE 0x20000u
#define VMBUS_SERVER_DEFAULT_GPADL_LIMIT (1280ull << 20)

struct vmbus_server_config {
	uint32_t vp_count;
	uint32_t max_version;        /* 0: VMBUS_VERSION_WIN10_V5_3 */
	bool scramble_relids;        /* relids change with every connection */
	uint64_t scramble_seed;
	uint64_t gpadl_limit;        /* bytes of guest memory shared at once; 0: default */
	uint32_t spurious_signal_limit; /* per second, then throttle; 0: 10000 */
	bool log_milestones;         /* log each connect and channel open */
};

/* What the server needs from the hypervisor glue. All but lock/unlock and
 * now are called with the lock held. */
struct vmbus_server_ops {
	void (*lock)(void *ctx);
	void (*unlock)(void *ctx);
	/* Posts a VMBus message (message type 1) to (vp, sint). */
	int (*post)(void *ctx, uint32_t vp, uint32_t sint, const void *msg, uint32_t len);
	/* Sets event flag `flag` of (vp, sint) and interrupts if it was clear. */
	int (*signal)(void *ctx, uint32_t vp, uint32_t sint, uint32_t flag);
	/* HvSignalEvent on connection_id must reach vmbus_server_handle_signal
	 * from now on / no longer. */
	int (*connection_add)(void *ctx, uint32_t connection_id);
	void (*connection_remove)(void *ctx, uint32_t connection_id);
	uint64_t (*now_ns)(void *ctx); /* monotonic, for rates */
	void (*log)(void *ctx, const char *fmt, va_list ap);
};

struct vmbus_server;

/* mem: guest RAM; ring pages must be file-backed (guest_memory_add_file)
 * so a channel's rings can be mapped mirrored. NULL and errno on error. */
struct vmbus_server *vmbus_server_new(const struct vmbus_server_config *cfg,
				      const struct guest_memory *mem,
				      const struct vmbus_server_ops *ops, void *ctx);

/* Closes every channel (devices get close), unmaps, frees. Takes the lock. */
void vmbus_server_free(struct vmbus_server *s);

/* ---- From the hypervisor glue, lock held ---- */

/* A message the guest posted on a VMBus message connection (1, or 4 for
 * INITIATE_CONTACT from 5.0 on). Returns the HvPostMessage status. */
uint16_t vmbus_server_handle_message(struct vmbus_server *s, uint32_t vp,
				     uint32_t connection_id, const void *msg, uint32_t len);

/* HvSignalEvent on a channel's connection id. */
void vmbus_server_handle_signal(struct vmbus_server *s, uint32_t vp, uint32_t connection_id);

/* ---- State, for status displays and tests ---- */

enum vmbus_server_connection {
	VMBUS_SERVER_DISCONNECTED,
	VMBUS_SERVER_CONNECTED,
};

enum vmbus_server_channel_state {
	VMBUS_CHANNEL_UNOFFERED, /* the guest is not connected */
	VMBUS_CHANNEL_OFFERED,
	VMBUS_CHANNEL_OPEN,
	VMBUS_CHANNEL_RESCINDED, /* waiting for RELID_RELEASED */
};

struct vmbus_server_channel_info {
	struct hv_guid class_id;
	struct hv_guid instance_id;
	uint16_t sub_channel_index;
	uint32_t relid;          /* 0 while unoffered */
	uint32_t connection_id;
	uint32_t target_vp;
	enum vmbus_server_channel_state state;
	uint64_t guest_signals;  /* HvSignalEvent received */
	uint64_t spurious_signals;
	uint64_t host_signals;   /* interrupts raised in the guest */
};

struct vmbus_server_stats {
	enum vmbus_server_connection connection;
	uint32_t version;
	uint32_t channels;          /* offers, of every state */
	uint32_t gpadls;
	uint64_t gpadl_bytes;       /* shared memory held by GPADLs */
	uint64_t bad_messages;      /* refused or ignored guest messages */
	uint64_t throttled_signals; /* signals deferred by the throttle */
	uint32_t connects, unloads;
};

void vmbus_server_get_stats(struct vmbus_server *s, struct vmbus_server_stats *out);

/* ---- Save and load (docs/lifecycle.md: state records) ---- */

/* The server's state as a record (host/record/record.h, magic
 * "HVKITVMB"): connection, version, offers and relids, GPADLs, open
 * channels with their devices' state (vmbus_device_ops.save). Writes at
 * most cap bytes; *len is the record's size. 0; -ENOSPC (nothing usable
 * written: call again with *len bytes); -ENOTSUP (a device with an open
 * channel cannot save); a device's error. Call with the devices quiet
 * and no guest message or signal arriving (a paused partition). Takes
 * the lock. */
int vmbus_server_save(struct vmbus_server *s, void *buf, size_t cap, size_t *len);
/* The same, with the lock held (a machine saving everything at once). */
int vmbus_server_save_locked(struct vmbus_server *s, void *buf, size_t cap, size_t *len);
/* Loads a record into a server that has not met a guest (its devices
 * added, as for the run that saved: matched by class and instance GUID):
 * every offer, relid, GPADL and open channel as saved; each open
 * channel's device gets its restore, then a notify (the guest may have
 * signalled just before the save). A device the record does not have
 * is offered as a new one. The record is checked whole first: 0 or
 * -EINVAL (corrupt, truncated, another version or VP count, impossible
 * content), -ENODEV (a device of the record is missing), -ENOTSUP (a
 * device cannot restore), -EBUSY (the server has met a guest), -ENOMEM;
 * a device that refuses its state leaves the server disconnected, as
 * new, with that device's error. Takes the lock. */
int vmbus_server_load(struct vmbus_server *s, const void *buf, size_t len);

/* Calls fn for each channel (lock held during the walk). */
void vmbus_server_for_each_channel(struct vmbus_server *s,
				   void (*fn)(void *arg, const struct vmbus_server_channel_info *),
				   void *arg);

#endif /* HVKIT_VMBUS_SERVER_H */
