/* SPDX-License-Identifier: MIT */
/* ACPI table generation; see acpi_tables.h. */
#include "acpi_tables.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aml.h"
#include "hvkit/acpi.h"
#include "platform.h"

#define ACPI_CREATOR_ID "HVKT"

static void header(struct acpi_header *h, const char *sig, uint32_t length, uint8_t revision)
{
	memcpy(h->signature, sig, 4);
	h->length = length;
	h->revision = revision;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = 1;
}

static void checksum(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = (uint8_t)-acpi_sum(h, h->length);
}

static struct acpi_gas io_register(uint16_t port, uint8_t bytes)
{
	return (struct acpi_gas){.space_id = ACPI_GAS_SYSTEM_IO,
				 .bit_width = (uint8_t)(8 * bytes),
				 .access_width = bytes == 1 ? 1 : bytes == 2 ? 2 : 3,
				 .address = port};
}

/* ---- DSDT ---- */

static void sleep_state(struct aml *a, const char *name, unsigned slp_typ)
{
	aml_name_decl(a, name);
	aml_package_open(a, 4);
	aml_integer(a, slp_typ); /* PM1a SLP_TYP */
	aml_integer(a, slp_typ); /* PM1b (absent) */
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_close(a);
}

/* The Hyper-V layout: VMOD carries the windows, VMBS the bus. VMBS needs a
 * _CRS of its own even if empty: Linux fails the probe without one. */
static void vmbus_devices(struct aml *a, const struct acpi_config *cfg)
{
	aml_device_open(a, "VMOD");
	aml_name_decl(a, "_HID");
	aml_string(a, "ACPI0004");
	aml_name_decl(a, "_UID");
	aml_integer(a, 0);
	aml_name_decl(a, "_CRS");
	aml_resources_open(a);
	if (cfg->low_mmio_size)
		aml_res_qword_memory(a, cfg->low_mmio_base, cfg->low_mmio_size);
	if (cfg->high_mmio_size)
		aml_res_qword_memory(a, cfg->high_mmio_base, cfg->high_mmio_size);
	aml_resources_close(a);

	aml_device_open(a, "VMBS");
	aml_name_decl(a, "STA");
	aml_integer(a, 0x0f);
	aml_name_decl(a, "_ADR");
	aml_integer(a, 0);
	aml_name_decl(a, "_DDN");
	aml_string(a, "VMBUS");
	aml_name_decl(a, "_HID");
	aml_string(a, "VMBus");
	aml_name_decl(a, "_UID");
	aml_integer(a, 0);
	/* _DIS clears "enabled"; _PS0 sets everything again. */
	aml_method_open(a, "_DIS", 0, 0);
	aml_and_store(a, "STA", 0x0d);
	aml_close(a);
	aml_method_open(a, "_PS0", 0, 0);
	aml_or_store(a, "STA", 0x0f);
	aml_close(a);
	aml_method_open(a, "_STA", 0, 0);
	aml_return(a);
	aml_name(a, "STA");
	aml_close(a);
	aml_name_decl(a, "_CRS");
	aml_resources_open(a);
	aml_resources_close(a);
	aml_close(a); /* VMBS */
	aml_close(a); /* VMOD */
}

static void legacy_device(struct aml *a, const char *name, const char *eisa_id, unsigned uid,
			  uint16_t port, uint8_t ports, unsigned irq)
{
	aml_device_open(a, name);
	aml_name_decl(a, "_HID");
	aml_eisa_id(a, eisa_id);
	aml_name_decl(a, "_UID");
	aml_integer(a, uid);
	aml_name_decl(a, "_CRS");
	aml_resources_open(a);
	aml_res_io(a, port, ports);
	aml_res_irq(a, irq);
	aml_resources_close(a);
	aml_close(a);
}

static int dsdt_body(const struct acpi_config *cfg, uint8_t **out, size_t *len)
{
	struct aml a;
	aml_init(&a);
	sleep_state(&a, "\\_S5", PLATFORM_SLP_TYP_S5);
	if (cfg->s4)
		sleep_state(&a, "\\_S4", PLATFORM_SLP_TYP_S4);
	aml_scope_open(&a, "\\_SB");
	vmbus_devices(&a, cfg);
	if (cfg->com1)
		legacy_device(&a, "UAR1", "PNP0501", 1, PLATFORM_COM1_PORT, 8, PLATFORM_COM1_IRQ);
	if (cfg->rtc)
		legacy_device(&a, "RTC", "PNP0B00", 0, PLATFORM_RTC_PORT, 2, PLATFORM_RTC_IRQ);
	aml_close(&a);
	return aml_finish(&a, out, len);
}

