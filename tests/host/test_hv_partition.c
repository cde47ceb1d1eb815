/* SPDX-License-Identifier: MIT */
/* The partition: configuration checks, CPUID and every synthetic MSR. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hv_fixture.h"

static int setup(void **state)
{
	*state = fix_new(NULL);
	return 0;
}

static int teardown(void **state)
{
	fix_free(*state);
	return 0;
}

static struct guest_memory empty_mem;

static void expect_invalid(const struct hv_config *cfg)
{
	errno = 0;
	assert_null(hv_partition_new(cfg, &empty_mem, &fix_ops, NULL));
	assert_int_equal(errno, EINVAL);
}

/* ---- configuration ---- */

static void config_rejects_bad_vp_counts(void **state)
{
	(void)state;
	struct hv_config cfg = fix_config(HV_OFFER_ALL, 0);
	expect_invalid(&cfg);
	cfg.vp_count = HV_MAX_VPS + 1;
	expect_invalid(&cfg);
	cfg.vp_count = HV_MAX_VPS;
	struct hv_partition *p = hv_partition_new(&cfg, &empty_mem, &fix_ops, NULL);
	assert_non_null(p);
	hv_partition_free(p);
	cfg.vp_count = 1;
	p = hv_partition_new(&cfg, &empty_mem, NULL, NULL);
	assert_non_null(p);
	hv_partition_free(p);
}

static void config_rejects_bad_clocks(void **state)
{
	(void)state;
	struct hv_config cfg = fix_config(HV_OFFER_ALL, 1);
	cfg.tsc_hz = 0;
	expect_invalid(&cfg);
	/* scale = 2^64 * 10^7 / tsc_hz must fit in 64 bits. */
	cfg.tsc_hz = HV_REF_TIME_HZ;
	expect_invalid(&cfg);
	cfg.tsc_hz = HV_REF_TIME_HZ + 1;
	struct hv_partition *p = hv_partition_new(&cfg, &empty_mem, &fix_ops, NULL);
	assert_non_null(p);
	hv_partition_free(p);

	cfg = fix_config(HV_OFFER_FREQUENCY_MSRS, 1);
	cfg.apic_hz = 0;
	expect_invalid(&cfg);
	cfg.features = HV_OFFER_ALL & ~HV_OFFER_FREQUENCY_MSRS;
	p = hv_partition_new(&cfg, &empty_mem, &fix_ops, NULL);
	assert_non_null(p);
	hv_partition_free(p);
}

static void config_rejects_missing_dependencies(void **state)
{
	(void)state;
	struct hv_config cfg = fix_config(HV_OFFER_STIMER, 1);
	expect_invalid(&cfg);
	cfg.features = HV_OFFER_SYNIC | HV_OFFER_STIMER_DIRECT;
	expect_invalid(&cfg);
	cfg.features = HV_OFFER_ALL << 1;
	expect_invalid(&cfg);
	cfg.features = HV_OFFER_SYNIC | HV_OFFER_STIMER | HV_OFFER_STIMER_DIRECT;
	struct hv_partition *p = hv_partition_new(&cfg, &empty_mem, &fix_ops, NULL);
	assert_non_null(p);
	hv_partition_free(p);
}

static void config_rejects_bad_hypercall_code(void **state)
{
	(void)state;
	static uint8_t code[4097];
	struct hv_config cfg = fix_config(HV_OFFER_ALL, 1);
	cfg.hypercall_code = code;
	cfg.hypercall_code_len = 4097;
	expect_invalid(&cfg);
	cfg.hypercall_code = NULL;
	cfg.hypercall_code_len = 3;
	expect_invalid(&cfg);
	cfg.hypercall_code = code;
	cfg.hypercall_code_len = 4096;
	struct hv_partition *p = hv_partition_new(&cfg, &empty_mem, &fix_ops, NULL);
	assert_non_null(p);
	hv_partition_free(p);
	hv_partition_free(NULL);
}

