/* SPDX-License-Identifier: MIT */
/*
 * hvkit run --serial unix:PATH and --serial pty: COM1 on a host device.
 *
 * unix:PATH: COM1 on a listening UNIX stream socket.
 * One client at a time gets the guest's output and types its input; a
 * second client waits until the first leaves. Output while nobody is
 * connected is kept (the last SERIAL_BACKLOG bytes) for the next client,
 * so a boot log is not lost to a late connection; output a connected
 * client cannot take at once is dropped: the guest never waits for the
 * host's console. Input the guest does not read waits here (bounded,
 * SERIAL_PENDING), so a guest that never reads COM1 stalls neither hang-ups
 * nor the next client.
 *
 * pty: COM1 on a new pseudo-terminal, in raw mode, as QEMU's -serial pty;
 * any terminal program opens its name. We keep the terminal side open
 * ourselves, so its clients come and go without a hang-up; output nobody
 * reads waits in the terminal's buffer, and when that is full the oldest
 * goes (the buffer is emptied) to make room for the newest.
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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SERIAL_BACKLOG 16384
/* How often the UART is retried while input waits, and how long accept
 * failures (out of descriptors, ...) pause the listener. */
#define SERIAL_RETRY_MS 2
#define SERIAL_ACCEPT_BACKOFF_MS 100

/* Typed bytes on their way to the UART: the serial thread's own. */
struct serial_input {
	uint8_t pending[SERIAL_PENDING];
	size_t pending_len;
	serial_input_fn input;
	void *ctx;
};

/* Hands what the UART takes of the pending input to it. */
static void feed_uart(struct serial_input *in)
{
	if (!in->pending_len)
		return;
	size_t took = in->input(in->ctx, in->pending, in->pending_len);
	if (took > in->pending_len)
		took = in->pending_len;
	memmove(in->pending, in->pending + took, in->pending_len - took);
	in->pending_len -= took;
}

/* A serial thread and the pipe that stops it. */
struct serial_worker {
	int stop_pipe[2];
	pthread_t thread;
	bool running;
};

static int worker_init(struct serial_worker *w)
{
	w->running = false;
	return pipe2(w->stop_pipe, O_CLOEXEC) ? -errno : 0;
}

static int worker_start(struct serial_worker *w, void *(*fn)(void *), void *arg)
{
	int err = pthread_create(&w->thread, NULL, fn, arg);
	w->running = !err;
	return -err;
}

static void worker_stop(struct serial_worker *w)
{
	if (!w->running)
		return;
	if (write(w->stop_pipe[1], "x", 1) < 0)
		perror("hvkit: serial");
	pthread_join(w->thread, NULL);
	w->running = false;
}

static void worker_fini(struct serial_worker *w)
{
	worker_stop(w);
	for (int i = 0; i < 2; i++)
		if (w->stop_pipe[i] >= 0)
			close(w->stop_pipe[i]);
	w->stop_pipe[0] = w->stop_pipe[1] = -1;
}

/* Reads typed bytes from fd into the room left: read(2)'s answer. */
static ssize_t read_pending(struct serial_input *in, int fd)
{
	ssize_t n = read(fd, in->pending + in->pending_len, SERIAL_PENDING - in->pending_len);
	if (n > 0)
		in->pending_len += (size_t)n;
	return n;
}

/* poll(2)'s timeout while input waits for the UART, or none. */
static int retry_timeout(const struct serial_input *in)
{
	return in->pending_len ? SERIAL_RETRY_MS : -1;
}

