/*
 * Pipeline: every stage's failure answers the right status and error code,
 * in the documented order, with exactly one audit record per export
 * request and no secret in any response or record.  Runs with no network:
 * the upstream endpoint is a closed loopback port.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "gw.h"
#include "jwtv.h"
#include "metrics.h"
#include "pipeline.h"

#define HMAC     "0123456789abcdef0123456789abcdef-test-secret"
#define IAMTOKEN "iam-token-MUST-NOT-LEAK-1234567890"
#define ISS      "https://idp.test"
#define JWKS_ISS "https://jwks.test"

struct fixture {
	char dir[64];
	char conf[128];
	char audit[128];
	struct gw_snapshot *snap;
	struct gw_worker *w;
};

static void
put(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static const char *policy =
    "{\"Version\":\"2012-10-17\",\"Statement\":["
    "{\"Sid\":\"AllowExporters\",\"Effect\":\"Allow\","
    "\"Principal\":{\"jwt:groups\":\"exporters\"},"
    "\"Action\":\"hss:ExportImageBaseline\",\"Resource\":\"hss:*:demo\"},"
    "{\"Sid\":\"DenySuspended\",\"Effect\":\"Deny\","
    "\"Principal\":{\"jwt:groups\":\"suspended\"},"
    "\"Action\":\"hss:*\",\"Resource\":\"*\"}]}";

/* issuers: more jwt.issuers entries, each with a leading comma, or "". */
static void
write_config(struct fixture *fx, const char *audit_file, const char *issuers)
{
	char conf[2560];

	snprintf(
	    conf, sizeof(conf),
	    "{\"listen\":\"unix:%s/gw.sock\",\"threads\":1,"
	    "\"max_body_bytes\":1024,"
	    "\"jwt\":{\"issuers\":[{\"issuer\":\"" ISS "\","
	    "\"audiences\":[\"hssgw\"],\"keys\":[{\"alg\":\"HS256\","
	    "\"file\":\"hs.secret\"}]}%s]},"
	    "\"policies_dir\":\"pol\","
	    "\"credentials\":[{\"name\":\"main\",\"type\":\"token_file\","
	    "\"file\":\"iam.token\"}],"
	    "\"projects\":[{\"alias\":\"demo\",\"project_id\":\"pid0\","
	    "\"region\":\"cn-north-4\",\"endpoint\":\"https://127.0.0.1:1\","
	    "\"enterprise_project_id\":\"0\",\"credentials\":\"main\"},"
	    "{\"alias\":\"other\",\"project_id\":\"pid1\","
	    "\"region\":\"cn-north-4\",\"endpoint\":\"https://127.0.0.1:1\","
	    "\"credentials\":\"main\"}],"
	    "\"upstream\":{\"connect_timeout_ms\":500,\"timeout_ms\":1000},"
	    "\"audit\":{\"file\":\"%s\"}}",
	    fx->dir, issuers, audit_file);
	put(fx->dir, "hssgw.json", conf, 0600);
}

static int
setup_with(void **state, const char *audit_file, const char *issuers)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char err[1024], pol[128];

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/hssgw-pipe-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(pol, sizeof(pol), "%s/pol", fx->dir);
	assert_int_equal(mkdir(pol, 0700), 0);
	put(fx->dir, "hs.secret", HMAC "\n", 0600);
	put(fx->dir, "iam.token", IAMTOKEN "\n", 0600);
	put(pol, "demo.json", policy, 0600);
	snprintf(fx->audit, sizeof(fx->audit), "%s",
	         audit_file ? audit_file : "audit.jsonl");
	write_config(fx, fx->audit, issuers);
	snprintf(fx->conf, sizeof(fx->conf), "%s/hssgw.json", fx->dir);
	fx->snap = gw_pipe_load(fx->conf, 1, err, sizeof(err));
	if (fx->snap == NULL)
		fail_msg("load: %s", err);
	fx->w = gw_pipe_worker_new();
	assert_non_null(fx->w);
	*state = fx;
	return 0;
}

static int
setup(void **state)
{
	return setup_with(state, NULL, "");
}

static int
setup_jwks(void **state)
{
	/* A JWKS issuer whose IdP is a closed loopback port. */
	return setup_with(state, NULL,
	                  ",{\"issuer\":\"" JWKS_ISS "\","
	                  "\"audiences\":[\"hssgw\"],"
	                  "\"jwks_uri\":\"https://127.0.0.1:1/jwks\","
	                  "\"jwks_refresh_s\":60}");
}

