/* SPDX-License-Identifier: MIT */
/*
 * The IC drivers (see ic_guest.h). One handler per service turns a host
 * request into its answer in place; the driver around it reads packets,
 * sends answers and keeps the counters.
 */
#include <errno.h>
#include <string.h>

#include "ic_guest.h"

struct ic_gsvc {
	struct ic_guest *g;
	enum ic_service id;
	struct vmbus_client_channel *ch;
	uint32_t fw_list[2], n_fw;
	uint32_t msg_list[8], n_msg;
	struct ic_guest_status st; /* counters: atomics, read from other threads */
	/* Room for anything the receive ring can hold, so every packet can
	 * be taken off the ring: one the buffer could not take would stay at
	 * its head and be read again for ever. Packets longer than an IC
	 * message (IC_MAX_PACKET) are then dropped and counted. */
	uint8_t buf[IC_RING_BYTES];
};

struct ic_guest {
	const struct hv_port *port; /* for this, the KVP store and requests' copies */
	struct ic_guest_config cfg;
	struct ic_kvp_store *store; /* the default KVP store */
	struct ic_gsvc svc[IC_SERVICE_COUNT];
	struct vmbus_driver drv[IC_SERVICE_COUNT];
};

#define INC(x) __atomic_add_fetch(&(x), 1, __ATOMIC_RELAXED)
#define SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
/* A handler's verdict: send no answer (too short, or the guest "hangs"). */
#define DROP 0xffffffffu

/* ---- Per-service handlers: body is what follows the IC header ---- */

static uint32_t on_heartbeat(struct ic_gsvc *v, uint8_t *body, uint32_t body_len)
{
	uint64_t seq;
	/* hv_util.c: only seq_num must be there. */
	if (body_len < sizeof(seq))
		return DROP;
	memcpy(&seq, body, sizeof(seq));
	seq++;
	memcpy(body, &seq, sizeof(seq));
	INC(v->st.heartbeats);
	return IC_S_OK;
}

static uint32_t on_shutdown(struct ic_gsvc *v, uint8_t *body, uint32_t body_len)
{
	struct ic_shutdown_msg m;
	if (body_len < sizeof(m))
		return DROP;
	memcpy(&m, body, sizeof(m));
	m.display_message[sizeof(m.display_message) - 1] = 0; /* the host need not end it */
	enum ic_guest_shutdown_kind kind;
	switch (m.flags) {
	case 0:
	case 1:
		kind = IC_GUEST_POWEROFF;
		break;
	case 2:
	case 3:
		kind = IC_GUEST_REBOOT;
		break;
	case 4:
	case 5:
		kind = IC_GUEST_HIBERNATE;
		break;
	default:
		return IC_E_FAIL; /* answered, refused: as Linux */
	}
	const struct ic_guest_ops *ops = &v->g->cfg.ops;
	if (!ops->shutdown)
		return IC_S_OK;
	int64_t r = ops->shutdown(ops->ctx, kind, m.flags & IC_SHUTDOWN_FLAG_FORCE,
				  m.reason_code, m.timeout_seconds, (const char *)m.display_message);
	if (r == IC_GUEST_NO_ANSWER)
		return DROP;
	return r == IC_S_OK ? IC_S_OK : IC_E_FAIL;
}

static uint32_t on_timesync(struct ic_gsvc *v, uint8_t *body, uint32_t body_len, uint32_t msg)
{
	const struct ic_guest_ops *ops = &v->g->cfg.ops;
	uint64_t host_time, ref;
	uint8_t flags;
	uint64_t now = ops->reference_time ? ops->reference_time(ops->ctx) : 0;
	if (msg > IC_TIMESYNC_VERSION_3) {
		struct ic_timesync_ref_msg m;
		if (body_len < sizeof(m))
			return DROP;
		memcpy(&m, body, sizeof(m));
		host_time = m.parenttime, ref = m.vmreferencetime, flags = m.flags;
	} else {
		struct ic_timesync_msg m;
		if (body_len < sizeof(m))
			return DROP;
		memcpy(&m, body, sizeof(m));
		host_time = m.parenttime, ref = now, flags = m.flags;
	}
	/* As adj_guesttime: the sample was true at ref; move it to now. A
	 * reference time from the future (another clock) is not trusted. */
	uint64_t corrected = host_time + (now >= ref ? now - ref : 0);
	SET(v->st.last_host_time, corrected);
	INC(v->st.samples);
	if (ops->time_sample)
		ops->time_sample(ops->ctx, corrected, now, flags & IC_TIMESYNC_FLAG_SYNC);
	return IC_S_OK;
}

