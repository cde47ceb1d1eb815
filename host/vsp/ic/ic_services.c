/* SPDX-License-Identifier: MIT */
/*
 * What each IC service sends and how it reads the guest's answers:
 * heartbeat probes, time samples, shutdown requests, KVP operations.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ic_host_internal.h"

/* ---- Heartbeat ---- */

static void heartbeat_probe(struct ic_svc *v, uint64_t now)
{
	struct ic_host *h = v->h;
	uint64_t interval = h->cfg.heartbeat_interval_ns ? h->cfg.heartbeat_interval_ns
							  : 1000000000ull;
	uint64_t timeout = h->cfg.heartbeat_timeout_ns ? h->cfg.heartbeat_timeout_ns
						       : 5000000000ull;
	v->hb_next = now + interval;
	if (!v->hb_since)
		v->hb_since = now;
	if (v->outstanding || v->head)
		return; /* the last probe is still out */
	struct ic_request *r = ic_request_new(IC_MSGTYPE_HEARTBEAT,
					      sizeof(struct ic_heartbeat_msg), timeout);
	if (!r)
		return;
	struct ic_heartbeat_msg m = {.seq_num = ++v->hb_seq};
	r->seq = m.seq_num;
	memcpy(r->body, &m, sizeof(m));
	ic_submit(v, r);
}

static void heartbeat_check(struct ic_svc *v, uint64_t now)
{
	uint64_t timeout = v->h->cfg.heartbeat_timeout_ns ? v->h->cfg.heartbeat_timeout_ns
							  : 5000000000ull;
	if (v->hb_since && now - v->hb_since >= timeout &&
	    v->st.heartbeat != IC_HEARTBEAT_UNRESPONSIVE) {
		v->st.heartbeat = IC_HEARTBEAT_UNRESPONSIVE;
		ic_log(v->h, "ic heartbeat: the guest is unresponsive");
	}
}

/* ---- Time sync ---- */

void ic_timesync_fill(struct ic_svc *v, struct ic_request *r)
{
	struct ic_host *h = v->h;
	uint8_t flags = (uint8_t)r->op;
	if (v->msg >= IC_TIMESYNC_VERSION_4) {
		struct ic_timesync_ref_msg m = {
			.parenttime = ic_wall_time(h),
			.vmreferencetime = h->cfg.reference_time ? h->cfg.reference_time(h->cfg.ctx)
								 : 0,
			.flags = flags,
		};
		memcpy(r->body, &m, sizeof(m));
		r->body_len = sizeof(m);
	} else {
		struct ic_timesync_msg m = {.parenttime = ic_wall_time(h), .flags = flags};
		memcpy(r->body, &m, sizeof(m));
		r->body_len = sizeof(m);
	}
}

/* A sample now; the next periodic one an interval later. SYNC sets the
 * guest's clock, SAMPLE steers it. */
static int timesync_send(struct ic_svc *v, uint64_t now, uint8_t flag, uint64_t timeout_ns,
			 ic_done_fn done, void *arg)
{
	uint64_t interval = v->h->cfg.timesync_interval_ns ? v->h->cfg.timesync_interval_ns
							   : 5000000000ull;
	v->ts_next = now + interval;
	/* Room for the larger of the two layouts; filled as it is sent. */
	struct ic_request *r = ic_request_new(IC_MSGTYPE_TIMESYNC,
					      sizeof(struct ic_timesync_msg), timeout_ns);
	if (!r)
		return -ENOMEM;
	r->op = flag;
	r->done = done;
	r->arg = arg;
	v->ts_synced = true;
	int err = ic_submit(v, r);
	if (err == 0)
		v->st.samples_sent++;
	return err;
}

/* The periodic sample: the first after an open sets the clock. */
static void timesync_periodic(struct ic_svc *v, uint64_t now)
{
	timesync_send(v, now, v->ts_synced ? IC_TIMESYNC_FLAG_SAMPLE : IC_TIMESYNC_FLAG_SYNC, 0,
		      NULL, NULL);
}

int ic_timesync_sync(struct ic_host *h, uint64_t timeout_ns, ic_done_fn done, void *arg)
{
	if (!done)
		return -EINVAL;
	if (!(h->cfg.services & (1u << IC_TIMESYNC)))
		return -ENODEV;
	struct ic_svc *v = ic_svc_of(h, IC_TIMESYNC);
	return timesync_send(v, ic_now(h), IC_TIMESYNC_FLAG_SYNC, timeout_ns, done, arg);
}

