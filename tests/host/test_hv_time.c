/* SPDX-License-Identifier: MIT */
/* Reference time, the reference TSC page and TSC frequency changes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hv_fixture.h"

#define TSC_PAGE_GPA 0x8000ull

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

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* What a Linux guest computes (hyperv_timer.h, hv_read_tsc_page_tsc);
 * UINT64_MAX when the page says "use the MSR". */
static uint64_t guest_read_tsc_page(struct fixture *f, uint64_t tsc)
{
	struct hv_tsc_page pg;
	memcpy(&pg, fix_ptr(f, TSC_PAGE_GPA), sizeof(pg));
	if (pg.sequence == 0)
		return UINT64_MAX;
	return (uint64_t)(((unsigned __int128)tsc * pg.scale) >> 64) + (uint64_t)pg.offset;
}

static uint32_t page_sequence(struct fixture *f)
{
	struct hv_tsc_page pg;
	memcpy(&pg, fix_ptr(f, TSC_PAGE_GPA), sizeof(pg));
	return pg.sequence;
}

static void ref_time_starts_at_zero(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hv_ref_time(f->p, FIX_TSC_AT_START), 0);
	/* One second of a 2.5 GHz TSC, with the TSC page's floor arithmetic:
	 * scale = floor(2^64 / 250) = 73786976294838206, so from TSC 0 one
	 * second reads 9999999, and from tsc_at_start exactly 10^7 (computed
	 * independently with Python's big integers). */
	assert_int_equal(hv_ref_time(f->p, FIX_TSC_AT_START + FIX_TSC_HZ), 10000000);
	hv_partition_free(f->p);
	f->cfg.tsc_at_start = 0;
	f->p = hv_partition_new(&f->cfg, &f->mem, &fix_ops, f);
	assert_int_equal(hv_ref_time(f->p, 0), 0);
	assert_int_equal(hv_ref_time(f->p, FIX_TSC_HZ), 9999999);
	assert_int_equal(hv_ref_time(f->p, 1000 * FIX_TSC_HZ), 9999999999ull);
}

static void ref_time_is_monotonic(void **state)
{
	struct fixture *f = *state;
	uint64_t seed = 42, tsc = FIX_TSC_AT_START, last = 0;
	for (int i = 0; i < 100000; i++) {
		tsc += xorshift(&seed) % 100000;
		uint64_t ref = hv_ref_time(f->p, tsc);
		assert_true(ref >= last);
		last = ref;
	}
}

static void tsc_page_agrees_with_ref_time(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(page_sequence(f), 0xA5A5A5A5);
	fix_wrmsr_ok(f, 0, HV_MSR_REFERENCE_TSC, TSC_PAGE_GPA | 1, 0);
	assert_int_equal(fix_rdmsr(f, 1, HV_MSR_REFERENCE_TSC), TSC_PAGE_GPA | 1);
	assert_int_not_equal(page_sequence(f), 0);

	uint64_t seed = 7;
	static const uint64_t edges[] = {0, 1, FIX_TSC_AT_START, FIX_TSC_AT_START + 1,
					 UINT64_MAX, UINT64_MAX / 2, 1ull << 63};
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
		assert_int_equal(guest_read_tsc_page(f, edges[i]), hv_ref_time(f->p, edges[i]));
	for (int i = 0; i < 100000; i++) {
		uint64_t tsc = xorshift(&seed) >> (xorshift(&seed) % 64);
		assert_int_equal(guest_read_tsc_page(f, tsc), hv_ref_time(f->p, tsc));
	}
}

static void tsc_page_sequence_advances(void **state)
{
	struct fixture *f = *state;
	struct hv_partition_state s;

	hv_get_state(f->p, &s);
	assert_int_equal(s.tsc_page_sequence, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_REFERENCE_TSC, TSC_PAGE_GPA | 1, 0);
	uint32_t first = page_sequence(f);
	hv_get_state(f->p, &s);
	assert_int_equal(s.tsc_page_sequence, first);
	assert_int_equal(s.reference_tsc_msr, TSC_PAGE_GPA | 1);

	/* Re-enabling rewrites the page with the next sequence. */
	fix_wrmsr_ok(f, 0, HV_MSR_REFERENCE_TSC, TSC_PAGE_GPA | 1, 0);
	assert_int_equal(page_sequence(f), first + 1);

	/* Disabling only stores the MSR: the page is left alone. */
	fix_wrmsr_ok(f, 0, HV_MSR_REFERENCE_TSC, TSC_PAGE_GPA, 0);
	assert_int_equal(page_sequence(f), first + 1);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_REFERENCE_TSC), TSC_PAGE_GPA);

	/* A disabled page elsewhere is not written either. */
	fix_wrmsr_ok(f, 0, HV_MSR_REFERENCE_TSC, 0x9000, 0);
	assert_int_equal(*(uint32_t *)fix_ptr(f, 0x9000), 0xA5A5A5A5);
}

static void tsc_page_outside_ram_faults(void **state)
{
	struct fixture *f = *state;
	struct hv_partition_state s;
	assert_int_equal(hv_msr_write(f->p, 0, HV_MSR_REFERENCE_TSC, FIX_NOT_RAM | 1, 0), -EINVAL);
	hv_get_state(f->p, &s);
	assert_int_equal(s.bad_msr_accesses, 1);
	assert_int_equal(s.reference_tsc_msr, 0);
	assert_int_equal(s.tsc_page_sequence, 0);
	/* Disabled, any GPA is stored. */
	fix_wrmsr_ok(f, 0, HV_MSR_REFERENCE_TSC, FIX_NOT_RAM, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_REFERENCE_TSC), FIX_NOT_RAM);
}

