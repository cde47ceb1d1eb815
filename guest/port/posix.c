/* SPDX-License-Identifier: MIT */
/*
 * The guest port for the process partition (posix.h): the client side of
 * include/hvkit/proto/process.h.
 *
 *  - cpuid/rdmsr/wrmsr/hypercall are one request and one reply on the
 *    current VP's socket, one at a time per VP (a mutex per VP).
 *  - A fast HvSignalEvent with flag 0 goes through the connection's eventfd
 *    when the host has one (EVENT_FD), like KVM's ioeventfd.
 *  - Interrupts: a dispatcher thread per VP waits on the VP's eventfd and
 *    runs the handlers of the vectors it takes from the shared interrupt
 *    state, highest first.
 *  - Guest memory is the host's memfd, mapped once; alloc_pages is a first
 *    fit page allocator over it; alloc (the library's own objects) is the
 *    process's heap.
 *
 * The host is not trusted: every reply is checked (hv_posix_check_reply)
 * before use, fds that should not have come are closed, and a broken or
 * lying host turns the port into "disconnected", where every call fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hvkit/proto/process.h"
#include "hvkit/tlfs.h"
#include "posix.h"
#include "posix_reply.h"

#define VECTOR_COUNT 256
/* Room for the largest HELLO: HVKIT_PROC_HELLO_FDS(HVKIT_PROC_MAX_VPS). */
#define HELLO_MAX_FDS HVKIT_PROC_HELLO_FDS(HVKIT_PROC_MAX_VPS)
/* A reply may bring one fd; room for a few more to see (and close) extras. */
#define REPLY_MAX_FDS 4

struct hv_port_lock {
	pthread_mutex_t m;
};

/* An auto-reset event: a flag under a mutex, a condvar on CLOCK_MONOTONIC. */
struct hv_port_event {
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool set;
};

struct posix_handler {
	void (*fn)(void *arg);
	void *arg;
};

struct posix_vp {
	struct hv_posix *px;
	uint32_t index;
	int sock;
	int irq_fd;
	pthread_mutex_t lock; /* one outstanding request on sock */
	uint32_t seq;
	pthread_t thread;
	bool thread_started;
};

/* An event connection's eventfd, cached after EVENT_FD said OK. */
struct posix_event {
	uint32_t connection_id;
	int fd; /* -1: empty slot */
};

struct hv_posix {
	struct hv_port port;
	int control_fd;
	int stop_fd;
	uint32_t vp_count;
	uint8_t *mem;
	uint64_t mem_size;
	struct hvkit_proc_irq_state *irq;
	size_t irq_size;
	struct posix_vp vps[HVKIT_PROC_MAX_VPS];
	bool disconnected; /* atomic */

	pthread_mutex_t handler_lock;
	struct posix_handler handlers[VECTOR_COUNT];

	pthread_mutex_t alloc_lock;
	uint8_t *page_used; /* bitmap, one bit per guest page */
	uint64_t page_count;

	pthread_mutex_t event_lock;
	struct posix_event *events; /* open addressing, power-of-two size */
	uint32_t event_cap;
	uint32_t event_used;

	uint64_t stat_requests;     /* atomic */
	uint64_t stat_fast_signals; /* atomic */
	uint64_t stat_interrupts;   /* atomic */
	bool logged_unhandled;      /* atomic */
};

/* The VP the calling thread is bound to, for one partition at a time. */
static __thread struct hv_posix *tls_px;
static __thread uint32_t tls_vp;

