/* SPDX-License-Identifier: MIT */
/*
 * A VM's identity (`hvkit run --vm-id UUID`): the instance GUIDs of its
 * devices follow from it, so the same configuration offers the same GUIDs
 * on every run, as Azure does for a VM's SCSI controllers and NICs, and
 * two VMs never share one. docs/lifecycle.md.
 */
#ifndef HVKIT_VM_IDENTITY_H
#define HVKIT_VM_IDENTITY_H

#include <stdint.h>

#include <hvkit/guid.h>

/* The instance GUID of device number index of a kind ("storvsp",
 * "netvsp"): the name-based UUID (RFC 9562 version 5, SHA-1) of
 * "hvkit/<kind>/<index>" in the namespace vm_id. The text forms of the
 * GUIDs are the UUIDs' (struct hv_guid keeps the first three groups
 * little-endian, as VMBus carries them). */
struct hv_guid vm_device_instance(const struct hv_guid *vm_id, const char *kind,
				  uint32_t index);

/* A MAC for a NIC from its instance GUID: Hyper-V's OUI 00:15:5d, then
 * three bytes of the GUID's hash part. */
void vm_device_mac(const struct hv_guid *instance, uint8_t mac[6]);

#endif /* HVKIT_VM_IDENTITY_H */
