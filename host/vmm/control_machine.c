/* SPDX-License-Identifier: MIT */
/*
 * The machine behind the control socket: its status as JSON and hot add
 * and remove of devices. Runs on the control thread; the calls it makes
 * take the device lock themselves, briefly.
 */
#include <errno.h>
#include <string.h>

#include "control_machine.h"
#include "hvkit/vmbus_classes.h"

static const char *channel_state(enum vmbus_server_channel_state s)
{
	switch (s) {
	case VMBUS_CHANNEL_UNOFFERED:
		return "unoffered";
	case VMBUS_CHANNEL_OFFERED:
		return "offered";
	case VMBUS_CHANNEL_OPEN:
		return "open";
	case VMBUS_CHANNEL_RESCINDED:
		return "rescinded";
	}
	return "unknown";
}

static void add_channel(void *arg, const struct vmbus_server_channel_info *ci)
{
	json_t *channels = arg;
	const struct vmbus_class_info *cls = vmbus_class_find(&ci->class_id);
	char class_id[HV_GUID_STRING_LEN + 1], instance[HV_GUID_STRING_LEN + 1];
	hv_guid_format(&ci->class_id, class_id);
	hv_guid_format(&ci->instance_id, instance);
	json_array_append_new(
		channels,
		json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:I,s:I,s:I,s:I}", "class",
			  cls ? cls->name : "unknown", "class_id", class_id, "instance", instance,
			  "relid", (json_int_t)ci->relid, "sub_index",
			  (json_int_t)ci->sub_channel_index, "state", channel_state(ci->state),
			  "target_vp", (json_int_t)ci->target_vp, "guest_signals",
			  (json_int_t)ci->guest_signals, "host_signals",
			  (json_int_t)ci->host_signals, "spurious_signals",
			  (json_int_t)ci->spurious_signals));
}

static void add_device(void *arg, const struct machine_device_info *di)
{
	json_array_append_new(arg, json_pack("{s:s,s:I,s:I}", "kind", di->kind, "instance",
					     (json_int_t)di->instance, "packets",
					     (json_int_t)di->packets));
}

/* {"vp", "params": [P0..P4], "message", "reports"}: the latest report. */
static json_t *crash_report(const struct machine_crash *c)
{
	json_t *params = json_array();
	for (int i = 0; params && i < 5; i++)
		json_array_append_new(params, json_integer((json_int_t)c->params[i]));
	return json_pack("{s:I,s:o*,s:s,s:I}", "vp", (json_int_t)c->vp, "params", params,
			 "message", c->message, "reports", (json_int_t)c->reports);
}

static int status(void *ctx, json_t *result)
{
	struct machine *m = ctx;
	struct machine_info mi;
	machine_get_info(m, &mi);
	struct vmbus_server_stats st;
	vmbus_server_get_stats(machine_vmbus(m), &st);
	json_t *channels = json_array(), *devices = json_array();
	if (channels)
		vmbus_server_for_each_channel(machine_vmbus(m), add_channel, channels);
	if (devices)
		machine_for_each_device(m, add_device, devices);
	char version[16] = "";
	if (st.connection == VMBUS_SERVER_CONNECTED)
		snprintf(version, sizeof(version), "%u.%u", VMBUS_VERSION_MAJOR(st.version),
			 VMBUS_VERSION_MINOR(st.version));
	json_t *machine = json_pack("{s:s,s:I,s:I,s:f}", "partition", mi.partition, "vps",
				    (json_int_t)mi.cpus, "memory", (json_int_t)mi.memory,
				    "uptime_seconds", (double)mi.uptime_ns / 1e9);
	if (machine)
		json_object_set_new(machine, "paused", json_boolean(mi.paused));
	if (machine && mi.crash.reports)
		json_object_set_new(machine, "crash", crash_report(&mi.crash));
	if (machine && !hv_guid_is_null(&mi.vm_id)) {
		char id[HV_GUID_STRING_LEN + 1];
		hv_guid_format(&mi.vm_id, id);
		json_object_set_new(machine, "vm_id", json_string(id));
	}
	json_t *vmbus = json_pack(
		"{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:o*}", "state",
		st.connection == VMBUS_SERVER_CONNECTED ? "connected" : "disconnected", "version",
		version, "connects", (json_int_t)st.connects, "unloads", (json_int_t)st.unloads,
		"gpadls", (json_int_t)st.gpadls, "gpadl_bytes", (json_int_t)st.gpadl_bytes,
		"bad_messages", (json_int_t)st.bad_messages, "channels", channels);
	if (!vmbus)
		json_decref(channels);
	int err = machine && vmbus && devices ? 0 : -ENOMEM;
	json_object_set_new(result, "machine", machine);
	json_object_set_new(result, "vmbus", vmbus);
	json_object_set_new(result, "devices", devices);
	return err;
}

