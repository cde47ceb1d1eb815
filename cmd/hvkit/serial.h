/* SPDX-License-Identifier: MIT */
/* hvkit run --serial unix:PATH (serial.c). */
#ifndef HVKIT_CMD_SERIAL_H
#define HVKIT_CMD_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "machine.h"

struct serial_unix;

/* Listens at path (mode 0600; a stale socket there is replaced). 0 or
 * -errno (-EEXIST: something other than a socket is there). */
int serial_unix_new(const char *path, struct serial_unix **out);
/* The machine's console callback (ctx = the serial_unix). */
void serial_unix_output(void *ctx, const uint8_t *bytes, size_t len);
/* Starts taking clients and passing their input to m's UART. */
int serial_unix_attach(struct serial_unix *s, struct machine *m);
/* Stops the client thread (before the machine stops). */
void serial_unix_detach(struct serial_unix *s);
/* Detaches, closes, removes the socket. */
void serial_unix_free(struct serial_unix *s);

#endif
