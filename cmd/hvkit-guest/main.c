/* SPDX-License-Identifier: MIT */
/*
 * hvkit-guest: hvkit's guest for the process partition. The guest library
 * on its POSIX port: Hyper-V enlightenments on every VP, the VMBus client,
 * and a driver for the echo device that exchanges verified packets on each
 * of its channels. It prints what it saw and unloads.
 *
 *   hvkit-guest [--packets N] [--subchannels N] [--max-version MAJOR.MINOR] [--serve]
 *               [--copy-dir DIR]
 *
 * --serve (hvkit run --control): after the exchange, keep running and
 * follow what the host changes (hot-added echo devices are opened,
 * rescinded ones closed, disks and NICs that come and go are reported)
 * until the host stops the machine.
 *
 * It also binds the integration components: shutdown requests are logged,
 * KVP is kept in memory, VSS freeze/thaw is logged and agreed to, files
 * the host copies land under --copy-dir (refused without one). And the
 * disks and NICs (hvkit run --disk, --net): storvsc and netvsc bind them;
 * each disk is listed after its first block is read, each NIC after a
 * self-test whose frames a loopback backend hands back (devices.h).
 *
 * hvkit run starts it; it needs the HVKIT_PARTITION_FD an hvkit host gives.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "devices.h"
#include "hv_guest.h"
#include "hvkit/proto/echo.h"
#include "hvkit/vmbus_classes.h"
#include "ic_fcopy_dir.h"
#include "ic_guest.h"
#include "posix.h"
#include "process_guest.h"
#include "vmbus_client.h"

#define RING_BYTES (64 * 1024)
#define MAX_CHANNELS 64
#define WAIT_SECONDS 20

struct options {
	const char *copy_dir;
	uint32_t packets;
	uint32_t subchannels;
	uint32_t max_version;
	bool serve;
};

static struct options opt = {.packets = 1000};
static struct hv_posix *px;
static struct hv_guest guest;
static struct vmbus_client *client;
static struct ic_guest *ics;
static struct guest_devices *devices;

/* ---- The echo driver ---- */

