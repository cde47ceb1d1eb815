/* SPDX-License-Identifier: MIT */
/*
 * The VM snapshot file (snapshot.h). Layout, every field little-endian:
 *
 *   file header (32 bytes): magic "HVKITSNP", u32 version (1), u32
 *     section count (6), 12 reserved zero bytes, u32 CRC-32 (zlib's) of
 *     the 28 bytes before it
 *   then six sections, in this order, each a 16-byte header (u32 type,
 *     u32 reserved zero, u64 data length), the data, and a u32 CRC-32 of
 *     the data:
 *     1 machine: u32 VPs, u64 RAM bytes, the VM id (16 bytes), u32 echo
 *       devices, u32 NICs, u32 disks, u8 integration components, three
 *       zero bytes
 *     2 memory: runs of pages that are not zero, in ascending order, each
 *       u64 GPA, u64 page count, then the pages; a run lies inside one
 *       region of guest RAM
 *     3 partition, 4 hv, 5 VMBus, 6 platform: the components' records as
 *       they wrote them (host/record/record.h: each checked again by its
 *       loader)
 *
 * A reader checks every header as it comes and each section's CRC at its
 * end; the pages go straight into the (not yet running) machine's RAM.
 */
#define _GNU_SOURCE /* fallocate */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "snapshot.h"

static const char file_magic[8] = "HVKITSNP";
#define FILE_VERSION 1u
#define FILE_HEADER_BYTES 32u
#define SECTION_HEADER_BYTES 16u
#define MACHINE_BYTES 44u
#define RUN_HEADER_BYTES 16u
#define PAGE 4096u

