/* SPDX-License-Identifier: MIT */
/* The port I/O bus and isa-debug-exit; see pio.h. */
#include "pio.h"

#include <errno.h>

int pio_bus_add(struct pio_bus *bus, uint16_t base, uint16_t len, pio_handler fn, void *dev)
{
	if (!len || (uint32_t)base + len > 0x10000)
		return -EINVAL;
	for (unsigned i = 0; i < bus->count; i++) {
		uint32_t b = bus->dev[i].base, e = b + bus->dev[i].len;
		if (base < e && (uint32_t)base + len > b)
			return -EBUSY;
	}
	if (bus->count == PIO_MAX_DEVICES)
		return -ENOSPC;
	bus->dev[bus->count].base = base;
	bus->dev[bus->count].len = len;
	bus->dev[bus->count].fn = fn;
	bus->dev[bus->count].dev = dev;
	bus->count++;
	return 0;
}

void pio_bus_remove(struct pio_bus *bus, uint16_t base)
{
	for (unsigned i = 0; i < bus->count; i++) {
		if (bus->dev[i].base == base) {
			bus->dev[i] = bus->dev[--bus->count];
			return;
		}
	}
}

void pio_bus_access(struct pio_bus *bus, uint16_t port, uint8_t size, bool write,
		    uint32_t *value)
{
	if (size == 1 || size == 2 || size == 4) {
		for (unsigned i = 0; i < bus->count; i++) {
			uint32_t b = bus->dev[i].base, e = b + bus->dev[i].len;
			if (port >= b && (uint32_t)port + size <= e) {
				bus->dev[i].fn(bus->dev[i].dev, (uint16_t)(port - b), size, write,
					       value);
				return;
			}
		}
	}
	__atomic_fetch_add(&bus->unclaimed, 1, __ATOMIC_RELAXED);
	if (!write)
		*value = size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

void debug_exit_pio(void *dev, uint16_t offset, uint8_t size, bool write, uint32_t *value)
{
	(void)offset;
	struct debug_exit *d = dev;
	if (!write) {
		*value = size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
		return;
	}
	uint32_t v = size >= 4 ? *value : *value & ((1u << (8 * size)) - 1);
	/* QEMU's rule: the process exits with (value << 1) | 1, so a test
	 * kernel can never report 0 by accident. */
	d->exit(d->ctx, (int)((v << 1) | 1));
}
