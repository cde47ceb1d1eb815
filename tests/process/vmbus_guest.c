/* SPDX-License-Identifier: MIT */
/*
 * A guest for the VMBus end-to-end tests: the VMBus client over the guest
 * library on the POSIX port, against hvkit's VMBus server and echo devices
 * in the process partition. One scenario per run; exit 0 if every check
 * held.
 *
 *   hvkit-test-vmbus-guest SCENARIO [ARG...]
 *
 *   connect VERSION [CLIENT_MAX]   negotiates exactly VERSION (X.Y)
 *   echo CHANNELS PACKETS          PACKETS on each of CHANNELS echo channels
 *   hotadd                         a device offered while connected is used
 *   rescind                        streams until the device is rescinded
 *   reopen                         open, use, close, open again, use
 *   subchannels N                  N sub-channels offered, opened, used
 *   retarget                       interrupts move to VP 1
 *   reconnect same|different       unload, connect again, compare relids
 *   hibernate same|different       suspend and resume the bus (hibernation.rst)
 *                                  with sub-channels in use; the devices go on
 *   gpadl-limit                    a ring over the host's limit is refused
 *   bad-gpadl                      a GPADL naming PFNs outside RAM is refused
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv_guest.h"
#include "hvkit/proto/echo.h"
#include "posix.h"
#include "process_guest.h"
#include "vmbus_client.h"

#define MAX_CHANNELS 64
#define RING (64 * 1024)

static struct hv_posix *px;
static struct hv_guest guest;
static struct vmbus_client *client;
static int failures;

#define CHECK(cond, ...)                                                          \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "vmbus guest: check failed (line %d): ",   \
				__LINE__);                                         \
			fprintf(stderr, __VA_ARGS__);                              \
			fputc('\n', stderr);                                       \
			failures++;                                                \
		}                                                                  \
	} while (0)

/* ---- Echo channels ---- */

