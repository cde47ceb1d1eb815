/* SPDX-License-Identifier: MIT */
/*
 * The synthetic SCSI controller. Behaviour follows what Linux 6.1's
 * drivers/scsi/storvsc_drv.c expects: storvsc_channel_init's sequence
 * (BEGIN_INITIALIZATION, QUERY_PROTOCOL_VERSION newest first until status
 * 0, QUERY_PROPERTIES, END_INITIALIZATION, then CREATE_SUB_CHANNELS),
 * storvsc_on_channel_callback's minimum completion size, and
 * storvsc_on_io_completion's reading of srb_status, scsi_status and sense.
 *
 * Threads and locks. Per channel:
 *  - in_lock guards the guest-to-host ring reader and the channel's
 *    protocol parsing. The VMBus callback takes it (a short hold: packets
 *    are parsed and queued, never executed), and so does a worker that
 *    resumes a channel which paused reading at max_outstanding.
 *  - out_lock guards the host-to-guest ring writer and the queue of
 *    completions waiting for ring space.
 * Order: device lock, in_lock, out_lock. Signals to the guest are raised
 * after both channel locks are dropped (a worker's vmbus_channel_signal
 * takes the device lock).
 *
 * Every request holds a reference on its channel (struct sv_chan and the
 * VMBus channel) until its completion is written or dropped, so a close
 * with I/O in flight only marks the channel closed; the last request frees
 * it. Likewise it holds its disk (and so the backend's fd) until its I/O
 * completed.
 *
 * Workers. Each worker owns an io_uring (storage_ring). It takes a batch
 * of requests from the queue, queues the I/O of those whose disk offers
 * its fd (reads, writes, flushes, discards) on its ring with one submit,
 * runs the rest (INQUIRY and the like, aio=threads disks) itself, and
 * reaps completions in its loop; the finished requests of one pass are
 * completed per channel as a batch: one ring publish and at most one
 * signal per channel. A worker with I/O in flight and an empty queue
 * sleeps in its ring, with a poll on its eventfd that queue_work writes
 * when no worker sleeps on the queue's condition variable. Without
 * io_uring (a kernel refusing it) a worker runs every request itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hvkit/proto/storvsc.h"
#include "hvkit/vmbus_classes.h"
#include "record.h"
#include "storvsp.h"

#define DEFAULT_WORKERS 2u
#define DEFAULT_SUBCHANNELS 4u
#define DEFAULT_MAX_TRANSFER (2u << 20)
#define DEFAULT_MAX_OUTSTANDING 1024u
#define PAGE 4096u
/* Requests in flight per worker's ring. */
#define RING_ENTRIES 128u

/* Versions we accept, newest first (Linux 6.1 asks for the first three;
 * older guests for WIN7 and WIN6). */
static const uint16_t sv_versions[] = {
	VSTOR_PROTO_VERSION_WIN10, VSTOR_PROTO_VERSION_WIN8_1, VSTOR_PROTO_VERSION_WIN8,
	VSTOR_PROTO_VERSION_WIN7,  VSTOR_PROTO_VERSION_WIN6,
};

enum sv_init_state {
	SV_INIT_NONE,  /* opened, nothing asked */
	SV_INIT_BEGUN, /* BEGIN_INITIALIZATION seen */
	SV_INIT_READY, /* END_INITIALIZATION seen: SRBs accepted */
};

/* Kinds of bad input, each logged once. */
enum sv_bad {
	SV_BAD_PACKET,  /* not an in-band or GPA-direct packet, or too short */
	SV_BAD_OP,      /* an operation the guest may not send (now) */
	SV_BAD_SRB,     /* malformed SRB fields */
	SV_BAD_GPA,     /* GPA list outside RAM, overlapping or mis-sized */
	SV_BAD_RING,    /* ring corrupt: the channel stops */
	SV_BAD_COUNT,
};

static const char *const sv_bad_names[SV_BAD_COUNT] = {
	"malformed packet", "unexpected operation", "malformed SRB", "bad GPA list",
	"corrupt ring",
};

struct sv_chan;

/* One request from parse to completion; its packet becomes the reply. */
struct sv_req {
	struct sv_req *next;
	struct sv_chan *c;
	struct scsi_disk *disk;  /* NULL: answered without a disk */
	bool report_luns;        /* answered by the controller: REPORT LUNS, */
	bool inquiry_absent;     /* or INQUIRY of a LUN with no disk */
	bool notice;             /* an unsolicited in-band packet, not a completion */
	struct sv_disk *held;    /* the disk reference this request holds */
	struct sv_worker *w;     /* the worker whose ring runs its I/O */
	struct scsi_io io;       /* that I/O */
	uint64_t trans_id;
	uint32_t reply_len;      /* bytes of pkt the completion carries */
	struct vstor_packet pkt; /* the request, then its completion */
	uint64_t len;            /* data bytes */
	int iovcnt;
	struct iovec iov[];
};

struct sv_chan {
	struct storvsp *sv;
	struct vmbus_channel *ch;
	bool primary;
	uint32_t refs; /* open + requests in flight; atomic */

	pthread_mutex_t in_lock;
	uint8_t *buf; /* private copy of the packet being parsed */
	uint32_t buflen;
	bool broken;    /* a ring is corrupt: touch it no more */
	bool throttled; /* stopped reading at max_outstanding */

	pthread_mutex_t out_lock;
	struct sv_req *pend_head, *pend_tail; /* waiting for ring space */
	bool closed;
	uint32_t outstanding; /* requests parsed and not yet completed */
};

/* A disk and the requests using it: hot removal waits for none of them;
 * the last reference frees the disk. */
struct sv_disk {
	struct scsi_disk *d;
	uint32_t refs; /* the slot's + requests'; atomic */
};

/* A worker thread and its ring. */
struct sv_worker {
	struct storvsp *sv;
	pthread_t thread;
	struct storage_ring *ring; /* NULL: every request runs synchronously */
	int efd;                   /* written to wake it from its ring */
	bool ring_wait;            /* under q_lock: asleep in its ring */
	bool kicked;               /* under q_lock: efd written since */
	struct sv_req *done_head, *done_tail; /* finished, to complete */
};

struct storvsp {
	struct vmbus_device *dev;
	const struct guest_memory *mem;
	struct storvsp_config cfg;

	/* Protocol state of the controller (the primary channel's). */
	pthread_mutex_t state_lock;
	enum sv_init_state init;
	uint16_t version;
	uint16_t subchannels_offered;

	pthread_mutex_t disk_lock; /* the slots (short holds, any context) */
	struct sv_disk *disks[STORVSP_MAX_LUNS];
	struct sv_chan *primary;    /* open primary channel, under state_lock */

	/* The work queue. */
	pthread_mutex_t q_lock;
	pthread_cond_t q_cond;
	struct sv_req *q_head, *q_tail;
	uint32_t idle; /* workers waiting for work on q_cond */
	/* Requests queued for the workers and not yet completed (or put
	 * aside for ring space); storvsp_quiesce waits on busy_cond for 0
	 * (not q_cond: a wake-up meant for a worker must not go to it). */
	uint32_t busy;
	pthread_cond_t busy_cond; /* CLOCK_MONOTONIC */
	uint32_t ring_waiters; /* workers asleep in their ring */
	bool stopping;
	struct sv_worker *workers;
	uint32_t nthreads;

