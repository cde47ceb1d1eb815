/* SPDX-License-Identifier: MIT */
/*
 * VMBus control-path messages (carried by HvPostMessage and SIMP slots of
 * SINT 2), protocol versions, connection ids, channel offers, GPADL
 * messages and the monitor page.
 *
 * Checked against Linux 6.1:
 *   include/linux/hyperv.h        (messages, offers, versions, flags)
 *   drivers/hv/hyperv_vmbus.h     (connection ids, SINT, monitor page)
 *   drivers/hv/channel.c          (GPADL PFNs per message)
 *   drivers/hv/channel_mgmt.c     (minimum sizes the guest checks)
 *   net/vmw_vsock/hyperv_transport.c (hv_sock pipe user data)
 * and, where Linux 6.1 is silent, OpenVMM vm/devices/vmbus/vmbus_core.
 */
#ifndef HVKIT_VMBUS_H
#define HVKIT_VMBUS_H

#include <stddef.h>
#include <stdint.h>

#include "hvkit/guid.h"
#include "hvkit/tlfs.h"

/* ------------------------------------------------------------------ */
/* Versions and connections                                            */
/* ------------------------------------------------------------------ */

#define VMBUS_MAKE_VERSION(major, minor) (((uint32_t)(major) << 16) | (minor))
#define VMBUS_VERSION_MAJOR(v) ((v) >> 16)
#define VMBUS_VERSION_MINOR(v) ((v)&0xFFFFu)

#define VMBUS_VERSION_WS2008 VMBUS_MAKE_VERSION(0, 13)
#define VMBUS_VERSION_WIN7 VMBUS_MAKE_VERSION(1, 1)
#define VMBUS_VERSION_WIN8 VMBUS_MAKE_VERSION(2, 4)
#define VMBUS_VERSION_WIN8_1 VMBUS_MAKE_VERSION(3, 0)
#define VMBUS_VERSION_WIN10 VMBUS_MAKE_VERSION(4, 0)
#define VMBUS_VERSION_WIN10_V4_1 VMBUS_MAKE_VERSION(4, 1)
#define VMBUS_VERSION_WIN10_V5 VMBUS_MAKE_VERSION(5, 0)
#define VMBUS_VERSION_WIN10_V5_1 VMBUS_MAKE_VERSION(5, 1)
#define VMBUS_VERSION_WIN10_V5_2 VMBUS_MAKE_VERSION(5, 2)
#define VMBUS_VERSION_WIN10_V5_3 VMBUS_MAKE_VERSION(5, 3)

/* Connection and port ids (hyperv_vmbus.h). */
#define VMBUS_MESSAGE_CONNECTION_ID 1u
#define VMBUS_EVENT_CONNECTION_ID 2u
#define VMBUS_MONITOR_CONNECTION_ID 3u
/* INITIATE_CONTACT at version >= 5.0 goes to connection 4; later messages
 * go to the msg_conn_id of the VERSION_RESPONSE. */
#define VMBUS_MESSAGE_CONNECTION_ID_4 4u
#define VMBUS_MESSAGE_PORT_ID 1u
#define VMBUS_EVENT_PORT_ID 2u
#define VMBUS_MONITOR_PORT_ID 3u

/* Host-to-guest control messages arrive in this SINT (vector 0xF3 on x86). */
#define VMBUS_MESSAGE_SINT 2u

/* Channel relids: 1..2047 (Linux sizes its relid table at 2048 entries). */
#define VMBUS_RELID_MIN 1u
#define VMBUS_RELID_MAX 2047u
#define VMBUS_RELID_INVALID 0xFFFFFFFFu

/* Largest control message: one SynIC message payload. */
#define VMBUS_MAX_MESSAGE_SIZE HV_MESSAGE_PAYLOAD_BYTES

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

