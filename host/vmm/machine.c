/* SPDX-License-Identifier: MIT */
/*
 * The machine: the VMBus server on host/hv, over a process partition or a
 * KVM partition with its platform (kvm_platform.h). Past building it, the
 * machine drives either backend through the partition interface
 * (partition.h).
 *
 * The glue is small: VMBus messages arrive as HvPostMessage on connections
 * 1 and 4, channel signals as HvSignalEvent on each open channel's
 * connection; the server answers with SynIC messages and event flags. The
 * device lock serializes all of it (vmbus_server.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvm_platform.h"
#include "machine.h"
#include "process.h"
#include "snapshot.h"
#include "storvsp.h"
#include "vm_identity.h"

struct machine {
	struct machine_config cfg;
	struct partition *partition;   /* the backend, KVM or process */
	struct kvm_platform *platform; /* with KVM */
	struct vmbus_server *vmbus;
	struct ic_host *ic;
	struct vmbus_echo *echo[MACHINE_MAX_ECHO];
	uint32_t echo_instance[MACHINE_MAX_ECHO];
	uint64_t started_ns;
	struct netvsp_nic *nics[MACHINE_MAX_NICS];
	struct storvsp *storage; /* the SCSI controller, if there are disks */
	bool crashed;            /* the guest reported a crash (atomic) */
	/* The latest crash report, for status displays (under crash_lock). */
	pthread_mutex_t crash_lock;
	struct machine_crash crash;
	bool paused;             /* machine_pause (atomic) */
	/* Contexts of the channels' event connections, one per connection id
	 * ever used, kept until the machine goes: hv may call a handler just
	 * after its connection was removed (hv.h). Under the device lock. */
	struct channel_connection *channel_conns;
};

static struct hv_partition *hv_of(struct machine *m)
{
	return partition_hv(m->partition);
}

/* ---- From host/hv into the server (on a VP's thread, no lock held) ---- */

static uint16_t vmbus_message(void *ctx, uint32_t vp, const struct hv_posted_message *msg)
{
	struct machine *m = ctx;
	partition_lock(m->partition);
	uint16_t status = vmbus_server_handle_message(m->vmbus, vp, msg->connection_id,
						      msg->payload, msg->payload_size);
	partition_unlock(m->partition);
	return status;
}

/* Channel connections: the handler context carries the connection id, so
 * one handler serves them all. A signal for a channel that has gone since
 * is dropped by the server (it finds no channel with that id). */
struct channel_connection {
	struct machine *m;
	uint32_t id;
	struct channel_connection *next;
};

static uint16_t channel_signal(void *ctx, uint32_t vp, uint16_t flag)
{
	struct channel_connection *cc = ctx;
	if (flag != 0)
		return HV_STATUS_INVALID_PARAMETER; /* VMBus signals with flag 0 */
	partition_lock(cc->m->partition);
	vmbus_server_handle_signal(cc->m->vmbus, vp, cc->id);
	partition_unlock(cc->m->partition);
	return HV_STATUS_SUCCESS;
}

/* ---- From the server into host/hv (lock held unless noted) ---- */

static void glue_lock(void *ctx)
{
	struct machine *m = ctx;
	partition_lock(m->partition);
}

static void glue_unlock(void *ctx)
{
	struct machine *m = ctx;
	partition_unlock(m->partition);
}

static int glue_post(void *ctx, uint32_t vp, uint32_t sint, const void *msg, uint32_t len)
{
	return hv_synic_post(hv_of(ctx), vp, sint, HV_MESSAGE_TYPE_VMBUS, msg, len, 0);
}

static int glue_signal(void *ctx, uint32_t vp, uint32_t sint, uint32_t flag)
{
	return hv_synic_signal(hv_of(ctx), vp, sint, flag);
}

/* The context for connection id, made the first time the id is used. */
static struct channel_connection *channel_connection(struct machine *m, uint32_t id)
{
	for (struct channel_connection *cc = m->channel_conns; cc; cc = cc->next)
		if (cc->id == id)
			return cc;
	struct channel_connection *cc = malloc(sizeof(*cc));
	if (!cc)
		return NULL;
	*cc = (struct channel_connection){m, id, m->channel_conns};
	m->channel_conns = cc;
	return cc;
}

static int glue_connection_add(void *ctx, uint32_t id)
{
	struct machine *m = ctx;
	struct channel_connection *cc = channel_connection(m, id);
	return cc ? hv_connection_add_event(hv_of(m), id, channel_signal, cc) : -ENOMEM;
}