	uint32_t logged; /* bit per enum sv_bad, atomic */
	struct storvsp_stats st; /* counters updated atomically */
};

#define STAT_ADD(sv, field, n) __atomic_add_fetch(&(sv)->st.field, (n), __ATOMIC_RELAXED)

__attribute__((format(printf, 2, 3))) static void sv_log(struct storvsp *sv, const char *fmt, ...)
{
	if (!sv->cfg.log)
		return;
	va_list ap;
	va_start(ap, fmt);
	sv->cfg.log(sv->cfg.log_ctx, fmt, ap);
	va_end(ap);
}

/* Counts bad guest input, logs each kind once. */
static void sv_bad(struct storvsp *sv, enum sv_bad kind)
{
	STAT_ADD(sv, bad_packets, 1);
	if (kind == SV_BAD_GPA)
		STAT_ADD(sv, bad_gpas, 1);
	uint32_t bit = 1u << kind;
	if (!(__atomic_fetch_or(&sv->logged, bit, __ATOMIC_RELAXED) & bit))
		sv_log(sv, "storvsp %u: %s from the guest (counted, not logged again)\n",
		       sv->cfg.instance, sv_bad_names[kind]);
}

static uint16_t sv_version(struct storvsp *sv)
{
	return __atomic_load_n(&sv->version, __ATOMIC_ACQUIRE);
}

/* What a packet weighs at this version (Linux's vmscsi_size_delta). */
static uint32_t sv_packet_size(uint16_t version)
{
	return version && version < VSTOR_PROTO_VERSION_WIN8 ? (uint32_t)VSTOR_PACKET_SIZE_PRE_WIN8
							      : (uint32_t)sizeof(struct vstor_packet);
}

static uint8_t sv_sense_size(uint16_t version)
{
	return version && version < VSTOR_PROTO_VERSION_WIN8 ? VSTOR_SENSE_BUFFER_SIZE_PRE_WIN8
							      : VSTOR_SENSE_BUFFER_SIZE;
}

/* ---- channel lifetime ---- */

static void chan_get(struct sv_chan *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	vmbus_channel_get(c->ch);
}

static void chan_put(struct sv_chan *c)
{
	struct vmbus_channel *ch = c->ch;
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		pthread_mutex_destroy(&c->in_lock);
		pthread_mutex_destroy(&c->out_lock);
		free(c->buf);
		free(c);
	}
	vmbus_channel_put(ch);
}

/* ---- completions ---- */

/* Appends the chain first..last to the list *head..*tail. */
static void req_append(struct sv_req **head, struct sv_req **tail, struct sv_req *first,
		       struct sv_req *last)
{
	last->next = NULL;
	if (*tail)
		(*tail)->next = first;
	else
		*head = first;
	*tail = last;
}

/* Writes queued completions while they fit; out_lock held. Returns
 * whether the guest must be signalled. */
static bool flush_pending_locked(struct sv_chan *c, uint32_t *written)
{
	struct vmbus_ring_writer *w = vmbus_channel_out(c->ch);
	bool signal = false;
	while (c->pend_head && !c->broken) {
		struct sv_req *r = c->pend_head;
		uint32_t need = 0;
		struct vmbus_ring_iov iov = {&r->pkt, r->reply_len};
		int err = r->notice
				  ? vmbus_ring_put_inband(w, 0, 0, &iov, 1, &need)
				  : vmbus_ring_put_completion(w, r->trans_id, &r->pkt, r->reply_len,
							      &need);
		if (err == -EAGAIN) {
			signal |= vmbus_ring_publish(w);
			if (vmbus_ring_writer_want_space(w, need))
				continue; /* room appeared meanwhile */
			if (w->broken) {
				c->broken = true;
				sv_bad(c->sv, SV_BAD_RING);
			}
			break;
		}
		if (err) { /* -EBADMSG: corrupt ring; -EMSGSIZE cannot happen */
			c->broken = true;
			sv_bad(c->sv, SV_BAD_RING);
			break;
		}
		c->pend_head = r->next;
		if (!c->pend_head)
			c->pend_tail = NULL;
		r->next = NULL;
		(*written)++;
		free(r);
	}
	if (!c->pend_head)
		vmbus_ring_writer_space_done(w);
	signal |= vmbus_ring_publish(w);
	return signal;
}

/*
 * Queues the completions of the list head..tail (r->pkt already filled,
 * all of channel c) and writes what fits: one publish for the batch.
 * Takes ownership of the requests. Returns whether the guest must be
 * signalled; sets *puts to the request references to drop (completions
 * written or dropped) and *resume to whether a paused channel may read
 * again.
 */
static bool complete_list(struct sv_chan *c, struct sv_req *head, struct sv_req *tail,
			  uint32_t *puts, bool *resume)
{
	bool signal = false;
	uint32_t written = 0;
	pthread_mutex_lock(&c->out_lock);
	if (c->closed || c->broken) {
		while (head) { /* nobody listens */
			struct sv_req *next = head->next;
			free(head);
			written++;
			head = next;
		}
	} else {
		req_append(&c->pend_head, &c->pend_tail, head, tail);
		signal = flush_pending_locked(c, &written);
		if (c->pend_head)
			STAT_ADD(c->sv, ring_full, 1);
		STAT_ADD(c->sv, completions, written);
	}
	c->outstanding -= written;
	*resume = c->throttled && c->outstanding < c->sv->cfg.max_outstanding && !c->closed;
	pthread_mutex_unlock(&c->out_lock);
	*puts = written;
	return signal;
}

static bool complete_req(struct sv_chan *c, struct sv_req *r, uint32_t *puts, bool *resume)
{
	return complete_list(c, r, r, puts, resume);
}

static void chan_put_n(struct sv_chan *c, uint32_t n)
{
	while (n--)
		chan_put(c);
}

/* ---- requests ---- */

static struct sv_req *req_new(struct sv_chan *c, const struct vmbus_packet *pkt, int iovs)
{
	struct sv_req *r = calloc(1, sizeof(*r) + sizeof(struct iovec) * (size_t)iovs);
	if (!r)
		return NULL;
	r->c = c;
	r->trans_id = pkt->trans_id;
	/* The negotiated size; before that, the size the guest used (an
	 * old guest sends the short packet from the start). */
	uint16_t v = sv_version(c->sv);
	r->reply_len = v ? sv_packet_size(v)
			 : pkt->data_len >= sizeof(struct vstor_packet)
				   ? (uint32_t)sizeof(struct vstor_packet)
				   : (uint32_t)VSTOR_PACKET_SIZE_PRE_WIN8;
	memcpy(&r->pkt, pkt->data,
	       pkt->data_len < sizeof(r->pkt) ? pkt->data_len : sizeof(r->pkt));
	return r;
}

/* Turns r->pkt into a COMPLETE_IO reply with this status. */
static void reply_status(struct sv_req *r, uint32_t status)
{
	r->pkt.operation = VSTOR_OPERATION_COMPLETE_IO;
	r->pkt.flags = 0;
	r->pkt.status = status;
}

