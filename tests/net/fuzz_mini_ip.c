/* SPDX-License-Identifier: MIT */
/*
 * The mini IP stack on arbitrary frames. The first byte picks the state it
 * starts in (DHCP under way, TCP listening, connecting or connected); the
 * rest is frames, each a 16-bit big-endian length then its bytes.
 * Checksums are not checked so that the fuzzer gets past them. Whatever
 * comes in, nothing is read outside it and every frame out is well sized.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mini_ip.h"

static int on_send(void *ctx, const void *frame, size_t len)
{
	(void)ctx;
	if (len < 14 || len > MINI_IP_FRAME_MAX)
		abort();
	volatile uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + ((const uint8_t *)frame)[i]);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mini_ip ip; /* large: not on the stack */
	if (size < 1)
		return 0;
	const uint8_t mac[6] = {0x00, 0x15, 0x5d, 0, 0, 1};
	struct mini_ip_link link = {.send = on_send};
	mini_ip_init(&ip, &link, mac);
	ip.check_sums = false;
	uint8_t mode = data[0];
	if (mode & 1) {
		mini_ip_dhcp_start(&ip);
	} else {
		mini_ip_set_addr(&ip, 0x0a00020f, 0xffffff00, 0x0a000202);
		switch ((mode >> 1) & 3) {
		case 0:
			mini_ip_tcp_listen(&ip, 7000);
			break;
		case 1:
			mini_ip_tcp_connect(&ip, 0x0a000202, 80, 40000);
			break;
		default:
			mini_ip_tcp_listen(&ip, 7000);
			mini_ip_ping(&ip, 0x0a000202, 1);
			break;
		}
	}
	size_t at = 1;
	uint64_t now = 0;
	while (at + 2 <= size) {
		size_t len = (size_t)data[at] << 8 | data[at + 1];
		at += 2;
		if (len > size - at)
			len = size - at;
		mini_ip_input(&ip, data + at, len);
		at += len;
		uint8_t buf[512];
		mini_ip_tcp_recv(&ip, buf, sizeof(buf));
		if (mode & 0x10)
			mini_ip_tcp_send(&ip, buf, sizeof(buf));
		now += 300;
		mini_ip_poll(&ip, now);
	}
	if (mode & 0x20)
		mini_ip_tcp_close(&ip);
	return 0;
}
