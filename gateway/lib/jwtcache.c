/*
 * The verified-token cache (jwtcache.h).  Set-associative: the digest picks
 * one set of WAYS entries, and a lookup or an insert touches that set only,
 * under one of NLOCKS mutexes striped over the sets.  A flood of distinct
 * tokens therefore spreads over NLOCKS locks, each held for a scan of WAYS
 * 32-byte digests, never for a signature check: no lock convoy, and no
 * global LRU list to serialise on.  Eviction is LRU within the set.
 *
 * Only verified tokens are inserted (jwtv.c), so an attacker without a
 * signing key cannot evict a good entry: failures are never cached.
 *
 * Claims are handed out by reference (claims.h `refs`): a hit costs an
 * atomic increment, and an entry evicted while a request still reads its
 * claims stays alive until that request frees them.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "jwtcache.h"

#define WAYS   8  /* entries per set: one scan is 8 memcmp of 32 bytes */
#define NLOCKS 64 /* lock stripes: more than any sane thread count */

struct entry {
	unsigned char key[GW_JWTC_KEY_LEN];
	struct gw_claims *claims; /* NULL: free */
	uint64_t keytag;          /* the key that verified it (jwks.h) */
	uint64_t used;            /* the stripe's tick at the last use */
};

struct stripe {
	pthread_mutex_t mu;
	uint64_t tick;
	uint64_t hits;
	uint64_t misses;
	/* Pad to a cache line so neighbouring stripes do not share one. */
	char pad[64];
};

struct gw_jwt_cache {
	struct entry *e; /* nsets * WAYS */
	size_t nsets;
	struct stripe lk[NLOCKS];
};

/* A new cache of about entries entries, or NULL. */
struct gw_jwt_cache *
gw_jwtc_new(size_t entries)
{
	struct gw_jwt_cache *c = NULL, *ret = NULL;
	size_t i, ninit = 0;

	if (entries == 0 || entries > GW_JWTC_MAX)
		goto out;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto out;
	c->nsets = (entries + WAYS - 1) / WAYS;
	c->e = calloc(c->nsets * WAYS, sizeof(*c->e));
	if (c->e == NULL)
		goto out;
	for (ninit = 0; ninit < NLOCKS; ninit++)
		if (pthread_mutex_init(&c->lk[ninit].mu, NULL) != 0)
			goto out;
	ret = c;
	c = NULL;
out:
	if (c != NULL) {
		for (i = 0; i < ninit; i++)
			pthread_mutex_destroy(&c->lk[i].mu);
		free(c->e);
		free(c);
	}
	return ret;
}

/* Frees the cache and its references; accepts NULL. */
void
gw_jwtc_free(struct gw_jwt_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nsets * WAYS; i++)
		gw_claims_free(c->e[i].claims);
	for (i = 0; i < NLOCKS; i++)
		pthread_mutex_destroy(&c->lk[i].mu);
	free(c->e);
	free(c);
}

/* The set a digest falls into: its first 8 bytes, uniform by SHA-256. */
static size_t
set_of(const struct gw_jwt_cache *c, const unsigned char *key)
{
	uint64_t h = 0;
	size_t i;

	for (i = 0; i < 8; i++)
		h = (h << 8) | key[i];
	return (size_t)(h % c->nsets);
}

/* A new reference to the cached claims, or NULL. */
struct gw_claims *
gw_jwtc_get(struct gw_jwt_cache *c, const unsigned char key[GW_JWTC_KEY_LEN],
            uint64_t *keytag)
{
	struct gw_claims *ret = NULL;
	struct stripe *s;
	struct entry *set;
	size_t i, si;

	if (c == NULL)
		return NULL;
	si = set_of(c, key);
	set = &c->e[si * WAYS];
	s = &c->lk[si % NLOCKS];
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < WAYS; i++) {
		if (set[i].claims == NULL ||
		    memcmp(set[i].key, key, GW_JWTC_KEY_LEN) != 0)
			continue;
		set[i].used = ++s->tick;
		ret = gw_claims_ref(set[i].claims);
		*keytag = set[i].keytag;
		break;
	}
	if (ret != NULL)
		s->hits++;
	else
		s->misses++;
	pthread_mutex_unlock(&s->mu);
	return ret;
}

/* Caches claims under key (a new reference), evicting within the set. */
void
gw_jwtc_put(struct gw_jwt_cache *c, const unsigned char key[GW_JWTC_KEY_LEN],
            struct gw_claims *cl, uint64_t keytag, int64_t dead_before)
{
	struct gw_claims *old = NULL;
	struct stripe *s;
	struct entry *set, *victim = NULL;
	size_t i, si;

	if (c == NULL || cl == NULL)
		return;
	si = set_of(c, key);
	set = &c->e[si * WAYS];
	s = &c->lk[si % NLOCKS];
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < WAYS; i++)
		/* Two requests verified the same token: keep the first. */
		if (set[i].claims != NULL &&
		    memcmp(set[i].key, key, GW_JWTC_KEY_LEN) == 0)
			goto unlock;
	for (i = 0; i < WAYS && victim == NULL; i++)
		if (set[i].claims == NULL || set[i].claims->exp < dead_before)
			victim = &set[i];
	if (victim == NULL) {
		victim = &set[0];
		for (i = 1; i < WAYS; i++)
			if (set[i].used < victim->used)
				victim = &set[i];
	}
	old = victim->claims;
	memcpy(victim->key, key, GW_JWTC_KEY_LEN);
	victim->claims = gw_claims_ref(cl);
	victim->keytag = keytag;
	victim->used = ++s->tick;
unlock:
	pthread_mutex_unlock(&s->mu);
	/* The last reference may be ours: free outside the lock. */
	gw_claims_free(old);
}

/* Sums hits and misses over the stripes. */
void
gw_jwtc_stats(struct gw_jwt_cache *c, uint64_t *hits, uint64_t *misses)
{
	uint64_t h = 0, m = 0;
	size_t i;

	for (i = 0; c != NULL && i < NLOCKS; i++) {
		pthread_mutex_lock(&c->lk[i].mu);
		h += c->lk[i].hits;
		m += c->lk[i].misses;
		pthread_mutex_unlock(&c->lk[i].mu);
	}
	if (hits != NULL)
		*hits = h;
	if (misses != NULL)
		*misses = m;
}