/* An SRB answered at the VSP level: no SCSI status, no data. */
static void reply_srb(struct sv_req *r, uint8_t srb_status)
{
	reply_status(r, 0);
	r->pkt.vm_srb.srb_status = srb_status;
	r->pkt.vm_srb.scsi_status = 0;
	r->pkt.vm_srb.sense_info_length = 0;
	r->pkt.vm_srb.data_transfer_length = 0;
}

/* Where the disks are: path 0, target 0 (LUN = the disk's slot). */
static bool on_target0(const struct vmscsi_request *srb)
{
	return !srb->path_id && !srb->target_id;
}

static void disk_put(struct sv_disk *d)
{
	if (d && __atomic_sub_fetch(&d->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		scsi_disk_free(d->d);
		free(d);
	}
}

/* The disk at lun with a reference, or NULL. */
static struct sv_disk *disk_get(struct storvsp *sv, uint32_t lun)
{
	if (lun >= STORVSP_MAX_LUNS)
		return NULL;
	pthread_mutex_lock(&sv->disk_lock);
	struct sv_disk *d = sv->disks[lun];
	if (d)
		__atomic_add_fetch(&d->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&sv->disk_lock);
	return d;
}

static void reply_result(struct storvsp *sv, struct sv_req *r, const struct scsi_result *res);

static void aio_done(struct storage_aio *a, int err);

/*
 * Runs a request on worker w: returns true if its I/O went to w's ring
 * (the reply comes from aio_done), false with the reply filled.
 */
static bool execute_req(struct storvsp *sv, struct sv_worker *w, struct sv_req *r)
{
	struct vmscsi_request *srb = &r->pkt.vm_srb;
	struct scsi_data data = {r->iov, r->iovcnt, r->len};
	struct scsi_result res;
	uint8_t cdb[VSTOR_MAX_CMD_LEN];
	memcpy(cdb, srb->cdb, sizeof(cdb));
	if (w->ring && r->disk &&
	    scsi_disk_start(r->disk, cdb, srb->cdb_length, &data, &res, &r->io)) {
		r->w = w;
		r->io.aio.done = aio_done;
		int err = storage_ring_queue(w->ring, &r->io.aio);
		if (err == 0)
			return true;
		/* Cannot happen: workers take no more than the ring's space,
		 * and iovcnt is bounded by max_pages. Fail this one. */
		scsi_disk_finish(r->disk, &r->io, err, &res);
	} else if (r->report_luns) {
		/* Every disk sits on path 0, target 0; any other target is
		 * there but empty (an empty list, as Hyper-V answers). */
		uint16_t luns[STORVSP_MAX_LUNS];
		uint32_t n = 0;
		pthread_mutex_lock(&sv->disk_lock);
		for (uint32_t i = 0; i < STORVSP_MAX_LUNS && on_target0(srb); i++)
			if (sv->disks[i])
				luns[n++] = (uint16_t)i;
		pthread_mutex_unlock(&sv->disk_lock);
		scsi_report_luns(cdb, srb->cdb_length, luns, n, &data, &res);
	} else if (r->inquiry_absent) {
		scsi_inquiry_absent(cdb, srb->cdb_length, &data, &res);
	} else {
		scsi_disk_execute(r->disk, cdb, srb->cdb_length, &data, &res);
	}
	reply_result(sv, r, &res);
	return false;
}

/* Fills r's reply from the command's result and lets go of its disk. */
static void reply_result(struct storvsp *sv, struct sv_req *r, const struct scsi_result *res_in)
{
	struct vmscsi_request *srb = &r->pkt.vm_srb;
	disk_put(r->held);
	r->held = NULL;
	STAT_ADD(sv, requests, 1);
	reply_status(r, 0);
	struct scsi_result res = *res_in;
	srb->scsi_status = res.status;
	srb->data_transfer_length = res.transferred;
	memset(srb->sense_data, 0, sizeof(srb->sense_data));
	if (res.status == SCSI_STATUS_GOOD) {
		srb->srb_status = SRB_STATUS_SUCCESS;
		srb->sense_info_length = 0;
		return;
	}
	STAT_ADD(sv, check_conditions, 1);
	/* Hyper-V's way: an error SRB whose autosense is valid; storvsc
	 * hands the sense to the SCSI midlayer. */
	uint8_t n = sv_sense_size(sv_version(sv));
	if (n > res.sense_len)
		n = res.sense_len;
	memcpy(srb->sense_data, res.sense, n);
	srb->sense_info_length = n;
	srb->srb_status = SRB_STATUS_ERROR | SRB_STATUS_AUTOSENSE_VALID;
	srb->data_transfer_length = 0;
}

/* ---- parsing SRBs ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Pages a GPA list may name: a full transfer plus a partial page per range. */
static uint32_t max_pages(const struct storvsp *sv)
{
	return sv->cfg.max_transfer_bytes / PAGE + VMBUS_RING_MAX_GPA_RANGES;
}

/* PFNs the packet names, at most limit (a malformed list: 1, so the
 * request gets room for nothing and map_gpa_list refuses it). */
static uint32_t gpa_pages(const struct vmbus_packet *pkt, uint32_t limit)
{
	struct vmbus_gpa_range_iter it;
	struct vmbus_gpa_range_in range;
	uint64_t n = 0;
	if (vmbus_gpa_ranges_begin(pkt, &it))
		return 1;
	while (vmbus_gpa_ranges_next(&it, &range) == 1 && n <= limit)
		n += range.pfn_count;
	if (n == 0)
		return 1;
	return n < limit ? (uint32_t)n : limit;
}

/*
 * Checks a GPA-direct packet's ranges (inside guest RAM, no page twice,
 * exactly `len` bytes in all) and fills r's iovec with host pointers.
 * Nothing is touched before every range passed. Returns 0 or -EINVAL.
 */
static int map_gpa_list(struct storvsp *sv, const struct vmbus_packet *pkt, uint64_t len,
			struct sv_req *r, uint32_t iov_cap)
{
	struct vmbus_gpa_range_iter it;
	struct vmbus_gpa_range_in range;
	uint64_t total = 0;
	uint32_t npfn = 0;
	uint64_t *pfns = malloc(sizeof(*pfns) * iov_cap);
	int err = -EINVAL, more;
	if (!pfns || vmbus_gpa_ranges_begin(pkt, &it))
		goto out;
	r->iovcnt = 0;
	while ((more = vmbus_gpa_ranges_next(&it, &range)) == 1) {
		uint64_t left = range.byte_count;
		uint32_t off = range.byte_offset;
		total += range.byte_count;
		if (total > len)
			goto out; /* more memory than the transfer: oversized */
		for (uint32_t i = 0; i < range.pfn_count && left; i++) {
			uint64_t pfn = vmbus_gpa_range_pfn(&range, i);
			uint64_t n = PAGE - off < left ? PAGE - off : left;
			if (npfn == iov_cap)
				goto out;
			void *p = guest_memory_ptr(sv->mem, pfn * PAGE + off, n);
			if (!p)
				goto out; /* outside guest RAM */
			pfns[npfn++] = pfn;
			struct iovec *prev = r->iovcnt ? &r->iov[r->iovcnt - 1] : NULL;
			if (prev && (uint8_t *)prev->iov_base + prev->iov_len == p)
				prev->iov_len += n;
			else
				r->iov[r->iovcnt++] = (struct iovec){p, n};
			left -= n;
			off = 0;
		}
		if (left)
			goto out; /* fewer PFNs than the byte count needs */
	}
	if (more < 0 || total != len)
		goto out; /* transfer length and GPA list disagree */
	/* The same page twice would let one request read into memory it
	 * also writes from (or two DMA targets alias): refuse it. */
	qsort(pfns, npfn, sizeof(*pfns), cmp_u64);
	for (uint32_t i = 1; i < npfn; i++)
		if (pfns[i] == pfns[i - 1])
			goto out;
	r->len = len;
	err = 0;
out:
	free(pfns);
	return err;
}

static struct sv_disk *find_disk(struct storvsp *sv, const struct vmscsi_request *srb)
{
	return on_target0(srb) ? disk_get(sv, srb->lun) : NULL;
}

/* Whether storvsc_remove_lun for this SRB's target and LUN would find a
 * disk: it looks on path 0 whatever path the SRB named. */
static bool lun_has_disk_on_path0(struct storvsp *sv, const struct vmscsi_request *srb)
{
	struct sv_disk *d = srb->target_id ? NULL : disk_get(sv, srb->lun);
	disk_put(d);
	return d != NULL;
}

/*
 * An EXECUTE_SRB: validated into a request for the workers (returned in
 * *work) or answered at once (*done). Never both.
 */
static void parse_srb(struct sv_chan *c, const struct vmbus_packet *pkt, struct sv_req **work,
		      struct sv_req **done)
{
	struct storvsp *sv = c->sv;
	struct vstor_packet vp = {0};
	memcpy(&vp, pkt->data, pkt->data_len < sizeof(vp) ? pkt->data_len : sizeof(vp));
	const struct vmscsi_request *srb = &vp.vm_srb;
	uint64_t len = srb->data_transfer_length;
	bool gpa = pkt->type == VMBUS_PKT_DATA_USING_GPA_DIRECT;
	uint32_t cap = gpa ? gpa_pages(pkt, max_pages(sv)) : 0;
	struct sv_req *r = req_new(c, pkt, (int)cap);
	*work = *done = NULL;
	if (!r)
		return; /* no memory: the guest's request times out */

	if (srb->cdb_length == 0 || srb->cdb_length > VSTOR_MAX_CMD_LEN) {
		sv_bad(sv, SV_BAD_SRB);
		reply_srb(r, SRB_STATUS_INVALID_REQUEST);
		*done = r;
		return;
	}
	if (len > sv->cfg.max_transfer_bytes || (!gpa && len) || (gpa && !len) ||
	    (gpa && map_gpa_list(sv, pkt, len, r, cap))) {
		sv_bad(sv, gpa ? SV_BAD_GPA : SV_BAD_SRB);
		reply_srb(r, SRB_STATUS_INVALID_REQUEST);
		*done = r;
		return;
	}
	/* Linux's storvsc scans paths 0-7 and targets 0-1 (storvsc_drv.c:
	 * max_channel, max_id). The controller answers REPORT LUNS for every
	 * target, and INQUIRY for every slot without a disk, with "no device
	 * here" data: storvsc turns any INQUIRY completion into success
	 * (storvsc_on_io_completion), so an error there would read as a
	 * zero-filled disk. */
	r->report_luns = srb->cdb[0] == SCSI_REPORT_LUNS;
	r->held = r->report_luns ? NULL : find_disk(sv, srb);
	r->disk = r->held ? r->held->d : NULL;
	r->inquiry_absent = !r->disk && srb->cdb[0] == SCSI_INQUIRY;
	if (!r->disk && !r->report_luns && !r->inquiry_absent) {
		/* Anything else to an empty slot: INVALID_LUN, as Hyper-V
		 * answers. storvsc then removes the SCSI device at path 0
		 * with this target and LUN (storvsc_remove_lun), which is
		 * how a disk the host took away leaves the guest. On another
		 * path that would remove the disk at path 0 instead, so
		 * there the answer is LOGICAL UNIT NOT SUPPORTED in sense. */
		if (srb->path_id && lun_has_disk_on_path0(sv, srb)) {
			struct scsi_result res;
			scsi_set_sense(&res, SCSI_SENSE_ILLEGAL_REQUEST, SCSI_ASC_LUN_NOT_SUPPORTED);
			reply_result(sv, r, &res);
		} else {
			reply_srb(r, SRB_STATUS_INVALID_LUN);
		}
		*done = r;
		return;
	}
	*work = r;
}

/* ---- control operations ---- */

static bool version_known(uint16_t v)
{
	for (size_t i = 0; i < sizeof(sv_versions) / sizeof(sv_versions[0]); i++)
		if (sv_versions[i] == v)
			return true;
	return false;
}

/* Handles a control packet; returns the reply (NULL on no memory) and
 * sets *subchannels to the count to offer (primary, callback context). */
static struct sv_req *control(struct sv_chan *c, const struct vmbus_packet *pkt,
			      uint32_t *subchannels)
{
	struct storvsp *sv = c->sv;
	struct sv_req *r = req_new(c, pkt, 0);
	if (!r)
		return NULL;
	uint32_t op = r->pkt.operation;
	uint32_t status = VSTOR_STATUS_SUCCESS;

	pthread_mutex_lock(&sv->state_lock);
	if (!c->primary && op != VSTOR_OPERATION_RESET_LUN && op != VSTOR_OPERATION_RESET_BUS &&
	    op != VSTOR_OPERATION_RESET_ADAPTER) {
		/* Sub-channels carry I/O only. */
		sv_bad(sv, SV_BAD_OP);
		status = VSTOR_STATUS_INVALID_DEVICE_STATE;
		goto out;
	}
	switch (op) {
	case VSTOR_OPERATION_BEGIN_INITIALIZATION:
		sv->init = SV_INIT_BEGUN;
		break;
	case VSTOR_OPERATION_QUERY_PROTOCOL_VERSION: {
		uint16_t v = r->pkt.version.major_minor;
		if (sv->init != SV_INIT_BEGUN) {
			sv_bad(sv, SV_BAD_OP);
			status = VSTOR_STATUS_INVALID_DEVICE_STATE;
		} else if (!version_known(v)) {
			/* Not an error: the guest tries the next one down. */
			status = VSTOR_STATUS_REVISION_MISMATCH;
		} else {
			__atomic_store_n(&sv->version, v, __ATOMIC_RELEASE);
			__atomic_store_n(&sv->st.version, v, __ATOMIC_RELAXED);
			r->reply_len = sv_packet_size(v);
		}
		break;
	}
	case VSTOR_OPERATION_QUERY_PROPERTIES: {
		if (sv->init != SV_INIT_BEGUN || !sv->version) {
			sv_bad(sv, SV_BAD_OP);
			status = VSTOR_STATUS_INVALID_DEVICE_STATE;
			break;
		}
		struct vmstorage_channel_properties *p = &r->pkt.storage_channel_properties;
		memset(r->pkt.buffer, 0, sizeof(r->pkt.buffer));
		/* Multi-channel came with Win8 (storvsc_channel_init). */
		if (sv->version >= VSTOR_PROTO_VERSION_WIN8 && sv->cfg.max_subchannels) {
			p->max_channel_cnt = sv->cfg.max_subchannels;
			p->flags = VSTOR_PROPERTY_SUPPORTS_MULTI_CHANNEL;
		}
		p->max_transfer_bytes = sv->cfg.max_transfer_bytes;
		break;
	}
	case VSTOR_OPERATION_END_INITIALIZATION:
		if (sv->init != SV_INIT_BEGUN || !sv->version) {
			sv_bad(sv, SV_BAD_OP);
			status = VSTOR_STATUS_INVALID_DEVICE_STATE;
		} else {
			sv->init = SV_INIT_READY;
		}
		break;
	case VSTOR_OPERATION_CREATE_SUB_CHANNELS: {
		uint16_t n = r->pkt.sub_channel_count;
		if (sv->init != SV_INIT_READY || sv->version < VSTOR_PROTO_VERSION_WIN8 || !n ||
		    n > sv->cfg.max_subchannels - sv->subchannels_offered || !subchannels) {
			sv_bad(sv, SV_BAD_OP);
			status = VSTOR_STATUS_INVALID_PARAMETER;
		} else {
			sv->subchannels_offered = (uint16_t)(sv->subchannels_offered + n);
			*subchannels = n;
		}
		break;
	}
	case VSTOR_OPERATION_RESET_LUN:
	case VSTOR_OPERATION_RESET_BUS:
	case VSTOR_OPERATION_RESET_ADAPTER:
		/* Requests run to completion on the workers (nothing is ever
		 * stuck in a device), so a reset has nothing to abort. */
		STAT_ADD(sv, resets, 1);
		break;
	default:
		/* COMPLETE_IO, REMOVE_DEVICE, ENUMERATE_BUS go host to
		 * guest; FCHBA_DATA is for Fibre Channel adapters only. */
		sv_bad(sv, SV_BAD_OP);
		status = VSTOR_STATUS_INVALID_PARAMETER;
		break;
	}
out:
	pthread_mutex_unlock(&sv->state_lock);
	reply_status(r, status);
	return r;
}

/* ---- the work queue ---- */

static void queue_work(struct storvsp *sv, struct sv_req *r)
{
	pthread_mutex_lock(&sv->q_lock);
	sv->busy++;
	req_append(&sv->q_head, &sv->q_tail, r, r);
	/* A busy worker takes the next request itself; wake one only if
	 * some are asleep (a futex wake per request is most of the cost of
	 * a small request otherwise). */
	if (sv->idle) {
		pthread_cond_signal(&sv->q_cond);
	} else if (sv->ring_waiters) {
		/* Everyone is busy; one asleep in its ring with I/O in
		 * flight can take this too (once: kicked until it wakes). */
		for (uint32_t i = 0; i < sv->nthreads; i++) {
			struct sv_worker *w = &sv->workers[i];
			if (w->ring_wait && !w->kicked) {
				uint64_t one = 1;
				w->kicked = true;
				if (write(w->efd, &one, sizeof(one)) < 0) {
					/* The counter is full: it is readable anyway. */
				}
				break;
			}
		}
	}
	pthread_mutex_unlock(&sv->q_lock);
}

/* ---- reading a channel ---- */

/*
 * Reads and dispatches packets until the ring is empty or the channel has
 * max_outstanding requests in flight. in_lock held. subchannels is NULL in
 * a worker (it cannot offer channels: that needs the device lock).
 * Returns whether the guest must be signalled.
 */
static bool drain(struct sv_chan *c, uint32_t *subchannels)
{
	struct storvsp *sv = c->sv;
	struct vmbus_ring_reader *rd = vmbus_channel_in(c->ch);
	bool signal = false;
	struct vmbus_packet pkt;

	if (c->broken || c->closed)
		return false; /* closed is set under in_lock too */
	vmbus_ring_reader_mask(rd);
	for (;;) {
		pthread_mutex_lock(&c->out_lock);
		bool full = c->outstanding >= sv->cfg.max_outstanding;
		if (full && !c->throttled)
			STAT_ADD(sv, throttled, 1);
		c->throttled = full;
		pthread_mutex_unlock(&c->out_lock);
		if (full) {
			/* A completing request resumes reading; keep the
			 * guest from signalling meanwhile. */
			signal |= vmbus_ring_commit(rd);
			return signal;
		}
		int err = vmbus_ring_peek(rd, c->buf, c->buflen, &pkt);
		if (err == -EAGAIN) {
			signal |= vmbus_ring_commit(rd);
			if (!vmbus_ring_reader_unmask(rd))
				break;
			vmbus_ring_reader_mask(rd);
			continue;
		}
		if (err) {
			c->broken = true;
			sv_bad(sv, SV_BAD_RING);
			break;
		}
		vmbus_ring_advance(rd);

		uint16_t v = sv_version(sv);
		uint32_t min = v ? sv_packet_size(v) : (uint32_t)VSTOR_PACKET_SIZE_PRE_WIN8;
		bool typed = pkt.type == VMBUS_PKT_DATA_INBAND ||
			     pkt.type == VMBUS_PKT_DATA_USING_GPA_DIRECT;
		if (!typed || pkt.data_len < min) {
			/* Completions from the guest (a flood or not), other
			 * packet types, short packets: nothing to answer. */
			sv_bad(sv, SV_BAD_PACKET);
			continue;
		}
		uint32_t op;
		memcpy(&op, pkt.data, sizeof(op));
		struct sv_req *work = NULL, *done = NULL;
		if (op == VSTOR_OPERATION_EXECUTE_SRB) {
			pthread_mutex_lock(&sv->state_lock);
			bool ready = sv->init == SV_INIT_READY;
			pthread_mutex_unlock(&sv->state_lock);
			if (ready) {
				parse_srb(c, &pkt, &work, &done);
			} else {
				sv_bad(sv, SV_BAD_OP);
				done = req_new(c, &pkt, 0);
				if (done)
					reply_status(done, VSTOR_STATUS_INVALID_DEVICE_STATE);
			}
		} else if (pkt.type == VMBUS_PKT_DATA_INBAND) {
			done = control(c, &pkt, subchannels);
		} else {
			sv_bad(sv, SV_BAD_PACKET); /* GPA list on a control op */
			continue;
		}
		struct sv_req *r = work ? work : done;
		if (!r)
			continue;
		if (!(pkt.flags & VMBUS_PKT_FLAG_COMPLETION_REQUESTED) && done) {
			/* storvsc always asks; without it there is no reply. */
			free(done);
			continue;
		}
		pthread_mutex_lock(&c->out_lock);
		c->outstanding++;
		pthread_mutex_unlock(&c->out_lock);
		chan_get(c);
		if (work) {
			queue_work(sv, work);
		} else {
			bool resume;
			uint32_t puts;
			signal |= complete_req(c, done, &puts, &resume);
			chan_put_n(c, puts); /* the open reference outlives these */
		}
	}
	return signal;
}

/*
 * Completes the requests w finished, channel by channel: each channel's
 * are written as one batch (one publish, at most one signal), and a
 * channel that paused at max_outstanding reads on.
 */
/* Requests the workers finished: a quiesce may be waiting for the last. */
static void busy_done(struct storvsp *sv, uint32_t n)
{
	pthread_mutex_lock(&sv->q_lock);
	sv->busy -= n;
	if (!sv->busy)
		pthread_cond_broadcast(&sv->busy_cond);
	pthread_mutex_unlock(&sv->q_lock);
}

static void complete_done(struct sv_worker *w)
{
	struct sv_req *list = w->done_head;
	w->done_head = w->done_tail = NULL;
	uint32_t finished = 0;
	while (list) {
		struct sv_chan *c = list->c;
		struct sv_req *head = NULL, *tail = NULL, **pp = &list;
		/* Take c's requests out of the list, in order. */
		while (*pp) {
			struct sv_req *r = *pp;
			if (r->c != c) {
				pp = &r->next;
				continue;
			}
			*pp = r->next;
			req_append(&head, &tail, r, r);
			finished++;
		}
		struct vmbus_channel *ch = c->ch;
		bool resume;
		uint32_t puts;
		/* Hold the channel across the drain: the requests'
		 * references may go below. */
		chan_get(c);
		bool signal = complete_list(c, head, tail, &puts, &resume);
		chan_put_n(c, puts);
		if (resume) {
			pthread_mutex_lock(&c->in_lock);
			signal |= drain(c, NULL);
			pthread_mutex_unlock(&c->in_lock);
		}
		if (signal)
			vmbus_channel_signal(ch);
		chan_put(c);
	}
	if (finished)
		busy_done(w->sv, finished);
}

static void worker_done(struct sv_worker *w, struct sv_req *r)
{
	req_append(&w->done_head, &w->done_tail, r, r);
}

/* A ring completion: the reply, then onto the worker's batch. */
static void aio_done(struct storage_aio *a, int err)
{
	struct sv_req *r = (struct sv_req *)((char *)a - offsetof(struct sv_req, io.aio));
	struct scsi_result res;
	scsi_disk_finish(r->disk, &r->io, err, &res);
	reply_result(r->c->sv, r, &res);
	worker_done(r->w, r);
}

/* Whether r's I/O may go to a ring (else the worker runs it itself and
 * takes no more in that pass, so other workers share the rest). */
static bool req_async(const struct sv_req *r)
{
	return r->disk && scsi_disk_backend(r->disk)->uring;
}

static void worker_wake(void *arg)
{
	struct sv_worker *w = arg;
	uint64_t n;
	if (read(w->efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: a spurious wake-up; nothing to clear. */
	}
}

/* Sleeps in the ring until a completion or a kick; q_lock held (and
 * dropped meanwhile). */
static void ring_sleep(struct storvsp *sv, struct sv_worker *w)
{
	w->ring_wait = true;
	sv->ring_waiters++;
	pthread_mutex_unlock(&sv->q_lock);
	storage_ring_poll(w->ring, w->efd, worker_wake, w);
	storage_ring_submit(w->ring);
	storage_ring_reap(w->ring, true);
	pthread_mutex_lock(&sv->q_lock);
	w->ring_wait = false;
	w->kicked = false;
	sv->ring_waiters--;
}

static void *worker(void *arg)
{
	struct sv_worker *w = arg;
	struct storvsp *sv = w->sv;
	/* Made here: a SINGLE_ISSUER ring belongs to the thread that made
	 * it. No ring (no io_uring, no memory): synchronous I/O. */
	if (w->efd >= 0 && storage_ring_new(RING_ENTRIES, &w->ring))
		w->ring = NULL;
	pthread_mutex_lock(&sv->q_lock);
	for (;;) {
		unsigned inflight = w->ring ? storage_ring_inflight(w->ring) : 0;
		while (!sv->q_head && !sv->stopping && !inflight) {
			sv->idle++;
			pthread_cond_wait(&sv->q_cond, &sv->q_lock);
			sv->idle--;
		}
		if (inflight && (!sv->q_head || !storage_ring_space(w->ring))) {
			ring_sleep(sv, w);
			pthread_mutex_unlock(&sv->q_lock);
			complete_done(w);
			pthread_mutex_lock(&sv->q_lock);
			continue;
		}
		if (!sv->q_head)
			break; /* stopping, queue empty, nothing in flight */
		/* A batch: as many as the ring has room for, stopping after
		 * one this worker must run itself. */
		unsigned room = w->ring ? storage_ring_space(w->ring) : 1;
		struct sv_req *batch = NULL, **tail = &batch;
		while (sv->q_head && room--) {
			struct sv_req *r = sv->q_head;
			sv->q_head = r->next;
			r->next = NULL;
			*tail = r;
			tail = &r->next;
			if (!w->ring || !req_async(r))
				break;
		}
		if (!sv->q_head)
			sv->q_tail = NULL;
		pthread_mutex_unlock(&sv->q_lock);
		while (batch) {
			struct sv_req *r = batch;
			batch = r->next;
			if (!execute_req(sv, w, r))
				worker_done(w, r);
		}
		if (w->ring) {
			storage_ring_submit(w->ring);
			storage_ring_reap(w->ring, false);
		}
		complete_done(w);
		pthread_mutex_lock(&sv->q_lock);
	}
	pthread_mutex_unlock(&sv->q_lock);
	storage_ring_free(w->ring);
	w->ring = NULL;
	return NULL;
}

/* ---- VMBus device callbacks (device lock held) ---- */

static int sv_open(void *dev, struct vmbus_channel *ch,
		   const uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES])
{
	(void)user_data;
	struct storvsp *sv = dev;
	struct sv_chan *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	uint32_t size = vmbus_channel_in(ch)->mem.size;
	c->buflen = size < VMBUS_PACKET_MAX_LEN ? size : VMBUS_PACKET_MAX_LEN;
	c->buf = malloc(c->buflen);
	if (!c->buf) {
		free(c);
		return -ENOMEM;
	}
	c->sv = sv;
	c->ch = ch;
	c->primary = vmbus_channel_subchannel_index(ch) == 0;
	pthread_mutex_init(&c->in_lock, NULL);
	pthread_mutex_init(&c->out_lock, NULL);
	c->refs = 1;
	vmbus_channel_get(ch); /* the open reference, as chan_get pairs them */
	if (c->primary) {
		/* A fresh open is a fresh controller for the guest. */
		pthread_mutex_lock(&sv->state_lock);
		sv->init = SV_INIT_NONE;
		__atomic_store_n(&sv->version, 0, __ATOMIC_RELEASE);
		/* A reloaded storvsc asks for sub-channels again and opens
		 * only those offered after its request (its sc_create
		 * callback), so it may have as many new ones. */
		sv->subchannels_offered = 0;
		sv->primary = c;
		pthread_mutex_unlock(&sv->state_lock);
	}
	vmbus_channel_set_data(ch, c);
	return 0;
}

static void sv_close(void *dev, struct vmbus_channel *ch)
{
	struct storvsp *sv = dev;
	struct sv_chan *c = vmbus_channel_data(ch);
	vmbus_channel_set_data(ch, NULL);
	if (!c)
		return;
	pthread_mutex_lock(&sv->state_lock);
	if (sv->primary == c)
		sv->primary = NULL;
	pthread_mutex_unlock(&sv->state_lock);
	pthread_mutex_lock(&c->in_lock);
	pthread_mutex_lock(&c->out_lock);
	c->closed = true;
	struct sv_req *r = c->pend_head;
	c->pend_head = c->pend_tail = NULL;
	uint32_t dropped = 0;
	while (r) {
		struct sv_req *next = r->next;
		free(r);
		dropped++;
		r = next;
	}
	c->outstanding -= dropped;
	pthread_mutex_unlock(&c->out_lock);
	pthread_mutex_unlock(&c->in_lock);
	/* The pending requests' channel references, then the open one. */
	chan_put_n(c, dropped + 1);
}

static void sv_notify(void *dev, struct vmbus_channel *ch)
{
	struct storvsp *sv = dev;
	struct sv_chan *c = vmbus_channel_data(ch);
	if (!c)
		return;
	uint32_t subchannels = 0, written = 0;
	bool signal;
	pthread_mutex_lock(&c->in_lock);
	/* The guest may have made room for waiting completions. */
	pthread_mutex_lock(&c->out_lock);
	signal = flush_pending_locked(c, &written);
	c->outstanding -= written;
	STAT_ADD(sv, completions, written);
	pthread_mutex_unlock(&c->out_lock);
	chan_put_n(c, written); /* not the last: the open reference stays */
	signal |= drain(c, &subchannels);
	pthread_mutex_unlock(&c->in_lock);
	if (subchannels && vmbus_device_add_subchannels_locked(sv->dev, subchannels) == 0)
		STAT_ADD(sv, subchannels, subchannels);
	if (signal)
		vmbus_channel_signal_locked(ch);
}

/*
 * A channel's state for a snapshot (vmbus_device_ops.save), with no
 * request in the workers' hands (storvsp_quiesce; else -EBUSY):
 *   u8 format (1), u8 primary; the primary's also the controller's: u8
 *   initialisation state, u16 protocol version, u16 sub-channels
 *   offered; u8 ring broken; u32 completions waiting for ring space,
 *   each u8 notice (an unsolicited ENUMERATE_BUS), u64 transaction id,
 *   u32 length and the reply packet.
 * Restored, the waiting completions go out at the server's first notify.
 */
#define SV_STATE_FORMAT 1u

static uint32_t pending_count(const struct sv_chan *c)
{
	uint32_t n = 0;
	for (const struct sv_req *r = c->pend_head; r; r = r->next)
		n++;
	return n;
}

static int sv_save(void *dev, struct vmbus_channel *ch, void *buf, size_t *len)
{
	struct storvsp *sv = dev;
	struct sv_chan *c = vmbus_channel_data(ch);
	if (!c)
		return -EINVAL;
	struct record_writer w = {buf, *len, 0};
	pthread_mutex_lock(&sv->state_lock);
	pthread_mutex_lock(&c->in_lock);
	pthread_mutex_lock(&c->out_lock);
	uint32_t pending = pending_count(c);
	int err = c->outstanding != pending ? -EBUSY : 0;
	record_put8(&w, SV_STATE_FORMAT);
	record_put8(&w, c->primary);
	if (c->primary) {
		record_put8(&w, (uint8_t)sv->init);
		record_put16(&w, sv->version);
		record_put16(&w, sv->subchannels_offered);
	}
	record_put8(&w, c->broken);
	record_put32(&w, pending);
	for (const struct sv_req *r = c->pend_head; r; r = r->next) {
		record_put8(&w, r->notice);
		record_put64(&w, r->trans_id);
		record_put32(&w, r->reply_len);
		record_put(&w, &r->pkt, r->reply_len);
	}
	pthread_mutex_unlock(&c->out_lock);
	pthread_mutex_unlock(&c->in_lock);
	pthread_mutex_unlock(&sv->state_lock);
	if (err)
		return err;
	bool fits = w.len <= *len;
	*len = w.len;
	return fits ? 0 : -ENOSPC;
}

/* The controller's part of a primary's state, checked. */
static int read_controller(struct record_reader *rd, struct storvsp *sv, uint8_t *init,
			   uint16_t *version, uint16_t *offered)
{
	*init = record_get8(rd);
	*version = record_get16(rd);
	*offered = record_get16(rd);
	if (rd->bad || *init > SV_INIT_READY || (*version && !version_known(*version)) ||
	    (*init == SV_INIT_READY && !*version) || *offered > sv->cfg.max_subchannels)
		return -EINVAL;
	return 0;
}

/* The completions that waited for ring space, as requests again (each
 * holding its channel, as in flight). */
static int read_pending(struct record_reader *rd, struct sv_chan *c, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct sv_req *r = calloc(1, sizeof(*r));
		if (!r)
			return -ENOMEM;
		uint8_t notice = record_get8(rd);
		r->trans_id = record_get64(rd);
		r->reply_len = record_get32(rd);
		if (rd->bad || notice > 1 || !r->reply_len || r->reply_len > sizeof(r->pkt)) {
			free(r);
			return -EINVAL;
		}
		record_get(rd, &r->pkt, r->reply_len);
		r->notice = notice;
		r->c = c;
		req_append(&c->pend_head, &c->pend_tail, r, r);
		c->outstanding++;
		chan_get(c);
	}
	return rd->bad ? -EINVAL : 0;
}

