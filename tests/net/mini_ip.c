/* SPDX-License-Identifier: MIT */
/*
 * mini_ip (see mini_ip.h). Layout: bytes and checksums; output (Ethernet,
 * ARP resolution, IP); ARP; DHCP; ICMP; TCP; input; the calls.
 * Formats from the RFCs: 826 (ARP), 791 (IPv4), 792 (ICMP), 2131/2132
 * (DHCP), 793 (TCP). Every read of a received frame goes through a length
 * checked first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "mini_ip.h"

#define ETH_HLEN 14u
#define IP_HLEN 20u
#define UDP_HLEN 8u
#define TCP_HLEN 20u
#define ETH_IP 0x0800
#define ETH_ARP 0x0806
#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_MSS 1400u
#define TCP_FLIGHT (8u * TCP_MSS)
#define RESEND_MS 500u
#define DHCP_LEN 300u /* BOOTP's minimum, options included */
#define DHCP_MAGIC 0x63825363u
#define IP_BROADCAST 0xffffffffu

static const uint8_t bcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

/* ---- bytes ---- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint32_t sum_bytes(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* TCP/UDP checksum over the pseudo header and the segment. */
static uint16_t l4_sum(uint32_t src, uint32_t dst, uint8_t proto, const uint8_t *seg, size_t len)
{
	uint32_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto +
		       (uint32_t)len;
	return fold(sum_bytes(sum, seg, len));
}

uint32_t mini_ip_addr(const char *dotted)
{
	struct in_addr a;
	return inet_pton(AF_INET, dotted, &a) == 1 ? ntohl(a.s_addr) : 0;
}

/* ---- output ---- */

static void link_send(struct mini_ip *ip, const uint8_t *frame, size_t len)
{
	ip->frames_out++;
	ip->link.send(ip->link.ctx, frame, len);
}

static void eth_header(struct mini_ip *ip, uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, ip->mac, 6);
	put16(f + 12, type);
}

static void arp_send(struct mini_ip *ip, uint16_t op, const uint8_t *tmac, uint32_t tip)
{
	uint8_t f[ETH_HLEN + 28] = {0};
	eth_header(ip, f, op == 1 ? bcast_mac : tmac, ETH_ARP);
	uint8_t *a = f + ETH_HLEN;
	put16(a, 1);          /* Ethernet */
	put16(a + 2, ETH_IP); /* IPv4 */
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, ip->mac, 6);
	put32(a + 14, ip->addr);
	if (op == 2)
		memcpy(a + 18, tmac, 6);
	put32(a + 24, tip);
	link_send(ip, f, sizeof(f));
}

static const uint8_t *arp_lookup(struct mini_ip *ip, uint32_t addr)
{
	for (int i = 0; i < MINI_IP_ARP_ENTRIES; i++)
		if (ip->arp[i].valid && ip->arp[i].ip == addr)
			return ip->arp[i].mac;
	return NULL;
}

static void arp_learn(struct mini_ip *ip, uint32_t addr, const uint8_t *mac)
{
	if (!addr || (mac[0] & 1))
		return;
	int slot = -1;
	for (int i = 0; i < MINI_IP_ARP_ENTRIES; i++)
		if (ip->arp[i].valid && ip->arp[i].ip == addr)
			slot = i;
	if (slot < 0) {
		slot = (int)(ip->arp_next++ % MINI_IP_ARP_ENTRIES);
		ip->arp[slot].ip = addr;
		ip->arp[slot].valid = true;
	}
	memcpy(ip->arp[slot].mac, mac, 6);
	if (ip->pending_len && ip->pending_hop == addr) {
		memcpy(ip->pending, mac, 6);
		link_send(ip, ip->pending, ip->pending_len);
		ip->pending_len = 0;
	}
}

static uint32_t next_hop(const struct mini_ip *ip, uint32_t dst)
{
	if (!ip->mask || (dst & ip->mask) == (ip->addr & ip->mask) || !ip->gateway)
		return dst;
	return ip->gateway;
}

