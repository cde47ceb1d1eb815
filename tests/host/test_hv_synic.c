/* SPDX-License-Identifier: MIT */
/* The SynIC: message slots, queues, EOM, masking, event flags. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hv_fixture.h"

#define SIMP 0x2000ull
#define SIEFP 0x3000ull
#define SINT 2
#define VECTOR 0xF3

static int setup(void **state)
{
	struct fixture *f = fix_new(NULL);
	fix_synic_on(f, 0, SIMP, SIEFP, SINT, VECTOR);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fix_free(*state);
	return 0;
}

static void post_byte(struct fixture *f, uint32_t vp, uint32_t sint, uint8_t tag)
{
	uint8_t payload[8];
	memset(payload, tag, sizeof(payload));
	assert_int_equal(hv_synic_post(f->p, vp, sint, HV_MESSAGE_TYPE_VMBUS, payload,
				       sizeof(payload), 0),
			 0);
}

static void message_goes_into_the_slot(void **state)
{
	struct fixture *f = *state;
	uint8_t payload[100];
	for (int i = 0; i < 100; i++)
		payload[i] = (uint8_t)(i + 1);

	assert_int_equal(hv_synic_post(f->p, 0, SINT, HV_MESSAGE_TYPE_VMBUS, payload, 100, 0x77), 0);
	struct hv_message m = fix_slot(f, SIMP, SINT);
	assert_int_equal(m.header.message_type, HV_MESSAGE_TYPE_VMBUS);
	assert_int_equal(m.header.payload_size, 100);
	assert_int_equal(m.header.message_flags, 0);
	assert_int_equal(m.header.sender, 0x77);
	assert_memory_equal(m.payload, payload, 100);
	/* Beyond the payload the (zeroed) slot is untouched. */
	assert_int_equal(m.payload[100], 0);
	/* Other slots stay empty. */
	assert_int_equal(fix_slot(f, SIMP, SINT + 1).header.message_type, HVMSG_NONE);

	assert_int_equal(f->n_inj, 1);
	assert_int_equal(f->inj[0].vp, 0);
	assert_int_equal(f->inj[0].vector, VECTOR);
	assert_false(f->inj[0].auto_eoi);
	assert_int_equal(hv_synic_queued(f->p, 0, SINT), 0);
}

static void auto_eoi_needs_backend_support(void **state)
{
	(void)state;
	for (int supported = 0; supported < 2; supported++) {
		struct hv_config cfg = fix_config(HV_OFFER_ALL, 1);
		cfg.auto_eoi_supported = supported;
		struct fixture *f = fix_new(&cfg);
		fix_synic_on(f, 0, SIMP, SIEFP, SINT, VECTOR);
		fix_wrmsr_ok(f, 0, HV_MSR_SINT(SINT), VECTOR | HV_SINT_AUTO_EOI, 0);
		post_byte(f, 0, SINT, 1);
		assert_int_equal(f->n_inj, 1);
		assert_int_equal(f->inj[0].auto_eoi, supported);
		fix_free(f);
	}
}

