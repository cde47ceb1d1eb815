/* SPDX-License-Identifier: MIT */
/*
 * The IC host devices on hvkit's VMBus server, against a scripted guest
 * that opens their channels and reads and writes the rings byte by byte
 * (tests/vmbus_server's fixture). The clock is the test's: heartbeat and
 * request timeouts are driven by moving it and calling the tick.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ic_host_fixture.h"

static struct ic_service_status st(struct ic_env *e, enum ic_service svc)
{
	struct ic_service_status s;
	ic_host_status(e->h, svc, &s);
	return s;
}

static void tick(struct ic_env *e, uint64_t advance)
{
	e->f->now += advance;
	ic_env_lock(e->f);
	ic_host_tick_locked(e->h);
	ic_env_unlock(e->f);
}

/* ---- Heartbeat ---- */

static void heartbeat_negotiates_probes_and_judges(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_new(&e, IC_HEARTBEAT, 0, 0);
	assert_true(st(&e, IC_HEARTBEAT).negotiated);
	assert_int_equal(st(&e, IC_HEARTBEAT).msg_version, IC_HEARTBEAT_VERSION_3);
	assert_int_equal(st(&e, IC_HEARTBEAT).fw_version, IC_FW_VERSION_3);
	/* The first probe follows the negotiation at once. */
	ic_env_take(&e);
	struct ic_heartbeat_msg m;
	memcpy(&m, e.buf + IC_MSG_HDR_SIZE, sizeof(m));
	assert_int_equal(m.seq_num, 1);
	assert_int_equal(ic_heartbeat_state(e.h), IC_HEARTBEAT_UNKNOWN);
	m.seq_num++;
	memcpy(e.buf + IC_MSG_HDR_SIZE, &m, sizeof(m));
	ic_env_reply(&e, 0);
	assert_int_equal(ic_heartbeat_state(e.h), IC_HEARTBEAT_ALIVE);
	/* The next probe after the interval; a wrong echo is refused. */
	tick(&e, 1000);
	ic_env_take(&e);
	memcpy(&m, e.buf + IC_MSG_HDR_SIZE, sizeof(m));
	assert_int_equal(m.seq_num, 2);
	ic_env_reply(&e, 0); /* seq_num not incremented */
	assert_int_equal(st(&e, IC_HEARTBEAT).bad, 1);
	/* No good answer for the timeout: unresponsive. */
	for (int i = 0; i < 6; i++) {
		tick(&e, 1000);
		while (!ic_env_nothing_pending(&e))
			;
	}
	assert_int_equal(ic_heartbeat_state(e.h), IC_HEARTBEAT_UNRESPONSIVE);
	ic_env_free(&e);
}

static void heartbeat_old_guest_gets_1_0(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_new(&e, IC_HEARTBEAT, IC_HEARTBEAT_VERSION_1, 0);
	assert_int_equal(st(&e, IC_HEARTBEAT).msg_version, IC_HEARTBEAT_VERSION_1);
	ic_env_free(&e);
}

/* ---- Shutdown ---- */

static int done_err = 1;
static uint32_t done_status;

static void done(void *arg, int err, uint32_t status)
{
	(void)arg;
	done_err = err;
	done_status = status;
}

static void shutdown_request_answer_and_timeout(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_new(&e, IC_SHUTDOWN, 0, IC_SHUTDOWN_VERSION_3_1);
	assert_int_equal(st(&e, IC_SHUTDOWN).msg_version, IC_SHUTDOWN_VERSION_3_1);
	ic_env_lock(e.f);
	assert_int_equal(ic_shutdown_request(e.h, IC_SHUTDOWN_HIBERNATE, true, 7, 30, "bye", 3000,
					     done, NULL),
			 0);
	ic_env_unlock(e.f);
	ic_env_take(&e);
	struct ic_shutdown_msg m;
	memcpy(&m, e.buf + IC_MSG_HDR_SIZE, sizeof(m));
	assert_int_equal(m.flags, IC_SHUTDOWN_FLAG_HIBERNATE | IC_SHUTDOWN_FLAG_FORCE);
	assert_int_equal(m.reason_code, 7);
	assert_string_equal((char *)m.display_message, "bye");
	done_err = 1;
	ic_env_reply(&e, IC_E_FAIL);
	assert_int_equal(done_err, 0);
	assert_int_equal(done_status, IC_E_FAIL);
	/* Unanswered: -ETIMEDOUT at the deadline, and a late answer is stray. */
	ic_env_lock(e.f);
	assert_int_equal(ic_shutdown_request(e.h, IC_SHUTDOWN_REBOOT, false, 0, 0, NULL, 3000, done,
					     NULL),
			 0);
	ic_env_unlock(e.f);
	ic_env_take(&e);
	done_err = 1;
	tick(&e, 2999);
	assert_int_equal(done_err, 1);
	tick(&e, 1);
	assert_int_equal(done_err, -ETIMEDOUT);
	ic_env_reply(&e, 0);
	assert_int_equal(st(&e, IC_SHUTDOWN).bad, 1);
	ic_env_free(&e);
}

