/* SPDX-License-Identifier: MIT */
/*
 * The VMBus server facing a hostile guest: a server with two echo devices
 * and a small guest RAM (a memfd, so rings really get mapped), then a
 * sequence of operations decoded from the input:
 *  - raw messages of any size on connection 1, 4 or any other;
 *  - Linux-shaped messages with fuzzed fields (contact, offers, GPADL
 *    header and bodies, open, close, teardown, release, modify, unload,
 *    hv_sock connect), so the fuzzer reaches deep states quickly;
 *  - signals on channel connections (or any connection);
 *  - guest RAM scribbles, ring headers reset, and in-band packets written
 *    and completions read through lib/ring at any page, so rings hold
 *    anything from well-formed traffic to garbage;
 *  - echo devices hot added and removed, and the clock moved.
 * Nothing may crash, leak or touch memory outside guest RAM; every op the
 * server calls must respect the locking contract and name a real VP, SINT
 * and relid; the state the server reports must stay consistent.
 *
 * Input: byte 0 configuration (bits 1:0 VPs - 1, bit 2 scrambled relids,
 * bit 3 a 64-page GPADL limit, bit 4 a spurious limit of 4, bits 7:5 the
 * highest version), then operations (an opcode byte, then its arguments;
 * a short input reads as zeros).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ring_buffer.h"
#include "vmbus_device.h"
#include "vmbus_server.h"

#define RAM_PAGES 96u
#define RAM_BYTES ((size_t)RAM_PAGES * 4096)
#define MAX_OPS 2048
#define ECHO_SLOTS 4
#define MAX_CONNS 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *d;
	size_t n, i;
};

static uint8_t u8(struct input *in)
{
	return in->i < in->n ? in->d[in->i++] : 0;
}

/* Little-endian; one read per statement, as operands are unsequenced. */
static uint16_t u16(struct input *in)
{
	uint16_t lo = u8(in);
	return (uint16_t)(lo | u8(in) << 8);
}

static uint32_t u32(struct input *in)
{
	uint32_t lo = u16(in);
	return lo | (uint32_t)u16(in) << 16;
}

struct run {
	struct vmbus_server_config cfg;
	struct vmbus_server *s;
	struct guest_memory mem;
	bool locked;
	uint64_t now;
	uint64_t sink;
	uint32_t conns[MAX_CONNS];
	uint32_t n_conns;
	struct vmbus_echo *echo[ECHO_SLOTS];
};

/* Guest RAM lives across runs (creating a memfd per input is slow); every
 * run starts from zeroed RAM. */
static int ram_fd = -1;
static uint8_t *ram;

