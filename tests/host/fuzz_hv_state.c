/* SPDX-License-Identifier: MIT */
/*
 * hv_load facing a corrupt or hostile state record (a snapshot file is
 * input from disk, maybe from another machine). The input is either a
 * record as it is (first byte odd) or mutations of a real one: a partition
 * with the SynIC on, queued messages and running timers is saved, bytes
 * of the record are changed as the input says, and (byte 1 odd) the
 * checksum is made right again so the content checks are what stands in
 * the way. Whatever loads must save again, load into a third partition
 * and save to the same bytes; nothing may crash or leak.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_record.h"
#include "hv.h"

#define VPS 2
#define RAM_SIZE (16 * 4096ull)
#define RECORD_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct world {
	struct guest_memory mem;
	uint8_t *ram;
	struct hv_partition *p;
};

static void world_new(struct world *w)
{
	memset(w, 0, sizeof(*w));
	w->ram = aligned_alloc(4096, RAM_SIZE);
	memset(w->ram, 0, RAM_SIZE);
	guest_memory_add(&w->mem, 0, RAM_SIZE, w->ram);
	struct hv_config cfg = {.vp_count = VPS, .tsc_hz = 2500000000ull, .apic_hz = 1000000000ull,
				.features = HV_OFFER_ALL};
	w->p = hv_partition_new(&cfg, &w->mem, NULL, NULL);
}

static void world_free(struct world *w)
{
	hv_partition_free(w->p);
	free(w->ram);
}

/* A partition in the middle of things: what a real record holds. */
static void busy(struct world *w)
{
	struct hv_partition *p = w->p;
	hv_msr_write(p, 0, HV_MSR_GUEST_OS_ID, 0x8100000000000000ull, 0);
	hv_msr_write(p, 0, HV_MSR_CRASH_P0, 0x1234, 0);
	for (uint32_t vp = 0; vp < VPS; vp++) {
		hv_msr_write(p, vp, HV_MSR_SIMP, (1 + 2 * vp) * 4096ull | HV_MSR_PAGE_ENABLE, 0);
		hv_msr_write(p, vp, HV_MSR_SIEFP, (2 + 2 * vp) * 4096ull | HV_MSR_PAGE_ENABLE, 0);
		hv_msr_write(p, vp, HV_MSR_SINT0 + 2, 0x30, 0);
		hv_msr_write(p, vp, HV_MSR_SCONTROL, HV_SCONTROL_ENABLE, 0);
		hv_msr_write(p, vp, HV_MSR_STIMER0_CONFIG,
			     HV_STIMER_ENABLE | HV_STIMER_PERIODIC | HV_STIMER_DIRECT_MODE |
				     (0x40ull << HV_STIMER_VECTOR_SHIFT), 0);
		hv_msr_write(p, vp, HV_MSR_STIMER0_COUNT, 5000, 0);
		for (uint32_t k = 0; k < 3; k++) /* the first fills the slot */
			hv_synic_post(p, vp, 2, 1, &k, sizeof(k), 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rec[RECORD_MAX], again[RECORD_MAX], third[RECORD_MAX];
	struct world a, b, c;
	size_t len = 0;
	if (fuzz_record_is_raw(data, size)) {
		len = fuzz_record_raw(data, size, rec, sizeof(rec));
	} else {
		world_new(&a);
		busy(&a);
		hv_save(a.p, rec, sizeof(rec), &len);
		world_free(&a);
		len = fuzz_record_mutate(data, size, rec, len);
	}
	world_new(&b);
	if (hv_load(b.p, rec, len) == 0) {
		size_t n = 0, m = 0;
		if (hv_save(b.p, again, sizeof(again), &n))
			abort();
		world_new(&c);
		if (hv_load(c.p, again, n) || hv_save(c.p, third, sizeof(third), &m) || m != n ||
		    memcmp(again, third, n))
			abort(); /* what loads must round-trip */
		world_free(&c);
	}
	world_free(&b);
	return 0;
}
