/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hv_fixture.h"

static void on_inject(void *ctx, uint32_t vp, uint8_t vector, bool auto_eoi)
{
	struct fixture *f = ctx;
	assert_true(f->n_inj < FIX_MAX_RECORDS);
	f->inj[f->n_inj++] = (struct fix_injection){vp, vector, auto_eoi};
}

static void on_timers_changed(void *ctx)
{
	struct fixture *f = ctx;
	f->timers_changed++;
}

static void on_crash(void *ctx, uint32_t vp, const uint64_t params[5], const char *message,
		     uint32_t len)
{
	struct fixture *f = ctx;
	f->n_crash++;
	f->crash.vp = vp;
	memcpy(f->crash.params, params, sizeof(f->crash.params));
	f->crash.has_message = message != NULL;
	f->crash.len = len;
	assert_true(len <= sizeof(f->crash.message));
	if (message)
		memcpy(f->crash.message, message, len);
}

__attribute__((format(printf, 2, 0)))
static void on_log(void *ctx, const char *fmt, va_list ap)
{
	struct fixture *f = ctx;
	if (f->n_log < 64)
		vsnprintf(f->log[f->n_log], FIX_LOG_LINE, fmt, ap);
	f->n_log++;
}

const struct hv_host_ops fix_ops = {
	.inject = on_inject,
	.timers_changed = on_timers_changed,
	.crash = on_crash,
	.log = on_log,
};

struct hv_config fix_config(uint32_t features, uint32_t vp_count)
{
	return (struct hv_config){
		.vp_count = vp_count,
		.tsc_hz = FIX_TSC_HZ,
		.apic_hz = FIX_APIC_HZ,
		.tsc_at_start = FIX_TSC_AT_START,
		.features = features,
		.deprecate_auto_eoi = true,
		.auto_eoi_supported = false,
	};
}

struct fixture *fix_new(const struct hv_config *cfg)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->ram0 = aligned_alloc(4096, FIX_RAM0_SIZE);
	f->ram1 = aligned_alloc(4096, FIX_RAM1_SIZE);
	assert_non_null(f->ram0);
	assert_non_null(f->ram1);
	/* Not zero: enabling SIMP/SIEFP must clear them. */
	memset(f->ram0, 0xA5, FIX_RAM0_SIZE);
	memset(f->ram1, 0x5A, FIX_RAM1_SIZE);
	assert_int_equal(guest_memory_add(&f->mem, FIX_RAM0_GPA, FIX_RAM0_SIZE, f->ram0), 0);
	assert_int_equal(guest_memory_add(&f->mem, FIX_RAM1_GPA, FIX_RAM1_SIZE, f->ram1), 0);
	f->cfg = cfg ? *cfg : fix_config(HV_OFFER_ALL, 2);
	f->p = hv_partition_new(&f->cfg, &f->mem, &fix_ops, f);
	assert_non_null(f->p);
	return f;
}

void fix_free(struct fixture *f)
{
	if (!f)
		return;
	hv_partition_free(f->p);
	free(f->ram0);
	free(f->ram1);
	free(f);
}

void *fix_ptr(struct fixture *f, uint64_t gpa)
{
	void *ptr = guest_memory_ptr(&f->mem, gpa, 1);
	assert_non_null(ptr);
	return ptr;
}

int fix_wrmsr(struct fixture *f, uint32_t vp, uint32_t msr, uint64_t value, uint64_t now)
{
	return hv_msr_write(f->p, vp, msr, value, now);
}

void fix_wrmsr_ok(struct fixture *f, uint32_t vp, uint32_t msr, uint64_t value, uint64_t now)
{
	assert_int_equal(hv_msr_write(f->p, vp, msr, value, now), 0);
}

uint64_t fix_rdmsr(struct fixture *f, uint32_t vp, uint32_t msr)
{
	uint64_t value = 0xDEADBEEF;
	assert_int_equal(hv_msr_read(f->p, vp, msr, 0, &value), 0);
	return value;
}

void fix_synic_on(struct fixture *f, uint32_t vp, uint64_t simp, uint64_t siefp, uint32_t sint,
		  uint8_t vector)
{
	fix_wrmsr_ok(f, vp, HV_MSR_SCONTROL, HV_SCONTROL_ENABLE, 0);
	fix_wrmsr_ok(f, vp, HV_MSR_SIMP, simp | HV_MSR_PAGE_ENABLE, 0);
	fix_wrmsr_ok(f, vp, HV_MSR_SIEFP, siefp | HV_MSR_PAGE_ENABLE, 0);
	fix_wrmsr_ok(f, vp, HV_MSR_SINT(sint), vector, 0);
}

struct hv_message fix_slot(struct fixture *f, uint64_t simp, uint32_t sint)
{
	struct hv_message m;
	memcpy(&m, fix_ptr(f, simp + sint * HV_MESSAGE_SIZE), sizeof(m));
	return m;
}

bool fix_consume(struct fixture *f, uint32_t vp, uint64_t simp, uint32_t sint, uint64_t now)
{
	uint8_t *slot = fix_ptr(f, simp + sint * HV_MESSAGE_SIZE);
	uint32_t none = HVMSG_NONE;
	memcpy(slot, &none, sizeof(none));
	if (!(slot[offsetof(struct hv_message_header, message_flags)] & HV_MESSAGE_FLAG_PENDING))
		return false;
	fix_wrmsr_ok(f, vp, HV_MSR_EOM, 0, now);
	return true;
}

uint16_t fix_on_message(void *ctx, uint32_t vp, const struct hv_posted_message *msg)
{
	struct fixture *f = ctx;
	assert_true(f->n_posted < 64);
	f->posted[f->n_posted].vp = vp;
	f->posted[f->n_posted].msg = *msg;
	f->n_posted++;
	return f->handler_status;
}

uint16_t fix_on_event(void *ctx, uint32_t vp, uint16_t flag)
{
	struct fixture *f = ctx;
	assert_true(f->n_events < 64);
	f->events[f->n_events++] = (struct fix_event){vp, flag};
	return f->handler_status;
}