static void ref_to_tsc_inverts_rounding_up(void **state)
{
	struct fixture *f = *state;
	uint64_t seed = 99;
	for (int i = 0; i < 100000; i++) {
		uint64_t ref = 1 + xorshift(&seed) % (1ull << 50);
		uint64_t tsc = hv_ref_to_tsc(f->p, ref);
		assert_true(hv_ref_time(f->p, tsc) >= ref);
		assert_true(hv_ref_time(f->p, tsc - 1) < ref);
	}
	assert_int_equal(hv_ref_time(f->p, hv_ref_to_tsc(f->p, 0)), 0);
	/* No TSC value reaches these: saturate instead of wrapping. */
	assert_int_equal(hv_ref_to_tsc(f->p, UINT64_MAX), UINT64_MAX);
	assert_int_equal(hv_ref_to_tsc(f->p, UINT64_MAX / 2), UINT64_MAX);
}

static void frequency_change_keeps_time_continuous(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 0, HV_MSR_REFERENCE_TSC, TSC_PAGE_GPA | 1, 0);
	uint32_t seq = page_sequence(f);

	uint64_t tsc = FIX_TSC_AT_START + 7 * FIX_TSC_HZ + 12345;
	uint64_t before = hv_ref_time(f->p, tsc);
	uint64_t new_hz = 3000000000ull;
	hv_set_tsc_frequency(f->p, new_hz, tsc);

	assert_int_equal(hv_ref_time(f->p, tsc), before);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_TSC_FREQUENCY), new_hz);
	/* One second at the new rate is 10^7 ticks, give or take the floor. */
	uint64_t later = hv_ref_time(f->p, tsc + new_hz);
	assert_true(later - before >= 9999999 && later - before <= 10000001);
	/* The page was rewritten under a new sequence and agrees. */
	assert_int_equal(page_sequence(f), seq + 1);
	struct hv_tsc_page pg;
	memcpy(&pg, fix_ptr(f, TSC_PAGE_GPA), sizeof(pg));
	assert_int_equal(pg.scale, (uint64_t)(((unsigned __int128)10000000 << 64) / new_hz));
	for (uint64_t t = tsc - 1000; t < tsc + 1000; t++)
		assert_int_equal(guest_read_tsc_page(f, t), hv_ref_time(f->p, t));

	/* Monotonic across the change. */
	assert_true(hv_ref_time(f->p, tsc + 1) >= before);
	assert_true(hv_ref_time(f->p, tsc - 1) <= before);
}

static void frequency_change_without_page(void **state)
{
	struct fixture *f = *state;
	uint64_t tsc = FIX_TSC_AT_START + 3 * FIX_TSC_HZ;
	uint64_t before = hv_ref_time(f->p, tsc);
	hv_set_tsc_frequency(f->p, 1000000000ull, tsc);
	assert_int_equal(hv_ref_time(f->p, tsc), before);
	struct hv_partition_state s;
	hv_get_state(f->p, &s);
	assert_int_equal(s.tsc_page_sequence, 0);
	assert_int_equal(*(uint32_t *)fix_ptr(f, TSC_PAGE_GPA), 0xA5A5A5A5);
	/* Slower TSC, larger scale: the inverse still holds. */
	for (uint64_t r = before; r < before + 5000; r += 7) {
		uint64_t t = hv_ref_to_tsc(f->p, r);
		assert_true(hv_ref_time(f->p, t) >= r);
		assert_true(hv_ref_time(f->p, t - 1) < r);
	}
}

static void frequency_change_rejects_slow_tsc(void **state)
{
	struct fixture *f = *state;
	uint64_t tsc = FIX_TSC_AT_START + FIX_TSC_HZ;
	uint64_t before = hv_ref_time(f->p, tsc + FIX_TSC_HZ);
	hv_set_tsc_frequency(f->p, 0, tsc);
	hv_set_tsc_frequency(f->p, HV_REF_TIME_HZ, tsc);
	assert_int_equal(hv_ref_time(f->p, tsc + FIX_TSC_HZ), before);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_TSC_FREQUENCY), FIX_TSC_HZ);
	assert_int_equal(f->n_log, 1); /* once */
}

static void tsc_page_is_partition_wide(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 1, HV_MSR_REFERENCE_TSC, TSC_PAGE_GPA | 1, 0);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_REFERENCE_TSC), TSC_PAGE_GPA | 1);
	assert_int_equal(guest_read_tsc_page(f, FIX_TSC_AT_START + 5), hv_ref_time(f->p, FIX_TSC_AT_START + 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(ref_time_starts_at_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(ref_time_is_monotonic, setup, teardown),
		cmocka_unit_test_setup_teardown(tsc_page_agrees_with_ref_time, setup, teardown),
		cmocka_unit_test_setup_teardown(tsc_page_sequence_advances, setup, teardown),
		cmocka_unit_test_setup_teardown(tsc_page_outside_ram_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(ref_to_tsc_inverts_rounding_up, setup, teardown),
		cmocka_unit_test_setup_teardown(frequency_change_keeps_time_continuous, setup, teardown),
		cmocka_unit_test_setup_teardown(frequency_change_without_page, setup, teardown),
		cmocka_unit_test_setup_teardown(frequency_change_rejects_slow_tsc, setup, teardown),
		cmocka_unit_test_setup_teardown(tsc_page_is_partition_wide, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
