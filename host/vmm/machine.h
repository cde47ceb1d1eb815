/* SPDX-License-Identifier: MIT */
/*
 * A virtual machine as hvkit assembles it: a partition (the process or the
 * KVM backend), the Hyper-V interface on it, the VMBus server wired to that
 * interface, and the devices behind the server.
 */
#ifndef HVKIT_MACHINE_H
#define HVKIT_MACHINE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netvsp_nic.h"
#include "ic_host.h"
#include "vmbus_device.h"
#include "vmbus_server.h"

#define MACHINE_MAX_ECHO 64
#define MACHINE_MAX_NICS 8

enum machine_partition {
	MACHINE_PROCESS,           /* the guest is a program (guest_path) */
	MACHINE_KVM,               /* the guest is a kernel (kvm) */
};

#define MACHINE_MAX_DISKS 16

/* A disk on the machine's SCSI controller (storvsp), at LUN = its index. */
struct machine_disk {
	const char *path;   /* raw image file or block device */
	bool read_only;
	bool direct;        /* O_DIRECT */
	const char *serial; /* NULL: "hvkit-<lun>" */
	const char *aio;    /* "io_uring" or "threads"; NULL: io_uring */
};

struct machine_config {
	enum machine_partition partition;
	uint32_t cpus;
	uint64_t memory;           /* bytes */
	const char *guest_path;    /* the guest program (process partition) */
	char *const *guest_argv;
	struct {                   /* the kernel and its platform (KVM) */
		const char *device; /* the KVM device node; NULL: /dev/kvm */
		const char *kernel, *initrd, *cmdline;
		bool debug_exit;   /* QEMU's isa-debug-exit port */
		bool hyperv_testdev; /* QEMU's Hyper-V test device (port 0x3000) */
		bool no_s4;        /* no \_S4 in the DSDT */
		/* A crash report pauses the VM (machine_resume runs it on)
		 * instead of ending it; the report is in machine_get_info. */
		bool pause_on_crash;
		/* Console output; NULL: standard output. */
		void (*console)(void *ctx, const uint8_t *bytes, size_t len);
		void *console_ctx;
	} kvm;
	struct hv_guid vm_id;      /* --vm-id: device instance GUIDs follow
				    * from it (vm_identity.h); null: the
				    * built-in ones */
	uint32_t echo_devices;     /* echo devices offered from the start */
	const struct netvsp_nic_opts *nics; /* synthetic NICs (--net), instance = index */
	uint32_t nic_count;
	const struct machine_disk *disks; /* a storage controller if disk_count */
	uint32_t disk_count;
	struct vmbus_server_config vmbus; /* vp_count is filled in */
	/* Integration components (heartbeat, shutdown, time sync, KVP):
	 * offered if ic is set; the machine fills in ic_config's clocks,
	 * lock and log. */
	bool ic;
	struct ic_host_config ic_config;
	void (*log)(void *ctx, const char *fmt, va_list ap); /* NULL: stderr */
	void *log_ctx;
	/* KVM: continue the VM a snapshot file holds (machine_snapshot)
	 * instead of booting; the configuration must be the saving one's. */
	const char *restore;
};

struct machine;
struct storvsp;

/* 0, or -errno; KVM: -ENODEV when /dev/kvm is absent or unusable, and a
 * kernel that cannot be booted, or a snapshot to restore that is corrupt
 * or of another machine, is -ENOEXEC/-E2BIG with the reason in why (may
 * be NULL). */
int machine_start(const struct machine_config *cfg, struct machine **out, char *why,
		  size_t why_len);

/* Waits for the guest to end (see partition_wait). */
int machine_wait(struct machine *m, int timeout_ms, int *status);
/* Polls readable once the guest has ended (partition_end_fd). */
int machine_end_fd(struct machine *m);

void machine_stop(struct machine *m);

struct vmbus_server *machine_vmbus(struct machine *m);

/* Runs fn(ctx) on every VP's own thread (partition_on_vp_threads): 0,
 * fn's first error, or -ENOTSUP where the partition has no VP threads of
 * its own to offer (the process partition). */
int machine_on_vp_threads(struct machine *m, int (*fn)(void *ctx), void *ctx);

/* Hot-plugs an echo device with this instance number / unplugs it. */
int machine_add_echo(struct machine *m, uint32_t instance);
int machine_remove_echo(struct machine *m, uint32_t instance);

/* NIC i (NULL if there is none). */
struct netvsp *machine_nic(struct machine *m, uint32_t i);
/* Hot-plugs a NIC (a new VMBus offer) in the first free slot, which is
 * its number (*nic) and instance: 0, -ENOSPC, or a backend error with why
 * filled. Hot-unplugs NIC i (rescind): 0 or -ENOENT. Call from the thread
 * that adds and removes devices (the control thread once running). */
