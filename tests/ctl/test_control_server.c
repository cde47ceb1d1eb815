/* SPDX-License-Identifier: MIT */
/*
 * The control server over a real UNIX socket, with the fake machine and
 * fake integration components behind it: clients that send garbage,
 * over-long lines, vanish mid-request, never read, or come in too many;
 * requests that wait for the guest while others are served; the socket
 * file's life.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
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

#include "control_fake.h"
#include "ctl_run.h"

#define ANSWER_WAIT_MS 20000

static const char *hvkit; /* the hvkit binary, for the hvkit ctl cases */

struct fixture {
	char dir[64];
	char path[128];
	struct fake_machine machine;
	struct fake_ic ic;
	struct control_server *srv;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/hvkit-ctl-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/sock", f->dir);
	struct control_server_config cfg = {.path = f->path,
					    .backend = fake_machine_backend(&f->machine)};
	if (control_server_start(&cfg, &f->srv))
		return -1;
	struct control_ic_provider p = fake_ic_provider(&f->ic);
	control_server_set_ic(f->srv, &p);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	control_server_stop(f->srv);
	for (uint32_t i = 0; i < f->ic.held_count; i++)
		control_async_done(f->ic.held[i], 0, NULL);
	/* The socket file goes with the server. */
	assert_int_equal(access(f->path, F_OK), -1);
	rmdir(f->dir);
	free(f);
	return 0;
}

static int dial(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

static void send_str(int fd, const char *s)
{
	size_t len = strlen(s);
	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
		assert_true(n > 0);
		s += n;
		len -= (size_t)n;
	}
}

/* One response line, parsed; NULL if the server closed the connection. */
static json_t *read_msg(int fd)
{
	char line[65536];
	size_t len = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, ANSWER_WAIT_MS), 1);
		/* Byte by byte: the next response stays in the socket. */
		ssize_t n = recv(fd, line + len, 1, 0);
		if (n == 0)
			return NULL;
		assert_int_equal(n, 1);
		if (line[len] == '\n')
			break;
		len++;
		assert_true(len < sizeof(line));
	}
	json_t *msg = json_loadb(line, len, 0, NULL);
	assert_non_null(msg);
	return msg;
}

static const char *code_of(json_t *msg)
{
	assert_non_null(msg);
	return json_string_value(json_object_get(json_object_get(msg, "error"), "code"));
}

static void expect_status_ok(int fd, int id)
{
	char req[80];
	snprintf(req, sizeof(req), "{\"id\":%d,\"command\":\"status\"}\n", id);
	send_str(fd, req);
	json_t *msg = read_msg(fd);
	assert_non_null(msg);
	assert_true(json_is_true(json_object_get(msg, "ok")));
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), id);
	json_decref(msg);
}

static void test_roundtrip_and_mode(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	int fd = dial(f->path);
	expect_status_ok(fd, 1);
	expect_status_ok(fd, 2);
	close(fd);
}

static void test_garbage_then_valid(void **state)
{
	struct fixture *f = *state;
	int fd = dial(f->path);
	send_str(fd, "\x01\x02 garbage {{{\n");
	json_t *msg = read_msg(fd);
	assert_string_equal(code_of(msg), "bad-request");
	json_decref(msg);
	/* An over-long line, in pieces, then a good request. */
	size_t big = CONTROL_LINE_MAX * 3;
	char *junk = malloc(big + 1);
	memset(junk, '{', big);
	junk[big] = '\0';
	send_str(fd, junk);
	send_str(fd, "\n");
	free(junk);
	msg = read_msg(fd);
	assert_string_equal(code_of(msg), "line-too-long");
	json_decref(msg);
	expect_status_ok(fd, 3);
	close(fd);
}

static void test_async_does_not_block_others(void **state)
{
	struct fixture *f = *state;
	f->ic.mode = FAKE_IC_HOLD;
	int a = dial(f->path), b = dial(f->path);
	send_str(a, "{\"id\":1,\"command\":\"shutdown\",\"args\":{\"timeout\":60}}\n");
	expect_status_ok(b, 2);
	expect_status_ok(a, 3); /* a itself is not blocked either */
	/* The guest answers from another thread (this one). */
	while (!__atomic_load_n(&f->ic.held_count, __ATOMIC_ACQUIRE))
		usleep(1000);
	control_result_string(control_async_result(f->ic.held[0]), "answer", "ok");
	control_async_done(f->ic.held[0], 0, NULL);
	f->ic.held_count = 0;
	json_t *msg = read_msg(a);
	assert_true(json_is_true(json_object_get(msg, "ok")));
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 1);
	json_decref(msg);
	close(a);
	close(b);
}

static void test_timeout(void **state)
{
	struct fixture *f = *state;
	f->ic.mode = FAKE_IC_HOLD;
	int fd = dial(f->path);
	send_str(fd, "{\"id\":4,\"command\":\"kvp-get\",\"args\":{\"key\":\"k\",\"timeout\":1}}\n");
	json_t *msg = read_msg(fd);
	assert_string_equal(code_of(msg), "timeout");
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 4);
	json_decref(msg);
	expect_status_ok(fd, 5);
	close(fd);
}

