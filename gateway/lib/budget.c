/*
 * Upstream budget (budget.h).  Each bucket is a sliding-window
 * log: per_minute slots holding its last grants' times (a grant's time
 * moves to its call's completion, gw_budget_done), each with the caller
 * that got it.  A call is granted only while fewer than per_minute of
 * those grants lie in the last 60 s, so no 60-second window, however it
 * is placed, ever holds more than per_minute calls: safe whether HSS
 * counts per calendar minute or per sliding minute (a token bucket
 * holding per_minute tokens let a full bucket plus its refill through:
 * up to 2 * per_minute - 1 calls in one window, issue #14).  The same
 * log gives each caller's use for the fair shares, and the callers seen
 * in the last minute (granted or refused) set the share.  Owns its
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

int
gw_budget_caller_key(const char *iss, const char *who,
                     char out[GW_BUDGET_CALLER_KEY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	size_t li = strlen(iss), lw = strlen(who), i;
	char *buf;
	int rc;

	out[0] = '\0';
	buf = malloc(li + 1 + lw);
	if (buf == NULL)
		return -1;
	memcpy(buf, iss, li);
	buf[li] = '\0';
	memcpy(buf + li + 1, who, lw);
	rc = gw_sha256(buf, li + 1 + lw, md);
	free(buf);
	if (rc == -1)
		return -1;
	for (i = 0; i < sizeof(md); i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[GW_BUDGET_CALLER_KEY_LEN] = '\0';
	return 0;
}

struct grant {
	int64_t t;   /* granted, or moved to the call's completion */
	uint64_t id; /* names it for gw_budget_done; 0 once given back */
	int used;    /* a grant was logged here (an empty caller is allowed) */
	char caller[CALLER_MAX + 1];
};

struct seen {
	int64_t last;
	char caller[CALLER_MAX + 1];
};

struct bucket {
	char key[BUCKET_KEY_MAX + 1];
	struct grant *grants; /* per_minute slots, in no order */
	struct seen seen[GW_BUDGET_CALLERS];
	unsigned long long refused; /* takes refused, for the metrics */
};

struct gw_budget {
	pthread_mutex_t lock;
	long long per_minute;
	uint64_t seq; /* the last grant's id */
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
bucket_get(struct gw_budget *g, const char *key)
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
	g->nb++;
	return b;
}

/*
 * Whether grant gr counts in the window ending at now.  A grant "in the
 * future" (the clock went back) still counts: that only delays, never
 * overspends.
 */
static int
in_window(const struct grant *gr, int64_t now)
{
	return gr->used && now - gr->t < GW_BUDGET_HOLD_MS;
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
	return gw_budget_take_id(g, bucket, caller, now, retry_ms, NULL);
}

int
gw_budget_take_id(struct gw_budget *g, const char *bucket, const char *caller,
                  int64_t now, int64_t *retry_ms, uint64_t *grant)
{
	struct bucket *b = NULL;
	struct grant *oldest_all = NULL;
	long long share, used = 0;
	int64_t oldest = -1;
	size_t i, active;
	int rc = -1;

	*retry_ms = GW_BUDGET_WINDOW_MS;
	if (grant != NULL)
		*grant = 0;
	if (g == NULL || bucket == NULL || caller == NULL ||
	    strlen(bucket) > BUCKET_KEY_MAX || strlen(caller) > CALLER_MAX)
		return -1;
	pthread_mutex_lock(&g->lock);
	b = bucket_get(g, bucket);
	if (b == NULL)
		goto out;
	active = see(b, caller, now);
	if (active == 0 || g->per_minute < 1) /* never: see() counts caller */
		goto out;
	share = (g->per_minute + (long long)active - 1) / (long long)active;
	for (i = 0; i < (size_t)g->per_minute; i++) {
		struct grant *gr = &b->grants[i];

		/* The slot to reuse: a free one, else the oldest. */
		if (oldest_all == NULL ||
		    (oldest_all->used && (!gr->used || gr->t < oldest_all->t)))
			oldest_all = gr;
		if (!in_window(gr, now) || strcmp(gr->caller, caller) != 0)
			continue;
		used++;
		if (oldest == -1 || gr->t < oldest)
			oldest = gr->t;
	}
	if (used >= share) {
		*retry_ms = oldest + GW_BUDGET_HOLD_MS - now;
		goto out;
	}
	/*
	 * The log holds per_minute slots.  While even the oldest grant (by
	 * its time: a completed call's time moved on, gw_budget_done, so
	 * the slots are in no order) is inside the window, so are all
	 * per_minute, and one more would make per_minute + 1 in 60 s.
	 * Retry when it leaves the window: the first slot to free.
	 */
	if (oldest_all == NULL || in_window(oldest_all, now)) {
		if (oldest_all != NULL)
			*retry_ms = oldest_all->t + GW_BUDGET_HOLD_MS - now;
		goto out;
	}
	oldest_all->t = now;
	oldest_all->used = 1;
	oldest_all->id = ++g->seq;
	snprintf(oldest_all->caller, sizeof(oldest_all->caller), "%s", caller);
	if (grant != NULL)
		*grant = oldest_all->id;
	rc = 0;
out:
	if (*retry_ms < 1)
		*retry_ms = 1;
	pthread_mutex_unlock(&g->lock);
	return rc;
}

