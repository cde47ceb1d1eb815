/* SPDX-License-Identifier: MIT */
/*
 * The hypervisor interface's partition-wide state (struct hv_partition;
 * the backends that run a partition are host/partition): configuration,
 * reference time and the TSC page, CPUID, the partition-wide MSRs (guest
 * OS id, hypercall page, reference TSC, frequencies, crash, invariant
 * TSC), logging and observation.
 *
 * Facts from Linux 6.1: arch/x86/kernel/cpu/mshyperv.c (detection and the
 * feature words it reads), arch/x86/hyperv/hv_init.c (guest OS id,
 * hypercall page, crash MSRs), drivers/clocksource/hyperv_timer.c and
 * include/clocksource/hyperv_timer.h (TSC page arithmetic and sequence),
 * arch/x86/kvm/hyperv.c (host behaviour of every MSR).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "hv_internal.h"

/* ---- logging and callbacks ---- */

void hv_log(const struct hv_partition *p, const char *fmt, ...)
{
	if (!p->ops.log)
		return;
	va_list ap;
	va_start(ap, fmt);
	p->ops.log(p->ctx, fmt, ap);
	va_end(ap);
}

bool hv_log_first(struct hv_partition *p, enum hv_log_once what)
{
	return hv_first_bit(&p->logged_misc, what);
}

bool hv_first_bit(uint64_t *bits, uint32_t bit)
{
	uint64_t mask = 1ull << (bit % 64);
	return !(__atomic_fetch_or(&bits[bit / 64], mask, __ATOMIC_RELAXED) & mask);
}

