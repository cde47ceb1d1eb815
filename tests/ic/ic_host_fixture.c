/* SPDX-License-Identifier: MIT */
/*
 * The IC host devices on hvkit's VMBus server with a scripted guest on one
 * service's channel (tests/vmbus_server's fixture): the guest reads and
 * writes the ring byte by byte, and the clock is the test's.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hvkit/vmbus_classes.h"
#include "ic_host_fixture.h"

static uint64_t now(void *ctx)
{
	return ((struct vfix *)ctx)->now;
}

void ic_env_lock(void *ctx)
{
	struct vfix *f = ctx;
	assert_false(f->locked);
	f->locked = true;
}

void ic_env_unlock(void *ctx)
{
	struct vfix *f = ctx;
	assert_true(f->locked);
	f->locked = false;
}

static void quiet(void *ctx, const char *fmt, va_list ap)
{
	(void)ctx, (void)fmt, (void)ap;
}

/* The GUIDs each offer must carry, spelled out here rather than taken from
 * ic_service_class/ic_service_instance: the oracle stays independent of
 * the table under test. */
static const struct hv_guid classes[IC_SERVICE_COUNT] = {
	VMBUS_CLASS_HEARTBEAT, VMBUS_CLASS_SHUTDOWN, VMBUS_CLASS_TIMESYNC,
	VMBUS_CLASS_KVP,       VMBUS_CLASS_VSS,	     VMBUS_CLASS_FCOPY};
static const struct hv_guid instances[IC_SERVICE_COUNT] = {
	IC_HEARTBEAT_INSTANCE, IC_SHUTDOWN_INSTANCE, IC_TIMESYNC_INSTANCE,
	IC_KVP_INSTANCE,       IC_VSS_INSTANCE,	     IC_FCOPY_INSTANCE};

void ic_env_take(struct ic_env *e)
{
	struct vmbus_packet pkt;
	assert_int_equal(vmbus_ring_recv(&e->c.r, e->buf, sizeof(e->buf), &pkt), 0);
	vmbus_ring_commit(&e->c.r); /* room for what the host sends next */
	assert_int_equal(pkt.type, VMBUS_PKT_DATA_INBAND);
	memmove(e->buf, pkt.data, pkt.data_len);
	e->len = pkt.data_len;
	e->trans = pkt.trans_id;
}

bool ic_env_nothing_pending(struct ic_env *e)
{
	struct vmbus_packet pkt;
	return vmbus_ring_recv(&e->c.r, e->buf, sizeof(e->buf), &pkt) == -EAGAIN;
}

void ic_env_reply(struct ic_env *e, uint32_t status)
{
	ic_msg_make_response(e->buf, e->len, status);
	assert_int_equal(vf_chan_send(e->f, &e->c, e->trans, e->buf, e->len, false), 0);
}

void ic_env_open(struct ic_env *e, enum ic_service svc, uint32_t host_max)
{
	memset(e, 0, sizeof(*e));
	e->f = vf_new(NULL);
	struct ic_host_config cfg = {
		.no_timer_thread = true,
		.heartbeat_interval_ns = 1000,
		.heartbeat_timeout_ns = 5000,
		.timesync_interval_ns = 1000,
		.now_ns = now,
		.lock = ic_env_lock,
		.unlock = ic_env_unlock,
		.log = quiet,
		.ctx = e->f,
	};
	cfg.max_version[svc] = host_max;
	e->cfg = cfg;
	assert_int_equal(ic_host_new(e->f->s, &cfg, &e->h), 0);
	vf_connect(e->f);
	struct vmbus_msg_offer_channel offers[16];
	uint32_t n = vf_request_offers(e->f, offers, 16), relid = 0;
	assert_int_equal(n, IC_SERVICE_COUNT);
	for (uint32_t i = 0; i < n; i++)
		if (hv_guid_equal(&offers[i].offer.if_type, &classes[svc])) {
			/* Hyper-V's fixed instance GUID. */
			assert_true(hv_guid_equal(&offers[i].offer.if_instance, &instances[svc]));
			relid = offers[i].child_relid;
		}
	assert_int_not_equal(relid, 0);
	vf_chan_prepare(e->f, &e->c, relid, 100 + relid, 4, 4, false);
	assert_int_equal(vf_chan_open(e->f, &e->c, 0), 0);

	/* The negotiation the host sent on open. */
	ic_env_take(e);
	struct ic_msg_hdr h;
	assert_int_equal(ic_msg_header(e->buf, e->len, &h), 0);
	assert_int_equal(h.icmsgtype, IC_MSGTYPE_NEGOTIATE);
	assert_int_equal(h.icflags, IC_FLAG_TRANSACTION | IC_FLAG_REQUEST);
}

void ic_env_answer_negotiation(struct ic_env *e, enum ic_service svc, uint32_t guest_max)
{
	uint32_t nfw, nmsg, f, m;
	const uint32_t *fw = ic_service_fw_versions(svc, &nfw);
	const uint32_t *msg = ic_service_versions(svc, &nmsg);
	while (guest_max && nmsg && msg[0] > guest_max)
		msg++, nmsg--;
	int answerable;
	assert_int_equal(ic_negotiate_answer(e->buf, e->len, fw, nfw, msg, nmsg, &f, &m,
					     &answerable),
			 0);
	ic_env_reply(e, 0);
}

void ic_env_new(struct ic_env *e, enum ic_service svc, uint32_t guest_max, uint32_t host_max)
{
	ic_env_open(e, svc, host_max);
	ic_env_answer_negotiation(e, svc, guest_max);
}

void ic_env_restore(struct ic_env *e)
{
	size_t len;
	uint8_t *rec = vf_save(e->f, &len);
	ic_host_free(e->h);
	vf_replace_server(e->f);
	assert_int_equal(ic_host_new(e->f->s, &e->cfg, &e->h), 0);
	assert_int_equal(vmbus_server_load(e->f->s, rec, len), 0);
	free(rec);
}

void ic_env_free(struct ic_env *e)
{
	ic_host_free(e->h);
	vf_chan_free(&e->c);
	vf_free(e->f);
}
