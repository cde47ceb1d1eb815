/* SPDX-License-Identifier: MIT */
/*
 * Integration components (ICs, "util" devices): heartbeat, shutdown, time
 * sync, KVP, VSS and file copy. Every IC packet is an in-band VMBus packet
 * whose payload is a pipe header, an IC message header and the service's
 * message; the guest answers each host request by sending the same buffer
 * back with the response flags set.
 *
 * Checked against Linux 6.1: include/linux/hyperv.h (vmbuspipe_hdr,
 * icmsg_hdr, icmsg_negotiate, shutdown_msg_data, heartbeat_msg_data,
 * ictimesync_data, ictimesync_ref_data, ICMSG* constants, HV_*_GUID),
 * include/uapi/linux/hyperv.h (framework versions, hv_kvp_*, hv_vss_*,
 * hv_fcopy_*, HV_S_* status codes), drivers/hv/hv_util.c (shutdown, time
 * sync and heartbeat versions and handling), drivers/hv/hv_kvp.c,
 * drivers/hv/hv_snapshot.c, drivers/hv/hv_fcopy.c (their version lists)
 * and drivers/hv/channel_mgmt.c (vmbus_prep_negotiate_resp).
 */
#ifndef HVKIT_PROTO_IC_H
#define HVKIT_PROTO_IC_H

#include <stddef.h>
#include <stdint.h>

#include "hvkit/guid.h"

/* ---- Class and instance GUIDs ----
 * Classes: include/linux/hyperv.h (HV_*_GUID). Instances: Hyper-V offers
 * each single-instance IC with a fixed instance GUID that never changes
 * (hibernation.rst relies on device identity surviving a move between
 * hosts); the values are those OpenVMM's hyperv_ic_protocol crate gives
 * (shutdown INSTANCE_ID) and that Linux's lsvmbus and FreeBSD's devinfo
 * show on Hyper-V. */
#define IC_HEARTBEAT_INSTANCE                                                     \
	HV_GUID(0xfd149e91, 0x82e0, 0x4a7d, 0xaf, 0xa6, 0x2a, 0x41, 0x66, 0xcb, 0xd7, 0xc0)
#define IC_SHUTDOWN_INSTANCE                                                      \
	HV_GUID(0xb6650ff7, 0x33bc, 0x4840, 0x80, 0x48, 0xe0, 0x67, 0x67, 0x86, 0xf3, 0x93)
#define IC_TIMESYNC_INSTANCE                                                      \
	HV_GUID(0x2dd1ce17, 0x079e, 0x403c, 0xb3, 0x52, 0xa1, 0x92, 0x1e, 0xe2, 0x07, 0xee)
#define IC_KVP_INSTANCE                                                           \
	HV_GUID(0x242ff919, 0x07db, 0x4180, 0x9c, 0x2e, 0xb8, 0x6c, 0xb6, 0x8c, 0x8c, 0x55)
#define IC_VSS_INSTANCE                                                           \
	HV_GUID(0x2450ee40, 0x33bf, 0x4fbd, 0x89, 0x2e, 0x9f, 0xb0, 0x6e, 0x92, 0x14, 0xcf)
#define IC_FCOPY_INSTANCE                                                         \
	HV_GUID(0xeb765408, 0x105f, 0x49b6, 0xb4, 0xaa, 0xc1, 0x23, 0xb6, 0x4d, 0x17, 0xd4)

/* ---- Versions ---- major in the high 16 bits, as Linux's lists hold them. */
#define IC_VERSION(major, minor) (((uint32_t)(major) << 16) | (uint32_t)(minor))
#define IC_VERSION_MAJOR(v) ((uint16_t)((v) >> 16))
#define IC_VERSION_MINOR(v) ((uint16_t)((v) & 0xffff))

/* Framework: UTIL_FW_VERSION 3.0, UTIL_WS2K8_FW_VERSION 1.0 (uapi). */
#define IC_FW_VERSION_1 IC_VERSION(1, 0)
#define IC_FW_VERSION_3 IC_VERSION(3, 0)

