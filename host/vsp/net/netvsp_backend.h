/* SPDX-License-Identifier: MIT */
/*
 * The threaded network backends: user-mode networking (libslirp) and a
 * TAP device. Each owns one thread that does all its I/O, and talks
 * frames — whole Ethernet frames without FCS — in both directions:
 *  - *_send takes a frame for the network from any thread (it copies; a
 *    full queue drops, like a wire would);
 *  - the rx callback gets a frame for the guest on the backend's thread.
 *    It returns 0 (taken), -ENOBUFS (keep it: the backend holds it and
 *    later ones until *_kick says there is room again) or another error
 *    (dropped). The frames held are handed back in bursts when there is
 *    an rx_burst callback.
 * They know nothing of VMBus: netvsp_nic.c joins them to a netvsp, and the
 * tests drive them with the mini IP stack directly.
 *
 * Teardown is in two steps because the guest side may still call *_send
 * while the NIC goes away: *_stop ends the thread (no rx callback after
 * it returns, *_send then drops), *_free frees.
 */
#ifndef HVKIT_NETVSP_BACKEND_H
#define HVKIT_NETVSP_BACKEND_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int (*netvsp_rx_fn)(void *ctx, const uint8_t *frame, uint32_t len);
/* Optional: several frames at once, as netvsp_receive_burst (how many
 * from the front were taken, errs[] for each and -ENOBUFS for the first
 * not taken; flags NETVSP_RX_BURST_MORE when another burst follows at
 * once). The held frames go to it in bursts; NULL: one at a time. */
#define NETVSP_RX_BURST_MORE 1u /* netvsp.h's NETVSP_RX_MORE, for the NIC */
typedef uint32_t (*netvsp_rx_burst_fn)(void *ctx, const uint8_t *const *frames,
				       const uint32_t *lens, uint32_t count, int *errs,
				       uint32_t flags);

struct netvsp_backend_stats {
	uint64_t tx_frames, tx_bytes; /* to the network */
	uint64_t rx_frames, rx_bytes; /* to the guest (taken by rx) */
	uint64_t tx_dropped;          /* queue full, too long, or refused */
	uint64_t rx_dropped;          /* rx refused or the hold queue full */
	uint64_t guest_errors;        /* slirp: frames it called malformed */
};

/* ---- libslirp ---- */

#define NETVSP_HOSTFWD_MAX 16u

struct netvsp_hostfwd {
	bool udp;
	struct in_addr host_addr; /* INADDR_ANY: all */
	uint16_t host_port;
	struct in_addr guest_addr; /* 0: the DHCP address, 10.0.2.15 */
	uint16_t guest_port;
};

struct netvsp_slirp_opts {
	bool restrict_; /* restrict=on: no traffic out but the forwards */
	uint32_t mtu;   /* 0: 1500 */
	uint32_t nfwd;
	struct netvsp_hostfwd fwd[NETVSP_HOSTFWD_MAX];
};

/* Parses "tcp:HOSTADDR:HPORT-GUESTADDR:GPORT" (QEMU's hostfwd; protocol
 * and addresses may be left out; host port 0: any free one). -EINVAL on
 * anything else. */
int netvsp_hostfwd_parse(const char *s, struct netvsp_hostfwd *out);

struct netvsp_slirp;
/* The network 10.0.2.0/24: gateway and host 10.0.2.2, DNS 10.0.2.3, DHCP
 * from 10.0.2.15. On error returns NULL with why filled. */
struct netvsp_slirp *netvsp_slirp_new(const struct netvsp_slirp_opts *o, netvsp_rx_fn rx,
				      netvsp_rx_burst_fn rx_burst, void *ctx, char *why,
				      size_t len);
int netvsp_slirp_send(struct netvsp_slirp *s, const uint8_t *frame, uint32_t len);
void netvsp_slirp_kick(struct netvsp_slirp *s);
void netvsp_slirp_stop(struct netvsp_slirp *s);
void netvsp_slirp_free(struct netvsp_slirp *s);
void netvsp_slirp_get_stats(struct netvsp_slirp *s, struct netvsp_backend_stats *out);

/* ---- TAP ---- */

struct netvsp_tap;
/* Opens /dev/net/tun as TAP interface name (IFF_TAP | IFF_NO_PI); the
 * interface must exist or we must be allowed to create it. */
struct netvsp_tap *netvsp_tap_new(const char *name, netvsp_rx_fn rx,
				  netvsp_rx_burst_fn rx_burst, void *ctx, char *why, size_t len);
int netvsp_tap_send(struct netvsp_tap *t, const uint8_t *frame, uint32_t len);
void netvsp_tap_kick(struct netvsp_tap *t);
void netvsp_tap_stop(struct netvsp_tap *t);
void netvsp_tap_free(struct netvsp_tap *t);
void netvsp_tap_get_stats(struct netvsp_tap *t, struct netvsp_backend_stats *out);

#endif /* HVKIT_NETVSP_BACKEND_H */
