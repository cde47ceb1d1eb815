/* SPDX-License-Identifier: MIT */
/*
 * The IC framework and both sides' message handling, each against a
 * scripted other side: the guest handler fed host packets built byte by
 * byte, the host's answer parser fed guest answers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "heap_port.h"
#include "ic_fcopy_dir.h"
#include "ic_guest.h"
#include "ic_host.h"

static uint8_t buf[IC_MAX_PACKET];
static struct heap_port heap; /* what the guests here allocate from */
static const uint32_t util_fw[] = {IC_FW_VERSION_3, IC_FW_VERSION_1};

static struct ic_msg_hdr hdr(void)
{
	struct ic_msg_hdr h;
	assert_int_equal(ic_msg_header(buf, IC_MSG_HDR_SIZE, &h), 0);
	return h;
}

static uint32_t offer(const uint32_t *fw, uint32_t nfw, const uint32_t *msg, uint32_t nmsg)
{
	uint32_t len = ic_negotiate_request(buf, sizeof(buf), fw, nfw, msg, nmsg, 7);
	assert_int_not_equal(len, 0);
	return len;
}

static void guest_picks_its_newest_common_versions(void **state)
{
	(void)state;
	const uint32_t fw[] = {IC_FW_VERSION_1, IC_FW_VERSION_3};
	const uint32_t sd[] = {IC_SHUTDOWN_VERSION_1, IC_SHUTDOWN_VERSION_3_1};
	uint32_t mine_fw[] = {IC_FW_VERSION_3, IC_FW_VERSION_1}, n;
	const uint32_t *mine = ic_service_versions(IC_SHUTDOWN, &n);
	uint32_t len = offer(fw, 2, sd, 2), f, m;
	int answerable;
	assert_int_equal(ic_negotiate_answer(buf, len, mine_fw, 2, mine, n, &f, &m, &answerable), 0);
	assert_int_equal(f, IC_FW_VERSION_3);
	assert_int_equal(m, IC_SHUTDOWN_VERSION_3_1);
	assert_int_equal(hdr().icmsgsize, IC_NEGOTIATE_RESPONSE_MSGSIZE);
	ic_msg_make_response(buf, len, 0);
	assert_int_equal(ic_negotiate_result(buf, len, fw, 2, sd, 2, &f, &m), 0);
	assert_int_equal(m, IC_SHUTDOWN_VERSION_3_1);
	/* A guest capped at 1.0 takes the old pair. */
	len = offer(fw, 2, sd, 2);
	assert_int_equal(ic_negotiate_answer(buf, len, &mine_fw[1], 1, &mine[3], 1, &f, &m,
					     &answerable),
			 0);
	assert_int_equal(m, IC_SHUTDOWN_VERSION_1);
}

static void no_common_version_answers_zero_counts(void **state)
{
	(void)state;
	const uint32_t fw[] = {IC_FW_VERSION_3}, sd[] = {IC_VERSION(9, 9)};
	uint32_t len = offer(fw, 1, sd, 1), f, m, n;
	const uint32_t *mine = ic_service_versions(IC_SHUTDOWN, &n);
	int answerable;
	assert_int_equal(ic_negotiate_answer(buf, len, util_fw, 2, mine, n, &f, &m,
					     &answerable),
			 -ENOTSUP);
	assert_true(answerable);
	ic_msg_make_response(buf, len, 0);
	assert_int_equal(ic_negotiate_result(buf, len, fw, 1, sd, 1, &f, &m), -ENOTSUP);
	/* Counts over 100 or past the packet: malformed. */
	len = offer(fw, 1, sd, 1);
	struct ic_negotiate neg = {.icframe_vercnt = 101, .icmsg_vercnt = 1};
	memcpy(buf + IC_MSG_HDR_SIZE, &neg, 4);
	assert_int_equal(ic_negotiate_answer(buf, len, util_fw, 2, mine, n, &f, &m,
					     &answerable),
			 -EBADMSG);
	assert_int_equal(ic_negotiate_answer(buf, 30, util_fw, 2, mine, n, &f, &m,
					     &answerable),
			 -EBADMSG);
	assert_false(answerable);
}

