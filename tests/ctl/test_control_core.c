/* SPDX-License-Identifier: MIT */
/*
 * The control protocol's core against a fake machine and fake integration
 * components: every command, every error code, bad input of each kind,
 * asynchronous completion from another thread, timeouts, clients that go
 * away, and the line framing.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control_fake.h"

struct fixture {
	struct fake_machine machine;
	struct fake_ic ic;
	struct sink sink;
	struct control_core *core;
	uint32_t wakes;
	uint64_t now;
};

static void count_wake(void *ctx)
{
	struct fixture *f = ctx;
	__atomic_add_fetch(&f->wakes, 1, __ATOMIC_RELAXED);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->machine.present[0] = f->machine.present[1] = true;
	struct control_core_config cfg = {
		.backend = fake_machine_backend(&f->machine),
		.emit = sink_emit,
		.emit_ctx = &f->sink,
		.wake = count_wake,
		.wake_ctx = f,
	};
	f->core = control_core_new(&cfg);
	f->now = 1000;
	*state = f;
	return f->core ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	control_core_free(f->core);
	/* Requests the tests held and never finished complete after the core
	 * is gone, as a slow guest would. */
	for (uint32_t i = 0; i < f->ic.held_count; i++)
		control_async_done(f->ic.held[i], 0, NULL);
	assert_int_equal(f->sink.malformed, 0);
	sink_clear(&f->sink);
	free(f);
	return 0;
}

static void with_ic(struct fixture *f)
{
	struct control_ic_provider p = fake_ic_provider(&f->ic);
	control_core_set_ic(f->core, &p);
}

/* Sends one line, polls, and returns the only new response (or NULL). */
static json_t *ask_on(struct fixture *f, uint64_t client, const char *line)
{
	uint32_t before = f->sink.count;
	control_core_handle_line(f->core, client, line, strlen(line), f->now);
	control_core_poll(f->core, f->now);
	assert_true(f->sink.count <= before + 1);
	return f->sink.count == before + 1 ? f->sink.msgs[before] : NULL;
}

static json_t *ask(struct fixture *f, const char *line)
{
	return ask_on(f, 1, line);
}

static const char *error_code(json_t *msg)
{
	assert_non_null(msg);
	assert_true(json_is_false(json_object_get(msg, "ok")));
	return json_string_value(json_object_get(json_object_get(msg, "error"), "code"));
}

static json_t *result_of(json_t *msg)
{
	assert_non_null(msg);
	assert_true(json_is_true(json_object_get(msg, "ok")));
	return json_object_get(msg, "result");
}

static void assert_error(struct fixture *f, const char *line, const char *code)
{
	json_t *msg = ask(f, line);
	assert_string_equal(error_code(msg), code);
}

/* ---- Commands that work today ---- */

static void test_status(void **state)
{
	struct fixture *f = *state;
	json_t *msg = ask(f, "{\"id\": 7, \"command\": \"status\"}");
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 7);
	json_t *r = result_of(msg);
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "machine"),
							       "partition")),
			    "fake");
	assert_int_equal(json_array_size(json_object_get(r, "devices")), 2);
	/* No integration components yet: an empty services object. */
	assert_int_equal(json_object_size(json_object_get(r, "services")), 0);

	with_ic(f);
	r = result_of(ask(f, "{\"id\": 8, \"command\": \"status\", \"args\": {}}"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(r, "services"),
							       "heartbeat")),
			    "alive");
}

static void test_device_add_remove(void **state)
{
	struct fixture *f = *state;
	json_t *r = result_of(ask(f, "{\"id\":1,\"command\":\"device-add\",\"args\":"
				     "{\"kind\":\"echo\",\"instance\":3}}"));
	assert_int_equal(json_integer_value(json_object_get(r, "instance")), 3);
	assert_true(f->machine.present[3]);
	assert_error(f, "{\"id\":2,\"command\":\"device-add\",\"args\":{\"kind\":\"echo\","
			"\"instance\":3}}",
		     "exists");
	assert_error(f, "{\"id\":3,\"command\":\"device-add\",\"args\":{\"kind\":\"echo\","
			"\"instance\":9}}",
		     "no-space");
	assert_error(f, "{\"id\":4,\"command\":\"device-add\",\"args\":{\"kind\":\"disk\","
			"\"instance\":1}}",
		     "bad-args");
	result_of(ask(f, "{\"id\":5,\"command\":\"device-remove\",\"args\":{\"kind\":\"echo\","
			 "\"instance\":3}}"));
	assert_false(f->machine.present[3]);
	assert_error(f, "{\"id\":6,\"command\":\"device-remove\",\"args\":{\"kind\":\"echo\","
			"\"instance\":3}}",
		     "not-found");
}

