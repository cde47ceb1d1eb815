/* SPDX-License-Identifier: MIT */
/* What the Multiboot test kernel reports, for it and its tests. */
#ifndef HVKIT_MBTEST_H
#define HVKIT_MBTEST_H

/* Written to isa-debug-exit: hvkit (and QEMU) exit with (V << 1) | 1. */
#define MBTEST_PASS 0x21 /* exit status 67 */
enum mbtest_check {
	MBTEST_MAGIC = 1,
	MBTEST_MEMORY,
	MBTEST_MODULE_COUNT,
	MBTEST_MODULE_SIZE,
	MBTEST_MODULE_BYTES,
	MBTEST_SYNIC,
	MBTEST_SET_SINT,
	MBTEST_POST,
	MBTEST_ECHO,
	MBTEST_ECHO_BYTES,
	MBTEST_SIGNAL,
	MBTEST_EVENT,
	MBTEST_EVENT_FLAG,
	MBTEST_SIGNAL_FLAG_NUMBER,
	MBTEST_ECHO_BUSY,
	MBTEST_FW_CFG_SIGNATURE,
	MBTEST_FW_CFG_CPUS,
	MBTEST_FW_CFG_RAM,
};

/* Connection ids and the message type used with the Hyper-V test device. */
#define MBTEST_MSG_CONN 0x30
#define MBTEST_EVT_CONN 0x31
#define MBTEST_MSG_TYPE 0x4d42

#endif /* HVKIT_MBTEST_H */