int machine_add_nic(struct machine *m, const struct netvsp_nic_opts *o, uint32_t *nic,
		    char *why, size_t len);
int machine_remove_nic(struct machine *m, uint32_t i);
/* Cable in or out on NIC i: 0 or -ENOENT. */
int machine_set_nic_link(struct machine *m, uint32_t i, bool up);

/* The guest's latest crash report (the crash MSRs, hv.h). */
struct machine_crash {
	uint32_t reports;      /* so far; 0: none, the rest is zero */
	uint32_t vp;           /* the VP that wrote CRASH_CTL */
	uint64_t params[5];    /* P0..P4 */
	char message[4097];    /* the CRASH_NOTIFY_MSG text (a page at most:
				* printable ASCII lines, hv.h) */
};

/* What the machine is, for status displays (the control socket). */
struct machine_info {
	const char *partition; /* "process" or "kvm" */
	uint32_t cpus;
	uint64_t memory;       /* bytes */
	uint64_t uptime_ns;    /* since machine_start */
	struct hv_guid vm_id;  /* null: none given */
	bool paused;           /* machine_pause, or a crash with pause_on_crash */
	struct machine_crash crash;
};
void machine_get_info(struct machine *m, struct machine_info *out);

/* A snapshot of the VM into the file path (docs/lifecycle.md): the VPs
 * paused (if they were not), every state record and guest RAM written
 * under the device lock, the file written whole before it takes the
 * name. The VM stays paused unless resume (then the VPs run on at once).
 * 0, or -errno with why: -ENOTSUP (the process partition; a device that
 * cannot save yet), -EBUSY (a device busy), an I/O error. On failure the
 * VM runs on if it ran. */
struct machine_snapshot_stats {
	uint64_t file_bytes;
	uint64_t ram_pages;  /* saved (zero pages are not) */
	uint64_t ns;         /* from the pause to the file's rename */
	bool paused;         /* the VM stays paused */
};
int machine_snapshot(struct machine *m, const char *path, bool resume,
		     struct machine_snapshot_stats *st, char *why, size_t why_len);

/* Every VP stopped where it is (and the partition's timers), the devices
 * left running / the VPs let run on: 0, -EALREADY, -EINVAL (resume while
 * running), -ENOTSUP (the process partition), -ESRCH (the guest ended).
 * partition_pause. */
int machine_pause(struct machine *m);
int machine_resume(struct machine *m);

/* The hot-pluggable devices it has now. Call from the thread that adds and
 * removes them. */
struct machine_device_info {
	const char *kind;      /* "echo", "nic" */
	uint32_t instance;
	uint64_t packets;      /* answered so far (a NIC: frames both ways) */
};
void machine_for_each_device(struct machine *m,
			     void (*fn)(void *arg, const struct machine_device_info *),
			     void *arg);

/* The integration components' host side (ic_host.h), or NULL if not
 * offered. Its request calls want ic_host_lock around them. */
struct ic_host *machine_ic(struct machine *m);

/* Hot-plugs a disk at this LUN of the storage controller (created, and
 * offered, with the first disk) / unplugs it; the guest is told to rescan. */
int machine_add_disk(struct machine *m, uint32_t lun, const struct machine_disk *d);
int machine_remove_disk(struct machine *m, uint32_t lun);

/* Console input for the guest's COM1 (KVM); how many bytes the UART took
 * (0 when its FIFO is full, and always on the process partition). */
size_t machine_console_input(struct machine *m, const uint8_t *bytes, size_t len);
/* The storage controller (NULL without disks), and its hot removal: the
 * controller is rescinded with its disks; a later machine_add_disk offers
 * a new one. -ENOENT if there is none. */
struct storvsp *machine_storage(struct machine *m);
int machine_remove_storage(struct machine *m);

/* The Hyper-V test device's counters (--device hyperv-testdev); false
 * without one. Before machine_stop. */
struct hv_testdev_stats;
bool machine_testdev_stats(struct machine *m, struct hv_testdev_stats *out);

/* Whether the partition was torn down because the guest misbehaved. */
bool machine_failed(struct machine *m, char *why, size_t len);

/* Whether the guest reported a crash through the crash MSRs (the KVM
 * partition then stops with KVM_PARTITION_EXIT_CRASHED, or pauses with
 * pause_on_crash; a process guest runs on). */
bool machine_guest_crashed(struct machine *m);

#endif /* HVKIT_MACHINE_H */
