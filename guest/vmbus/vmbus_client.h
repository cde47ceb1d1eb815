/* SPDX-License-Identifier: MIT */
/*
 * The guest's VMBus driver: the client side of vmbus.rst, freestanding,
 * on top of guest/hv and guest/port. It negotiates the version newest
 * first, takes offers, binds drivers by class GUID, opens channels over
 * GPADL-backed rings, sends and receives packets with the shared ring
 * engine, follows rescinds, retargets and unloads.
 *
 * Behaviour follows Linux 6.1 (drivers/hv/connection.c, channel_mgmt.c,
 * channel.c, vmbus_drv.c, ring_buffer.c) so that hosts serving Linux serve
 * this client; every message from the host is validated before use, and a
 * malformed one is counted and dropped.
 *
 * Contexts. Host messages and channel interrupts arrive in interrupt
 * handlers (hv_guest callbacks): the client records them and wakes waiters,
 * nothing more. Whatever may block (probing a driver, which opens channels;
 * removing one) is queued and run by vmbus_client_process(), which the OS
 * calls from process context (a thread, a main loop). Channel packet
 * callbacks run in the interrupt handler of the channel's target VP.
 */
#ifndef HVKIT_VMBUS_CLIENT_H
#define HVKIT_VMBUS_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "hv_guest.h"
#include "hvkit/vmbus.h"
#include "ring_buffer.h"

struct vmbus_client;
struct vmbus_client_channel;

struct vmbus_client_config {
	uint32_t max_version;  /* 0: VMBUS_VERSION_WIN10_V5_3 */
	uint64_t timeout_ns;   /* for each answer the host owes; 0: 10 s */
	/* How long a resume waits for the host to offer every suspended
	 * device again (vmbus_bus_resume's wait); 0: 10 s. */
	uint64_t resume_wait_ns;
};

struct vmbus_driver {
	struct hv_guid class_id;
	const char *name;
	/* A performance device (storage, network): its channels are spread
	 * over the VPs as Linux spreads them; others go to VP 0. */
	bool fast;
	/* A primary channel of this class was offered (process context). */
	int (*probe)(void *ctx, struct vmbus_client_channel *ch);
	/* It was rescinded, or the client unloads (process context). The
	 * channel is closed after this if the driver left it open. */
	void (*remove)(void *ctx, struct vmbus_client_channel *ch);
	/* A sub-channel of a channel this driver probed was offered (process
	 * context). Optional. */
	void (*subchannel)(void *ctx, struct vmbus_client_channel *primary,
			   struct vmbus_client_channel *sub);
	/* Hibernation (hibernation.rst), process context, both optional:
	 * suspend closes the device's channels (vmbus_client_channel_close,
	 * sub-channels with it) and keeps what the driver knows; resume
	 * opens the primary again on the re-offered channel (the same
	 * channel object; relid and connection id may have changed) and asks
	 * for sub-channels from scratch. 0, or an error: a device whose
	 * suspend fails or that has none is removed at suspend and probed
	 * afresh at resume; one whose resume fails is removed. */
	int (*suspend)(void *ctx, struct vmbus_client_channel *ch);
	int (*resume)(void *ctx, struct vmbus_client_channel *ch);
	void *ctx;
};

/* Sets the client up on an initialised hv_guest (whose message and event
 * callbacks it takes over). NULL and *err on failure. */
struct vmbus_client *vmbus_client_new(struct hv_guest *g, const struct vmbus_client_config *cfg,
				      int *err);
void vmbus_client_free(struct vmbus_client *c);

/* Drivers are matched against offers on connect and on every later offer. */
int vmbus_client_register_driver(struct vmbus_client *c, const struct vmbus_driver *drv);

/* INITIATE_CONTACT from the newest version down to 2.4 (capped by
 * max_version), then REQUESTOFFERS until ALLOFFERS_DELIVERED, then probes.
 * 0; -ECONNREFUSED if no version was accepted; -ETIMEDOUT. */
int vmbus_client_connect(struct vmbus_client *c);

/* UNLOAD: removes every driver binding and closes every channel, then
 * waits for UNLOAD_RESPONSE. The client can connect again afterwards. */
int vmbus_client_unload(struct vmbus_client *c);

/* Hibernation's bus half (vmbus_bus_suspend): every device suspended
 * (closed, sub-channels first), the host's rescinds of the sub-channels
 * awaited, every relid forgotten, UNLOAD. The client keeps its devices
 * and their drivers' state. 0; -ENOTCONN; -ETIMEDOUT if the host never
 * rescinded a sub-channel (the suspend still completes). */
int vmbus_client_suspend(struct vmbus_client *c);

/* vmbus_bus_resume: INITIATE_CONTACT at the version of before,
 * REQUESTOFFERS; each re-offered primary is matched to its suspended
 * device by class and instance GUID (its new relid taken), others are
 * new devices; the suspended devices not offered again within
 * resume_wait_ns are removed; then each driver's resume. 0; -EINVAL if
 * not suspended; -ECONNREFUSED, -ETIMEDOUT. */
int vmbus_client_resume(struct vmbus_client *c);

/* Runs queued work (probes, removes, sub-channel callbacks). Returns the
 * number of items run. Call it from process context whenever
 * vmbus_client_wait_work returns, or regularly. */
uint32_t vmbus_client_process(struct vmbus_client *c);

/* Waits until there is work for vmbus_client_process (0) or timeout_ns
 * passes (-ETIMEDOUT). */
