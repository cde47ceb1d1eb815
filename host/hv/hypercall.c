/* SPDX-License-Identifier: MIT */
/*
 * Hypercalls and the connection registry. The guest's side is Linux
 * drivers/hv/connection.c (vmbus_post_msg: HvPostMessage, slow, one input
 * page; vmbus_set_event: HvSignalEvent, fast) and drivers/hv/hv.c
 * (hv_post_message). Control word decoding and status choices follow the
 * TLFS and KVM (arch/x86/kvm/hyperv.c, kvm_hv_hypercall).
 *
 * Everything read from the guest is copied into host memory once, through
 * guest_memory, before it is checked: the guest cannot change a field
 * between the check and the use.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv_internal.h"

struct hv_call {
	uint16_t code;
	bool fast;
	bool rep;         /* rep count or rep start non-zero */
	uint32_t varhead; /* variable header size, 8-byte units */
};

/* A validation failure: counted and logged once per status. */
static uint16_t reject(struct hv_partition *p, uint32_t vp, const struct hv_call *c,
		       uint16_t status)
{
	hv_count(&p->bad_hypercalls);
	if (hv_first_bit(&p->logged_status, status < 63 ? status : 63))
		hv_log(p, "hv: hypercall 0x%x from VP %u failed with status %u (logged once)",
		       c->code, vp, status);
	return status;
}

/* ---- connections ---- */

/* Message and event connection ids are separate namespaces, as in KVM
 * (conn_to_evt holds events only; messages go to user space) and QEMU
 * (msg_handlers and event_flag_handlers): one id can name both. The table
 * is under conn_lock: written by add and remove, read by every
 * hypercall that names a connection. */
static struct hv_connection *connection_find(const struct hv_partition *p, bool is_event,
					     uint32_t id)
{
	for (uint32_t i = 0; i < p->conn_count; i++)
		if (p->conns[i].id == id && p->conns[i].is_event == is_event)
			return &p->conns[i];
	return NULL;
}

static int connection_add_locked(struct hv_partition *p, const struct hv_connection *c)
{
	if (c->id & ~HV_CONNECTION_ID_MASK)
		return -EINVAL;
	if (connection_find(p, c->is_event, c->id))
		return -EEXIST;
	if (p->conn_count == p->conn_cap) {
		uint32_t cap = p->conn_cap ? p->conn_cap * 2 : 8;
		struct hv_connection *conns = realloc(p->conns, (size_t)cap * sizeof(*conns));
		if (!conns)
			return -ENOMEM;
		p->conns = conns;
		p->conn_cap = cap;
	}
	p->conns[p->conn_count++] = *c;
	return 0;
}

static int connection_add(struct hv_partition *p, const struct hv_connection *c)
{
	pthread_rwlock_wrlock(&p->conn_lock);
	int err = connection_add_locked(p, c);
	pthread_rwlock_unlock(&p->conn_lock);
	return err;
}

int hv_connection_add_message(struct hv_partition *p, uint32_t connection_id,
			      hv_message_handler fn, void *ctx)
{
	if (!fn)
		return -EINVAL;
	struct hv_connection c = {.id = connection_id, .is_event = false, .on_message = fn, .ctx = ctx};
	return connection_add(p, &c);
}

int hv_connection_add_event(struct hv_partition *p, uint32_t connection_id,
			    hv_event_handler fn, void *ctx)
{
	if (!fn)
		return -EINVAL;
	struct hv_connection c = {.id = connection_id, .is_event = true, .on_event = fn, .ctx = ctx};
	return connection_add(p, &c);
}

void hv_connection_remove(struct hv_partition *p, bool is_event, uint32_t connection_id)
{
	pthread_rwlock_wrlock(&p->conn_lock);
	struct hv_connection *c = connection_find(p, is_event, connection_id);
	if (c)
		*c = p->conns[--p->conn_count];
	pthread_rwlock_unlock(&p->conn_lock);
}

/* A copy of connection (is_event, id): the caller calls its handler after
 * the table lock is gone, so the handler may add or remove connections. */
static bool connection_get(struct hv_partition *p, bool is_event, uint32_t id,
			   struct hv_connection *out)
{
	pthread_rwlock_rdlock(&p->conn_lock);
	const struct hv_connection *c = connection_find(p, is_event, id);
	if (c)
		*out = *c;
	pthread_rwlock_unlock(&p->conn_lock);
	return c != NULL;
}

bool hv_connection_find_event(struct hv_partition *p, uint32_t connection_id,
			      hv_event_handler *fn, void **ctx)
{
	struct hv_connection c;
	if (!connection_get(p, true, connection_id, &c))
		return false;
	*fn = c.on_event;
	*ctx = c.ctx;
	return true;
}

void hv_connections_free(struct hv_partition *p)
{
	free(p->conns);
	p->conns = NULL;
	p->conn_count = p->conn_cap = 0;
}

/* ---- HvPostMessage (0x5C) ---- */

