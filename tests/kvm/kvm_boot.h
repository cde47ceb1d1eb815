/* SPDX-License-Identifier: MIT */
/*
 * Starting the KVM test guest: load its flat image and put VP 0 straight
 * into 64-bit long mode at CPL0 (identity-mapped first 4 GiB, a flat GDT),
 * as a firmware-less loader does. The guest loaders of a later increment
 * (PVH, bzImage) will live in host/vmm; this is the tests' own.
 */
#ifndef HVKIT_KVM_BOOT_H
#define HVKIT_KVM_BOOT_H

#include <stdint.h>

#include "kvm.h"

/* Page tables and GDT the loader writes (below the guest's stack). */
#define KT_GDT_GPA 0x1000u
#define KT_PML4_GPA 0x2000u
#define KT_PDPT_GPA 0x3000u
#define KT_PD_GPA 0x4000u /* four pages: 4 GiB in 2 MiB pages */

/* Loads the image file at load_gpa and starts VP 0 there in long mode
 * with RSP = stack_top and RDI = arg. 0 or a negative errno. */
int kt_boot_long_mode(struct kvm_partition *kp, const char *image, uint64_t load_gpa,
		      uint64_t stack_top, uint64_t arg);

#endif