int vmbus_client_wait_work(struct vmbus_client *c, uint64_t timeout_ns);

uint32_t vmbus_client_version(const struct vmbus_client *c);

/* ---- Channels ---- */

enum vmbus_client_channel_state {
	VMBUS_CLIENT_OFFERED,
	VMBUS_CLIENT_OPENING,
	VMBUS_CLIENT_OPEN,
	VMBUS_CLIENT_RESCINDED,
};

struct vmbus_client_channel_info {
	struct hv_guid class_id;
	struct hv_guid instance_id;
	uint16_t sub_channel_index;
	uint32_t relid;
	uint32_t connection_id;
	uint32_t target_vp;
	enum vmbus_client_channel_state state;
	const char *driver; /* NULL if no driver is bound */
	uint64_t packets_sent, packets_received;
};

void vmbus_client_channel_info(const struct vmbus_client_channel *ch,
			       struct vmbus_client_channel_info *out);

/* Calls fn for every channel the host has offered (under the client's lock:
 * fn must not call back into the client). */
void vmbus_client_for_each_channel(struct vmbus_client *c,
				   void (*fn)(void *arg, const struct vmbus_client_channel_info *),
				   void *arg);

/* Channel packet callback: packets (or ring space) are there; read with
 * vmbus_client_channel_recv. Runs in the interrupt handler of the target VP. */
typedef void (*vmbus_client_channel_callback)(void *arg, struct vmbus_client_channel *ch);

/*
 * Opens a channel (process context): allocates both rings (sizes in bytes,
 * page multiples, header page included), shares them with one GPADL as
 * Linux does (send ring first, then the receive ring at the downstream
 * offset), picks the target VP, sends OPENCHANNEL and waits for the result.
 * 0, or -EIO (the host refused), -ETIMEDOUT, -ENODEV (rescinded), -ENOMEM.
 */
int vmbus_client_channel_open(struct vmbus_client_channel *ch, uint32_t send_ring_bytes,
		       uint32_t recv_ring_bytes, const void *user_data, uint32_t user_len,
		       vmbus_client_channel_callback cb, void *arg);

/* Closes (CLOSECHANNEL), tears the GPADL down and frees the rings. */
void vmbus_client_channel_close(struct vmbus_client_channel *ch);

/* Asks the host to interrupt another VP (MODIFYCHANNEL; at 5.3 waits for
 * the response). 0, -EINVAL, -EIO, -ETIMEDOUT, -EOPNOTSUPP before 4.1. */
int vmbus_client_channel_retarget(struct vmbus_client_channel *ch, uint32_t vp);

/* Sends one packet (put, publish, HvSignalEvent when the ring rules ask
 * for it); -EAGAIN if the ring is full. Serialized per channel. */
int vmbus_client_channel_send(struct vmbus_client_channel *ch, const struct vmbus_packet_out *p);
int vmbus_client_channel_send_inband(struct vmbus_client_channel *ch, uint64_t trans_id,
			      uint16_t flags, const void *data, uint32_t len);
/* Page-buffer or multi-page-buffer packets (GPA-direct). */
int vmbus_client_channel_send_gpa_direct(struct vmbus_client_channel *ch, uint64_t trans_id,
				  const struct vmbus_gpa_range_out *ranges, uint32_t range_count,
				  const void *data, uint32_t len);

/* Receives the next packet into buf (the channel callback's job): 0,
 * -EAGAIN when empty (space is given back to the host and it is signalled
 * if it waited), -EMSGSIZE, -EBADMSG (the host corrupted the ring: the
 * channel is unusable). */
int vmbus_client_channel_recv(struct vmbus_client_channel *ch, void *buf, uint32_t len,
		       struct vmbus_packet *pkt);

/* Shares count pages from the port's alloc_pages with the host on this
 * channel (GPADL_HEADER/BODY, waits for GPADL_CREATED), as Linux shares
 * netvsc's receive and send buffers. 0 with *handle; -EIO (refused),
 * -ENODEV, -ETIMEDOUT, -EFAULT (not the port's memory). Process context. */
int vmbus_client_gpadl_create(struct vmbus_client_channel *ch, const void *pages, uint32_t count,
			      uint32_t *handle);
/* GPADL_TEARDOWN, waiting for the host to give the pages back. */
int vmbus_client_gpadl_teardown(struct vmbus_client_channel *ch, uint32_t handle);
/* The port the client runs on (for drivers' memory, locks and events). */
const struct hv_port *vmbus_client_port(const struct vmbus_client *c);

struct vmbus_client *vmbus_client_channel_client(const struct vmbus_client_channel *ch);
void vmbus_client_channel_set_data(struct vmbus_client_channel *ch, void *data);
void *vmbus_client_channel_data(const struct vmbus_client_channel *ch);

/* ---- Statistics ---- */

struct vmbus_client_stats {
	uint32_t version;
	uint32_t offers, rescinds;
	uint64_t bad_messages;  /* malformed or unexpected host messages dropped */
	uint64_t dropped_while_unloading; /* offers and rescinds after UNLOAD began */
	uint32_t resumed;              /* suspended devices matched to a re-offer */
	uint32_t missing_after_resume; /* suspended devices never offered again */
	uint64_t signals_sent;  /* HvSignalEvent */
	uint64_t interrupts;    /* channel interrupts handled */
};
void vmbus_client_get_stats(struct vmbus_client *c, struct vmbus_client_stats *out);

#endif /* HVKIT_VMBUS_CLIENT_H */
