/* SPDX-License-Identifier: MIT */
/*
 * guest/vmbus against a scripted host (fake_vmbus_host.c on the fake port):
 * version negotiation, offers and probes, GPADLs and opens as Linux lays
 * them out, the ring signalling rules, retarget, sub-channels, target VPs,
 * rescind, unload and reconnect, and a malicious host whose every bad
 * message must be dropped and counted.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_hv.h"
#include "fake_vmbus_host.h"
#include "hv_guest.h"
#include "hvkit/vmbus.h"
#include "vmbus_client.h"

#define VPS 4
#define MAX_SEEN 64

static const struct hv_guid SCSI =
	HV_GUID(0xba6163d9, 0x04a1, 0x4d29, 0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f);
static const struct hv_guid NIC =
	HV_GUID(0xf8615163, 0xdf3e, 0x46c5, 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e);
static const struct hv_guid HEARTBEAT =
	HV_GUID(0x57164f39, 0x9115, 0x4e78, 0xab, 0x55, 0x38, 0x2f, 0x3b, 0xd5, 0x42, 0x2d);
static const struct hv_guid UNKNOWN =
	HV_GUID(0x12345678, 0x1111, 0x2222, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x66, 0x66);

static const uint32_t versions[] = {
	VMBUS_VERSION_WIN10_V5_3, VMBUS_VERSION_WIN10_V5_2, VMBUS_VERSION_WIN10_V5_1,
	VMBUS_VERSION_WIN10_V5,	  VMBUS_VERSION_WIN10_V4_1, VMBUS_VERSION_WIN10,
	VMBUS_VERSION_WIN8_1,	  VMBUS_VERSION_WIN8,
};
#define VERSION_COUNT (sizeof(versions) / sizeof(versions[0]))

static struct hv_guid inst(uint32_t n)
{
	return HV_GUID(0xA0000000u + n, 0x1, 0x2, 0, 0, 0, 0, 0, 0, 0, (uint8_t)n);
}

struct fx;

/* One driver's view of what the client did to it. */
struct drv {
	struct fx *x;
	struct vmbus_driver d;
	int probes, removes, subs, suspends, resumes;
	struct vmbus_client_channel *resumed[MAX_SEEN];
	bool hibernates; /* has suspend and resume */
	struct vmbus_client_channel *probed[MAX_SEEN];
	struct vmbus_client_channel *removed[MAX_SEEN];
	struct vmbus_client_channel *sub_of[MAX_SEEN], *sub[MAX_SEEN];
	bool all_offers_seen; /* every probe came after ALLOFFERS_DELIVERED */
	/* What probe and subchannel do. */
	bool open;
	uint32_t send_bytes, recv_bytes;
	const void *user_data;
	uint32_t user_len;
	int probe_ret;
	int open_err[MAX_SEEN];
};

struct fx {
	struct fake_hv f;
	struct hv_guest g;
	struct fake_vmbus_host *h;
	struct vmbus_client *c;
	uint32_t allocs_before, locks_before;
	uint32_t leaked_allocs; /* ring allocations a test expects left */
	struct drv scsi, nic, hb;

	/* The packet callback's record. */
	int cb_calls;
	uint32_t cb_vp[MAX_SEEN];
	int received;
	uint8_t rx[MAX_SEEN][64];
	uint32_t rx_len[MAX_SEEN];
	uint64_t rx_trans[MAX_SEEN];
	bool cb_reads;           /* drain the ring */
	int cb_host_sends;       /* host writes this many more while draining */
	uint32_t cb_relid;
};

/* ---- drivers ---- */

static void packet_cb(void *arg, struct vmbus_client_channel *ch);

static int drv_probe(void *ctx, struct vmbus_client_channel *ch)
{
	struct drv *d = ctx;
	assert_true(d->probes < MAX_SEEN);
	if (!d->x->h->alloffers_delivered)
		d->all_offers_seen = false;
	d->probed[d->probes] = ch;
	if (d->open)
		d->open_err[d->probes] = vmbus_client_channel_open(ch, d->send_bytes, d->recv_bytes,
							    d->user_data, d->user_len, packet_cb,
							    d->x);
	d->probes++;
	return d->open && d->open_err[d->probes - 1] ? d->open_err[d->probes - 1] : d->probe_ret;
}

static void drv_remove(void *ctx, struct vmbus_client_channel *ch)
{
	struct drv *d = ctx;
	assert_true(d->removes < MAX_SEEN);
	d->removed[d->removes++] = ch;
}

static void drv_subchannel(void *ctx, struct vmbus_client_channel *primary,
			   struct vmbus_client_channel *sub)
{
	struct drv *d = ctx;
	assert_true(d->subs < MAX_SEEN);
	d->sub_of[d->subs] = primary;
	d->sub[d->subs++] = sub;
	if (d->open)
		assert_int_equal(vmbus_client_channel_open(sub, d->send_bytes, d->recv_bytes, NULL, 0,
						    packet_cb, d->x),
				 0);
}

/* Hibernation as a VSC driver does it: close everything at suspend,
 * reopen the primary at resume (same sizes, same callback). */
static int drv_suspend(void *ctx, struct vmbus_client_channel *ch)
{
	struct drv *d = ctx;
	d->suspends++;
	vmbus_client_channel_close(ch);
	return 0;
}

static int drv_resume(void *ctx, struct vmbus_client_channel *ch)
{
	struct drv *d = ctx;
	assert_true(d->resumes < MAX_SEEN);
	d->resumed[d->resumes++] = ch;
	return d->open ? vmbus_client_channel_open(ch, d->send_bytes, d->recv_bytes, NULL, 0,
						   packet_cb, d->x)
		       : 0;
}

static void drv_hibernates(struct drv *d)
{
	d->hibernates = true;
	d->d.suspend = drv_suspend;
	d->d.resume = drv_resume;
}

static void drv_init(struct fx *x, struct drv *d, const struct hv_guid *class_id,
		     const char *name, bool fast)
{
	memset(d, 0, sizeof(*d));
	d->x = x;
	d->all_offers_seen = true;
	d->send_bytes = d->recv_bytes = 4 * HV_PAGE_SIZE;
	d->d = (struct vmbus_driver){
		.class_id = *class_id,
		.name = name,
		.fast = fast,
		.probe = drv_probe,
		.remove = drv_remove,
		.subchannel = drv_subchannel,
		.ctx = d,
	};
}

static void packet_cb(void *arg, struct vmbus_client_channel *ch)
{
	struct fx *x = arg;
	uint8_t buf[256];
	struct vmbus_packet pkt;

	assert_true(x->cb_calls < MAX_SEEN);
	x->cb_vp[x->cb_calls++] = x->f.current_vp;
	if (!x->cb_reads)
		return;
	int err;
	while ((err = vmbus_client_channel_recv(ch, buf, sizeof(buf), &pkt)) == 0) {
		assert_true(x->received < MAX_SEEN);
		x->rx_len[x->received] = pkt.data_len;
		x->rx_trans[x->received] = pkt.trans_id;
		memcpy(x->rx[x->received], pkt.data, pkt.data_len < 64 ? pkt.data_len : 64);
		x->received++;
	}
	assert_int_equal(err, -EAGAIN);
	/* A host writing while we drain: the ring is masked, no signal. */
	if (x->cb_host_sends > 0) {
		x->cb_host_sends--;
		assert_int_equal(fh_send(x->h, x->cb_relid, 77, "late", 4), 0);
	}
}

/* ---- fixture ---- */

static void fixture_init(struct fx *x, uint32_t online_vps)
{
	memset(x, 0, sizeof(*x));
	fake_hv_init(&x->f);
	struct hv_guest_config cfg = {.vp_count = VPS};
	assert_int_equal(hv_guest_init(&x->g, &x->f.port, &cfg), 0);
	for (uint32_t i = 0; i < online_vps; i++) {
		x->f.current_vp = i;
		assert_int_equal(hv_guest_vp_init(&x->g), 0);
	}
	x->f.current_vp = 0;
	x->h = fh_new(&x->f, &x->g);
	drv_init(x, &x->scsi, &SCSI, "storvsc", true);
	drv_init(x, &x->nic, &NIC, "netvsc", true);
	drv_init(x, &x->hb, &HEARTBEAT, "heartbeat", false);
	x->cb_reads = true;
	x->allocs_before = x->f.live_allocs;
	x->locks_before = (uint32_t)x->f.locks_live;
}

static void client_new(struct fx *x, const struct vmbus_client_config *cfg)
{
	int err = 1;
	x->c = vmbus_client_new(&x->g, cfg, &err);
	assert_non_null(x->c);
	assert_int_equal(err, 0);
}

static void register_all(struct fx *x)
{
	assert_int_equal(vmbus_client_register_driver(x->c, &x->scsi.d), 0);
	assert_int_equal(vmbus_client_register_driver(x->c, &x->nic.d), 0);
	assert_int_equal(vmbus_client_register_driver(x->c, &x->hb.d), 0);
}

static void fixture_fini(struct fx *x)
{
	vmbus_client_free(x->c);
	x->c = NULL;
	/* The client gave back every page, lock and event it took. */
	assert_int_equal(x->f.live_allocs, x->allocs_before + x->leaked_allocs);
	assert_int_equal(x->f.locks_live, (int)x->locks_before);
	assert_int_equal(x->f.events_live, 0);
	assert_int_equal(x->f.lock_errors, 0);
	assert_int_equal(x->f.event_errors, 0);
	/* The host never saw the client break the protocol. */
	assert_int_equal(x->h->errors, 0);
	for (uint32_t i = 0; i < VPS; i++) {
		x->f.current_vp = i;
		hv_guest_vp_exit(&x->g);
	}
	fh_free(x->h);
	fake_hv_destroy(&x->f);
}

static int setup(void **state)
{
	struct fx *x = malloc(sizeof(*x));
	if (!x)
		return -1;
	fixture_init(x, VPS);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	fixture_fini(x);
	free(x);
	return 0;
}

/* ---- helpers ---- */

static struct vmbus_client_channel *probed(struct drv *d, int i)
{
	assert_true(i < d->probes);
	return d->probed[i];
}

static struct vmbus_client_channel_info info_of(struct vmbus_client_channel *ch)
{
	struct vmbus_client_channel_info i;
	vmbus_client_channel_info(ch, &i);
	return i;
}

struct listing {
	int n;
	struct vmbus_client_channel_info ch[MAX_SEEN];
};

static void list_one(void *arg, const struct vmbus_client_channel_info *i)
{
	struct listing *l = arg;
	assert_true(l->n < MAX_SEEN);
	l->ch[l->n++] = *i;
}

static struct listing list(struct fx *x)
{
	struct listing l;
	memset(&l, 0, sizeof(l));
	vmbus_client_for_each_channel(x->c, list_one, &l);
	return l;
}

static const struct vmbus_client_channel_info *listed(const struct listing *l, uint32_t relid)
{
	for (int i = 0; i < l->n; i++)
		if (l->ch[i].relid == relid)
			return &l->ch[i];
	return NULL;
}

static struct vmbus_client_stats stats(struct fx *x)
{
	struct vmbus_client_stats s;
	vmbus_client_get_stats(x->c, &s);
	return s;
}

static void msg_of(const struct fh_post *p, void *out, size_t size)
{
	assert_non_null(p);
	memcpy(out, p->msg, size);
}

static struct vmbus_msg_initiate_contact contact(struct fx *x, uint32_t nth)
{
	struct vmbus_msg_initiate_contact ic;
	const struct fh_post *p = fh_nth(x->h, VMBUS_MSG_INITIATE_CONTACT, nth);
	assert_non_null(p);
	assert_int_equal(p->size, sizeof(ic));
	msg_of(p, &ic, sizeof(ic));
	return ic;
}

/* The allocation that starts at gpa, or NULL. */
static const struct fake_alloc *alloc_at(struct fx *x, uint64_t gpa)
{
	for (int i = 0; i < FAKE_MAX_ALLOCS; i++)
		if (x->f.allocs[i].p && x->f.allocs[i].gpa == gpa)
			return &x->f.allocs[i];
	return NULL;
}

