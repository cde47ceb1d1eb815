/* SPDX-License-Identifier: MIT */
/*
 * NVSP: the network VSP protocol spoken on the synthetic NIC's VMBus
 * channels, versions 1 through 6.1. Every layout here was checked against
 * Linux 6.1 drivers/net/hyperv/hyperv_net.h (struct nvsp_message and its
 * unions) and its use in drivers/net/hyperv/netvsc.c.
 *
 * Every NVSP message is a struct nvsp_message: a 4-byte type and a 36-byte
 * body union, 40 bytes in all. Linux sends exactly that many bytes in every
 * in-band packet and checks the size of what the host sends per type (the
 * completions of INIT, SEND_RECV_BUF, SEND_SEND_BUF and SUBCHANNEL fall
 * through each other's size checks in netvsc_send_completion, so the host
 * answers those with the whole 40 bytes).
 *
 * Data travels as RNDIS messages (rndis.h):
 *  - guest to host: SEND_RNDIS_PKT in an in-band packet (the RNDIS bytes in
 *    a send-buffer section) or a GPA-direct packet (the bytes in the pages
 *    it names; after any send-buffer part when both are used); the host
 *    answers with a completion carrying SEND_RNDIS_PKT_COMPLETE;
 *  - host to guest: SEND_RNDIS_PKT in a transfer-page packet whose ranges
 *    are RNDIS messages in the receive buffer (page set NVSP_RECV_BUFFER_ID),
 *    one message per range; the guest completes the transaction with
 *    SEND_RNDIS_PKT_COMPLETE and only then may the host reuse the ranges.
 */
#ifndef HVKIT_PROTO_NETVSC_H
#define HVKIT_PROTO_NETVSC_H

#include <stddef.h>
#include <stdint.h>

#include "hvkit/guid.h"

/* The synthetic NIC's class: f8615163-df3e-46c5-913f-f2d2f965ed0e
 * (include/linux/hyperv.h HV_NIC_GUID). */
#define NETVSC_CLASS_GUID                                                         \
	HV_GUID(0xf8615163, 0xdf3e, 0x46c5, 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e)

/* Protocol versions (hyperv_net.h NVSP_PROTOCOL_VERSION_*). Linux 6.1
 * offers each alone (min == max), newest first. */
#define NVSP_PROTOCOL_VERSION_1 0x00002u
#define NVSP_PROTOCOL_VERSION_2 0x30002u
#define NVSP_PROTOCOL_VERSION_4 0x40000u
#define NVSP_PROTOCOL_VERSION_5 0x50000u
#define NVSP_PROTOCOL_VERSION_6 0x60000u
#define NVSP_PROTOCOL_VERSION_61 0x60001u
#define NVSP_INVALID_PROTOCOL_VERSION 0xFFFFFFFFu

/* NDIS version Linux announces: 6.1 up to NVSP 4, 6.30 from NVSP 5
 * (netvsc.c netvsc_connect_vsp). */
#define NVSP_NDIS_VERSION_6_1 0x00060001u
#define NVSP_NDIS_VERSION_6_30 0x0006001eu

enum nvsp_msg_type {
	NVSP_MSG_TYPE_NONE = 0,
	NVSP_MSG_TYPE_INIT = 1,
	NVSP_MSG_TYPE_INIT_COMPLETE = 2,
	/* Version 1 */
	NVSP_MSG1_TYPE_SEND_NDIS_VER = 100,
	NVSP_MSG1_TYPE_SEND_RECV_BUF = 101,
	NVSP_MSG1_TYPE_SEND_RECV_BUF_COMPLETE = 102,
	NVSP_MSG1_TYPE_REVOKE_RECV_BUF = 103,
	NVSP_MSG1_TYPE_SEND_SEND_BUF = 104,
	NVSP_MSG1_TYPE_SEND_SEND_BUF_COMPLETE = 105,
	NVSP_MSG1_TYPE_REVOKE_SEND_BUF = 106,
	NVSP_MSG1_TYPE_SEND_RNDIS_PKT = 107,
	NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE = 108,
	/* Version 2 (the chimney, VMQ and rx-buffer messages between are
	 * never sent by Linux; the host refuses them) */
	NVSP_MSG2_TYPE_SEND_CHIMNEY_DELEGATED_BUF = 109,
	NVSP_MSG2_TYPE_SEND_NDIS_CONFIG = 125,
	NVSP_MSG2_TYPE_ALLOC_CHIMNEY_HANDLE_COMP = 127,
	/* Version 4 */
	NVSP_MSG4_TYPE_SEND_VF_ASSOCIATION = 128,
	NVSP_MSG4_TYPE_SWITCH_DATA_PATH = 129,
	NVSP_MSG4_TYPE_UPLINK_CONNECT_STATE_DEPRECATED = 130,
	/* Version 5 */
	NVSP_MSG5_TYPE_OID_QUERY_EX = 131,
	NVSP_MSG5_TYPE_OID_QUERY_EX_COMP = 132,
	NVSP_MSG5_TYPE_SUBCHANNEL = 133,
	NVSP_MSG5_TYPE_SEND_INDIRECTION_TABLE = 134,
	/* Version 6 */
	NVSP_MSG6_TYPE_PD_API = 135,
	NVSP_MSG6_TYPE_PD_POST_BATCH = 136,
};