static void test_net_commands(void **state)
{
	struct fixture *f = *state;
	json_t *r = result_of(ask(f, "{\"id\":1,\"command\":\"net-add\",\"args\":"
				     "{\"spec\":\"sink,mac=52:54:00:00:00:01\"}}"));
	assert_int_equal(json_integer_value(json_object_get(r, "nic")), 0);
	r = result_of(ask(f, "{\"id\":2,\"command\":\"net-add\",\"args\":{\"spec\":\"sink\"}}"));
	assert_int_equal(json_integer_value(json_object_get(r, "nic")), 1);
	json_t *msg = ask(f, "{\"id\":3,\"command\":\"net-add\",\"args\":{\"spec\":\"bogus\"}}");
	assert_string_equal(error_code(msg), "bad-args");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(msg, "error"),
								    "message")),
			       "unknown backend 'bogus'"));
	assert_error(f, "{\"id\":4,\"command\":\"net-add\",\"args\":{}}", "bad-args");
	assert_error(f, "{\"id\":5,\"command\":\"net-add\",\"args\":{\"spec\":7}}", "bad-args");

	r = result_of(ask(f, "{\"id\":6,\"command\":\"net-link\",\"args\":"
			     "{\"nic\":1,\"link\":\"down\"}}"));
	assert_string_equal(json_string_value(json_object_get(r, "link")), "down");
	assert_true(f->machine.link_down[1]);
	result_of(ask(f, "{\"id\":7,\"command\":\"net-link\",\"args\":{\"nic\":1,\"link\":\"up\"}}"));
	assert_false(f->machine.link_down[1]);
	assert_error(f, "{\"id\":8,\"command\":\"net-link\",\"args\":{\"nic\":1,\"link\":\"off\"}}",
		     "bad-args");
	assert_error(f, "{\"id\":9,\"command\":\"net-link\",\"args\":{\"nic\":3,\"link\":\"up\"}}",
		     "not-found");
	assert_error(f, "{\"id\":10,\"command\":\"net-link\",\"args\":{\"nic\":1}}", "bad-args");

	result_of(ask(f, "{\"id\":11,\"command\":\"net-remove\",\"args\":{\"nic\":0}}"));
	assert_false(f->machine.nic[0]);
	assert_error(f, "{\"id\":12,\"command\":\"net-remove\",\"args\":{\"nic\":0}}",
		     "not-found");
	assert_error(f, "{\"id\":13,\"command\":\"net-remove\",\"args\":{\"nic\":-1}}",
		     "bad-args");
	/* Full: no-space, with the reason. */
	for (int i = 0; i < 3; i++)
		result_of(ask(f, "{\"id\":14,\"command\":\"net-add\",\"args\":{\"spec\":\"sink\"}}"));
	assert_error(f, "{\"id\":15,\"command\":\"net-add\",\"args\":{\"spec\":\"sink\"}}",
		     "no-space");
}

