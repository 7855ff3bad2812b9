/*
 * JWK Sets (RFC 7517) from an identity provider: the parser, the
 * immutable refcounted key set, and per issuer the source that fetches
 * it (OIDC discovery, jwks_uri or a file), refreshes it and keeps the
 * last good set through an outage.  Key material is built by OpenSSL 3
 * (EVP_PKEY_fromdata, EVP_PKEY_new_raw_public_key): no big-number code
 * here.  Only jwtv.c uses it; it fetches through upstream.c.  Never logs
 * key bytes; a fault or error names the rule a key or answer broke.
 */
#ifndef GW_JWKS_H
#define GW_JWKS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "gw.h"

#define GW_JWKS_MAX_KEYS  64
#define GW_JWKS_MAX_BYTES (64 * 1024)
#define GW_JWKS_KID_MAX   256
/* At most one unknown-kid refetch per issuer in this many seconds. */
#define GW_JWKS_KID_REFETCH_S 30

enum gw_jwk_kty { GW_JWK_RSA, GW_JWK_EC, GW_JWK_OKP, GW_JWK__MAX };

/* One public signing key of a set: immutable once the set is built. */
struct gw_jwk {
	char *kid;   /* NULL: none */
	char alg[8]; /* the JWK's "alg", "" when absent */
	enum gw_jwk_kty kty;
	int bits;           /* RSA modulus bits, EC field bits (256/384/521) */
	EVP_PKEY *pkey;     /* OpenSSL's key, shared read-only by threads */
	unsigned char *pem; /* SubjectPublicKeyInfo PEM, for libjwt */
	size_t pemlen;
	/* First 8 bytes of SHA-256 of the DER key: the key's identity
	 * across sets (the verified-token cache checks it); never 0. */
	uint64_t tag;
};

struct gw_jwks_set {
	atomic_int refs; /* holders beyond the first */
	struct gw_jwk *keys;
	size_t n;
};

/*
 * Parses a JWK Set.  Keys for encryption (use "enc", key_ops without
 * "verify") or of a kty or curve we do not sign with are skipped; a
 * hostile or malformed answer (not a set, > 64 keys, a key with private
 * members, an "oct" key, RSA under 2048 bits, kty/crv mismatch, a wrong
 * "alg", two different keys with one kid) fails whole, so the caller
 * keeps its last good set.  0 with *out (caller frees), or -1 with the
 * reason in err.  No usable key at all is a failure.
 */
int gw_jwks_parse(const char *json, size_t len, struct gw_jwks_set **out,
                  char *err, size_t errlen);
/* Another reference to a set; NULL-safe. */
struct gw_jwks_set *gw_jwks_set_ref(struct gw_jwks_set *);
/* Drops a reference, the last frees; accepts NULL. */
void gw_jwks_set_free(struct gw_jwks_set *);
/* The key with tag, or NULL (borrowed from the set). */
const struct gw_jwk *gw_jwks_find_tag(const struct gw_jwks_set *, uint64_t tag);

/*
 * Strict base64url without padding (RFC 7515 2): one encoding per byte
 * string.  0 with *out malloc'd (caller frees), -1 otherwise.
 */
int gw_b64url_decode(const char *s, size_t n, unsigned char **out,
                     size_t *outlen);
/*
 * JOSE's ECDSA signature R||S (RFC 7518 3.4), each half bytes, as the DER
 * OpenSSL verifies.  NULL when siglen is not exactly 2 * half (a DER
 * signature in a token is refused here); OPENSSL_free the result.
 */
unsigned char *gw_jws_ecdsa_der(const unsigned char *sig, size_t siglen,
                                size_t half, size_t *derlen);
/* DER ECDSA signature -> R||S of 2 * half bytes; malloc'd, or NULL. */
unsigned char *gw_jws_ecdsa_raw(const unsigned char *der, size_t derlen,
                                size_t half);

/* Where an issuer's set comes from, and its timing (config.h keys). */
struct gw_jwks_src_conf {
	const char *issuer;
	const char *discovery_url; /* at most one of these two */
	const char *jwks_uri;
	const char *ca_file;   /* NULL: the system store */
	long long refresh_s;   /* 0: Cache-Control max-age, clamped */
	long long max_stale_s; /* 0: 24 h */
	long long connect_ms;  /* 0: 3 s */
	long long timeout_ms;  /* 0: 5 s */
};

/* Fetch results, for metrics (hssgw_jwks_fetches_total{result}). */
enum gw_jwks_result {
	GW_JWKS_OK,       /* a new set installed */
	GW_JWKS_ERROR,    /* the IdP could not be reached or said no */
	GW_JWKS_REJECTED, /* an answer came but was malformed or hostile */
	GW_JWKS_LIMITED,  /* an unknown-kid refetch refused by the rate limit */
	GW_JWKS_RESULT__MAX
};

struct gw_jwks_stats {
	uint64_t fetches[GW_JWKS_RESULT__MAX];
	uint64_t kid_refetches; /* fetches triggered by an unknown kid */
	int64_t last_ok_s;      /* last good fetch (0: never) */
	size_t nkeys;           /* keys in the current set */
	int stale;              /* past max_stale_s, or never fetched */
};

struct gw_jwks_src;

/* A source; initial (a set from jwks_file) is taken.  NULL on ENOMEM. */
struct gw_jwks_src *gw_jwks_src_new(const struct gw_jwks_src_conf *,
                                    struct gw_jwks_set *initial);
/* Frees a source and its set reference; accepts NULL. */
void gw_jwks_src_free(struct gw_jwks_src *);
/*
 * The current set at now_s as a new reference (caller frees), or NULL
 * when there is none or the last good fetch is older than max_stale_s:
 * then tokens fail closed.
 */
struct gw_jwks_set *gw_jwks_src_get(struct gw_jwks_src *, int64_t now_s);
/*
 * Fetches when due (first fetch, refresh, retry after a failure); single
 * flight.  Returns 0 when the source has a usable set afterwards, 1 when
 * it has but this call's fetch failed or was refused (the last good set
 * stays), -1 when it has none; the failure in err for 1 and -1.  Called
 * off the request path once a second.
 */
int gw_jwks_src_tick(struct gw_jwks_src *, int64_t now_s, char *err,
                     size_t errlen);
/*
 * A token named a kid the set lacks: asks the next gw_jwks_src_tick to
 * refetch, unless a fetch is in flight or one was asked in the last
 * GW_JWKS_KID_REFETCH_S seconds.  Never waits (the token is refused now;
 * a later one with that kid verifies once the set arrived).  1 if a
 * refetch was scheduled, else 0.
 */
int gw_jwks_src_unknown_kid(struct gw_jwks_src *, int64_t now_s);
/* Takes the set and timing of old when both fetch the same URLs. */
void gw_jwks_src_adopt(struct gw_jwks_src *, struct gw_jwks_src *old);
/* Counters and state for metrics and readiness. */
void gw_jwks_src_stats(struct gw_jwks_src *, int64_t now_s,
                       struct gw_jwks_stats *);
/*
 * The last failure, client-safe and without key bytes; "" when none.
 * Copied into buf.
 */
void gw_jwks_src_last_error(struct gw_jwks_src *, char *buf, size_t len);
/*
 * The canonical SubjectPublicKeyInfo PEM of pkey (what libjwt reads),
 * NUL-terminated, at most max bytes: 0, or -1 with *out NULL.  The
 * caller frees *out.
 */
int gw_jwk_pem(EVP_PKEY *pkey, size_t max, unsigned char **out, size_t *outlen);

#endif
