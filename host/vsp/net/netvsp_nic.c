/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frameq.h"
#include "netvsp_nic.h"

struct netvsp_nic {
	struct netvsp *nsp; /* set once added: the backend thread reads it */
	struct netvsp_loopback *lb;
	struct netvsp_slirp *user;
	struct netvsp_tap *tap;
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

static bool backend_word(const char *item, const char *val, struct netvsp_nic_opts *out)
{
	static const struct {
		const char *name;
		enum netvsp_backend_kind kind;
	} words[] = {
		{"user", NETVSP_BACKEND_USER},
		{"loopback", NETVSP_BACKEND_LOOPBACK},
		{"sink", NETVSP_BACKEND_SINK},
	};
	if (val)
		return false;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (!strcmp(item, words[i].name)) {
			out->backend = words[i].kind;
			return true;
		}
	}
	return false;
}

const char *netvsp_nic_backend_name(enum netvsp_backend_kind k)
{
	switch (k) {
	case NETVSP_BACKEND_USER:
		return "user";
	case NETVSP_BACKEND_TAP:
		return "tap";
	case NETVSP_BACKEND_LOOPBACK:
		return "loopback";
	case NETVSP_BACKEND_SINK:
		return "sink";
	}
	return "?";
}

/* One NAME=VALUE option after the backend. */
static int parse_option(const char *item, const char *val, struct netvsp_nic_opts *out,
			char *why, size_t len)
{
	if (!val)
		return netvsp_sayf(why, len, "--net: '%s' needs a value (a backend must come first)",
				   item);
	if (!strcmp(item, "mac")) {
		if (parse_mac(val, out->mac))
			return netvsp_sayf(why, len, "--net mac=%s: not a unicast XX:XX:XX:XX:XX:XX", val);
		out->has_mac = true;
	} else if (!strcmp(item, "mtu")) {
		if (parse_u32(val, 68, NETVSP_MTU_MAX, &out->mtu))
			return netvsp_sayf(why, len, "--net mtu=%s: 68 to %u", val, NETVSP_MTU_MAX);
	} else if (!strcmp(item, "queues")) {
		if (parse_u32(val, 1, NETVSP_QUEUES_MAX, &out->queues))
			return netvsp_sayf(why, len, "--net queues=%s: 1 to %u", val, NETVSP_QUEUES_MAX);
	} else if (!strcmp(item, "hostfwd")) {
		if (out->user.nfwd == NETVSP_HOSTFWD_MAX)
			return netvsp_sayf(why, len, "--net: at most %u hostfwd=", NETVSP_HOSTFWD_MAX);
		if (netvsp_hostfwd_parse(val, &out->user.fwd[out->user.nfwd]))
			return netvsp_sayf(why, len,
				    "--net hostfwd=%s: not [tcp|udp]:[HOSTADDR]:HOSTPORT-"
				    "[GUESTADDR]:GUESTPORT",
				    val);
		out->user.nfwd++;
	} else if (!strcmp(item, "restrict")) {
		if (strcmp(val, "on") && strcmp(val, "off"))
			return netvsp_sayf(why, len, "--net restrict=%s: on or off", val);
		out->user.restrict_ = !strcmp(val, "on");
	} else {
		return netvsp_sayf(why, len,
			    "--net: unknown '%s' (user|tap=NAME|loopback|sink, then hostfwd=, "
			    "restrict=, mac=, mtu=, queues=)",
			    item);
	}
	return 0;
}

int netvsp_nic_parse(const char *arg, struct netvsp_nic_opts *out, char *why, size_t len)
{
	char buf[1024];
	memset(out, 0, sizeof(*out));
	if (strlen(arg) >= sizeof(buf))
		return netvsp_sayf(why, len, "--net: argument too long");
	strcpy(buf, arg);
	char *save = NULL;
	bool first = true;
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		char *val = eq ? eq + 1 : NULL;
		if (eq)
			*eq = 0;
		if (first && backend_word(item, val, out)) {
			/* named */
		} else if (first && val && !strcmp(item, "tap")) {
			if (!*val || strlen(val) >= sizeof(out->tap))
				return netvsp_sayf(why, len, "--net tap=NAME: a name of 1 to 15 characters");
			out->backend = NETVSP_BACKEND_TAP;
			strcpy(out->tap, val);
		} else if (first && !val) {
			return netvsp_sayf(why, len,
					   "--net: unknown backend '%s' (user|tap=NAME|loopback|sink)",
					   item);
		} else if (parse_option(item, val, out, why, len)) {
			return -EINVAL;
		}
		first = false;
	}
	if (out->backend != NETVSP_BACKEND_USER && (out->user.nfwd || out->user.restrict_))
		return netvsp_sayf(why, len, "--net: hostfwd= and restrict= are for the user backend");
	if (out->user.restrict_ && !out->user.nfwd)
		return netvsp_sayf(why, len, "--net restrict=on: the guest can reach nothing; add a hostfwd=");
	return 0;
}

/* Frames from a threaded backend for the guest. */
static int nic_rx(void *ctx, const uint8_t *frame, uint32_t len)
{
	struct netvsp_nic *n = ctx;
	struct netvsp *nsp = __atomic_load_n(&n->nsp, __ATOMIC_ACQUIRE);
	return nsp ? netvsp_receive(nsp, frame, len) : -ENOTCONN;
}

