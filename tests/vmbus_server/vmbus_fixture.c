/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmbus_fixture.h"

/* ---- ops ---- */

/* A real mutex, so device worker threads may take it too; error-checking,
 * so taking it twice from one thread fails instead of deadlocking. */
static void op_lock(void *ctx)
{
	struct vfix *f = ctx;
	assert_int_equal(pthread_mutex_lock(&f->mutex), 0); /* not recursive */
	assert_false(f->locked);
	f->locked = true;
	f->lock_count++;
}

static void op_unlock(void *ctx)
{
	struct vfix *f = ctx;
	assert_true(f->locked);
	f->locked = false;
	assert_int_equal(pthread_mutex_unlock(&f->mutex), 0);
}

void vf_lock(struct vfix *f)
{
	op_lock(f);
}

void vf_unlock(struct vfix *f)
{
	op_unlock(f);
}

static int op_post(void *ctx, uint32_t vp, uint32_t sint, const void *msg, uint32_t len)
{
	struct vfix *f = ctx;
	assert_true(f->locked);
	assert_true(vp < f->cfg.vp_count);
	assert_true(sint < 16);
	assert_true(len >= 8 && len <= 240);
	if (f->fail_post)
		return f->fail_post;
	if (f->n_msgs == f->cap_msgs) {
		f->cap_msgs = f->cap_msgs ? f->cap_msgs * 2 : 64;
		f->msgs = realloc(f->msgs, sizeof(*f->msgs) * f->cap_msgs);
		assert_non_null(f->msgs);
	}
	struct vf_msg *m = &f->msgs[f->n_msgs++];
	memset(m, 0, sizeof(*m));
	m->vp = vp;
	m->sint = sint;
	m->len = len;
	memcpy(m->data, msg, len);
	return 0;
}

static int op_signal(void *ctx, uint32_t vp, uint32_t sint, uint32_t flag)
{
	struct vfix *f = ctx;
	assert_true(f->locked);
	assert_true(vp < f->cfg.vp_count);
	assert_int_equal(sint, VMBUS_MESSAGE_SINT);
	assert_true(flag >= 1 && flag <= 2047);
	if (f->n_sigs == f->cap_sigs) {
		f->cap_sigs = f->cap_sigs ? f->cap_sigs * 2 : 256;
		f->sigs = realloc(f->sigs, sizeof(*f->sigs) * f->cap_sigs);
		assert_non_null(f->sigs);
	}
	f->sigs[f->n_sigs++] = (struct vf_signal){vp, sint, flag};
	return 0;
}

static int op_connection_add(void *ctx, uint32_t id)
{
	struct vfix *f = ctx;
	assert_true(f->locked);
	assert_false(vf_conn_active(f, id));
	if (f->fail_connection_add)
		return f->fail_connection_add;
	assert_true(f->n_conns < 256);
	f->conns[f->n_conns++] = id;
	f->conn_adds++;
	return 0;
}

static void op_connection_remove(void *ctx, uint32_t id)
{
	struct vfix *f = ctx;
	assert_true(f->locked);
	for (uint32_t i = 0; i < f->n_conns; i++) {
		if (f->conns[i] == id) {
			f->conns[i] = f->conns[--f->n_conns];
			f->conn_removes++;
			return;
		}
	}
	fail_msg("connection %#x removed but never added", id);
}

static uint64_t op_now(void *ctx)
{
	return ((struct vfix *)ctx)->now;
}

__attribute__((format(printf, 2, 0)))
static void op_log(void *ctx, const char *fmt, va_list ap)
{
	struct vfix *f = ctx;
	f->n_log++;
	vsnprintf(f->last_log, sizeof(f->last_log), fmt, ap);
}

static const struct vmbus_server_ops vf_ops = {
	.lock = op_lock,
	.unlock = op_unlock,
	.post = op_post,
	.signal = op_signal,
	.connection_add = op_connection_add,
	.connection_remove = op_connection_remove,
	.now_ns = op_now,
	.log = op_log,
};