static void test_disk_add_remove(void **state)
{
	struct fixture *f = *state;
	json_t *r = result_of(ask(f, "{\"id\":1,\"command\":\"disk-add\",\"args\":"
				     "{\"path\":\"a.img\"}}"));
	assert_int_equal(json_integer_value(json_object_get(r, "lun")), 0);
	r = result_of(ask(f, "{\"id\":2,\"command\":\"disk-add\",\"args\":"
			     "{\"path\":\"b.img\",\"readonly\":true,\"lun\":2}}"));
	assert_int_equal(json_integer_value(json_object_get(r, "lun")), 2);
	assert_true(f->machine.disk[2] && f->machine.disk_read_only[2]);
	assert_false(f->machine.disk_read_only[0]);
	assert_error(f, "{\"id\":3,\"command\":\"disk-add\",\"args\":{\"path\":\"c\",\"lun\":2}}",
		     "exists");
	assert_error(f, "{\"id\":4,\"command\":\"disk-add\",\"args\":{\"path\":\"missing\"}}",
		     "not-found");
	assert_error(f, "{\"id\":5,\"command\":\"disk-add\",\"args\":{\"path\":\"c\",\"lun\":64}}",
		     "bad-args");
	assert_error(f, "{\"id\":6,\"command\":\"disk-add\",\"args\":{\"lun\":1}}", "bad-args");
	assert_error(f, "{\"id\":7,\"command\":\"disk-add\",\"args\":{\"path\":\"c\",\"readonly\":1}}",
		     "bad-args");
	result_of(ask(f, "{\"id\":8,\"command\":\"disk-add\",\"args\":{\"path\":\"c\"}}"));
	result_of(ask(f, "{\"id\":9,\"command\":\"disk-add\",\"args\":{\"path\":\"d\"}}"));
	assert_error(f, "{\"id\":10,\"command\":\"disk-add\",\"args\":{\"path\":\"e\"}}",
		     "no-space");
	result_of(ask(f, "{\"id\":11,\"command\":\"disk-remove\",\"args\":{\"lun\":2}}"));
	assert_false(f->machine.disk[2]);
	assert_error(f, "{\"id\":12,\"command\":\"disk-remove\",\"args\":{\"lun\":2}}",
		     "not-found");
	assert_error(f, "{\"id\":13,\"command\":\"disk-remove\",\"args\":{}}", "bad-args");

	/* The controller goes with its disks; then there is none to remove. */
	result_of(ask(f, "{\"id\":14,\"command\":\"storage-remove\"}"));
	assert_true(f->machine.storage_removed);
	assert_false(f->machine.disk[0]);
	json_t *msg = ask(f, "{\"id\":15,\"command\":\"storage-remove\"}");
	assert_string_equal(error_code(msg), "not-found");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(msg, "error"),
								    "message")),
			       "there is no storage controller"));
	assert_error(f, "{\"id\":16,\"command\":\"storage-remove\",\"args\":{\"lun\":1}}",
		     "bad-args");
}

static void test_quit(void **state)
{
	struct fixture *f = *state;
	assert_false(control_core_quit_requested(f->core));
	result_of(ask(f, "{\"id\":1,\"command\":\"quit\"}"));
	assert_true(control_core_quit_requested(f->core));
	assert_error(f, "{\"id\":2,\"command\":\"status\"}", "shutting-down");
}

/* ---- Bad input ---- */

static void test_malformed_requests(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"{",
		"not json",
		"[1,2,3]",
		"42",
		"\"status\"",
		"{\"command\":\"status\"}",                       /* no id */
		"{\"id\":\"1\",\"command\":\"status\"}",          /* id a string */
		"{\"id\":1.5,\"command\":\"status\"}",            /* id not an integer */
		"{\"id\":1}",                                     /* no command */
		"{\"id\":1,\"command\":7}",
		"{\"id\":1,\"command\":\"status\",\"args\":[]}",
		"{\"id\":1,\"command\":\"status\",\"extra\":1}",
		"{\"id\":1,\"id\":2,\"command\":\"status\"}",     /* duplicate key */
		"{\"id\":1,\"command\":\"sta\\u0000tus\"}",       /* NUL in a string */
		"{\"id\":1,\"command\":\"status\"} trailing",
		"\xff\xfe{}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *msg = ask(f, bad[i]);
		assert_string_equal(error_code(msg), "bad-request");
	}
	/* The id is echoed when it could be read, null otherwise. */
	json_t *msg = ask(f, "{\"id\":5,\"command\":9}");
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 5);
	msg = ask(f, "garbage");
	assert_true(json_is_null(json_object_get(msg, "id")));
	/* Blank lines are not requests. */
	assert_null(ask(f, "   \r"));
	assert_int_equal(f->machine.status_calls, 0);
}

static void test_unknown_command(void **state)
{
	struct fixture *f = *state;
	json_t *msg = ask(f, "{\"id\":3,\"command\":\"format-disk\"}");
	assert_string_equal(error_code(msg), "unknown-command");
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 3);
}

