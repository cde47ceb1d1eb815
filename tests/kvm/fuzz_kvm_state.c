/* SPDX-License-Identifier: MIT */
/*
 * kvm_state_parse facing a corrupt or hostile record (a snapshot file is
 * input from disk, maybe from another machine). The first byte picks how
 * the rest is used, so that the fuzzer reaches past each layer of checks:
 *
 *   0  the record as it is (header and CRC must hold);
 *   1  the rest is a body: the header (magic, version, VP count, length,
 *      CRC) is made right around it;
 *   2  a record whose fields all have KVM's sizes (linux/kvm.h, the layout
 *      kvm_state.c writes), with the input's bytes as their contents and
 *      its choices of FPU kind and MSR list.
 *
 * Whatever parses must be freed without a leak; nothing may crash.
 */
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "kvm_state.h"
#include "record.h"

#define VPS 2
#define XSAVE_BYTES 4096
#define RECORD_MAX (1u << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(const uint8_t *buf, size_t len)
{
	struct kvm_state *s;
	if (kvm_state_parse(buf, len, VPS, XSAVE_BYTES, &s) == 0)
		kvm_state_free(s);
	/* A KVM without XSAVE reads the same bytes differently. */
	if (kvm_state_parse(buf, len, VPS, 0, &s) == 0)
		kvm_state_free(s);
}

/* n bytes from the input (zeros once it runs out), as a blob. */
static void blob(struct record_writer *w, struct fuzz_input *in, size_t n)
{
	uint8_t chunk[XSAVE_BYTES];
	memset(chunk, 0, n);
	fuzz_bytes(in, chunk, n);
	record_put32(w, (uint32_t)n);
	record_put(w, chunk, n);
}

static void structured(struct record_writer *w, struct fuzz_input *in)
{
	record_put64(w, fuzz_u64(in)); /* KVM's clock */
	static const uint32_t chips[] = {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
					 KVM_IRQCHIP_IOAPIC};
	for (int i = 0; i < 3; i++) {
		struct kvm_irqchip chip = {.chip_id = fuzz_u8(in) < 16 ? 99 : chips[i]};
		fuzz_bytes(in, &chip.chip, sizeof(chip.chip));
		record_put32(w, sizeof(chip));
		record_put(w, &chip, sizeof(chip));
	}
	for (int vp = 0; vp < VPS; vp++) {
		blob(w, in, sizeof(struct kvm_regs));
		blob(w, in, sizeof(struct kvm_sregs));
		uint8_t fpu = fuzz_u8(in) % 3; /* 2: neither kind */
		record_put8(w, fpu);
		blob(w, in, fpu == 1 ? XSAVE_BYTES : sizeof(struct kvm_fpu));
		record_put8(w, fuzz_u8(in) % 3);
		blob(w, in, sizeof(struct kvm_xcrs));
		uint32_t msrs = fuzz_u8(in) % 64;
		record_put32(w, msrs);
		for (uint32_t i = 0; i < msrs; i++) {
			/* Mostly MSRs a save writes, sometimes any. */
			static const uint32_t known[] = {0x10, 0x174, 0x277, 0x6e0, 0x2ff, 0x20f,
							 0xc0000082, 0xc0000103};
			uint8_t pick = fuzz_u8(in);
			record_put32(w, pick < 240 ? known[pick % 8] : fuzz_u32(in));
			record_put64(w, fuzz_u64(in));
		}
		blob(w, in, sizeof(struct kvm_lapic_state));
		blob(w, in, sizeof(struct kvm_vcpu_events));
		blob(w, in, sizeof(struct kvm_mp_state));
		blob(w, in, sizeof(struct kvm_debugregs));
	}
	if (fuzz_u8(in) == 7)
		record_put8(w, 0); /* a byte after the end */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 3;
	if (mode == 0) {
		parse(data + 1, size - 1);
		return 0;
	}
	uint8_t *buf = malloc(RECORD_MAX);
	if (!buf)
		return 0;
	struct record_writer w = record_writer(buf, RECORD_MAX);
	if (mode == 1) {
		record_put(&w, data + 1, size - 1 < RECORD_MAX / 2 ? size - 1 : RECORD_MAX / 2);
	} else {
		struct fuzz_input in = {data + 1, size - 1};
		structured(&w, &in);
	}
	size_t len;
	if (record_finish(&w, "HVKITKVM", 1, VPS, &len) == 0)
		parse(buf, len);
	free(buf);
	return 0;
}
