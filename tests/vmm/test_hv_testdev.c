/* SPDX-License-Identifier: MIT */
/*
 * QEMU's Hyper-V test device against host/hv with the hv tests' fake
 * backend: the command decoder, SINT routes, message connections echoing
 * HvPostMessage back into the SynIC slot, event connections setting their
 * flag, and the refusals where QEMU would assert.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hv_fixture.h"
#include "hv_testdev.h"

#define SIMP 0x2000ull
#define SIEFP 0x3000ull
#define INPUT 0x8000ull
#define SINT 3
#define VECTOR 0xB2

struct env {
	struct fixture *f;
	struct hv_testdev *d;
	char log[256];
	unsigned logged;
};

__attribute__((format(printf, 2, 0)))
static void on_log(void *ctx, const char *fmt, va_list ap)
{
	struct env *e = ctx;
	vsnprintf(e->log, sizeof(e->log), fmt, ap);
	e->logged++;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->f = fix_new(NULL);
	fix_synic_on(e->f, 1, SIMP, SIEFP, SINT, VECTOR);
	struct hv_testdev_config cfg = {.hv = e->f->p, .vp_count = 2, .log = on_log, .log_ctx = e};
	e->d = hv_testdev_new(&cfg);
	assert_non_null(e->d);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	hv_testdev_free(e->d);
	fix_free(e->f);
	free(e);
	return 0;
}

static int cmd(struct env *e, uint8_t op, uint8_t vp, uint8_t sint, uint8_t conn)
{
	return hv_testdev_command(e->d, hv_testdev_word(op, vp, sint, conn));
}

/* The guest's HvPostMessage from VP 1. */
static uint16_t post(struct env *e, uint32_t conn, uint32_t type, const void *payload,
		     uint32_t size)
{
	struct hv_input_post_message in;
	memset(&in, 0, sizeof(in));
	in.connection_id = conn;
	in.message_type = type;
	in.payload_size = size;
	memcpy(in.payload, payload, size);
	assert_int_equal(guest_memory_write(&e->f->mem, INPUT, &in, sizeof(in)), 0);
	struct hv_hypercall hc = {HVCALL_POST_MESSAGE, INPUT, 0};
	return (uint16_t)hv_hypercall(e->f->p, 1, &hc, 0);
}

static uint16_t signal_event(struct env *e, uint32_t conn, uint16_t flag)
{
	struct hv_hypercall hc = {HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				  conn | (uint64_t)flag << HV_SIGNAL_EVENT_FLAG_SHIFT, 0};
	return (uint16_t)hv_hypercall(e->f->p, 1, &hc, 0);
}

static void decode_takes_the_word_apart(void **state)
{
	(void)state;
	struct hv_testdev_cmd c = hv_testdev_decode(0x44060102u);
	assert_int_equal(c.conn_id, 0x44);
	assert_int_equal(c.op, HV_TESTDEV_EVT_CONN_CREATE);
	assert_int_equal(c.vp, 1);
	assert_int_equal(c.sint, 2);
	c = hv_testdev_decode(hv_testdev_word(0xfe, 0xdc, 0xba, 0x98));
	assert_int_equal(c.op, 0xfe);
	assert_int_equal(c.vp, 0xdc);
	assert_int_equal(c.sint, 0xba);
	assert_int_equal(c.conn_id, 0x98);
	/* kvm-unit-tests' synic_ctl(ctl, vcpu, sint, conn) layout. */
	assert_int_equal(hv_testdev_word(HV_TESTDEV_SINT_ROUTE_SET_SINT, 1, 2, 3), 0x03030102u);
}

