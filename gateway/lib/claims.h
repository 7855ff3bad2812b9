/*
 * Verified JWT claims as plain data, so policy and audit never see JSON
 * (jwt_claims.c builds them and defines the functions below; policy.h
 * reads the struct only).
 * Every claim value is kept as text: strings as they are, numbers in
 * decimal, booleans as "true"/"false".  Array claims keep each element.
 * Object claims are not kept; a token with an array claim holding an
 * object, an array or null, or with two claim names equal but for case, is
 * refused (jwt_claims.c says why).  Verified claims are immutable and may be
 * shared: `refs` counts the holders beyond the first, so a zeroed struct
 * has one holder and gw_claims_free frees it.
 */
#ifndef GW_CLAIMS_H
#define GW_CLAIMS_H

#include <stdatomic.h>
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
	atomic_long refs; /* extra holders (the token cache, requests) */
};

/* Borrowed claim by exact name, or NULL. */
const struct gw_claim *gw_claims_get(const struct gw_claims *, const char *);
/* Another reference to shared claims (returns its argument); NULL-safe. */
struct gw_claims *gw_claims_ref(struct gw_claims *);
/* Drops a reference, freeing claims with the last one; accepts NULL. */
void gw_claims_free(struct gw_claims *);

#endif
