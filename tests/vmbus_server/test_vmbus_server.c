/* SPDX-License-Identifier: MIT */
/*
 * The VMBus server against a scripted guest that builds its messages and
 * rings the way Linux 6.1 does (connection.c, channel.c, channel_mgmt.c),
 * through a fake glue that records everything and checks the lock.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmbus_fixture.h"

#define OK 0u
#define CONN(relid) (VMBUS_SERVER_CHANNEL_CONNECTION_BASE + (relid))

/* ------------------------------------------------------------------ */
/* A probe device: records its callbacks, checks they hold the lock     */
/* ------------------------------------------------------------------ */

#define PROBE_CLASS HV_GUID(0x000000b0, 0x1234, 0x5678, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4)
#define PROBE_INSTANCE(n) HV_GUID((n), 0x4321, 0x8765, 0xa9, 0xcb, 0xed, 0x0f, 4, 3, 2, 1)

struct probe {
	struct vfix *f;
	struct vmbus_device *dev;
	uint32_t opens, closes, notifies;
	int open_result;
	bool take_ref;               /* keep a reference past close */
	struct vmbus_channel *held;  /* that reference */
	struct vmbus_channel *last;  /* the channel of the last open */
	uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES];
	uint32_t version;
	uint32_t subchannels_on_open;
};

static int probe_open(void *dev, struct vmbus_channel *ch,
		      const uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES])
{
	struct probe *p = dev;
	assert_true(p->f->locked);
	p->opens++;
	if (p->open_result)
		return p->open_result;
	p->last = ch;
	memcpy(p->user_data, user_data, sizeof(p->user_data));
	p->version = vmbus_channel_version(ch);
	assert_ptr_equal(vmbus_channel_device(ch), p->dev);
	if (p->take_ref) {
		vmbus_channel_get(ch);
		p->held = ch;
	}
	if (p->subchannels_on_open)
		assert_int_equal(vmbus_device_add_subchannels_locked(p->dev, p->subchannels_on_open),
				 0);
	return 0;
}

static void probe_close(void *dev, struct vmbus_channel *ch)
{
	struct probe *p = dev;
	assert_true(p->f->locked);
	(void)ch;
	p->closes++;
}

static void probe_notify(void *dev, struct vmbus_channel *ch)
{
	struct probe *p = dev;
	assert_true(p->f->locked);
	(void)ch;
	p->notifies++;
}

static const struct vmbus_device_ops probe_ops = {probe_open, probe_close, probe_notify, NULL,
						  NULL};

static void probe_add(struct vfix *f, struct probe *p, uint32_t instance, bool rescind_on_close)
{
	memset(p, 0, sizeof(*p));
	p->f = f;
	struct vmbus_device_desc d = {
		.class_id = PROBE_CLASS,
		.instance_id = PROBE_INSTANCE(instance),
		.flags = VMBUS_OFFER_FLAG_ENUMERATE_DEVICE_INTERFACE,
		.mmio_megabytes = 7,
		.rescind_on_close = rescind_on_close,
		.name = "probe",
		.ops = &probe_ops,
		.dev = p,
	};
	for (int i = 0; i < VMBUS_OFFER_USER_DEFINED_BYTES; i++)
		d.user_def[i] = (uint8_t)(i + instance);
	assert_int_equal(vmbus_server_add_device(f->s, &d, &p->dev), 0);
}

static void expect_nothing_posted(struct vfix *f)
{
	assert_int_equal(vf_pending(f), 0);
}

static struct vmbus_msg_offer_channel take_offer(struct vfix *f)
{
	struct vmbus_msg_offer_channel o;
	memcpy(&o, vf_take(f, VMBUS_MSG_OFFERCHANNEL, sizeof(o))->data, sizeof(o));
	return o;
}

static void close_channel(struct vfix *f, uint32_t relid)
{
	struct vmbus_msg_close_channel m = {{VMBUS_MSG_CLOSECHANNEL, 0}, relid};
	assert_int_equal(vf_send(f, VMBUS_MESSAGE_CONNECTION_ID, &m, sizeof(m)), 0);
}

/* Connected and offered, the probe at relid 1. */
static struct vfix *setup_one_probe(struct probe *p, uint32_t version)
{
	struct vfix *f = vf_new(NULL);
	probe_add(f, p, 1, false);
	assert_true(vf_negotiate(f, version));
	struct vmbus_msg_offer_channel offers[4];
	assert_int_equal(vf_request_offers(f, offers, 4), 1);
	assert_int_equal(offers[0].child_relid, 1);
	return f;
}

/* ------------------------------------------------------------------ */
/* Versions                                                            */
/* ------------------------------------------------------------------ */

static const uint32_t linux_versions[] = {
	VMBUS_VERSION_WIN10_V5_3, VMBUS_VERSION_WIN10_V5_2, VMBUS_VERSION_WIN10_V5_1,
	VMBUS_VERSION_WIN10_V5,   VMBUS_VERSION_WIN10_V4_1, VMBUS_VERSION_WIN10,
	VMBUS_VERSION_WIN8_1,     VMBUS_VERSION_WIN8,
};
#define N_VERSIONS (sizeof(linux_versions) / sizeof(linux_versions[0]))

static void version_every_linux_version(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_VERSIONS; i++) {
		struct vfix *f = vf_new(NULL);
		assert_int_equal(vf_stats(f).connection, VMBUS_SERVER_DISCONNECTED);
		assert_true(vf_negotiate(f, linux_versions[i]));
		struct vmbus_server_stats st = vf_stats(f);
		assert_int_equal(st.connection, VMBUS_SERVER_CONNECTED);
		assert_int_equal(st.version, linux_versions[i]);
		assert_int_equal(st.connects, 1);
		assert_int_equal(st.bad_messages, 0);
		vf_free(f);
	}
}

static void version_capped_linux_walks_down(void **state)
{
	(void)state;
	for (size_t cap = 0; cap < N_VERSIONS; cap++) {
		struct vmbus_server_config cfg = {.vp_count = 2,
						  .max_version = linux_versions[cap]};
		struct vfix *f = vf_new(&cfg);
		/* Linux (connection.c vmbus_connect) tries newest first. */
		for (size_t i = 0; i < cap; i++) {
			assert_false(vf_negotiate(f, linux_versions[i]));
			assert_int_equal(vf_stats(f).connection, VMBUS_SERVER_DISCONNECTED);
		}
		assert_int_equal(vf_connect(f), linux_versions[cap]);
		struct vmbus_server_stats st = vf_stats(f);
		assert_int_equal(st.version, linux_versions[cap]);
		assert_int_equal(st.bad_messages, 0); /* refusals are not bad messages */
		vf_free(f);
	}
}

static void version_unknown_refused(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	const uint32_t unknown[] = {VMBUS_VERSION_WIN7, VMBUS_VERSION_WS2008,
				    VMBUS_MAKE_VERSION(5, 4), VMBUS_MAKE_VERSION(6, 0),
				    VMBUS_MAKE_VERSION(3, 1), 0};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		assert_false(vf_negotiate(f, unknown[i]));
		assert_int_equal(vf_stats(f).connection, VMBUS_SERVER_DISCONNECTED);
	}
	assert_true(vf_negotiate(f, VMBUS_VERSION_WIN10_V5_2));
	vf_free(f);
}

static void contact_wrong_connection_refused(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct vmbus_msg_initiate_contact m = {
		.header = {VMBUS_MSG_INITIATE_CONTACT, 0},
		.version_requested = VMBUS_VERSION_WIN10_V5,
		.msg_sint = VMBUS_MESSAGE_SINT,
	};
	/* 5.0 on connection 1: refused. */
	assert_int_equal(vf_send(f, 1, &m, sizeof(m)), HV_STATUS_SUCCESS);
	struct vmbus_msg_version_response r;
	memcpy(&r, vf_take(f, VMBUS_MSG_VERSION_RESPONSE, sizeof(r))->data, sizeof(r));
	assert_int_equal(r.version_supported, 0);
	assert_int_equal(vf_stats(f).bad_messages, 1);
	/* 4.0 on connection 4: refused. */
	m.version_requested = VMBUS_VERSION_WIN10;
	m.interrupt_page = 0x2000;
	assert_int_equal(vf_send(f, 4, &m, sizeof(m)), HV_STATUS_SUCCESS);
	memcpy(&r, vf_take(f, VMBUS_MSG_VERSION_RESPONSE, sizeof(r))->data, sizeof(r));
	assert_int_equal(r.version_supported, 0);
	assert_int_equal(vf_stats(f).bad_messages, 2);
	/* Any other connection is not a VMBus message connection. */
	assert_int_equal(vf_send(f, 7, &m, sizeof(m)), HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(vf_send(f, 2, &m, sizeof(m)), HV_STATUS_INVALID_CONNECTION_ID);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).connection, VMBUS_SERVER_DISCONNECTED);
	/* After contact, later messages go to connection 1, not 4. */
	assert_true(vf_negotiate(f, VMBUS_VERSION_WIN10_V5_3));
	struct vmbus_msg_header h = {VMBUS_MSG_REQUESTOFFERS, 0};
	assert_int_equal(vf_send(f, 4, &h, sizeof(h)), HV_STATUS_INVALID_CONNECTION_ID);
	expect_nothing_posted(f);
	vf_free(f);
}

static void contact_bad_vp_and_sint(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct vmbus_msg_initiate_contact m = {
		.header = {VMBUS_MSG_INITIATE_CONTACT, 0},
		.version_requested = VMBUS_VERSION_WIN10_V5_3,
		.target_vcpu = VF_VPS,
		.msg_sint = VMBUS_MESSAGE_SINT,
	};
	/* No VP to answer on: the post fails, so Linux does not wait. */
	assert_int_equal(vf_send(f, 4, &m, sizeof(m)), HV_STATUS_INVALID_PARAMETER);
	expect_nothing_posted(f);
	/* A SINT other than 2: refused on that SINT. */
	m.target_vcpu = 1;
	m.msg_sint = 3;
	assert_int_equal(vf_send(f, 4, &m, sizeof(m)), HV_STATUS_SUCCESS);
	const struct vf_msg *r = vf_take(f, VMBUS_MSG_VERSION_RESPONSE, 16);
	assert_int_equal(r->vp, 1);
	assert_int_equal(r->sint, 3);
	assert_int_equal(r->data[8], 0);
	m.msg_sint = 16;
	assert_int_equal(vf_send(f, 4, &m, sizeof(m)), HV_STATUS_INVALID_PARAMETER);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 3);
	assert_int_equal(vf_stats(f).connection, VMBUS_SERVER_DISCONNECTED);
	/* A valid VP other than 0: answered there, and later messages too. */
	m.msg_sint = VMBUS_MESSAGE_SINT;
	m.target_vcpu = 2;
	assert_int_equal(vf_send(f, 4, &m, sizeof(m)), HV_STATUS_SUCCESS);
	r = vf_take(f, VMBUS_MSG_VERSION_RESPONSE, 16);
	assert_int_equal(r->vp, 2);
	assert_int_equal(r->data[8], 1);
	struct vmbus_msg_header h = {VMBUS_MSG_REQUESTOFFERS, 0};
	vf_send(f, 1, &h, sizeof(h));
	r = vf_take(f, VMBUS_MSG_ALLOFFERS_DELIVERED, 8);
	assert_int_equal(r->vp, 2);
	assert_int_equal(r->sint, 2);
	vf_free(f);
}

