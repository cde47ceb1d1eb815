/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a UNIX stream socket served by one thread (epoll)
 * that frames each client's bytes into lines for the core and writes the
 * core's answers back. Nothing a client does blocks the thread: sockets
 * are non-blocking, a client that stops reading is first no longer read
 * from (its answers wait) and dropped if they pile up past a limit, and
 * requests waiting for the guest are answered when they finish.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"

#define MAX_CLIENTS 32
#define OUT_PAUSE (256 * 1024)   /* stop reading a client with this much unread */
#define OUT_LIMIT (4 * 1024 * 1024) /* drop it past this */
#define READ_CHUNK 16384
#define READS_PER_EVENT 8        /* then let the other clients in */

struct client {
	int fd;
	uint64_t serial;
	struct control_framer framer;
	char *out;
	size_t out_len, out_cap;
	bool paused; /* not reading: too much unread output */
	bool eof;    /* it shut its side: answer what it asked, then close */
	bool dead;   /* close at the end of this round */
	struct client *next;
};

struct control_server {
	char *path;
	int listen_fd, epfd, wake_fd;
	int quit_fd; /* readable once quit was requested */
	pthread_t thread;
	atomic_bool stop, quit;
	struct control_core *core;
	struct client *clients;
	uint32_t client_count;
	uint64_t next_serial;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void wake(void *ctx)
{
	struct control_server *s = ctx;
	uint64_t one = 1;
	ssize_t n = write(s->wake_fd, &one, sizeof(one));
	(void)n; /* a full counter is already a wake-up */
}

/* ---- Clients ---- */

static void client_events(struct control_server *s, struct client *cl)
{
	struct epoll_event ev = {
		.events = (cl->paused || cl->eof ? 0u : EPOLLIN) | (cl->out_len ? EPOLLOUT : 0u),
		.data.ptr = cl,
	};
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, cl->fd, &ev);
}

static void client_flush(struct control_server *s, struct client *cl)
{
	size_t off = 0;
	while (off < cl->out_len) {
		ssize_t n = send(cl->fd, cl->out + off, cl->out_len - off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			cl->dead = true; /* the client went away */
		break;
	}
	memmove(cl->out, cl->out + off, cl->out_len - off);
	cl->out_len -= off;
	bool paused = cl->out_len > OUT_PAUSE;
	if (s) {
		cl->paused = paused;
		client_events(s, cl);
	}
}

static struct client *client_find(struct control_server *s, uint64_t serial)
{
	for (struct client *cl = s->clients; cl; cl = cl->next)
		if (cl->serial == serial)
			return cl;
	return NULL;
}

static void emit(void *ctx, uint64_t client, const char *line, size_t len)
{
	struct control_server *s = ctx;
	struct client *cl = client_find(s, client);
	if (!cl || cl->dead)
		return;
	if (cl->out_len + len > OUT_LIMIT) {
		cl->dead = true; /* it reads nothing; its answers would grow forever */
		return;
	}
	if (cl->out_len + len > cl->out_cap) {
		size_t cap = cl->out_cap ? cl->out_cap : 4096;
		while (cap < cl->out_len + len)
			cap *= 2;
		char *out = realloc(cl->out, cap);
		if (!out) {
			cl->dead = true;
			return;
		}
		cl->out = out;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, line, len);
	cl->out_len += len;
	client_flush(s, cl);
}

static void client_free(struct client *cl)
{
	close(cl->fd);
	control_framer_free(&cl->framer);
	free(cl->out);
	free(cl);
}

static void reap(struct control_server *s)
{
	for (struct client **p = &s->clients; *p;) {
		struct client *cl = *p;
		if (cl->eof && !cl->out_len && !control_core_client_pending(s->core, cl->serial))
			cl->dead = true;
		if (!cl->dead) {
			p = &cl->next;
			continue;
		}
		*p = cl->next;
		s->client_count--;
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, cl->fd, NULL);
		control_core_client_gone(s->core, cl->serial);
		client_free(cl);
	}
}

static void refuse(int fd)
{
	static const char msg[] = "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"busy\","
				  "\"message\":\"too many control clients\"}}\n";
	ssize_t n = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;
	close(fd);
}

static void accept_clients(struct control_server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (s->client_count >= MAX_CLIENTS) {
			refuse(fd);
			continue;
		}
		struct client *cl = calloc(1, sizeof(*cl));
		if (!cl || control_framer_init(&cl->framer)) {
			free(cl);
			close(fd);
			continue;
		}
		cl->fd = fd;
		cl->serial = ++s->next_serial;
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = cl};
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			client_free(cl);
			continue;
		}
		cl->next = s->clients;
		s->clients = cl;
		s->client_count++;
	}
}