struct echo {
	struct vmbus_client_channel *ch;
	uint64_t answered, wrong;
	uint32_t last_vp;     /* the VP the last completion arrived on */
	bool removed;
	bool suspended; /* closed by the driver's suspend, kept */
	uint8_t buf[4096];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static struct echo *echoes[MAX_CHANNELS];
static uint32_t echo_count;
static struct vmbus_client_channel *offered[MAX_CHANNELS]; /* probed, not yet open */
static uint32_t offered_count;
static bool auto_open = true;

static void on_packets(void *arg, struct vmbus_client_channel *ch)
{
	struct echo *e = arg;
	struct vmbus_packet pkt;
	uint8_t expect[PROCESS_ECHO_PAYLOAD_MAX];
	const struct hv_port *port = hv_posix_port(px);

	while (vmbus_client_channel_recv(ch, e->buf, sizeof(e->buf), &pkt) == 0) {
		uint32_t len = process_echo_payload(pkt.trans_id, expect);
		pthread_mutex_lock(&lock);
		if (pkt.type != VMBUS_PKT_COMP || pkt.data_len < len ||
		    memcmp(pkt.data, expect, len))
			e->wrong++;
		e->answered++;
		e->last_vp = port->current_vp(port->ctx);
		pthread_cond_broadcast(&changed);
		pthread_mutex_unlock(&lock);
	}
}

static struct echo *open_echo(struct vmbus_client_channel *ch, uint32_t ring)
{
	struct echo *e = calloc(1, sizeof(*e));
	e->ch = ch;
	int err = vmbus_client_channel_open(ch, ring, ring, NULL, 0, on_packets, e);
	CHECK(err == 0, "open: %d", err);
	if (err) {
		free(e);
		return NULL;
	}
	vmbus_client_channel_set_data(ch, e);
	pthread_mutex_lock(&lock);
	echoes[echo_count++] = e;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	return e;
}

/* Frees the echoes once their channels are closed or removed. A closed
 * channel stays offered, so it must stop pointing at its echo. */
static void forget_echoes(void)
{
	pthread_mutex_lock(&lock);
	for (uint32_t c = 0; c < echo_count; c++) {
		if (!echoes[c]->removed)
			vmbus_client_channel_set_data(echoes[c]->ch, NULL);
		free(echoes[c]);
	}
	echo_count = 0;
	pthread_mutex_unlock(&lock);
}

static int probe(void *ctx, struct vmbus_client_channel *ch)
{
	(void)ctx;
	if (auto_open)
		return open_echo(ch, RING) ? 0 : -EIO;
	pthread_mutex_lock(&lock);
	offered[offered_count++] = ch;
	pthread_mutex_unlock(&lock);
	return 0;
}

static void remove_channel(void *ctx, struct vmbus_client_channel *ch)
{
	(void)ctx;
	struct echo *e = vmbus_client_channel_data(ch);
	pthread_mutex_lock(&lock);
	if (e)
		e->removed = true;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	vmbus_client_channel_close(ch);
}

static void subchannel(void *ctx, struct vmbus_client_channel *primary,
		       struct vmbus_client_channel *sub)
{
	(void)ctx;
	(void)primary;
	open_echo(sub, RING);
}

/* Hibernation, as a VSC driver does it: the channels closed, the echo
 * (its counts) kept; at resume the primary reopened, sub-channels asked
 * for again. */
static int suspend(void *ctx, struct vmbus_client_channel *ch)
{
	(void)ctx;
	struct echo *e = vmbus_client_channel_data(ch);
	vmbus_client_channel_close(ch);
	pthread_mutex_lock(&lock);
	if (e)
		e->suspended = true;
	pthread_mutex_unlock(&lock);
	return e ? 0 : -EINVAL;
}

static uint32_t subchannels_per_device;

static int resume(void *ctx, struct vmbus_client_channel *ch)
{
	(void)ctx;
	struct echo *e = vmbus_client_channel_data(ch);
	if (!e)
		return -EINVAL;
	int err = vmbus_client_channel_open(ch, RING, RING, NULL, 0, on_packets, e);
	pthread_mutex_lock(&lock);
	e->suspended = err != 0;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	struct vmbus_echo_subchannels ask = {VMBUS_ECHO_SUBCHANNELS, subchannels_per_device};
	if (!err && subchannels_per_device)
		err = vmbus_client_channel_send_inband(ch, UINT64_MAX, 0, &ask, sizeof(ask));
	return err;
}

static const struct vmbus_driver echo_driver = {
	.class_id = VMBUS_ECHO_CLASS,
	.name = "echo",
	.fast = true,
	.probe = probe,
	.remove = remove_channel,
	.subchannel = subchannel,
	.suspend = suspend,
	.resume = resume,
};

/* Runs client work until cond() or 10 s. */
static bool settle_until(bool (*cond)(void *), void *arg)
{
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		vmbus_client_process(client);
		pthread_mutex_lock(&lock);
		bool done = cond(arg);
		pthread_mutex_unlock(&lock);
		if (done)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec >= 10)
			return false;
		vmbus_client_wait_work(client, 5000000);
	}
}

static bool have_echoes(void *arg)
{
	return echo_count >= *(uint32_t *)arg;
}

static bool is_removed(void *arg)
{
	return ((struct echo *)arg)->removed;
}

/* PACKETS on channel e, all answered and right. */
static void exchange(struct echo *e, uint64_t first, uint32_t packets)
{
	uint8_t payload[PROCESS_ECHO_PAYLOAD_MAX];
	for (uint64_t i = first; i < first + packets; i++) {
		uint32_t len = process_echo_payload(i, payload);
		int err;
		while ((err = vmbus_client_channel_send_inband(e->ch, i, VMBUS_PKT_FLAG_COMPLETION_REQUESTED,
							payload, len)) == -EAGAIN)
			nanosleep(&(struct timespec){0, 50000}, NULL);
		CHECK(err == 0, "send %llu: %d", (unsigned long long)i, err);
		if (err)
			return;
	}
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	pthread_mutex_lock(&lock);
	while (e->answered < first + packets)
		if (pthread_cond_timedwait(&changed, &lock, &deadline))
			break;
	CHECK(e->answered == first + packets && e->wrong == 0, "%llu of %llu answered, %llu wrong",
	      (unsigned long long)e->answered, (unsigned long long)(first + packets),
	      (unsigned long long)e->wrong);
	pthread_mutex_unlock(&lock);
}