static void set_sint_needs_a_route(void **state)
{
	struct env *e = *state;
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_SET_SINT, 1, SINT, 0), -ENOENT);
	assert_int_equal(e->f->n_inj, 0);
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_CREATE, 1, SINT, 0), 0);
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_SET_SINT, 1, SINT, 0), 0);
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_SET_SINT, 1, SINT, 0), 0);
	assert_int_equal(e->f->n_inj, 2);
	assert_int_equal(e->f->inj[0].vp, 1);
	assert_int_equal(e->f->inj[0].vector, VECTOR);
	/* Nothing but the interrupt. */
	assert_int_equal(fix_slot(e->f, SIMP, SINT).header.message_type, HVMSG_NONE);
	/* Routes are counted: two creates need two destroys. */
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_CREATE, 1, SINT, 0), 0);
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_DESTROY, 1, SINT, 0), 0);
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_SET_SINT, 1, SINT, 0), 0);
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_DESTROY, 1, SINT, 0), 0);
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_SET_SINT, 1, SINT, 0), -ENOENT);
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_DESTROY, 1, SINT, 0), -ENOENT);
	assert_int_equal(e->f->n_inj, 3);
}

static void set_sint_on_a_masked_sint_sends_nothing(void **state)
{
	struct env *e = *state;
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_CREATE, 1, SINT + 1, 0), 0);
	/* Done (dropped, as KVM's SynIC does), not a bad command. */
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_SET_SINT, 1, SINT + 1, 0), 0);
	assert_int_equal(e->f->n_inj, 0);
	struct hv_testdev_stats st;
	hv_testdev_get_stats(e->d, &st);
	assert_int_equal(st.rejected, 0);
	assert_int_equal(st.masked, 1);
	assert_int_equal(e->logged, 0);
}

