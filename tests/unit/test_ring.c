/* SPDX-License-Identifier: MIT */
/* The ring buffer engine's rules, one by one, in both memory layouts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ring_fixture.h"

#define SMALL_RING (2 * HV_PAGE_SIZE) /* 4 KiB of data */
#define DATA_SIZE (SMALL_RING - HV_PAGE_SIZE)

static uint8_t rx[1 << 16];

static int setup_plain(void **state)
{
	struct ring_fixture *f = aligned_alloc(_Alignof(struct ring_fixture), sizeof(*f));
	if (!f || ring_fixture_init(f, false, SMALL_RING))
		return -1;
	*state = f;
	return 0;
}

static int setup_mirrored(void **state)
{
	struct ring_fixture *f = aligned_alloc(_Alignof(struct ring_fixture), sizeof(*f));
	if (!f || ring_fixture_init(f, true, SMALL_RING))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	ring_fixture_destroy(*state);
	free(*state);
	return 0;
}

/* Ring bytes of an in-band packet with this much payload. */
static uint32_t inband_ring_bytes(uint32_t payload)
{
	return ((16 + payload + 7) & ~7u) + 8;
}

static int send_inband(struct ring_fixture *f, uint64_t trans_id, const void *payload,
		       uint32_t len, bool *signal)
{
	struct vmbus_ring_iov iov = {payload, len};
	int err = vmbus_ring_put_inband(&f->w, trans_id, 0, &iov, len ? 1 : 0, NULL);
	if (err)
		return err;
	bool s = vmbus_ring_publish(&f->w);
	if (signal)
		*signal = s;
	return 0;
}

static void fill_pattern(uint8_t *p, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7);
}

/* ---- layout ---- */

static void mem_init_rejects_bad_sizes(void **state)
{
	(void)state;
	struct vmbus_ring_mem m;
	static uint8_t buf[3 * HV_PAGE_SIZE];

	assert_int_equal(vmbus_ring_mem_init(&m, buf, HV_PAGE_SIZE, false), -EINVAL);
	assert_int_equal(vmbus_ring_mem_init(&m, buf, 2 * HV_PAGE_SIZE + 8, false), -EINVAL);
	assert_int_equal(vmbus_ring_mem_init(&m, NULL, 2 * HV_PAGE_SIZE, false), -EINVAL);
	assert_int_equal(vmbus_ring_mem_init(&m, buf, 3 * HV_PAGE_SIZE, false), 0);
	assert_int_equal(m.size, 2 * HV_PAGE_SIZE);
	assert_ptr_equal(m.data, buf + HV_PAGE_SIZE);
}

static void map_rejects_unaligned_offsets(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_ring_mapping map;
	struct vmbus_ring_mem mem;
	uint64_t offsets[2] = {0, 100};

	assert_int_equal(vmbus_ring_map(f->fd, offsets, 2, &map, &mem), -EINVAL);
	assert_int_equal(vmbus_ring_map(f->fd, offsets, 1, &map, &mem), -EINVAL);
}

static void reset_advertises_flow_control(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_ring_header *h = f->writer_mem.hdr;

	assert_int_equal(h->write_index, 0);
	assert_int_equal(h->read_index, 0);
	assert_int_equal(h->interrupt_mask, 0);
	assert_int_equal(h->pending_send_sz, 0);
	assert_int_equal(h->feature_bits, VMBUS_RING_FEAT_PENDING_SEND_SZ);
}

static void attach_rejects_bad_indices(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_ring_header *h = f->writer_mem.hdr;
	struct vmbus_ring_writer w;
	struct vmbus_ring_reader r;
	static const uint32_t bad[] = {4, DATA_SIZE, DATA_SIZE + 8, 0xFFFFFFF8u};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		h->write_index = bad[i];
		h->read_index = 0;
		assert_int_equal(vmbus_ring_writer_attach(&w, &f->writer_mem), -EBADMSG);
		assert_int_equal(vmbus_ring_reader_attach(&r, &f->reader_mem), -EBADMSG);
		h->write_index = 0;
		h->read_index = bad[i];
		assert_int_equal(vmbus_ring_writer_attach(&w, &f->writer_mem), -EBADMSG);
		assert_int_equal(vmbus_ring_reader_attach(&r, &f->reader_mem), -EBADMSG);
	}
	/* Attaching to a ring in use picks up where it is. */
	h->write_index = 64;
	h->read_index = 32;
	assert_int_equal(vmbus_ring_writer_attach(&w, &f->writer_mem), 0);
	assert_int_equal(w.write_index, 64);
	assert_int_equal(vmbus_ring_reader_attach(&r, &f->reader_mem), 0);
	assert_int_equal(r.read_index, 32);
}

/* ---- framing ---- */

/* The bytes Linux's hv_ringbuffer_write lays down for a 5-byte in-band
 * packet written at index 0. */