static void test_client_vanishes(void **state)
{
	struct fixture *f = *state;
	f->ic.mode = FAKE_IC_HOLD;
	/* Mid-line, and with a request waiting for the guest. */
	int fd = dial(f->path);
	send_str(fd, "{\"id\":1,\"command\":\"vss-freeze\"}\n{\"id\":2,\"comm");
	while (!__atomic_load_n(&f->ic.held_count, __ATOMIC_ACQUIRE))
		usleep(1000);
	close(fd);
	/* The server notices and abandons what the client waited for. */
	while (!control_async_abandoned(f->ic.held[0]))
		usleep(1000);
	control_async_done(f->ic.held[0], 0, NULL);
	f->ic.held_count = 0;
	fd = dial(f->path);
	expect_status_ok(fd, 3);
	close(fd);
}

/* `printf REQUEST | socat - UNIX-CONNECT:sock` shuts its side after the
 * request and waits for the answer. */
static void test_half_close_still_answered(void **state)
{
	struct fixture *f = *state;
	f->ic.mode = FAKE_IC_HOLD;
	int fd = dial(f->path);
	send_str(fd, "{\"id\":1,\"command\":\"status\"}\n{\"id\":2,\"command\":\"hibernate\"}\n");
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	json_t *msg = read_msg(fd);
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 1);
	json_decref(msg);
	while (!__atomic_load_n(&f->ic.held_count, __ATOMIC_ACQUIRE))
		usleep(1000);
	assert_false(control_async_abandoned(f->ic.held[0]));
	control_async_done(f->ic.held[0], 0, NULL);
	f->ic.held_count = 0;
	msg = read_msg(fd);
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 2);
	assert_true(json_is_true(json_object_get(msg, "ok")));
	json_decref(msg);
	/* Nothing more is owed: the server closes. */
	assert_null(read_msg(fd));
	close(fd);
}

static void test_too_many_clients(void **state)
{
	struct fixture *f = *state;
	int fds[40];
	for (int i = 0; i < 40; i++)
		fds[i] = dial(f->path);
	/* The first ones are served; a later one is told and closed. */
	expect_status_ok(fds[0], 1);
	json_t *msg = read_msg(fds[39]);
	assert_string_equal(code_of(msg), "busy");
	json_decref(msg);
	assert_null(read_msg(fds[39]));
	for (int i = 0; i < 40; i++)
		close(fds[i]);
	int fd = dial(f->path);
	expect_status_ok(fd, 2);
	close(fd);
}

static void test_client_that_never_reads(void **state)
{
	struct fixture *f = *state;
	int slow = dial(f->path);
	fcntl(slow, F_SETFL, O_NONBLOCK);
	/* Requests until the server stops taking them: its answers pile up
	 * and it stops reading this client. */
	const char *req = "{\"id\":1,\"command\":\"status\"}\n";
	size_t sent = 0;
	for (int stalls = 0; stalls < 200;) {
		ssize_t n = send(slow, req, strlen(req), MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			stalls = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN)
			break; /* dropped: also fine */
		stalls++;
		usleep(1000);
	}
	assert_true(sent > 0);
	/* Everyone else is still served. */
	int fd = dial(f->path);
	expect_status_ok(fd, 9);
	close(fd);
	close(slow);
}

static void test_socket_path(void **state)
{
	struct fixture *f = *state;
	struct control_server *other;
	struct control_server_config cfg = {.path = f->path,
					    .backend = fake_machine_backend(&f->machine)};
	/* Someone is listening there: refused, and their socket stays. */
	assert_int_equal(control_server_check_path(f->path), -EADDRINUSE);
	assert_int_equal(control_server_start(&cfg, &other), -EADDRINUSE);
	int fd = dial(f->path);
	expect_status_ok(fd, 1);
	close(fd);

	/* A stale socket (nobody listening) is replaced. */
	char stale[160];
	snprintf(stale, sizeof(stale), "%s/stale", f->dir);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	strcpy(addr.sun_path, stale);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(s);
	assert_int_equal(control_server_check_path(stale), 0);
	assert_int_equal(access(stale, F_OK), 0); /* checking removes nothing */
	cfg.path = stale;
	assert_int_equal(control_server_start(&cfg, &other), 0);
	fd = dial(stale);
	expect_status_ok(fd, 2);
	close(fd);
	control_server_stop(other);

	/* Anything else is left alone. */
	int file = open(stale, O_CREAT | O_WRONLY, 0600);
	close(file);
	assert_int_equal(control_server_check_path(stale), -EEXIST);
	assert_int_equal(control_server_start(&cfg, &other), -EEXIST);
	unlink(stale);
}

