/*
 * report-trail FILE N [STEP_MS] [--fast]: writes an audit trail of N
 * requests with the real writer (gw_audit_emit, fsync off), cycling
 * through the kinds
 * of request below, one request every STEP_MS (default 10000) from
 * 2026-01-01T00:00:00Z.  test_report.py derives its expected counts from
 * this table; bench/bench_report.sh uses it for a million records.  An
 * allowed export that reached HSS writes two records (intent, outcome),
 * like the gateway.  Subject and path of one kind carry <script>, to
 * show the page escapes what callers control.  --fast (the benchmark's
 * million records) serializes each record with gw_audit_format and chains
 * it here as docs/AUDIT.md specifies, without the writer's per-record
 * write and checkpoint rename; audit verify checks the result.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit.h"
#include "gw.h"
#include "upreq.h"

#define T0 1767225600000LL /* 2026-01-01T00:00:00Z */

#define EXPORT   "hss:ExportImageBaseline"
#define STATUS   "hss:GetExportTask"
#define DOWNLOAD "hss:DownloadExportFile"
#define XSS      "<script>alert(1)</script>"

static const struct kind {
	const char *subject, *team, *action, *decision, *sid;
	const char *shadow, *shadow_sid; /* shadow decision and statement */
	int status, up_status;           /* up_status -1: nothing upstream */
	const char *error, *project, *path, *addr;
	int twophase, coalesced, cached;
} kinds[] = {
    /* 0 */ {"alice", "team-a", EXPORT, "allow", "AllowCI", NULL, NULL, 200,
             200, NULL, "demo", "/v1/exports/image-baseline", "10.0.0.9", 1, 0,
             0},
    /* 1 */
    {"bob", "team-a", EXPORT, "allow", "AllowCI", NULL, NULL, 200, -1, NULL,
     "prod", "/v1/exports/image-baseline", "10.0.0.9", 0, 1, 0},
    /* 2 */
    {"carol", "team-b", EXPORT, "allow", "AllowCI", NULL, NULL, 200, 200, NULL,
     "demo", "/v1/exports/image-baseline", "10.0.0.9", 1, 0, 0},
    /* 3 */
    {"dave", "team-c", EXPORT, "explicit_deny", "DenyProd", NULL, NULL, 403, -1,
     "HSSGW.0103", "prod", "/v1/exports/image-baseline", "10.0.0.9", 0, 0, 0},
    /* 4 */
    {"alice", "team-a", EXPORT, "implicit_deny", NULL, NULL, NULL, 403, -1,
     "HSSGW.0103", "secret", "/v1/exports/image-baseline", "10.0.0.9", 0, 0, 0},
    /* 5 */
    {"carol", "team-b", EXPORT, "allow", "AllowCI", NULL, NULL, 429, 0,
     "HSSGW.0205", "demo", "/v1/exports/image-baseline", "10.0.0.9", 1, 0, 0},
    /* 6 */
    {"bob", "team-a", EXPORT, "allow", "AllowCI", NULL, NULL, 429, 429,
     "HSSGW.0206", "demo", "/v1/exports/image-baseline", "10.0.0.9", 1, 0, 0},
    /* 7 */
    {"alice", "team-a", STATUS, "allow", "AllowCI", NULL, NULL, 200, 200, NULL,
     "demo", "/v1/exports/image-baseline/h1", "10.0.0.9", 0, 0, 0},
    /* 8 */
    {"alice", "team-a", STATUS, "allow", "AllowCI", NULL, NULL, 200, -1, NULL,
     "demo", "/v1/exports/image-baseline/h1", "10.0.0.9", 0, 0, 1},
    /* 9 */
    {"carol", "team-b", DOWNLOAD, "allow", "AllowCI", NULL, NULL, 200, 200,
     NULL, "demo", "/v1/exports/image-baseline/h2/file", "10.0.0.9", 0, 0, 0},
    /* 10 */
    {"dave", "team-c", DOWNLOAD, "allow", "AllowCI", NULL, NULL, 409, -1,
     "HSSGW.0009", "demo", "/v1/exports/image-baseline/h3/file", "10.0.0.9", 0,
     0, 0},
    /* 11 */
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, 401, -1, "HSSGW.0101", NULL,
     "/v1/exports/image-baseline", "192.0.2.1", 0, 0, 0},
    /* 12 */
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, 401, -1, "HSSGW.0102", NULL,
     "/v1/exports/" XSS, "192.0.2.2", 0, 0, 0},
    /* 13 */
    {XSS, "team-c", EXPORT, "allow", "AllowCI", "explicit_deny", "ShadowDeny",
     200, 200, NULL, "demo", "/v1/exports/" XSS, "10.0.0.9", 1, 0, 0},
    /* 14 */
    {"alice", "team-a", EXPORT, "allow", "AllowCI", "implicit_deny", NULL, 200,
     200, NULL, "prod", "/v1/exports/image-baseline", "10.0.0.9", 1, 0, 0},
    /* 15 */
    {"dave", "team-c", EXPORT, "explicit_deny", "DenyProd", "allow",
     "ShadowAllow", 403, -1, "HSSGW.0103", "prod", "/v1/exports/image-baseline",
     "10.0.0.9", 0, 0, 0},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Where records go: the writer, or --fast's own chain. */
