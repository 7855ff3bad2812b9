/*
 * The small TTL caches that save budget (cache.h): a fixed table of
 * GW_CACHE_ENTRIES copied key/value pairs under one mutex, the entry
 * nearest expiry evicted when full.  Owns its copies (freed with the
 * cache, whose owner is a snapshot or the gateway); never sees a secret
 * (callers key by the redacted request).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

struct centry {
	char *key;
	char *value;
	int64_t expires;
};

struct gw_cache {
	pthread_mutex_t lock;
	struct centry e[GW_CACHE_ENTRIES];
};

struct gw_cache *
gw_cache_new(void)
{
	struct gw_cache *c = calloc(1, sizeof(struct gw_cache));

	if (c != NULL)
		pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void
centry_clear(struct centry *e)
{
	free(e->key);
	free(e->value);
	memset(e, 0, sizeof(*e));
}

void
gw_cache_free(struct gw_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < GW_CACHE_ENTRIES; i++)
		centry_clear(&c->e[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static struct centry *
cfind(struct gw_cache *c, const char *key)
{
	size_t i;

	for (i = 0; i < GW_CACHE_ENTRIES; i++)
		if (c->e[i].key != NULL && strcmp(c->e[i].key, key) == 0)
			return &c->e[i];
	return NULL;
}

char *
gw_cache_get(struct gw_cache *c, const char *key, int64_t now)
{
	struct centry *e;
	char *v = NULL;

	if (c == NULL || key == NULL)
		return NULL;
	pthread_mutex_lock(&c->lock);
	e = cfind(c, key);
	if (e != NULL && now < e->expires)
		v = strdup(e->value);
	pthread_mutex_unlock(&c->lock);
	return v;
}

int
gw_cache_put(struct gw_cache *c, const char *key, const char *value,
             int64_t now, int64_t ttl, int add_only)
{
	struct centry *e, *victim = NULL;
	char *k = NULL, *v = NULL;
	size_t i;
	int rc = -1;

	if (c == NULL || key == NULL || value == NULL || ttl < 1 ||
	    strnlen(key, GW_CACHE_KEY_MAX + 1) > GW_CACHE_KEY_MAX ||
	    strnlen(value, GW_CACHE_VALUE_MAX + 1) > GW_CACHE_VALUE_MAX)
		return -1;
	k = strdup(key);
	v = strdup(value);
	if (k == NULL || v == NULL)
		goto out;
	pthread_mutex_lock(&c->lock);
	e = cfind(c, key);
	if (e != NULL && add_only && now < e->expires) {
		pthread_mutex_unlock(&c->lock);
		rc = 1;
		goto out;
	}
	if (e == NULL)
		for (i = 0; i < GW_CACHE_ENTRIES; i++) {
			struct centry *x = &c->e[i];

			if (x->key == NULL || now >= x->expires) {
				victim = x;
				break;
			}
			if (victim == NULL || x->expires < victim->expires)
				victim = x;
		}
	else
		victim = e;
	centry_clear(victim);
	victim->key = k;
	victim->value = v;
	victim->expires = now + ttl;
	k = v = NULL;
	pthread_mutex_unlock(&c->lock);
	rc = 0;
out:
	free(k);
	free(v);
	return rc;
}
