/* SPDX-License-Identifier: MIT */
/*
 * The VMBus server: connection and version negotiation, offers and relids,
 * and the dispatch of every control message the guest posts. GPADLs are in
 * gpadl.c, open channels in channel.c; docs/vmbus-server.md describes the
 * state machine and cites the Linux 6.1 file behind each rule.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvkit/vmbus_classes.h"
#include "vmbus_internal.h"

/* ------------------------------------------------------------------ */
/* Logging, bad messages, posting                                      */
/* ------------------------------------------------------------------ */

__attribute__((format(printf, 2, 0)))
static void vlog(struct vmbus_server *s, const char *fmt, va_list ap)
{
	if (s->ops.log)
		s->ops.log(s->ctx, fmt, ap);
}

void vmbus_log(struct vmbus_server *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(s, fmt, ap);
	va_end(ap);
}

void vmbus_bad(struct vmbus_server *s, enum vmbus_bad kind, const char *fmt, ...)
{
	s->bad_messages++;
	if (s->logged & (1ull << kind))
		return;
	s->logged |= 1ull << kind;
	va_list ap;
	va_start(ap, fmt);
	vlog(s, fmt, ap);
	va_end(ap);
}

static void post_to(struct vmbus_server *s, uint32_t vp, uint32_t sint, const void *msg,
		    uint32_t len)
{
	int err = s->ops.post(s->ctx, vp, sint, msg, len);
	if (err && !s->post_failure_logged) {
		s->post_failure_logged = true;
		vmbus_log(s, "vmbus: posting a message to vp %u sint %u failed (%d)", vp, sint,
			  err);
	}
}

void vmbus_post(struct vmbus_server *s, const void *msg, uint32_t len)
{
	post_to(s, s->msg_vp, s->msg_sint, msg, len);
}

static struct vmbus_msg_header header(enum vmbus_msg_type type)
{
	return (struct vmbus_msg_header){.msgtype = type};
}

/* ------------------------------------------------------------------ */
/* Offers and relids                                                   */
/* ------------------------------------------------------------------ */

struct vmbus_offer_rec *vmbus_offer_by_relid(struct vmbus_server *s, uint32_t relid)
{
	if (relid < VMBUS_RELID_MIN || relid > VMBUS_RELID_MAX)
		return NULL;
	return s->relids[relid];
}

struct vmbus_offer_rec *vmbus_offer_new(struct vmbus_server *s, struct vmbus_device *d,
					uint16_t sub_index)
{
	struct vmbus_offer_rec *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->dev = d;
	o->class_id = d->desc.class_id;
	o->instance_id = d->desc.instance_id;
	o->sub_index = sub_index;
	o->state = VMBUS_CHANNEL_UNOFFERED;
	vmbus_list_add_tail(&s->offers, &o->link);
	vmbus_list_add_tail(&d->offers, &o->dev_link);
	s->offer_count++;
	return o;
}

static void relid_assign(struct vmbus_server *s, struct vmbus_offer_rec *o, uint32_t relid)
{
	o->relid = relid;
	o->state = VMBUS_CHANNEL_OFFERED;
	o->target_vp = 0;
	s->relids[relid] = o;
}

static void relid_free(struct vmbus_server *s, struct vmbus_offer_rec *o)
{
	if (o->relid)
		s->relids[o->relid] = NULL;
	o->relid = 0;
}

/* The KVP anomaly's second half: a fresh primary for the device whose
 * close rescinded it, now that the old relid is free (offered at once if
 * the guest listens, else at its next REQUESTOFFERS). Drops the
 * reference the rescind took. */
static void reoffer(struct vmbus_server *s, struct vmbus_device *d)
{
	if (!d->removed) {
		struct vmbus_offer_rec *fresh = vmbus_offer_new(s, d, 0);
		if (fresh)
			vmbus_offer_now(s, fresh);
		else
			vmbus_log(s, "vmbus: out of memory re-offering %s", d->name);
	}
	vmbus_device_put(d);
}

/* Frees an offer that is not open, with its relid and GPADLs. */
void vmbus_offer_free(struct vmbus_server *s, struct vmbus_offer_rec *o)
{
	struct vmbus_device *again = o->reoffer;
	gpadl_free_owned(s, o);
	relid_free(s, o);
	vmbus_list_del(&o->link);
	vmbus_list_del(&o->dev_link);
	s->offer_count--;
	free(o);
	if (again)
		reoffer(s, again);
}

