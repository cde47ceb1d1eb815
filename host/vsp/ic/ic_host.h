/* SPDX-License-Identifier: MIT */
/*
 * The host side of the integration components (ICs): heartbeat, shutdown,
 * time sync, KVP, VSS and file copy, each a VMBus device with Hyper-V's class and fixed
 * instance GUID, speaking the wire format of include/hvkit/proto/ic.h.
 *
 * On open each service negotiates as Hyper-V does (framework 3.0 and 1.0,
 * the service versions Linux 6.1 accepts, capped by the config), then:
 *  - heartbeat probes every heartbeat_interval and checks the guest's
 *    seq_num + 1 echo; no good answer for heartbeat_timeout makes the guest
 *    "unresponsive";
 *  - time sync sends a SYNC sample at once and a SAMPLE every
 *    timesync_interval (ictimesync_ref_data at 4.0, ictimesync_data below);
 *  - shutdown, KVP, VSS and file copy serve requests made through this API.
 * The KVP device closes with a rescind and an immediate re-offer (the
 * anomaly hibernation.rst describes); the others do not.
 *
 * Threads. The IC thread ticks the timer and reads the channels the guest
 * signalled (a signal only marks the service and wakes it, so no IC work,
 * not even a file copy's read, runs on a vCPU thread); without it
 * (no_timer_thread, or no cfg->lock) a signal is answered at once.
 *
 * Locking. Everything here runs under the device lock (the VMBus
 * server's lock): device callbacks already hold it; the IC thread takes
 * it through cfg->lock; a caller outside (the control socket) brackets its
 * calls with ic_host_lock/ic_host_unlock. Requests are asynchronous: a
 * request function returns at once (0, or a negative errno if it cannot be
 * sent: -ENOTCONN if the service is not open and negotiated, -EINVAL,
 * -ENOMEM, -EPERM), and its completion callback runs later, exactly once,
 * with the lock held (from the channel's notify, the timer, or a close) —
 * it must not block and may call this API again.
 *
 * One request is outstanding per service at a time (KVP and file copy
 * require it); further requests queue in order. Each has its own answer
 * timeout (0: 10 s); a request that times out completes with -ETIMEDOUT
 * and the guest's late answer is counted and dropped.
 */
#ifndef HVKIT_IC_HOST_H
#define HVKIT_IC_HOST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "hvkit/proto/ic.h"
#include "ic_msg.h" /* enum ic_service, ic_service_name */
#include "vmbus_server.h"

struct ic_host_config {
	uint32_t services;  /* bit (1 << enum ic_service) per device; 0: all */
	/* Highest service version offered, per service (IC_VERSION); 0: all
	 * Linux 6.1 accepts. Lower versions are offered too. */
	uint32_t max_version[IC_SERVICE_COUNT];
	uint64_t heartbeat_interval_ns; /* 0: 1 s */
	uint64_t heartbeat_timeout_ns;  /* 0: 5 s */
	uint64_t timesync_interval_ns;  /* 0: 5 s */
	uint64_t tick_ns;               /* the IC thread's tick; 0: 20 ms */
	bool no_timer_thread;           /* tests drive ic_host_tick_locked */
	/* The host's monotonic clock (ns); NULL: CLOCK_MONOTONIC. */
	uint64_t (*now_ns)(void *ctx);
	/* Wall-clock time for samples, 100 ns units since 1601-01-01; NULL:
	 * CLOCK_REALTIME. */
	uint64_t (*wall_time)(void *ctx);
	/* The partition's reference counter (100 ns) for 4.0 samples; NULL:
	 * 0 (the guest then corrects by its own counter's value). */
	uint64_t (*reference_time)(void *ctx);
	void (*lock)(void *ctx);   /* the device lock, for the IC thread */
	void (*unlock)(void *ctx);
	void (*log)(void *ctx, const char *fmt, va_list ap); /* NULL: stderr */
	void *ctx;
};

struct ic_host;

/* Adds the configured devices to the server (offered at the guest's next
 * REQUESTOFFERS, or at once if it is connected) and starts the timer
 * thread. Call without the lock. */
int ic_host_new(struct vmbus_server *s, const struct ic_host_config *cfg, struct ic_host **out);
/* Stops the timer, removes the devices (pending requests complete with
 * -ECANCELED), frees. Call without the lock. */
void ic_host_free(struct ic_host *h);

void ic_host_lock(struct ic_host *h);
void ic_host_unlock(struct ic_host *h);

/* Heartbeats, samples and timeouts due by now. The IC thread calls it
 * every tick_ns. */
void ic_host_tick_locked(struct ic_host *h);

/* ---- Status ---- */

enum ic_heartbeat_state {
	IC_HEARTBEAT_UNKNOWN = 0, /* not open, or no answer yet */
	IC_HEARTBEAT_ALIVE,
	IC_HEARTBEAT_UNRESPONSIVE,
};

struct ic_service_status {
	bool offered, open, negotiated;
	uint32_t fw_version, msg_version; /* IC_VERSION, once negotiated */
	uint32_t opens;                   /* times the guest opened it */
	uint64_t requests, responses;     /* host requests sent, answers taken */
	uint64_t timeouts;
	uint64_t bad;                     /* malformed or stray guest packets */
	/* heartbeat */
	enum ic_heartbeat_state heartbeat;
	uint64_t heartbeats_answered;
	/* time sync */
	uint64_t samples_sent, samples_acked;
};

void ic_host_status(struct ic_host *h, enum ic_service svc, struct ic_service_status *out);
enum ic_heartbeat_state ic_heartbeat_state(struct ic_host *h);

