/* SPDX-License-Identifier: MIT */
/* Kernel loaders; see loader.h. */
#define _GNU_SOURCE
#include "loader.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hvkit/boot.h"

#define PAGE 4096ull
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define LOW_RESERVED_START 0x9fc00 /* EBDA, VGA hole, ROMs: never RAM to a guest */
#define BOOT_CMDLINE_END (BOOT_CMDLINE + BOOT_CMDLINE_MAX)
#define BOOT_TABLES_END BOOT_CMDLINE

struct load {
	const struct guest_memory *mem;
	const struct boot_config *cfg;
	const uint8_t *image;
	size_t size;
	uint64_t low_ram_end;     /* end of the RAM that starts at GPA 0, capped at 4 GiB */
	uint64_t strings;         /* next free byte in the command-line area */
	uint64_t tables;          /* next free byte in the tables area */
	struct boot_e820_entry map[BOOT_MAP_MAX];
	unsigned map_entries;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int fail(struct load *l, int code, const char *fmt,
						      ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (l->errlen)
		vsnprintf(l->err, l->errlen, fmt, ap);
	va_end(ap);
	return code;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* [gpa, gpa + len) inside one RAM region; overflow-safe. */
static bool in_ram(const struct load *l, uint64_t gpa, uint64_t len)
{
	return len == 0 || guest_memory_ptr(l->mem, gpa, len) != NULL;
}

static int put(struct load *l, uint64_t gpa, const void *src, uint64_t len)
{
	if (len && guest_memory_write(l->mem, gpa, src, len))
		return fail(l, -E2BIG, "%#llx bytes at GPA %#llx are outside guest RAM",
			    (unsigned long long)len, (unsigned long long)gpa);
	return 0;
}

static int zero(struct load *l, uint64_t gpa, uint64_t len)
{
	if (!len)
		return 0;
	uint8_t *p = guest_memory_ptr(l->mem, gpa, len);
	if (!p)
		return fail(l, -E2BIG, "%#llx bytes at GPA %#llx are outside guest RAM",
			    (unsigned long long)len, (unsigned long long)gpa);
	memset(p, 0, len);
	return 0;
}

/* ---- Low memory: strings, tables, memory map, GDT, page tables ---- */

/* Copies a NUL-terminated string into the command-line area. */
static int put_string(struct load *l, const char *s, uint64_t *gpa)
{
	size_t n = strlen(s) + 1;
	*gpa = 0;
	if (n > BOOT_CMDLINE_END - l->strings)
		return fail(l, -E2BIG, "command lines over %u KiB", BOOT_CMDLINE_MAX / 1024);
	*gpa = l->strings;
	l->strings += n;
	return put(l, *gpa, s, n);
}

static int alloc_table(struct load *l, uint64_t size, uint64_t *gpa)
{
	uint64_t at = align_up(l->tables, 8);
	*gpa = 0;
	if (size > BOOT_TABLES_END - at)
		return fail(l, -E2BIG, "boot tables do not fit below %#x", BOOT_TABLES_END);
	*gpa = at;
	l->tables = at + size;
	return 0;
}

static void map_add(struct load *l, uint64_t addr, uint64_t size, uint32_t type)
{
	if (size && l->map_entries < BOOT_MAP_MAX)
		l->map[l->map_entries++] = (struct boot_e820_entry){addr, size, type};
}

/* RAM below the EBDA, the legacy hole reserved (the ACPI tables live in
 * it), then every region's RAM above 1 MiB. */
static int build_memory_map(struct load *l)
{
	const struct boot_config *c = l->cfg;
	if (c->acpi_size && (c->acpi_base < LOW_RESERVED_START ||
			     c->acpi_base + c->acpi_size > BOOT_KERNEL_MIN))
		return fail(l, -EINVAL, "ACPI tables must lie in [%#x, %#x)", LOW_RESERVED_START,
			    BOOT_KERNEL_MIN);
	map_add(l, 0, LOW_RESERVED_START, E820_RAM);
	map_add(l, LOW_RESERVED_START, BOOT_KERNEL_MIN - LOW_RESERVED_START, E820_RESERVED);
	for (uint32_t i = 0; i < l->mem->count; i++) {
		const struct guest_memory_region *r = &l->mem->regions[i];
		uint64_t start = r->gpa < BOOT_KERNEL_MIN ? BOOT_KERNEL_MIN : r->gpa;
		if (r->gpa + r->size > start)
			map_add(l, start, r->gpa + r->size - start, E820_RAM);
	}
	return 0;
}

static int write_gdt(struct load *l, struct boot_info *out)
{
	/* flat 4 GiB: null, 32-bit code, 64-bit code, data */
	static const uint64_t gdt[4] = {0, 0x00cf9a000000ffffull, 0x00af9a000000ffffull,
					0x00cf92000000ffffull};
	out->gdt_base = BOOT_GDT;
	out->gdt_limit = sizeof(gdt) - 1;
	return put(l, BOOT_GDT, gdt, sizeof(gdt));
}

/* Identity map of the first 4 GiB in 2 MiB pages: PML4, one PDPT, four PDs;
 * from 3 GiB up (the APICs and device windows) uncached. */
static int write_page_tables(struct load *l, struct boot_info *out)
{
	enum { P = 1, RW = 2, PWT = 8, PCD = 0x10, PS = 0x80 };
	uint64_t pml4[512] = {(BOOT_PML4 + PAGE) | P | RW};
	uint64_t pdpt[512] = {0};
	int err = put(l, BOOT_PML4, pml4, sizeof(pml4));
	for (uint64_t i = 0; i < 4 && !err; i++) {
		uint64_t pd[512];
		uint64_t pd_gpa = BOOT_PML4 + (2 + i) * PAGE;
		for (uint64_t j = 0; j < 512; j++)
			pd[j] = (i * GIB + j * 2 * MIB) | P | RW | PS | (i >= 3 ? PCD | PWT : 0);
		pdpt[i] = pd_gpa | P | RW;
		err = put(l, pd_gpa, pd, sizeof(pd));
	}
	if (!err)
		err = put(l, BOOT_PML4 + PAGE, pdpt, sizeof(pdpt));
	out->cr3 = BOOT_PML4;
	return err;
}

/* Finds room for a module: page-aligned, at or above lowest, ending at or
 * below limit, from the top (Linux initrd) or the bottom. */
static int place(struct load *l, uint64_t size, uint64_t lowest, uint64_t limit, bool top_down,
		 uint64_t *gpa)
{
	if (limit > l->low_ram_end)
		limit = l->low_ram_end;
	lowest = align_up(lowest, PAGE);
	uint64_t need = align_up(size, PAGE);
	*gpa = 0;
	if (need < size || lowest > limit || need > limit - lowest)
		return fail(l, -E2BIG,
			    "a %llu KiB module does not fit in guest RAM between %#llx and %#llx",
			    (unsigned long long)(size / 1024), (unsigned long long)lowest,
			    (unsigned long long)limit);
	*gpa = top_down ? (limit - need) & ~(PAGE - 1) : lowest;
	return 0;
}

/* ---- Linux bzImage ---- */

static bool is_bzimage(const struct load *l, struct linux_setup_header *h)
{
	if (l->size < LINUX_SETUP_HEADER_OFFSET + sizeof(*h))
		return false;
	memcpy(h, l->image + LINUX_SETUP_HEADER_OFFSET, sizeof(*h));
	return h->header == LINUX_SETUP_HEADER_MAGIC && h->boot_flag == LINUX_BOOT_FLAG;
}

static int linux_check(struct load *l, const struct linux_setup_header *h)
{
	if (h->version < 0x020c)
		return fail(l, -ENOEXEC,
			    "Linux boot protocol %u.%u is too old: the 64-bit entry needs 2.12",
			    h->version >> 8, h->version & 0xff);
	if (!(h->xloadflags & LINUX_XLF_KERNEL_64))
		return fail(l, -ENOEXEC, "this Linux kernel has no 64-bit entry point");
	if (l->cfg->module_count > 1)
		return fail(l, -EINVAL, "Linux takes one initrd, not %u", l->cfg->module_count);
	return 0;
}

/* Where the protected-mode kernel goes: its preferred address if it fits,
 * else (relocatable kernels only) the first aligned address above 1 MiB. */
static int linux_load_address(struct load *l, const struct linux_setup_header *h,
			      uint64_t need, uint64_t *load)
{
	uint64_t align = h->kernel_alignment;
	if (!align || (align & (align - 1)))
		align = 2 * MIB;
	uint64_t pref = h->pref_address ? h->pref_address : BOOT_KERNEL_MIN;
	if (pref >= BOOT_KERNEL_MIN && pref < l->low_ram_end && need <= l->low_ram_end - pref) {
		*load = pref;
		return 0;
	}
	uint64_t alt = align_up(BOOT_KERNEL_MIN, align);
	if (h->relocatable_kernel && alt < l->low_ram_end && need <= l->low_ram_end - alt) {
		*load = alt;
		return 0;
	}
	return fail(l, -E2BIG, "the kernel needs %llu MiB of RAM from %#llx; the machine has %llu MiB",
		    (unsigned long long)(need >> 20), (unsigned long long)pref,
		    (unsigned long long)(l->low_ram_end >> 20));
}

static int linux_initrd(struct load *l, struct linux_boot_params *bp, uint64_t kernel_end)
{
	if (!l->cfg->module_count)
		return 0;
	const struct boot_module *m = &l->cfg->modules[0];
	uint64_t limit = (uint64_t)bp->hdr.initrd_addr_max + 1;
	if (bp->hdr.initrd_addr_max == 0)
		limit = 0x38000000; /* boot.rst: the default before 2.03 */
	uint64_t gpa;
	int err = place(l, m->size, kernel_end, limit, true, &gpa);
	if (err)
		return err;
	bp->hdr.ramdisk_image = (uint32_t)gpa;
	bp->hdr.ramdisk_size = (uint32_t)m->size;
	bp->ext_ramdisk_image = (uint32_t)(gpa >> 32);
	bp->ext_ramdisk_size = (uint32_t)((uint64_t)m->size >> 32);
	return put(l, gpa, m->data, m->size);
}

static int linux_cmdline(struct load *l, struct linux_boot_params *bp)
{
	const char *cmdline = l->cfg->cmdline ? l->cfg->cmdline : "";
	uint32_t max = bp->hdr.version >= 0x0206 ? bp->hdr.cmdline_size : 255;
	if (strlen(cmdline) > max)
		return fail(l, -E2BIG, "the command line is %zu bytes; this kernel takes %u",
			    strlen(cmdline), max);
	uint64_t gpa;
	int err = put_string(l, cmdline, &gpa);
	bp->hdr.cmd_line_ptr = (uint32_t)gpa;
	return err;
}

static int load_bzimage(struct load *l, const struct linux_setup_header *h,
			struct boot_info *out)
{
	int err = linux_check(l, h);
	if (err)
		return err;
	uint64_t setup_sects = h->setup_sects ? h->setup_sects : 4;
	uint64_t kernel_off = (setup_sects + 1) * 512;
	if (kernel_off >= l->size)
		return fail(l, -ENOEXEC, "the bzImage is truncated: %zu bytes, setup alone %llu",
			    l->size, (unsigned long long)kernel_off);
	uint64_t kernel_len = l->size - kernel_off;
	uint64_t need = h->init_size > kernel_len ? h->init_size : kernel_len;
	uint64_t load = 0;
	err = linux_load_address(l, h, need, &load);
	if (!err)
		err = put(l, load, l->image + kernel_off, kernel_len);
	if (err)
		return err;

	/* The zero page starts clean, with the header as the image has it:
	 * from 0x1f1 to the end the jump at 0x200 gives (boot.rst). */
	struct linux_boot_params bp;
	memset(&bp, 0, sizeof(bp));
	size_t header_end = 0x202 + (size_t)l->image[0x201];
	if (header_end > LINUX_SETUP_HEADER_OFFSET + sizeof(bp.hdr))
		header_end = LINUX_SETUP_HEADER_OFFSET + sizeof(bp.hdr);
	memcpy(&bp.hdr, l->image + LINUX_SETUP_HEADER_OFFSET, header_end - LINUX_SETUP_HEADER_OFFSET);
	bp.hdr.type_of_loader = 0xff; /* "undefined" loader */
	bp.hdr.loadflags |= LINUX_CAN_USE_HEAP;
	bp.hdr.heap_end_ptr = 0xfe00;
	bp.hdr.code32_start = (uint32_t)load;
	bp.acpi_rsdp_addr = l->cfg->rsdp_gpa;
	err = linux_cmdline(l, &bp);
	if (!err)
		err = linux_initrd(l, &bp, load + need);
	if (err)
		return err;
	memcpy(bp.e820_table, l->map, l->map_entries * sizeof(l->map[0]));
	bp.e820_entries = (uint8_t)l->map_entries;
	err = put(l, BOOT_INFO, &bp, sizeof(bp));
	if (err)
		return err;

	out->format = "bzImage";
	out->mode = BOOT_MODE_LONG64;
	out->entry = load + LINUX_ENTRY64_OFFSET;
	out->rsi = BOOT_INFO;
	out->kernel_start = load;
	out->kernel_end = load + need;
	return 0;
}

/* ---- ELF (PVH and Multiboot) ---- */

struct elf {
	bool is64;
	uint64_t entry;
	uint64_t phoff;
	uint16_t phentsize, phnum;
};

static bool is_elf(const struct load *l)
{
	return l->size >= EI_NIDENT && !memcmp(l->image, ELFMAG, SELFMAG);
}

static int elf_parse(struct load *l, struct elf *e)
{
	const uint8_t *id = l->image;
	if (id[EI_DATA] != ELFDATA2LSB || (id[EI_CLASS] != ELFCLASS32 && id[EI_CLASS] != ELFCLASS64))
		return fail(l, -ENOEXEC, "not a little-endian 32 or 64-bit ELF file");
	e->is64 = id[EI_CLASS] == ELFCLASS64;
	uint16_t machine;
	/* The two classes differ only in field widths. */
#define READ_ELF_HEADER(type)                                                   \
	do {                                                                    \
		type h;                                                         \
		if (l->size < sizeof(h))                                        \
			return fail(l, -ENOEXEC, "truncated ELF header");       \
		memcpy(&h, l->image, sizeof(h));                                \
		machine = h.e_machine;                                          \
		e->entry = h.e_entry;                                           \
		e->phoff = h.e_phoff;                                           \
		e->phentsize = h.e_phentsize;                                   \
		e->phnum = h.e_phnum;                                           \
	} while (0)
	if (e->is64)
		READ_ELF_HEADER(Elf64_Ehdr);
	else
		READ_ELF_HEADER(Elf32_Ehdr);
#undef READ_ELF_HEADER
	if (machine != EM_X86_64 && machine != EM_386)
		return fail(l, -ENOEXEC, "ELF for machine %u, not x86", machine);
	size_t want = e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (e->phentsize < want || e->phoff > l->size ||
	    (uint64_t)e->phnum * e->phentsize > l->size - e->phoff)
		return fail(l, -ENOEXEC, "ELF program headers lie outside the file");
	return 0;
}

static Elf64_Phdr elf_phdr(const struct load *l, const struct elf *e, unsigned i)
{
	const uint8_t *p = l->image + e->phoff + (uint64_t)i * e->phentsize;
	Elf64_Phdr ph;
	if (e->is64) {
		memcpy(&ph, p, sizeof(ph));
		return ph;
	}
	Elf32_Phdr p32;
	memcpy(&p32, p, sizeof(p32));
	return (Elf64_Phdr){.p_type = p32.p_type, .p_flags = p32.p_flags,
			    .p_offset = p32.p_offset, .p_vaddr = p32.p_vaddr,
			    .p_paddr = p32.p_paddr, .p_filesz = p32.p_filesz,
			    .p_memsz = p32.p_memsz, .p_align = p32.p_align};
}

/* Copies every PT_LOAD to its physical address and clears its bss. */
static int elf_load_segments(struct load *l, const struct elf *e, struct boot_info *out)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	for (unsigned i = 0; i < e->phnum; i++) {
		Elf64_Phdr ph = elf_phdr(l, e, i);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > l->size ||
		    ph.p_filesz > l->size - ph.p_offset)
			return fail(l, -ENOEXEC, "ELF segment %u lies outside the file", i);
		if (ph.p_paddr < BOOT_KERNEL_MIN || !in_ram(l, ph.p_paddr, ph.p_memsz))
			return fail(l, -E2BIG,
				    "ELF segment %u ([%#llx, +%#llx)) is not in guest RAM above 1 MiB",
				    i, (unsigned long long)ph.p_paddr,
				    (unsigned long long)ph.p_memsz);
		int err = put(l, ph.p_paddr, l->image + ph.p_offset, ph.p_filesz);
		if (!err)
			err = zero(l, ph.p_paddr + ph.p_filesz, ph.p_memsz - ph.p_filesz);
		if (err)
			return err;
		lo = ph.p_paddr < lo ? ph.p_paddr : lo;
		hi = ph.p_paddr + ph.p_memsz > hi ? ph.p_paddr + ph.p_memsz : hi;
	}
	if (hi == 0)
		return fail(l, -ENOEXEC, "the ELF file has nothing to load");
	out->kernel_start = lo;
	out->kernel_end = hi;
	return 0;
}

