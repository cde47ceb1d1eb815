/* SPDX-License-Identifier: MIT */
/*
 * The Hyper-V hypervisor interface as an x86-64 guest sees it: CPUID leaves,
 * synthetic MSRs, the hypercall ABI, the SynIC pages, synthetic timers and
 * the reference TSC page.
 *
 * Checked against Linux 6.1:
 *   include/asm-generic/hyperv-tlfs.h   (generic TLFS structures and bits)
 *   arch/x86/include/asm/hyperv-tlfs.h  (x86 leaves, MSR numbers, bits)
 *   drivers/hv/hyperv_vmbus.h           (HvPostMessage input)
 *   arch/x86/kernel/cpu/mshyperv.c      (which bits the guest acts upon)
 *
 * All multi-byte fields are little-endian; every struct is packed exactly as
 * the hypervisor lays it out and pinned by _Static_assert below.
 */
#ifndef HVKIT_TLFS_H
#define HVKIT_TLFS_H

#include <stddef.h>
#include <stdint.h>

#define HV_BIT(n) (1u << (n))
#define HV_BIT64(n) (1ull << (n))

/* Hyper-V always uses 4 KiB pages for GPAs it exchanges with a guest. */
#define HV_PAGE_SHIFT 12
#define HV_PAGE_SIZE (1u << HV_PAGE_SHIFT)
#define HV_PAGE_MASK (~(uint64_t)(HV_PAGE_SIZE - 1))

/* ------------------------------------------------------------------ */
/* CPUID                                                               */
/* ------------------------------------------------------------------ */

/* CPUID.1:ECX bit 31: a hypervisor is present. */
#define HV_CPUID1_ECX_HYPERVISOR HV_BIT(31)

#define HV_CPUID_VENDOR_AND_MAX 0x40000000u  /* EAX max leaf, EBX:ECX:EDX vendor */
#define HV_CPUID_INTERFACE 0x40000001u       /* EAX "Hv#1" */
#define HV_CPUID_VERSION 0x40000002u         /* build, major.minor, service pack */
#define HV_CPUID_FEATURES 0x40000003u        /* EAX/EBX/ECX/EDX feature groups */
#define HV_CPUID_ENLIGHTENMENT_INFO 0x40000004u /* EAX hints, EBX spin retries */
#define HV_CPUID_IMPLEMENTATION_LIMITS 0x40000005u /* EAX max VPs, EBX max LPs */
#define HV_CPUID_HARDWARE_FEATURES 0x40000006u
#define HV_CPUID_CPU_MANAGEMENT_FEATURES 0x40000007u
#define HV_CPUID_SVM_FEATURES 0x40000008u
#define HV_CPUID_NESTED_FEATURES 0x4000000Au
#define HV_CPUID_ISOLATION_CONFIG 0x4000000Cu

/* Linux accepts a max leaf in [0x40000005, 0x4000FFFF] (mshyperv.c). */
#define HV_CPUID_MAX_LEAF_MIN 0x40000005u
#define HV_CPUID_MAX_LEAF_MAX 0x4000FFFFu

/* "Microsoft Hv" in EBX, ECX, EDX of leaf 0x40000000. */
#define HV_CPUID_VENDOR_EBX 0x7263694Du /* "Micr" */
#define HV_CPUID_VENDOR_ECX 0x666F736Fu /* "osof" */
#define HV_CPUID_VENDOR_EDX 0x76482074u /* "t Hv" */
/* "Hv#1" in EAX of leaf 0x40000001. */
#define HV_CPUID_INTERFACE_SIGNATURE 0x31237648u

