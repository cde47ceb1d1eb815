/* SPDX-License-Identifier: MIT */
/* The port I/O bus and the legacy devices, driven as a guest would. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pio.h"
#include "platform.h"

/* ---- What the devices do to the world, recorded ---- */

struct world {
	uint8_t out[256];
	size_t out_len;
	bool irq[16];
	unsigned irq_changes;
	int events[8];
	unsigned event_count;
	int exit_status;
	int64_t now_s;
	uint64_t now_ns;
};

static void set_irq(void *ctx, unsigned irq, bool level)
{
	struct world *w = ctx;
	w->irq[irq] = level;
	w->irq_changes++;
}

static void output(void *ctx, const uint8_t *b, size_t n)
{
	struct world *w = ctx;
	memcpy(w->out + w->out_len, b, n);
	w->out_len += n;
}

static void event(void *ctx, enum pm_event e)
{
	struct world *w = ctx;
	w->events[w->event_count++] = (int)e;
}

static void exit_with(void *ctx, int status)
{
	((struct world *)ctx)->exit_status = status;
}

static int64_t clock_s(void *ctx)
{
	return ((struct world *)ctx)->now_s;
}

static uint64_t clock_ns(void *ctx)
{
	return ((struct world *)ctx)->now_ns;
}

static uint32_t in(void (*fn)(void *, uint16_t, uint8_t, bool, uint32_t *), void *dev,
		   uint16_t off, uint8_t size)
{
	uint32_t v = 0;
	fn(dev, off, size, false, &v);
	return v;
}

static void out(void (*fn)(void *, uint16_t, uint8_t, bool, uint32_t *), void *dev,
		uint16_t off, uint8_t size, uint32_t v)
{
	fn(dev, off, size, true, &v);
}

/* ---- Bus ---- */

static void record(void *dev, uint16_t offset, uint8_t size, bool write, uint32_t *value)
{
	uint32_t *last = dev;
	last[0] = offset;
	last[1] = size;
	if (write)
		last[2] = *value;
	else
		*value = 0x1234;
}

static void bus_routes_by_range_and_refuses_overlaps(void **state)
{
	(void)state;
	struct pio_bus bus = {0};
	uint32_t a[3] = {0}, b[3] = {0};
	assert_int_equal(pio_bus_add(&bus, 0x3f8, 8, record, a), 0);
	assert_int_equal(pio_bus_add(&bus, 0x70, 2, record, b), 0);
	assert_int_equal(pio_bus_add(&bus, 0x3ff, 2, record, b), -EBUSY);
	assert_int_equal(pio_bus_add(&bus, 0xffff, 2, record, b), -EINVAL);

	uint32_t v = 0x41;
	pio_bus_access(&bus, 0x3f8 + 5, 1, true, &v);
	assert_int_equal(a[0], 5);
	assert_int_equal(a[2], 0x41);
	pio_bus_access(&bus, 0x71, 1, false, &v);
	assert_int_equal(v, 0x1234);
	assert_int_equal(b[0], 1);
	/* nobody's port, a straddling access, a bad size */
	pio_bus_access(&bus, 0x80, 2, false, &v);
	assert_int_equal(v, 0xffff);
	pio_bus_access(&bus, 0x71, 2, false, &v);
	assert_int_equal(v, 0xffff);
	pio_bus_access(&bus, 0x70, 3, false, &v);
	assert_int_equal(bus.unclaimed, 3);
}

static void bus_remove_takes_a_device_off(void **state)
{
	(void)state;
	struct pio_bus bus = {0};
	uint32_t a[3] = {0}, b[3] = {0};
	assert_int_equal(pio_bus_add(&bus, 0x3000, 4, record, a), 0);
	assert_int_equal(pio_bus_add(&bus, 0x70, 2, record, b), 0);
	pio_bus_remove(&bus, 0x3000);
	pio_bus_remove(&bus, 0x1234); /* nobody there: nothing */
	uint32_t v = 7;
	pio_bus_access(&bus, 0x3000, 4, true, &v);
	assert_int_equal(a[2], 0);
	assert_int_equal(bus.unclaimed, 1);
	pio_bus_access(&bus, 0x71, 1, true, &v);
	assert_int_equal(b[2], 7);
	/* The range is free again. */
	assert_int_equal(pio_bus_add(&bus, 0x3000, 4, record, b), 0);
}

