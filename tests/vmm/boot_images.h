/* SPDX-License-Identifier: MIT */
/* Small synthetic kernels for the loader tests: just enough of each format. */
#ifndef HVKIT_TEST_BOOT_IMAGES_H
#define HVKIT_TEST_BOOT_IMAGES_H

#include <stddef.h>
#include <stdint.h>

/* A bzImage with 4 setup sectors and payload_len bytes of pattern. */
size_t make_bzimage(uint8_t *buf, size_t cap, uint16_t version, uint32_t payload_len);

/* An ELF (64 or 32-bit) with one PT_LOAD of filesz/memsz at paddr and, if
 * pvh_entry, a Xen PHYS32_ENTRY note. The segment holds a byte pattern. */
size_t make_pvh_elf(uint8_t *buf, size_t cap, int is64, uint64_t paddr, uint32_t filesz,
		    uint32_t memsz, uint32_t pvh_entry);

/* A Multiboot a.out-kludge kernel loaded at 1 MiB: header at 0x40, file
 * of file_len bytes, bss to bss_end, entry at 0x100080. */
size_t make_multiboot(uint8_t *buf, size_t cap, uint32_t flags, uint32_t file_len,
		      uint32_t bss_end);

uint8_t image_pattern(size_t i);

#endif