static int sv_restore(void *dev, struct vmbus_channel *ch, const void *buf, size_t len)
{
	struct storvsp *sv = dev;
	struct record_reader rd = {buf, (const uint8_t *)buf + len, false};
	uint8_t format = record_get8(&rd), primary = record_get8(&rd), init = 0;
	uint16_t version = 0, offered = 0;
	bool is_primary = vmbus_channel_subchannel_index(ch) == 0;
	if (rd.bad || format != SV_STATE_FORMAT || primary != is_primary)
		return -EINVAL;
	if (is_primary && read_controller(&rd, sv, &init, &version, &offered))
		return -EINVAL;
	uint8_t broken = record_get8(&rd);
	uint32_t pending = record_get32(&rd);
	if (rd.bad || broken > 1 || pending > sv->cfg.max_outstanding)
		return -EINVAL;
	int err = sv_open(dev, ch, NULL);
	if (err)
		return err;
	struct sv_chan *c = vmbus_channel_data(ch);
	err = read_pending(&rd, c, pending);
	if (!err && !record_done(&rd))
		err = -EINVAL;
	if (err) {
		sv_close(dev, ch);
		return err;
	}
	c->broken = broken;
	if (is_primary) {
		pthread_mutex_lock(&sv->state_lock);
		sv->init = init;
		__atomic_store_n(&sv->version, version, __ATOMIC_RELEASE);
		sv->subchannels_offered = offered;
		pthread_mutex_unlock(&sv->state_lock);
		__atomic_store_n(&sv->st.version, version, __ATOMIC_RELAXED);
	}
	return 0;
}

