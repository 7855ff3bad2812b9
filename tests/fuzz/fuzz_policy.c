/*
 * libFuzzer harness for the policy loader: each input is one document,
 * compiled from memory with gw_pol_load_buf and, when it loads, evaluated
 * against a few fixed requests with a condition context, explained (the
 * explanation, which visits every statement, must agree with the
 * evaluation, which visits only those the pre-filter leaves, on the whole
 * deciding list) and checked.  Seeds:
 * policies/demo.json and policies/examples/.  Aborts on a broken invariant
 * so the fuzzer reports it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char *groups[] = {"hss-exporters", "suspended", "*"};
static char *tenant[] = {"5"};
static char name_groups[] = "groups";
static char name_tenant[] = "tenant_id";
static char sub[] = "dev-alice";

static struct gw_claim claim_v[] = {
    {name_groups, groups, 3, 1},
    {name_tenant, tenant, 1, 0},
};

static const struct gw_claims claims = {
    .sub = sub,
    .v = claim_v,
    .n = 2,
};

static const char *const ns[] = {"red-web"};
static const char *const esize[] = {"100"};
static const char *const ids[] = {"a", "b"};
static const char *const ip[] = {"10.1.2.3"};
/* An unusable address: address conditions resolve by the effect. */
static const char *const badip[] = {"unix:"};
static const char *const now[] = {"2026-03-02T10:00:00.000Z"};
static const struct gw_kv ctx[] = {
    {"hss:namespace", ns, 1},      {"hss:export_size", esize, 1},
    {"hss:image_id_list", ids, 2}, {"hss:vul_id_list", ids, 0},
    {"gw:client_ip", ip, 1},       {"gw:current_time", now, 1},
};
static const struct gw_kv ctx_badip[] = {
    {"hss:namespace", ns, 1},      {"hss:export_size", esize, 1},
    {"hss:image_id_list", ids, 2}, {"hss:vul_id_list", ids, 0},
    {"gw:client_ip", badip, 1},    {"gw:current_time", now, 1},
};

static const char *const actions[] = {"hss:ExportImageBaseline",
                                      "HSS:GETEXPORTTASK",
                                      "hss:downloadexportfile", "HSS:X", ""};
static const char *const resources[] = {"hss:cn-north-4:demo", "hss::", ""};

static int
same(const struct gw_pol_decision *a, const struct gw_pol_decision *b)
{
	size_t i;

	if (a->effect != b->effect || a->ndeciding != b->ndeciding ||
	    a->ndeciding_total != b->ndeciding_total ||
	    strcmp(a->sid, b->sid) != 0)
		return 0;
	for (i = 0; i < a->ndeciding; i++)
		if (strcmp(a->deciding[i].sid, b->deciding[i].sid) != 0)
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_pol_request req = {0};
	struct gw_pol_decision d, dx;
	struct gw_pol_set *set = NULL;
	struct gw_buf b;
	char err[512], *js = NULL;
	size_t i, j, k;

	set = gw_pol_load_buf("fuzz.json", (const char *)data, size, err,
	                      sizeof(err));
	if (set == NULL) {
		if (err[0] == '\0')
			abort(); /* every failure must say why */
		return 0;
	}
	if (strlen(gw_pol_revision(set)) != 64 || gw_pol_count(set) == 0 ||
	    gw_pol_count(set) > GW_POL_STATEMENTS_MAX)
		abort();
	req.claims = &claims;
	req.nctx = sizeof(ctx) / sizeof(ctx[0]);
	/* Eval (memoised) and explain (not) must agree on both contexts. */
	for (k = 0; k < 2; k++) {
		for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
			for (j = 0;
			     j < sizeof(resources) / sizeof(resources[0]);
			     j++) {
				req.ctx = k == 0 ? ctx : ctx_badip;
				req.action = actions[i];
				req.resource = resources[j];
				gw_pol_eval(set, &req, &d);
				if ((unsigned)d.effect >= GW_POL_EFFECT__MAX)
					abort();
				if (d.effect == GW_POL_IMPLICIT_DENY &&
				    (d.file[0] != '\0' || d.sid[0] != '\0'))
					abort();
				if (d.effect != GW_POL_IMPLICIT_DENY &&
				    (strcmp(d.file, "fuzz.json") != 0 ||
				     d.ndeciding == 0 ||
				     d.ndeciding > GW_POL_DECIDING_MAX))
					abort();
				/* Every deciding statement was a candidate. */
				if (gw_pol_candidates(set, &req) <
				        d.ndeciding_total ||
				    gw_pol_candidates(set, &req) >
				        gw_pol_count(set))
					abort();
				js = gw_pol_explain(set, &req, &dx);
				if (js == NULL || !same(&d, &dx))
					abort();
				free(js);
			}
		}
	}
	gw_buf_init(&b, 1 << 20);
	(void)gw_pol_check(set, 1767225600000LL, &b);
	gw_buf_reset(&b);
	gw_pol_free(set);
	return 0;
}
