/* SPDX-License-Identifier: MIT */
/*
 * hvkit-os: hvkit's own guest. It boots through PVH, sets up its console
 * and IDT, looks for Hyper-V with the guest library, prints a boot report
 * and powers off with a status (0: everything it looked for was there).
 *
 * Command line: "hvkit.debug_exit" reports the status through QEMU's
 * isa-debug-exit port as well; "hvkit.expect_hv" makes a missing Hyper-V
 * a failure (status 2). "hvkit.disk_test" writes and reads back blocks of
 * the first disk; "hvkit.net_test" sends self-test frames on each NIC and
 * fails (status 9) unless a loopback hands them all back (with
 * hvkit.serve both again before it stops). "hvkit.disk_load" keeps
 * writing and reading back blocks of the first disk while it serves,
 * checked against a model in its RAM, and reports the count at the end. "hvkit.crash"
 * reports a crash through the crash MSRs once enlightened, as a panicking
 * kernel does, and waits for the host to end the VM (status 10 if it
 * does not).
 */
#include <errno.h>
#include <string.h>

#include "hv_guest.h"
#include "hvkit/boot.h"
#include "hvkit/vmbus_classes.h"
#include "os.h"
#include "os_port.h"
#include "smp.h"
#include "hvkit/proto/ic.h"
#include "ic_guest.h"
#include "os_net.h"
#include "storvsc.h"
#include "vmbus_client.h"

static const char *cmdline = "";

bool cmdline_has(const char *word)
{
	size_t n = strlen(word);
	for (const char *p = cmdline; *p; p++)
		if ((p == cmdline || p[-1] == ' ') && !memcmp(p, word, n) &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == '='))
			return true;
	return false;
}

static uint64_t ram_bytes(const struct hvm_start_info *si)
{
	const struct hvm_memmap_table_entry *map = (const void *)(uintptr_t)si->memmap_paddr;
	uint64_t total = 0;
	for (uint32_t i = 0; si->version >= 1 && i < si->memmap_entries; i++)
		if (map[i].type == E820_RAM)
			total += map[i].size;
	return total;
}

static void hypervisor_vendor(char out[13])
{
	uint32_t r[4];
	cpuid(1, 0, r);
	if (!(r[2] & (1u << 31))) {
		memcpy(out, "none", 5);
		return;
	}
	cpuid(0x40000000, 0, r);
	memcpy(out, &r[1], 4);
	memcpy(out + 4, &r[2], 4);
	memcpy(out + 8, &r[3], 4);
	out[12] = '\0';
}

static struct hv_guest guest;
static bool enlightened;
static volatile int ap_failures;

static const char *stimer_mode_name(enum hv_stimer_mode m)
{
	return m == HV_STIMER_MODE_DIRECT ? "direct mode" : m == HV_STIMER_MODE_MESSAGE ? "message mode" : "none";
}

/* Brings the enlightenments up on this VP, given what detection found (f
 * NULL: no Hyper-V). Returns 0 if that worked (or Hyper-V is absent and
 * not required). */
static int enlighten(const struct hv_guest_features *f, uint32_t vps)
{
	if (!f) {
		char vendor[13];
		hypervisor_vendor(vendor);
		kprintf("hvkit-os: Hyper-V not detected (hypervisor: %s)\n", vendor);
		return cmdline_has("hvkit.expect_hv") ? 2 : 0;
	}
	kprintf("hvkit-os: Hyper-V detected: max leaf %#x, features %#x, privileges %#x, "
		"misc %#x, hints %#x, max VPs %u\n",
		f->max_leaf, f->features, f->privileges, f->misc, f->hints, f->max_vps);
	struct hv_guest_config cfg = {.vp_count = vps};
	int err = hv_guest_init(&guest, os_port(), &cfg);
	if (!err)
		err = hv_guest_vp_init(&guest);
	if (err) {
		kprintf("hvkit-os: enlightenments failed: %d\n", err);
		return 3;
	}
	kprintf("hvkit-os: hypercall page on, SynIC on VP %u, clocksource %s, stimer %s\n",
		lapic_id(), guest.tsc_page ? "TSC page" : "reference counter MSR",
		stimer_mode_name(guest.stimer_mode));
	enlightened = true;
	return 0;
}

