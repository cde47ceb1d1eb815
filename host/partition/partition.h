/* SPDX-License-Identifier: MIT */
/*
 * The partition interface: what the machine needs from a partition backend
 * (kvm.h, process.h), as one table of operations, so that the code above
 * it never asks which backend it has.
 *
 * A backend embeds a struct partition as its member `base` and hands it
 * out (kvm_partition_base, process_partition_base); the machine then calls
 * the partition_* functions below. Building a backend stays backend
 * specific: each takes its own configuration. PARTITION_OPS (at the end)
 * writes a backend's table.
 *
 * Not to be confused with struct hv_partition (host/hv/hv.h): the
 * hypervisor interface's own partition-wide state, which every backend
 * keeps one of and hands out through partition_hv.
 */
#ifndef HVKIT_PARTITION_H
#define HVKIT_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h> /* snprintf, in PARTITION_OPS */

struct partition;
struct hv_partition;
struct guest_memory;

struct partition_ops {
	const char *name; /* "kvm", "process": for status displays */

	/* Lifecycle: launch starts the VPs (and the process partition's
	 * guest program); wait, halt and stop behave as the partition_*
	 * functions of those names below. Required. */
	int (*launch)(struct partition *p);
	int (*wait)(struct partition *p, int timeout_ms, int *status);
	/* A descriptor that polls readable once the guest has ended (wait
	 * would return at once), for callers that wait on other things too;
	 * valid from launch to stop. Required. */
	int (*end_fd)(struct partition *p);
	void (*halt)(struct partition *p);
	void (*stop)(struct partition *p);
	/* Whether the partition was torn down because the guest misbehaved;
	 * if so, why (never NULL here) gets the reason. Required. */
	bool (*failed)(struct partition *p, char *why, size_t len);

	/* The hypervisor interface (it locks itself: hv.h), the device lock
	 * (what serializes the VMBus server and the devices behind it; hv
	 * never needs it, and the partition never holds it to call hv), and
	 * reference time now (100 ns units, the guest's view of the TSC).
	 * Required. */
	struct hv_partition *(*hv)(struct partition *p);
	void (*lock)(struct partition *p);
	void (*unlock)(struct partition *p);
	uint64_t (*now)(struct partition *p);

	/* Guest RAM behind its bounds-checked accessors: how devices reach
	 * it. Required. */
	const struct guest_memory *(*memory)(struct partition *p);

	/* Raises `vector` on VP vp. Required. */
	int (*interrupt)(struct partition *p, uint32_t vp, uint8_t vector);

	/* Runs fn(ctx) on every VP's own thread, at its next exit, and
	 * returns once all have: 0, fn's first error, or -errno. For what
	 * must happen on those threads (the sandbox's vCPU filter). Optional:
	 * NULL is -ENOTSUP. */
	int (*on_vp_threads)(struct partition *p, int (*fn)(void *ctx), void *ctx);

	/* VP control for lifecycle work: stop every VP where it is, and let
	 * them run on. Optional: NULL is -ENOTSUP. */
	int (*pause)(struct partition *p);
	int (*resume)(struct partition *p);

	/* The backend's own state of a paused partition as a record in buf
	 * (at most *len bytes; *len set to the size used), and back, for
	 * snapshots. save is called with the partition lock held, so that
	 * no device adds an interrupt between it and the devices' own
	 * records; restore before launch. Optional: NULL is -ENOTSUP. */
	int (*save)(struct partition *p, void *buf, size_t *len);
	int (*restore)(struct partition *p, const void *buf, size_t len);
};

struct partition {
	const struct partition_ops *ops;
};

const char *partition_name(const struct partition *p);

int partition_launch(struct partition *p);
/* Waits up to timeout_ms (-1: forever) for the guest to end: 0 and
 * *status, or -ETIMEDOUT. */
int partition_wait(struct partition *p, int timeout_ms, int *status);
int partition_end_fd(struct partition *p);
/* Ends the guest and joins the partition's threads; hv stays usable, for
 * tearing down what sits on it. Idempotent. */
void partition_halt(struct partition *p);
/* Halts (if not yet) and frees everything. */
void partition_stop(struct partition *p);
/* Whether the partition was torn down because the guest misbehaved, and
 * why (which may be NULL). */
bool partition_failed(struct partition *p, char *why, size_t len);

struct hv_partition *partition_hv(struct partition *p);
void partition_lock(struct partition *p);
void partition_unlock(struct partition *p);
uint64_t partition_now(struct partition *p);

const struct guest_memory *partition_memory(struct partition *p);

/* 0 or -errno (-EINVAL for a VP the partition does not have). */
int partition_interrupt(struct partition *p, uint32_t vp, uint8_t vector);

