/* SPDX-License-Identifier: MIT */
/*
 * hvkit-os on the KVM partition with the platform around it (devices,
 * ACPI, PVH loader): it must find every enlightenment, bring all its VPs
 * up and report its status through isa-debug-exit; and power off through
 * S5 when not asked for the debug port. Skipped without a usable /dev/kvm.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvm_platform.h"
#include "machine.h"

static const char *os_path;

struct console {
	pthread_mutex_t lock;
	char text[16384];
	size_t len;
};

static void capture(void *ctx, const uint8_t *bytes, size_t len)
{
	struct console *c = ctx;
	pthread_mutex_lock(&c->lock);
	size_t room = sizeof(c->text) - 1 - c->len;
	len = len < room ? len : room;
	memcpy(c->text + c->len, bytes, len);
	c->len += len;
	c->text[c->len] = '\0';
	pthread_mutex_unlock(&c->lock);
}

static void shutdown_answered(void *arg, int err, uint32_t status)
{
	*(int *)arg = err ? err : (int)status;
}

/* hvkit's own log lines (the milestones) go to the same capture. */
__attribute__((format(printf, 2, 0))) static void capture_log(void *ctx, const char *fmt,
							      va_list ap)
{
	char line[256];
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) - 2 ? (size_t)n : sizeof(line) - 2;
	line[len++] = '\n';
	capture(ctx, (const uint8_t *)line, len);
}

/* Sends a shutdown request once the guest answers heartbeats. */
static void shut_down_when_alive(struct machine *m)
{
	struct ic_host *h = machine_ic(m);
	for (int i = 0; i < 3000; i++) {
		ic_host_lock(h);
		enum ic_heartbeat_state hb = ic_heartbeat_state(h);
		ic_host_unlock(h);
		if (hb == IC_HEARTBEAT_ALIVE)
			break;
		usleep(10000);
	}
	ic_host_lock(h);
	static int answer;
	int err = ic_shutdown_request(h, IC_SHUTDOWN_POWEROFF, false, 0, 0, "test over", 0,
				      shutdown_answered, &answer);
	ic_host_unlock(h);
	assert_int_equal(err, 0);
}

/* Boots hvkit-os on a KVM machine (VMBus server, one echo device, the
 * integration components); returns its exit status, console in c. With
 * shut_down, the host asks the guest to power off over VMBus. */
static const struct machine_disk *boot_disk; /* the next boot's disk, if any */
static const struct netvsp_nic_opts *boot_nic; /* the next boot's NIC, if any */

static int boot(uint32_t cpus, const char *cmdline, bool debug_exit, bool shut_down,
		struct console *c)
{
	pthread_mutex_init(&c->lock, NULL);
	struct machine_config cfg = {
		.partition = MACHINE_KVM,
		.cpus = cpus,
		.memory = 64u << 20,
		.kvm = {.device = getenv("HVKIT_KVM_DEVICE"), .kernel = os_path,
			.cmdline = cmdline, .debug_exit = debug_exit, .console = capture,
			.console_ctx = c},
		.echo_devices = 1,
		.disks = boot_disk,
		.disk_count = boot_disk ? 1 : 0,
		.nics = boot_nic,
		.nic_count = boot_nic ? 1 : 0,
		.ic = true,
		.log = capture_log,
		.log_ctx = c,
	};
	struct machine *m;
	char why[256];
	int err = machine_start(&cfg, &m, why, sizeof(why));
	if (err == KVM_PARTITION_UNAVAILABLE)
		skip();
	if (err)
		fail_msg("start: %s (%d)", why, err);
	if (shut_down)
		shut_down_when_alive(m);
	int status = -1;
	err = machine_wait(m, 300000, &status);
	bool failed = machine_failed(m, why, sizeof(why));
	machine_stop(m);
	if (err || failed)
		fail_msg("no end (%d%s%s); console:\n%s", err, failed ? ", failed: " : "",
			 failed ? why : "", c->text);
	return status;
}

static void expect(const struct console *c, const char *line)
{
	if (strstr(c->text, line))
		return;
	/* On stderr in full: cmocka cuts long messages. */
	fprintf(stderr, "console:\n%s\n", c->text);
	fail_msg("\"%s\" missing from the console", line);
}