/* ---- Bring-up ---- */

static uint32_t parse_version(const char *s)
{
	unsigned major, minor;
	return sscanf(s, "%u.%u", &major, &minor) == 2 ? VMBUS_MAKE_VERSION(major, minor) : 0;
}

static int bring_up(uint32_t client_max)
{
	struct hv_guest_features f;
	int err = hv_posix_connect_env(&px);
	if (err)
		return err;
	struct hv_guest_config gc = {0};
	err = process_guest_enlighten(px, &guest, &gc, &f);
	if (err)
		return err;
	struct vmbus_client_config cc = {.max_version = client_max};
	client = vmbus_client_new(&guest, &cc, &err);
	if (!client)
		return err;
	return vmbus_client_register_driver(client, &echo_driver);
}

/* ---- Scenarios ---- */

static void connect_at(uint32_t expect)
{
	int err = vmbus_client_connect(client);
	CHECK(err == 0, "connect: %d", err);
	CHECK(vmbus_client_version(client) == expect, "negotiated %#x, expected %#x",
	      vmbus_client_version(client), expect);
	uint32_t one = 1;
	CHECK(settle_until(have_echoes, &one), "no echo channel");
	if (echo_count)
		exchange(echoes[0], 0, 100);
}

static void echo_all(uint32_t channels, uint32_t packets)
{
	CHECK(vmbus_client_connect(client) == 0, "connect");
	CHECK(settle_until(have_echoes, &channels), "%u of %u channels", echo_count, channels);
	for (uint32_t c = 0; c < echo_count; c++)
		exchange(echoes[c], 0, packets);
}

static void hotadd(void)
{
	uint32_t one = 1, two = 2;
	CHECK(vmbus_client_connect(client) == 0, "connect");
	CHECK(settle_until(have_echoes, &one), "first channel");
	/* The host adds the second device once it sees this one open. */
	CHECK(settle_until(have_echoes, &two), "the hot-added device never came");
	if (echo_count == 2)
		exchange(echoes[1], 0, 200);
}

static void rescind(void)
{
	uint32_t one = 1;
	uint8_t payload[PROCESS_ECHO_PAYLOAD_MAX];
	CHECK(vmbus_client_connect(client) == 0, "connect");
	CHECK(settle_until(have_echoes, &one), "channel");
	if (!echo_count)
		return;
	struct echo *e = echoes[0];
	/* Keep the channel busy until the host pulls the device. */
	uint64_t i = 0;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		vmbus_client_process(client);
		pthread_mutex_lock(&lock);
		bool gone = e->removed;
		pthread_mutex_unlock(&lock);
		if (gone)
			break;
		uint32_t len = process_echo_payload(i, payload);
		int err = vmbus_client_channel_send_inband(e->ch, i, VMBUS_PKT_FLAG_COMPLETION_REQUESTED,
						    payload, len);
		if (err == 0)
			i++;
		else if (err != -EAGAIN && err != -ENODEV)
			CHECK(false, "send during rescind: %d", err);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 20) {
			CHECK(false, "never rescinded");
			break;
		}
	}
	CHECK(settle_until(is_removed, e), "driver remove not called");
	CHECK(i > 0, "no packet got through before the rescind");
	struct vmbus_client_stats st;
	vmbus_client_get_stats(client, &st);
	CHECK(st.rescinds == 1, "%u rescinds", st.rescinds);
}