static int device_add(void *ctx, const char *kind, uint32_t instance)
{
	return strcmp(kind, "echo") ? -EINVAL : machine_add_echo(ctx, instance);
}

static int device_remove(void *ctx, const char *kind, uint32_t instance)
{
	return strcmp(kind, "echo") ? -EINVAL : machine_remove_echo(ctx, instance);
}

static int net_add(void *ctx, const char *spec, uint32_t *nic, char *why, size_t len)
{
	struct netvsp_nic_opts o;
	int err = netvsp_nic_parse(spec, &o, why, len);
	return err ? err : machine_add_nic(ctx, &o, nic, why, len);
}

static int net_remove(void *ctx, uint32_t nic)
{
	return machine_remove_nic(ctx, nic);
}

static int net_link(void *ctx, uint32_t nic, bool up)
{
	return machine_set_nic_link(ctx, nic, up);
}

static int disk_add(void *ctx, const char *path, bool read_only, uint32_t *lun)
{
	struct machine_disk d = {.path = path, .read_only = read_only};
	if (*lun != UINT32_MAX)
		return machine_add_disk(ctx, *lun, &d);
	/* The first free LUN: the controller says which are taken. */
	for (uint32_t l = 0; l < MACHINE_MAX_DISKS; l++) {
		int err = machine_add_disk(ctx, l, &d);
		if (err != -EEXIST) {
			*lun = l;
			return err;
		}
	}
	return -ENOSPC;
}

static int storage_remove(void *ctx)
{
	return machine_remove_storage(ctx);
}

static int disk_remove(void *ctx, uint32_t lun)
{
	return machine_remove_disk(ctx, lun);
}

static int pause_machine(void *ctx)
{
	return machine_pause(ctx);
}

static int resume_machine(void *ctx)
{
	return machine_resume(ctx);
}

static int snapshot(void *ctx, const char *path, bool resume, json_t *result, char *why,
		    size_t why_len)
{
	struct machine_snapshot_stats st;
	int err = machine_snapshot(ctx, path, resume, &st, why, why_len);
	if (err)
		return err;
	json_object_set_new(result, "path", json_string(path));
	json_object_set_new(result, "bytes", json_integer((json_int_t)st.file_bytes));
	json_object_set_new(result, "ram_bytes", json_integer((json_int_t)st.ram_pages * 4096));
	json_object_set_new(result, "seconds", json_real((double)st.ns / 1e9));
	json_object_set_new(result, "paused", json_boolean(st.paused));
	return 0;
}

struct control_backend control_machine_backend(struct machine *m)
{
	return (struct control_backend){
		.ctx = m,
		.status = status,
		.device_add = device_add,
		.device_remove = device_remove,
		.net_add = net_add,
		.net_remove = net_remove,
		.net_link = net_link,
		.disk_add = disk_add,
		.disk_remove = disk_remove,
		.storage_remove = storage_remove,
		.pause = pause_machine,
		.resume = resume_machine,
		.snapshot = snapshot,
	};
}