/* Service versions Linux 6.1 accepts, newest first (hv_util.c, hv_kvp.c,
 * hv_snapshot.c, hv_fcopy.c). */
#define IC_HEARTBEAT_VERSION_1 IC_VERSION(1, 0)
#define IC_HEARTBEAT_VERSION_3 IC_VERSION(3, 0)
#define IC_SHUTDOWN_VERSION_1 IC_VERSION(1, 0)
#define IC_SHUTDOWN_VERSION_3 IC_VERSION(3, 0)
#define IC_SHUTDOWN_VERSION_3_1 IC_VERSION(3, 1)
#define IC_SHUTDOWN_VERSION_3_2 IC_VERSION(3, 2)
#define IC_TIMESYNC_VERSION_1 IC_VERSION(1, 0)
#define IC_TIMESYNC_VERSION_3 IC_VERSION(3, 0)
#define IC_TIMESYNC_VERSION_4 IC_VERSION(4, 0) /* ictimesync_ref_data */
#define IC_KVP_VERSION_WS2008 IC_VERSION(1, 0)
#define IC_KVP_VERSION_WIN7 IC_VERSION(3, 0)
#define IC_KVP_VERSION_WIN8 IC_VERSION(4, 0)
#define IC_VSS_VERSION_5 IC_VERSION(5, 0)  /* framework 3.0 only */
#define IC_FCOPY_VERSION_1_1 IC_VERSION(1, 1) /* framework 3.0 only */

/* ---- Pipe and message headers (include/linux/hyperv.h) ---- */

/* The pipe header Hyper-V puts before every IC message. Linux ignores it;
 * Hyper-V writes flags 1 and the size of what follows. */
struct ic_pipe_hdr {
	uint32_t flags;
	uint32_t msgsize;
} __attribute__((packed));
_Static_assert(sizeof(struct ic_pipe_hdr) == 8, "vmbuspipe_hdr");
#define IC_PIPE_FLAG_MESSAGE 1u

struct ic_version {
	uint16_t major;
	uint16_t minor;
} __attribute__((packed));
_Static_assert(sizeof(struct ic_version) == 4, "ic_version");

struct ic_msg_hdr {
	struct ic_version icverframe;
	uint16_t icmsgtype;
	struct ic_version icvermsg;
	uint16_t icmsgsize;
	uint32_t status;
	uint8_t ictransaction_id;
	uint8_t icflags;
	uint8_t reserved[2];
} __attribute__((packed));
_Static_assert(sizeof(struct ic_msg_hdr) == 20, "icmsg_hdr");
_Static_assert(offsetof(struct ic_msg_hdr, icmsgtype) == 4, "icmsgtype");
_Static_assert(offsetof(struct ic_msg_hdr, status) == 12, "status");
_Static_assert(offsetof(struct ic_msg_hdr, icflags) == 17, "icflags");

/* ICMSG_HDR: where every service message starts. */
#define IC_MSG_HDR_SIZE (sizeof(struct ic_pipe_hdr) + sizeof(struct ic_msg_hdr))
_Static_assert(IC_MSG_HDR_SIZE == 28, "ICMSG_HDR");

enum ic_msg_type {
	IC_MSGTYPE_NEGOTIATE = 0,
	IC_MSGTYPE_HEARTBEAT = 1,
	IC_MSGTYPE_KVPEXCHANGE = 2,
	IC_MSGTYPE_SHUTDOWN = 3,
	IC_MSGTYPE_TIMESYNC = 4,
	IC_MSGTYPE_VSS = 5,
	IC_MSGTYPE_FCOPY = 7,
};

#define IC_FLAG_TRANSACTION 1u
#define IC_FLAG_REQUEST 2u
#define IC_FLAG_RESPONSE 4u

