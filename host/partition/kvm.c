/* SPDX-License-Identifier: MIT */
/*
 * The KVM partition (see kvm.h and docs/kvm.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "auto_eoi.h"
#include "kvm.h"
#include "kvm_state.h"
#include "partition_common.h"

/* The signal that kicks a vCPU thread out of KVM_RUN. */
#define KICK_SIGNAL SIGUSR1
/* How soon a vCPU with an auto-EOI vector not yet ended is kicked out of
 * the guest again to look (reference time, 100 ns units: 50 us). */
#define AUTO_EOI_RECHECK 500
/* The x2APIC EOI register as an MSR (SDM: x2APIC register address space). */
#define MSR_X2APIC_EOI 0x80Bu
/* CPUID entries: KVM's list plus the Hyper-V leaves. */
#define MAX_CPUID_ENTRIES 256
/* The LAPIC's MSI window: address 0xFEE00000 | destination APIC id << 12. */
#define MSI_ADDRESS_BASE 0xFEE00000u
#define MSI_DEST_SHIFT 12
#define MSR_IA32_TSC 0x10u

struct kvm_vp {
	struct kvm_partition *kp;
	uint32_t index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool running;
	/* Work for this thread (kvm_partition_on_vcpu_threads): set under
	 * kp->lock, taken at the top of the run loop. */
	int (*work)(void *ctx);
	void *work_ctx;
	bool work_pending; /* atomic */
	int work_result;
	/* Exits served, counted by this VP's thread alone. */
	uint64_t msr_exits, msr_gp, hypercalls, pio_exits;
	/* Auto-EOI vectors sent and not yet ended (auto_eoi.h), under
	 * auto_eoi_lock (hv's inject may hold a VP lock of hv's: this one is
	 * taken inside it and calls nothing); auto_eoi_pending (atomic) says
	 * the set is not empty. */
	pthread_mutex_t auto_eoi_lock;
	struct vector_set auto_eoi;
	struct vector_set auto_eoi_fresh; /* sent since settle_auto_eoi's read began */
	bool auto_eoi_pending;
	bool auto_eoi_xapic_logged;
};

struct kvm_partition {
	struct partition base; /* how the machine drives it (partition.h) */
	struct kvm_partition_config cfg;
	/* The exit state, on_vcpu_threads' work, the device lock the owner
	 * takes (kvm_partition_lock). Never held to call hv, which locks
	 * itself; the exit counters are atomics. */
	pthread_mutex_t lock;
	pthread_cond_t ended_cond;
	pthread_cond_t work_cond; /* a vCPU finished its work */
	/* Pause (kvm_partition_pause): while pause_requested (atomic), the
	 * vCPU threads and the timer thread park, counted in parked, and
	 * wait on pause_cond, which also tells the pauser each arrival. */
	bool pause_requested;
	uint32_t parked;
	pthread_cond_t pause_cond;
	struct hv_partition *hv;
	struct guest_memory mem;
	int kvm_fd, vm_fd;
	uint8_t *ram;
	int ram_fd;
	/* Guest TSC = host TSC + tsc_offset (KVM keeps one offset for all
	 * vCPUs of a VM created together). */
	uint64_t tsc_offset;
	bool restored; /* partition_restore loaded a record */
	bool sync_regs; /* KVM_CAP_SYNC_REGS: registers in the run area */
	struct kvm_vp vps[KVM_PARTITION_MAX_VPS];
	int epoll_fd, kick_fd, timer_fd;
	int end_fd; /* an eventfd written once the guest has ended */
	pthread_t timer_thread;
	bool timer_running;
	bool stopping; /* atomics: read by vCPU threads without the lock */
	struct kvm_partition_stats stats;
};

/* The partition interface to it, every optional operation included. */
static int kvm_op_on_vp_threads(struct partition *p, int (*fn)(void *ctx), void *ctx);
static int kvm_op_pause(struct partition *p);
static int kvm_op_resume(struct partition *p);
static int kvm_op_save(struct partition *p, void *buf, size_t *len);
static int kvm_op_restore(struct partition *p, const void *buf, size_t len);
PARTITION_OPS(kvm_partition, "kvm", .on_vp_threads = kvm_op_on_vp_threads,
	      .pause = kvm_op_pause, .resume = kvm_op_resume, .save = kvm_op_save,
	      .restore = kvm_op_restore);

/* ------------------------------------------------------------------ */
/* Diagnostics and the end of the guest                                */
/* ------------------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static void log_line(struct kvm_partition *kp,
							  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	partition_log_va(kp->cfg.log, kp->cfg.log_ctx, fmt, ap);
	va_end(ap);
}

/* Brings a vCPU out of the guest (KVM_RUN returns at once if it is not
 * in it yet). */
static void kick_vcpu(struct kvm_vp *v)
{
	if (v->run)
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	/* A vCPU thread may end the guest while launch still starts the
	 * others: `running` is published after pthread_create. */
	if (__atomic_load_n(&v->running, __ATOMIC_ACQUIRE))
		pthread_kill(v->thread, KICK_SIGNAL);
}

/* Makes every vCPU leave KVM_RUN at once and not enter it again (and
 * the parked ones leave their park). Never with kp->lock held. */
static void kick_vcpus(struct kvm_partition *kp)
{
	__atomic_store_n(&kp->stopping, true, __ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++)
		kick_vcpu(&kp->vps[i]);
	if (kp->kick_fd >= 0)
		eventfd_write(kp->kick_fd, 1);
	pthread_mutex_lock(&kp->lock);
	pthread_cond_broadcast(&kp->pause_cond);
	pthread_mutex_unlock(&kp->lock);
}

/* A vCPU or the timer thread, asked to pause: waits here until resumed
 * or stopped. */
static void park(struct kvm_partition *kp)
{
	pthread_mutex_lock(&kp->lock);
	kp->parked++;
	pthread_cond_broadcast(&kp->pause_cond);
	while (__atomic_load_n(&kp->pause_requested, __ATOMIC_SEQ_CST) &&
	       !__atomic_load_n(&kp->stopping, __ATOMIC_SEQ_CST))
		pthread_cond_wait(&kp->pause_cond, &kp->lock);
	kp->parked--;
	pthread_mutex_unlock(&kp->lock);
}

