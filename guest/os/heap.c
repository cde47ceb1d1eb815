/* SPDX-License-Identifier: MIT */
/* hvkit-os's heap (heap.h): size classes over whole pages. */
#include <stdint.h>
#include <string.h>

#include "heap.h"
#include "os.h"

#define PAGE 4096u
#define MAX_BYTES ((size_t)1 << 30) /* keeps a page count in 32 bits */

/* A free block: the link lives in the block itself. */
struct heap_block {
	struct heap_block *next;
};

_Static_assert(HEAP_BLOCK_MIN << (HEAP_SIZES - 1) == HEAP_BLOCK_MAX, "size classes");
_Static_assert(HEAP_BLOCK_MAX <= PAGE && HEAP_BLOCK_MIN >= sizeof(struct heap_block),
	       "block sizes");

static unsigned size_class(size_t size)
{
	unsigned c = 0;
	while ((size_t)HEAP_BLOCK_MIN << c < size)
		c++;
	return c;
}

static uint32_t pages_for(size_t size)
{
	return (uint32_t)((size + PAGE - 1) / PAGE);
}

static void push(struct heap *h, unsigned c, void *p)
{
	struct heap_block *b = p;
	b->next = h->free[c];
	h->free[c] = b;
}

/* A fresh page cut into blocks of class c, lowest address first out. */
static bool refill(struct heap *h, unsigned c)
{
	uint8_t *page = pages_alloc(1);
	if (!page)
		return false;
	size_t block = (size_t)HEAP_BLOCK_MIN << c;
	for (size_t off = PAGE; off;) {
		off -= block;
		push(h, c, page + off);
	}
	return true;
}

void *heap_alloc(struct heap *h, size_t size)
{
	if (!size || size > MAX_BYTES)
		return NULL;
	if (size > HEAP_BLOCK_MAX)
		return pages_alloc(pages_for(size)); /* zeroed */
	unsigned c = size_class(size);
	if (!h->free[c] && !refill(h, c))
		return NULL;
	struct heap_block *b = h->free[c];
	h->free[c] = b->next;
	memset(b, 0, size); /* a block may have been used before */
	return b;
}

void heap_free(struct heap *h, void *p, size_t size)
{
	if (!p)
		return;
	if (size > HEAP_BLOCK_MAX)
		pages_free(p, pages_for(size));
	else
		push(h, size_class(size), p);
}
