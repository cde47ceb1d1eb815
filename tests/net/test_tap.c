/* SPDX-License-Identifier: MIT */
/*
 * The TAP backend, inside a network namespace of its own: the mini IP
 * stack (10.9.0.2) sits on the backend, the kernel on the TAP interface
 * (10.9.0.1). The stack pings the kernel, the kernel connects to the
 * stack by TCP, and bytes go both ways. Needs root (a namespace, a TAP
 * device, `ip`); skipped otherwise.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "mini_ip_env.h"

static int tap_send(void *be, const uint8_t *frame, uint32_t len)
{
	return netvsp_tap_send(be, frame, len);
}

static void tap_kick(void *be)
{
	netvsp_tap_kick(be);
}

static void frames_both_ways(void **state)
{
	(void)state;
	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0)
		skip(); /* needs root: a namespace of our own */
	static struct mini_env m; /* large */
	const uint8_t mac[6] = {0x00, 0x15, 0x5d, 0x00, 0x09, 0x02};
	mini_env_init(&m, mac);
	char why[200];
	struct netvsp_tap *tap = netvsp_tap_new("hvtap0", mini_env_rx, NULL, &m, why, sizeof(why));
	if (!tap) {
		print_message("# %s\n", why);
		skip();
	}
	m.send = tap_send;
	m.kick = tap_kick;
	m.be = tap;
	if (system("ip link set lo up && ip link set hvtap0 up && "
		   "ip addr add 10.9.0.1/24 dev hvtap0") != 0) {
		netvsp_tap_free(tap);
		skip(); /* no ip(8) */
	}
	mini_ip_set_addr(&m.ip, mini_ip_addr("10.9.0.2"), 0xffffff00u, 0);
	/* The stack resolves the kernel by ARP and pings it. */
	assert_int_equal(mini_ip_ping(&m.ip, mini_ip_addr("10.9.0.1"), 7), 0);
	for (int i = 0; i < MINI_ENV_ROUNDS && !m.ip.ping_replies; i++)
		mini_env_pump(&m);
	assert_int_equal(m.ip.ping_replies, 1);
	assert_int_equal(m.ip.ping_last_seq, 7);
	/* The kernel resolves the stack by ARP and connects to it. */
	assert_int_equal(mini_ip_tcp_listen(&m.ip, 7000), 0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(7000),
				.sin_addr.s_addr = htonl(mini_ip_addr("10.9.0.2"))};
	int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	assert_true(r == 0 || errno == EINPROGRESS);
	for (int i = 0; i < MINI_ENV_ROUNDS && m.ip.tcp.state != MINI_TCP_ESTABLISHED; i++)
		mini_env_pump(&m);
	assert_int_equal(m.ip.tcp.state, MINI_TCP_ESTABLISHED);
	mini_env_exchange(&m, fd, 100000);
	close(fd);
	struct netvsp_backend_stats st;
	netvsp_tap_get_stats(tap, &st);
	assert_true(st.tx_frames > 10 && st.rx_frames > 10);
	assert_int_equal(m.ip.bad, 0);
	netvsp_tap_free(tap);
	mini_env_fini(&m);
}

/* Without privilege the error says what is missing. */
static void refusal_is_clear(void **state)
{
	(void)state;
	char why[200] = "";
	struct netvsp_tap *tap = netvsp_tap_new("", mini_env_rx, NULL, NULL, why, sizeof(why));
	assert_null(tap);
	assert_non_null(strstr(why, "name"));
	tap = netvsp_tap_new("waytoolongtapname0", mini_env_rx, NULL, NULL, why, sizeof(why));
	assert_null(tap);
	if (geteuid() == 0)
		return;
	tap = netvsp_tap_new("hvtap9", mini_env_rx, NULL, NULL, why, sizeof(why));
	assert_null(tap);
	assert_non_null(strstr(why, "CAP_NET_ADMIN"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refusal_is_clear),
		cmocka_unit_test(frames_both_ways),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
