// SPDX-License-Identifier: MIT
#include "kvm_state.h"
#include "record.h"

#include <errno.h>
#include <stdbool.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

/* The MSRs KVM keeps in the kernel that a guest sets and a restore must
 * carry (the synthetic ones are hvkit's, in hv's record; EFER and the
 * APIC base are in the system registers). Those this KVM does not have
 * are skipped on save. The TSC first: KVM matches the vCPUs' TSC writes
 * that come close together, so every VP keeps one offset. */
#define MSR_TSC_DEADLINE 0x000006e0u

static const uint32_t saved_msrs[] = {
	0x00000010, /* IA32_TSC */
	0x0000003b, /* IA32_TSC_ADJUST */
	0x00000174, 0x00000175, 0x00000176, /* SYSENTER_CS, _ESP, _EIP */
	0x000001a0, /* IA32_MISC_ENABLE */
	0x00000277, /* IA32_PAT */
	MSR_TSC_DEADLINE,
	0x000002ff, /* MTRR default type */
	0x00000200, 0x00000201, 0x00000202, 0x00000203, /* MTRR variable ranges 0..7 */
	0x00000204, 0x00000205, 0x00000206, 0x00000207,
	0x00000208, 0x00000209, 0x0000020a, 0x0000020b,
	0x0000020c, 0x0000020d, 0x0000020e, 0x0000020f,
	0x00000250, 0x00000258, 0x00000259, /* MTRR fixed ranges */
	0x00000268, 0x00000269, 0x0000026a, 0x0000026b,
	0x0000026c, 0x0000026d, 0x0000026e, 0x0000026f,
	0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, /* STAR, LSTAR, CSTAR, FMASK */
	0xc0000102, /* KERNEL_GS_BASE */
	0xc0000103, /* TSC_AUX */
};
#define SAVED_MSR_COUNT (sizeof(saved_msrs) / sizeof(saved_msrs[0]))

/* struct kvm_msrs with room for every saved MSR (a union: a struct
 * holding both would put a flexible array mid-struct). */
union msr_list {
	struct kvm_msrs head;
	uint8_t bytes[sizeof(struct kvm_msrs) + SAVED_MSR_COUNT * sizeof(struct kvm_msr_entry)];
};

enum fpu_kind { FPU_LEGACY = 0, FPU_XSAVE = 1 };

/* ---- one field: a u32 size, then the bytes ---- */

static void put_blob(struct record_writer *w, const void *v, size_t n)
{
	record_put32(w, (uint32_t)n);
	record_put(w, v, n);
}

/* A blob of exactly n bytes into v: 0, or -EINVAL (the reader is bad). */
static int get_blob(struct record_reader *r, void *v, size_t n)
{
	if (record_get32(r) != n)
		r->bad = true;
	record_get(r, v, n);
	return r->bad ? -EINVAL : 0;
}

static int get_ioctl(int fd, unsigned long request, void *v)
{
	return ioctl(fd, request, v) < 0 ? -errno : 0;
}

/* ---- the VM ---- */

static const uint32_t irqchips[] = {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
				    KVM_IRQCHIP_IOAPIC};

static int save_vm(int vm_fd, struct record_writer *w)
{
	struct kvm_clock_data clock = {0};
	int err = get_ioctl(vm_fd, KVM_GET_CLOCK, &clock);
	if (err)
		return err;
	/* Only the value travels: the flags and the host's realtime
	 * stamps describe this host. */
	record_put64(w, clock.clock);
	for (size_t i = 0; i < sizeof(irqchips) / sizeof(irqchips[0]); i++) {
		struct kvm_irqchip chip = {.chip_id = irqchips[i]};
		err = get_ioctl(vm_fd, KVM_GET_IRQCHIP, &chip);
		if (err)
			return err;
		put_blob(w, &chip, sizeof(chip));
	}
	return 0;
}

struct loaded_vm {
	struct kvm_clock_data clock;
	struct kvm_irqchip chips[3];
};

static int read_vm(struct record_reader *r, struct loaded_vm *l)
{
	l->clock = (struct kvm_clock_data){.clock = record_get64(r)};
	for (size_t i = 0; i < 3; i++)
		if (get_blob(r, &l->chips[i], sizeof(l->chips[i])) ||
		    l->chips[i].chip_id != irqchips[i])
			return -EINVAL;
	return r->bad ? -EINVAL : 0;
}

static int write_vm(int vm_fd, struct loaded_vm *l)
{
	int err = get_ioctl(vm_fd, KVM_SET_CLOCK, &l->clock);
	for (size_t i = 0; !err && i < 3; i++)
		err = get_ioctl(vm_fd, KVM_SET_IRQCHIP, &l->chips[i]);
	return err;
}

/* ---- a vCPU ---- */

/* The saved MSRs this KVM has, read one by one (KVM_GET_MSRS stops at
 * the first it does not know). */
