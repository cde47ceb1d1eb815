/* SPDX-License-Identifier: MIT */
/*
 * The VMBus server's private state, shared by its source files:
 *   vmbus_server.c  connection, offers and relids, message dispatch
 *   gpadl.c         GPADL assembly, validation and accounting
 *   channel.c       open channels: rings, references, signals both ways
 * Everything here is touched with the device lock held, except the
 * atomics of struct vmbus_channel (see channel.c).
 */
#ifndef HVKIT_VMBUS_INTERNAL_H
#define HVKIT_VMBUS_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring_map.h"
#include "vmbus_device.h"
#include "vmbus_server.h"

/* NTSTATUS values the server puts in status fields (Linux checks only
 * for nonzero). */
#define VMBUS_STATUS_SUCCESS 0u
#define VMBUS_STATUS_UNSUCCESSFUL 0xC0000001u
#define VMBUS_STATUS_INVALID_PARAMETER 0xC000000Du
#define VMBUS_STATUS_QUOTA_EXCEEDED 0xC0000044u
#define VMBUS_STATUS_CONNECTION_REFUSED 0xC0000236u

/* Limits that keep a hostile guest from growing host memory without bound. */
#define VMBUS_SERVER_MAX_GPADLS 16384u     /* GPADLs, complete or not */
#define VMBUS_SERVER_MAX_SUBCHANNELS 256u  /* per device */
#define VMBUS_SERVER_GPADL_BUCKETS 1024u   /* hash buckets, a power of two */
#define VMBUS_SERVER_DEFAULT_SPURIOUS_LIMIT 10000u
#define VMBUS_NS_PER_SEC 1000000000ull
#define VMBUS_THROTTLE_INTERVAL_NS 1000000ull /* one notify per ms when throttled */

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- A tiny intrusive doubly linked list ---- */

struct vmbus_list {
	struct vmbus_list *prev, *next;
};

static inline void vmbus_list_init(struct vmbus_list *l)
{
	l->prev = l->next = l;
}

static inline bool vmbus_list_empty(const struct vmbus_list *l)
{
	return l->next == l;
}

static inline void vmbus_list_add_tail(struct vmbus_list *l, struct vmbus_list *n)
{
	n->prev = l->prev;
	n->next = l;
	l->prev->next = n;
	l->prev = n;
}

