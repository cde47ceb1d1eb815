/* SPDX-License-Identifier: MIT */
/*
 * QEMU's Hyper-V test device (include/hvkit/proto/hv_testdev.h) on top of
 * host/hv: SINT routes, message connections that post back what the guest
 * posted, event connections that set the flag named by their connection id.
 * Off unless asked for (hvkit run --device hyperv-testdev).
 *
 * Bad commands (unknown operation, VP or SINT out of range, a route or
 * connection that does not exist or already does, a connection id hv
 * refuses) are counted, logged once per kind and ignored: where QEMU
 * asserts, hvkit carries on.
 *
 * Locking: commands (port writes on a VP's thread) and the connection
 * handlers (inside hypercalls, on any VP's thread) take the device's own
 * lock; hv locks itself.
 */
#ifndef HVKIT_HV_TESTDEV_H
#define HVKIT_HV_TESTDEV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv.h"
#include "hvkit/proto/hv_testdev.h"

/* A command word taken apart. */
struct hv_testdev_cmd {
	uint8_t op;      /* enum hv_testdev_op, or anything else (ignored) */
	uint8_t vp;
	uint8_t sint;
	uint8_t conn_id;
};

struct hv_testdev_cmd hv_testdev_decode(uint32_t word);

struct hv_testdev_config {
	struct hv_partition *hv;
	uint32_t vp_count;
	void (*log)(void *ctx, const char *fmt, va_list ap); /* NULL: stderr */
	void *log_ctx;
};

struct hv_testdev_stats {
	uint64_t commands;   /* words written */
	uint64_t rejected;   /* of those, ignored as bad */
	uint64_t masked;     /* SET_SINT dropped by a masked SINT (not rejected) */
	uint64_t echoed;     /* messages posted back */
	uint64_t busy;       /* posts refused: the connection's echo still queued */
	uint64_t signalled;  /* event flags set */
	uint64_t bad_flag;   /* signals with a flag number: invalid port */
	uint64_t lost;       /* echoes hv could not deliver */
};

struct hv_testdev;

struct hv_testdev *hv_testdev_new(const struct hv_testdev_config *cfg);
/* Removes its connections from hv (takes the lock). */
void hv_testdev_free(struct hv_testdev *d);

/* One command (takes the lock). 0, or -errno when it was rejected. */
int hv_testdev_command(struct hv_testdev *d, uint32_t word);

/* The port (pio_handler): 4-byte writes are commands, reads give 0. */
void hv_testdev_pio(void *dev, uint16_t offset, uint8_t size, bool write, uint32_t *value);

void hv_testdev_get_stats(struct hv_testdev *d, struct hv_testdev_stats *out);

#endif /* HVKIT_HV_TESTDEV_H */
