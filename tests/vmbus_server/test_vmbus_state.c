/* SPDX-License-Identifier: MIT */
/*
 * The VMBus server's state record (vmbus_server_save / _load): a server
 * the scripted guest set up (channels open and offered, a sub-channel, a
 * GPADL half sent, another created, a teardown deferred, the KVP
 * anomaly's re-offer owed) is saved, dropped without a word to the guest,
 * and loaded into a new server on the same guest memory, as a restored VM
 * has it; the guest then carries on where it was. Records that are
 * truncated, corrupt, for another machine or with impossible content are
 * refused and leave the new server as it was.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "vmbus_fixture.h"

#define OK 0u
#define CONN(relid) (VMBUS_SERVER_CHANNEL_CONNECTION_BASE + (relid))

/* Where fields of the first offer sit in a record (vmbus/state.c): the
 * 24-byte header, 22 bytes of connection, the offer count. */
#define BODY 24u
#define FIRST_OFFER (BODY + 22u + 4u)
#define FIRST_OFFER_RELID (FIRST_OFFER + 36u)
#define FIRST_OFFER_VP (FIRST_OFFER + 40u)
#define FIRST_OFFER_DEVICE_STATE (FIRST_OFFER + 44u + 12u)
/* The open sub-channel's: after the primary (open, 2 bytes of echo
 * state) and sub-channel 1 (offered). */
#define THIRD_OFFER_DEVICE_STATE (FIRST_OFFER + 58u + 44u + 56u)

/* The pages of GPADL 9, of which only the header's go before the save. */
#define PENDING_PAGES 40u

struct scene {
	struct vfix *f;
	struct vmbus_echo *echo;
	struct vf_chan primary, sub; /* relid 1 on VP 0; relid 3 on VP 2 */
	uint64_t pending_pfns[PENDING_PAGES];
	uint8_t *record;
	size_t len;
};


/*
 * Echo device 1, connected at 5.3: its primary open (relid 1, VP 0) with
 * an extra GPADL 7 on it; two sub-channels offered (relids 2 and 3), the
 * second open on VP 2 with its GPADL 2's teardown asked for (deferred:
 * in use); GPADL 9 on relid 2 half sent. Then saved.
 */
static void scene_build(struct scene *sc)
{
	memset(sc, 0, sizeof(*sc));
	struct vfix *f = sc->f = vf_new(NULL);
	assert_int_equal(vmbus_echo_add(f->s, 1, &sc->echo), 0);
	assert_int_equal(vf_connect(f), VMBUS_VERSION_WIN10_V5_3);
	struct vmbus_msg_offer_channel o[1];
	assert_int_equal(vf_request_offers(f, o, 1), 1);
	vf_chan_prepare(f, &sc->primary, 1, 1, 4, 4, false);
	assert_int_equal(vf_chan_open(f, &sc->primary, 0), OK);
	uint32_t req[2] = {VMBUS_ECHO_SUBCHANNELS, 2};
	vf_echo_roundtrip(f, &sc->primary, 41, "before");
	assert_int_equal(vf_chan_send(f, &sc->primary, 42, req, sizeof(req), true), 0);
	uint8_t buf[64];
	struct vmbus_packet pkt;
	assert_int_equal(vmbus_ring_recv(&sc->primary.r, buf, sizeof(buf), &pkt), 0);
	vmbus_ring_commit(&sc->primary.r);
	for (uint32_t relid = 2; relid <= 3; relid++) {
		struct vmbus_msg_offer_channel off;
		memcpy(&off, vf_take(f, VMBUS_MSG_OFFERCHANNEL, sizeof(off))->data, sizeof(off));
		assert_int_equal(off.child_relid, relid);
	}
	vf_chan_prepare(f, &sc->sub, 3, 2, 2, 2, true);
	assert_int_equal(vf_chan_open(f, &sc->sub, 2), OK);
	vf_echo_roundtrip(f, &sc->sub, 43, "sub before");
	vf_gpadl_teardown(f, 3, 2, false);

	uint64_t extra = vf_alloc(f, 3);
	uint64_t pfns[3] = {extra, extra + 1, extra + 2};
	assert_int_equal(vf_gpadl(f, 1, 7, pfns, 3), OK);
	uint64_t first = vf_alloc(f, PENDING_PAGES);
	for (uint32_t i = 0; i < PENDING_PAGES; i++)
		sc->pending_pfns[i] = first + i;
	vf_gpadl_send_header(f, 2, 9, sc->pending_pfns, PENDING_PAGES);
	assert_int_equal(vf_pending(f), 0); /* no answer before the rest */
	sc->record = vf_save(f, &sc->len);
}

