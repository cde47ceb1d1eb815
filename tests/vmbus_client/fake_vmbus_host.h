/* SPDX-License-Identifier: MIT */
/*
 * A scripted VMBus host on top of the fake port (tests/guest/fake_hv): it
 * takes the client's HvPostMessage and HvSignalEvent hypercalls, answers
 * the way Hyper-V does (or the way a test tells it to), delivers its
 * messages through the SIMP slot of SINT 2 and the vector, one at a time,
 * whenever the client waits (fake event_wait runs the host) or the test
 * calls fh_deliver_all(), and plays the host end of open channels' rings
 * with lib/ring.
 *
 * Everything the client posts is logged, with the connection id it went
 * to; protocol errors the host can see (a message on the wrong connection,
 * a GPADL that is not what Linux sends) are counted in errors.
 */
#ifndef HVKIT_TESTS_FAKE_VMBUS_HOST_H
#define HVKIT_TESTS_FAKE_VMBUS_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "fake_hv.h"
#include "hv_guest.h"
#include "hvkit/vmbus.h"
#include "ring_buffer.h"

#define FH_MAX_POSTS 512
#define FH_MAX_QUEUE 256
#define FH_MAX_OFFERS 128
#define FH_MAX_GPADLS 32
#define FH_MAX_GPADL_PFNS 128
#define FH_MAX_SIGNALS 256
#define FH_MAX_INJECT 4
#define FH_MAX_CHANS 64

struct fh_post {
	uint32_t vp;
	uint32_t conn;
	uint32_t size;
	uint32_t type; /* msgtype of the payload (0 if too short) */
	uint8_t msg[VMBUS_MAX_MESSAGE_SIZE];
};

struct fh_signal {
	uint32_t vp;
	uint32_t conn;
	uint16_t flag;
};

struct fh_gpadl {
	bool used;
	bool complete;
	bool torn;
	uint32_t relid, handle;
	uint32_t range_buflen, range_count, byte_count, byte_offset;
	uint32_t expected, count;
	uint64_t pfns[FH_MAX_GPADL_PFNS];
	uint32_t messages; /* header + bodies */
};

/* The host end of an open channel. */
struct fh_chan {
	bool used;
	bool open;
	uint32_t relid;
	uint32_t gpadl;
	uint32_t target_vp_index;
	struct vmbus_msg_open_channel open_msg;
	uint8_t *base; /* host view of the GPADL's pages */
	uint32_t pages;
	struct vmbus_ring_writer to_guest;   /* the guest's receive ring */
	struct vmbus_ring_reader from_guest; /* the guest's send ring */
};

struct fh_queued {
	uint32_t vp;
	uint32_t size;
	uint8_t msg[VMBUS_MAX_MESSAGE_SIZE];
};

struct fh_inject {
	uint32_t size;
	uint8_t msg[VMBUS_MAX_MESSAGE_SIZE];
};

struct fake_vmbus_host {
	struct fake_hv *f;
	struct hv_guest *g;

	/* ---- behaviour ---- */
	uint32_t accepted[16];  /* versions the host accepts */
	uint32_t accepted_count;
	bool refuse_conn4;      /* HV_STATUS_INVALID_CONNECTION_ID on connection 4 */
	uint32_t msg_conn_id;   /* VERSION_RESPONSE's, from 5.0 */
	bool answer;            /* answer requests at all (default true) */
	bool drop_version_response, drop_alloffers, drop_gpadl_created, drop_open_result,
		drop_torndown, drop_modify_response, drop_unload_response;
	uint32_t gpadl_status, open_status, modify_status;
	uint32_t busy_posts;    /* this many posts answered INSUFFICIENT_BUFFERS */
	bool rescind_on_open;   /* OPENCHANNEL: rescind the channel, no result */
	/* Messages delivered to the guest bind the host: a RESCIND, a
	 * GPADL_TORNDOWN or an UNLOAD_RESPONSE, even one a test or the fuzzer
	 * forged, makes it let go of the pages concerned. */
	bool honest_words;
	uint32_t answer_vp;     /* where messages go */
	bool deliver_in_hypercall; /* deliver at once, inside the post */
	/* Raw messages queued just before the host's own answer of a type. */
	struct fh_inject inject[VMBUS_MSG_COUNT][FH_MAX_INJECT];
	uint32_t inject_count[VMBUS_MSG_COUNT];

