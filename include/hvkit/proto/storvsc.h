/* SPDX-License-Identifier: MIT */
/*
 * VSTOR: the protocol of the synthetic SCSI controller (class
 * VMBUS_CLASS_SCSI) between storvsc in the guest and storvsp in the host.
 *
 * Checked against Linux 6.1 drivers/scsi/storvsc_drv.c (struct
 * vstor_packet, vmscsi_request, vmstorage_channel_properties,
 * vmstorage_protocol_version, enum vstor_packet_operation, the SRB flag and
 * status values, storvsc_channel_init for the init sequence). The pre-Win8
 * sizes (vmscsi_size_delta, the 0x12-byte sense buffer) are from the same
 * file before Linux 5.14 dropped the Win7/Win6 protocols; 6.1 negotiates
 * only WIN10, WIN8_1 and WIN8, but older guests still ask for WIN7/WIN6.
 *
 * Every packet is an in-band VMBus packet carrying one struct vstor_packet
 * (sizeof(struct vstor_packet) minus vmscsi_size_delta bytes before Win8);
 * an EXECUTE_SRB that moves data is instead a GPA-direct packet (Linux's
 * vmbus_sendpacket_mpb_desc: one multi-page range) with the same payload.
 * The host answers each request with a completion packet whose payload is
 * a vstor_packet with operation COMPLETE_IO.
 */
#ifndef HVKIT_PROTO_STORVSC_H
#define HVKIT_PROTO_STORVSC_H

#include <stddef.h>
#include <stdint.h>

#define VSTOR_PROTO_VERSION(major, minor) ((uint16_t)((((major)&0xff) << 8) | ((minor)&0xff)))
#define VSTOR_PROTO_VERSION_WIN6 VSTOR_PROTO_VERSION(2, 0)
#define VSTOR_PROTO_VERSION_WIN7 VSTOR_PROTO_VERSION(4, 2)
#define VSTOR_PROTO_VERSION_WIN8 VSTOR_PROTO_VERSION(5, 1)
#define VSTOR_PROTO_VERSION_WIN8_1 VSTOR_PROTO_VERSION(6, 0)
#define VSTOR_PROTO_VERSION_WIN10 VSTOR_PROTO_VERSION(6, 2)

enum vstor_operation {
	VSTOR_OPERATION_COMPLETE_IO = 1,
	VSTOR_OPERATION_REMOVE_DEVICE = 2,
	VSTOR_OPERATION_EXECUTE_SRB = 3,
	VSTOR_OPERATION_RESET_LUN = 4,
	VSTOR_OPERATION_RESET_ADAPTER = 5,
	VSTOR_OPERATION_RESET_BUS = 6,
	VSTOR_OPERATION_BEGIN_INITIALIZATION = 7,
	VSTOR_OPERATION_END_INITIALIZATION = 8,
	VSTOR_OPERATION_QUERY_PROTOCOL_VERSION = 9,
	VSTOR_OPERATION_QUERY_PROPERTIES = 10,
	VSTOR_OPERATION_ENUMERATE_BUS = 11,
	VSTOR_OPERATION_FCHBA_DATA = 12,
	VSTOR_OPERATION_CREATE_SUB_CHANNELS = 13,
	VSTOR_OPERATION_MAXIMUM = 13,
};

/* vstor_packet.flags: the sender wants a completion. */
#define VSTOR_REQUEST_COMPLETION_FLAG 0x1u

/* CDBs up to 16 bytes; the sense buffer is 0x14 bytes from Win8, 0x12
 * before (PRE_WIN8 in older Linux). */
#define VSTOR_MAX_CMD_LEN 0x10
#define VSTOR_SENSE_BUFFER_SIZE 0x14
#define VSTOR_SENSE_BUFFER_SIZE_PRE_WIN8 0x12

/* vmscsi_request.data_in (Linux enum storvsc_request_type). */
enum vstor_data_direction {
	VSTOR_DATA_WRITE = 0,
	VSTOR_DATA_READ = 1,
	VSTOR_DATA_UNKNOWN = 2,
};

/* The SCSI request block (Linux struct vmscsi_request). The last 16
 * bytes (from `reserve`) were added with Win8: before it the request is
 * VMSCSI_REQUEST_SIZE_PRE_WIN8 bytes and every packet that much shorter. */
