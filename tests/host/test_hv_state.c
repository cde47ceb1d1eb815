/* SPDX-License-Identifier: MIT */
/*
 * hv_save and hv_load: a partition in the middle of things (every
 * partition-wide MSR set, the SynIC on with messages queued behind busy
 * slots, timers armed and one with its message pending) saved and loaded
 * into a fresh partition comes back field for field (it saves to the same
 * bytes, shows the same state, and delivers the queued messages in order);
 * truncated, corrupt, mismatched or impossible records are refused and
 * leave the partition as it was.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "hv_fixture.h"

#define SIMP(vp) (0x1000ull + 0x2000ull * (vp))
#define SIEFP(vp) (0x2000ull + 0x2000ull * (vp))
#define SINT 2
#define VECTOR 0x30
#define HEADER_BYTES 24
#define RECORD_MAX (1u << 20)

static uint8_t rec[RECORD_MAX], rec2[RECORD_MAX];

/* Everything a record holds, set through the guest's and host's calls. */
static void make_busy(struct fixture *f)
{
	fix_wrmsr_ok(f, 0, HV_MSR_GUEST_OS_ID, 0x8100000000000000ull, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_HYPERCALL, 0x9000 | HV_HYPERCALL_MSR_ENABLE, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_REFERENCE_TSC, 0xA000 | HV_MSR_PAGE_ENABLE, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_TSC_INVARIANT_CONTROL, HV_TSC_INVARIANT_CONTROL_ENABLE, 0);
	for (uint32_t i = 0; i < 5; i++)
		fix_wrmsr_ok(f, 1, HV_MSR_CRASH_P0 + i, 0x1111ull * (i + 1), 0);
	for (uint32_t vp = 0; vp < 2; vp++) {
		fix_wrmsr_ok(f, vp, HV_MSR_VP_ASSIST_PAGE, 0xB000ull + vp * 0x1000 + 1, 0);
		fix_synic_on(f, vp, SIMP(vp), SIEFP(vp), SINT, (uint8_t)(VECTOR + vp));
		fix_wrmsr_ok(f, vp, HV_MSR_SINT0 + 5, 0x45 + vp, 0);
		/* Timer 0 periodic in direct mode, timer 1 one-shot in message
		 * mode on the busy SINT: its message waits (pending). */
		fix_wrmsr_ok(f, vp, HV_MSR_STIMER0_CONFIG,
			     HV_STIMER_ENABLE | HV_STIMER_PERIODIC | HV_STIMER_DIRECT_MODE |
				     (0x50ull << HV_STIMER_VECTOR_SHIFT), 100);
		fix_wrmsr_ok(f, vp, HV_MSR_STIMER0_COUNT, 7000 + vp, 100);
		for (uint32_t k = 0; k < 4; k++) {
			uint32_t payload[2] = {vp, k};
			assert_int_equal(hv_synic_post(f->p, vp, SINT, 1 + k, payload, sizeof(payload),
						       k),
					 0);
		}
		fix_wrmsr_ok(f, vp, HV_MSR_STIMER0_CONFIG + 2,
			     HV_STIMER_ENABLE | (uint64_t)SINT << HV_STIMER_SINT_SHIFT, 200);
		fix_wrmsr_ok(f, vp, HV_MSR_STIMER0_COUNT + 2, 300, 200);
	}
	hv_scan(f->p, 400); /* timer 1 expires into a busy slot: pending */
}

static size_t save(struct fixture *f, uint8_t *buf)
{
	size_t len = 0;
	assert_int_equal(hv_save(f->p, buf, RECORD_MAX, &len), 0);
	return len;
}

static void same_state(struct fixture *a, struct fixture *b)
{
	struct hv_partition_state sa, sb;
	hv_get_state(a->p, &sa);
	hv_get_state(b->p, &sb);
	assert_int_equal(sa.guest_os_id, sb.guest_os_id);
	assert_int_equal(sa.hypercall_msr, sb.hypercall_msr);
	assert_int_equal(sa.reference_tsc_msr, sb.reference_tsc_msr);
	assert_int_equal(sa.tsc_page_sequence, sb.tsc_page_sequence);
	assert_memory_equal(sa.crash_params, sb.crash_params, sizeof(sa.crash_params));
	for (uint32_t vp = 0; vp < 2; vp++) {
		struct hv_vp_state va, vb;
		assert_int_equal(hv_get_vp_state(a->p, vp, &va), 0);
		assert_int_equal(hv_get_vp_state(b->p, vp, &vb), 0);
		assert_memory_equal(&va, &vb, sizeof(va));
		assert_int_equal(hv_synic_queued(a->p, vp, SINT), hv_synic_queued(b->p, vp, SINT));
	}
	assert_int_equal(hv_ref_time(a->p, 123456789), hv_ref_time(b->p, 123456789));
}

