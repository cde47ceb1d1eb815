/* SPDX-License-Identifier: MIT */
/* The control socket's view of a machine (control.h's backend). */
#ifndef HVKIT_CONTROL_MACHINE_H
#define HVKIT_CONTROL_MACHINE_H

#include "control.h"
#include "machine.h"

/* The backend for control_server_start: status, hot add and remove. */
struct control_backend control_machine_backend(struct machine *m);

#endif /* HVKIT_CONTROL_MACHINE_H */