bool vf_conn_active(const struct vfix *f, uint32_t connection_id)
{
	for (uint32_t i = 0; i < f->n_conns; i++)
		if (f->conns[i] == connection_id)
			return true;
	return false;
}

/* ---- setup ---- */

struct vfix *vf_new(const struct vmbus_server_config *cfg)
{
	struct vfix *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&f->mutex, &attr);
	pthread_mutexattr_destroy(&attr);
	f->memfd = memfd_create("vf-ram", MFD_CLOEXEC);
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, (off_t)VF_RAM_PAGES * 4096), 0);
	f->ram = mmap(NULL, (size_t)VF_RAM_PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
		      f->memfd, 0);
	assert_true(f->ram != MAP_FAILED);
	f->anon = aligned_alloc(4096, VF_ANON_PAGES * 4096);
	assert_non_null(f->anon);
	memset(f->anon, 0, VF_ANON_PAGES * 4096);
	assert_int_equal(guest_memory_add_file(&f->mem, 0, (uint64_t)VF_RAM_PAGES * 4096, f->ram,
					       f->memfd, 0),
			 0);
	assert_int_equal(guest_memory_add(&f->mem, VF_ANON_GPA, VF_ANON_PAGES * 4096, f->anon), 0);

	f->cfg = cfg ? *cfg : (struct vmbus_server_config){.vp_count = VF_VPS};
	f->s = vmbus_server_new(&f->cfg, &f->mem, &vf_ops, f);
	assert_non_null(f->s);
	f->next_page = 16; /* leave the first pages alone */
	return f;
}

uint8_t *vf_save(struct vfix *f, size_t *len)
{
	assert_int_equal(vmbus_server_save(f->s, NULL, 0, len), -ENOSPC);
	uint8_t *rec = malloc(*len);
	assert_non_null(rec);
	size_t again;
	assert_int_equal(vmbus_server_save(f->s, rec, *len, &again), 0);
	assert_int_equal(again, *len);
	return rec;
}

void vf_replace_server(struct vfix *f)
{
	vmbus_server_free(f->s);
	f->s = vmbus_server_new(&f->cfg, &f->mem, &vf_ops, f);
	assert_non_null(f->s);
	f->next_msg = f->n_msgs;
	f->next_sig = f->n_sigs;
	f->next_close_rescind = f->n_close_rescinds;
}

void vf_free(struct vfix *f)
{
	vmbus_server_free(f->s);
	assert_false(f->locked);
	munmap(f->ram, (size_t)VF_RAM_PAGES * 4096);
	close(f->memfd);
	free(f->anon);
	free(f->msgs);
	free(f->sigs);
	pthread_mutex_destroy(&f->mutex);
	free(f);
}

/* ---- glue side ---- */

uint16_t vf_send(struct vfix *f, uint32_t connection_id, const void *msg, uint32_t len)
{
	op_lock(f);
	uint16_t status = vmbus_server_handle_message(f->s, 0, connection_id, msg, len);
	op_unlock(f);
	return status;
}

void vf_signal_relid(struct vfix *f, uint32_t relid)
{
	op_lock(f);
	vmbus_server_handle_signal(f->s, 0, VMBUS_SERVER_CHANNEL_CONNECTION_BASE + relid);
	op_unlock(f);
}

uint32_t vf_pending(const struct vfix *f)
{
	return f->n_msgs - f->next_msg;
}

const struct vf_msg *vf_take(struct vfix *f, uint32_t type, uint32_t len)
{
	if (f->next_msg >= f->n_msgs)
		fail_msg("expected message type %u, none posted", type);
	const struct vf_msg *m = &f->msgs[f->next_msg++];
	uint32_t got;
	memcpy(&got, m->data, sizeof(got));
	if (got != type)
		fail_msg("expected message type %u, got %u", type, got);
	if (len)
		assert_int_equal(m->len, len);
	return m;
}