/* 0, -ENOTSUP where the backend cannot, or another -errno. */
int partition_on_vp_threads(struct partition *p, int (*fn)(void *ctx), void *ctx);
int partition_pause(struct partition *p);
int partition_resume(struct partition *p);
/* With the partition lock held (partition_lock). */
int partition_save(struct partition *p, void *buf, size_t *len);
int partition_restore(struct partition *p, const void *buf, size_t len);

/*
 * For backends: defines `static const struct partition_ops prefix_ops`
 * whose required operations forward to the backend's public functions of
 * the same names (prefix_launch, prefix_wait, prefix_end_fd, prefix_halt,
 * prefix_stop, prefix_hv, prefix_lock, prefix_unlock, prefix_now, prefix_memory,
 * prefix_interrupt; `failed` reads prefix_get_stats), on the struct prefix
 * that embeds the partition as its member `base`. One macro rather than a
 * hand-written adapter per backend, so that the backends cannot drift
 * apart. The optional operations follow as designated initializers
 * (`.save = ...`), if any.
 */
#define PARTITION_OPS(prefix, display_name, ...)                                          \
	static struct prefix *prefix##_of(struct partition *p)                              \
	{                                                                                   \
		return (struct prefix *)((char *)p - offsetof(struct prefix, base));        \
	}                                                                                   \
	static int prefix##_op_launch(struct partition *p)                                  \
	{                                                                                   \
		return prefix##_launch(prefix##_of(p));                                     \
	}                                                                                   \
	static int prefix##_op_wait(struct partition *p, int timeout_ms, int *status)       \
	{                                                                                   \
		return prefix##_wait(prefix##_of(p), timeout_ms, status);                   \
	}                                                                                   \
	static int prefix##_op_end_fd(struct partition *p)                                  \
	{                                                                                   \
		return prefix##_end_fd(prefix##_of(p));                                     \
	}                                                                                   \
	static void prefix##_op_halt(struct partition *p)                                   \
	{                                                                                   \
		prefix##_halt(prefix##_of(p));                                              \
	}                                                                                   \
	static void prefix##_op_stop(struct partition *p)                                   \
	{                                                                                   \
		prefix##_stop(prefix##_of(p));                                              \
	}                                                                                   \
	static bool prefix##_op_failed(struct partition *p, char *why, size_t len)          \
	{                                                                                   \
		struct prefix##_stats stats;                                                \
		prefix##_get_stats(prefix##_of(p), &stats);                                 \
		if (stats.failed)                                                           \
			snprintf(why, len, "%s", stats.failure);                            \
		return stats.failed;                                                        \
	}                                                                                   \
	static struct hv_partition *prefix##_op_hv(struct partition *p)                     \
	{                                                                                   \
		return prefix##_hv(prefix##_of(p));                                         \
	}                                                                                   \
	static void prefix##_op_lock(struct partition *p)                                   \
	{                                                                                   \
		prefix##_lock(prefix##_of(p));                                              \
	}                                                                                   \
	static void prefix##_op_unlock(struct partition *p)                                 \
	{                                                                                   \
		prefix##_unlock(prefix##_of(p));                                            \
	}                                                                                   \
	static uint64_t prefix##_op_now(struct partition *p)                                \
	{                                                                                   \
		return prefix##_now(prefix##_of(p));                                        \
	}                                                                                   \
	static const struct guest_memory *prefix##_op_memory(struct partition *p)           \
	{                                                                                   \
		return prefix##_memory(prefix##_of(p));                                     \
	}                                                                                   \
	static int prefix##_op_interrupt(struct partition *p, uint32_t vp, uint8_t vector)  \
	{                                                                                   \
		return prefix##_interrupt(prefix##_of(p), vp, vector);                      \
	}                                                                                   \
	static const struct partition_ops prefix##_ops = {                                  \
		.name = display_name,                                                       \
		.launch = prefix##_op_launch,                                               \
		.wait = prefix##_op_wait,                                                   \
		.end_fd = prefix##_op_end_fd,                                               \
		.halt = prefix##_op_halt,                                                   \
		.stop = prefix##_op_stop,                                                   \
		.failed = prefix##_op_failed,                                               \
		.hv = prefix##_op_hv,                                                       \
		.lock = prefix##_op_lock,                                                   \
		.unlock = prefix##_op_unlock,                                               \
		.now = prefix##_op_now,                                                     \
		.memory = prefix##_op_memory,                                               \
		.interrupt = prefix##_op_interrupt,                                         \
		__VA_ARGS__}

#endif /* HVKIT_PARTITION_H */
