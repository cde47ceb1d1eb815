/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netvsp_nic.h"

struct netvsp_nic {
	struct netvsp *nsp;
	struct netvsp_loopback *lb;
};

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char end;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &end) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	/* A station address: not multicast, not all zero. */
	if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return -EINVAL;
	return 0;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

__attribute__((format(printf, 3, 4)))
static int fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int netvsp_nic_parse(const char *arg, struct netvsp_nic_opts *out, char *why, size_t len)
{
	char buf[256];
	memset(out, 0, sizeof(*out));
	if (strlen(arg) >= sizeof(buf))
		return fail(why, len, "--net: argument too long");
	strcpy(buf, arg);
	char *save = NULL;
	bool first = true;
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		char *val = eq ? eq + 1 : NULL;
		if (eq)
			*eq = 0;
		if (first && !val && !strcmp(item, "user")) {
			out->backend = NETVSP_BACKEND_USER;
		} else if (first && !val && !strcmp(item, "loopback")) {
			out->backend = NETVSP_BACKEND_LOOPBACK;
		} else if (first && val && !strcmp(item, "tap")) {
			if (!*val || strlen(val) >= sizeof(out->tap))
				return fail(why, len, "--net tap=NAME: a name of 1 to 15 characters");
			out->backend = NETVSP_BACKEND_TAP;
			strcpy(out->tap, val);
		} else if (val && !strcmp(item, "mac")) {
			if (parse_mac(val, out->mac))
				return fail(why, len, "--net mac=%s: not a unicast XX:XX:XX:XX:XX:XX", val);
			out->has_mac = true;
		} else if (val && !strcmp(item, "mtu")) {
			if (parse_u32(val, 68, NETVSP_MTU_MAX, &out->mtu))
				return fail(why, len, "--net mtu=%s: 68 to %u", val, NETVSP_MTU_MAX);
		} else if (val && !strcmp(item, "queues")) {
			if (parse_u32(val, 1, NETVSP_QUEUES_MAX, &out->queues))
				return fail(why, len, "--net queues=%s: 1 to %u", val, NETVSP_QUEUES_MAX);
		} else {
			return fail(why, len,
				    "--net: unknown '%s' (user|tap=NAME|loopback, then mac=, mtu=, "
				    "queues=)",
				    item);
		}
		first = false;
	}
	return 0;
}

int netvsp_nic_add(struct vmbus_server *s, const struct guest_memory *mem, uint32_t instance,
		   const struct netvsp_nic_opts *o,
		   void (*log)(void *ctx, const char *fmt, va_list ap), void *log_ctx,
		   struct netvsp_nic **out, char *why, size_t len)
{
	if (o->backend != NETVSP_BACKEND_LOOPBACK) {
		snprintf(why, len,
			 "--net %s: not yet available (the libslirp and TAP backends come with "
			 "the netvsc guest driver); use --net loopback",
			 o->backend == NETVSP_BACKEND_TAP ? "tap" : "user");
		return -ENOTSUP;
	}
	struct netvsp_nic *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->lb = netvsp_loopback_new(!o->sink);
	if (!n->lb) {
		free(n);
		return -ENOMEM;
	}
	struct netvsp_config cfg = {
		.mem = mem,
		.instance = instance,
		.has_mac = o->has_mac,
		.mtu = o->mtu,
		.queues = o->queues,
		.max_version = o->max_version,
		.backend = netvsp_loopback_ops(),
		.backend_ctx = n->lb,
		.log = log,
		.log_ctx = log_ctx,
	};
	memcpy(cfg.mac, o->mac, 6);
	int err = netvsp_add(s, &cfg, &n->nsp);
	if (err) {
		snprintf(why, len, "--net: NIC %u: %s", instance, strerror(-err));
		netvsp_loopback_free(n->lb);
		free(n);
		return err;
	}
	*out = n;
	return 0;
}

void netvsp_nic_remove(struct vmbus_server *s, struct netvsp_nic *n)
{
	if (!n)
		return;
	netvsp_remove(s, n->nsp); /* no backend call after this */
	netvsp_loopback_free(n->lb);
	free(n);
}

struct netvsp *netvsp_nic_netvsp(struct netvsp_nic *n)
{
	return n->nsp;
}