/* A completion that submits again, run from the timer's expiry of a
 * queued request: the queue must be whole when it runs. */
static struct ic_host *resubmit_host;
static int resubmits;

static void resubmit(void *arg, int err, uint32_t status)
{
	(void)arg, (void)status;
	if (err == -ETIMEDOUT && resubmits++ < 2)
		assert_int_equal(ic_shutdown_request(resubmit_host, IC_SHUTDOWN_POWEROFF, false, 0, 0,
						     NULL, 100000, resubmit, NULL),
				 0);
}

static void queued_requests_expire_and_may_resubmit(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_new(&e, IC_SHUTDOWN, 0, 0);
	resubmit_host = e.h;
	ic_env_lock(e.f);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ic_shutdown_request(e.h, IC_SHUTDOWN_POWEROFF, false, 0, 0, NULL,
						     1000, resubmit, NULL),
				 0);
	ic_env_unlock(e.f);
	tick(&e, 1000); /* all three expire; the first two callbacks resubmit */
	assert_int_equal(resubmits, 3);
	assert_int_equal(st(&e, IC_SHUTDOWN).timeouts, 3);
	tick(&e, 100000); /* the two resubmitted expire in turn */
	assert_int_equal(st(&e, IC_SHUTDOWN).timeouts, 5);
	assert_int_equal(resubmits, 5);
	ic_env_free(&e);
}

/* ---- Time sync ---- */

static void timesync_samples_by_version(void **state)
{
	(void)state;
	for (int old = 0; old < 2; old++) {
		struct ic_env e;
		ic_env_new(&e, IC_TIMESYNC, old ? IC_TIMESYNC_VERSION_3 : 0, 0);
		ic_env_take(&e); /* the SYNC sent on negotiation */
		struct ic_msg_hdr h;
		ic_msg_header(e.buf, e.len, &h);
		assert_int_equal(h.icmsgtype, IC_MSGTYPE_TIMESYNC);
		if (old) {
			struct ic_timesync_msg m;
			assert_int_equal(h.icmsgsize, sizeof(m));
			memcpy(&m, e.buf + IC_MSG_HDR_SIZE, sizeof(m));
			assert_int_equal(m.flags, IC_TIMESYNC_FLAG_SYNC);
			assert_true(m.parenttime > IC_WLTIMEDELTA);
		} else {
			struct ic_timesync_ref_msg m;
			assert_int_equal(h.icmsgsize, sizeof(m));
			memcpy(&m, e.buf + IC_MSG_HDR_SIZE, sizeof(m));
			assert_int_equal(m.flags, IC_TIMESYNC_FLAG_SYNC);
		}
		ic_env_reply(&e, 0);
		tick(&e, 1000);
		ic_env_take(&e);
		assert_int_equal(e.buf[IC_MSG_HDR_SIZE + (old ? 24 : 16)], IC_TIMESYNC_FLAG_SAMPLE);
		ic_env_reply(&e, 0);
		assert_int_equal(st(&e, IC_TIMESYNC).samples_acked, 2);
		ic_env_free(&e);
	}
}

/* A SYNC on request (hvkit ctl timesync): sent at once, answered through
 * done, and the periodic samples go on as SAMPLEs an interval later. */