/* The PVH entry: a "Xen" note of type XEN_ELFNOTE_PHYS32_ENTRY in a
 * PT_NOTE segment; its value is 4 bytes, or 8 where Linux uses _ASM_PTR. */
static bool elf_pvh_entry(const struct load *l, const struct elf *e, uint64_t *entry)
{
	for (unsigned i = 0; i < e->phnum; i++) {
		Elf64_Phdr ph = elf_phdr(l, e, i);
		if (ph.p_type != PT_NOTE || ph.p_offset > l->size ||
		    ph.p_filesz > l->size - ph.p_offset)
			continue;
		const uint8_t *p = l->image + ph.p_offset;
		uint64_t left = ph.p_filesz;
		while (left >= 12) {
			uint32_t namesz, descsz, type;
			memcpy(&namesz, p, 4);
			memcpy(&descsz, p + 4, 4);
			memcpy(&type, p + 8, 4);
			uint64_t name_len = align_up(namesz, 4), desc_len = align_up(descsz, 4);
			if (name_len > left - 12 || desc_len > left - 12 - name_len)
				break;
			const uint8_t *name = p + 12, *desc = name + name_len;
			if (namesz == 4 && !memcmp(name, "Xen", 4) &&
			    type == XEN_ELFNOTE_PHYS32_ENTRY && (descsz == 4 || descsz == 8)) {
				uint32_t v;
				memcpy(&v, desc, 4);
				*entry = v;
				return true;
			}
			p = desc + desc_len;
			left -= 12 + name_len + desc_len;
		}
	}
	return false;
}