/* ---- Hooks ---- */

void ic_service_started(struct ic_svc *v)
{
	uint64_t now = ic_now(v->h);
	v->hb_since = 0;
	v->ts_synced = false;
	if (v->id == IC_HEARTBEAT)
		heartbeat_probe(v, now);
	else if (v->id == IC_TIMESYNC)
		timesync_periodic(v, now);
}

void ic_service_stopped(struct ic_svc *v)
{
	if (v->id == IC_FCOPY)
		ic_fcopy_stopped(v);
	if (v->id == IC_HEARTBEAT) {
		v->st.heartbeat = IC_HEARTBEAT_UNKNOWN;
		v->hb_since = 0;
	}
}

void ic_service_tick(struct ic_svc *v, uint64_t now)
{
	if (v->id == IC_HEARTBEAT) {
		if (now >= v->hb_next)
			heartbeat_probe(v, now);
		heartbeat_check(v, now);
	} else if (v->id == IC_TIMESYNC && now >= v->ts_next) {
		timesync_periodic(v, now);
	}
}

void ic_service_answered(struct ic_svc *v, const struct ic_request *r, uint32_t status)
{
	if (v->id == IC_HEARTBEAT && r->type == IC_MSGTYPE_HEARTBEAT) {
		v->st.heartbeats_answered++;
		v->hb_since = ic_now(v->h);
		if (v->st.heartbeat != IC_HEARTBEAT_ALIVE && v->st.heartbeat != IC_HEARTBEAT_UNKNOWN)
			ic_log(v->h, "ic heartbeat: the guest answers again");
		v->st.heartbeat = IC_HEARTBEAT_ALIVE;
	} else if (v->id == IC_TIMESYNC && status == IC_S_OK) {
		v->st.samples_acked++;
	}
}

void ic_service_timed_out(struct ic_svc *v, const struct ic_request *r)
{
	(void)r;
	if (v->id == IC_HEARTBEAT)
		heartbeat_check(v, ic_now(v->h));
}

/* ---- Shutdown ---- */

int ic_shutdown_request(struct ic_host *h, enum ic_shutdown_kind kind, bool force,
			uint32_t reason, uint32_t timeout_seconds, const char *message,
			uint64_t answer_timeout_ns, ic_done_fn done, void *arg)
{
	static const uint32_t flags[] = {IC_SHUTDOWN_FLAG_SHUTDOWN, IC_SHUTDOWN_FLAG_REBOOT,
					 IC_SHUTDOWN_FLAG_HIBERNATE};
	if ((unsigned)kind > IC_SHUTDOWN_HIBERNATE || !done)
		return -EINVAL;
	if (!(h->cfg.services & (1u << IC_SHUTDOWN)))
		return -ENODEV;
	struct ic_request *r = ic_request_new(IC_MSGTYPE_SHUTDOWN, sizeof(struct ic_shutdown_msg),
					      answer_timeout_ns);
	if (!r)
		return -ENOMEM;
	struct ic_shutdown_msg *m = (struct ic_shutdown_msg *)r->body;
	m->reason_code = reason;
	m->timeout_seconds = timeout_seconds;
	m->flags = flags[kind] | (force ? IC_SHUTDOWN_FLAG_FORCE : 0);
	if (message)
		snprintf((char *)m->display_message, sizeof(m->display_message), "%s", message);
	r->done = done;
	r->arg = arg;
	return ic_submit(ic_svc_of(h, IC_SHUTDOWN), r);
}

/* ---- KVP ---- */