/* Sends an IP packet whose payload is already at f + ETH_HLEN + IP_HLEN. */
static int ip_output(struct mini_ip *ip, uint8_t *f, uint32_t src, uint32_t dst, uint8_t proto,
		     size_t plen)
{
	size_t len = ETH_HLEN + IP_HLEN + plen;
	if (len > MINI_IP_FRAME_MAX)
		return -EMSGSIZE;
	uint8_t *h = f + ETH_HLEN;
	h[0] = 0x45;
	h[1] = 0;
	put16(h + 2, (uint16_t)(IP_HLEN + plen));
	put16(h + 4, ip->ip_id++);
	put16(h + 6, 0x4000); /* DF */
	h[8] = 64;
	h[9] = proto;
	put16(h + 10, 0);
	put32(h + 12, src);
	put32(h + 16, dst);
	put16(h + 10, fold(sum_bytes(0, h, IP_HLEN)));
	if (dst == IP_BROADCAST) {
		eth_header(ip, f, bcast_mac, ETH_IP);
		link_send(ip, f, len);
		return 0;
	}
	uint32_t hop = next_hop(ip, dst);
	const uint8_t *mac = arp_lookup(ip, hop);
	eth_header(ip, f, mac ? mac : bcast_mac, ETH_IP);
	if (mac) {
		link_send(ip, f, len);
		return 0;
	}
	/* One packet waits for the answer; a newer one replaces it (the
	 * timeouts above us send again). */
	memcpy(ip->pending, f, len);
	ip->pending_len = len;
	ip->pending_hop = hop;
	arp_send(ip, 1, NULL, hop);
	return 0;
}

/* ---- DHCP ---- */

static void dhcp_send(struct mini_ip *ip, uint8_t type)
{
	uint8_t f[ETH_HLEN + IP_HLEN + UDP_HLEN + DHCP_LEN] = {0};
	uint8_t *u = f + ETH_HLEN + IP_HLEN;
	uint8_t *d = u + UDP_HLEN;
	d[0] = 1; /* BOOTREQUEST */
	d[1] = 1;
	d[2] = 6;
	put32(d + 4, ip->dhcp_xid);
	put16(d + 10, 0x8000); /* answer by broadcast: we have no address yet */
	memcpy(d + 28, ip->mac, 6);
	put32(d + 236, DHCP_MAGIC);
	uint8_t *o = d + 240;
	*o++ = 53, *o++ = 1, *o++ = type;
	if (type == 3) {
		*o++ = 50, *o++ = 4;
		put32(o, ip->dhcp_offer);
		o += 4;
		*o++ = 54, *o++ = 4;
		put32(o, ip->dhcp_server);
		o += 4;
	}
	*o++ = 55, *o++ = 3, *o++ = 1, *o++ = 3, *o++ = 6;
	*o = 255;
	put16(u, 68);
	put16(u + 2, 67);
	put16(u + 4, UDP_HLEN + DHCP_LEN);
	put16(u + 6, 0); /* no checksum: allowed for UDP over IPv4 */
	ip->dhcp_sent = ip->now;
	ip_output(ip, f, 0, IP_BROADCAST, PROTO_UDP, UDP_HLEN + DHCP_LEN);
}

static void dhcp_input(struct mini_ip *ip, const uint8_t *d, size_t len)
{
	if (len < 240 || d[0] != 2 || get32(d + 4) != ip->dhcp_xid || memcmp(d + 28, ip->mac, 6) ||
	    get32(d + 236) != DHCP_MAGIC) {
		ip->bad++;
		return;
	}
	uint8_t type = 0;
	uint32_t server = 0, mask = 0, router = 0, dns = 0;
	for (size_t i = 240; i < len;) {
		uint8_t code = d[i];
		if (code == 255)
			break;
		if (code == 0) {
			i++;
			continue;
		}
		if (i + 2 > len || i + 2 + d[i + 1] > len) {
			ip->bad++;
			return;
		}
		uint8_t olen = d[i + 1];
		const uint8_t *v = d + i + 2;
		if (code == 53 && olen >= 1)
			type = v[0];
		else if (code == 54 && olen >= 4)
			server = get32(v);
		else if (code == 1 && olen >= 4)
			mask = get32(v);
		else if (code == 3 && olen >= 4)
			router = get32(v);
		else if (code == 6 && olen >= 4)
			dns = get32(v);
		i += 2u + olen;
	}
	uint32_t yiaddr = get32(d + 16);
	if (type == 2 && ip->dhcp == DHCP_SELECTING && yiaddr && server) { /* OFFER */
		ip->dhcp_offer = yiaddr;
		ip->dhcp_server = server;
		ip->dhcp = DHCP_REQUESTING;
		dhcp_send(ip, 3);
	} else if (type == 5 && ip->dhcp == DHCP_REQUESTING && yiaddr == ip->dhcp_offer) { /* ACK */
		ip->dhcp = DHCP_BOUND;
		ip->addr = yiaddr;
		ip->mask = mask ? mask : 0xffffff00u;
		ip->gateway = router;
		ip->dns = dns;
	} else if (type == 6 && ip->dhcp == DHCP_REQUESTING) { /* NAK: start over */
		ip->dhcp = DHCP_SELECTING;
		dhcp_send(ip, 1);
	}
}

