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
/* The registers and the receive FIFO, for snapshots (kvm_platform_save). */
struct uart_state {
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thr_interrupt, irq_level;
	uint8_t rx[UART_FIFO];
	unsigned rx_count; /* at most UART_FIFO, the oldest first */
};
void uart_get_state(struct uart *u, struct uart_state *out);
/* -EINVAL for a state no guest can make (the FIFO overfull). */
int uart_set_state(struct uart *u, const struct uart_state *in);

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
/* The selected register, the CMOS bytes, and the guest's clock as an
 * offset from the host's (snapshots). */
struct rtc_state {
	uint8_t index;
	uint8_t ram[128];
	int64_t offset;
};
void rtc_get_state(struct rtc *r, struct rtc_state *out);
void rtc_set_state(struct rtc *r, const struct rtc_state *in);

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
/* PM1 status, enable and control, the reset register, SCI mode. */
struct pm_state {
	uint16_t status, enable, control;
	uint8_t reset;
	bool sci;
};
void pm_get_state(struct pm *p, struct pm_state *out);
void pm_set_state(struct pm *p, const struct pm_state *in);
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
