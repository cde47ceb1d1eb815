/* SPDX-License-Identifier: MIT */
/*
 * The guest side of the integration components: a VMBus driver per
 * service (heartbeat, shutdown, time sync, KVP, VSS, file copy), bound by class GUID
 * through the VMBus client. Each opens its channel as Linux's util_probe
 * does (rings of IC_RING_BYTES), answers the host's NEGOTIATE exactly as
 * vmbus_prep_negotiate_resp does (its own preference order, newest first,
 * capped by the config), and answers every request in place, as hv_util.c
 * and hv_kvp.c do. What a request means to the system is left to small
 * callbacks, so the mini guest OS, the process guest and a porting kernel
 * each supply their own behaviour.
 *
 * Every host message is validated (length, type, versions, string sizes
 * and termination, pool numbers) before use; a bad one is counted and
 * dropped or answered IC_E_FAIL, as Linux does.
 *
 * Callbacks run in the channel's interrupt handler (vmbus_client.h): they
 * must not block. A shutdown callback that wants to act later records the
 * request and returns.
 */
#ifndef HVKIT_IC_GUEST_H
#define HVKIT_IC_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hvkit/proto/ic.h"
#include "ic_msg.h"
#include "vmbus_client.h"

enum ic_guest_shutdown_kind {
	IC_GUEST_POWEROFF = 0,
	IC_GUEST_REBOOT,
	IC_GUEST_HIBERNATE,
};

/* A shutdown callback's answer that sends none: the guest seems hung. */
#define IC_GUEST_NO_ANSWER 1

struct ic_guest_ops {
	/* Returns IC_S_OK, IC_E_FAIL (refused: hibernation unsupported, say)
	 * or IC_GUEST_NO_ANSWER. NULL: IC_S_OK. */
	int64_t (*shutdown)(void *ctx, enum ic_guest_shutdown_kind kind, bool force,
			    uint32_t reason, uint32_t timeout_seconds, const char *message);
	/* The host's time (100 ns units since 1601) as it was at the guest's
	 * reference time ref; sync: set the clock now (ICTIMESYNCFLAG_SYNC),
	 * otherwise a sample to steer by. */
	void (*time_sample)(void *ctx, uint64_t host_time, uint64_t ref, bool sync);
	/* The partition reference counter (100 ns); needed for time sync
	 * below 4.0, where samples carry no reference time. */
	uint64_t (*reference_time)(void *ctx);
	/* KVP store: 0, -ENOENT (no such key or index), other errors. Keys
	 * and values are UTF-8. NULL members: the in-memory store below. */
	int (*kvp_set)(void *ctx, uint32_t pool, const char *key, const char *value);
	int (*kvp_get)(void *ctx, uint32_t pool, const char *key, char *value, size_t size);
	int (*kvp_delete)(void *ctx, uint32_t pool, const char *key);
	int (*kvp_enumerate)(void *ctx, uint32_t pool, uint32_t index, char *key, size_t ksize,
			     char *value, size_t vsize);
	/* VSS: IC_VSS_OP_FREEZE / IC_VSS_OP_THAW (file systems); 0 or a
	 * negative errno (answered IC_E_FAIL). NULL: refused. Hot backup is
	 * answered as Linux does (no auto-recovery), without a callback. */
	int (*vss)(void *ctx, uint32_t op);
	/* File copy: start (path: the host's directory, name: the file, both
	 * UTF-8 and unchecked; flags IC_FCOPY_FLAG_*), write, complete,
	 * cancel. 0 or a negative errno: -EEXIST, -ENOSPC, others. NULL:
	 * refused. ic_fcopy_dir_* (guest/port/ic_fcopy_dir.h) implement them
	 * over a directory of a POSIX file system. */
	int (*fcopy_start)(void *ctx, const char *path, const char *name, uint32_t flags,
			   uint64_t size);
	int (*fcopy_write)(void *ctx, uint64_t offset, const void *data, uint32_t len);
	int (*fcopy_complete)(void *ctx);
	int (*fcopy_cancel)(void *ctx);
	void *ctx;
	void *fcopy_ctx; /* ctx for the fcopy_* callbacks; NULL: ctx */
};

struct ic_guest_config {
	uint32_t services; /* bit (1 << enum ic_service) per driver; 0: all */
	/* The newest framework and service versions this guest offers; 0:
	 * everything Linux 6.1 accepts. Lower versions stay acceptable. */
	uint32_t max_fw_version;
	uint32_t max_version[IC_SERVICE_COUNT];
	/* Intrinsic data (pool AUTO, by index) when kvp_enumerate is NULL:
	 * a NULL-ended list of key, value pairs. */
	const char *const *intrinsic;
	struct ic_guest_ops ops;
};

struct ic_guest;

/* Registers the drivers with the client (before vmbus_client_connect;
 * c NULL: none, for driving ic_guest_handle alone). Their state, the KVP
 * store's entries and each KVP or file-copy request's working copies come
 * from port's alloc (the client's port, when there is a client): -EINVAL
 * without one, -ENOMEM when it fails here; a request it fails is answered
 * IC_E_FAIL. Free after the client has unloaded. */
int ic_guest_register(struct vmbus_client *c, const struct hv_port *port,
		      const struct ic_guest_config *cfg, struct ic_guest **out);
void ic_guest_free(struct ic_guest *g);

struct ic_guest_status {
	bool open, negotiated;
	uint32_t fw_version, msg_version;
	uint32_t probes;             /* offers bound (KVP: again after a rescind) */
	uint64_t messages;           /* host requests answered */
	uint64_t bad;                /* host messages refused */
	uint64_t heartbeats;         /* heartbeat */
	uint64_t samples;            /* time sync samples applied */
	uint64_t last_host_time;     /* the last sample's host time, corrected */
	uint64_t vss_ops;            /* VSS freezes and thaws done */
	uint64_t bytes_copied;       /* file copy */
};
void ic_guest_status(struct ic_guest *g, enum ic_service svc, struct ic_guest_status *out);

/* Closes a service's channel (process context). KVP's host then rescinds
 * and re-offers it, and the driver binds again. */
void ic_guest_close(struct ic_guest *g, enum ic_service svc);

/*
 * The message handler, pure (the fuzz target's entry): buf holds len bytes
 * from the host and room for cap. Returns the length of the answer now in
 * buf, 0 to send nothing (malformed, or IC_GUEST_NO_ANSWER).
 */
uint32_t ic_guest_handle(struct ic_guest *g, enum ic_service svc, uint8_t *buf, uint32_t len,
			 uint32_t cap);

/* ---- The in-memory KVP store (the default) ---- */
#define IC_KVP_STORE_MAX 256 /* entries per pool */
struct ic_kvp_store;
/* Entries come from port's alloc as they are set (a set it fails is
 * -ENOSPC). */
struct ic_kvp_store *ic_kvp_store_new(const struct hv_port *port);
void ic_kvp_store_free(struct ic_kvp_store *s);
/* ic_guest_ops-shaped functions over a store (ctx = the store). */
int ic_kvp_store_set(void *store, uint32_t pool, const char *key, const char *value);
int ic_kvp_store_get(void *store, uint32_t pool, const char *key, char *value, size_t size);
int ic_kvp_store_delete(void *store, uint32_t pool, const char *key);
int ic_kvp_store_enumerate(void *store, uint32_t pool, uint32_t index, char *key,
			   size_t ksize, char *value, size_t vsize);

#endif /* HVKIT_IC_GUEST_H */