static void config_rejects_null_arguments(void **state)
{
	(void)state;
	struct hv_config cfg = fix_config(HV_OFFER_ALL, 1);
	errno = 0;
	assert_null(hv_partition_new(NULL, &empty_mem, &fix_ops, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(hv_partition_new(&cfg, NULL, &fix_ops, NULL));
	assert_int_equal(errno, EINVAL);
}

/* ---- CPUID ---- */

static void cpuid(struct hv_partition *p, uint32_t leaf, uint32_t regs[4])
{
	regs[0] = regs[1] = regs[2] = regs[3] = 0xCCCCCCCC;
	assert_true(hv_cpuid(p, leaf, regs));
}

static void cpuid_identifies_hyper_v(void **state)
{
	struct fixture *f = *state;
	uint32_t r[4];

	cpuid(f->p, 0x40000000, r);
	assert_int_equal(r[0], 0x4000000A);
	assert_true(r[0] >= HV_CPUID_MAX_LEAF_MIN && r[0] <= HV_CPUID_MAX_LEAF_MAX);
	assert_memory_equal(&r[1], "Microsoft Hv", 12);

	cpuid(f->p, 0x40000001, r);
	assert_memory_equal(&r[0], "Hv#1", 4);
	assert_int_equal(r[1] | r[2] | r[3], 0);

	cpuid(f->p, 0x40000002, r);
	assert_int_equal(r[0], 20348);
	assert_int_equal(r[1], 0x000A0000);
	assert_int_equal(r[2] | r[3], 0);

	cpuid(f->p, 0x40000005, r);
	assert_int_equal(r[0], 2);
	assert_int_equal(r[1], 2);
	assert_int_equal(r[2] | r[3], 0);

	for (uint32_t leaf = 0x40000006; leaf <= 0x4000000A; leaf++) {
		cpuid(f->p, leaf, r);
		assert_int_equal(r[0] | r[1] | r[2] | r[3], 0);
	}
}

static void cpuid_owns_only_its_leaves(void **state)
{
	struct fixture *f = *state;
	static const uint32_t others[] = {0, 1, 0x3FFFFFFF, 0x4000000B, 0x4000000C,
					  0x40000100, 0x4FFFFFFF, 0x80000000};
	uint32_t r[4];
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		assert_false(hv_cpuid(f->p, others[i], r));
}

struct offer_case {
	uint32_t features;
	uint32_t eax, edx;
};

static void cpuid_advertises_only_offers(void **state)
{
	(void)state;
	const uint32_t base = HV_FEAT_HYPERCALL_MSRS | HV_FEAT_VP_INDEX_MSR;
	static const struct offer_case cases[] = {
		{0, 0, 0},
		{HV_OFFER_TIME_REF_COUNT, HV_FEAT_TIME_REF_COUNT_MSR, 0},
		{HV_OFFER_SYNIC, HV_FEAT_SYNIC_MSRS, 0},
		{HV_OFFER_SYNIC | HV_OFFER_STIMER, HV_FEAT_SYNIC_MSRS | HV_FEAT_STIMER_MSRS, 0},
		{HV_OFFER_SYNIC | HV_OFFER_STIMER | HV_OFFER_STIMER_DIRECT,
		 HV_FEAT_SYNIC_MSRS | HV_FEAT_STIMER_MSRS, HV_FEAT_X64_STIMER_DIRECT_MODE},
		{HV_OFFER_TSC_PAGE, HV_FEAT_REFERENCE_TSC_MSR, 0},
		{HV_OFFER_FREQUENCY_MSRS, HV_FEAT_FREQUENCY_MSRS, HV_FEAT_X64_FREQUENCY_MSRS},
		{HV_OFFER_CRASH_MSRS, 0, HV_FEAT_X64_GUEST_CRASH_MSRS},
		{HV_OFFER_INVARIANT_TSC, HV_FEAT_TSC_INVARIANT, 0},
		{HV_OFFER_ALL,
		 HV_FEAT_TIME_REF_COUNT_MSR | HV_FEAT_SYNIC_MSRS | HV_FEAT_STIMER_MSRS |
			 HV_FEAT_REFERENCE_TSC_MSR | HV_FEAT_FREQUENCY_MSRS | HV_FEAT_TSC_INVARIANT,
		 HV_FEAT_X64_STIMER_DIRECT_MODE | HV_FEAT_X64_FREQUENCY_MSRS |
			 HV_FEAT_X64_GUEST_CRASH_MSRS},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hv_config cfg = fix_config(cases[i].features, 1);
		struct hv_partition *p = hv_partition_new(&cfg, &empty_mem, NULL, NULL);
		assert_non_null(p);
		uint32_t r[4];
		cpuid(p, 0x40000003, r);
		assert_int_equal(r[0], base | cases[i].eax);
		assert_int_equal(r[1], HV_PRIV_POST_MESSAGES | HV_PRIV_SIGNAL_EVENTS);
		assert_int_equal(r[2], 0);
		assert_int_equal(r[3], cases[i].edx);
		/* Never: APIC access, partition id, root partition, isolation. */
		assert_int_equal(r[0] & HV_FEAT_APIC_ACCESS_MSRS, 0);
		assert_int_equal(r[1] & (HV_PRIV_ACCESS_PARTITION_ID | HV_PRIV_CPU_MANAGEMENT |
					 HV_PRIV_ISOLATION),
				 0);
		hv_partition_free(p);
	}
}

static void cpuid_hints_follow_config(void **state)
{
	(void)state;
	uint32_t r[4];
	struct hv_config cfg = fix_config(HV_OFFER_ALL, 3);

	cfg.deprecate_auto_eoi = true;
	struct hv_partition *p = hv_partition_new(&cfg, &empty_mem, NULL, NULL);
	cpuid(p, 0x40000004, r);
	assert_int_equal(r[0], HV_HINT_RELAXED_TIMING | HV_HINT_DEPRECATING_AEOI);
	assert_int_equal(r[1], 0xFFFFFFFFu);
	assert_int_equal(r[2] | r[3], 0);
	cpuid(p, 0x40000005, r);
	assert_int_equal(r[0], 3);
	hv_partition_free(p);

	cfg.deprecate_auto_eoi = false;
	p = hv_partition_new(&cfg, &empty_mem, NULL, NULL);
	cpuid(p, 0x40000004, r);
	assert_int_equal(r[0], HV_HINT_RELAXED_TIMING);
	hv_partition_free(p);
}

/* ---- MSRs ---- */

static void synthetic_range_is_0x40000000_to_0x400001ff(void **state)
{
	(void)state;
	assert_false(hv_msr_is_synthetic(0x3FFFFFFF));
	assert_true(hv_msr_is_synthetic(0x40000000));
	assert_true(hv_msr_is_synthetic(0x400001FF));
	assert_false(hv_msr_is_synthetic(0x40000200));
	assert_false(hv_msr_is_synthetic(0x10));
}

static uint64_t bad_msr_count(struct fixture *f)
{
	struct hv_partition_state s;
	hv_get_state(f->p, &s);
	return s.bad_msr_accesses;
}

static void expect_gp_read(struct fixture *f, uint32_t vp, uint32_t msr)
{
	uint64_t before = bad_msr_count(f), v = 0x1234;
	assert_int_equal(hv_msr_read(f->p, vp, msr, 0, &v), -EINVAL);
	assert_int_equal(bad_msr_count(f), before + 1);
}

static void expect_gp_write(struct fixture *f, uint32_t vp, uint32_t msr, uint64_t value)
{
	uint64_t before = bad_msr_count(f);
	assert_int_equal(hv_msr_write(f->p, vp, msr, value, 0), -EINVAL);
	assert_int_equal(bad_msr_count(f), before + 1);
}

static void guest_os_id_is_read_write(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_GUEST_OS_ID), 0);
	fix_wrmsr_ok(f, 1, HV_MSR_GUEST_OS_ID, 0x8100000000060100ull, 0);
	/* Partition-wide: visible from every VP. */
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_GUEST_OS_ID), 0x8100000000060100ull);
	assert_int_equal(bad_msr_count(f), 0);
}

