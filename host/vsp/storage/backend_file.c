/* SPDX-License-Identifier: MIT */
/*
 * A raw image file (or block device). With aio=io_uring (the default) the
 * backend only offers its descriptor: the storvsp workers queue reads,
 * writes and flushes on their own io_uring, many in flight at once (see
 * storage_ring.c and docs/storage.md). The synchronous ops below serve
 * aio=threads (each worker runs one request at a time with preadv2 and
 * pwritev2), callers without a ring (tests, a kernel without io_uring) and
 * the commands that stay synchronous (UNMAP, WRITE SAME). Writes with FUA
 * carry RWF_DSYNC; a flush is fdatasync; a discard punches a hole (reads
 * of it return zeros, matching the LBPRZ the SCSI target reports), falling
 * back to writing zeros where the file system cannot punch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_backend.h"

#define MAX_IOV 1024 /* IOV_MAX */

struct file_backend {
	int fd;
};

/* Moves every byte of iov, going on after a short transfer. */
static int file_rw(struct file_backend *f, bool write, const struct iovec *iov, int cnt,
		   uint64_t off, bool dsync)
{
	if (cnt > MAX_IOV)
		return -EINVAL;
	struct iovec v[MAX_IOV];
	memcpy(v, iov, sizeof(*v) * (size_t)cnt);
	struct iovec *cur = v;
	while (cnt > 0) {
		ssize_t n = write ? pwritev2(f->fd, cur, cnt, (off_t)off, dsync ? RWF_DSYNC : 0)
				  : preadv2(f->fd, cur, cnt, (off_t)off, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* past the end of the file */
		off += (uint64_t)n;
		size_t left = (size_t)n;
		while (cnt > 0 && left >= cur->iov_len) {
			left -= cur->iov_len;
			cur++;
			cnt--;
		}
		if (cnt > 0) {
			cur->iov_base = (uint8_t *)cur->iov_base + left;
			cur->iov_len -= left;
		}
	}
	return 0;
}

static int file_readv(void *ctx, const struct iovec *iov, int iovcnt, uint64_t offset)
{
	return file_rw(ctx, false, iov, iovcnt, offset, false);
}

static int file_writev(void *ctx, const struct iovec *iov, int iovcnt, uint64_t offset, bool fua)
{
	return file_rw(ctx, true, iov, iovcnt, offset, fua);
}

static int file_flush(void *ctx)
{
	struct file_backend *f = ctx;
	return fdatasync(f->fd) ? -errno : 0;
}

static int write_zeroes(struct file_backend *f, uint64_t off, uint64_t len)
{
	static const uint8_t zero[65536];
	while (len) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);
		ssize_t w = pwrite(f->fd, zero, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

static int file_discard(void *ctx, uint64_t offset, uint64_t len)
{
	struct file_backend *f = ctx;
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
		      (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	return write_zeroes(f, offset, len);
}

static void file_free(void *ctx)
{
	struct file_backend *f = ctx;
	close(f->fd);
	free(f);
}

static const struct storage_backend_ops file_ops = {
	.readv = file_readv,
	.writev = file_writev,
	.flush = file_flush,
	.discard = file_discard,
	.free = file_free,
};

int storage_backend_file_open(const struct storage_file_config *cfg, struct storage_backend *out)
{
	uint32_t bs = cfg->block_size ? cfg->block_size : 512;
	if (bs != 512 && bs != 4096)
		return -EINVAL;
	int flags = (cfg->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (cfg->direct ? O_DIRECT : 0);
	int fd = open(cfg->path, flags);
	if (fd < 0)
		return -errno;
	struct stat st;
	uint64_t size = 0;
	if (fstat(fd, &st)) {
		int err = -errno;
		close(fd);
		return err;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size)) {
			int err = -errno;
			close(fd);
			return err;
		}
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		close(fd);
		return -EINVAL;
	}
	size -= size % bs; /* a partial last block is not addressable */
	if (!size) {
		close(fd);
		return -EINVAL;
	}
	struct file_backend *f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	*out = (struct storage_backend){
		.ops = &file_ops,
		.ctx = f,
		.size = size,
		.block_size = bs,
		.read_only = cfg->read_only,
		.uring = cfg->aio != STORAGE_AIO_THREADS,
		.fd = fd,
	};
	return 0;
}

int storage_aio_mode_parse(const char *s, enum storage_aio_mode *out)
{
	if (!strcmp(s, "io_uring"))
		*out = STORAGE_AIO_URING;
	else if (!strcmp(s, "threads"))
		*out = STORAGE_AIO_THREADS;
	else
		return -EINVAL;
	return 0;
}
