/* SPDX-License-Identifier: MIT */
/*
 * The IC framework both sides share (see ic_msg.h). Buffers from the other
 * side are read with memcpy: they need not be aligned.
 */
#include <errno.h>
#include <string.h>

#include "ic_msg.h"

#include "hvkit/vmbus_classes.h"

#define HDR_OFF sizeof(struct ic_pipe_hdr)
#define NEG_OFF IC_MSG_HDR_SIZE
#define VER_OFF (IC_MSG_HDR_SIZE + sizeof(struct ic_negotiate))

const char *ic_service_name(enum ic_service svc)
{
	static const char *const names[IC_SERVICE_COUNT] = {"heartbeat", "shutdown", "timesync",
							     "kvp",       "vss",      "fcopy"};
	return (unsigned)svc < IC_SERVICE_COUNT ? names[svc] : "?";
}

const struct hv_guid *ic_service_class(enum ic_service svc)
{
	static const struct hv_guid classes[IC_SERVICE_COUNT] = {
		VMBUS_CLASS_HEARTBEAT, VMBUS_CLASS_SHUTDOWN, VMBUS_CLASS_TIMESYNC,
		VMBUS_CLASS_KVP,       VMBUS_CLASS_VSS,	     VMBUS_CLASS_FCOPY};
	return (unsigned)svc < IC_SERVICE_COUNT ? &classes[svc] : NULL;
}

const struct hv_guid *ic_service_instance(enum ic_service svc)
{
	static const struct hv_guid instances[IC_SERVICE_COUNT] = {
		IC_HEARTBEAT_INSTANCE, IC_SHUTDOWN_INSTANCE, IC_TIMESYNC_INSTANCE,
		IC_KVP_INSTANCE,       IC_VSS_INSTANCE,	     IC_FCOPY_INSTANCE};
	return (unsigned)svc < IC_SERVICE_COUNT ? &instances[svc] : NULL;
}

uint16_t ic_service_msgtype(enum ic_service svc)
{
	static const uint16_t types[IC_SERVICE_COUNT] = {
		IC_MSGTYPE_HEARTBEAT,	IC_MSGTYPE_SHUTDOWN, IC_MSGTYPE_TIMESYNC,
		IC_MSGTYPE_KVPEXCHANGE, IC_MSGTYPE_VSS,	     IC_MSGTYPE_FCOPY};
	return (unsigned)svc < IC_SERVICE_COUNT ? types[svc] : 0xffff;
}

/* hv_util.c fw_versions, hb_versions, sd_versions, ts_versions; hv_kvp.c
 * kvp_versions; hv_snapshot.c and hv_fcopy.c fw_versions (3.0 only),
 * vss_versions, fcopy_versions. */
static const uint32_t util_fw_versions[] = {IC_FW_VERSION_3, IC_FW_VERSION_1};
static const uint32_t hb_versions[] = {IC_HEARTBEAT_VERSION_3, IC_HEARTBEAT_VERSION_1};
static const uint32_t sd_versions[] = {IC_SHUTDOWN_VERSION_3_2, IC_SHUTDOWN_VERSION_3_1,
				       IC_SHUTDOWN_VERSION_3, IC_SHUTDOWN_VERSION_1};
static const uint32_t ts_versions[] = {IC_TIMESYNC_VERSION_4, IC_TIMESYNC_VERSION_3,
				       IC_TIMESYNC_VERSION_1};
static const uint32_t kvp_versions[] = {IC_KVP_VERSION_WIN8, IC_KVP_VERSION_WIN7,
					IC_KVP_VERSION_WS2008};
static const uint32_t vss_versions[] = {IC_VSS_VERSION_5};
static const uint32_t fcopy_versions[] = {IC_FCOPY_VERSION_1_1};

const uint32_t *ic_service_fw_versions(enum ic_service svc, uint32_t *count)
{
	if ((unsigned)svc >= IC_SERVICE_COUNT) {
		*count = 0;
		return NULL;
	}
	*count = svc == IC_VSS || svc == IC_FCOPY ? 1 : 2;
	return util_fw_versions;
}

