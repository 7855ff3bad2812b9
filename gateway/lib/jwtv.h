/*
 * JWT verification: the only module that includes <jwt.h>.  Keys are loaded
 * once per issuer with their algorithm pinned; a token's "alg" header is
 * checked against the pinned one and never chosen from.  libjwt 1.10.2 does
 * not check exp/nbf and would verify HS256 with an RSA public key as the
 * HMAC secret: both gaps are closed here.  Never logs or returns key bytes.
 */
#ifndef GW_JWTV_H
#define GW_JWTV_H

#include <stddef.h>
#include <stdint.h>

#include "claims.h"
#include "config.h"
#include "gw.h"
#include "jwks.h"

struct gw_jwt_keyset;

/*
 * Loads every issuer's keys (PEM public keys, secret files for HS256,
 * which must not be group/world readable, a jwks_file; JWKS URLs are only
 * recorded: gw_jwt_keyset_tick fetches them).  NULL with a reason.
 */
struct gw_jwt_keyset *gw_jwt_keyset_load(const struct gw_config *, char *err,
                                         size_t errlen);
/* Frees a keyset, wiping secrets; accepts NULL. */
void gw_jwt_keyset_free(struct gw_jwt_keyset *);

/*
 * Verifies a compact JWS at time now_s (seconds).  On success *out holds
 * the claims (caller frees with gw_claims_free; they may be shared with
 * the keyset's verified-token cache, so never modify them).  A token
 * whose exact bytes verified before under this keyset is answered from
 * the cache, exp and nbf rechecked at now_s.  On failure returns
 * GW_ERR_TOKEN_INVALID with a client-safe reason ("token expired", "unknown
 * kid", ...), or GW_ERR_JWKS_STALE when the issuer's JWK Set is missing
 * or older than its jwks_max_stale_s.  An unknown kid of a JWKS issuer
 * may refetch the set first (at most once per 30 s per issuer).
 */
enum gw_err gw_jwt_verify(const struct gw_jwt_keyset *, const char *token,
                          int64_t now_s, struct gw_claims **out,
                          struct gw_fault *);

/*
 * Builds claims from JSON text exactly as gw_jwt_verify builds a verified
 * token's (the same parser and rules), without verifying anything: for
 * `policy explain --claims`.  GW_ERR_TOKEN_INVALID with a reason, or
 * GW_ERR_NOMEM; on GW_OK *out is the caller's.
 */
enum gw_err gw_claims_parse(const char *json, size_t len,
                            struct gw_claims **out, const char **reason);

/* Verified-token cache hits and misses so far; zeros when it is off. */
void gw_jwt_cache_stats(const struct gw_jwt_keyset *, uint64_t *hits,
                        uint64_t *misses);

/*
 * Fetches every JWKS issuer's set that is due (first fetch, refresh,
 * retry); off the request path, once a second.  Returns how many JWKS
 * issuers have no usable set, the first with its reason in err; with
 * none, err holds the first fetch refused this time (the last good set
 * kept), or "".
 */
int gw_jwt_keyset_tick(const struct gw_jwt_keyset *, int64_t now_s, char *err,
                       size_t errlen);
/* The first JWKS issuer without a usable set at now_s, or NULL: ready. */
const char *gw_jwt_keyset_unready(const struct gw_jwt_keyset *, int64_t now_s);
/* Hands next the sets old fetched for the same issuers and URLs (reload). */
void gw_jwt_keyset_adopt(struct gw_jwt_keyset *next,
                         const struct gw_jwt_keyset *old);
/*
 * Metrics: the i-th JWKS issuer's fetch counters (jwks.h) and its name
 * (borrowed), or NULL past the last one.
 */
const char *gw_jwt_jwks_stats(const struct gw_jwt_keyset *, size_t i,
                              int64_t now_s, struct gw_jwks_stats *);

/*
 * Mints a token for development: alg is RS256..512, PS256..512,
 * ES256..512, EdDSA (PEM private key) or HS256 (secret bytes).  claims_json is
 * a JSON object of claims. Returns a malloc'd token or NULL with a reason.
 */
char *gw_jwt_mint(const char *alg, const char *kid, const unsigned char *key,
                  size_t keylen, const char *claims_json, char *err,
                  size_t errlen);

#endif
