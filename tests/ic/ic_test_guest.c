/* SPDX-License-Identifier: MIT */
/*
 * The guest for the IC end-to-end tests: the IC drivers on the VMBus
 * client, run until the host stops it. It reports back through KVP, so the
 * host test checks everything:
 *  - the shutdown callback records its request in the guest pool as
 *    "shutdown" = poweroff|reboot|hibernate;
 *  - a host-set external key "ping" is read by the guest's main loop and
 *    copied to the guest pool as "pong";
 *  - a host-set external key "reopen" makes the guest close its KVP
 *    channel (the host then rescinds and re-offers it);
 *  - a host-set external key "hibernate" makes the guest suspend and
 *    resume its bus (hibernation.rst), then say "hibernated" = ok (or
 *    the two results) in the guest pool;
 *  - VSS freeze and thaw are recorded as "vss" = freeze|thaw;
 *  - copied files land under the --copy-dir directory.
 *
 *   hvkit-test-ic-guest [--fw X.Y] [--version SERVICE=X.Y]... [--mute-shutdown]
 *                       [--copy-dir DIR]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_guest.h"
#include "ic_fcopy_dir.h"
#include "ic_guest.h"
#include "posix.h"
#include "process_guest.h"
#include "vmbus_client.h"

static struct hv_posix *px;
static struct hv_guest guest;
static struct ic_kvp_store *store;
static bool mute_shutdown;

static int64_t on_shutdown(void *ctx, enum ic_guest_shutdown_kind kind, bool force,
			   uint32_t reason, uint32_t timeout_seconds, const char *message)
{
	(void)ctx, (void)force, (void)reason, (void)timeout_seconds, (void)message;
	static const char *const kinds[] = {"poweroff", "reboot", "hibernate"};
	if (mute_shutdown)
		return IC_GUEST_NO_ANSWER;
	ic_kvp_store_set(store, IC_KVP_POOL_GUEST, "shutdown", kinds[kind]);
	return IC_S_OK;
}

static int on_vss(void *ctx, uint32_t op)
{
	(void)ctx;
	ic_kvp_store_set(store, IC_KVP_POOL_GUEST, "vss", op == IC_VSS_OP_FREEZE ? "freeze" : "thaw");
	return 0;
}

static uint64_t ref_time(void *ctx)
{
	(void)ctx;
	return hv_guest_time(&guest);
}

static const char *const intrinsic[] = {
	"FullyQualifiedDomainName", "ic-test-guest", "OSName", "hvkit", NULL, NULL,
};

static uint32_t parse_version(const char *s)
{
	unsigned major, minor;
	return sscanf(s, "%u.%u", &major, &minor) == 2 ? IC_VERSION(major, minor) : 0;
}

int main(int argc, char **argv)
{
	struct ic_guest_config cfg = {.intrinsic = intrinsic};
	static const struct option opts[] = {
		{"fw", required_argument, NULL, 'f'},
		{"version", required_argument, NULL, 'v'},
		{"mute-shutdown", no_argument, NULL, 'm'},
		{"copy-dir", required_argument, NULL, 'c'},
		{NULL, 0, NULL, 0},
	};
	int c;
	struct ic_fcopy_dir *copy_dir = NULL;
	while ((c = getopt_long(argc, argv, "f:v:mc:", opts, NULL)) != -1) {
		if (c == 'f') {
			cfg.max_fw_version = parse_version(optarg);
		} else if (c == 'v') {
			char *eq = strchr(optarg, '=');
			if (!eq)
				return 2;
			*eq = '\0';
			for (int s = 0; s < IC_SERVICE_COUNT; s++)
				if (!strcmp(optarg, ic_service_name((enum ic_service)s)))
					cfg.max_version[s] = parse_version(eq + 1);
		} else if (c == 'm') {
			mute_shutdown = true;
		} else if (c == 'c') {
			copy_dir = ic_fcopy_dir_new(optarg);
			if (!copy_dir)
				return 2;
		} else {
			return 2;
		}
	}
	struct hv_guest_features f;
	struct hv_guest_config gc = {0};
	int err = hv_posix_connect_env(&px);
	if (!err)
		err = process_guest_enlighten(px, &guest, &gc, &f);
	if (err) {
		fprintf(stderr, "ic guest: set-up failed: %s\n", strerror(-err));
		return 1;
	}
	store = ic_kvp_store_new(guest.port);
	if (!store)
		return 1;
	cfg.ops = (struct ic_guest_ops){
		.shutdown = on_shutdown,
		.reference_time = ref_time,
		.kvp_set = ic_kvp_store_set,
		.kvp_get = ic_kvp_store_get,
		.kvp_delete = ic_kvp_store_delete,
		.kvp_enumerate = NULL, /* the intrinsic list, then the store */
		.vss = on_vss,
		.fcopy_start = copy_dir ? ic_fcopy_dir_start : NULL,
		.fcopy_write = ic_fcopy_dir_write,
		.fcopy_complete = ic_fcopy_dir_complete,
		.fcopy_cancel = ic_fcopy_dir_cancel,
		.ctx = store,
		.fcopy_ctx = copy_dir,
	};
	struct vmbus_client_config cc = {0};
	struct vmbus_client *client = vmbus_client_new(&guest, &cc, &err);
	struct ic_guest *ics = NULL;
	if (!client || (err = ic_guest_register(client, guest.port, &cfg, &ics)) ||
	    (err = vmbus_client_connect(client))) {
		fprintf(stderr, "ic guest: connect failed: %s\n", strerror(-err));
		return 1;
	}
	/* Until the host stops us (a minute at most). */
	char value[IC_KVP_MAX_VALUE_SIZE * 3 / 2];
	for (int i = 0; i < 6000; i++) {
		vmbus_client_wait_work(client, 10000000);
		vmbus_client_process(client);
		if (!ic_kvp_store_get(store, IC_KVP_POOL_EXTERNAL, "ping", value, sizeof(value)))
			ic_kvp_store_set(store, IC_KVP_POOL_GUEST, "pong", value);
		if (!ic_kvp_store_get(store, IC_KVP_POOL_EXTERNAL, "reopen", value, sizeof(value))) {
			ic_kvp_store_delete(store, IC_KVP_POOL_EXTERNAL, "reopen");
			ic_kvp_store_delete(store, IC_KVP_POOL_EXTERNAL, "ping");
			ic_guest_close(ics, IC_KVP);
		}
		if (!ic_kvp_store_get(store, IC_KVP_POOL_EXTERNAL, "hibernate", value,
				      sizeof(value))) {
			ic_kvp_store_delete(store, IC_KVP_POOL_EXTERNAL, "hibernate");
			int suspended = vmbus_client_suspend(client);
			int resumed = vmbus_client_resume(client);
			char said[32] = "ok";
			if (suspended || resumed)
				snprintf(said, sizeof(said), "failed %d %d", suspended, resumed);
			ic_kvp_store_set(store, IC_KVP_POOL_GUEST, "hibernated", said);
		}
	}
	return 0;
}
