/* SPDX-License-Identifier: MIT */
/*
 * Generates the ACPI tables of a KVM machine: RSDP, XSDT and RSDT, FADT,
 * FACS, MADT and a DSDT that lays out VMBus as Hyper-V does: a module
 * device \_SB.VMOD (ACPI0004) whose _CRS holds the MMIO windows VMBus
 * devices may use, and the VMBus device \_SB.VMOD.VMBS ("VMBus") inside it
 * (Linux: drivers/hv/vmbus_drv.c, vmbus_acpi_add walks the device's _CRS
 * and then its ancestors' for the windows).
 */
#ifndef HVKIT_ACPI_TABLES_H
#define HVKIT_ACPI_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 255 /* xAPIC ids; x2APIC entries are not generated */

struct acpi_config {
	uint32_t cpus;         /* processor id = APIC id = VP index, 0..cpus-1 */
	uint64_t low_mmio_base, low_mmio_size;   /* below 4 GiB; size 0: none */
	uint64_t high_mmio_base, high_mmio_size; /* above RAM; size 0: none */
	bool s4;               /* offer hibernation (\_S4); hibernation.rst: it
				* trades against memory hot-add */
	bool com1;             /* describe the 16550 at 0x3f8, IRQ 4 */
	bool rtc;              /* describe the CMOS RTC at 0x70, IRQ 8 */
};

struct acpi_tables {
	uint8_t *data;         /* to be copied to guest memory at base_gpa */
	size_t size;
	uint64_t base_gpa;
	uint64_t rsdp_gpa;     /* what a boot loader hands to the kernel */
	size_t dsdt_offset, dsdt_size; /* for tests and tools */
};

/* Builds the tables to live at base_gpa (16-byte aligned, below 4 GiB so
 * the RSDT can point at them too). 0 or -EINVAL / -ENOMEM. */
int acpi_build(const struct acpi_config *cfg, uint64_t base_gpa, struct acpi_tables *out);
void acpi_tables_free(struct acpi_tables *t);

#endif /* HVKIT_ACPI_TABLES_H */
