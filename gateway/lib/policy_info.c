/*
 * What a compiled set holds, for tools that must name its parts without
 * evaluating: its statements in load order (policy test's coverage) and
 * the condition keys it reads (the audit record keeps the claims among
 * them, policy replay tells a record that lacks one).  Never evaluates.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy_int.h"

int
gw_pol_stmt_at(const struct gw_pol_set *set, size_t i, struct gw_pol_ref *out,
               enum gw_pol_effect *effect)
{
	if (set == NULL || i >= set->n)
		return -1;
	snprintf(out->file, sizeof(out->file), "%s", set->st[i].file);
	snprintf(out->sid, sizeof(out->sid), "%s", set->st[i].sid);
	if (effect != NULL)
		*effect = set->st[i].effect;
	return 0;
}

const char *
gw_pol_key_at(const struct gw_pol_set *set, size_t i, int *is_claim)
{
	int claim;

	if (set == NULL || i >= set->nkeys)
		return NULL;
	claim = set->keys[i].src != KS_CTX;
	if (is_claim != NULL)
		*is_claim = claim;
	return set->keys[i].name;
}

/* The token's claim named name: exactly, else ignoring case, or NULL. */
static const struct gw_claim *
claim_find(const struct gw_claims *c, const char *name)
{
	const struct gw_claim *v = gw_claims_get(c, name);
	size_t i;

	for (i = 0; v == NULL && c != NULL && i < c->n; i++)
		if (strcasecmp(c->v[i].name, name) == 0)
			v = &c->v[i];
	return v;
}

size_t
gw_pol_claims_read(const struct gw_pol_set *set, const struct gw_claims *c,
                   struct gw_kv *out, size_t n, size_t max)
{
	const struct gw_claim *v;
	const char *name;
	size_t i, j;

	for (i = 0; set != NULL && c != NULL && i < set->nkeys && n < max;
	     i++) {
		if (set->keys[i].src == KS_CTX)
			continue;
		name = set->keys[i].name + 4;
		for (j = 0; j < n && strcmp(out[j].key, name) != 0; j++)
			;
		if (j < n)
			continue;
		v = claim_find(c, name);
		out[n].key = name;
		out[n].values =
		    v != NULL ? (const char *const *)v->values : NULL;
		out[n].nvalues = v != NULL ? v->nvalues : 0;
		n++;
	}
	return n;
}