static void timesync_sync_on_request(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_new(&e, IC_TIMESYNC, 0, 0);
	ic_env_take(&e); /* the SYNC sent on negotiation */
	ic_env_reply(&e, 0);
	tick(&e, 1000);
	ic_env_take(&e); /* a periodic SAMPLE */
	assert_int_equal(e.buf[IC_MSG_HDR_SIZE + 16], IC_TIMESYNC_FLAG_SAMPLE);
	ic_env_reply(&e, 0);
	tick(&e, 500);
	done_err = 1;
	ic_env_lock(e.f);
	assert_int_equal(ic_timesync_sync(e.h, 3000, done, NULL), 0);
	ic_env_unlock(e.f);
	ic_env_take(&e);
	assert_int_equal(e.buf[IC_MSG_HDR_SIZE + 16], IC_TIMESYNC_FLAG_SYNC);
	assert_int_equal(done_err, 1);
	ic_env_reply(&e, 0);
	assert_int_equal(done_err, 0);
	assert_int_equal(done_status, IC_S_OK);
	/* The next periodic sample comes a whole interval after the SYNC. */
	tick(&e, 999);
	assert_true(ic_env_nothing_pending(&e));
	tick(&e, 1);
	ic_env_take(&e);
	assert_int_equal(e.buf[IC_MSG_HDR_SIZE + 16], IC_TIMESYNC_FLAG_SAMPLE);
	ic_env_free(&e);
}

/* Before the guest negotiated time sync there is nobody to set. */
static void timesync_sync_needs_the_service(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_new(&e, IC_KVP, 0, 0); /* time sync offered, never opened */
	ic_env_lock(e.f);
	assert_int_equal(ic_timesync_sync(e.h, 3000, done, NULL), -ENOTCONN);
	assert_int_equal(ic_timesync_sync(e.h, 3000, NULL, NULL), -EINVAL);
	ic_env_unlock(e.f);
	ic_env_free(&e);
}

/* ---- KVP ---- */

static struct ic_kvp_result kvp_res;

static void kvp_done(void *arg, const struct ic_kvp_result *r)
{
	(void)arg;
	kvp_res = *r;
}

/* ---- Negotiation ---- */

/* Linux answers KVP's negotiation only once hv_kvp_daemon runs, which
 * may be long after the open: the host must still take the answer (a
 * request timeout here left KVP unusable for good). Nothing else goes
 * out before it. */
static void late_negotiation_answer_is_taken(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_open(&e, IC_KVP, 0);
	for (int i = 0; i < 3600; i++)
		tick(&e, 1000000000ull);
	assert_false(st(&e, IC_KVP).negotiated);
	assert_int_equal(st(&e, IC_KVP).timeouts, 0);
	ic_env_lock(e.f);
	assert_int_equal(kvp_host_get(e.h, IC_KVP_POOL_EXTERNAL, "k", 0, kvp_done, NULL),
			 -ENOTCONN);
	ic_env_unlock(e.f);
	assert_true(ic_env_nothing_pending(&e));
	ic_env_answer_negotiation(&e, IC_KVP, 0);
	assert_true(st(&e, IC_KVP).negotiated);
	assert_int_equal(st(&e, IC_KVP).bad, 0);
	ic_env_free(&e);
}

static void kvp_requests_and_answers(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_new(&e, IC_KVP, 0, 0);
	ic_env_lock(e.f);
	assert_int_equal(kvp_host_get(e.h, IC_KVP_POOL_GUEST, "name", 0, kvp_done, NULL), 0);
	/* Queued behind it: one request at a time. */
	assert_int_equal(kvp_host_enumerate(e.h, IC_KVP_POOL_AUTO, 0, 0, kvp_done, NULL), 0);
	ic_env_unlock(e.f);
	ic_env_take(&e);
	assert_true(ic_env_nothing_pending(&e));
	struct ic_kvp_msg *m = (struct ic_kvp_msg *)(e.buf + IC_MSG_HDR_SIZE);
	assert_int_equal(m->hdr.operation, IC_KVP_OP_GET);
	assert_int_equal(m->hdr.pool, IC_KVP_POOL_GUEST);
	assert_int_equal(m->get.key_size, 10);
	int n = ic_utf8_to_utf16("answer", m->get.value, sizeof(m->get.value));
	m->get.value_size = (uint32_t)n;
	m->get.value_type = IC_KVP_REG_SZ;
	ic_env_reply(&e, 0);
	assert_int_equal(kvp_res.err, 0);
	assert_string_equal(kvp_res.value, "answer");
	/* The enumeration went out; the guest answers with an unterminated key. */
	ic_env_take(&e);
	m = (struct ic_kvp_msg *)(e.buf + IC_MSG_HDR_SIZE);
	assert_int_equal(m->hdr.operation, IC_KVP_OP_ENUMERATE);
	memset(m->enumerate.data.key, 'x', sizeof(m->enumerate.data.key));
	m->enumerate.data.key_size = sizeof(m->enumerate.data.key);
	m->enumerate.data.value_type = IC_KVP_REG_SZ;
	ic_env_reply(&e, 0);
	assert_int_equal(kvp_res.err, -EPROTO);
	assert_int_equal(st(&e, IC_KVP).bad, 1);
	ic_env_free(&e);
}

