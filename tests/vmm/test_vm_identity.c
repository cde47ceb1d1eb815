/* SPDX-License-Identifier: MIT */
/*
 * Device instance GUIDs from a VM id (vm_identity.h): RFC 9562 version 5
 * UUIDs, checked against known answers (Python's uuid.uuid5 of the same
 * namespace and name), in VMBus's byte order, distinct per VM, kind and
 * number, and a NIC's MAC from its GUID.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vm_identity.h"

static const char vm_text[] = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

static struct hv_guid vm(void)
{
	struct hv_guid g;
	assert_int_equal(hv_guid_parse(vm_text, &g), 0);
	return g;
}

static void expect_text(struct hv_guid g, const char *want)
{
	char text[HV_GUID_STRING_LEN + 1];
	hv_guid_format(&g, text);
	assert_string_equal(text, want);
}

/* uuid.uuid5(UUID('3f2504e0-...'), 'hvkit/storvsp/0') and so on. */
static void known_answers(void **state)
{
	(void)state;
	struct hv_guid id = vm();
	expect_text(vm_device_instance(&id, "storvsp", 0), "6c40b2d3-c5be-50f6-b2f2-c46975140ec0");
	expect_text(vm_device_instance(&id, "netvsp", 0), "9d991b7a-2785-5e3a-96e4-bb086c7b68b6");
	expect_text(vm_device_instance(&id, "netvsp", 1), "ea9868a7-a481-521f-9c5f-3e575f3cd105");
}

/* The text's first group is stored little-endian, as VMBus carries it:
 * the version nibble is the high one of byte 7. */
static void wire_order(void **state)
{
	(void)state;
	struct hv_guid id = vm();
	struct hv_guid g = vm_device_instance(&id, "storvsp", 0);
	assert_int_equal(g.b[0], 0xd3);
	assert_int_equal(g.b[3], 0x6c);
	assert_int_equal(g.b[7] >> 4, 5);
	assert_int_equal(g.b[8] & 0xc0, 0x80); /* the RFC variant */
}

static void distinct_and_stable(void **state)
{
	(void)state;
	struct hv_guid a = vm(), b = vm();
	b.b[15] ^= 1;
	struct hv_guid a0 = vm_device_instance(&a, "netvsp", 0);
	struct hv_guid again = vm_device_instance(&a, "netvsp", 0);
	assert_true(hv_guid_equal(&a0, &again));
	struct hv_guid other_vm = vm_device_instance(&b, "netvsp", 0);
	struct hv_guid other_kind = vm_device_instance(&a, "storvsp", 0);
	struct hv_guid other_index = vm_device_instance(&a, "netvsp", 10);
	assert_false(hv_guid_equal(&a0, &other_vm));
	assert_false(hv_guid_equal(&a0, &other_kind));
	assert_false(hv_guid_equal(&a0, &other_index));
}

static void mac_from_guid(void **state)
{
	(void)state;
	struct hv_guid id = vm();
	struct hv_guid g = vm_device_instance(&id, "netvsp", 0);
	uint8_t mac[6];
	vm_device_mac(&g, mac);
	static const uint8_t want[6] = {0x00, 0x15, 0x5d, 0x7b, 0x68, 0xb6};
	assert_memory_equal(mac, want, 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(known_answers),
		cmocka_unit_test(wire_order),
		cmocka_unit_test(distinct_and_stable),
		cmocka_unit_test(mac_from_guid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
