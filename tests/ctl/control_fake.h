/* SPDX-License-Identifier: MIT */
/*
 * A fake machine and fake integration components for the control core's
 * tests and fuzz target, and a sink that checks and keeps every response.
 */
#ifndef HVKIT_TEST_CONTROL_FAKE_H
#define HVKIT_TEST_CONTROL_FAKE_H

#include "control.h"

#define FAKE_DEVICES 4
#define FAKE_HELD 512

struct fake_machine {
	bool present[FAKE_DEVICES]; /* echo instances 0..3 */
	bool disk[FAKE_DEVICES];    /* LUNs 0..3 */
	bool disk_read_only[FAKE_DEVICES];
	bool storage_removed;       /* storage-remove seen with disks present */
	uint32_t status_calls;
	bool nic[FAKE_DEVICES];     /* NICs 0..3: net-add takes the first free */
	bool link_down[FAKE_DEVICES];
};

enum fake_ic_mode {
	FAKE_IC_ANSWER_NOW,  /* complete inside the call */
	FAKE_IC_HOLD,        /* keep it; the test completes it */
	FAKE_IC_REFUSE,      /* return refuse_err */
	FAKE_IC_GUEST_SAYS,  /* complete at once with complete_err */
};

struct fake_ic {
	enum fake_ic_mode mode;
	int refuse_err, complete_err;
	uint32_t calls;
	struct control_async *held[FAKE_HELD];
	uint32_t held_count;
	/* The last call's arguments. */
	char last[256];
};

struct control_backend fake_machine_backend(struct fake_machine *m);
/* Every operation set. */
struct control_ic_provider fake_ic_provider(struct fake_ic *ic);

/* Responses, parsed; each must be one JSON object with id and ok. */
#define SINK_MAX 1024
struct sink {
	json_t *msgs[SINK_MAX];
	uint64_t clients[SINK_MAX];
	uint32_t count;
	uint32_t malformed; /* lines that were not a well-formed response */
};

void sink_emit(void *ctx, uint64_t client, const char *line, size_t len);
void sink_clear(struct sink *s);

#endif
