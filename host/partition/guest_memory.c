/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "guest_memory.h"

#define PAGE_MASK_4K 0xFFFull

static bool ranges_overlap(uint64_t a, uint64_t a_size, uint64_t b, uint64_t b_size)
{
	return a < b + b_size && b < a + a_size;
}

int guest_memory_add(struct guest_memory *m, uint64_t gpa, uint64_t size, void *hva)
{
	return guest_memory_add_file(m, gpa, size, hva, -1, 0);
}

int guest_memory_add_file(struct guest_memory *m, uint64_t gpa, uint64_t size, void *hva,
			  int fd, uint64_t fd_offset)
{
	if (fd_offset & PAGE_MASK_4K)
		return -EINVAL;
	/* The host mapping is page-aligned too: SynIC and ring code use
	 * naturally aligned atomics on guest pages. */
	if (!hva || ((uintptr_t)hva & PAGE_MASK_4K) || size == 0 || (gpa & PAGE_MASK_4K) ||
	    (size & PAGE_MASK_4K) || gpa + size < gpa)
		return -EINVAL;
	for (uint32_t i = 0; i < m->count; i++)
		if (ranges_overlap(gpa, size, m->regions[i].gpa, m->regions[i].size))
			return -EINVAL;
	if (m->count == GUEST_MEMORY_MAX_REGIONS)
		return -ENOSPC;
	m->regions[m->count++] = (struct guest_memory_region){gpa, size, hva, fd, fd_offset};
	return 0;
}

int guest_memory_file_offset(const struct guest_memory *m, uint64_t gpa, int *fd,
			     uint64_t *offset)
{
	for (uint32_t i = 0; i < m->count; i++) {
		const struct guest_memory_region *r = &m->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size && r->fd >= 0) {
			*fd = r->fd;
			*offset = r->fd_offset + ((gpa - r->gpa) & ~PAGE_MASK_4K);
			return 0;
		}
	}
	return -ENOENT;
}

void *guest_memory_ptr(const struct guest_memory *m, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		return NULL;
	for (uint32_t i = 0; i < m->count; i++) {
		const struct guest_memory_region *r = &m->regions[i];
		/* Written so that no sum can overflow: gpa - r->gpa is only
		 * computed once gpa >= r->gpa. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

void *guest_memory_page(const struct guest_memory *m, uint64_t gpa)
{
	if (gpa & PAGE_MASK_4K)
		return NULL;
	return guest_memory_ptr(m, gpa, PAGE_MASK_4K + 1);
}

int guest_memory_read(const struct guest_memory *m, uint64_t gpa, void *dst, uint64_t len)
{
	const void *src = guest_memory_ptr(m, gpa, len);
	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int guest_memory_write(const struct guest_memory *m, uint64_t gpa, const void *src,
		       uint64_t len)
{
	void *dst = guest_memory_ptr(m, gpa, len);
	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

uint64_t guest_memory_size(const struct guest_memory *m)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < m->count; i++)
		total += m->regions[i].size;
	return total;
}
