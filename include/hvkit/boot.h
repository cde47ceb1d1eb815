/* SPDX-License-Identifier: MIT */
/*
 * Boot protocols hvkit's loader speaks and its mini guest OS reads:
 * - Linux's x86 boot protocol (zero page and setup header), checked against
 *   arch/x86/include/uapi/asm/bootparam.h and Documentation/x86/boot.rst;
 * - the PVH entry (start_info, memory map, module list, the Xen ELF note),
 *   checked against include/xen/interface/hvm/start_info.h and
 *   include/xen/interface/elfnote.h;
 * - Multiboot version 1 (header, information structure, modules, memory
 *   map), per the Multiboot Specification 0.6.96.
 */
#ifndef HVKIT_BOOT_H
#define HVKIT_BOOT_H

#include <stddef.h>
#include <stdint.h>

/* ---- e820 (bootparam.h: struct boot_e820_entry) ---- */

enum e820_type {
	E820_RAM = 1,
	E820_RESERVED = 2,
	E820_ACPI = 3,
};

struct boot_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct boot_e820_entry) == 20, "e820 entry is 20 bytes");

#define E820_MAX_ENTRIES_ZEROPAGE 128

/* ---- Linux boot protocol ---- */

#define LINUX_SETUP_HEADER_MAGIC 0x53726448u /* "HdrS" */
#define LINUX_BOOT_FLAG 0xaa55
#define LINUX_SETUP_HEADER_OFFSET 0x1f1

#define LINUX_LOADED_HIGH (1u << 0)
#define LINUX_CAN_USE_HEAP (1u << 7)
#define LINUX_XLF_KERNEL_64 (1u << 0)

struct linux_setup_header {
	uint8_t setup_sects;
	uint16_t root_flags;
	uint32_t syssize;
	uint16_t ram_size;
	uint16_t vid_mode;
	uint16_t root_dev;
	uint16_t boot_flag;
	uint16_t jump;
	uint32_t header;
	uint16_t version;
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader;
	uint8_t loadflags;
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image;
	uint32_t ramdisk_size;
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint8_t relocatable_kernel;
	uint8_t min_alignment;
	uint16_t xloadflags;
	uint32_t cmdline_size;
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t setup_data;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t handover_offset;
	uint32_t kernel_info_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct linux_setup_header) == 0x26c - 0x1f1, "setup header size");
_Static_assert(offsetof(struct linux_setup_header, header) == 0x202 - 0x1f1, "HdrS at 0x202");
_Static_assert(offsetof(struct linux_setup_header, type_of_loader) == 0x210 - 0x1f1,
	       "type_of_loader at 0x210");
_Static_assert(offsetof(struct linux_setup_header, cmd_line_ptr) == 0x228 - 0x1f1,
	       "cmd_line_ptr at 0x228");
_Static_assert(offsetof(struct linux_setup_header, xloadflags) == 0x236 - 0x1f1,
	       "xloadflags at 0x236");
_Static_assert(offsetof(struct linux_setup_header, pref_address) == 0x258 - 0x1f1,
	       "pref_address at 0x258");

/* The zero page: only the fields a loader fills are named. */
struct linux_boot_params {
	uint8_t screen_info[0x40];
	uint8_t apm_bios_info[0x14];
	uint8_t pad2[4];
	uint64_t tboot_addr;
	uint8_t ist_info[0x10];
	uint64_t acpi_rsdp_addr;            /* 0x070, boot protocol 2.14 */
	uint8_t pad3[8];
	uint8_t hd0_info[16];
	uint8_t hd1_info[16];
	uint8_t sys_desc_table[16];
	uint8_t olpc_ofw_header[16];
	uint32_t ext_ramdisk_image;         /* 0x0c0 */
	uint32_t ext_ramdisk_size;
	uint32_t ext_cmd_line_ptr;
	uint8_t pad4[112];
	uint32_t cc_blob_address;
	uint8_t edid_info[0x80];
	uint8_t efi_info[0x20];
	uint32_t alt_mem_k;
	uint32_t scratch;
	uint8_t e820_entries;               /* 0x1e8 */
	uint8_t eddbuf_entries;
	uint8_t edd_mbr_sig_buf_entries;
	uint8_t kbd_status;
	uint8_t secure_boot;
	uint8_t pad5[2];
	uint8_t sentinel;
	uint8_t pad6[1];
	struct linux_setup_header hdr;      /* 0x1f1 */
	uint8_t pad7[0x290 - 0x1f1 - sizeof(struct linux_setup_header)];
	uint32_t edd_mbr_sig_buffer[16];
	struct boot_e820_entry e820_table[E820_MAX_ENTRIES_ZEROPAGE]; /* 0x2d0 */
	uint8_t pad8[48];
	uint8_t eddbuf[0xeec - 0xd00];
	uint8_t pad9[276];
} __attribute__((packed));
_Static_assert(sizeof(struct linux_boot_params) == 4096, "the zero page is a page");
_Static_assert(offsetof(struct linux_boot_params, acpi_rsdp_addr) == 0x070, "acpi_rsdp_addr");
_Static_assert(offsetof(struct linux_boot_params, ext_ramdisk_image) == 0x0c0, "ext_ramdisk");
_Static_assert(offsetof(struct linux_boot_params, cc_blob_address) == 0x13c, "cc_blob_address");
_Static_assert(offsetof(struct linux_boot_params, e820_entries) == 0x1e8, "e820_entries");
_Static_assert(offsetof(struct linux_boot_params, hdr) == 0x1f1, "setup header");
_Static_assert(offsetof(struct linux_boot_params, e820_table) == 0x2d0, "e820_table");

