/* SPDX-License-Identifier: MIT */
/*
 * Port I/O of a KVM machine: a bus that hands each guest IN/OUT to the
 * device owning the port, and the legacy devices a guest needs (16550 UART,
 * CMOS RTC, ACPI PM registers and reset register, QEMU's isa-debug-exit).
 *
 * Devices are state machines behind their own locks; what they do to the
 * world (print a byte, raise an IRQ, power off) goes through callbacks.
 * Ports nobody owns read as all ones and ignore writes, as on a PC.
 */
#ifndef HVKIT_PIO_H
#define HVKIT_PIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A device's handler: offset from its base, size 1, 2 or 4; for writes
 * *value holds the data, for reads the handler stores the result. */
typedef void (*pio_handler)(void *dev, uint16_t offset, uint8_t size, bool write,
			    uint32_t *value);

#define PIO_MAX_DEVICES 16

struct pio_bus {
	struct {
		uint16_t base, len;
		pio_handler fn;
		void *dev;
	} dev[PIO_MAX_DEVICES];
	unsigned count;
	uint64_t unclaimed; /* accesses to ports nobody owns */
};

/* -EBUSY if the range overlaps another device, -ENOSPC if full. */
int pio_bus_add(struct pio_bus *bus, uint16_t base, uint16_t len, pio_handler fn, void *dev);

/* Takes the device at base off the bus (nothing if none). Not while a VP
 * may be accessing the bus. */
void pio_bus_remove(struct pio_bus *bus, uint16_t base);

/* One guest access. size other than 1, 2, 4 or an access straddling a
 * device's end reads as ones / is ignored. */
void pio_bus_access(struct pio_bus *bus, uint16_t port, uint8_t size, bool write,
		    uint32_t *value);

/* How a device raises or lowers its ISA interrupt line. */
struct pio_irq {
	void (*set)(void *ctx, unsigned irq, bool level);
	void *ctx;
};

/* ---- 16550A UART ---- */

#define UART_FIFO 64

struct uart;

struct uart_config {
	unsigned irq;
	struct pio_irq line;
	void (*output)(void *ctx, const uint8_t *bytes, size_t len); /* THR writes */
	void *output_ctx;
};

struct uart *uart_new(const struct uart_config *cfg);
void uart_free(struct uart *u);
/* Bytes typed at the console; returns how many fit in the receive FIFO. */
size_t uart_receive(struct uart *u, const uint8_t *bytes, size_t len);
void uart_pio(void *uart, uint16_t offset, uint8_t size, bool write, uint32_t *value);

/* ---- MC146818 CMOS RTC (index 0x70, data 0x71) ---- */

struct rtc;

struct rtc_config {
	/* Host wall clock, seconds since the epoch (NULL: time(NULL)). */
	int64_t (*now)(void *ctx);
	void *now_ctx;
};

struct rtc *rtc_new(const struct rtc_config *cfg);
void rtc_free(struct rtc *r);
void rtc_pio(void *rtc, uint16_t offset, uint8_t size, bool write, uint32_t *value);

/* ---- ACPI PM1 registers, PM timer, reset register ---- */

enum pm_event {
	PM_POWER_OFF,   /* S5 */
	PM_HIBERNATE,   /* S4 */
	PM_RESET,       /* reset register */
};

struct pm;

struct pm_config {
	struct pio_irq line;                 /* the SCI */
	void (*event)(void *ctx, enum pm_event e);
	void *event_ctx;
	uint64_t (*now_ns)(void *ctx);       /* monotonic; NULL: CLOCK_MONOTONIC */
	void *now_ctx;
};

struct pm *pm_new(const struct pm_config *cfg);
void pm_free(struct pm *p);
/* PM1 block: event (status, enable) at 0-3, control at 4-5, timer at 8-11. */
void pm_pio(void *pm, uint16_t offset, uint8_t size, bool write, uint32_t *value);
/* The reset register (one port). */
void pm_reset_pio(void *pm, uint16_t offset, uint8_t size, bool write, uint32_t *value);

#define PM_TIMER_HZ 3579545ull

/* ---- isa-debug-exit (QEMU-compatible, off unless asked for) ---- */

struct debug_exit {
	void (*exit)(void *ctx, int status); /* status = (value << 1) | 1 */
	void *ctx;
};

void debug_exit_pio(void *dev, uint16_t offset, uint8_t size, bool write, uint32_t *value);

#endif /* HVKIT_PIO_H */
