/* SPDX-License-Identifier: MIT */
/*
 * The CDB parser: input is [cdb_len][16 CDB bytes][buffer bytes...]; the
 * buffer doubles as data-out for writes and UNMAP parameter lists. Runs
 * over a small in-memory disk; the sanitizers catch any stray access.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_disk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 17)
		return 0;
	struct storage_backend be;
	bool ro = data[0] & 0x80;
	if (storage_backend_mem_new(64 * 512, 512, ro, &be))
		return 0;
	struct scsi_disk *d;
	struct scsi_disk_config cfg = {.serial = "fuzz", .max_transfer_bytes = 16384};
	if (scsi_disk_new(&cfg, &be, &d)) {
		storage_backend_close(&be);
		return 0;
	}
	uint8_t cdb[16];
	memcpy(cdb, data + 1, 16);
	size_t blen = size - 17;
	if (blen > 65536)
		blen = 65536;
	/* The buffer in two pieces, to exercise the scatter paths. */
	uint8_t *buf = malloc(blen + 1);
	if (buf) {
		memcpy(buf, data + 17, blen);
		struct iovec v[2] = {{buf, blen / 3}, {buf + blen / 3, blen - blen / 3}};
		struct scsi_data sd = {v, 2, blen};
		struct scsi_result res;
		scsi_disk_execute(d, cdb, data[0] & 0x1f, &sd, &res);
		if (res.status != SCSI_STATUS_GOOD && res.sense_len != SCSI_SENSE_FIXED_LEN)
			abort();
		if (res.transferred > blen)
			abort();
		const uint16_t luns[2] = {0, 3};
		scsi_report_luns(cdb, data[0] & 0x1f, luns, 2, &sd, &res);
		scsi_inquiry_absent(cdb, data[0] & 0x1f, &sd, &res);
		free(buf);
	}
	scsi_disk_free(d);
	return 0;
}