struct serial_unix {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	bool bound; /* the path is ours to unlink */
	struct serial_worker w;
	pthread_mutex_t lock; /* client, backlog */
	int client;           /* -1: none */
	uint8_t backlog[SERIAL_BACKLOG];
	size_t backlog_len;
	struct serial_input in;
	bool accept_failed; /* logged */
	/* Said once, on the first output kept for a client that has not come
	 * yet (written from a vCPU thread: no stdio). */
	char waiting_note[sizeof(((struct sockaddr_un *)0)->sun_path) + 96];
	bool waiting_noted;
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
	snprintf(s->waiting_note, sizeof(s->waiting_note),
		 "hvkit: --serial unix:%s: COM1 output waits for a client (the newest %u bytes "
		 "are kept)\n",
		 path, SERIAL_BACKLOG);
	s->client = -1;
	s->w.stop_pipe[0] = s->w.stop_pipe[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	err = s->listen_fd < 0 ? -errno : 0;
	if (!err)
		err = bind_private(s->listen_fd, &a);
	s->bound = !err;
	if (!err && listen(s->listen_fd, 1))
		err = -errno;
	if (!err)
		err = worker_init(&s->w);
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
		if (!s->waiting_noted) {
			s->waiting_noted = true;
			ssize_t n = write(2, s->waiting_note, strlen(s->waiting_note));
			(void)n; /* a note; nothing to do if stderr is gone */
		}
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
	if (s->in.pending_len == SERIAL_PENDING) {
		/* Not reading: only a hang-up matters. */
		if (revents & (POLLHUP | POLLERR | POLLRDHUP))
			set_client(s, -1);
		return;
	}
	ssize_t n = read_pending(&s->in, client);
	if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN)))
		set_client(s, -1);
}

static void *serial_thread(void *arg)
{
	struct serial_unix *s = arg;
	uint64_t backoff = 0; /* poll rounds of SERIAL_ACCEPT_BACKOFF_MS left */
	for (;;) {
		int client = s->client; /* only this thread changes it */
		struct pollfd p[2] = {{s->w.stop_pipe[0], POLLIN, 0}, {-1, 0, 0}};
		if (client >= 0) {
			p[1].fd = client;
			p[1].events = s->in.pending_len < SERIAL_PENDING ? POLLIN : POLLRDHUP;
		} else if (!backoff) {
			p[1].fd = s->listen_fd;
			p[1].events = POLLIN;
		}
		int timeout = backoff ? SERIAL_ACCEPT_BACKOFF_MS : retry_timeout(&s->in);
		int n = poll(p, 2, timeout);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && p[0].revents)
			break;
		if (backoff && n == 0)
			backoff = 0;
		feed_uart(&s->in);
		if (n <= 0 || !p[1].revents)
			continue;
		if (client < 0)
			backoff = take_client(s) ? 1 : 0;
		else
			read_client(s, client, p[1].revents);
		feed_uart(&s->in);
	}
	return NULL;
}

int serial_unix_attach(struct serial_unix *s, serial_input_fn input, void *ctx)
{
	s->in.input = input;
	s->in.ctx = ctx;
	return worker_start(&s->w, serial_thread, s);
}

void serial_unix_detach(struct serial_unix *s)
{
	if (s)
		worker_stop(&s->w);
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
	worker_fini(&s->w);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- --serial pty ---- */

struct serial_pty {
	int master;
	int terminal; /* our own open of the terminal side: no hang-ups */
	char name[64];
	struct serial_worker w;
	struct serial_input in;
};

/* Raw: bytes pass as they are, nothing echoed, no signals from ^C. */
static int make_raw(int fd)
{
	struct termios t;
	if (tcgetattr(fd, &t))
		return -errno;
	cfmakeraw(&t);
	return tcsetattr(fd, TCSANOW, &t) ? -errno : 0;
}

static int open_pty(struct serial_pty *s)
{
	s->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s->master < 0)
		return -errno;
	if (grantpt(s->master) || unlockpt(s->master) ||
	    ptsname_r(s->master, s->name, sizeof(s->name)))
		return -errno;
	s->terminal = open(s->name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s->terminal < 0)
		return -errno;
	int err = make_raw(s->terminal);
	if (!err && fcntl(s->master, F_SETFL, O_NONBLOCK))
		err = -errno;
	return err;
}

