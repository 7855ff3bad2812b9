/*
 * The route table and the one entry point, gw_pipe_handle: method and path
 * pick a handler (export.c, task_routes.c, whoami.c, or /healthz here);
 * anything else is a 404 or 405, audited like every answer.  The only file that
 * names the handlers, so the dependencies run one way: routes -> handlers
 * -> stages -> snapshot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "stages.h"

const char *
gw_pipe_unready(const struct gw_snapshot *s, int64_t now_ms)
{
	size_t i;

	/* Ready when the trail takes records and is shipped in time
	 * (audit.ship.max_lag_s), every JWKS issuer has a usable key set
	 * and every project has a valid credential: no request would get a
	 * 503 for want of any. */
	if (!gw_audit_ready(s->audit))
		return "audit";
	if (gw_ship_lag_refusing(s->shiplag))
		return "audit_shipping";
	if (gw_jwt_keyset_unready(s->keys, now_ms / 1000) != NULL)
		return "jwks";
	for (i = 0; i < s->conf->nprojects; i++)
		if (!gw_cred_ready(gw_snap_cred_get(s, &s->conf->projects[i]),
		                   now_ms))
			return "credentials";
	return NULL;
}

static void
handle_health(const struct gw_snapshot *s, struct gw_worker *w,
              const struct gw_http_req *req, struct gw_http_resp *resp)
{
	struct gw_buf b;
	const char *why = gw_pipe_unready(s, req->now_ms);

	(void)w;
	gw_buf_init(&b, 256);
	resp->status = why == NULL ? 200 : 503;
	/* The metrics' code label: the error a request would get now. */
	if (why != NULL)
		resp->err = strcmp(why, "audit") == 0 ? GW_ERR_AUDIT
		            : strcmp(why, "audit_shipping") == 0
		                ? GW_ERR_SHIP_LAG
		                : GW_ERR_CREDENTIALS;
	if (why == NULL && s->shared != NULL)
		/* Still ready: the local budget keeps HSS's limit. */
		gw_buf_printf(&b, "{\"status\":\"ok\",\"shared_state\":\"%s\"}",
		              gw_shared_check(s->shared, req->now_ms)
		                  ? "degraded"
		                  : "ok");
	else if (why == NULL)
		gw_buf_puts(&b, "{\"status\":\"ok\"}");
	else
		gw_buf_printf(
		    &b, "{\"status\":\"unavailable\",\"reason\":\"%s\"}", why);
	gw_pipe_resp_header(resp, "Content-Type",
	                    "application/json;charset=utf-8");
	gw_pipe_set_body(resp, &b);
}

typedef void route_fn(const struct gw_snapshot *, struct gw_worker *,
                      const struct gw_http_req *, struct gw_http_resp *);

/*
 * metric: the route label of hssgw_requests_total.  No route is capped
 * here: a handler takes its slot to wait on HSS (gw_pipe_wait_slot) only
 * once it knows it must wait, so refusals, denials, budget refusals and
 * cached answers never count against reserve_threads.
 */
static const struct route {
	const char *method;
	const char *path;
	route_fn *fn;
	enum gw_met_route metric;
} routes[] = {
    {"POST", "/v1/exports/image-baseline", gw_pipe_handle_export,
     GW_MET_ROUTE_EXPORT},
    {"GET", "/v1/exports/image-baseline/*", gw_pipe_handle_task_status,
     GW_MET_ROUTE_TASK_STATUS},
    {"GET", "/v1/exports/image-baseline/*/file", gw_pipe_handle_task_file,
     GW_MET_ROUTE_TASK_FILE},
    {"GET", "/v1/whoami", gw_pipe_handle_whoami, GW_MET_ROUTE_WHOAMI},
    {"GET", "/healthz", handle_health, GW_MET_ROUTE_HEALTHZ},
    {"GET", "/metrics", gw_pipe_handle_metrics, GW_MET_ROUTE_METRICS},
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
	enum gw_met_route metric = GW_MET_ROUTE_OTHER;

	const struct gw_http_stream *stream = resp->stream;
	struct gw_deferred *defer = resp->defer;

	memset(resp, 0, sizeof(*resp));
	resp->stream = stream;
	resp->defer = defer;
	gw_pipe_reqstate_init(&st, s, req, NULL);
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (req->path == NULL || !path_match(routes[i].path, req->path))
			continue;
		path_known = 1;
		metric = routes[i].metric;
		if (req->method == NULL ||
		    strcmp(routes[i].method, req->method) != 0)
			continue;
		routes[i].fn(s, w, req, resp);
		goto out;
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
	/* A success or hssgw's error, else HSS's answer passed through;
	 * a deferred answer is counted once its record is durable. */
	if (resp->deferred) {
		resp->defer->route = (int)metric;
		resp->defer->t_start = st.t_start;
		resp->defer->status = resp->status;
		resp->defer->err = resp->err;
	} else
		gw_metrics_request(s->metrics, metric, resp->status, resp->err,
		                   resp->err == GW_OK && resp->status >= 400,
		                   gw_mono_us() - st.t_start);
	gw_pipe_reqstate_reset(&st);
}
