/* SPDX-License-Identifier: MIT */
/*
 * The IC host devices with a scripted guest on one service's channel
 * (ic_host_fixture.c). Call ic_host functions between ic_env_lock and
 * ic_env_unlock, as the machine's device lock would be held.
 */
#ifndef HVKIT_TESTS_IC_HOST_FIXTURE_H
#define HVKIT_TESTS_IC_HOST_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "ic_host.h"
#include "ic_msg.h"
#include "vmbus_fixture.h"

struct ic_env {
	struct vfix *f;
	struct ic_host *h;
	struct vf_chan c;
	uint8_t buf[IC_MAX_PACKET];
	uint32_t len;   /* of the last packet read */
	uint64_t trans; /* its transaction id */
	struct ic_host_config cfg;
};

/* A server with the IC devices; the guest opens service svc and takes
 * the host's negotiation request (not answered yet). */
void ic_env_open(struct ic_env *e, enum ic_service svc, uint32_t host_max);
/* Answers the negotiation taken as Linux would, capped at guest_max. */
void ic_env_answer_negotiation(struct ic_env *e, enum ic_service svc, uint32_t guest_max);
/* Both: the service ready. */
void ic_env_new(struct ic_env *e, enum ic_service svc, uint32_t guest_max, uint32_t host_max);
void ic_env_free(struct ic_env *e);
/* A snapshot and restore: the server's state saved, the host and the
 * server dropped without a word to the guest, new ones on the same guest
 * memory loaded from it. The guest's channel goes on as it was. */
void ic_env_restore(struct ic_env *e);

/* Reads the host's next packet on the channel into buf. */
void ic_env_take(struct ic_env *e);
bool ic_env_nothing_pending(struct ic_env *e);
/* Sends buf back as the answer (status), as Linux's util drivers do. */
void ic_env_reply(struct ic_env *e, uint32_t status);

/* The device lock (the fixture's ctx is e->f). */
void ic_env_lock(void *ctx);
void ic_env_unlock(void *ctx);

#endif
