/* SPDX-License-Identifier: MIT */
/*
 * The hypervisor interface's state as a record (hv.h, "State"): what a
 * snapshot, a restore or a migration carries of it. Layout, all fields
 * little-endian:
 *
 *   header  magic "HVKITHV\0", u32 version, u32 VP count, u32 body
 *           length, u32 CRC-32 (zlib's) of the body
 *   body    the partition: TSC frequency, scale and offset, guest OS id,
 *           hypercall MSR, reference TSC MSR and page sequence, invariant
 *           TSC control, crash P0..P4;
 *           per VP: VP assist page, SCONTROL, SIMP, SIEFP, SINT0..15; per
 *           timer config, count, armed, message pending, expiration and
 *           pending expiration; per SINT its queued messages (a count,
 *           then each whole 256-byte message)
 *
 * Guest RAM (the SynIC pages, the hypercall page, the TSC page) is not in
 * it: it travels with guest memory. Neither are the connections, which
 * their owners add again. Loading checks everything before it changes
 * anything: a record that is truncated, corrupt, of another version or
 * another VP count, or holds a value the guest could not have set, is
 * refused whole.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv_internal.h"
#include "record.h"

static const char state_magic[RECORD_MAGIC_BYTES] = "HVKITHV";
#define STATE_VERSION 1u

/* ---- writing ---- */

static void put_partition(struct record_writer *w, const struct hv_partition *p)
{
	record_put64(w, p->tsc_hz);
	record_put64(w, p->tsc_scale);
	record_put64(w, p->tsc_offset);
	record_put64(w, p->guest_os_id);
	record_put64(w, p->hypercall_msr);
	record_put64(w, p->reference_tsc_msr);
	record_put64(w, p->tsc_invariant_control);
	for (int i = 0; i < 5; i++)
		record_put64(w, p->crash_params[i]);
	record_put64(w, 0); /* reserved */
	record_put32(w, p->tsc_sequence);
}

static void put_vp(struct record_writer *w, const struct hv_vp *v)
{
	record_put64(w, v->vp_assist_page);
	record_put64(w, v->scontrol);
	record_put64(w, v->simp);
	record_put64(w, v->siefp);
	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++)
		record_put64(w, v->sint[s]);
	for (uint32_t i = 0; i < HV_STIMER_COUNT; i++) {
		const struct hv_stimer *t = &v->stimer[i];
		record_put64(w, t->config);
		record_put64(w, t->count);
		record_put8(w, t->armed);
		record_put8(w, t->message_pending);
		record_put64(w, t->expiration);
		record_put64(w, t->pending_expiration);
	}
	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++) {
		const struct hv_msg_queue *q = &v->queue[s];
		record_put32(w, q->count);
		for (uint32_t k = 0; k < q->count; k++)
			record_put(w, &q->items[(q->head + k) & (q->cap - 1)], sizeof(struct hv_message));
	}
}

static void lock_all(struct hv_partition *p)
{
	pthread_mutex_lock(&p->lock);
	for (uint32_t vp = 0; vp < p->cfg.vp_count; vp++)
		pthread_mutex_lock(&p->vps[vp].lock);
}

static void unlock_all(struct hv_partition *p)
{
	for (uint32_t vp = p->cfg.vp_count; vp-- > 0;)
		pthread_mutex_unlock(&p->vps[vp].lock);
	pthread_mutex_unlock(&p->lock);
}

int hv_save(struct hv_partition *p, void *buf, size_t cap, size_t *len)
{
	lock_all(p);
	struct record_writer w = record_writer(buf, cap);
	put_partition(&w, p);
	for (uint32_t vp = 0; vp < p->cfg.vp_count; vp++)
		put_vp(&w, &p->vps[vp]);
	unlock_all(p);
	return record_finish(&w, state_magic, STATE_VERSION, p->cfg.vp_count, len);
}

/* ---- reading ---- */

/* A VP's state as read, checked, not yet in the partition. */
struct loaded_vp {
	struct hv_vp v; /* lock and queues unused */
	uint32_t queued[HV_SYNIC_SINT_COUNT];
	uint32_t cap[HV_SYNIC_SINT_COUNT]; /* a power of two, as a queue's */
	struct hv_message *msgs[HV_SYNIC_SINT_COUNT];
};

struct loaded {
	uint64_t tsc_hz, tsc_scale, tsc_offset;
	uint64_t guest_os_id, hypercall_msr, reference_tsc_msr, tsc_invariant_control;
	uint64_t crash_params[5];
	uint32_t tsc_sequence;
	struct loaded_vp *vps;
};

static bool sint_valid(uint64_t v)
{
	return (v & HV_SINT_MASKED) || (v & HV_SINT_VECTOR_MASK) >= HV_SYNIC_FIRST_VALID_VECTOR;
}

static bool timer_valid(const struct hv_partition *p, const struct hv_stimer *t, uint8_t armed,
			uint8_t pending)
{
	if (armed > 1 || pending > 1)
		return false;
	if ((t->config & HV_STIMER_DIRECT_MODE) && !(p->cfg.features & HV_OFFER_STIMER_DIRECT))
		return false;
	return true;
}

static bool message_valid(const struct hv_message *m)
{
	return m->header.message_type != HVMSG_NONE &&
	       m->header.payload_size <= HV_MESSAGE_PAYLOAD_BYTES;
}

