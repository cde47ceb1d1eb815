/* SPDX-License-Identifier: MIT */
/*
 * AML encoding and the generated ACPI tables: structure and checksums
 * checked here, then disassembled by ACPICA's iasl and evaluated by its
 * acpiexec (the cases skip where acpica-tools is not installed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "acpi_tables.h"
#include "aml.h"
#include "hvkit/acpi.h"
#include "platform.h"

/* ---- AML encoder ---- */

static void expect_bytes(struct aml *a, const uint8_t *want, size_t n)
{
	uint8_t *got;
	size_t len;
	assert_int_equal(aml_finish(a, &got, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);
	free(got);
}

static void aml_integers_use_the_shortest_form(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 0xff);
	aml_integer(&a, 0x100);
	aml_integer(&a, 0x12345678);
	aml_integer(&a, 0x100000000ull);
	aml_integer(&a, UINT64_MAX);
	const uint8_t want[] = {0x00, 0x01, 0x0a, 0xff, 0x0b, 0x00, 0x01, 0x0c, 0x78,
				0x56, 0x34, 0x12, 0x0e, 0, 0,    0,    0,    1,
				0,    0,    0,    0xff};
	expect_bytes(&a, want, sizeof(want));
}

static void aml_names_are_padded_and_prefixed(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_name(&a, "STA");
	aml_name(&a, "\\_SB.VMOD");
	aml_name(&a, "\\_SB.VMOD.VMBS");
	aml_name(&a, "^RTC");
	const uint8_t want[] = {'S', 'T', 'A', '_', '\\', 0x2e, '_', 'S', 'B', '_', 'V',
				'M', 'O', 'D', '\\', 0x2f, 3,    '_', 'S', 'B', '_', 'V',
				'M', 'O', 'D', 'V',  'M',  'B', 'S', '^', 'R', 'T', 'C',
				'_'};
	expect_bytes(&a, want, sizeof(want));
}

static void aml_rejects_bad_names(void **state)
{
	(void)state;
	const char *bad[] = {"toolong", "lower", "1ABC", "A..B", "AB-C", "ABCDE.X"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aml a;
		aml_init(&a);
		aml_name(&a, bad[i]);
		uint8_t *out;
		size_t len;
		assert_int_equal(aml_finish(&a, &out, &len), -EINVAL);
	}
}

/* A package of n ones: opcode, PkgLength, count, n bytes of body. */
static size_t package_pkglength(unsigned n, uint8_t pkg[4])
{
	struct aml a;
	aml_init(&a);
	aml_package_open(&a, 0);
	for (unsigned i = 0; i < n; i++)
		aml_integer(&a, 1);
	aml_close(&a);
	uint8_t *out;
	size_t len;
	assert_int_equal(aml_finish(&a, &out, &len), 0);
	size_t bytes = 1 + ((out[1] >> 6) & 3);
	memcpy(pkg, out + 1, bytes);
	/* The encoded length covers everything after the opcode. */
	size_t total = bytes == 1 ? out[1] : (size_t)(out[1] & 0x0f) | (size_t)out[2] << 4 |
						 (bytes > 2 ? (size_t)out[3] << 12 : 0);
	assert_int_equal(total, len - 1);
	free(out);
	return bytes;
}

static void aml_pkglength_grows_at_63_and_4095(void **state)
{
	(void)state;
	uint8_t pkg[4];
	assert_int_equal(package_pkglength(61, pkg), 1);   /* 1 + 1 + 61 = 63 */
	assert_int_equal(pkg[0], 63);
	assert_int_equal(package_pkglength(62, pkg), 2);   /* 64 would not fit */
	assert_int_equal(package_pkglength(4092, pkg), 2); /* 2 + 1 + 4092 = 4095 */
	assert_int_equal(package_pkglength(4093, pkg), 3);
}

static void aml_eisa_ids_compress(void **state)
{
	(void)state;
	struct aml a;
	aml_init(&a);
	aml_eisa_id(&a, "PNP0501"); /* the well-known 0x0105D041 */
	const uint8_t want[] = {0x0c, 0x41, 0xd0, 0x05, 0x01};
	expect_bytes(&a, want, sizeof(want));
	aml_init(&a);
	aml_eisa_id(&a, "pnp0501");
	uint8_t *out;
	size_t len;
	assert_int_equal(aml_finish(&a, &out, &len), -EINVAL);
}

