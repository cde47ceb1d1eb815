/* SPDX-License-Identifier: MIT */
/*
 * File copy into a directory, for guests with POSIX files (the process
 * guest): the fcopy callbacks of ic_guest_ops over a root directory that
 * copied files cannot leave (see ic_fcopy_dir.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvkit/proto/ic.h"
#include "ic_fcopy_dir.h"

struct ic_fcopy_dir {
	int root;     /* O_PATH descriptor of the root */
	int dir, fd;  /* the file being copied and its directory, or -1 */
	char name[IC_FCOPY_MAX_PATH * 3];
	uint64_t size;
};

struct ic_fcopy_dir *ic_fcopy_dir_new(const char *root)
{
	struct ic_fcopy_dir *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->root = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d->root < 0) {
		free(d);
		return NULL;
	}
	d->dir = d->fd = -1;
	return d;
}

static void drop(struct ic_fcopy_dir *d)
{
	if (d->fd >= 0)
		close(d->fd);
	if (d->dir >= 0)
		close(d->dir);
	d->fd = d->dir = -1;
}

void ic_fcopy_dir_free(struct ic_fcopy_dir *d)
{
	if (!d)
		return;
	drop(d);
	close(d->root);
	free(d);
}

int ic_fcopy_relative(const char *path, const char *name, char *out, size_t size)
{
	size_t o = 0;
	if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EACCES;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EACCES;
		if (n && !(n == 1 && p[0] == '.')) {
			if (o + n + 1 >= size)
				return -ENAMETOOLONG;
			memcpy(out + o, p, n);
			o += n;
			out[o++] = '/';
		}
		p += n;
	}
	size_t n = strlen(name);
	if (o + n >= size)
		return -ENAMETOOLONG;
	memcpy(out + o, name, n + 1);
	return 0;
}

/* Opens (creating if asked) each directory of rel below the root, one
 * component at a time, never following a link. Returns the last one's
 * descriptor and leaves the file name's offset in *name. */
static int walk(struct ic_fcopy_dir *d, char *rel, bool create, size_t *name)
{
	int dir = openat(d->root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	char *p = rel;
	for (char *slash; dir >= 0 && (slash = strchr(p, '/')); p = slash + 1) {
		*slash = '\0';
		if (create && mkdirat(dir, p, 0755) && errno != EEXIST) {
			int e = -errno;
			close(dir);
			return e;
		}
		int next = openat(dir, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = -errno;
		close(dir);
		if (next < 0)
			return e == -ELOOP || e == -ENOTDIR ? -EACCES : e;
		dir = next;
	}
	*name = (size_t)(p - rel);
	return dir < 0 ? -errno : dir;
}

int ic_fcopy_dir_start(void *ctx, const char *path, const char *name, uint32_t flags,
		       uint64_t size)
{
	struct ic_fcopy_dir *d = ctx;
	char rel[IC_FCOPY_MAX_PATH * 6 + 2];
	int err = ic_fcopy_relative(path, name, rel, sizeof(rel));
	if (err)
		return err;
	drop(d); /* a copy the host abandoned */
	size_t at;
	int dir = walk(d, rel, flags & IC_FCOPY_FLAG_CREATE_PATH, &at);
	if (dir < 0)
		return dir;
	int oflags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
		     (flags & IC_FCOPY_FLAG_OVERWRITE ? O_TRUNC : O_EXCL);
	int fd = openat(dir, rel + at, oflags, 0644);
	if (fd < 0) {
		err = errno == ELOOP ? -EACCES : -errno;
		close(dir);
		return err;
	}
	d->dir = dir;
	d->fd = fd;
	d->size = size;
	strcpy(d->name, rel + at);
	return 0;
}

int ic_fcopy_dir_write(void *ctx, uint64_t offset, const void *data, uint32_t len)
{
	struct ic_fcopy_dir *d = ctx;
	if (d->fd < 0 || offset > d->size || len > d->size - offset)
		return -EINVAL; /* no copy started, or past the size announced */
	for (uint32_t done = 0; done < len;) {
		ssize_t n = pwrite(d->fd, (const uint8_t *)data + done, len - done,
				   (off_t)(offset + done));
		if (n < 0)
			return -errno;
		done += (uint32_t)n;
	}
	return 0;
}

int ic_fcopy_dir_complete(void *ctx)
{
	struct ic_fcopy_dir *d = ctx;
	if (d->fd < 0)
		return -EINVAL;
	int err = fsync(d->fd) ? -errno : 0;
	drop(d);
	return err;
}

int ic_fcopy_dir_cancel(void *ctx)
{
	struct ic_fcopy_dir *d = ctx;
	if (d->fd >= 0)
		unlinkat(d->dir, d->name, 0);
	drop(d);
	return 0;
}
