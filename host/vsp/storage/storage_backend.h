/* SPDX-License-Identifier: MIT */
/*
 * A block backend: what a disk's data lives in. Calls are synchronous and
 * may come from several worker threads at once; a backend serializes what
 * it must itself. Offsets and lengths are in bytes, multiples of
 * block_size, and already checked against size by the SCSI target.
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
};

/* Frees the backend's state (ops->free). */
void storage_backend_close(struct storage_backend *b);

/* ---- In memory (tests) ---- */

/* size bytes of zeros. -ENOMEM, -EINVAL (size not a block multiple). */
int storage_backend_mem_new(uint64_t size, uint32_t block_size, bool read_only,
			    struct storage_backend *out);
/* The bytes behind an in-memory backend, for tests to inspect. */
uint8_t *storage_backend_mem_data(const struct storage_backend *b);

/* ---- Raw image file (preadv2/pwritev2 on the calling worker) ---- */

struct storage_file_config {
	const char *path;
	bool read_only;
	bool direct;        /* O_DIRECT: bypass the host page cache */
	uint32_t block_size; /* 0: 512 */
	uint32_t queues;     /* unused (the workers call preadv2/pwritev2 themselves) */
};

int storage_backend_file_open(const struct storage_file_config *cfg, struct storage_backend *out);

#endif /* HVKIT_STORAGE_BACKEND_H */
