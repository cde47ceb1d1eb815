/* SPDX-License-Identifier: MIT */
/*
 * The ring engine facing a hostile peer: an arbitrary header page and data
 * area. The reader must never crash, hang or touch memory outside the ring
 * and its own buffer; the writer must never write outside the ring whatever
 * read_index it is shown.
 *
 * Input: byte 0 options (bit 0 mirrored, bits 2:1 data pages - 1, bit 3 a
 * small receive buffer), 20 bytes of header (write_index, read_index,
 * interrupt_mask, pending_send_sz, feature_bits), then the data area.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring_buffer.h"

#define MAX_STEPS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_extension(const struct vmbus_packet *pkt)
{
	struct vmbus_gpa_range_iter it;
	struct vmbus_gpa_range_in r;
	struct vmbus_xfer_pages_in x;
	volatile uint64_t sink = 0;

	if (vmbus_gpa_ranges_begin(pkt, &it) == 0) {
		while (vmbus_gpa_ranges_next(&it, &r) == 1)
			for (uint32_t i = 0; i < r.pfn_count; i++)
				sink += vmbus_gpa_range_pfn(&r, i);
	}
	if (vmbus_xfer_pages_parse(pkt, &x) == 0) {
		for (uint32_t i = 0; i < x.range_count; i++)
			sink += vmbus_xfer_pages_range(&x, i).byte_offset;
	}
	for (uint32_t i = 0; i < pkt->data_len; i++)
		sink += pkt->data[i];
	(void)sink;
}

static void drain(struct vmbus_ring_reader *r, uint32_t first_buflen)
{
	static uint8_t buf[4 * HV_PAGE_SIZE];
	struct vmbus_packet pkt;

	for (int step = 0; step < MAX_STEPS; step++) {
		int err = vmbus_ring_recv(r, buf, step == 0 ? first_buflen : sizeof(buf), &pkt);
		if (err == -EMSGSIZE)
			err = vmbus_ring_recv(r, buf, sizeof(buf), &pkt);
		if (err)
			break;
		parse_extension(&pkt);
		if (step % 4 == 3)
			vmbus_ring_commit(r);
	}
	vmbus_ring_commit(r);
	if (!vmbus_ring_reader_unmask(r))
		vmbus_ring_reader_mask(r);
}

static void write_some(struct vmbus_ring_writer *w)
{
	static const uint8_t payload[600];
	uint64_t pfns[3] = {1, 2, 3};
	struct vmbus_gpa_range_out range = {9000, 100, pfns};
	struct vmbus_xfer_page_range xr = {10, 20};
	struct vmbus_ring_iov iov = {payload, sizeof(payload)};
	uint32_t needed = 0;

	for (int i = 0; i < 8; i++) {
		int err = vmbus_ring_put_inband(w, (uint64_t)i, 0, &iov, 1, &needed);
		if (err == -EAGAIN)
			vmbus_ring_writer_want_space(w, needed);
		vmbus_ring_put_gpa_direct(w, 1, &range, 1, payload, 17, NULL);
		vmbus_ring_put_xfer_pages(w, 2, 3, &xr, 1, payload, 5, NULL);
		vmbus_ring_put_completion(w, 3, payload, 8, NULL);
		vmbus_ring_publish(w);
	}
	vmbus_ring_writer_space_done(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 21)
		return 0;
	uint8_t options = data[0];
	bool mirrored = options & 1;
	uint32_t data_pages = 1 + ((options >> 1) & 3);
	uint32_t first_buflen = (options & 8) ? 64 : 4 * HV_PAGE_SIZE;
	size_t ring_bytes = (size_t)(1 + data_pages) * HV_PAGE_SIZE;
	size_t data_bytes = (size_t)data_pages * HV_PAGE_SIZE;
	/* A mirrored ring is emulated by a second copy of the data pages; what
	 * matters is that nothing goes past the allocation. */
	size_t alloc = ring_bytes + (mirrored ? data_bytes : 0);
	uint8_t *mem = aligned_alloc(HV_PAGE_SIZE, alloc);
	if (!mem)
		return 0;
	memset(mem, 0, alloc);
	memcpy(mem, data + 1, 16);       /* indices, mask, pending */
	memcpy(mem + 64, data + 17, 4);  /* feature bits */
	size_t body = size - 21 < data_bytes ? size - 21 : data_bytes;
	memcpy(mem + HV_PAGE_SIZE, data + 21, body);
	if (mirrored)
		memcpy(mem + ring_bytes, mem + HV_PAGE_SIZE, data_bytes);

	struct vmbus_ring_mem ring;
	struct vmbus_ring_reader r;
	struct vmbus_ring_writer w;
	if (vmbus_ring_mem_init(&ring, mem, ring_bytes, mirrored) == 0) {
		if (vmbus_ring_reader_attach(&r, &ring) == 0)
			drain(&r, first_buflen);
		if (vmbus_ring_writer_attach(&w, &ring) == 0)
			write_some(&w);
	}
	free(mem);
	return 0;
}
