/*
 * A token's claims as policies read them (claims.h): built from a verified
 * payload (jwt_build_claims, which jwtv.c calls only after every check has
 * passed) or from a claims file for policy explain (gw_claims_parse), and
 * their shared, refcounted lifetime.  It owns which claims are kept and
 * which payloads are refused (add_claim).  It must never verify or trust a
 * token itself, never include <jwt.h>, and never drop or truncate a claim
 * that a Deny could read.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "jwtv.h"
#include "jwtv_int.h"

static char *
scalar_text(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_string:
		return gw_strdup(json_object_get_string(v));
	case json_type_boolean:
		return gw_strdup(json_object_get_boolean(v) ? "true" : "false");
	case json_type_int:
	case json_type_double:
		return gw_strdup(
		    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	default:
		return NULL;
	}
}

static int
is_scalar(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_string:
	case json_type_boolean:
	case json_type_int:
	case json_type_double:
		return 1;
	default:
		return 0;
	}
}

/*
 * Keeps one claim as text.  Object and null claims are skipped (claims.h):
 * identity providers send objects (Keycloak's realm_access) that no policy
 * key can name.  Everything that could silence a Deny refuses the token
 * instead of being dropped or truncated:
 * - an array holding an object, an array or null: skipping the claim hid
 *   "suspended" in ["suspended", {"x":1}] from a Deny (issue #11 item 8),
 *   and keeping only its scalars would let ForAllValues conditions pass on
 *   a set the token does not hold, so no reading of it is safe;
 * - two names equal but for case (Team, team): policy keys are matched
 *   case-insensitively (policy_eval.c), so which one a condition saw would
 *   depend on the order in the token;
 * - more claims or values than the caps.
 */
static enum gw_err
add_claim(struct gw_claims *c, size_t cap, const char *name, json_object *v,
          const char **reason)
{
	struct gw_claim *cl;
	size_t i, n = 1;
	int arr = json_object_is_type(v, json_type_array);

	if (arr) {
		n = json_object_array_length(v);
		for (i = 0; i < n; i++)
			if (!is_scalar(json_object_array_get_idx(v, i))) {
				*reason = "a claim array holds an object, an "
				          "array or null";
				return GW_ERR_TOKEN_INVALID;
			}
		if (n > GW_CLAIM_VALUES_MAX) {
			*reason = "a claim has too many values";
			return GW_ERR_TOKEN_INVALID;
		}
	} else if (!is_scalar(v))
		return GW_OK;
	for (i = 0; i < c->n; i++)
		if (strcasecmp(c->v[i].name, name) == 0) {
			*reason = "two claim names differ only in case";
			return GW_ERR_TOKEN_INVALID;
		}
	if (c->n >= cap) {
		*reason = "token has too many claims";
		return GW_ERR_TOKEN_INVALID;
	}
	cl = &c->v[c->n];
	cl->name = gw_strdup(name);
	cl->values = calloc(n ? n : 1, sizeof(*cl->values));
	cl->is_array = arr;
	c->n++;
	if (cl->name == NULL || cl->values == NULL)
		return GW_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		cl->values[i] =
		    scalar_text(arr ? json_object_array_get_idx(v, i) : v);
		if (cl->values[i] == NULL)
			return GW_ERR_NOMEM;
		cl->nvalues++;
	}
	return GW_OK;
}

/* A copy of a string member into *out, left NULL if absent; -1: ENOMEM. */
static int
dup_member(json_object *o, const char *name, char **out)
{
	const char *v = jwt_get_str(o, name);

	if (v == NULL)
		return 0;
	*out = gw_strdup(v);
	return *out == NULL ? -1 : 0;
}

enum gw_err
jwt_build_claims(json_object *pl, struct gw_claims **out, const char **reason)
{
	struct json_object_iterator it, end;
	struct gw_claims *c = NULL;
	json_object *v = NULL;
	enum gw_err err = GW_ERR_NOMEM;
	size_t cap;

	cap = (size_t)json_object_object_length(pl);
	if (cap > GW_CLAIMS_MAX)
		cap = GW_CLAIMS_MAX;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto out;
	c->v = calloc(cap ? cap : 1, sizeof(*c->v));
	if (c->v == NULL)
		goto out;
	/* A verified token has iss and sub (check_claims); a claims file for
	 * explain may not. */
	if (dup_member(pl, "iss", &c->iss) == -1 ||
	    dup_member(pl, "sub", &c->sub) == -1 ||
	    dup_member(pl, "jti", &c->jti) == -1)
		goto out;
	json_object_object_get_ex(pl, "exp", &v);
	jwt_numeric_date(v, &c->exp);
	if (json_object_object_get_ex(pl, "nbf", &v))
		jwt_numeric_date(v, &c->nbf);
	if (json_object_object_get_ex(pl, "iat", &v))
		jwt_numeric_date(v, &c->iat);
	it = json_object_iter_begin(pl);
	end = json_object_iter_end(pl);
	while (!json_object_iter_equal(&it, &end)) {
		err = add_claim(c, cap, json_object_iter_peek_name(&it),
		                json_object_iter_peek_value(&it), reason);
		if (err != GW_OK)
			goto out;
		json_object_iter_next(&it);
	}
	*out = c;
	c = NULL;
	err = GW_OK;
out:
	gw_claims_free(c);
	return err;
}

/* Claims from JSON text, built as for a verified token; NULL + reason. */
enum gw_err
gw_claims_parse(const char *json, size_t len, struct gw_claims **out,
                const char **reason)
{
	json_object *pl = NULL;
	enum gw_err err;

	*out = NULL;
	*reason = "claims must be a JSON object";
	pl = jwt_parse_json((const unsigned char *)json, len);
	if (pl == NULL)
		return GW_ERR_TOKEN_INVALID;
	err = jwt_build_claims(pl, out, reason);
	if (err == GW_ERR_NOMEM)
		*reason = "out of memory";
	json_object_put(pl);
	return err;
}

/* Borrowed claim by exact name, or NULL. */
const struct gw_claim *
gw_claims_get(const struct gw_claims *c, const char *name)
{
	size_t i;

	if (c == NULL || name == NULL)
		return NULL;
	for (i = 0; i < c->n; i++)
		if (strcmp(c->v[i].name, name) == 0)
			return &c->v[i];
	return NULL;
}

/* Another reference to shared claims; NULL-safe. */
struct gw_claims *
gw_claims_ref(struct gw_claims *c)
{
	if (c != NULL)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

/* Drops a reference; the last one frees.  Accepts NULL. */
void
gw_claims_free(struct gw_claims *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	/* Acquire-release: the freeing thread sees every holder's reads. */
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) > 0)
		return;
	for (i = 0; i < c->n; i++) {
		for (j = 0; j < c->v[i].nvalues; j++)
			free(c->v[i].values[j]);
		free(c->v[i].values);
		free(c->v[i].name);
	}
	free(c->v);
	free(c->iss);
	free(c->sub);
	free(c->jti);
	free(c);
}
