/* SPDX-License-Identifier: MIT */
/*
 * The SynIC: its MSRs, the message slots of the SIMP page with a FIFO per
 * (VP, SINT) in front of each, and the event flags of the SIEFP page.
 *
 * The slot protocol (TLFS; Linux include/asm-generic/mshyperv.h,
 * vmbus_signal_eom): the host fills an empty slot and writes message_type
 * last; the guest consumes it, sets message_type to HVMSG_NONE, then reads
 * message_flags and writes EOM if "pending" is set. The vCPU may run while
 * we write, so message_type and message_flags are accessed atomically.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv_internal.h"

/* ---- message queues ---- */

static int queue_push(struct hv_msg_queue *q, const struct hv_message *msg)
{
	if (q->count == HV_SYNIC_QUEUE_MAX)
		return -EAGAIN;
	if (q->count == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 4;
		struct hv_message *items = malloc((size_t)cap * sizeof(*items));
		if (!items)
			return -ENOMEM;
		for (uint32_t i = 0; i < q->count; i++)
			items[i] = q->items[(q->head + i) & (q->cap - 1)];
		free(q->items);
		q->items = items;
		q->cap = cap;
		q->head = 0;
	}
	q->items[(q->head + q->count) & (q->cap - 1)] = *msg;
	q->count++;
	return 0;
}

static void queue_pop(struct hv_msg_queue *q)
{
	q->head = (q->head + 1) & (q->cap - 1);
	q->count--;
	q->taken++;
	/* A burst may have grown it to 256 KiB: give that back once drained. */
	if (q->count == 0 && q->cap > 16) {
		free(q->items);
		q->items = NULL;
		q->cap = 0;
		q->head = 0;
	}
}

void hv_synic_free(struct hv_partition *p)
{
	for (uint32_t vp = 0; vp < p->cfg.vp_count; vp++)
		for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++)
			free(p->vps[vp].queue[s].items);
}

/* ---- slots ---- */

enum slot_result {
	SLOT_WRITTEN,
	SLOT_BUSY,   /* holds a message; the pending flag is now set */
	SLOT_CLOSED, /* SynIC or SIMP disabled, or the SINT masked */
};

static uint8_t *slot_of(const struct hv_partition *p, const struct hv_vp *v, uint32_t sint)
{
	if (!(v->scontrol & HV_SCONTROL_ENABLE) || !(v->simp & HV_MSR_PAGE_ENABLE))
		return NULL;
	uint64_t gpa = HV_MSR_PAGE_GPA(v->simp) + (uint64_t)sint * HV_MESSAGE_SIZE;
	return guest_memory_ptr(p->mem, gpa, HV_MESSAGE_SIZE);
}

/*
 * Puts msg into the slot if it is empty. `more`: other messages wait behind
 * this one, so it goes in with the pending flag and the guest will EOM.
 */
static enum slot_result slot_put(const struct hv_partition *p, const struct hv_vp *v,
				 uint32_t sint, const struct hv_message *msg, bool more)
{
	/* A masked SINT keeps its messages queued: no interrupt could tell
	 * the guest about them. */
	if (v->sint[sint] & HV_SINT_MASKED)
		return SLOT_CLOSED;
	uint8_t *slot = slot_of(p, v, sint);
	if (!slot)
		return SLOT_CLOSED;

	uint32_t *type = (uint32_t *)(slot + offsetof(struct hv_message_header, message_type));
	uint8_t *flags = slot + offsetof(struct hv_message_header, message_flags);
	if (__atomic_load_n(type, __ATOMIC_ACQUIRE) != HVMSG_NONE) {
		/* Flag first, then look again (the TLFS order): the guest
		 * clears the type then reads the flag, so either it sees the
		 * flag and EOMs, or we see the empty slot. */
		__atomic_fetch_or(flags, HV_MESSAGE_FLAG_PENDING, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(type, __ATOMIC_SEQ_CST) != HVMSG_NONE)
			return SLOT_BUSY;
	}

	uint8_t size = msg->header.payload_size;
	memcpy(slot + offsetof(struct hv_message, payload), msg->payload, size);
	slot[offsetof(struct hv_message_header, payload_size)] = size;
	memset(slot + offsetof(struct hv_message_header, reserved), 0,
	       sizeof(msg->header.reserved));
	memcpy(slot + offsetof(struct hv_message_header, sender), &msg->header.sender,
	       sizeof(msg->header.sender));
	__atomic_store_n(flags, more ? HV_MESSAGE_FLAG_PENDING : 0, __ATOMIC_RELAXED);
	__atomic_store_n(type, msg->header.message_type, __ATOMIC_RELEASE);
	return SLOT_WRITTEN;
}

static void sint_raise(struct hv_partition *p, uint32_t vp, uint32_t sint)
{
	uint64_t s = p->vps[vp].sint[sint];
	hv_inject(p, vp, (uint8_t)(s & HV_SINT_VECTOR_MASK),
		  (s & HV_SINT_AUTO_EOI) && p->cfg.auto_eoi_supported);
}