/*
 * HSS counts the call when it arrives, somewhere between the grant and
 * the call's completion: holding the grant for a window from its
 * completion covers every minute that arrival can fall in, whatever the
 * latency.  Never moves a grant back (a clock that went back), so the
 * hold only grows.
 */
void
gw_budget_done(struct gw_budget *g, const char *bucket, const char *caller,
               uint64_t grant, int64_t now)
{
	size_t i, k;

	if (g == NULL || bucket == NULL || caller == NULL || grant == 0)
		return;
	pthread_mutex_lock(&g->lock);
	for (i = 0; i < g->nb; i++) {
		if (strcmp(g->b[i].key, bucket) != 0)
			continue;
		for (k = 0; k < (size_t)g->per_minute; k++) {
			struct grant *gr = &g->b[i].grants[k];

			if (gr->used && gr->id == grant &&
			    strcmp(gr->caller, caller) == 0 && now > gr->t)
				gr->t = now;
		}
		break;
	}
	pthread_mutex_unlock(&g->lock);
}

void
gw_budget_refused(struct gw_budget *g, const char *bucket)
{
	struct bucket *b;

	if (g == NULL || bucket == NULL || strlen(bucket) > BUCKET_KEY_MAX)
		return;
	pthread_mutex_lock(&g->lock);
	b = bucket_get(g, bucket);
	if (b != NULL)
		b->refused++;
	pthread_mutex_unlock(&g->lock);
}

void
gw_budget_peek(struct gw_budget *g, const char *bucket, int64_t now,
               long long *left, unsigned long long *refused)
{
	size_t i, k;

	*left = g != NULL ? g->per_minute : 0;
	*refused = 0;
	if (g == NULL || bucket == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	for (i = 0; i < g->nb; i++) {
		if (strcmp(g->b[i].key, bucket) != 0)
			continue;
		for (k = 0; k < (size_t)g->per_minute; k++)
			*left -= in_window(&g->b[i].grants[k], now);
		*refused = g->b[i].refused;
		break;
	}
	pthread_mutex_unlock(&g->lock);
}

/*
 * Gives back caller's latest grant (the call was never sent).  When it is
 * the newest grant of the bucket, its slot is free at once; else the
 * grant stops counting for the caller's share and the slot frees when
 * the grant leaves the window: never sooner than a real call would, so a
 * refund cannot overspend.  Either way it is no longer a grant a
 * gw_budget_done could move.
 */
void
gw_budget_refund(struct gw_budget *g, const char *bucket, const char *caller)
{
	struct bucket *b = NULL;
	struct grant *gr, *latest = NULL;
	uint64_t newest = 0;
	size_t i;

	if (g == NULL || bucket == NULL || caller == NULL)
		return;
	pthread_mutex_lock(&g->lock);
	for (i = 0; i < g->nb; i++)
		if (strcmp(g->b[i].key, bucket) == 0)
			b = &g->b[i];
	for (i = 0; b != NULL && i < (size_t)g->per_minute; i++) {
		gr = &b->grants[i];
		if (gr->used && gr->id > newest)
			newest = gr->id;
		if (gr->used && gr->id != 0 &&
		    strcmp(gr->caller, caller) == 0 &&
		    (latest == NULL || gr->id > latest->id))
			latest = gr;
	}
	if (latest != NULL) {
		latest->caller[0] = '\0';
		if (latest->id == newest)
			latest->used = 0;
		latest->id = 0;
	}
	pthread_mutex_unlock(&g->lock);
}
