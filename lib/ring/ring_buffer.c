/* SPDX-License-Identifier: MIT */
/*
 * VMBus ring buffer engine. Rules (Linux 6.1 drivers/hv/ring_buffer.c):
 *  - indices are byte offsets into the data area, always 8-byte aligned;
 *  - a packet is len8 * 8 bytes plus an 8-byte trailer;
 *  - a writer needs free space strictly greater than what it writes, so
 *    equal indices always mean "empty";
 *  - the writer signals when the reader was not polling and had drained
 *    the ring; the reader signals when it frees space across the blocked
 *    writer's pending_send_sz.
 *
 * Memory ordering, for a writer and a reader on two CPUs (or two VMs):
 *  - the writer stores packet bytes, then store-releases write_index; the
 *    reader load-acquires write_index before it reads any packet byte;
 *  - the reader finishes copying a packet out, then store-releases
 *    read_index; the writer load-acquires read_index before it reuses space;
 *  - both signaling decisions are a store followed by a load of the other
 *    side's variable (store index, load interrupt_mask; store read_index,
 *    load pending_send_sz; store interrupt_mask, load write_index). Only a
 *    full fence orders a store before a later load; without it both sides
 *    can miss each other and a wakeup is lost.
 */
#include <errno.h>
#include <string.h>

#include "ring_buffer.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ring engine decodes descriptors as little-endian words"
#endif

#define DESC_SIZE ((uint32_t)sizeof(struct vmbus_packet_desc))
/* Largest data area: indices are u32 and the mirror doubles it. */
#define RING_MAX_DATA_SIZE (1u << 30)