/* ---- KVP ---- */

static int kvp_set(struct ic_guest *g, uint32_t pool, const char *k, const char *v)
{
	const struct ic_guest_ops *o = &g->cfg.ops;
	return o->kvp_set ? o->kvp_set(o->ctx, pool, k, v) : ic_kvp_store_set(g->store, pool, k, v);
}

static int kvp_get(struct ic_guest *g, uint32_t pool, const char *k, char *v, size_t n)
{
	const struct ic_guest_ops *o = &g->cfg.ops;
	return o->kvp_get ? o->kvp_get(o->ctx, pool, k, v, n)
			  : ic_kvp_store_get(g->store, pool, k, v, n);
}

static int kvp_delete(struct ic_guest *g, uint32_t pool, const char *k)
{
	const struct ic_guest_ops *o = &g->cfg.ops;
	return o->kvp_delete ? o->kvp_delete(o->ctx, pool, k) : ic_kvp_store_delete(g->store, pool, k);
}

static int kvp_enumerate(struct ic_guest *g, uint32_t pool, uint32_t i, char *k, size_t kn,
			 char *v, size_t vn)
{
	const struct ic_guest_ops *o = &g->cfg.ops;
	if (o->kvp_enumerate)
		return o->kvp_enumerate(o->ctx, pool, i, k, kn, v, vn);
	if (pool == IC_KVP_POOL_AUTO) {
		const char *const *in = g->cfg.intrinsic;
		for (uint32_t j = 0; in && in[0] && in[1]; j++, in += 2)
			if (j == i) {
				if (strlen(in[0]) >= kn || strlen(in[1]) >= vn)
					return -ENAMETOOLONG;
				strcpy(k, in[0]);
				strcpy(v, in[1]);
				return 0;
			}
		return -ENOENT;
	}
	return ic_kvp_store_enumerate(g->store, pool, i, k, kn, v, vn);
}

