/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hvkit/vmbus_classes.h"
#include "storvsp_fixture.h"

/* 100 us polls; the guard only stops a broken host from hanging the run. */
#define POLL_NS 100000L
#define HANG_GUARD_POLLS 300000L

static uint32_t open_channel(struct sfix *s, uint32_t relid)
{
	assert_true(s->nchan < SF_MAX_CHANNELS);
	struct vf_chan *c = &s->chan[s->nchan];
	vf_chan_prepare(s->f, c, relid, s->next_gpadl++, SF_RING_PAGES, SF_RING_PAGES,
			s->nchan & 1);
	assert_int_equal(vf_chan_open(s->f, c, s->nchan % VF_VPS), 0);
	return s->nchan++;
}

/* An image file of `bytes` zeros (unlinked once open) as LUN n's backend,
 * run with aio, and mapped at s->img[n]. */
static void file_disk(struct sfix *s, uint32_t n, uint64_t bytes, bool read_only, const char *aio,
		      struct storage_backend *be)
{
	char path[] = "/tmp/hvkit-sfix-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)bytes), 0);
	struct storage_file_config fc = {.path = path, .read_only = read_only};
	assert_int_equal(storage_aio_mode_parse(aio, &fc.aio), 0);
	assert_int_equal(storage_backend_file_open(&fc, be), 0);
	unlink(path);
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	s->img_fd[n] = fd;
	s->img[n] = p;
	s->img_map[n] = bytes;
}

/* Disk n on the controller: a new backend over the image it has (a file
 * reopened through /proc, or a copy of the in-memory bytes). */
static void disk_again(struct sfix *s, uint32_t n, struct storage_backend *be)
{
	if (s->img_map[n]) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", s->img_fd[n]);
		struct storage_file_config fc = {.path = path, .read_only = s->read_only};
		assert_int_equal(storage_aio_mode_parse(getenv("HVKIT_TEST_STORVSP_AIO"), &fc.aio), 0);
		assert_int_equal(storage_backend_file_open(&fc, be), 0);
		return;
	}
	assert_int_equal(storage_backend_mem_new(s->blocks * 512, 512, s->read_only, be), 0);
	memcpy(storage_backend_mem_data(be), s->img[n], s->blocks * 512);
}

struct sfix *sf_new(const struct storvsp_config *cfg, uint32_t disks, uint64_t blocks,
		    bool read_only)
{
	struct sfix *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->f = vf_new(NULL);
	s->next_gpadl = 0x5700;
	s->next_trans = 1;
	struct storvsp_config c = cfg ? *cfg : (struct storvsp_config){0};
	s->cfg = c;
	s->disks = disks;
	s->blocks = blocks;
	s->read_only = read_only;
	s->instance = c.instance;
	assert_int_equal(storvsp_add(s->f->s, &s->f->mem, &c, &s->sv), 0);
	const char *aio = getenv("HVKIT_TEST_STORVSP_AIO");
	for (uint32_t i = 0; i < disks; i++) {
		struct storage_backend be;
		if (aio && *aio)
			file_disk(s, i, blocks * 512, read_only, aio, &be);
		else
			assert_int_equal(storage_backend_mem_new(blocks * 512, 512, read_only, &be), 0);
		if (!s->img_map[i])
			s->img[i] = storage_backend_mem_data(&be);
		struct scsi_disk *d;
		assert_int_equal(scsi_disk_new(NULL, &be, &d), 0);
		assert_int_equal(storvsp_add_disk(s->sv, i, d), 0);
	}
	vf_connect(s->f);
	struct vmbus_msg_offer_channel o[4];
	uint32_t n = vf_request_offers(s->f, o, 4);
	struct hv_guid scsi = VMBUS_CLASS_SCSI;
	uint32_t relid = 0;
	for (uint32_t i = 0; i < n; i++)
		if (hv_guid_equal(&o[i].offer.if_type, &scsi))
			relid = o[i].child_relid;
	assert_true(relid != 0);
	open_channel(s, relid);
	return s;
}