void hv_count(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

void hv_inject(struct hv_partition *p, uint32_t vp, uint8_t vector, bool auto_eoi)
{
	if (p->ops.inject)
		p->ops.inject(p->ctx, vp, vector, auto_eoi);
}

/* ---- configuration ---- */

/*
 * The TSC page can only express a TSC faster than the reference clock:
 * scale = 2^64 * 10^7 / tsc_hz must fit in 64 bits.
 */
static bool tsc_hz_valid(uint64_t tsc_hz)
{
	return tsc_hz > HV_REF_TIME_HZ;
}

static bool config_valid(const struct hv_config *cfg)
{
	uint32_t f = cfg->features;

	if (cfg->vp_count < 1 || cfg->vp_count > HV_MAX_VPS)
		return false;
	if (!tsc_hz_valid(cfg->tsc_hz))
		return false;
	if (f & ~HV_OFFER_ALL)
		return false;
	if ((f & HV_OFFER_STIMER) && !(f & HV_OFFER_SYNIC))
		return false;
	if ((f & HV_OFFER_STIMER_DIRECT) && !(f & HV_OFFER_STIMER))
		return false;
	if ((f & HV_OFFER_FREQUENCY_MSRS) && cfg->apic_hz == 0)
		return false;
	if (cfg->hypercall_code_len > HV_PAGE_SIZE)
		return false;
	if (cfg->hypercall_code_len && !cfg->hypercall_code)
		return false;
	return true;
}

/* ---- time ---- */

static uint64_t mul_hi(uint64_t a, uint64_t b)
{
	return (uint64_t)(((unsigned __int128)a * b) >> 64);
}

/* floor(2^64 * 10^7 / tsc_hz); fits because tsc_hz > 10^7. */
static uint64_t tsc_scale_for(uint64_t tsc_hz)
{
	return (uint64_t)(((unsigned __int128)HV_REF_TIME_HZ << 64) / tsc_hz);
}

/* Scale and offset as one pair: a reader that overlapped a change (the
 * count odd, or moved) reads again, as the guest does with the TSC page's
 * sequence. Writers hold p->lock. */
static void time_params(const struct hv_partition *p, uint64_t *scale, uint64_t *offset)
{
	uint32_t seq;
	do {
		seq = __atomic_load_n(&p->time_seq, __ATOMIC_ACQUIRE);
		*scale = __atomic_load_n(&p->tsc_scale, __ATOMIC_RELAXED);
		*offset = __atomic_load_n(&p->tsc_offset, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
	} while ((seq & 1) || seq != __atomic_load_n(&p->time_seq, __ATOMIC_RELAXED));
}

void hv_time_params_set(struct hv_partition *p, uint64_t hz, uint64_t scale, uint64_t offset)
{
	uint32_t seq = p->time_seq;
	__atomic_store_n(&p->time_seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&p->tsc_hz, hz, __ATOMIC_RELAXED);
	__atomic_store_n(&p->tsc_scale, scale, __ATOMIC_RELAXED);
	__atomic_store_n(&p->tsc_offset, offset, __ATOMIC_RELAXED);
	__atomic_store_n(&p->time_seq, seq + 2, __ATOMIC_RELEASE);
}

uint64_t hv_ref_time(const struct hv_partition *p, uint64_t tsc)
{
	uint64_t scale, offset;
	time_params(p, &scale, &offset);
	/* Exactly Linux's mul_u64_u64_shr(tsc, scale, 64) + offset, so the
	 * counter MSR and the TSC page agree to the tick. */
	return mul_hi(tsc, scale) + offset;
}

uint64_t hv_ref_to_tsc(const struct hv_partition *p, uint64_t ref)
{
	/*
	 * The smallest tsc with mul_hi(tsc, scale) >= ref - offset, i.e.
	 * tsc = ceil((ref - offset) * 2^64 / scale). The offset is the TSC
	 * page's signed one; a reference time no TSC value reaches saturates.
	 */
	uint64_t scale, offset;
	time_params(p, &scale, &offset);
	__int128 target = (__int128)ref - (__int128)(int64_t)offset;
	if (target <= 0)
		return 0;
	if (target > (__int128)UINT64_MAX)
		return UINT64_MAX;
	unsigned __int128 num = (unsigned __int128)target << 64;
	unsigned __int128 q = num / scale + (num % scale != 0);
	return q > UINT64_MAX ? UINT64_MAX : (uint64_t)q;
}

/*
 * Writes scale and offset with the sequence protocol the guest reads by
 * (include/clocksource/hyperv_timer.h, hv_read_tsc_page_tsc): sequence 0
 * ("use the MSR") while the values change, then a new non-zero sequence.
 * The page was checked to be guest RAM when the guest enabled it. With
 * p->lock held.
 */
static int tsc_page_write(struct hv_partition *p)
{
	uint8_t *page = guest_memory_page(p->mem, HV_MSR_PAGE_GPA(p->reference_tsc_msr));
	if (!page)
		return -EFAULT;
	uint32_t *sequence = (uint32_t *)(page + offsetof(struct hv_tsc_page, sequence));
	uint32_t *reserved = (uint32_t *)(page + offsetof(struct hv_tsc_page, reserved1));
	uint64_t *scale = (uint64_t *)(page + offsetof(struct hv_tsc_page, scale));
	uint64_t *offset = (uint64_t *)(page + offsetof(struct hv_tsc_page, offset));

	__atomic_store_n(sequence, HV_TSC_PAGE_SEQUENCE_INVALID, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(reserved, 0, __ATOMIC_RELAXED);
	__atomic_store_n(scale, p->tsc_scale, __ATOMIC_RELAXED);
	__atomic_store_n(offset, p->tsc_offset, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);

	uint32_t next = p->tsc_sequence + 1;
	if (next == HV_TSC_PAGE_SEQUENCE_INVALID)
		next = 1;
	p->tsc_sequence = next;
	__atomic_store_n(sequence, next, __ATOMIC_RELAXED);
	return 0;
}

bool hv_adopt_tsc_frequency(struct hv_partition *p, uint64_t tsc)
{
	uint64_t saved = __atomic_load_n(&p->tsc_hz, __ATOMIC_RELAXED);
	if (saved == p->cfg.tsc_hz)
		return false;
	hv_log(p, "hv: the guest TSC runs at %llu kHz here, at %llu kHz where it was saved: "
		  "reference time re-scaled",
	       (unsigned long long)(p->cfg.tsc_hz / 1000), (unsigned long long)(saved / 1000));
	hv_set_tsc_frequency(p, p->cfg.tsc_hz, tsc);
	return true;
}

void hv_set_tsc_frequency(struct hv_partition *p, uint64_t tsc_hz, uint64_t tsc)
{
	if (!tsc_hz_valid(tsc_hz)) {
		if (hv_log_first(p, HV_LOG_BAD_TSC_HZ))
			hv_log(p, "hv: TSC frequency %llu Hz ignored: the TSC page needs > 10 MHz",
			       (unsigned long long)tsc_hz);
		return;
	}
	pthread_mutex_lock(&p->lock);
	/* Continuous at tsc: ref_new(tsc) == ref_old(tsc). */
	uint64_t ref = hv_ref_time(p, tsc);
	uint64_t scale = tsc_scale_for(tsc_hz);
	hv_time_params_set(p, tsc_hz, scale, ref - mul_hi(tsc, scale));
	if ((p->reference_tsc_msr & HV_MSR_PAGE_ENABLE) && tsc_page_write(p) &&
	    hv_log_first(p, HV_LOG_TSC_PAGE_GONE))
		hv_log(p, "hv: TSC page 0x%llx is not guest RAM",
		       (unsigned long long)p->reference_tsc_msr);
	pthread_mutex_unlock(&p->lock);
}

/* ---- new / free ---- */

struct hv_partition *hv_partition_new(const struct hv_config *cfg,
				      const struct guest_memory *mem,
				      const struct hv_host_ops *ops, void *ctx)
{
	if (!cfg || !mem || !config_valid(cfg)) {
		errno = EINVAL;
		return NULL;
	}
	struct hv_partition *p =
		calloc(1, sizeof(*p) + (size_t)cfg->vp_count * sizeof(struct hv_vp));
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->cfg = *cfg;
	if (cfg->hypercall_code_len) {
		/* Our own copy: the caller's buffer need not outlive the call. */
		p->hypercall_code = malloc(cfg->hypercall_code_len);
		if (!p->hypercall_code) {
			free(p);
			errno = ENOMEM;
			return NULL;
		}
		memcpy(p->hypercall_code, cfg->hypercall_code, cfg->hypercall_code_len);
	}
	p->cfg.hypercall_code = p->hypercall_code;
	p->mem = mem;
	if (ops)
		p->ops = *ops;
	p->ctx = ctx;

	p->tsc_hz = cfg->tsc_hz;
	p->tsc_scale = tsc_scale_for(cfg->tsc_hz);
	p->tsc_offset = 0 - mul_hi(cfg->tsc_at_start, p->tsc_scale);

	pthread_mutex_init(&p->lock, NULL);
	pthread_rwlock_init(&p->conn_lock, NULL);
	for (uint32_t i = 0; i < cfg->vp_count; i++) {
		pthread_mutex_init(&p->vps[i].lock, NULL);
		for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s++)
			p->vps[i].sint[s] = HV_SINT_RESET_VALUE;
	}
	return p;
}

void hv_partition_free(struct hv_partition *p)
{
	if (!p)
		return;
	hv_synic_free(p);
	hv_connections_free(p);
	for (uint32_t i = 0; i < p->cfg.vp_count; i++)
		pthread_mutex_destroy(&p->vps[i].lock);
	pthread_rwlock_destroy(&p->conn_lock);
	pthread_mutex_destroy(&p->lock);
	free(p->hypercall_code);
	free(p);
}

/* ---- CPUID ---- */

#define HV_CPUID_MAX_LEAF HV_CPUID_NESTED_FEATURES /* 0x4000000A */
#define HV_BUILD_NUMBER 20348u                      /* Windows Server 2022 */
#define HV_VERSION_10_0 0x000A0000u                 /* major 10 << 16 | minor 0 */

static bool offered(const struct hv_partition *p, uint32_t offer)
{
	return (p->cfg.features & offer) == offer;
}

/* Leaf 0x40000003, EAX/EBX/EDX: privileges and features (mshyperv.c reads
 * them into ms_hyperv.features, priv_high and misc_features). Only what is
 * offered; never APIC access (no LAPIC here), never partition-id, CPU
 * management (root partition: Linux skips VMBus) or isolation. */
static void cpuid_features(const struct hv_partition *p, uint32_t regs[4])
{
	uint32_t eax = HV_FEAT_HYPERCALL_MSRS | HV_FEAT_VP_INDEX_MSR;
	uint32_t edx = 0;

	if (offered(p, HV_OFFER_TIME_REF_COUNT))
		eax |= HV_FEAT_TIME_REF_COUNT_MSR;
	if (offered(p, HV_OFFER_SYNIC))
		eax |= HV_FEAT_SYNIC_MSRS;
	if (offered(p, HV_OFFER_STIMER))
		eax |= HV_FEAT_STIMER_MSRS;
	if (offered(p, HV_OFFER_TSC_PAGE))
		eax |= HV_FEAT_REFERENCE_TSC_MSR;
	if (offered(p, HV_OFFER_FREQUENCY_MSRS)) {
		eax |= HV_FEAT_FREQUENCY_MSRS;
		edx |= HV_FEAT_X64_FREQUENCY_MSRS;
	}
	if (offered(p, HV_OFFER_INVARIANT_TSC))
		eax |= HV_FEAT_TSC_INVARIANT;
	if (offered(p, HV_OFFER_CRASH_MSRS))
		edx |= HV_FEAT_X64_GUEST_CRASH_MSRS;
	if (offered(p, HV_OFFER_STIMER_DIRECT))
		edx |= HV_FEAT_X64_STIMER_DIRECT_MODE;

	regs[0] = eax;
	regs[1] = HV_PRIV_POST_MESSAGES | HV_PRIV_SIGNAL_EVENTS;
	regs[2] = 0;
	regs[3] = edx;
}

bool hv_cpuid(const struct hv_partition *p, uint32_t leaf, uint32_t regs[4])
{
	if (leaf < HV_CPUID_VENDOR_AND_MAX || leaf > HV_CPUID_MAX_LEAF)
		return false;
	regs[0] = regs[1] = regs[2] = regs[3] = 0;
	switch (leaf) {
	case HV_CPUID_VENDOR_AND_MAX:
		regs[0] = HV_CPUID_MAX_LEAF;
		regs[1] = HV_CPUID_VENDOR_EBX;
		regs[2] = HV_CPUID_VENDOR_ECX;
		regs[3] = HV_CPUID_VENDOR_EDX;
		break;
	case HV_CPUID_INTERFACE:
		regs[0] = HV_CPUID_INTERFACE_SIGNATURE;
		break;
	case HV_CPUID_VERSION:
		regs[0] = HV_BUILD_NUMBER;
		regs[1] = HV_VERSION_10_0;
		break;
	case HV_CPUID_FEATURES:
		cpuid_features(p, regs);
		break;
	case HV_CPUID_ENLIGHTENMENT_INFO:
		regs[0] = HV_HINT_RELAXED_TIMING |
			  (p->cfg.deprecate_auto_eoi ? HV_HINT_DEPRECATING_AEOI : 0);
		regs[1] = HV_SPINLOCK_RETRIES_NEVER;
		break;
	case HV_CPUID_IMPLEMENTATION_LIMITS:
		regs[0] = p->cfg.vp_count;
		regs[1] = p->cfg.vp_count;
		break;
	default: /* 0x40000006..0x4000000A: nothing offered */
		break;
	}
	return true;
}

/* ---- partition-wide MSRs (and the two per-VP ones that are not SynIC) ---- */

static int hypercall_msr_write(struct hv_partition *p, uint64_t value)
{
	/* Like KVM: the page stays disabled until the guest says who it is. */
	if (!p->guest_os_id)
		return 0;
	if (value & HV_HYPERCALL_MSR_ENABLE) {
		uint8_t *page = guest_memory_page(p->mem, HV_MSR_PAGE_GPA(value));
		if (!page)
			return -EINVAL;
		if (p->cfg.hypercall_code_len)
			memcpy(page, p->hypercall_code, p->cfg.hypercall_code_len);
		if (p->cfg.log_milestones && !(p->hypercall_msr & HV_HYPERCALL_MSR_ENABLE))
			hv_log(p, "hv: hypercall page enabled at GPA 0x%llx",
			       (unsigned long long)HV_MSR_PAGE_GPA(value));
	}
	p->hypercall_msr = value;
	return 0;
}

static int reference_tsc_write(struct hv_partition *p, uint64_t value)
{
	if ((value & HV_MSR_PAGE_ENABLE) && !guest_memory_page(p->mem, HV_MSR_PAGE_GPA(value)))
		return -EINVAL;
	if (p->cfg.log_milestones && (value & HV_MSR_PAGE_ENABLE) &&
	    !(p->reference_tsc_msr & HV_MSR_PAGE_ENABLE))
		hv_log(p, "hv: TSC page enabled at GPA 0x%llx",
		       (unsigned long long)HV_MSR_PAGE_GPA(value));
	p->reference_tsc_msr = value;
	if (value & HV_MSR_PAGE_ENABLE)
		return tsc_page_write(p) ? -EINVAL : 0;
	return 0;
}

/* The guest's text made safe for terminals, logs and JSON: lines of
 * printable ASCII, anything else a '?'; trailing NULs and newlines
 * dropped (Linux's kmsg dump ends its page with them). Its new length. */
static uint32_t printable(uint32_t len, char *text)
{
	while (len && (text[len - 1] == '\0' || text[len - 1] == '\n'))
		len--;
	for (uint32_t i = 0; i < len; i++)
		if ((text[i] < 0x20 || text[i] > 0x7e) && text[i] != '\n')
			text[i] = '?';
	return len;
}

/*
 * The guest reports a panic: P0..P4 then CTL = NOTIFY (hv_init.c,
 * hyperv_report_panic), or with NOTIFY_MSG the kmsg text at GPA P3 of
 * length P4 (drivers/hv/vmbus_drv.c, hv_kmsg_dump). The parameters and the
 * text are copied out (the guest cannot change them under the backend),
 * and the backend is called with no lock held: it may end the guest.
 */
static void crash_notify(struct hv_partition *p, uint32_t vp, uint64_t ctl)
{
	char text[HV_PAGE_SIZE];
	const char *message = NULL;
	uint32_t len = 0;
	uint64_t params[5];

	pthread_mutex_lock(&p->lock);
	memcpy(params, p->crash_params, sizeof(params));
	pthread_mutex_unlock(&p->lock);
	if (ctl & HV_CRASH_CTL_NOTIFY_MSG) {
		uint64_t want = params[4] < sizeof(text) ? params[4] : sizeof(text);
		if (want && guest_memory_read(p->mem, params[3], text, want) == 0) {
			/* Nothing but NULs and newlines is no message. */
			len = printable((uint32_t)want, text);
			message = len ? text : NULL;
		} else if (want && hv_log_first(p, HV_LOG_CRASH_MESSAGE)) {
			hv_log(p, "hv: crash message at 0x%llx (%llu bytes) is not guest RAM",
			       (unsigned long long)params[3], (unsigned long long)params[4]);
		}
	}
	if (p->ops.crash)
		p->ops.crash(p->ctx, vp, params, message, len);
}

/* The partition-wide MSRs, with p->lock held. */
static int shared_msr_read(struct hv_partition *p, uint32_t msr, uint64_t *value)
{
	switch (msr) {
	case HV_MSR_GUEST_OS_ID:
		*value = p->guest_os_id;
		return 0;
	case HV_MSR_HYPERCALL:
		*value = p->hypercall_msr;
		return 0;
	case HV_MSR_REFERENCE_TSC:
		*value = p->reference_tsc_msr;
		return 0;
	case HV_MSR_TSC_FREQUENCY:
		*value = p->tsc_hz;
		return 0;
	case HV_MSR_APIC_FREQUENCY:
		*value = p->cfg.apic_hz;
		return 0;
	case HV_MSR_CRASH_CTL:
		/* Reads give the capabilities (TLFS; KVM returns what it
		 * supports the same way). */
		*value = HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG;
		return 0;
	case HV_MSR_TSC_INVARIANT_CONTROL:
		*value = p->tsc_invariant_control;
		return 0;
	default:
		if (msr >= HV_MSR_CRASH_P0 && msr <= HV_MSR_CRASH_P4) {
			*value = p->crash_params[msr - HV_MSR_CRASH_P0];
			return 0;
		}
		return -EINVAL;
	}
}

static int shared_msr_write(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t value)
{
	switch (msr) {
	case HV_MSR_GUEST_OS_ID:
		if (p->cfg.log_milestones && value && value != p->guest_os_id)
			hv_log(p, "hv: guest OS id 0x%llx written by VP %u", (unsigned long long)value,
			       vp);
		p->guest_os_id = value;
		/* Linux writes 0 on kexec/hibernation (hv_init.c,
		 * hyperv_cleanup): that also disables the hypercall page. */
		if (!value)
			p->hypercall_msr &= ~HV_HYPERCALL_MSR_ENABLE;
		return 0;
	case HV_MSR_HYPERCALL:
		return hypercall_msr_write(p, value);
	case HV_MSR_REFERENCE_TSC:
		return reference_tsc_write(p, value);
	case HV_MSR_TSC_INVARIANT_CONTROL:
		if (value & ~(uint64_t)HV_TSC_INVARIANT_CONTROL_ENABLE)
			return -EINVAL;
		p->tsc_invariant_control = value;
		return 0;
	default:
		if (msr >= HV_MSR_CRASH_P0 && msr <= HV_MSR_CRASH_P4) {
			p->crash_params[msr - HV_MSR_CRASH_P0] = value;
			return 0;
		}
		/* The frequencies are read-only. */
		return -EINVAL;
	}
}

/* The VP's own MSRs here need no partition-wide lock: VP_INDEX and the
 * reference counter need none at all. */
int hv_partition_msr_read(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t now,
			  uint64_t *value)
{
	struct hv_vp *v = &p->vps[vp];
	int err;

	switch (msr) {
	case HV_MSR_VP_INDEX:
		*value = vp;
		return 0;
	case HV_MSR_TIME_REF_COUNT:
		*value = now;
		return 0;
	case HV_MSR_VP_ASSIST_PAGE:
		pthread_mutex_lock(&v->lock);
		*value = v->vp_assist_page;
		pthread_mutex_unlock(&v->lock);
		return 0;
	default:
		pthread_mutex_lock(&p->lock);
		err = shared_msr_read(p, msr, value);
		pthread_mutex_unlock(&p->lock);
		return err;
	}
}

int hv_partition_msr_write(struct hv_partition *p, uint32_t vp, uint32_t msr, uint64_t value)
{
	struct hv_vp *v = &p->vps[vp];
	int err;

	switch (msr) {
	case HV_MSR_VP_ASSIST_PAGE:
		/* Linux 6.1 writes it on every CPU whatever CPUID says
		 * (hv_init.c, hv_cpu_init); nothing here uses the page. */
		pthread_mutex_lock(&v->lock);
		v->vp_assist_page = value;
		pthread_mutex_unlock(&v->lock);
		return 0;
	case HV_MSR_CRASH_CTL:
		if (value & HV_CRASH_CTL_NOTIFY)
			crash_notify(p, vp, value);
		return 0;
	case HV_MSR_VP_INDEX:
	case HV_MSR_TIME_REF_COUNT:
		return -EINVAL; /* read-only */
	default:
		pthread_mutex_lock(&p->lock);
		err = shared_msr_write(p, vp, msr, value);
		pthread_mutex_unlock(&p->lock);
		return err;
	}
}

/* ---- observation ---- */

void hv_get_state(struct hv_partition *p, struct hv_partition_state *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	out->guest_os_id = p->guest_os_id;
	out->hypercall_msr = p->hypercall_msr;
	out->reference_tsc_msr = p->reference_tsc_msr;
	out->tsc_page_sequence = p->tsc_sequence;
	out->tsc_hz = p->tsc_hz;
	memcpy(out->crash_params, p->crash_params, sizeof(out->crash_params));
	pthread_mutex_unlock(&p->lock);
	out->bad_msr_accesses = __atomic_load_n(&p->bad_msr_accesses, __ATOMIC_RELAXED);
	out->bad_hypercalls = __atomic_load_n(&p->bad_hypercalls, __ATOMIC_RELAXED);
	out->short_stimer_periods = __atomic_load_n(&p->short_stimer_periods, __ATOMIC_RELAXED);
}

int hv_get_vp_state(struct hv_partition *p, uint32_t vp, struct hv_vp_state *out)
{
	if (vp >= p->cfg.vp_count)
		return -EINVAL;
	struct hv_vp *v = &p->vps[vp];
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&v->lock);
	out->synic_enabled = v->scontrol & HV_SCONTROL_ENABLE;
	out->simp = v->simp;
	out->siefp = v->siefp;
	memcpy(out->sint, v->sint, sizeof(out->sint));
	for (uint32_t i = 0; i < HV_STIMER_COUNT; i++) {
		out->stimer_config[i] = v->stimer[i].config;
		out->stimer_count[i] = v->stimer[i].count;
	}
	pthread_mutex_unlock(&v->lock);
	return 0;
}