static void send_offer(struct vmbus_server *s, const struct vmbus_offer_rec *o)
{
	const struct vmbus_device_desc *desc = &o->dev->desc;
	struct vmbus_msg_offer_channel m = {
		.header = header(VMBUS_MSG_OFFERCHANNEL),
		.offer = {
			.if_type = o->class_id,
			.if_instance = o->instance_id,
			.chn_flags = desc->flags,
			.mmio_megabytes = desc->mmio_megabytes,
			.sub_channel_index = o->sub_index,
		},
		.child_relid = o->relid,
		/* Monitor pages are off: no monitor id, no dedicated interrupt. */
		.monitor_id = 0,
		.monitor_flags = 0,
		.interrupt_flags = 0,
		.connection_id = VMBUS_SERVER_CHANNEL_CONNECTION_BASE + o->relid,
	};
	memcpy(m.offer.u.user_def, desc->user_def, sizeof(m.offer.u.user_def));
	vmbus_post(s, &m, sizeof(m));
}

static void send_rescind(struct vmbus_server *s, uint32_t relid)
{
	struct vmbus_msg_rescind_offer m = {
		.header = header(VMBUS_MSG_RESCIND_CHANNELOFFER),
		.child_relid = relid,
	};
	vmbus_post(s, &m, sizeof(m));
}

static bool offers_live(const struct vmbus_server *s)
{
	return s->conn == VMBUS_SERVER_CONNECTED && s->offers_requested;
}

/* A channel added while the guest listens: the lowest free relid, offered
 * at once. The offer count limit guarantees a free relid exists. */
void vmbus_offer_now(struct vmbus_server *s, struct vmbus_offer_rec *o)
{
	if (!offers_live(s))
		return;
	for (uint32_t r = VMBUS_RELID_MIN; r <= VMBUS_RELID_MAX; r++) {
		if (!s->relids[r]) {
			relid_assign(s, o, r);
			send_offer(s, o);
			return;
		}
	}
}

static int offer_order(const void *a, const void *b)
{
	const struct vmbus_offer_rec *x = *(struct vmbus_offer_rec *const *)a;
	const struct vmbus_offer_rec *y = *(struct vmbus_offer_rec *const *)b;
	int c = hv_guid_compare(&x->class_id, &y->class_id);
	if (!c)
		c = hv_guid_compare(&x->instance_id, &y->instance_id);
	if (!c)
		c = (int)x->sub_index - (int)y->sub_index;
	return c;
}