/* ---- The guest handler against a scripted host ---- */

static enum ic_guest_shutdown_kind last_kind = (enum ic_guest_shutdown_kind)-1;

static int64_t on_shutdown(void *ctx, enum ic_guest_shutdown_kind kind, bool force,
			   uint32_t reason, uint32_t timeout_seconds, const char *message)
{
	(void)ctx, (void)force, (void)reason, (void)timeout_seconds, (void)message;
	last_kind = kind;
	return IC_S_OK;
}

static uint64_t ref_now(void *ctx)
{
	(void)ctx;
	return 5000;
}

/* Every service negotiated at its newest version. */
static void negotiate_all(struct ic_guest *g)
{
	for (int s = 0; s < IC_SERVICE_COUNT; s++) {
		uint32_t n;
		const uint32_t *list = ic_service_versions((enum ic_service)s, &n);
		uint32_t len = offer(util_fw, 1, list, 1);
		assert_int_equal(ic_guest_handle(g, (enum ic_service)s, buf, len, sizeof(buf)), len);
	}
}

static struct ic_guest *guest(void)
{
	static const char *const intrinsic[] = {"OSName", "hvkit", NULL, NULL};
	struct ic_guest_config cfg = {
		.intrinsic = intrinsic,
		.ops = {.shutdown = on_shutdown, .reference_time = ref_now},
	};
	struct ic_guest *g;
	assert_int_equal(ic_guest_register(NULL, &heap.port, &cfg, &g), 0);
	negotiate_all(g);
	return g;
}

static uint32_t request(enum ic_service s, const void *body, uint32_t body_len)
{
	uint32_t len = ic_msg_request(buf, sizeof(buf), ic_service_msgtype(s), IC_FW_VERSION_3, 0,
				      1, body_len);
	memcpy(buf + IC_MSG_HDR_SIZE, body, body_len);
	return len;
}

static void heartbeat_echoes_seq_plus_one(void **state)
{
	(void)state;
	struct ic_guest *g = guest();
	struct ic_heartbeat_msg m = {.seq_num = 41};
	uint32_t len = request(IC_HEARTBEAT, &m, sizeof(m));
	assert_int_equal(ic_guest_handle(g, IC_HEARTBEAT, buf, len, sizeof(buf)), len);
	assert_int_equal(hdr().icflags, IC_FLAG_TRANSACTION | IC_FLAG_RESPONSE);
	assert_int_equal(ic_host_parse_answer(IC_HEARTBEAT, 0, buf, len, 41, NULL), 0);
	assert_int_equal(ic_host_parse_answer(IC_HEARTBEAT, 0, buf, len, 40, NULL), -EPROTO);
	/* Too short for seq_num: dropped, no answer. */
	len = request(IC_HEARTBEAT, &m, 4);
	assert_int_equal(ic_guest_handle(g, IC_HEARTBEAT, buf, len, sizeof(buf)), 0);
	ic_guest_free(g);
}

static void shutdown_flags_map_to_kinds(void **state)
{
	(void)state;
	struct ic_guest *g = guest();
	struct ic_shutdown_msg m = {.flags = IC_SHUTDOWN_FLAG_HIBERNATE | IC_SHUTDOWN_FLAG_FORCE};
	uint32_t len = request(IC_SHUTDOWN, &m, sizeof(m));
	assert_int_equal(ic_guest_handle(g, IC_SHUTDOWN, buf, len, sizeof(buf)), len);
	assert_int_equal(last_kind, IC_GUEST_HIBERNATE);
	assert_int_equal(hdr().status, IC_S_OK);
	m.flags = 6;
	len = request(IC_SHUTDOWN, &m, sizeof(m));
	assert_int_equal(ic_guest_handle(g, IC_SHUTDOWN, buf, len, sizeof(buf)), len);
	assert_int_equal(hdr().status, IC_E_FAIL);
	ic_guest_free(g);
}

