/* SPDX-License-Identifier: MIT */
/*
 * What KVM itself keeps of a partition, as fields of a state record
 * (record.h): the VM's clock and interrupt controllers, and each vCPU's
 * registers, system registers, FPU/XSAVE state, XCRs, MSRs, LAPIC,
 * pending events, MP state and debug registers. KVM's own structures
 * (linux/kvm.h, a stable ABI) are stored whole, each with its size, so a
 * loader on a KVM whose structures differ refuses the record instead of
 * misreading it. The VP must not be in KVM_RUN meanwhile.
 * docs/lifecycle.md.
 */
#ifndef HVKIT_KVM_STATE_H
#define HVKIT_KVM_STATE_H

#include <stddef.h>
#include <stdint.h>

/* The size of KVM's XSAVE area (KVM_CAP_XSAVE2 where larger than the
 * 4 KiB struct), or 0 where KVM has no XSAVE state (the legacy FPU state
 * is saved then). A record holds the saving KVM's size; a loader must
 * have the same. */
size_t kvm_state_xsave_size(int kvm_fd);

/* Writes the record of the VM and its vp_count vCPUs into buf (at most
 * *len bytes; *len set to the size needed): 0, -ENOSPC, or KVM's -errno. */
int kvm_state_save(int kvm_fd, int vm_fd, const int *vcpu_fds, uint32_t vp_count, void *buf,
		   size_t *len);

/* A record read and checked whole (header, CRC, VP count, every size,
 * only the MSRs a save writes, nothing after the end), before KVM sees
 * any of it: 0, -EINVAL, -ENOMEM. Pure: the fuzz target's entry. */
struct kvm_state;
int kvm_state_parse(const void *buf, size_t len, uint32_t vp_count, size_t xsave_bytes,
		    struct kvm_state **out);
/* Gives it to KVM, in the order KVM needs: 0, or KVM's -errno. Not undone
 * on failure: apply to a partition that has not run, and drop it if this
 * fails. */
int kvm_state_apply(struct kvm_state *s, int vm_fd, const int *vcpu_fds);
void kvm_state_free(struct kvm_state *s);

#endif /* HVKIT_KVM_STATE_H */
