/*
 * Policy evaluation: a pure function of the compiled set and the request.
 * Default deny, any applicable Deny wins, else an applicable Allow;
 * Conditions, NotAction, NotResource, NotPrincipal and policy variables
 * follow AWS IAM's documented semantics.  Only the statements the
 * pre-filter (policy_index.c) leaves are visited; each key's request
 * values are resolved once per request (policy_lookup.c) and parsed once, each
 * distinct element evaluated once (memo ids).  Also the set's accessors and
 * gw_pol_ctx_build.  It must never allocate, log or do I/O (gw_pol_explain,
 * for the CLI, is the one exception, through pol_run's explainer), and
 * never change the set.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "policy_int.h"

static const char *const effect_names[GW_POL_EFFECT__MAX] = {
    [GW_POL_IMPLICIT_DENY] = "implicit_deny",
    [GW_POL_ALLOW] = "allow",
    [GW_POL_EXPLICIT_DENY] = "explicit_deny",
};
_Static_assert(sizeof(effect_names) / sizeof(effect_names[0]) ==
                   GW_POL_EFFECT__MAX,
               "one name per effect");

/*
 * Substitutes a pattern's variables into buf/w (cap bytes each).  A
 * variable resolves when its key has exactly one value (IAM: multivalued
 * keys cannot be variables), else to its default; -1 when one cannot be
 * resolved or the result does not fit: the pattern then matches nothing.
 */
static int
expand(struct ev *e, const struct pat *p, char *buf, unsigned char *w,
       size_t cap, size_t *outlen)
{
	const struct part *pt = NULL;
	const struct view *vw = NULL;
	const char *s = NULL;
	size_t i, len = 0, n;

	for (i = 0; i < p->nparts; i++) {
		pt = &p->parts[i];
		if (!pt->var) {
			if (cap - len < pt->len)
				return -1;
			memcpy(buf + len, p->text + pt->off, pt->len);
			memcpy(w + len, p->wild + pt->off, pt->len);
			len += pt->len;
			continue;
		}
		vw = pol_lookup(e, pt->key);
		if (vw->n == 1 && vw->v[0] != NULL) {
			s = vw->v[0];
			n = strlen(s);
		} else if (pt->def != NULL) {
			s = pt->def;
			n = pt->deflen;
		} else {
			return -1;
		}
		if (cap - len < n)
			return -1;
		memcpy(buf + len, s, n);
		memset(w + len, 0, n);
		len += n;
	}
	*outlen = len;
	return 0;
}

/* The value a variable part resolves to, or NULL. */
static const char *
part_value(struct ev *e, const struct part *pt, size_t *n)
{
	const struct view *vw = pol_lookup(e, pt->key);

	if (vw->n == 1 && vw->v[0] != NULL) {
		*n = vw->len0;
		return vw->v[0];
	}
	*n = pt->deflen;
	return pt->def;
}

/*
 * Matches a PK_LIT or PK_PREFIX pattern with variables piece by piece,
 * without substituting into a buffer: 1, 0, or -1 when a variable cannot
 * be resolved or the substituted text would pass POL_EXPAND_MAX (exactly
 * when expand() fails, so both paths decide alike).  Without exact, -1 and
 * 0 may be confused (one pass, stopping at the first difference): for
 * callers to whom both mean "does not match".
 */
static int
parts_match(struct ev *e, const struct pat *p, const char *t, size_t tlen,
            int icase, int exact)
{
	const struct part *pt = NULL;
	const char *s = NULL;
	size_t i, n, pos = 0, total = 0;

	for (i = 0; exact && i < p->nparts; i++) {
		n = p->parts[i].len;
		if (p->parts[i].var && part_value(e, &p->parts[i], &n) == NULL)
			return -1;
		total += n;
	}
	if (total > POL_EXPAND_MAX)
		return -1;
	for (i = 0; i < p->nparts; i++) {
		pt = &p->parts[i];
		if (pt->var) {
			s = part_value(e, pt, &n);
			if (s == NULL)
				return -1;
		} else {
			s = p->text + pt->off;
			n = pt->len;
			if (p->kind == PK_PREFIX && i == p->nparts - 1)
				n--;
		}
		if (tlen - pos < n || !(icase ? pol_ieqn(s, t + pos, n)
		                              : pol_bytes_eq(s, t + pos, n)))
			return 0;
		pos += n;
	}
	if (pos + (p->kind == PK_PREFIX) > POL_EXPAND_MAX)
		return -1;
	return p->kind == PK_PREFIX || pos == tlen;
}

