/* SPDX-License-Identifier: MIT */
/* The kernel loaders against synthetic bzImage, PVH ELF and Multiboot files. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "boot_images.h"
#include "hvkit/boot.h"
#include "loader.h"

#define RAM (64u << 20)
#define IMAGE_CAP (1u << 20)

struct fixture {
	struct guest_memory mem;
	uint8_t *ram;
	uint8_t *image;
	char err[256];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	f->image = malloc(IMAGE_CAP);
	if (!f || f->ram == MAP_FAILED || !f->image ||
	    guest_memory_add(&f->mem, 0, RAM, f->ram))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	munmap(f->ram, RAM);
	free(f->image);
	free(f);
	return 0;
}

static const uint8_t *at(struct fixture *f, uint64_t gpa)
{
	assert_true(gpa < RAM);
	return f->ram + gpa;
}

static void expect_pattern(struct fixture *f, uint64_t gpa, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (at(f, gpa)[i] != image_pattern(i))
			fail_msg("byte %zu at %#llx", i, (unsigned long long)gpa);
}

static void fill(uint8_t *p, size_t n, uint8_t v)
{
	memset(p, v, n);
}

static const char initrd_text[] = "an initrd, of sorts";

static struct boot_config linux_config(const uint8_t *image, size_t len,
				       const struct boot_module *initrd)
{
	return (struct boot_config){.kernel = image, .kernel_size = len,
				    .cmdline = "console=ttyS0 earlyprintk=serial",
				    .modules = initrd, .module_count = initrd ? 1 : 0,
				    .rsdp_gpa = 0xe0000, .acpi_base = 0xe0000, .acpi_size = 0x1000};
}

/* Walks the loader's page tables: the identity map must send va to va. */
static uint64_t translate(struct fixture *f, uint64_t cr3, uint64_t va)
{
	uint64_t e;
	memcpy(&e, at(f, cr3 + ((va >> 39) & 511) * 8), 8);
	assert_true(e & 1);
	memcpy(&e, at(f, (e & ~0xfffull) + ((va >> 30) & 511) * 8), 8);
	assert_true(e & 1);
	memcpy(&e, at(f, (e & ~0xfffull) + ((va >> 21) & 511) * 8), 8);
	assert_true((e & 0x81) == 0x81); /* present, 2 MiB */
	return (e & ~0x1fffffull) + (va & 0x1fffff);
}

static void check_memory_map(const struct boot_e820_entry *map, unsigned n)
{
	assert_true(n >= 3);
	for (unsigned i = 1; i < n; i++)
		assert_true(map[i].addr >= map[i - 1].addr + map[i - 1].size); /* sorted, disjoint */
	assert_int_equal(map[0].addr, 0);
	assert_int_equal(map[0].type, E820_RAM);
	assert_int_equal(map[n - 1].type, E820_RAM);
	assert_int_equal(map[n - 1].addr + map[n - 1].size, RAM);
}

static void bzimage_boots_in_long_mode(void **state)
{
	struct fixture *f = *state;
	size_t len = make_bzimage(f->image, IMAGE_CAP, 0x020f, 0x10000);
	struct boot_module initrd = {initrd_text, sizeof(initrd_text), NULL};
	struct boot_config c = linux_config(f->image, len, &initrd);
	struct boot_info bi;
	fill(f->ram, RAM, 0xcc);
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), 0);
	assert_string_equal(bi.format, "bzImage");
	assert_int_equal(bi.mode, BOOT_MODE_LONG64);
	assert_int_equal(bi.entry, 0x1000000 + 0x200); /* pref_address + startup_64 */
	assert_int_equal(bi.rsi, BOOT_INFO);
	expect_pattern(f, 0x1000000, 0x10000);

	struct linux_boot_params bp;
	memcpy(&bp, at(f, bi.rsi), sizeof(bp));
	assert_int_equal(bp.hdr.header, LINUX_SETUP_HEADER_MAGIC);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_true(bp.hdr.loadflags & LINUX_CAN_USE_HEAP);
	assert_int_equal(bp.hdr.code32_start, 0x1000000);
	assert_string_equal((const char *)at(f, bp.hdr.cmd_line_ptr), c.cmdline);
	assert_int_equal(bp.hdr.ramdisk_size, sizeof(initrd_text));
	assert_memory_equal(at(f, bp.hdr.ramdisk_image), initrd_text, sizeof(initrd_text));
	assert_int_equal(bp.hdr.ramdisk_image % 4096, 0);
	assert_true(bp.hdr.ramdisk_image >= 0x1000000 + 0x400000); /* above init_size */
	assert_int_equal(bp.acpi_rsdp_addr, 0xe0000);
	assert_int_equal(bp.sentinel, 0); /* a clean zero page */
	check_memory_map(bp.e820_table, bp.e820_entries);

	/* Long mode: identity-mapped first 4 GiB, Linux's boot selectors. */
	assert_int_equal(translate(f, bi.cr3, 0x1000200), 0x1000200);
	assert_int_equal(translate(f, bi.cr3, 0xfee00000), 0xfee00000);
	uint64_t gdt[4];
	memcpy(gdt, at(f, bi.gdt_base), sizeof(gdt));
	assert_int_equal(bi.gdt_limit, sizeof(gdt) - 1);
	assert_true(gdt[LINUX_BOOT_CS / 8] & (1ull << 53)); /* L: 64-bit code */
	assert_int_equal((gdt[LINUX_BOOT_DS / 8] >> 40) & 0x9a, 0x92); /* present data, r/w */
}

