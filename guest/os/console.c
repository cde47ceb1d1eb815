/* SPDX-License-Identifier: MIT */
/*
 * The console: COM1 by polling (a 16550 at 0x3f8, 115200 8N1).
 */
#include "os.h"

#define COM1 0x3f8
#define LSR_THRE 0x20

void console_init(void)
{
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* divisor latch */
	outb(COM1 + 0, 0x01); /* 115200 */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0x07); /* FIFOs on and cleared */
}

static void put_char(char c)
{
	/* A missing UART reads as 0xff: THRE set, so this never spins. */
	while (!(inb(COM1 + 5) & LSR_THRE))
		;
	outb(COM1, (uint8_t)c);
}

void console_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			put_char('\r');
		put_char(s[i]);
	}
}

void kvprintf(const char *fmt, va_list ap)
{
	char line[256];
	int n = kvsnprintf(line, sizeof(line), fmt, ap);
	console_write(line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
}
