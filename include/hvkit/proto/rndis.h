/* SPDX-License-Identifier: MIT */
/*
 * RNDIS as the synthetic NIC carries it inside NVSP (netvsc.h): the control
 * messages, data packets with their per-packet info, the OIDs Linux queries
 * and sets, and the NDIS offload and receive-scaling objects. Checked
 * against Linux 6.1 include/linux/rndis.h (message types, statuses, OIDs)
 * and drivers/net/hyperv/hyperv_net.h (message bodies, per-packet info,
 * NDIS objects), as drivers/net/hyperv/rndis_filter.c and netvsc_drv.c use
 * them. Little-endian throughout.
 *
 * Every message starts with struct rndis_msg_header; msg_len counts the
 * whole message from there. Offsets inside a body (info_buf_offset,
 * data_offset, per_pkt_info_offset...) count from the start of the body,
 * i.e. 8 bytes into the message.
 */
#ifndef HVKIT_PROTO_RNDIS_H
#define HVKIT_PROTO_RNDIS_H

#include <stddef.h>
#include <stdint.h>

#define RNDIS_MAJOR_VERSION 1u
#define RNDIS_MINOR_VERSION 0u
#define RNDIS_DF_CONNECTIONLESS 0x00000001u
#define RNDIS_MEDIUM_802_3 0u

/* Message types (include/linux/rndis.h). */
#define RNDIS_MSG_COMPLETION 0x80000000u
#define RNDIS_MSG_PACKET 0x00000001u
#define RNDIS_MSG_INIT 0x00000002u
#define RNDIS_MSG_INIT_C (RNDIS_MSG_INIT | RNDIS_MSG_COMPLETION)
#define RNDIS_MSG_HALT 0x00000003u
#define RNDIS_MSG_QUERY 0x00000004u
#define RNDIS_MSG_QUERY_C (RNDIS_MSG_QUERY | RNDIS_MSG_COMPLETION)
#define RNDIS_MSG_SET 0x00000005u
#define RNDIS_MSG_SET_C (RNDIS_MSG_SET | RNDIS_MSG_COMPLETION)
#define RNDIS_MSG_RESET 0x00000006u
#define RNDIS_MSG_RESET_C (RNDIS_MSG_RESET | RNDIS_MSG_COMPLETION)
#define RNDIS_MSG_INDICATE 0x00000007u
#define RNDIS_MSG_KEEPALIVE 0x00000008u
#define RNDIS_MSG_KEEPALIVE_C (RNDIS_MSG_KEEPALIVE | RNDIS_MSG_COMPLETION)

/* Statuses (include/linux/rndis.h). */
#define RNDIS_STATUS_SUCCESS 0x00000000u
#define RNDIS_STATUS_MEDIA_CONNECT 0x4001000Bu
#define RNDIS_STATUS_MEDIA_DISCONNECT 0x4001000Cu
#define RNDIS_STATUS_LINK_SPEED_CHANGE 0x40010013u
#define RNDIS_STATUS_NETWORK_CHANGE 0x40010018u
#define RNDIS_STATUS_FAILURE 0xC0000001u
#define RNDIS_STATUS_RESOURCES 0xC000009Au
#define RNDIS_STATUS_NOT_SUPPORTED 0xC00000BBu
#define RNDIS_STATUS_INVALID_PACKET 0xC001000Fu
#define RNDIS_STATUS_INVALID_LENGTH 0xC0010014u
#define RNDIS_STATUS_INVALID_DATA 0xC0010015u
#define RNDIS_STATUS_INVALID_OID 0xC0010017u

/* OIDs Linux uses (include/linux/rndis.h, hyperv_net.h). */
#define RNDIS_OID_GEN_SUPPORTED_LIST 0x00010101u
#define RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE 0x00010106u
#define RNDIS_OID_GEN_LINK_SPEED 0x00010107u /* units of 100 bit/s */
#define RNDIS_OID_GEN_CURRENT_PACKET_FILTER 0x0001010Eu
#define RNDIS_OID_GEN_MAXIMUM_TOTAL_SIZE 0x00010111u
#define RNDIS_OID_GEN_MEDIA_CONNECT_STATUS 0x00010114u
#define RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER 0x0001021Bu
#define RNDIS_OID_GEN_FRIENDLY_NAME 0x00020216u
#define RNDIS_OID_802_3_PERMANENT_ADDRESS 0x01010101u
#define RNDIS_OID_802_3_CURRENT_ADDRESS 0x01010102u
#define RNDIS_OID_802_3_MULTICAST_LIST 0x01010103u
#define RNDIS_OID_802_3_MAXIMUM_LIST_SIZE 0x01010104u
#define OID_GEN_RECEIVE_SCALE_CAPABILITIES 0x00010203u /* query */
#define OID_GEN_RECEIVE_SCALE_PARAMETERS 0x00010204u   /* query, set */
#define OID_TCP_OFFLOAD_CURRENT_CONFIG 0xFC01020Bu
#define OID_TCP_OFFLOAD_PARAMETERS 0xFC01020Cu            /* set */
#define OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES 0xFC01020Du /* query */
#define OID_OFFLOAD_ENCAPSULATION 0x0101010Au

