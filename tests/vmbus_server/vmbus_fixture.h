/* SPDX-License-Identifier: MIT */
/*
 * A fake hypervisor glue for the VMBus server and a scripted guest that
 * talks to it the way Linux 6.1 does.
 *
 * The glue records what the server asks of it (posted messages, signals,
 * channel connections added and removed, log lines), keeps a clock the test
 * moves, and checks the locking contract: a non-recursive lock, held for
 * every op and never taken twice.
 *
 * Guest RAM is a memfd (file-backed, so rings can be mapped mirrored) at
 * GPA 0, plus a small anonymous region that is RAM but not file-backed, and
 * a hole between them that is not RAM at all.
 */
#ifndef HVKIT_TESTS_VMBUS_FIXTURE_H
#define HVKIT_TESTS_VMBUS_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ring_map.h"
#include "vmbus_device.h"
#include "vmbus_server.h"

#define VF_RAM_PAGES 4096u                 /* 16 MiB at GPA 0, memfd-backed */
#define VF_ANON_GPA 0x40000000ull          /* RAM, not file-backed */
#define VF_ANON_PAGES 64u
#define VF_HOLE_PFN (0x20000000ull >> 12)  /* not RAM */
#define VF_VPS 4u

struct vf_msg {
	uint32_t vp, sint, len;
	_Alignas(8) uint8_t data[240];
};

struct vf_signal {
	uint32_t vp, sint, flag;
};

struct vfix {
	struct guest_memory mem;
	int memfd;
	uint8_t *ram;
	uint8_t *anon;
	struct vmbus_server_config cfg;
	struct vmbus_server *s;

	/* The lock contract. */
	pthread_mutex_t mutex;
	bool locked;
	uint64_t lock_count;

	/* What the server did. */
	struct vf_msg *msgs;
	uint32_t n_msgs, cap_msgs, next_msg; /* next_msg: first not yet taken */
	struct vf_signal *sigs;
	uint32_t n_sigs, cap_sigs, next_sig;
	uint32_t conns[256];
	uint32_t n_conns;
	uint32_t conn_adds, conn_removes;
	int fail_connection_add;
	int fail_post;
	uint64_t now;
	uint32_t n_log;
	char last_log[256];

	/* Rescinds a close brought (of the primary's sub-channels), taken
	 * out of the way of the close's GPADL teardown; vf_take_rescind
	 * hands them out first. */
	uint32_t close_rescinds[64];
	uint32_t n_close_rescinds, next_close_rescind;

	uint32_t next_page; /* the guest's page allocator */
	uint32_t version;   /* what the guest negotiated */
};

/* A server with cfg (NULL: VF_VPS VPs, everything else default). */
struct vfix *vf_new(const struct vmbus_server_config *cfg);
void vf_free(struct vfix *f);
/* A new server with f's config on the same guest memory, as a restore
 * has it: the old one is freed without a word to the guest, and what it
 * posted and signalled is skipped. Its devices are the caller's to
 * remove first and add again. */
void vf_replace_server(struct vfix *f);
/* The server's state record (malloc'd; *len its size), asserted saved. */
uint8_t *vf_save(struct vfix *f, size_t *len);

/* ---- The glue side ---- */

/* The device lock, for a test that reads what the glue recorded while
 * device threads may be adding to it. */
void vf_lock(struct vfix *f);
void vf_unlock(struct vfix *f);
/* Posts a message as the glue would (lock held around the call). */
uint16_t vf_send(struct vfix *f, uint32_t connection_id, const void *msg, uint32_t len);
/* HvSignalEvent on relid's channel connection. */
void vf_signal_relid(struct vfix *f, uint32_t relid);
bool vf_conn_active(const struct vfix *f, uint32_t connection_id);

/* Posted messages not taken yet, and taking the next one (asserting its
 * type and, if len != 0, its exact size). */
uint32_t vf_pending(const struct vfix *f);
const struct vf_msg *vf_take(struct vfix *f, uint32_t type, uint32_t len);
/* Signals raised for flag (relid) since the last call. */
uint32_t vf_take_signals(struct vfix *f, uint32_t flag);

struct vmbus_server_stats vf_stats(struct vfix *f);
/* The channel with this relid, by vmbus_server_for_each_channel. */
bool vf_channel(struct vfix *f, uint32_t relid, struct vmbus_server_channel_info *out);
uint32_t vf_count_state(struct vfix *f, enum vmbus_server_channel_state state);

