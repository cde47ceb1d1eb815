/* SPDX-License-Identifier: MIT */
/*
 * QEMU's firmware configuration device, its traditional I/O interface
 * (QEMU docs/specs/fw_cfg.rst, hw/nvram/fw_cfg.c): a 16-bit write to the
 * selector port picks an item, byte reads from the data port return it
 * from its start, and reads past its end (or of an item that does not
 * exist) return 0. Test kernels written for QEMU (kvm-unit-tests among
 * them) read the CPU count and RAM size here; firmware reads the file
 * directory. The DMA interface is not offered (FW_CFG_ID says so).
 */
#include "fw_cfg.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Item keys (fw_cfg.rst). */
#define FW_CFG_SIGNATURE 0x0000
#define FW_CFG_ID 0x0001
#define FW_CFG_RAM_SIZE 0x0003
#define FW_CFG_NOGRAPHIC 0x0004
#define FW_CFG_NB_CPUS 0x0005
#define FW_CFG_MAX_CPUS 0x000f
#define FW_CFG_FILE_DIR 0x0019
#define FW_CFG_FILE_FIRST 0x0020
#define FW_CFG_KEY_MASK 0x3fff /* bit 14: write channel, bit 15: arch-local */
#define FW_CFG_ID_TRADITIONAL 0x1

#define FW_CFG_ITEMS (FW_CFG_FILE_FIRST + FW_CFG_MAX_FILES)

/* A file directory entry: all big-endian. */
struct fw_cfg_file {
	uint32_t size;
	uint16_t select;
	uint16_t reserved;
	char name[FW_CFG_NAME_MAX];
};
_Static_assert(sizeof(struct fw_cfg_file) == 64, "fw_cfg.rst: FWCfgFile is 64 bytes");

struct fw_cfg {
	pthread_mutex_t lock;
	struct {
		uint8_t *data;
		uint32_t len;
	} items[FW_CFG_ITEMS];
	uint32_t files;
	uint16_t selected; /* an index into items, or FW_CFG_ITEMS: none */
	uint32_t offset;   /* the next byte the data port returns */
};

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Replaces item key with a copy of data. */
static int set_item(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	free(f->items[key].data);
	f->items[key].data = copy;
	f->items[key].len = len;
	return 0;
}

static int set_int(struct fw_cfg *f, uint16_t key, uint64_t v, unsigned bytes)
{
	uint8_t b[8];
	put_le(b, v, bytes);
	return set_item(f, key, b, bytes);
}

void fw_cfg_free(struct fw_cfg *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < FW_CFG_ITEMS; i++)
		free(f->items[i].data);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int fw_cfg_new(const struct fw_cfg_config *cfg, struct fw_cfg **out)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	f->selected = FW_CFG_ITEMS;
	uint32_t dir = 0; /* no files yet: a count of 0 */
	int err = set_item(f, FW_CFG_SIGNATURE, "QEMU", 4);
	if (!err)
		err = set_int(f, FW_CFG_ID, FW_CFG_ID_TRADITIONAL, 4);
	if (!err)
		err = set_int(f, FW_CFG_RAM_SIZE, cfg->ram_size, 8);
	if (!err)
		err = set_int(f, FW_CFG_NOGRAPHIC, 1, 2);
	if (!err)
		err = set_int(f, FW_CFG_NB_CPUS, cfg->cpus, 2);
	if (!err)
		err = set_int(f, FW_CFG_MAX_CPUS, cfg->cpus, 2);
	if (!err)
		err = set_item(f, FW_CFG_FILE_DIR, &dir, 4);
	if (err) {
		fw_cfg_free(f);
		return err;
	}
	*out = f;
	return 0;
}

int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len)
{
	size_t n = strlen(name);
	if (n == 0 || n >= FW_CFG_NAME_MAX)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	int err = f->files == FW_CFG_MAX_FILES ? -ENOSPC : 0;
	for (uint32_t i = 0; !err && i < f->files; i++) {
		const struct fw_cfg_file *e =
			(const void *)(f->items[FW_CFG_FILE_DIR].data + 4 + i * sizeof(*e));
		if (!strncmp(e->name, name, FW_CFG_NAME_MAX))
			err = -EEXIST;
	}
	uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + f->files);
	if (!err)
		err = set_item(f, key, data, len);
	if (!err) {
		/* The directory again: a big-endian count, then the entries. */
		uint32_t count = f->files + 1, size = 4 + count * (uint32_t)sizeof(struct fw_cfg_file);
		uint8_t *dir = calloc(1, size);
		if (!dir) {
			err = -ENOMEM;
		} else {
			memcpy(dir + 4, f->items[FW_CFG_FILE_DIR].data + 4,
			       f->files * sizeof(struct fw_cfg_file));
			put_be(dir, count, 4);
			uint8_t *e = dir + 4 + f->files * sizeof(struct fw_cfg_file);
			put_be(e, len, 4);
			put_be(e + 4, key, 2);
			memcpy(e + 8, name, n);
			err = set_item(f, FW_CFG_FILE_DIR, dir, size);
			free(dir);
		}
		if (!err)
			f->files = count;
	}
	pthread_mutex_unlock(&f->lock);
	return err;
}

void fw_cfg_pio(void *dev, uint16_t offset, uint8_t size, bool write, uint32_t *value)
{
	struct fw_cfg *f = dev;
	pthread_mutex_lock(&f->lock);
	if (offset == 0 && write && size == 2) {
		/* A selection starts its item from the top; keys with the
		 * write-channel or arch-local bit, or past the table, select
		 * nothing (reads give 0). */
		uint16_t key = (uint16_t)*value;
		f->selected = key & ~FW_CFG_KEY_MASK || key >= FW_CFG_ITEMS ? FW_CFG_ITEMS : key;
		f->offset = 0;
	} else if (offset == 1 && !write && size == 1) {
		uint32_t b = 0;
		if (f->selected < FW_CFG_ITEMS && f->offset < f->items[f->selected].len)
			b = f->items[f->selected].data[f->offset++];
		*value = b;
	} else if (!write) {
		*value = 0; /* the selector reads as 0; wider data reads too */
	}
	/* Writes to the data port are ignored (QEMU 2.4 on). */
	pthread_mutex_unlock(&f->lock);
}
