/* SPDX-License-Identifier: MIT */
/*
 * A TAP device as a NIC's backend (netvsp_backend.h). Frames to the
 * network are written straight to the non-blocking TAP descriptor (a full
 * device queue drops the frame, as a wire would); a reader thread polls it
 * and hands frames to the rx callback. While frames are held for lack of
 * guest room the thread stops reading, so the kernel queues (or drops)
 * instead of us.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "frameq.h"
#include "netvsp_backend.h"

#define TAP_FRAME_MAX 65550u /* 64 KiB MTU + Ethernet and VLAN headers */

struct netvsp_tap {
	int fd;
	netvsp_rx_fn rx;
	netvsp_rx_burst_fn rx_burst;
	void *ctx;
	struct backend_core c;
	/* The thread's own. */
	struct frameq held;
	struct frame_batch batch; /* read in place, handed over together */
};

static void *tap_thread(void *arg)
{
	struct netvsp_tap *t = arg;
	for (;;) {
		pthread_mutex_lock(&t->c.lock);
		bool stop = backend_core_publish_locked(&t->c);
		pthread_mutex_unlock(&t->c.lock);
		if (stop)
			break;
		frameq_retry(&t->held, t->rx, t->rx_burst, t->ctx, &t->c.st);
		struct pollfd p[2] = {
			{.fd = t->c.wake, .events = POLLIN},
			{.fd = t->fd, .events = t->held.count ? 0 : POLLIN},
		};
		if (poll(p, 2, -1) < 0)
			continue; /* EINTR */
		if (p[0].revents & POLLIN)
			backend_core_woken(&t->c);
		if (!(p[1].revents & POLLIN))
			continue;
		for (int i = 0; i < 64 && !t->held.count; i++) {
			ssize_t n = read(t->fd, frame_batch_slot(&t->batch), TAP_FRAME_MAX);
			if (n <= 0)
				break;
			frame_batch_commit(&t->batch, (uint32_t)n);
		}
		frame_batch_flush(&t->batch);
	}
	return NULL;
}

struct netvsp_tap *netvsp_tap_new(const char *name, netvsp_rx_fn rx,
				  netvsp_rx_burst_fn rx_burst, void *ctx, char *why, size_t len)
{
	if (!*name || strlen(name) >= IFNAMSIZ) {
		netvsp_sayf(why, len, "net tap=%s: a name of 1 to %d characters", name, IFNAMSIZ - 1);
		return NULL;
	}
	struct netvsp_tap *t = calloc(1, sizeof(*t));
	if (!t) {
		netvsp_sayf(why, len, "net tap: out of memory");
		return NULL;
	}
	t->rx = rx;
	t->rx_burst = rx_burst;
	t->ctx = ctx;
	int err = backend_core_init(&t->c);
	if (!err)
		err = frame_batch_init(&t->batch, TAP_FRAME_MAX, &t->held, rx, rx_burst, ctx,
				       &t->c.st);
	t->fd = err ? -1 : open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		netvsp_sayf(why, len, "net tap=%s: /dev/net/tun: %s%s", name, strerror(errno),
		    errno == EACCES || errno == EPERM ? " (needs CAP_NET_ADMIN or access)" : "");
		goto fail;
	}
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
	memcpy(ifr.ifr_name, name, strlen(name) + 1);
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
		netvsp_sayf(why, len, "net tap=%s: %s%s", name, strerror(errno),
		    errno == EPERM ? " (needs CAP_NET_ADMIN, or a TAP device created for this "
				     "user: ip tuntap add NAME mode tap user USER)"
				   : "");
		goto fail;
	}
	err = backend_core_start(&t->c, tap_thread, t);
	if (err) {
		netvsp_sayf(why, len, "net tap=%s: %s", name, strerror(-err));
		goto fail;
	}
	return t;
fail:
	netvsp_tap_free(t);
	return NULL;
}

int netvsp_tap_send(struct netvsp_tap *t, const uint8_t *frame, uint32_t len)
{
	pthread_mutex_lock(&t->c.lock);
	int err = t->c.stop ? -ESHUTDOWN : 0;
	if (!err && write(t->fd, frame, len) != (ssize_t)len)
		err = -EIO; /* device queue full or down: dropped like on a wire */
	backend_core_count_tx_locked(&t->c, err, len);
	pthread_mutex_unlock(&t->c.lock);
	return err;
}

void netvsp_tap_kick(struct netvsp_tap *t)
{
	backend_core_wake(&t->c);
}

void netvsp_tap_stop(struct netvsp_tap *t)
{
	if (t)
		backend_core_stop(&t->c);
}

void netvsp_tap_free(struct netvsp_tap *t)
{
	if (!t)
		return;
	backend_core_stop(&t->c);
	frameq_free(&t->held);
	frame_batch_free(&t->batch);
	if (t->fd >= 0)
		close(t->fd);
	backend_core_fini(&t->c);
	free(t);
}

void netvsp_tap_get_stats(struct netvsp_tap *t, struct netvsp_backend_stats *out)
{
	backend_core_get_stats(&t->c, out);
}