static void hypercall_page_needs_guest_os_id(void **state)
{
	struct fixture *f = *state;
	static const uint8_t code[] = {0xF3, 0x0F, 0x1E, 0xFA, 0xE6, 0x42, 0xC3};
	hv_partition_free(f->p);
	f->cfg.hypercall_code = code;
	f->cfg.hypercall_code_len = sizeof(code);
	f->p = hv_partition_new(&f->cfg, &f->mem, &fix_ops, f);
	assert_non_null(f->p);

	uint8_t *page = fix_ptr(f, 0x5000);
	/* Ignored, no #GP, while the guest OS id is 0 (KVM does the same). */
	fix_wrmsr_ok(f, 0, HV_MSR_HYPERCALL, 0x5000 | 1, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_HYPERCALL), 0);
	assert_int_equal(page[0], 0xA5);

	fix_wrmsr_ok(f, 0, HV_MSR_GUEST_OS_ID, 0x8100ull << 48, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_HYPERCALL, 0x5000 | 1, 0);
	assert_memory_equal(page, code, sizeof(code));
	assert_int_equal(page[sizeof(code)], 0xA5); /* the rest untouched */
	assert_int_equal(fix_rdmsr(f, 1, HV_MSR_HYPERCALL), 0x5001);

	/* Bits 11:1 are kept as written. */
	fix_wrmsr_ok(f, 0, HV_MSR_HYPERCALL, 0x5000 | 0x7F0 | 1, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_HYPERCALL), 0x57F1);

	/* Writing guest OS id 0 disables the page. */
	fix_wrmsr_ok(f, 0, HV_MSR_GUEST_OS_ID, 0, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_HYPERCALL), 0x57F0);
	assert_int_equal(bad_msr_count(f), 0);
}

