/* SPDX-License-Identifier: MIT */
/*
 * hvkit run. Until the VMM exists this runs a VMBus channel loopback on the
 * ring engine, laid out as a real channel is: one shared memory object
 * holding the guest-to-host ring then the host-to-guest ring, each side
 * mapping it on its own (mirrored), signals as eventfds. The guest thread
 * sends in-band and GPA-direct requests asking for completion; the host
 * thread answers each with a completion carrying a digest of what it read;
 * the guest checks every answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "hvkit_cmd.h"
#include "ring_buffer.h"
#include "ring_map.h"

#define WAIT_TIMEOUT_MS 10000
#define MAX_PAYLOAD 2048

struct channel_end {
	struct vmbus_ring_mapping out_map, in_map;
	struct vmbus_ring_writer out;
	struct vmbus_ring_reader in;
};

struct loopback {
	int memfd;
	uint32_t ring_pages;
	uint64_t packets;
	int to_host, to_guest; /* eventfds: "interrupts" */
	struct channel_end guest, host;
	uint64_t inband, gpa_direct, verified;
	const char *error;
};

/* FNV-1a: the digest the host returns for what it read. */
static uint64_t digest(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001B3ull;
	return h;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static bool wait_fd(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t count;

	if (poll(&p, 1, WAIT_TIMEOUT_MS) != 1)
		return false;
	return read(fd, &count, sizeof(count)) == sizeof(count);
}

/* Maps one side's view: page offsets [first, first + pages) of the memfd. */
static int map_ring(int fd, uint32_t first, uint32_t pages, struct vmbus_ring_mapping *map,
		    struct vmbus_ring_mem *mem)
{
	uint64_t *offsets = malloc(sizeof(*offsets) * pages);
	if (!offsets)
		return -ENOMEM;
	for (uint32_t i = 0; i < pages; i++)
		offsets[i] = (uint64_t)(first + i) * HV_PAGE_SIZE;
	int err = vmbus_ring_map(fd, offsets, pages, map, mem);
	free(offsets);
	return err;
}

/* The guest allocates and initialises both rings; the host attaches. */
static int open_end(struct loopback *lb, struct channel_end *end, bool guest)
{
	struct vmbus_ring_mem out_mem, in_mem;
	uint32_t out_first = guest ? 0 : lb->ring_pages;
	uint32_t in_first = guest ? lb->ring_pages : 0;
	int err = map_ring(lb->memfd, out_first, lb->ring_pages, &end->out_map, &out_mem);
	if (!err)
		err = map_ring(lb->memfd, in_first, lb->ring_pages, &end->in_map, &in_mem);
	if (err)
		return err;
	if (guest) {
		vmbus_ring_mem_reset(&out_mem);
		vmbus_ring_mem_reset(&in_mem);
	}
	err = vmbus_ring_writer_attach(&end->out, &out_mem);
	return err ? err : vmbus_ring_reader_attach(&end->in, &in_mem);
}

static void close_end(struct channel_end *end)
{
	vmbus_ring_unmap(&end->out_map);
	vmbus_ring_unmap(&end->in_map);
}

/* Sends one packet, waiting for room as a blocked writer does. */
static bool send_or_wait(struct loopback *lb, struct channel_end *end, int my_fd, int peer_fd,
			 int (*put)(struct vmbus_ring_writer *, void *, uint32_t *), void *arg)
{
	uint32_t needed;
	int err;

	while ((err = put(&end->out, arg, &needed)) == -EAGAIN) {
		if (vmbus_ring_publish(&end->out))
			signal_fd(peer_fd);
		if (!vmbus_ring_writer_want_space(&end->out, needed) && !wait_fd(my_fd)) {
			lb->error = "timed out waiting for ring space";
			return false;
		}
	}
	vmbus_ring_writer_space_done(&end->out);
	if (err) {
		lb->error = "ring write failed";
		return false;
	}
	return true;
}

struct request {
	uint64_t id;
	uint8_t payload[MAX_PAYLOAD];
	uint32_t len;
	uint64_t pfns[3];
	struct vmbus_gpa_range_out ranges[2];
	uint32_t nranges;
};

static void make_request(uint64_t id, struct request *rq)
{
	uint64_t x = id * 0x9E3779B97F4A7C15ull + 1;
	rq->id = id;
	rq->len = 1 + (uint32_t)(x % MAX_PAYLOAD);
	for (uint32_t i = 0; i < rq->len; i++)
		rq->payload[i] = (uint8_t)(x >> (i % 56));
	rq->nranges = id % 4 == 0 ? 2 : 0; /* every fourth request is GPA-direct */
	for (uint32_t i = 0; i < 3; i++)
		rq->pfns[i] = 0x1000 + id + i;
	rq->ranges[0] = (struct vmbus_gpa_range_out){4096, 0, &rq->pfns[0]};
	rq->ranges[1] = (struct vmbus_gpa_range_out){5000, 100, &rq->pfns[1]};
}

/* What the host must answer for a request. */
static uint64_t expected_digest(const struct request *rq)
{
	uint64_t h = digest(0xCBF29CE484222325ull, rq->payload, rq->len);
	for (uint32_t i = 0; i < rq->nranges; i++)
		h = digest(h, &rq->pfns[i], sizeof(uint64_t)); /* first PFN of each range */
	return h;
}

static int put_request(struct vmbus_ring_writer *w, void *arg, uint32_t *needed)
{
	struct request *rq = arg;
	/* The length goes first so the host knows the payload from the padding. */
	uint8_t msg[4 + MAX_PAYLOAD];
	memcpy(msg, &rq->len, 4);
	memcpy(msg + 4, rq->payload, rq->len);
	if (rq->nranges)
		return vmbus_ring_put_gpa_direct(w, rq->id, rq->ranges, rq->nranges, msg,
						 4 + rq->len, needed);
	struct vmbus_ring_iov iov = {msg, 4 + rq->len};
	return vmbus_ring_put_inband(w, rq->id, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, &iov, 1,
				     needed);
}

struct completion {
	uint64_t id;
	uint64_t digest;
};

static int put_completion(struct vmbus_ring_writer *w, void *arg, uint32_t *needed)
{
	struct completion *c = arg;
	return vmbus_ring_put_completion(w, c->id, &c->digest, sizeof(c->digest), needed);
}

/* The host side's view of one request: everything checked before use. */
static bool host_digest(const struct vmbus_packet *pkt, uint64_t *out)
{
	uint32_t len;

	if (pkt->data_len < 4)
		return false;
	memcpy(&len, pkt->data, 4);
	if (len > pkt->data_len - 4)
		return false;
	uint64_t h = digest(0xCBF29CE484222325ull, pkt->data + 4, len);
	if (pkt->type == VMBUS_PKT_DATA_USING_GPA_DIRECT) {
		struct vmbus_gpa_range_iter it;
		struct vmbus_gpa_range_in r;
		int more;
		if (vmbus_gpa_ranges_begin(pkt, &it))
			return false;
		while ((more = vmbus_gpa_ranges_next(&it, &r)) == 1) {
			uint64_t pfn = vmbus_gpa_range_pfn(&r, 0);
			h = digest(h, &pfn, sizeof(pfn));
		}
		if (more < 0)
			return false;
	} else if (pkt->type != VMBUS_PKT_DATA_INBAND) {
		return false;
	}
	*out = h;
	return true;
}

/* Makes a batch visible both ways: our answers and the space we freed. A
 * reader that never commits starves its writer however fast it reads. */
static void end_batch(struct channel_end *end, int peer_fd)
{
	bool signal = vmbus_ring_publish(&end->out);
	if (vmbus_ring_commit(&end->in))
		signal = true;
	if (signal)
		signal_fd(peer_fd);
}

#define BATCH 32

static void *host_thread(void *arg)
{
	struct loopback *lb = arg;
	struct channel_end *end = &lb->host;
	static uint8_t buf[4 * HV_PAGE_SIZE];
	uint64_t answered = 0;

	vmbus_ring_reader_mask(&end->in);
	while (answered < lb->packets && !lb->error) {
		struct vmbus_packet pkt;
		int err = vmbus_ring_recv(&end->in, buf, sizeof(buf), &pkt);
		if (err == -EAGAIN) {
			end_batch(end, lb->to_guest);
			if (!vmbus_ring_reader_unmask(&end->in) && !wait_fd(lb->to_host))
				lb->error = "host: timed out waiting for requests";
			vmbus_ring_reader_mask(&end->in);
			continue;
		}
		struct completion c = {pkt.trans_id, 0};
		if (err || !host_digest(&pkt, &c.digest)) {
			lb->error = "host: malformed request";
			break;
		}
		if (!send_or_wait(lb, end, lb->to_host, lb->to_guest, put_completion, &c))
			break;
		if (++answered % BATCH == 0)
			end_batch(end, lb->to_guest);
	}
	end_batch(end, lb->to_guest);
	return NULL;
}

static void *guest_thread(void *arg)
{
	struct loopback *lb = arg;
	struct channel_end *end = &lb->guest;
	static struct request rq;
	static uint8_t buf[HV_PAGE_SIZE];
	uint64_t sent = 0;

	vmbus_ring_reader_mask(&end->in);
	while (lb->verified < lb->packets && !lb->error) {
		/* Send while there is room; each send is published at once, as
		 * Linux's vmbus_sendpacket does. */
		if (sent < lb->packets && sent - lb->verified < 64) {
			make_request(sent, &rq);
			if (!send_or_wait(lb, end, lb->to_guest, lb->to_host, put_request, &rq))
				break;
			if (vmbus_ring_publish(&end->out))
				signal_fd(lb->to_host);
			if (rq.nranges)
				lb->gpa_direct++;
			else
				lb->inband++;
			sent++;
			continue;
		}
		struct vmbus_packet pkt;
		int err = vmbus_ring_recv(&end->in, buf, sizeof(buf), &pkt);
		if (err == -EAGAIN) {
			if (vmbus_ring_commit(&end->in))
				signal_fd(lb->to_host);
			if (!vmbus_ring_reader_unmask(&end->in) && !wait_fd(lb->to_guest))
				lb->error = "guest: timed out waiting for completions";
			vmbus_ring_reader_mask(&end->in);
			continue;
		}
		uint64_t got;
		if (err || pkt.type != VMBUS_PKT_COMP || pkt.trans_id != lb->verified ||
		    pkt.data_len < sizeof(got)) {
			lb->error = "guest: unexpected completion";
			break;
		}
		memcpy(&got, pkt.data, sizeof(got));
		make_request(lb->verified, &rq);
		if (got != expected_digest(&rq)) {
			lb->error = "guest: completion digest differs";
			break;
		}
		if (++lb->verified % BATCH == 0 && vmbus_ring_commit(&end->in))
			signal_fd(lb->to_host);
	}
	vmbus_ring_commit(&end->in);
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: hvkit run [--packets N] [--ring-kib N]\n"
		     "  --packets N   requests to send and verify (default 200000)\n"
		     "  --ring-kib N  data area of each ring in KiB (default 64)\n");
}