/* ---- VSS and file copy ---- */

static void vss_request_carries_the_operation(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_new(&e, IC_VSS, 0, 0);
	assert_int_equal(st(&e, IC_VSS).fw_version, IC_FW_VERSION_3);
	ic_env_lock(e.f);
	assert_int_equal(vss_request(e.h, IC_VSS_OP_FREEZE, 0, done, NULL), 0);
	assert_int_equal(vss_request(e.h, IC_VSS_OP_COUNT, 0, done, NULL), -EINVAL);
	ic_env_unlock(e.f);
	ic_env_take(&e);
	assert_int_equal(e.buf[IC_MSG_HDR_SIZE], IC_VSS_OP_FREEZE);
	done_err = 1;
	ic_env_reply(&e, IC_S_OK);
	assert_int_equal(done_err, 0);
	assert_int_equal(done_status, IC_S_OK);
	ic_env_free(&e);
}

static uint32_t fcopy_op(struct ic_env *e)
{
	struct ic_fcopy_hdr h;
	memcpy(&h, e->buf + IC_MSG_HDR_SIZE, sizeof(h));
	return h.operation;
}

static void fcopy_streams_and_cancels(void **state)
{
	(void)state;
	char path[] = "/tmp/hvkit-ic-host-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static uint8_t data[IC_FCOPY_DATA_FRAGMENT + 100];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	close(fd);

	struct ic_env e;
	ic_env_new(&e, IC_FCOPY, 0, 0);
	ic_env_lock(e.f);
	assert_int_equal(fcopy_start(e.h, path, "/dir/name.bin", IC_FCOPY_FLAG_OVERWRITE, 0, done,
				     NULL),
			 0);
	assert_int_equal(fcopy_start(e.h, path, "/x", 0, 0, done, NULL), -EBUSY);
	ic_env_unlock(e.f);
	ic_env_take(&e);
	static struct ic_fcopy_start s;
	memcpy(&s, e.buf + IC_MSG_HDR_SIZE, sizeof(s));
	assert_int_equal(s.hdr.operation, IC_FCOPY_START);
	assert_int_equal(s.file_size, sizeof(data));
	assert_int_equal(s.copy_flags, IC_FCOPY_FLAG_OVERWRITE);
	char text[64];
	assert_true(ic_utf16_to_utf8((uint8_t *)s.file_name, sizeof(s.file_name),
				     sizeof(s.file_name), text, sizeof(text)) > 0);
	assert_string_equal(text, "name.bin");
	assert_true(ic_utf16_to_utf8((uint8_t *)s.path_name, sizeof(s.path_name),
				     sizeof(s.path_name), text, sizeof(text)) > 0);
	assert_string_equal(text, "/dir");
	ic_env_reply(&e, IC_S_OK);
	/* Two WRITEs carry the file; then COMPLETE. */
	static struct ic_fcopy_data d;
	uint64_t at = 0;
	for (int i = 0; i < 2; i++) {
		ic_env_take(&e);
		assert_int_equal(fcopy_op(&e), IC_FCOPY_WRITE);
		memcpy(&d, e.buf + IC_MSG_HDR_SIZE, sizeof(d));
		assert_int_equal(d.offset, at);
		assert_memory_equal(d.data, data + at, d.size);
		at += d.size;
		ic_env_reply(&e, IC_S_OK);
	}
	assert_int_equal(at, sizeof(data));
	ic_env_take(&e);
	assert_int_equal(fcopy_op(&e), IC_FCOPY_COMPLETE);
	done_err = 1;
	ic_env_reply(&e, IC_S_OK);
	assert_int_equal(done_err, 0);
	assert_int_equal(done_status, IC_S_OK);

	/* A refused WRITE: the host cancels, then reports the refusal. */
	ic_env_lock(e.f);
	assert_int_equal(fcopy_start(e.h, path, "/dir/name.bin", 0, 0, done, NULL), 0);
	ic_env_unlock(e.f);
	ic_env_take(&e);
	ic_env_reply(&e, IC_S_OK);
	ic_env_take(&e);
	assert_int_equal(fcopy_op(&e), IC_FCOPY_WRITE);
	done_err = 1;
	ic_env_reply(&e, IC_ERROR_DISK_FULL);
	ic_env_take(&e);
	assert_int_equal(fcopy_op(&e), IC_FCOPY_CANCEL);
	assert_int_equal(done_err, 1);
	ic_env_reply(&e, IC_S_OK);
	assert_int_equal(done_err, 0);
	assert_int_equal(done_status, IC_ERROR_DISK_FULL);
	ic_env_free(&e);
	unlink(path);
}

