/* SPDX-License-Identifier: MIT */
/*
 * The KVM partition's pieces that need no /dev/kvm: the hypercall
 * trampoline, the CPUID list given to the vCPUs, the MSR filter.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auto_eoi.h"
#include "kvm.h"

#define RAM_SIZE (64u * 1024)

struct fixture {
	struct guest_memory mem;
	uint8_t *ram;
	struct hv_partition *hv;
};

static void inject(void *ctx, uint32_t vp, uint8_t vector, bool auto_eoi)
{
	(void)ctx, (void)vp, (void)vector, (void)auto_eoi;
}

static void timers_changed(void *ctx)
{
	(void)ctx;
}

static void log_nothing(void *ctx, const char *fmt, va_list ap)
{
	(void)ctx, (void)fmt, (void)ap;
}

static const struct hv_host_ops ops = {
	.inject = inject, .timers_changed = timers_changed, .log = log_nothing};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->ram = aligned_alloc(4096, RAM_SIZE);
	memset(f->ram, 0, RAM_SIZE);
	if (guest_memory_add(&f->mem, 0, RAM_SIZE, f->ram))
		return -1;
	struct hv_config cfg = {.vp_count = 2,
				 .tsc_hz = 1000000000,
				 .apic_hz = 200000000,
				 .features = HV_OFFER_ALL};
	f->hv = hv_partition_new(&cfg, &f->mem, &ops, NULL);
	*state = f;
	return f->hv ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	hv_partition_free(f->hv);
	free(f->ram);
	free(f);
	return 0;
}

static void test_hypercall_code(void **state)
{
	(void)state;
	uint8_t buf[16];
	static const uint8_t want[] = {0xF3, 0x0F, 0x1E, 0xFA, 0xE6, KVM_PARTITION_HYPERCALL_PORT,
				       0xC3};
	assert_int_equal(kvm_partition_hypercall_code(buf, sizeof(buf)), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(kvm_partition_hypercall_code(buf, 6), 0);
	/* OUT imm8 can only name ports below 0x100. */
	assert_true(KVM_PARTITION_HYPERCALL_PORT < 0x100);
}

static const struct kvm_cpuid_entry2 *find_leaf(const struct kvm_cpuid_entry2 *e, int n,
						uint32_t leaf)
{
	const struct kvm_cpuid_entry2 *found = NULL;
	for (int i = 0; i < n; i++)
		if (e[i].function == leaf) {
			assert_null(found); /* each leaf once */
			found = &e[i];
		}
	return found;
}

static void test_cpuid_list(void **state)
{
	struct fixture *f = *state;
	struct kvm_cpuid_entry2 e[32] = {
		{.function = 0, .eax = 0xD},
		{.function = 1, .ecx = 0x1, .ebx = 0x00010800},
		/* KVM's own signature and features: must go. */
		{.function = 0x40000000, .eax = 0x40000001, .ebx = 0x4B4D564B},
		{.function = 0x40000001, .eax = 0x1234},
		{.function = 0x80000000, .eax = 0x80000008},
	};
	int n = kvm_partition_build_cpuid(f->hv, e, 5, 32);
	assert_true(n > 5);

	const struct kvm_cpuid_entry2 *l1 = find_leaf(e, n, 1);
	assert_non_null(l1);
	assert_true(l1->ecx & HV_CPUID1_ECX_HYPERVISOR);
	assert_true(l1->ecx & 0x1); /* the rest kept */
	assert_non_null(find_leaf(e, n, 0x80000000));

	const struct kvm_cpuid_entry2 *vendor = find_leaf(e, n, HV_CPUID_VENDOR_AND_MAX);
	assert_non_null(vendor);
	assert_int_equal(vendor->ebx, HV_CPUID_VENDOR_EBX);
	assert_int_equal(vendor->ecx, HV_CPUID_VENDOR_ECX);
	assert_int_equal(vendor->edx, HV_CPUID_VENDOR_EDX);
	const struct kvm_cpuid_entry2 *iface = find_leaf(e, n, HV_CPUID_INTERFACE);
	assert_non_null(iface);
	assert_int_equal(iface->eax, HV_CPUID_INTERFACE_SIGNATURE);
	/* Every leaf up to the advertised maximum is there, as hv says. */
	for (uint32_t leaf = HV_CPUID_VENDOR_AND_MAX; leaf <= vendor->eax; leaf++) {
		uint32_t r[4];
		const struct kvm_cpuid_entry2 *x = find_leaf(e, n, leaf);
		assert_non_null(x);
		assert_true(hv_cpuid(f->hv, leaf, r));
		assert_int_equal(x->eax, r[0]);
		assert_int_equal(x->ebx, r[1]);
		assert_int_equal(x->ecx, r[2]);
		assert_int_equal(x->edx, r[3]);
	}
	const struct kvm_cpuid_entry2 *features = find_leaf(e, n, HV_CPUID_FEATURES);
	assert_true(features->eax & HV_FEAT_SYNIC_MSRS);
	assert_true(features->edx & HV_FEAT_X64_STIMER_DIRECT_MODE);
}

