/* SPDX-License-Identifier: MIT */
/*
 * The loopback backend (netvsp.h): a frame the guest sends is handed back
 * to the same NIC, or counted and dropped in sink mode. It shows the
 * asynchronous contract in its simplest form: transmit runs under the
 * device lock and only copies; a frame the guest has no room for waits
 * in a bounded FIFO until rx_ready.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netvsp.h"

#define LOOPBACK_QUEUE 64u
#define LOOPBACK_FRAME_MAX (NETVSP_MTU_MAX + RNDIS_ETH_HLEN + RNDIS_VLAN_HLEN)

struct queued {
	uint32_t len;
	uint8_t *data;
};

struct netvsp_loopback {
	bool reflect;
	struct queued q[LOOPBACK_QUEUE];
	uint32_t head, count;
	uint8_t *last;
	uint32_t last_len;
	struct netvsp_loopback_stats st;
};

struct netvsp_loopback *netvsp_loopback_new(bool reflect)
{
	struct netvsp_loopback *lb = calloc(1, sizeof(*lb));
	if (!lb)
		return NULL;
	lb->reflect = reflect;
	lb->last = malloc(LOOPBACK_FRAME_MAX);
	if (!lb->last) {
		free(lb);
		return NULL;
	}
	return lb;
}

void netvsp_loopback_free(struct netvsp_loopback *lb)
{
	if (!lb)
		return;
	for (uint32_t i = 0; i < LOOPBACK_QUEUE; i++)
		free(lb->q[i].data);
	free(lb->last);
	free(lb);
}

/* Delivers queued frames, a burst at a time, until the guest runs out of
 * room. */
static void drain(struct netvsp_loopback *lb, struct netvsp *nic)
{
	while (lb->count) {
		const uint8_t *frames[NETVSP_RX_BURST_MAX];
		uint32_t lens[NETVSP_RX_BURST_MAX];
		int errs[NETVSP_RX_BURST_MAX];
		uint32_t n = lb->count < NETVSP_RX_BURST_MAX ? lb->count : NETVSP_RX_BURST_MAX;
		for (uint32_t i = 0; i < n; i++) {
			const struct queued *e = &lb->q[(lb->head + i) % LOOPBACK_QUEUE];
			frames[i] = e->data;
			lens[i] = e->len;
		}
		uint32_t took = netvsp_receive_burst_locked(nic, frames, lens, n, errs);
		for (uint32_t i = 0; i < took; i++) {
			if (errs[i])
				lb->st.dropped++;
			else
				lb->st.returned++;
		}
		lb->head = (lb->head + took) % LOOPBACK_QUEUE;
		lb->count -= took;
		if (took < n)
			return; /* -ENOBUFS: rx_ready comes */
	}
}

static void lb_transmit(void *be, struct netvsp *nic, const uint8_t *frame, uint32_t len,
			const struct rndis_frame_info *info)
{
	(void)info;
	struct netvsp_loopback *lb = be;
	lb->st.frames++;
	lb->st.bytes += len;
	lb->last_len = len < LOOPBACK_FRAME_MAX ? len : LOOPBACK_FRAME_MAX;
	memcpy(lb->last, frame, lb->last_len);
	if (!lb->reflect)
		return;
	if (lb->count == LOOPBACK_QUEUE || len > LOOPBACK_FRAME_MAX) {
		lb->st.dropped++;
		return;
	}
	struct queued *e = &lb->q[(lb->head + lb->count) % LOOPBACK_QUEUE];
	if (!e->data)
		e->data = malloc(LOOPBACK_FRAME_MAX);
	if (!e->data) {
		lb->st.dropped++;
		return;
	}
	memcpy(e->data, frame, len);
	e->len = len;
	lb->count++;
	drain(lb, nic);
}

static void lb_rx_ready(void *be, struct netvsp *nic)
{
	drain(be, nic);
}

static const struct netvsp_backend_ops lb_ops = {
	.transmit = lb_transmit,
	.rx_ready = lb_rx_ready,
};

const struct netvsp_backend_ops *netvsp_loopback_ops(void)
{
	return &lb_ops;
}

void netvsp_loopback_get_stats(const struct netvsp_loopback *lb,
			       struct netvsp_loopback_stats *out)
{
	*out = lb->st;
	out->queued = lb->count;
}

uint32_t netvsp_loopback_last(const struct netvsp_loopback *lb, uint8_t *out, uint32_t max)
{
	memcpy(out, lb->last, lb->last_len < max ? lb->last_len : max);
	return lb->last_len;
}