static void deliver(struct fx *x, const void *msg, uint32_t size)
{
	fh_queue(x->h, msg, size);
	fh_deliver_all(x->h);
}

/* ------------------------------------------------------------------ */
/* Negotiation                                                         */
/* ------------------------------------------------------------------ */

static void connect_5_3_uses_connection_4_then_msg_conn_id(void **state)
{
	struct fx *x = *state;

	x->h->msg_conn_id = 0x2A;
	client_new(x, NULL);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(vmbus_client_version(x->c), VMBUS_VERSION_WIN10_V5_3);
	assert_int_equal(stats(x).version, VMBUS_VERSION_WIN10_V5_3);

	assert_int_equal(fh_count(x->h, VMBUS_MSG_INITIATE_CONTACT), 1);
	const struct fh_post *p = fh_nth(x->h, VMBUS_MSG_INITIATE_CONTACT, 0);
	assert_int_equal(p->conn, VMBUS_MESSAGE_CONNECTION_ID_4);
	struct vmbus_msg_initiate_contact ic = contact(x, 0);
	assert_int_equal(ic.version_requested, VMBUS_VERSION_WIN10_V5_3);
	assert_int_equal(ic.target_vcpu, x->f.vp_index[0]);
	assert_int_equal(ic.msg_sint, VMBUS_MESSAGE_SINT);
	assert_int_equal(ic.interrupt_page >> 8, 0); /* only msg_sint in the union */
	/* The monitor pages: two distinct pages of guest memory. */
	assert_int_not_equal(ic.monitor_page1, 0);
	assert_int_not_equal(ic.monitor_page2, 0);
	assert_int_not_equal(ic.monitor_page1, ic.monitor_page2);
	assert_int_equal(ic.monitor_page1 & 0xFFF, 0);
	assert_int_equal(ic.monitor_page2 & 0xFFF, 0);
	assert_non_null(fake_gpa_ptr(&x->f, ic.monitor_page1));
	assert_non_null(fake_gpa_ptr(&x->f, ic.monitor_page2));

	/* From 5.0 on, every later message goes to the host's msg_conn_id. */
	p = fh_nth(x->h, VMBUS_MSG_REQUESTOFFERS, 0);
	assert_non_null(p);
	assert_int_equal(p->conn, 0x2A);
	assert_int_equal(p->size, sizeof(struct vmbus_msg_header));
	/* A second connect is refused while connected. */
	assert_int_equal(vmbus_client_connect(x->c), -EISCONN);
}

static void every_version_is_chosen(void **state)
{
	struct fx *x = *state;

	for (uint32_t v = 0; v < VERSION_COUNT; v++) {
		fixture_fini(x);
		fixture_init(x, VPS);
		x->h->msg_conn_id = 0x33;
		fh_accept(x->h, &versions[v], 1);
		client_new(x, NULL);
		assert_int_equal(vmbus_client_connect(x->c), 0);
		assert_int_equal(vmbus_client_version(x->c), versions[v]);

		/* Newest first, one INITIATE_CONTACT per version down to it. */
		assert_int_equal(fh_count(x->h, VMBUS_MSG_INITIATE_CONTACT), v + 1);
		for (uint32_t k = 0; k <= v; k++) {
			struct vmbus_msg_initiate_contact ic = contact(x, k);
			const struct fh_post *p = fh_nth(x->h, VMBUS_MSG_INITIATE_CONTACT, k);
			assert_int_equal(ic.version_requested, versions[k]);
			assert_int_equal(ic.target_vcpu, x->f.vp_index[0]);
			if (versions[k] >= VMBUS_VERSION_WIN10_V5) {
				assert_int_equal(p->conn, VMBUS_MESSAGE_CONNECTION_ID_4);
				assert_int_equal(ic.msg_sint, VMBUS_MESSAGE_SINT);
			} else {
				/* The interrupt page: a page of guest memory. */
				assert_int_equal(p->conn, VMBUS_MESSAGE_CONNECTION_ID);
				assert_int_not_equal(ic.interrupt_page, 0);
				assert_int_equal(ic.interrupt_page & 0xFFF, 0);
				assert_non_null(fake_gpa_ptr(&x->f, ic.interrupt_page));
			}
		}
		const struct fh_post *req = fh_nth(x->h, VMBUS_MSG_REQUESTOFFERS, 0);
		assert_non_null(req);
		assert_int_equal(req->conn, versions[v] >= VMBUS_VERSION_WIN10_V5
						    ? 0x33
						    : VMBUS_MESSAGE_CONNECTION_ID);
	}
}

static void invalid_connection_id_moves_to_older_versions(void **state)
{
	struct fx *x = *state;
	const uint32_t v40 = VMBUS_VERSION_WIN10;

	/* An old host: connection 4 does not exist, 4.1 is refused. */
	x->h->refuse_conn4 = true;
	fh_accept(x->h, &v40, 1);
	client_new(x, NULL);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(vmbus_client_version(x->c), VMBUS_VERSION_WIN10);
	/* 5.3, 5.2, 5.1, 5.0 were refused by the hypervisor, without waiting. */
	assert_int_equal(x->h->refused_posts, 4);
	assert_int_equal(x->f.event_timeouts, 0);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_INITIATE_CONTACT), 2);
	assert_int_equal(contact(x, 0).version_requested, VMBUS_VERSION_WIN10_V4_1);
	assert_int_equal(contact(x, 1).version_requested, VMBUS_VERSION_WIN10);
	assert_int_equal(fh_nth(x->h, VMBUS_MSG_REQUESTOFFERS, 0)->conn,
			 VMBUS_MESSAGE_CONNECTION_ID);
}

static void max_version_caps_the_first_try(void **state)
{
	struct fx *x = *state;
	struct vmbus_client_config cfg = {.max_version = VMBUS_VERSION_WIN10_V4_1};

	client_new(x, &cfg);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(vmbus_client_version(x->c), VMBUS_VERSION_WIN10_V4_1);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_INITIATE_CONTACT), 1);
	assert_int_equal(contact(x, 0).version_requested, VMBUS_VERSION_WIN10_V4_1);
	assert_int_equal(fh_nth(x->h, VMBUS_MSG_INITIATE_CONTACT, 0)->conn,
			 VMBUS_MESSAGE_CONNECTION_ID);

	/* A cap below every version Linux speaks: nothing to try. */
	fixture_fini(x);
	fixture_init(x, VPS);
	cfg.max_version = VMBUS_VERSION_WIN7;
	client_new(x, &cfg);
	assert_int_equal(vmbus_client_connect(x->c), -ECONNREFUSED);
	assert_int_equal(x->h->post_count, 0);
}

static void no_version_accepted_then_later_one(void **state)
{
	struct fx *x = *state;

	fh_accept(x->h, NULL, 0);
	client_new(x, NULL);
	assert_int_equal(vmbus_client_connect(x->c), -ECONNREFUSED);
	assert_int_equal(vmbus_client_version(x->c), 0);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_INITIATE_CONTACT), VERSION_COUNT);
	for (uint32_t k = 0; k < VERSION_COUNT; k++)
		assert_int_equal(contact(x, k).version_requested, versions[k]);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_REQUESTOFFERS), 0);

	/* Nothing stuck: the next attempt negotiates. */
	fh_accept(x->h, versions + 2, 1);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(vmbus_client_version(x->c), versions[2]);
}

static void silent_host_times_out(void **state)
{
	struct fx *x = *state;

	x->h->drop_version_response = true;
	client_new(x, NULL);
	assert_int_equal(vmbus_client_connect(x->c), -ETIMEDOUT);
	/* A timeout ends the negotiation (Linux: goto cleanup). */
	assert_int_equal(fh_count(x->h, VMBUS_MSG_INITIATE_CONTACT), 1);
	assert_int_equal(vmbus_client_version(x->c), 0);
	x->h->drop_version_response = false;
	assert_int_equal(vmbus_client_connect(x->c), 0);
}

static void busy_hypervisor_is_retried(void **state)
{
	struct fx *x = *state;

	x->h->busy_posts = 3;
	client_new(x, NULL);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(x->h->busy_answered, 3);
	/* The same message, posted again until it went through. */
	assert_int_equal(fh_count(x->h, VMBUS_MSG_INITIATE_CONTACT), 1);
	assert_int_equal(vmbus_client_version(x->c), VMBUS_VERSION_WIN10_V5_3);
}

static void missing_all_offers_delivered_times_out(void **state)
{
	struct fx *x = *state;

	x->h->drop_alloffers = true;
	fh_add_offer(x->h, &SCSI, &(struct hv_guid){{1}}, 0, 5);
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), -ETIMEDOUT);
	assert_int_equal(vmbus_client_version(x->c), VMBUS_VERSION_WIN10_V5_3);
	/* The offer is recorded; the client can still unload. */
	assert_int_equal(list(x).n, 1);
	assert_int_equal(vmbus_client_unload(x->c), 0);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_UNLOAD), 1);
}

/* ------------------------------------------------------------------ */
/* Offers and probes                                                   */
/* ------------------------------------------------------------------ */

static void offers_probe_drivers_by_class(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1), i2 = inst(2), i3 = inst(3), i4 = inst(4), i5 = inst(5);

	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	fh_add_offer(x->h, &UNKNOWN, &i2, 0, 6);
	fh_add_offer(x->h, &NIC, &i3, 0, 7);
	fh_add_offer(x->h, &SCSI, &i4, 0, 9);
	fh_add_offer(x->h, &HEARTBEAT, &i5, 0, 3);
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);

	/* Probed in offer order, after ALLOFFERS_DELIVERED, by class. */
	assert_int_equal(x->scsi.probes, 2);
	assert_int_equal(info_of(probed(&x->scsi, 0)).relid, 5);
	assert_int_equal(info_of(probed(&x->scsi, 1)).relid, 9);
	assert_int_equal(x->nic.probes, 1);
	assert_int_equal(info_of(probed(&x->nic, 0)).relid, 7);
	assert_int_equal(x->hb.probes, 1);
	assert_int_equal(info_of(probed(&x->hb, 0)).relid, 3);
	assert_true(x->scsi.all_offers_seen && x->nic.all_offers_seen && x->hb.all_offers_seen);

	struct listing l = list(x);
	assert_int_equal(l.n, 5);
	const struct vmbus_client_channel_info *u = listed(&l, 6);
	assert_non_null(u);
	assert_null(u->driver);
	assert_int_equal(u->state, VMBUS_CLIENT_OFFERED);
	assert_true(hv_guid_equal(&u->class_id, &UNKNOWN));
	assert_true(hv_guid_equal(&u->instance_id, &i2));
	assert_int_equal(u->connection_id, 0x1000 + 6);
	assert_string_equal(listed(&l, 7)->driver, "netvsc");
	assert_string_equal(listed(&l, 3)->driver, "heartbeat");
	assert_int_equal(stats(x).offers, 5);
	assert_int_equal(stats(x).bad_messages, 0);
	/* Probing is done: nothing left for process. */
	assert_int_equal(vmbus_client_process(x->c), 0);
	assert_int_equal(vmbus_client_wait_work(x->c, 1000), -ETIMEDOUT);
}

static void late_offer_is_probed_by_process(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1), i2 = inst(2);

	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(x->scsi.probes, 0);

	/* Hot add: recorded in the handler, probed in process context. */
	struct vmbus_msg_offer_channel o = fh_make_offer(&SCSI, &i1, 0, 20);
	deliver(x, &o, sizeof(o));
	assert_int_equal(x->scsi.probes, 0);
	assert_int_equal(list(x).n, 1);
	assert_int_equal(vmbus_client_wait_work(x->c, 0), 0);
	assert_int_equal(vmbus_client_process(x->c), 1);
	assert_int_equal(x->scsi.probes, 1);
	assert_int_equal(info_of(probed(&x->scsi, 0)).relid, 20);
	assert_int_equal(vmbus_client_process(x->c), 0);

	/* A driver registered after its device's offer binds it too. */
	o = fh_make_offer(&UNKNOWN, &i2, 0, 21);
	deliver(x, &o, sizeof(o));
	assert_int_equal(vmbus_client_process(x->c), 1);
	struct drv late;
	drv_init(x, &late, &UNKNOWN, "late", false);
	assert_int_equal(vmbus_client_register_driver(x->c, &late.d), 0);
	assert_int_equal(vmbus_client_register_driver(x->c, &late.d), -EEXIST);
	assert_int_equal(late.probes, 0);
	assert_int_equal(vmbus_client_process(x->c), 1);
	assert_int_equal(late.probes, 1);
	assert_int_equal(info_of(probed(&late, 0)).relid, 21);
	assert_string_equal(info_of(probed(&late, 0)).driver, "late");
	/* late lives on this stack: unbind it here. */
	assert_int_equal(vmbus_client_unload(x->c), 0);
	assert_int_equal(late.removes, 1);
}

