/*
 * The stages every route shares, in the order a request meets them:
 * the bearer token and its verification, the budget (and HSS's 429s),
 * the error answer in HSS's shape, and the audit records (intent before
 * anything goes upstream, outcome or final record before the answer).
 * Owns the request's core state: it starts and ends (frees) here, the
 * route's context with it (gw_route_ops).  Knows no route: the
 * handlers call in here, never the other way round (a route's context is
 * reached only through the gw_route_ops it attached).  Never puts a token,
 * key or secret in a response, record or log line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "budget.h"
#include "stages.h"

void
gw_http_resp_reset(struct gw_http_resp *r)
{
	const struct gw_http_stream *stream = r->stream;
	struct gw_deferred *defer = r->defer;
	size_t i;

	for (i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->body);
	memset(r, 0, sizeof(*r));
	r->stream = stream;
	r->defer = defer;
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

void
gw_pipe_set_body(struct gw_http_resp *resp, struct gw_buf *b)
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
	resp->err = f->err;
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
	gw_pipe_set_body(resp, &b);
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

/* Verifies the bearer token (same rules as exports); GW_OK or a fault. */
enum gw_err
gw_pipe_authenticate(struct reqstate *st)
{
	const char *token;
	enum gw_err rc;
	int64_t t = gw_mono_us();

	token = gw_pipe_bearer(st->req->authorization);
	if (token == NULL) {
		gw_metrics_jwt(st->snap->metrics, GW_MET_JWT_MISSING);
		return gw_fault_set(&st->fault, GW_ERR_UNAUTHENTICATED,
		                    "Authorization",
		                    "a Bearer token is required");
	}
	gw_fingerprint(token, strlen(token), st->token_fp);
	rc = gw_jwt_verify(st->snap->keys, token, st->req->now_ms / 1000,
	                   &st->claims, &st->fault);
	st->lat_auth = gw_mono_us() - t;
	gw_metrics_jwt(st->snap->metrics,
	               rc == GW_OK ? GW_MET_JWT_OK : GW_MET_JWT_INVALID);
	if (rc == GW_ERR_TOKEN_INVALID) {
		/*
		 * One answer for every refused token: the reason (unknown
		 * issuer, kid or algorithm, expiry...) would tell an
		 * anonymous caller which exist.  The record keeps it.
		 */
		snprintf(st->auth_error, sizeof(st->auth_error), "%s",
		         st->fault.msg);
		gw_fault_set(&st->fault, rc, "Authorization", "invalid token");
	}
	return rc;
}

/*
 * Records the upstream attempt now in st->upresp (HSS's status and error
 * code) with its latency; past GW_AUDIT_ATTEMPTS_MAX the last slot holds
 * the latest.  The final attempt's code becomes st->up_error_code, so
 * the outcome record never shows an earlier attempt's.
 */
void
gw_pipe_attempt(struct reqstate *st, int64_t latency_us)
{
	struct json_object *o = NULL;
	size_t i = st->nattempts;

	if (i == GW_AUDIT_ATTEMPTS_MAX)
		i--;
	else
		st->nattempts++;
	free(st->attempt_codes[i]);
	st->attempt_codes[i] = NULL;
	/* Only errors carry a code; a 200 body can be large. */
	if (st->upresp.status >= 400 && st->upresp.body != NULL)
		o = json_tokener_parse(st->upresp.body);
	if (o != NULL)
		st->attempt_codes[i] = gw_pipe_find_error_code(o);
	json_object_put(o);
	st->attempts[i].status = st->upresp.status;
	st->attempts[i].error_code = st->attempt_codes[i];
	st->attempts[i].latency_us = latency_us;
	gw_metrics_upstream(st->snap->metrics, st->api, st->upresp.status,
	                    latency_us);
	free(st->up_error_code);
	st->up_error_code =
	    st->attempt_codes[i] != NULL ? strdup(st->attempt_codes[i]) : NULL;
}

void
gw_pipe_reqstate_route(struct reqstate *st, const struct gw_route_ops *ops,
                       void *ctx)
{
	st->route = ops;
	st->route_ctx = ctx;
}

/*
 * The one place a request's memory is released: the route's context
 * first (it may borrow from the core), then every owned field.  Leaves
 * the state as gw_pipe_reqstate_init would, minus the snapshot.
 */
