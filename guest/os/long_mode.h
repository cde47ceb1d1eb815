/* SPDX-License-Identifier: MIT */
/* Shared by the BSP's and the APs' entry code (assembly only). */
#ifndef HVKIT_OS_LONG_MODE_H
#define HVKIT_OS_LONG_MODE_H

#define CR0_PE 0x00000001
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define CODE64 0x08
#define DATA 0x10

/* From 32-bit protected mode: PAE, the boot page tables, EFER.LME, then
 * paging on (with PE, in case it was not yet) makes long mode active.
 * The caller then far-jumps to a 64-bit code segment. */
.macro enter_long_mode
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov $boot_pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $(CR0_PE | CR0_PG), %eax
	mov %eax, %cr0
.endm

#endif
