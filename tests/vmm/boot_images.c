/* SPDX-License-Identifier: MIT */
#include "boot_images.h"

#include <elf.h>
#include <string.h>

#include "hvkit/boot.h"

uint8_t image_pattern(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

size_t make_bzimage(uint8_t *buf, size_t cap, uint16_t version, uint32_t payload_len)
{
	size_t setup = 5 * 512, len = setup + payload_len;
	if (len > cap)
		return 0;
	memset(buf, 0, setup);
	struct linux_setup_header h = {
		.setup_sects = 4,
		.boot_flag = LINUX_BOOT_FLAG,
		.jump = 0x66eb, /* jmp to 0x268: the whole header is valid */
		.header = LINUX_SETUP_HEADER_MAGIC,
		.version = version,
		.loadflags = LINUX_LOADED_HIGH,
		.initrd_addr_max = 0x7fffffff,
		.kernel_alignment = 0x200000,
		.relocatable_kernel = 1,
		.xloadflags = LINUX_XLF_KERNEL_64,
		.cmdline_size = 2047,
		.pref_address = 0x1000000,
		.init_size = 0x400000,
	};
	memcpy(buf + LINUX_SETUP_HEADER_OFFSET, &h, sizeof(h));
	for (size_t i = 0; i < payload_len; i++)
		buf[setup + i] = image_pattern(i);
	return len;
}

static size_t put_note(uint8_t *p, int is64, uint32_t entry)
{
	uint32_t hdr[3] = {4, is64 ? 8 : 4, XEN_ELFNOTE_PHYS32_ENTRY};
	memcpy(p, hdr, 12);
	memcpy(p + 12, "Xen", 4);
	uint64_t v = entry;
	memcpy(p + 16, &v, is64 ? 8 : 4);
	return 16 + (is64 ? 8 : 4);
}

size_t make_pvh_elf(uint8_t *buf, size_t cap, int is64, uint64_t paddr, uint32_t filesz,
		    uint32_t memsz, uint32_t pvh_entry)
{
	const size_t note_off = 0x200, seg_off = 0x1000;
	if (seg_off + filesz > cap)
		return 0;
	memset(buf, 0, seg_off);
	size_t note_len = pvh_entry ? put_note(buf + note_off, is64, pvh_entry) : 0;
	unsigned phnum = pvh_entry ? 2 : 1;
	if (is64) {
		Elf64_Ehdr e = {.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
				.e_entry = paddr, .e_phoff = sizeof(e), .e_ehsize = sizeof(e),
				.e_phentsize = sizeof(Elf64_Phdr), .e_phnum = (uint16_t)phnum};
		memcpy(e.e_ident, ELFMAG, SELFMAG);
		e.e_ident[EI_CLASS] = ELFCLASS64;
		e.e_ident[EI_DATA] = ELFDATA2LSB;
		e.e_ident[EI_VERSION] = EV_CURRENT;
		Elf64_Phdr ph[2] = {
			{.p_type = PT_LOAD, .p_offset = seg_off, .p_vaddr = paddr, .p_paddr = paddr,
			 .p_filesz = filesz, .p_memsz = memsz},
			{.p_type = PT_NOTE, .p_offset = note_off, .p_filesz = note_len},
		};
		memcpy(buf, &e, sizeof(e));
		memcpy(buf + sizeof(e), ph, phnum * sizeof(ph[0]));
	} else {
		Elf32_Ehdr e = {.e_type = ET_EXEC, .e_machine = EM_386, .e_version = EV_CURRENT,
				.e_entry = (uint32_t)paddr, .e_phoff = sizeof(e), .e_ehsize = sizeof(e),
				.e_phentsize = sizeof(Elf32_Phdr), .e_phnum = (uint16_t)phnum};
		memcpy(e.e_ident, ELFMAG, SELFMAG);
		e.e_ident[EI_CLASS] = ELFCLASS32;
		e.e_ident[EI_DATA] = ELFDATA2LSB;
		e.e_ident[EI_VERSION] = EV_CURRENT;
		Elf32_Phdr ph[2] = {
			{.p_type = PT_LOAD, .p_offset = seg_off, .p_vaddr = (uint32_t)paddr,
			 .p_paddr = (uint32_t)paddr, .p_filesz = filesz, .p_memsz = memsz},
			{.p_type = PT_NOTE, .p_offset = note_off, .p_filesz = (uint32_t)note_len},
		};
		memcpy(buf, &e, sizeof(e));
		memcpy(buf + sizeof(e), ph, phnum * sizeof(ph[0]));
	}
	for (size_t i = 0; i < filesz; i++)
		buf[seg_off + i] = image_pattern(i);
	return seg_off + filesz;
}

size_t make_multiboot(uint8_t *buf, size_t cap, uint32_t flags, uint32_t file_len,
		      uint32_t bss_end)
{
	if (file_len > cap || file_len < 0x100)
		return 0;
	for (size_t i = 0; i < file_len; i++)
		buf[i] = image_pattern(i);
	struct multiboot_header h = {
		.magic = MULTIBOOT_HEADER_MAGIC,
		.flags = flags,
		.checksum = (uint32_t)-(MULTIBOOT_HEADER_MAGIC + flags),
		.header_addr = 0x100040,
		.load_addr = 0x100000,
		.bss_end_addr = bss_end,
		.entry_addr = 0x100080,
	};
	memcpy(buf + 0x40, &h, sizeof(h));
	return file_len;
}