static void contact_again_while_connected(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 0xE1E10, 4, 4, false);
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	/* A guest that restarts without UNLOAD: answered, and its old state
	 * is gone. */
	assert_true(vf_negotiate(f, VMBUS_VERSION_WIN10_V5_2));
	assert_int_equal(p.closes, 1);
	struct vmbus_server_stats st = vf_stats(f);
	assert_int_equal(st.connects, 2);
	assert_int_equal(st.version, VMBUS_VERSION_WIN10_V5_2);
	assert_int_equal(st.gpadls, 0);
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_UNOFFERED), 1);
	assert_int_equal(f->n_conns, 0);
	struct vmbus_msg_offer_channel o[2];
	assert_int_equal(vf_request_offers(f, o, 2), 1);
	assert_int_equal(o[0].child_relid, 1);
	vf_chan_free(&c);
	vf_free(f);
}

/* ------------------------------------------------------------------ */
/* Offers and relids                                                   */
/* ------------------------------------------------------------------ */

static void offers_sorted_complete_and_delivered_last(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct probe p2, p1;
	struct vmbus_echo *e3, *e1;
	/* Added out of order; sub-channels before the guest connects. */
	probe_add(f, &p2, 2, false);
	assert_int_equal(vmbus_echo_add(f->s, 3, &e3), 0);
	probe_add(f, &p1, 1, false);
	assert_int_equal(vmbus_echo_add(f->s, 1, &e1), 0);
	f->locked = true;
	assert_int_equal(vmbus_device_add_subchannels_locked(p1.dev, 2), 0);
	f->locked = false;
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_UNOFFERED), 6);
	expect_nothing_posted(f);

	vf_connect(f);
	expect_nothing_posted(f); /* offers wait for REQUESTOFFERS */
	struct vmbus_msg_offer_channel o[8];
	assert_int_equal(vf_request_offers(f, o, 8), 6);
	/* Relid order = (class, instance, sub-channel index) order. */
	for (uint32_t i = 0; i < 6; i++) {
		assert_int_equal(o[i].child_relid, i + 1);
		assert_int_equal(o[i].connection_id, CONN(i + 1));
		assert_int_equal(o[i].monitor_id, 0);
		assert_int_equal(o[i].monitor_flags, 0);
		assert_int_equal(o[i].interrupt_flags, 0);
		assert_int_equal(o[i].offer.reserved1, 0);
		assert_int_equal(o[i].offer.reserved3, 0);
		if (i > 0) {
			int c = hv_guid_compare(&o[i - 1].offer.if_type, &o[i].offer.if_type);
			if (!c)
				c = hv_guid_compare(&o[i - 1].offer.if_instance,
						    &o[i].offer.if_instance);
			if (!c)
				c = o[i - 1].offer.sub_channel_index - o[i].offer.sub_channel_index;
			assert_true(c < 0);
		}
	}
	struct hv_guid echo = VMBUS_ECHO_CLASS, probe = PROBE_CLASS, pi1 = PROBE_INSTANCE(1);
	assert_true(hv_guid_equal(&o[0].offer.if_type, &echo));
	assert_true(hv_guid_equal(&o[1].offer.if_type, &echo));
	assert_false(hv_guid_equal(&o[0].offer.if_instance, &o[1].offer.if_instance));
	for (int i = 2; i < 6; i++)
		assert_true(hv_guid_equal(&o[i].offer.if_type, &probe));
	/* Probe 1 with its sub-channels 1 and 2, then probe 2. */
	for (int i = 2; i < 5; i++) {
		assert_true(hv_guid_equal(&o[i].offer.if_instance, &pi1));
		assert_int_equal(o[i].offer.sub_channel_index, i - 2);
		assert_int_equal(o[i].offer.chn_flags, VMBUS_OFFER_FLAG_ENUMERATE_DEVICE_INTERFACE);
		assert_int_equal(o[i].offer.mmio_megabytes, 7);
		for (int b = 0; b < VMBUS_OFFER_USER_DEFINED_BYTES; b++)
			assert_int_equal(o[i].offer.u.user_def[b], (uint8_t)(b + 1));
	}
	assert_int_equal(o[5].offer.u.user_def[0], 2);
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_OFFERED), 6);
	struct vmbus_server_channel_info info;
	assert_true(vf_channel(f, 4, &info));
	assert_int_equal(info.sub_channel_index, 1);
	assert_int_equal(info.connection_id, CONN(4));
	vmbus_echo_remove(f->s, e1);
	vmbus_echo_remove(f->s, e3);
	vf_free(f);
}

static void offers_hot_add_and_stable_relids(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct probe p1, p3, p2;
	probe_add(f, &p1, 1, false);
	probe_add(f, &p3, 3, false);
	vf_connect(f);
	/* Before REQUESTOFFERS a hot add waits for it. */
	probe_add(f, &p2, 2, false);
	expect_nothing_posted(f);
	struct vmbus_msg_offer_channel o[4];
	assert_int_equal(vf_request_offers(f, o, 4), 3);
	struct hv_guid i2 = PROBE_INSTANCE(2);
	assert_true(hv_guid_equal(&o[1].offer.if_instance, &i2));
	assert_int_equal(o[1].child_relid, 2);

	/* Remove probe 2 (relid 2): rescinded, relid held. */
	vmbus_server_remove_device(f->s, p2.dev);
	assert_int_equal(vf_take_rescind(f), 2);
	struct vmbus_server_channel_info info;
	assert_true(vf_channel(f, 2, &info));
	assert_int_equal(info.state, VMBUS_CHANNEL_RESCINDED);
	/* Hot add while offers are live: offered at once, lowest free relid
	 * (not 2, still held). */
	struct probe p4;
	probe_add(f, &p4, 4, false);
	struct vmbus_msg_offer_channel hot = take_offer(f);
	assert_int_equal(hot.child_relid, 4);
	expect_nothing_posted(f);
	vf_relid_released(f, 2);
	assert_false(vf_channel(f, 2, NULL));
	probe_add(f, &p2, 2, false);
	assert_int_equal(take_offer(f).child_relid, 2);

	/* Reconnect: the same relids for the same devices. */
	vf_unload(f);
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_UNOFFERED), 4);
	vf_connect(f);
	assert_int_equal(vf_request_offers(f, o, 4), 4);
	for (int i = 0; i < 4; i++) {
		struct hv_guid want = PROBE_INSTANCE((uint32_t)i + 1);
		assert_true(hv_guid_equal(&o[i].offer.if_instance, &want));
		assert_int_equal(o[i].child_relid, i + 1);
	}
	assert_int_equal(vf_stats(f).bad_messages, 0);
	vf_free(f);
}

static void offers_scrambled_relids_change(void **state)
{
	(void)state;
	struct vmbus_server_config cfg = {.vp_count = 1, .scramble_relids = true,
					  .scramble_seed = 0x1234};
	struct vfix *f = vf_new(&cfg);
	struct probe p[5];
	for (uint32_t i = 0; i < 5; i++)
		probe_add(f, &p[i], i + 1, false);
	uint32_t first[5];
	bool differs = false, not_sequential = false;
	for (int round = 0; round < 4; round++) {
		vf_connect(f);
		struct vmbus_msg_offer_channel o[5];
		assert_int_equal(vf_request_offers(f, o, 5), 5);
		for (int i = 0; i < 5; i++) {
			struct hv_guid want = PROBE_INSTANCE((uint32_t)i + 1);
			/* Offers still go in (class, instance) order, and
			 * relids ascend with them. */
			assert_true(hv_guid_equal(&o[i].offer.if_instance, &want));
			assert_true(o[i].child_relid >= 1 && o[i].child_relid <= 2047);
			assert_int_equal(o[i].connection_id, CONN(o[i].child_relid));
			if (i)
				assert_true(o[i].child_relid > o[i - 1].child_relid);
			if (o[i].child_relid != (uint32_t)i + 1)
				not_sequential = true;
			if (round == 0)
				first[i] = o[i].child_relid;
			else if (first[i] != o[i].child_relid)
				differs = true;
		}
		vf_unload(f);
	}
	assert_true(not_sequential);
	assert_true(differs);
	vf_free(f);
}

static void offers_requested_twice_refused(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10);
	struct vmbus_msg_header h = {VMBUS_MSG_REQUESTOFFERS, 0};
	assert_int_equal(vf_send(f, 1, &h, sizeof(h)), 0);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 1);
	vf_free(f);
}

/* ------------------------------------------------------------------ */
/* GPADLs                                                              */
/* ------------------------------------------------------------------ */

static void gpadl_sizes_at_message_limits(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	/* All in the header; one PFN into a body; a full body; many bodies
	 * with a partial last one. */
	const uint32_t sizes[] = {1, VMBUS_GPADL_HEADER_MAX_PFNS, VMBUS_GPADL_HEADER_MAX_PFNS + 1,
				  VMBUS_GPADL_HEADER_MAX_PFNS + VMBUS_GPADL_BODY_MAX_PFNS,
				  VMBUS_GPADL_HEADER_MAX_PFNS + 3 * VMBUS_GPADL_BODY_MAX_PFNS + 5,
				  1000};
	uint64_t total = 0;
	for (uint32_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t pfns[1000];
		uint64_t first = vf_alloc(f, sizes[i]);
		for (uint32_t k = 0; k < sizes[i]; k++)
			pfns[k] = first + (k * 7919) % sizes[i]; /* any order */
		assert_int_equal(vf_gpadl(f, 1, 100 + i, pfns, sizes[i]), OK);
		total += sizes[i];
		struct vmbus_server_stats st = vf_stats(f);
		assert_int_equal(st.gpadls, i + 1);
		assert_int_equal(st.gpadl_bytes, total * 4096);
	}
	/* PFNs in the anonymous region are RAM too. */
	uint64_t anon[2] = {VF_ANON_GPA >> 12, (VF_ANON_GPA >> 12) + VF_ANON_PAGES - 1};
	assert_int_equal(vf_gpadl(f, 1, 200, anon, 2), OK);
	for (uint32_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		vf_gpadl_teardown(f, 1, 100 + i, true);
	vf_gpadl_teardown(f, 1, 200, true);
	assert_int_equal(vf_stats(f).gpadls, 0);
	assert_int_equal(vf_stats(f).gpadl_bytes, 0);
	assert_int_equal(vf_stats(f).bad_messages, 0);
	vf_free(f);
}

static void gpadl_pfns_outside_ram_fail(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	uint64_t base = vf_alloc(f, 60);
	const uint64_t bad[] = {VF_HOLE_PFN, VF_RAM_PAGES, (VF_ANON_GPA >> 12) + VF_ANON_PAGES,
				1ull << 60, UINT64_MAX};
	for (uint32_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t pfns[60];
		for (uint32_t k = 0; k < 60; k++)
			pfns[k] = base + k;
		pfns[i * 13] = bad[i]; /* in the header or in a body */
		assert_int_not_equal(vf_gpadl(f, 1, 300 + i, pfns, 60), OK);
		/* Forgotten: the handle can be used again. */
		assert_int_equal(vf_stats(f).gpadls, 0);
	}
	uint64_t pfns[60];
	for (uint32_t k = 0; k < 60; k++)
		pfns[k] = base + k;
	assert_int_equal(vf_gpadl(f, 1, 300, pfns, 60), OK);
	assert_int_equal(vf_stats(f).gpadls, 1);
	vf_free(f);
}

static void gpadl_duplicate_handle_ignored(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	uint64_t pfn = vf_alloc(f, 1);
	assert_int_equal(vf_gpadl(f, 1, 7, &pfn, 1), OK);
	vf_gpadl_send(f, 1, 7, &pfn, 1);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 1);
	assert_int_equal(vf_stats(f).gpadls, 1);
	/* Also while the first is still incomplete. */
	uint64_t many[40];
	for (int i = 0; i < 40; i++)
		many[i] = pfn;
	uint8_t buf[240];
	struct vmbus_msg_gpadl_header h = {{VMBUS_MSG_GPADL_HEADER, 0}, 1, 8, 8 + 40 * 8, 1};
	struct vmbus_gpa_range r = {40 * 4096, 0};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + 20, &r, 8);
	memcpy(buf + 28, many, 26 * 8);
	vf_send(f, 1, buf, 28 + 26 * 8);
	vf_send(f, 1, buf, 28 + 26 * 8);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 2);
	vf_free(f);
}