/* OID_GEN_MEDIA_CONNECT_STATUS values. */
#define RNDIS_MEDIA_STATE_CONNECTED 0u
#define RNDIS_MEDIA_STATE_DISCONNECTED 1u

/* OID_GEN_CURRENT_PACKET_FILTER bits (hyperv_net.h NDIS_PACKET_TYPE_*). */
#define NDIS_PACKET_TYPE_DIRECTED 0x00000001u
#define NDIS_PACKET_TYPE_MULTICAST 0x00000002u
#define NDIS_PACKET_TYPE_ALL_MULTICAST 0x00000004u
#define NDIS_PACKET_TYPE_BROADCAST 0x00000008u
#define NDIS_PACKET_TYPE_PROMISCUOUS 0x00000020u

struct rndis_msg_header {
	uint32_t msg_type;
	uint32_t msg_len; /* the whole message, this header included */
};

struct rndis_initialize_request {
	uint32_t req_id;
	uint32_t major_ver;
	uint32_t minor_ver;
	uint32_t max_xfer_size;
};

struct rndis_initialize_complete {
	uint32_t req_id;
	uint32_t status;
	uint32_t major_ver;
	uint32_t minor_ver;
	uint32_t dev_flags;
	uint32_t medium;
	uint32_t max_pkt_per_msg;
	uint32_t max_xfer_size;
	uint32_t pkt_alignment_factor; /* log2: Linux aligns to 1 << this */
	uint32_t af_list_offset;
	uint32_t af_list_size;
};

struct rndis_halt_request {
	uint32_t req_id;
};

struct rndis_query_request {
	uint32_t req_id;
	uint32_t oid;
	uint32_t info_buflen;
	uint32_t info_buf_offset;
	uint32_t dev_vc_handle;
};

struct rndis_query_complete {
	uint32_t req_id;
	uint32_t status;
	uint32_t info_buflen;
	uint32_t info_buf_offset; /* Linux wants >= sizeof(this) */
};

struct rndis_set_request {
	uint32_t req_id;
	uint32_t oid;
	uint32_t info_buflen;
	uint32_t info_buf_offset;
	uint32_t dev_vc_handle;
};

struct rndis_set_complete {
	uint32_t req_id;
	uint32_t status;
};

struct rndis_reset_request {
	uint32_t reserved;
};

struct rndis_reset_complete {
	uint32_t status;
	uint32_t addressing_reset;
};

struct rndis_indicate_status {
	uint32_t status;
	uint32_t status_buflen;
	uint32_t status_buf_offset;
};

struct rndis_keepalive_request {
	uint32_t req_id;
};

struct rndis_keepalive_complete {
	uint32_t req_id;
	uint32_t status;
};

struct rndis_packet {
	uint32_t data_offset; /* from the start of this struct */
	uint32_t data_len;
	uint32_t oob_data_offset;
	uint32_t oob_data_len;
	uint32_t num_oob_data_elements;
	uint32_t per_pkt_info_offset; /* from the start of this struct */
	uint32_t per_pkt_info_len;
	uint32_t vc_handle;
	uint32_t reserved;
};

/* One per-packet info element; its data starts ppi_offset bytes into it. */
struct rndis_per_packet_info {
	uint32_t size;
	uint32_t type; /* bits 0-30 the type, bit 31 "internal" */
	uint32_t ppi_offset;
};
#define RNDIS_PPI_INTERNAL 0x80000000u