static int read_msrs(int vcpu_fd, union msr_list *out)
{
	out->head.nmsrs = 0;
	for (size_t i = 0; i < SAVED_MSR_COUNT; i++) {
		union {
			struct kvm_msrs head;
			uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
		} one = {.head.nmsrs = 1};
		one.head.entries[0].index = saved_msrs[i];
		int n = ioctl(vcpu_fd, KVM_GET_MSRS, &one);
		if (n < 0)
			return -errno;
		if (n == 1)
			out->head.entries[out->head.nmsrs++] = one.head.entries[0];
	}
	return 0;
}

size_t kvm_state_xsave_size(int kvm_fd)
{
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) <= 0)
		return 0;
	int size = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return size > (int)sizeof(struct kvm_xsave) ? (size_t)size : sizeof(struct kvm_xsave);
}

static int save_fpu(size_t size, int vcpu_fd, struct record_writer *w)
{
	if (!size) {
		struct kvm_fpu fpu;
		int err = get_ioctl(vcpu_fd, KVM_GET_FPU, &fpu);
		record_put8(w, FPU_LEGACY);
		put_blob(w, &fpu, sizeof(fpu));
		return err;
	}
	void *xsave = calloc(1, size);
	if (!xsave)
		return -ENOMEM;
	int err = get_ioctl(vcpu_fd, size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE,
			    xsave);
	record_put8(w, FPU_XSAVE);
	put_blob(w, xsave, size);
	free(xsave);
	return err;
}

static int save_vcpu(size_t xsave_bytes, bool has_xcrs, int vcpu_fd, struct record_writer *w)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs = {0};
	union msr_list msrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs debug;
	int err = get_ioctl(vcpu_fd, KVM_GET_REGS, &regs);
	if (!err)
		err = get_ioctl(vcpu_fd, KVM_GET_SREGS, &sregs);
	if (!err && has_xcrs)
		err = get_ioctl(vcpu_fd, KVM_GET_XCRS, &xcrs);
	if (!err)
		err = read_msrs(vcpu_fd, &msrs);
	if (!err)
		err = get_ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic);
	if (!err)
		err = get_ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &events);
	if (!err)
		err = get_ioctl(vcpu_fd, KVM_GET_MP_STATE, &mp);
	if (!err)
		err = get_ioctl(vcpu_fd, KVM_GET_DEBUGREGS, &debug);
	if (err)
		return err;
	put_blob(w, &regs, sizeof(regs));
	put_blob(w, &sregs, sizeof(sregs));
	err = save_fpu(xsave_bytes, vcpu_fd, w);
	record_put8(w, has_xcrs);
	put_blob(w, &xcrs, sizeof(xcrs));
	record_put32(w, msrs.head.nmsrs);
	for (uint32_t i = 0; i < msrs.head.nmsrs; i++) {
		record_put32(w, msrs.head.entries[i].index);
		record_put64(w, msrs.head.entries[i].data);
	}
	put_blob(w, &lapic, sizeof(lapic));
	put_blob(w, &events, sizeof(events));
	put_blob(w, &mp, sizeof(mp));
	put_blob(w, &debug, sizeof(debug));
	return err;
}

/* A vCPU's state as read, before any of it goes to KVM. */
struct loaded_vcpu {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint8_t fpu_kind;
	struct kvm_fpu fpu;
	void *xsave;
	size_t xsave_size;
	uint8_t has_xcrs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp;
	struct kvm_debugregs debug;
	union msr_list msrs; /* last: it ends in a flexible array */
};

static bool msr_saved(uint32_t index)
{
	for (size_t i = 0; i < SAVED_MSR_COUNT; i++)
		if (saved_msrs[i] == index)
			return true;
	return false;
}

static int read_vcpu(size_t xsave_bytes, struct record_reader *r, struct loaded_vcpu *l)
{
	if (get_blob(r, &l->regs, sizeof(l->regs)) || get_blob(r, &l->sregs, sizeof(l->sregs)))
		return -EINVAL;
	l->fpu_kind = record_get8(r);
	if (l->fpu_kind == FPU_XSAVE) {
		/* The XSAVE area must be this KVM's size. */
		l->xsave_size = xsave_bytes;
		if (!l->xsave_size)
			return -EINVAL;
		l->xsave = calloc(1, l->xsave_size);
		if (!l->xsave)
			return -ENOMEM;
		if (get_blob(r, l->xsave, l->xsave_size))
			return -EINVAL;
	} else if (l->fpu_kind != FPU_LEGACY || get_blob(r, &l->fpu, sizeof(l->fpu))) {
		return -EINVAL;
	}
	l->has_xcrs = record_get8(r);
	if (l->has_xcrs > 1 || get_blob(r, &l->xcrs, sizeof(l->xcrs)) ||
	    l->xcrs.nr_xcrs > KVM_MAX_XCRS)
		return -EINVAL;
	uint32_t n = record_get32(r);
	if (n > SAVED_MSR_COUNT)
		return -EINVAL;
	l->msrs.head.nmsrs = n;
	for (uint32_t i = 0; i < n; i++) {
		l->msrs.head.entries[i] = (struct kvm_msr_entry){.index = record_get32(r)};
		l->msrs.head.entries[i].data = record_get64(r);
		/* Only MSRs a save writes: no record sets any other. */
		if (!msr_saved(l->msrs.head.entries[i].index))
			return -EINVAL;
	}
	if (get_blob(r, &l->lapic, sizeof(l->lapic)) ||
	    get_blob(r, &l->events, sizeof(l->events)) || get_blob(r, &l->mp, sizeof(l->mp)) ||
	    get_blob(r, &l->debug, sizeof(l->debug)))
		return -EINVAL;
	return r->bad ? -EINVAL : 0;
}

