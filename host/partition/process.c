/* SPDX-License-Identifier: MIT */
/*
 * The process partition, host side (see process.h and
 * docs/process-partition.md).
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "hvkit/proto/process.h"
#include "partition_common.h"
#include "process.h"
#include "process_internal.h"

extern char **environ;

/* The guest finds its control socket at this descriptor. */
#define GUEST_CONTROL_FD 3
/* Event connections that may get a fast path. */
#define MAX_FAST_EVENTS 256
/* Ancillary room for the fds a (misbehaving) guest might send us. */
#define MAX_STRAY_FDS 16

enum loop_source {
	SOURCE_KICK = 1,
	SOURCE_TIMER,
	SOURCE_CONTROL,
	SOURCE_FAST_EVENT, /* | index << 8 */
};

struct vp_channel {
	struct process_partition *pp;
	uint32_t index;
	int sock;       /* host end */
	int guest_sock; /* guest end, handed over in the HELLO reply */
	int irq_fd;
	pthread_t thread;
	bool running;
	/* Counted by this VP's thread alone (partition_count_own). */
	uint64_t requests, bad_requests;
};

struct fast_event {
	uint32_t connection_id;
	int fd;
};

struct process_partition {
	struct partition base; /* how the machine drives it (partition.h) */
	struct process_partition_config cfg;
	/* Fast events, failure and exit state, the device lock the owner
	 * takes (process_partition_lock). Never held to call hv, which locks
	 * itself; the request counters are atomics. */
	pthread_mutex_t lock;
	struct hv_partition *hv;
	struct guest_memory mem;
	uint8_t *ram;
	int ram_fd;
	struct hvkit_proc_irq_state *irq;
	size_t irq_size;
	int irq_fd;
	int control_sock, control_guest_sock;
	struct vp_channel vps[HVKIT_PROC_MAX_VPS];
	int epoll_fd, kick_fd, timer_fd;
	pthread_t loop;
	bool loop_running;
	bool hello_done;
	struct fast_event fast[MAX_FAST_EVENTS];
	uint32_t fast_count;
	pid_t pid;
	int pidfd;   /* readable once the guest process has ended */
	bool reaped;
	int exit_status;
	bool stopping;
	struct process_partition_stats stats;
};

/* The partition interface to it: no pause, resume, save or restore yet
 * (partition.h answers -ENOTSUP). */
PARTITION_OPS(process_partition, "process");

/* ------------------------------------------------------------------ */
/* Diagnostics and failure                                             */
/* ------------------------------------------------------------------ */

__attribute__((format(printf, 2, 0))) static void log_va(struct process_partition *pp,
							 const char *fmt, va_list ap)
{
	partition_log_va(pp->cfg.log, pp->cfg.log_ctx, fmt, ap);
}

__attribute__((format(printf, 2, 3))) static void log_line(struct process_partition *pp,
							  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_va(pp, fmt, ap);
	va_end(ap);
}

static void kick(struct process_partition *pp)
{
	eventfd_write(pp->kick_fd, 1);
}

/*
 * Ends the partition because the guest broke the protocol (or died): kill
 * it and wake every thread. Safe from any thread, without the lock held.
 */
