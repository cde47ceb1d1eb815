/* SPDX-License-Identifier: MIT */
/*
 * Port I/O from the guest: arbitrary sequences of IN and OUT of every size
 * to every port of the legacy devices (fw_cfg's too), and console input in
 * between. No
 * crash, no out-of-bounds access, interrupt lines only ever on their IRQs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fw_cfg.h"
#include "pio.h"
#include "platform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void set_irq(void *ctx, unsigned irq, bool level)
{
	(void)ctx;
	(void)level;
	if (irq != PLATFORM_COM1_IRQ && irq != PLATFORM_SCI_IRQ)
		abort();
}

static void sink(void *ctx, const uint8_t *b, size_t n)
{
	(void)ctx;
	(void)b;
	(void)n;
}

static void event(void *ctx, enum pm_event e)
{
	(void)ctx;
	if (e != PM_POWER_OFF && e != PM_HIBERNATE && e != PM_RESET)
		abort();
}

static void exit_with(void *ctx, int status)
{
	(void)ctx;
	if (!(status & 1))
		abort();
}

static int64_t fixed_time(void *ctx)
{
	(void)ctx;
	return 1795327087;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct uart_config uc = {PLATFORM_COM1_IRQ, {set_irq, NULL}, sink, NULL};
	struct rtc_config rc = {fixed_time, NULL};
	struct pm_config pc = {.line = {set_irq, NULL}, .event = event};
	struct uart *u = uart_new(&uc);
	struct rtc *r = rtc_new(&rc);
	struct pm *p = pm_new(&pc);
	struct debug_exit d = {exit_with, NULL};
	struct fw_cfg *fc = NULL;
	struct fw_cfg_config fcc = {.cpus = 2, .ram_size = 64u << 20};
	struct pio_bus bus = {0};
	if (!u || !r || !p || fw_cfg_new(&fcc, &fc) || fw_cfg_add_file(fc, "etc/e820", "e820", 4) ||
	    pio_bus_add(&bus, FW_CFG_PORT, FW_CFG_PORTS, fw_cfg_pio, fc) ||
	    pio_bus_add(&bus, PLATFORM_COM1_PORT, 8, uart_pio, u) ||
	    pio_bus_add(&bus, PLATFORM_RTC_PORT, 2, rtc_pio, r) ||
	    pio_bus_add(&bus, PLATFORM_PM_BASE, 12, pm_pio, p) ||
	    pio_bus_add(&bus, PLATFORM_RESET_PORT, 1, pm_reset_pio, p) ||
	    pio_bus_add(&bus, 0xf4, 4, debug_exit_pio, &d))
		abort();
	static const uint16_t ports[] = {PLATFORM_COM1_PORT, PLATFORM_RTC_PORT, PLATFORM_PM_BASE,
					 PLATFORM_RESET_PORT, 0xf4, 0x80, FW_CFG_PORT};
	/* Each step: device, offset, size+direction, 4 value bytes. */
	while (size >= 7) {
		uint16_t port = (uint16_t)(ports[data[0] % 7] + (data[1] & 0x0f));
		uint8_t sz = (uint8_t)(1u << (data[2] & 3)); /* 1, 2, 4, 8 (refused) */
		bool write = data[2] & 4;
		uint32_t v;
		memcpy(&v, data + 3, 4);
		if (data[2] & 8)
			uart_receive(u, data + 3, (data[2] >> 4) & 3); /* within the step */
		else
			pio_bus_access(&bus, port, sz, write, &v);
		data += 7;
		size -= 7;
	}
	uart_free(u);
	rtc_free(r);
	pm_free(p);
	fw_cfg_free(fc);
	return 0;
}