/* Leaf 0x40000003 EAX: partition privileges, group A (MSR access). */
#define HV_FEAT_VP_RUNTIME_MSR HV_BIT(0)
#define HV_FEAT_TIME_REF_COUNT_MSR HV_BIT(1)
#define HV_FEAT_SYNIC_MSRS HV_BIT(2)
#define HV_FEAT_STIMER_MSRS HV_BIT(3)
#define HV_FEAT_APIC_ACCESS_MSRS HV_BIT(4)
#define HV_FEAT_HYPERCALL_MSRS HV_BIT(5)
#define HV_FEAT_VP_INDEX_MSR HV_BIT(6)
#define HV_FEAT_RESET_MSR HV_BIT(7)
#define HV_FEAT_STATS_PAGES_MSRS HV_BIT(8)
#define HV_FEAT_REFERENCE_TSC_MSR HV_BIT(9)
#define HV_FEAT_GUEST_IDLE_MSR HV_BIT(10)
#define HV_FEAT_FREQUENCY_MSRS HV_BIT(11)
#define HV_FEAT_REENLIGHTENMENT HV_BIT(13)
#define HV_FEAT_TSC_INVARIANT HV_BIT(15)

/* Leaf 0x40000003 EBX: partition privileges, group B (hypercalls). */
#define HV_PRIV_CREATE_PARTITIONS HV_BIT(0)
#define HV_PRIV_ACCESS_PARTITION_ID HV_BIT(1) /* guest then calls HvGetPartitionId */
#define HV_PRIV_ACCESS_MEMORY_POOL HV_BIT(2)
#define HV_PRIV_ADJUST_MESSAGE_BUFFERS HV_BIT(3)
#define HV_PRIV_POST_MESSAGES HV_BIT(4)
#define HV_PRIV_SIGNAL_EVENTS HV_BIT(5)
#define HV_PRIV_CREATE_PORT HV_BIT(6)
#define HV_PRIV_CONNECT_PORT HV_BIT(7)
#define HV_PRIV_ACCESS_STATS HV_BIT(8)
#define HV_PRIV_DEBUGGING HV_BIT(11)
#define HV_PRIV_CPU_MANAGEMENT HV_BIT(12) /* root partition: Linux skips VMBus */
#define HV_PRIV_EXTENDED_HYPERCALLS HV_BIT(20)
#define HV_PRIV_ISOLATION HV_BIT(22) /* CoCo: leaf 0x4000000C is read */

/* Leaf 0x40000003 EDX: feature group D (x86 specific). */
#define HV_FEAT_X64_MWAIT HV_BIT(0)
#define HV_FEAT_X64_GUEST_DEBUGGING HV_BIT(1)
#define HV_FEAT_X64_PERF_MONITOR HV_BIT(2)
#define HV_FEAT_X64_CPU_DYNAMIC_PARTITIONING HV_BIT(3)
#define HV_FEAT_X64_HYPERCALL_XMM_INPUT HV_BIT(4)
#define HV_FEAT_X64_GUEST_IDLE_STATE HV_BIT(5)
#define HV_FEAT_X64_FREQUENCY_MSRS HV_BIT(8)
#define HV_FEAT_X64_GUEST_CRASH_MSRS HV_BIT(10)
#define HV_FEAT_X64_DEBUG_MSRS HV_BIT(11)
#define HV_FEAT_X64_HYPERCALL_XMM_OUTPUT HV_BIT(15)
#define HV_FEAT_X64_STIMER_DIRECT_MODE HV_BIT(19)

/* Leaf 0x40000004 EAX: implementation recommendations ("hints"). */
#define HV_HINT_AS_SWITCH HV_BIT(0)
#define HV_HINT_LOCAL_TLB_FLUSH HV_BIT(1)
#define HV_HINT_REMOTE_TLB_FLUSH HV_BIT(2)
#define HV_HINT_APIC_ACCESS_MSRS HV_BIT(3)
#define HV_HINT_SYSTEM_RESET HV_BIT(4)
#define HV_HINT_RELAXED_TIMING HV_BIT(5)
#define HV_HINT_DEPRECATING_AEOI HV_BIT(9) /* guest does a normal EOI */
#define HV_HINT_CLUSTER_IPI HV_BIT(10)
#define HV_HINT_EX_PROCESSOR_MASKS HV_BIT(11)
#define HV_HINT_ENLIGHTENED_VMCS HV_BIT(14)
#define HV_HINT_NO_NONARCH_CORESHARING HV_BIT(18)
/* Leaf 0x40000004 EBX: spinlock retries before notifying; all ones = never. */
#define HV_SPINLOCK_RETRIES_NEVER 0xFFFFFFFFu