static void gpadl_limit_enforced(void **state)
{
	(void)state;
	struct vmbus_server_config cfg = {.vp_count = 1, .gpadl_limit = 64 * 4096};
	struct vfix *f = vf_new(&cfg);
	struct probe p;
	probe_add(f, &p, 1, false);
	vf_connect(f);
	struct vmbus_msg_offer_channel o[1];
	vf_request_offers(f, o, 1);
	uint64_t pfns[65];
	uint64_t base = vf_alloc(f, 65);
	for (int i = 0; i < 65; i++)
		pfns[i] = base + i;
	/* One page too many: refused, answered after its last body. */
	assert_int_not_equal(vf_gpadl(f, 1, 1, pfns, 65), OK);
	assert_int_equal(vf_gpadl(f, 1, 2, pfns, 40), OK);
	assert_int_not_equal(vf_gpadl(f, 1, 3, pfns, 25), OK);
	assert_int_equal(vf_gpadl(f, 1, 4, pfns, 24), OK);
	assert_int_equal(vf_stats(f).gpadl_bytes, 64 * 4096);
	/* Teardown gives the room back. */
	vf_gpadl_teardown(f, 1, 2, true);
	assert_int_equal(vf_gpadl(f, 1, 3, pfns, 25), OK);
	assert_int_equal(vf_stats(f).bad_messages, 0); /* a limit, not a bad message */
	vf_free(f);
}

static void gpadl_count_capped(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	uint64_t pfn = vf_alloc(f, 1);
	for (uint32_t h = 0; h < 16384; h++)
		assert_int_equal(vf_gpadl(f, 1, h, &pfn, 1), OK);
	assert_int_not_equal(vf_gpadl(f, 1, 16384, &pfn, 1), OK);
	assert_int_equal(vf_stats(f).gpadls, 16384);
	vf_gpadl_teardown(f, 1, 77, true);
	assert_int_equal(vf_gpadl(f, 1, 16384, &pfn, 1), OK);
	vf_free(f);
}

static void gpadl_extra_pfns_fail(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	uint64_t base = vf_alloc(f, 64);
	uint8_t buf[240];
	/* Announce 30 PFNs: 26 in the header, then a body of 5. */
	struct vmbus_msg_gpadl_header h = {{VMBUS_MSG_GPADL_HEADER, 0}, 1, 9, 8 + 30 * 8, 1};
	struct vmbus_gpa_range r = {30 * 4096, 0};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + 20, &r, 8);
	for (int i = 0; i < 26; i++) {
		uint64_t pfn = base + (uint64_t)i;
		memcpy(buf + 28 + i * 8, &pfn, 8);
	}
	vf_send(f, 1, buf, 28 + 26 * 8);
	expect_nothing_posted(f);
	struct vmbus_msg_gpadl_body b = {{VMBUS_MSG_GPADL_BODY, 0}, 0, 9};
	memcpy(buf, &b, sizeof(b));
	vf_send(f, 1, buf, 16 + 5 * 8);
	struct vmbus_msg_gpadl_created c;
	memcpy(&c, vf_take(f, VMBUS_MSG_GPADL_CREATED, 20)->data, sizeof(c));
	assert_int_equal(c.gpadl, 9);
	assert_int_not_equal(c.creation_status, 0);
	assert_int_equal(vf_stats(f).bad_messages, 1);
	/* The GPADL is forgotten: a further body is for an unknown GPADL. */
	vf_send(f, 1, buf, 16 + 8);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 2);
	assert_int_equal(vf_stats(f).gpadls, 0);
	/* A body with a partial PFN fails the GPADL too. */
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + 20, &r, 8);
	vf_send(f, 1, buf, 28 + 26 * 8);
	memcpy(buf, &b, sizeof(b));
	vf_send(f, 1, buf, 16 + 12);
	memcpy(&c, vf_take(f, VMBUS_MSG_GPADL_CREATED, 20)->data, sizeof(c));
	assert_int_not_equal(c.creation_status, 0);
	vf_free(f);
}

static void gpadl_body_for_unknown_gpadl(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	uint64_t pfn = vf_alloc(f, 1);
	uint8_t buf[24];
	struct vmbus_msg_gpadl_body b = {{VMBUS_MSG_GPADL_BODY, 0}, 0, 0xE1E10};
	memcpy(buf, &b, sizeof(b));
	memcpy(buf + 16, &pfn, 8);
	vf_send(f, 1, buf, sizeof(buf));
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 1);
	/* And for a GPADL that is complete already. */
	assert_int_equal(vf_gpadl(f, 1, 0xE1E10, &pfn, 1), OK);
	vf_send(f, 1, buf, sizeof(buf));
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 2);
	assert_int_equal(vf_stats(f).gpadls, 1);
	vf_free(f);
}

/* Sends a GPADL_HEADER made of raw words after the fixed part. */
static uint16_t raw_header(struct vfix *f, uint32_t relid, uint32_t handle, uint16_t buflen,
			   uint16_t count, const uint64_t *words, uint32_t nwords, uint32_t extra)
{
	uint8_t buf[240] = {0};
	struct vmbus_msg_gpadl_header h = {{VMBUS_MSG_GPADL_HEADER, 0}, relid, handle, buflen,
					   count};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + 20, words, nwords * 8);
	return vf_send(f, 1, buf, 20 + nwords * 8 + extra);
}

static void gpadl_malformed_headers_ignored(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	uint64_t pfn = vf_alloc(f, 4);
	uint64_t one[2] = {4096, pfn};               /* {count 4096, offset 0}, pfn */
	uint64_t two_pages[2] = {4096 | (1ull << 32), pfn}; /* offset 1 spans 2 pages */
	uint64_t zero_count[2] = {0, pfn};
	uint64_t big_offset[2] = {16 | (4096ull << 32), pfn};
	uint32_t bad = 0;

	raw_header(f, 99, 1, 16, 1, one, 2, 0); /* unknown relid */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	raw_header(f, 1, 1, 16, 0, one, 2, 0); /* no ranges */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	raw_header(f, 1, 1, 12, 1, one, 2, 0); /* buflen not whole words */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	raw_header(f, 1, 1, 8, 1, one, 1, 0); /* buflen without room for a PFN */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	raw_header(f, 1, 1, 16, 1, two_pages, 2, 0); /* 2 pages, buflen for 1 */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	raw_header(f, 1, 1, 24, 1, one, 2, 0); /* 1 page, buflen for 2 */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	raw_header(f, 1, 1, 16, 1, zero_count, 2, 0);
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	raw_header(f, 1, 1, 16, 1, big_offset, 2, 0);
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	raw_header(f, 1, 1, 16, 1, one, 2, 4); /* half a word more */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	raw_header(f, 1, 1, 16, 1, one, 2, 8); /* more data than buflen */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	raw_header(f, 1, 1, 16, 1, one, 0, 0); /* no range data at all */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	raw_header(f, 1, 1, 24, 2, one, 2, 0); /* two ranges, no room for both */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).gpadls, 0);

	/* Two well-formed ranges in one GPADL are fine. */
	uint64_t ranges[5] = {4096, pfn, 4096 | (1ull << 32), pfn + 1, pfn + 2};
	raw_header(f, 1, 1, 40, 2, ranges, 5, 0);
	struct vmbus_msg_gpadl_created c;
	memcpy(&c, vf_take(f, VMBUS_MSG_GPADL_CREATED, 20)->data, sizeof(c));
	assert_int_equal(c.creation_status, 0);
	assert_int_equal(vf_stats(f).gpadl_bytes, 3 * 4096);
	vf_free(f);
}

static void gpadl_teardown_idle_and_bad(void **state)
{
	(void)state;
	struct probe p1, p2;
	struct vfix *f = vf_new(NULL);
	probe_add(f, &p1, 1, false);
	probe_add(f, &p2, 2, false);
	vf_connect(f);
	struct vmbus_msg_offer_channel o[2];
	vf_request_offers(f, o, 2);
	uint64_t pfn = vf_alloc(f, 1);
	assert_int_equal(vf_gpadl(f, 1, 5, &pfn, 1), OK);
	vf_gpadl_teardown(f, 2, 5, false); /* another channel's GPADL */
	vf_gpadl_teardown(f, 1, 6, false); /* unknown */
	assert_int_equal(vf_stats(f).bad_messages, 2);
	assert_int_equal(vf_stats(f).gpadls, 1);
	vf_gpadl_teardown(f, 1, 5, true);
	assert_int_equal(vf_stats(f).gpadls, 0);
	vf_gpadl_teardown(f, 1, 5, false); /* twice */
	assert_int_equal(vf_stats(f).bad_messages, 3);
	/* An incomplete GPADL cannot be torn down. */
	uint64_t w[2] = {2 * 4096, pfn};
	raw_header(f, 1, 8, 24, 1, w, 2, 0);
	vf_gpadl_teardown(f, 1, 8, false);
	assert_int_equal(vf_stats(f).bad_messages, 4);
	vf_free(f);
}

static void gpadl_teardown_in_use_deferred(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 0x1000, 3, 5, false);
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	/* Out of order: teardown while the rings are in use. */
	vf_gpadl_teardown(f, 1, 0x1000, false);
	assert_int_equal(vf_stats(f).gpadls, 1);
	close_channel(f, 1);
	struct vmbus_msg_gpadl_torndown d;
	memcpy(&d, vf_take(f, VMBUS_MSG_GPADL_TORNDOWN, 12)->data, sizeof(d));
	assert_int_equal(d.gpadl, 0x1000);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).gpadls, 0);
	assert_int_equal(vf_stats(f).bad_messages, 0);
	assert_int_equal(p.closes, 1);
	vf_chan_free(&c);
	vf_free(f);
}

/* ------------------------------------------------------------------ */
/* Opening and closing                                                 */
/* ------------------------------------------------------------------ */

