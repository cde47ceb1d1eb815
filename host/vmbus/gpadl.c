/* SPDX-License-Identifier: MIT */
/*
 * GPADLs: guest memory the guest describes to the host by PFN, in a
 * GPADL_HEADER and as many GPADL_BODY messages as the PFNs need
 * (channel.c create_gpadl_header: one range, byte_offset 0, 26 PFNs in the
 * header, 28 in each body, msg_number always 0). The range words (each
 * range a {byte_count, byte_offset} head then its PFNs) are collected until
 * range_buflen bytes are in, then checked as a whole: the ranges must fill
 * the buffer exactly, every PFN must be guest RAM, and all GPADLs together
 * must stay within gpadl_limit. The guest waits for GPADL_CREATED
 * (channel.c __vmbus_establish_gpadl), so once a header was accepted every
 * outcome is answered.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmbus_internal.h"

static uint32_t bucket_of(uint32_t handle)
{
	return (handle * 0x9E3779B1u) >> 22 & (VMBUS_SERVER_GPADL_BUCKETS - 1);
}
_Static_assert(VMBUS_SERVER_GPADL_BUCKETS == 1u << 10, "bucket_of takes 10 bits");

struct gpadl *gpadl_find(struct vmbus_server *s, uint32_t handle)
{
	for (struct gpadl *g = s->gpadls.buckets[bucket_of(handle)]; g; g = g->hash_next)
		if (g->handle == handle)
			return g;
	return NULL;
}

static void gpadl_insert(struct vmbus_server *s, struct gpadl *g)
{
	struct gpadl **b = &s->gpadls.buckets[bucket_of(g->handle)];
	g->hash_next = *b;
	*b = g;
	vmbus_list_add_tail(&s->gpadls.all, &g->link);
	s->gpadls.count++;
}

static void gpadl_destroy(struct vmbus_server *s, struct gpadl *g)
{
	struct gpadl_table *t = &s->gpadls;
	for (struct gpadl **p = &t->buckets[bucket_of(g->handle)]; *p; p = &(*p)->hash_next) {
		if (*p == g) {
			*p = g->hash_next;
			break;
		}
	}
	vmbus_list_del(&g->link);
	t->count--;
	t->reserved -= g->reserved;
	if (g->state == GPADL_READY) {
		t->ready--;
		t->ready_bytes -= (uint64_t)g->pfn_count * HV_PAGE_SIZE;
	}
	free(g->buf);
	free(g->pfns);
	free(g);
}

void gpadl_free_owned(struct vmbus_server *s, const struct vmbus_offer_rec *owner)
{
	struct vmbus_list *all = &s->gpadls.all;
	for (struct vmbus_list *l = all->next, *next; l != all; l = next) {
		next = l->next;
		struct gpadl *g = container_of(l, struct gpadl, link);
		if (!owner || g->owner == owner)
			gpadl_destroy(s, g);
	}
}

static void send_created(struct vmbus_server *s, uint32_t relid, uint32_t handle,
			 uint32_t status)
{
	struct vmbus_msg_gpadl_created m = {
		.header = {.msgtype = VMBUS_MSG_GPADL_CREATED},
		.child_relid = relid,
		.gpadl = handle,
		.creation_status = status,
	};
	vmbus_post(s, &m, sizeof(m));
}

static void send_torndown(struct vmbus_server *s, uint32_t handle)
{
	struct vmbus_msg_gpadl_torndown m = {
		.header = {.msgtype = VMBUS_MSG_GPADL_TORNDOWN},
		.gpadl = handle,
	};
	vmbus_post(s, &m, sizeof(m));
}

/* Answers a GPADL that failed and forgets it. */
static void gpadl_fail(struct vmbus_server *s, struct gpadl *g, uint32_t status)
{
	send_created(s, g->owner_relid, g->handle, status);
	gpadl_destroy(s, g);
}

/*
 * Walks the range words w[0, have) of a GPADL announced as `want` words in
 * `count` ranges. Returns the pages of the ranges seen whole, or -1 if what
 * is there already cannot be right: a zero byte_count, a byte_offset past
 * the first page, a range running past the announced length, ranges that
 * end before it, or a length with no room for the ranges still to come.
 * With pfns, copies the PFNs of the ranges it walks.
 */
static int64_t ranges_walk(const uint64_t *w, uint32_t have, uint32_t want, uint32_t count,
			   uint64_t *pfns)
{
	uint32_t i = 0, r = 0;
	uint64_t pages = 0;

	while (r < count && i < have) {
		uint32_t byte_count = (uint32_t)w[i];
		uint32_t byte_offset = (uint32_t)(w[i] >> 32);
		if (byte_count == 0 || byte_offset >= HV_PAGE_SIZE)
			return -1;
		uint64_t n = ((uint64_t)byte_offset + byte_count + HV_PAGE_SIZE - 1) / HV_PAGE_SIZE;
		if (n > want - i - 1)
			return -1;
		if (pfns)
			memcpy(pfns + pages, &w[i + 1], n * sizeof(uint64_t));
		pages += n;
		i += 1 + (uint32_t)n;
		r++;
	}
	/* Each range still to come needs a head and a PFN. */
	if ((uint64_t)(count - r) * 2 > want - i)
		return -1;
	if (r == count && i != want)
		return -1;
	return (int64_t)pages;
}

