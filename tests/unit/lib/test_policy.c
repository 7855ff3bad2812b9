/*
 * Policy engine tests, loading and evaluation: evaluation rules as tables
 * (deny wins, default deny, wildcards, claims as text), every load error,
 * the caps, the glob's worst case, directory loading, the revision and
 * the shipped policies/ document.  Conditions are in test_policy_cond.c;
 * explain, check and policies/examples/ in test_policy_explain.c.  Attack
 * tests name the gap they pin and carry a positive control.
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

#include "policy_fixture.h"

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

	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) <
	            sizeof(path));
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