void
gw_pipe_reqstate_reset(struct reqstate *st)
{
	size_t i;

	if (st->route != NULL && st->route->reset != NULL)
		st->route->reset(st->route_ctx);
	if (st->wait_slot)
		atomic_fetch_sub(st->req->waiting, 1);
	st->wait_slot = 0;
	st->route = NULL;
	st->route_ctx = NULL;
	for (i = 0; i < GW_AUDIT_ATTEMPTS_MAX; i++) {
		free(st->attempt_codes[i]);
		st->attempt_codes[i] = NULL;
	}
	st->nattempts = 0;
	free(st->task_id);
	st->task_id = NULL;
	free(st->up_error_code);
	st->up_error_code = NULL;
	gw_upresp_reset(&st->upresp);
	gw_upreq_free(st->upreq);
	st->upreq = NULL;
	gw_claims_free(st->claims);
	st->claims = NULL;
}

/* The fields every record of a request shares, from its state so far. */
static void
fill_rec(struct reqstate *st, enum gw_audit_phase phase, struct gw_audit_rec *r)
{
	const struct gw_claim *groups, *team = NULL;
	size_t i;

	memset(r, 0, sizeof(*r));
	r->phase = phase;
	r->time_ms = st->req->now_ms;
	r->request_id = st->req->request_id;
	r->client_addr = st->req->client_addr;
	r->method = st->req->method;
	r->path = st->req->path;
	/* No verified token: the trail may count it instead (AUDIT.md). */
	r->anonymous = st->claims == NULL;
	r->auth_error = st->auth_error[0] ? st->auth_error : NULL;
	if (st->claims != NULL) {
		r->subject = st->claims->sub;
		r->issuer = st->claims->iss;
		r->jti = st->claims->jti;
		groups = gw_claims_get(st->claims, "groups");
		if (groups != NULL) {
			r->groups = (const char *const *)groups->values;
			r->ngroups = groups->nvalues;
		}
		/* The fair share's team, so the report groups by it. */
		if (st->snap->conf->tasks_fair_share_claim != NULL)
			team = gw_claims_get(
			    st->claims, st->snap->conf->tasks_fair_share_claim);
		if (team != NULL && team->nvalues > 0)
			r->team = team->values[0];
	}
	r->token_fp = st->token_fp[0] ? st->token_fp : NULL;
	r->action = st->action;
	r->resource = st->resource[0] ? st->resource : NULL;
	r->project = st->project;
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
	}
	r->policy_revision = gw_pol_revision(st->snap->pol);
	/* What the policies read, so a replay sees the same (issue 24). */
	if (st->decided && st->claims != NULL) {
		r->nclaims =
		    gw_pol_claims_read(st->snap->pol, st->claims, r->claims, 0,
		                       GW_AUDIT_CLAIMS_MAX);
		r->nclaims =
		    gw_pol_claims_read(st->snap->shadow, st->claims, r->claims,
		                       r->nclaims, GW_AUDIT_CLAIMS_MAX);
	}
	if (st->decided && st->snap->shadow != NULL) {
		r->shadow_decision = gw_pol_effect_name(st->shadow.effect);
		r->shadow_stmt_file =
		    st->shadow.file[0] ? st->shadow.file : NULL;
		r->shadow_stmt_sid = st->shadow.sid;
		r->shadow_revision = gw_pol_revision(st->snap->shadow);
	}
	r->upreq = st->upreq;
	r->record_total_num = -1;
	r->cred_name = st->cred_name;
	r->cred_fp = st->cred_fp[0] ? st->cred_fp : NULL;
	r->lat_auth_us = st->lat_auth;
	r->lat_policy_us = st->lat_policy;
	r->lat_total_us = gw_mono_us() - st->t_start;
}

/* The route's fields of a record, last: they may override the core's. */
static void
fill_route(struct reqstate *st, struct gw_audit_rec *r)
{
	if (st->route != NULL && st->route->fill_rec != NULL)
		st->route->fill_rec(st, st->route_ctx, r);
}

static void
audit_failed(const char *request_id, const char *why)
{
	fprintf(stderr, "hssgw: request %s: %s\n",
	        request_id != NULL && *request_id ? request_id : "-", why);
}

/*
 * Whether the answer's record may be left to the front to wait for
 * (struct gw_deferred): a whole answer, not a stream; ids that fit.
 */
static int
may_defer(const struct reqstate *st, const struct gw_http_resp *resp)
{
	const char *rid = st->req->request_id, *tid = st->task_id;

	return resp != NULL && resp->defer != NULL && !resp->streamed &&
	       gw_audit_can_defer(st->snap->audit) &&
	       (rid == NULL || strlen(rid) <= GW_DEFER_ID_MAX) &&
	       (tid == NULL || strlen(tid) <= GW_DEFER_ID_MAX);
}

/* resp NULL, or not deferrable: returns once the record is durable. */
static enum gw_err
emit(const struct reqstate *st, const struct gw_audit_rec *r,
     struct gw_http_resp *resp)
{
	struct gw_deferred *d;
	char err[256];

	if (!may_defer(st, resp)) {
		if (gw_audit_emit(st->snap->audit, r, err, sizeof(err)) ==
		    GW_OK) {
			gw_metrics_audit_record(st->snap->metrics, 1);
			return GW_OK;
		}
	} else {
		d = resp->defer;
		if (gw_audit_emit_async(st->snap->audit, r, &d->ticket, err,
		                        sizeof(err)) == GW_OK) {
			/* Counted by gw_pipe_deferred_done. */
			d->audit = st->snap->audit;
			snprintf(d->request_id, sizeof(d->request_id), "%s",
			         st->req->request_id ? st->req->request_id
			                             : "");
			snprintf(d->task_id, sizeof(d->task_id), "%s",
			         st->task_id ? st->task_id : "");
			resp->deferred = 1;
			return GW_OK;
		}
	}
	gw_metrics_audit_record(st->snap->metrics, 0);
	audit_failed(st->req->request_id, err);
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

	fill_rec(st, GW_AUDIT_INTENT, &r);
	fill_route(st, &r);
	if (emit(st, &r, NULL) != GW_OK)
		return gw_fault_set(&st->fault, GW_ERR_AUDIT, "",
		                    "the audit trail cannot be written");
	st->intent = 1;
	return GW_OK;
}

/* The record of the answer: the outcome of an intent, or the only one. */
enum gw_err
gw_pipe_audit(struct reqstate *st, struct gw_http_resp *resp)
{
	struct gw_audit_rec r;

	fill_rec(st, st->intent ? GW_AUDIT_OUTCOME : GW_AUDIT_FINAL, &r);
	r.status = resp->status;
	if (!st->passthrough) {
		r.error_code = gw_err_code(st->fault.err);
		r.error_field = st->fault.field[0] ? st->fault.field : NULL;
	} else if (st->up_error_code != NULL)
		r.error_code = st->up_error_code;
	r.up_status = st->upresp.status;
	r.up_error_code = st->up_error_code;
	r.task_id = st->task_id;
	r.attempts = st->attempts;
	r.nattempts = st->nattempts;
	r.lat_upstream_us = st->lat_upstream;
	fill_route(st, &r);
	/* Counted here: every route that decides or reuses ends here once. */
	if (st->decided)
		gw_metrics_decision(st->snap->metrics,
		                    st->decision.effect == GW_POL_ALLOW
		                        ? GW_MET_DEC_ALLOW
		                        : GW_MET_DEC_DENY);
	if (r.coalesced)
		gw_metrics_coalesced(st->snap->metrics);
	if (r.cached)
		gw_metrics_status_cache_hit(st->snap->metrics);
	return emit(st, &r, resp);
}

void
gw_pipe_reqstate_init(struct reqstate *st, const struct gw_snapshot *s,
                      const struct gw_http_req *req, const char *action)
{
	memset(st, 0, sizeof(*st));
	st->snap = s;
	st->req = req;
	st->action = action;
	st->t_start = gw_mono_us();
}

/*
 * The record of an answer could not be made durable: no answer goes out
 * without one, so the caller gets 503 instead.  If HSS already accepted
 * the export, its task id is kept (the intent record is on disk).
 */
static void
unaudited(const struct gw_http_req *req, const char *task_id,
          struct gw_fault *f, struct gw_http_resp *resp)
{
	gw_http_resp_reset(resp);
	if (task_id != NULL && *task_id)
		gw_fault_set(
		    f, GW_ERR_AUDIT, "",
		    "HSS accepted the export as task %s, but the audit "
		    "trail cannot be written",
		    task_id);
	else
		gw_fault_set(f, GW_ERR_AUDIT, "",
		             "the audit trail cannot be written");
	gw_pipe_answer_error(req, f, resp);
}

void
gw_pipe_answer_unaudited(struct reqstate *st, struct gw_http_resp *resp)
{
	unaudited(st->req, st->task_id, &st->fault, resp);
}