static void open_close_reopen(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	for (int round = 0; round < 3; round++) {
		struct vf_chan c;
		vf_chan_prepare(f, &c, 1, 0xE1E10 + (uint32_t)round, 4, 6, round == 1);
		assert_false(vf_conn_active(f, CONN(1)));
		assert_int_equal(vf_chan_open(f, &c, (uint32_t)round), OK);
		assert_true(vf_conn_active(f, CONN(1)));
		assert_int_equal(p.opens, round + 1);
		assert_int_equal(p.version, VMBUS_VERSION_WIN10_V5_3);
		struct vmbus_server_channel_info info;
		assert_true(vf_channel(f, 1, &info));
		assert_int_equal(info.state, VMBUS_CHANNEL_OPEN);
		assert_int_equal(info.target_vp, round);
		/* The device sees the guest's rings: what the guest writes
		 * the device reads, and the other way round. */
		struct vmbus_channel *ch = p.last;
		assert_int_equal(vmbus_channel_relid(ch), 1);
		assert_int_equal(vmbus_channel_target_vp(ch), round);
		assert_int_equal(vmbus_channel_subchannel_index(ch), 0);
		assert_int_equal(vmbus_channel_in(ch)->mem.size, 3 * 4096);
		assert_int_equal(vmbus_channel_out(ch)->mem.size, 5 * 4096);
		uint32_t word = 0xabcd0000u + (uint32_t)round;
		assert_int_equal(vf_chan_send(f, &c, 1, &word, 4, false), 0);
		assert_int_equal(p.notifies, round + 1); /* the ring was empty: signalled */
		uint8_t buf[64];
		struct vmbus_packet pkt;
		assert_int_equal(vmbus_ring_recv(vmbus_channel_in(ch), buf, sizeof(buf), &pkt), 0);
		assert_int_equal(pkt.data_len, 8);
		assert_memory_equal(pkt.data, &word, 4);
		assert_int_equal(
			vmbus_ring_put_completion(vmbus_channel_out(ch), 77, &word, 4, NULL), 0);
		assert_true(vmbus_ring_publish(vmbus_channel_out(ch)));
		assert_int_equal(vmbus_ring_recv(&c.r, buf, sizeof(buf), &pkt), 0);
		assert_int_equal(pkt.trans_id, 77);

		vf_chan_close(f, &c);
		assert_int_equal(p.closes, round + 1);
		assert_false(vf_conn_active(f, CONN(1)));
		assert_true(vf_channel(f, 1, &info));
		assert_int_equal(info.state, VMBUS_CHANNEL_OFFERED);
		vf_chan_free(&c);
	}
	assert_int_equal(f->conn_adds, 3);
	assert_int_equal(f->conn_removes, 3);
	assert_int_equal(vf_stats(f).bad_messages, 0);
	assert_int_equal(vf_stats(f).gpadls, 0);
	vf_free(f);
}

static void open_passes_user_data(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 1, 2, 2, false);
	struct vmbus_msg_open_channel m = {
		.header = {VMBUS_MSG_OPENCHANNEL, 0},
		.child_relid = 1,
		.open_id = 0x55,
		.ring_gpadl = 1,
		.target_vp = 3,
		.downstream_ring_page_offset = 2,
	};
	for (int i = 0; i < VMBUS_OFFER_USER_DEFINED_BYTES; i++)
		m.user_data[i] = (uint8_t)(0xF0 ^ i);
	vf_send(f, 1, &m, sizeof(m));
	struct vmbus_msg_open_result r;
	memcpy(&r, vf_take(f, VMBUS_MSG_OPENCHANNEL_RESULT, 20)->data, sizeof(r));
	assert_int_equal(r.open_id, 0x55);
	assert_int_equal(r.status, 0);
	assert_memory_equal(p.user_data, m.user_data, sizeof(m.user_data));
	vf_chan_free(&c);
	vf_free(f);
}

static uint32_t open_raw(struct vfix *f, uint32_t relid, uint32_t gpadl, uint32_t target_vp,
			 uint32_t offset, bool expect_answer)
{
	struct vmbus_msg_open_channel m = {
		.header = {VMBUS_MSG_OPENCHANNEL, 0},
		.child_relid = relid,
		.open_id = 0xAA,
		.ring_gpadl = gpadl,
		.target_vp = target_vp,
		.downstream_ring_page_offset = offset,
	};
	assert_int_equal(vf_send(f, 1, &m, sizeof(m)), 0);
	if (!expect_answer) {
		expect_nothing_posted(f);
		return 0;
	}
	struct vmbus_msg_open_result r;
	memcpy(&r, vf_take(f, VMBUS_MSG_OPENCHANNEL_RESULT, 20)->data, sizeof(r));
	assert_int_equal(r.child_relid, relid);
	assert_int_equal(r.open_id, 0xAA);
	return r.status;
}

static void open_bad_arguments_refused(void **state)
{
	(void)state;
	struct probe p1, p2;
	struct vfix *f = vf_new(NULL);
	probe_add(f, &p1, 1, false);
	probe_add(f, &p2, 2, false);
	vf_connect(f);
	struct vmbus_msg_offer_channel o[2];
	vf_request_offers(f, o, 2);
	uint64_t base = vf_alloc(f, 8);
	uint64_t pfns[8];
	for (int i = 0; i < 8; i++)
		pfns[i] = base + i;
	assert_int_equal(vf_gpadl(f, 1, 10, pfns, 8), OK); /* relid 1's */
	assert_int_equal(vf_gpadl(f, 2, 20, pfns, 8), OK); /* relid 2's */
	uint64_t anon[4];
	for (int i = 0; i < 4; i++)
		anon[i] = (VF_ANON_GPA >> 12) + (uint64_t)i;
	assert_int_equal(vf_gpadl(f, 1, 11, anon, 4), OK); /* RAM, not file-backed */
	uint64_t w[2] = {2 * 4096, base};
	raw_header(f, 1, 12, 24, 1, w, 2, 0); /* incomplete */
	uint64_t bad = 0;

	open_raw(f, 77, 10, 0, 4, false); /* unknown relid: nobody to answer */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	assert_int_not_equal(open_raw(f, 1, 99, 0, 4, true), OK); /* unknown GPADL */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	assert_int_not_equal(open_raw(f, 1, 20, 0, 4, true), OK); /* another relid's */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	assert_int_not_equal(open_raw(f, 1, 12, 0, 1, true), OK); /* incomplete */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	assert_int_not_equal(open_raw(f, 1, 10, 0, 0, true), OK); /* offset 0 */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	assert_int_not_equal(open_raw(f, 1, 10, 0, 1, true), OK); /* 1-page send ring */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	assert_int_not_equal(open_raw(f, 1, 10, 0, 7, true), OK); /* 1-page recv ring */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	assert_int_not_equal(open_raw(f, 1, 10, 0, 8, true), OK); /* no recv ring */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	assert_int_not_equal(open_raw(f, 1, 10, 0, 0xFFFFFFFF, true), OK);
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	assert_int_not_equal(open_raw(f, 1, 10, VF_VPS, 4, true), OK); /* bad VP */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	/* Not file-backed: cannot be mapped, refused (not the guest's fault
	 * per se, so not counted). */
	assert_int_not_equal(open_raw(f, 1, 11, 0, 2, true), OK);
	assert_int_equal(vf_stats(f).bad_messages, bad);
	/* The glue refusing the connection. */
	f->fail_connection_add = -EEXIST;
	assert_int_not_equal(open_raw(f, 1, 10, 0, 4, true), OK);
	f->fail_connection_add = 0;
	/* Rings whose indices the guest left garbage: refused. */
	uint32_t junk = 12345;
	memcpy(vf_page(f, base), &junk, 4);
	assert_int_not_equal(open_raw(f, 1, 10, 0, 4, true), OK);
	memset(vf_page(f, base), 0, 4096);
	assert_int_equal(p1.opens, 0);
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_OPEN), 0);
	assert_int_equal(f->n_conns, 0);

	assert_int_equal(open_raw(f, 1, 10, 0, 4, true), OK);
	assert_int_not_equal(open_raw(f, 1, 10, 0, 4, true), OK); /* already open */
	assert_int_equal(vf_stats(f).bad_messages, ++bad);
	/* The ring GPADL of an open channel is busy for the other relid too. */
	assert_int_equal(p1.opens, 1);
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_OPEN), 1);
	vf_free(f);
}

static void open_refused_by_device(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 1, 2, 2, false);
	p.open_result = -ENODEV;
	assert_int_not_equal(vf_chan_open(f, &c, 0), OK);
	assert_int_equal(p.opens, 1);
	assert_int_equal(p.closes, 0);
	assert_false(vf_conn_active(f, CONN(1)));
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_OFFERED), 1);
	assert_int_equal(vf_stats(f).bad_messages, 0);
	/* The GPADL is free again: the guest may retry. */
	p.open_result = 0;
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	vf_chan_close(f, &c);
	vf_chan_free(&c);
	vf_free(f);
}

static void close_not_open_is_bad(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	close_channel(f, 1);
	close_channel(f, 5);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 2);
	assert_int_equal(p.closes, 0);
	vf_free(f);
}

static void channel_reference_outlives_close(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 1, 2, 2, false);
	p.take_ref = true;
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	struct vmbus_channel *ch = p.held;
	vmbus_channel_set_data(ch, &p);
	vf_chan_close(f, &c);
	/* Closed, but referenced: the rings are still mapped and usable. */
	struct vmbus_ring_writer *w = vmbus_channel_out(ch);
	assert_int_equal(vmbus_ring_put_completion(w, 9, "x", 1, NULL), 0);
	vmbus_ring_publish(w);
	assert_ptr_equal(vmbus_channel_data(ch), &p);
	assert_ptr_equal(vmbus_channel_device(ch), p.dev);
	/* Signalling a closed channel raises nothing. */
	uint32_t before = f->n_sigs;
	vmbus_channel_signal(ch);
	assert_int_equal(f->n_sigs, before);
	/* Even after the device is gone. */
	vmbus_server_remove_device(f->s, p.dev);
	assert_int_equal(vmbus_channel_relid(ch), 1);
	vmbus_channel_put(ch); /* the last one: unmapped */
	vf_chan_free(&c);
	vf_free(f);
}

/* ------------------------------------------------------------------ */
/* Sub-channels, retargeting, rescinding                               */
/* ------------------------------------------------------------------ */

/* A connected guest with echo device 1 offered (its offer in *o) and its
 * primary open as relid 1 (GPADL 1) on VP 0. */
static struct vfix *echo_open(struct vmbus_echo **e, struct vmbus_msg_offer_channel o[1],
			      struct vf_chan *c)
{
	struct vfix *f = vf_new(NULL);
	assert_int_equal(vmbus_echo_add(f->s, 1, e), 0);
	vf_connect(f);
	assert_int_equal(vf_request_offers(f, o, 1), 1);
	vf_chan_prepare(f, c, 1, 1, 4, 4, false);
	assert_int_equal(vf_chan_open(f, c, 0), OK);
	return f;
}

/* Sub-channels live only while their primary is open, as on Hyper-V
 * (what Linux's bus suspend waits for): the primary's close rescinds them
 * and not itself; opened again, it gets new ones numbered from 1. */