/* ---- UART ---- */

static struct uart *new_uart(struct world *w)
{
	struct uart_config c = {.irq = PLATFORM_COM1_IRQ, .line = {set_irq, w},
				.output = output, .output_ctx = w};
	struct uart *u = uart_new(&c);
	assert_non_null(u);
	return u;
}

static void uart_transmits_and_receives(void **state)
{
	(void)state;
	struct world w = {0};
	struct uart *u = new_uart(&w);
	out(uart_pio, u, 0, 1, 'h');
	out(uart_pio, u, 0, 1, 'i');
	assert_int_equal(w.out_len, 2);
	assert_memory_equal(w.out, "hi", 2);
	assert_int_equal(in(uart_pio, u, 5, 1) & 0x61, 0x60); /* THRE, TEMT, no data */

	assert_int_equal(uart_receive(u, (const uint8_t *)"ok", 2), 2);
	assert_int_equal(in(uart_pio, u, 5, 1) & 1, 1);
	assert_int_equal(in(uart_pio, u, 0, 1), 'o');
	assert_int_equal(in(uart_pio, u, 0, 1), 'k');
	assert_int_equal(in(uart_pio, u, 5, 1) & 1, 0);

	/* The divisor latch hides THR: nothing is sent while DLAB is set. */
	out(uart_pio, u, 3, 1, 0x83);
	out(uart_pio, u, 0, 1, 1);
	out(uart_pio, u, 1, 1, 0);
	assert_int_equal(in(uart_pio, u, 0, 1), 1);
	out(uart_pio, u, 3, 1, 0x03);
	assert_int_equal(w.out_len, 2);

	uint8_t many[UART_FIFO + 10];
	memset(many, 'x', sizeof(many));
	assert_int_equal(uart_receive(u, many, sizeof(many)), UART_FIFO); /* the rest waits */
	out(uart_pio, u, 2, 1, 0x03);                                      /* clear RX */
	assert_int_equal(in(uart_pio, u, 5, 1) & 1, 0);
	uart_free(u);
}

static void uart_interrupts_follow_ier(void **state)
{
	(void)state;
	struct world w = {0};
	struct uart *u = new_uart(&w);
	assert_int_equal(in(uart_pio, u, 2, 1), 0x01); /* nothing pending */
	out(uart_pio, u, 1, 1, 0x01);                  /* receive interrupts */
	assert_false(w.irq[4]);
	uart_receive(u, (const uint8_t *)"a", 1);
	assert_true(w.irq[4]);
	assert_int_equal(in(uart_pio, u, 2, 1), 0x04);
	in(uart_pio, u, 0, 1);
	assert_false(w.irq[4]);

	/* THR empty: raised on enabling, acknowledged by reading IIR, raised
	 * again by the next transmission. */
	out(uart_pio, u, 1, 1, 0x03);
	assert_true(w.irq[4]);
	assert_int_equal(in(uart_pio, u, 2, 1), 0x02);
	assert_false(w.irq[4]);
	out(uart_pio, u, 0, 1, 'z');
	assert_true(w.irq[4]);
	out(uart_pio, u, 1, 1, 0x00);
	assert_false(w.irq[4]);

	out(uart_pio, u, 2, 1, 0x01); /* FIFOs on: IIR says so */
	assert_int_equal(in(uart_pio, u, 2, 1) & 0xc0, 0xc0);
	uart_free(u);
}

