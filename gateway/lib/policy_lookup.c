/*
 * A request's values for a condition key (policy_int.h pol_lookup): a
 * claim (iss, sub and jti from their own fields too) or a context key,
 * looked up case-insensitively as IAM does, on first use, then read from
 * the request's view cache.  The evaluator (policy_eval.c), the
 * pre-filter (policy_index.c) and the explainer all read keys through
 * it.  It owns nothing, must never allocate, and borrows every value from
 * the request.
 */
#include <string.h>

#include "policy_int.h"

static void
resolve_claim(const struct gw_claims *cl, const char *name, int exact,
              struct view *vw)
{
	size_t i;

	if (cl == NULL)
		return;
	/* Condition keys are case-insensitive in IAM, claims included. */
	for (i = 0; i < cl->n; i++) {
		if (cl->v[i].name == NULL ||
		    !pol_name_eq(cl->v[i].name, name, exact))
			continue;
		if (cl->v[i].values == NULL)
			return;
		vw->v = (const char *const *)cl->v[i].values;
		vw->n = cl->v[i].nvalues;
		return;
	}
	/* iss, sub and jti also live in their own fields. */
	if (pol_name_eq(name, "iss", exact))
		vw->one = cl->iss;
	else if (pol_name_eq(name, "sub", exact))
		vw->one = cl->sub;
	else if (pol_name_eq(name, "jti", exact))
		vw->one = cl->jti;
	if (vw->one != NULL) {
		vw->v = &vw->one;
		vw->n = 1;
	}
}

static struct view *
resolve(struct ev *e, size_t k)
{
	const struct keydef *kd = &e->set->keys[k];
	struct view *vw = &e->views[k];
	size_t i;

	e->done[k] = 1;
	memset(vw, 0, sizeof(*vw));
	if (kd->src != KS_CTX) {
		resolve_claim(e->req->claims, kd->name + 4,
		              kd->src == KS_PCLAIM, vw);
		if (vw->n > 0 && vw->v[0] != NULL)
			vw->len0 = strlen(vw->v[0]);
		return vw;
	}
	for (i = 0; i < e->req->nctx; i++) {
		if (e->req->ctx[i].key == NULL ||
		    !pol_ieq(e->req->ctx[i].key, kd->name))
			continue;
		if (e->req->ctx[i].values != NULL) {
			vw->v = e->req->ctx[i].values;
			vw->n = e->req->ctx[i].nvalues;
		}
		break;
	}
	if (vw->n > 0 && vw->v[0] != NULL)
		vw->len0 = strlen(vw->v[0]);
	return vw;
}

/* A key's values, resolved on first use and then read from the cache. */
struct view *
pol_lookup(struct ev *e, size_t k)
{
	if (e->done[k])
		return &e->views[k];
	return resolve(e, k);
}