/* The guest is over: record why (first caller wins), with kp->lock held;
 * true for the first. The caller then stops the vCPUs (kick_vcpus). */
static bool end_guest_locked(struct kvm_partition *kp, int status, const char *failure)
{
	if (kp->stats.exited)
		return false;
	kp->stats.exited = true;
	kp->stats.exit_status = status;
	eventfd_write(kp->end_fd, 1);
	if (failure) {
		kp->stats.failed = true;
		snprintf(kp->stats.failure, sizeof(kp->stats.failure), "%s", failure);
	}
	pthread_cond_broadcast(&kp->ended_cond);
	return true;
}

static void end_guest(struct kvm_partition *kp, int status, const char *failure)
{
	pthread_mutex_lock(&kp->lock);
	bool first = end_guest_locked(kp, status, failure);
	pthread_mutex_unlock(&kp->lock);
	if (!first)
		return;
	if (failure)
		log_line(kp, "KVM partition stopped: %s", failure);
	kick_vcpus(kp);
}

void kvm_partition_exit(struct kvm_partition *kp, int status)
{
	end_guest(kp, status, NULL);
}

__attribute__((format(printf, 2, 3))) static void fail(struct kvm_partition *kp,
						      const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	end_guest(kp, -1, buf);
}

/* ------------------------------------------------------------------ */
/* What host/hv calls back                                             */
/* ------------------------------------------------------------------ */

static int send_msi(struct kvm_partition *kp, uint32_t vp, uint8_t vector)
{
	/* Fixed delivery, physical destination = the VP's APIC id, edge. */
	struct kvm_msi msi = {
		.address_lo = MSI_ADDRESS_BASE | vp << MSI_DEST_SHIFT,
		.data = vector,
	};
	return ioctl(kp->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

/* hv may call this with a VP lock of its own held, from any thread. An
 * auto-EOI vector is remembered for the vCPU to end once the guest has
 * taken it (auto_eoi.h), and the timer thread woken to see that the vCPU
 * comes out to look. */
static void hv_inject(void *ctx, uint32_t vp, uint8_t vector, bool auto_eoi)
{
	struct kvm_partition *kp = ctx;

	if (vp >= kp->cfg.vp_count || send_msi(kp, vp, vector))
		return;
	partition_count(&kp->stats.interrupts, 1);
	if (auto_eoi) {
		struct kvm_vp *v = &kp->vps[vp];
		pthread_mutex_lock(&v->auto_eoi_lock);
		vector_set_add(&v->auto_eoi, vector);
		vector_set_add(&v->auto_eoi_fresh, vector);
		__atomic_store_n(&v->auto_eoi_pending, true, __ATOMIC_SEQ_CST);
		pthread_mutex_unlock(&v->auto_eoi_lock);
		partition_count(&kp->stats.auto_eoi_sent, 1);
		eventfd_write(kp->kick_fd, 1);
	}
}

static void hv_timers_changed(void *ctx)
{
	struct kvm_partition *kp = ctx;
	eventfd_write(kp->kick_fd, 1);
}

static int request_pause(struct kvm_partition *kp);

static void hv_crash(void *ctx, uint32_t vp, const uint64_t params[5], const char *message,
		     uint32_t len)
{
	struct kvm_partition *kp = ctx;

	partition_log_crash(kp->cfg.log, kp->cfg.log_ctx, vp, params, message, len);
	if (kp->cfg.crash)
		kp->cfg.crash(kp->cfg.crash_ctx, vp, params, message, len);
	/* As on Hyper-V, a crash report is the end of the VM's run here, or
	 * with pause_on_crash its pause, kept for inspection (hv calls this
	 * from an MSR write, with no lock held). */
	if (kp->cfg.pause_on_crash)
		request_pause(kp);
	else
		end_guest(kp, KVM_PARTITION_EXIT_CRASHED, NULL);
}

__attribute__((format(printf, 2, 0))) static void hv_log(void *ctx, const char *fmt,
							 va_list ap)
{
	struct kvm_partition *kp = ctx;
	partition_log_va(kp->cfg.log, kp->cfg.log_ctx, fmt, ap);
}

static const struct hv_host_ops hv_ops = {
	.inject = hv_inject,
	.timers_changed = hv_timers_changed,
	.crash = hv_crash,
	.log = hv_log,
};

/* ------------------------------------------------------------------ */
/* Pieces without KVM: trampoline, CPUID, MSR filter                   */
/* ------------------------------------------------------------------ */

uint32_t kvm_partition_hypercall_code(uint8_t *buf, uint32_t size)
{
	static const uint8_t code[] = {
		0xF3, 0x0F, 0x1E, 0xFA,             /* endbr64: CET-IBT guests call here */
		0xE6, KVM_PARTITION_HYPERCALL_PORT, /* out imm8, al: exits, RCX/RDX/R8 intact */
		0xC3,                               /* ret: RAX holds the result */
	};
	if (size < sizeof(code))
		return 0;
	memcpy(buf, code, sizeof(code));
	return sizeof(code);
}

int kvm_partition_build_cpuid(const struct hv_partition *hv, struct kvm_cpuid_entry2 *entries,
			      uint32_t count, uint32_t capacity)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < count && i < capacity; i++) {
		struct kvm_cpuid_entry2 e = entries[i];
		/* KVM's signature and feature leaves must not show through:
		 * a guest seeing them would take KVM paths hvkit does not
		 * serve (kvmclock, PV EOI...). */
		if (e.function >= HV_CPUID_VENDOR_AND_MAX && e.function <= 0x4FFFFFFFu)
			continue;
		if (e.function == 1)
			e.ecx |= HV_CPUID1_ECX_HYPERVISOR;
		entries[n++] = e;
	}
	for (uint32_t leaf = HV_CPUID_VENDOR_AND_MAX;; leaf++) {
		uint32_t r[4] = {0};
		if (!hv_cpuid(hv, leaf, r))
			break;
		if (n == capacity)
			return -ENOSPC;
		entries[n++] = (struct kvm_cpuid_entry2){
			.function = leaf, .eax = r[0], .ebx = r[1], .ecx = r[2], .edx = r[3]};
	}
	return (int)n;
}

/* All zeros: every MSR of the range is "denied", so with
 * KVM_MSR_EXIT_REASON_FILTER each access exits to user space. */
