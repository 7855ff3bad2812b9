/*
 * GET /metrics: the Prometheus scrape (docs/METRICS.md).  Writes the
 * registry's families, then those whose labels come from the snapshot's
 * config (credentials, projects, JWKS issuers, the policy revision) and
 * the process_* families.  Not audited: a scrape changes nothing and
 * comes every few seconds, and nginx lets only the addresses in its
 * allow list reach it.
 * Never writes a token, a secret or a caller's value.
 */
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "stages.h"

/* hssgw_budget_*: one series per configured credentials entry and API. */
static void
write_budget(const struct gw_snapshot *s, int64_t now, struct gw_buf *b)
{
	const char *labels[5] = {"credentials", NULL, "api", NULL, NULL};
	char bucket[200];
	long long left;
	unsigned long long refused;
	size_t i, a;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		if (pass == 0)
			gw_met_family(
			    b, "hssgw_budget_tokens", "gauge",
			    "Calls to HSS the budget could still grant "
			    "in the current 60 s window.");
		else
			gw_met_family(
			    b, "hssgw_budget_rejections_total", "counter",
			    "Calls refused because the budget (or the "
			    "caller's fair share) was spent.");
		for (i = 0; i < s->conf->ncreds; i++)
			for (a = 0; a < GW_MET_API__MAX; a++) {
				labels[1] = s->conf->creds[i].name;
				labels[3] = gw_met_api_name(a);
				/* The bucket key stages.c takes from. */
				snprintf(bucket, sizeof(bucket), "%s|%s",
				         labels[1], labels[3]);
				gw_budget_peek(s->budget, bucket, now, &left,
				               &refused);
				if (pass == 0)
					gw_met_sample(
					    b, "hssgw_budget_tokens", labels,
					    (double)(left > 0 ? left : 0));
				else
					gw_met_sample_u(
					    b, "hssgw_budget_rejections_total",
					    labels, refused);
			}
	}
}

/* hssgw_credential_*: expiry per (entry, project), fetches per entry. */
static void
write_creds(const struct gw_snapshot *s, int64_t now, struct gw_buf *b)
{
	const struct gw_conf_project *p;
	const char *labels[5] = {"credentials", NULL, NULL, NULL, NULL};
	unsigned long long ok, failed;
	int64_t exp, left;
	size_t i;

	gw_met_family(b, "hssgw_credential_expiry_seconds", "gauge",
	              "Seconds until the token held for a project expires "
	              "(0: none held); IAM credential types only.");
	labels[2] = "project";
	for (i = 0; i < s->conf->nprojects; i++) {
		p = &s->conf->projects[i];
		if (!gw_cred_expiry(gw_snap_cred_get(s, p), p->project_id,
		                    &exp))
			continue;
		labels[1] = p->credentials;
		labels[3] = p->alias;
		/* Whole seconds: the alert thresholds are minutes. */
		left = exp > now ? (exp - now) / 1000 : 0;
		gw_met_sample(b, "hssgw_credential_expiry_seconds", labels,
		              (double)left);
	}
	gw_met_family(b, "hssgw_credential_refreshes_total", "counter",
	              "IAM token fetches by credentials entry and result "
	              "(restart from 0 on a reload).");
	labels[2] = "result";
	for (i = 0; i < s->conf->ncreds; i++) {
		gw_cred_refreshes(s->creds[i], &ok, &failed);
		labels[1] = s->conf->creds[i].name;
		labels[3] = "ok";
		gw_met_sample_u(b, "hssgw_credential_refreshes_total", labels,
		                ok);
		labels[3] = "failed";
		gw_met_sample_u(b, "hssgw_credential_refreshes_total", labels,
		                failed);
	}
}

/* The result label, indexed by jwks.h's enum: a fixed set of four. */
static const char *const jwks_result_name[GW_JWKS_RESULT__MAX] = {
    [GW_JWKS_OK] = "ok",
    [GW_JWKS_ERROR] = "error",
    [GW_JWKS_REJECTED] = "rejected",
    [GW_JWKS_LIMITED] = "limited",
};
_Static_assert(GW_JWKS_RESULT__MAX == 4, "a name per JWKS fetch result");

/*
 * hssgw_jwks_fetches_total: read from the key set's own counters (jwks.c
 * counts under its lock), so the fetcher never calls metrics.c.  The
 * counters belong to the snapshot's key set and restart from 0 on a
 * reload, like the verified-token cache's.
 */