bool gpadl_ranges_plausible(const uint64_t *words, uint32_t have, uint32_t want,
			    uint32_t range_count)
{
	return ranges_walk(words, have / 8, want / 8, range_count, NULL) >= 0;
}

void gpadl_insert_loaded(struct vmbus_server *s, struct gpadl *g)
{
	gpadl_insert(s, g);
	s->gpadls.reserved += g->reserved;
	if (g->state == GPADL_READY) {
		s->gpadls.ready++;
		s->gpadls.ready_bytes += (uint64_t)g->pfn_count * HV_PAGE_SIZE;
	}
}

/* Every range word is in: check it all, then answer. */
static void gpadl_complete(struct vmbus_server *s, struct gpadl *g)
{
	if (g->failed) {
		gpadl_fail(s, g, g->failed);
		return;
	}
	uint32_t words = g->want / 8;
	int64_t pages = ranges_walk(g->buf, words, words, g->range_count, NULL);
	uint64_t *pfns = NULL;
	if (pages > 0)
		pfns = malloc((size_t)pages * sizeof(*pfns));
	if (pages <= 0 || !pfns) {
		free(pfns);
		vmbus_bad(s, BAD_GPADL_CONTENT, "vmbus: GPADL %#x: malformed ranges", g->handle);
		gpadl_fail(s, g, VMBUS_STATUS_INVALID_PARAMETER);
		return;
	}
	ranges_walk(g->buf, words, words, g->range_count, pfns);
	for (int64_t i = 0; i < pages; i++) {
		if (pfns[i] > VMBUS_GPA_MAX_PFN ||
		    !guest_memory_ptr(s->mem, pfns[i] << 12, HV_PAGE_SIZE)) {
			vmbus_bad(s, BAD_GPADL_CONTENT,
				  "vmbus: GPADL %#x: PFN %#llx is not guest RAM", g->handle,
				  (unsigned long long)pfns[i]);
			free(pfns);
			gpadl_fail(s, g, VMBUS_STATUS_INVALID_PARAMETER);
			return;
		}
	}
	/* The reservation was an upper bound; keep what is really shared. */
	uint64_t bytes = (uint64_t)pages * HV_PAGE_SIZE;
	s->gpadls.reserved -= g->reserved;
	g->reserved = bytes;
	s->gpadls.reserved += bytes;
	free(g->buf);
	g->buf = NULL;
	g->pfns = pfns;
	g->pfn_count = (uint32_t)pages;
	g->state = GPADL_READY;
	s->gpadls.ready++;
	s->gpadls.ready_bytes += bytes;
	send_created(s, g->owner_relid, g->handle, VMBUS_STATUS_SUCCESS);
}

