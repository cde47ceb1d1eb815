/* SPDX-License-Identifier: MIT */
/*
 * The little ACPI hvkit-os needs: the PM timer port, and power-off through S5: find the FADT from the RSDP (given by the
 * loader, else searched for in 0xe0000-0xfffff), read PM1a/PM1b control
 * ports from it and \_S5's SLP_TYP values from the DSDT's AML, then write
 * SLP_TYP | SLP_EN. The AML is not interpreted: \_S5 is a Name whose
 * Package starts with the two values, which is how every firmware writes
 * it.
 */
#include <string.h>

#include "hvkit/acpi.h"
#include "os.h"

#define DEBUG_EXIT_PORT 0xf4

static const void *phys(uint64_t pa)
{
	return (const void *)(uintptr_t)pa;
}

static const struct acpi_rsdp *find_rsdp(uint64_t hint)
{
	if (hint && !memcmp(phys(hint), "RSD PTR ", 8))
		return phys(hint);
	for (uint64_t pa = 0xe0000; pa < 0x100000; pa += 16)
		if (!memcmp(phys(pa), "RSD PTR ", 8) && !acpi_sum(phys(pa), 20))
			return phys(pa);
	return NULL;
}

static const struct acpi_header *find_table(const struct acpi_rsdp *rsdp, const char *sig)
{
	bool xsdt = rsdp->revision >= 2 && rsdp->xsdt_address;
	const struct acpi_header *root = phys(xsdt ? rsdp->xsdt_address : rsdp->rsdt_address);
	if (acpi_sum(root, root->length))
		return NULL;
	size_t width = xsdt ? 8 : 4;
	size_t n = (root->length - sizeof(*root)) / width;
	for (size_t i = 0; i < n; i++) {
		uint64_t pa = 0;
		memcpy(&pa, (const uint8_t *)(root + 1) + i * width, width);
		const struct acpi_header *t = phys(pa);
		if (!memcmp(t->signature, sig, 4) && !acpi_sum(t, t->length))
			return t;
	}
	return NULL;
}

/* An AML integer: ZeroOp, OneOp, or a BytePrefix constant. */
static bool aml_small_integer(const uint8_t *p, unsigned *value, size_t *len)
{
	if (p[0] == 0x00 || p[0] == 0x01) {
		*value = p[0];
		*len = 1;
		return true;
	}
	if (p[0] == 0x0a) {
		*value = p[1];
		*len = 2;
		return true;
	}
	return false;
}

/* Name (\_S5, Package (N) {a, b, ...}) in the DSDT. */
static bool find_s5(const struct acpi_header *dsdt, unsigned *a, unsigned *b)
{
	const uint8_t *p = (const uint8_t *)(dsdt + 1), *end = (const uint8_t *)dsdt + dsdt->length;
	for (; p + 12 < end; p++) {
		if (memcmp(p, "_S5_", 4) || p[4] != 0x12)
			continue;
		const uint8_t *q = p + 5;
		q += 1 + (q[0] >> 6); /* PkgLength */
		q++;                  /* NumElements */
		size_t la, lb;
		if (q + 4 < end && aml_small_integer(q, a, &la) && aml_small_integer(q + la, b, &lb))
			return true;
	}
	return false;
}

const void *acpi_find_table(uint64_t rsdp_hint, const char *sig)
{
	const struct acpi_rsdp *rsdp = find_rsdp(rsdp_hint);
	return rsdp ? find_table(rsdp, sig) : NULL;
}

static const struct acpi_fadt *find_fadt(uint64_t rsdp_hint)
{
	return acpi_find_table(rsdp_hint, "FACP");
}

uint16_t acpi_pm_timer(uint64_t rsdp)
{
	const struct acpi_fadt *fadt = find_fadt(rsdp);
	return fadt && fadt->pm_timer_length == 4 ? (uint16_t)fadt->pm_timer_block : 0;
}

static void acpi_s5(uint64_t rsdp_hint)
{
	const struct acpi_fadt *fadt = find_fadt(rsdp_hint);
	if (!fadt) {
		kprintf("hvkit-os: no ACPI FADT, cannot power off\n");
		return;
	}
	uint64_t dsdt_pa = fadt->header.length >= 148 && fadt->x_dsdt ? fadt->x_dsdt : fadt->dsdt;
	unsigned a, b;
	if (!find_s5(phys(dsdt_pa), &a, &b)) {
		kprintf("hvkit-os: the DSDT has no \\_S5\n");
		return;
	}
	outw((uint16_t)fadt->pm1a_control_block,
	     (uint16_t)(a << ACPI_PM1_CNT_SLP_TYP_SHIFT | ACPI_PM1_CNT_SLP_EN));
	if (fadt->pm1b_control_block)
		outw((uint16_t)fadt->pm1b_control_block,
		     (uint16_t)(b << ACPI_PM1_CNT_SLP_TYP_SHIFT | ACPI_PM1_CNT_SLP_EN));
}

void power_off(uint64_t rsdp, int status)
{
	kprintf("hvkit-os: power off, status %d\n", status);
	if (cmdline_has("hvkit.debug_exit"))
		outl(DEBUG_EXIT_PORT, (uint32_t)status);
	acpi_s5(rsdp);
	kprintf("hvkit-os: still running after S5; halting\n");
	halt_forever();
}
