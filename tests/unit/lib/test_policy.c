/*
 * Policy engine tests: evaluation rules as tables (deny wins, default deny,
 * wildcards, claims as text), every condition operator with IAM's rules for
 * missing keys, IfExists, Null, negation and set qualifiers, policy
 * variables, NotAction/NotResource/NotPrincipal, explain and check, every
 * load error, the revision, the glob's worst case, directory loading and
 * the shipped policies/ documents.
 * Attack tests name the gap they pin and carry a positive control.
 */
#define _GNU_SOURCE
#include <sys/stat.h>

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "fields.h"
#include "policy.h"

#define DOC(stmts) "{\"Version\":\"2012-10-17\",\"Statement\":[" stmts "]}"
#define ALLOW_ALL                                                              \
	"{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","          \
	"\"Resource\":\"*\"}"
#define EXPORT   "hss:ExportImageBaseline"
#define DEMO_RES "hss:cn-north-4:demo"
#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- claims from a compact spec: "sub=dev-alice;groups=[a,b];n=5" ---- */

static void
claims_free(struct gw_claims *c)
{
	size_t i, j;

	for (i = 0; i < c->n; i++) {
		for (j = 0; j < c->v[i].nvalues; j++)
			free(c->v[i].values[j]);
		free(c->v[i].values);
		free(c->v[i].name);
	}
	free(c->v);
	free(c->sub);
	memset(c, 0, sizeof(*c));
}

/* Values are split on ','; a spec value in [] becomes an array claim. */
static void
claims_parse(struct gw_claims *c, const char *spec)
{
	char *copy, *item, *save = NULL, *eq, *val, *tok, *vsave = NULL;
	struct gw_claim *cl;

	memset(c, 0, sizeof(*c));
	c->v = calloc(GW_CLAIMS_MAX, sizeof(*c->v));
	assert_non_null(c->v);
	copy = strdup(spec);
	assert_non_null(copy);
	for (item = strtok_r(copy, ";", &save); item != NULL;
	     item = strtok_r(NULL, ";", &save)) {
		eq = strchr(item, '=');
		assert_non_null(eq);
		*eq = '\0';
		val = eq + 1;
		cl = &c->v[c->n++];
		cl->name = strdup(item);
		cl->values = calloc(GW_CLAIM_VALUES_MAX, sizeof(char *));
		assert_non_null(cl->values);
		if (val[0] == '[') {
			cl->is_array = 1;
			val++;
			val[strlen(val) - 1] = '\0';
		}
		for (tok = strtok_r(val, ",", &vsave); tok != NULL;
		     tok = strtok_r(NULL, ",", &vsave))
			cl->values[cl->nvalues++] = strdup(tok);
		if (strcmp(item, "sub") == 0 && cl->nvalues > 0) {
			free(c->sub);
			c->sub = strdup(cl->values[0]);
		}
	}
	free(copy);
}

static enum gw_pol_effect
eval_spec(const struct gw_pol_set *set, const char *spec, const char *action,
          const char *resource, struct gw_pol_decision *d)
{
	struct gw_pol_request req = {0};
	struct gw_claims c;

	claims_parse(&c, spec);
	req.claims = &c;
	req.action = action;
	req.resource = resource;
	gw_pol_eval(set, &req, d);
	claims_free(&c);
	return d->effect;
}

static struct gw_pol_set *
load(const char *json)
{
	char err[512] = "";
	struct gw_pol_set *set;

	set = gw_pol_load_buf("t.json", json, strlen(json), err, sizeof(err));
	if (set == NULL)
		fail_msg("load failed: %s", err);
	return set;
}

/* ---- evaluation table ---- */

struct eval_case {
	const char *name;
	const char *policy;
	const char *claims;
	const char *action;
	const char *resource;
	enum gw_pol_effect want;
	const char *sid;
};

static const struct eval_case eval_cases[] = {
    {"basic allow",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:"
         "sub\":\"dev-alice\"},\"Action\":\"" EXPORT "\","
         "\"Resource\":\"" DEMO_RES "\"}"),
     "sub=dev-alice", EXPORT, DEMO_RES, GW_POL_ALLOW, "A"},
    {"other subject: default deny",
     DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:"
         "sub\":\"dev-alice\"},\"Action\":\"" EXPORT "\","
         "\"Resource\":\"" DEMO_RES "\"}"),
     "sub=dev-bob", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY, ""},
    {"other resource: default deny",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
         "\"Resource\":\"" DEMO_RES "\"}"),
     "sub=a", EXPORT, "hss:cn-north-4:prod", GW_POL_IMPLICIT_DENY, ""},
    {"other action: default deny",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"" EXPORT
         "\",\"Resource\":\"*\"}"),
     "sub=a", "hss:DeleteEverything", DEMO_RES, GW_POL_IMPLICIT_DENY, ""},
    /* Deny after an Allow still wins: order never turns a Deny off. */
    {"deny wins over earlier allow",
     DOC(ALLOW_ALL ",{\"Sid\":\"D\",\"Effect\":\"Deny\",\"Principal\":"
                   "{\"jwt:sub\":\"mallory\"},\"Action\":\"*\","
                   "\"Resource\":\"*\"}"),
     "sub=mallory", EXPORT, DEMO_RES, GW_POL_EXPLICIT_DENY, "D"},
    {"deny wins: positive control, deny not applicable",
     DOC(ALLOW_ALL ",{\"Sid\":\"D\",\"Effect\":\"Deny\",\"Principal\":"
                   "{\"jwt:sub\":\"mallory\"},\"Action\":\"*\","
                   "\"Resource\":\"*\"}"),
     "sub=alice", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"first deny in load order is reported",
     DOC("{\"Sid\":\"D1\",\"Effect\":\"Deny\",\"Principal\":\"*\","
         "\"Action\":\"*\",\"Resource\":\"*\"},"
         "{\"Sid\":\"D2\",\"Effect\":\"Deny\",\"Principal\":\"*\","
         "\"Action\":\"*\",\"Resource\":\"*\"}"),
     "sub=a", EXPORT, DEMO_RES, GW_POL_EXPLICIT_DENY, "D1"},
    {"first allow is reported, #index when no Sid",
     DOC("{\"Sid\":\"X\",\"Effect\":\"Allow\",\"Principal\":{\"jwt:"
         "sub\":\"nobody\"},\"Action\":\"*\",\"Resource\":\"*\"}," ALLOW_ALL
         "," ALLOW_ALL),
     "sub=a", EXPORT, DEMO_RES, GW_POL_ALLOW, "#1"},
    {"Principal * matches a token with no claims", DOC(ALLOW_ALL), "", EXPORT,
     DEMO_RES, GW_POL_ALLOW, "#0"},
    /* A missing claim never matches, not even a "*" value. */
    {"missing claim never matches",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":\"*\"},"
         "\"Action\":\"*\",\"Resource\":\"*\"}"),
     "sub=a", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY, ""},
    {"missing claim: positive control, claim present",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":\"*\"},"
         "\"Action\":\"*\",\"Resource\":\"*\"}"),
     "sub=a;groups=[x]", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"empty array claim never matches",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":\"*\"},"
         "\"Action\":\"*\",\"Resource\":\"*\"}"),
     "sub=a;groups=[]", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY, ""},
    {"array claim: any element matches any value",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":[\"ops\","
         "\"hss-exporters\"]},\"Action\":\"*\",\"Resource\":\"*\"}"),
     "groups=[dev,hss-exporters,qa]", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"array claim: no element matches",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":[\"ops\","
         "\"hss-exporters\"]},\"Action\":\"*\",\"Resource\":\"*\"}"),
     "groups=[dev,qa,hss-exporter]", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY,
     ""},
    {"every Principal key must match (AND)",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":\"ops\","
         "\"jwt:sub\":\"alice\"},\"Action\":\"*\",\"Resource\":\"*\"}"),
     "sub=bob;groups=[ops]", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY, ""},
    {"every Principal key: positive control",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":\"ops\","
         "\"jwt:sub\":\"alice\"},\"Action\":\"*\",\"Resource\":\"*\"}"),
     "sub=alice;groups=[ops]", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"numeric value compares as text",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:tenant\":[5,-7]},"
         "\"Action\":\"*\",\"Resource\":\"*\"}"),
     "tenant=5", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"numeric value: negative number",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:tenant\":[5,-7]},"
         "\"Action\":\"*\",\"Resource\":\"*\"}"),
     "tenant=-7", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"numeric value: 05 is not 5",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:tenant\":5},"
         "\"Action\":\"*\",\"Resource\":\"*\"}"),
     "tenant=05", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY, ""},
    {"boolean value compares as text",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:email_verified\":"
         "true},\"Action\":\"*\",\"Resource\":\"*\"}"),
     "email_verified=true", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"boolean value: false is not true",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:email_verified\":"
         "true},\"Action\":\"*\",\"Resource\":\"*\"}"),
     "email_verified=false", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY, ""},
    {"action hss:*",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"hss:*\","
         "\"Resource\":\"*\"}"),
     "", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"action hss:Export*",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":"
         "\"hss:Export*\",\"Resource\":\"*\"}"),
     "", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"action hss:Export* does not match hss:ListImages",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":"
         "\"hss:Export*\",\"Resource\":\"*\"}"),
     "", "hss:ListImages", DEMO_RES, GW_POL_IMPLICIT_DENY, ""},
    /* IAM action names are case-insensitive: so a Deny cannot be dodged
     * by the request's spelling, nor an Allow by the policy's. */
    {"action is case-insensitive (request side)",
     DOC("{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"" EXPORT
         "\",\"Resource\":\"*\"}"),
     "", "HSS:exportimagebaseline", DEMO_RES, GW_POL_EXPLICIT_DENY, "#0"},
    {"action is case-insensitive (policy side)",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":"
         "\"hss:EXPORTimage*\",\"Resource\":\"*\"}"),
     "", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"resource is case-sensitive",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
         "\"Resource\":\"" DEMO_RES "\"}"),
     "", EXPORT, "hss:cn-north-4:DEMO", GW_POL_IMPLICIT_DENY, ""},
    {"resource ? takes one character",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
         "\"Resource\":\"hss:cn-north-?:demo\"}"),
     "", EXPORT, "hss:cn-north-1:demo", GW_POL_ALLOW, "#0"},
    {"resource ? does not take two",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
         "\"Resource\":\"hss:cn-north-?:demo\"}"),
     "", EXPORT, "hss:cn-north-42:demo", GW_POL_IMPLICIT_DENY, ""},
    {"resource ? does not take none",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
         "\"Resource\":\"hss:cn-north-?:demo\"}"),
     "", EXPORT, "hss:cn-north-:demo", GW_POL_IMPLICIT_DENY, ""},
    {"resource hss:* crosses ':'",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
         "\"Resource\":\"hss:*\"}"),
     "", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"resource hss:*:demo",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
         "\"Resource\":\"hss:*:demo\"}"),
     "", EXPORT, "hss:ap-southeast-1:demo", GW_POL_ALLOW, "#0"},
    {"resource hss:*:demo is anchored at the end",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
         "\"Resource\":\"hss:*:demo\"}"),
     "", EXPORT, "hss:ap-southeast-1:demo2", GW_POL_IMPLICIT_DENY, ""},
    {"resource literal is anchored at both ends",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
         "\"Resource\":\"" DEMO_RES "\"}"),
     "", EXPORT, "x" DEMO_RES, GW_POL_IMPLICIT_DENY, ""},
    {"resource list: any entry",
     DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","
         "\"Resource\":[\"hss:a:b\",\"hss:cn-*:demo\"]}"),
     "", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"principal value glob",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":\"hss-"
         "export*\"},\"Action\":\"*\",\"Resource\":\"*\"}"),
     "groups=[hss-exporters]", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"principal values are case-sensitive",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:groups\":\"hss-"
         "export*\"},\"Action\":\"*\",\"Resource\":\"*\"}"),
     "groups=[HSS-exporters]", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY, ""},
    /* Wildcards live only in the policy: a token claiming "*" or
     * "adm?n" is plain text and must not match "admin". */
    {"a wildcard in the token is literal",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:role\":\"admin\"},"
         "\"Action\":\"*\",\"Resource\":\"*\"}"),
     "role=[*,adm?n,admin*]", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY, ""},
    {"a wildcard in the token: positive control",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:role\":\"admin\"},"
         "\"Action\":\"*\",\"Resource\":\"*\"}"),
     "role=[*,admin]", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"? takes one UTF-8 character, not one byte",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:sub\":\"j?rg\"},"
         "\"Action\":\"*\",\"Resource\":\"*\"}"),
     "sub=j\xc3\xb6rg", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"claim sub found in its own field",
     DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:sub\":\"dev-*\"},"
         "\"Action\":\"*\",\"Resource\":\"*\"}"),
     "sub=dev-alice", EXPORT, DEMO_RES, GW_POL_ALLOW, "#0"},
    {"single Statement object",
     "{\"Version\":\"2012-10-17\",\"Statement\":" ALLOW_ALL "}", "", EXPORT,
     DEMO_RES, GW_POL_ALLOW, "#0"},
};

static void
test_eval_table(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
		const struct eval_case *tc = &eval_cases[i];

		set = load(tc->policy);
		eval_spec(set, tc->claims, tc->action, tc->resource, &d);
		if (d.effect != tc->want || strcmp(d.sid, tc->sid) != 0)
			fail_msg("case \"%s\": got %s sid \"%s\", want %s "
			         "sid \"%s\"",
			         tc->name, gw_pol_effect_name(d.effect), d.sid,
			         gw_pol_effect_name(tc->want), tc->sid);
		if (tc->want != GW_POL_IMPLICIT_DENY)
			assert_string_equal(d.file, "t.json");
		else
			assert_string_equal(d.file, "");
		gw_pol_free(set);
	}
}

/* The sub field is used when the claim list leaves sub out. */
static void
test_sub_field_only(void **state)
{
	struct gw_pol_request req = {0};
	struct gw_pol_decision d;
	struct gw_claims c = {0};
	struct gw_pol_set *set;
	char sub[] = "dev-alice";

	(void)state;
	set = load(DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:sub\":"
	               "\"dev-alice\"},\"Action\":\"*\",\"Resource\":\"*\"}"));
	c.sub = sub;
	req.claims = &c;
	req.action = EXPORT;
	req.resource = DEMO_RES;
	gw_pol_eval(set, &req, &d);
	assert_int_equal(d.effect, GW_POL_ALLOW);
	c.sub = NULL;
	gw_pol_eval(set, &req, &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	gw_pol_free(set);
}

