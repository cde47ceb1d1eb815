/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "control_fake.h"

/* ---- The machine ---- */

static int fm_status(void *ctx, json_t *result)
{
	struct fake_machine *m = ctx;
	m->status_calls++;
	json_t *devices = json_array();
	for (uint32_t i = 0; i < FAKE_DEVICES; i++)
		if (m->present[i])
			json_array_append_new(devices, json_pack("{s:s,s:i}", "kind", "echo",
								 "instance", (int)i));
	json_object_set_new(result, "machine", json_pack("{s:s,s:i}", "partition", "fake",
							 "vps", 1));
	json_object_set_new(result, "vmbus", json_pack("{s:s,s:[]}", "state", "connected",
						       "channels"));
	json_object_set_new(result, "devices", devices);
	return 0;
}

static int fm_device(struct fake_machine *m, const char *kind, uint32_t instance, bool add)
{
	if (strcmp(kind, "echo"))
		return -EINVAL;
	if (instance >= FAKE_DEVICES)
		return add ? -ENOSPC : -ENOENT;
	if (m->present[instance] == add)
		return add ? -EEXIST : -ENOENT;
	m->present[instance] = add;
	return 0;
}

static int fm_add(void *ctx, const char *kind, uint32_t instance)
{
	return fm_device(ctx, kind, instance, true);
}

static int fm_remove(void *ctx, const char *kind, uint32_t instance)
{
	return fm_device(ctx, kind, instance, false);
}

/* A spec is good if it starts with "sink"; anything else is refused as
 * the real parser would, with a reason. */
static int fm_net_add(void *ctx, const char *spec, uint32_t *nic, char *why, size_t len)
{
	struct fake_machine *m = ctx;
	if (strncmp(spec, "sink", 4)) {
		snprintf(why, len, "--net: unknown backend '%s'", spec);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < FAKE_DEVICES; i++) {
		if (!m->nic[i]) {
			m->nic[i] = true;
			*nic = i;
			return 0;
		}
	}
	snprintf(why, len, "no room for another NIC");
	return -ENOSPC;
}

static int fm_net_remove(void *ctx, uint32_t nic)
{
	struct fake_machine *m = ctx;
	if (nic >= FAKE_DEVICES || !m->nic[nic])
		return -ENOENT;
	m->nic[nic] = false;
	return 0;
}

static int fm_net_link(void *ctx, uint32_t nic, bool up)
{
	struct fake_machine *m = ctx;
	if (nic >= FAKE_DEVICES || !m->nic[nic])
		return -ENOENT;
	m->link_down[nic] = !up;
	return 0;
}

/* Disks: LUNs 0..3; the path "missing" does not exist. */
static int fm_disk_add(void *ctx, const char *path, bool read_only, uint32_t *lun)
{
	struct fake_machine *m = ctx;
	if (!strcmp(path, "missing"))
		return -ENOENT;
	uint32_t l = *lun;
	for (uint32_t i = 0; l == UINT32_MAX && i < FAKE_DEVICES; i++)
		if (!m->disk[i])
			l = i;
	if (l == UINT32_MAX)
		return -ENOSPC;
	if (l >= FAKE_DEVICES)
		return -EINVAL;
	if (m->disk[l])
		return -EEXIST;
	m->disk[l] = true;
	m->disk_read_only[l] = read_only;
	*lun = l;
	return 0;
}

/* The controller goes with every disk; none without a disk. */
static int fm_storage_remove(void *ctx)
{
	struct fake_machine *m = ctx;
	bool any = false;
	for (uint32_t i = 0; i < FAKE_DEVICES; i++) {
		any |= m->disk[i];
		m->disk[i] = false;
	}
	m->storage_removed |= any;
	return any ? 0 : -ENOENT;
}

static int fm_disk_remove(void *ctx, uint32_t lun)
{
	struct fake_machine *m = ctx;
	if (lun >= FAKE_DEVICES || !m->disk[lun])
		return -ENOENT;
	m->disk[lun] = false;
	return 0;
}

struct control_backend fake_machine_backend(struct fake_machine *m)
{
	return (struct control_backend){m, fm_status, fm_add, fm_remove, fm_net_add,
					fm_net_remove, fm_net_link, fm_disk_add, fm_disk_remove,
					fm_storage_remove};
}

/* ---- The integration components ---- */

/* Every operation ends here with its result already written. */
static int fic_start(struct fake_ic *ic, struct control_async *a)
{
	ic->calls++;
	switch (ic->mode) {
	case FAKE_IC_ANSWER_NOW:
		control_async_done(a, 0, NULL);
		return 0;
	case FAKE_IC_GUEST_SAYS:
		control_async_done(a, ic->complete_err, "the guest says no");
		return 0;
	case FAKE_IC_REFUSE:
		return ic->refuse_err;
	case FAKE_IC_HOLD:
		if (ic->held_count == FAKE_HELD)
			return -EBUSY;
		ic->held[ic->held_count++] = a;
		return 0;
	}
	return -EINVAL;
}

