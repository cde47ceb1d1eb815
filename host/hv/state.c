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
#include <zlib.h>

#include "hv_internal.h"

#define STATE_MAGIC "HVKITHV"
#define STATE_VERSION 1u
#define HEADER_BYTES (8 + 4 * 4)

/* ---- writing ---- */

/* Bytes go to buf[len] on while they fit in cap; len counts on past it,
 * so the caller learns the size it needed. */
struct writer {
	uint8_t *buf;
	size_t cap, len;
};

static void put(struct writer *w, const void *v, size_t n)
{
	if (w->len <= w->cap && w->cap - w->len >= n)
		memcpy(w->buf + w->len, v, n);
	w->len += n;
}

static void put8(struct writer *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put32(struct writer *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	put(w, b, 4);
}

static void put64(struct writer *w, uint64_t v)
{
	put32(w, (uint32_t)v);
	put32(w, (uint32_t)(v >> 32));
}

static void put_partition(struct writer *w, const struct hv_partition *p)
{
	put64(w, p->tsc_hz);
	put64(w, p->tsc_scale);
	put64(w, p->tsc_offset);
	put64(w, p->guest_os_id);
	put64(w, p->hypercall_msr);
	put64(w, p->reference_tsc_msr);
	put64(w, p->tsc_invariant_control);
	for (int i = 0; i < 5; i++)
		put64(w, p->crash_params[i]);
	put64(w, 0); /* reserved */
	put32(w, p->tsc_sequence);
}

static void put_vp(struct writer *w, const struct hv_vp *v)
{
	put64(w, v->vp_assist_page);
	put64(w, v->scontrol);
	put64(w, v->simp);
	put64(w, v->siefp);
	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++)
		put64(w, v->sint[s]);
	for (uint32_t i = 0; i < HV_STIMER_COUNT; i++) {
		const struct hv_stimer *t = &v->stimer[i];
		put64(w, t->config);
		put64(w, t->count);
		put8(w, t->armed);
		put8(w, t->message_pending);
		put64(w, t->expiration);
		put64(w, t->pending_expiration);
	}
	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++) {
		const struct hv_msg_queue *q = &v->queue[s];
		put32(w, q->count);
		for (uint32_t k = 0; k < q->count; k++)
			put(w, &q->items[(q->head + k) & (q->cap - 1)], sizeof(struct hv_message));
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
	struct writer w = {buf, cap, HEADER_BYTES};
	put_partition(&w, p);
	for (uint32_t vp = 0; vp < p->cfg.vp_count; vp++)
		put_vp(&w, &p->vps[vp]);
	unlock_all(p);
	size_t body_len = w.len - HEADER_BYTES;
	*len = w.len;
	if (cap < w.len || body_len > UINT32_MAX)
		return -ENOSPC;
	uint8_t *body = (uint8_t *)buf + HEADER_BYTES;
	struct writer h = {buf, HEADER_BYTES, 0};
	put(&h, STATE_MAGIC, 8);
	put32(&h, STATE_VERSION);
	put32(&h, p->cfg.vp_count);
	put32(&h, (uint32_t)body_len);
	put32(&h, (uint32_t)crc32(0, body, (uInt)body_len));
	return 0;
}

/* ---- reading ---- */

struct reader {
	const uint8_t *p, *end;
	bool bad;
};

static void get(struct reader *r, void *v, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		memset(v, 0, n);
		return;
	}
	memcpy(v, r->p, n);
	r->p += n;
}

static uint8_t get8(struct reader *r)
{
	uint8_t v;
	get(r, &v, 1);
	return v;
}

static uint32_t get32(struct reader *r)
{
	uint8_t b[4];
	get(r, b, 4);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get64(struct reader *r)
{
	uint64_t lo = get32(r);
	return lo | (uint64_t)get32(r) << 32;
}

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
static int read_vp(struct reader *r, const struct hv_partition *p, struct loaded_vp *l)
{
	struct hv_vp *v = &l->v;
	v->vp_assist_page = get64(r);
	v->scontrol = get64(r);
	v->simp = get64(r);
	v->siefp = get64(r);
	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++) {
		v->sint[s] = get64(r);
		if (!sint_valid(v->sint[s]))
			return -EINVAL;
	}
	for (uint32_t i = 0; i < HV_STIMER_COUNT; i++) {
		struct hv_stimer *t = &v->stimer[i];
		t->config = get64(r);
		t->count = get64(r);
		uint8_t armed = get8(r), pending = get8(r);
		t->armed = armed;
		t->message_pending = pending;
		t->expiration = get64(r);
		t->pending_expiration = get64(r);
		if (!timer_valid(p, t, armed, pending))
			return -EINVAL;
	}
	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++) {
		uint32_t n = get32(r);
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
			get(r, &l->msgs[s][k], sizeof(struct hv_message));
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

/* The record's header and checksum: 0 and the body, or -EINVAL. */
static int read_header(const struct hv_partition *p, const void *buf, size_t len,
		       struct reader *body)
{
	struct reader r = {buf, (const uint8_t *)buf + len, false};
	char magic[8];
	get(&r, magic, sizeof(magic));
	uint32_t version = get32(&r), vps = get32(&r), body_len = get32(&r), crc = get32(&r);
	if (r.bad || memcmp(magic, STATE_MAGIC, 8) || version != STATE_VERSION ||
	    vps != p->cfg.vp_count || body_len != (size_t)(r.end - r.p) ||
	    crc != (uint32_t)crc32(0, r.p, (uInt)body_len))
		return -EINVAL;
	*body = (struct reader){r.p, r.end, false};
	return 0;
}

static int read_state(const struct hv_partition *p, struct reader *r, struct loaded *l)
{
	l->tsc_hz = get64(r);
	l->tsc_scale = get64(r);
	l->tsc_offset = get64(r);
	l->guest_os_id = get64(r);
	l->hypercall_msr = get64(r);
	l->reference_tsc_msr = get64(r);
	l->tsc_invariant_control = get64(r);
	for (int i = 0; i < 5; i++)
		l->crash_params[i] = get64(r);
	if (get64(r) != 0)
		return -EINVAL; /* reserved */
	l->tsc_sequence = get32(r);
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
	return r->p == r->end ? 0 : -EINVAL; /* nothing may follow */
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
	struct reader r;
	int err = read_header(p, buf, len, &r);
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
