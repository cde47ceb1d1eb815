/* SPDX-License-Identifier: MIT */
/* hvkit run --serial unix:PATH and pty (serial.c). */
#ifndef HVKIT_CMD_SERIAL_H
#define HVKIT_CMD_SERIAL_H

#include <stddef.h>
#include <stdint.h>

struct serial_unix;

/* Typed bytes the UART has not taken yet are kept, up to this many. While
 * that is full the client is not read (it sees back-pressure), but its
 * hang-up and the next client are seen; what a client typed and the
 * serial thread had not read when it hung up is dropped. */
#define SERIAL_PENDING 4096

/* Hands typed bytes to the UART; returns how many it took (the rest is
 * offered again a little later). */
typedef size_t (*serial_input_fn)(void *ctx, const uint8_t *bytes, size_t len);

/* Listens at path (mode 0600; a stale socket there is replaced). 0 or
 * -errno: -EADDRINUSE if a live process listens there, -EEXIST if
 * something other than a socket is there. Never removes what it did not
 * bind. */
int serial_unix_new(const char *path, struct serial_unix **out);
/* The machine's console callback (ctx = the serial_unix). */
void serial_unix_output(void *ctx, const uint8_t *bytes, size_t len);
/* Starts taking clients and passing their input to input(ctx, ...). */
int serial_unix_attach(struct serial_unix *s, serial_input_fn input, void *ctx);
/* Stops the client thread (before the machine stops). */
void serial_unix_detach(struct serial_unix *s);
/* Detaches, closes, removes the socket. */
void serial_unix_free(struct serial_unix *s);

/* --serial pty: a new pseudo-terminal in raw mode (serial.c). */
struct serial_pty;
/* 0 or -errno (no /dev/ptmx, out of terminals). */
int serial_pty_new(struct serial_pty **out);
/* The terminal's path for clients, /dev/pts/N. */
const char *serial_pty_name(const struct serial_pty *s);
/* The machine's console callback (ctx = the serial_pty). */
void serial_pty_output(void *ctx, const uint8_t *bytes, size_t len);
int serial_pty_attach(struct serial_pty *s, serial_input_fn input, void *ctx);
void serial_pty_detach(struct serial_pty *s);
void serial_pty_free(struct serial_pty *s);

#endif
