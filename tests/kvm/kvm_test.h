/* SPDX-License-Identifier: MIT */
/*
 * The contract between the KVM test guest (tests/kvm/guest) and its
 * harness: where the guest is loaded, how it reports, what it asks of the
 * host. Shared by both sides of the test only.
 */
#ifndef HVKIT_KVM_TEST_H
#define HVKIT_KVM_TEST_H

/* Load address and entry of the flat guest binary; RDI = KT_MODE_*. */
#define KT_LOAD_GPA 0x100000u
#define KT_STACK_TOP 0x80000u
#define KT_MEMORY_SIZE (4u << 20)

#define KT_MODE_CHECKS 0 /* every check, then the debug-exit port */
#define KT_MODE_BENCH 1  /* the figures of hvkit-bench kvm */
#define KT_MODE_SPIN 2   /* loops forever with interrupts off: halt must stop it */
#define KT_MODE_TRIPLE_FAULT 3 /* an exception with no IDT: the VM shuts down */
/* Counts forever (snapshot tests): the count lives in a register and is
 * stored at KT_COUNT_GPA each round, after checking that memory still
 * holds the last one; the TSC and the reference counter are checked never
 * to go back. Anything a restore lost shows as a flag. */
#define KT_MODE_COUNT 4
#define KT_COUNT_GPA 0x90000u
struct kt_count_page {
	volatile uint64_t count;
	volatile uint64_t memory_mismatch; /* memory did not hold the last count */
	volatile uint64_t tsc_back;        /* the TSC went back */
	volatile uint64_t ref_back;        /* the reference counter went back */
	volatile uint64_t ref_reads;
};

/* outl: check << 16 | result (0 pass, else a failure code). */
#define KT_PORT_REPORT 0x500
/* outl: a value for the host (benchmarks: cycles low, then high). */
#define KT_PORT_VALUE 0x504
/* outl: KT_REQ_*, served before the OUT completes. */
#define KT_PORT_REQUEST 0x508
/* outl from an interrupt handler (benchmark of MSI delivery). */
#define KT_PORT_PING 0x50C

enum kt_check {
	KT_CPUID_VENDOR = 1,  /* 0x40000000 = "Microsoft Hv", 0x40000001 = "Hv#1" */
	KT_CPUID_FEATURES,    /* privileges: hypercall, SynIC, stimers, ref count, TSC page */
	KT_CPUID_HYPERVISOR,  /* leaf 1 ECX bit 31 */
	KT_GUEST_OS_ID,       /* written and read back */
	KT_VP_INDEX,          /* HV_MSR_VP_INDEX = APIC id */
	KT_UNKNOWN_MSR_GP,    /* an MSR host/hv refuses raises #GP */
	KT_HYPERCALL_PAGE,    /* enabled; starts with ENDBR64 */
	KT_POST_MESSAGE,      /* HvPostMessage to the host's connection: success */
	KT_SIGNAL_EVENT,      /* fast HvSignalEvent: success */
	KT_BAD_CONNECTION,    /* HvPostMessage to an unknown connection */
	KT_HYPERCALL_REGS,    /* every register but RAX survives a hypercall */
	KT_REF_COUNTER,       /* the reference counter advances */
	KT_TSC_PAGE,          /* valid and agreeing with the counter */
	KT_SYNIC_MESSAGE,     /* a host message arrives with its interrupt */
	KT_STIMER_DIRECT,     /* stimer0 direct mode fires its vector */
	KT_AUTO_EOI,          /* an auto-EOI SINT, taken and not EOIed, holds back no lower vector */
	KT_CHECK_COUNT
};

/* Host-side objects the guest talks to. */
#define KT_MESSAGE_CONNECTION 0x11
#define KT_EVENT_CONNECTION 0x12
#define KT_MESSAGE_TYPE 0x42
#define KT_MESSAGE_BYTES 16 /* "hello from guest" / "hello from host!" */
#define KT_SINT 2
#define KT_SINT_VECTOR 0x40
#define KT_STIMER_VECTOR 0x41
#define KT_PING_VECTOR 0x50
#define KT_STOP_VECTOR 0x51
/* The auto-EOI check: its SINT's vector, and one of a lower priority class
 * that an auto-EOI vector left in service would hold back. */
#define KT_AUTO_EOI_VECTOR 0x60
#define KT_LOW_VECTOR 0x58
/* KT_AUTO_EOI's report when the CPU has no x2APIC (where hvkit ends
 * auto-EOI vectors). */
#define KT_NO_X2APIC 0x99

enum kt_request {
	KT_REQ_POST_MESSAGE = 1, /* host: post one message to KT_SINT of VP 0 */
	KT_REQ_BENCH_READY,      /* guest: waiting for KT_PING_VECTOR interrupts */
	KT_REQ_AUTO_EOI,         /* host: post to KT_SINT, then send KT_LOW_VECTOR, to VP 0 */
};

#endif