static void test_quit(void **state)
{
	struct fixture *f = *state;
	int fd = dial(f->path);
	assert_false(control_server_quit_requested(f->srv));
	send_str(fd, "{\"id\":1,\"command\":\"quit\"}\n");
	json_t *msg = read_msg(fd);
	assert_true(json_is_true(json_object_get(msg, "ok")));
	json_decref(msg);
	while (!control_server_quit_requested(f->srv))
		usleep(1000);
	close(fd);
}

/* ---- hvkit ctl against the fake machine: the integration commands'
 * arguments and output, which a machine without them cannot show ---- */

#define ctl(o, ...) assert_int_equal(ctl_run(hvkit, (o), __VA_ARGS__), 0)

static void expect_ctl(struct ctl_output *o, int status, const char *out, const char *last,
		       const struct fake_ic *ic)
{
	if (o->status != status || (out && strcmp(o->out, out)) ||
	    (last && strcmp(ic->last, last)))
		fail_msg("exit %d, stdout '%s', stderr '%s', provider saw '%s'", o->status,
			 o->out, o->err, ic->last);
}

static void test_ctl_ic_commands(void **state)
{
	struct fixture *f = *state;
	struct ctl_output o;
	ctl(&o, f->path, "kvp", "set", "--pool", "3", "HostName", "vm-1", NULL);
	expect_ctl(&o, 0, "", "set 3 HostName=vm-1", &f->ic);
	ctl(&o, f->path, "kvp", "get", "HostName", NULL);
	expect_ctl(&o, 0, "forty-two\n", "get 0 HostName", &f->ic);
	ctl(&o, "--json", f->path, "kvp", "get", "x", NULL);
	expect_ctl(&o, 0, "{\n  \"value\": \"forty-two\"\n}\n", "get 0 x", &f->ic);
	ctl(&o, f->path, "kvp", "list", "--pool", "2", NULL);
	expect_ctl(&o, 0, "a=1\nb=2\n", "list 2", &f->ic);
	ctl(&o, f->path, "kvp", "delete", "k", NULL);
	expect_ctl(&o, 0, "", "delete 0 k", &f->ic);
	ctl(&o, f->path, "reboot", "--reason", "patch", "--timeout", "7", "--force", NULL);
	expect_ctl(&o, 0, "answer: accepted\n", "power 1 patch 1 7", &f->ic);
	ctl(&o, f->path, "hibernate", NULL);
	expect_ctl(&o, 0, NULL, "power 2  0 60", &f->ic);
	ctl(&o, f->path, "vss", "freeze", NULL);
	expect_ctl(&o, 0, "", "vss 1", &f->ic);
	ctl(&o, f->path, "vss", "thaw", NULL);
	expect_ctl(&o, 0, "", "vss 0", &f->ic);
	ctl(&o, f->path, "timesync", NULL);
	expect_ctl(&o, 0, "", "timesync", &f->ic);

	/* copy sends the host file's absolute path. */
	char file[160], want[400];
	snprintf(file, sizeof(file), "%s/payload", f->dir);
	close(open(file, O_CREAT | O_WRONLY, 0600));
	ctl(&o, f->path, "copy", file, "logs/p", "--overwrite", NULL);
	snprintf(want, sizeof(want), "copy %s logs/p 1", file);
	expect_ctl(&o, 0, "bytes: 42\n", want, &f->ic);
	unlink(file);
	ctl(&o, f->path, "copy", "/nonexistent/file", "p", NULL);
	expect_ctl(&o, 1, "", NULL, &f->ic);

	/* The guest says no: exit 1 with the code. */
	f->ic.mode = FAKE_IC_GUEST_SAYS;
	f->ic.complete_err = -ECANCELED;
	ctl(&o, f->path, "vss", "freeze", NULL);
	expect_ctl(&o, 1, "", NULL, &f->ic);
	assert_non_null(strstr(o.err, "(guest-refused)"));
	/* The guest never answers: exit 4. */
	f->ic.mode = FAKE_IC_HOLD;
	ctl(&o, f->path, "shutdown", "--timeout", "1", NULL);
	expect_ctl(&o, 4, "", NULL, &f->ic);
	assert_non_null(strstr(o.err, "(timeout)"));
	/* Not offered: exit 1. */
	control_server_set_ic(f->srv, NULL);
	ctl(&o, f->path, "kvp", "list", NULL);
	expect_ctl(&o, 1, "", NULL, &f->ic);
	assert_non_null(strstr(o.err, "(service-not-offered)"));
	/* --json: the error object on stdout as well. */
	ctl(&o, "--json", f->path, "kvp", "list", NULL);
	assert_int_equal(o.status, 1);
	json_t *err = json_loads(o.out, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(err, "code")),
			    "service-not-offered");
	json_decref(err);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-control-server HVKIT\n");
		return 2;
	}
	hvkit = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_and_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_then_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_does_not_block_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_vanishes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_close_still_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_that_never_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctl_ic_commands, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