static void primary_close_rescinds_subchannels(void **state)
{
	(void)state;
	struct vmbus_echo *e;
	struct vmbus_msg_offer_channel o[1];
	struct vf_chan c, sc;
	struct vfix *f = echo_open(&e, o, &c);
	uint32_t req[2] = {VMBUS_ECHO_SUBCHANNELS, 2};
	assert_int_equal(vf_chan_send(f, &c, 42, req, sizeof(req), true), 0);
	assert_int_equal(take_offer(f).child_relid, 2);
	assert_int_equal(take_offer(f).child_relid, 3);
	vf_chan_prepare(f, &sc, 3, 2, 2, 2, true);
	assert_int_equal(vf_chan_open(f, &sc, 1), OK);

	/* Linux closes the sub-channels first, then the primary. */
	vf_chan_close(f, &sc);
	expect_nothing_posted(f);
	vf_chan_close(f, &c);
	assert_int_equal(vf_take_rescind(f), 3);
	assert_int_equal(vf_take_rescind(f), 2);
	expect_nothing_posted(f); /* the primary stays offered */
	struct vmbus_server_channel_info info;
	assert_true(vf_channel(f, 1, &info));
	assert_int_equal(info.state, VMBUS_CHANNEL_OFFERED);
	vf_relid_released(f, 2);
	vf_relid_released(f, 3);

	/* Open again (the close tore its GPADL down: a new one): new
	 * sub-channels, indexes from 1, relids reused. */
	vf_chan_free(&c);
	vf_chan_prepare(f, &c, 1, 3, 4, 4, false);
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	assert_int_equal(vf_chan_send(f, &c, 43, req, sizeof(req), true), 0);
	struct vmbus_msg_offer_channel s1 = take_offer(f), s2 = take_offer(f);
	assert_int_equal(s1.offer.sub_channel_index, 1);
	assert_int_equal(s2.offer.sub_channel_index, 2);
	assert_int_equal(s1.child_relid, 2);
	assert_int_equal(s2.child_relid, 3);
	vf_chan_free(&c);
	vf_chan_free(&sc);
	vmbus_echo_remove(f->s, e);
	vf_free(f);
}

static void subchannels_through_echo(void **state)
{
	(void)state;
	struct vmbus_echo *e;
	struct vmbus_msg_offer_channel o[1];
	struct vf_chan c;
	struct vfix *f = echo_open(&e, o, &c);

	uint32_t req[2] = {VMBUS_ECHO_SUBCHANNELS, 2};
	assert_int_equal(vf_chan_send(f, &c, 42, req, sizeof(req), true), 0);
	/* Offered at once, new relids, the primary's GUIDs. */
	struct vmbus_msg_offer_channel s1 = take_offer(f), s2 = take_offer(f);
	expect_nothing_posted(f);
	assert_int_equal(s1.offer.sub_channel_index, 1);
	assert_int_equal(s2.offer.sub_channel_index, 2);
	assert_int_equal(s1.child_relid, 2);
	assert_int_equal(s2.child_relid, 3);
	assert_true(hv_guid_equal(&s1.offer.if_instance, &o[0].offer.if_instance));
	assert_true(hv_guid_equal(&s2.offer.if_type, &o[0].offer.if_type));
	/* The request is completed like any other packet. */
	uint8_t buf[64];
	struct vmbus_packet pkt;
	assert_int_equal(vmbus_ring_recv(&c.r, buf, sizeof(buf), &pkt), 0);
	assert_int_equal(pkt.trans_id, 42);
	assert_memory_equal(pkt.data, req, sizeof(req));
	vmbus_ring_commit(&c.r);

	/* A sub-channel echoes on its own. */
	struct vf_chan sc;
	vf_chan_prepare(f, &sc, 3, 2, 2, 2, true);
	assert_int_equal(vf_chan_open(f, &sc, 1), OK);
	vf_echo_roundtrip(f, &sc, 5, "through sub-channel 2");
	assert_int_equal(f->sigs[f->n_sigs - 1].vp, 1);
	vf_echo_roundtrip(f, &c, 6, "and the primary");
	assert_int_equal(vmbus_echo_packets(e), 3);
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_OPEN), 2);

	/* Sub-channels survive a reconnect, sorted after their primary. */
	vf_unload(f);
	vf_connect(f);
	struct vmbus_msg_offer_channel again[3];
	assert_int_equal(vf_request_offers(f, again, 3), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(again[i].child_relid, i + 1);
		assert_int_equal(again[i].offer.sub_channel_index, i);
	}
	vf_chan_free(&c);
	vf_chan_free(&sc);
	vmbus_echo_remove(f->s, e);
	assert_int_equal(vf_stats(f).channels, 3); /* rescinded, relids held */
	for (int i = 3; i >= 1; i--)
		assert_int_equal(vf_take_rescind(f), i);
	for (int i = 1; i <= 3; i++)
		vf_relid_released(f, (uint32_t)i);
	assert_int_equal(vf_stats(f).channels, 0);
	vf_free(f);
}

static void retarget(void **state)
{
	(void)state;
	const uint32_t versions[] = {VMBUS_VERSION_WIN10_V5_3, VMBUS_VERSION_WIN10_V5_2,
				     VMBUS_VERSION_WIN10_V4_1, VMBUS_VERSION_WIN10};
	for (int v = 0; v < 4; v++) {
		struct vfix *f = vf_new(NULL);
		struct vmbus_echo *e;
		assert_int_equal(vmbus_echo_add(f->s, 1, &e), 0);
		assert_true(vf_negotiate(f, versions[v]));
		struct vmbus_msg_offer_channel o[1];
		vf_request_offers(f, o, 1);
		bool acked = versions[v] >= VMBUS_VERSION_WIN10_V5_3;
		bool supported = versions[v] >= VMBUS_VERSION_WIN10_V4_1;
		struct vmbus_msg_modify_channel m = {{VMBUS_MSG_MODIFYCHANNEL, 0}, 1, 2};
		struct vmbus_msg_modify_channel_response r;

		/* Not open yet. */
		vf_send(f, 1, &m, sizeof(m));
		if (acked) {
			memcpy(&r, vf_take(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, 16)->data,
			       sizeof(r));
			assert_int_not_equal(r.status, 0);
		}
		expect_nothing_posted(f);
		assert_int_equal(vf_stats(f).bad_messages, 1);

		struct vf_chan c;
		vf_chan_prepare(f, &c, 1, 1, 2, 2, false);
		assert_int_equal(vf_chan_open(f, &c, 0), OK);
		vf_send(f, 1, &m, sizeof(m));
		if (acked) {
			memcpy(&r, vf_take(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, 16)->data,
			       sizeof(r));
			assert_int_equal(r.child_relid, 1);
			assert_int_equal(r.status, 0);
		}
		expect_nothing_posted(f);
		struct vmbus_server_channel_info info;
		vf_channel(f, 1, &info);
		assert_int_equal(info.target_vp, supported ? 2 : 0);
		vf_echo_roundtrip(f, &c, 1, "retargeted");
		assert_int_equal(f->sigs[f->n_sigs - 1].vp, supported ? 2 : 0);

		m.target_vp = VF_VPS; /* no such VP */
		vf_send(f, 1, &m, sizeof(m));
		if (acked) {
			memcpy(&r, vf_take(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, 16)->data,
			       sizeof(r));
			assert_int_not_equal(r.status, 0);
		}
		expect_nothing_posted(f);
		vf_channel(f, 1, &info);
		assert_int_equal(info.target_vp, supported ? 2 : 0);
		assert_int_equal(vf_stats(f).bad_messages, supported ? 2 : 3);
		vf_chan_free(&c);
		vmbus_echo_remove(f->s, e);
		vf_free(f);
	}
}

static void rescind_offered_then_released(void **state)
{
	(void)state;
	struct probe p1, p2;
	struct vfix *f = vf_new(NULL);
	probe_add(f, &p1, 1, false);
	probe_add(f, &p2, 2, false);
	vf_connect(f);
	struct vmbus_msg_offer_channel o[2];
	vf_request_offers(f, o, 2);
	uint64_t pfn = vf_alloc(f, 1);
	assert_int_equal(vf_gpadl(f, 1, 3, &pfn, 1), OK);
	vmbus_server_remove_device(f->s, p1.dev);
	assert_int_equal(vf_take_rescind(f), 1);
	expect_nothing_posted(f);
	assert_int_equal(p1.closes, 0);
	/* A GPADL of the rescinded relid may still be torn down... */
	vf_gpadl_teardown(f, 1, 3, true);
	/* ...a close or open crossing the rescind is ignored, not bad. */
	close_channel(f, 1);
	open_raw(f, 1, 3, 0, 2, false);
	assert_int_equal(vf_stats(f).bad_messages, 0);
	/* The relid stays taken until released. */
	struct probe p3;
	probe_add(f, &p3, 3, false);
	assert_int_equal(take_offer(f).child_relid, 3);
	assert_int_equal(vf_gpadl(f, 1, 4, &pfn, 1), OK); /* late header, still taken */
	vf_relid_released(f, 1);
	assert_int_equal(vf_stats(f).gpadls, 0); /* its GPADLs went with it */
	assert_false(vf_channel(f, 1, NULL));
	vf_relid_released(f, 1); /* twice: unknown now */
	assert_int_equal(vf_stats(f).bad_messages, 1);
	struct probe p4;
	probe_add(f, &p4, 4, false);
	assert_int_equal(take_offer(f).child_relid, 1);
	vf_free(f);
}

static void rescind_open_channel(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 1, 2, 2, false);
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	vmbus_server_remove_device(f->s, p.dev);
	assert_int_equal(p.closes, 1);
	assert_false(vf_conn_active(f, CONN(1)));
	assert_int_equal(vf_take_rescind(f), 1);
	expect_nothing_posted(f);
	struct vmbus_server_channel_info info;
	assert_true(vf_channel(f, 1, &info));
	assert_int_equal(info.state, VMBUS_CHANNEL_RESCINDED);
	/* Linux: the driver's remove closes the channel (CLOSECHANNEL is
	 * sent even after a rescind), skips the teardown, releases. */
	close_channel(f, 1);
	vf_signal_relid(f, 1); /* a late signal goes nowhere */
	vf_relid_released(f, 1);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 0);
	assert_int_equal(vf_stats(f).gpadls, 0);
	assert_int_equal(vf_stats(f).channels, 0);
	vf_chan_free(&c);
	vf_free(f);
}

static void rescind_when_disconnected_forgets(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct probe p;
	probe_add(f, &p, 1, false);
	vmbus_server_remove_device(f->s, p.dev);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).channels, 0);
	vf_free(f);
}