/* hvkit.crash: what a panicking Linux sends (hyperv_report_panic), then a
 * wait the host should end (a second is plenty: it stops the VM at the
 * report). */
static int report_crash(void)
{
	static const char message[] = "hvkit-os: crash test (hvkit.crash)";
	const uint64_t params[5] = {0xc0ffee, 1, 2, 3, 4};
	kprintf("hvkit-os: reporting a crash\n");
	int err = hv_guest_report_crash(&guest, params, message, sizeof(message) - 1);
	if (err) {
		kprintf("hvkit-os: the crash report failed: %d\n", err);
		return 10;
	}
	uint64_t end = monotonic_ns() + 1000000000ull;
	while (monotonic_ns() < end)
		__asm__ volatile("pause");
	kprintf("hvkit-os: still running after the crash report\n");
	return 10;
}

/* On each AP as it comes up: its own SynIC. */
static void ap_ready(uint32_t apic_id)
{
	if (!enlightened)
		return;
	int err = hv_guest_vp_init(&guest);
	if (err) {
		kprintf("hvkit-os: SynIC on VP %u failed: %d\n", apic_id, err);
		__atomic_add_fetch(&ap_failures, 1, __ATOMIC_RELAXED);
	}
}

/* ---- Integration components ---- */

static volatile int shutdown_kind = -1; /* set by the host's request */
static volatile uint64_t time_samples;

static int64_t on_shutdown(void *ctx, enum ic_guest_shutdown_kind kind, bool force,
			   uint32_t reason, uint32_t timeout_seconds, const char *message)
{
	(void)ctx;
	(void)force;
	(void)reason;
	(void)timeout_seconds;
	static const char *const names[] = {"power off", "reboot", "hibernate"};
	kprintf("hvkit-os: the host asks to %s (\"%s\")\n", names[kind], message ? message : "");
	shutdown_kind = (int)kind;
	return IC_S_OK;
}

static void on_time_sample(void *ctx, uint64_t host_time, uint64_t ref, bool sync)
{
	(void)ctx;
	(void)host_time;
	(void)ref;
	(void)sync;
	time_samples++;
}

static const char *const intrinsic[] = {
	"FullyQualifiedDomainName", "hvkit-os", "OSName", "hvkit-os",
	"ProcessorArchitecture", "x86_64", NULL,
};

static void report_ic(struct ic_guest *ics)
{
	for (int svc = 0; svc < IC_SERVICE_COUNT; svc++) {
		struct ic_guest_status st;
		ic_guest_status(ics, (enum ic_service)svc, &st);
		if (!st.negotiated)
			continue;
		kprintf("hvkit-os: ic %-9s framework %u.%u, version %u.%u, %llu requests answered\n",
			ic_service_name((enum ic_service)svc), IC_VERSION_MAJOR(st.fw_version),
			IC_VERSION_MINOR(st.fw_version), IC_VERSION_MAJOR(st.msg_version),
			IC_VERSION_MINOR(st.msg_version), (unsigned long long)st.messages);
	}
}

/* ---- hvkit.disk_load: storage I/O checked against a model ---- */

#define LOAD_BLOCKS 64u
#define LOAD_LBA 1024u

static struct storvsc *disk_controller; /* the first SCSI controller bound (Storage) */

/* What each block of the load's region must hold: the generation last
 * written (0: never). The model lives in guest RAM, so a VM snapshot
 * keeps it with the disk the host kept. */
static struct {
	uint32_t gen[LOAD_BLOCKS];
	uint32_t next;            /* block written next */
	uint64_t writes, reads, mismatches, failures;
	uint64_t last_ns, clock_back; /* the clock must never go back */
	uint8_t *buf;
} load;

static void load_fill(uint8_t *b, uint32_t bs, uint32_t block, uint32_t gen)
{
	for (uint32_t k = 0; k < bs; k++)
		b[k] = (uint8_t)(block * 7 + gen * 13 + k);
}

