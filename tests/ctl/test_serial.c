/* SPDX-License-Identifier: MIT */
/*
 * hvkit run --serial unix:PATH and pty (cmd/hvkit/serial.c) against a fake
 * UART: what is at the path beforehand is left alone unless it is a stale
 * socket, a guest that never reads COM1 stalls neither a client's hang-up
 * nor the next client, and a pseudo-terminal passes bytes raw both ways.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../cmd/hvkit/serial.h"

/* Bounds the waits for what the serial thread does on its own; a hang
 * fails the test instead of stalling it. Not a speed assertion. */
#define WAIT_MS 10000

struct uart {
	pthread_mutex_t lock;
	bool taking;       /* false: a guest that never reads COM1 */
	uint8_t got[8192];
	size_t got_len;
};

static size_t uart_input(void *ctx, const uint8_t *bytes, size_t len)
{
	struct uart *u = ctx;
	pthread_mutex_lock(&u->lock);
	size_t took = 0;
	if (u->taking) {
		took = len < 16 ? len : 16; /* a FIFO's worth at a time */
		if (took > sizeof(u->got) - u->got_len)
			took = sizeof(u->got) - u->got_len;
		memcpy(u->got + u->got_len, bytes, took);
		u->got_len += took;
	}
	pthread_mutex_unlock(&u->lock);
	return took;
}

struct env {
	char dir[64];
	char path[96];
	struct uart uart;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/hvkit-serial-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	snprintf(e->path, sizeof(e->path), "%s/com1", e->dir);
	pthread_mutex_init(&e->uart.lock, NULL);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	unlink(e->path);
	rmdir(e->dir);
	pthread_mutex_destroy(&e->uart.lock);
	free(e);
	return 0;
}

static struct sockaddr_un addr_of(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	return a;
}

