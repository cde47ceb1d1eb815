/* SPDX-License-Identifier: MIT */
/*
 * storvsc's pure part: building VSTOR packets and judging what the host
 * sends back (no channel, no locks), so it can be fuzzed and unit-tested.
 * Sizes per version as Linux's storvsc_drv.c (before 5.14 for WIN7/WIN6).
 */
#ifndef HVKIT_STORVSC_PROTO_H
#define HVKIT_STORVSC_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "hvkit/proto/storvsc.h"
#include "storvsc.h"

/* Bytes of a vstor_packet, and of the sense buffer, at this version. */
uint32_t storvsc_packet_size(uint16_t version);
uint32_t storvsc_sense_size(uint16_t version);

/* An EXECUTE_SRB to path 0 / target 0 / lun. */
void storvsc_build_srb(struct vstor_packet *p, uint16_t version, uint8_t lun, const uint8_t *cdb,
		       uint8_t cdb_len, bool data_in, uint32_t xfer);

/* What a completion said. */
struct storvsc_completion {
	uint32_t status;       /* vstor_packet.status */
	uint8_t srb_status, scsi_status;
	uint32_t transferred;
	struct storvsc_sense sense;
	struct vstor_packet pkt; /* the packet, zero-padded to 64 bytes */
};

/*
 * Checks a completion payload: at least the version's packet size,
 * operation COMPLETE_IO. For an SRB (xfer: the bytes asked for) also the
 * SRB's own length field, sense_info_length within the version's sense
 * buffer and data_transfer_length at most xfer. 0 or -EBADMSG.
 */
int storvsc_parse_completion(const void *data, uint32_t len, uint16_t version, bool srb,
			     uint32_t xfer, struct storvsc_completion *out);

/* The SRB outcome as an errno (see storvsc.h). */
int storvsc_srb_errno(const struct storvsc_completion *c);

/* Fixed-format sense (response code 0x70/0x71) of len bytes; false if it
 * is not fixed-format or too short to hold the key (descriptor format is
 * not used by storvsp nor Hyper-V). */
bool storvsc_decode_sense(const uint8_t *sense, uint32_t len, struct storvsc_sense *out);
int storvsc_sense_errno(const struct storvsc_sense *s);

/* Parses REPORT LUNS data (len bytes returned): LUNs of single-level
 * peripheral addressing below max, into luns (at most cap). Count. */
uint32_t storvsc_parse_report_luns(const uint8_t *data, uint32_t len, uint8_t *luns,
				   uint32_t cap, uint32_t max);

/* The serial number in a Unit Serial Number VPD page (len bytes
 * returned) into out (size bytes, NUL-terminated): bytes past the page,
 * the transfer or size - 1 are cut, non-printable ones become '?', and
 * trailing blanks go. Its length; 0 if the page is not 0x80 or short. */
uint32_t storvsc_parse_serial(const uint8_t *vpd, uint32_t len, char *out, uint32_t size);

#endif /* HVKIT_STORVSC_PROTO_H */
