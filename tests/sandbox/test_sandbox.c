/* SPDX-License-Identifier: MIT */
/*
 * hvkit run's sandbox (cmd/hvkit/sandbox.c) on real threads: each case
 * forks a child that enters the sandbox and then makes one call from a
 * thread other than the one that loaded the filter. Allowed calls work; a
 * forbidden one never runs: the child ends with status 70 and names the
 * call's number on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox.h"

enum layer { THREAD_FILTER, VCPU_FILTER };

/* Made before the sandbox, as hvkit's descriptors are. */
static int made_pipe[2];

typedef int (*call_fn)(void);

struct job {
	enum layer layer;
	call_fn call;
	int result;
};

/* A thread started before the sandbox, as hvkit's are: TSYNC must reach
 * it. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open;

static void *worker(void *arg)
{
	struct job *job = arg;
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	if (job->layer == VCPU_FILTER && sandbox_enter_vcpu()) {
		job->result = -1000;
		return NULL;
	}
	job->result = job->call();
	return NULL;
}

/* In the child: a worker thread, the sandbox, then the call on the
 * worker. Exits 0 when the call returned 0, 1 otherwise; the sandbox
 * itself exits 70 on a forbidden call. */
static void child(enum layer layer, call_fn call)
{
	struct job job = {.layer = layer, .call = call};
	if (pipe(made_pipe))
		_exit(3);
	pthread_t t;
	if (pthread_create(&t, NULL, worker, &job))
		_exit(3);
	char why[256];
	if (sandbox_enter(why, sizeof(why))) {
		fprintf(stderr, "sandbox_enter: %s\n", why);
		_exit(4);
	}
	pthread_mutex_lock(&gate_lock);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	pthread_join(t, NULL);
	if (job.result)
		fprintf(stderr, "call returned %d\n", job.result);
	_exit(job.result ? 1 : 0);
}

/* Runs call in a sandboxed child; returns its exit status (or 128 +
 * signal) and its stderr in err. */
