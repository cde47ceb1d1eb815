/* SPDX-License-Identifier: MIT */
/*
 * The ACPI tables hvkit generates for a KVM guest (and the mini guest OS
 * reads): RSDP, RSDT/XSDT, FADT, FACS, MADT, and the shared header of the
 * DSDT. Layouts per ACPI 6.4 chapter 5.2, checked against Linux's
 * include/acpi/actbl.h (RSDP, header, FACS, FADT) and include/acpi/actbl2.h
 * (MADT and its subtables).
 */
#ifndef HVKIT_ACPI_H
#define HVKIT_ACPI_H

#include <stddef.h>
#include <stdint.h>

/* The byte sum every ACPI checksum makes zero (ACPI 6.4 section 5.2.5.3,
 * 5.2.6): the firmware side writes tables, the guest side checks them. */
static inline uint8_t acpi_sum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;
	for (size_t i = 0; i < len; i++)
		s = (uint8_t)(s + b[i]);
	return s;
}

#define ACPI_OEM_ID "HVKIT "       /* 6 bytes, space padded */
#define ACPI_OEM_TABLE_ID "HVKITVM " /* 8 bytes */

/* Root System Description Pointer, revision 2 (actbl.h: struct acpi_table_rsdp). */
struct acpi_rsdp {
	char signature[8];       /* "RSD PTR " */
	uint8_t checksum;        /* over the first 20 bytes */
	char oem_id[6];
	uint8_t revision;        /* 2: XSDT present */
	uint32_t rsdt_address;
	uint32_t length;         /* 36 */
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP is 36 bytes");
_Static_assert(offsetof(struct acpi_rsdp, xsdt_address) == 24, "XSDT address at 24");

/* Common header of every table but RSDP and FACS (actbl.h: acpi_table_header). */
struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;        /* the whole table sums to zero */
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_header) == 36, "table header is 36 bytes");