struct echo_channel {
	struct vmbus_client_channel *ch;
	uint64_t answered;
	uint64_t wrong;
	uint8_t buf[4096];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed; /* on CLOCK_MONOTONIC: main() */
static struct echo_channel *channels[MAX_CHANNELS];
static uint32_t channel_count;
static uint32_t primary_count; /* sub-channels may open before all primaries are counted */
static int failures;

/* Interrupt context: take every completion, check it against what was sent. */
static void echo_packets(void *arg, struct vmbus_client_channel *ch)
{
	struct echo_channel *e = arg;
	struct vmbus_packet pkt;
	uint8_t expect[PROCESS_ECHO_PAYLOAD_MAX];

	while (vmbus_client_channel_recv(ch, e->buf, sizeof(e->buf), &pkt) == 0) {
		uint32_t len = process_echo_payload(pkt.trans_id, expect);
		pthread_mutex_lock(&lock);
		if (pkt.type != VMBUS_PKT_COMP || pkt.data_len < len ||
		    memcmp(pkt.data, expect, len))
			e->wrong++;
		e->answered++;
		pthread_cond_broadcast(&changed);
		pthread_mutex_unlock(&lock);
	}
}

static int echo_open(struct vmbus_client_channel *ch)
{
	struct echo_channel *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->ch = ch;
	int err = vmbus_client_channel_open(ch, RING_BYTES, RING_BYTES, NULL, 0, echo_packets, e);
	if (err) {
		fprintf(stderr, "hvkit-guest: cannot open an echo channel: %s\n", strerror(-err));
		free(e);
		return err;
	}
	vmbus_client_channel_set_data(ch, e);
	pthread_mutex_lock(&lock);
	if (channel_count < MAX_CHANNELS)
		channels[channel_count++] = e;
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	return 0;
}

static int echo_probe(void *ctx, struct vmbus_client_channel *ch)
{
	(void)ctx;
	int err = echo_open(ch);
	if (!err) {
		pthread_mutex_lock(&lock);
		primary_count++;
		pthread_mutex_unlock(&lock);
	}
	if (err || !opt.subchannels)
		return err;
	struct vmbus_echo_subchannels ask = {VMBUS_ECHO_SUBCHANNELS, opt.subchannels};
	return vmbus_client_channel_send_inband(ch, UINT64_MAX, 0, &ask, sizeof(ask));
}

static void echo_subchannel(void *ctx, struct vmbus_client_channel *primary,
			    struct vmbus_client_channel *sub)
{
	(void)ctx;
	(void)primary;
	echo_open(sub);
}

static void echo_remove(void *ctx, struct vmbus_client_channel *ch)
{
	(void)ctx;
	struct echo_channel *e = vmbus_client_channel_data(ch);
	vmbus_client_channel_close(ch);
	if (!opt.serve || !e)
		return;
	/* Serving: channels come and go for as long as the machine runs, so
	 * a closed one is forgotten (the exchange is long over). */
	pthread_mutex_lock(&lock);
	for (uint32_t i = 0; i < channel_count; i++)
		if (channels[i] == e) {
			channels[i] = channels[--channel_count];
			free(e);
			break;
		}
	pthread_mutex_unlock(&lock);
}

static const struct vmbus_driver echo_driver = {
	.class_id = VMBUS_ECHO_CLASS,
	.name = "echo",
	.fast = true, /* spread its channels like storage and network */
	.probe = echo_probe,
	.remove = echo_remove,
	.subchannel = echo_subchannel,
};

/* ---- Integration components: the process guest's behaviour ---- */

/* A process guest has no system to shut down: it logs the request. */
static int64_t ic_shutdown(void *ctx, enum ic_guest_shutdown_kind kind, bool force,
			   uint32_t reason, uint32_t timeout_seconds, const char *message)
{
	(void)ctx;
	static const char *const kinds[] = {"shutdown", "reboot", "hibernate"};
	printf("guest: %s request from the host (reason %#x, %u s%s)%s%s\n", kinds[kind], reason,
	       timeout_seconds, force ? ", forced" : "", message[0] ? ": " : "", message);
	return IC_S_OK;
}

/* Nor file systems to freeze. */
static int ic_vss(void *ctx, uint32_t op)
{
	(void)ctx;
	printf("guest: VSS %s request from the host\n", op == IC_VSS_OP_FREEZE ? "freeze" : "thaw");
	return 0;
}

/* Nor a clock to set: the sample is recorded (ic_guest_status). */
static uint64_t ic_reference_time(void *ctx)
{
	(void)ctx;
	return hv_guest_time(&guest);
}

static const char *const ic_intrinsic[] = {
	"FullyQualifiedDomainName", "hvkit-guest",
	"IntegrationServicesVersion", "hvkit 0.1",
	"OSName", "hvkit process guest",
	"ProcessorArchitecture", "x86_64",
	NULL, NULL,
};

/* Waits (a few seconds at most) until every IC the host offered has
 * negotiated, a heartbeat was answered and a time sample applied. */
static void ic_settle(void)
{
	for (int i = 0; i < 500; i++) {
		bool done = true;
		for (int s = 0; s < IC_SERVICE_COUNT; s++) {
			struct ic_guest_status st;
			ic_guest_status(ics, (enum ic_service)s, &st);
			if (!st.probes)
				continue;
			done &= st.negotiated;
			done &= s != IC_HEARTBEAT || st.heartbeats > 0;
			done &= s != IC_TIMESYNC || st.samples > 0;
		}
		if (done)
			return;
		vmbus_client_wait_work(client, 10000000);
		vmbus_client_process(client);
	}
}

static void ic_report(void)
{
	for (int s = 0; s < IC_SERVICE_COUNT; s++) {
		struct ic_guest_status st;
		ic_guest_status(ics, (enum ic_service)s, &st);
		if (!st.probes)
			continue;
		printf("guest: ic %-9s framework %u.%u, version %u.%u, %llu messages", 
		       ic_service_name((enum ic_service)s), IC_VERSION_MAJOR(st.fw_version),
		       IC_VERSION_MINOR(st.fw_version), IC_VERSION_MAJOR(st.msg_version),
		       IC_VERSION_MINOR(st.msg_version), (unsigned long long)st.messages);
		if (s == IC_HEARTBEAT)
			printf(", %llu heartbeats", (unsigned long long)st.heartbeats);
		if (s == IC_TIMESYNC && st.samples) {
			int64_t host_unix = (int64_t)((st.last_host_time - IC_WLTIMEDELTA) / 10000000);
			printf(", %llu samples, host time %lld (%+lld s from ours)",
			       (unsigned long long)st.samples, (long long)host_unix,
			       (long long)(host_unix - (int64_t)time(NULL)));
		}
		printf("\n");
	}
}

/* ---- Bring-up ---- */

static int bring_up(void)
{
	struct hv_guest_features f;
	int err = hv_posix_connect_env(&px);
	if (err) {
		fprintf(stderr, "hvkit-guest: no hvkit host (%s); run me with 'hvkit run'\n",
			strerror(-err));
		return err;
	}
	struct hv_guest_config gc = {0};
	err = process_guest_enlighten(px, &guest, &gc, &f);
	if (err == -ENODEV) {
		fprintf(stderr, "hvkit-guest: Hyper-V not detected\n");
		return err;
	}
	if (err) {
		fprintf(stderr, "hvkit-guest: enlightenment set-up failed: %s\n", strerror(-err));
		return err;
	}
	printf("guest: Hyper-V detected (features %#x, hints %#x), %u VPs, TSC page %s, "
	       "stimer %s\n",
	       f.features, f.hints, gc.vp_count, guest.tsc_page ? "on" : "off",
	       guest.stimer_mode == HV_STIMER_MODE_DIRECT    ? "direct mode"
	       : guest.stimer_mode == HV_STIMER_MODE_MESSAGE ? "message mode"
							     : "none");
	return 0;
}

/* Runs the client's queued work (probes, sub-channel offers) until the
 * expected echo channels are open and the disks and NICs offered are
 * bound, or a while passes. */
static void settle(uint32_t want_channels)
{
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		vmbus_client_wait_work(client, 10000000); /* 10 ms */
		vmbus_client_process(client);
		pthread_mutex_lock(&lock);
		uint32_t have = channel_count;
		pthread_mutex_unlock(&lock);
		if (have >= want_channels && guest_devices_settled(devices))
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - t0.tv_sec < WAIT_SECONDS);
}

