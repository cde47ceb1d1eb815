/* SPDX-License-Identifier: MIT */
/*
 * The guest's VMBus driver (see vmbus_client.h and docs/vmbus-client.md).
 * Freestanding: only guest/hv and the port touch the environment. Each
 * step names the Linux 6.1 function whose behaviour it reproduces; the code
 * is our own.
 *
 * Locking. One client lock (a port lock: short, usable from handlers)
 * guards the connection state, the relid table, the waiters, the work queue
 * and every channel's control fields. It is never held across a hypercall,
 * a wait or a driver callback. Each open channel also has a send lock (its
 * ring writer) and a receive lock (its ring reader). Order: a ring lock may
 * be taken before the client lock, never the other way round.
 *
 * Lifetimes. A channel struct lives from its offer until its relid is
 * released (after a rescind, or on unload); only vmbus_client_process() and
 * vmbus_client_unload() free it, and only once no open/close/retarget is
 * running on it (busy) and no packet callback is (cb_running). Its ring
 * locks live as long as the struct, so a sender never finds them gone.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmbus_client.h"

/* connection.c: next_gpadl_handle starts here. */
#define GPADL_HANDLE_FIRST 0xE1E10u

/* Linux's channel table (MAX_CHANNEL_RELIDS). */
#define RELID_TABLE_SIZE 2048u
#define RELID_TABLE_PAGES (RELID_TABLE_SIZE * sizeof(void *) / HV_PAGE_SIZE)

#define MAX_DRIVERS 32u
#define MAX_WAITERS 16u
/* Channel structs kept ready so that offers, which arrive in the SINT
 * handler, rarely need a page allocation there. */
#define CHANNEL_RESERVE 16u
/* vmbus_on_event() reschedules itself for as long as the ring refills
 * behind the callback; a handler cannot, so it stops after this many
 * rounds (see docs/vmbus-client.md). */
#define CALLBACK_ROUNDS 64u
/* vmbus_post_msg(): up to 100 tries, waits doubling from 1 us 21 times. */
#define POST_RETRIES 100u
#define POST_BACKOFF_DOUBLINGS 22u
/* Polling interval while waiting for a callback or an operation to end. */
#define IDLE_POLL_NS 1000000ull
#define DEFAULT_TIMEOUT_NS 10000000000ull

/* Largest ring a GPADL header can describe: range_buflen is 16 bits. */
#define MAX_RING_PAGES ((0xFFFFu - sizeof(struct vmbus_gpa_range)) / sizeof(uint64_t))

/* connection.c vmbus_versions[], newest first. */
static const uint32_t versions[] = {
	VMBUS_VERSION_WIN10_V5_3, VMBUS_VERSION_WIN10_V5_2, VMBUS_VERSION_WIN10_V5_1,
	VMBUS_VERSION_WIN10_V5,	  VMBUS_VERSION_WIN10_V4_1, VMBUS_VERSION_WIN10,
	VMBUS_VERSION_WIN8_1,	  VMBUS_VERSION_WIN8,
};

enum conn_state {
	CONN_DISCONNECTED,
	CONN_CONTACTING, /* INITIATE_CONTACT sent, version not settled */
	CONN_REQUESTING, /* REQUESTOFFERS sent, offers being recorded */
	CONN_CONNECTED,
	CONN_UNLOADING,
	CONN_SUSPENDED, /* vmbus_client_suspend: unloaded, devices kept */
};

enum work_bits {
	WORK_PROBE = 1u,  /* a primary was offered: bind a driver */
	WORK_SUB = 2u,    /* a sub-channel was offered: tell its driver */
	WORK_REMOVE = 4u, /* rescinded: unbind, close, release the relid */
};

/* A thread waiting for the host's answer (Linux: a vmbus_channel_msginfo
 * on chn_msg_list). Matched in the handler by type and ids. */
struct waiter {
	bool in_use;
	bool done;
	bool rescinded; /* woken by the channel's rescind, not by an answer */
	uint32_t answer_type;
	uint32_t relid;
	uint32_t id; /* open id or GPADL handle */
	struct vmbus_client_channel *ch;
	struct hv_port_event *ev;
	uint8_t answer[VMBUS_MAX_MESSAGE_SIZE];
};

struct vmbus_client_channel {
	struct vmbus_client *c;
	struct vmbus_msg_offer_channel offer;
	uint32_t relid;
	uint16_t sub_index;
	uint32_t target_vp; /* port VP number (hv_guest.vps[] index) */
	enum vmbus_client_channel_state state;
	bool rescinded; /* atomic: read by senders without the client lock */
	bool perf;      /* target chosen as a performance channel */
	int drv;        /* bound driver (index), -1 if none */
	bool announced; /* the driver was given it (probe or subchannel) */
	bool suspended; /* its driver suspended it: resume it (primaries) */
	bool awaiting;  /* suspended, relid forgotten: waits for its re-offer */
	bool seen;      /* visited by the suspend or resume pass */

	struct vmbus_client_channel *all_prev, *all_next; /* offer order */
	struct vmbus_client_channel *primary; /* NULL for primaries and orphans */
	struct vmbus_client_channel *subs, *sub_next;
	struct vmbus_client_channel *work_next;
	uint32_t work;
	bool queued;
	struct vmbus_client_channel *free_next;

	bool busy;           /* open, close or retarget running */
	uint32_t cb_running; /* packet callbacks running now */

	/* The rings: one allocation, send ring first, as vmbus_alloc_ring(). */
	uint8_t *ring;
	uint32_t ring_pages, send_pages;
	uint32_t gpadl;
	struct hv_port_lock *send_lock, *recv_lock;
	struct vmbus_ring_writer out;
	struct vmbus_ring_reader in;
	bool rings_ready; /* under both ring locks and the client lock */

	vmbus_client_channel_callback cb;
	void *cb_arg;
	bool cb_enabled;
	void *data;
	uint64_t packets_sent, packets_received; /* atomic */
};

struct vmbus_client {
	struct hv_guest *g;
	const struct hv_port *port;
	struct vmbus_client_config cfg;
	uint32_t own_pages;
	struct hv_port_lock *lock;
	struct hv_port_event *work_ev, *idle_ev, *sleep_ev;

	/* hv_guest's callbacks before ours; the timer one is passed on. */
	hv_guest_message_fn old_on_message;
	hv_guest_events_fn old_on_events;
	hv_guest_timer_fn old_on_timer;
	void *old_arg;

	enum conn_state state;
	uint32_t version;
	uint32_t msg_conn_id;
	uint32_t next_gpadl;
	bool processing; /* process, connect or unload owns the work */

	/* connection.c: int_page (receive half, then send half) and the two
	 * monitor pages, offered to the host as Linux offers them. */
	uint8_t *int_page;
	void *monitor[2];
	uint64_t monitor_gpa[2];

	struct vmbus_client_channel **relids; /* RELID_TABLE_SIZE entries */
	uint32_t awaiting;       /* suspended primaries not yet re-offered */
	uint32_t resume_version; /* the version to ask for on resume */
	/* Every channel in offer order (Linux's chn_list, sub-channels too). */
	struct vmbus_client_channel *chan_head, *chan_tail;
	struct vmbus_client_channel *free_list;
	uint32_t free_count;
	void *slabs; /* pages of channel structs, chained through their start */
	struct vmbus_client_channel *work_head, *work_tail;
	/* Offers we could not take: RELID_RELEASED owed (vmbus_onoffer()). */
	uint64_t release_owed[RELID_TABLE_SIZE / 64];

	struct vmbus_driver drivers[MAX_DRIVERS];
	uint32_t driver_count;
	uint64_t allocated_vps; /* init_vp_index(): hv_numa_map, one node */

