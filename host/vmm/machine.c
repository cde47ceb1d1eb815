/* SPDX-License-Identifier: MIT */
/*
 * The machine: the VMBus server on host/hv, over a process partition.
 *
 * The glue is small: VMBus messages arrive as HvPostMessage on connections
 * 1 and 4, channel signals as HvSignalEvent on each open channel's
 * connection; the server answers with SynIC messages and event flags. The
 * partition lock serializes all of it (vmbus_server.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine.h"
#include "process.h"
#include "storvsp.h"

struct machine {
	struct machine_config cfg;
	struct process_partition *pp;
	struct vmbus_server *vmbus;
	struct vmbus_echo *echo[MACHINE_MAX_ECHO];
	uint32_t echo_instance[MACHINE_MAX_ECHO];
	struct storvsp *storage; /* the SCSI controller, if there are disks */
};

static struct hv_partition *hv_of(struct machine *m)
{
	return process_partition_hv(m->pp);
}

/* ---- From host/hv into the server (partition lock held) ---- */

static uint16_t vmbus_message(void *ctx, uint32_t vp, const struct hv_posted_message *msg)
{
	struct machine *m = ctx;
	return vmbus_server_handle_message(m->vmbus, vp, msg->connection_id, msg->payload,
					   msg->payload_size);
}

/* Channel connections: the handler context carries the connection id, so
 * one handler serves them all. */
struct channel_connection {
	struct machine *m;
	uint32_t id;
};

static uint16_t channel_signal(void *ctx, uint32_t vp, uint16_t flag)
{
	struct channel_connection *cc = ctx;
	if (flag != 0)
		return HV_STATUS_INVALID_PARAMETER; /* VMBus signals with flag 0 */
	vmbus_server_handle_signal(cc->m->vmbus, vp, cc->id);
	return HV_STATUS_SUCCESS;
}

/* ---- From the server into host/hv (lock held unless noted) ---- */

static void glue_lock(void *ctx)
{
	struct machine *m = ctx;
	process_partition_lock(m->pp);
}

static void glue_unlock(void *ctx)
{
	struct machine *m = ctx;
	process_partition_unlock(m->pp);
}

static int glue_post(void *ctx, uint32_t vp, uint32_t sint, const void *msg, uint32_t len)
{
	return hv_synic_post(hv_of(ctx), vp, sint, HV_MESSAGE_TYPE_VMBUS, msg, len, 0);
}

static int glue_signal(void *ctx, uint32_t vp, uint32_t sint, uint32_t flag)
{
	return hv_synic_signal(hv_of(ctx), vp, sint, flag);
}

static int glue_connection_add(void *ctx, uint32_t id)
{
	struct machine *m = ctx;
	struct channel_connection *cc = malloc(sizeof(*cc));
	if (!cc)
		return -ENOMEM;
	*cc = (struct channel_connection){m, id};
	int err = hv_connection_add_event(hv_of(m), id, channel_signal, cc);
	if (err)
		free(cc);
	return err;
}

static void glue_connection_remove(void *ctx, uint32_t id)
{
	struct machine *m = ctx;
	hv_event_handler fn;
	void *cc;
	if (hv_connection_find_event(hv_of(m), id, &fn, &cc) && fn == channel_signal) {
		hv_connection_remove(hv_of(m), id);
		free(cc);
	}
}