const uint32_t *ic_service_versions(enum ic_service svc, uint32_t *count)
{
	static const struct {
		const uint32_t *list;
		uint32_t count;
	} lists[IC_SERVICE_COUNT] = {
		{hb_versions, 2},  {sd_versions, 4}, {ts_versions, 3},
		{kvp_versions, 3}, {vss_versions, 1}, {fcopy_versions, 1}};
	if ((unsigned)svc >= IC_SERVICE_COUNT) {
		*count = 0;
		return NULL;
	}
	*count = lists[svc].count;
	return lists[svc].list;
}

int ic_msg_header(const void *buf, uint32_t len, struct ic_msg_hdr *out)
{
	if (len < IC_MSG_HDR_SIZE)
		return -EBADMSG;
	memcpy(out, (const uint8_t *)buf + HDR_OFF, sizeof(*out));
	return 0;
}

uint32_t ic_msg_request(void *buf, uint32_t cap, uint16_t type, uint32_t fw_version,
			uint32_t msg_version, uint8_t transaction_id, uint32_t body_len)
{
	if (body_len > cap || cap - body_len < IC_MSG_HDR_SIZE || body_len > UINT16_MAX)
		return 0;
	uint32_t len = (uint32_t)IC_MSG_HDR_SIZE + body_len;
	struct ic_pipe_hdr pipe = {
		.flags = IC_PIPE_FLAG_MESSAGE,
		.msgsize = len - (uint32_t)sizeof(pipe),
	};
	struct ic_msg_hdr h = {
		.icverframe = {IC_VERSION_MAJOR(fw_version), IC_VERSION_MINOR(fw_version)},
		.icmsgtype = type,
		.icvermsg = {IC_VERSION_MAJOR(msg_version), IC_VERSION_MINOR(msg_version)},
		.icmsgsize = (uint16_t)body_len,
		.ictransaction_id = transaction_id,
		.icflags = IC_FLAG_TRANSACTION | IC_FLAG_REQUEST,
	};
	memcpy(buf, &pipe, sizeof(pipe));
	memcpy((uint8_t *)buf + HDR_OFF, &h, sizeof(h));
	return len;
}

void ic_msg_make_response(void *buf, uint32_t len, uint32_t status)
{
	struct ic_msg_hdr h;
	if (ic_msg_header(buf, len, &h))
		return;
	h.status = status;
	h.icflags = IC_FLAG_TRANSACTION | IC_FLAG_RESPONSE;
	memcpy((uint8_t *)buf + HDR_OFF, &h, sizeof(h));
}

static void put_version(uint8_t *p, uint32_t v)
{
	struct ic_version iv = {IC_VERSION_MAJOR(v), IC_VERSION_MINOR(v)};
	memcpy(p, &iv, sizeof(iv));
}

static uint32_t get_version(const uint8_t *p)
{
	struct ic_version iv;
	memcpy(&iv, p, sizeof(iv));
	return IC_VERSION(iv.major, iv.minor);
}

uint32_t ic_negotiate_request(void *buf, uint32_t cap, const uint32_t *fw, uint32_t fw_count,
			      const uint32_t *msg, uint32_t msg_count, uint8_t transaction_id)
{
	if (fw_count > IC_NEGOTIATE_MAX_VER_COUNT || msg_count > IC_NEGOTIATE_MAX_VER_COUNT)
		return 0;
	uint32_t body = (uint32_t)(IC_NEGOTIATE_PKT_SIZE(fw_count, msg_count) - IC_MSG_HDR_SIZE);
	/* The header names the newest versions offered, as Hyper-V does;
	 * Linux reads only the lists. */
	uint32_t len = ic_msg_request(buf, cap, IC_MSGTYPE_NEGOTIATE, fw_count ? fw[0] : 0,
				      msg_count ? msg[0] : 0, transaction_id, body);
	if (!len)
		return 0;
	struct ic_negotiate n = {.icframe_vercnt = (uint16_t)fw_count,
				 .icmsg_vercnt = (uint16_t)msg_count};
	uint8_t *p = buf;
	memcpy(p + NEG_OFF, &n, sizeof(n));
	for (uint32_t i = 0; i < fw_count; i++)
		put_version(p + VER_OFF + 4 * i, fw[i]);
	for (uint32_t i = 0; i < msg_count; i++)
		put_version(p + VER_OFF + 4 * (fw_count + i), msg[i]);
	return len;
}