uint32_t vf_take_signals(struct vfix *f, uint32_t flag)
{
	uint32_t n = 0;
	for (uint32_t i = f->next_sig; i < f->n_sigs; i++)
		if (f->sigs[i].flag == flag)
			n++;
	f->next_sig = f->n_sigs;
	return n;
}

struct vmbus_server_stats vf_stats(struct vfix *f)
{
	struct vmbus_server_stats st;
	vmbus_server_get_stats(f->s, &st);
	return st;
}

struct find_arg {
	uint32_t relid;
	bool found;
	struct vmbus_server_channel_info info;
	int state; /* -1: count nothing */
	uint32_t count;
};

static void find_cb(void *arg, const struct vmbus_server_channel_info *info)
{
	struct find_arg *a = arg;
	if (info->relid == a->relid && a->relid) {
		assert_false(a->found); /* relids are unique */
		a->found = true;
		a->info = *info;
	}
	if ((int)info->state == a->state)
		a->count++;
}

bool vf_channel(struct vfix *f, uint32_t relid, struct vmbus_server_channel_info *out)
{
	struct find_arg a = {.relid = relid, .state = -1};
	vmbus_server_for_each_channel(f->s, find_cb, &a);
	if (a.found && out)
		*out = a.info;
	return a.found;
}

uint32_t vf_count_state(struct vfix *f, enum vmbus_server_channel_state state)
{
	struct find_arg a = {.relid = 0, .state = (int)state};
	vmbus_server_for_each_channel(f->s, find_cb, &a);
	return a.count;
}

/* ---- guest side ---- */

uint16_t vf_contact(struct vfix *f, uint32_t version)
{
	struct vmbus_msg_initiate_contact m = {
		.header = {.msgtype = VMBUS_MSG_INITIATE_CONTACT},
		.version_requested = version,
		.target_vcpu = 0,
		.monitor_page1 = 0x3000,
		.monitor_page2 = 0x4000,
	};
	uint32_t conn = VMBUS_MESSAGE_CONNECTION_ID;
	if (version >= VMBUS_VERSION_WIN10_V5) {
		m.msg_sint = VMBUS_MESSAGE_SINT;
		conn = VMBUS_MESSAGE_CONNECTION_ID_4;
	} else {
		m.interrupt_page = 0x2000;
	}
	return vf_send(f, conn, &m, sizeof(m));
}

bool vf_negotiate(struct vfix *f, uint32_t version)
{
	assert_int_equal(vf_contact(f, version), 0);
	const struct vf_msg *r = vf_take(f, VMBUS_MSG_VERSION_RESPONSE,
					 sizeof(struct vmbus_msg_version_response));
	struct vmbus_msg_version_response v;
	memcpy(&v, r->data, sizeof(v));
	assert_int_equal(r->vp, 0);
	assert_int_equal(r->sint, VMBUS_MESSAGE_SINT);
	if (v.version_supported) {
		assert_int_equal(v.msg_conn_id, VMBUS_MESSAGE_CONNECTION_ID);
		f->version = version;
	}
	return v.version_supported;
}

uint32_t vf_connect(struct vfix *f)
{
	static const uint32_t versions[] = {
		VMBUS_VERSION_WIN10_V5_3, VMBUS_VERSION_WIN10_V5_2, VMBUS_VERSION_WIN10_V5_1,
		VMBUS_VERSION_WIN10_V5,   VMBUS_VERSION_WIN10_V4_1, VMBUS_VERSION_WIN10,
		VMBUS_VERSION_WIN8_1,     VMBUS_VERSION_WIN8,
	};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (vf_negotiate(f, versions[i]))
			return versions[i];
	fail_msg("no version accepted");
	return 0;
}

