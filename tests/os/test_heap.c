/* SPDX-License-Identifier: MIT */
/* hvkit-os's heap (guest/os/heap.c) on the host, over pages from the C
 * library that the test counts and can refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "heap.h"
#include "os.h"

#define PAGE 4096u

/* The page runs handed out and not given back (a small size's pages stay
 * with the heap: the teardown frees them). */
#define MAX_RUNS 64
static struct {
	void *p;
	uint32_t count;
} runs[MAX_RUNS];
static long pages_live;
static bool pages_refused;

void *pages_alloc(uint32_t count)
{
	if (pages_refused || !count)
		return NULL;
	unsigned i = 0;
	while (i < MAX_RUNS && runs[i].p)
		i++;
	assert_true(i < MAX_RUNS);
	runs[i].p = aligned_alloc(PAGE, (size_t)count * PAGE);
	assert_non_null(runs[i].p);
	runs[i].count = count;
	memset(runs[i].p, 0, (size_t)count * PAGE);
	pages_live += count;
	return runs[i].p;
}

void pages_free(void *pages, uint32_t count)
{
	unsigned i = 0;
	while (i < MAX_RUNS && runs[i].p != pages)
		i++;
	assert_true(i < MAX_RUNS);
	assert_int_equal(runs[i].count, count);
	runs[i].p = NULL;
	pages_live -= count;
	free(pages);
}

static int release_pages(void **state)
{
	(void)state;
	for (unsigned i = 0; i < MAX_RUNS; i++) {
		free(runs[i].p);
		runs[i].p = NULL;
	}
	pages_live = 0;
	pages_refused = false;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* 256 blocks of 16 bytes are one page; freed and taken again, they come
 * back zeroed, without another page. */
static void small_blocks_share_a_page_and_come_zeroed(void **state)
{
	(void)state;
	struct heap h = {0};
	uint8_t *b[PAGE / 16];
	for (unsigned i = 0; i < PAGE / 16; i++) {
		b[i] = heap_alloc(&h, 10);
		assert_non_null(b[i]);
		assert_int_equal((uintptr_t)b[i] % 16, 0);
		assert_true(all_zero(b[i], 10));
		memset(b[i], 0xff, 16);
	}
	assert_int_equal(pages_live, 1);
	for (unsigned i = 0; i < PAGE / 16; i++)
		assert_int_equal((uintptr_t)b[i] / PAGE, (uintptr_t)b[0] / PAGE);
	for (unsigned i = 0; i < PAGE / 16; i++)
		heap_free(&h, b[i], 10);
	for (unsigned i = 0; i < PAGE / 16; i++)
		assert_true(all_zero(heap_alloc(&h, 16), 16));
	assert_int_equal(pages_live, 1);
	assert_non_null(heap_alloc(&h, 16)); /* the 257th: a second page */
	assert_int_equal(pages_live, 2);
}

/* Each size class at both of its edges (1 and 16, 17 and 32, ... 1025
 * and 2048), each block filled to the size asked: none overlaps another,
 * and each is aligned to its class. */
static void sizes_at_class_edges_get_blocks_of_their_own(void **state)
{
	(void)state;
	struct heap h = {0};
	size_t sizes[2 * HEAP_SIZES];
	uint8_t *b[2 * HEAP_SIZES];
	for (unsigned c = 0; c < HEAP_SIZES; c++) {
		size_t block = (size_t)HEAP_BLOCK_MIN << c;
		sizes[2 * c] = c ? block / 2 + 1 : 1;
		sizes[2 * c + 1] = block;
		for (unsigned k = 2 * c; k < 2 * c + 2; k++) {
			b[k] = heap_alloc(&h, sizes[k]);
			assert_non_null(b[k]);
			assert_int_equal((uintptr_t)b[k] % block, 0);
			memset(b[k], (int)k + 1, sizes[k]);
		}
	}
	for (unsigned k = 0; k < 2 * HEAP_SIZES; k++)
		for (size_t i = 0; i < sizes[k]; i++)
			assert_int_equal(b[k][i], k + 1);
	assert_int_equal(pages_live, HEAP_SIZES);
	for (unsigned k = 0; k < 2 * HEAP_SIZES; k++)
		heap_free(&h, b[k], sizes[k]);
	/* A freed block is the next one out of its class. */
	assert_ptr_equal(heap_alloc(&h, HEAP_BLOCK_MAX), b[2 * HEAP_SIZES - 1]);
	assert_int_equal(pages_live, HEAP_SIZES);
}

/* Above the largest block: whole pages, given back on free. */
static void large_requests_are_whole_pages(void **state)
{
	(void)state;
	struct heap h = {0};
	uint8_t *one = heap_alloc(&h, HEAP_BLOCK_MAX + 1);
	uint8_t *three = heap_alloc(&h, 2 * PAGE + 1);
	assert_non_null(one);
	assert_non_null(three);
	assert_int_equal((uintptr_t)one % PAGE, 0);
	assert_int_equal(pages_live, 4);
	assert_true(all_zero(three, 3 * PAGE));
	heap_free(&h, one, HEAP_BLOCK_MAX + 1);
	heap_free(&h, three, 2 * PAGE + 1);
	assert_int_equal(pages_live, 0);
}

static void no_memory_and_odd_sizes_give_null(void **state)
{
	(void)state;
	struct heap h = {0};
	assert_null(heap_alloc(&h, 0));
	assert_null(heap_alloc(&h, ((size_t)1 << 30) + 1));
	pages_refused = true;
	assert_null(heap_alloc(&h, 1));
	assert_null(heap_alloc(&h, PAGE));
	pages_refused = false;
	heap_free(&h, NULL, 1);
	heap_free(&h, NULL, PAGE);
	assert_int_equal(pages_live, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(small_blocks_share_a_page_and_come_zeroed, release_pages),
		cmocka_unit_test_teardown(sizes_at_class_edges_get_blocks_of_their_own, release_pages),
		cmocka_unit_test_teardown(large_requests_are_whole_pages, release_pages),
		cmocka_unit_test_teardown(no_memory_and_odd_sizes_give_null, release_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