static void print_direction(const char *name, const struct vmbus_ring_writer *w,
			    const struct vmbus_ring_reader *r)
{
	printf("  %-12s %10llu %12llu %9llu %9llu %8llu\n", name,
	       (unsigned long long)w->stats.packets, (unsigned long long)w->stats.bytes,
	       (unsigned long long)w->stats.publishes, (unsigned long long)w->stats.signals,
	       (unsigned long long)(r->stats.corrupt + w->stats.corrupt));
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"packets", required_argument, NULL, 'n'},
		{"ring-kib", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned long packets = 200000, ring_kib = 64;
	int c;

	while ((c = getopt_long(argc, argv, "n:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			packets = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			ring_kib = strtoul(optarg, NULL, 0);
			break;
		default:
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (packets == 0 || ring_kib < 16 || ring_kib % 4 || ring_kib > 65536) {
		fprintf(stderr, "hvkit run: --packets must be > 0 and --ring-kib a multiple of 4 "
				"from 16 to 65536\n");
		return 2;
	}

	struct loopback *lb = calloc(1, sizeof(*lb));
	if (!lb)
		return 1;
	lb->packets = packets;
	lb->ring_pages = (uint32_t)(ring_kib / 4 + 1);
	lb->memfd = memfd_create("hvkit-channel", MFD_CLOEXEC);
	lb->to_host = eventfd(0, EFD_CLOEXEC);
	lb->to_guest = eventfd(0, EFD_CLOEXEC);
	int err = 0;
	if (lb->memfd < 0 || lb->to_host < 0 || lb->to_guest < 0 ||
	    ftruncate(lb->memfd, (off_t)2 * lb->ring_pages * HV_PAGE_SIZE) < 0)
		err = -errno;
	if (!err)
		err = open_end(lb, &lb->guest, true);
	if (!err)
		err = open_end(lb, &lb->host, false);
	if (err) {
		fprintf(stderr, "hvkit run: cannot set up the channel: %s\n", strerror(-err));
		return 1;
	}

	printf("hvkit: the VMM is not built yet, so 'run' exercises a VMBus channel on the ring "
	       "engine:\n"
	       "  two %lu KiB rings in one shared memfd, guest and host each mapping it on "
	       "their own\n\n",
	       ring_kib);
	struct timespec t0, t1;
	pthread_t host, guest;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&host, NULL, host_thread, lb);
	pthread_create(&guest, NULL, guest_thread, lb);
	pthread_join(guest, NULL);
	if (lb->error) /* unblock the host if the guest gave up */
		signal_fd(lb->to_host);
	pthread_join(host, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

	printf("  %-12s %10s %12s %9s %9s %8s\n", "direction", "packets", "ring bytes",
	       "publishes", "signals", "corrupt");
	print_direction("guest->host", &lb->guest.out, &lb->host.in);
	print_direction("host->guest", &lb->host.out, &lb->guest.in);
	int status = 0;
	if (lb->error) {
		printf("\nFAILED after %llu verified requests: %s\n",
		       (unsigned long long)lb->verified, lb->error);
		status = 1;
	} else {
		printf("\n%llu requests (%llu in-band, %llu GPA-direct) answered and verified in "
		       "%.2f s\n",
		       (unsigned long long)lb->verified, (unsigned long long)lb->inband,
		       (unsigned long long)lb->gpa_direct, seconds);
	}
	close_end(&lb->guest);
	close_end(&lb->host);
	close(lb->memfd);
	close(lb->to_host);
	close(lb->to_guest);
	free(lb);
	return status;
}
