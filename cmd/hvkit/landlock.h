/* SPDX-License-Identifier: MIT */
/*
 * hvkit run --landlock (docs/sandbox.md): which files hvkit and everything
 * it starts may reach from then on, enforced by the kernel's Landlock LSM
 * (no library: three system calls). Set up while hvkit is one thread:
 * threads and processes started later inherit the restriction; files
 * already open stay usable.
 */
#ifndef HVKIT_LANDLOCK_H
#define HVKIT_LANDLOCK_H

#include <stdbool.h>
#include <stddef.h>

enum file_access {
	FILE_READ,       /* read files (and list directories) beneath */
	FILE_READ_WRITE, /* and write, create, remove, make sockets */
	FILE_EXECUTE,    /* read and execute (programs, their libraries) */
	FILE_MAKE_SOCKET, /* a directory: bind sockets in it, remove them */
};

struct file_rule {
	const char *path; /* a file or a directory (everything beneath) */
	enum file_access access;
	bool optional;    /* skipped if the path does not exist */
};

/* Parses "path=P,access=ro|rw" (--landlock-rule); the rule points into
 * spec. 0 or -EINVAL, with why. */
int file_rule_parse(char *spec, struct file_rule *out, char *why, size_t why_len);

/* The Landlock ABI version this kernel offers; 0 if none. */
int file_rules_abi(void);

/*
 * Restricts this process's file access to the rules (each path must
 * exist, unless the rule is optional). Sets no_new_privs. 0 or -errno, with why naming the path or the
 * step that failed.
 */
int file_rules_enforce(const struct file_rule *rules, size_t count, char *why, size_t why_len);

#endif