/* ---- The echo exchange ---- */

static void exchange(void)
{
	uint8_t payload[PROCESS_ECHO_PAYLOAD_MAX];
	uint32_t n = channel_count;

	for (uint64_t i = 0; i < opt.packets; i++)
		for (uint32_t c = 0; c < n; c++) {
			uint32_t len = process_echo_payload(i, payload);
			int err;
			/* A full ring drains as completions come back. */
			while ((err = vmbus_client_channel_send_inband(
					channels[c]->ch, i, VMBUS_PKT_FLAG_COMPLETION_REQUESTED,
					payload, len)) == -EAGAIN)
				nanosleep(&(struct timespec){0, 50000}, NULL);
			if (err) {
				fprintf(stderr, "hvkit-guest: send failed: %s\n", strerror(-err));
				failures++;
				return;
			}
		}
	struct timespec deadline = process_guest_deadline(WAIT_SECONDS * 1000000000LL);
	pthread_mutex_lock(&lock);
	for (uint32_t c = 0; c < n; c++)
		while (channels[c]->answered < opt.packets)
			if (pthread_cond_timedwait(&changed, &lock, &deadline))
				break;
	for (uint32_t c = 0; c < n; c++)
		if (channels[c]->answered != opt.packets || channels[c]->wrong) {
			fprintf(stderr, "hvkit-guest: channel %u: %llu of %u answers, %llu wrong\n",
				c, (unsigned long long)channels[c]->answered, opt.packets,
				(unsigned long long)channels[c]->wrong);
			failures++;
		}
	pthread_mutex_unlock(&lock);
}

static const char *state_name(enum vmbus_client_channel_state s)
{
	switch (s) {
	case VMBUS_CLIENT_OFFERED:
		return "offered";
	case VMBUS_CLIENT_OPENING:
		return "opening";
	case VMBUS_CLIENT_OPEN:
		return "open";
	case VMBUS_CLIENT_RESCINDED:
		return "rescinded";
	}
	return "?";
}

static void print_channel(void *arg, const struct vmbus_client_channel_info *ci)
{
	(void)arg;
	char instance[HV_GUID_STRING_LEN + 1];
	const struct vmbus_class_info *cls = vmbus_class_find(&ci->class_id);
	hv_guid_format(&ci->instance_id, instance);
	printf("  %-10s %s %3u %5u %4u  %-9s %-6s %8llu %8llu\n", cls ? cls->name : "unknown",
	       instance, ci->sub_channel_index, ci->relid, ci->target_vp, state_name(ci->state),
	       ci->driver ? ci->driver : "-", (unsigned long long)ci->packets_sent,
	       (unsigned long long)ci->packets_received);
}