static void message_connection_echoes(void **state)
{
	struct env *e = *state;
	uint8_t payload[240];
	for (int i = 0; i < 240; i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	/* No connection yet: hv answers for the unknown id. */
	assert_int_equal(post(e, 0x11, 0x1234, payload, 16), HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(cmd(e, HV_TESTDEV_MSG_CONN_CREATE, 1, SINT, 0x11), 0);
	assert_int_equal(post(e, 0x11, 0x1234, payload, 240), HV_STATUS_SUCCESS);
	struct hv_message m = fix_slot(e->f, SIMP, SINT);
	assert_int_equal(m.header.message_type, 0x1234);
	assert_int_equal(m.header.payload_size, 240);
	assert_memory_equal(m.payload, payload, 240);
	assert_int_equal(e->f->n_inj, 1);
	assert_int_equal(e->f->inj[0].vector, VECTOR);
	/* The next one waits in hv's queue until the guest frees the slot. */
	assert_int_equal(post(e, 0x11, 0x99, payload + 1, 3), HV_STATUS_SUCCESS);
	assert_int_equal(hv_synic_queued(e->f->p, 1, SINT), 1);
	/* One echo in flight, as QEMU's staged message: the guest retries. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(post(e, 0x11, 0x77, payload, 8), HV_STATUS_INSUFFICIENT_BUFFERS);
	assert_int_equal(hv_synic_queued(e->f->p, 1, SINT), 1);
	fix_consume(e->f, 1, SIMP, SINT, 0);
	m = fix_slot(e->f, SIMP, SINT);
	assert_int_equal(m.header.message_type, 0x99);
	assert_int_equal(m.header.payload_size, 3);
	assert_memory_equal(m.payload, payload + 1, 3);
	/* In the slot now: the next post is taken (and queued behind it). */
	assert_int_equal(post(e, 0x11, 0x77, payload, 8), HV_STATUS_SUCCESS);
	assert_int_equal(post(e, 0x11, 0x78, payload, 8), HV_STATUS_INSUFFICIENT_BUFFERS);

	struct hv_testdev_stats st;
	hv_testdev_get_stats(e->d, &st);
	assert_int_equal(st.echoed, 3);
	assert_int_equal(st.busy, 11);
	assert_int_equal(cmd(e, HV_TESTDEV_MSG_CONN_DESTROY, 0, 0, 0x11), 0);
	assert_int_equal(post(e, 0x11, 0x1234, payload, 16), HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(cmd(e, HV_TESTDEV_MSG_CONN_DESTROY, 0, 0, 0x11), -ENOENT);
}

static void event_connection_sets_its_own_flag(void **state)
{
	struct env *e = *state;
	assert_int_equal(cmd(e, HV_TESTDEV_EVT_CONN_CREATE, 1, SINT, 0x21), 0);
	/* A flag number is an unknown port to KVM and QEMU: nothing set. */
	assert_int_equal(signal_event(e, 0x21, 5), HV_STATUS_INVALID_PORT_ID);
	uint8_t *flags = fix_ptr(e->f, SIEFP + SINT * HV_EVENT_FLAGS_BYTES);
	assert_int_equal(flags[0x21 / 8], 0);
	assert_int_equal(e->f->n_inj, 0);
	/* Flag 0: the connection id's own flag. */
	assert_int_equal(signal_event(e, 0x21, 0), HV_STATUS_SUCCESS);
	assert_int_equal(flags[0x21 / 8], 1 << (0x21 % 8));
	assert_int_equal(flags[0], 0);
	assert_int_equal(e->f->n_inj, 1);
	/* Still set: no second interrupt until the guest clears it. */
	assert_int_equal(signal_event(e, 0x21, 0), HV_STATUS_SUCCESS);
	assert_int_equal(e->f->n_inj, 1);
	flags[0x21 / 8] = 0;
	assert_int_equal(signal_event(e, 0x21, 0), HV_STATUS_SUCCESS);
	assert_int_equal(e->f->n_inj, 2);
	assert_int_equal(cmd(e, HV_TESTDEV_EVT_CONN_DESTROY, 0, 0, 0x21), 0);
	assert_int_equal(signal_event(e, 0x21, 0), HV_STATUS_INVALID_CONNECTION_ID);
}

static void event_without_siefp_is_counted(void **state)
{
	struct env *e = *state;
	/* VP 0 has no SynIC pages. */
	assert_int_equal(cmd(e, HV_TESTDEV_EVT_CONN_CREATE, 0, SINT, 0x22), 0);
	assert_int_equal(signal_event(e, 0x22, 0), HV_STATUS_SUCCESS);
	struct hv_testdev_stats st;
	hv_testdev_get_stats(e->d, &st);
	assert_int_equal(st.lost, 1);
	assert_int_equal(st.signalled, 0);
	assert_non_null(strstr(e->log, "not set"));
}

static void bad_commands_are_refused_and_logged_once(void **state)
{
	struct env *e = *state;
	assert_int_equal(cmd(e, 0, 0, 0, 0), -EINVAL);
	assert_int_equal(cmd(e, 8, 0, 0, 0), -EINVAL);
	assert_int_equal(cmd(e, 0xff, 0, 0, 0), -EINVAL);
	assert_int_equal(e->logged, 1);
	assert_non_null(strstr(e->log, "unknown operation 0"));
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_CREATE, 2, 0, 0), -EINVAL); /* no VP 2 */
	assert_int_equal(cmd(e, HV_TESTDEV_SINT_ROUTE_CREATE, 0, 16, 0), -EINVAL);
	assert_int_equal(cmd(e, HV_TESTDEV_MSG_CONN_CREATE, 0xff, 0, 1), -EINVAL);
	/* One id, one connection of each kind (separate namespaces). */
	assert_int_equal(cmd(e, HV_TESTDEV_MSG_CONN_CREATE, 1, SINT, 0x30), 0);
	assert_int_equal(cmd(e, HV_TESTDEV_MSG_CONN_CREATE, 1, SINT, 0x30), -EEXIST);
	assert_int_equal(cmd(e, HV_TESTDEV_EVT_CONN_DESTROY, 1, SINT, 0x30), -ENOENT);
	/* An id someone else (the VMBus server) holds. */
	assert_int_equal(hv_connection_add_event(e->f->p, 0x31, fix_on_event, e->f), 0);
	assert_int_equal(cmd(e, HV_TESTDEV_EVT_CONN_CREATE, 1, SINT, 0x31), -EEXIST);
	hv_connection_remove(e->f->p, true, 0x31);
	struct hv_testdev_stats st;
	hv_testdev_get_stats(e->d, &st);
	assert_int_equal(st.commands, 10);
	assert_int_equal(st.rejected, 9);
	assert_int_equal(e->f->n_inj, 0);
}

static void message_and_event_share_an_id(void **state)
{
	struct env *e = *state;
	uint8_t payload[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	assert_int_equal(cmd(e, HV_TESTDEV_MSG_CONN_CREATE, 1, SINT, 0x30), 0);
	assert_int_equal(cmd(e, HV_TESTDEV_EVT_CONN_CREATE, 1, SINT, 0x30), 0);
	assert_int_equal(post(e, 0x30, 0x55, payload, 8), HV_STATUS_SUCCESS);
	assert_int_equal(signal_event(e, 0x30, 0), HV_STATUS_SUCCESS);
	/* Destroying one leaves the other. */
	assert_int_equal(cmd(e, HV_TESTDEV_EVT_CONN_DESTROY, 0, 0, 0x30), 0);
	assert_int_equal(signal_event(e, 0x30, 0), HV_STATUS_INVALID_CONNECTION_ID);
	fix_consume(e->f, 1, SIMP, SINT, 0);
	assert_int_equal(post(e, 0x30, 0x56, payload, 8), HV_STATUS_SUCCESS);
	struct hv_testdev_stats st;
	hv_testdev_get_stats(e->d, &st);
	assert_int_equal(st.rejected, 0);
	assert_int_equal(st.echoed, 2);
	assert_int_equal(st.signalled, 1);
}

static void port_takes_only_dword_writes(void **state)
{
	struct env *e = *state;
	uint32_t v = hv_testdev_word(HV_TESTDEV_SINT_ROUTE_CREATE, 1, SINT, 0);
	hv_testdev_pio(e->d, 0, 2, true, &v);
	hv_testdev_pio(e->d, 1, 4, true, &v);
	v = hv_testdev_word(HV_TESTDEV_SINT_ROUTE_CREATE, 1, SINT, 0);
	hv_testdev_pio(e->d, 0, 4, true, &v);
	v = hv_testdev_word(HV_TESTDEV_SINT_ROUTE_SET_SINT, 1, SINT, 0);
	hv_testdev_pio(e->d, 0, 4, true, &v);
	assert_int_equal(e->f->n_inj, 1);
	v = 0xffffffff;
	hv_testdev_pio(e->d, 0, 4, false, &v);
	assert_int_equal(v, 0);
	struct hv_testdev_stats st;
	hv_testdev_get_stats(e->d, &st);
	assert_int_equal(st.commands, 2);
}

static void free_releases_connection_ids(void **state)
{
	struct env *e = *state;
	assert_int_equal(cmd(e, HV_TESTDEV_MSG_CONN_CREATE, 1, SINT, 0x40), 0);
	assert_int_equal(cmd(e, HV_TESTDEV_EVT_CONN_CREATE, 1, SINT, 0x41), 0);
	hv_testdev_free(e->d);
	e->d = NULL;
	assert_int_equal(hv_connection_add_message(e->f->p, 0x40, fix_on_message, e->f), 0);
	assert_int_equal(hv_connection_add_event(e->f->p, 0x41, fix_on_event, e->f), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decode_takes_the_word_apart),
		cmocka_unit_test_setup_teardown(set_sint_needs_a_route, setup, teardown),
		cmocka_unit_test_setup_teardown(set_sint_on_a_masked_sint_sends_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(message_connection_echoes, setup, teardown),
		cmocka_unit_test_setup_teardown(event_connection_sets_its_own_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(event_without_siefp_is_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_commands_are_refused_and_logged_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(message_and_event_share_an_id, setup, teardown),
		cmocka_unit_test_setup_teardown(port_takes_only_dword_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(free_releases_connection_ids, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