/* Segment selectors the 64-bit entry requires (boot.rst: __BOOT_CS, __BOOT_DS). */
#define LINUX_BOOT_CS 0x10
#define LINUX_BOOT_DS 0x18
#define LINUX_ENTRY64_OFFSET 0x200 /* startup_64 from the protected-mode start */

/* ---- PVH ---- */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;        /* 1: memmap fields valid */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "start_info v1 is 56 bytes");
_Static_assert(offsetof(struct hvm_start_info, rsdp_paddr) == 32, "rsdp_paddr at 32");

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "modlist entry is 32 bytes");

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;           /* enum e820_type */
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap entry is 24 bytes");

/* ---- Multiboot 1 ---- */

#define MULTIBOOT_HEADER_MAGIC 0x1badb002u
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2badb002u
#define MULTIBOOT_SEARCH 8192      /* the header lies in the first 8 KiB */

/* Header flags: bits 0-15 are requirements a loader must honour or refuse. */
#define MULTIBOOT_PAGE_ALIGN (1u << 0)
#define MULTIBOOT_MEMORY_INFO (1u << 1)
#define MULTIBOOT_VIDEO_MODE (1u << 2)
#define MULTIBOOT_AOUT_KLUDGE (1u << 16)

struct multiboot_header {
	uint32_t magic;
	uint32_t flags;
	uint32_t checksum;       /* magic + flags + checksum == 0 */
	/* with MULTIBOOT_AOUT_KLUDGE */
	uint32_t header_addr;
	uint32_t load_addr;
	uint32_t load_end_addr;  /* 0: to the end of the file */
	uint32_t bss_end_addr;   /* 0: no bss */
	uint32_t entry_addr;
};
_Static_assert(sizeof(struct multiboot_header) == 32, "multiboot header is 32 bytes");

/* Information flags */
#define MULTIBOOT_INFO_MEMORY (1u << 0)
#define MULTIBOOT_INFO_CMDLINE (1u << 2)
#define MULTIBOOT_INFO_MODS (1u << 3)
#define MULTIBOOT_INFO_MEM_MAP (1u << 6)
#define MULTIBOOT_INFO_BOOT_LOADER_NAME (1u << 9)

struct multiboot_info {
	uint32_t flags;
	uint32_t mem_lower;      /* KiB below 1 MiB */
	uint32_t mem_upper;      /* KiB from 1 MiB to the first hole */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;    /* bytes */
	uint32_t mmap_addr;
	uint32_t drives_length;
	uint32_t drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint8_t vbe[16];
	uint8_t framebuffer[28];
} __attribute__((packed));
_Static_assert(offsetof(struct multiboot_info, mmap_length) == 44, "mmap_length at 44");
_Static_assert(offsetof(struct multiboot_info, boot_loader_name) == 64, "loader name at 64");
_Static_assert(sizeof(struct multiboot_info) == 116, "multiboot info is 116 bytes");

struct multiboot_module {
	uint32_t mod_start;
	uint32_t mod_end;        /* first byte past the module */
	uint32_t string;
	uint32_t reserved;
};
_Static_assert(sizeof(struct multiboot_module) == 16, "module entry is 16 bytes");

/* size counts the bytes after itself (20); entries are size + 4 apart. */
struct multiboot_mmap_entry {
	uint32_t size;
	uint64_t addr;
	uint64_t len;
	uint32_t type;           /* 1 RAM, else reserved (3 ACPI) */
} __attribute__((packed));
_Static_assert(sizeof(struct multiboot_mmap_entry) == 24, "mmap entry is 24 bytes");

#endif /* HVKIT_BOOT_H */