/* The lowest timer whose one-shot message waits for this SINT, or -1. */
static int pending_timer(const struct hv_vp *v, uint32_t sint)
{
	for (int i = 0; i < HV_STIMER_COUNT; i++)
		if (hv_stimer_pending_sint(&v->stimer[i]) == (int)sint)
			return i;
	return -1;
}

/* Messages of every kind waiting for this SINT's slot. */
static uint32_t waiting(const struct hv_vp *v, uint32_t sint)
{
	uint32_t n = v->queue[sint].count;
	for (int i = 0; i < HV_STIMER_COUNT; i++)
		n += hv_stimer_pending_sint(&v->stimer[i]) == (int)sint;
	return n;
}

/*
 * Moves the next waiting message of (vp, sint) into its slot if it can.
 * Pending timer messages go first (they carry a delivery time and there are
 * at most four); then the host FIFO in order. Without `now` (a host post)
 * timer messages are left for the next EOM.
 */
static void sint_flush(struct hv_partition *p, uint32_t vp, uint32_t sint, const uint64_t *now)
{
	struct hv_vp *v = &p->vps[vp];
	struct hv_message timer_msg;
	const struct hv_message *msg;
	int timer = now ? pending_timer(v, sint) : -1;

	if (timer >= 0) {
		hv_stimer_build_message((uint32_t)timer, v->stimer[timer].pending_expiration, *now,
					&timer_msg);
		msg = &timer_msg;
	} else if (v->queue[sint].count) {
		msg = &v->queue[sint].items[v->queue[sint].head];
	} else {
		return;
	}
	if (slot_put(p, v, sint, msg, waiting(v, sint) > 1) != SLOT_WRITTEN)
		return;
	if (timer >= 0)
		hv_stimer_message_delivered(&v->stimer[timer]);
	else
		queue_pop(&v->queue[sint]);
	sint_raise(p, vp, sint);
}

static void flush_all(struct hv_partition *p, uint32_t vp, uint64_t now)
{
	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++)
		sint_flush(p, vp, s, &now);
}

bool hv_synic_timer_message(struct hv_partition *p, uint32_t vp, uint32_t index,
			    uint64_t expiration, uint64_t now)
{
	struct hv_vp *v = &p->vps[vp];
	uint32_t sint = (uint32_t)((v->stimer[index].config & HV_STIMER_SINT_MASK) >>
				   HV_STIMER_SINT_SHIFT);
	struct hv_message msg;

	hv_stimer_build_message(index, expiration, now, &msg);
	if (slot_put(p, v, sint, &msg, waiting(v, sint) > 0) != SLOT_WRITTEN)
		return false;
	sint_raise(p, vp, sint);
	return true;
}

/* ---- host side ---- */

int hv_synic_post(struct hv_partition *p, uint32_t vp, uint32_t sint, uint32_t message_type,
		  const void *payload, uint32_t payload_size, uint64_t sender)
{
	if (vp >= p->cfg.vp_count || sint >= HV_SYNIC_SINT_COUNT ||
	    message_type == HVMSG_NONE || payload_size > HV_MESSAGE_PAYLOAD_BYTES ||
	    (payload_size && !payload))
		return -EINVAL;

	struct hv_message msg;
	memset(&msg, 0, sizeof(msg));
	msg.header.message_type = message_type;
	msg.header.payload_size = (uint8_t)payload_size;
	msg.header.sender = sender;
	if (payload_size)
		memcpy(msg.payload, payload, payload_size);

	struct hv_vp *v = &p->vps[vp];
	pthread_mutex_lock(&v->lock);
	int err = queue_push(&v->queue[sint], &msg);
	if (!err)
		sint_flush(p, vp, sint, NULL);
	pthread_mutex_unlock(&v->lock);
	if (err && hv_log_first(p, HV_LOG_QUEUE_FULL))
		hv_log(p, "hv: message queue of VP %u SINT %u full (%d; logged once)", vp, sint,
		       err);
	return err;
}

uint32_t hv_synic_queued(struct hv_partition *p, uint32_t vp, uint32_t sint)
{
	if (vp >= p->cfg.vp_count || sint >= HV_SYNIC_SINT_COUNT)
		return 0;
	pthread_mutex_lock(&p->vps[vp].lock);
	uint32_t count = p->vps[vp].queue[sint].count;
	pthread_mutex_unlock(&p->vps[vp].lock);
	return count;
}

uint64_t hv_synic_taken(struct hv_partition *p, uint32_t vp, uint32_t sint)
{
	if (vp >= p->cfg.vp_count || sint >= HV_SYNIC_SINT_COUNT)
		return 0;
	pthread_mutex_lock(&p->vps[vp].lock);
	uint64_t taken = p->vps[vp].queue[sint].taken;
	pthread_mutex_unlock(&p->vps[vp].lock);
	return taken;
}

