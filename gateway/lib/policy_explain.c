/*
 * Explain and check, for the CLI and tests: gw_pol_explain reruns the
 * evaluation (pol_run) with an explainer and reports, as JSON, why each
 * statement applied or not; gw_pol_check warns about statements that can
 * never apply.  Unlike evaluation these allocate; they must never be on
 * the request path, and never decide differently from gw_pol_eval.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "policy_int.h"

/* ---- explain: allocates, for the CLI and tests ---- */

struct xstate {
	struct explainer base;
	struct json_object *applied, *not_applied;
	unsigned char missing[GW_POL_KEYS_MAX];
	int nomem;
};

static int
jadd(struct json_object *o, const char *k, struct json_object *v)
{
	if (v == NULL || json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static int
jstr(struct json_object *o, const char *k, const char *s)
{
	return jadd(o, k, json_object_new_string(s));
}

static int
jpush(struct json_object *a, struct json_object *v)
{
	if (v == NULL || json_object_array_add(a, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/* Marks in miss[] each key the statement reads that the request lacks. */
static void
stmt_missing(struct ev *e, const struct stmt *st, unsigned char *miss)
{
	const struct plist *lists[2] = {&st->resources, NULL};
	size_t i, j, k;

	for (i = 0; i < st->nconds; i++) {
		if (pol_lookup(e, st->conds[i].key)->n == 0)
			miss[st->conds[i].key] = 1;
		for (j = 0; j < st->conds[i].n; j++)
			for (k = 0; k < st->conds[i].v[j].pat.nparts; k++)
				if (st->conds[i].v[j].pat.parts[k].var &&
				    pol_lookup(
				        e, st->conds[i].v[j].pat.parts[k].key)
				            ->n == 0)
					miss[st->conds[i]
					         .v[j]
					         .pat.parts[k]
					         .key] = 1;
	}
	for (i = 0; lists[i] != NULL; i++)
		for (j = 0; j < lists[i]->n; j++)
			for (k = 0; k < lists[i]->v[j].nparts; k++)
				if (lists[i]->v[j].parts[k].var &&
				    pol_lookup(e, lists[i]->v[j].parts[k].key)
				            ->n == 0)
					miss[lists[i]->v[j].parts[k].key] = 1;
}

static void
x_stmt(struct explainer *base, struct ev *e, const struct stmt *st, int applied)
{
	struct xstate *x = (struct xstate *)base;
	struct json_object *o = NULL, *keys = NULL;
	unsigned char miss[GW_POL_KEYS_MAX];
	size_t k;

	memset(miss, 0, sizeof(miss));
	stmt_missing(e, st, miss);
	o = json_object_new_object();
	if (o == NULL || jstr(o, "file", st->file) == -1 ||
	    jstr(o, "sid", st->sid) == -1 ||
	    jstr(o, "effect", st->effect == GW_POL_ALLOW ? "Allow" : "Deny") ==
	        -1)
		goto nomem;
	if (!applied) {
		if (jstr(o, "failed",
		         e->tr->cond != NULL ? e->tr->cond->path : e->tr->el) ==
		        -1 ||
		    jstr(o, "reason", e->tr->why) == -1)
			goto nomem;
		keys = json_object_new_array();
		if (jadd(o, "missing_keys", keys) == -1)
			goto nomem;
		for (k = 0; k < e->set->nkeys; k++)
			if (miss[k] &&
			    jpush(keys, json_object_new_string(
			                    e->set->keys[k].name)) == -1)
				goto nomem;
	}
	for (k = 0; k < e->set->nkeys; k++)
		x->missing[k] |= miss[k];
	if (jpush(applied ? x->applied : x->not_applied, o) == -1) {
		o = NULL;
		goto nomem;
	}
	return;
nomem:
	json_object_put(o);
	x->nomem = 1;
}

char *
gw_pol_explain(const struct gw_pol_set *set, const struct gw_pol_request *req,
               struct gw_pol_decision *out)
{
	struct json_object *root = NULL, *dec = NULL, *keys = NULL, *r = NULL;
	struct gw_pol_decision d;
	struct xstate x;
	char *ret = NULL;
	size_t i;

	memset(&x, 0, sizeof(x));
	x.base.fn = x_stmt;
	root = json_object_new_object();
	x.applied = json_object_new_array();
	x.not_applied = json_object_new_array();
	if (root == NULL || x.applied == NULL || x.not_applied == NULL)
		goto out;
	pol_run(set, req, &d, &x.base);
	if (out != NULL)
		*out = d;
	if (x.nomem || jstr(root, "decision", gw_pol_effect_name(d.effect)) ||
	    jstr(root, "revision", gw_pol_revision(set)) == -1 ||
	    jstr(root, "action",
	         req != NULL && req->action ? req->action : "") == -1 ||
	    jstr(root, "resource",
	         req != NULL && req->resource ? req->resource : "") == -1)
		goto out;
	dec = json_object_new_array();
	if (jadd(root, "deciding", dec) == -1)
		goto out;
	for (i = 0; i < d.ndeciding; i++) {
		r = json_object_new_object();
		if (r == NULL || jstr(r, "file", d.deciding[i].file) == -1 ||
		    jstr(r, "sid", d.deciding[i].sid) == -1 ||
		    jpush(dec, r) == -1) {
			json_object_put(r);
			goto out;
		}
	}
	if (jadd(root, "applied", x.applied) == -1) {
		x.applied = NULL;
		goto out;
	}
	x.applied = NULL;
	if (jadd(root, "not_applied", x.not_applied) == -1) {
		x.not_applied = NULL;
		goto out;
	}
	x.not_applied = NULL;
	keys = json_object_new_array();
	if (jadd(root, "missing_keys", keys) == -1)
		goto out;
	for (i = 0; set != NULL && i < set->nkeys; i++)
		if (x.missing[i] && jpush(keys, json_object_new_string(
		                                    set->keys[i].name)) == -1)
			goto out;
	ret = gw_strdup(json_object_to_json_string_ext(
	    root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	              JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(x.applied);
	json_object_put(x.not_applied);
	json_object_put(root);
	return ret;
}

/* ---- check: warnings about statements that can never apply ---- */

static int warn(struct gw_buf *, const struct stmt *, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
warn(struct gw_buf *b, const struct stmt *st, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gw_buf_printf(b, "%s: %s (%s): warning: %s\n", st->file, st->path,
	              st->sid, msg);
	return 1;
}

/* Whether a variable-free pattern list matches every text in probes. */
static int
covers(const struct plist *l, const char *const *probes, size_t n, int icase)
{
	size_t i, j;
	int hit;

	for (i = 0; i < n; i++) {
		hit = 0;
		for (j = 0; j < l->n && !hit; j++)
			hit =
			    !l->v[j].has_vars &&
			    pol_wmatch(l->v[j].text, l->v[j].wild, l->v[j].len,
			               probes[i], strlen(probes[i]), icase);
		if (!hit)
			return 0;
	}
	return 1;
}

static const char *const res_probes[] = {"hss:cn-north-4:demo", "hss:a:b",
                                         "hss:ap-southeast-1:Prod_x.y-z"};
#define NRES_PROBES (sizeof(res_probes) / sizeof(res_probes[0]))

/* A plain (no qualifier, no IfExists, not negated) numeric/date bound. */
static int
plain_bound(const struct cond *c)
{
	return c->qual == Q_NONE && !c->ifexists && !c->op->negated &&
	       (c->op->type == VT_NUMERIC || c->op->type == VT_DATE);
}

/* Lower and upper bounds a plain condition puts on its key. */
static void
bounds(const struct cond *c, long long *lo, long long *hi)
{
	long long v = c->v[0].num;
	size_t i;

	/* Values are ORed: the loosest one bounds. */
	for (i = 1; i < c->n; i++)
		if ((c->op->cmp == CMP_GT || c->op->cmp == CMP_GE)
		        ? c->v[i].num < v
		        : c->v[i].num > v)
			v = c->v[i].num;
	*lo = LLONG_MIN;
	*hi = LLONG_MAX;
	switch (c->op->cmp) {
	case CMP_GT:
		*lo = v == LLONG_MAX ? v : v + 1;
		break;
	case CMP_GE:
		*lo = v;
		break;
	case CMP_LT:
		*hi = v == LLONG_MIN ? v : v - 1;
		break;
	case CMP_LE:
		*hi = v;
		break;
	default:
		if (c->n == 1) {
			*lo = v;
			*hi = v;
		}
	}
}

static size_t
check_conds(const struct gw_pol_set *set, const struct stmt *st, int64_t now_ms,
            struct gw_buf *b)
{
	const struct cond *c = NULL, *d = NULL;
	const char *kname = NULL;
	long long lo, hi, lo2, hi2;
	size_t i, j, n = 0;

	for (i = 0; i < st->nconds; i++) {
		c = &st->conds[i];
		kname = set->keys[c->key].name;
		if (plain_bound(c) && c->op->type == VT_DATE &&
		    strcmp(kname, "gw:current_time") == 0) {
			bounds(c, &lo, &hi);
			if (hi < now_ms)
				n += warn(b, st,
				          "%s: every date is in the past: the "
				          "statement no longer applies",
				          c->path);
		}
		if (c->qual == Q_ALL && !c->ifexists &&
		    st->effect == GW_POL_ALLOW)
			n += warn(b, st,
			          "%s: ForAllValues also holds when %s is "
			          "missing or empty; add a Null condition",
			          c->path, kname);
		for (j = i + 1; j < st->nconds; j++) {
			d = &st->conds[j];
			if (d->key != c->key)
				continue;
			if (c->op->type == VT_NULL && d->op->type == VT_NULL &&
			    c->v[0].num != d->v[0].num)
				n += warn(b, st,
				          "%s and %s contradict: the statement "
				          "can never apply",
				          c->path, d->path);
			if ((c->op->type == VT_NULL && c->v[0].num &&
			     d->op->type != VT_NULL && !d->ifexists &&
			     !d->op->negated && d->qual != Q_ALL) ||
			    (d->op->type == VT_NULL && d->v[0].num &&
			     c->op->type != VT_NULL && !c->ifexists &&
			     !c->op->negated && c->qual != Q_ALL))
				n += warn(
				    b, st,
				    "%s and %s contradict (the key must be "
				    "both missing and present): the "
				    "statement can never apply",
				    c->path, d->path);
			if (plain_bound(c) && plain_bound(d) &&
			    c->op->type == d->op->type) {
				bounds(c, &lo, &hi);
				bounds(d, &lo2, &hi2);
				if ((lo > lo2 ? lo : lo2) >
				    (hi < hi2 ? hi : hi2))
					n += warn(
					    b, st,
					    "%s and %s admit no value: the "
					    "statement can never apply",
					    c->path, d->path);
			}
		}
	}
	return n;
}

/* An unconditional Deny of everything for everyone. */
static int
denies_all(const struct stmt *st)
{
	return st->effect == GW_POL_EXPLICIT_DENY && st->principal.any &&
	       !st->not_principal && !st->not_action && !st->not_resource &&
	       st->nconds == 0 &&
	       covers(&st->actions, pol_known_actions, POL_NKNOWN_ACTIONS, 1) &&
	       covers(&st->resources, res_probes, NRES_PROBES, 0);
}

/*
 * An Allow that grants hss:ActForSubject through a wildcard or NotAction:
 * its principals may see and download other subjects' export tasks,
 * which the author may not have meant (docs/TASKS.md).
 */
static int
acts_for_by_wildcard(const struct stmt *st)
{
	static const char *const act_for[] = {"hss:ActForSubject"};
	static const char *const others[] = {"hss:ExportImageBaseline"};

	if (st->effect != GW_POL_ALLOW)
		return 0;
	if (st->not_action)
		return !covers(&st->actions, act_for, 1, 1);
	return covers(&st->actions, act_for, 1, 1) &&
	       covers(&st->actions, others, 1, 1);
}

size_t
gw_pol_check(const struct gw_pol_set *set, int64_t now_ms, struct gw_buf *b)
{
	const struct stmt *st = NULL, *all = NULL;
	size_t i, n = 0;

	if (set == NULL || b == NULL)
		return 0;
	for (i = 0; i < set->n && all == NULL; i++)
		if (denies_all(&set->st[i]))
			all = &set->st[i];
	for (i = 0; i < set->n; i++) {
		st = &set->st[i];
		if (st->not_action && covers(&st->actions, pol_known_actions,
		                             POL_NKNOWN_ACTIONS, 1))
			n += warn(b, st,
			          "NotAction excludes every known action: the "
			          "statement can never apply");
		if (st->not_resource &&
		    covers(&st->resources, res_probes, NRES_PROBES, 0))
			n += warn(b, st,
			          "NotResource excludes every resource: the "
			          "statement can never apply");
		if (st->not_principal && st->principal.any)
			n += warn(b, st,
			          "NotPrincipal \"*\" excludes every caller: "
			          "the statement can never apply");
		if (st->effect == GW_POL_ALLOW && all != NULL)
			n += warn(b, st,
			          "%s %s denies everything: this Allow can "
			          "never decide",
			          all->file, all->sid);
		if (acts_for_by_wildcard(st))
			n += warn(b, st,
			          "this Allow also grants hss:ActForSubject: "
			          "its principals may see and download other "
			          "subjects' export tasks; list the actions it "
			          "needs instead");
		if (st->effect == GW_POL_EXPLICIT_DENY && st->has_vars)
			n += warn(
			    b, st,
			    "a Deny with a policy variable does not apply "
			    "when the variable cannot be resolved; give it "
			    "a default (${key, 'x'}) or add a Null "
			    "condition");
		n += check_conds(set, st, now_ms, b);
	}
	return n;
}