static void
test_null_inputs_deny(void **state)
{
	struct gw_pol_request req = {0};
	struct gw_pol_decision d;
	struct gw_claims c = {0};
	struct gw_pol_set *set;

	(void)state;
	set = load(DOC(ALLOW_ALL));
	req.claims = &c;
	req.action = EXPORT;
	req.resource = DEMO_RES;
	/* Positive control: the same request is allowed by this set. */
	gw_pol_eval(set, &req, &d);
	assert_int_equal(d.effect, GW_POL_ALLOW);

	memset(&d, 0xff, sizeof(d));
	gw_pol_eval(NULL, &req, &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	assert_string_equal(d.file, "");
	assert_string_equal(d.sid, "");
	gw_pol_eval(set, NULL, &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	req.claims = NULL;
	gw_pol_eval(set, &req, &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	req.claims = &c;
	req.action = NULL;
	gw_pol_eval(set, &req, &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	req.action = EXPORT;
	req.resource = NULL;
	gw_pol_eval(set, &req, &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	gw_pol_eval(set, &req, NULL); /* must not crash */
	gw_pol_free(set);
	gw_pol_free(NULL);
	assert_int_equal(gw_pol_count(NULL), 0);
	assert_string_equal(gw_pol_revision(NULL), "");
}

static void
test_effect_names(void **state)
{
	(void)state;
	assert_string_equal(gw_pol_effect_name(GW_POL_ALLOW), "allow");
	assert_string_equal(gw_pol_effect_name(GW_POL_EXPLICIT_DENY),
	                    "explicit_deny");
	assert_string_equal(gw_pol_effect_name(GW_POL_IMPLICIT_DENY),
	                    "implicit_deny");
	assert_string_equal(gw_pol_effect_name(GW_POL_EFFECT__MAX),
	                    "implicit_deny");
}

/* ---- load errors ---- */

struct err_case {
	const char *name;
	const char *json;
	const char *want; /* exact message, or a prefix ending in '*' */
};

#define S1(body) DOC("{" body "}")
#define PAR      "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\""

static const struct err_case err_cases[] = {
    {"unknown top-level element",
     "{\"Version\":\"2012-10-17\",\"Id\":\"x\",\"Statement\":" ALLOW_ALL "}",
     "t.json: Id: unknown element"},
    {"unknown statement element (typo)",
     S1("\"Effect\":\"Allow\",\"Actions\":\"*\"," PAR),
     "t.json: Statement[0].Actions: unknown element"},
    {"bad Effect", DOC(ALLOW_ALL ",{\"Effect\":\"allow\"," PAR "}"),
     "t.json: Statement[1].Effect: must be \"Allow\" or \"Deny\""},
    {"Effect not a string", S1("\"Effect\":true," PAR),
     "t.json: Statement[0].Effect: must be \"Allow\" or \"Deny\""},
    {"duplicate Sid",
     DOC("{\"Sid\":\"S\",\"Effect\":\"Allow\"," PAR "}," ALLOW_ALL
         ",{\"Sid\":\"S\",\"Effect\":\"Deny\"," PAR "}"),
     "t.json: Statement[2].Sid: duplicate Sid \"S\" (also "
     "Statement[0])"},
    {"Sid with a space", S1("\"Sid\":\"a b\",\"Effect\":\"Allow\"," PAR),
     "t.json: Statement[0].Sid: may hold only letters, digits and "
     "\"_.:-\""},
    {"empty Condition", S1("\"Effect\":\"Deny\",\"Condition\":{}," PAR),
     "t.json: Statement[0].Condition: must be a non-empty object of "
     "operators"},
    {"Action and NotAction",
     S1("\"Effect\":\"Allow\",\"NotAction\":\"hss:Export*\"," PAR),
     "t.json: Statement[0].Action: only one of \"Action\" or "
     "\"NotAction\" may appear"},
    {"Resource and NotResource",
     S1("\"Effect\":\"Allow\",\"NotResource\":\"hss:a:b\"," PAR),
     "t.json: Statement[0].Resource: only one of \"Resource\" or "
     "\"NotResource\" may appear"},
    {"Principal and NotPrincipal",
     S1("\"Effect\":\"Allow\",\"NotPrincipal\":\"*\"," PAR),
     "t.json: Statement[0].Principal: only one of \"Principal\" or "
     "\"NotPrincipal\" may appear"},
    /* A misspelt action in a NotAction of an Allow would allow it all. */
    {"NotAction matches no known action",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
        "\"NotAction\":\"hss:ExportImageBaselin\",\"Resource\":\"*\""),
     "t.json: Statement[0].NotAction: \"hss:ExportImageBaselin\" matches "
     "no known action*"},
    {"document not an object", "[]",
     "t.json: (document): must be a JSON object"},
    {"document a string", "\"x\"", "t.json: (document): must be a JSON object"},
    {"statement not an object", DOC("5"),
     "t.json: Statement[0]: must be an object"},
    {"invalid JSON: truncated",
     "{\"Version\":", "t.json: (document): invalid JSON: truncated"},
    {"invalid JSON: syntax", "{\"Version\" \"x\"}",
     "t.json: (document): invalid JSON at byte*"},
    {"invalid JSON: comment", "/* c */" DOC(ALLOW_ALL),
     "t.json: (document): invalid JSON at byte*"},
    {"invalid JSON: trailing document", DOC(ALLOW_ALL) " {}",
     "t.json: (document): invalid JSON*"},
    {"invalid JSON: bad UTF-8",
     S1("\"Sid\":\"\xff\",\"Effect\":\"Allow\"," PAR),
     "t.json: (document): invalid JSON at byte*"},
    {"empty document", "", "t.json: (document): invalid JSON*"},
    {"empty Action list",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
        "\"Action\":[],\"Resource\":\"*\""),
     "t.json: Statement[0].Action: must not be an empty list"},
    {"empty Resource list",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
        "\"Action\":\"*\",\"Resource\":[]"),
     "t.json: Statement[0].Resource: must not be an empty list"},
    {"empty string in a list",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
        "\"Action\":[\"*\",\"\"],\"Resource\":\"*\""),
     "t.json: Statement[0].Action[1]: must not be empty"},
    {"Action not a string",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
        "\"Action\":5,\"Resource\":\"*\""),
     "t.json: Statement[0].Action: must be a string"},
    /* A misspelt action in a Deny would silently stop denying. */
    {"Action matches no known action",
     S1("\"Effect\":\"Deny\",\"Principal\":\"*\","
        "\"Action\":\"hss:ExportImageBaselin\",\"Resource\":\"*\""),
     "t.json: Statement[0].Action: \"hss:ExportImageBaselin\" matches "
     "no known action (known: hss:ExportImageBaseline, "
     "hss:GetExportTask, hss:DownloadExportFile, "
     "hss:ActForSubject)"},
    {"Resource of the wrong shape",
     S1("\"Effect\":\"Deny\",\"Principal\":\"*\","
        "\"Action\":\"*\",\"Resource\":\"hss:cn-north-4\""),
     "t.json: Statement[0].Resource: \"hss:cn-north-4\" must be "
     "hss:<region>:<project-alias>"},
    {"Resource of another service",
     S1("\"Effect\":\"Deny\",\"Principal\":\"*\","
        "\"Action\":\"*\",\"Resource\":\"arn:aws:s3:::x\""),
     "t.json: Statement[0].Resource: \"arn:aws:s3:::x\" must be \"*\" "
     "or start with \"hss:\""},
    {"missing Effect", S1(PAR), "t.json: Statement[0]: missing \"Effect\""},
    {"missing Principal",
     S1("\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\""),
     "t.json: Statement[0]: missing \"Principal\" or \"NotPrincipal\""},
    {"missing Version", "{\"Statement\":" ALLOW_ALL "}",
     "t.json: Version: missing"},
    {"missing Statement", "{\"Version\":\"2012-10-17\"}",
     "t.json: Statement: missing"},
    {"wrong Version",
     "{\"Version\":\"2008-10-17\",\"Statement\":" ALLOW_ALL "}",
     "t.json: Version: must be \"2012-10-17\""},
    {"empty Statement list", DOC(""),
     "t.json: Statement: must hold at least one statement"},
    {"Principal an AWS key",
     S1("\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"x\"},"
        "\"Action\":\"*\",\"Resource\":\"*\""),
     "t.json: Statement[0].Principal.AWS: keys must be \"jwt:<claim>\""},
    {"Principal jwt: without a claim",
     S1("\"Effect\":\"Allow\",\"Principal\":{\"jwt:\":\"x\"},"
        "\"Action\":\"*\",\"Resource\":\"*\""),
     "t.json: Statement[0].Principal.jwt:: keys must be "
     "\"jwt:<claim>\""},
    {"Principal empty object",
     S1("\"Effect\":\"Allow\",\"Principal\":{},"
        "\"Action\":\"*\",\"Resource\":\"*\""),
     "t.json: Statement[0].Principal: must name at least one claim"},
    {"Principal other string",
     S1("\"Effect\":\"Allow\",\"Principal\":\"anyone\","
        "\"Action\":\"*\",\"Resource\":\"*\""),
     "t.json: Statement[0].Principal: must be \"*\" or an object of "
     "\"jwt:<claim>\" keys"},
    {"Principal value a fraction",
     S1("\"Effect\":\"Allow\",\"Principal\":{\"jwt:n\":[1,1.5]},"
        "\"Action\":\"*\",\"Resource\":\"*\""),
     "t.json: Statement[0].Principal.jwt:n[1]: must be a string, an "
     "integer or a boolean"},
    {"Principal value null",
     S1("\"Effect\":\"Allow\",\"Principal\":{\"jwt:n\":null},"
        "\"Action\":\"*\",\"Resource\":\"*\""),
     "t.json: Statement[0].Principal.jwt:n: must be a string, an "
     "integer or a boolean"},
    {"Principal value with NUL",
     S1("\"Effect\":\"Allow\",\"Principal\":{\"jwt:n\":\"a\\u0000b\"},"
        "\"Action\":\"*\",\"Resource\":\"*\""),
     "t.json: Statement[0].Principal.jwt:n: must not contain NUL"},
    /* json-c keeps the last of repeated keys: without the check this
     * Deny would load as an Allow. */
    {"repeated key", S1("\"Effect\":\"Deny\",\"Effect\":\"Allow\"," PAR),
     "t.json: (document): an object repeats a key"},
    {"repeated key in Principal",
     S1("\"Effect\":\"Deny\",\"Principal\":{\"jwt:a\":\"x\","
        "\"jwt:a\":\"*\"},\"Action\":\"*\",\"Resource\":\"*\""),
     "t.json: (document): an object repeats a key"},
    {"repeated key hidden by an escape",
     S1("\"Effect\":\"Deny\",\"\\u0045ffect\":\"Allow\"," PAR),
     "t.json: (document): an object repeats a key"},
};

static void
check_err(const char *name, const char *got, const char *want)
{
	size_t n = strlen(want);

	if (n > 0 && want[n - 1] == '*') {
		if (strncmp(got, want, n - 1) != 0)
			fail_msg(
			    "case \"%s\": got \"%s\", want prefix \"%.*s\"",
			    name, got, (int)(n - 1), want);
		return;
	}
	if (strcmp(got, want) != 0)
		fail_msg("case \"%s\": got \"%s\", want \"%s\"", name, got,
		         want);
}

static void
test_load_errors(void **state)
{
	struct gw_pol_set *set;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *tc = &err_cases[i];

		err[0] = '\0';
		set = gw_pol_load_buf("t.json", tc->json, strlen(tc->json), err,
		                      sizeof(err));
		if (set != NULL) {
			gw_pol_free(set);
			fail_msg("case \"%s\": loaded", tc->name);
		}
		check_err(tc->name, err, tc->want);
	}
}

/* Positive controls for the error table: the nearest valid documents. */
static void
test_load_controls(void **state)
{
	static const char *const ok[] = {
	    S1("\"Sid\":\"S\",\"Effect\":\"Deny\"," PAR),
	    S1("\"Sid\":\"Az09_.:-\",\"Effect\":\"Allow\"," PAR),
	    DOC("{\"Sid\":\"S\",\"Effect\":\"Allow\"," PAR
	        "},{\"Sid\":\"T\",\"Effect\":\"Allow\"," PAR "}"),
	    S1("\"Effect\":\"Allow\",\"Principal\":{\"jwt:a\":\"x\","
	       "\"jwt:b\":\"*\"},\"Action\":\"*\",\"Resource\":\"*\""),
	    S1("\"Effect\":\"Allow\",\"Principal\":{\"jwt:n\":[1,true,\"x\"]},"
	       "\"Action\":[\"hss:Export*\",\"*\"],\"Resource\":["
	       "\"hss:cn-north-?:demo\",\"hss:*\"]"),
	    "\n\t " DOC(ALLOW_ALL) " \r\n",
	    S1("\"Effect\":\"Allow\",\"Principal\":{\"jwt:n\":["
	       "18446744073709551614,-9223372036854775807]},\"Action\":\"*\","
	       "\"Resource\":\"*\""),
	    S1("\"Sid\":\"x\\u0041\",\"Effect\":\"Allow\"," PAR),
	};
	struct gw_pol_set *set;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		err[0] = '\0';
		set = gw_pol_load_buf("t.json", ok[i], strlen(ok[i]), err,
		                      sizeof(err));
		if (set == NULL)
			fail_msg("control %zu: %s", i, err);
		gw_pol_free(set);
	}
}

static void
test_bad_names(void **state)
{
	struct gw_pol_set *set;
	char err[512];

	(void)state;
	set = gw_pol_load_buf("a/b.json", "{}", 2, err, sizeof(err));
	assert_null(set);
	set = gw_pol_load_buf("", "{}", 2, err, sizeof(err));
	assert_null(set);
	set = gw_pol_load_buf(NULL, "{}", 2, err, sizeof(err));
	assert_null(set);
	set = gw_pol_load_buf("t.json", NULL, 5, err, sizeof(err));
	assert_null(set);
}

static void
test_nul_byte(void **state)
{
	static const char doc[] = DOC(ALLOW_ALL) "\0 ";
	struct gw_pol_set *set;
	char err[512];

	(void)state;
	set = gw_pol_load_buf("t.json", doc, sizeof(doc) - 1, err, sizeof(err));
	assert_null(set);
	assert_string_equal(err, "t.json: (document): contains a NUL byte");
	/* Control: the same bytes without the NUL load. */
	set = gw_pol_load_buf("t.json", doc, strlen(doc), err, sizeof(err));
	assert_non_null(set);
	gw_pol_free(set);
}

/* ---- caps ---- */

/* A document whose Action list holds n copies of "*". */
static char *
actions_doc(size_t n)
{
	char *p, *q;
	size_t i;

	p = malloc(128 + n * 4);
	assert_non_null(p);
	q = p + sprintf(p, "{\"Version\":\"2012-10-17\",\"Statement\":{"
	                   "\"Effect\":\"Allow\",\"Principal\":\"*\","
	                   "\"Resource\":\"*\",\"Action\":[");
	for (i = 0; i < n; i++)
		q += sprintf(q, "%s\"*\"", i ? "," : "");
	memcpy(q, "]}}", 4);
	return p;
}

/* A document with n statements. */
static char *
statements_doc(size_t n)
{
	char *p, *q;
	size_t i;

	p = malloc(64 + n * (sizeof(ALLOW_ALL) + 1));
	assert_non_null(p);
	q = p + sprintf(p, "{\"Version\":\"2012-10-17\",\"Statement\":[");
	for (i = 0; i < n; i++)
		q += sprintf(q, "%s%s", i ? "," : "", ALLOW_ALL);
	memcpy(q, "]}", 3);
	return p;
}