/* Per-packet info types (hyperv_net.h enum ndis_per_pkt_info_type). */
enum ndis_per_pkt_info_type {
	TCPIP_CHKSUM_PKTINFO = 0,
	IPSEC_PKTINFO = 1,
	TCP_LARGESEND_PKTINFO = 2,
	CLASSIFICATION_HANDLE_PKTINFO = 3,
	NDIS_RESERVED = 4,
	SG_LIST_PKTINFO = 5,
	IEEE_8021Q_INFO = 6,
	ORIGINAL_PKTINFO = 7,
	PACKET_CANCEL_ID = 8,
	NBL_HASH_VALUE = PACKET_CANCEL_ID,
	ORIGINAL_NET_BUFLIST = 9,
	CACHED_NET_BUFLIST = 10,
	SHORT_PKT_PADINFO = 11,
};
/* Internal type RNDIS_PKTINFO_ID (with RNDIS_PPI_INTERNAL): RSC fragments. */
#define RNDIS_PKTINFO_ID 1u

/* ndis_tcp_ip_checksum_info, transmit view (guest to host). */
#define NDIS_CSUM_TX_IS_IPV4 (1u << 0)
#define NDIS_CSUM_TX_IS_IPV6 (1u << 1)
#define NDIS_CSUM_TX_TCP (1u << 2)
#define NDIS_CSUM_TX_UDP (1u << 3)
#define NDIS_CSUM_TX_IP_HEADER (1u << 4)
#define NDIS_CSUM_TX_TCP_HDR_OFFSET(v) (((v) >> 16) & 0x3ffu)
/* receive view (host to guest) */
#define NDIS_CSUM_RX_TCP_FAILED (1u << 0)
#define NDIS_CSUM_RX_UDP_FAILED (1u << 1)
#define NDIS_CSUM_RX_IP_FAILED (1u << 2)
#define NDIS_CSUM_RX_TCP_SUCCEEDED (1u << 3)
#define NDIS_CSUM_RX_UDP_SUCCEEDED (1u << 4)
#define NDIS_CSUM_RX_IP_SUCCEEDED (1u << 5)

/* ndis_pkt_8021q_info: pri 0-2, cfi 3, vlanid 4-15. */
#define NDIS_VLAN_PRI(v) ((v) & 7u)
#define NDIS_VLAN_ID(v) (((v) >> 4) & 0xfffu)
#define NDIS_VLAN_MAKE(pri, id) (((pri) & 7u) | (((id) & 0xfffu) << 4))

/* ndis_tcp_lso_info, LSOv2 transmit view: mss 0-19, tcp header offset
 * 20-29, type 30 (1: LSOv2), ip_version 31 (0: IPv4, 1: IPv6). */
#define NDIS_LSO_MSS(v) ((v) & 0xfffffu)
#define NDIS_LSO_TCP_HDR_OFFSET(v) (((v) >> 20) & 0x3ffu)
#define NDIS_LSO_TYPE_V2 (1u << 30)
#define NDIS_LSO_IPV6 (1u << 31)

/* NDIS objects. */
struct ndis_object_header {
	uint8_t type;
	uint8_t revision;
	uint16_t size;
};
#define NDIS_OBJECT_TYPE_DEFAULT 0x80u
#define NDIS_OBJECT_TYPE_RSS_CAPABILITIES 0x88u
#define NDIS_OBJECT_TYPE_RSS_PARAMETERS 0x89u
#define NDIS_OBJECT_TYPE_OFFLOAD 0xa7u

#define NDIS_OFFLOAD_PARAMETERS_REVISION_1 1u
#define NDIS_OFFLOAD_PARAMETERS_REVISION_2 2u
#define NDIS_OFFLOAD_PARAMETERS_REVISION_3 3u
#define NDIS_OFFLOAD_PARAMETERS_NO_CHANGE 0u
#define NDIS_OFFLOAD_PARAMETERS_LSOV2_DISABLED 1u
#define NDIS_OFFLOAD_PARAMETERS_LSOV2_ENABLED 2u
#define NDIS_OFFLOAD_PARAMETERS_RSC_DISABLED 1u
#define NDIS_OFFLOAD_PARAMETERS_RSC_ENABLED 2u
#define NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED 1u
#define NDIS_OFFLOAD_PARAMETERS_TX_ENABLED_RX_DISABLED 2u
#define NDIS_OFFLOAD_PARAMETERS_RX_ENABLED_TX_DISABLED 3u
#define NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED 4u

