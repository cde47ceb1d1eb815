/* SPDX-License-Identifier: MIT */
/*
 * QEMU's fw_cfg as a guest reads it (QEMU docs/specs/fw_cfg.rst): select
 * with a 16-bit write to 0x510, read bytes from 0x511. The items test
 * kernels read (signature, ID, CPU count, RAM size) and the file directory
 * with a file in it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fw_cfg.h"

static void select_item(struct fw_cfg *f, uint16_t key)
{
	uint32_t v = key;
	fw_cfg_pio(f, 0, 2, true, &v);
}

static void read_bytes(struct fw_cfg *f, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t v = 0xdeadbeef;
		fw_cfg_pio(f, 1, 1, false, &v);
		out[i] = (uint8_t)v;
	}
}

static uint64_t read_le(struct fw_cfg *f, uint16_t key, unsigned n)
{
	uint8_t b[8];
	select_item(f, key);
	read_bytes(f, b, n);
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void what_test_kernels_read(void **state)
{
	(void)state;
	struct fw_cfg *f;
	struct fw_cfg_config cfg = {.cpus = 3, .ram_size = 192ull << 20};
	assert_int_equal(fw_cfg_new(&cfg, &f), 0);
	uint8_t sig[4];
	select_item(f, 0x0000);
	read_bytes(f, sig, 4);
	assert_memory_equal(sig, "QEMU", 4);
	assert_int_equal(read_le(f, 0x0001, 4), 1); /* traditional interface, no DMA */
	assert_int_equal(read_le(f, 0x0005, 2), 3); /* FW_CFG_NB_CPUS */
	assert_int_equal(read_le(f, 0x000f, 2), 3); /* FW_CFG_MAX_CPUS */
	assert_int_equal(read_le(f, 0x0003, 8), 192ull << 20);
	/* Selecting again starts from the top. */
	assert_int_equal(read_le(f, 0x0005, 2), 3);
	/* Past the end, an unknown key, a write-channel or arch-local key:
	 * zeros. */
	assert_int_equal(read_le(f, 0x0005, 4), 3);
	assert_int_equal(read_le(f, 0x0123, 4), 0);
	assert_int_equal(read_le(f, 0x4005, 2), 0);
	assert_int_equal(read_le(f, 0x8005, 2), 0);
	fw_cfg_free(f);
}

static void file_directory(void **state)
{
	(void)state;
	struct fw_cfg *f;
	struct fw_cfg_config cfg = {.cpus = 1, .ram_size = 64ull << 20};
	assert_int_equal(fw_cfg_new(&cfg, &f), 0);
	assert_int_equal(read_le(f, 0x0019, 4), 0); /* no files: a count of 0 */
	const uint8_t e820[40] = {1, 2, 3, [20] = 9, [39] = 7};
	assert_int_equal(fw_cfg_add_file(f, "etc/e820", e820, sizeof(e820)), 0);
	assert_int_equal(fw_cfg_add_file(f, "etc/other", "xy", 2), 0);
	/* Count, then entries: size, select, reserved, name; big-endian. */
	uint8_t dir[4 + 2 * 64];
	select_item(f, 0x0019);
	read_bytes(f, dir, sizeof(dir));
	assert_int_equal(be32(dir), 2);
	assert_int_equal(be32(dir + 4), 40);
	uint16_t select = (uint16_t)(dir[8] << 8 | dir[9]);
	assert_true(select >= 0x20);
	assert_string_equal((const char *)dir + 12, "etc/e820");
	assert_int_equal(be32(dir + 68), 2);
	assert_string_equal((const char *)dir + 76, "etc/other");
	/* The file by its selector. */
	uint8_t got[40];
	select_item(f, select);
	read_bytes(f, got, sizeof(got));
	assert_memory_equal(got, e820, sizeof(e820));
	fw_cfg_free(f);
}

static void guest_writes_change_nothing(void **state)
{
	(void)state;
	struct fw_cfg *f;
	struct fw_cfg_config cfg = {.cpus = 2, .ram_size = 1ull << 30};
	assert_int_equal(fw_cfg_new(&cfg, &f), 0);
	select_item(f, 0x0005);
	uint32_t v = 0x77;
	fw_cfg_pio(f, 1, 1, true, &v); /* a data write: ignored */
	v = 0x0003;
	fw_cfg_pio(f, 0, 1, true, &v); /* a byte write to the selector: ignored */
	uint8_t b[2];
	read_bytes(f, b, 2);
	assert_int_equal(b[0], 2);
	assert_int_equal(b[1], 0);
	v = 0xffffffff;
	fw_cfg_pio(f, 0, 2, false, &v); /* the selector reads as 0 */
	assert_int_equal(v, 0);
	fw_cfg_free(f);
}

static void file_limits(void **state)
{
	(void)state;
	struct fw_cfg *f;
	struct fw_cfg_config cfg = {.cpus = 1, .ram_size = 64ull << 20};
	assert_int_equal(fw_cfg_new(&cfg, &f), 0);
	char longname[FW_CFG_NAME_MAX + 1];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(fw_cfg_add_file(f, "", "x", 1), -EINVAL);
	assert_int_equal(fw_cfg_add_file(f, longname, "x", 1), -EINVAL);
	assert_int_equal(fw_cfg_add_file(f, "etc/a", "x", 1), 0);
	assert_int_equal(fw_cfg_add_file(f, "etc/a", "y", 1), -EEXIST);
	char name[16];
	for (int i = 1; i < FW_CFG_MAX_FILES; i++) {
		snprintf(name, sizeof(name), "etc/f%d", i);
		assert_int_equal(fw_cfg_add_file(f, name, "z", 1), 0);
	}
	assert_int_equal(fw_cfg_add_file(f, "etc/more", "z", 1), -ENOSPC);
	assert_int_equal(read_le(f, 0x0019, 4) >> 24, FW_CFG_MAX_FILES); /* big-endian */
	fw_cfg_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(what_test_kernels_read),
		cmocka_unit_test(file_directory),
		cmocka_unit_test(guest_writes_change_nothing),
		cmocka_unit_test(file_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