/* The VM is gone; a new server on its memory with its echo device. */
static void scene_new_server(struct scene *sc)
{
	vmbus_echo_remove(sc->f->s, sc->echo);
	vf_replace_server(sc->f);
	assert_int_equal(vmbus_echo_add(sc->f->s, 1, &sc->echo), 0);
}

static void scene_free(struct scene *sc)
{
	vf_chan_free(&sc->primary);
	vf_chan_free(&sc->sub);
	vmbus_echo_remove(sc->f->s, sc->echo);
	vf_free(sc->f);
	free(sc->record);
}

static void expect_as_new(struct vfix *f)
{
	struct vmbus_server_stats st = vf_stats(f);
	assert_int_equal(st.connection, VMBUS_SERVER_DISCONNECTED);
	assert_int_equal(st.connects, 0);
	assert_int_equal(st.gpadls, 0);
	assert_int_equal(st.channels, 1);
	assert_int_equal(vf_count_state(f, VMBUS_CHANNEL_UNOFFERED), 1);
	assert_int_equal(f->conn_adds, f->conn_removes);
}

/* ------------------------------------------------------------------ */

static void round_trip_guest_carries_on(void **state)
{
	(void)state;
	struct scene sc;
	scene_build(&sc);
	struct vfix *f = sc.f;
	struct vmbus_server_stats before = vf_stats(f);
	/* Only into a server that has met no guest. */
	assert_int_equal(vmbus_server_load(f->s, sc.record, sc.len), -EBUSY);

	scene_new_server(&sc);
	uint32_t adds = f->conn_adds;
	assert_int_equal(vmbus_server_load(f->s, sc.record, sc.len), 0);
	assert_int_equal(vf_pending(f), 0); /* nothing said to the guest */
	struct vmbus_server_stats after = vf_stats(f);
	assert_int_equal(after.connection, VMBUS_SERVER_CONNECTED);
	assert_int_equal(after.version, before.version);
	assert_int_equal(after.channels, 3);
	assert_int_equal(after.gpadls, before.gpadls);
	assert_int_equal(after.gpadl_bytes, before.gpadl_bytes);
	assert_int_equal(after.connects, before.connects);
	struct vmbus_server_channel_info ci;
	assert_true(vf_channel(f, 1, &ci));
	assert_int_equal(ci.state, VMBUS_CHANNEL_OPEN);
	assert_int_equal(ci.target_vp, 0);
	assert_true(vf_channel(f, 2, &ci));
	assert_int_equal(ci.state, VMBUS_CHANNEL_OFFERED);
	assert_int_equal(ci.sub_channel_index, 1);
	assert_true(vf_channel(f, 3, &ci));
	assert_int_equal(ci.state, VMBUS_CHANNEL_OPEN);
	assert_int_equal(ci.target_vp, 2);
	assert_int_equal(f->conn_adds - adds, 2);
	assert_true(vf_conn_active(f, CONN(1)) && vf_conn_active(f, CONN(3)));

	/* Saved again, the same record. */
	size_t again_len;
	uint8_t *again = vf_save(f, &again_len);
	assert_int_equal(again_len, sc.len);
	assert_memory_equal(again, sc.record, sc.len);
	free(again);

	/* The guest goes on: both open channels echo (the sub-channel's
	 * interrupt on VP 2), the half-sent GPADL completes, GPADL 7 goes,
	 * and the deferred teardown is answered at the close. */
	vf_echo_roundtrip(f, &sc.primary, 51, "after the restore");
	vf_echo_roundtrip(f, &sc.sub, 52, "sub after");
	assert_int_equal(f->sigs[f->n_sigs - 1].vp, 2);
	assert_int_equal(vmbus_echo_packets(sc.echo), 2);
	vf_gpadl_send_bodies(f, 9, sc.pending_pfns, PENDING_PAGES);
	const struct vf_msg *m = vf_take(f, VMBUS_MSG_GPADL_CREATED, 0);
	struct vmbus_msg_gpadl_created created;
	memcpy(&created, m->data, sizeof(created));
	assert_int_equal(created.gpadl, 9);
	assert_int_equal(created.creation_status, 0);
	vf_gpadl_teardown(f, 1, 7, true);
	struct vmbus_msg_close_channel close = {{VMBUS_MSG_CLOSECHANNEL, 0}, 3};
	assert_int_equal(vf_send(f, VMBUS_MESSAGE_CONNECTION_ID, &close, sizeof(close)), 0);
	struct vmbus_msg_gpadl_torndown torn;
	memcpy(&torn, vf_take(f, VMBUS_MSG_GPADL_TORNDOWN, sizeof(torn))->data, sizeof(torn));
	assert_int_equal(torn.gpadl, 2);
	/* The primary's close rescinds its sub-channels, as before. */
	vf_chan_close(f, &sc.primary);
	assert_int_equal(vf_take_rescind(f), 3);
	assert_int_equal(vf_take_rescind(f), 2);
	scene_free(&sc);
}

