/* SPDX-License-Identifier: MIT */
/*
 * The hypervisor interface facing a hostile guest (and a busy host): guest
 * RAM filled from the input, then a sequence of operations decoded from it
 * (MSR writes and reads with any number and value, hypercalls with any
 * control word and GPA, timer scans with a clock that moves forward, host
 * posts and signals, guest memory scribbles and slot consumption, TSC
 * frequency changes) against a partition with a message and an event
 * connection. Nothing may crash, leak or touch memory outside guest RAM
 * (ASan: RAM is heap memory of its exact size), and every interrupt hv
 * raises must be a real vector on an existing VP.
 *
 * Input: byte 0 features, byte 1 VP count and flags, byte 2 hypercall code
 * length, u16 RAM fill length, the fill, then operations (byte 0 opcode,
 * then its arguments; a short input reads as zeros).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv.h"

#define RAM0_GPA 0x0ull
#define RAM0_SIZE (16 * 4096ull)
#define RAM1_GPA 0x100000ull
#define RAM1_SIZE (4 * 4096ull)
#define MAX_OPS 1024
#define MSG_CONN 1
#define EVENT_CONN 2

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *d;
	size_t n, i;
};

struct run {
	struct hv_partition *p;
	uint32_t vp_count;
	uint16_t handler_status;
	uint64_t sink;
};

static uint8_t u8(struct input *in)
{
	return in->i < in->n ? in->d[in->i++] : 0;
}

/* Little-endian reads. Each byte is taken in its own statement: the two
 * operands of | are unsequenced, so u8(in) | u8(in) << 8 could read them in
 * either order. */
static uint16_t u16(struct input *in)
{
	uint16_t lo = u8(in);
	return (uint16_t)(lo | u8(in) << 8);
}

static uint32_t u32(struct input *in)
{
	uint32_t lo = u16(in);
	return lo | (uint32_t)u16(in) << 16;
}

static uint64_t u64(struct input *in)
{
	uint64_t lo = u32(in);
	return lo | (uint64_t)u32(in) << 32;
}

/* ---- callbacks: check what hv asks of the backend ---- */

static void on_inject(void *ctx, uint32_t vp, uint8_t vector, bool auto_eoi)
{
	struct run *r = ctx;
	(void)auto_eoi;
	if (vp >= r->vp_count || vector < HV_SYNIC_FIRST_VALID_VECTOR)
		abort();
}

static void on_timers_changed(void *ctx)
{
	(void)ctx;
}

static void on_crash(void *ctx, uint32_t vp, const uint64_t params[5], const char *message,
		     uint32_t len)
{
	struct run *r = ctx;
	if (vp >= r->vp_count || len > 4096 || (!message) != (len == 0))
		abort();
	r->sink += params[0];
	for (uint32_t i = 0; i < len; i++)
		r->sink += (uint8_t)message[i];
}

__attribute__((format(printf, 2, 0)))
static void on_log(void *ctx, const char *fmt, va_list ap)
{
	struct run *r = ctx;
	char line[256];
	r->sink += (uint64_t)vsnprintf(line, sizeof(line), fmt, ap);
}

static const struct hv_host_ops ops = {on_inject, on_timers_changed, on_crash, on_log};

/* A VMBus-server-like handler: answers on SINT 2 from inside the call. */
static uint16_t on_message(void *ctx, uint32_t vp, const struct hv_posted_message *msg)
{
	struct run *r = ctx;
	if (msg->payload_size > HV_MESSAGE_PAYLOAD_BYTES || vp >= r->vp_count)
		abort();
	hv_synic_post(r->p, vp, 2, HV_MESSAGE_TYPE_VMBUS, msg->payload, msg->payload_size,
		      msg->connection_id);
	return r->handler_status;
}

static uint16_t on_event(void *ctx, uint32_t vp, uint16_t flag)
{
	struct run *r = ctx;
	hv_synic_signal(r->p, vp, 2, flag % HV_EVENT_FLAGS_COUNT);
	return r->handler_status;
}

/* ---- argument generators: mostly plausible, sometimes anything ---- */