static void hypercall_page_outside_ram_faults(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 0, HV_MSR_GUEST_OS_ID, 1, 0);
	expect_gp_write(f, 0, HV_MSR_HYPERCALL, FIX_NOT_RAM | 1);
	/* The hole between the two RAM regions is not RAM either. */
	expect_gp_write(f, 0, HV_MSR_HYPERCALL, (FIX_RAM0_GPA + FIX_RAM0_SIZE) | 1);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_HYPERCALL), 0);
	/* Disabled: just stored, the GPA does not matter. */
	fix_wrmsr_ok(f, 0, HV_MSR_HYPERCALL, FIX_NOT_RAM, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_HYPERCALL), FIX_NOT_RAM);
	/* Without code the page is left as it is. */
	fix_wrmsr_ok(f, 0, HV_MSR_HYPERCALL, FIX_RAM1_GPA | 1, 0);
	assert_int_equal(*(uint8_t *)fix_ptr(f, FIX_RAM1_GPA), 0x5A);
}

static void vp_index_is_read_only(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_VP_INDEX), 0);
	assert_int_equal(fix_rdmsr(f, 1, HV_MSR_VP_INDEX), 1);
	expect_gp_write(f, 0, HV_MSR_VP_INDEX, 0);
	expect_gp_read(f, 2, HV_MSR_VP_INDEX); /* no such VP */
}

static void time_ref_count_reads_now(void **state)
{
	struct fixture *f = *state;
	uint64_t v;
	assert_int_equal(hv_msr_read(f->p, 0, HV_MSR_TIME_REF_COUNT, 987654321, &v), 0);
	assert_int_equal(v, 987654321);
	expect_gp_write(f, 0, HV_MSR_TIME_REF_COUNT, 5);
}

static void frequency_msrs_are_read_only(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_TSC_FREQUENCY), FIX_TSC_HZ);
	assert_int_equal(fix_rdmsr(f, 1, HV_MSR_APIC_FREQUENCY), FIX_APIC_HZ);
	expect_gp_write(f, 0, HV_MSR_TSC_FREQUENCY, FIX_TSC_HZ);
	expect_gp_write(f, 0, HV_MSR_APIC_FREQUENCY, FIX_APIC_HZ);
}

static void vp_assist_page_always_accepted(void **state)
{
	(void)state;
	struct hv_config cfg = fix_config(0, 2);
	struct fixture *f = fix_new(&cfg);
	/* Stored per VP; the GPA is not checked (the page is never used). */
	fix_wrmsr_ok(f, 0, HV_MSR_VP_ASSIST_PAGE, FIX_NOT_RAM | 1, 0);
	fix_wrmsr_ok(f, 1, HV_MSR_VP_ASSIST_PAGE, 0x7000 | 1, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_VP_ASSIST_PAGE), FIX_NOT_RAM | 1);
	assert_int_equal(fix_rdmsr(f, 1, HV_MSR_VP_ASSIST_PAGE), 0x7001);
	assert_int_equal(*(uint8_t *)fix_ptr(f, 0x7000), 0xA5);
	fix_free(f);
}

static void synic_msrs_read_and_write(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SCONTROL), 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SVERSION), 1);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SIMP), 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SIEFP), 0);
	for (uint32_t s = 0; s < 16; s++)
		assert_int_equal(fix_rdmsr(f, 1, HV_MSR_SINT(s)), HV_SINT_MASKED);

	fix_wrmsr_ok(f, 1, HV_MSR_SCONTROL, 1, 0);
	assert_int_equal(fix_rdmsr(f, 1, HV_MSR_SCONTROL), 1);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SCONTROL), 0); /* per VP */
	fix_wrmsr_ok(f, 0, HV_MSR_SINT(5), 0x20 | HV_SINT_AUTO_EOI, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SINT(5)), 0x20 | HV_SINT_AUTO_EOI);
	assert_int_equal(fix_rdmsr(f, 1, HV_MSR_SINT(5)), HV_SINT_MASKED);

	/* EOM reads as 0 whatever was written. */
	fix_wrmsr_ok(f, 0, HV_MSR_EOM, 77, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_EOM), 0);
	expect_gp_write(f, 0, HV_MSR_SVERSION, 1);

	struct hv_vp_state vs;
	assert_int_equal(hv_get_vp_state(f->p, 1, &vs), 0);
	assert_true(vs.synic_enabled);
	assert_int_equal(hv_get_vp_state(f->p, 0, &vs), 0);
	assert_false(vs.synic_enabled);
	assert_int_equal(vs.sint[5], 0x20 | HV_SINT_AUTO_EOI);
	assert_int_equal(hv_get_vp_state(f->p, 2, &vs), -EINVAL);
}