__attribute__((format(printf, 2, 3))) static void partition_fail(struct process_partition *pp,
								const char *fmt, ...)
{
	va_list ap;
	bool first;

	pthread_mutex_lock(&pp->lock);
	first = !pp->stats.failed;
	if (first) {
		pp->stats.failed = true;
		va_start(ap, fmt);
		vsnprintf(pp->stats.failure, sizeof(pp->stats.failure), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&pp->lock);
	if (!first)
		return;
	log_line(pp, "process partition ended: %s", pp->stats.failure);
	if (pp->pid > 0)
		kill(pp->pid, SIGKILL);
	for (uint32_t i = 0; i < pp->cfg.vp_count; i++)
		shutdown(pp->vps[i].sock, SHUT_RDWR);
	shutdown(pp->control_sock, SHUT_RDWR);
	kick(pp);
}

static bool ending(struct process_partition *pp)
{
	pthread_mutex_lock(&pp->lock);
	bool e = pp->stopping || pp->stats.failed;
	pthread_mutex_unlock(&pp->lock);
	return e;
}

/* ------------------------------------------------------------------ */
/* What host/hv calls back                                             */
/* ------------------------------------------------------------------ */

/* Raises vector on VP vp (in range), from any thread and under any lock
 * (hv may hold a VP lock of its own): it takes none. */
static void raise_vector(struct process_partition *pp, uint32_t vp, uint8_t vector)
{
	/* Pending bit first, then the kick: the dispatcher that wakes must
	 * find the bit. */
	__atomic_fetch_or(&pp->irq[vp].pending[vector / 64], 1ull << (vector % 64),
			  __ATOMIC_SEQ_CST);
	eventfd_write(pp->vps[vp].irq_fd, 1);
	partition_count(&pp->stats.interrupts, 1);
}

static void hv_inject(void *ctx, uint32_t vp, uint8_t vector, bool auto_eoi)
{
	struct process_partition *pp = ctx;
	(void)auto_eoi; /* nothing to end: there is no APIC */

	if (vp < pp->cfg.vp_count)
		raise_vector(pp, vp, vector);
}

static void hv_timers_changed(void *ctx)
{
	kick(ctx);
}

static void hv_crash(void *ctx, uint32_t vp, const uint64_t params[5], const char *message,
		     uint32_t len)
{
	struct process_partition *pp = ctx;

	partition_log_crash(pp->cfg.log, pp->cfg.log_ctx, vp, params, message, len);
	if (pp->cfg.crash)
		pp->cfg.crash(pp->cfg.crash_ctx, vp, params, message, len);
}

__attribute__((format(printf, 2, 0))) static void hv_log(void *ctx, const char *fmt,
							 va_list ap)
{
	log_va(ctx, fmt, ap);
}

static const struct hv_host_ops hv_ops = {
	.inject = hv_inject,
	.timers_changed = hv_timers_changed,
	.crash = hv_crash,
	.log = hv_log,
};

/* ------------------------------------------------------------------ */
/* Time                                                                */
/* ------------------------------------------------------------------ */

uint64_t process_partition_calibrate_tsc(void)
{
	return partition_calibrate_tsc();
}

uint64_t process_partition_now(const struct process_partition *pp)
{
	/* Host and guest are processes on one machine: one TSC. */
	return hv_ref_time(pp->hv, __rdtsc());
}

/* Arms the timer fd for the next synthetic timer deadline. */
static void rearm_timers(struct process_partition *pp)
{
	uint64_t now = process_partition_now(pp);
	uint64_t next = hv_scan(pp->hv, now);
	partition_arm_timer(pp->timer_fd, now, next);
}

/* ------------------------------------------------------------------ */
/* Socket plumbing                                                     */
/* ------------------------------------------------------------------ */

/* Sends a reply, with fds if any. */
static int send_reply(int sock, const struct hvkit_proc_reply *reply, const int *fds,
		      uint32_t nfds)
{
	struct iovec iov = {(void *)reply, sizeof(*reply)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * HVKIT_PROC_HELLO_FDS(HVKIT_PROC_MAX_VPS))];
	} control;

	if (nfds) {
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	ssize_t n;
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*reply) ? 0 : -EPIPE;
}

/*
 * Receives one message of at most `size` bytes. Its length; 0 if the peer
 * closed; -EPROTO for anything that cannot be a request: longer than
 * `size`, or carrying fds (closed at once, so a guest cannot exhaust ours).
 */