/* ---- Fixed tables ---- */

static void fill_fadt(struct acpi_fadt *f, uint64_t facs, uint64_t dsdt)
{
	header(&f->header, "FACP", sizeof(*f), 6);
	f->minor_revision = 4; /* ACPI 6.4 */
	f->facs = (uint32_t)facs;
	f->dsdt = (uint32_t)dsdt;
	f->x_facs = facs;
	f->x_dsdt = dsdt;
	f->sci_interrupt = PLATFORM_SCI_IRQ;
	/* No SMI command port: the machine is always in ACPI mode, SCI_EN set. */
	f->pm1a_event_block = PLATFORM_PM1_EVT;
	f->pm1a_control_block = PLATFORM_PM1_CNT;
	f->pm_timer_block = PLATFORM_PM_TMR;
	f->pm1_event_length = 4;
	f->pm1_control_length = 2;
	f->pm_timer_length = 4;
	f->x_pm1a_event_block = io_register(PLATFORM_PM1_EVT, 4);
	f->x_pm1a_event_block.access_width = 2; /* status and enable are words */
	f->x_pm1a_control_block = io_register(PLATFORM_PM1_CNT, 2);
	f->x_pm_timer_block = io_register(PLATFORM_PM_TMR, 4);
	f->flags = ACPI_FADT_WBINVD | ACPI_FADT_C1_SUPPORTED | ACPI_FADT_POWER_BUTTON |
		   ACPI_FADT_SLEEP_BUTTON | ACPI_FADT_32BIT_TIMER | ACPI_FADT_RESET_REGISTER;
	f->boot_flags = ACPI_BOOT_LEGACY_DEVICES | ACPI_BOOT_NO_VGA | ACPI_BOOT_NO_ASPM;
	f->reset_register = io_register(PLATFORM_RESET_PORT, 1);
	f->reset_value = PLATFORM_RESET_VALUE;
	f->century = 0x32; /* CMOS century register, as PCs have it */
	checksum(&f->header);
}

static void fill_facs(struct acpi_facs *f)
{
	memcpy(f->signature, "FACS", 4);
	f->length = sizeof(*f);
	f->version = 2;
}

static size_t madt_size(uint32_t cpus)
{
	return sizeof(struct acpi_madt) + cpus * sizeof(struct acpi_madt_local_apic) +
	       sizeof(struct acpi_madt_io_apic) + 2 * sizeof(struct acpi_madt_interrupt_override) +
	       sizeof(struct acpi_madt_local_apic_nmi);
}

static void fill_madt(uint8_t *p, uint32_t cpus)
{
	struct acpi_madt *m = (struct acpi_madt *)p;
	header(&m->header, "APIC", (uint32_t)madt_size(cpus), 5);
	m->lapic_address = PLATFORM_LAPIC_BASE;
	m->flags = ACPI_MADT_PCAT_COMPAT; /* KVM's irqchip includes the 8259s */
	uint8_t *e = p + sizeof(*m);
	for (uint32_t i = 0; i < cpus; i++) {
		struct acpi_madt_local_apic l = {ACPI_MADT_LOCAL_APIC, sizeof(l), (uint8_t)i,
						 (uint8_t)i, 1};
		memcpy(e, &l, sizeof(l));
		e += sizeof(l);
	}
	struct acpi_madt_io_apic io = {ACPI_MADT_IO_APIC, sizeof(io), (uint8_t)cpus, 0,
				       PLATFORM_IOAPIC_BASE, 0};
	memcpy(e, &io, sizeof(io));
	e += sizeof(io);
	/* The PIT's IRQ 0 arrives on pin 2; the SCI is level, active high. */
	struct acpi_madt_interrupt_override o[2] = {
		{ACPI_MADT_INTERRUPT_OVERRIDE, sizeof(o[0]), 0, 0, 2, 0},
		{ACPI_MADT_INTERRUPT_OVERRIDE, sizeof(o[0]), 0, PLATFORM_SCI_IRQ, PLATFORM_SCI_IRQ,
		 ACPI_MADT_ACTIVE_HIGH | ACPI_MADT_LEVEL},
	};
	memcpy(e, o, sizeof(o));
	e += sizeof(o);
	struct acpi_madt_local_apic_nmi nmi = {ACPI_MADT_LOCAL_APIC_NMI, sizeof(nmi), 0xff, 0, 1};
	memcpy(e, &nmi, sizeof(nmi));
	checksum(&m->header);
}

