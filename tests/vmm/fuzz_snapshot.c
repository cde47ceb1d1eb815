/* SPDX-License-Identifier: MIT */
/*
 * snapshot_read facing a corrupt, truncated or hostile snapshot file
 * (hvkit run --restore reads whatever file it is given). The input is the
 * file as it is (first byte odd), or mutations of a real snapshot: one is
 * written from a small machine (16 pages of RAM, a few of them not zero,
 * four records), then bytes are changed by (offset u16, xor u8) triples
 * from byte 2 on, and with byte 1 bit 1 the file is cut to
 * length * byte 1 / 256. A file that reads must give records within
 * their bound and write pages only inside guest RAM (the sanitizers
 * watch); the real one, untouched, must give back exactly what was
 * saved. Nothing may crash or leak.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_record.h"
#include "snapshot.h"

#define PAGES 16u
#define RAM (PAGES * 4096u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct guest_memory mem;
static uint8_t *ram;
static const struct snapshot_machine machine = {.cpus = 2, .memory = RAM, .echo_devices = 2,
						.ic = true};
static const char *const records[SNAPSHOT_RECORDS] = {"partition", "hv", "vmbus", "platform"};

static int memfd(const char *name, size_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size))
		abort();
	return fd;
}

static void setup(void)
{
	int fd = memfd("fuzz-snapshot-ram", RAM);
	ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ram == MAP_FAILED || guest_memory_add_file(&mem, 0, RAM, ram, fd, 0))
		abort();
}

/* The real snapshot: pages 1, 2 and 9 hold something. */
static size_t real_snapshot(int fd)
{
	memset(ram, 0, RAM);
	memset(ram + 4096, 0x11, 4096);
	memset(ram + 2 * 4096, 0x22, 100);
	ram[9 * 4096 + 4095] = 0x99;
	struct snapshot_records r;
	for (int i = 0; i < SNAPSHOT_RECORDS; i++) {
		r.buf[i] = (void *)records[i];
		r.len[i] = strlen(records[i]);
	}
	struct snapshot_stats st;
	if (snapshot_write(fd, &machine, &r, &mem, &st) || st.ram_pages != 3)
		abort();
	return st.file_bytes;
}

static bool untouched(const struct snapshot_records *r)
{
	for (int i = 0; i < SNAPSHOT_RECORDS; i++)
		if (r->len[i] != strlen(records[i]) || memcmp(r->buf[i], records[i], r->len[i]))
			return false;
	return ram[4096] == 0x11 && ram[2 * 4096 + 99] == 0x22 && ram[2 * 4096 + 100] == 0 &&
	       ram[9 * 4096 + 4095] == 0x99 && ram[0] == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ram)
		setup();
	int fd = memfd("fuzz-snapshot-file", 0);
	bool raw = size && (data[0] & 1);
	if (raw) {
		if (write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
			abort();
	} else {
		size_t len = real_snapshot(fd);
		uint8_t *file = malloc(len);
		if (!file || pread(fd, file, len, 0) != (ssize_t)len)
			abort();
		fuzz_xor_triples(data, size, file, len);
		if (size > 1 && (data[1] & 2))
			len = len * data[1] / 256;
		if (ftruncate(fd, 0) || pwrite(fd, file, len, 0) != (ssize_t)len)
			abort();
		free(file);
	}
	lseek(fd, 0, SEEK_SET);
	memset(ram, 0xee, RAM); /* a restore starts from a booted machine's RAM */
	struct snapshot_records r;
	struct snapshot_stats st;
	char why[200];
	int err = snapshot_read(fd, &machine, &mem, &r, &st, why, sizeof(why));
	bool real = !raw && size <= 2 && !(size > 1 && (data[1] & 2));
	if (real && (err || !untouched(&r)))
		abort(); /* the real snapshot must load as saved */
	if (!err) {
		for (int i = 0; i < SNAPSHOT_RECORDS; i++)
			if (r.len[i] > SNAPSHOT_MAX_RECORD || !r.buf[i])
				abort();
		snapshot_records_free(&r);
	}
	close(fd);
	return 0;
}
