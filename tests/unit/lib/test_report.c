/*
 * The audit report's aggregation, on trails written by the real writer
 * with counts known by construction: per team and subject, deciding
 * statements, shadow disagreements, budget and HSS 429s per hour, the
 * busiest minute, anonymous failures; the caps with their "other" row;
 * the time window; a tampered trail reported as broken (an intact one as
 * the control); every caller-controlled string escaped in the page.
 */
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
#include "report.h"

#define T0  1767225600000LL /* 2026-01-01T00:00:00Z */
#define SEC 1000LL
#define XSS "<script>alert(1)</script>"

struct fx {
	char dir[64];
	char path[128];
	struct gw_audit *a;
	struct gw_upreq *up;
};

/* One request as the gateway records it (intent first when twophase). */
struct req {
	int64_t at;
	const char *subject, *team, *action, *decision, *sid;
	const char *shadow, *shadow_sid;
	int status, up_status; /* up_status -1: nothing built upstream */
	const char *error, *project, *addr;
	int twophase, coalesced, cached;
};

static void
emit(struct fx *fx, const struct req *q)
{
	const char *groups[1];
	struct gw_audit_rec r;
	char err[256];

	memset(&r, 0, sizeof(r));
	r.time_ms = T0 + q->at;
	r.request_id = "req";
	r.client_addr = q->addr ? q->addr : "10.0.0.9";
	r.path = q->subject == NULL ? "/v1/exports/" XSS : "/v1/exports/x";
	r.subject = q->subject;
	if (q->team != NULL) {
		groups[0] = q->team;
		r.groups = groups;
		r.ngroups = 1;
	}
	r.action = q->action;
	r.project = q->project;
	r.decision = q->decision;
	r.stmt_file = q->sid ? "policies/teams.json" : NULL;
	r.stmt_sid = q->sid;
	r.shadow_decision = q->shadow;
	r.shadow_stmt_file = q->shadow_sid ? "shadow/next.json" : NULL;
	r.shadow_stmt_sid = q->shadow_sid;
	r.record_total_num = -1;
	r.cred_name = q->up_status >= 0 ? "main" : NULL;
	r.coalesced = q->coalesced;
	r.cached = q->cached;
	r.upreq = q->up_status >= 0 || q->coalesced ? fx->up : NULL;
	if (q->twophase) {
		r.phase = GW_AUDIT_INTENT;
		assert_int_equal(gw_audit_emit(fx->a, &r, err, sizeof(err)),
		                 GW_OK);
		r.phase = GW_AUDIT_OUTCOME;
	}
	r.status = q->status;
	r.error_code = q->error;
	r.up_status = q->up_status > 0 ? q->up_status : 0;
	assert_int_equal(gw_audit_emit(fx->a, &r, err, sizeof(err)), GW_OK);
}

#define EXP "hss:ExportImageBaseline"
#define ST  "hss:GetExportTask"
#define DL  "hss:DownloadExportFile"