/*
 * Whether t matches one pattern of the list; *unresolved is set when a
 * pattern with a variable could not be resolved (it then matches nothing).
 */
static int
plist_match(struct ev *e, const struct plist *l, const char *t, int icase,
            int *unresolved)
{
	char buf[POL_EXPAND_MAX];
	unsigned char w[POL_EXPAND_MAX];
	size_t i, tlen, len;
	int r;

	if (t == NULL)
		return 0;
	tlen = strlen(t);
	for (i = 0; i < l->n; i++) {
		if (!l->v[i].has_vars) {
			if (pol_kmatch(l->v[i].kind, l->v[i].text, l->v[i].wild,
			               l->v[i].len, t, tlen, icase))
				return 1;
			continue;
		}
		if (l->v[i].kind != PK_GEN) {
			r = parts_match(e, &l->v[i], t, tlen, icase, 1);
			if (r == 1)
				return 1;
			*unresolved |= r == -1;
			continue;
		}
		if (expand(e, &l->v[i], buf, w, sizeof(buf), &len) == -1) {
			*unresolved = 1;
			continue;
		}
		if (pol_kmatch(l->v[i].kind, buf, w, len, t, tlen, icase))
			return 1;
	}
	return 0;
}

/*
 * Principal: whether one of the token's values for the claim matches one
 * of the listed values.  A missing claim never matches.  Claim names are
 * matched exactly here, as they always were for Principal.
 */
static int
claim_match(struct ev *e, const struct pclaim *pc)
{
	const struct view *vw = pol_lookup(e, pc->key);
	size_t j;
	int unres = 0;

	for (j = 0; j < vw->n; j++)
		if (plist_match(e, &pc->vals, vw->v[j], 0, &unres))
			return 1;
	return 0;
}

static int
principal_match(struct ev *e, const struct principal *p)
{
	size_t i;

	if (p->any)
		return 1;
	for (i = 0; i < p->n; i++)
		if (!claim_match(e, &p->v[i]))
			return 0;
	return p->n > 0;
}

/* Parses an address; IPv4-mapped IPv6 addresses count as IPv4. */
int
pol_parse_ip(const char *s, struct cidr *out)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
	                                         0, 0, 0, 0, 0xff, 0xff};

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, out->a) == 1) {
		out->af = AF_INET;
		out->bits = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->a) != 1)
		return -1;
	out->af = AF_INET6;
	out->bits = 128;
	if (memcmp(out->a, mapped, sizeof(mapped)) == 0) {
		memmove(out->a, out->a + 12, 4);
		memset(out->a + 4, 0, 12);
		out->af = AF_INET;
		out->bits = 32;
	}
	return 0;
}