void gpadl_handle_header(struct vmbus_server *s, const uint8_t *msg, uint32_t len)
{
	struct vmbus_msg_gpadl_header h;
	memcpy(&h, msg, sizeof(h));
	uint32_t data = len - (uint32_t)sizeof(h);
	const char *why = NULL;

	/* A rescinded relid still takes GPADLs: the guest may have sent the
	 * header before it saw the rescind; they go at RELID_RELEASED. */
	struct vmbus_offer_rec *o = vmbus_offer_by_relid(s, h.child_relid);
	if (!o) {
		vmbus_bad(s, BAD_RELID, "vmbus: GPADL_HEADER for unknown relid %u", h.child_relid);
		return;
	}
	if (gpadl_find(s, h.gpadl)) {
		vmbus_bad(s, BAD_GPADL_HANDLE, "vmbus: GPADL_HEADER reuses handle %#x", h.gpadl);
		return;
	}
	uint32_t want = h.range_buflen;
	if (h.range_count == 0)
		why = "no ranges";
	else if (want % 8 || want < 16u * h.range_count)
		why = "range_buflen does not fit the ranges";
	else if (data % 8 || data < 8 || data > want)
		why = "range data does not fit range_buflen";
	uint64_t words[VMBUS_MAX_MESSAGE_SIZE / 8];
	if (!why) {
		memcpy(words, msg + sizeof(h), data);
		if (ranges_walk(words, data / 8, want / 8, h.range_count, NULL) < 0)
			why = "malformed range";
	}
	if (why) {
		vmbus_bad(s, BAD_GPADL_HEADER, "vmbus: GPADL_HEADER %#x: %s", h.gpadl, why);
		return;
	}
	if (s->gpadls.count >= VMBUS_SERVER_MAX_GPADLS) {
		vmbus_log(s, "vmbus: GPADL %#x refused: %u GPADLs already", h.gpadl,
			  s->gpadls.count);
		send_created(s, h.child_relid, h.gpadl, VMBUS_STATUS_QUOTA_EXCEEDED);
		return;
	}

	struct gpadl *g = calloc(1, sizeof(*g));
	if (!g) {
		send_created(s, h.child_relid, h.gpadl, VMBUS_STATUS_UNSUCCESSFUL);
		return;
	}
	g->handle = h.gpadl;
	g->owner = o;
	g->owner_relid = h.child_relid;
	g->state = GPADL_PENDING;
	g->range_count = h.range_count;
	g->want = want;
	/* Held against the limit from now on, so a guest cannot park
	 * unbounded memory in half-sent GPADLs: every word but the range
	 * heads may be a page. */
	uint64_t bound = ((uint64_t)want / 8 - h.range_count) * HV_PAGE_SIZE;
	if (bound > s->cfg.gpadl_limit - s->gpadls.reserved ||
	    s->gpadls.reserved > s->cfg.gpadl_limit) {
		vmbus_log(s, "vmbus: GPADL %#x refused: over the %llu-byte limit", h.gpadl,
			  (unsigned long long)s->cfg.gpadl_limit);
		g->failed = VMBUS_STATUS_QUOTA_EXCEEDED;
	} else if (!(g->buf = malloc(want))) {
		g->failed = VMBUS_STATUS_UNSUCCESSFUL;
	} else {
		g->reserved = bound;
		s->gpadls.reserved += bound;
		memcpy(g->buf, words, data);
	}
	g->have = data;
	gpadl_insert(s, g);
	if (g->have == g->want)
		gpadl_complete(s, g);
}

void gpadl_handle_body(struct vmbus_server *s, const uint8_t *msg, uint32_t len)
{
	struct vmbus_msg_gpadl_body b;
	memcpy(&b, msg, sizeof(b));
	uint32_t data = len - (uint32_t)sizeof(b);

	/* msg_number is not checked: Linux sends 0 in every body. */
	struct gpadl *g = gpadl_find(s, b.gpadl);
	if (!g || g->state != GPADL_PENDING) {
		vmbus_bad(s, BAD_GPADL_HANDLE, "vmbus: GPADL_BODY for %s GPADL %#x",
			  g ? "a complete" : "an unknown", b.gpadl);
		return;
	}
	if (data == 0 || data % 8 || data > g->want - g->have) {
		vmbus_bad(s, BAD_GPADL_BODY, "vmbus: GPADL_BODY %#x: %u bytes, %u expected",
			  b.gpadl, data, g->want - g->have);
		gpadl_fail(s, g, VMBUS_STATUS_INVALID_PARAMETER);
		return;
	}
	if (!g->failed)
		memcpy((uint8_t *)g->buf + g->have, msg + sizeof(b), data);
	g->have += data;
	if (!g->failed && g->have < g->want &&
	    ranges_walk(g->buf, g->have / 8, g->want / 8, g->range_count, NULL) < 0) {
		/* Known bad already; answered once the rest arrives. */
		vmbus_bad(s, BAD_GPADL_CONTENT, "vmbus: GPADL %#x: malformed ranges", g->handle);
		g->failed = VMBUS_STATUS_INVALID_PARAMETER;
	}
	if (g->have == g->want)
		gpadl_complete(s, g);
}

void gpadl_handle_teardown(struct vmbus_server *s, const uint8_t *msg, uint32_t len)
{
	struct vmbus_msg_gpadl_teardown m;
	(void)len;
	memcpy(&m, msg, sizeof(m));
	struct gpadl *g = gpadl_find(s, m.gpadl);

	if (!g || g->state != GPADL_READY || g->owner_relid != m.child_relid ||
	    g->teardown_pending) {
		vmbus_bad(s, BAD_GPADL_TEARDOWN, "vmbus: GPADL_TEARDOWN of %s GPADL %#x (relid %u)",
			  !g ? "an unknown"
			  : g->state != GPADL_READY ? "an incomplete"
			  : g->teardown_pending ? "a dying"
						: "another channel's",
			  m.gpadl, m.child_relid);
		return;
	}
	if (g->in_use) {
		/* Still the rings of an open channel: answered when it closes. */
		g->teardown_pending = true;
		return;
	}
	send_torndown(s, g->handle);
	gpadl_destroy(s, g);
}

void gpadl_release_use(struct vmbus_server *s, struct gpadl *g)
{
	g->in_use = false;
	if (!g->teardown_pending)
		return;
	if (s->conn == VMBUS_SERVER_CONNECTED)
		send_torndown(s, g->handle);
	gpadl_destroy(s, g);
}
