/*
 * The single flight of identical exports (flight.h).  A slot is in the
 * air (busy) from join to land; waiters sleep on one condition variable
 * and, woken, see whether their slot still flies.  A slot is reused only when
 * nobody waits on it any more, so a waiter never mistakes a new flight for its
 * own.  Keys are kept as SHA-256 digests: fixed size, and a collision only
 * makes a caller wait and then look in the cache under its own key.  Owns its
 * table (its owner's lifetime: a snapshot's); keeps no key, only its digest.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "flight.h"

struct flight {
	unsigned char h[SHA256_DIGEST_LENGTH];
	int busy;
	unsigned waiters;
};

struct gw_flight {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct flight f[GW_FLIGHT_SLOTS];
};

struct gw_flight *
gw_flight_new(void)
{
	struct gw_flight *t = calloc(1, sizeof(*t));
	pthread_condattr_t ca;

	if (t == NULL)
		return NULL;
	if (pthread_condattr_init(&ca) != 0) {
		free(t);
		return NULL;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&t->cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		free(t);
		return NULL;
	}
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

void
gw_flight_free(struct gw_flight *t)
{
	if (t == NULL)
		return;
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static struct flight *
flight_find(struct gw_flight *t, const unsigned char *h)
{
	size_t i;

	for (i = 0; i < GW_FLIGHT_SLOTS; i++)
		if (t->f[i].busy &&
		    memcmp(t->f[i].h, h, sizeof(t->f[i].h)) == 0)
			return &t->f[i];
	return NULL;
}

enum gw_flight_rc
gw_flight_join(struct gw_flight *t, const char *key, int64_t wait_ms)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	struct flight *f;
	struct timespec until;
	enum gw_flight_rc rc = GW_FLIGHT_NONE;
	size_t i;

	if (t == NULL || key == NULL || gw_sha256(key, strlen(key), h) == -1)
		return GW_FLIGHT_NONE;
	if (wait_ms < 0)
		wait_ms = 0;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(wait_ms / 1000);
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&t->lock);
	f = flight_find(t, h);
	if (f == NULL) {
		for (i = 0; i < GW_FLIGHT_SLOTS; i++)
			if (!t->f[i].busy && t->f[i].waiters == 0)
				break;
		if (i < GW_FLIGHT_SLOTS) {
			memcpy(t->f[i].h, h, sizeof(h));
			t->f[i].busy = 1;
			rc = GW_FLIGHT_LEAD;
		}
		goto out;
	}
	f->waiters++;
	while (f->busy)
		if (pthread_cond_timedwait(&t->cv, &t->lock, &until) != 0)
			break; /* ETIMEDOUT */
	f->waiters--;
	rc = f->busy ? GW_FLIGHT_TIMEOUT : GW_FLIGHT_LANDED;
out:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void
gw_flight_land(struct gw_flight *t, const char *key)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	struct flight *f;

	if (t == NULL || key == NULL || gw_sha256(key, strlen(key), h) == -1)
		return;
	pthread_mutex_lock(&t->lock);
	f = flight_find(t, h);
	if (f != NULL)
		f->busy = 0;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->lock);
}