/* hv_synic_signal with the VP's lock held. */
static int signal_locked(struct hv_partition *p, uint32_t vp, uint32_t sint, uint32_t flag)
{
	struct hv_vp *v = &p->vps[vp];
	if (!(v->siefp & HV_MSR_PAGE_ENABLE))
		return -ENODEV;
	uint64_t gpa = HV_MSR_PAGE_GPA(v->siefp) + (uint64_t)sint * HV_EVENT_FLAGS_BYTES +
		       (flag / 64) * sizeof(uint64_t);
	uint64_t *word = guest_memory_ptr(p->mem, gpa, sizeof(uint64_t));
	if (!word)
		return -ENODEV;

	/* Bit n of the area is bit n % 64 of little-endian word n / 64, as
	 * the guest's sync_test_and_clear_bit sees it. Only a 0 -> 1 change
	 * needs an interrupt: otherwise the guest has yet to scan it. */
	uint64_t bit = 1ull << (flag % 64);
	uint64_t old = __atomic_fetch_or(word, bit, __ATOMIC_SEQ_CST);
	if (!(old & bit) && !(v->sint[sint] & HV_SINT_MASKED))
		sint_raise(p, vp, sint);
	return 0;
}

int hv_synic_signal(struct hv_partition *p, uint32_t vp, uint32_t sint, uint32_t flag)
{
	if (vp >= p->cfg.vp_count || sint >= HV_SYNIC_SINT_COUNT || flag >= HV_EVENT_FLAGS_COUNT)
		return -EINVAL;
	pthread_mutex_lock(&p->vps[vp].lock);
	int err = signal_locked(p, vp, sint, flag);
	pthread_mutex_unlock(&p->vps[vp].lock);
	return err;
}

int hv_synic_assert(struct hv_partition *p, uint32_t vp, uint32_t sint)
{
	if (vp >= p->cfg.vp_count || sint >= HV_SYNIC_SINT_COUNT)
		return -EINVAL;
	int err = -ENODEV;
	pthread_mutex_lock(&p->vps[vp].lock);
	if (!(p->vps[vp].sint[sint] & HV_SINT_MASKED)) {
		sint_raise(p, vp, sint);
		err = 0;
	}
	pthread_mutex_unlock(&p->vps[vp].lock);
	return err;
}

/* ---- MSRs ---- */

int hv_synic_msr_read(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t *value)
{
	const struct hv_vp *v = &p->vps[vp];

	switch (msr) {
	case HV_MSR_SCONTROL:
		*value = v->scontrol;
		return 0;
	case HV_MSR_SVERSION:
		*value = HV_SYNIC_VERSION;
		return 0;
	case HV_MSR_SIEFP:
		*value = v->siefp;
		return 0;
	case HV_MSR_SIMP:
		*value = v->simp;
		return 0;
	case HV_MSR_EOM:
		*value = 0;
		return 0;
	default:
		if (msr >= HV_MSR_SINT0 && msr <= HV_MSR_SINT15) {
			*value = v->sint[msr - HV_MSR_SINT0];
			return 0;
		}
		return -EINVAL;
	}
}

/* SIEFP and SIMP: enabling one clears its page, as KVM does
 * (synic_set_msr), so no stale flags or messages show up. */
static int page_msr_write(struct hv_partition *p, uint64_t *reg, uint64_t value)
{
	if (value & HV_MSR_PAGE_ENABLE) {
		uint8_t *page = guest_memory_page(p->mem, HV_MSR_PAGE_GPA(value));
		if (!page)
			return -EINVAL;
		memset(page, 0, HV_PAGE_SIZE);
	}
	*reg = value;
	return 0;
}

static int sint_write(struct hv_partition *p, uint32_t vp, uint32_t sint, uint64_t value,
		      uint64_t now)
{
	/* Vectors 0..15 are exceptions (KVM synic_set_sint); a masked SINT
	 * may hold anything, as Linux's reset value 0x10000 does. */
	if (!(value & HV_SINT_MASKED) && (value & HV_SINT_VECTOR_MASK) < HV_SYNIC_FIRST_VALID_VECTOR)
		return -EINVAL;
	p->vps[vp].sint[sint] = value;
	if (!(value & HV_SINT_MASKED))
		sint_flush(p, vp, sint, &now);
	return 0;
}

int hv_synic_msr_write(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t value,
		       uint64_t now)
{
	struct hv_vp *v = &p->vps[vp];
	int err;

	switch (msr) {
	case HV_MSR_SCONTROL:
		if (p->cfg.log_milestones && (value & HV_SCONTROL_ENABLE) &&
		    !(v->scontrol & HV_SCONTROL_ENABLE))
			hv_log(p, "hv: SynIC enabled on VP %u", vp);
		v->scontrol = value;
		if (value & HV_SCONTROL_ENABLE)
			flush_all(p, vp, now);
		return 0;
	case HV_MSR_SIEFP:
		return page_msr_write(p, &v->siefp, value);
	case HV_MSR_SIMP:
		err = page_msr_write(p, &v->simp, value);
		if (!err && (value & HV_MSR_PAGE_ENABLE))
			flush_all(p, vp, now);
		return err;
	case HV_MSR_EOM:
		/* The guest freed a slot that had the pending flag. */
		flush_all(p, vp, now);
		return 0;
	default:
		if (msr >= HV_MSR_SINT0 && msr <= HV_MSR_SINT15)
			return sint_write(p, vp, msr - HV_MSR_SINT0, value, now);
		return -EINVAL; /* SVERSION is read-only */
	}
}
