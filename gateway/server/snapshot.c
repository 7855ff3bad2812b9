/*
 * Snapshots and the gateway that swaps them.  A snapshot is everything a
 * request reads (config, keys, policies, credentials, the audit trail, the
 * task key, budget and caches), immutable once loaded; a request holds the
 * one it started with by a reference count, a reload builds a new one off
 * the request path and swaps the pointer, and the last request on the old
 * one frees it.  Also the per-worker state (one upstream handle).  Never
 * answers a request.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

static struct gw_audit *
audit_open_conf(const struct gw_config *conf, char *err, size_t errlen)
{
	struct gw_audit_opts o;

	memset(&o, 0, sizeof(o));
	o.nosync = !conf->audit_fsync;
	o.rotate_bytes = conf->audit_rotate_bytes;
	o.syslog = (int)conf->audit_syslog;
	o.anon_bytes_per_hour = conf->audit_anon_bytes_per_hour;
	o.summary_interval_ms = conf->audit_summary_interval_ms;
	o.instance = conf->instance;
	o.signing_key_file = conf->audit_signing_key_file;
	o.signed_checkpoint_interval_s =
	    conf->audit_signed_checkpoint_interval_s;
	return gw_audit_open_opts(conf->audit_file, &o, err, errlen);
}

/*
 * The task handle key, budget and status cache.  Without a key file each
 * process draws a random key: handles then work only on the instance
 * (and the snapshot) that minted them.
 */