static void failed_probe_leaves_no_binding(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1);

	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	x->scsi.open = true;
	x->scsi.probe_ret = -EIO; /* after opening */
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(x->scsi.probes, 1);
	assert_int_equal(x->scsi.open_err[0], 0);
	/* The client closed what the failed probe left open. */
	assert_int_equal(fh_count(x->h, VMBUS_MSG_CLOSECHANNEL), 1);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_GPADL_TEARDOWN), 1);
	struct vmbus_client_channel_info i = info_of(probed(&x->scsi, 0));
	assert_null(i.driver);
	assert_int_equal(i.state, VMBUS_CLIENT_OFFERED);
	/* And a rescind of it calls no remove. */
	struct vmbus_msg_rescind_offer r = {{VMBUS_MSG_RESCIND_CHANNELOFFER, 0}, 5};
	deliver(x, &r, sizeof(r));
	assert_int_equal(vmbus_client_process(x->c), 1);
	assert_int_equal(x->scsi.removes, 0);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_RELID_RELEASED), 1);
}

static void offers_beyond_memory_give_the_relid_back(void **state)
{
	struct fx *x = *state;

	client_new(x, NULL);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	/* No page can be had: offers past the reserve cannot be recorded. */
	x->f.alloc_fail_after = 0;
	for (uint32_t i = 0; i < 60; i++) {
		struct hv_guid g = inst(100 + i);
		struct vmbus_msg_offer_channel o = fh_make_offer(&UNKNOWN, &g, 0, 100 + i);
		fh_queue(x->h, &o, sizeof(o));
	}
	fh_deliver_all(x->h);
	int kept = list(x).n;
	assert_true(kept > 0 && kept < 60);
	assert_int_equal(stats(x).bad_messages, 0);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_RELID_RELEASED), 0);
	/* process gives back the rest (vmbus_onoffer()'s vmbus_release_relid). */
	x->f.alloc_fail_after = -1;
	assert_int_equal(vmbus_client_wait_work(x->c, 0), 0);
	vmbus_client_process(x->c);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_RELID_RELEASED), 60 - kept);
	const struct fh_post *p = fh_nth(x->h, VMBUS_MSG_RELID_RELEASED, 0);
	struct vmbus_msg_relid_released rr;
	msg_of(p, &rr, sizeof(rr));
	assert_int_equal(rr.child_relid, 100 + (uint32_t)kept);
	/* A released relid may be offered again. */
	struct hv_guid g = inst(500);
	struct vmbus_msg_offer_channel o = fh_make_offer(&UNKNOWN, &g, 0, 159);
	deliver(x, &o, sizeof(o));
	assert_int_equal(list(x).n, kept + 1);
}

/* ------------------------------------------------------------------ */
/* Open, GPADLs, close                                                 */
/* ------------------------------------------------------------------ */

/* Checks a GPADL's messages against Linux's layout; returns its handle. */
static uint32_t check_gpadl(struct fx *x, uint32_t nth_header, uint32_t relid, uint32_t pages)
{
	struct vmbus_msg_gpadl_header hdr;
	struct vmbus_gpa_range range;
	int at = fh_index(x->h, VMBUS_MSG_GPADL_HEADER, nth_header);
	assert_true(at >= 0);
	const struct fh_post *p = &x->h->posts[at];
	uint32_t in_header = pages < 26 ? pages : 26;

	memcpy(&hdr, p->msg, sizeof(hdr));
	memcpy(&range, p->msg + sizeof(hdr), sizeof(range));
	assert_int_equal(p->size, 20 + 8 + 8 * in_header);
	assert_int_equal(hdr.child_relid, relid);
	assert_int_equal(hdr.range_count, 1);
	assert_int_equal(hdr.range_buflen, 8 + 8 * pages);
	assert_int_equal(range.byte_offset, 0);
	assert_int_equal(range.byte_count, pages * HV_PAGE_SIZE);

	uint64_t pfns[512];
	memcpy(pfns, p->msg + 28, 8 * in_header);
	uint32_t have = in_header, bodies = 0;
	while (have < pages) {
		const struct fh_post *b = &x->h->posts[at + 1 + bodies];
		struct vmbus_msg_gpadl_body body;
		uint32_t n = pages - have < 28 ? pages - have : 28;
		assert_int_equal(b->type, VMBUS_MSG_GPADL_BODY);
		memcpy(&body, b->msg, sizeof(body));
		assert_int_equal(b->size, 16 + 8 * n);
		assert_int_equal(body.msg_number, 0);
		assert_int_equal(body.gpadl, hdr.gpadl);
		memcpy(pfns + have, b->msg + 16, 8 * n);
		have += n;
		bodies++;
	}
	/* The PFNs are the pages of one allocation of exactly that size. */
	const struct fake_alloc *a = alloc_at(x, pfns[0] << 12);
	assert_non_null(a);
	assert_int_equal(a->count, pages);
	for (uint32_t i = 0; i < pages; i++)
		assert_int_equal(pfns[i], pfns[0] + i);
	return hdr.gpadl;
}

static void open_lays_out_gpadl_and_open_as_linux(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1), i2 = inst(2), i3 = inst(3);
	static const uint8_t user[] = "user data for the host";

	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	fh_add_offer(x->h, &NIC, &i2, 0, 6);
	fh_add_offer(x->h, &HEARTBEAT, &i3, 0, 7);
	x->scsi.open = true;
	x->scsi.send_bytes = 16 * HV_PAGE_SIZE;
	x->scsi.recv_bytes = 24 * HV_PAGE_SIZE;
	x->scsi.user_data = user;
	x->scsi.user_len = sizeof(user);
	x->nic.open = true;
	x->nic.send_bytes = 30 * HV_PAGE_SIZE; /* 59 pages: a header and two bodies */
	x->nic.recv_bytes = 29 * HV_PAGE_SIZE;
	x->hb.open = true;
	x->hb.send_bytes = x->hb.recv_bytes = 2 * HV_PAGE_SIZE; /* header only */
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(x->scsi.open_err[0], 0);
	assert_int_equal(x->nic.open_err[0], 0);
	assert_int_equal(x->hb.open_err[0], 0);

	/* Handles count up from Linux's first, in the order of the opens. */
	assert_int_equal(check_gpadl(x, 0, 5, 40), 0xE1E10);
	assert_int_equal(check_gpadl(x, 1, 6, 59), 0xE1E11);
	assert_int_equal(check_gpadl(x, 2, 7, 4), 0xE1E12);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_GPADL_BODY), 1 + 2);

	/* OPENCHANNEL after the GPADL, with Linux's fields. */
	struct vmbus_msg_open_channel o;
	const struct fh_post *p = fh_nth(x->h, VMBUS_MSG_OPENCHANNEL, 0);
	assert_int_equal(p->size, sizeof(o));
	msg_of(p, &o, sizeof(o));
	assert_true(fh_index(x->h, VMBUS_MSG_OPENCHANNEL, 0) >
		    fh_index(x->h, VMBUS_MSG_GPADL_BODY, 0));
	struct vmbus_client_channel_info ci = info_of(probed(&x->scsi, 0));
	assert_int_equal(o.child_relid, 5);
	assert_int_equal(o.open_id, 5);
	assert_int_equal(o.ring_gpadl, 0xE1E10);
	assert_int_equal(o.target_vp, x->f.vp_index[ci.target_vp]);
	assert_int_equal(o.downstream_ring_page_offset, 16);
	assert_memory_equal(o.user_data, user, sizeof(user));
	for (size_t i = sizeof(user); i < sizeof(o.user_data); i++)
		assert_int_equal(o.user_data[i], 0);
	assert_int_equal(ci.state, VMBUS_CLIENT_OPEN);

	/* Both ring headers are fresh and advertise pending_send_sz. */
	struct fh_chan *hc = fh_chan(x->h, 5);
	assert_non_null(hc);
	const struct vmbus_ring_header *send = (const void *)hc->base;
	const struct vmbus_ring_header *recv = (const void *)(hc->base + 16 * HV_PAGE_SIZE);
	assert_int_equal(send->write_index, 0);
	assert_int_equal(send->read_index, 0);
	assert_int_equal(send->feature_bits, VMBUS_RING_FEAT_PENDING_SEND_SZ);
	assert_int_equal(recv->feature_bits, VMBUS_RING_FEAT_PENDING_SEND_SZ);
	assert_int_equal(recv->interrupt_mask, 0);

	/* Bad sizes are refused before anything is sent. */
	uint32_t posts = x->h->post_count;
	struct vmbus_client_channel *ch = probed(&x->scsi, 0);
	assert_int_equal(vmbus_client_channel_open(ch, 4096, 8192, NULL, 0, packet_cb, x), -EINVAL);
	assert_int_equal(vmbus_client_channel_open(ch, 8192 + 1, 8192, NULL, 0, packet_cb, x), -EINVAL);
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, user, 121, packet_cb, x), -EINVAL);
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, NULL, 0, NULL, x), -EINVAL);
	/* Already open. */
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, NULL, 0, packet_cb, x), -EBUSY);
	assert_int_equal(x->h->post_count, posts);
}

static void open_refused_tears_the_gpadl_down(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1);

	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	struct vmbus_client_channel *ch = probed(&x->scsi, 0);
	uint32_t allocs = x->f.live_allocs;

	x->h->open_status = 0xC0000001u;
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, NULL, 0, packet_cb, x), -EIO);
	int open_at = fh_index(x->h, VMBUS_MSG_OPENCHANNEL, 0);
	int down_at = fh_index(x->h, VMBUS_MSG_GPADL_TEARDOWN, 0);
	assert_true(open_at >= 0 && down_at > open_at);
	struct vmbus_msg_gpadl_teardown t;
	msg_of(&x->h->posts[down_at], &t, sizeof(t));
	assert_int_equal(t.gpadl, 0xE1E10);
	assert_int_equal(t.child_relid, 5);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_CLOSECHANNEL), 0);
	assert_int_equal(x->f.live_allocs, allocs);
	assert_int_equal(info_of(ch).state, VMBUS_CLIENT_OFFERED);
	assert_int_equal(vmbus_client_channel_send_inband(ch, 1, 0, "x", 1), -ENOTCONN);

	/* Refused GPADL: no OPENCHANNEL, nothing to tear down. */
	x->h->open_status = 0;
	x->h->gpadl_status = 7;
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, NULL, 0, packet_cb, x), -EIO);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_OPENCHANNEL), 1);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_GPADL_TEARDOWN), 1);
	assert_int_equal(x->f.live_allocs, allocs);

	/* And the channel opens once the host agrees. */
	x->h->gpadl_status = 0;
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, NULL, 0, packet_cb, x), 0);
	assert_int_equal(info_of(ch).state, VMBUS_CLIENT_OPEN);
	assert_int_equal(check_gpadl(x, 2, 5, 4), 0xE1E12);
}