static void inband_packet_byte_image(void **state)
{
	struct ring_fixture *f = *state;
	static const uint8_t expect[40] = {
		0x06, 0x00, 0x02, 0x00, 0x03, 0x00, 0x01, 0x00, /* type 6, off8 2, len8 3, flags 1 */
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* trans_id */
		'h',  'e',  'l',  'l',  'o',  0,    0,    0,    /* payload + padding */
		0,    0,    0,    0,    0,    0,    0,    0,    /* trailer: start 0 << 32 */
		0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, /* untouched */
	};
	struct vmbus_ring_iov iov = {"hello", 5};

	memset(f->writer_mem.data, 0xA5, 64); /* stale bytes */
	assert_int_equal(vmbus_ring_put_inband(&f->w, 0x1122334455667788ull,
					       VMBUS_PKT_FLAG_COMPLETION_REQUESTED, &iov, 1, NULL),
			 0);
	vmbus_ring_publish(&f->w);
	assert_memory_equal(f->writer_mem.data, expect, sizeof(expect));
	assert_int_equal(f->writer_mem.hdr->write_index, 32);

	/* The second packet's trailer records where it started. */
	assert_int_equal(send_inband(f, 2, "x", 1, NULL), 0);
	uint64_t trailer;
	memcpy(&trailer, f->writer_mem.data + 32 + 24, 8);
	assert_int_equal(trailer, 32ull << 32);
}

static void inband_round_trip(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_packet pkt;
	uint8_t payload[300];

	fill_pattern(payload, sizeof(payload), 1);
	assert_int_equal(send_inband(f, 42, payload, sizeof(payload), NULL), 0);
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_int_equal(pkt.type, VMBUS_PKT_DATA_INBAND);
	assert_int_equal(pkt.trans_id, 42);
	assert_int_equal(pkt.len, 16 + 304);
	assert_int_equal(pkt.ext_len, 0);
	assert_int_equal(pkt.data_len, 304); /* padded to 8 */
	assert_memory_equal(pkt.data, payload, sizeof(payload));
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), -EAGAIN);
}

static void empty_ring_has_nothing_to_read(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_packet pkt;

	assert_int_equal(vmbus_ring_peek(&f->r, rx, sizeof(rx), &pkt), -EAGAIN);
	assert_int_equal(vmbus_ring_reader_available(&f->r), 0);
	assert_false(vmbus_ring_commit(&f->r));
	assert_false(vmbus_ring_publish(&f->w));
}

/* Every 8-aligned starting index, with payload sizes that hit every amount of
 * padding and packets that wrap inside the descriptor, the payload and the
 * trailer. */
static void round_trip_wraps_at_every_alignment(void **state)
{
	struct ring_fixture *f = *state;
	static const uint32_t sizes[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 100, 1000, 2040, 4000};
	uint8_t payload[4096];
	struct vmbus_packet pkt;

	for (uint32_t start = 0; start < DATA_SIZE; start += 8) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			uint32_t len = sizes[s];
			ring_fixture_place(f, start);
			fill_pattern(payload, len, start + len);
			assert_int_equal(send_inband(f, start, payload, len, NULL), 0);
			assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
			assert_int_equal(pkt.trans_id, start);
			assert_int_equal(pkt.data_len, (len + 7) & ~7u);
			assert_memory_equal(pkt.data, payload, len);
			uint32_t end = (start + inband_ring_bytes(len)) % DATA_SIZE;
			assert_int_equal(f->w.write_index, end);
			assert_int_equal(f->r.read_index, end);
			/* The trailer (last 8 bytes, possibly wrapped) is start << 32. */
			uint32_t t = (end + DATA_SIZE - 8) % DATA_SIZE;
			uint64_t trailer;
			memcpy(&trailer, f->reader_mem.data + t, 8);
			assert_int_equal(trailer, (uint64_t)start << 32);
		}
	}
}

/* ---- full and empty ---- */

static void full_ring_keeps_one_slot_free(void **state)
{
	struct ring_fixture *f = *state;
	static uint8_t payload[DATA_SIZE];
	uint32_t needed = 0;
	struct vmbus_ring_iov iov = {payload, 8};

	/* The largest packet: free (4096) must exceed it, so 4088 ring bytes. */
	uint32_t big = DATA_SIZE - 8 - 16 - 8;
	assert_int_equal(inband_ring_bytes(big), DATA_SIZE - 8);
	assert_int_equal(send_inband(f, 1, payload, big + 8, NULL), -EMSGSIZE);
	assert_int_equal(send_inband(f, 1, payload, big, NULL), 0);
	assert_int_not_equal(f->writer_mem.hdr->write_index, f->writer_mem.hdr->read_index);
	assert_int_equal(vmbus_ring_writer_free(&f->w), 8);

	/* Nothing more fits, and the writer says how much room it needs. */
	assert_int_equal(vmbus_ring_put_inband(&f->w, 2, 0, &iov, 1, &needed), -EAGAIN);
	assert_int_equal(needed, inband_ring_bytes(8));
	assert_int_equal(f->w.stats.full, 1);

	struct vmbus_packet pkt;
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	vmbus_ring_commit(&f->r);
	assert_int_equal(vmbus_ring_writer_free(&f->w), DATA_SIZE);
}

