/* SPDX-License-Identifier: MIT */
/*
 * hvkit-os entry. A PVH loader (hvkit's, QEMU's, Xen's) jumps to pvh_start
 * in 32-bit protected mode, paging off, EBX = hvm_start_info (boot.rst of
 * Xen's PVH; include/xen/interface/hvm/start_info.h). We identity-map the
 * first 4 GiB with 2 MiB pages, enter long mode and call kmain(start_info).
 * Everything here runs at CPL0, which PVM emulates slowly: keep it short.
 */
#include "long_mode.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PTE_PRESENT_RW 0x03
#define PTE_LARGE 0x80

	.section .note.Xen, "a"
	.balign 4
	.long 4, 4, XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_start

	.section .text.start, "ax"
	.code32
	.global pvh_start
pvh_start:
	cli
	cld
	mov %ebx, %esi                  /* start_info, kept for kmain */

	/* PML4[0] -> PDPT; PDPT[0..3] -> four PDs; each PD maps 1 GiB. */
	mov $boot_pdpt, %eax
	or $PTE_PRESENT_RW, %eax
	mov %eax, boot_pml4
	xor %ecx, %ecx
1:	mov %ecx, %eax
	shl $12, %eax
	add $boot_pd, %eax
	or $PTE_PRESENT_RW, %eax
	mov %eax, boot_pdpt(, %ecx, 8)
	inc %ecx
	cmp $4, %ecx
	jb 1b
	xor %ecx, %ecx
2:	mov %ecx, %eax
	shl $21, %eax
	or $(PTE_PRESENT_RW | PTE_LARGE), %eax
	mov %eax, boot_pd(, %ecx, 8)
	inc %ecx
	cmp $2048, %ecx
	jb 2b

	enter_long_mode
	lgdt boot_gdt_ptr
	ljmp $CODE64, $long_mode

	.code64
long_mode:
	mov $DATA, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	xor %eax, %eax
	mov %ax, %fs
	mov %ax, %gs
	lea boot_stack_top(%rip), %rsp
	mov %esi, %edi
	call kmain
3:	cli
	hlt
	jmp 3b

	.section .rodata
	.balign 8
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff        /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff        /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
	.word boot_gdt_end - boot_gdt - 1
	.long boot_gdt

	.section .bss
	.balign 4096
	.global boot_pml4
boot_pml4:
	.skip 4096
boot_pdpt:
	.skip 4096
boot_pd:
	.skip 4 * 4096
	.balign 16
boot_stack:
	.skip 16384
boot_stack_top:
