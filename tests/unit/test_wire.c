/* SPDX-License-Identifier: MIT */
/*
 * Wire-format facts that a _Static_assert cannot state: GUID byte order,
 * the encoding of constants, and byte images of messages as Linux builds
 * them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hvkit/guid.h"
#include "hvkit/ring.h"
#include "hvkit/tlfs.h"
#include "hvkit/vmbus.h"

/* The storvsc class GUID, as Linux's HV_SCSI_GUID spells it. */
static const char scsi_text[] = "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f";
static const uint8_t scsi_wire[16] = {0xd9, 0x63, 0x61, 0xba, 0xa1, 0x04, 0x29, 0x4d,
				      0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f};

static void guid_parse_uses_windows_byte_order(void **state)
{
	(void)state;
	struct hv_guid g;

	assert_int_equal(hv_guid_parse(scsi_text, &g), 0);
	assert_memory_equal(g.b, scsi_wire, 16);
}

static void guid_macro_matches_parser(void **state)
{
	(void)state;
	struct hv_guid parsed;
	struct hv_guid built = HV_GUID(0xba6163d9, 0x04a1, 0x4d29, 0xb6, 0x05, 0x72, 0xe2, 0xff,
				       0xb1, 0xdc, 0x7f);

	assert_int_equal(hv_guid_parse(scsi_text, &parsed), 0);
	assert_true(hv_guid_equal(&parsed, &built));
}

static void guid_format_round_trips(void **state)
{
	(void)state;
	struct hv_guid g;
	char text[HV_GUID_STRING_LEN + 1];

	assert_int_equal(hv_guid_parse("BA6163D9-04A1-4D29-B605-72E2FFB1DC7F", &g), 0);
	hv_guid_format(&g, text);
	assert_string_equal(text, scsi_text);
}

static void guid_parse_rejects_malformed_text(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"ba6163d9-04a1-4d29-b605-72e2ffb1dc7",   /* short */
		"ba6163d9-04a1-4d29-b605-72e2ffb1dc7f0", /* long */
		"ba6163d904a1-4d29-b605-72e2ffb1dc7f-",  /* dash misplaced */
		"ba6163d9-04a1-4d29-b605-72e2ffb1dcxf",  /* not hex */
		"{ba6163d9-04a1-4d29-b605-72e2ffb1dc7}", /* braces */
		"ba6163d9_04a1-4d29-b605-72e2ffb1dc7f",
	};
	struct hv_guid g = HV_GUID(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
	struct hv_guid before = g;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(hv_guid_parse(bad[i], &g), -22);
		assert_true(hv_guid_equal(&g, &before)); /* untouched on error */
	}
}