enum vmbus_msg_type {
	VMBUS_MSG_INVALID = 0,
	VMBUS_MSG_OFFERCHANNEL = 1,
	VMBUS_MSG_RESCIND_CHANNELOFFER = 2,
	VMBUS_MSG_REQUESTOFFERS = 3,
	VMBUS_MSG_ALLOFFERS_DELIVERED = 4,
	VMBUS_MSG_OPENCHANNEL = 5,
	VMBUS_MSG_OPENCHANNEL_RESULT = 6,
	VMBUS_MSG_CLOSECHANNEL = 7,
	VMBUS_MSG_GPADL_HEADER = 8,
	VMBUS_MSG_GPADL_BODY = 9,
	VMBUS_MSG_GPADL_CREATED = 10,
	VMBUS_MSG_GPADL_TEARDOWN = 11,
	VMBUS_MSG_GPADL_TORNDOWN = 12,
	VMBUS_MSG_RELID_RELEASED = 13,
	VMBUS_MSG_INITIATE_CONTACT = 14,
	VMBUS_MSG_VERSION_RESPONSE = 15,
	VMBUS_MSG_UNLOAD = 16,
	VMBUS_MSG_UNLOAD_RESPONSE = 17,
	/* 18..20 are unused by Linux */
	VMBUS_MSG_TL_CONNECT_REQUEST = 21,
	VMBUS_MSG_MODIFYCHANNEL = 22,
	VMBUS_MSG_TL_CONNECT_RESULT = 23,
	VMBUS_MSG_MODIFYCHANNEL_RESPONSE = 24,
	VMBUS_MSG_COUNT
};

struct vmbus_msg_header {
	uint32_t msgtype; /* enum vmbus_msg_type */
	uint32_t padding;
} __attribute__((packed));

/* Offer flags (chn_flags). */
#define VMBUS_OFFER_FLAG_ENUMERATE_DEVICE_INTERFACE 0x0001u
#define VMBUS_OFFER_FLAG_SERVER_SUPPORTS_TRANSFER_PAGES 0x0002u
#define VMBUS_OFFER_FLAG_SERVER_SUPPORTS_GPADLS 0x0004u
#define VMBUS_OFFER_FLAG_NAMED_PIPE_MODE 0x0010u
#define VMBUS_OFFER_FLAG_LOOPBACK 0x0100u
#define VMBUS_OFFER_FLAG_PARENT 0x0200u
#define VMBUS_OFFER_FLAG_REQUEST_MONITORED_NOTIFICATION 0x0400u
#define VMBUS_OFFER_FLAG_TLNPI_PROVIDER 0x2000u /* an hv_sock offer */

#define VMBUS_OFFER_USER_DEFINED_BYTES 120
#define VMBUS_OFFER_PIPE_USER_DEFINED_BYTES 116
#define VMBUS_PIPE_TYPE_BYTE 0x00000000u
#define VMBUS_PIPE_TYPE_MESSAGE 0x00000004u

/* The offer body (struct vmbus_channel_offer in hyperv.h). */
struct vmbus_offer {
	struct hv_guid if_type;     /* class: which kind of device */
	struct hv_guid if_instance; /* which device of that class */
	uint64_t reserved1;
	uint64_t reserved2;
	uint16_t chn_flags;
	uint16_t mmio_megabytes;
	union {
		uint8_t user_def[VMBUS_OFFER_USER_DEFINED_BYTES];
		/* Pipe offers (hv_sock): a pipe mode, then the pipe's own data.
		 * hv_sock reads user_def[0] as "the host initiated this
		 * connection" (hyperv_transport.c, hvs_open_connection). */
		struct {
			uint32_t pipe_mode;
			uint8_t user_def[VMBUS_OFFER_PIPE_USER_DEFINED_BYTES];
		} __attribute__((packed)) pipe;
	} u;
	uint16_t sub_channel_index; /* 0: primary channel */
	uint16_t reserved3;
} __attribute__((packed));

/* hv_sock: byte 0 of the pipe user data. */
#define VMBUS_HVSOCK_CONN_FROM_HOST_BYTE 0

#define VMBUS_OFFER_MONITOR_ALLOCATED 0x01u /* monitor_flags bit 0 */
#define VMBUS_OFFER_DEDICATED_INTERRUPT 0x0001u /* interrupt_flags bit 0 */

/* 1: OFFERCHANNEL, host to guest. */
struct vmbus_msg_offer_channel {
	struct vmbus_msg_header header;
	struct vmbus_offer offer;
	uint32_t child_relid;
	uint8_t monitor_id;
	uint8_t monitor_flags;   /* bit 0: monitor allocated */
	uint16_t interrupt_flags; /* bit 0: dedicated interrupt */
	uint32_t connection_id; /* guest-to-host signals go here */
} __attribute__((packed));

/* 2: RESCIND_CHANNELOFFER, host to guest. */
struct vmbus_msg_rescind_offer {
	struct vmbus_msg_header header;
	uint32_t child_relid;
} __attribute__((packed));