static void open_without_answer_times_out_and_cleans_up(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1);

	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	struct vmbus_client_channel *ch = probed(&x->scsi, 0);
	uint32_t allocs = x->f.live_allocs;

	x->h->drop_open_result = true;
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, NULL, 0, packet_cb, x), -ETIMEDOUT);
	/* The host may have opened it after all: close it and take the GPADL back. */
	int close_at = fh_index(x->h, VMBUS_MSG_CLOSECHANNEL, 0);
	assert_true(close_at > fh_index(x->h, VMBUS_MSG_OPENCHANNEL, 0));
	assert_true(fh_index(x->h, VMBUS_MSG_GPADL_TEARDOWN, 0) > close_at);
	assert_int_equal(x->f.live_allocs, allocs);
	assert_int_equal(info_of(ch).state, VMBUS_CLIENT_OFFERED);

	/* A host that never gives the GPADL back keeps the pages. */
	x->h->drop_open_result = false;
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, NULL, 0, packet_cb, x), 0);
	x->h->drop_torndown = true;
	vmbus_client_channel_close(ch);
	assert_int_equal(x->f.live_allocs, allocs + 1);
	x->leaked_allocs = 1;
	assert_int_equal(info_of(ch).state, VMBUS_CLIENT_OFFERED);
}

static void answers_arriving_inside_the_post_are_not_lost(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1);

	/* The host answers before the hypercall returns (another VP, at once). */
	x->h->deliver_in_hypercall = true;
	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	x->scsi.open = true;
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(x->scsi.open_err[0], 0);
	assert_int_equal(x->f.event_timeouts, 0);
	vmbus_client_channel_close(probed(&x->scsi, 0));
	assert_int_equal(fh_count(x->h, VMBUS_MSG_GPADL_TEARDOWN), 1);
	assert_int_equal(x->f.event_timeouts, 0);
	assert_int_equal(stats(x).bad_messages, 0);
}

static void close_sends_close_then_teardown(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1);

	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	struct vmbus_client_channel *ch = probed(&x->scsi, 0);
	uint32_t allocs = x->f.live_allocs;
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, NULL, 0, packet_cb, x), 0);
	assert_int_equal(x->f.live_allocs, allocs + 1);

	vmbus_client_channel_close(ch);
	int close_at = fh_index(x->h, VMBUS_MSG_CLOSECHANNEL, 0);
	int down_at = fh_index(x->h, VMBUS_MSG_GPADL_TEARDOWN, 0);
	assert_true(close_at >= 0 && down_at == close_at + 1);
	struct vmbus_msg_close_channel cl;
	msg_of(&x->h->posts[close_at], &cl, sizeof(cl));
	assert_int_equal(cl.child_relid, 5);
	assert_int_equal(x->h->posts[close_at].size, sizeof(cl));
	struct vmbus_msg_gpadl_teardown t;
	msg_of(&x->h->posts[down_at], &t, sizeof(t));
	assert_int_equal(t.gpadl, 0xE1E10);
	assert_int_equal(x->f.live_allocs, allocs);
	assert_int_equal(info_of(ch).state, VMBUS_CLIENT_OFFERED);
	uint8_t buf[64];
	struct vmbus_packet pkt;
	assert_int_equal(vmbus_client_channel_send_inband(ch, 1, 0, "x", 1), -ENOTCONN);
	assert_int_equal(vmbus_client_channel_recv(ch, buf, sizeof(buf), &pkt), -ENOTCONN);
	/* Closing twice does nothing more. */
	vmbus_client_channel_close(ch);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_CLOSECHANNEL), 1);
	/* It opens again, with a new handle. */
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, NULL, 0, packet_cb, x), 0);
	assert_int_equal(check_gpadl(x, 1, 5, 4), 0xE1E11);
}

/* ------------------------------------------------------------------ */
/* Rings                                                               */
/* ------------------------------------------------------------------ */

static struct vmbus_client_channel *open_one(struct fx *x, const struct hv_guid *class_id,
					     struct drv *d, uint32_t relid)
{
	struct hv_guid i = inst(relid);
	fh_add_offer(x->h, class_id, &i, 0, relid);
	d->open = true;
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(d->open_err[0], 0);
	return probed(d, 0);
}

static void send_signals_only_an_empty_unmasked_ring(void **state)
{
	struct fx *x = *state;
	uint8_t buf[128];
	struct vmbus_packet pkt;

	struct vmbus_client_channel *ch = open_one(x, &HEARTBEAT, &x->hb, 5);
	const uint32_t conn = 0x1000 + 5;
	struct fh_chan *hc = fh_chan(x->h, 5);

	assert_int_equal(vmbus_client_channel_send_inband(ch, 1, 1, "A", 1), 0);
	assert_int_equal(fh_signals_to(x->h, conn), 1);
	/* The host has not read: the ring was not empty, no signal. */
	assert_int_equal(vmbus_client_channel_send_inband(ch, 2, 0, "B", 1), 0);
	assert_int_equal(fh_signals_to(x->h, conn), 1);
	assert_int_equal(fh_recv(x->h, 5, buf, sizeof(buf), &pkt), 0);
	assert_int_equal(pkt.type, VMBUS_PKT_DATA_INBAND);
	assert_int_equal(pkt.trans_id, 1);
	assert_int_equal(pkt.flags, 1);
	assert_int_equal(pkt.data_len, 8); /* padded to 8, as on the wire */
	assert_int_equal(pkt.data[0], 'A');
	assert_int_equal(fh_recv(x->h, 5, buf, sizeof(buf), &pkt), 0);
	assert_int_equal(pkt.data[0], 'B');
	assert_int_equal(fh_recv(x->h, 5, buf, sizeof(buf), &pkt), -EAGAIN);
	/* Drained: the next one signals. */
	assert_int_equal(vmbus_client_channel_send_inband(ch, 3, 0, "C", 1), 0);
	assert_int_equal(fh_signals_to(x->h, conn), 2);
	assert_int_equal(fh_recv(x->h, 5, buf, sizeof(buf), &pkt), 0);
	/* The host polls (interrupt_mask): no signal even on an empty ring. */
	hc->from_guest.mem.hdr->interrupt_mask = 1;
	assert_int_equal(vmbus_client_channel_send_inband(ch, 4, 0, "D", 1), 0);
	assert_int_equal(fh_signals_to(x->h, conn), 2);
	hc->from_guest.mem.hdr->interrupt_mask = 0;
	assert_int_equal(fh_recv(x->h, 5, buf, sizeof(buf), &pkt), 0);
	assert_int_equal(pkt.data[0], 'D');
	assert_int_equal(vmbus_client_channel_send_inband(ch, 5, 0, "E", 1), 0);
	assert_int_equal(fh_signals_to(x->h, conn), 3);
	assert_int_equal(x->h->signal_count, 3);
	assert_int_equal(x->h->signals[0].flag, 0);
	assert_int_equal(stats(x).signals_sent, 3);
	assert_int_equal(info_of(ch).packets_sent, 5);

	/* GPA-direct: ranges, then the payload. */
	uint64_t pfn = 0x1234;
	struct vmbus_gpa_range_out r = {.byte_count = 100, .byte_offset = 8, .pfns = &pfn};
	assert_int_equal(fh_recv(x->h, 5, buf, sizeof(buf), &pkt), 0);
	assert_int_equal(vmbus_client_channel_send_gpa_direct(ch, 9, &r, 1, "gpa", 3), 0);
	assert_int_equal(fh_signals_to(x->h, conn), 4);
	assert_int_equal(fh_recv(x->h, 5, buf, sizeof(buf), &pkt), 0);
	assert_int_equal(pkt.type, VMBUS_PKT_DATA_USING_GPA_DIRECT);
	assert_int_equal(pkt.data_len, 8);
	assert_memory_equal(pkt.data, "gpa", 3);
	struct vmbus_gpa_range_iter it;
	struct vmbus_gpa_range_in in;
	assert_int_equal(vmbus_gpa_ranges_begin(&pkt, &it), 0);
	assert_int_equal(vmbus_gpa_ranges_next(&it, &in), 1);
	assert_int_equal(in.byte_count, 100);
	assert_int_equal(vmbus_gpa_range_pfn(&in, 0), 0x1234);
}

static void full_ring_says_again(void **state)
{
	struct fx *x = *state;
	static uint8_t big[3000];

	x->hb.send_bytes = 2 * HV_PAGE_SIZE;
	struct vmbus_client_channel *ch = open_one(x, &HEARTBEAT, &x->hb, 5);
	/* 8 KiB ring: a 4 KiB data area holds one such packet. */
	assert_int_equal(vmbus_client_channel_send_inband(ch, 1, 0, big, sizeof(big)), 0);
	assert_int_equal(vmbus_client_channel_send_inband(ch, 2, 0, big, sizeof(big)), -EAGAIN);
	assert_int_equal(vmbus_client_channel_send_inband(ch, 3, 0, big, 5000), -EMSGSIZE);
	assert_int_equal(info_of(ch).packets_sent, 1);
}

static void interrupt_page_bit_below_5_0(void **state)
{
	struct fx *x = *state;
	const uint32_t v40 = VMBUS_VERSION_WIN10;
	struct hv_guid i1 = inst(1), i2 = inst(2);

	fh_accept(x->h, &v40, 1);
	fh_add_offer(x->h, &HEARTBEAT, &i1, 0, 70);
	fh_add_offer(x->h, &SCSI, &i2, 0, 71)->interrupt_flags = VMBUS_OFFER_DEDICATED_INTERRUPT;
	x->hb.open = x->scsi.open = true;
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	/* 5.3 .. 4.1 were refused; the accepted contact carried the page. */
	uint32_t n = fh_count(x->h, VMBUS_MSG_INITIATE_CONTACT);
	assert_int_equal(contact(x, n - 1).version_requested, VMBUS_VERSION_WIN10);
	uint8_t *int_page = fake_gpa_ptr(&x->f, contact(x, n - 1).interrupt_page);
	assert_non_null(int_page);
	const uint8_t *send_half = int_page + HV_PAGE_SIZE / 2;

	/* vmbus_set_event(): the relid bit in the send half, then the signal. */
	assert_int_equal(vmbus_client_channel_send_inband(probed(&x->hb, 0), 1, 0, "x", 1), 0);
	assert_int_equal(send_half[70 / 8], 1u << (70 % 8));
	assert_int_equal(fh_signals_to(x->h, 0x1000 + 70), 1);
	/* A dedicated interrupt: no bit, but still the signal. */
	assert_int_equal(vmbus_client_channel_send_inband(probed(&x->scsi, 0), 1, 0, "x", 1), 0);
	assert_int_equal(send_half[71 / 8] & (1u << (71 % 8)), 0);
	assert_int_equal(fh_signals_to(x->h, 0x1000 + 71), 1);
	for (uint32_t i = 0; i < HV_PAGE_SIZE / 2; i++)
		assert_int_equal(int_page[i], 0); /* the receive half is the host's */
}

static void callback_runs_on_the_target_vp_and_drains(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1), i2 = inst(2);

	/* Two fast channels: the second lands on VP 1. */
	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	fh_add_offer(x->h, &SCSI, &i2, 0, 9);
	x->scsi.open = true;
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	struct vmbus_client_channel *ch = probed(&x->scsi, 1);
	assert_int_equal(info_of(ch).target_vp, 1);
	assert_int_equal(fh_chan(x->h, 9)->target_vp_index, x->f.vp_index[1]);

	assert_int_equal(fh_send(x->h, 9, 42, "hello", 5), 0);
	assert_int_equal(x->h->raised_events, 1);
	assert_int_equal(x->cb_calls, 1);
	assert_int_equal(x->cb_vp[0], 1);
	assert_int_equal(x->received, 1);
	assert_int_equal(x->rx_len[0], 8); /* padded */
	assert_memory_equal(x->rx[0], "hello", 5);
	assert_int_equal(x->rx_trans[0], 42);
	assert_int_equal(info_of(ch).packets_received, 1);
	assert_int_equal(stats(x).interrupts, 1);
	/* Unmasked again after the callback, and the space given back. */
	struct fh_chan *hc = fh_chan(x->h, 9);
	assert_int_equal(hc->to_guest.mem.hdr->interrupt_mask, 0);
	assert_int_equal(hc->to_guest.mem.hdr->read_index, hc->to_guest.mem.hdr->write_index);

	/* A packet written while the callback drains is not signalled (the
	 * ring is masked); the client sees it on unmask and runs again. */
	x->cb_host_sends = 1;
	x->cb_relid = 9;
	assert_int_equal(fh_send(x->h, 9, 43, "again", 5), 0);
	assert_int_equal(x->h->raised_events, 2);
	assert_int_equal(x->cb_calls, 3);
	assert_int_equal(x->cb_vp[2], 1);
	assert_int_equal(x->received, 3);
	assert_memory_equal(x->rx[2], "late", 4);
	assert_int_equal(stats(x).interrupts, 2);

	/* Flags for relid 0, unknown relids and unopened channels call nothing. */
	fh_raise_event(x->h, 0, 0);
	fh_raise_event(x->h, 2, 1000);
	fh_raise_event(x->h, 3, 2047);
	assert_int_equal(x->cb_calls, 3);
	assert_int_equal(stats(x).interrupts, 2);
	/* Nor after close. */
	vmbus_client_channel_close(ch);
	fh_raise_event(x->h, 1, 9);
	assert_int_equal(x->cb_calls, 3);
}

