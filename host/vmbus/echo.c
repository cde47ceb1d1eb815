/* SPDX-License-Identifier: MIT */
/*
 * The echo device: every in-band packet that asks for a completion gets one
 * with the same payload. It works inline in notify (under the partition
 * lock; echoing is cheap) and keeps the ring rules of ring_buffer.c:
 *  - masks the guest-to-host ring's interrupts while draining it and
 *    unmasks when it looks empty (rechecking, so no packet is missed);
 *  - commits consumed space after every batch and signals the guest when
 *    the commit or the publish of its completions says so;
 *  - when the host-to-guest ring is full it leaves the packet in place,
 *    arms pending_send_sz and returns: the guest signals once it has read
 *    enough, and the next notify retries. It never waits under the lock.
 * A packet whose payload starts with VMBUS_ECHO_SUBCHANNELS and a count
 * also asks for that many more sub-channels (completed like any other).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmbus_internal.h"

struct vmbus_echo {
	struct vmbus_device *dev;
	uint32_t instance;
	uint64_t packets; /* atomic: read without the lock */
};

struct echo_channel {
	uint8_t *buf;
	uint32_t buflen;
	bool waiting; /* pending_send_sz armed */
	bool broken;  /* the guest corrupted a ring: stop touching it */
};

static int echo_open(void *dev, struct vmbus_channel *ch,
		     const uint8_t user_data[VMBUS_OFFER_USER_DEFINED_BYTES])
{
	(void)dev;
	(void)user_data;
	struct echo_channel *ec = calloc(1, sizeof(*ec));
	if (!ec)
		return -ENOMEM;
	/* Room for the largest packet this ring can hold. */
	uint32_t size = vmbus_channel_in(ch)->mem.size;
	ec->buflen = size < VMBUS_PACKET_MAX_LEN ? size : VMBUS_PACKET_MAX_LEN;
	ec->buf = malloc(ec->buflen);
	if (!ec->buf) {
		free(ec);
		return -ENOMEM;
	}
	vmbus_channel_set_data(ch, ec);
	return 0;
}

static void echo_close(void *dev, struct vmbus_channel *ch)
{
	(void)dev;
	struct echo_channel *ec = vmbus_channel_data(ch);
	if (ec) {
		free(ec->buf);
		free(ec);
	}
	vmbus_channel_set_data(ch, NULL);
}

static uint32_t completion_bytes(uint32_t payload)
{
	return ((16u + payload + 7u) & ~7u) + VMBUS_RING_TRAILER_SIZE;
}

/* Sub-channel request: VMBUS_ECHO_SUBCHANNELS then a u32 count. */
static void maybe_add_subchannels(struct vmbus_echo *e, const struct vmbus_packet *pkt)
{
	uint32_t word[2];
	if (pkt->data_len < sizeof(word))
		return;
	memcpy(word, pkt->data, sizeof(word));
	if (word[0] == VMBUS_ECHO_SUBCHANNELS)
		vmbus_device_add_subchannels_locked(e->dev, word[1]);
}