static void
test_caps(void **state)
{
	struct gw_pol_set *set;
	char err[512], *doc;
	size_t len;

	(void)state;
	doc = actions_doc(GW_POL_VALUES_MAX);
	set = gw_pol_load_buf("t.json", doc, strlen(doc), err, sizeof(err));
	assert_non_null(set);
	gw_pol_free(set);
	free(doc);
	doc = actions_doc(GW_POL_VALUES_MAX + 1);
	set = gw_pol_load_buf("t.json", doc, strlen(doc), err, sizeof(err));
	assert_null(set);
	assert_string_equal(err, "t.json: Statement.Action: more than 1000 "
	                         "values");
	free(doc);

	doc = statements_doc(GW_POL_STATEMENTS_MAX);
	set = gw_pol_load_buf("t.json", doc, strlen(doc), err, sizeof(err));
	assert_non_null(set);
	assert_int_equal(gw_pol_count(set), GW_POL_STATEMENTS_MAX);
	gw_pol_free(set);
	free(doc);
	doc = statements_doc(GW_POL_STATEMENTS_MAX + 1);
	set = gw_pol_load_buf("t.json", doc, strlen(doc), err, sizeof(err));
	assert_null(set);
	assert_string_equal(err, "t.json: Statement[10000]: more than 10000 "
	                         "statements in the set");
	free(doc);

	/* Size: a valid document padded with whitespace past 1 MiB. */
	len = GW_POL_FILE_MAX + 1;
	doc = malloc(len + 1);
	assert_non_null(doc);
	memset(doc, ' ', len);
	memcpy(doc, DOC(ALLOW_ALL), strlen(DOC(ALLOW_ALL)));
	doc[len] = '\0';
	set = gw_pol_load_buf("t.json", doc, len, err, sizeof(err));
	assert_null(set);
	assert_string_equal(err, "t.json: (document): larger than 1048576 "
	                         "bytes");
	set = gw_pol_load_buf("t.json", doc, len - 1, err, sizeof(err));
	assert_non_null(set);
	gw_pol_free(set);
	free(doc);
}

/* ---- glob worst case ---- */

/*
 * A backtracking matcher takes exponential time on this pattern against a
 * long run of 'a's; ours is linear here.  The bound is loose (sanitizers)
 * but a recursive matcher would not finish in years.
 */
