/* SPDX-License-Identifier: MIT */
/*
 * The VMBus channel ring buffer: its header page and the packets inside.
 *
 * Checked against Linux 6.1:
 *   include/linux/hyperv.h    (struct hv_ring_buffer, vmpacket_descriptor,
 *                              packet types, GPA-direct, transfer pages,
 *                              page and multi-page buffers)
 *   drivers/hv/ring_buffer.c  (trailer, full/empty rule, signaling)
 *   drivers/hv/channel.c      (how each packet style is framed)
 *
 * A channel's GPADL holds two rings, each a 4 KiB header page followed by a
 * data area: guest-to-host ("outbound" for the guest) at page 0, host-to-
 * guest at the OPENCHANNEL downstream page offset. read_index/write_index are
 * byte offsets into the data area. Every packet starts 8-byte aligned, is
 * len8 * 8 bytes long, and is followed by an 8-byte trailer.
 */
#ifndef HVKIT_RING_H
#define HVKIT_RING_H

#include <stddef.h>
#include <stdint.h>

#include "hvkit/tlfs.h"
#include "hvkit/vmbus.h"

/* The header page. Every field is naturally aligned, so the struct is not
 * packed: the ring engine uses atomic loads and stores on the indices. */
struct vmbus_ring_header {
	uint32_t write_index;     /* owned by the writer */
	uint32_t read_index;      /* owned by the reader */
	uint32_t interrupt_mask;  /* set by the reader: "I am polling, don't signal" */
	uint32_t pending_send_sz; /* set by a blocked writer: "signal me at this much free" */
	uint32_t reserved1[12];
	uint32_t feature_bits;
	uint8_t reserved2[HV_PAGE_SIZE - 68];
};

/*
 * feature_bits bit 0 (set by a ring's writer): the writer sets
 * pending_send_sz when blocked, and the reader must honour it.
 */
#define VMBUS_RING_FEAT_PENDING_SEND_SZ 0x1u

#define VMBUS_RING_HEADER_SIZE HV_PAGE_SIZE
/* Each packet is followed by (packet start write index << 32). */
#define VMBUS_RING_TRAILER_SIZE 8u
#define VMBUS_PACKET_ALIGN 8u

enum vmbus_packet_type {
	VMBUS_PKT_INVALID = 0x0,
	VMBUS_PKT_SYNCH = 0x1,
	VMBUS_PKT_ADD_XFER_PAGESET = 0x2,
	VMBUS_PKT_RM_XFER_PAGESET = 0x3,
	VMBUS_PKT_ESTABLISH_GPADL = 0x4,
	VMBUS_PKT_TEARDOWN_GPADL = 0x5,
	VMBUS_PKT_DATA_INBAND = 0x6,
	VMBUS_PKT_DATA_USING_XFER_PAGES = 0x7,
	VMBUS_PKT_DATA_USING_GPADL = 0x8,
	VMBUS_PKT_DATA_USING_GPA_DIRECT = 0x9,
	VMBUS_PKT_CANCEL_REQUEST = 0xa,
	VMBUS_PKT_COMP = 0xb,
	VMBUS_PKT_DATA_USING_ADDITIONAL_PKT = 0xc,
	VMBUS_PKT_ADDITIONAL_DATA = 0xd,
};

#define VMBUS_PKT_FLAG_COMPLETION_REQUESTED 0x1u

/* Every packet starts with this. offset8 * 8 is where the payload starts,
 * len8 * 8 the whole packet without the trailer. */
struct vmbus_packet_desc {
	uint16_t type;
	uint16_t offset8;
	uint16_t len8;
	uint16_t flags;
	uint64_t trans_id;
} __attribute__((packed));

/* The largest packet the 16-bit len8 can describe. */
#define VMBUS_PACKET_MAX_LEN (0xFFFFu * 8u)

/*
 * GPA-direct packet (type 9): range_count ranges, each a struct
 * vmbus_gpa_range with the PFNs its byte_offset + byte_count spans. Linux
 * sends two shapes of it:
 *  - page buffers (vmbus_sendpacket_pagebuffer): up to 32 one-PFN ranges,
 *    each laid out as struct vmbus_page_buffer;
 *  - a multi-page buffer (vmbus_sendpacket_mpb_desc): one range with many
 *    PFNs.
 */