static void px_log(struct hv_posix *px, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- validation (pure) ---- */

static bool status_known(uint16_t status)
{
	return status <= HVKIT_PROC_BADREQ;
}

int hv_posix_check_reply(const void *buf, size_t len, uint16_t op, uint32_t seq,
			 uint32_t nfds, struct hvkit_proc_reply *out)
{
	struct hvkit_proc_reply r;

	if (!buf || len != sizeof(r))
		return -EBADMSG;
	memcpy(&r, buf, sizeof(r));
	if (r.magic != HVKIT_PROC_MAGIC || r.op != op || r.seq != seq || !status_known(r.status))
		return -EBADMSG;
	if (op != HVKIT_PROC_HELLO) {
		uint32_t want = (op == HVKIT_PROC_EVENT_FD && r.status == HVKIT_PROC_OK) ? 1 : 0;
		if (nfds != want)
			return -EBADMSG;
	}
	if (out)
		*out = r;
	return 0;
}

int hv_posix_check_hello(const struct hvkit_proc_reply *r, uint32_t nfds,
			 struct hv_posix_hello *out)
{
	if (r->op != HVKIT_PROC_HELLO || r->status != HVKIT_PROC_OK)
		return -EBADMSG;
	if (r->values[0] != HVKIT_PROC_VERSION)
		return -EPROTONOSUPPORT;
	uint64_t vps = r->values[1], size = r->values[2];
	if (vps < 1 || vps > HVKIT_PROC_MAX_VPS)
		return -EBADMSG;
	if (size < 2ull * HV_PAGE_SIZE || size > HV_POSIX_MAX_MEMORY || (size & (HV_PAGE_SIZE - 1)))
		return -EBADMSG;
	if (nfds != HVKIT_PROC_HELLO_FDS((uint32_t)vps))
		return -EBADMSG;
	out->version = (uint32_t)r->values[0];
	out->vp_count = (uint32_t)vps;
	out->memory_size = size;
	return 0;
}

/* ---- small helpers ---- */

static void px_log(struct hv_posix *px, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	px->port.log(px->port.ctx, fmt, ap);
	va_end(ap);
}

static void close_fds(const int *fds, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static bool is_disconnected(const struct hv_posix *px)
{
	return __atomic_load_n(&px->disconnected, __ATOMIC_ACQUIRE);
}

static void mark_disconnected(struct hv_posix *px, const char *why)
{
	if (!__atomic_exchange_n(&px->disconnected, true, __ATOMIC_ACQ_REL))
		px_log(px, "disconnected from the host: %s\n", why);
}

static void stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/*
 * Receives one datagram and the fds that came with it (all SCM_RIGHTS
 * messages, CLOEXEC). Returns the byte count, 0 at EOF, -errno on error;
 * -EMSGSIZE if the fds did not fit (those that did are closed).
 */
static ssize_t recv_with_fds(int sock, void *buf, size_t len, int *fds, uint32_t max_fds,
			     uint32_t *nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * HELLO_MAX_FDS)];
	} control;
	struct iovec iov = {buf, len};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = CMSG_SPACE(sizeof(int) * max_fds),
	};
	ssize_t n;
	bool overflow = false;

	*nfds = 0;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *data = CMSG_DATA(c);
		for (size_t i = 0; i < count; i++) {
			int fd;
			memcpy(&fd, data + i * sizeof(int), sizeof(int));
			if (*nfds < max_fds)
				fds[(*nfds)++] = fd;
			else {
				close(fd);
				overflow = true;
			}
		}
	}
	if (overflow || (msg.msg_flags & MSG_CTRUNC)) {
		close_fds(fds, *nfds);
		*nfds = 0;
		return -EMSGSIZE;
	}
	if (msg.msg_flags & MSG_TRUNC)
		return (ssize_t)len + 1; /* longer than any reply: rejected */
	return n;
}

/* ---- requests ---- */

/*
 * One request and its reply on VP vp's socket. *fd_out (if given) receives
 * the fd an EVENT_FD reply brings, or -1. 0 with *out valid, or -EPIPE: the
 * host is gone or broke the protocol, and the port is now disconnected.
 */