static void ram_init(void)
{
	if (ram)
		return;
	ram_fd = memfd_create("fuzz-vmbus-ram", MFD_CLOEXEC);
	if (ram_fd < 0 || ftruncate(ram_fd, (off_t)RAM_BYTES) != 0)
		abort();
	ram = mmap(NULL, RAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
	if (ram == MAP_FAILED)
		abort();
}

/* ---- the glue: checks everything the server asks of it ---- */

static void op_lock(void *ctx)
{
	struct run *r = ctx;
	if (r->locked)
		abort();
	r->locked = true;
}

static void op_unlock(void *ctx)
{
	struct run *r = ctx;
	if (!r->locked)
		abort();
	r->locked = false;
}

static int op_post(void *ctx, uint32_t vp, uint32_t sint, const void *msg, uint32_t len)
{
	struct run *r = ctx;
	if (!r->locked || vp >= r->cfg.vp_count || sint >= 16 || len < 8 || len > 240)
		abort();
	uint32_t type;
	memcpy(&type, msg, sizeof(type));
	r->sink += type + len;
	return 0;
}

static int op_signal(void *ctx, uint32_t vp, uint32_t sint, uint32_t flag)
{
	struct run *r = ctx;
	if (!r->locked || vp >= r->cfg.vp_count || sint != VMBUS_MESSAGE_SINT || flag < 1 ||
	    flag > VMBUS_RELID_MAX)
		abort();
	return 0;
}

static int conn_find(const struct run *r, uint32_t id)
{
	for (uint32_t i = 0; i < r->n_conns; i++)
		if (r->conns[i] == id)
			return (int)i;
	return -1;
}

static int op_connection_add(void *ctx, uint32_t id)
{
	struct run *r = ctx;
	if (!r->locked || conn_find(r, id) >= 0 || r->n_conns == MAX_CONNS ||
	    id <= VMBUS_SERVER_CHANNEL_CONNECTION_BASE ||
	    id > VMBUS_SERVER_CHANNEL_CONNECTION_BASE + VMBUS_RELID_MAX)
		abort();
	r->conns[r->n_conns++] = id;
	return 0;
}

static void op_connection_remove(void *ctx, uint32_t id)
{
	struct run *r = ctx;
	int i = conn_find(r, id);
	if (!r->locked || i < 0)
		abort();
	r->conns[i] = r->conns[--r->n_conns];
}

static uint64_t op_now(void *ctx)
{
	return ((struct run *)ctx)->now;
}

__attribute__((format(printf, 2, 0)))
static void op_log(void *ctx, const char *fmt, va_list ap)
{
	struct run *r = ctx;
	char line[256];
	r->sink += (uint64_t)vsnprintf(line, sizeof(line), fmt, ap);
}

static const struct vmbus_server_ops ops = {
	op_lock, op_unlock, op_post, op_signal, op_connection_add, op_connection_remove,
	op_now, op_log,
};

/* ---- consistency ---- */

struct walk {
	uint32_t n, open;
	uint32_t epoch;
	uint32_t *seen; /* seen[relid] == epoch: met in this walk */
};

static void walk_cb(void *arg, const struct vmbus_server_channel_info *info)
{
	struct walk *w = arg;
	w->n++;
	if (info->state == VMBUS_CHANNEL_UNOFFERED) {
		if (info->relid != 0)
			abort();
		return;
	}
	if (info->relid < 1 || info->relid > VMBUS_RELID_MAX || w->seen[info->relid] == w->epoch ||
	    info->connection_id != VMBUS_SERVER_CHANNEL_CONNECTION_BASE + info->relid)
		abort();
	w->seen[info->relid] = w->epoch;
	if (info->state == VMBUS_CHANNEL_OPEN)
		w->open++;
}

static void check(struct run *r)
{
	static uint32_t seen[VMBUS_RELID_MAX + 1], epoch;
	if (++epoch == 0) {
		memset(seen, 0, sizeof(seen));
		epoch = 1;
	}
	struct walk w = {0, 0, epoch, seen};
	struct vmbus_server_stats st;
	vmbus_server_for_each_channel(r->s, walk_cb, &w);
	vmbus_server_get_stats(r->s, &st);
	if (r->locked || w.n != st.channels || w.open != r->n_conns ||
	    w.n > VMBUS_RELID_MAX ||
	    (st.connection == VMBUS_SERVER_DISCONNECTED && (st.gpadls || w.open)) ||
	    st.gpadl_bytes > r->cfg.gpadl_limit ||
	    (st.gpadl_bytes && !st.gpadls))
		abort();
}

/* ---- the guest ---- */

static uint16_t send_msg(struct run *r, uint32_t conn, const void *msg, uint32_t len)
{
	op_lock(r);
	uint16_t status = vmbus_server_handle_message(r->s, 0, conn, msg, len);
	op_unlock(r);
	return status;
}

static void send_signal(struct run *r, uint32_t conn)
{
	op_lock(r);
	vmbus_server_handle_signal(r->s, 0, conn);
	op_unlock(r);
}

static const uint32_t versions[] = {
	VMBUS_VERSION_WIN10_V5_3, VMBUS_VERSION_WIN10_V5_2, VMBUS_VERSION_WIN10_V5_1,
	VMBUS_VERSION_WIN10_V5,   VMBUS_VERSION_WIN10_V4_1, VMBUS_VERSION_WIN10,
	VMBUS_VERSION_WIN8_1,     VMBUS_VERSION_WIN8,       VMBUS_VERSION_WIN7,
	VMBUS_MAKE_VERSION(6, 0),
};

static void op_raw(struct run *r, struct input *in)
{
	uint8_t buf[256] = {0};
	uint8_t sel = u8(in);
	uint32_t conn = sel % 3 == 0 ? 1 : sel % 3 == 1 ? 4 : u32(in);
	uint32_t len = u8(in);
	if (len > 240 && (sel & 0x80) == 0)
		len = 240;
	for (uint32_t i = 0; i < len && i < sizeof(buf); i++)
		buf[i] = u8(in);
	send_msg(r, conn, buf, len);
}

static void op_contact(struct run *r, struct input *in)
{
	uint32_t v = versions[u8(in) % (sizeof(versions) / sizeof(versions[0]))];
	uint8_t flags = u8(in);
	uint8_t sint = u8(in);
	struct vmbus_msg_initiate_contact m = {
		.header = {VMBUS_MSG_INITIATE_CONTACT, 0},
		.version_requested = v,
	};
	m.target_vcpu = u8(in) % 6;
	bool v5 = v >= VMBUS_VERSION_WIN10_V5;
	if (v5)
		m.msg_sint = sint < 200 ? VMBUS_MESSAGE_SINT : sint % 20;
	else
		m.interrupt_page = 0x1000;
	uint32_t conn = v5 ? 4 : 1;
	if (flags & 1)
		conn = 5 - conn; /* the wrong one */
	send_msg(r, conn, &m, sizeof(m));
}

static void op_header_only(struct run *r, uint32_t type)
{
	struct vmbus_msg_header h = {type, 0};
	send_msg(r, 1, &h, sizeof(h));
}

/* A GPADL as channel.c create_gpadl_header sends it, or broken on purpose. */
static void op_gpadl(struct run *r, struct input *in)
{
	uint32_t relid = u8(in) % 8;
	uint32_t handle = u8(in) % 16;
	uint32_t pages = u8(in) % 64 + 1;
	uint32_t first = u8(in);
	uint8_t flags = u8(in);
	uint64_t pfns[64];
	uint8_t buf[240];

	for (uint32_t i = 0; i < pages; i++)
		pfns[i] = (flags & 1) ? first + pages - 1 - i : first + i;
	struct vmbus_msg_gpadl_header h = {
		.header = {VMBUS_MSG_GPADL_HEADER, 0},
		.child_relid = relid,
		.gpadl = handle,
		.range_buflen = (uint16_t)(8 + pages * 8),
		.range_count = 1,
	};
	struct vmbus_gpa_range range = {pages * 4096, 0};
	uint32_t n = pages < VMBUS_GPADL_HEADER_MAX_PFNS ? pages : VMBUS_GPADL_HEADER_MAX_PFNS;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &range, sizeof(range));
	memcpy(buf + 28, pfns, n * 8);
	send_msg(r, 1, buf, 28 + n * 8);
	if (flags & 2)
		return; /* the bodies never come */
	uint32_t done = n;
	while (done < pages || (flags & 4)) {
		uint32_t k = pages - done;
		if (k > VMBUS_GPADL_BODY_MAX_PFNS)
			k = VMBUS_GPADL_BODY_MAX_PFNS;
		if (done >= pages)
			k = 1; /* one PFN too many */
		struct vmbus_msg_gpadl_body b = {{VMBUS_MSG_GPADL_BODY, 0}, 0, handle};
		memcpy(buf, &b, sizeof(b));
		memcpy(buf + sizeof(b), pfns + (done < pages ? done : 0), k * 8);
		send_msg(r, 1, buf, 16 + k * 8);
		if (done >= pages)
			break;
		done += k;
	}
}

