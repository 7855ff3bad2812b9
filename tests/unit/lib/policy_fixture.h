/*
 * Shared helpers of the policy engine tests (test_policy.c,
 * test_policy_cond.c, test_policy_explain.c): claims and request context
 * from compact specs, loading a document or a directory, the error-case
 * table type and the macros that build policy documents.
 */
#ifndef HSSGW_TESTS_POLICY_FIXTURE_H
#define HSSGW_TESTS_POLICY_FIXTURE_H

#include <stddef.h>

#include "policy.h"

#define DOC(stmts) "{\"Version\":\"2012-10-17\",\"Statement\":[" stmts "]}"
#define ALLOW_ALL                                                              \
	"{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","          \
	"\"Resource\":\"*\"}"
#define EXPORT   "hss:ExportImageBaseline"
#define DEMO_RES "hss:cn-north-4:demo"
#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define S1(body) DOC("{" body "}")
#define PAR      "\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\""

/* An Allow for everything under one Condition object. */
#define COND(c)                                                                \
	DOC("{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\","      \
	    "\"Resource\":\"*\",\"Condition\":" c "}")

#define NS_TEAM "{\"StringLike\":{\"hss:namespace\":\"${jwt:team}-*\"}}"

#define NOW_2026 1767225600000LL /* 2026-01-01T00:00:00Z */

struct err_case {
	const char *name;
	const char *json;
	const char *want; /* exact message, or a prefix ending in '*' */
};

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

void claims_free(struct gw_claims *c);
void claims_parse(struct gw_claims *c, const char *spec);
enum gw_pol_effect eval_spec(const struct gw_pol_set *set, const char *spec,
                             const char *action, const char *resource,
                             struct gw_pol_decision *d);
struct gw_pol_set *load(const char *json);
struct gw_pol_set *load_dir(const char *dir);
void check_err(const char *name, const char *got, const char *want);
void ctx_parse(struct ctxspec *cs, const char *spec);
enum gw_pol_effect eval_ctx(const struct gw_pol_set *set, const char *claims,
                            const char *ctx, const char *resource,
                            struct gw_pol_decision *d);

#endif
