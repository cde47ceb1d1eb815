/* SPDX-License-Identifier: MIT */
/*
 * The control protocol's core: request lines in, response lines out
 * (docs/control.md). Every input is untrusted: a line that is not a JSON
 * object with an integer "id" and a string "command", an unknown command,
 * an unknown or mistyped argument, each gets an error response and changes
 * nothing.
 *
 * Asynchronous requests (those that wait for the guest) live in two
 * places: the core's pending list (control thread only) and, once the
 * provider finishes them, the shared queue's done list (any thread, under
 * the queue lock). Each holds a reference for the core and one for the
 * provider; the queue is reference-counted by the core and by every
 * request, so a provider that completes after the core is gone (or after a
 * timeout) touches only memory that is still its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

struct control_queue {
	pthread_mutex_t lock;
	unsigned refs;
	bool dead;                       /* the core is gone */
	struct control_async *done_head; /* completed, not yet answered */
	struct control_async **done_tail;
	void (*wake)(void *ctx);
	void *wake_ctx;
};

struct control_result {
	json_t *obj;
};

struct control_async {
	struct control_queue *q;
	/* Under q->lock. */
	unsigned refs;
	bool completed, abandoned;
	struct control_async *done_next;
	/* Written by the provider before completion, read by the core after. */
	struct control_result result;
	int err;
	char *message;
	/* Control thread only. */
	uint64_t client;
	json_int_t id;
	uint64_t deadline_ms;
	uint32_t timeout_s;
	const char *command;
	struct control_async *next;
};

struct control_core {
	struct control_core_config cfg;
	struct control_queue *q;
	struct control_async *pending;
	uint32_t pending_count;
	bool quit;
	pthread_mutex_t ic_lock;
	struct control_ic_provider ic;
	bool ic_registered;
};

/* ---- Results ---- */

static json_t *result_obj(struct control_result *r)
{
	if (!r->obj)
		r->obj = json_object();
	return r->obj;
}

static int result_set(struct control_result *r, const char *key, json_t *v)
{
	json_t *o = result_obj(r);
	if (!o || !v || json_object_set_new(o, key, v)) {
		json_decref(v);
		return -ENOMEM;
	}
	return 0;
}

int control_result_string(struct control_result *r, const char *key, const char *value)
{
	/* json_string refuses what is not UTF-8: the provider converts. */
	json_t *v = json_string(value);
	return v ? result_set(r, key, v) : -EILSEQ;
}

int control_result_u64(struct control_result *r, const char *key, uint64_t value)
{
	return result_set(r, key, json_integer((json_int_t)value));
}

int control_result_bool(struct control_result *r, const char *key, bool value)
{
	return result_set(r, key, json_boolean(value));
}

int control_result_pair(struct control_result *r, const char *list, const char *key,
			const char *value)
{
	json_t *o = result_obj(r);
	if (!o)
		return -ENOMEM;
	json_t *arr = json_object_get(o, list);
	if (!json_is_array(arr)) {
		arr = json_array();
		if (result_set(r, list, arr))
			return -ENOMEM;
	}
	json_t *pair = json_pack("{s:s,s:s}", "key", key, "value", value);
	if (!pair)
		return -EILSEQ;
	return json_array_append_new(arr, pair) ? -ENOMEM : 0;
}

/* ---- Asynchronous requests ---- */

static void queue_put(struct control_queue *q)
{
	pthread_mutex_lock(&q->lock);
	bool last = --q->refs == 0;
	pthread_mutex_unlock(&q->lock);
	if (last) {
		pthread_mutex_destroy(&q->lock);
		free(q);
	}
}

static void async_put(struct control_async *a)
{
	struct control_queue *q = a->q;
	pthread_mutex_lock(&q->lock);
	bool last = --a->refs == 0;
	pthread_mutex_unlock(&q->lock);
	if (last) {
		json_decref(a->result.obj);
		free(a->message);
		free(a);
		queue_put(q);
	}
}

struct control_result *control_async_result(struct control_async *a)
{
	return &a->result;
}

uint32_t control_async_timeout_s(const struct control_async *a)
{
	return a->timeout_s;
}

bool control_async_abandoned(struct control_async *a)
{
	pthread_mutex_lock(&a->q->lock);
	bool abandoned = a->abandoned;
	pthread_mutex_unlock(&a->q->lock);
	return abandoned;
}

