/* SPDX-License-Identifier: MIT */
/*
 * What both sides of an integration component share: building and checking
 * the pipe and IC headers, the version negotiation (the host's offer, the
 * guest's answer exactly as Linux's vmbus_prep_negotiate_resp builds it,
 * the host's reading of that answer) and the UTF-16LE strings KVP and file
 * copy carry. Pure functions over caller buffers: no allocation, no I/O,
 * every length checked (the other side may send anything).
 */
#ifndef HVKIT_IC_MSG_H
#define HVKIT_IC_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "hvkit/guid.h"
#include "hvkit/proto/ic.h"

/* The largest IC packet either side handles: a KVP message with its
 * headers, a file-copy data fragment, a VSS freeze with its LUN data. */
#define IC_MAX_PACKET 8192

/* The services hvkit serves on both sides. */
enum ic_service {
	IC_HEARTBEAT = 0,
	IC_SHUTDOWN,
	IC_TIMESYNC,
	IC_KVP,
	IC_VSS,
	IC_FCOPY,
	IC_SERVICE_COUNT
};
#define IC_ALL_SERVICES ((1u << IC_SERVICE_COUNT) - 1)

const char *ic_service_name(enum ic_service svc);
/* The class (the offer's if_type) and the fixed instance GUID of each
 * service's channel; NULL for a value outside the enum. */
const struct hv_guid *ic_service_class(enum ic_service svc);
const struct hv_guid *ic_service_instance(enum ic_service svc);
/* The IC message type each service's requests carry. */
uint16_t ic_service_msgtype(enum ic_service svc);

/* The framework versions (3.0, 1.0; VSS and file copy 3.0 only) and each
 * service's versions that Linux 6.1 accepts, newest first; both sides
 * start from these lists. */
const uint32_t *ic_service_fw_versions(enum ic_service svc, uint32_t *count);
const uint32_t *ic_service_versions(enum ic_service svc, uint32_t *count);

/* The IC header of buf, copied out: 0, or -EBADMSG if len is shorter than
 * the pipe and IC headers (Linux drops such packets). */
int ic_msg_header(const void *buf, uint32_t len, struct ic_msg_hdr *out);

/* Writes the pipe header (flags 1, msgsize) and an IC request header
 * (transaction | request) for a body of body_len bytes that the caller
 * puts at IC_MSG_HDR_SIZE. Returns the packet length, or 0 if cap is too
 * small. */
uint32_t ic_msg_request(void *buf, uint32_t cap, uint16_t type, uint32_t fw_version,
			uint32_t msg_version, uint8_t transaction_id, uint32_t body_len);

/* Turns a received request into its response in place: status and the
 * transaction | response flags, as every Linux util callback does. */
void ic_msg_make_response(void *buf, uint32_t len, uint32_t status);

/* The host's NEGOTIATE: fw_count framework versions then msg_count service
 * versions (each as IC_VERSION). Returns the length, 0 if it does not fit
 * or a count is over IC_NEGOTIATE_MAX_VER_COUNT. */
uint32_t ic_negotiate_request(void *buf, uint32_t cap, const uint32_t *fw, uint32_t fw_count,
			      const uint32_t *msg, uint32_t msg_count, uint8_t transaction_id);

/*
 * The guest's answer to a NEGOTIATE in buf (len bytes received), in place,
 * as Linux 6.1 vmbus_prep_negotiate_resp: it picks the first of its own
 * framework versions (fw, preference order) that the host listed, then the
 * first of its service versions (msg) that the host listed, and writes
 * counts 1/1 and the pair; counts 0/0 if either is missing.
 * Returns 0 with fw_out and msg_out set; -ENOTSUP (answer with 0/0 written);
 * -EBADMSG if the request is malformed (too short for its counts, or
 * counts over 100): Linux still answers it with 0/0 when the counts are
 * readable, and so does this (*answerable tells whether buf holds an answer).
 */
int ic_negotiate_answer(void *buf, uint32_t len, const uint32_t *fw, uint32_t fw_count,
			const uint32_t *msg, uint32_t msg_count, uint32_t *fw_out,
			uint32_t *msg_out, int *answerable);

/* The host reads the guest's answer: 0 with the chosen pair; -ENOTSUP if
 * the guest matched nothing (counts 0); -EBADMSG if malformed or not a
 * response. The pair must be one the host offered (offered lists given). */
int ic_negotiate_result(const void *buf, uint32_t len, const uint32_t *fw, uint32_t fw_count,
			const uint32_t *msg, uint32_t msg_count, uint32_t *fw_out,
			uint32_t *msg_out);

/* Version lists: whether v is in list. */
int ic_version_in(uint32_t v, const uint32_t *list, uint32_t count);

/*
 * UTF-16LE (wire, size in bytes including the NUL) to UTF-8 (NUL-ended).
 * The string must end with a NUL within in_size bytes (which must be even
 * and at most max_size), surrogates must pair. Returns the UTF-8 length
 * without its NUL, -EINVAL (malformed) or -ENAMETOOLONG (out too small).
 */
int ic_utf16_to_utf8(const uint8_t *in, uint32_t in_size, uint32_t max_size, char *out,
		     size_t out_size);

/* UTF-8 (NUL-ended) to UTF-16LE with its NUL into out (out_size bytes).
 * Returns the bytes written including the NUL, -EINVAL (not UTF-8) or
 * -ENAMETOOLONG. */
int ic_utf8_to_utf16(const char *in, uint8_t *out, uint32_t out_size);

#endif /* HVKIT_IC_MSG_H */