uint32_t vf_request_offers(struct vfix *f, struct vmbus_msg_offer_channel *out, uint32_t max)
{
	struct vmbus_msg_header h = {.msgtype = VMBUS_MSG_REQUESTOFFERS};
	uint32_t n = 0;
	assert_int_equal(vf_send(f, VMBUS_MESSAGE_CONNECTION_ID, &h, sizeof(h)), 0);
	for (;;) {
		assert_true(vf_pending(f) > 0);
		uint32_t type;
		memcpy(&type, f->msgs[f->next_msg].data, sizeof(type));
		if (type == VMBUS_MSG_ALLOFFERS_DELIVERED) {
			vf_take(f, type, sizeof(struct vmbus_msg_header));
			break;
		}
		const struct vf_msg *m =
			vf_take(f, VMBUS_MSG_OFFERCHANNEL, sizeof(struct vmbus_msg_offer_channel));
		assert_true(n < max);
		memcpy(&out[n++], m->data, sizeof(*out));
	}
	assert_int_equal(vf_pending(f), 0); /* ALLOFFERS_DELIVERED was last */
	return n;
}

void vf_unload(struct vfix *f)
{
	struct vmbus_msg_header h = {.msgtype = VMBUS_MSG_UNLOAD};
	assert_int_equal(vf_send(f, VMBUS_MESSAGE_CONNECTION_ID, &h, sizeof(h)), 0);
	vf_take(f, VMBUS_MSG_UNLOAD_RESPONSE, sizeof(struct vmbus_msg_header));
}

uint64_t vf_alloc(struct vfix *f, uint32_t n)
{
	assert_true(f->next_page + n <= VF_RAM_PAGES);
	uint64_t pfn = f->next_page;
	f->next_page += n;
	return pfn;
}

void *vf_page(struct vfix *f, uint64_t pfn)
{
	assert_true(pfn < VF_RAM_PAGES);
	return f->ram + pfn * 4096;
}

void vf_gpadl_send_header(struct vfix *f, uint32_t relid, uint32_t handle, const uint64_t *pfns,
			  uint32_t n)
{
	uint8_t buf[240];
	struct vmbus_msg_gpadl_header h = {
		.header = {.msgtype = VMBUS_MSG_GPADL_HEADER},
		.child_relid = relid,
		.gpadl = handle,
		.range_buflen = (uint16_t)(sizeof(struct vmbus_gpa_range) + n * 8),
		.range_count = 1,
	};
	struct vmbus_gpa_range r = {.byte_count = n * 4096, .byte_offset = 0};
	uint32_t first = n < VMBUS_GPADL_HEADER_MAX_PFNS ? n : VMBUS_GPADL_HEADER_MAX_PFNS;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &r, sizeof(r));
	memcpy(buf + sizeof(h) + sizeof(r), pfns, first * 8);
	assert_int_equal(vf_send(f, VMBUS_MESSAGE_CONNECTION_ID, buf,
				 (uint32_t)(sizeof(h) + sizeof(r) + first * 8)),
			 0);
}

void vf_gpadl_send_bodies(struct vfix *f, uint32_t handle, const uint64_t *pfns, uint32_t n)
{
	uint8_t buf[240];
	for (uint32_t done = VMBUS_GPADL_HEADER_MAX_PFNS; done < n;) {
		uint32_t k = n - done;
		if (k > VMBUS_GPADL_BODY_MAX_PFNS)
			k = VMBUS_GPADL_BODY_MAX_PFNS;
		struct vmbus_msg_gpadl_body b = {
			.header = {.msgtype = VMBUS_MSG_GPADL_BODY},
			.msg_number = 0,
			.gpadl = handle,
		};
		memcpy(buf, &b, sizeof(b));
		memcpy(buf + sizeof(b), pfns + done, k * 8);
		assert_int_equal(
			vf_send(f, VMBUS_MESSAGE_CONNECTION_ID, buf, (uint32_t)(sizeof(b) + k * 8)),
			0);
		done += k;
	}
}

void vf_gpadl_send(struct vfix *f, uint32_t relid, uint32_t handle, const uint64_t *pfns,
		   uint32_t n)
{
	vf_gpadl_send_header(f, relid, handle, pfns, n);
	vf_gpadl_send_bodies(f, handle, pfns, n);
}