static void sint_rejects_exception_vectors(void **state)
{
	struct fixture *f = *state;
	for (uint64_t vector = 0; vector < 16; vector++)
		expect_gp_write(f, 0, HV_MSR_SINT(2), vector);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SINT(2)), HV_SINT_MASKED);
	/* Masked, anything goes (Linux's reset value is 0x10000). */
	fix_wrmsr_ok(f, 0, HV_MSR_SINT(2), HV_SINT_MASKED | 3, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_SINT(2), 16, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SINT(2)), 16);
}

static void stimer_msrs_read_and_write(void **state)
{
	struct fixture *f = *state;
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_CONFIG(i)), 0);
		assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_COUNT(i)), 0);
	}
	fix_wrmsr_ok(f, 1, HV_MSR_STIMER_CONFIG(3), 2ull << HV_STIMER_SINT_SHIFT, 0);
	fix_wrmsr_ok(f, 1, HV_MSR_STIMER_COUNT(3), 5000, 0);
	assert_int_equal(fix_rdmsr(f, 1, HV_MSR_STIMER_CONFIG(3)), 2ull << HV_STIMER_SINT_SHIFT);
	assert_int_equal(fix_rdmsr(f, 1, HV_MSR_STIMER_COUNT(3)), 5000);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_STIMER_COUNT(3)), 0);

	struct hv_vp_state vs;
	assert_int_equal(hv_get_vp_state(f->p, 1, &vs), 0);
	assert_int_equal(vs.stimer_count[3], 5000);
	assert_int_equal(vs.stimer_config[3], 2ull << HV_STIMER_SINT_SHIFT);
}

static void crash_msrs_report_to_backend(void **state)
{
	struct fixture *f = *state;
	for (uint32_t i = 0; i < 5; i++)
		fix_wrmsr_ok(f, 0, HV_MSR_CRASH_P(i), 0x1000 + i, 0);
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(fix_rdmsr(f, 1, HV_MSR_CRASH_P(i)), 0x1000 + i);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_CRASH_CTL),
			 HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG);

	/* Without NOTIFY nothing is reported. */
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_CTL, 0, 0);
	assert_int_equal(f->n_crash, 0);

	fix_wrmsr_ok(f, 1, HV_MSR_CRASH_CTL, HV_CRASH_CTL_NOTIFY, 0);
	assert_int_equal(f->n_crash, 1);
	assert_int_equal(f->crash.vp, 1);
	assert_int_equal(f->crash.params[0], 0x1000);
	assert_int_equal(f->crash.params[4], 0x1004);
	assert_false(f->crash.has_message);

	struct hv_partition_state s;
	hv_get_state(f->p, &s);
	assert_int_equal(s.crash_params[2], 0x1002);
}

static void crash_message_is_bounded_and_checked(void **state)
{
	struct fixture *f = *state;
	char *text = fix_ptr(f, 0x9000);
	memcpy(text, "Kernel panic - not syncing", 26);

	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_P(3), 0x9000, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_P(4), 26, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_CTL, HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG, 0);
	assert_int_equal(f->n_crash, 1);
	assert_true(f->crash.has_message);
	assert_int_equal(f->crash.len, 26);
	assert_memory_equal(f->crash.message, "Kernel panic - not syncing", 26);

	/* A huge length is cut to one page. */
	memset(text, 'x', 4096);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_P(4), 1ull << 40, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_CTL, HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG, 0);
	assert_int_equal(f->n_crash, 2);
	assert_true(f->crash.has_message);
	assert_int_equal(f->crash.len, 4096);

	/* Text outside RAM (or running off its end): no message. */
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_P(3), FIX_RAM0_SIZE - 10, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_P(4), 100, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_CTL, HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG, 0);
	assert_int_equal(f->n_crash, 3);
	assert_false(f->crash.has_message);
	assert_int_equal(f->crash.len, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_P(3), FIX_NOT_RAM, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_CTL, HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG, 0);
	assert_int_equal(f->n_crash, 4);
	assert_false(f->crash.has_message);
}