int serial_pty_new(struct serial_pty **out)
{
	struct serial_pty *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->master = s->terminal = -1;
	s->w.stop_pipe[0] = s->w.stop_pipe[1] = -1;
	int err = open_pty(s);
	if (!err)
		err = worker_init(&s->w);
	if (err) {
		serial_pty_free(s);
		return err;
	}
	*out = s;
	return 0;
}

const char *serial_pty_name(const struct serial_pty *s)
{
	return s->name;
}

void serial_pty_output(void *ctx, const uint8_t *bytes, size_t len)
{
	struct serial_pty *s = ctx;
	bool flushed = false;
	/* Non-blocking, so the guest never waits. A terminal full of output
	 * nobody read is emptied once, so a client that comes later sees the
	 * newest output, as a unix: client sees the newest backlog. */
	while (len) {
		ssize_t n = write(s->master, bytes, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && !flushed) {
			tcflush(s->terminal, TCIFLUSH);
			flushed = true;
			continue;
		}
		if (n <= 0)
			return;
		bytes += n;
		len -= (size_t)n;
	}
}

static void *pty_thread(void *arg)
{
	struct serial_pty *s = arg;
	for (;;) {
		bool room = s->in.pending_len < SERIAL_PENDING;
		struct pollfd p[2] = {{s->w.stop_pipe[0], POLLIN, 0},
				      {room ? s->master : -1, POLLIN, 0}};
		int n = poll(p, 2, retry_timeout(&s->in));
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && p[0].revents)
			break;
		if (n > 0 && (p[1].revents & POLLIN))
			read_pending(&s->in, s->master);
		feed_uart(&s->in);
	}
	return NULL;
}

int serial_pty_attach(struct serial_pty *s, serial_input_fn input, void *ctx)
{
	s->in.input = input;
	s->in.ctx = ctx;
	return worker_start(&s->w, pty_thread, s);
}

void serial_pty_detach(struct serial_pty *s)
{
	if (s)
		worker_stop(&s->w);
}

/* How long a client reading the terminal may take for the last output,
 * and how long the unread count may stand still before hvkit stops
 * waiting for it (nobody is reading). */
#define PTY_DRAIN_MAX_MS 2000
#define PTY_DRAIN_STALL_MS 200
#define PTY_DRAIN_STEP_MS 10
/* How long the terminal must look empty: bytes the kernel has yet to move
 * into it (its flip buffer, a worker's job) are not counted. */
#define PTY_DRAIN_EMPTY_MS 50

/*
 * Closing the terminal hangs it up, and a hang-up throws away what the
 * client has not read yet: the guest's last lines (a test kernel's
 * verdict) would be lost to a client a little behind. So the output left
 * unread is given time to go while it keeps going down.
 */
static void let_client_drain(const struct serial_pty *s)
{
	int left = 0, last = -1, stalled_ms = 0, empty_ms = 0;
	for (int waited = 0; waited < PTY_DRAIN_MAX_MS; waited += PTY_DRAIN_STEP_MS) {
		if (ioctl(s->terminal, FIONREAD, &left))
			return;
		empty_ms = left <= 0 ? empty_ms + PTY_DRAIN_STEP_MS : 0;
		if (empty_ms >= PTY_DRAIN_EMPTY_MS)
			return;
		stalled_ms = left > 0 && left == last ? stalled_ms + PTY_DRAIN_STEP_MS : 0;
		if (stalled_ms >= PTY_DRAIN_STALL_MS)
			return; /* nobody reads */
		last = left;
		nanosleep(&(struct timespec){0, PTY_DRAIN_STEP_MS * 1000000L}, NULL);
	}
}

void serial_pty_free(struct serial_pty *s)
{
	if (!s)
		return;
	worker_fini(&s->w);
	if (s->terminal >= 0)
		let_client_drain(s);
	if (s->terminal >= 0)
		close(s->terminal);
	if (s->master >= 0)
		close(s->master);
	free(s);
}