static uint32_t load_acquire(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static uint32_t load_relaxed(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void store_release(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static void store_relaxed(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static void full_fence(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* idx + n for idx < size and n <= size, back into [0, size). */
static uint32_t ring_add(const struct vmbus_ring_mem *m, uint32_t idx, uint32_t n)
{
	uint32_t next = idx + n;
	return next >= m->size ? next - m->size : next;
}

static bool index_valid(const struct vmbus_ring_mem *m, uint32_t idx)
{
	return idx < m->size && (idx & (VMBUS_PACKET_ALIGN - 1)) == 0;
}

/* Bytes between read and write: what the reader has yet to consume. */
static uint32_t bytes_used(const struct vmbus_ring_mem *m, uint32_t write, uint32_t read)
{
	return write >= read ? write - read : m->size - read + write;
}

/*
 * A descriptor as the two little-endian words it is on the wire. Built and
 * taken apart in registers: assembling it field by field in memory and then
 * copying it as a whole defeats store-to-load forwarding, which cost a
 * quarter of the time of a small write.
 */
struct desc_words {
	uint64_t lo; /* type 15:0, offset8 31:16, len8 47:32, flags 63:48 */
	uint64_t hi; /* trans_id */
};

static struct desc_words desc_pack(uint16_t type, uint16_t offset8, uint16_t len8,
				   uint16_t flags, uint64_t trans_id)
{
	return (struct desc_words){
		(uint64_t)type | (uint64_t)offset8 << 16 | (uint64_t)len8 << 32 |
			(uint64_t)flags << 48,
		trans_id,
	};
}

static void copy_to_ring(const struct vmbus_ring_mem *m, uint32_t idx, const void *src,
			 uint32_t len)
{
	if (m->mirrored || len <= m->size - idx) {
		memcpy(m->data + idx, src, len);
		return;
	}
	uint32_t first = m->size - idx;
	memcpy(m->data + idx, src, first);
	memcpy(m->data, (const uint8_t *)src + first, len - first);
}

static void copy_from_ring(const struct vmbus_ring_mem *m, void *dst, uint32_t idx,
			   uint32_t len)
{
	if (m->mirrored || len <= m->size - idx) {
		memcpy(dst, m->data + idx, len);
		return;
	}
	uint32_t first = m->size - idx;
	memcpy(dst, m->data + idx, first);
	memcpy((uint8_t *)dst + first, m->data, len - first);
}

int vmbus_ring_mem_init(struct vmbus_ring_mem *mem, void *base, size_t ring_bytes,
			bool mirrored)
{
	if (!base || ring_bytes % HV_PAGE_SIZE != 0 || ring_bytes < 2 * HV_PAGE_SIZE ||
	    ring_bytes - VMBUS_RING_HEADER_SIZE > RING_MAX_DATA_SIZE)
		return -EINVAL;
	mem->hdr = base;
	mem->data = (uint8_t *)base + VMBUS_RING_HEADER_SIZE;
	mem->size = (uint32_t)(ring_bytes - VMBUS_RING_HEADER_SIZE);
	mem->mirrored = mirrored;
	return 0;
}

void vmbus_ring_mem_reset(const struct vmbus_ring_mem *mem)
{
	memset(mem->hdr, 0, sizeof(*mem->hdr));
	mem->hdr->feature_bits = VMBUS_RING_FEAT_PENDING_SEND_SZ;
}

/* ------------------------------------------------------------------ */
/* Writer                                                              */
/* ------------------------------------------------------------------ */

uint32_t vmbus_packet_out_ring_bytes(const struct vmbus_packet_out *p)
{
	uint64_t body = 0;

	for (uint32_t i = 0; i < p->iov_count; i++)
		body += p->iov[i].len;
	if (p->ext_len % VMBUS_PACKET_ALIGN != 0 || p->ext_len > body)
		return 0;
	uint64_t len = (DESC_SIZE + body + 7u) & ~7ull;
	if (len > VMBUS_PACKET_MAX_LEN)
		return 0;
	return (uint32_t)len + VMBUS_RING_TRAILER_SIZE;
}

int vmbus_ring_writer_attach(struct vmbus_ring_writer *w, const struct vmbus_ring_mem *mem)
{
	uint32_t write = load_relaxed(&mem->hdr->write_index);
	uint32_t read = load_acquire(&mem->hdr->read_index);

	if (!index_valid(mem, write) || !index_valid(mem, read))
		return -EBADMSG;
	memset(w, 0, sizeof(*w));
	w->mem = *mem;
	w->write_index = write;
	w->published = write;
	w->read_index_seen = read;
	return 0;
}

static int writer_corrupt(struct vmbus_ring_writer *w)
{
	w->broken = true;
	w->stats.corrupt++;
	return -EBADMSG;
}

/* Reloads read_index; false (and the ring broken) if it is invalid. */
static bool writer_refresh(struct vmbus_ring_writer *w)
{
	uint32_t read = load_acquire(&w->mem.hdr->read_index);

	if (!index_valid(&w->mem, read)) {
		writer_corrupt(w);
		return false;
	}
	w->read_index_seen = read;
	return true;
}

/* Free space after the packets queued so far. */
static uint32_t writer_free_after_queued(const struct vmbus_ring_writer *w)
{
	return w->mem.size - bytes_used(&w->mem, w->write_index, w->read_index_seen);
}

uint32_t vmbus_ring_writer_free(struct vmbus_ring_writer *w)
{
	if (!w->broken)
		writer_refresh(w);
	return w->broken ? 0 : writer_free_after_queued(w);
}

/* The packet lies in one piece from data + start: one sequential pass of
 * plain stores. The padding (under 8 bytes) is cleared with one 8-byte
 * store; what it writes past the padding is the trailer, stored next. */
static void write_contiguous(const struct vmbus_ring_mem *m, uint32_t start, uint32_t len,
			     struct desc_words d, const struct vmbus_packet_out *p)
{
	uint8_t *dst = m->data + start;
	const uint64_t zero = 0;
	const uint64_t trailer = (uint64_t)start << 32;

	memcpy(dst, &d.lo, sizeof(d.lo));
	memcpy(dst + 8, &d.hi, sizeof(d.hi));
	dst += DESC_SIZE;
	for (uint32_t i = 0; i < p->iov_count; i++) {
		if (p->iov[i].len == 0)
			continue; /* base may be NULL */
		memcpy(dst, p->iov[i].base, p->iov[i].len);
		dst += p->iov[i].len;
	}
	memcpy(dst, &zero, sizeof(zero));
	memcpy(m->data + start + len, &trailer, sizeof(trailer));
}

static void write_packet(struct vmbus_ring_writer *w, const struct vmbus_packet_out *p,
			 uint32_t ring_bytes)
{
	static const uint8_t zeros[VMBUS_PACKET_ALIGN];
	const struct vmbus_ring_mem *m = &w->mem;
	uint32_t len = ring_bytes - VMBUS_RING_TRAILER_SIZE;
	uint32_t start = w->write_index;
	uint32_t idx = start;
	struct desc_words d = desc_pack(p->type, (uint16_t)((DESC_SIZE + p->ext_len) / 8),
					(uint16_t)(len / 8), p->flags, p->trans_id);
	uint32_t body = 0;

	w->stats.packets++;
	w->stats.bytes += ring_bytes;
	if (m->mirrored || ring_bytes <= m->size - start) {
		write_contiguous(m, start, len, d, p);
		w->write_index = ring_add(m, start, ring_bytes);
		return;
	}

	copy_to_ring(m, idx, &d, DESC_SIZE);
	idx = ring_add(m, idx, DESC_SIZE);
	for (uint32_t i = 0; i < p->iov_count; i++) {
		if (p->iov[i].len == 0)
			continue; /* base may be NULL */
		copy_to_ring(m, idx, p->iov[i].base, p->iov[i].len);
		idx = ring_add(m, idx, p->iov[i].len);
		body += p->iov[i].len;
	}
	uint32_t pad = len - DESC_SIZE - body;
	copy_to_ring(m, idx, zeros, pad);
	idx = ring_add(m, idx, pad);

	/* The trailer: where this packet started, in the upper half. */
	uint64_t trailer = (uint64_t)start << 32;
	copy_to_ring(m, idx, &trailer, sizeof(trailer));
	w->write_index = ring_add(m, idx, sizeof(trailer));
}

int vmbus_ring_put(struct vmbus_ring_writer *w, const struct vmbus_packet_out *p,
		   uint32_t *space_needed)
{
	if (w->broken)
		return -EBADMSG;
	uint32_t ring_bytes = vmbus_packet_out_ring_bytes(p);
	if (ring_bytes == 0)
		return -EINVAL;
	/* Free space must stay above what is written, so at most size - 1. */
	if (ring_bytes >= w->mem.size)
		return -EMSGSIZE;

	/* The cached read_index can only understate free space; look again
	 * only when it seems too small. */
	if (writer_free_after_queued(w) <= ring_bytes) {
		if (!writer_refresh(w))
			return -EBADMSG;
		if (writer_free_after_queued(w) <= ring_bytes) {
			w->stats.full++;
			if (space_needed)
				*space_needed = ring_bytes;
			return -EAGAIN;
		}
	}
	write_packet(w, p, ring_bytes);
	return 0;
}

bool vmbus_ring_publish(struct vmbus_ring_writer *w)
{
	struct vmbus_ring_header *hdr = w->mem.hdr;
	uint32_t before = w->published;

	if (w->write_index == before)
		return false;
	/* Release: the packet bytes are visible before the index that covers them. */
	store_release(&hdr->write_index, w->write_index);
	w->published = w->write_index;
	w->stats.publishes++;

	/* Store write_index, then load interrupt_mask: a store-load pair
	 * against the reader's unmask (store mask, load write_index). */
	full_fence();
	if (load_acquire(&hdr->interrupt_mask))
		return false;
	/* The reader is not polling. It needs a signal only if it had consumed
	 * everything before this batch; otherwise it is still busy and will
	 * find these packets itself. */
	if (load_relaxed(&hdr->read_index) != before)
		return false;
	w->stats.signals++;
	return true;
}

int vmbus_ring_send(struct vmbus_ring_writer *w, const struct vmbus_packet_out *p,
		    bool *signal)
{
	int err = vmbus_ring_put(w, p, NULL);

	if (err)
		return err;
	bool s = vmbus_ring_publish(w);
	if (signal)
		*signal = s;
	return 0;
}

int vmbus_ring_put_inband(struct vmbus_ring_writer *w, uint64_t trans_id, uint16_t flags,
			  const struct vmbus_ring_iov *payload, uint32_t payload_count,
			  uint32_t *space_needed)
{
	struct vmbus_packet_out p = {
		.type = VMBUS_PKT_DATA_INBAND,
		.flags = flags,
		.trans_id = trans_id,
		.iov = payload,
		.iov_count = payload_count,
	};
	return vmbus_ring_put(w, &p, space_needed);
}

int vmbus_ring_put_completion(struct vmbus_ring_writer *w, uint64_t trans_id,
			      const void *payload, uint32_t len, uint32_t *space_needed)
{
	struct vmbus_ring_iov iov = {payload, len};
	struct vmbus_packet_out p = {
		.type = VMBUS_PKT_COMP,
		.trans_id = trans_id,
		.iov = &iov,
		.iov_count = len ? 1 : 0,
	};
	return vmbus_ring_put(w, &p, space_needed);
}

static uint32_t gpa_range_pfn_count(uint32_t byte_offset, uint32_t byte_count)
{
	uint64_t span = (uint64_t)byte_offset + byte_count;
	return (uint32_t)((span + HV_PAGE_SIZE - 1) / HV_PAGE_SIZE);
}

int vmbus_ring_put_gpa_direct(struct vmbus_ring_writer *w, uint64_t trans_id,
			      const struct vmbus_gpa_range_out *ranges, uint32_t range_count,
			      const void *payload, uint32_t len, uint32_t *space_needed)
{
	struct {
		uint32_t reserved;
		uint32_t range_count;
	} head = {0, range_count};
	struct vmbus_gpa_range range_heads[VMBUS_RING_MAX_GPA_RANGES];
	struct vmbus_ring_iov iov[2 + 2 * VMBUS_RING_MAX_GPA_RANGES];
	uint32_t n = 0;
	uint64_t ext_len = sizeof(head);

	if (range_count > VMBUS_RING_MAX_GPA_RANGES)
		return -EINVAL;
	iov[n++] = (struct vmbus_ring_iov){&head, sizeof(head)};
	for (uint32_t i = 0; i < range_count; i++) {
		const struct vmbus_gpa_range_out *r = &ranges[i];
		if (r->byte_count == 0 || r->byte_offset >= HV_PAGE_SIZE)
			return -EINVAL;
		uint32_t pfns = gpa_range_pfn_count(r->byte_offset, r->byte_count);
		range_heads[i].byte_count = r->byte_count;
		range_heads[i].byte_offset = r->byte_offset;
		iov[n++] = (struct vmbus_ring_iov){&range_heads[i], sizeof(range_heads[i])};
		iov[n++] = (struct vmbus_ring_iov){r->pfns, pfns * (uint32_t)sizeof(uint64_t)};
		ext_len += sizeof(range_heads[i]) + (uint64_t)pfns * sizeof(uint64_t);
		if (ext_len > VMBUS_PACKET_MAX_LEN)
			return -EINVAL;
	}
	if (len)
		iov[n++] = (struct vmbus_ring_iov){payload, len};

	struct vmbus_packet_out p = {
		.type = VMBUS_PKT_DATA_USING_GPA_DIRECT,
		.flags = VMBUS_PKT_FLAG_COMPLETION_REQUESTED,
		.trans_id = trans_id,
		.ext_len = (uint32_t)ext_len,
		.iov = iov,
		.iov_count = n,
	};
	return vmbus_ring_put(w, &p, space_needed);
}

int vmbus_ring_put_xfer_pages(struct vmbus_ring_writer *w, uint64_t trans_id,
			      uint16_t pageset_id, const struct vmbus_xfer_page_range *ranges,
			      uint32_t range_count, const void *payload, uint32_t len,
			      uint32_t *space_needed)
{
	struct {
		uint16_t pageset_id;
		uint8_t sender_owns_set;
		uint8_t reserved;
		uint32_t range_count;
	} head = {pageset_id, 0, 0, range_count};
	uint64_t ranges_len = (uint64_t)range_count * sizeof(*ranges);

	if (ranges_len > VMBUS_PACKET_MAX_LEN)
		return -EINVAL;
	struct vmbus_ring_iov iov[3] = {
		{&head, sizeof(head)},
		{ranges, (uint32_t)ranges_len},
		{payload, len},
	};
	struct vmbus_packet_out p = {
		.type = VMBUS_PKT_DATA_USING_XFER_PAGES,
		.flags = VMBUS_PKT_FLAG_COMPLETION_REQUESTED,
		.trans_id = trans_id,
		.ext_len = (uint32_t)(sizeof(head) + ranges_len),
		.iov = iov,
		.iov_count = 3,
	};
	return vmbus_ring_put(w, &p, space_needed);
}

bool vmbus_ring_writer_want_space(struct vmbus_ring_writer *w, uint32_t needed)
{
	/* The reader measures free space from the published write index, so
	 * packets still queued here count against it. */
	uint32_t unpublished = bytes_used(&w->mem, w->write_index, w->published);

	store_relaxed(&w->mem.hdr->pending_send_sz, needed + unpublished);
	/* Store pending_send_sz, then load read_index: against the reader's
	 * commit (store read_index, load pending_send_sz). */
	full_fence();
	if (w->broken || !writer_refresh(w))
		return false;
	return writer_free_after_queued(w) > needed;
}

void vmbus_ring_writer_space_done(struct vmbus_ring_writer *w)
{
	store_relaxed(&w->mem.hdr->pending_send_sz, 0);
}

/* ------------------------------------------------------------------ */
/* Reader                                                              */
/* ------------------------------------------------------------------ */

int vmbus_ring_reader_attach(struct vmbus_ring_reader *r, const struct vmbus_ring_mem *mem)
{
	uint32_t read = load_relaxed(&mem->hdr->read_index);
	uint32_t write = load_acquire(&mem->hdr->write_index);

	if (!index_valid(mem, write) || !index_valid(mem, read))
		return -EBADMSG;
	memset(r, 0, sizeof(*r));
	r->mem = *mem;
	r->read_index = read;
	r->published = read;
	r->write_index_seen = write;
	return 0;
}

static int reader_corrupt(struct vmbus_ring_reader *r)
{
	r->broken = true;
	r->stats.corrupt++;
	return -EBADMSG;
}

/* Reloads write_index; false (and the ring broken) if it is invalid. */
static bool reader_refresh(struct vmbus_ring_reader *r)
{
	/* Acquire: packet bytes below the new index are read after it. */
	uint32_t write = load_acquire(&r->mem.hdr->write_index);

	if (!index_valid(&r->mem, write)) {
		reader_corrupt(r);
		return false;
	}
	r->write_index_seen = write;
	return true;
}

uint32_t vmbus_ring_reader_available(struct vmbus_ring_reader *r)
{
	if (r->broken || !reader_refresh(r))
		return 0;
	return bytes_used(&r->mem, r->write_index_seen, r->read_index);
}

/*
 * Reads the descriptor once, as two whole words, so that the values checked
 * are the values used: the other side may rewrite the ring at any moment.
 * Indices are 8-aligned and the data area page-aligned, so both words are
 * naturally aligned and neither straddles the end of the ring.
 */
static struct desc_words read_desc(const struct vmbus_ring_reader *r)
{
	const struct vmbus_ring_mem *m = &r->mem;
	return (struct desc_words){
		__atomic_load_n((const uint64_t *)(m->data + r->read_index), __ATOMIC_RELAXED),
		__atomic_load_n((const uint64_t *)(m->data + ring_add(m, r->read_index, 8)),
				__ATOMIC_RELAXED),
	};
}

int vmbus_ring_peek(struct vmbus_ring_reader *r, void *buf, uint32_t buflen,
		    struct vmbus_packet *pkt)
{
	if (r->broken)
		return -EBADMSG;
	uint32_t avail = bytes_used(&r->mem, r->write_index_seen, r->read_index);
	if (avail == 0) {
		if (!reader_refresh(r))
			return -EBADMSG;
		avail = bytes_used(&r->mem, r->write_index_seen, r->read_index);
		if (avail == 0)
			return -EAGAIN;
	}
	/* A writer publishes whole packets only: anything published is at
	 * least a descriptor and a trailer, and holds the packet entirely. */
	if (avail < DESC_SIZE + VMBUS_RING_TRAILER_SIZE)
		return reader_corrupt(r);

	struct desc_words d = read_desc(r);
	uint32_t len = (uint32_t)(uint16_t)(d.lo >> 32) * 8u;
	uint32_t offset = (uint32_t)(uint16_t)(d.lo >> 16) * 8u;
	if (len < DESC_SIZE || offset < DESC_SIZE || offset > len ||
	    len > avail - VMBUS_RING_TRAILER_SIZE)
		return reader_corrupt(r);
	pkt->len = len;
	if (len > buflen)
		return -EMSGSIZE;

	/* Copy out; from here on only the private copy is looked at, and its
	 * descriptor is the one validated above, not a second read. */
	uint8_t *copy = buf;
	memcpy(copy, &d.lo, sizeof(d.lo));
	memcpy(copy + 8, &d.hi, sizeof(d.hi));
	copy_from_ring(&r->mem, copy + DESC_SIZE, ring_add(&r->mem, r->read_index, DESC_SIZE),
		       len - DESC_SIZE);
	pkt->type = (uint16_t)d.lo;
	pkt->flags = (uint16_t)(d.lo >> 48);
	pkt->trans_id = d.hi;
	pkt->ext = copy + DESC_SIZE;
	pkt->ext_len = offset - DESC_SIZE;
	pkt->data = copy + offset;
	pkt->data_len = len - offset;
	r->peeked = len + VMBUS_RING_TRAILER_SIZE;
	return 0;
}

void vmbus_ring_advance(struct vmbus_ring_reader *r)
{
	if (!r->peeked)
		return;
	r->read_index = ring_add(&r->mem, r->read_index, r->peeked);
	r->stats.packets++;
	r->stats.bytes += r->peeked;
	r->peeked = 0;
}

int vmbus_ring_recv(struct vmbus_ring_reader *r, void *buf, uint32_t buflen,
		    struct vmbus_packet *pkt)
{
	int err = vmbus_ring_peek(r, buf, buflen, pkt);

	if (err == 0)
		vmbus_ring_advance(r);
	return err;
}

bool vmbus_ring_commit(struct vmbus_ring_reader *r)
{
	struct vmbus_ring_header *hdr = r->mem.hdr;
	uint32_t before = r->published;

	if (r->read_index == before)
		return false;
	/* Release: our copies are complete before the writer may reuse the space. */
	store_release(&hdr->read_index, r->read_index);
	r->published = r->read_index;
	r->stats.commits++;

	if (!(load_relaxed(&hdr->feature_bits) & VMBUS_RING_FEAT_PENDING_SEND_SZ))
		return false;
	/* Store read_index, then load pending_send_sz: a store-load pair
	 * against the writer's want_space (store pending, load read_index). */
	full_fence();
	uint32_t pending = load_relaxed(&hdr->pending_send_sz);
	if (!pending)
		return false;

	uint32_t write = load_acquire(&hdr->write_index);
	if (!index_valid(&r->mem, write))
		return false; /* peek() will report it */
	uint32_t free_now = r->mem.size - bytes_used(&r->mem, write, r->read_index);
	uint32_t freed = bytes_used(&r->mem, r->read_index, before);
	/* Signal only on the transition from "not enough" to "enough": if
	 * there was room before this commit, the writer was not blocked. */
	if (freed < free_now && free_now - freed > pending)
		return false;
	if (free_now <= pending)
		return false;
	r->stats.signals++;
	return true;
}

void vmbus_ring_reader_mask(struct vmbus_ring_reader *r)
{
	/* Only a hint to the writer: a late view costs a spurious signal. */
	store_relaxed(&r->mem.hdr->interrupt_mask, 1);
}

bool vmbus_ring_reader_unmask(struct vmbus_ring_reader *r)
{
	store_relaxed(&r->mem.hdr->interrupt_mask, 0);
	/* Store interrupt_mask, then load write_index: against the writer's
	 * publish (store write_index, load interrupt_mask). */
	full_fence();
	return vmbus_ring_reader_available(r) != 0;
}

/* ------------------------------------------------------------------ */
/* Descriptor extensions                                               */
/* ------------------------------------------------------------------ */

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

int vmbus_gpa_ranges_begin(const struct vmbus_packet *pkt, struct vmbus_gpa_range_iter *it)
{
	/* After the descriptor: reserved u32, range_count u32. */
	if (pkt->type != VMBUS_PKT_DATA_USING_GPA_DIRECT || pkt->ext_len < 8)
		return -EBADMSG;
	uint32_t count = get_le32(pkt->ext + 4);
	/* The smallest range is its 8-byte head and one PFN. */
	if (count > (pkt->ext_len - 8) / 16)
		return -EBADMSG;
	it->next = pkt->ext + 8;
	it->left = pkt->ext_len - 8;
	it->ranges = count;
	return 0;
}

int vmbus_gpa_ranges_next(struct vmbus_gpa_range_iter *it, struct vmbus_gpa_range_in *out)
{
	if (it->ranges == 0)
		return 0;
	if (it->left < sizeof(struct vmbus_gpa_range))
		return -EBADMSG;
	uint32_t byte_count = get_le32(it->next);
	uint32_t byte_offset = get_le32(it->next + 4);
	if (byte_count == 0 || byte_offset >= HV_PAGE_SIZE)
		return -EBADMSG;
	uint32_t pfns = gpa_range_pfn_count(byte_offset, byte_count);
	uint32_t room = (it->left - (uint32_t)sizeof(struct vmbus_gpa_range)) / 8;
	if (pfns > room)
		return -EBADMSG;
	/* A PFN past what x86-64 can address would wrap pfn * 4096. */
	const uint8_t *p = it->next + sizeof(struct vmbus_gpa_range);
	for (uint32_t i = 0; i < pfns; i++)
		if (get_le64(p + (size_t)i * 8) > VMBUS_GPA_MAX_PFN)
			return -EBADMSG;
	out->byte_count = byte_count;
	out->byte_offset = byte_offset;
	out->pfn_count = pfns;
	out->pfns = it->next + sizeof(struct vmbus_gpa_range);
	uint32_t used = (uint32_t)sizeof(struct vmbus_gpa_range) + pfns * 8;
	it->next += used;
	it->left -= used;
	it->ranges--;
	return 1;
}

uint64_t vmbus_gpa_range_pfn(const struct vmbus_gpa_range_in *r, uint32_t i)
{
	return get_le64(r->pfns + (size_t)i * 8);
}

int vmbus_xfer_pages_parse(const struct vmbus_packet *pkt, struct vmbus_xfer_pages_in *out)
{
	/* After the descriptor: pageset id u16, sender_owns u8, reserved u8,
	 * range_count u32, then the ranges. */
	if (pkt->type != VMBUS_PKT_DATA_USING_XFER_PAGES || pkt->ext_len < 8)
		return -EBADMSG;
	uint32_t count = get_le32(pkt->ext + 4);
	if (count > (pkt->ext_len - 8) / sizeof(struct vmbus_xfer_page_range))
		return -EBADMSG;
	out->pageset_id = (uint16_t)(pkt->ext[0] | pkt->ext[1] << 8);
	out->sender_owns_set = pkt->ext[2];
	out->range_count = count;
	out->ranges = pkt->ext + 8;
	return 0;
}

struct vmbus_xfer_page_range vmbus_xfer_pages_range(const struct vmbus_xfer_pages_in *x,
						    uint32_t i)
{
	const uint8_t *p = x->ranges + (size_t)i * sizeof(struct vmbus_xfer_page_range);
	return (struct vmbus_xfer_page_range){get_le32(p), get_le32(p + 4)};
}