/* v in decimal into out (21 bytes suffice). */
static void decimal(uint64_t v, char *out)
{
	char tmp[21];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (int i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
}

/* Writes key and value into a value slot as the daemon's answer does. */
static int kvp_fill(struct ic_kvp_value *d, const char *key, const char *value)
{
	if (key) {
		int n = ic_utf8_to_utf16(key, d->key, sizeof(d->key));
		if (n < 0)
			return n;
		d->key_size = (uint32_t)n;
	}
	int n = ic_utf8_to_utf16(value, d->value, sizeof(d->value));
	if (n < 0)
		return n;
	d->value_size = (uint32_t)n;
	d->value_type = IC_KVP_REG_SZ;
	return 0;
}

/* A KVP request's working copies: too big for a handler's stack. */
struct kvp_work {
	struct ic_kvp_msg m;
	char key[IC_KVP_MAX_KEY_SIZE * 3 / 2];
	char val[IC_KVP_MAX_VALUE_SIZE * 3 / 2];
};

/* The request in w->m, of which body_len bytes came: its status, with
 * w->m answered in place if IC_S_OK. */
static uint32_t kvp_request(struct ic_guest *g, struct kvp_work *w, uint32_t body_len)
{
	struct ic_kvp_msg *m = &w->m;
	char *key = w->key, *val = w->val;
	const uint32_t klen = sizeof(w->key), vlen = sizeof(w->val);
	uint32_t op = m->hdr.operation, pool = m->hdr.pool;
	if (pool >= IC_KVP_POOL_COUNT)
		return IC_E_FAIL;
	int err;
	switch (op) {
	case IC_KVP_OP_SET:
		if (body_len < IC_KVP_VALUE_LEN ||
		    ic_utf16_to_utf8(m->set.key, m->set.key_size, IC_KVP_MAX_KEY_SIZE, key, klen) < 0)
			return IC_E_FAIL;
		/* Numbers are kept as decimal strings, as hv_kvp.c does. */
		if (m->set.value_type == IC_KVP_REG_U32)
			decimal(m->set.value_u32, val);
		else if (m->set.value_type == IC_KVP_REG_U64)
			decimal(m->set.value_u64, val);
		else if (m->set.value_type != IC_KVP_REG_SZ ||
			 ic_utf16_to_utf8(m->set.value, m->set.value_size, IC_KVP_MAX_VALUE_SIZE,
					  val, vlen) < 0)
			return IC_E_FAIL;
		return kvp_set(g, pool, key, val) ? IC_E_FAIL : IC_S_OK;
	case IC_KVP_OP_GET:
		if (body_len < IC_KVP_VALUE_LEN ||
		    ic_utf16_to_utf8(m->get.key, m->get.key_size, IC_KVP_MAX_KEY_SIZE, key, klen) < 0)
			return IC_E_FAIL;
		err = kvp_get(g, pool, key, val, vlen);
		return !err && !kvp_fill(&m->get, NULL, val) ? IC_S_OK : IC_E_FAIL;
	case IC_KVP_OP_DELETE:
		if (body_len < IC_KVP_DELETE_LEN ||
		    ic_utf16_to_utf8(m->del.key, m->del.key_size, IC_KVP_MAX_KEY_SIZE, key, klen) < 0)
			return IC_E_FAIL;
		return kvp_delete(g, pool, key) ? IC_E_FAIL : IC_S_OK;
	case IC_KVP_OP_ENUMERATE:
		if (body_len < IC_KVP_ENUMERATE_LEN)
			return IC_E_FAIL;
		err = kvp_enumerate(g, pool, m->enumerate.index, key, klen, val, vlen);
		/* The daemon ends the host's walk with HV_S_CONT. */
		if (err == -ENOENT)
			return IC_S_CONT;
		return !err && !kvp_fill(&m->enumerate.data, key, val) ? IC_S_OK : IC_E_FAIL;
	default:
		/* IP injection: hvkit's guests do not serve it. */
		return IC_E_FAIL;
	}
}

static uint32_t on_kvp(struct ic_gsvc *v, uint8_t *body, uint32_t body_len)
{
	const struct hv_port *port = v->g->port;
	if (body_len < sizeof(struct ic_kvp_hdr))
		return IC_E_FAIL;
	struct kvp_work *w = port->alloc(port->ctx, sizeof(*w));
	if (!w)
		return IC_E_FAIL;
	size_t n = body_len < sizeof(w->m) ? body_len : sizeof(w->m);
	memcpy(&w->m, body, n);
	uint32_t status = kvp_request(v->g, w, body_len);
	if (status == IC_S_OK)
		memcpy(body, &w->m, n);
	port->free(port->ctx, w, sizeof(*w));
	return status;
}

/* ---- VSS (hv_snapshot.c vss_handle_request) ---- */

static uint32_t on_vss(struct ic_gsvc *v, uint8_t *body, uint32_t body_len)
{
	struct ic_vss_msg m;
	if (body_len < sizeof(m))
		return DROP; /* Linux drops it unanswered */
	memcpy(&m, body, sizeof(m));
	const struct ic_guest_ops *ops = &v->g->cfg.ops;
	switch (m.hdr.operation) {
	case IC_VSS_OP_FREEZE:
	case IC_VSS_OP_THAW:
		if (!ops->vss || ops->vss(ops->ctx, m.hdr.operation))
			return IC_E_FAIL;
		INC(v->st.vss_ops);
		return IC_S_OK;
	case IC_VSS_OP_HOT_BACKUP:
		m.flags = IC_VSS_HBU_NO_AUTO_RECOVERY;
		break;
	case IC_VSS_OP_GET_DM_INFO:
		m.flags = 0;
		break;
	default:
		break; /* Linux answers the rest with success */
	}
	memcpy(body, &m, sizeof(m));
	return IC_S_OK;
}

/* ---- File copy (hv_fcopy.c, hv_fcopy_daemon.c) ---- */

static uint32_t fcopy_status(int err)
{
	return !err		 ? IC_S_OK
	       : err == -EEXIST ? IC_ERROR_ALREADY_EXISTS
	       : err == -ENOSPC ? IC_ERROR_DISK_FULL
				: IC_E_FAIL;
}

/* An fcopy START's working copies: too big for a handler's stack. */
struct fcopy_start_work {
	struct ic_fcopy_start m;
	char path[IC_FCOPY_MAX_PATH * 3], name[IC_FCOPY_MAX_PATH * 3];
};

static uint32_t fcopy_start(struct ic_guest *g, void *ctx, const uint8_t *body,
			    uint32_t body_len)
{
	const struct ic_guest_ops *ops = &g->cfg.ops;
	if (body_len < sizeof(struct ic_fcopy_start) || !ops->fcopy_start)
		return IC_E_FAIL;
	struct fcopy_start_work *w = g->port->alloc(g->port->ctx, sizeof(*w));
	if (!w)
		return IC_E_FAIL;
	struct ic_fcopy_start *m = &w->m;
	uint32_t status = IC_E_FAIL;
	memcpy(m, body, sizeof(*m));
	if (ic_utf16_to_utf8((const uint8_t *)m->file_name, sizeof(m->file_name),
			     sizeof(m->file_name), w->name, sizeof(w->name)) >= 0 &&
	    ic_utf16_to_utf8((const uint8_t *)m->path_name, sizeof(m->path_name),
			     sizeof(m->path_name), w->path, sizeof(w->path)) >= 0)
		status = fcopy_status(ops->fcopy_start(ctx, w->path, w->name, m->copy_flags,
						       m->file_size));
	g->port->free(g->port->ctx, w, sizeof(*w));
	return status;
}

static uint32_t on_fcopy(struct ic_gsvc *v, uint8_t *body, uint32_t body_len)
{
	const struct ic_guest_ops *ops = &v->g->cfg.ops;
	void *ctx = ops->fcopy_ctx ? ops->fcopy_ctx : ops->ctx;
	struct ic_fcopy_hdr hdr;
	if (body_len < sizeof(hdr))
		return DROP;
	memcpy(&hdr, body, sizeof(hdr));
	switch (hdr.operation) {
	case IC_FCOPY_START:
		return fcopy_start(v->g, ctx, body, body_len);
	case IC_FCOPY_WRITE: {
		struct ic_fcopy_data *d = (struct ic_fcopy_data *)body;
		uint64_t offset;
		uint32_t size;
		if (body_len < offsetof(struct ic_fcopy_data, data) || !ops->fcopy_write)
			return IC_E_FAIL;
		memcpy(&offset, body + offsetof(struct ic_fcopy_data, offset), sizeof(offset));
		memcpy(&size, body + offsetof(struct ic_fcopy_data, size), sizeof(size));
		if (size > IC_FCOPY_DATA_FRAGMENT ||
		    size > body_len - offsetof(struct ic_fcopy_data, data))
			return IC_E_FAIL;
		int err = ops->fcopy_write(ctx, offset, d->data, size);
		if (!err)
			__atomic_add_fetch(&v->st.bytes_copied, size, __ATOMIC_RELAXED);
		return fcopy_status(err);
	}
	case IC_FCOPY_COMPLETE:
		return ops->fcopy_complete ? fcopy_status(ops->fcopy_complete(ctx)) : IC_E_FAIL;
	case IC_FCOPY_CANCEL:
		return ops->fcopy_cancel ? fcopy_status(ops->fcopy_cancel(ctx)) : IC_E_FAIL;
	default:
		return IC_E_FAIL;
	}
}

/* ---- The handler ---- */

uint32_t ic_guest_handle(struct ic_guest *g, enum ic_service svc, uint8_t *buf, uint32_t len,
			 uint32_t cap)
{
	if ((unsigned)svc >= IC_SERVICE_COUNT)
		return 0;
	struct ic_gsvc *v = &g->svc[svc];
	struct ic_msg_hdr h;
	if (len > cap || ic_msg_header(buf, len, &h)) {
		INC(v->st.bad);
		return 0;
	}
	if (h.icmsgtype == IC_MSGTYPE_NEGOTIATE) {
		uint32_t fw, msg;
		int answerable;
		int err = ic_negotiate_answer(buf, len, v->fw_list, v->n_fw, v->msg_list, v->n_msg,
					      &fw, &msg, &answerable);
		if (!err) {
			SET(v->st.fw_version, fw);
			SET(v->st.msg_version, msg);
			SET(v->st.negotiated, true);
		} else {
			INC(v->st.bad);
		}
		if (!answerable)
			return 0;
		ic_msg_make_response(buf, len, h.status);
		INC(v->st.messages);
		return len;
	}
	uint32_t status;
	uint8_t *body = buf + IC_MSG_HDR_SIZE;
	uint32_t body_len = len - (uint32_t)IC_MSG_HDR_SIZE;
	if (h.icmsgtype != ic_service_msgtype(svc) || !v->st.negotiated)
		status = IC_E_FAIL; /* Linux answers a wrong type HV_E_FAIL */
	else if (svc == IC_HEARTBEAT)
		status = on_heartbeat(v, body, body_len);
	else if (svc == IC_SHUTDOWN)
		status = on_shutdown(v, body, body_len);
	else if (svc == IC_TIMESYNC)
		status = on_timesync(v, body, body_len, v->st.msg_version);
	else if (svc == IC_KVP)
		status = on_kvp(v, body, body_len);
	else if (svc == IC_VSS)
		status = on_vss(v, body, body_len);
	else
		status = on_fcopy(v, body, body_len);
	if (status == DROP) { /* dropped: too short, or no answer wanted */
		INC(v->st.bad);
		return 0;
	}
	ic_msg_make_response(buf, len, status);
	INC(v->st.messages);
	return len;
}

/* ---- The drivers ---- */

static void on_packets(void *arg, struct vmbus_client_channel *ch)
{
	struct ic_gsvc *v = arg;
	struct vmbus_packet pkt;
	int err;
	while ((err = vmbus_client_channel_recv(ch, v->buf, sizeof(v->buf), &pkt)) != -EAGAIN) {
		if (err) {
			/* A corrupt ring (-EMSGSIZE cannot be: buf holds the
			 * whole ring): nothing more can be read from it. */
			INC(v->st.bad);
			return;
		}
		if (pkt.type != VMBUS_PKT_DATA_INBAND || pkt.data_len > IC_MAX_PACKET) {
			INC(v->st.bad);
			continue;
		}
		/* The payload moves to the front of buf to be answered in place. */
		uint32_t len = pkt.data_len;
		memmove(v->buf, pkt.data, len);
		uint32_t out = ic_guest_handle(v->g, v->id, v->buf, len, IC_MAX_PACKET);
		/* A full ring loses the answer (the host times the request
		 * out), as in Linux's util drivers; counted. */
		if (out && vmbus_client_channel_send_inband(ch, pkt.trans_id, 0, v->buf, out))
			INC(v->st.bad);
	}
}

/* The service's channel opened (the host then starts the negotiation). */
static int open_service(struct ic_gsvc *v, struct vmbus_client_channel *ch)
{
	SET(v->st.negotiated, false);
	v->ch = ch;
	int err = vmbus_client_channel_open(ch, IC_RING_BYTES, IC_RING_BYTES, NULL, 0, on_packets, v);
	if (err) {
		v->ch = NULL;
		return err;
	}
	SET(v->st.open, true);
	return 0;
}

static int ic_probe(void *ctx, struct vmbus_client_channel *ch)
{
	struct ic_gsvc *v = ctx;
	int err = open_service(v, ch);
	if (!err)
		INC(v->st.probes);
	return err;
}

static void ic_remove(void *ctx, struct vmbus_client_channel *ch)
{
	struct ic_gsvc *v = ctx;
	if (v->ch == ch) {
		vmbus_client_channel_close(ch);
		v->ch = NULL;
		SET(v->st.open, false);
		SET(v->st.negotiated, false);
	}
}

/* util_suspend: the channel closed, the service's state (the KVP pool
 * included) kept. Its negotiation runs again on the reopened channel, as
 * the host starts one on every open. */
static int ic_suspend(void *ctx, struct vmbus_client_channel *ch)
{
	struct ic_gsvc *v = ctx;
	if (v->ch != ch)
		return -EINVAL;
	vmbus_client_channel_close(ch);
	SET(v->st.open, false);
	SET(v->st.negotiated, false);
	return 0;
}

/* util_resume: the same channel object, maybe a new relid, opened again. */
static int ic_resume(void *ctx, struct vmbus_client_channel *ch)
{
	return open_service(ctx, ch);
}

void ic_guest_close(struct ic_guest *g, enum ic_service svc)
{
	struct ic_gsvc *v = &g->svc[svc];
	if (v->ch) {
		struct vmbus_client_channel *ch = v->ch;
		v->ch = NULL;
		SET(v->st.open, false);
		SET(v->st.negotiated, false);
		vmbus_client_channel_close(ch);
	}
}

/* The guest's preference list: Linux's, from the cap down. */
static uint32_t capped(const uint32_t *list, uint32_t count, uint32_t cap, uint32_t *out)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < count; i++)
		if (!cap || list[i] <= cap)
			out[n++] = list[i];
	return n;
}

