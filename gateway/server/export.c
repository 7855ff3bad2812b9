/*
 * POST /v1/exports/image-baseline: the export route.  Authenticates,
 * validates and translates the simplified request (translate.c), asks the
 * policy, refuses while the trail is not shipped (audit.ship.max_lag_s),
 * coalesces identical exports, injects the project's credentials
 * (cred.c), takes the budget, writes the durable intent record, sends the
 * one HSS call and passes HSS's answer back with a signed task handle.
 * Never sends an export without its intent record on disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "stages.h"
#include "handlers.h"

/* HSSGW.0307's Retry-After: the shipper catches up in seconds. */
#define SHIP_RETRY_AFTER_S 5

/*
 * The export route's context (gw_route_ops): the parsed request and the
 * coalescing state, torn down with the request by export_reset.
 */
struct export_ctx {
	struct gw_export_req *xreq;
	long long record_total_num; /* from HSS's 200; -1 else */
	int coalesced;              /* the export answer is an earlier one's */
	char *coalesce_key;         /* project and redacted request, or NULL */
	int flight_lead; /* leads the single flight of coalesce_key */
	/* shared_state: the claim on coalesce_key */
	char claim[GW_SHARED_TOKEN_MAX + 1];
};

static struct export_ctx *
xctx(const struct reqstate *st)
{
	return st->route_ctx;
}

/* The export's fields of a record (docs/AUDIT.md). */
static void
export_fill_rec(struct reqstate *st, void *ctx, struct gw_audit_rec *r)
{
	const struct export_ctx *x = ctx;

	/* The request's condition keys (hss:...), for a replay (issue 24). */
	if (st->decided && x->xreq != NULL) {
		r->ctx = x->xreq->ctx;
		r->nctx = x->xreq->nctx;
	}
	if (r->phase == GW_AUDIT_INTENT)
		return;
	r->record_total_num = x->record_total_num;
	r->coalesced = x->coalesced;
	/* A coalesced answer is an earlier call's: nothing was sent. */
	if (x->coalesced)
		r->up_status = 0;
}

static void
export_reset(void *ctx)
{
	struct export_ctx *x = ctx;

	free(x->coalesce_key);
	x->coalesce_key = NULL;
	gw_tr_req_free(x->xreq);
	x->xreq = NULL;
}

static const struct gw_route_ops export_ops = {export_fill_rec, export_reset};

static enum gw_err coalesce(struct reqstate *, int *);

static int
is_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
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
	xctx(st)->record_total_num = n;
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
	const char *pid = xctx(st)->xreq->project->project_id;
	enum gw_err rc;
	int64_t t;
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		if (attempt > 0) {
			/*
			 * HSS has seen the rejected call (its per-IP limit
			 * counts it): the resend is a call of its own and
			 * needs a grant, or the budget would let 2 calls
			 * through for 1 (a refusal answers 429 HSSGW.0205).
			 */
			gw_pipe_budget_done(st, st->cred_name, "export");
			rc = gw_pipe_budget_take(st, st->cred_name, "export");
			if (rc != GW_OK)
				return rc;
			gw_cred_invalidate(cred, pid, st->cred_fp);
			gw_upresp_reset(&st->upresp);
			rc =
			    gw_cred_apply(cred, st->upreq, pid, st->req->now_ms,
			                  st->cred_fp, &st->fault);
			if (rc != GW_OK)
				return rc;
		}
		t = gw_mono_us();
		rc = gw_up_send(w->up, st->snap->conf, st->upreq, &st->upresp,
		                &st->fault);
		gw_pipe_attempt(st, gw_mono_us() - t);
		if (rc != GW_OK || st->upresp.status != 401)
			return rc;
	}
	return gw_fault_set(&st->fault, GW_ERR_UPSTREAM_AUTH, "",
	                    "HSS rejected the gateway's own credentials");
}

/* The earlier answer cached under the coalesce key, if any: 1 or 0. */
static int
coalesce_hit(struct reqstate *st)
{
	struct export_ctx *x = xctx(st);
	char *hit = gw_pipe_cache_get(st, st->snap->coalesce, "coalesce",
	                              x->coalesce_key);

	if (hit == NULL)
		return 0;
	x->coalesced = 1;
	st->cred_name = NULL;
	st->upresp.status = 200;
	st->upresp.body = hit;
	st->upresp.bodylen = strlen(hit);
	return 1;
}

