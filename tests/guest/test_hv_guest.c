/* SPDX-License-Identifier: MIT */
/* guest/hv against a scripted fake hypervisor (fake_hv.c), rule by rule. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_hv.h"
#include "hv_guest.h"
#include "hvkit/vmbus.h"

#define SINT2 VMBUS_MESSAGE_SINT
#define MAX_EVENTS 16

enum ev_kind { EV_EVENTS = 1, EV_MESSAGE, EV_TIMER };

struct ev {
	enum ev_kind kind;
	uint32_t vp;
	uint32_t sint;
	struct hv_guest_message msg;
	uint32_t slot_type_seen; /* SIMP slot type when the callback ran */
};

struct fx {
	struct fake_hv f;
	struct hv_guest g;
	struct ev ev[MAX_EVENTS];
	int n;
	/* What the timer callback does to the slot (a host racing us). */
	uint32_t timer_rewrites_type;
};

static struct hv_message *slot_of(struct fx *x, uint32_t vp)
{
	return &x->g.vps[vp].simp->sint_message[SINT2];
}

static struct ev *push(struct fx *x, enum ev_kind kind, uint32_t vp)
{
	assert_true(x->n < MAX_EVENTS);
	struct ev *e = &x->ev[x->n++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->vp = vp;
	if (x->g.vps[vp].simp)
		e->slot_type_seen = slot_of(x, vp)->header.message_type;
	return e;
}

static void on_message(void *arg, uint32_t vp, uint32_t sint, const struct hv_guest_message *m)
{
	struct ev *e = push(arg, EV_MESSAGE, vp);
	e->sint = sint;
	e->msg = *m;
}

static void on_events(void *arg, uint32_t vp, uint32_t sint)
{
	push(arg, EV_EVENTS, vp)->sint = sint;
}

static void on_timer(void *arg, uint32_t vp)
{
	struct fx *x = arg;
	push(x, EV_TIMER, vp);
	if (x->timer_rewrites_type && x->g.vps[vp].simp)
		slot_of(x, vp)->header.message_type = x->timer_rewrites_type;
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	if (!x)
		return -1;
	fake_hv_init(&x->f);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	assert_int_equal(x->f.lock_errors, 0);
	fake_hv_destroy(&x->f);
	free(x);
	return 0;
}

static int init_default(struct fx *x)
{
	struct hv_guest_config cfg = {.vp_count = FAKE_MAX_VPS};
	int err = hv_guest_init(&x->g, &x->f.port, &cfg);
	if (!err)
		hv_guest_set_callbacks(&x->g, on_message, on_events, on_timer, x);
	return err;
}

/* init, then vp_init on VP vp. */
static void online(struct fx *x, uint32_t vp)
{
	assert_int_equal(init_default(x), 0);
	x->f.current_vp = vp;
	assert_int_equal(hv_guest_vp_init(&x->g), 0);
}

/* ---- detection ---- */

static void detect_fills_features(void **state)
{
	struct fx *x = *state;
	struct hv_guest_features ft;

	x->f.hv_leaf[4][0] = HV_HINT_DEPRECATING_AEOI | HV_HINT_RELAXED_TIMING;
	x->f.hv_leaf[5][0] = 240;
	assert_int_equal(hv_guest_detect(&x->f.port, &ft), 0);
	assert_int_equal(ft.max_leaf, 0x4000000A);
	assert_int_equal(ft.features, x->f.hv_leaf[3][0]);
	assert_int_equal(ft.privileges, HV_PRIV_POST_MESSAGES | HV_PRIV_SIGNAL_EVENTS);
	assert_int_equal(ft.misc, HV_FEAT_X64_GUEST_CRASH_MSRS | HV_FEAT_X64_STIMER_DIRECT_MODE);
	assert_int_equal(ft.hints, HV_HINT_DEPRECATING_AEOI | HV_HINT_RELAXED_TIMING);
	assert_int_equal(ft.max_vps, 240);
}

static void detect_needs_hypervisor_bit(void **state)
{
	struct fx *x = *state;
	struct hv_guest_features ft;

	x->f.cpuid1_ecx = 0;
	memset(&ft, 0xAA, sizeof(ft));
	assert_int_equal(hv_guest_detect(&x->f.port, &ft), -ENODEV);
	assert_int_equal(ft.max_leaf, 0);
	assert_int_equal(ft.features, 0);
}

static void detect_needs_vendor(void **state)
{
	struct fx *x = *state;
	struct hv_guest_features ft;

	for (int reg = 1; reg <= 3; reg++) {
		fake_hv_init(&x->f);
		x->f.hv_leaf[0][reg] ^= 0x20; /* one letter's case */
		assert_int_equal(hv_guest_detect(&x->f.port, &ft), -ENODEV);
		assert_int_equal(ft.features, 0);
	}
	/* KVM's signature is not Hyper-V's. */
	fake_hv_init(&x->f);
	memcpy(&x->f.hv_leaf[0][1], "KVMKVMKVM\0\0\0", 12);
	assert_int_equal(hv_guest_detect(&x->f.port, &ft), -ENODEV);
}

static void detect_checks_max_leaf(void **state)
{
	struct fx *x = *state;
	struct hv_guest_features ft;
	static const struct {
		uint32_t max;
		int want;
	} cases[] = {
		{0x40000004u, -ENODEV}, {0x40000005u, 0}, {0x4000FFFFu, 0},
		{0x40010000u, -ENODEV}, {0, -ENODEV},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		x->f.hv_leaf[0][0] = cases[i].max;
		assert_int_equal(hv_guest_detect(&x->f.port, &ft), cases[i].want);
		assert_int_equal(ft.max_leaf, cases[i].max);
	}
}

static void detect_needs_hypercall_and_vp_index(void **state)
{
	struct fx *x = *state;
	struct hv_guest_features ft;
	uint32_t all = x->f.hv_leaf[3][0];

	x->f.hv_leaf[3][0] = all & ~HV_FEAT_HYPERCALL_MSRS;
	assert_int_equal(hv_guest_detect(&x->f.port, &ft), -ENODEV);
	assert_int_equal(ft.features, all & ~HV_FEAT_HYPERCALL_MSRS); /* still reported */
	x->f.hv_leaf[3][0] = all & ~HV_FEAT_VP_INDEX_MSR;
	assert_int_equal(hv_guest_detect(&x->f.port, &ft), -ENODEV);
	x->f.hv_leaf[3][0] = HV_FEAT_HYPERCALL_MSRS | HV_FEAT_VP_INDEX_MSR;
	assert_int_equal(hv_guest_detect(&x->f.port, &ft), 0);
}

/* ---- init ---- */

static void init_guest_os_id_and_hypercall_page(void **state)
{
	struct fx *x = *state;

	assert_int_equal(init_default(x), 0);
	/* The guest OS id comes first, then the hypercall page. */
	assert_int_equal(x->f.writes[0].msr, HV_MSR_GUEST_OS_ID);
	assert_int_equal(x->f.writes[0].value, 0x8048000001000000ull);
	assert_int_equal(HV_GUEST_OS_ID_HVKIT, 0x8048000001000000ull);
	assert_int_equal(x->f.writes[1].msr, HV_MSR_HYPERCALL);

	assert_non_null(x->g.hypercall_page);
	uint64_t gpa = fake_gpa(&x->f, x->g.hypercall_page);
	assert_int_not_equal(gpa, HV_GPA_INVALID);
	assert_int_equal(gpa & 0xFFF, 0);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_HYPERCALL), gpa | 1);
	assert_int_equal(fake_write_count(&x->f, HV_MSR_HYPERCALL), 1);
}

