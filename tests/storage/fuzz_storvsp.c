/* SPDX-License-Identifier: MIT */
/*
 * storvsp facing a hostile storvsc. Each run builds a VMBus server with one
 * controller (one in-memory disk, one worker), connects a guest and opens
 * the primary channel as Linux does, then plays operations decoded from the
 * input on the channel's rings:
 *  0 a vstor_packet in-band: fuzzed bytes, fuzzed length (to 80 bytes),
 *    completion requested or not;
 *  1 a GPA-direct packet: fuzzed range (offset, byte count, up to 8 PFNs
 *    near the data area or anywhere) and a fuzzed vstor_packet;
 *  2 a well-formed SRB with a fuzzed CDB over a valid buffer;
 *  3 the init sequence (so SRBs reach the disk), with a fuzzed version;
 *  4 read every completion there is (and check its framing);
 *  5 a packet of another type (completions, garbage types);
 *  6 a guest signal; 7 scribble over the data buffer pages.
 * Nothing may crash, leak, touch memory outside guest RAM or hang; every
 * completion must carry COMPLETE_IO in a 48- or 64-byte vstor_packet.
 * Byte 0 configures the run (bit 0: a read-only disk).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_input.h"
#include "hvkit/proto/storvsc.h"
#include "ring_buffer.h"
#include "storvsp.h"

#define RAM_PAGES 64u
#define RAM_BYTES ((size_t)RAM_PAGES * 4096)
#define RING_PFN 8u   /* 4 + 4 ring pages */
#define RING_PAGES 4u
#define DATA_PFN 32u  /* the guest's data buffers */
#define DATA_PAGES 16u
#define MAX_OPS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Guest RAM lives across runs; each run zeroes it. */
static int ram_fd = -1;
static uint8_t *ram;

struct run {
	pthread_mutex_t lock;
	struct guest_memory mem;
	struct vmbus_server *s;
	struct storvsp *sv;
	uint32_t relid, conn;
	struct vmbus_ring_writer w;
	struct vmbus_ring_reader r;
	uint64_t trans;
};

static void g_lock(void *ctx)
{
	pthread_mutex_lock(&((struct run *)ctx)->lock);
}

static void g_unlock(void *ctx)
{
	pthread_mutex_unlock(&((struct run *)ctx)->lock);
}

/* The server's messages: remember the relid of the offer and that the open
 * worked; the rest is not needed. */
static int g_post(void *ctx, uint32_t vp, uint32_t sint, const void *msg, uint32_t len)
{
	(void)vp;
	(void)sint;
	struct run *r = ctx;
	struct vmbus_msg_header h;
	if (len < sizeof(h))
		abort();
	memcpy(&h, msg, sizeof(h));
	if (h.msgtype == VMBUS_MSG_OFFERCHANNEL && !r->relid) {
		struct vmbus_msg_offer_channel o;
		memcpy(&o, msg, sizeof(o));
		r->relid = o.child_relid;
		r->conn = o.connection_id;
	}
	return 0;
}

static int g_signal(void *ctx, uint32_t vp, uint32_t sint, uint32_t flag)
{
	(void)ctx;
	(void)vp;
	(void)sint;
	(void)flag;
	return 0;
}

static int g_conn_add(void *ctx, uint32_t id)
{
	(void)ctx;
	(void)id;
	return 0;
}

static void g_conn_remove(void *ctx, uint32_t id)
{
	(void)ctx;
	(void)id;
}

static uint64_t g_now(void *ctx)
{
	(void)ctx;
	return 0;
}

static void g_log(void *ctx, const char *fmt, va_list ap)
{
	(void)ctx;
	(void)fmt;
	(void)ap;
}

static const struct vmbus_server_ops glue = {
	.lock = g_lock,
	.unlock = g_unlock,
	.post = g_post,
	.signal = g_signal,
	.connection_add = g_conn_add,
	.connection_remove = g_conn_remove,
	.now_ns = g_now,
	.log = g_log,
};