static void timesync_v4_corrects_by_reference_time(void **state)
{
	(void)state;
	struct ic_guest *g = guest(); /* negotiated 4.0 */
	struct ic_timesync_ref_msg m = {.parenttime = 1000000, .vmreferencetime = 4000,
					.flags = IC_TIMESYNC_FLAG_SYNC};
	uint32_t len = request(IC_TIMESYNC, &m, sizeof(m));
	assert_int_equal(ic_guest_handle(g, IC_TIMESYNC, buf, len, sizeof(buf)), len);
	struct ic_guest_status st;
	ic_guest_status(g, IC_TIMESYNC, &st);
	assert_int_equal(st.samples, 1);
	assert_int_equal(st.last_host_time, 1000000 + 1000); /* reference 5000 now */
	ic_guest_free(g);
}

static uint32_t kvp_msg(uint8_t op, uint8_t pool, const char *key, const char *value)
{
	struct ic_kvp_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.operation = op;
	m.hdr.pool = pool;
	if (key) {
		m.set.key_size = (uint32_t)ic_utf8_to_utf16(key, m.set.key, sizeof(m.set.key));
		m.set.value_type = IC_KVP_REG_SZ;
	}
	if (value)
		m.set.value_size = (uint32_t)ic_utf8_to_utf16(value, m.set.value,
							      sizeof(m.set.value));
	return request(IC_KVP, &m, op == IC_KVP_OP_ENUMERATE ? IC_KVP_ENUMERATE_LEN
							     : IC_KVP_VALUE_LEN);
}

static void kvp_set_get_enumerate_and_bad_input(void **state)
{
	(void)state;
	struct ic_guest *g = guest();
	struct ic_kvp_result r;
	uint32_t len = kvp_msg(IC_KVP_OP_SET, IC_KVP_POOL_EXTERNAL, "key", "value");
	assert_int_equal(ic_guest_handle(g, IC_KVP, buf, len, sizeof(buf)), len);
	assert_int_equal(hdr().status, IC_S_OK);
	len = kvp_msg(IC_KVP_OP_GET, IC_KVP_POOL_EXTERNAL, "key", NULL);
	assert_int_equal(ic_guest_handle(g, IC_KVP, buf, len, sizeof(buf)), len);
	assert_int_equal(ic_host_parse_answer(IC_KVP, 0, buf, len, 0, &r), 0);
	assert_string_equal(r.value, "value");
	/* A number is kept as its decimal string. */
	len = kvp_msg(IC_KVP_OP_SET, IC_KVP_POOL_EXTERNAL, "n", NULL);
	struct ic_kvp_msg *km = (struct ic_kvp_msg *)(buf + IC_MSG_HDR_SIZE);
	km->set.value_type = IC_KVP_REG_U64;
	km->set.value_u64 = 18446744073709551615ull;
	ic_guest_handle(g, IC_KVP, buf, len, sizeof(buf));
	assert_int_equal(hdr().status, IC_S_OK);
	len = kvp_msg(IC_KVP_OP_GET, IC_KVP_POOL_EXTERNAL, "n", NULL);
	assert_int_equal(ic_guest_handle(g, IC_KVP, buf, len, sizeof(buf)), len);
	assert_int_equal(ic_host_parse_answer(IC_KVP, 0, buf, len, 0, &r), 0);
	assert_string_equal(r.value, "18446744073709551615");
	/* Intrinsic data by index, then the end. */
	len = kvp_msg(IC_KVP_OP_ENUMERATE, IC_KVP_POOL_AUTO, NULL, NULL);
	assert_int_equal(ic_guest_handle(g, IC_KVP, buf, len, sizeof(buf)), len);
	assert_int_equal(ic_host_parse_answer(IC_KVP, 0, buf, len, 0, &r), 0);
	assert_string_equal(r.key, "OSName");
	assert_string_equal(r.value, "hvkit");
	struct ic_kvp_enumerate e = {.index = 1};
	memcpy(buf + IC_MSG_HDR_SIZE + 4, &e.index, 4);
	assert_int_equal(ic_guest_handle(g, IC_KVP, buf, len, sizeof(buf)), len);
	assert_int_equal(hdr().status, IC_S_CONT);
	/* A pool that does not exist, a key without its NUL: refused. */
	len = kvp_msg(IC_KVP_OP_SET, 9, "key", "v");
	ic_guest_handle(g, IC_KVP, buf, len, sizeof(buf));
	assert_int_equal(hdr().status, IC_E_FAIL);
	len = kvp_msg(IC_KVP_OP_SET, 0, "key", "v");
	uint32_t two = 2; /* key_size cuts the NUL off "key" */
	memcpy(buf + IC_MSG_HDR_SIZE + 4 + 4, &two, 4);
	ic_guest_handle(g, IC_KVP, buf, len, sizeof(buf));
	assert_int_equal(hdr().status, IC_E_FAIL);
	ic_guest_free(g);
}

