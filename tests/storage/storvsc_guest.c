/* SPDX-License-Identifier: MIT */
/*
 * A process-partition guest for the storvsc end-to-end tests: the VMBus
 * client and storvsc over the POSIX port, against storvsp and real image
 * files. One scenario per run; exit 0 if every check held.
 *
 *   hvkit-test-storvsc-guest SCENARIO [ARG...]
 *
 *   integrity IOS SEED     random reads/writes (sizes, alignments, SG lists)
 *                          over every channel against a model of LUN 0,
 *                          then discard and flush
 *   errors                 LUN 0 read-write, LUN 1 read-only: out-of-range
 *                          and write-protect sense decoded, disk still usable
 *   stream                 QD 32 until the controller is removed: every
 *                          request completes exactly once
 *   durable LBA            writes a pattern at LBA of LUN 0, flushes, says
 *                          "durable" on stdout and waits to be killed
 *   hibernate              writes LUN 0, suspends and resumes the bus
 *                          (hibernation.rst): the same controller object
 *                          reads its data back over a channel per VP again
 *   hotplug                LUN 0 at start; waits for LUN 1 (rescan), writes
 *                          0x33 at its LBA 1 and reads it back, then
 *                          writes 0x44 at LBA 2 (the host's sign that
 *                          the disk may go), waits for it to go
 *   bench BYTES QD RANDOM WRITE MS OUT
 *                          keeps QD requests of BYTES in flight on LUN 0
 *                          for MS ms (resubmitting from the completion),
 *                          writes "ios ns cpu_ns" to the file OUT
 *   --...                  (as hvkit run starts a guest) hotplug, for the
 *                          control-socket test (tests/storage/ctl_disk.sh)
 *   evil                   against tests/storage/evil_storvsp.c: every bad
 *                          completion is refused, counted, and fails only
 *                          its own request
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv_guest.h"
#include "hvkit/proto/storvsc.h"
#include "hvkit/scsi.h"
#include "posix.h"
#include "process_guest.h"
#include "storvsc.h"
#define HVKIT_EVIL_STORVSP_GUEST
#include "evil_storvsp.h"
#include "vmbus_client.h"

static struct hv_posix *px;
static const struct hv_port *port;
static struct hv_guest guest;
static struct vmbus_client *client;
static struct storvsc_driver *drv;
static struct storvsc *ctl;
static volatile int rescans, detached;
static int failures;

#define CHECK(cond, ...)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "storvsc guest: check failed (line %d): ", __LINE__); \
			fprintf(stderr, __VA_ARGS__);                                      \
			fputc('\n', stderr);                                               \
			failures++;                                                        \
		}                                                                          \
	} while (0)

static void on_attached(void *ctx, struct storvsc *s)
{
	(void)ctx;
	__atomic_store_n(&ctl, s, __ATOMIC_RELEASE);
}

static void on_detached(void *ctx, struct storvsc *s)
{
	(void)ctx;
	(void)s;
	__atomic_store_n(&detached, 1, __ATOMIC_RELEASE);
}

static void on_rescan(void *ctx, struct storvsc *s)
{
	(void)ctx;
	(void)s;
	__atomic_add_fetch(&rescans, 1, __ATOMIC_RELEASE);
}

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* Runs client work until cond() or 10 s. */
static bool settle_until(bool (*cond)(void))
{
	for (int i = 0; i < 2000; i++) {
		vmbus_client_process(client);
		if (cond())
			return true;
		vmbus_client_wait_work(client, 5000000);
	}
	return false;
}

static bool have_controller(void)
{
	return __atomic_load_n(&ctl, __ATOMIC_ACQUIRE) != NULL;
}

static uint32_t want_channels;
static bool have_channels(void)
{
	struct storvsc_stats st;
	storvsc_get_stats(ctl, &st);
	return st.channels >= want_channels;
}

static void *pages(uint32_t n)
{
	void *p = port->alloc_pages(port->ctx, n);
	if (!p) {
		fprintf(stderr, "storvsc guest: out of guest memory\n");
		exit(1);
	}
	return p;
}