static void
test_pathological_glob(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	struct timespec t0, t1;
	size_t n = 100000;
	char *res;
	double s;

	(void)state;
	set = load(DOC("{\"Effect\":\"Allow\",\"Principal\":{\"jwt:sub\":"
	               "\"*a*a*a*a*a*a*a*b\"},\"Action\":\"*\",\"Resource\":"
	               "\"hss:*a*a*a*a*a*a*a*b\"}"));
	res = malloc(n + 2);
	assert_non_null(res);
	memcpy(res, "hss:", 4);
	memset(res + 4, 'a', n - 4);
	res[n] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	eval_spec(set, "sub=x", EXPORT, res, &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	/* Positive control: end the run with 'b' and it matches. */
	res[n - 1] = 'b';
	eval_spec(set, "sub=aaaaaaaaaaaaaaaaaaaaab", EXPORT, res, &d);
	assert_int_equal(d.effect, GW_POL_ALLOW);
	res[n - 1] = 'a';
	eval_spec(set, "sub=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	          EXPORT, res, &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (s > 2.0)
		fail_msg("glob took %.2fs", s);
	free(res);
	gw_pol_free(set);
}

/* ---- directories ---- */

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
rm_tree(const char *dir)
{
	char path[512];
	struct dirent *de;
	struct stat sb;
	DIR *d;

	d = opendir(dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
			rm_tree(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static int
tmpdir_setup(void **state)
{
	char *dir = strdup("/tmp/test_policy.XXXXXX");

	if (dir == NULL || mkdtemp(dir) == NULL) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

static int
tmpdir_teardown(void **state)
{
	rm_tree(*state);
	free(*state);
	return 0;
}

static struct gw_pol_set *
load_dir(const char *dir)
{
	struct gw_pol_set *set;
	char err[512] = "";

	set = gw_pol_load_dir(dir, err, sizeof(err));
	if (set == NULL)
		fail_msg("load_dir %s: %s", dir, err);
	return set;
}

static void
test_empty_dir_denies(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;

	set = load_dir(*state);
	assert_int_equal(gw_pol_count(set), 0);
	assert_string_equal(gw_pol_revision(set), EMPTY_SHA256);
	eval_spec(set, "sub=a", EXPORT, DEMO_RES, &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	gw_pol_free(set);
}

static void
test_missing_dir(void **state)
{
	char err[512] = "", path[512];

	snprintf(path, sizeof(path), "%s/nope", (char *)*state);
	assert_null(gw_pol_load_dir(path, err, sizeof(err)));
	assert_non_null(strstr(err, "No such file or directory"));
	assert_null(gw_pol_load_dir(NULL, err, sizeof(err)));
}

/* A Deny in a later file wins over an Allow in an earlier one. */
static void
test_deny_across_files(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	const char *dir = *state;

	write_file(dir, "a-allow.json", DOC(ALLOW_ALL));
	set = load_dir(dir);
	assert_int_equal(eval_spec(set, "sub=mallory", EXPORT, DEMO_RES, &d),
	                 GW_POL_ALLOW);
	assert_string_equal(d.file, "a-allow.json");
	assert_string_equal(d.sid, "#0");
	gw_pol_free(set);

	write_file(
	    dir, "b-deny.json",
	    DOC("{\"Sid\":\"NoMallory\",\"Effect\":\"Deny\",\"Principal\":"
	        "{\"jwt:sub\":\"mallory\"},\"Action\":\"*\",\"Resource\":"
	        "\"*\"}"));
	set = load_dir(dir);
	assert_int_equal(gw_pol_count(set), 2);
	assert_int_equal(eval_spec(set, "sub=mallory", EXPORT, DEMO_RES, &d),
	                 GW_POL_EXPLICIT_DENY);
	assert_string_equal(d.file, "b-deny.json");
	assert_string_equal(d.sid, "NoMallory");
	/* Control: others are still allowed by a-allow.json. */
	assert_int_equal(eval_spec(set, "sub=alice", EXPORT, DEMO_RES, &d),
	                 GW_POL_ALLOW);
	assert_string_equal(d.file, "a-allow.json");
	gw_pol_free(set);
}

/* Only regular *.json files directly in the directory, sorted by name. */
static void
test_dir_selection(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	const char *dir = *state;
	char sub[512], err[512] = "", path[512];

	snprintf(sub, sizeof(sub), "%s/nested", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(sub, "deny.json",
	           DOC("{\"Effect\":\"Deny\"," PAR "}")); /* no recursion */
	write_file(dir, "README.txt", "not a policy");
	write_file(dir, "b.json.bak", "{");
	write_file(dir, ".hidden.json", "{");
	write_file(dir, "b.json",
	           DOC("{\"Sid\":\"B\",\"Effect\":\"Allow\"," PAR "}"));
	write_file(dir, "a.json",
	           DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\"," PAR "}"));
	write_file(dir, "B.json",
	           DOC("{\"Sid\":\"UpperB\",\"Effect\":\"Allow\"," PAR "}"));
	set = load_dir(dir);
	assert_int_equal(gw_pol_count(set), 3);
	/* Bytewise order: "B.json" < "a.json" < "b.json". */
	eval_spec(set, "", EXPORT, DEMO_RES, &d);
	assert_int_equal(d.effect, GW_POL_ALLOW);
	assert_string_equal(d.file, "B.json");
	assert_string_equal(d.sid, "UpperB");
	gw_pol_free(set);

	/* A symlinked *.json is an error, never silently skipped. */
	snprintf(path, sizeof(path), "%s/c.json", dir);
	assert_int_equal(symlink("a.json", path), 0);
	assert_null(gw_pol_load_dir(dir, err, sizeof(err)));
	assert_string_equal(err, "c.json: not a regular file (symlinks and "
	                         "directories are refused)");
	unlink(path);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_null(gw_pol_load_dir(dir, err, sizeof(err)));
	assert_string_equal(err, "c.json: not a regular file (symlinks and "
	                         "directories are refused)");
	rmdir(path);

	/* One bad file fails the whole set, naming the file. */
	write_file(dir, "c.json", S1("\"Effect\":\"Alow\"," PAR));
	assert_null(gw_pol_load_dir(dir, err, sizeof(err)));
	assert_string_equal(err, "c.json: Statement[0].Effect: must be "
	                         "\"Allow\" or \"Deny\"");
	unlink(path);

	/* Sids may repeat across files, not within one. */
	write_file(dir, "c.json",
	           DOC("{\"Sid\":\"A\",\"Effect\":\"Allow\"," PAR "}"));
	set = load_dir(dir);
	assert_int_equal(gw_pol_count(set), 4);
	gw_pol_free(set);
}

static void
test_too_large_file(void **state)
{
	const char *dir = *state;
	char err[512] = "", path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/big.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(DOC(ALLOW_ALL), f);
	assert_int_equal(ftruncate(fileno(f), GW_POL_FILE_MAX + 1), 0);
	fclose(f);
	assert_null(gw_pol_load_dir(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "larger than 1048576 bytes"));
}

static void
test_revision(void **state)
{
	struct gw_pol_set *a, *b, *buf;
	const char *dir = *state;
	char path[512], to[512], err[512];
	char r1[65], r2[65];

	write_file(dir, "p.json", DOC(ALLOW_ALL));
	a = load_dir(dir);
	b = load_dir(dir);
	assert_int_equal(strlen(gw_pol_revision(a)), 64);
	/* Stable: the same files give the same revision. */
	assert_string_equal(gw_pol_revision(a), gw_pol_revision(b));
	assert_string_not_equal(gw_pol_revision(a), EMPTY_SHA256);
	/* A buffer named like the file hashes the same input. */
	buf = gw_pol_load_buf("p.json", DOC(ALLOW_ALL), strlen(DOC(ALLOW_ALL)),
	                      err, sizeof(err));
	assert_non_null(buf);
	assert_string_equal(gw_pol_revision(a), gw_pol_revision(buf));
	gw_pol_free(buf);
	snprintf(r1, sizeof(r1), "%s", gw_pol_revision(a));
	gw_pol_free(a);
	gw_pol_free(b);

	/* Content change. */
	write_file(dir, "p.json", DOC(ALLOW_ALL) "\n");
	a = load_dir(dir);
	snprintf(r2, sizeof(r2), "%s", gw_pol_revision(a));
	assert_string_not_equal(r1, r2);
	gw_pol_free(a);

	/* Rename with the same bytes. */
	snprintf(path, sizeof(path), "%s/p.json", dir);
	snprintf(to, sizeof(to), "%s/q.json", dir);
	assert_int_equal(rename(path, to), 0);
	a = load_dir(dir);
	assert_string_not_equal(gw_pol_revision(a), r2);
	assert_string_not_equal(gw_pol_revision(a), r1);
	gw_pol_free(a);
}

/* ---- shipped documents ---- */

static void
test_demo_policy(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;

	(void)state;
	set = load_dir(GW_SOURCE_DIR "/policies");
	/* 2, not more: policies/examples/ is not loaded (no recursion). */
	assert_int_equal(gw_pol_count(set), 2);
	/* The local stack's default dev token. */
	eval_spec(set, "sub=dev-alice;groups=[hss-exporters]", EXPORT,
	          "hss:cn-north-4:demo", &d);
	assert_int_equal(d.effect, GW_POL_ALLOW);
	assert_string_equal(d.file, "demo.json");
	assert_string_equal(d.sid, "AllowExportersDemo");
	eval_spec(set, "sub=dev-alice;groups=[hss-exporters]", EXPORT,
	          "hss:ap-southeast-1:demo", &d);
	assert_int_equal(d.effect, GW_POL_ALLOW);
	eval_spec(set, "sub=dev-alice;groups=[hss-exporters,suspended]", EXPORT,
	          "hss:cn-north-4:demo", &d);
	assert_int_equal(d.effect, GW_POL_EXPLICIT_DENY);
	assert_string_equal(d.sid, "DenySuspended");
	eval_spec(set, "sub=dev-alice;groups=[hss-exporters]", EXPORT,
	          "hss:cn-north-4:prod", &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	eval_spec(set, "sub=dev-alice", EXPORT, "hss:cn-north-4:demo", &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	eval_spec(set, "sub=dev-alice;groups=[hss-exporters]", "hss:ListImages",
	          "hss:cn-north-4:demo", &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	gw_pol_free(set);
}

/* ---- conditions: request context from a compact spec ---- */

/*
 * "hss:namespace=team-a-x;hss:image_id_list=[a,b];gw:client_ip=10.0.0.1":
 * a value in [] is a list ("[]" is an empty one).
 */
struct ctxspec {
	struct gw_kv kv[32];
	const char *vals[32][16];
	char *copy;
	size_t n;
};

static void
ctx_parse(struct ctxspec *cs, const char *spec)
{
	char *item, *save = NULL, *eq, *val, *tok, *vsave = NULL;
	size_t nv;

	memset(cs, 0, sizeof(*cs));
	cs->copy = strdup(spec);
	assert_non_null(cs->copy);
	for (item = strtok_r(cs->copy, ";", &save); item != NULL;
	     item = strtok_r(NULL, ";", &save)) {
		eq = strchr(item, '=');
		assert_non_null(eq);
		assert_true(cs->n < 32);
		*eq = '\0';
		val = eq + 1;
		nv = 0;
		if (val[0] == '[') {
			val++;
			val[strlen(val) - 1] = '\0';
			for (tok = strtok_r(val, ",", &vsave); tok != NULL;
			     tok = strtok_r(NULL, ",", &vsave))
				cs->vals[cs->n][nv++] = tok;
		} else {
			cs->vals[cs->n][nv++] = val;
		}
		cs->kv[cs->n].key = item;
		cs->kv[cs->n].values = cs->vals[cs->n];
		cs->kv[cs->n].nvalues = nv;
		cs->n++;
	}
}

static enum gw_pol_effect
eval_ctx(const struct gw_pol_set *set, const char *claims, const char *ctx,
         const char *resource, struct gw_pol_decision *d)
{
	struct gw_pol_request req = {0};
	struct ctxspec cs;
	struct gw_claims c;

	claims_parse(&c, claims);
	ctx_parse(&cs, ctx);
	req.claims = &c;
	req.action = EXPORT;
	req.resource = resource;
	req.ctx = cs.kv;
	req.nctx = cs.n;
	gw_pol_eval(set, &req, d);
	claims_free(&c);
	free(cs.copy);
	return d->effect;
}

/* An Allow for everything under one Condition object. */
#define COND(c)                                                                \
	DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","      \
	    "\"Resource\":\"*\",\"Condition\":" c "}")

struct cond_case {
	const char *name;
	const char *cond; /* the Condition object */
	const char *claims;
	const char *ctx;
	int want; /* 1: the statement applies */
};

#define NS_TEAM "{\"StringLike\":{\"hss:namespace\":\"${jwt:team}-*\"}}"

static const struct cond_case cond_cases[] = {
    /* String operators. */
    {"StringEquals match", "{\"StringEquals\":{\"hss:image_type\":\"cicd\"}}",
     "", "hss:image_type=cicd", 1},
    {"StringEquals other value",
     "{\"StringEquals\":{\"hss:image_type\":\"cicd\"}}", "",
     "hss:image_type=private_image", 0},
    {"StringEquals is case-sensitive",
     "{\"StringEquals\":{\"hss:image_type\":\"cicd\"}}", "",
     "hss:image_type=CICD", 0},
    /* IAM: a key missing from the request fails a plain operator. */
    {"StringEquals missing key",
     "{\"StringEquals\":{\"hss:image_type\":\"cicd\"}}", "", "", 0},
    {"StringEquals values are ORed",
     "{\"StringEquals\":{\"hss:image_type\":[\"x\",\"cicd\"]}}", "",
     "hss:image_type=cicd", 1},
    {"StringEquals keys are ANDed",
     "{\"StringEquals\":{\"hss:image_type\":\"cicd\",\"hss:cicd_name\":"
     "\"a\"}}",
     "", "hss:image_type=cicd;hss:cicd_name=b", 0},
    {"StringEquals keys are ANDed: control",
     "{\"StringEquals\":{\"hss:image_type\":\"cicd\",\"hss:cicd_name\":"
     "\"a\"}}",
     "", "hss:image_type=cicd;hss:cicd_name=a", 1},
    {"operators are ANDed",
     "{\"StringEquals\":{\"hss:image_type\":\"cicd\"},"
     "\"NumericLessThan\":{\"hss:export_size\":100}}",
     "", "hss:image_type=cicd;hss:export_size=100", 0},
    {"operators are ANDed: control",
     "{\"StringEquals\":{\"hss:image_type\":\"cicd\"},"
     "\"NumericLessThan\":{\"hss:export_size\":100}}",
     "", "hss:image_type=cicd;hss:export_size=99", 1},
    {"StringNotEquals other value",
     "{\"StringNotEquals\":{\"hss:image_type\":\"cicd\"}}", "",
     "hss:image_type=shared_image", 1},
    {"StringNotEquals same value",
     "{\"StringNotEquals\":{\"hss:image_type\":\"cicd\"}}", "",
     "hss:image_type=cicd", 0},
    {"StringNotEquals: none of the values (NOR)",
     "{\"StringNotEquals\":{\"hss:image_type\":[\"a\",\"cicd\"]}}", "",
     "hss:image_type=cicd", 0},
    /* IAM: "If the policy condition requires that the key is not
     * matched, such as StringNotLike, and the right key is not present,
     * the condition is true." */
    {"StringNotEquals missing key is true",
     "{\"StringNotEquals\":{\"hss:image_type\":\"cicd\"}}", "", "", 1},
    {"StringEqualsIgnoreCase",
     "{\"StringEqualsIgnoreCase\":{\"hss:namespace\":\"Team-A\"}}", "",
     "hss:namespace=tEAM-a", 1},
    {"StringEqualsIgnoreCase other value",
     "{\"StringEqualsIgnoreCase\":{\"hss:namespace\":\"Team-A\"}}", "",
     "hss:namespace=team-b", 0},
    {"StringNotEqualsIgnoreCase same value in other case",
     "{\"StringNotEqualsIgnoreCase\":{\"hss:namespace\":\"Team-A\"}}", "",
     "hss:namespace=TEAM-A", 0},
    {"StringNotEqualsIgnoreCase missing key",
     "{\"StringNotEqualsIgnoreCase\":{\"hss:namespace\":\"a\"}}", "", "", 1},
    {"StringLike *", "{\"StringLike\":{\"hss:namespace\":\"team-*\"}}", "",
     "hss:namespace=team-a", 1},
    {"StringLike ?", "{\"StringLike\":{\"hss:namespace\":\"team-?\"}}", "",
     "hss:namespace=team-ab", 0},
    {"StringLike is anchored",
     "{\"StringLike\":{\"hss:namespace\":\"team-*\"}}", "",
     "hss:namespace=xteam-a", 0},
    {"StringNotLike match", "{\"StringNotLike\":{\"hss:namespace\":\"t*\"}}",
     "", "hss:namespace=team", 0},
    {"StringNotLike no match", "{\"StringNotLike\":{\"hss:namespace\":\"t*\"}}",
     "", "hss:namespace=prod", 1},
    {"StringNotLike missing key",
     "{\"StringNotLike\":{\"hss:namespace\":\"t*\"}}", "", "", 1},
    /* StringEquals has no wildcards: "*" is a literal there. */
    {"StringEquals * is literal",
     "{\"StringEquals\":{\"hss:namespace\":\"*\"}}", "", "hss:namespace=x", 0},
    {"condition keys are case-insensitive",
     "{\"StringEquals\":{\"HSS:Image_Type\":\"cicd\"}}", "",
     "hss:image_type=cicd", 1},
    {"request keys are case-insensitive",
     "{\"StringEquals\":{\"hss:image_type\":\"cicd\"}}", "",
     "HSS:IMAGE_TYPE=cicd", 1},
    /* Numeric operators. */
    {"NumericEquals", "{\"NumericEquals\":{\"hss:export_size\":\"10\"}}", "",
     "hss:export_size=10", 1},
    {"NumericEquals other", "{\"NumericEquals\":{\"hss:export_size\":10}}", "",
     "hss:export_size=11", 0},
    {"NumericNotEquals", "{\"NumericNotEquals\":{\"hss:export_size\":10}}", "",
     "hss:export_size=11", 1},
    {"NumericNotEquals same", "{\"NumericNotEquals\":{\"hss:export_size\":10}}",
     "", "hss:export_size=10", 0},
    {"NumericNotEquals missing key",
     "{\"NumericNotEquals\":{\"hss:export_size\":10}}", "", "", 1},
    /* A value of the wrong type never satisfies, negated or not. */
    {"NumericNotEquals non-number",
     "{\"NumericNotEquals\":{\"hss:export_size\":10}}", "",
     "hss:export_size=ten", 0},
    {"NumericLessThan", "{\"NumericLessThan\":{\"hss:export_size\":10}}", "",
     "hss:export_size=9", 1},
    {"NumericLessThan boundary",
     "{\"NumericLessThan\":{\"hss:export_size\":10}}", "", "hss:export_size=10",
     0},
    {"NumericLessThanEquals boundary",
     "{\"NumericLessThanEquals\":{\"hss:export_size\":10}}", "",
     "hss:export_size=10", 1},
    {"NumericLessThanEquals above",
     "{\"NumericLessThanEquals\":{\"hss:export_size\":10}}", "",
     "hss:export_size=11", 0},
    {"NumericGreaterThan", "{\"NumericGreaterThan\":{\"hss:export_size\":10}}",
     "", "hss:export_size=11", 1},
    {"NumericGreaterThan boundary",
     "{\"NumericGreaterThan\":{\"hss:export_size\":10}}", "",
     "hss:export_size=10", 0},
    {"NumericGreaterThanEquals boundary",
     "{\"NumericGreaterThanEquals\":{\"hss:export_size\":10}}", "",
     "hss:export_size=10", 1},
    {"NumericGreaterThanEquals below",
     "{\"NumericGreaterThanEquals\":{\"hss:export_size\":10}}", "",
     "hss:export_size=-3", 0},
    {"NumericLessThan missing key",
     "{\"NumericLessThan\":{\"hss:export_size\":10}}", "", "", 0},
    {"NumericLessThan non-number",
     "{\"NumericLessThan\":{\"hss:export_size\":10}}", "",
     "hss:export_size=1e3", 0},
    /* Date operators; IAM accepts RFC 3339 and epoch seconds. */
    {"DateEquals",
     "{\"DateEquals\":{\"gw:current_time\":"
     "\"2026-01-01T00:00:00Z\"}}",
     "", "gw:current_time=2026-01-01T00:00:00.000Z", 1},
    {"DateEquals epoch seconds",
     "{\"DateEquals\":{\"gw:current_time\":1767225600}}", "",
     "gw:current_time=2026-01-01T00:00:00.000Z", 1},
    {"DateNotEquals",
     "{\"DateNotEquals\":{\"gw:current_time\":"
     "\"2026-01-01T00:00:00Z\"}}",
     "", "gw:current_time=2026-01-01T00:00:00.001Z", 1},
    {"DateNotEquals missing key",
     "{\"DateNotEquals\":{\"gw:current_time\":\"2026-01-01T00:00:00Z\"}}", "",
     "", 1},
    {"DateLessThan",
     "{\"DateLessThan\":{\"gw:current_time\":"
     "\"2026-01-01T00:00:00Z\"}}",
     "", "gw:current_time=2025-12-31T23:59:59.999Z", 1},
    {"DateLessThan boundary",
     "{\"DateLessThan\":{\"gw:current_time\":"
     "\"2026-01-01T00:00:00Z\"}}",
     "", "gw:current_time=2026-01-01T00:00:00.000Z", 0},
    {"DateLessThanEquals boundary",
     "{\"DateLessThanEquals\":{\"gw:current_time\":"
     "\"2026-01-01T01:00:00+01:00\"}}",
     "", "gw:current_time=2026-01-01T00:00:00.000Z", 1},
    {"DateGreaterThan",
     "{\"DateGreaterThan\":{\"gw:current_time\":"
     "\"2026-01-01T00:00:00Z\"}}",
     "", "gw:current_time=2026-01-01T00:00:00.000Z", 0},
    {"DateGreaterThanEquals",
     "{\"DateGreaterThanEquals\":{\"gw:current_"
     "time\":\"2026-01-01T00:00:00Z\"}}",
     "", "gw:current_time=2026-01-01T00:00:00.000Z", 1},
    {"DateGreaterThan missing key",
     "{\"DateGreaterThan\":{\"gw:current_time\":0}}", "", "", 0},
    {"DateLessThan not a date",
     "{\"DateLessThan\":{\"gw:current_time\":\"2027-01-01T00:00:00Z\"}}", "",
     "gw:current_time=tomorrow", 0},
    /* HSS time fields hold milliseconds since the epoch. */
    {"Date on an HSS ms field",
     "{\"DateGreaterThanEquals\":{\"hss:start_latest_update_time\":"
     "\"2026-01-01T00:00:00Z\"}}",
     "", "hss:start_latest_update_time=1767225600000", 1},
    {"Date on an HSS ms field: one ms early",
     "{\"DateGreaterThanEquals\":{\"hss:start_latest_update_time\":"
     "\"2026-01-01T00:00:00Z\"}}",
     "", "hss:start_latest_update_time=1767225599999", 0},
    /* Bool. */
    {"Bool true", "{\"Bool\":{\"hss:operate_all\":true}}", "",
     "hss:operate_all=true", 1},
    {"Bool true vs false", "{\"Bool\":{\"hss:operate_all\":\"true\"}}", "",
     "hss:operate_all=false", 0},
    {"Bool missing key", "{\"Bool\":{\"hss:operate_all\":false}}", "", "", 0},
    {"Bool not a boolean", "{\"Bool\":{\"hss:operate_all\":true}}", "",
     "hss:operate_all=1", 0},
    /* IP addresses. */
    {"IpAddress in range", "{\"IpAddress\":{\"gw:client_ip\":\"10.0.0.0/8\"}}",
     "", "gw:client_ip=10.200.3.4", 1},
    {"IpAddress out of range",
     "{\"IpAddress\":{\"gw:client_ip\":\"10.0.0.0/8\"}}", "",
     "gw:client_ip=11.0.0.1", 0},
    {"IpAddress /0", "{\"IpAddress\":{\"gw:client_ip\":\"0.0.0.0/0\"}}", "",
     "gw:client_ip=203.0.113.9", 1},
    {"IpAddress bare address",
     "{\"IpAddress\":{\"gw:client_ip\":\"10.1.2.3\"}}", "",
     "gw:client_ip=10.1.2.4", 0},
    {"IpAddress odd prefix",
     "{\"IpAddress\":{\"gw:client_ip\":\"192.168.0.0/23\"}}", "",
     "gw:client_ip=192.168.1.255", 1},
    {"IpAddress odd prefix: outside",
     "{\"IpAddress\":{\"gw:client_ip\":\"192.168.0.0/23\"}}", "",
     "gw:client_ip=192.168.2.0", 0},
    {"IpAddress IPv6", "{\"IpAddress\":{\"gw:client_ip\":\"2001:db8::/32\"}}",
     "", "gw:client_ip=2001:db8:1::5", 1},
    {"IpAddress IPv4-mapped IPv6 counts as IPv4",
     "{\"IpAddress\":{\"gw:client_ip\":\"10.0.0.0/8\"}}", "",
     "gw:client_ip=::ffff:10.9.9.9", 1},
    {"IpAddress IPv6 never matches an IPv4 network",
     "{\"IpAddress\":{\"gw:client_ip\":\"0.0.0.0/0\"}}", "",
     "gw:client_ip=2001:db8::1", 0},
    {"IpAddress not an address",
     "{\"IpAddress\":{\"gw:client_ip\":\"0.0.0.0/0\"}}", "",
     "gw:client_ip=localhost", 0},
    {"NotIpAddress outside",
     "{\"NotIpAddress\":{\"gw:client_ip\":"
     "[\"10.0.0.0/8\",\"192.168.0.0/16\"]}}",
     "", "gw:client_ip=203.0.113.7", 1},
    {"NotIpAddress inside",
     "{\"NotIpAddress\":{\"gw:client_ip\":"
     "[\"10.0.0.0/8\",\"192.168.0.0/16\"]}}",
     "", "gw:client_ip=192.168.3.3", 0},
    {"NotIpAddress missing key",
     "{\"NotIpAddress\":{\"gw:client_ip\":\"10.0.0.0/8\"}}", "", "", 1},
    {"NotIpAddress garbage is not outside",
     "{\"NotIpAddress\":{\"gw:client_ip\":\"10.0.0.0/8\"}}", "",
     "gw:client_ip=10.0.0.1 ", 0},
    /* Null: "true" means the key must be missing. */
    {"Null true, key missing", "{\"Null\":{\"hss:namespace\":\"true\"}}", "",
     "", 1},
    {"Null true, key present", "{\"Null\":{\"hss:namespace\":true}}", "",
     "hss:namespace=x", 0},
    {"Null false, key present", "{\"Null\":{\"hss:namespace\":false}}", "",
     "hss:namespace=x", 1},
    {"Null false, key missing", "{\"Null\":{\"hss:namespace\":\"false\"}}", "",
     "", 0},
    {"Null false, empty set counts as missing",
     "{\"Null\":{\"hss:image_id_list\":false}}", "", "hss:image_id_list=[]", 0},
    {"Null on a claim", "{\"Null\":{\"jwt:team\":false}}", "team=a", "", 1},
    /* ...IfExists: a missing key satisfies it. */
    {"StringEqualsIfExists missing",
     "{\"StringEqualsIfExists\":{\"hss:image_type\":\"cicd\"}}", "", "", 1},
    {"StringEqualsIfExists present, other",
     "{\"StringEqualsIfExists\":{\"hss:image_type\":\"cicd\"}}", "",
     "hss:image_type=x", 0},
    {"StringEqualsIfExists present, same",
     "{\"StringEqualsIfExists\":{\"hss:image_type\":\"cicd\"}}", "",
     "hss:image_type=cicd", 1},
    {"NumericLessThanEqualsIfExists missing",
     "{\"NumericLessThanEqualsIfExists\":{\"hss:image_size\":5}}", "", "", 1},
    {"NumericLessThanEqualsIfExists present, above",
     "{\"NumericLessThanEqualsIfExists\":{\"hss:image_size\":5}}", "",
     "hss:image_size=6", 0},
    {"DateLessThanIfExists missing",
     "{\"DateLessThanIfExists\":{\"gw:current_time\":0}}", "", "", 1},
    {"BoolIfExists present false",
     "{\"BoolIfExists\":{\"hss:operate_all\":true}}", "",
     "hss:operate_all=false", 0},
    {"IpAddressIfExists missing",
     "{\"IpAddressIfExists\":{\"gw:client_ip\":\"10.0.0.0/8\"}}", "", "", 1},
    {"StringNotLikeIfExists present, matching",
     "{\"StringNotLikeIfExists\":{\"hss:namespace\":\"t*\"}}", "",
     "hss:namespace=tx", 0},
    /* ForAnyValue: true if any request value matches; false if the key
     * is missing or empty. */
    {"ForAnyValue match",
     "{\"ForAnyValue:StringEquals\":{\"hss:image_id_list\":[\"b\",\"z\"]}}", "",
     "hss:image_id_list=[a,b]", 1},
    {"ForAnyValue no match",
     "{\"ForAnyValue:StringEquals\":{\"hss:image_id_list\":\"z\"}}", "",
     "hss:image_id_list=[a,b]", 0},
    {"ForAnyValue missing key",
     "{\"ForAnyValue:StringEquals\":{\"hss:image_id_list\":\"z\"}}", "", "", 0},
    {"ForAnyValue empty set",
     "{\"ForAnyValue:StringEquals\":{\"hss:image_id_list\":\"z\"}}", "",
     "hss:image_id_list=[]", 0},
    {"ForAnyValue:StringNotEquals one value differs",
     "{\"ForAnyValue:StringNotEquals\":{\"hss:image_id_list\":\"a\"}}", "",
     "hss:image_id_list=[a,b]", 1},
    {"ForAnyValue:StringNotEquals all equal",
     "{\"ForAnyValue:StringNotEquals\":{\"hss:image_id_list\":\"a\"}}", "",
     "hss:image_id_list=[a,a]", 0},
    {"ForAnyValue:StringNotEquals missing key",
     "{\"ForAnyValue:StringNotEquals\":{\"hss:image_id_list\":\"a\"}}", "", "",
     0},
    /* ForAllValues: true if every request value matches; also true when
     * the key is missing or empty (the documented pitfall). */
    {"ForAllValues subset",
     "{\"ForAllValues:StringEquals\":{\"hss:image_id_list\":[\"a\",\"b\","
     "\"c\"]}}",
     "", "hss:image_id_list=[a,c]", 1},
    {"ForAllValues one outside",
     "{\"ForAllValues:StringEquals\":{\"hss:image_id_list\":[\"a\",\"b\"]}}",
     "", "hss:image_id_list=[a,d]", 0},
    {"ForAllValues missing key",
     "{\"ForAllValues:StringEquals\":{\"hss:image_id_list\":\"a\"}}", "", "",
     1},
    {"ForAllValues empty set",
     "{\"ForAllValues:StringEquals\":{\"hss:image_id_list\":\"a\"}}", "",
     "hss:image_id_list=[]", 1},
    {"ForAllValues:StringNotLike none match",
     "{\"ForAllValues:StringNotLike\":{\"hss:vul_id_list\":\"CVE-2014-*\"}}",
     "", "hss:vul_id_list=[CVE-2020-1,CVE-2021-2]", 1},
    {"ForAllValues:StringNotLike one matches",
     "{\"ForAllValues:StringNotLike\":{\"hss:vul_id_list\":\"CVE-2014-*\"}}",
     "", "hss:vul_id_list=[CVE-2020-1,CVE-2014-2]", 0},
    {"ForAllValues:StringLikeIfExists missing",
     "{\"ForAllValues:StringLikeIfExists\":{\"hss:vul_id_list\":\"x\"}}", "",
     "", 1},
    /* Without a qualifier a list key holds when any value matches; a
     * negated operator when none does. */
    {"plain operator on a list key: any",
     "{\"StringEquals\":{\"hss:image_id_list\":\"b\"}}", "",
     "hss:image_id_list=[a,b]", 1},
    {"negated operator on a list key: none",
     "{\"StringNotEquals\":{\"hss:image_id_list\":\"b\"}}", "",
     "hss:image_id_list=[a,b]", 0},
    /* Claims as condition keys. */
    {"jwt claim", "{\"StringEquals\":{\"jwt:team\":\"red\"}}", "team=red", "",
     1},
    {"jwt claim key is case-insensitive",
     "{\"StringEquals\":{\"JWT:TEAM\":\"red\"}}", "team=red", "", 1},
    {"jwt claim missing", "{\"StringEquals\":{\"jwt:team\":\"red\"}}", "sub=a",
     "", 0},
    {"jwt sub from its own field", "{\"StringLike\":{\"jwt:sub\":\"ci-*\"}}",
     "sub=ci-7", "", 1},
    {"jwt array claim with ForAnyValue",
     "{\"ForAnyValue:StringEquals\":{\"jwt:groups\":\"secops\"}}",
     "groups=[dev,secops]", "", 1},
    /* Claims never come from the request context. */
    {"jwt key is not read from ctx",
     "{\"StringEquals\":{\"jwt:team\":\"red\"}}", "", "jwt:team=red", 0},
    /* Policy variables in condition values. */
    {"variable resolved", NS_TEAM, "team=red", "hss:namespace=red-app", 1},
    {"variable resolved, other namespace", NS_TEAM, "team=red",
     "hss:namespace=blue-app", 0},
    /* IAM: an unresolvable variable makes the element not match. */
    {"variable unresolved", NS_TEAM, "sub=a", "hss:namespace=-app", 0},
    {"variable unresolved under a negated operator",
     "{\"StringNotEquals\":{\"hss:namespace\":\"${jwt:team}\"}}", "sub=a",
     "hss:namespace=x", 0},
    {"variable unresolved under a negated operator: control",
     "{\"StringNotEquals\":{\"hss:namespace\":\"${jwt:team}\"}}", "team=y",
     "hss:namespace=x", 1},
    /* IAM: multivalued keys cannot be variables. */
    {"variable of a multivalued claim is unresolved",
     "{\"StringEquals\":{\"hss:namespace\":\"${jwt:groups}\"}}", "groups=[a,b]",
     "hss:namespace=a", 0},
    {"variable of a one-element array claim resolves",
     "{\"StringEquals\":{\"hss:namespace\":\"${jwt:groups}\"}}", "groups=[a]",
     "hss:namespace=a", 1},
    {"variable default used",
     "{\"StringEquals\":{\"hss:namespace\":\"${jwt:team, 'shared'}\"}}",
     "sub=a", "hss:namespace=shared", 1},
    {"variable default ignored when resolved",
     "{\"StringEquals\":{\"hss:namespace\":\"${ JWT:team , 'shared' }\"}}",
     "team=red", "hss:namespace=shared", 0},
    {"variable default with a quote",
     "{\"StringEquals\":{\"hss:namespace\":\"${jwt:team, 'it''s'}\"}}", "sub=a",
     "hss:namespace=it's", 1},
    /* Substituted text is literal: a claim "*" is no wildcard. */
    {"variable value is literal", NS_TEAM, "team=*", "hss:namespace=red-app",
     0},
    {"variable value is literal: control", NS_TEAM, "team=*",
     "hss:namespace=*-app", 1},
    {"variable from the request context",
     "{\"StringEquals\":{\"jwt:team\":\"${hss:project}\"}}", "team=demo",
     "hss:project=demo", 1},
    {"${*} is a literal star in StringLike",
     "{\"StringLike\":{\"hss:namespace\":\"a${*}\"}}", "", "hss:namespace=ab",
     0},
    {"${*} is a literal star: control",
     "{\"StringLike\":{\"hss:namespace\":\"a${*}\"}}", "", "hss:namespace=a*",
     1},
    {"${?} and ${$}", "{\"StringEquals\":{\"hss:namespace\":\"${?}${$}{x}\"}}",
     "", "hss:namespace=?${x}", 1},
    {"a lone $ is literal", "{\"StringEquals\":{\"hss:namespace\":\"a$b\"}}",
     "", "hss:namespace=a$b", 1},
    /* AWS example "Allows access to a specific date range"
     * (aws:CurrentTime between two dates). */
    {"AWS example: date range",
     "{\"DateGreaterThan\":{\"gw:current_time\":\"2020-04-01T00:00:00Z\"},"
     "\"DateLessThan\":{\"gw:current_time\":\"2020-06-30T23:59:59Z\"}}",
     "", "gw:current_time=2020-05-01T12:00:00.000Z", 1},
    {"AWS example: date range, after it",
     "{\"DateGreaterThan\":{\"gw:current_time\":\"2020-04-01T00:00:00Z\"},"
     "\"DateLessThan\":{\"gw:current_time\":\"2020-06-30T23:59:59Z\"}}",
     "", "gw:current_time=2020-07-01T00:00:00.000Z", 0},
    /* AWS example for ForAllValues: "ForAllValues:StringEquals" on
     * aws:TagKeys ["environment", "cost-center"]. */
    {"AWS example: ForAllValues tag keys",
     "{\"ForAllValues:StringEquals\":{\"hss:image_id_list\":[\"environment\","
     "\"cost-center\"]}}",
     "", "hss:image_id_list=[environment]", 1},
    {"AWS example: ForAllValues tag keys, extra key",
     "{\"ForAllValues:StringEquals\":{\"hss:image_id_list\":[\"environment\","
     "\"cost-center\"]}}",
     "", "hss:image_id_list=[environment,owner]", 0},
    /* AWS example for the Null operator: "Null": {"aws:TokenIssueTime":
     * "true"} holds for requests made with long-term credentials. */
    {"AWS example: Null TokenIssueTime",
     "{\"Null\":{\"jwt:token_issue_time\":\"true\"}}", "sub=a", "", 1},
};

static void
test_conditions(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	char doc[2048];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cond_cases) / sizeof(cond_cases[0]); i++) {
		const struct cond_case *tc = &cond_cases[i];
		enum gw_pol_effect want =
		    tc->want ? GW_POL_ALLOW : GW_POL_IMPLICIT_DENY;

		snprintf(doc, sizeof(doc),
		         DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\","
		             "\"Action\":\"*\",\"Resource\":\"*\","
		             "\"Condition\":%s}"),
		         tc->cond);
		set = load(doc);
		eval_ctx(set, tc->claims, tc->ctx, DEMO_RES, &d);
		if (d.effect != want)
			fail_msg("case \"%s\": got %s, want %s", tc->name,
			         gw_pol_effect_name(d.effect),
			         gw_pol_effect_name(want));
		gw_pol_free(set);
	}
}

/* NotAction, NotResource, NotPrincipal and Resource variables. */
struct elem_case {
	const char *name;
	const char *policy;
	const char *claims;
	const char *action;
	const char *resource;
	enum gw_pol_effect want;
};

#define ST(el) DOC("{\"Effect\":\"Allow\"," el "}")
#define DENY_ALL_BUT(el)                                                       \
	DOC(ALLOW_ALL ",{\"Sid\":\"D\",\"Effect\":\"Deny\"," el "}")

static const struct elem_case elem_cases[] = {
    {"NotAction: the named action is excluded",
     ST("\"Principal\":\"*\",\"NotAction\":\"hss:Export*\",\"Resource\":\"*\""),
     "", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY},
    {"NotAction: other actions apply",
     ST("\"Principal\":\"*\",\"NotAction\":\"hss:Export*\",\"Resource\":\"*\""),
     "", "hss:ListImages", DEMO_RES, GW_POL_ALLOW},
    /* AWS example "Deny everything except" with NotAction in a Deny. */
    {"NotAction in a Deny: denies everything else",
     DENY_ALL_BUT("\"Principal\":\"*\",\"NotAction\":\"" EXPORT
                  "\",\"Resource\":\"*\""),
     "", "hss:DeleteImages", DEMO_RES, GW_POL_EXPLICIT_DENY},
    {"NotAction in a Deny: the excluded action is allowed",
     DENY_ALL_BUT("\"Principal\":\"*\",\"NotAction\":\"" EXPORT
                  "\",\"Resource\":\"*\""),
     "", EXPORT, DEMO_RES, GW_POL_ALLOW},
    {"NotResource: excluded resource",
     ST("\"Principal\":\"*\",\"Action\":\"*\",\"NotResource\":"
        "\"hss:*:prod-*\""),
     "", EXPORT, "hss:r:prod-pay", GW_POL_IMPLICIT_DENY},
    {"NotResource: other resource",
     ST("\"Principal\":\"*\",\"Action\":\"*\",\"NotResource\":"
        "\"hss:*:prod-*\""),
     "", EXPORT, DEMO_RES, GW_POL_ALLOW},
    {"NotPrincipal: a Deny for everyone but admins",
     DENY_ALL_BUT("\"NotPrincipal\":{\"jwt:groups\":\"admins\"},"
                  "\"Action\":\"*\",\"Resource\":\"*\""),
     "groups=[dev]", EXPORT, DEMO_RES, GW_POL_EXPLICIT_DENY},
    {"NotPrincipal: admins are excluded",
     DENY_ALL_BUT("\"NotPrincipal\":{\"jwt:groups\":\"admins\"},"
                  "\"Action\":\"*\",\"Resource\":\"*\""),
     "groups=[dev,admins]", EXPORT, DEMO_RES, GW_POL_ALLOW},
    {"NotPrincipal: a missing claim is not excluded",
     DENY_ALL_BUT("\"NotPrincipal\":{\"jwt:groups\":\"admins\"},"
                  "\"Action\":\"*\",\"Resource\":\"*\""),
     "sub=x", EXPORT, DEMO_RES, GW_POL_EXPLICIT_DENY},
    /* AWS variables example: a Resource ending in home/${aws:username}. */
    {"Resource variable resolved",
     ST("\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":"
        "\"hss:*:${jwt:team}\""),
     "team=demo", EXPORT, DEMO_RES, GW_POL_ALLOW},
    {"Resource variable other team",
     ST("\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":"
        "\"hss:*:${jwt:team}\""),
     "team=prod", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY},
    {"Resource variable unresolved",
     ST("\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":"
        "\"hss:*:${jwt:team}\""),
     "sub=x", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY},
    {"Resource variable value is literal",
     ST("\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":"
        "\"hss:*:${jwt:team}\""),
     "team=*", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY},
    {"Resource variable with a default",
     ST("\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":"
        "\"hss:*:${jwt:team, 'demo'}\""),
     "sub=x", EXPORT, DEMO_RES, GW_POL_ALLOW},
    {"NotResource variable unresolved: the element does not match",
     ST("\"Principal\":\"*\",\"Action\":\"*\",\"NotResource\":"
        "\"hss:*:${jwt:team}\""),
     "sub=x", EXPORT, DEMO_RES, GW_POL_IMPLICIT_DENY},
    {"NotResource variable resolved elsewhere",
     ST("\"Principal\":\"*\",\"Action\":\"*\",\"NotResource\":"
        "\"hss:*:${jwt:team}\""),
     "team=prod", EXPORT, DEMO_RES, GW_POL_ALLOW},
};

static void
test_elements(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(elem_cases) / sizeof(elem_cases[0]); i++) {
		const struct elem_case *tc = &elem_cases[i];

		set = load(tc->policy);
		eval_spec(set, tc->claims, tc->action, tc->resource, &d);
		if (d.effect != tc->want)
			fail_msg("case \"%s\": got %s, want %s", tc->name,
			         gw_pol_effect_name(d.effect),
			         gw_pol_effect_name(tc->want));
		gw_pol_free(set);
	}
}

static const struct err_case cond_err_cases[] = {
    {"unknown operator", COND("{\"StringEqual\":{\"hss:namespace\":\"a\"}}"),
     "t.json: Statement[0].Condition.StringEqual: unknown condition "
     "operator"},
    {"unknown qualifier",
     COND("{\"ForSomeValues:StringEquals\":{\"hss:namespace\":\"a\"}}"),
     "t.json: Statement[0].Condition.ForSomeValues:StringEquals: unknown "
     "condition operator"},
    {"operator in the wrong case",
     COND("{\"stringequals\":{\"hss:namespace\":\"a\"}}"),
     "t.json: Statement[0].Condition.stringequals: unknown condition "
     "operator"},
    /* A typo in a key would turn a Deny's condition off silently. */
    {"unknown hss key", COND("{\"StringEquals\":{\"hss:namespce\":\"a\"}}"),
     "t.json: Statement[0].Condition.StringEquals.hss:namespce: unknown "
     "condition key \"hss:namespce\"*"},
    {"AWS key", COND("{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}"),
     "t.json: Statement[0].Condition.IpAddress.aws:SourceIp: unknown "
     "condition key*"},
    {"unknown gw key", COND("{\"IpAddress\":{\"gw:client\":\"10.0.0.0/8\"}}"),
     "t.json: Statement[0].Condition.IpAddress.gw:client: unknown "
     "condition key*"},
    {"bad CIDR prefix",
     COND("{\"IpAddress\":{\"gw:client_ip\":\"10.0.0.0/33\"}}"),
     "t.json: Statement[0].Condition.IpAddress.gw:client_ip: "
     "\"10.0.0.0/33\": prefix length must be 0 to 32"},
    {"bad CIDR host bits",
     COND("{\"IpAddress\":{\"gw:client_ip\":[\"10.0.0.0/8\",\"10.0.0.1/8\"]}}"),
     "t.json: Statement[0].Condition.IpAddress.gw:client_ip[1]: "
     "\"10.0.0.1/8\" has host bits set under the prefix"},
    {"bad CIDR address",
     COND("{\"NotIpAddress\":{\"gw:client_ip\":\"300.1.1.0/24\"}}"),
     "t.json: Statement[0].Condition.NotIpAddress.gw:client_ip: "
     "\"300.1.1.0/24\" is not a CIDR"},
    {"bad CIDR empty prefix",
     COND("{\"IpAddress\":{\"gw:client_ip\":\"10.0.0.0/\"}}"),
     "t.json: Statement[0].Condition.IpAddress.gw:client_ip: "
     "\"10.0.0.0/\": prefix length*"},
    {"bad date",
     COND("{\"DateLessThan\":{\"gw:current_time\":"
          "\"2026-13-01T00:00:00Z\"}}"),
     "t.json: Statement[0].Condition.DateLessThan.gw:current_time: "
     "\"2026-13-01T00:00:00Z\" is not an RFC 3339 date-time or epoch "
     "seconds"},
    {"date as words",
     COND("{\"DateLessThan\":{\"gw:current_time\":\"yesterday\"}}"),
     "t.json: Statement[0].Condition.DateLessThan.gw:current_time: "
     "\"yesterday\" is not*"},
    {"fraction in Numeric",
     COND("{\"NumericLessThan\":{\"hss:export_size\":\"1.5\"}}"),
     "t.json: Statement[0].Condition.NumericLessThan.hss:export_size: "
     "\"1.5\" is not an integer"},
    {"variable in Numeric",
     COND("{\"NumericLessThan\":{\"hss:export_size\":\"${jwt:max}\"}}"),
     "t.json: Statement[0].Condition.NumericLessThan.hss:export_size: "
     "\"${jwt:max}\" is not an integer"},
    {"Bool yes", COND("{\"Bool\":{\"hss:operate_all\":\"yes\"}}"),
     "t.json: Statement[0].Condition.Bool.hss:operate_all: must be true or "
     "false"},
    {"Null with two values",
     COND("{\"Null\":{\"hss:namespace\":[true,false]}}"),
     "t.json: Statement[0].Condition.Null.hss:namespace: Null takes exactly "
     "one value"},
    {"NullIfExists", COND("{\"NullIfExists\":{\"hss:namespace\":true}}"),
     "t.json: Statement[0].Condition.NullIfExists: Null takes no set "
     "qualifier and no IfExists"},
    {"operator not an object", COND("{\"StringEquals\":\"a\"}"),
     "t.json: Statement[0].Condition.StringEquals: must be a non-empty "
     "object of condition keys"},
    {"empty value list", COND("{\"StringEquals\":{\"hss:namespace\":[]}}"),
     "t.json: Statement[0].Condition.StringEquals.hss:namespace: must not "
     "be an empty list"},
    {"value an object", COND("{\"StringEquals\":{\"hss:namespace\":{}}}"),
     "t.json: Statement[0].Condition.StringEquals.hss:namespace: must be a "
     "string, an integer or a boolean"},
    {"unterminated variable",
     COND("{\"StringEquals\":{\"hss:namespace\":\"${jwt:team\"}}"),
     "t.json: Statement[0].Condition.StringEquals.hss:namespace: "
     "unterminated policy variable*"},
    {"empty variable", COND("{\"StringEquals\":{\"hss:namespace\":\"${}\"}}"),
     "t.json: Statement[0].Condition.StringEquals.hss:namespace: empty "
     "policy variable"},
    {"variable of an unknown key",
     COND("{\"StringEquals\":{\"hss:namespace\":\"${aws:username}\"}}"),
     "t.json: Statement[0].Condition.StringEquals.hss:namespace: unknown "
     "condition key \"aws:username\"*"},
    {"default without quotes",
     COND("{\"StringEquals\":{\"hss:namespace\":\"${jwt:team, x}\"}}"),
     "t.json: Statement[0].Condition.StringEquals.hss:namespace: a "
     "variable's default must be in single quotes"},
    {"unterminated default",
     COND("{\"StringEquals\":{\"hss:namespace\":\"${jwt:team, 'x}\"}}"),
     "t.json: Statement[0].Condition.StringEquals.hss:namespace: "
     "unterminated default in a variable"},
    {"variable in Action",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
        "\"Action\":\"hss:${jwt:act}\",\"Resource\":\"*\""),
     "t.json: Statement[0].Action: policy variables are not allowed here"},
    {"variable in Principal",
     S1("\"Effect\":\"Allow\",\"Principal\":{\"jwt:sub\":\"${jwt:x}\"},"
        "\"Action\":\"*\",\"Resource\":\"*\""),
     "t.json: Statement[0].Principal.jwt:sub: policy variables are not "
     "allowed here"},
    {"Resource variable of a wrong shape",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
        "\"Action\":\"*\",\"Resource\":\"hss:${jwt:team}\""),
     "t.json: Statement[0].Resource: \"hss:${jwt:team}\" must be "
     "hss:<region>:<project-alias>"},
    {"missing Action",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\",\"Resource\":\"*\""),
     "t.json: Statement[0]: missing \"Action\" or \"NotAction\""},
};

static void
test_condition_load_errors(void **state)
{
	struct gw_pol_set *set;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cond_err_cases) / sizeof(cond_err_cases[0]);
	     i++) {
		const struct err_case *tc = &cond_err_cases[i];

		err[0] = '\0';
		set = gw_pol_load_buf("t.json", tc->json, strlen(tc->json), err,
		                      sizeof(err));
		if (set != NULL) {
			gw_pol_free(set);
			fail_msg("case \"%s\": loaded", tc->name);
		}
		check_err(tc->name, err, tc->want);
	}
}