/* One step: write the next block with a new generation, then read back
 * another (the one written a few steps before) and check it. */
static void load_step(void)
{
	struct storvsc *s = disk_controller;
	struct storvsc_disk d;
	if (!s || !storvsc_disk(s, 0, &d) || d.blocks < LOAD_LBA + LOAD_BLOCKS ||
	    d.block_size > 4096)
		return;
	/* Two pages: what is written or read, and what it should be. */
	if (!load.buf && !(load.buf = os_port()->alloc_pages(os_port()->ctx, 2)))
		return;
	uint64_t now = monotonic_ns();
	load.clock_back += now < load.last_ns;
	load.last_ns = now;
	uint32_t b = load.next++ % LOAD_BLOCKS, gen = load.gen[b] + 1;
	load_fill(load.buf, d.block_size, b, gen);
	if (storvsc_write(s, 0, LOAD_LBA + b, 1, load.buf)) {
		load.failures++;
		return;
	}
	load.gen[b] = gen;
	load.writes++;
	uint32_t r = (b + LOAD_BLOCKS - 5) % LOAD_BLOCKS;
	if (storvsc_read(s, 0, LOAD_LBA + r, 1, load.buf)) {
		load.failures++;
		return;
	}
	load.reads++;
	uint8_t *want = load.buf + 4096;
	load_fill(want, d.block_size, r, load.gen[r]);
	if (load.gen[r] && memcmp(want, load.buf, d.block_size))
		load.mismatches++;
}

static void load_report(void)
{
	if (cmdline_has("hvkit.disk_load"))
		kprintf("hvkit-os: disk load: %llu writes, %llu reads checked, %llu mismatches, "
			"%llu failures; the clock went back %llu times\n",
			(unsigned long long)load.writes, (unsigned long long)load.reads,
			(unsigned long long)load.mismatches, (unsigned long long)load.failures,
			(unsigned long long)load.clock_back);
}

/* Runs the client's work for ms milliseconds, or (serve) until the host
 * asks the guest to shut down; with hvkit.disk_load a load step each
 * turn. */
static void run_vmbus(struct vmbus_client *c, uint64_t ms, bool serve)
{
	uint64_t end = monotonic_ns() + ms * 1000000;
	bool disk_load = cmdline_has("hvkit.disk_load");
	while (shutdown_kind < 0 && (serve || monotonic_ns() < end)) {
		vmbus_client_wait_work(c, disk_load ? 0 : 10000000);
		vmbus_client_process(c);
		if (disk_load)
			load_step();
	}
}

static void print_offer(void *arg, const struct vmbus_client_channel_info *ci)
{
	(void)arg;
	const struct vmbus_class_info *cls = vmbus_class_find(&ci->class_id);
	kprintf("hvkit-os:   %-10s relid %3u sub %u vp %u %s\n", cls ? cls->name : "unknown",
		ci->relid, ci->sub_channel_index, ci->target_vp, ci->driver ? ci->driver : "");
}

/* ---- Storage ---- */


static void on_storvsc_attached(void *ctx, struct storvsc *s)
{
	(void)ctx;
	if (!disk_controller)
		disk_controller = s;
}

static void on_storvsc_detached(void *ctx, struct storvsc *s)
{
	(void)ctx;
	if (disk_controller == s)
		disk_controller = NULL;
}

static void count_controllers(void *arg, const struct vmbus_client_channel_info *ci)
{
	static const struct hv_guid scsi = VMBUS_CLASS_SCSI;
	if (!memcmp(&ci->class_id, &scsi, sizeof(scsi)) && ci->sub_channel_index == 0 &&
	    ci->state != VMBUS_CLIENT_RESCINDED)
		(*(uint32_t *)arg)++;
}

/* Until the storage controller offered (if any) is bound, its disks
 * scanned and its sub-channels open, at most ms: the condition hvkit-os
 * reports on, as os_net_settle is for the NICs. */