static const uint32_t known_msrs[] = {
	HV_MSR_GUEST_OS_ID, HV_MSR_HYPERCALL, HV_MSR_VP_INDEX, HV_MSR_RESET,
	HV_MSR_TIME_REF_COUNT, HV_MSR_REFERENCE_TSC, HV_MSR_TSC_FREQUENCY,
	HV_MSR_APIC_FREQUENCY, HV_MSR_VP_ASSIST_PAGE, HV_MSR_SCONTROL, HV_MSR_SVERSION,
	HV_MSR_SIEFP, HV_MSR_SIMP, HV_MSR_EOM, HV_MSR_SINT0, HV_MSR_SINT0 + 2, HV_MSR_SINT0 + 3,
	HV_MSR_SINT15, HV_MSR_STIMER0_CONFIG, HV_MSR_STIMER0_COUNT, HV_MSR_STIMER0_CONFIG + 2,
	HV_MSR_STIMER0_COUNT + 2, HV_MSR_STIMER3_COUNT - 1, HV_MSR_STIMER3_COUNT,
	HV_MSR_CRASH_P0, HV_MSR_CRASH_P0 + 3, HV_MSR_CRASH_P4, HV_MSR_CRASH_CTL,
	HV_MSR_TSC_INVARIANT_CONTROL, HV_MSR_GUEST_IDLE,
};

static uint32_t pick_msr(struct input *in)
{
	uint8_t b = u8(in);
	if (b < 200)
		return known_msrs[b % (sizeof(known_msrs) / sizeof(known_msrs[0]))];
	if (b < 240)
		return HV_MSR_RANGE_FIRST + u16(in) % 0x200;
	return u32(in);
}

static uint64_t pick_value(struct input *in)
{
	switch (u8(in) % 6) {
	case 0:
		return u64(in);
	case 1: { /* an enabled page in RAM, bits 11:1 anything */
		uint8_t page = u8(in) % 20;
		uint64_t gpa = page < 16 ? RAM0_GPA + page * 4096ull : RAM1_GPA + (page - 16) * 4096ull;
		return gpa | (u16(in) & 0xFFE) | HV_MSR_PAGE_ENABLE;
	}
	case 2: /* a GPA in RAM, any alignment, near region ends too */
		return (u8(in) & 1 ? RAM1_GPA + RAM1_SIZE : RAM0_GPA + RAM0_SIZE) -
		       (u16(in) % 0x5000);
	case 3:
		return u8(in);
	case 4: /* a timer config or SINT value */
		return u32(in) & 0xFFFFF;
	default: /* connection id, flag number, reserved bits */
		return (u64(in) & 0xFFFF000000000007ull) | (u8(in) % 4);
	}
}

static uint64_t pick_control(struct input *in)
{
	static const uint16_t codes[] = {HVCALL_POST_MESSAGE, HVCALL_SIGNAL_EVENT,
					 HVCALL_NOTIFY_LONG_SPIN_WAIT, HVCALL_GET_PARTITION_ID};
	uint8_t b = u8(in);
	if (b >= 224)
		return u64(in);
	uint64_t c = codes[b % 4];
	if (b & 0x04)
		c |= HV_HYPERCALL_FAST;
	if (b & 0x08)
		c |= (uint64_t)(u8(in) % 4) << HV_HYPERCALL_REP_COUNT_SHIFT;
	if (b & 0x10)
		c |= (uint64_t)(u8(in) % 4) << HV_HYPERCALL_VARHEAD_SHIFT;
	if (b & 0x20)
		c |= 1ull << (u8(in) % 64);
	return c;
}

/* ---- the guest's part ---- */

static void *ram_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	return guest_memory_ptr(mem, gpa, len);
}

/* The guest frees a slot and EOMs if flagged (vmbus_signal_eom). */
static void guest_consume(struct run *r, const struct guest_memory *mem, uint32_t vp,
			  uint32_t sint, uint64_t now)
{
	struct hv_vp_state s;
	if (hv_get_vp_state(r->p, vp, &s) || !(s.simp & 1))
		return;
	uint8_t *slot = ram_ptr(mem, (s.simp & ~0xFFFull) + sint * 256ull, 256);
	if (!slot)
		return;
	memset(slot, 0, 4); /* message_type = HVMSG_NONE */
	if (slot[5] & HV_MESSAGE_FLAG_PENDING)
		hv_msr_write(r->p, vp, HV_MSR_EOM, 0, now);
}

