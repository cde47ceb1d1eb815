/* SPDX-License-Identifier: MIT */
/*
 * A malicious storage controller for storvsc's tests: it initializes like
 * storvsp, then answers each SRB the way byte 1 of its CDB asks
 * (enum evil_mode in evil_storvsp.h): short packets, unknown or repeated
 * transaction ids, wrong operations, oversized sense or transfer lengths,
 * descriptor sense, silence, oversized packets, unsolicited messages.
 * Inline in notify under the device lock; the traffic is tiny.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "evil_storvsp.h"
#include "hvkit/proto/storvsc.h"
#include "hvkit/scsi.h"
#include "hvkit/vmbus_classes.h"

struct evil_storvsp {
	struct vmbus_device *dev;
	uint8_t buf[8192];
	uint64_t silent_id; /* a request left unanswered, answered late */
	bool have_silent;
};

static int evil_open(void *dev, struct vmbus_channel *ch,
		     const uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES])
{
	(void)dev;
	(void)ch;
	(void)user_data;
	return 0;
}

static void evil_close(void *dev, struct vmbus_channel *ch)
{
	(void)dev;
	(void)ch;
}

static void put(struct vmbus_ring_writer *w, uint64_t id, const void *p, uint32_t len)
{
	vmbus_ring_put_completion(w, id, p, len, NULL);
}

static void put_inband(struct vmbus_ring_writer *w, uint32_t op)
{
	struct vstor_packet p = {.operation = op};
	struct vmbus_ring_iov iov = {&p, sizeof(p)};
	vmbus_ring_put_inband(w, 0, 0, &iov, 1, NULL);
}

static void answer_srb(struct evil_storvsp *e, struct vmbus_ring_writer *w, uint64_t id,
		       struct vstor_packet *p)
{
	struct vmscsi_request *r = &p->vm_srb;
	uint8_t mode = r->cdb[0] == SCSI_TEST_UNIT_READY ? r->cdb[1] : 0;
	p->operation = VSTOR_OPERATION_COMPLETE_IO;
	r->srb_status = SRB_STATUS_SUCCESS;
	r->scsi_status = SCSI_STATUS_GOOD;
	if (r->cdb[0] == SCSI_REPORT_LUNS || r->cdb[0] == SCSI_INQUIRY) {
		r->srb_status = SRB_STATUS_INVALID_LUN; /* no disks here */
		r->data_transfer_length = 0;
	}
	if (e->have_silent && mode != EVIL_SILENT) {
		put(w, e->silent_id, p, sizeof(*p)); /* late, for a failed request */
		e->have_silent = false;
	}
	switch (mode) {
	case EVIL_SHORT:
		put(w, id, p, 20);
		return;
	case EVIL_UNKNOWN_ID:
		put(w, id ^ 0x5500000000ull, p, sizeof(*p));
		put(w, 0x77, p, sizeof(*p));
		break;
	case EVIL_WRONG_OP:
		p->operation = VSTOR_OPERATION_EXECUTE_SRB;
		break;
	case EVIL_SENSE_LEN:
		r->scsi_status = SCSI_STATUS_CHECK_CONDITION;
		r->srb_status = SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID;
		r->sense_info_length = 200;
		break;
	case EVIL_XFER_LEN:
		r->data_transfer_length += 4096;
		break;
	case EVIL_SILENT:
		e->silent_id = id;
		e->have_silent = true;
		return;
	case EVIL_DUPLICATE:
		put(w, id, p, sizeof(*p));
		break;
	case EVIL_UNSOLICITED:
		put_inband(w, 0x4242);
		break;
	case EVIL_DESC_SENSE:
	case EVIL_MEDIUM_ERROR:
		r->scsi_status = SCSI_STATUS_CHECK_CONDITION;
		r->srb_status = SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID;
		r->sense_info_length = 18;
		memset(r->sense_data, 0, sizeof(r->sense_data));
		if (mode == EVIL_DESC_SENSE) {
			/* Descriptor format, no descriptors: ILLEGAL REQUEST,
			 * LBA OUT OF RANGE in bytes 1-3. */
			r->sense_data[0] = 0x72;
			r->sense_data[1] = SCSI_SENSE_ILLEGAL_REQUEST;
			r->sense_data[2] = SCSI_ASC_LBA_OUT_OF_RANGE >> 8;
			r->sense_data[3] = SCSI_ASC_LBA_OUT_OF_RANGE & 0xff;
		} else {
			r->sense_data[0] = 0x70;
			r->sense_data[2] = SCSI_SENSE_MEDIUM_ERROR;
			r->sense_data[7] = 10;
			r->sense_data[12] = 0x11;
		}
		r->data_transfer_length = 0;
		break;
	case EVIL_RESCAN:
		put_inband(w, VSTOR_OPERATION_ENUMERATE_BUS);
		break;
	case EVIL_OVERSIZED: {
		/* Bigger than any completion storvsc expects, then nothing. */
		memset(e->buf, 0, 2048);
		memcpy(e->buf, p, sizeof(*p));
		put(w, id, e->buf, 2048);
		return;
	}
	default:
		break;
	}
	put(w, id, p, sizeof(*p));
}

static void evil_notify(void *dev, struct vmbus_channel *ch)
{
	struct evil_storvsp *e = dev;
	struct vmbus_ring_reader *r = vmbus_channel_in(ch);
	struct vmbus_ring_writer *w = vmbus_channel_out(ch);
	struct vmbus_packet pkt;
	while (vmbus_ring_peek(r, e->buf, sizeof(e->buf), &pkt) == 0) {
		struct vstor_packet p = {0};
		memcpy(&p, pkt.data, pkt.data_len < sizeof(p) ? pkt.data_len : sizeof(p));
		vmbus_ring_advance(r);
		if (p.operation == VSTOR_OPERATION_EXECUTE_SRB) {
			answer_srb(e, w, pkt.trans_id, &p);
			continue;
		}
		if (p.operation == VSTOR_OPERATION_QUERY_PROPERTIES) {
			memset(&p.storage_channel_properties, 0, sizeof(p.storage_channel_properties));
			p.storage_channel_properties.max_transfer_bytes = 1 << 20;
		}
		p.operation = VSTOR_OPERATION_COMPLETE_IO;
		p.status = 0;
		put(w, pkt.trans_id, &p, sizeof(p));
	}
	bool signal = vmbus_ring_commit(r);
	signal |= vmbus_ring_publish(w);
	(void)signal;
	vmbus_channel_signal_locked(ch); /* always: the guest may have masked */
}

static const struct vmbus_device_ops evil_ops = {
	.open = evil_open,
	.close = evil_close,
	.notify = evil_notify,
};

int evil_storvsp_add(struct vmbus_server *s, struct evil_storvsp **out)
{
	struct evil_storvsp *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	struct vmbus_device_desc desc = {
		.class_id = VMBUS_CLASS_SCSI,
		.instance_id = HV_GUID(0xe1e1, 0x8e2b, 0x4f45, 0x9c, 0x3e, 0x68, 0x76, 0x6b, 0x69,
				       0x74, 0x66),
		.name = "evil-scsi",
		.ops = &evil_ops,
		.dev = e,
	};
	int err = vmbus_server_add_device(s, &desc, &e->dev);
	if (err) {
		free(e);
		return err;
	}
	*out = e;
	return 0;
}

void evil_storvsp_remove(struct vmbus_server *s, struct evil_storvsp *e)
{
	if (!e)
		return;
	vmbus_server_remove_device(s, e->dev);
	free(e);
}