static void init_uses_configured_os_id(void **state)
{
	struct fx *x = *state;
	struct hv_guest_config cfg = {.guest_os_id = 0x8100000000060100ull};

	assert_int_equal(hv_guest_init(&x->g, &x->f.port, &cfg), 0);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_GUEST_OS_ID), 0x8100000000060100ull);
}

static void init_fails_if_hypercall_not_enabled(void **state)
{
	struct fx *x = *state;

	x->f.hypercall_ignores_enable = true;
	assert_int_equal(init_default(x), -EIO);
	assert_int_equal(x->f.live_allocs, 0);
	/* hyperv_init()'s clean-up: the guest OS id is withdrawn. */
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_GUEST_OS_ID), 0);
}

static void init_fails_if_msr_refused(void **state)
{
	struct fx *x = *state;
	static const uint32_t msrs[] = {HV_MSR_GUEST_OS_ID, HV_MSR_HYPERCALL, HV_MSR_REFERENCE_TSC,
					HV_MSR_TSC_INVARIANT_CONTROL};

	for (size_t i = 0; i < sizeof(msrs) / sizeof(msrs[0]); i++) {
		fake_hv_destroy(&x->f);
		fake_hv_init(&x->f);
		x->f.refuse_write[0] = msrs[i];
		assert_int_equal(init_default(x), -EIO);
		assert_int_equal(x->f.live_allocs, 0);
	}
}

static void init_fails_without_memory(void **state)
{
	struct fx *x = *state;

	x->f.alloc_fail_after = 0;
	assert_int_equal(init_default(x), -ENOMEM);
	fake_hv_init(&x->f);
	x->f.alloc_fail_after = 1; /* hypercall page yes, TSC page no */
	assert_int_equal(init_default(x), -ENOMEM);
	assert_int_equal(x->f.live_allocs, 0);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_HYPERCALL) & 1, 0);
}

static void init_needs_hyperv(void **state)
{
	struct fx *x = *state;

	x->f.cpuid1_ecx = 0;
	assert_int_equal(init_default(x), -ENODEV);
	assert_int_equal(x->f.write_count, 0);
}

static void init_rejects_bad_config(void **state)
{
	struct fx *x = *state;
	struct hv_guest_config cfg = {.vp_count = HV_GUEST_MAX_VPS + 1};

	assert_int_equal(hv_guest_init(&x->g, &x->f.port, &cfg), -EINVAL);
	cfg = (struct hv_guest_config){.sint_vector = 15};
	assert_int_equal(hv_guest_init(&x->g, &x->f.port, &cfg), -EINVAL);
	assert_int_equal(x->f.write_count, 0);
}

static void init_tsc_page_when_offered(void **state)
{
	struct fx *x = *state;

	assert_int_equal(init_default(x), 0);
	assert_non_null(x->g.tsc_page);
	uint64_t gpa = fake_gpa(&x->f, x->g.tsc_page);
	assert_int_equal(gpa & 0xFFF, 0);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_REFERENCE_TSC), gpa | 1);
	assert_int_not_equal(gpa, fake_gpa(&x->f, x->g.hypercall_page));
}

static void init_no_tsc_page_when_not_offered(void **state)
{
	struct fx *x = *state;

	x->f.hv_leaf[3][0] &= ~HV_FEAT_REFERENCE_TSC_MSR;
	assert_int_equal(init_default(x), 0);
	assert_null(x->g.tsc_page);
	assert_int_equal(fake_write_count(&x->f, HV_MSR_REFERENCE_TSC), 0);
	assert_int_equal(x->f.live_allocs, 1); /* the hypercall page only */
}

static void init_invariant_tsc(void **state)
{
	struct fx *x = *state;

	assert_int_equal(init_default(x), 0);
	assert_int_equal(fake_write_count(&x->f, HV_MSR_TSC_INVARIANT_CONTROL), 1);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_TSC_INVARIANT_CONTROL), 1);

	fake_hv_destroy(&x->f);
	fake_hv_init(&x->f);
	x->f.hv_leaf[3][0] &= ~HV_FEAT_TSC_INVARIANT;
	assert_int_equal(init_default(x), 0);
	assert_int_equal(fake_write_count(&x->f, HV_MSR_TSC_INVARIANT_CONTROL), 0);
}