/* Leaf 0x40000007 EAX: CPU management features. */
#define HV_CPUMGMT_START_LOGICAL_PROCESSOR HV_BIT(0)
#define HV_CPUMGMT_CREATE_ROOT_VP HV_BIT(1)
#define HV_CPUMGMT_PERFORMANCE_COUNTER_SYNC HV_BIT(2)
#define HV_CPUMGMT_RESERVED_IDENTITY HV_BIT(31)

/* Leaf 0x4000000A EAX/EBX: nested virtualization features. */
#define HV_NESTED_DIRECT_FLUSH HV_BIT(17)
#define HV_NESTED_GUEST_MAPPING_FLUSH HV_BIT(18)
#define HV_NESTED_MSR_BITMAP HV_BIT(19)
#define HV_NESTED_ENLIGHTENED_TLB HV_BIT(22)
#define HV_NESTED_EVMCS1_PERF_GLOBAL_CTRL HV_BIT(0) /* EBX */

/* Leaf 0x4000000C: isolation configuration (CoCo VMs). */
#define HV_ISOLATION_EAX_PARAVISOR_PRESENT HV_BIT(0)
#define HV_ISOLATION_EBX_TYPE_MASK 0xFu
#define HV_ISOLATION_EBX_SHARED_GPA_BOUNDARY_ACTIVE HV_BIT(5)
#define HV_ISOLATION_EBX_SHARED_GPA_BOUNDARY_SHIFT 6
#define HV_ISOLATION_EBX_SHARED_GPA_BOUNDARY_MASK (0x3Fu << 6)
enum hv_isolation_type {
	HV_ISOLATION_NONE = 0,
	HV_ISOLATION_VBS = 1,
	HV_ISOLATION_SNP = 2,
};

/* ------------------------------------------------------------------ */
/* Synthetic MSRs                                                      */
/* ------------------------------------------------------------------ */

#define HV_MSR_GUEST_OS_ID 0x40000000u
#define HV_MSR_HYPERCALL 0x40000001u
#define HV_MSR_VP_INDEX 0x40000002u
#define HV_MSR_RESET 0x40000003u
#define HV_MSR_VP_RUNTIME 0x40000010u
#define HV_MSR_TIME_REF_COUNT 0x40000020u
#define HV_MSR_REFERENCE_TSC 0x40000021u
#define HV_MSR_TSC_FREQUENCY 0x40000022u
#define HV_MSR_APIC_FREQUENCY 0x40000023u
#define HV_MSR_EOI 0x40000070u
#define HV_MSR_ICR 0x40000071u
#define HV_MSR_TPR 0x40000072u
#define HV_MSR_VP_ASSIST_PAGE 0x40000073u
#define HV_MSR_SCONTROL 0x40000080u
#define HV_MSR_SVERSION 0x40000081u
#define HV_MSR_SIEFP 0x40000082u
#define HV_MSR_SIMP 0x40000083u
#define HV_MSR_EOM 0x40000084u
#define HV_MSR_SINT0 0x40000090u
#define HV_MSR_SINT15 0x4000009Fu
#define HV_MSR_SINT(n) (HV_MSR_SINT0 + (n))
#define HV_MSR_STIMER0_CONFIG 0x400000B0u
#define HV_MSR_STIMER0_COUNT 0x400000B1u
#define HV_MSR_STIMER3_COUNT 0x400000B7u
#define HV_MSR_STIMER_CONFIG(n) (HV_MSR_STIMER0_CONFIG + 2 * (n))
#define HV_MSR_STIMER_COUNT(n) (HV_MSR_STIMER0_COUNT + 2 * (n))
#define HV_MSR_GUEST_IDLE 0x400000F0u
#define HV_MSR_CRASH_P0 0x40000100u
#define HV_MSR_CRASH_P4 0x40000104u
#define HV_MSR_CRASH_P(n) (HV_MSR_CRASH_P0 + (n))
#define HV_MSR_CRASH_CTL 0x40000105u
#define HV_MSR_REENLIGHTENMENT_CONTROL 0x40000106u
#define HV_MSR_TSC_EMULATION_CONTROL 0x40000107u
#define HV_MSR_TSC_EMULATION_STATUS 0x40000108u
#define HV_MSR_TSC_INVARIANT_CONTROL 0x40000118u