static void requests_fail_fast_when_not_open(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_new(&e, IC_KVP, 0, 0);
	ic_env_lock(e.f);
	assert_int_equal(ic_shutdown_request(e.h, IC_SHUTDOWN_POWEROFF, false, 0, 0, NULL, 0, done,
					     NULL),
			 -ENOTCONN);
	assert_int_equal(vss_request(e.h, IC_VSS_OP_FREEZE, 0, done, NULL), -ENOTCONN);
	assert_int_equal(kvp_host_set(e.h, IC_KVP_POOL_GUEST, "a", "b", 0, kvp_done, NULL), -EPERM);
	assert_int_equal(kvp_host_set(e.h, 9, "a", "b", 0, kvp_done, NULL), -EINVAL);
	assert_int_equal(kvp_host_get(e.h, 0, NULL, 0, kvp_done, NULL), -EINVAL);
	assert_int_equal(kvp_host_set(e.h, 0, "a", NULL, 0, kvp_done, NULL), -EINVAL);
	ic_env_unlock(e.f);
	/* Closing the channel completes what was pending with -ENOTCONN. */
	ic_env_lock(e.f);
	assert_int_equal(kvp_host_set(e.h, IC_KVP_POOL_EXTERNAL, "a", "b", 0, kvp_done, NULL), 0);
	ic_env_unlock(e.f);
	kvp_res.err = 1;
	struct vmbus_msg_close_channel close = {
		.header = {.msgtype = VMBUS_MSG_CLOSECHANNEL},
		.child_relid = e.c.relid,
	};
	assert_int_equal(vf_send(e.f, VMBUS_MESSAGE_CONNECTION_ID, &close, sizeof(close)), 0);
	assert_int_equal(kvp_res.err, -ENOTCONN);
	/* KVP (only KVP) answers a close with a rescind, and a fresh offer
	 * once the guest has released the old relid. */
	uint32_t gone = vf_take_rescind(e.f);
	assert_int_equal(gone, e.c.relid);
	assert_int_equal(vf_pending(e.f), 0);
	vf_relid_released(e.f, gone);
	const struct vf_msg *offer = vf_take(e.f, VMBUS_MSG_OFFERCHANNEL, 0);
	struct vmbus_msg_offer_channel o;
	memcpy(&o, offer->data, sizeof(o));
	struct hv_guid kvp = IC_KVP_INSTANCE;
	assert_true(hv_guid_equal(&o.offer.if_instance, &kvp));
	assert_false(st(&e, IC_KVP).open);
	ic_env_free(&e);
}

/* ---- Snapshot and restore (the device's state in the server's) ---- */

/* A probe the guest has not answered yet is answered after the restore
 * and counted; the restored host probes on, the sequence continuing. */