static void bzimage_errors_are_explained(void **state)
{
	struct fixture *f = *state;
	struct boot_info bi;
	struct boot_module two[2] = {{initrd_text, 4, NULL}, {initrd_text, 4, NULL}};
	size_t len = make_bzimage(f->image, IMAGE_CAP, 0x020b, 0x1000);
	struct boot_config c = linux_config(f->image, len, NULL);
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -ENOEXEC);
	assert_non_null(strstr(f->err, "2.12"));

	len = make_bzimage(f->image, IMAGE_CAP, 0x020f, 0x1000);
	f->image[0x236] = 0; /* no XLF_KERNEL_64 */
	c = linux_config(f->image, len, NULL);
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -ENOEXEC);
	assert_non_null(strstr(f->err, "64-bit"));

	len = make_bzimage(f->image, IMAGE_CAP, 0x020f, 0x1000);
	c = linux_config(f->image, 5 * 512, NULL); /* setup only */
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -ENOEXEC);
	assert_non_null(strstr(f->err, "truncated"));

	c = linux_config(f->image, len, NULL);
	c.modules = two;
	c.module_count = 2;
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -EINVAL);

	char long_cmdline[3000];
	memset(long_cmdline, 'x', sizeof(long_cmdline) - 1);
	long_cmdline[sizeof(long_cmdline) - 1] = '\0';
	c = linux_config(f->image, len, NULL);
	c.cmdline = long_cmdline;
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -E2BIG);
	assert_non_null(strstr(f->err, "2047"));

	/* init_size beyond RAM, from anywhere it could go */
	uint32_t huge = 0x7f000000;
	memcpy(f->image + 0x260, &huge, 4);
	c = linux_config(f->image, len, NULL);
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -E2BIG);
	assert_non_null(strstr(f->err, "MiB"));
}

static void initrd_too_big_for_the_machine_is_refused(void **state)
{
	struct fixture *f = *state;
	size_t len = make_bzimage(f->image, IMAGE_CAP, 0x020f, 0x1000);
	struct boot_module big = {f->ram, RAM - 0x1000000, NULL}; /* data never read */
	struct boot_config c = linux_config(f->image, len, &big);
	struct boot_info bi;
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -E2BIG);
	assert_non_null(strstr(f->err, "does not fit"));
}

static void pvh_elf_enters_at_the_note(void **state)
{
	struct fixture *f = *state;
	for (int is64 = 0; is64 <= 1; is64++) {
		size_t len = make_pvh_elf(f->image, IMAGE_CAP, is64, 0x200000, 0x3000, 0x5000,
					  0x200010);
		struct boot_module mods[2] = {{initrd_text, sizeof(initrd_text), "first"},
					      {"x", 1, NULL}};
		struct boot_config c = {.kernel = f->image, .kernel_size = len, .cmdline = "pvh!",
					.modules = mods, .module_count = 2, .rsdp_gpa = 0xe0000};
		struct boot_info bi;
		fill(f->ram, RAM, 0xcc);
		assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), 0);
		assert_string_equal(bi.format, "PVH ELF");
		assert_int_equal(bi.mode, BOOT_MODE_PROTECTED32);
		assert_int_equal(bi.entry, 0x200010);
		assert_int_equal(bi.kernel_start, 0x200000);
		assert_int_equal(bi.kernel_end, 0x205000);
		expect_pattern(f, 0x200000, 0x3000);
		for (size_t i = 0x3000; i < 0x5000; i++)
			assert_int_equal(at(f, 0x200000)[i], 0); /* bss cleared */

		struct hvm_start_info si;
		memcpy(&si, at(f, bi.ebx), sizeof(si));
		assert_int_equal(si.magic, HVM_START_MAGIC);
		assert_int_equal(si.version, 1);
		assert_int_equal(si.rsdp_paddr, 0xe0000);
		assert_string_equal((const char *)at(f, si.cmdline_paddr), "pvh!");
		assert_int_equal(si.nr_modules, 2);
		struct hvm_modlist_entry me[2];
		memcpy(me, at(f, si.modlist_paddr), sizeof(me));
		assert_true(me[0].paddr >= bi.kernel_end && me[0].paddr % 4096 == 0);
		assert_memory_equal(at(f, me[0].paddr), initrd_text, sizeof(initrd_text));
		assert_string_equal((const char *)at(f, me[0].cmdline_paddr), "first");
		assert_true(me[1].paddr >= me[0].paddr + me[0].size);
		assert_int_equal(me[1].size, 1);
		struct hvm_memmap_table_entry map[16];
		assert_true(si.memmap_entries >= 3 && si.memmap_entries <= 16);
		memcpy(map, at(f, si.memmap_paddr), sizeof(map[0]) * si.memmap_entries);
		assert_int_equal(map[0].type, E820_RAM);
		assert_int_equal(map[si.memmap_entries - 1].addr + map[si.memmap_entries - 1].size,
				 RAM);
	}
}

