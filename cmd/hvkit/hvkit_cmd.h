/* SPDX-License-Identifier: MIT */
/* The hvkit command's subcommands. */
#ifndef HVKIT_CMD_H
#define HVKIT_CMD_H

int cmd_run(int argc, char **argv);
int cmd_ctl(int argc, char **argv);

#endif