static void test_cpuid_list_full(void **state)
{
	struct fixture *f = *state;
	struct kvm_cpuid_entry2 e[4] = {{.function = 0}, {.function = 1}, {.function = 2}};
	assert_int_equal(kvm_partition_build_cpuid(f->hv, e, 3, 4), -ENOSPC);
}

static void test_msr_filter(void **state)
{
	(void)state;
	struct kvm_msr_filter filter;
	kvm_partition_msr_filter(&filter);
	assert_int_equal(filter.flags, KVM_MSR_FILTER_DEFAULT_ALLOW);
	const struct kvm_msr_filter_range *r = &filter.ranges[0];
	assert_int_equal(r->flags, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE);
	assert_int_equal(r->base, HV_MSR_RANGE_FIRST);
	assert_int_equal(r->base + r->nmsrs - 1, HV_MSR_RANGE_LAST);
	/* Every synthetic MSR host/hv knows lies inside, and is "denied"
	 * (bit clear): that is what sends it to user space. */
	for (uint32_t msr = 0x3FFFFFF0u; msr < 0x40000300u; msr++) {
		bool inside = msr >= r->base && msr < r->base + r->nmsrs;
		if (hv_msr_is_synthetic(msr))
			assert_true(inside);
		if (inside) {
			uint32_t bit = msr - r->base;
			assert_int_equal(r->bitmap[bit / 8] & (1u << (bit % 8)), 0);
		}
	}
	assert_true(hv_msr_is_synthetic(HV_MSR_CRASH_CTL));
	/* No other range: KVM keeps every other MSR. */
	for (size_t i = 1; i < KVM_MSR_FILTER_MAX_RANGES; i++)
		assert_int_equal(filter.ranges[i].nmsrs, 0);
}

/* A KVM_GET_LAPIC register page with these IRR and ISR vectors (-1 ends
 * each list). */
static void lapic_page(uint8_t regs[1024], const int *irr, const int *isr)
{
	memset(regs, 0, 1024);
	for (; *irr >= 0; irr++)
		regs[0x200 + *irr / 32 * 16 + *irr % 32 / 8] |= (uint8_t)(1u << (*irr % 8));
	for (; *isr >= 0; isr++)
		regs[0x100 + *isr / 32 * 16 + *isr % 32 / 8] |= (uint8_t)(1u << (*isr % 8));
}

static void test_lapic_banks(void **state)
{
	(void)state;
	uint8_t regs[1024];
	lapic_page(regs, (const int[]){0x31, 0xef, -1}, (const int[]){0xf3, -1});
	struct vector_set irr, isr;
	auto_eoi_read_lapic(regs, &irr, &isr);
	assert_true(vector_set_has(&irr, 0x31) && vector_set_has(&irr, 0xef));
	assert_false(vector_set_has(&irr, 0xf3) || vector_set_has(&irr, 0x30));
	assert_int_equal(vector_set_highest(&isr), 0xf3);
	assert_int_equal(vector_set_highest(&irr), 0xef);
	struct vector_set none = {0};
	assert_int_equal(vector_set_highest(&none), -1);
	assert_true(vector_set_empty(&none));
}

/* Taken (in service, the highest): end it now; once ended it is no longer
 * outstanding. */
static void test_auto_eoi_taken(void **state)
{
	(void)state;
	struct vector_set out = {0}, irr = {0}, isr = {0};
	vector_set_add(&out, 0xf3);
	vector_set_add(&isr, 0xf3);
	vector_set_add(&isr, 0x41); /* a lower one in service beneath it */
	unsigned vanished = 0;
	assert_int_equal(auto_eoi_next(&out, &irr, &isr, &vanished), 0xf3);
	assert_true(vector_set_has(&out, 0xf3)); /* until the caller ended it */
	auto_eoi_ended(&out, &irr, 0xf3);
	assert_true(vector_set_empty(&out));
	assert_int_equal(vanished, 0);
}