static void elf_segments_outside_ram_are_refused(void **state)
{
	struct fixture *f = *state;
	struct boot_info bi;
	size_t len = make_pvh_elf(f->image, IMAGE_CAP, 1, RAM - 0x1000, 0x100, 0x2000, RAM - 0x1000);
	struct boot_config c = {.kernel = f->image, .kernel_size = len};
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -E2BIG);
	len = make_pvh_elf(f->image, IMAGE_CAP, 1, 0x8000, 0x100, 0x100, 0x8000); /* boot area */
	c.kernel_size = len;
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -E2BIG);
	/* p_filesz past the end of the file */
	len = make_pvh_elf(f->image, IMAGE_CAP, 1, 0x200000, 0x100, 0x100, 0x200000);
	c.kernel_size = len - 1;
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -ENOEXEC);
	assert_non_null(strstr(f->err, "outside the file"));
}

static void multiboot_aout_kernel_gets_info_and_modules(void **state)
{
	struct fixture *f = *state;
	size_t len = make_multiboot(f->image, IMAGE_CAP,
				    MULTIBOOT_AOUT_KLUDGE | MULTIBOOT_PAGE_ALIGN |
					    MULTIBOOT_MEMORY_INFO,
				    0x2000, 0x110000);
	struct boot_module mods[2] = {{initrd_text, sizeof(initrd_text), "mod one"},
				      {"abc", 3, "mod two"}};
	struct boot_config c = {.kernel = f->image, .kernel_size = len, .cmdline = "mb test",
				.modules = mods, .module_count = 2};
	struct boot_info bi;
	fill(f->ram, RAM, 0xcc);
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), 0);
	assert_string_equal(bi.format, "Multiboot");
	assert_int_equal(bi.mode, BOOT_MODE_PROTECTED32);
	assert_int_equal(bi.eax, MULTIBOOT_BOOTLOADER_MAGIC);
	assert_int_equal(bi.entry, 0x100080);
	expect_pattern(f, 0x100000, 0x40); /* the file as it is, header included */
	assert_memory_equal(at(f, 0x100040), f->image + 0x40, 0x2000 - 0x40);
	for (size_t i = 0x2000; i < 0x10000; i++)
		assert_int_equal(at(f, 0x100000)[i], 0);

	struct multiboot_info mi;
	memcpy(&mi, at(f, bi.ebx), sizeof(mi));
	uint32_t want = MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MODS |
			MULTIBOOT_INFO_MEM_MAP | MULTIBOOT_INFO_BOOT_LOADER_NAME;
	assert_int_equal(mi.flags, want);
	assert_int_equal(mi.mem_lower, 639);
	assert_int_equal(mi.mem_upper, (RAM - 0x100000) / 1024);
	assert_string_equal((const char *)at(f, mi.cmdline), "mb test");
	assert_string_equal((const char *)at(f, mi.boot_loader_name), "hvkit");
	assert_int_equal(mi.mods_count, 2);
	struct multiboot_module mm[2];
	memcpy(mm, at(f, mi.mods_addr), sizeof(mm));
	assert_true(mm[0].mod_start >= 0x110000 && mm[0].mod_start % 4096 == 0);
	assert_int_equal(mm[0].mod_end - mm[0].mod_start, sizeof(initrd_text));
	assert_memory_equal(at(f, mm[0].mod_start), initrd_text, sizeof(initrd_text));
	assert_string_equal((const char *)at(f, mm[1].string), "mod two");
	assert_int_equal(mm[1].mod_start % 4096, 0);
	assert_memory_equal(at(f, mm[1].mod_start), "abc", 3);
	/* mmap entries: size excludes itself */
	assert_int_equal(mi.mmap_length % 24, 0);
	struct multiboot_mmap_entry e;
	memcpy(&e, at(f, mi.mmap_addr), sizeof(e));
	assert_int_equal(e.size, 20);
	assert_int_equal(e.addr, 0);
	assert_int_equal(e.type, E820_RAM);
}