static int vss_ok(void *ctx, uint32_t op)
{
	(void)ctx;
	return op == IC_VSS_OP_FREEZE ? 0 : -EIO;
}

static void vss_answers_as_linux(void **state)
{
	(void)state;
	struct ic_guest *g = guest();
	struct ic_vss_msg m = {.hdr = {.operation = IC_VSS_OP_HOT_BACKUP}};
	uint32_t len = request(IC_VSS, &m, sizeof(m));
	assert_int_equal(ic_guest_handle(g, IC_VSS, buf, len, sizeof(buf)), len);
	memcpy(&m, buf + IC_MSG_HDR_SIZE, sizeof(m));
	assert_int_equal(m.flags, IC_VSS_HBU_NO_AUTO_RECOVERY);
	/* No freeze hook: refused. Too short: dropped. */
	m.hdr.operation = IC_VSS_OP_FREEZE;
	len = request(IC_VSS, &m, sizeof(m));
	assert_int_equal(ic_guest_handle(g, IC_VSS, buf, len, sizeof(buf)), len);
	assert_int_equal(hdr().status, IC_E_FAIL);
	len = request(IC_VSS, &m, 8);
	assert_int_equal(ic_guest_handle(g, IC_VSS, buf, len, sizeof(buf)), 0);
	ic_guest_free(g);

	struct ic_guest_config cfg = {.ops = {.vss = vss_ok}};
	assert_int_equal(ic_guest_register(NULL, &heap.port, &cfg, &g), 0);
	uint32_t n;
	len = offer(util_fw, 1, ic_service_versions(IC_VSS, &n), 1);
	assert_int_equal(ic_guest_handle(g, IC_VSS, buf, len, sizeof(buf)), len);
	len = request(IC_VSS, &m, sizeof(m));
	assert_int_equal(ic_guest_handle(g, IC_VSS, buf, len, sizeof(buf)), len);
	assert_int_equal(hdr().status, IC_S_OK);
	ic_guest_free(g);
}

static uint32_t written;

static int fc_start(void *ctx, const char *path, const char *name, uint32_t flags, uint64_t size)
{
	(void)ctx, (void)flags, (void)size;
	return !strcmp(path, "/d") && !strcmp(name, "f") ? 0 : -EEXIST;
}

static int fc_write(void *ctx, uint64_t offset, const void *data, uint32_t len)
{
	(void)ctx, (void)offset, (void)data;
	written += len;
	return 0;
}

