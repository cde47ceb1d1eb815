/* SPDX-License-Identifier: MIT */
/*
 * storvsc's judgement of what the host sends: input is
 * [version index][srb flag][xfer: 4 bytes LE][completion payload...]; the
 * payload goes through storvsc_parse_completion and storvsc_srb_errno, and
 * also through the sense decoder, the REPORT LUNS parser and the serial
 * number parser (the other places host bytes are read). Every result must
 * be one storvsc.h names.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storvsc_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t versions[] = {VSTOR_PROTO_VERSION_WIN10, VSTOR_PROTO_VERSION_WIN8_1,
				    VSTOR_PROTO_VERSION_WIN8, VSTOR_PROTO_VERSION_WIN7,
				    VSTOR_PROTO_VERSION_WIN6};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 6)
		return 0;
	uint16_t version = versions[data[0] % 5];
	bool srb = data[1] & 1;
	uint32_t xfer;
	memcpy(&xfer, data + 2, 4);
	/* A copy of exactly the payload, so reads past it are caught. */
	size_t len = size - 6;
	uint8_t *p = malloc(len ? len : 1);
	if (!p)
		return 0;
	memcpy(p, data + 6, len);
	struct storvsc_completion c;
	int err = storvsc_parse_completion(p, (uint32_t)len, version, srb, xfer, &c);
	if (err == 0) {
		if (srb && (c.transferred > xfer || c.pkt.vm_srb.sense_info_length >
							   storvsc_sense_size(version)))
			abort();
		int e = storvsc_srb_errno(&c);
		if (e != 0 && e != -EIO && e != -ERANGE && e != -EROFS && e != -EINVAL &&
		    e != -ENODEV && e != -EAGAIN)
			abort();
	} else if (err != -EBADMSG) {
		abort();
	}
	struct storvsc_sense s;
	if (storvsc_decode_sense(p, (uint32_t)len, &s) && (s.key > 15 || !s.valid))
		abort();
	uint8_t luns[16];
	if (storvsc_parse_report_luns(p, (uint32_t)len, luns, 16, 16) > 16)
		abort();
	char serial[STORVSC_SERIAL_MAX + 1];
	uint32_t n = storvsc_parse_serial(p, (uint32_t)len, serial, sizeof(serial));
	if (n > STORVSC_SERIAL_MAX || strlen(serial) != n)
		abort();
	for (uint32_t i = 0; i < n; i++)
		if (serial[i] < 0x20 || serial[i] > 0x7e)
			abort();
	free(p);
	return 0;
}