void
gw_pipe_deferred_done(struct gw_metrics *m, const struct gw_deferred *d, int ok,
                      const char *why, struct gw_http_resp *resp)
{
	struct gw_http_req req;
	struct gw_fault f;
	int status = d->status;
	enum gw_err err = d->err;

	gw_metrics_audit_record(m, ok);
	if (!ok) {
		audit_failed(d->request_id, why);
		memset(&req, 0, sizeof(req));
		memset(&f, 0, sizeof(f));
		req.request_id = d->request_id[0] ? d->request_id : NULL;
		unaudited(&req, d->task_id, &f, resp);
		if (req.request_id != NULL)
			gw_pipe_resp_header(resp, "X-Request-Id",
			                    req.request_id);
		status = resp->status;
		err = resp->err;
	}
	gw_metrics_request(m, (enum gw_met_route)d->route, status, err,
	                   err == GW_OK && status >= 400,
	                   gw_mono_us() - d->t_start);
}

/*
 * Who shares a fair share: the configured claim's first value, else the
 * subject; with the issuer so two IdPs never share one; keyed by a hash
 * of the whole, however long (gw_budget_caller_key).
 */
static void
caller_of(const struct reqstate *st, char *out, size_t cap)
{
	const struct gw_claim *c = NULL;
	const char *who = st->claims->sub;
	char key[GW_BUDGET_CALLER_KEY_LEN + 1];

	if (st->snap->conf->tasks_fair_share_claim != NULL)
		c = gw_claims_get(st->claims,
		                  st->snap->conf->tasks_fair_share_claim);
	if (c != NULL && c->nvalues > 0)
		who = c->values[0];
	/* Out of memory: one shared key, never a wrong caller's. */
	if (gw_budget_caller_key(st->claims->iss, who, key) == -1)
		snprintf(key, sizeof(key), "?");
	snprintf(out, cap, "%s", key);
}

/* The request's clock: its start time plus what has passed since. */
int64_t
gw_pipe_now(const struct reqstate *st)
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

/* A grant's budget bucket and fair-share caller. */
static void
grant_keys(struct reqstate *st, const char *cred, const char *api,
           char bucket[200], char caller[256])
{
	snprintf(bucket, 200, "%s|%s", cred, api);
	caller_of(st, caller, 256);
}

/*
 * Gives back the call gw_pipe_budget_take took, when nothing was sent.
 * A grant already completed (gw_pipe_budget_done) is not given back.
 */
void
gw_pipe_budget_refund(struct reqstate *st, const char *cred, const char *api)
{
	char bucket[200], caller[256];

	grant_keys(st, cred, api, bucket, caller);
	if (st->grant[0] != '\0')
		gw_shared_budget_refund(st->snap->shared, bucket, caller,
		                        st->grant, gw_pipe_now(st));
	if (st->local_id != 0)
		gw_budget_refund(st->snap->budget, bucket, caller,
		                 st->local_id);
	st->grant[0] = '\0';
	st->local_id = 0;
}

/*
 * The call gw_pipe_budget_take took has completed: an answer, an error or
 * a timeout, anything once the request may have left.  HSS counted it
 * when it arrived, somewhere before now, so its grant is held a window
 * from now (budget.h); in both budgets that granted it.  Once per grant:
 * the grant is forgotten here.
 */
void
gw_pipe_budget_done(struct reqstate *st, const char *cred, const char *api)
{
	char bucket[200], caller[256];

	grant_keys(st, cred, api, bucket, caller);
	if (st->grant[0] != '\0')
		gw_shared_budget_done(st->snap->shared, bucket, caller,
		                      st->grant, GW_BUDGET_HOLD_MS,
		                      gw_pipe_now(st));
	if (st->local_id != 0)
		gw_budget_done(st->snap->budget, bucket, caller, st->local_id,
		               gw_pipe_now(st));
	st->grant[0] = '\0';
	st->local_id = 0;
}

/*
 * With shared_state: the shared budget (one script on Redis, all
 * instances); while Redis is lost, the local budget of budget /
 * expected_instances, but only once a hold window has passed since it
 * was lost (the others may have spent that window through Redis just
 * before); and for a hold window after it returns, both (Redis may have
 * lost the grants, and the local ones were never in it).  0 granted, 1
 * refused with *retry; docs/SHARED_STATE.md.
 */