static int vp_request(struct hv_posix *px, uint32_t vp_index, uint16_t op, uint64_t a0,
		      uint64_t a1, uint64_t a2, struct hvkit_proc_reply *out, int *fd_out)
{
	struct posix_vp *vp = &px->vps[vp_index];
	struct hvkit_proc_request req;
	uint8_t buf[sizeof(struct hvkit_proc_reply) + 16];
	int fds[REPLY_MAX_FDS];
	uint32_t nfds = 0;
	const char *why = NULL;
	ssize_t n;

	if (fd_out)
		*fd_out = -1;
	if (is_disconnected(px))
		return -EPIPE;

	pthread_mutex_lock(&vp->lock);
	memset(&req, 0, sizeof(req));
	req.magic = HVKIT_PROC_MAGIC;
	req.op = op;
	req.vp = vp_index;
	req.seq = ++vp->seq;
	req.args[0] = a0;
	req.args[1] = a1;
	req.args[2] = a2;

	do
		n = send(vp->sock, &req, sizeof(req), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(req)) {
		why = "request not sent";
		goto broken;
	}
	stat_add(&px->stat_requests, 1);

	n = recv_with_fds(vp->sock, buf, sizeof(buf), fds, REPLY_MAX_FDS, &nfds);
	if (n <= 0) {
		why = n == 0 ? "the host closed the VP socket" : "reply not received";
		goto broken;
	}
	if (hv_posix_check_reply(buf, (size_t)n, op, req.seq, nfds, out)) {
		why = "malformed reply";
		goto broken;
	}
	pthread_mutex_unlock(&vp->lock);
	if (nfds == 1 && fd_out)
		*fd_out = fds[0];
	else
		close_fds(fds, nfds);
	return 0;

broken:
	pthread_mutex_unlock(&vp->lock);
	close_fds(fds, nfds);
	mark_disconnected(px, why);
	return -EPIPE;
}

/* ---- port: CPU ---- */

static uint32_t port_current_vp(void *ctx)
{
	return tls_px == ctx ? tls_vp : 0;
}

static void port_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	struct hv_posix *px = ctx;
	struct hvkit_proc_reply r;

	memset(regs, 0, 4 * sizeof(uint32_t));
	if (vp_request(px, port_current_vp(ctx), HVKIT_PROC_CPUID, leaf, subleaf, 0, &r, NULL) ||
	    r.status != HVKIT_PROC_OK)
		return;
	for (int i = 0; i < 4; i++)
		regs[i] = (uint32_t)r.values[i];
}

static bool port_rdmsr(void *ctx, uint32_t msr, uint64_t *value)
{
	struct hv_posix *px = ctx;
	struct hvkit_proc_reply r;

	*value = 0;
	if (vp_request(px, port_current_vp(ctx), HVKIT_PROC_RDMSR, msr, 0, 0, &r, NULL) ||
	    r.status != HVKIT_PROC_OK)
		return false;
	*value = r.values[0];
	return true;
}

static bool port_wrmsr(void *ctx, uint32_t msr, uint64_t value)
{
	struct hv_posix *px = ctx;
	struct hvkit_proc_reply r;

	return vp_request(px, port_current_vp(ctx), HVKIT_PROC_WRMSR, msr, value, 0, &r, NULL) ==
		       0 &&
	       r.status == HVKIT_PROC_OK;
}

static uint64_t port_rdtsc(void *ctx)
{
	(void)ctx;
#if defined(__x86_64__) || defined(__i386__)
	/* The host shares the TSC; its TSC page is scaled for this counter. */
	return __builtin_ia32_rdtsc();
#else
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}

/* ---- fast events ---- */

static bool is_fast_signal(uint64_t control, uint64_t input)
{
	/* Exactly "HvSignalEvent, fast": no reps, no variable header, nothing
	 * reserved; and flag 0 with the reserved input bits clear. Anything
	 * else goes to the host, which judges it. */
	return control == (HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST) && (input >> 32) == 0;
}

static uint32_t event_hash(uint32_t id)
{
	return id * 2654435761u;
}

/* Called with event_lock held. */
static int event_lookup(const struct hv_posix *px, uint32_t id)
{
	if (!px->event_cap)
		return -1;
	uint32_t mask = px->event_cap - 1;
	for (uint32_t i = event_hash(id) & mask;; i = (i + 1) & mask) {
		if (px->events[i].fd < 0)
			return -1;
		if (px->events[i].connection_id == id)
			return px->events[i].fd;
	}
}

