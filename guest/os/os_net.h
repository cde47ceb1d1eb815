/* SPDX-License-Identifier: MIT */
/* hvkit-os's NICs (net.c). */
#ifndef HVKIT_OS_NET_H
#define HVKIT_OS_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "netvsc.h"
#include "vmbus_client.h"

/* Registers netvsc with the mini guest's buffer sizes and a channel per
 * VP (before connect). */
struct netvsc_driver *os_net_register(struct vmbus_client *c, uint32_t vps, int *err);
/* Runs the client until every NIC offered is up, or ms pass. */
void os_net_settle(struct vmbus_client *c, struct netvsc_driver *d, uint64_t ms);
/* Opens and lists each NIC; with test, runs its loopback self-test.
 * Returns the NICs that failed. */
int os_net_report(struct vmbus_client *c, struct netvsc_driver *d, bool test);
/* The self-test again on each NIC os_net_report opened. Returns the NICs
 * that failed. */
int os_net_retest(struct vmbus_client *c, struct netvsc_driver *d);

#endif /* HVKIT_OS_NET_H */