/* Positive controls: the nearest valid documents to the errors above. */
static void
test_condition_load_controls(void **state)
{
	static const char *const ok[] = {
	    COND("{\"StringEquals\":{\"hss:namespace\":\"a\"}}"),
	    COND("{\"ForAnyValue:StringEqualsIfExists\":{\"hss:namespace\":"
	         "\"a\"}}"),
	    COND("{\"IpAddress\":{\"gw:client_ip\":[\"10.0.0.0/8\","
	         "\"10.0.0.1/32\",\"10.0.0.1\",\"::/0\",\"2001:db8::/32\"]}}"),
	    COND("{\"DateLessThan\":{\"gw:current_time\":[\"2026-12-01T00:00:"
	         "00Z\",\"2026-12-01T00:00:00.5+08:00\",1767225600]}}"),
	    COND("{\"NumericLessThan\":{\"hss:export_size\":[\"15\",-3]}}"),
	    COND("{\"Bool\":{\"hss:operate_all\":[\"TRUE\",false]}}"),
	    COND("{\"Null\":{\"hss:namespace\":\"true\"}}"),
	    COND("{\"StringEquals\":{\"hss:namespace\":\"${jwt:team, 'x'}\"}}"),
	    COND("{\"StringEquals\":{\"Hss:Region\":\"${GW:CLIENT_IP}\"}}"),
	    S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
	       "\"Action\":\"*\",\"Resource\":\"hss:*:${jwt:team}\""),
	    S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
	       "\"Action\":\"*\",\"Resource\":\"hss:r:${jwt:team}-x\""),
	    S1("\"Effect\":\"Deny\",\"NotPrincipal\":{\"jwt:a\":\"b\"},"
	       "\"NotAction\":\"hss:Export*\",\"NotResource\":\"hss:a:b\""),
	};
	struct gw_pol_set *set;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		set = load(ok[i]);
		gw_pol_free(set);
	}
}