static void aml_unbalanced_close_is_an_error(void **state)
{
	(void)state;
	struct aml a;
	uint8_t *out;
	size_t len;
	aml_init(&a);
	aml_close(&a);
	assert_int_equal(aml_finish(&a, &out, &len), -EINVAL);
	aml_init(&a);
	aml_scope_open(&a, "\\_SB");
	assert_int_equal(aml_finish(&a, &out, &len), -EINVAL); /* left open */
}

/* ---- Tables ---- */

static const struct acpi_config default_config = {
	.cpus = 2,
	.low_mmio_base = 0xc0000000,
	.low_mmio_size = 0x20000000,
	.high_mmio_base = 0x1000000000ull,
	.high_mmio_size = 0x1000000000ull,
	.s4 = true,
	.com1 = true,
	.rtc = true,
};

#define BASE 0xe0000

static const void *at_gpa(const struct acpi_tables *t, uint64_t gpa, size_t len)
{
	assert_true(gpa >= t->base_gpa && gpa - t->base_gpa + len <= t->size);
	return t->data + (gpa - t->base_gpa);
}

static const struct acpi_header *table_at(const struct acpi_tables *t, uint64_t gpa,
					  const char *sig)
{
	const struct acpi_header *h = at_gpa(t, gpa, sizeof(*h));
	assert_memory_equal(h->signature, sig, 4);
	at_gpa(t, gpa, h->length);
	assert_int_equal(acpi_sum(h, h->length), 0);
	return h;
}

static void tables_chain_from_the_rsdp(void **state)
{
	(void)state;
	struct acpi_tables t;
	assert_int_equal(acpi_build(&default_config, BASE, &t), 0);
	const struct acpi_rsdp *p = at_gpa(&t, t.rsdp_gpa, sizeof(*p));
	assert_memory_equal(p->signature, "RSD PTR ", 8);
	assert_int_equal(acpi_sum(p, 20), 0);
	assert_int_equal(acpi_sum(p, sizeof(*p)), 0);
	assert_int_equal(p->revision, 2);

	const struct acpi_header *x = table_at(&t, p->xsdt_address, "XSDT");
	assert_int_equal(x->length, sizeof(*x) + 16);
	uint64_t entries[2];
	memcpy(entries, x + 1, sizeof(entries));
	const struct acpi_fadt *f = (const void *)table_at(&t, entries[0], "FACP");
	table_at(&t, entries[1], "APIC");
	const struct acpi_header *r = table_at(&t, p->rsdt_address, "RSDT");
	uint32_t rentries[2];
	memcpy(rentries, r + 1, sizeof(rentries));
	assert_int_equal(rentries[0], entries[0]);
	assert_int_equal(rentries[1], entries[1]);

	assert_int_equal(f->header.length, sizeof(*f));
	assert_int_equal(f->x_dsdt, f->dsdt);
	table_at(&t, f->x_dsdt, "DSDT");
	assert_int_equal(f->x_facs % 64, 0);
	const struct acpi_facs *facs = at_gpa(&t, f->x_facs, sizeof(*facs));
	assert_memory_equal(facs->signature, "FACS", 4);
	assert_int_equal(f->sci_interrupt, PLATFORM_SCI_IRQ);
	assert_int_equal(f->pm1a_control_block, PLATFORM_PM1_CNT);
	assert_int_equal(f->reset_register.address, PLATFORM_RESET_PORT);
	assert_true(f->flags & ACPI_FADT_RESET_REGISTER);
	assert_int_equal(f->smi_command, 0); /* always in ACPI mode */
	acpi_tables_free(&t);
}

static void madt_has_one_lapic_per_vp(void **state)
{
	(void)state;
	for (uint32_t cpus = 1; cpus <= ACPI_MAX_CPUS; cpus += 127) {
		struct acpi_config c = default_config;
		c.cpus = cpus;
		struct acpi_tables t;
		assert_int_equal(acpi_build(&c, BASE, &t), 0);
		const struct acpi_rsdp *p = at_gpa(&t, t.rsdp_gpa, sizeof(*p));
		uint64_t madt_gpa;
		memcpy(&madt_gpa, (const uint8_t *)at_gpa(&t, p->xsdt_address, 52) + 44, 8);
		const struct acpi_madt *m = (const void *)table_at(&t, madt_gpa, "APIC");
		assert_int_equal(m->lapic_address, PLATFORM_LAPIC_BASE);
		const uint8_t *e = (const uint8_t *)(m + 1), *end = (const uint8_t *)m + m->header.length;
		uint32_t lapics = 0, ioapics = 0, overrides = 0, nmis = 0;
		for (; e < end; e += e[1]) {
			assert_true(e[1] >= 2 && e + e[1] <= end);
			if (e[0] == ACPI_MADT_LOCAL_APIC) {
				struct acpi_madt_local_apic l;
				memcpy(&l, e, sizeof(l));
				assert_int_equal(l.apic_id, lapics); /* APIC id = VP index */
				assert_int_equal(l.processor_id, lapics);
				assert_int_equal(l.flags, 1);
				lapics++;
			}
			ioapics += e[0] == ACPI_MADT_IO_APIC;
			overrides += e[0] == ACPI_MADT_INTERRUPT_OVERRIDE;
			nmis += e[0] == ACPI_MADT_LOCAL_APIC_NMI;
		}
		assert_ptr_equal(e, end);
		assert_int_equal(lapics, cpus);
		assert_int_equal(ioapics, 1);
		assert_int_equal(overrides, 2);
		assert_int_equal(nmis, 1);
		acpi_tables_free(&t);
	}
}

