/* SPDX-License-Identifier: MIT */
/* Runs the hvkit ctl binary and collects what it prints (tests). */
#ifndef HVKIT_TEST_CTL_RUN_H
#define HVKIT_TEST_CTL_RUN_H

struct ctl_output {
	int status; /* exit status; -1 if it did not exit normally */
	char out[65536], err[4096];
};

/* HVKIT ctl ARGS... (NULL-terminated, at most 12). 0, or -1 if it could
 * not be run. */
int ctl_run(const char *hvkit, struct ctl_output *o, const char *first, ...);
/* HVKIT SUBCOMMAND ARGS..., likewise. */
int ctl_run_tool(const char *hvkit, struct ctl_output *o, const char *subcommand,
		 const char *first, ...);

/* Starts HVKIT with argv (argv[0] is HVKIT; NULL-terminated), its stdout
 * to /dev/null: 0 or -1. ctl_machine_kill ends it (SIGKILL) if *pid > 0;
 * ctl_machine_wait waits for it to exit and returns its exit status (-1 if
 * it did not exit normally). Both clear *pid. */
#include <sys/types.h>
int ctl_machine_start(const char *hvkit, const char *const *argv, pid_t *pid);
void ctl_machine_kill(pid_t *pid);
int ctl_machine_wait(pid_t *pid);

#endif