	/* Offers REQUESTOFFERS brings; late ones come after
	 * ALLOFFERS_DELIVERED, as a device offered during the guest's
	 * resume wait does. */
	struct vmbus_msg_offer_channel offers[FH_MAX_OFFERS];
	uint32_t offer_count;
	struct vmbus_msg_offer_channel late_offers[4];
	uint32_t late_offer_count;
	/* Hyper-V: a primary's CLOSECHANNEL rescinds its sub-channels (they
	 * leave the offer list). */
	bool rescind_subs_on_close;

	/* ---- what happened ---- */
	uint32_t version;       /* negotiated (0: none) */
	bool alloffers_delivered;
	struct fh_post posts[FH_MAX_POSTS];
	uint32_t post_count;
	struct fh_signal signals[FH_MAX_SIGNALS];
	uint32_t signal_count;
	uint32_t errors;        /* protocol errors the host saw */
	uint32_t delivered;     /* messages delivered */
	uint32_t raised_events; /* channel interrupts raised */
	uint32_t refused_posts; /* INVALID_CONNECTION_ID answers */
	uint32_t busy_answered; /* INSUFFICIENT_BUFFERS answers */

	struct fh_queued queue[FH_MAX_QUEUE];
	uint32_t q_head, q_count;
	struct fh_gpadl gpadls[FH_MAX_GPADLS];
	struct fh_chan chans[FH_MAX_CHANS]; /* found by relid */
};

/* A host answering like Hyper-V, accepting every version Linux knows,
 * msg_conn_id 4, delivering to VP 0; hooks itself into f. */
struct fake_vmbus_host *fh_new(struct fake_hv *f, struct hv_guest *g);
void fh_free(struct fake_vmbus_host *h);

/* Accept only these versions (count 0: none). */
void fh_accept(struct fake_vmbus_host *h, const uint32_t *versions, uint32_t count);

/* An offer, as Hyper-V makes it (connection id = relid + 0x1000 unless set
 * later in the returned struct). */
struct vmbus_msg_offer_channel *fh_add_offer(struct fake_vmbus_host *h,
					     const struct hv_guid *class_id,
					     const struct hv_guid *instance, uint16_t sub,
					     uint32_t relid);
struct vmbus_msg_offer_channel fh_make_offer(const struct hv_guid *class_id,
					     const struct hv_guid *instance, uint16_t sub,
					     uint32_t relid);

/* Queues a raw message for the guest; delivers one; delivers all. */
void fh_queue(struct fake_vmbus_host *h, const void *msg, uint32_t size);
bool fh_deliver(struct fake_vmbus_host *h);
uint32_t fh_deliver_all(struct fake_vmbus_host *h);
/* Queues msg before the host's next own answer of type answer_type. */
void fh_inject_before(struct fake_vmbus_host *h, uint32_t answer_type, const void *msg,
		      uint32_t size);

/* Posts of one message type: how many, and the nth (0-based; NULL if not). */
uint32_t fh_count(const struct fake_vmbus_host *h, uint32_t type);
const struct fh_post *fh_nth(const struct fake_vmbus_host *h, uint32_t type, uint32_t nth);
/* Index of the nth post of a type in the log, or -1. */
int fh_index(const struct fake_vmbus_host *h, uint32_t type, uint32_t nth);
/* Signals to a connection id. */
uint32_t fh_signals_to(const struct fake_vmbus_host *h, uint32_t conn);

/* ---- the host end of a ring ---- */

/* Writes an in-band packet to the guest; raises the channel's interrupt on
 * its target VP if the ring rules say so. 0 or the ring's error. */
int fh_send(struct fake_vmbus_host *h, uint32_t relid, uint64_t trans_id, const void *data,
	    uint32_t len);
/* Reads the next packet the guest sent: 0, -EAGAIN, ... (commits). */
int fh_recv(struct fake_vmbus_host *h, uint32_t relid, void *buf, uint32_t len,
	    struct vmbus_packet *pkt);
/* Sets relid's bit in SINT 2's event flags of vp and raises the vector. */
void fh_raise_event(struct fake_vmbus_host *h, uint32_t vp, uint32_t relid);
/* The port VP number of a hypervisor VP index (or UINT32_MAX). */
uint32_t fh_vp_of_index(const struct fake_vmbus_host *h, uint32_t vp_index);
/* The host end of relid's channel, or NULL if it was never opened. */
struct fh_chan *fh_chan(struct fake_vmbus_host *h, uint32_t relid);

#endif /* HVKIT_TESTS_FAKE_VMBUS_HOST_H */