/* The synthetic MSR range a VMM routes to its Hyper-V emulation. */
#define HV_MSR_RANGE_FIRST 0x40000000u
#define HV_MSR_RANGE_LAST 0x400001FFu

/*
 * Pages enabled through an MSR (hypercall, reference TSC, VP assist, SIMP,
 * SIEFP) share one layout: bit 0 enable, bits 11:1 preserved, 63:12 GPFN.
 */
#define HV_MSR_PAGE_ENABLE HV_BIT64(0)
#define HV_MSR_PAGE_GPA(v) ((v) & HV_PAGE_MASK)

/* HV_MSR_HYPERCALL: bit 1 "locked" per the TLFS; Linux never sets it. */
#define HV_HYPERCALL_MSR_ENABLE HV_BIT64(0)
#define HV_HYPERCALL_MSR_LOCKED HV_BIT64(1)

/*
 * Guest OS id (hyperv-tlfs.h, asm-generic): bit 63 open source, 62:56 OS
 * type, 55:48 distro, 47:16 kernel version, 15:0 build. Linux writes its
 * vendor id 0x8100 in bits 63:48.
 */
#define HV_GUEST_OS_ID_OPEN_SOURCE HV_BIT64(63)
#define HV_GUEST_OS_ID_VENDOR_SHIFT 48
#define HV_GUEST_OS_ID_VENDOR_LINUX 0x8100u

/* HV_MSR_CRASH_CTL */
#define HV_CRASH_CTL_NOTIFY_MSG HV_BIT64(62) /* P3 = GPA, P4 = size of a message */
#define HV_CRASH_CTL_NOTIFY HV_BIT64(63)

/* HV_MSR_TSC_INVARIANT_CONTROL: bit 0 exposes invariant TSC to the guest. */
#define HV_TSC_INVARIANT_CONTROL_ENABLE HV_BIT64(0)

/* ------------------------------------------------------------------ */
/* Hypercalls                                                          */
/* ------------------------------------------------------------------ */

/*
 * The control word (RCX on x86-64): code 15:0, fast 16, variable header
 * size in 8-byte units 26:17, rep count 43:32, rep start index 59:48; the
 * rest is reserved and must be zero.
 */
#define HV_HYPERCALL_CODE_MASK 0xFFFFull
#define HV_HYPERCALL_FAST HV_BIT64(16)
#define HV_HYPERCALL_VARHEAD_SHIFT 17
#define HV_HYPERCALL_VARHEAD_MASK (0x3FFull << HV_HYPERCALL_VARHEAD_SHIFT)
#define HV_HYPERCALL_REP_COUNT_SHIFT 32
#define HV_HYPERCALL_REP_COUNT_MASK (0xFFFull << HV_HYPERCALL_REP_COUNT_SHIFT)
#define HV_HYPERCALL_REP_START_SHIFT 48
#define HV_HYPERCALL_REP_START_MASK (0xFFFull << HV_HYPERCALL_REP_START_SHIFT)
#define HV_HYPERCALL_RESERVED_MASK                                            \
	((0x1Full << 27) | (0xFull << 44) | (0xFull << 60))

/* The result (RAX): status 15:0, reps completed 43:32. */
#define HV_HYPERCALL_STATUS_MASK 0xFFFFull
#define HV_HYPERCALL_REPS_DONE_SHIFT 32
#define HV_HYPERCALL_REPS_DONE_MASK (0xFFFull << HV_HYPERCALL_REPS_DONE_SHIFT)

