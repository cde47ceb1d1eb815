/* SPDX-License-Identifier: MIT */
/*
 * Control commands to integration-component requests. Each request runs
 * under the IC lock; its completion (under the same lock, on the IC timer
 * thread or a VMBus thread) answers the control request, which the control
 * core allows from any thread. A KVP listing walks the pool one index at a
 * time from inside the completions.
 */
#define _GNU_SOURCE
#include "control_ic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hvkit/proto/ic.h"

static uint64_t timeout_ns(struct control_async *a)
{
	return (uint64_t)control_async_timeout_s(a) * 1000000000ull;
}

/* The guest's HRESULT: IC_S_OK is success, anything else a refusal. */
static void answer(struct control_async *a, int err, uint32_t status)
{
	char why[96];
	if (err == -ETIMEDOUT) {
		control_async_done(a, err, "the guest did not answer in time");
	} else if (err == -ENOTCONN) {
		control_async_done(a, err, "the guest closed the service");
	} else if (err) {
		control_async_done(a, err, NULL);
	} else if (status == IC_ERROR_ALREADY_EXISTS) {
		control_async_done(a, -EEXIST, "the file exists in the guest (use overwrite)");
	} else if (status != IC_S_OK) {
		snprintf(why, sizeof(why), "the guest refused (status %#x)", status);
		control_async_done(a, -EPERM, why);
	} else {
		control_async_done(a, 0, NULL);
	}
}

static void done(void *arg, int err, uint32_t status)
{
	answer(arg, err, status);
}

/* Makes the request under the IC lock and returns its immediate result
 * (an immediate failure is answered by the control core). */
#define LOCKED(h, call)                                         \
	do {                                                    \
		ic_host_lock(h);                                \
		int rc_ = (call);                               \
		ic_host_unlock(h);                              \
		return rc_;                                     \
	} while (0)

static int power(void *ctx, enum control_power_action action, const char *reason, bool force,
		 struct control_async *a)
{
	struct ic_host *h = ctx;
	static const enum ic_shutdown_kind kinds[] = {
		[CONTROL_POWER_SHUTDOWN] = IC_SHUTDOWN_POWEROFF,
		[CONTROL_POWER_REBOOT] = IC_SHUTDOWN_REBOOT,
		[CONTROL_POWER_HIBERNATE] = IC_SHUTDOWN_HIBERNATE,
	};
	/* The reason code Hyper-V sends for a planned shutdown; the text is
	 * the guest's display message. */
	LOCKED(h, ic_shutdown_request(h, kinds[action], force, 0, 0, reason, timeout_ns(a),
					 done, a));
}

static void kvp_done(void *arg, const struct ic_kvp_result *r)
{
	struct control_async *a = arg;
	if (!r->err && r->status != IC_S_OK && r->op != IC_KVP_OP_SET)
		control_async_done(a, -ENOENT, "no such key in the guest");
	else
		answer(a, r->err, r->status);
}

static int kvp_set(void *ctx, uint32_t pool, const char *key, const char *value,
		   struct control_async *a)
{
	struct ic_host *h = ctx;
	LOCKED(h, kvp_host_set(h, pool, key, value, timeout_ns(a), kvp_done, a));
}

static int kvp_delete(void *ctx, uint32_t pool, const char *key, struct control_async *a)
{
	struct ic_host *h = ctx;
	LOCKED(h, kvp_host_delete(h, pool, key, timeout_ns(a), kvp_done, a));
}

/*
 * kvp-list and kvp-get walk the pool with ENUMERATE, one index per
 * completion. A get is a walk too: Linux loses the value of a KVP GET
 * between its driver and its daemon (hv_kvp_daemon copies value_size
 * bytes, which the driver leaves 0, and the driver then reads the answer
 * at the ENUMERATE layout, 4 bytes further on: drivers/hv/hv_kvp.c,
 * kvp_respond_to_host), so "found, empty" would come back; every guest
 * answers ENUMERATE (Hyper-V reads guest items that way too).
 */
struct walk {
	struct ic_host *h;
	struct control_async *a;
	char key[]; /* the key a get looks for; "" for a listing */
};

static void walk_next(void *arg, const struct ic_kvp_result *r);

