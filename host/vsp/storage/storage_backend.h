/* SPDX-License-Identifier: MIT */
/*
 * A block backend: what a disk's data lives in. The ops are synchronous and
 * may come from several worker threads at once; a backend serializes what
 * it must itself. Offsets and lengths are in bytes, multiples of
 * block_size, and already checked against size by the SCSI target.
 *
 * A backend that is a file descriptor may also offer it for asynchronous
 * I/O (uring set): the storvsp workers then queue its reads, writes and
 * flushes on their own io_uring (storage_ring.h) instead of calling the
 * ops, and keep many in flight at once.
 */
#ifndef HVKIT_STORAGE_BACKEND_H
#define HVKIT_STORAGE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct storage_backend_ops {
	/* 0 or a negative errno; the whole length moves or it is an error. */
	int (*readv)(void *ctx, const struct iovec *iov, int iovcnt, uint64_t offset);
	/* fua: on stable storage before returning. */
	int (*writev)(void *ctx, const struct iovec *iov, int iovcnt, uint64_t offset, bool fua);
	int (*flush)(void *ctx);
	/* Deallocates; later reads return zeros. NULL if unsupported. */
	int (*discard)(void *ctx, uint64_t offset, uint64_t len);
	void (*free)(void *ctx);
};

struct storage_backend {
	const struct storage_backend_ops *ops;
	void *ctx;
	uint64_t size;       /* bytes, a multiple of block_size */
	uint32_t block_size; /* 512 or 4096 */
	bool read_only;
	bool uring; /* fd takes io_uring reads, writes and flushes */
	int fd;
};

/* Frees the backend's state (ops->free). */
void storage_backend_close(struct storage_backend *b);

/* ---- In memory (tests) ---- */

/* size bytes of zeros. -ENOMEM, -EINVAL (size not a block multiple). */
int storage_backend_mem_new(uint64_t size, uint32_t block_size, bool read_only,
			    struct storage_backend *out);
/* The bytes behind an in-memory backend, for tests to inspect. */
uint8_t *storage_backend_mem_data(const struct storage_backend *b);

/* ---- Raw image file ---- */

/* How a file backend's I/O runs. */
enum storage_aio_mode {
	STORAGE_AIO_DEFAULT, /* STORAGE_AIO_URING */
	STORAGE_AIO_URING,   /* asynchronous, on the workers' io_uring */
	STORAGE_AIO_THREADS, /* preadv2/pwritev2, one request at a time per worker */
};

struct storage_file_config {
	const char *path;
	bool read_only;
	bool direct;        /* O_DIRECT: bypass the host page cache */
	uint32_t block_size; /* 0: 512 */
	enum storage_aio_mode aio;
};

int storage_backend_file_open(const struct storage_file_config *cfg, struct storage_backend *out);

/* "io_uring" or "threads" (as --disk aio= takes them); -EINVAL otherwise. */
int storage_aio_mode_parse(const char *s, enum storage_aio_mode *out);

#endif /* HVKIT_STORAGE_BACKEND_H */
