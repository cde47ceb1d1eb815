/* SPDX-License-Identifier: MIT */
/*
 * The posix port against a fake host in the same process: a thread per VP
 * socket answering the process partition protocol from tables, a memfd for
 * guest memory and one for the interrupt state, eventfds for interrupts and
 * for one fast event connection. Faults are injected into the host's next
 * reply or into its HELLO.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv_guest.h"
#include "hvkit/proto/process.h"
#include "hvkit/tlfs.h"
#include "hvkit/vmbus.h"
#include "posix.h"
#include "posix_reply.h"

#define HOST_VPS 2
#define HOST_MEM (64 * HV_PAGE_SIZE)
#define EVENT_CONN 7u   /* the host has an eventfd for it */
#define NOENT_CONN 9u   /* the host does not */
#define GP_MSR 0x1234u  /* #GP on any access */
#define MAX_MSRS 64

enum hello_fault {
	HELLO_GOOD,
	HELLO_BAD_MAGIC,
	HELLO_BAD_SEQ,
	HELLO_SHORT,
	HELLO_MISSING_FD,
	HELLO_EXTRA_FD,
	HELLO_NO_FDS,
	HELLO_BAD_VERSION,
	HELLO_ZERO_VPS,
	HELLO_TOO_MANY_VPS,
	HELLO_ODD_MEMORY,
	HELLO_SMALL_MEMFD,
	HELLO_STATUS,
	HELLO_NOT_A_SOCKET,
};

enum reply_fault {
	FAULT_NONE,
	FAULT_MAGIC,
	FAULT_SEQ,
	FAULT_OP,
	FAULT_SHORT,
	FAULT_LONG,
	FAULT_EXTRA_FD,
	FAULT_STATUS,
	FAULT_CLOSE,
};

struct host;

struct host_vp {
	struct host *h;
	uint32_t index;
	int sock;       /* host end */
	int guest_sock; /* guest end, until sent */
	int irq_ev;
	pthread_t thread;
	bool running;
	struct {
		uint32_t msr;
		uint64_t value;
	} msrs[MAX_MSRS];
	int nmsrs;
};

struct host {
	int ctl_guest, ctl_host;
	int memfd, irqfd;
	uint8_t *mem;
	struct hvkit_proc_irq_state *irq;
	int event_ev;
	struct host_vp vps[HOST_VPS];
	pthread_mutex_t lock;
	/* Under lock. */
	int ops[HOST_VPS][8];
	uint64_t last_hypercall[3];
	uint32_t last_hypercall_vp;
	int protocol_errors;
	/* Next reply's fault (atomic). */
	int fault;
};

