/* SPDX-License-Identifier: MIT */
/*
 * The control socket of a running machine: JSON requests, one per line, on
 * a UNIX stream socket; docs/control.md is the protocol.
 *
 * Three layers:
 *  - the core (control_core_*): parses a request line, checks its
 *    arguments, dispatches it, and keeps the asynchronous requests with
 *    their deadlines. Single-threaded apart from async completion; no
 *    sockets, so the unit tests and the fuzz target drive it directly.
 *  - the server (control_server_*): the socket, its clients and one
 *    thread (epoll) feeding the core.
 *  - what the core calls: the machine (struct control_backend: status,
 *    hot add and remove) and the integration components (struct
 *    control_ic_provider), which the IC code registers when it exists.
 *    Until then their commands answer "service-not-offered".
 *
 * Integration requests wait for the guest. A provider starts one and
 * returns at once; it finishes it later, from any thread, with
 * control_async_done. The core answers "timeout" if the deadline passes
 * first and ignores the late completion, so a guest that never answers
 * holds up nothing.
 */
#ifndef HVKIT_CONTROL_H
#define HVKIT_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Longest request line (bytes, newline excluded); longer ones are refused
 * with "line-too-long" and skipped up to their newline. */
#define CONTROL_LINE_MAX (64 * 1024)
/* Requests waiting for the guest, over all clients, before "busy". */
#define CONTROL_PENDING_MAX 256
/* Bounds of a request's "timeout" argument, in seconds. */
#define CONTROL_TIMEOUT_MAX 3600
/* Generous caps on KVP strings (the IC code applies the protocol's exact
 * UTF-16 limits); they keep absurd requests from reaching it. */
#define CONTROL_KVP_KEY_MAX 512
#define CONTROL_KVP_VALUE_MAX 2048
#define CONTROL_KVP_POOLS 5 /* external, guest, auto, auto-external, auto-internal */

/* ---- Results and asynchronous requests (for providers) ---- */

/* A result under construction: a JSON object the provider fills. */
struct control_result;

int control_result_string(struct control_result *r, const char *key, const char *value);
int control_result_u64(struct control_result *r, const char *key, uint64_t value);
int control_result_bool(struct control_result *r, const char *key, bool value);
/* Appends {"key": key, "value": value} to the array `list` (created on first use). */
int control_result_pair(struct control_result *r, const char *list, const char *key,
			const char *value);

/* A request waiting for the guest. */
struct control_async;

/* Where the provider writes its result (only until control_async_done). */
struct control_result *control_async_result(struct control_async *a);
/* The request's timeout, for messages that carry one to the guest. */
uint32_t control_async_timeout_s(const struct control_async *a);
/* Whether the answer is no longer wanted (timed out, client gone, server
 * stopping): the provider may stop its work early. Any thread. */
bool control_async_abandoned(struct control_async *a);
/* Finishes the request, exactly once, from any thread: err 0 answers the
 * result; a negative errno answers its error code (docs/control.md) with
 * message (NULL: the errno's text). The provider must not touch a after. */
void control_async_done(struct control_async *a, int err, const char *message);

/* ---- The integration components ---- */

enum control_power_action {
	CONTROL_POWER_SHUTDOWN,
	CONTROL_POWER_REBOOT,
	CONTROL_POWER_HIBERNATE,
};

/*
 * What the IC code registers. Each operation is optional (NULL: the
 * command answers service-not-offered) and must not block: it starts the
 * request and returns 0 (then it calls control_async_done exactly once,
 * possibly before returning), or returns a negative errno and never
 * touches a. -ENODEV means the guest has not opened that service.
 * Called from the control thread without any machine lock held; the
 * provider takes what it needs.
 */
struct control_ic_provider {
	void *ctx;
	int (*power)(void *ctx, enum control_power_action action, const char *reason, bool force,
		     struct control_async *a);
	int (*kvp_set)(void *ctx, uint32_t pool, const char *key, const char *value,
		       struct control_async *a);
	/* Result: "value". */
	int (*kvp_get)(void *ctx, uint32_t pool, const char *key, struct control_async *a);
	int (*kvp_delete)(void *ctx, uint32_t pool, const char *key, struct control_async *a);
	/* Result: pairs in "items". */
	int (*kvp_list)(void *ctx, uint32_t pool, struct control_async *a);
	int (*vss)(void *ctx, bool freeze, struct control_async *a);
	/* A time sample that sets the guest's clock (SYNC) now. */
	int (*timesync)(void *ctx, struct control_async *a);
	/* host_file is absolute; result: "bytes". */
	int (*copy)(void *ctx, const char *host_file, const char *guest_path, bool overwrite,
		    struct control_async *a);
	/* Synchronous, for "status": each service's state ("heartbeat":
	 * "alive"...). */
	void (*status)(void *ctx, struct control_result *r);
};

/* ---- The machine ---- */