static void bad_configs_are_refused(void **state)
{
	(void)state;
	struct acpi_tables t;
	struct acpi_config c = default_config;
	c.cpus = 0;
	assert_int_equal(acpi_build(&c, BASE, &t), -EINVAL);
	c.cpus = ACPI_MAX_CPUS + 1;
	assert_int_equal(acpi_build(&c, BASE, &t), -EINVAL);
	c = default_config;
	assert_int_equal(acpi_build(&c, BASE + 8, &t), -EINVAL);     /* not 16-aligned */
	assert_int_equal(acpi_build(&c, 0xfffffc00, &t), -EINVAL);   /* crosses 4 GiB */
	c.low_mmio_base = UINT64_MAX - 10;                           /* window wraps */
	assert_int_equal(acpi_build(&c, BASE, &t), -EINVAL);
}

/* ---- ACPICA ---- */

struct workdir {
	char path[64];
};

static bool have_tool(const char *tool)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

static void workdir_make(struct workdir *w)
{
	snprintf(w->path, sizeof(w->path), "/tmp/hvkit-acpi-XXXXXX");
	assert_non_null(mkdtemp(w->path));
}

static void workdir_remove(struct workdir *w)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", w->path);
	assert_int_equal(system(cmd), 0);
}

static void write_file(const struct workdir *w, const char *name, const void *p, size_t n)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", w->path, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/* Runs a shell command in the work directory; returns its output. */
__attribute__((format(printf, 2, 3))) static char *run(const struct workdir *w, const char *fmt,
							...)
{
	char cmd[512];
	int n = snprintf(cmd, sizeof(cmd), "cd %s && ", w->path);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap);
	assert_non_null(out);
	size_t got;
	while ((got = fread(out + len, 1, cap - len - 1, p)) > 0) {
		len += got;
		if (len + 1 == cap) {
			cap *= 2;
			out = realloc(out, cap);
			assert_non_null(out);
		}
	}
	out[len] = '\0';
	int status = pclose(p);
	if (status != 0)
		fail_msg("'%s' failed (%d):\n%s", cmd, status, out);
	return out;
}

static char *read_file(const struct workdir *w, const char *name)
{
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "cat %s", name);
	return run(w, "%s", cmd);
}

/* Splits the tables into one file each, as acpidump/acpixtract would. */
static void write_tables(const struct workdir *w, const struct acpi_tables *t)
{
	const struct acpi_rsdp *p = at_gpa(t, t->rsdp_gpa, sizeof(*p));
	const struct acpi_header *x = at_gpa(t, p->xsdt_address, sizeof(*x));
	write_file(w, "xsdt.dat", x, x->length);
	uint64_t entries[2];
	memcpy(entries, x + 1, sizeof(entries));
	const struct acpi_fadt *f = at_gpa(t, entries[0], sizeof(*f));
	write_file(w, "facp.dat", f, f->header.length);
	const struct acpi_header *m = at_gpa(t, entries[1], sizeof(*m));
	write_file(w, "apic.dat", m, m->length);
	write_file(w, "dsdt.aml", t->data + t->dsdt_offset, t->dsdt_size);
}

/* Builds the tables and writes them out for an ACPICA tool; skips the
 * test where the tool is not installed. */
static void tables_for(const char *tool, const struct acpi_config *c, struct acpi_tables *t,
		       struct workdir *w)
{
	if (!have_tool(tool))
		skip();
	assert_int_equal(acpi_build(c, BASE, t), 0);
	workdir_make(w);
	write_tables(w, t);
}

