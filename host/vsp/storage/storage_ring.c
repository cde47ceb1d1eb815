/* SPDX-License-Identifier: MIT */
/*
 * storage_ring: a worker's io_uring (see storage_ring.h). Reads and writes
 * are READV/WRITEV SQEs (FUA as RWF_DSYNC), a flush is FSYNC with
 * IORING_FSYNC_DATASYNC, a discard FALLOCATE with PUNCH_HOLE|KEEP_SIZE.
 * A transfer that moved fewer bytes than asked goes again for the rest
 * (a regular file only stops short at its end, a block device or a
 * signal may stop it anywhere).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

#include "storage_ring.h"

struct storage_ring {
	struct io_uring ring;
	unsigned entries;
	unsigned inflight; /* queued or in the kernel, poll excluded */
	unsigned queued;   /* prepared since the last submit */
	unsigned flags;
	/* The one-shot poll: its user_data is &poll_tag. */
	char poll_tag;
	void (*wake)(void *);
	void *wake_arg;
};

/*
 * Setup flags, best first: a single issuer lets the kernel skip locking,
 * DEFER_TASKRUN runs completion work only when we ask for completions (no
 * interrupting the worker mid-batch), COOP_TASKRUN at least avoids an IPI
 * per completion. Older kernels refuse unknown flags with -EINVAL, so each
 * is tried in turn.
 */
static const unsigned ring_flag_sets[] = {
#if defined(IORING_SETUP_SINGLE_ISSUER) && defined(IORING_SETUP_DEFER_TASKRUN)
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
#endif
#if defined(IORING_SETUP_SINGLE_ISSUER) && defined(IORING_SETUP_COOP_TASKRUN)
	IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
	IORING_SETUP_COOP_TASKRUN,
#endif
	0,
};

int storage_ring_new(unsigned entries, struct storage_ring **out)
{
	if (!entries)
		return -EINVAL;
	struct storage_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int err = -EINVAL;
	for (size_t i = 0; i < sizeof(ring_flag_sets) / sizeof(ring_flag_sets[0]); i++) {
		/* One SQE more than requests: the poll's. */
		err = io_uring_queue_init(entries + 1, &r->ring, ring_flag_sets[i]);
		if (err == 0) {
			r->flags = ring_flag_sets[i];
			break;
		}
		if (err != -EINVAL)
			break; /* no io_uring at all (ENOSYS, EPERM, ENOMEM) */
	}
	if (err) {
		free(r);
		return err;
	}
	r->entries = entries;
	*out = r;
	return 0;
}

unsigned storage_ring_inflight(const struct storage_ring *r)
{
	return r->inflight;
}

unsigned storage_ring_space(const struct storage_ring *r)
{
	return r->entries - r->inflight;
}

unsigned storage_ring_flags(const struct storage_ring *r)
{
	return r->flags;
}

/* Fills an SQE for what is left of a. */
static void prep(struct io_uring_sqe *sqe, struct storage_aio *a)
{
	const struct iovec *iov = a->rest ? a->rest : a->iov;
	int cnt = a->rest ? a->restcnt : a->iovcnt;
	uint64_t off = a->offset + a->moved;
	switch (a->op) {
	case STORAGE_AIO_READ:
		io_uring_prep_readv(sqe, a->fd, iov, (unsigned)cnt, off);
		break;
	case STORAGE_AIO_WRITE:
		io_uring_prep_writev2(sqe, a->fd, iov, (unsigned)cnt, off, a->fua ? RWF_DSYNC : 0);
		break;
	case STORAGE_AIO_FLUSH:
		io_uring_prep_fsync(sqe, a->fd, IORING_FSYNC_DATASYNC);
		break;
	case STORAGE_AIO_DISCARD:
		io_uring_prep_fallocate(sqe, a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)a->offset, (off_t)a->len);
		break;
	}
	io_uring_sqe_set_data(sqe, a);
}

static int queue_sqe(struct storage_ring *r, struct storage_aio *a)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	if (!sqe)
		return -EBUSY; /* cannot happen while inflight <= entries */
	prep(sqe, a);
	r->queued++;
	return 0;
}

int storage_ring_queue(struct storage_ring *r, struct storage_aio *a)
{
	if (r->inflight >= r->entries)
		return -EBUSY;
	if ((a->op == STORAGE_AIO_READ || a->op == STORAGE_AIO_WRITE) &&
	    (a->iovcnt <= 0 || a->iovcnt > IOV_MAX))
		return -EINVAL;
	a->moved = 0;
	a->rest = NULL;
	a->restcnt = 0;
	int err = queue_sqe(r, a);
	if (!err)
		r->inflight++;
	return err;
}

/* Whether completions wait for us to ask (IORING_SETUP_DEFER_TASKRUN). */
static bool deferred(const struct storage_ring *r)
{
#ifdef IORING_SETUP_DEFER_TASKRUN
	return r->flags & IORING_SETUP_DEFER_TASKRUN;
#else
	(void)r;
	return false;
#endif
}