#define NDIS_OFFLOAD_ENCAP_8023 0x0002u
#define NDIS_TXCSUM_CAP_IP4OPT 0x001u
#define NDIS_TXCSUM_CAP_TCP4OPT 0x004u
#define NDIS_TXCSUM_CAP_TCP4 0x010u
#define NDIS_TXCSUM_CAP_UDP4 0x040u
#define NDIS_TXCSUM_CAP_IP4 0x100u
#define NDIS_TXCSUM_CAP_IP6EXT 0x001u
#define NDIS_TXCSUM_CAP_TCP6OPT 0x004u
#define NDIS_TXCSUM_CAP_TCP6 0x010u
#define NDIS_TXCSUM_CAP_UDP6 0x040u
#define NDIS_LSOV2_CAP_IP6EXT 0x001u
#define NDIS_LSOV2_CAP_TCP6OPT 0x004u

struct ndis_csum_offload {
	uint32_t ip4_txenc, ip4_txcsum, ip4_rxenc, ip4_rxcsum;
	uint32_t ip6_txenc, ip6_txcsum, ip6_rxenc, ip6_rxcsum;
};
struct ndis_lsov1_offload {
	uint32_t encap, maxsize, minsegs, opts;
};
struct ndis_ipsecv1_offload {
	uint32_t encap, ah_esp, xport_tun, ip4_opts, flags, ip4_ah, ip4_esp;
};
struct ndis_lsov2_offload {
	uint32_t ip4_encap, ip4_maxsz, ip4_minsg;
	uint32_t ip6_encap, ip6_maxsz, ip6_minsg, ip6_opts;
};
struct ndis_ipsecv2_offload {
	uint32_t encap;
	uint8_t ip6, ip4opt, ip6ext, ah, esp, ah_esp, xport, tun, xport_tun, lso, extseq;
	uint32_t udp_esp, auth, crypto, sa_caps;
};
struct ndis_rsc_offload {
	uint8_t ip4, ip6;
};
struct ndis_encap_offload {
	uint32_t flags, maxhdr;
};

/* OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES. Linux asks with revision 1 and
 * NDIS_OFFLOAD_SIZE_6_0 below NVSP 4, revision 2 and _6_1 on NVSP 4,
 * revision 3 and the whole struct from NVSP 5; it refuses an answer
 * bigger than the struct or smaller than _6_0. */
struct ndis_offload {
	struct ndis_object_header header;
	struct ndis_csum_offload csum;
	struct ndis_lsov1_offload lsov1;
	struct ndis_ipsecv1_offload ipsecv1;
	struct ndis_lsov2_offload lsov2;
	uint32_t flags;
	struct ndis_ipsecv2_offload ipsecv2; /* NDIS 6.1 */
	struct ndis_rsc_offload rsc;         /* NDIS 6.30 */
	struct ndis_encap_offload encap_gre;
};
#define NDIS_OFFLOAD_SIZE sizeof(struct ndis_offload)
#define NDIS_OFFLOAD_SIZE_6_0 offsetof(struct ndis_offload, ipsecv2)
#define NDIS_OFFLOAD_SIZE_6_1 offsetof(struct ndis_offload, rsc)

/* OID_TCP_OFFLOAD_PARAMETERS (set). */
struct ndis_offload_params {
	struct ndis_object_header header;
	uint8_t ip_v4_csum;
	uint8_t tcp_ip_v4_csum;
	uint8_t udp_ip_v4_csum;
	uint8_t tcp_ip_v6_csum;
	uint8_t udp_ip_v6_csum;
	uint8_t lso_v1;
	uint8_t ip_sec_v1;
	uint8_t lso_v2_ipv4;
	uint8_t lso_v2_ipv6;
	uint8_t tcp_connection_ip_v4;
	uint8_t tcp_connection_ip_v6;
	uint32_t flags;
	uint8_t ip_sec_v2;
	uint8_t ip_sec_v2_ip_v4;
	uint8_t rsc_ip_v4;
	uint8_t rsc_ip_v6;
	uint8_t encapsulated_packet_task_offload;
	uint8_t encapsulation_types;
};

/* OID_GEN_RECEIVE_SCALE_CAPABILITIES (packed in Linux). */
struct ndis_recv_scale_cap {
	struct ndis_object_header hdr;
	uint32_t cap_flag;
	uint32_t num_int_msg;
	uint32_t num_recv_que; /* Linux opens min(this, CPUs, 64) channels */
	uint16_t num_indirect_tabent;
} __attribute__((packed));
#define NDIS_RECEIVE_SCALE_CAPABILITIES_REVISION_2 2u
#define NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV4 0x00000100u
#define NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV6 0x00000200u

/* OID_GEN_RECEIVE_SCALE_PARAMETERS (set): the indirection table and key
 * at their offsets from the start of this struct. */