/* Status codes (include/uapi/linux/hyperv.h). */
#define IC_S_OK 0x00000000u
#define IC_E_FAIL 0x80004005u
#define IC_S_CONT 0x80070103u /* KVP: enumeration index past the end */
#define IC_ERROR_NOT_SUPPORTED 0x80070032u
#define IC_ERROR_MACHINE_LOCKED 0x800704f7u
#define IC_ERROR_DEVICE_NOT_CONNECTED 0x8007048fu
#define IC_E_INVALIDARG 0x80070057u
#define IC_GUID_NOTFOUND 0x80041002u
#define IC_ERROR_ALREADY_EXISTS 0x80070050u
#define IC_ERROR_DISK_FULL 0x80070070u

/* ---- Negotiation (icmsg_negotiate) ----
 * The host lists framework versions then message versions; the guest
 * answers in place with icmsgsize 0x10 and exactly one of each (counts 1/1),
 * or counts 0/0 if nothing matched. Linux refuses more than 100 of either. */
struct ic_negotiate {
	uint16_t icframe_vercnt;
	uint16_t icmsg_vercnt;
	uint32_t reserved;
	struct ic_version icversion_data[];
} __attribute__((packed));
_Static_assert(sizeof(struct ic_negotiate) == 8, "icmsg_negotiate");
#define IC_NEGOTIATE_MAX_VER_COUNT 100
#define IC_NEGOTIATE_RESPONSE_MSGSIZE 0x10
#define IC_NEGOTIATE_PKT_SIZE(fw, msg)                                            \
	(IC_MSG_HDR_SIZE + sizeof(struct ic_negotiate) +                          \
	 ((size_t)(fw) + (size_t)(msg)) * sizeof(struct ic_version))

/* ---- Heartbeat ---- The guest answers seq_num + 1. Linux checks only that
 * seq_num is there (the host need not fill the reserved words). */
struct ic_heartbeat_msg {
	uint64_t seq_num;
	uint32_t reserved[8];
} __attribute__((packed));
_Static_assert(sizeof(struct ic_heartbeat_msg) == 40, "heartbeat_msg_data");

/* ---- Shutdown ---- flags: 0 shut down, 2 reboot, 4 hibernate; bit 0 asks
 * for force (Linux always forces). Linux answers HV_S_OK or HV_E_FAIL. */
#define IC_SHUTDOWN_MESSAGE_BYTES 2048
struct ic_shutdown_msg {
	uint32_t reason_code;
	uint32_t timeout_seconds;
	uint32_t flags;
	uint8_t display_message[IC_SHUTDOWN_MESSAGE_BYTES];
} __attribute__((packed));
_Static_assert(sizeof(struct ic_shutdown_msg) == 2060, "shutdown_msg_data");
_Static_assert(offsetof(struct ic_shutdown_msg, flags) == 8, "shutdown flags");
#define IC_SHUTDOWN_FLAG_FORCE 1u
#define IC_SHUTDOWN_FLAG_SHUTDOWN 0u
#define IC_SHUTDOWN_FLAG_REBOOT 2u
#define IC_SHUTDOWN_FLAG_HIBERNATE 4u

/* ---- Time sync ---- Times are 100 ns units since 1601-01-01 (Windows
 * epoch: WLTIMEDELTA before the Unix epoch). Versions 1 and 3 carry
 * ictimesync_data; version 4 (ts_srv_version > 3.0 in hv_util.c) carries
 * ictimesync_ref_data, whose vmreferencetime is the partition reference
 * counter when the sample was taken. */
#define IC_TIMESYNC_FLAG_PROBE 0u
#define IC_TIMESYNC_FLAG_SYNC 1u
#define IC_TIMESYNC_FLAG_SAMPLE 2u
#define IC_WLTIMEDELTA 116444736000000000ull

struct ic_timesync_msg {
	uint64_t parenttime;
	uint64_t childtime;
	uint64_t roundtriptime;
	uint8_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct ic_timesync_msg) == 25, "ictimesync_data");

struct ic_timesync_ref_msg {
	uint64_t parenttime;
	uint64_t vmreferencetime;
	uint8_t flags;
	int8_t leapflags;
	int8_t stratum;
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct ic_timesync_ref_msg) == 22, "ictimesync_ref_data");

/* ---- KVP (include/uapi/linux/hyperv.h) ----
 * Keys and values are UTF-16LE with their NUL; key_size and value_size are
 * byte counts including it. */
