/* SPDX-License-Identifier: MIT */
#ifndef HVKIT_OS_SMP_H
#define HVKIT_OS_SMP_H

/* Where the AP start-up code runs: below 1 MiB, page-aligned, clear of
 * what the loaders use (docs/boot.md) and of the EBDA. */
#define AP_TRAMPOLINE 0x30000

#ifndef __ASSEMBLER__
#include <stdint.h>

#define OS_MAX_VPS 64

/* The enabled processors the MADT lists (at least 1). */
uint32_t smp_count(uint64_t rsdp);

/* Starts every enabled processor of the MADT; returns how many VPs run
 * (the BSP included). ap_ready(vp) runs on each AP once it is up. */
uint32_t smp_start(uint64_t rsdp, void (*ap_ready)(uint32_t apic_id));
#endif

#endif