static void op_open(struct run *r, struct input *in)
{
	/* One argument per statement: the order initializers are evaluated
	 * in is unspecified. */
	struct vmbus_msg_open_channel m = {.header = {VMBUS_MSG_OPENCHANNEL, 0}};
	m.child_relid = u8(in) % 8;
	m.ring_gpadl = u8(in) % 16;
	m.downstream_ring_page_offset = u8(in) % 66;
	m.target_vp = u8(in) % 6;
	m.open_id = m.child_relid;
	m.user_data[0] = u8(in);
	send_msg(r, 1, &m, sizeof(m));
}

static void op_relid_msg(struct run *r, struct input *in, uint32_t type)
{
	struct vmbus_msg_close_channel m = {{type, 0}, u8(in) % 8};
	send_msg(r, 1, &m, sizeof(m));
}

static void op_teardown(struct run *r, struct input *in)
{
	struct vmbus_msg_gpadl_teardown m = {{VMBUS_MSG_GPADL_TEARDOWN, 0}, 0, 0};
	m.child_relid = u8(in) % 8;
	m.gpadl = u8(in) % 16;
	send_msg(r, 1, &m, sizeof(m));
}

static void op_modify(struct run *r, struct input *in)
{
	struct vmbus_msg_modify_channel m = {{VMBUS_MSG_MODIFYCHANNEL, 0}, 0, 0};
	m.child_relid = u8(in) % 8;
	m.target_vp = u8(in) % 6;
	send_msg(r, 1, &m, sizeof(m));
}

