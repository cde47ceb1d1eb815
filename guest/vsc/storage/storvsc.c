/* SPDX-License-Identifier: MIT */
/*
 * storvsc (see storvsc.h). One struct storvsc per controller offer; its
 * requests live in a fixed table of slots, each named on the wire by a
 * transaction id of (generation << 32 | slot + 1), so a completion for a
 * request that was already failed (timeout, removal) or that never
 * existed is recognised and dropped. Slot 0 is the control slot used by
 * the init sequence and resets (process context, one at a time).
 *
 * Slot states: FREE -> INFLIGHT (submit, before the packet is sent, so a
 * completion racing the send finds it) -> FREE by exactly one of: the
 * completion, the timeout check, the removal, or a failed send. Whoever
 * frees it reports it.
 */
#include <errno.h>
#include <string.h>

#include "hvkit/scsi.h"
#include "hvkit/vmbus_classes.h"
#include "storvsc.h"
#include "storvsc_proto.h"

#define PAGE 4096u
#define SEND_RING_BYTES (256 * 1024)
/* Completions only (88 bytes each): 64 KiB holds a full queue of them. */
#define RECV_RING_BYTES (64 * 1024)
#define MAX_CHANNELS (1 + VSTOR_MAX_CHANNELS * 2)
#define MAX_PFNS (STORVSC_MAX_TRANSFER / PAGE + 1)
#define PARAM_BYTES 64u /* per slot: UNMAP parameter list */
#define CTRL_SLOT 0u

#define INC(x) __atomic_add_fetch(&(x), 1, __ATOMIC_RELAXED)
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

enum slot_state { SLOT_FREE, SLOT_INFLIGHT };

struct slot {
	enum slot_state state;
	uint32_t gen;
	uint16_t chan;
	uint32_t xfer;
	uint64_t deadline;
	struct storvsc_io *io;
	uint64_t pfns[MAX_PFNS];
};

struct chan {
	struct storvsc *s;
	struct vmbus_client_channel *ch;
	uint16_t index;
	bool open;
	uint8_t buf[512];
	/* Room for any packet the receive ring can hold: one too big for buf
	 * is still read (and dropped), or it would block the ring. */
	uint8_t big[RECV_RING_BYTES];
};

struct storvsc {
	struct storvsc_driver *drv;
	const struct hv_port *port;
	struct hv_port_lock *lock;
	struct storvsc_config cfg;
	uint32_t vp_count;
	bool dead;
	bool suspended; /* hibernation: closed, kept; new requests refused */
	uint16_t version;
	uint32_t max_transfer;
	uint32_t max_subs;

	struct chan *chans[MAX_CHANNELS];
	uint32_t nchans;
	uint32_t rr;

	struct slot *slots;
	uint32_t nslots;
	uint32_t free_hint;
	uint8_t *params; /* nslots * PARAM_BYTES, guest pages */
	uint32_t param_pages;

	/* The control slot's answer. */
	struct hv_port_event *ctrl_ev;
	struct storvsc_completion ctrl_reply;
	int ctrl_err;

	uint8_t *scratch; /* one page for the scan */
	struct storvsc_disk disks[STORVSC_MAX_DISKS];
	struct storvsc_stats st;
	struct storvsc *next;
};

struct storvsc_driver {
	struct vmbus_client *client;
	struct hv_guest *guest;
	struct storvsc_config cfg;
	struct vmbus_driver vd;
	struct storvsc *controllers;
};

static void lock(struct storvsc *s)
{
	s->port->lock(s->port->ctx, s->lock);
}

static void unlock(struct storvsc *s)
{
	s->port->unlock(s->port->ctx, s->lock);
}

static uint64_t now_ns(struct storvsc *s)
{
	return s->port->monotonic_ns(s->port->ctx);
}

static void slog(struct storvsc *s, const char *fmt, ...)
{
	if (!s->port->log)
		return;
	va_list ap;
	va_start(ap, fmt);
	s->port->log(s->port->ctx, fmt, ap);
	va_end(ap);
}

static uint64_t trans_id(struct storvsc *s, uint32_t i)
{
	return (uint64_t)s->slots[i].gen << 32 | (i + 1);
}

/* Frees a slot (lock held): the next generation makes its old id stale. */
static struct storvsc_io *release(struct storvsc *s, uint32_t i)
{
	struct slot *sl = &s->slots[i];
	struct storvsc_io *io = sl->io;
	sl->state = SLOT_FREE;
	sl->io = NULL;
	sl->gen++;
	return io;
}

static void finish(struct storvsc *s, struct storvsc_io *io, int status)
{
	io->status = status;
	INC(s->st.completed);
	if (status)
		INC(s->st.errors);
	if (io->done)
		io->done(io->arg, io);
}

/* ---- Completions (channel callback, interrupt context) ---- */

static void bad_packet(struct storvsc *s, const char *what)
{
	if (INC(s->st.bad_packets) == 1)
		slog(s, "storvsc: dropped a bad packet from the host (%s)\n", what);
}