void sf_free(struct sfix *s)
{
	storvsp_remove(s->f->s, s->sv);
	for (uint32_t i = 0; i < s->nchan; i++)
		vf_chan_free(&s->chan[i]);
	vf_free(s->f);
	for (uint32_t i = 0; i < STORVSP_MAX_LUNS; i++)
		if (s->img_map[i]) {
			munmap(s->img[i], s->img_map[i]);
			close(s->img_fd[i]);
		}
	free(s);
}

void sf_restore(struct sfix *s)
{
	assert_int_equal(storvsp_quiesce(s->sv, 10000000000ull), 0);
	size_t len;
	uint8_t *rec = vf_save(s->f, &len);
	struct storage_backend be[STORVSP_MAX_LUNS];
	for (uint32_t i = 0; i < s->disks; i++)
		disk_again(s, i, &be[i]);
	storvsp_remove(s->f->s, s->sv);
	vf_replace_server(s->f);
	assert_int_equal(storvsp_add(s->f->s, &s->f->mem, &s->cfg, &s->sv), 0);
	for (uint32_t i = 0; i < s->disks; i++) {
		if (!s->img_map[i])
			s->img[i] = storage_backend_mem_data(&be[i]);
		struct scsi_disk *d;
		assert_int_equal(scsi_disk_new(NULL, &be[i], &d), 0);
		assert_int_equal(storvsp_add_disk(s->sv, i, d), 0);
	}
	assert_int_equal(vmbus_server_load(s->f->s, rec, len), 0);
	free(rec);
}

void sf_reopen(struct sfix *s)
{
	uint32_t primary = s->chan[0].relid;
	for (uint32_t i = s->nchan; i-- > 0;) {
		vf_chan_close(s->f, &s->chan[i]);
		vf_chan_free(&s->chan[i]);
	}
	/* The sub-channels went with the primary's close: released, as a
	 * guest does on their rescinds. */
	for (uint32_t i = 1; i < s->nchan; i++)
		vf_relid_released(s->f, vf_take_rescind(s->f));
	s->nchan = 0;
	s->version = 0;
	open_channel(s, primary);
}

uint8_t *sf_disk(struct sfix *s, uint32_t lun)
{
	return s->img[lun];
}

void sf_send(struct sfix *s, uint32_t i, uint64_t trans_id, const void *p, uint32_t len)
{
	assert_int_equal(vf_chan_send(s->f, &s->chan[i], trans_id, p, len, true), 0);
}

int sf_send_gpa(struct sfix *s, uint32_t i, uint64_t trans_id, const void *p, uint32_t len,
		uint32_t byte_offset, uint32_t byte_count, const uint64_t *pfns, uint32_t npfns)
{
	(void)npfns;
	struct vf_chan *c = &s->chan[i];
	struct vmbus_gpa_range_out r = {byte_count, byte_offset, pfns};
	int err = vmbus_ring_put_gpa_direct(&c->w, trans_id, &r, 1, p, len, NULL);
	if (err)
		return err;
	if (vmbus_ring_publish(&c->w))
		vf_signal_relid(s->f, c->relid);
	return 0;
}

bool sf_poll(struct sfix *s, uint32_t i, struct vstor_packet *out, uint32_t *len,
	     uint64_t *trans_id)
{
	struct vf_chan *c = &s->chan[i];
	uint8_t buf[512];
	struct vmbus_packet pkt;
	int err = vmbus_ring_recv(&c->r, buf, sizeof(buf), &pkt);
	if (err == -EAGAIN)
		return false;
	assert_int_equal(err, 0);
	/* Completions, and the host's unsolicited notices (id 0). */
	assert_true(pkt.type == VMBUS_PKT_COMP ||
		    (pkt.type == VMBUS_PKT_DATA_INBAND && pkt.trans_id == 0));
	memset(out, 0, sizeof(*out));
	memcpy(out, pkt.data, pkt.data_len < sizeof(*out) ? pkt.data_len : sizeof(*out));
	if (len)
		*len = pkt.data_len;
	if (trans_id)
		*trans_id = pkt.trans_id;
	/* Give the space back; the host may be waiting for it. */
	if (vmbus_ring_commit(&c->r))
		vf_signal_relid(s->f, c->relid);
	return true;
}

