/*
 * Verified JWT claims as plain data, so policy and audit never see JSON.
 * Every claim value is kept as text: strings as they are, numbers in
 * decimal, booleans as "true"/"false".  Array claims keep each element.
 * Objects (and arrays holding objects) are not kept.
 */
#ifndef GW_CLAIMS_H
#define GW_CLAIMS_H

#include <stddef.h>
#include <stdint.h>

#define GW_CLAIMS_MAX       64 /* claims kept per token */
#define GW_CLAIM_VALUES_MAX 64 /* elements kept per array claim */

struct gw_claim {
	char *name;
	char **values;
	size_t nvalues;
	int is_array;
};

struct gw_claims {
	char *iss;
	char *sub;
	char *jti; /* may be NULL */
	int64_t exp;
	int64_t nbf; /* 0 when absent */
	int64_t iat; /* 0 when absent */
	struct gw_claim *v;
	size_t n;
};

/* Borrowed claim by exact name, or NULL. */
const struct gw_claim *gw_claims_get(const struct gw_claims *, const char *);
/* Frees claims; accepts NULL. */
void gw_claims_free(struct gw_claims *);

#endif