static const uint8_t synthetic_msr_bitmap[(HV_MSR_RANGE_LAST - HV_MSR_RANGE_FIRST + 1) / 8];

void kvm_partition_msr_filter(struct kvm_msr_filter *filter)
{
	*filter = (struct kvm_msr_filter){.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
	filter->ranges[0] = (struct kvm_msr_filter_range){
		.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
		.nmsrs = HV_MSR_RANGE_LAST - HV_MSR_RANGE_FIRST + 1,
		.base = HV_MSR_RANGE_FIRST,
		.bitmap = (uint8_t *)synthetic_msr_bitmap, /* KVM only reads it */
	};
}

/* ------------------------------------------------------------------ */
/* Time                                                                */
/* ------------------------------------------------------------------ */

uint64_t kvm_partition_now(const struct kvm_partition *kp)
{
	return hv_ref_time(kp->hv, __rdtsc() + kp->tsc_offset);
}

/* vCPUs with auto-EOI vectors not yet ended are kicked out to look, again
 * every AUTO_EOI_RECHECK while the guest has not taken them: the bound on
 * how long such a vector can hold back lower ones. Returns when to look
 * next (UINT64_MAX: nothing outstanding). */
static uint64_t kick_for_auto_eoi(struct kvm_partition *kp, uint64_t now)
{
	bool any = false;
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++) {
		struct kvm_vp *v = &kp->vps[i];
		if (__atomic_load_n(&v->auto_eoi_pending, __ATOMIC_SEQ_CST)) {
			kick_vcpu(v);
			any = true;
		}
	}
	return any ? now + AUTO_EOI_RECHECK : UINT64_MAX;
}

static void rearm_timers(struct kvm_partition *kp)
{
	uint64_t now = kvm_partition_now(kp);
	uint64_t next = hv_scan(kp->hv, now);
	partition_count(&kp->stats.timer_scans, 1);
	uint64_t recheck = kick_for_auto_eoi(kp, now);
	partition_arm_timer(kp->timer_fd, now, recheck < next ? recheck : next);
}