static void busy_slot_sets_pending_and_eom_delivers_in_order(void **state)
{
	struct fixture *f = *state;
	post_byte(f, 0, SINT, 1);
	post_byte(f, 0, SINT, 2);
	post_byte(f, 0, SINT, 3);
	assert_int_equal(f->n_inj, 1);
	assert_int_equal(hv_synic_queued(f->p, 0, SINT), 2);
	struct hv_message m = fix_slot(f, SIMP, SINT);
	assert_int_equal(m.payload[0], 1);
	assert_int_equal(m.header.message_flags, HV_MESSAGE_FLAG_PENDING);

	/* EOM while the slot is still full changes nothing. */
	fix_wrmsr_ok(f, 0, HV_MSR_EOM, 0, 0);
	assert_int_equal(f->n_inj, 1);
	assert_int_equal(fix_slot(f, SIMP, SINT).payload[0], 1);

	/* The guest frees it and EOMs: the next one, still flagged since a
	 * third waits behind it. */
	assert_true(fix_consume(f, 0, SIMP, SINT, 0));
	m = fix_slot(f, SIMP, SINT);
	assert_int_equal(m.payload[0], 2);
	assert_int_equal(m.header.message_flags, HV_MESSAGE_FLAG_PENDING);
	assert_int_equal(f->n_inj, 2);

	assert_true(fix_consume(f, 0, SIMP, SINT, 0));
	m = fix_slot(f, SIMP, SINT);
	assert_int_equal(m.payload[0], 3);
	assert_int_equal(m.header.message_flags, 0);
	assert_int_equal(f->n_inj, 3);
	assert_int_equal(hv_synic_queued(f->p, 0, SINT), 0);

	/* The last one has no pending flag: the guest writes no EOM. */
	assert_false(fix_consume(f, 0, SIMP, SINT, 0));
}

static void fifo_order_survives_many_messages(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 300; i++)
		post_byte(f, 0, SINT, (uint8_t)i);
	for (int i = 0; i < 300; i++) {
		assert_int_equal(fix_slot(f, SIMP, SINT).payload[0], (uint8_t)i);
		assert_int_equal(fix_consume(f, 0, SIMP, SINT, 0), i != 299);
	}
	assert_int_equal(f->n_inj, 300);
}

static void sints_have_separate_slots(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 0, HV_MSR_SINT(5), 0x40, 0);
	post_byte(f, 0, SINT, 1);
	post_byte(f, 0, 5, 9);
	assert_int_equal(fix_slot(f, SIMP, SINT).payload[0], 1);
	assert_int_equal(fix_slot(f, SIMP, 5).payload[0], 9);
	assert_int_equal(f->n_inj, 2);
	assert_int_equal(f->inj[1].vector, 0x40);
}

static void masked_sint_queues_until_unmasked(void **state)
{
	struct fixture *f = *state;
	fix_wrmsr_ok(f, 0, HV_MSR_SINT(SINT), HV_SINT_MASKED | VECTOR, 0);
	post_byte(f, 0, SINT, 1);
	post_byte(f, 0, SINT, 2);
	assert_int_equal(f->n_inj, 0);
	assert_int_equal(fix_slot(f, SIMP, SINT).header.message_type, HVMSG_NONE);
	assert_int_equal(hv_synic_queued(f->p, 0, SINT), 2);
	/* EOM does not deliver into a masked SINT either. */
	fix_wrmsr_ok(f, 0, HV_MSR_EOM, 0, 0);
	assert_int_equal(hv_synic_queued(f->p, 0, SINT), 2);

	fix_wrmsr_ok(f, 0, HV_MSR_SINT(SINT), VECTOR, 0);
	assert_int_equal(f->n_inj, 1);
	struct hv_message m = fix_slot(f, SIMP, SINT);
	assert_int_equal(m.payload[0], 1);
	assert_int_equal(m.header.message_flags, HV_MESSAGE_FLAG_PENDING);
	assert_int_equal(hv_synic_queued(f->p, 0, SINT), 1);
}

static void disabled_simp_or_synic_queues(void **state)
{
	(void)state;
	struct fixture *f = fix_new(NULL);
	fix_wrmsr_ok(f, 0, HV_MSR_SINT(SINT), VECTOR, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_SCONTROL, 1, 0);
	post_byte(f, 0, SINT, 1);
	assert_int_equal(hv_synic_queued(f->p, 0, SINT), 1);
	assert_int_equal(f->n_inj, 0);
	/* Enabling SIMP clears the page, then delivers. */
	fix_wrmsr_ok(f, 0, HV_MSR_SIMP, SIMP | 1, 0);
	assert_int_equal(hv_synic_queued(f->p, 0, SINT), 0);
	assert_int_equal(fix_slot(f, SIMP, SINT).payload[0], 1);
	assert_int_equal(f->n_inj, 1);

	/* SCONTROL off: queued; back on: delivered. */
	fix_wrmsr_ok(f, 0, HV_MSR_SCONTROL, 0, 0);
	assert_false(fix_consume(f, 0, SIMP, SINT, 0));
	post_byte(f, 0, SINT, 2);
	assert_int_equal(hv_synic_queued(f->p, 0, SINT), 1);
	assert_int_equal(fix_slot(f, SIMP, SINT).header.message_type, HVMSG_NONE);
	fix_wrmsr_ok(f, 0, HV_MSR_SCONTROL, 1, 0);
	assert_int_equal(fix_slot(f, SIMP, SINT).payload[0], 2);
	assert_int_equal(f->n_inj, 2);
	fix_free(f);
}