static void glue_connection_remove(void *ctx, uint32_t id)
{
	struct machine *m = ctx;
	hv_event_handler fn;
	void *cc;
	if (hv_connection_find_event(hv_of(m), id, &fn, &cc) && fn == channel_signal)
		hv_connection_remove(hv_of(m), true, id);
}

static void free_channel_connections(struct machine *m)
{
	while (m->channel_conns) {
		struct channel_connection *next = m->channel_conns->next;
		free(m->channel_conns);
		m->channel_conns = next;
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

/* ---- Integration components ---- */

/* The partition reference counter now, as the guest sees it. */
static uint64_t ic_reference_time(void *ctx)
{
	struct machine *m = ctx;
	return partition_now(m->partition);
}

static int attach_ic(struct machine *m)
{
	if (!m->cfg.ic)
		return 0;
	struct ic_host_config c = m->cfg.ic_config;
	c.lock = glue_lock;
	c.unlock = glue_unlock;
	c.reference_time = ic_reference_time;
	c.log = glue_log;
	c.ctx = m;
	return ic_host_new(m->vmbus, &c, &m->ic);
}

struct ic_host *machine_ic(struct machine *m)
{
	return m->ic;
}

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
		if (!hv_guid_is_null(&m->cfg.vm_id))
			scfg.instance_id = vm_device_instance(&m->cfg.vm_id, "storvsp", 0);
		int err = storvsp_add(m->vmbus, partition_memory(m->partition), &scfg,
				      &m->storage);
		if (err)
			return err;
	}
	struct storage_file_config fc = {
		.path = d->path, .read_only = d->read_only, .direct = d->direct};
	if (d->aio && storage_aio_mode_parse(d->aio, &fc.aio))
		return -EINVAL;
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

struct storvsp *machine_storage(struct machine *m)
{
	return m->storage;
}

int machine_remove_storage(struct machine *m)
{
	if (!m->storage)
		return -ENOENT;
	storvsp_remove(m->vmbus, m->storage);
	m->storage = NULL;
	return 0;
}

/* NIC i; with a VM id, its instance GUID (and, unless given, its MAC)
 * follow from the id. */
static int add_nic(struct machine *m, uint32_t i, const struct netvsp_nic_opts *given, char *why,
		   size_t len)
{
	struct netvsp_nic_opts o = *given;
	if (!hv_guid_is_null(&m->cfg.vm_id)) {
		o.instance_id = vm_device_instance(&m->cfg.vm_id, "netvsp", i);
		if (!o.has_mac) {
			vm_device_mac(&o.instance_id, o.mac);
			o.has_mac = true;
		}
	}
	return netvsp_nic_add(m->vmbus, partition_memory(m->partition), i, &o, m->cfg.log,
			      m->cfg.log_ctx, &m->nics[i], why, len);
}

/* The VMBus server and the boot-time devices, before the guest runs;
 * why names the device that failed. */
static int attach_vmbus(struct machine *m, char *why, size_t why_len)
{
	m->cfg.vmbus.vp_count = m->cfg.cpus;
	m->vmbus = vmbus_server_new(&m->cfg.vmbus, partition_memory(m->partition), &glue_ops, m);
	if (!m->vmbus)
		return -errno;
	int err = hv_connection_add_message(hv_of(m), VMBUS_MESSAGE_CONNECTION_ID, vmbus_message,
					    m);
	if (!err)
		err = hv_connection_add_message(hv_of(m), VMBUS_MESSAGE_CONNECTION_ID_4,
						vmbus_message, m);
	for (uint32_t i = 0; !err && i < m->cfg.echo_devices; i++)
		err = machine_add_echo(m, i);
	for (uint32_t i = 0; !err && i < m->cfg.nic_count; i++) {
		char nic_why[200];
		err = add_nic(m, i, &m->cfg.nics[i], nic_why, sizeof(nic_why));
		if (err)
			snprintf(why, why_len, "NIC %u: %s", i, nic_why);
	}
	for (uint32_t i = 0; !err && i < m->cfg.disk_count; i++) {
		err = machine_add_disk(m, i, &m->cfg.disks[i]);
		if (err)
			snprintf(why, why_len, "--disk %s: %s", m->cfg.disks[i].path,
				 err == -EINVAL && m->cfg.disks[i].aio
					 ? "aio takes io_uring or threads"
					 : strerror(-err));
	}
	if (!err)
		err = attach_ic(m);
	return err;
}

/* Devices and server go while hv still exists, after the guest and the
 * partition's threads, so nothing reaches them meanwhile. */
static void detach_vmbus(struct machine *m)
{
	if (!m->vmbus)
		return;
	ic_host_free(m->ic);
	m->ic = NULL;
	for (int i = 0; i < MACHINE_MAX_ECHO; i++)
		if (m->echo[i])
			vmbus_echo_remove(m->vmbus, m->echo[i]);
	for (int i = 0; i < MACHINE_MAX_NICS; i++)
		netvsp_nic_remove(m->vmbus, m->nics[i]);
	storvsp_remove(m->vmbus, m->storage);
	m->storage = NULL;
	vmbus_server_free(m->vmbus);
	m->vmbus = NULL;
}

/* Either backend's crash callback (the partition has logged it). */
static void guest_crashed(void *ctx, uint32_t vp, const uint64_t params[5], const char *message,
			  uint32_t len)
{
	struct machine *m = ctx;
	pthread_mutex_lock(&m->crash_lock);
	m->crash.reports++;
	m->crash.vp = vp;
	memcpy(m->crash.params, params, sizeof(m->crash.params));
	snprintf(m->crash.message, sizeof(m->crash.message), "%.*s", message ? (int)len : 0,
		 message ? message : "");
	pthread_mutex_unlock(&m->crash_lock);
	/* The KVM partition has asked its VPs to park (pause_on_crash):
	 * the machine is paused, and partition_resume lets it run on. */
	if (m->cfg.kvm.pause_on_crash && m->cfg.partition == MACHINE_KVM)
		__atomic_store_n(&m->paused, true, __ATOMIC_RELEASE);
	__atomic_store_n(&m->crashed, true, __ATOMIC_RELEASE);
}

bool machine_guest_crashed(struct machine *m)
{
	return __atomic_load_n(&m->crashed, __ATOMIC_ACQUIRE);
}

static int new_process_partition(struct machine *m)
{
	struct process_partition_config pcfg = {
		.vp_count = m->cfg.cpus,
		.memory_size = m->cfg.memory,
		.guest_path = m->cfg.guest_path,
		.guest_argv = m->cfg.guest_argv,
		.log = m->cfg.log,
		.log_ctx = m->cfg.log_ctx,
		.crash = guest_crashed,
		.crash_ctx = m,
	};
	struct process_partition *pp;
	int err = process_partition_new(&pcfg, &pp);
	if (!err)
		m->partition = process_partition_base(pp);
	return err;
}

/* The platform first: the partition routes port I/O to it. */
static int new_kvm_partition(struct machine *m, char *why, size_t why_len)
{
	struct kvm_platform_config pc = {
		.cpus = m->cfg.cpus,
		.memory = m->cfg.memory,
		.kernel = m->cfg.kvm.kernel,
		.initrd = m->cfg.kvm.initrd,
		.cmdline = m->cfg.kvm.cmdline,
		.no_s4 = m->cfg.kvm.no_s4,
		.hyperv_testdev = m->cfg.kvm.hyperv_testdev,
		.console = m->cfg.kvm.console,
		.console_ctx = m->cfg.kvm.console_ctx,
	};
	int err = kvm_platform_new(&pc, &m->platform);
	if (err)
		return err;
	struct kvm_partition_config kc = {
		.vp_count = m->cfg.cpus,
		.memory_size = m->cfg.memory,
		.device = m->cfg.kvm.device,
		.debug_exit = m->cfg.kvm.debug_exit,
		/* Boot progress, seen from the host. */
		.log_milestones = true,
		.log = m->cfg.log,
		.log_ctx = m->cfg.log_ctx,
		.pio = kvm_platform_pio,
		.pio_ctx = m->platform,
		.pause_on_crash = m->cfg.kvm.pause_on_crash,
		.crash = guest_crashed,
		.crash_ctx = m,
	};
	m->cfg.vmbus.log_milestones = true;
	struct kvm_partition *kp;
	err = kvm_partition_new(&kc, &kp);
	if (err)
		return err;
	m->partition = kvm_partition_base(kp);
	return kvm_platform_boot(m->platform, kp, why, why_len);
}

/* ---- Snapshots (snapshot.h; docs/lifecycle.md) ---- */

static void log_line(struct machine *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void log_line(struct machine *m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	glue_log(m, fmt, ap);
	va_end(ap);
}

/* What a snapshot of m records of it, and what a restore must match. */
static void describe(const struct machine *m, struct snapshot_machine *out)
{
	*out = (struct snapshot_machine){
		.cpus = m->cfg.cpus,
		.memory = m->cfg.memory,
		.vm_id = m->cfg.vm_id,
		.echo_devices = m->cfg.echo_devices,
		.nics = m->cfg.nic_count,
		.disks = m->cfg.disk_count,
		.ic = m->cfg.ic,
	};
}

/* One record: its size first (a dry run), then the record. */
static int save_record(int (*save)(void *ctx, void *buf, size_t cap, size_t *len), void *ctx,
		       void **buf, size_t *len)
{
	int err = save(ctx, NULL, 0, len);
	if (err != -ENOSPC)
		return err ? err : -EIO;
	*buf = malloc(*len);
	if (!*buf)
		return -ENOMEM;
	return save(ctx, *buf, *len, len);
}

static int save_partition(void *ctx, void *buf, size_t cap, size_t *len)
{
	*len = cap;
	return partition_save(ctx, buf, len);
}

static int save_hv(void *ctx, void *buf, size_t cap, size_t *len)
{
	return hv_save(ctx, buf, cap, len);
}

static int save_vmbus(void *ctx, void *buf, size_t cap, size_t *len)
{
	return vmbus_server_save_locked(ctx, buf, cap, len);
}

static int save_platform(void *ctx, void *buf, size_t cap, size_t *len)
{
	return kvm_platform_save(ctx, buf, cap, len);
}

/* Every record and the file, with the device lock held and the VPs
 * paused: no device thread changes the rings, the SynIC or the LAPICs
 * meanwhile, so RAM and the records agree. */
static int write_snapshot(struct machine *m, int fd, struct snapshot_stats *st, char *why,
			  size_t why_len)
{
	struct snapshot_records r = {0};
	struct snapshot_machine mc;
	describe(m, &mc);
	partition_lock(m->partition);
	int err = save_record(save_partition, m->partition, &r.buf[SNAPSHOT_PARTITION],
			      &r.len[SNAPSHOT_PARTITION]);
	if (err)
		snprintf(why, why_len, "the partition's state: %s", strerror(-err));
	if (!err) {
		err = save_record(save_hv, hv_of(m), &r.buf[SNAPSHOT_HV], &r.len[SNAPSHOT_HV]);
		if (err)
			snprintf(why, why_len, "the hypervisor interface's state: %s",
				 strerror(-err));
	}
	if (!err) {
		err = save_record(save_vmbus, m->vmbus, &r.buf[SNAPSHOT_VMBUS],
				  &r.len[SNAPSHOT_VMBUS]);
		if (err)
			snprintf(why, why_len, "VMBus and its devices: %s",
				 err == -ENOTSUP ? "a device with an open channel cannot save "
						   "its state"
				 : err == -EBUSY ? "a device is busy (a file copy under way)"
						 : strerror(-err));
	}
	if (!err) {
		err = save_record(save_platform, m->platform, &r.buf[SNAPSHOT_PLATFORM],
				  &r.len[SNAPSHOT_PLATFORM]);
		if (err)
			snprintf(why, why_len, "the platform's devices: %s", strerror(-err));
	}
	if (!err) {
		err = snapshot_write(fd, &mc, &r, partition_memory(m->partition), st);
		if (err)
			snprintf(why, why_len, "writing: %s", strerror(-err));
	}
	partition_unlock(m->partition);
	snapshot_records_free(&r);
	return err;
}

int machine_snapshot(struct machine *m, const char *path, bool resume,
		     struct machine_snapshot_stats *st, char *why, size_t why_len)
{
	*st = (struct machine_snapshot_stats){0};
	if (m->cfg.partition != MACHINE_KVM) {
		snprintf(why, why_len, "the process partition cannot be saved: its guest is a "
				       "program, not a VM");
		return -ENOTSUP;
	}
	/* Written whole under another name, then renamed: a file at path
	 * is always a complete snapshot. */
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.partial", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(why, why_len, "%s: %s", tmp, strerror(errno));
		return -errno;
	}
	uint64_t t0 = glue_now_ns(m);
	bool was_paused = __atomic_load_n(&m->paused, __ATOMIC_ACQUIRE);
	int err = was_paused ? 0 : machine_pause(m);
	if (err)
		snprintf(why, why_len, "cannot pause the VM: %s", strerror(-err));
	/* The VPs stand still, so no request comes in; the storage workers
	 * finish what they hold (what the guest's full ring holds back is
	 * saved with the channel). */
	if (!err && m->storage && storvsp_quiesce(m->storage, 10000000000ull)) {
		snprintf(why, why_len, "the storage controller's I/O did not finish in 10 s");
		err = -EBUSY;
	}
	/* And the NICs' device threads what the guest last signalled. */
	for (uint32_t i = 0; !err && i < MACHINE_MAX_NICS; i++)
		if (machine_nic(m, i))
			netvsp_flush(machine_nic(m, i));
	struct snapshot_stats ss = {0};
	if (!err)
		err = write_snapshot(m, fd, &ss, why, why_len);
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	if (!was_paused && (resume || err))
		machine_resume(m); /* asked to go on, or nothing saved */
	uint64_t t1 = glue_now_ns(m);
	*st = (struct machine_snapshot_stats){
		.file_bytes = ss.file_bytes,
		.ram_pages = ss.ram_pages,
		.ns = t1 - t0,
		.paused = was_paused || (!resume && !err),
	};
	if (err && !*why)
		snprintf(why, why_len, "%s: %s", path, strerror(-err));
	return err;
}

/* Before launch: guest RAM, the partition, hv, then VMBus and its
 * devices (which may post to the SynIC as they restore). */
static int restore(struct machine *m, char *why, size_t why_len)
{
	const char *path = m->cfg.restore;
	if (m->cfg.partition != MACHINE_KVM) {
		snprintf(why, why_len, "--restore needs the KVM partition");
		return -ENOTSUP;
	}
	uint64_t t0 = glue_now_ns(m);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "--restore %s: %s", path, strerror(errno));
		return -errno;
	}
	struct snapshot_machine expect;
	describe(m, &expect);
	struct snapshot_records r;
	struct snapshot_stats ss;
	char file_why[200] = "";
	int err = snapshot_read(fd, &expect, partition_memory(m->partition), &r, &ss, file_why,
				sizeof(file_why));
	close(fd);
	const char *what = "";
	if (!err) {
		err = partition_restore(m->partition, r.buf[SNAPSHOT_PARTITION],
					r.len[SNAPSHOT_PARTITION]);
		what = "the partition's state";
	}
	if (!err) {
		err = hv_load(hv_of(m), r.buf[SNAPSHOT_HV], r.len[SNAPSHOT_HV]);
		what = "the hypervisor interface's state";
	}
	if (!err) {
		err = kvm_platform_load(m->platform, r.buf[SNAPSHOT_PLATFORM],
					r.len[SNAPSHOT_PLATFORM]);
		what = "the platform's devices' state";
	}
	if (!err) {
		err = vmbus_server_load(m->vmbus, r.buf[SNAPSHOT_VMBUS], r.len[SNAPSHOT_VMBUS]);
		what = err == -ENODEV ? "VMBus: a device of the snapshot is missing here"
				      : "VMBus and its devices' state";
	}
	snapshot_records_free(&r);
	if (err && *file_why)
		snprintf(why, why_len, "--restore %s: %s", path, file_why);
	else if (err)
		snprintf(why, why_len, "--restore %s: %s refused (%s)", path, what,
			 strerror(-err));
	else
		log_line(m, "restored from %s: %llu KiB of RAM in pages, %.1f ms", path,
			 (unsigned long long)ss.ram_pages * 4, (glue_now_ns(m) - t0) / 1e6);
	/* A file that is not what it should be is bad input, not a failure
	 * of hvkit's. */
	return err == -EINVAL || err == -ENODEV ? -ENOEXEC : err;
}