static void run_ops(struct run *r, struct input *in, const struct guest_memory *mem,
		    uint8_t *ram0)
{
	uint64_t now = 0, value = 0;
	static uint8_t payload[256];

	for (int op = 0; op < MAX_OPS && in->i < in->n; op++) {
		uint32_t vp = u8(in) % (r->vp_count + 1); /* one past: a bad VP */
		switch (u8(in) % 13) {
		case 0:
		case 1: {
			uint32_t msr = pick_msr(in);
			hv_msr_write(r->p, vp, msr, pick_value(in), now);
			break;
		}
		case 2:
			if (hv_msr_read(r->p, vp, pick_msr(in), now, &value) == 0)
				r->sink += value;
			break;
		case 3:
		case 4: {
			struct hv_hypercall hc;
			hc.control = pick_control(in);
			hc.input = pick_value(in);
			hc.output = u64(in);
			r->sink += hv_hypercall(r->p, vp, &hc, now);
			break;
		}
		case 5:
			now += u32(in) % 200000;
			r->sink += hv_scan(r->p, now);
			break;
		case 6: {
			uint32_t sint = u8(in) % 17, type = u8(in) % 4 ? 1 : u32(in);
			uint32_t len = u8(in);
			memset(payload, u8(in), sizeof(payload));
			hv_synic_post(r->p, vp, sint, type, payload, len, u64(in));
			r->sink += hv_synic_queued(r->p, vp, sint);
			break;
		}
		case 7: {
			uint32_t sint = u8(in) % 17;
			hv_synic_signal(r->p, vp, sint, u16(in) % 2100);
			break;
		}
		case 8: { /* the guest scribbles on its memory */
			uint64_t off = u16(in) % RAM0_SIZE;
			uint64_t v = u64(in);
			memcpy(ram0 + (off & ~7ull), &v, 8);
			break;
		}
		case 9:
			guest_consume(r, mem, vp, u8(in) % 16, now);
			break;
		case 10: {
			uint64_t hz = u64(in) >> (u8(in) % 64);
			hv_set_tsc_frequency(r->p, hz, u64(in));
			break;
		}
		case 11: {
			uint32_t regs[4];
			uint32_t leaf = u8(in) & 0x80 ? u32(in) : 0x40000000u + u8(in) % 16;
			if (hv_cpuid(r->p, leaf, regs))
				r->sink += regs[0] ^ regs[1] ^ regs[2] ^ regs[3];
			uint64_t x = u64(in);
			r->sink += hv_ref_time(r->p, x) + hv_ref_to_tsc(r->p, x);
			break;
		}
		default: /* connections come and go */
			r->handler_status = u8(in) % 20;
			if (u8(in) & 1)
				hv_connection_remove(r->p, false, MSG_CONN);
			else
				hv_connection_add_message(r->p, MSG_CONN, on_message, r);
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size, 0};
	static uint8_t code[64];

	uint32_t features = u8(&in) & HV_OFFER_ALL;
	if (features & HV_OFFER_STIMER_DIRECT)
		features |= HV_OFFER_STIMER;
	if (features & HV_OFFER_STIMER)
		features |= HV_OFFER_SYNIC;
	uint8_t b = u8(&in);
	uint32_t code_len = u8(&in) % (sizeof(code) + 1);
	memset(code, 0xCC, sizeof(code));

	struct hv_config cfg = {
		.vp_count = 1 + (b & 3),
		.tsc_hz = 1000000000ull + (uint64_t)(b >> 4) * 333333333ull,
		.apic_hz = 200000000,
		.tsc_at_start = (uint64_t)(b >> 2) << 30,
		.features = features,
		.deprecate_auto_eoi = b & 4,
		.auto_eoi_supported = b & 8,
		.hypercall_code = code,
		.hypercall_code_len = code_len,
	};

	uint8_t *ram0 = aligned_alloc(4096, RAM0_SIZE);
	uint8_t *ram1 = aligned_alloc(4096, RAM1_SIZE);
	struct guest_memory mem;
	memset(&mem, 0, sizeof(mem));
	if (!ram0 || !ram1 || guest_memory_add(&mem, RAM0_GPA, RAM0_SIZE, ram0) ||
	    guest_memory_add(&mem, RAM1_GPA, RAM1_SIZE, ram1))
		abort();
	memset(ram0, 0, RAM0_SIZE);
	memset(ram1, 0, RAM1_SIZE);
	size_t fill = u16(&in);
	if (fill > in.n - in.i)
		fill = in.n - in.i;
	if (fill > RAM0_SIZE)
		fill = RAM0_SIZE;
	memcpy(ram0, in.d + in.i, fill);
	in.i += fill;

	struct run r = {.vp_count = cfg.vp_count};
	r.p = hv_partition_new(&cfg, &mem, &ops, &r);
	if (!r.p)
		abort();
	if (hv_connection_add_message(r.p, MSG_CONN, on_message, &r) ||
	    hv_connection_add_event(r.p, EVENT_CONN, on_event, &r))
		abort();

	run_ops(&r, &in, &mem, ram0);

	struct hv_partition_state st;
	hv_get_state(r.p, &st);
	r.sink += st.bad_msr_accesses + st.bad_hypercalls;
	hv_partition_free(r.p);
	free(ram0);
	free(ram1);
	/* Keep the sums alive without printing anything. */
	volatile uint64_t keep = r.sink;
	(void)keep;
	return 0;
}