static void reader_signals_a_blocked_host(void **state)
{
	struct fx *x = *state;
	uint8_t buf[256], payload[200] = {0};
	struct vmbus_packet pkt;
	uint32_t need = 0;

	x->cb_reads = false;
	struct vmbus_client_channel *ch = open_one(x, &HEARTBEAT, &x->hb, 5);
	struct fh_chan *hc = fh_chan(x->h, 5);
	const uint32_t conn = 0x1000 + 5;
	struct vmbus_ring_iov iov = {payload, sizeof(payload)};
	struct vmbus_packet_out p = {.type = VMBUS_PKT_DATA_INBAND, .iov = &iov, .iov_count = 1};

	/* Without pending_send_sz, reading frees space silently. */
	assert_int_equal(vmbus_ring_put(&hc->to_guest, &p, NULL), 0);
	vmbus_ring_publish(&hc->to_guest);
	assert_int_equal(vmbus_client_channel_recv(ch, buf, sizeof(buf), &pkt), 0);
	assert_int_equal(fh_signals_to(x->h, conn), 0);

	/* The host fills the ring and asks for space. */
	while (vmbus_ring_put(&hc->to_guest, &p, &need) == 0)
		;
	vmbus_ring_publish(&hc->to_guest);
	assert_false(vmbus_ring_writer_want_space(&hc->to_guest, need));
	/* The first read makes the room it waits for: one signal. */
	assert_int_equal(vmbus_client_channel_recv(ch, buf, sizeof(buf), &pkt), 0);
	assert_int_equal(fh_signals_to(x->h, conn), 1);
	assert_int_equal(vmbus_client_channel_recv(ch, buf, sizeof(buf), &pkt), 0);
	assert_int_equal(fh_signals_to(x->h, conn), 1);
	/* A buffer too small leaves the packet where it is. */
	assert_int_equal(vmbus_client_channel_recv(ch, buf, 16, &pkt), -EMSGSIZE);
	assert_int_equal(vmbus_client_channel_recv(ch, buf, sizeof(buf), &pkt), 0);
	/* A corrupt packet is reported, and the ring stays unusable. */
	uint8_t *desc = hc->to_guest.mem.data + hc->to_guest.mem.hdr->read_index;
	desc[4] = desc[5] = 0xFF; /* len8 far past what was published */
	assert_int_equal(vmbus_client_channel_recv(ch, buf, sizeof(buf), &pkt), -EBADMSG);
	assert_int_equal(vmbus_client_channel_recv(ch, buf, sizeof(buf), &pkt), -EBADMSG);
}

/* ------------------------------------------------------------------ */
/* Retarget                                                            */
/* ------------------------------------------------------------------ */

static void retarget_at_4_1_takes_the_target_at_once(void **state)
{
	struct fx *x = *state;
	const uint32_t v41 = VMBUS_VERSION_WIN10_V4_1;

	fh_accept(x->h, &v41, 1);
	struct vmbus_client_channel *ch = open_one(x, &HEARTBEAT, &x->hb, 5);
	assert_int_equal(info_of(ch).target_vp, 0);
	uint32_t waits = x->f.event_waits;

	assert_int_equal(vmbus_client_channel_retarget(ch, 2), 0);
	assert_int_equal(info_of(ch).target_vp, 2);
	assert_int_equal(x->f.event_waits, waits); /* no answer to wait for */
	struct vmbus_msg_modify_channel m;
	const struct fh_post *p = fh_nth(x->h, VMBUS_MSG_MODIFYCHANNEL, 0);
	assert_int_equal(p->size, sizeof(m));
	msg_of(p, &m, sizeof(m));
	assert_int_equal(m.child_relid, 5);
	assert_int_equal(m.target_vp, x->f.vp_index[2]);
	/* The host now interrupts VP 2. */
	assert_int_equal(fh_send(x->h, 5, 1, "x", 1), 0);
	assert_int_equal(x->cb_vp[0], 2);

	assert_int_equal(vmbus_client_channel_retarget(ch, VPS), -EINVAL);
	assert_int_equal(vmbus_client_channel_retarget(ch, 1000), -EINVAL);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_MODIFYCHANNEL), 1);
}

static void retarget_before_4_1_is_not_supported(void **state)
{
	struct fx *x = *state;
	const uint32_t v40 = VMBUS_VERSION_WIN10;

	fh_accept(x->h, &v40, 1);
	struct vmbus_client_channel *ch = open_one(x, &HEARTBEAT, &x->hb, 5);
	assert_int_equal(vmbus_client_channel_retarget(ch, 1), -EOPNOTSUPP);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_MODIFYCHANNEL), 0);
	assert_int_equal(info_of(ch).target_vp, 0);
}

static void retarget_at_5_3_waits_for_the_response(void **state)
{
	struct fx *x = *state;

	struct vmbus_client_channel *ch = open_one(x, &HEARTBEAT, &x->hb, 5);
	/* An answer for another relid first: not ours, counted. */
	struct vmbus_msg_modify_channel_response other = {
		{VMBUS_MSG_MODIFYCHANNEL_RESPONSE, 0}, 6, 0};
	fh_inject_before(x->h, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, &other, sizeof(other));
	assert_int_equal(vmbus_client_channel_retarget(ch, 3), 0);
	assert_int_equal(info_of(ch).target_vp, 3);
	assert_int_equal(stats(x).bad_messages, 1);

	x->h->modify_status = 0xC0000001u;
	assert_int_equal(vmbus_client_channel_retarget(ch, 1), -EIO);
	assert_int_equal(info_of(ch).target_vp, 3);

	x->h->modify_status = 0;
	x->h->drop_modify_response = true;
	assert_int_equal(vmbus_client_channel_retarget(ch, 2), -ETIMEDOUT);
	assert_int_equal(info_of(ch).target_vp, 3);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_MODIFYCHANNEL), 3);

	/* Not open: the target is kept for OPENCHANNEL, no message. */
	vmbus_client_channel_close(ch);
	assert_int_equal(vmbus_client_channel_retarget(ch, 2), 0);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_MODIFYCHANNEL), 3);
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, NULL, 0, packet_cb, x), 0);
	struct vmbus_msg_open_channel o;
	msg_of(fh_nth(x->h, VMBUS_MSG_OPENCHANNEL, 1), &o, sizeof(o));
	assert_int_equal(o.target_vp, x->f.vp_index[2]);
}

/* ------------------------------------------------------------------ */
/* Sub-channels and target VPs                                         */
/* ------------------------------------------------------------------ */

static void subchannels_are_announced_and_closed_first(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1);

	struct vmbus_client_channel *primary = open_one(x, &NIC, &x->nic, 10);
	assert_int_equal(info_of(primary).target_vp, 0);
	struct vmbus_msg_offer_channel s1 = fh_make_offer(&NIC, &i1, 0, 11);
	s1.offer.if_instance = inst(10);
	s1.offer.sub_channel_index = 1;
	struct vmbus_msg_offer_channel s2 = s1;
	s2.child_relid = 12;
	s2.offer.sub_channel_index = 2;
	fh_queue(x->h, &s1, sizeof(s1));
	fh_queue(x->h, &s2, sizeof(s2));
	fh_deliver_all(x->h);
	assert_int_equal(x->nic.subs, 0);
	assert_int_equal(vmbus_client_process(x->c), 2);
	assert_int_equal(x->nic.subs, 2);
	assert_ptr_equal(x->nic.sub_of[0], primary);
	assert_ptr_equal(x->nic.sub_of[1], primary);
	struct vmbus_client_channel_info a = info_of(x->nic.sub[0]), b = info_of(x->nic.sub[1]);
	assert_int_equal(a.relid, 11);
	assert_int_equal(a.sub_channel_index, 1);
	assert_int_equal(b.sub_channel_index, 2);
	assert_string_equal(a.driver, "netvsc");
	/* Spread away from the primary's VP. */
	assert_int_equal(a.target_vp, 1);
	assert_int_equal(b.target_vp, 2);
	assert_int_equal(a.state, VMBUS_CLIENT_OPEN);

	/* vmbus_close(): the sub-channels first, then the primary. */
	vmbus_client_channel_close(primary);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_CLOSECHANNEL), 3);
	struct vmbus_msg_close_channel c2;
	msg_of(fh_nth(x->h, VMBUS_MSG_CLOSECHANNEL, 2), &c2, sizeof(c2));
	assert_int_equal(c2.child_relid, 10);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_GPADL_TEARDOWN), 3);
	assert_int_equal(info_of(x->nic.sub[0]).state, VMBUS_CLIENT_OFFERED);
}

static void fast_channels_spread_over_online_vps(void **state)
{
	struct fx *x = *state;
	static const uint32_t want[] = {0, 1, 2, 3, 0, 1};

	for (uint32_t i = 0; i < 6; i++) {
		struct hv_guid g = inst(i);
		fh_add_offer(x->h, &SCSI, &g, 0, 20 + i);
	}
	struct hv_guid h1 = inst(50);
	fh_add_offer(x->h, &HEARTBEAT, &h1, 0, 50);
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	struct listing l = list(x);
	for (uint32_t i = 0; i < 6; i++)
		assert_int_equal(listed(&l, 20 + i)->target_vp, want[i]);
	assert_int_equal(listed(&l, 50)->target_vp, 0); /* slow: VP 0 */

	/* Four devices on four VPs: a sub-channel avoids its primary's VP. */
	fixture_fini(x);
	fixture_init(x, VPS);
	for (uint32_t i = 0; i < 4; i++) {
		struct hv_guid g = inst(i);
		fh_add_offer(x->h, &SCSI, &g, 0, 20 + i);
	}
	struct hv_guid g0 = inst(0);
	fh_add_offer(x->h, &SCSI, &g0, 1, 30);
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	l = list(x);
	assert_int_equal(listed(&l, 20)->target_vp, 0);
	assert_int_equal(listed(&l, 30)->target_vp, 1);

	/* Every VP taken once; the channel on VP 2 goes: VP 2 is free again
	 * (hv_clear_allocated_cpu()), so the next fast offer gets it rather
	 * than a reset mask's VP 0. */
	fixture_fini(x);
	fixture_init(x, VPS);
	for (uint32_t i = 0; i < 4; i++) {
		struct hv_guid g = inst(i);
		fh_add_offer(x->h, &SCSI, &g, 0, 20 + i);
	}
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	struct vmbus_msg_rescind_offer r = {{VMBUS_MSG_RESCIND_CHANNELOFFER, 0}, 22};
	deliver(x, &r, sizeof(r));
	assert_int_equal(vmbus_client_process(x->c), 1);
	struct hv_guid g7 = inst(7);
	struct vmbus_msg_offer_channel o = fh_make_offer(&SCSI, &g7, 0, 27);
	deliver(x, &o, sizeof(o));
	l = list(x);
	assert_int_equal(listed(&l, 27)->target_vp, 2);
}