/* Modules above the kernel, page-aligned, in order; their command lines
 * in the string area. */
static int place_modules(struct load *l, uint64_t above, uint64_t gpa[], uint64_t cmdline[])
{
	if (l->cfg->module_count > BOOT_MAX_MODULES)
		return fail(l, -EINVAL, "%u modules; at most %d", l->cfg->module_count,
			    BOOT_MAX_MODULES);
	for (unsigned i = 0; i < l->cfg->module_count; i++) {
		const struct boot_module *m = &l->cfg->modules[i];
		int err = place(l, m->size, above, UINT64_MAX, false, &gpa[i]);
		if (!err)
			err = put(l, gpa[i], m->data, m->size);
		if (!err)
			err = put_string(l, m->cmdline ? m->cmdline : "", &cmdline[i]);
		if (err)
			return err;
		above = gpa[i] + m->size;
	}
	return 0;
}

static int load_pvh(struct load *l, const struct elf *e, uint64_t entry, struct boot_info *out)
{
	int err = elf_load_segments(l, e, out);
	if (err)
		return err;
	uint64_t mod_gpa[BOOT_MAX_MODULES], mod_cmdline[BOOT_MAX_MODULES];
	struct hvm_start_info si = {.magic = HVM_START_MAGIC, .version = 1,
				    .rsdp_paddr = l->cfg->rsdp_gpa};
	err = put_string(l, l->cfg->cmdline ? l->cfg->cmdline : "", &si.cmdline_paddr);
	if (!err)
		err = place_modules(l, out->kernel_end, mod_gpa, mod_cmdline);
	if (err)
		return err;

	struct hvm_memmap_table_entry map[BOOT_MAP_MAX];
	for (unsigned i = 0; i < l->map_entries; i++)
		map[i] = (struct hvm_memmap_table_entry){l->map[i].addr, l->map[i].size,
							 l->map[i].type, 0};
	si.memmap_entries = l->map_entries;
	err = alloc_table(l, sizeof(map[0]) * l->map_entries, &si.memmap_paddr);
	if (!err)
		err = put(l, si.memmap_paddr, map, sizeof(map[0]) * l->map_entries);
	si.nr_modules = l->cfg->module_count;
	for (unsigned i = 0; i < si.nr_modules && !err; i++) {
		struct hvm_modlist_entry me = {mod_gpa[i], l->cfg->modules[i].size, mod_cmdline[i], 0};
		uint64_t at = 0;
		err = alloc_table(l, sizeof(me), &at);
		if (!err)
			err = put(l, at, &me, sizeof(me));
		if (i == 0)
			si.modlist_paddr = at;
	}
	if (!err)
		err = put(l, BOOT_INFO, &si, sizeof(si));
	if (err)
		return err;
	out->format = "PVH ELF";
	out->mode = BOOT_MODE_PROTECTED32;
	out->entry = entry;
	out->ebx = BOOT_INFO;
	return 0;
}