/* ---- ICMP ---- */

static void icmp_input(struct mini_ip *ip, uint32_t src, const uint8_t *p, size_t len)
{
	if (len < 8 || (ip->check_sums && fold(sum_bytes(0, p, len)) != 0)) {
		ip->bad++;
		return;
	}
	if (p[0] == 0) { /* echo reply */
		ip->ping_replies++;
		ip->ping_last_seq = get16(p + 6);
		return;
	}
	if (p[0] != 8 || len > MINI_IP_FRAME_MAX - ETH_HLEN - IP_HLEN)
		return;
	uint8_t f[MINI_IP_FRAME_MAX];
	uint8_t *r = f + ETH_HLEN + IP_HLEN;
	memcpy(r, p, len);
	r[0] = 0;
	put16(r + 2, 0);
	put16(r + 2, fold(sum_bytes(0, r, len)));
	ip->pings_answered++;
	ip_output(ip, f, ip->addr, src, PROTO_ICMP, len);
}

/* ---- TCP ---- */

static uint32_t tcp_rx_room(const struct mini_ip *ip)
{
	return MINI_TCP_BUF - ip->tcp.rx_len;
}

static void tcp_segment(struct mini_ip *ip, uint8_t flags, uint32_t seq, const uint8_t *data,
			size_t dlen)
{
	uint8_t f[MINI_IP_FRAME_MAX];
	uint8_t *t = f + ETH_HLEN + IP_HLEN;
	size_t hlen = TCP_HLEN + ((flags & TCP_SYN) ? 4u : 0u);
	put16(t, ip->tcp.lport);
	put16(t + 2, ip->tcp.rport);
	put32(t + 4, seq);
	put32(t + 8, (flags & TCP_ACK) ? ip->tcp.rcv_nxt : 0);
	t[12] = (uint8_t)((hlen / 4) << 4);
	t[13] = flags;
	uint32_t room = tcp_rx_room(ip);
	put16(t + 14, (uint16_t)(room > 65535 ? 65535 : room));
	put32(t + 16, 0); /* checksum and urgent pointer */
	if (flags & TCP_SYN) {
		t[20] = 2; /* MSS */
		t[21] = 4;
		put16(t + 22, TCP_MSS);
	}
	if (dlen)
		memcpy(t + hlen, data, dlen);
	put16(t + 16, l4_sum(ip->addr, ip->tcp.rip, PROTO_TCP, t, hlen + dlen));
	ip_output(ip, f, ip->addr, ip->tcp.rip, PROTO_TCP, hlen + dlen);
}

static void tcp_reset_to(struct mini_ip *ip, uint32_t dst, uint16_t sport, uint16_t dport,
			 uint32_t seq, uint32_t ack)
{
	/* An RST for a segment nobody here wants, built on a scratch state. */
	uint8_t f[ETH_HLEN + IP_HLEN + TCP_HLEN];
	uint8_t *t = f + ETH_HLEN + IP_HLEN;
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = (TCP_HLEN / 4) << 4;
	t[13] = TCP_RST | TCP_ACK;
	put32(t + 14, 0);
	put16(t + 18, 0);
	put16(t + 16, l4_sum(ip->addr, dst, PROTO_TCP, t, TCP_HLEN));
	ip_output(ip, f, ip->addr, dst, PROTO_TCP, TCP_HLEN);
}