static void rescind_on_close_reoffers(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct probe p, q;
	probe_add(f, &p, 1, true);
	probe_add(f, &q, 2, false);
	vf_connect(f);
	struct vmbus_msg_offer_channel o[2];
	vf_request_offers(f, o, 2);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 1, 2, 2, false);
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	close_channel(f, 1);
	assert_int_equal(p.closes, 1);
	/* Rescinded, and offered again only once the guest has let go of
	 * the old channel: Linux would take an offer with the instance GUID
	 * of a channel it still has for a resume (its suspend then fails). */
	assert_int_equal(vf_take_rescind(f), 1);
	expect_nothing_posted(f);
	vf_gpadl_teardown(f, 1, 1, true); /* Linux tears down after close */
	expect_nothing_posted(f);
	vf_relid_released(f, 1);
	struct vmbus_msg_offer_channel again = take_offer(f);
	expect_nothing_posted(f);
	assert_int_equal(again.child_relid, 1); /* the lowest free */
	assert_true(hv_guid_equal(&again.offer.if_instance, &o[0].offer.if_instance));
	assert_int_equal(again.offer.sub_channel_index, 0);
	assert_int_equal(vf_stats(f).bad_messages, 0);
	/* The new offer works like the old one. */
	struct vf_chan c2;
	vf_chan_prepare(f, &c2, 1, 2, 2, 2, false);
	assert_int_equal(vf_chan_open(f, &c2, 0), OK);
	assert_int_equal(p.opens, 2);
	/* Closing the other device's channel does not re-offer. */
	struct vf_chan c3;
	vf_chan_prepare(f, &c3, 2, 3, 2, 2, false);
	assert_int_equal(vf_chan_open(f, &c3, 0), OK);
	vf_chan_close(f, &c3);
	expect_nothing_posted(f);
	vf_chan_free(&c);
	vf_chan_free(&c2);
	vf_chan_free(&c3);
	vf_free(f);
}

/* ------------------------------------------------------------------ */
/* Unload                                                              */
/* ------------------------------------------------------------------ */

static void unload_resets_everything(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct probe p1, p2, p3;
	probe_add(f, &p1, 1, false);
	probe_add(f, &p2, 2, false);
	probe_add(f, &p3, 3, false);
	vf_connect(f);
	struct vmbus_msg_offer_channel o[3];
	vf_request_offers(f, o, 3);
	struct vf_chan c1, c2;
	vf_chan_prepare(f, &c1, 1, 1, 2, 2, false);
	vf_chan_prepare(f, &c2, 2, 2, 2, 2, false);
	assert_int_equal(vf_chan_open(f, &c1, 0), OK);
	assert_int_equal(vf_chan_open(f, &c2, 0), OK);
	vf_gpadl_teardown(f, 2, 2, false); /* deferred: owed at close... */
	uint64_t pfn = vf_alloc(f, 1);
	assert_int_equal(vf_gpadl(f, 3, 9, &pfn, 1), OK);
	uint64_t w[2] = {2 * 4096, pfn};
	raw_header(f, 3, 10, 24, 1, w, 2, 0); /* incomplete */
	vmbus_server_remove_device(f->s, p3.dev);
	assert_int_equal(vf_take_rescind(f), 3);

	vf_unload(f); /* ...but not after UNLOAD: nothing but the response */
	assert_int_equal(p1.closes, 1);
	assert_int_equal(p2.closes, 1);
	struct vmbus_server_stats st = vf_stats(f);
	assert_int_equal(st.connection, VMBUS_SERVER_DISCONNECTED);
	assert_int_equal(st.unloads, 1);
	assert_int_equal(st.gpadls, 0);
	assert_int_equal(st.gpadl_bytes, 0);
	assert_int_equal(st.channels, 2); /* the rescinded one forgotten */
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_UNOFFERED), 2);
	assert_int_equal(f->n_conns, 0);
	/* Disconnected: everything but contact and unload is refused. */
	struct vmbus_msg_header h = {VMBUS_MSG_REQUESTOFFERS, 0};
	vf_send(f, 1, &h, sizeof(h));
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, st.bad_messages + 1);
	/* Unload again (Linux does after a failed contact): answered. */
	vf_unload(f);

	/* Reconnect: same relids, everything works again. */
	assert_true(vf_negotiate(f, VMBUS_VERSION_WIN10_V4_1));
	assert_int_equal(vf_request_offers(f, o, 3), 2);
	assert_int_equal(o[0].child_relid, 1);
	assert_int_equal(o[1].child_relid, 2);
	vf_chan_free(&c1);
	vf_chan_prepare(f, &c1, 1, 1, 2, 2, true); /* handle 1 is free again */
	assert_int_equal(vf_chan_open(f, &c1, 0), OK);
	assert_int_equal(p1.version, VMBUS_VERSION_WIN10_V4_1);
	vf_chan_close(f, &c1);
	vf_chan_free(&c1);
	vf_chan_free(&c2);
	vf_free(f);
}

/* ------------------------------------------------------------------ */
/* The echo device through real rings                                  */
/* ------------------------------------------------------------------ */

static void fill(uint8_t *p, uint32_t len, uint64_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7);
}

/*
 * The guest as Linux runs a channel: it writes requests and signals when
 * the ring engine says so; it reads completions only after the host
 * interrupted it (or its unmask found more); a full ring makes it arm
 * pending_send_sz and wait for the host's signal. Small rings make both
 * sides fill up again and again. Any lost wakeup stalls the loop.
 */
static void echo_many_packets(uint32_t send_pages, uint32_t recv_pages, uint32_t total,
			      uint32_t max_len)
{
	struct vfix *f = vf_new(NULL);
	struct vmbus_echo *e;
	assert_int_equal(vmbus_echo_add(f->s, 9, &e), 0);
	vf_connect(f);
	struct vmbus_msg_offer_channel o[1];
	vf_request_offers(f, o, 1);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 1, send_pages, recv_pages, true);
	assert_int_equal(vf_chan_open(f, &c, 1), OK);

	uint8_t payload[4096], rx[8192];
	uint32_t sent = 0, got = 0, idle = 0;
	bool waiting_space = false, interrupted = false;
	uint64_t guest_signals = 0, host_signals = 0;
	while (got < total) {
		bool progress = false;
		/* Send while there is room. */
		while (sent < total && !waiting_space) {
			uint32_t len = (sent * 37) % (max_len + 1);
			fill(payload, len, sent);
			struct vmbus_ring_iov iov = {payload, len};
			uint32_t need;
			int err = vmbus_ring_put_inband(&c.w, sent, VMBUS_PKT_FLAG_COMPLETION_REQUESTED,
							&iov, len ? 1 : 0, &need);
			if (err == -EAGAIN) {
				if (vmbus_ring_publish(&c.w)) {
					guest_signals++;
					vf_signal_relid(f, 1);
				}
				if (!vmbus_ring_writer_want_space(&c.w, need))
					waiting_space = true;
				continue;
			}
			assert_int_equal(err, 0);
			if (waiting_space)
				vmbus_ring_writer_space_done(&c.w);
			sent++;
			progress = true;
			if (sent % 3 == 0 && vmbus_ring_publish(&c.w)) {
				guest_signals++;
				vf_signal_relid(f, 1);
			}
		}
		if (vmbus_ring_publish(&c.w)) {
			guest_signals++;
			vf_signal_relid(f, 1);
		}
		/* The host's interrupts. */
		uint32_t irq = vf_take_signals(f, 1);
		host_signals += irq;
		if (irq)
			interrupted = true;
		if (!interrupted) {
			if (!progress && ++idle > 2)
				fail_msg("stalled: sent %u, got %u", sent, got);
			continue;
		}
		/* vmbus_on_event: mask, drain, commit, unmask, recheck. */
		interrupted = false;
		vmbus_ring_reader_mask(&c.r);
		for (;;) {
			struct vmbus_packet pkt;
			while (vmbus_ring_recv(&c.r, rx, sizeof(rx), &pkt) == 0) {
				assert_int_equal(pkt.type, VMBUS_PKT_COMP);
				assert_int_equal(pkt.trans_id, got);
				uint32_t len = (got * 37) % (max_len + 1);
				fill(payload, len, got);
				assert_true(pkt.data_len >= len && pkt.data_len < len + 8);
				assert_memory_equal(pkt.data, payload, len);
				got++;
				progress = true;
				if (got % 5 == 0 && vmbus_ring_commit(&c.r)) {
					guest_signals++;
					vf_signal_relid(f, 1);
				}
			}
			if (vmbus_ring_commit(&c.r)) {
				guest_signals++;
				vf_signal_relid(f, 1);
			}
			if (!vmbus_ring_reader_unmask(&c.r))
				break;
			vmbus_ring_reader_mask(&c.r);
		}
		/* Space we waited for: the host's signal brought us here. */
		waiting_space = false;
		idle = progress ? 0 : idle + 1;
		if (idle > 2)
			fail_msg("stalled: sent %u, got %u", sent, got);
	}
	assert_int_equal(vmbus_echo_packets(e), total);
	struct vmbus_server_channel_info info;
	vf_channel(f, 1, &info);
	assert_int_equal(info.guest_signals, guest_signals);
	assert_int_equal(info.host_signals, host_signals);
	assert_true(host_signals > 0);
	assert_true(host_signals < total); /* batched, not one per packet */
	assert_int_equal(info.spurious_signals, 0);
	assert_int_equal(f->sigs[f->n_sigs - 1].vp, 1);
	vf_chan_close(f, &c);
	vf_chan_free(&c);
	vmbus_echo_remove(f->s, e);
	vf_free(f);
}

static void echo_thousands_small_rings(void **state)
{
	(void)state;
	echo_many_packets(2, 2, 20000, 300); /* one data page each way */
}

static void echo_thousands_large_packets(void **state)
{
	(void)state;
	echo_many_packets(3, 2, 5000, 3000); /* completions need more room */
}

static void echo_packet_without_completion(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct vmbus_echo *e;
	assert_int_equal(vmbus_echo_add(f->s, 1, &e), 0);
	vf_connect(f);
	struct vmbus_msg_offer_channel o[1];
	vf_request_offers(f, o, 1);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 1, 2, 2, false);
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	assert_int_equal(vf_chan_send(f, &c, 1, "quiet", 5, false), 0);
	assert_int_equal(vmbus_echo_packets(e), 1);
	assert_int_equal(vmbus_ring_reader_available(&c.r), 0);
	vf_chan_close(f, &c);
	vf_chan_free(&c);
	/* A packet whose reply can never fit the host-to-guest ring is
	 * consumed without one; the next is answered. */
	vf_chan_prepare(f, &c, 1, 2, 4, 2, false);
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	static uint8_t big[5000];
	assert_int_equal(vf_chan_send(f, &c, 2, big, sizeof(big), true), 0);
	assert_int_equal(vmbus_echo_packets(e), 2);
	assert_int_equal(vmbus_ring_reader_available(&c.r), 0);
	vf_echo_roundtrip(f, &c, 3, "small");
	assert_int_equal(vmbus_echo_packets(e), 3);
	vmbus_echo_remove(f->s, e);
	vf_chan_free(&c);
	vf_free(f);
}

static void echo_corrupt_ring_stops(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct vmbus_echo *e;
	assert_int_equal(vmbus_echo_add(f->s, 1, &e), 0);
	vf_connect(f);
	struct vmbus_msg_offer_channel o[1];
	vf_request_offers(f, o, 1);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 1, 2, 2, false);
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	/* write_index past the ring: the echo gives up on the channel. */
	c.w.mem.hdr->write_index = 0x7FFFFFF8;
	vf_signal_relid(f, 1);
	assert_int_equal(vmbus_echo_packets(e), 0);
	vf_signal_relid(f, 1);
	assert_int_equal(vmbus_echo_packets(e), 0);
	vf_chan_close(f, &c);
	vf_chan_free(&c);
	vmbus_echo_remove(f->s, e);
	vf_free(f);
}