static int
setup_full_disk(void **state)
{
	/* /dev/full: open(2) works, every write(2) fails with ENOSPC. */
	return setup_with(state, "/dev/full", "");
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	gw_pipe_worker_free(fx->w);
	gw_pipe_free(fx->snap);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

static char *
token(const char *groups, long long exp_delta)
{
	char claims[512], err[256], *t;
	long long now = gw_now_ms() / 1000;

	snprintf(claims, sizeof(claims),
	         "{\"iss\":\"" ISS "\",\"aud\":\"hssgw\",\"sub\":\"alice\","
	         "\"groups\":[\"%s\"],\"iat\":%lld,\"exp\":%lld}",
	         groups, now, now + exp_delta);
	t = gw_jwt_mint("HS256", NULL, (const unsigned char *)HMAC,
	                strlen(HMAC), claims, err, sizeof(err));
	if (t == NULL)
		fail_msg("mint: %s", err);
	return t;
}

static size_t
audit_lines(const struct fixture *fx, char *last, size_t cap)
{
	char path[256], line[65536];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fx->dir, fx->audit);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		n++;
		if (last != NULL)
			snprintf(last, cap, "%s", line);
	}
	fclose(f);
	return n;
}

static const struct pcase {
	const char *name;
	const char *method;
	const char *path;
	const char *ctype;
	const char *groups; /* NULL: no Authorization header */
	long long exp_delta;
	const char *body;
	int status;
	const char *code;
	const char *field;
	int audited; /* records written: intent + outcome when allowed */
} cases[] = {
    {"unknown path", "POST", "/v1/nope", "application/json", "exporters", 600,
     "{}", 404, "HSSGW.0004", NULL, 1},
    {"wrong method", "GET", "/v1/exports/image-baseline", NULL, "exporters",
     600, "", 405, "HSSGW.0005", NULL, 1},
    {"no token", "POST", "/v1/exports/image-baseline", "application/json", NULL,
     600, "{\"project\":\"demo\"}", 401, "HSSGW.0101", NULL, 1},
    {"expired token", "POST", "/v1/exports/image-baseline", "application/json",
     "exporters", -3600, "{\"project\":\"demo\"}", 401, "HSSGW.0102", NULL, 1},
    /* Authentication before validation: a bad body still gets 401. */
    {"no token, bad body", "POST", "/v1/exports/image-baseline",
     "application/json", NULL, 600, "{\"bogus\":1}", 401, "HSSGW.0101", NULL,
     1},
    {"wrong media type", "POST", "/v1/exports/image-baseline", "text/plain",
     "exporters", 600, "{\"project\":\"demo\"}", 415, "HSSGW.0006", NULL, 1},
    {"not json", "POST", "/v1/exports/image-baseline", "application/json",
     "exporters", 600, "{project", 400, "HSSGW.0001", NULL, 1},
    {"bad enum", "POST", "/v1/exports/image-baseline",
     "application/json;charset=utf-8", "exporters", 600,
     "{\"project\":\"demo\",\"image_type\":\"nope\"}", 400, "HSSGW.0002",
     "image_type", 1},
    {"forbidden field", "POST", "/v1/exports/image-baseline",
     "application/json", "exporters", 600,
     "{\"project\":\"demo\",\"project_id\":\"x\"}", 400, "HSSGW.0002",
     "project_id", 1},
    {"no policy allows", "POST", "/v1/exports/image-baseline",
     "application/json", "others", 600, "{\"project\":\"demo\"}", 403,
     "HSSGW.0103", NULL, 1},
    {"allow does not cover project", "POST", "/v1/exports/image-baseline",
     "application/json", "exporters", 600, "{\"project\":\"other\"}", 403,
     "HSSGW.0103", NULL, 1},
    {"explicit deny", "POST", "/v1/exports/image-baseline", "application/json",
     "suspended", 600, "{\"project\":\"demo\"}", 403, "HSSGW.0103", NULL, 1},
    /* Positive control of the chain: allowed, then HSS unreachable. */
    {"allowed, upstream down", "POST", "/v1/exports/image-baseline",
     "application/json", "exporters", 600, "{\"project\":\"demo\"}", 502,
     "HSSGW.0201", NULL, 2},
};

