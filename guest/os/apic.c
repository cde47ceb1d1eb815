/* SPDX-License-Identifier: MIT */
/*
 * The local APIC (xAPIC, MMIO at 0xfee00000) and time. The TSC is the
 * clock: its frequency comes from Hyper-V's frequency MSR when offered,
 * otherwise it is measured against the ACPI PM timer. The APIC timer ticks
 * periodically (100 Hz) so that a VP halted in event_wait wakes to check
 * its deadline; interrupts from the devices wake it sooner.
 */
#include "hvkit/tlfs.h"
#include "os.h"

#define LAPIC_BASE 0xfee00000ul
#define LAPIC_ID 0x20
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE 0x3e0
#define SVR_ENABLE 0x100
#define LVT_PERIODIC (1u << 17)
#define LVT_MASKED (1u << 16)
#define TICK_HZ 100
#define PM_TIMER_HZ 3579545ull

static uint64_t tsc_hz, tsc_at_boot;

static volatile uint32_t *lapic(uint32_t reg)
{
	return (volatile uint32_t *)(LAPIC_BASE + reg);
}

uint32_t lapic_id(void)
{
	return *lapic(LAPIC_ID) >> 24;
}

void lapic_eoi(void)
{
	*lapic(LAPIC_EOI) = 0;
}

void lapic_enable(void)
{
	*lapic(LAPIC_SVR) = SVR_ENABLE | OS_SPURIOUS_VECTOR;
}

static void tick(void *arg)
{
	(void)arg; /* waking the halted VP is all it is for */
}

/* PM timer ticks for 10 ms; returns the TSC ticks that took. */
static uint64_t measure_tsc(uint16_t pm_timer)
{
	uint32_t start = inl(pm_timer), wait = (uint32_t)(PM_TIMER_HZ / 100);
	uint64_t t0 = rdtsc();
	while (((inl(pm_timer) - start) & 0xffffff) < wait)
		;
	return (rdtsc() - t0) * 100;
}

int time_init(uint16_t pm_timer, bool hv_frequency_msr)
{
	uint64_t hz;
	tsc_at_boot = rdtsc();
	if (hv_frequency_msr && msr_read(HV_MSR_TSC_FREQUENCY, &hz) && hz) {
		tsc_hz = hz;
		return 0;
	}
	if (!pm_timer)
		return -1;
	tsc_hz = measure_tsc(pm_timer);
	return 0;
}

uint64_t tsc_frequency(void)
{
	return tsc_hz;
}

uint64_t monotonic_ns(void)
{
	if (!tsc_hz)
		return 0;
	/* No 128-bit division without libgcc: whole seconds, then the rest
	 * (below tsc_hz, so times 10^9 still fits in 64 bits for any real
	 * TSC). */
	uint64_t ticks = rdtsc() - tsc_at_boot;
	return ticks / tsc_hz * 1000000000u + ticks % tsc_hz * 1000000000u / tsc_hz;
}

/* Periodic APIC timer: counts at the bus clock / 16; measured against the
 * TSC over 10 ms. The legacy PICs are masked first. */
void lapic_init(void)
{
	/* Firmware may leave the 8259s delivering the PIT on vector 8, which
	 * would look like a double fault: mask them, the APIC does the rest. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	lapic_enable();
	set_vector(OS_TICK_VECTOR, tick, NULL);
	*lapic(LAPIC_TIMER_DIVIDE) = 0x3; /* divide by 16 */
	*lapic(LAPIC_LVT_TIMER) = LVT_MASKED | OS_TICK_VECTOR;
	*lapic(LAPIC_TIMER_INIT) = 0xffffffff;
	uint64_t t0 = monotonic_ns();
	while (monotonic_ns() - t0 < 10000000)
		;
	uint32_t per_10ms = 0xffffffff - *lapic(LAPIC_TIMER_CURRENT);
	*lapic(LAPIC_TIMER_INIT) = 0;
	uint32_t per_tick = per_10ms * 100 / TICK_HZ;
	*lapic(LAPIC_LVT_TIMER) = LVT_PERIODIC | OS_TICK_VECTOR;
	*lapic(LAPIC_TIMER_INIT) = per_tick ? per_tick : 1;
}