/* Sends what the window allows, then FIN when asked and all is sent;
 * returns whether anything went out. */
static bool tcp_output(struct mini_ip *ip)
{
	if (ip->tcp.state != MINI_TCP_ESTABLISHED)
		return false;
	bool sent = false;
	uint32_t wnd = ip->tcp.snd_wnd < TCP_FLIGHT ? ip->tcp.snd_wnd : TCP_FLIGHT;
	for (;;) {
		uint32_t off = ip->tcp.snd_nxt - ip->tcp.snd_una;
		if (ip->tcp.fin_sent || off >= ip->tcp.tx_len || off >= wnd)
			break;
		uint32_t n = ip->tcp.tx_len - off;
		if (n > TCP_MSS)
			n = TCP_MSS;
		if (n > wnd - off)
			n = wnd - off;
		if (ip->tcp.snd_nxt == ip->tcp.snd_una)
			ip->tcp.sent_at = ip->now;
		tcp_segment(ip, TCP_ACK | TCP_PSH, ip->tcp.snd_nxt, ip->tcp.tx + off, n);
		ip->tcp.snd_nxt += n;
		sent = true;
	}
	if (ip->tcp.close_wanted && !ip->tcp.fin_sent &&
	    ip->tcp.snd_nxt - ip->tcp.snd_una == ip->tcp.tx_len) {
		if (ip->tcp.snd_nxt == ip->tcp.snd_una)
			ip->tcp.sent_at = ip->now;
		tcp_segment(ip, TCP_ACK | TCP_FIN, ip->tcp.snd_nxt, NULL, 0);
		ip->tcp.snd_nxt++;
		ip->tcp.fin_sent = true;
		sent = true;
	}
	return sent;
}

static void tcp_ack_input(struct mini_ip *ip, uint32_t ack)
{
	uint32_t acked = ack - ip->tcp.snd_una;
	if (!acked || acked > ip->tcp.snd_nxt - ip->tcp.snd_una)
		return; /* old or beyond what we sent */
	if (ip->tcp.fin_sent && ack == ip->tcp.snd_nxt) {
		ip->tcp.fin_acked = true;
		acked--; /* the FIN's sequence number is no data */
	}
	if (acked > ip->tcp.tx_len)
		acked = ip->tcp.tx_len;
	memmove(ip->tcp.tx, ip->tcp.tx + acked, ip->tcp.tx_len - acked);
	ip->tcp.tx_len -= acked;
	ip->tcp.snd_una = ack;
	ip->tcp.sent_at = ip->now;
}

static void tcp_data_input(struct mini_ip *ip, uint32_t seq, const uint8_t *data, size_t dlen,
			   bool fin)
{
	if (seq == ip->tcp.rcv_nxt && !ip->tcp.peer_fin) {
		uint32_t n = (uint32_t)dlen < tcp_rx_room(ip) ? (uint32_t)dlen : tcp_rx_room(ip);
		for (uint32_t i = 0; i < n; i++)
			ip->tcp.rx[(ip->tcp.rx_head + ip->tcp.rx_len + i) % MINI_TCP_BUF] = data[i];
		ip->tcp.rx_len += n;
		ip->tcp.rcv_nxt += n;
		if (fin && n == dlen) {
			ip->tcp.peer_fin = true;
			ip->tcp.rcv_nxt++;
		}
	}
}