_Static_assert(NETVSP_RX_BURST_MORE == NETVSP_RX_MORE, "the backends' flag is netvsp's");

static uint32_t nic_rx_burst(void *ctx, const uint8_t *const *frames, const uint32_t *lens,
			     uint32_t count, int *errs, uint32_t flags)
{
	struct netvsp_nic *n = ctx;
	struct netvsp *nsp = __atomic_load_n(&n->nsp, __ATOMIC_ACQUIRE);
	if (nsp)
		return netvsp_receive_burst(nsp, frames, lens, count, errs, flags);
	for (uint32_t i = 0; i < count; i++)
		errs[i] = -ENOTCONN;
	return count;
}

static void user_transmit(void *be, struct netvsp *nic, const uint8_t *frame, uint32_t len,
			  const struct rndis_frame_info *info)
{
	(void)nic;
	(void)info;
	netvsp_slirp_send(be, frame, len); /* a drop is counted there */
}

static void user_rx_ready(void *be, struct netvsp *nic)
{
	(void)nic;
	netvsp_slirp_kick(be);
}

static void tap_transmit(void *be, struct netvsp *nic, const uint8_t *frame, uint32_t len,
			 const struct rndis_frame_info *info)
{
	(void)nic;
	(void)info;
	netvsp_tap_send(be, frame, len);
}

static void tap_rx_ready(void *be, struct netvsp *nic)
{
	(void)nic;
	netvsp_tap_kick(be);
}

static const struct netvsp_backend_ops user_ops = {
	.transmit = user_transmit,
	.rx_ready = user_rx_ready,
};
static const struct netvsp_backend_ops tap_ops = {
	.transmit = tap_transmit,
	.rx_ready = tap_rx_ready,
};

/* Stops the backend's thread: no frame for the guest after this. */
static void backend_stop(struct netvsp_nic *n)
{
	netvsp_slirp_stop(n->user);
	netvsp_tap_stop(n->tap);
}

static void backend_free(struct netvsp_nic *n)
{
	netvsp_slirp_free(n->user);
	netvsp_tap_free(n->tap);
	netvsp_loopback_free(n->lb);
}

static int backend_new(struct netvsp_nic *n, const struct netvsp_nic_opts *o,
		       struct netvsp_config *cfg, char *why, size_t len)
{
	switch (o->backend) {
	case NETVSP_BACKEND_USER: {
		struct netvsp_slirp_opts u = o->user;
		u.mtu = o->mtu;
		n->user = netvsp_slirp_new(&u, nic_rx, nic_rx_burst, n, why, len);
		cfg->backend = &user_ops;
		cfg->backend_ctx = n->user;
		return n->user ? 0 : -EINVAL;
	}
	case NETVSP_BACKEND_TAP:
		n->tap = netvsp_tap_new(o->tap, nic_rx, nic_rx_burst, n, why, len);
		cfg->backend = &tap_ops;
		cfg->backend_ctx = n->tap;
		return n->tap ? 0 : -EINVAL;
	case NETVSP_BACKEND_LOOPBACK:
	case NETVSP_BACKEND_SINK:
		n->lb = netvsp_loopback_new(o->backend == NETVSP_BACKEND_LOOPBACK);
		cfg->backend = netvsp_loopback_ops();
		cfg->backend_ctx = n->lb;
		if (!n->lb)
			snprintf(why, len, "--net: out of memory");
		return n->lb ? 0 : -ENOMEM;
	}
	return -EINVAL;
}

int netvsp_nic_add(struct vmbus_server *s, const struct guest_memory *mem, uint32_t instance,
		   const struct netvsp_nic_opts *o,
		   void (*log)(void *ctx, const char *fmt, va_list ap), void *log_ctx,
		   struct netvsp_nic **out, char *why, size_t len)
{
	struct netvsp_nic *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	struct netvsp_config cfg = {
		.mem = mem,
		.instance = instance,
		.instance_id = o->instance_id,
		.has_mac = o->has_mac,
		.mtu = o->mtu,
		.queues = o->queues,
		.max_version = o->max_version,
		/* A vCPU that signals only wakes the NIC's thread. */
		.drain_thread = true,
		.log = log,
		.log_ctx = log_ctx,
	};
	memcpy(cfg.mac, o->mac, 6);
	int err = backend_new(n, o, &cfg, why, len);
	struct netvsp *nsp = NULL;
	if (!err) {
		err = netvsp_add(s, &cfg, &nsp);
		if (err)
			snprintf(why, len, "--net: NIC %u: %s", instance, strerror(-err));
	}
	if (err) {
		backend_free(n);
		free(n);
		return err;
	}
	__atomic_store_n(&n->nsp, nsp, __ATOMIC_RELEASE);
	*out = n;
	return 0;
}

void netvsp_nic_remove(struct vmbus_server *s, struct netvsp_nic *n)
{
	if (!n)
		return;
	backend_stop(n);          /* no netvsp_receive after this */
	netvsp_remove(s, n->nsp); /* no backend call after this */
	backend_free(n);
	free(n);
}

struct netvsp *netvsp_nic_netvsp(struct netvsp_nic *n)
{
	return n->nsp;
}
