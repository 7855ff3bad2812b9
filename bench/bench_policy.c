/*
 * Policy evaluation time per request: a set of 200 statements, each with
 * a Principal, a Resource pattern with a policy variable and three
 * conditions (StringLike with ${jwt:team}, NumericLessThanEquals,
 * NotIpAddress).  The worst case: every statement's Principal and Resource
 * match, so every one reaches its conditions; measured against a
 * 1-statement set in the same run.  Then the common case: each statement
 * names its own group, so the pre-filter leaves only the statement naming
 * the caller's group.  Prints numbers, asserts nothing.  Run:
 *
 *   cmake -S . -B build-benchpol -DCMAKE_BUILD_TYPE=Release \
 *       -DHSSGW_TESTS=OFF -DHSSGW_BENCH=ON
 *   cmake --build build-benchpol --target bench_policy
 *   build-benchpol/bin/bench_policy [ITERS]      (default 200000)
 *
 * Instruction counts, which the machine's load does not change, one
 * callgrind profile per case (1 statement, worst, common), each holding
 * gw_pol_eval's calls and inclusive cost:
 *
 *   valgrind --tool=callgrind --dump-after='measure*' \
 *       build-benchpol/bin/bench_policy 2000
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define ITERS_DEFAULT 200000

static long long iters = ITERS_DEFAULT;

static const char stmt_fmt[] =
    "%s{\"Sid\":\"S%d\",\"Effect\":\"%s\",\"Principal\":{\"jwt:groups\":"
    "[\"team-%s\",\"ops\"]},\"Action\":\"hss:Export*\",\"Resource\":"
    "\"hss:*:${jwt:team}\",\"Condition\":{\"StringLike\":{\"hss:namespace\":"
    "[\"${jwt:team}-%d-*\",\"${jwt:team}\"]},\"NumericLessThanEquals\":"
    "{\"hss:export_size\":%d},\"NotIpAddress\":{\"gw:client_ip\":"
    "[\"203.0.113.0/24\",\"198.51.100.0/24\"]}}}";

/* shared: every statement names the same groups (all reach conditions). */
static struct gw_pol_set *
make_set(int n, int shared)
{
	char grp[16];
	struct gw_pol_set *set = NULL;
	struct gw_buf b;
	char err[512];
	int i;

	gw_buf_init(&b, 1 << 20);
	gw_buf_puts(&b, "{\"Version\":\"2012-10-17\",\"Statement\":[");
	for (i = 0; i < n; i++) {
		snprintf(grp, sizeof(grp), "%d", i);
		gw_buf_printf(&b, stmt_fmt, i ? "," : "", i,
		              i % 10 == 9 ? "Deny" : "Allow",
		              shared ? "*" : grp, i, 100 + i);
	}
	gw_buf_puts(&b, "]}");
	set = gw_pol_load_buf("bench.json", b.p, b.len, err, sizeof(err));
	if (set == NULL)
		fprintf(stderr, "bench_policy: %s\n", err);
	gw_buf_reset(&b);
	return set;
}

/*
 * Mean nanoseconds per evaluation.  Never inlined, so that valgrind
 * --tool=callgrind --dump-after=measure writes one profile per case.
 */
static __attribute__((noinline)) double
measure(const struct gw_pol_set *set, const struct gw_pol_request *req,
        int *effect)
{
	struct gw_pol_decision d;
	int64_t t0, t1;
	long long i;

	for (i = 0; i < iters / 10; i++)
		gw_pol_eval(set, req, &d);
	t0 = gw_mono_us();
	for (i = 0; i < iters; i++)
		gw_pol_eval(set, req, &d);
	t1 = gw_mono_us();
	*effect = (int)d.effect;
	return (double)(t1 - t0) * 1000.0 / (double)iters;
}

int
main(int argc, char *argv[])
{
	static char *groups[] = {"dev", "team-150"};
	static char *team[] = {"red"};
	static char gname[] = "groups", tname[] = "team", sub[] = "alice";
	static struct gw_claim cv[] = {{gname, groups, 2, 1},
	                               {tname, team, 1, 0}};
	static const char *ns[] = {"red-150-web"}, *size[] = {"100"};
	static const char *ip[] = {"10.1.2.3"};
	static const char *now[] = {"2026-03-02T10:00:00.000Z"};
	static const char *region[] = {"cn-north-4"}, *proj[] = {"red"};
	static const struct gw_kv ctx[] = {
	    {"hss:project", proj, 1},     {"hss:region", region, 1},
	    {"hss:export_size", size, 1}, {"hss:namespace", ns, 1},
	    {"gw:client_ip", ip, 1},      {"gw:current_time", now, 1},
	};
	struct gw_claims claims = {0};
	struct gw_pol_request req = {0};
	struct gw_pol_set *one = NULL, *many = NULL, *own = NULL;
	double base, full, typ;
	int e1 = 0, e2 = 0, e3 = 0;

	if (argc > 1 && gw_strtonum(argv[1], 1, 1000000000, &iters) == -1) {
		fprintf(stderr, "usage: bench_policy [ITERS]\n");
		return 2;
	}
	claims.sub = sub;
	claims.v = cv;
	claims.n = 2;
	req.claims = &claims;
	req.action = "hss:ExportImageBaseline";
	req.resource = "hss:cn-north-4:red";
	req.ctx = ctx;
	req.nctx = sizeof(ctx) / sizeof(ctx[0]);
	one = make_set(1, 1);
	many = make_set(200, 1);
	own = make_set(200, 0);
	if (one == NULL || many == NULL || own == NULL)
		return 1;
	base = measure(one, &req, &e1);
	full = measure(many, &req, &e2);
	typ = measure(own, &req, &e3);
	printf("bench_policy: %lld evaluations each\n", iters);
	printf("  1 statement:    %8.0f ns/eval (%s)\n", base,
	       gw_pol_effect_name((enum gw_pol_effect)e1));
	printf("  200 statements: %8.0f ns/eval (%s), %.1f us; target < 5 "
	       "us\n",
	       full, gw_pol_effect_name((enum gw_pol_effect)e2), full / 1000.0);
	printf("  per statement:  %8.1f ns over the 1-statement baseline\n",
	       (full - base) / 199.0);
	printf("  200 statements, one group each (Principal filters): %.0f "
	       "ns/eval (%s)\n",
	       typ, gw_pol_effect_name((enum gw_pol_effect)e3));
	printf("  statements the pre-filter leaves: %zu of 200 (every one "
	       "reaches its conditions), %zu of 200 (one group each)\n",
	       gw_pol_candidates(many, &req), gw_pol_candidates(own, &req));
	gw_pol_free(one);
	gw_pol_free(many);
	gw_pol_free(own);
	return 0;
}