/* The trail: 13 requests, 4 of them with an intent record. */
static const struct req trail[] = {
    {10 * SEC, "alice", "team-a", EXP, "allow", "AllowCI", NULL, NULL, 200, 200,
     NULL, "demo", NULL, 1, 0, 0},
    {20 * SEC, "alice", "team-a", EXP, "allow", "AllowCI", NULL, NULL, 200, -1,
     NULL, "prod", NULL, 0, 1, 0},
    {30 * SEC, "bob", "team-a", EXP, "explicit_deny", "DenyProd", NULL, NULL,
     403, -1, "HSSGW.0103", "prod", NULL, 0, 0, 0},
    {60 * SEC, "carol", "team-b", EXP, "implicit_deny", NULL, "allow",
     "ShadowAllow", 403, -1, "HSSGW.0103", "prod", NULL, 0, 0, 0},
    /* Written after a later one: the minute ring takes it. */
    {40 * SEC, "carol", "team-b", EXP, "allow", "AllowCI", "explicit_deny",
     "ShadowDeny", 200, 200, NULL, "demo", NULL, 1, 0, 0},
    {3600 * SEC, "bob", "team-a", EXP, "allow", "AllowCI", NULL, NULL, 429, 0,
     "HSSGW.0205", "demo", NULL, 1, 0, 0},
    {3605 * SEC, "bob", "team-a", EXP, "allow", "AllowCI", NULL, NULL, 429, 429,
     "HSSGW.0206", "demo", NULL, 1, 0, 0},
    {50 * SEC, "alice", "team-a", ST, "allow", "AllowCI", NULL, NULL, 200, 200,
     NULL, "demo", NULL, 0, 0, 0},
    {55 * SEC, "alice", "team-a", ST, "allow", "AllowCI", NULL, NULL, 200, -1,
     NULL, "demo", NULL, 0, 0, 1},
    {120 * SEC, "carol", "team-b", DL, "allow", "AllowCI", NULL, NULL, 200, 200,
     NULL, "demo", NULL, 0, 0, 0},
    {125 * SEC, "dave", NULL, DL, "allow", "AllowCI", NULL, NULL, 409, 0,
     "HSSGW.0009", "demo", NULL, 0, 0, 0},
    {130 * SEC, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 401, -1, "HSSGW.0101",
     NULL, "192.0.2.1", 0, 0, 0},
    {131 * SEC, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 401, -1, "HSSGW.0101",
     NULL, "192.0.2.1", 0, 0, 0},
    {132 * SEC, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 401, -1, "HSSGW.0102",
     NULL, "192.0.2.2", 0, 0, 0},
    {133 * SEC, XSS, "team-c", EXP, "allow", "AllowCI", NULL, NULL, 200, -1,
     NULL, "demo", NULL, 0, 1, 0},
};
#define NTRAIL (sizeof(trail) / sizeof(trail[0]))

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct gw_audit_opts o = {.nosync = 1};
	char err[256];

	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/hssgw-report-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/audit.jsonl", fx->dir);
	fx->a = gw_audit_open_opts(fx->path, &o, err, sizeof(err));
	fx->up = gw_upreq_new("POST", "https://hss.example/v5/p/export");
	if (fx->a == NULL || fx->up == NULL)
		return -1;
	fx->up->body = strdup("{\"risk_level\":\"high\",\"image_type\":"
	                      "\"cicd\"}");
	fx->up->bodylen = strlen(fx->up->body);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[128];

	gw_audit_close(fx->a);
	gw_upreq_free(fx->up);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
	if (system(cmd) != 0)
		return -1;
	free(fx);
	return 0;
}

static void
write_trail(struct fx *fx)
{
	size_t i;

	for (i = 0; i < NTRAIL; i++)
		emit(fx, &trail[i]);
	gw_audit_close(fx->a);
	fx->a = NULL;
}

static struct gw_report *
build(struct fx *fx, const char *claim, struct gw_report_opts *o)
{
	const char *files[1] = {fx->path};
	struct gw_report_opts dflt;
	struct gw_report *rep;
	char err[256], ck[160];

	if (o == NULL) {
		memset(&dflt, 0, sizeof(dflt));
		o = &dflt;
	}
	snprintf(ck, sizeof(ck), "%s.checkpoint", fx->path);
	o->files = files;
	o->nfiles = 1;
	o->checkpoint = ck;
	o->team_claim = claim;
	rep = gw_report_build(o, err, sizeof(err));
	if (rep == NULL)
		fail_msg("%s", err);
	return rep;
}

#define CNT(t, k, c) gw_report_count(rep, GW_REPORT_##t, k, GW_RC_##c)