static void storage_settle(struct vmbus_client *c, uint64_t ms)
{
	uint64_t end = monotonic_ns() + ms * 1000000;
	for (;;) {
		uint32_t offered = 0;
		vmbus_client_for_each_channel(c, count_controllers, &offered);
		struct storvsc_stats st = {0};
		if (disk_controller)
			storvsc_get_stats(disk_controller, &st);
		bool settled = !offered || (disk_controller && st.channels >= st.channels_wanted);
		if (settled || monotonic_ns() >= end)
			return;
		vmbus_client_wait_work(c, 10000000);
		vmbus_client_process(c);
	}
}

/* Lists the disks. */
static void report_disks(void)
{
	struct storvsc *s = disk_controller;
	if (!s)
		return;
	struct storvsc_stats st;
	storvsc_get_stats(s, &st);
	kprintf("hvkit-os: storvsc version %u.%u, %u channel(s)\n", st.version >> 8,
		st.version & 0xff, st.channels);
	for (uint8_t lun = 0; lun < STORVSC_MAX_DISKS; lun++) {
		struct storvsc_disk d;
		if (storvsc_disk(s, lun, &d))
			kprintf("hvkit-os: disk lun %u: %llu blocks of %u%s\n", lun,
				(unsigned long long)d.blocks, d.block_size,
				d.read_only ? ", read-only" : "");
	}
}

/* hvkit.disk_test: writes 8 blocks at LBA 8 of LUN 0, flushes and reads
 * them back (small: guest CPU is dear under PVM). */
static void disk_test(void)
{
	struct storvsc *s = disk_controller;
	struct storvsc_disk d;
	if (!s || !cmdline_has("hvkit.disk_test") || !storvsc_disk(s, 0, &d) || d.blocks < 16)
		return;
	const struct hv_port *port = os_port();
	uint32_t bytes = 8 * d.block_size, pages = (bytes + 4095) / 4096;
	uint8_t *buf = port->alloc_pages(port->ctx, pages);
	if (!buf)
		return;
	for (uint32_t k = 0; k < bytes; k++)
		buf[k] = (uint8_t)(k / d.block_size * 31 + k);
	int err = storvsc_write(s, 0, 8, 8, buf);
	if (!err)
		err = storvsc_flush(s, 0);
	if (!err) {
		memset(buf, 0, bytes);
		err = storvsc_read(s, 0, 8, 8, buf);
	}
	for (uint32_t k = 0; !err && k < bytes; k++)
		if (buf[k] != (uint8_t)(k / d.block_size * 31 + k))
			err = -EIO;
	if (err)
		kprintf("hvkit-os: disk test failed: %d\n", err);
	else
		kprintf("hvkit-os: disk lun 0 verified\n");
	port->free_pages(port->ctx, buf, pages);
}

/* VMBus: bind the integration components, connect at the newest version
 * both sides know, list the offers, answer the host for a while (or, with
 * hvkit.serve, until it asks for a shutdown), unload. Returns 0 if that
 * worked. */
