/* SPDX-License-Identifier: MIT */
/*
 * The guest porting layer: everything the guest side needs from the
 * environment it runs in, and nothing else. hvkit's mini guest OS, a plain
 * process in the process partition (posix.c) and a kernel the library is
 * ported into each supply one struct hv_port.
 *
 * "The current VP" is the virtual processor the calling code runs on: a
 * CPU in a kernel, a bound thread in a process. MSR accesses always act on
 * it.
 */
#ifndef HVKIT_GUEST_PORT_H
#define HVKIT_GUEST_PORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HV_GPA_INVALID UINT64_MAX

struct hv_port_lock;
struct hv_port_event;

struct hv_port {
	void *ctx;

	/* ---- CPU ---- */
	void (*cpuid)(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t regs[4]);
	/* false: the access raised #GP */
	bool (*rdmsr)(void *ctx, uint32_t msr, uint64_t *value);
	bool (*wrmsr)(void *ctx, uint32_t msr, uint64_t value);
	uint64_t (*rdtsc)(void *ctx);
	/* A hypercall through the enabled hypercall page (page: its mapping,
	 * for ports that call into it): RCX, RDX, R8 in, RAX out. */
	uint64_t (*hypercall)(void *ctx, void *page, uint64_t control, uint64_t input,
			      uint64_t output);
	uint32_t (*current_vp)(void *ctx);

	/* ---- Memory the host can see ---- */
	/* count zeroed 4 KiB pages, contiguous in guest physical memory,
	 * mapped read-write (and executable: the hypercall page is one). NULL
	 * if there is no memory. */
	void *(*alloc_pages)(void *ctx, uint32_t count);
	void (*free_pages)(void *ctx, void *pages, uint32_t count);
	/* GPA of a byte of memory from alloc_pages, or HV_GPA_INVALID. */
	uint64_t (*gpa_of)(void *ctx, const void *p);

	/* ---- Memory for the library's own objects ---- */
	/* size (> 0) zeroed bytes, aligned for any object, usable from
	 * handlers; not necessarily visible to the host. NULL if there is no
	 * memory. free takes back what alloc gave, with the size asked for
	 * (so a port's heap needs no header to know it); p NULL: nothing. */
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *p, size_t size);

	/* ---- Interrupts ---- */
	/* fn(arg) runs on the VP that took the interrupt, with that VP
	 * current; the port does whatever end-of-interrupt it needs. */
	int (*set_vector_handler)(void *ctx, uint8_t vector, void (*fn)(void *arg), void *arg);

	/* ---- Locks (short critical sections, usable from handlers) ---- */
	struct hv_port_lock *(*lock_new)(void *ctx);
	void (*lock_free)(void *ctx, struct hv_port_lock *lock);
	void (*lock)(void *ctx, struct hv_port_lock *lock);
	void (*unlock)(void *ctx, struct hv_port_lock *lock);

	/* ---- Waiting ---- */
	/* An auto-reset event: set from any context (handlers included),
	 * waited for only outside handlers. wait returns 0 once the event is
	 * set (clearing it) or -ETIMEDOUT after timeout_ns. */
	struct hv_port_event *(*event_new)(void *ctx);
	void (*event_free)(void *ctx, struct hv_port_event *event);
	void (*event_set)(void *ctx, struct hv_port_event *event);
	int (*event_wait)(void *ctx, struct hv_port_event *event, uint64_t timeout_ns);

	/* ---- Time and diagnostics ---- */
	uint64_t (*monotonic_ns)(void *ctx);
	void (*log)(void *ctx, const char *fmt, va_list ap);
};

#endif /* HVKIT_GUEST_PORT_H */