static void init_stimer_mode(void **state)
{
	struct fx *x = *state;
	struct hv_guest_config prefer = {.prefer_message_mode = true};

	assert_int_equal(init_default(x), 0);
	assert_int_equal(x->g.stimer_mode, HV_STIMER_MODE_DIRECT);
	fake_hv_destroy(&x->f);

	fake_hv_init(&x->f);
	assert_int_equal(hv_guest_init(&x->g, &x->f.port, &prefer), 0);
	assert_int_equal(x->g.stimer_mode, HV_STIMER_MODE_MESSAGE);
	fake_hv_destroy(&x->f);

	fake_hv_init(&x->f);
	x->f.hv_leaf[3][3] &= ~HV_FEAT_X64_STIMER_DIRECT_MODE;
	assert_int_equal(init_default(x), 0);
	assert_int_equal(x->g.stimer_mode, HV_STIMER_MODE_MESSAGE);
	fake_hv_destroy(&x->f);

	fake_hv_init(&x->f);
	x->f.hv_leaf[3][0] &= ~HV_FEAT_STIMER_MSRS;
	assert_int_equal(init_default(x), 0);
	assert_int_equal(x->g.stimer_mode, HV_STIMER_MODE_NONE);
}

/* ---- vp_init / vp_exit ---- */

static void vp_init_programs_synic(void **state)
{
	struct fx *x = *state;

	online(x, 1);
	struct hv_guest_vp *v = &x->g.vps[1];
	assert_true(v->online);
	assert_int_equal(v->vp_index, 101);
	assert_non_null(v->simp);
	assert_non_null(v->siefp);
	assert_non_null(v->post_page);
	assert_non_null(v->post_lock);

	uint64_t simp = fake_gpa(&x->f, v->simp), siefp = fake_gpa(&x->f, v->siefp);
	assert_int_equal(simp & 0xFFF, 0);
	assert_int_equal(siefp & 0xFFF, 0);
	assert_int_equal(fake_msr(&x->f, 1, HV_MSR_SIMP), simp | 1);
	assert_int_equal(fake_msr(&x->f, 1, HV_MSR_SIEFP), siefp | 1);
	/* Vector 0xF3, unmasked, auto-EOI (no deprecation hint). */
	assert_int_equal(fake_msr(&x->f, 1, HV_MSR_SINT(SINT2)), 0xF3 | HV_SINT_AUTO_EOI);
	assert_int_equal(fake_msr(&x->f, 1, HV_MSR_SCONTROL), HV_SCONTROL_ENABLE);
	/* Other SINTs untouched; other VPs untouched. */
	assert_int_equal(fake_msr(&x->f, 1, HV_MSR_SINT(0)), HV_SINT_MASKED);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_SIMP), 0);
	/* hv_synic_enable_regs() order. */
	int a = fake_write_index(&x->f, HV_MSR_SIMP, 0);
	int b = fake_write_index(&x->f, HV_MSR_SIEFP, 0);
	int c = fake_write_index(&x->f, HV_MSR_SINT(SINT2), 0);
	int d = fake_write_index(&x->f, HV_MSR_SCONTROL, 0);
	assert_true(a >= 0 && a < b && b < c && c < d);
	for (int i = a; i <= d; i++)
		assert_int_equal(x->f.writes[i].vp, 1);
	/* Handlers: the SINT vector and, in direct mode, the stimer vector. */
	assert_non_null(x->f.handlers[0xF3].fn);
	assert_non_null(x->f.handlers[HV_STIMER0_DIRECT_VECTOR].fn);
	/* No timer is armed until asked. */
	assert_int_equal(fake_write_count(&x->f, HV_MSR_STIMER0_CONFIG), 0);
}

static void vp_init_aeoi_follows_hint(void **state)
{
	struct fx *x = *state;
	struct hv_guest_config cfg = {.sint_vector = 0x51, .prefer_message_mode = true};

	x->f.hv_leaf[4][0] = HV_HINT_DEPRECATING_AEOI;
	/* A stale SINT with polling set and auto-EOI on: polling is kept. */
	fake_set_msr(&x->f, 0, HV_MSR_SINT(SINT2),
		     HV_SINT_MASKED | HV_SINT_AUTO_EOI | HV_SINT_POLLING | 0x22);
	assert_int_equal(hv_guest_init(&x->g, &x->f.port, &cfg), 0);
	assert_int_equal(hv_guest_vp_init(&x->g), 0);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_SINT(SINT2)), 0x51 | HV_SINT_POLLING);
	assert_non_null(x->f.handlers[0x51].fn);
	assert_null(x->f.handlers[0xF3].fn);
	/* Message mode: no direct timer vector. */
	assert_null(x->f.handlers[HV_STIMER0_DIRECT_VECTOR].fn);
}

static void vp_init_twice_is_refused(void **state)
{
	struct fx *x = *state;

	online(x, 0);
	assert_int_equal(hv_guest_vp_init(&x->g), -EBUSY);
	x->f.current_vp = FAKE_MAX_VPS; /* beyond vp_count */
	assert_int_equal(hv_guest_vp_init(&x->g), -EINVAL);
}

static void vp_init_msr_refused(void **state)
{
	struct fx *x = *state;
	static const uint32_t msrs[] = {HV_MSR_SIMP, HV_MSR_SIEFP, HV_MSR_SINT(SINT2),
					HV_MSR_SCONTROL};

	assert_int_equal(init_default(x), 0);
	uint32_t base = x->f.live_allocs;
	for (size_t i = 0; i < sizeof(msrs) / sizeof(msrs[0]); i++) {
		x->f.refuse_write[0] = msrs[i];
		assert_int_equal(hv_guest_vp_init(&x->g), -EIO);
		assert_false(x->g.vps[0].online);
		assert_null(x->g.vps[0].simp);
		assert_int_equal(x->f.live_allocs, base);
		assert_int_equal(x->f.locks_live, 0);
	}
	x->f.refuse_write[0] = 0;
	x->f.refuse_read[0] = HV_MSR_VP_INDEX;
	assert_int_equal(hv_guest_vp_init(&x->g), -EIO);
	x->f.refuse_read[0] = 0;
	x->f.alloc_fail_after = 2;
	assert_int_equal(hv_guest_vp_init(&x->g), -ENOMEM);
	assert_int_equal(x->f.live_allocs, base);
	x->f.alloc_fail_after = -1;
	assert_int_equal(hv_guest_vp_init(&x->g), 0);
}

