/* SPDX-License-Identifier: MIT */
/*
 * mini_ip: a tiny IPv4 stack for the guest side of network tests. It
 * speaks Ethernet II frames over a link (any frame API: the libslirp or
 * TAP backend directly, or the netvsc guest driver) and does ARP (answers,
 * resolves), a DHCP client, ICMP echo both ways, and one TCP connection at
 * a time (active or passive open, in-order data, ACKs, FIN; a lost segment
 * is sent again after a plain timeout, no more).
 *
 * Single-threaded: the owner calls mini_ip_input with each frame and
 * mini_ip_poll now and then with a millisecond clock for the timeouts.
 * Frames are from the other side: every length is checked, anything odd is
 * counted in `bad` and dropped.
 */
#ifndef HVKIT_MINI_IP_H
#define HVKIT_MINI_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mini_ip_link {
	int (*send)(void *ctx, const void *frame, size_t len);
	void *ctx;
};

enum mini_tcp_state {
	MINI_TCP_CLOSED,
	MINI_TCP_LISTEN,
	MINI_TCP_SYN_SENT,
	MINI_TCP_SYN_RCVD,
	MINI_TCP_ESTABLISHED, /* also after one side's FIN, until both are done */
};

#define MINI_IP_ARP_ENTRIES 8
#define MINI_TCP_BUF 65536u
#define MINI_IP_FRAME_MAX 1514u

struct mini_ip {
	struct mini_ip_link link;
	uint8_t mac[6];
	/* Addresses in host byte order; 0 until DHCP (or mini_ip_set_addr). */
	uint32_t addr, mask, gateway, dns, dhcp_server;
	bool check_sums; /* verify incoming checksums (the fuzz target turns it off) */
	uint64_t now;    /* ms, from the last mini_ip_poll */

	struct {
		uint32_t ip;
		uint8_t mac[6];
		bool valid;
	} arp[MINI_IP_ARP_ENTRIES];
	uint32_t arp_next;
	/* One IP packet waiting for ARP. */
	uint8_t pending[MINI_IP_FRAME_MAX];
	size_t pending_len;
	uint32_t pending_hop;

	enum { DHCP_IDLE, DHCP_SELECTING, DHCP_REQUESTING, DHCP_BOUND } dhcp;
	uint32_t dhcp_xid, dhcp_offer;
	uint64_t dhcp_sent;

	uint16_t ip_id;
	uint32_t ping_replies;  /* echo replies to our requests */
	uint16_t ping_last_seq;
	uint32_t pings_answered; /* echo requests we answered */

	struct {
		enum mini_tcp_state state;
		uint16_t lport, rport;
		uint32_t rip;
		uint32_t iss, snd_una, snd_nxt, rcv_nxt;
		uint32_t snd_wnd; /* the peer's */
		uint64_t sent_at; /* ms: oldest unacknowledged segment */
		/* tx: bytes from snd_una on (sent or not); rx: in-order data. */
		uint8_t tx[MINI_TCP_BUF], rx[MINI_TCP_BUF];
		uint32_t tx_len, rx_head, rx_len;
		bool close_wanted, fin_sent, fin_acked, peer_fin, reset;
	} tcp;

	uint64_t frames_in, frames_out, bad;
};

void mini_ip_init(struct mini_ip *ip, const struct mini_ip_link *link, const uint8_t mac[6]);
void mini_ip_set_addr(struct mini_ip *ip, uint32_t addr, uint32_t mask, uint32_t gateway);
void mini_ip_input(struct mini_ip *ip, const void *frame, size_t len);
/* Timeouts: DHCP, ARP and TCP resend after 500 ms. */
void mini_ip_poll(struct mini_ip *ip, uint64_t now_ms);

/* DHCP: DISCOVER now; bound once mini_ip_configured. */
int mini_ip_dhcp_start(struct mini_ip *ip);
bool mini_ip_configured(const struct mini_ip *ip);

int mini_ip_ping(struct mini_ip *ip, uint32_t dst, uint16_t seq);

int mini_ip_tcp_connect(struct mini_ip *ip, uint32_t dst, uint16_t port, uint16_t lport);
int mini_ip_tcp_listen(struct mini_ip *ip, uint16_t port);
/* Queues up to len bytes; returns how many were taken (0: buffer full). */
size_t mini_ip_tcp_send(struct mini_ip *ip, const void *data, size_t len);
/* Takes up to max received bytes. */
size_t mini_ip_tcp_recv(struct mini_ip *ip, void *buf, size_t max);
/* FIN once everything queued is sent. */
void mini_ip_tcp_close(struct mini_ip *ip);
/* The peer sent FIN and every byte before it has been read. */
bool mini_ip_tcp_eof(const struct mini_ip *ip);
/* Both FINs sent and acknowledged (or reset). */
bool mini_ip_tcp_done(const struct mini_ip *ip);

/* "a.b.c.d" to host order, for tests. */
uint32_t mini_ip_addr(const char *dotted);

#endif /* HVKIT_MINI_IP_H */
