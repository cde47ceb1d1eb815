/* SPDX-License-Identifier: MIT */
/* Hypercalls: decoding, every status path, and the connection registry. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hv_fixture.h"

#define MSG_CONN 1
#define EVENT_CONN 2
#define INPUT 0x7000ull /* the guest's hypercall input page */

static int setup(void **state)
{
	struct fixture *f = fix_new(NULL);
	assert_int_equal(hv_connection_add_message(f->p, MSG_CONN, fix_on_message, f), 0);
	assert_int_equal(hv_connection_add_event(f->p, EVENT_CONN, fix_on_event, f), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fix_free(*state);
	return 0;
}

static uint64_t call(struct fixture *f, uint64_t control, uint64_t input)
{
	struct hv_hypercall hc = {control, input, 0};
	return hv_hypercall(f->p, 0, &hc, 0);
}

static uint64_t bad_calls(struct fixture *f)
{
	struct hv_partition_state s;
	hv_get_state(f->p, &s);
	return s.bad_hypercalls;
}

/* Writes an HvPostMessage input block at gpa (Linux hv_post_message). */
static void write_post(struct fixture *f, uint64_t gpa, uint32_t conn, uint32_t type,
		       uint32_t size, uint8_t fill)
{
	struct hv_input_post_message in;
	memset(&in, 0, sizeof(in));
	in.connection_id = conn;
	in.message_type = type;
	in.payload_size = size;
	memset(in.payload, fill, sizeof(in.payload));
	uint64_t len = 16 + (size <= 240 ? size : 240);
	assert_int_equal(guest_memory_write(&f->mem, gpa, &in, len), 0);
}

static void expect_status(struct fixture *f, uint64_t control, uint64_t input, uint16_t status)
{
	uint64_t before = bad_calls(f);
	uint32_t posted = f->n_posted, events = f->n_events;
	assert_int_equal(call(f, control, input), status);
	assert_int_equal(bad_calls(f), before + 1);
	assert_int_equal(f->n_posted, posted);
	assert_int_equal(f->n_events, events);
}

/* ---- HvPostMessage ---- */

static void post_message_reaches_handler(void **state)
{
	struct fixture *f = *state;
	write_post(f, INPUT, MSG_CONN, HV_MESSAGE_TYPE_VMBUS, 240, 0x3C);
	assert_int_equal(call(f, HVCALL_POST_MESSAGE, INPUT), HV_STATUS_SUCCESS);
	assert_int_equal(f->n_posted, 1);
	assert_int_equal(f->posted[0].vp, 0);
	assert_int_equal(f->posted[0].msg.connection_id, MSG_CONN);
	assert_int_equal(f->posted[0].msg.message_type, HV_MESSAGE_TYPE_VMBUS);
	assert_int_equal(f->posted[0].msg.payload_size, 240);
	uint8_t expect[240];
	memset(expect, 0x3C, sizeof(expect));
	assert_memory_equal(f->posted[0].msg.payload, expect, 240);

	/* A short one, at an 8-aligned offset, from VP 1. */
	write_post(f, INPUT + 0x108, MSG_CONN, 7, 3, 0x11);
	struct hv_hypercall hc = {HVCALL_POST_MESSAGE, INPUT + 0x108, 0};
	assert_int_equal(hv_hypercall(f->p, 1, &hc, 0), HV_STATUS_SUCCESS);
	assert_int_equal(f->posted[1].vp, 1);
	assert_int_equal(f->posted[1].msg.message_type, 7);
	assert_int_equal(f->posted[1].msg.payload_size, 3);
	assert_int_equal(f->posted[1].msg.payload[2], 0x11);
	assert_int_equal(f->posted[1].msg.payload[3], 0); /* not leaked from the guest */
	assert_int_equal(bad_calls(f), 0);
}

static void post_message_handler_status_passes_through(void **state)
{
	struct fixture *f = *state;
	write_post(f, INPUT, MSG_CONN, 1, 8, 0);
	f->handler_status = HV_STATUS_INSUFFICIENT_BUFFERS;
	assert_int_equal(call(f, HVCALL_POST_MESSAGE, INPUT), HV_STATUS_INSUFFICIENT_BUFFERS);
	assert_int_equal(f->n_posted, 1);
	/* The handler's answer is not a validation failure. */
	assert_int_equal(bad_calls(f), 0);
}

static void post_message_rejects_fast_rep_varhead(void **state)
{
	struct fixture *f = *state;
	write_post(f, INPUT, MSG_CONN, 1, 8, 0);
	expect_status(f, HVCALL_POST_MESSAGE | HV_HYPERCALL_FAST, INPUT,
		      HV_STATUS_INVALID_HYPERCALL_INPUT);
	expect_status(f, HVCALL_POST_MESSAGE | (1ull << HV_HYPERCALL_REP_COUNT_SHIFT), INPUT,
		      HV_STATUS_INVALID_HYPERCALL_INPUT);
	expect_status(f, HVCALL_POST_MESSAGE | (1ull << HV_HYPERCALL_REP_START_SHIFT), INPUT,
		      HV_STATUS_INVALID_HYPERCALL_INPUT);
	expect_status(f, HVCALL_POST_MESSAGE | (1ull << HV_HYPERCALL_VARHEAD_SHIFT), INPUT,
		      HV_STATUS_INVALID_HYPERCALL_INPUT);
}

static void post_message_checks_alignment(void **state)
{
	struct fixture *f = *state;
	for (uint64_t off = 1; off < 8; off++) {
		write_post(f, INPUT + off, MSG_CONN, 1, 8, 0);
		expect_status(f, HVCALL_POST_MESSAGE, INPUT + off, HV_STATUS_INVALID_ALIGNMENT);
	}
}

static void post_message_must_not_cross_a_page(void **state)
{
	struct fixture *f = *state;
	/* The header itself crosses. */
	expect_status(f, HVCALL_POST_MESSAGE, INPUT + 0xFF8, HV_STATUS_INVALID_ALIGNMENT);
	/* Header fits, payload crosses by 8 bytes. */
	write_post(f, INPUT + 0xF08, MSG_CONN, 1, 240, 0);
	expect_status(f, HVCALL_POST_MESSAGE, INPUT + 0xF08, HV_STATUS_INVALID_ALIGNMENT);
	/* Exactly to the end of the page is fine. */
	write_post(f, INPUT + 0xF08, MSG_CONN, 1, 232, 0);
	assert_int_equal(call(f, HVCALL_POST_MESSAGE, INPUT + 0xF08), HV_STATUS_SUCCESS);
	write_post(f, INPUT + 0xF00, MSG_CONN, 1, 240, 0);
	assert_int_equal(call(f, HVCALL_POST_MESSAGE, INPUT + 0xF00), HV_STATUS_SUCCESS);
	assert_int_equal(f->n_posted, 2);
}

static void post_message_outside_ram(void **state)
{
	struct fixture *f = *state;
	expect_status(f, HVCALL_POST_MESSAGE, FIX_NOT_RAM, HV_STATUS_INVALID_PARAMETER);
	expect_status(f, HVCALL_POST_MESSAGE, FIX_RAM0_GPA + FIX_RAM0_SIZE,
		      HV_STATUS_INVALID_PARAMETER);
	expect_status(f, HVCALL_POST_MESSAGE, FIX_RAM1_GPA - 0x100, HV_STATUS_INVALID_PARAMETER);
	expect_status(f, HVCALL_POST_MESSAGE, UINT64_MAX & ~7ull, HV_STATUS_INVALID_ALIGNMENT);
	expect_status(f, HVCALL_POST_MESSAGE, (UINT64_MAX & ~0xFFFull), HV_STATUS_INVALID_PARAMETER);
	/* The last page of a region is RAM. */
	uint64_t last = FIX_RAM1_GPA + FIX_RAM1_SIZE - 4096;
	write_post(f, last, MSG_CONN, 1, 240, 1);
	assert_int_equal(call(f, HVCALL_POST_MESSAGE, last), HV_STATUS_SUCCESS);
}

static void post_message_checks_fields(void **state)
{
	struct fixture *f = *state;
	write_post(f, INPUT, MSG_CONN, 1, 241, 0);
	expect_status(f, HVCALL_POST_MESSAGE, INPUT, HV_STATUS_INVALID_PARAMETER);
	write_post(f, INPUT, MSG_CONN, 1, 0xFFFFFFFF, 0);
	expect_status(f, HVCALL_POST_MESSAGE, INPUT, HV_STATUS_INVALID_PARAMETER);
	write_post(f, INPUT, MSG_CONN, HVMSG_NONE, 8, 0);
	expect_status(f, HVCALL_POST_MESSAGE, INPUT, HV_STATUS_INVALID_PARAMETER);
	write_post(f, INPUT, MSG_CONN, HVMSG_TIMER_EXPIRED, 8, 0);
	expect_status(f, HVCALL_POST_MESSAGE, INPUT, HV_STATUS_INVALID_PARAMETER);
	write_post(f, INPUT, MSG_CONN | 0x01000000, 1, 8, 0);
	expect_status(f, HVCALL_POST_MESSAGE, INPUT, HV_STATUS_INVALID_PARAMETER);
	/* An empty payload is allowed. */
	write_post(f, INPUT, MSG_CONN, 1, 0, 0);
	assert_int_equal(call(f, HVCALL_POST_MESSAGE, INPUT), HV_STATUS_SUCCESS);
}

static void post_message_needs_message_connection(void **state)
{
	struct fixture *f = *state;
	write_post(f, INPUT, 99, 1, 8, 0);
	expect_status(f, HVCALL_POST_MESSAGE, INPUT, HV_STATUS_INVALID_CONNECTION_ID);
	write_post(f, INPUT, EVENT_CONN, 1, 8, 0);
	expect_status(f, HVCALL_POST_MESSAGE, INPUT, HV_STATUS_INVALID_CONNECTION_ID);
	/* Removed: gone. */
	hv_connection_remove(f->p, false, MSG_CONN);
	write_post(f, INPUT, MSG_CONN, 1, 8, 0);
	expect_status(f, HVCALL_POST_MESSAGE, INPUT, HV_STATUS_INVALID_CONNECTION_ID);
}

/* ---- HvSignalEvent ---- */

static uint64_t signal_input(uint32_t conn, uint16_t flag)
{
	return conn | ((uint64_t)flag << HV_SIGNAL_EVENT_FLAG_SHIFT);
}

static void signal_event_fast(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(call(f, HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, signal_input(EVENT_CONN, 0)),
			 HV_STATUS_SUCCESS);
	assert_int_equal(call(f, HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
			      signal_input(EVENT_CONN, 0xFFFF)),
			 HV_STATUS_SUCCESS);
	assert_int_equal(f->n_events, 2);
	assert_int_equal(f->events[0].flag, 0);
	assert_int_equal(f->events[1].flag, 0xFFFF);
	assert_int_equal(f->events[1].vp, 0);
	f->handler_status = HV_STATUS_INSUFFICIENT_BUFFERS;
	assert_int_equal(call(f, HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, EVENT_CONN),
			 HV_STATUS_INSUFFICIENT_BUFFERS);
	assert_int_equal(bad_calls(f), 0);
}

static void signal_event_slow(void **state)
{
	struct fixture *f = *state;
	uint64_t in = signal_input(EVENT_CONN, 9);
	assert_int_equal(guest_memory_write(&f->mem, INPUT + 0xFF8, &in, 8), 0);
	assert_int_equal(call(f, HVCALL_SIGNAL_EVENT, INPUT + 0xFF8), HV_STATUS_SUCCESS);
	assert_int_equal(f->n_events, 1);
	assert_int_equal(f->events[0].flag, 9);

	expect_status(f, HVCALL_SIGNAL_EVENT, INPUT + 4, HV_STATUS_INVALID_ALIGNMENT);
	expect_status(f, HVCALL_SIGNAL_EVENT, FIX_NOT_RAM, HV_STATUS_INVALID_PARAMETER);
	in = signal_input(EVENT_CONN, 9) | (1ull << 48);
	assert_int_equal(guest_memory_write(&f->mem, INPUT, &in, 8), 0);
	expect_status(f, HVCALL_SIGNAL_EVENT, INPUT, HV_STATUS_INVALID_HYPERCALL_INPUT);
}

static void signal_event_checks_input(void **state)
{
	struct fixture *f = *state;
	const uint64_t fast = HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST;
	expect_status(f, fast, signal_input(EVENT_CONN, 0) | (1ull << 48),
		      HV_STATUS_INVALID_HYPERCALL_INPUT);
	expect_status(f, fast, signal_input(EVENT_CONN, 0) | (1ull << 63),
		      HV_STATUS_INVALID_HYPERCALL_INPUT);
	expect_status(f, fast, EVENT_CONN | 0x01000000, HV_STATUS_INVALID_HYPERCALL_INPUT);
	expect_status(f, fast, EVENT_CONN | 0x80000000, HV_STATUS_INVALID_HYPERCALL_INPUT);
	expect_status(f, fast, 77, HV_STATUS_INVALID_CONNECTION_ID);
	expect_status(f, fast, MSG_CONN, HV_STATUS_INVALID_CONNECTION_ID);
	expect_status(f, fast | (1ull << HV_HYPERCALL_REP_COUNT_SHIFT), EVENT_CONN,
		      HV_STATUS_INVALID_HYPERCALL_INPUT);
	expect_status(f, fast | (5ull << HV_HYPERCALL_REP_START_SHIFT), EVENT_CONN,
		      HV_STATUS_INVALID_HYPERCALL_INPUT);
	expect_status(f, fast | (1ull << HV_HYPERCALL_VARHEAD_SHIFT), EVENT_CONN,
		      HV_STATUS_INVALID_HYPERCALL_INPUT);
}

/* ---- the rest ---- */

static void long_spin_wait_is_a_no_op(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(call(f, HVCALL_NOTIFY_LONG_SPIN_WAIT, 0), HV_STATUS_SUCCESS);
	assert_int_equal(call(f, HVCALL_NOTIFY_LONG_SPIN_WAIT | HV_HYPERCALL_FAST, 5),
			 HV_STATUS_SUCCESS);
	expect_status(f, HVCALL_NOTIFY_LONG_SPIN_WAIT | (2ull << HV_HYPERCALL_REP_COUNT_SHIFT), 0,
		      HV_STATUS_INVALID_HYPERCALL_INPUT);
	expect_status(f, HVCALL_NOTIFY_LONG_SPIN_WAIT | (3ull << HV_HYPERCALL_VARHEAD_SHIFT), 0,
		      HV_STATUS_INVALID_HYPERCALL_INPUT);
}

static void unknown_codes(void **state)
{
	struct fixture *f = *state;
	static const uint64_t codes[] = {0, 1, HVCALL_GET_PARTITION_ID, HVCALL_RETARGET_INTERRUPT,
					 HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE, HVCALL_SEND_IPI,
					 0x5E, 0x8001, 0xFFFF};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		expect_status(f, codes[i], INPUT, HV_STATUS_INVALID_HYPERCALL_CODE);
		expect_status(f, codes[i] | HV_HYPERCALL_FAST | (7ull << 32), INPUT,
			      HV_STATUS_INVALID_HYPERCALL_CODE);
	}
}