static void full_queue_refuses(void **state)
{
	struct fixture *f = *state;
	post_byte(f, 0, SINT, 0); /* in the slot */
	for (int i = 0; i < HV_SYNIC_QUEUE_MAX; i++)
		post_byte(f, 0, SINT, 1);
	assert_int_equal(hv_synic_queued(f->p, 0, SINT), HV_SYNIC_QUEUE_MAX);
	uint32_t logs = f->n_log;
	assert_int_equal(hv_synic_post(f->p, 0, SINT, 1, "x", 1, 0), -EAGAIN);
	assert_int_equal(hv_synic_post(f->p, 0, SINT, 1, "x", 1, 0), -EAGAIN);
	assert_int_equal(f->n_log, logs + 1);
	/* Other SINTs and VPs are not affected. */
	assert_int_equal(hv_synic_post(f->p, 0, SINT + 1, 1, "x", 1, 0), 0);
	assert_int_equal(hv_synic_post(f->p, 1, SINT, 1, "x", 1, 0), 0);
	/* Space again once the guest takes one. */
	fix_consume(f, 0, SIMP, SINT, 0);
	assert_int_equal(hv_synic_post(f->p, 0, SINT, 1, "x", 1, 0), 0);
}

static void post_rejects_bad_arguments(void **state)
{
	struct fixture *f = *state;
	static const uint8_t big[HV_MESSAGE_PAYLOAD_BYTES + 1];
	assert_int_equal(hv_synic_post(f->p, 2, SINT, 1, big, 1, 0), -EINVAL);
	assert_int_equal(hv_synic_post(f->p, 0, 16, 1, big, 1, 0), -EINVAL);
	assert_int_equal(hv_synic_post(f->p, 0, SINT, HVMSG_NONE, big, 1, 0), -EINVAL);
	assert_int_equal(hv_synic_post(f->p, 0, SINT, 1, big, sizeof(big), 0), -EINVAL);
	assert_int_equal(hv_synic_post(f->p, 0, SINT, 1, NULL, 1, 0), -EINVAL);
	assert_int_equal(f->n_inj, 0);
	/* Full size and empty payloads are fine. */
	assert_int_equal(hv_synic_post(f->p, 0, SINT, 1, big, HV_MESSAGE_PAYLOAD_BYTES, 0), 0);
	assert_int_equal(hv_synic_post(f->p, 0, SINT, 1, NULL, 0, 0), 0);
	assert_int_equal(hv_synic_queued(f->p, 2, SINT), 0);
	assert_int_equal(hv_synic_queued(f->p, 0, 16), 0);
}

