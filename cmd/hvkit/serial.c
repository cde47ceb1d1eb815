/* SPDX-License-Identifier: MIT */
/*
 * hvkit run --serial unix:PATH: COM1 on a listening UNIX stream socket.
 * One client at a time gets the guest's output and types its input; a
 * second client waits until the first leaves. Output while nobody is
 * connected is kept (the last SERIAL_BACKLOG bytes) for the next client,
 * so a boot log is not lost to a late connection; output a connected
 * client cannot take at once is dropped: the guest never waits for the
 * host's console.
 */
#define _GNU_SOURCE
#include "serial.h"

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

struct serial_unix {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int stop_pipe[2];
	pthread_mutex_t lock; /* client, backlog */
	int client;           /* -1: none */
	uint8_t backlog[SERIAL_BACKLOG];
	size_t backlog_len;
	struct machine *m;
	pthread_t thread;
	bool running;
};

int serial_unix_new(const char *path, struct serial_unix **out)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	struct serial_unix *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	s->client = -1;
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err = s->listen_fd < 0 ? -errno : 0;
	/* A socket left behind by an earlier run is replaced; anything else
	 * at the path is not. */
	struct stat st;
	if (!err && !lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode))
			err = -EEXIST;
		else
			unlink(path);
	}
	if (!err && (bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)) ||
		     chmod(path, 0600) || listen(s->listen_fd, 1)))
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

/* Typed bytes into the UART's FIFO; what does not fit waits for the guest
 * to read (1 ms steps), unless hvkit is stopping. */
static void type_in(struct serial_unix *s, const uint8_t *b, size_t n)
{
	while (n) {
		size_t took = machine_console_input(s->m, b, n);
		b += took;
		n -= took;
		if (n && poll(&(struct pollfd){s->stop_pipe[0], POLLIN, 0}, 1, 1) > 0)
			return;
	}
}

static void set_client(struct serial_unix *s, int fd)
{
	pthread_mutex_lock(&s->lock);
	if (s->client >= 0)
		close(s->client);
	s->client = fd;
	if (fd >= 0 && s->backlog_len) {
		send(fd, s->backlog, s->backlog_len, MSG_DONTWAIT | MSG_NOSIGNAL);
		s->backlog_len = 0;
	}
	pthread_mutex_unlock(&s->lock);
}

static void *serial_thread(void *arg)
{
	struct serial_unix *s = arg;
	for (;;) {
		int client = s->client; /* only this thread changes it */
		struct pollfd p[2] = {{s->stop_pipe[0], POLLIN, 0},
				      {client >= 0 ? client : s->listen_fd, POLLIN, 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		if (!p[1].revents)
			continue;
		if (client < 0) {
			int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				set_client(s, fd);
			continue;
		}
		uint8_t buf[256];
		ssize_t n = read(client, buf, sizeof(buf));
		if (n <= 0 && !(n < 0 && errno == EINTR))
			set_client(s, -1);
		else if (n > 0)
			type_in(s, buf, (size_t)n);
	}
	return NULL;
}

int serial_unix_attach(struct serial_unix *s, struct machine *m)
{
	s->m = m;
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
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	for (int i = 0; i < 2; i++)
		if (s->stop_pipe[i] >= 0)
			close(s->stop_pipe[i]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