/* ------------------------------------------------------------------ */
/* Interrupt hygiene                                                   */
/* ------------------------------------------------------------------ */

static void spurious_signals_counted_and_throttled(void **state)
{
	(void)state;
	struct vmbus_server_config cfg = {.vp_count = 1, .spurious_signal_limit = 10};
	struct vfix *f = vf_new(&cfg);
	struct probe p;
	probe_add(f, &p, 1, false);
	vf_connect(f);
	struct vmbus_msg_offer_channel o[1];
	vf_request_offers(f, o, 1);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 1, 2, 2, false);
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	f->now = 5 * 1000000000ull;

	/* Up to the limit every signal reaches the device. */
	for (int i = 0; i < 10; i++)
		vf_signal_relid(f, 1);
	assert_int_equal(p.notifies, 10);
	assert_int_equal(vf_stats(f).throttled_signals, 0);
	uint32_t logs = f->n_log;
	/* Past it, within a millisecond of the last notify: held back. */
	for (int i = 0; i < 100; i++)
		vf_signal_relid(f, 1);
	assert_int_equal(p.notifies, 10);
	assert_int_equal(vf_stats(f).throttled_signals, 100);
	assert_int_equal(f->n_log, logs + 1); /* logged once */
	f->now += 1000000; /* 1 ms later: one more gets through */
	for (int i = 0; i < 50; i++)
		vf_signal_relid(f, 1);
	assert_int_equal(p.notifies, 11);
	assert_int_equal(vf_stats(f).throttled_signals, 149);
	/* A signal with work always gets through, throttled or not. */
	uint64_t v = 1;
	struct vmbus_ring_iov iov = {&v, 8};
	assert_int_equal(vmbus_ring_put_inband(&c.w, 1, 0, &iov, 1, NULL), 0);
	vmbus_ring_publish(&c.w);
	vf_signal_relid(f, 1);
	assert_int_equal(p.notifies, 12);
	vf_signal_relid(f, 1); /* still unread: work */
	assert_int_equal(p.notifies, 13);
	/* So does one asking for space: pending_send_sz armed. */
	struct vmbus_ring_reader *in = vmbus_channel_in(p.last);
	uint8_t buf[64];
	struct vmbus_packet pkt;
	assert_int_equal(vmbus_ring_recv(in, buf, sizeof(buf), &pkt), 0);
	vmbus_ring_commit(in);
	vmbus_channel_out(p.last)->mem.hdr->pending_send_sz = 100;
	vf_signal_relid(f, 1);
	assert_int_equal(p.notifies, 14);
	vmbus_channel_out(p.last)->mem.hdr->pending_send_sz = 0;

	struct vmbus_server_channel_info info;
	vf_channel(f, 1, &info);
	assert_int_equal(info.guest_signals, 163);
	assert_int_equal(info.spurious_signals, 160);
	/* A quiet second (under the limit) ends the throttle. */
	f->now += 1000000000ull;
	vf_signal_relid(f, 1);
	f->now += 1000000000ull;
	for (int i = 0; i < 5; i++)
		vf_signal_relid(f, 1);
	assert_int_equal(p.notifies, 20);
	assert_int_equal(vf_stats(f).throttled_signals, 149);
	assert_int_equal(f->n_log, logs + 1);
	vf_chan_free(&c);
	vf_free(f);
}

static void signal_unknown_connection_ignored(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	vf_signal_relid(f, 1); /* offered, not open */
	vf_signal_relid(f, 2047);
	f->locked = true;
	vmbus_server_handle_signal(f->s, 0, 5);
	vmbus_server_handle_signal(f->s, 0, VMBUS_SERVER_CHANNEL_CONNECTION_BASE);
	vmbus_server_handle_signal(f->s, 0, UINT32_MAX);
	f->locked = false;
	assert_int_equal(p.notifies, 0);
	struct vmbus_server_channel_info info;
	vf_channel(f, 1, &info);
	assert_int_equal(info.guest_signals, 0);
	vf_free(f);
}

/* ------------------------------------------------------------------ */
/* A malicious guest                                                   */
/* ------------------------------------------------------------------ */

struct consistency {
	uint32_t relids[2048];
	uint32_t n, open;
};

static void check_cb(void *arg, const struct vmbus_server_channel_info *info)
{
	struct consistency *c = arg;
	c->n++;
	if (info->state == VMBUS_CHANNEL_UNOFFERED) {
		assert_int_equal(info->relid, 0);
		return;
	}
	assert_true(info->relid >= 1 && info->relid <= 2047);
	assert_int_equal(c->relids[info->relid], 0);
	c->relids[info->relid] = 1;
	assert_int_equal(info->connection_id, CONN(info->relid));
	if (info->state == VMBUS_CHANNEL_OPEN)
		c->open++;
}

static void check_consistent(struct vfix *f)
{
	struct consistency c;
	memset(&c, 0, sizeof(c));
	vmbus_server_for_each_channel(f->s, check_cb, &c);
	struct vmbus_server_stats st = vf_stats(f);
	assert_int_equal(c.n, st.channels);
	assert_int_equal(c.open, f->n_conns);
	if (st.connection == VMBUS_SERVER_DISCONNECTED) {
		assert_int_equal(st.gpadls, 0);
		assert_int_equal(c.open, 0);
	}
	assert_false(f->locked);
}

/* Sizes each guest-to-host type needs; 0 for the others. */
static uint32_t needed(uint32_t type)
{
	switch (type) {
	case VMBUS_MSG_REQUESTOFFERS:
	case VMBUS_MSG_UNLOAD:
		return 8;
	case VMBUS_MSG_OPENCHANNEL:
		return sizeof(struct vmbus_msg_open_channel);
	case VMBUS_MSG_CLOSECHANNEL:
	case VMBUS_MSG_RELID_RELEASED:
		return 12;
	case VMBUS_MSG_GPADL_HEADER:
		return 20;
	case VMBUS_MSG_GPADL_BODY:
	case VMBUS_MSG_GPADL_TEARDOWN:
	case VMBUS_MSG_MODIFYCHANNEL:
		return 16;
	case VMBUS_MSG_INITIATE_CONTACT:
	case VMBUS_MSG_TL_CONNECT_REQUEST:
		return 40;
	default:
		return 0;
	}
}

static void malicious_short_messages_and_wrong_types(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 1, 2, 2, false);
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	uint8_t buf[256];
	memset(buf, 0, sizeof(buf));
	uint64_t bad = vf_stats(f).bad_messages;

	for (uint32_t type = 0; type < 40; type++) {
		memcpy(buf, &type, 4);
		uint32_t need = needed(type);
		if (!need) {
			/* Host-to-guest or unknown types: ignored at any size. */
			for (uint32_t len = 0; len <= 240; len += 7) {
				assert_int_equal(vf_send(f, 1, buf, len), 0);
				assert_int_equal(vf_stats(f).bad_messages, ++bad);
			}
			continue;
		}
		/* Every length short of the minimum. */
		for (uint32_t len = 0; len < need; len++) {
			assert_int_equal(vf_send(f, 1, buf, len), 0);
			assert_int_equal(vf_stats(f).bad_messages, ++bad);
			expect_nothing_posted(f);
		}
	}
	/* Every type at the longest size, the rest garbage: answered or
	 * ignored, never more than one answer, the state consistent. */
	uint32_t seed = 1;
	for (uint32_t type = 0; type < 40; type++) {
		if (type == VMBUS_MSG_INITIATE_CONTACT || type == VMBUS_MSG_UNLOAD)
			continue; /* these reset the connection: tested elsewhere */
		for (int i = 4; i < 240; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)(seed >> 16);
		}
		memcpy(buf, &type, 4);
		assert_int_equal(vf_send(f, 1, buf, 240), 0);
		assert_true(vf_pending(f) <= 1);
		f->next_msg = f->n_msgs;
		check_consistent(f);
	}
	/* Longer than any message can be: refused by the post itself. */
	assert_int_equal(vf_send(f, 1, buf, 241), HV_STATUS_INVALID_PARAMETER);
	assert_int_equal(vf_send(f, 1, NULL, 8), HV_STATUS_INVALID_PARAMETER);
	expect_nothing_posted(f);
	check_consistent(f);
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_OPEN), 1);
	vf_chan_free(&c);
	vf_free(f);
}

static void malicious_long_messages_accepted(void **state)
{
	(void)state;
	/* Longer than Linux sends: the tail is ignored (later protocol
	 * versions grow messages), and the message works. */
	struct vfix *f = vf_new(NULL);
	struct probe p;
	probe_add(f, &p, 1, false);
	uint8_t buf[240];
	memset(buf, 0xEE, sizeof(buf));
	struct vmbus_msg_initiate_contact ic = {
		.header = {VMBUS_MSG_INITIATE_CONTACT, 0},
		.version_requested = VMBUS_VERSION_WIN10_V5_3,
		.msg_sint = 2,
	};
	memcpy(buf, &ic, sizeof(ic));
	assert_int_equal(vf_send(f, 4, buf, 240), 0);
	assert_int_equal(vf_take(f, VMBUS_MSG_VERSION_RESPONSE, 16)->data[8], 1);
	struct vmbus_msg_header h = {VMBUS_MSG_REQUESTOFFERS, 0};
	memcpy(buf, &h, sizeof(h));
	vf_send(f, 1, buf, 100);
	take_offer(f);
	vf_take(f, VMBUS_MSG_ALLOFFERS_DELIVERED, 8);
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 1, 2, 2, false);
	struct vmbus_msg_open_channel op = {{VMBUS_MSG_OPENCHANNEL, 0}, 1, 1, 1, 0, 2, {0}};
	memcpy(buf, &op, sizeof(op));
	vf_send(f, 1, buf, 200);
	assert_int_equal(vf_take(f, VMBUS_MSG_OPENCHANNEL_RESULT, 20)->data[16], 0);
	struct vmbus_msg_modify_channel mc = {{VMBUS_MSG_MODIFYCHANNEL, 0}, 1, 3};
	memcpy(buf, &mc, sizeof(mc));
	vf_send(f, 1, buf, 64);
	vf_take(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, 16);
	struct vmbus_msg_close_channel cl = {{VMBUS_MSG_CLOSECHANNEL, 0}, 1};
	memcpy(buf, &cl, sizeof(cl));
	vf_send(f, 1, buf, 99);
	assert_int_equal(p.closes, 1);
	struct vmbus_msg_gpadl_teardown td = {{VMBUS_MSG_GPADL_TEARDOWN, 0}, 1, 1};
	memcpy(buf, &td, sizeof(td));
	vf_send(f, 1, buf, 33);
	vf_take(f, VMBUS_MSG_GPADL_TORNDOWN, 12);
	h.msgtype = VMBUS_MSG_UNLOAD;
	memcpy(buf, &h, sizeof(h));
	vf_send(f, 1, buf, 240);
	vf_take(f, VMBUS_MSG_UNLOAD_RESPONSE, 8);
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 0);
	check_consistent(f);
	vf_chan_free(&c);
	vf_free(f);
}