static void tcp_input(struct mini_ip *ip, uint32_t src, uint32_t dst, const uint8_t *t,
		      size_t len)
{
	if (len < TCP_HLEN || (ip->check_sums && l4_sum(src, dst, PROTO_TCP, t, len) != 0)) {
		ip->bad++;
		return;
	}
	size_t hlen = (size_t)(t[12] >> 4) * 4;
	if (hlen < TCP_HLEN || hlen > len) {
		ip->bad++;
		return;
	}
	uint16_t sport = get16(t), dport = get16(t + 2);
	uint32_t seq = get32(t + 4), ack = get32(t + 8);
	uint8_t flags = t[13];
	const uint8_t *data = t + hlen;
	size_t dlen = len - hlen;
	struct mini_ip *c = ip;
	bool ours = c->tcp.state != MINI_TCP_CLOSED && dport == c->tcp.lport &&
		    (c->tcp.state == MINI_TCP_LISTEN || (src == c->tcp.rip && sport == c->tcp.rport));
	if (!ours) {
		if (!(flags & TCP_RST))
			tcp_reset_to(ip, src, dport, sport, (flags & TCP_ACK) ? ack : 0,
				     seq + (uint32_t)dlen + ((flags & TCP_SYN) ? 1 : 0));
		return;
	}
	if (flags & TCP_RST) {
		if (c->tcp.state != MINI_TCP_LISTEN) {
			c->tcp.state = MINI_TCP_CLOSED;
			c->tcp.reset = true;
		}
		return;
	}
	c->tcp.snd_wnd = get16(t + 14);
	switch (c->tcp.state) {
	case MINI_TCP_LISTEN:
		if (!(flags & TCP_SYN) || (flags & TCP_ACK))
			return;
		c->tcp.rip = src;
		c->tcp.rport = sport;
		c->tcp.rcv_nxt = seq + 1;
		c->tcp.snd_una = c->tcp.iss;
		c->tcp.snd_nxt = c->tcp.iss + 1;
		c->tcp.sent_at = ip->now;
		c->tcp.state = MINI_TCP_SYN_RCVD;
		tcp_segment(ip, TCP_SYN | TCP_ACK, c->tcp.iss, NULL, 0);
		return;
	case MINI_TCP_SYN_SENT:
		if ((flags & (TCP_SYN | TCP_ACK)) != (TCP_SYN | TCP_ACK) || ack != c->tcp.iss + 1)
			return;
		c->tcp.rcv_nxt = seq + 1;
		c->tcp.snd_una = c->tcp.snd_nxt = ack;
		c->tcp.state = MINI_TCP_ESTABLISHED;
		tcp_segment(ip, TCP_ACK, c->tcp.snd_nxt, NULL, 0);
		tcp_output(ip);
		return;
	case MINI_TCP_SYN_RCVD:
		if (flags & TCP_SYN) { /* our SYN-ACK was lost */
			tcp_segment(ip, TCP_SYN | TCP_ACK, c->tcp.iss, NULL, 0);
			return;
		}
		if (!(flags & TCP_ACK) || ack != c->tcp.iss + 1)
			return;
		c->tcp.snd_una = ack;
		c->tcp.state = MINI_TCP_ESTABLISHED;
		break;
	case MINI_TCP_ESTABLISHED:
		break;
	case MINI_TCP_CLOSED:
		return;
	}
	if (flags & TCP_ACK)
		tcp_ack_input(ip, ack);
	uint32_t before = c->tcp.rcv_nxt;
	if (dlen || (flags & TCP_FIN))
		tcp_data_input(ip, seq, data, dlen, flags & TCP_FIN);
	bool sent = tcp_output(ip);
	/* Acknowledge new data, and answer anything out of order with the
	 * sequence we wait for. */
	if (!sent && (dlen || (flags & TCP_FIN) || before != c->tcp.rcv_nxt))
		tcp_segment(ip, TCP_ACK, c->tcp.snd_nxt, NULL, 0);
}

/* ---- input ---- */

static void udp_input(struct mini_ip *ip, const uint8_t *u, size_t len)
{
	if (len < UDP_HLEN || get16(u + 4) < UDP_HLEN || get16(u + 4) > len) {
		ip->bad++;
		return;
	}
	if (get16(u + 2) == 68 && ip->dhcp != DHCP_IDLE)
		dhcp_input(ip, u + UDP_HLEN, get16(u + 4) - UDP_HLEN);
}