/* 3 REQUESTOFFERS, 4 ALLOFFERS_DELIVERED, 16 UNLOAD, 17 UNLOAD_RESPONSE:
 * the header alone. */

/* 5: OPENCHANNEL, guest to host. */
struct vmbus_msg_open_channel {
	struct vmbus_msg_header header;
	uint32_t child_relid;
	uint32_t open_id;
	uint32_t ring_gpadl;
	uint32_t target_vp;
	/* Inbound (host-to-guest) ring offset in pages within ring_gpadl; the
	 * outbound ring starts at page 0. */
	uint32_t downstream_ring_page_offset;
	uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES];
} __attribute__((packed));

/* 6: OPENCHANNEL_RESULT, host to guest. status 0 = success. */
struct vmbus_msg_open_result {
	struct vmbus_msg_header header;
	uint32_t child_relid;
	uint32_t open_id;
	uint32_t status;
} __attribute__((packed));

/* 7: CLOSECHANNEL, guest to host. */
struct vmbus_msg_close_channel {
	struct vmbus_msg_header header;
	uint32_t child_relid;
} __attribute__((packed));

/* A GPA range: byte_count bytes starting byte_offset into the first page,
 * over the PFNs that follow. Shared by GPADLs and GPA-direct packets. */
struct vmbus_gpa_range {
	uint32_t byte_count;
	uint32_t byte_offset;
	uint64_t pfn_array[];
} __attribute__((packed));

/* Historical GPADL type values (hyperv.h); not carried in any message. */
#define VMBUS_GPADL_TYPE_RING_BUFFER 1u
#define VMBUS_GPADL_TYPE_SERVER_SAVE_AREA 2u
#define VMBUS_GPADL_TYPE_TRANSACTION 8u

/* 8: GPADL_HEADER, guest to host. range_buflen bytes of ranges follow. */
struct vmbus_msg_gpadl_header {
	struct vmbus_msg_header header;
	uint32_t child_relid;
	uint32_t gpadl;
	uint16_t range_buflen; /* bytes of ranges, including every PFN */
	uint16_t range_count;
	struct vmbus_gpa_range range[];
} __attribute__((packed));

/* 9: GPADL_BODY, guest to host: more PFNs of the header's range(s).
 * Linux sends msg_number 0 in every body. */
struct vmbus_msg_gpadl_body {
	struct vmbus_msg_header header;
	uint32_t msg_number;
	uint32_t gpadl;
	uint64_t pfn[];
} __attribute__((packed));

/* PFNs that fit in one message (channel.c, create_gpadl_header). */
#define VMBUS_GPADL_HEADER_MAX_PFNS                                              \
	((VMBUS_MAX_MESSAGE_SIZE - sizeof(struct vmbus_msg_gpadl_header) -        \
	  sizeof(struct vmbus_gpa_range)) /                                        \
	 sizeof(uint64_t))
#define VMBUS_GPADL_BODY_MAX_PFNS                                                \
	((VMBUS_MAX_MESSAGE_SIZE - sizeof(struct vmbus_msg_gpadl_body)) / sizeof(uint64_t))

/* 10: GPADL_CREATED, host to guest. creation_status 0 = success. */
struct vmbus_msg_gpadl_created {
	struct vmbus_msg_header header;
	uint32_t child_relid;
	uint32_t gpadl;
	uint32_t creation_status;
} __attribute__((packed));

/* 11: GPADL_TEARDOWN, guest to host. */
struct vmbus_msg_gpadl_teardown {
	struct vmbus_msg_header header;
	uint32_t child_relid;
	uint32_t gpadl;
} __attribute__((packed));

/* 12: GPADL_TORNDOWN, host to guest. */
struct vmbus_msg_gpadl_torndown {
	struct vmbus_msg_header header;
	uint32_t gpadl;
} __attribute__((packed));

/* 13: RELID_RELEASED, guest to host, after a rescind. */
struct vmbus_msg_relid_released {
	struct vmbus_msg_header header;
	uint32_t child_relid;
} __attribute__((packed));

/* 14: INITIATE_CONTACT, guest to host. From 5.0 on, interrupt_page is
 * replaced by the SINT the host must post messages to (byte 0). */
struct vmbus_msg_initiate_contact {
	struct vmbus_msg_header header;
	uint32_t version_requested;
	uint32_t target_vcpu; /* VP the host answers on */
	union {
		uint64_t interrupt_page;
		struct {
			uint8_t msg_sint;
			uint8_t padding1[3];
			uint32_t padding2;
		} __attribute__((packed));
	};
	uint64_t monitor_page1;
	uint64_t monitor_page2;
} __attribute__((packed));