static void fcopy_validates_names_and_sizes(void **state)
{
	(void)state;
	struct ic_guest_config cfg = {.ops = {.fcopy_start = fc_start, .fcopy_write = fc_write}};
	struct ic_guest *g;
	assert_int_equal(ic_guest_register(NULL, &heap.port, &cfg, &g), 0);
	uint32_t n;
	uint32_t len = offer(util_fw, 1, ic_service_versions(IC_FCOPY, &n), 1);
	assert_int_equal(ic_guest_handle(g, IC_FCOPY, buf, len, sizeof(buf)), len);
	static struct ic_fcopy_start s;
	memset(&s, 0, sizeof(s));
	s.hdr.operation = IC_FCOPY_START;
	ic_utf8_to_utf16("f", (uint8_t *)s.file_name, sizeof(s.file_name));
	ic_utf8_to_utf16("/d", (uint8_t *)s.path_name, sizeof(s.path_name));
	len = request(IC_FCOPY, &s, sizeof(s));
	ic_guest_handle(g, IC_FCOPY, buf, len, sizeof(buf));
	assert_int_equal(hdr().status, IC_S_OK);
	ic_utf8_to_utf16("other", (uint8_t *)s.file_name, sizeof(s.file_name));
	len = request(IC_FCOPY, &s, sizeof(s));
	ic_guest_handle(g, IC_FCOPY, buf, len, sizeof(buf));
	assert_int_equal(hdr().status, IC_ERROR_ALREADY_EXISTS);
	/* A name filling its field with no NUL: refused. */
	memset(s.file_name, 'a', sizeof(s.file_name));
	len = request(IC_FCOPY, &s, sizeof(s));
	ic_guest_handle(g, IC_FCOPY, buf, len, sizeof(buf));
	assert_int_equal(hdr().status, IC_E_FAIL);
	/* A WRITE claiming more than a fragment, or than it carries. */
	static struct ic_fcopy_data d;
	d.hdr.operation = IC_FCOPY_WRITE;
	d.size = IC_FCOPY_DATA_FRAGMENT + 1;
	len = request(IC_FCOPY, &d, sizeof(d));
	ic_guest_handle(g, IC_FCOPY, buf, len, sizeof(buf));
	assert_int_equal(hdr().status, IC_E_FAIL);
	d.size = 100;
	len = request(IC_FCOPY, &d, offsetof(struct ic_fcopy_data, data) + 50);
	ic_guest_handle(g, IC_FCOPY, buf, len, sizeof(buf));
	assert_int_equal(hdr().status, IC_E_FAIL);
	len = request(IC_FCOPY, &d, sizeof(d));
	ic_guest_handle(g, IC_FCOPY, buf, len, sizeof(buf));
	assert_int_equal(hdr().status, IC_S_OK);
	assert_int_equal(written, 100);
	ic_guest_free(g);
}

/* Every allocation the drivers make can fail: registering says -ENOMEM
 * and leaves nothing behind, a request is answered IC_E_FAIL, and the
 * guest serves again once there is memory. */