static int vmbus(void)
{
	struct vmbus_client_config cc = {0};
	int err;
	struct vmbus_client *c = vmbus_client_new(&guest, &cc, &err);
	if (!c) {
		kprintf("hvkit-os: VMBus client: %d\n", err);
		return 7;
	}
	struct ic_guest_config icc = {
		.services = IC_ALL_SERVICES & ~(1u << IC_FCOPY), /* no file system here */
		.intrinsic = intrinsic,
		.ops = {.shutdown = on_shutdown, .time_sample = on_time_sample},
	};
	struct ic_guest *ics = NULL;
	err = ic_guest_register(c, guest.port, &icc, &ics);
	struct storvsc_driver *sd = NULL;
	struct storvsc_config scc = {.sub_channels = UINT32_MAX,
				     .attached = on_storvsc_attached,
				     .detached = on_storvsc_detached};
	if (!err)
		err = storvsc_driver_register(c, &guest, &scc, &sd);
	struct netvsc_driver *nd = NULL;
	if (!err)
		nd = os_net_register(c, guest.config.vp_count, &err);
	if (!err)
		err = vmbus_client_connect(c);
	int net_failures = 0;
	if (!err) {
		uint32_t v = vmbus_client_version(c);
		struct vmbus_client_stats st;
		vmbus_client_get_stats(c, &st);
		kprintf("hvkit-os: VMBus %u.%u, %u offers\n", VMBUS_VERSION_MAJOR(v),
			VMBUS_VERSION_MINOR(v), st.offers);
		storage_settle(c, 10000);
		os_net_settle(c, nd, 10000);
		vmbus_client_for_each_channel(c, print_offer, NULL);
		report_disks();
		disk_test();
		net_failures = os_net_report(c, nd, cmdline_has("hvkit.net_test"));
		run_vmbus(c, 2500, cmdline_has("hvkit.serve"));
		/* Served until asked to stop: the disk and the NICs once
		 * more, as they are now (after a restore, the restored
		 * devices' work). */
		if (cmdline_has("hvkit.serve")) {
			disk_test();
			if (cmdline_has("hvkit.net_test"))
				net_failures += os_net_retest(c, nd);
		}
		load_report();
		report_ic(ics);
		if (time_samples)
			kprintf("hvkit-os: %llu time samples from the host\n",
				(unsigned long long)time_samples);
		err = vmbus_client_unload(c);
	}
	if (err)
		kprintf("hvkit-os: VMBus failed: %d\n", err);
	netvsc_driver_free(nd);
	vmbus_client_free(c);
	storvsc_driver_free(sd);
	ic_guest_free(ics);
	return err ? 8 : net_failures ? 9 : 0;
}

/* The port's waiting works: a 20 ms wait on an event nobody sets. */
static int check_waiting(void)
{
	const struct hv_port *port = os_port();
	struct hv_port_event *e = port->event_new(port->ctx);
	uint64_t t0 = monotonic_ns();
	int rc = e ? port->event_wait(port->ctx, e, 20000000) : 0;
	uint64_t waited = monotonic_ns() - t0;
	port->event_free(port->ctx, e);
	if (rc != -ETIMEDOUT || waited < 20000000) {
		kprintf("hvkit-os: event wait returned %d after %llu us\n", rc,
			(unsigned long long)(waited / 1000));
		return 4;
	}
	return 0;
}

void kmain(uint32_t start_info)
{
	console_init();
	const struct hvm_start_info *si = (const void *)(uintptr_t)start_info;
	if (!si || si->magic != HVM_START_MAGIC) {
		kprintf("hvkit-os: not started through PVH (no start_info)\n");
		halt_forever();
	}
	if (si->cmdline_paddr)
		cmdline = (const char *)(uintptr_t)si->cmdline_paddr;
	idt_init();
	memory_init(si);
	kprintf("hvkit-os: booted, %llu MiB of RAM (%llu MiB free), command line \"%s\"\n",
		(unsigned long long)(ram_bytes(si) >> 20),
		(unsigned long long)(memory_free_bytes() >> 20), cmdline);
	struct hv_guest_features f;
	bool hv = !hv_guest_detect(os_port(), &f);
	if (time_init(acpi_pm_timer(si->rsdp_paddr), hv && (f.features & HV_FEAT_FREQUENCY_MSRS))) {
		kprintf("hvkit-os: no way to know the TSC frequency\n");
		power_off(si->rsdp_paddr, 5);
	}
	lapic_init();
	__asm__ volatile("sti");
	kprintf("hvkit-os: TSC %llu MHz, APIC %u\n",
		(unsigned long long)(tsc_frequency() / 1000000), lapic_id());
	uint32_t expected = smp_count(si->rsdp_paddr);
	int status = enlighten(hv ? &f : NULL, expected);
	if (!status && enlightened && cmdline_has("hvkit.crash"))
		status = report_crash();
	uint32_t vps = smp_start(si->rsdp_paddr, ap_ready);
	kprintf("hvkit-os: %u of %u VPs online\n", vps, expected);
	if (!status && (vps != expected || ap_failures))
		status = 6;
	if (!status)
		status = check_waiting();
	if (!status && enlightened && !cmdline_has("hvkit.no_vmbus"))
		status = vmbus();
	power_off(si->rsdp_paddr, status);
}