/*
 * Across instances (docs/SHARED_STATE.md): the local leader of an export
 * claims it in Redis (SET NX PX, for as long as it may wait for HSS); who
 * finds it claimed polls for the answer every 100 ms until its deadline,
 * and claims it itself if the claim goes (the claimant failed).  While
 * Redis is lost, coalescing is local only.  *hit as for coalesce().
 */
static enum gw_err
shared_claim(struct reqstate *st, int64_t limit, int *hit)
{
	struct gw_shared *sh = st->snap->shared;
	struct export_ctx *x = xctx(st);
	struct timespec ts = {0, 100 * 1000000L};
	int64_t left;

	for (;;) {
		left = limit - (gw_mono_us() - st->t_start) / 1000;
		if (left < 1)
			return gw_fault_set(&st->fault, GW_ERR_UPSTREAM_TIMEOUT,
			                    "",
			                    "an identical export is still "
			                    "waiting for HSS");
		switch (gw_shared_claim(sh, "claim", x->coalesce_key, left,
		                        x->claim, gw_pipe_now(st))) {
		case 1:
			/* It may have landed between our look and claim. */
			if ((*hit = coalesce_hit(st)) == 1)
				gw_shared_release(sh, "claim", x->coalesce_key,
				                  x->claim, gw_pipe_now(st));
			return GW_OK;
		case -1:
			return GW_OK;
		default:
			break;
		}
		/* Claimed elsewhere: waiting for that instance's call. */
		if (gw_pipe_wait_slot(st) != GW_OK)
			return st->fault.err;
		nanosleep(&ts, NULL);
		if ((*hit = coalesce_hit(st)) == 1)
			return GW_OK;
	}
}

/*
 * Joins the single flight of the coalesce key, limit ms from the
 * request's start.  Following a flight is a wait on another request's HSS
 * call, so a follower takes a wait slot first (*rc GW_ERR_BUSY, 503, when
 * none is free: it has taken no budget and waits for nothing); a leader
 * takes none yet, the budget comes first (run_export).
 */
static enum gw_flight_rc
flight_join(struct reqstate *st, int64_t limit, enum gw_err *rc)
{
	const char *key = xctx(st)->coalesce_key;
	enum gw_flight_rc f = gw_flight_join(st->snap->flight, key, 0);

	*rc = GW_OK;
	if (f != GW_FLIGHT_TIMEOUT)
		return f; /* lead, go alone, or it has just landed */
	*rc = gw_pipe_wait_slot(st);
	if (*rc != GW_OK)
		return GW_FLIGHT_TIMEOUT;
	return gw_flight_join(st->snap->flight, key,
	                      limit - (gw_mono_us() - st->t_start) / 1000);
}

/*
 * Coalescing (docs/TASKS.md): an export identical to one HSS accepted
 * within tasks.coalesce_window_ms (same translated request, hence same
 * project, filters and query) gets that export's answer: its task_id,
 * and below a handle bound to this caller.  No HSS call, no budget.  The
 * key is built before credentials are applied, so it holds no secret and
 * no signing time.  Single flight: while an identical export is in the
 * air, this one takes a wait slot and waits for it to land (at most
 * until its own deadline, the longer of tasks.retry_deadline_ms and
 * upstream.timeout_ms from the request's start) and takes its answer; if
 * the first failed, the next in line flies.  An answer found in the
 * table needs no slot.  *hit is 1 when st->upresp now holds the earlier answer.
 */