static void iasl_disassembles_every_table(void **state)
{
	(void)state;
	struct acpi_tables t;
	struct workdir w;
	tables_for("iasl", &default_config, &t, &w);
	const char *tables[] = {"xsdt.dat", "facp.dat", "apic.dat", "dsdt.aml"};
	for (size_t i = 0; i < 4; i++) {
		char *log = run(&w, "iasl -d %s", tables[i]);
		if (strcasestr(log, "error") || strcasestr(log, "warning"))
			fail_msg("iasl -d %s:\n%s", tables[i], log);
		free(log);
	}
	char *dsl = read_file(&w, "dsdt.dsl");
	assert_non_null(strstr(dsl, "Device (VMOD)"));
	assert_non_null(strstr(dsl, "\"ACPI0004\""));
	assert_non_null(strstr(dsl, "Device (VMBS)"));
	assert_non_null(strstr(dsl, "Name (_HID, \"VMBus\")"));
	assert_non_null(strstr(dsl, "0x00000000C0000000, // Range Minimum"));
	assert_non_null(strstr(dsl, "0x0000001FFFFFFFFF, // Range Maximum"));
	assert_non_null(strstr(dsl, "EisaId (\"PNP0501\")"));
	assert_non_null(strstr(dsl, "Name (\\_S5, Package (0x04)"));
	assert_non_null(strstr(dsl, "Name (\\_S4, Package (0x04)"));
	free(dsl);
	char *madt = read_file(&w, "apic.dsl");
	assert_null(strcasestr(madt, "incorrect checksum"));
	assert_non_null(strstr(madt, "Local Apic ID : 01"));
	free(madt);
	workdir_remove(&w);
	acpi_tables_free(&t);
}

static void acpiexec_evaluates_crs_and_sleep_states(void **state)
{
	(void)state;
	struct acpi_tables t;
	struct workdir w;
	tables_for("acpiexec", &default_config, &t, &w);
	char *log = run(&w, "acpiexec -b 'evaluate \\_SB.VMOD._CRS; evaluate \\_S5; "
			    "evaluate \\_S4; evaluate \\_SB.VMOD.VMBS._CRS; "
			    "evaluate \\_SB.VMOD.VMBS._STA; execute \\_SB.VMOD.VMBS._DIS; "
			    "evaluate \\_SB.VMOD.VMBS._STA' dsdt.aml");
	if (strcasestr(log, "exception") || strcasestr(log, "error"))
		fail_msg("acpiexec:\n%s", log);
	/* Two QWord windows (46 bytes each) and the end tag. */
	assert_non_null(strstr(log, "[Buffer] Length 5E"));
	assert_non_null(strstr(log, "[Integer] = 0000000000000005"));
	assert_non_null(strstr(log, "[Integer] = 0000000000000004"));
	assert_non_null(strstr(log, "[Buffer] Length 02")); /* VMBS: empty template */
	const char *sta = strstr(log, "[Integer] = 000000000000000F");
	assert_non_null(sta);
	assert_non_null(strstr(sta, "[Integer] = 000000000000000D")); /* after _DIS */
	free(log);
	workdir_remove(&w);
	acpi_tables_free(&t);
}

static void s4_can_be_switched_off(void **state)
{
	(void)state;
	struct acpi_config c = default_config;
	c.s4 = false;
	c.high_mmio_size = 0;
	struct acpi_tables t;
	struct workdir w;
	tables_for("acpiexec", &c, &t, &w);
	char *log = run(&w, "acpiexec -b 'evaluate \\_S4; evaluate \\_SB.VMOD._CRS' dsdt.aml");
	assert_non_null(strstr(log, "AE_NOT_FOUND"));       /* no \_S4 */
	assert_non_null(strstr(log, "[Buffer] Length 30")); /* one window + end tag */
	free(log);
	workdir_remove(&w);
	acpi_tables_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aml_integers_use_the_shortest_form),
		cmocka_unit_test(aml_names_are_padded_and_prefixed),
		cmocka_unit_test(aml_rejects_bad_names),
		cmocka_unit_test(aml_pkglength_grows_at_63_and_4095),
		cmocka_unit_test(aml_eisa_ids_compress),
		cmocka_unit_test(aml_unbalanced_close_is_an_error),
		cmocka_unit_test(tables_chain_from_the_rsdp),
		cmocka_unit_test(madt_has_one_lapic_per_vp),
		cmocka_unit_test(bad_configs_are_refused),
		cmocka_unit_test(iasl_disassembles_every_table),
		cmocka_unit_test(acpiexec_evaluates_crs_and_sleep_states),
		cmocka_unit_test(s4_can_be_switched_off),
	};
	return cmocka_run_group_tests_name("acpi", tests, NULL, NULL);
}