static const struct vmbus_device_ops sv_ops = {
	.open = sv_open,
	.close = sv_close,
	.notify = sv_notify,
	.save = sv_save,
	.restore = sv_restore,
};

int storvsp_quiesce(struct storvsp *sv, uint64_t timeout_ns)
{
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)(timeout_ns / 1000000000u);
	deadline.tv_nsec += (long)(timeout_ns % 1000000000u);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	int err = 0;
	pthread_mutex_lock(&sv->q_lock);
	while (sv->busy && !err)
		err = -pthread_cond_timedwait(&sv->busy_cond, &sv->q_lock, &deadline);
	bool idle = !sv->busy;
	pthread_mutex_unlock(&sv->q_lock);
	return idle ? 0 : -EBUSY;
}

/* ---- setup ---- */

struct hv_guid storvsp_instance_guid(uint32_t instance)
{
	/* The class GUID's tail with the last byte changed, so an instance
	 * never equals the class. */
	return HV_GUID(instance, 0x04a1, 0x4d29, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x80);
}

static void stop_workers(struct storvsp *sv)
{
	pthread_mutex_lock(&sv->q_lock);
	sv->stopping = true;
	pthread_cond_broadcast(&sv->q_cond);
	pthread_mutex_unlock(&sv->q_lock);
	for (uint32_t i = 0; i < sv->nthreads; i++)
		pthread_join(sv->workers[i].thread, NULL);
	for (uint32_t i = 0; sv->workers && i < sv->cfg.workers; i++)
		if (sv->workers[i].efd >= 0)
			close(sv->workers[i].efd);
	free(sv->workers);
	sv->workers = NULL;
	sv->nthreads = 0;
}