/* ---- integrity ---- */

#define QD 16
#define MAX_BLOCKS 96

struct req {
	struct storvsc_io io;
	struct storvsc_sg sg[3];
	uint8_t *buf;         /* 26 pages of guest memory */
	uint8_t *data;        /* where the transfer starts in buf */
	volatile int done;
};

static void req_done(void *arg, struct storvsc_io *io)
{
	(void)io;
	__atomic_store_n(&((struct req *)arg)->done, 1, __ATOMIC_RELEASE);
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Splits [data, data+len) into 1-3 segments cut at page boundaries. */
static uint32_t split(struct req *r, uint32_t len)
{
	uintptr_t a = (uintptr_t)r->data, end = a + len;
	uint32_t n = 0;
	uintptr_t cut1 = (a + 4096) & ~(uintptr_t)4095;
	uintptr_t pieces = (rnd() % 3) + 1;
	if (pieces == 1 || cut1 >= end) {
		r->sg[n++] = (struct storvsc_sg){(void *)a, len};
		return n;
	}
	r->sg[n++] = (struct storvsc_sg){(void *)a, (uint32_t)(cut1 - a)};
	uintptr_t cut2 = cut1 + 4096 * (1 + rnd() % 4);
	if (pieces == 3 && cut2 < end) {
		r->sg[n++] = (struct storvsc_sg){(void *)cut1, (uint32_t)(cut2 - cut1)};
		cut1 = cut2;
	}
	r->sg[n++] = (struct storvsc_sg){(void *)cut1, (uint32_t)(end - cut1)};
	return n;
}

static bool overlaps(struct req *rs, int n, uint64_t lba, uint32_t blocks)
{
	for (int i = 0; i < n; i++)
		if (lba < rs[i].io.lba + rs[i].io.blocks && rs[i].io.lba < lba + blocks)
			return true;
	return false;
}

static void wait_all(struct req *rs, int n)
{
	for (int i = 0; i < n; i++)
		while (!__atomic_load_n(&rs[i].done, __ATOMIC_ACQUIRE))
			sched_yield();
}

static void integrity(uint32_t ios, uint64_t seed)
{
	struct storvsc_disk d;
	CHECK(storvsc_disk(ctl, 0, &d), "no LUN 0");
	if (!d.present)
		return;
	uint32_t bs = d.block_size;
	uint64_t size = d.blocks * bs;
	uint8_t *model = calloc(1, size); /* the image starts zeroed */
	struct req *rs = calloc(QD, sizeof(*rs));
	for (int i = 0; i < QD; i++)
		rs[i].buf = pages(MAX_BLOCKS * 512 / 4096 + 2);
	rng_state = seed | 1;
	uint32_t done_ios = 0, reads = 0, writes = 0, mismatches = 0, errs = 0;
	while (done_ios < ios) {
		int n = 0;
		for (; n < QD && done_ios + (uint32_t)n < ios; n++) {
			struct req *r = &rs[n];
			uint32_t blocks = 1 + (uint32_t)(rnd() % (MAX_BLOCKS * 512 / bs));
			uint64_t lba;
			do
				lba = rnd() % (d.blocks - blocks + 1);
			while (overlaps(rs, n, lba, blocks));
			bool write = rnd() & 1;
			/* Any 4-byte aligned start in the first page. */
			r->data = r->buf + (rnd() % 1024) * 4;
			uint32_t len = blocks * bs;
			if (write) {
				for (uint32_t k = 0; k < len; k++)
					r->data[k] = (uint8_t)rnd();
				memcpy(model + lba * bs, r->data, len);
			} else {
				memset(r->data, 0xee, len);
			}
			r->done = 0;
			r->io = (struct storvsc_io){.op = write ? STORVSC_WRITE : STORVSC_READ,
						    .lun = 0, .lba = lba, .blocks = blocks,
						    .sg = r->sg, .sg_count = split(r, len),
						    .done = req_done, .arg = r};
			int err;
			while ((err = storvsc_submit(ctl, &r->io)) == -EAGAIN)
				sched_yield();
			CHECK(err == 0, "submit: %d", err);
			if (err)
				r->done = 1;
		}
		wait_all(rs, n);
		for (int i = 0; i < n; i++) {
			struct req *r = &rs[i];
			if (r->io.status) {
				errs++;
				continue;
			}
			if (r->io.op == STORVSC_READ) {
				reads++;
				if (memcmp(r->data, model + r->io.lba * bs, r->io.blocks * bs))
					mismatches++;
			} else {
				writes++;
			}
		}
		done_ios += (uint32_t)n;
	}
	CHECK(errs == 0 && mismatches == 0, "%u errors, %u mismatches in %u I/Os", errs,
	      mismatches, ios);
	/* Discard reads back as zeros (LBPRZ); a flush is acknowledged. */
	if (d.thin) {
		CHECK(storvsc_discard(ctl, 0, 8, 16) == 0, "discard");
		memset(model + 8 * bs, 0, 16 * bs);
	}
	CHECK(storvsc_flush(ctl, 0) == 0, "flush");
	/* The whole disk against the model, 64 blocks at a time. */
	uint8_t *buf = rs[0].buf;
	for (uint64_t lba = 0; lba < d.blocks; lba += 16) {
		uint32_t n = d.blocks - lba < 16 ? (uint32_t)(d.blocks - lba) : 16;
		int err = storvsc_read(ctl, 0, lba, n, buf);
		if (err || memcmp(buf, model + lba * bs, n * bs)) {
			CHECK(0, "final read of %llu: %d or mismatch", (unsigned long long)lba, err);
			break;
		}
	}
	struct storvsc_stats st;
	storvsc_get_stats(ctl, &st);
	uint32_t used = 0;
	for (int i = 0; i < 8; i++)
		used += st.per_channel[i] > 0;
	CHECK(used >= (st.channels < 2 ? st.channels : 2), "completions on %u channels only", used);
	CHECK(st.bad_packets == 0, "%llu bad packets", (unsigned long long)st.bad_packets);
	fprintf(stderr, "integrity: %u reads, %u writes, %u channels, version %#x\n", reads, writes,
	       st.channels, st.version);
	free(model);
	free(rs);
}

/* ---- errors ---- */

static void errors(void)
{
	struct storvsc_disk d0, d1;
	CHECK(storvsc_disk(ctl, 0, &d0) && !d0.read_only, "LUN 0 read-write");
	CHECK(storvsc_disk(ctl, 1, &d1) && d1.read_only, "LUN 1 read-only");
	if (!d0.present || !d1.present)
		return;
	uint8_t *buf = pages(4);
	struct storvsc_sg sg = {buf, d0.block_size};
	/* Past the end. */
	struct storvsc_io io = {.op = STORVSC_READ, .lun = 0, .lba = d0.blocks, .blocks = 1,
				.sg = &sg, .sg_count = 1};
	int err = storvsc_io_sync(ctl, &io);
	CHECK(err == -ERANGE, "read past the end: %d", err);
	CHECK(io.sense.valid && io.sense.key == SCSI_SENSE_ILLEGAL_REQUEST && io.sense.asc == 0x21,
	      "sense %d %#x/%#x", io.sense.valid, io.sense.key, io.sense.asc);
	/* Write protected. */
	sg.len = d1.block_size;
	io = (struct storvsc_io){.op = STORVSC_WRITE, .lun = 1, .lba = 0, .blocks = 1, .sg = &sg,
				 .sg_count = 1};
	err = storvsc_io_sync(ctl, &io);
	CHECK(err == -EROFS, "write to read-only: %d", err);
	CHECK(io.sense.valid && io.sense.key == SCSI_SENSE_DATA_PROTECT && io.sense.asc == 0x27,
	      "sense %d %#x/%#x", io.sense.valid, io.sense.key, io.sense.asc);
	/* Malformed requests never reach the host. */
	struct storvsc_sg bad[2] = {{buf, 100}, {buf + 4096, d0.block_size - 100}};
	io = (struct storvsc_io){.op = STORVSC_WRITE, .lun = 0, .lba = 0, .blocks = 1, .sg = bad,
				 .sg_count = 2};
	CHECK(storvsc_submit(ctl, &io) == -EINVAL, "SG with a hole accepted");
	io = (struct storvsc_io){.op = STORVSC_READ, .lun = 5, .lba = 0, .blocks = 1, .sg = &sg,
				 .sg_count = 1};
	CHECK(storvsc_submit(ctl, &io) == -ENODEV, "LUN 5 accepted");
	/* Still usable. */
	memset(buf, 0x5a, d0.block_size);
	CHECK(storvsc_write(ctl, 0, 3, 1, buf) == 0, "write after errors");
	memset(buf, 0, d0.block_size);
	CHECK(storvsc_read(ctl, 0, 3, 1, buf) == 0 && buf[0] == 0x5a && buf[d0.block_size - 1] == 0x5a,
	      "read after errors");
	CHECK(storvsc_read(ctl, 1, 0, 1, buf) == 0, "read of the read-only disk");
	struct storvsc_stats st;
	storvsc_get_stats(ctl, &st);
	CHECK(st.errors == 2, "%llu errors counted", (unsigned long long)st.errors);
	fprintf(stderr, "errors: ok\n");
}

/* ---- stream until removal ---- */

#define SQD 32
static void stream(void)
{
	struct storvsc_disk d;
	CHECK(storvsc_disk(ctl, 0, &d), "no LUN 0");
	struct req *rs = calloc(SQD, sizeof(*rs));
	uint64_t submitted = 0, completed = 0, ok = 0, failed = 0;
	uint32_t blocks = 8192 / d.block_size;
	for (int i = 0; i < SQD; i++) {
		rs[i].buf = pages(2);
		rs[i].done = 1;
		rs[i].io.status = -1000; /* not yet used */
	}
	bool gone = false;
	for (int round = 0; round < 2000000 && !gone; round++) {
		for (int i = 0; i < SQD && !gone; i++) {
			struct req *r = &rs[i];
			if (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE))
				continue;
			if (r->io.status != -1000) {
				completed++;
				if (r->io.status == 0)
					ok++;
				else
					failed++;
				r->io.status = -1000;
			}
			r->sg[0] = (struct storvsc_sg){r->buf, blocks * d.block_size};
			r->done = 0;
			r->io = (struct storvsc_io){.op = (i & 1) ? STORVSC_WRITE : STORVSC_READ,
						    .lun = 0, .lba = (uint64_t)i * blocks,
						    .blocks = blocks, .sg = r->sg, .sg_count = 1,
						    .done = req_done, .arg = r};
			int err = storvsc_submit(ctl, &r->io);
			if (err == 0) {
				submitted++;
			} else {
				r->done = 1;
				r->io.status = -1000;
				if (err == -ENODEV)
					gone = true;
				else
					CHECK(err == -EAGAIN, "submit: %d", err);
			}
		}
		vmbus_client_process(client); /* runs the removal */
	}
	CHECK(gone, "the controller never went");
	/* Every request submitted completes, each exactly once. */
	for (int t = 0; t < 1000; t++) {
		bool all = true;
		for (int i = 0; i < SQD; i++)
			all &= __atomic_load_n(&rs[i].done, __ATOMIC_ACQUIRE);
		if (all)
			break;
		vmbus_client_process(client);
		sleep_ms(10);
	}
	for (int i = 0; i < SQD; i++) {
		struct req *r = &rs[i];
		CHECK(r->done, "request %d never completed", i);
		if (r->done && r->io.status != -1000) {
			completed++;
			if (r->io.status == 0)
				ok++;
			else
				failed++;
		}
	}
	CHECK(completed == submitted, "%llu submitted, %llu completed",
	      (unsigned long long)submitted, (unsigned long long)completed);
	CHECK(ok > 0, "nothing succeeded before the removal");
	struct storvsc_stats st;
	storvsc_get_stats(ctl, &st);
	CHECK(st.submitted == st.completed, "driver: %llu submitted, %llu completed",
	      (unsigned long long)st.submitted, (unsigned long long)st.completed);
	fprintf(stderr, "stream: %llu submitted, %llu ok, %llu failed at removal\n",
	       (unsigned long long)submitted, (unsigned long long)ok, (unsigned long long)failed);
	free(rs);
}

