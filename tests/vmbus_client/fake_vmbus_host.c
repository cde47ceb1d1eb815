/* SPDX-License-Identifier: MIT */
#include "fake_vmbus_host.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t all_versions[] = {
	VMBUS_VERSION_WIN10_V5_3, VMBUS_VERSION_WIN10_V5_2, VMBUS_VERSION_WIN10_V5_1,
	VMBUS_VERSION_WIN10_V5,	  VMBUS_VERSION_WIN10_V4_1, VMBUS_VERSION_WIN10,
	VMBUS_VERSION_WIN8_1,	  VMBUS_VERSION_WIN8,
};

/* ---- the queue of messages to the guest ---- */

static void push(struct fake_vmbus_host *h, const void *msg, uint32_t size)
{
	if (h->q_count == FH_MAX_QUEUE || size > VMBUS_MAX_MESSAGE_SIZE) {
		h->errors++;
		return;
	}
	struct fh_queued *q = &h->queue[(h->q_head + h->q_count++) % FH_MAX_QUEUE];
	q->vp = h->answer_vp;
	q->size = size;
	memset(q->msg, 0, sizeof(q->msg));
	memcpy(q->msg, msg, size);
}

void fh_queue(struct fake_vmbus_host *h, const void *msg, uint32_t size)
{
	push(h, msg, size);
}

void fh_inject_before(struct fake_vmbus_host *h, uint32_t answer_type, const void *msg,
		      uint32_t size)
{
	if (answer_type >= VMBUS_MSG_COUNT || h->inject_count[answer_type] == FH_MAX_INJECT ||
	    size > VMBUS_MAX_MESSAGE_SIZE)
		abort();
	struct fh_inject *i = &h->inject[answer_type][h->inject_count[answer_type]++];
	i->size = size;
	memcpy(i->msg, msg, size);
}

/* The host's own answer, after whatever the test wants before it. */
static void reply(struct fake_vmbus_host *h, const void *msg, uint32_t size)
{
	uint32_t type;

	memcpy(&type, msg, sizeof(type));
	if (type < VMBUS_MSG_COUNT) {
		for (uint32_t i = 0; i < h->inject_count[type]; i++)
			push(h, h->inject[type][i].msg, h->inject[type][i].size);
		h->inject_count[type] = 0;
	}
	push(h, msg, size);
}

/* With honest_words, what the host says it has done, it has done: a host
 * that rescinds a channel, says a GPADL is torn down or answers UNLOAD no
 * longer touches those pages, whoever wrote the message (the fuzzer). */
/* The sub-channels of the primary offered as relid: rescinded, out of
 * the offer list. */
static void rescind_subs(struct fake_vmbus_host *h, uint32_t relid)
{
	const struct vmbus_msg_offer_channel *primary = NULL;
	for (uint32_t i = 0; i < h->offer_count; i++)
		if (h->offers[i].child_relid == relid && !h->offers[i].offer.sub_channel_index)
			primary = &h->offers[i];
	if (!primary)
		return;
	struct hv_guid instance = primary->offer.if_instance;
	for (uint32_t i = 0; i < h->offer_count;) {
		struct vmbus_msg_offer_channel *o = &h->offers[i];
		if (!o->offer.sub_channel_index || !hv_guid_equal(&o->offer.if_instance, &instance)) {
			i++;
			continue;
		}
		struct vmbus_msg_rescind_offer r = {
			.header.msgtype = VMBUS_MSG_RESCIND_CHANNELOFFER,
			.child_relid = o->child_relid,
		};
		push(h, &r, sizeof(r));
		*o = h->offers[--h->offer_count];
	}
}

static void unmap(struct fh_chan *c)
{
	c->open = false;
	c->base = NULL;
}

static void revoke(struct fake_vmbus_host *h, const uint8_t *m, uint32_t size)
{
	uint32_t type, v;

	if (size < 8)
		return;
	memcpy(&type, m, sizeof(type));
	if (type == VMBUS_MSG_ALLOFFERS_DELIVERED)
		h->alloffers_delivered = true;
	if (!h->honest_words)
		return;
	if (size < 12 && type != VMBUS_MSG_UNLOAD_RESPONSE)
		return;
	memcpy(&v, m + 8, sizeof(v));
	for (int i = 0; i < FH_MAX_CHANS; i++) {
		struct fh_chan *c = &h->chans[i];
		if (!c->used)
			continue;
		if ((type == VMBUS_MSG_RESCIND_CHANNELOFFER && c->relid == v) ||
		    (type == VMBUS_MSG_GPADL_TORNDOWN && c->gpadl == v) ||
		    type == VMBUS_MSG_UNLOAD_RESPONSE)
			unmap(c);
	}
	for (int i = 0; i < FH_MAX_GPADLS; i++) {
		struct fh_gpadl *gp = &h->gpadls[i];
		if (gp->used && ((type == VMBUS_MSG_RESCIND_CHANNELOFFER && gp->relid == v) ||
				 (type == VMBUS_MSG_GPADL_TORNDOWN && gp->handle == v) ||
				 type == VMBUS_MSG_UNLOAD_RESPONSE))
			gp->used = false;
	}
}

