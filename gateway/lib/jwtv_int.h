/*
 * Internal to JWT verification: for jwtv*.c / jwt_*.c only, never included
 * anywhere else (the public API is jwtv.h).  It holds the pinned algorithm
 * table (defined in jwtv.c) and the functions jwtv.c, jwt_json.c,
 * jwt_claims.c and jwt_mint.c call across files, all named jwt_*; calls
 * go one way: jwtv.c -> jwt_claims.c, both -> jwt_json.c.  It must
 * stay free of <jwt.h>: libjwt's names for the algorithms are kept in
 * jwtv.c.
 */
#ifndef GW_JWTV_INT_H
#define GW_JWTV_INT_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "jwks.h"
#include "jwtv.h"

#define SECRET_MIN 32 /* RFC 7518 3.2: key >= hash size */

enum alg {
	ALG_RS256,
	ALG_RS384,
	ALG_RS512,
	ALG_PS256,
	ALG_PS384,
	ALG_PS512,
	ALG_ES256,
	ALG_ES384,
	ALG_ES512,
	ALG_EDDSA,
	ALG_HS256,
	ALG__MAX
};

struct alg_info {
	const char *name;
	int pkey_type;             /* EVP_PKEY_NONE: HMAC secret */
	const EVP_MD *(*md)(void); /* NULL: EdDSA hashes nothing first */
	int pss;                   /* RSASSA-PSS, salt = hash length */
	size_t half;               /* ES: bytes of R and of S (RFC 7518 3.4) */
	const char *group[2];      /* ES: the curve, by both OpenSSL names */
	enum gw_jwk_kty kty;
	int bits; /* ES: the curve's bits in the JWK */
};

/* One row per alg, the pinned algorithms (RFC 7518 3.1, RFC 8037 3.1). */
extern const struct alg_info jwt_algtab[ALG__MAX];

/* Never prompt on a terminal for an encrypted PEM: refuse it instead. */
int jwt_no_passphrase(char *buf, int size, int rwflag, void *u);
/* The alg by its exact (case-sensitive) name, or -1. */
int jwt_alg_lookup(const char *name);
/* Checks that a key's type matches its pinned alg. */
int jwt_check_pkey(EVP_PKEY *pkey, enum alg alg, char *err, size_t errlen);
/*
 * The strict JSON readers (jwt_json.c).
 * Parses JSON text into an object, strictly (no NUL, valid UTF-8, no
 * \u0000, nothing after it); NULL if it is anything else.
 */
json_object *jwt_parse_json(const unsigned char *raw, size_t len);
/* Borrowed string member, or NULL if absent or not a string. */
const char *jwt_get_str(json_object *o, const char *name);
/* A NumericDate (RFC 7519 2): a JSON number, never a string; 0 or -1. */
int jwt_numeric_date(json_object *v, int64_t *out);
/* A payload's claims as policies read them (jwt_claims.c); reason set. */
enum gw_err jwt_build_claims(json_object *pl, struct gw_claims **out,
                             const char **reason);

#endif
