/* SPDX-License-Identifier: MIT */
/*
 * The KVM partition: a real virtual machine whose Hyper-V interface is
 * host/hv, reached through KVM's user-space exits. docs/kvm.md.
 *
 *  - Guest RAM: one memfd at GPA 0, a KVM memory slot and a guest_memory
 *    region (so VMBus can map guest pages again).
 *  - In-kernel irqchip (LAPIC per vCPU, IOAPIC, PIC); interrupts from
 *    host/hv (SINTs, direct-mode stimers) are MSIs to the VP's APIC id.
 *  - CPUID: KVM_GET_SUPPORTED_CPUID, the hypervisor bit set, KVM's own
 *    leaves 0x40000000.. replaced by host/hv's Hyper-V leaves.
 *  - MSRs 0x40000000..0x400001FF (synthetic, crash MSRs included) exit to
 *    user space through an MSR filter and go to host/hv; #GP for those
 *    host/hv refuses.
 *  - The hypercall page holds ENDBR64; OUT imm8 to
 *    KVM_PARTITION_HYPERCALL_PORT; RET. The port exit carries RCX, RDX and
 *    R8 untouched; the result goes back in RAX (through the run area's
 *    synced registers where KVM offers them).
 *  - Synthetic timers: one timerfd per partition armed at host/hv's next
 *    deadline, served by the partition's timer thread.
 *
 * VP index = vCPU id = APIC id (vCPU i has APIC id i). host/hv's VP i is
 * vCPU i.
 *
 * Threads: one per vCPU (KVM_RUN loop) and one timer thread. host/hv locks
 * itself: an MSR exit, a hypercall or a timer scan takes no lock here, so
 * vCPUs never wait for each other on their own state; connection handlers
 * run on the vCPU's thread with no lock held, as with the process
 * partition.
 */
#ifndef HVKIT_KVM_PARTITION_H
#define HVKIT_KVM_PARTITION_H

#include <linux/kvm.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv.h"
#include "partition.h"

struct kvm_partition;

#define KVM_PARTITION_MAX_VPS 64
/* The hypercall trampoline's port (OUT imm8: below 0x100). Unused by PC
 * legacy devices and by QEMU's test devices. */
#define KVM_PARTITION_HYPERCALL_PORT 0xE4
/* QEMU's isa-debug-exit device, when enabled: status (value << 1) | 1. */
#define KVM_PARTITION_DEBUG_EXIT_PORT 0xF4

/* The error kvm_partition_new returns when /dev/kvm is absent or lacks
 * what the partition needs: callers report the run as skipped. */
#define KVM_PARTITION_UNAVAILABLE (-ENODEV)

/* 0 if device (NULL: /dev/kvm) can run a partition, else
 * KVM_PARTITION_UNAVAILABLE: lets a test program report itself skipped
 * before it starts. */
int kvm_partition_probe(const char *device);

struct kvm_partition_config {
	uint32_t vp_count;    /* 1..KVM_PARTITION_MAX_VPS */
	uint64_t memory_size; /* guest RAM at GPA 0, a 4 KiB multiple, < 3 GiB */
	uint32_t hv_features; /* HV_OFFER_*; 0 means HV_OFFER_ALL */
	uint64_t tsc_hz;      /* 0: calibrate */
	bool debug_exit;      /* the isa-debug-exit port (off by default) */
	bool log_milestones;  /* host/hv logs the guest's enlightenment steps */
	const char *device;   /* the KVM device node; NULL: /dev/kvm */
	/* Read and write hypercall registers with KVM_GET/SET_REGS even where
	 * KVM_CAP_SYNC_REGS would save the two ioctls (tests the fallback). */
	bool plain_regs;
	/* Diagnostics, one line at a time; NULL: stderr with "hvkit: ". */
	void (*log)(void *ctx, const char *fmt, va_list ap);
	void *log_ctx;
	/* A crash report pauses the VPs (partition_resume lets them run on)
	 * instead of ending the guest with KVM_PARTITION_EXIT_CRASHED. */
	bool pause_on_crash;
	/* The guest reported a crash (optional). */
	void (*crash)(void *ctx, uint32_t vp, const uint64_t params[5], const char *message,
		      uint32_t len);
	void *crash_ctx;
	/*
	 * Port I/O the partition does not serve itself (optional). out: *value
	 * holds the data (size 1, 2 or 4 bytes); in: store the result in
	 * *value (all ones if not set). Runs on the VP's thread without the
	 * device lock; may call kvm_partition_exit and take the lock.
	 */
	void (*pio)(void *ctx, struct kvm_partition *kp, uint32_t vp, uint16_t port, uint8_t size,
		    bool out, uint32_t *value);
	void *pio_ctx;
};

/* Creates the VM, its RAM, vCPUs and hv, without running anything: load
 * the guest and set registers, then launch. 0, KVM_PARTITION_UNAVAILABLE,
 * or another negative errno (nothing is left behind). */
int kvm_partition_new(const struct kvm_partition_config *cfg, struct kvm_partition **out);

/* Registers of VP vp before launch (either may be NULL). 0 or -errno. */
int kvm_partition_get_registers(struct kvm_partition *kp, uint32_t vp, struct kvm_regs *regs,
				struct kvm_sregs *sregs);