/* The hss: keys policy_cond.c accepts are exactly translation's fields. */
static void
test_hss_keys_match_fields(void **state)
{
	const struct gw_tr_field *f = NULL;
	const char *name = NULL;
	int is_time = 0;
	size_t i, j;

	(void)state;
	for (i = 0; i < gw_tr_nfields; i++) {
		f = &gw_tr_fields[i];
		for (j = 0; (name = gw_pol_hss_key(j, &is_time)) != NULL; j++)
			if (strcmp(name, f->name) == 0)
				break;
		if (name == NULL)
			fail_msg("field %s is no hss: key in policy_cond.c",
			         f->name);
		if (is_time != (f->type == GW_TR_TIME))
			fail_msg("hss:%s: time flag drifted", f->name);
	}
	for (j = 0; (name = gw_pol_hss_key(j, NULL)) != NULL; j++) {
		if (strcmp(name, "region") == 0)
			continue; /* from the config, not a field */
		if (gw_tr_field_get(name) == NULL)
			fail_msg("hss:%s is no translation field", name);
	}
	assert_null(gw_pol_hss_key(j + 1, NULL));
}

/* Every applicable Deny decides, up to GW_POL_DECIDING_MAX of them. */
static void
test_deciding_statements(void **state)
{
	struct gw_buf b;
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	size_t i;

	(void)state;
	gw_buf_init(&b, 1 << 16);
	gw_buf_puts(&b, "{\"Version\":\"2012-10-17\",\"Statement\":["
	                "{\"Sid\":\"A1\",\"Effect\":\"Allow\"," PAR "},"
	                "{\"Sid\":\"A2\",\"Effect\":\"Allow\"," PAR "}");
	set = load(DOC("{\"Sid\":\"A1\",\"Effect\":\"Allow\"," PAR "},"
	               "{\"Sid\":\"A2\",\"Effect\":\"Allow\"," PAR "}"));
	eval_spec(set, "sub=a", EXPORT, DEMO_RES, &d);
	assert_int_equal(d.effect, GW_POL_ALLOW);
	assert_int_equal(d.ndeciding, 2);
	assert_int_equal(d.ndeciding_total, 2);
	assert_string_equal(d.deciding[0].sid, "A1");
	assert_string_equal(d.deciding[1].sid, "A2");
	assert_string_equal(d.sid, "A1");
	gw_pol_free(set);
	for (i = 0; i < 10; i++)
		gw_buf_printf(
		    &b, ",{\"Sid\":\"D%zu\",\"Effect\":\"Deny\"," PAR "}", i);
	gw_buf_puts(&b, "]}");
	set = load(b.p);
	eval_spec(set, "sub=a", EXPORT, DEMO_RES, &d);
	assert_int_equal(d.effect, GW_POL_EXPLICIT_DENY);
	assert_int_equal(d.ndeciding, GW_POL_DECIDING_MAX);
	assert_int_equal(d.ndeciding_total, 10);
	assert_string_equal(d.deciding[0].sid, "D0");
	assert_string_equal(d.deciding[7].sid, "D7");
	assert_string_equal(d.deciding[0].file, "t.json");
	assert_string_equal(d.sid, "D0");
	gw_pol_free(set);
	gw_buf_reset(&b);
}

static struct json_object *
jget(struct json_object *o, const char *path)
{
	char buf[128], *tok, *save = NULL;
	struct json_object *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok != NULL && v != NULL;
	     tok = strtok_r(NULL, ".", &save)) {
		if (tok[0] >= '0' && tok[0] <= '9')
			v = json_object_array_get_idx(v, (size_t)atoi(tok));
		else if (!json_object_object_get_ex(v, tok, &v))
			v = NULL;
	}
	if (v == NULL)
		fail_msg("no %s", path);
	return v;
}

static const char *
jtext(struct json_object *o, const char *path)
{
	return json_object_get_string(jget(o, path));
}