static void vp_exit_undoes(void **state)
{
	struct fx *x = *state;

	assert_int_equal(init_default(x), 0);
	uint32_t base = x->f.live_allocs;
	x->f.current_vp = 2;
	assert_int_equal(hv_guest_vp_init(&x->g), 0);
	assert_int_equal(hv_guest_timer_start(&x->g, 100), 0);
	uint32_t from = x->f.write_count;

	hv_guest_vp_exit(&x->g);
	assert_false(x->g.vps[2].online);
	assert_null(x->g.vps[2].simp);
	assert_null(x->g.vps[2].siefp);
	assert_null(x->g.vps[2].post_page);
	assert_int_equal(x->f.live_allocs, base);
	assert_int_equal(x->f.locks_live, 0);

	/* stimer0 first (COUNT, CONFIG), then hv_synic_disable_regs() order. */
	static const uint32_t order[] = {HV_MSR_STIMER0_COUNT, HV_MSR_STIMER0_CONFIG,
					 HV_MSR_SINT(SINT2), HV_MSR_SIMP, HV_MSR_SIEFP,
					 HV_MSR_SCONTROL};
	assert_int_equal(x->f.write_count - from, 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(x->f.writes[from + i].msr, order[i]);
		assert_int_equal(x->f.writes[from + i].vp, 2);
	}
	assert_int_equal(fake_msr(&x->f, 2, HV_MSR_STIMER0_CONFIG), 0);
	assert_int_equal(fake_msr(&x->f, 2, HV_MSR_STIMER0_COUNT), 0);
	assert_int_equal(fake_msr(&x->f, 2, HV_MSR_SINT(SINT2)),
			 0xF3 | HV_SINT_AUTO_EOI | HV_SINT_MASKED);
	assert_int_equal(fake_msr(&x->f, 2, HV_MSR_SIMP), 0);
	assert_int_equal(fake_msr(&x->f, 2, HV_MSR_SIEFP), 0);
	assert_int_equal(fake_msr(&x->f, 2, HV_MSR_SCONTROL), 0);

	/* A late interrupt finds nothing to do; a second exit does nothing. */
	assert_true(fake_raise(&x->f, 2, 0xF3));
	assert_int_equal(x->n, 0);
	from = x->f.write_count;
	hv_guest_vp_exit(&x->g);
	assert_int_equal(x->f.write_count, from);
	/* And it can come back. */
	assert_int_equal(hv_guest_vp_init(&x->g), 0);
}

/* ---- the SINT handler ---- */

static void put_message(struct fx *x, uint32_t vp, uint32_t type, uint8_t size, uint8_t flags,
			uint8_t fill)
{
	struct hv_message *m = slot_of(x, vp);
	m->header.payload_size = size;
	m->header.message_flags = flags;
	m->header.sender = 0x1122334455667788ull;
	memset(m->payload, fill, sizeof(m->payload));
	m->header.message_type = type; /* last, as the host does */
}

static void handler_events_before_message(void **state)
{
	struct fx *x = *state;

	online(x, 1);
	put_message(x, 1, HV_MESSAGE_TYPE_VMBUS, 16, 0, 0x5A);
	assert_true(fake_raise(&x->f, 1, 0xF3));
	assert_int_equal(x->n, 2);
	assert_int_equal(x->ev[0].kind, EV_EVENTS);
	assert_int_equal(x->ev[0].vp, 1);
	assert_int_equal(x->ev[0].sint, SINT2);
	/* The message was still in its slot when the events callback ran. */
	assert_int_equal(x->ev[0].slot_type_seen, HV_MESSAGE_TYPE_VMBUS);
	assert_int_equal(x->ev[1].kind, EV_MESSAGE);
}

static void handler_copies_and_releases(void **state)
{
	struct fx *x = *state;
	uint8_t want[HV_MESSAGE_PAYLOAD_BYTES] = {0};

	online(x, 0);
	put_message(x, 0, HV_MESSAGE_TYPE_VMBUS, 40, 0, 0x77);
	assert_true(fake_raise(&x->f, 0, 0xF3));
	assert_int_equal(x->n, 2);
	struct ev *e = &x->ev[1];
	assert_int_equal(e->kind, EV_MESSAGE);
	assert_int_equal(e->vp, 0);
	assert_int_equal(e->sint, SINT2);
	assert_int_equal(e->msg.message_type, HV_MESSAGE_TYPE_VMBUS);
	assert_int_equal(e->msg.payload_size, 40);
	assert_int_equal(e->msg.sender, 0x1122334455667788ull);
	memset(want, 0x77, 40);
	/* Exactly payload_size bytes copied; the rest is not the host's. */
	assert_memory_equal(e->msg.payload, want, sizeof(want));
	/* Released before on_message ran, and without EOM (nothing pending). */
	assert_int_equal(e->slot_type_seen, HVMSG_NONE);
	assert_int_equal(slot_of(x, 0)->header.message_type, HVMSG_NONE);
	assert_int_equal(x->f.eom_count[0], 0);
	assert_int_equal(x->g.vps[0].bad_messages, 0);
}