static void malicious_messages_before_connect(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct probe p;
	probe_add(f, &p, 1, false);
	uint8_t buf[240];
	memset(buf, 0, sizeof(buf));
	uint64_t bad = 0;
	for (uint32_t type = 1; type < VMBUS_MSG_COUNT; type++) {
		if (type == VMBUS_MSG_INITIATE_CONTACT || !needed(type))
			continue;
		uint32_t relid = 1; /* where the message has one */
		memcpy(buf, &type, 4);
		memcpy(buf + 8, &relid, 4);
		assert_int_equal(vf_send(f, 1, buf, needed(type)), 0);
		if (type == VMBUS_MSG_UNLOAD) {
			vf_take(f, VMBUS_MSG_UNLOAD_RESPONSE, 8);
			continue;
		}
		assert_int_equal(vf_stats(f).bad_messages, ++bad);
		expect_nothing_posted(f);
	}
	assert_int_equal(vf_stats(f).connection, VMBUS_SERVER_DISCONNECTED);
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_UNOFFERED), 1);
	check_consistent(f);
	vf_free(f);
}

static void malicious_out_of_order_and_unknown_relids(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct probe p;
	probe_add(f, &p, 1, false);
	vf_connect(f);
	uint64_t pfn = vf_alloc(f, 4);
	/* Before REQUESTOFFERS the guest knows no relid. */
	vf_gpadl_send(f, 1, 1, &pfn, 1);
	open_raw(f, 1, 1, 0, 2, false);
	close_channel(f, 1);
	vf_relid_released(f, 1);
	struct vmbus_msg_modify_channel mc = {{VMBUS_MSG_MODIFYCHANNEL, 0}, 1, 0};
	vf_send(f, 1, &mc, sizeof(mc));
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 5);
	struct vmbus_msg_offer_channel o[1];
	vf_request_offers(f, o, 1);
	/* Relids that do not exist, at the edges. */
	const uint32_t relids[] = {0, 2, 2047, 2048, 0xFFFFFFFF};
	for (size_t i = 0; i < sizeof(relids) / sizeof(relids[0]); i++) {
		uint64_t before = vf_stats(f).bad_messages;
		vf_gpadl_send(f, relids[i], 50, &pfn, 1);
		open_raw(f, relids[i], 1, 0, 2, false);
		close_channel(f, relids[i]);
		vf_relid_released(f, relids[i]);
		mc.child_relid = relids[i];
		vf_send(f, 1, &mc, sizeof(mc));
		vf_gpadl_teardown(f, relids[i], 50, false);
		expect_nothing_posted(f);
		assert_int_equal(vf_stats(f).bad_messages, before + 6);
	}
	/* A relid released while open is refused; the channel stays. */
	struct vf_chan c;
	vf_chan_prepare(f, &c, 1, 2, 2, 2, false);
	assert_int_equal(vf_chan_open(f, &c, 0), OK);
	uint64_t before = vf_stats(f).bad_messages;
	vf_relid_released(f, 1);
	assert_int_equal(vf_stats(f).bad_messages, before + 1);
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_OPEN), 1);
	vf_chan_close(f, &c);
	/* Released while offered: the guest gave it up until it reconnects. */
	vf_relid_released(f, 1);
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_UNOFFERED), 1);
	assert_int_equal(vf_stats(f).bad_messages, before + 1);
	check_consistent(f);
	vf_unload(f);
	vf_connect(f);
	assert_int_equal(vf_request_offers(f, o, 1), 1);
	check_consistent(f);
	vf_chan_free(&c);
	vf_free(f);
}

static void tl_connect_refused(void **state)
{
	(void)state;
	struct vmbus_msg_tl_connect_request req = {
		.header = {VMBUS_MSG_TL_CONNECT_REQUEST, 0},
		.guest_endpoint_id = HV_GUID(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
		.host_service_id = HV_GUID(11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1),
	};
	struct vfix *f = vf_new(NULL);
	assert_true(vf_negotiate(f, VMBUS_VERSION_WIN10));
	vf_send(f, 1, &req, sizeof(req));
	struct vmbus_msg_tl_connect_result r;
	memcpy(&r, vf_take(f, VMBUS_MSG_TL_CONNECT_RESULT, sizeof(r))->data, sizeof(r));
	assert_true(hv_guid_equal(&r.endpoint_id, &req.guest_endpoint_id));
	assert_true(hv_guid_equal(&r.service_id, &req.host_service_id));
	assert_true(r.status < 0); /* an NTSTATUS failure */
	assert_int_equal(vf_stats(f).bad_messages, 0);
	vf_unload(f);
	/* Before 4.0 there is no hv_sock. */
	assert_true(vf_negotiate(f, VMBUS_VERSION_WIN8_1));
	vf_send(f, 1, &req, sizeof(req));
	expect_nothing_posted(f);
	assert_int_equal(vf_stats(f).bad_messages, 1);
	vf_free(f);
}

static void post_failure_logged_once(void **state)
{
	(void)state;
	struct probe p;
	struct vfix *f = setup_one_probe(&p, VMBUS_VERSION_WIN10_V5_3);
	uint32_t logs = f->n_log;
	f->fail_post = -EAGAIN;
	uint64_t pfn = vf_alloc(f, 1);
	vf_gpadl_send(f, 1, 1, &pfn, 1);
	vf_gpadl_send(f, 1, 2, &pfn, 1);
	assert_int_equal(f->n_log, logs + 1);
	f->fail_post = 0;
	assert_int_equal(vf_stats(f).gpadls, 2); /* the state moved on regardless */
	vf_free(f);
}

static void bad_messages_logged_once_per_kind(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	uint8_t buf[8] = {3, 0, 0, 0, 0, 0, 0, 0}; /* REQUESTOFFERS before contact */
	for (int i = 0; i < 10; i++)
		vf_send(f, 1, buf, 8);
	assert_int_equal(f->n_log, 1);
	for (int i = 0; i < 10; i++)
		vf_send(f, 1, buf, 4); /* too short: another kind */
	assert_int_equal(f->n_log, 2);
	assert_int_equal(vf_stats(f).bad_messages, 20);
	vf_free(f);
}

static void server_free_closes_open_channels(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct probe p, q;
	probe_add(f, &p, 1, false);
	probe_add(f, &q, 2, false);
	q.take_ref = true;
	vf_connect(f);
	struct vmbus_msg_offer_channel o[2];
	vf_request_offers(f, o, 2);
	struct vf_chan c1, c2;
	vf_chan_prepare(f, &c1, 1, 1, 2, 2, false);
	vf_chan_prepare(f, &c2, 2, 2, 2, 2, false);
	assert_int_equal(vf_chan_open(f, &c1, 0), OK);
	assert_int_equal(vf_chan_open(f, &c2, 0), OK);
	vmbus_server_free(f->s);
	f->s = NULL;
	assert_int_equal(p.closes, 1);
	assert_int_equal(q.closes, 1);
	assert_int_equal(f->n_conns, 0);
	/* A reference a device kept outlives the server. */
	assert_int_equal(vmbus_channel_subchannel_index(q.held), 0);
	vmbus_channel_put(q.held);
	/* Bad configurations and ops are refused. */
	struct vmbus_server_config bad = {.vp_count = 0};
	assert_null(vmbus_server_new(&bad, &f->mem, NULL, f));
	assert_null(vmbus_server_new(&f->cfg, &f->mem, NULL, f));
	vf_chan_free(&c1);
	vf_chan_free(&c2);
	vf_free(f);
}

static void device_add_refusals(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct probe p;
	probe_add(f, &p, 1, false);
	struct vmbus_device_desc d = {.class_id = PROBE_CLASS, .instance_id = PROBE_INSTANCE(1),
				      .ops = &probe_ops, .dev = &p};
	struct vmbus_device *dev;
	assert_int_equal(vmbus_server_add_device(f->s, &d, &dev), -EEXIST);
	d.ops = NULL;
	assert_int_equal(vmbus_server_add_device(f->s, &d, &dev), -EINVAL);
	/* Sub-channels beyond the per-device cap. */
	f->locked = true;
	assert_int_equal(vmbus_device_add_subchannels_locked(p.dev, 100000), -ENOSPC);
	f->locked = false;
	assert_int_equal(vf_stats(f).channels, 1);
	vf_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(version_every_linux_version),
		cmocka_unit_test(version_capped_linux_walks_down),
		cmocka_unit_test(version_unknown_refused),
		cmocka_unit_test(contact_wrong_connection_refused),
		cmocka_unit_test(contact_bad_vp_and_sint),
		cmocka_unit_test(contact_again_while_connected),
		cmocka_unit_test(offers_sorted_complete_and_delivered_last),
		cmocka_unit_test(offers_hot_add_and_stable_relids),
		cmocka_unit_test(offers_scrambled_relids_change),
		cmocka_unit_test(offers_requested_twice_refused),
		cmocka_unit_test(gpadl_sizes_at_message_limits),
		cmocka_unit_test(gpadl_pfns_outside_ram_fail),
		cmocka_unit_test(gpadl_duplicate_handle_ignored),
		cmocka_unit_test(gpadl_limit_enforced),
		cmocka_unit_test(gpadl_count_capped),
		cmocka_unit_test(gpadl_extra_pfns_fail),
		cmocka_unit_test(gpadl_body_for_unknown_gpadl),
		cmocka_unit_test(gpadl_malformed_headers_ignored),
		cmocka_unit_test(gpadl_teardown_idle_and_bad),
		cmocka_unit_test(gpadl_teardown_in_use_deferred),
		cmocka_unit_test(open_close_reopen),
		cmocka_unit_test(open_passes_user_data),
		cmocka_unit_test(open_bad_arguments_refused),
		cmocka_unit_test(open_refused_by_device),
		cmocka_unit_test(close_not_open_is_bad),
		cmocka_unit_test(channel_reference_outlives_close),
		cmocka_unit_test(subchannels_through_echo),
		cmocka_unit_test(primary_close_rescinds_subchannels),
		cmocka_unit_test(retarget),
		cmocka_unit_test(rescind_offered_then_released),
		cmocka_unit_test(rescind_open_channel),
		cmocka_unit_test(rescind_when_disconnected_forgets),
		cmocka_unit_test(rescind_on_close_reoffers),
		cmocka_unit_test(unload_resets_everything),
		cmocka_unit_test(echo_thousands_small_rings),
		cmocka_unit_test(echo_thousands_large_packets),
		cmocka_unit_test(echo_packet_without_completion),
		cmocka_unit_test(echo_corrupt_ring_stops),
		cmocka_unit_test(spurious_signals_counted_and_throttled),
		cmocka_unit_test(signal_unknown_connection_ignored),
		cmocka_unit_test(malicious_short_messages_and_wrong_types),
		cmocka_unit_test(malicious_long_messages_accepted),
		cmocka_unit_test(malicious_messages_before_connect),
		cmocka_unit_test(malicious_out_of_order_and_unknown_relids),
		cmocka_unit_test(tl_connect_refused),
		cmocka_unit_test(post_failure_logged_once),
		cmocka_unit_test(bad_messages_logged_once_per_kind),
		cmocka_unit_test(server_free_closes_open_channels),
		cmocka_unit_test(device_add_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