static void
counts_known(void **state)
{
	struct fx *fx = *state;
	struct gw_report *rep;
	const struct gw_report_totals *t;
	char buf[256];
	long long calls;
	int64_t min;

	write_trail(fx);
	rep = build(fx, "groups", NULL);
	t = gw_report_totals(rep);
	assert_true(t->intact);
	assert_int_equal(t->records, NTRAIL + 4);
	assert_int_equal(t->verify.records, NTRAIL + 4);
	assert_int_equal(t->unreadable, 0);
	assert_int_equal(t->first_ms, T0 + 10 * SEC);
	assert_int_equal(t->last_ms, T0 + 3605 * SEC);
	assert_int_equal(t->no_team, 1); /* dave has no groups */
	/* Exports: 200 answers, coalesced ones included and counted. */
	assert_int_equal(CNT(TEAM, "team-a", EXPORTS), 2);
	assert_int_equal(CNT(TEAM, "team-a", COALESCED), 1);
	assert_int_equal(CNT(TEAM, "team-b", EXPORTS), 1);
	assert_int_equal(CNT(TEAM, "team-b", COALESCED), 0);
	assert_int_equal(CNT(SUBJECT, "alice", EXPORTS), 2);
	assert_int_equal(CNT(SUBJECT, XSS, EXPORTS), 1);
	assert_int_equal(CNT(SUBJECT, "bob", EXPORTS), 0);
	assert_int_equal(gw_report_names(rep, GW_REPORT_TEAM, "team-a", 'p',
	                                 buf, sizeof(buf)),
	                 0);
	assert_string_equal(buf, "demo, prod");
	assert_int_equal(gw_report_names(rep, GW_REPORT_SUBJECT, "carol", 'f',
	                                 buf, sizeof(buf)),
	                 0);
	assert_string_equal(buf, "image_type, risk_level");
	/* Decisions per team and per statement; denied callers. */
	assert_int_equal(CNT(TEAM, "team-a", ALLOW), 6);
	assert_int_equal(CNT(TEAM, "team-a", EXPLICIT), 1);
	assert_int_equal(CNT(TEAM, "team-b", IMPLICIT), 1);
	assert_int_equal(CNT(TEAM, "dave", ALLOW), 1);
	assert_int_equal(CNT(STATEMENT, "policies/teams.json#AllowCI", ALLOW),
	                 10);
	assert_int_equal(
	    CNT(STATEMENT, "policies/teams.json#DenyProd", EXPLICIT), 1);
	assert_int_equal(CNT(STATEMENT, "(no statement)", IMPLICIT), 1);
	assert_int_equal(CNT(DENIED, "bob", EXPLICIT), 1);
	assert_int_equal(CNT(DENIED, "carol", IMPLICIT), 1);
	assert_int_equal(CNT(DENIED, "alice", EXPLICIT), -1);
	/* Shadow: outcome changes only, by the shadow's statement. */
	assert_int_equal(CNT(TEAM, "team-b", SHADOW_DENY), 1);
	assert_int_equal(CNT(TEAM, "team-b", SHADOW_ALLOW), 1);
	assert_int_equal(
	    CNT(SHADOW, "shadow/next.json#ShadowDeny", SHADOW_DENY), 1);
	assert_int_equal(
	    CNT(SHADOW, "shadow/next.json#ShadowAllow", SHADOW_ALLOW), 1);
	/* Polls, downloads, budget, HSS 429s. */
	assert_int_equal(CNT(TEAM, "team-a", POLLS), 2);
	assert_int_equal(CNT(TEAM, "team-a", POLLS_CACHED), 1);
	assert_int_equal(CNT(TEAM, "team-b", DOWNLOADS), 1);
	assert_int_equal(CNT(TEAM, "dave", DOWNLOADS_FAILED), 1);
	assert_int_equal(CNT(TEAM, "team-a", BUDGET), 1);
	assert_int_equal(CNT(TEAM, "team-a", HSS429), 1);
	assert_int_equal(gw_report_hour(rep, T0, NULL, GW_RC_EXPORTS), 4);
	assert_int_equal(gw_report_hour(rep, T0, "team-a", GW_RC_EXPORTS), 2);
	assert_int_equal(gw_report_hour(rep, T0, "team-c", GW_RC_EXPORTS), 1);
	assert_int_equal(gw_report_hour(rep, T0, NULL, GW_RC_BUDGET), 0);
	assert_int_equal(
	    gw_report_hour(rep, T0 + 3600 * SEC, NULL, GW_RC_BUDGET), 1);
	assert_int_equal(
	    gw_report_hour(rep, T0 + 3600 * SEC, NULL, GW_RC_HSS429), 1);
	/* Upstream calls: coalesced and cached answers made none. */
	assert_int_equal(CNT(UPKEY, "main export", COUNT), 3);
	assert_int_equal(CNT(UPKEY, "main export-task", COUNT), 1);
	assert_int_equal(CNT(UPKEY, "main download", COUNT), 1);
	assert_int_equal(gw_report_peak(rep, "main export", &calls, &min), 0);
	assert_int_equal(calls, 2);
	assert_int_equal(min, T0);
	/* Anonymous failures. */
	assert_int_equal(CNT(REASON, "HSSGW.0101", COUNT), 2);
	assert_int_equal(CNT(REASON, "HSSGW.0102", COUNT), 1);
	assert_int_equal(CNT(ADDR, "192.0.2.1", COUNT), 2);
	assert_int_equal(CNT(ADDR, "192.0.2.2", COUNT), 1);
	assert_int_equal(CNT(TEAM, NULL, EXPORTS), -1); /* no "other" row */
	gw_report_free(rep);
}