/* Called with event_lock held; false if out of memory. */
static bool event_insert(struct hv_posix *px, uint32_t id, int fd)
{
	if (2 * (px->event_used + 1) > px->event_cap) {
		uint32_t cap = px->event_cap ? 2 * px->event_cap : 16;
		struct posix_event *grown = malloc(cap * sizeof(*grown));
		if (!grown)
			return false;
		for (uint32_t i = 0; i < cap; i++)
			grown[i].fd = -1;
		for (uint32_t i = 0; i < px->event_cap; i++) {
			if (px->events[i].fd < 0)
				continue;
			uint32_t j = event_hash(px->events[i].connection_id) & (cap - 1);
			while (grown[j].fd >= 0)
				j = (j + 1) & (cap - 1);
			grown[j] = px->events[i];
		}
		free(px->events);
		px->events = grown;
		px->event_cap = cap;
	}
	uint32_t mask = px->event_cap - 1, i = event_hash(id) & mask;
	while (px->events[i].fd >= 0)
		i = (i + 1) & mask;
	px->events[i].connection_id = id;
	px->events[i].fd = fd;
	px->event_used++;
	return true;
}

/* The connection's eventfd, asking the host the first time; -1: none now. */
static int event_fd_for(struct hv_posix *px, uint32_t id)
{
	struct hvkit_proc_reply r;
	int fd, known;

	pthread_mutex_lock(&px->event_lock);
	fd = event_lookup(px, id);
	pthread_mutex_unlock(&px->event_lock);
	if (fd >= 0)
		return fd;

	/* NOENT is not remembered: the connection may appear later. */
	if (vp_request(px, port_current_vp(px), HVKIT_PROC_EVENT_FD, id, 0, 0, &r, &fd) ||
	    r.status != HVKIT_PROC_OK || fd < 0)
		return -1;

	pthread_mutex_lock(&px->event_lock);
	known = event_lookup(px, id);
	if (known < 0 && !event_insert(px, id, fd))
		known = -2;
	pthread_mutex_unlock(&px->event_lock);
	if (known == -1)
		return fd;
	close(fd); /* another VP got there first, or no memory to keep it */
	return known >= 0 ? known : -1;
}

static uint64_t port_hypercall(void *ctx, void *page, uint64_t control, uint64_t input,
			       uint64_t output)
{
	struct hv_posix *px = ctx;
	struct hvkit_proc_reply r;

	(void)page; /* the hypercall page is never executed here */
	if (is_disconnected(px))
		return HV_POSIX_STATUS_DISCONNECTED;

	if (is_fast_signal(control, input)) {
		int fd = event_fd_for(px, (uint32_t)input);
		if (fd >= 0) {
			uint64_t one = 1;
			ssize_t n;
			do
				n = write(fd, &one, sizeof(one));
			while (n < 0 && errno == EINTR);
			if (n == (ssize_t)sizeof(one)) {
				stat_add(&px->stat_fast_signals, 1);
				return HV_STATUS_SUCCESS;
			}
		}
	}

	if (vp_request(px, port_current_vp(ctx), HVKIT_PROC_HYPERCALL, control, input, output, &r,
		       NULL))
		return HV_POSIX_STATUS_DISCONNECTED;
	if (r.status != HVKIT_PROC_OK)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	return r.values[0];
}

/* ---- port: memory ---- */

static bool page_is_used(const struct hv_posix *px, uint64_t pfn)
{
	return px->page_used[pfn / 8] & (1u << (pfn % 8));
}

static void page_set(struct hv_posix *px, uint64_t pfn, bool used)
{
	if (used)
		px->page_used[pfn / 8] |= (uint8_t)(1u << (pfn % 8));
	else
		px->page_used[pfn / 8] &= (uint8_t)~(1u << (pfn % 8));
}

static void *port_alloc_pages(void *ctx, uint32_t count)
{
	struct hv_posix *px = ctx;
	uint64_t run = 0, start = 0;
	void *p = NULL;

	if (count == 0 || count >= px->page_count)
		return NULL;
	pthread_mutex_lock(&px->alloc_lock);
	/* First fit, from page 1: GPA 0 is never handed out. */
	for (uint64_t pfn = 1; pfn < px->page_count; pfn++) {
		if (page_is_used(px, pfn)) {
			run = 0;
			continue;
		}
		if (run++ == 0)
			start = pfn;
		if (run == count) {
			for (uint64_t i = start; i < start + count; i++)
				page_set(px, i, true);
			p = px->mem + start * HV_PAGE_SIZE;
			break;
		}
	}
	pthread_mutex_unlock(&px->alloc_lock);
	if (p)
		memset(p, 0, (size_t)count * HV_PAGE_SIZE);
	return p;
}

