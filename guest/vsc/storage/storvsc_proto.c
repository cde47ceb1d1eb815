/* SPDX-License-Identifier: MIT */
/* storvsc's packet building and completion checks (storvsc_proto.h). */
#include <errno.h>
#include <string.h>

#include "hvkit/scsi.h"
#include "storvsc_proto.h"

uint32_t storvsc_packet_size(uint16_t version)
{
	return version >= VSTOR_PROTO_VERSION_WIN8 ? (uint32_t)sizeof(struct vstor_packet)
						   : (uint32_t)VSTOR_PACKET_SIZE_PRE_WIN8;
}

uint32_t storvsc_sense_size(uint16_t version)
{
	return version >= VSTOR_PROTO_VERSION_WIN8 ? VSTOR_SENSE_BUFFER_SIZE
						   : VSTOR_SENSE_BUFFER_SIZE_PRE_WIN8;
}

void storvsc_build_srb(struct vstor_packet *p, uint16_t version, uint8_t lun, const uint8_t *cdb,
		       uint8_t cdb_len, bool data_in, uint32_t xfer)
{
	memset(p, 0, sizeof(*p));
	p->operation = VSTOR_OPERATION_EXECUTE_SRB;
	p->flags = VSTOR_REQUEST_COMPLETION_FLAG;
	struct vmscsi_request *r = &p->vm_srb;
	/* The SRB's length is the size the guest's version knows (Linux:
	 * sizeof(struct vmscsi_request) - vmscsi_size_delta). */
	r->length = (uint16_t)(storvsc_packet_size(version) - offsetof(struct vstor_packet, vm_srb));
	r->lun = lun;
	r->cdb_length = cdb_len;
	memcpy(r->cdb, cdb, cdb_len);
	r->sense_info_length = (uint8_t)storvsc_sense_size(version);
	r->data_transfer_length = xfer;
	if (!xfer) {
		r->data_in = VSTOR_DATA_UNKNOWN;
		r->srb_flags = SRB_FLAGS_NO_DATA_TRANSFER;
	} else if (data_in) {
		r->data_in = VSTOR_DATA_READ;
		r->srb_flags = SRB_FLAGS_DATA_IN;
	} else {
		r->data_in = VSTOR_DATA_WRITE;
		r->srb_flags = SRB_FLAGS_DATA_OUT;
	}
	/* As Linux: simple-tag queueing, no disconnect/sync negotiation. */
	r->queue_action = SRB_SIMPLE_TAG_REQUEST;
	r->srb_flags |= SRB_FLAGS_QUEUE_ACTION_ENABLE | SRB_FLAGS_DISABLE_SYNCH_TRANSFER;
}

int storvsc_parse_completion(const void *data, uint32_t len, uint16_t version, bool srb,
			     uint32_t xfer, struct storvsc_completion *out)
{
	memset(out, 0, sizeof(*out));
	uint32_t need = storvsc_packet_size(version);
	if (!data || len < need)
		return -EBADMSG;
	memcpy(&out->pkt, data, len < sizeof(out->pkt) ? len : sizeof(out->pkt));
	if (out->pkt.operation != VSTOR_OPERATION_COMPLETE_IO)
		return -EBADMSG;
	out->status = out->pkt.status;
	if (!srb)
		return 0;
	const struct vmscsi_request *r = &out->pkt.vm_srb;
	/* A sense length past the buffer or a transfer past what was asked
	 * would make us read or report beyond the request. */
	if (r->sense_info_length > storvsc_sense_size(version) || r->data_transfer_length > xfer)
		return -EBADMSG;
	out->srb_status = r->srb_status;
	out->scsi_status = r->scsi_status;
	out->transferred = r->data_transfer_length;
	if (r->scsi_status == SCSI_STATUS_CHECK_CONDITION &&
	    (r->srb_status & SRB_STATUS_AUTOSENSE_VALID))
		storvsc_decode_sense(r->sense_data, r->sense_info_length, &out->sense);
	return 0;
}

/* SPC-4 4.5.2: descriptor format (0x72 current, 0x73 deferred) has the
 * key, ASC and ASCQ in bytes 1-3 (Linux: scsi_common.c
 * scsi_normalize_sense); the descriptors after them are not needed. */
static bool decode_descriptor_sense(const uint8_t *sense, uint32_t len,
				    struct storvsc_sense *out)
{
	if (len < 2)
		return false;
	out->valid = true;
	out->key = sense[1] & 0x0f;
	if (len >= 4) {
		out->asc = sense[2];
		out->ascq = sense[3];
	}
	return true;
}

