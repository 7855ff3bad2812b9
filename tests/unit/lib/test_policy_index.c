/*
 * Policy pre-filter tests (policy_index.c): the index built at load may
 * only rule out statements that would not apply.  Every case is one the
 * index must NOT skip (wildcard and '?' Principal values, "*",
 * NotPrincipal, a literal claim next to a wildcard one, wildcard and
 * case-variant actions, NotAction, actions hssgw does not know) or one it
 * must not let through (case variants, the same value under another
 * claim), each with a positive control; every decision is also checked
 * against gw_pol_explain, which visits every statement without the index.
 * Then load order across bitmap words, the deciding list, that the index
 * does filter (gw_pol_candidates), and random sets compared with explain.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw.h"
#include "policy_fixture.h"

#define GET_TASK "hss:GetExportTask"

/* The decision with the index (eval) equals the one without (explain). */
static void
same_as_explain(const struct gw_pol_set *set, const struct gw_pol_request *req,
                const struct gw_pol_decision *d, const char *name)
{
	struct gw_pol_decision dx;
	char *js;
	size_t i;

	js = gw_pol_explain(set, req, &dx);
	assert_non_null(js);
	free(js);
	if (dx.effect != d->effect || dx.ndeciding != d->ndeciding ||
	    dx.ndeciding_total != d->ndeciding_total ||
	    strcmp(dx.sid, d->sid) != 0 || strcmp(dx.file, d->file) != 0)
		fail_msg("case \"%s\": eval %s \"%s\" (%zu), explain %s "
		         "\"%s\" (%zu)",
		         name, gw_pol_effect_name(d->effect), d->sid,
		         d->ndeciding_total, gw_pol_effect_name(dx.effect),
		         dx.sid, dx.ndeciding_total);
	for (i = 0; i < d->ndeciding; i++)
		if (strcmp(dx.deciding[i].sid, d->deciding[i].sid) != 0 ||
		    strcmp(dx.deciding[i].file, d->deciding[i].file) != 0)
			fail_msg("case \"%s\": deciding[%zu] %s, explain %s",
			         name, i, d->deciding[i].sid,
			         dx.deciding[i].sid);
}

static enum gw_pol_effect
eval_both(const struct gw_pol_set *set, const char *spec, const char *action,
          struct gw_pol_decision *d, const char *name)
{
	struct gw_pol_request req = {0};
	struct gw_claims c;

	claims_parse(&c, spec);
	req.claims = &c;
	req.action = action;
	req.resource = DEMO_RES;
	gw_pol_eval(set, &req, d);
	same_as_explain(set, &req, d, name);
	/* Every deciding statement was one the pre-filter left. */
	assert_true(gw_pol_candidates(set, &req) >= d->ndeciding_total);
	assert_true(gw_pol_candidates(set, &req) <= gw_pol_count(set));
	claims_free(&c);
	return d->effect;
}

struct idx_case {
	const char *name;
	const char *policy;
	const char *claims;
	const char *action;
	enum gw_pol_effect want;
	const char *sid;
};

/* A Deny for statement one; ALLOW_ALL after it decides when it does not. */
#define DENY_THEN_ALLOW(p, a)                                                  \
	DOC("{\"Sid\":\"D\",\"Effect\":\"Deny\"," p "," a                      \
	    ",\"Resource\":\"*\"}," ALLOW_ALL)
#define ANY_ACTION "\"Action\":\"*\""
#define ANYONE     "\"Principal\":\"*\""