/* Only write a result when the request is to complete now: a held one is
 * written by the test, and a refused one must not be touched. */
static bool writes(const struct fake_ic *ic)
{
	return ic->mode == FAKE_IC_ANSWER_NOW;
}

static int fic_power(void *ctx, enum control_power_action action, const char *reason,
		     bool force, struct control_async *a)
{
	struct fake_ic *ic = ctx;
	snprintf(ic->last, sizeof(ic->last), "power %d %s %d %u", action, reason, force,
		 control_async_timeout_s(a));
	if (writes(ic))
		control_result_string(control_async_result(a), "answer", "accepted");
	return fic_start(ic, a);
}

static int fic_kvp_set(void *ctx, uint32_t pool, const char *key, const char *value,
		       struct control_async *a)
{
	struct fake_ic *ic = ctx;
	snprintf(ic->last, sizeof(ic->last), "set %u %s=%s", pool, key, value);
	return fic_start(ic, a);
}

static int fic_kvp_get(void *ctx, uint32_t pool, const char *key, struct control_async *a)
{
	struct fake_ic *ic = ctx;
	snprintf(ic->last, sizeof(ic->last), "get %u %s", pool, key);
	if (writes(ic))
		control_result_string(control_async_result(a), "value", "forty-two");
	return fic_start(ic, a);
}

static int fic_kvp_delete(void *ctx, uint32_t pool, const char *key, struct control_async *a)
{
	struct fake_ic *ic = ctx;
	snprintf(ic->last, sizeof(ic->last), "delete %u %s", pool, key);
	return fic_start(ic, a);
}

static int fic_kvp_list(void *ctx, uint32_t pool, struct control_async *a)
{
	struct fake_ic *ic = ctx;
	snprintf(ic->last, sizeof(ic->last), "list %u", pool);
	if (writes(ic)) {
		control_result_pair(control_async_result(a), "items", "a", "1");
		control_result_pair(control_async_result(a), "items", "b", "2");
	}
	return fic_start(ic, a);
}

static int fic_vss(void *ctx, bool freeze, struct control_async *a)
{
	struct fake_ic *ic = ctx;
	snprintf(ic->last, sizeof(ic->last), "vss %d", freeze);
	return fic_start(ic, a);
}

static int fic_timesync(void *ctx, struct control_async *a)
{
	struct fake_ic *ic = ctx;
	snprintf(ic->last, sizeof(ic->last), "timesync");
	return fic_start(ic, a);
}

static int fic_copy(void *ctx, const char *host_file, const char *guest_path, bool overwrite,
		    struct control_async *a)
{
	struct fake_ic *ic = ctx;
	snprintf(ic->last, sizeof(ic->last), "copy %s %s %d", host_file, guest_path, overwrite);
	if (writes(ic))
		control_result_u64(control_async_result(a), "bytes", 42);
	return fic_start(ic, a);
}

static void fic_status(void *ctx, struct control_result *r)
{
	(void)ctx;
	control_result_string(r, "heartbeat", "alive");
	control_result_bool(r, "kvp", true);
}

struct control_ic_provider fake_ic_provider(struct fake_ic *ic)
{
	return (struct control_ic_provider){
		.ctx = ic,
		.power = fic_power,
		.kvp_set = fic_kvp_set,
		.kvp_get = fic_kvp_get,
		.kvp_delete = fic_kvp_delete,
		.kvp_list = fic_kvp_list,
		.vss = fic_vss,
		.timesync = fic_timesync,
		.copy = fic_copy,
		.status = fic_status,
	};
}

/* ---- The sink ---- */

void sink_emit(void *ctx, uint64_t client, const char *line, size_t len)
{
	struct sink *s = ctx;
	json_t *msg = NULL;
	/* One line, newline-terminated, one JSON object with id and ok. */
	if (len && line[len - 1] == '\n' && !memchr(line, '\n', len - 1))
		msg = json_loadb(line, len - 1, 0, NULL);
	json_t *ok = json_object_get(msg, "ok");
	json_t *id = json_object_get(msg, "id");
	if (!json_is_boolean(ok) || !(json_is_integer(id) || json_is_null(id)) ||
	    !json_is_object(json_object_get(msg, json_is_true(ok) ? "result" : "error")))
		s->malformed++;
	if (s->count < SINK_MAX) {
		s->clients[s->count] = client;
		s->msgs[s->count++] = msg;
	} else {
		json_decref(msg);
	}
}

void sink_clear(struct sink *s)
{
	for (uint32_t i = 0; i < s->count; i++)
		json_decref(s->msgs[i]);
	s->count = 0;
	s->malformed = 0;
}