static enum gw_err
coalesce(struct reqstate *st, int *hit)
{
	const struct gw_snapshot *s = st->snap;
	const struct gw_config *conf = s->conf;
	struct export_ctx *x = xctx(st);
	int64_t limit = conf->tasks_retry_deadline_ms > conf->up_timeout_ms
	                    ? conf->tasks_retry_deadline_ms
	                    : conf->up_timeout_ms;
	struct gw_buf b;
	enum gw_err rc;

	*hit = 0;
	if (conf->tasks_coalesce_window_ms <= 0)
		return GW_OK;
	gw_buf_init(&b, GW_CACHE_KEY_MAX);
	if (gw_buf_printf(&b, "%s\n", x->xreq->project->project_id) == -1 ||
	    gw_upreq_json(st->upreq, &b) == -1) {
		gw_buf_reset(&b);
		return GW_OK; /* too large to key: sent, never coalesced */
	}
	x->coalesce_key = gw_buf_take(&b, NULL);
	if (x->coalesce_key == NULL)
		return GW_OK;
	for (;;) {
		if ((*hit = coalesce_hit(st)) == 1)
			return GW_OK;
		switch (flight_join(st, limit, &rc)) {
		case GW_FLIGHT_LEAD:
			x->flight_lead = 1;
			if (s->shared != NULL)
				return shared_claim(st, limit, hit);
			return GW_OK;
		case GW_FLIGHT_NONE:
			return GW_OK;
		case GW_FLIGHT_TIMEOUT:
			if (rc != GW_OK)
				return rc; /* no wait slot */
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
	struct export_ctx *x = xctx(st);
	struct gw_pol_input in;
	struct gw_pol_verdict v;
	struct gw_cred *cred;
	enum gw_err rc;
	int64_t t;
	int attempt, hit = 0;

	if (req->body_too_large)
		return gw_fault_set(&st->fault, GW_ERR_TOO_LARGE, "body",
		                    "must be at most %lld bytes",
		                    s->conf->max_body_bytes);

	rc = gw_pipe_authenticate(st);
	if (rc != GW_OK)
		return rc;

	if (!is_json_type(req->content_type))
		return gw_fault_set(&st->fault, GW_ERR_MEDIA_TYPE,
		                    "Content-Type", "must be application/json");
	rc =
	    gw_tr_parse(s->conf, req->body, req->bodylen, &x->xreq, &st->fault);
	if (rc != GW_OK)
		return rc;
	st->project = x->xreq->project->alias;

	t = gw_mono_us();
	snprintf(st->resource, sizeof(st->resource), "hss:%s:%s",
	         x->xreq->project->region, x->xreq->project->alias);
	memset(&in, 0, sizeof(in));
	in.claims = st->claims;
	in.action = ACTION_EXPORT;
	in.resource = st->resource;
	in.ctx = x->xreq->ctx;
	in.nctx = x->xreq->nctx;
	in.now_ms = req->now_ms;
	in.client_ip = req->client_addr;
	if (gw_pol_decide(s->pol, &in, &v) == -1)
		return gw_fault_set(&st->fault, GW_ERR_INTERNAL, "",
		                    "request context too large");
	st->decision = v.decision;
	if (s->shadow != NULL && gw_pol_decide(s->shadow, &in, &v) == 0)
		st->shadow = v.decision;
	st->decided = 1;
	st->lat_policy = gw_mono_us() - t;
	if (st->decision.effect != GW_POL_ALLOW)
		/* Say what was denied, never which policy said so. */
		return gw_fault_set(&st->fault, GW_ERR_DENIED, "",
		                    "not allowed to perform %s on %s",
		                    ACTION_EXPORT, st->resource);

	/* An export's record would sit on this host only too long. */
	if (gw_ship_lag_refusing(s->shiplag)) {
		st->retry_after_s = SHIP_RETRY_AFTER_S;
		return gw_fault_set(&st->fault, GW_ERR_SHIP_LAG, "",
		                    "the audit trail is not shipped to the "
		                    "collector: retry later");
	}
	rc = gw_tr_build(x->xreq, &st->upreq, &st->fault);
	if (rc != GW_OK)
		return rc;
	rc = coalesce(st, &hit);
	if (rc != GW_OK)
		return rc;
	if (hit)
		return check_answer(st);
	cred = gw_snap_cred_get(s, x->xreq->project);
	if (cred == NULL)
		return gw_fault_set(&st->fault, GW_ERR_CREDENTIALS, "",
		                    "no credentials for project");
	st->cred_name = gw_cred_name(cred);
	rc = gw_cred_apply(cred, st->upreq, x->xreq->project->project_id,
	                   req->now_ms, st->cred_fp, &st->fault);
	if (rc != GW_OK)
		return rc;
	/*
	 * HSS allows 5 calls a minute (reference 6): hssgw never asks more.
	 * The budget comes before the intent record, so a refusal (429
	 * HSSGW.0205) sends nothing and leaves ONE final record, as
	 * docs/AUDIT.md says; an intent record would claim an HSS call that
	 * never happens.  The other way round, fail closed: no export leaves
	 * without its durable intent record, and when that record cannot be
	 * written the call taken is given back, since nothing was sent.
	 * Only now, granted, does it take its slot to wait on HSS: with
	 * none free it is 503 HSSGW.0305 and the grant is given back.
	 */
	rc = gw_pipe_budget_take(st, st->cred_name, "export");
	if (rc == GW_OK)
		rc = gw_pipe_wait_slot(st);
	if (rc != GW_OK)
		return rc;
	rc = gw_pipe_audit_intent(st);
	if (rc != GW_OK) {
		gw_pipe_budget_refund(st, st->cred_name, "export");
		return rc;
	}
	for (attempt = 0; rc == GW_OK; attempt++) {
		t = gw_mono_us();
		rc = send_upstream(st, w, cred);
		st->lat_upstream += gw_mono_us() - t;
		/* Sent (or may have been): held a window from now on. */
		gw_pipe_budget_done(st, st->cred_name, "export");
		if (rc != GW_OK || st->upresp.status != 429)
			break;
		rc = gw_pipe_throttled(st, attempt, "export");
	}
	if (rc != GW_OK)
		return rc;
	rc = check_answer(st);
	if (rc == GW_OK && st->upresp.status == 200 && x->coalesce_key != NULL)
		/* add_only: the first task stays the one others get. */
		gw_pipe_cache_put(st, s->coalesce, "coalesce", x->coalesce_key,
		                  st->upresp.body,
		                  s->conf->tasks_coalesce_window_ms, 1);
	return rc;
}
/* Adds the task handle to HSS's export answer (200 with a task_id). */
static void
add_handle(struct reqstate *st, struct gw_http_resp *resp)
{
	const struct gw_export_req *xreq = xctx(st)->xreq;
	char h[GW_TASK_HANDLE_MAX + 1];
	struct json_object *o = NULL;
	const char *text;

	if (resp->status != 200 || st->task_id == NULL ||
	    gw_task_seal(st->snap->tkey, st->task_id, xreq->project->alias,
	                 xreq->enterprise_project_id, st->claims->iss,
	                 st->claims->sub, st->req->now_ms, h, sizeof(h)) == -1)
		return;
	o = json_tokener_parse(resp->body);
	if (o == NULL || !json_object_is_type(o, json_type_object))
		goto out;
	json_object_object_add(o, "handle", json_object_new_string(h));
	text = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	free(resp->body);
	resp->body = strdup(text);
	resp->bodylen = resp->body != NULL ? strlen(resp->body) : 0;
	gw_pipe_resp_header(resp, "X-Export-Handle", h);
out:
	json_object_put(o);
}

void
gw_pipe_handle_export(const struct gw_snapshot *s, struct gw_worker *w,
                      const struct gw_http_req *req, struct gw_http_resp *resp)
{
	struct reqstate st;
	struct export_ctx x;
	enum gw_err rc;

	gw_pipe_reqstate_init(&st, s, req, ACTION_EXPORT);
	memset(&x, 0, sizeof(x));
	x.record_total_num = -1;
	gw_pipe_reqstate_route(&st, &export_ops, &x);
	rc = run_export(&st, w);
	if (x.flight_lead)
		/* After the cache put: those waiting find the answer. */
		gw_flight_land(s->flight, x.coalesce_key);
	if (x.claim[0] != '\0')
		gw_shared_release(s->shared, "claim", x.coalesce_key, x.claim,
		                  gw_pipe_now(&st));
	if (rc == GW_OK && st.passthrough) {
		/* HSS's own status and JSON body, unchanged. */
		resp->status = (int)st.upresp.status;
		resp->body = st.upresp.body;
		resp->bodylen = st.upresp.bodylen;
		st.upresp.body = NULL;
		gw_pipe_resp_header(resp, "Content-Type",
		                    "application/json;charset=utf-8");
		add_handle(&st, resp);
		gw_pipe_resp_header(resp, "X-Hssgw-Coalesced",
		                    x.coalesced ? "true" : "false");
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
	gw_pipe_reqstate_reset(&st);
}
