/* SPDX-License-Identifier: MIT */
/*
 * A NIC as the VMM configures it: `--net [user|tap=NAME|loopback|sink]
 * [,hostfwd=tcp:HADDR:HPORT-:GPORT]...[,restrict=on|off]
 * [,mac=XX:XX:XX:XX:XX:XX][,mtu=N][,queues=N]`, parsed here, and the
 * netvsp with its backend built from it. No backend named: user.
 */
#ifndef HVKIT_NETVSP_NIC_H
#define HVKIT_NETVSP_NIC_H

#include <stdarg.h>
#include <stddef.h>

#include "netvsp.h"
#include "netvsp_backend.h"

enum netvsp_backend_kind {
	NETVSP_BACKEND_USER, /* the default: libslirp */
	NETVSP_BACKEND_TAP,
	NETVSP_BACKEND_LOOPBACK, /* frames come back */
	NETVSP_BACKEND_SINK,     /* frames are counted and dropped */
};

struct netvsp_nic_opts {
	enum netvsp_backend_kind backend;
	char tap[16]; /* IFNAMSIZ */
	bool has_mac;
	uint8_t mac[6];
	uint32_t mtu;    /* 0: default */
	uint32_t queues; /* 0: default */
	struct netvsp_slirp_opts user; /* hostfwd=, restrict= (user only) */
	uint32_t max_version; /* NVSP cap, to play an older host (tests); 0: 6.1 */
	struct hv_guid instance_id; /* the VM's (vm_identity.h); null: the default */
};

/* Parses one --net argument; on error returns -EINVAL with why filled. */
int netvsp_nic_parse(const char *arg, struct netvsp_nic_opts *out, char *why, size_t len);

struct netvsp_nic;

/* The NIC (number instance) and its backend; on error why is filled. */
int netvsp_nic_add(struct vmbus_server *s, const struct guest_memory *mem, uint32_t instance,
		   const struct netvsp_nic_opts *o,
		   void (*log)(void *ctx, const char *fmt, va_list ap), void *log_ctx,
		   struct netvsp_nic **out, char *why, size_t len);
void netvsp_nic_remove(struct vmbus_server *s, struct netvsp_nic *n);
struct netvsp *netvsp_nic_netvsp(struct netvsp_nic *n);
/* The backend's name as --net spells it ("user", "tap", ...). */
const char *netvsp_nic_backend_name(enum netvsp_backend_kind k);

#endif /* HVKIT_NETVSP_NIC_H */