static void
run_case(struct fixture *fx, const struct pcase *c, struct gw_http_resp *r)
{
	struct gw_http_req req;
	char auth[4096], *t = NULL;

	memset(&req, 0, sizeof(req));
	req.method = c->method;
	req.path = c->path;
	req.content_type = c->ctype;
	if (c->groups != NULL) {
		t = token(c->groups, c->exp_delta);
		snprintf(auth, sizeof(auth), "Bearer %s", t);
		req.authorization = auth;
	}
	req.client_addr = "192.0.2.7";
	req.request_id = "req-0001";
	req.body = c->body;
	req.bodylen = strlen(c->body);
	req.now_ms = gw_now_ms();
	gw_pipe_handle(fx->snap, fx->w, &req, r);
	free(t);
}

static const char *
header(const struct gw_http_resp *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static void
stages(void **state)
{
	struct fixture *fx = *state;
	struct gw_http_resp r;
	char last[65536], want[160];
	size_t i, before, after;

	memset(&r, 0, sizeof(r)); /* stream and defer: none */
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];

		before = audit_lines(fx, NULL, 0);
		run_case(fx, c, &r);
		after = audit_lines(fx, last, sizeof(last));
		if (r.status != c->status)
			fail_msg("%s: status %d, want %d: %s", c->name,
			         r.status, c->status, r.body);
		snprintf(want, sizeof(want), "\"error_code\":\"%s\"", c->code);
		if (strstr(r.body, want) == NULL)
			fail_msg("%s: body %s lacks %s", c->name, r.body, want);
		if (c->field != NULL) {
			snprintf(want, sizeof(want), "\"field\":\"%s\"",
			         c->field);
			if (strstr(r.body, want) == NULL)
				fail_msg("%s: body %s lacks %s", c->name,
				         r.body, want);
		}
		assert_non_null(strstr(r.body, "\"request_id\":\"req-0001\""));
		assert_string_equal(header(&r, "X-Request-Id"), "req-0001");
		if (c->status == 401)
			assert_non_null(header(&r, "WWW-Authenticate"));
		if (after - before != (size_t)c->audited)
			fail_msg("%s: %zu audit records, want %d", c->name,
			         after - before, c->audited);
		if (c->audited) {
			snprintf(want, sizeof(want), "\"status\":%d",
			         c->status);
			assert_non_null(strstr(last, want));
			assert_non_null(strstr(last, "192.0.2.7"));
			assert_null(strstr(last, IAMTOKEN));
		}
		assert_null(strstr(r.body, IAMTOKEN));
		gw_http_resp_reset(&r);
	}
	/* The allowed request reached translation: its audit record holds
	 * the upstream request, token redacted, and the deciding statement. */
	assert_non_null(strstr(last, "<redacted>"));
	assert_non_null(strstr(last, "AllowExporters"));
	assert_non_null(strstr(last, "/v5/pid0/image/baseline/export"));
	/* Two records share the request id: the intent, then the outcome. */
	assert_non_null(strstr(last, "\"phase\":\"outcome\""));
}

static void
too_large(void **state)
{
	struct fixture *fx = *state;
	struct gw_http_req req;
	struct gw_http_resp r;

	memset(&r, 0, sizeof(r)); /* stream and defer: none */
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.path = "/v1/exports/image-baseline";
	req.body = "";
	req.body_too_large = 1;
	req.now_ms = gw_now_ms();
	gw_pipe_handle(fx->snap, fx->w, &req, &r);
	assert_int_equal(r.status, 413);
	assert_non_null(strstr(r.body, "HSSGW.0003"));
	gw_http_resp_reset(&r);
}

/* An export of case c with req's slots; the caller resets r. */
static void
capped(struct fixture *fx, const struct pcase *c, atomic_int *waiting,
       struct gw_http_resp *r)
{
	struct gw_http_req req;
	char auth[4096], *t = NULL;

	memset(&req, 0, sizeof(req));
	req.method = c->method;
	req.path = c->path;
	req.content_type = c->ctype;
	if (c->groups != NULL) {
		t = token(c->groups, c->exp_delta);
		snprintf(auth, sizeof(auth), "Bearer %s", t);
		req.authorization = auth;
	}
	req.client_addr = "192.0.2.7";
	req.request_id = "req-0002";
	req.body = c->body;
	req.bodylen = strlen(c->body);
	req.now_ms = gw_now_ms();
	req.waiting = waiting;
	req.waiting_max = 2;
	gw_pipe_handle(fx->snap, fx->w, &req, r);
	free(t);
}