static void on_unsolicited(struct storvsc *s, const struct vmbus_packet *pkt)
{
	uint32_t op;
	if (pkt->data_len < sizeof(op)) {
		bad_packet(s, "short");
		return;
	}
	memcpy(&op, pkt->data, sizeof(op));
	if (op == VSTOR_OPERATION_ENUMERATE_BUS) {
		/* Linux: storvsc_on_receive queues a host scan. */
		INC(s->st.enumerate_bus);
		if (s->cfg.rescan_needed)
			s->cfg.rescan_needed(s->cfg.ctx, s);
	} else if (op != VSTOR_OPERATION_REMOVE_DEVICE) {
		bad_packet(s, "unsolicited operation");
	}
}

static void on_completion(struct chan *c, const struct vmbus_packet *pkt)
{
	struct storvsc *s = c->s;
	uint64_t id = pkt->trans_id;
	uint32_t i = (uint32_t)id - 1;
	lock(s);
	if ((uint32_t)id == 0 || i >= s->nslots || s->slots[i].state != SLOT_INFLIGHT ||
	    s->slots[i].gen != (uint32_t)(id >> 32) || s->slots[i].chan != c->index) {
		unlock(s);
		bad_packet(s, "unknown transaction id");
		return;
	}
	/* Judged under the lock (it is pure and short), so the slot is
	 * released with its answer in one step. */
	struct storvsc_completion cp;
	uint32_t xfer = s->slots[i].xfer;
	struct storvsc_io *io = s->slots[i].io;
	int perr = storvsc_parse_completion(pkt->data, pkt->data_len, s->version, io != NULL, xfer,
					    &cp);
	if (i == CTRL_SLOT) {
		s->ctrl_reply = cp;
		s->ctrl_err = perr;
	}
	release(s, i);
	unlock(s);
	if (perr)
		bad_packet(s, "malformed completion");
	if (i == CTRL_SLOT) {
		s->port->event_set(s->port->ctx, s->ctrl_ev);
		return;
	}
	if (c->index < 8)
		INC(s->st.per_channel[c->index]);
	io->transferred = perr ? 0 : cp.transferred;
	io->sense = cp.sense;
	int err = perr ? perr : storvsc_srb_errno(&cp);
	/* A block transfer that moved less than asked did not happen. */
	if (!err && io->op != STORVSC_SCSI && io->transferred != xfer)
		err = -EIO;
	finish(s, io, err);
}

static void on_packets(void *arg, struct vmbus_client_channel *ch)
{
	struct chan *c = arg;
	struct vmbus_packet pkt;
	int err;
	while ((err = vmbus_client_channel_recv(ch, c->buf, sizeof(c->buf), &pkt)) != -EAGAIN) {
		if (err == -EMSGSIZE) {
			bad_packet(c->s, "oversized");
			if (vmbus_client_channel_recv(ch, c->big, RECV_RING_BYTES, &pkt) == -EMSGSIZE)
				return; /* cannot happen: nothing bigger fits the ring */
			continue;
		}
		if (err)
			return; /* a corrupt ring: the timeouts fail what is left */
		if (pkt.type == VMBUS_PKT_COMP && pkt.trans_id)
			on_completion(c, &pkt);
		else if (pkt.type == VMBUS_PKT_DATA_INBAND)
			on_unsolicited(c->s, &pkt);
		else
			bad_packet(c->s, "packet type");
	}
}

/* ---- Sending ---- */

/* A channel for the next request: round robin over the open ones, so a
 * single submitter still spreads its I/O (lock held). */
static int pick_channel(struct storvsc *s)
{
	for (uint32_t k = 0; k < s->nchans; k++) {
		uint32_t i = (s->rr + k) % s->nchans;
		if (s->chans[i] && s->chans[i]->open) {
			s->rr = i + 1;
			return (int)i;
		}
	}
	return -1;
}

/* Takes a free slot (lock held); -1 if none. */
static int take_slot(struct storvsc *s)
{
	for (uint32_t k = 0; k < s->nslots - 1; k++) {
		uint32_t i = 1 + (s->free_hint + k) % (s->nslots - 1);
		if (s->slots[i].state == SLOT_FREE) {
			s->free_hint = i;
			return (int)i;
		}
	}
	return -1;
}

/* Fills pfns from the SG list; the byte count or -EINVAL. */
static int64_t map_sg(struct storvsc *s, const struct storvsc_sg *sg, uint32_t n, uint64_t *pfns,
		      uint32_t *npfn, uint32_t *offset)
{
	uint64_t total = 0;
	uint32_t np = 0;
	for (uint32_t k = 0; k < n; k++) {
		uintptr_t a = (uintptr_t)sg[k].buf;
		if (!sg[k].buf || !sg[k].len)
			return -EINVAL;
		if ((k > 0 && a % PAGE) || (k + 1 < n && (a + sg[k].len) % PAGE))
			return -EINVAL;
		uintptr_t first = a & ~(uintptr_t)(PAGE - 1);
		for (uintptr_t p = first; p < a + sg[k].len; p += PAGE) {
			if (np >= MAX_PFNS)
				return -EINVAL;
			uint64_t gpa = s->port->gpa_of(s->port->ctx, (const void *)p);
			if (gpa == HV_GPA_INVALID)
				return -EINVAL;
			pfns[np++] = gpa / PAGE;
		}
		total += sg[k].len;
	}
	*npfn = np;
	*offset = (uint32_t)((uintptr_t)sg[0].buf % PAGE);
	return (int64_t)total;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	scsi_put_be16(p, (uint16_t)(v >> 48));
	scsi_put_be16(p + 2, (uint16_t)(v >> 32));
	scsi_put_be16(p + 4, (uint16_t)(v >> 16));
	scsi_put_be16(p + 6, (uint16_t)v);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	scsi_put_be16(p, (uint16_t)(v >> 16));
	scsi_put_be16(p + 2, (uint16_t)v);
}

