/* SPDX-License-Identifier: MIT */
/*
 * hvkit-bench scale, msr: MSR reads on every VP of a KVM partition at
 * once.
 *
 * The guest is a few instructions of its own, below: VP 0 starts in long
 * mode (kt_boot_long_mode), sends INIT and a start-up IPI to every other
 * VP, whose real-mode entry switches to long mode on the same page tables.
 * Every VP then reads HV_X64_MSR_VP_INDEX once to find its slot in guest
 * memory (a VP whose index were wrong would leave its own slot empty) and
 * loops: RDMSR of the MSR the host chose, one count in its slot. The host
 * reads the slots at both ends of a window. The test guest of tests/kvm
 * runs VP 0 alone, hence a guest of our own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_scale.h"
#include "hvkit/tlfs.h"
#include "kvm.h"
#include "kvm_boot.h"
#include "kvm_test.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* Guest-physical layout (below the stack kt_boot_long_mode sets). */
#define GUEST_GPA 0x10000        /* the code; VP 0 starts at its first byte */
#define GUEST_AP_OFFSET 0x1000   /* the other VPs' entry: a page below 1 MiB */
#define GUEST_SIPI_VECTOR ((GUEST_GPA + GUEST_AP_OFFSET) >> 12) /* that page's number */
#define GUEST_LOOP_MSR_GPA 0x1f000 /* the MSR the loop reads, set by the host */
#define GUEST_SLOTS_GPA 0x20000  /* a slot a VP: rounds of its loop */
#define GUEST_SLOT_SHIFT 6       /* 64-byte slots: a cache line each */
/* Spelled out for the assembler (no C suffixes there). */
#define GUEST_PML4_GPA 0x2000
#define GUEST_VP_INDEX_MSR 0x40000002
_Static_assert(GUEST_PML4_GPA == KT_PML4_GPA, "kt_boot_long_mode's page tables");
_Static_assert(GUEST_VP_INDEX_MSR == HV_MSR_VP_INDEX, "HV_X64_MSR_VP_INDEX");
_Static_assert(GUEST_SLOTS_GPA + (SCALE_MAX_VPS << GUEST_SLOT_SHIFT) <= KT_STACK_TOP,
	       "the slots stay below the stack");

/* An address in the APs' entry page, as the guest sees it. */
#define AP_AT(label) "(" STR(GUEST_GPA + GUEST_AP_OFFSET) " + " label " - .Lap)"

__asm__(
	"	.pushsection .rodata.scale_msr_guest, \"a\"\n"
	"	.balign 4096\n"
	"scale_msr_guest:\n"
	/* VP 0, RDI = the VP count: each other VP gets INIT, then a
	 * start-up IPI, through the local APIC (its id is the VP index). */
	"	.code64\n"
	"	cli\n"
	"	mov $0xfee00000, %edx\n"
	"	movl $0x1ff, 0xf0(%rdx)\n" /* spurious-vector register: APIC on */
	"	mov $1, %esi\n"
	".Lnext_ap:\n"
	"	cmp %edi, %esi\n"
	"	jae .Lrun\n"
	"	mov %esi, %eax\n"
	"	shl $24, %eax\n"
	"	mov %eax, 0x310(%rdx)\n"   /* ICR high: the destination */
	"	movl $0x4500, 0x300(%rdx)\n" /* INIT */
	"	movl $(0x4600 | " STR(GUEST_SIPI_VECTOR) "), 0x300(%rdx)\n" /* start-up */
	"	inc %esi\n"
	"	jmp .Lnext_ap\n"
	/* Every VP: its slot by its index, then the loop (RDMSR keeps ECX). */
	".Lrun:\n"
	"	mov $" STR(GUEST_VP_INDEX_MSR) ", %ecx\n"
	"	rdmsr\n"
	"	shl $" STR(GUEST_SLOT_SHIFT) ", %eax\n"
	"	lea " STR(GUEST_SLOTS_GPA) "(%rax), %rbx\n"
	"	mov " STR(GUEST_LOOP_MSR_GPA) ", %ecx\n"
	".Lloop:\n"
	"	rdmsr\n"
	"	incq (%rbx)\n"
	"	jmp .Lloop\n"
	/* The other VPs start here in real mode (CS = this page): to
	 * protected mode on a GDT of our own, then long mode on VP 0's
	 * page tables, then the loop (as hvkit-os's smp.S does). */
	"	.org scale_msr_guest + " STR(GUEST_AP_OFFSET) "\n"
	"	.code16\n"
	".Lap:\n"
	"	cli\n"
	"	mov %cs, %ax\n"
	"	mov %ax, %ds\n"
	"	lgdtl .Lgdt_ptr - .Lap\n"
	"	mov %cr0, %eax\n"
	"	or $1, %eax\n" /* PE */
	"	mov %eax, %cr0\n"
	"	ljmpl $0x18, $" AP_AT(".Lap32") "\n"
	"	.code32\n"
	".Lap32:\n"
	"	mov $0x10, %ax\n"
	"	mov %ax, %ds\n"
	"	mov %ax, %ss\n"
	"	mov %cr4, %eax\n"
	"	or $0x20, %eax\n" /* PAE */
	"	mov %eax, %cr4\n"
	"	mov $" STR(GUEST_PML4_GPA) ", %eax\n"
	"	mov %eax, %cr3\n"
	"	mov $0xc0000080, %ecx\n" /* EFER */
	"	rdmsr\n"
	"	or $0x100, %eax\n" /* LME */
	"	wrmsr\n"
	"	mov %cr0, %eax\n"
	"	or $0x80000000, %eax\n" /* PG: long mode is active */
	"	mov %eax, %cr0\n"
	"	ljmp $0x08, $(" STR(GUEST_GPA) " + .Lrun - scale_msr_guest)\n"
	"	.balign 8\n"
	".Lgdt:\n"
	"	.quad 0\n"
	"	.quad 0x00af9a000000ffff\n" /* 0x08: 64-bit code */
	"	.quad 0x00cf92000000ffff\n" /* 0x10: data */
	"	.quad 0x00cf9a000000ffff\n" /* 0x18: 32-bit code */
	".Lgdt_ptr:\n"
	"	.word .Lgdt_ptr - .Lgdt - 1\n"
	"	.long " AP_AT(".Lgdt") "\n"
	"scale_msr_guest_end:\n"
	"	.code64\n"
	"	.popsection\n");