static void uart_loopback_for_the_linux_probe(void **state)
{
	(void)state;
	struct world w = {0};
	struct uart *u = new_uart(&w);
	out(uart_pio, u, 4, 1, 0x10 | 0x0a); /* loop, RTS, OUT2 */
	assert_int_equal(in(uart_pio, u, 6, 1) & 0xf0, 0x90); /* CTS, DCD */
	out(uart_pio, u, 0, 1, 0x5a);
	assert_int_equal(w.out_len, 0); /* not on the line */
	assert_int_equal(in(uart_pio, u, 0, 1), 0x5a);
	assert_int_equal(uart_receive(u, (const uint8_t *)"x", 1), 0); /* line cut */
	out(uart_pio, u, 4, 1, 0x00);
	assert_int_equal(in(uart_pio, u, 6, 1), 0xb0);
	out(uart_pio, u, 7, 1, 0xa5); /* scratch survives */
	assert_int_equal(in(uart_pio, u, 7, 1), 0xa5);
	uart_free(u);
}

/* ---- RTC ---- */

static uint8_t cmos(struct rtc *r, uint8_t reg)
{
	out(rtc_pio, r, 0, 1, reg);
	return (uint8_t)in(rtc_pio, r, 1, 1);
}

static void cmos_write(struct rtc *r, uint8_t reg, uint8_t v)
{
	out(rtc_pio, r, 0, 1, reg);
	out(rtc_pio, r, 1, 1, v);
}

static void rtc_reads_the_host_clock_in_bcd_and_binary(void **state)
{
	(void)state;
	struct world w = {.now_s = 1795327087}; /* 2026-11-22 05:58:07 UTC, a Sunday */
	struct rtc_config c = {clock_s, &w};
	struct rtc *r = rtc_new(&c);
	assert_int_equal(cmos(r, 0x00), 0x07);
	assert_int_equal(cmos(r, 0x02), 0x58);
	assert_int_equal(cmos(r, 0x04), 0x05);
	assert_int_equal(cmos(r, 0x06), 0x01);
	assert_int_equal(cmos(r, 0x07), 0x22);
	assert_int_equal(cmos(r, 0x08), 0x11);
	assert_int_equal(cmos(r, 0x09), 0x26);
	assert_int_equal(cmos(r, 0x32), 0x20);
	assert_int_equal(cmos(r, 0x0d) & 0x80, 0x80);
	assert_int_equal(cmos(r, 0x0a) & 0x80, 0); /* never updating */

	cmos_write(r, 0x0b, 0x06); /* binary, 24 h */
	assert_int_equal(cmos(r, 0x02), 58);
	assert_int_equal(cmos(r, 0x09), 26);
	cmos_write(r, 0x0b, 0x00); /* BCD, 12 h */
	w.now_s += 10 * 3600;      /* 15:58 */
	assert_int_equal(cmos(r, 0x04), 0x80 | 0x03);

	cmos_write(r, 0x40, 0x77); /* plain CMOS RAM */
	assert_int_equal(cmos(r, 0x40), 0x77);
	rtc_free(r);
}

static void rtc_writes_move_the_guest_clock(void **state)
{
	(void)state;
	struct world w = {.now_s = 1795327087};
	struct rtc_config c = {clock_s, &w};
	struct rtc *r = rtc_new(&c);
	cmos_write(r, 0x0b, 0x82); /* SET while writing, as Linux does */
	cmos_write(r, 0x09, 0x30); /* year 2030 */
	cmos_write(r, 0x02, 0x15); /* minute 15 */
	cmos_write(r, 0x0b, 0x02);
	assert_int_equal(cmos(r, 0x09), 0x30);
	assert_int_equal(cmos(r, 0x02), 0x15);
	w.now_s += 60; /* and it keeps running */
	assert_int_equal(cmos(r, 0x02), 0x16);
	cmos_write(r, 0x08, 0x13); /* month 13: ignored */
	assert_int_equal(cmos(r, 0x08), 0x11);
	rtc_free(r);
}

/* ---- PM ---- */

static struct pm *new_pm(struct world *w)
{
	struct pm_config c = {.line = {set_irq, w}, .event = event, .event_ctx = w,
			      .now_ns = clock_ns, .now_ctx = w};
	struct pm *p = pm_new(&c);
	assert_non_null(p);
	return p;
}

