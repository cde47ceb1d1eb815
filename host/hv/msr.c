/* SPDX-License-Identifier: MIT */
/*
 * MSR routing. An MSR works only if the feature that owns it is offered
 * (KVM's hv_check_msr_access with enforce_cpuid, arch/x86/kvm/hyperv.c):
 * a guest that ignores CPUID gets #GP, not a half-emulated feature. Every
 * #GP is counted and logged once per MSR number.
 */
#include <errno.h>

#include "hv_internal.h"

#define NEEDS_NOTHING 0u
#define UNKNOWN_MSR UINT32_MAX

bool hv_msr_is_synthetic(uint32_t msr)
{
	return msr >= HV_MSR_RANGE_FIRST && msr <= HV_MSR_RANGE_LAST;
}

static bool is_synic_msr(uint32_t msr)
{
	return (msr >= HV_MSR_SCONTROL && msr <= HV_MSR_EOM) ||
	       (msr >= HV_MSR_SINT0 && msr <= HV_MSR_SINT15);
}

static bool is_stimer_msr(uint32_t msr)
{
	return msr >= HV_MSR_STIMER0_CONFIG && msr <= HV_MSR_STIMER3_COUNT;
}

/* The HV_OFFER_* an MSR needs, NEEDS_NOTHING, or UNKNOWN_MSR. */
static uint32_t msr_needs(uint32_t msr)
{
	switch (msr) {
	case HV_MSR_GUEST_OS_ID:
	case HV_MSR_HYPERCALL:
	case HV_MSR_VP_INDEX:
	case HV_MSR_VP_ASSIST_PAGE: /* see hv.h: always accepted */
		return NEEDS_NOTHING;
	case HV_MSR_TIME_REF_COUNT:
		return HV_OFFER_TIME_REF_COUNT;
	case HV_MSR_REFERENCE_TSC:
		return HV_OFFER_TSC_PAGE;
	case HV_MSR_TSC_FREQUENCY:
	case HV_MSR_APIC_FREQUENCY:
		return HV_OFFER_FREQUENCY_MSRS;
	case HV_MSR_TSC_INVARIANT_CONTROL:
		return HV_OFFER_INVARIANT_TSC;
	default:
		break;
	}
	if (is_synic_msr(msr))
		return HV_OFFER_SYNIC;
	if (is_stimer_msr(msr))
		return HV_OFFER_STIMER;
	if (msr >= HV_MSR_CRASH_P0 && msr <= HV_MSR_CRASH_CTL)
		return HV_OFFER_CRASH_MSRS;
	/* RESET, VP_RUNTIME, the APIC access MSRs, GUEST_IDLE,
	 * reenlightenment, TSC emulation, debug: never offered. */
	return UNKNOWN_MSR;
}

static bool msr_allowed(const struct hv_partition *p, uint32_t vp, uint32_t msr)
{
	uint32_t needs = msr_needs(msr);
	return vp < p->cfg.vp_count && needs != UNKNOWN_MSR &&
	       (p->cfg.features & needs) == needs;
}

static int bad_access(struct hv_partition *p, uint32_t vp, uint32_t msr, bool write,
		      uint64_t value)
{
	uint32_t bit = hv_msr_is_synthetic(msr) ? msr - HV_MSR_RANGE_FIRST : HV_MSR_LOG_BITS - 1;

	hv_count(&p->bad_msr_accesses);
	if (hv_first_bit(p->logged_msr, bit)) {
		if (write)
			hv_log(p, "hv: #GP for wrmsr 0x%x = 0x%llx on VP %u (logged once)", msr,
			       (unsigned long long)value, vp);
		else
			hv_log(p, "hv: #GP for rdmsr 0x%x on VP %u (logged once)", msr, vp);
	}
	return -EINVAL;
}

/* SynIC and timer MSRs are the VP's own state: its lock only. */
static bool per_vp_msr(uint32_t msr)
{
	return is_synic_msr(msr) || is_stimer_msr(msr);
}

static int vp_msr_read(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t *value)
{
	pthread_mutex_lock(&p->vps[vp].lock);
	int err = is_synic_msr(msr) ? hv_synic_msr_read(p, vp, msr, value)
				    : hv_stimer_msr_read(p, vp, msr, value);
	pthread_mutex_unlock(&p->vps[vp].lock);
	return err;
}

static int vp_msr_write(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t value,
			uint64_t now)
{
	pthread_mutex_lock(&p->vps[vp].lock);
	int err = is_synic_msr(msr) ? hv_synic_msr_write(p, vp, msr, value, now)
				    : hv_stimer_msr_write(p, vp, msr, value, now);
	pthread_mutex_unlock(&p->vps[vp].lock);
	return err;
}

int hv_msr_read(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t now,
		uint64_t *value)
{
	int err;

	if (!msr_allowed(p, vp, msr))
		err = -EINVAL;
	else if (per_vp_msr(msr))
		err = vp_msr_read(p, vp, msr, value);
	else
		err = hv_partition_msr_read(p, vp, msr, now, value);
	return err ? bad_access(p, vp, msr, false, 0) : 0;
}

int hv_msr_write(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t value,
		 uint64_t now)
{
	int err;

	if (!msr_allowed(p, vp, msr))
		err = -EINVAL;
	else if (per_vp_msr(msr))
		err = vp_msr_write(p, vp, msr, value, now);
	else
		err = hv_partition_msr_write(p, vp, msr, value);
	return err ? bad_access(p, vp, msr, true, value) : 0;
}
