/* SPDX-License-Identifier: MIT */
/*
 * Auto-EOI for a LAPIC that KVM keeps (docs/kvm.md, "Auto-EOI"). A SINT
 * with the auto-EOI bit set (TLFS, SynIC "SINTx registers") is delivered
 * as a normal fixed interrupt, but the guest does not EOI it; on Hyper-V
 * the hypervisor ends it as the guest takes it. KVM's in-kernel LAPIC does
 * not know which vectors are auto-EOI (only its own in-kernel SynIC could
 * tell it), so the vector would stay in service and hold back every vector
 * of its priority class and below. hvkit ends it instead: each vCPU keeps
 * the auto-EOI vectors it was sent, and at its next exit to user space
 * reads its LAPIC and ends those the guest has taken.
 *
 * This file is the decision, pure: given the LAPIC's IRR and ISR and the
 * outstanding vectors, which one to end now, which stay outstanding.
 */
#ifndef HVKIT_AUTO_EOI_H
#define HVKIT_AUTO_EOI_H

#include <stdbool.h>
#include <stdint.h>

/* 256 vectors, as the LAPIC's IRR and ISR: bit v % 32 of word v / 32. */
struct vector_set {
	uint32_t w[8];
};

static inline bool vector_set_has(const struct vector_set *s, unsigned v)
{
	return s->w[v / 32] >> (v % 32) & 1;
}

static inline void vector_set_add(struct vector_set *s, unsigned v)
{
	s->w[v / 32] |= 1u << (v % 32);
}

static inline void vector_set_del(struct vector_set *s, unsigned v)
{
	s->w[v / 32] &= ~(1u << (v % 32));
}

bool vector_set_empty(const struct vector_set *s);
/* The highest vector in s, or -1. */
int vector_set_highest(const struct vector_set *s);

/* The LAPIC's IRR and ISR out of a KVM_GET_LAPIC register page (ISR at
 * 0x100, IRR at 0x200, one 32-bit word per 16 bytes: the SDM's APIC
 * register map). */
void auto_eoi_read_lapic(const void *regs, struct vector_set *irr, struct vector_set *isr);

/*
 * One look at the LAPIC for the outstanding auto-EOI vectors:
 * - a vector in service and the highest in service is the one to end now:
 *   an EOI ends the highest in-service vector, so that is the only one
 *   that can be ended without touching the others (returned; the caller
 *   ends it, then calls auto_eoi_ended);
 * - one in service under a higher one (a nested handler runs) waits;
 * - one only requested (in IRR, not yet taken) waits;
 * - one in neither was ended already (the guest EOIed it anyway, or this
 *   LAPIC does not show ISR, as this machine's software KVM): dropped,
 *   counted in *vanished.
 * Returns the vector to end now, or -1.
 */
int auto_eoi_next(struct vector_set *outstanding, const struct vector_set *irr,
		  const struct vector_set *isr, unsigned *vanished);

/*
 * auto_eoi_next for a LAPIC read while interrupts may be sent: the vectors
 * sent since the read began (sent_since_read) are left out of this look,
 * since the read may predate them (in neither IRR nor ISR they would pass
 * for vanished and never be ended), and stay outstanding for the next.
 */
int auto_eoi_settle(struct vector_set *outstanding, const struct vector_set *sent_since_read,
		    const struct vector_set *irr, const struct vector_set *isr,
		    unsigned *vanished);

/* Vector v was ended: it stays outstanding only if it is requested again
 * (in IRR), to be ended once taken. */
void auto_eoi_ended(struct vector_set *outstanding, const struct vector_set *irr, unsigned v);

#endif
