/* SPDX-License-Identifier: MIT */
/*
 * The default KVP store: pools of UTF-8 key/value pairs in memory, in
 * insertion order (the order enumeration walks), as hv_kvp_daemon keeps
 * its pool files. Thread-safe: a spin on an atomic flag, since callbacks
 * come from interrupt context and the guest reads from process context.
 */
#include <errno.h>
#include <string.h>

#include "ic_guest.h"

struct kvp_entry {
	char key[IC_KVP_MAX_KEY_SIZE * 3 / 2];
	char value[IC_KVP_MAX_VALUE_SIZE * 3 / 2];
};

struct ic_kvp_store {
	const struct hv_port *port; /* entries come from its heap */
	int busy;
	uint32_t count[IC_KVP_POOL_COUNT];
	struct kvp_entry *e[IC_KVP_POOL_COUNT][IC_KVP_STORE_MAX];
};

static void take(struct ic_kvp_store *s)
{
	while (__atomic_exchange_n(&s->busy, 1, __ATOMIC_ACQUIRE))
		;
}

static void give(struct ic_kvp_store *s)
{
	__atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
}

struct ic_kvp_store *ic_kvp_store_new(const struct hv_port *port)
{
	struct ic_kvp_store *s = port->alloc(port->ctx, sizeof(*s));
	if (s)
		s->port = port;
	return s;
}

static struct kvp_entry *entry_new(struct ic_kvp_store *s)
{
	return s->port->alloc(s->port->ctx, sizeof(struct kvp_entry));
}

static void entry_free(struct ic_kvp_store *s, struct kvp_entry *e)
{
	s->port->free(s->port->ctx, e, sizeof(*e));
}

void ic_kvp_store_free(struct ic_kvp_store *s)
{
	if (!s)
		return;
	for (int p = 0; p < IC_KVP_POOL_COUNT; p++)
		for (uint32_t i = 0; i < s->count[p]; i++)
			entry_free(s, s->e[p][i]);
	s->port->free(s->port->ctx, s, sizeof(*s));
}

static int find(struct ic_kvp_store *s, uint32_t pool, const char *key)
{
	for (uint32_t i = 0; i < s->count[pool]; i++)
		if (!strcmp(s->e[pool][i]->key, key))
			return (int)i;
	return -1;
}

int ic_kvp_store_set(void *store, uint32_t pool, const char *key, const char *value)
{
	struct ic_kvp_store *s = store;
	if (pool >= IC_KVP_POOL_COUNT || strlen(key) >= sizeof(s->e[0][0]->key) ||
	    strlen(value) >= sizeof(s->e[0][0]->value) || !key[0])
		return -EINVAL;
	take(s);
	int i = find(s, pool, key);
	int err = 0;
	if (i < 0) {
		struct kvp_entry *e = s->count[pool] < IC_KVP_STORE_MAX ? entry_new(s) : NULL;
		if (!e) {
			err = -ENOSPC;
		} else {
			strcpy(e->key, key);
			s->e[pool][s->count[pool]++] = e;
			i = (int)s->count[pool] - 1;
		}
	}
	if (!err)
		strcpy(s->e[pool][i]->value, value);
	give(s);
	return err;
}

int ic_kvp_store_get(void *store, uint32_t pool, const char *key, char *value, size_t size)
{
	struct ic_kvp_store *s = store;
	if (pool >= IC_KVP_POOL_COUNT)
		return -EINVAL;
	take(s);
	int i = find(s, pool, key);
	int err = i < 0 ? -ENOENT : strlen(s->e[pool][i]->value) >= size ? -ENAMETOOLONG : 0;
	if (!err)
		strcpy(value, s->e[pool][i]->value);
	give(s);
	return err;
}

int ic_kvp_store_delete(void *store, uint32_t pool, const char *key)
{
	struct ic_kvp_store *s = store;
	if (pool >= IC_KVP_POOL_COUNT)
		return -EINVAL;
	take(s);
	int i = find(s, pool, key);
	if (i >= 0) {
		entry_free(s, s->e[pool][i]);
		memmove(&s->e[pool][i], &s->e[pool][i + 1],
			(s->count[pool] - (uint32_t)i - 1) * sizeof(s->e[pool][0]));
		s->count[pool]--;
	}
	give(s);
	return i < 0 ? -ENOENT : 0;
}

int ic_kvp_store_enumerate(void *store, uint32_t pool, uint32_t index, char *key,
			   size_t ksize, char *value, size_t vsize)
{
	struct ic_kvp_store *s = store;
	if (pool >= IC_KVP_POOL_COUNT)
		return -EINVAL;
	take(s);
	int err = index >= s->count[pool] ? -ENOENT : 0;
	if (!err && (strlen(s->e[pool][index]->key) >= ksize ||
		     strlen(s->e[pool][index]->value) >= vsize))
		err = -ENAMETOOLONG;
	if (!err) {
		strcpy(key, s->e[pool][index]->key);
		strcpy(value, s->e[pool][index]->value);
	}
	give(s);
	return err;
}
