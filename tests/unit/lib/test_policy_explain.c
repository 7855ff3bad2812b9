/*
 * Policy engine tests, explain, check and the shipped examples: the JSON
 * explanation of a decision (deciding, applied and not applied statements,
 * the failed element, missing keys), the warnings of `hssgw policy check`,
 * and policies/examples/ loaded together as an operator would, with each
 * example's allow and deny, hss:ActForSubject, the guardrail Denies winning
 * over other files' Allows and the examples passing check cleanly.
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

#include <json-c/json.h>

#include "policy_fixture.h"

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_example_policies),
	    cmocka_unit_test(test_example_act_for),
	    cmocka_unit_test(test_explain),
	    cmocka_unit_test(test_check_warnings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
