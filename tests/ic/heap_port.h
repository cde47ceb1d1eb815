/* SPDX-License-Identifier: MIT */
/*
 * A struct hv_port with nothing but the heap, for driving the IC drivers
 * without a partition: the C library's calloc and free, the allocations
 * still live counted (so a test sees a leak), and the option of failing
 * every allocation after a number of them.
 */
#ifndef HVKIT_TEST_HEAP_PORT_H
#define HVKIT_TEST_HEAP_PORT_H

#include <stdlib.h>

#include "port.h"

struct heap_port {
	struct hv_port port;
	long live;      /* allocations not freed yet */
	long succeed;   /* allocations left before they fail; < 0: no limit */
};

static void *heap_port_alloc(void *ctx, size_t size)
{
	struct heap_port *h = ctx;
	if (!h->succeed)
		return NULL;
	if (h->succeed > 0)
		h->succeed--;
	void *p = calloc(1, size);
	h->live += p != NULL;
	return p;
}

static void heap_port_free(void *ctx, void *p, size_t size)
{
	struct heap_port *h = ctx;
	(void)size;
	h->live -= p != NULL;
	free(p);
}

/* A heap port that fails after succeed allocations (< 0: never). */
static inline void heap_port_init(struct heap_port *h, long succeed)
{
	*h = (struct heap_port){
		.port = {.ctx = h, .alloc = heap_port_alloc, .free = heap_port_free},
		.succeed = succeed,
	};
}

#endif /* HVKIT_TEST_HEAP_PORT_H */