/* ---- Multiboot 1 ---- */

static bool find_multiboot(const struct load *l, struct multiboot_header *h, size_t *at)
{
	size_t end = l->size < MULTIBOOT_SEARCH ? l->size : MULTIBOOT_SEARCH;
	for (size_t off = 0; off + 12 <= end; off += 4) {
		uint32_t w[3];
		memcpy(w, l->image + off, 12);
		if (w[0] == MULTIBOOT_HEADER_MAGIC && (uint32_t)(w[0] + w[1] + w[2]) == 0) {
			memset(h, 0, sizeof(*h));
			memcpy(h, l->image + off, l->size - off < sizeof(*h) ? l->size - off : sizeof(*h));
			*at = off;
			return true;
		}
	}
	return false;
}

/* The a.out kludge: the header says where the file goes. */
static int multiboot_load_aout(struct load *l, const struct multiboot_header *h, size_t at,
			       struct boot_info *out)
{
	if (l->size - at < sizeof(*h))
		return fail(l, -ENOEXEC, "the Multiboot header is truncated");
	if (h->load_addr > h->header_addr || h->header_addr - h->load_addr > at)
		return fail(l, -ENOEXEC, "Multiboot load address %#x does not fit header address %#x",
			    h->load_addr, h->header_addr);
	uint64_t file_off = at - (h->header_addr - h->load_addr);
	uint64_t load_end = h->load_end_addr ? h->load_end_addr : h->load_addr + (l->size - file_off);
	uint64_t bss_end = h->bss_end_addr ? h->bss_end_addr : load_end;
	if (load_end < h->load_addr || load_end - h->load_addr > l->size - file_off ||
	    bss_end < load_end)
		return fail(l, -ENOEXEC, "Multiboot load range [%#x, %#llx) is inconsistent",
			    h->load_addr, (unsigned long long)load_end);
	if (h->load_addr < BOOT_KERNEL_MIN || !in_ram(l, h->load_addr, bss_end - h->load_addr))
		return fail(l, -E2BIG, "Multiboot kernel [%#x, %#llx) is not in guest RAM above 1 MiB",
			    h->load_addr, (unsigned long long)bss_end);
	if (h->entry_addr < h->load_addr || h->entry_addr >= bss_end)
		return fail(l, -ENOEXEC, "Multiboot entry %#x is outside the kernel", h->entry_addr);
	int err = put(l, h->load_addr, l->image + file_off, load_end - h->load_addr);
	if (!err)
		err = zero(l, load_end, bss_end - load_end);
	out->entry = h->entry_addr;
	out->kernel_start = h->load_addr;
	out->kernel_end = bss_end;
	return err;
}

