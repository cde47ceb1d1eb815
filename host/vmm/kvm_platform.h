/* SPDX-License-Identifier: MIT */
/*
 * The PC around a KVM partition: the legacy devices in I/O space (pio.h),
 * the ACPI tables (acpi_tables.h) and a kernel loaded into RAM with the boot
 * VP's registers set (loader.h). The VMBus server is the machine's
 * business; this is the platform it runs on.
 *
 * Order of use: kvm_platform_new, kvm_partition_new with kvm_platform_pio
 * as the partition's port I/O handler, kvm_platform_boot, then launch.
 */
#ifndef HVKIT_KVM_PLATFORM_H
#define HVKIT_KVM_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvm.h"

/* hvkit's exit status when the guest ends the machine itself (the
 * isa-debug-exit device gives odd statuses, these are even). */
#define KVM_PLATFORM_EXIT_POWER_OFF 0
#define KVM_PLATFORM_EXIT_HIBERNATED 4 /* S4: the guest's memory image is on its disk */
#define KVM_PLATFORM_EXIT_RESET 6      /* the guest asked for a reboot */

/* Where VMBus devices may put MMIO (\_SB.VMOD._CRS): below 4 GiB above the
 * largest RAM (3 GiB), and a 64 GiB window at 64 GiB. */
#define KVM_PLATFORM_LOW_MMIO 0xc0000000ull
#define KVM_PLATFORM_LOW_MMIO_SIZE 0x3e000000ull
#define KVM_PLATFORM_HIGH_MMIO (64ull << 30)
#define KVM_PLATFORM_HIGH_MMIO_SIZE (64ull << 30)

struct kvm_platform_config {
	uint32_t cpus;
	uint64_t memory;        /* bytes of RAM (fw_cfg reports it) */
	const char *kernel;     /* path: bzImage, PVH ELF or Multiboot */
	const char *initrd;     /* path or NULL (Multiboot: its one module) */
	const char *cmdline;    /* NULL: empty */
	bool no_s4;             /* leave \_S4 out of the DSDT */
	bool hyperv_testdev;    /* QEMU's Hyper-V test device at 0x3000 */
	/* Console output (the UART's THR); NULL: standard output. */
	void (*console)(void *ctx, const uint8_t *bytes, size_t len);
	void *console_ctx;
};

struct kvm_platform;
struct hv_testdev_stats;

int kvm_platform_new(const struct kvm_platform_config *cfg, struct kvm_platform **out);
/* After kvm_platform_unbind if it was booted: free does not touch the
 * partition, which may be gone. */
void kvm_platform_free(struct kvm_platform *p);

/* The partition's port I/O handler (kvm_partition_config.pio). */
void kvm_platform_pio(void *ctx, struct kvm_partition *kp, uint32_t vp, uint16_t port,
		      uint8_t size, bool out, uint32_t *value);

/* Tables, kernel, registers, interrupt lines. 0, or -errno with a message
 * in err (a kernel file that cannot be booted says why). */
int kvm_platform_boot(struct kvm_platform *p, struct kvm_partition *kp, char *err,
		      size_t errlen);

/* Lets go of the partition once it is halted and before
 * kvm_partition_stop frees it: devices built on its hv (the Hyper-V test
 * device) go, and no device touches it again. */
void kvm_platform_unbind(struct kvm_platform *p);

/* The Hyper-V test device's counters; false if it is not there. */
bool kvm_platform_testdev_stats(struct kvm_platform *p, struct hv_testdev_stats *out);

/* Console input for the guest; returns how many bytes the UART took (0
 * without a platform). */
size_t kvm_platform_input(struct kvm_platform *p, const uint8_t *bytes, size_t len);

/* What the boot loader recognised ("bzImage", "PVH ELF", "Multiboot"). */
const char *kvm_platform_kernel_format(const struct kvm_platform *p);

/* The legacy devices' state (UART, RTC, ACPI PM) as a record, and back
 * (before launch), for snapshots: 0, -ENOSPC (save: *len is the size
 * needed), -EINVAL (load: a corrupt record, nothing changed). */
int kvm_platform_save(struct kvm_platform *p, void *buf, size_t cap, size_t *len);
int kvm_platform_load(struct kvm_platform *p, const void *buf, size_t len);

#endif /* HVKIT_KVM_PLATFORM_H */
