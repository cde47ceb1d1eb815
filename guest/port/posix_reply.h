/* SPDX-License-Identifier: MIT */
/*
 * Internals of the posix port that tests and fuzz targets reach: the pure
 * validation of what the host sends back (include/hvkit/proto/process.h),
 * and the status a hypercall returns when the host is gone. Not part of
 * the port's API (posix.h).
 */
#ifndef HVKIT_GUEST_POSIX_REPLY_H
#define HVKIT_GUEST_POSIX_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "hvkit/proto/process.h"
#include "hvkit/tlfs.h"

/*
 * What a hypercall returns when the request could not be carried out (the
 * socket is broken or the host answered nonsense, and the port is now
 * disconnected): the partition is no longer in a state to take calls.
 */
#define HV_POSIX_STATUS_DISCONNECTED ((uint64_t)HV_STATUS_INVALID_PARTITION_STATE)

/* The largest guest memory a HELLO may announce (1 TiB). */
#define HV_POSIX_MAX_MEMORY (1ull << 40)

/* What a valid HELLO reply announces. */
struct hv_posix_hello {
	uint32_t version;
	uint32_t vp_count;
	uint64_t memory_size;
};

/*
 * Checks one received reply: exactly sizeof(struct hvkit_proc_reply) bytes,
 * the magic, the op and seq of the request it answers, a status the
 * protocol defines, and that nfds file descriptors came with it: one for
 * an EVENT_FD answered OK, none otherwise (a HELLO's fds are checked by
 * hv_posix_check_hello). 0 and *out filled, or -EBADMSG.
 */
int hv_posix_check_reply(const void *buf, size_t len, uint16_t op, uint32_t seq,
			 uint32_t nfds, struct hvkit_proc_reply *out);

/*
 * Checks a HELLO reply that passed hv_posix_check_reply: status OK, our
 * version, 1..HVKIT_PROC_MAX_VPS VPs, a memory size that is a whole number
 * of pages, at least two (page 0 is never handed out) and at most
 * HV_POSIX_MAX_MEMORY, and exactly HVKIT_PROC_HELLO_FDS(vp_count) fds.
 * 0 and *out filled, or -EBADMSG (-EPROTONOSUPPORT for another version).
 */
int hv_posix_check_hello(const struct hvkit_proc_reply *r, uint32_t nfds,
			 struct hv_posix_hello *out);

#endif /* HVKIT_GUEST_POSIX_REPLY_H */
