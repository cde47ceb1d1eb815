/* SPDX-License-Identifier: MIT */
/*
 * A test harness around mini_ip and a threaded backend (netvsp_backend.h):
 * the backend's thread queues frames for the stack, the test thread pumps
 * them in and runs its timeouts. Waiting is bounded by rounds of at most a
 * millisecond's nap, not by the clock: a stuck test fails, it does not hang.
 */
#ifndef HVKIT_MINI_IP_ENV_H
#define HVKIT_MINI_IP_ENV_H

#include <pthread.h>

#include "frameq.h"
#include "mini_ip.h"
#include "netvsp_backend.h"

#define MINI_ENV_ROUNDS 20000

struct mini_env {
	/* The backend: its send and kick calls, and itself. */
	int (*send)(void *be, const uint8_t *frame, uint32_t len);
	void (*kick)(void *be);
	void *be;
	pthread_mutex_t lock;
	struct frameq in; /* frames from the backend, for the stack */
	uint32_t refuse;  /* answer -ENOBUFS this many times (the hold path) */
	uint32_t bursts;  /* calls of mini_env_rx_burst */
	struct mini_ip ip;
};

/* A TCP socket listening on 127.0.0.1 at a port the kernel picked, its
 * port in *port; flags are socket(2)'s (SOCK_NONBLOCK). -1 and errno on
 * failure. */
int mini_env_listen_loopback(int flags, uint16_t *port);

/* Sets up e (the backend comes after: mini_env_rx is its rx callback). */
void mini_env_init(struct mini_env *e, const uint8_t mac[6]);
void mini_env_fini(struct mini_env *e);
int mini_env_rx(void *ctx, const uint8_t *frame, uint32_t len);
/* The same for several frames (netvsp_rx_burst_fn), counting its calls in
 * e->bursts. */
uint32_t mini_env_rx_burst(void *ctx, const uint8_t *const *frames, const uint32_t *lens,
			   uint32_t count, int *errs, uint32_t flags);
/* Frames to the stack, its timeouts, a kick for held frames; whether
 * there were any frames. */
bool mini_env_feed(struct mini_env *e);
/* One round: mini_env_feed, and a short nap if idle. */
void mini_env_pump(struct mini_env *e);
/* Moves len bytes each way between the stack's connection and the host
 * socket fd (non-blocking), then closes both; checks every byte. */
void mini_env_exchange(struct mini_env *e, int fd, size_t len);

#endif /* HVKIT_MINI_IP_ENV_H */
