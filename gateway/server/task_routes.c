/*
 * Export tasks through the pipeline: status and streamed download of a
 * task by its signed handle (docs/TASKS.md), with the same stages as an
 * export: authentication, policy (and hss:ActForSubject for a task another
 * subject created), budget, intent and outcome records.  A handle that
 * does not open is one 404, whatever the reason, so nobody learns whether
 * someone else's task exists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "stages.h"
#include "handlers.h"

/* ---- export tasks: status and download (docs/TASKS.md) ---- */

#define ACTION_STATUS   "hss:GetExportTask"
#define ACTION_DOWNLOAD "hss:DownloadExportFile"
#define ACTION_ACT_FOR  "hss:ActForSubject"
#define TASK_PREFIX     "/v1/exports/image-baseline/"

/*
 * An HSS id (task or file) that may go into a URL path: the URL builder
 * (gw_tr_task_build) encodes every byte, so '/', '%' or "../x" cannot
 * change the path and "." or ".." are refused there; here only length,
 * UTF-8 and no control characters, so a log line stays one line.
 */
static int
id_ok(const char *s, size_t max)
{
	size_t i, n = strlen(s);

	if (n < 1 || n > max || !gw_utf8_valid(s, n))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * The task routes' context (gw_route_ops): what a task request found out
 * before it answers, torn down with the request by taskq_reset.
 */
struct taskq {
	struct gw_task_ref ref;
	const struct gw_conf_project *project;
	struct gw_cred *cred;
	char *status_body; /* HSS's status answer (200), owned */
	int cached;        /* the status answer came from the cache */
	char file_id[GW_TASK_ID_MAX + 1];
	char file_name[256];
	char task_status[16];
	/* the creator named by the handle (borrowed from ref), once open */
	const char *task_iss, *task_sub;
	/* hss:ActForSubject, evaluated when the caller is not the creator */
	struct gw_pol_decision actfor;
	int acted_for;
};

/* The task's fields of a record (docs/AUDIT.md). */
static void
taskq_fill_rec(struct reqstate *st, void *ctx, struct gw_audit_rec *r)
{
	const struct taskq *q = ctx;
	size_t i;

	r->task_issuer = q->task_iss;
	r->task_subject = q->task_sub;
	/* Acting for another subject: the Allow that let it, too. */
	for (i = 0; st->decided && q->acted_for && i < q->actfor.ndeciding &&
	            r->nstmts < GW_POL_DECIDING_MAX;
	     i++, r->nstmts++) {
		st->stmt_files[r->nstmts] = q->actfor.deciding[i].file;
		st->stmt_sids[r->nstmts] = q->actfor.deciding[i].sid;
	}
	if (r->phase != GW_AUDIT_INTENT)
		r->cached = q->cached;
}

static void
taskq_reset(void *ctx)
{
	struct taskq *q = ctx;

	free(q->status_body);
	q->status_body = NULL;
}

static const struct gw_route_ops taskq_ops = {taskq_fill_rec, taskq_reset};

/* Starts a task request: its core state and the route's context. */
static void
taskq_init(struct reqstate *st, struct taskq *q, const struct gw_snapshot *s,
           const struct gw_http_req *req, const char *action)
{
	gw_pipe_reqstate_init(st, s, req, action);
	memset(q, 0, sizeof(*q));
	gw_pipe_reqstate_route(st, &taskq_ops, q);
}

static enum gw_err
no_such_task(struct reqstate *st)
{
	return gw_fault_set(&st->fault, GW_ERR_TASK_NOT_FOUND, "",
	                    "no such export task");
}

/*
 * The enterprise project of the task: the one sealed in its handle at
 * export time (#16), else (a version 2 handle) the project's default.
 */
static const char *
task_eps(const struct taskq *q)
{
	if (!q->ref.has_eps)
		return q->project->enterprise_project_id;
	return q->ref.eps[0] != '\0' ? q->ref.eps : NULL;
}

/*
 * Route, token, handle, policy.  A caller other than the task's creator
 * (issuer and subject, from the handle) needs an Allow of
 * hss:ActForSubject on the task's resource, with hss:task_issuer and
 * hss:task_subject in the context; without one it gets the same 404 as a
 * forged handle or a task HSS does not know, so it cannot tell a foreign
 * task from a missing one.  Then the route's own action, as for exports.
 */
static enum gw_err
task_open(struct reqstate *st, const char *handle, const char *action,
          struct taskq *q)
{
	const struct gw_snapshot *s = st->snap;
	struct gw_pol_request preq;
	struct gw_pol_ctx pctx;
	const char *issv[1], *subv[1], *projv[1], *regv[1], *epsv[1];
	struct gw_kv kv[5];
	size_t nkv = 4;
	enum gw_err rc;
	int64_t t;

	rc = gw_pipe_authenticate(st);
	if (rc != GW_OK)
		return rc;
	if (gw_task_open(s->tkey, handle, &q->ref) == -1 ||
	    (q->project = gw_conf_project_get(s->conf, q->ref.project)) ==
	        NULL ||
	    !id_ok(q->ref.task_id, GW_TASK_ID_MAX))
		return no_such_task(st);
	/* Audited even when denied below: what was tried, by whom. */
	st->project = q->project->alias;
	st->task_id = strdup(q->ref.task_id);
	q->task_iss = q->ref.iss;
	q->task_sub = q->ref.sub;
	t = gw_mono_us();
	snprintf(st->resource, sizeof(st->resource), "hss:%s:%s",
	         q->project->region, q->project->alias);
	issv[0] = q->ref.iss;
	subv[0] = q->ref.sub;
	projv[0] = q->project->alias;
	regv[0] = q->project->region;
	kv[0] = (struct gw_kv){"hss:task_issuer", issv, 1};
	kv[1] = (struct gw_kv){"hss:task_subject", subv, 1};
	kv[2] = (struct gw_kv){"hss:project", projv, 1};
	kv[3] = (struct gw_kv){"hss:region", regv, 1};
	/* The task's enterprise project, as its export's policy saw it. */
	epsv[0] = task_eps(q);
	if (epsv[0] != NULL)
		kv[nkv++] =
		    (struct gw_kv){"hss:enterprise_project_id", epsv, 1};
	memset(&preq, 0, sizeof(preq));
	preq.claims = st->claims;
	preq.resource = st->resource;
	if (gw_pol_ctx_build(&pctx, kv, nkv, st->req->now_ms,
	                     st->req->client_addr) == -1)
		return gw_fault_set(&st->fault, GW_ERR_INTERNAL, "",
		                    "request context too large");
	preq.ctx = pctx.kv;
	preq.nctx = pctx.n;
	if (!gw_task_is_creator(&q->ref, st->claims->iss, st->claims->sub)) {
		preq.action = ACTION_ACT_FOR;
		gw_pol_eval(s->pol, &preq, &q->actfor);
		q->acted_for = 1;
		if (q->actfor.effect != GW_POL_ALLOW) {
			/* Recorded as what it is: a denied act-for. */
			st->action = ACTION_ACT_FOR;
			st->decision = q->actfor;
			q->acted_for = 0;
			st->decided = 1;
			if (s->shadow != NULL)
				gw_pol_eval(s->shadow, &preq, &st->shadow);
			st->lat_policy = gw_mono_us() - t;
			return no_such_task(st);
		}
	}
	preq.action = action;
	gw_pol_eval(s->pol, &preq, &st->decision);
	if (s->shadow != NULL)
		gw_pol_eval(s->shadow, &preq, &st->shadow);
	st->decided = 1;
	st->lat_policy = gw_mono_us() - t;
	if (st->decision.effect != GW_POL_ALLOW)
		return gw_fault_set(&st->fault, GW_ERR_DENIED, "",
		                    "not allowed to perform %s on %s", action,
		                    st->resource);
	q->cred = gw_snap_cred_get(s, q->project);
	if (q->cred == NULL)
		return gw_fault_set(&st->fault, GW_ERR_CREDENTIALS, "",
		                    "no credentials for project");
	st->cred_name = gw_cred_name(q->cred);
	return GW_OK;
}

/* GET {endpoint}/v5/{project_id}/{what}/{id} (reference 2.1, 2.2). */
static enum gw_err
task_upreq(struct reqstate *st, struct taskq *q, enum gw_tr_task_api api,
           const char *id)
{
	const struct gw_conf_project *p = q->project;
	enum gw_err rc;

	gw_upreq_free(st->upreq);
	st->upreq = NULL;
	rc = gw_tr_task_build(p, task_eps(q), api, id, &st->upreq, &st->fault);
	if (rc != GW_OK)
		return rc;
	rc = gw_cred_apply(q->cred, st->upreq, p->project_id, st->req->now_ms,
	                   st->cred_fp, &st->fault);
	if (rc != GW_OK)
		return rc;
	if (!st->intent)
		return gw_pipe_audit_intent(st);
	return GW_OK;
}

/* An HSS answer that is not a 200: throttling, a missing task, or else. */
static enum gw_err
task_upstream_error(struct reqstate *st)
{
	struct json_object *o =
	    json_tokener_parse(st->upresp.body != NULL ? st->upresp.body : "");
	long status = st->upresp.status;

	free(st->up_error_code);
	st->up_error_code = o != NULL ? gw_pipe_find_error_code(o) : NULL;
	json_object_put(o);
	if (status == 429) {
		st->retry_after_s = gw_pipe_retry_after_of(&st->upresp);
		return gw_fault_set(&st->fault, GW_ERR_UPSTREAM_BUSY, "",
		                    "HSS is throttling the gateway");
	}
	if (status == 404)
		return gw_fault_set(&st->fault, GW_ERR_TASK_NOT_FOUND, "",
		                    "no such export task");
	if (status == 401)
		return gw_fault_set(&st->fault, GW_ERR_UPSTREAM_AUTH, "",
		                    "HSS rejected the gateway's own "
		                    "credentials");
	return gw_fault_set(&st->fault, GW_ERR_UPSTREAM_BAD, "",
	                    "HSS answered %ld", status);
}

/* Checks a status answer (reference 2.1) and keeps what download needs. */
static enum gw_err
task_parse_status(struct reqstate *st, struct taskq *q)
{
	static const char *const states[] = {"running", "success", "failure"};
	struct json_object *o = json_tokener_parse(q->status_body), *v;
	enum gw_err rc = GW_ERR_UPSTREAM_BAD;
	const char *ts;
	size_t i;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "task_status", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		gw_fault_set(&st->fault, rc, "",
		             "HSS status answer has no task_status");
		goto out;
	}
	ts = json_object_get_string(v);
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(ts, states[i]) == 0)
			break;
	if (i == sizeof(states) / sizeof(states[0])) {
		gw_fault_set(&st->fault, rc, "",
		             "HSS status answer has an unknown task_status");
		goto out;
	}
	snprintf(q->task_status, sizeof(q->task_status), "%s", ts);
	if (json_object_object_get_ex(o, "file_id", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    id_ok(json_object_get_string(v), GW_TASK_ID_MAX))
		snprintf(q->file_id, sizeof(q->file_id), "%s",
		         json_object_get_string(v));
	if (json_object_object_get_ex(o, "file_name", &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(q->file_name, sizeof(q->file_name), "%s",
		         json_object_get_string(v));
	rc = GW_OK;
out:
	json_object_put(o);
	return rc;
}

/* The task's status: from the cache, else one budgeted HSS call. */
static enum gw_err
task_status(struct reqstate *st, struct gw_worker *w, struct taskq *q)
{
	const struct gw_config *conf = st->snap->conf;
	const char *eps = task_eps(q);
	/* project_id, enterprise project, task: newline-separated (ids may
	 * hold '|'), each bounded (256 bytes) so the key always fits. */
	char key[3 * (GW_TASK_ID_MAX + 1) + 8];
	enum gw_err rc;
	int64_t t;
	int attempt;

	snprintf(key, sizeof(key), "%s\n%s\n%s", q->project->project_id,
	         eps != NULL ? eps : "", q->ref.task_id);
	if (conf->tasks_status_cache_ttl_s > 0) {
		q->status_body = gw_pipe_cache_get(st, st->snap->status_cache,
		                                   "status", key);
		if (q->status_body != NULL) {
			q->cached = 1;
			return task_parse_status(st, q);
		}
	}
	rc = task_upreq(st, q, GW_TR_TASK_STATUS, q->ref.task_id);
	if (rc != GW_OK)
		return rc;
	rc = gw_pipe_budget_take(st, st->cred_name, "export-task");
	for (attempt = 0; rc == GW_OK; attempt++) {
		t = gw_mono_us();
		rc =
		    gw_up_send(w->up, conf, st->upreq, &st->upresp, &st->fault);
		st->lat_upstream += gw_mono_us() - t;
		gw_pipe_attempt(st, gw_mono_us() - t);
		/* Sent (or may have been): held a window from now on. */
		gw_pipe_budget_done(st, st->cred_name, "export-task");
		if (rc != GW_OK || st->upresp.status != 429)
			break;
		rc = gw_pipe_throttled(st, attempt, "export-task");
	}
	if (rc != GW_OK)
		return rc;
	if (st->upresp.status != 200)
		return task_upstream_error(st);
	q->status_body = st->upresp.body;
	st->upresp.body = NULL;
	rc = task_parse_status(st, q);
	if (rc == GW_OK && conf->tasks_status_cache_ttl_s > 0)
		gw_pipe_cache_put(st, st->snap->status_cache, "status", key,
		                  q->status_body,
		                  conf->tasks_status_cache_ttl_s * 1000, 0);
	return rc;
}

/* The handle in /v1/exports/image-baseline/{handle}[/file]. */
static void
task_handle_of(const char *path, char *out, size_t cap)
{
	const char *h = path + strlen(TASK_PREFIX);
	size_t n = strcspn(h, "/");

	if (n >= cap)
		n = 0; /* over the cap: no handle, a 404 */
	memcpy(out, h, n);
	out[n] = '\0';
}

/* Retry-After, the record of the answer, the request's teardown. */
static void
task_finish(struct reqstate *st, struct gw_http_resp *resp)
{
	char ra[32];

	if (!resp->streamed) {
		if (st->retry_after_s > 0) {
			snprintf(ra, sizeof(ra), "%lld",
			         (long long)st->retry_after_s);
			gw_pipe_resp_header(resp, "Retry-After", ra);
		}
		if (gw_pipe_audit(st, resp) != GW_OK)
			gw_pipe_answer_unaudited(st, resp);
	} else if (gw_pipe_audit(st, resp) != GW_OK) {
		/* The file is out: the stderr line is the trace left. */
		fprintf(stderr, "hssgw: request %s: download not audited\n",
		        st->req->request_id ? st->req->request_id : "-");
	}
	gw_pipe_reqstate_reset(st);
}

static void
task_error(struct reqstate *st, enum gw_err rc, struct gw_http_resp *resp)
{
	if (st->fault.err == GW_OK)
		gw_fault_set(&st->fault, rc == GW_OK ? GW_ERR_INTERNAL : rc, "",
		             "%s", gw_strerror(rc));
	gw_pipe_answer_error(st->req, &st->fault, resp);
}

void
gw_pipe_handle_task_status(const struct gw_snapshot *s, struct gw_worker *w,
                           const struct gw_http_req *req,
                           struct gw_http_resp *resp)
{
	struct reqstate st;
	struct taskq q;
	char handle[GW_TASK_HANDLE_MAX + 1];
	enum gw_err rc;

	taskq_init(&st, &q, s, req, ACTION_STATUS);
	task_handle_of(req->path, handle, sizeof(handle));
	rc = task_open(&st, handle, ACTION_STATUS, &q);
	if (rc == GW_OK)
		rc = task_status(&st, w, &q);
	if (rc == GW_OK) {
		/* HSS's answer, unchanged (reference 2.1). */
		st.passthrough = 1;
		resp->status = 200;
		resp->body = q.status_body;
		resp->bodylen = strlen(q.status_body);
		q.status_body = NULL;
		gw_pipe_resp_header(resp, "Content-Type",
		                    "application/json;charset=utf-8");
		gw_pipe_resp_header(resp, "X-Hssgw-Cache",
		                    q.cached ? "hit" : "miss");
	} else
		task_error(&st, rc, resp);
	task_finish(&st, resp);
}

/* Streams HSS's file through the front's stream (gw_upsink -> gw_http). */
struct dl {
	struct reqstate *st;
	struct taskq *q;
	struct gw_http_resp *resp;
};

/* A file name safe inside a quoted Content-Disposition (RFC 6266). */
static void
safe_name(const char *in, char *out, size_t cap)
{
	size_t i, n = 0;

	for (i = 0; in[i] != '\0' && n + 1 < cap; i++)
		out[n++] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
		                  "QRSTUVWXYZ0123456789._-",
		                  in[i]) != NULL
		               ? in[i]
		               : '_';
	out[n] = '\0';
	if (n == 0 || out[0] == '.')
		snprintf(out, cap, "export-%s.zip", "file");
}

static int
dl_head(void *arg, const char *content_type, long long length)
{
	struct dl *d = arg;
	char name[256], cd[320];

	/* HSS is answering, so it has counted the call: the grant is held a
	 * window from now, not from the end of a long transfer to a slow
	 * client (the done after gw_up_send is then a no-op). */
	gw_pipe_budget_done(d->st, d->st->cred_name, "download");
	d->resp->status = 200;
	gw_pipe_resp_header(d->resp, "Content-Type",
	                    content_type != NULL ? content_type
	                                         : "application/octet-stream");
	safe_name(d->q->file_name, name, sizeof(name));
	snprintf(cd, sizeof(cd), "attachment; filename=\"%s\"", name);
	gw_pipe_resp_header(d->resp, "Content-Disposition", cd);
	if (d->st->req->request_id != NULL)
		gw_pipe_resp_header(d->resp, "X-Request-Id",
		                    d->st->req->request_id);
	d->resp->streamed = 1;
	d->st->passthrough = 1;
	return d->resp->stream->head(d->resp->stream->ctx, d->resp, length);
}

static int
dl_chunk(void *arg, const void *p, size_t len)
{
	struct dl *d = arg;

	return d->resp->stream->body(d->resp->stream->ctx, p, len);
}

void
gw_pipe_handle_task_file(const struct gw_snapshot *s, struct gw_worker *w,
                         const struct gw_http_req *req,
                         struct gw_http_resp *resp)
{
	struct reqstate st;
	struct taskq q;
	struct dl d;
	struct gw_upsink sink;
	char handle[GW_TASK_HANDLE_MAX + 1];
	enum gw_err rc;
	int64_t t;
	int attempt;

	taskq_init(&st, &q, s, req, ACTION_DOWNLOAD);
	task_handle_of(req->path, handle, sizeof(handle));
	rc = task_open(&st, handle, ACTION_DOWNLOAD, &q);
	if (rc == GW_OK)
		rc = task_status(&st, w, &q);
	if (rc == GW_OK &&
	    (strcmp(q.task_status, "success") != 0 || q.file_id[0] == '\0'))
		rc = gw_fault_set(&st.fault, GW_ERR_TASK_NOT_READY, "",
		                  "the export task is %s, not success",
		                  q.task_status);
	if (rc == GW_OK && resp->stream == NULL)
		rc = gw_fault_set(&st.fault, GW_ERR_INTERNAL, "",
		                  "the front cannot stream");
	if (rc == GW_OK)
		rc = task_upreq(&st, &q, GW_TR_TASK_DOWNLOAD, q.file_id);
	if (rc == GW_OK)
		rc = gw_pipe_budget_take(&st, st.cred_name, "download");
	if (rc == GW_OK) {
		d.st = &st;
		d.q = &q;
		d.resp = resp;
		sink.head = dl_head;
		sink.chunk = dl_chunk;
		sink.arg = &d;
		gw_upresp_reset(&st.upresp);
		for (attempt = 0; rc == GW_OK; attempt++) {
			t = gw_mono_us();
			rc = gw_up_stream(w->up, s->conf, st.upreq, &sink,
			                  s->conf->tasks_max_file_bytes,
			                  s->conf->tasks_download_timeout_ms,
			                  &st.upresp, &st.fault);
			st.lat_upstream += gw_mono_us() - t;
			gw_pipe_attempt(&st, gw_mono_us() - t);
			gw_pipe_budget_done(&st, st.cred_name, "download");
			/* A 429 comes before any byte went out: retry. */
			if (rc != GW_OK || st.upresp.status != 429 ||
			    resp->streamed)
				break;
			rc = gw_pipe_throttled(&st, attempt, "download");
		}
		if (rc == GW_OK && st.upresp.status != 200)
			rc = task_upstream_error(&st);
	}
	if (rc != GW_OK && resp->streamed && resp->stream != NULL) {
		/* Headers are out: cut the body short, record the failure. */
		resp->stream->abort(resp->stream->ctx);
		st.passthrough = 0;
		resp->status = gw_err_status(st.fault.err);
	} else if (rc != GW_OK)
		task_error(&st, rc, resp);
	task_finish(&st, resp);
}
