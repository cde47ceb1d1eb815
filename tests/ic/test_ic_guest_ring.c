/* SPDX-License-Identifier: MIT */
/*
 * The IC drivers' receive loop against a scripted host: the VMBus client
 * functions ic_guest.c calls are the test's own, backed by a real ring the
 * "host" writes into. Checks that a packet too big for an IC message is
 * taken off the ring, dropped and counted, and that the messages behind it
 * are still answered (the loop once retried it for ever).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "heap_port.h"
#include "hvkit/vmbus_classes.h"
#include "ic_guest.h"
#include "ring_buffer.h"
#include "ring_fixture.h"

/* Receive calls per interrupt past which the loop is taken to spin. */
#define SPIN_LIMIT 1000

struct vmbus_client {
	int unused;
};

struct vmbus_client_channel {
	vmbus_client_channel_callback cb;
	void *arg;
	bool open;
	struct ring_fixture in; /* the host writes (in.w), the guest reads */
};

static struct {
	struct vmbus_client client;
	struct heap_port heap;
	struct vmbus_client_channel ch;
	struct vmbus_driver drv[IC_SERVICE_COUNT];
	uint32_t ndrv;
	uint32_t recv_calls; /* in the current interrupt */
	bool spun;
	uint32_t answers;
	uint8_t answer[IC_MAX_PACKET];
	uint32_t answer_len;
} H;

int vmbus_client_register_driver(struct vmbus_client *c, const struct vmbus_driver *drv)
{
	(void)c;
	assert_true(H.ndrv < IC_SERVICE_COUNT);
	H.drv[H.ndrv++] = *drv;
	return 0;
}

int vmbus_client_channel_open(struct vmbus_client_channel *ch, uint32_t send_ring_bytes,
			      uint32_t recv_ring_bytes, const void *user_data, uint32_t user_len,
			      vmbus_client_channel_callback cb, void *arg)
{
	(void)send_ring_bytes;
	(void)user_data;
	(void)user_len;
	assert_int_equal(ring_fixture_init(&ch->in, false, recv_ring_bytes), 0);
	ch->cb = cb;
	ch->arg = arg;
	ch->open = true;
	return 0;
}

void vmbus_client_channel_close(struct vmbus_client_channel *ch)
{
	ch->open = false;
	ring_fixture_destroy(&ch->in);
}

int vmbus_client_channel_recv(struct vmbus_client_channel *ch, void *buf, uint32_t len,
			      struct vmbus_packet *pkt)
{
	if (++H.recv_calls > SPIN_LIMIT) {
		H.spun = true;
		return -EAGAIN; /* end the test's interrupt instead of hanging */
	}
	int err = vmbus_ring_recv(&ch->in.r, buf, len, pkt);
	vmbus_ring_commit(&ch->in.r);
	return err;
}

int vmbus_client_channel_send_inband(struct vmbus_client_channel *ch, uint64_t trans_id,
				     uint16_t flags, const void *data, uint32_t len)
{
	(void)ch;
	(void)trans_id;
	(void)flags;
	assert_true(len <= sizeof(H.answer));
	memcpy(H.answer, data, len);
	H.answer_len = len;
	H.answers++;
	return 0;
}

static void put(uint64_t trans_id, const void *data, uint32_t len)
{
	const struct vmbus_ring_iov iov = {data, len};
	assert_int_equal(vmbus_ring_put_inband(&H.ch.in.w, trans_id, 0, &iov, 1, NULL), 0);
}

/* The host's interrupt: the guest's callback runs over what was written. */
static void kick(void)
{
	vmbus_ring_publish(&H.ch.in.w);
	H.recv_calls = 0;
	H.ch.cb(H.ch.arg, &H.ch);
}

static struct ic_guest *bind_heartbeat(void)
{
	memset(&H, 0, sizeof(H));
	heap_port_init(&H.heap, -1);
	struct ic_guest_config cfg = {.services = 1u << IC_HEARTBEAT};
	struct ic_guest *g;
	assert_int_equal(ic_guest_register(&H.client, &H.heap.port, &cfg, &g), 0);
	const struct hv_guid hb = VMBUS_CLASS_HEARTBEAT;
	for (uint32_t i = 0; i < H.ndrv; i++)
		if (!memcmp(&H.drv[i].class_id, &hb, sizeof(hb)))
			assert_int_equal(H.drv[i].probe(H.drv[i].ctx, &H.ch), 0);
	assert_true(H.ch.open);
	return g;
}

static void negotiate(void)
{
	uint8_t m[IC_MAX_PACKET];
	static const uint32_t fw[] = {IC_FW_VERSION_3};
	uint32_t n;
	const uint32_t *hb = ic_service_versions(IC_HEARTBEAT, &n);
	uint32_t len = ic_negotiate_request(m, sizeof(m), fw, 1, hb, 1, 1);
	assert_int_not_equal(len, 0);
	put(1, m, len);
}

static void oversized_packet_is_dropped_and_the_next_answered(void **state)
{
	(void)state;
	struct ic_guest *g = bind_heartbeat();
	/* Larger than any IC message and than the old receive buffer, but
	 * it fits the ring. */
	static uint8_t big[IC_MAX_PACKET + 2048];
	memset(big, 0xa5, sizeof(big));
	put(9, big, sizeof(big));
	negotiate();
	kick();
	assert_false(H.spun);
	struct ic_guest_status st;
	ic_guest_status(g, IC_HEARTBEAT, &st);
	assert_int_equal(st.bad, 1);
	assert_true(st.negotiated);
	assert_int_equal(H.answers, 1);
	/* The ring is empty again: another interrupt reads nothing. */
	kick();
	assert_int_equal(H.recv_calls, 1);
	ic_guest_status(g, IC_HEARTBEAT, &st);
	assert_int_equal(st.bad, 1);
	vmbus_client_channel_close(&H.ch);
	ic_guest_free(g);
}

static void oversized_message_alone_is_counted_once(void **state)
{
	(void)state;
	struct ic_guest *g = bind_heartbeat();
	static uint8_t big[IC_MAX_PACKET + 1];
	put(9, big, sizeof(big));
	kick();
	kick();
	assert_false(H.spun);
	struct ic_guest_status st;
	ic_guest_status(g, IC_HEARTBEAT, &st);
	assert_int_equal(st.bad, 1);
	assert_int_equal(H.answers, 0);
	vmbus_client_channel_close(&H.ch);
	ic_guest_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(oversized_packet_is_dropped_and_the_next_answered),
		cmocka_unit_test(oversized_message_alone_is_counted_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