static const struct pcase *
case_named(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (strcmp(cases[i].name, name) == 0)
			return &cases[i];
	fail_msg("no case %s", name);
	return NULL;
}

/*
 * reserve_threads: with every worker that may wait on HSS taken, an
 * export that would send is answered at once with 503 HSSGW.0305 and
 * Retry-After (one audit record), its budget grant given back; /healthz
 * is still served; the slot count is left as found.  Gap pinned (issue
 * 21): the slot was taken on entering the route, so answers that wait
 * for nothing (401, 403, the budget's 429) were 503 too, and a 503 came
 * before the budget.  Positive control: one slot free, the export runs
 * its stages (502: HSS is a closed port) and spends the budget (5 a
 * minute), whose refusal then wins over a full cap.
 */
static void
waiting_cap(void **state)
{
	struct fixture *fx = *state;
	const struct pcase *c = case_named("allowed, upstream down");
	struct gw_http_resp r;
	atomic_int waiting;
	size_t before;
	int i;

	memset(&r, 0, sizeof(r)); /* stream and defer: none */
	atomic_init(&waiting, 2);
	capped(fx, case_named("no policy allows"), &waiting, &r);
	assert_int_equal(r.status, 403);
	gw_http_resp_reset(&r);
	capped(fx, case_named("no token"), &waiting, &r);
	assert_int_equal(r.status, 401);
	gw_http_resp_reset(&r);
	for (i = 0; i < 6; i++) {
		before = audit_lines(fx, NULL, 0);
		capped(fx, c, &waiting, &r);
		assert_int_equal(r.status, 503);
		assert_non_null(
		    strstr(r.body, "\"error_code\":\"HSSGW.0305\""));
		assert_string_equal(header(&r, "Retry-After"), "1");
		assert_int_equal(audit_lines(fx, NULL, 0) - before, 1);
		assert_int_equal(atomic_load(&waiting), 2);
		gw_http_resp_reset(&r);
	}

	capped(fx,
	       &(struct pcase){.method = "GET", .path = "/healthz", .body = ""},
	       &waiting, &r);
	/* Answered by the health check itself, not the cap. */
	assert_non_null(strstr(r.body, "\"status\":"));
	assert_null(strstr(r.body, "HSSGW.0305"));
	gw_http_resp_reset(&r);

	/* One slot free: the 6 refused above spent nothing, so 5 go. */
	atomic_init(&waiting, 1);
	for (i = 0; i < 5; i++) {
		capped(fx, c, &waiting, &r);
		assert_int_equal(r.status, c->status);
		assert_int_equal(atomic_load(&waiting), 1);
		gw_http_resp_reset(&r);
	}
	capped(fx, c, &waiting, &r);
	assert_int_equal(r.status, 429);
	assert_non_null(strstr(r.body, "HSSGW.0205"));
	gw_http_resp_reset(&r);
	/* Spent and every slot taken: the budget's 429, not 503. */
	atomic_init(&waiting, 2);
	capped(fx, c, &waiting, &r);
	assert_int_equal(r.status, 429);
	assert_non_null(header(&r, "Retry-After"));
	assert_int_equal(atomic_load(&waiting), 2);
	gw_http_resp_reset(&r);
}

/* One request through gw_pipe_handle; the caller resets r. */
static void
call(struct fixture *fx, const char *method, const char *path,
     struct gw_http_resp *r)
{
	struct gw_http_req req;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = path;
	req.body = "";
	req.client_addr = "192.0.2.7";
	req.request_id = "req-m";
	req.now_ms = gw_now_ms();
	gw_pipe_handle(fx->snap, fx->w, &req, r);
}

/*
 * GET /metrics: the text format's content type, answers counted by route,
 * status and code, the scrape itself not audited; other methods 405.
 */