/* 15: VERSION_RESPONSE, host to guest. */
struct vmbus_msg_version_response {
	struct vmbus_msg_header header;
	uint8_t version_supported; /* 0: try an older version */
	uint8_t connection_state;
	uint16_t padding;
	uint32_t msg_conn_id; /* used from 5.0 on for guest-to-host messages */
} __attribute__((packed));

/* The pre-5.0 version response Linux also accepts (hyperv.h). */
struct vmbus_msg_version_supported {
	struct vmbus_msg_header header;
	uint8_t version_supported;
} __attribute__((packed));

/* 21: TL_CONNECT_REQUEST, guest to host: an hv_sock connect(). */
struct vmbus_msg_tl_connect_request {
	struct vmbus_msg_header header;
	struct hv_guid guest_endpoint_id;
	struct hv_guid host_service_id;
} __attribute__((packed));

/* 23: TL_CONNECT_RESULT, host to guest: the connect() failed. Linux 6.1 has
 * no struct for it and ignores the message; layout as OpenVMM's vmbus_core
 * protocol.rs (TlConnectResult) has it. status is an NTSTATUS. */
struct vmbus_msg_tl_connect_result {
	struct vmbus_msg_header header;
	struct hv_guid endpoint_id;
	struct hv_guid service_id;
	int32_t status;
} __attribute__((packed));

/* 22: MODIFYCHANNEL, guest to host: retarget the channel interrupt. */
struct vmbus_msg_modify_channel {
	struct vmbus_msg_header header;
	uint32_t child_relid;
	uint32_t target_vp;
} __attribute__((packed));

/* 24: MODIFYCHANNEL_RESPONSE, host to guest (5.3 and later). */
struct vmbus_msg_modify_channel_response {
	struct vmbus_msg_header header;
	uint32_t child_relid;
	uint32_t status;
} __attribute__((packed));

/* ------------------------------------------------------------------ */
/* Monitor pages (monitored notification, optional)                   */
/* ------------------------------------------------------------------ */

#define VMBUS_MONITOR_GROUPS 4
#define VMBUS_MONITOR_BITS_PER_GROUP 32

struct vmbus_monitor_trigger_group {
	uint32_t pending;
	uint32_t armed;
} __attribute__((packed));

struct vmbus_monitor_parameter {
	uint32_t connection_id;
	uint16_t flag_number;
	uint16_t rsvdz;
} __attribute__((packed));

struct vmbus_monitor_page {
	uint32_t trigger_state; /* bits 3:0 group enable */
	uint32_t rsvdz1;
	struct vmbus_monitor_trigger_group trigger_group[VMBUS_MONITOR_GROUPS];
	uint64_t rsvdz2[3];
	int32_t next_check_time[VMBUS_MONITOR_GROUPS][VMBUS_MONITOR_BITS_PER_GROUP];
	uint16_t latency[VMBUS_MONITOR_GROUPS][VMBUS_MONITOR_BITS_PER_GROUP];
	uint64_t rsvdz3[32];
	struct vmbus_monitor_parameter parameter[VMBUS_MONITOR_GROUPS]
						[VMBUS_MONITOR_BITS_PER_GROUP];
	uint8_t rsvdz4[1984];
} __attribute__((packed));

/* ------------------------------------------------------------------ */
/* Layout pins                                                         */
/* ------------------------------------------------------------------ */

_Static_assert(sizeof(struct vmbus_msg_header) == 8, "header");
_Static_assert(sizeof(struct vmbus_offer) == 176, "offer body");
_Static_assert(offsetof(struct vmbus_offer, if_instance) == 16, "instance");
_Static_assert(offsetof(struct vmbus_offer, chn_flags) == 48, "chn_flags");
_Static_assert(offsetof(struct vmbus_offer, u) == 52, "user_def");
_Static_assert(offsetof(struct vmbus_offer, u.pipe.user_def) == 56, "pipe user_def");
_Static_assert(offsetof(struct vmbus_offer, sub_channel_index) == 172, "sub idx");
/* Offsets within the whole message, as the contract sheet lists them. */
_Static_assert(sizeof(struct vmbus_msg_offer_channel) == 196, "offer message");
_Static_assert(offsetof(struct vmbus_msg_offer_channel, offer.if_type) == 8, "class");
_Static_assert(offsetof(struct vmbus_msg_offer_channel, offer.if_instance) == 24, "inst");
_Static_assert(offsetof(struct vmbus_msg_offer_channel, offer.chn_flags) == 56, "flags");
_Static_assert(offsetof(struct vmbus_msg_offer_channel, offer.u) == 60, "user_def");
_Static_assert(offsetof(struct vmbus_msg_offer_channel, offer.sub_channel_index) == 180,
	       "sub_channel_index");
