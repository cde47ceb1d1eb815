/* SPDX-License-Identifier: MIT */
/*
 * Application processor start-up. The BSP copies ap_trampoline to
 * AP_TRAMPOLINE (below 1 MiB, page-aligned: the SIPI vector is its page
 * number) and sends INIT, SIPI, SIPI. Each AP starts there in real mode
 * with CS = AP_TRAMPOLINE >> 4, switches to protected mode, then to long
 * mode on the boot page tables, and calls ap_main() on the stack the BSP
 * left in ap_stack_top.
 */
#include "long_mode.h"
#include "smp.h"

#define CODE32 0x18
#define AT(sym) (AP_TRAMPOLINE + (sym) - ap_trampoline)

	.section .rodata
	.global ap_trampoline, ap_trampoline_end
	.code16
ap_trampoline:
	cli
	cld
	mov %cs, %ax
	mov %ax, %ds
	lgdtl ap_gdt_ptr - ap_trampoline
	mov %cr0, %eax
	or $CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $CODE32, $AT(ap_protected)

	.code32
ap_protected:
	mov $DATA, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	enter_long_mode
	ljmp $CODE64, $ap_long_mode

	.balign 8
ap_gdt:
	.quad 0
	.quad 0x00af9a000000ffff        /* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff        /* 0x10: data */
	.quad 0x00cf9a000000ffff        /* 0x18: 32-bit code */
ap_gdt_end:
ap_gdt_ptr:
	.word ap_gdt_end - ap_gdt - 1
	.long AT(ap_gdt)
ap_trampoline_end:

	.text
	.code64
ap_long_mode:
	mov $DATA, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	xor %eax, %eax
	mov %ax, %fs
	mov %ax, %gs
	mov ap_stack_top(%rip), %rsp
	call ap_main
1:	cli
	hlt
	jmp 1b