struct ndis_recv_scale_param {
	struct ndis_object_header hdr;
	uint16_t flag;
	uint16_t base_cpu_number;
	uint32_t hashinfo;
	uint16_t indirect_tabsize; /* bytes */
	uint32_t indirect_taboffset;
	uint16_t hashkey_size;
	uint32_t hashkey_offset;
	uint32_t processor_masks_offset;
	uint32_t num_processor_masks;
	uint32_t processor_masks_entry_size;
};
#define NDIS_RECEIVE_SCALE_PARAMETERS_REVISION_2 2u
#define NDIS_RSS_PARAM_FLAG_DISABLE_RSS 0x0010u
/* hashinfo: the hash function and the headers it covers (hyperv_net.h);
 * Linux 6.1 asks for Toeplitz over IPv4/IPv6 addresses and TCP ports. */
#define NDIS_HASH_FUNC_TOEPLITZ 0x00000001u
#define NDIS_HASH_IPV4 0x00000100u
#define NDIS_HASH_TCP_IPV4 0x00000200u
#define NDIS_HASH_IPV6 0x00000400u
#define NDIS_HASH_TCP_IPV6 0x00001000u
#define NDIS_RSS_INDIRECTION_TABLE_MAX_SIZE (128u * 4u)
#define NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE 40u
/* The key Linux 6.1 sets (rndis_filter.c netvsc_hash_key), Microsoft's
 * default Toeplitz key, which its RSS verification vectors use: an
 * initializer for uint8_t[NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE]. */
#define NDIS_RSS_DEFAULT_KEY                                                               \
	{                                                                                  \
		0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, \
		0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, \
		0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, \
		0xfa                                                                       \
	}

/* OID_GEN_RNDIS_CONFIG_PARAMETER (set): a name and a value, UTF-16 strings
 * at offsets from the start of this struct. Linux sets the MAC this way
 * ("NetworkAddress", rndis_filter_set_device_mac). */
struct rndis_config_parameter_info {
	uint32_t parameter_name_offset;
	uint32_t parameter_name_length; /* bytes */
	uint32_t parameter_type;        /* 2: string */
	uint32_t parameter_value_offset;
	uint32_t parameter_value_length;
};
#define RNDIS_CONFIG_PARAM_TYPE_INTEGER 0u
#define RNDIS_CONFIG_PARAM_TYPE_STRING 2u

_Static_assert(sizeof(struct rndis_msg_header) == 8, "RNDIS_HEADER_SIZE");
_Static_assert(sizeof(struct rndis_initialize_complete) == 44, "init complete");
_Static_assert(sizeof(struct rndis_query_request) == 20, "query request");
_Static_assert(sizeof(struct rndis_query_complete) == 16, "query complete");
_Static_assert(sizeof(struct rndis_set_request) == 20, "set request");
_Static_assert(sizeof(struct rndis_indicate_status) == 12, "indicate status");
_Static_assert(sizeof(struct rndis_packet) == 36, "rndis_packet");
_Static_assert(offsetof(struct rndis_packet, per_pkt_info_offset) == 20, "ppi offset");
_Static_assert(sizeof(struct rndis_per_packet_info) == 12, "ppi");
_Static_assert(sizeof(struct ndis_csum_offload) == 32, "csum offload");
_Static_assert(sizeof(struct ndis_ipsecv2_offload) == 32, "ipsecv2");
_Static_assert(NDIS_OFFLOAD_SIZE_6_0 == 112, "NDIS_OFFLOAD_SIZE_6_0");
_Static_assert(NDIS_OFFLOAD_SIZE_6_1 == 144, "NDIS_OFFLOAD_SIZE_6_1");
_Static_assert(NDIS_OFFLOAD_SIZE == 156, "NDIS_OFFLOAD_SIZE");
_Static_assert(offsetof(struct ndis_offload, lsov2) == 80, "lsov2");
_Static_assert(sizeof(struct ndis_offload_params) == 28, "offload params");
_Static_assert(offsetof(struct ndis_offload_params, flags) == 16, "params flags");
_Static_assert(sizeof(struct ndis_recv_scale_cap) == 18, "rss caps");
_Static_assert(sizeof(struct ndis_recv_scale_param) == 40, "rss params");
_Static_assert(offsetof(struct ndis_recv_scale_param, hashkey_offset) == 24, "key offset");

#endif /* HVKIT_PROTO_RNDIS_H */