static int listen_at(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un a = addr_of(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	return fd;
}

static int connect_to(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un a = addr_of(path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads until `want` has arrived (or WAIT_MS without data), skipping
 * whatever comes before it. */
static bool read_until(int fd, const char *want)
{
	char buf[4096];
	size_t len = 0, keep = strlen(want);
	assert_true(keep < sizeof(buf) / 2);
	for (;;) {
		if (len == sizeof(buf) - 1) { /* keep a tail that may begin want */
			memmove(buf, buf + len - keep, keep);
			len = keep;
		}
		if (poll(&(struct pollfd){fd, POLLIN, 0}, 1, WAIT_MS) <= 0)
			return false;
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return false;
		len += (size_t)n;
		buf[len] = 0;
		if (strstr(buf, want))
			return true;
	}
}

static void a_live_listener_is_left_alone(void **state)
{
	struct env *e = *state;
	int other = listen_at(e->path);
	struct serial_unix *s = NULL;
	assert_int_equal(serial_unix_new(e->path, &s), -EADDRINUSE);
	assert_null(s);
	/* Still the other process's socket: it takes a connection. */
	int c = connect_to(e->path);
	assert_true(c >= 0);
	int a = accept(other, NULL, NULL);
	assert_true(a >= 0);
	close(a);
	close(c);
	close(other);
}

static void a_file_is_left_alone(void **state)
{
	struct env *e = *state;
	int fd = open(e->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	struct serial_unix *s = NULL;
	assert_int_equal(serial_unix_new(e->path, &s), -EEXIST);
	struct stat st;
	assert_int_equal(lstat(e->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void a_stale_socket_is_replaced_and_removed_at_free(void **state)
{
	struct env *e = *state;
	close(listen_at(e->path)); /* bound, nobody listening: stale */
	struct serial_unix *s = NULL;
	assert_int_equal(serial_unix_new(e->path, &s), 0);
	struct stat st;
	assert_int_equal(lstat(e->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	/* Created private, not chmod-ed afterwards. */
	assert_int_equal(st.st_mode & 077, 0);
	serial_unix_free(s);
	assert_int_equal(lstat(e->path, &st), -1);
}

static void a_failed_bind_removes_nothing(void **state)
{
	struct env *e = *state;
	struct serial_unix *s = NULL;
	char path[128];
	snprintf(path, sizeof(path), "%s/no-such-dir/com1", e->dir);
	assert_int_equal(serial_unix_new(path, &s), -ENOENT);
	assert_null(s);
}

/* The guest never reads COM1: a client types more than the UART's FIFO and
 * hangs up; the next client is still taken and gets the guest's output,
 * and what was typed reaches the UART once the guest reads. */
static void a_guest_that_never_reads_stalls_nothing(void **state)
{
	struct env *e = *state;
	struct serial_unix *s = NULL;
	assert_int_equal(serial_unix_new(e->path, &s), 0);
	assert_int_equal(serial_unix_attach(s, uart_input, &e->uart), 0);

	int c1 = connect_to(e->path);
	assert_true(c1 >= 0);
	serial_unix_output(s, (const uint8_t *)"boot\n", 5);
	assert_true(read_until(c1, "boot\n"));
	char typed[SERIAL_PENDING + 1000]; /* more than is kept: reading stops */
	for (size_t i = 0; i < sizeof(typed); i++)
		typed[i] = (char)('a' + i % 26);
	assert_int_equal(write(c1, typed, sizeof(typed)), (ssize_t)sizeof(typed));
	close(c1);

	int c2 = connect_to(e->path);
	assert_true(c2 >= 0);
	/* Output reaches the new client once the thread has noticed the
	 * hang-up and taken it (before that it may go to the old one): the
	 * guest keeps printing. */
	bool seen = false;
	for (int i = 0; i < WAIT_MS && !seen; i++) {
		serial_unix_output(s, (const uint8_t *)"hello-2\n", 8);
		seen = poll(&(struct pollfd){c2, POLLIN, 0}, 1, 1) > 0;
	}
	assert_true(seen);
	assert_true(read_until(c2, "hello-2\n"));

	/* The guest starts reading: the typed bytes that were kept arrive, in
	 * order (the rest went with the client). */
	pthread_mutex_lock(&e->uart.lock);
	e->uart.taking = true;
	pthread_mutex_unlock(&e->uart.lock);
	bool all = false;
	for (int i = 0; i < WAIT_MS && !all; i++) {
		pthread_mutex_lock(&e->uart.lock);
		all = e->uart.got_len == SERIAL_PENDING;
		pthread_mutex_unlock(&e->uart.lock);
		if (!all)
			poll(NULL, 0, 1);
	}
	assert_true(all);
	assert_memory_equal(e->uart.got, typed, SERIAL_PENDING);
	close(c2);
	serial_unix_free(s);
}

/* Waits until the UART has taken len bytes; true if they are want. */
static bool uart_got(struct uart *u, const void *want, size_t len)
{
	bool enough = false;
	for (int i = 0; i < WAIT_MS && !enough; i++) {
		pthread_mutex_lock(&u->lock);
		enough = u->got_len >= len;
		pthread_mutex_unlock(&u->lock);
		if (!enough)
			poll(NULL, 0, 1);
	}
	pthread_mutex_lock(&u->lock);
	bool same = enough && u->got_len == len && !memcmp(u->got, want, len);
	u->got_len = 0;
	pthread_mutex_unlock(&u->lock);
	return same;
}

static int open_terminal(const struct serial_pty *s)
{
	int fd = open(serial_pty_name(s), O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* --serial pty: a client on the terminal types into the UART and reads
 * the output, byte for byte (raw: no CR translation, ^C is a byte);
 * output nobody reads never blocks the guest; clients come and go. */
static void a_pty_passes_bytes_both_ways(void **state)
{
	struct env *e = *state;
	e->uart.taking = true;
	struct serial_pty *s = NULL;
	assert_int_equal(serial_pty_new(&s), 0);
	assert_int_equal(strncmp(serial_pty_name(s), "/dev/pts/", 9), 0);
	assert_int_equal(serial_pty_attach(s, uart_input, &e->uart), 0);

	int c = open_terminal(s);
	const char typed[] = "root\r\x03\x7f\n";
	assert_int_equal(write(c, typed, sizeof(typed) - 1), (ssize_t)sizeof(typed) - 1);
	assert_true(uart_got(&e->uart, typed, sizeof(typed) - 1));
	serial_pty_output(s, (const uint8_t *)"login:\n", 7);
	assert_true(read_until(c, "login:\n"));
	close(c);

	/* Nobody reads: a megabyte of output returns, most of it dropped;
	 * a client that comes later still sees the newest. */
	static uint8_t lots[1 << 20];
	memset(lots, 'x', sizeof(lots));
	serial_pty_output(s, lots, sizeof(lots));
	serial_pty_output(s, (const uint8_t *)"$ ", 2);

	c = open_terminal(s);
	assert_true(read_until(c, "x$ "));
	assert_int_equal(write(c, "again", 5), 5);
	assert_true(uart_got(&e->uart, "again", 5));
	close(c);
	serial_pty_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_live_listener_is_left_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(a_file_is_left_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(a_stale_socket_is_replaced_and_removed_at_free,
						setup, teardown),
		cmocka_unit_test_setup_teardown(a_failed_bind_removes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(a_guest_that_never_reads_stalls_nothing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_pty_passes_bytes_both_ways, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
