/*
 * The verified-token cache: SHA-256 of a whole compact token -> the claims
 * jwtv built for it.  Owned by one keyset (gw_jwt_keyset), so a reload,
 * which builds a new keyset, starts from an empty cache.  JWK Sets change
 * under a keyset, so each entry carries the tag of the key that verified
 * it and jwtv treats a hit whose key left the set as a miss.  Only jwtv.c calls
 * this; it never sees a token, a key or a failure, only digests of verified
 * tokens.
 */
#ifndef GW_JWTCACHE_H
#define GW_JWTCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "claims.h"

#define GW_JWTC_KEY_LEN 32      /* SHA-256 */
#define GW_JWTC_MAX     1048576 /* entries, the config key's upper bound */

struct gw_jwt_cache;

/* A cache of about `entries` entries (0: NULL, no cache); NULL on ENOMEM. */
struct gw_jwt_cache *gw_jwtc_new(size_t entries);
/* Frees the cache, dropping its references to claims; accepts NULL. */
void gw_jwtc_free(struct gw_jwt_cache *);
/*
 * The claims cached under key, as a new reference the caller releases with
 * gw_claims_free, or NULL.  *keytag is the tag put with them.  The caller
 * rechecks exp/nbf, and that the key is still in its issuer's JWK Set.
 */
struct gw_claims *gw_jwtc_get(struct gw_jwt_cache *,
                              const unsigned char key[GW_JWTC_KEY_LEN],
                              uint64_t *keytag);
/*
 * Caches claims under key, taking a new reference, with the tag of the
 * key that verified them (0: a configured key, which lives as long as the
 * keyset; else a JWK's gw_jwk.tag).  Evicts, in key's set only, an entry
 * expired before dead_before, else the least recently used.
 */
void gw_jwtc_put(struct gw_jwt_cache *,
                 const unsigned char key[GW_JWTC_KEY_LEN], struct gw_claims *,
                 uint64_t keytag, int64_t dead_before);
/* Hits and misses so far (for tests and the benchmark); accepts NULL. */
void gw_jwtc_stats(struct gw_jwt_cache *, uint64_t *hits, uint64_t *misses);

#endif