static int walk_start(struct ic_host *h, uint32_t pool, const char *key, struct control_async *a)
{
	size_t n = strlen(key) + 1;
	struct walk *w = malloc(sizeof(*w) + n);
	if (!w)
		return -ENOMEM;
	*w = (struct walk){h, a};
	memcpy(w->key, key, n);
	ic_host_lock(h);
	int err = kvp_host_enumerate(h, pool, 0, timeout_ns(a), walk_next, w);
	ic_host_unlock(h);
	if (err)
		free(w);
	return err;
}

/* Runs under the IC lock (a completion). */
static void walk_next(void *arg, const struct ic_kvp_result *r)
{
	struct walk *w = arg;
	struct control_result *res = control_async_result(w->a);
	int err = r->err;
	bool get = w->key[0] != '\0';
	if (!err && r->status == IC_S_OK) {
		if (get && !strcmp(r->key, w->key)) {
			control_result_string(res, "value", r->value);
			answer(w->a, 0, IC_S_OK);
			free(w);
			return;
		}
		if (!get)
			control_result_pair(res, "items", r->key, r->value);
		if (!control_async_abandoned(w->a)) {
			err = kvp_host_enumerate(w->h, r->pool, r->index + 1, timeout_ns(w->a),
						 walk_next, w);
			if (!err)
				return;
		}
	}
	if (!err && get && r->status == IC_S_CONT)
		control_async_done(w->a, -ENOENT, "no such key in the guest");
	else
		answer(w->a, err, err || r->status == IC_S_CONT ? IC_S_OK : r->status);
	free(w);
}

static int kvp_get(void *ctx, uint32_t pool, const char *key, struct control_async *a)
{
	return walk_start(ctx, pool, key, a);
}

static int kvp_list(void *ctx, uint32_t pool, struct control_async *a)
{
	return walk_start(ctx, pool, "", a);
}

static int vss(void *ctx, bool freeze, struct control_async *a)
{
	struct ic_host *h = ctx;
	LOCKED(h, vss_request(h, freeze ? IC_VSS_OP_FREEZE : IC_VSS_OP_THAW, timeout_ns(a),
				 done, a));
}

static int timesync(void *ctx, struct control_async *a)
{
	struct ic_host *h = ctx;
	LOCKED(h, ic_timesync_sync(h, timeout_ns(a), done, a));
}

static int copy(void *ctx, const char *host_file, const char *guest_path, bool overwrite,
		struct control_async *a)
{
	struct ic_host *h = ctx;
	struct stat st;
	if (stat(host_file, &st))
		return -errno;
	control_result_u64(control_async_result(a), "bytes", (uint64_t)st.st_size);
	uint32_t flags = IC_FCOPY_FLAG_CREATE_PATH | (overwrite ? IC_FCOPY_FLAG_OVERWRITE : 0);
	LOCKED(h, fcopy_start(h, host_file, guest_path, flags, timeout_ns(a), done, a));
}

static const char *heartbeat_name(enum ic_heartbeat_state s)
{
	return s == IC_HEARTBEAT_ALIVE ? "alive" : s == IC_HEARTBEAT_UNRESPONSIVE ? "unresponsive"
										  : "unknown";
}

static void status(void *ctx, struct control_result *r)
{
	struct ic_host *h = ctx;
	ic_host_lock(h);
	for (int svc = 0; svc < IC_SERVICE_COUNT; svc++) {
		struct ic_service_status st;
		ic_host_status(h, (enum ic_service)svc, &st);
		if (!st.offered)
			continue;
		const char *state = svc == IC_HEARTBEAT && st.open ? heartbeat_name(st.heartbeat)
				    : st.negotiated			 ? "ready"
				    : st.open				 ? "negotiating"
									 : "closed";
		control_result_string(r, ic_service_name((enum ic_service)svc), state);
	}
	ic_host_unlock(h);
}

struct control_ic_provider control_ic_provider(struct ic_host *h)
{
	return (struct control_ic_provider){
		.ctx = h,
		.power = power,
		.kvp_set = kvp_set,
		.kvp_get = kvp_get,
		.kvp_delete = kvp_delete,
		.kvp_list = kvp_list,
		.vss = vss,
		.timesync = timesync,
		.copy = copy,
		.status = status,
	};
}
