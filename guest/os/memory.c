/* SPDX-License-Identifier: MIT */
/*
 * Physical pages for the guest library (rings, SynIC pages, the hypercall
 * page): first-fit over a bitmap of the RAM the PVH memory map reports
 * above the kernel image, below 4 GiB (what the boot page tables map).
 * Identity-mapped, so a page's address is its GPA. Interrupts are kept
 * off around the bitmap, so handlers and every caller may allocate.
 */
#include <string.h>

#include "hvkit/boot.h"
#include "os.h"

#define PAGE 4096ull
#define MAX_PAGES (1u << 20) /* 4 GiB */

extern uint8_t __kernel_end[];

static uint64_t bitmap[MAX_PAGES / 64]; /* set: free */
static uint32_t total_free;

static bool is_free(uint32_t pfn)
{
	return bitmap[pfn / 64] >> (pfn % 64) & 1;
}

static void mark(uint32_t pfn, uint32_t count, bool free)
{
	for (uint32_t p = pfn; p < pfn + count; p++) {
		if (free)
			bitmap[p / 64] |= 1ull << (p % 64);
		else
			bitmap[p / 64] &= ~(1ull << (p % 64));
	}
	total_free = free ? total_free + count : total_free - count;
}

void memory_init(const struct hvm_start_info *si)
{
	const struct hvm_memmap_table_entry *map = (const void *)(uintptr_t)si->memmap_paddr;
	uint64_t floor = ((uint64_t)(uintptr_t)__kernel_end + PAGE - 1) & ~(PAGE - 1);
	for (uint32_t i = 0; si->version >= 1 && i < si->memmap_entries; i++) {
		if (map[i].type != E820_RAM)
			continue;
		uint64_t start = (map[i].addr + PAGE - 1) & ~(PAGE - 1);
		uint64_t end = (map[i].addr + map[i].size) & ~(PAGE - 1);
		if (start < floor)
			start = floor;
		if (end > (uint64_t)MAX_PAGES * PAGE)
			end = (uint64_t)MAX_PAGES * PAGE;
		if (end > start)
			mark((uint32_t)(start / PAGE), (uint32_t)((end - start) / PAGE), true);
	}
}

uint64_t memory_free_bytes(void)
{
	return (uint64_t)total_free * PAGE;
}

static void *find_and_take(uint32_t count)
{
	uint32_t run = 0;
	for (uint32_t p = 0; p < MAX_PAGES; p++) {
		if (!(p % 64) && !bitmap[p / 64]) { /* a word with nothing free */
			run = 0;
			p += 63;
			continue;
		}
		run = is_free(p) ? run + 1 : 0;
		if (run == count) {
			uint32_t first = p + 1 - count;
			mark(first, count, false);
			return (void *)(uintptr_t)((uint64_t)first * PAGE);
		}
	}
	return NULL;
}

void *pages_alloc(uint32_t count)
{
	if (!count)
		return NULL;
	uint64_t flags = irq_save();
	void *mem = find_and_take(count);
	irq_restore(flags);
	if (mem)
		memset(mem, 0, (size_t)count * PAGE);
	return mem;
}

void pages_free(void *pages, uint32_t count)
{
	if (!pages)
		return;
	uint64_t flags = irq_save();
	mark((uint32_t)((uintptr_t)pages / PAGE), count, true);
	irq_restore(flags);
}
