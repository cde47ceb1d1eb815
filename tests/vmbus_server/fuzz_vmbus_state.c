/* SPDX-License-Identifier: MIT */
/*
 * vmbus_server_load facing a corrupt or hostile state record (a snapshot
 * file is input from disk, maybe from another machine), the devices'
 * states within it included. The input is a record as it is (first byte
 * odd), or mutations of a real one: a server with two echo devices, a
 * SCSI controller and a NIC, an echo channel, the controller's and the
 * NIC's open (the NIC's NVSP initialised, its buffers given), GPADLs
 * created and half sent, is saved; bytes of the record are changed as the input says, and (byte
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
#include "hvkit/vmbus_classes.h"
#include "netvsp.h"
#include "storvsp.h"
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
	struct storvsp *scsi;
	struct netvsp *nic;
	struct netvsp_loopback *lb;
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
	struct storvsp_config sc = {.workers = 1};
	w->lb = netvsp_loopback_new(true);
	struct netvsp_config nc = {.mem = &mem, .backend = netvsp_loopback_ops(),
				   .backend_ctx = w->lb};
	if (storvsp_add(w->s, &mem, &sc, &w->scsi) || !w->lb || netvsp_add(w->s, &nc, &w->nic))
		abort();
}

static void world_free(struct world *w)
{
	for (uint32_t i = 0; i < 2; i++)
		vmbus_echo_remove(w->s, w->echo[i]);
	storvsp_remove(w->s, w->scsi);
	netvsp_remove(w->s, w->nic);
	netvsp_loopback_free(w->lb);
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

struct find {
	struct hv_guid class_id;
	uint32_t relid;
};

/* The lowest relid of the class: its first instance (offers are sorted
 * by class and instance). */
static void find_class(void *arg, const struct vmbus_server_channel_info *ci)
{
	struct find *f = arg;
	if (hv_guid_equal(&ci->class_id, &f->class_id) && (!f->relid || ci->relid < f->relid))
		f->relid = ci->relid;
}

static uint32_t relid_of(struct world *w, struct hv_guid class_id)
{
	struct find f = {class_id, 0};
	vmbus_server_for_each_channel(w->s, find_class, &f);
	return f.relid;
}

static void open_channel(struct world *w, uint32_t relid, uint32_t gpadl, uint32_t vp)
{
	struct vmbus_msg_open_channel open = {
		.header = {.msgtype = VMBUS_MSG_OPENCHANNEL},
		.child_relid = relid,
		.open_id = relid,
		.ring_gpadl = gpadl,
		.target_vp = vp,
		.downstream_ring_page_offset = 4,
	};
	send(w, &open, sizeof(open));
}

/* The NIC's primary ring: NVSP INIT at 6.1, the receive buffer (GPADL
 * 6) and the send buffer (GPADL 7), written as the guest writes them. */
static void nic_setup(struct world *w, uint32_t relid)
{
	const struct guest_memory_region *r = &mem.regions[0];
	struct vmbus_ring_mem in;
	/* The guest's outbound ring: the first four pages of GPADL 5. */
	if (vmbus_ring_mem_init(&in, r->hva + 48 * 4096, 4 * 4096, false))
		abort();
	struct vmbus_ring_writer wr;
	if (vmbus_ring_writer_attach(&wr, &in))
		abort();
	struct nvsp_message m[3] = {
		{.msg_type = NVSP_MSG_TYPE_INIT,
		 .init = {.min_protocol_ver = NVSP_PROTOCOL_VERSION_61,
			  .max_protocol_ver = NVSP_PROTOCOL_VERSION_61}},
		{.msg_type = NVSP_MSG1_TYPE_SEND_RECV_BUF,
		 .send_recv_buf = {.gpadl_handle = 6, .id = 0xcafe}},
		{.msg_type = NVSP_MSG1_TYPE_SEND_SEND_BUF,
		 .send_send_buf = {.gpadl_handle = 7, .id = 0}},
	};
	for (int i = 0; i < 3; i++) {
		struct vmbus_ring_iov iov = {&m[i], sizeof(m[i])};
		if (vmbus_ring_put_inband(&wr, (uint64_t)i + 1, VMBUS_PKT_FLAG_COMPLETION_REQUESTED,
					  &iov, 1, NULL))
			abort();
	}
	vmbus_ring_publish(&wr);
	lock(w);
	vmbus_server_handle_signal(w->s, 0, VMBUS_SERVER_CHANNEL_CONNECTION_BASE + relid);
	unlock(w);
}

/* A guest in the middle of things: connected at 5.3, echo 1 open on VP 1
 * (GPADL 1, four pages each way), GPADL 2 created on it, GPADL 3 half
 * sent on echo 2, the SCSI controller open on VP 0 (GPADL 4), the NIC
 * open on VP 1 (GPADL 5) with its buffers (GPADLs 6 and 7). */
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
	uint32_t echo = relid_of(w, (struct hv_guid)VMBUS_ECHO_CLASS);
	gpadl(w, echo, 1, 8, 8, false);
	open_channel(w, echo, 1, 1);
	gpadl(w, echo, 2, 20, 2, false);
	gpadl(w, echo + 1, 3, 24, 30, true);
	uint32_t scsi = relid_of(w, (struct hv_guid)VMBUS_CLASS_SCSI);
	gpadl(w, scsi, 4, 40, 8, false);
	open_channel(w, scsi, 4, 0);
	uint32_t nic = relid_of(w, (struct hv_guid)NETVSC_CLASS_GUID);
	gpadl(w, nic, 5, 48, 8, false);
	open_channel(w, nic, 5, 1);
	gpadl(w, nic, 6, 56, 4, false); /* the receive buffer */
	gpadl(w, nic, 7, 60, 2, false); /* the send buffer */
	nic_setup(w, nic);
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
	if (size <= 1 && !fuzz_record_is_raw(data, size)) {
		/* The real record, untouched, must load, the NIC set up. */
		struct netvsp_stats st;
		netvsp_get_stats(b.nic, &st);
		if (err || st.version != NVSP_PROTOCOL_VERSION_61 || !st.recv_sections ||
		    !st.send_sections)
			abort();
	}
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