/* ---- Requests ---- */

/* err: 0 when the guest answered (status: its HRESULT, IC_S_OK or
 * IC_E_FAIL...), -ETIMEDOUT, -ENOTCONN (the channel closed first),
 * -ECANCELED (the host is going away), -EPROTO (malformed answer). */
typedef void (*ic_done_fn)(void *arg, int err, uint32_t status);

enum ic_shutdown_kind {
	IC_SHUTDOWN_POWEROFF = 0,
	IC_SHUTDOWN_REBOOT,
	IC_SHUTDOWN_HIBERNATE,
};

/* Asks the guest to shut down, reboot or hibernate. reason and
 * timeout_seconds go to the guest as Hyper-V sends them; message (may be
 * NULL) is the display message; answer_timeout_ns bounds the wait for the
 * guest's verdict (0: 10 s). */
int ic_shutdown_request(struct ic_host *h, enum ic_shutdown_kind kind, bool force,
			uint32_t reason, uint32_t timeout_seconds, const char *message,
			uint64_t answer_timeout_ns, ic_done_fn done, void *arg);

/* KVP. Keys at most 255 characters, values at most 1023 (the protocol's
 * 512 and 2048 bytes of UTF-16 with the NUL); strings are UTF-8 here and
 * UTF-16LE on the wire. */
#define IC_KVP_KEY_MAX_UTF8 (IC_KVP_MAX_KEY_SIZE * 3 / 2)
#define IC_KVP_VALUE_MAX_UTF8 (IC_KVP_MAX_VALUE_SIZE * 3 / 2)

struct ic_kvp_result {
	int err;         /* as ic_done_fn */
	uint32_t op;     /* IC_KVP_OP_* */
	uint32_t status; /* the guest's: IC_S_OK, IC_E_FAIL, IC_S_CONT (no such index) */
	uint32_t pool, index;
	char key[IC_KVP_KEY_MAX_UTF8];     /* GET, ENUMERATE */
	char value[IC_KVP_VALUE_MAX_UTF8]; /* GET, ENUMERATE (REG_SZ; numbers as decimal) */
};
typedef void (*ic_kvp_fn)(void *arg, const struct ic_kvp_result *r);

/* The host writes only the pools it owns (EXTERNAL, AUTO_EXTERNAL):
 * -EPERM otherwise. -ENAMETOOLONG for a key or value over the limits. */
int kvp_host_set(struct ic_host *h, uint32_t pool, const char *key, const char *value,
		 uint64_t timeout_ns, ic_kvp_fn done, void *arg);
int kvp_host_delete(struct ic_host *h, uint32_t pool, const char *key, uint64_t timeout_ns,
		    ic_kvp_fn done, void *arg);
/* Reads any pool. Linux 6.1 answers a GET as found but empty (its driver
 * reads its daemon's answer at the ENUMERATE layout), so hvkit ctl finds a
 * key by enumerating; GET stays for guests that answer it whole. */
int kvp_host_get(struct ic_host *h, uint32_t pool, const char *key, uint64_t timeout_ns,
		 ic_kvp_fn done, void *arg);
/* The index-th entry of a pool; IC_S_CONT past the end. The guest's
 * intrinsic data (FQDN, OS name, ...) is pool IC_KVP_POOL_AUTO. */
int kvp_host_enumerate(struct ic_host *h, uint32_t pool, uint32_t index, uint64_t timeout_ns,
		       ic_kvp_fn done, void *arg);

/* VSS: IC_VSS_OP_FREEZE, IC_VSS_OP_THAW, IC_VSS_OP_HOT_BACKUP (or any
 * other IC_VSS_OP_*); done gets the guest's verdict (IC_S_OK, IC_E_FAIL). */
int vss_request(struct ic_host *h, uint32_t op, uint64_t timeout_ns, ic_done_fn done, void *arg);

/* File copy: copies the host file host_path into the guest as guest_path
 * ("dir/name"; the directory and name travel separately, as Hyper-V sends
 * them) with IC_FCOPY_FLAG_* flags: START, one WRITE per 6 KiB, COMPLETE;
 * a refused step sends CANCEL. done runs once: err 0 and the guest's
 * status of the step that ended the copy (IC_S_OK if it arrived whole;
 * IC_ERROR_ALREADY_EXISTS, IC_ERROR_DISK_FULL, IC_E_FAIL otherwise), or an
 * error as ic_done_fn. timeout_ns bounds each step. One copy at a time:
 * -EBUSY; the host file is read (6 KiB at a time) under the lock.
 * Immediate errors also: -ENOENT/-EACCES (host file), -EINVAL (path). */
int fcopy_start(struct ic_host *h, const char *host_path, const char *guest_path,
		uint32_t flags, uint64_t timeout_ns, ic_done_fn done, void *arg);

/* Time sync: a sample with the SYNC flag now, as Hyper-V sends after the
 * guest opens the service or the VM resumes: the guest sets its clock to
 * the host's instead of steering towards it. done gets the guest's answer;
 * -ENOTCONN when the service is not open and negotiated. */
int ic_timesync_sync(struct ic_host *h, uint64_t timeout_ns, ic_done_fn done, void *arg);

/* ---- Parsers (exposed for the fuzz target) ---- */

/* How the host reads a guest answer of this service. Returns 0, or
 * -EPROTO for an answer it refuses. */
int ic_host_parse_answer(enum ic_service svc, uint32_t msg_version, const void *buf,
			 uint32_t len, uint64_t heartbeat_seq, struct ic_kvp_result *kvp);

#endif /* HVKIT_IC_HOST_H */