static void op_tl(struct run *r, struct input *in)
{
	struct vmbus_msg_tl_connect_request m = {.header = {VMBUS_MSG_TL_CONNECT_REQUEST, 0}};
	m.host_service_id.b[0] = u8(in);
	send_msg(r, 1, &m, sizeof(m));
}

static void op_signal_op(struct run *r, struct input *in)
{
	uint8_t relid = u8(in);
	uint32_t conn = relid == 255 ? u32(in) : VMBUS_SERVER_CHANNEL_CONNECTION_BASE + relid % 10;
	send_signal(r, conn);
}

static void op_ram_write(struct run *r, struct input *in)
{
	(void)r;
	uint32_t page = u8(in) % RAM_PAGES;
	uint32_t off = u16(in) % 4096;
	uint32_t len = u8(in);
	for (uint32_t i = 0; i < len; i++) {
		size_t at = (size_t)page * 4096 + off + i;
		ram[at % RAM_BYTES] = u8(in);
	}
}

/* A ring as the guest sees it at [page, page + pages), unmirrored. */
static bool guest_ring(struct input *in, struct vmbus_ring_mem *mem)
{
	uint32_t page = u8(in) % RAM_PAGES;
	uint32_t pages = u8(in) % 16 + 2;
	if (page + pages > RAM_PAGES)
		return false;
	return vmbus_ring_mem_init(mem, ram + (size_t)page * 4096, (size_t)pages * 4096,
				   false) == 0;
}

static void op_guest_send(struct run *r, struct input *in)
{
	struct vmbus_ring_mem mem;
	struct vmbus_ring_writer w;
	uint8_t payload[2048] = {0};
	bool ok = guest_ring(in, &mem);
	uint32_t len = u16(in) % sizeof(payload);
	uint8_t flags = u8(in);
	uint32_t relid = u8(in) % 10;

	if (flags & 2) {
		uint32_t req[2] = {VMBUS_ECHO_SUBCHANNELS, flags >> 4};
		memcpy(payload, req, sizeof(req));
		if (len < sizeof(req))
			len = sizeof(req);
	} else {
		for (uint32_t i = 0; i < len && i < 16; i++)
			payload[i] = u8(in);
	}
	if (ok && vmbus_ring_writer_attach(&w, &mem) == 0) {
		struct vmbus_ring_iov iov = {payload, len};
		if (vmbus_ring_put_inband(&w, flags, (flags & 1) ? VMBUS_PKT_FLAG_COMPLETION_REQUESTED : 0,
					  &iov, 1, NULL) == 0 &&
		    !vmbus_ring_publish(&w) && !(flags & 4))
			return; /* the ring engine says no signal is due */
	}
	send_signal(r, VMBUS_SERVER_CHANNEL_CONNECTION_BASE + relid);
}