static int
in_net(const struct cidr *addr, const struct cidr *net)
{
	unsigned full = net->bits / 8, rest = net->bits % 8;
	unsigned char mask;

	if (addr->af != net->af)
		return 0;
	if (memcmp(addr->a, net->a, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (addr->a[full] & mask) == (net->a[full] & mask);
}

static int
ms_from_secs(long long s, long long *ms)
{
	if (s > LLONG_MAX / 1000 || s < LLONG_MIN / 1000)
		return -1;
	*ms = s * 1000;
	return 0;
}

/*
 * A date: RFC 3339, or an integer: seconds since the epoch as in IAM, or
 * milliseconds for the HSS time fields (time_ms).
 */
int
pol_parse_date(const char *s, int time_ms, long long *ms)
{
	long long n;
	int64_t v;

	if (gw_strtonum(s, LLONG_MIN, LLONG_MAX, &n) == 0) {
		if (time_ms) {
			*ms = n;
			return 0;
		}
		return ms_from_secs(n, ms);
	}
	if (gw_rfc3339_ms(s, &v) == -1)
		return -1;
	*ms = v;
	return 0;
}

int
pol_parse_bool(const char *s, long long *b)
{
	if (pol_ieq(s, "true"))
		*b = 1;
	else if (pol_ieq(s, "false"))
		*b = 0;
	else
		return -1;
	return 0;
}

static int
cmp_num(enum cmp op, long long a, long long b)
{
	switch (op) {
	case CMP_LT:
		return a < b;
	case CMP_LE:
		return a <= b;
	case CMP_GT:
		return a > b;
	case CMP_GE:
		return a >= b;
	default:
		return a == b;
	}
}

static int
str_cmp(const struct cond *c, int kind, const char *p, const unsigned char *w,
        size_t plen, const char *t, size_t tlen)
{
	switch (c->op->cmp) {
	case CMP_EQ_IC:
		return plen == tlen && pol_ieqn(p, t, tlen);
	case CMP_LIKE:
		return pol_kmatch(kind, p, w, plen, t, tlen, 0);
	default:
		return plen == tlen && pol_bytes_eq(p, t, tlen);
	}
}

/*
 * Whether one request value matches one of the condition's values, in the
 * operator's positive sense: 1 or 0, or -1 when the request value is not
 * of the operator's type, or (negated operators) a policy variable could
 * not be resolved.  Either makes the whole condition false.
 */
/*
 * Parses request value i of a key as the operator's type, caching the
 * first value in the view.  0 or -1.
 */
static int
parse_req(struct ev *e, const struct cond *c, struct view *vw, size_t i,
          long long *x, struct cidr *addr)
{
	signed char *st = NULL;
	long long *slot = NULL;
	const char *t = vw->v[i];
	int rc;

	if (t == NULL)
		return -1;
	switch (c->op->type) {
	case VT_NUMERIC:
		st = &vw->st_num;
		slot = &vw->num;
		break;
	case VT_DATE:
		st = &vw->st_date;
		slot = &vw->date;
		break;
	case VT_BOOL:
		st = &vw->st_bool;
		slot = &vw->b;
		break;
	case VT_IP:
		if (i == 0 && vw->st_ip != 0) {
			*addr = vw->ip;
			return vw->st_ip == 1 ? 0 : -1;
		}
		rc = pol_parse_ip(t, addr);
		if (i == 0) {
			vw->ip = *addr;
			vw->st_ip = rc == 0 ? 1 : -1;
		}
		return rc;
	default:
		return -1;
	}
	if (i == 0 && *st != 0) {
		*x = *slot;
		return *st == 1 ? 0 : -1;
	}
	if (c->op->type == VT_NUMERIC)
		rc = gw_strtonum(t, LLONG_MIN, LLONG_MAX, x);
	else if (c->op->type == VT_DATE)
		rc = pol_parse_date(t, e->set->keys[c->key].time_ms, x);
	else
		rc = pol_parse_bool(t, x);
	if (i == 0) {
		*slot = rc == 0 ? *x : 0;
		*st = rc == 0 ? 1 : -1;
	}
	return rc;
}

static int
value_match(struct ev *e, const struct cond *c, struct view *vw, size_t vi)
{
	const char *t = vw->v[vi];
	char buf[POL_EXPAND_MAX];
	unsigned char w[POL_EXPAND_MAX];
	const struct cval *cv = NULL;
	struct cidr addr;
	long long x;
	size_t i, tlen, len;
	int unres = 0, r;

	if (t == NULL)
		return -1;
	switch (c->op->type) {
	case VT_STRING:
		tlen = vi == 0 ? vw->len0 : strlen(t);
		for (i = 0; i < c->n; i++) {
			cv = &c->v[i];
			if (!cv->pat.has_vars) {
				if (str_cmp(c, cv->pat.kind, cv->pat.text,
				            cv->pat.wild, cv->pat.len, t, tlen))
					return 1;
				continue;
			}
			if (cv->pat.kind != PK_GEN) {
				/* Only negated operators tell -1 from 0. */
				r = parts_match(e, &cv->pat, t, tlen,
				                c->op->cmp == CMP_EQ_IC,
				                c->op->negated);
				if (r == 1)
					return 1;
				unres |= r == -1;
				continue;
			}
			if (expand(e, &cv->pat, buf, w, sizeof(buf), &len) ==
			    -1) {
				unres = 1;
				continue;
			}
			if (str_cmp(c, cv->pat.kind, buf, w, len, t, tlen))
				return 1;
		}
		if (unres) {
			e->why = "a policy variable could not be resolved";
			/* IAM: the element with the variable does not match. */
			return c->op->negated ? -1 : 0;
		}
		return 0;
	case VT_NUMERIC:
	case VT_DATE:
	case VT_BOOL:
		if (parse_req(e, c, vw, vi, &x, &addr) == -1)
			goto badtype;
		break;
	case VT_IP:
		if (parse_req(e, c, vw, vi, &x, &addr) == -1) {
			e->why = "the address is not a usable IP address";
			return -2;
		}
		for (i = 0; i < c->n; i++)
			if (in_net(&addr, &c->v[i].net))
				return 1;
		return 0;
	default:
		return -1;
	}
	for (i = 0; i < c->n; i++)
		if (cmp_num(c->op->cmp, x, c->v[i].num))
			return 1;
	return 0;
badtype:
	e->why = "a request value is not of the operator's type";
	return -1;
}

/*
 * An address condition over a value that is no IP address (nginx's
 * "unix:" for a unix-socket listener, "203.0.113.5%eth0", "", garbage):
 * whether the caller is inside a network cannot be known, so the
 * condition fails closed whatever the operator: it holds in a Deny (the
 * Deny applies, also a NotIpAddress one, which "does not match" would
 * switch off) and fails in an Allow.  cond_eval returns it as a third
 * value, memoised like the others, and applies() resolves it by the
 * statement's effect (memo ids are shared across effects).
 */
#define COND_UNUSABLE 2

/*
 * One condition, as the IAM reference says: a missing key (or an empty
 * set) fails a plain operator and satisfies a negated one; ...IfExists is
 * satisfied by a missing key; ForAllValues holds for a missing key or an
 * empty set, ForAnyValue does not; values are ORed per request value.
 */
static int
cond_eval(struct ev *e, const struct cond *c)
{
	struct view *vw = pol_lookup(e, c->key);
	int present = vw->n > 0, any = 0, all = 1, r, m;
	size_t i;

	if (c->op->type == VT_NULL) {
		if ((c->v[0].num != 0) == !present)
			return 1;
		e->why = present ? "the key is present" : "the key is missing";
		return 0;
	}
	if (!present) {
		if (c->ifexists || c->qual == Q_ALL)
			return 1;
		if (c->qual == Q_NONE && c->op->negated)
			return 1;
		e->why = "the key is missing";
		return 0;
	}
	for (i = 0; i < vw->n; i++) {
		r = value_match(e, c, vw, i);
		if (r == -2)
			return COND_UNUSABLE;
		if (r == -1)
			return 0;
		m = c->op->negated ? !r : r;
		any |= m;
		all &= m;
	}
	if (c->qual == Q_ALL)
		r = all;
	else if (c->qual == Q_ANY)
		r = any;
	else
		r = c->op->negated ? all : any;
	if (!r && c->op->negated && e->why != NULL &&
	    strcmp(e->why, "no value matched") == 0)
		e->why = "a value matched an excluded value";
	return r;
}

static int
fail(struct ev *e, const char *el, const struct cond *c, const char *why)
{
	if (e->tr != NULL) {
		e->tr->el = el;
		e->tr->cond = c;
		e->tr->why = why;
	}
	return 0;
}

/* A memoised result (0 or 1, or 2 + unresolved), or -1 when unknown. */
static int
memo_get(const struct ev *e, int id)
{
	if (e->memo == NULL || id < 0 || e->memo[id] == 0)
		return -1;
	return e->memo[id] - 1;
}

static void
memo_put(struct ev *e, int id, int v)
{
	if (e->memo != NULL && id >= 0)
		e->memo[id] = (unsigned char)(v + 1);
}

static int
plist_memo(struct ev *e, const struct plist *l, const char *t, int icase,
           int *unresolved)
{
	int m = memo_get(e, l->memo);

	if (m != -1) {
		*unresolved = m >> 1;
		return m & 1;
	}
	m = plist_match(e, l, t, icase, unresolved);
	memo_put(e, l->memo, m | (*unresolved << 1));
	return m;
}

/* Elements in a fixed order: Action, Resource, Principal, Condition. */
static int
applies(struct ev *e, const struct stmt *st)
{
	int m, unres = 0;
	size_t i;

	m = plist_memo(e, &st->actions, e->req->action, 1, &unres);
	if (m == st->not_action)
		return fail(e, st->not_action ? "NotAction" : "Action", NULL,
		            st->not_action ? "the action is excluded"
		                           : "no pattern matches the action");
	unres = 0;
	m = plist_memo(e, &st->resources, e->req->resource, 0, &unres);
	if (st->not_resource && unres)
		return fail(e, "NotResource", NULL,
		            "a policy variable could not be resolved");
	if (m == st->not_resource)
		return fail(e, st->not_resource ? "NotResource" : "Resource",
		            NULL,
		            st->not_resource ? "the resource is excluded"
		            : unres ? "no pattern matches the resource (a "
		                      "policy variable could not be resolved)"
		                    : "no pattern matches the resource");
	m = memo_get(e, st->principal.memo);
	if (m == -1) {
		m = principal_match(e, &st->principal);
		memo_put(e, st->principal.memo, m);
	}
	if (m == st->not_principal)
		return fail(e, st->not_principal ? "NotPrincipal" : "Principal",
		            NULL,
		            st->not_principal ? "the caller is excluded"
		                              : "the claims do not match");
	for (i = 0; i < st->nconds; i++) {
		e->why = "no value matched";
		m = memo_get(e, st->conds[i].memo);
		if (m == -1) {
			m = cond_eval(e, &st->conds[i]);
			memo_put(e, st->conds[i].memo, m);
		}
		if (m == COND_UNUSABLE) {
			e->why = "the address is not a usable IP address "
			         "(fails closed)";
			m = st->effect == GW_POL_EXPLICIT_DENY;
		}
		if (!m)
			return fail(e, "Condition", &st->conds[i], e->why);
	}
	return 1;
}

/* snprintf's "%s" without its cost: it was a sixth of an evaluation. */
static void
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
ref_set(struct gw_pol_ref *r, const struct stmt *st)
{
	copy_str(r->file, sizeof(r->file), st->file);
	copy_str(r->sid, sizeof(r->sid), st->sid);
}

static int
request_ok(const struct gw_pol_set *set, const struct gw_pol_request *req)
{
	return set != NULL && req != NULL && req->claims != NULL &&
	       req->action != NULL && req->resource != NULL &&
	       (req->nctx == 0 || req->ctx != NULL);
}

/* The applicable statements, in load order (the first few kept). */
struct tally {
	size_t deny[GW_POL_DECIDING_MAX], allow[GW_POL_DECIDING_MAX];
	size_t ndeny, nallow;
};

static void
tally_add(struct tally *t, const struct gw_pol_set *set, size_t i)
{
	if (set->st[i].effect == GW_POL_EXPLICIT_DENY) {
		if (t->ndeny < GW_POL_DECIDING_MAX)
			t->deny[t->ndeny] = i;
		t->ndeny++;
	} else {
		if (t->nallow < GW_POL_DECIDING_MAX)
			t->allow[t->nallow] = i;
		t->nallow++;
	}
}

/* Explain records why each element failed: every statement, no memo. */
static void
visit_all(struct ev *e, struct explainer *x, struct tally *t)
{
	const struct gw_pol_set *set = e->set;
	struct trace tr;
	size_t i;
	int ok;

	for (i = 0; i < set->n; i++) {
		memset(&tr, 0, sizeof(tr));
		e->tr = &tr;
		ok = applies(e, &set->st[i]);
		x->fn(x, e, &set->st[i], ok);
		if (ok)
			tally_add(t, set, i);
	}
}

/*
 * Only the statements the pre-filter leaves can apply; visited in load
 * order, they give the deciding statements visiting all would.
 */
static void
visit_cands(struct ev *e, struct tally *t)
{
	const struct gw_pol_set *set = e->set;
	uint64_t cand[GW_POL_STATEMENTS_MAX / 64 + 1], bits;
	size_t i, w;

	pol_index_cands(e, cand);
	for (w = 0; w < set->ix.words; w++) {
		for (bits = cand[w]; bits != 0; bits &= bits - 1) {
			i = w * 64 + (size_t)__builtin_ctzll(bits);
			/* Once a Deny applied no Allow can decide. */
			if (t->ndeny > 0 && set->st[i].effect == GW_POL_ALLOW)
				continue;
			if (applies(e, &set->st[i]))
				tally_add(t, set, i);
		}
	}
}

void
pol_run(const struct gw_pol_set *set, const struct gw_pol_request *req,
        struct gw_pol_decision *out, struct explainer *x)
{
	struct view views[GW_POL_KEYS_MAX];
	unsigned char done[GW_POL_KEYS_MAX];
	unsigned char memo[POL_MEMO_MAX];
	const size_t *pick = NULL;
	struct tally t;
	struct ev e;
	size_t i, n;

	memset(out, 0, sizeof(*out));
	if (!request_ok(set, req))
		return;
	memset(done, 0, set->nkeys);
	memset(&e, 0, sizeof(e));
	memset(&t, 0, sizeof(t));
	e.set = set;
	e.req = req;
	e.views = views;
	e.done = done;
	if (x != NULL) {
		visit_all(&e, x, &t);
	} else {
		memset(memo, 0, set->nsigs);
		e.memo = memo;
		visit_cands(&e, &t);
	}
	if (t.ndeny > 0) {
		out->effect = GW_POL_EXPLICIT_DENY;
		pick = t.deny;
		out->ndeciding_total = t.ndeny;
	} else if (t.nallow > 0) {
		out->effect = GW_POL_ALLOW;
		pick = t.allow;
		out->ndeciding_total = t.nallow;
	} else {
		return;
	}
	n = out->ndeciding_total;
	if (n > GW_POL_DECIDING_MAX)
		n = GW_POL_DECIDING_MAX;
	for (i = 0; i < n; i++)
		ref_set(&out->deciding[i], &set->st[pick[i]]);
	out->ndeciding = n;
	memcpy(out->file, out->deciding[0].file, sizeof(out->file));
	memcpy(out->sid, out->deciding[0].sid, sizeof(out->sid));
}

void
gw_pol_eval(const struct gw_pol_set *set, const struct gw_pol_request *req,
            struct gw_pol_decision *out)
{
	if (out == NULL)
		return;
	pol_run(set, req, out, NULL);
}

size_t
gw_pol_candidates(const struct gw_pol_set *set,
                  const struct gw_pol_request *req)
{
	uint64_t cand[GW_POL_STATEMENTS_MAX / 64 + 1];
	struct view views[GW_POL_KEYS_MAX];
	unsigned char done[GW_POL_KEYS_MAX];
	struct ev e;
	size_t w, n = 0;

	if (!request_ok(set, req))
		return 0;
	memset(done, 0, set->nkeys);
	memset(&e, 0, sizeof(e));
	e.set = set;
	e.req = req;
	e.views = views;
	e.done = done;
	pol_index_cands(&e, cand);
	for (w = 0; w < set->ix.words; w++)
		n += (size_t)__builtin_popcountll(cand[w]);
	return n;
}

const char *
gw_pol_effect_name(enum gw_pol_effect e)
{
	if ((unsigned)e >= GW_POL_EFFECT__MAX)
		return effect_names[GW_POL_IMPLICIT_DENY];
	return effect_names[e];
}

const char *
gw_pol_revision(const struct gw_pol_set *set)
{
	return set == NULL ? "" : set->rev;
}

size_t
gw_pol_count(const struct gw_pol_set *set)
{
	return set == NULL ? 0 : set->n;
}

int
gw_pol_ctx_build(struct gw_pol_ctx *c, const struct gw_kv *ctx, size_t n,
                 int64_t now_ms, const char *client_ip)
{
	if (n > GW_POL_CTX_MAX - 2)
		return -1;
	if (n > 0)
		memcpy(c->kv, ctx, n * sizeof(*ctx));
	c->n = n;
	gw_fmt_time_ms(now_ms, c->now, sizeof(c->now));
	c->nowv[0] = c->now;
	c->kv[c->n++] = (struct gw_kv){"gw:current_time", c->nowv, 1};
	/*
	 * Always present: no address (no HSSGW_CLIENT_ADDR from the front)
	 * is an unusable one, so address conditions fail closed instead of
	 * taking IAM's "missing key" path, which satisfies NotIpAddress and
	 * ...IfExists in an Allow.
	 */
	c->ipv[0] = client_ip != NULL ? client_ip : "";
	c->kv[c->n++] = (struct gw_kv){"gw:client_ip", c->ipv, 1};
	return 0;
}
