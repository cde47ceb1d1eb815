/* SPDX-License-Identifier: MIT */
/*
 * hvkit-os's heap for the guest library's own objects (the port's alloc
 * and free): blocks of 16 to HEAP_BLOCK_MAX bytes, in power-of-two sizes,
 * cut from whole pages and kept on a free list per size; a larger request
 * is whole pages of its own. The caller gives the size back on free, so a
 * block carries no header. A size's pages stay with it once cut: the
 * library allocates a few objects at start-up and the same few buffers per
 * request, so they are taken again.
 *
 * Pages come from pages_alloc and go back to pages_free (os.h); nothing
 * else of the OS is used, so the host can test it. Not thread-safe: the
 * caller serializes calls on one heap.
 */
#ifndef HVKIT_OS_HEAP_H
#define HVKIT_OS_HEAP_H

#include <stddef.h>

#define HEAP_BLOCK_MIN 16
#define HEAP_BLOCK_MAX 2048
#define HEAP_SIZES 8 /* 16, 32, ... 2048 */

struct heap_block;

struct heap {
	struct heap_block *free[HEAP_SIZES];
};

/* size (1 to 1 GiB) zeroed bytes, aligned to 16 (a page above
 * HEAP_BLOCK_MAX); NULL if there is no memory. */
void *heap_alloc(struct heap *h, size_t size);
/* p from heap_alloc with the same size; p NULL: nothing. */
void heap_free(struct heap *h, void *p, size_t size);

#endif /* HVKIT_OS_HEAP_H */
