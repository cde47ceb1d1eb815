/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl_run.h"

extern char **environ;

static void drain(int fd, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	while ((n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
}

static int run_argv(const char *hvkit, struct ctl_output *o, const char *subcommand,
		    const char *first, va_list ap)
{
	const char *argv[16] = {hvkit, subcommand, first};
	int argc = 3;
	const char *a;
	while ((a = va_arg(ap, const char *)) && argc < 15)
		argv[argc++] = a;
	argv[argc] = NULL;

	int out[2], err[2];
	if (pipe2(out, O_CLOEXEC))
		return -1;
	if (pipe2(err, O_CLOEXEC)) {
		close(out[0]);
		close(out[1]);
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	pid_t pid;
	int rc = posix_spawn(&pid, hvkit, &fa, NULL, (char **)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	close(err[1]);
	drain(out[0], o->out, sizeof(o->out));
	drain(err[0], o->err, sizeof(o->err));
	if (rc)
		return -1;
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	o->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return 0;
}

int ctl_run(const char *hvkit, struct ctl_output *o, const char *first, ...)
{
	va_list ap;
	va_start(ap, first);
	int rc = run_argv(hvkit, o, "ctl", first, ap);
	va_end(ap);
	return rc;
}

int ctl_run_tool(const char *hvkit, struct ctl_output *o, const char *subcommand,
		 const char *first, ...)
{
	va_list ap;
	va_start(ap, first);
	int rc = run_argv(hvkit, o, subcommand, first, ap);
	va_end(ap);
	return rc;
}

int ctl_machine_start(const char *hvkit, const char *const *argv, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	int err = posix_spawn(pid, hvkit, &fa, NULL, (char **)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return err ? -1 : 0;
}

void ctl_machine_kill(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

int ctl_machine_wait(pid_t *pid)
{
	int st;
	pid_t p = waitpid(*pid, &st, 0);
	*pid = 0;
	return p > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