/* Input and output blocks of slow hypercalls are 8-byte aligned GPAs. */
#define HV_HYPERCALL_PARAM_ALIGN 8

enum hv_hypercall_code {
	HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE = 0x0002,
	HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST = 0x0003,
	HVCALL_NOTIFY_LONG_SPIN_WAIT = 0x0008,
	HVCALL_SEND_IPI = 0x000b,
	HVCALL_FLUSH_VIRTUAL_ADDRESS_SPACE_EX = 0x0013,
	HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST_EX = 0x0014,
	HVCALL_SEND_IPI_EX = 0x0015,
	HVCALL_GET_PARTITION_ID = 0x0046,
	HVCALL_GET_VP_REGISTERS = 0x0050,
	HVCALL_SET_VP_REGISTERS = 0x0051,
	HVCALL_POST_MESSAGE = 0x005c,
	HVCALL_SIGNAL_EVENT = 0x005d,
	HVCALL_RETARGET_INTERRUPT = 0x007e,
	HVCALL_FLUSH_GUEST_PHYSICAL_ADDRESS_SPACE = 0x00af,
	HVCALL_FLUSH_GUEST_PHYSICAL_ADDRESS_LIST = 0x00b0,
	HVCALL_MODIFY_SPARSE_GPA_PAGE_HOST_VISIBILITY = 0x00db,
	HVCALL_EXT_QUERY_CAPABILITIES = 0x8001,
	HVCALL_EXT_MEMORY_HEAT_HINT = 0x8003,
};

enum hv_status {
	HV_STATUS_SUCCESS = 0,
	HV_STATUS_INVALID_HYPERCALL_CODE = 2,
	HV_STATUS_INVALID_HYPERCALL_INPUT = 3,
	HV_STATUS_INVALID_ALIGNMENT = 4,
	HV_STATUS_INVALID_PARAMETER = 5,
	HV_STATUS_ACCESS_DENIED = 6,
	HV_STATUS_INVALID_PARTITION_STATE = 7,
	HV_STATUS_OPERATION_DENIED = 8,
	HV_STATUS_INSUFFICIENT_MEMORY = 11,
	HV_STATUS_INVALID_PORT_ID = 17,
	HV_STATUS_INVALID_CONNECTION_ID = 18,
	HV_STATUS_INSUFFICIENT_BUFFERS = 19,
};

#define HV_PARTITION_ID_SELF ((uint64_t)-1)
#define HV_VP_INDEX_SELF ((uint32_t)-2)

/* ------------------------------------------------------------------ */
/* SynIC                                                               */
/* ------------------------------------------------------------------ */

#define HV_SYNIC_SINT_COUNT 16
#define HV_SYNIC_VERSION 1u
#define HV_SYNIC_FIRST_VALID_VECTOR 16u

#define HV_SCONTROL_ENABLE HV_BIT64(0)

/* SINTx register: vector 7:0, masked 16, auto-EOI 17, polling 18. */
#define HV_SINT_VECTOR_MASK 0xFFull
#define HV_SINT_MASKED HV_BIT64(16)
#define HV_SINT_AUTO_EOI HV_BIT64(17)
#define HV_SINT_POLLING HV_BIT64(18)
/* A SINT reads as masked until the guest programs it. */
#define HV_SINT_RESET_VALUE HV_SINT_MASKED

#define HV_MESSAGE_SIZE 256
#define HV_MESSAGE_PAYLOAD_BYTES 240
#define HV_MESSAGE_PAYLOAD_QWORDS 30

