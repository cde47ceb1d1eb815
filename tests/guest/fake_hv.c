/* SPDX-License-Identifier: MIT */
#include "fake_hv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static bool partition_wide(uint32_t msr)
{
	switch (msr) {
	case HV_MSR_GUEST_OS_ID:
	case HV_MSR_HYPERCALL:
	case HV_MSR_REFERENCE_TSC:
	case HV_MSR_TIME_REF_COUNT:
	case HV_MSR_TSC_INVARIANT_CONTROL:
	case HV_MSR_CRASH_P0:
	case HV_MSR_CRASH_P0 + 1:
	case HV_MSR_CRASH_P0 + 2:
	case HV_MSR_CRASH_P0 + 3:
	case HV_MSR_CRASH_P4:
	case HV_MSR_CRASH_CTL:
		return true;
	default:
		return false;
	}
}

static uint64_t *msr_slot(struct fake_hv *f, uint32_t vp, uint32_t msr)
{
	if (msr < HV_MSR_RANGE_FIRST || msr > HV_MSR_RANGE_LAST || vp >= FAKE_MAX_VPS)
		return NULL;
	return &f->msr[partition_wide(msr) ? FAKE_MAX_VPS : vp][msr - HV_MSR_RANGE_FIRST];
}

static bool refused(const uint32_t *list, uint32_t msr)
{
	for (int i = 0; i < FAKE_MAX_REFUSED; i++)
		if (list[i] && list[i] == msr)
			return true;
	return false;
}

static struct fake_hv *fake(void *ctx)
{
	return ctx;
}

static void f_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	struct fake_hv *f = fake(ctx);
	(void)subleaf;
	memset(regs, 0, 4 * sizeof(uint32_t));
	if (leaf == 1)
		regs[2] = f->cpuid1_ecx;
	else if (leaf >= 0x40000000u && leaf <= 0x40000005u)
		memcpy(regs, f->hv_leaf[leaf - 0x40000000u], 4 * sizeof(uint32_t));
}

static bool f_rdmsr(void *ctx, uint32_t msr, uint64_t *value)
{
	struct fake_hv *f = fake(ctx);
	uint32_t vp = f->current_vp;
	uint64_t *slot = msr_slot(f, vp, msr);

	if (!slot || refused(f->refuse_read, msr))
		return false;
	switch (msr) {
	case HV_MSR_VP_INDEX:
		*value = f->vp_index[vp];
		return true;
	case HV_MSR_TIME_REF_COUNT:
		*value = f->ref_time;
		return true;
	case HV_MSR_CRASH_CTL:
		*value = f->crash_ctl_caps;
		return true;
	case HV_MSR_EOM:
		return false; /* write-only */
	default:
		*value = *slot;
		return true;
	}
}

static bool f_wrmsr(void *ctx, uint32_t msr, uint64_t value)
{
	struct fake_hv *f = fake(ctx);
	uint32_t vp = f->current_vp;
	uint64_t *slot = msr_slot(f, vp, msr);

	if (!slot || refused(f->refuse_write, msr))
		return false;
	if (msr == HV_MSR_VP_INDEX || msr == HV_MSR_TIME_REF_COUNT)
		return false; /* read-only */
	if (f->write_count < FAKE_MAX_WRITES)
		f->writes[f->write_count++] = (struct fake_msr_write){vp, msr, value};
	if (msr == HV_MSR_EOM) {
		f->eom_count[vp]++;
		return true;
	}
	if (msr == HV_MSR_HYPERCALL && f->hypercall_ignores_enable)
		value &= ~HV_HYPERCALL_MSR_ENABLE;
	*slot = value;
	return true;
}

static struct hv_tsc_page *tsc_page(struct fake_hv *f)
{
	uint64_t v = f->msr[FAKE_MAX_VPS][HV_MSR_REFERENCE_TSC - HV_MSR_RANGE_FIRST];
	if (!(v & HV_MSR_PAGE_ENABLE))
		return NULL;
	return fake_gpa_ptr(f, HV_MSR_PAGE_GPA(v));
}

static uint64_t f_rdtsc(void *ctx)
{
	struct fake_hv *f = fake(ctx);
	struct hv_tsc_page *p;

	f->rdtsc_count++;
	if (f->bump_sequence && (p = tsc_page(f)) != NULL) {
		f->bump_sequence--;
		p->sequence++;
		p->scale = f->next_scale;
		p->offset = f->next_offset;
	}
	return f->tsc;
}

static uint64_t f_hypercall(void *ctx, void *page, uint64_t control, uint64_t input,
			    uint64_t output)
{
	struct fake_hv *f = fake(ctx);
	(void)page;
	if (f->call_count < FAKE_MAX_CALLS) {
		struct fake_call *c = &f->calls[f->call_count++];
		memset(c, 0, sizeof(*c));
		c->vp = f->current_vp;
		c->control = control;
		c->input = input;
		c->output = output;
		if (!(control & HV_HYPERCALL_FAST)) {
			void *p = fake_gpa_ptr(f, input);
			if (p) {
				c->input_mapped = true;
				memcpy(c->input_block, p, sizeof(c->input_block));
			}
		}
	}
	if (f->hypercall_hook)
		return f->hypercall_hook(f->hook_arg, control, input, output);
	return f->hypercall_result;
}

