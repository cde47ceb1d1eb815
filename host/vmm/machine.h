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

#include "ic_host.h"
#include "vmbus_device.h"
#include "vmbus_server.h"

#define MACHINE_MAX_ECHO 64

struct machine_config {
	uint32_t cpus;
	uint64_t memory;           /* bytes */
	const char *guest_path;    /* the guest program (process partition) */
	char *const *guest_argv;
	uint32_t echo_devices;     /* echo devices offered from the start */
	struct vmbus_server_config vmbus; /* vp_count is filled in */
	/* Integration components (heartbeat, shutdown, time sync, KVP):
	 * offered if ic is set; the machine fills in ic_config's clocks,
	 * lock and log. */
	bool ic;
	struct ic_host_config ic_config;
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

/* The integration components' host side (ic_host.h), or NULL if not
 * offered. Its request calls want ic_host_lock around them. */
struct ic_host *machine_ic(struct machine *m);

/* Whether the partition was torn down because the guest misbehaved. */
bool machine_failed(struct machine *m, char *why, size_t len);

#endif /* HVKIT_MACHINE_H */