extern const uint8_t scale_msr_guest[], scale_msr_guest_end[];

#define START_TIMEOUT_NS 60000000000ull /* emulated real mode is slow under PVM */

/* The guest image through a memfd (kt_boot_long_mode loads files), and
 * the MSR its loop reads. */
static int boot(struct kvm_partition *kp, uint32_t msr, uint32_t vps)
{
	int err = guest_memory_write(kvm_partition_memory(kp), GUEST_LOOP_MSR_GPA, &msr,
				     sizeof(msr));
	int fd = memfd_create("hvkit-bench-scale-guest", MFD_CLOEXEC);
	if (err || fd < 0)
		return err ? -EFAULT : -errno;
	size_t len = (size_t)(scale_msr_guest_end - scale_msr_guest);
	err = write(fd, scale_msr_guest, len) == (ssize_t)len ? 0 : -EIO;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (!err)
		err = kt_boot_long_mode(kp, path, GUEST_GPA, KT_STACK_TOP, vps);
	close(fd);
	return err;
}

static uint64_t rounds(const volatile uint64_t *slots, uint32_t vp)
{
	return __atomic_load_n(&slots[(vp << GUEST_SLOT_SHIFT) / sizeof(uint64_t)],
			       __ATOMIC_RELAXED);
}

/* Until every VP has counted a round (they start one after another). */
static int wait_all_looping(const volatile uint64_t *slots, uint32_t vps)
{
	uint64_t deadline = bench_now_ns() + START_TIMEOUT_NS;
	for (uint32_t vp = 0; vp < vps; vp++)
		while (!rounds(slots, vp)) {
			if (bench_now_ns() > deadline)
				return -ETIMEDOUT;
			nanosleep(&(struct timespec){0, 1000000}, NULL);
		}
	return 0;
}

static void measure(const volatile uint64_t *slots, uint32_t vps, uint32_t ms,
		    struct scale_figures *out)
{
	uint64_t before[SCALE_MAX_VPS];
	uint64_t t0 = bench_now_ns();
	for (uint32_t vp = 0; vp < vps; vp++)
		before[vp] = rounds(slots, vp);
	nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
	uint64_t ns = bench_now_ns() - t0;
	out->total = 0;
	for (uint32_t vp = 0; vp < vps; vp++) {
		out->per_vp[vp] = (double)(rounds(slots, vp) - before[vp]) * 1e9 / (double)ns;
		out->total += out->per_vp[vp];
	}
}

/* The partition served one MSR exit per VP for its slot, then one per
 * round of a synthetic MSR (but for a last one per VP whose count the halt
 * cut off) and none for KVM's own: else the loop is not what we time. */
static int check_exits(struct kvm_partition *kp, uint32_t msr, const volatile uint64_t *slots,
		       uint32_t vps)
{
	struct kvm_partition_stats st;
	kvm_partition_get_stats(kp, &st);
	uint64_t sum = 0;
	for (uint32_t vp = 0; vp < vps; vp++)
		sum += rounds(slots, vp);
	bool synthetic = msr == HV_MSR_VP_INDEX;
	uint64_t least = vps + (synthetic ? sum : 0), most = least + (synthetic ? vps : 0);
	if (st.msr_exits < least || st.msr_exits > most || st.msr_gp) {
		fprintf(stderr, "hvkit-bench scale: %llu MSR exits (%llu #GP) for %llu rounds\n",
			(unsigned long long)st.msr_exits, (unsigned long long)st.msr_gp,
			(unsigned long long)sum);
		return -EPROTO;
	}
	return 0;
}

int scale_msr_run(uint32_t msr, uint32_t vps, uint32_t ms, struct scale_figures *out)
{
	if (vps < 1 || vps > SCALE_MAX_VPS || (msr != HV_MSR_VP_INDEX && msr != SCALE_MSR_APIC_BASE))
		return -EINVAL;
	struct kvm_partition_config cfg = {.vp_count = vps, .memory_size = KT_MEMORY_SIZE};
	struct kvm_partition *kp;
	int err = kvm_partition_new(&cfg, &kp);
	if (err)
		return err;
	const volatile uint64_t *slots = guest_memory_ptr(
		kvm_partition_memory(kp), GUEST_SLOTS_GPA, (uint64_t)vps << GUEST_SLOT_SHIFT);
	err = slots ? boot(kp, msr, vps) : -EFAULT;
	if (!err)
		err = kvm_partition_launch(kp);
	if (!err)
		err = wait_all_looping(slots, vps);
	if (!err)
		measure(slots, vps, ms, out);
	kvm_partition_halt(kp);
	if (!err)
		err = check_exits(kp, msr, slots, vps);
	kvm_partition_stop(kp);
	return err;
}
