/* SPDX-License-Identifier: MIT */
/* QEMU's Hyper-V test device on host/hv; see hv_testdev.h. */
#include "hv_testdev.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_IDS 256 /* the command word has 8 bits for a connection id */

/* What gets logged once. */
enum testdev_complaint {
	BAD_OP,
	BAD_TARGET,
	NO_ROUTE,
	CONN_TAKEN,
	NO_CONN,
	ECHO_LOST,
	SIGNAL_LOST,
	COMPLAINTS,
};

struct testdev_conn {
	struct hv_testdev *dev;
	bool used;
	uint8_t id, vp, sint;
	/* A message connection's echo still in hv's queue (not yet in the
	 * slot) until hv_synic_taken reaches this; 0: none. */
	uint64_t echo_until;
};

struct hv_testdev {
	struct hv_testdev_config cfg;
	pthread_mutex_t lock; /* everything below */
	/* Routes are counted per (VP, SINT): QEMU keeps a list and lets the
	 * same one be created twice, each destroy removing one. */
	uint16_t routes[256][HV_SYNIC_SINT_COUNT];
	struct testdev_conn msg[CONN_IDS], evt[CONN_IDS];
	struct hv_testdev_stats stats;
	bool complained[COMPLAINTS];
};

struct hv_testdev_cmd hv_testdev_decode(uint32_t word)
{
	return (struct hv_testdev_cmd){.op = (uint8_t)(word >> 16), .vp = (uint8_t)(word >> 8),
				       .sint = (uint8_t)word, .conn_id = (uint8_t)(word >> 24)};
}

