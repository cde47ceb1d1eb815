/* SPDX-License-Identifier: MIT */
/*
 * The Multiboot v1 entry of the test kernel: the header (a.out kludge, so
 * the image can be a flat binary any Multiboot loader takes), then 32-bit
 * protected mode -> identity-mapped long mode -> mbtest_main(magic, info).
 * Kept short: under PVM every instruction here is emulated.
 */
/* include/hvkit/boot.h's values (that header is C only). */
#define MULTIBOOT_HEADER_MAGIC 0x1badb002
#define MB_FLAGS 0x10003 /* page-aligned modules, memory info, a.out kludge */

	.section .text.start, "ax"
	.code32
	.align 4
mb_header:
	.long MULTIBOOT_HEADER_MAGIC
	.long MB_FLAGS
	.long -(MULTIBOOT_HEADER_MAGIC + MB_FLAGS)
	.long mb_header          /* header_addr */
	.long mb_load_start      /* load_addr */
	.long mb_load_end        /* load_end_addr */
	.long mb_bss_end         /* bss_end_addr */
	.long mb_entry           /* entry_addr */

	.globl mb_entry
mb_entry:
	cli
	movl $stack_top, %esp
	movl %eax, %edi          /* the loader's magic and info: main's arguments */
	movl %ebx, %esi

	/* 4 GiB identity map in 2 MiB pages: PML4[0] -> PDPT, PDPT[0..3] ->
	 * the four PDs. The top GiB (LAPIC, IOAPIC) uncached. */
	movl $pdpt, %eax
	orl $3, %eax
	movl %eax, pml4
	movl $pd, %eax
	orl $3, %eax
	xorl %ecx, %ecx
1:	movl %eax, pdpt(,%ecx,8)
	addl $4096, %eax
	incl %ecx
	cmpl $4, %ecx
	jne 1b
	xorl %ecx, %ecx
2:	movl %ecx, %eax
	shll $21, %eax
	orl $0x83, %eax          /* present, writable, 2 MiB */
	cmpl $1536, %ecx
	jb 3f
	orl $0x18, %eax          /* PWT, PCD */
3:	movl %eax, pd(,%ecx,8)
	incl %ecx
	cmpl $2048, %ecx
	jne 2b

	movl %cr4, %eax
	orl $0x20, %eax          /* PAE */
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx   /* EFER.LME */
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax    /* PG, PE */
	movl %eax, %cr0
	lgdt gdt_ptr
	ljmp $0x08, $long_mode

	.code64
long_mode:
	movl $0x10, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	call mbtest_main
4:	hlt
	jmp 4b

	.section .rodata
	.align 8
gdt:
	.quad 0
	.quad 0x00af9a000000ffff /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff /* 0x10: data */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt

	.section .bss
	.align 4096
pml4:	.skip 4096
pdpt:	.skip 4096
pd:	.skip 4 * 4096
	.skip 16384
stack_top:
