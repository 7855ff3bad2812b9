/*
 * The request pipeline.  Stages run in a fixed order and each either
 * passes or sets the one fault that answers the request:
 *
 *   route -> size -> bearer token -> media type -> validation -> policy
 *   (+ shadow) -> translation -> credentials -> coalescing -> budget
 *   -> intent record (durable) -> upstream -> outcome record
 *
 * Authentication comes before validation so an anonymous caller learns
 * nothing about the request format.  Every request answered leaves one
 * audit record (two when it went upstream: intent, then outcome), on disk
 * before the answer.  Owns the snapshots and the gateway that swaps them,
 * and the per-request state, released at the end of gw_pipe_handle.
 * Export task routes live in pipeline_tasks.c.  Never puts a token, key or
 * secret in a response, record or log line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "pipeline_int.h"

static int64_t now_of(const struct reqstate *);
static enum gw_err coalesce(struct reqstate *, int *);

static struct gw_audit *
audit_open_conf(const struct gw_config *conf, char *err, size_t errlen)
{
	struct gw_audit_opts o;

	memset(&o, 0, sizeof(o));
	o.nosync = !conf->audit_fsync;
	o.rotate_bytes = conf->audit_rotate_bytes;
	o.syslog = (int)conf->audit_syslog;
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
	s->budget = gw_budget_new(s->conf->tasks_budget_per_minute);
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
	if (open_audit) {
		s->audit = audit_open_conf(s->conf, err, errlen);
		if (s->audit == NULL)
			goto out;
		s->owns_audit = 1;
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
	}
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
		if (gw_cred_prime(gw_pipe_cred_for(s, p), p->project_id, now_ms,
		                  &f) == GW_OK)
			continue;
		if (failed++ == 0)
			snprintf(err, errlen, "project %s, credentials %s: %s",
			         p->alias, p->credentials, f.msg);
	}
	return failed;
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
	} else {
		gw_budget_free(s->budget);
		gw_cache_free(s->status_cache);
		gw_cache_free(s->coalesce);
		gw_flight_free(s->flight);
		s->budget = g->budget;
		s->status_cache = g->status_cache;
		s->coalesce = g->coalesce;
		s->flight = g->flight;
	}
	s->tasks_borrowed = 1;
}

struct gw_gateway *
gw_gw_open(const char *path, char *err, size_t errlen)
{
	struct gw_gateway *g = NULL;

	g = calloc(1, sizeof(*g));
	if (g == NULL || (g->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	pthread_mutex_init(&g->lock, NULL);
	g->cur = gw_pipe_load(path, 0, err, errlen);
	if (g->cur == NULL)
		goto fail;
	tasks_adopt(g, g->cur);
	g->audit = audit_open_conf(g->cur->conf, err, errlen);
	if (g->audit == NULL)
		goto fail;
	g->cur->audit = g->audit;
	return g;
fail:
	gw_gw_free(g);
	return NULL;
}

void
gw_gw_free(struct gw_gateway *g)
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
	free(g->path);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

int
gw_gw_reload(struct gw_gateway *g, char *err, size_t errlen)
{
	struct gw_snapshot *next, *old;

	/* Built off the request path; workers keep serving meanwhile. */
	next = gw_pipe_load(g->path, 0, err, errlen);
	if (next == NULL)
		return -1;
	/* Tokens first, so the first requests after the swap need no IAM
	 * call; a failure leaves them to be fetched on demand. */
	gw_pipe_prime(next, gw_now_ms(), err, errlen);
	next->audit = g->audit;
	if (next->conf->tasks_budget_per_minute != g->budget_per_minute)
		fprintf(stderr,
		        "hssgw: reload: tasks.budget_per_minute is "
		        "read at start only; keeping %lld\n",
		        g->budget_per_minute);
	tasks_adopt(g, next);
	pthread_mutex_lock(&g->lock);
	old = g->cur;
	g->cur = next;
	if (old->refs > 0)
		old = NULL; /* its last request frees it */
	pthread_mutex_unlock(&g->lock);
	gw_pipe_free(old);
	return 0;
}

int
gw_gw_audit_reopen(struct gw_gateway *g, char *err, size_t errlen)
{
	return gw_audit_reopen(g->audit, err, errlen) == GW_OK ? 0 : -1;
}

const struct gw_snapshot *
gw_gw_acquire(struct gw_gateway *g)
{
	struct gw_snapshot *s;

	pthread_mutex_lock(&g->lock);
	s = g->cur;
	s->refs++;
	pthread_mutex_unlock(&g->lock);
	return s;
}

