/* SPDX-License-Identifier: MIT */
/*
 * An in-memory disk for tests. Concurrent requests to overlapping blocks
 * race as they would on real hardware; nothing else is shared.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage_backend.h"

struct mem_backend {
	uint8_t *data;
	uint64_t size;
	uint64_t flushes;
};

static int mem_readv(void *ctx, const struct iovec *iov, int iovcnt, uint64_t offset)
{
	struct mem_backend *m = ctx;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > m->size - offset)
			return -EIO;
		memcpy(iov[i].iov_base, m->data + offset, iov[i].iov_len);
		offset += iov[i].iov_len;
	}
	return 0;
}

static int mem_writev(void *ctx, const struct iovec *iov, int iovcnt, uint64_t offset, bool fua)
{
	struct mem_backend *m = ctx;
	(void)fua;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > m->size - offset)
			return -EIO;
		memcpy(m->data + offset, iov[i].iov_base, iov[i].iov_len);
		offset += iov[i].iov_len;
	}
	return 0;
}

static int mem_flush(void *ctx)
{
	struct mem_backend *m = ctx;
	__atomic_add_fetch(&m->flushes, 1, __ATOMIC_RELAXED);
	return 0;
}

static int mem_discard(void *ctx, uint64_t offset, uint64_t len)
{
	struct mem_backend *m = ctx;
	if (offset > m->size || len > m->size - offset)
		return -EIO;
	memset(m->data + offset, 0, len);
	return 0;
}

static void mem_free(void *ctx)
{
	struct mem_backend *m = ctx;
	free(m->data);
	free(m);
}

static const struct storage_backend_ops mem_ops = {
	.readv = mem_readv,
	.writev = mem_writev,
	.flush = mem_flush,
	.discard = mem_discard,
	.free = mem_free,
};

int storage_backend_mem_new(uint64_t size, uint32_t block_size, bool read_only,
			    struct storage_backend *out)
{
	if (!block_size || !size || size % block_size)
		return -EINVAL;
	struct mem_backend *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->data = calloc(1, size);
	if (!m->data) {
		free(m);
		return -ENOMEM;
	}
	m->size = size;
	*out = (struct storage_backend){
		.ops = &mem_ops,
		.ctx = m,
		.size = size,
		.block_size = block_size,
		.read_only = read_only,
		.fd = -1,
	};
	return 0;
}

uint8_t *storage_backend_mem_data(const struct storage_backend *b)
{
	if (b->ops != &mem_ops)
		return NULL;
	return ((struct mem_backend *)b->ctx)->data;
}

void storage_backend_close(struct storage_backend *b)
{
	if (b->ops && b->ops->free)
		b->ops->free(b->ctx);
	b->ops = NULL;
	b->ctx = NULL;
}
