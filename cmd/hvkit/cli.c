/* SPDX-License-Identifier: MIT */
/*
 * The numbers of hvkit's command lines, parsed strictly: what strtoul
 * lets through ("12abc" as 12, "-1" as a huge number, "" as 0, octal for
 * a leading 0) is refused here, so that a typo is an error and never a
 * silent default. And the clock the subcommands' deadlines run on.
 */
#include "cli.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

/* Digits of `base` up to the end of the text (or *end), no overflow. */
static bool digits(const char *s, unsigned base, uint64_t *out, const char **end)
{
	uint64_t v = 0;
	const char *p = s;
	for (; *p; p++) {
		unsigned d;
		if (isdigit((unsigned char)*p))
			d = (unsigned)(*p - '0');
		else if (base == 16 && isxdigit((unsigned char)*p))
			d = (unsigned)(tolower((unsigned char)*p) - 'a' + 10);
		else
			break;
		if (d >= base || v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	if (p == s || (!end && *p))
		return false;
	if (end)
		*end = p;
	*out = v;
	return true;
}

static bool number_prefix(const char *text, uint64_t *out, const char **end)
{
	if (!text)
		return false;
	if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
		return digits(text + 2, 16, out, end);
	return digits(text, 10, out, end);
}

bool cli_number(const char *text, uint64_t *out)
{
	return number_prefix(text, out, NULL);
}

bool cli_size(const char *text, uint64_t *out)
{
	const char *end;
	uint64_t v, unit = 1;
	if (!number_prefix(text, &v, &end))
		return false;
	switch (*end) {
	case '\0':
		break;
	case 'K':
	case 'k':
		unit = 1ull << 10;
		break;
	case 'M':
	case 'm':
		unit = 1ull << 20;
		break;
	case 'G':
	case 'g':
		unit = 1ull << 30;
		break;
	default:
		return false;
	}
	if (*end && end[1])
		return false;
	if (v > UINT64_MAX / unit)
		return false;
	*out = v * unit;
	return true;
}

bool cli_version(const char *text, uint64_t *major, uint64_t *minor)
{
	const char *end;
	return text && digits(text, 10, major, &end) && *end == '.' &&
	       digits(end + 1, 10, minor, NULL);
}

bool cli_seconds(const char *text, uint64_t *ns)
{
	const char *end;
	uint64_t whole, frac = 0, scale = 1000000000ull;
	if (!text || !digits(text, 10, &whole, &end))
		return false;
	if (*end == '.') {
		const char *f = end + 1;
		size_t n = strlen(f);
		if (n == 0 || n > 9 || !digits(f, 10, &frac, NULL))
			return false;
		for (size_t i = 0; i < n; i++)
			scale /= 10;
		frac *= scale;
	} else if (*end) {
		return false;
	}
	if (whole > (INT64_MAX - frac) / 1000000000ull)
		return false;
	*ns = whole * 1000000000ull + frac;
	return true;
}

int64_t cli_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
