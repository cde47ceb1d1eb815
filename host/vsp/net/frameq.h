/* SPDX-License-Identifier: MIT */
/*
 * A bounded FIFO of frames, for the threaded backends (netvsp_backend.h):
 * frames waiting for the backend's thread, and frames held back while the
 * guest has no room. Not locked; its owner decides.
 */
#ifndef HVKIT_NETVSP_FRAMEQ_H
#define HVKIT_NETVSP_FRAMEQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "netvsp_backend.h"

#define FRAMEQ_LEN 256u

struct frameq {
	uint8_t *data[FRAMEQ_LEN];
	uint32_t len[FRAMEQ_LEN];
	uint32_t head, count;
};

/* Copies the frame in: 0, or -ENOSPC (full) / -ENOMEM. */
int frameq_push(struct frameq *q, const uint8_t *frame, uint32_t len);
/* The oldest frame, or NULL. */
const uint8_t *frameq_peek(const struct frameq *q, uint32_t *len);
void frameq_pop(struct frameq *q);
void frameq_free(struct frameq *q);

/* Retries the held frames, oldest first, until rx is short of room again;
 * in bursts of FRAMEQ_BURST through rx_burst unless it is NULL. */
#define FRAMEQ_BURST 32u
void frameq_retry(struct frameq *held, netvsp_rx_fn rx, netvsp_rx_burst_fn rx_burst, void *ctx,
		  struct netvsp_backend_stats *st);

/*
 * Frames for the guest gathered by a backend thread and handed over in
 * one rx_burst call (one transfer-page packet, one publish, at most one
 * signal) instead of one call each. Slots of frame_max bytes are made
 * once. A flush goes behind frames already held, keeping the order; what
 * the guest has no room for is held.
 */
struct frame_batch {
	uint8_t *data[FRAMEQ_BURST];
	uint32_t len[FRAMEQ_BURST];
	uint32_t count, frame_max;
	struct frameq *held;
	netvsp_rx_fn rx;
	netvsp_rx_burst_fn rx_burst; /* NULL: rx one frame at a time */
	void *ctx;
	struct netvsp_backend_stats *st;
};

/* 0 or -ENOMEM (then frame_batch_free is still safe). */
int frame_batch_init(struct frame_batch *b, uint32_t frame_max, struct frameq *held,
		     netvsp_rx_fn rx, netvsp_rx_burst_fn rx_burst, void *ctx,
		     struct netvsp_backend_stats *st);
void frame_batch_free(struct frame_batch *b);
/* A copy of the frame (len <= frame_max), flushing first if full. */
void frame_batch_add(struct frame_batch *b, const uint8_t *frame, uint32_t len);
/* The next slot to fill in place (flushing first if full), then the length
 * put there. */
uint8_t *frame_batch_slot(struct frame_batch *b);
void frame_batch_commit(struct frame_batch *b, uint32_t len);
void frame_batch_flush(struct frame_batch *b);

/*
 * What both threaded backends share: their thread, the eventfd that wakes
 * it, and `lock` over the stop flag and the counters others may read. The
 * thread keeps its guest-bound counters in `st` and publishes them.
 */
struct backend_core {
	pthread_t thread;
	bool running;
	int wake;
	pthread_mutex_t lock;
	bool stop;
	struct netvsp_backend_stats shared;
	struct netvsp_backend_stats st; /* the thread's own */
};

int backend_core_init(struct backend_core *c);
int backend_core_start(struct backend_core *c, void *(*fn)(void *), void *arg);
void backend_core_wake(struct backend_core *c);
/* Reads the wake counter (after poll said so). */
void backend_core_woken(struct backend_core *c);
/* Publishes the thread's counters; true once asked to stop. Lock held. */
bool backend_core_publish_locked(struct backend_core *c);
void backend_core_stop(struct backend_core *c);
void backend_core_fini(struct backend_core *c);
void backend_core_get_stats(struct backend_core *c, struct netvsp_backend_stats *out);
/* Counts a frame to the network; takes err. Lock held. */
int backend_core_count_tx_locked(struct backend_core *c, int err, uint32_t len);

/* snprintf into why; returns -EINVAL. */
__attribute__((format(printf, 3, 4)))
int netvsp_sayf(char *why, size_t len, const char *fmt, ...);

#endif /* HVKIT_NETVSP_FRAMEQ_H */
