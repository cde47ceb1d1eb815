/* SPDX-License-Identifier: MIT */
/*
 * hvkit-guest's disks and NICs (devices.h). The drivers do the work; this
 * is the process guest's use of them: it waits until what the host
 * offered is bound, then reads, sends and prints.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices.h"
#include "hvkit/vmbus_classes.h"
#include "netvsc.h"
#include "netvsc_selftest.h"
#include "process_guest.h"
#include "storvsc.h"

#define MAX_CONTROLLERS 8
#define MAX_FRAME (65521u + 14u)
/* How long a NIC's self-test waits for frames to come back: a loopback
 * returns them at once; other backends never do. */
#define SELFTEST_WAIT_NS 1000000000LL

struct nic_test {
	struct guest_devices *d;
	struct netvsc *nic;            /* the NIC reported, NULL: a free slot */
	uint8_t mac[6];
	uint32_t back, damaged, other; /* under d->lock */
	uint32_t seen;                 /* bit per self-test frame back */
};

struct guest_devices {
	struct vmbus_client *client;
	struct storvsc_driver *sd;
	struct netvsc_driver *nd;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct storvsc *controllers[MAX_CONTROLLERS]; /* under lock */
	uint32_t ncontrollers;
	uint32_t reported_controllers;
	uint32_t luns[MAX_CONTROLLERS]; /* bit per LUN reported */
	bool rescan;                    /* the host sent ENUMERATE_BUS (atomic) */
	struct nic_test nics[NETVSC_MAX_NICS];
};

/* ---- Disks ---- */

static void on_attached(void *ctx, struct storvsc *s)
{
	struct guest_devices *d = ctx;
	pthread_mutex_lock(&d->lock);
	if (d->ncontrollers < MAX_CONTROLLERS)
		d->controllers[d->ncontrollers++] = s;
	pthread_mutex_unlock(&d->lock);
}

static void on_detached(void *ctx, struct storvsc *s)
{
	struct guest_devices *d = ctx;
	pthread_mutex_lock(&d->lock);
	for (uint32_t i = 0; i < d->ncontrollers; i++)
		if (d->controllers[i] == s) {
			d->controllers[i] = d->controllers[--d->ncontrollers];
			d->luns[i] = d->luns[d->ncontrollers];
			if (d->reported_controllers > d->ncontrollers)
				d->reported_controllers = d->ncontrollers;
			break;
		}
	pthread_mutex_unlock(&d->lock);
}

/* Interrupt context: the rescan waits for process context. */
static void on_rescan_needed(void *ctx, struct storvsc *s)
{
	(void)s;
	__atomic_store_n(&((struct guest_devices *)ctx)->rescan, true, __ATOMIC_RELEASE);
}

/* Reads the first block into memory the host can reach (the port's). */
static int read_first_block(struct storvsc *s, const struct storvsc_disk *disk)
{
	const struct hv_port *port = storvsc_port(s);
	uint32_t pages = (disk->block_size + 4095) / 4096;
	void *buf = port->alloc_pages(port->ctx, pages);
	if (!buf)
		return -ENOMEM;
	int err = storvsc_read(s, disk->lun, 0, 1, buf);
	port->free_pages(port->ctx, buf, pages);
	return err;
}

static int report_disk(uint32_t index, struct storvsc *s, const struct storvsc_disk *disk)
{
	int err = read_first_block(s, disk);
	printf("guest: disk %u:%u: %llu MiB (%llu blocks of %u bytes), %s, serial '%s', "
	       "first block %s%s\n",
	       index, disk->lun, (unsigned long long)(disk->blocks * disk->block_size >> 20),
	       (unsigned long long)disk->blocks, disk->block_size,
	       disk->read_only ? "read-only" : "read-write", disk->serial,
	       err ? "read failed: " : "read", err ? strerror(-err) : "");
	return err != 0;
}

/* The LUNs present now, a bit each. */
static uint32_t lun_mask(struct storvsc *s)
{
	uint32_t mask = 0;
	struct storvsc_disk disk;
	for (uint8_t lun = 0; lun < STORVSC_MAX_DISKS; lun++)
		if (storvsc_disk(s, lun, &disk))
			mask |= 1u << lun;
	return mask;
}

static int report_controller(uint32_t index, struct storvsc *s)
{
	int failures = 0;
	struct storvsc_stats st;
	storvsc_get_stats(s, &st);
	uint32_t disks = 0;
	struct storvsc_disk disk;
	for (uint8_t lun = 0; lun < STORVSC_MAX_DISKS; lun++)
		disks += storvsc_disk(s, lun, &disk);
	printf("guest: scsi controller %u: VSTOR %u.%u, %u channel(s), %u disk(s)\n", index,
	       st.version >> 8, st.version & 0xff, st.channels, disks);
	for (uint8_t lun = 0; lun < STORVSC_MAX_DISKS; lun++)
		if (storvsc_disk(s, lun, &disk))
			failures += report_disk(index, s, &disk);
	return failures;
}