static const struct idx_case idx_cases[] = {
    /* A wildcard value names no one literal: the table cannot list it. */
    {"wildcard Principal value: the Deny applies",
     DENY_THEN_ALLOW("\"Principal\":{\"jwt:groups\":\"adm*\"}", ANY_ACTION),
     "groups=[dev,admins]", EXPORT, GW_POL_EXPLICIT_DENY, "D"},
    {"wildcard Principal value: control, no group matches",
     DENY_THEN_ALLOW("\"Principal\":{\"jwt:groups\":\"adm*\"}", ANY_ACTION),
     "groups=[dev,ops]", EXPORT, GW_POL_ALLOW, "#1"},
    {"'?' in a Principal value: the Deny applies",
     DENY_THEN_ALLOW("\"Principal\":{\"jwt:groups\":[\"x\",\"adm?n\"]}",
                     ANY_ACTION),
     "groups=[admin]", EXPORT, GW_POL_EXPLICIT_DENY, "D"},
    {"'?' in a Principal value: control",
     DENY_THEN_ALLOW("\"Principal\":{\"jwt:groups\":[\"x\",\"adm?n\"]}",
                     ANY_ACTION),
     "groups=[admiin]", EXPORT, GW_POL_ALLOW, "#1"},
    {"Principal *: the Deny applies to a token without claims",
     DENY_THEN_ALLOW(ANYONE, "\"Action\":\"" EXPORT "\""), "", EXPORT,
     GW_POL_EXPLICIT_DENY, "D"},
    {"Principal *: control, another action",
     DENY_THEN_ALLOW(ANYONE, "\"Action\":\"" EXPORT "\""), "", GET_TASK,
     GW_POL_ALLOW, "#1"},
    /* NotPrincipal applies to the tokens it does NOT name: a token
     * holding none of its values must reach it. */
    {"NotPrincipal: a token outside it is denied",
     DENY_THEN_ALLOW("\"NotPrincipal\":{\"jwt:groups\":\"ops\"}", ANY_ACTION),
     "groups=[dev]", EXPORT, GW_POL_EXPLICIT_DENY, "D"},
    {"NotPrincipal: a token without the claim is denied",
     DENY_THEN_ALLOW("\"NotPrincipal\":{\"jwt:groups\":\"ops\"}", ANY_ACTION),
     "sub=a", EXPORT, GW_POL_EXPLICIT_DENY, "D"},
    {"NotPrincipal: control, the named token is not denied",
     DENY_THEN_ALLOW("\"NotPrincipal\":{\"jwt:groups\":\"ops\"}", ANY_ACTION),
     "groups=[ops]", EXPORT, GW_POL_ALLOW, "#1"},
    /* The index keys on the literal claim; the wildcard one still
     * decides when the statement is evaluated. */
    {"wildcard claim then literal claim: both match",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":"
         "\"team-*\",\"jwt:sub\":\"alice\"}," ANY_ACTION
         ",\"Resource\":\"*\"}"),
     "sub=alice;groups=[team-x]", EXPORT, GW_POL_ALLOW, "A"},
    {"wildcard claim then literal claim: the literal fails",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":"
         "\"team-*\",\"jwt:sub\":\"alice\"}," ANY_ACTION
         ",\"Resource\":\"*\"}"),
     "sub=bob;groups=[team-x]", EXPORT, GW_POL_IMPLICIT_DENY, ""},
    {"wildcard claim then literal claim: the wildcard fails",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":"
         "\"team-*\",\"jwt:sub\":\"alice\"}," ANY_ACTION
         ",\"Resource\":\"*\"}"),
     "sub=alice;groups=[ops]", EXPORT, GW_POL_IMPLICIT_DENY, ""},
    /* Principal values are case-sensitive: the table must not fold. */
    {"case variant of a Principal value does not match",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":"
         "\"Ops\"}," ANY_ACTION ",\"Resource\":\"*\"}"),
     "groups=[ops,OPS]", EXPORT, GW_POL_IMPLICIT_DENY, ""},
    {"case variant: control, the exact value",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":"
         "\"Ops\"}," ANY_ACTION ",\"Resource\":\"*\"}"),
     "groups=[ops,Ops]", EXPORT, GW_POL_ALLOW, "A"},
    /* The claim name is part of the key: team=admins is not a group. */
    {"the same value under another claim does not match",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":"
         "\"admins\"}," ANY_ACTION ",\"Resource\":\"*\"}"),
     "team=admins;Groups=[admins]", EXPORT, GW_POL_IMPLICIT_DENY, ""},
    {"another claim: control, the group",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":"
         "\"admins\"}," ANY_ACTION ",\"Resource\":\"*\"}"),
     "team=admins;groups=[admins]", EXPORT, GW_POL_ALLOW, "A"},
    {"a prefix of a value does not match",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":"
         "\"admins\"}," ANY_ACTION ",\"Resource\":\"*\"}"),
     "groups=[admin,admins2]", EXPORT, GW_POL_IMPLICIT_DENY, ""},
    {"integer value indexed as its text",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:tenant\":"
         "[5,-7]}," ANY_ACTION ",\"Resource\":\"*\"}"),
     "tenant=-7", EXPORT, GW_POL_ALLOW, "A"},
    {"integer value: 05 is not 5",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:tenant\":"
         "5}," ANY_ACTION ",\"Resource\":\"*\"}"),
     "tenant=05", EXPORT, GW_POL_IMPLICIT_DENY, ""},
    /* Actions: wildcards, case and NotAction, per known action. */
    {"wildcard action: the Deny applies",
     DENY_THEN_ALLOW(ANYONE, "\"Action\":\"hss:Export*\""), "", EXPORT,
     GW_POL_EXPLICIT_DENY, "D"},
    {"wildcard action: control, another action",
     DENY_THEN_ALLOW(ANYONE, "\"Action\":\"hss:Export*\""), "", GET_TASK,
     GW_POL_ALLOW, "#1"},
    {"'?' action in another case",
     DENY_THEN_ALLOW(ANYONE, "\"Action\":\"hss:?etExportTask\""), "",
     "hss:getexporttask", GW_POL_EXPLICIT_DENY, "D"},
    {"Action *", DENY_THEN_ALLOW(ANYONE, "\"Action\":\"*\""), "",
     "hss:DownloadExportFile", GW_POL_EXPLICIT_DENY, "D"},
    /* A request's spelling must not dodge a Deny. */
    {"action in upper case: the Deny applies",
     DENY_THEN_ALLOW(ANYONE, "\"Action\":\"" EXPORT "\""), "",
     "HSS:EXPORTIMAGEBASELINE", GW_POL_EXPLICIT_DENY, "D"},
    {"action in upper case: control, another action",
     DENY_THEN_ALLOW(ANYONE, "\"Action\":\"" EXPORT "\""), "",
     "HSS:GETEXPORTTASK", GW_POL_ALLOW, "#1"},
    {"NotAction: another action is denied",
     DENY_THEN_ALLOW(ANYONE, "\"NotAction\":\"" GET_TASK "\""), "", EXPORT,
     GW_POL_EXPLICIT_DENY, "D"},
    {"NotAction: control, the excluded action in any case",
     DENY_THEN_ALLOW(ANYONE, "\"NotAction\":\"" GET_TASK "\""), "",
     "HSS:getEXPORTtask", GW_POL_ALLOW, "#1"},
    /* An action hssgw does not know is not filtered at all. */
    {"unknown action: NotAction Deny applies",
     DENY_THEN_ALLOW(ANYONE, "\"NotAction\":\"" EXPORT "\""), "", "hss:Other",
     GW_POL_EXPLICIT_DENY, "D"},
    {"unknown action: hss:* matches it",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\"," ANYONE
         ",\"Action\":\"hss:*\",\"Resource\":\"*\"}"),
     "", "hss:Other", GW_POL_ALLOW, "A"},
    {"unknown action: control, a literal action does not",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\"," ANYONE ",\"Action\":\"" EXPORT
         "\",\"Resource\":\"*\"}"),
     "", "hss:Other", GW_POL_IMPLICIT_DENY, ""},
    {"empty action: NotAction applies",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\"," ANYONE
         ",\"NotAction\":\"" EXPORT "\",\"Resource\":\"*\"}"),
     "", "", GW_POL_ALLOW, "A"},
    {"a known action with a suffix is not that action",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\"," ANYONE ",\"Action\":\"" EXPORT
         "\",\"Resource\":\"*\"}"),
     "", EXPORT "x", GW_POL_IMPLICIT_DENY, ""},
};

