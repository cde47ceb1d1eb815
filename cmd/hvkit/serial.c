/* SPDX-License-Identifier: MIT */
/*
 * hvkit run --serial unix:PATH: COM1 on a listening UNIX stream socket.
 * One client at a time gets the guest's output and types its input; a
 * second client waits until the first leaves. Output while nobody is
 * connected is kept (the last SERIAL_BACKLOG bytes) for the next client,
 * so a boot log is not lost to a late connection; output a connected
 * client cannot take at once is dropped: the guest never waits for the
 * host's console. Input the guest does not read waits here (bounded,
 * SERIAL_PENDING), so a guest that never reads COM1 stalls neither hang-ups
 * nor the next client.
 */
#define _GNU_SOURCE
#include "serial.h"

#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SERIAL_BACKLOG 16384
/* How often the UART is retried while input waits, and how long accept
 * failures (out of descriptors, ...) pause the listener. */
#define SERIAL_RETRY_MS 2
#define SERIAL_ACCEPT_BACKOFF_MS 100

struct serial_unix {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	bool bound; /* the path is ours to unlink */
	int stop_pipe[2];
	pthread_mutex_t lock; /* client, backlog */
	int client;           /* -1: none */
	uint8_t backlog[SERIAL_BACKLOG];
	size_t backlog_len;
	/* The serial thread's own. */
	uint8_t pending[SERIAL_PENDING];
	size_t pending_len;
	bool accept_failed; /* logged */
	serial_input_fn input;
	void *input_ctx;
	pthread_t thread;
	bool running;
};

/* Binds with no permissions for group and others from the start: whoever
 * connects types into the guest's console. */
static int bind_private(int fd, const struct sockaddr_un *a)
{
	mode_t old = umask(0177);
	int err = bind(fd, (const struct sockaddr *)a, sizeof(*a)) ? -errno : 0;
	umask(old);
	return err;
}

int serial_unix_new(const char *path, struct serial_unix **out)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	/* A socket left behind by an earlier run is replaced; a live one
	 * (-EADDRINUSE) or anything else at the path (-EEXIST) is not. */
	int err = control_server_check_path(path);
	if (err)
		return err;
	struct stat st;
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode) && unlink(path))
		return -errno;
	struct serial_unix *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	s->client = -1;
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	err = s->listen_fd < 0 ? -errno : 0;
	if (!err)
		err = bind_private(s->listen_fd, &a);
	s->bound = !err;
	if (!err && listen(s->listen_fd, 1))
		err = -errno;
	if (!err && pipe2(s->stop_pipe, O_CLOEXEC))
		err = -errno;
	if (err) {
		serial_unix_free(s);
		return err;
	}
	*out = s;
	return 0;
}