int ic_version_in(uint32_t v, const uint32_t *list, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		if (list[i] == v)
			return 1;
	return 0;
}

/* The first of mine (in my order) that is among theirs[first, first+n). */
static int pick(const uint8_t *p, uint32_t first, uint32_t n, const uint32_t *mine,
		uint32_t mine_count, uint32_t *out)
{
	for (uint32_t i = 0; i < mine_count; i++)
		for (uint32_t j = first; j < first + n; j++)
			if (get_version(p + VER_OFF + 4 * j) == mine[i]) {
				*out = mine[i];
				return 1;
			}
	return 0;
}

int ic_negotiate_answer(void *buf, uint32_t len, const uint32_t *fw, uint32_t fw_count,
			const uint32_t *msg, uint32_t msg_count, uint32_t *fw_out,
			uint32_t *msg_out, int *answerable)
{
	uint8_t *p = buf;
	struct ic_negotiate n;
	*answerable = 0;
	/* Linux needs the two counts; without them it sends nothing. */
	if (len < IC_MSG_HDR_SIZE + offsetof(struct ic_negotiate, reserved))
		return -EBADMSG;
	*answerable = len >= VER_OFF + 2 * sizeof(struct ic_version);
	memcpy(&n, p + NEG_OFF, offsetof(struct ic_negotiate, reserved));
	uint32_t fw_pick = 0, msg_pick = 0;
	int err = 0;
	if (n.icframe_vercnt > IC_NEGOTIATE_MAX_VER_COUNT ||
	    n.icmsg_vercnt > IC_NEGOTIATE_MAX_VER_COUNT ||
	    IC_NEGOTIATE_PKT_SIZE(n.icframe_vercnt, n.icmsg_vercnt) > len)
		err = -EBADMSG;
	else if (!pick(p, 0, n.icframe_vercnt, fw, fw_count, &fw_pick) ||
		 !pick(p, n.icframe_vercnt, n.icmsg_vercnt, msg, msg_count, &msg_pick))
		err = -ENOTSUP;
	if (!*answerable)
		return err ? err : -EBADMSG;

	struct ic_msg_hdr h;
	memcpy(&h, p + HDR_OFF, sizeof(h));
	h.icmsgsize = IC_NEGOTIATE_RESPONSE_MSGSIZE;
	memcpy(p + HDR_OFF, &h, sizeof(h));
	n.icframe_vercnt = n.icmsg_vercnt = err ? 0 : 1;
	memcpy(p + NEG_OFF, &n, offsetof(struct ic_negotiate, reserved));
	put_version(p + VER_OFF, fw_pick);
	put_version(p + VER_OFF + 4, msg_pick);
	if (!err) {
		*fw_out = fw_pick;
		*msg_out = msg_pick;
	}
	return err;
}

int ic_negotiate_result(const void *buf, uint32_t len, const uint32_t *fw, uint32_t fw_count,
			const uint32_t *msg, uint32_t msg_count, uint32_t *fw_out,
			uint32_t *msg_out)
{
	const uint8_t *p = buf;
	struct ic_msg_hdr h;
	struct ic_negotiate n;
	if (ic_msg_header(buf, len, &h) || h.icmsgtype != IC_MSGTYPE_NEGOTIATE ||
	    !(h.icflags & IC_FLAG_RESPONSE) || len < VER_OFF)
		return -EBADMSG;
	memcpy(&n, p + NEG_OFF, sizeof(n));
	if (n.icframe_vercnt == 0 && n.icmsg_vercnt == 0)
		return -ENOTSUP;
	if (n.icframe_vercnt != 1 || n.icmsg_vercnt != 1 || len < VER_OFF + 8)
		return -EBADMSG;
	uint32_t f = get_version(p + VER_OFF), m = get_version(p + VER_OFF + 4);
	if (!ic_version_in(f, fw, fw_count) || !ic_version_in(m, msg, msg_count))
		return -EBADMSG;
	*fw_out = f;
	*msg_out = m;
	return 0;
}

