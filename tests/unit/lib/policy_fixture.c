/*
 * Helpers shared by the policy engine tests; see policy_fixture.h.
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

#include "policy_fixture.h"

/* ---- claims from a compact spec: "sub=dev-alice;groups=[a,b];n=5" ---- */

void
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
void
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

enum gw_pol_effect
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

struct gw_pol_set *
load(const char *json)
{
	char err[512] = "";
	struct gw_pol_set *set;

	set = gw_pol_load_buf("t.json", json, strlen(json), err, sizeof(err));
	if (set == NULL)
		fail_msg("load failed: %s", err);
	return set;
}

void
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

struct gw_pol_set *
load_dir(const char *dir)
{
	struct gw_pol_set *set;
	char err[512] = "";

	set = gw_pol_load_dir(dir, err, sizeof(err));
	if (set == NULL)
		fail_msg("load_dir %s: %s", dir, err);
	return set;
}

/* ---- conditions: request context from a compact spec ---- */

void
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

enum gw_pol_effect
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