static void echo_notify(void *dev, struct vmbus_channel *ch)
{
	struct vmbus_echo *e = dev;
	struct echo_channel *ec = vmbus_channel_data(ch);
	struct vmbus_ring_reader *r = vmbus_channel_in(ch);
	struct vmbus_ring_writer *w = vmbus_channel_out(ch);
	bool signal = false;
	struct vmbus_packet pkt;

	if (!ec || ec->broken)
		return;
	vmbus_ring_reader_mask(r);
	for (;;) {
		int err = vmbus_ring_peek(r, ec->buf, ec->buflen, &pkt);
		if (err == -EAGAIN) {
			signal |= vmbus_ring_commit(r);
			if (!vmbus_ring_reader_unmask(r))
				break;
			vmbus_ring_reader_mask(r);
			continue;
		}
		if (err) {
			ec->broken = true; /* the ring engine refuses it from now on */
			break;
		}
		bool answer = pkt.type == VMBUS_PKT_DATA_INBAND &&
			      (pkt.flags & VMBUS_PKT_FLAG_COMPLETION_REQUESTED);
		uint32_t need = completion_bytes(pkt.data_len);
		if (answer && need < w->mem.size && vmbus_ring_writer_free(w) <= need) {
			/* Show the guest what is there and what we took,
			 * then ask to be woken once it has read enough. */
			signal |= vmbus_ring_publish(w);
			signal |= vmbus_ring_commit(r);
			if (!vmbus_ring_writer_want_space(w, need)) {
				if (w->broken) {
					ec->broken = true;
					break;
				}
				ec->waiting = true;
				/* Unmasked, so the guest's next signal
				 * comes; the packet stays in the ring. */
				vmbus_ring_reader_unmask(r);
				goto out;
			}
		}
		if (ec->waiting) {
			vmbus_ring_writer_space_done(w);
			ec->waiting = false;
		}
		if (pkt.type == VMBUS_PKT_DATA_INBAND)
			maybe_add_subchannels(e, &pkt);
		if (answer && need < w->mem.size &&
		    vmbus_ring_put_completion(w, pkt.trans_id, pkt.data, pkt.data_len, NULL) ==
			    -EBADMSG) {
			ec->broken = true;
			break;
		}
		vmbus_ring_advance(r);
		__atomic_add_fetch(&e->packets, 1, __ATOMIC_RELAXED);
	}
out:
	signal |= vmbus_ring_publish(w);
	if (signal)
		vmbus_channel_signal_locked(ch);
}

/* A channel's state: whether it waits for ring space, whether the guest
 * broke a ring (one byte each). Its packet count is the device's. */
static int echo_save(void *dev, struct vmbus_channel *ch, void *buf, size_t *len)
{
	(void)dev;
	const struct echo_channel *ec = vmbus_channel_data(ch);
	size_t room = *len;
	*len = 2;
	if (room < 2)
		return -ENOSPC;
	uint8_t *b = buf;
	b[0] = ec->waiting;
	b[1] = ec->broken;
	return 0;
}

static int echo_restore(void *dev, struct vmbus_channel *ch, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	if (len != 2 || b[0] > 1 || b[1] > 1)
		return -EINVAL;
	int err = echo_open(dev, ch, NULL);
	if (err)
		return err;
	struct echo_channel *ec = vmbus_channel_data(ch);
	ec->waiting = b[0];
	ec->broken = b[1];
	return 0;
}

static const struct vmbus_device_ops echo_ops = {
	.open = echo_open,
	.close = echo_close,
	.notify = echo_notify,
	.save = echo_save,
	.restore = echo_restore,
};

int vmbus_echo_add(struct vmbus_server *s, uint32_t instance, struct vmbus_echo **out)
{
	struct vmbus_echo *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->instance = instance;
	struct vmbus_device_desc desc = {
		.class_id = VMBUS_ECHO_CLASS,
		/* The class GUID with the instance number in its first field. */
		.instance_id = HV_GUID(instance, 0x8e2b, 0x4f45, 0x9c, 0x3e, 0x68, 0x76, 0x6b,
				       0x69, 0x74, 0x02),
		.flags = 0,
		.name = "echo",
		.ops = &echo_ops,
		.dev = e,
	};
	int err = vmbus_server_add_device(s, &desc, &e->dev);
	if (err) {
		free(e);
		return err;
	}
	*out = e;
	return 0;
}

void vmbus_echo_remove(struct vmbus_server *s, struct vmbus_echo *e)
{
	if (!e)
		return;
	vmbus_server_remove_device(s, e->dev);
	free(e);
}

uint64_t vmbus_echo_packets(const struct vmbus_echo *e)
{
	return __atomic_load_n(&e->packets, __ATOMIC_RELAXED);
}
