/* SPDX-License-Identifier: MIT */
/*
 * The process partition: the wire format between a host (hvkit) and a
 * guest running as an ordinary process. Documented in
 * docs/process-partition.md; this header is the single definition.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET sockets, one fixed-size request and one
 * fixed-size reply per exchange, file descriptors passed with SCM_RIGHTS.
 *
 *  - The control socket is inherited by the guest at exec; its number is
 *    in the environment variable HVKIT_PARTITION_FD. The guest sends HELLO
 *    on it; the reply carries the partition's resources (below). Nothing
 *    else is sent on the control socket.
 *  - Each VP has its own socket: requests on it act on that VP (the
 *    request's vp field must match). The guest may use one VP socket from
 *    several threads only if it serializes them.
 *
 * HELLO reply: values = {version, vp_count, memory_size, 0} and, in order,
 * the fds: guest memory (a memfd; GPA g is at file offset g, GPAs
 * 0..memory_size), the interrupt state (a memfd of HVKIT_PROC_IRQ_STATE_SIZE
 * per VP), then for each VP its socket and its interrupt eventfd.
 *
 * Interrupts: to raise vector v on VP n, the host sets bit v of VP n's
 * struct hvkit_proc_irq_state (atomic OR) and then adds 1 to VP n's
 * interrupt eventfd. The guest reads the eventfd, takes the pending words
 * with atomic exchanges, and runs the handlers, highest vector first.
 *
 * Fast events: EVENT_FD asks for the eventfd of an event connection; if
 * the host has one, adding 1 to it is HvSignalEvent on that connection
 * with flag 0, without a round trip (as KVM's ioeventfd is).
 *
 * The host trusts nothing here: a request of the wrong size, magic or VP
 * ends the partition; an unknown op is answered HVKIT_PROC_BADREQ.
 */
#ifndef HVKIT_PROTO_PROCESS_H
#define HVKIT_PROTO_PROCESS_H

#include <stddef.h>
#include <stdint.h>

#define HVKIT_PROC_VERSION 1u
#define HVKIT_PROC_MAGIC 0x706B7668u /* "hvkp" */
#define HVKIT_PROC_FD_ENV "HVKIT_PARTITION_FD"
#define HVKIT_PROC_MAX_VPS 64u

enum hvkit_proc_op {
	HVKIT_PROC_HELLO = 1,     /* args {version}; reply as above */
	HVKIT_PROC_CPUID = 2,     /* args {leaf, subleaf}; values {eax, ebx, ecx, edx} */
	HVKIT_PROC_RDMSR = 3,     /* args {msr}; values {value} or status GP */
	HVKIT_PROC_WRMSR = 4,     /* args {msr, value}; status OK or GP */
	HVKIT_PROC_HYPERCALL = 5, /* args {rcx, rdx, r8}; values {rax} */
	HVKIT_PROC_EVENT_FD = 6,  /* args {connection id}; an eventfd, or status NOENT */
};

enum hvkit_proc_status {
	HVKIT_PROC_OK = 0,
	HVKIT_PROC_GP = 1,     /* the MSR access raised #GP */
	HVKIT_PROC_NOENT = 2,  /* no such thing (EVENT_FD: use the hypercall) */
	HVKIT_PROC_BADREQ = 3, /* unknown op or bad arguments */
};

struct hvkit_proc_request {
	uint32_t magic;
	uint16_t op;
	uint16_t reserved; /* zero */
	uint32_t vp;
	uint32_t seq; /* echoed in the reply */
	uint64_t args[4];
};

struct hvkit_proc_reply {
	uint32_t magic;
	uint16_t op;
	uint16_t status;
	uint32_t seq;
	uint32_t reserved;
	uint64_t values[4];
};

/* Per-VP interrupt state, in the interrupt state memfd. */
struct hvkit_proc_irq_state {
	uint64_t pending[4]; /* bit v: vector v raised and not yet taken */
	uint64_t reserved[4];
};
#define HVKIT_PROC_IRQ_STATE_SIZE ((uint32_t)sizeof(struct hvkit_proc_irq_state))

/* Fds in a HELLO reply: memory, irq state, then socket + eventfd per VP. */
#define HVKIT_PROC_HELLO_FDS(vp_count) (2u + 2u * (vp_count))

_Static_assert(sizeof(struct hvkit_proc_request) == 48, "request size");
_Static_assert(offsetof(struct hvkit_proc_request, args) == 16, "request args");
_Static_assert(sizeof(struct hvkit_proc_reply) == 48, "reply size");
_Static_assert(offsetof(struct hvkit_proc_reply, values) == 16, "reply values");
_Static_assert(sizeof(struct hvkit_proc_irq_state) == 64, "one cache line per VP");
_Static_assert(HVKIT_PROC_HELLO_FDS(HVKIT_PROC_MAX_VPS) <= 253, "SCM_RIGHTS limit");

#endif /* HVKIT_PROTO_PROCESS_H */
