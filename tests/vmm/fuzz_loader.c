/* SPDX-License-Identifier: MIT */
/*
 * The kernel loaders against arbitrary files: no crash, no access outside
 * guest memory (ASan), and every refusal explained.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "loader.h"

#define RAM (32u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_memory mem;
	static uint8_t *ram;
	if (!ram) {
		ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (ram == MAP_FAILED || guest_memory_add(&mem, 0, RAM, ram))
			abort();
	}
	static const char initrd[] = "initrd";
	struct boot_module mod = {initrd, sizeof(initrd), "m"};
	struct boot_config cfg = {.kernel = data, .kernel_size = size, .cmdline = "console=ttyS0",
				  .modules = &mod, .module_count = size % 2,
				  .rsdp_gpa = BOOT_ACPI_BASE, .acpi_base = BOOT_ACPI_BASE,
				  .acpi_size = 0x1000};
	struct boot_info bi;
	char err[256];
	int rc = boot_load(&mem, &cfg, &bi, err, sizeof(err));
	if (rc && !err[0])
		abort(); /* a refusal without a reason */
	if (!rc && (bi.kernel_end <= bi.kernel_start || bi.kernel_end > RAM))
		abort();
	return 0;
}