/* The CDB for a block request; its transfer length in *xfer. */
static int build_cdb(struct storvsc *s, struct storvsc_io *io, uint8_t *cdb, uint8_t *len,
		     bool *data_in, uint32_t *xfer, uint8_t *param)
{
	const struct storvsc_disk *d = &s->disks[io->lun];
	memset(cdb, 0, 16);
	*data_in = false;
	*xfer = 0;
	*len = 16;
	switch (io->op) {
	case STORVSC_READ:
	case STORVSC_WRITE:
		/* Past the end of the disk is the host's to judge (LBA OUT OF
		 * RANGE); a wrapping range is ours. */
		if (!io->blocks || io->lba + io->blocks < io->lba)
			return -EINVAL;
		if ((uint64_t)io->blocks * d->block_size > s->max_transfer)
			return -EINVAL;
		cdb[0] = io->op == STORVSC_READ ? SCSI_READ_16 : SCSI_WRITE_16;
		if (io->fua && io->op == STORVSC_WRITE)
			cdb[1] = 0x08;
		put_be64(cdb + 2, io->lba);
		put_be32(cdb + 10, io->blocks);
		*data_in = io->op == STORVSC_READ;
		*xfer = io->blocks * d->block_size;
		return 0;
	case STORVSC_FLUSH:
		cdb[0] = SCSI_SYNCHRONIZE_CACHE_16; /* LBA 0, 0 blocks: all of it */
		return 0;
	case STORVSC_DISCARD:
		if (!io->blocks)
			return -EINVAL;
		cdb[0] = SCSI_UNMAP;
		*len = 10;
		scsi_put_be16(cdb + 7, 24);
		memset(param, 0, 24);
		scsi_put_be16(param, 22); /* data length after this field */
		scsi_put_be16(param + 2, 16); /* block descriptor data length */
		put_be64(param + 8, io->lba);
		put_be32(param + 16, io->blocks);
		*xfer = 24;
		return 0;
	case STORVSC_SCSI:
		if (!io->cdb_len || io->cdb_len > 16 || io->xfer > s->max_transfer)
			return -EINVAL;
		memcpy(cdb, io->cdb, io->cdb_len);
		*len = io->cdb_len;
		*data_in = io->data_in;
		*xfer = io->xfer;
		return 0;
	}
	return -EINVAL;
}

int storvsc_submit(struct storvsc *s, struct storvsc_io *io)
{
	if (!s || !io || io->lun >= STORVSC_MAX_DISKS)
		return -EINVAL;
	io->status = 0;
	io->transferred = 0;
	memset(&io->sense, 0, sizeof(io->sense));
	lock(s);
	if (s->dead || s->suspended) {
		bool suspended = s->suspended;
		unlock(s);
		return suspended ? -ESHUTDOWN : -ENODEV;
	}
	/* Pass-through may address any LUN (the scan); block I/O a known disk. */
	if (io->op != STORVSC_SCSI && !s->disks[io->lun].present) {
		unlock(s);
		return -ENODEV;
	}
	int si = take_slot(s);
	int ci = si < 0 ? -1 : pick_channel(s);
	if (si < 0 || ci < 0) {
		unlock(s);
		return si < 0 ? -EAGAIN : -ENODEV;
	}
	struct slot *sl = &s->slots[si];
	uint8_t *param = s->params + (uint32_t)si * PARAM_BYTES;
	uint8_t cdb[16], cdb_len;
	bool data_in;
	uint32_t xfer;
	int err = build_cdb(s, io, cdb, &cdb_len, &data_in, &xfer, param);
	if (err) {
		unlock(s);
		return err;
	}
	sl->state = SLOT_INFLIGHT;
	sl->io = io;
	sl->chan = (uint16_t)ci;
	sl->xfer = xfer;
	sl->deadline = now_ns(s) + s->cfg.timeout_ns;
	uint64_t id = trans_id(s, (uint32_t)si);
	uint32_t gen = sl->gen;
	/* Taken under the lock: removal clears it (after marking the channel
	 * closed, so a picked channel still has it here). */
	struct vmbus_client_channel *ch = s->chans[ci]->ch;
	uint16_t version = s->version;
	unlock(s);

	io->channel = (uint16_t)ci;
	struct vstor_packet p;
	storvsc_build_srb(&p, version, io->lun, cdb, cdb_len, data_in, xfer);
	uint32_t size = storvsc_packet_size(version);
	if (xfer) {
		struct vmbus_gpa_range_out r;
		uint32_t npfn;
		int64_t bytes;
		if (io->op == STORVSC_DISCARD) {
			sl->pfns[0] = s->port->gpa_of(s->port->ctx, param) / PAGE;
			r = (struct vmbus_gpa_range_out){xfer, (uint32_t)((uintptr_t)param % PAGE),
							  sl->pfns};
			bytes = xfer;
		} else if (!io->sg || !io->sg_count || io->sg_count > STORVSC_MAX_SG) {
			bytes = -EINVAL;
		} else {
			bytes = map_sg(s, io->sg, io->sg_count, sl->pfns, &npfn, &r.byte_offset);
			r.byte_count = xfer;
			r.pfns = sl->pfns;
		}
		if (bytes < 0 || (uint64_t)bytes != xfer)
			err = -EINVAL;
		else
			err = vmbus_client_channel_send_gpa_direct(ch, id, &r, 1, &p, size);
	} else {
		err = vmbus_client_channel_send_inband(ch, id, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, &p,
						       size);
	}
	if (!err) {
		INC(s->st.submitted);
		return 0;
	}
	/* Not sent: give the slot back, unless removal or a timeout took it
	 * meanwhile and reports it. */
	lock(s);
	bool ours = sl->state == SLOT_INFLIGHT && sl->gen == gen;
	if (ours)
		release(s, (uint32_t)si);
	unlock(s);
	if (!ours)
		return 0;
	return err == -ENOTCONN ? -ENODEV : err;
}

