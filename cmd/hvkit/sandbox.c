/* SPDX-License-Identifier: MIT */
/*
 * hvkit run's sandbox; the rules and why each system call is allowed are
 * in docs/sandbox.md. Two seccomp filters, built with libseccomp:
 *
 * - the thread filter, loaded on every thread at once (TSYNC) once the
 *   machine runs: what hvkit's threads need after set-up (memory, I/O on
 *   descriptors they hold, sockets of the families hvkit speaks, files
 *   opened for hot-plugged disks, threads for hot-plugged devices); no
 *   exec, no fork, no ptrace, no mounts, no namespaces, no BPF, no
 *   keyrings, no executable memory;
 * - the vCPU filter, stacked on each vCPU thread (a call must pass both):
 *   the run loop and what it signals, no new descriptors of any kind.
 *
 * A forbidden call raises SIGSYS before it runs (SCMP_ACT_TRAP); the
 * handler names the call's number and the thread and ends hvkit with
 * status 70. Capabilities go first, with libcap-ng, while hvkit is still
 * one thread, since each thread keeps its own.
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifdef HVKIT_SANDBOX
#include <cap-ng.h>
#include <dlfcn.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <ucontext.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#ifndef HVKIT_SANDBOX

bool sandbox_available(void)
{
	return false;
}

bool sandbox_widened_for_sanitizers(void)
{
	return false;
}

int sandbox_drop_privileges(bool keep_net_admin, char *why, size_t why_len)
{
	(void)keep_net_admin;
	snprintf(why, why_len, "this hvkit was built without the sandbox (-Dsandbox)");
	return -ENOTSUP;
}

int sandbox_enter(char *why, size_t why_len)
{
	snprintf(why, why_len, "this hvkit was built without the sandbox (-Dsandbox)");
	return -ENOTSUP;
}

int sandbox_enter_vcpu(void)
{
	return -ENOTSUP;
}

#else

/* The sanitizer runtimes report errors and check for leaks at exit with
 * calls hvkit itself never makes (a tracer thread that ptraces the
 * others, /proc reads, the symbolizer); their builds allow those too. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* Every thread, after set-up, without conditions on the arguments. */
static const char *const thread_calls[] = {
	/* descriptors hvkit holds: disks, sockets, eventfds, the console */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"preadv2", "pwritev2", "lseek", "close", "fcntl", "dup", "dup3", "fstat",
	"newfstatat", "statx", "fsync", "fdatasync", "fallocate", "ftruncate",
	/* hot-plugged disks and file copies open files; sockets are unlinked
	 * at exit */
	"openat", "unlink", "unlinkat", "readlink", "readlinkat", "access", "faccessat",
	"faccessat2",
	/* a snapshot is written under a temporary name, then renamed */
	"rename", "renameat", "renameat2",
	/* the storage workers */
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	/* memory; executable mappings are refused below */
	"brk", "munmap", "mremap", "madvise",
	/* threads and their locks */
	"futex", "set_robust_list", "rseq", "sched_yield", "sched_getaffinity", "exit",
	"exit_group", "gettid", "getpid",
	/* clocks and timers */
	"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday",
	"timerfd_create", "timerfd_settime", "timerfd_gettime",
	/* event loops */
	"eventfd2", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "poll",
	"ppoll", "pipe2",
	/* sockets: control, serial, user networking, the process partition */
	"socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
	"getpeername", "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg",
	"recvmsg", "sendmmsg", "recvmmsg", "shutdown",
	/* KVM, TAP and terminals */
	"ioctl",
	/* signals: the control loop's stop signals, vCPU kicks */
	"rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "signalfd4",
	/* the process partition's guest: watched and stopped */
	"kill", "pidfd_open", "pidfd_send_signal", "waitid", "wait4",
	"getrandom", "uname",
	/* glibc's qsort asks the memory size once (sysconf(_SC_PHYS_PAGES))
	 * before sorting more than 1 KiB: storvsp's page-list check and the
	 * VMBus server's offer lists */
	"sysinfo",
};

/* A vCPU thread's run loop: the exits it handles and the devices it
 * signals on the way; nothing that makes a new descriptor. */
static const char *const vcpu_calls[] = {
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv2", "pwritev2",
	"fdatasync", "io_uring_enter", "brk", "munmap", "mremap", "madvise", "futex",
	"sched_yield", "exit", "exit_group", "gettid", "getpid", "clock_gettime",
	"clock_nanosleep", "nanosleep", "gettimeofday", "poll", "ppoll", "sendto",
	"recvfrom", "sendmsg", "recvmsg", "rt_sigprocmask", "rt_sigreturn",
	/* glibc's qsort, once (thread_calls): storvsp parses on this thread */
	"sysinfo",
};

