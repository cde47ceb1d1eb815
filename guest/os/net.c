/* SPDX-License-Identifier: MIT */
/*
 * hvkit-os's NICs: netvsc bound on the VMBus client, each NIC brought up
 * and listed; with "hvkit.net_test" each one sends the netvsc self-test
 * frames and counts what comes back (a loopback backend returns them all).
 *
 * Buffers are smaller than Linux's (recv 10240 x 1728 bytes = 17 MiB,
 * send 192 x 6144 = 1.1 MiB, 128 KiB rings): 128 receive sections
 * (216 KiB), 32 send sections (192 KiB), 32 KiB rings, so a NIC costs
 * well under 1 MiB of the mini guest's RAM and its GPADLs few messages
 * (under PVM every one is dear). Enough for 1500-byte frames in small
 * numbers, which is all this guest sends.
 */
#include <errno.h>
#include <string.h>

#include "hvkit/vmbus_classes.h"
#include "netvsc_selftest.h"
#include "os.h"
#include "os_net.h"

/* Interrupt context writes these; process context reads them. */
struct nic_test {
	uint8_t mac[6];
	bool open;
	uint32_t back, damaged, seen;
};

static struct nic_test tests[NETVSC_MAX_NICS];
static uint8_t frame[NETVSC_SELFTEST_MIN + 1500];

struct netvsc_driver *os_net_register(struct vmbus_client *c, uint32_t vps, int *err)
{
	/* One channel per VP, as Linux (netvsc_drv.c caps at the online CPUs). */
	const struct netvsc_config nc = {.recv_sections = 128, .send_sections = 32,
					 .ring_bytes = 32 * 1024,
					 .max_channels = vps < NETVSC_MAX_CHANNELS ? vps
										   : NETVSC_MAX_CHANNELS};
	return netvsc_driver_new(c, &nc, err);
}

static void count_nics(void *arg, const struct vmbus_client_channel_info *ci)
{
	static const struct hv_guid nic = VMBUS_CLASS_NIC;
	if (!memcmp(&ci->class_id, &nic, sizeof(nic)) && ci->sub_channel_index == 0 &&
	    ci->state != VMBUS_CLIENT_RESCINDED)
		(*(uint32_t *)arg)++;
}

void os_net_settle(struct vmbus_client *c, struct netvsc_driver *d, uint64_t ms)
{
	uint64_t end = monotonic_ns() + ms * 1000000;
	for (;;) {
		uint32_t offered = 0;
		vmbus_client_for_each_channel(c, count_nics, &offered);
		if (netvsc_count(d) >= offered || monotonic_ns() >= end)
			return;
		vmbus_client_wait_work(c, 10000000);
		vmbus_client_process(c);
	}
}

static void on_frame(void *ctx, const void *f, size_t len)
{
	struct nic_test *t = ctx;
	uint32_t seq;
	int r = netvsc_selftest_check(t->mac, f, len, &seq);
	/* Channels interrupt on different VPs: each frame is counted once. */
	if (r > 0 && seq < NETVSC_SELFTEST_FRAMES &&
	    !(__atomic_fetch_or(&t->seen, 1u << seq, __ATOMIC_RELAXED) & (1u << seq))) {
		__atomic_add_fetch(&t->back, 1, __ATOMIC_RELEASE);
	} else if (r != 0) {
		__atomic_add_fetch(&t->damaged, 1, __ATOMIC_RELEASE);
	}
}

static void on_link(void *ctx, bool up)
{
	(void)ctx;
	kprintf("hvkit-os: nic link %s\n", up ? "up" : "down");
}

/* Sends the self-test frames; waits up to 2 s for them. 0 if all came
 * back intact. */
static int selftest(struct vmbus_client *c, uint32_t i, struct netvsc *n)
{
	struct nic_test *t = &tests[i];
	uint32_t mtu = netvsc_mtu(n) < 1500 ? netvsc_mtu(n) : 1500;
	uint32_t sent = 0;
	/* A second run counts afresh (the frames of the first are back). */
	__atomic_store_n(&t->seen, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->back, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->damaged, 0, __ATOMIC_RELEASE);
	int err = 0;
	for (uint32_t seq = 0; seq < NETVSC_SELFTEST_FRAMES && !err; seq++) {
		uint32_t len = netvsc_selftest_len(seq, mtu);
		netvsc_selftest_frame(t->mac, seq, len, frame);
		for (int tries = 0; (err = netvsc_send(n, frame, len)) == -EAGAIN && tries < 100;
		     tries++)
			vmbus_client_wait_work(c, 1000000);
		sent += !err;
	}
	uint64_t end = monotonic_ns() + 2000000000ull;
	while (__atomic_load_n(&t->back, __ATOMIC_ACQUIRE) +
			       __atomic_load_n(&t->damaged, __ATOMIC_ACQUIRE) < sent &&
	       monotonic_ns() < end)
		vmbus_client_wait_work(c, 10000000);
	uint32_t back = __atomic_load_n(&t->back, __ATOMIC_ACQUIRE);
	uint32_t damaged = __atomic_load_n(&t->damaged, __ATOMIC_ACQUIRE);
	kprintf("hvkit-os: nic %u: %u frames sent, %u came back intact, %u damaged%s\n", i, sent,
		back, damaged, err ? " (send failed)" : "");
	return back == NETVSC_SELFTEST_FRAMES && !damaged ? 0 : -EIO;
}

int os_net_report(struct vmbus_client *c, struct netvsc_driver *d, bool test)
{
	int failures = 0;
	for (uint32_t i = 0; i < netvsc_count(d) && i < NETVSC_MAX_NICS; i++) {
		struct netvsc *n = netvsc_nic(d, i);
		struct nic_test *t = &tests[i];
		netvsc_get_mac(n, t->mac);
		const struct netvsc_ops ops = {.rx = on_frame, .link = on_link, .ctx = t};
		int err = netvsc_open(n, &ops);
		struct netvsc_stats st;
		netvsc_get_stats(n, &st);
		const uint8_t *m = t->mac;
		kprintf("hvkit-os: nic %u: MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u, link %s, "
			"%u channel(s)\n",
			i, m[0], m[1], m[2], m[3], m[4], m[5], netvsc_mtu(n),
			netvsc_link_up(n) ? "up" : "down", st.channels);
		t->open = !err;
		if (err)
			kprintf("hvkit-os: nic %u: open failed: %d\n", i, err);
		else if (test)
			err = selftest(c, i, n);
		failures += err != 0;
	}
	return failures;
}

int os_net_retest(struct vmbus_client *c, struct netvsc_driver *d)
{
	int failures = 0;
	for (uint32_t i = 0; i < netvsc_count(d) && i < NETVSC_MAX_NICS; i++)
		if (tests[i].open)
			failures += selftest(c, i, netvsc_nic(d, i)) != 0;
	return failures;
}