static void enabling_pages_clears_them(void **state)
{
	(void)state;
	struct fixture *f = fix_new(NULL);
	uint8_t *simp = fix_ptr(f, SIMP), *siefp = fix_ptr(f, SIEFP);
	uint8_t zero[4096] = {0};

	/* Disabled writes do not touch the page. */
	fix_wrmsr_ok(f, 0, HV_MSR_SIMP, SIMP, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_SIEFP, SIEFP, 0);
	assert_int_equal(simp[0], 0xA5);
	assert_int_equal(siefp[4095], 0xA5);

	fix_wrmsr_ok(f, 0, HV_MSR_SIMP, SIMP | 1, 0);
	fix_wrmsr_ok(f, 0, HV_MSR_SIEFP, SIEFP | 1, 0);
	assert_memory_equal(simp, zero, 4096);
	assert_memory_equal(siefp, zero, 4096);
	assert_int_equal(*(uint8_t *)fix_ptr(f, SIEFP + 4096), 0xA5); /* only one page */
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SIMP), SIMP | 1);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SIEFP), SIEFP | 1);

	/* Outside RAM: #GP and the MSR keeps its value. */
	assert_int_equal(fix_wrmsr(f, 0, HV_MSR_SIMP, FIX_NOT_RAM | 1, 0), -EINVAL);
	assert_int_equal(fix_wrmsr(f, 0, HV_MSR_SIEFP, FIX_NOT_RAM | 1, 0), -EINVAL);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SIMP), SIMP | 1);
	assert_int_equal(fix_rdmsr(f, 0, HV_MSR_SIEFP), SIEFP | 1);
	struct hv_partition_state s;
	hv_get_state(f->p, &s);
	assert_int_equal(s.bad_msr_accesses, 2);

	struct hv_vp_state vs;
	hv_get_vp_state(f->p, 0, &vs);
	assert_int_equal(vs.simp, SIMP | 1);
	assert_int_equal(vs.siefp, SIEFP | 1);
	fix_free(f);
}

static uint8_t flag_byte(struct fixture *f, uint32_t sint, uint32_t flag)
{
	return *(uint8_t *)fix_ptr(f, SIEFP + sint * 256 + flag / 8);
}

static void event_flags_set_bits(void **state)
{
	struct fixture *f = *state;
	static const uint32_t flags[] = {0, 1, 7, 8, 63, 64, 65, 1000, 2047};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		assert_int_equal(hv_synic_signal(f->p, 0, SINT, flags[i]), 0);
		assert_true(flag_byte(f, SINT, flags[i]) & (1u << (flags[i] % 8)));
	}
	/* Exactly those bits, nothing in other SINTs' areas. */
	uint32_t set = 0;
	for (uint32_t s = 0; s < 16; s++)
		for (uint32_t bit = 0; bit < 2048; bit++)
			if (flag_byte(f, s, bit) & (1u << (bit % 8))) {
				assert_int_equal(s, SINT);
				set++;
			}
	assert_int_equal(set, sizeof(flags) / sizeof(flags[0]));
	/* Each was a 0 -> 1 change: one interrupt each. */
	assert_int_equal(f->n_inj, sizeof(flags) / sizeof(flags[0]));
	assert_int_equal(f->inj[0].vector, VECTOR);
}

static void event_interrupts_only_on_transition(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hv_synic_signal(f->p, 0, SINT, 5), 0);
	assert_int_equal(hv_synic_signal(f->p, 0, SINT, 5), 0);
	assert_int_equal(f->n_inj, 1);
	/* The guest clears it (sync_test_and_clear_bit): next signal raises. */
	*(uint8_t *)fix_ptr(f, SIEFP + SINT * 256) = 0;
	assert_int_equal(hv_synic_signal(f->p, 0, SINT, 5), 0);
	assert_int_equal(f->n_inj, 2);
}

static void event_on_masked_sint_sets_bit_silently(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hv_synic_signal(f->p, 0, 9, 3), 0); /* SINT 9 is masked */
	assert_true(flag_byte(f, 9, 3) & 8);
	assert_int_equal(f->n_inj, 0);
}

static void event_needs_siefp(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hv_synic_signal(f->p, 1, SINT, 1), -ENODEV);
	fix_wrmsr_ok(f, 0, HV_MSR_SIEFP, SIEFP, 0); /* disabled */
	assert_int_equal(hv_synic_signal(f->p, 0, SINT, 1), -ENODEV);
	assert_int_equal(hv_synic_signal(f->p, 0, SINT, 2048), -EINVAL);
	assert_int_equal(hv_synic_signal(f->p, 0, 16, 1), -EINVAL);
	assert_int_equal(hv_synic_signal(f->p, 2, SINT, 1), -EINVAL);
	assert_int_equal(f->n_inj, 0);
}

