/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring_fixture.h"

static int attach_both(struct ring_fixture *f)
{
	int err = vmbus_ring_writer_attach(&f->w, &f->writer_mem);
	return err ? err : vmbus_ring_reader_attach(&f->r, &f->reader_mem);
}

int ring_fixture_init(struct ring_fixture *f, bool mirrored, size_t ring_bytes)
{
	int err;

	memset(f, 0, sizeof(*f));
	f->mirrored = mirrored;
	f->ring_bytes = ring_bytes;
	f->fd = -1;
	if (!mirrored) {
		f->plain = aligned_alloc(HV_PAGE_SIZE, ring_bytes);
		if (!f->plain)
			return -ENOMEM;
		memset(f->plain, 0xA5, ring_bytes); /* stale bytes must not matter */
		err = vmbus_ring_mem_init(&f->writer_mem, f->plain, ring_bytes, false);
		if (err)
			return err;
		f->reader_mem = f->writer_mem;
		vmbus_ring_mem_reset(&f->writer_mem);
		return attach_both(f);
	}

	/* Two independent mappings of one memfd, as a host and a guest have. */
	err = vmbus_ring_map_new(ring_bytes, &f->fd, &f->writer_map, &f->writer_mem);
	if (err)
		return err;
	uint32_t pages = (uint32_t)(ring_bytes / HV_PAGE_SIZE);
	uint64_t *offsets = calloc(pages, sizeof(*offsets));
	if (!offsets)
		return -ENOMEM;
	for (uint32_t i = 0; i < pages; i++)
		offsets[i] = (uint64_t)i * HV_PAGE_SIZE;
	err = vmbus_ring_map(f->fd, offsets, pages, &f->reader_map, &f->reader_mem);
	free(offsets);
	return err ? err : attach_both(f);
}

void ring_fixture_destroy(struct ring_fixture *f)
{
	free(f->plain);
	vmbus_ring_unmap(&f->writer_map);
	vmbus_ring_unmap(&f->reader_map);
	if (f->fd >= 0)
		close(f->fd);
}

void ring_fixture_place(struct ring_fixture *f, uint32_t idx)
{
	f->writer_mem.hdr->read_index = idx;
	f->writer_mem.hdr->write_index = idx;
	attach_both(f);
}
