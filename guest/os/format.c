/* SPDX-License-Identifier: MIT */
/*
 * The small printf of hvkit-os and the guest libraries' log hook: flags
 * '-', '0', '#', a width, the h/l/ll/z/j/t sizes and d i u x X o c s p %.
 * No floating point, precision or positional arguments.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "format.h"

struct out {
	char *buf;
	size_t size, len; /* len counts what would have been written */
};

static void emit(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void emit_padded(struct out *o, const char *s, size_t n, unsigned width, bool left,
			char pad)
{
	size_t fill = width > n ? width - n : 0;
	if (!left)
		while (fill--)
			emit(o, pad);
	for (size_t i = 0; i < n; i++)
		emit(o, s[i]);
	if (left)
		while (fill--)
			emit(o, ' ');
}

struct spec {
	bool left, zero, alt;
	unsigned width;
	int size; /* 0 int, 1 long, 2 long long, -1 short, -2 char */
};

static const char *parse_spec(const char *f, struct spec *s)
{
	*s = (struct spec){0};
	for (;; f++) {
		if (*f == '-')
			s->left = true;
		else if (*f == '0')
			s->zero = true;
		else if (*f == '#')
			s->alt = true;
		else if (*f != ' ' && *f != '+')
			break;
	}
	while (*f >= '0' && *f <= '9')
		s->width = s->width * 10 + (unsigned)(*f++ - '0');
	for (;; f++) {
		if (*f == 'l' || *f == 'z' || *f == 'j' || *f == 't')
			s->size++;
		else if (*f == 'h')
			s->size--;
		else
			break;
	}
	return f;
}

static uint64_t take_unsigned(const struct spec *s, va_list *ap)
{
	if (s->size >= 1)
		return s->size >= 2 ? va_arg(*ap, unsigned long long) : va_arg(*ap, unsigned long);
	unsigned v = va_arg(*ap, unsigned);
	return s->size == -1 ? (uint16_t)v : s->size <= -2 ? (uint8_t)v : v;
}

static int64_t take_signed(const struct spec *s, va_list *ap)
{
	if (s->size >= 1)
		return s->size >= 2 ? va_arg(*ap, long long) : va_arg(*ap, long);
	int v = va_arg(*ap, int);
	return s->size == -1 ? (int16_t)v : s->size <= -2 ? (int8_t)v : v;
}

static void emit_number(struct out *o, const struct spec *s, uint64_t v, unsigned base,
			bool upper, bool negative)
{
	char digits[24];
	size_t n = 0;
	const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	do {
		digits[n++] = set[v % base];
		v /= base;
	} while (v);
	char text[32];
	size_t len = 0;
	if (negative)
		text[len++] = '-';
	if (s->alt && base == 16) {
		text[len++] = '0';
		text[len++] = upper ? 'X' : 'x';
	}
	/* Zero padding goes between the prefix and the digits. */
	size_t body = len + n;
	if (s->zero && !s->left)
		while (body < s->width && len < sizeof(text) - n) {
			text[len++] = '0';
			body++;
		}
	while (n)
		text[len++] = digits[--n];
	emit_padded(o, text, len, s->width, s->left, ' ');
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {buf, size, 0};
	va_list args;
	va_copy(args, ap);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			emit(&o, *f);
			continue;
		}
		struct spec s;
		f = parse_spec(f + 1, &s);
		switch (*f) {
		case 'd':
		case 'i': {
			int64_t v = take_signed(&s, &args);
			emit_number(&o, &s, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, 10, false, v < 0);
			break;
		}
		case 'u':
			emit_number(&o, &s, take_unsigned(&s, &args), 10, false, false);
			break;
		case 'x':
		case 'X':
			emit_number(&o, &s, take_unsigned(&s, &args), 16, *f == 'X', false);
			break;
		case 'o':
			emit_number(&o, &s, take_unsigned(&s, &args), 8, false, false);
			break;
		case 'p': {
			struct spec p = {.alt = true};
			emit_number(&o, &p, (uintptr_t)va_arg(args, void *), 16, false, false);
			break;
		}
		case 'c': {
			char c = (char)va_arg(args, int);
			emit_padded(&o, &c, 1, s.width, s.left, ' ');
			break;
		}
		case 's': {
			const char *str = va_arg(args, const char *);
			if (!str)
				str = "(null)";
			emit_padded(&o, str, strlen(str), s.width, s.left, ' ');
			break;
		}
		case '%':
			emit(&o, '%');
			break;
		case '\0':
			f--; /* a lone % at the end */
			break;
		default:
			emit(&o, '%');
			emit(&o, *f);
		}
	}
	va_end(args);
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

