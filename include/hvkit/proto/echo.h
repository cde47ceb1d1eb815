/* SPDX-License-Identifier: MIT */
/*
 * hvkit's echo device: a VMBus device for tests and demos, with nothing of
 * Linux behind it. Each in-band packet that asks for a completion is
 * answered with a completion carrying the same payload. A packet whose
 * payload starts with struct vmbus_echo_subchannels asks the host to offer
 * that many more sub-channels instead.
 */
#ifndef HVKIT_PROTO_ECHO_H
#define HVKIT_PROTO_ECHO_H

#include <stdint.h>

#include "hvkit/guid.h"

/* Class 6876c1a0-8e2b-4f45-9c3e-68766b697401; the instance GUID of echo
 * device n is the class GUID with n in its first field. */
#define VMBUS_ECHO_CLASS                                                          \
	HV_GUID(0x6876c1a0, 0x8e2b, 0x4f45, 0x9c, 0x3e, 0x68, 0x76, 0x6b, 0x69, 0x74, 0x01)

#define VMBUS_ECHO_SUBCHANNELS 0x53554243u /* "CBUS" */

struct vmbus_echo_subchannels {
	uint32_t command; /* VMBUS_ECHO_SUBCHANNELS */
	uint32_t count;
};

_Static_assert(sizeof(struct vmbus_echo_subchannels) == 8, "echo command");

#endif /* HVKIT_PROTO_ECHO_H */
