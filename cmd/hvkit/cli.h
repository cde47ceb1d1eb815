/* SPDX-License-Identifier: MIT */
/* What hvkit's subcommands share (cli.c): strict parsing of the numbers
 * on their command lines, and the clock of their deadlines. */
#ifndef HVKIT_CMD_CLI_H
#define HVKIT_CMD_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* A whole number: decimal, or hex with 0x; no sign, no spaces, no
 * suffix, no overflow. false (and *out untouched) otherwise. */
bool cli_number(const char *text, uint64_t *out);

/* A number with an optional K, M or G suffix (powers of 1024). */
bool cli_size(const char *text, uint64_t *out);

/* MAJOR.MINOR, each a whole number. */
bool cli_version(const char *text, uint64_t *major, uint64_t *minor);

/* Seconds with up to nine decimals ("2", "0.2"): nanoseconds, at most
 * 2^63 - 1. */
bool cli_seconds(const char *text, uint64_t *ns);

/* CLOCK_MONOTONIC in milliseconds: deadlines (--timeout, ctl's waits). */
int64_t cli_now_ms(void);

#endif