/* ---- durability ---- */

static void durable(uint64_t lba)
{
	struct storvsc_disk d;
	CHECK(storvsc_disk(ctl, 0, &d), "no LUN 0");
	uint8_t *buf = pages(4);
	for (uint32_t k = 0; k < 4 * d.block_size; k++)
		buf[k] = (uint8_t)(k * 7 + 1);
	CHECK(storvsc_write(ctl, 0, lba, 4, buf) == 0, "write");
	CHECK(storvsc_flush(ctl, 0) == 0, "flush");
	printf(failures ? "failed\n" : "durable\n");
	fflush(stdout);
	/* The host is killed now; go when it is (or after 30 s). */
	pid_t parent = getppid();
	for (int i = 0; i < 300 && getppid() == parent; i++)
		sleep_ms(100);
	exit(0);
}

/* ---- hibernation ---- */

static void hibernate(void)
{
	struct storvsc_disk d;
	CHECK(storvsc_disk(ctl, 0, &d), "no LUN 0");
	uint8_t *buf = pages(4), *back = pages(4);
	for (uint32_t k = 0; k < 4 * d.block_size; k++)
		buf[k] = (uint8_t)(k * 13 + 5);
	CHECK(storvsc_write(ctl, 0, 8, 4, buf) == 0, "write before");
	struct storvsc *before = ctl;

	CHECK(vmbus_client_suspend(client) == 0, "suspend");
	/* Suspended: the controller refuses requests, nothing is lost. */
	CHECK(storvsc_read(ctl, 0, 8, 4, back) == -ESHUTDOWN, "read while suspended");
	CHECK(vmbus_client_resume(client) == 0, "resume");
	CHECK(ctl == before && !detached, "the controller was not kept");
	CHECK(settle_until(have_channels), "fewer channels than VPs after the resume");
	memset(back, 0, 4 * d.block_size);
	CHECK(storvsc_read(ctl, 0, 8, 4, back) == 0, "read after");
	CHECK(memcmp(buf, back, 4 * d.block_size) == 0, "data changed across the hibernation");
	struct vmbus_client_stats st;
	vmbus_client_get_stats(client, &st);
	CHECK(st.resumed == 1, "%u resumed", st.resumed);
	integrity(200, 7); /* every channel works */
}

