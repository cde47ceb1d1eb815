/* SPDX-License-Identifier: MIT */
/* A ring with a writer and a reader on it, in either memory layout. */
#ifndef HVKIT_TEST_RING_FIXTURE_H
#define HVKIT_TEST_RING_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring_buffer.h"
#include "ring_map.h"

struct ring_fixture {
	bool mirrored;
	size_t ring_bytes;
	void *plain;                          /* single mapping: ordinary memory */
	int fd;                               /* mirrored: the memfd... */
	struct vmbus_ring_mapping writer_map; /* ...mapped once for each side */
	struct vmbus_ring_mapping reader_map;
	struct vmbus_ring_mem writer_mem;
	struct vmbus_ring_mem reader_mem;
	/* Apart, as in two address spaces: threads update each on every packet. */
	_Alignas(128) struct vmbus_ring_writer w;
	_Alignas(128) struct vmbus_ring_reader r;
};

/* A fresh ring of ring_bytes (header included); 0 or a negative errno. */
int ring_fixture_init(struct ring_fixture *f, bool mirrored, size_t ring_bytes);
void ring_fixture_destroy(struct ring_fixture *f);

/* Moves both indices to idx (as if that many bytes had passed) and
 * re-attaches the writer and the reader. */
void ring_fixture_place(struct ring_fixture *f, uint32_t idx);

#endif