/* ---- Synchronous wrappers (process context) ---- */

struct waiter {
	const struct hv_port *port;
	struct hv_port_event *ev;
	bool done;
};

static void wake(void *arg, struct storvsc_io *io)
{
	(void)io;
	struct waiter *w = arg;
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	w->port->event_set(w->port->ctx, w->ev);
}

static void pause_ns(const struct hv_port *port, struct hv_port_event *ev, uint64_t ns)
{
	port->event_wait(port->ctx, ev, ns);
}

int storvsc_io_sync(struct storvsc *s, struct storvsc_io *io)
{
	const struct hv_port *port = s->port;
	struct waiter w = {.port = port, .ev = port->event_new(port->ctx)};
	if (!w.ev)
		return -ENOMEM;
	io->done = wake;
	io->arg = &w;
	int err;
	while ((err = storvsc_submit(s, io)) == -EAGAIN)
		pause_ns(port, w.ev, 50000);
	if (!err) {
		while (!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE))
			if (port->event_wait(port->ctx, w.ev, 100000000) == -ETIMEDOUT)
				storvsc_check_timeouts(s);
		err = io->status;
	}
	port->event_free(port->ctx, w.ev);
	return err;
}

static int rw_sync(struct storvsc *s, enum storvsc_op op, uint8_t lun, uint64_t lba,
		   uint32_t blocks, void *buf)
{
	struct storvsc_disk d;
	if (!storvsc_disk(s, lun, &d))
		return -ENODEV;
	struct storvsc_sg sg = {buf, (uint32_t)((uint64_t)blocks * d.block_size)};
	struct storvsc_io io = {.op = op, .lun = lun, .lba = lba, .blocks = blocks,
				.sg = &sg, .sg_count = 1};
	return storvsc_io_sync(s, &io);
}

int storvsc_read(struct storvsc *s, uint8_t lun, uint64_t lba, uint32_t blocks, void *buf)
{
	return rw_sync(s, STORVSC_READ, lun, lba, blocks, buf);
}

int storvsc_write(struct storvsc *s, uint8_t lun, uint64_t lba, uint32_t blocks, const void *buf)
{
	return rw_sync(s, STORVSC_WRITE, lun, lba, blocks, (void *)buf);
}

int storvsc_flush(struct storvsc *s, uint8_t lun)
{
	struct storvsc_io io = {.op = STORVSC_FLUSH, .lun = lun};
	return storvsc_io_sync(s, &io);
}

int storvsc_discard(struct storvsc *s, uint8_t lun, uint64_t lba, uint32_t blocks)
{
	struct storvsc_io io = {.op = STORVSC_DISCARD, .lun = lun, .lba = lba, .blocks = blocks};
	return storvsc_io_sync(s, &io);
}

/* ---- Control requests on the primary channel (process context) ---- */