void control_async_done(struct control_async *a, int err, const char *message)
{
	struct control_queue *q = a->q;
	char *copy = message ? strdup(message) : NULL;
	pthread_mutex_lock(&q->lock);
	if (!a->completed) {
		a->completed = true;
		a->err = err;
		a->message = copy;
		copy = NULL;
		if (!a->abandoned) {
			a->done_next = NULL;
			*q->done_tail = a;
			q->done_tail = &a->done_next;
			/* Under the lock: the core cannot go away meanwhile. */
			if (!q->dead && q->wake)
				q->wake(q->wake_ctx);
		}
	}
	pthread_mutex_unlock(&q->lock);
	free(copy);
	async_put(a); /* the provider's reference */
}

static void pending_unlink(struct control_core *c, struct control_async *a)
{
	for (struct control_async **p = &c->pending; *p; p = &(*p)->next)
		if (*p == a) {
			*p = a->next;
			c->pending_count--;
			return;
		}
}

/* The answer is no longer wanted. The core's reference goes now unless
 * the request sits on the done list, where poll drops it. */
static void async_abandon(struct control_core *c, struct control_async *a)
{
	pending_unlink(c, a);
	pthread_mutex_lock(&c->q->lock);
	a->abandoned = true;
	bool on_done_list = a->completed;
	pthread_mutex_unlock(&c->q->lock);
	if (!on_done_list)
		async_put(a);
}

/* ---- Responses ---- */

