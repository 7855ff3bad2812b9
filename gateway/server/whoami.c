/*
 * GET /v1/whoami: what the caller's own token lets it do.  Authenticates
 * like every route, then asks the enforcing policy set (gw_pol_decide, the
 * routes' own decision) for each configured project and each of the three
 * actions, with the context the export and task routes build for a
 * request that names only the project: export as the body
 * {"project": ALIAS} translates (what `hssgw policy explain` sees for that
 * body), status and download for a task of the caller's own.  Answers the
 * subject, issuer, the claims the policies read and, per project, only
 * the actions allowed.  Never shows a statement, a policy file or another
 * caller; one final audit record, like every answer.  An Allow whose
 * conditions need request fields the minimal request lacks (hss:namespace,
 * hss:image_type...) is not listed: docs/CI.md says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "handlers.h"
#include "stages.h"

#define WHOAMI_MAX (1024 * 1024)

/* The actions whoami answers for: its name for them, the policy's. */
static const struct wact {
	const char *name;
	const char *action;
	int task; /* evaluated with the task routes' context */
} wacts[] = {
    {"export", ACTION_EXPORT, 0},
    {"status", "hss:GetExportTask", 1},
    {"download", "hss:DownloadExportFile", 1},
};

/*
 * The export route's context for {"project": alias}: translation's keys
 * (gw_tr_parse, as run_export and `policy explain` use it).  NULL when
 * the minimal request does not translate.
 */
static struct gw_export_req *
minimal_export(const struct gw_config *conf, const char *alias)
{
	struct json_object *o = json_object_new_object();
	struct gw_export_req *x = NULL;
	struct gw_fault f = {0};
	const char *body;

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "project", json_object_new_string(alias));
	body = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (gw_tr_parse(conf, body, strlen(body), &x, &f) != GW_OK)
		x = NULL;
	json_object_put(o);
	return x;
}

/*
 * One action on one project: 1 when the enforcing set allows it, decided
 * by gw_pol_decide as the routes decide.  The task context is
 * task_open's (task_routes.c) for a task the caller created:
 * hss:task_issuer and hss:task_subject are its own, the enterprise
 * project the project's default.
 */
static int
allowed(const struct reqstate *st, const struct gw_conf_project *p,
        const struct gw_export_req *x, const struct wact *a)
{
	struct gw_pol_task_ctx tctx;
	struct gw_pol_verdict v;
	struct gw_pol_input in;

	memset(&in, 0, sizeof(in));
	in.claims = st->claims;
	in.action = a->action;
	in.resource = st->resource;
	in.now_ms = st->req->now_ms;
	in.client_ip = st->req->client_addr;
	if (!a->task) {
		if (x == NULL)
			return 0;
		in.ctx = x->ctx;
		in.nctx = x->nctx;
	} else {
		gw_pol_task_ctx_build(&tctx, st->claims->iss, st->claims->sub,
		                      p->alias, p->region,
		                      p->enterprise_project_id);
		in.ctx = tctx.kv;
		in.nctx = tctx.n;
		in.task_iss = st->claims->iss;
		in.task_sub = st->claims->sub;
	}
	if (gw_pol_decide(st->snap->pol, &in, &v) == -1)
		return 0;
	return v.decision.effect == GW_POL_ALLOW;
}

/* The caller's claims that some statement reads, as the policy sees them. */
static struct json_object *
read_claims(const struct reqstate *st)
{
	const struct gw_claims *c = st->claims;
	struct json_object *o = json_object_new_object(), *arr;
	size_t i, j;

	for (i = 0; o != NULL && i < c->n; i++) {
		if (c->v[i].name == NULL ||
		    !gw_pol_reads_claim(st->snap->pol, c->v[i].name))
			continue;
		if (!c->v[i].is_array) {
			json_object_object_add(
			    o, c->v[i].name,
			    json_object_new_string(
			        c->v[i].nvalues > 0 ? c->v[i].values[0] : ""));
			continue;
		}
		arr = json_object_new_array();
		for (j = 0; arr != NULL && j < c->v[i].nvalues; j++)
			json_object_array_add(
			    arr, json_object_new_string(c->v[i].values[j]));
		json_object_object_add(o, c->v[i].name, arr);
	}
	return o;
}