static void failing_port_allocations_are_survived(void **state)
{
	(void)state;
	struct ic_guest_config cfg = {.ops = {.fcopy_start = fc_start}};
	struct ic_guest *g = NULL;
	const struct hv_port no_heap = {0};
	assert_int_equal(ic_guest_register(NULL, &no_heap, &cfg, &g), -EINVAL);
	struct heap_port h;
	long allowed = 0;
	int err;
	for (;; allowed++) {
		heap_port_init(&h, allowed);
		if (!(err = ic_guest_register(NULL, &h.port, &cfg, &g)))
			break;
		assert_int_equal(err, -ENOMEM);
		assert_int_equal(h.live, 0);
	}
	assert_true(allowed > 1); /* the drivers and the KVP store */
	negotiate_all(g);
	/* No memory for the request's copies, then none for the new entry. */
	for (long more = 0; more < 2; more++) {
		h.succeed = more;
		uint32_t len = kvp_msg(IC_KVP_OP_SET, IC_KVP_POOL_EXTERNAL, "key", "value");
		assert_int_equal(ic_guest_handle(g, IC_KVP, buf, len, sizeof(buf)), len);
		assert_int_equal(hdr().status, IC_E_FAIL);
	}
	static struct ic_fcopy_start start;
	start.hdr.operation = IC_FCOPY_START;
	ic_utf8_to_utf16("f", (uint8_t *)start.file_name, sizeof(start.file_name));
	ic_utf8_to_utf16("/d", (uint8_t *)start.path_name, sizeof(start.path_name));
	uint32_t len = request(IC_FCOPY, &start, sizeof(start));
	assert_int_equal(ic_guest_handle(g, IC_FCOPY, buf, len, sizeof(buf)), len);
	assert_int_equal(hdr().status, IC_E_FAIL);
	h.succeed = -1;
	len = request(IC_FCOPY, &start, sizeof(start));
	ic_guest_handle(g, IC_FCOPY, buf, len, sizeof(buf));
	assert_int_equal(hdr().status, IC_S_OK);
	len = kvp_msg(IC_KVP_OP_SET, IC_KVP_POOL_EXTERNAL, "key", "value");
	ic_guest_handle(g, IC_KVP, buf, len, sizeof(buf));
	assert_int_equal(hdr().status, IC_S_OK);
	ic_guest_free(g);
	assert_int_equal(h.live, 0);
}

static void fcopy_paths_stay_below_the_root(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(ic_fcopy_relative("/a/./b/", "f", out, sizeof(out)), 0);
	assert_string_equal(out, "a/b/f");
	assert_int_equal(ic_fcopy_relative("", "f", out, sizeof(out)), 0);
	assert_string_equal(out, "f");
	assert_int_equal(ic_fcopy_relative("/a/../..", "f", out, sizeof(out)), -EACCES);
	assert_int_equal(ic_fcopy_relative("/a", "..", out, sizeof(out)), -EACCES);
	assert_int_equal(ic_fcopy_relative("/a", "x/y", out, sizeof(out)), -EACCES);
	assert_int_equal(ic_fcopy_relative("/a", "", out, sizeof(out)), -EACCES);
	assert_int_equal(ic_fcopy_relative("/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
					   "f", out, sizeof(out)),
			 -ENAMETOOLONG);
}

static void utf16_round_trip_and_refusals(void **state)
{
	(void)state;
	uint8_t w[64];
	char s[64];
	const char *text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	int n = ic_utf8_to_utf16(text, w, sizeof(w));
	assert_int_equal(n, 2 * (1 + 1 + 1 + 2 + 1));
	assert_int_equal(ic_utf16_to_utf8(w, (uint32_t)n, 64, s, sizeof(s)), (int)strlen(text));
	assert_string_equal(s, text);
	const uint8_t lone[] = {0x00, 0xdc, 0, 0};
	assert_int_equal(ic_utf16_to_utf8(lone, 4, 64, s, sizeof(s)), -EINVAL);
	assert_int_equal(ic_utf8_to_utf16("\xff", w, sizeof(w)), -EINVAL);
	assert_int_equal(ic_utf8_to_utf16("abc", w, 6), -ENAMETOOLONG);
}

int main(void)
{
	heap_port_init(&heap, -1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(guest_picks_its_newest_common_versions),
		cmocka_unit_test(no_common_version_answers_zero_counts),
		cmocka_unit_test(heartbeat_echoes_seq_plus_one),
		cmocka_unit_test(shutdown_flags_map_to_kinds),
		cmocka_unit_test(timesync_v4_corrects_by_reference_time),
		cmocka_unit_test(kvp_set_get_enumerate_and_bad_input),
		cmocka_unit_test(vss_answers_as_linux),
		cmocka_unit_test(fcopy_validates_names_and_sizes),
		cmocka_unit_test(failing_port_allocations_are_survived),
		cmocka_unit_test(fcopy_paths_stay_below_the_root),
		cmocka_unit_test(utf16_round_trip_and_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