static void test_bad_args(void **state)
{
	struct fixture *f = *state;
	with_ic(f);
	static const char *const bad[] = {
		"{\"id\":1,\"command\":\"status\",\"args\":{\"verbose\":true}}",
		"{\"id\":1,\"command\":\"device-add\",\"args\":{\"kind\":\"echo\"}}",
		"{\"id\":1,\"command\":\"device-add\",\"args\":{\"instance\":1}}",
		"{\"id\":1,\"command\":\"device-add\",\"args\":{\"kind\":1,\"instance\":1}}",
		"{\"id\":1,\"command\":\"device-add\",\"args\":{\"kind\":\"echo\",\"instance\":\"1\"}}",
		"{\"id\":1,\"command\":\"device-add\",\"args\":{\"kind\":\"echo\",\"instance\":-1}}",
		("{\"id\":1,\"command\":\"device-add\",\"args\":{\"kind\":\"echo\","
		 "\"instance\":4294967296}}"),
		"{\"id\":1,\"command\":\"device-add\",\"args\":{\"kind\":\"echo\",\"instance\":1.0}}",
		"{\"id\":1,\"command\":\"shutdown\",\"args\":{\"timeout\":0}}",
		"{\"id\":1,\"command\":\"shutdown\",\"args\":{\"timeout\":3601}}",
		"{\"id\":1,\"command\":\"shutdown\",\"args\":{\"force\":1}}",
		"{\"id\":1,\"command\":\"shutdown\",\"args\":{\"reason\":null}}",
		"{\"id\":1,\"command\":\"kvp-set\",\"args\":{\"key\":\"k\"}}",
		"{\"id\":1,\"command\":\"kvp-get\",\"args\":{\"key\":\"\"}}",
		"{\"id\":1,\"command\":\"kvp-get\",\"args\":{\"key\":\"k\",\"pool\":5}}",
		"{\"id\":1,\"command\":\"kvp-list\",\"args\":{\"key\":\"k\"}}",
		"{\"id\":1,\"command\":\"copy\",\"args\":{\"host_file\":\"rel\",\"guest_path\":\"g\"}}",
		"{\"id\":1,\"command\":\"copy\",\"args\":{\"host_file\":\"/a\"}}",
		"{\"id\":1,\"command\":\"vss-freeze\",\"args\":{\"timeout\":\"10\"}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *msg = ask(f, bad[i]);
		assert_string_equal(error_code(msg), "bad-args");
		/* The message says what is wrong. */
		assert_true(strlen(json_string_value(
				    json_object_get(json_object_get(msg, "error"), "message"))) > 10);
	}
	/* Nothing reached the provider. */
	assert_int_equal(f->ic.calls, 0);

	/* A KVP value over the cap. */
	char line[CONTROL_KVP_VALUE_MAX + 100];
	snprintf(line, sizeof(line),
		 "{\"id\":1,\"command\":\"kvp-set\",\"args\":{\"key\":\"k\",\"value\":\"%0*d\"}}",
		 CONTROL_KVP_VALUE_MAX + 1, 0);
	assert_string_equal(error_code(ask(f, line)), "bad-args");
}

/* ---- The integration commands ---- */

static const char *const ic_requests[] = {
	"{\"id\":1,\"command\":\"shutdown\"}",
	"{\"id\":1,\"command\":\"reboot\",\"args\":{\"reason\":\"patch\",\"timeout\":5}}",
	"{\"id\":1,\"command\":\"hibernate\",\"args\":{\"force\":true}}",
	"{\"id\":1,\"command\":\"kvp-set\",\"args\":{\"key\":\"k\",\"value\":\"v\"}}",
	"{\"id\":1,\"command\":\"kvp-get\",\"args\":{\"key\":\"k\",\"pool\":4}}",
	"{\"id\":1,\"command\":\"kvp-delete\",\"args\":{\"key\":\"k\"}}",
	"{\"id\":1,\"command\":\"kvp-list\",\"args\":{\"pool\":1}}",
	"{\"id\":1,\"command\":\"vss-freeze\"}",
	"{\"id\":1,\"command\":\"vss-thaw\"}",
	"{\"id\":1,\"command\":\"timesync\",\"args\":{\"timeout\":5}}",
	"{\"id\":1,\"command\":\"copy\",\"args\":{\"host_file\":\"/h\",\"guest_path\":\"g\"}}",
};
#define IC_REQUESTS (sizeof(ic_requests) / sizeof(ic_requests[0]))