enum hv_message_type {
	HVMSG_NONE = 0x00000000,
	HVMSG_UNMAPPED_GPA = 0x80000000,
	HVMSG_GPA_INTERCEPT = 0x80000001,
	HVMSG_TIMER_EXPIRED = 0x80000010,
	HVMSG_INVALID_VP_REGISTER_VALUE = 0x80000020,
	HVMSG_UNRECOVERABLE_EXCEPTION = 0x80000021,
	HVMSG_UNSUPPORTED_FEATURE = 0x80000022,
	HVMSG_EVENTLOG_BUFFERCOMPLETE = 0x80000040,
	HVMSG_X64_IOPORT_INTERCEPT = 0x80010000,
	HVMSG_X64_MSR_INTERCEPT = 0x80010001,
	HVMSG_X64_CPUID_INTERCEPT = 0x80010002,
	HVMSG_X64_EXCEPTION_INTERCEPT = 0x80010003,
	HVMSG_X64_APIC_EOI = 0x80010004,
	HVMSG_X64_LEGACY_FP_ERROR = 0x80010005,
};
/* The type the VMBus messages carry (HvPostMessage message_type). */
#define HV_MESSAGE_TYPE_VMBUS 1u

/* hv_message_header.message_flags */
#define HV_MESSAGE_FLAG_PENDING 0x01u

/* One SIMP slot header. The host writes message_type last. */
struct hv_message_header {
	uint32_t message_type;
	uint8_t payload_size;
	uint8_t message_flags;
	uint8_t reserved[2];
	uint64_t sender; /* port id in bits 23:0 for port messages */
} __attribute__((packed));

struct hv_message {
	struct hv_message_header header;
	uint8_t payload[HV_MESSAGE_PAYLOAD_BYTES];
} __attribute__((packed));

/* The SIMP page: one message slot per SINT. */
struct hv_message_page {
	struct hv_message sint_message[HV_SYNIC_SINT_COUNT];
} __attribute__((packed));

/* The SIEFP page: a 256-byte (2048-bit) event-flags bitmap per SINT. */
#define HV_EVENT_FLAGS_BYTES 256
#define HV_EVENT_FLAGS_COUNT (HV_EVENT_FLAGS_BYTES * 8)
struct hv_event_flags {
	uint8_t flags[HV_EVENT_FLAGS_BYTES];
} __attribute__((packed));

struct hv_event_flags_page {
	struct hv_event_flags sint_flags[HV_SYNIC_SINT_COUNT];
} __attribute__((packed));

/* Payload of an HVMSG_TIMER_EXPIRED message. */
struct hv_timer_message_payload {
	uint32_t timer_index;
	uint32_t reserved;
	uint64_t expiration_time; /* reference time the timer expired at */
	uint64_t delivery_time;   /* reference time the message was delivered */
} __attribute__((packed));

/* ------------------------------------------------------------------ */
/* Synthetic timers                                                    */
/* ------------------------------------------------------------------ */

#define HV_STIMER_COUNT 4

/*
 * STIMERx_CONFIG: enable 0, periodic 1, lazy 2, auto-enable 3, APIC vector
 * 11:4 (direct mode), direct mode 12, SINT 19:16 (message mode).
 */
#define HV_STIMER_ENABLE HV_BIT64(0)
#define HV_STIMER_PERIODIC HV_BIT64(1)
#define HV_STIMER_LAZY HV_BIT64(2)
#define HV_STIMER_AUTO_ENABLE HV_BIT64(3)
#define HV_STIMER_VECTOR_SHIFT 4
#define HV_STIMER_VECTOR_MASK (0xFFull << HV_STIMER_VECTOR_SHIFT)
#define HV_STIMER_DIRECT_MODE HV_BIT64(12)
#define HV_STIMER_SINT_SHIFT 16
#define HV_STIMER_SINT_MASK (0xFull << HV_STIMER_SINT_SHIFT)
#define HV_STIMER_RESERVED_MASK ((0x7ull << 13) | (~0ull << 20))

/* Linux programs stimer0 direct mode on this vector (hyperv_timer.c). */
#define HV_STIMER0_DIRECT_VECTOR 0xEDu

/* ------------------------------------------------------------------ */
/* Reference time                                                      */
/* ------------------------------------------------------------------ */

/* The reference counter and the TSC page count 100 ns units. */
#define HV_REF_TIME_HZ 10000000ull

/*
 * Reference TSC page: time = ((tsc * scale) >> 64) + offset, valid while
 * sequence is non-zero and unchanged across the read. Sequence 0 means the
 * guest must fall back to HV_MSR_TIME_REF_COUNT.
 */
