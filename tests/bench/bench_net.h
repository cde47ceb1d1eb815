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

struct net_rx_result {
	double total_fps;                        /* every frame: first taken to last completed */
	double source_fps[NET_RX_MAX_QUEUES];    /* each source: its first frame taken to its last */
};

/*
 * The netvsc test guest (bench-rx) with a VP per queue and a NIC with
 * `queues` channels; a host thread per queue pushes `count` frames of
 * `size` bytes into netvsp in bursts, its flows spread over the channels.
 * 0 or -errno.
 */
int net_rx_run(const char *guest, uint32_t size, uint64_t count, uint32_t queues,
	       struct net_rx_result *r);

#endif