static int kvp_request(struct ic_host *h, uint32_t op, uint32_t pool, const char *key,
		       const char *value, uint32_t index, uint64_t timeout_ns, ic_kvp_fn done,
		       void *arg)
{
	if (pool >= IC_KVP_POOL_COUNT || !done ||
	    (op != IC_KVP_OP_ENUMERATE && (!key || !key[0])) || (op == IC_KVP_OP_SET && !value))
		return -EINVAL;
	if (!(h->cfg.services & (1u << IC_KVP)))
		return -ENODEV;
	uint32_t len = op == IC_KVP_OP_DELETE	   ? IC_KVP_DELETE_LEN
		       : op == IC_KVP_OP_ENUMERATE ? IC_KVP_ENUMERATE_LEN
						   : IC_KVP_VALUE_LEN;
	struct ic_request *r = ic_request_new(IC_MSGTYPE_KVPEXCHANGE, len, timeout_ns);
	if (!r)
		return -ENOMEM;
	struct ic_kvp_msg *m = (struct ic_kvp_msg *)r->body;
	m->hdr.operation = (uint8_t)op;
	m->hdr.pool = (uint8_t)pool;
	int n = 0, vn = 0;
	if (op == IC_KVP_OP_DELETE) {
		n = ic_utf8_to_utf16(key, m->del.key, sizeof(m->del.key));
		m->del.key_size = n > 0 ? (uint32_t)n : 0;
	} else if (op == IC_KVP_OP_ENUMERATE) {
		m->enumerate.index = index;
	} else {
		n = ic_utf8_to_utf16(key, m->set.key, sizeof(m->set.key));
		m->set.key_size = n > 0 ? (uint32_t)n : 0;
		m->set.value_type = IC_KVP_REG_SZ;
		if (op == IC_KVP_OP_SET) {
			vn = ic_utf8_to_utf16(value, m->set.value, sizeof(m->set.value));
			m->set.value_size = vn > 0 ? (uint32_t)vn : 0;
		}
	}
	if (n < 0 || vn < 0) {
		free(r);
		return n < 0 ? n : vn;
	}
	r->op = op;
	r->pool = pool;
	r->index = index;
	r->kvp_done = done;
	r->arg = arg;
	return ic_submit(ic_svc_of(h, IC_KVP), r);
}

static bool host_owns(uint32_t pool)
{
	return pool == IC_KVP_POOL_EXTERNAL || pool == IC_KVP_POOL_AUTO_EXTERNAL;
}

int kvp_host_set(struct ic_host *h, uint32_t pool, const char *key, const char *value,
		 uint64_t timeout_ns, ic_kvp_fn done, void *arg)
{
	if (pool < IC_KVP_POOL_COUNT && !host_owns(pool))
		return -EPERM;
	return kvp_request(h, IC_KVP_OP_SET, pool, key, value, 0, timeout_ns, done, arg);
}

int kvp_host_delete(struct ic_host *h, uint32_t pool, const char *key, uint64_t timeout_ns,
		    ic_kvp_fn done, void *arg)
{
	if (pool < IC_KVP_POOL_COUNT && !host_owns(pool))
		return -EPERM;
	return kvp_request(h, IC_KVP_OP_DELETE, pool, key, NULL, 0, timeout_ns, done, arg);
}

int kvp_host_get(struct ic_host *h, uint32_t pool, const char *key, uint64_t timeout_ns,
		 ic_kvp_fn done, void *arg)
{
	return kvp_request(h, IC_KVP_OP_GET, pool, key, NULL, 0, timeout_ns, done, arg);
}

int kvp_host_enumerate(struct ic_host *h, uint32_t pool, uint32_t index, uint64_t timeout_ns,
		       ic_kvp_fn done, void *arg)
{
	return kvp_request(h, IC_KVP_OP_ENUMERATE, pool, NULL, NULL, index, timeout_ns, done,
			   arg);
}

/* ---- VSS ---- */

int vss_request(struct ic_host *h, uint32_t op, uint64_t timeout_ns, ic_done_fn done, void *arg)
{
	if (op >= IC_VSS_OP_COUNT || !done)
		return -EINVAL;
	if (!(h->cfg.services & (1u << IC_VSS)))
		return -ENODEV;
	struct ic_request *r = ic_request_new(IC_MSGTYPE_VSS, sizeof(struct ic_vss_msg), timeout_ns);
	if (!r)
		return -ENOMEM;
	struct ic_vss_msg m = {.hdr = {.operation = (uint8_t)op}};
	memcpy(r->body, &m, sizeof(m));
	r->done = done;
	r->arg = arg;
	return ic_submit(ic_svc_of(h, IC_VSS), r);
}

/* ---- File copy ---- */

static void fcopy_finish(struct ic_svc *v, int err, uint32_t status)
{
	if (!v->copy.busy)
		return;
	v->copy.busy = false;
	close(v->copy.fd);
	v->copy.done(v->copy.arg, err, status);
}

static void fcopy_step(void *arg, int err, uint32_t status);