static int
tasks_load(struct gw_snapshot *s, char *err, size_t errlen)
{
	long long per;
	char rnd[65];

	if (s->conf->tasks_handle_key_file != NULL)
		s->tkey = gw_task_key_load(s->conf->tasks_handle_key_file, err,
		                           errlen);
	else if (gw_random_hex(rnd, 32) == 0) {
		s->tkey = gw_task_key_new(rnd, 64);
		gw_wipe(rnd, sizeof(rnd));
	}
	if (s->tkey == NULL) {
		if (s->conf->tasks_handle_key_file == NULL)
			snprintf(err, errlen, "no random task handle key");
		return -1;
	}
	per = s->conf->tasks_budget_per_minute;
	if (gw_conf_shared(s->conf)) {
		/*
		 * Shared: the local budget is the fallback while Redis is
		 * lost, each instance's part of HSS's limit (SHARED_STATE.md).
		 */
		s->shared = gw_shared_new(s->conf, (size_t)s->conf->threads + 2,
		                          err, errlen);
		if (s->shared == NULL)
			return -1;
		per /= s->conf->shared_expected_instances;
		if (per < 1)
			per = 1;
	}
	s->budget = gw_budget_new(per);
	s->status_cache = gw_cache_new();
	s->coalesce = gw_cache_new();
	s->flight = gw_flight_new();
	if (s->budget == NULL || s->status_cache == NULL ||
	    s->coalesce == NULL || s->flight == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

struct gw_snapshot *
gw_pipe_load(const char *path, int open_audit, char *err, size_t errlen)
{
	struct gw_snapshot *s = NULL, *ret = NULL;
	size_t i;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	s->conf = gw_conf_load(path, err, errlen);
	if (s->conf == NULL)
		goto out;
	s->keys = gw_jwt_keyset_load(s->conf, err, errlen);
	if (s->keys == NULL)
		goto out;
	s->pol = gw_pol_load_dir(s->conf->policies_dir, err, errlen);
	if (s->pol == NULL)
		goto out;
	if (s->conf->shadow_policies_dir != NULL) {
		s->shadow =
		    gw_pol_load_dir(s->conf->shadow_policies_dir, err, errlen);
		if (s->shadow == NULL)
			goto out;
	}
	s->creds = calloc(s->conf->ncreds, sizeof(struct gw_cred *));
	if (s->creds == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < s->conf->ncreds; i++) {
		s->creds[i] =
		    gw_cred_new(s->conf, &s->conf->creds[i], err, errlen);
		if (s->creds[i] == NULL)
			goto out;
	}
	if (tasks_load(s, err, errlen) == -1)
		goto out;
	s->metrics = gw_metrics_new();
	if (s->metrics == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* check-config: the signing key as the trail will load it. */
	if (!open_audit && s->conf->audit_signing_key_file != NULL &&
	    gw_audit_signing_key_check(s->conf->audit_signing_key_file, err,
	                               errlen) == -1)
		goto out;
	if (open_audit) {
		s->audit = audit_open_conf(s->conf, err, errlen);
		if (s->audit == NULL)
			goto out;
		s->owns_audit = 1;
		gw_audit_set_sync_hook(s->audit, gw_metrics_audit_sync,
		                       s->metrics);
	}
	ret = s;
	s = NULL;
out:
	gw_pipe_free(s);
	return ret;
}

void
gw_pipe_free(struct gw_snapshot *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (s->creds != NULL)
		for (i = 0; i < s->conf->ncreds; i++)
			gw_cred_free(s->creds[i]);
	free(s->creds);
	if (s->owns_audit)
		gw_audit_close(s->audit);
	gw_pol_free(s->pol);
	gw_pol_free(s->shadow);
	if (!s->tkey_borrowed)
		gw_task_key_free(s->tkey);
	if (!s->tasks_borrowed) {
		gw_budget_free(s->budget);
		gw_cache_free(s->status_cache);
		gw_cache_free(s->coalesce);
		gw_flight_free(s->flight);
		gw_shared_free(s->shared);
	}
	if (!s->metrics_borrowed)
		gw_metrics_free(s->metrics);
	gw_jwt_keyset_free(s->keys);
	gw_conf_free(s->conf);
	free(s);
}

const struct gw_config *
gw_pipe_config(const struct gw_snapshot *s)
{
	return s->conf;
}

int
gw_pipe_prime(const struct gw_snapshot *s, int64_t now_ms, char *err,
              size_t errlen)
{
	const struct gw_conf_project *p;
	struct gw_fault f;
	size_t i;
	int failed = 0;

	for (i = 0; i < s->conf->nprojects; i++) {
		p = &s->conf->projects[i];
		memset(&f, 0, sizeof(f));
		if (gw_cred_prime(gw_snap_cred_get(s, p), p->project_id, now_ms,
		                  &f) == GW_OK)
			continue;
		if (failed++ == 0)
			snprintf(err, errlen, "project %s, credentials %s: %s",
			         p->alias, p->credentials, f.msg);
	}
	return failed;
}

int
gw_pipe_prime_keys(const struct gw_snapshot *s, int64_t now_ms, char *err,
                   size_t errlen)
{
	return gw_jwt_keyset_tick(s->keys, now_ms / 1000, err, errlen);
}

const char *
gw_pipe_revision(const struct gw_snapshot *s)
{
	return gw_pol_revision(s->pol);
}

/*
 * Hands a new snapshot the gateway's task state: the budget and caches
 * always (the first snapshot's become the gateway's), the random key when
 * no key file is configured.  The budget keeps the rate it started with:
 * its ring is sized by it, and resizing under requests in flight is not
 * worth it (tasks.budget_per_minute is read at start only).
 */
static void
tasks_adopt(struct gw_gateway *g, struct gw_snapshot *s)
{
	if (s->conf->tasks_handle_key_file == NULL) {
		if (g->rkey == NULL)
			g->rkey = s->tkey;
		else
			gw_task_key_free(s->tkey);
		s->tkey = g->rkey;
		s->tkey_borrowed = 1;
	}
	if (g->budget == NULL) {
		g->budget_per_minute = s->conf->tasks_budget_per_minute;
		g->budget = s->budget;
		g->status_cache = s->status_cache;
		g->coalesce = s->coalesce;
		g->flight = s->flight;
		g->shared = s->shared;
	} else {
		gw_budget_free(s->budget);
		gw_cache_free(s->status_cache);
		gw_cache_free(s->coalesce);
		gw_flight_free(s->flight);
		gw_shared_free(s->shared);
		s->budget = g->budget;
		s->status_cache = g->status_cache;
		s->coalesce = g->coalesce;
		s->flight = g->flight;
		s->shared = g->shared;
	}
	s->tasks_borrowed = 1;
	/* The counters too: a reload must not reset them. */
	if (g->metrics == NULL)
		g->metrics = s->metrics;
	else
		gw_metrics_free(s->metrics);
	s->metrics = g->metrics;
	s->metrics_borrowed = 1;
}

struct gw_gateway *
gw_gateway_open(const char *path, char *err, size_t errlen)
{
	struct gw_gateway *g = NULL;

	g = calloc(1, sizeof(*g));
	if (g == NULL || (g->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	pthread_mutex_init(&g->lock, NULL);
	atomic_init(&g->generation, 0);
	g->cur = gw_pipe_load(path, 0, err, errlen);
	if (g->cur == NULL)
		goto fail;
	tasks_adopt(g, g->cur);
	g->audit = audit_open_conf(g->cur->conf, err, errlen);
	if (g->audit == NULL)
		goto fail;
	g->cur->audit = g->audit;
	gw_audit_set_sync_hook(g->audit, gw_metrics_audit_sync, g->metrics);
	if (g->cur->conf->ship_cursor_file != NULL) {
		g->shiplag = gw_ship_lag_new(g->cur->conf->ship_cursor_file,
		                             g->cur->conf->instance,
		                             g->cur->conf->ship_max_lag_s);
		if (g->shiplag == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	g->cur->shiplag = g->shiplag;
	return g;
fail:
	gw_gateway_free(g);
	return NULL;
}

void
gw_gateway_free(struct gw_gateway *g)
{
	if (g == NULL)
		return;
	gw_pipe_free(g->cur);
	gw_audit_close(g->audit);
	gw_task_key_free(g->rkey);
	gw_budget_free(g->budget);
	gw_cache_free(g->status_cache);
	gw_cache_free(g->coalesce);
	gw_flight_free(g->flight);
	gw_shared_free(g->shared);
	gw_metrics_free(g->metrics);
	gw_ship_lag_free(g->shiplag);
	free(g->path);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

int
gw_gateway_reload(struct gw_gateway *g, char *err, size_t errlen)
{
	struct gw_snapshot *next, *old;

	/* Built off the request path; workers keep serving meanwhile. */
	next = gw_pipe_load(g->path, 0, err, errlen);
	gw_metrics_reload(g->metrics, next != NULL);
	if (next == NULL)
		return -1;
	/* Tokens first, so the first requests after the swap need no IAM
	 * call; a failure leaves them to be fetched on demand.  JWK Sets
	 * the old snapshot fetched carry over, so a reload never makes an
	 * issuer unready while its IdP is down. */
	gw_pipe_prime(next, gw_now_ms(), err, errlen);
	gw_jwt_keyset_adopt(next->keys, g->cur->keys);
	gw_pipe_prime_keys(next, gw_now_ms(), err, errlen);
	next->audit = g->audit;
	next->shiplag = g->shiplag;
	if (next->conf->tasks_budget_per_minute != g->budget_per_minute)
		fprintf(stderr,
		        "hssgw: reload: tasks.budget_per_minute is "
		        "read at start only; keeping %lld\n",
		        g->budget_per_minute);
	if ((next->shared == NULL) != (g->shared == NULL))
		fprintf(stderr, "hssgw: reload: shared_state is read at start "
		                "only; keeping the one started with\n");
	tasks_adopt(g, next);
	pthread_mutex_lock(&g->lock);
	old = g->cur;
	g->cur = next;
	atomic_fetch_add(&g->generation, 1);
	if (old->refs > 0)
		old = NULL; /* its last request frees it */
	pthread_mutex_unlock(&g->lock);
	gw_pipe_free(old);
	return 0;
}

int
gw_gateway_audit_reopen(struct gw_gateway *g, char *err, size_t errlen)
{
	return gw_audit_reopen(g->audit, err, errlen) == GW_OK ? 0 : -1;
}

void
gw_gateway_audit_tick(struct gw_gateway *g)
{
	gw_audit_tick(g->audit);
}

int
gw_gateway_ship_tick(struct gw_gateway *g, char *err, size_t errlen)
{
	err[0] = '\0';
	if (g->shiplag != NULL &&
	    gw_ship_lag_update(g->shiplag, gw_audit_durable_seq(g->audit),
	                       gw_now_ms(), err, errlen) == -1 &&
	    err[0] == '\0')
		snprintf(err, errlen, "the shipping cursor is unreadable");
	return gw_ship_lag_refusing(g->shiplag);
}

unsigned long
gw_gateway_generation(struct gw_gateway *g)
{
	return atomic_load(&g->generation);
}

struct gw_metrics *
gw_gateway_metrics(struct gw_gateway *g)
{
	return g->metrics;
}

const struct gw_snapshot *
gw_gateway_acquire(struct gw_gateway *g)
{
	struct gw_snapshot *s;

	pthread_mutex_lock(&g->lock);
	s = g->cur;
	s->refs++;
	pthread_mutex_unlock(&g->lock);
	return s;
}

void
gw_gateway_release(struct gw_gateway *g, const struct gw_snapshot *cs)
{
	struct gw_snapshot *s = (struct gw_snapshot *)cs, *dead = NULL;

	pthread_mutex_lock(&g->lock);
	if (--s->refs == 0 && s != g->cur)
		dead = s;
	pthread_mutex_unlock(&g->lock);
	gw_pipe_free(dead);
}

struct gw_cred *
gw_snap_cred_get(const struct gw_snapshot *s, const struct gw_conf_project *p)
{
	size_t i = (size_t)(p->cred - s->conf->creds);

	return i < s->conf->ncreds ? s->creds[i] : NULL;
}

struct gw_worker *
gw_pipe_worker_new(void)
{
	struct gw_worker *w;

	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->up = gw_up_new();
	if (w->up == NULL) {
		free(w);
		return NULL;
	}
	return w;
}

void
gw_pipe_worker_free(struct gw_worker *w)
{
	if (w == NULL)
		return;
	gw_up_free(w->up);
	free(w);
}