/* The text goes to terminals, logs and JSON: escapes, bytes past ASCII
 * and other controls become '?', lines stay, the page's trailing NULs
 * and newlines go. */
static void crash_message_is_made_printable(void **state)
{
	struct fixture *f = *state;
	static const char raw[] = "panic\x1b[2J\tA\xc3\xa9\r\nline 2\n\0\0\0";
	static const char want[] = "panic?[2J?A???\nline 2";
	memcpy(fix_ptr(f, 0x9000), raw, sizeof(raw));

	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_P(3), 0x9000, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_P(4), sizeof(raw), 0);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_CTL, HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG, 0);
	assert_int_equal(f->n_crash, 1);
	assert_int_equal(f->crash.len, sizeof(want) - 1);
	assert_memory_equal(f->crash.message, want, sizeof(want) - 1);

	/* Only NULs and newlines: no message at all (NULL, length 0). */
	memcpy(fix_ptr(f, 0x9000), "\n\n\0\0", 4);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_P(4), 4, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_CRASH_CTL, HV_CRASH_CTL_NOTIFY | HV_CRASH_CTL_NOTIFY_MSG, 0);
	assert_int_equal(f->n_crash, 2);
	assert_false(f->crash.has_message);
	assert_int_equal(f->crash.len, 0);
}

static void tsc_invariant_control_bit_0(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_TSC_INVARIANT_CONTROL), 0);
	fix_wrmsr_ok(f, 0, HV_MSR_TSC_INVARIANT_CONTROL, 1, 0);
	assert_int_equal(fix_rdmsr(f, 1, HV_MSR_TSC_INVARIANT_CONTROL), 1);
	expect_gp_write(f, 0, HV_MSR_TSC_INVARIANT_CONTROL, 2);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_TSC_INVARIANT_CONTROL), 1);
}

static void unknown_msrs_fault(void **state)
{
	struct fixture *f = *state;
	static const uint32_t unknown[] = {
		HV_MSR_RESET, 0x40000004, HV_MSR_VP_RUNTIME, 0x40000024, HV_MSR_EOI, HV_MSR_ICR,
		HV_MSR_TPR, 0x40000085, 0x4000008F, 0x400000A0, 0x400000B8, HV_MSR_GUEST_IDLE,
		HV_MSR_REENLIGHTENMENT_CONTROL, HV_MSR_TSC_EMULATION_CONTROL,
		HV_MSR_TSC_EMULATION_STATUS, 0x400000FF, 0x400001FF,
		/* not synthetic at all: the backend should not route it here */
		0x10, 0xC0000080, 0x40000200,
	};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		expect_gp_read(f, 0, unknown[i]);
		expect_gp_write(f, 0, unknown[i], 0);
		expect_gp_write(f, 0, unknown[i], 1);
	}
}

static void msrs_of_features_not_offered_fault(void **state)
{
	(void)state;
	struct hv_config cfg = fix_config(0, 1);
	struct fixture *f = fix_new(&cfg);
	static const uint32_t gated[] = {
		HV_MSR_TIME_REF_COUNT, HV_MSR_REFERENCE_TSC, HV_MSR_TSC_FREQUENCY,
		HV_MSR_APIC_FREQUENCY, HV_MSR_SCONTROL, HV_MSR_SVERSION, HV_MSR_SIEFP,
		HV_MSR_SIMP, HV_MSR_EOM, HV_MSR_SINT0, HV_MSR_SINT15, HV_MSR_STIMER0_CONFIG,
		HV_MSR_STIMER3_COUNT, HV_MSR_CRASH_P0, HV_MSR_CRASH_P4, HV_MSR_CRASH_CTL,
		HV_MSR_TSC_INVARIANT_CONTROL,
	};
	for (size_t i = 0; i < sizeof(gated) / sizeof(gated[0]); i++) {
		expect_gp_read(f, 0, gated[i]);
		expect_gp_write(f, 0, gated[i], 0);
	}
	/* Always there. */
	fix_wrmsr_ok(f, 0, HV_MSR_GUEST_OS_ID, 5, 0);
	fix_rdmsr(f, 0, HV_MSR_HYPERCALL);
	fix_rdmsr(f, 0, HV_MSR_VP_INDEX);
	fix_wrmsr_ok(f, 0, HV_MSR_VP_ASSIST_PAGE, 0, 0);
	fix_free(f);

	/* SynIC without timers: the timer MSRs fault, the SynIC ones work. */
	cfg = fix_config(HV_OFFER_SYNIC, 1);
	f = fix_new(&cfg);
	expect_gp_write(f, 0, HV_MSR_STIMER0_COUNT, 1);
	fix_wrmsr_ok(f, 0, HV_MSR_SCONTROL, 1, 0);
	fix_free(f);
}

