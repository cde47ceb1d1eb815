/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring_map.h"

/* Maps pages [first, first + count) of the list at dst, one mmap per run of
 * consecutive file offsets. */
static int map_pages(int fd, const uint64_t *offsets, uint32_t first, uint32_t count,
		     uint8_t *dst)
{
	uint32_t i = 0;

	while (i < count) {
		uint32_t run = 1;
		while (i + run < count &&
		       offsets[first + i + run] == offsets[first + i] + (uint64_t)run * HV_PAGE_SIZE)
			run++;
		void *p = mmap(dst + (size_t)i * HV_PAGE_SIZE, (size_t)run * HV_PAGE_SIZE,
			       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
			       (off_t)offsets[first + i]);
		if (p == MAP_FAILED)
			return -errno;
		i += run;
	}
	return 0;
}

int vmbus_ring_map(int fd, const uint64_t *page_offsets, uint32_t page_count,
		   struct vmbus_ring_mapping *map, struct vmbus_ring_mem *mem)
{
	if (page_count < 2)
		return -EINVAL;
	for (uint32_t i = 0; i < page_count; i++)
		if (page_offsets[i] % HV_PAGE_SIZE != 0 || page_offsets[i] > (uint64_t)INT64_MAX)
			return -EINVAL;

	uint32_t data_pages = page_count - 1;
	size_t ring_bytes = (size_t)page_count * HV_PAGE_SIZE;
	size_t len = ring_bytes + (size_t)data_pages * HV_PAGE_SIZE;
	/* Reserve the whole range first so the fixed mappings below cannot
	 * land on anything else. */
	uint8_t *base = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return -errno;

	int err = map_pages(fd, page_offsets, 0, page_count, base);
	if (!err)
		err = map_pages(fd, page_offsets, 1, data_pages, base + ring_bytes);
	if (!err)
		err = vmbus_ring_mem_init(mem, base, ring_bytes, true);
	if (err) {
		munmap(base, len);
		return err;
	}
	map->base = base;
	map->len = len;
	return 0;
}

int vmbus_ring_map_new(size_t ring_bytes, int *fd, struct vmbus_ring_mapping *map,
		       struct vmbus_ring_mem *mem)
{
	if (ring_bytes % HV_PAGE_SIZE != 0 || ring_bytes < 2 * HV_PAGE_SIZE ||
	    ring_bytes / HV_PAGE_SIZE > UINT32_MAX)
		return -EINVAL;
	uint32_t pages = (uint32_t)(ring_bytes / HV_PAGE_SIZE);
	uint64_t *offsets = malloc(sizeof(*offsets) * pages);
	if (!offsets)
		return -ENOMEM;
	for (uint32_t i = 0; i < pages; i++)
		offsets[i] = (uint64_t)i * HV_PAGE_SIZE;

	int err = 0;
	int memfd = memfd_create("hvkit-ring", MFD_CLOEXEC);
	if (memfd < 0)
		err = -errno;
	else if (ftruncate(memfd, (off_t)ring_bytes) < 0)
		err = -errno;
	else
		err = vmbus_ring_map(memfd, offsets, pages, map, mem);
	free(offsets);
	if (err) {
		if (memfd >= 0)
			close(memfd);
		return err;
	}
	vmbus_ring_mem_reset(mem);
	*fd = memfd;
	return 0;
}

void vmbus_ring_unmap(struct vmbus_ring_mapping *map)
{
	if (map->base)
		munmap(map->base, map->len);
	map->base = NULL;
	map->len = 0;
}
