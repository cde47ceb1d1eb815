/* SPDX-License-Identifier: MIT */
/*
 * A disk with a volatile write cache, for durability tests: writes land in
 * the cache, a flush or a FUA write makes them durable, and a power cut
 * throws away whatever the cache held. So a host that acknowledged a flush
 * it never passed on loses data in the test, as it would on real hardware
 * (a SIGKILL of the host cannot show that: the page cache survives it).
 */
#ifndef HVKIT_TESTS_BACKEND_POWERCUT_H
#define HVKIT_TESTS_BACKEND_POWERCUT_H

#include <stdint.h>

#include "storage_backend.h"

/* size bytes of zeros, 512-byte blocks. */
int powercut_backend_new(uint64_t size, struct storage_backend *out);

/* What survives: the durable bytes (size of the disk). */
const uint8_t *powercut_durable(const struct storage_backend *b);

/* The power goes: the cache is lost, the disk holds only what was made
 * durable. (Not while requests run.) */
void powercut_cut(const struct storage_backend *b);

#endif