static void msg(struct run *r, const void *m, uint32_t len)
{
	g_lock(r);
	vmbus_server_handle_message(r->s, 0, VMBUS_MESSAGE_CONNECTION_ID, m, len);
	g_unlock(r);
}

static void guest_signal(struct run *r)
{
	g_lock(r);
	vmbus_server_handle_signal(r->s, 0, r->conn);
	g_unlock(r);
}

/* Connects and opens the controller's primary channel as Linux does. */
static bool guest_open(struct run *r)
{
	struct vmbus_msg_initiate_contact c = {
		.header = {.msgtype = VMBUS_MSG_INITIATE_CONTACT},
		.version_requested = VMBUS_VERSION_WIN10_V5_3,
		.msg_sint = VMBUS_MESSAGE_SINT,
	};
	g_lock(r);
	vmbus_server_handle_message(r->s, 0, VMBUS_MESSAGE_CONNECTION_ID_4, &c, sizeof(c));
	g_unlock(r);
	struct vmbus_msg_header h = {.msgtype = VMBUS_MSG_REQUESTOFFERS};
	msg(r, &h, sizeof(h));
	if (!r->relid)
		return false;

	uint8_t buf[240];
	struct vmbus_msg_gpadl_header gh = {
		.header = {.msgtype = VMBUS_MSG_GPADL_HEADER},
		.child_relid = r->relid,
		.gpadl = 1,
		.range_buflen = (uint16_t)(sizeof(struct vmbus_gpa_range) + 8 * 8),
		.range_count = 1,
	};
	struct vmbus_gpa_range range = {.byte_count = 8 * 4096, .byte_offset = 0};
	uint64_t pfns[8];
	for (uint32_t i = 0; i < 8; i++)
		pfns[i] = RING_PFN + i;
	memcpy(buf, &gh, sizeof(gh));
	memcpy(buf + sizeof(gh), &range, sizeof(range));
	memcpy(buf + sizeof(gh) + sizeof(range), pfns, sizeof(pfns));
	struct vmbus_ring_mem send, recv;
	if (vmbus_ring_mem_init(&send, ram + RING_PFN * 4096, RING_PAGES * 4096, false) ||
	    vmbus_ring_mem_init(&recv, ram + (RING_PFN + RING_PAGES) * 4096, RING_PAGES * 4096,
				false))
		abort();
	vmbus_ring_mem_reset(&send);
	vmbus_ring_mem_reset(&recv);
	if (vmbus_ring_writer_attach(&r->w, &send) || vmbus_ring_reader_attach(&r->r, &recv))
		abort();
	msg(r, buf, (uint32_t)(sizeof(gh) + sizeof(range) + sizeof(pfns)));
	struct vmbus_msg_open_channel o = {
		.header = {.msgtype = VMBUS_MSG_OPENCHANNEL},
		.child_relid = r->relid,
		.open_id = r->relid,
		.ring_gpadl = 1,
		.downstream_ring_page_offset = RING_PAGES,
	};
	msg(r, &o, sizeof(o));
	return true;
}

static void publish(struct run *r)
{
	if (vmbus_ring_publish(&r->w))
		guest_signal(r);
}

static void send_inband(struct run *r, const void *p, uint32_t len, bool completion)
{
	struct vmbus_ring_iov iov = {p, len};
	if (vmbus_ring_put_inband(&r->w, r->trans++,
				  completion ? VMBUS_PKT_FLAG_COMPLETION_REQUESTED : 0, &iov,
				  len ? 1 : 0, NULL) == 0)
		publish(r);
}

