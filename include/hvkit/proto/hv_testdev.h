/* SPDX-License-Identifier: MIT */
/*
 * QEMU's Hyper-V test device ("hyperv-testdev", hw/misc/hyperv_testdev.c),
 * the host half of kvm-unit-tests' x86/hyperv_synic.c and
 * x86/hyperv_connections.c. One 32-bit write-only port; reads give 0.
 *
 * A command word is
 *     bits  7:0  SINT
 *     bits 15:8  VP index
 *     bits 23:16 operation (HV_TESTDEV_*)
 *     bits 31:24 connection id (message and event connections)
 * as kvm-unit-tests' synic_ctl() builds it (checked against QEMU's
 * hv_test_dev_write and kvm-unit-tests lib/x86/hyperv.h).
 */
#ifndef HVKIT_PROTO_HV_TESTDEV_H
#define HVKIT_PROTO_HV_TESTDEV_H

#include <stdint.h>

#define HV_TESTDEV_PORT 0x3000

enum hv_testdev_op {
	/* A route to (VP, SINT): what the other operations deliver to. */
	HV_TESTDEV_SINT_ROUTE_CREATE = 1,
	HV_TESTDEV_SINT_ROUTE_DESTROY = 2,
	/* Raise the SINT's interrupt once (no message, no flag). */
	HV_TESTDEV_SINT_ROUTE_SET_SINT = 3,
	/* HvPostMessage to the connection id is posted back, same type and
	 * payload, into the (VP, SINT) message slot; one echo at a time: while
	 * it waits for the slot, posts get HV_STATUS_INSUFFICIENT_BUFFERS. */
	HV_TESTDEV_MSG_CONN_CREATE = 4,
	HV_TESTDEV_MSG_CONN_DESTROY = 5,
	/* HvSignalEvent to the connection id (flag number 0; others get
	 * HV_STATUS_INVALID_PORT_ID, as KVM and QEMU answer) sets event flag
	 * <connection id> of the (VP, SINT) event flags, interrupting if it was
	 * clear. Message and event connection ids are separate namespaces. */
	HV_TESTDEV_EVT_CONN_CREATE = 6,
	HV_TESTDEV_EVT_CONN_DESTROY = 7,
};

static inline uint32_t hv_testdev_word(uint8_t op, uint8_t vp, uint8_t sint, uint8_t conn_id)
{
	return (uint32_t)conn_id << 24 | (uint32_t)op << 16 | (uint32_t)vp << 8 | sint;
}

#endif /* HVKIT_PROTO_HV_TESTDEV_H */