static void client_read(struct control_server *s, struct client *cl)
{
	char buf[READ_CHUNK];
	for (int i = 0; i < READS_PER_EVENT && !cl->dead && !cl->paused && !cl->eof; i++) {
		ssize_t n = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			cl->dead = true;
			return;
		}
		if (n == 0) {
			/* No more requests (a half-close, as `socat` does after
			 * its input): a partial line is dropped, the answers
			 * still owed are sent. */
			cl->eof = true;
			client_events(s, cl);
			return;
		}
		control_framer_feed(&cl->framer, s->core, cl->serial, buf, (size_t)n, now_ms());
	}
}

/* ---- The thread ---- */

static void *serve(void *arg)
{
	struct control_server *s = arg;
	struct epoll_event evs[16];

	while (!atomic_load(&s->stop)) {
		uint64_t now = now_ms();
		uint64_t next = control_core_poll(s->core, now);
		reap(s);
		if (control_core_quit_requested(s->core) && !atomic_exchange(&s->quit, true))
			eventfd_write(s->quit_fd, 1);
		int timeout = next == UINT64_MAX ? -1 : next <= now ? 0
					       : next - now > 60000 ? 60000
								  : (int)(next - now);
		int n = epoll_wait(s->epfd, evs, 16, timeout);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &s->listen_fd) {
				accept_clients(s);
			} else if (p == &s->wake_fd) {
				uint64_t v;
				ssize_t r = read(s->wake_fd, &v, sizeof(v));
				(void)r;
			} else {
				struct client *cl = p;
				if (evs[i].events & EPOLLOUT)
					client_flush(s, cl);
				if (evs[i].events & EPOLLIN)
					client_read(s, cl);
				/* Gone both ways: nothing more can reach it. */
				if (evs[i].events & (EPOLLHUP | EPOLLERR))
					cl->dead = true;
			}
		}
	}
	return NULL;
}

/* ---- Set-up ---- */

/* A socket file left by a machine that is gone may be replaced (1); a
 * live one or anything that is not a socket is left alone. */
static int probe_path(const char *path, struct sockaddr_un *addr)
{
	*addr = (struct sockaddr_un){.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr->sun_path))
		return -ENAMETOOLONG;
	strcpy(addr->sun_path, path);
	struct stat st;
	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int live = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
	close(fd);
	return live ? -EADDRINUSE : 1;
}

int control_server_check_path(const char *path)
{
	struct sockaddr_un addr;
	int err = probe_path(path, &addr);
	return err < 0 ? err : 0;
}

static int listen_on(struct control_server *s)
{
	struct sockaddr_un addr;
	int err = probe_path(s->path, &addr);
	if (err == 1 && unlink(s->path))
		return -errno;
	if (err < 0)
		return err;
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		return -errno;
	/* Whoever can connect controls the machine: the owner only. */
	if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)))
		return -errno;
	if (chmod(s->path, 0600) || listen(s->listen_fd, 16)) {
		err = -errno;
		unlink(s->path);
		return err;
	}
	return 0;
}

static int watch(struct control_server *s, int fd, void *tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static void server_free(struct control_server *s, bool bound)
{
	if (bound)
		unlink(s->path);
	while (s->clients) {
		struct client *cl = s->clients;
		s->clients = cl->next;
		client_flush(NULL, cl); /* the last answers (quit's), if they fit */
		client_free(cl);
	}
	control_core_free(s->core);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	if (s->quit_fd >= 0)
		close(s->quit_fd);
	free(s->path);
	free(s);
}

int control_server_start(const struct control_server_config *cfg, struct control_server **out)
{
	struct control_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->listen_fd = s->epfd = s->wake_fd = s->quit_fd = -1;
	s->path = strdup(cfg->path);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->quit_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct control_core_config cc = {
		.backend = cfg->backend,
		.emit = emit,
		.emit_ctx = s,
		.wake = wake,
		.wake_ctx = s,
	};
	s->core = control_core_new(&cc);
	if (!s->path || s->epfd < 0 || s->wake_fd < 0 || s->quit_fd < 0 || !s->core) {
		server_free(s, false);
		return -ENOMEM;
	}
	int err = listen_on(s);
	if (err) {
		server_free(s, false);
		return err;
	}
	err = watch(s, s->listen_fd, &s->listen_fd);
	if (!err)
		err = watch(s, s->wake_fd, &s->wake_fd);
	if (!err)
		err = -pthread_create(&s->thread, NULL, serve, s);
	if (err) {
		server_free(s, true);
		return err;
	}
	*out = s;
	return 0;
}

void control_server_set_ic(struct control_server *s, const struct control_ic_provider *p)
{
	control_core_set_ic(s->core, p);
}

int control_server_quit_fd(struct control_server *s)
{
	return s->quit_fd;
}

bool control_server_quit_requested(struct control_server *s)
{
	return atomic_load(&s->quit);
}

void control_server_stop(struct control_server *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	wake(s);
	pthread_join(s->thread, NULL);
	server_free(s, true);
}
