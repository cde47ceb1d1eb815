/* SPDX-License-Identifier: MIT */
/* What the compiler and the guest libraries expect from a C library: the
 * memory and string functions, and a heap. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"

void *memcpy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	if (d < s)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	uint8_t *d = dst;
	while (n--)
		*d++ = (uint8_t)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

char *strcpy(char *dst, const char *src)
{
	return memcpy(dst, src, strlen(src) + 1);
}

/* ---- The heap: whole pages, a header page-count in front ----
 * The guest libraries allocate a handful of objects at start-up and a few
 * buffers per request; page granularity keeps this trivially correct. */

#define HEAP_HEADER 16

void *malloc(size_t n)
{
	if (n > (size_t)1 << 30)
		return NULL;
	uint32_t pages = (uint32_t)((n + HEAP_HEADER + 4095) / 4096);
	uint8_t *p = pages_alloc(pages);
	if (!p)
		return NULL;
	memcpy(p, &pages, sizeof(pages));
	return p + HEAP_HEADER;
}

void *calloc(size_t count, size_t size)
{
	if (size && count > ((size_t)1 << 30) / size)
		return NULL;
	return malloc(count * size); /* pages come zeroed */
}

void free(void *ptr)
{
	if (!ptr)
		return;
	uint8_t *p = (uint8_t *)ptr - HEAP_HEADER;
	uint32_t pages;
	memcpy(&pages, p, sizeof(pages));
	pages_free(p, pages);
}
