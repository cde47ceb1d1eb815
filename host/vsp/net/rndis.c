/* SPDX-License-Identifier: MIT */
/*
 * The RNDIS device state machine (see rndis.h). Layout: helpers that read
 * and check the guest's bytes, the answers to each control message, the
 * OID table, data packets, then the entry points.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "rndis.h"

#define HDR sizeof(struct rndis_msg_header)

enum bad_kind {
	BAD_FRAMING,   /* message length over the buffer or too short */
	BAD_STATE,     /* a request before INITIALIZE */
	BAD_REQUEST,   /* a control message too short or with lying offsets */
	BAD_PACKET,    /* a data packet with lying offsets or lengths */
	BAD_PPI,       /* per-packet info that lies */
	BAD_TYPE,      /* unknown message type */
};

static const char *const bad_names[] = {
	[BAD_FRAMING] = "rndis: message length does not fit its buffer",
	[BAD_STATE] = "rndis: request before INITIALIZE",
	[BAD_REQUEST] = "rndis: control message with bad lengths or offsets",
	[BAD_PACKET] = "rndis: data packet with bad lengths or offsets",
	[BAD_PPI] = "rndis: data packet with bad per-packet info",
	[BAD_TYPE] = "rndis: unknown message type",
};

static void bad(struct rndis_dev *d, enum bad_kind kind, bool packet)
{
	if (packet)
		d->stats.bad_packets++;
	else
		d->stats.bad_messages++;
	if (!(d->logged & (1u << kind))) {
		d->logged |= 1u << kind;
		if (d->ops->bad)
			d->ops->bad(d->ctx, bad_names[kind]);
	}
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* Reads n bytes once: the compiler may not read src again in place of
 * dst afterwards (src may be memory the guest writes as we look). */
static void fetch_once(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
	__asm__ volatile("" : : : "memory");
}

/* [off, off + len) inside [0, limit)? No overflow for any u32 inputs. */
static bool fits(uint32_t off, uint32_t len, uint32_t limit)
{
	return off <= limit && len <= limit - off;
}

void rndis_dev_init(struct rndis_dev *d, const struct rndis_dev_config *cfg,
		    const struct rndis_dev_ops *ops, void *ctx)
{
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	if (!d->cfg.link_speed_bps)
		d->cfg.link_speed_bps = 10000000000ull;
	if (!d->cfg.rss_queues)
		d->cfg.rss_queues = 1;
	d->ops = ops;
	d->ctx = ctx;
	memcpy(d->current_mac, cfg->mac, sizeof(d->current_mac));
	d->link_up = !cfg->link_down;
}

/* ---- Answers ---- */

static void respond(struct rndis_dev *d, uint32_t type, const void *body, uint32_t body_len,
		    const void *info, uint32_t info_len)
{
	uint8_t out[RNDIS_RESPONSE_MAX];
	struct rndis_msg_header h = {type, (uint32_t)HDR + body_len + info_len};
	if (h.msg_len > sizeof(out))
		return; /* our own answers are all smaller */
	memcpy(out, &h, HDR);
	memcpy(out + HDR, body, body_len);
	if (info_len)
		memcpy(out + HDR + body_len, info, info_len);
	d->ops->respond(d->ctx, out, h.msg_len);
}

static void answer_init(struct rndis_dev *d, uint32_t req_id, uint32_t status)
{
	struct rndis_initialize_complete c = {
		.req_id = req_id,
		.status = status,
		.major_ver = RNDIS_MAJOR_VERSION,
		.minor_ver = RNDIS_MINOR_VERSION,
		.dev_flags = RNDIS_DF_CONNECTIONLESS,
		.medium = RNDIS_MEDIUM_802_3,
		/* Linux batches up to this many packets per send. */
		.max_pkt_per_msg = 8,
		.max_xfer_size = 0x10000 + d->cfg.mtu,
		.pkt_alignment_factor = 3, /* 8-byte alignment */
	};
	respond(d, RNDIS_MSG_INIT_C, &c, sizeof(c), NULL, 0);
}

static void answer_query(struct rndis_dev *d, uint32_t req_id, uint32_t status,
			 const void *info, uint32_t info_len)
{
	struct rndis_query_complete c = {
		.req_id = req_id,
		.status = status,
		.info_buflen = info_len,
		/* Linux refuses an offset inside the completion header. */
		.info_buf_offset = info_len ? sizeof(c) : 0,
	};
	respond(d, RNDIS_MSG_QUERY_C, &c, sizeof(c), info, info_len);
}

static void answer_status(struct rndis_dev *d, uint32_t type, uint32_t req_id, uint32_t status)
{
	struct rndis_set_complete c = {req_id, status}; /* same shape as keepalive's */
	respond(d, type, &c, sizeof(c), NULL, 0);
}

static void indicate(struct rndis_dev *d, uint32_t status)
{
	struct rndis_indicate_status s = {.status = status};
	respond(d, RNDIS_MSG_INDICATE, &s, sizeof(s), NULL, 0);
}

/* ---- OIDs ---- */

static const uint32_t supported_oids[] = {
	RNDIS_OID_GEN_SUPPORTED_LIST,
	RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE,
	RNDIS_OID_GEN_LINK_SPEED,
	RNDIS_OID_GEN_CURRENT_PACKET_FILTER,
	RNDIS_OID_GEN_MAXIMUM_TOTAL_SIZE,
	RNDIS_OID_GEN_MEDIA_CONNECT_STATUS,
	RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER,
	RNDIS_OID_802_3_PERMANENT_ADDRESS,
	RNDIS_OID_802_3_CURRENT_ADDRESS,
	RNDIS_OID_802_3_MULTICAST_LIST,
	RNDIS_OID_802_3_MAXIMUM_LIST_SIZE,
	OID_GEN_RECEIVE_SCALE_CAPABILITIES,
	OID_GEN_RECEIVE_SCALE_PARAMETERS,
	OID_TCP_OFFLOAD_PARAMETERS,
	OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES,
};

#define MULTICAST_MAX 32u

/*
 * Offload capabilities: none yet (the backends do not finish checksums or
 * segment), so Linux does both itself. The answer's revision and size
 * follow what the guest asked for, as Linux expects per NVSP version
 * (rndis_filter_query_device): revision 1 and the NDIS 6.0 size, 2 and
 * 6.1, 3 and the whole object.
 */
static uint32_t hw_caps(const uint8_t *info, uint32_t info_len, struct ndis_offload *caps)
{
	uint8_t rev = NDIS_OFFLOAD_PARAMETERS_REVISION_3;
	if (info_len >= sizeof(struct ndis_object_header) && info[1] >= 1 && info[1] < 3)
		rev = info[1];
	uint32_t size = rev == 1 ? NDIS_OFFLOAD_SIZE_6_0
			: rev == 2 ? NDIS_OFFLOAD_SIZE_6_1
				   : NDIS_OFFLOAD_SIZE;
	memset(caps, 0, sizeof(*caps));
	caps->header.type = NDIS_OBJECT_TYPE_OFFLOAD;
	caps->header.revision = rev;
	caps->header.size = (uint16_t)size;
	return size;
}

static void query(struct rndis_dev *d, uint32_t req_id, uint32_t oid, const uint8_t *info,
		  uint32_t info_len)
{
	uint32_t v;
	switch (oid) {
	case RNDIS_OID_GEN_SUPPORTED_LIST:
		answer_query(d, req_id, RNDIS_STATUS_SUCCESS, supported_oids,
			     sizeof(supported_oids));
		return;
	case RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE:
		v = d->cfg.mtu; /* Linux takes it as the MTU */
		break;
	case RNDIS_OID_GEN_MAXIMUM_TOTAL_SIZE:
		v = d->cfg.mtu + RNDIS_ETH_HLEN;
		break;
	case RNDIS_OID_GEN_LINK_SPEED: {
		uint64_t units = d->cfg.link_speed_bps / 100; /* 100 bit/s units */
		v = units > UINT32_MAX ? UINT32_MAX : (uint32_t)units;
		break;
	}
	case RNDIS_OID_GEN_MEDIA_CONNECT_STATUS:
		v = d->link_up ? RNDIS_MEDIA_STATE_CONNECTED : RNDIS_MEDIA_STATE_DISCONNECTED;
		break;
	case RNDIS_OID_GEN_CURRENT_PACKET_FILTER:
		v = d->packet_filter;
		break;
	case RNDIS_OID_802_3_MAXIMUM_LIST_SIZE:
		v = MULTICAST_MAX;
		break;
	case RNDIS_OID_802_3_PERMANENT_ADDRESS:
		answer_query(d, req_id, RNDIS_STATUS_SUCCESS, d->cfg.mac, 6);
		return;
	case RNDIS_OID_802_3_CURRENT_ADDRESS:
		answer_query(d, req_id, RNDIS_STATUS_SUCCESS, d->current_mac, 6);
		return;
	case OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES: {
		struct ndis_offload caps;
		uint32_t size = hw_caps(info, info_len, &caps);
		answer_query(d, req_id, RNDIS_STATUS_SUCCESS, &caps, size);
		return;
	}
	case OID_GEN_RECEIVE_SCALE_CAPABILITIES: {
		struct ndis_recv_scale_cap cap = {
			.hdr = {NDIS_OBJECT_TYPE_RSS_CAPABILITIES,
				NDIS_RECEIVE_SCALE_CAPABILITIES_REVISION_2, sizeof(cap)},
			.cap_flag = NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV4 |
				    NDIS_RSS_CAPS_HASH_TYPE_TCP_IPV6,
			.num_int_msg = 1,
			.num_recv_que = d->cfg.rss_queues,
			.num_indirect_tabent = NDIS_RSS_INDIRECTION_TABLE_MAX_SIZE / 4,
		};
		answer_query(d, req_id, RNDIS_STATUS_SUCCESS, &cap, sizeof(cap));
		return;
	}
	default:
		answer_query(d, req_id, RNDIS_STATUS_NOT_SUPPORTED, NULL, 0);
		return;
	}
	answer_query(d, req_id, RNDIS_STATUS_SUCCESS, &v, sizeof(v));
}

static int hexval(uint16_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "NetworkAddress" = 12 hex digits, UTF-16 (rndis_filter_set_device_mac). */
static uint32_t set_config_parameter(struct rndis_dev *d, const uint8_t *info, uint32_t len)
{
	static const char name[] = "NetworkAddress";
	struct rndis_config_parameter_info p;
	if (len < sizeof(p))
		return RNDIS_STATUS_INVALID_LENGTH;
	memcpy(&p, info, sizeof(p));
	if (!fits(p.parameter_name_offset, p.parameter_name_length, len) ||
	    !fits(p.parameter_value_offset, p.parameter_value_length, len))
		return RNDIS_STATUS_INVALID_DATA;
	if (p.parameter_name_length != 2 * (sizeof(name) - 1))
		return RNDIS_STATUS_NOT_SUPPORTED;
	for (uint32_t i = 0; i < sizeof(name) - 1; i++) {
		uint16_t c;
		memcpy(&c, info + p.parameter_name_offset + 2 * i, 2);
		if (c != (uint16_t)name[i])
			return RNDIS_STATUS_NOT_SUPPORTED;
	}
	if (p.parameter_type != RNDIS_CONFIG_PARAM_TYPE_STRING || p.parameter_value_length != 24)
		return RNDIS_STATUS_INVALID_DATA;
	uint8_t mac[6];
	for (uint32_t i = 0; i < 12; i++) {
		uint16_t c;
		memcpy(&c, info + p.parameter_value_offset + 2 * i, 2);
		int h = hexval(c);
		if (h < 0)
			return RNDIS_STATUS_INVALID_DATA;
		mac[i / 2] = (uint8_t)(i % 2 ? (mac[i / 2] << 4) | h : h);
	}
	if (mac[0] & 1) /* a multicast address cannot be a station's */
		return RNDIS_STATUS_INVALID_DATA;
	memcpy(d->current_mac, mac, 6);
	return RNDIS_STATUS_SUCCESS;
}

static uint32_t set_rss(struct rndis_dev *d, const uint8_t *info, uint32_t len)
{
	struct ndis_recv_scale_param p;
	if (len < sizeof(p))
		return RNDIS_STATUS_INVALID_LENGTH;
	memcpy(&p, info, sizeof(p));
	if (p.hdr.type != NDIS_OBJECT_TYPE_RSS_PARAMETERS)
		return RNDIS_STATUS_INVALID_DATA;
	if (p.flag & NDIS_RSS_PARAM_FLAG_DISABLE_RSS) {
		d->rss_table_len = 0;
		return RNDIS_STATUS_SUCCESS;
	}
	if (p.indirect_tabsize % 4 || p.indirect_tabsize > NDIS_RSS_INDIRECTION_TABLE_MAX_SIZE ||
	    !fits(p.indirect_taboffset, p.indirect_tabsize, len) ||
	    p.hashkey_size > NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE ||
	    !fits(p.hashkey_offset, p.hashkey_size, len))
		return RNDIS_STATUS_INVALID_DATA;
	uint32_t n = p.indirect_tabsize / 4;
	/* All checked before any is taken: a refused set changes nothing. */
	for (uint32_t i = 0; i < n; i++)
		if (rd32(info + p.indirect_taboffset + 4 * i) >= d->cfg.rss_queues)
			return RNDIS_STATUS_INVALID_DATA;
	for (uint32_t i = 0; i < n; i++)
		d->rss_table[i] = rd32(info + p.indirect_taboffset + 4 * i);
	d->rss_table_len = n;
	memset(d->rss_key, 0, sizeof(d->rss_key));
	memcpy(d->rss_key, info + p.hashkey_offset, p.hashkey_size);
	d->rss_hashinfo = p.hashinfo;
	return RNDIS_STATUS_SUCCESS;
}

static uint32_t set(struct rndis_dev *d, uint32_t oid, const uint8_t *info, uint32_t len)
{
	switch (oid) {
	case RNDIS_OID_GEN_CURRENT_PACKET_FILTER:
		if (len < 4)
			return RNDIS_STATUS_INVALID_LENGTH;
		d->packet_filter = rd32(info);
		return RNDIS_STATUS_SUCCESS;
	case RNDIS_OID_802_3_MULTICAST_LIST:
		if (len % 6 || len / 6 > MULTICAST_MAX)
			return RNDIS_STATUS_INVALID_LENGTH;
		d->multicast_count = len / 6;
		return RNDIS_STATUS_SUCCESS;
	case RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER:
		return set_config_parameter(d, info, len);
	case OID_TCP_OFFLOAD_PARAMETERS: {
		/* Linux sends 28 bytes from NVSP 5, 22 before (VERSION_4_OFFLOAD_SIZE). */
		if (len < 22 || info[0] != NDIS_OBJECT_TYPE_DEFAULT)
			return RNDIS_STATUS_INVALID_DATA;
		memset(&d->offload, 0, sizeof(d->offload));
		memcpy(&d->offload, info, len < sizeof(d->offload) ? len : sizeof(d->offload));
		return RNDIS_STATUS_SUCCESS;
	}
	case OID_GEN_RECEIVE_SCALE_PARAMETERS:
		return set_rss(d, info, len);
	default:
		return RNDIS_STATUS_NOT_SUPPORTED;
	}
}

/* ---- Control messages ---- */

/*
 * Query and set share a shape: req_id, oid, info_buflen, info_buf_offset
 * (from the body), dev_vc_handle. Returns the info buffer, or false if
 * its offset or length lies.
 */
static bool oid_request(const uint8_t *body, uint32_t body_len, struct rndis_query_request *q,
			const uint8_t **info)
{
	memcpy(q, body, sizeof(*q));
	if (q->info_buflen == 0) {
		*info = NULL;
		return true;
	}
	if (q->info_buf_offset < sizeof(*q) || !fits(q->info_buf_offset, q->info_buflen, body_len))
		return false;
	*info = body + q->info_buf_offset;
	return true;
}

static void control(struct rndis_dev *d, uint32_t type, const uint8_t *body, uint32_t body_len)
{
	uint32_t req_id = body_len >= 4 ? rd32(body) : 0;
	struct rndis_query_request q;
	const uint8_t *info;

	switch (type) {
	case RNDIS_MSG_INIT:
		if (body_len < sizeof(struct rndis_initialize_request)) {
			bad(d, BAD_REQUEST, false);
			return;
		}
		/* A second INITIALIZE restarts the device, as a reset would. */
		d->state = RNDIS_DEV_INITIALIZED;
		d->packet_filter = 0;
		answer_init(d, req_id, RNDIS_STATUS_SUCCESS);
		return;
	case RNDIS_MSG_HALT:
		d->state = RNDIS_DEV_UNINITIALIZED;
		d->packet_filter = 0;
		return; /* no completion (rndis_filter_halt_device) */
	case RNDIS_MSG_QUERY:
	case RNDIS_MSG_SET:
		if (body_len < sizeof(q) || !oid_request(body, body_len, &q, &info)) {
			bad(d, BAD_REQUEST, false);
			if (body_len >= 4) /* answer, so the guest stops waiting */
				answer_status(d, type | RNDIS_MSG_COMPLETION, req_id,
					      RNDIS_STATUS_INVALID_DATA);
			return;
		}
		if (d->state != RNDIS_DEV_INITIALIZED) {
			bad(d, BAD_STATE, false);
			answer_status(d, type | RNDIS_MSG_COMPLETION, req_id, RNDIS_STATUS_FAILURE);
			return;
		}
		if (type == RNDIS_MSG_QUERY)
			query(d, req_id, q.oid, info, q.info_buflen);
		else
			answer_status(d, RNDIS_MSG_SET_C, req_id, set(d, q.oid, info, q.info_buflen));
		return;
	case RNDIS_MSG_RESET: {
		struct rndis_reset_complete c = {RNDIS_STATUS_SUCCESS, 0};
		d->packet_filter = 0;
		respond(d, RNDIS_MSG_RESET_C, &c, sizeof(c), NULL, 0);
		return;
	}
	case RNDIS_MSG_KEEPALIVE:
		if (body_len < 4) {
			bad(d, BAD_REQUEST, false);
			return;
		}
		answer_status(d, RNDIS_MSG_KEEPALIVE_C, req_id,
			      d->state == RNDIS_DEV_INITIALIZED ? RNDIS_STATUS_SUCCESS
								: RNDIS_STATUS_FAILURE);
		return;
	default:
		bad(d, BAD_TYPE, false);
		return;
	}
}

/* ---- Data packets ---- */

/*
 * Walks the per-packet info ppi[0, len) (private memory) and records the types
 * Linux sends. Element sizes and data offsets are checked against the
 * area; an element that lies rejects the packet.
 */
static bool parse_ppi(const uint8_t *ppi, uint32_t len, struct rndis_frame_info *fi)
{
	uint32_t off = 0;
	while (len > 0) {
		struct rndis_per_packet_info p;
		if (len < sizeof(p))
			return false;
		memcpy(&p, ppi + off, sizeof(p));
		if (p.size < sizeof(p) || p.size > len || p.ppi_offset < sizeof(p) ||
		    p.ppi_offset > p.size)
			return false;
		uint32_t data_len = p.size - p.ppi_offset;
		const uint8_t *data = ppi + off + p.ppi_offset;
		uint32_t *slot = NULL;
		bool *has = NULL;
		switch (p.type) {
		case TCPIP_CHKSUM_PKTINFO:
			slot = &fi->csum, has = &fi->has_csum;
			break;
		case IEEE_8021Q_INFO:
			slot = &fi->vlan, has = &fi->has_vlan;
			break;
		case TCP_LARGESEND_PKTINFO:
			slot = &fi->lso, has = &fi->has_lso;
			break;
		case NBL_HASH_VALUE:
			slot = &fi->hash, has = &fi->has_hash;
			break;
		default:
			break; /* others are skipped whole */
		}
		if (slot) {
			if (data_len < 4)
				return false;
			*slot = rd32(data);
			*has = true;
		}
		off += p.size;
		len -= p.size;
	}
	return true;
}

/*
 * A data packet. body is the message after its header; it may be memory
 * the guest still writes (rndis_dev_handle_shared), so every field is
 * fetched once into private memory and checked there: the packet header
 * into p, the per-packet info into scratch (cap bytes) when body is
 * shared. Only the frame itself is handed on by reference; a guest
 * that rewrites it under us corrupts nothing but its own frame.
 */
static void packet(struct rndis_dev *d, const uint8_t *body, uint32_t body_len, bool shared,
		   uint8_t *scratch, uint32_t cap)
{
	struct rndis_packet p;
	struct rndis_frame_info fi = {0};

	if (body_len < sizeof(p)) {
		bad(d, BAD_PACKET, true);
		return;
	}
	fetch_once(&p, body, sizeof(p));
	/* The frame must lie after the header, inside the message. With LSO
	 * it may be bigger than the MTU, never than the largest transfer. */
	if (p.data_offset < sizeof(p) || p.data_len == 0 ||
	    !fits(p.data_offset, p.data_len, body_len) ||
	    p.data_len > 0x10000 + d->cfg.mtu) {
		bad(d, BAD_PACKET, true);
		return;
	}
	if (p.per_pkt_info_len) {
		const uint8_t *ppi = body + p.per_pkt_info_offset;
		bool ok = p.per_pkt_info_offset >= sizeof(p) &&
			  fits(p.per_pkt_info_offset, p.per_pkt_info_len, body_len) &&
			  (!shared || p.per_pkt_info_len <= cap);
		if (ok && shared) {
			fetch_once(scratch, ppi, p.per_pkt_info_len);
			ppi = scratch;
		}
		if (!ok || !parse_ppi(ppi, p.per_pkt_info_len, &fi)) {
			bad(d, BAD_PPI, true);
			return;
		}
	}
	if (d->state != RNDIS_DEV_INITIALIZED) {
		d->stats.dropped++;
		return;
	}
	d->stats.frames++;
	d->ops->frame(d->ctx, body + p.data_offset, p.data_len, &fi);
}

/* ---- Entry points ---- */

/* The messages in buf, one after the other; shared: see packet(). A
 * control message is copied whole into scratch first (its parsers read
 * fields more than once); it is rare. */
static int handle(struct rndis_dev *d, const uint8_t *buf, uint32_t len, bool shared,
		  uint8_t *scratch, uint32_t cap)
{
	uint32_t off = 0;
	while (off < len) {
		struct rndis_msg_header h;
		if (len - off < HDR) {
			bad(d, BAD_FRAMING, false);
			return -EBADMSG;
		}
		fetch_once(&h, buf + off, HDR);
		if (h.msg_len < HDR || h.msg_len > len - off ||
		    (shared && h.msg_type != RNDIS_MSG_PACKET && h.msg_len - HDR > cap)) {
			bad(d, BAD_FRAMING, false);
			return -EBADMSG;
		}
		const uint8_t *body = buf + off + HDR;
		uint32_t body_len = h.msg_len - HDR;
		uint64_t bad_before = d->stats.bad_messages + d->stats.bad_packets;
		if (h.msg_type == RNDIS_MSG_PACKET) {
			packet(d, body, body_len, shared, scratch, cap);
		} else {
			if (shared) {
				fetch_once(scratch, body, body_len);
				body = scratch;
			}
			d->stats.control++;
			control(d, h.msg_type, body, body_len);
		}
		if (d->stats.bad_messages + d->stats.bad_packets != bad_before)
			return -EBADMSG;
		off += h.msg_len;
	}
	return 0;
}

int rndis_dev_handle(struct rndis_dev *d, const uint8_t *buf, uint32_t len)
{
	return handle(d, buf, len, false, NULL, 0);
}

int rndis_dev_handle_shared(struct rndis_dev *d, const uint8_t *buf, uint32_t len,
			    uint8_t *scratch, uint32_t cap)
{
	return handle(d, buf, len, true, scratch, cap);
}

void rndis_dev_set_link(struct rndis_dev *d, bool up)
{
	if (d->link_up == up)
		return;
	d->link_up = up;
	if (d->state == RNDIS_DEV_INITIALIZED)
		indicate(d, up ? RNDIS_STATUS_MEDIA_CONNECT : RNDIS_STATUS_MEDIA_DISCONNECT);
}

bool rndis_dev_accepts(const struct rndis_dev *d, const uint8_t *frame, uint32_t len)
{
	uint32_t f = d->packet_filter;
	if (len < RNDIS_ETH_HLEN || !f)
		return false;
	if (f & NDIS_PACKET_TYPE_PROMISCUOUS)
		return true;
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	if (!memcmp(frame, bcast, 6))
		return f & NDIS_PACKET_TYPE_BROADCAST;
	if (frame[0] & 1)
		return f & (NDIS_PACKET_TYPE_MULTICAST | NDIS_PACKET_TYPE_ALL_MULTICAST);
	return (f & NDIS_PACKET_TYPE_DIRECTED) && !memcmp(frame, d->current_mac, 6);
}

/* The Toeplitz hash (Microsoft's RSS hash) of in[0, n), n <= 36, under a
 * 40-byte key: for each input bit set, the 32 key bits starting at that
 * bit's position are folded in. */
static uint32_t toeplitz(const uint8_t key[NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE], const uint8_t *in,
			 uint32_t n)
{
	uint32_t h = 0;
	uint32_t window = (uint32_t)key[0] << 24 | key[1] << 16 | key[2] << 8 | key[3];
	for (uint32_t i = 0; i < n; i++) {
		uint8_t next = i + 4 < NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE ? key[i + 4] : 0;
		for (int bit = 7; bit >= 0; bit--) {
			if (in[i] >> bit & 1)
				h ^= window;
			window = window << 1 | (uint32_t)(next >> bit & 1);
		}
	}
	return h;
}

/* Where the frame's IP header starts (after a VLAN tag, if any) and its
 * ethertype; 0 if too short. */
static uint32_t ip_offset(const uint8_t *f, uint32_t len, uint16_t *type)
{
	uint32_t off = RNDIS_ETH_HLEN;
	if (len < off)
		return 0;
	*type = (uint16_t)(f[12] << 8 | f[13]);
	if (*type == 0x8100) {
		off += RNDIS_VLAN_HLEN;
		if (len < off)
			return 0;
		*type = (uint16_t)(f[16] << 8 | f[17]);
	}
	return off;
}

bool rndis_dev_rx_hash(const struct rndis_dev *d, const uint8_t *f, uint32_t len,
		       uint32_t *hash)
{
	uint32_t info = d->rss_hashinfo;
	uint8_t in[36]; /* addresses, then ports */
	uint32_t n, l4 = 0, off;
	uint16_t type;
	/* Nothing parsed unless asked for: this runs for every frame. */
	if (!d->rss_table_len || !(info & NDIS_HASH_FUNC_TOEPLITZ) ||
	    !(off = ip_offset(f, len, &type)))
		return false;
	if (type == 0x0800 && len >= off + 20 && (info & (NDIS_HASH_IPV4 | NDIS_HASH_TCP_IPV4))) {
		uint32_t ihl = (f[off] & 0xfu) * 4u;
		bool fragment = (f[off + 6] & 0x3fu) || f[off + 7];
		n = 8;
		memcpy(in, f + off + 12, n);
		if (f[off + 9] == 6 && !fragment && ihl >= 20 && (info & NDIS_HASH_TCP_IPV4))
			l4 = off + ihl;
		else if (!(info & NDIS_HASH_IPV4))
			return false;
	} else if (type == 0x86dd && len >= off + 40 &&
		   (info & (NDIS_HASH_IPV6 | NDIS_HASH_TCP_IPV6))) {
		n = 32;
		memcpy(in, f + off + 8, n);
		if (f[off + 6] == 6 && (info & NDIS_HASH_TCP_IPV6))
			l4 = off + 40;
		else if (!(info & NDIS_HASH_IPV6))
			return false;
	} else {
		return false;
	}
	if (l4 && len >= l4 + 4) {
		memcpy(in + n, f + l4, 4); /* source and destination ports */
		n += 4;
	} else if (l4 && !(info & (type == 0x0800 ? NDIS_HASH_IPV4 : NDIS_HASH_IPV6))) {
		return false; /* a TCP header cut short, and no address hash asked for */
	}
	*hash = toeplitz(d->rss_key, in, n);
	return true;
}

static uint32_t put_ppi(uint8_t *at, uint32_t type, uint32_t value)
{
	struct rndis_per_packet_info p = {16, type, sizeof(p)};
	memcpy(at, &p, sizeof(p));
	memcpy(at + sizeof(p), &value, 4);
	return 16;
}

uint32_t rndis_dev_build_packet(uint8_t *out, uint32_t frame_len, uint32_t csum_rx,
				uint32_t vlan, const uint32_t *hash)
{
	struct rndis_packet p = {.per_pkt_info_offset = sizeof(p)};
	uint8_t *ppi = out + HDR + sizeof(p);
	if (csum_rx)
		p.per_pkt_info_len += put_ppi(ppi + p.per_pkt_info_len, TCPIP_CHKSUM_PKTINFO,
					      csum_rx);
	if (vlan)
		p.per_pkt_info_len += put_ppi(ppi + p.per_pkt_info_len, IEEE_8021Q_INFO, vlan);
	if (hash)
		p.per_pkt_info_len += put_ppi(ppi + p.per_pkt_info_len, NBL_HASH_VALUE, *hash);
	if (!p.per_pkt_info_len)
		p.per_pkt_info_offset = 0;
	p.data_offset = sizeof(p) + p.per_pkt_info_len;
	p.data_len = frame_len;
	struct rndis_msg_header h = {RNDIS_MSG_PACKET, (uint32_t)HDR + p.data_offset + frame_len};
	memcpy(out, &h, HDR);
	memcpy(out + HDR, &p, sizeof(p));
	return (uint32_t)HDR + p.data_offset;
}