static void reopen(void)
{
	uint32_t one = 1;
	auto_open = false;
	CHECK(vmbus_client_connect(client) == 0, "connect");
	vmbus_client_process(client);
	CHECK(offered_count == 1, "%u offers", offered_count);
	if (!offered_count)
		return;
	struct echo *e = open_echo(offered[0], RING);
	if (!e)
		return;
	exchange(e, 0, 300);
	vmbus_client_channel_close(e->ch);
	forget_echoes();
	e = open_echo(offered[0], 2 * RING); /* another size, another GPADL */
	CHECK(settle_until(have_echoes, &one), "reopen");
	if (e) {
		e->answered = 0;
		exchange(e, 0, 300);
	}
}

static void subchannels(uint32_t n)
{
	uint32_t want = 1 + n;
	CHECK(vmbus_client_connect(client) == 0, "connect");
	uint32_t one = 1;
	CHECK(settle_until(have_echoes, &one), "primary");
	struct vmbus_echo_subchannels ask = {VMBUS_ECHO_SUBCHANNELS, n};
	CHECK(vmbus_client_channel_send_inband(echoes[0]->ch, UINT64_MAX, 0, &ask, sizeof(ask)) == 0,
	      "ask for sub-channels");
	CHECK(settle_until(have_echoes, &want), "%u of %u channels", echo_count, want);
	for (uint32_t c = 0; c < echo_count; c++)
		exchange(echoes[c], 0, 200);
	/* A fast driver's sub-channels spread over both VPs. */
	bool vp1 = false;
	for (uint32_t c = 0; c < echo_count; c++) {
		struct vmbus_client_channel_info ci;
		vmbus_client_channel_info(echoes[c]->ch, &ci);
		vp1 |= ci.target_vp == 1;
	}
	CHECK(vp1 || hv_posix_vp_count(px) == 1, "no channel targets VP 1");
}

static void retarget(void)
{
	uint32_t one = 1;
	CHECK(vmbus_client_connect(client) == 0, "connect");
	CHECK(settle_until(have_echoes, &one), "channel");
	if (!echo_count)
		return;
	struct echo *e = echoes[0];
	struct vmbus_client_channel_info ci;
	uint32_t to = 0;
	vmbus_client_channel_info(e->ch, &ci);
	to = ci.target_vp == 0 ? 1 : 0;
	CHECK(vmbus_client_channel_retarget(e->ch, to) == 0, "retarget");
	vmbus_client_channel_info(e->ch, &ci);
	CHECK(ci.target_vp == to, "target %u after retarget to %u", ci.target_vp, to);
	exchange(e, 0, 200);
	CHECK(e->last_vp == to, "completions arrive on VP %u, not %u", e->last_vp, to);
}

static uint32_t relids[MAX_CHANNELS];

static void record_relid(void *arg, const struct vmbus_client_channel_info *ci)
{
	uint32_t *n = arg;
	if (*n < MAX_CHANNELS)
		relids[(*n)++] = ci->relid;
}

static void reconnect(bool expect_same)
{
	uint32_t n = 0, m = 0;
	uint32_t before[MAX_CHANNELS];
	CHECK(vmbus_client_connect(client) == 0, "connect");
	uint32_t all = 4;
	CHECK(settle_until(have_echoes, &all), "4 channels");
	vmbus_client_for_each_channel(client, record_relid, &n);
	memcpy(before, relids, sizeof(before));
	CHECK(vmbus_client_unload(client) == 0, "unload");
	forget_echoes();
	CHECK(vmbus_client_connect(client) == 0, "reconnect");
	CHECK(settle_until(have_echoes, &all), "4 channels again");
	vmbus_client_for_each_channel(client, record_relid, &m);
	CHECK(n == m && n == 4, "%u channels, then %u", n, m);
	bool same = memcmp(before, relids, sizeof(uint32_t) * n) == 0;
	CHECK(same == expect_same, "relids %s across the reconnect",
	      same ? "stayed" : "changed");
	for (uint32_t c = 0; c < echo_count; c++)
		exchange(echoes[c], 0, 100);
}