void sf_wait(struct sfix *s, uint32_t i, struct vstor_packet *out, uint32_t *len,
	     uint64_t *trans_id)
{
	for (long n = 0; n < HANG_GUARD_POLLS; n++) {
		if (sf_poll(s, i, out, len, trans_id))
			return;
		struct timespec ts = {0, POLL_NS};
		nanosleep(&ts, NULL);
	}
	fail_msg("no completion from the host on channel %u", i);
}

void sf_expect_quiet(struct sfix *s, uint32_t i)
{
	struct vstor_packet p;
	assert_false(sf_poll(s, i, &p, NULL, NULL));
}

uint32_t sf_op(struct sfix *s, uint32_t i, struct vstor_packet *p)
{
	uint64_t id = s->next_trans++, got;
	uint32_t len, want = s->version && s->version < VSTOR_PROTO_VERSION_WIN8
				     ? (uint32_t)VSTOR_PACKET_SIZE_PRE_WIN8
				     : (uint32_t)sizeof(*p);
	p->flags = VSTOR_REQUEST_COMPLETION_FLAG;
	sf_send(s, i, id, p, want);
	sf_wait(s, i, p, &len, &got);
	assert_int_equal(got, id);
	assert_int_equal(len, want);
	assert_int_equal(p->operation, VSTOR_OPERATION_COMPLETE_IO);
	return p->status;
}

static uint32_t simple_op(struct sfix *s, uint32_t op)
{
	struct vstor_packet p = {.operation = op};
	return sf_op(s, 0, &p);
}

uint32_t sf_init_version(struct sfix *s, uint16_t version)
{
	/* A pre-Win8 guest (Linux before 5.14) sends the short packet from
	 * the start and expects it back. */
	s->version = version;
	assert_int_equal(simple_op(s, VSTOR_OPERATION_BEGIN_INITIALIZATION), 0);
	struct vstor_packet p = {.operation = VSTOR_OPERATION_QUERY_PROTOCOL_VERSION};
	p.version.major_minor = version;
	uint32_t status = sf_op(s, 0, &p);
	if (status) {
		s->version = 0;
		return status;
	}
	struct vstor_packet q = {.operation = VSTOR_OPERATION_QUERY_PROPERTIES};
	assert_int_equal(sf_op(s, 0, &q), 0);
	assert_int_equal(simple_op(s, VSTOR_OPERATION_END_INITIALIZATION), 0);
	return 0;
}

uint16_t sf_init(struct sfix *s, struct vmstorage_channel_properties *props)
{
	static const uint16_t linux61[] = {VSTOR_PROTO_VERSION_WIN10, VSTOR_PROTO_VERSION_WIN8_1,
					   VSTOR_PROTO_VERSION_WIN8};
	assert_int_equal(simple_op(s, VSTOR_OPERATION_BEGIN_INITIALIZATION), 0);
	uint16_t agreed = 0;
	for (size_t i = 0; i < 3 && !agreed; i++) {
		struct vstor_packet p = {.operation = VSTOR_OPERATION_QUERY_PROTOCOL_VERSION};
		p.version.major_minor = linux61[i];
		if (sf_op(s, 0, &p) == 0)
			agreed = linux61[i];
	}
	assert_true(agreed != 0);
	s->version = agreed;
	struct vstor_packet q = {.operation = VSTOR_OPERATION_QUERY_PROPERTIES};
	assert_int_equal(sf_op(s, 0, &q), 0);
	if (props)
		*props = q.storage_channel_properties;
	assert_int_equal(simple_op(s, VSTOR_OPERATION_END_INITIALIZATION), 0);
	return agreed;
}

