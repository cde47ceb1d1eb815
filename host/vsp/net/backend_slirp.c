/* SPDX-License-Identifier: MIT */
/*
 * User-mode networking through libslirp (netvsp_backend.h). libslirp is
 * not thread-safe, so one thread owns the Slirp: it polls slirp's sockets
 * and an eventfd, feeds slirp the frames other threads queued, runs
 * slirp's timers, and delivers what slirp sends to the rx callback.
 *
 * Locks: `lock` guards only the outbound queue, the flags and the shared
 * copy of the counters; it is never held across a call out (rx, slirp), so
 * a caller holding the device lock may always queue a frame.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "frameq.h"
#include "netvsp_backend.h"

#define SLIRP_POLL_MAX 1024u
#define SLIRP_FRAME_MAX 65536u

struct slirp_timer {
	struct slirp_timer *next;
	int64_t expire_ms; /* -1: not armed */
	SlirpTimerId id;
	SlirpTimerCb cb; /* the old interface; NULL with the opaque one */
	void *cb_opaque;
};

struct netvsp_slirp {
	Slirp *slirp;
	netvsp_rx_fn rx;
	netvsp_rx_burst_fn rx_burst;
	void *ctx;
	struct backend_core c; /* woken for: frames queued, room back, stop */
	struct frameq out;     /* to the network, under c.lock */

