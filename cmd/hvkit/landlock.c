/* SPDX-License-Identifier: MIT */
/*
 * Landlock for hvkit run (see landlock.h). The kernel's interface is
 * include/uapi/linux/landlock.h: a ruleset handling a set of file access
 * rights, a path-beneath rule per allowed place, then restrict_self.
 * Rights the kernel does not know (an older ABI) are left out of both the
 * handled set and the rules, so an older kernel restricts less rather
 * than refusing.
 */
#define _GNU_SOURCE
#include "landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ABI 3 (Linux 6.2); Debian 12's headers stop at ABI 2. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

/* Rights that apply to a file itself; the others only beneath a directory. */
#define FILE_RIGHTS                                                                        \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                      \
	 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)

#define READ_RIGHTS (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define WRITE_RIGHTS                                                                       \
	(LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |                     \
	 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |                  \
	 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_DIR |                       \
	 LANDLOCK_ACCESS_FS_MAKE_SOCK)
#define SOCKET_RIGHTS (LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_REMOVE_FILE)

int file_rules_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return abi < 0 ? 0 : (int)abi;
}

/* Every right of ABI 1, REFER from 2, TRUNCATE from 3. */
static uint64_t handled_rights(int abi)
{
	uint64_t rights = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;
	if (abi >= 2)
		rights |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
	return rights;
}

static uint64_t rights_of(enum file_access access)
{
	switch (access) {
	case FILE_READ:
		return READ_RIGHTS;
	case FILE_READ_WRITE:
		return READ_RIGHTS | WRITE_RIGHTS;
	case FILE_EXECUTE:
		return READ_RIGHTS | LANDLOCK_ACCESS_FS_EXECUTE;
	case FILE_MAKE_SOCKET:
		return SOCKET_RIGHTS;
	}
	return 0;
}

int file_rule_parse(char *spec, struct file_rule *out, char *why, size_t why_len)
{
	*out = (struct file_rule){.access = FILE_READ};
	char *save = NULL;
	for (char *kv = strtok_r(spec, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq) {
			snprintf(why, why_len, "'%s' is not KEY=VALUE", kv);
			return -EINVAL;
		}
		*eq = '\0';
		const char *v = eq + 1;
		if (!strcmp(kv, "path") && *v) {
			out->path = v;
		} else if (!strcmp(kv, "access") && (!strcmp(v, "ro") || !strcmp(v, "rw"))) {
			out->access = !strcmp(v, "rw") ? FILE_READ_WRITE : FILE_READ;
		} else {
			snprintf(why, why_len, "bad option '%s=%s' (path=P,access=ro|rw)", kv, v);
			return -EINVAL;
		}
	}
	if (!out->path) {
		snprintf(why, why_len, "path= is required");
		return -EINVAL;
	}
	return 0;
}

static int add_rule(int ruleset, const struct file_rule *rule, uint64_t handled, char *why,
		    size_t why_len)
{
	int fd = open(rule->path, O_PATH | O_CLOEXEC);
	struct stat st;
	if (fd < 0 && errno == ENOENT && rule->optional)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int err = -errno;
		if (fd >= 0)
			close(fd);
		snprintf(why, why_len, "%s: %s", rule->path, strerror(-err));
		return err;
	}
	uint64_t rights = rights_of(rule->access) & handled;
	if (!S_ISDIR(st.st_mode))
		rights &= FILE_RIGHTS;
	struct landlock_path_beneath_attr beneath = {.allowed_access = rights, .parent_fd = fd};
	long r = rights ? syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH,
				  &beneath, 0)
			: 0;
	int err = r < 0 ? -errno : 0;
	close(fd);
	if (err)
		snprintf(why, why_len, "%s: cannot add the rule: %s", rule->path, strerror(-err));
	return err;
}

int file_rules_enforce(const struct file_rule *rules, size_t count, char *why, size_t why_len)
{
	int abi = file_rules_abi();
	if (!abi) {
		snprintf(why, why_len, "this kernel has no Landlock (or it is not enabled)");
		return -ENOTSUP;
	}
	uint64_t handled = handled_rights(abi);
	struct landlock_ruleset_attr attr = {.handled_access_fs = handled};
	int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (ruleset < 0) {
		int err = -errno;
		snprintf(why, why_len, "cannot create a ruleset: %s", strerror(-err));
		return err;
	}
	int err = 0;
	for (size_t i = 0; !err && i < count; i++)
		err = add_rule(ruleset, &rules[i], handled, why, why_len);
	if (!err && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		err = -errno;
		snprintf(why, why_len, "no_new_privs: %s", strerror(-err));
	}
	if (!err && syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) {
		err = -errno;
		snprintf(why, why_len, "cannot restrict hvkit: %s", strerror(-err));
	}
	close(ruleset);
	return err;
}
