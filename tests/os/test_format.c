/* SPDX-License-Identifier: MIT */
/* hvkit-os's printf against the C library's, format by format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "format.h"

static int ours(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

#define SAME(...)                                                                 \
	do {                                                                      \
		char a[128], b[128];                                              \
		int na = ours(a, sizeof(a), __VA_ARGS__);                         \
		int nb = snprintf(b, sizeof(b), __VA_ARGS__);                     \
		assert_string_equal(a, b);                                        \
		assert_int_equal(na, nb);                                         \
	} while (0)

static void integers_match_the_c_library(void **state)
{
	(void)state;
	SAME("%d %i %u", -42, 7, 3000000000u);
	SAME("%x %X %#x %#X %o", 0xbeefu, 0xbeefu, 0x10u, 0xabu, 8u);
	SAME("%ld %lu %lx", -1234567890123L, 18446744073709551615UL, 0xdeadbeefcafeUL);
	SAME("%lld %llu %#llx", (long long)INT64_MIN, (unsigned long long)UINT64_MAX, 0x1ull);
	SAME("%zu %zx", (size_t)123456, (size_t)0xfff);
	SAME("%hd %hu %hhu", (short)-5, (unsigned short)65535, (unsigned char)200);
	SAME("[%5d] [%-5d] [%05d] [%08x] [%-8x|]", 42, 42, -42, 0xabcu, 0xabcu);
	SAME("[%#010x]", 0x1234u);
	SAME("%d %u %x", 0, 0u, 0u);
}

static void strings_chars_and_percent(void **state)
{
	(void)state;
	SAME("%s|%10s|%-10s|", "hv", "right", "left");
	SAME("%c%c %% done", 'o', 'k');
	SAME("%s", "");
	char buf[16];
	assert_int_equal(ours(buf, sizeof(buf), "%s", (const char *)NULL), 6);
	assert_string_equal(buf, "(null)");
}

static void truncation_reports_the_full_length(void **state)
{
	(void)state;
	char buf[8];
	assert_int_equal(ours(buf, sizeof(buf), "%s %u", "truncated", 12345u), 15);
	assert_string_equal(buf, "truncat");
	assert_int_equal(ours(buf, 1, "abc"), 3);
	assert_string_equal(buf, "");
	assert_int_equal(ours(NULL, 0, "abc%d", 12), 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(integers_match_the_c_library),
		cmocka_unit_test(strings_chars_and_percent),
		cmocka_unit_test(truncation_reports_the_full_length),
	};
	return cmocka_run_group_tests_name("os format", tests, NULL, NULL);
}