uint32_t vf_gpadl(struct vfix *f, uint32_t relid, uint32_t handle, const uint64_t *pfns,
		  uint32_t n)
{
	vf_gpadl_send(f, relid, handle, pfns, n);
	const struct vf_msg *m =
		vf_take(f, VMBUS_MSG_GPADL_CREATED, sizeof(struct vmbus_msg_gpadl_created));
	struct vmbus_msg_gpadl_created c;
	memcpy(&c, m->data, sizeof(c));
	assert_int_equal(c.child_relid, relid);
	assert_int_equal(c.gpadl, handle);
	assert_int_equal(vf_pending(f), 0);
	return c.creation_status;
}

void vf_gpadl_teardown(struct vfix *f, uint32_t relid, uint32_t handle, bool expect_answer)
{
	struct vmbus_msg_gpadl_teardown t = {
		.header = {.msgtype = VMBUS_MSG_GPADL_TEARDOWN},
		.child_relid = relid,
		.gpadl = handle,
	};
	assert_int_equal(vf_send(f, VMBUS_MESSAGE_CONNECTION_ID, &t, sizeof(t)), 0);
	if (expect_answer) {
		const struct vf_msg *m = vf_take(f, VMBUS_MSG_GPADL_TORNDOWN,
						 sizeof(struct vmbus_msg_gpadl_torndown));
		struct vmbus_msg_gpadl_torndown d;
		memcpy(&d, m->data, sizeof(d));
		assert_int_equal(d.gpadl, handle);
	}
	assert_int_equal(vf_pending(f), 0);
}

/* A guest-side mirrored mapping of some of the channel's pages. */
static void map_guest_ring(struct vfix *f, const uint64_t *pfns, uint32_t n,
			   struct vmbus_ring_mapping *map, struct vmbus_ring_mem *mem)
{
	uint64_t offsets[1024];
	assert_true(n <= 1024);
	for (uint32_t i = 0; i < n; i++)
		offsets[i] = pfns[i] * 4096;
	assert_int_equal(vmbus_ring_map(f->memfd, offsets, n, map, mem), 0);
}

void vf_chan_prepare(struct vfix *f, struct vf_chan *c, uint32_t relid, uint32_t handle,
		     uint32_t send_pages, uint32_t recv_pages, bool scattered)
{
	uint32_t n = send_pages + recv_pages;
	memset(c, 0, sizeof(*c));
	c->relid = relid;
	c->gpadl = handle;
	c->send_pages = send_pages;
	c->recv_pages = recv_pages;
	c->pfns = calloc(n, sizeof(*c->pfns));
	assert_non_null(c->pfns);
	uint64_t first = vf_alloc(f, n);
	for (uint32_t i = 0; i < n; i++)
		c->pfns[i] = scattered ? first + n - 1 - i : first + i;

	struct vmbus_ring_mem send_mem, recv_mem;
	map_guest_ring(f, c->pfns, send_pages, &c->send_map, &send_mem);
	map_guest_ring(f, c->pfns + send_pages, recv_pages, &c->recv_map, &recv_mem);
	/* ring_buffer.c hv_ringbuffer_init: indices 0, pending_send_sz
	 * feature on. */
	vmbus_ring_mem_reset(&send_mem);
	vmbus_ring_mem_reset(&recv_mem);
	assert_int_equal(vmbus_ring_writer_attach(&c->w, &send_mem), 0);
	assert_int_equal(vmbus_ring_reader_attach(&c->r, &recv_mem), 0);
	assert_int_equal(vf_gpadl(f, relid, handle, c->pfns, n), 0);
}

