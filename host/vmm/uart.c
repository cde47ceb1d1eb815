/* SPDX-License-Identifier: MIT */
/*
 * A 16550A UART as a PC has at COM1: what Linux's 8250 driver and simple
 * test kernels use (divisor latch, FIFO control, loopback for the driver's
 * probe, THR-empty and receive interrupts). Bytes leave immediately, so
 * THR and the transmitter are always empty by the time the guest looks.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pio.h"

enum {
	UART_RBR_THR = 0, UART_IER = 1, UART_IIR_FCR = 2, UART_LCR = 3,
	UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7,
};

#define IER_RDI 0x01     /* received data available */
#define IER_THRI 0x02    /* transmitter holding register empty */
#define IER_RLSI 0x04    /* receiver line status */
#define IER_MSI 0x08     /* modem status */
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

struct uart {
	struct uart_config cfg;
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thr_interrupt;      /* THRE pending until IIR read or THR write */
	bool irq_level;
	uint8_t rx[UART_FIFO];
	unsigned rx_head, rx_count;
};

struct uart *uart_new(const struct uart_config *cfg)
{
	struct uart *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->cfg = *cfg;
	pthread_mutex_init(&u->lock, NULL);
	u->dll = 12; /* 9600 baud, what firmware leaves */
	return u;
}

void uart_free(struct uart *u)
{
	if (!u)
		return;
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static uint8_t interrupt_id(const struct uart *u)
{
	if ((u->ier & IER_RDI) && u->rx_count)
		return IIR_RDI;
	if ((u->ier & IER_THRI) && u->thr_interrupt)
		return IIR_THRI;
	return IIR_NONE;
}

static void update_irq(struct uart *u)
{
	bool level = interrupt_id(u) != IIR_NONE;
	if (level != u->irq_level) {
		u->irq_level = level;
		if (u->cfg.line.set)
			u->cfg.line.set(u->cfg.line.ctx, u->cfg.irq, level);
	}
}

static size_t rx_push(struct uart *u, const uint8_t *bytes, size_t len)
{
	size_t n = 0;
	for (; n < len && u->rx_count < UART_FIFO; n++, u->rx_count++)
		u->rx[(u->rx_head + u->rx_count) % UART_FIFO] = bytes[n];
	return n;
}

static uint8_t rx_pop(struct uart *u)
{
	if (!u->rx_count)
		return 0;
	uint8_t b = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_FIFO;
	u->rx_count--;
	return b;
}

size_t uart_receive(struct uart *u, const uint8_t *bytes, size_t len)
{
	pthread_mutex_lock(&u->lock);
	size_t n = (u->mcr & MCR_LOOP) ? 0 : rx_push(u, bytes, len); /* loopback: line cut */
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

static void transmit(struct uart *u, uint8_t b)
{
	if (u->mcr & MCR_LOOP)
		rx_push(u, &b, 1);
	else if (u->cfg.output)
		u->cfg.output(u->cfg.output_ctx, &b, 1);
	u->thr_interrupt = true; /* sent at once: THR empty again */
}

/* In loopback the modem inputs follow the outputs (DTR->DSR, RTS->CTS,
 * OUT1->RI, OUT2->DCD); otherwise a cable with everything asserted. */
static uint8_t modem_status(const struct uart *u)
{
	if (!(u->mcr & MCR_LOOP))
		return 0xb0; /* DCD, DSR, CTS */
	uint8_t m = u->mcr;
	return (uint8_t)(((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) |
			 ((m & 0x08) << 4));
}

static uint8_t read_reg(struct uart *u, uint16_t reg)
{
	bool dlab = u->lcr & LCR_DLAB;
	switch (reg) {
	case UART_RBR_THR:
		return dlab ? u->dll : rx_pop(u);
	case UART_IER:
		return dlab ? u->dlm : u->ier;
	case UART_IIR_FCR: {
		uint8_t id = interrupt_id(u);
		if (id == IIR_THRI)
			u->thr_interrupt = false; /* reading it acknowledges */
		return (uint8_t)(id | ((u->fcr & FCR_ENABLE) ? IIR_FIFO : 0));
	}
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		return (uint8_t)(LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0));
	case UART_MSR:
		return modem_status(u);
	default:
		return u->scr;
	}
}

static void write_reg(struct uart *u, uint16_t reg, uint8_t v)
{
	bool dlab = u->lcr & LCR_DLAB;
	switch (reg) {
	case UART_RBR_THR:
		if (dlab)
			u->dll = v;
		else
			transmit(u, v);
		break;
	case UART_IER:
		if (dlab) {
			u->dlm = v;
			break;
		}
		/* Enabling THRE interrupts with THR empty raises one at once. */
		if ((v & IER_THRI) && !(u->ier & IER_THRI))
			u->thr_interrupt = true;
		u->ier = v & 0x0f;
		break;
	case UART_IIR_FCR:
		u->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX)
			u->rx_count = 0;
		break;
	case UART_LCR:
		u->lcr = v;
		break;
	case UART_MCR:
		u->mcr = v & 0x1f;
		break;
	case UART_LSR:
	case UART_MSR:
		break; /* read-only here */
	default:
		u->scr = v;
	}
}

void uart_pio(void *dev, uint16_t offset, uint8_t size, bool write, uint32_t *value)
{
	struct uart *u = dev;
	pthread_mutex_lock(&u->lock);
	/* Wider accesses touch consecutive registers, byte by byte. */
	uint32_t out = 0;
	for (uint8_t i = 0; i < size && offset + i < 8; i++) {
		if (write)
			write_reg(u, (uint16_t)(offset + i), (uint8_t)(*value >> (8 * i)));
		else
			out |= (uint32_t)read_reg(u, (uint16_t)(offset + i)) << (8 * i);
	}
	if (!write)
		*value = out;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

void uart_get_state(struct uart *u, struct uart_state *out)
{
	pthread_mutex_lock(&u->lock);
	*out = (struct uart_state){
		.ier = u->ier, .lcr = u->lcr, .mcr = u->mcr, .scr = u->scr, .fcr = u->fcr,
		.dll = u->dll, .dlm = u->dlm, .thr_interrupt = u->thr_interrupt,
		.irq_level = u->irq_level, .rx_count = u->rx_count,
	};
	for (unsigned i = 0; i < u->rx_count; i++)
		out->rx[i] = u->rx[(u->rx_head + i) % UART_FIFO];
	pthread_mutex_unlock(&u->lock);
}

int uart_set_state(struct uart *u, const struct uart_state *in)
{
	if (in->rx_count > UART_FIFO)
		return -EINVAL;
	pthread_mutex_lock(&u->lock);
	u->ier = in->ier;
	u->lcr = in->lcr;
	u->mcr = in->mcr;
	u->scr = in->scr;
	u->fcr = in->fcr;
	u->dll = in->dll;
	u->dlm = in->dlm;
	u->thr_interrupt = in->thr_interrupt;
	u->irq_level = in->irq_level;
	u->rx_head = 0;
	u->rx_count = in->rx_count;
	memcpy(u->rx, in->rx, in->rx_count);
	pthread_mutex_unlock(&u->lock);
	return 0;
}
