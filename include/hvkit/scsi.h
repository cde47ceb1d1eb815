/* SPDX-License-Identifier: MIT */
/*
 * The SCSI bits hvkit's disks speak: opcodes, status, sense keys and
 * additional sense codes, VPD page numbers, mode pages, and the
 * fixed-format sense data. Values from SPC-4/SBC-3 as Linux 6.1 names them
 * in include/scsi/scsi_proto.h (opcodes, SAM status, sense keys, TYPE_*)
 * and drivers/scsi/sd.c / sd.h (the VPD pages and mode pages sd asks for);
 * the fixed sense layout as include/scsi/scsi_common.h scsi_build_sense_buffer
 * writes it.
 */
#ifndef HVKIT_SCSI_H
#define HVKIT_SCSI_H

#include <stddef.h>
#include <stdint.h>

/* ---- Opcodes ---- */
#define SCSI_TEST_UNIT_READY 0x00
#define SCSI_REQUEST_SENSE 0x03
#define SCSI_READ_6 0x08
#define SCSI_WRITE_6 0x0a
#define SCSI_INQUIRY 0x12
#define SCSI_MODE_SELECT_6 0x15
#define SCSI_MODE_SENSE_6 0x1a
#define SCSI_START_STOP_UNIT 0x1b
#define SCSI_SEND_DIAGNOSTIC 0x1d
#define SCSI_PREVENT_ALLOW_MEDIUM_REMOVAL 0x1e
#define SCSI_READ_CAPACITY_10 0x25
#define SCSI_READ_10 0x28
#define SCSI_WRITE_10 0x2a
#define SCSI_VERIFY_10 0x2f
#define SCSI_SYNCHRONIZE_CACHE_10 0x35
#define SCSI_WRITE_SAME_10 0x41
#define SCSI_UNMAP 0x42
#define SCSI_MODE_SELECT_10 0x55
#define SCSI_MODE_SENSE_10 0x5a
#define SCSI_READ_16 0x88
#define SCSI_WRITE_16 0x8a
#define SCSI_SYNCHRONIZE_CACHE_16 0x91
#define SCSI_WRITE_SAME_16 0x93
#define SCSI_SERVICE_ACTION_IN_16 0x9e
#define SCSI_SAI_READ_CAPACITY_16 0x10 /* service action of 0x9e */
#define SCSI_REPORT_LUNS 0xa0
#define SCSI_MAINTENANCE_IN 0xa3
#define SCSI_READ_12 0xa8
#define SCSI_WRITE_12 0xaa

/* ---- SAM status ---- */
#define SCSI_STATUS_GOOD 0x00
#define SCSI_STATUS_CHECK_CONDITION 0x02
#define SCSI_STATUS_BUSY 0x08

/* ---- Sense keys ---- */
#define SCSI_SENSE_NO_SENSE 0x0
#define SCSI_SENSE_RECOVERED_ERROR 0x1
#define SCSI_SENSE_NOT_READY 0x2
#define SCSI_SENSE_MEDIUM_ERROR 0x3
#define SCSI_SENSE_HARDWARE_ERROR 0x4
#define SCSI_SENSE_ILLEGAL_REQUEST 0x5
#define SCSI_SENSE_UNIT_ATTENTION 0x6
#define SCSI_SENSE_DATA_PROTECT 0x7
#define SCSI_SENSE_ABORTED_COMMAND 0xb

