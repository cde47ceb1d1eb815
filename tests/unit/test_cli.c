/* SPDX-License-Identifier: MIT */
/* The command lines' number parsers (cmd/hvkit/cli.c): what strtoul would
 * let through is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli.h"

static void numbers(void **state)
{
	(void)state;
	uint64_t v = 7;
	assert_true(cli_number("0", &v) && v == 0);
	assert_true(cli_number("42", &v) && v == 42);
	assert_true(cli_number("0x1F", &v) && v == 31);
	assert_true(cli_number("010", &v) && v == 10); /* decimal, not octal */
	assert_true(cli_number("18446744073709551615", &v) && v == UINT64_MAX);
	const char *bad[] = {"", "-1", "+1", " 1", "1 ", "12abc", "0x", "0xg",
			     "18446744073709551616", "1e3", "1.0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		assert_false(cli_number(bad[i], &v));
		assert_int_equal(v, 7); /* untouched */
	}
	assert_false(cli_number(NULL, &v));
}

static void sizes(void **state)
{
	(void)state;
	uint64_t v;
	assert_true(cli_size("4096", &v) && v == 4096);
	assert_true(cli_size("1k", &v) && v == 1024);
	assert_true(cli_size("64M", &v) && v == 64ull << 20);
	assert_true(cli_size("16G", &v) && v == 16ull << 30);
	assert_false(cli_size("1MB", &v));
	assert_false(cli_size("M", &v));
	assert_false(cli_size("12Q", &v));
	assert_false(cli_size("17179869184G", &v)); /* 2^34 GiB overflows */
}

static void seconds(void **state)
{
	(void)state;
	uint64_t ns;
	assert_true(cli_seconds("2", &ns) && ns == 2000000000ull);
	assert_true(cli_seconds("0.2", &ns) && ns == 200000000ull);
	assert_true(cli_seconds("1.000000001", &ns) && ns == 1000000001ull);
	const char *bad[] = {"", ".5", "1.", "1.0000000001", "-1", "1s", "9223372037"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(cli_seconds(bad[i], &ns));
}

static void versions(void **state)
{
	(void)state;
	uint64_t major, minor;
	assert_true(cli_version("5.3", &major, &minor) && major == 5 && minor == 3);
	const char *bad[] = {"5", "5.", ".3", "5.3x", "5.-3", "a.b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(cli_version(bad[i], &major, &minor));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(numbers),
		cmocka_unit_test(sizes),
		cmocka_unit_test(seconds),
		cmocka_unit_test(versions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
