/*
 * The policy pre-filter: which statements can apply to a request, worked
 * out once at load so that evaluation visits only those instead of every
 * statement of the set.  Two facts are precomputed.  A statement whose
 * Principal names a claim with literal values only (no wildcard, no
 * variable) can apply only to a token holding one of those values: a
 * hash table maps (claim, value) to such statements.  And whether a
 * statement's Action or NotAction can apply to each action hssgw knows.
 * A request then ORs the statements its claim values reach into those the
 * table cannot rule out, and ANDs in its action's.  It owns the index
 * inside the set; it must only ever rule out a statement whose full
 * evaluation would not apply (a candidate is still evaluated in full),
 * never allocate after load, and never be used by explain, which reports
 * on every statement.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

/* FNV-1a over the value, mixed with the key: policy text, not the token's. */
static uint32_t
hash(size_t key, const char *s, size_t len)
{
	uint32_t h = 2166136261u ^ (uint32_t)key;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* The slot holding (key, s), or the empty slot where it would go. */
static struct pol_slot *
slot_find(const struct pol_index *ix, size_t key, const char *s, size_t len,
          uint32_t h)
{
	size_t mask = ix->nslots - 1, i = h & mask;
	struct pol_slot *sl = NULL;

	for (;;) {
		sl = &ix->slots[i];
		if (sl->val == NULL ||
		    (sl->hash == h && sl->key == key && sl->len == len &&
		     pol_bytes_eq(sl->val, s, len)))
			return sl;
		i = (i + 1) & mask;
	}
}

/*
 * The Principal entry that rules the statement out for every token
 * without one of its values: the first claim whose values are all plain
 * literals.  NULL when there is none: "*", NotPrincipal (it applies to
 * the tokens it does not name), or every claim has a wildcard or a
 * variable.
 */
static const struct pclaim *
index_claim(const struct stmt *st)
{
	const struct pclaim *pc = NULL;
	size_t i, j;

	if (st->not_principal || st->principal.any)
		return NULL;
	for (i = 0; i < st->principal.n; i++) {
		pc = &st->principal.v[i];
		for (j = 0; j < pc->vals.n; j++)
			if (pc->vals.v[j].kind != PK_LIT ||
			    pc->vals.v[j].has_vars)
				break;
		if (pc->vals.n > 0 && j == pc->vals.n)
			return pc;
	}
	return NULL;
}

/* Whether the Action element lets the statement apply to action t. */
static int
action_can_apply(const struct stmt *st, const char *t)
{
	size_t i, tlen = strlen(t);
	int m = 0;

	/* Action patterns hold no variables (kind_action): as plist_match. */
	for (i = 0; i < st->actions.n && !m; i++)
		m = pol_kmatch(st->actions.v[i].kind, st->actions.v[i].text,
		               st->actions.v[i].wild, st->actions.v[i].len, t,
		               tlen, 1);
	return m != st->not_action;
}

/* Adds statement i under every value of pc; pass 0 counts, 1 fills. */
static void
index_add(struct pol_index *ix, const struct pclaim *pc, uint32_t i, int pass)
{
	struct pol_slot *sl = NULL;
	const struct pat *p = NULL;
	uint32_t h;
	size_t j;

	for (j = 0; j < pc->vals.n; j++) {
		p = &pc->vals.v[j];
		h = hash(pc->key, p->text, p->len);
		sl = slot_find(ix, pc->key, p->text, p->len, h);
		if (sl->val == NULL) {
			sl->val = p->text;
			sl->len = p->len;
			sl->key = pc->key;
			sl->hash = h;
			sl->last = UINT32_MAX;
		}
		/* ["ops", "ops"] lists the statement once. */
		if (sl->last == i)
			continue;
		sl->last = i;
		if (pass == 0)
			sl->n++;
		else
			ix->stmts[sl->off + sl->fill++] = i;
	}
}

void
pol_index_free(struct pol_index *ix)
{
	size_t a;

	free(ix->always);
	for (a = 0; a < POL_NKNOWN_ACTIONS; a++)
		free(ix->act[a]);
	free(ix->slots);
	free(ix->stmts);
	memset(ix, 0, sizeof(*ix));
}

int
pol_index_build(struct gw_pol_set *set)
{
	struct pol_index *ix = &set->ix;
	const struct pclaim *pc = NULL;
	unsigned char used[GW_POL_KEYS_MAX] = {0};
	size_t i, a, nent = 0, off = 0;
	int pass;

	pol_index_free(ix);
	ix->words = set->n / 64 + 1;
	ix->always = calloc(ix->words, sizeof(uint64_t));
	for (a = 0; a < POL_NKNOWN_ACTIONS; a++)
		ix->act[a] = calloc(ix->words, sizeof(uint64_t));
	for (i = 0; i < set->n; i++) {
		pc = index_claim(&set->st[i]);
		if (pc != NULL) {
			nent += pc->vals.n;
			used[pc->key] = 1;
		}
	}
	/* At most half full, so a probe ends soon at an empty slot. */
	ix->nslots = 8;
	while (ix->nslots < 2 * nent)
		ix->nslots *= 2;
	ix->slots = calloc(ix->nslots, sizeof(*ix->slots));
	ix->stmts = calloc(nent + 1, sizeof(*ix->stmts));
	if (ix->always == NULL || ix->slots == NULL || ix->stmts == NULL)
		goto nomem;
	for (a = 0; a < POL_NKNOWN_ACTIONS; a++)
		if (ix->act[a] == NULL)
			goto nomem;
	for (i = 0; i < set->nkeys; i++)
		if (used[i])
			ix->keys[ix->nkeys++] = i;
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < set->n; i++) {
			pc = index_claim(&set->st[i]);
			if (pc != NULL)
				index_add(ix, pc, (uint32_t)i, pass);
			else if (pass == 0)
				ix->always[i / 64] |= UINT64_C(1) << (i % 64);
		}
		if (pass > 0)
			break;
		for (i = 0; i < ix->nslots; i++) {
			ix->slots[i].off = (uint32_t)off;
			off += ix->slots[i].n;
			ix->slots[i].last = UINT32_MAX;
		}
	}
	for (a = 0; a < POL_NKNOWN_ACTIONS; a++) {
		ix->actlen[a] = strlen(pol_known_actions[a]);
		for (i = 0; i < set->n; i++)
			if (action_can_apply(&set->st[i], pol_known_actions[a]))
				ix->act[a][i / 64] |= UINT64_C(1) << (i % 64);
	}
	return 0;