int kvm_partition_set_registers(struct kvm_partition *kp, uint32_t vp,
				const struct kvm_regs *regs, const struct kvm_sregs *sregs);

/* Starts the vCPU and timer threads. */
int kvm_partition_launch(struct kvm_partition *kp);

/* The exit status of a guest that reported a crash through the crash
 * MSRs (HV_CRASH_CTL with CRASH_NOTIFY): the partition stops there. */
#define KVM_PARTITION_EXIT_CRASHED 8

/* Ends the guest with this exit status (any thread; the first call wins). */
void kvm_partition_exit(struct kvm_partition *kp, int status);

/* Waits up to timeout_ms (-1: forever) for the guest to end (by
 * kvm_partition_exit, the debug-exit port or a failure: stats.failed). 0
 * and *status, or -ETIMEDOUT. */
int kvm_partition_wait(struct kvm_partition *kp, int timeout_ms, int *status);
/* Polls readable once the guest has ended (an eventfd). */
int kvm_partition_end_fd(struct kvm_partition *kp);

/* Stops every vCPU and joins all threads; hv stays usable. Idempotent. */
void kvm_partition_halt(struct kvm_partition *kp);

/* Halts (if not yet) and frees everything. */
void kvm_partition_stop(struct kvm_partition *kp);

/* Guards every call into host/hv made from outside the partition's own
 * threads. */
void kvm_partition_lock(struct kvm_partition *kp);
void kvm_partition_unlock(struct kvm_partition *kp);
struct hv_partition *kvm_partition_hv(struct kvm_partition *kp);
const struct guest_memory *kvm_partition_memory(const struct kvm_partition *kp);

/* The partition interface to it (partition.h), for code that drives any
 * backend. */
struct partition *kvm_partition_base(struct kvm_partition *kp);

/* Reference time now (100 ns units), for calls into hv. */
uint64_t kvm_partition_now(const struct kvm_partition *kp);

/* Tell the timer thread that deadlines changed. */
void kvm_partition_kick(struct kvm_partition *kp);

/* Raises `vector` on VP vp (an MSI to its APIC id). 0 or -errno. */
int kvm_partition_interrupt(struct kvm_partition *kp, uint32_t vp, uint8_t vector);

/* Runs fn(ctx) on every vCPU thread at its next exit (each is kicked out
 * of KVM_RUN) and returns once all have: 0, fn's first error, -ESRCH when
 * the vCPUs stop first, or -ETIMEDOUT after 10 s. */
int kvm_partition_on_vcpu_threads(struct kvm_partition *kp, int (*fn)(void *ctx), void *ctx);

/* Drives ISA interrupt line irq (0-15; the in-kernel PIC and IOAPIC) of
 * the legacy devices. 0 or -errno. */
int kvm_partition_set_irq(struct kvm_partition *kp, uint32_t irq, bool level);

struct kvm_partition_stats {
	uint64_t msr_exits;    /* synthetic MSR accesses served */
	uint64_t msr_gp;       /* of those, answered with #GP */
	uint64_t hypercalls;   /* trampoline exits */
	uint64_t pio_exits;    /* other port I/O */
	uint64_t interrupts;   /* MSIs sent */
	uint64_t timer_scans;  /* timer thread wake-ups */
	uint64_t auto_eoi_sent;     /* auto-EOI SINT interrupts sent */
	uint64_t auto_eoi_ended;    /* ended by hvkit once taken (x2APIC EOI) */
	uint64_t auto_eoi_vanished; /* found in neither IRR nor ISR: ended already */
	uint64_t auto_eoi_xapic;    /* taken with the LAPIC in xAPIC mode: not ended */
	bool exited;           /* the guest ended ... */
	int exit_status;       /* ... with this status */
	bool failed;           /* the VM stopped on an error ... */
	char failure[128];     /* ... this one */
};
void kvm_partition_get_stats(struct kvm_partition *kp, struct kvm_partition_stats *out);

/* ---- Pieces exposed for host-side tests (no /dev/kvm needed) ---- */

/* The hypercall page's code: ENDBR64; OUT imm8 to the hypercall port; RET.
 * Returns its length (<= size) or 0 if size is too small. */
uint32_t kvm_partition_hypercall_code(uint8_t *buf, uint32_t size);

/*
 * Rewrites a KVM_GET_SUPPORTED_CPUID list in place for the guest: leaf 1
 * gets the hypervisor bit and each VP its APIC id (done per vCPU by the
 * caller), KVM's hypervisor leaves 0x40000000..0x4FFFFFFF are dropped and
 * the Hyper-V leaves of hv added. Returns the new entry count, or -ENOSPC
 * if more than `capacity` entries would be needed.
 */
int kvm_partition_build_cpuid(const struct hv_partition *hv, struct kvm_cpuid_entry2 *entries,
			      uint32_t count, uint32_t capacity);

/* The MSR filter: KVM's default for every MSR but the synthetic range,
 * which exits to user space. */
void kvm_partition_msr_filter(struct kvm_msr_filter *filter);

#endif /* HVKIT_KVM_PARTITION_H */