static void ipv4_input(struct mini_ip *ip, const uint8_t *h, size_t len)
{
	if (len < IP_HLEN || (h[0] >> 4) != 4) {
		ip->bad++;
		return;
	}
	size_t hlen = (size_t)(h[0] & 15) * 4;
	size_t total = get16(h + 2);
	if (hlen < IP_HLEN || total < hlen || total > len ||
	    (ip->check_sums && fold(sum_bytes(0, h, hlen)) != 0)) {
		ip->bad++;
		return;
	}
	if (get16(h + 6) & 0x3fff) /* a fragment: more than we do */
		return;
	uint32_t src = get32(h + 12), dst = get32(h + 16);
	bool for_us = (ip->addr && dst == ip->addr) || dst == IP_BROADCAST ||
		      (h[9] == PROTO_UDP && ip->dhcp != DHCP_IDLE && ip->dhcp != DHCP_BOUND);
	if (!for_us)
		return;
	const uint8_t *p = h + hlen;
	size_t plen = total - hlen;
	switch (h[9]) {
	case PROTO_ICMP:
		if (ip->addr)
			icmp_input(ip, src, p, plen);
		break;
	case PROTO_UDP:
		udp_input(ip, p, plen);
		break;
	case PROTO_TCP:
		if (ip->addr)
			tcp_input(ip, src, dst, p, plen);
		break;
	}
}

static void arp_input(struct mini_ip *ip, const uint8_t *a, size_t len)
{
	if (len < 28 || get16(a) != 1 || get16(a + 2) != ETH_IP || a[4] != 6 || a[5] != 4) {
		ip->bad++;
		return;
	}
	uint16_t op = get16(a + 6);
	uint32_t sip = get32(a + 14), tip = get32(a + 24);
	if (!ip->addr || tip != ip->addr)
		return;
	arp_learn(ip, sip, a + 8);
	if (op == 1)
		arp_send(ip, 2, a + 8, sip);
}

void mini_ip_input(struct mini_ip *ip, const void *frame, size_t len)
{
	const uint8_t *f = frame;
	ip->frames_in++;
	if (len < ETH_HLEN) {
		ip->bad++;
		return;
	}
	if (memcmp(f, ip->mac, 6) && memcmp(f, bcast_mac, 6))
		return; /* someone else's */
	uint16_t type = get16(f + 12);
	if (type == ETH_ARP)
		arp_input(ip, f + ETH_HLEN, len - ETH_HLEN);
	else if (type == ETH_IP)
		ipv4_input(ip, f + ETH_HLEN, len - ETH_HLEN);
}

/* ---- the calls ---- */

void mini_ip_init(struct mini_ip *ip, const struct mini_ip_link *link, const uint8_t mac[6])
{
	memset(ip, 0, sizeof(*ip));
	ip->link = *link;
	memcpy(ip->mac, mac, 6);
	ip->check_sums = true;
	ip->dhcp_xid = get32(mac + 2) ^ 0x5a5a1234u;
}

void mini_ip_set_addr(struct mini_ip *ip, uint32_t addr, uint32_t mask, uint32_t gateway)
{
	ip->addr = addr;
	ip->mask = mask;
	ip->gateway = gateway;
}

void mini_ip_poll(struct mini_ip *ip, uint64_t now_ms)
{
	ip->now = now_ms;
	if ((ip->dhcp == DHCP_SELECTING || ip->dhcp == DHCP_REQUESTING) &&
	    now_ms - ip->dhcp_sent >= RESEND_MS)
		dhcp_send(ip, ip->dhcp == DHCP_SELECTING ? 1 : 3);
	if (ip->tcp.snd_nxt == ip->tcp.snd_una || now_ms - ip->tcp.sent_at < RESEND_MS)
		return;
	ip->tcp.sent_at = now_ms;
	switch (ip->tcp.state) {
	case MINI_TCP_SYN_SENT:
		tcp_segment(ip, TCP_SYN, ip->tcp.iss, NULL, 0);
		break;
	case MINI_TCP_SYN_RCVD:
		tcp_segment(ip, TCP_SYN | TCP_ACK, ip->tcp.iss, NULL, 0);
		break;
	case MINI_TCP_ESTABLISHED: /* go back to the oldest unacknowledged byte */
		ip->tcp.snd_nxt = ip->tcp.snd_una;
		ip->tcp.fin_sent = false;
		tcp_output(ip);
		break;
	default:
		break;
	}
}

