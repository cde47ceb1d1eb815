/* SPDX-License-Identifier: MIT */
/*
 * QEMU's Hyper-V test device under arbitrary command words, mixed with the
 * guest's HvPostMessage and HvSignalEvent to whatever connections exist and
 * the guest consuming its message slots, on a 2-VP partition whose SynIC
 * is on for VP 0 only. Nothing may crash, leak or touch memory outside
 * guest RAM, and every injected interrupt must be for an existing VP.
 *
 * Input: operations, each an opcode byte and its arguments (a short input
 * reads as zeros).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "hv_testdev.h"

#define RAM_SIZE (16 * 4096ull)
#define SIMP 0x2000ull
#define SIEFP 0x3000ull
#define INPUT 0x8000ull
#define MAX_OPS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inject(void *ctx, uint32_t vp, uint8_t vector, bool auto_eoi)
{
	(void)ctx;
	(void)vector;
	(void)auto_eoi;
	if (vp >= 2)
		abort();
}

static void timers_changed(void *ctx)
{
	(void)ctx;
}

static void quiet(void *ctx, const char *fmt, va_list ap)
{
	(void)ctx;
	(void)fmt;
	(void)ap;
}

static const struct hv_host_ops ops = {.inject = inject, .timers_changed = timers_changed,
				       .log = quiet};

static void post(struct hv_partition *p, const struct guest_memory *mem, struct fuzz_input *in)
{
	struct hv_input_post_message m;
	memset(&m, 0, sizeof(m));
	m.connection_id = fuzz_u8(in);
	m.message_type = fuzz_u32(in);
	m.payload_size = fuzz_u8(in);
	for (int i = 0; i < 8; i++)
		m.payload[i] = fuzz_u8(in);
	guest_memory_write(mem, INPUT, &m, sizeof(m));
	struct hv_hypercall hc = {HVCALL_POST_MESSAGE, INPUT, 0};
	hv_hypercall(p, fuzz_u8(in) & 1, &hc, 0);
}

static void consume(struct hv_partition *p, uint8_t *ram, uint8_t sint)
{
	sint %= HV_SYNIC_SINT_COUNT;
	struct hv_message *slot = (struct hv_message *)(ram + SIMP) + sint;
	bool pending = slot->header.message_flags & HV_MESSAGE_FLAG_PENDING;
	slot->header.message_type = HVMSG_NONE;
	if (pending)
		hv_msr_write(p, 0, HV_MSR_EOM, 0, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *ram = aligned_alloc(4096, RAM_SIZE);
	if (!ram)
		return 0;
	memset(ram, 0, RAM_SIZE);
	struct guest_memory mem;
	memset(&mem, 0, sizeof(mem));
	guest_memory_add(&mem, 0, RAM_SIZE, ram);
	struct hv_config cfg = {.vp_count = 2, .tsc_hz = 1000000000ull,
				.features = HV_OFFER_ALL & ~HV_OFFER_FREQUENCY_MSRS,
				.deprecate_auto_eoi = true};
	struct hv_partition *p = hv_partition_new(&cfg, &mem, &ops, NULL);
	if (!p)
		abort();
	hv_msr_write(p, 0, HV_MSR_SCONTROL, HV_SCONTROL_ENABLE, 0);
	hv_msr_write(p, 0, HV_MSR_SIMP, SIMP | HV_MSR_PAGE_ENABLE, 0);
	hv_msr_write(p, 0, HV_MSR_SIEFP, SIEFP | HV_MSR_PAGE_ENABLE, 0);
	for (uint32_t s = 0; s < HV_SYNIC_SINT_COUNT; s += 2)
		hv_msr_write(p, 0, HV_MSR_SINT(s), 0x40 + s, 0);
	struct hv_testdev_config dc = {.hv = p, .vp_count = 2, .log = quiet};
	struct hv_testdev *d = hv_testdev_new(&dc);
	if (!d)
		abort();

	struct fuzz_input in = {data, size, 0};
	for (int n = 0; n < MAX_OPS && in.i < in.n; n++) {
		uint32_t v;
		switch (fuzz_u8(&in) % 5) {
		case 0:
			hv_testdev_command(d, fuzz_u32(&in));
			break;
		case 1: {
			uint8_t how = fuzz_u8(&in);
			v = fuzz_u32(&in);
			hv_testdev_pio(d, how & 3, (uint8_t)(1u << (how >> 2 & 3)), how & 0x10, &v);
			break;
		}
		case 2:
			post(p, &mem, &in);
			break;
		case 3: {
			uint64_t conn = fuzz_u8(&in), flag = fuzz_u8(&in);
			struct hv_hypercall hc = {HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST,
						  conn | flag << HV_SIGNAL_EVENT_FLAG_SHIFT, 0};
			hv_hypercall(p, fuzz_u8(&in) & 1, &hc, 0);
			break;
		}
		default:
			consume(p, ram, fuzz_u8(&in));
			break;
		}
	}
	struct hv_testdev_stats st;
	hv_testdev_get_stats(d, &st);
	if (st.rejected > st.commands)
		abort();
	hv_testdev_free(d);
	hv_partition_free(p);
	free(ram);
	return 0;
}