static void packet_exactly_the_free_space_does_not_fit(void **state)
{
	struct ring_fixture *f = *state;
	static uint8_t payload[DATA_SIZE];

	/* Take 1024 bytes, leaving 3072 free. */
	assert_int_equal(send_inband(f, 1, payload, 1024 - 24, NULL), 0);
	assert_int_equal(vmbus_ring_writer_free(&f->w), 3072);
	/* A packet of exactly 3072 ring bytes would make the indices equal. */
	assert_int_equal(send_inband(f, 2, payload, 3072 - 24, NULL), -EAGAIN);
	assert_int_equal(send_inband(f, 3, payload, 3072 - 32, NULL), 0);
	assert_int_equal(vmbus_ring_writer_free(&f->w), 8);
	assert_int_equal(vmbus_ring_reader_available(&f->r), DATA_SIZE - 8);
}

static void unframeable_packets_are_refused(void **state)
{
	struct ring_fixture *f = *state;
	uint8_t ext[12] = {0};
	struct vmbus_ring_iov iov = {ext, sizeof(ext)};
	struct vmbus_packet_out p = {.type = 6, .ext_len = 4, .iov = &iov, .iov_count = 1};

	assert_int_equal(vmbus_ring_put(&f->w, &p, NULL), -EINVAL); /* ext_len unaligned */
	p.ext_len = 16;
	assert_int_equal(vmbus_ring_put(&f->w, &p, NULL), -EINVAL); /* ext beyond iov */
	struct vmbus_ring_iov huge = {ext, 0x80000};
	p.iov = &huge;
	p.ext_len = 0;
	assert_int_equal(vmbus_packet_out_ring_bytes(&p), 0); /* len8 overflow */
	assert_int_equal(vmbus_ring_put(&f->w, &p, NULL), -EINVAL);
	assert_int_equal(f->w.write_index, 0);
}

static void want_space_counts_unpublished_packets(void **state)
{
	struct ring_fixture *f = *state;
	static uint8_t payload[DATA_SIZE];
	struct vmbus_ring_iov small = {payload, 1000 - 24};
	struct vmbus_ring_iov large = {payload, 3504 - 24};
	uint32_t needed = 0;

	assert_int_equal(vmbus_ring_put_inband(&f->w, 1, 0, &small, 1, NULL), 0);
	assert_int_equal(vmbus_ring_put_inband(&f->w, 2, 0, &large, 1, &needed), -EAGAIN);
	assert_int_equal(needed, 3504);
	/* The reader sees only published bytes: the 1000 still queued count. */
	assert_false(vmbus_ring_writer_want_space(&f->w, needed));
	assert_int_equal(f->writer_mem.hdr->pending_send_sz, 3504 + 1000);
	/* Once published, the threshold is the packet alone. */
	vmbus_ring_publish(&f->w);
	assert_false(vmbus_ring_writer_want_space(&f->w, needed));
	assert_int_equal(f->writer_mem.hdr->pending_send_sz, 3504);
}

/* ---- signaling ---- */

static void publish_signals_only_a_drained_unmasked_reader(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_packet pkt;
	bool signal;

	assert_int_equal(send_inband(f, 1, "a", 1, &signal), 0);
	assert_true(signal); /* empty -> non-empty */
	assert_int_equal(send_inband(f, 2, "b", 1, &signal), 0);
	assert_false(signal); /* reader has not caught up: it is busy */

	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_int_equal(send_inband(f, 3, "c", 1, &signal), 0);
	assert_false(signal); /* consumed but not committed: still not drained */

	while (vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt) == 0)
		;
	vmbus_ring_commit(&f->r);
	assert_int_equal(send_inband(f, 4, "d", 1, &signal), 0);
	assert_true(signal);

	/* A polling reader is never signalled. */
	vmbus_ring_reader_mask(&f->r);
	while (vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt) == 0)
		;
	vmbus_ring_commit(&f->r);
	assert_int_equal(send_inband(f, 5, "e", 1, &signal), 0);
	assert_false(signal);
	assert_int_equal(f->w.stats.signals, 2);
}

static void unmask_reports_data_that_arrived_while_masked(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_packet pkt;

	vmbus_ring_reader_mask(&f->r);
	assert_false(vmbus_ring_reader_unmask(&f->r));
	assert_int_equal(f->writer_mem.hdr->interrupt_mask, 0);

	vmbus_ring_reader_mask(&f->r);
	assert_int_equal(f->writer_mem.hdr->interrupt_mask, 1);
	assert_int_equal(send_inband(f, 1, "a", 1, NULL), 0);
	assert_true(vmbus_ring_reader_unmask(&f->r)); /* must not sleep */
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	vmbus_ring_commit(&f->r);
	assert_false(vmbus_ring_reader_unmask(&f->r));
}

