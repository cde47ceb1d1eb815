/* SPDX-License-Identifier: MIT */
/* The partition interface: calls through the backend's table (partition.h). */
#include <errno.h>

#include "partition.h"

const char *partition_name(const struct partition *p)
{
	return p->ops->name;
}

int partition_launch(struct partition *p)
{
	return p->ops->launch(p);
}

int partition_wait(struct partition *p, int timeout_ms, int *status)
{
	return p->ops->wait(p, timeout_ms, status);
}

int partition_end_fd(struct partition *p)
{
	return p->ops->end_fd(p);
}

void partition_halt(struct partition *p)
{
	p->ops->halt(p);
}

void partition_stop(struct partition *p)
{
	p->ops->stop(p);
}

bool partition_failed(struct partition *p, char *why, size_t len)
{
	char ignored[1];
	if (!why)
		return p->ops->failed(p, ignored, sizeof(ignored));
	return p->ops->failed(p, why, len);
}

struct hv_partition *partition_hv(struct partition *p)
{
	return p->ops->hv(p);
}

void partition_lock(struct partition *p)
{
	p->ops->lock(p);
}

void partition_unlock(struct partition *p)
{
	p->ops->unlock(p);
}

uint64_t partition_now(struct partition *p)
{
	return p->ops->now(p);
}

const struct guest_memory *partition_memory(struct partition *p)
{
	return p->ops->memory(p);
}

int partition_interrupt(struct partition *p, uint32_t vp, uint8_t vector)
{
	return p->ops->interrupt(p, vp, vector);
}

/* The optional operations: lifecycle and snapshot work fills them in;
 * until a backend does, the answer is that it cannot. */

int partition_on_vp_threads(struct partition *p, int (*fn)(void *ctx), void *ctx)
{
	return p->ops->on_vp_threads ? p->ops->on_vp_threads(p, fn, ctx) : -ENOTSUP;
}

int partition_pause(struct partition *p)
{
	return p->ops->pause ? p->ops->pause(p) : -ENOTSUP;
}

int partition_resume(struct partition *p)
{
	return p->ops->resume ? p->ops->resume(p) : -ENOTSUP;
}

int partition_save(struct partition *p, void *buf, size_t *len)
{
	return p->ops->save ? p->ops->save(p, buf, len) : -ENOTSUP;
}

int partition_restore(struct partition *p, const void *buf, size_t len)
{
	return p->ops->restore ? p->ops->restore(p, buf, len) : -ENOTSUP;
}