static int fcopy_submit(struct ic_svc *v, uint32_t op, uint32_t body_len)
{
	struct ic_request *r = ic_request_new(IC_MSGTYPE_FCOPY, body_len, v->copy.timeout_ns);
	if (!r)
		return -ENOMEM;
	struct ic_fcopy_hdr hdr = {.operation = op};
	memcpy(r->body, &hdr, sizeof(hdr));
	r->op = op;
	if (op == IC_FCOPY_WRITE) {
		struct ic_fcopy_data *d = (struct ic_fcopy_data *)r->body;
		uint64_t left = v->copy.size - v->copy.offset;
		uint32_t n = left < IC_FCOPY_DATA_FRAGMENT ? (uint32_t)left : IC_FCOPY_DATA_FRAGMENT;
		ssize_t got = pread(v->copy.fd, d->data, n, (off_t)v->copy.offset);
		if (got != (ssize_t)n) {
			free(r);
			return got < 0 ? -errno : -EIO; /* the file shrank under us */
		}
		d->offset = v->copy.offset;
		d->size = n;
		v->copy.offset += n;
	}
	r->done = fcopy_step;
	r->arg = v;
	return ic_submit(v, r);
}

/* Each answer moves the copy on: the next WRITE, COMPLETE, or the end. */
static void fcopy_step(void *arg, int err, uint32_t status)
{
	struct ic_svc *v = arg;
	if (!v->copy.busy)
		return;
	if (err) {
		fcopy_finish(v, err, 0);
		return;
	}
	if (v->copy.failed_status) {
		/* That was our CANCEL's answer: report the step that failed. */
		fcopy_finish(v, 0, v->copy.failed_status);
		return;
	}
	if (status != IC_S_OK) {
		v->copy.failed_status = status;
		if (fcopy_submit(v, IC_FCOPY_CANCEL, sizeof(struct ic_fcopy_hdr)))
			fcopy_finish(v, 0, status);
		return;
	}
	if (v->copy.offset == UINT64_MAX) { /* COMPLETE answered */
		fcopy_finish(v, 0, IC_S_OK);
		return;
	}
	int e;
	if (v->copy.offset < v->copy.size) {
		e = fcopy_submit(v, IC_FCOPY_WRITE, sizeof(struct ic_fcopy_data));
	} else {
		v->copy.offset = UINT64_MAX;
		e = fcopy_submit(v, IC_FCOPY_COMPLETE, sizeof(struct ic_fcopy_hdr));
	}
	if (e)
		fcopy_finish(v, e, 0);
}

void ic_fcopy_stopped(struct ic_svc *v)
{
	fcopy_finish(v, v->h->stop ? -ECANCELED : -ENOTCONN, 0);
}