/* ---- UTF-16LE <-> UTF-8 ---- */

int ic_utf16_to_utf8(const uint8_t *in, uint32_t in_size, uint32_t max_size, char *out,
		     size_t out_size)
{
	if (in_size % 2 || in_size > max_size || in_size < 2 || out_size == 0)
		return -EINVAL;
	size_t o = 0;
	for (uint32_t i = 0;; i += 2) {
		if (i + 2 > in_size)
			return -EINVAL; /* no NUL within the stated size */
		uint32_t c = (uint32_t)in[i] | (uint32_t)in[i + 1] << 8;
		if (c == 0)
			break;
		if (c >= 0xdc00 && c <= 0xdfff)
			return -EINVAL; /* a lone low surrogate */
		if (c >= 0xd800 && c <= 0xdbff) {
			if (i + 4 > in_size)
				return -EINVAL;
			uint32_t lo = (uint32_t)in[i + 2] | (uint32_t)in[i + 3] << 8;
			if (lo < 0xdc00 || lo > 0xdfff)
				return -EINVAL;
			c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		}
		uint8_t enc[4];
		size_t n;
		if (c < 0x80) {
			enc[0] = (uint8_t)c;
			n = 1;
		} else if (c < 0x800) {
			enc[0] = (uint8_t)(0xc0 | c >> 6);
			enc[1] = (uint8_t)(0x80 | (c & 0x3f));
			n = 2;
		} else if (c < 0x10000) {
			enc[0] = (uint8_t)(0xe0 | c >> 12);
			enc[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
			enc[2] = (uint8_t)(0x80 | (c & 0x3f));
			n = 3;
		} else {
			enc[0] = (uint8_t)(0xf0 | c >> 18);
			enc[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
			enc[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
			enc[3] = (uint8_t)(0x80 | (c & 0x3f));
			n = 4;
		}
		if (o + n >= out_size)
			return -ENAMETOOLONG;
		memcpy(out + o, enc, n);
		o += n;
	}
	out[o] = '\0';
	return (int)o;
}

/* One code point from UTF-8 at s; its length in *n. -1 if malformed. */
static int32_t utf8_next(const uint8_t *s, size_t *n)
{
	uint32_t c = s[0];
	size_t len;
	uint32_t min;
	if (c < 0x80) {
		*n = 1;
		return (int32_t)c;
	}
	if ((c & 0xe0) == 0xc0) {
		len = 2, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, c &= 0x07, min = 0x10000;
	} else {
		return -1;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1; /* also stops at the NUL */
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*n = len;
	return (int32_t)c;
}

static int put16(uint8_t *out, uint32_t out_size, uint32_t *o, uint32_t u)
{
	if (*o + 2 > out_size)
		return -ENAMETOOLONG;
	out[*o] = (uint8_t)u;
	out[*o + 1] = (uint8_t)(u >> 8);
	*o += 2;
	return 0;
}

int ic_utf8_to_utf16(const char *in, uint8_t *out, uint32_t out_size)
{
	const uint8_t *s = (const uint8_t *)in;
	uint32_t o = 0;
	while (*s) {
		size_t n;
		int32_t c = utf8_next(s, &n);
		if (c < 0)
			return -EINVAL;
		s += n;
		int err;
		if (c >= 0x10000) {
			uint32_t v = (uint32_t)c - 0x10000;
			if ((err = put16(out, out_size, &o, 0xd800 | v >> 10)) ||
			    (err = put16(out, out_size, &o, 0xdc00 | (v & 0x3ff))))
				return err;
		} else if ((err = put16(out, out_size, &o, (uint32_t)c))) {
			return err;
		}
	}
	int err = put16(out, out_size, &o, 0);
	return err ? err : (int)o;
}