	/* The thread's own. */
	struct frameq held; /* for the guest, waiting for room */
	struct frame_batch batch; /* for the guest, gathered during a round */
	struct slirp_timer *timers;
	struct pollfd pfd[SLIRP_POLL_MAX];
	uint32_t npfd;
	bool error_logged;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- slirp's callbacks (all on our thread) ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct netvsp_slirp *s = opaque;
	if (len > SLIRP_FRAME_MAX) {
		s->c.st.rx_dropped++;
		return (ssize_t)len;
	}
	frame_batch_add(&s->batch, buf, (uint32_t)len);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	struct netvsp_slirp *s = opaque;
	s->c.st.guest_errors++;
	if (!s->error_logged) {
		s->error_logged = true;
		fprintf(stderr, "hvkit: net user: frame from the guest refused: %s "
				"(logged once)\n", msg);
	}
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void *timer_add(struct netvsp_slirp *s, SlirpTimerId id, SlirpTimerCb cb, void *cb_opaque)
{
	struct slirp_timer *t = calloc(1, sizeof(*t));
	if (!t)
		abort(); /* libslirp has no failure path for this */
	t->expire_ms = -1;
	t->id = id;
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	t->next = s->timers;
	s->timers = t;
	return t;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	return timer_add(opaque, SLIRP_TIMER_NUM, cb, cb_opaque);
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	return timer_add(opaque, id, NULL, cb_opaque);
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct netvsp_slirp *s = opaque;
	for (struct slirp_timer **p = &s->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = ((struct slirp_timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

static void cb_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque; /* we poll what slirp_pollfds_fill names each round */
}

static void cb_notify(void *opaque)
{
	struct netvsp_slirp *s = opaque;
	backend_core_wake(&s->c);
}

static const SlirpCb slirp_cbs = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_poll_fd,
	.unregister_poll_fd = cb_poll_fd,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

/* ---- the thread ---- */

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct netvsp_slirp *s = opaque;
	if (s->npfd == SLIRP_POLL_MAX)
		return -1; /* slirp skips that socket this round */
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	s->pfd[s->npfd] = (struct pollfd){.fd = fd, .events = ev};
	return (int)s->npfd++;
}

static int cb_get_revents(int idx, void *opaque)
{
	struct netvsp_slirp *s = opaque;
	if (idx < 0 || (uint32_t)idx >= s->npfd)
		return 0;
	short r = s->pfd[idx].revents;
	int ev = 0;
	if (r & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (r & (POLLERR | POLLNVAL))
		ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

/* Runs expired timers; returns ms to the next one (capped by cap). */
static uint32_t run_timers(struct netvsp_slirp *s, uint32_t cap)
{
	int64_t now = now_ns() / 1000000;
	bool again;
	do { /* a callback may free or re-arm timers: restart the walk */
		again = false;
		for (struct slirp_timer *t = s->timers; t; t = t->next) {
			if (t->expire_ms < 0 || t->expire_ms > now)
				continue;
			t->expire_ms = -1;
			if (t->cb)
				t->cb(t->cb_opaque);
			else
				slirp_handle_timer(s->slirp, t->id, t->cb_opaque);
			again = true;
			break;
		}
	} while (again);
	uint32_t wait = cap;
	for (struct slirp_timer *t = s->timers; t; t = t->next)
		if (t->expire_ms >= 0 && (uint64_t)(t->expire_ms - now) < wait)
			wait = (uint32_t)(t->expire_ms - now);
	return wait;
}

/* Feeds slirp what other threads queued; false once asked to stop. */
static bool take_outbound(struct netvsp_slirp *s)
{
	for (;;) {
		pthread_mutex_lock(&s->c.lock);
		if (backend_core_publish_locked(&s->c)) {
			pthread_mutex_unlock(&s->c.lock);
			return false;
		}
		uint32_t len;
		const uint8_t *f = frameq_peek(&s->out, &len);
		uint8_t *copy = f ? malloc(len) : NULL;
		if (copy)
			memcpy(copy, f, len);
		if (f)
			frameq_pop(&s->out);
		pthread_mutex_unlock(&s->c.lock);
		if (!f)
			return true;
		if (copy)
			slirp_input(s->slirp, copy, (int)len); /* a bad frame is its guest_error */
		free(copy);
		/* Its answers (ACKs) at once: the guest's window waits on them. */
		frame_batch_flush(&s->batch);
	}
}

static void *slirp_thread(void *arg)
{
	struct netvsp_slirp *s = arg;
	for (;;) {
		if (!take_outbound(s))
			break;
		frameq_retry(&s->held, s->rx, s->rx_burst, s->ctx, &s->c.st);
		uint32_t timeout = run_timers(s, 1000);
		s->npfd = 0;
		cb_add_poll(s->c.wake, SLIRP_POLL_IN, s);
		slirp_pollfds_fill(s->slirp, &timeout, cb_add_poll, s);
		frame_batch_flush(&s->batch); /* the timers' */
		int n = poll(s->pfd, s->npfd, (int)timeout);
		if (n > 0 && (s->pfd[0].revents & POLLIN))
			backend_core_woken(&s->c);
		slirp_pollfds_poll(s->slirp, n < 0, cb_get_revents, s);
		/* What the sockets brought, together. */
		frame_batch_flush(&s->batch);
	}
	return NULL;
}

/* ---- the interface ---- */

static int parse_addr(const char *s, size_t n, struct in_addr *out)
{
	char buf[INET_ADDRSTRLEN];
	if (n == 0) {
		out->s_addr = 0;
		return 0;
	}
	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = 0;
	return inet_pton(AF_INET, buf, out) == 1 ? 0 : -EINVAL;
}

/* A port; 0 only where allow_zero (the host side: any free port). */
static int parse_port(const char *s, size_t n, bool allow_zero, uint16_t *out)
{
	unsigned v = 0;
	if (n == 0 || n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if ((v == 0 && !allow_zero) || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/* "ADDR:PORT" or "PORT" (or ":PORT"), n bytes of s. */
static int parse_endpoint(const char *s, size_t n, bool host, struct in_addr *addr,
			  uint16_t *port)
{
	const char *colon = memchr(s, ':', n);
	if (!colon) {
		addr->s_addr = 0;
		return parse_port(s, n, host, port);
	}
	size_t alen = (size_t)(colon - s);
	if (parse_addr(s, alen, addr))
		return -EINVAL;
	return parse_port(colon + 1, n - alen - 1, host, port);
}

int netvsp_hostfwd_parse(const char *s, struct netvsp_hostfwd *out)
{
	memset(out, 0, sizeof(*out));
	if (!strncmp(s, "tcp:", 4)) {
		s += 4;
	} else if (!strncmp(s, "udp:", 4)) {
		out->udp = true;
		s += 4;
	}
	const char *dash = strchr(s, '-');
	if (!dash)
		return -EINVAL;
	if (parse_endpoint(s, (size_t)(dash - s), true, &out->host_addr, &out->host_port))
		return -EINVAL;
	return parse_endpoint(dash + 1, strlen(dash + 1), false, &out->guest_addr, &out->guest_port);
}

static void addr(struct in_addr *a, const char *s)
{
	inet_pton(AF_INET, s, a);
}

struct netvsp_slirp *netvsp_slirp_new(const struct netvsp_slirp_opts *o, netvsp_rx_fn rx,
				      netvsp_rx_burst_fn rx_burst, void *ctx, char *why,
				      size_t len)
{
	struct netvsp_slirp *s = calloc(1, sizeof(*s));
	if (!s) {
		netvsp_sayf(why, len, "net user: out of memory");
		return NULL;
	}
	s->rx = rx;
	s->rx_burst = rx_burst;
	s->ctx = ctx;
	int err = backend_core_init(&s->c);
	if (err) {
		netvsp_sayf(why, len, "net user: eventfd: %s", strerror(-err));
		goto fail;
	}
	if (frame_batch_init(&s->batch, SLIRP_FRAME_MAX, &s->held, rx, rx_burst, ctx,
			     &s->c.st)) {
		netvsp_sayf(why, len, "net user: out of memory");
		goto fail;
	}
	SlirpConfig cfg = {
		.version = 4,
		.restricted = o->restrict_,
		.in_enabled = true,
		.vhostname = "hvkit",
		.if_mtu = o->mtu ? o->mtu : 1500,
		.if_mru = o->mtu ? o->mtu : 1500,
	};
	addr(&cfg.vnetwork, "10.0.2.0");
	addr(&cfg.vnetmask, "255.255.255.0");
	addr(&cfg.vhost, "10.0.2.2");
	addr(&cfg.vdhcp_start, "10.0.2.15");
	addr(&cfg.vnameserver, "10.0.2.3");
	s->slirp = slirp_new(&cfg, &slirp_cbs, s);
	if (!s->slirp) {
		netvsp_sayf(why, len, "net user: libslirp refused the configuration");
		goto fail;
	}
	for (uint32_t i = 0; i < o->nfwd && i < NETVSP_HOSTFWD_MAX; i++) {
		const struct netvsp_hostfwd *f = &o->fwd[i];
		struct in_addr guest = f->guest_addr;
		if (!guest.s_addr)
			guest = cfg.vdhcp_start;
		if (slirp_add_hostfwd(s->slirp, f->udp, f->host_addr, f->host_port, guest,
				      f->guest_port) < 0) {
			netvsp_sayf(why, len, "net user: hostfwd %s port %u: cannot listen there (in use?)",
			    f->udp ? "udp" : "tcp", f->host_port);
			goto fail;
		}
	}
	err = backend_core_start(&s->c, slirp_thread, s);
	if (err) {
		netvsp_sayf(why, len, "net user: thread: %s", strerror(-err));
		goto fail;
	}
	return s;
fail:
	netvsp_slirp_free(s);
	return NULL;
}

int netvsp_slirp_send(struct netvsp_slirp *s, const uint8_t *frame, uint32_t len)
{
	pthread_mutex_lock(&s->c.lock);
	int err = s->c.stop ? -ESHUTDOWN
		: len > SLIRP_FRAME_MAX ? -EMSGSIZE
		: frameq_push(&s->out, frame, len);
	backend_core_count_tx_locked(&s->c, err, len);
	bool first = s->out.count == 1;
	pthread_mutex_unlock(&s->c.lock);
	if (!err && first)
		backend_core_wake(&s->c);
	return err;
}

void netvsp_slirp_kick(struct netvsp_slirp *s)
{
	backend_core_wake(&s->c);
}

void netvsp_slirp_stop(struct netvsp_slirp *s)
{
	if (s)
		backend_core_stop(&s->c);
}

void netvsp_slirp_free(struct netvsp_slirp *s)
{
	if (!s)
		return;
	backend_core_stop(&s->c);
	if (s->slirp)
		slirp_cleanup(s->slirp); /* frees its timers through cb_timer_free */
	while (s->timers)
		cb_timer_free(s->timers, s);
	frameq_free(&s->out);
	frameq_free(&s->held);
	frame_batch_free(&s->batch);
	backend_core_fini(&s->c);
	free(s);
}

void netvsp_slirp_get_stats(struct netvsp_slirp *s, struct netvsp_backend_stats *out)
{
	backend_core_get_stats(&s->c, out);
}