static void sv_free(struct storvsp *sv)
{
	for (uint32_t i = 0; i < STORVSP_MAX_LUNS; i++)
		disk_put(sv->disks[i]);
	pthread_mutex_destroy(&sv->disk_lock);
	pthread_mutex_destroy(&sv->state_lock);
	pthread_mutex_destroy(&sv->q_lock);
	pthread_cond_destroy(&sv->q_cond);
	pthread_cond_destroy(&sv->busy_cond);
	free(sv);
}

int storvsp_add(struct vmbus_server *s, const struct guest_memory *mem,
		const struct storvsp_config *cfg, struct storvsp **out)
{
	struct storvsp *sv = calloc(1, sizeof(*sv));
	if (!sv)
		return -ENOMEM;
	sv->mem = mem;
	sv->cfg = cfg ? *cfg : (struct storvsp_config){0};
	if (!sv->cfg.workers)
		sv->cfg.workers = DEFAULT_WORKERS;
	if (!sv->cfg.max_subchannels)
		sv->cfg.max_subchannels = DEFAULT_SUBCHANNELS;
	if (!sv->cfg.max_transfer_bytes)
		sv->cfg.max_transfer_bytes = DEFAULT_MAX_TRANSFER;
	if (!sv->cfg.max_outstanding)
		sv->cfg.max_outstanding = DEFAULT_MAX_OUTSTANDING;
	if (sv->cfg.max_transfer_bytes % PAGE) {
		free(sv);
		return -EINVAL;
	}
	pthread_mutex_init(&sv->state_lock, NULL);
	pthread_mutex_init(&sv->disk_lock, NULL);
	pthread_mutex_init(&sv->q_lock, NULL);
	pthread_cond_init(&sv->q_cond, NULL);
	pthread_condattr_t monotonic;
	pthread_condattr_init(&monotonic);
	pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
	pthread_cond_init(&sv->busy_cond, &monotonic);
	pthread_condattr_destroy(&monotonic);
	sv->workers = calloc(sv->cfg.workers, sizeof(*sv->workers));
	int err = sv->workers ? 0 : -ENOMEM;
	for (uint32_t i = 0; !err && i < sv->cfg.workers; i++) {
		struct sv_worker *w = &sv->workers[i];
		w->sv = sv;
		/* No eventfd: this worker runs without a ring. */
		w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}
	for (uint32_t i = 0; !err && i < sv->cfg.workers; i++) {
		err = -pthread_create(&sv->workers[i].thread, NULL, worker, &sv->workers[i]);
		if (!err)
			sv->nthreads++;
	}
	if (err) {
		stop_workers(sv);
		sv_free(sv);
		return err;
	}
	struct vmbus_device_desc desc = {
		.class_id = VMBUS_CLASS_SCSI,
		.instance_id = hv_guid_is_null(&sv->cfg.instance_id)
				       ? storvsp_instance_guid(sv->cfg.instance)
				       : sv->cfg.instance_id,
		.name = "storvsp",
		.ops = &sv_ops,
		.dev = sv,
	};
	err = vmbus_server_add_device(s, &desc, &sv->dev);
	if (err) {
		stop_workers(sv);
		sv_free(sv);
		return err;
	}
	*out = sv;
	return 0;
}