static void bad_accesses_are_logged_once_per_msr(void **state)
{
	struct fixture *f = *state;
	uint64_t v;
	uint32_t logs = f->n_log;

	assert_int_equal(hv_msr_read(f->p, 0, HV_MSR_RESET, 0, &v), -EINVAL);
	assert_int_equal(hv_msr_write(f->p, 1, HV_MSR_RESET, 1, 0), -EINVAL);
	assert_int_equal(hv_msr_read(f->p, 0, HV_MSR_RESET, 0, &v), -EINVAL);
	assert_int_equal(f->n_log, logs + 1);
	assert_non_null(strstr(f->log[logs], "0x40000003"));
	assert_int_equal(hv_msr_write(f->p, 0, HV_MSR_VP_INDEX, 1, 0), -EINVAL);
	assert_int_equal(f->n_log, logs + 2);
	assert_int_equal(hv_msr_read(f->p, 0, 0x10, 0, &v), -EINVAL);
	assert_int_equal(hv_msr_read(f->p, 0, 0x11, 0, &v), -EINVAL);
	assert_int_equal(f->n_log, logs + 3);
	assert_int_equal(bad_msr_count(f), 6);
}

static bool logged(const struct fixture *f, const char *text)
{
	for (uint32_t i = 0; i < f->n_log; i++)
		if (strstr(f->log[i], text))
			return true;
	return false;
}

/* With log_milestones each enlightenment step is reported once, when it
 * happens; without it, nothing is. */
static void milestones_are_logged_when_asked(void **state)
{
	(void)state;
	for (int on = 0; on <= 1; on++) {
		struct hv_config cfg = fix_config(HV_OFFER_ALL, 2);
		cfg.log_milestones = on;
		struct fixture *f = fix_new(&cfg);
		fix_wrmsr_ok(f, 0, HV_MSR_GUEST_OS_ID, 0x8100000000000000ull, 0);
		fix_wrmsr_ok(f, 0, HV_MSR_HYPERCALL, 0x1000 | HV_HYPERCALL_MSR_ENABLE, 0);
		fix_wrmsr_ok(f, 0, HV_MSR_REFERENCE_TSC, 0x2000 | HV_MSR_PAGE_ENABLE, 0);
		fix_wrmsr_ok(f, 1, HV_MSR_SCONTROL, HV_SCONTROL_ENABLE, 0);
		fix_wrmsr_ok(f, 1, HV_MSR_SCONTROL, HV_SCONTROL_ENABLE, 0); /* no change */
		fix_wrmsr_ok(f, 1, HV_MSR_SINT0 + 2, 0xf0, 0);
		fix_wrmsr_ok(f, 1, HV_MSR_STIMER0_CONFIG,
			     HV_STIMER_ENABLE | HV_STIMER_DIRECT_MODE | (0xf4ull << 4), 0);
		if (!on) {
			assert_int_equal(f->n_log, 0);
		} else {
			assert_true(logged(f, "guest OS id 0x8100000000000000 written by VP 0"));
			assert_true(logged(f, "hypercall page enabled at GPA 0x1000"));
			assert_true(logged(f, "TSC page enabled at GPA 0x2000"));
			assert_true(logged(f, "SynIC enabled on VP 1"));
			assert_true(logged(f, "stimer0 on VP 1 in direct mode"));
			assert_int_equal(f->n_log, 5); /* the repeated SCONTROL write: silent */
		}
		fix_free(f);
	}
}