static int set_msrs(int vcpu_fd, union msr_list *m)
{
	if (!m->head.nmsrs)
		return 0;
	int n = ioctl(vcpu_fd, KVM_SET_MSRS, m);
	return n < 0 ? -errno : (uint32_t)n != m->head.nmsrs ? -EINVAL : 0;
}

/* In the order KVM needs: the APIC base (system registers) before the
 * LAPIC, the MSRs after the system registers (EFER), the events last. */
static int write_vcpu(int vcpu_fd, struct loaded_vcpu *l)
{
	int err = get_ioctl(vcpu_fd, KVM_SET_REGS, &l->regs);
	if (!err)
		err = l->fpu_kind == FPU_XSAVE ? get_ioctl(vcpu_fd, KVM_SET_XSAVE, l->xsave)
					       : get_ioctl(vcpu_fd, KVM_SET_FPU, &l->fpu);
	if (!err && l->has_xcrs)
		err = get_ioctl(vcpu_fd, KVM_SET_XCRS, &l->xcrs);
	if (!err)
		err = get_ioctl(vcpu_fd, KVM_SET_SREGS, &l->sregs);
	/* The TSC deadline after the LAPIC: KVM ignores it unless the LAPIC
	 * timer is in TSC-deadline mode. */
	union msr_list deadline = {.head.nmsrs = 0}, rest = {.head.nmsrs = 0};
	for (uint32_t i = 0; i < l->msrs.head.nmsrs; i++) {
		union msr_list *to = l->msrs.head.entries[i].index == MSR_TSC_DEADLINE ? &deadline : &rest;
		to->head.entries[to->head.nmsrs++] = l->msrs.head.entries[i];
	}
	if (!err)
		err = set_msrs(vcpu_fd, &rest);
	if (!err)
		err = get_ioctl(vcpu_fd, KVM_SET_MP_STATE, &l->mp);
	if (!err)
		err = get_ioctl(vcpu_fd, KVM_SET_LAPIC, &l->lapic);
	if (!err)
		err = set_msrs(vcpu_fd, &deadline);
	if (!err)
		err = get_ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &l->events);
	if (!err)
		err = get_ioctl(vcpu_fd, KVM_SET_DEBUGREGS, &l->debug);
	return err;
}

/* ---- the record ---- */

static const char kvm_state_magic[RECORD_MAGIC_BYTES] = "HVKITKVM";
#define KVM_STATE_VERSION 1u

int kvm_state_save(int kvm_fd, int vm_fd, const int *vcpu_fds, uint32_t vp_count, void *buf,
		   size_t *len)
{
	size_t xsave_bytes = kvm_state_xsave_size(kvm_fd);
	bool has_xcrs = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	struct record_writer w = record_writer(buf, *len);
	int err = save_vm(vm_fd, &w);
	for (uint32_t i = 0; !err && i < vp_count; i++)
		err = save_vcpu(xsave_bytes, has_xcrs, vcpu_fds[i], &w);
	return err ? err
		   : record_finish(&w, kvm_state_magic, KVM_STATE_VERSION, vp_count, len);
}

struct kvm_state {
	uint32_t vp_count;
	struct loaded_vm vm;
	struct loaded_vcpu *vcpus;
};

void kvm_state_free(struct kvm_state *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; s->vcpus && i < s->vp_count; i++)
		free(s->vcpus[i].xsave);
	free(s->vcpus);
	free(s);
}

int kvm_state_parse(const void *buf, size_t len, uint32_t vp_count, size_t xsave_bytes,
		    struct kvm_state **out)
{
	struct record_reader r;
	int err = record_open(buf, len, kvm_state_magic, KVM_STATE_VERSION, vp_count, &r);
	if (err)
		return err;
	struct kvm_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->vp_count = vp_count;
	s->vcpus = calloc(vp_count ? vp_count : 1, sizeof(*s->vcpus));
	err = s->vcpus ? read_vm(&r, &s->vm) : -ENOMEM;
	for (uint32_t i = 0; !err && i < vp_count; i++)
		err = read_vcpu(xsave_bytes, &r, &s->vcpus[i]);
	if (!err && !record_done(&r))
		err = -EINVAL; /* nothing may follow */
	if (err) {
		kvm_state_free(s);
		return err;
	}
	*out = s;
	return 0;
}

int kvm_state_apply(struct kvm_state *s, int vm_fd, const int *vcpu_fds)
{
	int err = write_vm(vm_fd, &s->vm);
	for (uint32_t i = 0; !err && i < s->vp_count; i++)
		err = write_vcpu(vcpu_fds[i], &s->vcpus[i]);
	return err;
}