/* Echo channels open and in use (not removed, not suspended). */
static bool live_echoes(void *arg)
{
	uint32_t n = 0;
	for (uint32_t c = 0; c < echo_count; c++)
		n += !echoes[c]->removed && !echoes[c]->suspended;
	return n >= *(uint32_t *)arg;
}

static void count_relid(void *arg, const struct vmbus_client_channel_info *ci)
{
	uint32_t *n = arg;
	*n += ci->relid == 0;
}

/* Two echo devices with a sub-channel each, in use; the bus suspends
 * (sub-channels rescinded, primaries kept with no relid, UNLOAD) and
 * resumes (primaries matched to the re-offers, reopened, sub-channels
 * made again); the same echo objects answer on, their counts going on.
 * With the host's relids scrambled, the primaries' relids change. */
static void hibernate(bool expect_same)
{
	uint32_t two = 2, four = 4;
	subchannels_per_device = 1;
	CHECK(vmbus_client_connect(client) == 0, "connect");
	CHECK(settle_until(have_echoes, &two), "2 primaries");
	struct echo *primaries[2] = {echoes[0], echoes[1]};
	struct vmbus_echo_subchannels ask = {VMBUS_ECHO_SUBCHANNELS, 1};
	for (int i = 0; i < 2; i++)
		CHECK(vmbus_client_channel_send_inband(primaries[i]->ch, UINT64_MAX, 0, &ask,
						       sizeof(ask)) == 0,
		      "ask for a sub-channel");
	CHECK(settle_until(live_echoes, &four), "4 channels");
	for (uint32_t c = 0; c < echo_count; c++)
		exchange(echoes[c], 0, 100);
	uint32_t before[2];
	for (int i = 0; i < 2; i++) {
		struct vmbus_client_channel_info ci;
		vmbus_client_channel_info(primaries[i]->ch, &ci);
		before[i] = ci.relid;
	}

	CHECK(vmbus_client_suspend(client) == 0, "suspend");
	uint32_t kept = 0;
	vmbus_client_for_each_channel(client, count_relid, &kept);
	CHECK(kept == 2, "%u devices kept without a relid", kept);
	CHECK(primaries[0]->suspended && primaries[1]->suspended, "primaries suspended");

	CHECK(vmbus_client_resume(client) == 0, "resume");
	CHECK(settle_until(live_echoes, &four), "4 channels after the resume");
	struct vmbus_client_stats st;
	vmbus_client_get_stats(client, &st);
	CHECK(st.resumed == 2 && st.missing_after_resume == 0, "%u resumed, %u missing",
	      st.resumed, st.missing_after_resume);
	bool same = true;
	for (int i = 0; i < 2; i++) {
		struct vmbus_client_channel_info ci;
		vmbus_client_channel_info(primaries[i]->ch, &ci);
		same &= ci.relid == before[i];
		CHECK(ci.state == VMBUS_CLIENT_OPEN, "primary %d not open", i);
		/* The same echo, its count going on from before. */
		exchange(primaries[i], 100, 100);
	}
	CHECK(same == expect_same, "relids %s across the hibernation",
	      same ? "stayed" : "changed");
	for (uint32_t c = 0; c < echo_count; c++)
		if (!echoes[c]->removed && echoes[c] != primaries[0] && echoes[c] != primaries[1])
			exchange(echoes[c], 0, 100); /* the new sub-channels */
}

static void gpadl_limit(void)
{
	auto_open = false;
	CHECK(vmbus_client_connect(client) == 0, "connect");
	vmbus_client_process(client);
	CHECK(offered_count == 2, "%u offers", offered_count);
	if (offered_count < 2)
		return;
	/* The host allows 512 KiB: 2 x 128 KiB fits, 2 x 256 KiB more does not. */
	struct echo *e = open_echo(offered[0], 128 * 1024);
	if (e)
		exchange(e, 0, 100);
	int err = vmbus_client_channel_open(offered[1], 256 * 1024, 256 * 1024, NULL, 0, on_packets,
				     NULL);
	CHECK(err == -EIO, "open over the limit: %d", err);
	/* Closing the first gives its share back. */
	vmbus_client_channel_close(offered[0]);
	forget_echoes();
	e = open_echo(offered[1], 128 * 1024);
	if (e)
		exchange(e, 0, 100);
}

