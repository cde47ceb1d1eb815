/* SPDX-License-Identifier: MIT */
/*
 * Guest physical memory as the host side sees it: a few regions, each a
 * range of GPAs backed by host memory. Every access from host code goes
 * through guest_memory_ptr(), which refuses anything not wholly inside one
 * region, so a GPA from the guest can never reach other host memory.
 */
#ifndef HVKIT_GUEST_MEMORY_H
#define HVKIT_GUEST_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEMORY_MAX_REGIONS 8

struct guest_memory_region {
	uint64_t gpa;  /* page-aligned */
	uint64_t size; /* page multiple */
	uint8_t *hva;  /* host mapping of [gpa, gpa + size) */
	/* The file behind it (a memfd), so a range of guest pages can be
	 * mapped again elsewhere (mirrored VMBus rings); -1 if none. */
	int fd;
	uint64_t fd_offset; /* file offset of gpa */
};

struct guest_memory {
	struct guest_memory_region regions[GUEST_MEMORY_MAX_REGIONS];
	uint32_t count;
};

/* Adds a region; -EINVAL if it (or its host mapping) is not page-aligned,
 * or is empty, wrapping or overlapping; -ENOSPC if the table is full. */
int guest_memory_add(struct guest_memory *m, uint64_t gpa, uint64_t size, void *hva);

/* Same, for a region backed by file fd at fd_offset (page-aligned). */
int guest_memory_add_file(struct guest_memory *m, uint64_t gpa, uint64_t size, void *hva,
			  int fd, uint64_t fd_offset);

/* The file and offset behind the page at gpa: 0, or -ENOENT if the page is
 * outside guest RAM or not file-backed. */
int guest_memory_file_offset(const struct guest_memory *m, uint64_t gpa, int *fd,
			     uint64_t *offset);

/* Host pointer to [gpa, gpa + len), or NULL unless that range lies wholly
 * inside one region. len 0 is refused. */
void *guest_memory_ptr(const struct guest_memory *m, uint64_t gpa, uint64_t len);

/* Host pointer to the 4 KiB page at gpa (page-aligned), or NULL. */
void *guest_memory_page(const struct guest_memory *m, uint64_t gpa);

/* Copies out of / into guest memory; -EFAULT unless wholly inside one region. */
int guest_memory_read(const struct guest_memory *m, uint64_t gpa, void *dst, uint64_t len);
int guest_memory_write(const struct guest_memory *m, uint64_t gpa, const void *src,
		       uint64_t len);

/* Bytes of guest RAM in all regions. */
uint64_t guest_memory_size(const struct guest_memory *m);

#endif /* HVKIT_GUEST_MEMORY_H */