/* ---- hot plug ---- */

static bool rescan_seen(void)
{
	return __atomic_load_n(&rescans, __ATOMIC_ACQUIRE) > 0;
}

static bool wait_lun(uint8_t lun, bool present)
{
	for (int i = 0; i < 6; i++) { /* a minute at most */
		struct storvsc_disk d;
		if (settle_until(rescan_seen)) {
			__atomic_store_n(&rescans, 0, __ATOMIC_RELEASE);
			storvsc_rescan(ctl);
		}
		if (storvsc_disk(ctl, lun, &d) == present)
			return true;
	}
	return false;
}

static void hotplug(void)
{
	CHECK(wait_lun(1, true), "LUN 1 never came");
	uint8_t *buf = pages(1);
	memset(buf, 0x33, 512);
	CHECK(storvsc_write(ctl, 1, 1, 1, buf) == 0, "write to the new disk");
	memset(buf, 0, 512);
	CHECK(storvsc_read(ctl, 1, 1, 1, buf) == 0 && buf[511] == 0x33, "read of the new disk");
	memset(buf, 0x44, 512);
	CHECK(storvsc_write(ctl, 1, 2, 1, buf) == 0, "write of the done marker");
	CHECK(wait_lun(1, false), "LUN 1 never went");
	struct storvsc_sg sg = {buf, 512};
	struct storvsc_io io = {.op = STORVSC_READ, .lun = 1, .blocks = 1, .sg = &sg, .sg_count = 1};
	CHECK(storvsc_submit(ctl, &io) == -ENODEV, "I/O to a removed disk accepted");
	fprintf(stderr, "hotplug: ok\n");
}