static void emit_json(struct control_core *c, uint64_t client, json_t *msg)
{
	char *s = msg ? json_dumps(msg, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(msg);
	if (!s) {
		static const char oom[] = "{\"id\":null,\"ok\":false,\"error\":{\"code\":"
					  "\"internal\",\"message\":\"out of memory\"}}\n";
		c->cfg.emit(c->cfg.emit_ctx, client, oom, sizeof(oom) - 1);
		return;
	}
	size_t len = strlen(s);
	char *line = realloc(s, len + 2);
	if (!line) {
		free(s);
		return;
	}
	line[len] = '\n';
	line[len + 1] = '\0';
	c->cfg.emit(c->cfg.emit_ctx, client, line, len + 1);
	free(line);
}

static json_t *id_json(const json_int_t *id)
{
	return id ? json_integer(*id) : json_null();
}

static void respond_ok(struct control_core *c, uint64_t client, const json_int_t *id,
		       json_t *result)
{
	emit_json(c, client,
		  json_pack("{s:o,s:b,s:o}", "id", id_json(id), "ok", 1,
			    "result", result ? result : json_object()));
}

static void respond_error(struct control_core *c, uint64_t client, const json_int_t *id,
			  const char *code, const char *message)
{
	emit_json(c, client,
		  json_pack("{s:o,s:b,s:{s:s,s:s}}", "id", id_json(id), "ok", 0, "error", "code",
			    code, "message", message));
}

const char *control_error_code(int err)
{
	switch (err) {
	case -EINVAL:
	case -E2BIG:
	case -ERANGE:
		return "bad-args";
	case -ENOENT:
		return "not-found";
	case -EEXIST:
		return "exists";
	case -ENOSPC:
		return "no-space";
	case -ENODEV:
	case -EOPNOTSUPP:
	case -ENOTCONN:
		return "service-not-offered";
	case -ETIMEDOUT:
		return "timeout";
	case -EPERM:
	case -EACCES:
	case -ECANCELED:
		return "guest-refused";
	case -EBUSY:
	case -EAGAIN:
		return "busy";
	case -ESHUTDOWN:
		return "shutting-down";
	default:
		return "internal";
	}
}

/* ---- Requests and their arguments ---- */

struct request {
	struct control_core *c;
	uint64_t client;
	json_int_t id;
	const char *command;
	json_t *args;
	uint64_t now_ms;
	char error[160]; /* the message of a bad-args answer */
};

__attribute__((format(printf, 2, 3))) static int bad_arg(struct request *rq, const char *fmt,
							  ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rq->error, sizeof(rq->error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A string argument; *out stays NULL if optional and absent. */
static int arg_string(struct request *rq, const char *key, bool required, size_t max,
		      const char **out)
{
	json_t *v = json_object_get(rq->args, key);
	*out = NULL;
	if (!v)
		return required ? bad_arg(rq, "%s: argument '%s' is required", rq->command, key)
				: 0;
	if (!json_is_string(v))
		return bad_arg(rq, "%s: argument '%s' must be a string", rq->command, key);
	if (json_string_length(v) > max)
		return bad_arg(rq, "%s: argument '%s' is longer than %zu bytes", rq->command, key,
			       max);
	*out = json_string_value(v);
	return 0;
}

static int arg_u32(struct request *rq, const char *key, bool required, uint32_t min,
		   uint32_t max, uint32_t *out)
{
	json_t *v = json_object_get(rq->args, key);
	if (!v)
		return required ? bad_arg(rq, "%s: argument '%s' is required", rq->command, key)
				: 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return bad_arg(rq, "%s: argument '%s' must be an integer from %u to %u",
			       rq->command, key, min, max);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

static int arg_bool(struct request *rq, const char *key, bool *out)
{
	json_t *v = json_object_get(rq->args, key);
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return bad_arg(rq, "%s: argument '%s' must be true or false", rq->command, key);
	*out = json_is_true(v);
	return 0;
}

/* ---- Synchronous commands ---- */

static int cmd_status(struct request *rq, json_t *result)
{
	struct control_core *c = rq->c;
	int err = c->cfg.backend.status ? c->cfg.backend.status(c->cfg.backend.ctx, result)
					: -ENODEV;
	if (err)
		return err;
	struct control_result services = {json_object()};
	pthread_mutex_lock(&c->ic_lock);
	if (c->ic_registered && c->ic.status)
		c->ic.status(c->ic.ctx, &services);
	pthread_mutex_unlock(&c->ic_lock);
	return services.obj && !json_object_set_new(result, "services", services.obj) ? 0
										   : -ENOMEM;
}

static int device_args(struct request *rq, const char **kind, uint32_t *instance)
{
	int err = arg_string(rq, "kind", true, 64, kind);
	return err ? err : arg_u32(rq, "instance", true, 0, UINT32_MAX, instance);
}

static int cmd_device(struct request *rq, json_t *result, bool add)
{
	const struct control_backend *b = &rq->c->cfg.backend;
	const char *kind;
	uint32_t instance = 0;
	int err = device_args(rq, &kind, &instance);
	if (err)
		return err;
	int (*op)(void *, const char *, uint32_t) = add ? b->device_add : b->device_remove;
	err = op ? op(b->ctx, kind, instance) : -EOPNOTSUPP;
	if (err == -EINVAL)
		return bad_arg(rq, "%s: unknown device kind '%s' (known: echo)", rq->command,
			       kind);
	if (err == -EEXIST)
		snprintf(rq->error, sizeof(rq->error), "%s: %s %u already exists", rq->command,
			 kind, instance);
	else if (err == -ENOENT)
		snprintf(rq->error, sizeof(rq->error), "%s: there is no %s %u", rq->command, kind,
			 instance);
	else if (err == -ENOSPC)
		snprintf(rq->error, sizeof(rq->error), "%s: no room for another %s device",
			 rq->command, kind);
	if (err)
		return err;
	return json_object_set_new(result, "kind", json_string(kind)) ||
			       json_object_set_new(result, "instance", json_integer(instance))
		       ? -ENOMEM
		       : 0;
}

static int cmd_device_add(struct request *rq, json_t *result)
{
	return cmd_device(rq, result, true);
}

static int cmd_device_remove(struct request *rq, json_t *result)
{
	return cmd_device(rq, result, false);
}

static int no_nic(struct request *rq, int err, uint32_t nic)
{
	if (err == -ENOENT)
		snprintf(rq->error, sizeof(rq->error), "%s: there is no NIC %u", rq->command, nic);
	return err;
}

static int cmd_net_add(struct request *rq, json_t *result)
{
	const struct control_backend *b = &rq->c->cfg.backend;
	const char *spec;
	int err = arg_string(rq, "spec", true, 1000, &spec);
	if (err)
		return err;
	if (!b->net_add)
		return -EOPNOTSUPP;
	uint32_t nic = 0;
	char why[sizeof(rq->error) - 16] = "";
	err = b->net_add(b->ctx, spec, &nic, why, sizeof(why));
	if (err) {
		snprintf(rq->error, sizeof(rq->error), "%s: %s", rq->command, why);
		return err;
	}
	return json_object_set_new(result, "nic", json_integer(nic)) ? -ENOMEM : 0;
}

static int cmd_net_remove(struct request *rq, json_t *result)
{
	const struct control_backend *b = &rq->c->cfg.backend;
	uint32_t nic = 0;
	int err = arg_u32(rq, "nic", true, 0, UINT32_MAX, &nic);
	if (err)
		return err;
	err = no_nic(rq, b->net_remove ? b->net_remove(b->ctx, nic) : -EOPNOTSUPP, nic);
	return err ? err : json_object_set_new(result, "nic", json_integer(nic)) ? -ENOMEM : 0;
}

static int cmd_net_link(struct request *rq, json_t *result)
{
	const struct control_backend *b = &rq->c->cfg.backend;
	uint32_t nic = 0;
	const char *link;
	int err = arg_u32(rq, "nic", true, 0, UINT32_MAX, &nic);
	if (!err)
		err = arg_string(rq, "link", true, 8, &link);
	if (err)
		return err;
	if (strcmp(link, "up") && strcmp(link, "down"))
		return bad_arg(rq, "%s: argument 'link' must be \"up\" or \"down\"", rq->command);
	bool up = !strcmp(link, "up");
	err = no_nic(rq, b->net_link ? b->net_link(b->ctx, nic, up) : -EOPNOTSUPP, nic);
	return err ? err
		   : json_object_set_new(result, "nic", json_integer(nic)) ||
				   json_object_set_new(result, "link", json_string(link))
			   ? -ENOMEM
			   : 0;
}

/* disk-add {path, readonly?, lun?} / disk-remove {lun}. */
static int cmd_disk(struct request *rq, json_t *result, bool add)
{
	const struct control_backend *b = &rq->c->cfg.backend;
	const char *path = NULL;
	bool ro = false;
	uint32_t lun = UINT32_MAX;
	int err = add ? arg_string(rq, "path", true, 4096, &path) : 0;
	if (!err && add)
		err = arg_bool(rq, "readonly", &ro);
	if (!err)
		err = arg_u32(rq, "lun", !add, 0, 63, &lun);
	if (err)
		return err;
	if (add)
		err = b->disk_add ? b->disk_add(b->ctx, path, ro, &lun) : -EOPNOTSUPP;
	else
		err = b->disk_remove ? b->disk_remove(b->ctx, lun) : -EOPNOTSUPP;
	if (err == -EEXIST)
		snprintf(rq->error, sizeof(rq->error), "%s: LUN %u is taken", rq->command, lun);
	else if (err == -ENOENT && !add)
		snprintf(rq->error, sizeof(rq->error), "%s: there is no disk at LUN %u", rq->command,
			 lun);
	else if (err == -ENOSPC)
		snprintf(rq->error, sizeof(rq->error), "%s: every LUN is taken", rq->command);
	else if (err && add)
		snprintf(rq->error, sizeof(rq->error), "%s: %s: %s", rq->command, path,
			 strerror(-err));
	if (err)
		return err == -EACCES || err == -EPERM || err == -EROFS ? -EINVAL : err;
	return json_object_set_new(result, "lun", json_integer(lun)) ? -ENOMEM : 0;
}

static int cmd_disk_add(struct request *rq, json_t *result)
{
	return cmd_disk(rq, result, true);
}

static int cmd_disk_remove(struct request *rq, json_t *result)
{
	return cmd_disk(rq, result, false);
}

static int cmd_storage_remove(struct request *rq, json_t *result)
{
	(void)result;
	const struct control_backend *b = &rq->c->cfg.backend;
	int err = b->storage_remove ? b->storage_remove(b->ctx) : -EOPNOTSUPP;
	if (err == -ENOENT)
		snprintf(rq->error, sizeof(rq->error), "%s: there is no storage controller",
			 rq->command);
	return err;
}

static int cmd_pause_resume(struct request *rq, json_t *result)
{
	(void)result;
	const struct control_backend *b = &rq->c->cfg.backend;
	bool pause = !strcmp(rq->command, "pause");
	int (*op)(void *ctx) = pause ? b->pause : b->resume;
	int err = op ? op(b->ctx) : -ENOTSUP;
	const char *why = err == -ENOTSUP	       ? "this partition cannot pause"
			  : err == -EALREADY	       ? "the machine is paused already"
			  : err == -EINVAL && !pause ? "the machine is not paused"
						       : NULL;
	if (why)
		snprintf(rq->error, sizeof(rq->error), "%s: %s", rq->command, why);
	return err;
}

static int cmd_snapshot(struct request *rq, json_t *result)
{
	const struct control_backend *b = &rq->c->cfg.backend;
	const char *path;
	bool resume = false;
	int err = arg_string(rq, "path", true, 4000, &path);
	if (!err && path[0] != '/')
		err = bad_arg(rq, "snapshot: path must be an absolute path");
	if (!err)
		err = arg_bool(rq, "resume", &resume);
	if (err)
		return err;
	if (!b->snapshot) {
		snprintf(rq->error, sizeof(rq->error), "snapshot: this machine cannot be saved");
		return -ENOTSUP;
	}
	char why[300] = "";
	err = b->snapshot(b->ctx, path, resume, result, why, sizeof(why));
	if (err)
		snprintf(rq->error, sizeof(rq->error), "snapshot: %s",
			 *why ? why : strerror(-err));
	return err;
}

static int cmd_quit(struct request *rq, json_t *result)
{
	(void)result;
	rq->c->quit = true;
	return 0;
}

/* ---- Commands that wait for the guest ---- */

/* The checked arguments of an integration request. */
struct ic_call {
	uint32_t timeout_s;
	enum control_power_action action;
	const char *reason;
	bool force;
	uint32_t pool;
	const char *key, *value;
	bool freeze;
	const char *host_file, *guest_path;
	bool overwrite;
};

static int ic_args_timeout(struct request *rq, struct ic_call *call, uint32_t dflt)
{
	call->timeout_s = dflt;
	return arg_u32(rq, "timeout", false, 1, CONTROL_TIMEOUT_MAX, &call->timeout_s);
}

static int ic_args_power(struct request *rq, struct ic_call *call)
{
	call->action = !strcmp(rq->command, "shutdown") ? CONTROL_POWER_SHUTDOWN
		       : !strcmp(rq->command, "reboot") ? CONTROL_POWER_REBOOT
							 : CONTROL_POWER_HIBERNATE;
	int err = ic_args_timeout(rq, call, 60);
	if (!err)
		err = arg_string(rq, "reason", false, 512, &call->reason);
	if (!err)
		err = arg_bool(rq, "force", &call->force);
	if (!call->reason)
		call->reason = "";
	return err;
}

static int ic_args_kvp(struct request *rq, struct ic_call *call)
{
	bool set = !strcmp(rq->command, "kvp-set"), list = !strcmp(rq->command, "kvp-list");
	int err = ic_args_timeout(rq, call, 10);
	if (!err)
		err = arg_u32(rq, "pool", false, 0, CONTROL_KVP_POOLS - 1, &call->pool);
	if (!err && !list) {
		err = arg_string(rq, "key", true, CONTROL_KVP_KEY_MAX, &call->key);
		if (!err && !call->key[0])
			err = bad_arg(rq, "%s: the key is empty", rq->command);
	}
	if (!err && set)
		err = arg_string(rq, "value", true, CONTROL_KVP_VALUE_MAX, &call->value);
	return err;
}

static int ic_args_vss(struct request *rq, struct ic_call *call)
{
	call->freeze = !strcmp(rq->command, "vss-freeze");
	return ic_args_timeout(rq, call, 60);
}

static int ic_args_timesync(struct request *rq, struct ic_call *call)
{
	return ic_args_timeout(rq, call, 10);
}

static int ic_args_copy(struct request *rq, struct ic_call *call)
{
	int err = ic_args_timeout(rq, call, 300);
	if (!err)
		err = arg_string(rq, "host_file", true, 4096, &call->host_file);
	if (!err && call->host_file[0] != '/')
		err = bad_arg(rq, "copy: host_file must be an absolute path");
	if (!err)
		err = arg_string(rq, "guest_path", true, 4096, &call->guest_path);
	if (!err && !call->guest_path[0])
		err = bad_arg(rq, "copy: guest_path is empty");
	if (!err)
		err = arg_bool(rq, "overwrite", &call->overwrite);
	return err;
}

/* Calls the provider (ic_lock held); -ENODEV if it lacks the operation. */
static int ic_start(const struct control_ic_provider *p, const char *command,
		    const struct ic_call *call, struct control_async *a)
{
	if (!strcmp(command, "shutdown") || !strcmp(command, "reboot") ||
	    !strcmp(command, "hibernate"))
		return p->power ? p->power(p->ctx, call->action, call->reason, call->force, a)
				: -ENODEV;
	if (!strcmp(command, "kvp-set"))
		return p->kvp_set ? p->kvp_set(p->ctx, call->pool, call->key, call->value, a)
				  : -ENODEV;
	if (!strcmp(command, "kvp-get"))
		return p->kvp_get ? p->kvp_get(p->ctx, call->pool, call->key, a) : -ENODEV;
	if (!strcmp(command, "kvp-delete"))
		return p->kvp_delete ? p->kvp_delete(p->ctx, call->pool, call->key, a) : -ENODEV;
	if (!strcmp(command, "kvp-list"))
		return p->kvp_list ? p->kvp_list(p->ctx, call->pool, a) : -ENODEV;
	if (!strcmp(command, "vss-freeze") || !strcmp(command, "vss-thaw"))
		return p->vss ? p->vss(p->ctx, call->freeze, a) : -ENODEV;
	if (!strcmp(command, "timesync"))
		return p->timesync ? p->timesync(p->ctx, a) : -ENODEV;
	if (!strcmp(command, "copy"))
		return p->copy ? p->copy(p->ctx, call->host_file, call->guest_path,
					 call->overwrite, a)
			       : -ENODEV;
	return -ENODEV;
}

static int run_async(struct request *rq, int (*parse)(struct request *, struct ic_call *))
{
	struct control_core *c = rq->c;
	struct ic_call call = {0};
	int err = parse(rq, &call);
	if (err)
		return err;
	if (c->pending_count >= CONTROL_PENDING_MAX) {
		snprintf(rq->error, sizeof(rq->error), "%u requests are already waiting",
			 c->pending_count);
		return -EBUSY;
	}
	struct control_async *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	*a = (struct control_async){
		.q = c->q,
		.refs = 2, /* the core's and the provider's */
		.client = rq->client,
		.id = rq->id,
		.deadline_ms = rq->now_ms + (uint64_t)call.timeout_s * 1000,
		.timeout_s = call.timeout_s,
		.command = rq->command,
	};
	pthread_mutex_lock(&c->q->lock);
	c->q->refs++;
	pthread_mutex_unlock(&c->q->lock);
	a->next = c->pending;
	c->pending = a;
	c->pending_count++;

	pthread_mutex_lock(&c->ic_lock);
	err = c->ic_registered ? ic_start(&c->ic, rq->command, &call, a) : -ENODEV;
	pthread_mutex_unlock(&c->ic_lock);
	if (err) {
		/* Refused at once: the provider never saw it. */
		pending_unlink(c, a);
		a->refs = 1;
		async_put(a);
		if (err == -ENODEV)
			snprintf(rq->error, sizeof(rq->error),
				 "%s: the guest has not opened the integration service it needs",
				 rq->command);
		else if (err == -ENOTCONN)
			snprintf(rq->error, sizeof(rq->error),
				 "%s: the guest opened the integration service but has not "
				 "negotiated its version yet%s",
				 rq->command,
				 strncmp(rq->command, "kvp-", 4)
					 ? ""
					 : " (Linux does once its KVP daemon, hv_kvp_daemon, runs)");
		return err;
	}
	return 1; /* answered later */
}

#define ASYNC(name, parse)                                                                   \
	static int name(struct request *rq, json_t *result)                                  \
	{                                                                                    \
		(void)result;                                                                \
		return run_async(rq, parse);                                                 \
	}
ASYNC(cmd_power, ic_args_power)
ASYNC(cmd_kvp, ic_args_kvp)
ASYNC(cmd_vss, ic_args_vss)
ASYNC(cmd_copy, ic_args_copy)
ASYNC(cmd_timesync, ic_args_timesync)

/* ---- Dispatch ---- */

static const struct command {
	const char *name;
	/* 0 answers result; 1: answered later; a negative errno answers an error. */
	int (*run)(struct request *rq, json_t *result);
	const char *args[6]; /* the argument names it accepts */
} commands[] = {
	{"status", cmd_status, {NULL}},
	{"device-add", cmd_device_add, {"kind", "instance"}},
	{"device-remove", cmd_device_remove, {"kind", "instance"}},
	{"net-add", cmd_net_add, {"spec"}},
	{"net-remove", cmd_net_remove, {"nic"}},
	{"net-link", cmd_net_link, {"nic", "link"}},
	{"disk-add", cmd_disk_add, {"path", "readonly", "lun"}},
	{"disk-remove", cmd_disk_remove, {"lun"}},
	{"storage-remove", cmd_storage_remove, {NULL}},
	{"pause", cmd_pause_resume, {NULL}},
	{"resume", cmd_pause_resume, {NULL}},
	{"quit", cmd_quit, {NULL}},
	{"snapshot", cmd_snapshot, {"path", "resume"}},
	{"shutdown", cmd_power, {"timeout", "reason", "force"}},
	{"reboot", cmd_power, {"timeout", "reason", "force"}},
	{"hibernate", cmd_power, {"timeout", "reason", "force"}},
	{"kvp-set", cmd_kvp, {"timeout", "pool", "key", "value"}},
	{"kvp-get", cmd_kvp, {"timeout", "pool", "key"}},
	{"kvp-delete", cmd_kvp, {"timeout", "pool", "key"}},
	{"kvp-list", cmd_kvp, {"timeout", "pool"}},
	{"vss-freeze", cmd_vss, {"timeout"}},
	{"vss-thaw", cmd_vss, {"timeout"}},
	{"timesync", cmd_timesync, {"timeout"}},
	{"copy", cmd_copy, {"timeout", "host_file", "guest_path", "overwrite"}},
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* A typo in an argument name is an error, not a silent default. */
static int check_arg_names(struct request *rq, const struct command *cmd)
{
	const char *key;
	json_t *v;
	json_object_foreach(rq->args, key, v)
	{
		bool known = false;
		for (size_t i = 0; i < 6 && cmd->args[i]; i++)
			known = known || !strcmp(key, cmd->args[i]);
		if (!known)
			return bad_arg(rq, "%s: unknown argument '%s'", cmd->name, key);
	}
	return 0;
}

/* The envelope: {"id": integer, "command": string, "args": object?}. */
static const char *check_envelope(json_t *msg, json_int_t *id, bool *have_id)
{
	*have_id = false;
	if (!json_is_object(msg))
		return "a request is a JSON object";
	json_t *jid = json_object_get(msg, "id");
	if (json_is_integer(jid)) {
		*id = json_integer_value(jid);
		*have_id = true;
	} else {
		return "\"id\" must be an integer";
	}
	const char *key;
	json_t *v;
	json_object_foreach(msg, key, v)
	{
		if (strcmp(key, "id") && strcmp(key, "command") && strcmp(key, "args"))
			return "unknown member in the request (id, command, args)";
	}
	if (!json_is_string(json_object_get(msg, "command")))
		return "\"command\" must be a string";
	json_t *args = json_object_get(msg, "args");
	if (args && !json_is_object(args) && !json_is_null(args))
		return "\"args\" must be an object";
	return NULL;
}

static void dispatch(struct control_core *c, struct request *rq)
{
	const struct command *cmd = find_command(rq->command);
	if (!cmd) {
		char msg[128];
		snprintf(msg, sizeof(msg), "unknown command '%.64s'", rq->command);
		respond_error(c, rq->client, &rq->id, "unknown-command", msg);
		return;
	}
	if (c->quit) {
		respond_error(c, rq->client, &rq->id, "shutting-down", "the machine is stopping");
		return;
	}
	rq->command = cmd->name; /* outlives the request (async requests keep it) */
	json_t *result = json_object();
	int err = result ? check_arg_names(rq, cmd) : -ENOMEM;
	if (!err)
		err = cmd->run(rq, result);
	if (err == 0) {
		respond_ok(c, rq->client, &rq->id, result);
		return;
	}
	json_decref(result);
	if (err < 0)
		respond_error(c, rq->client, &rq->id, control_error_code(err),
			      rq->error[0] ? rq->error : strerror(-err));
}

void control_core_handle_line(struct control_core *c, uint64_t client, const char *line,
			      size_t len, uint64_t now_ms)
{
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (!len)
		return; /* blank lines are allowed between requests */
	json_error_t jerr;
	json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!msg) {
		char text[200];
		snprintf(text, sizeof(text), "not JSON: %s (column %d)", jerr.text, jerr.column);
		respond_error(c, client, NULL, "bad-request", text);
		return;
	}
	json_int_t id = 0;
	bool have_id;
	const char *bad = check_envelope(msg, &id, &have_id);
	if (bad) {
		respond_error(c, client, have_id ? &id : NULL, "bad-request", bad);
		json_decref(msg);
		return;
	}
	json_t *args = json_object_get(msg, "args");
	json_t *empty = NULL;
	if (!json_is_object(args))
		args = empty = json_object();
	struct request rq = {
		.c = c,
		.client = client,
		.id = id,
		.command = json_string_value(json_object_get(msg, "command")),
		.args = args,
		.now_ms = now_ms,
	};
	if (args)
		dispatch(c, &rq);
	else
		respond_error(c, client, &id, "internal", "out of memory");
	json_decref(empty);
	json_decref(msg);
}

void control_core_line_too_long(struct control_core *c, uint64_t client)
{
	char msg[80];
	snprintf(msg, sizeof(msg), "request line longer than %d bytes", CONTROL_LINE_MAX);
	respond_error(c, client, NULL, "line-too-long", msg);
}

/* ---- Completions and deadlines ---- */

static void answer(struct control_core *c, struct control_async *a)
{
	if (a->err) {
		respond_error(c, a->client, &a->id, control_error_code(a->err),
			      a->message ? a->message : strerror(-a->err));
		return;
	}
	json_t *result = a->result.obj;
	a->result.obj = NULL;
	respond_ok(c, a->client, &a->id, result);
}

/* Empties the done list; dead: no wake-ups from now on. */
static struct control_async *take_done(struct control_queue *q, bool dead)
{
	pthread_mutex_lock(&q->lock);
	struct control_async *done = q->done_head;
	q->done_head = NULL;
	q->done_tail = &q->done_head;
	q->dead = q->dead || dead;
	pthread_mutex_unlock(&q->lock);
	return done;
}

uint64_t control_core_poll(struct control_core *c, uint64_t now_ms)
{
	struct control_async *done = take_done(c->q, false);
	while (done) {
		struct control_async *a = done;
		done = a->done_next;
		if (!a->abandoned) {
			pending_unlink(c, a);
			answer(c, a);
		}
		async_put(a);
	}

	uint64_t next = UINT64_MAX;
	for (struct control_async *a = c->pending, *n; a; a = n) {
		n = a->next;
		if (a->deadline_ms <= now_ms) {
			char msg[128];
			snprintf(msg, sizeof(msg), "%s: the guest did not answer within %u s",
				 a->command, a->timeout_s);
			respond_error(c, a->client, &a->id, "timeout", msg);
			async_abandon(c, a);
		} else if (a->deadline_ms < next) {
			next = a->deadline_ms;
		}
	}
	return next;
}

void control_core_client_gone(struct control_core *c, uint64_t client)
{
	for (struct control_async *a = c->pending, *n; a; a = n) {
		n = a->next;
		if (a->client == client)
			async_abandon(c, a);
	}
}

uint32_t control_core_client_pending(struct control_core *c, uint64_t client)
{
	uint32_t n = 0;
	for (struct control_async *a = c->pending; a; a = a->next)
		n += a->client == client;
	return n;
}

bool control_core_quit_requested(struct control_core *c)
{
	return c->quit;
}

uint32_t control_core_pending(struct control_core *c)
{
	return c->pending_count;
}

/* ---- Life ---- */

struct control_core *control_core_new(const struct control_core_config *cfg)
{
	struct control_core *c = calloc(1, sizeof(*c));
	struct control_queue *q = calloc(1, sizeof(*q));
	if (!c || !q) {
		free(c);
		free(q);
		return NULL;
	}
	pthread_mutex_init(&q->lock, NULL);
	q->refs = 1;
	q->done_tail = &q->done_head;
	q->wake = cfg->wake;
	q->wake_ctx = cfg->wake_ctx;
	c->cfg = *cfg;
	c->q = q;
	pthread_mutex_init(&c->ic_lock, NULL);
	return c;
}

void control_core_set_ic(struct control_core *c, const struct control_ic_provider *p)
{
	pthread_mutex_lock(&c->ic_lock);
	c->ic_registered = p != NULL;
	if (p)
		c->ic = *p;
	pthread_mutex_unlock(&c->ic_lock);
}

void control_core_free(struct control_core *c)
{
	if (!c)
		return;
	while (c->pending)
		async_abandon(c, c->pending);
	struct control_async *done = take_done(c->q, true);
	/* All abandoned above; the core's references on them go here. */
	while (done) {
		struct control_async *a = done;
		done = a->done_next;
		async_put(a);
	}
	queue_put(c->q);
	pthread_mutex_destroy(&c->ic_lock);
	free(c);
}

/* ---- Line framing ---- */

int control_framer_init(struct control_framer *f)
{
	*f = (struct control_framer){.buf = malloc(CONTROL_LINE_MAX + 1)};
	return f->buf ? 0 : -ENOMEM;
}

void control_framer_free(struct control_framer *f)
{
	free(f->buf);
	f->buf = NULL;
}

void control_framer_feed(struct control_framer *f, struct control_core *c, uint64_t client,
			 const char *data, size_t len, uint64_t now_ms)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		if (!f->skipping && f->len + n > CONTROL_LINE_MAX) {
			control_core_line_too_long(c, client);
			f->skipping = true;
			f->len = 0;
		}
		if (!f->skipping) {
			memcpy(f->buf + f->len, data, n);
			f->len += n;
		}
		if (!nl)
			return;
		if (!f->skipping)
			control_core_handle_line(c, client, f->buf, f->len, now_ms);
		f->skipping = false;
		f->len = 0;
		data = nl + 1;
		len -= n + 1;
	}
}