/* After ENUMERATE_BUS: the disks that came and went. */
static int rescan_controller(struct guest_devices *d, uint32_t index, struct storvsc *s)
{
	int failures = 0;
	pthread_mutex_lock(&d->lock);
	uint32_t before = d->luns[index];
	pthread_mutex_unlock(&d->lock);
	int err = storvsc_rescan(s);
	if (err) {
		printf("guest: scsi controller %u: rescan failed: %s\n", index, strerror(-err));
		return 1;
	}
	uint32_t now = lun_mask(s);
	struct storvsc_disk disk;
	for (uint8_t lun = 0; lun < STORVSC_MAX_DISKS; lun++) {
		if ((now & ~before) & (1u << lun) && storvsc_disk(s, lun, &disk))
			failures += report_disk(index, s, &disk);
		if ((before & ~now) & (1u << lun))
			printf("guest: disk %u:%u removed\n", index, lun);
	}
	pthread_mutex_lock(&d->lock);
	d->luns[index] = now;
	pthread_mutex_unlock(&d->lock);
	return failures;
}

/* ---- NICs ---- */

/* Interrupt context: count what comes back. */
static void on_frame(void *ctx, const void *frame, size_t len)
{
	struct nic_test *t = ctx;
	uint32_t seq;
	int r = netvsc_selftest_check(t->mac, frame, len, &seq);
	pthread_mutex_lock(&t->d->lock);
	if (r > 0 && seq < NETVSC_SELFTEST_FRAMES && !(t->seen & (1u << seq))) {
		t->seen |= 1u << seq;
		t->back++;
	} else if (r != 0) {
		t->damaged++; /* damaged, or a frame we never sent */
	} else {
		t->other++;
	}
	pthread_cond_broadcast(&t->d->changed);
	pthread_mutex_unlock(&t->d->lock);
}

static void on_link(void *ctx, bool up)
{
	(void)ctx;
	printf("guest: nic link %s\n", up ? "up" : "down");
}

static int send_frame(struct netvsc *n, const uint8_t *f, uint32_t len)
{
	for (int tries = 0; tries < 100000; tries++) {
		int err = netvsc_send(n, f, len);
		if (err != -EAGAIN)
			return err;
		nanosleep(&(struct timespec){0, 20000}, NULL);
	}
	return -ETIMEDOUT;
}