struct sink {
	struct gw_audit *a;
	FILE *f;
	long long seq;
	char prev[GW_AUDIT_HASH_HEX + 1];
};

/* --fast: the record chained as docs/AUDIT.md says. */
static int
put_fast(struct sink *k, const struct gw_audit_rec *r)
{
	unsigned char md[32];
	struct gw_buf b, line;
	unsigned int mdlen = 0;
	char hex[65];
	int i, rc = -1;

	gw_buf_init(&b, 1024 * 1024);
	gw_buf_init(&line, 1024 * 1024);
	if (gw_audit_format(r, &b) == -1 || b.len < 2 ||
	    gw_buf_printf(&line, "{\"v\":%d,\"seq\":%lld,\"prev\":\"%s\",%.*s",
	                  GW_AUDIT_SCHEMA_VERSION, k->seq + 1, k->prev,
	                  (int)(b.len - 1), b.p + 1) == -1 ||
	    EVP_Digest(line.p, line.len, md, &mdlen, EVP_sha256(), NULL) != 1)
		goto out;
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	line.p[--line.len] = '\0'; /* drop "}" */
	if (fprintf(k->f, "%s,\"hash\":\"%s\"}\n", line.p, hex) < 0)
		goto out;
	k->seq++;
	memcpy(k->prev, hex, sizeof(k->prev));
	rc = 0;
out:
	gw_buf_reset(&b);
	gw_buf_reset(&line);
	return rc;
}

static enum gw_err
put(struct sink *k, const struct gw_audit_rec *r, char *err, size_t errlen)
{
	if (k->a != NULL)
		return gw_audit_emit(k->a, r, err, errlen);
	if (put_fast(k, r) == 0)
		return GW_OK;
	snprintf(err, errlen, "write failed");
	return GW_ERR_AUDIT;
}

static int
emit(struct sink *a, const struct kind *k, long long i, long long step,
     struct gw_upreq *up)
{
	const char *groups[1];
	struct gw_audit_rec r;
	char rid[32], err[256], task[32], res[128];
	enum gw_err e;

