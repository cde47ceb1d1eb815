/* SPDX-License-Identifier: MIT */
/*
 * A hostile process-partition guest that speaks the protocol by hand.
 *
 *   hvkit-evil-guest SCENARIO
 *
 * Scenarios that break the protocol (the host must end the partition and
 * stay up): garbage, bad-magic, wrong-vp, oversized, with-fd, hello-twice,
 * no-hello. die-mid-call sends a request and exits without reading the
 * answer. hostile-args keeps to the protocol with hostile values and exits
 * 0 only if every answer is the right status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hvkit/proto/process.h"
#include "hvkit/tlfs.h"

static int control_fd;
static int vp0_sock = -1;
static uint64_t memory_size;
static int failures;

#define CHECK(cond, ...)                                                          \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "evil guest: check failed: " __VA_ARGS__); \
			fputc('\n', stderr);                                       \
			failures++;                                                \
		}                                                                  \
	} while (0)

static int send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	struct iovec iov = {(void *)buf, len};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds) {
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static struct hvkit_proc_request request(uint16_t op, uint64_t a0, uint64_t a1, uint64_t a2)
{
	static uint32_t seq;
	return (struct hvkit_proc_request){
		.magic = HVKIT_PROC_MAGIC, .op = op, .vp = 0, .seq = ++seq, .args = {a0, a1, a2}};
}

static int hello(void)
{
	struct hvkit_proc_request req = request(HVKIT_PROC_HELLO, HVKIT_PROC_VERSION, 0, 0);
	struct hvkit_proc_reply reply;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} control;
	struct iovec iov = {&reply, sizeof(reply)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf)};

	if (send_fds(control_fd, &req, sizeof(req), NULL, 0) < 0 ||
	    recvmsg(control_fd, &msg, 0) != sizeof(reply))
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || reply.values[1] != 1)
		return -1;
	int fds[4];
	memcpy(fds, CMSG_DATA(c), sizeof(fds)); /* memory, irq state, VP 0 socket, VP 0 irq */
	memory_size = reply.values[2];
	vp0_sock = fds[2];
	return 0;
}

/* One request on VP 0's socket and its reply. */
static int call(struct hvkit_proc_request req, struct hvkit_proc_reply *reply)
{
	if (send_fds(vp0_sock, &req, sizeof(req), NULL, 0) < 0)
		return -1;
	ssize_t n = recv(vp0_sock, reply, sizeof(*reply), 0);
	return n == sizeof(*reply) && reply->seq == req.seq ? 0 : -1;
}

static uint64_t hypercall(uint64_t control, uint64_t input, uint64_t output)
{
	struct hvkit_proc_reply reply;
	if (call(request(HVKIT_PROC_HYPERCALL, control, input, output), &reply))
		return UINT64_MAX;
	return reply.values[0] & HV_HYPERCALL_STATUS_MASK;
}

static uint16_t wrmsr(uint32_t msr, uint64_t value)
{
	struct hvkit_proc_reply reply;
	if (call(request(HVKIT_PROC_WRMSR, msr, value, 0), &reply))
		return UINT16_MAX;
	return reply.status;
}

