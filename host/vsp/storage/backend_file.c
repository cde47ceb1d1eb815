/* SPDX-License-Identifier: MIT */
/*
 * A raw image file (or block device) through io_uring. Workers share a
 * few rings, each used by one worker at a time: a request takes a free
 * ring, submits its read or write and waits for it. Writes with FUA carry
 * RWF_DSYNC; a flush is fdatasync; a discard punches a hole (reads of it
 * return zeros, matching the LBPRZ the SCSI target reports), falling back
 * to writing zeros where the file system cannot punch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <liburing.h>

#include "storage_backend.h"

#define DEFAULT_QUEUES 4u
#define MAX_IOV 1024 /* IOV_MAX */

struct file_queue {
	pthread_mutex_t lock;
	struct io_uring ring;
	bool ready;
};

struct file_backend {
	int fd;
	uint32_t nq;
	uint32_t next; /* round robin, atomic */
	struct file_queue q[];
};

static struct file_queue *queue_take(struct file_backend *f)
{
	uint32_t start = __atomic_fetch_add(&f->next, 1, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < f->nq; i++) {
		struct file_queue *q = &f->q[(start + i) % f->nq];
		if (pthread_mutex_trylock(&q->lock) == 0)
			return q;
	}
	struct file_queue *q = &f->q[start % f->nq];
	pthread_mutex_lock(&q->lock);
	return q;
}

/* One readv/writev through q's ring; the bytes done or a negative errno. */
static int uring_rw(struct file_queue *q, int fd, bool write, const struct iovec *iov, int cnt,
		    uint64_t off, bool dsync)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	if (!sqe)
		return -EBUSY;
	if (write)
		io_uring_prep_writev(sqe, fd, iov, (unsigned)cnt, off);
	else
		io_uring_prep_readv(sqe, fd, iov, (unsigned)cnt, off);
	if (dsync)
		sqe->rw_flags = RWF_DSYNC;
	int err = io_uring_submit(&q->ring);
	if (err < 0)
		return err;
	struct io_uring_cqe *cqe;
	do
		err = io_uring_wait_cqe(&q->ring, &cqe);
	while (err == -EINTR);
	if (err < 0)
		return err;
	int res = cqe->res;
	io_uring_cqe_seen(&q->ring, cqe);
	return res;
}

/* Moves every byte of iov, resubmitting the rest after a short transfer. */
static int file_rw(struct file_backend *f, bool write, const struct iovec *iov, int cnt,
		   uint64_t off, bool dsync)
{
	if (cnt > MAX_IOV)
		return -EINVAL;
	struct iovec v[MAX_IOV];
	memcpy(v, iov, sizeof(*v) * (size_t)cnt);
	struct iovec *cur = v;
	struct file_queue *q = queue_take(f);
	int err = 0;
	while (cnt > 0) {
		int n = uring_rw(q, f->fd, write, cur, cnt, off, dsync);
		if (n == -EINTR || n == -EAGAIN)
			continue;
		if (n < 0) {
			err = n;
			break;
		}
		if (n == 0) {
			err = -EIO; /* past the end of the file */
			break;
		}
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
	pthread_mutex_unlock(&q->lock);
	return err;
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
	for (uint32_t i = 0; i < f->nq; i++) {
		if (f->q[i].ready)
			io_uring_queue_exit(&f->q[i].ring);
		pthread_mutex_destroy(&f->q[i].lock);
	}
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
	uint32_t nq = cfg->queues ? cfg->queues : DEFAULT_QUEUES;
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
	struct file_backend *f = calloc(1, sizeof(*f) + sizeof(struct file_queue) * nq);
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	f->nq = nq;
	int err = 0;
	for (uint32_t i = 0; i < nq; i++) {
		pthread_mutex_init(&f->q[i].lock, NULL);
		if (!err) {
			err = io_uring_queue_init(4, &f->q[i].ring, 0);
			f->q[i].ready = err == 0;
		}
	}
	if (err) {
		file_free(f);
		return err;
	}
	*out = (struct storage_backend){
		.ops = &file_ops,
		.ctx = f,
		.size = size,
		.block_size = bs,
		.read_only = cfg->read_only,
	};
	return 0;
}
