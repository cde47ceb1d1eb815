/* SPDX-License-Identifier: MIT */
/* AML encoder; see aml.h. Opcodes from ACPI 6.4 section 20.3. */
#include "aml.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
	AML_ZERO = 0x00,
	AML_ONE = 0x01,
	AML_NAME = 0x08,
	AML_BYTE = 0x0a,
	AML_WORD = 0x0b,
	AML_DWORD = 0x0c,
	AML_STRING = 0x0d,
	AML_QWORD = 0x0e,
	AML_SCOPE = 0x10,
	AML_BUFFER = 0x11,
	AML_PACKAGE = 0x12,
	AML_METHOD = 0x14,
	AML_DUAL_NAME = 0x2e,
	AML_MULTI_NAME = 0x2f,
	AML_EXT = 0x5b,
	AML_EXT_DEVICE = 0x82,
	AML_ROOT = 0x5c,
	AML_PARENT = 0x5e,
	AML_AND = 0x7b,
	AML_OR = 0x7d,
	AML_RETURN = 0xa4,
	AML_ONES = 0xff,
};

/* Resource descriptors (ACPI 6.4 section 6.4). */
enum {
	RES_IRQ_NO_FLAGS = 0x22,    /* small item 4, 2 bytes */
	RES_IO = 0x47,              /* small item 8, 7 bytes */
	RES_END = 0x79,             /* small item 15, 1 byte */
	RES_QWORD_ADDRESS = 0x8a,   /* large item 0x0a */
};

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->buf);
	aml_init(a);
}

static void fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

static bool reserve(struct aml *a, size_t more)
{
	if (a->err)
		return false;
	if (a->len + more <= a->cap)
		return true;
	size_t cap = a->cap ? a->cap * 2 : 256;
	while (cap < a->len + more)
		cap *= 2;
	uint8_t *b = realloc(a->buf, cap);
	if (!b) {
		fail(a, -ENOMEM);
		return false;
	}
	a->buf = b;
	a->cap = cap;
	return true;
}

static void put(struct aml *a, const void *p, size_t n)
{
	if (!reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void put8(struct aml *a, uint8_t v)
{
	put(a, &v, 1);
}

static void put_le(struct aml *a, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		put8(a, (uint8_t)(v >> (8 * i)));
}

/* Inserts n bytes at offset at, moving what follows. */
static void insert(struct aml *a, size_t at, const uint8_t *p, size_t n)
{
	if (!reserve(a, n))
		return;
	memmove(a->buf + at + n, a->buf + at, a->len - at);
	memcpy(a->buf + at, p, n);
	a->len += n;
}

/* ---- Names ---- */

static bool name_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* One segment of up to 4 characters, padded with '_'. */
static bool put_segment(struct aml *a, const char *s, size_t n)
{
	if (n == 0 || n > 4 || !name_char(s[0], true))
		return false;
	char seg[4] = {'_', '_', '_', '_'};
	for (size_t i = 0; i < n; i++) {
		if (!name_char(s[i], i == 0))
			return false;
		seg[i] = s[i];
	}
	put(a, seg, 4);
	return true;
}

void aml_name(struct aml *a, const char *path)
{
	if (*path == '\\') {
		put8(a, AML_ROOT);
		path++;
	}
	while (*path == '^') {
		put8(a, AML_PARENT);
		path++;
	}
	unsigned segments = *path ? 1 : 0;
	for (const char *p = path; *p; p++)
		segments += *p == '.';
	if (segments == 0) {
		put8(a, AML_ZERO); /* NullName */
		return;
	}
	if (segments > 255) {
		fail(a, -EINVAL);
		return;
	}
	if (segments == 2)
		put8(a, AML_DUAL_NAME);
	else if (segments > 2) {
		put8(a, AML_MULTI_NAME);
		put8(a, (uint8_t)segments);
	}
	while (*path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (!put_segment(a, path, n)) {
			fail(a, -EINVAL);
			return;
		}
		path += n + (dot ? 1 : 0);
	}
}

/* ---- Data ---- */

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0)
		put8(a, AML_ZERO);
	else if (v == 1)
		put8(a, AML_ONE);
	else if (v == UINT64_MAX)
		put8(a, AML_ONES);
	else if (v <= 0xff) {
		put8(a, AML_BYTE);
		put_le(a, v, 1);
	} else if (v <= 0xffff) {
		put8(a, AML_WORD);
		put_le(a, v, 2);
	} else if (v <= 0xffffffff) {
		put8(a, AML_DWORD);
		put_le(a, v, 4);
	} else {
		put8(a, AML_QWORD);
		put_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p > 0x7f) {
			fail(a, -EINVAL); /* AML strings are ASCII */
			return;
		}
	put8(a, AML_STRING);
	put(a, s, strlen(s) + 1);
}

/* "PNP0501": three letters packed in 5 bits each, then four hex digits;
 * stored big-endian in a DWord (ACPI 6.4 section 19.6.35, EISAID). */
void aml_eisa_id(struct aml *a, const char *id)
{
	if (strlen(id) != 7) {
		fail(a, -EINVAL);
		return;
	}
	uint32_t v = 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < '@' || id[i] > 'Z') {
			fail(a, -EINVAL);
			return;
		}
		v = v << 5 | (uint32_t)(id[i] - '@');
	}
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		uint32_t d;
		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else {
			fail(a, -EINVAL);
			return;
		}
		v = v << 4 | d;
	}
	/* 15 bits of letters and 16 of digits in a 32-bit big-endian value */
	uint32_t be = __builtin_bswap32(v);
	put8(a, AML_DWORD);
	put_le(a, be, 4);
}