struct vmscsi_request {
	uint16_t length; /* sizeof(struct vmscsi_request) as the guest built it */
	uint8_t srb_status;
	uint8_t scsi_status;

	uint8_t port_number;
	uint8_t path_id;
	uint8_t target_id;
	uint8_t lun;

	uint8_t cdb_length;
	uint8_t sense_info_length;
	uint8_t data_in;
	uint8_t reserved;

	uint32_t data_transfer_length;

	/* The CDB on the way in; the sense data on the way back. */
	union {
		uint8_t cdb[VSTOR_MAX_CMD_LEN];
		uint8_t sense_data[VSTOR_SENSE_BUFFER_SIZE];
		uint8_t reserved_array[VSTOR_SENSE_BUFFER_SIZE];
	};

	/* Win8 extension (struct vmscsi_win8_extension in older Linux). */
	uint16_t reserve;
	uint8_t queue_tag;
	uint8_t queue_action;
	uint32_t srb_flags;
	uint32_t time_out_value;
	uint32_t queue_sort_key;
} __attribute__((packed));

_Static_assert(sizeof(struct vmscsi_request) == 52, "vmscsi_request");
_Static_assert(offsetof(struct vmscsi_request, data_transfer_length) == 12, "vmscsi xfer");
_Static_assert(offsetof(struct vmscsi_request, cdb) == 16, "vmscsi cdb");
_Static_assert(offsetof(struct vmscsi_request, reserve) == 36, "vmscsi win8 ext");
_Static_assert(offsetof(struct vmscsi_request, srb_flags) == 40, "vmscsi srb_flags");

/* Linux's vmscsi_size_delta for protocols before Win8. */
#define VMSCSI_WIN8_EXTENSION_SIZE 16u
#define VMSCSI_REQUEST_SIZE_PRE_WIN8 (sizeof(struct vmscsi_request) - VMSCSI_WIN8_EXTENSION_SIZE)

/* QUERY_PROPERTIES answer (struct vmstorage_channel_properties). */
struct vmstorage_channel_properties {
	uint32_t reserved;
	uint16_t max_channel_cnt; /* sub-channels the guest may ask for */
	uint16_t reserved1;
	uint32_t flags;           /* VSTOR_PROPERTY_* */
	uint32_t max_transfer_bytes;
	uint64_t reserved2;
} __attribute__((packed));

_Static_assert(sizeof(struct vmstorage_channel_properties) == 24, "channel properties");
_Static_assert(offsetof(struct vmstorage_channel_properties, max_channel_cnt) == 4, "max chn");
_Static_assert(offsetof(struct vmstorage_channel_properties, max_transfer_bytes) == 12, "max xfer");

/* vmstorage_channel_properties.flags */
#define VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL 0x1u

/* Channel property flags of the offer (STORAGE_CHANNEL_*_FLAG). */
#define VSTOR_CHANNEL_REMOVABLE_FLAG 0x1u
#define VSTOR_CHANNEL_EMULATED_IDE_FLAG 0x2u

/* QUERY_PROTOCOL_VERSION request (struct vmstorage_protocol_version). */
struct vmstorage_protocol_version {
	uint16_t major_minor;
	uint16_t revision; /* Windows only; Linux sends 0 */
} __attribute__((packed));

_Static_assert(sizeof(struct vmstorage_protocol_version) == 4, "protocol version");

/* FCHBA_DATA answer (struct hv_fc_wwn_packet). */
struct vstor_fc_wwn {
	uint8_t primary_active;
	uint8_t reserved1[3];
	uint8_t primary_port_wwn[8];
	uint8_t primary_node_wwn[8];
	uint8_t secondary_port_wwn[8];
	uint8_t secondary_node_wwn[8];
} __attribute__((packed));

_Static_assert(sizeof(struct vstor_fc_wwn) == 36, "fc wwn");