struct control_backend {
	void *ctx;
	/* Fills result with "machine", "vmbus" and "devices" (docs/control.md). */
	int (*status)(void *ctx, json_t *result);
	/* Hot add / remove a device of this kind: 0, -EEXIST, -ENOENT, -ENOSPC,
	 * -EINVAL (unknown kind)... */
	int (*device_add)(void *ctx, const char *kind, uint32_t instance);
	int (*device_remove)(void *ctx, const char *kind, uint32_t instance);
	/* NICs: add one from a --net spec (its number in *nic; on error why
	 * says what is wrong with the spec or the backend), remove NIC nic
	 * (-ENOENT), plug its cable in or out (-ENOENT). */
	int (*net_add)(void *ctx, const char *spec, uint32_t *nic, char *why, size_t len);
	int (*net_remove)(void *ctx, uint32_t nic);
	int (*net_link)(void *ctx, uint32_t nic, bool up);
	/* Hot add a disk image at lun (UINT32_MAX: the first free LUN, given
	 * back in *lun) / remove the disk at lun; the guest is told to rescan.
	 * 0, -EEXIST, -ENOENT, -ENOSPC, -EINVAL (lun too big), or why the
	 * image did not open. */
	int (*disk_add)(void *ctx, const char *path, bool read_only, uint32_t *lun);
	int (*disk_remove)(void *ctx, uint32_t lun);
	/* Rescind the storage controller with all its disks (-ENOENT if
	 * there is none); the next disk_add offers a new controller. */
	int (*storage_remove)(void *ctx);
	/* Stop every VP where it is / let them run on: 0, -EALREADY (paused
	 * already), -EINVAL (resume while running), -ENOTSUP (the partition
	 * cannot). */
	int (*pause)(void *ctx);
	int (*resume)(void *ctx);
	/* A snapshot of the VM into path (absolute), paused after it unless
	 * resume: fills result ("path", "bytes", "ram_bytes", "seconds",
	 * "paused"); on error why says what stood in the way. */
	int (*snapshot)(void *ctx, const char *path, bool resume, json_t *result, char *why,
			size_t why_len);
};

/* ---- The core ---- */

struct control_core;

/* Sends one response line (newline included) to a client. */
typedef void (*control_emit_fn)(void *ctx, uint64_t client, const char *line, size_t len);

struct control_core_config {
	struct control_backend backend;
	control_emit_fn emit;
	void *emit_ctx;
	/* A completion arrived from another thread: call control_core_poll. */
	void (*wake)(void *ctx);
	void *wake_ctx;
};

struct control_core *control_core_new(const struct control_core_config *cfg);
/* Abandons every pending request (late completions are dropped safely). */
void control_core_free(struct control_core *c);

/* Registers the integration components (copied); NULL unregisters. Any
 * thread, but not under the device lock. */
void control_core_set_ic(struct control_core *c, const struct control_ic_provider *p);

/* One request line (without its newline) from a client. now_ms: a
 * monotonic clock, for deadlines. */
void control_core_handle_line(struct control_core *c, uint64_t client, const char *line,
			      size_t len, uint64_t now_ms);
/* A line over CONTROL_LINE_MAX was skipped. */
void control_core_line_too_long(struct control_core *c, uint64_t client);
/* Answers completions and timeouts. Returns the next deadline (ms), or
 * UINT64_MAX if none. */
uint64_t control_core_poll(struct control_core *c, uint64_t now_ms);
/* The client went away: its pending requests are abandoned. */
void control_core_client_gone(struct control_core *c, uint64_t client);
/* Requests of this client still waiting for the guest. */
uint32_t control_core_client_pending(struct control_core *c, uint64_t client);
/* Whether a "quit" request was answered. */
bool control_core_quit_requested(struct control_core *c);
uint32_t control_core_pending(struct control_core *c);

/* Maps a negative errno to a protocol error code ("not-found"...). */
const char *control_error_code(int err);

/* ---- Line framing (the server's input parser) ---- */

struct control_framer {
	char *buf;       /* CONTROL_LINE_MAX + 1 bytes */
	size_t len;
	bool skipping;   /* inside an over-long line */
};

int control_framer_init(struct control_framer *f);
void control_framer_free(struct control_framer *f);
/* Splits data into lines for the core: every complete line goes to
 * handle_line, every over-long one to line_too_long. */
void control_framer_feed(struct control_framer *f, struct control_core *c, uint64_t client,
			 const char *data, size_t len, uint64_t now_ms);

/* ---- The server ---- */

struct control_server;

struct control_server_config {
	const char *path;    /* the socket; a stale one is replaced */
	struct control_backend backend;
};

/* Binds (mode 0600) and starts the control thread. 0 or a negative errno:
 * -EADDRINUSE if another machine is listening there. */
int control_server_start(const struct control_server_config *cfg, struct control_server **out);
/* Whether control_server_start could serve at path (same errors), to
 * fail before starting a machine. */
int control_server_check_path(const char *path);
void control_server_set_ic(struct control_server *s, const struct control_ic_provider *p);
bool control_server_quit_requested(struct control_server *s);
/* Readable (poll) once a quit request was answered: to wait on it. */
int control_server_quit_fd(struct control_server *s);
/* Stops the thread, closes the clients (answered requests are flushed as
 * far as they go without blocking), removes the socket. */
void control_server_stop(struct control_server *s);

#endif /* HVKIT_CONTROL_H */