int fcopy_start(struct ic_host *h, const char *host_path, const char *guest_path,
		uint32_t flags, uint64_t timeout_ns, ic_done_fn done, void *arg)
{
	if (!done || !guest_path || !host_path)
		return -EINVAL;
	if (!(h->cfg.services & (1u << IC_FCOPY)))
		return -ENODEV;
	struct ic_svc *v = ic_svc_of(h, IC_FCOPY);
	if (v->copy.busy)
		return -EBUSY;
	if (!v->negotiated)
		return -ENOTCONN;
	const char *slash = strrchr(guest_path, '/');
	const char *name = slash ? slash + 1 : guest_path;
	if (!name[0])
		return -EINVAL;
	struct ic_request *r = ic_request_new(IC_MSGTYPE_FCOPY, sizeof(struct ic_fcopy_start),
					      timeout_ns);
	if (!r)
		return -ENOMEM;
	struct ic_fcopy_start *m = (struct ic_fcopy_start *)r->body;
	char dir[IC_FCOPY_MAX_PATH * 3];
	size_t dlen = slash ? (size_t)(slash - guest_path) : 0;
	if (dlen >= sizeof(dir)) {
		free(r);
		return -ENAMETOOLONG;
	}
	memcpy(dir, guest_path, dlen);
	dir[dlen] = '\0';
	int n = ic_utf8_to_utf16(name, (uint8_t *)m->file_name, sizeof(m->file_name));
	int d = n < 0 ? 0 : ic_utf8_to_utf16(dlen ? dir : "/", (uint8_t *)m->path_name,
					      sizeof(m->path_name));
	if (n < 0 || d < 0) {
		free(r);
		return n < 0 ? n : d;
	}
	int fd = open(host_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(r);
		return -errno;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	if (size < 0) {
		int e = -errno;
		close(fd);
		free(r);
		return e;
	}
	m->hdr.operation = IC_FCOPY_START;
	m->copy_flags = flags;
	m->file_size = (uint64_t)size;
	r->op = IC_FCOPY_START;
	r->done = fcopy_step;
	r->arg = v;
	v->copy.fd = fd;
	v->copy.offset = 0;
	v->copy.size = (uint64_t)size;
	v->copy.done = done;
	v->copy.arg = arg;
	v->copy.timeout_ns = timeout_ns;
	v->copy.failed_status = 0;
	v->copy.busy = true;
	int err = ic_submit(v, r);
	if (err) {
		v->copy.busy = false;
		close(fd);
	}
	return err;
}

/* ---- Reading answers ---- */

/* A KVP value slot the guest filled: UTF-16 key and value, or a number. */
static int kvp_value(const struct ic_kvp_value *d, bool want_key, struct ic_kvp_result *out)
{
	if (want_key && ic_utf16_to_utf8(d->key, d->key_size, IC_KVP_MAX_KEY_SIZE, out->key,
					 sizeof(out->key)) < 0)
		return -EPROTO;
	switch (d->value_type) {
	case IC_KVP_REG_SZ:
		if (ic_utf16_to_utf8(d->value, d->value_size, IC_KVP_MAX_VALUE_SIZE, out->value,
				     sizeof(out->value)) < 0)
			return -EPROTO;
		return 0;
	case IC_KVP_REG_U32:
		snprintf(out->value, sizeof(out->value), "%" PRIu32, d->value_u32);
		return 0;
	case IC_KVP_REG_U64:
		snprintf(out->value, sizeof(out->value), "%" PRIu64, d->value_u64);
		return 0;
	default:
		return -EPROTO;
	}
}

static int kvp_answer(const uint8_t *body, uint32_t body_len, uint32_t status,
		      struct ic_kvp_result *out)
{
	struct ic_kvp_msg m;
	if (body_len < sizeof(struct ic_kvp_hdr))
		return -EPROTO;
	memset(&m, 0, sizeof(m));
	memcpy(&m, body, body_len < sizeof(m) ? body_len : sizeof(m));
	if (m.hdr.operation >= IC_KVP_OP_COUNT || m.hdr.pool >= IC_KVP_POOL_COUNT)
		return -EPROTO;
	if (out)
		out->op = m.hdr.operation;
	if (status != IC_S_OK)
		return 0; /* nothing more to read */
	if (m.hdr.operation == IC_KVP_OP_GET) {
		if (body_len < IC_KVP_VALUE_LEN)
			return -EPROTO;
		return out ? kvp_value(&m.get, false, out) : 0;
	}
	if (m.hdr.operation == IC_KVP_OP_ENUMERATE) {
		if (body_len < IC_KVP_ENUMERATE_LEN)
			return -EPROTO;
		return out ? kvp_value(&m.enumerate.data, true, out) : 0;
	}
	return 0;
}

int ic_host_parse_answer(enum ic_service svc, uint32_t msg_version, const void *buf,
			 uint32_t len, uint64_t heartbeat_seq, struct ic_kvp_result *kvp)
{
	(void)msg_version;
	struct ic_msg_hdr h;
	if (svc >= IC_SERVICE_COUNT || ic_msg_header(buf, len, &h) ||
	    !(h.icflags & IC_FLAG_RESPONSE) || h.icmsgtype != ic_service_msgtype(svc))
		return -EPROTO;
	const uint8_t *body = (const uint8_t *)buf + IC_MSG_HDR_SIZE;
	uint32_t body_len = len - (uint32_t)IC_MSG_HDR_SIZE;
	switch (svc) {
	case IC_HEARTBEAT: {
		struct ic_heartbeat_msg m;
		if (body_len < sizeof(m.seq_num))
			return -EPROTO;
		memcpy(&m.seq_num, body, sizeof(m.seq_num));
		return m.seq_num == heartbeat_seq + 1 ? 0 : -EPROTO;
	}
	case IC_KVP:
		return kvp_answer(body, body_len, h.status, kvp);
	case IC_VSS:
		return body_len >= sizeof(struct ic_vss_hdr) ? 0 : -EPROTO;
	case IC_FCOPY:
		return body_len >= sizeof(struct ic_fcopy_hdr) ? 0 : -EPROTO;
	default:
		return 0; /* the status in the header is the answer */
	}
}
