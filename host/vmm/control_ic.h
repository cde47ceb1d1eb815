/* SPDX-License-Identifier: MIT */
/*
 * The control socket's integration-component commands (shutdown, reboot,
 * hibernate, kvp, vss, copy, the services in status) served by the
 * machine's IC host side (ic_host.h).
 */
#ifndef HVKIT_CONTROL_IC_H
#define HVKIT_CONTROL_IC_H

#include "control.h"
#include "ic_host.h"

/* A provider whose calls go to h; valid while h is. */
struct control_ic_provider control_ic_provider(struct ic_host *h);

#endif /* HVKIT_CONTROL_IC_H */