uint32_t sf_subchannels(struct sfix *s, uint16_t n)
{
	struct vstor_packet p = {.operation = VSTOR_OPERATION_CREATE_SUB_CHANNELS};
	p.sub_channel_count = n;
	uint32_t status = sf_op(s, 0, &p);
	if (status)
		return status;
	uint32_t relids[SF_MAX_CHANNELS];
	assert_true(n < SF_MAX_CHANNELS);
	for (uint16_t k = 0; k < n; k++) {
		const struct vf_msg *m = vf_take(s->f, VMBUS_MSG_OFFERCHANNEL,
						 sizeof(struct vmbus_msg_offer_channel));
		struct vmbus_msg_offer_channel o;
		memcpy(&o, m->data, sizeof(o));
		assert_true(o.offer.sub_channel_index >= 1);
		relids[k] = o.child_relid;
	}
	for (uint16_t k = 0; k < n; k++)
		open_channel(s, relids[k]);
	return 0;
}

uint64_t sf_alloc(struct sfix *s, uint32_t pages)
{
	return vf_alloc(s->f, pages);
}

void *sf_ptr(struct sfix *s, uint64_t pfn)
{
	return vf_page(s->f, pfn);
}

void sf_srb_build(struct vstor_packet *p, uint8_t lun, const uint8_t *cdb, uint8_t cdb_len,
		  uint8_t data_in, uint32_t len)
{
	memset(p, 0, sizeof(*p));
	p->operation = VSTOR_OPERATION_EXECUTE_SRB;
	p->flags = VSTOR_REQUEST_COMPLETION_FLAG;
	p->vm_srb.length = sizeof(struct vmscsi_request);
	p->vm_srb.lun = lun;
	p->vm_srb.cdb_length = cdb_len;
	p->vm_srb.sense_info_length = VSTOR_SENSE_BUFFER_SIZE;
	p->vm_srb.data_in = data_in;
	p->vm_srb.data_transfer_length = len;
	p->vm_srb.srb_flags = data_in == VSTOR_DATA_READ ? SRB_FLAGS_DATA_IN
			      : data_in == VSTOR_DATA_WRITE ? SRB_FLAGS_DATA_OUT
							    : SRB_FLAGS_NO_DATA_TRANSFER;
	memcpy(p->vm_srb.cdb, cdb, cdb_len);
}

void sf_scsi(struct sfix *s, uint32_t i, uint8_t lun, const uint8_t *cdb, uint8_t cdb_len,
	     uint8_t data_in, uint64_t pfn, uint32_t len, struct vstor_packet *reply)
{
	struct sf_addr at = {.lun = lun};
	sf_scsi_at(s, i, at, cdb, cdb_len, data_in, pfn, len, reply);
}

void sf_scsi_at(struct sfix *s, uint32_t i, struct sf_addr at, const uint8_t *cdb,
		uint8_t cdb_len, uint8_t data_in, uint64_t pfn, uint32_t len,
		struct vstor_packet *reply)
{
	struct vstor_packet p;
	uint64_t id = s->next_trans++, got;
	uint32_t plen = s->version && s->version < VSTOR_PROTO_VERSION_WIN8
				? (uint32_t)VSTOR_PACKET_SIZE_PRE_WIN8
				: (uint32_t)sizeof(p);
	sf_srb_build(&p, at.lun, cdb, cdb_len, data_in, len);
	p.vm_srb.path_id = at.path;
	p.vm_srb.target_id = at.target;
	if (len) {
		uint32_t n = (len + 4095) / 4096;
		uint64_t pfns[600];
		assert_true(n <= 600);
		for (uint32_t k = 0; k < n; k++)
			pfns[k] = pfn + k;
		assert_int_equal(sf_send_gpa(s, i, id, &p, plen, 0, len, pfns, n), 0);
	} else {
		sf_send(s, i, id, &p, plen);
	}
	uint32_t rlen;
	sf_wait(s, i, reply, &rlen, &got);
	assert_int_equal(got, id);
	assert_int_equal(rlen, plen);
	assert_int_equal(reply->operation, VSTOR_OPERATION_COMPLETE_IO);
}

struct storvsp_stats sf_stats(struct sfix *s)
{
	struct storvsp_stats st;
	storvsp_get_stats(s->sv, &st);
	return st;
}