static int multiboot_info(struct load *l, uint64_t kernel_end)
{
	struct multiboot_info mi = {.flags = MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE |
					     MULTIBOOT_INFO_MEM_MAP | MULTIBOOT_INFO_BOOT_LOADER_NAME,
				    .mem_lower = LOW_RESERVED_START / 1024};
	/* mem_upper: RAM from 1 MiB up to the first hole */
	for (unsigned i = 0; i < l->map_entries; i++)
		if (l->map[i].type == E820_RAM && l->map[i].addr == BOOT_KERNEL_MIN)
			mi.mem_upper = (uint32_t)(l->map[i].size / 1024);
	uint64_t gpa;
	int err = put_string(l, l->cfg->cmdline ? l->cfg->cmdline : "", &gpa);
	mi.cmdline = (uint32_t)gpa;
	if (!err)
		err = put_string(l, "hvkit", &gpa);
	mi.boot_loader_name = (uint32_t)gpa;

	uint64_t mod_gpa[BOOT_MAX_MODULES], mod_cmdline[BOOT_MAX_MODULES];
	if (!err)
		err = place_modules(l, kernel_end, mod_gpa, mod_cmdline);
	if (!err && l->cfg->module_count) {
		mi.flags |= MULTIBOOT_INFO_MODS;
		mi.mods_count = l->cfg->module_count;
		err = alloc_table(l, sizeof(struct multiboot_module) * mi.mods_count, &gpa);
		mi.mods_addr = (uint32_t)gpa;
		for (unsigned i = 0; i < mi.mods_count && !err; i++) {
			struct multiboot_module mm = {
				(uint32_t)mod_gpa[i],
				(uint32_t)(mod_gpa[i] + l->cfg->modules[i].size),
				(uint32_t)mod_cmdline[i], 0};
			err = put(l, gpa + i * sizeof(mm), &mm, sizeof(mm));
		}
	}
	struct multiboot_mmap_entry mmap[BOOT_MAP_MAX];
	for (unsigned i = 0; i < l->map_entries; i++)
		mmap[i] = (struct multiboot_mmap_entry){sizeof(mmap[0]) - 4, l->map[i].addr,
							l->map[i].size, l->map[i].type};
	mi.mmap_length = (uint32_t)(sizeof(mmap[0]) * l->map_entries);
	if (!err)
		err = alloc_table(l, mi.mmap_length, &gpa);
	mi.mmap_addr = (uint32_t)gpa;
	if (!err)
		err = put(l, gpa, mmap, mi.mmap_length);
	if (!err)
		err = put(l, BOOT_INFO, &mi, sizeof(mi));
	return err;
}

