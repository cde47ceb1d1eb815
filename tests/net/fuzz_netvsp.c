/* SPDX-License-Identifier: MIT */
/*
 * netvsp facing a hostile guest. Setup comes from the scripted guest
 * (netvsp_guest.h): a NIC with the loopback backend, the primary channel
 * open, and — if byte 0 asks — Linux's whole bring-up at a chosen NVSP
 * version, so the fuzzer starts from deep states. Then records, each a
 * kind byte, a u16 length and that many bytes:
 *  0 an in-band NVSP message (completion requested);
 *  1 a completion: u64 transaction id, or the oldest receive indication
 *    when shorter;
 *  2 RNDIS bytes sent GPA-direct from scratch pages (control if the
 *    length is odd, data otherwise);
 *  3 a GPA-direct packet: 40 bytes NVSP, then byte count, byte offset and
 *    a PFN (scratch, receive buffer, hole or as given);
 *  4 a send-section packet: index, size, then bytes written into the
 *    section named (if it exists);
 *  5 a frame from the backend of the given length (u16 less one); a third
 *    byte asks for a burst of (it % 64) + 1 frames (its bit 6: saying
 *    more follow, NETVSP_RX_MORE), the lengths of the rest cut by the
 *    bytes after it;
 *  6 the guest drains its ring, completing what it was sent;
 *  7 the link toggles.
 * Byte 0: bit 0 bring-up, bits 1-3 version index, bit 4 a sink backend,
 * bit 5 a scattered send buffer (sections gathered, not read in place).
 * Nothing may crash or reach outside guest RAM (ASan); the host must keep
 * its own counts consistent.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netvsp_guest.h"
#include "ring_buffer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t versions[] = {
	NVSP_PROTOCOL_VERSION_1, NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_4,
	NVSP_PROTOCOL_VERSION_5, NVSP_PROTOCOL_VERSION_6, NVSP_PROTOCOL_VERSION_61,
};

static uint64_t rd64(const uint8_t *p, uint32_t n)
{
	uint64_t v = 0;
	memcpy(&v, p, n < 8 ? n : 8);
	return v;
}

/* Drains channel i, completing transfer pages (as netvsc does) when asked. */
static void drain(struct ng *g, uint32_t i, bool complete)
{
	uint8_t buf[512];
	struct vmbus_packet pkt;
	for (int k = 0; k < 4096; k++) {
		int err = vmbus_ring_recv(&g->ch[i].c.r, buf, sizeof(buf), &pkt);
		if (err)
			break;
		if (pkt.type == VMBUS_PKT_DATA_USING_XFER_PAGES && complete) {
			uint32_t done[2] = {NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE, NVSP_STAT_SUCCESS};
			vmbus_ring_put_completion(&g->ch[i].c.w, pkt.trans_id, done, sizeof(done), NULL);
		}
	}
	vmbus_ring_commit(&g->ch[i].c.r);
	vmbus_ring_publish(&g->ch[i].c.w);
	vf_signal_relid(g->f, g->ch[i].c.relid);
}

static void gpa(struct ng *g, uint64_t tid, const void *nvsp, uint32_t nlen,
		uint32_t count, uint32_t offset, uint64_t pfn0)
{
	uint64_t pfns[40];
	for (uint32_t k = 0; k < 40; k++)
		pfns[k] = pfn0 + k;
	struct vmbus_gpa_range_out r = {count, offset % 4096, pfns};
	if ((uint64_t)r.byte_offset + count > 40ull * 4096 || count == 0)
		r.byte_count = 1;
	if (vmbus_ring_put_gpa_direct(&g->ch[0].c.w, tid, &r, 1, nvsp, nlen, NULL) == 0) {
		vmbus_ring_publish(&g->ch[0].c.w);
		vf_signal_relid(g->f, g->ch[0].c.relid);
	}
}