static void port_free_pages(void *ctx, void *pages, uint32_t count)
{
	struct hv_posix *px = ctx;
	uint8_t *p = pages;

	if (!p)
		return;
	if (p < px->mem || p >= px->mem + px->mem_size ||
	    ((uintptr_t)(p - px->mem) & (HV_PAGE_SIZE - 1))) {
		px_log(px, "free_pages: %p is not a guest page\n", pages);
		return;
	}
	uint64_t first = (uint64_t)(p - px->mem) / HV_PAGE_SIZE;
	pthread_mutex_lock(&px->alloc_lock);
	if (count == 0 || first == 0 || count > px->page_count - first) {
		pthread_mutex_unlock(&px->alloc_lock);
		px_log(px, "free_pages: bad range at page %llu\n", (unsigned long long)first);
		return;
	}
	for (uint64_t i = first; i < first + count; i++)
		page_set(px, i, false);
	pthread_mutex_unlock(&px->alloc_lock);
}

static uint64_t port_gpa_of(void *ctx, const void *p)
{
	struct hv_posix *px = ctx;
	const uint8_t *b = p;

	if (!b || b < px->mem || b >= px->mem + px->mem_size)
		return HV_GPA_INVALID;
	return (uint64_t)(b - px->mem);
}

/* ---- port: the library's own objects ---- */

/* The process's heap: the host never needs to see these. */
static void *port_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return calloc(1, size);
}

static void port_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)size;
	free(p);
}

/* ---- port: interrupts ---- */

static int port_set_vector_handler(void *ctx, uint8_t vector, void (*fn)(void *arg), void *arg)
{
	struct hv_posix *px = ctx;

	pthread_mutex_lock(&px->handler_lock);
	px->handlers[vector].fn = fn;
	px->handlers[vector].arg = fn ? arg : NULL;
	pthread_mutex_unlock(&px->handler_lock);
	return 0;
}

static void run_vector(struct hv_posix *px, uint32_t vector)
{
	struct posix_handler h;

	pthread_mutex_lock(&px->handler_lock);
	h = px->handlers[vector];
	pthread_mutex_unlock(&px->handler_lock);
	stat_add(&px->stat_interrupts, 1);
	if (h.fn)
		h.fn(h.arg);
	else if (!__atomic_exchange_n(&px->logged_unhandled, true, __ATOMIC_RELAXED))
		px_log(px, "vector %u raised with no handler (further ones not logged)\n", vector);
}

/* Takes every pending vector of the VP, then runs them, highest first. */
static void dispatch_pending(struct hv_posix *px, uint32_t vp)
{
	struct hvkit_proc_irq_state *st = &px->irq[vp];
	uint64_t words[4];

	for (int w = 3; w >= 0; w--) {
		words[w] = 0;
		if (__atomic_load_n(&st->pending[w], __ATOMIC_RELAXED))
			words[w] = __atomic_exchange_n(&st->pending[w], 0, __ATOMIC_ACQ_REL);
	}
	for (int w = 3; w >= 0; w--) {
		while (words[w]) {
			int bit = 63 - __builtin_clzll(words[w]);
			words[w] &= ~(1ull << bit);
			run_vector(px, (uint32_t)(w * 64 + bit));
		}
	}
}

