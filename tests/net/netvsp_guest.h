/* SPDX-License-Identifier: MIT */
/*
 * A scripted netvsc guest for netvsp tests (reusable by later NIC tests):
 * it drives a NIC through the VMBus server fixture (tests/vmbus_server/
 * vmbus_fixture.h) the way Linux 6.1 drivers/net/hyperv does — NVSP
 * version, NDIS config and version, receive and send buffers by GPADL,
 * RNDIS requests over GPA-direct pages or send sections, receive
 * indications read from the receive buffer and completed.
 *
 * Functions assert what a correct host does; the raw senders let tests
 * play a guest that lies.
 */
#ifndef HVKIT_TESTS_NETVSP_GUEST_H
#define HVKIT_TESTS_NETVSP_GUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "netvsp.h"
#include "vmbus_fixture.h"

#define NG_RECV_PAGES 256u /* 1 MiB receive buffer */
#define NG_SEND_PAGES 64u  /* 256 KiB send buffer: 42 sections of 6144 */
#define NG_MAX_CHANS 8u
#define NG_RECV_GPADL 0x1000u
#define NG_SEND_GPADL 0x2000u

/* One range of a transfer-page packet that arrived while the guest waited
 * for something else (a reflected frame before its send completion). */
struct ng_xfer {
	uint64_t tid;
	uint16_t pageset;
	uint32_t ranges;            /* in its packet */
	uint32_t range;             /* which of them this is */
	uint32_t off, count;
	uint32_t nvsp_type, channel_type;
};

#define NG_STASH_MAX 1024u

struct ng_stash {
	struct ng_xfer x[NG_STASH_MAX];
	uint32_t head, n;
};

struct ng_chan {
	bool open;
	struct vf_chan c;
};

struct ng {
	struct vfix *f;
	bool owns_f;
	uint32_t gpadl_base;         /* instance << 16: handles unique per NIC */
	struct netvsp *nic;
	struct netvsp_loopback *lb;
	struct netvsp_config cfg;
	uint32_t relid;              /* the primary's */
	struct ng_chan ch[NG_MAX_CHANS];
	uint32_t version;
	uint64_t recv_pfn, send_pfn; /* first page of each buffer */
	/* Set before ng_buffers: the send buffer's pages go into its GPADL
	 * out of order (as a Linux guest's vmalloc'd buffer), so no section
	 * is one run of pages and the host gathers instead of reading in
	 * place. Write the buffer with ng_send_buf_write. */
	bool send_scattered;
	uint64_t send_pfns[NG_SEND_PAGES]; /* the send GPADL's pages, in order */
	uint32_t recv_section_size, recv_sections;
	uint32_t send_section_size;
	uint32_t next_section;       /* send sections used round-robin */
	uint64_t next_tid;
	uint8_t mac[6];              /* from the RNDIS query */
	uint32_t vf_messages;        /* VF association messages seen */
	uint32_t send_table[NVSP_SEND_TABLE_SIZE];
	bool have_table;
	struct ng_stash stash[NG_MAX_CHANS];
	uint64_t scratch_pfn;        /* pages for GPA-direct data */
	uint8_t *frame_buf;          /* one RNDIS message being built or read */
};

/* A server, a NIC (cfg: NULL for defaults; a loopback backend reflecting
 * unless reflect is false), the guest connected with the primary open. */
struct ng *ng_new(const struct netvsp_config *cfg, bool reflect);
/* The same with ring_pages pages for each direction of the primary (16 in
 * ng_new). */
struct ng *ng_new_ring(const struct netvsp_config *cfg, bool reflect, uint32_t ring_pages);
/* Another NIC (cfg->instance must differ) on first's server and guest,
 * hot-added. Free it before first. */
struct ng *ng_new_on(struct ng *first, const struct netvsp_config *cfg, bool reflect);
void ng_free(struct ng *g);
/* A snapshot and restore of g's own server (not one shared with another
 * NIC): the NIC's work finished, the server's state saved, NIC and server
 * dropped without a word to the guest, new ones on the same guest memory
 * and backend loaded from it. The guest's channels go on as they were. */