_Static_assert(offsetof(struct vmbus_msg_offer_channel, child_relid) == 184, "relid");
_Static_assert(offsetof(struct vmbus_msg_offer_channel, monitor_id) == 188, "monitor");
_Static_assert(offsetof(struct vmbus_msg_offer_channel, monitor_flags) == 189, "mon flag");
_Static_assert(offsetof(struct vmbus_msg_offer_channel, interrupt_flags) == 190, "ded");
_Static_assert(offsetof(struct vmbus_msg_offer_channel, connection_id) == 192, "conn");
_Static_assert(sizeof(struct vmbus_msg_rescind_offer) == 12, "rescind");
_Static_assert(sizeof(struct vmbus_msg_open_channel) == 148, "open");
_Static_assert(offsetof(struct vmbus_msg_open_channel, downstream_ring_page_offset) == 24,
	       "downstream offset");
_Static_assert(offsetof(struct vmbus_msg_open_channel, user_data) == 28, "open user");
_Static_assert(sizeof(struct vmbus_msg_open_result) == 20, "open result");
_Static_assert(sizeof(struct vmbus_msg_close_channel) == 12, "close");
_Static_assert(sizeof(struct vmbus_gpa_range) == 8, "gpa range");
_Static_assert(sizeof(struct vmbus_msg_gpadl_header) == 20, "gpadl header");
_Static_assert(offsetof(struct vmbus_msg_gpadl_header, range_buflen) == 16, "buflen");
_Static_assert(sizeof(struct vmbus_msg_gpadl_body) == 16, "gpadl body");
_Static_assert(VMBUS_GPADL_HEADER_MAX_PFNS == 26, "PFNs in a GPADL header");
_Static_assert(VMBUS_GPADL_BODY_MAX_PFNS == 28, "PFNs in a GPADL body");
_Static_assert(sizeof(struct vmbus_msg_gpadl_created) == 20, "gpadl created");
_Static_assert(sizeof(struct vmbus_msg_gpadl_teardown) == 16, "gpadl teardown");
_Static_assert(sizeof(struct vmbus_msg_gpadl_torndown) == 12, "gpadl torndown");
_Static_assert(sizeof(struct vmbus_msg_relid_released) == 12, "relid released");
_Static_assert(sizeof(struct vmbus_msg_initiate_contact) == 40, "initiate contact");
_Static_assert(offsetof(struct vmbus_msg_initiate_contact, msg_sint) == 16, "msg_sint");
_Static_assert(offsetof(struct vmbus_msg_initiate_contact, monitor_page1) == 24, "mon1");
_Static_assert(sizeof(struct vmbus_msg_version_response) == 16, "version response");
_Static_assert(offsetof(struct vmbus_msg_version_response, msg_conn_id) == 12, "conn");
_Static_assert(sizeof(struct vmbus_msg_version_supported) == 9, "version supported");
_Static_assert(sizeof(struct vmbus_msg_tl_connect_request) == 40, "tl connect");
_Static_assert(sizeof(struct vmbus_msg_tl_connect_result) == 44, "tl result");
_Static_assert(sizeof(struct vmbus_msg_modify_channel) == 16, "modify");
_Static_assert(sizeof(struct vmbus_msg_modify_channel_response) == 16, "modify resp");
_Static_assert(sizeof(struct vmbus_monitor_page) == HV_PAGE_SIZE, "monitor page");
_Static_assert(offsetof(struct vmbus_monitor_page, trigger_group) == 8, "groups");
_Static_assert(offsetof(struct vmbus_monitor_page, next_check_time) == 0x40, "check");
_Static_assert(offsetof(struct vmbus_monitor_page, latency) == 0x240, "latency");
_Static_assert(offsetof(struct vmbus_monitor_page, parameter) == 0x440, "parameter");
_Static_assert(offsetof(struct vmbus_monitor_page, rsvdz4) == 0x840, "tail");

#endif /* HVKIT_VMBUS_H */