__attribute__((format(printf, 3, 4)))
static void complain(struct hv_testdev *d, enum testdev_complaint c, const char *fmt, ...)
{
	if (d->complained[c])
		return;
	d->complained[c] = true;
	va_list ap;
	va_start(ap, fmt);
	if (d->cfg.log) {
		d->cfg.log(d->cfg.log_ctx, fmt, ap);
	} else {
		fputs("hvkit: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

static void lock(struct hv_testdev *d)
{
	pthread_mutex_lock(&d->lock);
}

static void unlock(struct hv_testdev *d)
{
	pthread_mutex_unlock(&d->lock);
}

/* ---- Connection handlers: inside a hypercall, they take the lock ---- */

/* Whether the connection's last echo still waits for the slot. */
static bool echo_in_flight(const struct testdev_conn *c)
{
	return c->echo_until && hv_synic_taken(c->dev->cfg.hv, c->vp, c->sint) < c->echo_until;
}

/*
 * QEMU stages one message per SINT route (hyperv_post_msg): while it waits
 * for the slot, the next HvPostMessage is answered
 * HV_STATUS_INSUFFICIENT_BUFFERS and the guest retries after its EOM. The
 * same here, per connection: so the device holds at most one message per
 * connection (CONN_IDS) in the queue it shares with VMBus, whatever the
 * guest posts.
 */
static uint16_t echo_message_locked(struct testdev_conn *c, const struct hv_posted_message *msg)
{
	struct hv_testdev *d = c->dev;
	if (echo_in_flight(c)) {
		d->stats.busy++;
		return HV_STATUS_INSUFFICIENT_BUFFERS;
	}
	c->echo_until = 0;
	int err = hv_synic_post(d->cfg.hv, c->vp, c->sint, msg->message_type, msg->payload,
				msg->payload_size, 0);
	if (!err) {
		uint32_t queued = hv_synic_queued(d->cfg.hv, c->vp, c->sint);
		/* Not in the slot yet: it is the last of the queue. */
		if (queued)
			c->echo_until = hv_synic_taken(d->cfg.hv, c->vp, c->sint) + queued;
		d->stats.echoed++;
		return HV_STATUS_SUCCESS;
	}
	d->stats.lost++;
	complain(d, ECHO_LOST, "hyperv-testdev: connection %u: echo to VP %u SINT %u failed (%d; "
		 "logged once)", c->id, c->vp, c->sint, err);
	/* As QEMU's test device answers -EAGAIN and anything else. */
	return err == -EAGAIN ? HV_STATUS_INSUFFICIENT_BUFFERS : HV_STATUS_INVALID_HYPERCALL_INPUT;
}

static uint16_t echo_message(void *ctx, uint32_t vp, const struct hv_posted_message *msg)
{
	(void)vp;
	struct testdev_conn *c = ctx;
	lock(c->dev);
	uint16_t status = echo_message_locked(c, msg);
	unlock(c->dev);
	return status;
}

static uint16_t echo_event_locked(struct testdev_conn *c, uint16_t flag)
{
	struct hv_testdev *d = c->dev;
	/* KVM (kvm_hvcall_signal_event) and QEMU (hyperv_hcall_signal_event)
	 * have no use for the flag number and answer a non-zero one as an
	 * unknown port; the connection's own flag is set otherwise. */
	if (flag) {
		d->stats.bad_flag++;
		return HV_STATUS_INVALID_PORT_ID;
	}
	int err = hv_synic_signal(d->cfg.hv, c->vp, c->sint, c->id);
	if (!err) {
		d->stats.signalled++;
	} else {
		d->stats.lost++;
		complain(d, SIGNAL_LOST, "hyperv-testdev: connection %u: flag on VP %u SINT %u "
			 "not set (%d; logged once)", c->id, c->vp, c->sint, err);
	}
	/* The signal reached its connection; what the echo found is the
	 * guest's own page set-up. */
	return HV_STATUS_SUCCESS;
}

static uint16_t echo_event(void *ctx, uint32_t vp, uint16_t flag)
{
	(void)vp;
	struct testdev_conn *c = ctx;
	lock(c->dev);
	uint16_t status = echo_event_locked(c, flag);
	unlock(c->dev);
	return status;
}

/* ---- Commands, under the lock ---- */

static int conn_create(struct hv_testdev *d, struct testdev_conn *table, bool message,
		       const struct hv_testdev_cmd *c)
{
	struct testdev_conn *conn = &table[c->conn_id];
	if (conn->used) {
		complain(d, CONN_TAKEN, "hyperv-testdev: connection %u exists (logged once)",
			 c->conn_id);
		return -EEXIST;
	}
	*conn = (struct testdev_conn){d, true, c->conn_id, c->vp, c->sint};
	int err = message ? hv_connection_add_message(d->cfg.hv, c->conn_id, echo_message, conn)
			  : hv_connection_add_event(d->cfg.hv, c->conn_id, echo_event, conn);
	if (err) {
		conn->used = false;
		complain(d, CONN_TAKEN, "hyperv-testdev: connection id %u refused (%d; logged "
			 "once)", c->conn_id, err);
	}
	return err;
}

static int conn_destroy(struct hv_testdev *d, struct testdev_conn *table, uint8_t id)
{
	if (!table[id].used) {
		complain(d, NO_CONN, "hyperv-testdev: no connection %u (logged once)", id);
		return -ENOENT;
	}
	hv_connection_remove(d->cfg.hv, table == d->evt, id);
	table[id].used = false;
	return 0;
}

static int route_command(struct hv_testdev *d, const struct hv_testdev_cmd *c)
{
	uint16_t *count = &d->routes[c->vp][c->sint];
	if (c->op == HV_TESTDEV_SINT_ROUTE_CREATE) {
		if (*count == UINT16_MAX)
			return -ENOSPC;
		(*count)++;
		return 0;
	}
	if (!*count) {
		complain(d, NO_ROUTE, "hyperv-testdev: no route to VP %u SINT %u (logged once)",
			 c->vp, c->sint);
		return -ENOENT;
	}
	if (c->op == HV_TESTDEV_SINT_ROUTE_DESTROY) {
		(*count)--;
		return 0;
	}
	/* A masked SINT drops it, as KVM's SynIC does: a command done, not a
	 * bad one. */
	int err = hv_synic_assert(d->cfg.hv, c->vp, c->sint);
	if (err == -ENODEV) {
		d->stats.masked++;
		return 0;
	}
	return err;
}

static bool needs_target(uint8_t op)
{
	return op != HV_TESTDEV_MSG_CONN_DESTROY && op != HV_TESTDEV_EVT_CONN_DESTROY;
}

static int run_command(struct hv_testdev *d, const struct hv_testdev_cmd *c)
{
	if (c->op < HV_TESTDEV_SINT_ROUTE_CREATE || c->op > HV_TESTDEV_EVT_CONN_DESTROY) {
		complain(d, BAD_OP, "hyperv-testdev: unknown operation %u (logged once)", c->op);
		return -EINVAL;
	}
	if (needs_target(c->op) && (c->vp >= d->cfg.vp_count || c->sint >= HV_SYNIC_SINT_COUNT)) {
		complain(d, BAD_TARGET, "hyperv-testdev: no VP %u SINT %u (logged once)", c->vp,
			 c->sint);
		return -EINVAL;
	}
	switch (c->op) {
	case HV_TESTDEV_MSG_CONN_CREATE:
		return conn_create(d, d->msg, true, c);
	case HV_TESTDEV_MSG_CONN_DESTROY:
		return conn_destroy(d, d->msg, c->conn_id);
	case HV_TESTDEV_EVT_CONN_CREATE:
		return conn_create(d, d->evt, false, c);
	case HV_TESTDEV_EVT_CONN_DESTROY:
		return conn_destroy(d, d->evt, c->conn_id);
	default:
		return route_command(d, c);
	}
}

int hv_testdev_command(struct hv_testdev *d, uint32_t word)
{
	struct hv_testdev_cmd c = hv_testdev_decode(word);
	lock(d);
	d->stats.commands++;
	int err = run_command(d, &c);
	if (err)
		d->stats.rejected++;
	unlock(d);
	return err;
}

void hv_testdev_pio(void *dev, uint16_t offset, uint8_t size, bool write, uint32_t *value)
{
	if (!write) {
		*value = 0;
		return;
	}
	/* QEMU accepts only whole 32-bit writes to the port. */
	if (offset == 0 && size == 4)
		hv_testdev_command(dev, *value);
}

struct hv_testdev *hv_testdev_new(const struct hv_testdev_config *cfg)
{
	if (!cfg->hv || !cfg->vp_count || cfg->vp_count > 256) {
		errno = EINVAL;
		return NULL;
	}
	struct hv_testdev *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->cfg = *cfg;
	pthread_mutex_init(&d->lock, NULL);
	return d;
}

void hv_testdev_free(struct hv_testdev *d)
{
	if (!d)
		return;
	lock(d);
	for (int i = 0; i < CONN_IDS; i++) {
		if (d->msg[i].used)
			hv_connection_remove(d->cfg.hv, false, (uint32_t)i);
		if (d->evt[i].used)
			hv_connection_remove(d->cfg.hv, true, (uint32_t)i);
	}
	unlock(d);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

void hv_testdev_get_stats(struct hv_testdev *d, struct hv_testdev_stats *out)
{
	lock(d);
	*out = d->stats;
	unlock(d);
}
