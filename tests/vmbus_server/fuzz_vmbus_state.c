/* SPDX-License-Identifier: MIT */
/*
 * vmbus_server_load facing a corrupt or hostile state record (a snapshot
 * file is input from disk, maybe from another machine). The input is a
 * record as it is (first byte odd), or mutations of a real one: a server
 * with two echo devices, one channel open, GPADLs created and half sent,
 * is saved; bytes of the record are changed as the input says, and (byte
 * 1 odd) the checksum is made right again so the content checks are what
 * stands in the way. Whatever loads must save, load into a third server
 * and save to the same bytes; nothing may crash, leak, or map memory
 * outside guest RAM.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_record.h"
#include "vmbus_device.h"
#include "vmbus_server.h"

#define VPS 2
#define RAM_PAGES 64u
#define RAM_BYTES ((size_t)RAM_PAGES * 4096)
#define RECORD_MAX (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct world {
	struct vmbus_server *s;
	struct vmbus_echo *echo[2];
	bool locked;
};

static struct guest_memory mem;
static uint8_t *ram;

static void lock(void *ctx)
{
	struct world *w = ctx;
	if (w->locked)
		abort();
	w->locked = true;
}

static void unlock(void *ctx)
{
	struct world *w = ctx;
	if (!w->locked)
		abort();
	w->locked = false;
}

static int post(void *ctx, uint32_t vp, uint32_t sint, const void *msg, uint32_t len)
{
	(void)ctx, (void)msg;
	if (vp >= VPS || sint >= 16 || len > 240)
		abort();
	return 0;
}

static int signal_guest(void *ctx, uint32_t vp, uint32_t sint, uint32_t flag)
{
	(void)ctx, (void)flag;
	if (vp >= VPS || sint >= 16)
		abort();
	return 0;
}

static uint64_t now_ns(void *ctx)
{
	(void)ctx;
	return 0;
}

static void quiet(void *ctx, const char *fmt, va_list ap)
{
	(void)ctx, (void)fmt, (void)ap;
}

static const struct vmbus_server_ops ops = {
	.lock = lock, .unlock = unlock, .post = post, .signal = signal_guest,
	.now_ns = now_ns, .log = quiet,
};

static void world_new(struct world *w)
{
	memset(w, 0, sizeof(*w));
	struct vmbus_server_config cfg = {.vp_count = VPS};
	w->s = vmbus_server_new(&cfg, &mem, &ops, w);
	for (uint32_t i = 0; i < 2; i++)
		if (!w->s || vmbus_echo_add(w->s, i + 1, &w->echo[i]))
			abort();
}

static void world_free(struct world *w)
{
	for (uint32_t i = 0; i < 2; i++)
		vmbus_echo_remove(w->s, w->echo[i]);
	vmbus_server_free(w->s);
}

static void send(struct world *w, const void *msg, uint32_t len)
{
	lock(w);
	vmbus_server_handle_message(w->s, 0, VMBUS_MESSAGE_CONNECTION_ID, msg, len);
	unlock(w);
}

/* A GPADL of one range of n pages from first; only the header's part
 * if partial. */
static void gpadl(struct world *w, uint32_t relid, uint32_t handle, uint64_t first, uint32_t n,
		  bool partial)
{
	uint8_t buf[240];
	struct vmbus_msg_gpadl_header h = {
		.header = {.msgtype = VMBUS_MSG_GPADL_HEADER},
		.child_relid = relid,
		.gpadl = handle,
		.range_buflen = (uint16_t)(sizeof(struct vmbus_gpa_range) + n * 8),
		.range_count = 1,
	};
	struct vmbus_gpa_range r = {.byte_count = n * 4096};
	uint32_t in_header = partial || n > VMBUS_GPADL_HEADER_MAX_PFNS
				     ? VMBUS_GPADL_HEADER_MAX_PFNS
				     : n;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &r, sizeof(r));
	for (uint32_t i = 0; i < in_header; i++) {
		uint64_t pfn = first + i;
		memcpy(buf + sizeof(h) + sizeof(r) + i * 8, &pfn, 8);
	}
	send(w, buf, (uint32_t)(sizeof(h) + sizeof(r) + in_header * 8));
}

/* A guest in the middle of things: connected at 5.3, echo 1 open on VP 1
 * (GPADL 1, four pages each way), GPADL 2 created on it, GPADL 3 half
 * sent on echo 2. */
static void busy(struct world *w)
{
	struct vmbus_msg_initiate_contact c = {
		.header = {.msgtype = VMBUS_MSG_INITIATE_CONTACT},
		.version_requested = VMBUS_VERSION_WIN10_V5_3,
		.msg_sint = VMBUS_MESSAGE_SINT,
	};
	lock(w);
	vmbus_server_handle_message(w->s, 0, VMBUS_MESSAGE_CONNECTION_ID_4, &c, sizeof(c));
	unlock(w);
	struct vmbus_msg_header request = {.msgtype = VMBUS_MSG_REQUESTOFFERS};
	send(w, &request, sizeof(request));
	gpadl(w, 1, 1, 8, 8, false);
	struct vmbus_msg_open_channel open = {
		.header = {.msgtype = VMBUS_MSG_OPENCHANNEL},
		.child_relid = 1,
		.open_id = 1,
		.ring_gpadl = 1,
		.target_vp = 1,
		.downstream_ring_page_offset = 4,
	};
	send(w, &open, sizeof(open));
	gpadl(w, 1, 2, 20, 2, false);
	gpadl(w, 2, 3, 24, 30, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rec[RECORD_MAX], again[RECORD_MAX], third[RECORD_MAX];
	if (!ram) {
		/* Guest RAM lives across runs: file-backed, as rings need. */
		int fd = memfd_create("fuzz-vmbus-state", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, (off_t)RAM_BYTES))
			abort();
		ram = mmap(NULL, RAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (ram == MAP_FAILED || guest_memory_add_file(&mem, 0, RAM_BYTES, ram, fd, 0))
			abort();
	}
	memset(ram, 0, RAM_BYTES);
	struct world a, b, c;
	size_t len = 0;
	if (fuzz_record_is_raw(data, size)) {
		len = fuzz_record_raw(data, size, rec, sizeof(rec));
	} else {
		world_new(&a);
		busy(&a);
		if (vmbus_server_save(a.s, rec, sizeof(rec), &len))
			abort();
		world_free(&a);
		len = fuzz_record_mutate(data, size, rec, len);
	}
	world_new(&b);
	int err = vmbus_server_load(b.s, rec, len);
	if (err && size <= 1 && !fuzz_record_is_raw(data, size))
		abort(); /* the real record, untouched, must load */
	if (!err) {
		size_t n = 0, m = 0;
		if (vmbus_server_save(b.s, again, sizeof(again), &n))
			abort();
		world_new(&c);
		if (vmbus_server_load(c.s, again, n) ||
		    vmbus_server_save(c.s, third, sizeof(third), &m) || m != n ||
		    memcmp(again, third, n))
			abort(); /* what loads must round-trip */
		world_free(&c);
	}
	world_free(&b);
	return 0;
}