static void offline_vps_get_no_channels(void **state)
{
	struct fx *x = *state;
	static const uint32_t want[] = {0, 1, 2, 0, 1, 2};

	fixture_fini(x);
	fixture_init(x, 3); /* VP 3 never came up */
	for (uint32_t i = 0; i < 6; i++) {
		struct hv_guid g = inst(i);
		fh_add_offer(x->h, &NIC, &g, 0, 40 + i);
	}
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	struct listing l = list(x);
	for (uint32_t i = 0; i < 6; i++)
		assert_int_equal(listed(&l, 40 + i)->target_vp, want[i]);
	/* Nor can one be moved there. */
	assert_int_equal(vmbus_client_channel_retarget(probed(&x->nic, 0), 3), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* Rescind                                                             */
/* ------------------------------------------------------------------ */

static void rescind_of_an_open_idle_channel(void **state)
{
	struct fx *x = *state;

	struct vmbus_client_channel *ch = open_one(x, &SCSI, &x->scsi, 5);
	uint32_t allocs = x->f.live_allocs, before = x->h->post_count;
	struct vmbus_msg_rescind_offer r = {{VMBUS_MSG_RESCIND_CHANNELOFFER, 0}, 5};
	deliver(x, &r, sizeof(r));

	/* At once: rescinded, sends refused, host interrupts ignored. */
	assert_int_equal(info_of(ch).state, VMBUS_CLIENT_RESCINDED);
	assert_int_equal(vmbus_client_channel_send_inband(ch, 1, 0, "x", 1), -ENODEV);
	assert_int_equal(vmbus_client_channel_retarget(ch, 1), -ENODEV);
	fh_raise_event(x->h, 0, 5);
	assert_int_equal(x->cb_calls, 0);
	assert_int_equal(x->scsi.removes, 0);
	assert_int_equal(stats(x).rescinds, 1);
	assert_int_equal(x->h->post_count, before);

	/* The driver's remove runs in process context; then close (no GPADL
	 * teardown after a rescind) and RELID_RELEASED. */
	assert_int_equal(vmbus_client_wait_work(x->c, 0), 0);
	assert_int_equal(vmbus_client_process(x->c), 1);
	assert_int_equal(x->scsi.removes, 1);
	assert_ptr_equal(x->scsi.removed[0], ch);
	assert_int_equal(x->h->post_count, before + 2);
	assert_int_equal(x->h->posts[before].type, VMBUS_MSG_CLOSECHANNEL);
	assert_int_equal(x->h->posts[before + 1].type, VMBUS_MSG_RELID_RELEASED);
	struct vmbus_msg_relid_released rr;
	msg_of(&x->h->posts[before + 1], &rr, sizeof(rr));
	assert_int_equal(rr.child_relid, 5);
	assert_int_equal(x->h->posts[before + 1].size, sizeof(rr));
	assert_int_equal(fh_count(x->h, VMBUS_MSG_GPADL_TEARDOWN), 0);
	assert_int_equal(x->f.live_allocs, allocs - 1);
	assert_int_equal(list(x).n, 0);

	/* The relid is free again: a new offer of it is probed. */
	struct hv_guid i9 = inst(9);
	struct vmbus_msg_offer_channel o = fh_make_offer(&SCSI, &i9, 0, 5);
	deliver(x, &o, sizeof(o));
	assert_int_equal(vmbus_client_process(x->c), 1);
	assert_int_equal(x->scsi.probes, 2);
	assert_int_equal(stats(x).bad_messages, 0);
}

static void rescind_of_an_unbound_channel(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1);

	fh_add_offer(x->h, &UNKNOWN, &i1, 0, 8);
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	uint32_t before = x->h->post_count;
	struct vmbus_msg_rescind_offer r = {{VMBUS_MSG_RESCIND_CHANNELOFFER, 0}, 8};
	deliver(x, &r, sizeof(r));
	assert_int_equal(vmbus_client_process(x->c), 1);
	assert_int_equal(x->h->post_count, before + 1);
	assert_int_equal(x->h->posts[before].type, VMBUS_MSG_RELID_RELEASED);
	assert_int_equal(list(x).n, 0);
}

static void rescind_during_open(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1);

	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	x->h->rescind_on_open = true;
	x->scsi.open = true;
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	/* The open woke with -ENODEV; the failed probe bound nothing; the
	 * rescind's work ran in the same pass. */
	assert_int_equal(x->scsi.open_err[0], -ENODEV);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_GPADL_TEARDOWN), 0);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_CLOSECHANNEL), 0);
	assert_int_equal(vmbus_client_process(x->c), 0);
	assert_int_equal(x->scsi.removes, 0);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_RELID_RELEASED), 1);
	assert_int_equal(list(x).n, 0);
}

static void rescind_of_a_device_with_subchannels(void **state)
{
	struct fx *x = *state;

	struct vmbus_client_channel *primary = open_one(x, &NIC, &x->nic, 10);
	struct vmbus_msg_offer_channel s1 = fh_make_offer(&NIC, &(struct hv_guid){{0}}, 1, 11);
	s1.offer.if_instance = inst(10);
	deliver(x, &s1, sizeof(s1));
	assert_int_equal(vmbus_client_process(x->c), 1);
	struct vmbus_client_channel *sub = x->nic.sub[0];

	struct vmbus_msg_rescind_offer r = {{VMBUS_MSG_RESCIND_CHANNELOFFER, 0}, 10};
	deliver(x, &r, sizeof(r));
	assert_int_equal(vmbus_client_process(x->c), 1);
	/* The driver hears of the sub-channel, then of the device. */
	assert_int_equal(x->nic.removes, 2);
	assert_ptr_equal(x->nic.removed[0], sub);
	assert_ptr_equal(x->nic.removed[1], primary);
	/* The sub-channel (not rescinded) is closed with its GPADL; the
	 * primary without; then the primary's relid goes. */
	struct vmbus_msg_close_channel c0, c1;
	msg_of(fh_nth(x->h, VMBUS_MSG_CLOSECHANNEL, 0), &c0, sizeof(c0));
	msg_of(fh_nth(x->h, VMBUS_MSG_CLOSECHANNEL, 1), &c1, sizeof(c1));
	assert_int_equal(c0.child_relid, 11);
	assert_int_equal(c1.child_relid, 10);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_GPADL_TEARDOWN), 1);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_RELID_RELEASED), 1);
	struct listing l = list(x);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.ch[0].relid, 11);

	/* Then the sub-channel's own rescind: released, no second remove. */
	r.child_relid = 11;
	deliver(x, &r, sizeof(r));
	assert_int_equal(vmbus_client_process(x->c), 1);
	assert_int_equal(x->nic.removes, 2);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_RELID_RELEASED), 2);
	assert_int_equal(list(x).n, 0);
}

/* ------------------------------------------------------------------ */
/* Unload                                                              */
/* ------------------------------------------------------------------ */

static void unload_then_reconnect(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1), i2 = inst(2), i3 = inst(3);

	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	fh_add_offer(x->h, &HEARTBEAT, &i2, 0, 3);
	x->scsi.open = true;
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	uint32_t allocs = x->f.live_allocs, before = x->h->post_count;

	assert_int_equal(vmbus_client_unload(x->c), 0);
	assert_int_equal(x->scsi.removes, 1);
	assert_int_equal(x->hb.removes, 1);
	/* Linux's vmbus_exit(): each device in offer order closed (no GPADL
	 * teardown) and released, then UNLOAD last. */
	assert_int_equal(x->h->post_count, before + 4);
	assert_int_equal(x->h->posts[before + 0].type, VMBUS_MSG_CLOSECHANNEL);
	assert_int_equal(x->h->posts[before + 1].type, VMBUS_MSG_RELID_RELEASED);
	assert_int_equal(x->h->posts[before + 2].type, VMBUS_MSG_RELID_RELEASED);
	struct vmbus_msg_relid_released rel;
	msg_of(&x->h->posts[before + 1], &rel, sizeof(rel));
	assert_int_equal(rel.child_relid, 5);
	msg_of(&x->h->posts[before + 2], &rel, sizeof(rel));
	assert_int_equal(rel.child_relid, 3);
	assert_int_equal(x->h->posts[before + 3].type, VMBUS_MSG_UNLOAD);
	assert_int_equal(x->h->posts[before + 3].size, sizeof(struct vmbus_msg_header));
	assert_int_equal(fh_count(x->h, VMBUS_MSG_GPADL_TEARDOWN), 0);
	assert_int_equal(x->f.live_allocs, allocs - 1);
	assert_int_equal(list(x).n, 0);
	assert_int_equal(vmbus_client_version(x->c), 0);
	/* Nothing is open to send on, and a late offer is not taken. */
	struct vmbus_msg_offer_channel late = fh_make_offer(&SCSI, &i3, 0, 40);
	deliver(x, &late, sizeof(late));
	assert_int_equal(list(x).n, 0);
	assert_int_equal(stats(x).bad_messages, 1);
	assert_int_equal(vmbus_client_unload(x->c), 0); /* twice is fine */

	/* Again, to a host with other devices at other relids. */
	x->h->offer_count = 0;
	fh_add_offer(x->h, &NIC, &i3, 0, 30);
	x->nic.open = true;
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(vmbus_client_version(x->c), VMBUS_VERSION_WIN10_V5_3);
	assert_int_equal(x->nic.probes, 1);
	assert_int_equal(x->nic.open_err[0], 0);
	assert_int_equal(info_of(probed(&x->nic, 0)).relid, 30);
	assert_int_equal(list(x).n, 1);
	/* GPADL handles keep counting (connection.c's counter is global). */
	assert_int_equal(check_gpadl(x, 1, 30, 8), 0xE1E11);
}

/* ------------------------------------------------------------------ */
/* Hibernation (hibernation.rst; vmbus_bus_suspend/resume)             */
/* ------------------------------------------------------------------ */

/* A storage controller (relid 5) with a sub-channel (6), a NIC (7) and a
 * heartbeat (3), storage and NIC drivers that hibernate, the heartbeat's
 * does not; everything open; the host rescinds sub-channels on close. */
static void hibernating_machine(struct fx *x, uint64_t resume_wait_ns)
{
	struct hv_guid i1 = inst(1), i2 = inst(2), i3 = inst(3);
	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	fh_add_offer(x->h, &SCSI, &i1, 1, 6);
	fh_add_offer(x->h, &NIC, &i2, 0, 7);
	fh_add_offer(x->h, &HEARTBEAT, &i3, 0, 3);
	x->h->rescind_subs_on_close = true;
	x->scsi.open = x->nic.open = x->hb.open = true;
	drv_hibernates(&x->scsi);
	drv_hibernates(&x->nic);
	struct vmbus_client_config cfg = {.resume_wait_ns = resume_wait_ns};
	client_new(x, &cfg);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(x->scsi.subs, 1);
	assert_int_equal(list(x).n, 4);
}

/* The offer of relid's device moved to new_relid. */
static void move_offer(struct fx *x, uint32_t relid, uint32_t new_relid)
{
	for (uint32_t i = 0; i < x->h->offer_count; i++)
		if (x->h->offers[i].child_relid == relid) {
			x->h->offers[i].child_relid = new_relid;
			x->h->offers[i].connection_id = 0x1000 + new_relid;
		}
}

static void drop_offer(struct fx *x, uint32_t relid)
{
	for (uint32_t i = 0; i < x->h->offer_count; i++)
		if (x->h->offers[i].child_relid == relid)
			x->h->offers[i] = x->h->offers[--x->h->offer_count];
}