/* Without a claim the team is the subject. */
static void
team_is_subject(void **state)
{
	struct fx *fx = *state;
	struct gw_report *rep;

	write_trail(fx);
	rep = build(fx, NULL, NULL);
	assert_int_equal(CNT(TEAM, "alice", EXPORTS), 2);
	assert_int_equal(CNT(TEAM, "team-a", EXPORTS), -1);
	assert_int_equal(gw_report_totals(rep)->no_team, 0);
	gw_report_free(rep);
}

/*
 * Records written since the gateway names the fair share's team carry a
 * "team" member: the report groups by it without being told the claim,
 * and it wins over the configured claim (here "groups" says otherwise).
 */
static void
team_member(void **state)
{
	struct fx *fx = *state;
	struct gw_report *rep;
	struct req q = trail[0];
	struct gw_audit_rec r;
	char err[256];

	memset(&r, 0, sizeof(r));
	r.time_ms = T0;
	r.request_id = "req";
	r.client_addr = "10.0.0.9";
	r.path = "/v1/exports/x";
	r.subject = "erin";
	r.team = "payments";
	r.action = EXP;
	r.project = "demo";
	r.decision = "allow";
	r.record_total_num = -1;
	r.phase = GW_AUDIT_FINAL;
	r.status = 200;
	assert_int_equal(gw_audit_emit(fx->a, &r, err, sizeof(err)), GW_OK);
	q.subject = "frank"; /* positive control: no team member */
	q.team = NULL;
	emit(fx, &q);
	gw_audit_close(fx->a);
	fx->a = NULL;
	rep = build(fx, NULL, NULL);
	assert_int_equal(CNT(TEAM, "payments", EXPORTS), 1);
	assert_int_equal(CNT(TEAM, "frank", EXPORTS), 1);
	assert_int_equal(CNT(TEAM, "erin", EXPORTS), -1);
	gw_report_free(rep);
}

/* The window: only records from hour 1 on. */
static void
window(void **state)
{
	struct fx *fx = *state;
	struct gw_report_opts o;
	struct gw_report *rep;

	write_trail(fx);
	memset(&o, 0, sizeof(o));
	o.since_ms = T0 + 3600 * SEC;
	o.has_since = 1;
	rep = build(fx, "groups", &o);
	assert_int_equal(gw_report_totals(rep)->records, 4);
	assert_int_equal(CNT(TEAM, "team-a", BUDGET), 1);
	assert_int_equal(CNT(TEAM, "team-a", EXPORTS), 0);
	assert_int_equal(CNT(TEAM, "team-b", EXPORTS), -1);
	gw_report_free(rep);
}

/* Past the cap, keys share the "other" row; memory stays bounded. */
static void
caps(void **state)
{
	struct fx *fx = *state;
	struct gw_report *rep;
	struct req q = trail[0];
	char team[32];
	int i;

	for (i = 0; i < GW_REPORT_TEAMS_MAX + 6; i++) {
		snprintf(team, sizeof(team), "t%03d", i);
		q.team = team;
		q.at = i * SEC;
		emit(fx, &q);
	}
	gw_audit_close(fx->a);
	fx->a = NULL;
	rep = build(fx, "groups", NULL);
	assert_int_equal(CNT(TEAM, "t000", EXPORTS), 1);
	assert_int_equal(CNT(TEAM, "t063", EXPORTS), 1);
	assert_int_equal(CNT(TEAM, "t064", EXPORTS), -1);
	assert_int_equal(CNT(TEAM, NULL, EXPORTS), 6);
	assert_int_equal(gw_report_hour(rep, T0, NULL, GW_RC_EXPORTS),
	                 GW_REPORT_TEAMS_MAX + 6);
	gw_report_free(rep);
}