static void
metrics_route(void **state)
{
	struct fixture *fx = *state;
	struct gw_http_resp r;
	size_t before;

	memset(&r, 0, sizeof(r)); /* stream and defer: none */
	call(fx, "GET", "/nowhere", &r);
	assert_int_equal(r.status, 404);
	gw_http_resp_reset(&r);
	call(fx, "POST", "/v1/exports/image-baseline", &r);
	assert_int_equal(r.status, 401);
	gw_http_resp_reset(&r);
	before = audit_lines(fx, NULL, 0);
	call(fx, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(header(&r, "Content-Type"),
	                    "text/plain; version=0.0.4; charset=utf-8");
	assert_int_equal(audit_lines(fx, NULL, 0), before);
	assert_non_null(strstr(r.body, "\nhssgw_requests_total{route=\"other\","
	                               "status=\"404\",code=\"HSSGW.0004\"} "
	                               "1\n"));
	assert_non_null(strstr(r.body,
	                       "\nhssgw_requests_total{route=\"export\","
	                       "status=\"401\",code=\"HSSGW.0101\"} "
	                       "1\n"));
	assert_non_null(strstr(
	    r.body, "\nhssgw_jwt_verifications_total{result=\"missing\"} 1\n"));
	/* Two records so far (404, 401), both counted. */
	assert_non_null(strstr(r.body, "\nhssgw_audit_records_total 2\n"));
	/* Budget per configured credentials entry and API, full. */
	assert_non_null(strstr(r.body, "hssgw_budget_tokens{credentials="));
	assert_non_null(strstr(
	    r.body, "\nhssgw_build_info{version=\"" GW_VERSION "\"} 1\n"));
	assert_null(strstr(r.body, IAMTOKEN));
	gw_http_resp_reset(&r);
	/* The scrape before this one is counted now. */
	call(fx, "POST", "/metrics", &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strstr(r.body, "HSSGW.0005"));
	gw_http_resp_reset(&r);
	call(fx, "GET", "/metrics", &r);
	assert_non_null(strstr(r.body,
	                       "\nhssgw_requests_total{route=\"metrics\","
	                       "status=\"200\",code=\"HSSGW.0000\"} "
	                       "1\n"));
	assert_non_null(strstr(r.body,
	                       "\nhssgw_requests_total{route=\"metrics\","
	                       "status=\"405\",code=\"HSSGW.0005\"} "
	                       "1\n"));
	gw_http_resp_reset(&r);
}

/*
 * hssgw_jwks_fetches_total comes from the key set's own counters: one
 * series per JWKS issuer and result (a fixed set of four), none for an
 * issuer with static keys only.  Pins the gap where the family was
 * written with no samples because nothing recorded a fetch.
 */
static void
metrics_jwks(void **state)
{
	struct fixture *fx = *state;
	struct gw_http_resp r;
	char err[512];

	memset(&r, 0, sizeof(r)); /* stream and defer: none */
	/* Control: before any fetch, every result is there at 0. */
	call(fx, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body,
	                       "\nhssgw_jwks_fetches_total{issuer=\"" JWKS_ISS
	                       "\",result=\"ok\"} 0\n"));
	assert_non_null(strstr(r.body,
	                       "\nhssgw_jwks_fetches_total{issuer=\"" JWKS_ISS
	                       "\",result=\"error\"} 0\n"));
	assert_non_null(strstr(r.body,
	                       "\nhssgw_jwks_fetches_total{issuer=\"" JWKS_ISS
	                       "\",result=\"rejected\"} 0\n"));
	assert_non_null(strstr(r.body,
	                       "\nhssgw_jwks_fetches_total{issuer=\"" JWKS_ISS
	                       "\",result=\"limited\"} 0\n"));
	assert_null(
	    strstr(r.body, "hssgw_jwks_fetches_total{issuer=\"" ISS "\""));
	gw_http_resp_reset(&r);
	/* The IdP is down: the first fetch fails and is counted as error. */
	assert_int_equal(
	    gw_pipe_prime_keys(fx->snap, gw_now_ms(), err, sizeof(err)), 1);
	call(fx, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body,
	                       "\nhssgw_jwks_fetches_total{issuer=\"" JWKS_ISS
	                       "\",result=\"error\"} 1\n"));
	assert_non_null(strstr(r.body,
	                       "\nhssgw_jwks_fetches_total{issuer=\"" JWKS_ISS
	                       "\",result=\"ok\"} 0\n"));
	gw_http_resp_reset(&r);
}

static void
audit_down_fails_closed(void **state)
{
	struct fixture *fx = *state;
	struct gw_http_resp r;
	struct pcase c = cases[sizeof(cases) / sizeof(cases[0]) - 1];

	memset(&r, 0, sizeof(r)); /* stream and defer: none */
	/* The first record fails to write and marks the trail broken. */
	run_case(fx, &cases[2], &r);
	gw_http_resp_reset(&r);
	/* An allowed export now stops before upstream with 503. */
	run_case(fx, &c, &r);
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.body, "HSSGW.0302"));
	gw_http_resp_reset(&r);
	/* Counted: the records refused, and none made durable. */
	call(fx, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_null(strstr(r.body, "\nhssgw_audit_failures_total 0\n"));
	assert_non_null(strstr(r.body, "\nhssgw_audit_failures_total "));
	assert_non_null(strstr(r.body, "\nhssgw_audit_records_total 0\n"));
	/* Nothing was sent: the export's grant was given back (all 5). */
	assert_non_null(strstr(r.body, "\nhssgw_budget_tokens{credentials="
	                               "\"main\",api=\"export\"} 5\n"));
	gw_http_resp_reset(&r);
}