static void read_completions(struct run *r)
{
	uint8_t buf[4096];
	struct vmbus_packet pkt;
	while (vmbus_ring_recv(&r->r, buf, sizeof(buf), &pkt) == 0) {
		uint32_t op;
		if (pkt.type != VMBUS_PKT_COMP ||
		    (pkt.data_len != sizeof(struct vstor_packet) &&
		     pkt.data_len != VSTOR_PACKET_SIZE_PRE_WIN8))
			abort();
		memcpy(&op, pkt.data, sizeof(op));
		if (op != VSTOR_OPERATION_COMPLETE_IO)
			abort();
	}
	if (vmbus_ring_commit(&r->r))
		guest_signal(r);
}

static void op_gpa(struct run *r, struct fuzz_input *in)
{
	struct vstor_packet p;
	uint8_t b[sizeof(p)];
	for (size_t i = 0; i < sizeof(b); i++)
		b[i] = fuzz_u8(in);
	memcpy(&p, b, sizeof(p));
	if (fuzz_u8(in) & 1)
		p.operation = VSTOR_OPERATION_EXECUTE_SRB;
	uint32_t off = fuzz_u16(in) & 0xfff, count = fuzz_u32(in) & 0x3ffff;
	uint8_t n = fuzz_u8(in) % 9;
	uint64_t pfns[8];
	for (uint8_t i = 0; i < n; i++) {
		uint8_t sel = fuzz_u8(in);
		pfns[i] = sel & 0x80 ? (uint64_t)fuzz_u32(in) << (sel & 0x1f) : DATA_PFN + (sel & 0x1f);
	}
	if (!count)
		count = 1;
	uint32_t need = (off + count + 4095) / 4096;
	if (need > n)
		return; /* the ring engine cannot frame it */
	struct vmbus_gpa_range_out range = {count, off, pfns};
	if (vmbus_ring_put_gpa_direct(&r->w, r->trans++, &range, 1, &p,
				      fuzz_u8(in) & 1 ? VSTOR_PACKET_SIZE_PRE_WIN8 : sizeof(p),
				      NULL) == 0)
		publish(r);
}

static void op_srb(struct run *r, struct fuzz_input *in)
{
	struct vstor_packet p = {.operation = VSTOR_OPERATION_EXECUTE_SRB,
				 .flags = VSTOR_REQUEST_COMPLETION_FLAG};
	p.vm_srb.cdb_length = (uint8_t)(fuzz_u8(in) % 17);
	p.vm_srb.lun = fuzz_u8(in) & 3;
	p.vm_srb.data_in = fuzz_u8(in) % 3;
	for (int i = 0; i < 16; i++)
		p.vm_srb.cdb[i] = fuzz_u8(in);
	uint32_t pages = fuzz_u8(in) % (DATA_PAGES + 1);
	if (!pages) {
		send_inband(r, &p, sizeof(p), true);
		return;
	}
	uint64_t pfns[DATA_PAGES];
	for (uint32_t i = 0; i < pages; i++)
		pfns[i] = DATA_PFN + i;
	p.vm_srb.data_transfer_length = pages * 4096;
	struct vmbus_gpa_range_out range = {pages * 4096, 0, pfns};
	if (vmbus_ring_put_gpa_direct(&r->w, r->trans++, &range, 1, &p, sizeof(p), NULL) == 0)
		publish(r);
}

static void op_init(struct run *r, struct fuzz_input *in)
{
	static const uint16_t v[] = {VSTOR_PROTO_VERSION_WIN10, VSTOR_PROTO_VERSION_WIN8,
				     VSTOR_PROTO_VERSION_WIN7, 0x0999};
	uint8_t sel = fuzz_u8(in);
	uint32_t len = v[sel & 3] < VSTOR_PROTO_VERSION_WIN8 ? VSTOR_PACKET_SIZE_PRE_WIN8
							      : sizeof(struct vstor_packet);
	const uint32_t ops[] = {VSTOR_OPERATION_BEGIN_INITIALIZATION,
				VSTOR_OPERATION_QUERY_PROTOCOL_VERSION,
				VSTOR_OPERATION_QUERY_PROPERTIES,
				VSTOR_OPERATION_END_INITIALIZATION,
				VSTOR_OPERATION_CREATE_SUB_CHANNELS};
	for (size_t i = 0; i < (sel & 4 ? 5u : 4u); i++) {
		struct vstor_packet p = {.operation = ops[i], .flags = 1};
		p.version.major_minor = v[sel & 3];
		if (ops[i] == VSTOR_OPERATION_CREATE_SUB_CHANNELS)
			p.sub_channel_count = (uint16_t)(sel >> 4);
		send_inband(r, &p, len, true);
		read_completions(r);
	}
}