/* What the sanitizer runtimes add, in their builds only. */
static const char *const sanitizer_calls[] = {
	"clone", "execve", "ptrace", "prctl", "open", "getdents", "getdents64", "sigaltstack",
	"rt_sigaction", "openat", "readlink", "pipe2", "dup2", "getppid", "prlimit64", "setrlimit",
	"sched_getaffinity", "wait4", "waitid", "kill", "process_vm_readv", "mmap",
	"mprotect", "tgkill", "uname", "newfstatat", "fstat", "lseek", "close",
	"sysinfo", "getrusage", "readlinkat",
};

static int allow_names(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not a call on this architecture */
		int err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (err)
			return err;
	}
	return 0;
}

/* mmap and mprotect without PROT_EXEC: nothing after set-up loads code. */
static int allow_data_mappings(scmp_filter_ctx ctx)
{
	int err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				   SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	return err;
}

/* Signals to this process's own threads only (pthread_kill). */
static int allow_own_thread_signals(scmp_filter_ctx ctx)
{
	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
}

/* What both filters start from: their list of calls, data mappings,
 * signals to hvkit's own threads. */
static int allow_basics(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	int err = allow_names(ctx, names, n);
	if (!err)
		err = allow_data_mappings(ctx);
	if (!err)
		err = allow_own_thread_signals(ctx);
	return err;
}

static int add_thread_rules(scmp_filter_ctx ctx)
{
	int err = allow_basics(ctx, thread_calls, sizeof(thread_calls) / sizeof(thread_calls[0]));
	/* New threads (hot-plugged devices' workers) but not processes. glibc
	 * tries clone3 first, whose flags a filter cannot see; ENOSYS sends
	 * it to clone. */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* The families hvkit speaks: Unix (control, serial, the process
	 * partition) and IP (user networking's host side). */
	static const int families[] = {AF_UNIX, AF_INET, AF_INET6};
	for (size_t i = 0; !err && i < sizeof(families) / sizeof(families[0]); i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				       SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]));
	/* More filters only: how vCPU threads stack theirs. */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(seccomp), 1,
				       SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER));
	/* Thread names only. */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				       SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
	return err;
}

static int add_vcpu_rules(scmp_filter_ctx ctx)
{
	int err = allow_basics(ctx, vcpu_calls, sizeof(vcpu_calls) / sizeof(vcpu_calls[0]));
	/* No files: an open fails with EACCES rather than stopping hvkit, as
	 * a library may try one lazily and cope (one did, rarely, at power
	 * off under load, and stopped a healthy VM). */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
	/* KVM's own ioctls (type KVMIO, 0xAE), and the one terminal ioctl the
	 * console's output makes from the exit path (--serial pty empties a
	 * terminal nobody reads, serial.c), no others. */
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff00, 0xae00));
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				       SCMP_A1(SCMP_CMP_EQ, TCFLSH));
	return err;
}

/* The handler's output, without stdio (it runs on the offending call). */
static size_t put_decimal(char *out, long v)
{
	char digits[24];
	size_t n = 0, len = 0;
	if (v < 0) {
		out[len++] = '-';
		v = -v;
	}
	do
		digits[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < sizeof(digits));
	while (n)
		out[len++] = digits[--n];
	return len;
}

static size_t put_hex(char *out, uint64_t v)
{
	size_t len = 0;
	for (int shift = 60; shift >= 0; shift -= 4)
		if (v >> shift || shift == 0 || len)
			out[len++] = "0123456789abcdef"[v >> shift & 15];
	return len;
}

static size_t put_text(char *out, const char *text)
{
	size_t len = strlen(text);
	memcpy(out, text, len);
	return len;
}

/* The executable's bounds (the linker's symbols). */
extern char __executable_start[], etext[];

/* prefix, then "(library symbol+0xoffset)" for an address, where the
 * dynamic loader knows it; nothing where it does not. dladdr is not
 * async-signal-safe; hvkit ends right after. */
static size_t put_place(char *out, const char *prefix, uint64_t addr)
{
	Dl_info info;
	if (!dladdr((void *)(uintptr_t)addr, &info) || !info.dli_fname)
		return 0;
	const char *file = strrchr(info.dli_fname, '/');
	size_t len = put_text(out, prefix);
	len += put_text(out + len, "(");
	len += put_text(out + len, file ? file + 1 : info.dli_fname);
	if (info.dli_sname) {
		len += put_text(out + len, " ");
		len += put_text(out + len, info.dli_sname);
		len += put_text(out + len, "+0x");
		len += put_hex(out + len, addr - (uint64_t)(uintptr_t)info.dli_saddr);
	} else {
		len += put_text(out + len, "+0x");
		len += put_hex(out + len, addr - (uint64_t)(uintptr_t)info.dli_fbase);
	}
	return len + put_text(out + len, ")");
}