/*
 * Issue 23: an answer the front offers to defer (resp.defer) comes back
 * with its record chained, not yet waited for: the ticket, the ids and
 * the answer's status in it, and the request not yet counted.  Once the
 * record is durable the request is counted; if the trail lost it, the
 * answer becomes the unaudited 503 naming the request (and the task HSS
 * accepted, when there is one).
 */
static void
deferred_answer(void **state)
{
	struct fixture *fx = *state;
	struct gw_http_req req;
	struct gw_http_resp r, alt;
	struct gw_deferred d;
	struct gw_metrics *m = gw_metrics_new();
	struct gw_buf text;
	char err[256], path[256], *t = token("hss-exporters", 600);
	char auth[4096], line[65536];
	FILE *f;
	int seen = 0;

	assert_non_null(m);
	snprintf(auth, sizeof(auth), "Bearer %s", t);
	memset(&r, 0, sizeof(r));
	memset(&d, 0, sizeof(d));
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.path = "/v1/no-such-endpoint";
	req.authorization = auth;
	req.client_addr = "192.0.2.7";
	req.request_id = "req-deferred";
	req.body = "";
	req.now_ms = gw_now_ms();
	r.defer = &d;
	gw_pipe_handle(fx->snap, fx->w, &req, &r);
	assert_int_equal(r.status, 404);
	assert_int_equal(r.deferred, 1);
	assert_ptr_equal(r.defer, &d);
	assert_true(d.ticket.seq > 0);
	assert_non_null(d.audit);
	assert_string_equal(d.request_id, "req-deferred");
	assert_string_equal(d.task_id, "");
	assert_int_equal(d.status, 404);
	assert_int_equal(gw_audit_wait(d.audit, &d.ticket, err, sizeof(err)),
	                 0);
	snprintf(path, sizeof(path), "%s/%s", fx->dir, fx->audit);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		seen |= strstr(line, "\"req-deferred\"") != NULL;
	fclose(f);
	assert_true(seen);
	/* Durable: counted, the answer untouched. */
	memset(&alt, 0, sizeof(alt));
	gw_pipe_deferred_done(m, &d, 1, "", &alt);
	assert_int_equal(alt.status, 0);
	gw_buf_init(&text, 1 << 20);
	gw_metrics_write(m, &text);
	assert_non_null(strstr(text.p, "status=\"404\""));
	gw_buf_reset(&text);
	/* Lost: the unaudited 503, with the request's id. */
	gw_pipe_deferred_done(m, &d, 0, "audit trail broken: test", &alt);
	assert_int_equal(alt.status, 503);
	assert_non_null(strstr(alt.body, "HSSGW.0302"));
	assert_non_null(strstr(alt.body, "req-deferred"));
	assert_non_null(strstr(alt.body, "audit trail cannot be written"));
	gw_http_resp_reset(&alt);
	snprintf(d.task_id, sizeof(d.task_id), "%s", "task-42");
	gw_pipe_deferred_done(m, &d, 0, "audit trail broken: test", &alt);
	assert_non_null(strstr(alt.body, "task task-42"));
	gw_http_resp_reset(&alt);
	/* Control: without an offer the record is durable on return. */
	gw_http_resp_reset(&r);
	r.defer = NULL;
	req.request_id = "req-sync";
	gw_pipe_handle(fx->snap, fx->w, &req, &r);
	assert_int_equal(r.deferred, 0);
	gw_http_resp_reset(&r);
	gw_metrics_free(m);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(stages, setup, teardown),
	    cmocka_unit_test_setup_teardown(too_large, setup, teardown),
	    cmocka_unit_test_setup_teardown(deferred_answer, setup, teardown),
	    cmocka_unit_test_setup_teardown(waiting_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(metrics_route, setup, teardown),
	    cmocka_unit_test_setup_teardown(metrics_jwks, setup_jwks, teardown),
	    cmocka_unit_test_setup_teardown(audit_down_fails_closed,
	                                    setup_full_disk, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
