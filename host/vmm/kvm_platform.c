/* SPDX-License-Identifier: MIT */
/* The PC around a KVM partition; see kvm_platform.h. */
#define _GNU_SOURCE
#include "kvm_platform.h"
#include "record.h"
#include "fw_cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acpi_tables.h"
#include "hv_testdev.h"
#include "loader.h"
#include "pio.h"
#include "platform.h"

#define MAX_FILE (512ull << 20)

struct kvm_platform {
	struct kvm_platform_config cfg;
	struct kvm_partition *kp; /* set by kvm_platform_boot */
	struct pio_bus bus;
	struct uart *uart;
	struct rtc *rtc;
	struct pm *pm;
	struct fw_cfg *fw_cfg;
	struct hv_testdev *testdev; /* if asked for; made at boot, with hv */
	const char *format;
};

/* ---- Device callbacks ---- */

static void set_irq(void *ctx, unsigned irq, bool level)
{
	struct kvm_platform *p = ctx;
	if (p->kp)
		kvm_partition_set_irq(p->kp, irq, level);
}

static void console_out(void *ctx, const uint8_t *bytes, size_t len)
{
	struct kvm_platform *p = ctx;
	if (p->cfg.console) {
		p->cfg.console(p->cfg.console_ctx, bytes, len);
		return;
	}
	fwrite(bytes, 1, len, stdout);
	if (memchr(bytes, '\n', len))
		fflush(stdout);
}

static void power_event(void *ctx, enum pm_event e)
{
	struct kvm_platform *p = ctx;
	static const int status[] = {
		[PM_POWER_OFF] = KVM_PLATFORM_EXIT_POWER_OFF,
		[PM_HIBERNATE] = KVM_PLATFORM_EXIT_HIBERNATED,
		[PM_RESET] = KVM_PLATFORM_EXIT_RESET,
	};
	if (p->kp)
		kvm_partition_exit(p->kp, status[e]);
}

int kvm_platform_new(const struct kvm_platform_config *cfg, struct kvm_platform **out)
{
	if (!cfg->kernel || !cfg->cpus || cfg->cpus > ACPI_MAX_CPUS)
		return -EINVAL;
	struct kvm_platform *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	struct uart_config uc = {PLATFORM_COM1_IRQ, {set_irq, p}, console_out, p};
	struct pm_config pc = {.line = {set_irq, p}, .event = power_event, .event_ctx = p};
	struct fw_cfg_config fc = {.cpus = cfg->cpus, .ram_size = cfg->memory};
	p->uart = uart_new(&uc);
	p->rtc = rtc_new(NULL);
	p->pm = pm_new(&pc);
	int err = !p->uart || !p->rtc || !p->pm ? -ENOMEM : fw_cfg_new(&fc, &p->fw_cfg);
	if (!err)
		err = pio_bus_add(&p->bus, PLATFORM_COM1_PORT, 8, uart_pio, p->uart);
	if (!err)
		err = pio_bus_add(&p->bus, PLATFORM_RTC_PORT, 2, rtc_pio, p->rtc);
	if (!err)
		err = pio_bus_add(&p->bus, PLATFORM_PM_BASE, 12, pm_pio, p->pm);
	if (!err)
		err = pio_bus_add(&p->bus, PLATFORM_RESET_PORT, 1, pm_reset_pio, p->pm);
	if (!err)
		err = pio_bus_add(&p->bus, FW_CFG_PORT, FW_CFG_PORTS, fw_cfg_pio, p->fw_cfg);
	if (err) {
		kvm_platform_free(p);
		return err;
	}
	*out = p;
	return 0;
}

void kvm_platform_free(struct kvm_platform *p)
{
	if (!p)
		return;
	/* The test device is gone with kvm_platform_unbind, which needs the
	 * partition: here it may not exist any more, so it is not touched. */
	uart_free(p->uart);
	rtc_free(p->rtc);
	pm_free(p->pm);
	fw_cfg_free(p->fw_cfg);
	free(p);
}

void kvm_platform_pio(void *ctx, struct kvm_partition *kp, uint32_t vp, uint16_t port,
		      uint8_t size, bool out, uint32_t *value)
{
	(void)kp;
	(void)vp;
	struct kvm_platform *p = ctx;
	pio_bus_access(&p->bus, port, size, out, value);
}

void kvm_platform_unbind(struct kvm_platform *p)
{
	if (!p)
		return;
	p->kp = NULL;
	/* Called with the VPs halted and hv still there: the device leaves
	 * the bus and hv's connection table before hv goes. */
	if (p->testdev) {
		pio_bus_remove(&p->bus, HV_TESTDEV_PORT);
		hv_testdev_free(p->testdev);
		p->testdev = NULL;
	}
}

bool kvm_platform_testdev_stats(struct kvm_platform *p, struct hv_testdev_stats *out)
{
	if (!p || !p->testdev)
		return false;
	hv_testdev_get_stats(p->testdev, out);
	return true;
}

size_t kvm_platform_input(struct kvm_platform *p, const uint8_t *bytes, size_t len)
{
	return p ? uart_receive(p->uart, bytes, len) : 0;
}