static void test_ic_not_offered(void **state)
{
	struct fixture *f = *state;
	for (size_t i = 0; i < IC_REQUESTS; i++)
		assert_string_equal(error_code(ask(f, ic_requests[i])), "service-not-offered");
	/* A provider without the operation, or whose guest has not opened the
	 * service, says the same. */
	struct control_ic_provider p = fake_ic_provider(&f->ic);
	p.vss = NULL;
	control_core_set_ic(f->core, &p);
	assert_string_equal(error_code(ask(f, "{\"id\":1,\"command\":\"vss-thaw\"}")),
			    "service-not-offered");
	f->ic.mode = FAKE_IC_REFUSE;
	f->ic.refuse_err = -ENODEV;
	assert_string_equal(error_code(ask(f, ic_requests[0])), "service-not-offered");
	/* Opened but not negotiated (Linux's KVP before its daemon runs):
	 * the same code, and a message that says so. */
	f->ic.refuse_err = -ENOTCONN;
	json_t *msg = ask(f, ic_requests[3]);
	assert_string_equal(error_code(msg), "service-not-offered");
	const char *why =
		json_string_value(json_object_get(json_object_get(msg, "error"), "message"));
	assert_non_null(strstr(why, "not negotiated"));
	assert_non_null(strstr(why, "hv_kvp_daemon"));
	/* Unregistering brings the answer back. */
	control_core_set_ic(f->core, NULL);
	f->ic.calls = 0;
	assert_string_equal(error_code(ask(f, ic_requests[3])), "service-not-offered");
	assert_int_equal(f->ic.calls, 0);
	assert_int_equal(control_core_pending(f->core), 0);
}

static void test_ic_answers(void **state)
{
	struct fixture *f = *state;
	with_ic(f);
	for (size_t i = 0; i < IC_REQUESTS; i++)
		result_of(ask(f, ic_requests[i]));
	assert_int_equal(f->ic.calls, IC_REQUESTS);
	assert_int_equal(control_core_pending(f->core), 0);

	/* The arguments arrive as given. */
	result_of(ask(f, "{\"id\":1,\"command\":\"reboot\",\"args\":{\"reason\":\"patch\","
			 "\"timeout\":5}}"));
	assert_string_equal(f->ic.last, "power 1 patch 0 5");
	json_t *r = result_of(ask(f, "{\"id\":1,\"command\":\"kvp-get\",\"args\":{\"key\":"
				     "\"k\",\"pool\":4}}"));
	assert_string_equal(f->ic.last, "get 4 k");
	assert_string_equal(json_string_value(json_object_get(r, "value")), "forty-two");
	r = result_of(ask(f, "{\"id\":1,\"command\":\"kvp-list\"}"));
	assert_string_equal(f->ic.last, "list 0");
	json_t *items = json_object_get(r, "items");
	assert_int_equal(json_array_size(items), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "value")),
			    "2");
	r = result_of(ask(f, "{\"id\":1,\"command\":\"copy\",\"args\":{\"host_file\":\"/h\","
			     "\"guest_path\":\"dir/g\",\"overwrite\":true}}"));
	assert_string_equal(f->ic.last, "copy /h dir/g 1");
	assert_int_equal(json_integer_value(json_object_get(r, "bytes")), 42);

	/* The guest's refusal and the provider's own errors come back coded. */
	f->ic.mode = FAKE_IC_GUEST_SAYS;
	f->ic.complete_err = -ECANCELED;
	json_t *msg = ask(f, ic_requests[7]);
	assert_string_equal(error_code(msg), "guest-refused");
	assert_string_equal(json_string_value(json_object_get(json_object_get(msg, "error"),
							       "message")),
			    "the guest says no");
	f->ic.complete_err = -ENOENT;
	assert_string_equal(error_code(ask(f, ic_requests[4])), "not-found");
	f->ic.mode = FAKE_IC_REFUSE;
	f->ic.refuse_err = -EBUSY;
	assert_string_equal(error_code(ask(f, ic_requests[4])), "busy");
	assert_int_equal(control_core_pending(f->core), 0);
}