#define IC_KVP_MAX_KEY_SIZE 512
#define IC_KVP_MAX_VALUE_SIZE 2048

enum ic_kvp_op {
	IC_KVP_OP_GET = 0,
	IC_KVP_OP_SET = 1,
	IC_KVP_OP_DELETE = 2,
	IC_KVP_OP_ENUMERATE = 3,
	IC_KVP_OP_GET_IP_INFO = 4,
	IC_KVP_OP_SET_IP_INFO = 5,
	IC_KVP_OP_COUNT
};

enum ic_kvp_pool {
	IC_KVP_POOL_EXTERNAL = 0,      /* host to guest */
	IC_KVP_POOL_GUEST = 1,         /* guest to host */
	IC_KVP_POOL_AUTO = 2,          /* the guest's intrinsic data, by index */
	IC_KVP_POOL_AUTO_EXTERNAL = 3,
	IC_KVP_POOL_AUTO_INTERNAL = 4,
	IC_KVP_POOL_COUNT
};

#define IC_KVP_REG_SZ 1
#define IC_KVP_REG_U32 4
#define IC_KVP_REG_U64 8

struct ic_kvp_hdr {
	uint8_t operation;
	uint8_t pool;
	uint16_t pad;
} __attribute__((packed));
_Static_assert(sizeof(struct ic_kvp_hdr) == 4, "hv_kvp_hdr");

struct ic_kvp_value {
	uint32_t value_type;
	uint32_t key_size;
	uint32_t value_size;
	uint8_t key[IC_KVP_MAX_KEY_SIZE];
	union {
		uint8_t value[IC_KVP_MAX_VALUE_SIZE];
		uint32_t value_u32;
		uint64_t value_u64;
	};
} __attribute__((packed));
_Static_assert(sizeof(struct ic_kvp_value) == 2572, "hv_kvp_exchg_msg_value");
_Static_assert(offsetof(struct ic_kvp_value, key) == 12, "kvp key");
_Static_assert(offsetof(struct ic_kvp_value, value) == 524, "kvp value");

struct ic_kvp_enumerate {
	uint32_t index;
	struct ic_kvp_value data;
} __attribute__((packed));
_Static_assert(sizeof(struct ic_kvp_enumerate) == 2576, "hv_kvp_msg_enumerate");

struct ic_kvp_delete {
	uint32_t key_size;
	uint8_t key[IC_KVP_MAX_KEY_SIZE];
} __attribute__((packed));
_Static_assert(sizeof(struct ic_kvp_delete) == 516, "hv_kvp_msg_delete");

/* IP injection (KVP_OP_GET/SET_IP_INFO); hvkit's guests do not serve it. */
struct ic_kvp_ipaddr_value {
	uint16_t adapter_id[128];
	uint8_t addr_family;
	uint8_t dhcp_enabled;
	uint16_t ip_addr[1024];
	uint16_t sub_net[1024];
	uint16_t gate_way[512];
	uint16_t dns_addr[1024];
} __attribute__((packed));
_Static_assert(sizeof(struct ic_kvp_ipaddr_value) == 7426, "hv_kvp_ipaddr_value");

/* What the host sends after the IC header. GET and SET carry a value
 * (get.data / set.data), DELETE a key, ENUMERATE an index and the value
 * slot the guest fills. The host sends only as much as the operation needs
 * and the guest answers in the same length (hv_kvp.c does not check
 * recvlen against the union's size), so each operation's length is its
 * own: see IC_KVP_*_LEN. */
struct ic_kvp_msg {
	struct ic_kvp_hdr hdr;
	union {
		struct ic_kvp_value get;
		struct ic_kvp_value set;
		struct ic_kvp_delete del;
		struct ic_kvp_enumerate enumerate;
	};
} __attribute__((packed));
_Static_assert(offsetof(struct ic_kvp_msg, get) == 4, "kvp body");
#define IC_KVP_VALUE_LEN (sizeof(struct ic_kvp_hdr) + sizeof(struct ic_kvp_value))
#define IC_KVP_DELETE_LEN (sizeof(struct ic_kvp_hdr) + sizeof(struct ic_kvp_delete))
#define IC_KVP_ENUMERATE_LEN (sizeof(struct ic_kvp_hdr) + sizeof(struct ic_kvp_enumerate))