/* 0, -EINVAL for a bad record, -ENOMEM. */
static int read_vp(struct record_reader *r, const struct hv_partition *p, struct loaded_vp *l)
{
	struct hv_vp *v = &l->v;
	v->vp_assist_page = record_get64(r);
	v->scontrol = record_get64(r);
	v->simp = record_get64(r);
	v->siefp = record_get64(r);
	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++) {
		v->sint[s] = record_get64(r);
		if (!sint_valid(v->sint[s]))
			return -EINVAL;
	}
	for (uint32_t i = 0; i < HV_STIMER_COUNT; i++) {
		struct hv_stimer *t = &v->stimer[i];
		t->config = record_get64(r);
		t->count = record_get64(r);
		uint8_t armed = record_get8(r), pending = record_get8(r);
		t->armed = armed;
		t->message_pending = pending;
		t->expiration = record_get64(r);
		t->pending_expiration = record_get64(r);
		if (!timer_valid(p, t, armed, pending))
			return -EINVAL;
	}
	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++) {
		uint32_t n = record_get32(r);
		/* Each message must be there in full before any is allocated. */
		if (r->bad || n > HV_SYNIC_QUEUE_MAX ||
		    (size_t)(r->end - r->p) / sizeof(struct hv_message) < n)
			return -EINVAL;
		l->queued[s] = n;
		if (!n)
			continue;
		uint32_t cap = 4;
		while (cap < n)
			cap *= 2;
		l->cap[s] = cap;
		l->msgs[s] = malloc((size_t)cap * sizeof(struct hv_message));
		if (!l->msgs[s])
			return -ENOMEM;
		for (uint32_t k = 0; k < n; k++) {
			record_get(r, &l->msgs[s][k], sizeof(struct hv_message));
			if (!message_valid(&l->msgs[s][k]))
				return -EINVAL;
		}
	}
	return r->bad ? -EINVAL : 0;
}

static void loaded_free(struct loaded *l, uint32_t vp_count)
{
	for (uint32_t vp = 0; l->vps && vp < vp_count; vp++)
		for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++)
			free(l->vps[vp].msgs[s]);
	free(l->vps);
}

static int read_state(const struct hv_partition *p, struct record_reader *r, struct loaded *l)
{
	l->tsc_hz = record_get64(r);
	l->tsc_scale = record_get64(r);
	l->tsc_offset = record_get64(r);
	l->guest_os_id = record_get64(r);
	l->hypercall_msr = record_get64(r);
	l->reference_tsc_msr = record_get64(r);
	l->tsc_invariant_control = record_get64(r);
	for (int i = 0; i < 5; i++)
		l->crash_params[i] = record_get64(r);
	if (record_get64(r) != 0)
		return -EINVAL; /* reserved */
	l->tsc_sequence = record_get32(r);
	/* The scale must be the frequency's, as hv_set_tsc_frequency makes
	 * it: the TSC page and the counter MSR must keep agreeing. */
	if (r->bad || l->tsc_hz <= HV_REF_TIME_HZ ||
	    l->tsc_scale != (uint64_t)(((unsigned __int128)HV_REF_TIME_HZ << 64) / l->tsc_hz) ||
	    (l->tsc_invariant_control & ~(uint64_t)HV_TSC_INVARIANT_CONTROL_ENABLE))
		return -EINVAL;
	l->vps = calloc(p->cfg.vp_count, sizeof(*l->vps));
	if (!l->vps)
		return -ENOMEM;
	for (uint32_t vp = 0; vp < p->cfg.vp_count; vp++) {
		int err = read_vp(r, p, &l->vps[vp]);
		if (err)
			return err;
	}
	return record_done(r) ? 0 : -EINVAL; /* nothing may follow */
}

/* Moves a checked VP state in, queues and all (l's messages now p's). */
static void commit_vp(struct hv_vp *v, struct loaded_vp *l)
{
	v->vp_assist_page = l->v.vp_assist_page;
	v->scontrol = l->v.scontrol;
	v->simp = l->v.simp;
	v->siefp = l->v.siefp;
	memcpy(v->sint, l->v.sint, sizeof(v->sint));
	for (uint32_t i = 0; i < HV_STIMER_COUNT; i++) {
		struct hv_stimer *t = &v->stimer[i];
		bool logged = t->mode_logged;
		*t = l->v.stimer[i];
		t->mode_logged = logged;
	}
	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++) {
		struct hv_msg_queue *q = &v->queue[s];
		free(q->items);
		q->items = l->msgs[s];
		l->msgs[s] = NULL;
		q->head = 0;
		q->count = l->queued[s];
		q->cap = l->cap[s];
		/* taken counts this partition's deliveries: it goes on. */
	}
}

int hv_load(struct hv_partition *p, const void *buf, size_t len)
{
	struct record_reader r;
	int err = record_open(buf, len, state_magic, STATE_VERSION, p->cfg.vp_count, &r);
	if (err)
		return err;
	struct loaded l = {0};
	err = read_state(p, &r, &l);
	if (err) {
		loaded_free(&l, p->cfg.vp_count);
		return err;
	}
	lock_all(p);
	hv_time_params_set(p, l.tsc_hz, l.tsc_scale, l.tsc_offset);
	p->guest_os_id = l.guest_os_id;
	p->hypercall_msr = l.hypercall_msr;
	p->reference_tsc_msr = l.reference_tsc_msr;
	p->tsc_invariant_control = l.tsc_invariant_control;
	memcpy(p->crash_params, l.crash_params, sizeof(p->crash_params));
	p->tsc_sequence = l.tsc_sequence;
	for (uint32_t vp = 0; vp < p->cfg.vp_count; vp++)
		commit_vp(&p->vps[vp], &l.vps[vp]);
	unlock_all(p);
	loaded_free(&l, p->cfg.vp_count);
	/* Loaded timers may be due sooner than the backend's timer is set. */
	if (p->ops.timers_changed)
		p->ops.timers_changed(p->ctx);
	return 0;
}
