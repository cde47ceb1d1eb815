/* SPDX-License-Identifier: MIT */
/*
 * The control commands over the real IC host (control_ic.c), with a
 * scripted guest on the KVP channel that answers as Linux 6.1 and its
 * hv_kvp_daemon do: a GET comes back "found" with an empty value (the
 * daemon copies value_size bytes, which the driver leaves 0, and the
 * driver reads the answer at the ENUMERATE layout), an ENUMERATE with the
 * pool's items. kvp-get must still return the guest's value.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control_fake.h"
#include "control_ic.h"
#include "hvkit/proto/ic.h"
#include "ic_host_fixture.h"

struct fixture {
	struct ic_env e;
	struct fake_machine machine;
	struct sink sink;
	struct control_core *core;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	ic_env_new(&f->e, IC_KVP, 0, 0);
	struct control_core_config cfg = {
		.backend = fake_machine_backend(&f->machine),
		.emit = sink_emit,
		.emit_ctx = &f->sink,
	};
	f->core = control_core_new(&cfg);
	struct control_ic_provider p = control_ic_provider(f->e.h);
	control_core_set_ic(f->core, &p);
	*state = f;
	return f->core ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	control_core_free(f->core);
	ic_env_free(&f->e);
	sink_clear(&f->sink);
	free(f);
	return 0;
}

/* The guest's pool 0. */
static const char *const pool[][2] = {{"colour", "blue"}, {"shape", "round"}};
#define POOL_ITEMS (sizeof(pool) / sizeof(pool[0]))

/* Answers the host's next KVP request as Linux does. */
static void linux_answers(struct fixture *f)
{
	ic_env_take(&f->e);
	struct ic_kvp_msg *m = (struct ic_kvp_msg *)(f->e.buf + IC_MSG_HDR_SIZE);
	uint32_t status = IC_S_OK;
	if (m->hdr.operation == IC_KVP_OP_GET) {
		/* "Found": the value lost on the way (see above). */
		memset(m->get.value, 0, sizeof(m->get.value));
		m->get.value_size = 2;
		m->get.value_type = IC_KVP_REG_SZ;
	} else {
		assert_int_equal(m->hdr.operation, IC_KVP_OP_ENUMERATE);
		uint32_t i = m->enumerate.index;
		if (i >= POOL_ITEMS) {
			status = IC_S_CONT;
		} else {
			struct ic_kvp_value *d = &m->enumerate.data;
			int k = ic_utf8_to_utf16(pool[i][0], d->key, sizeof(d->key));
			int v = ic_utf8_to_utf16(pool[i][1], d->value, sizeof(d->value));
			assert_true(k > 0 && v > 0);
			d->key_size = (uint32_t)k;
			d->value_size = (uint32_t)v;
			d->value_type = IC_KVP_REG_SZ;
		}
	}
	ic_env_reply(&f->e, status);
}

/* Sends a request, lets the guest answer until a response comes. */
static json_t *ask(struct fixture *f, const char *line)
{
	uint32_t before = f->sink.count;
	control_core_handle_line(f->core, 1, line, strlen(line), 0);
	for (int i = 0; i < 10 && f->sink.count == before; i++) {
		linux_answers(f);
		control_core_poll(f->core, 0);
	}
	assert_int_equal(f->sink.count, before + 1);
	return f->sink.msgs[before];
}

static void kvp_get_finds_the_value_where_linux_gives_it(void **state)
{
	struct fixture *f = *state;
	json_t *msg = ask(f, "{\"id\":1,\"command\":\"kvp-get\",\"args\":{\"key\":\"shape\"}}");
	assert_true(json_is_true(json_object_get(msg, "ok")));
	json_t *value = json_object_get(json_object_get(msg, "result"), "value");
	assert_string_equal(json_string_value(value), "round");
	assert_true(ic_env_nothing_pending(&f->e));
}

static void kvp_get_of_a_missing_key_is_not_found(void **state)
{
	struct fixture *f = *state;
	json_t *msg = ask(f, "{\"id\":2,\"command\":\"kvp-get\",\"args\":{\"key\":\"size\"}}");
	json_t *err = json_object_get(msg, "error");
	assert_string_equal(json_string_value(json_object_get(err, "code")), "not-found");
}

static void kvp_list_lists_the_pool(void **state)
{
	struct fixture *f = *state;
	json_t *msg = ask(f, "{\"id\":3,\"command\":\"kvp-list\"}");
	json_t *items = json_object_get(json_object_get(msg, "result"), "items");
	assert_int_equal(json_array_size(items), POOL_ITEMS);
	for (size_t i = 0; i < POOL_ITEMS; i++) {
		json_t *it = json_array_get(items, i);
		assert_string_equal(json_string_value(json_object_get(it, "key")), pool[i][0]);
		assert_string_equal(json_string_value(json_object_get(it, "value")), pool[i][1]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(kvp_get_finds_the_value_where_linux_gives_it, setup,
						teardown),
		cmocka_unit_test_setup_teardown(kvp_get_of_a_missing_key_is_not_found, setup,
						teardown),
		cmocka_unit_test_setup_teardown(kvp_list_lists_the_pool, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