static void test_ic_timeout(void **state)
{
	struct fixture *f = *state;
	with_ic(f);
	f->ic.mode = FAKE_IC_HOLD;
	/* Waits: no answer yet, a deadline 5 s out. */
	assert_null(ask(f, "{\"id\":11,\"command\":\"reboot\",\"args\":{\"timeout\":5}}"));
	assert_int_equal(control_core_pending(f->core), 1);
	assert_int_equal(control_core_poll(f->core, f->now), f->now + 5000);
	assert_int_equal(f->sink.count, 0);
	/* Past it: "timeout", with the request's id. */
	control_core_poll(f->core, f->now + 5000);
	assert_int_equal(f->sink.count, 1);
	assert_string_equal(error_code(f->sink.msgs[0]), "timeout");
	assert_int_equal(json_integer_value(json_object_get(f->sink.msgs[0], "id")), 11);
	assert_true(control_async_abandoned(f->ic.held[0]));
	/* The late answer is dropped, not sent twice. */
	control_async_done(f->ic.held[0], 0, NULL);
	f->ic.held_count = 0;
	assert_int_equal(control_core_poll(f->core, f->now + 6000), UINT64_MAX);
	assert_int_equal(f->sink.count, 1);
	assert_int_equal(control_core_pending(f->core), 0);
}

struct completer {
	struct control_async *a;
};

static void *complete_later(void *arg)
{
	struct completer *c = arg;
	control_result_string(control_async_result(c->a), "answer", "from another thread");
	control_async_done(c->a, 0, NULL);
	return NULL;
}

static void test_ic_completion_from_another_thread(void **state)
{
	struct fixture *f = *state;
	with_ic(f);
	f->ic.mode = FAKE_IC_HOLD;
	assert_null(ask(f, "{\"id\":21,\"command\":\"shutdown\"}"));
	/* Other clients are served meanwhile. */
	result_of(ask_on(f, 2, "{\"id\":1,\"command\":\"status\"}"));
	struct completer c = {f->ic.held[0]};
	f->ic.held_count = 0;
	pthread_t t;
	pthread_create(&t, NULL, complete_later, &c);
	pthread_join(t, NULL);
	assert_true(__atomic_load_n(&f->wakes, __ATOMIC_RELAXED) >= 1);
	uint32_t before = f->sink.count;
	control_core_poll(f->core, f->now);
	assert_int_equal(f->sink.count, before + 1);
	json_t *msg = f->sink.msgs[before];
	assert_int_equal(f->sink.clients[before], 1);
	assert_int_equal(json_integer_value(json_object_get(msg, "id")), 21);
	assert_string_equal(json_string_value(json_object_get(result_of(msg), "answer")),
			    "from another thread");
}

static void test_client_gone(void **state)
{
	struct fixture *f = *state;
	with_ic(f);
	f->ic.mode = FAKE_IC_HOLD;
	assert_null(ask_on(f, 5, "{\"id\":1,\"command\":\"vss-freeze\"}"));
	assert_null(ask_on(f, 6, "{\"id\":2,\"command\":\"vss-freeze\"}"));
	/* One completes, then its client goes before the answer is sent. */
	control_async_done(f->ic.held[0], 0, NULL);
	control_core_client_gone(f->core, 5);
	assert_true(control_async_abandoned(f->ic.held[1]) == false);
	control_core_poll(f->core, f->now);
	assert_int_equal(f->sink.count, 0);
	assert_int_equal(control_core_pending(f->core), 1);
	control_core_client_gone(f->core, 6);
	assert_true(control_async_abandoned(f->ic.held[1]));
	control_async_done(f->ic.held[1], 0, NULL);
	f->ic.held_count = 0;
	control_core_poll(f->core, f->now);
	assert_int_equal(f->sink.count, 0);
	assert_int_equal(control_core_pending(f->core), 0);
}