static void handler_eom_only_when_pending(void **state)
{
	struct fx *x = *state;

	online(x, 3);
	put_message(x, 3, HV_MESSAGE_TYPE_VMBUS, 8, HV_MESSAGE_FLAG_PENDING, 1);
	assert_true(fake_raise(&x->f, 3, 0xF3));
	assert_int_equal(x->f.eom_count[3], 1);
	assert_int_equal(slot_of(x, 3)->header.message_type, HVMSG_NONE);
	int i = fake_write_index(&x->f, HV_MSR_EOM, 0);
	assert_true(i >= 0);
	assert_int_equal(x->f.writes[i].vp, 3);
	assert_int_equal(x->f.writes[i].value, 0);

	put_message(x, 3, HV_MESSAGE_TYPE_VMBUS, 8, 0, 1);
	assert_true(fake_raise(&x->f, 3, 0xF3));
	assert_int_equal(x->f.eom_count[3], 1);

	/* An interrupt with an empty slot: events only, no EOM. */
	x->n = 0;
	assert_true(fake_raise(&x->f, 3, 0xF3));
	assert_int_equal(x->n, 1);
	assert_int_equal(x->ev[0].kind, EV_EVENTS);
	assert_int_equal(x->f.eom_count[3], 1);
}

static void handler_keeps_a_replaced_slot(void **state)
{
	struct fx *x = *state;

	/* The host puts a new message in the slot while we handle the timer:
	 * the compare-and-swap must fail, the new message stays, no EOM. */
	online(x, 0);
	x->timer_rewrites_type = HV_MESSAGE_TYPE_VMBUS;
	put_message(x, 0, HVMSG_TIMER_EXPIRED, 24, HV_MESSAGE_FLAG_PENDING, 0);
	assert_true(fake_raise(&x->f, 0, 0xF3));
	assert_int_equal(slot_of(x, 0)->header.message_type, HV_MESSAGE_TYPE_VMBUS);
	assert_int_equal(x->f.eom_count[0], 0);
}

static void handler_oversized_payload(void **state)
{
	struct fx *x = *state;

	online(x, 0);
	put_message(x, 0, HV_MESSAGE_TYPE_VMBUS, 241, HV_MESSAGE_FLAG_PENDING, 0xEE);
	assert_true(fake_raise(&x->f, 0, 0xF3));
	assert_int_equal(x->g.vps[0].bad_messages, 1);
	assert_int_equal(x->f.log_count, 1);
	assert_int_equal(x->n, 2);
	struct ev *e = &x->ev[1];
	assert_int_equal(e->kind, EV_MESSAGE);
	assert_int_equal(e->msg.payload_size, 0);
	uint8_t zero[HV_MESSAGE_PAYLOAD_BYTES] = {0};
	assert_memory_equal(e->msg.payload, zero, sizeof(zero));
	/* Still released, EOM as usual. */
	assert_int_equal(slot_of(x, 0)->header.message_type, HVMSG_NONE);
	assert_int_equal(x->f.eom_count[0], 1);

	put_message(x, 0, HV_MESSAGE_TYPE_VMBUS, 255, 0, 0xEE);
	assert_true(fake_raise(&x->f, 0, 0xF3));
	assert_int_equal(x->g.vps[0].bad_messages, 2);
	assert_int_equal(x->f.log_count, 1); /* logged once */

	/* 240 is fine. */
	put_message(x, 0, HV_MESSAGE_TYPE_VMBUS, 240, 0, 0xEE);
	assert_true(fake_raise(&x->f, 0, 0xF3));
	assert_int_equal(x->g.vps[0].bad_messages, 2);
	assert_int_equal(x->ev[x->n - 1].msg.payload_size, 240);
	assert_int_equal(x->ev[x->n - 1].msg.payload[239], 0xEE);
}

static void handler_timer_message(void **state)
{
	struct fx *x = *state;
	struct hv_timer_message_payload t = {0, 0, 1000, 1001};

	online(x, 2);
	struct hv_message *m = slot_of(x, 2);
	memcpy(m->payload, &t, sizeof(t));
	m->header.payload_size = sizeof(t);
	m->header.message_flags = HV_MESSAGE_FLAG_PENDING;
	m->header.message_type = HVMSG_TIMER_EXPIRED;
	assert_true(fake_raise(&x->f, 2, 0xF3));
	assert_int_equal(x->n, 2);
	assert_int_equal(x->ev[0].kind, EV_EVENTS);
	assert_int_equal(x->ev[1].kind, EV_TIMER);
	assert_int_equal(x->ev[1].vp, 2);
	/* Like vmbus_isr(): on_timer runs before the slot is released. */
	assert_int_equal(x->ev[1].slot_type_seen, HVMSG_TIMER_EXPIRED);
	assert_int_equal(m->header.message_type, HVMSG_NONE);
	assert_int_equal(x->f.eom_count[2], 1);
	assert_int_equal(x->g.vps[2].timer_interrupts, 1);
	assert_int_equal(x->g.vps[2].bad_messages, 0);

	/* A short timer message is counted, the tick is not lost. */
	put_message(x, 2, HVMSG_TIMER_EXPIRED, 4, 0, 0);
	assert_true(fake_raise(&x->f, 2, 0xF3));
	assert_int_equal(x->g.vps[2].timer_interrupts, 2);
	assert_int_equal(x->g.vps[2].bad_messages, 1);
	assert_int_equal(x->ev[x->n - 1].kind, EV_TIMER);
}

static void handler_direct_timer(void **state)
{
	struct fx *x = *state;

	online(x, 1);
	assert_true(fake_raise(&x->f, 1, HV_STIMER0_DIRECT_VECTOR));
	assert_int_equal(x->n, 1);
	assert_int_equal(x->ev[0].kind, EV_TIMER);
	assert_int_equal(x->ev[0].vp, 1);
	assert_int_equal(x->g.vps[1].timer_interrupts, 1);
}

/* ---- calls ---- */