/* ---- Layout ---- */

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

struct layout {
	size_t rsdp, xsdt, rsdt, fadt, facs, madt, dsdt, end;
};

static struct layout lay_out(uint32_t cpus, size_t dsdt_size)
{
	struct layout l;
	l.rsdp = 0;
	l.xsdt = align_up(l.rsdp + sizeof(struct acpi_rsdp), 16);
	l.rsdt = align_up(l.xsdt + sizeof(struct acpi_header) + 2 * 8, 16);
	l.fadt = align_up(l.rsdt + sizeof(struct acpi_header) + 2 * 4, 16);
	l.facs = align_up(l.fadt + sizeof(struct acpi_fadt), 64); /* FACS: 64-byte aligned */
	l.madt = align_up(l.facs + sizeof(struct acpi_facs), 16);
	l.dsdt = align_up(l.madt + madt_size(cpus), 16);
	l.end = l.dsdt + dsdt_size;
	return l;
}

static void fill_roots(uint8_t *d, const struct layout *l, uint64_t base)
{
	uint64_t fadt = base + l->fadt, madt = base + l->madt;

	struct acpi_header *x = (struct acpi_header *)(d + l->xsdt);
	header(x, "XSDT", sizeof(*x) + 16, 1);
	memcpy(d + l->xsdt + sizeof(*x), &fadt, 8);
	memcpy(d + l->xsdt + sizeof(*x) + 8, &madt, 8);
	checksum(x);

	struct acpi_header *r = (struct acpi_header *)(d + l->rsdt);
	uint32_t fadt32 = (uint32_t)fadt, madt32 = (uint32_t)madt;
	header(r, "RSDT", sizeof(*r) + 8, 1);
	memcpy(d + l->rsdt + sizeof(*r), &fadt32, 4);
	memcpy(d + l->rsdt + sizeof(*r) + 4, &madt32, 4);
	checksum(r);

	struct acpi_rsdp *p = (struct acpi_rsdp *)(d + l->rsdp);
	memcpy(p->signature, "RSD PTR ", 8);
	memcpy(p->oem_id, ACPI_OEM_ID, 6);
	p->revision = 2;
	p->rsdt_address = (uint32_t)(base + l->rsdt);
	p->length = sizeof(*p);
	p->xsdt_address = base + l->xsdt;
	p->checksum = (uint8_t)-acpi_sum(p, 20);
	p->extended_checksum = (uint8_t)-acpi_sum(p, sizeof(*p));
}

int acpi_build(const struct acpi_config *cfg, uint64_t base_gpa, struct acpi_tables *out)
{
	memset(out, 0, sizeof(*out));
	if (!cfg->cpus || cfg->cpus > ACPI_MAX_CPUS || base_gpa % 16)
		return -EINVAL;
	uint8_t *aml;
	size_t aml_len;
	int err = dsdt_body(cfg, &aml, &aml_len);
	if (err)
		return err;
	size_t dsdt_size = sizeof(struct acpi_header) + aml_len;
	struct layout l = lay_out(cfg->cpus, dsdt_size);
	if (base_gpa + l.end > 0x100000000ull) {
		free(aml);
		return -EINVAL;
	}
	uint8_t *d = calloc(1, l.end);
	if (!d) {
		free(aml);
		return -ENOMEM;
	}
	struct acpi_header *dsdt = (struct acpi_header *)(d + l.dsdt);
	header(dsdt, "DSDT", (uint32_t)dsdt_size, 2); /* 2: 64-bit integers */
	memcpy(d + l.dsdt + sizeof(*dsdt), aml, aml_len);
	checksum(dsdt);
	free(aml);

	fill_fadt((struct acpi_fadt *)(d + l.fadt), base_gpa + l.facs, base_gpa + l.dsdt);
	fill_facs((struct acpi_facs *)(d + l.facs));
	fill_madt(d + l.madt, cfg->cpus);
	fill_roots(d, &l, base_gpa);

	out->data = d;
	out->size = l.end;
	out->base_gpa = base_gpa;
	out->rsdp_gpa = base_gpa + l.rsdp;
	out->dsdt_offset = l.dsdt;
	out->dsdt_size = dsdt_size;
	return 0;
}

void acpi_tables_free(struct acpi_tables *t)
{
	free(t->data);
	memset(t, 0, sizeof(*t));
}