/* Not taken yet (only requested): wait. */
static void test_auto_eoi_not_taken(void **state)
{
	(void)state;
	struct vector_set out = {0}, irr = {0}, isr = {0};
	vector_set_add(&out, 0xf3);
	vector_set_add(&irr, 0xf3);
	unsigned vanished = 0;
	assert_int_equal(auto_eoi_next(&out, &irr, &isr, &vanished), -1);
	assert_true(vector_set_has(&out, 0xf3));
	assert_int_equal(vanished, 0);
}

/* In service and requested again: end the one in service, keep waiting
 * for the next. */
static void test_auto_eoi_taken_and_requested_again(void **state)
{
	(void)state;
	struct vector_set out = {0}, irr = {0}, isr = {0};
	vector_set_add(&out, 0xf3);
	vector_set_add(&irr, 0xf3);
	vector_set_add(&isr, 0xf3);
	unsigned vanished = 0;
	assert_int_equal(auto_eoi_next(&out, &irr, &isr, &vanished), 0xf3);
	auto_eoi_ended(&out, &irr, 0xf3);
	assert_true(vector_set_has(&out, 0xf3));
}

/* Under a higher vector in service (a nested handler): an EOI would end
 * that one, so wait. */
static void test_auto_eoi_nested(void **state)
{
	(void)state;
	struct vector_set out = {0}, irr = {0}, isr = {0};
	vector_set_add(&out, 0x51);
	vector_set_add(&isr, 0x51);
	vector_set_add(&isr, 0xfd);
	unsigned vanished = 0;
	assert_int_equal(auto_eoi_next(&out, &irr, &isr, &vanished), -1);
	assert_true(vector_set_has(&out, 0x51));
}

/* Neither requested nor in service: ended already (or a LAPIC that reads
 * ISR as 0, as this machine's PVM): dropped and counted. */
static void test_auto_eoi_vanished(void **state)
{
	(void)state;
	struct vector_set out = {0}, irr = {0}, isr = {0};
	vector_set_add(&out, 0xf3);
	vector_set_add(&out, 0x22);
	unsigned vanished = 0;
	assert_int_equal(auto_eoi_next(&out, &irr, &isr, &vanished), -1);
	assert_true(vector_set_empty(&out));
	assert_int_equal(vanished, 2);
}

/* A vector sent while the LAPIC was being read may be missing from the
 * read: it is not judged vanished, but kept for the next look, while one
 * sent before the read is. (Judging it would drop it, and a taken
 * auto-EOI vector nobody ends blocks its class.) */
static void test_auto_eoi_sent_during_the_read(void **state)
{
	(void)state;
	struct vector_set out = {0}, fresh = {0}, irr = {0}, isr = {0};
	vector_set_add(&out, 0x41);
	vector_set_add(&out, 0x42);
	vector_set_add(&fresh, 0x42);
	unsigned vanished = 0;
	assert_int_equal(auto_eoi_settle(&out, &fresh, &irr, &isr, &vanished), -1);
	assert_false(vector_set_has(&out, 0x41));
	assert_true(vector_set_has(&out, 0x42));
	assert_int_equal(vanished, 1);
	/* In service at the next look: ended. */
	vector_set_add(&isr, 0x42);
	struct vector_set none = {0};
	assert_int_equal(auto_eoi_settle(&out, &none, &irr, &isr, &vanished), 0x42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hypercall_code),
		cmocka_unit_test(test_cpuid_list),
		cmocka_unit_test(test_cpuid_list_full),
		cmocka_unit_test(test_msr_filter),
		cmocka_unit_test(test_lapic_banks),
		cmocka_unit_test(test_auto_eoi_taken),
		cmocka_unit_test(test_auto_eoi_not_taken),
		cmocka_unit_test(test_auto_eoi_taken_and_requested_again),
		cmocka_unit_test(test_auto_eoi_nested),
		cmocka_unit_test(test_auto_eoi_vanished),
		cmocka_unit_test(test_auto_eoi_sent_during_the_read),
	};
	return cmocka_run_group_tests_name("kvm parts", tests, setup, teardown);
}