void ng_restore(struct ng *g);
/* The same with the new NIC configured as cfg (NULL: as before); the
 * load's result (the guest's channels go on only if it is 0). */
int ng_restore_as(struct ng *g, const struct netvsp_config *cfg);

/* Writes an in-band NVSP message on channel i (completion requested if
 * asked) and lets the host run. */
void ng_send_nvsp(struct ng *g, uint32_t i, uint64_t tid, const void *msg, uint32_t len,
		  bool completion);
/* Writes a GPA-direct packet: payload msg, data at the guest's pages. */
void ng_send_gpa(struct ng *g, uint32_t i, uint64_t tid, const struct vmbus_gpa_range_out *r,
		 uint32_t n, const void *msg, uint32_t len);
/* Writes a completion (type 11) for tid carrying msg. */
void ng_send_completion(struct ng *g, uint32_t i, uint64_t tid, const void *msg, uint32_t len);

/* The next packet from the host on channel i (asserted present), copied
 * into buf. false if the ring is empty. */
bool ng_recv(struct ng *g, uint32_t i, uint8_t *buf, uint32_t cap, struct vmbus_packet *pkt);

/* INIT with min == max == version, as netvsc_connect_vsp; returns the
 * INIT_COMPLETE status. On success sends NDIS config and version. */
uint32_t ng_init(struct ng *g, uint32_t version);
/* Receive and send buffers as netvsc_init_buf; asserts success. */
void ng_buffers(struct ng *g);

/* One RNDIS request (bytes req) over GPA-direct pages (or a send section
 * if via_section); takes its completion and the answer from the receive
 * buffer (copied to resp, returns its length) and completes that. */
uint32_t ng_rndis(struct ng *g, const void *req, uint32_t len, bool via_section, uint8_t *resp,
		  uint32_t cap);
/* The next RNDIS control message from the host (an answer or an
 * indication) waiting on the primary; completes it. Returns its length,
 * 0 if none. */
uint32_t ng_rndis_next(struct ng *g, uint8_t *resp, uint32_t cap);
/* RNDIS INIT, MAC query, packet filter set (directed, broadcast). */
void ng_rndis_up(struct ng *g);
/* The whole of Linux's bring-up: ng_init, ng_buffers, ng_rndis_up. */
void ng_up(struct ng *g, uint32_t version);

/* Writes bytes at offset off of the send buffer, through its page list. */
void ng_send_buf_write(struct ng *g, uint32_t off, const void *bytes, uint32_t len);

/* Sends a frame as netvsc_xmit does, in a send section (via_section) or
 * GPA-direct from pages, on channel i; asserts the send completion. */
void ng_send_frame(struct ng *g, uint32_t i, const uint8_t *frame, uint32_t len,
		   bool via_section);
/* The same packet in a send section, put and published but not signalled
 * (as a guest that finds the host masked): its transaction id, and in
 * *signal whether the ring said the host must be signalled. */
uint64_t ng_post_frame(struct ng *g, uint32_t i, const uint8_t *frame, uint32_t len,
		       bool *signal);
/* The successful send completion of tid (asserted the next on channel i). */
void ng_take_send_completion(struct ng *g, uint32_t i, uint64_t tid);
/* Receives one frame indicated on channel i: reads the next range of a
 * transfer-page packet, checks it, copies the frame out, completes the
 * packet after its last range. Returns
 * the frame length, 0 if nothing was there. */
uint32_t ng_recv_frame(struct ng *g, uint32_t i, uint8_t *frame, uint32_t cap);
/* The next range received on channel i, its bytes copied to out, not
 * completed (checks as ng_recv_frame's); false if none waits. */
bool ng_take_xfer(struct ng *g, uint32_t i, struct ng_xfer *x, uint8_t *out, uint32_t cap);
/* Completes transfer-page packet tid as Linux does. */
void ng_complete_xfer(struct ng *g, uint32_t i, uint64_t tid);

/* Sub-channels (NVSP 5+): asks for n, takes the completion, the send
 * table and the offers, opens them. Returns how many the host gave. */
uint32_t ng_subchannels(struct ng *g, uint32_t n);

#endif /* HVKIT_TESTS_NETVSP_GUEST_H */
