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
#include <string.h>

#include <cmocka.h>

#include "kvm_platform.h"

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

/* Boots hvkit-os on cpus VPs; returns its exit status, console in c. */
static int boot(uint32_t cpus, const char *cmdline, bool debug_exit, struct console *c)
{
	pthread_mutex_init(&c->lock, NULL);
	struct kvm_platform_config pc = {.cpus = cpus, .kernel = os_path, .cmdline = cmdline,
					 .console = capture, .console_ctx = c};
	struct kvm_platform *p;
	assert_int_equal(kvm_platform_new(&pc, &p), 0);
	struct kvm_partition_config kc = {.vp_count = cpus, .memory_size = 64u << 20,
					  .debug_exit = debug_exit, .pio = kvm_platform_pio,
					  .pio_ctx = p};
	struct kvm_partition *kp;
	int err = kvm_partition_new(&kc, &kp);
	if (err == KVM_PARTITION_UNAVAILABLE) {
		kvm_platform_free(p);
		skip();
	}
	assert_int_equal(err, 0);
	char why[256];
	if (kvm_platform_boot(p, kp, why, sizeof(why)))
		fail_msg("boot: %s", why);
	assert_string_equal(kvm_platform_kernel_format(p), "PVH ELF");
	assert_int_equal(kvm_partition_launch(kp), 0);
	int status = -1;
	err = kvm_partition_wait(kp, 300000, &status);
	struct kvm_partition_stats st;
	kvm_partition_get_stats(kp, &st);
	kvm_partition_stop(kp);
	kvm_platform_free(p);
	if (err || st.failed)
		fail_msg("no end (%d%s%s); console:\n%s", err, st.failed ? ", failed: " : "",
			 st.failed ? st.failure : "", c->text);
	return status;
}

static void expect(const struct console *c, const char *line)
{
	if (!strstr(c->text, line))
		fail_msg("\"%s\" missing from the console:\n%s", line, c->text);
}

static void boots_with_every_enlightenment_on_two_vps(void **state)
{
	(void)state;
	static struct console c;
	int status = boot(2, "hvkit.debug_exit hvkit.expect_hv", true, &c);
	expect(&c, "Hyper-V detected");
	expect(&c, "hypercall page on, SynIC on VP 0, clocksource TSC page, stimer direct mode");
	expect(&c, "2 of 2 VPs online");
	expect(&c, "power off, status 0");
	assert_int_equal(status, 1); /* (0 << 1) | 1 from isa-debug-exit */
}

static void powers_off_through_s5(void **state)
{
	(void)state;
	static struct console c;
	int status = boot(1, "", false, &c);
	expect(&c, "1 of 1 VPs online");
	assert_int_equal(status, KVM_PLATFORM_EXIT_POWER_OFF);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: test-kvm-os HVKIT-OS\n");
		return 2;
	}
	os_path = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(boots_with_every_enlightenment_on_two_vps),
		cmocka_unit_test(powers_off_through_s5),
	};
	return cmocka_run_group_tests_name("hvkit-os on KVM", tests, NULL, NULL);
}
