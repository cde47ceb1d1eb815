/* SPDX-License-Identifier: MIT */
/*
 * hvkit-guest's disks and NICs: storvsc and netvsc bound on the VMBus
 * client, and what the guest reports of them (each disk after reading its
 * first block; each NIC with a loopback self-test).
 */
#ifndef HVKIT_GUEST_DEVICES_H
#define HVKIT_GUEST_DEVICES_H

#include <stdbool.h>

#include "hv_guest.h"
#include "vmbus_client.h"

struct guest_devices;

/* Registers both drivers (before vmbus_client_connect). NULL and *err. */
struct guest_devices *guest_devices_new(struct vmbus_client *c, struct hv_guest *g, int *err);

/* Every SCSI controller and NIC the host offered is bound and all their
 * channels are open (or failed to). */
bool guest_devices_settled(struct guest_devices *d);

/* Prints each controller, disk and NIC not reported yet, reads each new
 * disk's first block and runs each new NIC's self-test; after the host's
 * ENUMERATE_BUS, rescans and reports the disks that came and went, and
 * the NICs that went. Process context; called again while serving.
 * Returns the failures seen. */
int guest_devices_report(struct guest_devices *d);

/* After vmbus_client_unload (which removes the devices). */
void guest_devices_free(struct guest_devices *d);

#endif /* HVKIT_GUEST_DEVICES_H */
