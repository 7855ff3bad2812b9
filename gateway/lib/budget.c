/*
 * Upstream budget and caches (budget.h).  Buckets count tokens in units
 * of 1/60000, so refill is exact integer arithmetic: per_minute tokens
 * per 60000 ms is per_minute units per ms.  Each bucket keeps the
 * times of its last per_minute grants with the caller that got each, so
 * a caller's use in the last minute is a count, and the callers seen in
 * the last minute (granted or refused) set the fair share.  Owns its
 * tables (process lifetime: they belong to the gateway, not a snapshot,
 * so a reload does not hand out a fresh budget).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"

#define BUCKET_KEY_MAX 160
#define CALLER_MAX     256
#define UNIT           GW_BUDGET_WINDOW_MS /* units per token */

struct grant {
	int64_t t;
	char caller[CALLER_MAX + 1];
};

struct seen {
	int64_t last;
	char caller[CALLER_MAX + 1];
};

struct bucket {
	char key[BUCKET_KEY_MAX + 1];
	int64_t units;        /* 1/60000 tokens, 0..per_minute * 60000 */
	int64_t at;           /* when units was last refilled */
	struct grant *grants; /* ring of per_minute */
	size_t next;
	struct seen seen[GW_BUDGET_CALLERS];
};

struct gw_budget {
	pthread_mutex_t lock;
	long long per_minute;
	struct bucket *b;
	size_t nb;
};

struct gw_budget *
gw_budget_new(long long per_minute)
{
	struct gw_budget *g = NULL;

	if (per_minute < 1 || per_minute > GW_BUDGET_PER_MINUTE)
		return NULL;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->b = calloc(GW_BUDGET_BUCKETS, sizeof(*g->b));
	if (g->b == NULL) {
		free(g);
		return NULL;
	}
	g->per_minute = per_minute;
	pthread_mutex_init(&g->lock, NULL);
	return g;
}

void
gw_budget_free(struct gw_budget *g)
{
	size_t i;

	if (g == NULL)
		return;
	for (i = 0; i < g->nb; i++)
		free(g->b[i].grants);
	free(g->b);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

static struct bucket *
bucket_get(struct gw_budget *g, const char *key, int64_t now)
{
	struct bucket *b;
	size_t i;

	for (i = 0; i < g->nb; i++)
		if (strcmp(g->b[i].key, key) == 0)
			return &g->b[i];
	if (g->nb == GW_BUDGET_BUCKETS)
		return NULL;
	b = &g->b[g->nb];
	b->grants = calloc((size_t)g->per_minute, sizeof(*b->grants));
	if (b->grants == NULL)
		return NULL;
	snprintf(b->key, sizeof(b->key), "%s", key);
	b->units = g->per_minute * UNIT; /* starts full */
	b->at = now;
	g->nb++;
	return b;
}

static void
refill(struct gw_budget *g, struct bucket *b, int64_t now)
{
	int64_t full = g->per_minute * UNIT, dt = now - b->at;

	if (dt <= 0)
		return; /* a clock going back refills nothing */
	if (dt >= GW_BUDGET_WINDOW_MS)
		b->units = full;
	else
		b->units += dt * g->per_minute;
	if (b->units > full)
		b->units = full;
	b->at = now;
}

/* Notes caller as active at now; returns how many are active. */
static size_t
see(struct bucket *b, const char *caller, int64_t now)
{
	struct seen *slot = NULL;
	size_t i, n = 0;

	for (i = 0; i < GW_BUDGET_CALLERS; i++) {
		struct seen *s = &b->seen[i];

		if (s->caller[0] != '\0' &&
		    now - s->last >= GW_BUDGET_WINDOW_MS)
			s->caller[0] = '\0';
		/* Its own slot wins over the first free one. */
		if ((s->caller[0] != '\0' && strcmp(s->caller, caller) == 0) ||
		    (slot == NULL && s->caller[0] == '\0'))
			slot = s;
	}
	if (slot != NULL) {
		snprintf(slot->caller, sizeof(slot->caller), "%s", caller);
		slot->last = now;
	}
	/* A full table: the newcomer still counts, unnamed. */
	for (i = 0; i < GW_BUDGET_CALLERS; i++)
		n += b->seen[i].caller[0] != '\0';
	return slot != NULL ? n : n + 1;
}

int
gw_budget_take(struct gw_budget *g, const char *bucket, const char *caller,
               int64_t now, int64_t *retry_ms)
{
	struct bucket *b;
	long long share, used = 0;
	int64_t oldest = -1, wait;
	size_t i, active;
	int rc = -1;

	*retry_ms = GW_BUDGET_WINDOW_MS;
	if (g == NULL || bucket == NULL || caller == NULL ||
	    strlen(bucket) > BUCKET_KEY_MAX || strlen(caller) > CALLER_MAX)
		return -1;
	pthread_mutex_lock(&g->lock);
	b = bucket_get(g, bucket, now);
	if (b == NULL)
		goto out;
	refill(g, b, now);
	active = see(b, caller, now);
	if (active == 0 || g->per_minute < 1) /* never: see() counts caller */
		goto out;
	share = (g->per_minute + (long long)active - 1) / (long long)active;
	for (i = 0; i < (size_t)g->per_minute; i++) {
		struct grant *gr = &b->grants[i];

		if (gr->caller[0] == '\0' ||
		    now - gr->t >= GW_BUDGET_WINDOW_MS ||
		    strcmp(gr->caller, caller) != 0)
			continue;
		used++;
		if (oldest == -1 || gr->t < oldest)
			oldest = gr->t;
	}
	if (used >= share) {
		*retry_ms = oldest + GW_BUDGET_WINDOW_MS - now;
		goto out;
	}
	if (b->units < UNIT) {
		/* Time to the next whole token, rounded up. */
		wait = (UNIT - b->units + g->per_minute - 1) / g->per_minute;
		*retry_ms = wait;
		goto out;
	}
	b->units -= UNIT;
	b->grants[b->next].t = now;
	snprintf(b->grants[b->next].caller, sizeof(b->grants[0].caller), "%s",
	         caller);
	b->next = (b->next + 1) % (size_t)g->per_minute;
	rc = 0;
out:
	if (*retry_ms < 1)
		*retry_ms = 1;
	pthread_mutex_unlock(&g->lock);
	return rc;
}

void
gw_budget_refund(struct gw_budget *g, const char *bucket, const char *caller)
{
	struct bucket *b = NULL;
	struct grant *gr, *latest = NULL;
	size_t i;

	if (g == NULL || bucket == NULL || caller == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	for (i = 0; i < g->nb; i++)
		if (strcmp(g->b[i].key, bucket) == 0)
			b = &g->b[i];
	for (i = 0; b != NULL && i < (size_t)g->per_minute; i++) {
		gr = &b->grants[i];
		if (gr->caller[0] != '\0' && strcmp(gr->caller, caller) == 0 &&
		    (latest == NULL || gr->t > latest->t))
			latest = gr;
	}
	if (latest != NULL) {
		latest->caller[0] = '\0';
		b->units += UNIT;
		if (b->units > g->per_minute * UNIT)
			b->units = g->per_minute * UNIT;
	}
	pthread_mutex_unlock(&g->lock);
}

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