bool fh_deliver(struct fake_vmbus_host *h)
{
	if (!h->q_count)
		return false;
	struct fh_queued *q = &h->queue[h->q_head];
	struct hv_guest_vp *vp = &h->g->vps[q->vp];
	if (!vp->simp)
		return false;
	struct hv_message *slot = &vp->simp->sint_message[VMBUS_MESSAGE_SINT];
	if (slot->header.message_type != HVMSG_NONE) {
		/* The guest has not taken the last one: it is pending. */
		slot->header.message_flags |= HV_MESSAGE_FLAG_PENDING;
		return false;
	}
	memcpy(slot->payload, q->msg, sizeof(slot->payload));
	slot->header.payload_size = (uint8_t)q->size;
	slot->header.message_flags = 0;
	slot->header.sender = 0;
	/* The type last (slots are 256-byte aligned, so it is aligned). */
	__atomic_store_n((uint32_t *)(void *)slot, HV_MESSAGE_TYPE_VMBUS, __ATOMIC_RELEASE);
	h->q_head = (h->q_head + 1) % FH_MAX_QUEUE;
	h->q_count--;
	h->delivered++;
	revoke(h, q->msg, q->size);
	fake_raise(h->f, q->vp, h->g->config.sint_vector);
	return true;
}

uint32_t fh_deliver_all(struct fake_vmbus_host *h)
{
	uint32_t n = 0;

	while (fh_deliver(h))
		n++;
	return n;
}

static bool on_wait(void *arg)
{
	return fh_deliver(arg);
}

/* ---- the host side of each request ---- */

static struct fh_gpadl *gpadl_find(struct fake_vmbus_host *h, uint32_t handle)
{
	for (int i = 0; i < FH_MAX_GPADLS; i++)
		if (h->gpadls[i].used && h->gpadls[i].handle == handle)
			return &h->gpadls[i];
	return NULL;
}

struct fh_chan *fh_chan(struct fake_vmbus_host *h, uint32_t relid)
{
	for (int i = 0; i < FH_MAX_CHANS; i++)
		if (h->chans[i].used && h->chans[i].relid == relid)
			return &h->chans[i];
	return NULL;
}

static struct fh_chan *chan_new(struct fake_vmbus_host *h, uint32_t relid)
{
	struct fh_chan *c = fh_chan(h, relid);
	if (c)
		return c;
	for (int i = 0; i < FH_MAX_CHANS; i++) {
		if (!h->chans[i].used) {
			memset(&h->chans[i], 0, sizeof(h->chans[i]));
			h->chans[i].used = true;
			h->chans[i].relid = relid;
			return &h->chans[i];
		}
	}
	return NULL;
}

static void gpadl_maybe_created(struct fake_vmbus_host *h, struct fh_gpadl *gp)
{
	if (gp->complete || gp->count < gp->expected)
		return;
	gp->complete = true;
	if (!h->answer || h->drop_gpadl_created)
		return;
	struct vmbus_msg_gpadl_created r = {
		.header.msgtype = VMBUS_MSG_GPADL_CREATED,
		.child_relid = gp->relid,
		.gpadl = gp->handle,
		.creation_status = h->gpadl_status,
	};
	reply(h, &r, sizeof(r));
}