/* Every project with at least one allowed action, and those actions. */
static struct json_object *
projects(struct reqstate *st)
{
	const struct gw_config *conf = st->snap->conf;
	struct json_object *list = json_object_new_array(), *acts, *one;
	struct gw_export_req *x;
	size_t i, k;

	for (i = 0; list != NULL && i < conf->nprojects; i++) {
		const struct gw_conf_project *p = &conf->projects[i];

		snprintf(st->resource, sizeof(st->resource), "hss:%s:%s",
		         p->region, p->alias);
		x = minimal_export(conf, p->alias);
		acts = json_object_new_array();
		for (k = 0;
		     acts != NULL && k < sizeof(wacts) / sizeof(wacts[0]); k++)
			if (allowed(st, p, x, &wacts[k]))
				json_object_array_add(
				    acts,
				    json_object_new_string(wacts[k].name));
		gw_tr_req_free(x);
		if (acts == NULL || json_object_array_length(acts) == 0) {
			json_object_put(acts);
			continue;
		}
		one = json_object_new_object();
		json_object_object_add(one, "project",
		                       json_object_new_string(p->alias));
		json_object_object_add(one, "region",
		                       json_object_new_string(p->region));
		json_object_object_add(one, "actions", acts);
		json_object_array_add(list, one);
	}
	/* The record names no single resource: the answer covers many. */
	st->resource[0] = '\0';
	return list;
}

static enum gw_err
answer(struct reqstate *st, struct gw_http_resp *resp)
{
	struct json_object *o = json_object_new_object();
	char exp[40];
	const char *text;
	struct gw_buf b;
	enum gw_err rc = GW_ERR_INTERNAL;

	if (o == NULL)
		return gw_fault_set(&st->fault, rc, "", "out of memory");
	json_object_object_add(o, "subject",
	                       json_object_new_string(st->claims->sub));
	json_object_object_add(o, "issuer",
	                       json_object_new_string(st->claims->iss));
	gw_fmt_time_ms(st->claims->exp * 1000, exp, sizeof(exp));
	json_object_object_add(o, "expires_at", json_object_new_string(exp));
	json_object_object_add(o, "claims", read_claims(st));
	json_object_object_add(o, "projects", projects(st));
	text = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	gw_buf_init(&b, WHOAMI_MAX);
	if (text == NULL || gw_buf_puts(&b, text) == -1) {
		gw_buf_reset(&b);
		gw_fault_set(&st->fault, rc, "", "answer too large");
		goto out;
	}
	resp->status = 200;
	gw_pipe_resp_header(resp, "Content-Type",
	                    "application/json;charset=utf-8");
	gw_pipe_resp_header(resp, "Cache-Control", "no-store");
	gw_pipe_set_body(resp, &b);
	rc = GW_OK;
out:
	json_object_put(o);
	return rc;
}

void
gw_pipe_handle_whoami(const struct gw_snapshot *s, struct gw_worker *w,
                      const struct gw_http_req *req, struct gw_http_resp *resp)
{
	struct reqstate st;
	enum gw_err rc;

	(void)w;
	gw_pipe_reqstate_init(&st, s, req, NULL);
	rc = gw_pipe_authenticate(&st);
	if (rc == GW_OK)
		rc = answer(&st, resp);
	if (rc != GW_OK) {
		if (st.fault.err == GW_OK)
			gw_fault_set(&st.fault, rc, "", "%s", gw_strerror(rc));
		gw_pipe_answer_error(req, &st.fault, resp);
	}
	if (gw_pipe_audit(&st, resp) != GW_OK)
		gw_pipe_answer_unaudited(&st, resp);
	gw_pipe_reqstate_reset(&st);
}