bool storvsc_decode_sense(const uint8_t *sense, uint32_t len, struct storvsc_sense *out)
{
	memset(out, 0, sizeof(*out));
	if (len < 1)
		return false;
	uint8_t rc = sense[0] & 0x7f;
	if (rc == 0x72 || rc == 0x73)
		return decode_descriptor_sense(sense, len, out);
	/* Fixed format (0x70 current, 0x71 deferred): the key in byte 2. */
	if ((rc != 0x70 && rc != 0x71) || len < 3)
		return false;
	out->valid = true;
	out->key = sense[2] & 0x0f;
	/* ASC/ASCQ exist if the additional length reaches them. */
	uint32_t avail = len >= 8 ? 8u + sense[7] : len;
	if (avail > len)
		avail = len;
	if (avail >= 14) {
		out->asc = sense[12];
		out->ascq = sense[13];
	}
	return true;
}

int storvsc_sense_errno(const struct storvsc_sense *s)
{
	if (!s->valid)
		return -EIO;
	uint16_t asc = (uint16_t)(s->asc << 8 | s->ascq);
	switch (s->key) {
	case SCSI_SENSE_NO_SENSE:
	case SCSI_SENSE_RECOVERED_ERROR:
		return 0;
	case SCSI_SENSE_ILLEGAL_REQUEST:
		if (asc == SCSI_ASC_LBA_OUT_OF_RANGE)
			return -ERANGE;
		if (s->asc == (SCSI_ASC_LUN_NOT_SUPPORTED >> 8))
			return -ENODEV;
		return -EINVAL;
	case SCSI_SENSE_DATA_PROTECT:
		return -EROFS;
	case SCSI_SENSE_NOT_READY:
	case SCSI_SENSE_UNIT_ATTENTION:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

int storvsc_srb_errno(const struct storvsc_completion *c)
{
	if (c->status)
		return -EIO;
	if (c->scsi_status == SCSI_STATUS_CHECK_CONDITION) {
		int e = storvsc_sense_errno(&c->sense);
		return e ? e : -EIO;
	}
	if (c->scsi_status != SCSI_STATUS_GOOD)
		return -EIO; /* BUSY and the like */
	switch (SRB_STATUS_CODE(c->srb_status)) {
	case SRB_STATUS_SUCCESS:
	case SRB_STATUS_DATA_OVERRUN: /* an underrun: transferred tells */
		return 0;
	case SRB_STATUS_INVALID_LUN:
	case SRB_STATUS_NO_DEVICE:
		return -ENODEV;
	case SRB_STATUS_INVALID_REQUEST:
		return -EINVAL;
	default:
		return -EIO;
	}
}

uint32_t storvsc_parse_report_luns(const uint8_t *data, uint32_t len, uint8_t *luns,
				   uint32_t cap, uint32_t max)
{
	if (len < 8)
		return 0;
	uint32_t list = scsi_get_be32(data);
	if (list > len - 8)
		list = len - 8; /* truncated by the allocation length */
	uint32_t n = 0;
	for (uint32_t off = 8; off + 8 <= 8 + list && n < cap; off += 8) {
		const uint8_t *l = data + off;
		/* Peripheral device addressing, bus 0: 00 LL 00 00 00 00 00 00. */
		if (l[0] != 0 || l[1] >= max)
			continue;
		bool dup = false;
		for (uint32_t i = 0; i < n; i++)
			dup |= luns[i] == l[1];
		if (!dup)
			luns[n++] = l[1];
	}
	return n;
}

uint32_t storvsc_parse_serial(const uint8_t *vpd, uint32_t len, char *out, uint32_t size)
{
	if (!size)
		return 0;
	out[0] = 0;
	/* SPC-4 7.8.18: page code at 1, page length at 2..3, serial from 4. */
	if (len < 4 || vpd[1] != SCSI_VPD_UNIT_SERIAL)
		return 0;
	uint32_t n = ((uint32_t)vpd[2] << 8) | vpd[3];
	if (n > len - 4)
		n = len - 4;
	if (n > size - 1)
		n = size - 1;
	for (uint32_t i = 0; i < n; i++)
		out[i] = vpd[4 + i] >= 0x20 && vpd[4 + i] < 0x7f ? (char)vpd[4 + i] : '?';
	while (n && out[n - 1] == ' ')
		n--;
	out[n] = 0;
	return n;
}