	memset(&r, 0, sizeof(r));
	snprintf(rid, sizeof(rid), "req-%lld", i);
	snprintf(task, sizeof(task), "task-%lld", i);
	r.time_ms = T0 + i * step;
	r.request_id = rid;
	r.client_addr = k->addr;
	r.method = k->action != NULL && strcmp(k->action, EXPORT) == 0 ? "POST"
	                                                               : "GET";
	r.path = k->path;
	r.subject = k->subject;
	r.issuer = k->subject != NULL ? "https://idp.example" : NULL;
	if (k->team != NULL) {
		groups[0] = k->team;
		r.groups = groups;
		r.ngroups = 1;
	}
	r.action = k->action;
	r.project = k->project;
	/* The resource policy replay decides on (bench/bench_replay.sh). */
	if (k->project != NULL && k->decision != NULL) {
		snprintf(res, sizeof(res), "hss:cn-north-4:%s", k->project);
		r.resource = res;
	}
	r.decision = k->decision;
	r.stmt_file = k->sid != NULL ? "policies/teams.json" : NULL;
	r.stmt_sid = k->sid;
	r.shadow_decision = k->shadow;
	r.shadow_stmt_file = k->shadow_sid != NULL ? "shadow/next.json" : NULL;
	r.shadow_stmt_sid = k->shadow_sid;
	r.record_total_num = -1;
	r.cred_name = k->up_status >= 0 ? "main" : NULL;
	r.coalesced = k->coalesced;
	r.cached = k->cached;
	r.upreq = k->up_status >= 0 || k->coalesced ? up : NULL;
	if (k->twophase) {
		r.phase = GW_AUDIT_INTENT;
		e = put(a, &r, err, sizeof(err));
		if (e != GW_OK)
			goto fail;
		r.phase = GW_AUDIT_OUTCOME;
	}
	r.status = k->status;
	r.error_code = k->error;
	r.up_status = k->up_status > 0 ? k->up_status : 0;
	r.task_id = k->up_status == 200 && k->action != NULL &&
	                    strcmp(k->action, EXPORT) == 0
	                ? task
	                : NULL;
	e = put(a, &r, err, sizeof(err));
	if (e == GW_OK)
		return 0;
fail:
	fprintf(stderr, "report-trail: %s\n", err);
	return -1;
}

int
main(int argc, char *argv[])
{
	struct gw_audit_opts o = {.nosync = 1};
	struct gw_upreq *up = NULL;
	struct sink k;
	long long n = 0, step = 10000, i;
	char err[256], ck[4096];
	int rc = 1, fast = argc > 1 && strcmp(argv[argc - 1], "--fast") == 0;
	FILE *f;

	memset(&k, 0, sizeof(k));
	argc -= fast;
	if (argc < 3 || argc > 4 ||
	    gw_strtonum(argv[2], 1, 100000000, &n) == -1 ||
	    (argc == 4 && gw_strtonum(argv[3], 0, 86400000, &step) == -1)) {
		fprintf(stderr,
		        "usage: report-trail FILE N [STEP_MS] [--fast]\n");
		return 2;
	}
	memset(k.prev, '0', GW_AUDIT_HASH_HEX);
	if (fast)
		k.f = fopen(argv[1], "wx");
	else
		k.a = gw_audit_open_opts(argv[1], &o, err, sizeof(err));
	up = gw_upreq_new("POST", "https://hss.example/v5/p1/image/baseline/"
	                          "export");
	if ((k.a == NULL && k.f == NULL) || up == NULL) {
		fprintf(stderr, "report-trail: %s\n",
		        fast ? "cannot create the file" : err);
		goto out;
	}
	up->body = strdup("{\"image_type\":\"cicd\",\"risk_level\":\"high\"}");
	if (up->body == NULL)
		goto out;
	up->bodylen = strlen(up->body);
	for (i = 0; i < n; i++)
		if (emit(&k, &kinds[i % NKINDS], i, step, up) == -1)
			goto out;
	if (fast) {
		/* The checkpoint the writer would have left. */
		snprintf(ck, sizeof(ck), "%s.checkpoint", argv[1]);
		f = fopen(ck, "w");
		if (f == NULL ||
		    fprintf(f,
		            "{\"v\":%d,\"seq\":%lld,\"hash\":"
		            "\"%s\"}\n",
		            GW_AUDIT_SCHEMA_VERSION, k.seq, k.prev) < 0) {
			if (f != NULL)
				fclose(f);
			goto out;
		}
		if (fclose(f) != 0)
			goto out;
	}
	rc = 0;
out:
	if (k.f != NULL && fclose(k.f) != 0)
		rc = 1;
	gw_upreq_free(up);
	gw_audit_close(k.a);
	return rc;
}