static void batch_is_published_once(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_ring_iov iov = {"abc", 3};
	struct vmbus_packet pkt;

	for (int i = 0; i < 3; i++)
		assert_int_equal(vmbus_ring_put_inband(&f->w, (uint64_t)i, 0, &iov, 1, NULL), 0);
	/* Nothing visible yet. */
	assert_int_equal(f->writer_mem.hdr->write_index, 0);
	assert_int_equal(vmbus_ring_reader_available(&f->r), 0);

	assert_true(vmbus_ring_publish(&f->w));
	assert_false(vmbus_ring_publish(&f->w)); /* nothing new */
	assert_int_equal(f->w.stats.publishes, 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
		assert_int_equal(pkt.trans_id, (uint64_t)i);
	}
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), -EAGAIN);
}

/* Four 1016-byte packets leave 32 bytes; a fifth waits for 1016. */
static void fill_with_four(struct ring_fixture *f)
{
	static uint8_t payload[992];

	for (int i = 0; i < 4; i++)
		assert_int_equal(send_inband(f, (uint64_t)i, payload, sizeof(payload), NULL), 0);
	assert_int_equal(vmbus_ring_writer_free(&f->w), 32);
}

static void consume_one(struct ring_fixture *f)
{
	struct vmbus_packet pkt;
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
}

static void commit_signals_when_free_space_crosses_pending(void **state)
{
	struct ring_fixture *f = *state;

	fill_with_four(f);
	assert_false(vmbus_ring_writer_want_space(&f->w, 1016));
	assert_int_equal(f->writer_mem.hdr->pending_send_sz, 1016);

	consume_one(f);
	assert_true(vmbus_ring_commit(&f->r)); /* 32 -> 1048 free: crossed */
	consume_one(f);
	assert_false(vmbus_ring_commit(&f->r)); /* 1048 -> 2064: was enough */
	assert_int_equal(f->r.stats.signals, 1);

	vmbus_ring_writer_space_done(&f->w);
	assert_int_equal(f->writer_mem.hdr->pending_send_sz, 0);
}

static void commit_does_not_signal_below_pending(void **state)
{
	struct ring_fixture *f = *state;

	fill_with_four(f);
	assert_false(vmbus_ring_writer_want_space(&f->w, 2000));
	consume_one(f);
	assert_false(vmbus_ring_commit(&f->r)); /* 1048 free: not yet */
	consume_one(f);
	assert_true(vmbus_ring_commit(&f->r)); /* 2064 free: now */
}

static void exact_pending_is_not_enough(void **state)
{
	struct ring_fixture *f = *state;

	fill_with_four(f);
	/* The writer needs free > its packet: free == pending is still blocked. */
	assert_false(vmbus_ring_writer_want_space(&f->w, 1048));
	consume_one(f);
	assert_false(vmbus_ring_commit(&f->r)); /* exactly 1048 */
	consume_one(f);
	assert_true(vmbus_ring_commit(&f->r));
}

static void commit_ignores_pending_without_feature_bit(void **state)
{
	struct ring_fixture *f = *state;

	f->writer_mem.hdr->feature_bits = 0;
	fill_with_four(f);
	assert_false(vmbus_ring_writer_want_space(&f->w, 1016));
	consume_one(f);
	assert_false(vmbus_ring_commit(&f->r));
}

static void commit_without_waiting_writer_is_silent(void **state)
{
	struct ring_fixture *f = *state;

	fill_with_four(f);
	consume_one(f);
	assert_false(vmbus_ring_commit(&f->r));
	assert_false(vmbus_ring_commit(&f->r)); /* nothing new to commit */
}

static void want_space_sees_space_already_free(void **state)
{
	struct ring_fixture *f = *state;

	fill_with_four(f);
	consume_one(f);
	vmbus_ring_commit(&f->r);
	/* The reader freed space before the writer armed: no signal will come,
	 * so want_space must say "go ahead". */
	assert_true(vmbus_ring_writer_want_space(&f->w, 1016));
}

/* ---- hardening ---- */

struct raw_desc {
	uint16_t type, offset8, len8, flags;
	uint64_t trans_id;
};

/* Puts raw bytes in the ring and publishes write_index as given. */
static void plant(struct ring_fixture *f, struct raw_desc d, uint32_t write_index)
{
	memset(f->writer_mem.data, 0, 256);
	memcpy(f->writer_mem.data, &d, sizeof(d));
	f->writer_mem.hdr->write_index = write_index;
}

static void expect_corrupt(struct ring_fixture *f)
{
	struct vmbus_packet pkt;

	assert_int_equal(vmbus_ring_peek(&f->r, rx, sizeof(rx), &pkt), -EBADMSG);
	assert_true(f->r.broken);
	assert_int_equal(vmbus_ring_peek(&f->r, rx, sizeof(rx), &pkt), -EBADMSG);
	assert_int_equal(f->r.stats.corrupt, 1);
	assert_int_equal(f->r.read_index, 0);
}