static void *dispatcher(void *arg)
{
	struct posix_vp *vp = arg;
	struct hv_posix *px = vp->px;
	struct pollfd pfd[2] = {
		{.fd = vp->irq_fd, .events = POLLIN},
		{.fd = px->stop_fd, .events = POLLIN},
	};

	/* Handlers run with their VP current (port.h). */
	tls_px = px;
	tls_vp = vp->index;
	for (;;) {
		int n = poll(pfd, 2, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents & (POLLERR | POLLNVAL | POLLHUP)) {
			px_log(px, "VP %u: interrupt eventfd failed\n", vp->index);
			break;
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		uint64_t count;
		ssize_t got = read(vp->irq_fd, &count, sizeof(count));
		if (got != (ssize_t)sizeof(count)) {
			if (got < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			/* Not an eventfd after all: stop rather than spin. */
			px_log(px, "VP %u: interrupt eventfd unreadable\n", vp->index);
			break;
		}
		dispatch_pending(px, vp->index);
	}
	return NULL;
}

/* ---- port: locks, time, log ---- */

static struct hv_port_lock *port_lock_new(void *ctx)
{
	(void)ctx;
	struct hv_port_lock *l = malloc(sizeof(*l));
	if (l && pthread_mutex_init(&l->m, NULL) != 0) {
		free(l);
		return NULL;
	}
	return l;
}

static void port_lock_free(void *ctx, struct hv_port_lock *l)
{
	(void)ctx;
	if (!l)
		return;
	pthread_mutex_destroy(&l->m);
	free(l);
}

static void port_lock(void *ctx, struct hv_port_lock *l)
{
	(void)ctx;
	pthread_mutex_lock(&l->m);
}

static void port_unlock(void *ctx, struct hv_port_lock *l)
{
	(void)ctx;
	pthread_mutex_unlock(&l->m);
}

/* ---- port: events ---- */

static struct hv_port_event *port_event_new(void *ctx)
{
	pthread_condattr_t attr;
	struct hv_port_event *e;

	(void)ctx;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	if (pthread_condattr_init(&attr) != 0)
		goto free_event;
	/* Timeouts are intervals: a wall-clock step must not stretch them. */
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&e->cv, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		goto free_event;
	}
	pthread_condattr_destroy(&attr);
	if (pthread_mutex_init(&e->m, NULL) != 0) {
		pthread_cond_destroy(&e->cv);
		goto free_event;
	}
	return e;

free_event:
	free(e);
	return NULL;
}

static void port_event_free(void *ctx, struct hv_port_event *e)
{
	(void)ctx;
	if (!e)
		return;
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->m);
	free(e);
}

static void port_event_set(void *ctx, struct hv_port_event *e)
{
	(void)ctx;
	pthread_mutex_lock(&e->m);
	e->set = true;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->m);
}

/* The absolute CLOCK_MONOTONIC time timeout_ns from now; a timeout too
 * large to represent waits (practically) forever. */
static struct timespec deadline_after(uint64_t timeout_ns)
{
	/* About 68 years: far enough, and no time_t overflow. */
	const uint64_t max_ns = (uint64_t)INT32_MAX * 1000000000ull;
	struct timespec ts;

	if (timeout_ns > max_ns)
		timeout_ns = max_ns;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t nsec = (uint64_t)ts.tv_nsec + timeout_ns % 1000000000ull;
	ts.tv_sec += (time_t)(timeout_ns / 1000000000ull + nsec / 1000000000ull);
	ts.tv_nsec = (long)(nsec % 1000000000ull);
	return ts;
}

static int port_event_wait(void *ctx, struct hv_port_event *e, uint64_t timeout_ns)
{
	struct timespec deadline = deadline_after(timeout_ns);
	int err = 0;

	(void)ctx;
	pthread_mutex_lock(&e->m);
	while (!e->set && err != ETIMEDOUT)
		err = pthread_cond_timedwait(&e->cv, &e->m, &deadline);
	bool was_set = e->set;
	e->set = false;
	pthread_mutex_unlock(&e->m);
	return was_set ? 0 : -ETIMEDOUT;
}

