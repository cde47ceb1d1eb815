/* SPDX-License-Identifier: MIT */
/* The process partition's request handling, reachable without a guest
 * process or threads (a partition from process_partition_new that is never
 * launched): for the fuzz target and protocol tests. */
#ifndef HVKIT_PROCESS_INTERNAL_H
#define HVKIT_PROCESS_INTERNAL_H

#include <stddef.h>

#include "hvkit/proto/process.h"
#include "process.h"

/* Validates one message received on VP vp's socket and serves it: 0 and a
 * reply to send (with *fd to pass, or -1); -EPROTO if the message breaks
 * the protocol (the partition must end). */
int process_partition_handle(struct process_partition *pp, uint32_t vp, const void *msg,
			     size_t len, struct hvkit_proc_reply *reply, int *fd);

#endif