static void
test_explain(void **state)
{
	struct gw_pol_request req = {0};
	struct gw_pol_decision d, d2;
	struct json_object *root;
	struct gw_pol_set *set;
	struct ctxspec cs;
	struct gw_claims c;
	char *js;

	(void)state;
	set = load(DOC(
	    "{\"Sid\":\"Team\",\"Effect\":\"Allow\",\"Principal\":\"*\","
	    "\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":" NS_TEAM "},"
	    "{\"Sid\":\"Ci\",\"Effect\":\"Allow\",\"Principal\":\"*\","
	    "\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{"
	    "\"StringEquals\":{\"hss:image_type\":\"cicd\"}}},"
	    "{\"Sid\":\"Net\",\"Effect\":\"Deny\",\"Principal\":\"*\","
	    "\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{"
	    "\"NotIpAddress\":{\"gw:client_ip\":\"10.0.0.0/8\"}}},"
	    "{\"Sid\":\"Other\",\"Effect\":\"Allow\",\"Principal\":\"*\","
	    "\"Action\":\"*\",\"Resource\":\"hss:*:other\"}"));
	claims_parse(&c, "sub=a;team=red");
	ctx_parse(&cs, "hss:namespace=red-x;gw:client_ip=10.1.1.1");
	req.claims = &c;
	req.action = EXPORT;
	req.resource = DEMO_RES;
	req.ctx = cs.kv;
	req.nctx = cs.n;
	js = gw_pol_explain(set, &req, &d);
	assert_non_null(js);
	gw_pol_eval(set, &req, &d2);
	assert_int_equal(d.effect, d2.effect);
	root = json_tokener_parse(js);
	assert_non_null(root);
	assert_string_equal(jtext(root, "decision"), "allow");
	assert_string_equal(jtext(root, "revision"), gw_pol_revision(set));
	assert_string_equal(jtext(root, "resource"), DEMO_RES);
	assert_string_equal(jtext(root, "deciding.0.sid"), "Team");
	assert_string_equal(jtext(root, "deciding.0.file"), "t.json");
	assert_int_equal(json_object_array_length(jget(root, "applied")), 1);
	assert_string_equal(jtext(root, "applied.0.sid"), "Team");
	assert_string_equal(jtext(root, "not_applied.0.sid"), "Ci");
	assert_string_equal(jtext(root, "not_applied.0.failed"),
	                    "Condition.StringEquals.hss:image_type");
	assert_string_equal(jtext(root, "not_applied.0.reason"),
	                    "the key is missing");
	assert_string_equal(jtext(root, "not_applied.0.missing_keys.0"),
	                    "hss:image_type");
	assert_string_equal(jtext(root, "not_applied.1.sid"), "Net");
	assert_string_equal(jtext(root, "not_applied.1.failed"),
	                    "Condition.NotIpAddress.gw:client_ip");
	assert_string_equal(jtext(root, "not_applied.2.failed"), "Resource");
	assert_string_equal(jtext(root, "missing_keys.0"), "hss:image_type");
	assert_int_equal(json_object_array_length(jget(root, "missing_keys")),
	                 1);
	json_object_put(root);
	free(js);

	/* Another caller: no team claim and outside the network. */
	claims_free(&c);
	free(cs.copy);
	claims_parse(&c, "sub=b");
	ctx_parse(&cs, "hss:namespace=red-x;gw:client_ip=192.0.2.1");
	req.claims = &c;
	req.ctx = cs.kv;
	req.nctx = cs.n;
	js = gw_pol_explain(set, &req, NULL);
	assert_non_null(js);
	root = json_tokener_parse(js);
	assert_string_equal(jtext(root, "decision"), "explicit_deny");
	assert_string_equal(jtext(root, "deciding.0.sid"), "Net");
	assert_string_equal(jtext(root, "not_applied.0.sid"), "Team");
	assert_string_equal(jtext(root, "not_applied.0.reason"),
	                    "a policy variable could not be resolved");
	assert_string_equal(jtext(root, "not_applied.0.missing_keys.0"),
	                    "jwt:team");
	json_object_put(root);
	free(js);
	claims_free(&c);
	free(cs.copy);

	/* Nothing to evaluate: an implicit deny, still explained. */
	js = gw_pol_explain(NULL, &req, &d);
	assert_non_null(js);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	root = json_tokener_parse(js);
	assert_string_equal(jtext(root, "decision"), "implicit_deny");
	json_object_put(root);
	free(js);
	gw_pol_free(set);
}

struct check_case {
	const char *name;
	const char *policy;
	const char *want; /* substring of the warnings, NULL: none */
};

#define NOW_2026 1767225600000LL /* 2026-01-01T00:00:00Z */

/* An Allow naming its action: check warns about wildcard Allows. */
#define CCOND(c)                                                               \
	DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"" EXPORT   \
	    "\",\"Resource\":\"*\",\"Condition\":" c "}")

static const struct check_case check_cases[] = {
    {"clean",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"" EXPORT
        "\",\"Resource\":\"*\""),
     NULL},
    /* The gap: "Action": "*" quietly lets anyone act for any subject. */
    {"wildcard Allow grants acting for others", DOC(ALLOW_ALL),
     "also grants hss:ActForSubject"},
    {"NotAction Allow grants acting for others",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
        "\"NotAction\":\"hss:DownloadExportFile\",\"Resource\":\"*\""),
     "also grants hss:ActForSubject"},
    /* Positive control: naming the action is no warning. */
    {"explicit ActForSubject",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
        "\"Action\":\"hss:ActForSubject\",\"Resource\":\"*\""),
     NULL},
    {"clean conditions",
     CCOND("{\"NumericGreaterThan\":{\"hss:export_size\":5},"
           "\"NumericLessThan\":{\"hss:export_size\":7},"
           "\"DateLessThan\":{\"gw:current_time\":\"2027-01-01T00:00:00Z\"}}"),
     NULL},
    {"NotAction of every action",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
        "\"NotAction\":\"hss:*\",\"Resource\":\"*\""),
     "t.json: Statement[0] (#0): warning: NotAction excludes every known "
     "action"},
    {"NotResource of every resource",
     S1("\"Effect\":\"Allow\",\"Principal\":\"*\","
        "\"Action\":\"*\",\"NotResource\":\"hss:*\""),
     "NotResource excludes every resource"},
    {"NotPrincipal *",
     S1("\"Effect\":\"Deny\",\"NotPrincipal\":\"*\","
        "\"Action\":\"*\",\"Resource\":\"*\""),
     "NotPrincipal \"*\" excludes every caller"},
    {"Null true and a plain operator",
     COND("{\"Null\":{\"hss:namespace\":true},"
          "\"StringEquals\":{\"hss:namespace\":\"a\"}}"),
     "the key must be both missing and present"},
    {"Null true and IfExists is fine",
     CCOND("{\"Null\":{\"hss:namespace\":true},"
           "\"StringEqualsIfExists\":{\"hss:namespace\":\"a\"}}"),
     NULL},
    {"empty numeric range",
     COND("{\"NumericGreaterThan\":{\"hss:export_size\":10},"
          "\"NumericLessThanEquals\":{\"hss:export_size\":10}}"),
     "admit no value"},
    {"expired date",
     COND("{\"DateLessThan\":{\"gw:current_time\":\"2025-06-01T00:00:00Z\"}}"),
     "every date is in the past"},
    {"an unconditional Deny of everything",
     DOC("{\"Sid\":\"All\",\"Effect\":\"Deny\"," PAR "}," ALLOW_ALL),
     "t.json: Statement[1] (#1): warning: t.json All denies everything"},
    {"a Deny with a variable",
     S1("\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"*\","
        "\"NotResource\":\"hss:*:${jwt:team}\""),
     "a Deny with a policy variable"},
    {"ForAllValues in an Allow",
     COND("{\"ForAllValues:StringEquals\":{\"hss:image_id_list\":\"a\"}}"),
     "ForAllValues also holds when hss:image_id_list is missing"},
};

static void
test_check_warnings(void **state)
{
	struct gw_pol_set *set;
	struct gw_buf b;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
		const struct check_case *tc = &check_cases[i];

		set = load(tc->policy);
		gw_buf_init(&b, 1 << 16);
		n = gw_pol_check(set, NOW_2026, &b);
		if (tc->want == NULL && n != 0)
			fail_msg("case \"%s\": unexpected warnings: %s",
			         tc->name, b.p);
		if (tc->want != NULL &&
		    (n == 0 || b.p == NULL || strstr(b.p, tc->want) == NULL))
			fail_msg("case \"%s\": want \"%s\" in \"%s\"", tc->name,
			         tc->want, b.p ? b.p : "");
		gw_buf_reset(&b);
		gw_pol_free(set);
	}
	assert_int_equal(gw_pol_check(NULL, 0, &b), 0);
}

/* Variables cannot overflow the substitution buffer into a match. */
static void
test_variable_too_long(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	char *claims;
	size_t n = 5000;

	(void)state;
	set =
	    load(COND("{\"StringLike\":{\"hss:namespace\":\"${jwt:team}*\"}}"));
	claims = malloc(n + 8);
	assert_non_null(claims);
	memcpy(claims, "team=", 5);
	memset(claims + 5, 'a', n);
	claims[5 + n] = '\0';
	eval_ctx(set, claims, "hss:namespace=aaa", DEMO_RES, &d);
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	/* Control: a short team resolves. */
	eval_ctx(set, "team=aa", "hss:namespace=aaa", DEMO_RES, &d);
	assert_int_equal(d.effect, GW_POL_ALLOW);
	free(claims);
	gw_pol_free(set);
}

/*
 * policies/examples/ loaded together, as an operator would: each example
 * with its allow and deny, and the guardrail Denies overriding the Allows
 * of other files.  OK: inside the network, in office hours.
 */
#define OK_CTX                                                                 \
	"gw:client_ip=10.1.2.3;gw:current_time=2026-03-02T10:00:00.000Z;"      \
	"hss:export_size=100"
#define NIGHT_CTX                                                              \
	"gw:client_ip=10.1.2.3;gw:current_time=2026-03-02T20:00:00.000Z;"      \
	"hss:export_size=100"
#define CI_CLAIMS "sub=ci-build-7;iss=https://ci.example.com;pipeline=web"

struct example_case {
	const char *claims;
	const char *ctx;
	const char *resource;
	enum gw_pol_effect want;
	const char *file;
	const char *sid;
};

static const struct example_case example_cases[] = {
    /*
     * hss:enterprise_project_id as a condition key (#11 item 10): even
     * where the project entry allows "*", nobody exports from every
     * enterprise project at once.  Positive control: a named one passes.
     */
    {"sub=eve;groups=[secops]", OK_CTX ";hss:enterprise_project_id=0",
     "hss:eu-west-0:anything", GW_POL_ALLOW, "10-security-team.json",
     "SecurityTeamEverywhere"},
    {"sub=eve;groups=[secops]",
     OK_CTX ";hss:enterprise_project_id=all_granted_eps",
     "hss:eu-west-0:anything", GW_POL_EXPLICIT_DENY,
     "35-enterprise-projects.json", "NoAllGrantedEnterpriseProjects"},
    /* Security team: everything up to export_size 5000. */
    {"sub=eve;groups=[secops]", OK_CTX, "hss:eu-west-0:anything", GW_POL_ALLOW,
     "10-security-team.json", "SecurityTeamEverywhere"},
    {"sub=eve;groups=[secops]", OK_CTX ";hss:export_size=5000",
     "hss:eu-west-0:anything", GW_POL_ALLOW, "10-security-team.json",
     "SecurityTeamEverywhere"},
    {"sub=eve;groups=[secops]", "gw:client_ip=10.1.2.3;hss:export_size=5001",
     "hss:eu-west-0:anything", GW_POL_IMPLICIT_DENY, "", ""},
    {"sub=eve;groups=[secops];employment_type=contractor", OK_CTX,
     "hss:eu-west-0:prod-payments", GW_POL_EXPLICIT_DENY, "90-guardrails.json",
     "NoContractorsOnProduction"},
    {"sub=eve;groups=[hss-auditors];email_verified=false", OK_CTX,
     "hss:eu-west-0:staging", GW_POL_EXPLICIT_DENY, "90-guardrails.json",
     "NoUnverifiedEmail"},
    /* CI: image_type cicd and its own cicd_name only. */
    {CI_CLAIMS, OK_CTX ";hss:image_type=cicd;hss:cicd_name=web",
     "hss:cn-north-4:staging", GW_POL_ALLOW, "20-ci-pipeline.json",
     "CiOwnPipelineImages"},
    {CI_CLAIMS, OK_CTX ";hss:image_type=cicd;hss:cicd_name=payments",
     "hss:cn-north-4:staging", GW_POL_IMPLICIT_DENY, "", ""},
    {CI_CLAIMS, OK_CTX ";hss:image_type=private_image;hss:cicd_name=web",
     "hss:cn-north-4:staging", GW_POL_IMPLICIT_DENY, "", ""},
    {CI_CLAIMS, OK_CTX ";hss:image_type=cicd", "hss:cn-north-4:staging",
     GW_POL_IMPLICIT_DENY, "", ""},
    {"sub=ci-build-7;iss=https://ci.example.com",
     OK_CTX ";hss:image_type=cicd;hss:cicd_name=web", "hss:cn-north-4:staging",
     GW_POL_IMPLICIT_DENY, "", ""},
    {CI_CLAIMS, OK_CTX ";hss:image_type=cicd;hss:cicd_name=web",
     "hss:cn-north-4:prod", GW_POL_IMPLICIT_DENY, "", ""},
    /* Tenants: integer claims. */
    {"sub=t;tenant_id=1043", OK_CTX, "hss:ap-southeast-3:tenant-demo",
     GW_POL_ALLOW, "30-tenants.json", "TenantsInSingapore"},
    {"sub=t;tenant_id=1044", OK_CTX, "hss:ap-southeast-3:tenant-demo",
     GW_POL_IMPLICIT_DENY, "", ""},
    /* Teams: their own namespaces via ${jwt:team}. */
    {"sub=r;team=red", OK_CTX ";hss:namespace=red-web", "hss:cn-north-4:demo",
     GW_POL_ALLOW, "40-team-namespaces.json", "TeamOwnNamespaces"},
    {"sub=r;team=red", OK_CTX ";hss:namespace=red", "hss:cn-north-4:demo",
     GW_POL_ALLOW, "40-team-namespaces.json", "TeamOwnNamespaces"},
    {"sub=r;team=red", OK_CTX ";hss:namespace=blue-web", "hss:cn-north-4:demo",
     GW_POL_IMPLICIT_DENY, "", ""},
    {"sub=r;team=red", OK_CTX ";hss:namespace=redx", "hss:cn-north-4:demo",
     GW_POL_IMPLICIT_DENY, "", ""},
    /* No namespace filter would export every namespace. */
    {"sub=r;team=red", OK_CTX, "hss:cn-north-4:demo", GW_POL_IMPLICIT_DENY, "",
     ""},
    {"sub=r", OK_CTX ";hss:namespace=red-web", "hss:cn-north-4:demo",
     GW_POL_IMPLICIT_DENY, "", ""},
    /* Full exports only in office hours (08:00-17:59 UTC). */
    {"sub=r;team=red", OK_CTX ";hss:namespace=red-web;hss:operate_all=true",
     "hss:cn-north-4:demo", GW_POL_ALLOW, "40-team-namespaces.json",
     "TeamOwnNamespaces"},
    {"sub=r;team=red", NIGHT_CTX ";hss:namespace=red-web;hss:operate_all=true",
     "hss:cn-north-4:demo", GW_POL_EXPLICIT_DENY, "90-guardrails.json",
     "NoFullExportsOutsideOfficeHours"},
    {"sub=r;team=red", NIGHT_CTX ";hss:namespace=red-web;hss:operate_all=false",
     "hss:cn-north-4:demo", GW_POL_ALLOW, "40-team-namespaces.json",
     "TeamOwnNamespaces"},
    /* Without the clock the negated operator holds: fails closed. */
    {"sub=r;team=red",
     "gw:client_ip=10.1.2.3;hss:namespace=red-web;hss:operate_all=true",
     "hss:cn-north-4:demo", GW_POL_EXPLICIT_DENY, "90-guardrails.json",
     "NoFullExportsOutsideOfficeHours"},
    /* Callers outside the address ranges are denied, whatever allows. */
    {"sub=eve;groups=[secops]", "gw:client_ip=203.0.113.5;hss:export_size=1",
     "hss:eu-west-0:x", GW_POL_EXPLICIT_DENY, "91-network.json",
     "DenyOutsideCorporateNetwork"},
    {"sub=eve;groups=[secops]", "hss:export_size=1", "hss:eu-west-0:x",
     GW_POL_EXPLICIT_DENY, "91-network.json", "DenyOutsideCorporateNetwork"},
    {"sub=eve;groups=[secops]", "gw:client_ip=::1;hss:export_size=1",
     "hss:eu-west-0:x", GW_POL_ALLOW, "10-security-team.json",
     "SecurityTeamEverywhere"},
};