static ssize_t recv_message(int sock, void *buf, size_t size)
{
	struct iovec iov = {buf, size};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MAX_STRAY_FDS)];
	} control;
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n;

	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	bool had_fds = false;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < count; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			close(fd);
		}
		had_fds = true;
	}
	if (had_fds || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		return -EPROTO;
	return n;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static void serve_cpuid(struct process_partition *pp, const struct hvkit_proc_request *req,
			struct hvkit_proc_reply *reply)
{
	uint32_t leaf = (uint32_t)req->args[0], subleaf = (uint32_t)req->args[1];
	uint32_t r[4] = {0};

	if (leaf >= HV_CPUID_VENDOR_AND_MAX && leaf <= 0x4FFFFFFFu) {
		/* Only Hyper-V lives here: the host's own hypervisor leaves
		 * (KVM's, say) must not show through. */
		hv_cpuid(pp->hv, leaf, r);
	} else {
		__cpuid_count(leaf, subleaf, r[0], r[1], r[2], r[3]);
		if (leaf == 1)
			r[2] |= HV_CPUID1_ECX_HYPERVISOR;
	}
	for (int i = 0; i < 4; i++)
		reply->values[i] = r[i];
}

static void serve_msr(struct process_partition *pp, uint32_t vp,
		      const struct hvkit_proc_request *req, struct hvkit_proc_reply *reply)
{
	uint32_t msr = (uint32_t)req->args[0];
	int err = -EINVAL;

	if (req->args[0] > UINT32_MAX || !hv_msr_is_synthetic(msr)) {
		reply->status = HVKIT_PROC_GP;
		return;
	}
	uint64_t now = process_partition_now(pp);
	if (req->op == HVKIT_PROC_RDMSR)
		err = hv_msr_read(pp->hv, vp, msr, now, &reply->values[0]);
	else
		err = hv_msr_write(pp->hv, vp, msr, req->args[1], now);
	if (err)
		reply->status = HVKIT_PROC_GP;
}

static void serve_hypercall(struct process_partition *pp, uint32_t vp,
			    const struct hvkit_proc_request *req, struct hvkit_proc_reply *reply)
{
	struct hv_hypercall hc = {req->args[0], req->args[1], req->args[2]};

	reply->values[0] = hv_hypercall(pp->hv, vp, &hc, process_partition_now(pp));
}

/* The fast-path eventfd of an event connection, made on first request.
 * Called with the lock held. -1 if the connection has no event handler. */
static int fast_event_fd(struct process_partition *pp, uint32_t connection_id)
{
	hv_event_handler fn;
	void *ctx;

	if (!hv_connection_find_event(pp->hv, connection_id, &fn, &ctx))
		return -1;
	for (uint32_t i = 0; i < pp->fast_count; i++)
		if (pp->fast[i].connection_id == connection_id)
			return pp->fast[i].fd;
	if (pp->fast_count == MAX_FAST_EVENTS)
		return -1; /* the hypercall path still works */
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -1;
	struct epoll_event ev = {.events = EPOLLIN,
				 .data.u64 = SOURCE_FAST_EVENT | (uint64_t)pp->fast_count << 8};
	if (epoll_ctl(pp->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		return -1;
	}
	pp->fast[pp->fast_count++] = (struct fast_event){connection_id, fd};
	return fd;
}

int process_partition_handle(struct process_partition *pp, uint32_t vp, const void *msg,
			     size_t len, struct hvkit_proc_reply *reply, int *fd)
{
	struct hvkit_proc_request req;

	*fd = -1;
	if (vp >= pp->cfg.vp_count || len != sizeof(req))
		return -EPROTO;
	memcpy(&req, msg, sizeof(req));
	if (req.magic != HVKIT_PROC_MAGIC || req.vp != vp || req.reserved != 0)
		return -EPROTO;
	*reply = (struct hvkit_proc_reply){.magic = HVKIT_PROC_MAGIC, .op = req.op, .seq = req.seq};
	switch (req.op) {
	case HVKIT_PROC_CPUID:
		serve_cpuid(pp, &req, reply);
		break;
	case HVKIT_PROC_RDMSR:
	case HVKIT_PROC_WRMSR:
		serve_msr(pp, vp, &req, reply);
		break;
	case HVKIT_PROC_HYPERCALL:
		serve_hypercall(pp, vp, &req, reply);
		break;
	case HVKIT_PROC_EVENT_FD:
		pthread_mutex_lock(&pp->lock);
		*fd = req.args[0] <= HV_CONNECTION_ID_MASK ? fast_event_fd(pp, (uint32_t)req.args[0])
							   : -1;
		pthread_mutex_unlock(&pp->lock);
		if (*fd < 0)
			reply->status = HVKIT_PROC_NOENT;
		break;
	default:
		reply->status = HVKIT_PROC_BADREQ;
		partition_count_own(&pp->vps[vp].bad_requests);
		break;
	}
	partition_count_own(&pp->vps[vp].requests);
	return 0;
}

/* Serves one VP's socket until the guest goes or breaks the protocol. */
static void *vp_thread(void *arg)
{
	struct vp_channel *ch = arg;
	struct process_partition *pp = ch->pp;

	for (;;) {
		/* One byte more than a request, to see an oversized one. */
		uint8_t msg[sizeof(struct hvkit_proc_request) + 1];
		struct hvkit_proc_reply reply;
		int fd;
		ssize_t len = recv_message(ch->sock, msg, sizeof(msg));
		if (len == 0)
			break; /* the guest closed it, or we are stopping */
		if (len < 0 ||
		    process_partition_handle(pp, ch->index, msg, (size_t)len, &reply, &fd) < 0) {
			partition_fail(pp, "malformed request on VP %u", ch->index);
			break;
		}
		if (send_reply(ch->sock, &reply, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0) < 0)
			break;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The loop thread: HELLO, timers, fast events                         */
/* ------------------------------------------------------------------ */

static void serve_hello(struct process_partition *pp)
{
	struct hvkit_proc_request req;
	ssize_t got = recv_message(pp->control_sock, &req, sizeof(req));

	if (got == 0) {
		/* The guest closed its control socket: allowed once it has
		 * what it needs, a failure before. */
		epoll_ctl(pp->epoll_fd, EPOLL_CTL_DEL, pp->control_sock, NULL);
		if (!pp->hello_done)
			partition_fail(pp, "the guest closed its control socket before HELLO");
		return;
	}
	if (got != sizeof(req) || pp->hello_done || req.magic != HVKIT_PROC_MAGIC ||
	    req.op != HVKIT_PROC_HELLO || req.args[0] != HVKIT_PROC_VERSION) {
		partition_fail(pp, "bad HELLO on the control socket");
		return;
	}
	int fds[HVKIT_PROC_HELLO_FDS(HVKIT_PROC_MAX_VPS)];
	uint32_t n = 0;
	fds[n++] = pp->ram_fd;
	fds[n++] = pp->irq_fd;
	for (uint32_t i = 0; i < pp->cfg.vp_count; i++) {
		fds[n++] = pp->vps[i].guest_sock;
		fds[n++] = pp->vps[i].irq_fd;
	}
	struct hvkit_proc_reply reply = {
		.magic = HVKIT_PROC_MAGIC,
		.op = HVKIT_PROC_HELLO,
		.seq = req.seq,
		.values = {HVKIT_PROC_VERSION, pp->cfg.vp_count, pp->cfg.memory_size, 0},
	};
	/* Done before the answer leaves: a guest that got it may exit at
	 * once, and process_partition_wait (woken by its pidfd) must not
	 * take it for one that never said HELLO. */
	pthread_mutex_lock(&pp->lock);
	pp->hello_done = true;
	pthread_mutex_unlock(&pp->lock);
	if (send_reply(pp->control_sock, &reply, fds, n) < 0) {
		partition_fail(pp, "cannot answer HELLO");
		return;
	}
	/* The guest holds its ends now. */
	for (uint32_t i = 0; i < pp->cfg.vp_count; i++) {
		close(pp->vps[i].guest_sock);
		pp->vps[i].guest_sock = -1;
	}
}

static void serve_fast_event(struct process_partition *pp, uint32_t index)
{
	uint64_t count;
	hv_event_handler fn;
	void *ctx;

	pthread_mutex_lock(&pp->lock);
	struct fast_event ev = pp->fast[index];
	pthread_mutex_unlock(&pp->lock);
	if (eventfd_read(ev.fd, &count) < 0)
		return;
	/* The connection may have gone since the guest got the fd: then the
	 * signal is dropped, as KVM drops an ioeventfd write nobody hears. */
	if (hv_connection_find_event(pp->hv, ev.connection_id, &fn, &ctx))
		fn(ctx, 0, 0);
	partition_count(&pp->stats.fast_events, 1);
}

static void *loop_thread(void *arg)
{
	struct process_partition *pp = arg;
	struct epoll_event events[16];

	while (!ending(pp)) {
		int n = epoll_wait(pp->epoll_fd, events, 16, -1);
		if (n < 0 && errno != EINTR)
			break;
		bool timers = false;
		for (int i = 0; i < n; i++) {
			uint64_t tag = events[i].data.u64, count;
			switch (tag & 0xFF) {
			case SOURCE_KICK:
				eventfd_read(pp->kick_fd, &count);
				timers = true;
				break;
			case SOURCE_TIMER:
				if (read(pp->timer_fd, &count, sizeof(count)) < 0)
					count = 0;
				timers = true;
				break;
			case SOURCE_CONTROL:
				serve_hello(pp);
				break;
			case SOURCE_FAST_EVENT:
				serve_fast_event(pp, (uint32_t)(tag >> 8));
				break;
			}
		}
		if (timers)
			rearm_timers(pp);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Set-up and tear-down                                                */
/* ------------------------------------------------------------------ */

static int epoll_add(int epoll_fd, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int make_channels(struct process_partition *pp)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pp->control_sock = sv[0];
	pp->control_guest_sock = sv[1];
	for (uint32_t i = 0; i < pp->cfg.vp_count; i++) {
		struct vp_channel *ch = &pp->vps[i];
		ch->pp = pp;
		ch->index = i;
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
			return -errno;
		ch->sock = sv[0];
		ch->guest_sock = sv[1];
		ch->irq_fd = eventfd(0, EFD_CLOEXEC);
		if (ch->irq_fd < 0)
			return -errno;
	}
	pp->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	pp->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pp->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (pp->epoll_fd < 0 || pp->kick_fd < 0 || pp->timer_fd < 0)
		return -errno;
	int err = epoll_add(pp->epoll_fd, pp->kick_fd, SOURCE_KICK);
	if (!err)
		err = epoll_add(pp->epoll_fd, pp->timer_fd, SOURCE_TIMER);
	if (!err)
		err = epoll_add(pp->epoll_fd, pp->control_sock, SOURCE_CONTROL);
	return err;
}

static int make_hv(struct process_partition *pp)
{
	uint32_t features = pp->cfg.hv_features ? pp->cfg.hv_features : HV_OFFER_ALL;
	struct hv_config hc = {
		.vp_count = pp->cfg.vp_count,
		.tsc_hz = pp->cfg.tsc_hz ? pp->cfg.tsc_hz : process_partition_calibrate_tsc(),
		.tsc_at_start = __rdtsc(),
		/* There is no LAPIC here, so no APIC frequency to report. */
		.features = features & ~(uint32_t)HV_OFFER_FREQUENCY_MSRS,
		.deprecate_auto_eoi = true,
		/* No LAPIC, no in-service state: every vector is over once
		 * delivered, auto-EOI or not. */
		.auto_eoi_supported = true,
		/* The guest calls us over its socket, never through the
		 * hypercall page, so the page holds no code. */
	};
	int err = guest_memory_add_file(&pp->mem, 0, pp->cfg.memory_size, pp->ram, pp->ram_fd, 0);
	if (err)
		return err;
	pp->hv = hv_partition_new(&hc, &pp->mem, &hv_ops, pp);
	return pp->hv ? 0 : -errno;
}

static int spawn_guest(struct process_partition *pp)
{
	posix_spawn_file_actions_t fa;
	char fd_env[64];
	size_t nenv = 0;

	while (environ[nenv])
		nenv++;
	char **envp = calloc(nenv + 2, sizeof(*envp));
	if (!envp)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < nenv; i++)
		if (strncmp(environ[i], HVKIT_PROC_FD_ENV "=", strlen(HVKIT_PROC_FD_ENV) + 1))
			envp[k++] = environ[i];
	snprintf(fd_env, sizeof(fd_env), "%s=%d", HVKIT_PROC_FD_ENV, GUEST_CONTROL_FD);
	envp[k++] = fd_env;

	char *default_argv[] = {(char *)pp->cfg.guest_path, NULL};
	char *const *argv = pp->cfg.guest_argv ? pp->cfg.guest_argv : default_argv;
	posix_spawn_file_actions_init(&fa);
	/* dup2 clears close-on-exec on the copy: the one fd the guest gets. */
	posix_spawn_file_actions_adddup2(&fa, pp->control_guest_sock, GUEST_CONTROL_FD);
	int err = posix_spawn(&pp->pid, pp->cfg.guest_path, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	if (err) {
		pp->pid = 0;
		return -err;
	}
	close(pp->control_guest_sock);
	pp->control_guest_sock = -1;
	/* process_partition_wait polls this instead of waitpid in a loop. */
	pp->pidfd = pidfd_open(pp->pid, 0);
	return pp->pidfd < 0 ? -errno : 0;
}

static int start_threads(struct process_partition *pp)
{
	for (uint32_t i = 0; i < pp->cfg.vp_count; i++) {
		if (pthread_create(&pp->vps[i].thread, NULL, vp_thread, &pp->vps[i]))
			return -EAGAIN;
		pp->vps[i].running = true;
	}
	if (pthread_create(&pp->loop, NULL, loop_thread, pp))
		return -EAGAIN;
	pp->loop_running = true;
	return 0;
}

static struct process_partition *partition_alloc(const struct process_partition_config *cfg)
{
	struct process_partition *pp = calloc(1, sizeof(*pp));
	if (!pp)
		return NULL;
	pp->base.ops = &process_partition_ops;
	pp->cfg = *cfg;
	pthread_mutex_init(&pp->lock, NULL);
	pp->ram_fd = pp->irq_fd = pp->control_sock = pp->control_guest_sock = -1;
	pp->epoll_fd = pp->kick_fd = pp->timer_fd = pp->pidfd = -1;
	for (uint32_t i = 0; i < HVKIT_PROC_MAX_VPS; i++)
		pp->vps[i].sock = pp->vps[i].guest_sock = pp->vps[i].irq_fd = -1;
	return pp;
}

/* Everything but the threads and the guest. */
static int partition_build(const struct process_partition_config *cfg,
			   struct process_partition **out)
{
	if (cfg->vp_count == 0 || cfg->vp_count > HVKIT_PROC_MAX_VPS ||
	    cfg->memory_size < 2 * HV_PAGE_SIZE || cfg->memory_size % HV_PAGE_SIZE)
		return -EINVAL;
	struct process_partition *pp = partition_alloc(cfg);
	if (!pp)
		return -ENOMEM;

	void *irq_map = NULL, *ram_map = NULL;
	pp->irq_size = (cfg->vp_count * HVKIT_PROC_IRQ_STATE_SIZE + HV_PAGE_SIZE - 1) &
		       ~(size_t)(HV_PAGE_SIZE - 1);
	int err = partition_map_memfd("hvkit-guest-ram", cfg->memory_size, &pp->ram_fd, &ram_map);
	pp->ram = ram_map;
	if (!err)
		err = partition_map_memfd("hvkit-guest-irq", pp->irq_size, &pp->irq_fd, &irq_map);
	pp->irq = irq_map;
	if (!err)
		err = make_channels(pp);
	if (!err)
		err = make_hv(pp);
	if (err) {
		process_partition_stop(pp);
		return err;
	}
	*out = pp;
	return 0;
}

int process_partition_new(const struct process_partition_config *cfg,
			  struct process_partition **out)
{
	return partition_build(cfg, out);
}

int process_partition_launch(struct process_partition *pp)
{
	if (!pp->cfg.guest_path)
		return -EINVAL;
	int err = start_threads(pp);
	if (!err)
		err = spawn_guest(pp);
	if (err) {
		log_line(pp, "cannot start the guest %s: %s", pp->cfg.guest_path, strerror(-err));
		return err;
	}
	pthread_mutex_lock(&pp->lock);
	pp->stats.guest_pid = pp->pid;
	pthread_mutex_unlock(&pp->lock);
	return 0;
}

int process_partition_start(const struct process_partition_config *cfg,
			    struct process_partition **out)
{
	struct process_partition *pp;

	if (!cfg->guest_path)
		return -EINVAL;
	int err = partition_build(cfg, &pp);
	if (err)
		return err;
	err = cfg->prepare ? cfg->prepare(cfg->prepare_ctx, pp) : 0;
	if (!err)
		err = process_partition_launch(pp);
	if (err) {
		process_partition_stop(pp);
		return err;
	}
	*out = pp;
	return 0;
}

/*
 * The guest is gone: let the partition finish reacting to it, so that what
 * the caller reads next (stats, hv state) is final. Its VP threads drain
 * what it sent and see end-of-file; a guest that never said HELLO failed.
 */
static void settle_after_exit(struct process_partition *pp)
{
	pthread_mutex_lock(&pp->lock);
	bool hello = pp->hello_done;
	pthread_mutex_unlock(&pp->lock);
	if (!hello) {
		/* Its VP sockets never left us, so no thread would see it go. */
		partition_fail(pp, "the guest exited before HELLO");
		return;
	}
	for (uint32_t i = 0; i < pp->cfg.vp_count; i++) {
		if (pp->vps[i].running)
			pthread_join(pp->vps[i].thread, NULL);
		pp->vps[i].running = false;
	}
}

static int64_t monotonic_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int process_partition_wait(struct process_partition *pp, int timeout_ms, int *status)
{
	int64_t deadline = timeout_ms >= 0 ? monotonic_ms() + timeout_ms : INT64_MAX;
	while (!pp->reaped) {
		int64_t left = deadline == INT64_MAX ? -1 : deadline - monotonic_ms();
		if (deadline != INT64_MAX && left < 0)
			left = 0;
		struct pollfd p = {pp->pidfd, POLLIN, 0};
		int n = poll(&p, 1, (int)left);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0)
			continue;
		pid_t r = waitpid(pp->pid, &pp->exit_status, WNOHANG);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r == pp->pid) {
			pp->reaped = true;
			settle_after_exit(pp);
		}
	}
	*status = pp->exit_status;
	return 0;
}

int process_partition_end_fd(struct process_partition *pp)
{
	return pp->pidfd; /* a failure kills the guest: it ends too */
}

void process_partition_halt(struct process_partition *pp)
{
	pthread_mutex_lock(&pp->lock);
	pp->stopping = true;
	pthread_mutex_unlock(&pp->lock);

	if (pp->pid > 0 && !pp->reaped) {
		kill(pp->pid, SIGKILL);
		while (waitpid(pp->pid, &pp->exit_status, 0) < 0 && errno == EINTR)
			;
		pp->reaped = true;
	}
	for (uint32_t i = 0; i < pp->cfg.vp_count; i++)
		if (pp->vps[i].sock >= 0)
			shutdown(pp->vps[i].sock, SHUT_RDWR);
	if (pp->kick_fd >= 0)
		kick(pp);
	for (uint32_t i = 0; i < pp->cfg.vp_count; i++) {
		if (pp->vps[i].running)
			pthread_join(pp->vps[i].thread, NULL);
		pp->vps[i].running = false;
	}
	if (pp->loop_running)
		pthread_join(pp->loop, NULL);
	pp->loop_running = false;
}

void process_partition_stop(struct process_partition *pp)
{
	process_partition_halt(pp);

	for (uint32_t i = 0; i < pp->fast_count; i++)
		close(pp->fast[i].fd);
	for (uint32_t i = 0; i < HVKIT_PROC_MAX_VPS; i++) {
		partition_close_fd(&pp->vps[i].sock);
		partition_close_fd(&pp->vps[i].guest_sock);
		partition_close_fd(&pp->vps[i].irq_fd);
	}
	partition_close_fd(&pp->control_sock);
	partition_close_fd(&pp->control_guest_sock);
	partition_close_fd(&pp->pidfd);
	partition_close_fd(&pp->epoll_fd);
	partition_close_fd(&pp->kick_fd);
	partition_close_fd(&pp->timer_fd);
	partition_close_fd(&pp->ram_fd);
	partition_close_fd(&pp->irq_fd);
	if (pp->hv)
		hv_partition_free(pp->hv);
	if (pp->ram)
		munmap(pp->ram, pp->cfg.memory_size);
	if (pp->irq)
		munmap(pp->irq, pp->irq_size);
	pthread_mutex_destroy(&pp->lock);
	free(pp);
}

void process_partition_lock(struct process_partition *pp)
{
	pthread_mutex_lock(&pp->lock);
}

void process_partition_unlock(struct process_partition *pp)
{
	pthread_mutex_unlock(&pp->lock);
}

struct hv_partition *process_partition_hv(struct process_partition *pp)
{
	return pp->hv;
}

const struct guest_memory *process_partition_memory(const struct process_partition *pp)
{
	return &pp->mem;
}

struct partition *process_partition_base(struct process_partition *pp)
{
	return &pp->base;
}

void process_partition_kick(struct process_partition *pp)
{
	kick(pp);
}

int process_partition_interrupt(struct process_partition *pp, uint32_t vp, uint8_t vector)
{
	if (vp >= pp->cfg.vp_count)
		return -EINVAL;
	raise_vector(pp, vp, vector);
	return 0;
}

void process_partition_get_stats(struct process_partition *pp,
				 struct process_partition_stats *out)
{
	pthread_mutex_lock(&pp->lock);
	out->failed = pp->stats.failed;
	memcpy(out->failure, pp->stats.failure, sizeof(out->failure));
	out->guest_pid = pp->stats.guest_pid;
	pthread_mutex_unlock(&pp->lock);
	out->fast_events = partition_counted(&pp->stats.fast_events);
	out->interrupts = partition_counted(&pp->stats.interrupts);
	out->requests = out->bad_requests = 0;
	for (uint32_t i = 0; i < pp->cfg.vp_count; i++) {
		out->requests += partition_counted(&pp->vps[i].requests);
		out->bad_requests += partition_counted(&pp->vps[i].bad_requests);
	}
}