const char *kvm_platform_kernel_format(const struct kvm_platform *p)
{
	return p->format;
}

/* ---- Boot ---- */

static int read_file(const char *path, void **data, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	int rc = 0;
	if (fseeko(f, 0, SEEK_END) || ftello(f) < 0 || (uint64_t)ftello(f) > MAX_FILE) {
		snprintf(err, errlen, "%s: not a regular file under %llu MiB", path,
			 (unsigned long long)(MAX_FILE >> 20));
		rc = -EFBIG;
	} else {
		*len = (size_t)ftello(f);
		rewind(f);
		*data = malloc(*len ? *len : 1);
		if (!*data)
			rc = -ENOMEM;
		else if (fread(*data, 1, *len, f) != *len) {
			snprintf(err, errlen, "%s: read failed", path);
			free(*data);
			rc = -EIO;
		}
	}
	fclose(f);
	return rc;
}

static int write_acpi(struct kvm_platform *p, const struct guest_memory *mem, uint64_t *rsdp,
		      uint64_t *size)
{
	struct acpi_config ac = {
		.cpus = p->cfg.cpus,
		.low_mmio_base = KVM_PLATFORM_LOW_MMIO,
		.low_mmio_size = KVM_PLATFORM_LOW_MMIO_SIZE,
		.high_mmio_base = KVM_PLATFORM_HIGH_MMIO,
		.high_mmio_size = KVM_PLATFORM_HIGH_MMIO_SIZE,
		.s4 = !p->cfg.no_s4,
		.com1 = true,
		.rtc = true,
	};
	struct acpi_tables t;
	int err = acpi_build(&ac, BOOT_ACPI_BASE, &t);
	if (err)
		return err;
	err = t.size > 0x100000 - BOOT_ACPI_BASE ? -E2BIG
						  : guest_memory_write(mem, t.base_gpa, t.data, t.size);
	*rsdp = t.rsdp_gpa;
	*size = t.size;
	acpi_tables_free(&t);
	return err;
}

static struct kvm_segment flat_segment(uint16_t selector, uint8_t type, bool long_code)
{
	return (struct kvm_segment){.base = 0, .limit = 0xffffffff, .selector = selector,
				    .type = type, .present = 1, .s = 1, .g = 1,
				    .l = long_code, .db = !long_code};
}

/* The boot VP as the boot protocol wants it (loader.h, boot_info). */
static int set_registers(struct kvm_partition *kp, const struct boot_info *bi)
{
	struct kvm_regs regs = {.rflags = 0x2, .rip = bi->entry, .rsi = bi->rsi, .rax = bi->eax,
				.rbx = bi->ebx};
	struct kvm_sregs sregs;
	int err = kvm_partition_get_registers(kp, 0, NULL, &sregs);
	if (err)
		return err;
	bool long_mode = bi->mode == BOOT_MODE_LONG64;
	sregs.cs = flat_segment(long_mode ? BOOT_SEL_CODE64 : BOOT_SEL_CODE32, 0xb, long_mode);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
		flat_segment(BOOT_SEL_DATA, 0x3, false);
	sregs.gdt.base = bi->gdt_base;
	sregs.gdt.limit = bi->gdt_limit;
	sregs.cr0 = 0x11 | (long_mode ? 0x80000000u : 0); /* PE, ET (+ PG) */
	sregs.cr3 = long_mode ? bi->cr3 : 0;
	sregs.cr4 = long_mode ? 0x20 : 0;                 /* PAE */
	sregs.efer = long_mode ? 0x500 : 0;               /* LME, LMA */
	return kvm_partition_set_registers(kp, 0, &regs, &sregs);
}

/* The Hyper-V test device needs hv, which exists once the partition does. */
static int add_testdev(struct kvm_platform *p, struct kvm_partition *kp)
{
	struct hv_testdev_config tc = {.hv = kvm_partition_hv(kp), .vp_count = p->cfg.cpus};
	struct hv_testdev *d = hv_testdev_new(&tc);
	if (!d)
		return -errno;
	int err = pio_bus_add(&p->bus, HV_TESTDEV_PORT, 4, hv_testdev_pio, d);
	if (err)
		hv_testdev_free(d);
	else
		p->testdev = d;
	return err;
}