static void post_message_input_page(void **state)
{
	struct fx *x = *state;
	uint8_t payload[100];

	online(x, 1);
	for (int i = 0; i < 100; i++)
		payload[i] = (uint8_t)i;
	x->f.hypercall_result = (5ull << 32) | HV_STATUS_INSUFFICIENT_BUFFERS;
	assert_int_equal(hv_guest_post_message(&x->g, 4, HV_MESSAGE_TYPE_VMBUS, payload, 100),
			 HV_STATUS_INSUFFICIENT_BUFFERS);
	assert_int_equal(x->f.call_count, 1);
	struct fake_call *c = &x->f.calls[0];
	assert_int_equal(c->vp, 1);
	assert_int_equal(c->control, HVCALL_POST_MESSAGE);
	assert_int_equal(c->output, 0);
	assert_int_equal(c->input, fake_gpa(&x->f, x->g.vps[1].post_page));
	assert_int_equal(c->input & 0xFFF, 0); /* page aligned: never crosses */
	assert_true(c->input_mapped);

	struct hv_input_post_message in;
	memcpy(&in, c->input_block, sizeof(in));
	assert_int_equal(in.connection_id, 4);
	assert_int_equal(in.reserved, 0);
	assert_int_equal(in.message_type, HV_MESSAGE_TYPE_VMBUS);
	assert_int_equal(in.payload_size, 100);
	assert_memory_equal(in.payload, payload, 100);

	/* Each VP has its own input page. */
	x->f.current_vp = 0;
	assert_int_equal(hv_guest_vp_init(&x->g), 0);
	x->f.hypercall_result = 0;
	assert_int_equal(hv_guest_post_message(&x->g, 1, 1, NULL, 0), HV_STATUS_SUCCESS);
	assert_int_equal(x->f.calls[1].input, fake_gpa(&x->f, x->g.vps[0].post_page));
	assert_int_not_equal(x->f.calls[1].input, x->f.calls[0].input);
}