uint32_t vf_chan_open(struct vfix *f, struct vf_chan *c, uint32_t target_vp)
{
	struct vmbus_msg_open_channel m = {
		.header = {.msgtype = VMBUS_MSG_OPENCHANNEL},
		.child_relid = c->relid,
		.open_id = c->relid, /* Linux: openid = child_relid */
		.ring_gpadl = c->gpadl,
		.target_vp = target_vp,
		.downstream_ring_page_offset = c->send_pages,
	};
	assert_int_equal(vf_send(f, VMBUS_MESSAGE_CONNECTION_ID, &m, sizeof(m)), 0);
	const struct vf_msg *r =
		vf_take(f, VMBUS_MSG_OPENCHANNEL_RESULT, sizeof(struct vmbus_msg_open_result));
	struct vmbus_msg_open_result res;
	memcpy(&res, r->data, sizeof(res));
	assert_int_equal(res.child_relid, c->relid);
	assert_int_equal(res.open_id, c->relid);
	return res.status;
}

void vf_chan_close(struct vfix *f, struct vf_chan *c)
{
	struct vmbus_msg_close_channel m = {
		.header = {.msgtype = VMBUS_MSG_CLOSECHANNEL},
		.child_relid = c->relid,
	};
	assert_int_equal(vf_send(f, VMBUS_MESSAGE_CONNECTION_ID, &m, sizeof(m)), 0);
	/* No answer to a close; a primary's brings its sub-channels'
	 * rescinds. */
	while (vf_pending(f)) {
		struct vmbus_msg_rescind_offer r;
		memcpy(&r, vf_take(f, VMBUS_MSG_RESCIND_CHANNELOFFER, sizeof(r))->data, sizeof(r));
		assert_true(f->n_close_rescinds < 64);
		f->close_rescinds[f->n_close_rescinds++] = r.child_relid;
	}
	vf_gpadl_teardown(f, c->relid, c->gpadl, true);
}

void vf_chan_free(struct vf_chan *c)
{
	vmbus_ring_unmap(&c->send_map);
	vmbus_ring_unmap(&c->recv_map);
	free(c->pfns);
	c->pfns = NULL;
}

int vf_chan_send(struct vfix *f, struct vf_chan *c, uint64_t trans_id, const void *data,
		 uint32_t len, bool completion)
{
	struct vmbus_ring_iov iov = {data, len};
	int err = vmbus_ring_put_inband(&c->w, trans_id,
					completion ? VMBUS_PKT_FLAG_COMPLETION_REQUESTED : 0, &iov,
					len ? 1 : 0, NULL);
	if (err)
		return err;
	if (vmbus_ring_publish(&c->w))
		vf_signal_relid(f, c->relid);
	return 0;
}

uint32_t vf_take_rescind(struct vfix *f)
{
	if (f->next_close_rescind < f->n_close_rescinds)
		return f->close_rescinds[f->next_close_rescind++];
	struct vmbus_msg_rescind_offer r;
	memcpy(&r, vf_take(f, VMBUS_MSG_RESCIND_CHANNELOFFER, sizeof(r))->data, sizeof(r));
	return r.child_relid;
}

void vf_relid_released(struct vfix *f, uint32_t relid)
{
	struct vmbus_msg_relid_released m = {{VMBUS_MSG_RELID_RELEASED, 0}, relid};
	assert_int_equal(vf_send(f, VMBUS_MESSAGE_CONNECTION_ID, &m, sizeof(m)), 0);
}

void vf_echo_roundtrip(struct vfix *f, struct vf_chan *c, uint64_t id, const char *text)
{
	uint8_t buf[256];
	struct vmbus_packet pkt;
	vf_take_signals(f, c->relid);
	assert_int_equal(vf_chan_send(f, c, id, text, (uint32_t)strlen(text), true), 0);
	assert_int_equal(vf_take_signals(f, c->relid), 1);
	assert_int_equal(vmbus_ring_recv(&c->r, buf, sizeof(buf), &pkt), 0);
	assert_int_equal(pkt.type, VMBUS_PKT_COMP);
	assert_int_equal(pkt.trans_id, id);
	assert_true(pkt.data_len >= strlen(text));
	assert_memory_equal(pkt.data, text, strlen(text));
	vmbus_ring_commit(&c->r);
}