struct vmbus_packet_gpa_direct {
	struct vmbus_packet_desc d;
	uint32_t reserved;
	uint32_t range_count;
	/* struct vmbus_gpa_range range[range_count] follows */
} __attribute__((packed));

struct vmbus_page_buffer {
	uint32_t len;
	uint32_t offset;
	uint64_t pfn;
} __attribute__((packed));

#define VMBUS_MAX_PAGE_BUFFER_COUNT 32
#define VMBUS_MAX_MULTIPAGE_BUFFER_COUNT 32

/*
 * Transfer-page packet (type 7, host to guest in netvsc): the payload lives
 * in a transfer page set (a GPADL the guest shared earlier); each range is a
 * byte offset and count into it.
 */
struct vmbus_xfer_page_range {
	uint32_t byte_count;
	uint32_t byte_offset;
} __attribute__((packed));

struct vmbus_packet_xfer_pages {
	struct vmbus_packet_desc d;
	uint16_t xfer_pageset_id;
	uint8_t sender_owns_set;
	uint8_t reserved;
	uint32_t range_count;
	/* struct vmbus_xfer_page_range ranges[range_count] follows */
} __attribute__((packed));

/* ESTABLISH_GPADL / TEARDOWN_GPADL and ADD/RM_XFER_PAGESET packets (types
 * 2..5); Linux defines them but no driver sends them. */
struct vmbus_packet_gpadl_header {
	struct vmbus_packet_desc d;
	uint32_t gpadl;
	uint32_t reserved;
} __attribute__((packed));

struct vmbus_packet_xfer_pageset {
	struct vmbus_packet_desc d;
	uint32_t gpadl;
	uint16_t xfer_pageset_id;
	uint16_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct vmbus_ring_header) == HV_PAGE_SIZE, "ring header page");
_Static_assert(offsetof(struct vmbus_ring_header, read_index) == 4, "read_index");
_Static_assert(offsetof(struct vmbus_ring_header, interrupt_mask) == 8, "mask");
_Static_assert(offsetof(struct vmbus_ring_header, pending_send_sz) == 12, "pending");
_Static_assert(offsetof(struct vmbus_ring_header, feature_bits) == 64, "features");
_Static_assert(sizeof(struct vmbus_packet_desc) == 16, "packet descriptor");
_Static_assert(offsetof(struct vmbus_packet_desc, len8) == 4, "len8");
_Static_assert(offsetof(struct vmbus_packet_desc, trans_id) == 8, "trans_id");
_Static_assert(sizeof(struct vmbus_packet_gpa_direct) == 24, "GPA-direct header");
_Static_assert(sizeof(struct vmbus_page_buffer) == 16, "page buffer");
_Static_assert(sizeof(struct vmbus_page_buffer) == sizeof(struct vmbus_gpa_range) + 8,
	       "a page buffer is a one-PFN GPA range");
_Static_assert(sizeof(struct vmbus_xfer_page_range) == 8, "transfer range");
_Static_assert(sizeof(struct vmbus_packet_xfer_pages) == 24, "transfer-page header");
_Static_assert(offsetof(struct vmbus_packet_xfer_pages, range_count) == 20, "ranges");
_Static_assert(sizeof(struct vmbus_packet_gpadl_header) == 24, "gpadl packet");
_Static_assert(sizeof(struct vmbus_packet_xfer_pageset) == 24, "pageset packet");
/* Linux's MAX_PAGE_BUFFER_PACKET / MAX_MULTIPAGE_BUFFER_PACKET. */
_Static_assert(sizeof(struct vmbus_packet_gpa_direct) +
			       VMBUS_MAX_PAGE_BUFFER_COUNT * sizeof(struct vmbus_page_buffer) ==
		       0x18 + 512,
	       "largest page-buffer descriptor");

#endif /* HVKIT_RING_H */