static void *timer_thread(void *arg)
{
	struct kvm_partition *kp = arg;
	struct epoll_event ev[4];

	while (!__atomic_load_n(&kp->stopping, __ATOMIC_SEQ_CST)) {
		/* Paused: no timer fires into a partition being saved. */
		if (__atomic_load_n(&kp->pause_requested, __ATOMIC_SEQ_CST)) {
			park(kp);
			continue;
		}
		int n = epoll_wait(kp->epoll_fd, ev, 4, -1);
		if (n < 0 && errno != EINTR)
			break;
		uint64_t count;
		for (int i = 0; i < n; i++)
			if (read(ev[i].data.fd, &count, sizeof(count)) < 0)
				count = 0;
		if (n > 0)
			rearm_timers(kp);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Exits                                                               */
/* ------------------------------------------------------------------ */

static void serve_msr(struct kvm_partition *kp, struct kvm_vp *v, bool write)
{
	struct kvm_run *run = v->run;
	uint64_t value = 0;
	int err;

	uint64_t now = kvm_partition_now(kp);
	if (write) {
		err = hv_msr_write(kp->hv, v->index, run->msr.index, run->msr.data, now);
	} else {
		err = hv_msr_read(kp->hv, v->index, run->msr.index, now, &value);
		run->msr.data = value;
	}
	partition_count_own(&v->msr_exits);
	if (err)
		partition_count_own(&v->msr_gp);
	/* Non-zero error: KVM injects #GP into the guest. */
	run->msr.error = err ? 1 : 0;
}

/*
 * A hypercall through the trampoline. KVM finishes an OUT (advances RIP)
 * only on the next KVM_RUN, and register state is consistent only then:
 * so complete it first with immediate_exit, then read the registers,
 * dispatch and write RAX.
 */
static int serve_hypercall(struct kvm_partition *kp, struct kvm_vp *v)
{
	struct kvm_run *run = v->run;
	struct kvm_regs fetched, *regs = &fetched;

	run->immediate_exit = 1;
	int r = ioctl(v->fd, KVM_RUN, 0);
	if (r < 0 && errno != EINTR)
		return -errno;
	if (!__atomic_load_n(&kp->stopping, __ATOMIC_SEQ_CST))
		run->immediate_exit = 0;
	/* With synced registers KVM stored them in the run area on the way
	 * out and takes them back on the way in: no extra ioctls. */
	if (kp->sync_regs)
		regs = &run->s.regs.regs;
	else if (ioctl(v->fd, KVM_GET_REGS, regs) < 0)
		return -errno;
	struct hv_hypercall hc = {regs->rcx, regs->rdx, regs->r8};
	regs->rax = hv_hypercall(kp->hv, v->index, &hc, kvm_partition_now(kp));
	partition_count_own(&v->hypercalls);
	if (kp->sync_regs) {
		run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
		return 0;
	}
	return ioctl(v->fd, KVM_SET_REGS, regs) < 0 ? -errno : 0;
}

static int serve_io(struct kvm_partition *kp, struct kvm_vp *v)
{
	struct kvm_run *run = v->run;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	if (out && run->io.port == KVM_PARTITION_HYPERCALL_PORT && run->io.size == 1 &&
	    run->io.count == 1)
		return serve_hypercall(kp, v);
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		uint32_t value = UINT32_MAX;
		if (out)
			memcpy(&value, data, run->io.size);
		if (out && kp->cfg.debug_exit && run->io.port == KVM_PARTITION_DEBUG_EXIT_PORT) {
			kvm_partition_exit(kp, (int)((value << 1) | 1));
			continue;
		}
		if (kp->cfg.pio)
			kp->cfg.pio(kp->cfg.pio_ctx, kp, v->index, run->io.port, run->io.size, out,
				    &value);
		if (!out)
			memcpy(data, &value, run->io.size);
	}
	partition_count_own(&v->pio_exits);
	return 0;
}

/* One exit; negative to stop the vCPU. */
/* What KVM could not do, with where the guest was: the suberror (1:
 * emulation failed), KVM's data words (for emulation failures: the
 * instruction bytes when it has them) and RIP. */
static void internal_error(struct kvm_partition *kp, struct kvm_vp *v, struct kvm_run *run)
{
	struct kvm_regs regs;
	unsigned long long rip = ioctl(v->fd, KVM_GET_REGS, &regs) ? 0 : regs.rip;
	char data[96] = "";
	size_t len = 0;
	for (uint32_t i = 0; i < run->internal.ndata && i < 4 && len < sizeof(data); i++)
		len += (size_t)snprintf(data + len, sizeof(data) - len, " %#llx",
					(unsigned long long)run->internal.data[i]);
	fail(kp, "VP %u: KVM internal error %u at RIP %#llx (data:%s)", v->index,
	     run->internal.suberror, rip, len ? data : " none");
}

static int serve_exit(struct kvm_partition *kp, struct kvm_vp *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return serve_io(kp, v);
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		serve_msr(kp, v, run->exit_reason == KVM_EXIT_X86_WRMSR);
		return 0;
	case KVM_EXIT_MMIO:
		/* No MMIO devices yet: reads see all ones, writes vanish. */
		if (!run->mmio.is_write)
			memset(run->mmio.data, 0xFF, sizeof(run->mmio.data));
		return 0;
	case KVM_EXIT_HLT:
		return 0; /* the in-kernel irqchip normally keeps HLT inside */
	case KVM_EXIT_INTR:
		return 0;
	case KVM_EXIT_SHUTDOWN:
		fail(kp, "VP %u: triple fault (shutdown)", v->index);
		return -1;
	case KVM_EXIT_FAIL_ENTRY:
		fail(kp, "VP %u: entry failed, reason %#llx", v->index,
		     (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return -1;
	case KVM_EXIT_INTERNAL_ERROR:
		internal_error(kp, v, run);
		return -1;
	default:
		fail(kp, "VP %u: unexpected exit %u", v->index, run->exit_reason);
		return -1;
	}
}

/* An EOI written to the x2APIC EOI register, as the guest would: ends the
 * highest in-service vector and nothing else (no other LAPIC state is
 * written, so an interrupt that arrives meanwhile is not lost, as it
 * would be with KVM_SET_LAPIC). False where the LAPIC is in xAPIC mode. */
static bool x2apic_eoi(struct kvm_vp *v)
{
	union {
		struct kvm_msrs msrs;
		uint8_t room[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} eoi = {.msrs.nmsrs = 1};
	eoi.msrs.entries[0].index = MSR_X2APIC_EOI; /* data 0 */
	return ioctl(v->fd, KVM_SET_MSRS, &eoi.msrs) == 1;
}

/* At an exit of this vCPU: ends the auto-EOI vectors the guest has taken
 * (auto_eoi.h). */
static void settle_auto_eoi(struct kvm_partition *kp, struct kvm_vp *v)
{
	/* What is sent from here on may be missing from the read: it is
	 * judged at the next look (another thread's hv_inject can race the
	 * read, and a vector it sent would pass for vanished). */
	pthread_mutex_lock(&v->auto_eoi_lock);
	v->auto_eoi_fresh = (struct vector_set){0};
	pthread_mutex_unlock(&v->auto_eoi_lock);
	struct kvm_lapic_state lapic;
	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return;
	struct vector_set irr, isr;
	auto_eoi_read_lapic(lapic.regs, &irr, &isr);
	pthread_mutex_lock(&v->auto_eoi_lock);
	unsigned vanished = 0;
	int end = auto_eoi_settle(&v->auto_eoi, &v->auto_eoi_fresh, &irr, &isr, &vanished);
	partition_count(&kp->stats.auto_eoi_vanished, vanished);
	if (end >= 0 && x2apic_eoi(v)) {
		auto_eoi_ended(&v->auto_eoi, &irr, (unsigned)end);
		partition_count(&kp->stats.auto_eoi_ended, 1);
	} else if (end >= 0) {
		/* KVM_SET_LAPIC could end it, but would write back IRR as read
		 * here and lose an IPI or device interrupt that came since. */
		vector_set_del(&v->auto_eoi, (unsigned)end);
		partition_count(&kp->stats.auto_eoi_xapic, 1);
		if (!v->auto_eoi_xapic_logged)
			log_line(kp, "VP %u: auto-EOI vector %d with the LAPIC in xAPIC mode: "
				     "hvkit ends auto-EOI in x2APIC mode only (docs/kvm.md)",
				 v->index, end);
		v->auto_eoi_xapic_logged = true;
	}
	__atomic_store_n(&v->auto_eoi_pending, !vector_set_empty(&v->auto_eoi),
			 __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&v->auto_eoi_lock);
}

/* Ends this vCPU's pending work, if any, with result. */
static void finish_work(struct kvm_vp *v, int result)
{
	struct kvm_partition *kp = v->kp;
	pthread_mutex_lock(&kp->lock);
	if (v->work_pending) {
		v->work_result = result;
		__atomic_store_n(&v->work_pending, false, __ATOMIC_SEQ_CST);
		pthread_cond_broadcast(&kp->work_cond);
	}
	pthread_mutex_unlock(&kp->lock);
}

static void *vcpu_thread(void *arg)
{
	struct kvm_vp *v = arg;
	struct kvm_partition *kp = v->kp;

	while (!__atomic_load_n(&kp->stopping, __ATOMIC_SEQ_CST)) {
		if (__atomic_load_n(&v->work_pending, __ATOMIC_SEQ_CST)) {
			finish_work(v, v->work(v->work_ctx));
			continue;
		}
		if (__atomic_load_n(&kp->pause_requested, __ATOMIC_SEQ_CST)) {
			park(kp);
			continue;
		}
		if (__atomic_load_n(&v->auto_eoi_pending, __ATOMIC_SEQ_CST))
			settle_auto_eoi(kp, v);
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno != EINTR && errno != EAGAIN) {
				fail(kp, "VP %u: KVM_RUN: %s", v->index, strerror(errno));
				break;
			}
			/* A kick: what asked for it (stopping, work) is seen at
			 * the top. Cleared before that look, so a kick that
			 * comes after it still stops the next KVM_RUN. */
			__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			continue;
		}
		if (serve_exit(kp, v) < 0)
			break;
	}
	finish_work(v, -ESRCH);
	return NULL;
}

static bool vcpus_running(struct kvm_partition *kp)
{
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++)
		if (!__atomic_load_n(&kp->vps[i].running, __ATOMIC_ACQUIRE))
			return false;
	return !__atomic_load_n(&kp->stopping, __ATOMIC_SEQ_CST);
}