static uint32_t f_current_vp(void *ctx)
{
	return fake(ctx)->current_vp;
}

static void *f_alloc_pages(void *ctx, uint32_t count)
{
	struct fake_hv *f = fake(ctx);

	if (f->alloc_fail_after == 0 || count == 0)
		return NULL;
	if (f->alloc_fail_after > 0)
		f->alloc_fail_after--;
	for (int i = 0; i < FAKE_MAX_ALLOCS; i++) {
		struct fake_alloc *a = &f->allocs[i];
		if (a->p)
			continue;
		a->p = aligned_alloc(HV_PAGE_SIZE, (size_t)count * HV_PAGE_SIZE);
		if (!a->p)
			return NULL;
		memset(a->p, 0, (size_t)count * HV_PAGE_SIZE);
		a->count = count;
		a->gpa = f->next_gpa;
		f->next_gpa += (uint64_t)(count + 1) * HV_PAGE_SIZE; /* a hole between */
		f->live_allocs++;
		return a->p;
	}
	return NULL;
}

static void f_free_pages(void *ctx, void *pages, uint32_t count)
{
	struct fake_hv *f = fake(ctx);
	for (int i = 0; i < FAKE_MAX_ALLOCS; i++) {
		struct fake_alloc *a = &f->allocs[i];
		if (a->p && a->p == pages && a->count == count) {
			free(a->p);
			memset(a, 0, sizeof(*a));
			f->live_allocs--;
			return;
		}
	}
	abort(); /* freeing what was not allocated: a library bug */
}

static uint64_t f_gpa_of(void *ctx, const void *p)
{
	return fake_gpa(fake(ctx), p);
}

static int f_set_vector_handler(void *ctx, uint8_t vector, void (*fn)(void *arg), void *arg)
{
	struct fake_hv *f = fake(ctx);
	f->handlers[vector] = (struct fake_handler){fn, arg};
	return 0;
}

static struct hv_port_lock *f_lock_new(void *ctx)
{
	struct fake_hv *f = fake(ctx);
	for (int i = 0; i < FAKE_MAX_LOCKS; i++) {
		if (!f->locks[i].in_use) {
			f->locks[i] = (struct hv_port_lock){.in_use = true};
			f->locks_live++;
			return &f->locks[i];
		}
	}
	return NULL;
}

static void f_lock_free(void *ctx, struct hv_port_lock *l)
{
	struct fake_hv *f = fake(ctx);
	if (l->held || !l->in_use)
		f->lock_errors++;
	l->in_use = false;
	f->locks_live--;
}

static void f_lock(void *ctx, struct hv_port_lock *l)
{
	if (l->held++)
		fake(ctx)->lock_errors++;
}

static void f_unlock(void *ctx, struct hv_port_lock *l)
{
	if (l->held-- != 1)
		fake(ctx)->lock_errors++;
}

static struct hv_port_event *f_event_new(void *ctx)
{
	struct fake_hv *f = fake(ctx);
	for (int i = 0; i < FAKE_MAX_EVENTS; i++) {
		if (!f->events[i].in_use) {
			f->events[i] = (struct hv_port_event){.in_use = true};
			f->events_live++;
			return &f->events[i];
		}
	}
	return NULL;
}

static void f_event_free(void *ctx, struct hv_port_event *e)
{
	struct fake_hv *f = fake(ctx);
	if (!e->in_use)
		f->event_errors++;
	e->in_use = false;
	f->events_live--;
}

static void f_event_set(void *ctx, struct hv_port_event *e)
{
	if (!e->in_use)
		fake(ctx)->event_errors++;
	e->set = true;
}

static int f_event_wait(void *ctx, struct hv_port_event *e, uint64_t timeout_ns)
{
	struct fake_hv *f = fake(ctx);

	if (!e->in_use)
		f->event_errors++;
	f->event_waits++;
	while (!e->set && timeout_ns && f->on_wait && f->on_wait(f->hook_arg))
		;
	if (e->set) {
		e->set = false;
		return 0;
	}
	f->event_timeouts++;
	f->now_ns += timeout_ns;
	/* Nothing runs concurrently here: an hour of waiting is a loop that
	 * will never end (or a test that failed inside a callback). */
	if (f->now_ns > FAKE_HANG_NS)
		abort();
	return -ETIMEDOUT;
}

static uint64_t f_monotonic_ns(void *ctx)
{
	return fake(ctx)->now_ns;
}

static void f_log(void *ctx, const char *fmt, va_list ap)
{
	(void)fmt;
	(void)ap;
	fake(ctx)->log_count++;
}