/* Generic Address Structure (actbl.h: struct acpi_generic_address). */
struct acpi_gas {
	uint8_t space_id;        /* ACPI_GAS_* */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_width;    /* 1 byte, 2 word, 3 dword, 4 qword */
	uint64_t address;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS is 12 bytes");

#define ACPI_GAS_SYSTEM_MEMORY 0
#define ACPI_GAS_SYSTEM_IO 1

/* Firmware ACPI Control Structure (actbl.h: struct acpi_table_facs). */
struct acpi_facs {
	char signature[4];       /* "FACS" */
	uint32_t length;         /* 64 */
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;         /* 2 */
	uint8_t reserved[3];
	uint32_t ospm_flags;
	uint8_t reserved2[24];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS is 64 bytes");

/* Fixed ACPI Description Table, revision 6 (actbl.h: struct acpi_table_fadt). */
struct acpi_fadt {
	struct acpi_header header; /* "FACP", revision 6 */
	uint32_t facs;
	uint32_t dsdt;
	uint8_t model;            /* reserved since ACPI 2.0 */
	uint8_t preferred_profile;
	uint16_t sci_interrupt;
	uint32_t smi_command;     /* 0: ACPI mode is always on */
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4_bios_request;
	uint8_t pstate_control;
	uint32_t pm1a_event_block;
	uint32_t pm1b_event_block;
	uint32_t pm1a_control_block;
	uint32_t pm1b_control_block;
	uint32_t pm2_control_block;
	uint32_t pm_timer_block;
	uint32_t gpe0_block;
	uint32_t gpe1_block;
	uint8_t pm1_event_length;
	uint8_t pm1_control_length;
	uint8_t pm2_control_length;
	uint8_t pm_timer_length;
	uint8_t gpe0_block_length;
	uint8_t gpe1_block_length;
	uint8_t gpe1_base;
	uint8_t cst_control;
	uint16_t c2_latency;
	uint16_t c3_latency;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alarm;
	uint8_t month_alarm;
	uint8_t century;
	uint16_t boot_flags;      /* IA-PC boot architecture flags */
	uint8_t reserved;
	uint32_t flags;
	struct acpi_gas reset_register;
	uint8_t reset_value;
	uint16_t arm_boot_flags;
	uint8_t minor_revision;
	uint64_t x_facs;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_event_block;
	struct acpi_gas x_pm1b_event_block;
	struct acpi_gas x_pm1a_control_block;
	struct acpi_gas x_pm1b_control_block;
	struct acpi_gas x_pm2_control_block;
	struct acpi_gas x_pm_timer_block;
	struct acpi_gas x_gpe0_block;
	struct acpi_gas x_gpe1_block;
	struct acpi_gas sleep_control;
	struct acpi_gas sleep_status;
	uint64_t hypervisor_id;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT 6.x is 276 bytes");
_Static_assert(offsetof(struct acpi_fadt, sci_interrupt) == 46, "SCI_INT at 46");
_Static_assert(offsetof(struct acpi_fadt, pm1a_event_block) == 56, "PM1a_EVT_BLK at 56");
_Static_assert(offsetof(struct acpi_fadt, pm1_event_length) == 88, "PM1_EVT_LEN at 88");
_Static_assert(offsetof(struct acpi_fadt, boot_flags) == 109, "IAPC_BOOT_ARCH at 109");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "Flags at 112");
_Static_assert(offsetof(struct acpi_fadt, reset_register) == 116, "RESET_REG at 116");
_Static_assert(offsetof(struct acpi_fadt, x_facs) == 132, "X_FIRMWARE_CTRL at 132");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "X_DSDT at 140");
_Static_assert(offsetof(struct acpi_fadt, x_pm_timer_block) == 208, "X_PM_TMR_BLK at 208");
_Static_assert(offsetof(struct acpi_fadt, hypervisor_id) == 268, "hypervisor id at 268");

/* FADT flags (actbl.h ACPI_FADT_*) */
#define ACPI_FADT_WBINVD (1u << 0)
#define ACPI_FADT_C1_SUPPORTED (1u << 2)
#define ACPI_FADT_POWER_BUTTON (1u << 4) /* set: no fixed-feature power button */
#define ACPI_FADT_SLEEP_BUTTON (1u << 5) /* set: no fixed-feature sleep button */
#define ACPI_FADT_32BIT_TIMER (1u << 8)
#define ACPI_FADT_RESET_REGISTER (1u << 10)

/* IA-PC boot architecture flags (actbl.h ACPI_FADT_*) */
#define ACPI_BOOT_LEGACY_DEVICES (1u << 0)
#define ACPI_BOOT_NO_VGA (1u << 2)
#define ACPI_BOOT_NO_ASPM (1u << 4)

/* PM1 registers: SCI_EN in PM1_CNT, SLP_TYP and SLP_EN (ACPI 6.4 4.8.3). */
#define ACPI_PM1_CNT_SCI_EN (1u << 0)
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK (7u << 10)
#define ACPI_PM1_CNT_SLP_EN (1u << 13)

/* Multiple APIC Description Table (actbl2.h: struct acpi_table_madt). */
struct acpi_madt {
	struct acpi_header header; /* "APIC", revision 5 */
	uint32_t lapic_address;
	uint32_t flags;            /* ACPI_MADT_PCAT_COMPAT */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT header is 44 bytes");

#define ACPI_MADT_PCAT_COMPAT 1u

enum acpi_madt_type {
	ACPI_MADT_LOCAL_APIC = 0,
	ACPI_MADT_IO_APIC = 1,
	ACPI_MADT_INTERRUPT_OVERRIDE = 2,
	ACPI_MADT_LOCAL_APIC_NMI = 4,
};

struct acpi_madt_local_apic {
	uint8_t type, length;      /* 0, 8 */
	uint8_t processor_id;
	uint8_t apic_id;
	uint32_t flags;            /* bit 0: enabled */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_local_apic) == 8, "local APIC entry is 8 bytes");

struct acpi_madt_io_apic {
	uint8_t type, length;      /* 1, 12 */
	uint8_t id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_io_apic) == 12, "I/O APIC entry is 12 bytes");

struct acpi_madt_interrupt_override {
	uint8_t type, length;      /* 2, 10 */
	uint8_t bus;               /* 0: ISA */
	uint8_t source_irq;
	uint32_t gsi;
	uint16_t flags;            /* polarity bits 0-1, trigger bits 2-3 */
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_interrupt_override) == 10, "override entry is 10 bytes");

#define ACPI_MADT_ACTIVE_HIGH 1u
#define ACPI_MADT_LEVEL (3u << 2)

struct acpi_madt_local_apic_nmi {
	uint8_t type, length;      /* 4, 6 */
	uint8_t processor_id;      /* 0xFF: all */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_local_apic_nmi) == 6, "LAPIC NMI entry is 6 bytes");

#endif /* HVKIT_ACPI_H */