/* ---- VSS (include/uapi/linux/hyperv.h, hv_snapshot.c) ----
 * A FREEZE from Hyper-V may carry up to 6,260 bytes (LUN data Linux does
 * not read): receive buffers take two pages. */
enum ic_vss_op {
	IC_VSS_OP_CREATE = 0,
	IC_VSS_OP_DELETE = 1,
	IC_VSS_OP_HOT_BACKUP = 2,
	IC_VSS_OP_GET_DM_INFO = 3,
	IC_VSS_OP_BU_COMPLETE = 4,
	IC_VSS_OP_FREEZE = 5,
	IC_VSS_OP_THAW = 6,
	IC_VSS_OP_AUTO_RECOVER = 7,
	IC_VSS_OP_COUNT
};
#define IC_VSS_HBU_NO_AUTO_RECOVERY 0x00000005u
#define IC_VSS_MAX_PKT_SIZE 8192

struct ic_vss_hdr {
	uint8_t operation;
	uint8_t reserved[7];
} __attribute__((packed));
_Static_assert(sizeof(struct ic_vss_hdr) == 8, "hv_vss_hdr");

struct ic_vss_msg {
	struct ic_vss_hdr hdr;
	uint32_t flags; /* hv_vss_check_feature / hv_vss_check_dm_info */
} __attribute__((packed));
_Static_assert(sizeof(struct ic_vss_msg) == 12, "hv_vss_msg");

/* ---- File copy (include/uapi/linux/hyperv.h, hv_fcopy.c) ----
 * Names are UTF-16LE, NUL-terminated within W_MAX_PATH characters. */
#define IC_FCOPY_MAX_PATH 260
#define IC_FCOPY_DATA_FRAGMENT (6 * 1024)
#define IC_FCOPY_FLAG_OVERWRITE 0x1u
#define IC_FCOPY_FLAG_CREATE_PATH 0x2u
#define IC_FCOPY_MAX_PKT_SIZE 8192

enum ic_fcopy_op {
	IC_FCOPY_START = 0,
	IC_FCOPY_WRITE = 1,
	IC_FCOPY_COMPLETE = 2,
	IC_FCOPY_CANCEL = 3,
};

struct ic_fcopy_hdr {
	uint32_t operation;
	uint8_t service_id0[16];
	uint8_t service_id1[16];
} __attribute__((packed));
_Static_assert(sizeof(struct ic_fcopy_hdr) == 36, "hv_fcopy_hdr");

struct ic_fcopy_start {
	struct ic_fcopy_hdr hdr;
	uint16_t file_name[IC_FCOPY_MAX_PATH];
	uint16_t path_name[IC_FCOPY_MAX_PATH];
	uint32_t copy_flags;
	uint64_t file_size;
} __attribute__((packed));
_Static_assert(sizeof(struct ic_fcopy_start) == 1088, "hv_start_fcopy");
_Static_assert(offsetof(struct ic_fcopy_start, copy_flags) == 1076, "copy_flags");

struct ic_fcopy_data {
	struct ic_fcopy_hdr hdr;
	uint32_t pad;
	uint64_t offset;
	uint32_t size;
	uint8_t data[IC_FCOPY_DATA_FRAGMENT];
} __attribute__((packed));
_Static_assert(sizeof(struct ic_fcopy_data) == 6196, "hv_do_fcopy");
_Static_assert(offsetof(struct ic_fcopy_data, data) == 52, "fcopy data");

/* Rings Linux opens util channels with: VMBUS_RING_SIZE(3 pages) each,
 * the header page included (hv_util.c HV_UTIL_RING_*_SIZE). */
#define IC_RING_BYTES (4 * 4096)

#endif /* HVKIT_PROTO_IC_H */