/* ---- the fake host ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static int send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 200)];
	} control;
	struct iovec iov = {(void *)buf, len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > 0) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static uint64_t *host_msr(struct host_vp *vp, uint32_t msr)
{
	for (int i = 0; i < vp->nmsrs; i++)
		if (vp->msrs[i].msr == msr)
			return &vp->msrs[i].value;
	if (vp->nmsrs == MAX_MSRS)
		return NULL;
	vp->msrs[vp->nmsrs].msr = msr;
	vp->msrs[vp->nmsrs].value = 0;
	return &vp->msrs[vp->nmsrs++].value;
}

static void host_cpuid(uint32_t leaf, uint64_t v[4])
{
	memset(v, 0, 4 * sizeof(uint64_t));
	switch (leaf) {
	case 1:
		v[2] = HV_CPUID1_ECX_HYPERVISOR;
		break;
	case HV_CPUID_VENDOR_AND_MAX:
		v[0] = HV_CPUID_IMPLEMENTATION_LIMITS;
		v[1] = HV_CPUID_VENDOR_EBX;
		v[2] = HV_CPUID_VENDOR_ECX;
		v[3] = HV_CPUID_VENDOR_EDX;
		break;
	case HV_CPUID_FEATURES:
		v[0] = HV_FEAT_HYPERCALL_MSRS | HV_FEAT_VP_INDEX_MSR | HV_FEAT_SYNIC_MSRS |
		       HV_FEAT_TIME_REF_COUNT_MSR;
		break;
	case HV_CPUID_ENLIGHTENMENT_INFO:
		v[0] = HV_HINT_DEPRECATING_AEOI;
		break;
	case HV_CPUID_IMPLEMENTATION_LIMITS:
		v[0] = HOST_VPS;
		break;
	}
}

static void *host_vp_thread(void *arg)
{
	struct host_vp *vp = arg;
	struct host *h = vp->h;

	for (;;) {
		struct hvkit_proc_request req;
		struct hvkit_proc_reply r;
		int fd = -1, extra = -1;
		ssize_t n = recv(vp->sock, &req, sizeof(req), 0);

		if (n <= 0)
			break;
		if (n != sizeof(req) || req.magic != HVKIT_PROC_MAGIC || req.vp != vp->index ||
		    req.reserved != 0) {
			pthread_mutex_lock(&h->lock);
			h->protocol_errors++;
			pthread_mutex_unlock(&h->lock);
			break;
		}
		memset(&r, 0, sizeof(r));
		r.magic = HVKIT_PROC_MAGIC;
		r.op = req.op;
		r.seq = req.seq;
		r.status = HVKIT_PROC_OK;

		pthread_mutex_lock(&h->lock);
		if (req.op < 8)
			h->ops[vp->index][req.op]++;
		switch (req.op) {
		case HVKIT_PROC_CPUID:
			host_cpuid((uint32_t)req.args[0], r.values);
			break;
		case HVKIT_PROC_RDMSR:
			if (req.args[0] == GP_MSR)
				r.status = HVKIT_PROC_GP;
			else if (req.args[0] == HV_MSR_VP_INDEX)
				r.values[0] = vp->index;
			else if (req.args[0] == HV_MSR_TIME_REF_COUNT)
				r.values[0] = 12345;
			else
				r.values[0] = *host_msr(vp, (uint32_t)req.args[0]);
			break;
		case HVKIT_PROC_WRMSR:
			if (req.args[0] == GP_MSR || req.args[0] == HV_MSR_VP_INDEX)
				r.status = HVKIT_PROC_GP;
			else
				*host_msr(vp, (uint32_t)req.args[0]) = req.args[1];
			break;
		case HVKIT_PROC_HYPERCALL:
			memcpy(h->last_hypercall, req.args, sizeof(h->last_hypercall));
			h->last_hypercall_vp = vp->index;
			r.values[0] = HV_STATUS_SUCCESS;
			break;
		case HVKIT_PROC_EVENT_FD:
			if (req.args[0] == EVENT_CONN)
				fd = h->event_ev;
			else
				r.status = HVKIT_PROC_NOENT;
			break;
		default:
			r.status = HVKIT_PROC_BADREQ;
		}
		pthread_mutex_unlock(&h->lock);

		size_t len = sizeof(r);
		switch (__atomic_exchange_n(&h->fault, FAULT_NONE, __ATOMIC_SEQ_CST)) {
		case FAULT_MAGIC:
			r.magic ^= 0x100;
			break;
		case FAULT_SEQ:
			r.seq++;
			break;
		case FAULT_OP:
			r.op = HVKIT_PROC_WRMSR;
			break;
		case FAULT_SHORT:
			len = 40;
			break;
		case FAULT_LONG:
			len = sizeof(r) + 8;
			break;
		case FAULT_EXTRA_FD:
			extra = eventfd(0, EFD_CLOEXEC);
			fd = extra;
			break;
		case FAULT_STATUS:
			r.status = 77;
			break;
		case FAULT_CLOSE: {
			int sock = vp->sock;
			__atomic_store_n(&vp->sock, -1, __ATOMIC_SEQ_CST);
			close(sock);
			return NULL;
		}
		}
		uint8_t buf[sizeof(r) + 8] = {0};
		memcpy(buf, &r, sizeof(r));
		int rc = send_fds(vp->sock, buf, len, &fd, fd >= 0 ? 1 : 0);
		if (extra >= 0)
			close(extra);
		if (rc)
			break;
	}
	return NULL;
}

static struct host *host_new(void)
{
	struct host *h = calloc(1, sizeof(*h));
	int sv[2];

	assert_non_null(h);
	pthread_mutex_init(&h->lock, NULL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	h->ctl_guest = sv[0];
	h->ctl_host = sv[1];
	h->memfd = memfd_create("guest-memory", MFD_CLOEXEC);
	h->irqfd = memfd_create("irq-state", MFD_CLOEXEC);
	assert_true(h->memfd >= 0 && h->irqfd >= 0);
	assert_int_equal(ftruncate(h->memfd, HOST_MEM), 0);
	assert_int_equal(ftruncate(h->irqfd, HOST_VPS * HVKIT_PROC_IRQ_STATE_SIZE), 0);
	h->mem = mmap(NULL, HOST_MEM, PROT_READ | PROT_WRITE, MAP_SHARED, h->memfd, 0);
	h->irq = mmap(NULL, HOST_VPS * HVKIT_PROC_IRQ_STATE_SIZE, PROT_READ | PROT_WRITE,
		      MAP_SHARED, h->irqfd, 0);
	assert_true(h->mem != MAP_FAILED && h->irq != MAP_FAILED);
	h->event_ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(h->event_ev >= 0);
	for (uint32_t i = 0; i < HOST_VPS; i++) {
		struct host_vp *vp = &h->vps[i];
		vp->h = h;
		vp->index = i;
		assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
		vp->guest_sock = sv[0];
		vp->sock = sv[1];
		vp->irq_ev = eventfd(0, EFD_CLOEXEC);
		assert_true(vp->irq_ev >= 0);
		assert_int_equal(pthread_create(&vp->thread, NULL, host_vp_thread, vp), 0);
		vp->running = true;
	}
	return h;
}

/* Queues the HELLO reply before the guest asks (the socket buffers it). */
static void host_hello(struct host *h, enum hello_fault fault)
{
	struct hvkit_proc_reply r = {
		.magic = HVKIT_PROC_MAGIC,
		.op = HVKIT_PROC_HELLO,
		.status = HVKIT_PROC_OK,
		.seq = 1,
		.values = {HVKIT_PROC_VERSION, HOST_VPS, HOST_MEM, 0},
	};
	int fds[2 + 2 * HOST_VPS + 1], nfds = 0;
	size_t len = sizeof(r);
	int small = -1;

	fds[nfds++] = h->memfd;
	fds[nfds++] = h->irqfd;
	for (uint32_t i = 0; i < HOST_VPS; i++) {
		fds[nfds++] = h->vps[i].guest_sock;
		fds[nfds++] = h->vps[i].irq_ev;
	}
	switch (fault) {
	case HELLO_GOOD:
		break;
	case HELLO_BAD_MAGIC:
		r.magic = 0x12345678;
		break;
	case HELLO_BAD_SEQ:
		r.seq = 2;
		break;
	case HELLO_SHORT:
		len = 47;
		break;
	case HELLO_MISSING_FD:
		nfds--;
		break;
	case HELLO_EXTRA_FD:
		fds[nfds++] = h->event_ev;
		break;
	case HELLO_NO_FDS:
		nfds = 0;
		break;
	case HELLO_BAD_VERSION:
		r.values[0] = 2;
		break;
	case HELLO_ZERO_VPS:
		r.values[1] = 0;
		break;
	case HELLO_TOO_MANY_VPS:
		r.values[1] = HVKIT_PROC_MAX_VPS + 1;
		break;
	case HELLO_ODD_MEMORY:
		r.values[2] = HOST_MEM - 100;
		break;
	case HELLO_SMALL_MEMFD:
		small = memfd_create("small", MFD_CLOEXEC);
		assert_int_equal(ftruncate(small, HV_PAGE_SIZE), 0);
		fds[0] = small;
		break;
	case HELLO_STATUS:
		r.status = HVKIT_PROC_BADREQ;
		break;
	case HELLO_NOT_A_SOCKET:
		fds[2] = h->event_ev;
		break;
	}
	assert_int_equal(send_fds(h->ctl_host, &r, len, fds, nfds), 0);
	if (small >= 0)
		close(small);
	/* The guest ends are the guest's now: without our copies, its close is
	 * the host's EOF. */
	for (uint32_t i = 0; i < HOST_VPS; i++) {
		close(h->vps[i].guest_sock);
		h->vps[i].guest_sock = -1;
	}
}