/* Sends the self-test frames and waits a while for them to come back. */
static int selftest(struct guest_devices *d, struct netvsc *n, struct nic_test *t,
		    uint32_t *sent)
{
	static uint8_t f[MAX_FRAME];
	*sent = 0;
	for (uint32_t seq = 0; seq < NETVSC_SELFTEST_FRAMES; seq++) {
		uint32_t len = netvsc_selftest_len(seq, netvsc_mtu(n));
		netvsc_selftest_frame(t->mac, seq, len, f);
		int err = send_frame(n, f, len);
		if (err)
			return err;
		(*sent)++;
	}
	struct timespec deadline = process_guest_deadline(SELFTEST_WAIT_NS);
	pthread_mutex_lock(&d->lock);
	while (t->back + t->damaged < *sent)
		if (pthread_cond_timedwait(&d->changed, &d->lock, &deadline))
			break;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int report_nic(struct guest_devices *d, uint32_t index, struct netvsc *n)
{
	struct nic_test *t = &d->nics[index];
	pthread_mutex_lock(&d->lock);
	*t = (struct nic_test){.d = d, .nic = n};
	pthread_mutex_unlock(&d->lock);
	netvsc_get_mac(n, t->mac);
	const struct netvsc_ops ops = {.rx = on_frame, .link = on_link, .ctx = t};
	int err = netvsc_open(n, &ops);
	struct netvsc_stats st;
	netvsc_get_stats(n, &st);
	const uint8_t *m = t->mac;
	printf("guest: nic %u: MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u, link %s, %u channel(s), "
	       "NVSP %u.%u\n",
	       index, m[0], m[1], m[2], m[3], m[4], m[5], netvsc_mtu(n),
	       netvsc_link_up(n) ? "up" : "down", st.channels, st.nvsp_version >> 16,
	       st.nvsp_version & 0xffff);
	if (err) {
		printf("guest: nic %u: open failed: %s\n", index, strerror(-err));
		return 1;
	}
	uint32_t sent;
	err = selftest(d, n, t, &sent);
	pthread_mutex_lock(&d->lock);
	uint32_t back = t->back, damaged = t->damaged;
	pthread_mutex_unlock(&d->lock);
	if (err) {
		printf("guest: nic %u: self-test send failed: %s\n", index, strerror(-err));
		return 1;
	}
	if (!back && !damaged) {
		printf("guest: nic %u: %u frames sent, none came back (not a loopback)\n", index,
		       sent);
		return 0;
	}
	printf("guest: nic %u: %u frames sent, %u came back intact, %u damaged\n", index, sent,
	       back, damaged);
	return back != sent || damaged;
}

/* ---- Binding ---- */

struct tally {
	uint32_t scsi, nics;  /* primaries offered */
	uint32_t unopened;    /* their channels not open yet */
};

static void count_channel(void *arg, const struct vmbus_client_channel_info *ci)
{
	struct tally *t = arg;
	static const struct hv_guid scsi = VMBUS_CLASS_SCSI, nic = VMBUS_CLASS_NIC;
	bool is_scsi = !memcmp(&ci->class_id, &scsi, sizeof(scsi));
	bool is_nic = !memcmp(&ci->class_id, &nic, sizeof(nic));
	if ((!is_scsi && !is_nic) || ci->state == VMBUS_CLIENT_RESCINDED)
		return;
	if (ci->sub_channel_index == 0) {
		t->scsi += is_scsi;
		t->nics += is_nic;
	}
	t->unopened += ci->state != VMBUS_CLIENT_OPEN;
}

bool guest_devices_settled(struct guest_devices *d)
{
	struct tally t = {0};
	vmbus_client_for_each_channel(d->client, count_channel, &t);
	pthread_mutex_lock(&d->lock);
	uint32_t controllers = d->ncontrollers;
	pthread_mutex_unlock(&d->lock);
	return !t.unopened && controllers >= t.scsi && netvsc_count(d->nd) >= t.nics;
}

/* Whether n is one of the NICs up now. */
static bool nic_present(struct guest_devices *d, const struct netvsc *n)
{
	for (uint32_t i = 0; i < netvsc_count(d->nd); i++)
		if (netvsc_nic(d->nd, i) == n)
			return true;
	return false;
}

int guest_devices_report(struct guest_devices *d)
{
	int failures = 0;
	bool rescan = __atomic_exchange_n(&d->rescan, false, __ATOMIC_ACQUIRE);
	pthread_mutex_lock(&d->lock);
	uint32_t n = d->ncontrollers, first = d->reported_controllers;
	struct storvsc *c[MAX_CONTROLLERS];
	memcpy(c, d->controllers, sizeof(c));
	d->reported_controllers = n;
	pthread_mutex_unlock(&d->lock);
	for (uint32_t i = 0; i < n; i++) {
		if (i >= first) {
			uint32_t mask = lun_mask(c[i]);
			pthread_mutex_lock(&d->lock);
			d->luns[i] = mask;
			pthread_mutex_unlock(&d->lock);
			failures += report_controller(i, c[i]);
		} else if (rescan) {
			failures += rescan_controller(d, i, c[i]);
		}
	}
	/* NICs gone free their slot; new ones take the first free one. */
	for (uint32_t i = 0; i < NETVSC_MAX_NICS; i++)
		if (d->nics[i].nic && !nic_present(d, d->nics[i].nic)) {
			printf("guest: nic %u removed\n", i);
			d->nics[i].nic = NULL;
		}
	for (uint32_t k = 0; k < netvsc_count(d->nd); k++) {
		struct netvsc *nic = netvsc_nic(d->nd, k);
		uint32_t slot = NETVSC_MAX_NICS, i;
		for (i = 0; i < NETVSC_MAX_NICS && d->nics[i].nic != nic; i++)
			if (!d->nics[i].nic && slot == NETVSC_MAX_NICS)
				slot = i;
		if (i == NETVSC_MAX_NICS && slot < NETVSC_MAX_NICS)
			failures += report_nic(d, slot, nic);
	}
	fflush(stdout);
	return failures;
}

struct guest_devices *guest_devices_new(struct vmbus_client *c, struct hv_guest *g, int *err)
{
	struct guest_devices *d = calloc(1, sizeof(*d));
	if (!d) {
		*err = -ENOMEM;
		return NULL;
	}
	d->client = c;
	pthread_mutex_init(&d->lock, NULL);
	process_guest_cond_init(&d->changed);
	/* Sub-channels as Linux asks for them: one per VP beyond the first. */
	const struct storvsc_config sc = {.sub_channels = UINT32_MAX,
					  .rescan_needed = on_rescan_needed,
					  .attached = on_attached,
					  .detached = on_detached,
					  .ctx = d};
	*err = storvsc_driver_register(c, g, &sc, &d->sd);
	if (!*err) {
		/* A channel per VP, as Linux caps them (netvsc_drv.c). */
		uint32_t vps = g->config.vp_count;
		const struct netvsc_config nc = {
			.max_channels = vps && vps < NETVSC_MAX_CHANNELS ? vps : NETVSC_MAX_CHANNELS};
		d->nd = netvsc_driver_new(c, &nc, err);
	}
	if (*err) {
		guest_devices_free(d);
		return NULL;
	}
	return d;
}

void guest_devices_free(struct guest_devices *d)
{
	if (!d)
		return;
	netvsc_driver_free(d->nd);
	storvsc_driver_free(d->sd);
	pthread_cond_destroy(&d->changed);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