static int relid_order(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/*
 * Picks n free relids in ascending order: the lowest ones, or with
 * scramble_relids the first n of a permutation of 1..2047 drawn from the
 * seed and the connection count. Sorting the picked set keeps relid order
 * equal to offer order, so primaries still precede their sub-channels
 * (channel_mgmt.c vmbus_process_offer takes the first offer of an instance
 * as the primary).
 */
static uint32_t pick_relids(struct vmbus_server *s, uint16_t *out, uint32_t n)
{
	uint32_t got = 0;

	if (!s->cfg.scramble_relids) {
		for (uint32_t r = VMBUS_RELID_MIN; r <= VMBUS_RELID_MAX && got < n; r++)
			if (!s->relids[r])
				out[got++] = (uint16_t)r;
		return got;
	}
	uint16_t perm[VMBUS_RELID_MAX];
	uint64_t state = s->cfg.scramble_seed ^ ((uint64_t)s->connects * 0xD6E8FEB86659FD93ull);
	for (uint32_t i = 0; i < VMBUS_RELID_MAX; i++)
		perm[i] = (uint16_t)(i + 1);
	for (uint32_t i = VMBUS_RELID_MAX - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(splitmix64(&state) % (i + 1));
		uint16_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (uint32_t i = 0; i < VMBUS_RELID_MAX && got < n; i++)
		if (!s->relids[perm[i]])
			out[got++] = perm[i];
	if (got)
		qsort(out, got, sizeof(*out), relid_order);
	return got;
}

/* REQUESTOFFERS: every channel the guest has not been offered, sorted by
 * (class, instance, sub-channel index), relids 1, 2, 3... (channel_mgmt.c
 * vmbus_request_offers waits for ALLOFFERS_DELIVERED). */
static void offer_all(struct vmbus_server *s)
{
	struct vmbus_offer_rec **list = NULL;
	uint16_t *relids = NULL;
	uint32_t n = 0;

	if (s->offer_count) {
		list = malloc(sizeof(*list) * s->offer_count);
		relids = malloc(sizeof(*relids) * s->offer_count);
	}
	if (s->offer_count && (!list || !relids)) {
		vmbus_log(s, "vmbus: out of memory offering channels");
	} else {
		for (struct vmbus_list *l = s->offers.next; l != &s->offers; l = l->next) {
			struct vmbus_offer_rec *o = container_of(l, struct vmbus_offer_rec, link);
			if (o->state == VMBUS_CHANNEL_UNOFFERED && o->dev)
				list[n++] = o;
		}
		if (n) {
			qsort(list, n, sizeof(*list), offer_order);
			n = pick_relids(s, relids, n);
		}
		for (uint32_t i = 0; i < n; i++) {
			relid_assign(s, list[i], relids[i]);
			send_offer(s, list[i]);
		}
	}
	free(list);
	free(relids);
	struct vmbus_msg_header done = header(VMBUS_MSG_ALLOFFERS_DELIVERED);
	vmbus_post(s, &done, sizeof(done));
}

/* The guest can no longer use o: closed if open, RESCIND sent, the relid
 * kept until RELID_RELEASED (channel_mgmt.c vmbus_onoffer_rescind, then
 * hv_process_channel_removal -> vmbus_release_relid). An offer the guest
 * never saw is simply freed. */
static void rescind(struct vmbus_server *s, struct vmbus_offer_rec *o)
{
	if (o->state == VMBUS_CHANNEL_OPEN)
		vmbus_channel_close(s, o);
	if (o->state == VMBUS_CHANNEL_UNOFFERED || s->conn != VMBUS_SERVER_CONNECTED) {
		vmbus_offer_free(s, o);
		return;
	}
	o->state = VMBUS_CHANNEL_RESCINDED;
	o->dev = NULL;
	vmbus_list_del(&o->dev_link);
	send_rescind(s, o->relid);
}

/* ------------------------------------------------------------------ */
/* Connection                                                          */
/* ------------------------------------------------------------------ */

/* Everything the guest set up goes: channels closed, GPADLs dropped (no
 * answers owed any more), rescinded relids forgotten, every channel back
 * to unoffered. */
void vmbus_connection_reset(struct vmbus_server *s)
{
	s->conn = VMBUS_SERVER_DISCONNECTED;
	for (struct vmbus_list *l = s->offers.next, *next; l != &s->offers; l = next) {
		next = l->next;
		struct vmbus_offer_rec *o = container_of(l, struct vmbus_offer_rec, link);
		if (o->state == VMBUS_CHANNEL_OPEN)
			vmbus_channel_close(s, o);
	}
	gpadl_free_owned(s, NULL);
	for (struct vmbus_list *l = s->offers.next, *next; l != &s->offers; l = next) {
		next = l->next;
		struct vmbus_offer_rec *o = container_of(l, struct vmbus_offer_rec, link);
		if (!o->dev) {
			vmbus_offer_free(s, o);
			continue;
		}
		relid_free(s, o);
		o->state = VMBUS_CHANNEL_UNOFFERED;
	}
	s->version = 0;
	s->offers_requested = false;
}

bool vmbus_version_known(uint32_t v)
{
	/* The versions Linux 6.1 tries (connection.c vmbus_versions[]). */
	static const uint32_t known[] = {
		VMBUS_VERSION_WIN10_V5_3, VMBUS_VERSION_WIN10_V5_2, VMBUS_VERSION_WIN10_V5_1,
		VMBUS_VERSION_WIN10_V5,   VMBUS_VERSION_WIN10_V4_1, VMBUS_VERSION_WIN10,
		VMBUS_VERSION_WIN8_1,     VMBUS_VERSION_WIN8,
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i] == v)
			return true;
	return false;
}

static void send_version_response(struct vmbus_server *s, uint32_t vp, uint32_t sint,
				  bool supported)
{
	struct vmbus_msg_version_response m = {
		.header = header(VMBUS_MSG_VERSION_RESPONSE),
		.version_supported = supported,
		.connection_state = 0,
		/* From 5.0 the guest posts everything after INITIATE_CONTACT
		 * here (connection.c vmbus_negotiate_version). */
		.msg_conn_id = VMBUS_MESSAGE_CONNECTION_ID,
	};
	post_to(s, vp, sint, &m, sizeof(m));
}

static uint16_t handle_initiate_contact(struct vmbus_server *s, uint32_t conn_id,
					const uint8_t *msg)
{
	struct vmbus_msg_initiate_contact m;
	memcpy(&m, msg, sizeof(m));
	uint32_t v = m.version_requested;
	bool v5 = v >= VMBUS_VERSION_WIN10_V5;
	/* From 5.0 the guest names its message SINT (Linux: 2); before, the
	 * field is the interrupt page and messages go to SINT 2. */
	uint32_t sint = v5 ? m.msg_sint : VMBUS_MESSAGE_SINT;

	if (m.target_vcpu >= s->cfg.vp_count) {
		/* Nowhere to answer: fail the post itself, so the guest
		 * does not wait (connection.c vmbus_post_msg returns). */
		vmbus_bad(s, BAD_CONTACT, "vmbus: INITIATE_CONTACT names VP %u of %u",
			  m.target_vcpu, s->cfg.vp_count);
		return HV_STATUS_INVALID_PARAMETER;
	}
	if (sint >= HV_SYNIC_SINT_COUNT) {
		vmbus_bad(s, BAD_CONTACT, "vmbus: INITIATE_CONTACT names SINT %u", sint);
		return HV_STATUS_INVALID_PARAMETER;
	}
	if (sint != VMBUS_MESSAGE_SINT ||
	    conn_id != (v5 ? VMBUS_MESSAGE_CONNECTION_ID_4 : VMBUS_MESSAGE_CONNECTION_ID)) {
		vmbus_bad(s, BAD_CONTACT,
			  "vmbus: INITIATE_CONTACT %#x on connection %u for SINT %u refused", v,
			  conn_id, sint);
		send_version_response(s, m.target_vcpu, sint, false);
		return HV_STATUS_SUCCESS;
	}

	/* A new contact starts over (a guest that restarted its VMBus
	 * driver without UNLOAD); whatever it had set up is gone. */
	if (s->conn == VMBUS_SERVER_CONNECTED)
		vmbus_connection_reset(s);

	uint32_t max = s->cfg.max_version;
	if (!vmbus_version_known(v) || v > max) {
		/* The guest tries its next older version (connection.c
		 * vmbus_connect). Not a bad message. */
		send_version_response(s, m.target_vcpu, sint, false);
		return HV_STATUS_SUCCESS;
	}
	s->conn = VMBUS_SERVER_CONNECTED;
	s->version = v;
	if (s->cfg.log_milestones)
		vmbus_log(s, "vmbus: the guest connected at version %u.%u", VMBUS_VERSION_MAJOR(v),
			  VMBUS_VERSION_MINOR(v));
	s->msg_vp = m.target_vcpu;
	s->msg_sint = sint;
	s->offers_requested = false;
	s->connects++;
	send_version_response(s, m.target_vcpu, sint, true);
	return HV_STATUS_SUCCESS;
}

/* UNLOAD: answered in any state, so a guest that unloads twice (or after a
 * failed contact) never waits (channel_mgmt.c vmbus_initiate_unload). */
static void handle_unload(struct vmbus_server *s)
{
	vmbus_connection_reset(s);
	s->unloads++;
	struct vmbus_msg_header m = header(VMBUS_MSG_UNLOAD_RESPONSE);
	vmbus_post(s, &m, sizeof(m));
}

static void handle_request_offers(struct vmbus_server *s)
{
	if (s->offers_requested) {
		vmbus_bad(s, BAD_REPEATED, "vmbus: REQUESTOFFERS again on one connection");
		return;
	}
	s->offers_requested = true;
	offer_all(s);
}

/* ------------------------------------------------------------------ */
/* Channel messages                                                    */
/* ------------------------------------------------------------------ */

static void send_open_result(struct vmbus_server *s, uint32_t relid, uint32_t open_id,
			     uint32_t status)
{
	struct vmbus_msg_open_result m = {
		.header = header(VMBUS_MSG_OPENCHANNEL_RESULT),
		.child_relid = relid,
		.open_id = open_id,
		.status = status,
	};
	vmbus_post(s, &m, sizeof(m));
}

static void log_open(struct vmbus_server *s, const struct vmbus_offer_rec *o, uint32_t vp)
{
	const struct vmbus_class_info *cls = vmbus_class_find(&o->class_id);
	const char *name = cls ? cls->name : "unknown class";
	if (o->sub_index)
		vmbus_log(s, "vmbus: relid %u (%s, sub-channel %u) opened, interrupts on VP %u",
			  o->relid, name, o->sub_index, vp);
	else
		vmbus_log(s, "vmbus: relid %u (%s) opened, interrupts on VP %u", o->relid, name,
			  vp);
}

static void handle_open(struct vmbus_server *s, const uint8_t *msg)
{
	struct vmbus_msg_open_channel m;
	memcpy(&m, msg, sizeof(m));
	struct vmbus_offer_rec *o = vmbus_offer_by_relid(s, m.child_relid);

	if (!o) {
		vmbus_bad(s, BAD_RELID, "vmbus: OPENCHANNEL for unknown relid %u", m.child_relid);
		return;
	}
	/* A rescind crossed the open: the host ignores it and the guest's
	 * rescind handling wakes the opener (vmbus_drv.c comment in
	 * vmbus_on_msg_dpc). A normal race, not a bad message. */
	if (o->state == VMBUS_CHANNEL_RESCINDED)
		return;

	const char *why = NULL;
	struct gpadl *g = gpadl_find(s, m.ring_gpadl);
	uint32_t off = m.downstream_ring_page_offset;
	if (o->state != VMBUS_CHANNEL_OFFERED)
		why = "channel already open";
	else if (!g || g->state != GPADL_READY || g->owner != o)
		why = "ring GPADL not created for this channel";
	else if (g->in_use || g->teardown_pending)
		why = "ring GPADL busy or being torn down";
	else if (off < 2 || off > g->pfn_count || g->pfn_count - off < 2)
		why = "bad downstream ring offset";
	else if (m.target_vp >= s->cfg.vp_count)
		why = "bad target VP";
	if (why) {
		vmbus_bad(s, BAD_OPEN, "vmbus: OPENCHANNEL relid %u refused: %s", m.child_relid,
			  why);
		send_open_result(s, m.child_relid, m.open_id, VMBUS_STATUS_UNSUCCESSFUL);
		return;
	}
	int err = vmbus_channel_open(s, o, g, off, m.target_vp, m.user_data, NULL, 0);
	if (!err && s->cfg.log_milestones)
		log_open(s, o, m.target_vp);
	send_open_result(s, m.child_relid, m.open_id,
			 err ? VMBUS_STATUS_UNSUCCESSFUL : VMBUS_STATUS_SUCCESS);
}

static void rescind_offers(struct vmbus_server *s, struct vmbus_device *d, bool with_primary);

static void handle_close(struct vmbus_server *s, const uint8_t *msg)
{
	struct vmbus_msg_close_channel m;
	memcpy(&m, msg, sizeof(m));
	struct vmbus_offer_rec *o = vmbus_offer_by_relid(s, m.child_relid);

	if (!o) {
		vmbus_bad(s, BAD_RELID, "vmbus: CLOSECHANNEL for unknown relid %u", m.child_relid);
		return;
	}
	/* Linux closes a rescinded channel too (channel.c
	 * vmbus_close_internal does not look at ->rescind); we closed it
	 * already. */
	if (o->state == VMBUS_CHANNEL_RESCINDED)
		return;
	if (o->state != VMBUS_CHANNEL_OPEN) {
		vmbus_bad(s, BAD_RELID, "vmbus: CLOSECHANNEL for relid %u, not open", m.child_relid);
		return;
	}
	vmbus_channel_close(s, o);
	struct vmbus_device *d = o->dev;
	if (o->sub_index)
		return;
	/* The KVP anomaly (Documentation/virt/hyperv/hibernation.rst):
	 * closing the primary rescinds the device, which is offered again
	 * once the guest has released the old relid. Not sooner: Linux
	 * matches a primary offer to any channel it still has with that
	 * instance GUID (find_primary_channel_by_offer) and takes it for a
	 * resume, which fails its next suspend. */
	if (d->desc.rescind_on_close) {
		vmbus_device_get(d);
		o->reoffer = d;
		rescind_offers(s, d, true);
		return;
	}
	/* Sub-channels live only while their primary is open, as on
	 * Hyper-V: they are rescinded with its close, and a driver that
	 * opens the primary again asks for new ones. Linux's bus suspend
	 * (vmbus_bus_suspend) waits for exactly these rescinds. */
	rescind_offers(s, d, false);
}

static void handle_relid_released(struct vmbus_server *s, const uint8_t *msg)
{
	struct vmbus_msg_relid_released m;
	memcpy(&m, msg, sizeof(m));
	struct vmbus_offer_rec *o = vmbus_offer_by_relid(s, m.child_relid);

	if (!o) {
		vmbus_bad(s, BAD_RELID, "vmbus: RELID_RELEASED for unknown relid %u",
			  m.child_relid);
		return;
	}
	if (o->state == VMBUS_CHANNEL_RESCINDED) {
		vmbus_offer_free(s, o);
		return;
	}
	if (o->state == VMBUS_CHANNEL_OFFERED) {
		/* The guest gave up an offer it could not take
		 * (channel_mgmt.c vmbus_onoffer, allocation failure): it is
		 * offered again at the next connection. */
		gpadl_free_owned(s, o);
		relid_free(s, o);
		o->state = VMBUS_CHANNEL_UNOFFERED;
		return;
	}
	vmbus_bad(s, BAD_RELID, "vmbus: RELID_RELEASED for relid %u, still open", m.child_relid);
}

static void send_modify_response(struct vmbus_server *s, uint32_t relid, uint32_t status)
{
	struct vmbus_msg_modify_channel_response m = {
		.header = header(VMBUS_MSG_MODIFYCHANNEL_RESPONSE),
		.child_relid = relid,
		.status = status,
	};
	vmbus_post(s, &m, sizeof(m));
}

/* MODIFYCHANNEL (4.1 and later): from 5.3 the guest waits for the answer
 * (channel.c vmbus_send_modifychannel). */
static void handle_modify(struct vmbus_server *s, const uint8_t *msg)
{
	struct vmbus_msg_modify_channel m;
	memcpy(&m, msg, sizeof(m));
	bool ack = s->version >= VMBUS_VERSION_WIN10_V5_3;

	if (s->version < VMBUS_VERSION_WIN10_V4_1) {
		vmbus_bad(s, BAD_VERSION, "vmbus: MODIFYCHANNEL at version %#x", s->version);
		return;
	}
	struct vmbus_offer_rec *o = vmbus_offer_by_relid(s, m.child_relid);
	if (!o) {
		vmbus_bad(s, BAD_RELID, "vmbus: MODIFYCHANNEL for unknown relid %u", m.child_relid);
		return;
	}
	uint32_t status = VMBUS_STATUS_SUCCESS;
	if (o->state == VMBUS_CHANNEL_RESCINDED) {
		status = VMBUS_STATUS_UNSUCCESSFUL; /* a race, not counted */
	} else if (o->state != VMBUS_CHANNEL_OPEN) {
		vmbus_bad(s, BAD_MODIFY, "vmbus: MODIFYCHANNEL for relid %u, not open",
			  m.child_relid);
		status = VMBUS_STATUS_UNSUCCESSFUL;
	} else if (m.target_vp >= s->cfg.vp_count) {
		vmbus_bad(s, BAD_MODIFY, "vmbus: MODIFYCHANNEL to VP %u of %u", m.target_vp,
			  s->cfg.vp_count);
		status = VMBUS_STATUS_INVALID_PARAMETER;
	} else {
		vmbus_channel_set_target(o, m.target_vp);
	}
	if (ack)
		send_modify_response(s, m.child_relid, status);
}

/* hv_sock connect() from the guest: no host service listens yet, so every
 * request is refused. Linux 6.1 ignores TL_CONNECT_RESULT (channel_mgmt.c
 * table entry without handler) and its connect() times out; Windows guests
 * read the status, and OpenVMM answers STATUS_CONNECTION_REFUSED for them. */
static void handle_tl_connect(struct vmbus_server *s, const uint8_t *msg)
{
	struct vmbus_msg_tl_connect_request m;
	memcpy(&m, msg, sizeof(m));
	if (s->version < VMBUS_VERSION_WIN10) {
		vmbus_bad(s, BAD_VERSION, "vmbus: TL_CONNECT_REQUEST at version %#x", s->version);
		return;
	}
	struct vmbus_msg_tl_connect_result r = {
		.header = header(VMBUS_MSG_TL_CONNECT_RESULT),
		.endpoint_id = m.guest_endpoint_id,
		.service_id = m.host_service_id,
		.status = (int32_t)VMBUS_STATUS_CONNECTION_REFUSED,
	};
	vmbus_post(s, &r, sizeof(r));
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

/* Minimum sizes of the guest-to-host messages (the exact sizes Linux
 * sends; longer messages are accepted and the tail ignored, as later
 * protocol versions grow some of them). 0: not a guest-to-host message. */
static const uint32_t min_size[VMBUS_MSG_COUNT] = {
	[VMBUS_MSG_REQUESTOFFERS] = sizeof(struct vmbus_msg_header),
	[VMBUS_MSG_OPENCHANNEL] = sizeof(struct vmbus_msg_open_channel),
	[VMBUS_MSG_CLOSECHANNEL] = sizeof(struct vmbus_msg_close_channel),
	[VMBUS_MSG_GPADL_HEADER] = sizeof(struct vmbus_msg_gpadl_header),
	[VMBUS_MSG_GPADL_BODY] = sizeof(struct vmbus_msg_gpadl_body),
	[VMBUS_MSG_GPADL_TEARDOWN] = sizeof(struct vmbus_msg_gpadl_teardown),
	[VMBUS_MSG_RELID_RELEASED] = sizeof(struct vmbus_msg_relid_released),
	[VMBUS_MSG_INITIATE_CONTACT] = sizeof(struct vmbus_msg_initiate_contact),
	[VMBUS_MSG_UNLOAD] = sizeof(struct vmbus_msg_header),
	[VMBUS_MSG_TL_CONNECT_REQUEST] = sizeof(struct vmbus_msg_tl_connect_request),
	[VMBUS_MSG_MODIFYCHANNEL] = sizeof(struct vmbus_msg_modify_channel),
};

uint16_t vmbus_server_handle_message(struct vmbus_server *s, uint32_t vp,
				     uint32_t connection_id, const void *msg, uint32_t len)
{
	(void)vp;
	/* A private copy: the guest may change its buffer meanwhile (the
	 * glue copies already; this keeps the server safe on its own). */
	_Alignas(8) uint8_t buf[VMBUS_MAX_MESSAGE_SIZE] = {0};

	if (connection_id != VMBUS_MESSAGE_CONNECTION_ID &&
	    connection_id != VMBUS_MESSAGE_CONNECTION_ID_4) {
		vmbus_bad(s, BAD_CONNECTION_ID, "vmbus: message on connection %u", connection_id);
		return HV_STATUS_INVALID_CONNECTION_ID;
	}
	if (!msg || len > VMBUS_MAX_MESSAGE_SIZE) {
		vmbus_bad(s, BAD_SIZE, "vmbus: message of %u bytes", len);
		return HV_STATUS_INVALID_PARAMETER;
	}
	memcpy(buf, msg, len);
	if (len < sizeof(struct vmbus_msg_header)) {
		vmbus_bad(s, BAD_SIZE, "vmbus: message of %u bytes", len);
		return HV_STATUS_SUCCESS;
	}
	uint32_t type;
	memcpy(&type, buf, sizeof(type));
	if (type >= VMBUS_MSG_COUNT || min_size[type] == 0) {
		vmbus_bad(s, BAD_TYPE, "vmbus: message type %u from the guest", type);
		return HV_STATUS_SUCCESS;
	}
	if (len < min_size[type]) {
		vmbus_bad(s, BAD_SIZE, "vmbus: message type %u of %u bytes, needs %u", type, len,
			  min_size[type]);
		return HV_STATUS_SUCCESS;
	}
	if (type == VMBUS_MSG_INITIATE_CONTACT)
		return handle_initiate_contact(s, connection_id, buf);
	/* Connection 4 exists for INITIATE_CONTACT only: everything after
	 * it goes to the msg_conn_id of VERSION_RESPONSE, 1. */
	if (connection_id != VMBUS_MESSAGE_CONNECTION_ID) {
		vmbus_bad(s, BAD_CONNECTION_ID, "vmbus: message type %u on connection %u", type,
			  connection_id);
		return HV_STATUS_INVALID_CONNECTION_ID;
	}
	if (type == VMBUS_MSG_UNLOAD) {
		handle_unload(s);
		return HV_STATUS_SUCCESS;
	}
	if (s->conn != VMBUS_SERVER_CONNECTED) {
		vmbus_bad(s, BAD_NOT_CONNECTED, "vmbus: message type %u before contact", type);
		return HV_STATUS_SUCCESS;
	}
	switch (type) {
	case VMBUS_MSG_REQUESTOFFERS:
		handle_request_offers(s);
		break;
	case VMBUS_MSG_OPENCHANNEL:
		handle_open(s, buf);
		break;
	case VMBUS_MSG_CLOSECHANNEL:
		handle_close(s, buf);
		break;
	case VMBUS_MSG_GPADL_HEADER:
		gpadl_handle_header(s, buf, len);
		break;
	case VMBUS_MSG_GPADL_BODY:
		gpadl_handle_body(s, buf, len);
		break;
	case VMBUS_MSG_GPADL_TEARDOWN:
		gpadl_handle_teardown(s, buf, len);
		break;
	case VMBUS_MSG_RELID_RELEASED:
		handle_relid_released(s, buf);
		break;
	case VMBUS_MSG_TL_CONNECT_REQUEST:
		handle_tl_connect(s, buf);
		break;
	case VMBUS_MSG_MODIFYCHANNEL:
		handle_modify(s, buf);
		break;
	default:
		break;
	}
	return HV_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Server and devices                                                  */
/* ------------------------------------------------------------------ */

struct vmbus_server *vmbus_server_new(const struct vmbus_server_config *cfg,
				      const struct guest_memory *mem,
				      const struct vmbus_server_ops *ops, void *ctx)
{
	if (!cfg || !mem || !ops || !ops->lock || !ops->unlock || !ops->post || !ops->signal ||
	    !ops->now_ns || cfg->vp_count == 0) {
		errno = EINVAL;
		return NULL;
	}
	struct vmbus_server *s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->cfg = *cfg;
	if (!s->cfg.max_version)
		s->cfg.max_version = VMBUS_VERSION_WIN10_V5_3;
	if (!s->cfg.gpadl_limit)
		s->cfg.gpadl_limit = VMBUS_SERVER_DEFAULT_GPADL_LIMIT;
	if (!s->cfg.spurious_signal_limit)
		s->cfg.spurious_signal_limit = VMBUS_SERVER_DEFAULT_SPURIOUS_LIMIT;
	s->mem = mem;
	s->ops = *ops;
	s->ctx = ctx;
	s->conn = VMBUS_SERVER_DISCONNECTED;
	s->msg_sint = VMBUS_MESSAGE_SINT;
	vmbus_list_init(&s->devices);
	vmbus_list_init(&s->offers);
	vmbus_list_init(&s->gpadls.all);
	return s;
}

static void device_unlink(struct vmbus_server *s, struct vmbus_device *d)
{
	d->removed = true;
	vmbus_list_del(&d->link);
	(void)s;
	vmbus_device_put(d);
}

void vmbus_server_free(struct vmbus_server *s)
{
	if (!s)
		return;
	s->ops.lock(s->ctx);
	vmbus_connection_reset(s);
	while (!vmbus_list_empty(&s->offers))
		vmbus_offer_free(s, container_of(s->offers.next, struct vmbus_offer_rec, link));
	while (!vmbus_list_empty(&s->devices))
		device_unlink(s, container_of(s->devices.next, struct vmbus_device, link));
	s->ops.unlock(s->ctx);
	free(s);
}

int vmbus_server_add_device(struct vmbus_server *s, const struct vmbus_device_desc *desc,
			    struct vmbus_device **out)
{
	if (!s || !desc || !desc->ops || !desc->ops->open || !desc->ops->close ||
	    !desc->ops->notify)
		return -EINVAL;
	struct vmbus_device *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->desc = *desc;
	d->name = strdup(desc->name ? desc->name : "vmbus device");
	if (!d->name) {
		free(d);
		return -ENOMEM;
	}
	d->desc.name = d->name;
	d->s = s;
	d->refs = 1;
	vmbus_list_init(&d->offers);

	int err = 0;
	s->ops.lock(s->ctx);
	for (struct vmbus_list *l = s->devices.next; l != &s->devices; l = l->next) {
		const struct vmbus_device *o = container_of(l, struct vmbus_device, link);
		if (hv_guid_equal(&o->desc.class_id, &desc->class_id) &&
		    hv_guid_equal(&o->desc.instance_id, &desc->instance_id))
			err = -EEXIST; /* Linux would take it for a sub-channel */
	}
	if (!err && s->offer_count >= VMBUS_RELID_MAX)
		err = -ENOSPC;
	struct vmbus_offer_rec *o = NULL;
	if (!err) {
		vmbus_list_add_tail(&s->devices, &d->link);
		o = vmbus_offer_new(s, d, 0);
		if (!o) {
			vmbus_list_del(&d->link);
			err = -ENOMEM;
		}
	}
	if (!err) {
		/* Before the offer goes out: the guest may open the channel and
		 * signal it (reaching the device's callbacks, which may use
		 * *out) as soon as the lock drops. */
		if (out)
			*out = d;
		vmbus_offer_now(s, o);
	}
	s->ops.unlock(s->ctx);
	if (err) {
		free(d->name);
		free(d);
		return err;
	}
	return 0;
}

/* The offers of d rescinded (or freed if the guest never saw them): its
 * sub-channels, and its primary too if with_primary; the device asks for
 * sub-channels from 1 again. */
static void rescind_offers(struct vmbus_server *s, struct vmbus_device *d, bool with_primary)
{
	/* Sub-channels first, as Linux closes them (channel.c
	 * vmbus_disconnect_ring). */
	for (struct vmbus_list *l = d->offers.prev, *prev; l != &d->offers; l = prev) {
		prev = l->prev;
		struct vmbus_offer_rec *o = container_of(l, struct vmbus_offer_rec, dev_link);
		if (with_primary || o->sub_index)
			rescind(s, o);
	}
	d->subchannels = 0;
}

void vmbus_server_remove_device(struct vmbus_server *s, struct vmbus_device *d)
{
	if (!s || !d)
		return;
	s->ops.lock(s->ctx);
	if (!d->removed) {
		rescind_offers(s, d, true);
		device_unlink(s, d);
	}
	s->ops.unlock(s->ctx);
}

int vmbus_device_add_subchannels_locked(struct vmbus_device *d, uint32_t count)
{
	struct vmbus_server *s = d->s;

	if (d->removed)
		return -ENODEV;
	if (count > VMBUS_SERVER_MAX_SUBCHANNELS - d->subchannels ||
	    s->offer_count + count > VMBUS_RELID_MAX)
		return -ENOSPC;
	for (uint32_t i = 0; i < count; i++) {
		struct vmbus_offer_rec *o = vmbus_offer_new(s, d, (uint16_t)(d->subchannels + 1));
		if (!o)
			return -ENOMEM;
		d->subchannels++;
		vmbus_offer_now(s, o);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* State                                                               */
/* ------------------------------------------------------------------ */

void vmbus_server_get_stats(struct vmbus_server *s, struct vmbus_server_stats *out)
{
	s->ops.lock(s->ctx);
	*out = (struct vmbus_server_stats){
		.connection = s->conn,
		.version = s->version,
		.channels = s->offer_count,
		.gpadls = s->gpadls.ready,
		.gpadl_bytes = s->gpadls.ready_bytes,
		.bad_messages = s->bad_messages,
		.throttled_signals = s->throttled_signals,
		.connects = s->connects,
		.unloads = s->unloads,
	};
	s->ops.unlock(s->ctx);
}

void vmbus_server_for_each_channel(struct vmbus_server *s,
				   void (*fn)(void *arg, const struct vmbus_server_channel_info *),
				   void *arg)
{
	s->ops.lock(s->ctx);
	for (struct vmbus_list *l = s->offers.next; l != &s->offers; l = l->next) {
		const struct vmbus_offer_rec *o = container_of(l, struct vmbus_offer_rec, link);
		struct vmbus_server_channel_info info = {
			.class_id = o->class_id,
			.instance_id = o->instance_id,
			.sub_channel_index = o->sub_index,
			.relid = o->relid,
			.connection_id =
				o->relid ? VMBUS_SERVER_CHANNEL_CONNECTION_BASE + o->relid : 0,
			.target_vp = o->target_vp,
			.state = o->state,
			.guest_signals = o->guest_signals,
			.spurious_signals = o->spurious_signals,
			.host_signals = o->host_signals,
		};
		fn(arg, &info);
	}
	s->ops.unlock(s->ctx);
}
