/* SPDX-License-Identifier: MIT */
/*
 * File copy into a directory: the fcopy callbacks of struct ic_guest_ops
 * (guest/vsc/ic/ic_guest.h) for a guest with POSIX files, the process
 * guest. It lives with the POSIX port because the IC drivers reach files
 * only through those callbacks.
 *
 * Files land under root only: the host's path is taken relative to it
 * ("/a/b" and "a/b" alike), "." parts are skipped, ".." parts, empty names
 * and names with '/' are refused (-EACCES), and the walk opens each
 * directory with O_NOFOLLOW, so a symbolic link cannot lead out either.
 */
#ifndef HVKIT_IC_FCOPY_DIR_H
#define HVKIT_IC_FCOPY_DIR_H

#include <stddef.h>
#include <stdint.h>

struct ic_fcopy_dir;
struct ic_fcopy_dir *ic_fcopy_dir_new(const char *root);
void ic_fcopy_dir_free(struct ic_fcopy_dir *d);
/* Pure: the relative path host path + name becomes, or -EACCES. */
int ic_fcopy_relative(const char *path, const char *name, char *out, size_t size);
int ic_fcopy_dir_start(void *dir, const char *path, const char *name, uint32_t flags,
		       uint64_t size);
int ic_fcopy_dir_write(void *dir, uint64_t offset, const void *data, uint32_t len);
int ic_fcopy_dir_complete(void *dir);
int ic_fcopy_dir_cancel(void *dir);

#endif /* HVKIT_IC_FCOPY_DIR_H */
