/* SPDX-License-Identifier: MIT */
/*
 * A virtual machine as hvkit assembles it: a partition (today the process
 * partition; KVM next), the Hyper-V interface on it, the VMBus server wired
 * to that interface, and the devices behind the server.
 */
#ifndef HVKIT_MACHINE_H
#define HVKIT_MACHINE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmbus_device.h"
#include "vmbus_server.h"

#define MACHINE_MAX_ECHO 64
#define MACHINE_MAX_DISKS 16

/* A disk on the machine's SCSI controller (storvsp), at LUN = its index. */
struct machine_disk {
	const char *path;   /* raw image file or block device */
	bool read_only;
	bool direct;        /* O_DIRECT */
	const char *serial; /* NULL: "hvkit-<lun>" */
};

struct machine_config {
	uint32_t cpus;
	uint64_t memory;           /* bytes */
	const char *guest_path;    /* the guest program (process partition) */
	char *const *guest_argv;
	uint32_t echo_devices;     /* echo devices offered from the start */
	const struct machine_disk *disks; /* a storage controller if disk_count */
	uint32_t disk_count;
	struct vmbus_server_config vmbus; /* vp_count is filled in */
	void (*log)(void *ctx, const char *fmt, va_list ap); /* NULL: stderr */
	void *log_ctx;
};

struct machine;

int machine_start(const struct machine_config *cfg, struct machine **out);

/* Waits for the guest to end (see process_partition_wait). */
int machine_wait(struct machine *m, int timeout_ms, int *status);

void machine_stop(struct machine *m);

struct vmbus_server *machine_vmbus(struct machine *m);

/* Hot-plugs an echo device with this instance number / unplugs it. */
int machine_add_echo(struct machine *m, uint32_t instance);
int machine_remove_echo(struct machine *m, uint32_t instance);

/* Hot-plugs a disk at this LUN of the storage controller (created, and
 * offered, with the first disk) / unplugs it; the guest is told to rescan. */
int machine_add_disk(struct machine *m, uint32_t lun, const struct machine_disk *d);
int machine_remove_disk(struct machine *m, uint32_t lun);

/* Whether the partition was torn down because the guest misbehaved. */
bool machine_failed(struct machine *m, char *why, size_t len);

#endif /* HVKIT_MACHINE_H */
