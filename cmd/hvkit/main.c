/* SPDX-License-Identifier: MIT */
/*
 * hvkit: the command. Subcommands grow with the project; `hvkit run` is the
 * main job and keeps its name as it grows from a channel loopback into the
 * VMM.
 */
#include <stdio.h>
#include <string.h>

#include "hvkit_cmd.h"

#define HVKIT_VERSION "0.1.0"

static const struct {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *what;
} commands[] = {
	{"run", cmd_run, "start a machine and its guest (see hvkit run --help)"},
	{"ctl", cmd_ctl, "control a running machine (see hvkit ctl --help)"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: hvkit COMMAND [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].what);
	fprintf(out, "  %-8s %s\n", "version", "print the version");
	fprintf(out, "\n'hvkit COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("hvkit %s\n", HVKIT_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "hvkit: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