/* Loaded twice from one record: two servers that behave the same. */
static void one_record_two_servers(void **state)
{
	(void)state;
	struct scene sc;
	scene_build(&sc);
	for (int run = 0; run < 2; run++) {
		scene_new_server(&sc);
		assert_int_equal(vmbus_server_load(sc.f->s, sc.record, sc.len), 0);
		vf_echo_roundtrip(sc.f, &sc.primary, 60 + (uint64_t)run, "twice");
		vf_echo_roundtrip(sc.f, &sc.sub, 70 + (uint64_t)run, "twice on the sub");
		assert_int_equal(vmbus_echo_packets(sc.echo), 2);
	}
	scene_free(&sc);
}

/* Every prefix of the record, and every single flipped bit of it, is
 * refused, and the server stays as it was. */
static void truncated_and_corrupt_refused(void **state)
{
	(void)state;
	struct scene sc;
	scene_build(&sc);
	scene_new_server(&sc);
	for (size_t n = 0; n < sc.len; n++)
		assert_int_equal(vmbus_server_load(sc.f->s, sc.record, n), -EINVAL);
	for (size_t bit = 0; bit < sc.len * 8; bit += 7) {
		sc.record[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int err = vmbus_server_load(sc.f->s, sc.record, sc.len);
		sc.record[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(err, -EINVAL);
	}
	expect_as_new(sc.f);
	assert_int_equal(vmbus_server_load(sc.f->s, sc.record, sc.len), 0);
	scene_free(&sc);
}

/* The CRC made right again after an edit, so the content checks meet it. */
static void fix_crc(uint8_t *rec, size_t len)
{
	uint32_t crc = (uint32_t)crc32(0, rec + BODY, (uInt)(len - BODY));
	for (int i = 0; i < 4; i++)
		rec[20 + i] = (uint8_t)(crc >> (8 * i));
}

static void put32_at(uint8_t *rec, size_t at, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		rec[at + i] = (uint8_t)(v >> (8 * i));
}

/* Well-formed records with content the guest could not have made. */
static void impossible_content_refused(void **state)
{
	(void)state;
	struct scene sc;
	scene_build(&sc);
	scene_new_server(&sc);
	uint8_t *rec = malloc(sc.len);
	assert_non_null(rec);
	const struct {
		size_t at;
		uint32_t value;
		const char *what;
	} edits[] = {
		{FIRST_OFFER_VP, VF_VPS, "a target VP past the last"},
		{FIRST_OFFER_RELID, 2, "relid 2 twice"},
		{FIRST_OFFER_RELID, 0, "an offered channel without a relid"},
		{FIRST_OFFER_RELID, VMBUS_RELID_MAX + 1, "a relid past the last"},
		{BODY + 2, 0x12345678, "an unknown version"},
		{BODY + 6, VF_VPS, "messages to a VP past the last"},
		{FIRST_OFFER_DEVICE_STATE - 4, 1, "the echo state cut short"},
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		memcpy(rec, sc.record, sc.len);
		put32_at(rec, edits[i].at, edits[i].value);
		fix_crc(rec, sc.len);
		print_message("# %s\n", edits[i].what);
		assert_int_equal(vmbus_server_load(sc.f->s, rec, sc.len), -EINVAL);
		expect_as_new(sc.f);
	}
	/* A state the device itself refuses (the sub-channel's, after the
	 * primary opened): the load stops part-way and the server is as new
	 * again, the primary closed. */
	memcpy(rec, sc.record, sc.len);
	assert_int_equal(rec[THIRD_OFFER_DEVICE_STATE - 4], 2); /* echo: 2 bytes */
	rec[THIRD_OFFER_DEVICE_STATE] = 7;
	fix_crc(rec, sc.len);
	assert_int_equal(vmbus_server_load(sc.f->s, rec, sc.len), -EINVAL);
	expect_as_new(sc.f);
	assert_int_equal(vmbus_server_load(sc.f->s, sc.record, sc.len), 0);
	free(rec);
	scene_free(&sc);
}

/* Another machine: another VP count, a missing device, a device that
 * cannot restore; and a device the record lacks is offered as new. */
static void other_machines(void **state)
{
	(void)state;
	struct scene sc;
	scene_build(&sc);
	struct vfix *f = sc.f;

	vmbus_echo_remove(f->s, sc.echo);
	sc.echo = NULL;
	vf_replace_server(f);
	assert_int_equal(vmbus_server_load(f->s, sc.record, sc.len), -ENODEV);

	struct vmbus_server_config two = {.vp_count = 2};
	struct vfix *g = vf_new(&two);
	struct vmbus_echo *ge;
	assert_int_equal(vmbus_echo_add(g->s, 1, &ge), 0);
	assert_int_equal(vmbus_server_load(g->s, sc.record, sc.len), -EINVAL);
	vmbus_echo_remove(g->s, ge);
	vf_free(g);

	/* Echo 2 is new: offered at once, on the lowest free relid. */
	struct vmbus_echo *e2;
	assert_int_equal(vmbus_echo_add(f->s, 1, &sc.echo), 0);
	assert_int_equal(vmbus_echo_add(f->s, 2, &e2), 0);
	assert_int_equal(vmbus_server_load(f->s, sc.record, sc.len), 0);
	struct vmbus_msg_offer_channel off;
	memcpy(&off, vf_take(f, VMBUS_MSG_OFFERCHANNEL, sizeof(off))->data, sizeof(off));
	assert_int_equal(off.child_relid, 4);
	assert_int_equal(off.offer.if_instance.b[0], 2);
	assert_int_equal(vf_pending(f), 0);
	vf_echo_roundtrip(f, &sc.primary, 70, "with a new neighbour");
	vmbus_echo_remove(f->s, e2);
	vf_take_rescind(f);
	scene_free(&sc);
}

/* A device without save/restore: an open channel of it cannot be saved,
 * and a record with one cannot be loaded into a server where it is that
 * device. */
static const struct vmbus_device_ops plain_ops;

static int plain_open(void *dev, struct vmbus_channel *ch,
		      const uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES])
{
	(void)dev, (void)ch, (void)user_data;
	return 0;
}

static void plain_close(void *dev, struct vmbus_channel *ch)
{
	(void)dev, (void)ch;
}

static void plain_notify(void *dev, struct vmbus_channel *ch)
{
	(void)dev, (void)ch;
}

static const struct vmbus_device_ops plain_ops = {plain_open, plain_close, plain_notify, NULL,
						  NULL};

static struct vmbus_device *plain_add(struct vfix *f, struct hv_guid instance,
				      bool rescind_on_close)
{
	struct vmbus_device_desc d = {
		.class_id = VMBUS_ECHO_CLASS,
		.instance_id = instance,
		.rescind_on_close = rescind_on_close,
		.name = "plain",
		.ops = &plain_ops,
	};
	struct vmbus_device *dev;
	assert_int_equal(vmbus_server_add_device(f->s, &d, &dev), 0);
	return dev;
}

/* The guest connects, takes the server's one offer and opens it as
 * relid 1 on GPADL 1 (two pages each way). */
static void connect_and_open_the_one(struct vfix *f, struct vf_chan *c)
{
	assert_true(vf_negotiate(f, VMBUS_VERSION_WIN10_V5_3));
	struct vmbus_msg_offer_channel o[1];
	assert_int_equal(vf_request_offers(f, o, 1), 1);
	vf_chan_prepare(f, c, 1, 1, 2, 2, false);
	assert_int_equal(vf_chan_open(f, c, 0), OK);
}

static void device_without_state_refused(void **state)
{
	(void)state;
	struct scene sc;
	scene_build(&sc);
	struct vfix *f = sc.f;
	struct hv_guid instance = HV_GUID(1, 0x8e2b, 0x4f45, 0x9c, 0x3e, 0x68, 0x76, 0x6b, 0x69,
					  0x74, 0x02);
	vmbus_echo_remove(f->s, sc.echo);
	vf_replace_server(f);
	struct vmbus_device *plain = plain_add(f, instance, false);
	assert_int_equal(vmbus_server_load(f->s, sc.record, sc.len), -ENOTSUP);
	expect_as_new(f);

	struct vf_chan c;
	connect_and_open_the_one(f, &c);
	size_t len;
	assert_int_equal(vmbus_server_save(f->s, NULL, 0, &len), -ENOTSUP);
	vf_chan_free(&c);
	vmbus_server_remove_device(f->s, plain);
	vf_take_rescind(f);
	sc.echo = NULL;
	assert_int_equal(vmbus_echo_add(f->s, 1, &sc.echo), 0);
	scene_free(&sc);
}

/* The KVP anomaly across a save: closing the primary rescinded it; the
 * re-offer is owed once the guest releases the relid, and still is after
 * the load. */
static void reoffer_owed_survives(void **state)
{
	(void)state;
	struct vfix *f = vf_new(NULL);
	struct hv_guid instance = HV_GUID(5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
	struct vmbus_device *kvp = plain_add(f, instance, true);
	struct vf_chan c;
	connect_and_open_the_one(f, &c);
	vf_chan_close(f, &c);
	assert_int_equal(vf_take_rescind(f), 1);
	size_t len;
	uint8_t *rec = vf_save(f, &len);

	vmbus_server_remove_device(f->s, kvp);
	vf_replace_server(f);
	kvp = plain_add(f, instance, true);
	assert_int_equal(vmbus_server_load(f->s, rec, len), 0);
	assert_int_equal(vf_pending(f), 0);
	struct vmbus_server_channel_info ci;
	assert_true(vf_channel(f, 1, &ci));
	assert_int_equal(ci.state, VMBUS_CHANNEL_RESCINDED);
	vf_relid_released(f, 1);
	struct vmbus_msg_offer_channel again;
	memcpy(&again, vf_take(f, VMBUS_MSG_OFFERCHANNEL, sizeof(again))->data, sizeof(again));
	assert_true(hv_guid_equal(&again.offer.if_instance, &instance));
	assert_int_equal(again.child_relid, 1);
	vf_chan_free(&c);
	vmbus_server_remove_device(f->s, kvp);
	free(rec);
	vf_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip_guest_carries_on),
		cmocka_unit_test(one_record_two_servers),
		cmocka_unit_test(truncated_and_corrupt_refused),
		cmocka_unit_test(impossible_content_refused),
		cmocka_unit_test(other_machines),
		cmocka_unit_test(device_without_state_refused),
		cmocka_unit_test(reoffer_owed_survives),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