struct hv_tsc_page {
	uint32_t sequence;
	uint32_t reserved1;
	uint64_t scale;
	int64_t offset;
} __attribute__((packed));
#define HV_TSC_PAGE_SEQUENCE_INVALID 0u

/* ------------------------------------------------------------------ */
/* Hypercall inputs                                                    */
/* ------------------------------------------------------------------ */

/*
 * HvPostMessage input block (slow call). Linux: struct hv_input_post_message
 * in drivers/hv/hyperv_vmbus.h. The connection id uses bits 23:0.
 */
struct hv_input_post_message {
	uint32_t connection_id;
	uint32_t reserved;
	uint32_t message_type;
	uint32_t payload_size;
	uint8_t payload[HV_MESSAGE_PAYLOAD_BYTES];
} __attribute__((packed));

#define HV_CONNECTION_ID_MASK 0x00FFFFFFu

/*
 * HvSignalEvent input (fast call, in RDX): connection id 31:0, event flag
 * number 47:32, reserved 63:48. Linux signals with flag number 0.
 */
#define HV_SIGNAL_EVENT_CONNECTION_MASK 0xFFFFFFFFull
#define HV_SIGNAL_EVENT_FLAG_SHIFT 32
#define HV_SIGNAL_EVENT_FLAG_MASK (0xFFFFull << HV_SIGNAL_EVENT_FLAG_SHIFT)

/* ------------------------------------------------------------------ */
/* Layout pins                                                         */
/* ------------------------------------------------------------------ */

_Static_assert(sizeof(struct hv_message_header) == 16, "message header");
_Static_assert(offsetof(struct hv_message_header, payload_size) == 4, "payload_size");
_Static_assert(offsetof(struct hv_message_header, message_flags) == 5, "flags");
_Static_assert(offsetof(struct hv_message_header, sender) == 8, "sender");
_Static_assert(sizeof(struct hv_message) == HV_MESSAGE_SIZE, "message slot");
_Static_assert(offsetof(struct hv_message, payload) == 16, "payload");
_Static_assert(sizeof(struct hv_message_page) == HV_PAGE_SIZE, "SIMP page");
_Static_assert(sizeof(struct hv_event_flags_page) == HV_PAGE_SIZE, "SIEFP page");
_Static_assert(sizeof(struct hv_timer_message_payload) == 24, "timer payload");
_Static_assert(offsetof(struct hv_timer_message_payload, expiration_time) == 8, "expiry");
_Static_assert(offsetof(struct hv_timer_message_payload, delivery_time) == 16, "delivery");
_Static_assert(sizeof(struct hv_tsc_page) == 24, "TSC page header");
_Static_assert(offsetof(struct hv_tsc_page, scale) == 8, "scale");
_Static_assert(offsetof(struct hv_tsc_page, offset) == 16, "offset");
_Static_assert(sizeof(struct hv_input_post_message) == 256, "post message input");
_Static_assert(offsetof(struct hv_input_post_message, message_type) == 8, "type");
_Static_assert(offsetof(struct hv_input_post_message, payload_size) == 12, "size");
_Static_assert(offsetof(struct hv_input_post_message, payload) == 16, "payload");
_Static_assert((HV_HYPERCALL_RESERVED_MASK &
		(HV_HYPERCALL_CODE_MASK | HV_HYPERCALL_FAST | HV_HYPERCALL_VARHEAD_MASK |
		 HV_HYPERCALL_REP_COUNT_MASK | HV_HYPERCALL_REP_START_MASK)) == 0,
	       "control word fields overlap");
_Static_assert((HV_HYPERCALL_RESERVED_MASK | HV_HYPERCALL_CODE_MASK | HV_HYPERCALL_FAST |
		HV_HYPERCALL_VARHEAD_MASK | HV_HYPERCALL_REP_COUNT_MASK |
		HV_HYPERCALL_REP_START_MASK) == ~0ull,
	       "control word fields cover 64 bits");

#endif /* HVKIT_TLFS_H */