static void run_ops(struct run *r, struct fuzz_input *in)
{
	for (int n = 0; n < MAX_OPS && in->i < in->n; n++) {
		switch (fuzz_u8(in) & 7) {
		case 0: {
			uint8_t p[80];
			uint32_t len = fuzz_u8(in) % (sizeof(p) + 1);
			for (uint32_t i = 0; i < sizeof(p); i++)
				p[i] = fuzz_u8(in);
			send_inband(r, p, len, fuzz_u8(in) & 1);
			break;
		}
		case 1:
			op_gpa(r, in);
			break;
		case 2:
			op_srb(r, in);
			break;
		case 3:
			op_init(r, in);
			break;
		case 4:
			read_completions(r);
			break;
		case 5: {
			uint8_t p[64] = {0};
			struct vmbus_ring_iov iov = {p, sizeof(p)};
			struct vmbus_packet_out out = {.type = (uint16_t)(fuzz_u8(in) % 14),
						       .trans_id = r->trans++,
						       .iov = &iov,
						       .iov_count = 1};
			if (vmbus_ring_put(&r->w, &out, NULL) == 0)
				publish(r);
			break;
		}
		case 6:
			guest_signal(r);
			break;
		default: {
			uint32_t at = fuzz_u16(in) % (DATA_PAGES * 4096);
			ram[DATA_PFN * 4096 + at] = fuzz_u8(in);
			break;
		}
		}
	}
	read_completions(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ram) {
		ram_fd = memfd_create("fuzz-storvsp-ram", MFD_CLOEXEC);
		if (ram_fd < 0 || ftruncate(ram_fd, (off_t)RAM_BYTES) != 0)
			abort();
		ram = mmap(NULL, RAM_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
		if (ram == MAP_FAILED)
			abort();
	}
	memset(ram, 0, RAM_BYTES);
	struct run *r = calloc(1, sizeof(*r));
	if (!r)
		abort();
	pthread_mutex_init(&r->lock, NULL);
	r->trans = 1;
	if (guest_memory_add_file(&r->mem, 0, RAM_BYTES, ram, ram_fd, 0))
		abort();
	struct vmbus_server_config cfg = {.vp_count = 1};
	r->s = vmbus_server_new(&cfg, &r->mem, &glue, r);
	if (!r->s)
		abort();
	struct storvsp_config sc = {.workers = 1, .max_outstanding = 16, .max_subchannels = 2,
				    .max_transfer_bytes = 65536};
	struct storage_backend be;
	struct scsi_disk *d;
	if (storvsp_add(r->s, &r->mem, &sc, &r->sv) ||
	    storage_backend_mem_new(256 * 512, 512, size && (data[0] & 1), &be) ||
	    scsi_disk_new(NULL, &be, &d) || storvsp_add_disk(r->sv, 0, d))
		abort();
	if (guest_open(r)) {
		struct fuzz_input in = {data, size, 1}; /* byte 0: configuration */
		run_ops(r, &in);
	}
#ifdef FUZZ_STORVSP_DEBUG
	usleep(100000);
	struct storvsp_stats st;
	storvsp_get_stats(r->sv, &st);
	fprintf(stderr, "version %#x requests %llu completions %llu bad %llu\n", st.version,
		(unsigned long long)st.requests, (unsigned long long)st.completions,
		(unsigned long long)st.bad_packets);
#endif
	storvsp_remove(r->s, r->sv);
	vmbus_server_free(r->s);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return 0;
}