/* ---- The guest side, as Linux builds its messages ---- */

/* INITIATE_CONTACT for version (connection 4 and msg_sint 2 from 5.0,
 * connection 1 and an interrupt page before), target VP 0. Returns the
 * HvPostMessage status. */
uint16_t vf_contact(struct vfix *f, uint32_t version);
/* vf_contact and take the VERSION_RESPONSE; returns version_supported. */
bool vf_negotiate(struct vfix *f, uint32_t version);
/* Tries Linux's versions newest first; returns the one accepted. */
uint32_t vf_connect(struct vfix *f);
/* REQUESTOFFERS; takes every offer up to ALLOFFERS_DELIVERED (asserted
 * last) into out. Returns how many. */
uint32_t vf_request_offers(struct vfix *f, struct vmbus_msg_offer_channel *out, uint32_t max);
void vf_unload(struct vfix *f);
/* The next RESCIND (one a close brought first, else the next posted
 * message, which must be one): its relid. */
uint32_t vf_take_rescind(struct vfix *f);
/* The guest's RELID_RELEASED for relid, accepted. */
void vf_relid_released(struct vfix *f, uint32_t relid);

/* n contiguous guest pages; returns the first PFN. */
uint64_t vf_alloc(struct vfix *f, uint32_t n);
void *vf_page(struct vfix *f, uint64_t pfn);

/* Sends a GPADL as channel.c create_gpadl_header does (one range,
 * byte_offset 0, the PFNs over a header and bodies with msg_number 0). */
void vf_gpadl_send(struct vfix *f, uint32_t relid, uint32_t handle, const uint64_t *pfns,
		   uint32_t n);
/* Its two halves: the header (with the first PFNs), and the bodies
 * with the rest (none for a GPADL the header holds whole). */
void vf_gpadl_send_header(struct vfix *f, uint32_t relid, uint32_t handle, const uint64_t *pfns,
			  uint32_t n);
void vf_gpadl_send_bodies(struct vfix *f, uint32_t handle, const uint64_t *pfns, uint32_t n);
/* vf_gpadl_send and take the GPADL_CREATED; returns creation_status. */
uint32_t vf_gpadl(struct vfix *f, uint32_t relid, uint32_t handle, const uint64_t *pfns,
		  uint32_t n);
/* GPADL_TEARDOWN; with expect_answer, takes the GPADL_TORNDOWN. */
void vf_gpadl_teardown(struct vfix *f, uint32_t relid, uint32_t handle, bool expect_answer);

/* A channel as the guest holds it: its ring pages, its ends of the rings. */
struct vf_chan {
	uint32_t relid;
	uint32_t gpadl;
	uint32_t send_pages, recv_pages;
	uint64_t *pfns;
	struct vmbus_ring_mapping send_map, recv_map;
	struct vmbus_ring_writer w; /* guest to host */
	struct vmbus_ring_reader r; /* host to guest */
};

/* Allocates ring pages (reverse order when scattered, so the mapping is
 * not contiguous), resets both ring headers as hv_ringbuffer_init does,
 * creates the GPADL (asserting success). */
void vf_chan_prepare(struct vfix *f, struct vf_chan *c, uint32_t relid, uint32_t handle,
		     uint32_t send_pages, uint32_t recv_pages, bool scattered);
/* OPENCHANNEL; returns the OPENCHANNEL_RESULT status (asserted echoed). */
uint32_t vf_chan_open(struct vfix *f, struct vf_chan *c, uint32_t target_vp);
/* CLOSECHANNEL then GPADL_TEARDOWN, as channel.c vmbus_close_internal. */
void vf_chan_close(struct vfix *f, struct vf_chan *c);
void vf_chan_free(struct vf_chan *c);

/* Guest writes one in-band packet (completion requested if asked) and
 * signals the host if the ring engine says so. Returns put's result. */
int vf_chan_send(struct vfix *f, struct vf_chan *c, uint64_t trans_id, const void *data,
		 uint32_t len, bool completion);

/* An echo device's round trip: text sent with a completion requested,
 * one signal back, the completion with id and the text read. */
void vf_echo_roundtrip(struct vfix *f, struct vf_chan *c, uint64_t id, const char *text);

#endif /* HVKIT_TESTS_VMBUS_FIXTURE_H */
