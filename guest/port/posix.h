/* SPDX-License-Identifier: MIT */
/*
 * The guest port for the process partition: the guest library running in
 * an ordinary Linux process, its hypervisor being an hvkit host on the
 * other end of the sockets of include/hvkit/proto/process.h.
 *
 * VPs are threads: a thread calls hv_posix_bind_vp() and from then on is
 * that VP (MSRs, hypercalls and current_vp act on it). Interrupts run on a
 * dispatcher thread per VP, which is bound to its VP while a handler runs;
 * handlers of one VP never run concurrently.
 *
 * Guest memory is the host's memfd mapped at one place; alloc_pages hands
 * out pages of it, so every allocation has a GPA.
 */
#ifndef HVKIT_GUEST_POSIX_H
#define HVKIT_GUEST_POSIX_H

#include <stdint.h>

#include "port.h"

struct hv_posix;

/* Connects over the control socket fd (HELLO), maps guest memory, starts
 * the interrupt dispatchers. 0 or a negative errno; *out on success. */
int hv_posix_connect(int control_fd, struct hv_posix **out);

/* hv_posix_connect on the fd named by HVKIT_PARTITION_FD. */
int hv_posix_connect_env(struct hv_posix **out);

/* Stops the dispatchers, unmaps, closes every fd. */
void hv_posix_disconnect(struct hv_posix *px);

const struct hv_port *hv_posix_port(struct hv_posix *px);
uint32_t hv_posix_vp_count(const struct hv_posix *px);
uint64_t hv_posix_memory_size(const struct hv_posix *px);

/* The calling thread becomes VP vp (< vp_count). */
void hv_posix_bind_vp(struct hv_posix *px, uint32_t vp);

/* Statistics for tests and benchmarks. */
struct hv_posix_stats {
	uint64_t requests;      /* socket round trips */
	uint64_t fast_signals;  /* HvSignalEvent through an eventfd */
	uint64_t interrupts;    /* vectors dispatched */
};
void hv_posix_get_stats(const struct hv_posix *px, struct hv_posix_stats *out);

#endif /* HVKIT_GUEST_POSIX_H */
