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

/* The guest-bound path of a backend thread: hands a frame to rx unless
 * frames are held already (order is kept), holds it on -ENOBUFS, counts. */
void frameq_deliver(struct frameq *held, netvsp_rx_fn rx, void *ctx, const uint8_t *frame,
		    uint32_t len, struct netvsp_backend_stats *st);
/* Retries the held frames, oldest first, until rx is short of room again;
 * in bursts of FRAMEQ_BURST through rx_burst unless it is NULL. */
#define FRAMEQ_BURST 32u
void frameq_retry(struct frameq *held, netvsp_rx_fn rx, netvsp_rx_burst_fn rx_burst, void *ctx,
		  struct netvsp_backend_stats *st);

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