/*
 * Tells an initialized guest to rescan the bus: an unsolicited in-band
 * ENUMERATE_BUS with transaction id 0, which storvsc_on_receive turns into
 * a SCSI host scan. Queued like a completion if the ring is full.
 */
static void notify_rescan(struct storvsp *sv)
{
	pthread_mutex_lock(&sv->state_lock);
	struct sv_chan *c = sv->init == SV_INIT_READY ? sv->primary : NULL;
	if (c)
		chan_get(c);
	pthread_mutex_unlock(&sv->state_lock);
	if (!c)
		return;
	struct sv_req *r = calloc(1, sizeof(*r));
	bool signal = false;
	if (r) {
		r->c = c;
		r->notice = true;
		r->pkt.operation = VSTOR_OPERATION_ENUMERATE_BUS;
		r->reply_len = sv_packet_size(sv_version(sv));
		pthread_mutex_lock(&c->out_lock);
		c->outstanding++;
		pthread_mutex_unlock(&c->out_lock);
		chan_get(c); /* the notice's own reference, as a request's */
		bool resume;
		uint32_t puts;
		signal = complete_req(c, r, &puts, &resume);
		chan_put_n(c, puts);
	}
	if (signal)
		vmbus_channel_signal(c->ch);
	chan_put(c);
}