static uint64_t port_monotonic_ns(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void port_log(void *ctx, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void port_log(void *ctx, const char *fmt, va_list ap)
{
	(void)ctx;
	flockfile(stderr);
	fputs("hvkit-guest: ", stderr);
	vfprintf(stderr, fmt, ap);
	funlockfile(stderr);
}

/* ---- connect ---- */

static struct hv_posix *px_new(int control_fd)
{
	struct hv_posix *px = calloc(1, sizeof(*px));
	if (!px)
		return NULL;
	px->control_fd = control_fd;
	px->stop_fd = -1;
	for (uint32_t i = 0; i < HVKIT_PROC_MAX_VPS; i++) {
		px->vps[i].px = px;
		px->vps[i].index = i;
		px->vps[i].sock = -1;
		px->vps[i].irq_fd = -1;
		pthread_mutex_init(&px->vps[i].lock, NULL);
	}
	pthread_mutex_init(&px->handler_lock, NULL);
	pthread_mutex_init(&px->alloc_lock, NULL);
	pthread_mutex_init(&px->event_lock, NULL);
	px->port = (struct hv_port){
		.ctx = px,
		.cpuid = port_cpuid,
		.rdmsr = port_rdmsr,
		.wrmsr = port_wrmsr,
		.rdtsc = port_rdtsc,
		.hypercall = port_hypercall,
		.current_vp = port_current_vp,
		.alloc_pages = port_alloc_pages,
		.free_pages = port_free_pages,
		.gpa_of = port_gpa_of,
		.alloc = port_alloc,
		.free = port_free,
		.set_vector_handler = port_set_vector_handler,
		.lock_new = port_lock_new,
		.lock_free = port_lock_free,
		.lock = port_lock,
		.unlock = port_unlock,
		.event_new = port_event_new,
		.event_free = port_event_free,
		.event_set = port_event_set,
		.event_wait = port_event_wait,
		.monotonic_ns = port_monotonic_ns,
		.log = port_log,
	};
	return px;
}

/* Everything but the control fd, which belongs to the caller until connect
 * succeeds. */
static void px_destroy(struct hv_posix *px)
{
	if (px->stop_fd >= 0) {
		uint64_t one = 1;
		if (write(px->stop_fd, &one, sizeof(one)) < 0)
			px_log(px, "cannot stop the dispatchers: %s\n", strerror(errno));
	}
	for (uint32_t i = 0; i < HVKIT_PROC_MAX_VPS; i++) {
		struct posix_vp *vp = &px->vps[i];
		if (vp->thread_started)
			pthread_join(vp->thread, NULL);
		if (vp->sock >= 0)
			close(vp->sock);
		if (vp->irq_fd >= 0)
			close(vp->irq_fd);
		pthread_mutex_destroy(&vp->lock);
	}
	if (px->stop_fd >= 0)
		close(px->stop_fd);
	for (uint32_t i = 0; i < px->event_cap; i++)
		if (px->events[i].fd >= 0)
			close(px->events[i].fd);
	free(px->events);
	if (px->mem)
		munmap(px->mem, px->mem_size);
	if (px->irq)
		munmap(px->irq, px->irq_size);
	free(px->page_used);
	pthread_mutex_destroy(&px->handler_lock);
	pthread_mutex_destroy(&px->alloc_lock);
	pthread_mutex_destroy(&px->event_lock);
	free(px);
}

static bool fd_is(int fd, mode_t type, off_t min_size)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != type)
		return false;
	return type != S_IFREG || st.st_size >= min_size;
}

/* HELLO on the control socket; *fds gets the reply's fds (closed on error). */
static int hello(int control_fd, struct hv_posix_hello *h, int *fds)
{
	struct hvkit_proc_request req;
	struct hvkit_proc_reply r;
	uint8_t buf[sizeof(r) + 16];
	uint32_t nfds = 0;
	ssize_t n;
	int err;

	memset(&req, 0, sizeof(req));
	req.magic = HVKIT_PROC_MAGIC;
	req.op = HVKIT_PROC_HELLO;
	req.vp = 0;
	req.seq = 1;
	req.args[0] = HVKIT_PROC_VERSION;
	do
		n = send(control_fd, &req, sizeof(req), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(req))
		return n < 0 ? -errno : -EIO;

	n = recv_with_fds(control_fd, buf, sizeof(buf), fds, HELLO_MAX_FDS, &nfds);
	if (n < 0)
		return (int)n == -EMSGSIZE ? -EBADMSG : (int)n;
	if (n == 0)
		return -ECONNRESET;
	err = hv_posix_check_reply(buf, (size_t)n, HVKIT_PROC_HELLO, req.seq, nfds, &r);
	if (!err)
		err = hv_posix_check_hello(&r, nfds, h);
	if (err) {
		close_fds(fds, nfds);
		return err;
	}
	return 0;
}