/* Not inlined: gcc 12 then takes the buffer open_memstream(3) returns
 * through &p for a pointer to p itself (-Wdangling-pointer). */
__attribute__((noinline)) static char *
html_of(struct gw_report *rep)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);

	assert_non_null(f);
	assert_int_equal(gw_report_html(rep, f), 0);
	fclose(f);
	return p;
}

/* An edited record: the page opens with the break; intact is the control. */
static void
tampered(void **state)
{
	struct fx *fx = *state;
	struct gw_report *rep;
	char *html, *lines = NULL, *p;
	size_t n = 0;
	FILE *f;

	write_trail(fx);
	rep = build(fx, "groups", NULL);
	html = html_of(rep);
	assert_non_null(strstr(html, "id=\"integrity-status\" class=\"ok\""));
	assert_null(strstr(html, "BROKEN"));
	free(html);
	gw_report_free(rep);
	/* Change bob's deny into an allow on line 4. */
	f = fopen(fx->path, "r");
	assert_non_null(f);
	assert_true(getdelim(&lines, &n, '\0', f) > 0);
	fclose(f);
	p = strstr(lines, "\"explicit_deny\"");
	assert_non_null(p);
	memcpy(p, "\"allow\"        ", 15);
	f = fopen(fx->path, "w");
	fputs(lines, f);
	fclose(f);
	free(lines);
	rep = build(fx, "groups", NULL);
	assert_false(gw_report_totals(rep)->intact);
	assert_int_equal(gw_report_totals(rep)->verify.problem, GW_AQ_MODIFIED);
	assert_int_equal(gw_report_totals(rep)->verify.line, 4);
	html = html_of(rep);
	p = strstr(html, "class=\"broken\">BROKEN: modified at ");
	assert_non_null(p);
	assert_non_null(strstr(p, "audit.jsonl:4 (seq 4)"));
	/* The integrity section comes before every other. */
	assert_true(p < strstr(html, "id=\"exports\""));
	free(html);
	gw_report_free(rep);
}

/* Subjects and paths are the callers': the page never carries them raw. */
static void
escaped(void **state)
{
	struct fx *fx = *state;
	struct gw_report *rep;
	char *html;

	write_trail(fx);
	rep = build(fx, "groups", NULL);
	html = html_of(rep);
	assert_null(strstr(html, "<script"));
	assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	/* Control: the page has the CSP and no external reference. */
	assert_non_null(strstr(html, "default-src 'none'"));
	assert_null(strstr(html, "src=\"http"));
	assert_null(strstr(html, "href=\"http"));
	free(html);
	gw_report_free(rep);
}

/* A claim name goes into the page's jq programs: held to a name. */
static void
claim_checked(void **state)
{
	struct fx *fx = *state;
	const char *files[1] = {fx->path};
	struct gw_report_opts o;
	struct gw_report *rep;
	char err[256];

	write_trail(fx);
	memset(&o, 0, sizeof(o));
	o.files = files;
	o.nfiles = 1;
	o.team_claim = "team' ; rm -rf / ; '";
	rep = gw_report_build(&o, err, sizeof(err));
	assert_null(rep);
	assert_non_null(strstr(err, "team claim"));
	o.team_claim = "hss:team";
	rep = gw_report_build(&o, err, sizeof(err));
	assert_non_null(rep);
	gw_report_free(rep);
	/* A missing file is an error, not an empty report. */
	files[0] = "/nonexistent/audit.jsonl";
	assert_null(gw_report_build(&o, err, sizeof(err)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(counts_known, setup, teardown),
	    cmocka_unit_test_setup_teardown(team_is_subject, setup, teardown),
	    cmocka_unit_test_setup_teardown(team_member, setup, teardown),
	    cmocka_unit_test_setup_teardown(window, setup, teardown),
	    cmocka_unit_test_setup_teardown(caps, setup, teardown),
	    cmocka_unit_test_setup_teardown(tampered, setup, teardown),
	    cmocka_unit_test_setup_teardown(escaped, setup, teardown),
	    cmocka_unit_test_setup_teardown(claim_checked, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
