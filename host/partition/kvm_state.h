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

#include "record.h"

/* 0 or -errno (the record then holds garbage; drop it). */
int kvm_state_save_vm(int vm_fd, struct record_writer *w);
int kvm_state_save_vcpu(int kvm_fd, int vcpu_fd, struct record_writer *w);

/* 0, -EINVAL for a field that does not fit (the reader is then bad), or
 * KVM's -errno for a value it refuses. Loading is not undone on failure:
 * load into a partition that has not run, and drop it if this fails. */
int kvm_state_load_vm(int vm_fd, struct record_reader *r);
int kvm_state_load_vcpu(int kvm_fd, int vcpu_fd, struct record_reader *r);

#endif /* HVKIT_KVM_STATE_H */