int hv_posix_connect(int control_fd, struct hv_posix **out)
{
	struct hv_posix_hello h;
	int fds[HELLO_MAX_FDS];
	struct hv_posix *px;
	int err;

	*out = NULL;
	err = hello(control_fd, &h, fds);
	if (err)
		return err;
	uint32_t nfds = HVKIT_PROC_HELLO_FDS(h.vp_count);

	px = px_new(control_fd);
	if (!px) {
		close_fds(fds, nfds);
		return -ENOMEM;
	}
	px->vp_count = h.vp_count;
	px->mem_size = h.memory_size;
	px->irq_size = (size_t)h.vp_count * HVKIT_PROC_IRQ_STATE_SIZE;
	for (uint32_t i = 0; i < h.vp_count; i++) {
		px->vps[i].sock = fds[2 + 2 * i];
		px->vps[i].irq_fd = fds[3 + 2 * i];
	}

	/* The fds must be what the protocol says they are. */
	err = -EBADMSG;
	if (!fd_is(fds[0], S_IFREG, (off_t)h.memory_size) ||
	    !fd_is(fds[1], S_IFREG, (off_t)px->irq_size))
		goto fail;
	for (uint32_t i = 0; i < h.vp_count; i++)
		if (!fd_is(px->vps[i].sock, S_IFSOCK, 0))
			goto fail;

	void *mem = mmap(NULL, h.memory_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	void *irq = mmap(NULL, px->irq_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (mem != MAP_FAILED)
		px->mem = mem;
	if (irq != MAP_FAILED)
		px->irq = irq;
	close(fds[0]);
	close(fds[1]);
	fds[0] = fds[1] = -1;
	err = -ENOMEM;
	if (!px->mem || !px->irq)
		goto fail;

	px->page_count = h.memory_size / HV_PAGE_SIZE;
	px->page_used = calloc((size_t)((px->page_count + 7) / 8), 1);
	px->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (!px->page_used || px->stop_fd < 0)
		goto fail;

	for (uint32_t i = 0; i < h.vp_count; i++) {
		err = -pthread_create(&px->vps[i].thread, NULL, dispatcher, &px->vps[i]);
		if (err)
			goto fail;
		px->vps[i].thread_started = true;
	}
	*out = px;
	return 0;

fail:
	close_fds(fds, 2);
	px_destroy(px); /* closes the VP fds it took over */
	return err;
}

int hv_posix_connect_env(struct hv_posix **out)
{
	const char *s = getenv(HVKIT_PROC_FD_ENV);
	char *end;
	long fd;

	*out = NULL;
	if (!s || !*s)
		return -ENOENT;
	errno = 0;
	fd = strtol(s, &end, 10);
	if (errno || *end || fd < 0 || fd > INT_MAX)
		return -EINVAL;
	return hv_posix_connect((int)fd, out);
}

void hv_posix_disconnect(struct hv_posix *px)
{
	if (!px)
		return;
	int control_fd = px->control_fd;
	px_destroy(px);
	close(control_fd);
}

const struct hv_port *hv_posix_port(struct hv_posix *px)
{
	return &px->port;
}

uint32_t hv_posix_vp_count(const struct hv_posix *px)
{
	return px->vp_count;
}

uint64_t hv_posix_memory_size(const struct hv_posix *px)
{
	return px->mem_size;
}

void hv_posix_bind_vp(struct hv_posix *px, uint32_t vp)
{
	if (vp >= px->vp_count) {
		px_log(px, "bind_vp: no VP %u (of %u)\n", vp, px->vp_count);
		return;
	}
	tls_px = px;
	tls_vp = vp;
}

void hv_posix_get_stats(const struct hv_posix *px, struct hv_posix_stats *out)
{
	out->requests = __atomic_load_n(&px->stat_requests, __ATOMIC_RELAXED);
	out->fast_signals = __atomic_load_n(&px->stat_fast_signals, __ATOMIC_RELAXED);
	out->interrupts = __atomic_load_n(&px->stat_interrupts, __ATOMIC_RELAXED);
}