static void
test_must_not_skip(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(idx_cases) / sizeof(idx_cases[0]); i++) {
		const struct idx_case *tc = &idx_cases[i];

		set = load(tc->policy);
		eval_both(set, tc->claims, tc->action, &d, tc->name);
		if (d.effect != tc->want || strcmp(d.sid, tc->sid) != 0)
			fail_msg("case \"%s\": got %s sid \"%s\", want %s "
			         "sid \"%s\"",
			         tc->name, gw_pol_effect_name(d.effect), d.sid,
			         gw_pol_effect_name(tc->want), tc->sid);
		gw_pol_free(set);
	}
}

/* sub, iss and jti found in their own fields reach the table too. */
static void
test_own_fields(void **state)
{
	static const char *const fields[] = {"sub", "iss", "jti"};
	struct gw_pol_request req = {0};
	struct gw_claims c = {0};
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	char doc[512], who[] = "alice", other[] = "bob";
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		snprintf(doc, sizeof(doc),
		         DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\","
		             "\"Principal\":{\"jwt:%s\":\"alice\"},"
		             "\"Action\":\"*\",\"Resource\":\"*\"}"),
		         fields[i]);
		set = load(doc);
		memset(&c, 0, sizeof(c));
		req.claims = &c;
		req.action = EXPORT;
		req.resource = DEMO_RES;
		if (i == 0)
			c.sub = who;
		else if (i == 1)
			c.iss = who;
		else
			c.jti = who;
		gw_pol_eval(set, &req, &d);
		same_as_explain(set, &req, &d, fields[i]);
		assert_int_equal(d.effect, GW_POL_ALLOW);
		/* Control: another value in the field. */
		if (i == 0)
			c.sub = other;
		else if (i == 1)
			c.iss = other;
		else
			c.jti = other;
		gw_pol_eval(set, &req, &d);
		assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
		gw_pol_free(set);
	}
}

