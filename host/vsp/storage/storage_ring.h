/* SPDX-License-Identifier: MIT */
/*
 * An io_uring owned by one storvsp worker: block I/O on file descriptors
 * submitted asynchronously and completed through a callback, so a worker
 * keeps many requests in flight at once. Not thread-safe: the thread that
 * created the ring is the only one that may use it (the ring is set up
 * with IORING_SETUP_SINGLE_ISSUER where the kernel has it).
 *
 * Use: storage_ring_queue() each request taken from the work queue, one
 * storage_ring_submit() per batch, then storage_ring_reap() in the worker
 * loop; each request's done callback runs exactly once, from reap.
 */
#ifndef HVKIT_STORAGE_RING_H
#define HVKIT_STORAGE_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

enum storage_aio_op {
	STORAGE_AIO_READ,
	STORAGE_AIO_WRITE,   /* fua: RWF_DSYNC */
	STORAGE_AIO_FLUSH,   /* fdatasync */
	STORAGE_AIO_DISCARD, /* fallocate PUNCH_HOLE | KEEP_SIZE */
};

/* One request. The caller fills the public part and keeps the struct
 * (and iov) alive until done runs. */
struct storage_aio {
	enum storage_aio_op op;
	int fd;
	bool fua;
	const struct iovec *iov; /* READ/WRITE */
	int iovcnt;
	uint64_t offset; /* bytes */
	uint64_t len;    /* bytes: the iovec's total, or the discard length */
	/* err: 0 when every byte moved, else a negative errno (-EIO for a
	 * read past the end of the file). */
	void (*done)(struct storage_aio *a, int err);

	/* Private to the ring. */
	uint64_t moved;         /* bytes done so far (short transfers) */
	struct iovec *rest;     /* the iovec still to move after a short one */
	int restcnt;
};

struct storage_ring;

/* entries: the most requests in flight at once. -errno if the kernel has
 * no io_uring (or refuses it): the caller falls back to synchronous I/O. */
int storage_ring_new(unsigned entries, struct storage_ring **out);
/* Waits for every request in flight (each done runs), then frees. */
void storage_ring_free(struct storage_ring *r);

/* Requests queued or in flight; storage_ring_space() more may be queued. */
unsigned storage_ring_inflight(const struct storage_ring *r);
unsigned storage_ring_space(const struct storage_ring *r);

/* Prepares a's SQE (not yet submitted). -EBUSY when the ring is full. */
int storage_ring_queue(struct storage_ring *r, struct storage_aio *a);
/* Hands every queued SQE to the kernel (one io_uring_enter). */
int storage_ring_submit(struct storage_ring *r);
/*
 * Completes what has finished, waiting for at least one completion when
 * wait is set and a request is in flight; short transfers are queued
 * again for the rest (and submitted). Returns the number of done
 * callbacks run.
 */
unsigned storage_ring_reap(struct storage_ring *r, bool wait);

/* The ring's setup flags (for benchmarks and tests to report). */
unsigned storage_ring_flags(const struct storage_ring *r);

/* Arms a one-shot poll for readability of fd; wake runs from reap when it
 * fires (the worker's "new work" eventfd). */
int storage_ring_poll(struct storage_ring *r, int fd, void (*wake)(void *), void *arg);

#endif /* HVKIT_STORAGE_RING_H */