static void hostile_args(void)
{
	struct hvkit_proc_reply reply;

	/* MSRs: pages outside RAM, unknown MSRs, MSRs outside the range. */
	CHECK(wrmsr(HV_MSR_GUEST_OS_ID, 1) == HVKIT_PROC_OK, "guest OS id");
	CHECK(wrmsr(HV_MSR_SIMP, memory_size | 1) == HVKIT_PROC_GP, "SIMP outside RAM");
	CHECK(wrmsr(HV_MSR_SIEFP, ~0xFFFull | 1) == HVKIT_PROC_GP, "SIEFP at the top");
	CHECK(wrmsr(HV_MSR_REFERENCE_TSC, (memory_size + 4096) | 1) == HVKIT_PROC_GP,
	      "TSC page outside RAM");
	CHECK(wrmsr(0x400001FFu, 5) == HVKIT_PROC_GP, "unknown synthetic MSR");
	CHECK(wrmsr(0x10u, 5) == HVKIT_PROC_GP, "a real MSR (TSC)");
	CHECK(wrmsr(HV_MSR_VP_INDEX, 3) == HVKIT_PROC_GP, "VP index is read-only");
	CHECK(call(request(HVKIT_PROC_RDMSR, 1ull << 40, 0, 0), &reply) == 0 &&
		      reply.status == HVKIT_PROC_GP,
	      "an MSR number over 32 bits");

	/* Hypercalls: GPAs outside RAM or unaligned, reserved bits, bad codes. */
	CHECK(hypercall(HVCALL_POST_MESSAGE, memory_size, 0) == HV_STATUS_INVALID_PARAMETER,
	      "post message input outside RAM");
	CHECK(hypercall(HVCALL_POST_MESSAGE, ~0xFFFull, 0) == HV_STATUS_INVALID_PARAMETER,
	      "post message input in the top page of the address space");
	CHECK(hypercall(HVCALL_POST_MESSAGE, 4097, 0) == HV_STATUS_INVALID_ALIGNMENT,
	      "unaligned input");
	CHECK(hypercall(HVCALL_POST_MESSAGE, 4096 - 8, 0) == HV_STATUS_INVALID_ALIGNMENT,
	      "input crossing a page");
	CHECK(hypercall(HVCALL_POST_MESSAGE | (1ull << 27), 4096, 0) ==
		      HV_STATUS_INVALID_HYPERCALL_INPUT,
	      "reserved control bits");
	CHECK(hypercall(HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, 0xFFFF000000000001ull, 0) ==
		      HV_STATUS_INVALID_HYPERCALL_INPUT,
	      "signal event reserved input bits");
	CHECK(hypercall(HVCALL_SIGNAL_EVENT | HV_HYPERCALL_FAST, 77, 0) ==
		      HV_STATUS_INVALID_CONNECTION_ID,
	      "signal to no connection");
	CHECK(hypercall(0x7777, 0, 0) == HV_STATUS_INVALID_HYPERCALL_CODE, "unknown code");

	/* Odd CPUID leaves, an unknown op, a huge connection id. */
	CHECK(call(request(HVKIT_PROC_CPUID, 0x4FFFFFFFull, 0, 0), &reply) == 0 &&
		      reply.status == HVKIT_PROC_OK && reply.values[0] == 0,
	      "CPUID past the Hyper-V leaves");
	CHECK(call(request(999, 0, 0, 0), &reply) == 0 && reply.status == HVKIT_PROC_BADREQ,
	      "unknown op");
	CHECK(call(request(HVKIT_PROC_EVENT_FD, ~0ull, 0, 0), &reply) == 0 &&
		      reply.status == HVKIT_PROC_NOENT,
	      "event fd of an impossible connection");
}

/* Breaks the protocol, then waits for the host to end us. */
static void break_protocol(const char *scenario)
{
	struct hvkit_proc_request req = request(HVKIT_PROC_RDMSR, HV_MSR_VP_INDEX, 0, 0);
	uint8_t big[sizeof(req) + 16] = {0};

	if (!strcmp(scenario, "garbage")) {
		send_fds(vp0_sock, "garbage", 7, NULL, 0);
	} else if (!strcmp(scenario, "bad-magic")) {
		req.magic ^= 1;
		send_fds(vp0_sock, &req, sizeof(req), NULL, 0);
	} else if (!strcmp(scenario, "wrong-vp")) {
		req.vp = 5;
		send_fds(vp0_sock, &req, sizeof(req), NULL, 0);
	} else if (!strcmp(scenario, "oversized")) {
		memcpy(big, &req, sizeof(req));
		send_fds(vp0_sock, big, sizeof(big), NULL, 0);
	} else if (!strcmp(scenario, "with-fd")) {
		int fd = eventfd(0, 0);
		send_fds(vp0_sock, &req, sizeof(req), &fd, 1);
	} else if (!strcmp(scenario, "hello-twice")) {
		req = request(HVKIT_PROC_HELLO, HVKIT_PROC_VERSION, 0, 0);
		send_fds(control_fd, &req, sizeof(req), NULL, 0);
	}
	/* The host kills us; should it not, give up after a while. */
	sleep(30);
}

int main(int argc, char **argv)
{
	const char *env = getenv(HVKIT_PROC_FD_ENV);
	if (argc < 2 || !env)
		return 2;
	control_fd = atoi(env);
	const char *scenario = argv[1];

	if (!strcmp(scenario, "no-hello"))
		return 0;
	if (hello()) {
		fprintf(stderr, "evil guest: HELLO failed\n");
		return 1;
	}
	if (!strcmp(scenario, "die-mid-call")) {
		struct hvkit_proc_request req = request(HVKIT_PROC_RDMSR, HV_MSR_VP_INDEX, 0, 0);
		send_fds(vp0_sock, &req, sizeof(req), NULL, 0);
		_exit(0);
	}
	if (!strcmp(scenario, "hostile-args")) {
		hostile_args();
		return failures ? 1 : 0;
	}
	break_protocol(scenario);
	return 0;
}