static void on_gpadl_header(struct fake_vmbus_host *h, const uint8_t *m, uint32_t size)
{
	struct vmbus_msg_gpadl_header hdr;
	struct vmbus_gpa_range range;

	if (size < sizeof(hdr) + sizeof(range)) {
		h->errors++;
		return;
	}
	memcpy(&hdr, m, sizeof(hdr));
	memcpy(&range, m + sizeof(hdr), sizeof(range));
	struct fh_gpadl *gp = NULL;
	if (gpadl_find(h, hdr.gpadl)) {
		h->errors++; /* a handle in use */
		return;
	}
	for (int i = 0; i < FH_MAX_GPADLS && !gp; i++)
		if (!h->gpadls[i].used)
			gp = &h->gpadls[i];
	if (!gp || hdr.range_buflen < sizeof(range) ||
	    (hdr.range_buflen - sizeof(range)) % 8 != 0) {
		h->errors++;
		return;
	}
	memset(gp, 0, sizeof(*gp));
	gp->used = true;
	gp->relid = hdr.child_relid;
	gp->handle = hdr.gpadl;
	gp->range_buflen = hdr.range_buflen;
	gp->range_count = hdr.range_count;
	gp->byte_count = range.byte_count;
	gp->byte_offset = range.byte_offset;
	gp->expected = (hdr.range_buflen - (uint32_t)sizeof(range)) / 8;
	gp->messages = 1;
	uint32_t n = (size - (uint32_t)(sizeof(hdr) + sizeof(range))) / 8;
	if (n > gp->expected || gp->expected > FH_MAX_GPADL_PFNS || hdr.range_count != 1) {
		h->errors++;
		gp->used = false;
		return;
	}
	memcpy(gp->pfns, m + sizeof(hdr) + sizeof(range), n * 8);
	gp->count = n;
	gpadl_maybe_created(h, gp);
}

static void on_gpadl_body(struct fake_vmbus_host *h, const uint8_t *m, uint32_t size)
{
	struct vmbus_msg_gpadl_body b;

	if (size < sizeof(b)) {
		h->errors++;
		return;
	}
	memcpy(&b, m, sizeof(b));
	struct fh_gpadl *gp = gpadl_find(h, b.gpadl);
	uint32_t n = (size - (uint32_t)sizeof(b)) / 8;
	if (!gp || gp->complete || gp->count + n > gp->expected || b.msg_number != 0) {
		h->errors++;
		return;
	}
	memcpy(gp->pfns + gp->count, m + sizeof(b), n * 8);
	gp->count += n;
	gp->messages++;
	gpadl_maybe_created(h, gp);
}

uint32_t fh_vp_of_index(const struct fake_vmbus_host *h, uint32_t vp_index)
{
	for (uint32_t i = 0; i < FAKE_MAX_VPS; i++)
		if (h->f->vp_index[i] == vp_index)
			return i;
	return UINT32_MAX;
}

static void on_open(struct fake_vmbus_host *h, const uint8_t *m)
{
	struct vmbus_msg_open_channel o;

	memcpy(&o, m, sizeof(o));
	struct fh_gpadl *gp = gpadl_find(h, o.ring_gpadl);
	struct fh_chan *c = chan_new(h, o.child_relid);
	if (!gp || !gp->complete || gp->relid != o.child_relid || !c) {
		h->errors++;
		return;
	}
	/* The pages must be one contiguous allocation, as the client makes
	 * them; the host maps them through the GPADL's PFNs. */
	uint8_t *base = fake_gpa_ptr(h->f, gp->pfns[0] << HV_PAGE_SHIFT);
	for (uint32_t i = 0; base && i < gp->count; i++)
		if (fake_gpa_ptr(h->f, gp->pfns[i] << HV_PAGE_SHIFT) != base + i * HV_PAGE_SIZE)
			base = NULL;
	uint32_t down = o.downstream_ring_page_offset;
	struct vmbus_ring_mem out, in;
	if (!base || down < 2 || down + 2 > gp->count ||
	    vmbus_ring_mem_init(&in, base, (size_t)down * HV_PAGE_SIZE, false) ||
	    vmbus_ring_mem_init(&out, base + (size_t)down * HV_PAGE_SIZE,
				(size_t)(gp->count - down) * HV_PAGE_SIZE, false) ||
	    vmbus_ring_writer_attach(&c->to_guest, &out) ||
	    vmbus_ring_reader_attach(&c->from_guest, &in)) {
		h->errors++;
		return;
	}
	c->open = true;
	c->gpadl = o.ring_gpadl;
	c->target_vp_index = o.target_vp;
	c->open_msg = o;
	c->base = base;
	c->pages = gp->count;
	if (h->rescind_on_open) {
		/* The device went away as the guest opened it: Hyper-V
		 * ignores the open and rescinds. */
		c->open = false;
		struct vmbus_msg_rescind_offer r = {
			.header.msgtype = VMBUS_MSG_RESCIND_CHANNELOFFER,
			.child_relid = o.child_relid,
		};
		push(h, &r, sizeof(r));
		return;
	}
	if (!h->answer || h->drop_open_result)
		return;
	struct vmbus_msg_open_result r = {
		.header.msgtype = VMBUS_MSG_OPENCHANNEL_RESULT,
		.child_relid = o.child_relid,
		.open_id = o.open_id,
		.status = h->open_status,
	};
	if (h->open_status)
		c->open = false;
	reply(h, &r, sizeof(r));
}

