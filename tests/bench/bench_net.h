/* SPDX-License-Identifier: MIT */
/*
 * Frames from the host into a process-partition guest through netvsp and
 * netvsc: the "source -> guest" run of hvkit-bench net, with as many
 * queues as asked, shared with hvkit-bench scale.
 */
#ifndef HVKIT_BENCH_NET_H
#define HVKIT_BENCH_NET_H

#include <stdint.h>

#define NET_RX_MAX_QUEUES 16

/* Either way: frames/s in all (first frame to last), and each queue's
 * (rx: each host source's; tx: each channel's, at the sink). */
struct net_result {
	double total_fps;
	double queue_fps[NET_RX_MAX_QUEUES];
};

/*
 * The netvsc test guest (bench-rx) with a VP per queue and a NIC with
 * `queues` channels; a host thread per queue pushes `count` frames of
 * `size` bytes into netvsp in bursts, its flows spread over the channels.
 * 0 or -errno.
 */
int net_rx_run(const char *guest, uint32_t size, uint64_t count, uint32_t queues,
	       struct net_result *r);

/*
 * The other way: the netvsc test guest (bench-tx) with a VP and a sending
 * thread per queue, each sending `count` frames of `size` bytes of a flow
 * netvsc puts on its own channel, into a NIC with the sink backend (with
 * one queue: one thread, frames that are not IP). 0 or -errno.
 */
int net_tx_run(const char *guest, uint32_t size, uint64_t count, uint32_t queues,
	       struct net_result *r);

#endif