static int run_sandboxed(enum layer layer, call_fn call, char *err, size_t err_len)
{
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		child(layer, call);
	}
	close(pipefd[1]);
	size_t got = 0;
	ssize_t n;
	while (got + 1 < err_len && (n = read(pipefd[0], err + got, err_len - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = 0;
	close(pipefd[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void assert_allowed(enum layer layer, call_fn call)
{
	char err[512];
	int status = run_sandboxed(layer, call, err, sizeof(err));
	if (status != 0)
		fail_msg("expected the call to run, got status %d: %s", status, err);
}

/* The call never runs: the sandbox names it and exits 70. */
static void assert_forbidden(enum layer layer, call_fn call, long nr)
{
	char err[512], want[64];
	int status = run_sandboxed(layer, call, err, sizeof(err));
	snprintf(want, sizeof(want), "forbidden system call %ld ", nr);
	if (status != 70 || !strstr(err, want))
		fail_msg("expected status 70 and '%s', got status %d: %s", want, status, err);
}

/* The same for a call made with every signal blocked (pthread_create
 * blocks them around clone): the kernel kills the process with SIGSYS. */
static void assert_killed(enum layer layer, call_fn call)
{
	char err[512];
	int status = run_sandboxed(layer, call, err, sizeof(err));
	if (status != 128 + SIGSYS)
		fail_msg("expected death by SIGSYS, got status %d: %s", status, err);
}

/* --- calls ------------------------------------------------------------ */

static int write_to_pipe(void)
{
	char c;
	if (write(made_pipe[1], "x", 1) != 1 || read(made_pipe[0], &c, 1) != 1)
		return -errno;
	return c == 'x' ? 0 : -EIO;
}

static int map_data(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	memset(p, 1, 4096);
	return munmap(p, 4096) ? -errno : 0;
}

static int map_code(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? -errno : 0;
}

static void *nothing(void *arg)
{
	return arg;
}

static int start_thread(void)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, nothing, NULL);
	return err ? -err : pthread_join(t, NULL);
}

static int fork_process(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	return pid < 0 ? -errno : 0;
}

static int exec_program(void)
{
	char *argv[] = {"/bin/true", NULL};
	execve(argv[0], argv, environ);
	return -errno;
}

static int raw_packet_socket(void)
{
	int fd = socket(AF_PACKET, SOCK_RAW, 0);
	return fd < 0 ? -errno : 0;
}

static int unix_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int open_file(void)
{
	int fd = open("/proc/self/status", O_RDONLY);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int terminal_ioctl(void)
{
	struct termios t;
	return ioctl(STDIN_FILENO, TCGETS, &t) ? -errno : 0;
}

/* KVM_GET_API_VERSION (_IO(0xAE, 0)) on a pipe: the filter lets KVM's
 * ioctls through, the pipe refuses it. */
static int kvm_ioctl(void)
{
	int r = ioctl(made_pipe[0], 0xae00, 0);
	int err = r < 0 ? errno : 0;
	return err == ENOTTY || err == EINVAL ? 0 : -err - 1;
}

/* TCFLSH on a pipe: the vCPU filter lets the console's flush through, the
 * pipe refuses it. */
static int terminal_flush(void)
{
	return ioctl(made_pipe[1], TCFLSH, TCIFLUSH) < 0 && errno == ENOTTY ? 0 : -EINVAL;
}

/* What glibc's qsort asks once before sorting more than 1 KiB (storvsp
 * sorts a request's page list on the vCPU thread that signalled). A vCPU
 * thread that could not stopped hvkit in a Linux guest's 1 MiB write. */
static int memory_size(void)
{
	struct sysinfo si;
	return sysinfo(&si) ? -errno : 0;
}

static int ptrace_self(void)
{
	return syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0) ? -errno : 0;
}

/* Seccomp mode 2 (filter) on this thread, with `filters` filters. */
static int seccomp_status(int filters)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/self/task/%ld/status", (long)syscall(SYS_gettid));
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	char want[64];
	snprintf(want, sizeof(want), "Seccomp_filters:\t%d\n", filters);
	return strstr(buf, "Seccomp:\t2\n") && strstr(buf, want) ? 0 : -EINVAL;
}

static int one_filter(void)
{
	return seccomp_status(1);
}

/* --- cases ------------------------------------------------------------ */

static void thread_filter_allows_what_hvkit_does(void **state)
{
	(void)state;
	assert_allowed(THREAD_FILTER, write_to_pipe);
	assert_allowed(THREAD_FILTER, map_data);
	assert_allowed(THREAD_FILTER, start_thread);
	assert_allowed(THREAD_FILTER, unix_socket);
	assert_allowed(THREAD_FILTER, open_file);
	assert_allowed(THREAD_FILTER, one_filter);
}

/* Sanitizer builds allow exec, fork, ptrace, executable mappings and
 * /proc reads: their runtimes need them (sandbox.c). */
#define SANITIZED sandbox_widened_for_sanitizers()

static void thread_filter_forbids_escapes(void **state)
{
	(void)state;
	assert_forbidden(THREAD_FILTER, raw_packet_socket, SYS_socket);
	if (SANITIZED)
		return;
	assert_forbidden(THREAD_FILTER, exec_program, SYS_execve);
	assert_forbidden(THREAD_FILTER, fork_process, SYS_clone);
	assert_forbidden(THREAD_FILTER, map_code, SYS_mmap);
	assert_forbidden(THREAD_FILTER, ptrace_self, SYS_ptrace);
}

static void vcpu_filter_allows_the_run_loop(void **state)
{
	(void)state;
	assert_allowed(VCPU_FILTER, write_to_pipe);
	assert_allowed(VCPU_FILTER, map_data);
	assert_allowed(VCPU_FILTER, kvm_ioctl);
	assert_allowed(VCPU_FILTER, terminal_flush);
	assert_allowed(VCPU_FILTER, memory_size);
}

/* Opening a file fails with EACCES (a library may try one lazily). */
static int open_file_refused(void)
{
	int fd = open("/proc/self/status", O_RDONLY);
	if (fd >= 0)
		close(fd);
	return fd < 0 && errno == EACCES ? 0 : -EPERM;
}

static void vcpu_filter_refuses_files(void **state)
{
	(void)state;
	if (!SANITIZED) /* the runtimes read /proc when they report */
		assert_allowed(VCPU_FILTER, open_file_refused);
}

static void vcpu_filter_forbids_new_descriptors(void **state)
{
	(void)state;
	assert_forbidden(VCPU_FILTER, unix_socket, SYS_socket);
	assert_killed(VCPU_FILTER, start_thread);
	assert_forbidden(VCPU_FILTER, terminal_ioctl, SYS_ioctl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(thread_filter_allows_what_hvkit_does),
		cmocka_unit_test(thread_filter_forbids_escapes),
		cmocka_unit_test(vcpu_filter_allows_the_run_loop),
		cmocka_unit_test(vcpu_filter_refuses_files),
		cmocka_unit_test(vcpu_filter_forbids_new_descriptors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