static int control(struct storvsc *s, struct vstor_packet *p, uint32_t size,
		   struct storvsc_completion *out)
{
	lock(s);
	struct slot *sl = &s->slots[CTRL_SLOT];
	if (s->dead || !s->nchans || !s->chans[0]->open || sl->state != SLOT_FREE) {
		unlock(s);
		return s->dead ? -ENODEV : -EBUSY;
	}
	sl->state = SLOT_INFLIGHT;
	sl->io = NULL;
	sl->chan = 0;
	sl->xfer = 0;
	sl->deadline = UINT64_MAX; /* waited for here, not by the timeout check */
	uint64_t id = trans_id(s, CTRL_SLOT);
	uint32_t gen = sl->gen;
	struct vmbus_client_channel *ch = s->chans[0]->ch;
	unlock(s);
	p->flags = VSTOR_REQUEST_COMPLETION_FLAG;
	int err = vmbus_client_channel_send_inband(ch, id,
						   VMBUS_PKT_FLAG_COMPLETION_REQUESTED, p, size);
	uint64_t deadline = now_ns(s) + s->cfg.timeout_ns;
	lock(s);
	/* The event may be left set by an earlier answer: the slot says. */
	while (!err && sl->state == SLOT_INFLIGHT && sl->gen == gen && !s->dead) {
		unlock(s);
		uint64_t now = now_ns(s);
		if (now >= deadline ||
		    s->port->event_wait(s->port->ctx, s->ctrl_ev, deadline - now) == -ETIMEDOUT)
			err = -ETIMEDOUT;
		lock(s);
	}
	if (sl->state == SLOT_INFLIGHT && sl->gen == gen) {
		release(s, CTRL_SLOT); /* no answer: a late one is now stale */
		if (!err)
			err = -ETIMEDOUT;
		if (s->dead)
			err = -ENODEV;
	} else {
		err = s->ctrl_err;
		*out = s->ctrl_reply;
	}
	unlock(s);
	return err;
}

/* An init-phase operation: 0 if the host answered with status 0. */
static int init_op(struct storvsc *s, uint32_t op, uint32_t size, struct vstor_packet *in,
		   struct storvsc_completion *out)
{
	struct vstor_packet p = {0};
	if (in)
		p = *in;
	p.operation = op;
	int err = control(s, &p, size, out);
	if (err)
		return err;
	return out->status ? -EIO : 0;
}

uint32_t storvsc_check_timeouts(struct storvsc *s)
{
	uint64_t now = now_ns(s);
	bool any = false;
	lock(s);
	for (uint32_t i = 1; i < s->nslots; i++)
		any |= s->slots[i].state == SLOT_INFLIGHT && s->slots[i].deadline <= now;
	unlock(s);
	if (!any)
		return 0;
	/* As storvsc_host_reset_handler: RESET_BUS, then the requests fail. */
	INC(s->st.resets);
	struct storvsc_completion cp;
	struct vstor_packet p = {.operation = VSTOR_OPERATION_RESET_BUS};
	if (control(s, &p, storvsc_packet_size(s->version), &cp))
		slog(s, "storvsc: bus reset got no answer\n");
	uint32_t n = 0;
	for (uint32_t i = 1; i < s->nslots; i++) {
		lock(s);
		struct storvsc_io *io = NULL;
		if (s->slots[i].state == SLOT_INFLIGHT && s->slots[i].deadline <= now)
			io = release(s, i);
		unlock(s);
		if (io) {
			INC(s->st.timeouts);
			finish(s, io, -ETIMEDOUT);
			n++;
		}
	}
	return n;
}

/* Fails every request in flight on channel ci (all if ci < 0). */
static void fail_inflight(struct storvsc *s, int ci)
{
	for (uint32_t i = 1; i < s->nslots; i++) {
		lock(s);
		struct storvsc_io *io = NULL;
		if (s->slots[i].state == SLOT_INFLIGHT && (ci < 0 || s->slots[i].chan == ci))
			io = release(s, i);
		unlock(s);
		if (io)
			finish(s, io, -ENODEV);
	}
}

/* ---- The scan ---- */

static int scan_cmd(struct storvsc *s, uint8_t lun, const uint8_t *cdb, uint8_t len,
		    uint32_t xfer)
{
	memset(s->scratch, 0, PAGE);
	struct storvsc_sg sg = {s->scratch, xfer};
	struct storvsc_io io = {.op = STORVSC_SCSI, .lun = lun, .cdb_len = len, .data_in = true,
				.xfer = xfer, .sg = &sg, .sg_count = 1};
	memcpy(io.cdb, cdb, len);
	int err = storvsc_io_sync(s, &io);
	return err ? err : (int)io.transferred;
}

static int scan_lun(struct storvsc *s, uint8_t lun, struct storvsc_disk *d)
{
	memset(d, 0, sizeof(*d));
	uint8_t inq[6] = {SCSI_INQUIRY, 0, 0, 0, SCSI_INQUIRY_STANDARD_LEN, 0};
	int n = scan_cmd(s, lun, inq, 6, SCSI_INQUIRY_STANDARD_LEN);
	if (n < 1)
		return n < 0 ? n : -ENODEV;
	if (s->scratch[0] != SCSI_TYPE_DISK)
		return -ENODEV; /* not connected, or not a disk */
	uint8_t rc[16] = {SCSI_SERVICE_ACTION_IN_16, SCSI_SAI_READ_CAPACITY_16};
	put_be32(rc + 10, 32);
	n = scan_cmd(s, lun, rc, 16, 32);
	if (n < 0)
		return n;
	if (n < 12)
		return -EIO;
	uint64_t last = scsi_get_be64(s->scratch);
	uint32_t bs = scsi_get_be32(s->scratch + 8);
	if (bs < 512 || bs > PAGE || (bs & (bs - 1)) || last == UINT64_MAX)
		return -EIO;
	d->thin = n >= 15 && (s->scratch[14] & 0x80);
	d->block_size = bs;
	d->blocks = last + 1;
	uint8_t ms[6] = {SCSI_MODE_SENSE_6, 0, SCSI_MODE_PAGE_ALL, 0, 192, 0};
	n = scan_cmd(s, lun, ms, 6, 192);
	d->read_only = n >= 4 && (s->scratch[2] & SCSI_MODE_DSP_WP);
	/* The serial, as Linux's sd reads it for /dev/disk/by-id; optional. */
	uint8_t sn[6] = {SCSI_INQUIRY, SCSI_INQUIRY_EVPD, SCSI_VPD_UNIT_SERIAL, 0, 255, 0};
	n = scan_cmd(s, lun, sn, 6, 255);
	if (n > 0)
		storvsc_parse_serial(s->scratch, (uint32_t)n, d->serial, sizeof(d->serial));
	d->lun = lun;
	d->present = true;
	return 0;
}