int ic_guest_register(struct vmbus_client *c, const struct hv_port *port,
		      const struct ic_guest_config *cfg, struct ic_guest **out)
{
	if (!port || !port->alloc || !port->free)
		return -EINVAL;
	struct ic_guest *g = port->alloc(port->ctx, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->port = port;
	g->cfg = *cfg;
	if (!g->cfg.services)
		g->cfg.services = IC_ALL_SERVICES;
	g->store = ic_kvp_store_new(port);
	if (!g->store) {
		port->free(port->ctx, g, sizeof(*g));
		return -ENOMEM;
	}
	for (int i = 0; i < IC_SERVICE_COUNT; i++) {
		struct ic_gsvc *v = &g->svc[i];
		uint32_t count;
		const uint32_t *list = ic_service_versions((enum ic_service)i, &count);
		v->g = g;
		v->id = (enum ic_service)i;
		uint32_t nfw;
		const uint32_t *fw = ic_service_fw_versions((enum ic_service)i, &nfw);
		v->n_fw = capped(fw, nfw, cfg->max_fw_version, v->fw_list);
		v->n_msg = capped(list, count, cfg->max_version[i], v->msg_list);
		if (!(g->cfg.services & (1u << i)))
			continue;
		g->drv[i] = (struct vmbus_driver){
			.class_id = *ic_service_class(i),
			.name = ic_service_name(v->id),
			.probe = ic_probe,
			.remove = ic_remove,
			.suspend = ic_suspend,
			.resume = ic_resume,
			.ctx = v,
		};
		int err = c ? vmbus_client_register_driver(c, &g->drv[i]) : 0;
		if (err) {
			ic_guest_free(g);
			return err;
		}
	}
	*out = g;
	return 0;
}

void ic_guest_free(struct ic_guest *g)
{
	if (!g)
		return;
	ic_kvp_store_free(g->store);
	g->port->free(g->port->ctx, g, sizeof(*g));
}

void ic_guest_status(struct ic_guest *g, enum ic_service svc, struct ic_guest_status *out)
{
	memset(out, 0, sizeof(*out));
	if ((unsigned)svc >= IC_SERVICE_COUNT)
		return;
	struct ic_guest_status *s = &g->svc[svc].st;
	out->open = __atomic_load_n(&s->open, __ATOMIC_RELAXED);
	out->negotiated = __atomic_load_n(&s->negotiated, __ATOMIC_RELAXED);
	out->fw_version = __atomic_load_n(&s->fw_version, __ATOMIC_RELAXED);
	out->msg_version = __atomic_load_n(&s->msg_version, __ATOMIC_RELAXED);
	out->probes = __atomic_load_n(&s->probes, __ATOMIC_RELAXED);
	out->messages = __atomic_load_n(&s->messages, __ATOMIC_RELAXED);
	out->bad = __atomic_load_n(&s->bad, __ATOMIC_RELAXED);
	out->heartbeats = __atomic_load_n(&s->heartbeats, __ATOMIC_RELAXED);
	out->samples = __atomic_load_n(&s->samples, __ATOMIC_RELAXED);
	out->last_host_time = __atomic_load_n(&s->last_host_time, __ATOMIC_RELAXED);
	out->vss_ops = __atomic_load_n(&s->vss_ops, __ATOMIC_RELAXED);
	out->bytes_copied = __atomic_load_n(&s->bytes_copied, __ATOMIC_RELAXED);
}