static int
shared_take(struct reqstate *st, const char *bucket, const char *caller,
            int64_t *retry)
{
	struct gw_shared *sh = st->snap->shared;
	int64_t now = gw_pipe_now(st);
	int rc;

	rc = gw_shared_budget_take(
	    sh, bucket, caller, st->snap->conf->tasks_budget_per_minute,
	    GW_BUDGET_HOLD_MS, GW_BUDGET_WINDOW_MS, now, retry, st->grant);
	if (rc == 1)
		return 1;
	if (rc == -1 && !gw_shared_degraded(sh)) {
		*retry = 1000; /* every connection busy: fail closed */
		return 1;
	}
	if (rc == -1 && gw_shared_fallback(sh, GW_BUDGET_HOLD_MS, now, retry))
		return 1;
	if (rc == 0 && !gw_shared_armed(sh, GW_BUDGET_HOLD_MS, now))
		return 0;
	if (gw_budget_take_id(st->snap->budget, bucket, caller, now, retry,
	                      &st->local_id) == 0)
		return 0; /* local_id: the local budget granted too */
	if (rc == 0) {
		gw_shared_budget_refund(sh, bucket, caller, st->grant, now);
		st->grant[0] = '\0';
	}
	return 1;
}

/* Takes one call of api from the budget of cred; GW_ERR_BUDGET if spent. */
enum gw_err
gw_pipe_budget_take(struct reqstate *st, const char *cred, const char *api)
{
	char bucket[200], caller[256];
	int64_t retry = 0;
	int refused;

	snprintf(bucket, sizeof(bucket), "%s|%s", cred, api);
	caller_of(st, caller, sizeof(caller));
	st->api = api;
	st->grant[0] = '\0';
	st->local_id = 0;
	if (st->snap->shared != NULL)
		refused = shared_take(st, bucket, caller, &retry);
	else
		refused = gw_budget_take_id(st->snap->budget, bucket, caller,
		                            gw_pipe_now(st), &retry,
		                            &st->local_id) != 0;
	if (!refused)
		return GW_OK;
	/* Counted here, whichever budget (shared or local) refused. */
	gw_budget_refused(st->snap->budget, bucket);
	if (retry < 1)
		retry = 1;
	st->retry_after_s = (retry + 999) / 1000;
	return gw_fault_set(&st->fault, GW_ERR_BUDGET, "",
	                    "the upstream budget for %s is spent; retry in "
	                    "%lld s",
	                    api, (long long)st->retry_after_s);
}

/*
 * reserve_threads: at most threads - reserve_threads requests wait on HSS
 * at once (sending to it, or waiting for an identical export's call), so
 * the other workers stay free for /healthz and every answer that needs no
 * wait.  Taken just before the first wait, once per request, released by
 * the teardown.  None free: 503 HSSGW.0305 with Retry-After: 1, and the
 * grant the budget gave for the call (if any) is given back, since nothing
 * is sent.
 */
enum gw_err
gw_pipe_wait_slot(struct reqstate *st)
{
	atomic_int *n = st->req->waiting;

	if (n == NULL || st->wait_slot)
		return GW_OK;
	if (atomic_fetch_add(n, 1) < st->req->waiting_max) {
		st->wait_slot = 1;
		return GW_OK;
	}
	atomic_fetch_sub(n, 1);
	if (st->grant[0] != '\0' || st->local_id != 0)
		gw_pipe_budget_refund(st, st->cred_name, st->api);
	st->retry_after_s = 1;
	return gw_fault_set(&st->fault, GW_ERR_BUSY, "",
	                    "every worker that may wait on HSS is busy: "
	                    "retry later");
}

char *
gw_pipe_cache_get(struct reqstate *st, struct gw_cache *local, const char *ns,
                  const char *key)
{
	char *v = gw_cache_get(local, key, gw_pipe_now(st));

	if (v != NULL || st->snap->shared == NULL)
		return v;
	return gw_shared_get(st->snap->shared, ns, key, gw_pipe_now(st));
}

/* Both: the local copy serves this instance while Redis is lost. */
void
gw_pipe_cache_put(struct reqstate *st, struct gw_cache *local, const char *ns,
                  const char *key, const char *value, int64_t ttl_ms,
                  int add_only)
{
	gw_cache_put(local, key, value, gw_pipe_now(st), ttl_ms, add_only);
	if (st->snap->shared != NULL)
		gw_shared_put(st->snap->shared, ns, key, value, ttl_ms,
		              add_only, gw_pipe_now(st));
}