static void reserved_control_bits(void **state)
{
	struct fixture *f = *state;
	write_post(f, INPUT, MSG_CONN, 1, 8, 0);
	static const int reserved[] = {27, 28, 31, 44, 47, 60, 63};
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		uint64_t bit = 1ull << reserved[i];
		expect_status(f, HVCALL_POST_MESSAGE | bit, INPUT, HV_STATUS_INVALID_HYPERCALL_INPUT);
		expect_status(f, HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST | bit, EVENT_CONN,
			      HV_STATUS_INVALID_HYPERCALL_INPUT);
		/* Checked before the code. */
		expect_status(f, 0x1234 | bit, 0, HV_STATUS_INVALID_HYPERCALL_INPUT);
	}
}

static void result_has_no_reps_and_bad_vp_fails(void **state)
{
	struct fixture *f = *state;
	uint64_t r = call(f, 0x9999, 0);
	assert_int_equal(r, HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(r & HV_HYPERCALL_REPS_DONE_MASK, 0);
	struct hv_hypercall hc = {HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, EVENT_CONN, 0};
	assert_int_equal(hv_hypercall(f->p, 2, &hc, 0), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(f->n_events, 0);
}

static void bad_statuses_logged_once_each(void **state)
{
	struct fixture *f = *state;
	uint32_t logs = f->n_log;
	call(f, 0x9999, 0);
	call(f, 0x9998, 0);
	assert_int_equal(f->n_log, logs + 1);
	call(f, HVCALL_POST_MESSAGE, INPUT + 1);
	call(f, HVCALL_POST_MESSAGE, INPUT + 2);
	assert_int_equal(f->n_log, logs + 2);
	call(f, HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, 1234);
	assert_int_equal(f->n_log, logs + 3);
	assert_int_equal(bad_calls(f), 5);
}

static void connection_registry(void **state)
{
	struct fixture *f = *state;
	hv_event_handler fn = NULL;
	void *ctx = NULL;

	assert_int_equal(hv_connection_add_message(f->p, MSG_CONN, fix_on_message, f), -EEXIST);
	assert_int_equal(hv_connection_add_event(f->p, EVENT_CONN, fix_on_event, f), -EEXIST);
	/* Message and event ids are separate namespaces (KVM, QEMU): one id
	 * names both, each reached by its own hypercall, removed on its own. */
	assert_int_equal(hv_connection_add_event(f->p, MSG_CONN, fix_on_event, f), 0);
	assert_int_equal(hv_connection_add_message(f->p, EVENT_CONN, fix_on_message, f), 0);
	assert_true(hv_connection_find_event(f->p, MSG_CONN, &fn, &ctx));
	hv_connection_remove(f->p, true, MSG_CONN);
	hv_connection_remove(f->p, false, EVENT_CONN);
	assert_true(hv_connection_find_event(f->p, EVENT_CONN, &fn, &ctx));
	assert_int_equal(hv_connection_add_message(f->p, MSG_CONN, fix_on_message, f), -EEXIST);
	assert_int_equal(hv_connection_add_event(f->p, 0x01000000, fix_on_event, f), -EINVAL);
	assert_int_equal(hv_connection_add_message(f->p, 0xFFFFFFFF, fix_on_message, f), -EINVAL);
	assert_int_equal(hv_connection_add_event(f->p, 5, NULL, f), -EINVAL);
	assert_int_equal(hv_connection_add_message(f->p, 5, NULL, f), -EINVAL);
	assert_int_equal(hv_connection_add_event(f->p, 0xFFFFFF, fix_on_event, f), 0);

	assert_true(hv_connection_find_event(f->p, EVENT_CONN, &fn, &ctx));
	assert_ptr_equal(fn, fix_on_event);
	assert_ptr_equal(ctx, f);
	assert_false(hv_connection_find_event(f->p, MSG_CONN, &fn, &ctx));
	assert_false(hv_connection_find_event(f->p, 42, &fn, &ctx));

	/* Many connections, then remove some: the others stay reachable. */
	for (uint32_t id = 100; id < 200; id++)
		assert_int_equal(hv_connection_add_event(f->p, id, fix_on_event, f), 0);
	for (uint32_t id = 100; id < 200; id += 2)
		hv_connection_remove(f->p, true, id);
	hv_connection_remove(f->p, true, 424242); /* unknown: nothing */
	hv_connection_remove(f->p, false, 101); /* the other kind: nothing */
	for (uint32_t id = 100; id < 200; id++)
		assert_int_equal(hv_connection_find_event(f->p, id, &fn, &ctx), id % 2 == 1);
	assert_true(hv_connection_find_event(f->p, EVENT_CONN, &fn, &ctx));
	assert_int_equal(call(f, HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, 151), HV_STATUS_SUCCESS);
	expect_status(f, HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, 150,
		      HV_STATUS_INVALID_CONNECTION_ID);
	/* Re-adding a removed id works. */
	assert_int_equal(hv_connection_add_message(f->p, 150, fix_on_message, f), 0);
}

/* A VMBus-server-like handler answering on SINT 2 from inside the call. */
static uint16_t answer_on_sint2(void *ctx, uint32_t vp, const struct hv_posted_message *msg)
{
	struct fixture *f = ctx;
	int err = hv_synic_post(f->p, vp, 2, 1, msg->payload, msg->payload_size, 0);
	assert_int_equal(err, 0);
	assert_int_equal(hv_synic_signal(f->p, vp, 2, 5), 0);
	hv_connection_remove(f->p, false, msg->connection_id); /* even this */
	return HV_STATUS_SUCCESS;
}

static void handler_may_call_back_into_hv(void **state)
{
	struct fixture *f = *state;
	fix_synic_on(f, 0, 0x2000, 0x3000, 2, 0xF3);
	assert_int_equal(hv_connection_add_message(f->p, 4, answer_on_sint2, f), 0);
	write_post(f, INPUT, 4, 1, 16, 0x44);
	assert_int_equal(call(f, HVCALL_POST_MESSAGE, INPUT), HV_STATUS_SUCCESS);
	struct hv_message m = fix_slot(f, 0x2000, 2);
	assert_int_equal(m.header.message_type, 1);
	assert_int_equal(m.header.payload_size, 16);
	assert_int_equal(m.payload[15], 0x44);
	assert_int_equal(f->n_inj, 2);
	expect_status(f, HVCALL_POST_MESSAGE, INPUT, HV_STATUS_INVALID_CONNECTION_ID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(post_message_reaches_handler, setup, teardown),
		cmocka_unit_test_setup_teardown(post_message_handler_status_passes_through, setup,
						teardown),
		cmocka_unit_test_setup_teardown(post_message_rejects_fast_rep_varhead, setup,
						teardown),
		cmocka_unit_test_setup_teardown(post_message_checks_alignment, setup, teardown),
		cmocka_unit_test_setup_teardown(post_message_must_not_cross_a_page, setup, teardown),
		cmocka_unit_test_setup_teardown(post_message_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(post_message_checks_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(post_message_needs_message_connection, setup,
						teardown),
		cmocka_unit_test_setup_teardown(signal_event_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(signal_event_slow, setup, teardown),
		cmocka_unit_test_setup_teardown(signal_event_checks_input, setup, teardown),
		cmocka_unit_test_setup_teardown(long_spin_wait_is_a_no_op, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(reserved_control_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(result_has_no_reps_and_bad_vp_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_statuses_logged_once_each, setup, teardown),
		cmocka_unit_test_setup_teardown(connection_registry, setup, teardown),
		cmocka_unit_test_setup_teardown(handler_may_call_back_into_hv, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