static void record(struct ng *g, uint8_t kind, const uint8_t *b, uint32_t len, uint64_t tid)
{
	struct vmbus_ring_writer *w = &g->ch[0].c.w;
	switch (kind % 8) {
	case 0: {
		struct vmbus_ring_iov iov = {b, len};
		if (vmbus_ring_put_inband(w, tid, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, &iov, 1,
					  NULL) == 0) {
			vmbus_ring_publish(w);
			vf_signal_relid(g->f, g->ch[0].c.relid);
		}
		break;
	}
	case 1: {
		uint32_t done[2] = {NVSP_MSG1_TYPE_SEND_RNDIS_PKT_COMPLETE, NVSP_STAT_SUCCESS};
		uint64_t t = len >= 8 ? rd64(b, 8) : g->stash[0].n ? g->stash[0].x[g->stash[0].head].tid
								  : rd64(b, len);
		if (vmbus_ring_put_completion(w, t, done, sizeof(done), NULL) == 0) {
			vmbus_ring_publish(w);
			vf_signal_relid(g->f, g->ch[0].c.relid);
		}
		break;
	}
	case 2: {
		uint32_t n = len < 30 * 4096 ? len : 30 * 4096;
		memcpy(vf_page(g->f, g->scratch_pfn), b, n);
		struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT};
		m.send_rndis_pkt.channel_type = len & 1;
		m.send_rndis_pkt.send_buf_section_index = NVSP_INVALID_SECTION_INDEX;
		gpa(g, tid, &m, sizeof(m), n ? n : 1, 0, g->scratch_pfn);
		break;
	}
	case 3: {
		uint8_t nv[40] = {0};
		memcpy(nv, b, len < 40 ? len : 40);
		uint32_t count = (uint32_t)(len > 44 ? rd64(b + 40, 4) : 64);
		uint32_t offset = (uint32_t)(len > 48 ? rd64(b + 44, 4) : 0);
		uint64_t sel = len > 56 ? rd64(b + 48, 8) : 0;
		uint64_t pfn = sel % 4 == 0 ? g->scratch_pfn
			       : sel % 4 == 1 ? g->recv_pfn
			       : sel % 4 == 2 ? VF_HOLE_PFN
					      : sel >> 2;
		gpa(g, tid, nv, sizeof(nv), count, offset, pfn);
		break;
	}
	case 4: {
		uint32_t idx = (uint32_t)rd64(b, len < 4 ? len : 4);
		uint32_t sz = len > 8 ? (uint32_t)rd64(b + 4, 4) : 0;
		uint32_t sections = g->send_section_size ? NG_SEND_PAGES * 4096 / g->send_section_size
							 : 0;
		if (idx < sections && len > 8)
			ng_send_buf_write(g, idx * g->send_section_size, b + 8,
					  len - 8 < g->send_section_size ? len - 8 : g->send_section_size);
		struct nvsp_message m = {.msg_type = NVSP_MSG1_TYPE_SEND_RNDIS_PKT};
		m.send_rndis_pkt.send_buf_section_index = idx;
		m.send_rndis_pkt.send_buf_section_size = sz;
		struct vmbus_ring_iov iov = {&m, sizeof(m)};
		if (vmbus_ring_put_inband(w, tid, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, &iov, 1,
					  NULL) == 0) {
			vmbus_ring_publish(w);
			vf_signal_relid(g->f, g->ch[0].c.relid);
		}
		break;
	}
	case 5: {
		static uint8_t frame[70000];
		uint32_t n = (uint32_t)rd64(b, len < 2 ? len : 2) + 1;
		memcpy(frame, g->mac, 6);
		memset(frame + 6, 0x5a, n > 6 ? n - 6 : 0);
		uint32_t burst = len > 2 ? b[2] % 64u + 1 : 1;
		if (burst == 1) {
			netvsp_receive(g->nic, frame, n);
			break;
		}
		const uint8_t *frames[64];
		uint32_t lens[64];
		int errs[64];
		for (uint32_t k = 0; k < burst; k++) {
			frames[k] = frame;
			lens[k] = k + 3 < len ? n - b[k + 3] % (n < 256 ? n : 256) : n;
		}
		uint32_t flags = b[2] & 0x40 ? NETVSP_RX_MORE : 0;
		uint32_t took = netvsp_receive_burst(g->nic, frames, lens, burst, errs, flags);
		if (took > burst || (took < burst && errs[took] != -ENOBUFS))
			abort();
		break;
	}
	case 6:
		drain(g, 0, true);
		break;
	case 7:
		netvsp_set_link(g->nic, len & 1);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct ng *g = ng_new(NULL, !(data[0] & 0x10));
	g->send_scattered = data[0] & 0x20;
	if (data[0] & 1)
		ng_up(g, versions[((data[0] >> 1) & 7) % 6]);
	size_t i = 1;
	uint64_t tid = 1000;
	for (int ops = 0; i + 3 <= size && ops < 512; ops++) {
		uint8_t kind = data[i];
		uint32_t len = (uint32_t)(data[i + 1] | data[i + 2] << 8);
		i += 3;
		if (len > size - i)
			len = (uint32_t)(size - i);
		/* An exact-size copy, so the host reading past it is caught. */
		uint8_t *b = malloc(len ? len : 1);
		if (!b)
			break;
		memcpy(b, data + i, len);
		record(g, kind, b, len, tid++);
		free(b);
		i += len;
		/* Keep the guest side of the ring from filling up. */
		drain(g, 0, kind % 8 != 1);
	}
	struct netvsp_stats s;
	netvsp_get_stats(g->nic, &s);
	if (s.recv_in_flight > s.recv_sections)
		abort();
	ng_free(g);
	return 0;
}
