/* SPDX-License-Identifier: MIT */
/*
 * Kernel loaders: put a kernel, its command line, initrd or modules and
 * the boot structures into guest memory, and say how the boot VP must
 * start. Three formats, tried in this order:
 *   - Linux bzImage, 64-bit boot protocol (2.12+): long mode, paging on;
 *   - ELF (32 or 64-bit) with a PVH entry note: 32-bit protected mode;
 *   - Multiboot v1 (a.out kludge or ELF): 32-bit protected mode.
 * Everything read from the kernel file is bounds-checked; a file that is
 * none of these, or does not fit the machine, is refused with a message.
 *
 * Low memory the loader uses (all below the 1 MiB the kernels start at):
 *   0x1000 GDT, 0x2000-0x7fff identity page tables for the first 4 GiB,
 *   0x8000 zero page / start_info / Multiboot info, 0x9000 memory map and
 *   module list, 0x20000 command line (64 KiB at most); the firmware tables
 *   go where the caller says (BOOT_ACPI_BASE by default).
 */
#ifndef HVKIT_LOADER_H
#define HVKIT_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_memory.h"
#include "hvkit/boot.h"

#define BOOT_GDT 0x1000
#define BOOT_PML4 0x2000
#define BOOT_INFO 0x8000
#define BOOT_TABLES 0x9000
#define BOOT_CMDLINE 0x20000
#define BOOT_CMDLINE_MAX 0x10000
#define BOOT_ACPI_BASE 0xe0000  /* ACPI tables: 0xe0000-0xfffff */
#define BOOT_KERNEL_MIN 0x100000

#define BOOT_SEL_CODE32 0x08
#define BOOT_SEL_CODE64 0x10    /* = Linux's __BOOT_CS */
#define BOOT_SEL_DATA 0x18      /* = Linux's __BOOT_DS */

#define BOOT_MAX_MODULES 16

struct boot_module {
	const void *data;
	size_t size;
	const char *cmdline;    /* may be NULL */
};

struct boot_config {
	const void *kernel;
	size_t kernel_size;
	const char *cmdline;    /* NULL: empty */
	/* Linux: modules[0] is the initrd (at most one). PVH and Multiboot:
	 * all of them are handed over as modules. */
	const struct boot_module *modules;
	unsigned module_count;
	uint64_t rsdp_gpa;      /* 0: no ACPI */
	uint64_t acpi_base, acpi_size; /* reported as reserved in the memory map */
};

enum boot_mode {
	BOOT_MODE_LONG64,       /* CR0.PE|PG, CR4.PAE, EFER.LME|LMA, CS = code64 */
	BOOT_MODE_PROTECTED32,  /* CR0.PE only, CS = code32 */
};

#define BOOT_MAP_MAX 16 /* memory map entries */

struct boot_info {
	const char *format;     /* "bzImage", "PVH ELF", "Multiboot" */
	enum boot_mode mode;
	uint64_t entry;         /* RIP */
	uint64_t rsi;           /* Linux: the zero page */
	uint32_t eax, ebx;      /* Multiboot: magic and info; PVH: ebx = start_info */
	uint64_t cr3;           /* long mode: BOOT_PML4 */
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint64_t kernel_start, kernel_end; /* what the kernel image occupies */
	/* The memory map the kernel was given (e820 types; fw_cfg's etc/e820). */
	struct boot_e820_entry map[BOOT_MAP_MAX];
	uint32_t map_entries;
};

/* Loads into mem (which must have RAM from GPA 0). 0, or a negative errno
 * with a message in err: -ENOEXEC not a kernel we can boot, -E2BIG it does
 * not fit, -EINVAL a bad configuration. */
int boot_load(const struct guest_memory *mem, const struct boot_config *cfg,
	      struct boot_info *out, char *err, size_t errlen);

#endif /* HVKIT_LOADER_H */