int storage_ring_submit(struct storage_ring *r)
{
	/* With deferred task work, finished I/O is posted only when we
	 * enter the kernel asking for events: do both in the one call, so
	 * the reap after a submit sees what completed meanwhile. */
	bool defer = deferred(r) && r->inflight;
	if (!r->queued && !defer)
		return 0;
	int n;
	do
		n = defer ? io_uring_submit_and_get_events(&r->ring) : io_uring_submit(&r->ring);
	while (n == -EINTR);
	if (n < 0)
		return n;
	r->queued -= (unsigned)n < r->queued ? (unsigned)n : r->queued;
	return 0;
}

/* The iovec after skipping `skip` bytes of a's original one (a fresh
 * copy: the caller's iovec is left as it was). */
static int set_rest(struct storage_aio *a)
{
	uint64_t skip = a->moved;
	int i = 0;
	while (i < a->iovcnt && skip >= a->iov[i].iov_len)
		skip -= a->iov[i++].iov_len;
	if (i == a->iovcnt)
		return -EIO;
	struct iovec *v = realloc(a->rest, sizeof(*v) * (size_t)(a->iovcnt - i));
	if (!v)
		return -ENOMEM;
	memcpy(v, a->iov + i, sizeof(*v) * (size_t)(a->iovcnt - i));
	v[0].iov_base = (uint8_t *)v[0].iov_base + skip;
	v[0].iov_len -= skip;
	a->rest = v;
	a->restcnt = a->iovcnt - i;
	return 0;
}

static void finish(struct storage_ring *r, struct storage_aio *a, int err)
{
	free(a->rest);
	a->rest = NULL;
	r->inflight--;
	a->done(a, err);
}

/* One completion of a; returns whether a's done ran. */
static bool complete(struct storage_ring *r, struct storage_aio *a, int res)
{
	if (res == -EINTR || res == -EAGAIN) {
		if (queue_sqe(r, a) == 0)
			return false; /* again, as it was */
		finish(r, a, -EIO);
		return true;
	}
	if (res < 0) {
		finish(r, a, res);
		return true;
	}
	if (a->op != STORAGE_AIO_READ && a->op != STORAGE_AIO_WRITE) {
		finish(r, a, 0);
		return true;
	}
	if (res == 0) {
		finish(r, a, -EIO); /* past the end of the file */
		return true;
	}
	a->moved += (uint64_t)res;
	if (a->moved >= a->len) {
		finish(r, a, 0);
		return true;
	}
	int err = set_rest(a);
	if (!err)
		err = queue_sqe(r, a);
	if (!err)
		return false;
	finish(r, a, err);
	return true;
}

#define REAP_BATCH 64

unsigned storage_ring_reap(struct storage_ring *r, bool wait)
{
	unsigned ran = 0;
	bool waited = false;
	for (;;) {
		struct io_uring_cqe *cqes[REAP_BATCH];
		unsigned n = io_uring_peek_batch_cqe(&r->ring, cqes, REAP_BATCH);
		if (n == 0) {
			if (ran || waited || !wait || (!r->inflight && !r->wake))
				break;
			/* What went again after a short transfer must be in
			 * the kernel before waiting for it. */
			if (r->queued)
				storage_ring_submit(r);
			struct io_uring_cqe *cqe;
			int err = io_uring_wait_cqe(&r->ring, &cqe);
			if (err && err != -EINTR && err != -ETIME)
				break;
			waited = err == 0;
			continue;
		}
		/* Copy out first: handling may queue SQEs, never CQEs, but
		 * the CQ slots are returned before callbacks run. */
		void *data[REAP_BATCH];
		int res[REAP_BATCH];
		for (unsigned i = 0; i < n; i++) {
			data[i] = io_uring_cqe_get_data(cqes[i]);
			res[i] = cqes[i]->res;
		}
		io_uring_cq_advance(&r->ring, n);
		for (unsigned i = 0; i < n; i++) {
			if (data[i] == &r->poll_tag) {
				void (*wake)(void *) = r->wake;
				r->wake = NULL;
				if (wake)
					wake(r->wake_arg);
				ran++;
				continue;
			}
			if (complete(r, data[i], res[i]))
				ran++;
		}
	}
	if (r->queued)
		storage_ring_submit(r);
	return ran;
}

int storage_ring_poll(struct storage_ring *r, int fd, void (*wake)(void *), void *arg)
{
	if (r->wake)
		return 0; /* armed already */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, fd, POLLIN);
	io_uring_sqe_set_data(sqe, &r->poll_tag);
	r->wake = wake;
	r->wake_arg = arg;
	r->queued++;
	return 0;
}

void storage_ring_free(struct storage_ring *r)
{
	if (!r)
		return;
	storage_ring_submit(r);
	while (r->inflight)
		storage_ring_reap(r, true);
	io_uring_queue_exit(&r->ring);
	free(r);
}