static void guid_compare_and_null(void **state)
{
	(void)state;
	struct hv_guid zero = {{0}};
	struct hv_guid a = HV_GUID(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	struct hv_guid b = HV_GUID(2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

	assert_true(hv_guid_is_null(&zero));
	assert_false(hv_guid_is_null(&a));
	assert_true(hv_guid_compare(&a, &b) < 0);
	assert_true(hv_guid_compare(&b, &a) > 0);
	assert_int_equal(hv_guid_compare(&a, &a), 0);
}

/* An OFFERCHANNEL message as the host puts it on the wire, checked byte by
 * byte against the offsets of the contract sheet. */
static void offer_message_byte_image(void **state)
{
	(void)state;
	struct vmbus_msg_offer_channel m;
	uint8_t *b = (uint8_t *)&m;

	memset(&m, 0, sizeof(m));
	m.header.msgtype = VMBUS_MSG_OFFERCHANNEL;
	hv_guid_parse(scsi_text, &m.offer.if_type);
	m.offer.chn_flags = VMBUS_OFFER_FLAG_TLNPI_PROVIDER;
	m.offer.u.pipe.pipe_mode = VMBUS_PIPE_TYPE_MESSAGE;
	m.offer.u.pipe.user_def[VMBUS_HVSOCK_CONN_FROM_HOST_BYTE] = 1;
	m.offer.sub_channel_index = 3;
	m.child_relid = 0x7FF;
	m.monitor_id = 9;
	m.monitor_flags = VMBUS_OFFER_MONITOR_ALLOCATED;
	m.interrupt_flags = VMBUS_OFFER_DEDICATED_INTERRUPT;
	m.connection_id = 0x12345;

	assert_int_equal(b[0], 1);
	assert_memory_equal(b + 8, scsi_wire, 16);
	assert_int_equal(b[56], 0x00);
	assert_int_equal(b[57], 0x20);
	assert_int_equal(b[60], 4);  /* pipe mode */
	assert_int_equal(b[64], 1);  /* hv_sock: connection from host */
	assert_int_equal(b[180], 3); /* sub_channel_index */
	assert_int_equal(b[184], 0xFF);
	assert_int_equal(b[185], 0x07);
	assert_int_equal(b[188], 9);
	assert_int_equal(b[189], 1);
	assert_int_equal(b[190], 1);
	assert_int_equal(b[192], 0x45);
	assert_int_equal(b[194], 0x01);
}

static void version_numbers_are_major_minor(void **state)
{
	(void)state;
	assert_int_equal(VMBUS_VERSION_WIN10_V5_3, 0x50003);
	assert_int_equal(VMBUS_VERSION_WIN10_V4_1, 0x40001);
	assert_int_equal(VMBUS_VERSION_WIN8, 0x20004);
	assert_int_equal(VMBUS_VERSION_MAJOR(VMBUS_VERSION_WIN8_1), 3);
	assert_int_equal(VMBUS_VERSION_MINOR(VMBUS_VERSION_WIN8), 4);
}

static void hypercall_control_word_fields(void **state)
{
	(void)state;
	/* HvPostMessage, slow, no reps: what Linux's hv_do_hypercall builds. */
	uint64_t post = HVCALL_POST_MESSAGE;
	/* HvSignalEvent, fast. */
	uint64_t signal = HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST;
	/* A rep call: 5 reps starting at 2, 1 qword of variable header. */
	uint64_t rep = HVCALL_FLUSH_VIRTUAL_ADDRESS_LIST | (1ull << HV_HYPERCALL_VARHEAD_SHIFT) |
		       (5ull << HV_HYPERCALL_REP_COUNT_SHIFT) |
		       (2ull << HV_HYPERCALL_REP_START_SHIFT);

	assert_int_equal(post, 0x5c);
	assert_int_equal(signal, 0x1005d);
	assert_int_equal(rep & HV_HYPERCALL_CODE_MASK, 3);
	assert_int_equal((rep & HV_HYPERCALL_VARHEAD_MASK) >> HV_HYPERCALL_VARHEAD_SHIFT, 1);
	assert_int_equal((rep & HV_HYPERCALL_REP_COUNT_MASK) >> HV_HYPERCALL_REP_COUNT_SHIFT, 5);
	assert_int_equal((rep & HV_HYPERCALL_REP_START_MASK) >> HV_HYPERCALL_REP_START_SHIFT, 2);
	assert_int_equal(rep & HV_HYPERCALL_RESERVED_MASK, 0);
	assert_int_not_equal((1ull << 27) & HV_HYPERCALL_RESERVED_MASK, 0);
}

static void stimer_config_fields(void **state)
{
	(void)state;
	/* Linux's stimer0 direct mode: enable, auto-enable, vector 0xED, direct. */
	uint64_t config = HV_STIMER_ENABLE | HV_STIMER_AUTO_ENABLE |
			  ((uint64_t)HV_STIMER0_DIRECT_VECTOR << HV_STIMER_VECTOR_SHIFT) |
			  HV_STIMER_DIRECT_MODE;

	assert_int_equal(config, 0x1ED9);
	assert_int_equal(config & HV_STIMER_RESERVED_MASK, 0);
	/* Message mode on SINT 3 */
	uint64_t msg = HV_STIMER_ENABLE | (3ull << HV_STIMER_SINT_SHIFT);
	assert_int_equal((msg & HV_STIMER_SINT_MASK) >> HV_STIMER_SINT_SHIFT, 3);
}

static void cpuid_vendor_spells_microsoft_hv(void **state)
{
	(void)state;
	uint32_t regs[3] = {HV_CPUID_VENDOR_EBX, HV_CPUID_VENDOR_ECX, HV_CPUID_VENDOR_EDX};
	uint32_t iface = HV_CPUID_INTERFACE_SIGNATURE;

	assert_memory_equal(regs, "Microsoft Hv", 12);
	assert_memory_equal(&iface, "Hv#1", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(guid_parse_uses_windows_byte_order),
		cmocka_unit_test(guid_macro_matches_parser),
		cmocka_unit_test(guid_format_round_trips),
		cmocka_unit_test(guid_parse_rejects_malformed_text),
		cmocka_unit_test(guid_compare_and_null),
		cmocka_unit_test(offer_message_byte_image),
		cmocka_unit_test(version_numbers_are_major_minor),
		cmocka_unit_test(hypercall_control_word_fields),
		cmocka_unit_test(stimer_config_fields),
		cmocka_unit_test(cpuid_vendor_spells_microsoft_hv),
	};
	return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