static void pm_sleep_states_power_off_and_hibernate(void **state)
{
	(void)state;
	struct world w = {0};
	struct pm *p = new_pm(&w);
	assert_int_equal(in(pm_pio, p, 4, 2) & 1, 1); /* SCI_EN: ACPI mode */
	out(pm_pio, p, 4, 2, (3u << 10) | (1u << 13)); /* S3: not offered */
	assert_int_equal(w.event_count, 0);
	out(pm_pio, p, 4, 2, (PLATFORM_SLP_TYP_S4 << 10) | (1u << 13));
	out(pm_pio, p, 4, 2, (PLATFORM_SLP_TYP_S5 << 10) | (1u << 13));
	assert_int_equal(w.event_count, 2);
	assert_int_equal(w.events[0], PM_HIBERNATE);
	assert_int_equal(w.events[1], PM_POWER_OFF);
	assert_int_equal(in(pm_pio, p, 4, 2) & (1u << 13), 0); /* SLP_EN reads 0 */
	/* byte writes work too: SLP_TYP and SLP_EN live in the high byte */
	out(pm_pio, p, 5, 1, (PLATFORM_SLP_TYP_S5 << 2) | (1u << 5));
	assert_int_equal(w.event_count, 3);

	out(pm_reset_pio, p, 0, 1, 0x02); /* SYS_RST alone: armed, no reset */
	assert_int_equal(w.event_count, 3);
	out(pm_reset_pio, p, 0, 1, PLATFORM_RESET_VALUE);
	assert_int_equal(w.events[3], PM_RESET);
	pm_free(p);
}

static void pm_timer_counts_at_3_58_mhz_and_raises_the_sci(void **state)
{
	(void)state;
	struct world w = {0};
	struct pm *p = new_pm(&w);
	uint32_t t0 = in(pm_pio, p, 8, 4);
	w.now_ns += 1000000000;
	assert_int_equal(in(pm_pio, p, 8, 4) - t0, PM_TIMER_HZ);

	out(pm_pio, p, 2, 2, 1); /* TMR_EN */
	assert_false(w.irq[PLATFORM_SCI_IRQ]);
	w.now_ns += 600ull * 1000000000; /* 2^31 ticks later the top bit toggles */
	assert_int_equal(in(pm_pio, p, 0, 2) & 1, 1);
	assert_true(w.irq[PLATFORM_SCI_IRQ]);
	out(pm_pio, p, 0, 2, 1); /* write one to clear */
	assert_int_equal(in(pm_pio, p, 0, 2) & 1, 0);
	assert_false(w.irq[PLATFORM_SCI_IRQ]);
	pm_free(p);
}

static void debug_exit_reports_value_times_two_plus_one(void **state)
{
	(void)state;
	struct world w = {0};
	struct debug_exit d = {exit_with, &w};
	out(debug_exit_pio, &d, 0, 1, 0x10);
	assert_int_equal(w.exit_status, 0x21);
	out(debug_exit_pio, &d, 0, 4, 0);
	assert_int_equal(w.exit_status, 1);
	out(debug_exit_pio, &d, 0, 1, 0x1ff); /* a byte write is a byte */
	assert_int_equal(w.exit_status, 0x1ff);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bus_routes_by_range_and_refuses_overlaps),
		cmocka_unit_test(bus_remove_takes_a_device_off),
		cmocka_unit_test(uart_transmits_and_receives),
		cmocka_unit_test(uart_interrupts_follow_ier),
		cmocka_unit_test(uart_loopback_for_the_linux_probe),
		cmocka_unit_test(rtc_reads_the_host_clock_in_bcd_and_binary),
		cmocka_unit_test(rtc_writes_move_the_guest_clock),
		cmocka_unit_test(pm_sleep_states_power_off_and_hibernate),
		cmocka_unit_test(pm_timer_counts_at_3_58_mhz_and_raises_the_sci),
		cmocka_unit_test(debug_exit_reports_value_times_two_plus_one),
	};
	return cmocka_run_group_tests_name("pio", tests, NULL, NULL);
}