static void reader_rejects_short_packet_length(void **state)
{
	plant(*state, (struct raw_desc){6, 2, 1, 0, 0}, 64);
	expect_corrupt(*state);
}

static void reader_rejects_offset_inside_descriptor(void **state)
{
	plant(*state, (struct raw_desc){6, 1, 4, 0, 0}, 64);
	expect_corrupt(*state);
}

static void reader_rejects_offset_past_length(void **state)
{
	plant(*state, (struct raw_desc){6, 5, 4, 0, 0}, 64);
	expect_corrupt(*state);
}

static void reader_rejects_packet_past_write_index(void **state)
{
	/* 32 bytes + trailer claimed, only 32 published. */
	plant(*state, (struct raw_desc){6, 2, 4, 0, 0}, 32);
	expect_corrupt(*state);
}

static void reader_rejects_huge_length(void **state)
{
	plant(*state, (struct raw_desc){6, 2, 0xFFFF, 0, 0}, 64);
	expect_corrupt(*state);
}

static void reader_rejects_fragment_smaller_than_a_packet(void **state)
{
	plant(*state, (struct raw_desc){6, 2, 2, 0, 0}, 16);
	expect_corrupt(*state);
}

static void reader_rejects_unaligned_write_index(void **state)
{
	plant(*state, (struct raw_desc){6, 2, 2, 0, 0}, 28);
	expect_corrupt(*state);
}

static void reader_rejects_write_index_outside_ring(void **state)
{
	plant(*state, (struct raw_desc){6, 2, 2, 0, 0}, DATA_SIZE);
	expect_corrupt(*state);
}

static void reader_accepts_exact_packet(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_packet pkt;

	/* The boundary of the checks above: len8 2, offset8 2, 24 bytes published. */
	plant(f, (struct raw_desc){0x77, 2, 2, 0, 9}, 24);
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_int_equal(pkt.type, 0x77); /* types are the caller's business */
	assert_int_equal(pkt.data_len, 0);
	assert_false(f->r.broken);
}

static void small_buffer_leaves_packet_in_place(void **state)
{
	struct ring_fixture *f = *state;
	uint8_t payload[100];
	uint8_t small[64];
	struct vmbus_packet pkt;

	fill_pattern(payload, sizeof(payload), 5);
	assert_int_equal(send_inband(f, 7, payload, sizeof(payload), NULL), 0);
	assert_int_equal(vmbus_ring_recv(&f->r, small, sizeof(small), &pkt), -EMSGSIZE);
	assert_int_equal(pkt.len, 120);
	assert_false(f->r.broken);
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_memory_equal(pkt.data, payload, sizeof(payload));
}

static void peeked_copy_is_private(void **state)
{
	struct ring_fixture *f = *state;
	uint8_t payload[64];
	struct vmbus_packet pkt;

	fill_pattern(payload, sizeof(payload), 9);
	assert_int_equal(send_inband(f, 7, payload, sizeof(payload), NULL), 0);
	assert_int_equal(vmbus_ring_peek(&f->r, rx, sizeof(rx), &pkt), 0);
	/* The other side rewrites the packet after validation... */
	memset(f->writer_mem.data, 0xFF, 128);
	/* ...which changes nothing already read. */
	assert_int_equal(pkt.len, 80);
	assert_int_equal(pkt.trans_id, 7);
	assert_memory_equal(pkt.data, payload, sizeof(payload));
	vmbus_ring_advance(&f->r);
	assert_int_equal(f->r.read_index, 88);
}