static int load_multiboot(struct load *l, const struct multiboot_header *h, size_t at,
			  struct boot_info *out)
{
	uint32_t unsupported = h->flags & 0xffff & ~(MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO);
	if (unsupported)
		return fail(l, -ENOEXEC,
			    "the Multiboot kernel requires what hvkit does not provide "
			    "(flags %#x%s)",
			    unsupported, unsupported & MULTIBOOT_VIDEO_MODE ? ": a video mode" : "");
	int err;
	if (h->flags & MULTIBOOT_AOUT_KLUDGE) {
		err = multiboot_load_aout(l, h, at, out);
	} else {
		struct elf e;
		if (!is_elf(l))
			return fail(l, -ENOEXEC, "a Multiboot kernel without load addresses must be ELF");
		err = elf_parse(l, &e);
		if (!err)
			err = elf_load_segments(l, &e, out);
		if (!err && (e.entry < out->kernel_start || e.entry >= out->kernel_end))
			err = fail(l, -ENOEXEC, "the ELF entry %#llx is outside what it loads",
				   (unsigned long long)e.entry);
		out->entry = e.entry;
	}
	if (!err)
		err = multiboot_info(l, out->kernel_end);
	if (err)
		return err;
	out->format = "Multiboot";
	out->mode = BOOT_MODE_PROTECTED32;
	out->eax = MULTIBOOT_BOOTLOADER_MAGIC;
	out->ebx = BOOT_INFO;
	return 0;
}