static void round_trip_every_field(void **state)
{
	(void)state;
	struct fixture *a = fix_new(NULL), *b = fix_new(NULL);
	make_busy(a);
	/* A moved clock, as after a migration to another TSC frequency. */
	hv_set_tsc_frequency(a->p, 3000000000ull, 5000000000ull);
	size_t len = save(a, rec);
	assert_true(hv_synic_queued(a->p, 0, SINT) == 3);
	assert_int_equal(hv_load(b->p, rec, len), 0);
	same_state(a, b);
	/* Every field: the loaded partition saves to the same bytes. */
	assert_int_equal(save(b, rec2), len);
	assert_memory_equal(rec, rec2, len);
	/* The queued messages come in order on the loaded one (its slot
	 * RAM copied over, as guest memory travels with a snapshot). */
	memcpy(b->ram0, a->ram0, FIX_RAM0_SIZE);
	/* The first post is in the slot; at its EOM timer 1's pending
	 * message goes first (timer messages do), then the queue. */
	const uint32_t order[] = {1, HVMSG_TIMER_EXPIRED, 2, 3, 4};
	for (uint32_t k = 0; k < 5; k++) {
		assert_int_equal(fix_slot(b, SIMP(0), SINT).header.message_type, order[k]);
		assert_true(fix_consume(b, 0, SIMP(0), SINT, 500) == (k < 4));
	}
	fix_free(a);
	fix_free(b);
}

static void too_small_a_buffer(void **state)
{
	(void)state;
	struct fixture *f = fix_new(NULL);
	make_busy(f);
	size_t need = save(f, rec), len = 0;
	assert_int_equal(hv_save(f->p, rec2, need - 1, &len), -ENOSPC);
	assert_int_equal(len, need);
	/* A buffer smaller than the header: nothing written past it (ASan). */
	uint8_t *tiny = malloc(3);
	assert_non_null(tiny);
	assert_int_equal(hv_save(f->p, tiny, 3, &len), -ENOSPC);
	assert_int_equal(len, need);
	free(tiny);
	fix_free(f);
}

/* Loads what must be refused and checks the partition did not change. */
static void refused(struct fixture *f, const uint8_t *buf, size_t len)
{
	static uint8_t before[RECORD_MAX], after[RECORD_MAX];
	size_t n = save(f, before);
	assert_int_equal(hv_load(f->p, buf, len), -EINVAL);
	assert_int_equal(save(f, after), n);
	assert_memory_equal(before, after, n);
}

/* The body changed at offset `at` (from the header's end), checksum made
 * right: only the content checks stand in the way. */
static void with_body_u64(uint8_t *buf, size_t len, size_t at, uint64_t v)
{
	memcpy(buf + HEADER_BYTES + at, &v, sizeof(v));
	uint32_t crc = (uint32_t)crc32(0, buf + HEADER_BYTES, (uInt)(len - HEADER_BYTES));
	memcpy(buf + HEADER_BYTES - 4, &crc, 4);
}

static void bad_records_refused_whole(void **state)
{
	(void)state;
	struct fixture *a = fix_new(NULL), *b = fix_new(NULL);
	make_busy(a);
	size_t len = save(a, rec);
	fix_wrmsr_ok(b, 0, HV_MSR_GUEST_OS_ID, 0x42, 0); /* b has a state of its own */
	for (size_t cut = 0; cut < len; cut += cut < 64 ? 1 : 97)
		refused(b, rec, cut);
	refused(b, rec, 0);
	/* A flipped bit anywhere: the checksum (or the header) says no. */
	for (size_t at = 0; at < len; at += 131) {
		memcpy(rec2, rec, len);
		rec2[at] ^= 0x10;
		refused(b, rec2, len);
	}
	/* Another version; something after the end. */
	memcpy(rec2, rec, len);
	rec2[8] = 2;
	refused(b, rec2, len);
	memcpy(rec2, rec, len);
	rec2[len] = 0;
	refused(b, rec2, len + 1);
	/* Right checksum, impossible content: a scale that is not the
	 * frequency's (offset 8), a reserved word set (offset 96), an
	 * unmasked SINT on vector 5 (VP 0's SINT0, after the partition's
	 * 108 bytes and four registers). */
	memcpy(rec2, rec, len);
	with_body_u64(rec2, len, 8, 12345);
	refused(b, rec2, len);
	memcpy(rec2, rec, len);
	with_body_u64(rec2, len, 96, 1);
	refused(b, rec2, len);
	memcpy(rec2, rec, len);
	with_body_u64(rec2, len, 108 + 4 * 8, 5);
	refused(b, rec2, len);
	/* A partition of another VP count. */
	struct hv_config one = fix_config(HV_OFFER_ALL, 1);
	struct fixture *c = fix_new(&one);
	refused(c, rec, len);
	fix_free(a);
	fix_free(b);
	fix_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip_every_field),
		cmocka_unit_test(too_small_a_buffer),
		cmocka_unit_test(bad_records_refused_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
