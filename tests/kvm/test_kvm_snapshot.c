/* SPDX-License-Identifier: MIT */
/*
 * Pause, save and restore of the KVM partition (partition.h; KVM's state
 * in kvm_state.c, the hypervisor interface's in hv_save): the test guest
 * counts (KT_MODE_COUNT) on VP 0 while VP 1 waits for a start-up IPI; the
 * partition is paused, saved with its RAM, and restored into a new
 * partition, which counts on from where the saved one stood with its
 * registers, memory, TSC and reference counter consistent; the original
 * resumes; records that are damaged or for another VP count are refused.
 * Every case skips without a usable /dev/kvm.
 *
 *   test-kvm-snapshot GUEST_IMAGE
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "kvm.h"
#include "kvm_boot.h"
#include "kvm_test.h"
#include "partition.h"

#define VPS 2
#define WAIT_S 120  /* CPL0 code is emulated on PVM: counting is slow */
#define STEP 2000   /* counts that show a guest runs */
#define RECORD_CAP (1u << 20)
/* Where VP 0's registers sit in KVM's record (kvm_state.c): the header,
 * KVM's clock, three interrupt controllers and the registers' size. */
#define VP0_REGS_AT (24 + 8 + 3 * (4 + sizeof(struct kvm_irqchip)) + 4)

static const char *guest_image;

/* A saved partition: KVM's record, hv's record, RAM. */
struct snapshot {
	uint8_t *kvm, *hv, *ram;
	size_t kvm_len, hv_len;
	struct kt_count_page page; /* as saved */
};

static void quiet_log(void *ctx, const char *fmt, va_list ap)
{
	(void)ctx, (void)fmt, (void)ap;
}

/* tsc_hz: the guest TSC frequency hv is told (0: KVM's, as a real
 * machine's); another stands in for a host whose TSC runs otherwise. */
static struct kvm_partition *new_partition_at(uint32_t vps, uint64_t tsc_hz)
{
	struct kvm_partition_config cfg = {
		.vp_count = vps,
		.memory_size = KT_MEMORY_SIZE,
		.tsc_hz = tsc_hz,
		.log = quiet_log,
	};
	struct kvm_partition *kp;
	assert_int_equal(kvm_partition_new(&cfg, &kp), 0);
	return kp;
}

static struct kvm_partition *new_partition(uint32_t vps)
{
	return new_partition_at(vps, 0);
}

