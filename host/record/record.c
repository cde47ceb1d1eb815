// SPDX-License-Identifier: MIT
#include "record.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

struct record_writer record_writer(void *buf, size_t cap)
{
	return (struct record_writer){buf, cap, RECORD_HEADER_BYTES};
}

void record_put(struct record_writer *w, const void *v, size_t n)
{
	if (w->len <= w->cap && w->cap - w->len >= n)
		memcpy(w->buf + w->len, v, n);
	w->len += n;
}

void record_put8(struct record_writer *w, uint8_t v)
{
	record_put(w, &v, 1);
}

void record_put16(struct record_writer *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	record_put(w, b, 2);
}

void record_put32(struct record_writer *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	record_put(w, b, 4);
}

void record_put64(struct record_writer *w, uint64_t v)
{
	record_put32(w, (uint32_t)v);
	record_put32(w, (uint32_t)(v >> 32));
}

int record_finish(struct record_writer *w, const char magic[RECORD_MAGIC_BYTES],
		  uint32_t version, uint32_t count, size_t *len)
{
	size_t body_len = w->len - RECORD_HEADER_BYTES;
	*len = w->len;
	if (w->cap < w->len || body_len > UINT32_MAX)
		return -ENOSPC;
	const uint8_t *body = w->buf + RECORD_HEADER_BYTES;
	struct record_writer h = {w->buf, RECORD_HEADER_BYTES, 0};
	record_put(&h, magic, RECORD_MAGIC_BYTES);
	record_put32(&h, version);
	record_put32(&h, count);
	record_put32(&h, (uint32_t)body_len);
	record_put32(&h, (uint32_t)crc32(0, body, (uInt)body_len));
	return 0;
}

void record_get(struct record_reader *r, void *v, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		memset(v, 0, n);
		return;
	}
	memcpy(v, r->p, n);
	r->p += n;
}

uint8_t record_get8(struct record_reader *r)
{
	uint8_t v;
	record_get(r, &v, 1);
	return v;
}

uint16_t record_get16(struct record_reader *r)
{
	uint8_t b[2];
	record_get(r, b, 2);
	return (uint16_t)(b[0] | b[1] << 8);
}

uint32_t record_get32(struct record_reader *r)
{
	uint8_t b[4];
	record_get(r, b, 4);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

uint64_t record_get64(struct record_reader *r)
{
	uint64_t lo = record_get32(r);
	return lo | (uint64_t)record_get32(r) << 32;
}

bool record_done(const struct record_reader *r)
{
	return !r->bad && r->p == r->end;
}

int record_open(const void *buf, size_t len, const char magic[RECORD_MAGIC_BYTES],
		uint32_t version, uint32_t count, struct record_reader *body)
{
	struct record_reader r = {buf, (const uint8_t *)buf + len, false};
	char got[RECORD_MAGIC_BYTES];
	record_get(&r, got, sizeof(got));
	uint32_t got_version = record_get32(&r), got_count = record_get32(&r);
	uint32_t body_len = record_get32(&r), crc = record_get32(&r);
	if (r.bad || memcmp(got, magic, RECORD_MAGIC_BYTES) || got_version != version ||
	    got_count != count || body_len != (size_t)(r.end - r.p) ||
	    crc != (uint32_t)crc32(0, r.p, (uInt)body_len))
		return -EINVAL;
	*body = (struct record_reader){r.p, r.end, false};
	return 0;
}