enum section {
	SECTION_MACHINE = 1,
	SECTION_MEMORY,
	SECTION_PARTITION,
	SECTION_HV,
	SECTION_VMBUS,
	SECTION_PLATFORM,
	SECTION_COUNT = SECTION_PLATFORM
};

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
	le32(p, (uint32_t)v);
	le32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t crc(uint32_t c, const void *p, size_t n)
{
	/* zlib takes at most 4 GiB at once (uInt). */
	const uint8_t *b = p;
	while (n) {
		size_t k = n > (1u << 30) ? 1u << 30 : n;
		c = (uint32_t)crc32(c, b, (uInt)k);
		b += k;
		n -= k;
	}
	return c;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

struct writer {
	int fd;
	uint64_t bytes;
	uint32_t crc;
};

static int put(struct writer *w, const void *p, size_t n)
{
	const uint8_t *b = p;
	w->crc = crc(w->crc, p, n);
	w->bytes += n;
	while (n) {
		ssize_t k = write(w->fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

static int section_begin(struct writer *w, enum section type, uint64_t len)
{
	uint8_t h[SECTION_HEADER_BYTES] = {0};
	le32(h, type);
	le64(h + 8, len);
	int err = put(w, h, sizeof(h));
	w->crc = 0; /* the data's own */
	return err;
}

static int section_end(struct writer *w)
{
	uint8_t c[4];
	le32(c, w->crc);
	return put(w, c, sizeof(c));
}

static int put_section(struct writer *w, enum section type, const void *p, size_t n)
{
	int err = section_begin(w, type, n);
	if (!err)
		err = put(w, p, n);
	return err ? err : section_end(w);
}

static void machine_bytes(const struct snapshot_machine *mc, uint8_t out[MACHINE_BYTES])
{
	memset(out, 0, MACHINE_BYTES);
	le32(out, mc->cpus);
	le64(out + 4, mc->memory);
	memcpy(out + 12, &mc->vm_id, 16);
	le32(out + 28, mc->echo_devices);
	le32(out + 32, mc->nics);
	le32(out + 36, mc->disks);
	out[40] = mc->ic;
}

static bool page_is_zero(const uint8_t *p)
{
	return p[0] == 0 && !memcmp(p, p + 1, PAGE - 1);
}

/* A run of pages to save. */
struct run {
	uint64_t gpa, pages;
	const uint8_t *hva;
};

struct runs {
	struct run *v;
	size_t n, cap;
	uint64_t pages;
};

static int run_add(struct runs *rs, uint64_t gpa, const uint8_t *hva)
{
	struct run *last = rs->n ? &rs->v[rs->n - 1] : NULL;
	rs->pages++;
	if (last && last->gpa + last->pages * PAGE == gpa && last->hva + last->pages * PAGE == hva) {
		last->pages++;
		return 0;
	}
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		struct run *v = realloc(rs->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		rs->v = v;
		rs->cap = cap;
	}
	rs->v[rs->n++] = (struct run){gpa, 1, hva};
	return 0;
}

/* The pages of [from, to) of region r that are not zero. */
static int scan_range(struct runs *rs, const struct guest_memory_region *r, uint64_t from,
		      uint64_t to)
{
	for (uint64_t off = from; off < to; off += PAGE) {
		const uint8_t *p = r->hva + off;
		if (!page_is_zero(p)) {
			int err = run_add(rs, r->gpa + off, p);
			if (err)
				return err;
		}
	}
	return 0;
}

/* A file-backed region's data extents only: pages never written are
 * holes, skipped without touching them (a mostly idle 1 GiB guest is
 * mostly holes). */
static int scan_region(struct runs *rs, const struct guest_memory_region *r)
{
	if (r->fd < 0)
		return scan_range(rs, r, 0, r->size);
	uint64_t end = r->fd_offset + r->size;
	for (off_t at = (off_t)r->fd_offset; (uint64_t)at < end;) {
		off_t data = lseek(r->fd, at, SEEK_DATA);
		if (data < 0 || (uint64_t)data >= end)
			return data < 0 && errno != ENXIO ? -errno : 0;
		off_t hole = lseek(r->fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		uint64_t from = ((uint64_t)data - r->fd_offset) & ~(uint64_t)(PAGE - 1);
		uint64_t to = (uint64_t)hole < end ? (uint64_t)hole - r->fd_offset : r->size;
		to = (to + PAGE - 1) & ~(uint64_t)(PAGE - 1);
		int err = scan_range(rs, r, from, to);
		if (err)
			return err;
		at = (off_t)(r->fd_offset + to);
	}
	return 0;
}

static int put_memory(struct writer *w, const struct guest_memory *mem, struct snapshot_stats *st)
{
	struct runs rs = {0};
	int err = 0;
	for (uint32_t i = 0; i < mem->count && !err; i++)
		err = scan_region(&rs, &mem->regions[i]);
	uint64_t len = 0;
	for (size_t i = 0; i < rs.n; i++)
		len += RUN_HEADER_BYTES + rs.v[i].pages * PAGE;
	if (!err)
		err = section_begin(w, SECTION_MEMORY, len);
	for (size_t i = 0; i < rs.n && !err; i++) {
		uint8_t h[RUN_HEADER_BYTES];
		le64(h, rs.v[i].gpa);
		le64(h + 8, rs.v[i].pages);
		err = put(w, h, sizeof(h));
		if (!err)
			err = put(w, rs.v[i].hva, rs.v[i].pages * PAGE);
	}
	if (!err)
		err = section_end(w);
	st->ram_pages = rs.pages;
	free(rs.v);
	return err;
}

int snapshot_write(int fd, const struct snapshot_machine *mc, const struct snapshot_records *r,
		   const struct guest_memory *mem, struct snapshot_stats *st)
{
	struct writer w = {.fd = fd};
	uint8_t h[FILE_HEADER_BYTES] = {0};
	memcpy(h, file_magic, sizeof(file_magic));
	le32(h + 8, FILE_VERSION);
	le32(h + 12, SECTION_COUNT);
	le32(h + 28, crc(0, h, 28));
	uint8_t machine[MACHINE_BYTES];
	machine_bytes(mc, machine);
	*st = (struct snapshot_stats){0};
	int err = put(&w, h, sizeof(h));
	if (!err)
		err = put_section(&w, SECTION_MACHINE, machine, sizeof(machine));
	if (!err)
		err = put_memory(&w, mem, st);
	for (int i = 0; i < SNAPSHOT_RECORDS && !err; i++)
		err = put_section(&w, (enum section)(SECTION_PARTITION + i), r->buf[i], r->len[i]);
	st->file_bytes = w.bytes;
	return err;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

struct reader {
	int fd;
	uint64_t offset;
	uint32_t crc;
	char *why;
	size_t why_len;
};

__attribute__((format(printf, 2, 3))) static int refuse(struct reader *rd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rd->why, rd->why_len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* n bytes, all there: 0, -EINVAL at the file's end, or -errno. */
static int get(struct reader *rd, void *p, size_t n)
{
	uint8_t *b = p;
	size_t want = n;
	while (n) {
		ssize_t k = read(rd->fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return refuse(rd, "the file ends at byte %llu (truncated)",
				      (unsigned long long)rd->offset);
		b += k;
		n -= (size_t)k;
		rd->offset += (uint64_t)k;
	}
	rd->crc = crc(rd->crc, p, want);
	return 0;
}

static const char *section_name(enum section s)
{
	static const char *const names[] = {"",   "machine", "memory",  "partition",
					    "hv", "VMBus",   "platform"};
	return names[s];
}

/* The next section's header, which must be of this type; its length. */
static int section_open(struct reader *rd, enum section type, uint64_t max, uint64_t *len)
{
	uint8_t h[SECTION_HEADER_BYTES];
	int err = get(rd, h, sizeof(h));
	if (err)
		return err;
	*len = get64(h + 8);
	if (get32(h) != type || get32(h + 4))
		return refuse(rd, "at byte %llu: not the %s section",
			      (unsigned long long)(rd->offset - sizeof(h)), section_name(type));
	if (*len > max)
		return refuse(rd, "the %s section is %llu bytes, more than it can be",
			      section_name(type), (unsigned long long)*len);
	rd->crc = 0;
	return 0;
}

static int section_close(struct reader *rd, enum section type)
{
	uint32_t want = rd->crc;
	uint8_t c[4];
	int err = get(rd, c, sizeof(c));
	if (err)
		return err;
	if (get32(c) != want)
		return refuse(rd, "the %s section is corrupt (CRC)", section_name(type));
	return 0;
}

static int read_header(struct reader *rd)
{
	uint8_t h[FILE_HEADER_BYTES];
	int err = get(rd, h, sizeof(h));
	if (err)
		return err;
	if (memcmp(h, file_magic, sizeof(file_magic)))
		return refuse(rd, "not an hvkit snapshot");
	if (get32(h + 28) != crc(0, h, 28))
		return refuse(rd, "the file header is corrupt (CRC)");
	if (get32(h + 8) != FILE_VERSION)
		return refuse(rd, "snapshot version %u, this hvkit reads version %u", get32(h + 8),
			      FILE_VERSION);
	if (get32(h + 12) != SECTION_COUNT)
		return refuse(rd, "%u sections, a version %u snapshot has %u", get32(h + 12),
			      FILE_VERSION, SECTION_COUNT);
	return 0;
}

/* The saved machine against this one: the first difference, named by
 * the option that makes it. */
static int match_machine(struct reader *rd, const uint8_t *got, const uint8_t *want)
{
	static const struct {
		uint32_t at, width;
		const char *what, *option;
	} fields[] = {
		{0, 4, "VPs", "--cpus"},
		{4, 8, "bytes of RAM", "--memory"},
		{28, 4, "echo devices", "--device echo"},
		{32, 4, "NICs", "--net"},
		{36, 4, "disks", "--disk"},
		{40, 1, "integration components (1: on)", "--no-ic"},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const uint8_t *g = got + fields[i].at, *w = want + fields[i].at;
		if (!memcmp(g, w, fields[i].width))
			continue;
		uint64_t gv = fields[i].width == 8 ? get64(g) : fields[i].width == 4 ? get32(g) : *g;
		uint64_t wv = fields[i].width == 8 ? get64(w) : fields[i].width == 4 ? get32(w) : *w;
		return refuse(rd, "the snapshot's machine has %llu %s, this one %llu (%s)",
			      (unsigned long long)gv, fields[i].what, (unsigned long long)wv,
			      fields[i].option);
	}
	if (memcmp(got + 12, want + 12, 16))
		return refuse(rd, "the snapshot's machine has another VM id (--vm-id)");
	if (got[41] || got[42] || got[43])
		return refuse(rd, "the machine section is malformed");
	return 0;
}

static int read_machine(struct reader *rd, const struct snapshot_machine *expect)
{
	uint64_t len;
	uint8_t got[MACHINE_BYTES], want[MACHINE_BYTES];
	int err = section_open(rd, SECTION_MACHINE, MACHINE_BYTES, &len);
	if (!err && len != MACHINE_BYTES)
		err = refuse(rd, "the machine section is %llu bytes, not %u",
			     (unsigned long long)len, MACHINE_BYTES);
	if (!err)
		err = get(rd, got, sizeof(got));
	if (!err)
		err = section_close(rd, SECTION_MACHINE);
	machine_bytes(expect, want);
	return err ? err : match_machine(rd, got, want);
}

/* Guest RAM as new: holes punched in file-backed regions. */
static void zero_memory(const struct guest_memory *mem)
{
	for (uint32_t i = 0; i < mem->count; i++) {
		const struct guest_memory_region *r = &mem->regions[i];
		if (r->fd < 0 || fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					   (off_t)r->fd_offset, (off_t)r->size))
			memset(r->hva, 0, r->size);
	}
}

static int read_memory(struct reader *rd, const struct guest_memory *mem, struct snapshot_stats *st)
{
	uint64_t len, next = 0; /* runs ascend: the lowest GPA the next may have */
	int err = section_open(rd, SECTION_MEMORY, UINT64_MAX, &len);
	if (err)
		return err;
	zero_memory(mem);
	while (len) {
		uint8_t h[RUN_HEADER_BYTES];
		if (len < RUN_HEADER_BYTES)
			return refuse(rd, "the memory section ends inside a run");
		err = get(rd, h, sizeof(h));
		if (err)
			return err;
		uint64_t gpa = get64(h), pages = get64(h + 8);
		len -= RUN_HEADER_BYTES;
		uint8_t *hva = pages && pages <= len / PAGE && gpa % PAGE == 0 && gpa >= next
				       ? guest_memory_ptr(mem, gpa, pages * PAGE)
				       : NULL;
		if (!hva)
			return refuse(rd, "a run of %llu pages at %#llx is not this machine's RAM",
				      (unsigned long long)pages, (unsigned long long)gpa);
		err = get(rd, hva, pages * PAGE);
		if (err)
			return err;
		len -= pages * PAGE;
		next = gpa + pages * PAGE;
		st->ram_pages += pages;
	}
	return section_close(rd, SECTION_MEMORY);
}

static int read_record(struct reader *rd, enum section type, void **buf, size_t *len)
{
	uint64_t n;
	int err = section_open(rd, type, SNAPSHOT_MAX_RECORD, &n);
	if (err)
		return err;
	*buf = malloc(n ? n : 1);
	if (!*buf)
		return -ENOMEM;
	*len = n;
	err = get(rd, *buf, n);
	return err ? err : section_close(rd, type);
}

int snapshot_read(int fd, const struct snapshot_machine *expect, const struct guest_memory *mem,
		  struct snapshot_records *out, struct snapshot_stats *st, char *why,
		  size_t why_len)
{
	char ignored[8];
	struct reader rd = {.fd = fd, .why = why ? why : ignored,
			    .why_len = why ? why_len : sizeof(ignored)};
	*out = (struct snapshot_records){0};
	*st = (struct snapshot_stats){0};
	int err = read_header(&rd);
	if (!err)
		err = read_machine(&rd, expect);
	if (!err)
		err = read_memory(&rd, mem, st);
	for (int i = 0; i < SNAPSHOT_RECORDS && !err; i++)
		err = read_record(&rd, (enum section)(SECTION_PARTITION + i), &out->buf[i],
				  &out->len[i]);
	if (!err) {
		uint8_t extra;
		ssize_t k = read(fd, &extra, 1);
		if (k != 0)
			err = k < 0 ? -errno : refuse(&rd, "bytes follow the last section");
	}
	st->file_bytes = rd.offset;
	if (err)
		snapshot_records_free(out);
	return err;
}

void snapshot_records_free(struct snapshot_records *r)
{
	for (int i = 0; i < SNAPSHOT_RECORDS; i++) {
		free(r->buf[i]);
		r->buf[i] = NULL;
		r->len[i] = 0;
	}
}
