/* SPDX-License-Identifier: MIT */
/*
 * The KVM partition on a real vCPU: the test guest (tests/kvm/guest) runs
 * once, reporting each check on a port; each case below asserts one check
 * (and what the host saw of it). Without a usable /dev/kvm every case is
 * skipped.
 *
 *   test-kvm GUEST_IMAGE [plain-regs]
 *
 * plain-regs: hypercall registers through KVM_GET/SET_REGS rather than the
 * run area's synced registers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kvm.h"
#include "kvm_boot.h"
#include "kvm_test.h"

#define RUN_TIMEOUT_MS 120000

static const char *guest_image;
static bool plain_regs;

struct run {
	bool unavailable; /* no usable /dev/kvm: skip */
	int boot_err;
	int wait_err;
	int exit_status;
	struct kvm_partition_stats stats;
	struct hv_partition_state hv_state;
	struct hv_vp_state vp_state;
	/* Reports: result + 1 (0: never reported). Written by the VP thread
	 * before the guest ends, read after the wait. */
	uint32_t result[KT_CHECK_COUNT];
	uint32_t unknown_reports;
	uint32_t posts_requested;
	int post_err;
	int low_err; /* sending KT_LOW_VECTOR */
	uint32_t messages;
	uint8_t message[KT_MESSAGE_BYTES];
	uint32_t message_type;
	uint32_t events;
};

static uint16_t on_message(void *ctx, uint32_t vp, const struct hv_posted_message *msg)
{
	struct run *r = ctx;
	(void)vp;
	r->messages++;
	r->message_type = msg->message_type;
	memcpy(r->message, msg->payload,
	       msg->payload_size < KT_MESSAGE_BYTES ? msg->payload_size : KT_MESSAGE_BYTES);
	return HV_STATUS_SUCCESS;
}

static uint16_t on_event(void *ctx, uint32_t vp, uint16_t flag)
{
	struct run *r = ctx;
	(void)vp;
	(void)flag;
	r->events++;
	return HV_STATUS_SUCCESS;
}

static void on_pio(void *ctx, struct kvm_partition *kp, uint32_t vp, uint16_t port,
		   uint8_t size, bool out, uint32_t *value)
{
	struct run *r = ctx;
	(void)size;
	if (!out)
		return;
	if (port == KT_PORT_REPORT) {
		uint32_t check = *value >> 16;
		if (check > 0 && check < KT_CHECK_COUNT)
			r->result[check] = (*value & 0xFFFF) + 1;
		else
			r->unknown_reports++;
	} else if (port == KT_PORT_REQUEST &&
		   (*value == KT_REQ_POST_MESSAGE || *value == KT_REQ_AUTO_EOI)) {
		static const char hello[KT_MESSAGE_BYTES] = "hello from host!";
		r->posts_requested++;
		kvm_partition_lock(kp);
		r->post_err = hv_synic_post(kvm_partition_hv(kp), vp, KT_SINT, KT_MESSAGE_TYPE, hello,
					    KT_MESSAGE_BYTES, 0);
		kvm_partition_unlock(kp);
		if (*value == KT_REQ_AUTO_EOI)
			r->low_err = kvm_partition_interrupt(kp, vp, KT_LOW_VECTOR);
	}
}

