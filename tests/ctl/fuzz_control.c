/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the control socket's input path, bytes as a client sends
 * them, through the line framing, the JSON parser and the dispatcher, to
 * a fake machine and fake integration components. The first byte picks
 * how those answer (at once, held until after some time passes, refusing);
 * the rest is fed in chunks whose sizes the input also picks. Every
 * response must be one well-formed JSON line, and nothing may leak.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_fake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct fake_machine machine = {.present = {true}};
	struct fake_ic *ic = calloc(1, sizeof(*ic));
	struct sink *sink = calloc(1, sizeof(*sink));
	ic->mode = (enum fake_ic_mode)(data[0] & 3);
	/* A refusal is an errno (0 would mean "started", and it never ends). */
	ic->refuse_err = -1 - (int)(data[0] >> 2) % 63;
	ic->complete_err = data[0] & 4 ? ic->refuse_err : 0;
	struct control_core_config cfg = {
		.backend = fake_machine_backend(&machine),
		.emit = sink_emit,
		.emit_ctx = sink,
	};
	struct control_core *core = control_core_new(&cfg);
	struct control_ic_provider p = fake_ic_provider(ic);
	if (data[1] & 1)
		control_core_set_ic(core, &p);
	struct control_framer fr;
	control_framer_init(&fr);

	uint64_t now = 0;
	uint64_t client = 1;
	size_t off = 2, chunk = 1 + data[1] % 97;
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		control_framer_feed(&fr, core, client, (const char *)data + off, n, now);
		off += n;
		now += 700;
		/* Some held requests finish, some time out. */
		if (ic->held_count && (now / 700) % 3 == 0)
			control_async_done(ic->held[--ic->held_count], 0, NULL);
		control_core_poll(core, now);
		if ((now / 700) % 11 == 0)
			control_core_client_gone(core, client++);
	}
	control_core_poll(core, now + 10000000);
	control_framer_free(&fr);
	control_core_free(core);
	for (uint32_t i = 0; i < ic->held_count; i++)
		control_async_done(ic->held[i], 0, NULL);
	if (sink->malformed)
		abort();
	sink_clear(sink);
	free(sink);
	free(ic);
	return 0;
}