enum nvsp_status {
	NVSP_STAT_NONE = 0,
	NVSP_STAT_SUCCESS = 1,
	NVSP_STAT_FAIL = 2,
	NVSP_STAT_PROTOCOL_TOO_NEW = 3,
	NVSP_STAT_PROTOCOL_TOO_OLD = 4,
	NVSP_STAT_INVALID_RNDIS_PKT = 5,
	NVSP_STAT_BUSY = 6,
	NVSP_STAT_PROTOCOL_UNSUPPORTED = 7,
};

/* IDs Linux gives its buffers (hyperv_net.h); the receive buffer's is the
 * transfer page set id of every receive indication. */
#define NVSP_RECV_BUFFER_ID 0xcafeu
#define NVSP_SEND_BUFFER_ID 0u
/* send_buf_section_index when the send buffer is not used. */
#define NVSP_INVALID_SECTION_INDEX 0xFFFFFFFFu

/* RNDIS channel types in SEND_RNDIS_PKT (netvsc.c netvsc_send_pkt). */
#define NVSP_RMC_DATA 0u
#define NVSP_RMC_CONTROL 1u

/* Linux's sizes (hyperv_net.h): the largest buffers a host accepts, the
 * send-buffer section size a Windows host answers with, the receive
 * section size Linux plans with, the send indirection table size. */
#define NVSP_RECV_BUFFER_MAX (31u << 20)
#define NVSP_RECV_BUFFER_MAX_LEGACY (15u << 20) /* NVSP 2 and older */
#define NVSP_SEND_BUFFER_MAX (15u << 20)
#define NVSP_SEND_SECTION_SIZE 6144u
#define NVSP_RECV_SECTION_SIZE 1728u
#define NVSP_SEND_TABLE_SIZE 16u
#define NVSP_VRSS_CHANNEL_MAX 64u
/* Linux refuses a receive section smaller than ETH_MIN_MTU. */
#define NVSP_RECV_SECTION_MIN 68u

struct nvsp_message_init {
	uint32_t min_protocol_ver;
	uint32_t max_protocol_ver;
} __attribute__((packed));

struct nvsp_message_init_complete {
	uint32_t negotiated_protocol_ver;
	uint32_t max_mdl_chain_len;
	uint32_t status;
} __attribute__((packed));

struct nvsp_1_send_ndis_version {
	uint32_t ndis_major_ver;
	uint32_t ndis_minor_ver;
} __attribute__((packed));

struct nvsp_1_send_receive_buffer {
	uint32_t gpadl_handle;
	uint16_t id;
} __attribute__((packed));

struct nvsp_1_receive_buffer_section {
	uint32_t offset;
	uint32_t sub_alloc_size;
	uint32_t num_sub_allocs;
	uint32_t end_offset;
} __attribute__((packed));

/* Linux accepts exactly one section, at offset 0 (netvsc_init_buf). */
struct nvsp_1_send_receive_buffer_complete {
	uint32_t status;
	uint32_t num_sections;
	struct nvsp_1_receive_buffer_section sections[1];
} __attribute__((packed));

struct nvsp_1_revoke_buffer {
	uint16_t id;
} __attribute__((packed));

struct nvsp_1_send_send_buffer {
	uint32_t gpadl_handle;
	uint16_t id;
} __attribute__((packed));

struct nvsp_1_send_send_buffer_complete {
	uint32_t status;
	uint32_t section_size; /* the host picks the section size */
} __attribute__((packed));

struct nvsp_1_send_rndis_packet {
	uint32_t channel_type;           /* NVSP_RMC_* */
	uint32_t send_buf_section_index; /* or NVSP_INVALID_SECTION_INDEX */
	uint32_t send_buf_section_size;  /* bytes used in that section */
} __attribute__((packed));

struct nvsp_1_send_rndis_packet_complete {
	uint32_t status;
} __attribute__((packed));