static void peek_then_advance_consumes_once(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_packet pkt;

	assert_int_equal(send_inband(f, 1, "a", 1, NULL), 0);
	assert_int_equal(send_inband(f, 2, "b", 1, NULL), 0);
	assert_int_equal(vmbus_ring_peek(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_int_equal(vmbus_ring_peek(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_int_equal(pkt.trans_id, 1); /* peeking twice sees the same packet */
	vmbus_ring_advance(&f->r);
	vmbus_ring_advance(&f->r); /* no packet peeked: no-op */
	assert_int_equal(vmbus_ring_peek(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_int_equal(pkt.trans_id, 2);
}

static void writer_rejects_bad_read_index(void **state)
{
	struct ring_fixture *f = *state;

	f->writer_mem.hdr->read_index = 12;
	assert_int_equal(vmbus_ring_writer_free(&f->w), 0);
	assert_true(f->w.broken);
	assert_int_equal(send_inband(f, 1, "a", 1, NULL), -EBADMSG);
	assert_int_equal(f->w.stats.corrupt, 1);
}

static void writer_refuses_when_read_index_jumps_outside(void **state)
{
	struct ring_fixture *f = *state;

	static uint8_t payload[100];

	fill_with_four(f);
	f->writer_mem.hdr->read_index = DATA_SIZE + 64;
	/* Too big for the free space seen last: the writer must look again. */
	assert_int_equal(send_inband(f, 1, payload, sizeof(payload), NULL), -EBADMSG);
	assert_false(vmbus_ring_writer_want_space(&f->w, 8));
}

/* ---- packet styles ---- */

static void gpa_direct_page_buffers_round_trip(void **state)
{
	struct ring_fixture *f = *state;
	uint64_t p0 = 0x1000, p1 = 0x2000, p2[2] = {0x3000, 0x3001};
	struct vmbus_gpa_range_out ranges[3] = {
		{100, 10, &p0},
		{4096, 0, &p1},
		{50, 4070, p2}, /* crosses into a second page */
	};
	uint8_t payload[40];
	struct vmbus_packet pkt;
	struct vmbus_gpa_range_iter it;
	struct vmbus_gpa_range_in r;

	fill_pattern(payload, sizeof(payload), 3);
	assert_int_equal(vmbus_ring_put_gpa_direct(&f->w, 77, ranges, 3, payload,
						   sizeof(payload), NULL),
			 0);
	vmbus_ring_publish(&f->w);
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_int_equal(pkt.type, VMBUS_PKT_DATA_USING_GPA_DIRECT);
	assert_int_equal(pkt.flags, VMBUS_PKT_FLAG_COMPLETION_REQUESTED);
	/* Linux: descriptor 24 bytes + 16 per page buffer (+8 for the 2-page one). */
	assert_int_equal(pkt.ext_len, 8 + 16 + 16 + 24);
	assert_memory_equal(pkt.data, payload, sizeof(payload));

	assert_int_equal(vmbus_gpa_ranges_begin(&pkt, &it), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vmbus_gpa_ranges_next(&it, &r), 1);
		assert_int_equal(r.byte_count, ranges[i].byte_count);
		assert_int_equal(r.byte_offset, ranges[i].byte_offset);
		assert_int_equal(r.pfn_count, i == 2 ? 2 : 1);
		for (uint32_t j = 0; j < r.pfn_count; j++)
			assert_int_equal(vmbus_gpa_range_pfn(&r, j), ranges[i].pfns[j]);
	}
	assert_int_equal(vmbus_gpa_ranges_next(&it, &r), 0);
}

static void gpa_direct_multipage_round_trip(void **state)
{
	struct ring_fixture *f = *state;
	uint64_t pfns[5] = {10, 11, 12, 200, 13};
	struct vmbus_gpa_range_out range = {5 * 4096 - 200, 100, pfns};
	struct vmbus_packet pkt;
	struct vmbus_gpa_range_iter it;
	struct vmbus_gpa_range_in r;

	assert_int_equal(vmbus_ring_put_gpa_direct(&f->w, 5, &range, 1, "req", 3, NULL), 0);
	vmbus_ring_publish(&f->w);
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	/* Linux's vmbus_packet_mpb_array: 32 bytes + 8 per PFN. */
	assert_int_equal(16 + pkt.ext_len, 32 + 5 * 8);
	assert_int_equal(vmbus_gpa_ranges_begin(&pkt, &it), 0);
	assert_int_equal(vmbus_gpa_ranges_next(&it, &r), 1);
	assert_int_equal(r.pfn_count, 5);
	assert_int_equal(vmbus_gpa_range_pfn(&r, 3), 200);
	assert_int_equal(vmbus_gpa_ranges_next(&it, &r), 0);
	assert_memory_equal(pkt.data, "req", 3);
}

static void gpa_direct_writer_refuses_bad_ranges(void **state)
{
	struct ring_fixture *f = *state;
	uint64_t pfn = 1;
	struct vmbus_gpa_range_out zero = {0, 0, &pfn};
	struct vmbus_gpa_range_out far = {1, 4096, &pfn};
	struct vmbus_gpa_range_out many[VMBUS_RING_MAX_GPA_RANGES + 1];

	for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++)
		many[i] = (struct vmbus_gpa_range_out){1, 0, &pfn};
	assert_int_equal(vmbus_ring_put_gpa_direct(&f->w, 1, &zero, 1, NULL, 0, NULL), -EINVAL);
	assert_int_equal(vmbus_ring_put_gpa_direct(&f->w, 1, &far, 1, NULL, 0, NULL), -EINVAL);
	assert_int_equal(vmbus_ring_put_gpa_direct(&f->w, 1, many, VMBUS_RING_MAX_GPA_RANGES + 1,
						   NULL, 0, NULL),
			 -EINVAL);
	assert_int_equal(f->w.write_index, 0);
}

/* Sends a GPA-direct packet with a hand-made extension and parses it. */
static int parse_gpa_ext(struct ring_fixture *f, const void *ext, uint32_t ext_len,
			 uint16_t type)
{
	struct vmbus_ring_iov iov = {ext, ext_len};
	struct vmbus_packet_out p = {.type = type, .ext_len = ext_len, .iov = &iov, .iov_count = 1};
	struct vmbus_packet pkt;
	struct vmbus_gpa_range_iter it;
	struct vmbus_gpa_range_in r;
	int err;

	ring_fixture_place(f, 0);
	assert_int_equal(vmbus_ring_send(&f->w, &p, NULL), 0);
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	err = vmbus_gpa_ranges_begin(&pkt, &it);
	while (err == 0 && (err = vmbus_gpa_ranges_next(&it, &r)) == 1)
		err = 0;
	return err;
}

static void gpa_ranges_reject_malformed_extensions(void **state)
{
	struct ring_fixture *f = *state;
	uint32_t ok[6] = {0, 1, 100, 0, 7, 0};            /* one range, one PFN */
	uint32_t count_too_big[6] = {0, 2, 100, 0, 7, 0};  /* two ranges claimed */
	uint32_t offset_too_big[6] = {0, 1, 1, 4096, 7, 0};
	uint32_t zero_count[6] = {0, 1, 0, 0, 7, 0};
	uint32_t pfns_missing[6] = {0, 1, 4097, 0, 7, 0}; /* needs 2 PFNs */
	uint32_t huge_count[6] = {0, 0xFFFFFFFFu, 1, 0, 7, 0};
	uint32_t pfn_overflow[6] = {0, 1, 0xFFFFFFFFu, 4095, 7, 0};
	/* PFNs: the last of a 52-bit GPA, one past it (pfn * 4096 would need
	 * 53 bits), and one whose pfn * 4096 wraps to a small GPA. */
	uint32_t pfn_last[6] = {0, 1, 100, 0, 0xFFFFFFFFu, 0xFF};
	uint32_t pfn_past[6] = {0, 1, 100, 0, 0, 0x100};
	uint32_t pfn_wraps[6] = {0, 1, 100, 0, 7, 0x00100000};

	assert_int_equal(parse_gpa_ext(f, ok, sizeof(ok), VMBUS_PKT_DATA_USING_GPA_DIRECT), 0);
	assert_int_equal(parse_gpa_ext(f, ok, sizeof(ok), VMBUS_PKT_DATA_INBAND), -EBADMSG);
	assert_int_equal(parse_gpa_ext(f, ok, 0, VMBUS_PKT_DATA_USING_GPA_DIRECT), -EBADMSG);
	assert_int_equal(parse_gpa_ext(f, count_too_big, sizeof(count_too_big),
				       VMBUS_PKT_DATA_USING_GPA_DIRECT),
			 -EBADMSG);
	assert_int_equal(parse_gpa_ext(f, offset_too_big, sizeof(offset_too_big),
				       VMBUS_PKT_DATA_USING_GPA_DIRECT),
			 -EBADMSG);
	assert_int_equal(parse_gpa_ext(f, zero_count, sizeof(zero_count),
				       VMBUS_PKT_DATA_USING_GPA_DIRECT),
			 -EBADMSG);
	assert_int_equal(parse_gpa_ext(f, pfns_missing, sizeof(pfns_missing),
				       VMBUS_PKT_DATA_USING_GPA_DIRECT),
			 -EBADMSG);
	assert_int_equal(parse_gpa_ext(f, huge_count, sizeof(huge_count),
				       VMBUS_PKT_DATA_USING_GPA_DIRECT),
			 -EBADMSG);
	assert_int_equal(parse_gpa_ext(f, pfn_overflow, sizeof(pfn_overflow),
				       VMBUS_PKT_DATA_USING_GPA_DIRECT),
			 -EBADMSG);
	assert_int_equal(parse_gpa_ext(f, pfn_last, sizeof(pfn_last),
				       VMBUS_PKT_DATA_USING_GPA_DIRECT),
			 0);
	assert_int_equal(parse_gpa_ext(f, pfn_past, sizeof(pfn_past),
				       VMBUS_PKT_DATA_USING_GPA_DIRECT),
			 -EBADMSG);
	assert_int_equal(parse_gpa_ext(f, pfn_wraps, sizeof(pfn_wraps),
				       VMBUS_PKT_DATA_USING_GPA_DIRECT),
			 -EBADMSG);
}

static void xfer_pages_round_trip(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_xfer_page_range ranges[3] = {{1514, 0}, {60, 4096}, {9000, 8192}};
	struct vmbus_packet pkt;
	struct vmbus_xfer_pages_in x;

	assert_int_equal(vmbus_ring_put_xfer_pages(&f->w, 3, 0xCAFE, ranges, 3, "nvsp", 4, NULL),
			 0);
	vmbus_ring_publish(&f->w);
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_int_equal(pkt.type, VMBUS_PKT_DATA_USING_XFER_PAGES);
	assert_int_equal(16 + pkt.ext_len, sizeof(struct vmbus_packet_xfer_pages) + 3 * 8);
	assert_int_equal(vmbus_xfer_pages_parse(&pkt, &x), 0);
	assert_int_equal(x.pageset_id, 0xCAFE);
	assert_int_equal(x.range_count, 3);
	for (uint32_t i = 0; i < 3; i++) {
		struct vmbus_xfer_page_range r = vmbus_xfer_pages_range(&x, i);
		assert_int_equal(r.byte_count, ranges[i].byte_count);
		assert_int_equal(r.byte_offset, ranges[i].byte_offset);
	}
	assert_memory_equal(pkt.data, "nvsp", 4);
}

static void xfer_pages_reject_overlong_range_count(void **state)
{
	struct ring_fixture *f = *state;
	uint32_t ext[4] = {1, 2, 100, 0}; /* 2 ranges claimed, room for 1 */
	struct vmbus_ring_iov iov = {ext, sizeof(ext)};
	struct vmbus_packet_out p = {.type = VMBUS_PKT_DATA_USING_XFER_PAGES,
				     .ext_len = sizeof(ext),
				     .iov = &iov,
				     .iov_count = 1};
	struct vmbus_packet pkt;
	struct vmbus_xfer_pages_in x;

	assert_int_equal(vmbus_ring_send(&f->w, &p, NULL), 0);
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_int_equal(vmbus_xfer_pages_parse(&pkt, &x), -EBADMSG);
	pkt.type = VMBUS_PKT_DATA_INBAND;
	assert_int_equal(vmbus_xfer_pages_parse(&pkt, &x), -EBADMSG);
}

static void completion_round_trip(void **state)
{
	struct ring_fixture *f = *state;
	struct vmbus_packet pkt;

	assert_int_equal(vmbus_ring_put_completion(&f->w, 0xABCDEF, "done", 4, NULL), 0);
	assert_int_equal(vmbus_ring_put_completion(&f->w, 5, NULL, 0, NULL), 0);
	vmbus_ring_publish(&f->w);
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_int_equal(pkt.type, VMBUS_PKT_COMP);
	assert_int_equal(pkt.flags, 0);
	assert_int_equal(pkt.trans_id, 0xABCDEF);
	assert_memory_equal(pkt.data, "done", 4);
	assert_int_equal(vmbus_ring_recv(&f->r, rx, sizeof(rx), &pkt), 0);
	assert_int_equal(pkt.data_len, 0);
}

/* Each rule once per memory layout: single mapping and mirrored. */
#define BOTH(fn)                                                                  \
	{#fn " (single mapping)", fn, setup_plain, teardown, NULL},                \
		{#fn " (mirrored)", fn, setup_mirrored, teardown, NULL}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mem_init_rejects_bad_sizes),
		cmocka_unit_test_setup_teardown(map_rejects_unaligned_offsets, setup_mirrored,
						teardown),
		BOTH(reset_advertises_flow_control),
		BOTH(attach_rejects_bad_indices),
		BOTH(inband_packet_byte_image),
		BOTH(inband_round_trip),
		BOTH(empty_ring_has_nothing_to_read),
		BOTH(round_trip_wraps_at_every_alignment),
		BOTH(full_ring_keeps_one_slot_free),
		BOTH(packet_exactly_the_free_space_does_not_fit),
		BOTH(unframeable_packets_are_refused),
		BOTH(want_space_counts_unpublished_packets),
		BOTH(publish_signals_only_a_drained_unmasked_reader),
		BOTH(unmask_reports_data_that_arrived_while_masked),
		BOTH(batch_is_published_once),
		BOTH(commit_signals_when_free_space_crosses_pending),
		BOTH(commit_does_not_signal_below_pending),
		BOTH(exact_pending_is_not_enough),
		BOTH(commit_ignores_pending_without_feature_bit),
		BOTH(commit_without_waiting_writer_is_silent),
		BOTH(want_space_sees_space_already_free),
		BOTH(reader_rejects_short_packet_length),
		BOTH(reader_rejects_offset_inside_descriptor),
		BOTH(reader_rejects_offset_past_length),
		BOTH(reader_rejects_packet_past_write_index),
		BOTH(reader_rejects_huge_length),
		BOTH(reader_rejects_fragment_smaller_than_a_packet),
		BOTH(reader_rejects_unaligned_write_index),
		BOTH(reader_rejects_write_index_outside_ring),
		BOTH(reader_accepts_exact_packet),
		BOTH(small_buffer_leaves_packet_in_place),
		BOTH(peeked_copy_is_private),
		BOTH(peek_then_advance_consumes_once),
		BOTH(writer_rejects_bad_read_index),
		BOTH(writer_refuses_when_read_index_jumps_outside),
		BOTH(gpa_direct_page_buffers_round_trip),
		BOTH(gpa_direct_multipage_round_trip),
		BOTH(gpa_direct_writer_refuses_bad_ranges),
		BOTH(gpa_ranges_reject_malformed_extensions),
		BOTH(xfer_pages_round_trip),
		BOTH(xfer_pages_reject_overlong_range_count),
		BOTH(completion_round_trip),
	};
	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
