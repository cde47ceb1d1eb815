/* SPDX-License-Identifier: MIT */
/*
 * hvkit-bench kvm: the KVM partition's exit paths on a real vCPU, timed.
 *   - synthetic MSR read (RDMSR exit to user space, host/hv, back)
 *   - hypercall through the trampoline (fast HvSignalEvent: OUT exit,
 *     completion, KVM_GET_REGS, host/hv, KVM_SET_REGS)
 *     both timed by the guest with RDTSC over 2000 rounds;
 *   - MSI injected from the host -> guest interrupt handler -> port exit
 *     back to the host, timed by the host per round.
 * The guest is tests/kvm/guest in KT_MODE_BENCH. Figures only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench.h"
#include "kvm.h"
#include "kvm_boot.h"
#include "kvm_test.h"
#include "partition_common.h"

#define GUEST_ROUNDS 2000 /* BENCH_ROUNDS in the guest */
#define WAIT_MS 30000
/* Cycle counts from the guest, each as two 32-bit halves: synthetic MSR,
 * hypercall, in-kernel MSR, empty loop. */
#define BENCH_FIGURES 4
#define BENCH_VALUES (2 * BENCH_FIGURES)

struct bench_kvm {
	uint32_t values[BENCH_VALUES];
	uint32_t value_count;
	int ready_fd, ping_fd;
	uint64_t ping_ns;
	uint64_t events;
};

static uint16_t on_event(void *ctx, uint32_t vp, uint16_t flag)
{
	struct bench_kvm *b = ctx;
	(void)vp;
	(void)flag;
	b->events++;
	return HV_STATUS_SUCCESS;
}

static void on_pio(void *ctx, struct kvm_partition *kp, uint32_t vp, uint16_t port,
		   uint8_t size, bool out, uint32_t *value)
{
	struct bench_kvm *b = ctx;
	(void)kp, (void)vp, (void)size;
	if (!out)
		return;
	if (port == KT_PORT_PING) {
		__atomic_store_n(&b->ping_ns, bench_now_ns(), __ATOMIC_RELEASE);
		eventfd_write(b->ping_fd, 1);
	} else if (port == KT_PORT_VALUE && b->value_count < BENCH_VALUES) {
		b->values[b->value_count++] = *value;
	} else if (port == KT_PORT_REQUEST && *value == KT_REQ_BENCH_READY) {
		eventfd_write(b->ready_fd, 1);
	}
}

static int wait_fd(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t count;
	if (poll(&p, 1, WAIT_MS) != 1)
		return -ETIMEDOUT;
	return eventfd_read(fd, &count) < 0 ? -errno : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int run(struct kvm_partition *kp, struct bench_kvm *b, const char *guest,
	       uint32_t samples, uint64_t *lat)
{
	kvm_partition_lock(kp);
	int err = hv_connection_add_event(kvm_partition_hv(kp), KT_EVENT_CONNECTION, on_event, b);
	kvm_partition_unlock(kp);
	if (!err)
		err = kt_boot_long_mode(kp, guest, KT_LOAD_GPA, KT_STACK_TOP, KT_MODE_BENCH);
	if (!err)
		err = kvm_partition_launch(kp);
	if (!err)
		err = wait_fd(b->ready_fd);
	for (uint32_t i = 0; i < samples && !err; i++) {
		uint64_t t0 = bench_now_ns();
		err = kvm_partition_interrupt(kp, 0, KT_PING_VECTOR);
		if (!err)
			err = wait_fd(b->ping_fd);
		lat[i] = __atomic_load_n(&b->ping_ns, __ATOMIC_ACQUIRE) - t0;
	}
	if (!err)
		err = kvm_partition_interrupt(kp, 0, KT_STOP_VECTOR);
	int status;
	if (!err)
		err = kvm_partition_wait(kp, WAIT_MS, &status);
	return err;
}

int bench_kvm_main(int argc, char **argv)
{
	char guest[PATH_MAX];
	unsigned long count = 1000;
	int status_or_go = bench_guest_options(argc, argv, "kvm", "kvm/guest/kvm-test-guest.bin",
					       &count, guest, sizeof(guest));
	if (status_or_go >= 0)
		return status_or_go;
	uint32_t samples = count > 1000000 ? 1000000 : (uint32_t)count;

	struct bench_kvm b = {.ready_fd = eventfd(0, EFD_CLOEXEC),
			      .ping_fd = eventfd(0, EFD_CLOEXEC)};
	struct kvm_partition_config cfg = {
		.vp_count = 1,
		.memory_size = KT_MEMORY_SIZE,
		.debug_exit = true,
		.pio = on_pio,
		.pio_ctx = &b,
	};
	uint64_t *lat = calloc(samples, sizeof(*lat));
	struct kvm_partition *kp;
	uint64_t tsc_hz = partition_calibrate_tsc();
	int err = lat && b.ready_fd >= 0 && b.ping_fd >= 0 ? kvm_partition_new(&cfg, &kp) : -ENOMEM;
	if (err == KVM_PARTITION_UNAVAILABLE) {
		printf("kvm: skipped (no usable /dev/kvm)\n");
		err = 0;
		goto out;
	}
	if (err) {
		fprintf(stderr, "hvkit-bench kvm: %s\n", strerror(-err));
		goto out;
	}
	err = run(kp, &b, guest, samples, lat);
	kvm_partition_stop(kp);
	if (err || b.value_count < BENCH_VALUES) {
		fprintf(stderr, "hvkit-bench kvm: the guest run failed: %s\n",
			strerror(err ? -err : EPROTO));
		err = err ? err : -EPROTO;
		goto out;
	}
	uint64_t cycles[BENCH_FIGURES];
	for (int i = 0; i < BENCH_FIGURES; i++)
		cycles[i] = ((uint64_t)b.values[2 * i + 1] << 32 | b.values[2 * i]) / GUEST_ROUNDS;
	qsort(lat, samples, sizeof(*lat), cmp_u64);
	static const char *const names[BENCH_FIGURES] = {
		"synthetic MSR read (user-space exit)",
		"hypercall via trampoline (fast call)",
		"in-kernel MSR read (baseline)",
		"empty guest loop round (baseline)",
	};
	printf("KVM partition exit paths (guest at CPL0, TSC %.3f GHz), guest-timed, mean of %d\n",
	       tsc_hz / 1e9, GUEST_ROUNDS);
	for (int i = 0; i < BENCH_FIGURES; i++)
		printf("  %-38s %8.2f us  (%llu cycles)\n", names[i], cycles[i] * 1e6 / tsc_hz,
		       (unsigned long long)cycles[i]);
	printf("host-timed:\n  MSI -> guest handler -> port exit %8.2f us median, %.2f us p99, "
	       "%.2f us min (%u samples)\n",
	       lat[samples / 2] / 1e3, lat[samples * 99 / 100] / 1e3, lat[0] / 1e3, samples);
	printf("  events signalled: %llu\n", (unsigned long long)b.events);
out:
	free(lat);
	if (b.ready_fd >= 0)
		close(b.ready_fd);
	if (b.ping_fd >= 0)
		close(b.ping_fd);
	return err ? 1 : 0;
}