struct vstor_packet {
	uint32_t operation; /* enum vstor_operation */
	uint32_t flags;     /* VSTOR_REQUEST_COMPLETION_FLAG */
	uint32_t status;    /* 0 success; set by the host */
	union {
		struct vmscsi_request vm_srb;
		struct vmstorage_channel_properties storage_channel_properties;
		struct vmstorage_protocol_version version;
		struct vstor_fc_wwn wwn_packet;
		uint16_t sub_channel_count;
		uint8_t buffer[0x34];
	};
} __attribute__((packed));

_Static_assert(sizeof(struct vstor_packet) == 64, "vstor_packet");
_Static_assert(offsetof(struct vstor_packet, vm_srb) == 12, "vstor_packet payload");

/* The packet as a pre-Win8 peer sends and expects it. */
#define VSTOR_PACKET_SIZE_PRE_WIN8 (sizeof(struct vstor_packet) - VMSCSI_WIN8_EXTENSION_SIZE)
_Static_assert(VSTOR_PACKET_SIZE_PRE_WIN8 == 48, "pre-Win8 vstor_packet");

/* A non-zero vstor_packet.status: Windows hosts answer a refused request
 * with an NTSTATUS; Linux only checks for non-zero. */
#define VSTOR_STATUS_SUCCESS 0u
#define VSTOR_STATUS_INVALID_DEVICE_STATE 0xC0000184u  /* STATUS_INVALID_DEVICE_STATE */
#define VSTOR_STATUS_REVISION_MISMATCH 0xC0000059u     /* STATUS_REVISION_MISMATCH */
#define VSTOR_STATUS_INVALID_PARAMETER 0xC000000Du     /* STATUS_INVALID_PARAMETER */
#define VSTOR_STATUS_NOT_SUPPORTED 0xC00000BBu         /* STATUS_NOT_SUPPORTED */

/* vmscsi_request.srb_flags (SRB_FLAGS_*). */
#define SRB_FLAGS_QUEUE_ACTION_ENABLE 0x00000002u
#define SRB_FLAGS_DISABLE_DISCONNECT 0x00000004u
#define SRB_FLAGS_DISABLE_SYNCH_TRANSFER 0x00000008u
#define SRB_FLAGS_BYPASS_FROZEN_QUEUE 0x00000010u
#define SRB_FLAGS_DISABLE_AUTOSENSE 0x00000020u
#define SRB_FLAGS_DATA_IN 0x00000040u
#define SRB_FLAGS_DATA_OUT 0x00000080u
#define SRB_FLAGS_NO_DATA_TRANSFER 0x00000000u
#define SRB_FLAGS_UNSPECIFIED_DIRECTION (SRB_FLAGS_DATA_IN | SRB_FLAGS_DATA_OUT)
#define SRB_FLAGS_NO_QUEUE_FREEZE 0x00000100u
#define SRB_FLAGS_ADAPTER_CACHE_ENABLE 0x00000200u
#define SRB_FLAGS_FREE_SENSE_BUFFER 0x00000400u
#define SRB_FLAGS_D3_PROCESSING 0x00000800u

#define SRB_SIMPLE_TAG_REQUEST 0x20u

/* vmscsi_request.srb_status: a 6-bit code and two flag bits. */
#define SRB_STATUS_AUTOSENSE_VALID 0x80u
#define SRB_STATUS_QUEUE_FROZEN 0x40u
#define SRB_STATUS_CODE(s) ((uint8_t)((s) & ~(SRB_STATUS_AUTOSENSE_VALID | SRB_STATUS_QUEUE_FROZEN)))

#define SRB_STATUS_PENDING 0x00u
#define SRB_STATUS_SUCCESS 0x01u
#define SRB_STATUS_ABORTED 0x02u
#define SRB_STATUS_ERROR 0x04u
#define SRB_STATUS_INVALID_REQUEST 0x06u
#define SRB_STATUS_NO_DEVICE 0x08u
#define SRB_STATUS_DATA_OVERRUN 0x12u
#define SRB_STATUS_INVALID_LUN 0x20u

/* storvsc's limits (STORVSC_MAX_*): targets and channels (paths) the guest
 * addresses with target_id/path_id; LUNs per target. */
#define VSTOR_MAX_LUNS_PER_TARGET 255u
#define VSTOR_MAX_TARGETS 2u
#define VSTOR_MAX_CHANNELS 8u

#endif /* HVKIT_PROTO_STORVSC_H */