static bool version_accepted(const struct fake_vmbus_host *h, uint32_t v)
{
	for (uint32_t i = 0; i < h->accepted_count; i++)
		if (h->accepted[i] == v)
			return true;
	return false;
}

/* Returns the HvPostMessage status. */
static uint16_t on_post(struct fake_vmbus_host *h, const struct hv_input_post_message *in)
{
	uint32_t size = in->payload_size;
	const uint8_t *m = in->payload;
	uint32_t type = 0;

	if (size > VMBUS_MAX_MESSAGE_SIZE || in->message_type != HV_MESSAGE_TYPE_VMBUS) {
		h->errors++;
		return HV_STATUS_INVALID_PARAMETER;
	}
	if (h->busy_posts) {
		h->busy_posts--;
		h->busy_answered++;
		return HV_STATUS_INSUFFICIENT_BUFFERS;
	}
	if (size >= 4)
		memcpy(&type, m, sizeof(type));
	if (in->connection_id == VMBUS_MESSAGE_CONNECTION_ID_4 && h->refuse_conn4) {
		h->refused_posts++;
		return HV_STATUS_INVALID_CONNECTION_ID;
	}
	if (h->post_count < FH_MAX_POSTS) {
		struct fh_post *p = &h->posts[h->post_count++];
		p->vp = h->f->current_vp;
		p->conn = in->connection_id;
		p->size = size;
		p->type = type;
		memset(p->msg, 0, sizeof(p->msg));
		memcpy(p->msg, m, size);
	}

	/* Everything after contact goes to the connection the host named. */
	if (type != VMBUS_MSG_INITIATE_CONTACT) {
		uint32_t want = h->version >= VMBUS_VERSION_WIN10_V5 ? h->msg_conn_id
								     : VMBUS_MESSAGE_CONNECTION_ID;
		if (in->connection_id != want)
			h->errors++;
	}

	switch (type) {
	case VMBUS_MSG_INITIATE_CONTACT: {
		struct vmbus_msg_initiate_contact ic;
		if (size != sizeof(ic)) {
			h->errors++;
			break;
		}
		memcpy(&ic, m, sizeof(ic));
		uint32_t want = ic.version_requested >= VMBUS_VERSION_WIN10_V5
					? VMBUS_MESSAGE_CONNECTION_ID_4
					: VMBUS_MESSAGE_CONNECTION_ID;
		if (in->connection_id != want)
			h->errors++;
		bool ok = version_accepted(h, ic.version_requested);
		if (ok)
			h->version = ic.version_requested;
		if (!h->answer || h->drop_version_response)
			break;
		struct vmbus_msg_version_response r = {
			.header.msgtype = VMBUS_MSG_VERSION_RESPONSE,
			.version_supported = ok,
			.msg_conn_id = ok && ic.version_requested >= VMBUS_VERSION_WIN10_V5
					       ? h->msg_conn_id
					       : 0,
		};
		reply(h, &r, sizeof(r));
		break;
	}
	case VMBUS_MSG_REQUESTOFFERS:
		if (!h->answer)
			break;
		for (uint32_t i = 0; i < h->offer_count; i++)
			push(h, &h->offers[i], sizeof(h->offers[i]));
		if (!h->drop_alloffers) {
			struct vmbus_msg_header d = {.msgtype = VMBUS_MSG_ALLOFFERS_DELIVERED};
			reply(h, &d, sizeof(d));
		}
		for (uint32_t i = 0; i < h->late_offer_count; i++)
			push(h, &h->late_offers[i], sizeof(h->late_offers[i]));
		break;
	case VMBUS_MSG_GPADL_HEADER:
		on_gpadl_header(h, m, size);
		break;
	case VMBUS_MSG_GPADL_BODY:
		on_gpadl_body(h, m, size);
		break;
	case VMBUS_MSG_OPENCHANNEL:
		if (size != sizeof(struct vmbus_msg_open_channel)) {
			h->errors++;
			break;
		}
		on_open(h, m);
		break;
	case VMBUS_MSG_CLOSECHANNEL: {
		struct vmbus_msg_close_channel cl;
		memcpy(&cl, m, sizeof(cl));
		struct fh_chan *c = fh_chan(h, cl.child_relid);
		if (c)
			unmap(c);
		if (h->rescind_subs_on_close)
			rescind_subs(h, cl.child_relid);
		break;
	}
	case VMBUS_MSG_GPADL_TEARDOWN: {
		struct vmbus_msg_gpadl_teardown t;
		memcpy(&t, m, sizeof(t));
		struct fh_gpadl *gp = gpadl_find(h, t.gpadl);
		if (!gp || gp->relid != t.child_relid) {
			h->errors++;
			break;
		}
		gp->used = false;
		gp->torn = true;
		if (!h->answer || h->drop_torndown)
			break;
		struct vmbus_msg_gpadl_torndown r = {
			.header.msgtype = VMBUS_MSG_GPADL_TORNDOWN,
			.gpadl = t.gpadl,
		};
		reply(h, &r, sizeof(r));
		break;
	}
	case VMBUS_MSG_MODIFYCHANNEL: {
		struct vmbus_msg_modify_channel mc;
		memcpy(&mc, m, sizeof(mc));
		struct fh_chan *c = fh_chan(h, mc.child_relid);
		if (c && h->modify_status == 0)
			c->target_vp_index = mc.target_vp;
		if (h->version < VMBUS_VERSION_WIN10_V5_3 || !h->answer || h->drop_modify_response)
			break;
		struct vmbus_msg_modify_channel_response r = {
			.header.msgtype = VMBUS_MSG_MODIFYCHANNEL_RESPONSE,
			.child_relid = mc.child_relid,
			.status = h->modify_status,
		};
		reply(h, &r, sizeof(r));
		break;
	}
	case VMBUS_MSG_UNLOAD: {
		/* The host closes everything and forgets every GPADL. */
		for (int i = 0; i < FH_MAX_CHANS; i++)
			h->chans[i].used = false;
		for (int i = 0; i < FH_MAX_GPADLS; i++)
			h->gpadls[i].used = false;
		h->version = 0;
		if (!h->answer || h->drop_unload_response)
			break;
		struct vmbus_msg_header r = {.msgtype = VMBUS_MSG_UNLOAD_RESPONSE};
		reply(h, &r, sizeof(r));
		break;
	}
	case VMBUS_MSG_RELID_RELEASED:
		break;
	default:
		h->errors++;
		break;
	}
	if (h->deliver_in_hypercall)
		fh_deliver_all(h);
	return HV_STATUS_SUCCESS;
}

