/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "frameq.h"

int frameq_push(struct frameq *q, const uint8_t *frame, uint32_t len)
{
	if (q->count == FRAMEQ_LEN)
		return -ENOSPC;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, frame, len);
	uint32_t i = (q->head + q->count) % FRAMEQ_LEN;
	q->data[i] = copy;
	q->len[i] = len;
	q->count++;
	return 0;
}

const uint8_t *frameq_peek(const struct frameq *q, uint32_t *len)
{
	if (!q->count)
		return NULL;
	*len = q->len[q->head];
	return q->data[q->head];
}

void frameq_pop(struct frameq *q)
{
	if (!q->count)
		return;
	free(q->data[q->head]);
	q->data[q->head] = NULL;
	q->head = (q->head + 1) % FRAMEQ_LEN;
	q->count--;
}

void frameq_free(struct frameq *q)
{
	while (q->count)
		frameq_pop(q);
}

static void counted(struct netvsp_backend_stats *st, int err, uint32_t len)
{
	if (err) {
		st->rx_dropped++;
		return;
	}
	st->rx_frames++;
	st->rx_bytes += len;
}

/* Up to FRAMEQ_BURST held frames through rx_burst, saying more follow if
 * they do: false once it is short of room. */
static bool retry_burst(struct frameq *held, netvsp_rx_burst_fn rx_burst, void *ctx,
			struct netvsp_backend_stats *st)
{
	const uint8_t *frames[FRAMEQ_BURST] = {0};
	uint32_t lens[FRAMEQ_BURST] = {0};
	int errs[FRAMEQ_BURST];
	uint32_t n = held->count < FRAMEQ_BURST ? held->count : FRAMEQ_BURST;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = (held->head + i) % FRAMEQ_LEN;
		frames[i] = held->data[k];
		lens[i] = held->len[k];
	}
	uint32_t took = rx_burst(ctx, frames, lens, n, errs,
				 held->count > n ? NETVSP_RX_BURST_MORE : 0);
	for (uint32_t i = 0; i < took && i < n; i++) {
		counted(st, errs[i], lens[i]);
		frameq_pop(held);
	}
	return took >= n;
}

void frameq_retry(struct frameq *held, netvsp_rx_fn rx, netvsp_rx_burst_fn rx_burst, void *ctx,
		  struct netvsp_backend_stats *st)
{
	uint32_t len;
	const uint8_t *f;
	if (rx_burst) {
		while (held->count && retry_burst(held, rx_burst, ctx, st))
			;
		return;
	}
	while ((f = frameq_peek(held, &len))) {
		int err = rx(ctx, f, len);
		if (err == -ENOBUFS)
			return;
		counted(st, err, len);
		frameq_pop(held);
	}
}

int frame_batch_init(struct frame_batch *b, uint32_t frame_max, struct frameq *held,
		     netvsp_rx_fn rx, netvsp_rx_burst_fn rx_burst, void *ctx,
		     struct netvsp_backend_stats *st)
{
	*b = (struct frame_batch){.frame_max = frame_max, .held = held, .rx = rx,
				  .rx_burst = rx_burst, .ctx = ctx, .st = st};
	for (uint32_t i = 0; i < FRAMEQ_BURST; i++)
		if (!(b->data[i] = malloc(frame_max)))
			return -ENOMEM;
	return 0;
}

void frame_batch_free(struct frame_batch *b)
{
	for (uint32_t i = 0; i < FRAMEQ_BURST; i++) {
		free(b->data[i]);
		b->data[i] = NULL;
	}
}

/* How many from the front the guest took (errs[] counted). */
static uint32_t batch_to_guest(struct frame_batch *b)
{
	uint32_t took = 0;
	if (b->rx_burst) {
		int errs[FRAMEQ_BURST];
		took = b->rx_burst(b->ctx, (const uint8_t *const *)b->data, b->len, b->count, errs,
				   0);
		if (took > b->count)
			took = b->count;
		for (uint32_t i = 0; i < took; i++)
			counted(b->st, errs[i], b->len[i]);
		return took;
	}
	for (; took < b->count; took++) {
		int err = b->rx(b->ctx, b->data[took], b->len[took]);
		if (err == -ENOBUFS)
			break;
		counted(b->st, err, b->len[took]);
	}
	return took;
}

void frame_batch_flush(struct frame_batch *b)
{
	if (!b->count)
		return;
	uint32_t took = b->held->count ? 0 : batch_to_guest(b);
	for (uint32_t i = took; i < b->count; i++)
		if (frameq_push(b->held, b->data[i], b->len[i]))
			b->st->rx_dropped++;
	b->count = 0;
}

uint8_t *frame_batch_slot(struct frame_batch *b)
{
	if (b->count == FRAMEQ_BURST)
		frame_batch_flush(b);
	return b->data[b->count];
}

void frame_batch_commit(struct frame_batch *b, uint32_t len)
{
	b->len[b->count++] = len;
}

void frame_batch_add(struct frame_batch *b, const uint8_t *frame, uint32_t len)
{
	memcpy(frame_batch_slot(b), frame, len);
	frame_batch_commit(b, len);
}

int backend_core_init(struct backend_core *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return c->wake < 0 ? -errno : 0;
}

int backend_core_start(struct backend_core *c, void *(*fn)(void *), void *arg)
{
	int err = pthread_create(&c->thread, NULL, fn, arg);
	c->running = !err;
	return -err;
}

void backend_core_wake(struct backend_core *c)
{
	uint64_t one = 1;
	if (write(c->wake, &one, sizeof(one)) < 0)
		return; /* a full counter wakes the thread anyway */
}

void backend_core_woken(struct backend_core *c)
{
	uint64_t v;
	if (read(c->wake, &v, sizeof(v)) < 0)
		return; /* already drained */
}

bool backend_core_publish_locked(struct backend_core *c)
{
	c->shared.rx_frames = c->st.rx_frames;
	c->shared.rx_bytes = c->st.rx_bytes;
	c->shared.rx_dropped = c->st.rx_dropped;
	c->shared.guest_errors = c->st.guest_errors;
	return c->stop;
}

int backend_core_count_tx_locked(struct backend_core *c, int err, uint32_t len)
{
	if (err) {
		c->shared.tx_dropped++;
	} else {
		c->shared.tx_frames++;
		c->shared.tx_bytes += len;
	}
	return err;
}

void backend_core_stop(struct backend_core *c)
{
	if (!c->running)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_mutex_unlock(&c->lock);
	backend_core_wake(c);
	pthread_join(c->thread, NULL);
	c->running = false;
}

void backend_core_fini(struct backend_core *c)
{
	backend_core_stop(c);
	if (c->wake >= 0)
		close(c->wake);
	pthread_mutex_destroy(&c->lock);
}

void backend_core_get_stats(struct backend_core *c, struct netvsp_backend_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->shared;
	pthread_mutex_unlock(&c->lock);
}

int netvsp_sayf(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}