void
gw_gw_release(struct gw_gateway *g, const struct gw_snapshot *cs)
{
	struct gw_snapshot *s = (struct gw_snapshot *)cs, *dead = NULL;

	pthread_mutex_lock(&g->lock);
	if (--s->refs == 0 && s != g->cur)
		dead = s;
	pthread_mutex_unlock(&g->lock);
	gw_pipe_free(dead);
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

void
gw_http_resp_reset(struct gw_http_resp *r)
{
	const struct gw_http_stream *stream = r->stream;
	size_t i;

	for (i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->body);
	memset(r, 0, sizeof(*r));
	r->stream = stream;
}

void
gw_pipe_resp_header(struct gw_http_resp *r, const char *name, const char *value)
{
	if (r->nheaders == GW_RESP_HEADERS_MAX)
		return;
	r->headers[r->nheaders].name = strdup(name);
	r->headers[r->nheaders].value = strdup(value);
	r->nheaders++;
}

/* HSS's error shape, so clients parse one format (reference §3.3). */
static void
error_json(const struct gw_fault *f, const char *request_id, struct gw_buf *out)
{
	struct json_object *o;
	char msg[512];

	if (f->field[0] != '\0')
		snprintf(msg, sizeof(msg), "%s: %s", f->field, f->msg);
	else
		snprintf(msg, sizeof(msg), "%s",
		         f->msg[0] ? f->msg : gw_strerror(f->err));
	o = json_object_new_object();
	json_object_object_add(o, "error_code",
	                       json_object_new_string(gw_err_code(f->err)));
	json_object_object_add(o, "error_msg", json_object_new_string(msg));
	if (request_id != NULL)
		json_object_object_add(o, "request_id",
		                       json_object_new_string(request_id));
	if (f->field[0] != '\0')
		json_object_object_add(o, "field",
		                       json_object_new_string(f->field));
	gw_buf_puts(out, json_object_to_json_string_ext(
	                     o, JSON_C_TO_STRING_PLAIN |
	                            JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static void
set_body(struct gw_http_resp *resp, struct gw_buf *b)
{
	resp->body = gw_buf_take(b, &resp->bodylen);
}

void
gw_pipe_answer_error(const struct gw_http_req *req, const struct gw_fault *f,
                     struct gw_http_resp *resp)
{
	struct gw_buf b;

	gw_buf_init(&b, RESP_MAX);
	resp->status = gw_err_status(f->err);
	error_json(f, req->request_id, &b);
	gw_pipe_resp_header(resp, "Content-Type",
	                    "application/json;charset=utf-8");
	if (f->err == GW_ERR_UNAUTHENTICATED)
		gw_pipe_resp_header(resp, "WWW-Authenticate",
		                    "Bearer realm=\"hssgw\"");
	else if (f->err == GW_ERR_TOKEN_INVALID)
		/* RFC 6750 §3: no description, it could help an attacker. */
		gw_pipe_resp_header(
		    resp, "WWW-Authenticate",
		    "Bearer realm=\"hssgw\", error=\"invalid_token\"");
	set_body(resp, &b);
}

/* "Bearer <token>" (RFC 6750 §2.1; the scheme is case-insensitive). */
const char *
gw_pipe_bearer(const char *h)
{
	const char *t;

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	t = h + 7;
	while (*t == ' ')
		t++;
	if (*t == '\0' || strpbrk(t, " \t,") != NULL)
		return NULL;
	return t;
}

static int
is_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

struct gw_cred *
gw_pipe_cred_for(const struct gw_snapshot *s, const struct gw_conf_project *p)
{
	size_t i = (size_t)(p->cred - s->conf->creds);

	return i < s->conf->ncreds ? s->creds[i] : NULL;
}

/*
 * Finds an error code in an HSS error body, as tolerantly as the official
 * SDK (reference §3.3): error_code, or code, at the top or one level down.
 */
char *
gw_pipe_find_error_code(struct json_object *o)
{
	static const char *const names[] = {"error_code", "code"};
	struct json_object *v;
	size_t i;

	if (!json_object_is_type(o, json_type_object))
		return NULL;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (json_object_object_get_ex(o, names[i], &v) &&
		    json_object_is_type(v, json_type_string))
			return strdup(json_object_get_string(v));
	for (struct json_object_iterator it_ = json_object_iter_begin(o),
	                                 end_ = json_object_iter_end(o);
	     !json_object_iter_equal(&it_, &end_);
	     json_object_iter_next(&it_)) {
		const char *k = json_object_iter_peek_name(&it_);
		struct json_object *child = json_object_iter_peek_value(&it_);
		(void)k;
		if (json_object_is_type(child, json_type_object))
			for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
				if (json_object_object_get_ex(child, names[i],
				                              &v) &&
				    json_object_is_type(v, json_type_string))
					return strdup(
					    json_object_get_string(v));
	}
	return NULL;
}

/*
 * Checks HSS's answer: a 200 must be the documented body (reference,
 * table 5: task_id 1..256 chars, record_total_num 0..2147483647); any
 * other status must carry a JSON body, passed back unchanged.
 */
static enum gw_err
check_answer(struct reqstate *st)
{
	struct json_object *o = NULL, *v;
	enum gw_err rc = GW_ERR_UPSTREAM_BAD;
	const struct gw_upresp *r = &st->upresp;
	int64_t n;

	o = json_tokener_parse(r->body);
	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		gw_fault_set(&st->fault, rc, "",
		             "HSS answered %ld with a body "
		             "that is not a JSON object",
		             r->status);
		goto out;
	}
	if (r->status != 200) {
		st->up_error_code = gw_pipe_find_error_code(o);
		st->passthrough = 1;
		rc = GW_OK;
		goto out;
	}
	if (!json_object_object_get_ex(o, "task_id", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) < 1 ||
	    json_object_get_string_len(v) > 256) {
		gw_fault_set(&st->fault, rc, "",
		             "HSS answer has no valid "
		             "task_id");
		goto out;
	}
	st->task_id = strdup(json_object_get_string(v));
	if (!json_object_object_get_ex(o, "record_total_num", &v) ||
	    !json_object_is_type(v, json_type_int)) {
		gw_fault_set(&st->fault, rc, "",
		             "HSS answer has no valid "
		             "record_total_num");
		goto out;
	}
	n = json_object_get_int64(v);
	if (n < 0 || n > 2147483647LL) {
		gw_fault_set(&st->fault, rc, "",
		             "HSS answer has an "
		             "out-of-range record_total_num");
		goto out;
	}
	st->record_total_num = n;
	st->passthrough = 1;
	rc = GW_OK;
out:
	json_object_put(o);
	return rc;
}

/*
 * Sends the request.  HSS answers 401 when the gateway's token was revoked
 * early (a password or permission change: reference §4.1): drop that
 * token, get a fresh one and retry once.  A second 401 means the gateway's
 * own credentials are bad: 502, never 401, which would blame the caller.
 */
static enum gw_err
send_upstream(struct reqstate *st, struct gw_worker *w, struct gw_cred *cred)
{
	const char *pid = st->xreq->project->project_id;
	enum gw_err rc;
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		if (attempt > 0) {
			gw_cred_invalidate(cred, pid, st->cred_fp);
			gw_upresp_reset(&st->upresp);
			rc =
			    gw_cred_apply(cred, st->upreq, pid, st->req->now_ms,
			                  st->cred_fp, &st->fault);
			if (rc != GW_OK)
				return rc;
		}
		rc = gw_up_send(w->up, st->snap->conf, st->upreq, &st->upresp,
		                &st->fault);
		if (rc != GW_OK || st->upresp.status != 401)
			return rc;
	}
	return gw_fault_set(&st->fault, GW_ERR_UPSTREAM_AUTH, "",
	                    "HSS rejected the gateway's own credentials");
}

/* The earlier answer cached under st->coalesce_key, if any: 1 or 0. */
static int
coalesce_hit(struct reqstate *st)
{
	char *hit =
	    gw_cache_get(st->snap->coalesce, st->coalesce_key, now_of(st));

	if (hit == NULL)
		return 0;
	st->coalesced = 1;
	st->cred_name = NULL;
	st->upresp.status = 200;
	st->upresp.body = hit;
	st->upresp.bodylen = strlen(hit);
	return 1;
}

/*
 * Coalescing (docs/TASKS.md): an export identical to one HSS accepted
 * within tasks.coalesce_window_ms (same translated request, hence same
 * project, filters and query) gets that export's answer: its task_id,
 * and below a handle bound to this caller.  No HSS call, no budget.  The
 * key is built before credentials are applied, so it holds no secret and
 * no signing time.  Single flight: while an identical export is in the
 * air, this one waits for it to land (at most until its own deadline,
 * the longer of tasks.retry_deadline_ms and upstream.timeout_ms from the
 * request's start) and takes its answer; if the first failed, the next
 * in line flies.  *hit is 1 when st->upresp now holds the earlier answer.
 */
static enum gw_err
coalesce(struct reqstate *st, int *hit)
{
	const struct gw_snapshot *s = st->snap;
	const struct gw_config *conf = s->conf;
	int64_t limit = conf->tasks_retry_deadline_ms > conf->up_timeout_ms
	                    ? conf->tasks_retry_deadline_ms
	                    : conf->up_timeout_ms;
	struct gw_buf b;

	*hit = 0;
	if (conf->tasks_coalesce_window_ms <= 0)
		return GW_OK;
	gw_buf_init(&b, GW_CACHE_KEY_MAX);
	if (gw_buf_printf(&b, "%s\n", st->xreq->project->project_id) == -1 ||
	    gw_upreq_json(st->upreq, &b) == -1) {
		gw_buf_reset(&b);
		return GW_OK; /* too large to key: sent, never coalesced */
	}
	st->coalesce_key = gw_buf_take(&b, NULL);
	if (st->coalesce_key == NULL)
		return GW_OK;
	for (;;) {
		if ((*hit = coalesce_hit(st)) == 1)
			return GW_OK;
		switch (gw_flight_join(s->flight, st->coalesce_key,
		                       limit - (gw_mono_us() - st->t_start) /
		                                   1000)) {
		case GW_FLIGHT_LEAD:
			st->flight_lead = 1;
			return GW_OK;
		case GW_FLIGHT_NONE:
			return GW_OK;
		case GW_FLIGHT_TIMEOUT:
			return gw_fault_set(&st->fault, GW_ERR_UPSTREAM_TIMEOUT,
			                    "",
			                    "an identical export is still "
			                    "waiting for HSS");
		case GW_FLIGHT_LANDED:
			break; /* its answer is cached, or it failed: look */
		}
	}
}

static enum gw_err
run_export(struct reqstate *st, struct gw_worker *w)
{
	const struct gw_snapshot *s = st->snap;
	const struct gw_http_req *req = st->req;
	struct gw_pol_request preq;
	struct gw_pol_ctx pctx;
	struct gw_cred *cred;
	const char *token;
	enum gw_err rc;
	int64_t t;
	int attempt, hit = 0;

	if (req->body_too_large)
		return gw_fault_set(&st->fault, GW_ERR_TOO_LARGE, "body",
		                    "must be at most %lld bytes",
		                    s->conf->max_body_bytes);

	t = gw_mono_us();
	token = gw_pipe_bearer(req->authorization);
	if (token == NULL)
		return gw_fault_set(&st->fault, GW_ERR_UNAUTHENTICATED,
		                    "Authorization",
		                    "a Bearer token is required");
	gw_fingerprint(token, strlen(token), st->token_fp);
	rc = gw_jwt_verify(s->keys, token, req->now_ms / 1000, &st->claims,
	                   &st->fault);
	st->lat_auth = gw_mono_us() - t;
	if (rc != GW_OK)
		return rc;

	if (!is_json_type(req->content_type))
		return gw_fault_set(&st->fault, GW_ERR_MEDIA_TYPE,
		                    "Content-Type", "must be application/json");
	rc = gw_tr_parse(s->conf, req->body, req->bodylen, &st->xreq,
	                 &st->fault);
	if (rc != GW_OK)
		return rc;

	t = gw_mono_us();
	snprintf(st->resource, sizeof(st->resource), "hss:%s:%s",
	         st->xreq->project->region, st->xreq->project->alias);
	memset(&preq, 0, sizeof(preq));
	preq.claims = st->claims;
	preq.action = ACTION_EXPORT;
	preq.resource = st->resource;
	if (gw_pol_ctx_build(&pctx, st->xreq->ctx, st->xreq->nctx, req->now_ms,
	                     req->client_addr) == -1)
		return gw_fault_set(&st->fault, GW_ERR_INTERNAL, "",
		                    "request context too large");
	preq.ctx = pctx.kv;
	preq.nctx = pctx.n;
	gw_pol_eval(s->pol, &preq, &st->decision);
	if (s->shadow != NULL)
		gw_pol_eval(s->shadow, &preq, &st->shadow);
	st->decided = 1;
	st->lat_policy = gw_mono_us() - t;
	if (st->decision.effect != GW_POL_ALLOW)
		/* Say what was denied, never which policy said so. */
		return gw_fault_set(&st->fault, GW_ERR_DENIED, "",
		                    "not allowed to perform %s on %s",
		                    ACTION_EXPORT, st->resource);

	rc = gw_tr_build(st->xreq, &st->upreq, &st->fault);
	if (rc != GW_OK)
		return rc;
	rc = coalesce(st, &hit);
	if (rc != GW_OK)
		return rc;
	if (hit)
		return check_answer(st);
	cred = gw_pipe_cred_for(s, st->xreq->project);
	if (cred == NULL)
		return gw_fault_set(&st->fault, GW_ERR_CREDENTIALS, "",
		                    "no credentials for project");
	st->cred_name = gw_cred_name(cred);
	rc = gw_cred_apply(cred, st->upreq, st->xreq->project->project_id,
	                   req->now_ms, st->cred_fp, &st->fault);
	if (rc != GW_OK)
		return rc;
	/* Fail closed: no export leaves without its durable record. */
	rc = gw_pipe_audit_intent(st);
	if (rc != GW_OK)
		return rc;

	/* HSS allows 5 calls a minute (reference 6): hssgw never asks more. */
	rc = gw_pipe_budget_take(st, st->cred_name, "export");
	for (attempt = 0; rc == GW_OK; attempt++) {
		t = gw_mono_us();
		rc = send_upstream(st, w, cred);
		st->lat_upstream += gw_mono_us() - t;
		if (rc != GW_OK || st->upresp.status != 429)
			break;
		rc = gw_pipe_throttled(st, attempt, "export");
	}
	if (rc != GW_OK)
		return rc;
	rc = check_answer(st);
	if (rc == GW_OK && st->upresp.status == 200 && st->coalesce_key != NULL)
		/* add_only: the first task stays the one others get. */
		gw_cache_put(s->coalesce, st->coalesce_key, st->upresp.body,
		             now_of(st), s->conf->tasks_coalesce_window_ms, 1);
	return rc;
}

/* The fields every record of a request shares, from its state so far. */
static void
fill_rec(struct reqstate *st, struct gw_audit_rec *r)
{
	const struct gw_claim *groups;
	size_t i;

	memset(r, 0, sizeof(*r));
	r->time_ms = st->req->now_ms;
	r->request_id = st->req->request_id;
	r->client_addr = st->req->client_addr;
	r->method = st->req->method;
	r->path = st->req->path;
	if (st->claims != NULL) {
		r->subject = st->claims->sub;
		r->issuer = st->claims->iss;
		r->jti = st->claims->jti;
		groups = gw_claims_get(st->claims, "groups");
		if (groups != NULL) {
			r->groups = (const char *const *)groups->values;
			r->ngroups = groups->nvalues;
		}
	}
	r->token_fp = st->token_fp[0] ? st->token_fp : NULL;
	r->action = st->action;
	r->resource = st->resource[0] ? st->resource : NULL;
	r->project = st->xreq ? st->xreq->project->alias : st->task_project;
	if (st->decided) {
		r->decision = gw_pol_effect_name(st->decision.effect);
		r->stmt_file = st->decision.file[0] ? st->decision.file : NULL;
		r->stmt_sid = st->decision.sid;
		for (i = 0; i < st->decision.ndeciding; i++) {
			st->stmt_files[i] = st->decision.deciding[i].file;
			st->stmt_sids[i] = st->decision.deciding[i].sid;
		}
		r->stmt_files = st->stmt_files;
		r->stmt_sids = st->stmt_sids;
		r->nstmts = st->decision.ndeciding;
		/* Acting for another subject: the Allow that let it, too. */
		for (i = 0; st->acted_for && i < st->actfor.ndeciding &&
		            r->nstmts < GW_POL_DECIDING_MAX;
		     i++, r->nstmts++) {
			st->stmt_files[r->nstmts] = st->actfor.deciding[i].file;
			st->stmt_sids[r->nstmts] = st->actfor.deciding[i].sid;
		}
	}
	r->policy_revision = gw_pol_revision(st->snap->pol);
	if (st->decided && st->snap->shadow != NULL) {
		r->shadow_decision = gw_pol_effect_name(st->shadow.effect);
		r->shadow_stmt_file =
		    st->shadow.file[0] ? st->shadow.file : NULL;
		r->shadow_stmt_sid = st->shadow.sid;
		r->shadow_revision = gw_pol_revision(st->snap->shadow);
	}
	r->task_issuer = st->task_iss;
	r->task_subject = st->task_sub;
	r->upreq = st->upreq;
	r->record_total_num = -1;
	r->cred_name = st->cred_name;
	r->cred_fp = st->cred_fp[0] ? st->cred_fp : NULL;
	r->lat_auth_us = st->lat_auth;
	r->lat_policy_us = st->lat_policy;
	r->lat_total_us = gw_mono_us() - st->t_start;
}

static enum gw_err
emit(const struct reqstate *st, const struct gw_audit_rec *r)
{
	char err[256];

	if (gw_audit_emit(st->snap->audit, r, err, sizeof(err)) == GW_OK)
		return GW_OK;
	fprintf(stderr, "hssgw: request %s: %s\n",
	        st->req->request_id ? st->req->request_id : "-", err);
	return GW_ERR_AUDIT;
}

/*
 * The intent record: durable before anything is sent upstream, so no
 * export reaches HSS without a record of who asked and what was sent.
 */
enum gw_err
gw_pipe_audit_intent(struct reqstate *st)
{
	struct gw_audit_rec r;

	fill_rec(st, &r);
	r.phase = GW_AUDIT_INTENT;
	if (emit(st, &r) != GW_OK)
		return gw_fault_set(&st->fault, GW_ERR_AUDIT, "",
		                    "the audit trail cannot be written");
	st->intent = 1;
	return GW_OK;
}

/* The record of the answer: the outcome of an intent, or the only one. */
enum gw_err
gw_pipe_audit(struct reqstate *st, const struct gw_http_resp *resp)
{
	struct gw_audit_rec r;

	fill_rec(st, &r);
	r.phase = st->intent ? GW_AUDIT_OUTCOME : GW_AUDIT_FINAL;
	r.status = resp->status;
	if (!st->passthrough) {
		r.error_code = gw_err_code(st->fault.err);
		r.error_field = st->fault.field[0] ? st->fault.field : NULL;
	} else if (st->up_error_code != NULL)
		r.error_code = st->up_error_code;
	/* A coalesced answer is an earlier call's: nothing was sent. */
	r.up_status = st->coalesced ? 0 : st->upresp.status;
	r.up_error_code = st->up_error_code;
	r.coalesced = st->coalesced;
	r.cached = st->cached;
	r.task_id = st->task_id;
	r.record_total_num = st->record_total_num;
	r.lat_upstream_us = st->lat_upstream;
	return emit(st, &r);
}

void
gw_pipe_reqstate_init(struct reqstate *st, const struct gw_snapshot *s,
                      const struct gw_http_req *req, const char *action)
{
	memset(st, 0, sizeof(*st));
	st->snap = s;
	st->req = req;
	st->action = action;
	st->record_total_num = -1;
	st->t_start = gw_mono_us();
}

/*
 * The record of an answer could not be made durable: no answer goes out
 * without one, so the caller gets 503 instead.  If HSS already accepted
 * the export, its task id is kept (the intent record is on disk).
 */
void
gw_pipe_answer_unaudited(struct reqstate *st, struct gw_http_resp *resp)
{
	gw_http_resp_reset(resp);
	if (st->task_id != NULL)
		gw_fault_set(
		    &st->fault, GW_ERR_AUDIT, "",
		    "HSS accepted the export as task %s, but the audit "
		    "trail cannot be written",
		    st->task_id);
	else
		gw_fault_set(&st->fault, GW_ERR_AUDIT, "",
		             "the audit trail cannot be written");
	gw_pipe_answer_error(st->req, &st->fault, resp);
}

static void
handle_export(const struct gw_snapshot *s, struct gw_worker *w,
              const struct gw_http_req *req, struct gw_http_resp *resp)
{
	struct reqstate st;
	enum gw_err rc;

	gw_pipe_reqstate_init(&st, s, req, ACTION_EXPORT);
	rc = run_export(&st, w);
	if (st.flight_lead)
		/* After the cache put: those waiting find the answer. */
		gw_flight_land(s->flight, st.coalesce_key);
	if (rc == GW_OK && st.passthrough) {
		/* HSS's own status and JSON body, unchanged. */
		resp->status = (int)st.upresp.status;
		resp->body = st.upresp.body;
		resp->bodylen = st.upresp.bodylen;
		st.upresp.body = NULL;
		gw_pipe_resp_header(resp, "Content-Type",
		                    "application/json;charset=utf-8");
		gw_pipe_export_add_handle(&st, resp);
		gw_pipe_resp_header(resp, "X-Hssgw-Coalesced",
		                    st.coalesced ? "true" : "false");
	} else {
		if (st.fault.err == GW_OK)
			gw_fault_set(&st.fault,
			             rc == GW_OK ? GW_ERR_INTERNAL : rc, "",
			             "%s", gw_strerror(rc));
		if (st.fault.err >= GW_ERR_UPSTREAM && req->request_id)
			fprintf(stderr, "hssgw: request %s: %s: %s\n",
			        req->request_id, gw_err_code(st.fault.err),
			        st.fault.msg);
		gw_pipe_answer_error(req, &st.fault, resp);
		if (st.retry_after_s > 0) {
			char ra[32];

			snprintf(ra, sizeof(ra), "%lld",
			         (long long)st.retry_after_s);
			gw_pipe_resp_header(resp, "Retry-After", ra);
		}
	}
	if (gw_pipe_audit(&st, resp) != GW_OK)
		gw_pipe_answer_unaudited(&st, resp);
	free(st.task_id);
	free(st.up_error_code);
	free(st.coalesce_key);
	gw_upresp_reset(&st.upresp);
	gw_upreq_free(st.upreq);
	gw_tr_req_free(st.xreq);
	gw_claims_free(st.claims);
}

static void
handle_health(const struct gw_snapshot *s, struct gw_worker *w,
              const struct gw_http_req *req, struct gw_http_resp *resp)
{
	struct gw_buf b;
	const char *why = NULL;
	size_t i;

	(void)w;
	/* Ready when the trail takes records and every project has a valid
	 * credential: no request would get a 503 for want of either. */
	if (!gw_audit_ready(s->audit))
		why = "audit";
	for (i = 0; why == NULL && i < s->conf->nprojects; i++)
		if (!gw_cred_ready(gw_pipe_cred_for(s, &s->conf->projects[i]),
		                   req->now_ms))
			why = "credentials";
	gw_buf_init(&b, 256);
	resp->status = why == NULL ? 200 : 503;
	if (why == NULL)
		gw_buf_puts(&b, "{\"status\":\"ok\"}");
	else
		gw_buf_printf(
		    &b, "{\"status\":\"unavailable\",\"reason\":\"%s\"}", why);
	gw_pipe_resp_header(resp, "Content-Type",
	                    "application/json;charset=utf-8");
	set_body(resp, &b);
}

/*
 * Who shares a fair share: the configured claim's first value, else the
 * subject; prefixed with the issuer so two IdPs never share one.
 */
static void
caller_of(const struct reqstate *st, char *out, size_t cap)
{
	const struct gw_claim *c = NULL;
	const char *who = st->claims->sub;

	if (st->snap->conf->tasks_fair_share_claim != NULL)
		c = gw_claims_get(st->claims,
		                  st->snap->conf->tasks_fair_share_claim);
	if (c != NULL && c->nvalues > 0)
		who = c->values[0];
	snprintf(out, cap, "%s %s", st->claims->iss, who);
}

/* The request's clock: its start time plus what has passed since. */
static int64_t
now_of(const struct reqstate *st)
{
	return st->req->now_ms + (gw_mono_us() - st->t_start) / 1000;
}

/* What the caller is told to wait after HSS's 429: HSS's, else 12 s. */
int64_t
gw_pipe_retry_after_of(const struct gw_upresp *r)
{
	/* reference 6: 5 a minute, so a slot frees within 12 s. */
	return r->retry_after_s > 0 ? r->retry_after_s : 12;
}

/*
 * HSS answered 429 (APIGW.0308: another user of the same identity, or
 * another instance, spent the minute).  Waits what HSS's Retry-After
 * says, else 2 s, 4 s, 8 s... and takes
 * the budget again (waits capped at 16 s), as long as the wait ends within
 * tasks.retry_deadline_ms of the request's start (below nginx's
 * fastcgi_read_timeout, so the caller still gets an answer); else the
 * caller gets 429 HSSGW.0206 with Retry-After.  GW_OK: send again.
 */
enum gw_err
gw_pipe_throttled(struct reqstate *st, int attempt, const char *api)
{
	struct json_object *o =
	    json_tokener_parse(st->upresp.body != NULL ? st->upresp.body : "");
	int64_t delay =
	    gw_task_retry_delay_ms(attempt, st->upresp.retry_after_s);
	int64_t elapsed = (gw_mono_us() - st->t_start) / 1000;
	struct timespec ts;

	free(st->up_error_code);
	st->up_error_code = o != NULL ? gw_pipe_find_error_code(o) : NULL;
	json_object_put(o);
	if (elapsed + delay > st->snap->conf->tasks_retry_deadline_ms) {
		st->retry_after_s = gw_pipe_retry_after_of(&st->upresp);
		return gw_fault_set(&st->fault, GW_ERR_UPSTREAM_BUSY, "",
		                    "HSS is throttling the gateway (%d "
		                    "retries)",
		                    st->retries);
	}
	ts.tv_sec = (time_t)(delay / 1000);
	ts.tv_nsec = (long)(delay % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1)
		continue; /* EINTR: a signal; sleep what is left */
	st->retries++;
	gw_upresp_reset(&st->upresp);
	return gw_pipe_budget_take(st, st->cred_name, api);
}

/* Takes one call of api from the budget of cred; GW_ERR_BUDGET if spent. */
enum gw_err
gw_pipe_budget_take(struct reqstate *st, const char *cred, const char *api)
{
	char bucket[200], caller[256];
	int64_t retry = 0;

	snprintf(bucket, sizeof(bucket), "%s|%s", cred, api);
	caller_of(st, caller, sizeof(caller));
	if (gw_budget_take(st->snap->budget, bucket, caller, now_of(st),
	                   &retry) == 0)
		return GW_OK;
	st->retry_after_s = (retry + 999) / 1000;
	return gw_fault_set(&st->fault, GW_ERR_BUDGET, "",
	                    "the upstream budget for %s is spent; retry in "
	                    "%lld s",
	                    api, (long long)st->retry_after_s);
}

typedef void route_fn(const struct gw_snapshot *, struct gw_worker *,
                      const struct gw_http_req *, struct gw_http_resp *);

static const struct route {
	const char *method;
	const char *path;
	route_fn *fn;
} routes[] = {
    {"POST", "/v1/exports/image-baseline", handle_export},
    {"GET", "/v1/exports/image-baseline/*", gw_pipe_handle_task_status},
    {"GET", "/v1/exports/image-baseline/*/file", gw_pipe_handle_task_file},
    {"GET", "/healthz", handle_health},
};

/* A route path: "*" stands for one non-empty segment. */
static int
path_match(const char *pat, const char *path)
{
	size_t n;

	while (*pat != '\0') {
		if (*pat == '*') {
			n = strcspn(path, "/");
			if (n == 0)
				return 0;
			path += n;
			pat++;
			continue;
		}
		if (*pat++ != *path++)
			return 0;
	}
	return *path == '\0';
}

void
gw_pipe_handle(const struct gw_snapshot *s, struct gw_worker *w,
               const struct gw_http_req *req, struct gw_http_resp *resp)
{
	struct reqstate st;
	size_t i;
	int path_known = 0;

	const struct gw_http_stream *stream = resp->stream;

	memset(resp, 0, sizeof(*resp));
	resp->stream = stream;
	gw_pipe_reqstate_init(&st, s, req, NULL);
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (req->path == NULL || !path_match(routes[i].path, req->path))
			continue;
		path_known = 1;
		if (req->method != NULL &&
		    strcmp(routes[i].method, req->method) == 0) {
			routes[i].fn(s, w, req, resp);
			goto out;
		}
	}
	if (path_known)
		gw_fault_set(&st.fault, GW_ERR_METHOD, "",
		             "method not allowed");
	else
		gw_fault_set(&st.fault, GW_ERR_NOT_FOUND, "",
		             "no such endpoint");
	gw_pipe_answer_error(req, &st.fault, resp);
	/* Every request hssgw answers is audited, but the health probe. */
	if (gw_pipe_audit(&st, resp) != GW_OK)
		gw_pipe_answer_unaudited(&st, resp);
out:
	if (req->request_id != NULL && !resp->streamed)
		gw_pipe_resp_header(resp, "X-Request-Id", req->request_id);
}

/*
 * The headers each credential type adds at send time, as "hssgw translate"
 * shows them: secrets as "<redacted>", the signing time as a placeholder.
 * A NULL value stands for the project id, which is no secret.
 */
static const struct cred_header {
	const char *type;
	const char *name;
	const char *value;
	int secret;
} cred_headers[] = {
    {"token_file", "X-Auth-Token", "<redacted>", 1},
    {"iam_password", "X-Auth-Token", "<redacted>", 1},
    {"iam_agency", "X-Auth-Token", "<redacted>", 1},
    {"aksk", "X-Sdk-Date", "<YYYYMMDDTHHMMSSZ at send time>", 0},
    {"aksk", "X-Project-Id", NULL, 0},
    {"aksk", "Authorization", "<redacted>", 1},
};

/* Adds the project's credential headers, placeholders only; 0 or -1. */
static int
show_cred_headers(struct gw_upreq *up, const struct gw_conf_project *p)
{
	const struct cred_header *h;
	size_t i;
	int found = 0;

	for (i = 0; i < sizeof(cred_headers) / sizeof(cred_headers[0]); i++) {
		h = &cred_headers[i];
		if (p->cred == NULL || strcmp(h->type, p->cred->type) != 0)
			continue;
		found = 1;
		if (gw_upreq_set_header(up, h->name,
		                        h->value ? h->value : p->project_id,
		                        h->secret) == -1)
			return -1;
	}
	/* A type with no row would print a request that cannot be sent. */
	return found ? 0 : -1;
}

int
gw_pipe_translate(const struct gw_config *conf, const char *body, size_t len,
                  struct gw_buf *out)
{
	struct gw_export_req *xreq = NULL;
	struct gw_upreq *up = NULL;
	struct json_object *o = NULL;
	struct gw_fault f;
	int rc = -1;

	memset(&f, 0, sizeof(f));
	if (gw_tr_parse(conf, body, len, &xreq, &f) != GW_OK ||
	    gw_tr_build(xreq, &up, &f) != GW_OK) {
		o = json_object_new_object();
		json_object_object_add(
		    o, "status", json_object_new_int(gw_err_status(f.err)));
		json_object_object_add(
		    o, "error_code",
		    json_object_new_string(gw_err_code(f.err)));
		json_object_object_add(o, "field",
		                       json_object_new_string(f.field));
		json_object_object_add(o, "error_msg",
		                       json_object_new_string(f.msg));
		gw_buf_puts(out, json_object_to_json_string_ext(
		                     o, JSON_C_TO_STRING_PRETTY |
		                            JSON_C_TO_STRING_SPACED |
		                            JSON_C_TO_STRING_NOSLASHESCAPE));
		rc = 1;
		goto out;
	}
	if (show_cred_headers(up, xreq->project) == -1 ||
	    gw_upreq_json(up, out) == -1)
		goto out;
	rc = 0;
out:
	json_object_put(o);
	gw_upreq_free(up);
	gw_tr_req_free(xreq);
	return rc;
}