void aml_name_decl(struct aml *a, const char *path)
{
	put8(a, AML_NAME);
	aml_name(a, path);
}

/* ---- Objects with a PkgLength ---- */

static void open_body(struct aml *a)
{
	if (a->depth == AML_MAX_DEPTH) {
		fail(a, -E2BIG);
		return;
	}
	a->open[a->depth++] = a->len;
}

/* PkgLength counts itself: 1 byte up to 63, else a lead byte with the
 * number of following bytes in bits 7-6 and the low nibble in bits 3-0. */
static size_t encode_pkg_length(size_t body, uint8_t out[4])
{
	if (body + 1 <= 0x3f) {
		out[0] = (uint8_t)(body + 1);
		return 1;
	}
	for (size_t extra = 1; extra <= 3; extra++) {
		size_t total = body + 1 + extra;
		if (total < (size_t)1 << (4 + 8 * extra)) {
			out[0] = (uint8_t)(extra << 6 | (total & 0x0f));
			for (size_t i = 0; i < extra; i++)
				out[1 + i] = (uint8_t)(total >> (4 + 8 * i));
			return 1 + extra;
		}
	}
	return 0;
}

void aml_close(struct aml *a)
{
	if (a->err)
		return;
	if (!a->depth) {
		fail(a, -EINVAL);
		return;
	}
	size_t start = a->open[--a->depth];
	uint8_t pkg[4];
	size_t n = encode_pkg_length(a->len - start, pkg);
	if (!n) {
		fail(a, -E2BIG);
		return;
	}
	insert(a, start, pkg, n);
}

/* The PkgLength goes after the opcode; the name and flags follow it. */
void aml_scope_open(struct aml *a, const char *path)
{
	put8(a, AML_SCOPE);
	open_body(a);
	aml_name(a, path);
}

void aml_device_open(struct aml *a, const char *path)
{
	put8(a, AML_EXT);
	put8(a, AML_EXT_DEVICE);
	open_body(a);
	aml_name(a, path);
}

void aml_method_open(struct aml *a, const char *path, unsigned args, int serialized)
{
	if (args > 7) {
		fail(a, -EINVAL);
		return;
	}
	put8(a, AML_METHOD);
	open_body(a);
	aml_name(a, path);
	put8(a, (uint8_t)(args | (serialized ? 0x08 : 0)));
}

void aml_package_open(struct aml *a, unsigned elements)
{
	if (elements > 255) {
		fail(a, -EINVAL);
		return;
	}
	put8(a, AML_PACKAGE);
	open_body(a);
	put8(a, (uint8_t)elements);
}

/* ---- Statements ---- */

void aml_return(struct aml *a)
{
	put8(a, AML_RETURN);
}

void aml_and_store(struct aml *a, const char *name, uint64_t mask)
{
	put8(a, AML_AND);
	aml_name(a, name);
	aml_integer(a, mask);
	aml_name(a, name);
}

void aml_or_store(struct aml *a, const char *name, uint64_t bits)
{
	put8(a, AML_OR);
	aml_name(a, name);
	aml_integer(a, bits);
	aml_name(a, name);
}

/* ---- Resource templates ---- */

void aml_resources_open(struct aml *a)
{
	put8(a, AML_BUFFER);
	open_body(a);
}

void aml_resources_close(struct aml *a)
{
	if (a->err)
		return;
	if (!a->depth) {
		fail(a, -EINVAL);
		return;
	}
	put8(a, RES_END);
	put8(a, 0); /* checksum 0: "the template sums correctly" */
	/* The buffer's size is an integer in front of its bytes. */
	size_t start = a->open[a->depth - 1];
	size_t bytes = a->len - start;
	struct aml size;
	aml_init(&size);
	aml_integer(&size, bytes);
	if (size.err)
		fail(a, size.err);
	else
		insert(a, start, size.buf, size.len);
	aml_free(&size);
	aml_close(a);
}

void aml_res_qword_memory(struct aml *a, uint64_t base, uint64_t length)
{
	if (!length || base + length - 1 < base) {
		fail(a, -EINVAL);
		return;
	}
	put8(a, RES_QWORD_ADDRESS);
	put_le(a, 43, 2);  /* bytes after the length field */
	put8(a, 0);        /* memory range */
	put8(a, 0x0c);     /* producer, positive decode, min and max fixed */
	put8(a, 0x03);     /* read-write, cacheable */
	put_le(a, 0, 8);   /* granularity */
	put_le(a, base, 8);
	put_le(a, base + length - 1, 8);
	put_le(a, 0, 8);   /* translation offset */
	put_le(a, length, 8);
}

void aml_res_io(struct aml *a, uint16_t port, uint8_t length)
{
	put8(a, RES_IO);
	put8(a, 1);        /* 16-bit decode */
	put_le(a, port, 2);
	put_le(a, port, 2);
	put8(a, 1);        /* alignment */
	put8(a, length);
}

void aml_res_irq(struct aml *a, unsigned irq)
{
	if (irq > 15) {
		fail(a, -EINVAL);
		return;
	}
	put8(a, RES_IRQ_NO_FLAGS);
	put_le(a, 1u << irq, 2);
}

int aml_finish(struct aml *a, uint8_t **out, size_t *len)
{
	if (!a->err && a->depth)
		fail(a, -EINVAL); /* something left open */
	if (a->err) {
		int err = a->err;
		aml_free(a);
		return err;
	}
	*out = a->buf;
	*len = a->len;
	a->buf = NULL;
	aml_init(a);
	return 0;
}
