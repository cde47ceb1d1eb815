/* SPDX-License-Identifier: MIT */
/*
 * Synthetic timers: four per VP, counting reference time. The semantics
 * follow KVM (arch/x86/kvm/hyperv.c: stimer_set_config, stimer_set_count,
 * stimer_start, stimer_expiration) and what Linux programs
 * (drivers/clocksource/hyperv_timer.c: stimer0 one-shot with auto-enable,
 * COUNT = absolute reference time, direct mode or message mode).
 *
 * There is no clock here: the backend calls hv_scan(now) when the deadline
 * hv_scan last returned has passed, or after ops->timers_changed.
 */
#include <errno.h>
#include <string.h>

#include "hv_internal.h"

static uint32_t timer_sint(uint64_t config)
{
	return (uint32_t)((config & HV_STIMER_SINT_MASK) >> HV_STIMER_SINT_SHIFT);
}

static uint64_t add_saturated(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

int hv_stimer_pending_sint(const struct hv_stimer *t)
{
	if (!t->message_pending || !(t->config & HV_STIMER_ENABLE) ||
	    (t->config & HV_STIMER_DIRECT_MODE))
		return -1;
	return (int)timer_sint(t->config);
}

void hv_stimer_build_message(uint32_t index, uint64_t expiration, uint64_t now,
			     struct hv_message *msg)
{
	struct hv_timer_message_payload payload = {
		.timer_index = index,
		.reserved = 0,
		.expiration_time = expiration,
		.delivery_time = now,
	};
	memset(msg, 0, sizeof(*msg));
	msg->header.message_type = HVMSG_TIMER_EXPIRED;
	msg->header.payload_size = sizeof(payload);
	memcpy(msg->payload, &payload, sizeof(payload));
}

void hv_stimer_message_delivered(struct hv_stimer *t)
{
	t->message_pending = false;
	t->config &= ~HV_STIMER_ENABLE;
}

/* Forgets any deadline and any undelivered message (KVM stimer_cleanup). */
static void stimer_stop(struct hv_stimer *t)
{
	t->armed = false;
	t->message_pending = false;
}

/*
 * A periodic timer's period: COUNT, but not below HV_STIMER_MIN_PERIOD. A
 * shorter one (the TLFS sets no floor) would have the host expire it
 * millions of times a second, under the VP's lock; KVM bounds the
 * LAPIC's periodic timer the same way (min_timer_period_us, 200 us). The
 * register keeps the guest's value.
 */
static uint64_t stimer_period(const struct hv_stimer *t)
{
	return t->count < HV_STIMER_MIN_PERIOD ? HV_STIMER_MIN_PERIOD : t->count;
}

/*
 * Arms an enabled timer with a non-zero count. One-shot: COUNT is the
 * absolute expiration; one already past expires at the next hv_scan (TLFS
 * 15.3.1, "it will expire immediately"). Periodic: COUNT is the period.
 */
static void stimer_start(struct hv_partition *p, struct hv_stimer *t, uint64_t now)
{
	if (!(t->config & HV_STIMER_ENABLE) || t->count == 0)
		return;
	bool periodic = t->config & HV_STIMER_PERIODIC;
	if (periodic && t->count < HV_STIMER_MIN_PERIOD) {
		hv_count(&p->short_stimer_periods);
		if (hv_log_first(p, HV_LOG_SHORT_STIMER_PERIOD))
			hv_log(p, "hv: a periodic stimer of %llu x 100 ns runs every %u x 100 ns "
				  "(the minimum)",
			       (unsigned long long)t->count, HV_STIMER_MIN_PERIOD);
	}
	t->armed = true;
	t->expiration = periodic ? add_saturated(now, stimer_period(t)) : t->count;
	if (p->ops.timers_changed)
		p->ops.timers_changed(p->ctx);
}

static int config_write(struct hv_partition *p, struct hv_stimer *t, uint64_t value,
			uint64_t now)
{
	if ((value & HV_STIMER_DIRECT_MODE) && !(p->cfg.features & HV_OFFER_STIMER_DIRECT))
		return -EINVAL;
	uint64_t old = t->config;
	stimer_stop(t);
	/* KVM's rule: re-writing an enabled timer into message mode on SINT 0
	 * (not a usable SINT for timers) disables it. */
	if ((old & HV_STIMER_ENABLE) && !(value & HV_STIMER_DIRECT_MODE) && timer_sint(value) == 0)
		value &= ~HV_STIMER_ENABLE;
	t->config = value;
	stimer_start(p, t, now);
	return 0;
}

static void count_write(struct hv_partition *p, struct hv_stimer *t, uint64_t value,
			uint64_t now)
{
	stimer_stop(t);
	t->count = value;
	if (value == 0)
		t->config &= ~HV_STIMER_ENABLE;
	else if (t->config & HV_STIMER_AUTO_ENABLE)
		t->config |= HV_STIMER_ENABLE;
	stimer_start(p, t, now);
}

int hv_stimer_msr_read(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t *value)
{
	uint32_t n = msr - HV_MSR_STIMER0_CONFIG;
	const struct hv_stimer *t = &p->vps[vp].stimer[n / 2];
	*value = (n & 1) ? t->count : t->config;
	return 0;
}

int hv_stimer_msr_write(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t value,
			uint64_t now)
{
	uint32_t n = msr - HV_MSR_STIMER0_CONFIG;
	struct hv_stimer *t = &p->vps[vp].stimer[n / 2];
	if (n & 1) {
		count_write(p, t, value, now);
		return 0;
	}
	int err = config_write(p, t, value, now);
	if (!err && p->cfg.log_milestones && !t->mode_logged &&
	    (value & (HV_STIMER_ENABLE | HV_STIMER_AUTO_ENABLE))) {
		t->mode_logged = true;
		hv_log(p, "hv: stimer%u on VP %u in %s mode", n / 2, vp,
		       (value & HV_STIMER_DIRECT_MODE) ? "direct" : "message");
	}
	return err;
}

/*
 * The timer fired. Direct mode raises its vector; message mode puts
 * HVMSG_TIMER_EXPIRED in its SINT's slot. A one-shot timer is done once
 * that happened; if the slot was busy its message waits for the EOM. A
 * periodic timer never piles up ticks: a tick that finds the slot busy is
 * dropped (KVM's no_retry) and the next one is the next period boundary
 * after now, however many were missed (lazy).
 */
static void stimer_expire(struct hv_partition *p, uint32_t vp, uint32_t index, uint64_t now)
{
	struct hv_stimer *t = &p->vps[vp].stimer[index];
	bool delivered = true;

	t->armed = false;
	if (t->config & HV_STIMER_DIRECT_MODE) {
		uint8_t vector = (uint8_t)((t->config & HV_STIMER_VECTOR_MASK) >>
					   HV_STIMER_VECTOR_SHIFT);
		if (vector >= HV_SYNIC_FIRST_VALID_VECTOR)
			hv_inject(p, vp, vector, false);
		else if (hv_log_first(p, HV_LOG_BAD_STIMER_VECTOR))
			hv_log(p, "hv: VP %u stimer%u: direct-mode vector %u is not an interrupt",
			       vp, index, vector);
	} else {
		delivered = hv_synic_timer_message(p, vp, index, t->expiration, now);
	}

	if (t->config & HV_STIMER_PERIODIC) {
		uint64_t period = stimer_period(t);
		uint64_t missed = (now - t->expiration) % period;
		t->expiration = add_saturated(now, period - missed);
		t->armed = true;
	} else if (delivered) {
		t->config &= ~HV_STIMER_ENABLE;
	} else {
		t->message_pending = true;
		t->pending_expiration = t->expiration;
	}
}

uint64_t hv_scan(struct hv_partition *p, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t vp = 0; vp < p->cfg.vp_count; vp++) {
		pthread_mutex_lock(&p->vps[vp].lock);
		for (uint32_t i = 0; i < HV_STIMER_COUNT; i++) {
			struct hv_stimer *t = &p->vps[vp].stimer[i];
			if (t->armed && now >= t->expiration)
				stimer_expire(p, vp, i, now);
			if (t->armed && t->expiration < next)
				next = t->expiration;
		}
		pthread_mutex_unlock(&p->vps[vp].lock);
	}
	return next;
}