void fake_hv_init(struct fake_hv *f)
{
	memset(f, 0, sizeof(*f));
	f->port = (struct hv_port){
		.ctx = f,
		.cpuid = f_cpuid,
		.rdmsr = f_rdmsr,
		.wrmsr = f_wrmsr,
		.rdtsc = f_rdtsc,
		.hypercall = f_hypercall,
		.current_vp = f_current_vp,
		.alloc_pages = f_alloc_pages,
		.free_pages = f_free_pages,
		.gpa_of = f_gpa_of,
		.set_vector_handler = f_set_vector_handler,
		.lock_new = f_lock_new,
		.lock_free = f_lock_free,
		.lock = f_lock,
		.unlock = f_unlock,
		.event_new = f_event_new,
		.event_free = f_event_free,
		.event_set = f_event_set,
		.event_wait = f_event_wait,
		.monotonic_ns = f_monotonic_ns,
		.log = f_log,
	};
	f->cpuid1_ecx = HV_CPUID1_ECX_HYPERVISOR;
	uint32_t *l0 = f->hv_leaf[0], *l3 = f->hv_leaf[3];
	l0[0] = 0x4000000Au;
	l0[1] = HV_CPUID_VENDOR_EBX;
	l0[2] = HV_CPUID_VENDOR_ECX;
	l0[3] = HV_CPUID_VENDOR_EDX;
	f->hv_leaf[1][0] = HV_CPUID_INTERFACE_SIGNATURE;
	l3[0] = HV_FEAT_TIME_REF_COUNT_MSR | HV_FEAT_SYNIC_MSRS | HV_FEAT_STIMER_MSRS |
		HV_FEAT_HYPERCALL_MSRS | HV_FEAT_VP_INDEX_MSR | HV_FEAT_REFERENCE_TSC_MSR |
		HV_FEAT_TSC_INVARIANT;
	l3[1] = HV_PRIV_POST_MESSAGES | HV_PRIV_SIGNAL_EVENTS;
	l3[3] = HV_FEAT_X64_GUEST_CRASH_MSRS | HV_FEAT_X64_STIMER_DIRECT_MODE;
	f->hv_leaf[4][0] = HV_HINT_RELAXED_TIMING;
	f->hv_leaf[5][0] = 64;
	for (uint32_t i = 0; i < FAKE_MAX_VPS; i++) {
		f->vp_index[i] = 100 + i;
		for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++)
			f->msr[i][HV_MSR_SINT(s) - HV_MSR_RANGE_FIRST] = HV_SINT_RESET_VALUE;
	}
	f->next_gpa = FAKE_GPA_BASE;
	f->alloc_fail_after = -1;
}

void fake_hv_destroy(struct fake_hv *f)
{
	for (int i = 0; i < FAKE_MAX_ALLOCS; i++)
		free(f->allocs[i].p);
	memset(f->allocs, 0, sizeof(f->allocs));
	f->live_allocs = 0;
}

uint64_t fake_msr(const struct fake_hv *f, uint32_t vp, uint32_t msr)
{
	return f->msr[partition_wide(msr) ? FAKE_MAX_VPS : vp][msr - HV_MSR_RANGE_FIRST];
}

void fake_set_msr(struct fake_hv *f, uint32_t vp, uint32_t msr, uint64_t value)
{
	*msr_slot(f, vp, msr) = value;
}

uint32_t fake_write_count(const struct fake_hv *f, uint32_t msr)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < f->write_count; i++)
		n += f->writes[i].msr == msr;
	return n;
}

uint64_t fake_write_value(const struct fake_hv *f, uint32_t msr, uint32_t nth)
{
	for (uint32_t i = 0; i < f->write_count; i++)
		if (f->writes[i].msr == msr && nth-- == 0)
			return f->writes[i].value;
	return 0xDEADDEADDEADDEADull;
}

int fake_write_index(const struct fake_hv *f, uint32_t msr, uint32_t from)
{
	for (uint32_t i = from; i < f->write_count; i++)
		if (f->writes[i].msr == msr)
			return (int)i;
	return -1;
}

uint64_t fake_gpa(const struct fake_hv *f, const void *p)
{
	const uint8_t *b = p;
	for (int i = 0; i < FAKE_MAX_ALLOCS; i++) {
		const struct fake_alloc *a = &f->allocs[i];
		const uint8_t *base = a->p;
		if (base && b >= base && b < base + (size_t)a->count * HV_PAGE_SIZE)
			return a->gpa + (uint64_t)(b - base);
	}
	return HV_GPA_INVALID;
}

void *fake_gpa_ptr(const struct fake_hv *f, uint64_t gpa)
{
	for (int i = 0; i < FAKE_MAX_ALLOCS; i++) {
		const struct fake_alloc *a = &f->allocs[i];
		if (a->p && gpa >= a->gpa && gpa < a->gpa + (uint64_t)a->count * HV_PAGE_SIZE)
			return (uint8_t *)a->p + (gpa - a->gpa);
	}
	return NULL;
}

bool fake_raise(struct fake_hv *f, uint32_t vp, uint8_t vector)
{
	struct fake_handler h = f->handlers[vector];
	uint32_t saved = f->current_vp;

	if (!h.fn)
		return false;
	f->current_vp = vp;
	h.fn(h.arg);
	f->current_vp = saved;
	return true;
}
