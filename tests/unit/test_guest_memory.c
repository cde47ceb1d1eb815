/* SPDX-License-Identifier: MIT */
/* Every GPA from the guest reaches host memory only through these checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guest_memory.h"

static uint8_t low[2 * 4096] __attribute__((aligned(4096)));
static uint8_t high[4096] __attribute__((aligned(4096)));

static void two_regions(struct guest_memory *m)
{
	memset(m, 0, sizeof(*m));
	assert_int_equal(guest_memory_add(m, 0, sizeof(low), low), 0);
	assert_int_equal(guest_memory_add(m, 0x100000, sizeof(high), high), 0);
}

static void add_rejects_bad_regions(void **state)
{
	(void)state;
	struct guest_memory m = {0};

	assert_int_equal(guest_memory_add(&m, 1, 4096, low), -EINVAL);
	assert_int_equal(guest_memory_add(&m, 0, 4095, low), -EINVAL);
	assert_int_equal(guest_memory_add(&m, 0, 0, low), -EINVAL);
	assert_int_equal(guest_memory_add(&m, 0, 4096, NULL), -EINVAL);
	assert_int_equal(guest_memory_add(&m, 0, 4096, low + 8), -EINVAL); /* host side */
	assert_int_equal(guest_memory_add(&m, ~0xFFFull, 8192, low), -EINVAL); /* wraps */
	assert_int_equal(guest_memory_add(&m, 0, 8192, low), 0);
	assert_int_equal(guest_memory_add(&m, 4096, 4096, high), -EINVAL); /* overlaps */
	for (uint64_t i = 1; i < GUEST_MEMORY_MAX_REGIONS; i++)
		assert_int_equal(guest_memory_add(&m, i << 20, 4096, high), 0);
	assert_int_equal(guest_memory_add(&m, 64 << 20, 4096, high), -ENOSPC);
	assert_int_equal(guest_memory_size(&m), 8192 + (GUEST_MEMORY_MAX_REGIONS - 1) * 4096);
}

static void ptr_maps_inside_regions(void **state)
{
	(void)state;
	struct guest_memory m;

	two_regions(&m);
	assert_ptr_equal(guest_memory_ptr(&m, 0, 1), low);
	assert_ptr_equal(guest_memory_ptr(&m, 100, 8092), low + 100); /* to the last byte */
	assert_ptr_equal(guest_memory_ptr(&m, 0x100FFF, 1), high + 4095);
	assert_ptr_equal(guest_memory_page(&m, 4096), low + 4096);
}

static void ptr_refuses_everything_else(void **state)
{
	(void)state;
	struct guest_memory m;

	two_regions(&m);
	assert_null(guest_memory_ptr(&m, 100, 8093));        /* one byte past the end */
	assert_null(guest_memory_ptr(&m, 8192, 1));          /* the gap */
	assert_null(guest_memory_ptr(&m, 0x100000 - 1, 2));  /* straddles into a region */
	assert_null(guest_memory_ptr(&m, 4096, 0x100000));   /* spans both regions */
	assert_null(guest_memory_ptr(&m, 0, 0));             /* empty */
	assert_null(guest_memory_ptr(&m, 0x100800, UINT64_MAX)); /* length overflow */
	assert_null(guest_memory_ptr(&m, UINT64_MAX, 1));
	assert_null(guest_memory_ptr(&m, UINT64_MAX - 4095, 4096));
	assert_null(guest_memory_page(&m, 4097));            /* unaligned page */
	assert_null(guest_memory_page(&m, 0x101000));
}

static void read_write_copy_and_check(void **state)
{
	(void)state;
	struct guest_memory m;
	uint8_t buf[16] = "0123456789abcde";

	two_regions(&m);
	assert_int_equal(guest_memory_write(&m, 0x100010, buf, 16), 0);
	assert_memory_equal(high + 16, buf, 16);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(guest_memory_read(&m, 0x100010, buf, 16), 0);
	assert_memory_equal(buf, "0123456789abcde", 16);
	assert_int_equal(guest_memory_read(&m, 0x100FF8, buf, 16), -EFAULT);
	assert_int_equal(guest_memory_write(&m, 8190, buf, 4), -EFAULT);
}

static void file_offsets_follow_regions(void **state)
{
	(void)state;
	struct guest_memory m = {0};
	int fd;
	uint64_t off;

	assert_int_equal(guest_memory_add(&m, 0, sizeof(low), low), 0);
	assert_int_equal(guest_memory_add_file(&m, 0x100000, 4096, high, 7, 0x2000), 0);
	assert_int_equal(guest_memory_add_file(&m, 0x200000, 4096, high, 7, 0x2001), -EINVAL);
	assert_int_equal(guest_memory_file_offset(&m, 0x100FFF, &fd, &off), 0);
	assert_int_equal(fd, 7);
	assert_int_equal(off, 0x2000);
	assert_int_equal(guest_memory_file_offset(&m, 0, &fd, &off), -ENOENT); /* no file */
	assert_int_equal(guest_memory_file_offset(&m, 0x101000, &fd, &off), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(add_rejects_bad_regions),
		cmocka_unit_test(ptr_maps_inside_regions),
		cmocka_unit_test(ptr_refuses_everything_else),
		cmocka_unit_test(read_write_copy_and_check),
		cmocka_unit_test(file_offsets_follow_regions),
	};
	return cmocka_run_group_tests_name("guest memory", tests, NULL, NULL);
}
