/* SPDX-License-Identifier: MIT */
/*
 * hvkit-os's struct hv_port (guest/port/port.h). This first version
 * offers the CPU primitives (CPUID, MSRs that may #GP, TSC) and logging;
 * memory, interrupt vectors, locks, events and time follow with the
 * SynIC and VMBus bring-up.
 */
#include "os.h"
#include "os_port.h"

static void port_cpuid(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t regs[4])
{
	(void)ctx;
	cpuid(leaf, subleaf, regs);
}

static bool port_rdmsr(void *ctx, uint32_t msr, uint64_t *value)
{
	(void)ctx;
	return msr_read(msr, value);
}

static bool port_wrmsr(void *ctx, uint32_t msr, uint64_t value)
{
	(void)ctx;
	return msr_write(msr, value);
}

static uint64_t port_rdtsc(void *ctx)
{
	(void)ctx;
	return rdtsc();
}

static void port_log(void *ctx, const char *fmt, va_list ap)
{
	(void)ctx;
	console_write("hvkit-os: ", 10);
	kvprintf(fmt, ap);
	console_write("\n", 1);
}

const struct hv_port *os_port(void)
{
	static const struct hv_port port = {
		.cpuid = port_cpuid,
		.rdmsr = port_rdmsr,
		.wrmsr = port_wrmsr,
		.rdtsc = port_rdtsc,
		.log = port_log,
	};
	return &port;
}