/* A bare SINT interrupt (test devices): each call raises it once, with no
 * message and no flag; a masked SINT gets nothing. */
static void assert_raises_the_sint_only(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hv_synic_assert(f->p, 0, SINT), 0);
	assert_int_equal(hv_synic_assert(f->p, 0, SINT), 0);
	assert_int_equal(f->n_inj, 2);
	assert_int_equal(f->inj[1].vector, VECTOR);
	assert_int_equal(fix_slot(f, SIMP, SINT).header.message_type, HVMSG_NONE);
	assert_int_equal(flag_byte(f, SINT, 0), 0);
	assert_int_equal(hv_synic_assert(f->p, 0, 9), -ENODEV); /* masked */
	assert_int_equal(hv_synic_assert(f->p, 0, 16), -EINVAL);
	assert_int_equal(hv_synic_assert(f->p, 2, SINT), -EINVAL);
	assert_int_equal(f->n_inj, 2);
}

static void vps_have_their_own_synic(void **state)
{
	struct fixture *f = *state;
	fix_synic_on(f, 1, 0x4000, 0x5000, SINT, 0x51);
	post_byte(f, 1, SINT, 4);
	assert_int_equal(fix_slot(f, 0x4000, SINT).payload[0], 4);
	assert_int_equal(fix_slot(f, SIMP, SINT).header.message_type, HVMSG_NONE);
	assert_int_equal(f->n_inj, 1);
	assert_int_equal(f->inj[0].vp, 1);
	assert_int_equal(f->inj[0].vector, 0x51);
	assert_int_equal(hv_synic_signal(f->p, 1, SINT, 0), 0);
	assert_int_equal(f->inj[1].vp, 1);
	assert_int_equal(*(uint8_t *)fix_ptr(f, 0x5000 + SINT * 256), 1);
	assert_int_equal(*(uint8_t *)fix_ptr(f, SIEFP + SINT * 256), 0);
}

static void simp_moved_delivers_to_new_page(void **state)
{
	struct fixture *f = *state;
	post_byte(f, 0, SINT, 1);
	post_byte(f, 0, SINT, 2);
	/* The guest moves its SIMP (kexec, CPU hotplug): the queue follows. */
	fix_wrmsr_ok(f, 0, HV_MSR_SIMP, 0x6000 | 1, 0);
	assert_int_equal(fix_slot(f, 0x6000, SINT).payload[0], 2);
	assert_int_equal(hv_synic_queued(f->p, 0, SINT), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(message_goes_into_the_slot, setup, teardown),
		cmocka_unit_test(auto_eoi_needs_backend_support),
		cmocka_unit_test_setup_teardown(busy_slot_sets_pending_and_eom_delivers_in_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(fifo_order_survives_many_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(sints_have_separate_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(masked_sint_queues_until_unmasked, setup, teardown),
		cmocka_unit_test(disabled_simp_or_synic_queues),
		cmocka_unit_test_setup_teardown(full_queue_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(post_rejects_bad_arguments, setup, teardown),
		cmocka_unit_test(enabling_pages_clears_them),
		cmocka_unit_test_setup_teardown(event_flags_set_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(event_interrupts_only_on_transition, setup, teardown),
		cmocka_unit_test_setup_teardown(event_on_masked_sint_sets_bit_silently, setup,
						teardown),
		cmocka_unit_test_setup_teardown(event_needs_siefp, setup, teardown),
		cmocka_unit_test_setup_teardown(assert_raises_the_sint_only, setup, teardown),
		cmocka_unit_test_setup_teardown(vps_have_their_own_synic, setup, teardown),
		cmocka_unit_test_setup_teardown(simp_moved_delivers_to_new_page, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