int machine_start(const struct machine_config *cfg, struct machine **out, char *why,
		  size_t why_len)
{
	char ignored[8];
	if (!why) {
		why = ignored;
		why_len = sizeof(ignored);
	}
	snprintf(why, why_len, "%s", "");
	if (cfg->echo_devices > MACHINE_MAX_ECHO || cfg->nic_count > MACHINE_MAX_NICS ||
	    cfg->disk_count > MACHINE_MAX_DISKS)
		return -EINVAL;
	struct machine *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	pthread_mutex_init(&m->crash_lock, NULL);
	m->started_ns = glue_now_ns(m);
	int err = cfg->partition == MACHINE_KVM ? new_kvm_partition(m, why, why_len)
						: new_process_partition(m);
	if (!err)
		err = attach_vmbus(m, why, why_len);
	if (!err && cfg->restore)
		err = restore(m, why, why_len);
	if (!err)
		err = partition_launch(m->partition);
	if (err) {
		machine_stop(m);
		return err;
	}
	*out = m;
	return 0;
}

size_t machine_console_input(struct machine *m, const uint8_t *bytes, size_t len)
{
	return kvm_platform_input(m->platform, bytes, len);
}

bool machine_testdev_stats(struct machine *m, struct hv_testdev_stats *out)
{
	return kvm_platform_testdev_stats(m->platform, out);
}

