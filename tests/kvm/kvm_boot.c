/* SPDX-License-Identifier: MIT */
/* Starting the KVM test guest in long mode (see kvm_boot.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kvm_boot.h"

#define PTE_PRESENT 0x1ull
#define PTE_WRITE 0x2ull
#define PTE_PWT 0x8ull
#define PTE_PCD 0x10ull
#define PTE_LARGE 0x80ull
#define CR0_PE 0x1ull
#define CR0_ET 0x10ull
#define CR0_NE 0x20ull
#define CR0_WP 0x10000ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull
#define RFLAGS_RESERVED 0x2ull
#define TWO_MIB (2ull << 20)
/* Above 3 GiB: the LAPIC, IOAPIC and other MMIO; mapped uncached. */
#define MMIO_START (3ull << 30)

static int write_page_tables(const struct guest_memory *mem)
{
	uint64_t pml4[512] = {0}, pdpt[512] = {0}, pd[512];

	pml4[0] = KT_PDPT_GPA | PTE_PRESENT | PTE_WRITE;
	for (uint64_t g = 0; g < 4; g++) {
		uint64_t pd_gpa = KT_PD_GPA + g * 4096;
		pdpt[g] = pd_gpa | PTE_PRESENT | PTE_WRITE;
		for (uint64_t i = 0; i < 512; i++) {
			uint64_t addr = (g * 512 + i) * TWO_MIB;
			pd[i] = addr | PTE_PRESENT | PTE_WRITE | PTE_LARGE |
				(addr >= MMIO_START ? PTE_PCD | PTE_PWT : 0);
		}
		if (guest_memory_write(mem, pd_gpa, pd, sizeof(pd)))
			return -EFAULT;
	}
	if (guest_memory_write(mem, KT_PML4_GPA, pml4, sizeof(pml4)) ||
	    guest_memory_write(mem, KT_PDPT_GPA, pdpt, sizeof(pdpt)))
		return -EFAULT;
	return 0;
}

/* The flat GDT: null, 64-bit code (0x08), data (0x10). iretq reloads CS
 * and SS from it, so it must match the segment registers set below. */
static int write_gdt(const struct guest_memory *mem)
{
	static const uint64_t gdt[3] = {0, 0x00AF9A000000FFFFull, 0x00CF92000000FFFFull};
	return guest_memory_write(mem, KT_GDT_GPA, gdt, sizeof(gdt)) ? -EFAULT : 0;
}

static int load_image(const struct guest_memory *mem, const char *path, uint64_t gpa)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	uint8_t buf[4096];
	size_t n;
	int err = 0;
	while (!err && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (guest_memory_write(mem, gpa, buf, n))
			err = -EFBIG;
		gpa += n;
	}
	if (!err && ferror(f))
		err = -EIO;
	fclose(f);
	return err;
}

int kt_boot_long_mode(struct kvm_partition *kp, const char *image, uint64_t load_gpa,
		      uint64_t stack_top, uint64_t arg)
{
	const struct guest_memory *mem = kvm_partition_memory(kp);
	struct kvm_sregs sregs;
	int err = load_image(mem, image, load_gpa);
	if (!err)
		err = write_page_tables(mem);
	if (!err)
		err = write_gdt(mem);
	if (!err)
		err = kvm_partition_get_registers(kp, 0, NULL, &sregs);
	if (err)
		return err;

	struct kvm_segment code = {
		.base = 0, .limit = 0xFFFFFFFF, .selector = 0x08, .type = 0xB,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = code;
	data.selector = 0x10;
	data.type = 0x3;
	data.l = 0;
	data.db = 1;
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.gdt.base = KT_GDT_GPA;
	sregs.gdt.limit = 3 * 8 - 1;
	sregs.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs.cr3 = KT_PML4_GPA;
	sregs.cr4 = CR4_PAE;
	sregs.efer = EFER_LME | EFER_LMA;

	struct kvm_regs regs = {
		.rip = load_gpa,
		.rsp = stack_top,
		.rdi = arg,
		.rflags = RFLAGS_RESERVED,
	};
	return kvm_partition_set_registers(kp, 0, &regs, &sregs);
}
