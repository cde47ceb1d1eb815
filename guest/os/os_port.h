/* SPDX-License-Identifier: MIT */
#ifndef HVKIT_OS_PORT_H
#define HVKIT_OS_PORT_H

#include "port.h"

const struct hv_port *os_port(void);

#endif
