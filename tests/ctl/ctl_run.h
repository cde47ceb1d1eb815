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

#endif
