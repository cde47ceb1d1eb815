/* SPDX-License-Identifier: MIT */
/*
 * QEMU's firmware configuration device (fw_cfg.c): the traditional I/O
 * interface at 0x510 (selector, 16-bit writes) and 0x511 (data, byte
 * reads), with the signature, ID, RAM size, CPU count and a file
 * directory. Thread-safe.
 */
#ifndef HVKIT_FW_CFG_H
#define HVKIT_FW_CFG_H

#include <stdbool.h>
#include <stdint.h>

#define FW_CFG_PORT 0x510
#define FW_CFG_PORTS 2
#define FW_CFG_MAX_FILES 16
#define FW_CFG_NAME_MAX 56 /* with the NUL */

struct fw_cfg_config {
	uint32_t cpus;     /* FW_CFG_NB_CPUS and FW_CFG_MAX_CPUS */
	uint64_t ram_size; /* FW_CFG_RAM_SIZE, bytes */
};

struct fw_cfg;

int fw_cfg_new(const struct fw_cfg_config *cfg, struct fw_cfg **out);
void fw_cfg_free(struct fw_cfg *f);

/* A file ("etc/e820"...) and its directory entry: -EINVAL for an empty or
 * too long name, -EEXIST, -ENOSPC past FW_CFG_MAX_FILES. */
int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len);

/* The device on a pio_bus at FW_CFG_PORT, FW_CFG_PORTS ports. */
void fw_cfg_pio(void *dev, uint16_t offset, uint8_t size, bool write, uint32_t *value);

#endif