static void bad_gpadl(void)
{
	uint32_t one = 1;
	CHECK(vmbus_client_connect(client) == 0, "connect");
	CHECK(settle_until(have_echoes, &one), "channel");
	struct vmbus_client_channel_info ci;
	vmbus_client_channel_info(echoes[0]->ch, &ci);
	/* A GPADL of two pages, the second far past guest RAM. */
	struct vmbus_msg_gpadl_header h = {
		.header = {VMBUS_MSG_GPADL_HEADER, 0},
		.child_relid = ci.relid,
		.gpadl = 0x7777,
		.range_buflen = sizeof(struct vmbus_gpa_range) + 16,
		.range_count = 1,
	};
	struct vmbus_gpa_range r = {.byte_count = 8192, .byte_offset = 0};
	uint64_t pfn[2] = {16, 1ull << 40};
	uint8_t msg[sizeof(h) + sizeof(r) + sizeof(pfn)];
	memcpy(msg, &h, sizeof(h));
	memcpy(msg + sizeof(h), &r, sizeof(r));
	memcpy(msg + sizeof(h) + sizeof(r), pfn, sizeof(pfn));
	uint16_t st = hv_guest_post_message(&guest, VMBUS_MESSAGE_CONNECTION_ID, 1, msg,
					    sizeof(msg));
	CHECK(st == HV_STATUS_SUCCESS, "post: %u", st);
	/* The refusal comes back as an answer the client did not ask for:
	 * dropped and counted (waited for, 10 s at most). The channel keeps
	 * working. */
	struct vmbus_client_stats cs;
	for (int i = 0; i < 10000; i++) {
		vmbus_client_get_stats(client, &cs);
		if (cs.bad_messages >= 1)
			break;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	CHECK(cs.bad_messages >= 1, "the refusal never came");
	exchange(echoes[0], 0, 100);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *s = argv[1];
	uint32_t client_max = 0;
	if (!strcmp(s, "connect") && argc > 3)
		client_max = parse_version(argv[3]);
	int err = bring_up(client_max);
	if (err) {
		fprintf(stderr, "vmbus guest: bring-up failed: %s\n", strerror(-err));
		return 1;
	}
	if (!strcmp(s, "connect") && argc > 2)
		connect_at(parse_version(argv[2]));
	else if (!strcmp(s, "echo") && argc > 3)
		echo_all((uint32_t)atoi(argv[2]), (uint32_t)atoi(argv[3]));
	else if (!strcmp(s, "hotadd"))
		hotadd();
	else if (!strcmp(s, "rescind"))
		rescind();
	else if (!strcmp(s, "reopen"))
		reopen();
	else if (!strcmp(s, "subchannels") && argc > 2)
		subchannels((uint32_t)atoi(argv[2]));
	else if (!strcmp(s, "retarget"))
		retarget();
	else if (!strcmp(s, "reconnect") && argc > 2)
		reconnect(!strcmp(argv[2], "same"));
	else if (!strcmp(s, "hibernate") && argc > 2)
		hibernate(!strcmp(argv[2], "same"));
	else if (!strcmp(s, "gpadl-limit"))
		gpadl_limit();
	else if (!strcmp(s, "bad-gpadl"))
		bad_gpadl();
	else {
		fprintf(stderr, "vmbus guest: unknown scenario '%s'\n", s);
		return 2;
	}
	/* Everything torn down, so the sanitizer build can check for leaks. */
	vmbus_client_unload(client);
	forget_echoes();
	vmbus_client_free(client);
	hv_posix_disconnect(px);
	return failures ? 1 : 0;
}