int storvsc_rescan(struct storvsc *s)
{
	uint8_t rl[12] = {SCSI_REPORT_LUNS};
	put_be32(rl + 6, PAGE);
	int n = scan_cmd(s, 0, rl, 12, PAGE);
	if (n < 0)
		return n;
	uint8_t luns[STORVSC_MAX_DISKS];
	uint32_t count = storvsc_parse_report_luns(s->scratch, (uint32_t)n, luns,
						   STORVSC_MAX_DISKS, STORVSC_MAX_DISKS);
	struct storvsc_disk found[STORVSC_MAX_DISKS] = {0};
	for (uint32_t i = 0; i < count; i++) {
		struct storvsc_disk d;
		if (!scan_lun(s, luns[i], &d))
			found[luns[i]] = d;
	}
	lock(s);
	memcpy(s->disks, found, sizeof(found));
	unlock(s);
	return 0;
}

bool storvsc_disk(struct storvsc *s, uint8_t lun, struct storvsc_disk *out)
{
	if (lun >= STORVSC_MAX_DISKS)
		return false;
	lock(s);
	*out = s->disks[lun];
	unlock(s);
	return out->present;
}

/* ---- Binding ---- */

static struct chan *open_chan(struct storvsc *s, struct vmbus_client_channel *ch)
{
	const struct hv_port *port = s->port;
	struct chan *c = port->alloc(port->ctx, sizeof(*c));
	if (!c)
		return NULL;
	c->s = s;
	c->ch = ch;
	lock(s);
	if (s->nchans >= MAX_CHANNELS) {
		unlock(s);
		port->free(port->ctx, c, sizeof(*c));
		return NULL;
	}
	c->index = (uint16_t)s->nchans;
	s->chans[s->nchans++] = c;
	unlock(s);
	int err = vmbus_client_channel_open(ch, SEND_RING_BYTES, RECV_RING_BYTES, NULL, 0,
					    on_packets, c);
	if (err) {
		slog(s, "storvsc: channel open failed: %d\n", err);
		return NULL; /* stays in the table, closed */
	}
	vmbus_client_channel_set_data(ch, c);
	lock(s);
	c->open = true;
	unlock(s);
	return c;
}

/* storvsc_channel_init: BEGIN, versions newest first, PROPERTIES, END. */
static int negotiate(struct storvsc *s)
{
	static const uint16_t versions[] = {VSTOR_PROTO_VERSION_WIN10, VSTOR_PROTO_VERSION_WIN8_1,
					    VSTOR_PROTO_VERSION_WIN8, VSTOR_PROTO_VERSION_WIN7,
					    VSTOR_PROTO_VERSION_WIN6};
	uint16_t cap = s->cfg.max_version ? s->cfg.max_version : VSTOR_PROTO_VERSION_WIN10;
	struct storvsc_completion cp;
	/* Before a version is agreed, packets have the size of the newest we
	 * ask for; the host answers in kind. */
	s->version = cap;
	int err = init_op(s, VSTOR_OPERATION_BEGIN_INITIALIZATION, storvsc_packet_size(cap), NULL,
			  &cp);
	if (err)
		return err;
	err = -EPROTONOSUPPORT;
	for (uint32_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		if (versions[i] > cap)
			continue;
		struct vstor_packet p = {0};
		p.version.major_minor = versions[i];
		s->version = versions[i];
		err = init_op(s, VSTOR_OPERATION_QUERY_PROTOCOL_VERSION,
			      storvsc_packet_size(versions[i]), &p, &cp);
		if (err != -EIO)
			break; /* accepted, or no answer at all */
	}
	if (err)
		return err == -EIO ? -EPROTONOSUPPORT : err;
	uint32_t size = storvsc_packet_size(s->version);
	err = init_op(s, VSTOR_OPERATION_QUERY_PROPERTIES, size, NULL, &cp);
	if (err)
		return err;
	const struct vmstorage_channel_properties *pr = &cp.pkt.storage_channel_properties;
	s->max_transfer = pr->max_transfer_bytes;
	if (!s->max_transfer || s->max_transfer > STORVSC_MAX_TRANSFER)
		s->max_transfer = STORVSC_MAX_TRANSFER;
	s->max_transfer &= ~(PAGE - 1);
	if (!s->max_transfer)
		s->max_transfer = PAGE;
	/* Multi-channel needs Win8 (Linux: storvsc_channel_init). */
	if (s->version >= VSTOR_PROTO_VERSION_WIN8 &&
	    (pr->flags & VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL))
		s->max_subs = pr->max_channel_cnt;
	return init_op(s, VSTOR_OPERATION_END_INITIALIZATION, size, NULL, &cp);
}

