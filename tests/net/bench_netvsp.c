/* SPDX-License-Identifier: MIT */
/*
 * netvsp-bench: frames through netvsp in one process, the scripted guest
 * (netvsp_guest.h) on one side and the loopback backend as a sink on the
 * other. Guest to host: RNDIS data packets in send sections, each
 * completed; host to guest: netvsp_receive, the transfer-page packet read
 * and completed. Printed figures, not a test; next to them the bound of a
 * plain memcpy of the same bytes. The real benchmark (hvkit-bench net,
 * process-partition guest) needs the netvsc guest driver.
 *   netvsp-bench [frames]
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "netvsp_guest.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void report(const char *what, uint32_t len, uint32_t frames, double secs)
{
	double fps = frames / secs;
	printf("  %-28s %5u B  %10.0f frames/s  %7.2f Gbit/s\n", what, len, fps,
	       fps * len * 8 / 1e9);
}

int main(int argc, char **argv)
{
	uint32_t frames = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 200000;
	const uint32_t sizes[] = {64, 1500};
	printf("netvsp-bench: %u frames per figure, one thread\n", frames);
	for (uint32_t s = 0; s < 2; s++) {
		uint32_t len = sizes[s];
		struct ng *g = ng_new(NULL, false);
		ng_up(g, NVSP_PROTOCOL_VERSION_61);
		uint8_t f[1514], back[1600];
		memcpy(f, g->mac, 6);
		memset(f + 6, 0x5a, sizeof(f) - 6);

		/* Warm up: every section and ring page touched once. */
		for (uint32_t i = 0; i < 20000; i++) {
			ng_send_frame(g, 0, f, len, true);
			if (netvsp_receive(g->nic, f, len) != 0 || ng_recv_frame(g, 0, back, sizeof(back)) != len)
				abort();
		}
		double t0 = now();
		for (uint32_t i = 0; i < frames; i++)
			ng_send_frame(g, 0, f, len, true);
		report("guest -> netvsp -> sink", len, frames, now() - t0);

		t0 = now();
		for (uint32_t i = 0; i < frames; i++) {
			if (netvsp_receive(g->nic, f, len) != 0 || ng_recv_frame(g, 0, back, sizeof(back)) != len)
				abort();
		}
		report("backend -> netvsp -> guest", len, frames, now() - t0);

		static uint8_t dst[1 << 20];
		t0 = now();
		for (uint32_t i = 0; i < frames; i++) {
			memcpy(dst + (i * 2048u) % ((1u << 20) - 2048), f, len);
			__asm__ volatile("" ::: "memory");
		}
		report("bound: memcpy of the frame", len, frames, now() - t0);
		ng_free(g);
	}
	return 0;
}