static inline void vmbus_list_del(struct vmbus_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

/* ---- Bad guest messages: counted always, logged once per kind ---- */

enum vmbus_bad {
	BAD_SIZE,            /* shorter than its message type needs */
	BAD_TYPE,            /* unknown, or a host-to-guest type */
	BAD_CONNECTION_ID,   /* not a VMBus message connection */
	BAD_NOT_CONNECTED,   /* before INITIATE_CONTACT succeeded */
	BAD_CONTACT,         /* INITIATE_CONTACT refused (VP, SINT, connection) */
	BAD_RELID,           /* relid not offered, or in the wrong state */
	BAD_REPEATED,        /* REQUESTOFFERS twice */
	BAD_VERSION,         /* message needs a newer protocol version */
	BAD_GPADL_HEADER,    /* malformed GPADL_HEADER */
	BAD_GPADL_HANDLE,    /* duplicate or unknown GPADL handle */
	BAD_GPADL_BODY,      /* malformed or excess GPADL_BODY */
	BAD_GPADL_CONTENT,   /* ranges or PFNs refused at completion */
	BAD_GPADL_TEARDOWN,  /* teardown of an unknown or incomplete GPADL */
	BAD_OPEN,            /* OPENCHANNEL arguments refused */
	BAD_MODIFY,          /* MODIFYCHANNEL refused */
	BAD_KIND_COUNT
};
_Static_assert(BAD_KIND_COUNT <= 64, "logged-once mask");

/* ---- GPADLs ---- */

enum gpadl_state {
	GPADL_PENDING, /* header seen, waiting for bodies */
	GPADL_READY,   /* GPADL_CREATED sent with status 0 */
};

struct gpadl {
	struct gpadl *hash_next;
	struct vmbus_list link; /* gpadl_table.all */
	uint32_t handle;
	struct vmbus_offer_rec *owner; /* the relid's offer it was created for */
	uint32_t owner_relid;          /* the relid named in its header */
	enum gpadl_state state;
	uint16_t range_count;
	/* While pending: range_buflen bytes expected, have bytes so far. */
	uint32_t want, have;
	uint64_t *buf;       /* pending: the range words received */
	uint32_t failed;     /* pending: nonzero status to answer with at the end */
	uint64_t reserved;   /* bytes counted against gpadl_limit */
	/* Ready: every page of every range, in order. */
	uint64_t *pfns;
	uint32_t pfn_count;
	bool in_use;            /* backs an open channel's rings */
	bool teardown_pending;  /* TORNDOWN owed once the channel closes */
};

struct gpadl_table {
	struct gpadl *buckets[VMBUS_SERVER_GPADL_BUCKETS];
	struct vmbus_list all;
	uint32_t count;     /* every GPADL in the table */
	uint32_t ready;     /* of them, created */
	uint64_t ready_bytes;
	uint64_t reserved;  /* bytes held against the limit, pending included */
};

/* ---- Offers (one per relid the guest may know) ---- */

struct vmbus_offer_rec {
	struct vmbus_list link;     /* server->offers */
	struct vmbus_list dev_link; /* dev->offers; unlinked once rescinded */
	struct vmbus_device *dev;   /* NULL once rescinded (the device may be gone) */
	struct hv_guid class_id, instance_id;
	uint16_t sub_index;
	uint32_t relid; /* 0 while unoffered */
	enum vmbus_server_channel_state state;
	uint32_t target_vp;
	struct vmbus_channel *open; /* the open instance, while OPEN */
	/* Rescinded by its close (KVP, rescind_on_close): the device to
	 * offer again once the guest has released this relid (referenced). */
	struct vmbus_device *reoffer;
	uint64_t guest_signals, spurious_signals, host_signals;
	/* Interrupt hygiene (channel.c). */
	uint64_t window_start_ns, last_notify_ns;
	uint32_t window_spurious;
	bool throttled, throttle_logged;
};

struct vmbus_device {
	struct vmbus_list link; /* server->devices */
	struct vmbus_server *s;
	struct vmbus_device_desc desc;
	char *name;
	struct vmbus_list offers; /* live offers: primary and sub-channels */
	uint32_t subchannels;
	int refs; /* the server's, plus one per channel instance; atomic */
	bool removed;
};

/* One opening of an offer: created by OPENCHANNEL, closed by CLOSECHANNEL,
 * rescind, unload or server free, freed when the last reference goes. */
struct vmbus_channel {
	struct vmbus_server *s;
	struct vmbus_device *dev;       /* referenced */
	struct vmbus_offer_rec *offer;  /* NULL once closed */
	struct gpadl *ring_gpadl;       /* NULL once closed */
	int refs;                       /* atomic */
	uint32_t relid;
	uint32_t target_vp;             /* atomic: workers read it */
	uint32_t downstream_offset;     /* the host-to-guest ring's first page */
	uint32_t version;
	uint16_t sub_index;
	void *data;
	struct vmbus_ring_mapping in_map, out_map;
	struct vmbus_ring_reader in;  /* guest to host */
	struct vmbus_ring_writer out; /* host to guest */
};

struct vmbus_server {
	struct vmbus_server_config cfg;
	const struct guest_memory *mem;
	struct vmbus_server_ops ops;
	void *ctx;

	enum vmbus_server_connection conn;
	uint32_t version;
	uint32_t msg_vp, msg_sint; /* where control messages go */
	bool offers_requested;

	struct vmbus_list devices;
	struct vmbus_list offers;
	uint32_t offer_count;
	struct vmbus_offer_rec *relids[VMBUS_RELID_MAX + 1];

	struct gpadl_table gpadls;

	uint64_t bad_messages, throttled_signals;
	uint32_t connects, unloads;
	uint64_t logged; /* enum vmbus_bad kinds logged so far */
	bool post_failure_logged, signal_log_done;
};

/* vmbus_server.c */
__attribute__((format(printf, 2, 3)))
void vmbus_log(struct vmbus_server *s, const char *fmt, ...);
__attribute__((format(printf, 3, 4)))
void vmbus_bad(struct vmbus_server *s, enum vmbus_bad kind, const char *fmt, ...);
void vmbus_post(struct vmbus_server *s, const void *msg, uint32_t len);
struct vmbus_offer_rec *vmbus_offer_by_relid(struct vmbus_server *s, uint32_t relid);
/* A new unoffered offer of d (sub-channel sub_index), on the server's and
 * the device's lists; NULL without memory. */
struct vmbus_offer_rec *vmbus_offer_new(struct vmbus_server *s, struct vmbus_device *d,
					uint16_t sub_index);
/* Offers o at once if the guest listens (the lowest free relid). */
void vmbus_offer_now(struct vmbus_server *s, struct vmbus_offer_rec *o);
/* Frees an offer that is not open, with its relid and GPADLs. */
void vmbus_offer_free(struct vmbus_server *s, struct vmbus_offer_rec *o);
/* Disconnected: channels closed, GPADLs dropped, rescinded offers
 * forgotten, every live offer unoffered. */
void vmbus_connection_reset(struct vmbus_server *s);
/* A version Linux 6.1 may ask for. */
bool vmbus_version_known(uint32_t v);

/* gpadl.c */
void gpadl_handle_header(struct vmbus_server *s, const uint8_t *msg, uint32_t len);
void gpadl_handle_body(struct vmbus_server *s, const uint8_t *msg, uint32_t len);
void gpadl_handle_teardown(struct vmbus_server *s, const uint8_t *msg, uint32_t len);
struct gpadl *gpadl_find(struct vmbus_server *s, uint32_t handle);
/* Whether the first `have` bytes of a GPADL's range words can begin the
 * `want` bytes of range_count ranges (what gpadl_handle_body checks). */
bool gpadl_ranges_plausible(const uint64_t *words, uint32_t have, uint32_t want,
			    uint32_t range_count);
/* Takes a loaded GPADL into the table with its accounting (state.c). */
void gpadl_insert_loaded(struct vmbus_server *s, struct gpadl *g);
/* The channel using g closed: answers a deferred teardown. */
void gpadl_release_use(struct vmbus_server *s, struct gpadl *g);
/* Frees every GPADL of an offer (no answers), or all of them (owner NULL). */
void gpadl_free_owned(struct vmbus_server *s, const struct vmbus_offer_rec *owner);

/* channel.c */
/* Opens o with the ring GPADL g: the device's open with user_data, or
 * with saved (a state record's channel state, saved_len bytes) its
 * restore. 0 or a negative errno (nothing changed). */
int vmbus_channel_open(struct vmbus_server *s, struct vmbus_offer_rec *o, struct gpadl *g,
		       uint32_t downstream_offset, uint32_t target_vp,
		       const uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES],
		       const void *saved, size_t saved_len);
/* Closes o's open instance: device close, connection removed, deferred
 * teardown answered, the server's reference dropped. */
void vmbus_channel_close(struct vmbus_server *s, struct vmbus_offer_rec *o);
void vmbus_channel_set_target(struct vmbus_offer_rec *o, uint32_t vp);
void vmbus_device_get(struct vmbus_device *d);
void vmbus_device_put(struct vmbus_device *d);

#endif /* HVKIT_VMBUS_INTERNAL_H */
