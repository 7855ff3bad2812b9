/*
 * Policy engine tests, conditions: every condition operator with IAM's
 * rules for missing keys, IfExists, Null, negation and set qualifiers,
 * policy variables (and their length limit), NotAction, NotResource and
 * NotPrincipal, condition load errors, the hss: keys against translation's
 * fields, the deciding statements, and unusable client addresses (issue
 * #11 item 9).  Attack tests name the gap they pin and carry a positive
 * control.
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

#include "fields.h"
#include "policy_fixture.h"

struct cond_case {
	const char *name;
	const char *cond; /* the Condition object */
	const char *claims;
	const char *ctx;
	int want; /* 1: the statement applies */
};

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
	    cmocka_unit_test(test_conditions),
	    cmocka_unit_test(test_elements),
	    cmocka_unit_test(test_condition_load_errors),
	    cmocka_unit_test(test_condition_load_controls),
	    cmocka_unit_test(test_hss_keys_match_fields),
	    cmocka_unit_test(test_deciding_statements),
	    cmocka_unit_test(test_variable_too_long),
	    cmocka_unit_test(test_unusable_client_addr),
	    cmocka_unit_test(test_unusable_client_addr_explained),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