/* ---- Additional sense code and qualifier, as (asc << 8 | ascq) ---- */
#define SCSI_ASC_NONE 0x0000
#define SCSI_ASC_WRITE_ERROR 0x0c00
#define SCSI_ASC_READ_ERROR 0x1100            /* unrecovered read error */
#define SCSI_ASC_PARAMETER_LIST_LENGTH 0x1a00 /* parameter list length error */
#define SCSI_ASC_INVALID_OPCODE 0x2000        /* invalid command operation code */
#define SCSI_ASC_LBA_OUT_OF_RANGE 0x2100
#define SCSI_ASC_INVALID_FIELD_IN_CDB 0x2400
#define SCSI_ASC_LUN_NOT_SUPPORTED 0x2500
#define SCSI_ASC_INVALID_FIELD_IN_PARAM 0x2600
#define SCSI_ASC_WRITE_PROTECTED 0x2700
#define SCSI_ASC_POWER_ON_RESET 0x2900
#define SCSI_ASC_CAPACITY_CHANGED 0x2a09
#define SCSI_ASC_SAVING_NOT_SUPPORTED 0x3900
#define SCSI_ASC_INTERNAL_TARGET_FAILURE 0x4400
#define SCSI_ASC_REPORTED_LUNS_CHANGED 0x3f0e

/* ---- INQUIRY ---- */
#define SCSI_TYPE_DISK 0x00
#define SCSI_PQ_NOT_CONNECTED 0x7f /* peripheral qualifier 3, type 0x1f */
#define SCSI_INQUIRY_EVPD 0x01
#define SCSI_VERSION_SPC4 0x06
#define SCSI_INQUIRY_STANDARD_LEN 36

/* Vital product data pages (sd.c, scsi.c scsi_attach_vpd). */
#define SCSI_VPD_SUPPORTED_PAGES 0x00
#define SCSI_VPD_UNIT_SERIAL 0x80
#define SCSI_VPD_DEVICE_ID 0x83
#define SCSI_VPD_BLOCK_LIMITS 0xb0
#define SCSI_VPD_BLOCK_DEV_CHARS 0xb1
#define SCSI_VPD_LOGICAL_BLOCK_PROV 0xb2

/* ---- MODE SENSE ---- */
#define SCSI_MODE_PAGE_CACHING 0x08
#define SCSI_MODE_PAGE_CONTROL 0x0a
#define SCSI_MODE_PAGE_ALL 0x3f
/* Page control (CDB byte 2 bits 7-6). */
#define SCSI_MODE_PC_CURRENT 0
#define SCSI_MODE_PC_CHANGEABLE 1
#define SCSI_MODE_PC_DEFAULT 2
#define SCSI_MODE_PC_SAVED 3
/* Device-specific parameter of the mode header: write protected. */
#define SCSI_MODE_DSP_WP 0x80
/* DPOFUA in the device-specific parameter: FUA and DPO are honoured. */
#define SCSI_MODE_DSP_DPOFUA 0x10

/* ---- Fixed-format sense data (SPC-4 4.5.3) ---- */
#define SCSI_SENSE_FIXED_CURRENT 0x70
#define SCSI_SENSE_FIXED_LEN 18 /* with additional length 10 */

struct scsi_sense_fixed {
	uint8_t response_code; /* 0x70 current; bit 7: information valid */
	uint8_t obsolete;
	uint8_t sense_key;     /* bits 3-0; ILI, EOM, FILEMARK above */
	uint8_t information[4];
	uint8_t additional_length; /* bytes after this one: 10 */
	uint8_t cmd_specific[4];
	uint8_t asc;
	uint8_t ascq;
	uint8_t fru;
	uint8_t sks[3]; /* sense-key specific; bit 7 of sks[0]: valid */
};

_Static_assert(sizeof(struct scsi_sense_fixed) == SCSI_SENSE_FIXED_LEN, "fixed sense");
_Static_assert(offsetof(struct scsi_sense_fixed, asc) == 12, "fixed sense asc");

/* ---- Big-endian fields of CDBs and parameter data ---- */
static inline uint16_t scsi_get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t scsi_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t scsi_get_be64(const uint8_t *p)
{
	return (uint64_t)scsi_get_be32(p) << 32 | scsi_get_be32(p + 4);
}

static inline void scsi_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void scsi_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void scsi_put_be64(uint8_t *p, uint64_t v)
{
	scsi_put_be32(p, (uint32_t)(v >> 32));
	scsi_put_be32(p + 4, (uint32_t)v);
}

#endif /* HVKIT_SCSI_H */