/*
 * n statements, statement i allowing group g<i> (a Deny where deny[i]),
 * Sid S<i>; so a request's groups pick exactly the statements it names.
 */
static struct gw_pol_set *
groups_set(size_t n, const char *deny)
{
	struct gw_pol_set *set;
	struct gw_buf b;
	size_t i;

	gw_buf_init(&b, 1 << 20);
	gw_buf_puts(&b, "{\"Version\":\"2012-10-17\",\"Statement\":[");
	for (i = 0; i < n; i++)
		gw_buf_printf(&b,
		              "%s{\"Sid\":\"S%zu\",\"Effect\":\"%s\","
		              "\"Principal\":{\"jwt:groups\":[\"g%zu\","
		              "\"g%zu\"]},\"Action\":\"hss:*\","
		              "\"Resource\":\"*\"}",
		              i ? "," : "", i,
		              deny != NULL && deny[i] == 'D' ? "Deny" : "Allow",
		              i, i);
	gw_buf_puts(&b, "]}");
	assert_false(b.overflow);
	set = load(b.p);
	gw_buf_reset(&b);
	return set;
}

/* Load order survives the bitmap's 64-bit words. */
static void
test_order_across_words(void **state)
{
	static const char *const want[] = {"S3",   "S63",  "S64",
	                                   "S127", "S128", "S199"};
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	size_t i;

	(void)state;
	set = groups_set(200, NULL);
	eval_both(set, "groups=[g199,g128,g64,g3,g127,g63,nobody]", EXPORT, &d,
	          "order");
	assert_int_equal(d.effect, GW_POL_ALLOW);
	assert_int_equal(d.ndeciding_total, 6);
	for (i = 0; i < 6; i++)
		assert_string_equal(d.deciding[i].sid, want[i]);
	/* Control: a group no statement names decides nothing. */
	eval_both(set, "groups=[g200,G3,g03]", EXPORT, &d, "none");
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	assert_int_equal(d.ndeciding_total, 0);
	gw_pol_free(set);
}

/* More deciding statements than kept: the first ones, all counted. */
static void
test_deciding_cap(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	struct gw_buf b;
	char num[32];
	size_t i;

	(void)state;
	set = groups_set(130, NULL);
	gw_buf_init(&b, 4096);
	gw_buf_puts(&b, "groups=[");
	for (i = 129; i >= 10; i -= 10) {
		snprintf(num, sizeof(num), "g%zu,", i);
		gw_buf_puts(&b, num);
	}
	gw_buf_puts(&b, "x]");
	eval_both(set, b.p, EXPORT, &d, "cap");
	assert_int_equal(d.ndeciding_total, 12);
	assert_int_equal(d.ndeciding, GW_POL_DECIDING_MAX);
	assert_string_equal(d.deciding[0].sid, "S19");
	assert_string_equal(d.deciding[GW_POL_DECIDING_MAX - 1].sid, "S89");
	gw_buf_reset(&b);
	gw_pol_free(set);
}

/* A Deny wins wherever it sits; only Denies decide then. */
static void
test_deny_anywhere(void **state)
{
	char deny[201];
	struct gw_pol_decision d;
	struct gw_pol_set *set;

	(void)state;
	memset(deny, 'A', 200);
	deny[200] = '\0';
	deny[70] = 'D';
	deny[190] = 'D';
	set = groups_set(200, deny);
	eval_both(set, "groups=[g5,g70,g100,g190]", EXPORT, &d, "deny");
	assert_int_equal(d.effect, GW_POL_EXPLICIT_DENY);
	assert_int_equal(d.ndeciding_total, 2);
	assert_string_equal(d.deciding[0].sid, "S70");
	assert_string_equal(d.deciding[1].sid, "S190");
	/* Control: without the denied groups the Allows decide. */
	eval_both(set, "groups=[g5,g100]", EXPORT, &d, "allow");
	assert_int_equal(d.effect, GW_POL_ALLOW);
	assert_int_equal(d.ndeciding_total, 2);
	assert_string_equal(d.deciding[0].sid, "S5");
	gw_pol_free(set);
}