static void boots_with_every_enlightenment_on_two_vps(void **state)
{
	(void)state;
	static struct console c;
	int status = boot(2, "hvkit.debug_exit hvkit.expect_hv", true, false, &c);
	expect(&c, "Hyper-V detected");
	expect(&c, "hypercall page on, SynIC on VP 0, clocksource TSC page, stimer direct mode");
	expect(&c, "2 of 2 VPs online");
	expect(&c, "VMBus 5.3, 7 offers"); /* the echo device and six ICs */
	expect(&c, "echo       relid");
	expect(&c, "heartbeat  relid");
	expect(&c, "ic heartbeat framework 3.0, version 3.0");
	/* the host saw it happen */
	expect(&c, "hv: guest OS id 0x");
	expect(&c, "hv: hypercall page enabled at GPA");
	expect(&c, "hv: TSC page enabled at GPA");
	expect(&c, "hv: SynIC enabled on VP 0");
	expect(&c, "hv: SynIC enabled on VP 1");
	expect(&c, "vmbus: the guest connected at version 5.3");
	expect(&c, "(heartbeat) opened, interrupts on VP 0");
	expect(&c, "ic timesync  framework 3.0, version 4.0");
	expect(&c, "ic kvp       framework 3.0, version 4.0");
	expect(&c, "power off, status 0");
	assert_int_equal(status, 1); /* (0 << 1) | 1 from isa-debug-exit */
}

static void powers_off_through_s5(void **state)
{
	(void)state;
	static struct console c;
	int status = boot(1, "", false, false, &c);
	expect(&c, "1 of 1 VPs online");
	expect(&c, "VMBus 5.3, 7 offers");
	assert_int_equal(status, KVM_PLATFORM_EXIT_POWER_OFF);
}

/* hvkit.serve: the guest runs until the host's shutdown request over
 * VMBus, which it obeys through ACPI S5. */
static void host_sent_shutdown_powers_off(void **state)
{
	(void)state;
	static struct console c;
	int status = boot(2, "hvkit.serve", false, true, &c);
	expect(&c, "the host asks to power off (\"test over\")");
	expect(&c, "power off, status 0");
	assert_int_equal(status, KVM_PLATFORM_EXIT_POWER_OFF);
}

/* storvsc in hvkit-os: the disk is found, 8 blocks written, flushed, read
 * back; the image has them. */
static void writes_and_verifies_a_disk(void **state)
{
	(void)state;
	static struct console c;
	char img[] = "/tmp/hvkit-kvm-disk-XXXXXX";
	int fd = mkstemp(img);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	struct machine_disk d = {.path = img};
	boot_disk = &d;
	int status = boot(1, "hvkit.disk_test", false, false, &c);
	boot_disk = NULL;
	uint8_t buf[8 * 512];
	bool read = pread(fd, buf, sizeof(buf), 8 * 512) == (ssize_t)sizeof(buf);
	close(fd);
	unlink(img);
	expect(&c, "disk lun 0: 2048 blocks of 512");
	expect(&c, "disk lun 0 verified");
	assert_true(read);
	for (uint32_t k = 0; k < sizeof(buf); k++)
		assert_int_equal(buf[k], (uint8_t)(k / 512 * 31 + k));
	assert_int_equal(status, KVM_PLATFORM_EXIT_POWER_OFF);
}

/* netvsc in hvkit-os (--net loopback): the NIC comes up with the MAC the
 * host gave it, and the self-test frames come back intact. */
static void sends_frames_through_a_loopback_nic(void **state)
{
	(void)state;
	static struct console c;
	const struct netvsp_nic_opts nic = {.backend = NETVSP_BACKEND_LOOPBACK,
					    .has_mac = true,
					    .mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
	boot_nic = &nic;
	int status = boot(1, "hvkit.net_test", false, false, &c);
	boot_nic = NULL;
	expect(&c, "nic        relid   5 sub 0 vp 0 netvsc");
	/* One VP: one channel, whatever the host's queues (as Linux). */
	expect(&c, "nic 0: MAC 52:54:00:12:34:56, MTU 1500, link up, 1 channel(s)");
	expect(&c, "nic 0: 8 frames sent, 8 came back intact, 0 damaged");
	assert_int_equal(status, KVM_PLATFORM_EXIT_POWER_OFF);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test-kvm-os HVKIT-OS\n");
		return 2;
	}
	os_path = argv[1];
	/* Without a usable /dev/kvm the whole program is skipped, in TAP's
	 * words (cmocka's own skip() prints "not ok ... # SKIP"). */
	if (kvm_partition_probe(getenv("HVKIT_KVM_DEVICE"))) {
		printf("1..0 # SKIP no usable /dev/kvm\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(boots_with_every_enlightenment_on_two_vps),
		cmocka_unit_test(powers_off_through_s5),
		cmocka_unit_test(host_sent_shutdown_powers_off),
		cmocka_unit_test(writes_and_verifies_a_disk),
		cmocka_unit_test(sends_frames_through_a_loopback_nic),
	};
	return cmocka_run_group_tests_name("hvkit-os on KVM", tests, NULL, NULL);
}