static void partitions_are_independent(void **state)
{
	struct fixture *a = *state;
	struct fixture *b = fix_new(NULL);
	fix_wrmsr_ok(a, 0, HV_MSR_GUEST_OS_ID, 11, 0);
	fix_wrmsr_ok(b, 0, HV_MSR_GUEST_OS_ID, 22, 0);
	expect_gp_write(a, 0, HV_MSR_RESET, 1);
	assert_int_equal(fix_rdmsr(a, 0, HV_MSR_GUEST_OS_ID), 11);
	assert_int_equal(fix_rdmsr(b, 0, HV_MSR_GUEST_OS_ID), 22);
	assert_int_equal(bad_msr_count(b), 0);
	assert_int_equal(b->n_log, 0);
	/* b's first bad access to the same MSR is logged in b. */
	expect_gp_write(b, 0, HV_MSR_RESET, 1);
	assert_int_equal(b->n_log, 1);
	fix_free(b);
}

static void null_ops_are_silent(void **state)
{
	(void)state;
	struct guest_memory mem = {0};
	uint8_t *ram = aligned_alloc(4096, 4096);
	assert_int_equal(guest_memory_add(&mem, 0, 4096, ram), 0);
	struct hv_config cfg = fix_config(HV_OFFER_ALL, 1);
	struct hv_host_ops none = {0};
	struct hv_partition *p = hv_partition_new(&cfg, &mem, &none, NULL);
	uint64_t v;
	assert_int_equal(hv_msr_read(p, 0, HV_MSR_RESET, 0, &v), -EINVAL);
	assert_int_equal(hv_msr_write(p, 0, HV_MSR_CRASH_CTL, HV_CRASH_CTL_NOTIFY, 0), 0);
	assert_int_equal(hv_msr_write(p, 0, HV_MSR_SCONTROL, 1, 0), 0);
	assert_int_equal(hv_msr_write(p, 0, HV_MSR_SIMP, 1, 0), 0);
	assert_int_equal(hv_msr_write(p, 0, HV_MSR_SINT(0), 0x30, 0), 0);
	assert_int_equal(hv_synic_post(p, 0, 0, 1, "x", 1, 0), 0);
	assert_int_equal(hv_msr_write(p, 0, HV_MSR_STIMER0_CONFIG,
				      HV_STIMER_ENABLE | HV_STIMER_DIRECT_MODE | (0x40 << 4), 0),
			 0);
	assert_int_equal(hv_msr_write(p, 0, HV_MSR_STIMER0_COUNT, 10, 0), 0);
	assert_int_equal(hv_scan(p, 10), UINT64_MAX);
	hv_partition_free(p);
	free(ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_rejects_bad_vp_counts),
		cmocka_unit_test(config_rejects_bad_clocks),
		cmocka_unit_test(config_rejects_missing_dependencies),
		cmocka_unit_test(config_rejects_bad_hypercall_code),
		cmocka_unit_test(config_rejects_null_arguments),
		cmocka_unit_test_setup_teardown(cpuid_identifies_hyper_v, setup, teardown),
		cmocka_unit_test_setup_teardown(cpuid_owns_only_its_leaves, setup, teardown),
		cmocka_unit_test(cpuid_advertises_only_offers),
		cmocka_unit_test(cpuid_hints_follow_config),
		cmocka_unit_test(synthetic_range_is_0x40000000_to_0x400001ff),
		cmocka_unit_test_setup_teardown(guest_os_id_is_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(hypercall_page_needs_guest_os_id, setup, teardown),
		cmocka_unit_test_setup_teardown(hypercall_page_outside_ram_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(vp_index_is_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(time_ref_count_reads_now, setup, teardown),
		cmocka_unit_test_setup_teardown(frequency_msrs_are_read_only, setup, teardown),
		cmocka_unit_test(vp_assist_page_always_accepted),
		cmocka_unit_test_setup_teardown(synic_msrs_read_and_write, setup, teardown),
		cmocka_unit_test_setup_teardown(sint_rejects_exception_vectors, setup, teardown),
		cmocka_unit_test_setup_teardown(stimer_msrs_read_and_write, setup, teardown),
		cmocka_unit_test_setup_teardown(crash_msrs_report_to_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(crash_message_is_bounded_and_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(crash_message_is_made_printable, setup, teardown),
		cmocka_unit_test_setup_teardown(tsc_invariant_control_bit_0, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_msrs_fault, setup, teardown),
		cmocka_unit_test(msrs_of_features_not_offered_fault),
		cmocka_unit_test_setup_teardown(bad_accesses_are_logged_once_per_msr, setup, teardown),
		cmocka_unit_test(milestones_are_logged_when_asked),
		cmocka_unit_test_setup_teardown(partitions_are_independent, setup, teardown),
		cmocka_unit_test(null_ops_are_silent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