/*
 * 50-act-for-subject.json: whose tasks a caller may use (action
 * hss:ActForSubject, the task's creator in hss:task_issuer and
 * hss:task_subject).  Gap pinned: a team lead must not reach another
 * team's or another IdP's tasks, nor anyone without the group.
 */
#define LEAD                                                                   \
	"sub=lead-carol;iss=https://"                                          \
	"idp.example.com;team=web;groups=[team-leads]"
#define IDP "hss:task_issuer=https://idp.example.com"
#define NET "gw:client_ip=10.1.2.3;"
static const struct example_case act_for_cases[] = {
    {"sub=eve;groups=[secops]", NET IDP ";hss:task_subject=dev-alice",
     "hss:eu-west-0:x", GW_POL_ALLOW, "50-act-for-subject.json",
     "SecurityTeamActsForAnyone"},
    {LEAD, NET IDP ";hss:task_subject=web-alice", "hss:cn-north-4:demo",
     GW_POL_ALLOW, "50-act-for-subject.json", "TeamLeadActsForOwnTeam"},
    {LEAD, NET IDP ";hss:task_subject=ops-erin", "hss:cn-north-4:demo",
     GW_POL_IMPLICIT_DENY, "", ""},
    {LEAD, NET IDP ";hss:task_subject=web", "hss:cn-north-4:demo",
     GW_POL_IMPLICIT_DENY, "", ""},
    {LEAD,
     NET "hss:task_issuer=https://other.example;"
         "hss:task_subject=web-alice",
     "hss:cn-north-4:demo", GW_POL_IMPLICIT_DENY, "", ""},
    /* Without the creator in the context nothing applies. */
    {LEAD, NET IDP, "hss:cn-north-4:demo", GW_POL_IMPLICIT_DENY, "", ""},
    {"sub=lead-carol;iss=https://idp.example.com;groups=[team-leads]",
     NET IDP ";hss:task_subject=web-alice", "hss:cn-north-4:demo",
     GW_POL_IMPLICIT_DENY, "", ""},
    {"sub=web-bob;iss=https://idp.example.com;team=web;groups=[dev]",
     NET IDP ";hss:task_subject=web-alice", "hss:cn-north-4:demo",
     GW_POL_IMPLICIT_DENY, "", ""},
    /* The guardrails still win. */
    {"sub=eve;groups=[secops]",
     "gw:client_ip=203.0.113.5;" IDP ";hss:task_subject=dev-alice",
     "hss:eu-west-0:x", GW_POL_EXPLICIT_DENY, "91-network.json",
     "DenyOutsideCorporateNetwork"},
};

static void
test_example_act_for(void **state)
{
	struct gw_pol_request req = {0};
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	struct ctxspec cs;
	struct gw_claims c;
	size_t i;

	(void)state;
	set = load_dir(GW_SOURCE_DIR "/policies/examples");
	for (i = 0; i < sizeof(act_for_cases) / sizeof(act_for_cases[0]); i++) {
		const struct example_case *tc = &act_for_cases[i];

		claims_parse(&c, tc->claims);
		ctx_parse(&cs, tc->ctx);
		req.claims = &c;
		req.action = "hss:ActForSubject";
		req.resource = tc->resource;
		req.ctx = cs.kv;
		req.nctx = cs.n;
		gw_pol_eval(set, &req, &d);
		claims_free(&c);
		free(cs.copy);
		if (d.effect != tc->want || strcmp(d.file, tc->file) != 0 ||
		    strcmp(d.sid, tc->sid) != 0)
			fail_msg("act-for %zu: got %s %s/%s", i,
			         gw_pol_effect_name(d.effect), d.file, d.sid);
	}
	gw_pol_free(set);
}

static void
test_example_policies(void **state)
{
	struct gw_pol_decision d;
	struct gw_pol_set *set;
	struct gw_buf b;
	size_t i;

	(void)state;
	set = load_dir(GW_SOURCE_DIR "/policies/examples");
	assert_int_equal(gw_pol_count(set), 14);
	for (i = 0; i < sizeof(example_cases) / sizeof(example_cases[0]); i++) {
		const struct example_case *tc = &example_cases[i];

		eval_ctx(set, tc->claims, tc->ctx, tc->resource, &d);
		if (d.effect != tc->want || strcmp(d.file, tc->file) != 0 ||
		    strcmp(d.sid, tc->sid) != 0)
			fail_msg("example %zu: got %s %s/%s", i,
			         gw_pol_effect_name(d.effect), d.file, d.sid);
	}
	/* The shipped examples are clean for `hssgw policy check`. */
	gw_buf_init(&b, 1 << 16);
	if (gw_pol_check(set, NOW_2026, &b) != 0)
		fail_msg("examples warn: %s", b.p);
	gw_buf_reset(&b);
	gw_pol_free(set);
}

/* ---- unusable client addresses (issue #11 item 9) ---- */

/* The decision for a request from client_ip, through gw_pol_ctx_build. */
static enum gw_pol_effect
eval_ip(const struct gw_pol_set *set, const char *client_ip, int explain)
{
	struct gw_pol_request req = {0};
	struct gw_pol_decision d;
	struct gw_pol_ctx ctx;
	struct gw_claims c;
	char *js = NULL;

	claims_parse(&c, "sub=dev-alice");
	assert_int_equal(gw_pol_ctx_build(&ctx, NULL, 0, 0, client_ip), 0);
	req.claims = &c;
	req.action = EXPORT;
	req.resource = DEMO_RES;
	req.ctx = ctx.kv;
	req.nctx = ctx.n;
	if (explain) {
		/* explain walks without the memo: it must decide the same. */
		js = gw_pol_explain(set, &req, &d);
		assert_non_null(js);
		free(js);
	} else {
		gw_pol_eval(set, &req, &d);
	}
	claims_free(&c);
	return d.effect;
}

static const char *const unusable_addrs[] = {
    "unix:",     "203.0.113.5%eth0", "fe80::1%eth0", "", "garbage",
    "10.0.0.1 ", "10.0.0.0/8",       NULL, /* NULL: no address from the front */
};

/*
 * Gap pinned: with a NotIpAddress Deny loaded (policies/examples/
 * 91-network.json), an address that is no IP ("unix:", what nginx sets
 * for a unix-socket listener, or "203.0.113.5%eth0") made the condition
 * "not match", so the Deny stopped applying and the Allow let the caller
 * through.  Now an unusable address makes every address condition fail
 * closed: a Deny applies (NotIpAddress and IpAddress alike), an Allow
 * does not (IpAddress, NotIpAddress, ...IfExists).  Positive controls:
 * real inside and outside addresses decide as before.
 */
static void
test_unusable_client_addr(void **state)
{
	struct gw_pol_set *deny_not = NULL, *deny_in = NULL, *allow_in = NULL,
	                  *allow_not = NULL, *allow_ifx = NULL, *shared = NULL;
	size_t i, n = sizeof(unusable_addrs) / sizeof(unusable_addrs[0]);
	int x;

	(void)state;
	deny_not = load(DOC(ALLOW_ALL
	                    ",{\"Effect\":\"Deny\",\"Principal\":\"*\","
	                    "\"Action\":\"*\",\"Resource\":\"*\","
	                    "\"Condition\":{\"NotIpAddress\":{\"gw:client_ip\":"
	                    "[\"10.0.0.0/8\",\"::1\"]}}}"));
	deny_in =
	    load(DOC(ALLOW_ALL ",{\"Effect\":\"Deny\",\"Principal\":\"*\","
	                       "\"Action\":\"*\",\"Resource\":\"*\","
	                       "\"Condition\":{\"IpAddress\":{\"gw:client_ip\":"
	                       "\"203.0.113.0/24\"}}}"));
	allow_in = load(COND("{\"IpAddress\":{\"gw:client_ip\":"
	                     "\"0.0.0.0/0\"}}"));
	allow_not = load(COND("{\"NotIpAddress\":{\"gw:client_ip\":"
	                      "\"10.0.0.0/8\"}}"));
	allow_ifx = load(COND("{\"IpAddressIfExists\":{\"gw:client_ip\":"
	                      "\"10.0.0.0/8\"}}"));
	/* The same condition in an Allow and a Deny: one memo id. */
	shared = load(DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\","
	                  "\"Action\":\"*\",\"Resource\":\"*\","
	                  "\"Condition\":{\"NotIpAddress\":{\"gw:client_ip\":"
	                  "\"10.0.0.0/8\"}}},"
	                  "{\"Effect\":\"Deny\",\"Principal\":\"*\","
	                  "\"Action\":\"*\",\"Resource\":\"*\","
	                  "\"Condition\":{\"NotIpAddress\":{\"gw:client_ip\":"
	                  "\"10.0.0.0/8\"}}}"));

	for (x = 0; x < 2; x++) {
		/* Positive controls: usable addresses decide as before. */
		assert_int_equal(eval_ip(deny_not, "10.1.2.3", x),
		                 GW_POL_ALLOW);
		assert_int_equal(eval_ip(deny_not, "::1", x), GW_POL_ALLOW);
		assert_int_equal(eval_ip(deny_not, "203.0.113.5", x),
		                 GW_POL_EXPLICIT_DENY);
		assert_int_equal(eval_ip(deny_in, "10.1.2.3", x), GW_POL_ALLOW);
		assert_int_equal(eval_ip(deny_in, "203.0.113.5", x),
		                 GW_POL_EXPLICIT_DENY);
		assert_int_equal(eval_ip(allow_in, "203.0.113.5", x),
		                 GW_POL_ALLOW);
		assert_int_equal(eval_ip(allow_not, "203.0.113.5", x),
		                 GW_POL_ALLOW);
		assert_int_equal(eval_ip(allow_ifx, "10.9.9.9", x),
		                 GW_POL_ALLOW);
		assert_int_equal(eval_ip(shared, "203.0.113.5", x),
		                 GW_POL_EXPLICIT_DENY);
		assert_int_equal(eval_ip(shared, "10.1.1.1", x),
		                 GW_POL_IMPLICIT_DENY);
		for (i = 0; i < n; i++) {
			const char *a = unusable_addrs[i];

			/* Attacks: a Deny applies whatever its operator. */
			assert_int_equal(eval_ip(deny_not, a, x),
			                 GW_POL_EXPLICIT_DENY);
			assert_int_equal(eval_ip(deny_in, a, x),
			                 GW_POL_EXPLICIT_DENY);
			assert_int_equal(eval_ip(shared, a, x),
			                 GW_POL_EXPLICIT_DENY);
			/* An Allow on an address never applies. */
			assert_int_equal(eval_ip(allow_in, a, x),
			                 GW_POL_IMPLICIT_DENY);
			assert_int_equal(eval_ip(allow_not, a, x),
			                 GW_POL_IMPLICIT_DENY);
			assert_int_equal(eval_ip(allow_ifx, a, x),
			                 GW_POL_IMPLICIT_DENY);
		}
	}
	gw_pol_free(deny_not);
	gw_pol_free(deny_in);
	gw_pol_free(allow_in);
	gw_pol_free(allow_not);
	gw_pol_free(allow_ifx);
	gw_pol_free(shared);
}

/* explain names why an Allow on an unusable address did not apply. */
static void
test_unusable_client_addr_explained(void **state)
{
	struct gw_pol_set *set =
	    load(COND("{\"IpAddress\":{\"gw:client_ip\":\"0.0.0.0/0\"}}"));
	struct gw_pol_request req = {0};
	struct gw_pol_decision d;
	struct gw_pol_ctx ctx;
	struct gw_claims c;
	char *js = NULL;

	(void)state;
	claims_parse(&c, "sub=dev-alice");
	assert_int_equal(gw_pol_ctx_build(&ctx, NULL, 0, 0, "unix:"), 0);
	req.claims = &c;
	req.action = EXPORT;
	req.resource = DEMO_RES;
	req.ctx = ctx.kv;
	req.nctx = ctx.n;
	js = gw_pol_explain(set, &req, &d);
	assert_non_null(js);
	assert_non_null(strstr(js, "not a usable IP address"));
	assert_int_equal(d.effect, GW_POL_IMPLICIT_DENY);
	free(js);
	claims_free(&c);
	gw_pol_free(set);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_eval_table),
	    cmocka_unit_test(test_sub_field_only),
	    cmocka_unit_test(test_null_inputs_deny),
	    cmocka_unit_test(test_effect_names),
	    cmocka_unit_test(test_load_errors),
	    cmocka_unit_test(test_load_controls),
	    cmocka_unit_test(test_bad_names),
	    cmocka_unit_test(test_nul_byte),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_pathological_glob),
	    cmocka_unit_test_setup_teardown(test_empty_dir_denies, tmpdir_setup,
	                                    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_missing_dir, tmpdir_setup,
	                                    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_deny_across_files,
	                                    tmpdir_setup, tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_dir_selection, tmpdir_setup,
	                                    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_too_large_file, tmpdir_setup,
	                                    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_revision, tmpdir_setup,
	                                    tmpdir_teardown),
	    cmocka_unit_test(test_demo_policy),
	    cmocka_unit_test(test_example_policies),
	    cmocka_unit_test(test_conditions),
	    cmocka_unit_test(test_elements),
	    cmocka_unit_test(test_condition_load_errors),
	    cmocka_unit_test(test_condition_load_controls),
	    cmocka_unit_test(test_hss_keys_match_fields),
	    cmocka_unit_test(test_example_act_for),
	    cmocka_unit_test(test_deciding_statements),
	    cmocka_unit_test(test_explain),
	    cmocka_unit_test(test_check_warnings),
	    cmocka_unit_test(test_variable_too_long),
	    cmocka_unit_test(test_unusable_client_addr),
	    cmocka_unit_test(test_unusable_client_addr_explained),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