static void post_message_rejects_big_payload(void **state)
{
	struct fx *x = *state;
	uint8_t payload[241] = {0};

	online(x, 0);
	assert_int_equal(hv_guest_post_message(&x->g, 1, 1, payload, 241),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(hv_guest_post_message(&x->g, 1, 1, NULL, 10),
			 HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(x->f.call_count, 0);
	assert_int_equal(hv_guest_post_message(&x->g, 1, 1, payload, 240), HV_STATUS_SUCCESS);
	assert_int_equal(x->f.call_count, 1);
	/* Not on a VP that is not online. */
	x->f.current_vp = 3;
	assert_int_equal(hv_guest_post_message(&x->g, 1, 1, payload, 1),
			 HV_STATUS_INVALID_PARTITION_STATE);
	assert_int_equal(x->f.call_count, 1);
}

static void signal_event_encoding(void **state)
{
	struct fx *x = *state;

	assert_int_equal(init_default(x), 0);
	x->f.hypercall_result = HV_STATUS_INVALID_CONNECTION_ID;
	assert_int_equal(hv_guest_signal_event(&x->g, 0x00ABCDEF, 0),
			 HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(hv_guest_signal_event(&x->g, 0x12, 0x1234),
			 HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(x->f.call_count, 2);
	assert_int_equal(x->f.calls[0].control, 0x5D | (1ull << 16));
	assert_int_equal(x->f.calls[0].input, 0x00ABCDEF);
	assert_int_equal(x->f.calls[0].output, 0);
	assert_int_equal(x->f.calls[1].input, 0x0000123400000012ull);
}

/* ---- events ---- */

static void take_events_bits(void **state)
{
	struct fx *x = *state;
	uint8_t out[HV_EVENT_FLAGS_BYTES];
	uint8_t want[HV_EVENT_FLAGS_BYTES] = {0};

	online(x, 1);
	uint8_t *flags = x->g.vps[1].siefp->sint_flags[SINT2].flags;
	uint8_t *other = x->g.vps[1].siefp->sint_flags[3].flags;
	flags[0] = 0x06;     /* relids 1, 2 */
	flags[24] = 0x80;    /* relid 199 */
	flags[255] = 0x81;   /* relids 2040, 2047 */
	other[0] = 0xFF;
	memcpy(want, flags, sizeof(want));
	want[100] = 0x10;    /* OR semantics: what is in out stays */

	memset(out, 0, sizeof(out));
	out[100] = 0x10;
	assert_int_equal(hv_guest_take_events(&x->g, SINT2, out), 5);
	assert_memory_equal(out, want, sizeof(want));
	uint8_t zero[HV_EVENT_FLAGS_BYTES] = {0};
	assert_memory_equal(flags, zero, sizeof(zero)); /* taken = cleared */
	assert_int_equal(other[0], 0xFF);               /* another SINT: untouched */

	/* Whole words count every bit. */
	memset(flags + 64, 0xFF, 16);
	memset(out, 0, sizeof(out));
	assert_int_equal(hv_guest_take_events(&x->g, SINT2, out), 128);
	assert_int_equal(out[64], 0xFF);
	assert_int_equal(out[79], 0xFF);
	assert_int_equal(out[80], 0);

	/* Nothing left. */
	memset(out, 0, sizeof(out));
	assert_int_equal(hv_guest_take_events(&x->g, SINT2, out), 0);
	assert_memory_equal(out, zero, sizeof(zero));
	/* Bad SINT, or a VP without SynIC: nothing. */
	assert_int_equal(hv_guest_take_events(&x->g, 16, out), 0);
	x->f.current_vp = 0;
	assert_int_equal(hv_guest_take_events(&x->g, SINT2, out), 0);
}

/* ---- time ---- */

static void set_tsc_page(struct fx *x, uint32_t seq, uint64_t scale, int64_t offset)
{
	x->g.tsc_page->scale = scale;
	x->g.tsc_page->offset = offset;
	x->g.tsc_page->sequence = seq;
}

static void time_from_tsc_page(void **state)
{
	struct fx *x = *state;
	uint64_t t = 0;

	assert_int_equal(init_default(x), 0);
	set_tsc_page(x, 1, 1ull << 62, -100); /* tsc / 4 - 100 */
	x->f.tsc = 4000;
	x->f.ref_time = 777;
	assert_true(hv_guest_time_tsc_page(&x->g, &t));
	assert_int_equal(t, 900);
	assert_int_equal(hv_guest_time(&x->g), 900);

	/* 128-bit product: 2^40 * 0.75 + 5. */
	set_tsc_page(x, 7, 3ull << 62, 5);
	x->f.tsc = 1ull << 40;
	assert_int_equal(hv_guest_time(&x->g), 824633720832ull + 5);

	/* A 2.5 GHz TSC (scale = 2^64 * 10^7 / 2.5e9): 2.5e9 ticks = 1 s. */
	set_tsc_page(x, 2, 0x010624DD2F1A9FBEull, 0);
	x->f.tsc = 2500000000ull;
	assert_int_equal(hv_guest_time(&x->g), 9999999); /* floor of 10^7 - epsilon */
}

static void time_sequence_zero_falls_back(void **state)
{
	struct fx *x = *state;
	uint64_t t = 42;

	assert_int_equal(init_default(x), 0);
	set_tsc_page(x, 0, 1ull << 63, 0);
	x->f.tsc = 1000;
	x->f.ref_time = 123456;
	assert_false(hv_guest_time_tsc_page(&x->g, &t));
	assert_int_equal(hv_guest_time(&x->g), 123456);
	assert_int_equal(hv_guest_time_msr(&x->g), 123456);
	assert_int_equal(x->f.rdtsc_count, 0); /* invalid page: TSC not even read */
}

static void time_retries_when_sequence_moves(void **state)
{
	struct fx *x = *state;

	assert_int_equal(init_default(x), 0);
	set_tsc_page(x, 5, 1ull << 63, 0); /* tsc / 2 */
	x->f.tsc = 1000;
	x->f.bump_sequence = 1;
	x->f.next_scale = 1ull << 62; /* tsc / 4 */
	x->f.next_offset = 10;
	assert_int_equal(hv_guest_time(&x->g), 260);
	assert_int_equal(x->f.rdtsc_count, 2);
	assert_int_equal(x->g.tsc_page->sequence, 6);
}

static void time_never_settling_page_falls_back(void **state)
{
	struct fx *x = *state;
	uint64_t t;

	assert_int_equal(init_default(x), 0);
	set_tsc_page(x, 5, 1ull << 63, 0);
	x->f.bump_sequence = UINT32_MAX;
	x->f.next_scale = 1ull << 63;
	x->f.ref_time = 99;
	assert_false(hv_guest_time_tsc_page(&x->g, &t));
	assert_int_equal(hv_guest_time(&x->g), 99);
}

static void time_without_tsc_page(void **state)
{
	struct fx *x = *state;
	uint64_t t;

	x->f.hv_leaf[3][0] &= ~HV_FEAT_REFERENCE_TSC_MSR;
	assert_int_equal(init_default(x), 0);
	x->f.ref_time = 31337;
	assert_false(hv_guest_time_tsc_page(&x->g, &t));
	assert_int_equal(hv_guest_time(&x->g), 31337);
}

/* ---- stimer0 ---- */

static void timer_direct_mode(void **state)
{
	struct fx *x = *state;

	x->f.hv_leaf[3][0] &= ~HV_FEAT_REFERENCE_TSC_MSR; /* time from the MSR */
	online(x, 1);
	x->f.ref_time = 5000;
	assert_int_equal(hv_guest_timer_start(&x->g, 1000), 0);
	assert_int_equal(fake_write_count(&x->f, HV_MSR_STIMER0_CONFIG), 1);
	/* enable | auto-enable | vector 0xED << 4 | direct */
	assert_int_equal(fake_msr(&x->f, 1, HV_MSR_STIMER0_CONFIG), 0x1ED9);
	assert_int_equal(fake_msr(&x->f, 1, HV_MSR_STIMER0_COUNT), 6000);
	/* CONFIG before COUNT. */
	assert_true(fake_write_index(&x->f, HV_MSR_STIMER0_CONFIG, 0) <
		    fake_write_index(&x->f, HV_MSR_STIMER0_COUNT, 0));

	x->f.ref_time = 7000;
	assert_int_equal(hv_guest_timer_start(&x->g, 1), 0);
	assert_int_equal(fake_write_count(&x->f, HV_MSR_STIMER0_CONFIG), 1); /* once */
	assert_int_equal(fake_msr(&x->f, 1, HV_MSR_STIMER0_COUNT), 7001);
}

static void timer_message_mode(void **state)
{
	struct fx *x = *state;

	x->f.hv_leaf[3][3] &= ~HV_FEAT_X64_STIMER_DIRECT_MODE;
	online(x, 0);
	assert_null(x->f.handlers[HV_STIMER0_DIRECT_VECTOR].fn);
	/* Time from the TSC page this time. */
	set_tsc_page(x, 1, 1ull << 63, 0);
	x->f.tsc = 800;
	assert_int_equal(hv_guest_timer_start(&x->g, 50), 0);
	/* enable | auto-enable | SINT 2 << 16 */
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_STIMER0_CONFIG), 0x20009);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_STIMER0_COUNT), 450);
}

static void timer_stop(void **state)
{
	struct fx *x = *state;

	online(x, 0);
	assert_int_equal(hv_guest_timer_start(&x->g, 10), 0);
	uint32_t from = x->f.write_count;
	hv_guest_timer_stop(&x->g);
	assert_int_equal(x->f.write_count - from, 2);
	assert_int_equal(x->f.writes[from].msr, HV_MSR_STIMER0_COUNT);
	assert_int_equal(x->f.writes[from].value, 0);
	assert_int_equal(x->f.writes[from + 1].msr, HV_MSR_STIMER0_CONFIG);
	assert_int_equal(x->f.writes[from + 1].value, 0);
	/* The next start configures again. */
	assert_int_equal(hv_guest_timer_start(&x->g, 10), 0);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_STIMER0_CONFIG), 0x1ED9);
	assert_int_equal(fake_write_count(&x->f, HV_MSR_STIMER0_CONFIG), 3);
}