static void suspend_closes_all_then_unloads(void **state)
{
	struct fx *x = *state;
	hibernating_machine(x, 0);
	struct vmbus_client_channel *scsi = probed(&x->scsi, 0), *nic = probed(&x->nic, 0);
	uint32_t before = x->h->post_count;

	assert_int_equal(vmbus_client_suspend(x->c), 0);
	assert_int_equal(x->scsi.suspends, 1);
	assert_int_equal(x->nic.suspends, 1);
	assert_int_equal(x->hb.removes, 1); /* no suspend: removed */
	/* The sub-channel went with its rescind; the primaries stay. */
	assert_int_equal(x->scsi.removes, 1);
	assert_ptr_equal(x->scsi.removed[0], x->scsi.sub[0]);
	assert_int_equal(x->nic.removes, 0);
	/* Every channel closed (the sub-channel before its primary), the
	 * host's rescind of the sub-channel answered, UNLOAD last. */
	assert_int_equal(fh_count(x->h, VMBUS_MSG_CLOSECHANNEL), 4);
	struct vmbus_msg_close_channel first;
	msg_of(fh_nth(x->h, VMBUS_MSG_CLOSECHANNEL, 0), &first, sizeof(first));
	assert_int_equal(first.child_relid, 6);
	struct vmbus_msg_relid_released rel;
	assert_int_equal(fh_count(x->h, VMBUS_MSG_RELID_RELEASED), 1);
	msg_of(fh_nth(x->h, VMBUS_MSG_RELID_RELEASED, 0), &rel, sizeof(rel));
	assert_int_equal(rel.child_relid, 6);
	assert_int_equal(x->h->posts[x->h->post_count - 1].type, VMBUS_MSG_UNLOAD);
	assert_true(x->h->post_count > before);
	assert_int_equal(vmbus_client_version(x->c), 0);
	/* The suspended devices are kept, with no relid. */
	struct listing l = list(x);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.ch[0].relid, 0);
	assert_int_equal(l.ch[1].relid, 0);
	assert_int_equal(info_of(scsi).state, VMBUS_CLIENT_OFFERED);
	assert_int_equal(info_of(nic).state, VMBUS_CLIENT_OFFERED);
	/* Suspended twice, or resumed while connected: refused. */
	assert_int_equal(vmbus_client_suspend(x->c), -ENOTCONN);
}

/* Relids scrambled by the host: each device is found by its GUIDs and
 * takes its new relid; the same channel objects, reopened, with no new
 * probe; the heartbeat (no resume) is probed afresh. */
static void resume_matches_by_guid_with_new_relids(void **state)
{
	struct fx *x = *state;
	hibernating_machine(x, 0);
	struct vmbus_client_channel *scsi = probed(&x->scsi, 0), *nic = probed(&x->nic, 0);
	assert_int_equal(vmbus_client_suspend(x->c), 0);
	move_offer(x, 5, 9);
	move_offer(x, 7, 4);
	move_offer(x, 3, 8);
	uint32_t contacts = fh_count(x->h, VMBUS_MSG_INITIATE_CONTACT);

	assert_int_equal(vmbus_client_resume(x->c), 0);
	/* The same version as before, asked for once. */
	assert_int_equal(fh_count(x->h, VMBUS_MSG_INITIATE_CONTACT), contacts + 1);
	assert_int_equal(contact(x, contacts).version_requested, VMBUS_VERSION_WIN10_V5_3);
	assert_int_equal(vmbus_client_version(x->c), VMBUS_VERSION_WIN10_V5_3);
	assert_int_equal(x->scsi.resumes, 1);
	assert_int_equal(x->nic.resumes, 1);
	assert_ptr_equal(x->scsi.resumed[0], scsi);
	assert_ptr_equal(x->nic.resumed[0], nic);
	assert_int_equal(x->scsi.probes, 1);
	assert_int_equal(x->nic.probes, 1);
	assert_int_equal(x->hb.probes, 2);
	assert_int_equal(info_of(scsi).relid, 9);
	assert_int_equal(info_of(scsi).connection_id, 0x1000 + 9);
	assert_int_equal(info_of(scsi).state, VMBUS_CLIENT_OPEN);
	assert_int_equal(info_of(nic).relid, 4);
	assert_int_equal(info_of(nic).state, VMBUS_CLIENT_OPEN);
	assert_int_equal(info_of(probed(&x->hb, 1)).relid, 8);
	assert_int_equal(stats(x).resumed, 2);
	assert_int_equal(stats(x).missing_after_resume, 0);
	assert_int_equal(stats(x).bad_messages, 0);
	/* The reopened channel carries packets on its new relid. */
	assert_int_equal(fh_send(x->h, 9, 5, "after", 5), 0);
	fh_deliver_all(x->h);
	assert_true(x->received >= 1);
	assert_int_equal(x->rx_trans[x->received - 1], 5);
	/* A second hibernation works the same way. */
	assert_int_equal(vmbus_client_suspend(x->c), 0);
	assert_int_equal(vmbus_client_resume(x->c), 0);
	assert_int_equal(x->scsi.resumes, 2);
	assert_int_equal(info_of(scsi).relid, 9);
}

/* A device the host no longer offers: the wait runs out (10 s by default,
 * counted on the fake clock), its driver removes it, the rest resume; a
 * new device is probed; a second offer of one device is refused. */
static void resume_missing_extra_and_duplicated(void **state)
{
	struct fx *x = *state;
	hibernating_machine(x, 0);
	assert_int_equal(vmbus_client_suspend(x->c), 0);
	drop_offer(x, 7); /* the NIC is gone */
	struct hv_guid i4 = inst(4), i1 = inst(1);
	fh_add_offer(x->h, &NIC, &i4, 0, 12); /* a new NIC */
	fh_add_offer(x->h, &SCSI, &i1, 0, 13); /* the controller twice */
	uint64_t t0 = x->f.now_ns;

	assert_int_equal(vmbus_client_resume(x->c), 0);
	assert_true(x->f.now_ns - t0 >= 10000000000ull);
	assert_int_equal(x->nic.resumes, 0);
	assert_int_equal(x->nic.removes, 1);
	assert_int_equal(x->nic.probes, 2); /* the new one */
	assert_int_equal(info_of(probed(&x->nic, 1)).relid, 12);
	assert_int_equal(x->scsi.resumes, 1);
	assert_int_equal(info_of(x->scsi.resumed[0]).relid, 5);
	assert_int_equal(stats(x).missing_after_resume, 1);
	assert_int_equal(stats(x).bad_messages, 1); /* the duplicate */
	assert_int_equal(list(x).n, 3);
}

/* The NIC comes after ALLOFFERS_DELIVERED, within the wait: matched,
 * resumed; the wait ends when it comes, not at its limit. */
static void resume_offer_during_the_wait(void **state)
{
	struct fx *x = *state;
	hibernating_machine(x, 0);
	assert_int_equal(vmbus_client_suspend(x->c), 0);
	struct hv_guid i2 = inst(2);
	drop_offer(x, 7);
	x->h->late_offers[x->h->late_offer_count++] = fh_make_offer(&NIC, &i2, 0, 20);
	uint64_t t0 = x->f.now_ns;

	assert_int_equal(vmbus_client_resume(x->c), 0);
	assert_true(x->f.now_ns - t0 < 10000000000ull);
	assert_int_equal(x->nic.resumes, 1);
	assert_int_equal(x->nic.removes, 0);
	assert_int_equal(info_of(x->nic.resumed[0]).relid, 20);
	assert_int_equal(info_of(x->nic.resumed[0]).state, VMBUS_CLIENT_OPEN);
	assert_int_equal(stats(x).missing_after_resume, 0);
}

/* A host that refuses the version of before: the resume fails, and the
 * client stays suspended (a later resume may still work). */
static void resume_refused_stays_suspended(void **state)
{
	struct fx *x = *state;
	hibernating_machine(x, 0);
	assert_int_equal(vmbus_client_suspend(x->c), 0);
	const uint32_t old[] = {VMBUS_VERSION_WIN10};
	fh_accept(x->h, old, 1);
	assert_int_equal(vmbus_client_resume(x->c), -ECONNREFUSED);
	assert_int_equal(x->scsi.resumes, 0);
	const uint32_t all[] = {VMBUS_VERSION_WIN10_V5_3};
	fh_accept(x->h, all, 1);
	assert_int_equal(vmbus_client_resume(x->c), 0);
	assert_int_equal(x->scsi.resumes, 1);
	assert_int_equal(vmbus_client_resume(x->c), -EINVAL); /* not suspended */
}

static void unload_before_3_0_sends_no_unload(void **state)
{
	struct fx *x = *state;
	const uint32_t v24 = VMBUS_VERSION_WIN8;

	fh_accept(x->h, &v24, 1);
	open_one(x, &SCSI, &x->scsi, 5);
	assert_int_equal(vmbus_client_unload(x->c), 0);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_UNLOAD), 0);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_CLOSECHANNEL), 1);
	assert_int_equal(fh_count(x->h, VMBUS_MSG_RELID_RELEASED), 1);
	assert_int_equal(x->scsi.removes, 1);
}

/* Closing KVP's channel makes Hyper-V rescind the device and offer it
 * again (hibernation.rst); during an unload both cross the guest's own
 * teardown and are dropped quietly, not counted as a misbehaving host. */
static void unload_drops_a_crossing_rescind_and_reoffer(void **state)
{
	struct fx *x = *state;
	struct hv_guid again = inst(6);

	open_one(x, &HEARTBEAT, &x->hb, 5);
	struct vmbus_msg_rescind_offer r = {{VMBUS_MSG_RESCIND_CHANNELOFFER, 0}, 5};
	struct vmbus_msg_offer_channel o = fh_make_offer(&HEARTBEAT, &again, 0, 6);
	fh_inject_before(x->h, VMBUS_MSG_UNLOAD_RESPONSE, &r, sizeof(r));
	fh_inject_before(x->h, VMBUS_MSG_UNLOAD_RESPONSE, &o, sizeof(o));
	assert_int_equal(vmbus_client_unload(x->c), 0);
	assert_int_equal(stats(x).bad_messages, 0);
	assert_int_equal(stats(x).dropped_while_unloading, 2);
	assert_int_equal(x->hb.probes, 1);
	assert_int_equal(x->hb.removes, 1);
	assert_int_equal(list(x).n, 0);
}

static void unload_without_response_keeps_the_rings(void **state)
{
	struct fx *x = *state;

	open_one(x, &SCSI, &x->scsi, 5);
	x->h->drop_unload_response = true;
	uint32_t allocs = x->f.live_allocs;
	assert_int_equal(vmbus_client_unload(x->c), -ETIMEDOUT);
	/* The host may still write them: the ring pages are left to it. */
	assert_int_equal(x->f.live_allocs, allocs);
	x->leaked_allocs = 1;
	assert_int_equal(vmbus_client_version(x->c), 0);
}

/* ------------------------------------------------------------------ */
/* A malicious host                                                    */
/* ------------------------------------------------------------------ */

static void send_raw(struct fx *x, uint32_t type, uint32_t size)
{
	uint8_t m[VMBUS_MAX_MESSAGE_SIZE];
	memset(m, 0xA5, sizeof(m));
	memcpy(m, &type, sizeof(type));
	deliver(x, m, size);
}