int storvsp_add_disk(struct storvsp *sv, uint32_t lun, struct scsi_disk *disk)
{
	if (lun >= STORVSP_MAX_LUNS || !disk)
		return -EINVAL;
	struct sv_disk *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->d = disk;
	d->refs = 1;
	pthread_mutex_lock(&sv->disk_lock);
	bool taken = sv->disks[lun] != NULL;
	if (!taken)
		sv->disks[lun] = d;
	pthread_mutex_unlock(&sv->disk_lock);
	if (taken) {
		free(d);
		return -EEXIST;
	}
	notify_rescan(sv);
	return 0;
}

int storvsp_remove_disk(struct storvsp *sv, uint32_t lun)
{
	if (lun >= STORVSP_MAX_LUNS)
		return -EINVAL;
	pthread_mutex_lock(&sv->disk_lock);
	struct sv_disk *d = sv->disks[lun];
	sv->disks[lun] = NULL;
	pthread_mutex_unlock(&sv->disk_lock);
	if (!d)
		return -ENOENT;
	/* Requests holding it finish; new ones find an empty slot. */
	disk_put(d);
	notify_rescan(sv);
	return 0;
}

void storvsp_remove(struct vmbus_server *s, struct storvsp *sv)
{
	if (!sv)
		return;
	/* Channels close first (no completion is written after), then the
	 * workers finish what they hold and exit. */
	vmbus_server_remove_device(s, sv->dev);
	stop_workers(sv);
	sv_free(sv);
}

void storvsp_get_stats(struct storvsp *sv, struct storvsp_stats *out)
{
#define LOAD(field) out->field = __atomic_load_n(&sv->st.field, __ATOMIC_RELAXED)
	LOAD(version);
	LOAD(requests);
	LOAD(completions);
	LOAD(check_conditions);
	LOAD(bad_packets);
	LOAD(bad_gpas);
	LOAD(ring_full);
	LOAD(throttled);
	LOAD(subchannels);
	LOAD(resets);
#undef LOAD
}