nomem:
	pol_index_free(ix);
	return -1;
}

void
pol_index_cands(struct ev *e, uint64_t *cand)
{
	const struct pol_index *ix = &e->set->ix;
	const struct pol_slot *sl = NULL;
	const struct view *vw = NULL;
	const uint64_t *act = NULL;
	size_t i, j, k, len;
	uint32_t s;

	memcpy(cand, ix->always, ix->words * sizeof(*cand));
	for (i = 0; i < ix->nkeys; i++) {
		vw = pol_lookup(e, ix->keys[i]);
		for (j = 0; j < vw->n; j++) {
			if (vw->v[j] == NULL)
				continue;
			len = strlen(vw->v[j]);
			sl = slot_find(ix, ix->keys[i], vw->v[j], len,
			               hash(ix->keys[i], vw->v[j], len));
			for (k = 0; sl->val != NULL && k < sl->n; k++) {
				s = ix->stmts[sl->off + k];
				cand[s / 64] |= UINT64_C(1) << (s % 64);
			}
		}
	}
	/*
	 * Actions match case-insensitively and hold no variables, so a
	 * request naming a known action in any case matches exactly what
	 * that action does; any other action is not filtered.  memcmp first:
	 * the pipeline spells them exactly, and folding costs more.
	 */
	len = strlen(e->req->action);
	for (i = 0; i < POL_NKNOWN_ACTIONS && act == NULL; i++)
		if (len == ix->actlen[i] &&
		    (memcmp(e->req->action, pol_known_actions[i], len) == 0 ||
		     pol_ieqn(e->req->action, pol_known_actions[i], len)))
			act = ix->act[i];
	for (i = 0; act != NULL && i < ix->words; i++)
		cand[i] &= act[i];
}