static void restore_keeps_the_outstanding_heartbeat(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_new(&e, IC_HEARTBEAT, 0, 0);
	ic_env_take(&e); /* probe 1, unanswered */
	ic_env_restore(&e);
	struct ic_service_status s = st(&e, IC_HEARTBEAT);
	assert_true(s.open && s.negotiated);
	assert_int_equal(s.msg_version, IC_HEARTBEAT_VERSION_3);
	struct ic_heartbeat_msg m;
	memcpy(&m, e.buf + IC_MSG_HDR_SIZE, sizeof(m));
	assert_int_equal(m.seq_num, 1);
	m.seq_num++;
	memcpy(e.buf + IC_MSG_HDR_SIZE, &m, sizeof(m));
	ic_env_reply(&e, 0);
	assert_int_equal(st(&e, IC_HEARTBEAT).bad, 0);
	assert_int_equal(ic_heartbeat_state(e.h), IC_HEARTBEAT_ALIVE);
	tick(&e, 1000);
	ic_env_take(&e); /* the restored host's next probe, an interval on */
	memcpy(&m, e.buf + IC_MSG_HDR_SIZE, sizeof(m));
	assert_int_equal(m.seq_num, 2);
	ic_env_free(&e);
}

/* The guest's clock stood still while the VM was saved: the restored
 * host sends a SYNC at once, then samples as before. */
static void restore_syncs_the_time(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_new(&e, IC_TIMESYNC, 0, 0);
	ic_env_take(&e);
	ic_env_reply(&e, 0);
	tick(&e, 1000);
	ic_env_take(&e);
	assert_int_equal(e.buf[IC_MSG_HDR_SIZE + 16], IC_TIMESYNC_FLAG_SAMPLE);
	ic_env_reply(&e, 0);
	ic_env_restore(&e);
	ic_env_take(&e);
	assert_int_equal(e.buf[IC_MSG_HDR_SIZE + 16], IC_TIMESYNC_FLAG_SYNC);
	ic_env_reply(&e, 0);
	assert_int_equal(st(&e, IC_TIMESYNC).bad, 0);
	tick(&e, 1000);
	ic_env_take(&e);
	assert_int_equal(e.buf[IC_MSG_HDR_SIZE + 16], IC_TIMESYNC_FLAG_SAMPLE);
	ic_env_free(&e);
}

/* KVP's negotiation still waits for the guest's daemon after a restore,
 * and its answer is taken then. */
static void restore_keeps_a_waiting_negotiation(void **state)
{
	(void)state;
	struct ic_env e;
	ic_env_open(&e, IC_KVP, 0);
	ic_env_restore(&e);
	assert_false(st(&e, IC_KVP).negotiated);
	for (int i = 0; i < 100; i++)
		tick(&e, 1000000000ull);
	assert_true(ic_env_nothing_pending(&e));
	ic_env_answer_negotiation(&e, IC_KVP, 0);
	assert_true(st(&e, IC_KVP).negotiated);
	assert_int_equal(st(&e, IC_KVP).bad, 0);
	ic_env_lock(e.f);
	assert_int_equal(kvp_host_get(e.h, IC_KVP_POOL_GUEST, "name", 0, kvp_done, NULL), 0);
	ic_env_unlock(e.f);
	ic_env_take(&e);
	ic_env_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(restore_keeps_the_outstanding_heartbeat),
		cmocka_unit_test(restore_syncs_the_time),
		cmocka_unit_test(restore_keeps_a_waiting_negotiation),
		cmocka_unit_test(heartbeat_negotiates_probes_and_judges),
		cmocka_unit_test(heartbeat_old_guest_gets_1_0),
		cmocka_unit_test(shutdown_request_answer_and_timeout),
		cmocka_unit_test(queued_requests_expire_and_may_resubmit),
		cmocka_unit_test(late_negotiation_answer_is_taken),
		cmocka_unit_test(timesync_samples_by_version),
		cmocka_unit_test(timesync_sync_on_request),
		cmocka_unit_test(timesync_sync_needs_the_service),
		cmocka_unit_test(kvp_requests_and_answers),
		cmocka_unit_test(vss_request_carries_the_operation),
		cmocka_unit_test(fcopy_streams_and_cancels),
		cmocka_unit_test(requests_fail_fast_when_not_open),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