/* ["ops", "ops"] and two claims naming one value list a statement once. */
static void
test_repeated_values(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;

	(void)state;
	set = load(DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":"
	               "{\"jwt:groups\":[\"ops\",\"ops\",\"dev\"]},"
	               "\"Action\":\"*\",\"Resource\":\"*\"},"
	               "{\"Sid\":\"B\",\"Effect\":\"Allow\",\"Principal\":"
	               "{\"jwt:groups\":\"ops\"},\"Action\":\"*\","
	               "\"Resource\":\"*\"}"));
	eval_both(set, "groups=[ops,dev,ops]", EXPORT, &d, "repeated");
	assert_int_equal(d.effect, GW_POL_ALLOW);
	assert_int_equal(d.ndeciding_total, 2);
	assert_string_equal(d.deciding[0].sid, "A");
	assert_string_equal(d.deciding[1].sid, "B");
	eval_both(set, "groups=[dev]", EXPORT, &d, "repeated control");
	assert_int_equal(d.ndeciding_total, 1);
	gw_pol_free(set);
}

static size_t
cands(const struct gw_pol_set *set, const char *spec, const char *action)
{
	struct gw_pol_request req = {0};
	struct gw_claims c;
	size_t n;

	claims_parse(&c, spec);
	req.claims = &c;
	req.action = action;
	req.resource = DEMO_RES;
	n = gw_pol_candidates(set, &req);
	claims_free(&c);
	return n;
}

/*
 * The pre-filter does filter: a request reaches the statements naming
 * it, not the whole set (what makes evaluation cheap; a pre-filter that
 * let everything through would pass every test above).
 */
static void
test_candidates(void **state)
{
	struct gw_pol_request req = {0};
	struct gw_claims none = {0};
	struct gw_pol_set *set;

	(void)state;
	set = groups_set(200, NULL);
	assert_int_equal(cands(set, "groups=[g5]", EXPORT), 1);
	assert_int_equal(cands(set, "groups=[g5,g70,nobody,g5]", EXPORT), 2);
	assert_int_equal(cands(set, "groups=[G5,g200]", EXPORT), 0);
	assert_int_equal(cands(set, "sub=g5;team=g5", EXPORT), 0);
	req.claims = &none;
	req.action = EXPORT;
	req.resource = DEMO_RES;
	assert_int_equal(gw_pol_candidates(set, &req), 0);
	assert_int_equal(gw_pol_candidates(NULL, &req), 0);
	req.action = NULL;
	assert_int_equal(gw_pol_candidates(set, &req), 0);
	gw_pol_free(set);

	/* Statements no literal Principal rules out are always left. */
	set = load(DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":"
	               "\"*\",\"Resource\":\"*\"},"
	               "{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":"
	               "\"a*\"},\"Action\":\"*\",\"Resource\":\"*\"},"
	               "{\"Effect\":\"Deny\",\"NotPrincipal\":{\"jwt:groups\":"
	               "\"a\"},\"Action\":\"*\",\"Resource\":\"*\"},"
	               "{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":"
	               "\"a*\",\"jwt:sub\":\"alice\"},\"Action\":\"*\","
	               "\"Resource\":\"*\"},"
	               "{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":"
	               "\"a\"},\"Action\":\"*\",\"Resource\":\"*\"}"));
	assert_int_equal(cands(set, "sub=bob;groups=[b]", EXPORT), 3);
	assert_int_equal(cands(set, "sub=alice;groups=[b]", EXPORT), 4);
	assert_int_equal(cands(set, "sub=alice;groups=[a]", EXPORT), 5);
	gw_pol_free(set);

	/* By action: exact per known action in any case, none otherwise. */
	set = load(DOC("{\"Effect\":\"Allow\"," ANYONE ",\"Action\":\"" EXPORT
	               "\",\"Resource\":\"*\"},"
	               "{\"Effect\":\"Allow\"," ANYONE ",\"Action\":\"" GET_TASK
	               "\",\"Resource\":\"*\"},"
	               "{\"Effect\":\"Deny\"," ANYONE ",\"NotAction\":\"" EXPORT
	               "\",\"Resource\":\"*\"},"
	               "{\"Effect\":\"Allow\"," ANYONE ",\"Action\":\"hss:*\","
	               "\"Resource\":\"*\"}"));
	assert_int_equal(cands(set, "", EXPORT), 2);
	assert_int_equal(cands(set, "", "HSS:EXPORTIMAGEBASELINE"), 2);
	assert_int_equal(cands(set, "", GET_TASK), 3);
	assert_int_equal(cands(set, "", "hss:downloadExportFile"), 2);
	assert_int_equal(cands(set, "", "hss:Other"), 4);
	gw_pol_free(set);
}