	struct waiter waiters[MAX_WAITERS];
	struct vmbus_client_stats stats;
	uint64_t leaked_pages;
	bool logged_bad;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static void client_log(struct vmbus_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void client_log(struct vmbus_client *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->port->log)
		return;
	va_start(ap, fmt);
	c->port->log(c->port->ctx, fmt, ap);
	va_end(ap);
}

static void lock(struct vmbus_client *c)
{
	c->port->lock(c->port->ctx, c->lock);
}

static void unlock(struct vmbus_client *c)
{
	c->port->unlock(c->port->ctx, c->lock);
}

static uint64_t now_ns(const struct vmbus_client *c)
{
	return c->port->monotonic_ns ? c->port->monotonic_ns(c->port->ctx) : 0;
}

static void stat_inc(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static bool is_rescinded(const struct vmbus_client_channel *ch)
{
	return __atomic_load_n(&ch->rescinded, __ATOMIC_ACQUIRE);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* Under the lock. Counted always, logged once: a host that sends one bad
 * message sends many. */
static void bad_message(struct vmbus_client *c, const char *what, uint32_t value)
{
	c->stats.bad_messages++;
	if (!c->logged_bad) {
		c->logged_bad = true;
		client_log(c, "vmbus: dropped a host message: %s (%u); further ones not logged\n",
			   what, value);
	}
}

/* Waits up to IDLE_POLL_NS for someone to end an operation or callback. */
static void idle_wait(struct vmbus_client *c)
{
	c->port->event_wait(c->port->ctx, c->idle_ev, IDLE_POLL_NS);
}

static void *alloc_pages(struct vmbus_client *c, uint32_t count)
{
	return c->port->alloc_pages(c->port->ctx, count);
}

static void free_pages(struct vmbus_client *c, void *p, uint32_t count)
{
	if (p)
		c->port->free_pages(c->port->ctx, p, count);
}

static uint64_t gpa_of(const struct vmbus_client *c, const void *p)
{
	return c->port->gpa_of(c->port->ctx, p);
}

/* ------------------------------------------------------------------ */
/* Channel structs: a slab carved from pages                           */
/* ------------------------------------------------------------------ */

#define SLAB_HEADER 64u
#define CHANNELS_PER_SLAB ((HV_PAGE_SIZE - SLAB_HEADER) / sizeof(struct vmbus_client_channel))
_Static_assert(CHANNELS_PER_SLAB >= 2, "channel struct too large for the slab");

/* Adds a page of channel structs to the free list. Under the lock. */
static bool slab_grow(struct vmbus_client *c)
{
	uint8_t *page = alloc_pages(c, 1);

	if (!page)
		return false;
	memcpy(page, &c->slabs, sizeof(void *));
	c->slabs = page;
	struct vmbus_client_channel *chs = (void *)(page + SLAB_HEADER);
	for (uint32_t i = 0; i < CHANNELS_PER_SLAB; i++) {
		chs[i].free_next = c->free_list;
		c->free_list = &chs[i];
	}
	c->free_count += CHANNELS_PER_SLAB;
	return true;
}

/* Process context: keeps the reserve the handler takes offers from. */
static void refill_reserve(struct vmbus_client *c)
{
	lock(c);
	while (c->free_count < CHANNEL_RESERVE && slab_grow(c))
		;
	unlock(c);
}

/* Under the lock; may be the SINT handler (the slab grows there only if
 * the reserve ran out). */
static struct vmbus_client_channel *channel_alloc(struct vmbus_client *c)
{
	if (!c->free_list && !slab_grow(c))
		return NULL;
	struct vmbus_client_channel *ch = c->free_list;
	c->free_list = ch->free_next;
	c->free_count--;
	memset(ch, 0, sizeof(*ch));
	ch->c = c;
	ch->drv = -1;
	return ch;
}

/* Under the lock. The ring locks die with the struct. */
static void channel_free(struct vmbus_client *c, struct vmbus_client_channel *ch)
{
	if (ch->send_lock)
		c->port->lock_free(c->port->ctx, ch->send_lock);
	if (ch->recv_lock)
		c->port->lock_free(c->port->ctx, ch->recv_lock);
	memset(ch, 0, sizeof(*ch));
	ch->free_next = c->free_list;
	c->free_list = ch;
	c->free_count++;
}

static void slabs_free(struct vmbus_client *c)
{
	void *page = c->slabs;

	while (page) {
		void *next;
		memcpy(&next, page, sizeof(next));
		free_pages(c, page, 1);
		page = next;
	}
	c->slabs = NULL;
	c->free_list = NULL;
	c->free_count = 0;
}

/* ------------------------------------------------------------------ */
/* The channel table                                                   */
/* ------------------------------------------------------------------ */

static struct vmbus_client_channel *relid_lookup(const struct vmbus_client *c, uint32_t relid)
{
	return relid < RELID_TABLE_SIZE ? c->relids[relid] : NULL;
}

/* By (class, instance, sub-channel index). Under the lock. */
static struct vmbus_client_channel *find_channel(const struct vmbus_client *c,
						 const struct hv_guid *class_id,
						 const struct hv_guid *instance, uint16_t sub)
{
	for (struct vmbus_client_channel *ch = c->chan_head; ch; ch = ch->all_next) {
		/* A rescinded channel that waits for its driver's removal is
		 * gone as far as offers go: the host may offer the device
		 * again at once (KVP after a close, hibernation.rst). */
		if (is_rescinded(ch) || ch->awaiting)
			continue;
		if (ch->sub_index == sub &&
		    hv_guid_equal(&ch->offer.offer.if_type, class_id) &&
		    hv_guid_equal(&ch->offer.offer.if_instance, instance))
			return ch;
	}
	return NULL;
}

static bool release_is_owed(const struct vmbus_client *c, uint32_t relid)
{
	return c->release_owed[relid / 64] & (1ull << (relid % 64));
}

static int find_driver(const struct vmbus_client *c, const struct hv_guid *class_id)
{
	for (uint32_t i = 0; i < c->driver_count; i++)
		if (hv_guid_equal(&c->drivers[i].class_id, class_id))
			return (int)i;
	return -1;
}

/* Under the lock: queues work for vmbus_client_process, in arrival order. */
static void queue_work(struct vmbus_client *c, struct vmbus_client_channel *ch, uint32_t work)
{
	ch->work |= work;
	if (!ch->queued) {
		ch->queued = true;
		ch->work_next = NULL;
		if (c->work_tail)
			c->work_tail->work_next = ch;
		else
			c->work_head = ch;
		c->work_tail = ch;
	}
	c->port->event_set(c->port->ctx, c->work_ev);
}

/* Under the lock. */
static void unqueue_work(struct vmbus_client *c, struct vmbus_client_channel *ch)
{
	struct vmbus_client_channel **pp = &c->work_head, *prev = NULL;

	if (!ch->queued)
		return;
	while (*pp && *pp != ch) {
		prev = *pp;
		pp = &(*pp)->work_next;
	}
	if (*pp) {
		*pp = ch->work_next;
		if (c->work_tail == ch)
			c->work_tail = prev;
	}
	ch->queued = false;
	ch->work = 0;
	ch->work_next = NULL;
}

/* ------------------------------------------------------------------ */
/* Target VPs: channel_mgmt.c init_vp_index()                          */
/* ------------------------------------------------------------------ */

static uint32_t vp_limit(const struct hv_guest *g)
{
	uint32_t n = g->config.vp_count ? g->config.vp_count : HV_GUEST_MAX_VPS;
	return n < 64 ? n : 64;
}

static uint64_t online_vps(const struct hv_guest *g)
{
	uint64_t mask = 0;

	for (uint32_t i = 0; i < vp_limit(g); i++)
		if (__atomic_load_n(&g->vps[i].online, __ATOMIC_ACQUIRE))
			mask |= 1ull << i;
	return mask;
}

static uint32_t lowest_bit(uint64_t v)
{
	uint32_t i = 0;

	while (!(v & 1)) {
		v >>= 1;
		i++;
	}
	return i;
}

static uint32_t bit_count(uint64_t v)
{
	uint32_t n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

/* hv_cpuself_used(): another channel of the same device is on vp. */
static bool device_uses_vp(const struct vmbus_client_channel *ch,
			   const struct vmbus_client_channel *primary, uint32_t vp)
{
	if (!primary)
		return false;
	if (primary->target_vp == vp)
		return true;
	for (const struct vmbus_client_channel *s = primary->subs; s; s = s->sub_next)
		if (s != ch && s->target_vp == vp)
			return true;
	return false;
}

/*
 * Under the lock. Slow channels go to VP 0 (VMBUS_CONNECT_CPU). Fast ones
 * take the first online VP no fast channel has taken since the last reset
 * of the allocated mask (one NUMA node's hv_numa_map), preferring VPs no
 * other channel of the same device uses.
 */
static uint32_t choose_target_vp(struct vmbus_client *c, const struct vmbus_client_channel *ch,
				 const struct vmbus_client_channel *primary, bool perf)
{
	uint64_t online = online_vps(c->g);
	uint32_t ncpu = bit_count(online), target = 0;

	if (!perf || ncpu == 0)
		return 0;
	for (uint32_t i = 1; i <= ncpu + 1; i++) {
		uint64_t avail = online & ~c->allocated_vps;
		if (!avail) {
			c->allocated_vps = 0;
			avail = online;
		}
		target = lowest_bit(avail);
		c->allocated_vps |= 1ull << target;
		if (ch->sub_index >= ncpu || i > ncpu || !device_uses_vp(ch, primary, target))
			break;
	}
	return target;
}

/* ------------------------------------------------------------------ */
/* Posting messages: connection.c vmbus_post_msg()                     */
/* ------------------------------------------------------------------ */

static int post_to(struct vmbus_client *c, uint32_t connection_id, const void *msg,
		   uint32_t size)
{
	const struct vmbus_msg_header *hdr = msg;
	uint64_t usec = 1;
	int err = -EIO;

	for (uint32_t tries = 0; tries < POST_RETRIES; tries++) {
		uint16_t st = hv_guest_post_message(c->g, connection_id, HV_MESSAGE_TYPE_VMBUS,
						    msg, size);
		switch (st) {
		case HV_STATUS_SUCCESS:
			return 0;
		case HV_STATUS_INVALID_CONNECTION_ID:
			/* Connection 4 unknown: the host is older than 5.0. */
			if (hdr->msgtype == VMBUS_MSG_INITIATE_CONTACT)
				return -EINVAL;
			err = -EAGAIN;
			break;
		case HV_STATUS_INSUFFICIENT_MEMORY:
		case HV_STATUS_INSUFFICIENT_BUFFERS:
			err = -ENOBUFS;
			break;
		default:
			client_log(c, "vmbus: HvPostMessage failed, status %u\n", st);
			return -EIO;
		}
		c->port->event_wait(c->port->ctx, c->sleep_ev, usec * 1000);
		if (tries + 1 < POST_BACKOFF_DOUBLINGS)
			usec *= 2;
	}
	return err;
}

static int post(struct vmbus_client *c, const void *msg, uint32_t size)
{
	return post_to(c, c->msg_conn_id, msg, size);
}

/* ------------------------------------------------------------------ */
/* Waiting for answers                                                 */
/* ------------------------------------------------------------------ */

/* Registers interest in an answer before the request goes out, as Linux
 * adds its msginfo to chn_msg_list before posting. */
static struct waiter *waiter_get(struct vmbus_client *c, uint32_t answer_type, uint32_t relid,
				 uint32_t id, struct vmbus_client_channel *ch)
{
	struct waiter *w = NULL;

	lock(c);
	for (uint32_t i = 0; i < MAX_WAITERS; i++) {
		if (!c->waiters[i].in_use) {
			w = &c->waiters[i];
			break;
		}
	}
	if (w) {
		w->in_use = true;
		w->done = false;
		w->rescinded = ch && is_rescinded(ch);
		w->answer_type = answer_type;
		w->relid = relid;
		w->id = id;
		w->ch = ch;
		memset(w->answer, 0, sizeof(w->answer));
	}
	unlock(c);
	return w;
}

/* Ends the wait: copies the answer out (if out) and says whether the
 * channel's rescind woke it, under the lock, as the handler may still be
 * looking at the waiter if the wait timed out. */
static bool waiter_put(struct vmbus_client *c, struct waiter *w, void *out, size_t size)
{
	lock(c);
	bool rescinded = w->rescinded;
	if (out)
		memcpy(out, w->answer, size);
	w->in_use = false;
	w->ch = NULL;
	unlock(c);
	return rescinded;
}

/* Woken by a rescind already (before the request went out)? */
static bool waiter_rescinded(struct vmbus_client *c, struct waiter *w)
{
	lock(c);
	bool r = w->rescinded;
	unlock(c);
	return r;
}

/* 0 once answered (or woken by a rescind: see w->rescinded), -ETIMEDOUT. */
static int waiter_wait(struct vmbus_client *c, struct waiter *w)
{
	uint64_t timeout = c->cfg.timeout_ns, start = now_ns(c);

	for (;;) {
		lock(c);
		bool done = w->done || w->rescinded;
		unlock(c);
		if (done)
			return 0;
		uint64_t spent = now_ns(c) - start;
		if (spent >= timeout)
			return -ETIMEDOUT;
		if (c->port->event_wait(c->port->ctx, w->ev, timeout - spent) == -ETIMEDOUT) {
			lock(c);
			done = w->done || w->rescinded;
			unlock(c);
			return done ? 0 : -ETIMEDOUT;
		}
		/* Set: by our answer, or left over from a waiter before us. */
	}
}

/* Handler, under the lock: hands an answer to the one waiter it matches. */
static bool answer(struct vmbus_client *c, uint32_t type, uint32_t relid, uint32_t id,
		   bool match_relid, bool match_id, const uint8_t *msg, uint32_t len)
{
	for (uint32_t i = 0; i < MAX_WAITERS; i++) {
		struct waiter *w = &c->waiters[i];
		if (!w->in_use || w->done || w->answer_type != type)
			continue;
		if ((match_relid && w->relid != relid) || (match_id && w->id != id))
			continue;
		memcpy(w->answer, msg, len);
		w->done = true;
		c->port->event_set(c->port->ctx, w->ev);
		return true;
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* Host messages: vmbus_drv.c vmbus_on_msg_dpc(), channel_mgmt.c       */
/* ------------------------------------------------------------------ */

/* channel_message_table[]: the size each handled message must have at
 * least (the header alone where Linux says 0); 0 = no handler here. */
static const uint8_t min_len[VMBUS_MSG_COUNT] = {
	[VMBUS_MSG_OFFERCHANNEL] = sizeof(struct vmbus_msg_offer_channel),
	[VMBUS_MSG_RESCIND_CHANNELOFFER] = sizeof(struct vmbus_msg_rescind_offer),
	[VMBUS_MSG_ALLOFFERS_DELIVERED] = sizeof(struct vmbus_msg_header),
	[VMBUS_MSG_OPENCHANNEL_RESULT] = sizeof(struct vmbus_msg_open_result),
	[VMBUS_MSG_GPADL_CREATED] = sizeof(struct vmbus_msg_gpadl_created),
	[VMBUS_MSG_GPADL_TORNDOWN] = sizeof(struct vmbus_msg_gpadl_torndown),
	[VMBUS_MSG_VERSION_RESPONSE] = sizeof(struct vmbus_msg_version_response),
	[VMBUS_MSG_UNLOAD_RESPONSE] = sizeof(struct vmbus_msg_header),
	[VMBUS_MSG_MODIFYCHANNEL_RESPONSE] = sizeof(struct vmbus_msg_modify_channel_response),
};

/* vmbus_onoffer() on resume: a primary offered again takes the place of
 * the suspended channel of its class and instance (the host keeps only
 * the instance GUID: the relid and connection id may change), keeping its
 * driver and state; its driver's resume reopens it. Under the lock. */
static bool resume_match(struct vmbus_client *c, const struct vmbus_msg_offer_channel *o)
{
	for (struct vmbus_client_channel *ch = c->chan_head; ch; ch = ch->all_next) {
		if (!ch->awaiting || !hv_guid_equal(&ch->offer.offer.if_type, &o->offer.if_type) ||
		    !hv_guid_equal(&ch->offer.offer.if_instance, &o->offer.if_instance))
			continue;
		ch->offer = *o;
		ch->relid = o->child_relid;
		ch->state = VMBUS_CLIENT_OFFERED;
		ch->awaiting = false;
		c->relids[ch->relid] = ch;
		c->awaiting--;
		c->stats.resumed++;
		c->port->event_set(c->port->ctx, c->work_ev);
		return true;
	}
	return false;
}

/* vmbus_onoffer() + vmbus_process_offer(). Under the lock. */
static void on_offer(struct vmbus_client *c, const struct vmbus_msg_offer_channel *o)
{
	uint32_t relid = o->child_relid;
	uint16_t sub = o->offer.sub_channel_index;
	struct vmbus_client_channel *primary = NULL;

	if (c->state != CONN_REQUESTING && c->state != CONN_CONNECTED) {
		bad_message(c, "offer while not connected", relid);
		return;
	}
	if (relid < VMBUS_RELID_MIN || relid > VMBUS_RELID_MAX) {
		bad_message(c, "offer with an impossible relid", relid);
		return;
	}
	if (c->relids[relid] || release_is_owed(c, relid)) {
		bad_message(c, "offer of a relid in use", relid);
		return;
	}
	if (!sub && c->awaiting && resume_match(c, o))
		return;
	if (find_channel(c, &o->offer.if_type, &o->offer.if_instance, sub)) {
		bad_message(c, "duplicate offer", relid);
		return;
	}
	if (sub) {
		primary = find_channel(c, &o->offer.if_type, &o->offer.if_instance, 0);
		if (!primary) {
			bad_message(c, "sub-channel offer without a primary", relid);
			return;
		}
	}

	struct vmbus_client_channel *ch = channel_alloc(c);
	if (!ch) {
		/* vmbus_onoffer(): no channel object, give the relid back. */
		c->release_owed[relid / 64] |= 1ull << (relid % 64);
		c->port->event_set(c->port->ctx, c->work_ev);
		client_log(c, "vmbus: no memory for the offer of relid %u\n", relid);
		return;
	}
	ch->offer = *o;
	ch->relid = relid;
	ch->sub_index = sub;
	ch->state = VMBUS_CLIENT_OFFERED;
	if (primary) {
		ch->perf = primary->perf;
	} else {
		int d = find_driver(c, &o->offer.if_type);
		ch->perf = d >= 0 && c->drivers[d].fast;
	}
	ch->target_vp = choose_target_vp(c, ch, primary, ch->perf);
	if (primary) {
		ch->primary = primary;
		ch->sub_next = primary->subs;
		primary->subs = ch;
	}
	c->relids[relid] = ch;
	ch->all_prev = c->chan_tail;
	if (c->chan_tail)
		c->chan_tail->all_next = ch;
	else
		c->chan_head = ch;
	c->chan_tail = ch;
	c->stats.offers++;
	queue_work(c, ch, primary ? WORK_SUB : WORK_PROBE);
}

/* vmbus_onoffer_rescind() up to the work it queues; vmbus_rescind_cleanup()
 * wakes whoever waits on the channel. Under the lock. */
static void on_rescind(struct vmbus_client *c, uint32_t relid)
{
	struct vmbus_client_channel *ch = relid_lookup(c, relid);

	if (!ch) {
		bad_message(c, "rescind of an unknown relid", relid);
		return;
	}
	if (is_rescinded(ch)) {
		bad_message(c, "second rescind", relid);
		return;
	}
	__atomic_store_n(&ch->rescinded, true, __ATOMIC_RELEASE);
	ch->state = VMBUS_CLIENT_RESCINDED;
	ch->cb_enabled = false; /* vmbus_reset_channel_cb(); vmbus_chan_sched() checks rescind */
	c->stats.rescinds++;
	for (uint32_t i = 0; i < MAX_WAITERS; i++) {
		struct waiter *w = &c->waiters[i];
		if (w->in_use && w->ch == ch && !w->done) {
			w->rescinded = true;
			c->port->event_set(c->port->ctx, w->ev);
		}
	}
	queue_work(c, ch, WORK_REMOVE);
}

static void on_message(void *arg, uint32_t vp, uint32_t sint, const struct hv_guest_message *m)
{
	struct vmbus_client *c = arg;
	uint32_t len = m->payload_size;
	const uint8_t *p = m->payload;

	(void)vp;
	if (sint != VMBUS_MESSAGE_SINT)
		return;
	lock(c);
	if (len < sizeof(struct vmbus_msg_header) || len > VMBUS_MAX_MESSAGE_SIZE) {
		bad_message(c, "message shorter than its header", len);
		goto out;
	}
	uint32_t type = get32(p);
	if (type >= VMBUS_MSG_COUNT || min_len[type] == 0) {
		bad_message(c, "message type the guest does not take", type);
		goto out;
	}
	if (len < min_len[type]) {
		bad_message(c, "message too short for its type", type);
		goto out;
	}

	/* Unloading, the guest is letting go of every channel and the host
	 * forgets them all at UNLOAD; an offer or rescind crossing that (the
	 * KVP device re-offers itself when its channel is closed) is moot. */
	if (c->state == CONN_UNLOADING &&
	    (type == VMBUS_MSG_OFFERCHANNEL || type == VMBUS_MSG_RESCIND_CHANNELOFFER)) {
		c->stats.dropped_while_unloading++;
		goto out;
	}

	/* The payload is a private copy (hv_guest copied it out of the SIMP
	 * slot), zero beyond payload_size: whole structs can be read. */
	switch (type) {
	case VMBUS_MSG_OFFERCHANNEL: {
		struct vmbus_msg_offer_channel o;
		memcpy(&o, p, sizeof(o));
		on_offer(c, &o);
		break;
	}
	case VMBUS_MSG_RESCIND_CHANNELOFFER: {
		struct vmbus_msg_rescind_offer r;
		memcpy(&r, p, sizeof(r));
		on_rescind(c, r.child_relid);
		break;
	}
	case VMBUS_MSG_ALLOFFERS_DELIVERED:
		/* vmbus_onoffers_delivered() does nothing: unasked, it is harmless. */
		answer(c, type, 0, 0, false, false, p, len);
		break;
	case VMBUS_MSG_OPENCHANNEL_RESULT: {
		struct vmbus_msg_open_result r;
		memcpy(&r, p, sizeof(r));
		if (!answer(c, type, r.child_relid, r.open_id, true, true, p, len))
			bad_message(c, "open result nobody waits for", r.child_relid);
		break;
	}
	case VMBUS_MSG_GPADL_CREATED: {
		struct vmbus_msg_gpadl_created r;
		memcpy(&r, p, sizeof(r));
		if (!answer(c, type, r.child_relid, r.gpadl, true, true, p, len))
			bad_message(c, "GPADL created nobody waits for", r.gpadl);
		break;
	}
	case VMBUS_MSG_GPADL_TORNDOWN: {
		struct vmbus_msg_gpadl_torndown r;
		memcpy(&r, p, sizeof(r));
		if (!answer(c, type, 0, r.gpadl, false, true, p, len))
			bad_message(c, "GPADL torn down nobody waits for", r.gpadl);
		break;
	}
	case VMBUS_MSG_VERSION_RESPONSE:
		if (!answer(c, type, 0, 0, false, false, p, len))
			bad_message(c, "version response nobody waits for", 0);
		break;
	case VMBUS_MSG_UNLOAD_RESPONSE:
		if (!answer(c, type, 0, 0, false, false, p, len))
			bad_message(c, "unload response nobody waits for", 0);
		break;
	case VMBUS_MSG_MODIFYCHANNEL_RESPONSE: {
		struct vmbus_msg_modify_channel_response r;
		memcpy(&r, p, sizeof(r));
		if (!answer(c, type, r.child_relid, 0, true, false, p, len))
			bad_message(c, "modify response nobody waits for", r.child_relid);
		break;
	}
	default:
		break;
	}
out:
	unlock(c);
}

/* ------------------------------------------------------------------ */
/* Channel interrupts: vmbus_chan_sched(), vmbus_on_event()            */
/* ------------------------------------------------------------------ */

static void ring_lock(struct vmbus_client *c, struct hv_port_lock *l)
{
	c->port->lock(c->port->ctx, l);
}

static void ring_unlock(struct vmbus_client *c, struct hv_port_lock *l)
{
	c->port->unlock(c->port->ctx, l);
}

/*
 * HV_CALL_BATCHED: the inbound ring is masked (hv_begin_read) while the
 * callback drains it, then unmasked (hv_end_read); if packets came in
 * meanwhile the host did not signal them, so the callback runs again.
 */
static void run_callback(struct vmbus_client *c, struct vmbus_client_channel *ch,
			 vmbus_client_channel_callback cb, void *arg)
{
	for (uint32_t round = 0; round < CALLBACK_ROUNDS; round++) {
		ring_lock(c, ch->recv_lock);
		vmbus_ring_reader_mask(&ch->in);
		ring_unlock(c, ch->recv_lock);

		cb(arg, ch);

		ring_lock(c, ch->recv_lock);
		bool more = vmbus_ring_reader_unmask(&ch->in);
		ring_unlock(c, ch->recv_lock);
		if (!more)
			return;
	}
}

static void dispatch_relid(struct vmbus_client *c, uint32_t relid)
{
	lock(c);
	struct vmbus_client_channel *ch = relid_lookup(c, relid);
	if (!ch || is_rescinded(ch) || !ch->cb_enabled || !ch->rings_ready || !ch->cb) {
		unlock(c);
		return;
	}
	vmbus_client_channel_callback cb = ch->cb;
	void *arg = ch->cb_arg;
	ch->cb_running++;
	unlock(c);

	stat_inc(&c->stats.interrupts);
	run_callback(c, ch, cb, arg);

	lock(c);
	ch->cb_running--;
	unlock(c);
	c->port->event_set(c->port->ctx, c->idle_ev);
}

static void on_events(void *arg, uint32_t vp, uint32_t sint)
{
	struct vmbus_client *c = arg;
	uint8_t flags[HV_EVENT_FLAGS_BYTES];

	(void)vp;
	if (sint != VMBUS_MESSAGE_SINT)
		return;
	memset(flags, 0, sizeof(flags));
	if (!hv_guest_take_events(c->g, sint, flags))
		return;
	for (uint32_t byte = 0; byte < HV_EVENT_FLAGS_BYTES; byte++) {
		uint8_t bits = flags[byte];
		for (uint32_t bit = 0; bits; bit++, bits >>= 1) {
			uint32_t relid = byte * 8 + bit;
			/* Bit 0 is the pre-Win8 message interrupt: not a channel. */
			if ((bits & 1) && relid != 0)
				dispatch_relid(c, relid);
		}
	}
}

static void on_timer(void *arg, uint32_t vp)
{
	struct vmbus_client *c = arg;

	if (c->old_on_timer)
		c->old_on_timer(c->old_arg, vp);
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */
/* ------------------------------------------------------------------ */

static bool port_has_events(const struct hv_port *port)
{
	return port->event_new && port->event_free && port->event_set && port->event_wait;
}

static void client_release(struct vmbus_client *c)
{
	const struct hv_port *port = c->port;

	for (uint32_t i = 0; i < MAX_WAITERS; i++)
		if (c->waiters[i].ev)
			port->event_free(port->ctx, c->waiters[i].ev);
	if (c->work_ev)
		port->event_free(port->ctx, c->work_ev);
	if (c->idle_ev)
		port->event_free(port->ctx, c->idle_ev);
	if (c->sleep_ev)
		port->event_free(port->ctx, c->sleep_ev);
	if (c->lock)
		port->lock_free(port->ctx, c->lock);
	slabs_free(c);
	free_pages(c, c->relids, RELID_TABLE_PAGES);
	free_pages(c, c->int_page, 1);
	free_pages(c, c->monitor[0], 1);
	free_pages(c, c->monitor[1], 1);
	port->free_pages(port->ctx, c, c->own_pages);
}

struct vmbus_client *vmbus_client_new(struct hv_guest *g, const struct vmbus_client_config *cfg,
				      int *err)
{
	const struct hv_port *port;
	struct vmbus_client *c;
	int dummy;

	if (!err)
		err = &dummy;
	if (!g || !g->port || !g->hypercall_page || !port_has_events(g->port)) {
		*err = -EINVAL;
		return NULL;
	}
	port = g->port;
	uint32_t pages = (uint32_t)((sizeof(*c) + HV_PAGE_SIZE - 1) / HV_PAGE_SIZE);
	c = port->alloc_pages(port->ctx, pages);
	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	memset(c, 0, sizeof(*c));
	c->g = g;
	c->port = port;
	c->own_pages = pages;
	if (cfg)
		c->cfg = *cfg;
	if (c->cfg.max_version == 0)
		c->cfg.max_version = VMBUS_VERSION_WIN10_V5_3;
	if (c->cfg.timeout_ns == 0)
		c->cfg.timeout_ns = DEFAULT_TIMEOUT_NS;
	if (c->cfg.resume_wait_ns == 0)
		c->cfg.resume_wait_ns = DEFAULT_TIMEOUT_NS; /* vmbus_bus_resume: 10 s */
	c->msg_conn_id = VMBUS_MESSAGE_CONNECTION_ID;
	c->next_gpadl = GPADL_HANDLE_FIRST;

	c->lock = port->lock_new(port->ctx);
	c->work_ev = port->event_new(port->ctx);
	c->idle_ev = port->event_new(port->ctx);
	c->sleep_ev = port->event_new(port->ctx);
	bool ok = c->lock && c->work_ev && c->idle_ev && c->sleep_ev;
	for (uint32_t i = 0; ok && i < MAX_WAITERS; i++)
		ok = (c->waiters[i].ev = port->event_new(port->ctx)) != NULL;
	c->relids = alloc_pages(c, RELID_TABLE_PAGES);
	c->int_page = alloc_pages(c, 1);
	c->monitor[0] = alloc_pages(c, 1);
	c->monitor[1] = alloc_pages(c, 1);
	ok = ok && c->relids && c->int_page && c->monitor[0] && c->monitor[1];
	if (ok) {
		c->monitor_gpa[0] = gpa_of(c, c->monitor[0]);
		c->monitor_gpa[1] = gpa_of(c, c->monitor[1]);
		ok = c->monitor_gpa[0] != HV_GPA_INVALID && c->monitor_gpa[1] != HV_GPA_INVALID &&
		     gpa_of(c, c->int_page) != HV_GPA_INVALID;
	}
	if (ok) {
		lock(c);
		while (c->free_count < CHANNEL_RESERVE && slab_grow(c))
			;
		ok = c->free_count >= CHANNEL_RESERVE;
		unlock(c);
	}
	if (!ok) {
		client_release(c);
		*err = -ENOMEM;
		return NULL;
	}

	c->old_on_message = g->on_message;
	c->old_on_events = g->on_events;
	c->old_on_timer = g->on_timer;
	c->old_arg = g->callback_arg;
	hv_guest_set_callbacks(g, on_message, on_events, on_timer, c);
	*err = 0;
	return c;
}

int vmbus_client_register_driver(struct vmbus_client *c, const struct vmbus_driver *drv)
{
	if (!c || !drv || !drv->probe)
		return -EINVAL;
	lock(c);
	if (find_driver(c, &drv->class_id) >= 0) {
		unlock(c);
		return -EEXIST;
	}
	if (c->driver_count == MAX_DRIVERS) {
		unlock(c);
		return -ENOSPC;
	}
	int d = (int)c->driver_count++;
	c->drivers[d] = *drv;
	/* Offers that came before the driver: place and probe them now. */
	for (struct vmbus_client_channel *ch = c->chan_head; ch; ch = ch->all_next) {
		if (ch->sub_index || ch->drv >= 0 || is_rescinded(ch) ||
		    !hv_guid_equal(&ch->offer.offer.if_type, &drv->class_id))
			continue;
		if (drv->fast && !ch->perf && !ch->ring) {
			ch->perf = true;
			ch->target_vp = choose_target_vp(c, ch, NULL, true);
		}
		if (c->state == CONN_CONNECTED || c->state == CONN_REQUESTING)
			queue_work(c, ch, WORK_PROBE);
	}
	unlock(c);
	return 0;
}

uint32_t vmbus_client_version(const struct vmbus_client *c)
{
	return c ? __atomic_load_n(&c->version, __ATOMIC_ACQUIRE) : 0;
}

/* ------------------------------------------------------------------ */
/* Who owns the work                                                   */
/* ------------------------------------------------------------------ */

/* process, connect and unload exclude each other; connect and unload wait
 * for a running process to finish, process gives up at once. */
static bool own_work(struct vmbus_client *c, bool wait)
{
	lock(c);
	while (c->processing) {
		unlock(c);
		if (!wait)
			return false;
		idle_wait(c);
		lock(c);
	}
	c->processing = true;
	unlock(c);
	return true;
}

static void release_work(struct vmbus_client *c)
{
	lock(c);
	c->processing = false;
	unlock(c);
	c->port->event_set(c->port->ctx, c->idle_ev);
}

/* An operation (open, close, retarget) on one channel at a time. */
static int op_begin(struct vmbus_client_channel *ch, bool wait)
{
	struct vmbus_client *c = ch->c;

	lock(c);
	while (ch->busy) {
		unlock(c);
		if (!wait)
			return -EBUSY;
		idle_wait(c);
		lock(c);
	}
	ch->busy = true;
	unlock(c);
	return 0;
}

static void op_end(struct vmbus_client_channel *ch)
{
	struct vmbus_client *c = ch->c;

	lock(c);
	ch->busy = false;
	unlock(c);
	c->port->event_set(c->port->ctx, c->idle_ev);
}

/* ------------------------------------------------------------------ */
/* Connect: connection.c vmbus_connect(), vmbus_negotiate_version()    */
/* ------------------------------------------------------------------ */

/* 0: accepted; -ECONNREFUSED: try an older one; -ETIMEDOUT; other: the
 * post failed (Linux moves on to the next version too). */
static int negotiate(struct vmbus_client *c, uint32_t version)
{
	struct vmbus_msg_initiate_contact msg;
	struct vmbus_msg_version_response resp;
	uint32_t conn;

	memset(&msg, 0, sizeof(msg));
	msg.header.msgtype = VMBUS_MSG_INITIATE_CONTACT;
	msg.version_requested = version;
	msg.target_vcpu = c->g->vps[0].vp_index;
	if (version >= VMBUS_VERSION_WIN10_V5) {
		msg.msg_sint = VMBUS_MESSAGE_SINT;
		conn = VMBUS_MESSAGE_CONNECTION_ID_4;
	} else {
		msg.interrupt_page = gpa_of(c, c->int_page);
		conn = VMBUS_MESSAGE_CONNECTION_ID;
	}
	msg.monitor_page1 = c->monitor_gpa[0];
	msg.monitor_page2 = c->monitor_gpa[1];

	struct waiter *w = waiter_get(c, VMBUS_MSG_VERSION_RESPONSE, 0, 0, NULL);
	if (!w)
		return -EBUSY;
	int err = post_to(c, conn, &msg, sizeof(msg));
	if (!err)
		err = waiter_wait(c, w);
	waiter_put(c, w, &resp, sizeof(resp));
	if (err)
		return err;
	if (!resp.version_supported)
		return -ECONNREFUSED;
	lock(c);
	c->msg_conn_id = version >= VMBUS_VERSION_WIN10_V5 ? resp.msg_conn_id
							     : VMBUS_MESSAGE_CONNECTION_ID;
	unlock(c);
	return 0;
}

static void set_state(struct vmbus_client *c, enum conn_state s)
{
	lock(c);
	c->state = s;
	unlock(c);
}

/* Posts a message that is only its header and waits for the answer of
 * type answer (a header too). */
static int ask_and_wait(struct vmbus_client *c, uint32_t msgtype, uint32_t answer)
{
	struct vmbus_msg_header msg = {.msgtype = msgtype};
	struct waiter *w = waiter_get(c, answer, 0, 0, NULL);
	if (!w)
		return -EBUSY;
	int err = post(c, &msg, sizeof(msg));
	if (!err)
		err = waiter_wait(c, w);
	waiter_put(c, w, NULL, 0);
	return err;
}

/* vmbus_request_offers(): offers are recorded as they come, until
 * ALLOFFERS_DELIVERED. */
static int request_offers(struct vmbus_client *c)
{
	return ask_and_wait(c, VMBUS_MSG_REQUESTOFFERS, VMBUS_MSG_ALLOFFERS_DELIVERED);
}

int vmbus_client_connect(struct vmbus_client *c)
{
	int err = -ECONNREFUSED;
	uint32_t version = 0;

	if (!c)
		return -EINVAL;
	own_work(c, true);
	lock(c);
	if (c->state != CONN_DISCONNECTED) {
		unlock(c);
		release_work(c);
		return -EISCONN;
	}
	if (!__atomic_load_n(&c->g->vps[0].online, __ATOMIC_ACQUIRE)) {
		unlock(c);
		release_work(c);
		return -ENODEV;
	}
	c->state = CONN_CONTACTING;
	c->msg_conn_id = VMBUS_MESSAGE_CONNECTION_ID;
	unlock(c);
	refill_reserve(c);

	for (uint32_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		if (versions[i] > c->cfg.max_version)
			continue;
		err = negotiate(c, versions[i]);
		if (err == 0) {
			version = versions[i];
			break;
		}
		if (err == -ETIMEDOUT)
			break;
	}
	if (!version) {
		if (err != -ETIMEDOUT)
			err = -ECONNREFUSED;
		set_state(c, CONN_DISCONNECTED);
		release_work(c);
		return err;
	}

	lock(c);
	__atomic_store_n(&c->version, version, __ATOMIC_RELEASE);
	c->stats.version = version;
	c->state = CONN_REQUESTING;
	unlock(c);
	client_log(c, "vmbus: version %u.%u\n", VMBUS_VERSION_MAJOR(version),
		   VMBUS_VERSION_MINOR(version));

	err = request_offers(c);
	/* Connected either way: the host knows us now; unload undoes it. */
	set_state(c, CONN_CONNECTED);
	release_work(c);
	if (err)
		return err;
	vmbus_client_process(c);
	return 0;
}

/* ------------------------------------------------------------------ */
/* GPADLs: channel.c create_gpadl_header(), __vmbus_establish_gpadl(), */
/* vmbus_teardown_gpadl()                                              */
/* ------------------------------------------------------------------ */

static int page_pfn(const struct vmbus_client *c, const uint8_t *base, uint32_t i, uint64_t *pfn)
{
	uint64_t gpa = gpa_of(c, base + (size_t)i * HV_PAGE_SIZE);

	if (gpa == HV_GPA_INVALID || (gpa & ~HV_PAGE_MASK))
		return -EFAULT;
	*pfn = gpa >> HV_PAGE_SHIFT;
	return 0;
}

/* Posts the header and its bodies for pages at base. */
static int post_gpadl(struct vmbus_client *c, uint32_t relid, uint32_t gpadl, const uint8_t *base,
		      uint32_t pages)
{
	union {
		struct vmbus_msg_gpadl_header h;
		struct vmbus_msg_gpadl_body b;
		uint8_t raw[VMBUS_MAX_MESSAGE_SIZE];
	} m;
	uint32_t n = pages < VMBUS_GPADL_HEADER_MAX_PFNS ? pages : VMBUS_GPADL_HEADER_MAX_PFNS;
	uint32_t done = 0;
	uint64_t pfn;
	int err;

	memset(&m, 0, sizeof(m));
	m.h.header.msgtype = VMBUS_MSG_GPADL_HEADER;
	m.h.child_relid = relid;
	m.h.gpadl = gpadl;
	m.h.range_buflen = (uint16_t)(sizeof(struct vmbus_gpa_range) + pages * sizeof(uint64_t));
	m.h.range_count = 1;
	struct vmbus_gpa_range range = {.byte_count = pages * HV_PAGE_SIZE, .byte_offset = 0};
	uint8_t *out = m.raw + sizeof(struct vmbus_msg_gpadl_header);
	memcpy(out, &range, sizeof(range));
	out += sizeof(range);
	for (; done < n; done++) {
		if ((err = page_pfn(c, base, done, &pfn)) != 0)
			return err;
		memcpy(out + done * sizeof(uint64_t), &pfn, sizeof(pfn));
	}
	err = post(c, &m, (uint32_t)(sizeof(struct vmbus_msg_gpadl_header) + sizeof(range) +
				     n * sizeof(uint64_t)));
	while (!err && done < pages) {
		n = pages - done < VMBUS_GPADL_BODY_MAX_PFNS ? pages - done
							      : VMBUS_GPADL_BODY_MAX_PFNS;
		memset(&m, 0, sizeof(m));
		m.b.header.msgtype = VMBUS_MSG_GPADL_BODY;
		m.b.msg_number = 0; /* Linux never sets it */
		m.b.gpadl = gpadl;
		out = m.raw + sizeof(struct vmbus_msg_gpadl_body);
		for (uint32_t i = 0; i < n; i++, done++) {
			if ((err = page_pfn(c, base, done, &pfn)) != 0)
				return err;
			memcpy(out + i * sizeof(uint64_t), &pfn, sizeof(pfn));
		}
		err = post(c, &m, (uint32_t)(sizeof(struct vmbus_msg_gpadl_body) +
					     n * sizeof(uint64_t)));
	}
	return err;
}

/* 0 with *handle; -EIO (refused), -ENODEV (rescinded), -ETIMEDOUT (the
 * host may or may not have it: *handle is set), other post errors. */
static int establish_gpadl(struct vmbus_client_channel *ch, const uint8_t *base, uint32_t pages,
			   uint32_t *handle)
{
	struct vmbus_client *c = ch->c;
	struct vmbus_msg_gpadl_created resp;

	lock(c);
	*handle = c->next_gpadl++;
	unlock(c);
	struct waiter *w = waiter_get(c, VMBUS_MSG_GPADL_CREATED, ch->relid, *handle, ch);
	if (!w)
		return -EBUSY;
	int err = waiter_rescinded(c, w) ? -ENODEV
					 : post_gpadl(c, ch->relid, *handle, base, pages);
	if (!err)
		err = waiter_wait(c, w);
	bool rescinded = waiter_put(c, w, &resp, sizeof(resp));
	if (err)
		return err;
	if (rescinded)
		return -ENODEV;
	if (resp.creation_status != 0) {
		client_log(c, "vmbus: relid %u: GPADL refused, status %#x\n", ch->relid,
			   resp.creation_status);
		return -EIO;
	}
	return 0;
}

/* 0 when the host gave the pages back (or the channel is rescinded, when
 * Linux does not ask), -ETIMEDOUT or a post error otherwise. */
static int teardown_gpadl(struct vmbus_client_channel *ch, uint32_t handle)
{
	struct vmbus_client *c = ch->c;
	struct vmbus_msg_gpadl_teardown msg = {
		.header.msgtype = VMBUS_MSG_GPADL_TEARDOWN,
		.child_relid = ch->relid,
		.gpadl = handle,
	};

	if (is_rescinded(ch))
		return 0;
	struct waiter *w = waiter_get(c, VMBUS_MSG_GPADL_TORNDOWN, ch->relid, handle, ch);
	if (!w)
		return -EBUSY;
	bool rescinded = waiter_rescinded(c, w);
	int err = rescinded ? 0 : post(c, &msg, sizeof(msg));
	if (!err && !rescinded)
		err = waiter_wait(c, w);
	waiter_put(c, w, NULL, 0);
	return is_rescinded(ch) ? 0 : err;
}

/* ------------------------------------------------------------------ */
/* Open and close: channel.c __vmbus_open(), vmbus_close_internal()    */
/* ------------------------------------------------------------------ */

/* Stops packet callbacks and waits until none runs (vmbus_reset_channel_cb()). */
static void callbacks_off(struct vmbus_client_channel *ch)
{
	struct vmbus_client *c = ch->c;

	lock(c);
	ch->cb_enabled = false;
	while (ch->cb_running) {
		unlock(c);
		idle_wait(c);
		lock(c);
	}
	ch->cb = NULL;
	ch->cb_arg = NULL;
	unlock(c);
}

/* Detaches the ring engine from the pages: no send or receive after this. */
static void rings_detach(struct vmbus_client_channel *ch)
{
	struct vmbus_client *c = ch->c;

	ring_lock(c, ch->send_lock);
	ring_lock(c, ch->recv_lock);
	lock(c);
	ch->rings_ready = false;
	unlock(c);
	ring_unlock(c, ch->recv_lock);
	ring_unlock(c, ch->send_lock);
}

/* The pages are the host's until it gives them back: if it never said so,
 * they are left allocated (Linux: "it is perhaps better to leak memory"). */
static void rings_release(struct vmbus_client_channel *ch, bool host_done)
{
	struct vmbus_client *c = ch->c;

	if (!ch->ring)
		return;
	if (host_done) {
		free_pages(c, ch->ring, ch->ring_pages);
	} else {
		lock(c);
		c->leaked_pages += ch->ring_pages;
		unlock(c);
		client_log(c, "vmbus: relid %u: the host kept its GPADL; %u pages left to it\n",
			   ch->relid, ch->ring_pages);
	}
	lock(c);
	ch->ring = NULL;
	ch->ring_pages = 0;
	ch->send_pages = 0;
	unlock(c);
}

static bool ring_size_ok(uint32_t bytes)
{
	return bytes % HV_PAGE_SIZE == 0 && bytes >= 2 * HV_PAGE_SIZE;
}

/* Made at the first open, kept until the struct goes; published with a
 * release so that a sender that sees one sees it whole. */
static int channel_locks(struct vmbus_client_channel *ch)
{
	const struct hv_port *port = ch->c->port;

	if (!ch->send_lock)
		__atomic_store_n(&ch->send_lock, port->lock_new(port->ctx), __ATOMIC_RELEASE);
	if (!ch->recv_lock)
		__atomic_store_n(&ch->recv_lock, port->lock_new(port->ctx), __ATOMIC_RELEASE);
	return ch->send_lock && ch->recv_lock ? 0 : -ENOMEM;
}

static void send_close(struct vmbus_client_channel *ch)
{
	struct vmbus_msg_close_channel msg = {
		.header.msgtype = VMBUS_MSG_CLOSECHANNEL,
		.child_relid = ch->relid,
	};
	int err = post(ch->c, &msg, sizeof(msg));

	if (err)
		client_log(ch->c, "vmbus: relid %u: CLOSECHANNEL failed (%d)\n", ch->relid, err);
}

/* Undoes a failed open from the GPADL on. */
static void open_unwind(struct vmbus_client_channel *ch, bool gpadl_made, bool send_close_msg)
{
	struct vmbus_client *c = ch->c;
	bool host_done = true;

	callbacks_off(ch);
	rings_detach(ch);
	if (send_close_msg)
		send_close(ch);
	if (gpadl_made)
		host_done = teardown_gpadl(ch, ch->gpadl) == 0;
	rings_release(ch, host_done);
	lock(c);
	if (!is_rescinded(ch))
		ch->state = VMBUS_CLIENT_OFFERED;
	unlock(c);
}

int vmbus_client_channel_open(struct vmbus_client_channel *ch, uint32_t send_ring_bytes,
		       uint32_t recv_ring_bytes, const void *user_data, uint32_t user_len,
		       vmbus_client_channel_callback cb, void *arg)
{
	struct vmbus_client *c;
	struct vmbus_msg_open_result resp;
	int err;

	if (!ch || !cb || !ring_size_ok(send_ring_bytes) || !ring_size_ok(recv_ring_bytes) ||
	    user_len > VMBUS_OFFER_USER_DEFINED_BYTES || (user_len && !user_data))
		return -EINVAL;
	uint32_t send_pages = send_ring_bytes / HV_PAGE_SIZE;
	uint32_t pages = send_pages + recv_ring_bytes / HV_PAGE_SIZE;
	if (pages > MAX_RING_PAGES || pages < send_pages)
		return -EINVAL;
	c = ch->c;
	if ((err = op_begin(ch, false)) != 0)
		return err;
	lock(c);
	if (is_rescinded(ch))
		err = -ENODEV;
	else if (c->state != CONN_CONNECTED && c->state != CONN_REQUESTING)
		err = -ENOTCONN;
	else if (ch->state != VMBUS_CLIENT_OFFERED || ch->ring)
		err = -EBUSY;
	else
		ch->state = VMBUS_CLIENT_OPENING;
	unlock(c);
	if (err) {
		op_end(ch);
		return err;
	}
	if ((err = channel_locks(ch)) != 0)
		goto fail_state;

	/* vmbus_alloc_ring(): one zeroed allocation, send ring first. */
	uint8_t *ring = alloc_pages(c, pages);
	if (!ring) {
		err = -ENOMEM;
		goto fail_state;
	}
	struct vmbus_ring_mem send_mem, recv_mem;
	if (vmbus_ring_mem_init(&send_mem, ring, send_ring_bytes, false) ||
	    vmbus_ring_mem_init(&recv_mem, ring + send_ring_bytes, recv_ring_bytes, false)) {
		free_pages(c, ring, pages);
		err = -EINVAL;
		goto fail_state;
	}
	/* hv_ringbuffer_init(): the guest owns the headers and makes them
	 * fresh; attached before the host sees the pages, so the engine's
	 * private indices cannot come from the host. */
	vmbus_ring_mem_reset(&send_mem);
	vmbus_ring_mem_reset(&recv_mem);
	ring_lock(c, ch->send_lock);
	ring_lock(c, ch->recv_lock);
	int a = vmbus_ring_writer_attach(&ch->out, &send_mem);
	int b = vmbus_ring_reader_attach(&ch->in, &recv_mem);
	ring_unlock(c, ch->recv_lock);
	ring_unlock(c, ch->send_lock);
	lock(c);
	ch->ring = ring;
	ch->ring_pages = pages;
	ch->send_pages = send_pages;
	unlock(c);
	if (a || b) {
		err = -EIO;
		rings_release(ch, true);
		goto fail_state;
	}

	err = establish_gpadl(ch, ring, pages, &ch->gpadl);
	if (err) {
		/* A timeout leaves the host's view unknown: ask for it back. */
		open_unwind(ch, err == -ETIMEDOUT, false);
		goto fail_op;
	}

	/* __vmbus_open(): the callback is live before OPENCHANNEL, so the
	 * host's first signal is not lost. */
	lock(c);
	ch->cb = cb;
	ch->cb_arg = arg;
	ch->rings_ready = true;
	ch->cb_enabled = !is_rescinded(ch);
	uint32_t target = ch->target_vp;
	unlock(c);

	struct vmbus_msg_open_channel msg;
	memset(&msg, 0, sizeof(msg));
	msg.header.msgtype = VMBUS_MSG_OPENCHANNEL;
	msg.child_relid = ch->relid;
	msg.open_id = ch->relid;
	msg.ring_gpadl = ch->gpadl;
	msg.target_vp = c->g->vps[target].vp_index;
	msg.downstream_ring_page_offset = send_pages;
	if (user_len)
		memcpy(msg.user_data, user_data, user_len);

	struct waiter *w = waiter_get(c, VMBUS_MSG_OPENCHANNEL_RESULT, ch->relid, ch->relid, ch);
	if (!w) {
		err = -EBUSY;
		open_unwind(ch, true, false);
		goto fail_op;
	}
	err = waiter_rescinded(c, w) ? -ENODEV : post(c, &msg, sizeof(msg));
	if (!err)
		err = waiter_wait(c, w);
	bool rescinded = waiter_put(c, w, &resp, sizeof(resp)) || is_rescinded(ch);
	if (!err && rescinded)
		err = -ENODEV;
	if (!err && resp.status != 0) {
		client_log(c, "vmbus: relid %u: open refused, status %#x\n", ch->relid,
			   resp.status);
		err = -EIO;
	}
	if (err) {
		/* Refused or rescinded: the host has no open channel. Timed
		 * out: it may have one later; CLOSECHANNEL is harmless. */
		open_unwind(ch, true, err == -ETIMEDOUT);
		goto fail_op;
	}
	lock(c);
	if (!is_rescinded(ch))
		ch->state = VMBUS_CLIENT_OPEN;
	unlock(c);
	op_end(ch);
	return 0;

fail_state:
	lock(c);
	if (!is_rescinded(ch))
		ch->state = VMBUS_CLIENT_OFFERED;
	unlock(c);
fail_op:
	op_end(ch);
	return err;
}

enum close_mode {
	CLOSE_NORMAL, /* CLOSECHANNEL, GPADL_TEARDOWN, free the rings */
	CLOSE_UNLOAD, /* CLOSECHANNEL; rings freed once the host unloaded */
};

/*
 * vmbus_close_internal(). Linux posts CLOSECHANNEL even for a rescinded
 * channel, but skips GPADL_TEARDOWN for it (vmbus_teardown_gpadl()) and
 * frees the ring: the host revoked the channel before rescinding it.
 * Returns true if the ring pages are still held (CLOSE_UNLOAD).
 */
static bool close_one(struct vmbus_client_channel *ch, enum close_mode mode)
{
	struct vmbus_client *c = ch->c;

	callbacks_off(ch);
	lock(c);
	bool open = ch->ring != NULL && ch->rings_ready;
	unlock(c);
	if (!open)
		return false;
	rings_detach(ch);
	send_close(ch);
	if (mode == CLOSE_UNLOAD)
		return true;
	bool host_done = teardown_gpadl(ch, ch->gpadl) == 0;
	rings_release(ch, host_done);
	lock(c);
	if (!is_rescinded(ch))
		ch->state = VMBUS_CLIENT_OFFERED;
	unlock(c);
	return false;
}

/* Under the lock: the first open sub-channel of primary (not busy). */
static struct vmbus_client_channel *open_sub(struct vmbus_client_channel *primary)
{
	for (struct vmbus_client_channel *s = primary->subs; s; s = s->sub_next)
		if (s->ring && s->rings_ready && !s->busy)
			return s;
	return NULL;
}

/* vmbus_close() / vmbus_disconnect_ring(): sub-channels first. */
static void close_with_subs(struct vmbus_client_channel *ch)
{
	struct vmbus_client *c = ch->c;

	for (;;) {
		lock(c);
		struct vmbus_client_channel *s = ch->primary ? NULL : open_sub(ch);
		if (s)
			s->busy = true;
		unlock(c);
		if (!s)
			break;
		close_one(s, CLOSE_NORMAL);
		op_end(s);
	}
	close_one(ch, CLOSE_NORMAL);
}

void vmbus_client_channel_close(struct vmbus_client_channel *ch)
{
	if (!ch)
		return;
	op_begin(ch, true);
	close_with_subs(ch);
	op_end(ch);
}

/* ------------------------------------------------------------------ */
/* Retarget: channel.c vmbus_send_modifychannel()                      */
/* ------------------------------------------------------------------ */

int vmbus_client_channel_retarget(struct vmbus_client_channel *ch, uint32_t vp)
{
	struct vmbus_client *c;
	struct vmbus_msg_modify_channel_response resp;
	int err = 0;

	if (!ch)
		return -EINVAL;
	c = ch->c;
	if (vp >= vp_limit(c->g) || !__atomic_load_n(&c->g->vps[vp].online, __ATOMIC_ACQUIRE))
		return -EINVAL;
	if (vmbus_client_version(c) < VMBUS_VERSION_WIN10_V4_1)
		return -EOPNOTSUPP;
	if ((err = op_begin(ch, false)) != 0)
		return err;
	lock(c);
	bool open = ch->state == VMBUS_CLIENT_OPEN;
	if (is_rescinded(ch))
		err = -ENODEV;
	else if (!open)
		ch->target_vp = vp; /* not open: OPENCHANNEL will carry it */
	unlock(c);
	if (err || !open) {
		op_end(ch);
		return err;
	}

	struct vmbus_msg_modify_channel msg = {
		.header.msgtype = VMBUS_MSG_MODIFYCHANNEL,
		.child_relid = ch->relid,
		.target_vp = c->g->vps[vp].vp_index,
	};
	if (vmbus_client_version(c) < VMBUS_VERSION_WIN10_V5_3) {
		/* send_modifychannel_without_ack(): no answer comes; the host
		 * moves when it moves, the new target is ours at once. */
		err = post(c, &msg, sizeof(msg));
	} else {
		struct waiter *w = waiter_get(c, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, ch->relid, 0, ch);
		if (!w) {
			op_end(ch);
			return -EBUSY;
		}
		err = waiter_rescinded(c, w) ? -ENODEV : post(c, &msg, sizeof(msg));
		if (!err)
			err = waiter_wait(c, w);
		bool rescinded = waiter_put(c, w, &resp, sizeof(resp));
		if (!err && rescinded)
			err = -ENODEV;
		if (!err && resp.status != 0)
			err = -EIO;
	}
	if (!err) {
		lock(c);
		ch->target_vp = vp;
		unlock(c);
	}
	op_end(ch);
	return err;
}

/* ------------------------------------------------------------------ */
/* Send and receive: ring_buffer.c hv_ringbuffer_write()/read()        */
/* ------------------------------------------------------------------ */

/* vmbus_set_event(): the relid bit in the interrupt page's send half
 * (unless the channel has a dedicated interrupt), then HvSignalEvent. */
static void signal_host(struct vmbus_client_channel *ch)
{
	struct vmbus_client *c = ch->c;

	if (!(ch->offer.interrupt_flags & VMBUS_OFFER_DEDICATED_INTERRUPT)) {
		uint64_t *send_half = (uint64_t *)(void *)(c->int_page + HV_PAGE_SIZE / 2);
		__atomic_fetch_or(&send_half[ch->relid / 64], 1ull << (ch->relid % 64),
				  __ATOMIC_SEQ_CST);
	}
	hv_guest_signal_event(c->g, ch->offer.connection_id, 0);
	stat_inc(&c->stats.signals_sent);
}

enum send_kind { SEND_PACKET, SEND_GPA_DIRECT };

struct send_args {
	enum send_kind kind;
	const struct vmbus_packet_out *p;
	uint64_t trans_id;
	const struct vmbus_gpa_range_out *ranges;
	uint32_t range_count;
	const void *data;
	uint32_t len;
};

static int channel_send(struct vmbus_client_channel *ch, const struct send_args *a)
{
	struct vmbus_client *c = ch->c;
	bool signal = false;
	int err;

	struct hv_port_lock *l = __atomic_load_n(&ch->send_lock, __ATOMIC_ACQUIRE);
	if (!l)
		return is_rescinded(ch) ? -ENODEV : -ENOTCONN;
	ring_lock(c, l);
	if (is_rescinded(ch)) {
		err = -ENODEV;
	} else if (!ch->rings_ready) {
		err = -ENOTCONN;
	} else {
		if (a->kind == SEND_PACKET)
			err = vmbus_ring_put(&ch->out, a->p, NULL);
		else
			err = vmbus_ring_put_gpa_direct(&ch->out, a->trans_id, a->ranges,
							a->range_count, a->data, a->len, NULL);
		if (!err) {
			signal = vmbus_ring_publish(&ch->out);
			stat_inc(&ch->packets_sent);
		}
	}
	ring_unlock(c, l);
	if (signal)
		signal_host(ch);
	return err;
}

int vmbus_client_channel_send(struct vmbus_client_channel *ch, const struct vmbus_packet_out *p)
{
	if (!ch || !p)
		return -EINVAL;
	struct send_args a = {.kind = SEND_PACKET, .p = p};
	return channel_send(ch, &a);
}

int vmbus_client_channel_send_inband(struct vmbus_client_channel *ch, uint64_t trans_id,
			      uint16_t flags, const void *data, uint32_t len)
{
	if (!ch || (len && !data))
		return -EINVAL;
	struct vmbus_ring_iov iov = {data, len};
	struct vmbus_packet_out p = {
		.type = VMBUS_PKT_DATA_INBAND,
		.flags = flags,
		.trans_id = trans_id,
		.iov = &iov,
		.iov_count = 1,
	};
	return vmbus_client_channel_send(ch, &p);
}

int vmbus_client_channel_send_gpa_direct(struct vmbus_client_channel *ch, uint64_t trans_id,
				  const struct vmbus_gpa_range_out *ranges, uint32_t range_count,
				  const void *data, uint32_t len)
{
	if (!ch || !ranges || !range_count || (len && !data))
		return -EINVAL;
	struct send_args a = {
		.kind = SEND_GPA_DIRECT,
		.trans_id = trans_id,
		.ranges = ranges,
		.range_count = range_count,
		.data = data,
		.len = len,
	};
	return channel_send(ch, &a);
}

int vmbus_client_channel_recv(struct vmbus_client_channel *ch, void *buf, uint32_t len,
		       struct vmbus_packet *pkt)
{
	struct vmbus_client *c;
	bool signal = false;
	int err;

	if (!ch || !pkt || (len && !buf))
		return -EINVAL;
	c = ch->c;
	struct hv_port_lock *l = __atomic_load_n(&ch->recv_lock, __ATOMIC_ACQUIRE);
	if (!l)
		return -ENOTCONN;
	ring_lock(c, l);
	if (!ch->rings_ready) {
		err = -ENOTCONN;
	} else {
		err = vmbus_ring_recv(&ch->in, buf, len, pkt);
		if (!err)
			stat_inc(&ch->packets_received);
		/* hv_pkt_iter_close() after each read, as vmbus_recvpacket():
		 * space goes back at once, and a blocked host is signalled. */
		if (!err || err == -EAGAIN)
			signal = vmbus_ring_commit(&ch->in);
	}
	ring_unlock(c, l);
	if (signal && !is_rescinded(ch))
		signal_host(ch);
	return err;
}

/* ------------------------------------------------------------------ */
/* Work: probes, sub-channels, removals                                */
/* ------------------------------------------------------------------ */

static void release_relid(struct vmbus_client *c, uint32_t relid)
{
	/* vmbus_release_relid() */
	struct vmbus_msg_relid_released msg = {
		.header.msgtype = VMBUS_MSG_RELID_RELEASED,
		.child_relid = relid,
	};
	int err = post(c, &msg, sizeof(msg));

	if (err)
		client_log(c, "vmbus: RELID_RELEASED %u failed (%d)\n", relid, err);
}

/* Under the lock: out of the table and the device's lists. */
static void unmap_channel(struct vmbus_client *c, struct vmbus_client_channel *ch)
{
	if (c->relids[ch->relid] == ch)
		c->relids[ch->relid] = NULL;
	if (ch->all_prev)
		ch->all_prev->all_next = ch->all_next;
	else if (c->chan_head == ch)
		c->chan_head = ch->all_next;
	if (ch->all_next)
		ch->all_next->all_prev = ch->all_prev;
	else if (c->chan_tail == ch)
		c->chan_tail = ch->all_prev;
	ch->all_prev = ch->all_next = NULL;
	if (ch->primary) {
		struct vmbus_client_channel **pp = &ch->primary->subs;
		while (*pp && *pp != ch)
			pp = &(*pp)->sub_next;
		if (*pp)
			*pp = ch->sub_next;
		ch->primary = NULL;
	}
	for (struct vmbus_client_channel *s = ch->subs; s; s = s->sub_next)
		s->primary = NULL; /* orphans: released when their own rescind comes */
	ch->subs = NULL;
	if (ch->perf)
		c->allocated_vps &= ~(1ull << ch->target_vp); /* hv_clear_allocated_cpu() */
	unqueue_work(c, ch);
}

static void driver_remove(struct vmbus_client *c, struct vmbus_client_channel *ch)
{
	lock(c);
	bool announced = ch->announced && ch->drv >= 0;
	struct vmbus_driver d = announced ? c->drivers[ch->drv] : (struct vmbus_driver){0};
	ch->announced = false;
	unlock(c);
	if (announced && d.remove)
		d.remove(d.ctx, ch);
}

/* A device goes: its sub-channels' driver calls first, then its own
 * (vmbus_remove() -> the driver's remove, which closes them all). */
static void device_remove(struct vmbus_client *c, struct vmbus_client_channel *ch)
{
	for (;;) {
		lock(c);
		struct vmbus_client_channel *s = ch->subs;
		while (s && !s->announced)
			s = s->sub_next;
		unlock(c);
		if (!s)
			break;
		driver_remove(c, s);
	}
	driver_remove(c, ch);
}

/* Rescind work: vmbus_onoffer_rescind() from the device unregister on,
 * then hv_process_channel_removal(). */
static void remove_channel(struct vmbus_client *c, struct vmbus_client_channel *ch)
{
	op_begin(ch, true); /* an open or close in flight was woken by the rescind */
	op_end(ch);
	device_remove(c, ch);
	op_begin(ch, true);
	close_with_subs(ch);
	op_end(ch);
	lock(c);
	while (ch->busy || ch->cb_running) {
		unlock(c);
		idle_wait(c);
		lock(c);
	}
	uint32_t relid = ch->relid;
	unmap_channel(c, ch);
	unlock(c);
	release_relid(c, relid);
	lock(c);
	channel_free(c, ch);
	unlock(c);
}

/* A failed probe or resume leaves no binding (and nothing open). */
static void unbind(struct vmbus_client *c, struct vmbus_client_channel *ch)
{
	vmbus_client_channel_close(ch);
	lock(c);
	ch->drv = -1;
	ch->announced = false;
	unlock(c);
}

static void probe_channel(struct vmbus_client *c, struct vmbus_client_channel *ch)
{
	lock(c);
	int d = is_rescinded(ch) || ch->drv >= 0 ? -1 : find_driver(c, &ch->offer.offer.if_type);
	struct vmbus_driver drv = d >= 0 ? c->drivers[d] : (struct vmbus_driver){0};
	if (d >= 0) {
		ch->drv = d;
		ch->announced = true;
	}
	unlock(c);
	if (d < 0)
		return;
	int err = drv.probe(drv.ctx, ch);
	if (err) {
		client_log(c, "vmbus: relid %u: %s probe failed (%d)\n", ch->relid,
			   drv.name ? drv.name : "driver", err);
		unbind(c, ch);
	}
}

static void announce_sub(struct vmbus_client *c, struct vmbus_client_channel *sub)
{
	lock(c);
	struct vmbus_client_channel *primary = sub->primary;
	int d = primary && !is_rescinded(sub) && primary->announced ? primary->drv : -1;
	struct vmbus_driver drv = d >= 0 ? c->drivers[d] : (struct vmbus_driver){0};
	if (d >= 0 && drv.subchannel) {
		sub->drv = d;
		sub->announced = true;
	}
	unlock(c);
	if (d >= 0 && drv.subchannel)
		drv.subchannel(drv.ctx, primary, sub);
}

static uint32_t send_owed_releases(struct vmbus_client *c)
{
	uint32_t n = 0;

	for (uint32_t word = 0; word < RELID_TABLE_SIZE / 64; word++) {
		lock(c);
		uint64_t bits = c->release_owed[word];
		c->release_owed[word] = 0;
		unlock(c);
		for (uint32_t bit = 0; bits; bit++, bits >>= 1) {
			if (bits & 1) {
				release_relid(c, word * 64 + bit);
				n++;
			}
		}
	}
	return n;
}

/* Under the lock: the next queued channel (with a removal, if only
 * removals may run now), out of the queue, and its work. */
static struct vmbus_client_channel *take_work(struct vmbus_client *c, bool removes_only,
					      uint32_t *work)
{
	struct vmbus_client_channel *ch = c->work_head;
	while (ch && removes_only && !(ch->work & WORK_REMOVE))
		ch = ch->work_next;
	if (!ch)
		return NULL;
	*work = ch->work;
	unqueue_work(c, ch);
	return ch;
}

/* Runs the queued work (the caller owns it): every kind while connected,
 * only removals while suspending. */
static uint32_t run_work(struct vmbus_client *c, bool removes_only)
{
	uint32_t n = 0;
	for (;;) {
		lock(c);
		uint32_t work = 0;
		bool connected = c->state == CONN_CONNECTED;
		struct vmbus_client_channel *ch = connected ? take_work(c, removes_only, &work)
							    : NULL;
		unlock(c);
		if (!ch)
			break;
		if (work & WORK_REMOVE)
			remove_channel(c, ch);
		else if (work & WORK_PROBE)
			probe_channel(c, ch);
		else if (work & WORK_SUB)
			announce_sub(c, ch);
		n++;
	}
	lock(c);
	bool connected = c->state == CONN_CONNECTED;
	unlock(c);
	if (connected)
		n += send_owed_releases(c);
	return n;
}

uint32_t vmbus_client_process(struct vmbus_client *c)
{
	if (!c || !own_work(c, false))
		return 0;
	refill_reserve(c);
	uint32_t n = run_work(c, false);
	release_work(c);
	return n;
}

static bool work_ready(struct vmbus_client *c)
{
	bool owed = false;

	lock(c);
	for (uint32_t i = 0; i < RELID_TABLE_SIZE / 64; i++)
		owed |= c->release_owed[i] != 0;
	bool ready = c->state == CONN_CONNECTED && (c->work_head || owed);
	unlock(c);
	return ready;
}

int vmbus_client_wait_work(struct vmbus_client *c, uint64_t timeout_ns)
{
	uint64_t start;

	if (!c)
		return -EINVAL;
	start = now_ns(c);
	for (;;) {
		if (work_ready(c))
			return 0;
		uint64_t spent = now_ns(c) - start;
		if (spent >= timeout_ns && timeout_ns)
			return -ETIMEDOUT;
		/* The event may be left over from work already done: look
		 * again rather than report work that is not there. */
		if (c->port->event_wait(c->port->ctx, c->work_ev, timeout_ns - spent) == -ETIMEDOUT)
			return work_ready(c) ? 0 : -ETIMEDOUT;
	}
}

/* ------------------------------------------------------------------ */
/* Unload: vmbus_drv.c vmbus_exit(), channel_mgmt.c                    */
/* vmbus_free_channels(), vmbus_initiate_unload()                      */
/* ------------------------------------------------------------------ */

/* Under the lock: the next channel to unload, in offer order, primaries
 * (with their sub-channels) before orphaned sub-channels. */
static struct vmbus_client_channel *next_to_unload(struct vmbus_client *c)
{
	for (struct vmbus_client_channel *ch = c->chan_head; ch; ch = ch->all_next)
		if (!ch->primary)
			return ch;
	return c->chan_head;
}

/* vmbus_initiate_unload(): UNLOAD, and its answer awaited; pre-3.0 hosts
 * do not support reconnect, so they are not asked. */
static int send_unload(struct vmbus_client *c)
{
	return c->version < VMBUS_VERSION_WIN8_1
		       ? 0
		       : ask_and_wait(c, VMBUS_MSG_UNLOAD, VMBUS_MSG_UNLOAD_RESPONSE);
}

int vmbus_client_unload(struct vmbus_client *c)
{
	struct vmbus_client_channel *gone = NULL;
	int err = 0;

	if (!c)
		return -EINVAL;
	own_work(c, true);
	lock(c);
	if (c->state == CONN_DISCONNECTED) {
		unlock(c);
		release_work(c);
		return 0;
	}
	c->state = CONN_UNLOADING;
	/* vmbus_free_channels(): every channel counts as rescinded, so a
	 * close sends CLOSECHANNEL but no GPADL_TEARDOWN, and waiters wake. */
	for (struct vmbus_client_channel *ch = c->chan_head; ch; ch = ch->all_next) {
		__atomic_store_n(&ch->rescinded, true, __ATOMIC_RELEASE);
		ch->cb_enabled = false;
		unqueue_work(c, ch);
	}
	for (uint32_t i = 0; i < MAX_WAITERS; i++) {
		struct waiter *w = &c->waiters[i];
		if (w->in_use && w->ch && !w->done) {
			w->rescinded = true;
			c->port->event_set(c->port->ctx, w->ev);
		}
	}
	memset(c->release_owed, 0, sizeof(c->release_owed));
	unlock(c);

	/* Each device: its driver, then its channels, then its relids. */
	for (;;) {
		lock(c);
		struct vmbus_client_channel *ch = next_to_unload(c);
		unlock(c);
		if (!ch)
			break;
		op_begin(ch, true);
		op_end(ch);
		device_remove(c, ch);
		op_begin(ch, true);
		for (;;) {
			lock(c);
			struct vmbus_client_channel *s = open_sub(ch);
			if (s)
				s->busy = true;
			unlock(c);
			if (!s)
				break;
			close_one(s, CLOSE_UNLOAD);
			op_end(s);
		}
		close_one(ch, CLOSE_UNLOAD);
		op_end(ch);
		lock(c);
		while (ch->busy || ch->cb_running) {
			unlock(c);
			idle_wait(c);
			lock(c);
		}
		uint32_t relid = ch->relid;
		unmap_channel(c, ch);
		ch->free_next = gone;
		gone = ch;
		unlock(c);
		release_relid(c, relid);
	}

	err = send_unload(c);

	/* The host has let go of every GPADL once it answered UNLOAD. */
	while (gone) {
		struct vmbus_client_channel *ch = gone;
		gone = ch->free_next;
		rings_release(ch, err == 0);
		lock(c);
		channel_free(c, ch);
		unlock(c);
	}
	lock(c);
	c->work_head = c->work_tail = NULL;
	c->allocated_vps = 0;
	c->msg_conn_id = VMBUS_MESSAGE_CONNECTION_ID;
	__atomic_store_n(&c->version, 0, __ATOMIC_RELEASE);
	c->stats.version = 0;
	c->state = CONN_DISCONNECTED;
	unlock(c);
	release_work(c);
	return err;
}

/* ------------------------------------------------------------------ */
/* Hibernation: vmbus_drv.c vmbus_bus_suspend(), vmbus_bus_resume(),   */
/* the drivers' suspend and resume callbacks (hibernation.rst)         */
/* ------------------------------------------------------------------ */

/* Under the lock: the next primary this pass has not visited. */
static struct vmbus_client_channel *next_unseen_primary(struct vmbus_client *c)
{
	for (struct vmbus_client_channel *ch = c->chan_head; ch; ch = ch->all_next)
		if (!ch->primary && !ch->sub_index && !ch->seen && !is_rescinded(ch))
			return ch;
	return NULL;
}

static void clear_seen(struct vmbus_client *c)
{
	lock(c);
	for (struct vmbus_client_channel *ch = c->chan_head; ch; ch = ch->all_next)
		ch->seen = false;
	unlock(c);
}

/* One device at suspend: its driver's suspend closes its channels and
 * keeps its state; a driver without one is removed (probed afresh at
 * resume). Either way nothing of it stays open. */
static void suspend_device(struct vmbus_client *c, struct vmbus_client_channel *ch)
{
	lock(c);
	bool bound = ch->announced && ch->drv >= 0;
	struct vmbus_driver d = bound ? c->drivers[ch->drv] : (struct vmbus_driver){0};
	unlock(c);
	bool kept = bound && d.suspend && d.suspend(d.ctx, ch) == 0;
	if (bound && !kept) {
		device_remove(c, ch);
		lock(c);
		ch->drv = -1;
		unlock(c);
	}
	op_begin(ch, true);
	close_with_subs(ch);
	op_end(ch);
	lock(c);
	ch->suspended = kept;
	unlock(c);
}

/* Under the lock: a sub-channel (or a rescinded channel) is still there. */
static bool vestiges_left(const struct vmbus_client *c)
{
	for (const struct vmbus_client_channel *ch = c->chan_head; ch; ch = ch->all_next)
		if (ch->sub_index || ch->primary || is_rescinded(ch))
			return true;
	return false;
}

/* The host rescinds each closed primary's sub-channels (and KVP, once
 * closed, itself): their removals run until none is left, as
 * vmbus_bus_suspend waits for ready_for_suspend_event. */
static int wait_vestiges_gone(struct vmbus_client *c)
{
	uint64_t deadline = now_ns(c) + c->cfg.timeout_ns;
	for (;;) {
		run_work(c, true);
		lock(c);
		bool left = vestiges_left(c);
		unlock(c);
		if (!left)
			return 0;
		uint64_t now = now_ns(c);
		if (now >= deadline)
			return -ETIMEDOUT;
		c->port->event_wait(c->port->ctx, c->work_ev, deadline - now);
	}
}

/* Every channel forgets its relid: a suspended primary waits for its
 * re-offer, anything else goes (the UNLOAD releases all relids). */
static void forget_relids(struct vmbus_client *c)
{
	for (;;) {
		lock(c);
		struct vmbus_client_channel *ch = c->chan_head;
		while (ch && ch->awaiting)
			ch = ch->all_next;
		if (ch && ch->suspended) {
			c->relids[ch->relid] = NULL;
			ch->relid = 0;
			ch->awaiting = true;
			c->awaiting++;
			unqueue_work(c, ch);
			unlock(c);
			continue;
		}
		if (ch)
			unmap_channel(c, ch);
		unlock(c);
		if (!ch)
			return;
		rings_release(ch, true);
		lock(c);
		channel_free(c, ch);
		unlock(c);
	}
}

int vmbus_client_suspend(struct vmbus_client *c)
{
	if (!c)
		return -EINVAL;
	own_work(c, true);
	lock(c);
	bool connected = c->state == CONN_CONNECTED;
	unlock(c);
	if (!connected) {
		release_work(c);
		return -ENOTCONN;
	}
	run_work(c, false); /* offers and rescinds that came before */
	clear_seen(c);
	for (;;) {
		lock(c);
		struct vmbus_client_channel *ch = next_unseen_primary(c);
		if (ch)
			ch->seen = true;
		unlock(c);
		if (!ch)
			break;
		suspend_device(c, ch);
	}
	int err = wait_vestiges_gone(c);
	lock(c);
	c->state = CONN_UNLOADING; /* offers from here on are dropped */
	memset(c->release_owed, 0, sizeof(c->release_owed));
	unlock(c);
	forget_relids(c);
	int unload_err = send_unload(c);
	lock(c);
	c->work_head = c->work_tail = NULL;
	c->resume_version = c->version;
	c->msg_conn_id = VMBUS_MESSAGE_CONNECTION_ID;
	__atomic_store_n(&c->version, 0, __ATOMIC_RELEASE);
	c->stats.version = 0;
	c->state = CONN_SUSPENDED;
	unlock(c);
	release_work(c);
	return err ? err : unload_err;
}

/* Waits (up to resume_wait_ns) for the suspended primaries' re-offers,
 * as vmbus_bus_resume waits for ready_for_resume_event: 0, or how many
 * never came. */
static uint32_t wait_reoffers(struct vmbus_client *c)
{
	uint64_t deadline = now_ns(c) + c->cfg.resume_wait_ns;
	for (;;) {
		lock(c);
		uint32_t left = c->awaiting;
		unlock(c);
		uint64_t now = now_ns(c);
		if (!left || now >= deadline)
			return left;
		c->port->event_wait(c->port->ctx, c->work_ev, deadline - now);
	}
}

/* A suspended device the host did not offer again is gone: its driver
 * is told, as for a rescind, and its channel freed. */
static void drop_missing(struct vmbus_client *c)
{
	for (;;) {
		lock(c);
		struct vmbus_client_channel *ch = c->chan_head;
		while (ch && !ch->awaiting)
			ch = ch->all_next;
		if (ch) {
			ch->awaiting = false;
			ch->suspended = false;
			c->awaiting--;
			c->stats.missing_after_resume++;
		}
		unlock(c);
		if (!ch)
			return;
		client_log(c, "vmbus: a device was not offered again after the resume\n");
		device_remove(c, ch);
		lock(c);
		unmap_channel(c, ch);
		channel_free(c, ch);
		unlock(c);
	}
}

/* Each re-offered device: its driver's resume reopens it (and asks for
 * sub-channels again, which come as new offers). */
static void resume_devices(struct vmbus_client *c)
{
	clear_seen(c);
	for (;;) {
		lock(c);
		struct vmbus_client_channel *ch = c->chan_head;
		while (ch && (ch->seen || !ch->suspended))
			ch = ch->all_next;
		struct vmbus_driver d = {0};
		if (ch) {
			ch->seen = true;
			ch->suspended = false;
			d = c->drivers[ch->drv];
		}
		unlock(c);
		if (!ch)
			return;
		int err = d.resume ? d.resume(d.ctx, ch) : -EOPNOTSUPP;
		if (err) {
			client_log(c, "vmbus: relid %u: %s resume failed (%d)\n", ch->relid,
				   d.name ? d.name : "driver", err);
			device_remove(c, ch);
			unbind(c, ch);
		}
	}
}

int vmbus_client_resume(struct vmbus_client *c)
{
	if (!c)
		return -EINVAL;
	own_work(c, true);
	lock(c);
	bool suspended = c->state == CONN_SUSPENDED;
	if (suspended) {
		c->state = CONN_CONTACTING;
		c->msg_conn_id = VMBUS_MESSAGE_CONNECTION_ID;
	}
	uint32_t version = c->resume_version;
	unlock(c);
	if (!suspended) {
		release_work(c);
		return -EINVAL;
	}
	refill_reserve(c);
	/* The version the suspended drivers were set up for, as Linux asks
	 * for vmbus_proto_version again. */
	int err = negotiate(c, version);
	if (err) {
		set_state(c, CONN_SUSPENDED);
		release_work(c);
		return err;
	}
	lock(c);
	__atomic_store_n(&c->version, version, __ATOMIC_RELEASE);
	c->stats.version = version;
	c->state = CONN_REQUESTING;
	unlock(c);
	err = request_offers(c);
	set_state(c, CONN_CONNECTED);
	if (!err && wait_reoffers(c))
		drop_missing(c);
	resume_devices(c);
	run_work(c, false);
	release_work(c);
	return err;
}

void vmbus_client_free(struct vmbus_client *c)
{
	if (!c)
		return;
	vmbus_client_unload(c);
	hv_guest_set_callbacks(c->g, c->old_on_message, c->old_on_events, c->old_on_timer,
			       c->old_arg);
	client_release(c);
}

/* ------------------------------------------------------------------ */
/* Introspection                                                       */
/* ------------------------------------------------------------------ */

/* Under the lock. */
static void fill_info(const struct vmbus_client_channel *ch, struct vmbus_client_channel_info *out)
{
	const struct vmbus_client *c = ch->c;

	memset(out, 0, sizeof(*out));
	out->class_id = ch->offer.offer.if_type;
	out->instance_id = ch->offer.offer.if_instance;
	out->sub_channel_index = ch->sub_index;
	out->relid = ch->relid;
	out->connection_id = ch->offer.connection_id;
	out->target_vp = ch->target_vp;
	out->state = ch->state;
	out->driver = ch->drv >= 0 ? c->drivers[ch->drv].name : NULL;
	out->packets_sent = __atomic_load_n(&ch->packets_sent, __ATOMIC_RELAXED);
	out->packets_received = __atomic_load_n(&ch->packets_received, __ATOMIC_RELAXED);
}

void vmbus_client_channel_info(const struct vmbus_client_channel *ch,
			       struct vmbus_client_channel_info *out)
{
	if (!ch || !out)
		return;
	lock(ch->c);
	fill_info(ch, out);
	unlock(ch->c);
}

void vmbus_client_for_each_channel(struct vmbus_client *c,
				   void (*fn)(void *arg, const struct vmbus_client_channel_info *),
				   void *arg)
{
	struct vmbus_client_channel_info info;

	if (!c || !fn)
		return;
	lock(c);
	for (const struct vmbus_client_channel *ch = c->chan_head; ch; ch = ch->all_next) {
		fill_info(ch, &info);
		fn(arg, &info);
	}
	unlock(c);
}

/* Driver buffers (netvsc's receive and send buffers): the same GPADL
 * messages as the rings, for pages from the port's alloc_pages. */
int vmbus_client_gpadl_create(struct vmbus_client_channel *ch, const void *pages, uint32_t count,
			      uint32_t *handle)
{
	if (!ch || !pages || !count || !handle)
		return -EINVAL;
	return establish_gpadl(ch, pages, count, handle);
}

int vmbus_client_gpadl_teardown(struct vmbus_client_channel *ch, uint32_t handle)
{
	return ch ? teardown_gpadl(ch, handle) : -EINVAL;
}

const struct hv_port *vmbus_client_port(const struct vmbus_client *c)
{
	return c->port;
}

struct vmbus_client *vmbus_client_channel_client(const struct vmbus_client_channel *ch)
{
	return ch ? ch->c : NULL;
}

void vmbus_client_channel_set_data(struct vmbus_client_channel *ch, void *data)
{
	if (ch)
		ch->data = data;
}

void *vmbus_client_channel_data(const struct vmbus_client_channel *ch)
{
	return ch ? ch->data : NULL;
}

void vmbus_client_get_stats(struct vmbus_client *c, struct vmbus_client_stats *out)
{
	if (!c || !out)
		return;
	lock(c);
	*out = c->stats;
	out->signals_sent = __atomic_load_n(&c->stats.signals_sent, __ATOMIC_RELAXED);
	out->interrupts = __atomic_load_n(&c->stats.interrupts, __ATOMIC_RELAXED);
	unlock(c);
}