static void
write_jwks(const struct gw_snapshot *s, int64_t now, struct gw_buf *b)
{
	const char *labels[5] = {"issuer", NULL, "result", NULL, NULL};
	struct gw_jwks_stats st;
	const char *iss;
	size_t i, r;

	gw_met_family(b, "hssgw_jwks_fetches_total", "counter",
	              "JWKS key-set fetches, by issuer and result (restart "
	              "from 0 on a reload: the counts are per key set).");
	for (i = 0;; i++) {
		iss = gw_jwt_jwks_stats(s->keys, i, now / 1000, &st);
		if (iss == NULL)
			break;
		labels[1] = iss;
		for (r = 0; r < GW_JWKS_RESULT__MAX; r++) {
			labels[3] = jwks_result_name[r];
			gw_met_sample_u(b, "hssgw_jwks_fetches_total", labels,
			                st.fetches[r]);
		}
	}
}

/*
 * audit.ship: the trail against the shipper's cursor, as hssgw reads it
 * once a second (the shipper's own counts are its textfile's).
 */
static void
write_ship(const struct gw_snapshot *s, struct gw_buf *b)
{
	if (s->shiplag == NULL)
		return;
	gw_met_family(b, "hssgw_audit_unshipped_seconds", "gauge",
	              "Age of the oldest durable audit record the collector "
	              "has not acknowledged (the shipper's cursor); 0 when "
	              "shipped.");
	gw_met_sample(b, "hssgw_audit_unshipped_seconds", NULL,
	              (double)gw_ship_lag_ms(s->shiplag) / 1000.0);
	gw_met_family(b, "hssgw_audit_unshipped_records", "gauge",
	              "Durable audit records past the shipper's cursor.");
	gw_met_sample_u(b, "hssgw_audit_unshipped_records", NULL,
	                (unsigned long long)gw_ship_lag_records(s->shiplag));
	gw_met_family(b, "hssgw_audit_ship_refusing", "gauge",
	              "1 while exports answer 503 HSSGW.0307: the unshipped "
	              "age is past audit.ship.max_lag_s.");
	gw_met_sample(b, "hssgw_audit_ship_refusing", NULL,
	              gw_ship_lag_refusing(s->shiplag));
}

/* metrics.enabled false: the answer, and record, of an unknown path. */
static void
not_found(const struct gw_snapshot *s, const struct gw_http_req *req,
          struct gw_http_resp *resp)
{
	struct reqstate st;

	gw_pipe_reqstate_init(&st, s, req, NULL);
	gw_fault_set(&st.fault, GW_ERR_NOT_FOUND, "", "no such endpoint");
	gw_pipe_answer_error(req, &st.fault, resp);
	if (gw_pipe_audit(&st, resp) != GW_OK)
		gw_pipe_answer_unaudited(&st, resp);
	gw_pipe_reqstate_reset(&st);
}

void
gw_pipe_handle_metrics(const struct gw_snapshot *s, struct gw_worker *w,
                       const struct gw_http_req *req, struct gw_http_resp *resp)
{
	const char *labels[3] = {NULL, NULL, NULL};
	const char *rev = gw_pipe_revision(s);
	uint64_t hits = 0, misses = 0;
	struct gw_fault f = {0};
	struct gw_buf b;

	(void)w;
	if (!s->conf->metrics_enabled) {
		not_found(s, req, resp);
		return;
	}
	gw_buf_init(&b, GW_MET_OUT_MAX);
	gw_metrics_write(s->metrics, &b);
	write_budget(s, req->now_ms, &b);
	write_creds(s, req->now_ms, &b);
	write_jwks(s, req->now_ms, &b);
	write_ship(s, &b);
	gw_jwt_cache_stats(s->keys, &hits, &misses);
	gw_met_family(&b, "hssgw_jwt_cache_hits_total", "counter",
	              "Bearer tokens answered from the verified-token cache "
	              "(restarts from 0 on a reload: the cache is per key "
	              "set).");
	gw_met_sample_u(&b, "hssgw_jwt_cache_hits_total", NULL, hits);
	gw_met_family(&b, "hssgw_build_info", "gauge",
	              "hssgw's version; always 1.");
	labels[0] = "version";
	labels[1] = GW_VERSION;
	gw_met_sample(&b, "hssgw_build_info", labels, 1);
	gw_met_family(&b, "hssgw_policy_revision_info", "gauge",
	              "The revision of the policy set enforced; always 1.");
	labels[0] = "revision";
	labels[1] = rev != NULL ? rev : "";
	gw_met_sample(&b, "hssgw_policy_revision_info", labels, 1);
	gw_metrics_write_process(&b);
	if (b.overflow) {
		/* Never a truncated scrape: Prometheus would store half. */
		gw_buf_reset(&b);
		gw_fault_set(&f, GW_ERR_INTERNAL, "",
		             "the scrape is too large");
		gw_pipe_answer_error(req, &f, resp);
		return;
	}
	resp->status = 200;
	gw_pipe_resp_header(resp, "Content-Type", GW_MET_CONTENT_TYPE);
	gw_pipe_set_body(resp, &b);
}