/* ---- Entry ---- */

static int setup(struct load *l, const struct guest_memory *mem, const struct boot_config *cfg,
		 char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->mem = mem;
	l->cfg = cfg;
	l->image = cfg->kernel;
	l->size = cfg->kernel ? cfg->kernel_size : 0;
	l->strings = BOOT_CMDLINE;
	l->tables = BOOT_TABLES;
	l->err = err;
	l->errlen = errlen;
	if (errlen)
		err[0] = '\0';
	for (uint32_t i = 0; i < mem->count; i++)
		if (mem->regions[i].gpa == 0)
			l->low_ram_end = mem->regions[i].size < 4 * GIB ? mem->regions[i].size : 4 * GIB;
	if (l->low_ram_end < 2 * MIB)
		return fail(l, -EINVAL, "the machine needs RAM from GPA 0, at least 2 MiB");
	if (cfg->module_count && !cfg->modules)
		return fail(l, -EINVAL, "modules missing");
	return build_memory_map(l);
}

int boot_load(const struct guest_memory *mem, const struct boot_config *cfg,
	      struct boot_info *out, char *err, size_t errlen)
{
	struct load l;
	memset(out, 0, sizeof(*out));
	int rc = setup(&l, mem, cfg, err, errlen);
	if (!rc)
		rc = write_gdt(&l, out);
	if (!rc)
		rc = write_page_tables(&l, out);
	if (rc)
		return rc;

	struct linux_setup_header lh;
	struct multiboot_header mh;
	size_t mb_at;
	struct elf e;
	uint64_t entry;
	bool elf = is_elf(&l);
	if (elf && (rc = elf_parse(&l, &e)))
		return rc;
	if (is_bzimage(&l, &lh))
		rc = load_bzimage(&l, &lh, out);
	else if (elf && elf_pvh_entry(&l, &e, &entry))
		rc = load_pvh(&l, &e, entry, out);
	else if (find_multiboot(&l, &mh, &mb_at))
		rc = load_multiboot(&l, &mh, mb_at, out);
	else
		return fail(&l, -ENOEXEC,
			    "not a kernel hvkit can boot: no Linux setup header, no ELF PVH note, "
			    "no Multiboot header in the first 8 KiB");
	if (!rc) {
		memcpy(out->map, l.map, l.map_entries * sizeof(l.map[0]));
		out->map_entries = l.map_entries;
	}
	return rc;
}