static void malicious_messages_are_dropped_and_counted(void **state)
{
	struct fx *x = *state;
	uint64_t bad = 0;
	uint8_t buf[64];
	struct vmbus_packet pkt;

	struct vmbus_client_channel *ch = open_one(x, &SCSI, &x->scsi, 5);
	uint32_t posts = x->h->post_count;
	struct vmbus_client_stats before = stats(x);

	/* Shorter than a header. */
	for (uint32_t size = 0; size < 8; size++) {
		send_raw(x, VMBUS_MSG_OFFERCHANNEL, size);
		assert_int_equal(stats(x).bad_messages, ++bad);
	}
	/* One byte short of what each handled type needs. */
	static const struct {
		uint32_t type, size;
	} need[] = {
		{VMBUS_MSG_OFFERCHANNEL, 196}, {VMBUS_MSG_RESCIND_CHANNELOFFER, 12},
		{VMBUS_MSG_OPENCHANNEL_RESULT, 20}, {VMBUS_MSG_GPADL_CREATED, 20},
		{VMBUS_MSG_GPADL_TORNDOWN, 12}, {VMBUS_MSG_VERSION_RESPONSE, 16},
		{VMBUS_MSG_MODIFYCHANNEL_RESPONSE, 16},
	};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		send_raw(x, need[i].type, need[i].size - 1);
		assert_int_equal(stats(x).bad_messages, ++bad);
	}
	/* Types the guest does not take from the host. */
	static const uint32_t unknown[] = {0,  3,  5,  7,  8,  9,  11, 13, 14, 16,
					   18, 19, 20, 21, 22, 23, 25, 0xFFFFFFFFu};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		send_raw(x, unknown[i], 64);
		assert_int_equal(stats(x).bad_messages, ++bad);
	}
	/* Offers: impossible relids, a relid in use, a duplicate device, a
	 * sub-channel of nothing. */
	struct hv_guid other = inst(99), mine = inst(5);
	static const uint32_t relids[] = {0, 2048, 0xFFFFFFFFu, 5};
	for (size_t i = 0; i < sizeof(relids) / sizeof(relids[0]); i++) {
		struct vmbus_msg_offer_channel o = fh_make_offer(&SCSI, &other, 0, relids[i]);
		deliver(x, &o, sizeof(o));
		assert_int_equal(stats(x).bad_messages, ++bad);
	}
	struct vmbus_msg_offer_channel dup = fh_make_offer(&SCSI, &mine, 0, 40);
	deliver(x, &dup, sizeof(dup));
	assert_int_equal(stats(x).bad_messages, ++bad);
	struct vmbus_msg_offer_channel orphan = fh_make_offer(&SCSI, &other, 1, 41);
	deliver(x, &orphan, sizeof(orphan));
	assert_int_equal(stats(x).bad_messages, ++bad);
	/* Answers nobody asked for. */
	struct vmbus_msg_version_response vr = {{VMBUS_MSG_VERSION_RESPONSE, 0}, 1, 0, 0, 4};
	struct vmbus_msg_open_result or = {{VMBUS_MSG_OPENCHANNEL_RESULT, 0}, 5, 5, 0};
	struct vmbus_msg_gpadl_created gc = {{VMBUS_MSG_GPADL_CREATED, 0}, 5, 0xE1E10, 0};
	struct vmbus_msg_gpadl_torndown gt = {{VMBUS_MSG_GPADL_TORNDOWN, 0}, 0xE1E10};
	struct vmbus_msg_modify_channel_response mr = {
		{VMBUS_MSG_MODIFYCHANNEL_RESPONSE, 0}, 5, 0};
	struct vmbus_msg_header ur = {VMBUS_MSG_UNLOAD_RESPONSE, 0};
	deliver(x, &vr, sizeof(vr));
	deliver(x, &or, sizeof(or));
	deliver(x, &gc, sizeof(gc));
	deliver(x, &gt, sizeof(gt));
	deliver(x, &mr, sizeof(mr));
	deliver(x, &ur, sizeof(ur));
	bad += 6;
	assert_int_equal(stats(x).bad_messages, bad);
	/* ALLOFFERS_DELIVERED unasked is harmless (Linux ignores it too). */
	struct vmbus_msg_header ad = {VMBUS_MSG_ALLOFFERS_DELIVERED, 0};
	deliver(x, &ad, sizeof(ad));
	assert_int_equal(stats(x).bad_messages, bad);
	/* Rescinds of nothing. */
	static const uint32_t gone[] = {0, 77, 2047, 5000};
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		struct vmbus_msg_rescind_offer r = {{VMBUS_MSG_RESCIND_CHANNELOFFER, 0}, gone[i]};
		deliver(x, &r, sizeof(r));
		assert_int_equal(stats(x).bad_messages, ++bad);
	}

	/* Nothing changed, nothing was sent, and the client still works. */
	struct vmbus_client_stats after = stats(x);
	assert_int_equal(after.offers, before.offers);
	assert_int_equal(after.rescinds, 0);
	assert_int_equal(x->h->post_count, posts);
	assert_int_equal(list(x).n, 1);
	assert_int_equal(info_of(ch).state, VMBUS_CLIENT_OPEN);
	assert_int_equal(vmbus_client_process(x->c), 0);
	assert_int_equal(vmbus_client_channel_send_inband(ch, 1, 0, "ok", 2), 0);
	assert_int_equal(fh_recv(x->h, 5, buf, sizeof(buf), &pkt), 0);
	assert_int_equal(fh_send(x->h, 5, 2, "in", 2), 0);
	assert_int_equal(x->received, 1);
	vmbus_client_channel_close(ch);
	assert_int_equal(vmbus_client_channel_open(ch, 8192, 8192, NULL, 0, packet_cb, x), 0);

	/* A second rescind of the same channel is one too many. */
	struct vmbus_msg_rescind_offer r = {{VMBUS_MSG_RESCIND_CHANNELOFFER, 0}, 5};
	deliver(x, &r, sizeof(r));
	assert_int_equal(stats(x).bad_messages, bad);
	deliver(x, &r, sizeof(r));
	assert_int_equal(stats(x).bad_messages, ++bad);
	assert_int_equal(vmbus_client_process(x->c), 1);
	assert_int_equal(stats(x).rescinds, 1);
	/* Counted always, logged once. */
	assert_true(x->f.log_count < bad);
}

static void wrong_answers_while_waiting_are_dropped(void **state)
{
	struct fx *x = *state;
	struct hv_guid i1 = inst(1);

	/* Before the version response: a GPADL answer nobody waits for. */
	struct vmbus_msg_gpadl_created early = {{VMBUS_MSG_GPADL_CREATED, 0}, 5, 0xE1E10, 0};
	fh_inject_before(x->h, VMBUS_MSG_VERSION_RESPONSE, &early, sizeof(early));
	/* Before GPADL_CREATED: wrong relid, then wrong handle. */
	struct vmbus_msg_gpadl_created gc1 = {{VMBUS_MSG_GPADL_CREATED, 0}, 6, 0xE1E10, 0};
	struct vmbus_msg_gpadl_created gc2 = {{VMBUS_MSG_GPADL_CREATED, 0}, 5, 0xE1E11, 1};
	fh_inject_before(x->h, VMBUS_MSG_GPADL_CREATED, &gc1, sizeof(gc1));
	fh_inject_before(x->h, VMBUS_MSG_GPADL_CREATED, &gc2, sizeof(gc2));
	/* Before OPENCHANNEL_RESULT: wrong relid, then wrong open id. */
	struct vmbus_msg_open_result or1 = {{VMBUS_MSG_OPENCHANNEL_RESULT, 0}, 6, 5, 1};
	struct vmbus_msg_open_result or2 = {{VMBUS_MSG_OPENCHANNEL_RESULT, 0}, 5, 6, 1};
	fh_inject_before(x->h, VMBUS_MSG_OPENCHANNEL_RESULT, &or1, sizeof(or1));
	fh_inject_before(x->h, VMBUS_MSG_OPENCHANNEL_RESULT, &or2, sizeof(or2));
	/* Before ALLOFFERS_DELIVERED: a second version response. */
	struct vmbus_msg_version_response vr = {{VMBUS_MSG_VERSION_RESPONSE, 0}, 0, 0, 0, 0};
	fh_inject_before(x->h, VMBUS_MSG_ALLOFFERS_DELIVERED, &vr, sizeof(vr));

	fh_add_offer(x->h, &SCSI, &i1, 0, 5);
	x->scsi.open = true;
	client_new(x, NULL);
	register_all(x);
	assert_int_equal(vmbus_client_connect(x->c), 0);
	assert_int_equal(vmbus_client_version(x->c), VMBUS_VERSION_WIN10_V5_3);
	assert_int_equal(x->scsi.open_err[0], 0);
	assert_int_equal(stats(x).bad_messages, 6);

	/* Before GPADL_TORNDOWN: another handle. */
	struct vmbus_msg_gpadl_torndown gt = {{VMBUS_MSG_GPADL_TORNDOWN, 0}, 0xE1E11};
	fh_inject_before(x->h, VMBUS_MSG_GPADL_TORNDOWN, &gt, sizeof(gt));
	uint32_t allocs = x->f.live_allocs;
	vmbus_client_channel_close(probed(&x->scsi, 0));
	assert_int_equal(stats(x).bad_messages, 7);
	assert_int_equal(x->f.live_allocs, allocs - 1);
	/* Before UNLOAD_RESPONSE: a modify response for nothing. */
	struct vmbus_msg_modify_channel_response mr = {
		{VMBUS_MSG_MODIFYCHANNEL_RESPONSE, 0}, 5, 0};
	fh_inject_before(x->h, VMBUS_MSG_UNLOAD_RESPONSE, &mr, sizeof(mr));
	assert_int_equal(vmbus_client_unload(x->c), 0);
	assert_int_equal(stats(x).bad_messages, 8);
}

/* ------------------------------------------------------------------ */
/* Set-up errors                                                       */
/* ------------------------------------------------------------------ */

static void new_needs_events_and_memory(void **state)
{
	struct fx *x = *state;
	int err = 0;

	/* A port without events cannot wait. */
	struct hv_port saved = x->f.port;
	x->f.port.event_wait = NULL;
	assert_null(vmbus_client_new(&x->g, NULL, &err));
	assert_int_equal(err, -EINVAL);
	x->f.port = saved;
	assert_null(vmbus_client_new(NULL, NULL, &err));
	assert_int_equal(err, -EINVAL);

	/* Out of memory at every step: nothing leaks. */
	int n;
	for (n = 0;; n++) {
		x->f.alloc_fail_after = n;
		x->c = vmbus_client_new(&x->g, NULL, &err);
		if (x->c)
			break;
		assert_int_equal(err, -ENOMEM);
		assert_int_equal(x->f.live_allocs, x->allocs_before);
		assert_int_equal(x->f.events_live, 0);
		assert_int_equal(x->f.locks_live, (int)x->locks_before);
	}
	assert_true(n >= 6); /* itself, relids, three pages, a slab at least */
	x->f.alloc_fail_after = -1;
	/* The client took the callbacks and gives them back. */
	assert_ptr_not_equal(x->g.on_message, NULL);
	vmbus_client_free(x->c);
	x->c = NULL;
	assert_null(x->g.on_message);
	assert_null(x->g.on_events);
	/* Connect needs VP 0 up. */
	x->f.current_vp = 0;
	hv_guest_vp_exit(&x->g);
	x->allocs_before -= 3; /* its SIMP, SIEFP and post page */
	x->locks_before -= 1;  /* its post lock */
	client_new(x, NULL);
	x->f.current_vp = 1;
	assert_int_equal(vmbus_client_connect(x->c), -ENODEV);
	assert_int_equal(x->h->post_count, 0);
	x->f.current_vp = 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(connect_5_3_uses_connection_4_then_msg_conn_id),
		T(every_version_is_chosen),
		T(invalid_connection_id_moves_to_older_versions),
		T(max_version_caps_the_first_try),
		T(no_version_accepted_then_later_one),
		T(silent_host_times_out),
		T(busy_hypervisor_is_retried),
		T(missing_all_offers_delivered_times_out),
		T(offers_probe_drivers_by_class),
		T(late_offer_is_probed_by_process),
		T(failed_probe_leaves_no_binding),
		T(offers_beyond_memory_give_the_relid_back),
		T(open_lays_out_gpadl_and_open_as_linux),
		T(open_refused_tears_the_gpadl_down),
		T(open_without_answer_times_out_and_cleans_up),
		T(answers_arriving_inside_the_post_are_not_lost),
		T(close_sends_close_then_teardown),
		T(send_signals_only_an_empty_unmasked_ring),
		T(full_ring_says_again),
		T(interrupt_page_bit_below_5_0),
		T(callback_runs_on_the_target_vp_and_drains),
		T(reader_signals_a_blocked_host),
		T(retarget_at_4_1_takes_the_target_at_once),
		T(retarget_before_4_1_is_not_supported),
		T(retarget_at_5_3_waits_for_the_response),
		T(subchannels_are_announced_and_closed_first),
		T(fast_channels_spread_over_online_vps),
		T(offline_vps_get_no_channels),
		T(rescind_of_an_open_idle_channel),
		T(rescind_of_an_unbound_channel),
		T(rescind_during_open),
		T(rescind_of_a_device_with_subchannels),
		T(unload_then_reconnect),
		T(suspend_closes_all_then_unloads),
		T(resume_matches_by_guid_with_new_relids),
		T(resume_missing_extra_and_duplicated),
		T(resume_offer_during_the_wait),
		T(resume_refused_stays_suspended),
		T(unload_before_3_0_sends_no_unload),
		T(unload_drops_a_crossing_rescind_and_reoffer),
		T(unload_without_response_keeps_the_rings),
		T(malicious_messages_are_dropped_and_counted),
		T(wrong_answers_while_waiting_are_dropped),
		T(new_needs_events_and_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