static void host_free(struct host *h)
{
	for (uint32_t i = 0; i < HOST_VPS; i++) {
		struct host_vp *vp = &h->vps[i];
		/* Unblocks the thread even if the guest leaked its end. */
		int sock = __atomic_load_n(&vp->sock, __ATOMIC_SEQ_CST);
		if (sock >= 0)
			shutdown(sock, SHUT_RDWR);
		if (vp->running)
			pthread_join(vp->thread, NULL);
		if (vp->sock >= 0)
			close(vp->sock);
		if (vp->guest_sock >= 0)
			close(vp->guest_sock);
		close(vp->irq_ev);
	}
	if (h->ctl_guest >= 0)
		close(h->ctl_guest);
	if (h->ctl_host >= 0)
		close(h->ctl_host);
	close(h->memfd);
	close(h->irqfd);
	close(h->event_ev);
	munmap(h->mem, HOST_MEM);
	munmap(h->irq, HOST_VPS * HVKIT_PROC_IRQ_STATE_SIZE);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static int host_ops(struct host *h, uint32_t vp, int op)
{
	pthread_mutex_lock(&h->lock);
	int n = h->ops[vp][op];
	pthread_mutex_unlock(&h->lock);
	return n;
}

static uint64_t host_msr_value(struct host *h, uint32_t vp, uint32_t msr)
{
	pthread_mutex_lock(&h->lock);
	uint64_t v = *host_msr(&h->vps[vp], msr);
	pthread_mutex_unlock(&h->lock);
	return v;
}

/* The host's record of the last HYPERCALL request: args[i], or the VP. */
static uint64_t host_hypercall(struct host *h, int i)
{
	pthread_mutex_lock(&h->lock);
	uint64_t v = i < 3 ? h->last_hypercall[i] : h->last_hypercall_vp;
	pthread_mutex_unlock(&h->lock);
	return v;
}

/* The HELLO request the guest sent. */
static void host_check_hello_request(struct host *h)
{
	struct hvkit_proc_request req;
	assert_int_equal(recv(h->ctl_host, &req, sizeof(req), MSG_DONTWAIT), sizeof(req));
	assert_int_equal(req.magic, HVKIT_PROC_MAGIC);
	assert_int_equal(req.op, HVKIT_PROC_HELLO);
	assert_int_equal(req.reserved, 0);
	assert_int_equal(req.args[0], HVKIT_PROC_VERSION);
}

static void host_raise(struct host *h, uint32_t vp, const uint8_t *vectors, int n)
{
	for (int i = 0; i < n; i++)
		__atomic_fetch_or(&h->irq[vp].pending[vectors[i] / 64], 1ull << (vectors[i] % 64),
				  __ATOMIC_SEQ_CST);
	uint64_t one = 1;
	assert_int_equal(write(h->vps[vp].irq_ev, &one, sizeof(one)), sizeof(one));
}

/* Waits (without asserting on time) until *counter reaches want; false if
 * it does not within a generous bound. */
static bool wait_for(pthread_mutex_t *lock, const int *counter, int want)
{
	for (int i = 0; i < 20000; i++) {
		pthread_mutex_lock(lock);
		int n = *counter;
		pthread_mutex_unlock(lock);
		if (n >= want)
			return true;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return false;
}

/* ---- fixture ---- */

struct fx {
	int fds_before;
	struct host *h;
	struct hv_posix *px;
	const struct hv_port *port;
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	if (!x)
		return -1;
	x->fds_before = count_fds();
	x->h = host_new();
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	if (x->px)
		hv_posix_disconnect(x->px); /* closes ctl_guest too */
	else
		close(x->h->ctl_guest);
	x->h->ctl_guest = -1;
	host_free(x->h);
	/* Nothing the guest received is left open. */
	assert_int_equal(count_fds(), x->fds_before);
	free(x);
	return 0;
}

static void connect_good(struct fx *x)
{
	host_hello(x->h, HELLO_GOOD);
	assert_int_equal(hv_posix_connect(x->h->ctl_guest, &x->px), 0);
	assert_non_null(x->px);
	x->port = hv_posix_port(x->px);
	host_check_hello_request(x->h);
}

/* ---- connect ---- */

static void connect_maps_memory(void **state)
{
	struct fx *x = *state;

	connect_good(x);
	assert_int_equal(hv_posix_vp_count(x->px), HOST_VPS);
	assert_int_equal(hv_posix_memory_size(x->px), HOST_MEM);

	/* Memory is shared: what the host writes at a GPA, the guest sees. */
	uint8_t *p = x->port->alloc_pages(x->port->ctx, 1);
	assert_non_null(p);
	uint64_t gpa = x->port->gpa_of(x->port->ctx, p);
	memcpy(x->h->mem + gpa + 10, "hello", 5);
	assert_memory_equal(p + 10, "hello", 5);
	memcpy(p + 100, "back", 4);
	assert_memory_equal(x->h->mem + gpa + 100, "back", 4);
}

static void connect_env(void **state)
{
	struct fx *x = *state;
	char buf[32];
	struct hv_posix *px = (void *)1;

	unsetenv(HVKIT_PROC_FD_ENV);
	assert_int_equal(hv_posix_connect_env(&px), -ENOENT);
	assert_null(px);
	setenv(HVKIT_PROC_FD_ENV, "12x", 1);
	assert_int_equal(hv_posix_connect_env(&px), -EINVAL);
	setenv(HVKIT_PROC_FD_ENV, "-3", 1);
	assert_int_equal(hv_posix_connect_env(&px), -EINVAL);

	snprintf(buf, sizeof(buf), "%d", x->h->ctl_guest);
	setenv(HVKIT_PROC_FD_ENV, buf, 1);
	host_hello(x->h, HELLO_GOOD);
	assert_int_equal(hv_posix_connect_env(&x->px), 0);
	assert_int_equal(hv_posix_vp_count(x->px), HOST_VPS);
	unsetenv(HVKIT_PROC_FD_ENV);
}

static void hello_fault(void **state, enum hello_fault fault, int want)
{
	struct fx *x = *state;
	struct hv_posix *px = (void *)1;

	host_hello(x->h, fault);
	assert_int_equal(hv_posix_connect(x->h->ctl_guest, &px), want);
	assert_null(px);
	/* teardown checks that every fd that came with the HELLO was closed. */
}

static void hello_bad_magic(void **state) { hello_fault(state, HELLO_BAD_MAGIC, -EBADMSG); }
static void hello_bad_seq(void **state) { hello_fault(state, HELLO_BAD_SEQ, -EBADMSG); }
static void hello_short(void **state) { hello_fault(state, HELLO_SHORT, -EBADMSG); }
static void hello_missing_fd(void **state) { hello_fault(state, HELLO_MISSING_FD, -EBADMSG); }
static void hello_extra_fd(void **state) { hello_fault(state, HELLO_EXTRA_FD, -EBADMSG); }
static void hello_no_fds(void **state) { hello_fault(state, HELLO_NO_FDS, -EBADMSG); }
static void hello_bad_version(void **state)
{
	hello_fault(state, HELLO_BAD_VERSION, -EPROTONOSUPPORT);
}
static void hello_zero_vps(void **state) { hello_fault(state, HELLO_ZERO_VPS, -EBADMSG); }
static void hello_too_many_vps(void **state) { hello_fault(state, HELLO_TOO_MANY_VPS, -EBADMSG); }
static void hello_odd_memory(void **state) { hello_fault(state, HELLO_ODD_MEMORY, -EBADMSG); }
static void hello_small_memfd(void **state) { hello_fault(state, HELLO_SMALL_MEMFD, -EBADMSG); }
static void hello_status(void **state) { hello_fault(state, HELLO_STATUS, -EBADMSG); }
static void hello_not_a_socket(void **state) { hello_fault(state, HELLO_NOT_A_SOCKET, -EBADMSG); }

static void hello_host_gone(void **state)
{
	struct fx *x = *state;
	struct hv_posix *px = (void *)1;

	/* The host hung up before answering. */
	close(x->h->ctl_host);
	x->h->ctl_host = -1;
	assert_int_equal(hv_posix_connect(x->h->ctl_guest, &px), -EPIPE);
	assert_null(px);
}

/* ---- memory ---- */

static void alloc_gpa_free(void **state)
{
	struct fx *x = *state;
	const struct hv_port *p;

	connect_good(x);
	p = x->port;
	uint8_t *a = p->alloc_pages(p->ctx, 1);
	uint8_t *b = p->alloc_pages(p->ctx, 3);
	assert_non_null(a);
	assert_non_null(b);
	uint64_t ga = p->gpa_of(p->ctx, a), gb = p->gpa_of(p->ctx, b);
	assert_int_equal(ga, HV_PAGE_SIZE); /* first fit, never page 0 */
	assert_int_equal(gb, 2 * HV_PAGE_SIZE);
	assert_int_equal(p->gpa_of(p->ctx, b + 5000), gb + 5000);
	int local;
	assert_int_equal(p->gpa_of(p->ctx, &local), HV_GPA_INVALID);
	assert_int_equal(p->gpa_of(p->ctx, NULL), HV_GPA_INVALID);

	/* Zeroed, even if the memory was used before. */
	memset(a, 0xAB, HV_PAGE_SIZE);
	p->free_pages(p->ctx, a, 1);
	uint8_t *c = p->alloc_pages(p->ctx, 1);
	assert_ptr_equal(c, a);
	for (uint32_t i = 0; i < HV_PAGE_SIZE; i++)
		assert_int_equal(c[i], 0);

	/* A run that does not fit in the hole goes after b. */
	p->free_pages(p->ctx, c, 1);
	uint8_t *d = p->alloc_pages(p->ctx, 2);
	assert_int_equal(p->gpa_of(p->ctx, d), 5 * HV_PAGE_SIZE);

	/* Too much, or nothing. */
	assert_null(p->alloc_pages(p->ctx, HOST_MEM / HV_PAGE_SIZE));
	assert_null(p->alloc_pages(p->ctx, 0));

	/* Everything but page 0 can be had, one page at a time. */
	p->free_pages(p->ctx, b, 3);
	p->free_pages(p->ctx, d, 2);
	int got = 0;
	while (p->alloc_pages(p->ctx, 1))
		got++;
	assert_int_equal(got, HOST_MEM / HV_PAGE_SIZE - 1);
	/* Freeing junk is ignored. */
	p->free_pages(p->ctx, &local, 1);
	p->free_pages(p->ctx, x->h->mem, 1);
}

/* ---- requests ---- */

static void cpuid_and_msrs_on_the_right_vp(void **state)
{
	struct fx *x = *state;
	uint32_t regs[4];
	uint64_t v;

	connect_good(x);
	const struct hv_port *p = x->port;
	assert_int_equal(p->current_vp(p->ctx), 0); /* unbound: VP 0 */
	p->cpuid(p->ctx, HV_CPUID_VENDOR_AND_MAX, 0, regs);
	assert_int_equal(regs[0], HV_CPUID_IMPLEMENTATION_LIMITS);
	assert_int_equal(regs[1], HV_CPUID_VENDOR_EBX);
	assert_int_equal(host_ops(x->h, 0, HVKIT_PROC_CPUID), 1);

	hv_posix_bind_vp(x->px, 1);
	assert_int_equal(p->current_vp(p->ctx), 1);
	assert_true(p->wrmsr(p->ctx, HV_MSR_SCONTROL, 5));
	assert_int_equal(host_ops(x->h, 1, HVKIT_PROC_WRMSR), 1);
	assert_int_equal(host_ops(x->h, 0, HVKIT_PROC_WRMSR), 0);
	assert_int_equal(host_msr_value(x->h, 1, HV_MSR_SCONTROL), 5);
	assert_true(p->rdmsr(p->ctx, HV_MSR_SCONTROL, &v));
	assert_int_equal(v, 5);
	assert_true(p->rdmsr(p->ctx, HV_MSR_VP_INDEX, &v));
	assert_int_equal(v, 1);

	hv_posix_bind_vp(x->px, 0);
	assert_true(p->rdmsr(p->ctx, HV_MSR_SCONTROL, &v));
	assert_int_equal(v, 0);
	/* A VP that does not exist leaves the binding alone. */
	hv_posix_bind_vp(x->px, HOST_VPS);
	assert_int_equal(p->current_vp(p->ctx), 0);

	struct hv_posix_stats st;
	hv_posix_get_stats(x->px, &st);
	assert_int_equal(st.requests, 5);
}

static void gp_fails_msr_access(void **state)
{
	struct fx *x = *state;
	uint64_t v = 99;

	connect_good(x);
	const struct hv_port *p = x->port;
	assert_false(p->rdmsr(p->ctx, GP_MSR, &v));
	assert_false(p->wrmsr(p->ctx, GP_MSR, 1));
	assert_false(p->wrmsr(p->ctx, HV_MSR_VP_INDEX, 1));
	/* #GP is an answer, not a broken host: the port keeps working. */
	assert_true(p->rdmsr(p->ctx, HV_MSR_VP_INDEX, &v));
}

static void hypercall_over_socket(void **state)
{
	struct fx *x = *state;

	connect_good(x);
	const struct hv_port *p = x->port;
	hv_posix_bind_vp(x->px, 1);
	assert_int_equal(p->hypercall(p->ctx, NULL, HVCALL_POST_MESSAGE, 0x5000, 0x6000),
			 HV_STATUS_SUCCESS);
	assert_int_equal(host_ops(x->h, 1, HVKIT_PROC_HYPERCALL), 1);
	assert_int_equal(host_hypercall(x->h, 0), HVCALL_POST_MESSAGE);
	assert_int_equal(host_hypercall(x->h, 1), 0x5000);
	assert_int_equal(host_hypercall(x->h, 2), 0x6000);
	assert_int_equal(host_hypercall(x->h, 3), 1);
	hv_posix_bind_vp(x->px, 0);
}

static void fast_signal_through_eventfd(void **state)
{
	struct fx *x = *state;
	uint64_t count = 0;
	struct hv_posix_stats st;

	connect_good(x);
	const struct hv_port *p = x->port;
	uint64_t control = HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST;
	assert_int_equal(p->hypercall(p->ctx, NULL, control, EVENT_CONN, 0), HV_STATUS_SUCCESS);
	assert_int_equal(p->hypercall(p->ctx, NULL, control, EVENT_CONN, 0), HV_STATUS_SUCCESS);
	/* Asked once, then cached; never a HYPERCALL request. */
	assert_int_equal(host_ops(x->h, 0, HVKIT_PROC_EVENT_FD), 1);
	assert_int_equal(host_ops(x->h, 0, HVKIT_PROC_HYPERCALL), 0);
	assert_int_equal(read(x->h->event_ev, &count, sizeof(count)), sizeof(count));
	assert_int_equal(count, 2);
	hv_posix_get_stats(x->px, &st);
	assert_int_equal(st.fast_signals, 2);

	/* Flag != 0, or anything but a plain fast signal: the host decides. */
	assert_int_equal(p->hypercall(p->ctx, NULL, control, EVENT_CONN | (1ull << 32), 0),
			 HV_STATUS_SUCCESS);
	assert_int_equal(p->hypercall(p->ctx, NULL, control | (1ull << 32), EVENT_CONN, 0),
			 HV_STATUS_SUCCESS);
	assert_int_equal(host_ops(x->h, 0, HVKIT_PROC_HYPERCALL), 2);
	assert_int_equal(read(x->h->event_ev, &count, sizeof(count)), -1);

	/* Through the guest library too. */
	struct hv_guest *g = calloc(1, sizeof(*g));
	assert_non_null(g);
	assert_int_equal(hv_guest_init(g, p, NULL), 0);
	assert_int_equal(hv_guest_signal_event(g, EVENT_CONN, 0), HV_STATUS_SUCCESS);
	assert_int_equal(read(x->h->event_ev, &count, sizeof(count)), sizeof(count));
	assert_int_equal(count, 1);
	free(g);
}

static void noent_falls_back_to_hypercall(void **state)
{
	struct fx *x = *state;
	struct hv_posix_stats st;

	connect_good(x);
	const struct hv_port *p = x->port;
	uint64_t control = HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST;
	assert_int_equal(p->hypercall(p->ctx, NULL, control, NOENT_CONN, 0), HV_STATUS_SUCCESS);
	assert_int_equal(host_ops(x->h, 0, HVKIT_PROC_HYPERCALL), 1);
	assert_int_equal(host_hypercall(x->h, 0), control);
	assert_int_equal(host_hypercall(x->h, 1), NOENT_CONN);
	/* NOENT is not cached: the next signal asks again. */
	assert_int_equal(p->hypercall(p->ctx, NULL, control, NOENT_CONN, 0), HV_STATUS_SUCCESS);
	assert_int_equal(host_ops(x->h, 0, HVKIT_PROC_EVENT_FD), 2);
	assert_int_equal(host_ops(x->h, 0, HVKIT_PROC_HYPERCALL), 2);
	hv_posix_get_stats(x->px, &st);
	assert_int_equal(st.fast_signals, 0);
}

/* ---- interrupts ---- */

#define MAX_HITS 16

struct hits {
	pthread_mutex_t lock;
	int n;
	struct {
		uint8_t vector;
		uint32_t vp;
		pthread_t thread;
	} hit[MAX_HITS];
	const struct hv_port *port;
};

struct vec_arg {
	struct hits *hits;
	uint8_t vector;
};

static void record_vector(void *arg)
{
	struct vec_arg *va = arg;
	struct hits *h = va->hits;
	uint32_t vp = h->port->current_vp(h->port->ctx);

	pthread_mutex_lock(&h->lock);
	if (h->n < MAX_HITS) {
		h->hit[h->n].vector = va->vector;
		h->hit[h->n].vp = vp;
		h->hit[h->n].thread = pthread_self();
		h->n++;
	}
	pthread_mutex_unlock(&h->lock);
}

static void interrupts_highest_first_on_their_vp(void **state)
{
	struct fx *x = *state;
	static const uint8_t vectors[] = {0x30, 0xF3, 0x80, 0xED, 0x41, 0x7F, 0xFF};
	static const uint8_t order[] = {0xFF, 0xF3, 0xED, 0x80, 0x7F, 0x41, 0x30};
	struct hits hits = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct vec_arg args[sizeof(vectors)];

	connect_good(x);
	hits.port = x->port;
	for (size_t i = 0; i < sizeof(vectors); i++) {
		args[i] = (struct vec_arg){&hits, vectors[i]};
		assert_int_equal(x->port->set_vector_handler(x->port->ctx, vectors[i],
							     record_vector, &args[i]), 0);
	}
	host_raise(x->h, 1, vectors, sizeof(vectors));
	assert_true(wait_for(&hits.lock, &hits.n, (int)sizeof(vectors)));
	for (size_t i = 0; i < sizeof(order); i++) {
		assert_int_equal(hits.hit[i].vector, order[i]);
		assert_int_equal(hits.hit[i].vp, 1);
		assert_true(pthread_equal(hits.hit[i].thread, hits.hit[0].thread));
	}
	/* Taken: the pending words are clear. */
	for (int w = 0; w < 4; w++)
		assert_int_equal(__atomic_load_n(&x->h->irq[1].pending[w], __ATOMIC_SEQ_CST), 0);

	/* VP 0's interrupts run on VP 0, on another thread. */
	host_raise(x->h, 0, vectors + 1, 1);
	assert_true(wait_for(&hits.lock, &hits.n, (int)sizeof(vectors) + 1));
	assert_int_equal(hits.hit[sizeof(vectors)].vector, 0xF3);
	assert_int_equal(hits.hit[sizeof(vectors)].vp, 0);
	assert_false(pthread_equal(hits.hit[sizeof(vectors)].thread, hits.hit[0].thread));

	/* A vector without a handler is dropped, the others still run. */
	static const uint8_t mixed[] = {0x20, 0x30};
	host_raise(x->h, 0, mixed, 2);
	assert_true(wait_for(&hits.lock, &hits.n, (int)sizeof(vectors) + 2));
	assert_int_equal(hits.hit[sizeof(vectors) + 1].vector, 0x30);

	struct hv_posix_stats st;
	hv_posix_get_stats(x->px, &st);
	assert_int_equal(st.interrupts, sizeof(vectors) + 3);
	/* Handlers must be gone before hits goes out of scope. */
	hv_posix_disconnect(x->px);
	x->px = NULL;
}

/* ---- a hostile or vanished host ---- */

static void bad_reply(void **state, enum reply_fault fault)
{
	struct fx *x = *state;
	uint64_t v = 7;

	connect_good(x);
	const struct hv_port *p = x->port;
	__atomic_store_n(&x->h->fault, fault, __ATOMIC_SEQ_CST);
	assert_false(p->rdmsr(p->ctx, HV_MSR_SCONTROL, &v));
	assert_int_equal(v, 0);
	/* Disconnected from now on: calls fail without asking. */
	int before = host_ops(x->h, 0, HVKIT_PROC_WRMSR);
	assert_false(p->wrmsr(p->ctx, HV_MSR_SCONTROL, 1));
	assert_int_equal(p->hypercall(p->ctx, NULL, HVCALL_POST_MESSAGE, 0, 0),
			 HV_POSIX_STATUS_DISCONNECTED);
	assert_int_equal(p->hypercall(p->ctx, NULL, HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
				      EVENT_CONN, 0),
			 HV_POSIX_STATUS_DISCONNECTED);
	uint32_t regs[4] = {1, 2, 3, 4};
	p->cpuid(p->ctx, 1, 0, regs);
	assert_int_equal(regs[2], 0);
	assert_int_equal(host_ops(x->h, 0, HVKIT_PROC_WRMSR), before);
	/* teardown: no fd left behind (an extra fd must have been closed). */
}

static void reply_bad_magic(void **state) { bad_reply(state, FAULT_MAGIC); }
static void reply_bad_seq(void **state) { bad_reply(state, FAULT_SEQ); }
static void reply_bad_op(void **state) { bad_reply(state, FAULT_OP); }
static void reply_short(void **state) { bad_reply(state, FAULT_SHORT); }
static void reply_long(void **state) { bad_reply(state, FAULT_LONG); }
static void reply_extra_fd(void **state) { bad_reply(state, FAULT_EXTRA_FD); }
static void reply_bad_status(void **state) { bad_reply(state, FAULT_STATUS); }
static void host_closes_socket(void **state) { bad_reply(state, FAULT_CLOSE); }

static void host_closes_during_hypercall(void **state)
{
	struct fx *x = *state;

	connect_good(x);
	const struct hv_port *p = x->port;
	__atomic_store_n(&x->h->fault, FAULT_CLOSE, __ATOMIC_SEQ_CST);
	assert_int_equal(p->hypercall(p->ctx, NULL, HVCALL_POST_MESSAGE, 0x1000, 0),
			 HV_POSIX_STATUS_DISCONNECTED);
	struct hv_guest_features ft;
	assert_int_equal(hv_guest_detect(p, &ft), -ENODEV);
}

/* ---- the guest library over the posix port ---- */

struct lib_events {
	pthread_mutex_t lock;
	int messages;
	int events;
	uint32_t vp;
	struct hv_guest_message msg;
};

static void lib_on_message(void *arg, uint32_t vp, uint32_t sint, const struct hv_guest_message *m)
{
	struct lib_events *e = arg;
	(void)sint;
	pthread_mutex_lock(&e->lock);
	e->vp = vp;
	e->msg = *m;
	e->messages++;
	pthread_mutex_unlock(&e->lock);
}

static void lib_on_events(void *arg, uint32_t vp, uint32_t sint)
{
	struct lib_events *e = arg;
	(void)vp;
	(void)sint;
	pthread_mutex_lock(&e->lock);
	e->events++;
	pthread_mutex_unlock(&e->lock);
}

static void guest_library_end_to_end(void **state)
{
	struct fx *x = *state;
	struct lib_events ev = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct hv_guest *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	connect_good(x);
	const struct hv_port *p = x->port;
	struct hv_guest_config cfg = {.vp_count = HOST_VPS};
	assert_int_equal(hv_guest_init(g, p, &cfg), 0);
	hv_guest_set_callbacks(g, lib_on_message, lib_on_events, NULL, &ev);
	hv_posix_bind_vp(x->px, 1);
	assert_int_equal(hv_guest_vp_init(g), 0);
	assert_int_equal(g->vps[1].vp_index, 1);
	assert_int_equal(hv_guest_time(g), 12345); /* no TSC page: the MSR */

	/* The host sees the pages where the guest put them. */
	uint64_t simp = host_msr_value(x->h, 1, HV_MSR_SIMP);
	assert_int_equal(simp & 1, 1);
	assert_int_equal(HV_MSR_PAGE_GPA(simp), p->gpa_of(p->ctx, g->vps[1].simp));
	/* DEPRECATING_AEOI hinted: no auto-EOI. */
	assert_int_equal(host_msr_value(x->h, 1, HV_MSR_SINT(VMBUS_MESSAGE_SINT)), 0xF3);

	/* A message from the host, with another one pending. */
	uint8_t *slot_base = x->h->mem + HV_MSR_PAGE_GPA(simp) + VMBUS_MESSAGE_SINT * HV_MESSAGE_SIZE;
	struct hv_message *slot = (struct hv_message *)slot_base;
	uint32_t *slot_type = (uint32_t *)(void *)slot_base; /* offset 0, aligned */
	slot->header.payload_size = 4;
	slot->header.message_flags = HV_MESSAGE_FLAG_PENDING;
	memcpy(slot->payload, "ping", 4);
	__atomic_store_n(slot_type, HV_MESSAGE_TYPE_VMBUS, __ATOMIC_RELEASE);
	static const uint8_t vec = 0xF3;
	host_raise(x->h, 1, &vec, 1);
	assert_true(wait_for(&ev.lock, &ev.messages, 1));
	assert_int_equal(ev.vp, 1);
	assert_int_equal(ev.events, 1);
	assert_int_equal(ev.msg.payload_size, 4);
	assert_memory_equal(ev.msg.payload, "ping", 4);
	assert_int_equal(__atomic_load_n(slot_type, __ATOMIC_ACQUIRE), HVMSG_NONE);
	assert_int_equal(host_ops(x->h, 1, HVKIT_PROC_WRMSR) > 0, 1);
	/* The EOM went to VP 1, from the dispatcher thread. */
	pthread_mutex_lock(&x->h->lock);
	bool eom = false;
	for (int i = 0; i < x->h->vps[1].nmsrs; i++)
		eom |= x->h->vps[1].msrs[i].msr == HV_MSR_EOM;
	pthread_mutex_unlock(&x->h->lock);
	assert_true(eom);

	/* Post a message: the host finds the input block at the GPA it got. */
	assert_int_equal(hv_guest_post_message(g, 1, HV_MESSAGE_TYPE_VMBUS, "pong", 4),
			 HV_STATUS_SUCCESS);
	assert_int_equal(host_hypercall(x->h, 0), HVCALL_POST_MESSAGE);
	struct hv_input_post_message in;
	memcpy(&in, x->h->mem + host_hypercall(x->h, 1), sizeof(in));
	assert_int_equal(in.connection_id, 1);
	assert_int_equal(in.payload_size, 4);
	assert_memory_equal(in.payload, "pong", 4);

	hv_guest_vp_exit(g);
	assert_int_equal(host_msr_value(x->h, 1, HV_MSR_SIMP), 0);
	hv_posix_bind_vp(x->px, 0);
	hv_posix_disconnect(x->px); /* dispatchers stop before g goes */
	x->px = NULL;
	free(g);
}

/* ---- the pure checks ---- */

static void check_reply_rules(void **state)
{
	(void)state;
	struct hvkit_proc_reply r = {HVKIT_PROC_MAGIC, HVKIT_PROC_EVENT_FD, HVKIT_PROC_OK, 9, 0,
				     {0}};
	struct hvkit_proc_reply out;

	assert_int_equal(hv_posix_check_reply(&r, sizeof(r), HVKIT_PROC_EVENT_FD, 9, 1, &out), 0);
	assert_int_equal(out.seq, 9);
	/* EVENT_FD OK needs its fd; NOENT must come without one. */
	assert_int_equal(hv_posix_check_reply(&r, sizeof(r), HVKIT_PROC_EVENT_FD, 9, 0, &out),
			 -EBADMSG);
	r.status = HVKIT_PROC_NOENT;
	assert_int_equal(hv_posix_check_reply(&r, sizeof(r), HVKIT_PROC_EVENT_FD, 9, 1, &out),
			 -EBADMSG);
	assert_int_equal(hv_posix_check_reply(&r, sizeof(r), HVKIT_PROC_EVENT_FD, 9, 0, &out), 0);
	assert_int_equal(hv_posix_check_reply(&r, sizeof(r) - 1, HVKIT_PROC_EVENT_FD, 9, 0, &out),
			 -EBADMSG);
	assert_int_equal(hv_posix_check_reply(NULL, sizeof(r), HVKIT_PROC_EVENT_FD, 9, 0, &out),
			 -EBADMSG);
	r.status = 4;
	assert_int_equal(hv_posix_check_reply(&r, sizeof(r), HVKIT_PROC_EVENT_FD, 9, 0, &out),
			 -EBADMSG);

	struct hvkit_proc_reply h = {HVKIT_PROC_MAGIC, HVKIT_PROC_HELLO, HVKIT_PROC_OK, 1, 0,
				     {HVKIT_PROC_VERSION, 64, HV_POSIX_MAX_MEMORY, 0}};
	struct hv_posix_hello hello;
	assert_int_equal(hv_posix_check_hello(&h, 130, &hello), 0);
	assert_int_equal(hello.vp_count, 64);
	assert_int_equal(hello.memory_size, HV_POSIX_MAX_MEMORY);
	h.values[2] = HV_POSIX_MAX_MEMORY + HV_PAGE_SIZE;
	assert_int_equal(hv_posix_check_hello(&h, 130, &hello), -EBADMSG);
	h.values[2] = HV_PAGE_SIZE; /* page 0 only: nothing to allocate */
	assert_int_equal(hv_posix_check_hello(&h, 130, &hello), -EBADMSG);
	h.values[2] = 2 * HV_PAGE_SIZE;
	h.values[1] = 1ull << 32 | 1; /* truncation must not make it 1 */
	assert_int_equal(hv_posix_check_hello(&h, 4, &hello), -EBADMSG);
}

static void clocks_move_forward(void **state)
{
	struct fx *x = *state;

	connect_good(x);
	const struct hv_port *p = x->port;
	uint64_t t0 = p->rdtsc(p->ctx), n0 = p->monotonic_ns(p->ctx);
	uint64_t t1 = p->rdtsc(p->ctx), n1 = p->monotonic_ns(p->ctx);
	assert_true(t1 >= t0);
	assert_true(n1 >= n0);
	struct hv_port_lock *l = p->lock_new(p->ctx);
	assert_non_null(l);
	p->lock(p->ctx, l);
	p->unlock(p->ctx, l);
	p->lock_free(p->ctx, l);
}

/* ---- events ---- */

static void event_set_then_wait(void **state)
{
	struct fx *x = *state;

	connect_good(x);
	const struct hv_port *p = x->port;
	struct hv_port_event *e = p->event_new(p->ctx);
	assert_non_null(e);
	/* Not set: a short wait times out. */
	assert_int_equal(p->event_wait(p->ctx, e, 1000000), -ETIMEDOUT);
	/* Set before the wait: the wait returns at once, however long. */
	p->event_set(p->ctx, e);
	assert_int_equal(p->event_wait(p->ctx, e, 60ull * 1000000000ull), 0);
	/* Auto-reset: the wait consumed it. */
	assert_int_equal(p->event_wait(p->ctx, e, 0), -ETIMEDOUT);
	/* Two sets before a wait are one: the second wait times out. */
	p->event_set(p->ctx, e);
	p->event_set(p->ctx, e);
	assert_int_equal(p->event_wait(p->ctx, e, 0), 0);
	assert_int_equal(p->event_wait(p->ctx, e, 1000), -ETIMEDOUT);
	/* A timeout too large for a timespec is not an error. */
	p->event_set(p->ctx, e);
	assert_int_equal(p->event_wait(p->ctx, e, UINT64_MAX), 0);
	p->event_free(p->ctx, e);
}

struct setter {
	const struct hv_port *port;
	struct hv_port_event *e;
};

static void *set_later(void *arg)
{
	struct setter *s = arg;
	struct timespec ts = {0, 20000000};
	nanosleep(&ts, NULL);
	s->port->event_set(s->port->ctx, s->e);
	return NULL;
}

static void event_set_from_another_thread(void **state)
{
	struct fx *x = *state;
	pthread_t t;

	connect_good(x);
	struct setter s = {x->port, x->port->event_new(x->port->ctx)};
	assert_non_null(s.e);
	assert_int_equal(pthread_create(&t, NULL, set_later, &s), 0);
	/* Generous: the wait ends when the other thread sets the event. */
	assert_int_equal(s.port->event_wait(s.port->ctx, s.e, 60ull * 1000000000ull), 0);
	pthread_join(t, NULL);
	s.port->event_free(s.port->ctx, s.e);
}

static void set_from_handler(void *arg)
{
	struct setter *s = arg;
	s->port->event_set(s->port->ctx, s->e);
}

static void event_set_from_a_handler(void **state)
{
	struct fx *x = *state;
	static const uint8_t vector = 0x50;

	connect_good(x);
	struct setter s = {x->port, x->port->event_new(x->port->ctx)};
	assert_non_null(s.e);
	assert_int_equal(x->port->set_vector_handler(x->port->ctx, vector, set_from_handler, &s),
			 0);
	host_raise(x->h, 1, &vector, 1);
	assert_int_equal(s.port->event_wait(s.port->ctx, s.e, 60ull * 1000000000ull), 0);
	/* The dispatchers stop (the handler is out of event_set) before the
	 * event goes; event_free needs no partition, so a copy of the port
	 * outlives it. */
	struct hv_port port = *x->port;
	hv_posix_disconnect(x->px);
	x->px = NULL;
	port.event_free(NULL, s.e);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(connect_maps_memory),
		T(connect_env),
		T(hello_bad_magic),
		T(hello_bad_seq),
		T(hello_short),
		T(hello_missing_fd),
		T(hello_extra_fd),
		T(hello_no_fds),
		T(hello_bad_version),
		T(hello_zero_vps),
		T(hello_too_many_vps),
		T(hello_odd_memory),
		T(hello_small_memfd),
		T(hello_status),
		T(hello_not_a_socket),
		T(hello_host_gone),
		T(alloc_gpa_free),
		T(cpuid_and_msrs_on_the_right_vp),
		T(gp_fails_msr_access),
		T(hypercall_over_socket),
		T(fast_signal_through_eventfd),
		T(noent_falls_back_to_hypercall),
		T(interrupts_highest_first_on_their_vp),
		T(reply_bad_magic),
		T(reply_bad_seq),
		T(reply_bad_op),
		T(reply_short),
		T(reply_long),
		T(reply_extra_fd),
		T(reply_bad_status),
		T(host_closes_socket),
		T(host_closes_during_hypercall),
		T(guest_library_end_to_end),
		T(check_reply_rules),
		T(clocks_move_forward),
		T(event_set_then_wait),
		T(event_set_from_another_thread),
		T(event_set_from_a_handler),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
