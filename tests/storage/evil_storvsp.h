/* SPDX-License-Identifier: MIT */
/* A malicious storage controller (evil_storvsp.c) and the misbehaviours a
 * guest asks of it: TEST UNIT READY with the mode in CDB byte 1. Shared by
 * the host test and the guest program. */
#ifndef HVKIT_EVIL_STORVSP_H
#define HVKIT_EVIL_STORVSP_H

enum evil_mode {
	EVIL_NONE = 0,       /* a proper completion */
	EVIL_SHORT,          /* a 20-byte completion */
	EVIL_UNKNOWN_ID,     /* two completions with ids never sent, then the right one */
	EVIL_WRONG_OP,       /* operation EXECUTE_SRB in the completion */
	EVIL_SENSE_LEN,      /* sense_info_length 200 */
	EVIL_XFER_LEN,       /* 4 KiB more transferred than asked */
	EVIL_SILENT,         /* no answer (answered late, with the next request) */
	EVIL_DUPLICATE,      /* the completion twice */
	EVIL_UNSOLICITED,    /* an unknown in-band operation first */
	EVIL_DESC_SENSE,     /* CHECK CONDITION with descriptor-format sense */
	EVIL_MEDIUM_ERROR,   /* CHECK CONDITION, fixed sense MEDIUM ERROR / 0x11 */
	EVIL_RESCAN,         /* ENUMERATE_BUS first */
	EVIL_OVERSIZED,      /* a 2 KiB completion, nothing else */
};

#ifndef HVKIT_EVIL_STORVSP_GUEST
#include "vmbus_device.h"
struct evil_storvsp;
int evil_storvsp_add(struct vmbus_server *s, struct evil_storvsp **out);
void evil_storvsp_remove(struct vmbus_server *s, struct evil_storvsp *e);
#endif

#endif /* HVKIT_EVIL_STORVSP_H */
