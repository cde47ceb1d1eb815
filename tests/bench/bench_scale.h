/* SPDX-License-Identifier: MIT */
/* hvkit-bench scale: what its parts share. */
#ifndef HVKIT_BENCH_SCALE_H
#define HVKIT_BENCH_SCALE_H

#include <stdint.h>

/* The storvsc test guest keeps at most 256 requests in flight: 32 a VP. */
#define SCALE_MAX_VPS 8

/* One run at one VP count. */
struct scale_figures {
	double total;                 /* the rate of the whole partition */
	double per_vp[SCALE_MAX_VPS]; /* each VP's (or queue's), where measured */
};

/* IA32_APIC_BASE: an MSR KVM serves itself, without a user-space exit. */
#define SCALE_MSR_APIC_BASE 0x1bu

/*
 * Every VP of a KVM partition reads msr in a loop: HV_MSR_VP_INDEX (each
 * read an exit to user space, served by host/hv under the partition's
 * lock) or SCALE_MSR_APIC_BASE (the baseline: what KVM alone allows). The
 * figures are reads per second over a window of ms milliseconds. 0,
 * KVM_PARTITION_UNAVAILABLE without a usable /dev/kvm, or another -errno.
 */
int scale_msr_run(uint32_t msr, uint32_t vps, uint32_t ms, struct scale_figures *out);

#endif