/* ---- bench ---- */

/* VPs whose completions the benchmark counts apart. */
#define BENCH_MAX_VPS 8

struct bench {
	uint32_t bytes, blocks;
	uint64_t disk_blocks;
	bool random, write, stop;
	uint64_t seq, rng, ios, inflight;
	/* Completions per VP they ran on: storvsc completes a channel's
	 * requests on that channel's VP, so these are per channel. */
	uint64_t vp_ios[BENCH_MAX_VPS];
};
static struct bench bench_state;

static void bench_next(struct bench *b, struct req *r)
{
	uint64_t slots = b->disk_blocks / b->blocks;
	uint64_t k = __atomic_fetch_add(&b->seq, 1, __ATOMIC_RELAXED);
	if (b->random) {
		k = k * 6364136223846793005ull + 1442695040888963407ull;
		k >>= 23;
	}
	r->io.lba = k % slots * b->blocks;
}

static void bench_done(void *arg, struct storvsc_io *io)
{
	struct req *r = arg;
	struct bench *b = &bench_state;
	if (io->status)
		__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&b->ios, 1, __ATOMIC_RELAXED);
	uint32_t vp = port->current_vp(port->ctx);
	if (vp < BENCH_MAX_VPS)
		__atomic_add_fetch(&b->vp_ios[vp], 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&b->stop, __ATOMIC_RELAXED) || io->status) {
		__atomic_sub_fetch(&b->inflight, 1, __ATOMIC_RELEASE);
		return;
	}
	/* Resubmitted from the completion: no thread hand-off per I/O. */
	bench_next(b, r);
	if (storvsc_submit(ctl, &r->io))
		__atomic_sub_fetch(&b->inflight, 1, __ATOMIC_RELEASE);
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void run_bench(uint32_t bytes, uint32_t qd, bool random, bool write, uint32_t ms,
		      const char *out)
{
	struct storvsc_disk d;
	CHECK(storvsc_disk(ctl, 0, &d), "no LUN 0");
	if (!d.present || qd > 256)
		return;
	struct bench *b = &bench_state;
	*b = (struct bench){.bytes = bytes, .blocks = bytes / d.block_size,
			    .disk_blocks = d.blocks, .random = random, .write = write};
	struct req *rs = calloc(qd, sizeof(*rs));
	for (uint32_t i = 0; i < qd; i++) {
		struct req *r = &rs[i];
		r->buf = pages(bytes / 4096);
		memset(r->buf, (int)i, bytes);
		r->sg[0] = (struct storvsc_sg){r->buf, bytes};
		r->io = (struct storvsc_io){.op = write ? STORVSC_WRITE : STORVSC_READ,
					    .blocks = b->blocks, .sg = r->sg, .sg_count = 1,
					    .done = bench_done, .arg = r};
	}
	uint64_t t0 = wall_ns(), c0 = cpu_ns();
	b->inflight = qd;
	for (uint32_t i = 0; i < qd; i++) {
		bench_next(b, &rs[i]);
		int err;
		while ((err = storvsc_submit(ctl, &rs[i].io)) == -EAGAIN)
			sched_yield();
		if (err)
			__atomic_sub_fetch(&b->inflight, 1, __ATOMIC_RELEASE);
	}
	sleep_ms((int)ms);
	__atomic_store_n(&b->stop, true, __ATOMIC_RELAXED);
	while (__atomic_load_n(&b->inflight, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	uint64_t t = wall_ns() - t0, c = cpu_ns() - c0;
	FILE *f = fopen(out, "w");
	CHECK(f != NULL, "cannot write %s", out);
	if (f) {
		fprintf(f, "%llu %llu %llu\n", (unsigned long long)b->ios, (unsigned long long)t,
			(unsigned long long)c);
		/* Then each VP's share, in VP order. */
		uint32_t vps = hv_posix_vp_count(px);
		for (uint32_t vp = 0; vp < vps && vp < BENCH_MAX_VPS; vp++)
			fprintf(f, "%s%llu", vp ? " " : "", (unsigned long long)b->vp_ios[vp]);
		fprintf(f, "\n");
		fclose(f);
	}
	free(rs); /* the pages stay with the partition */
}

/* ---- a malicious host ---- */

static int evil_io(enum evil_mode mode, bool with_data, struct storvsc_io *io)
{
	static uint8_t *buf;
	static struct storvsc_sg sg;
	if (!buf)
		buf = pages(1);
	sg = (struct storvsc_sg){buf, 512};
	*io = (struct storvsc_io){.op = STORVSC_SCSI, .lun = 0, .cdb_len = 6,
				  .cdb = {SCSI_TEST_UNIT_READY, (uint8_t)mode}};
	if (with_data) {
		io->data_in = true;
		io->xfer = 512;
		io->sg = &sg;
		io->sg_count = 1;
	}
	return storvsc_io_sync(ctl, io);
}

static uint64_t bad_packets(void)
{
	struct storvsc_stats st;
	storvsc_get_stats(ctl, &st);
	return st.bad_packets;
}

static void evil(void)
{
	static const struct {
		enum evil_mode mode;
		bool data;
		int expect;
		uint64_t bad; /* bad packets it adds */
	} cases[] = {
		{EVIL_NONE, false, 0, 0},          {EVIL_SHORT, false, -EBADMSG, 1},
		{EVIL_UNKNOWN_ID, false, 0, 2},    {EVIL_WRONG_OP, false, -EBADMSG, 1},
		{EVIL_SENSE_LEN, false, -EBADMSG, 1}, {EVIL_XFER_LEN, true, -EBADMSG, 1},
		{EVIL_NONE, true, 0, 0},           {EVIL_DUPLICATE, false, 0, 1},
		{EVIL_UNSOLICITED, false, 0, 1},   {EVIL_DESC_SENSE, false, -ERANGE, 0},
		{EVIL_MEDIUM_ERROR, false, -EIO, 0}, {EVIL_RESCAN, false, 0, 0},
		{EVIL_SILENT, false, -ETIMEDOUT, 0},
		{EVIL_NONE, false, 0, 1}, /* the late answer to the silent one is stale */
		{EVIL_OVERSIZED, false, -ETIMEDOUT, 1}, {EVIL_NONE, false, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t before = bad_packets();
		struct storvsc_io io;
		int err = evil_io(cases[i].mode, cases[i].data, &io);
		/* The extra packets of a duplicate may trail the answer. */
		for (int t = 0; t < 100 && bad_packets() - before < cases[i].bad; t++)
			sleep_ms(5);
		uint64_t bad = bad_packets() - before;
		CHECK(err == cases[i].expect, "mode %d: %d, expected %d", cases[i].mode, err,
		      cases[i].expect);
		CHECK(bad == cases[i].bad, "mode %d: %llu bad packets, expected %llu", cases[i].mode,
		      (unsigned long long)bad, (unsigned long long)cases[i].bad);
		if (cases[i].mode == EVIL_DESC_SENSE)
			CHECK(io.sense.valid && io.sense.key == SCSI_SENSE_ILLEGAL_REQUEST &&
				      (io.sense.asc << 8 | io.sense.ascq) == SCSI_ASC_LBA_OUT_OF_RANGE,
			      "descriptor sense %d %#x/%#x/%#x", io.sense.valid, io.sense.key,
			      io.sense.asc, io.sense.ascq);
		if (cases[i].mode == EVIL_MEDIUM_ERROR)
			CHECK(io.sense.valid && io.sense.key == SCSI_SENSE_MEDIUM_ERROR &&
				      io.sense.asc == 0x11,
			      "medium error sense %d %#x/%#x", io.sense.valid, io.sense.key,
			      io.sense.asc);
	}
	struct storvsc_stats st;
	storvsc_get_stats(ctl, &st);
	CHECK(st.timeouts == 2 && st.resets == 2, "%llu timeouts, %llu resets",
	      (unsigned long long)st.timeouts, (unsigned long long)st.resets);
	CHECK(st.enumerate_bus == 1 && rescans == 1, "rescan notices: %llu",
	      (unsigned long long)st.enumerate_bus);
	CHECK(st.submitted == st.completed, "%llu submitted, %llu completed",
	      (unsigned long long)st.submitted, (unsigned long long)st.completed);
	fprintf(stderr, "evil: %llu bad packets refused\n", (unsigned long long)st.bad_packets);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *sc = argv[1];
	if (!strncmp(sc, "--", 2))
		sc = "hotplug"; /* started by hvkit run, driven by hvkit ctl */
	struct hv_guest_features f;
	int err = hv_posix_connect_env(&px);
	struct hv_guest_config gc = {0};
	if (!err)
		err = process_guest_enlighten(px, &guest, &gc, &f);
	struct vmbus_client_config cc = {0};
	if (!err)
		client = vmbus_client_new(&guest, &cc, &err);
	port = guest.port;
	struct storvsc_config sc_cfg = {.sub_channels = UINT32_MAX,
					/* The malicious host's silence is timed out fast
					 * (but not so fast a loaded machine trips it). */
					.timeout_ns = !strcmp(sc, "evil") ? 1000000000 : 0,
					.max_version = !strcmp(sc, "integrity") && argc > 4
							       ? (uint16_t)strtoul(argv[4], NULL, 0)
							       : 0,
					.attached = on_attached,
					.detached = on_detached,
					.rescan_needed = on_rescan};
	if (!err)
		err = storvsc_driver_register(client, &guest, &sc_cfg, &drv);
	if (!err)
		err = vmbus_client_connect(client);
	if (err) {
		fprintf(stderr, "storvsc guest: bring-up failed: %s\n", strerror(-err));
		return 1;
	}
	if (!settle_until(have_controller)) {
		fprintf(stderr, "storvsc guest: no controller\n");
		return 1;
	}
	struct storvsc_stats st0;
	storvsc_get_stats(ctl, &st0);
	/* Sub-channels exist from Win8, when the host offers them. */
	want_channels = st0.version >= VSTOR_PROTO_VERSION_WIN8 && strcmp(sc, "evil")
				? guest.config.vp_count
				: 1;
	CHECK(settle_until(have_channels), "fewer channels than VPs");
	if (sc_cfg.max_version)
		CHECK(st0.version == sc_cfg.max_version, "version %#x, capped at %#x", st0.version,
		      sc_cfg.max_version);
	if (!strcmp(sc, "integrity") && argc > 3)
		integrity((uint32_t)atoi(argv[2]), strtoull(argv[3], NULL, 0));
	else if (!strcmp(sc, "errors"))
		errors();
	else if (!strcmp(sc, "stream"))
		stream();
	else if (!strcmp(sc, "durable") && argc > 2)
		durable(strtoull(argv[2], NULL, 0));
	else if (!strcmp(sc, "hotplug"))
		hotplug();
	else if (!strcmp(sc, "hibernate"))
		hibernate();
	else if (!strcmp(sc, "evil"))
		evil();
	else if (!strcmp(sc, "bench") && argc > 7)
		run_bench((uint32_t)atoi(argv[2]), (uint32_t)atoi(argv[3]), atoi(argv[4]) != 0,
			  atoi(argv[5]) != 0, (uint32_t)atoi(argv[6]), argv[7]);
	else {
		fprintf(stderr, "storvsc guest: unknown scenario '%s'\n", sc);
		return 2;
	}
	vmbus_client_unload(client);
	storvsc_driver_free(drv);
	vmbus_client_free(client);
	hv_posix_disconnect(px);
	return failures ? 1 : 0;
}