/* handle_multichannel_storage: ask for the sub-channels; they arrive as
 * offers and are opened by on_subchannel. */
static void create_subchannels(struct storvsc *s)
{
	uint32_t want = s->cfg.sub_channels;
	if (want == UINT32_MAX)
		want = s->vp_count > 1 ? s->vp_count - 1 : 0;
	if (want > s->max_subs)
		want = s->max_subs;
	if (want > VSTOR_MAX_CHANNELS * 2)
		want = VSTOR_MAX_CHANNELS * 2;
	if (!want)
		return;
	struct vstor_packet p = {0};
	p.sub_channel_count = (uint16_t)want;
	struct storvsc_completion cp;
	int err = init_op(s, VSTOR_OPERATION_CREATE_SUB_CHANNELS, storvsc_packet_size(s->version),
			  &p, &cp);
	if (err)
		slog(s, "storvsc: CREATE_SUB_CHANNELS(%u) failed: %d\n", want, err);
	else
		s->st.channels_wanted = 1 + want;
}

static void free_controller(struct storvsc *s)
{
	const struct hv_port *port = s->port;
	for (uint32_t i = 0; i < s->nchans; i++)
		port->free(port->ctx, s->chans[i], sizeof(*s->chans[i]));
	if (s->params)
		port->free_pages(port->ctx, s->params, s->param_pages);
	if (s->scratch)
		port->free_pages(port->ctx, s->scratch, 1);
	if (s->ctrl_ev)
		port->event_free(port->ctx, s->ctrl_ev);
	if (s->lock)
		port->lock_free(port->ctx, s->lock);
	port->free(port->ctx, s->slots, (size_t)s->nslots * sizeof(*s->slots));
	port->free(port->ctx, s, sizeof(*s));
}

static struct storvsc *new_controller(struct storvsc_driver *d)
{
	const struct hv_port *port = d->guest->port;
	struct storvsc *s = port->alloc(port->ctx, sizeof(*s));
	if (!s)
		return NULL;
	s->drv = d;
	s->port = port;
	s->cfg = d->cfg;
	s->vp_count = d->guest->config.vp_count;
	s->nslots = d->cfg.queue_depth + 1;
	s->param_pages = (s->nslots * PARAM_BYTES + PAGE - 1) / PAGE;
	s->slots = port->alloc(port->ctx, (size_t)s->nslots * sizeof(*s->slots));
	s->params = port->alloc_pages(port->ctx, s->param_pages);
	s->scratch = port->alloc_pages(port->ctx, 1);
	s->ctrl_ev = port->event_new(port->ctx);
	s->lock = port->lock_new(port->ctx);
	if (!s->slots || !s->params || !s->scratch || !s->ctrl_ev || !s->lock) {
		free_controller(s);
		return NULL;
	}
	return s;
}

static int on_probe(void *ctx, struct vmbus_client_channel *ch)
{
	struct storvsc_driver *d = ctx;
	struct storvsc *s = new_controller(d);
	if (!s)
		return -ENOMEM;
	int err = open_chan(s, ch) ? 0 : -EIO;
	if (!err)
		err = negotiate(s);
	if (err) {
		slog(s, "storvsc: controller init failed: %d\n", err);
		if (s->chans[0] && s->chans[0]->open)
			vmbus_client_channel_close(ch);
		vmbus_client_channel_set_data(ch, NULL);
		free_controller(s);
		return err;
	}
	s->st.version = s->version;
	s->st.channels_wanted = 1;
	create_subchannels(s);
	storvsc_rescan(s);
	s->next = d->controllers;
	d->controllers = s;
	if (d->cfg.attached)
		d->cfg.attached(d->cfg.ctx, s);
	return 0;
}

static void on_subchannel(void *ctx, struct vmbus_client_channel *primary,
			  struct vmbus_client_channel *sub)
{
	(void)ctx;
	struct chan *pc = vmbus_client_channel_data(primary);
	if (pc)
		open_chan(pc->s, sub);
}