int kvm_platform_boot(struct kvm_platform *p, struct kvm_partition *kp, char *err,
		      size_t errlen)
{
	const struct guest_memory *mem = kvm_partition_memory(kp);
	void *kernel = NULL, *initrd = NULL;
	size_t kernel_len = 0, initrd_len = 0;
	uint64_t rsdp = 0, acpi_size = 0;
	snprintf(err, errlen, "cannot boot");
	int rc = p->cfg.hyperv_testdev && !p->testdev ? add_testdev(p, kp) : 0;
	if (rc)
		snprintf(err, errlen, "hyperv-testdev: %s", strerror(-rc));
	if (!rc)
		rc = read_file(p->cfg.kernel, &kernel, &kernel_len, err, errlen);
	if (!rc && p->cfg.initrd)
		rc = read_file(p->cfg.initrd, &initrd, &initrd_len, err, errlen);
	if (!rc) {
		rc = write_acpi(p, mem, &rsdp, &acpi_size);
		if (rc)
			snprintf(err, errlen, "ACPI tables: %s", strerror(-rc));
	}
	struct boot_info bi;
	if (!rc) {
		struct boot_module initrd_mod = {initrd, initrd_len, NULL};
		struct boot_config bc = {.kernel = kernel, .kernel_size = kernel_len,
					 .cmdline = p->cfg.cmdline, .modules = &initrd_mod,
					 .module_count = initrd ? 1 : 0, .rsdp_gpa = rsdp,
					 .acpi_base = BOOT_ACPI_BASE, .acpi_size = acpi_size};
		rc = boot_load(mem, &bc, &bi, err, errlen);
	}
	if (!rc) {
		/* fw_cfg's etc/e820 is the map the kernel got (QEMU's layout:
		 * packed 64-bit address, 64-bit length, 32-bit type). */
		rc = fw_cfg_add_file(p->fw_cfg, "etc/e820", bi.map,
				     bi.map_entries * (uint32_t)sizeof(bi.map[0]));
		if (rc)
			snprintf(err, errlen, "fw_cfg: %s", strerror(-rc));
	}
	if (!rc) {
		p->format = bi.format;
		rc = set_registers(kp, &bi);
		if (rc)
			snprintf(err, errlen, "boot registers: %s", strerror(-rc));
	}
	if (!rc)
		p->kp = kp; /* devices may now raise interrupts and end the run */
	free(kernel);
	free(initrd);
	return rc;
}

/* ---- Snapshots ---- */

/*
 * The platform's record (host/record/record.h, magic "HVKITPLT", version
 * 1, count 0): the UART (IER, LCR, MCR, SCR, FCR, DLL, DLM, THRE pending,
 * interrupt line, u32 bytes waiting and the bytes), the RTC (index, the
 * 128 CMOS bytes, u64 guest-minus-host seconds), the ACPI PM block (u16
 * status, enable, control, u8 reset, u8 SCI). fw_cfg keeps nothing a
 * guest relies on across a save (a selector set and read at once).
 */
static const char platform_magic[RECORD_MAGIC_BYTES] = "HVKITPLT";
#define PLATFORM_VERSION 1u

int kvm_platform_save(struct kvm_platform *p, void *buf, size_t cap, size_t *len)
{
	struct uart_state u;
	struct rtc_state r;
	struct pm_state pm;
	uart_get_state(p->uart, &u);
	rtc_get_state(p->rtc, &r);
	pm_get_state(p->pm, &pm);
	struct record_writer w = record_writer(buf, cap);
	const uint8_t regs[] = {u.ier, u.lcr, u.mcr, u.scr, u.fcr, u.dll, u.dlm,
				u.thr_interrupt, u.irq_level};
	record_put(&w, regs, sizeof(regs));
	record_put32(&w, u.rx_count);
	record_put(&w, u.rx, u.rx_count);
	record_put8(&w, r.index);
	record_put(&w, r.ram, sizeof(r.ram));
	record_put64(&w, (uint64_t)r.offset);
	record_put32(&w, pm.status | (uint32_t)pm.enable << 16);
	record_put32(&w, pm.control);
	record_put8(&w, pm.reset);
	record_put8(&w, pm.sci);
	return record_finish(&w, platform_magic, PLATFORM_VERSION, 0, len);
}

int kvm_platform_load(struct kvm_platform *p, const void *buf, size_t len)
{
	struct record_reader rd;
	int err = record_open(buf, len, platform_magic, PLATFORM_VERSION, 0, &rd);
	if (err)
		return err;
	uint8_t regs[9];
	record_get(&rd, regs, sizeof(regs));
	struct uart_state u = {regs[0], regs[1], regs[2], regs[3], regs[4], regs[5],
			       regs[6], regs[7] == 1, regs[8] == 1, {0}, 0};
	struct rtc_state r;
	struct pm_state pm;
	u.rx_count = record_get32(&rd);
	if (rd.bad || regs[7] > 1 || regs[8] > 1 || u.rx_count > UART_FIFO)
		return -EINVAL;
	record_get(&rd, u.rx, u.rx_count);
	r.index = record_get8(&rd);
	record_get(&rd, r.ram, sizeof(r.ram));
	r.offset = (int64_t)record_get64(&rd);
	uint32_t status_enable = record_get32(&rd), control = record_get32(&rd);
	pm = (struct pm_state){(uint16_t)status_enable, (uint16_t)(status_enable >> 16),
			       (uint16_t)control, record_get8(&rd), false};
	uint8_t sci = record_get8(&rd);
	if (!record_done(&rd) || r.index > 0x7f || control > 0xffff || sci > 1)
		return -EINVAL;
	pm.sci = sci;
	uart_set_state(p->uart, &u);
	rtc_set_state(p->rtc, &r);
	pm_set_state(p->pm, &pm);
	return 0;
}
