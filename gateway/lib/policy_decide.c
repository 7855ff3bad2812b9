/*
 * The decision as the gateway makes it, in one place: the request context
 * plus the gw: keys, hss:ActForSubject before a task route's own action
 * when the caller is not the task's creator, then the action.  The
 * server's routes, `hssgw policy test` and `hssgw policy replay` all call
 * gw_pol_decide, so a tested or replayed decision is the enforced one.
 * With an applied array it also marks every statement that applied
 * (coverage); the decision is pol_run's either way.
 */
#include <string.h>

#include "policy_int.h"

#define ACTION_ACT_FOR "hss:ActForSubject"

/* Marks the statements that applied (pol_run's explainer). */
struct cover {
	struct explainer base;
	const struct gw_pol_set *set;
	unsigned char *applied;
};

static void
cover_stmt(struct explainer *base, struct ev *e, const struct stmt *st,
           int applied)
{
	struct cover *c = (struct cover *)base;
	size_t i = (size_t)(st - c->set->st);

	(void)e;
	if (applied && i < c->set->n)
		c->applied[i] = 1;
}

static void
eval(const struct gw_pol_set *set, const struct gw_pol_request *req,
     unsigned char *applied, struct gw_pol_decision *out)
{
	struct cover c;

	if (applied == NULL || set == NULL) {
		gw_pol_eval(set, req, out);
		return;
	}
	c.base.fn = cover_stmt;
	c.set = set;
	c.applied = applied;
	pol_run(set, req, out, &c.base);
}

/* The caller is the task's creator (tasks.c gw_task_is_creator's rule). */
static int
is_creator(const struct gw_pol_input *in)
{
	const struct gw_claims *c = in->claims;

	return c != NULL && c->iss != NULL && c->sub != NULL &&
	       strcmp(in->task_iss, c->iss) == 0 &&
	       strcmp(in->task_sub, c->sub) == 0;
}

int
gw_pol_decide(const struct gw_pol_set *set, const struct gw_pol_input *in,
              struct gw_pol_verdict *out)
{
	struct gw_pol_request preq;
	struct gw_pol_ctx pctx;

	memset(out, 0, sizeof(*out));
	out->action = in->action;
	if (gw_pol_ctx_build(&pctx, in->ctx, in->nctx, in->now_ms,
	                     in->client_ip) == -1)
		return -1;
	memset(&preq, 0, sizeof(preq));
	preq.claims = in->claims;
	preq.resource = in->resource;
	preq.ctx = pctx.kv;
	preq.nctx = pctx.n;
	if (in->task_iss != NULL && in->task_sub != NULL && !is_creator(in)) {
		preq.action = ACTION_ACT_FOR;
		eval(set, &preq, in->applied, &out->actfor);
		if (out->actfor.effect != GW_POL_ALLOW) {
			/* Decided as what it is: a denied act-for. */
			out->action = ACTION_ACT_FOR;
			out->decision = out->actfor;
			return 0;
		}
		out->acted_for = 1;
	}
	preq.action = in->action;
	eval(set, &preq, in->applied, &out->decision);
	return 0;
}

void
gw_pol_task_ctx_build(struct gw_pol_task_ctx *c, const char *iss,
                      const char *sub, const char *alias, const char *region,
                      const char *eps)
{
	static const char *const names[5] = {
	    "hss:task_issuer", "hss:task_subject", "hss:project", "hss:region",
	    "hss:enterprise_project_id"};
	const char *vals[5];
	size_t i;

	vals[0] = iss;
	vals[1] = sub;
	vals[2] = alias;
	vals[3] = region;
	vals[4] = eps;
	c->n = 0;
	for (i = 0; i < 5; i++) {
		if (vals[i] == NULL)
			continue;
		c->v[c->n] = vals[i];
		c->kv[c->n] = (struct gw_kv){names[i], &c->v[c->n], 1};
		c->n++;
	}
}
