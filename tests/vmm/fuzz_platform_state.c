/* SPDX-License-Identifier: MIT */
/*
 * kvm_platform_load facing a corrupt or hostile record (a snapshot file is
 * input from disk). The input is a record as it is (first byte odd), or
 * mutations of a real one (fuzz_record.h): a platform whose UART has its
 * registers set and bytes waiting in its FIFO, whose RTC and PM block were
 * written, is saved and changed as the input says. Whatever loads must
 * save, load into another platform and save to the same bytes; the real
 * record, untouched, must load and give the state back.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_record.h"
#include "kvm_platform.h"
#include "pio.h"
#include "platform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RECORD_MAX 4096

static struct kvm_platform *platform(void)
{
	struct kvm_platform_config cfg = {.cpus = 2, .memory = 64u << 20, .kernel = "unused"};
	struct kvm_platform *p;
	if (kvm_platform_new(&cfg, &p))
		abort();
	return p;
}

static void out(struct kvm_platform *p, uint16_t port, uint32_t value)
{
	kvm_platform_pio(p, NULL, 0, port, 1, true, &value);
}

static uint32_t in(struct kvm_platform *p, uint16_t port)
{
	uint32_t value = 0;
	kvm_platform_pio(p, NULL, 0, port, 1, false, &value);
	return value;
}

/* A guest's settings: 115200 8N1 with FIFOs and the receive interrupt,
 * three bytes typed; CMOS register 0x30 written; SCI enabled. */
static void busy(struct kvm_platform *p)
{
	out(p, 0x3fb, 0x80);
	out(p, 0x3f8, 1);
	out(p, 0x3f9, 0);
	out(p, 0x3fb, 0x03);
	out(p, 0x3fa, 0xc7);
	out(p, 0x3f9, 0x01);
	out(p, 0x3fc, 0x0b);
	kvm_platform_input(p, (const uint8_t *)"abc", 3);
	out(p, 0x70, 0x30);
	out(p, 0x71, 0x5a);
	uint32_t sci_en = 1;
	kvm_platform_pio(p, NULL, 0, PLATFORM_PM1_CNT, 2, true, &sci_en);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rec[RECORD_MAX], again[RECORD_MAX], third[RECORD_MAX];
	size_t len = 0;
	if (fuzz_record_is_raw(data, size)) {
		len = fuzz_record_raw(data, size, rec, sizeof(rec));
	} else {
		struct kvm_platform *a = platform();
		busy(a);
		if (kvm_platform_save(a, rec, sizeof(rec), &len))
			abort();
		kvm_platform_free(a);
		len = fuzz_record_mutate(data, size, rec, len);
	}
	struct kvm_platform *b = platform();
	int err = kvm_platform_load(b, rec, len);
	if (size <= 1 && !fuzz_record_is_raw(data, size)) {
		/* Untouched: the settings and the typed bytes are back. */
		out(b, 0x70, 0x30);
		uint32_t pm1 = 0;
		kvm_platform_pio(b, NULL, 0, PLATFORM_PM1_CNT, 2, false, &pm1);
		if (err || in(b, 0x3f9) != 0x01 || in(b, 0x3fb) != 0x03 || in(b, 0x3f8) != 'a' ||
		    in(b, 0x71) != 0x5a || !(pm1 & 1))
			abort();
	} else if (!err) {
		size_t n = 0, m = 0;
		if (kvm_platform_save(b, again, sizeof(again), &n))
			abort();
		struct kvm_platform *c = platform();
		if (kvm_platform_load(c, again, n) || kvm_platform_save(c, third, sizeof(third), &m) ||
		    m != n || memcmp(again, third, n))
			abort(); /* what loads must round-trip */
		kvm_platform_free(c);
	}
	kvm_platform_free(b);
	return 0;
}