static uint64_t hypercall(void *arg, uint64_t control, uint64_t input, uint64_t output)
{
	struct fake_vmbus_host *h = arg;
	uint16_t code = (uint16_t)(control & HV_HYPERCALL_CODE_MASK);

	(void)output;
	if (code == HVCALL_POST_MESSAGE && !(control & HV_HYPERCALL_FAST)) {
		const struct hv_input_post_message *in = fake_gpa_ptr(h->f, input);
		if (!in) {
			h->errors++;
			return HV_STATUS_INVALID_PARAMETER;
		}
		return on_post(h, in);
	}
	if (code == HVCALL_SIGNAL_EVENT && (control & HV_HYPERCALL_FAST)) {
		if (h->signal_count < FH_MAX_SIGNALS)
			h->signals[h->signal_count++] = (struct fh_signal){
				h->f->current_vp, (uint32_t)(input & HV_SIGNAL_EVENT_CONNECTION_MASK),
				(uint16_t)(input >> HV_SIGNAL_EVENT_FLAG_SHIFT)};
		return HV_STATUS_SUCCESS;
	}
	h->errors++;
	return HV_STATUS_INVALID_HYPERCALL_CODE;
}

/* ---- set-up ---- */

struct fake_vmbus_host *fh_new(struct fake_hv *f, struct hv_guest *g)
{
	struct fake_vmbus_host *h = calloc(1, sizeof(*h));
	if (!h)
		abort();
	h->f = f;
	h->g = g;
	h->answer = true;
	h->msg_conn_id = VMBUS_MESSAGE_CONNECTION_ID_4;
	fh_accept(h, all_versions, sizeof(all_versions) / sizeof(all_versions[0]));
	f->hypercall_hook = hypercall;
	f->on_wait = on_wait;
	f->hook_arg = h;
	return h;
}