static void op_guest_recv(struct run *r, struct input *in)
{
	struct vmbus_ring_mem mem;
	struct vmbus_ring_reader rd;
	static uint8_t buf[64 * 1024];
	uint32_t relid = u8(in) % 10;
	if (!guest_ring(in, &mem) || vmbus_ring_reader_attach(&rd, &mem) != 0)
		return;
	struct vmbus_packet pkt;
	for (int i = 0; i < 64 && vmbus_ring_recv(&rd, buf, sizeof(buf), &pkt) == 0; i++)
		r->sink += pkt.trans_id + pkt.data_len;
	if (vmbus_ring_commit(&rd))
		send_signal(r, VMBUS_SERVER_CHANNEL_CONNECTION_BASE + relid);
}

static void op_ring_reset(struct input *in)
{
	struct vmbus_ring_mem mem;
	if (guest_ring(in, &mem))
		vmbus_ring_mem_reset(&mem);
}

static void op_hot_add(struct run *r, struct input *in)
{
	uint32_t slot = u8(in) % ECHO_SLOTS;
	if (!r->echo[slot] && vmbus_echo_add(r->s, slot + 1, &r->echo[slot]) != 0)
		r->echo[slot] = NULL;
}

static void op_hot_remove(struct run *r, struct input *in)
{
	uint32_t slot = u8(in) % ECHO_SLOTS;
	vmbus_echo_remove(r->s, r->echo[slot]);
	r->echo[slot] = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size, 0};
	static struct run run;
	struct run *r = &run;

	ram_init();
	memset(ram, 0, RAM_BYTES);
	memset(r, 0, sizeof(*r));
	uint8_t cfg = u8(&in);
	r->cfg.vp_count = (cfg & 3) + 1;
	r->cfg.scramble_relids = cfg & 4;
	r->cfg.scramble_seed = size;
	r->cfg.gpadl_limit = (cfg & 8) ? 64 * 4096 : 0;
	r->cfg.spurious_signal_limit = (cfg & 16) ? 4 : 0;
	r->cfg.max_version = (cfg >> 5) ? versions[(cfg >> 5) - 1] : 0;
	if (guest_memory_add_file(&r->mem, 0, RAM_BYTES, ram, ram_fd, 0) != 0)
		abort();
	r->s = vmbus_server_new(&r->cfg, &r->mem, &ops, r);
	if (!r->s)
		abort();
	if (!r->cfg.gpadl_limit)
		r->cfg.gpadl_limit = VMBUS_SERVER_DEFAULT_GPADL_LIMIT;
	for (uint32_t i = 0; i < 2; i++)
		if (vmbus_echo_add(r->s, i + 1, &r->echo[i]) != 0)
			abort();

	for (int n = 0; n < MAX_OPS && in.i < in.n; n++) {
		switch (u8(&in) % 20) {
		case 0:
		case 1:
			op_raw(r, &in);
			break;
		case 2:
			op_contact(r, &in);
			break;
		case 3:
			op_header_only(r, VMBUS_MSG_REQUESTOFFERS);
			break;
		case 4:
			op_gpadl(r, &in);
			break;
		case 5:
			op_open(r, &in);
			break;
		case 6:
			op_relid_msg(r, &in, VMBUS_MSG_CLOSECHANNEL);
			break;
		case 7:
			op_teardown(r, &in);
			break;
		case 8:
			op_relid_msg(r, &in, VMBUS_MSG_RELID_RELEASED);
			break;
		case 9:
			op_modify(r, &in);
			break;
		case 10:
			op_header_only(r, VMBUS_MSG_UNLOAD);
			break;
		case 11:
			op_tl(r, &in);
			break;
		case 12:
			op_signal_op(r, &in);
			break;
		case 13:
			op_ram_write(r, &in);
			break;
		case 14:
			op_guest_send(r, &in);
			break;
		case 15:
			op_guest_recv(r, &in);
			break;
		case 16:
			op_ring_reset(&in);
			break;
		case 17:
			op_hot_add(r, &in);
			break;
		case 18:
			op_hot_remove(r, &in);
			break;
		case 19:
			r->now += (uint64_t)u16(&in) * 1000;
			break;
		}
		check(r);
	}
	for (uint32_t i = 0; i < ECHO_SLOTS; i++)
		vmbus_echo_remove(r->s, r->echo[i]);
	vmbus_server_free(r->s);
	if (r->n_conns || r->locked)
		abort();
	return 0;
}