static uint64_t glue_now_ns(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 2, 0))) static void glue_log(void *ctx, const char *fmt,
							   va_list ap)
{
	struct machine *m = ctx;
	if (m->cfg.log) {
		m->cfg.log(m->cfg.log_ctx, fmt, ap);
		return;
	}
	fputs("hvkit: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static const struct vmbus_server_ops glue_ops = {
	.lock = glue_lock,
	.unlock = glue_unlock,
	.post = glue_post,
	.signal = glue_signal,
	.connection_add = glue_connection_add,
	.connection_remove = glue_connection_remove,
	.now_ns = glue_now_ns,
	.log = glue_log,
};

/* ---- Set-up ---- */

static int echo_slot(struct machine *m, uint32_t instance, bool want_free)
{
	for (int i = 0; i < MACHINE_MAX_ECHO; i++)
		if (want_free ? !m->echo[i] : (m->echo[i] && m->echo_instance[i] == instance))
			return i;
	return -1;
}

int machine_add_disk(struct machine *m, uint32_t lun, const struct machine_disk *d)
{
	if (!m->storage) {
		/* The controller comes with the first disk (hot added if the
		 * guest is running). */
		struct storvsp_config scfg = {.workers = m->cfg.cpus < 4 ? 2 : 4,
					      .log = m->cfg.log,
					      .log_ctx = m->cfg.log_ctx};
		int err = storvsp_add(m->vmbus, process_partition_memory(m->pp), &scfg,
				      &m->storage);
		if (err)
			return err;
	}
	struct storage_file_config fc = {
		.path = d->path, .read_only = d->read_only, .direct = d->direct};
	struct storage_backend be;
	struct scsi_disk *disk;
	char serial[32];
	snprintf(serial, sizeof(serial), "hvkit-%u", lun);
	struct scsi_disk_config dc = {.serial = d->serial ? d->serial : serial};
	int err = storage_backend_file_open(&fc, &be);
	if (err)
		return err;
	err = scsi_disk_new(&dc, &be, &disk);
	if (err) {
		storage_backend_close(&be);
		return err;
	}
	err = storvsp_add_disk(m->storage, lun, disk);
	if (err)
		scsi_disk_free(disk);
	return err;
}

int machine_remove_disk(struct machine *m, uint32_t lun)
{
	return m->storage ? storvsp_remove_disk(m->storage, lun) : -ENOENT;
}

/* The VMBus server and the boot-time devices, before the guest runs. */
static int attach_vmbus(struct machine *m)
{
	m->cfg.vmbus.vp_count = m->cfg.cpus;
	m->vmbus = vmbus_server_new(&m->cfg.vmbus, process_partition_memory(m->pp), &glue_ops,
				    m);
	if (!m->vmbus)
		return -errno;
	process_partition_lock(m->pp);
	int err = hv_connection_add_message(hv_of(m), VMBUS_MESSAGE_CONNECTION_ID, vmbus_message,
					    m);
	if (!err)
		err = hv_connection_add_message(hv_of(m), VMBUS_MESSAGE_CONNECTION_ID_4,
						vmbus_message, m);
	process_partition_unlock(m->pp);
	for (uint32_t i = 0; !err && i < m->cfg.echo_devices; i++)
		err = machine_add_echo(m, i);
	for (uint32_t i = 0; !err && i < m->cfg.disk_count; i++)
		err = machine_add_disk(m, i, &m->cfg.disks[i]);
	return err;
}

/* Devices and server go while hv still exists, after the guest and the
 * partition's threads, so nothing reaches them meanwhile. */
static void detach_vmbus(struct machine *m)
{
	if (!m->vmbus)
		return;
	for (int i = 0; i < MACHINE_MAX_ECHO; i++)
		if (m->echo[i])
			vmbus_echo_remove(m->vmbus, m->echo[i]);
	storvsp_remove(m->vmbus, m->storage);
	m->storage = NULL;
	vmbus_server_free(m->vmbus);
	m->vmbus = NULL;
}

int machine_start(const struct machine_config *cfg, struct machine **out)
{
	if (cfg->echo_devices > MACHINE_MAX_ECHO || cfg->disk_count > MACHINE_MAX_DISKS)
		return -EINVAL;
	struct machine *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	struct process_partition_config pcfg = {
		.vp_count = cfg->cpus,
		.memory_size = cfg->memory,
		.guest_path = cfg->guest_path,
		.guest_argv = cfg->guest_argv,
		.log = cfg->log,
		.log_ctx = cfg->log_ctx,
	};
	int err = process_partition_new(&pcfg, &m->pp);
	if (err) {
		free(m);
		return err;
	}
	err = attach_vmbus(m);
	if (!err)
		err = process_partition_launch(m->pp);
	if (err) {
		machine_stop(m);
		return err;
	}
	*out = m;
	return 0;
}

int machine_wait(struct machine *m, int timeout_ms, int *status)
{
	return process_partition_wait(m->pp, timeout_ms, status);
}

void machine_stop(struct machine *m)
{
	process_partition_halt(m->pp);
	detach_vmbus(m);
	process_partition_stop(m->pp);
	free(m);
}

struct vmbus_server *machine_vmbus(struct machine *m)
{
	return m->vmbus;
}

int machine_add_echo(struct machine *m, uint32_t instance)
{
	if (echo_slot(m, instance, false) >= 0)
		return -EEXIST;
	int slot = echo_slot(m, instance, true);
	if (slot < 0)
		return -ENOSPC;
	int err = vmbus_echo_add(m->vmbus, instance, &m->echo[slot]);
	if (!err)
		m->echo_instance[slot] = instance;
	return err;
}

int machine_remove_echo(struct machine *m, uint32_t instance)
{
	int slot = echo_slot(m, instance, false);
	if (slot < 0)
		return -ENOENT;
	vmbus_echo_remove(m->vmbus, m->echo[slot]);
	m->echo[slot] = NULL;
	return 0;
}

bool machine_failed(struct machine *m, char *why, size_t len)
{
	struct process_partition_stats st;
	process_partition_get_stats(m->pp, &st);
	if (st.failed && why)
		snprintf(why, len, "%s", st.failure);
	return st.failed;
}
