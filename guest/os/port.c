/* SPDX-License-Identifier: MIT */
/*
 * hvkit-os's struct hv_port (guest/port/port.h): the CPU primitives, the
 * page allocator and a heap over it (heap.h), IDT vectors with LAPIC EOI,
 * spinlocks that also keep interrupts off, events a halted VP waits for,
 * and TSC time.
 *
 * One VP for now: the VP index is the APIC id, and SMP start-up comes with
 * the next stage.
 */
#include <errno.h>

#include "heap.h"
#include "os.h"
#include "os_port.h"

#define MAX_LOCKS 256
#define MAX_EVENTS 128

struct hv_port_lock {
	volatile int held;
	uint64_t flags;
	bool used;
};

struct hv_port_event {
	volatile bool set;
	bool used;
};

static struct hv_port_lock locks[MAX_LOCKS];
static struct hv_port_event events[MAX_EVENTS];

static void port_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	(void)ctx;
	cpuid(leaf, subleaf, regs);
}

static bool port_rdmsr(void *ctx, uint32_t msr, uint64_t *value)
{
	(void)ctx;
	return msr_read(msr, value);
}

static bool port_wrmsr(void *ctx, uint32_t msr, uint64_t value)
{
	(void)ctx;
	return msr_write(msr, value);
}

static uint64_t port_rdtsc(void *ctx)
{
	(void)ctx;
	return rdtsc();
}

/* The hypercall page's code: RCX control, RDX input GPA, R8 output GPA;
 * status in RAX. Everything else may be clobbered as in a call. */
static uint64_t port_hypercall(void *ctx, void *page, uint64_t control, uint64_t input,
			       uint64_t output)
{
	(void)ctx;
	uint64_t status;
	register uint64_t r8 __asm__("r8") = output;
	__asm__ volatile("call *%[page]"
			 : "=a"(status), "+c"(control), "+d"(input), "+r"(r8)
			 : [page] "r"(page)
			 : "rsi", "rdi", "r9", "r10", "r11", "memory", "cc");
	return status;
}

static uint32_t port_current_vp(void *ctx)
{
	(void)ctx;
	return lapic_id();
}

static void *port_alloc_pages(void *ctx, uint32_t count)
{
	(void)ctx;
	return pages_alloc(count);
}

static void port_free_pages(void *ctx, void *pages, uint32_t count)
{
	(void)ctx;
	pages_free(pages, count);
}

static uint64_t port_gpa_of(void *ctx, const void *p)
{
	(void)ctx;
	return (uint64_t)(uintptr_t)p; /* identity-mapped */
}

static int port_set_vector_handler(void *ctx, uint8_t vector, void (*fn)(void *arg), void *arg)
{
	(void)ctx;
	return set_vector(vector, fn, arg) ? -EINVAL : 0;
}

/* A fixed pool: the library makes a handful at start-up and keeps them. */
static struct hv_port_lock *port_lock_new(void *ctx)
{
	(void)ctx;
	uint64_t flags = irq_save();
	struct hv_port_lock *l = NULL;
	for (unsigned i = 0; i < MAX_LOCKS && !l; i++)
		if (!locks[i].used) {
			l = &locks[i];
			*l = (struct hv_port_lock){.used = true};
		}
	irq_restore(flags);
	return l;
}

static void port_lock_free(void *ctx, struct hv_port_lock *l)
{
	(void)ctx;
	if (l)
		l->used = false;
}

static void port_lock(void *ctx, struct hv_port_lock *l)
{
	(void)ctx;
	uint64_t flags = irq_save();
	while (__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE))
		__asm__ volatile("pause");
	l->flags = flags;
}

static void port_unlock(void *ctx, struct hv_port_lock *l)
{
	(void)ctx;
	uint64_t flags = l->flags;
	__atomic_store_n(&l->held, 0, __ATOMIC_RELEASE);
	irq_restore(flags);
}

/* The heap, behind one of the port's own locks: handlers allocate too. */
static struct heap heap;
static struct hv_port_lock heap_lock;

static void *port_alloc(void *ctx, size_t size)
{
	port_lock(ctx, &heap_lock);
	void *p = heap_alloc(&heap, size);
	port_unlock(ctx, &heap_lock);
	return p;
}

static void port_free(void *ctx, void *p, size_t size)
{
	port_lock(ctx, &heap_lock);
	heap_free(&heap, p, size);
	port_unlock(ctx, &heap_lock);
}

static struct hv_port_event *port_event_new(void *ctx)
{
	(void)ctx;
	uint64_t flags = irq_save();
	struct hv_port_event *e = NULL;
	for (unsigned i = 0; i < MAX_EVENTS && !e; i++)
		if (!events[i].used) {
			e = &events[i];
			*e = (struct hv_port_event){.used = true};
		}
	irq_restore(flags);
	return e;
}

static void port_event_free(void *ctx, struct hv_port_event *e)
{
	(void)ctx;
	if (e)
		e->used = false;
}

static void port_event_set(void *ctx, struct hv_port_event *e)
{
	(void)ctx;
	__atomic_store_n(&e->set, true, __ATOMIC_RELEASE);
}

/* Halts between checks: an interrupt (the device's, or the 100 Hz tick)
 * ends each halt, so the deadline is seen within a tick. */
static int port_event_wait(void *ctx, struct hv_port_event *e, uint64_t timeout_ns)
{
	(void)ctx;
	uint64_t deadline = monotonic_ns() + timeout_ns;
	uint64_t flags = irq_save();
	int rc = 0;
	while (!__atomic_exchange_n(&e->set, false, __ATOMIC_ACQUIRE)) {
		if (monotonic_ns() >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		wait_for_interrupt();
	}
	irq_restore(flags);
	return rc;
}

static uint64_t port_monotonic_ns(void *ctx)
{
	(void)ctx;
	return monotonic_ns();
}

static void port_log(void *ctx, const char *fmt, va_list ap)
{
	(void)ctx;
	/* One line, whether or not the message ends in a newline. */
	char line[256];
	int n = kvsnprintf(line, sizeof(line), fmt, ap);
	size_t len = n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1;
	while (len && line[len - 1] == '\n')
		len--;
	console_write("hvkit-os: ", 10);
	console_write(line, len);
	console_write("\n", 1);
}

const struct hv_port *os_port(void)
{
	static const struct hv_port port = {
		.cpuid = port_cpuid,
		.rdmsr = port_rdmsr,
		.wrmsr = port_wrmsr,
		.rdtsc = port_rdtsc,
		.hypercall = port_hypercall,
		.current_vp = port_current_vp,
		.alloc_pages = port_alloc_pages,
		.free_pages = port_free_pages,
		.gpa_of = port_gpa_of,
		.alloc = port_alloc,
		.free = port_free,
		.set_vector_handler = port_set_vector_handler,
		.lock_new = port_lock_new,
		.lock_free = port_lock_free,
		.lock = port_lock,
		.unlock = port_unlock,
		.event_new = port_event_new,
		.event_free = port_event_free,
		.event_set = port_event_set,
		.event_wait = port_event_wait,
		.monotonic_ns = port_monotonic_ns,
		.log = port_log,
	};
	return &port;
}