static struct kt_count_page *count_page(struct kvm_partition *kp)
{
	return guest_memory_ptr(kvm_partition_memory(kp), KT_COUNT_GPA,
				sizeof(struct kt_count_page));
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Waits (deadline WAIT_S) until the guest's count passes `past`. */
static void wait_count(struct kvm_partition *kp, uint64_t past)
{
	struct kt_count_page *page = count_page(kp);
	double deadline = now_s() + WAIT_S;
	while (page->count <= past) {
		struct kvm_partition_stats st;
		kvm_partition_get_stats(kp, &st);
		if (st.failed)
			fail_msg("the VM failed: %s", st.failure);
		if (now_s() > deadline)
			fail_msg("the count stayed at %llu, never past %llu",
				 (unsigned long long)page->count, (unsigned long long)past);
		struct timespec tick = {0, 1000000};
		nanosleep(&tick, NULL); /* polling a condition, with a deadline */
	}
}

static void expect_consistent(struct kvm_partition *kp)
{
	struct kt_count_page *page = count_page(kp);
	assert_int_equal(page->memory_mismatch, 0);
	assert_int_equal(page->tsc_back, 0);
	assert_int_equal(page->ref_back, 0);
}

static void snapshot_take(struct kvm_partition *kp, struct snapshot *s)
{
	struct partition *p = kvm_partition_base(kp);
	s->kvm = malloc(RECORD_CAP);
	s->hv = malloc(RECORD_CAP);
	s->ram = malloc(KT_MEMORY_SIZE);
	assert_non_null(s->kvm);
	assert_non_null(s->hv);
	assert_non_null(s->ram);
	s->kvm_len = RECORD_CAP;
	partition_lock(p);
	assert_int_equal(partition_save(p, s->kvm, &s->kvm_len), 0);
	partition_unlock(p);
	assert_int_equal(hv_save(kvm_partition_hv(kp), s->hv, RECORD_CAP, &s->hv_len), 0);
	assert_int_equal(guest_memory_read(kvm_partition_memory(kp), 0, s->ram, KT_MEMORY_SIZE), 0);
	memcpy(&s->page, count_page(kp), sizeof(s->page));
}

static void snapshot_free(struct snapshot *s)
{
	free(s->kvm);
	free(s->hv);
	free(s->ram);
}

/* A new partition with the snapshot loaded, not launched yet (tsc_hz as
 * new_partition_at). */
static struct kvm_partition *snapshot_restore_at(const struct snapshot *s, uint64_t tsc_hz)
{
	struct kvm_partition *kp = new_partition_at(VPS, tsc_hz);
	assert_int_equal(guest_memory_write(kvm_partition_memory(kp), 0, s->ram, KT_MEMORY_SIZE), 0);
	assert_int_equal(partition_restore(kvm_partition_base(kp), s->kvm, s->kvm_len), 0);
	assert_int_equal(hv_load(kvm_partition_hv(kp), s->hv, s->hv_len), 0);
	return kp;
}

static struct kvm_partition *snapshot_restore(const struct snapshot *s)
{
	return snapshot_restore_at(s, 0);
}

/* The counting guest, launched and counting. */
static struct kvm_partition *counting_guest(void)
{
	struct kvm_partition *kp = new_partition(VPS);
	assert_int_equal(kt_boot_long_mode(kp, guest_image, KT_LOAD_GPA, KT_STACK_TOP,
					   KT_MODE_COUNT),
			 0);
	assert_int_equal(kvm_partition_launch(kp), 0);
	wait_count(kp, STEP);
	return kp;
}

/* Paused means stopped: nothing changes between two saves, and the
 * count holds; a second pause is refused, resume lets it count on. */
static void test_pause_holds_everything(void **state)
{
	(void)state;
	struct kvm_partition *kp = counting_guest();
	struct partition *p = kvm_partition_base(kp);
	assert_int_equal(partition_pause(p), 0);
	assert_int_equal(partition_pause(p), -EALREADY);
	struct snapshot a, b;
	snapshot_take(kp, &a);
	snapshot_take(kp, &b);
	/* VP 0's registers did not move (the clocks did: KVM's clock and
	 * the TSC run on while paused). */
	assert_int_equal(a.kvm_len, b.kvm_len);
	assert_memory_equal(a.kvm + VP0_REGS_AT, b.kvm + VP0_REGS_AT, sizeof(struct kvm_regs));
	assert_int_equal(a.hv_len, b.hv_len);
	assert_memory_equal(a.hv, b.hv, a.hv_len);
	assert_int_equal(a.page.count, count_page(kp)->count);
	/* Saving a running partition is refused. */
	assert_int_equal(partition_resume(p), 0);
	assert_int_equal(partition_resume(p), -EINVAL);
	size_t len = RECORD_CAP;
	uint8_t *buf = malloc(len);
	partition_lock(p);
	assert_int_equal(partition_save(p, buf, &len), -EBUSY);
	partition_unlock(p);
	free(buf);
	wait_count(kp, a.page.count + STEP);
	expect_consistent(kp);
	kvm_partition_stop(kp);
	snapshot_free(&a);
	snapshot_free(&b);
}

/* Restored into a new partition, the guest counts on from the saved
 * count with nothing lost; the original, resumed, does too; the same
 * snapshot restored twice gives two guests that both go on. */
static void test_restore_continues(void **state)
{
	(void)state;
	struct kvm_partition *kp = counting_guest();
	assert_int_equal(partition_pause(kvm_partition_base(kp)), 0);
	struct snapshot s;
	snapshot_take(kp, &s);
	uint64_t saved = s.page.count;
	assert_true(saved >= STEP);

	struct kvm_partition *copy = snapshot_restore(&s);
	struct kvm_partition *twin = snapshot_restore(&s);
	assert_int_equal(count_page(copy)->count, saved);
	assert_int_equal(kvm_partition_launch(copy), 0);
	assert_int_equal(kvm_partition_launch(twin), 0);
	assert_int_equal(partition_resume(kvm_partition_base(kp)), 0);
	wait_count(copy, saved + STEP);
	wait_count(twin, saved + STEP);
	wait_count(kp, saved + STEP);
	expect_consistent(copy);
	expect_consistent(twin);
	expect_consistent(kp);
	/* The reference counter was read again after the restore. */
	assert_true(count_page(copy)->ref_reads > s.page.ref_reads);

	/* VP 1 still waits for its start-up IPI in the copy, as it did. */
	struct kvm_partition_stats st;
	kvm_partition_get_stats(copy, &st);
	assert_false(st.failed);
	kvm_partition_stop(copy);
	kvm_partition_stop(twin);
	kvm_partition_stop(kp);
	snapshot_free(&s);
}

/* Restored where the guest TSC runs at another rate (half as fast again):
 * hv takes this host's rate at launch, re-scaling reference time from the
 * TSC the guest starts at, so reference time goes on without a step
 * (read across the launch, within the second the reads take at most) and
 * the guest's counter never goes back; the same host's restore re-scales
 * nothing. */
static void test_restore_at_another_tsc_rate(void **state)
{
	(void)state;
	struct kvm_partition *kp = counting_guest();
	assert_int_equal(partition_pause(kvm_partition_base(kp)), 0);
	struct snapshot s;
	snapshot_take(kp, &s);
	struct hv_partition_state hs;
	hv_get_state(kvm_partition_hv(kp), &hs);
	uint64_t saved_hz = hs.tsc_hz, other_hz = saved_hz / 2 * 3;

	struct kvm_partition *same = snapshot_restore(&s);
	struct kvm_partition *faster = snapshot_restore_at(&s, other_hz);
	hv_get_state(kvm_partition_hv(faster), &hs);
	assert_int_equal(hs.tsc_hz, saved_hz); /* the record's, until launch */
	assert_int_equal(kvm_partition_launch(same), 0);
	uint64_t before = partition_now(kvm_partition_base(faster));
	assert_int_equal(kvm_partition_launch(faster), 0);
	/* Spliced, not stepped: reference time reads on from where it was
	 * (forward by the moment between the reads; a new scale with the old
	 * offset would put it anywhere in 2^64). */
	uint64_t after = partition_now(kvm_partition_base(faster));
	assert_true(after >= before && after - before < 10000000u);
	hv_get_state(kvm_partition_hv(faster), &hs);
	assert_int_equal(hs.tsc_hz, other_hz);
	hv_get_state(kvm_partition_hv(same), &hs);
	assert_int_equal(hs.tsc_hz, saved_hz);
	wait_count(faster, s.page.count + STEP);
	wait_count(same, s.page.count + STEP);
	expect_consistent(faster);
	expect_consistent(same);
	assert_true(count_page(faster)->ref_reads > s.page.ref_reads);
	kvm_partition_stop(same);
	kvm_partition_stop(faster);
	kvm_partition_stop(kp);
	snapshot_free(&s);
}

/* Damaged records, and records for another VP count, are refused before
 * anything is loaded; the record's size is found by a dry run. */
static void test_bad_records_refused(void **state)
{
	(void)state;
	struct kvm_partition *kp = counting_guest();
	assert_int_equal(partition_pause(kvm_partition_base(kp)), 0);
	struct snapshot s;
	snapshot_take(kp, &s);
	size_t need = 8;
	uint8_t small[8];
	partition_lock(kvm_partition_base(kp));
	assert_int_equal(partition_save(kvm_partition_base(kp), small, &need), -ENOSPC);
	partition_unlock(kvm_partition_base(kp));
	assert_int_equal(need, s.kvm_len);
	kvm_partition_stop(kp);

	struct kvm_partition *fresh = new_partition(VPS);
	struct partition *p = kvm_partition_base(fresh);
	assert_int_equal(partition_restore(p, s.kvm, s.kvm_len - 1), -EINVAL);
	assert_int_equal(partition_restore(p, s.kvm, 10), -EINVAL);
	for (size_t at = 0; at < s.kvm_len; at += s.kvm_len / 7 + 1) {
		s.kvm[at] ^= 0x20;
		assert_int_equal(partition_restore(p, s.kvm, s.kvm_len), -EINVAL);
		s.kvm[at] ^= 0x20;
	}
	kvm_partition_stop(fresh);

	struct kvm_partition *one = new_partition(1);
	assert_int_equal(partition_restore(kvm_partition_base(one), s.kvm, s.kvm_len), -EINVAL);
	kvm_partition_stop(one);
	snapshot_free(&s);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-kvm-snapshot GUEST_IMAGE\n");
		return 2;
	}
	guest_image = argv[1];
	if (kvm_partition_probe(NULL)) {
		printf("1..0 # SKIP no usable /dev/kvm\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pause_holds_everything),
		cmocka_unit_test(test_restore_continues),
		cmocka_unit_test(test_restore_at_another_tsc_rate),
		cmocka_unit_test(test_bad_records_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