static bool vcpu_work_pending(struct kvm_partition *kp)
{
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++)
		if (__atomic_load_n(&kp->vps[i].work_pending, __ATOMIC_SEQ_CST))
			return true;
	return false;
}

int kvm_partition_on_vcpu_threads(struct kvm_partition *kp, int (*fn)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&kp->lock);
	if (!vcpus_running(kp) || vcpu_work_pending(kp)) {
		pthread_mutex_unlock(&kp->lock);
		return -ESRCH;
	}
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++) {
		struct kvm_vp *v = &kp->vps[i];
		v->work = fn;
		v->work_ctx = ctx;
		v->work_result = 0;
		__atomic_store_n(&v->work_pending, true, __ATOMIC_SEQ_CST);
		kick_vcpu(v);
	}
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 10;
	int err = 0;
	while (!err && vcpu_work_pending(kp))
		err = -pthread_cond_timedwait(&kp->work_cond, &kp->lock, &deadline);
	for (uint32_t i = 0; !err && i < kp->cfg.vp_count; i++)
		err = kp->vps[i].work_result;
	pthread_mutex_unlock(&kp->lock);
	return err;
}

static int kvm_op_on_vp_threads(struct partition *p, int (*fn)(void *ctx), void *ctx)
{
	return kvm_partition_on_vcpu_threads(kvm_partition_of(p), fn, ctx);
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */
/* ------------------------------------------------------------------ */

static void kick_handler(int sig)
{
	(void)sig; /* only there so that KVM_RUN returns EINTR */
}

static int check_extension(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
	return r > 0 ? r : 0;
}

/* The KVM device (fd, or -1) has what the partition needs. */
static bool kvm_has_what_we_need(int fd)
{
	return fd >= 0 && ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION &&
	       check_extension(fd, KVM_CAP_IRQCHIP) && check_extension(fd, KVM_CAP_SIGNAL_MSI) &&
	       check_extension(fd, KVM_CAP_X86_USER_SPACE_MSR) &&
	       check_extension(fd, KVM_CAP_X86_MSR_FILTER) &&
	       check_extension(fd, KVM_CAP_IMMEDIATE_EXIT);
}

static int open_kvm_device(const char *device)
{
	return open(device ? device : "/dev/kvm", O_RDWR | O_CLOEXEC);
}

int kvm_partition_probe(const char *device)
{
	int fd = open_kvm_device(device);
	bool ok = kvm_has_what_we_need(fd);
	if (fd >= 0)
		close(fd);
	return ok ? 0 : KVM_PARTITION_UNAVAILABLE;
}

/* /dev/kvm with what the partition needs, or KVM_PARTITION_UNAVAILABLE. */
static int open_kvm(struct kvm_partition *kp)
{
	kp->kvm_fd = open_kvm_device(kp->cfg.device);
	if (!kvm_has_what_we_need(kp->kvm_fd))
		return KVM_PARTITION_UNAVAILABLE;
	kp->vm_fd = ioctl(kp->kvm_fd, KVM_CREATE_VM, 0);
	return kp->vm_fd < 0 ? KVM_PARTITION_UNAVAILABLE : 0;
}

static int make_vm(struct kvm_partition *kp)
{
	void *map;
	int err = partition_map_memfd("hvkit-guest-ram", kp->cfg.memory_size, &kp->ram_fd, &map);
	kp->ram = map;
	if (err)
		return err;
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = kp->cfg.memory_size,
		.userspace_addr = (uintptr_t)kp->ram,
	};
	if (ioctl(kp->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return -errno;
	err = guest_memory_add_file(&kp->mem, 0, kp->cfg.memory_size, kp->ram, kp->ram_fd, 0);
	if (err)
		return err;
	if (ioctl(kp->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_X86_USER_SPACE_MSR,
		.args = {KVM_MSR_EXIT_REASON_FILTER},
	};
	if (ioctl(kp->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return -errno;
	struct kvm_msr_filter filter;
	kvm_partition_msr_filter(&filter);
	if (ioctl(kp->vm_fd, KVM_X86_SET_MSR_FILTER, &filter) < 0)
		return -errno;
	return 0;
}

static int make_vcpus(struct kvm_partition *kp)
{
	kp->sync_regs = (check_extension(kp->vm_fd, KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_REGS) != 0 &&
			!kp->cfg.plain_regs;
	int size = ioctl(kp->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0)
		return -EINVAL;
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++) {
		struct kvm_vp *v = &kp->vps[i];
		v->kp = kp;
		v->index = i;
		/* vCPU id i gets APIC id i: VP index = APIC id. */
		v->fd = ioctl(kp->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (v->fd < 0)
			return -errno;
		void *run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (run == MAP_FAILED)
			return -errno;
		v->run = run;
		v->run_size = (size_t)size;
		if (kp->sync_regs)
			v->run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	}
	return 0;
}

/* KVM's TSC offset of vCPU vp (guest TSC = host TSC + offset, without
 * TSC scaling, which hvkit does not ask for): 0, or -errno where KVM lacks
 * the attribute (before Linux 5.16). */
static int tsc_offset_attr(struct kvm_partition *kp, uint32_t vp, uint64_t *offset, bool set)
{
	struct kvm_device_attr attr = {
		.group = KVM_VCPU_TSC_CTRL,
		.attr = KVM_VCPU_TSC_OFFSET,
		.addr = (uintptr_t)offset,
	};
	if (ioctl(kp->vps[vp].fd, KVM_HAS_DEVICE_ATTR, &attr) < 0)
		return -errno;
	return ioctl(kp->vps[vp].fd, set ? KVM_SET_DEVICE_ATTR : KVM_GET_DEVICE_ATTR, &attr) < 0
		       ? -errno
		       : 0;
}

/*
 * The guest TSC's offset from the host's. Exact where KVM tells it (and
 * then made the same on every vCPU); otherwise estimated from IA32_TSC
 * read on vCPU 0 between two host reads, keeping the narrowest of a few
 * windows. The reference counter (host side) and the TSC page (guest side)
 * agree only as well as this offset is known.
 */
static int measure_tsc_offset(struct kvm_partition *kp)
{
	uint64_t offset;

	if (tsc_offset_attr(kp, 0, &offset, false) == 0) {
		for (uint32_t i = 1; i < kp->cfg.vp_count; i++)
			if (tsc_offset_attr(kp, i, &offset, true) < 0)
				return -errno;
		kp->tsc_offset = offset;
		return 0;
	}
	/* struct kvm_msrs followed by one entry, laid out by hand: a struct
	 * holding both would put a flexible array mid-struct. */
	union {
		struct kvm_msrs head;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} msrs = {.head.nmsrs = 1};
	uint64_t best_window = UINT64_MAX;
	for (int round = 0; round < 8; round++) {
		msrs.head.entries[0].index = MSR_IA32_TSC;
		uint64_t before = __rdtsc();
		if (ioctl(kp->vps[0].fd, KVM_GET_MSRS, &msrs) != 1)
			return -EIO;
		uint64_t after = __rdtsc();
		if (after - before < best_window) {
			best_window = after - before;
			kp->tsc_offset = msrs.head.entries[0].data - (before + (after - before) / 2);
		}
	}
	return 0;
}

/* The guest TSC's frequency as KVM keeps it (KVM_GET_TSC_KHZ: the host
 * kernel's tsc_khz unless scaled), or a calibration where KVM cannot say. */
static uint64_t guest_tsc_hz(struct kvm_partition *kp)
{
	if (kp->cfg.tsc_hz)
		return kp->cfg.tsc_hz;
	int khz = check_extension(kp->kvm_fd, KVM_CAP_GET_TSC_KHZ)
			  ? ioctl(kp->vps[0].fd, KVM_GET_TSC_KHZ, 0)
			  : -1;
	return khz > 0 ? (uint64_t)khz * 1000 : partition_calibrate_tsc();
}

static int make_hv(struct kvm_partition *kp)
{
	uint8_t code[16];
	uint32_t features = kp->cfg.hv_features ? kp->cfg.hv_features : HV_OFFER_ALL;
	int err = measure_tsc_offset(kp);
	if (err)
		return err;
	struct hv_config hc = {
		.vp_count = kp->cfg.vp_count,
		.tsc_hz = guest_tsc_hz(kp),
		.tsc_at_start = __rdtsc() + kp->tsc_offset,
		/* KVM's in-kernel APIC timer counts at its 1 ns bus cycle
		 * (APIC_BUS_CYCLE_NS): what the frequency MSR reports, so a
		 * Linux guest skips its LAPIC calibration. */
		.features = features,
		.apic_hz = 1000000000,
		/* As Hyper-V with APIC virtualization: auto-EOI works, but a
		 * plain EOI is cheaper here (no look at the LAPIC). */
		.deprecate_auto_eoi = true,
		.auto_eoi_supported = true,
		.log_milestones = kp->cfg.log_milestones,
		.hypercall_code = code,
		.hypercall_code_len = kvm_partition_hypercall_code(code, sizeof(code)),
	};
	kp->hv = hv_partition_new(&hc, &kp->mem, &hv_ops, kp);
	return kp->hv ? 0 : -errno;
}

static int set_cpuid(struct kvm_partition *kp)
{
	struct kvm_cpuid2 *cpuid =
		calloc(1, sizeof(*cpuid) + MAX_CPUID_ENTRIES * sizeof(struct kvm_cpuid_entry2));
	if (!cpuid)
		return -ENOMEM;
	int err = 0;
	cpuid->nent = MAX_CPUID_ENTRIES;
	if (ioctl(kp->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		err = -errno;
		goto out;
	}
	int n = kvm_partition_build_cpuid(kp->hv, cpuid->entries, cpuid->nent, MAX_CPUID_ENTRIES);
	if (n < 0) {
		err = n;
		goto out;
	}
	cpuid->nent = (uint32_t)n;
	for (uint32_t i = 0; i < kp->cfg.vp_count && !err; i++) {
		for (uint32_t j = 0; j < cpuid->nent; j++) {
			struct kvm_cpuid_entry2 *e = &cpuid->entries[j];
			/* Initial APIC id: leaf 1 EBX 31:24, leaf 0xB/0x1F EDX. */
			if (e->function == 1)
				e->ebx = (e->ebx & 0x00FFFFFFu) | i << 24;
			if (e->function == 0xB || e->function == 0x1F)
				e->edx = i;
		}
		if (ioctl(kp->vps[i].fd, KVM_SET_CPUID2, cpuid) < 0)
			err = -errno;
	}
out:
	free(cpuid);
	return err;
}

static int make_timer(struct kvm_partition *kp)
{
	kp->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	kp->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	kp->end_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	kp->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (kp->epoll_fd < 0 || kp->kick_fd < 0 || kp->end_fd < 0 || kp->timer_fd < 0)
		return -errno;
	int fds[] = {kp->kick_fd, kp->timer_fd};
	for (int i = 0; i < 2; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
		if (epoll_ctl(kp->epoll_fd, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			return -errno;
	}
	return 0;
}

int kvm_partition_new(const struct kvm_partition_config *cfg, struct kvm_partition **out)
{
	if (cfg->vp_count == 0 || cfg->vp_count > KVM_PARTITION_MAX_VPS ||
	    cfg->memory_size < 2 * HV_PAGE_SIZE || cfg->memory_size % HV_PAGE_SIZE ||
	    cfg->memory_size > (3ull << 30))
		return -EINVAL;
	struct kvm_partition *kp = calloc(1, sizeof(*kp));
	if (!kp)
		return -ENOMEM;
	kp->base.ops = &kvm_partition_ops;
	kp->cfg = *cfg;
	pthread_mutex_init(&kp->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	/* kvm_partition_wait's and on_vcpu_threads' deadlines */
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&kp->ended_cond, &attr);
	pthread_cond_init(&kp->work_cond, &attr);
	pthread_cond_init(&kp->pause_cond, &attr);
	pthread_condattr_destroy(&attr);
	kp->kvm_fd = kp->vm_fd = kp->ram_fd = -1;
	kp->epoll_fd = kp->kick_fd = kp->end_fd = kp->timer_fd = -1;
	for (uint32_t i = 0; i < KVM_PARTITION_MAX_VPS; i++) {
		kp->vps[i].fd = -1;
		pthread_mutex_init(&kp->vps[i].auto_eoi_lock, NULL);
	}

	int err = open_kvm(kp);
	if (!err)
		err = make_vm(kp);
	if (!err)
		err = make_vcpus(kp);
	if (!err)
		err = make_hv(kp);
	if (!err)
		err = set_cpuid(kp);
	if (!err)
		err = make_timer(kp);
	if (err) {
		if (err != KVM_PARTITION_UNAVAILABLE)
			log_line(kp, "cannot create the KVM partition: %s", strerror(-err));
		kvm_partition_stop(kp);
		return err;
	}
	*out = kp;
	return 0;
}

int kvm_partition_get_registers(struct kvm_partition *kp, uint32_t vp, struct kvm_regs *regs,
				struct kvm_sregs *sregs)
{
	if (vp >= kp->cfg.vp_count || kp->vps[vp].running)
		return -EINVAL;
	if (sregs && ioctl(kp->vps[vp].fd, KVM_GET_SREGS, sregs) < 0)
		return -errno;
	if (regs && ioctl(kp->vps[vp].fd, KVM_GET_REGS, regs) < 0)
		return -errno;
	return 0;
}

int kvm_partition_set_registers(struct kvm_partition *kp, uint32_t vp,
				const struct kvm_regs *regs, const struct kvm_sregs *sregs)
{
	if (vp >= kp->cfg.vp_count || kp->vps[vp].running)
		return -EINVAL;
	if (sregs && ioctl(kp->vps[vp].fd, KVM_SET_SREGS, sregs) < 0)
		return -errno;
	if (regs && ioctl(kp->vps[vp].fd, KVM_SET_REGS, regs) < 0)
		return -errno;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Pause, resume, save and restore (partition.h)                       */
/* ------------------------------------------------------------------ */

/* The threads that park while paused (kp->lock held). */
static uint32_t parking_threads(const struct kvm_partition *kp)
{
	uint32_t n = kp->timer_running;
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++)
		n += __atomic_load_n(&kp->vps[i].running, __ATOMIC_ACQUIRE);
	return n;
}

/* No thread of the partition runs or changes KVM's state: before launch,
 * or paused with every thread parked (kp->lock held). */
static bool quiescent(const struct kvm_partition *kp)
{
	uint32_t threads = parking_threads(kp);
	return !threads || (__atomic_load_n(&kp->pause_requested, __ATOMIC_SEQ_CST) &&
			    kp->parked == threads);
}

static bool quiescent_now(struct kvm_partition *kp)
{
	pthread_mutex_lock(&kp->lock);
	bool quiet = quiescent(kp);
	pthread_mutex_unlock(&kp->lock);
	return quiet;
}

/* Asks every vCPU and the timer thread to park, without waiting for
 * them (a vCPU may ask: it parks once back in its loop). 0, -EALREADY
 * (paused or pausing), -ESRCH (the guest ended). */
static int request_pause(struct kvm_partition *kp)
{
	pthread_mutex_lock(&kp->lock);
	if (__atomic_load_n(&kp->stopping, __ATOMIC_SEQ_CST) || kp->stats.exited ||
	    kp->pause_requested) {
		bool again = kp->pause_requested;
		pthread_mutex_unlock(&kp->lock);
		return again ? -EALREADY : -ESRCH;
	}
	__atomic_store_n(&kp->pause_requested, true, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&kp->lock);
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++)
		kick_vcpu(&kp->vps[i]);
	eventfd_write(kp->kick_fd, 1);
	return 0;
}

static int kvm_op_pause(struct partition *p)
{
	struct kvm_partition *kp = kvm_partition_of(p);
	int err = request_pause(kp);
	if (err)
		return err;

	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 10;
	pthread_mutex_lock(&kp->lock);
	while (!err && !quiescent(kp) && !__atomic_load_n(&kp->stopping, __ATOMIC_SEQ_CST))
		err = -pthread_cond_timedwait(&kp->pause_cond, &kp->lock, &deadline);
	if (!err && __atomic_load_n(&kp->stopping, __ATOMIC_SEQ_CST))
		err = -ESRCH;
	if (err) {
		__atomic_store_n(&kp->pause_requested, false, __ATOMIC_SEQ_CST);
		pthread_cond_broadcast(&kp->pause_cond);
	}
	pthread_mutex_unlock(&kp->lock);
	return err;
}

static int kvm_op_resume(struct partition *p)
{
	struct kvm_partition *kp = kvm_partition_of(p);
	pthread_mutex_lock(&kp->lock);
	bool paused = kp->pause_requested;
	__atomic_store_n(&kp->pause_requested, false, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&kp->pause_cond);
	pthread_mutex_unlock(&kp->lock);
	return paused ? 0 : -EINVAL;
}

static void vcpu_fds(const struct kvm_partition *kp, int fds[KVM_PARTITION_MAX_VPS])
{
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++)
		fds[i] = kp->vps[i].fd;
}

/* With kp->lock held (the device lock: partition.h). */
static int kvm_op_save(struct partition *p, void *buf, size_t *len)
{
	struct kvm_partition *kp = kvm_partition_of(p);
	if (!quiescent(kp))
		return -EBUSY;
	int fds[KVM_PARTITION_MAX_VPS];
	vcpu_fds(kp, fds);
	return kvm_state_save(kp->kvm_fd, kp->vm_fd, fds, kp->cfg.vp_count, buf, len);
}

static int kvm_op_restore(struct partition *p, const void *buf, size_t len)
{
	struct kvm_partition *kp = kvm_partition_of(p);
	if (!quiescent_now(kp))
		return -EBUSY;
	struct kvm_state *state;
	int err = kvm_state_parse(buf, len, kp->cfg.vp_count, kvm_state_xsave_size(kp->kvm_fd),
				  &state);
	if (err)
		return err;
	int fds[KVM_PARTITION_MAX_VPS];
	vcpu_fds(kp, fds);
	err = kvm_state_apply(state, kp->vm_fd, fds);
	kvm_state_free(state);
	/* The guest's TSC is the saved one now: the host's view of it
	 * (kvm_partition_now) follows. */
	if (!err)
		err = measure_tsc_offset(kp);
	kp->restored = !err;
	return err;
}

int kvm_partition_launch(struct kvm_partition *kp)
{
	/* Restored (hv's record loaded since): where the guest TSC runs at
	 * another rate than where it was saved, reference time follows the
	 * rate of this host from the TSC it starts at. */
	if (kp->restored)
		hv_adopt_tsc_frequency(kp->hv, __rdtsc() + kp->tsc_offset);
	/* No SA_RESTART: the signal must interrupt KVM_RUN. Installing the
	 * same no-op handler again is harmless. */
	struct sigaction sa = {.sa_handler = kick_handler};
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	if (pthread_create(&kp->timer_thread, NULL, timer_thread, kp))
		return -EAGAIN;
	kp->timer_running = true;
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++) {
		if (pthread_create(&kp->vps[i].thread, NULL, vcpu_thread, &kp->vps[i]))
			return -EAGAIN;
		__atomic_store_n(&kp->vps[i].running, true, __ATOMIC_RELEASE);
	}
	return 0;
}

int kvm_partition_wait(struct kvm_partition *kp, int timeout_ms, int *status)
{
	struct timespec deadline;
	int err = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (timeout_ms >= 0) {
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&kp->lock);
	while (!kp->stats.exited && !err)
		err = timeout_ms < 0 ? pthread_cond_wait(&kp->ended_cond, &kp->lock)
				     : pthread_cond_timedwait(&kp->ended_cond, &kp->lock, &deadline);
	if (kp->stats.exited)
		*status = kp->stats.exit_status;
	bool exited = kp->stats.exited;
	pthread_mutex_unlock(&kp->lock);
	return exited ? 0 : -ETIMEDOUT;
}

void kvm_partition_halt(struct kvm_partition *kp)
{
	kick_vcpus(kp);
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++) {
		if (kp->vps[i].running)
			pthread_join(kp->vps[i].thread, NULL);
		kp->vps[i].running = false;
	}
	if (kp->timer_running)
		pthread_join(kp->timer_thread, NULL);
	kp->timer_running = false;
}

void kvm_partition_stop(struct kvm_partition *kp)
{
	kvm_partition_halt(kp);
	for (uint32_t i = 0; i < KVM_PARTITION_MAX_VPS; i++) {
		if (kp->vps[i].run)
			munmap(kp->vps[i].run, kp->vps[i].run_size);
		partition_close_fd(&kp->vps[i].fd);
	}
	partition_close_fd(&kp->epoll_fd);
	partition_close_fd(&kp->kick_fd);
	partition_close_fd(&kp->end_fd);
	partition_close_fd(&kp->timer_fd);
	partition_close_fd(&kp->vm_fd);
	partition_close_fd(&kp->kvm_fd);
	if (kp->hv)
		hv_partition_free(kp->hv);
	if (kp->ram)
		munmap(kp->ram, kp->cfg.memory_size);
	partition_close_fd(&kp->ram_fd);
	pthread_cond_destroy(&kp->ended_cond);
	pthread_cond_destroy(&kp->work_cond);
	pthread_cond_destroy(&kp->pause_cond);
	for (uint32_t i = 0; i < KVM_PARTITION_MAX_VPS; i++)
		pthread_mutex_destroy(&kp->vps[i].auto_eoi_lock);
	pthread_mutex_destroy(&kp->lock);
	free(kp);
}

int kvm_partition_end_fd(struct kvm_partition *kp)
{
	return kp->end_fd;
}

void kvm_partition_lock(struct kvm_partition *kp)
{
	pthread_mutex_lock(&kp->lock);
}

void kvm_partition_unlock(struct kvm_partition *kp)
{
	pthread_mutex_unlock(&kp->lock);
}

struct hv_partition *kvm_partition_hv(struct kvm_partition *kp)
{
	return kp->hv;
}

const struct guest_memory *kvm_partition_memory(const struct kvm_partition *kp)
{
	return &kp->mem;
}

struct partition *kvm_partition_base(struct kvm_partition *kp)
{
	return &kp->base;
}

void kvm_partition_kick(struct kvm_partition *kp)
{
	eventfd_write(kp->kick_fd, 1);
}

int kvm_partition_interrupt(struct kvm_partition *kp, uint32_t vp, uint8_t vector)
{
	if (vp >= kp->cfg.vp_count)
		return -EINVAL;
	int err = send_msi(kp, vp, vector);
	if (!err)
		partition_count(&kp->stats.interrupts, 1);
	return err;
}

int kvm_partition_set_irq(struct kvm_partition *kp, uint32_t irq, bool level)
{
	struct kvm_irq_level line = {.irq = irq, .level = level};
	return ioctl(kp->vm_fd, KVM_IRQ_LINE, &line) < 0 ? -errno : 0;
}

void kvm_partition_get_stats(struct kvm_partition *kp, struct kvm_partition_stats *out)
{
	pthread_mutex_lock(&kp->lock);
	out->exited = kp->stats.exited;
	out->exit_status = kp->stats.exit_status;
	out->failed = kp->stats.failed;
	memcpy(out->failure, kp->stats.failure, sizeof(out->failure));
	pthread_mutex_unlock(&kp->lock);
	out->interrupts = partition_counted(&kp->stats.interrupts);
	out->timer_scans = partition_counted(&kp->stats.timer_scans);
	out->auto_eoi_sent = partition_counted(&kp->stats.auto_eoi_sent);
	out->auto_eoi_ended = partition_counted(&kp->stats.auto_eoi_ended);
	out->auto_eoi_vanished = partition_counted(&kp->stats.auto_eoi_vanished);
	out->auto_eoi_xapic = partition_counted(&kp->stats.auto_eoi_xapic);
	out->msr_exits = out->msr_gp = out->hypercalls = out->pio_exits = 0;
	for (uint32_t i = 0; i < kp->cfg.vp_count; i++) {
		const struct kvm_vp *v = &kp->vps[i];
		out->msr_exits += partition_counted(&v->msr_exits);
		out->msr_gp += partition_counted(&v->msr_gp);
		out->hypercalls += partition_counted(&v->hypercalls);
		out->pio_exits += partition_counted(&v->pio_exits);
	}
}