/* ---- random sets: eval with the index == explain without it ---- */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static size_t
pick(size_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (size_t)(rng % n);
}

static const char *const principals[] = {
    "\"Principal\":\"*\"",
    "\"Principal\":{\"jwt:groups\":\"g1\"}",
    "\"Principal\":{\"jwt:groups\":[\"g2\",\"g3\"]}",
    "\"Principal\":{\"jwt:groups\":\"g*\"}",
    "\"Principal\":{\"jwt:groups\":\"G1\"}",
    "\"NotPrincipal\":{\"jwt:groups\":\"g1\"}",
    "\"NotPrincipal\":{\"jwt:sub\":[\"u1\",\"u2\"]}",
    "\"Principal\":{\"jwt:groups\":\"g?\",\"jwt:sub\":\"u1\"}",
    "\"Principal\":{\"jwt:sub\":\"u2\",\"jwt:groups\":\"g4\"}",
    "\"Principal\":{\"jwt:tenant\":5}",
    "\"Principal\":{\"jwt:team\":\"g1\"}",
};
static const char *const actions[] = {
    "\"Action\":\"*\"",
    "\"Action\":\"" EXPORT "\"",
    "\"Action\":\"hss:export*\"",
    "\"Action\":[\"" GET_TASK "\",\"hss:DownloadExportFile\"]",
    "\"NotAction\":\"" EXPORT "\"",
    "\"NotAction\":\"hss:*Task\"",
    "\"Action\":\"HSS:ACTFORSUBJECT\"",
};
static const char *const claim_specs[] = {
    "",
    "sub=u1",
    "sub=u2;groups=[g4]",
    "groups=[g1]",
    "groups=[g2,g4,x];sub=u1",
    "groups=[G1,g3];tenant=5",
    "groups=[g*];team=g1",
    "tenant=05;groups=[g9]",
    "sub=u1;groups=[g5]",
};
static const char *const req_actions[] = {
    EXPORT,
    "hss:exportimagebaseline",
    GET_TASK,
    "HSS:DOWNLOADEXPORTFILE",
    "hss:ActForSubject",
    "hss:Other",
    "",
};

static void
test_random_sets(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	struct gw_buf b;
	size_t round, i, j, k, n;

	(void)state;
	for (round = 0; round < 40; round++) {
		n = 1 + pick(150);
		gw_buf_init(&b, 1 << 20);
		gw_buf_puts(&b, "{\"Version\":\"2012-10-17\",\"Statement\":[");
		for (i = 0; i < n; i++)
			gw_buf_printf(
			    &b,
			    "%s{\"Effect\":\"%s\",%s,%s,\"Resource\":\"%s\"}",
			    i ? "," : "", pick(6) == 0 ? "Deny" : "Allow",
			    principals[pick(sizeof(principals) /
			                    sizeof(principals[0]))],
			    actions[pick(sizeof(actions) / sizeof(actions[0]))],
			    pick(4) == 0 ? "hss:*:prod" : "*");
		gw_buf_puts(&b, "]}");
		assert_false(b.overflow);
		set = load(b.p);
		gw_buf_reset(&b);
		for (j = 0; j < sizeof(claim_specs) / sizeof(claim_specs[0]);
		     j++)
			for (k = 0;
			     k < sizeof(req_actions) / sizeof(req_actions[0]);
			     k++)
				eval_both(set, claim_specs[j], req_actions[k],
				          &d, claim_specs[j]);
		gw_pol_free(set);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_must_not_skip),
	    cmocka_unit_test(test_own_fields),
	    cmocka_unit_test(test_order_across_words),
	    cmocka_unit_test(test_deciding_cap),
	    cmocka_unit_test(test_deny_anywhere),
	    cmocka_unit_test(test_repeated_values),
	    cmocka_unit_test(test_candidates),
	    cmocka_unit_test(test_random_sets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
