/* SPDX-License-Identifier: MIT */
/*
 * storvsc end to end: storvsp with image files on the host, storvsc in a
 * process-partition guest (hvkit-test-storvsc-guest). The guest checks its
 * data against a model and exits 0 if all held; the host side changes the
 * controller under it (removal, hot plug) and checks images afterwards.
 *
 *   test-storvsc-e2e GUEST
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "machine.h"
#include "evil_storvsp.h"
#include "storvsp.h"

static const char *guest_path;

/* An image of size bytes in /dev/shm (or /tmp); path in out. */
static void make_image(char *out, size_t len, uint64_t size)
{
	snprintf(out, len, "%s/hvkit-storvsc-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	int fd = mkstemp(out);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static struct machine *start(uint32_t cpus, const struct machine_disk *disks, uint32_t ndisks,
			     const char *a1, const char *a2, const char *a3)
{
	char *argv[5] = {(char *)guest_path, (char *)a1, (char *)a2, (char *)a3, NULL};
	/* HVKIT_TEST_DISK_AIO picks the disks' back end (the default:
	 * io_uring); meson runs the suite with each. */
	struct machine_disk d[MACHINE_MAX_DISKS];
	assert_true(ndisks <= MACHINE_MAX_DISKS);
	for (uint32_t i = 0; i < ndisks; i++) {
		d[i] = disks[i];
		d[i].aio = getenv("HVKIT_TEST_DISK_AIO");
	}
	struct machine_config cfg = {
		.cpus = cpus,
		.memory = 64 << 20,
		.guest_path = guest_path,
		.guest_argv = argv,
		.disks = ndisks ? d : NULL,
		.disk_count = ndisks,
	};
	struct machine *m = NULL;
	assert_int_equal(machine_start(&cfg, &m, NULL, 0), 0);
	return m;
}

static void expect_guest_success(struct machine *m)
{
	int status = -1;
	assert_int_equal(machine_wait(m, 120000, &status), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(machine_failed(m, NULL, 0));
}

static void random_io_matches_the_model_on_every_channel(void **state)
{
	(void)state;
	char img[64];
	make_image(img, sizeof(img), 8 << 20);
	struct machine_disk d = {.path = img};
	struct machine *m = start(3, &d, 1, "integrity", "3000", "12345");
	expect_guest_success(m);
	struct storvsp_stats st;
	storvsp_get_stats(machine_storage(m), &st);
	assert_true(st.requests >= 3000);
	assert_int_equal(st.bad_packets, 0);
	assert_true(st.subchannels >= 2);
	machine_stop(m);
	unlink(img);
}

/* The guest's bus suspend and resume with storvsc (hibernation.rst,
 * without a memory image): the controller keeps its disk and data, opens
 * its primary again and gets new sub-channels (the old ones went with the
 * primary's close), and every channel carries I/O after it. */
static void hibernation_keeps_the_controller(void **state)
{
	(void)state;
	char img[64];
	make_image(img, sizeof(img), 8 << 20);
	struct machine_disk d = {.path = img};
	struct machine *m = start(3, &d, 1, "hibernate", NULL, NULL);
	expect_guest_success(m);
	struct storvsp_stats st;
	storvsp_get_stats(machine_storage(m), &st);
	assert_true(st.subchannels >= 4); /* 2 before, 2 after */
	assert_int_equal(st.bad_packets, 0);
	machine_stop(m);
	unlink(img);
}

/* Each VSTOR version the guest may cap at, WIN6 and WIN7 with their
 * 48-byte packets and 0x12-byte sense. */
static void every_protocol_version_moves_data(void **state)
{
	(void)state;
	static const char *versions[] = {"0x602", "0x600", "0x501", "0x402", "0x200"};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		char img[64];
		make_image(img, sizeof(img), 2 << 20);
		struct machine_disk d = {.path = img};
		char *argv[6] = {(char *)guest_path, "integrity", "300", "7", (char *)versions[i],
				 NULL};
		struct machine_config cfg = {.cpus = 2, .memory = 64 << 20,
					     .guest_path = guest_path, .guest_argv = argv,
					     .disks = &d, .disk_count = 1};
		struct machine *m = NULL;
		assert_int_equal(machine_start(&cfg, &m, NULL, 0), 0);
		expect_guest_success(m);
		struct storvsp_stats st;
		storvsp_get_stats(machine_storage(m), &st);
		assert_int_equal(st.version, (uint16_t)strtoul(versions[i], NULL, 0));
		assert_int_equal(st.bad_packets, 0);
		machine_stop(m);
		unlink(img);
	}
}

static void a_malicious_host_fails_only_its_requests(void **state)
{
	(void)state;
	struct machine *m = start(1, NULL, 0, "evil", NULL, NULL);
	struct evil_storvsp *e;
	assert_int_equal(evil_storvsp_add(machine_vmbus(m), &e), 0);
	expect_guest_success(m);
	evil_storvsp_remove(machine_vmbus(m), e);
	machine_stop(m);
}

static void sense_is_decoded_and_the_disk_stays_usable(void **state)
{
	(void)state;
	char a[64], b[64];
	make_image(a, sizeof(a), 1 << 20);
	make_image(b, sizeof(b), 1 << 20);
	struct machine_disk d[2] = {{.path = a}, {.path = b, .read_only = true}};
	struct machine *m = start(1, d, 2, "errors", NULL, NULL);
	expect_guest_success(m);
	struct storvsp_stats st;
	storvsp_get_stats(machine_storage(m), &st);
	assert_int_equal(st.check_conditions, 2);
	machine_stop(m);
	unlink(a);
	unlink(b);
}

static void removal_in_flight_loses_no_request(void **state)
{
	(void)state;
	char img[64];
	make_image(img, sizeof(img), 4 << 20);
	struct machine_disk d = {.path = img};
	struct machine *m = start(2, &d, 1, "stream", NULL, NULL);
	/* Let the stream run, then pull the controller under it. */
	struct storvsp_stats st = {0};
	for (int i = 0; i < 2000 && st.requests < 2000; i++) {
		storvsp_get_stats(machine_storage(m), &st);
		nanosleep(&(struct timespec){0, 5000000}, NULL);
	}
	assert_true(st.requests >= 2000);
	assert_int_equal(machine_remove_storage(m), 0);
	expect_guest_success(m);
	machine_stop(m);
	unlink(img);
}

static void hot_added_disk_is_found_used_and_removed(void **state)
{
	(void)state;
	char a[64], b[64];
	make_image(a, sizeof(a), 1 << 20);
	make_image(b, sizeof(b), 1 << 20);
	struct machine_disk d0 = {.path = a}, d1 = {.path = b};
	struct machine *m = start(1, &d0, 1, "hotplug", NULL, NULL);
	/* The guest is up once the controller is initialized. */
	struct storvsp_stats st = {0};
	for (int i = 0; i < 2000 && st.requests < 3; i++) {
		storvsp_get_stats(machine_storage(m), &st);
		nanosleep(&(struct timespec){0, 5000000}, NULL);
	}
	assert_int_equal(machine_add_disk(m, 1, &d1), 0);
	/* The guest writes LBA 1 of the new disk, reads it back, then marks
	 * LBA 2 as done; then the disk goes. */
	int fd = open(b, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t blk[512] = {0};
	for (int i = 0; i < 2000 && blk[511] != 0x44; i++) {
		assert_int_equal(pread(fd, blk, sizeof(blk), 1024), 512);
		nanosleep(&(struct timespec){0, 5000000}, NULL);
	}
	assert_int_equal(blk[511], 0x44);
	assert_int_equal(pread(fd, blk, sizeof(blk), 512), 512);
	assert_int_equal(blk[511], 0x33);
	close(fd);
	assert_int_equal(machine_remove_disk(m, 1), 0);
	expect_guest_success(m);
	machine_stop(m);
	unlink(a);
	unlink(b);
}

/* The host dies (SIGKILL) right after the guest's flush was acknowledged:
 * the image has the data. The host runs in a child so it can be killed. */
static void flushed_data_survives_a_killed_host(void **state)
{
	(void)state;
	char img[64];
	make_image(img, sizeof(img), 1 << 20);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t host = fork();
	assert_true(host >= 0);
	if (host == 0) {
		close(pfd[0]);
		dup2(pfd[1], STDOUT_FILENO); /* the guest says "durable" here */
		struct machine_disk d = {.path = img};
		char *argv[4] = {(char *)guest_path, "durable", "100", NULL};
		struct machine_config cfg = {.cpus = 1, .memory = 32 << 20,
					     .guest_path = guest_path, .guest_argv = argv,
					     .disks = &d, .disk_count = 1};
		struct machine *m;
		if (machine_start(&cfg, &m, NULL, 0))
			_exit(1);
		int status;
		machine_wait(m, 60000, &status);
		_exit(0);
	}
	close(pfd[1]);
	char line[64] = {0};
	FILE *f = fdopen(pfd[0], "r");
	bool got = fgets(line, sizeof(line), f) != NULL;
	kill(host, SIGKILL);
	waitpid(host, NULL, 0);
	fclose(f);
	assert_true(got);
	assert_string_equal(line, "durable\n");
	int fd = open(img, O_RDONLY);
	assert_true(fd >= 0);
	uint8_t buf[2048];
	assert_int_equal(pread(fd, buf, sizeof(buf), 100 * 512), (ssize_t)sizeof(buf));
	close(fd);
	for (uint32_t k = 0; k < sizeof(buf); k++)
		assert_int_equal(buf[k], (uint8_t)(k * 7 + 1));
	unlink(img);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s GUEST\n", argv[0]);
		return 2;
	}
	guest_path = argv[1];
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_io_matches_the_model_on_every_channel),
		cmocka_unit_test(hibernation_keeps_the_controller),
		cmocka_unit_test(every_protocol_version_moves_data),
		cmocka_unit_test(sense_is_decoded_and_the_disk_stays_usable),
		cmocka_unit_test(a_malicious_host_fails_only_its_requests),
		cmocka_unit_test(removal_in_flight_loses_no_request),
		cmocka_unit_test(hot_added_disk_is_found_used_and_removed),
		cmocka_unit_test(flushed_data_survives_a_killed_host),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
