/* SPDX-License-Identifier: MIT */
/*
 * hvkit run's sandbox (docs/sandbox.md): capabilities dropped before the
 * machine starts, then a seccomp filter on every thread once it runs, and
 * a stricter one stacked on each vCPU thread. What a filtered thread may
 * not do it cannot do: a forbidden system call stops hvkit with a message
 * naming the call, before the call runs.
 */
#ifndef HVKIT_SANDBOX_H
#define HVKIT_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

/* Whether this hvkit was built with the sandbox (-Dsandbox, libseccomp
 * and libcap-ng); without it the calls below report -ENOTSUP. */
bool sandbox_available(void);

/* Whether this is a sanitizer build, whose filters also allow what the
 * sanitizer runtimes call to report errors and find leaks (exec, fork,
 * ptrace, /proc reads, executable mappings). */
bool sandbox_widened_for_sanitizers(void);

/*
 * Before the machine starts, while hvkit is one thread: gives up every
 * capability (the bounding set too, where hvkit may) but CAP_NET_ADMIN
 * when keep_net_admin (a TAP NIC is configured), and sets no_new_privs.
 * Threads started later inherit what is left. 0 or -errno, with why.
 */
int sandbox_drop_privileges(bool keep_net_admin, char *why, size_t why_len);

/*
 * Once the machine runs: loads the filter every hvkit thread keeps (what
 * any of them needs after set-up) on all threads at once (TSYNC). 0 or
 * -errno, with why.
 */
int sandbox_enter(char *why, size_t why_len);

/*
 * On a vCPU thread, after sandbox_enter: stacks the vCPU filter (its run
 * loop's calls only: no files opened, no sockets, no threads). Returns 0
 * or -errno.
 */
int sandbox_enter_vcpu(void);

#endif
