/* SPDX-License-Identifier: MIT */
/*
 * Interrupt and exception entry: one 16-byte stub per vector (at
 * isr_stubs + 16 * vector) that pushes a zero where the CPU pushes no error
 * code, then the vector, and joins isr_common, which saves the general
 * registers as struct trap_frame (os.h) and calls trap().
 */
	.text
	.altmacro
.macro isr_stub v
	.balign 16
	.if !((\v == 8) || (\v >= 10 && \v <= 14) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30))
	pushq $0
	.endif
	pushq $\v
	jmp isr_common
.endm

	.balign 16
	.global isr_stubs
isr_stubs:
	.set vector, 0
	.rept 256
	isr_stub %vector
	.set vector, vector + 1
	.endr

isr_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	call trap
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp                   /* vector, error code */
	iretq
