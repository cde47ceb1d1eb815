/* SPDX-License-Identifier: MIT */
/*
 * SMP start-up: the processors come from the MADT's enabled local APIC
 * entries; each AP gets INIT, then up to two SIPIs (the MP specification's
 * sequence), a stack, and a moment to report in. CPL0 code is slow under
 * PVM, so the waits are generous.
 */
#include <string.h>

#include "hvkit/acpi.h"
#include "os.h"
#include "smp.h"

#define LAPIC_BASE 0xfee00000ul
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define ICR_INIT 0x00004500
#define ICR_STARTUP 0x00004600
#define ICR_BUSY (1u << 12)
#define AP_STACK_PAGES 4

extern const uint8_t ap_trampoline[], ap_trampoline_end[];
uint64_t ap_stack_top; /* read by the AP in smp.S */
static volatile uint32_t ap_online;
static void (*ready_hook)(uint32_t apic_id);

static volatile uint32_t *lapic(uint32_t reg)
{
	return (volatile uint32_t *)(LAPIC_BASE + reg);
}

static void delay_us(uint64_t us)
{
	uint64_t end = monotonic_ns() + us * 1000;
	while (monotonic_ns() < end)
		__asm__ volatile("pause");
}

static void send_ipi(uint32_t apic_id, uint32_t icr)
{
	*lapic(LAPIC_ICR_HIGH) = apic_id << 24;
	*lapic(LAPIC_ICR_LOW) = icr;
	while (*lapic(LAPIC_ICR_LOW) & ICR_BUSY)
		__asm__ volatile("pause");
}

void ap_main(void);
void ap_main(void)
{
	idt_load();
	lapic_enable();
	uint32_t id = lapic_id();
	if (ready_hook)
		ready_hook(id);
	__atomic_add_fetch(&ap_online, 1, __ATOMIC_RELEASE);
	for (;;)
		wait_for_interrupt();
}

static bool start_ap(uint32_t apic_id)
{
	void *stack = pages_alloc(AP_STACK_PAGES);
	if (!stack)
		return false;
	uint32_t before = ap_online;
	ap_stack_top = (uint64_t)(uintptr_t)stack + AP_STACK_PAGES * 4096;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	send_ipi(apic_id, ICR_INIT);
	delay_us(10000);
	for (int sipi = 0; sipi < 2 && ap_online == before; sipi++) {
		send_ipi(apic_id, ICR_STARTUP | (AP_TRAMPOLINE >> 12));
		/* 200 us is the MP spec's wait; emulated CPL0 needs far longer. */
		for (int i = 0; i < 2000 && ap_online == before; i++)
			delay_us(1000);
	}
	return ap_online != before;
}

/* The enabled processors of the MADT, by APIC id; 0 without a MADT. */
static uint32_t madt_apic_ids(uint64_t rsdp, uint32_t ids[OS_MAX_VPS])
{
	const struct acpi_madt *madt = acpi_find_table(rsdp, "APIC");
	if (!madt)
		return 0;
	uint32_t n = 0;
	const uint8_t *e = (const uint8_t *)(madt + 1);
	const uint8_t *end = (const uint8_t *)madt + madt->header.length;
	for (; e + 2 <= end && e[1] >= 2 && e + e[1] <= end; e += e[1]) {
		struct acpi_madt_local_apic l;
		if (e[0] != ACPI_MADT_LOCAL_APIC || e[1] < sizeof(l))
			continue;
		memcpy(&l, e, sizeof(l));
		if ((l.flags & 1) && n < OS_MAX_VPS)
			ids[n++] = l.apic_id;
	}
	return n;
}

uint32_t smp_count(uint64_t rsdp)
{
	uint32_t ids[OS_MAX_VPS];
	uint32_t n = madt_apic_ids(rsdp, ids);
	return n ? n : 1;
}

uint32_t smp_start(uint64_t rsdp, void (*ap_ready)(uint32_t apic_id))
{
	uint32_t ids[OS_MAX_VPS];
	uint32_t n = madt_apic_ids(rsdp, ids), self = lapic_id(), vps = 1;
	ready_hook = ap_ready;
	memcpy((void *)AP_TRAMPOLINE, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
	for (uint32_t i = 0; i < n; i++) {
		if (ids[i] == self)
			continue;
		if (start_ap(ids[i]))
			vps++;
		else
			kprintf("hvkit-os: APIC %u did not start\n", ids[i]);
	}
	return vps;
}
