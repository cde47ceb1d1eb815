/* SPDX-License-Identifier: MIT */
/*
 * The IC devices on the host (see ic_host.h): one VMBus device per service,
 * a request queue per service with one request outstanding, negotiation on
 * open, and a timer for heartbeats, samples and timeouts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ic_host.h"
#include "ic_host_internal.h"
#include "record.h"
#include "vmbus_device.h"

#define DEFAULT_TIMEOUT_NS 10000000000ull

/* ---- Clocks and logs ---- */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ic_now(struct ic_host *h)
{
	return h->cfg.now_ns ? h->cfg.now_ns(h->cfg.ctx) : clock_ns(CLOCK_MONOTONIC);
}

uint64_t ic_wall_time(struct ic_host *h)
{
	if (h->cfg.wall_time)
		return h->cfg.wall_time(h->cfg.ctx);
	return clock_ns(CLOCK_REALTIME) / 100 + IC_WLTIMEDELTA;
}

__attribute__((format(printf, 2, 3))) void ic_log(struct ic_host *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (h->cfg.log) {
		h->cfg.log(h->cfg.ctx, fmt, ap);
	} else {
		fputs("hvkit: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/* Bad input from the guest: counted always, logged once per service. */
void ic_bad(struct ic_svc *v, const char *what)
{
	v->st.bad++;
	if (!v->logged_bad) {
		v->logged_bad = true;
		ic_log(v->h, "ic %s: %s (further ones counted, not logged)",
		       ic_service_name(v->id), what);
	}
}

/* The host's offer: the service's list from max_version down. */
static void offered_versions(struct ic_svc *v)
{
	uint32_t cap = v->h->cfg.max_version[v->id], count;
	const uint32_t *list = ic_service_versions(v->id, &count);
	v->fw_offered = ic_service_fw_versions(v->id, &v->n_fw_offered);
	v->n_offered = 0;
	for (uint32_t i = 0; i < count; i++)
		if (!cap || list[i] <= cap)
			v->offered[v->n_offered++] = list[i];
}

/* ---- Requests ---- */

/* timeout_ns: 0 for the default, IC_NO_TIMEOUT for none. */
struct ic_request *ic_request_new(uint8_t type, uint32_t body_len, uint64_t timeout_ns)
{
	struct ic_request *r = calloc(1, sizeof(*r) + body_len);
	if (!r)
		return NULL;
	r->type = type;
	r->body_len = body_len;
	r->timeout_ns = timeout_ns ? timeout_ns : DEFAULT_TIMEOUT_NS;
	return r;
}

/* Runs the request's callback (if any) and frees it. */
static void complete(struct ic_svc *v, struct ic_request *r, int err, uint32_t status,
		     struct ic_kvp_result *kvp)
{
	if (r->kvp_done) {
		struct ic_kvp_result local;
		if (!kvp) {
			memset(&local, 0, sizeof(local));
			kvp = &local;
		}
		kvp->err = err;
		kvp->status = status;
		kvp->pool = r->pool;
		kvp->index = r->index;
		r->kvp_done(r->arg, kvp);
	} else if (r->done) {
		r->done(r->arg, err, status);
	}
	(void)v;
	free(r);
}

/* The next request on the wire, if the channel is free for it. */
static void send_next(struct ic_svc *v)
{
	uint8_t pkt[IC_MAX_PACKET];
	while (v->ch && !v->outstanding && v->head && !v->broken) {
		struct ic_request *r = v->head;
		if (!v->negotiated && r->type != IC_MSGTYPE_NEGOTIATE)
			return;
		uint32_t len;
		if (r->type == IC_MSGTYPE_NEGOTIATE) {
			len = ic_negotiate_request(pkt, sizeof(pkt), v->fw_offered, v->n_fw_offered, v->offered,
						   v->n_offered, v->txid);
		} else {
			if (r->type == IC_MSGTYPE_TIMESYNC)
				ic_timesync_fill(v, r); /* the time as it leaves */
			len = ic_msg_request(pkt, sizeof(pkt), r->type, v->fw, v->msg, v->txid,
					     r->body_len);
			if (len)
				memcpy(pkt + IC_MSG_HDR_SIZE, r->body, r->body_len);
		}
		struct vmbus_ring_iov iov = {pkt, len};
		uint64_t trans = ++v->next_trans;
		int err = len ? vmbus_ring_put_inband(vmbus_channel_out(v->ch), trans, 0, &iov, 1,
						      NULL)
			      : -EINVAL;
		if (err == -EAGAIN)
			return; /* a 16 KiB ring full of answers: the tick retries */
		v->head = r->next;
		if (!v->head)
			v->tail = NULL;
		if (err) {
			if (err == -EBADMSG)
				v->broken = true;
			complete(v, r, -EIO, 0, NULL);
			continue;
		}
		v->txid++;
		v->outstanding = r;
		v->outstanding_trans = trans;
		v->st.requests++;
		if (vmbus_ring_publish(vmbus_channel_out(v->ch)))
			vmbus_channel_signal_locked(v->ch);
	}
}

int ic_submit(struct ic_svc *v, struct ic_request *r)
{
	if (!v->ch || (!v->negotiated && r->type != IC_MSGTYPE_NEGOTIATE)) {
		free(r);
		return -ENOTCONN;
	}
	r->deadline = r->timeout_ns == IC_NO_TIMEOUT ? UINT64_MAX : ic_now(v->h) + r->timeout_ns;
	if (r->front) {
		r->next = v->head;
		v->head = r;
		if (!v->tail)
			v->tail = r;
	} else {
		if (v->tail)
			v->tail->next = r;
		else
			v->head = r;
		v->tail = r;
	}
	send_next(v);
	return 0;
}

/* Everything pending completes with err (close, free). */
static void flush(struct ic_svc *v, int err)
{
	if (v->outstanding) {
		struct ic_request *r = v->outstanding;
		v->outstanding = NULL;
		complete(v, r, err, 0, NULL);
	}
	while (v->head) {
		struct ic_request *r = v->head;
		v->head = r->next;
		complete(v, r, err, 0, NULL);
	}
	v->tail = NULL;
}

/* ---- Answers ---- */

static void negotiated(struct ic_svc *v, const uint8_t *buf, uint32_t len)
{
	int err = ic_negotiate_result(buf, len, v->fw_offered, v->n_fw_offered, v->offered, v->n_offered, &v->fw,
				      &v->msg);
	if (err == -ENOTSUP) {
		ic_log(v->h, "ic %s: the guest supports none of the versions offered",
		       ic_service_name(v->id));
		return;
	}
	if (err) {
		ic_bad(v, "malformed negotiate answer");
		return;
	}
	v->negotiated = true;
	v->st.negotiated = true;
	v->st.fw_version = v->fw;
	v->st.msg_version = v->msg;
	ic_service_started(v);
}

static void answer(struct ic_svc *v, const struct vmbus_packet *pkt)
{
	struct ic_request *r = v->outstanding;
	if (pkt->type != VMBUS_PKT_DATA_INBAND || !r || pkt->trans_id != v->outstanding_trans) {
		ic_bad(v, "packet that answers no request");
		return;
	}
	v->outstanding = NULL;
	v->st.responses++;
	if (r->type == IC_MSGTYPE_NEGOTIATE) {
		negotiated(v, pkt->data, pkt->data_len);
		free(r);
		return;
	}
	struct ic_kvp_result *kvp = r->kvp_done ? calloc(1, sizeof(*kvp)) : NULL;
	struct ic_msg_hdr hdr;
	int err = ic_host_parse_answer(v->id, v->msg, pkt->data, pkt->data_len, r->seq, kvp);
	if (!err && kvp && kvp->op != r->op)
		err = -EPROTO; /* the guest answered another operation */
	if (err)
		ic_bad(v, "malformed answer");
	ic_msg_header(pkt->data, pkt->data_len, &hdr);
	if (!err)
		ic_service_answered(v, r, hdr.status);
	complete(v, r, err, err ? 0 : hdr.status, kvp);
	free(kvp);
}

/* ---- The device ---- */

static int svc_open(void *dev, struct vmbus_channel *ch,
		    const uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES])
{
	(void)user_data;
	struct ic_svc *v = dev;
	if (v->ch)
		return -EBUSY;
	v->ch = ch;
	v->broken = false;
	v->negotiated = false;
	v->txid = 0;
	v->st.open = true;
	v->st.opens++;
	/* The guest answers when it is ready, which may be much later: Linux
	 * answers KVP's negotiation only once its daemon, hv_kvp_daemon,
	 * runs. Until then the service waits; nothing else can go first. */
	struct ic_request *r = ic_request_new(IC_MSGTYPE_NEGOTIATE, 0, IC_NO_TIMEOUT);
	if (!r)
		return -ENOMEM;
	r->front = true;
	return ic_submit(v, r);
}

static void svc_close(void *dev, struct vmbus_channel *ch)
{
	struct ic_svc *v = dev;
	if (v->ch != ch)
		return;
	v->ch = NULL; /* first: what the flush's callbacks submit is refused */
	flush(v, v->h->stop ? -ECANCELED : -ENOTCONN);
	v->negotiated = false;
	v->st.open = false;
	ic_service_stopped(v);
}

/* Reads what the guest sent on service v's channel and answers it, with
 * the device lock held. */
static void svc_drain(struct ic_svc *v)
{
	struct vmbus_channel *ch = v->ch;
	struct vmbus_packet pkt;
	bool signal = false;

	if (!ch || v->broken)
		return;
	struct vmbus_ring_reader *rd = vmbus_channel_in(ch);
	vmbus_ring_reader_mask(rd);
	for (;;) {
		int err = vmbus_ring_peek(rd, v->buf, sizeof(v->buf), &pkt);
		if (err == -EAGAIN) {
			signal |= vmbus_ring_commit(rd);
			if (!vmbus_ring_reader_unmask(rd))
				break;
			vmbus_ring_reader_mask(rd);
			continue;
		}
		if (err == -EMSGSIZE) {
			/* Bigger than any IC answer: skip it. */
			ic_bad(v, "oversized packet");
			vmbus_ring_advance(rd);
			continue;
		}
		if (err) {
			ic_bad(v, "corrupt ring");
			v->broken = true;
			break;
		}
		/* The packet is in v->buf: give its ring space back before
		 * answering, since the answer may send the next request and
		 * the guest's reply to it needs that room (a file-copy step
		 * is half the ring). */
		vmbus_ring_advance(rd);
		if (vmbus_ring_commit(rd))
			vmbus_channel_signal_locked(ch);
		answer(v, &pkt);
		if (!v->ch)
			return; /* a callback closed it */
	}
	if (signal)
		vmbus_channel_signal_locked(ch);
	send_next(v);
}

/* The guest signalled: with the IC thread running, the service is marked
 * for it (answers may read a file to copy: not on a vCPU thread);
 * without (tests that step the host by hand), it is read at once. */
static void svc_notify(void *dev, struct vmbus_channel *ch)
{
	struct ic_svc *v = dev;
	struct ic_host *h = v->h;
	if (v->ch != ch)
		return;
	if (!h->thread_running) {
		svc_drain(v);
		return;
	}
	pthread_mutex_lock(&h->timer_lock);
	h->ready |= 1u << v->id;
	pthread_cond_signal(&h->timer_cond);
	pthread_mutex_unlock(&h->timer_lock);
}

/*
 * A service's channel state, for a snapshot (vmbus_device_ops.save):
 * u8 format (1), u8 negotiated, u8 broken, u8 txid, u32 framework and
 * message versions, u64 next transaction id and heartbeat sequence;
 * then the request on the wire, if any: u8 1, u8 type, u64 transaction
 * id, u64 heartbeat sequence, u32 KVP operation, pool and index (else
 * u8 0). What waits in the queue is not kept: its callers (control
 * requests) belong to the run that saved; the periodic requests come
 * again from the timer. A file copy under way cannot be saved (-EBUSY).
 */
#define SVC_STATE_FORMAT 1u

static int svc_save(void *dev, struct vmbus_channel *ch, void *buf, size_t *len)
{
	struct ic_svc *v = dev;
	if (v->ch != ch)
		return -EINVAL;
	if (v->copy.busy)
		return -EBUSY;
	struct record_writer w = {buf, *len, 0};
	record_put8(&w, SVC_STATE_FORMAT);
	record_put8(&w, v->negotiated);
	record_put8(&w, v->broken);
	record_put8(&w, v->txid);
	record_put32(&w, v->fw);
	record_put32(&w, v->msg);
	record_put64(&w, v->next_trans);
	record_put64(&w, v->hb_seq);
	const struct ic_request *r = v->outstanding;
	record_put8(&w, r != NULL);
	if (r) {
		record_put8(&w, r->type);
		record_put64(&w, v->outstanding_trans);
		record_put64(&w, r->seq);
		record_put32(&w, r->op);
		record_put32(&w, r->pool);
		record_put32(&w, r->index);
	}
	bool fits = w.len <= *len;
	*len = w.len;
	return fits ? 0 : -ENOSPC;
}

/* The request the guest has yet to answer, without a caller to tell. */
/* The request the guest has yet to answer, without a caller to tell;
 * its transaction id in *trans. */
static struct ic_request *read_outstanding(struct record_reader *rd, struct ic_svc *v,
					   uint64_t *trans)
{
	uint8_t type = record_get8(rd);
	*trans = record_get64(rd);
	/* A negotiation waits as long as the guest takes (svc_open). */
	struct ic_request *r =
		ic_request_new(type, 0, type == IC_MSGTYPE_NEGOTIATE ? IC_NO_TIMEOUT : 0);
	if (!r)
		return NULL;
	r->seq = record_get64(rd);
	r->op = record_get32(rd);
	r->pool = record_get32(rd);
	r->index = record_get32(rd);
	r->deadline = r->timeout_ns == IC_NO_TIMEOUT ? UINT64_MAX : ic_now(v->h) + r->timeout_ns;
	return r;
}

/* Checked whole before the service changes: a refused state leaves it as
 * it was (closed). */
static int svc_restore(void *dev, struct vmbus_channel *ch, const void *buf, size_t len)
{
	struct ic_svc *v = dev;
	struct record_reader rd = {buf, (const uint8_t *)buf + len, false};
	uint8_t format = record_get8(&rd), negotiated = record_get8(&rd),
		broken = record_get8(&rd), txid = record_get8(&rd);
	uint32_t fw = record_get32(&rd), msg = record_get32(&rd);
	uint64_t next_trans = record_get64(&rd), hb_seq = record_get64(&rd), trans = 0;
	uint8_t outstanding = record_get8(&rd);
	if (v->ch || rd.bad || format != SVC_STATE_FORMAT || negotiated > 1 || broken > 1 ||
	    outstanding > 1)
		return -EINVAL;
	struct ic_request *r = outstanding ? read_outstanding(&rd, v, &trans) : NULL;
	if (outstanding && !r)
		return -ENOMEM;
	if (!record_done(&rd) ||
	    (r && r->type != IC_MSGTYPE_NEGOTIATE && !negotiated)) {
		free(r);
		return -EINVAL;
	}
	/* Neither negotiated nor asking: the negotiation goes out again. */
	struct ic_request *n = NULL;
	if (!negotiated && !r) {
		n = ic_request_new(IC_MSGTYPE_NEGOTIATE, 0, IC_NO_TIMEOUT);
		if (!n)
			return -ENOMEM;
		n->front = true;
	}
	v->ch = ch;
	v->txid = txid;
	v->fw = fw;
	v->msg = msg;
	v->next_trans = next_trans;
	v->hb_seq = hb_seq;
	v->negotiated = negotiated;
	v->broken = broken;
	v->outstanding = r;
	v->outstanding_trans = trans;
	v->st.open = true;
	v->st.negotiated = negotiated;
	v->st.fw_version = fw;
	v->st.msg_version = msg;
	if (n)
		ic_submit(v, n);
	else if (negotiated)
		/* A heartbeat probe and a time sync (with the SYNC flag: the
		 * guest's clock stood still while saved) go out at once. */
		ic_service_started(v);
	return 0;
}

static const struct vmbus_device_ops svc_ops = {
	.open = svc_open,
	.close = svc_close,
	.notify = svc_notify,
	.save = svc_save,
	.restore = svc_restore,
};

/* ---- Timer ---- */

void ic_host_tick_locked(struct ic_host *h)
{
	uint64_t now = ic_now(h);
	for (int i = 0; i < IC_SERVICE_COUNT; i++) {
		struct ic_svc *v = &h->svc[i];
		if (!v->dev)
			continue;
		/* Expired requests (the one outstanding, then the queued, whose
		 * deadline runs from submission) leave first; their callbacks
		 * run after, so one that submits again finds the queue whole
		 * and nothing expired is sent. */
		struct ic_request *expired = NULL, **last = &expired;
		if (v->outstanding && now >= v->outstanding->deadline) {
			expired = v->outstanding;
			expired->next = NULL;
			last = &expired->next;
			v->outstanding = NULL; /* its late answer is stray */
			ic_service_timed_out(v, expired);
		}
		v->tail = NULL;
		for (struct ic_request **p = &v->head; *p;) {
			struct ic_request *r = *p;
			if (now < r->deadline) {
				v->tail = r;
				p = &r->next;
				continue;
			}
			*p = r->next;
			r->next = NULL;
			*last = r;
			last = &r->next;
		}
		while (expired) {
			struct ic_request *r = expired;
			expired = r->next;
			v->st.timeouts++;
			complete(v, r, -ETIMEDOUT, 0, NULL);
		}
		if (v->negotiated)
			ic_service_tick(v, now);
		send_next(v);
	}
}

/* Every tick, and at once when the guest signals a service: the
 * signalled services read, then the timer's work. */
static void *ic_thread(void *arg)
{
	struct ic_host *h = arg;
	pthread_mutex_lock(&h->timer_lock);
	while (!h->stop) {
		if (!h->ready) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t t = (uint64_t)ts.tv_nsec + h->tick_ns;
			ts.tv_sec += (time_t)(t / 1000000000ull);
			ts.tv_nsec = (long)(t % 1000000000ull);
			pthread_cond_timedwait(&h->timer_cond, &h->timer_lock, &ts);
		}
		if (h->stop)
			break;
		uint32_t ready = h->ready;
		h->ready = 0;
		pthread_mutex_unlock(&h->timer_lock);
		ic_host_lock(h);
		for (int i = 0; i < IC_SERVICE_COUNT; i++)
			if (ready & (1u << i))
				svc_drain(&h->svc[i]);
		ic_host_tick_locked(h);
		ic_host_unlock(h);
		pthread_mutex_lock(&h->timer_lock);
	}
	pthread_mutex_unlock(&h->timer_lock);
	return NULL;
}

/* ---- Set-up ---- */

void ic_host_lock(struct ic_host *h)
{
	if (h->cfg.lock)
		h->cfg.lock(h->cfg.ctx);
}

void ic_host_unlock(struct ic_host *h)
{
	if (h->cfg.unlock)
		h->cfg.unlock(h->cfg.ctx);
}

int ic_host_new(struct vmbus_server *s, const struct ic_host_config *cfg, struct ic_host **out)
{
	struct ic_host *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->cfg = *cfg;
	h->s = s;
	if (!h->cfg.services)
		h->cfg.services = IC_ALL_SERVICES;
	h->tick_ns = cfg->tick_ns ? cfg->tick_ns : 20000000ull;
	pthread_mutex_init(&h->timer_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->timer_cond, &ca);
	pthread_condattr_destroy(&ca);

	int err = 0;
	for (int i = 0; i < IC_SERVICE_COUNT && !err; i++) {
		struct ic_svc *v = &h->svc[i];
		v->h = h;
		v->id = (enum ic_service)i;
		if (!(h->cfg.services & (1u << i)))
			continue;
		offered_versions(v);
		if (!v->n_offered) {
			err = -EINVAL;
			break;
		}
		struct vmbus_device_desc desc = {
			.class_id = *ic_service_class(i),
			.instance_id = *ic_service_instance(i),
			.rescind_on_close = i == IC_KVP,
			.name = ic_service_name(v->id),
			.ops = &svc_ops,
			.dev = v,
		};
		err = vmbus_server_add_device(s, &desc, &v->dev);
		v->st.offered = !err;
	}
	if (!err && !cfg->no_timer_thread && cfg->lock) {
		/* Under the device lock: notify reads thread_running under it. */
		ic_host_lock(h);
		err = -pthread_create(&h->thread, NULL, ic_thread, h);
		h->thread_running = !err;
		ic_host_unlock(h);
	}
	if (err) {
		ic_host_free(h);
		return err;
	}
	*out = h;
	return 0;
}

void ic_host_free(struct ic_host *h)
{
	if (!h)
		return;
	if (h->thread_running) {
		pthread_mutex_lock(&h->timer_lock);
		h->stop = true;
		pthread_cond_signal(&h->timer_cond);
		pthread_mutex_unlock(&h->timer_lock);
		pthread_join(h->thread, NULL);
		ic_host_lock(h);
		h->thread_running = false; /* what is signalled now is read at once */
		ic_host_unlock(h);
	}
	h->stop = true; /* closes from here on cancel */
	for (int i = 0; i < IC_SERVICE_COUNT; i++)
		if (h->svc[i].dev)
			vmbus_server_remove_device(h->s, h->svc[i].dev); /* closes: -ENOTCONN */
	pthread_cond_destroy(&h->timer_cond);
	pthread_mutex_destroy(&h->timer_lock);
	free(h);
}

void ic_host_status(struct ic_host *h, enum ic_service svc, struct ic_service_status *out)
{
	memset(out, 0, sizeof(*out));
	if (svc < IC_SERVICE_COUNT)
		*out = h->svc[svc].st;
}

enum ic_heartbeat_state ic_heartbeat_state(struct ic_host *h)
{
	return h->svc[IC_HEARTBEAT].st.heartbeat;
}

struct ic_svc *ic_svc_of(struct ic_host *h, enum ic_service svc)
{
	return &h->svc[svc];
}