static void timer_needs_stimers(void **state)
{
	struct fx *x = *state;

	x->f.hv_leaf[3][0] &= ~HV_FEAT_STIMER_MSRS;
	online(x, 0);
	assert_int_equal(hv_guest_timer_start(&x->g, 10), -ENODEV);
	hv_guest_timer_stop(&x->g);
	assert_int_equal(fake_write_count(&x->f, HV_MSR_STIMER0_CONFIG), 0);
	assert_int_equal(fake_write_count(&x->f, HV_MSR_STIMER0_COUNT), 0);

	/* Refused CONFIG: -EIO. */
	fake_hv_destroy(&x->f);
	fake_hv_init(&x->f);
	online(x, 0);
	x->f.refuse_write[0] = HV_MSR_STIMER0_CONFIG;
	assert_int_equal(hv_guest_timer_start(&x->g, 10), -EIO);
}

/* ---- crash ---- */

static const uint64_t crash_params[5] = {0xDEAD, 0x8048000001000000ull, 0xFFFF800012345678ull,
					 3, 0x7FFE0000};

static void crash_without_message_support(void **state)
{
	struct fx *x = *state;

	assert_int_equal(init_default(x), 0);
	uint32_t from = x->f.write_count;
	assert_int_equal(hv_guest_report_crash(&x->g, crash_params, "boom", 4), 0);
	assert_int_equal(x->f.write_count - from, 6);
	for (uint32_t i = 0; i < 5; i++) {
		assert_int_equal(x->f.writes[from + i].msr, HV_MSR_CRASH_P(i));
		assert_int_equal(x->f.writes[from + i].value, crash_params[i]);
	}
	assert_int_equal(x->f.writes[from + 5].msr, HV_MSR_CRASH_CTL);
	assert_int_equal(x->f.writes[from + 5].value, HV_CRASH_CTL_NOTIFY);
}

static void crash_with_message(void **state)
{
	struct fx *x = *state;
	static char big[5000];

	x->f.crash_ctl_caps = HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG;
	assert_int_equal(init_default(x), 0);
	uint32_t from = x->f.write_count;
	assert_int_equal(hv_guest_report_crash(&x->g, crash_params, "kernel panic", 12), 0);
	assert_int_equal(x->f.write_count - from, 6);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(x->f.writes[from + i].value, crash_params[i]);
	uint64_t gpa = x->f.writes[from + 3].value;
	assert_int_equal(x->f.writes[from + 3].msr, HV_MSR_CRASH_P(3));
	assert_int_equal(gpa & 0xFFF, 0);
	const char *page = fake_gpa_ptr(&x->f, gpa);
	assert_non_null(page);
	assert_memory_equal(page, "kernel panic", 12);
	assert_int_equal(x->f.writes[from + 4].value, 12);
	assert_int_equal(x->f.writes[from + 5].msr, HV_MSR_CRASH_CTL);
	assert_int_equal(x->f.writes[from + 5].value,
			 HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG);

	/* At most a page of message. */
	memset(big, 'x', sizeof(big));
	assert_int_equal(hv_guest_report_crash(&x->g, crash_params, big, sizeof(big)), 0);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_CRASH_P4), 4096);

	/* No message given: a plain notify with the parameters. */
	assert_int_equal(hv_guest_report_crash(&x->g, crash_params, NULL, 0), 0);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_CRASH_P(3)), crash_params[3]);
	assert_int_equal(fake_msr(&x->f, 0, HV_MSR_CRASH_CTL), HV_CRASH_CTL_NOTIFY);
}

static void crash_not_offered(void **state)
{
	struct fx *x = *state;

	x->f.hv_leaf[3][3] &= ~HV_FEAT_X64_GUEST_CRASH_MSRS;
	assert_int_equal(init_default(x), 0);
	uint32_t from = x->f.write_count;
	assert_int_equal(hv_guest_report_crash(&x->g, crash_params, "x", 1), -ENODEV);
	assert_int_equal(x->f.write_count, from);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(detect_fills_features),
		T(detect_needs_hypervisor_bit),
		T(detect_needs_vendor),
		T(detect_checks_max_leaf),
		T(detect_needs_hypercall_and_vp_index),
		T(init_guest_os_id_and_hypercall_page),
		T(init_uses_configured_os_id),
		T(init_fails_if_hypercall_not_enabled),
		T(init_fails_if_msr_refused),
		T(init_fails_without_memory),
		T(init_needs_hyperv),
		T(init_rejects_bad_config),
		T(init_tsc_page_when_offered),
		T(init_no_tsc_page_when_not_offered),
		T(init_invariant_tsc),
		T(init_stimer_mode),
		T(vp_init_programs_synic),
		T(vp_init_aeoi_follows_hint),
		T(vp_init_twice_is_refused),
		T(vp_init_msr_refused),
		T(vp_exit_undoes),
		T(handler_events_before_message),
		T(handler_copies_and_releases),
		T(handler_eom_only_when_pending),
		T(handler_keeps_a_replaced_slot),
		T(handler_oversized_payload),
		T(handler_timer_message),
		T(handler_direct_timer),
		T(post_message_input_page),
		T(post_message_rejects_big_payload),
		T(signal_event_encoding),
		T(take_events_bits),
		T(time_from_tsc_page),
		T(time_sequence_zero_falls_back),
		T(time_retries_when_sequence_moves),
		T(time_never_settling_page_falls_back),
		T(time_without_tsc_page),
		T(timer_direct_mode),
		T(timer_message_mode),
		T(timer_stop),
		T(timer_needs_stimers),
		T(crash_without_message_support),
		T(crash_with_message),
		T(crash_not_offered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