static uint32_t parse_version(const char *s)
{
	uint64_t major, minor;
	if (!cli_version(s, &major, &minor) || major > 0xffff || minor > 0xffff)
		return 0;
	return VMBUS_MAKE_VERSION((uint32_t)major, (uint32_t)minor);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"packets", required_argument, NULL, 'n'},
		{"subchannels", required_argument, NULL, 's'},
		{"max-version", required_argument, NULL, 'v'},
		{"serve", no_argument, NULL, 'S'},
		{"copy-dir", required_argument, NULL, 'c'},
		{NULL, 0, NULL, 0},
	};
	if (process_guest_cond_init(&changed))
		return 1;
	int c;
	while ((c = getopt_long(argc, argv, "n:s:v:Sc:", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			opt.copy_dir = optarg;
			break;
		case 'n':
		case 's': {
			uint64_t v;
			if (!cli_number(optarg, &v) || v > UINT32_MAX) {
				fprintf(stderr, "hvkit-guest: --%s takes a whole number, not '%s'\n",
					c == 'n' ? "packets" : "subchannels", optarg);
				return 2;
			}
			*(c == 'n' ? &opt.packets : &opt.subchannels) = (uint32_t)v;
			break;
		}
		case 'v':
			opt.max_version = parse_version(optarg);
			if (!opt.max_version) {
				fprintf(stderr, "hvkit-guest: bad version '%s'\n", optarg);
				return 2;
			}
			break;
		case 'S':
			opt.serve = true;
			break;
		default:
			fprintf(stderr, "usage: hvkit-guest [--packets N] [--subchannels N] "
					"[--max-version X.Y] [--serve] [--copy-dir DIR]\n");
			return 2;
		}
	}
	if (opt.serve) {
		/* Serving never ends by itself: end with the host (hvkit run
		 * spawned us), even if it dies without stopping us. */
		pid_t host = getppid();
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != host)
			return 1;
	}
	if (bring_up())
		return 1;

	struct vmbus_client_config cc = {.max_version = opt.max_version};
	int err;
	client = vmbus_client_new(&guest, &cc, &err);
	struct ic_fcopy_dir *copy_dir = opt.copy_dir ? ic_fcopy_dir_new(opt.copy_dir) : NULL;
	if (opt.copy_dir && !copy_dir) {
		fprintf(stderr, "hvkit-guest: cannot open --copy-dir %s\n", opt.copy_dir);
		return 2;
	}
	struct ic_guest_config icc = {
		.intrinsic = ic_intrinsic,
		.ops = {.shutdown = ic_shutdown,
			.reference_time = ic_reference_time,
			.vss = ic_vss,
			.fcopy_start = copy_dir ? ic_fcopy_dir_start : NULL,
			.fcopy_write = ic_fcopy_dir_write,
			.fcopy_complete = ic_fcopy_dir_complete,
			.fcopy_cancel = ic_fcopy_dir_cancel,
			.fcopy_ctx = copy_dir},
	};
	if (client)
		devices = guest_devices_new(client, &guest, &err);
	if (!client || !devices || vmbus_client_register_driver(client, &echo_driver) ||
	    (err = ic_guest_register(client, guest.port, &icc, &ics)) ||
	    (err = vmbus_client_connect(client))) {
		fprintf(stderr, "hvkit-guest: VMBus connect failed: %s\n", strerror(-err));
		return 1;
	}
	uint32_t version = vmbus_client_version(client);
	struct vmbus_client_stats st;
	vmbus_client_get_stats(client, &st);
	printf("guest: VMBus %u.%u, %u offers\n", VMBUS_VERSION_MAJOR(version),
	       VMBUS_VERSION_MINOR(version), st.offers);

	uint32_t echo_primaries = 0;
	settle(1);
	pthread_mutex_lock(&lock);
	echo_primaries = primary_count;
	pthread_mutex_unlock(&lock);
	settle(echo_primaries * (1 + opt.subchannels));
	exchange();
	ic_settle();

	printf("\n  %-10s %-36s %3s %5s %4s  %-9s %-6s %8s %8s\n", "class", "instance", "sub",
	       "relid", "vp", "state", "driver", "sent", "received");
	vmbus_client_for_each_channel(client, print_channel, NULL);
	printf("\nguest: %u echo channels, %u packets each, %s\n", channel_count, opt.packets,
	       failures ? "FAILED" : "all answered and verified");

	ic_report();
	failures += guest_devices_report(devices);

	if (opt.serve) {
		printf("guest: serving until the host stops the machine\n");
		fflush(stdout);
		for (;;) {
			vmbus_client_wait_work(client, 100000000); /* 100 ms */
			vmbus_client_process(client);
			guest_devices_report(devices); /* hot-added disks and NICs */
		}
	}
	err = vmbus_client_unload(client);
	if (err) {
		fprintf(stderr, "hvkit-guest: unload failed: %s\n", strerror(-err));
		failures++;
	}
	guest_devices_free(devices);
	vmbus_client_free(client);
	ic_guest_free(ics);
	ic_fcopy_dir_free(copy_dir);
	hv_posix_disconnect(px);
	return failures ? 1 : 0;
}
