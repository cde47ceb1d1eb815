/* SPDX-License-Identifier: MIT */
/*
 * The guest's Hyper-V enlightenments (see hv_guest.h). Freestanding: only
 * the port touches the environment. Each step names the Linux 6.1 function
 * whose behaviour it reproduces; the code is our own.
 *
 * Shared pages (SIMP, SIEFP, the TSC page) are written by the host at any
 * time, so every read of them is an atomic load and every value is read
 * once into a local before it is checked and used.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hv_guest.h"
#include "hvkit/vmbus.h"

/* Linux's HYPERVISOR_CALLBACK_VECTOR on x86, where VMBus messages arrive. */
#define HV_GUEST_DEFAULT_SINT_VECTOR 0xF3u

/*
 * Linux retries the TSC page read for as long as the sequence moves. A host
 * that never stops moving it would hang us; after this many tries we give
 * up on the page for this read and use the reference counter MSR.
 */
#define HV_TSC_PAGE_MAX_TRIES 1024u

/* MSR bits that a page-enable MSR keeps across our writes (11:1). */
#define HV_MSR_PAGE_PRESERVED 0xFFEull

/* ---- port helpers ---- */

static void hv_log(const struct hv_port *port, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void hv_log(const struct hv_port *port, const char *fmt, ...)
{
	va_list ap;

	if (!port->log)
		return;
	va_start(ap, fmt);
	port->log(port->ctx, fmt, ap);
	va_end(ap);
}

static bool rdmsr(const struct hv_port *port, uint32_t msr, uint64_t *value)
{
	*value = 0;
	return port->rdmsr(port->ctx, msr, value);
}

static bool wrmsr(const struct hv_port *port, uint32_t msr, uint64_t value)
{
	return port->wrmsr(port->ctx, msr, value);
}

static uint32_t current_vp(const struct hv_port *port)
{
	return port->current_vp(port->ctx);
}

static bool port_complete(const struct hv_port *port)
{
	return port && port->cpuid && port->rdmsr && port->wrmsr && port->rdtsc &&
	       port->hypercall && port->current_vp && port->alloc_pages &&
	       port->free_pages && port->gpa_of && port->set_vector_handler &&
	       port->lock_new && port->lock_free && port->lock && port->unlock;
}

/* A zeroed page and its GPA; NULL (and *gpa invalid) if none. */
static void *alloc_page(const struct hv_port *port, uint64_t *gpa)
{
	*gpa = HV_GPA_INVALID;
	void *p = port->alloc_pages(port->ctx, 1);
	if (!p)
		return NULL;
	*gpa = port->gpa_of(port->ctx, p);
	if (*gpa == HV_GPA_INVALID || (*gpa & ~HV_PAGE_MASK)) {
		port->free_pages(port->ctx, p, 1);
		return NULL;
	}
	return p;
}

static void free_page(const struct hv_port *port, void *p)
{
	if (p)
		port->free_pages(port->ctx, p, 1);
}

/* ---- detection: mshyperv.c ms_hyperv_platform() and ms_hyperv_init_platform() ---- */

int hv_guest_detect(const struct hv_port *port, struct hv_guest_features *out)
{
	uint32_t r[4];

	memset(out, 0, sizeof(*out));
	if (!port || !port->cpuid)
		return -ENODEV;

	port->cpuid(port->ctx, 1, 0, r);
	if (!(r[2] & HV_CPUID1_ECX_HYPERVISOR))
		return -ENODEV;

	port->cpuid(port->ctx, HV_CPUID_VENDOR_AND_MAX, 0, r);
	out->max_leaf = r[0];
	if (r[0] < HV_CPUID_MAX_LEAF_MIN || r[0] > HV_CPUID_MAX_LEAF_MAX ||
	    r[1] != HV_CPUID_VENDOR_EBX || r[2] != HV_CPUID_VENDOR_ECX ||
	    r[3] != HV_CPUID_VENDOR_EDX)
		return -ENODEV;

	port->cpuid(port->ctx, HV_CPUID_FEATURES, 0, r);
	out->features = r[0];
	out->privileges = r[1];
	out->misc = r[3];
	port->cpuid(port->ctx, HV_CPUID_ENLIGHTENMENT_INFO, 0, r);
	out->hints = r[0];
	port->cpuid(port->ctx, HV_CPUID_IMPLEMENTATION_LIMITS, 0, r);
	out->max_vps = r[0];

	/* The hypercall and VP index MSRs are mandatory for everything else. */
	if (!(out->features & HV_FEAT_HYPERCALL_MSRS) || !(out->features & HV_FEAT_VP_INDEX_MSR))
		return -ENODEV;
	return 0;
}

/* ---- partition set-up: hv_init.c hyperv_init(), hyperv_timer.c, mshyperv.c ---- */

static enum hv_stimer_mode choose_stimer_mode(const struct hv_guest *g)
{
	/* hv_stimer_alloc(): no stimer MSRs, no clock event. */
	if (!(g->features.features & HV_FEAT_STIMER_MSRS))
		return HV_STIMER_MODE_NONE;
	if ((g->features.misc & HV_FEAT_X64_STIMER_DIRECT_MODE) && !g->config.prefer_message_mode)
		return HV_STIMER_MODE_DIRECT;
	return HV_STIMER_MODE_MESSAGE;
}

int hv_guest_init(struct hv_guest *g, const struct hv_port *port,
		  const struct hv_guest_config *cfg)
{
	uint64_t gpa, v;
	int err;

	if (!g || !port_complete(port))
		return -EINVAL;
	memset(g, 0, sizeof(*g));
	g->port = port;
	if (cfg)
		g->config = *cfg;
	if (g->config.vp_count > HV_GUEST_MAX_VPS)
		return -EINVAL;
	if (g->config.sint_vector == 0)
		g->config.sint_vector = HV_GUEST_DEFAULT_SINT_VECTOR;
	if (g->config.sint_vector < HV_SYNIC_FIRST_VALID_VECTOR)
		return -EINVAL;
	if (g->config.guest_os_id == 0)
		g->config.guest_os_id = HV_GUEST_OS_ID_HVKIT;

	err = hv_guest_detect(port, &g->features);
	if (err)
		return err;
	g->stimer_mode = choose_stimer_mode(g);
	if (g->stimer_mode == HV_STIMER_MODE_DIRECT &&
	    g->config.sint_vector == HV_STIMER0_DIRECT_VECTOR)
		return -EINVAL;

	/* hyperv_init(): the guest OS id first, then the hypercall page. */
	if (!wrmsr(port, HV_MSR_GUEST_OS_ID, g->config.guest_os_id))
		return -EIO;

	g->hypercall_page = alloc_page(port, &gpa);
	if (!g->hypercall_page) {
		err = -ENOMEM;
		goto clear_os_id;
	}
	/* Read-modify-write: the TLFS asks to preserve the reserved bits. */
	if (!rdmsr(port, HV_MSR_HYPERCALL, &v)) {
		err = -EIO;
		goto free_hypercall;
	}
	v = (v & HV_MSR_PAGE_PRESERVED) | gpa | HV_HYPERCALL_MSR_ENABLE;
	if (!wrmsr(port, HV_MSR_HYPERCALL, v) || !rdmsr(port, HV_MSR_HYPERCALL, &v) ||
	    !(v & HV_HYPERCALL_MSR_ENABLE)) {
		err = -EIO;
		goto free_hypercall;
	}

	/* hv_init_tsc_clocksource(): low 12 bits kept, GPA and enable set. */
	if (g->features.features & HV_FEAT_REFERENCE_TSC_MSR) {
		void *page = alloc_page(port, &gpa);
		if (!page) {
			err = -ENOMEM;
			goto disable_hypercall;
		}
		if (!rdmsr(port, HV_MSR_REFERENCE_TSC, &v) ||
		    !wrmsr(port, HV_MSR_REFERENCE_TSC,
			   (v & ~HV_PAGE_MASK) | gpa | HV_MSR_PAGE_ENABLE)) {
			free_page(port, page);
			err = -EIO;
			goto disable_hypercall;
		}
		g->tsc_page = page;
	}

	/* ms_hyperv_init_platform(): invariant TSC exposed to the guest. */
	if (g->features.features & HV_FEAT_TSC_INVARIANT) {
		if (!wrmsr(port, HV_MSR_TSC_INVARIANT_CONTROL, HV_TSC_INVARIANT_CONTROL_ENABLE)) {
			err = -EIO;
			goto disable_tsc;
		}
	}
	return 0;

disable_tsc:
	if (g->tsc_page) {
		wrmsr(port, HV_MSR_REFERENCE_TSC, 0);
		free_page(port, g->tsc_page);
		g->tsc_page = NULL;
	}
disable_hypercall:
	wrmsr(port, HV_MSR_HYPERCALL, 0);
free_hypercall:
	free_page(port, g->hypercall_page);
	g->hypercall_page = NULL;
clear_os_id:
	/* hyperv_init()'s clean_guest_os_id. */
	wrmsr(port, HV_MSR_GUEST_OS_ID, 0);
	return err;
}

void hv_guest_set_callbacks(struct hv_guest *g, hv_guest_message_fn on_message,
			    hv_guest_events_fn on_events, hv_guest_timer_fn on_timer, void *arg)
{
	g->on_message = on_message;
	g->on_events = on_events;
	g->on_timer = on_timer;
	g->callback_arg = arg;
}

/* ---- per-VP state ---- */

static uint32_t vp_limit(const struct hv_guest *g)
{
	return g->config.vp_count ? g->config.vp_count : HV_GUEST_MAX_VPS;
}

/* The current VP's state, or NULL if the port names a VP we do not have. */
static struct hv_guest_vp *this_vp(struct hv_guest *g, uint32_t *vp_out)
{
	uint32_t vp = current_vp(g->port);
	if (vp >= vp_limit(g))
		return NULL;
	if (vp_out)
		*vp_out = vp;
	return &g->vps[vp];
}

static struct hv_message_page *vp_simp(const struct hv_guest_vp *v)
{
	return __atomic_load_n(&v->simp, __ATOMIC_ACQUIRE);
}

static struct hv_event_flags_page *vp_siefp(const struct hv_guest_vp *v)
{
	return __atomic_load_n(&v->siefp, __ATOMIC_ACQUIRE);
}

/* ---- the SINT interrupt: vmbus_isr(), vmbus_on_msg_dpc(), vmbus_signal_eom() ---- */

/* Offsets into a SIMP slot; the structs are packed, so go through bytes. */
#define SLOT_TYPE 0u
#define SLOT_SIZE 4u
#define SLOT_FLAGS 5u
#define SLOT_SENDER 8u
#define SLOT_PAYLOAD 16u
_Static_assert(offsetof(struct hv_message_header, message_type) == SLOT_TYPE, "type");
_Static_assert(offsetof(struct hv_message_header, payload_size) == SLOT_SIZE, "size");
_Static_assert(offsetof(struct hv_message_header, message_flags) == SLOT_FLAGS, "flags");
_Static_assert(offsetof(struct hv_message_header, sender) == SLOT_SENDER, "sender");
_Static_assert(offsetof(struct hv_message, payload) == SLOT_PAYLOAD, "payload");

/* The slot is 256-byte aligned in its page, so its type field is aligned. */
static uint32_t *slot_type(uint8_t *slot)
{
	return (uint32_t *)(void *)(slot + SLOT_TYPE);
}

/*
 * vmbus_signal_eom(): free the slot only if it still holds the message we
 * read (the host may already have put another one there), and write EOM
 * only if the host told us another message is waiting for the slot.
 */
static void release_slot(const struct hv_port *port, uint8_t *slot, uint32_t type)
{
	uint32_t expected = type;

	if (!__atomic_compare_exchange_n(slot_type(slot), &expected, HVMSG_NONE, false,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return;
	uint8_t flags = __atomic_load_n(slot + SLOT_FLAGS, __ATOMIC_SEQ_CST);
	if (flags & HV_MESSAGE_FLAG_PENDING)
		wrmsr(port, HV_MSR_EOM, 0);
}

static void count_bad_message(struct hv_guest *g, struct hv_guest_vp *v, uint32_t vp,
			      const char *what, uint32_t value)
{
	/* Logged once per VP: a host that sends one will send many. */
	if (v->bad_messages++ == 0)
		hv_log(g->port, "hv: VP %u: %s (%u), further ones not logged\n", vp, what, value);
}

static void sint_handler(void *arg)
{
	struct hv_guest *g = arg;
	struct hv_guest_message msg;
	struct hv_guest_vp *v;
	uint8_t *slot;
	uint32_t vp, type;

	v = this_vp(g, &vp);
	if (!v)
		return;
	struct hv_message_page *simp = vp_simp(v);
	if (!simp)
		return; /* not (or no longer) ours: the SINT was masked anyway */

	/* vmbus_chan_sched() comes first: channel events before messages. */
	if (g->on_events)
		g->on_events(g->callback_arg, vp, VMBUS_MESSAGE_SINT);

	slot = (uint8_t *)simp + VMBUS_MESSAGE_SINT * HV_MESSAGE_SIZE;
	type = __atomic_load_n(slot_type(slot), __ATOMIC_ACQUIRE);
	if (type == HVMSG_NONE)
		return;

	/* Copy out before use: the host can rewrite the slot under us. */
	const uint8_t *raw = slot;
	uint8_t size = __atomic_load_n(raw + SLOT_SIZE, __ATOMIC_RELAXED);
	memset(&msg, 0, sizeof(msg));
	msg.message_type = type;
	memcpy(&msg.sender, raw + SLOT_SENDER, sizeof(msg.sender));
	bool bad = size > HV_MESSAGE_PAYLOAD_BYTES;
	if (bad) {
		count_bad_message(g, v, vp, "SIMP payload size too large", size);
		size = 0;
	}
	msg.payload_size = size;
	memcpy(msg.payload, raw + SLOT_PAYLOAD, size);

	bool timer = type == HVMSG_TIMER_EXPIRED;
	if (timer) {
		/* The expiry itself is the news; its payload is not used, so a
		 * short one is counted but does not lose the tick. */
		if (!bad && size < sizeof(struct hv_timer_message_payload))
			count_bad_message(g, v, vp, "short timer message", size);
		v->timer_interrupts++;
		if (g->on_timer)
			g->on_timer(g->callback_arg, vp);
	}

	release_slot(g->port, slot, type);

	if (!timer && g->on_message)
		g->on_message(g->callback_arg, vp, VMBUS_MESSAGE_SINT, &msg);
}

/* hv_stimer0_percpu_isr() / hv_stimer0_isr(): the direct-mode timer vector. */
static void stimer0_direct_handler(void *arg)
{
	struct hv_guest *g = arg;
	struct hv_guest_vp *v;
	uint32_t vp;

	v = this_vp(g, &vp);
	if (!v || !__atomic_load_n(&v->online, __ATOMIC_ACQUIRE))
		return;
	v->timer_interrupts++;
	if (g->on_timer)
		g->on_timer(g->callback_arg, vp);
}

/* ---- per-VP SynIC: hv.c hv_synic_enable_regs() / hv_synic_disable_regs() ---- */

/* hv_synic_disable_regs(), in its order; errors ignored (best effort). */
static void synic_disable_regs(const struct hv_port *port)
{
	uint64_t v;

	if (rdmsr(port, HV_MSR_SINT(VMBUS_MESSAGE_SINT), &v))
		wrmsr(port, HV_MSR_SINT(VMBUS_MESSAGE_SINT), v | HV_SINT_MASKED);
	if (rdmsr(port, HV_MSR_SIMP, &v))
		wrmsr(port, HV_MSR_SIMP, v & HV_MSR_PAGE_PRESERVED);
	if (rdmsr(port, HV_MSR_SIEFP, &v))
		wrmsr(port, HV_MSR_SIEFP, v & HV_MSR_PAGE_PRESERVED);
	if (rdmsr(port, HV_MSR_SCONTROL, &v))
		wrmsr(port, HV_MSR_SCONTROL, v & ~HV_SCONTROL_ENABLE);
}

static void vp_free(const struct hv_port *port, struct hv_guest_vp *v)
{
	void *simp = v->simp, *siefp = v->siefp;

	__atomic_store_n(&v->online, false, __ATOMIC_RELEASE);
	__atomic_store_n(&v->simp, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&v->siefp, NULL, __ATOMIC_RELEASE);
	free_page(port, simp);
	free_page(port, siefp);
	free_page(port, v->post_page);
	v->post_page = NULL;
	if (v->post_lock)
		port->lock_free(port->ctx, v->post_lock);
	v->post_lock = NULL;
	v->timer_configured = false;
}

int hv_guest_vp_init(struct hv_guest *g)
{
	const struct hv_port *port = g->port;
	uint64_t simp_gpa, siefp_gpa, post_gpa, v;
	struct hv_message_page *simp;
	struct hv_event_flags_page *siefp;
	struct hv_guest_vp *vp;
	int err;

	vp = this_vp(g, NULL);
	if (!vp)
		return -EINVAL;
	if (vp->online || vp->simp)
		return -EBUSY;

	/* hv_cpu_init(): the VP index as the hypervisor numbers us. */
	if (!rdmsr(port, HV_MSR_VP_INDEX, &v))
		return -EIO;
	vp->vp_index = (uint32_t)v;
	vp->timer_interrupts = 0;
	vp->bad_messages = 0;
	vp->timer_configured = false;

	/* hv_synic_alloc(): the pages, and the post-message input page
	 * (a whole page, so the input block never crosses a page). */
	simp = alloc_page(port, &simp_gpa);
	siefp = alloc_page(port, &siefp_gpa);
	vp->post_page = alloc_page(port, &post_gpa);
	vp->post_lock = port->lock_new(port->ctx);
	/* Published before any SINT is unmasked, so that the very first
	 * interrupt finds them (in a process port it may come at once). */
	__atomic_store_n(&vp->simp, simp, __ATOMIC_RELEASE);
	__atomic_store_n(&vp->siefp, siefp, __ATOMIC_RELEASE);
	if (!simp || !siefp || !vp->post_page || !vp->post_lock) {
		vp_free(port, vp);
		return -ENOMEM;
	}
	(void)post_gpa;

	/* The handlers exist before their SINTs are unmasked. */
	err = port->set_vector_handler(port->ctx, g->config.sint_vector, sint_handler, g);
	if (!err && g->stimer_mode == HV_STIMER_MODE_DIRECT)
		err = port->set_vector_handler(port->ctx, HV_STIMER0_DIRECT_VECTOR,
					       stimer0_direct_handler, g);
	if (err) {
		vp_free(port, vp);
		return err < 0 ? err : -EIO;
	}

	/* hv_synic_enable_regs(), in its order. */
	if (!rdmsr(port, HV_MSR_SIMP, &v) ||
	    !wrmsr(port, HV_MSR_SIMP, (v & HV_MSR_PAGE_PRESERVED) | simp_gpa | HV_MSR_PAGE_ENABLE))
		goto fail_io;
	if (!rdmsr(port, HV_MSR_SIEFP, &v) ||
	    !wrmsr(port, HV_MSR_SIEFP,
		   (v & HV_MSR_PAGE_PRESERVED) | siefp_gpa | HV_MSR_PAGE_ENABLE))
		goto fail_io;

	/* hv_recommend_using_aeoi(): auto-EOI unless the host deprecates it. */
	if (!rdmsr(port, HV_MSR_SINT(VMBUS_MESSAGE_SINT), &v))
		goto fail_io;
	v &= ~(HV_SINT_VECTOR_MASK | HV_SINT_MASKED | HV_SINT_AUTO_EOI);
	v |= g->config.sint_vector;
	if (!(g->features.hints & HV_HINT_DEPRECATING_AEOI))
		v |= HV_SINT_AUTO_EOI;
	if (!wrmsr(port, HV_MSR_SINT(VMBUS_MESSAGE_SINT), v))
		goto fail_io;

	if (!rdmsr(port, HV_MSR_SCONTROL, &v) ||
	    !wrmsr(port, HV_MSR_SCONTROL, v | HV_SCONTROL_ENABLE))
		goto fail_io;

	__atomic_store_n(&vp->online, true, __ATOMIC_RELEASE);
	return 0;

fail_io:
	synic_disable_regs(port);
	vp_free(port, vp);
	return -EIO;
}

/* hv_ce_shutdown(): COUNT first, then CONFIG. */
static void stimer0_shutdown(struct hv_guest *g, struct hv_guest_vp *v)
{
	wrmsr(g->port, HV_MSR_STIMER0_COUNT, 0);
	wrmsr(g->port, HV_MSR_STIMER0_CONFIG, 0);
	v->timer_configured = false;
}

void hv_guest_vp_exit(struct hv_guest *g)
{
	struct hv_guest_vp *v = this_vp(g, NULL);

	if (!v || !v->online)
		return;
	/* hv_synic_cleanup(): the timer goes before the SynIC. */
	if (g->stimer_mode != HV_STIMER_MODE_NONE)
		stimer0_shutdown(g, v);
	synic_disable_regs(g->port);
	vp_free(g->port, v);
}

/* ---- hypercalls: hv.c hv_post_message(), channel.c vmbus_set_event() ---- */

static uint16_t hypercall_status(uint64_t result)
{
	return (uint16_t)(result & HV_HYPERCALL_STATUS_MASK);
}

uint16_t hv_guest_post_message(struct hv_guest *g, uint32_t connection_id,
			       uint32_t message_type, const void *payload, uint32_t size)
{
	const struct hv_port *port = g->port;
	struct hv_input_post_message in;
	struct hv_guest_vp *v;
	uint64_t gpa, result;

	if (size > HV_MESSAGE_PAYLOAD_BYTES || (size && !payload))
		return HV_STATUS_INVALID_PARAMETER;
	v = this_vp(g, NULL);
	if (!v || !v->online || !g->hypercall_page)
		return HV_STATUS_INVALID_PARTITION_STATE;

	memset(&in, 0, sizeof(in));
	in.connection_id = connection_id;
	in.reserved = 0;
	in.message_type = message_type;
	in.payload_size = size;
	if (size)
		memcpy(in.payload, payload, size);

	port->lock(port->ctx, v->post_lock);
	memcpy(v->post_page, &in, sizeof(in));
	gpa = port->gpa_of(port->ctx, v->post_page);
	result = port->hypercall(port->ctx, g->hypercall_page, HVCALL_POST_MESSAGE, gpa, 0);
	port->unlock(port->ctx, v->post_lock);
	return hypercall_status(result);
}

uint16_t hv_guest_signal_event(struct hv_guest *g, uint32_t connection_id, uint16_t flag)
{
	const struct hv_port *port = g->port;
	uint64_t input;

	if (!g->hypercall_page)
		return HV_STATUS_INVALID_PARTITION_STATE;
	input = (uint64_t)connection_id | ((uint64_t)flag << HV_SIGNAL_EVENT_FLAG_SHIFT);
	return hypercall_status(port->hypercall(port->ctx, g->hypercall_page,
						HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, input, 0));
}

/* Bits set in v, without __builtin_popcountll: that may need libgcc's
 * __popcountdi2, which a kernel the library is ported into may not link. */
static uint32_t popcount64(uint64_t v)
{
	v = v - ((v >> 1) & 0x5555555555555555ull);
	v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
	v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0Full;
	return (uint32_t)((v * 0x0101010101010101ull) >> 56);
}

/* ---- events: vmbus_chan_sched()'s sync_test_and_clear_bit, a word at a time ---- */

uint32_t hv_guest_take_events(struct hv_guest *g, uint32_t sint,
			      uint8_t out[HV_EVENT_FLAGS_BYTES])
{
	struct hv_event_flags_page *siefp;
	struct hv_guest_vp *v;
	uint32_t count = 0;

	if (sint >= HV_SYNIC_SINT_COUNT)
		return 0;
	v = this_vp(g, NULL);
	if (!v || !(siefp = vp_siefp(v)))
		return 0;

	/* The page is page-aligned, so its 64-bit words are aligned. */
	uint64_t *words = (uint64_t *)(void *)siefp->sint_flags[sint].flags;
	for (uint32_t i = 0; i < HV_EVENT_FLAGS_BYTES / 8; i++) {
		if (__atomic_load_n(&words[i], __ATOMIC_RELAXED) == 0)
			continue;
		uint64_t taken = __atomic_exchange_n(&words[i], 0, __ATOMIC_ACQ_REL);
		if (!taken)
			continue;
		uint64_t cur;
		memcpy(&cur, out + 8 * i, 8);
		cur |= taken;
		memcpy(out + 8 * i, &cur, 8);
		count += popcount64(taken);
	}
	return count;
}

/* ---- time: hyperv_timer.h hv_read_tsc_page_tsc(), read_hv_clock_msr() ---- */

bool hv_guest_time_tsc_page(const struct hv_guest *g, uint64_t *ref)
{
	const uint8_t *page = (const uint8_t *)g->tsc_page;

	if (!page)
		return false;
	const uint32_t *seq_p =
		(const uint32_t *)(const void *)(page + offsetof(struct hv_tsc_page, sequence));
	const uint64_t *scale_p =
		(const uint64_t *)(const void *)(page + offsetof(struct hv_tsc_page, scale));
	const uint64_t *offset_p =
		(const uint64_t *)(const void *)(page + offsetof(struct hv_tsc_page, offset));

	for (uint32_t tries = 0; tries < HV_TSC_PAGE_MAX_TRIES; tries++) {
		uint32_t seq = __atomic_load_n(seq_p, __ATOMIC_ACQUIRE);
		if (seq == HV_TSC_PAGE_SEQUENCE_INVALID)
			return false;
		uint64_t scale = __atomic_load_n(scale_p, __ATOMIC_RELAXED);
		uint64_t offset = __atomic_load_n(offset_p, __ATOMIC_RELAXED);
		uint64_t tsc = g->port->rdtsc(g->port->ctx);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(seq_p, __ATOMIC_RELAXED) != seq)
			continue;
		/* mul_u64_u64_shr(tsc, scale, 64) + offset, wrapping as Linux. */
		*ref = (uint64_t)(((unsigned __int128)tsc * scale) >> 64) + offset;
		return true;
	}
	return false;
}

uint64_t hv_guest_time_msr(const struct hv_guest *g)
{
	uint64_t v;

	if (!rdmsr(g->port, HV_MSR_TIME_REF_COUNT, &v))
		return 0;
	return v;
}

uint64_t hv_guest_time(const struct hv_guest *g)
{
	uint64_t t;

	if (hv_guest_time_tsc_page(g, &t))
		return t;
	return hv_guest_time_msr(g);
}

/* ---- stimer0: hyperv_timer.c hv_ce_set_oneshot(), hv_ce_set_next_event() ---- */

int hv_guest_timer_start(struct hv_guest *g, uint64_t delta)
{
	struct hv_guest_vp *v;

	if (g->stimer_mode == HV_STIMER_MODE_NONE)
		return -ENODEV;
	v = this_vp(g, NULL);
	if (!v || !v->online)
		return -EINVAL;

	if (!v->timer_configured) {
		uint64_t cfg = HV_STIMER_ENABLE | HV_STIMER_AUTO_ENABLE;
		if (g->stimer_mode == HV_STIMER_MODE_DIRECT)
			cfg |= HV_STIMER_DIRECT_MODE |
			       ((uint64_t)HV_STIMER0_DIRECT_VECTOR << HV_STIMER_VECTOR_SHIFT);
		else
			cfg |= (uint64_t)VMBUS_MESSAGE_SINT << HV_STIMER_SINT_SHIFT;
		if (!wrmsr(g->port, HV_MSR_STIMER0_CONFIG, cfg))
			return -EIO;
		v->timer_configured = true;
	}
	if (!wrmsr(g->port, HV_MSR_STIMER0_COUNT, hv_guest_time(g) + delta))
		return -EIO;
	return 0;
}

void hv_guest_timer_stop(struct hv_guest *g)
{
	struct hv_guest_vp *v;

	if (g->stimer_mode == HV_STIMER_MODE_NONE)
		return;
	v = this_vp(g, NULL);
	if (!v)
		return;
	stimer0_shutdown(g, v);
}

/* ---- crash: hv_init.c hyperv_report_panic(), vmbus_drv.c hv_kmsg_dump() ---- */

int hv_guest_report_crash(struct hv_guest *g, const uint64_t params[5], const char *message,
			  uint32_t len)
{
	const struct hv_port *port = g->port;
	uint64_t p[5] = {0};
	uint64_t ctl = HV_CRASH_CTL_NOTIFY, caps;

	if (!(g->features.misc & HV_FEAT_X64_GUEST_CRASH_MSRS))
		return -ENODEV;
	if (params)
		memcpy(p, params, sizeof(p));

	/* A message only if the host says it takes one (vmbus_drv.c reads
	 * CRASH_CTL for NOTIFY_MSG); the page stays allocated, the host
	 * reads it after we are gone. */
	if (message && len && rdmsr(port, HV_MSR_CRASH_CTL, &caps) &&
	    (caps & HV_CRASH_CTL_NOTIFY_MSG)) {
		uint64_t gpa;
		void *page = alloc_page(port, &gpa);
		if (page) {
			if (len > HV_PAGE_SIZE)
				len = HV_PAGE_SIZE;
			memcpy(page, message, len);
			p[3] = gpa;
			p[4] = len;
			ctl |= HV_CRASH_CTL_NOTIFY_MSG;
		}
	}

	for (uint32_t i = 0; i < 5; i++)
		if (!wrmsr(port, HV_MSR_CRASH_P(i), p[i]))
			return -EIO;
	if (!wrmsr(port, HV_MSR_CRASH_CTL, ctl))
		return -EIO;
	return 0;
}
