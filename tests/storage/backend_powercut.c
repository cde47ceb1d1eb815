/* SPDX-License-Identifier: MIT */
/* A disk with a volatile write cache (backend_powercut.h). */
#include "backend_powercut.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 512u

struct powercut {
	pthread_mutex_t lock;
	uint8_t *cache;   /* what reads see */
	uint8_t *durable; /* what a power cut leaves */
	uint8_t *dirty;   /* per block: in the cache only */
	uint64_t size;
};

static int pc_readv(void *ctx, const struct iovec *iov, int iovcnt, uint64_t offset)
{
	struct powercut *p = ctx;
	pthread_mutex_lock(&p->lock);
	int err = 0;
	for (int i = 0; i < iovcnt && !err; i++) {
		if (iov[i].iov_len > p->size - offset) {
			err = -EIO;
			break;
		}
		memcpy(iov[i].iov_base, p->cache + offset, iov[i].iov_len);
		offset += iov[i].iov_len;
	}
	pthread_mutex_unlock(&p->lock);
	return err;
}

/* Makes blocks [first, end) durable. */
static void persist(struct powercut *p, uint64_t first, uint64_t end)
{
	for (uint64_t b = first; b < end; b++)
		if (p->dirty[b]) {
			memcpy(p->durable + b * BLOCK, p->cache + b * BLOCK, BLOCK);
			p->dirty[b] = 0;
		}
}

static int pc_writev(void *ctx, const struct iovec *iov, int iovcnt, uint64_t offset, bool fua)
{
	struct powercut *p = ctx;
	pthread_mutex_lock(&p->lock);
	uint64_t start = offset;
	int err = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > p->size - offset) {
			err = -EIO;
			break;
		}
		memcpy(p->cache + offset, iov[i].iov_base, iov[i].iov_len);
		memset(p->dirty + offset / BLOCK, 1, (iov[i].iov_len + BLOCK - 1) / BLOCK);
		offset += iov[i].iov_len;
	}
	if (!err && fua)
		persist(p, start / BLOCK, (offset + BLOCK - 1) / BLOCK);
	pthread_mutex_unlock(&p->lock);
	return err;
}

static int pc_flush(void *ctx)
{
	struct powercut *p = ctx;
	pthread_mutex_lock(&p->lock);
	persist(p, 0, p->size / BLOCK);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static void pc_free(void *ctx)
{
	struct powercut *p = ctx;
	pthread_mutex_destroy(&p->lock);
	free(p->cache);
	free(p->durable);
	free(p->dirty);
	free(p);
}

static const struct storage_backend_ops pc_ops = {
	.readv = pc_readv,
	.writev = pc_writev,
	.flush = pc_flush,
	.free = pc_free,
};

int powercut_backend_new(uint64_t size, struct storage_backend *out)
{
	if (!size || size % BLOCK)
		return -EINVAL;
	struct powercut *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	p->size = size;
	p->cache = calloc(1, size);
	p->durable = calloc(1, size);
	p->dirty = calloc(1, size / BLOCK);
	if (!p->cache || !p->durable || !p->dirty) {
		pc_free(p);
		return -ENOMEM;
	}
	*out = (struct storage_backend){.ops = &pc_ops, .ctx = p, .size = size,
					.block_size = BLOCK, .fd = -1};
	return 0;
}

const uint8_t *powercut_durable(const struct storage_backend *b)
{
	return ((const struct powercut *)b->ctx)->durable;
}

void powercut_cut(const struct storage_backend *b)
{
	struct powercut *p = b->ctx;
	memcpy(p->cache, p->durable, p->size);
	memset(p->dirty, 0, p->size / BLOCK);
}
