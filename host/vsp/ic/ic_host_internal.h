/* SPDX-License-Identifier: MIT */
/* The IC host's insides, shared by its framework and its services. */
#ifndef HVKIT_IC_HOST_INTERNAL_H
#define HVKIT_IC_HOST_INTERNAL_H

#include <pthread.h>

#include "ic_host.h"
#include "ic_msg.h"
#include "vmbus_device.h"

/* A request that waits for its answer as long as the channel is open. */
#define IC_NO_TIMEOUT UINT64_MAX

struct ic_request {
	struct ic_request *next;
	uint8_t type;        /* IC_MSGTYPE_* */
	bool front;          /* goes before the queue (negotiation) */
	uint32_t op;         /* KVP operation */
	uint32_t pool, index;
	uint64_t seq;        /* heartbeat sequence sent */
	uint64_t timeout_ns, deadline;
	ic_done_fn done;
	ic_kvp_fn kvp_done;
	void *arg;
	uint32_t body_len;
	uint8_t body[];      /* what follows the IC header */
};

struct ic_svc {
	struct ic_host *h;
	enum ic_service id;
	struct vmbus_device *dev;
	struct vmbus_channel *ch; /* open channel, or NULL */
	uint32_t offered[8], n_offered;
	const uint32_t *fw_offered;
	uint32_t n_fw_offered;
	bool negotiated, broken, logged_bad;
	uint32_t fw, msg;
	uint8_t txid;
	uint64_t next_trans, outstanding_trans;
	struct ic_request *outstanding, *head, *tail;
	struct ic_service_status st;
	/* heartbeat */
	uint64_t hb_seq, hb_next, hb_since; /* since: last good answer or first probe */
	/* time sync */
	uint64_t ts_next;
	bool ts_synced;
	/* file copy: one job at a time */
	struct {
		bool busy;
		int fd;
		uint64_t offset, size;
		ic_done_fn done;
		void *arg;
		uint64_t timeout_ns;
		uint32_t failed_status;
	} copy;
	uint8_t buf[IC_MAX_PACKET];
};

struct ic_host {
	struct ic_host_config cfg;
	struct vmbus_server *s;
	struct ic_svc svc[IC_SERVICE_COUNT];
	uint64_t tick_ns;
	/* The IC thread: the timer, and the services the guest signalled
	 * (`ready`, a bit per enum ic_service), which it reads so that a
	 * vCPU's signal does no IC work. ready and stop are under
	 * timer_lock, taken inside the device lock, never around it. */
	pthread_t thread;
	bool thread_running, stop;
	uint32_t ready;
	pthread_mutex_t timer_lock;
	pthread_cond_t timer_cond;
};

uint64_t ic_now(struct ic_host *h);
uint64_t ic_wall_time(struct ic_host *h);
void ic_log(struct ic_host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ic_bad(struct ic_svc *v, const char *what);
struct ic_svc *ic_svc_of(struct ic_host *h, enum ic_service svc);

/* timeout_ns 0: the default. */
struct ic_request *ic_request_new(uint8_t type, uint32_t body_len, uint64_t timeout_ns);
/* Queues r (taking it) and sends it if the channel is free. -ENOTCONN if
 * the service is not open and negotiated (r freed). */
int ic_submit(struct ic_svc *v, struct ic_request *r);

/* Service hooks (ic_services.c). */
void ic_service_started(struct ic_svc *v);  /* negotiated */
void ic_service_stopped(struct ic_svc *v);  /* closed */
void ic_service_tick(struct ic_svc *v, uint64_t now);
void ic_service_answered(struct ic_svc *v, const struct ic_request *r, uint32_t status);
void ic_service_timed_out(struct ic_svc *v, const struct ic_request *r);
void ic_timesync_fill(struct ic_svc *v, struct ic_request *r);
void ic_fcopy_stopped(struct ic_svc *v);

#endif /* HVKIT_IC_HOST_INTERNAL_H */