static void multiboot_requirements_we_lack_are_refused(void **state)
{
	struct fixture *f = *state;
	struct boot_info bi;
	size_t len = make_multiboot(f->image, IMAGE_CAP, MULTIBOOT_AOUT_KLUDGE | MULTIBOOT_VIDEO_MODE,
				    0x1000, 0);
	struct boot_config c = {.kernel = f->image, .kernel_size = len};
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -ENOEXEC);
	assert_non_null(strstr(f->err, "video"));
	/* entry outside the image */
	len = make_multiboot(f->image, IMAGE_CAP, MULTIBOOT_AOUT_KLUDGE, 0x100, 0);
	uint32_t entry = 0x200000;
	memcpy(f->image + 0x40 + offsetof(struct multiboot_header, entry_addr), &entry, 4);
	c.kernel_size = len;
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -ENOEXEC);
	assert_non_null(strstr(f->err, "entry"));
}

static void anything_else_is_not_a_kernel(void **state)
{
	struct fixture *f = *state;
	struct boot_info bi;
	struct boot_config c = {.kernel = "hello", .kernel_size = 5};
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -ENOEXEC);
	assert_non_null(strstr(f->err, "not a kernel"));
	c.kernel_size = 0;
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -ENOEXEC);
	/* A Multiboot header with a bad checksum is no header. */
	size_t len = make_multiboot(f->image, IMAGE_CAP, MULTIBOOT_AOUT_KLUDGE, 0x1000, 0);
	f->image[0x48] ^= 1;
	c = (struct boot_config){.kernel = f->image, .kernel_size = len};
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -ENOEXEC);
	assert_non_null(strstr(f->err, "not a kernel"));
	/* An ELF with neither PVH note nor Multiboot header */
	len = make_pvh_elf(f->image, IMAGE_CAP, 1, 0x200000, 0x100, 0x100, 0);
	c.kernel_size = len;
	assert_int_equal(boot_load(&f->mem, &c, &bi, f->err, sizeof(f->err)), -ENOEXEC);
}

static void machine_without_low_ram_is_refused(void **state)
{
	(void)state;
	struct guest_memory mem = {0};
	static uint8_t page[4096] __attribute__((aligned(4096)));
	assert_int_equal(guest_memory_add(&mem, 0x100000, sizeof(page), page), 0);
	struct boot_config c = {.kernel = "x", .kernel_size = 1};
	struct boot_info bi;
	char err[128];
	assert_int_equal(boot_load(&mem, &c, &bi, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "RAM from GPA 0"));
}

/* ---- The Debian cloud kernel (path from the command line) ---- */

static const char *linux_kernel;

static void *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *p = n > 0 ? malloc((size_t)n) : NULL;
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void debian_kernel_loads_as_bzimage(void **state)
{
	(void)state;
	if (!linux_kernel)
		skip(); /* no kernel could be fetched */
	size_t len;
	uint8_t *k = read_whole(linux_kernel, &len);
	assert_non_null(k);
	const size_t ram = 512u << 20; /* room for its init_size */
	uint8_t *mem = mmap(NULL, ram, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	struct guest_memory gm = {0};
	assert_int_equal(guest_memory_add(&gm, 0, ram, mem), 0);
	struct boot_config c = linux_config(k, len, NULL);
	struct boot_info bi;
	char err[256];
	if (boot_load(&gm, &c, &bi, err, sizeof(err)))
		fail_msg("%s: %s", linux_kernel, err);
	assert_string_equal(bi.format, "bzImage");
	struct linux_boot_params bp;
	memcpy(&bp, mem + bi.rsi, sizeof(bp));
	assert_true(bp.hdr.version >= 0x020f);
	assert_int_equal(bi.entry, bp.hdr.code32_start + LINUX_ENTRY64_OFFSET);
	size_t setup = ((size_t)(k[0x1f1] ? k[0x1f1] : 4) + 1) * 512;
	assert_memory_equal(mem + bp.hdr.code32_start, k + setup, len - setup);
	assert_string_equal((const char *)mem + bp.hdr.cmd_line_ptr, c.cmdline);
	munmap(mem, ram);
	free(k);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		linux_kernel = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(bzimage_boots_in_long_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(bzimage_errors_are_explained, setup, teardown),
		cmocka_unit_test_setup_teardown(initrd_too_big_for_the_machine_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(pvh_elf_enters_at_the_note, setup, teardown),
		cmocka_unit_test_setup_teardown(elf_segments_outside_ram_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(multiboot_aout_kernel_gets_info_and_modules, setup,
						teardown),
		cmocka_unit_test_setup_teardown(multiboot_requirements_we_lack_are_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(anything_else_is_not_a_kernel, setup, teardown),
		cmocka_unit_test(machine_without_low_ram_is_refused),
		cmocka_unit_test(debian_kernel_loads_as_bzimage),
	};
	return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