static uint16_t post_message(struct hv_partition *p, uint32_t vp, const struct hv_call *c,
			     uint64_t gpa)
{
	struct hv_input_post_message in;
	const uint64_t header = offsetof(struct hv_input_post_message, payload);
	uint64_t page_offset = gpa & (HV_PAGE_SIZE - 1);

	if (c->fast || c->rep || c->varhead)
		return reject(p, vp, c, HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* An input block is 8-byte aligned and lies within one page. */
	if (gpa % HV_HYPERCALL_PARAM_ALIGN || page_offset + header > HV_PAGE_SIZE)
		return reject(p, vp, c, HV_STATUS_INVALID_ALIGNMENT);
	if (guest_memory_read(p->mem, gpa, &in, header))
		return reject(p, vp, c, HV_STATUS_INVALID_PARAMETER);
	if (in.payload_size > HV_MESSAGE_PAYLOAD_BYTES)
		return reject(p, vp, c, HV_STATUS_INVALID_PARAMETER);
	if (page_offset + header + in.payload_size > HV_PAGE_SIZE)
		return reject(p, vp, c, HV_STATUS_INVALID_ALIGNMENT);
	if (in.payload_size &&
	    guest_memory_read(p->mem, gpa + header, in.payload, in.payload_size))
		return reject(p, vp, c, HV_STATUS_INVALID_PARAMETER);
	/* Types with bit 31 set are the hypervisor's own (hv_message_type). */
	if (in.message_type == HVMSG_NONE || (in.message_type & 0x80000000u))
		return reject(p, vp, c, HV_STATUS_INVALID_PARAMETER);
	if (in.connection_id & ~HV_CONNECTION_ID_MASK)
		return reject(p, vp, c, HV_STATUS_INVALID_PARAMETER);

	struct hv_connection conn;
	if (!connection_get(p, false, in.connection_id, &conn))
		return reject(p, vp, c, HV_STATUS_INVALID_CONNECTION_ID);

	struct hv_posted_message msg;
	msg.connection_id = in.connection_id;
	msg.message_type = in.message_type;
	msg.payload_size = in.payload_size;
	memcpy(msg.payload, in.payload, in.payload_size);
	memset(msg.payload + in.payload_size, 0, sizeof(msg.payload) - in.payload_size);
	return conn.on_message(conn.ctx, vp, &msg);
}

/* ---- HvSignalEvent (0x5D) ---- */

static uint16_t signal_event(struct hv_partition *p, uint32_t vp, const struct hv_call *c,
			     uint64_t input)
{
	uint64_t value = input;

	if (c->rep || c->varhead)
		return reject(p, vp, c, HV_STATUS_INVALID_HYPERCALL_INPUT);
	if (!c->fast) {
		if (input % HV_HYPERCALL_PARAM_ALIGN)
			return reject(p, vp, c, HV_STATUS_INVALID_ALIGNMENT);
		if (guest_memory_read(p->mem, input, &value, sizeof(value)))
			return reject(p, vp, c, HV_STATUS_INVALID_PARAMETER);
	}
	/* Bits 63:48 reserved; the connection id is 24 bits of 31:0. */
	uint32_t id = (uint32_t)(value & HV_SIGNAL_EVENT_CONNECTION_MASK);
	if ((value >> 48) || (id & ~HV_CONNECTION_ID_MASK))
		return reject(p, vp, c, HV_STATUS_INVALID_HYPERCALL_INPUT);

	struct hv_connection conn;
	if (!connection_get(p, true, id, &conn))
		return reject(p, vp, c, HV_STATUS_INVALID_CONNECTION_ID);
	return conn.on_event(conn.ctx, vp,
			     (uint16_t)((value & HV_SIGNAL_EVENT_FLAG_MASK) >> HV_SIGNAL_EVENT_FLAG_SHIFT));
}

/* ---- dispatcher ---- */

static uint16_t dispatch(struct hv_partition *p, uint32_t vp, const struct hv_hypercall *hc)
{
	struct hv_call c = {
		.code = (uint16_t)(hc->control & HV_HYPERCALL_CODE_MASK),
		.fast = hc->control & HV_HYPERCALL_FAST,
		.rep = hc->control & (HV_HYPERCALL_REP_COUNT_MASK | HV_HYPERCALL_REP_START_MASK),
		.varhead = (uint32_t)((hc->control & HV_HYPERCALL_VARHEAD_MASK) >>
				      HV_HYPERCALL_VARHEAD_SHIFT),
	};

	if (vp >= p->cfg.vp_count) {
		if (hv_log_first(p, HV_LOG_BAD_VP))
			hv_log(p, "hv: hypercall from VP %u of %u", vp, p->cfg.vp_count);
		return reject(p, vp, &c, HV_STATUS_INVALID_PARAMETER);
	}
	if (hc->control & HV_HYPERCALL_RESERVED_MASK)
		return reject(p, vp, &c, HV_STATUS_INVALID_HYPERCALL_INPUT);

	switch (c.code) {
	case HVCALL_NOTIFY_LONG_SPIN_WAIT:
		/* Only a hint that a vCPU spins on a lock; nothing to do. */
		if (c.rep || c.varhead)
			return reject(p, vp, &c, HV_STATUS_INVALID_HYPERCALL_INPUT);
		return HV_STATUS_SUCCESS;
	case HVCALL_POST_MESSAGE:
		return post_message(p, vp, &c, hc->input);
	case HVCALL_SIGNAL_EVENT:
		return signal_event(p, vp, &c, hc->input);
	default:
		return reject(p, vp, &c, HV_STATUS_INVALID_HYPERCALL_CODE);
	}
}

uint64_t hv_hypercall(struct hv_partition *p, uint32_t vp, const struct hv_hypercall *hc,
		      uint64_t now)
{
	(void)now; /* no hypercall here depends on time */
	/* No rep hypercall is implemented: reps completed is always 0. */
	return dispatch(p, vp, hc) & HV_HYPERCALL_STATUS_MASK;
}
