/* SPDX-License-Identifier: MIT */
/*
 * The VM snapshot file (docs/lifecycle.md, "VM snapshots"): a versioned
 * container of the machine's description, guest RAM (pages that are not
 * zero) and the state records of the partition, the hypervisor interface,
 * the VMBus server with its devices, and the platform's legacy devices. Every section carries a CRC; a
 * reader checks each before the machine it fills may run, and refuses a
 * file for another machine naming what differs.
 */
#ifndef HVKIT_SNAPSHOT_H
#define HVKIT_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest_memory.h"
#include "hvkit/guid.h"

/* A state record in a snapshot, at most (the records are far smaller). */
#define SNAPSHOT_MAX_RECORD (64u << 20)

/* What a restoring machine must have as the saving one had it. */
struct snapshot_machine {
	uint32_t cpus;
	uint64_t memory;        /* bytes of guest RAM */
	struct hv_guid vm_id;   /* null: none */
	uint32_t echo_devices;
	uint32_t nics, disks;
	bool ic;
};

enum snapshot_record {
	SNAPSHOT_PARTITION, /* partition_save */
	SNAPSHOT_HV,        /* hv_save */
	SNAPSHOT_VMBUS,     /* vmbus_server_save, the devices' state within */
	SNAPSHOT_PLATFORM,  /* kvm_platform_save: UART, RTC, ACPI PM */
	SNAPSHOT_RECORDS
};

struct snapshot_records {
	void *buf[SNAPSHOT_RECORDS];
	size_t len[SNAPSHOT_RECORDS];
};

struct snapshot_stats {
	uint64_t file_bytes;
	uint64_t ram_pages; /* pages saved or loaded (zero pages are not) */
};

/* Writes a snapshot to fd (at its current offset): the machine, the
 * pages of mem that are not zero (holes of a file-backed region
 * skipped without reading them), the records. 0 or -errno. */
int snapshot_write(int fd, const struct snapshot_machine *mc, const struct snapshot_records *r,
		   const struct guest_memory *mem, struct snapshot_stats *st);

/* Reads a whole snapshot from fd into a machine that has not run: checks
 * its header and machine against expect (-EINVAL naming what differs),
 * zeroes guest RAM and reads the saved pages into it, and gives the
 * records (out, to snapshot_records_free). A truncated or corrupt file
 * is -EINVAL with why saying where; an I/O error its -errno. On failure
 * guest RAM holds anything: the machine must not run. */
int snapshot_read(int fd, const struct snapshot_machine *expect, const struct guest_memory *mem,
		  struct snapshot_records *out, struct snapshot_stats *st, char *why,
		  size_t why_len);

void snapshot_records_free(struct snapshot_records *r);

#endif /* HVKIT_SNAPSHOT_H */