int mini_ip_dhcp_start(struct mini_ip *ip)
{
	ip->dhcp = DHCP_SELECTING;
	ip->addr = 0;
	dhcp_send(ip, 1);
	return 0;
}

bool mini_ip_configured(const struct mini_ip *ip)
{
	return ip->dhcp == DHCP_BOUND;
}

int mini_ip_ping(struct mini_ip *ip, uint32_t dst, uint16_t seq)
{
	if (!ip->addr)
		return -ENETDOWN;
	uint8_t f[ETH_HLEN + IP_HLEN + 8 + 32];
	uint8_t *p = f + ETH_HLEN + IP_HLEN;
	p[0] = 8;
	p[1] = 0;
	put16(p + 2, 0);
	put16(p + 4, 0x4856); /* "HV" */
	put16(p + 6, seq);
	for (int i = 0; i < 32; i++)
		p[8 + i] = (uint8_t)i;
	put16(p + 2, fold(sum_bytes(0, p, 40)));
	return ip_output(ip, f, ip->addr, dst, PROTO_ICMP, 40);
}

static void tcp_fresh(struct mini_ip *ip, uint16_t lport)
{
	memset(&ip->tcp, 0, sizeof(ip->tcp));
	ip->tcp.lport = lport;
	ip->tcp.iss = 0x1000u * lport + (uint32_t)ip->now; /* distinct enough per test */
	ip->tcp.snd_wnd = TCP_MSS;
}

int mini_ip_tcp_connect(struct mini_ip *ip, uint32_t dst, uint16_t port, uint16_t lport)
{
	if (!ip->addr)
		return -ENETDOWN;
	tcp_fresh(ip, lport);
	ip->tcp.rip = dst;
	ip->tcp.rport = port;
	ip->tcp.snd_una = ip->tcp.iss;
	ip->tcp.snd_nxt = ip->tcp.iss + 1;
	ip->tcp.sent_at = ip->now;
	ip->tcp.state = MINI_TCP_SYN_SENT;
	tcp_segment(ip, TCP_SYN, ip->tcp.iss, NULL, 0);
	return 0;
}

int mini_ip_tcp_listen(struct mini_ip *ip, uint16_t port)
{
	tcp_fresh(ip, port);
	ip->tcp.state = MINI_TCP_LISTEN;
	return 0;
}

size_t mini_ip_tcp_send(struct mini_ip *ip, const void *data, size_t len)
{
	if (ip->tcp.close_wanted || ip->tcp.state == MINI_TCP_CLOSED)
		return 0;
	size_t room = MINI_TCP_BUF - ip->tcp.tx_len;
	size_t n = len < room ? len : room;
	memcpy(ip->tcp.tx + ip->tcp.tx_len, data, n);
	ip->tcp.tx_len += (uint32_t)n;
	tcp_output(ip);
	return n;
}

size_t mini_ip_tcp_recv(struct mini_ip *ip, void *buf, size_t max)
{
	uint8_t *out = buf;
	size_t n = max < ip->tcp.rx_len ? max : ip->tcp.rx_len;
	bool was_full = tcp_rx_room(ip) < TCP_MSS;
	for (size_t i = 0; i < n; i++)
		out[i] = ip->tcp.rx[(ip->tcp.rx_head + i) % MINI_TCP_BUF];
	ip->tcp.rx_head = (ip->tcp.rx_head + (uint32_t)n) % MINI_TCP_BUF;
	ip->tcp.rx_len -= (uint32_t)n;
	/* Tell a peer we had stopped that there is room again. */
	if (n && was_full && ip->tcp.state == MINI_TCP_ESTABLISHED)
		tcp_segment(ip, TCP_ACK, ip->tcp.snd_nxt, NULL, 0);
	return n;
}

void mini_ip_tcp_close(struct mini_ip *ip)
{
	ip->tcp.close_wanted = true;
	tcp_output(ip);
}

bool mini_ip_tcp_eof(const struct mini_ip *ip)
{
	return (ip->tcp.peer_fin || ip->tcp.reset) && !ip->tcp.rx_len;
}

bool mini_ip_tcp_done(const struct mini_ip *ip)
{
	return ip->tcp.reset || (ip->tcp.fin_acked && ip->tcp.peer_fin);
}