static void test_busy(void **state)
{
	struct fixture *f = *state;
	with_ic(f);
	f->ic.mode = FAKE_IC_HOLD;
	for (int i = 0; i < CONTROL_PENDING_MAX; i++)
		assert_null(ask(f, "{\"id\":1,\"command\":\"kvp-list\"}"));
	assert_string_equal(error_code(ask(f, "{\"id\":2,\"command\":\"kvp-list\"}")), "busy");
	/* Synchronous commands still work. */
	result_of(ask(f, "{\"id\":3,\"command\":\"status\"}"));
	/* teardown completes the held ones after the core is freed */
}

static void test_pipelined_ids(void **state)
{
	struct fixture *f = *state;
	with_ic(f);
	f->ic.mode = FAKE_IC_HOLD;
	assert_null(ask(f, "{\"id\":100,\"command\":\"kvp-get\",\"args\":{\"key\":\"a\"}}"));
	assert_null(ask(f, "{\"id\":101,\"command\":\"kvp-get\",\"args\":{\"key\":\"b\"}}"));
	/* Answered in completion order, matched by id. */
	control_async_done(f->ic.held[1], 0, NULL);
	control_async_done(f->ic.held[0], -ETIMEDOUT, NULL);
	f->ic.held_count = 0;
	control_core_poll(f->core, f->now);
	assert_int_equal(f->sink.count, 2);
	assert_int_equal(json_integer_value(json_object_get(f->sink.msgs[0], "id")), 101);
	assert_int_equal(json_integer_value(json_object_get(f->sink.msgs[1], "id")), 100);
	assert_string_equal(error_code(f->sink.msgs[1]), "timeout");
}

/* ---- Framing ---- */

static void feed(struct fixture *f, struct control_framer *fr, const char *s, size_t len)
{
	control_framer_feed(fr, f->core, 1, s, len, f->now);
}

static void test_framing(void **state)
{
	struct fixture *f = *state;
	struct control_framer fr;
	assert_int_equal(control_framer_init(&fr), 0);
	/* A request split anywhere, two in one chunk, CRLF. */
	const char *two = "{\"id\":1,\"command\":\"status\"}\r\n{\"id\":2,\"command\":\"quit\"}\n";
	for (size_t i = 0; two[i]; i++)
		feed(f, &fr, two + i, 1);
	assert_int_equal(f->sink.count, 2);
	assert_int_equal(json_integer_value(json_object_get(f->sink.msgs[1], "id")), 2);
	sink_clear(&f->sink);

	/* An over-long line: one error, then the next line is served. */
	size_t big = CONTROL_LINE_MAX + 10;
	char *junk = malloc(big);
	memset(junk, 'x', big);
	feed(f, &fr, junk, big / 2);
	feed(f, &fr, junk, big - big / 2);
	assert_int_equal(f->sink.count, 1);
	assert_string_equal(error_code(f->sink.msgs[0]), "line-too-long");
	feed(f, &fr, junk, 1000); /* still the same line: no second error */
	feed(f, &fr, "\n{\"id\":3,\"command\":\"status\"}\n", 29);
	assert_int_equal(f->sink.count, 2);
	assert_string_equal(error_code(f->sink.msgs[1]), "shutting-down"); /* quit above */
	assert_int_equal(json_integer_value(json_object_get(f->sink.msgs[1], "id")), 3);

	/* Exactly the maximum fits. */
	memset(junk, ' ', CONTROL_LINE_MAX);
	memcpy(junk + CONTROL_LINE_MAX - 8, "\"x\"     ", 8);
	feed(f, &fr, junk, CONTROL_LINE_MAX);
	feed(f, &fr, "\n", 1);
	assert_int_equal(f->sink.count, 3);
	assert_string_equal(error_code(f->sink.msgs[2]), "bad-request");
	free(junk);
	control_framer_free(&fr);
}

static void test_error_codes(void **state)
{
	(void)state;
	assert_string_equal(control_error_code(-ETIMEDOUT), "timeout");
	assert_string_equal(control_error_code(-ENODEV), "service-not-offered");
	assert_string_equal(control_error_code(-EACCES), "guest-refused");
	assert_string_equal(control_error_code(-EIO), "internal");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_add_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_add_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ic_not_offered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ic_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ic_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ic_completion_from_another_thread, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_client_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
		cmocka_unit_test(test_error_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