static void on_remove(void *ctx, struct vmbus_client_channel *ch)
{
	struct storvsc_driver *d = ctx;
	struct chan *c = vmbus_client_channel_data(ch);
	if (!c)
		return;
	struct storvsc *s = c->s;
	bool primary = c->index == 0;
	lock(s);
	c->open = false;
	if (primary)
		s->dead = true; /* no new requests from here on */
	unlock(s);
	if (primary) {
		for (uint32_t i = s->nchans; i-- > 1;)
			if (s->chans[i]->ch)
				vmbus_client_channel_close(s->chans[i]->ch);
	}
	/* Closed: no more completions can arrive, so what is in flight on it
	 * will never complete; it fails here, none lost. */
	vmbus_client_channel_close(ch);
	vmbus_client_channel_set_data(ch, NULL);
	lock(s);
	c->ch = NULL;
	unlock(s);
	fail_inflight(s, primary ? -1 : (int)c->index);
	if (primary) {
		/* A control request waiting sees dead and gives up. */
		s->port->event_set(s->port->ctx, s->ctrl_ev);
		if (d->cfg.detached)
			d->cfg.detached(d->cfg.ctx, s);
	}
}

/* Whether a request is in flight (the control slot's included). */
static bool busy(struct storvsc *s)
{
	bool any = false;
	lock(s);
	for (uint32_t i = 0; i < s->nslots; i++)
		any |= s->slots[i].state == SLOT_INFLIGHT;
	unlock(s);
	return any;
}

/* storvsc_suspend: new requests refused, those in flight completed
 * (storvsc_wait_to_drain), every channel closed; the sub-channels' state
 * goes (the host rescinds them), the controller and its disks stay. */
static int on_suspend(void *ctx, struct vmbus_client_channel *ch)
{
	(void)ctx;
	struct chan *c = vmbus_client_channel_data(ch);
	if (!c || c->index)
		return -EINVAL;
	struct storvsc *s = c->s;
	lock(s);
	s->suspended = true;
	unlock(s);
	uint64_t deadline = now_ns(s) + s->cfg.timeout_ns;
	while (busy(s) && now_ns(s) < deadline)
		s->port->event_wait(s->port->ctx, s->ctrl_ev, 1000000);
	vmbus_client_channel_close(ch); /* the sub-channels with it */
	fail_inflight(s, -1);           /* only what outlived the drain */
	lock(s);
	uint32_t subs = s->nchans;
	s->nchans = 1;
	c->open = false;
	unlock(s);
	for (uint32_t i = 1; i < subs; i++) {
		if (s->chans[i]->ch)
			vmbus_client_channel_set_data(s->chans[i]->ch, NULL);
		s->port->free(s->port->ctx, s->chans[i], sizeof(*s->chans[i]));
		s->chans[i] = NULL;
	}
	s->st.channels_wanted = 1;
	return 0;
}

/* storvsc_resume -> storvsc_connect_to_vsp: the primary opened again,
 * the protocol from the start, new sub-channels asked for. */
static int on_resume(void *ctx, struct vmbus_client_channel *ch)
{
	(void)ctx;
	struct chan *c = vmbus_client_channel_data(ch);
	if (!c || c->index)
		return -EINVAL;
	struct storvsc *s = c->s;
	c->ch = ch;
	int err = vmbus_client_channel_open(ch, SEND_RING_BYTES, RECV_RING_BYTES, NULL, 0,
					    on_packets, c);
	if (err)
		return err;
	lock(s);
	c->open = true;
	unlock(s);
	err = negotiate(s);
	if (err)
		return err;
	s->st.version = s->version;
	lock(s);
	s->suspended = false;
	unlock(s);
	create_subchannels(s);
	return 0;
}

int storvsc_driver_register(struct vmbus_client *c, struct hv_guest *g,
			    const struct storvsc_config *cfg, struct storvsc_driver **out)
{
	const struct hv_port *port = g ? g->port : NULL;
	if (!port || !port->alloc || !port->free)
		return -EINVAL;
	struct storvsc_driver *d = port->alloc(port->ctx, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->client = c;
	d->guest = g;
	if (cfg)
		d->cfg = *cfg;
	if (!d->cfg.queue_depth)
		d->cfg.queue_depth = 256;
	if (!d->cfg.timeout_ns)
		d->cfg.timeout_ns = 30000000000ull;
	d->vd = (struct vmbus_driver){
		.class_id = VMBUS_CLASS_SCSI,
		.name = "storvsc",
		.fast = true,
		.probe = on_probe,
		.remove = on_remove,
		.subchannel = on_subchannel,
		.suspend = on_suspend,
		.resume = on_resume,
		.ctx = d,
	};
	int err = vmbus_client_register_driver(c, &d->vd);
	if (err) {
		port->free(port->ctx, d, sizeof(*d));
		return err;
	}
	*out = d;
	return 0;
}

void storvsc_driver_free(struct storvsc_driver *d)
{
	if (!d)
		return;
	while (d->controllers) {
		struct storvsc *s = d->controllers;
		d->controllers = s->next;
		free_controller(s);
	}
	d->guest->port->free(d->guest->port->ctx, d, sizeof(*d));
}

void storvsc_get_stats(struct storvsc *s, struct storvsc_stats *out)
{
	lock(s);
	*out = s->st;
	out->version = s->version;
	out->max_transfer = s->max_transfer;
	out->channels = 0;
	for (uint32_t i = 0; i < s->nchans; i++)
		out->channels += s->chans[i]->open;
	unlock(s);
}

const struct hv_port *storvsc_port(struct storvsc *s)
{
	return s->port;
}