/* Which filter the thread runs under, for the message. */
static __thread const char *thread_kind = "thread";

static void forbidden_call(int sig, siginfo_t *info, void *uctx)
{
	(void)sig;
	char msg[512];
	size_t len = put_text(msg, "hvkit: sandbox: forbidden system call ");
	len += put_decimal(msg + len, info->si_syscall);
	len += put_text(msg + len, " on ");
	len += put_text(msg + len, thread_kind);
	len += put_text(msg + len, " ");
	len += put_decimal(msg + len, syscall(SYS_gettid));
	/* Where: inside hvkit as an offset addr2line takes, else (a library)
	 * as an address. */
	uint64_t ip = (uint64_t)((ucontext_t *)uctx)->uc_mcontext.gregs[REG_RIP];
	uint64_t start = (uint64_t)(uintptr_t)__executable_start;
	bool inside = ip >= start && ip < (uint64_t)(uintptr_t)etext;
	len += put_text(msg + len, inside ? " at hvkit+0x" : " at 0x");
	len += put_hex(msg + len, inside ? ip - start : ip);
	len += put_place(msg + len, " ", ip);
	/* A system call wrapper is a leaf: its caller's return address is
	 * on top of the stack. */
	len += put_place(msg + len, ", called from ",
			 *(uint64_t *)((ucontext_t *)uctx)->uc_mcontext.gregs[REG_RSP]);
	len += put_text(msg + len, "; stopping (docs/sandbox.md, or --sandbox off)\n");
	ssize_t ignored = write(STDERR_FILENO, msg, len);
	(void)ignored;
	_exit(70); /* EXIT_HVKIT_FAILED */
}

static int load(scmp_filter_ctx ctx, bool all_threads)
{
	/* no_new_privs is set once, on every thread, with the first filter. */
	int err = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, all_threads);
	if (!err && !all_threads)
		err = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (!err && SANITIZED)
		err = allow_names(ctx, sanitizer_calls,
				  sizeof(sanitizer_calls) / sizeof(sanitizer_calls[0]));
	if (!err)
		err = seccomp_load(ctx);
	return err;
}

bool sandbox_available(void)
{
	return true;
}

bool sandbox_widened_for_sanitizers(void)
{
	return SANITIZED;
}

int sandbox_drop_privileges(bool keep_net_admin, char *why, size_t why_len)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		snprintf(why, why_len, "no_new_privs: %s", strerror(errno));
		return -errno;
	}
	capng_get_caps_process();
	if (capng_have_capabilities(CAPNG_SELECT_CAPS) == CAPNG_NONE)
		return 0; /* nothing to give up */
	bool bounds = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
	keep_net_admin = keep_net_admin && capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_ADMIN);
	capng_clear(bounds ? CAPNG_SELECT_ALL : CAPNG_SELECT_BOTH);
	if (keep_net_admin)
		capng_update(CAPNG_ADD,
			     CAPNG_EFFECTIVE | CAPNG_PERMITTED | (bounds ? CAPNG_BOUNDING_SET : 0),
			     CAP_NET_ADMIN);
	int err = capng_apply(bounds ? CAPNG_SELECT_ALL : CAPNG_SELECT_BOTH);
	if (err) {
		snprintf(why, why_len, "cannot drop capabilities (libcap-ng: %d)", err);
		return -EPERM;
	}
	return 0;
}

int sandbox_enter(char *why, size_t why_len)
{
	struct sigaction sa = {.sa_sigaction = forbidden_call, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL)) {
		snprintf(why, why_len, "SIGSYS handler: %s", strerror(errno));
		return -errno;
	}
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		snprintf(why, why_len, "libseccomp: cannot make a filter");
		return -ENOMEM;
	}
	int err = add_thread_rules(ctx);
	if (!err)
		err = load(ctx, true);
	seccomp_release(ctx);
	if (err)
		snprintf(why, why_len, "cannot load the seccomp filter: %s", strerror(-err));
	return err;
}

int sandbox_enter_vcpu(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return -ENOMEM;
	int err = add_vcpu_rules(ctx);
	if (!err)
		err = load(ctx, false);
	seccomp_release(ctx);
	if (!err)
		thread_kind = "vCPU thread";
	return err;
}

#endif