int machine_wait(struct machine *m, int timeout_ms, int *status)
{
	return partition_wait(m->partition, timeout_ms, status);
}

int machine_end_fd(struct machine *m)
{
	return partition_end_fd(m->partition);
}

/* Guest and partition threads first, then the devices and the server
 * while hv still exists, then the partition. */
void machine_stop(struct machine *m)
{
	if (m->partition)
		partition_halt(m->partition);
	detach_vmbus(m);
	kvm_platform_unbind(m->platform);
	if (m->partition)
		partition_stop(m->partition);
	kvm_platform_free(m->platform);
	free_channel_connections(m);
	pthread_mutex_destroy(&m->crash_lock);
	free(m);
}

struct vmbus_server *machine_vmbus(struct machine *m)
{
	return m->vmbus;
}

int machine_on_vp_threads(struct machine *m, int (*fn)(void *ctx), void *ctx)
{
	return partition_on_vp_threads(m->partition, fn, ctx);
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

struct netvsp *machine_nic(struct machine *m, uint32_t i)
{
	return i < MACHINE_MAX_NICS && m->nics[i] ? netvsp_nic_netvsp(m->nics[i]) : NULL;
}

int machine_add_nic(struct machine *m, const struct netvsp_nic_opts *o, uint32_t *nic,
		    char *why, size_t len)
{
	uint32_t i = 0;
	while (i < MACHINE_MAX_NICS && m->nics[i])
		i++;
	if (i == MACHINE_MAX_NICS) {
		snprintf(why, len, "no room for another NIC (at most %u)", MACHINE_MAX_NICS);
		return -ENOSPC;
	}
	int err = add_nic(m, i, o, why, len);
	if (!err)
		*nic = i;
	return err;
}

int machine_remove_nic(struct machine *m, uint32_t i)
{
	if (i >= MACHINE_MAX_NICS || !m->nics[i])
		return -ENOENT;
	netvsp_nic_remove(m->vmbus, m->nics[i]);
	m->nics[i] = NULL;
	return 0;
}

int machine_set_nic_link(struct machine *m, uint32_t i, bool up)
{
	struct netvsp *n = machine_nic(m, i);
	if (!n)
		return -ENOENT;
	netvsp_set_link(n, up);
	return 0;
}

void machine_get_info(struct machine *m, struct machine_info *out)
{
	*out = (struct machine_info){
		.partition = partition_name(m->partition),
		.cpus = m->cfg.cpus,
		.memory = m->cfg.memory,
		.uptime_ns = glue_now_ns(m) - m->started_ns,
		.vm_id = m->cfg.vm_id,
		.paused = __atomic_load_n(&m->paused, __ATOMIC_ACQUIRE),
	};
	pthread_mutex_lock(&m->crash_lock);
	out->crash = m->crash;
	pthread_mutex_unlock(&m->crash_lock);
}

int machine_pause(struct machine *m)
{
	int err = partition_pause(m->partition);
	if (!err)
		__atomic_store_n(&m->paused, true, __ATOMIC_RELEASE);
	return err;
}

int machine_resume(struct machine *m)
{
	int err = partition_resume(m->partition);
	if (!err)
		__atomic_store_n(&m->paused, false, __ATOMIC_RELEASE);
	return err;
}

void machine_for_each_device(struct machine *m,
			     void (*fn)(void *arg, const struct machine_device_info *),
			     void *arg)
{
	for (int i = 0; i < MACHINE_MAX_ECHO; i++)
		if (m->echo[i])
			fn(arg, &(struct machine_device_info){"echo", m->echo_instance[i],
							      vmbus_echo_packets(m->echo[i])});
	for (uint32_t i = 0; i < MACHINE_MAX_NICS; i++) {
		struct netvsp_stats st;
		if (!m->nics[i])
			continue;
		netvsp_get_stats(netvsp_nic_netvsp(m->nics[i]), &st);
		fn(arg, &(struct machine_device_info){"nic", i, st.tx_frames + st.rx_frames});
	}
}

bool machine_failed(struct machine *m, char *why, size_t len)
{
	return partition_failed(m->partition, why, len);
}
