/* SPDX-License-Identifier: MIT */
/*
 * Mirrored ring mappings on Linux: the data pages of a ring mapped twice,
 * back to back, so that no packet ever has to be split at the wrap. The
 * pages come from a file (a memfd holding guest memory), at any offsets:
 * a GPADL need not be contiguous.
 */
#ifndef HVKIT_RING_MAP_H
#define HVKIT_RING_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "ring_buffer.h"

struct vmbus_ring_mapping {
	void *base;
	size_t len;
};

/*
 * Maps the ring whose page i is at file offset page_offsets[i] of fd (page
 * 0 the header, the rest data) and describes it in *mem. Offsets must be
 * page-aligned; at least two pages. 0 or a negative errno.
 */
int vmbus_ring_map(int fd, const uint64_t *page_offsets, uint32_t page_count,
		   struct vmbus_ring_mapping *map, struct vmbus_ring_mem *mem);

/* A ring of ring_bytes in a new memfd, mirrored, with a fresh header. The
 * fd is returned in *fd (the caller closes it) so another mapping of the
 * same ring can be made, as the other side of a channel would. */
int vmbus_ring_map_new(size_t ring_bytes, int *fd, struct vmbus_ring_mapping *map,
		       struct vmbus_ring_mem *mem);

void vmbus_ring_unmap(struct vmbus_ring_mapping *map);

#endif /* HVKIT_RING_MAP_H */