__attribute__((format(printf, 2, 0))) static void quiet_log(void *ctx, const char *fmt,
								va_list ap)
{
	(void)ctx;
	if (getenv("HVKIT_TEST_VERBOSE")) {
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
}

/* Boots the test guest on a partition of vp_count VPs (VP 0 runs it;
 * the others wait for a SIPI that never comes) and records the run. */
static struct run *boot_guest(uint32_t vp_count)
{
	struct run *r = calloc(1, sizeof(*r));
	struct kvm_partition *kp;
	struct kvm_partition_config cfg = {
		.vp_count = vp_count,
		.memory_size = KT_MEMORY_SIZE,
		.debug_exit = true,
		.log = quiet_log,
		.pio = on_pio,
		.pio_ctx = r,
		/* To see the skip path on a machine with KVM. */
		.device = getenv("HVKIT_KVM_DEVICE"),
		.plain_regs = plain_regs,
	};

	if (!r)
		return NULL;
	int err = kvm_partition_new(&cfg, &kp);
	if (err == KVM_PARTITION_UNAVAILABLE) {
		r->unavailable = true;
		return r;
	}
	if (err) {
		free(r);
		return NULL;
	}
	struct hv_partition *hv = kvm_partition_hv(kp);
	kvm_partition_lock(kp);
	err = hv_connection_add_message(hv, KT_MESSAGE_CONNECTION, on_message, r);
	if (!err)
		err = hv_connection_add_event(hv, KT_EVENT_CONNECTION, on_event, r);
	kvm_partition_unlock(kp);
	r->boot_err = err ? err
			  : kt_boot_long_mode(kp, guest_image, KT_LOAD_GPA, KT_STACK_TOP,
					      KT_MODE_CHECKS);
	if (!r->boot_err)
		r->boot_err = kvm_partition_launch(kp);
	if (!r->boot_err)
		r->wait_err = kvm_partition_wait(kp, RUN_TIMEOUT_MS, &r->exit_status);
	kvm_partition_halt(kp);
	kvm_partition_get_stats(kp, &r->stats);
	hv_get_state(hv, &r->hv_state);
	hv_get_vp_state(hv, 0, &r->vp_state);
	kvm_partition_stop(kp);
	return r;
}

static int run_guest(void **state)
{
	*state = boot_guest(1);
	return *state ? 0 : -1;
}

static int free_run(void **state)
{
	free(*state);
	return 0;
}

/* The run's result for one check; skips without KVM. */
static struct run *ran(void **state, enum kt_check check)
{
	struct run *r = *state;
	if (r->unavailable)
		skip();
	assert_int_equal(r->boot_err, 0);
	assert_int_equal(r->wait_err, 0);
	if (r->stats.failed)
		fail_msg("the VM failed: %s", r->stats.failure);
	if (r->result[check] == 0)
		fail_msg("check %d never reported (guest stopped early?)", check);
	assert_int_equal(r->result[check] - 1, 0);
	return r;
}

static void test_debug_exit(void **state)
{
	struct run *r = *state;
	if (r->unavailable)
		skip();
	assert_int_equal(r->wait_err, 0);
	assert_false(r->stats.failed);
	/* The guest wrote 0 to isa-debug-exit: status (0 << 1) | 1. */
	assert_int_equal(r->exit_status, 1);
	assert_int_equal(r->unknown_reports, 0);
}

static void test_cpuid_hypervisor_bit(void **state)
{
	ran(state, KT_CPUID_HYPERVISOR);
}

static void test_cpuid_vendor(void **state)
{
	ran(state, KT_CPUID_VENDOR);
}

static void test_cpuid_features(void **state)
{
	ran(state, KT_CPUID_FEATURES);
}

static void test_guest_os_id(void **state)
{
	struct run *r = ran(state, KT_GUEST_OS_ID);
	assert_int_equal(r->hv_state.guest_os_id >> HV_GUEST_OS_ID_VENDOR_SHIFT,
			 (HV_GUEST_OS_ID_OPEN_SOURCE >> HV_GUEST_OS_ID_VENDOR_SHIFT) |
				 HV_GUEST_OS_ID_VENDOR_LINUX);
	assert_true(r->stats.msr_exits > 0);
}

static void test_vp_index_is_apic_id(void **state)
{
	ran(state, KT_VP_INDEX);
}

static void test_unknown_msr_gp(void **state)
{
	struct run *r = ran(state, KT_UNKNOWN_MSR_GP);
	assert_true(r->stats.msr_gp >= 1);
	assert_true(r->hv_state.bad_msr_accesses >= 1);
}

static void test_hypercall_page(void **state)
{
	struct run *r = ran(state, KT_HYPERCALL_PAGE);
	assert_true(r->hv_state.hypercall_msr & HV_HYPERCALL_MSR_ENABLE);
}

static void test_post_message(void **state)
{
	struct run *r = ran(state, KT_POST_MESSAGE);
	assert_int_equal(r->messages, 1);
	assert_int_equal(r->message_type, KT_MESSAGE_TYPE);
	assert_memory_equal(r->message, "hello from guest", KT_MESSAGE_BYTES);
	assert_true(r->stats.hypercalls >= 3);
}

static void test_signal_event(void **state)
{
	struct run *r = ran(state, KT_SIGNAL_EVENT);
	assert_int_equal(r->events, 1);
}

static void test_bad_connection(void **state)
{
	struct run *r = ran(state, KT_BAD_CONNECTION);
	assert_true(r->hv_state.bad_hypercalls >= 1);
}

static void test_hypercall_keeps_registers(void **state)
{
	struct run *r = ran(state, KT_HYPERCALL_REGS);
	assert_true(r->stats.hypercalls >= 4);
}

static void test_reference_counter(void **state)
{
	ran(state, KT_REF_COUNTER);
}

static void test_tsc_page(void **state)
{
	struct run *r = ran(state, KT_TSC_PAGE);
	assert_true(r->hv_state.reference_tsc_msr & HV_MSR_PAGE_ENABLE);
	assert_int_not_equal(r->hv_state.tsc_page_sequence, HV_TSC_PAGE_SEQUENCE_INVALID);
}

static void test_synic_message(void **state)
{
	struct run *r = ran(state, KT_SYNIC_MESSAGE);
	assert_int_equal(r->posts_requested, 2); /* this check's, the auto-EOI check's */
	assert_int_equal(r->post_err, 0);
	assert_true(r->vp_state.synic_enabled);
	assert_true(r->stats.interrupts >= 2); /* the message, the timer */
}

/* Every auto-EOI vector sent was ended by hvkit once taken (hardware KVM,
 * x2APIC) or found out of service already (this machine's PVM, whose
 * LAPIC reads ISR as 0): none left in service, none in xAPIC mode. */
static void test_auto_eoi(void **state)
{
	struct run *r = *state;
	if (!r->unavailable && r->result[KT_AUTO_EOI] == KT_NO_X2APIC + 1)
		skip(); /* the CPU model has no x2APIC */
	r = ran(state, KT_AUTO_EOI);
	assert_int_equal(r->low_err, 0);
	assert_int_equal(r->stats.auto_eoi_sent, 1);
	assert_int_equal(r->stats.auto_eoi_ended + r->stats.auto_eoi_vanished, 1);
	assert_int_equal(r->stats.auto_eoi_xapic, 0);
}

static void test_stimer_direct(void **state)
{
	struct run *r = ran(state, KT_STIMER_DIRECT);
	assert_true(r->vp_state.stimer_config[0] & HV_STIMER_DIRECT_MODE);
	assert_true(r->stats.timer_scans >= 1);
}

/* Two vCPUs: the AP sits in KVM_RUN waiting for a SIPI; VP 0 still
 * passes every check and teardown stops both. */
static void test_two_vps(void **state)
{
	(void)state;
	struct run *r = boot_guest(2);
	assert_non_null(r);
	if (r->unavailable) {
		free(r);
		skip();
	}
	assert_int_equal(r->boot_err, 0);
	assert_int_equal(r->wait_err, 0);
	assert_false(r->stats.failed);
	assert_int_equal(r->exit_status, 1);
	for (int check = 1; check < KT_CHECK_COUNT; check++)
		if (check != KT_AUTO_EOI || r->result[check] != KT_NO_X2APIC + 1)
			assert_int_equal(r->result[check], 1);
	free(r);
}

/* A partition running the guest in `mode`, launched; NULL (skip) without
 * KVM. */
static struct kvm_partition *launch_mode(uint64_t mode)
{
	struct kvm_partition *kp;
	struct kvm_partition_config cfg = {
		.vp_count = 1,
		.memory_size = KT_MEMORY_SIZE,
		.log = quiet_log,
		.device = getenv("HVKIT_KVM_DEVICE"),
	};
	int err = kvm_partition_new(&cfg, &kp);
	if (err == KVM_PARTITION_UNAVAILABLE)
		return NULL;
	assert_int_equal(err, 0);
	assert_int_equal(kt_boot_long_mode(kp, guest_image, KT_LOAD_GPA, KT_STACK_TOP, mode), 0);
	assert_int_equal(kvm_partition_launch(kp), 0);
	return kp;
}

/* A guest that never exits: wait times out, halt stops it anyway. */
static void test_halt_stops_spinning_guest(void **state)
{
	(void)state;
	struct kvm_partition *kp = launch_mode(KT_MODE_SPIN);
	struct kvm_partition_stats stats;
	int status;
	if (!kp)
		skip();
	assert_int_equal(kvm_partition_wait(kp, 50, &status), -ETIMEDOUT);
	kvm_partition_halt(kp);
	kvm_partition_get_stats(kp, &stats);
	assert_false(stats.exited);
	assert_false(stats.failed);
	kvm_partition_stop(kp);
}

/* A triple fault ends the guest as a failure, with the reason. */
static void test_triple_fault_fails(void **state)
{
	(void)state;
	struct kvm_partition *kp = launch_mode(KT_MODE_TRIPLE_FAULT);
	struct kvm_partition_stats stats;
	int status = 0;
	if (!kp)
		skip();
	assert_int_equal(kvm_partition_wait(kp, RUN_TIMEOUT_MS, &status), 0);
	kvm_partition_halt(kp);
	kvm_partition_get_stats(kp, &stats);
	assert_true(stats.failed);
	assert_int_equal(status, -1);
	assert_non_null(strstr(stats.failure, "triple fault"));
	kvm_partition_stop(kp);
}

/* Without a KVM device: the distinct "unavailable" error, nothing left. */
static void test_unavailable_is_distinct(void **state)
{
	(void)state;
	struct kvm_partition *kp = NULL;
	struct kvm_partition_config cfg = {
		.vp_count = 1,
		.memory_size = KT_MEMORY_SIZE,
		.device = "/nonexistent/kvm",
		.log = quiet_log,
	};
	assert_int_equal(kvm_partition_new(&cfg, &kp), KVM_PARTITION_UNAVAILABLE);
	assert_null(kp);
	cfg.vp_count = 0;
	assert_int_equal(kvm_partition_new(&cfg, &kp), -EINVAL);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test-kvm GUEST_IMAGE\n");
		return 2;
	}
	guest_image = argv[1];
	/* Without a usable /dev/kvm the whole program is skipped, in TAP's
	 * words (cmocka's own skip() prints "not ok ... # SKIP"). */
	if (kvm_partition_probe(getenv("HVKIT_KVM_DEVICE"))) {
		printf("1..0 # SKIP no usable /dev/kvm\n");
		return 0;
	}
	plain_regs = argc > 2 && !strcmp(argv[2], "plain-regs");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_debug_exit),
		cmocka_unit_test(test_cpuid_hypervisor_bit),
		cmocka_unit_test(test_cpuid_vendor),
		cmocka_unit_test(test_cpuid_features),
		cmocka_unit_test(test_guest_os_id),
		cmocka_unit_test(test_vp_index_is_apic_id),
		cmocka_unit_test(test_unknown_msr_gp),
		cmocka_unit_test(test_hypercall_page),
		cmocka_unit_test(test_post_message),
		cmocka_unit_test(test_signal_event),
		cmocka_unit_test(test_bad_connection),
		cmocka_unit_test(test_hypercall_keeps_registers),
		cmocka_unit_test(test_reference_counter),
		cmocka_unit_test(test_tsc_page),
		cmocka_unit_test(test_synic_message),
		cmocka_unit_test(test_stimer_direct),
		cmocka_unit_test(test_auto_eoi),
		cmocka_unit_test(test_two_vps),
		cmocka_unit_test(test_halt_stops_spinning_guest),
		cmocka_unit_test(test_triple_fault_fails),
		cmocka_unit_test(test_unavailable_is_distinct),
	};
	return cmocka_run_group_tests_name("kvm partition", tests, run_guest, free_run);
}