void fh_free(struct fake_vmbus_host *h)
{
	if (!h)
		return;
	h->f->hypercall_hook = NULL;
	h->f->on_wait = NULL;
	h->f->hook_arg = NULL;
	free(h);
}

void fh_accept(struct fake_vmbus_host *h, const uint32_t *v, uint32_t count)
{
	if (count > 16)
		abort();
	if (count)
		memcpy(h->accepted, v, count * sizeof(*v));
	h->accepted_count = count;
}

struct vmbus_msg_offer_channel fh_make_offer(const struct hv_guid *class_id,
					     const struct hv_guid *instance, uint16_t sub,
					     uint32_t relid)
{
	struct vmbus_msg_offer_channel o;

	memset(&o, 0, sizeof(o));
	o.header.msgtype = VMBUS_MSG_OFFERCHANNEL;
	o.offer.if_type = *class_id;
	o.offer.if_instance = *instance;
	o.offer.chn_flags = VMBUS_OFFER_FLAG_SERVER_SUPPORTS_GPADLS;
	o.offer.sub_channel_index = sub;
	o.child_relid = relid;
	o.connection_id = 0x1000 + relid;
	return o;
}

struct vmbus_msg_offer_channel *fh_add_offer(struct fake_vmbus_host *h,
					     const struct hv_guid *class_id,
					     const struct hv_guid *instance, uint16_t sub,
					     uint32_t relid)
{
	if (h->offer_count == FH_MAX_OFFERS)
		abort();
	struct vmbus_msg_offer_channel *o = &h->offers[h->offer_count++];
	*o = fh_make_offer(class_id, instance, sub, relid);
	return o;
}

/* ---- what the guest posted ---- */

int fh_index(const struct fake_vmbus_host *h, uint32_t type, uint32_t nth)
{
	for (uint32_t i = 0; i < h->post_count; i++)
		if (h->posts[i].type == type && nth-- == 0)
			return (int)i;
	return -1;
}

uint32_t fh_count(const struct fake_vmbus_host *h, uint32_t type)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < h->post_count; i++)
		n += h->posts[i].type == type;
	return n;
}

const struct fh_post *fh_nth(const struct fake_vmbus_host *h, uint32_t type, uint32_t nth)
{
	int i = fh_index(h, type, nth);
	return i < 0 ? NULL : &h->posts[i];
}

uint32_t fh_signals_to(const struct fake_vmbus_host *h, uint32_t conn)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < h->signal_count; i++)
		n += h->signals[i].conn == conn;
	return n;
}

/* ---- rings ---- */

void fh_raise_event(struct fake_vmbus_host *h, uint32_t vp, uint32_t relid)
{
	struct hv_event_flags_page *siefp = h->g->vps[vp].siefp;
	if (!siefp || relid >= HV_EVENT_FLAGS_COUNT)
		abort();
	__atomic_fetch_or(&siefp->sint_flags[VMBUS_MESSAGE_SINT].flags[relid / 8],
			  (uint8_t)(1u << (relid % 8)), __ATOMIC_SEQ_CST);
	h->raised_events++;
	fake_raise(h->f, vp, h->g->config.sint_vector);
}

int fh_send(struct fake_vmbus_host *h, uint32_t relid, uint64_t trans_id, const void *data,
	    uint32_t len)
{
	struct fh_chan *c = fh_chan(h, relid);
	bool signal = false;

	if (!c || !c->open)
		return -ENOTCONN;
	struct vmbus_ring_iov iov = {data, len};
	struct vmbus_packet_out p = {
		.type = VMBUS_PKT_DATA_INBAND,
		.trans_id = trans_id,
		.iov = &iov,
		.iov_count = 1,
	};
	int err = vmbus_ring_send(&c->to_guest, &p, &signal);
	if (!err && signal) {
		uint32_t vp = fh_vp_of_index(h, c->target_vp_index);
		if (vp == UINT32_MAX)
			abort();
		fh_raise_event(h, vp, relid);
	}
	return err;
}

int fh_recv(struct fake_vmbus_host *h, uint32_t relid, void *buf, uint32_t len,
	    struct vmbus_packet *pkt)
{
	struct fh_chan *c = fh_chan(h, relid);

	if (!c || !c->open || !c->base)
		return -ENOTCONN;
	int err = vmbus_ring_recv(&c->from_guest, buf, len, pkt);
	vmbus_ring_commit(&c->from_guest);
	return err;
}