/* nvsp_2_vsc_capability bits (a u64 bitfield in Linux). */
#define NVSP_CAP_VMQ (1ull << 0)
#define NVSP_CAP_CHIMNEY (1ull << 1)
#define NVSP_CAP_SRIOV (1ull << 2)
#define NVSP_CAP_IEEE8021Q (1ull << 3)
#define NVSP_CAP_CORRELATION_ID (1ull << 4)
#define NVSP_CAP_TEAMING (1ull << 5)
#define NVSP_CAP_VSUBNETID (1ull << 6)
#define NVSP_CAP_RSC (1ull << 7)

struct nvsp_2_send_ndis_config {
	uint32_t mtu; /* the guest's MTU plus the Ethernet header */
	uint32_t reserved;
	uint64_t capability; /* NVSP_CAP_* */
} __attribute__((packed));

struct nvsp_4_send_vf_association {
	uint32_t allocated; /* 0: no VF */
	uint32_t serial;
} __attribute__((packed));

#define NVSP_DATAPATH_SYNTHETIC 0u
#define NVSP_DATAPATH_VF 1u

struct nvsp_4_sw_datapath {
	uint32_t active_datapath;
} __attribute__((packed));

#define NVSP_SUBCHANNEL_ALLOCATE 1u

struct nvsp_5_subchannel_request {
	uint32_t op;
	uint32_t num_subchannels;
} __attribute__((packed));

struct nvsp_5_subchannel_complete {
	uint32_t status;
	uint32_t num_subchannels; /* how many the host allocated */
} __attribute__((packed));

/* The table follows at `offset` bytes from the start of the message. */
struct nvsp_5_send_indirect_table {
	uint32_t count; /* Linux accepts NVSP_SEND_TABLE_SIZE only */
	uint32_t offset;
} __attribute__((packed));

/* The body union: 36 bytes, set by Linux's largest member
 * (nvsp_6_pd_api_comp). */
#define NVSP_MESSAGE_BODY_SIZE 36u

struct nvsp_message {
	uint32_t msg_type;
	union {
		struct nvsp_message_init init;
		struct nvsp_message_init_complete init_complete;
		struct nvsp_1_send_ndis_version send_ndis_ver;
		struct nvsp_1_send_receive_buffer send_recv_buf;
		struct nvsp_1_send_receive_buffer_complete send_recv_buf_complete;
		struct nvsp_1_revoke_buffer revoke_buf;
		struct nvsp_1_send_send_buffer send_send_buf;
		struct nvsp_1_send_send_buffer_complete send_send_buf_complete;
		struct nvsp_1_send_rndis_packet send_rndis_pkt;
		struct nvsp_1_send_rndis_packet_complete send_rndis_pkt_complete;
		struct nvsp_2_send_ndis_config send_ndis_config;
		struct nvsp_4_send_vf_association vf_assoc;
		struct nvsp_4_sw_datapath active_dp;
		struct nvsp_5_subchannel_request subchn_req;
		struct nvsp_5_subchannel_complete subchn_comp;
		struct nvsp_5_send_indirect_table send_table;
		uint8_t raw[NVSP_MESSAGE_BODY_SIZE];
	};
} __attribute__((packed));

/* The send indirection table message as the host sends it: the table right
 * after the 40-byte message, offset 40 (what Linux's fix-up for hosts up to
 * NVSP 6 computes too, netvsc.c netvsc_send_table). */
struct nvsp_send_indirection_table_msg {
	struct nvsp_message msg;
	uint32_t table[NVSP_SEND_TABLE_SIZE];
} __attribute__((packed));

_Static_assert(sizeof(struct nvsp_message) == 40, "nvsp_message (hyperv_net.h)");
_Static_assert(offsetof(struct nvsp_message, init) == 4, "body after the type");
_Static_assert(sizeof(struct nvsp_message_init_complete) == 12, "init_complete");
_Static_assert(sizeof(struct nvsp_1_send_receive_buffer) == 6, "send_recv_buf");
_Static_assert(sizeof(struct nvsp_1_send_receive_buffer_complete) == 24, "recv_buf_complete");
_Static_assert(sizeof(struct nvsp_1_send_send_buffer_complete) == 8, "send_buf_complete");
_Static_assert(sizeof(struct nvsp_1_send_rndis_packet) == 12, "send_rndis_pkt");
_Static_assert(sizeof(struct nvsp_2_send_ndis_config) == 16, "send_ndis_config");
_Static_assert(offsetof(struct nvsp_2_send_ndis_config, capability) == 8, "capability");
_Static_assert(sizeof(struct nvsp_5_subchannel_complete) == 8, "subchn_comp");
_Static_assert(sizeof(struct nvsp_5_send_indirect_table) == 8, "send_table");
_Static_assert(sizeof(struct nvsp_send_indirection_table_msg) == 40 + 16 * 4, "send table");

#endif /* HVKIT_PROTO_NETVSC_H */