void serial_unix_output(void *ctx, const uint8_t *bytes, size_t len)
{
	struct serial_unix *s = ctx;
	pthread_mutex_lock(&s->lock);
	/* A client that went away is noticed (and closed) by the thread. */
	if (s->client >= 0) {
		send(s->client, bytes, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	} else {
		/* Keep the newest SERIAL_BACKLOG bytes. */
		if (len >= SERIAL_BACKLOG) {
			bytes += len - SERIAL_BACKLOG;
			len = SERIAL_BACKLOG;
		}
		size_t drop = s->backlog_len + len > SERIAL_BACKLOG
				      ? s->backlog_len + len - SERIAL_BACKLOG
				      : 0;
		memmove(s->backlog, s->backlog + drop, s->backlog_len - drop);
		s->backlog_len -= drop;
		memcpy(s->backlog + s->backlog_len, bytes, len);
		s->backlog_len += len;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Hands what the UART takes of the pending input to it. */
static void feed_uart(struct serial_unix *s)
{
	if (!s->pending_len)
		return;
	size_t took = s->input(s->input_ctx, s->pending, s->pending_len);
	if (took > s->pending_len)
		took = s->pending_len;
	memmove(s->pending, s->pending + took, s->pending_len - took);
	s->pending_len -= took;
}

/* Returns how much backlog the new client was given. */
static size_t set_client(struct serial_unix *s, int fd)
{
	size_t kept = 0;
	pthread_mutex_lock(&s->lock);
	if (s->client >= 0)
		close(s->client);
	s->client = fd;
	if (fd >= 0 && s->backlog_len) {
		kept = s->backlog_len;
		send(fd, s->backlog, s->backlog_len, MSG_DONTWAIT | MSG_NOSIGNAL);
		s->backlog_len = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return kept;
}

/* 0, or how long to keep the listener out of the poll set. */
static int take_client(struct serial_unix *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		size_t kept = set_client(s, fd);
		fprintf(stderr, "hvkit: --serial unix:%s: a client connected (%zu bytes of "
			"earlier output kept for it)\n", s->path, kept);
		return 0;
	}
	if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
		return 0;
	if (!s->accept_failed) {
		s->accept_failed = true;
		fprintf(stderr, "hvkit: --serial unix:%s: accept: %s (logged once)\n", s->path,
			strerror(errno));
	}
	return SERIAL_ACCEPT_BACKOFF_MS;
}

/* The client has something: input (kept for the UART) or its end. */
static void read_client(struct serial_unix *s, int client, short revents)
{
	size_t room = SERIAL_PENDING - s->pending_len;
	if (!room) {
		/* Not reading: only a hang-up matters. */
		if (revents & (POLLHUP | POLLERR | POLLRDHUP))
			set_client(s, -1);
		return;
	}
	ssize_t n = read(client, s->pending + s->pending_len, room);
	if (n > 0)
		s->pending_len += (size_t)n;
	else if (!(n < 0 && (errno == EINTR || errno == EAGAIN)))
		set_client(s, -1);
}

static void *serial_thread(void *arg)
{
	struct serial_unix *s = arg;
	uint64_t backoff = 0; /* poll rounds of SERIAL_ACCEPT_BACKOFF_MS left */
	for (;;) {
		int client = s->client; /* only this thread changes it */
		struct pollfd p[2] = {{s->stop_pipe[0], POLLIN, 0}, {-1, 0, 0}};
		if (client >= 0) {
			p[1].fd = client;
			p[1].events = s->pending_len < SERIAL_PENDING ? POLLIN : POLLRDHUP;
		} else if (!backoff) {
			p[1].fd = s->listen_fd;
			p[1].events = POLLIN;
		}
		int timeout = backoff ? SERIAL_ACCEPT_BACKOFF_MS : s->pending_len ? SERIAL_RETRY_MS : -1;
		int n = poll(p, 2, timeout);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && p[0].revents)
			break;
		if (backoff && n == 0)
			backoff = 0;
		feed_uart(s);
		if (n <= 0 || !p[1].revents)
			continue;
		if (client < 0)
			backoff = take_client(s) ? 1 : 0;
		else
			read_client(s, client, p[1].revents);
		feed_uart(s);
	}
	return NULL;
}

int serial_unix_attach(struct serial_unix *s, serial_input_fn input, void *ctx)
{
	s->input = input;
	s->input_ctx = ctx;
	int err = pthread_create(&s->thread, NULL, serial_thread, s);
	s->running = !err;
	return -err;
}

void serial_unix_detach(struct serial_unix *s)
{
	if (!s || !s->running)
		return;
	if (write(s->stop_pipe[1], "x", 1) < 0)
		perror("hvkit: serial");
	pthread_join(s->thread, NULL);
	s->running = false;
}

void serial_unix_free(struct serial_unix *s)
{
	if (!s)
		return;
	serial_unix_detach(s);
	set_client(s, -1);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	/* Only our own socket: never one another process put there. */
	if (s->bound)
		unlink(s->path);
	for (int i = 0; i < 2; i++)
		if (s->stop_pipe[i] >= 0)
			close(s->stop_pipe[i]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
