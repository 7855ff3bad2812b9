/*
 * JWT verification: the only file that includes <jwt.h> (the claims are
 * built in jwt_claims.c, development tokens minted in jwt_mint.c).
 *
 * Owns the keyset (process lifetime, immutable after gw_jwt_keyset_load and
 * shared read-only by worker threads): per issuer its audiences and keys,
 * each key pinned to one algorithm.  RS256/ES256 keys are PEM public keys
 * checked with OpenSSL at load (RSA >= 2048 bits, EC on P-256); HS256 keys
 * are secret files (mode 0600, >= 32 bytes) wiped on free.
 *
 * Verification order: size cap, three non-empty base64url segments (strict,
 * canonical), header (alg one of ours, typ JWT or absent, no crit), key
 * choice from the *unverified* iss and kid, header alg == the key's pinned
 * alg, signature, the registered claims (exp, nbf, iat, iss, aud, sub),
 * which libjwt 1.10.2 does not check at all, and last the libjwt gate.
 *
 * Signatures are checked twice, and both must pass.  First by this file
 * with OpenSSL EVP, using the EVP_PKEY parsed at load and the pinned alg,
 * never the header's.  Why not libjwt alone (read from its 1.10.x source):
 * it re-parses the PEM on every call, picks the algorithm from the token
 * header (so an HS256 token keyed with an RSA PEM verifies if the PEM is
 * passed as the key), upstream 1.10.2 compares HMACs with strcmp (not
 * constant time), it decodes base64 by its own rules, and it parses JSON
 * with jansson where we use json-c.  Then libjwt's jwt_decode runs with the
 * same pinned key material and jwt_get_alg() must equal the pinned alg: a
 * second parser that must agree, so a token json-c and jansson read differently
 * fails closed (tested with an integer only json-c accepts).  libjwt never
 * sees a public key for HS256, nor an HMAC secret for RS256/ES256.
 *
 * Cost, and the verified-token cache.  Keys are parsed once, at load (the
 * EVP_PKEY for our check, the canonical PEM bytes for libjwt).  What
 * remains per full check is libjwt's: jwt_decode takes key bytes, not a
 * key, so 1.10.2 runs PEM_read_bio_PUBKEY on every RS256/ES256 call, and
 * with OpenSSL 3's decoders that parse costs more than the signature check
 * itself (bench_pipeline row "PEM parse libjwt repeats").  Its API leaves
 * no way round that, so the full check runs once per token: a token whose
 * exact bytes verified before under this keyset is answered from the
 * keyset's cache (jwtcache.c), keyed by SHA-256 of the whole token, with
 * exp and nbf checked again at now.  Only a token that passed every check,
 * libjwt's included, is cached; failures never are.
 *
 * Thread safety: verification only reads the keyset (the cache has its own
 * locks).  OpenSSL 3 allows concurrent use of one EVP_PKEY for verification
 * (openssl-threads(7)); libjwt's jwt_decode works on its own jwt_t and
 * copies the key; jansson (>= 2.7) seeds its hash once with atomics; no
 * libjwt allocator hooks are set.  Never logs, and never puts key bytes or the
 * token in a fault.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "jwks.h"
#include "jwtcache.h"
#include "jwtv.h"
#include "jwtv_int.h"

#define KEY_FILE_MAX    ((size_t)64 * 1024) /* PEM public key file */
#define SECRET_FILE_MAX 4096                /* HS256 secret file */
#define RSA_MIN_BITS    2048
#define JWKS_FILE_MAX   ((size_t)GW_JWKS_MAX_BYTES)
#define LEEWAY_MAX      3600
#define TOKEN_MAX_LIMIT (1024LL * 1024)
#define FIELD           "Authorization"

/*
 * The pinned algorithms (RFC 7518 3.1, RFC 8037 3.1): everything else,
 * "none" included, is refused.  The row's fields are in jwtv_int.h.
 */
const struct alg_info jwt_algtab[ALG__MAX] = {
    [ALG_RS256] =
        {"RS256", EVP_PKEY_RSA, EVP_sha256, 0, 0, {NULL, NULL}, GW_JWK_RSA, 0},
    [ALG_RS384] =
        {"RS384", EVP_PKEY_RSA, EVP_sha384, 0, 0, {NULL, NULL}, GW_JWK_RSA, 0},
    [ALG_RS512] =
        {"RS512", EVP_PKEY_RSA, EVP_sha512, 0, 0, {NULL, NULL}, GW_JWK_RSA, 0},
    [ALG_PS256] =
        {"PS256", EVP_PKEY_RSA, EVP_sha256, 1, 0, {NULL, NULL}, GW_JWK_RSA, 0},
    [ALG_PS384] =
        {"PS384", EVP_PKEY_RSA, EVP_sha384, 1, 0, {NULL, NULL}, GW_JWK_RSA, 0},
    [ALG_PS512] =
        {"PS512", EVP_PKEY_RSA, EVP_sha512, 1, 0, {NULL, NULL}, GW_JWK_RSA, 0},
    [ALG_ES256] = {"ES256",
                   EVP_PKEY_EC,
                   EVP_sha256,
                   0,
                   32,
                   {"prime256v1", "P-256"},
                   GW_JWK_EC,
                   256},
    [ALG_ES384] = {"ES384",
                   EVP_PKEY_EC,
                   EVP_sha384,
                   0,
                   48,
                   {"secp384r1", "P-384"},
                   GW_JWK_EC,
                   384},
    [ALG_ES512] = {"ES512",
                   EVP_PKEY_EC,
                   EVP_sha512,
                   0,
                   66,
                   {"secp521r1", "P-521"},
                   GW_JWK_EC,
                   521},
    [ALG_EDDSA] =
        {"EdDSA", EVP_PKEY_ED25519, NULL, 0, 0, {NULL, NULL}, GW_JWK_OKP, 0},
    [ALG_HS256] = {"HS256",
                   EVP_PKEY_NONE,
                   EVP_sha256,
                   0,
                   0,
                   {NULL, NULL},
                   GW_JWK__MAX,
                   0},
};

/*
 * libjwt 1.10.2's name for each alg, for the second check, kept here so
 * that jwtv_int.h stays free of <jwt.h>.  Its jwt_alg_t (jwt.h) stops at
 * ES512, so PS* and EdDSA have none (JWT_ALG_INVAL) and are checked by
 * OpenSSL alone: the second check is skipped for them, never faked (see
 * libjwt_verify).
 */
static const jwt_alg_t libjwt_alg[ALG__MAX] = {
    [ALG_RS256] = JWT_ALG_RS256, [ALG_RS384] = JWT_ALG_RS384,
    [ALG_RS512] = JWT_ALG_RS512, [ALG_PS256] = JWT_ALG_INVAL,
    [ALG_PS384] = JWT_ALG_INVAL, [ALG_PS512] = JWT_ALG_INVAL,
    [ALG_ES256] = JWT_ALG_ES256, [ALG_ES384] = JWT_ALG_ES384,
    [ALG_ES512] = JWT_ALG_ES512, [ALG_EDDSA] = JWT_ALG_INVAL,
    [ALG_HS256] = JWT_ALG_HS256,
};

_Static_assert(sizeof(jwt_algtab) / sizeof(jwt_algtab[0]) == ALG__MAX,
               "every alg needs a row");
_Static_assert(sizeof(libjwt_alg) / sizeof(libjwt_alg[0]) == ALG__MAX,
               "every alg needs a libjwt name");

struct key {
	char *kid;          /* NULL: for tokens without kid */
	enum alg alg;       /* pinned */
	EVP_PKEY *pkey;     /* RS256/ES256 */
	unsigned char *mat; /* PEM of pkey (for libjwt) or HMAC secret */
	size_t matlen;
	int secret; /* mat is a secret: wipe it */
};

/* The key a signature is checked with: configured or from a JWK Set. */
struct vkey {
	enum alg alg; /* pinned: by the key, or the token's once allowed */
	EVP_PKEY *pkey;
	const unsigned char *mat; /* PEM (libjwt) or HMAC secret */
	size_t matlen;
	uint64_t tag; /* 0: a configured key; else the JWK's tag */
};

struct issuer {
	char *name;
	char **aud;
	size_t naud;
	struct key *keys;
	size_t nkeys;
	unsigned allow;          /* JWKS: bit per enum alg allowed */
	struct gw_jwks_src *src; /* NULL: configured keys only */
};

struct gw_jwt_keyset {
	struct issuer *iss;
	size_t niss;
	int64_t leeway;
	size_t max_token;
	/*
	 * Verified tokens (jwtcache.c): mutable, with its own locks, and
	 * owned by this keyset, so a reload (a new keyset) never sees an
	 * entry verified with keys it does not hold.  NULL: off.
	 */
	struct gw_jwt_cache *cache;
};

/* Shapes of the registered claims (RFC 7519 4.1) hssgw checks. */
enum ctype { C_STRING, C_DATE, C_AUD };

static const struct claim_rule {
	const char *name;
	enum ctype type;
	int required;
	const char *missing; /* client-safe reasons */
	const char *bad;
} claimtab[] = {
    {"iss", C_STRING, 1, "missing iss claim", "iss must be a string"},
    {"sub", C_STRING, 1, "missing sub claim", "sub must be a non-empty string"},
    {"aud", C_AUD, 1, "missing aud claim",
     "aud must be a string or an array of strings"},
    {"exp", C_DATE, 1, "missing exp claim", "exp must be a number"},
    {"nbf", C_DATE, 0, NULL, "nbf must be a number"},
    {"iat", C_DATE, 0, NULL, "iat must be a number"},
    {"jti", C_STRING, 0, NULL, "jti must be a non-empty string"},
};

/* One verification's parse state: request lifetime, freed in one place. */
struct tok {
	const char *seg[3];
	size_t seglen[3];
	json_object *hdr;
	json_object *pl;
	unsigned char *sig;
	size_t siglen;
	enum alg alg;
	const char *kid;
};

/* Never prompt on a terminal for an encrypted PEM: refuse it instead. */
int
jwt_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

int
jwt_alg_lookup(const char *name)
{
	int i;

	/* RFC 7515 4.1.1: alg values are case-sensitive. */
	for (i = 0; i < ALG__MAX; i++)
		if (name != NULL && strcmp(name, jwt_algtab[i].name) == 0)
			return i;
	return -1;
}

/* Decodes one segment into a JSON object; NULL if it is anything else. */
static json_object *
decode_json(const char *seg, size_t n)
{
	json_object *obj = NULL;
	unsigned char *raw = NULL;
	size_t len = 0;

	if (gw_b64url_decode(seg, n, &raw, &len) == 0)
		obj = jwt_parse_json(raw, len);
	free(raw);
	return obj;
}

/* Checks that a key's type matches its pinned alg. */
int
jwt_check_pkey(EVP_PKEY *pkey, enum alg alg, char *err, size_t errlen)
{
	char group[64];

	if (EVP_PKEY_get_base_id(pkey) != jwt_algtab[alg].pkey_type) {
		snprintf(err, errlen, "key type does not match %s",
		         jwt_algtab[alg].name);
		return -1;
	}
	if (jwt_algtab[alg].pkey_type == EVP_PKEY_RSA &&
	    EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS) {
		snprintf(err, errlen, "RSA key has %d bits, %d required",
		         EVP_PKEY_get_bits(pkey), RSA_MIN_BITS);
		return -1;
	}
	if (jwt_algtab[alg].half != 0 &&
	    (EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1 ||
	     (strcmp(group, jwt_algtab[alg].group[0]) != 0 &&
	      strcmp(group, jwt_algtab[alg].group[1]) != 0))) {
		snprintf(err, errlen, "%s needs an EC key on %s",
		         jwt_algtab[alg].name, jwt_algtab[alg].group[1]);
		return -1;
	}
	return 0;
}

static int
load_pubkey(struct key *k, const char *path, char *err, size_t errlen)
{
	char why[160] = "";
	char *buf = NULL;
	size_t len = 0;
	BIO *in = NULL;
	int rc = -1;

	/* err holds the out-of-memory reason until a failure overwrites it. */
	snprintf(err, errlen, "%s: out of memory", path);
	if (gw_read_file(path, KEY_FILE_MAX, 0, &buf, &len, err, errlen) == -1)
		goto out;
	in = BIO_new_mem_buf(buf, (int)len);
	if (in == NULL)
		goto out;
	k->pkey = PEM_read_bio_PUBKEY(in, NULL, jwt_no_passphrase, NULL);
	if (k->pkey == NULL) {
		snprintf(err, errlen, "%s: not a PEM public key", path);
		goto out;
	}
	if (jwt_check_pkey(k->pkey, k->alg, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto out;
	}
	/* libjwt gets the canonical PEM of exactly the key checked above. */
	if (gw_jwk_pem(k->pkey, KEY_FILE_MAX, &k->mat, &k->matlen) == -1)
		goto out;
	rc = 0;
out:
	BIO_free(in);
	free(buf);
	return rc;
}

static int
load_secret(struct key *k, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = -1;

	if (gw_read_file(path, SECRET_FILE_MAX, 1, &buf, &len, err, errlen) ==
	    -1)
		goto out;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (len < SECRET_MIN) {
		snprintf(err, errlen, "%s: HS256 secret shorter than %d bytes",
		         path, SECRET_MIN);
		goto out;
	}
	/* A public key is no secret: refuse the key-confusion setup. */
	if (strstr(buf, "-----BEGIN") != NULL) {
		snprintf(err, errlen, "%s: HS256 secret looks like a PEM key",
		         path);
		goto out;
	}
	k->mat = (unsigned char *)buf;
	k->matlen = len;
	k->secret = 1;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		gw_wipe(buf, len);
		free(buf);
	}
	return rc;
}

static void
key_reset(struct key *k)
{
	free(k->kid);
	EVP_PKEY_free(k->pkey);
	if (k->mat != NULL && k->secret)
		gw_wipe(k->mat, k->matlen);
	free(k->mat);
	memset(k, 0, sizeof(*k));
}

/* The issuer's allow-list for JWKS keys (default RS256); never HMAC. */
static int
load_algorithms(struct issuer *is, const struct gw_conf_issuer *ci, char *err,
                size_t errlen)
{
	size_t i;
	int a;

	is->allow = 1U << ALG_RS256;
	if (ci->nalgorithms > 0)
		is->allow = 0;
	for (i = 0; i < ci->nalgorithms; i++) {
		a = jwt_alg_lookup(ci->algorithms[i]);
		/* A JWK is public: an HMAC keyed with it is forgeable. */
		if (a < 0 || a == ALG_HS256) {
			snprintf(err, errlen,
			         "jwt issuer %s: algorithms[%zu]: must be one "
			         "of RS256..512, PS256..512, ES256..512, EdDSA",
			         ci->issuer, i);
			return -1;
		}
		is->allow |= 1U << a;
	}
	return 0;
}

/*
 * The issuer's JWK Set source, if any: jwks_file is read and parsed now
 * (a bad file fails the load), URLs are fetched by gw_jwt_keyset_tick.
 */
static int
load_jwks(struct issuer *is, const struct gw_conf_issuer *ci, char *err,
          size_t errlen)
{
	struct gw_jwks_src_conf sc;
	struct gw_jwks_set *set = NULL;
	char why[256], *buf = NULL;
	size_t len = 0;
	int n = 0;

	n = (ci->discovery_url != NULL) + (ci->jwks_uri != NULL) +
	    (ci->jwks_file != NULL);
	if (n == 0) {
		if (ci->nalgorithms > 0 || ci->jwks_ca_file != NULL ||
		    ci->jwks_refresh_s != 0 || ci->jwks_max_stale_s != 0) {
			snprintf(err, errlen,
			         "jwt issuer %s: algorithms and jwks_* keys "
			         "need discovery_url, jwks_uri or jwks_file",
			         ci->issuer);
			return -1;
		}
		return 0;
	}
	if (n > 1) {
		snprintf(err, errlen,
		         "jwt issuer %s: only one of discovery_url, jwks_uri "
		         "and jwks_file",
		         ci->issuer);
		return -1;
	}
	/* OIDC Discovery 7: without TLS anyone can serve their own keys. */
	if ((ci->discovery_url != NULL &&
	     strncmp(ci->discovery_url, "https://", 8) != 0) ||
	    (ci->jwks_uri != NULL &&
	     strncmp(ci->jwks_uri, "https://", 8) != 0)) {
		snprintf(err, errlen,
		         "jwt issuer %s: discovery_url and jwks_uri must be "
		         "https",
		         ci->issuer);
		return -1;
	}
	if (load_algorithms(is, ci, err, errlen) == -1)
		return -1;
	if (ci->jwks_file != NULL) {
		if (gw_read_file(ci->jwks_file, JWKS_FILE_MAX, 0, &buf, &len,
		                 why, sizeof(why)) == -1 ||
		    gw_jwks_parse(buf, len, &set, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "jwt issuer %s: jwks_file: %s",
			         ci->issuer, why);
			free(buf);
			return -1;
		}
		free(buf);
	}
	memset(&sc, 0, sizeof(sc));
	sc.issuer = ci->issuer;
	sc.discovery_url = ci->discovery_url;
	sc.jwks_uri = ci->jwks_uri;
	sc.ca_file = ci->jwks_ca_file;
	sc.refresh_s = ci->jwks_refresh_s;
	sc.max_stale_s = ci->jwks_max_stale_s;
	is->src = gw_jwks_src_new(&sc, set);
	if (is->src == NULL) {
		snprintf(err, errlen, "jwt issuer %s: out of memory",
		         ci->issuer);
		return -1;
	}
	return 0;
}

static int
load_issuer(struct issuer *is, const struct gw_conf_issuer *ci, char *err,
            size_t errlen)
{
	const struct gw_conf_jwt_key *ck;
	char why[384];
	size_t i, j;
	int a;

	if (ci->issuer == NULL || ci->issuer[0] == '\0' ||
	    ci->naudiences == 0 ||
	    (ci->nkeys == 0 && ci->discovery_url == NULL &&
	     ci->jwks_uri == NULL && ci->jwks_file == NULL)) {
		snprintf(err, errlen,
		         "jwt issuer needs a name, audiences and keys, "
		         "discovery_url, jwks_uri or jwks_file");
		return -1;
	}
	/* err holds the out-of-memory reason until a failure overwrites it. */
	snprintf(err, errlen, "jwt issuer %s: out of memory", ci->issuer);
	is->name = gw_strdup(ci->issuer);
	is->aud = calloc(ci->naudiences, sizeof(*is->aud));
	is->keys = calloc(ci->nkeys ? ci->nkeys : 1, sizeof(*is->keys));
	if (is->name == NULL || is->aud == NULL || is->keys == NULL)
		return -1;
	for (i = 0; i < ci->naudiences; i++) {
		if (ci->audiences[i] == NULL || ci->audiences[i][0] == '\0') {
			snprintf(err, errlen, "jwt issuer %s: empty audience",
			         ci->issuer);
			return -1;
		}
		is->aud[i] = gw_strdup(ci->audiences[i]);
		if (is->aud[i] == NULL)
			return -1;
		is->naud++;
	}
	for (i = 0; i < ci->nkeys; i++) {
		ck = &ci->keys[i];
		a = jwt_alg_lookup(ck->alg);
		if (a < 0 || ck->file == NULL) {
			snprintf(
			    err, errlen,
			    "jwt issuer %s: key %zu: alg must be RS256..512, "
			    "PS256..512, ES256..512, EdDSA or HS256, with a "
			    "file",
			    ci->issuer, i);
			return -1;
		}
		for (j = 0; ck->kid != NULL && j < i; j++)
			if (ci->keys[j].kid != NULL &&
			    strcmp(ci->keys[j].kid, ck->kid) == 0) {
				snprintf(err, errlen,
				         "jwt issuer %s: duplicate kid %s",
				         ci->issuer, ck->kid);
				return -1;
			}
		is->keys[i].alg = (enum alg)a;
		is->nkeys++;
		if (ck->kid != NULL) {
			if (ck->kid[0] == '\0') {
				snprintf(err, errlen,
				         "jwt issuer %s: empty kid",
				         ci->issuer);
				return -1;
			}
			is->keys[i].kid = gw_strdup(ck->kid);
			if (is->keys[i].kid == NULL)
				return -1;
		}
		if ((a == ALG_HS256 ? load_secret : load_pubkey)(
		        &is->keys[i], ck->file, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "jwt issuer %s: %s", ci->issuer,
			         why);
			return -1;
		}
	}
	return load_jwks(is, ci, err, errlen);
}

static void
issuer_reset(struct issuer *is)
{
	size_t i;

	for (i = 0; i < is->naud; i++)
		free(is->aud[i]);
	for (i = 0; i < is->nkeys; i++)
		key_reset(&is->keys[i]);
	free(is->aud);
	free(is->keys);
	free(is->name);
	gw_jwks_src_free(is->src);
	memset(is, 0, sizeof(*is));
}

/* Loads every issuer's keys; NULL with a reason in err. */
struct gw_jwt_keyset *
gw_jwt_keyset_load(const struct gw_config *conf, char *err, size_t errlen)
{
	struct gw_jwt_keyset *ks = NULL, *ret = NULL;
	size_t i, j;

	if (conf == NULL || conf->nissuers == 0) {
		snprintf(err, errlen, "jwt: no issuers configured");
		goto out;
	}
	if (conf->jwt_leeway_s < 0 || conf->jwt_leeway_s > LEEWAY_MAX) {
		snprintf(err, errlen, "jwt_leeway_s must be in [0, %d]",
		         LEEWAY_MAX);
		goto out;
	}
	if (conf->jwt_max_token_bytes < 1 ||
	    conf->jwt_max_token_bytes > TOKEN_MAX_LIMIT) {
		snprintf(err, errlen,
		         "jwt_max_token_bytes must be in [1, %lld]",
		         TOKEN_MAX_LIMIT);
		goto out;
	}
	if (conf->jwt_cache_entries < 0 ||
	    conf->jwt_cache_entries > GW_JWTC_MAX) {
		snprintf(err, errlen, "jwt.cache_entries must be in [0, %d]",
		         GW_JWTC_MAX);
		goto out;
	}
	snprintf(err, errlen, "jwt: out of memory");
	ks = calloc(1, sizeof(*ks));
	if (ks == NULL)
		goto out;
	ks->leeway = conf->jwt_leeway_s;
	ks->max_token = (size_t)conf->jwt_max_token_bytes;
	if (conf->jwt_cache_entries > 0) {
		ks->cache = gw_jwtc_new((size_t)conf->jwt_cache_entries);
		if (ks->cache == NULL)
			goto out;
	}
	ks->iss = calloc(conf->nissuers, sizeof(*ks->iss));
	if (ks->iss == NULL)
		goto out;
	for (i = 0; i < conf->nissuers; i++) {
		for (j = 0; j < i; j++)
			if (conf->issuers[i].issuer != NULL &&
			    conf->issuers[j].issuer != NULL &&
			    strcmp(conf->issuers[i].issuer,
			           conf->issuers[j].issuer) == 0) {
				snprintf(err, errlen,
				         "jwt issuer %s configured twice",
				         conf->issuers[i].issuer);
				goto out;
			}
		ks->niss++;
		if (load_issuer(&ks->iss[i], &conf->issuers[i], err, errlen) ==
		    -1)
			goto out;
	}
	ret = ks;
	ks = NULL;
out:
	gw_jwt_keyset_free(ks);
	return ret;
}

/* Frees a keyset, wiping secrets; accepts NULL. */
void
gw_jwt_keyset_free(struct gw_jwt_keyset *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->niss; i++)
		issuer_reset(&ks->iss[i]);
	gw_jwtc_free(ks->cache);
	free(ks->iss);
	free(ks);
}

/* Splits a compact JWS into exactly three non-empty segments. */
static int
split(const char *token, size_t len, struct tok *t)
{
	const char *p = token, *dot;
	size_t i;

	for (i = 0; i < 3; i++) {
		dot = memchr(p, '.', len - (size_t)(p - token));
		if ((i < 2) != (dot != NULL))
			return -1;
		t->seg[i] = p;
		t->seglen[i] =
		    dot != NULL ? (size_t)(dot - p) : len - (size_t)(p - token);
		if (t->seglen[i] == 0)
			return -1;
		p = dot != NULL ? dot + 1 : NULL;
	}
	return 0;
}

/* Header rules (RFC 7515 4.1); reason set on failure. */
static int
check_header(struct tok *t, const char **reason)
{
	json_object *v = NULL;
	const char *typ;
	int a;

	if (!json_object_object_get_ex(t->hdr, "alg", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		*reason = "token header has no alg";
		return -1;
	}
	a = jwt_alg_lookup(json_object_get_string(v));
	if (a < 0) {
		*reason = "token algorithm not allowed";
		return -1;
	}
	t->alg = (enum alg)a;
	if (json_object_object_get_ex(t->hdr, "typ", &v)) {
		typ = json_object_is_type(v, json_type_string)
		          ? json_object_get_string(v)
		          : NULL;
		if (typ == NULL || strcasecmp(typ, "JWT") != 0) {
			*reason = "token type must be JWT";
			return -1;
		}
	}
	/* RFC 7515 4.1.11: we understand no extension, so crit fails. */
	if (json_object_object_get_ex(t->hdr, "crit", NULL)) {
		*reason = "critical header extensions not supported";
		return -1;
	}
	if (json_object_object_get_ex(t->hdr, "kid", &v)) {
		t->kid = json_object_is_type(v, json_type_string)
		             ? json_object_get_string(v)
		             : NULL;
		if (t->kid == NULL || t->kid[0] == '\0') {
			*reason = "malformed kid";
			return -1;
		}
	}
	return 0;
}

static const struct issuer *
find_issuer(const struct gw_jwt_keyset *ks, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < ks->niss; i++)
		if (strcmp(ks->iss[i].name, name) == 0)
			return &ks->iss[i];
	return NULL;
}

/*
 * Our own check of the signature with the pinned alg: 0 if it holds.
 * ES signatures are JOSE's raw R||S of exactly 2 * half bytes, turned
 * into the DER OpenSSL wants; a DER signature in a token is refused.
 * PS: RFC 7518 3.5 fixes MGF1 to the same hash and the salt to the
 * hash's length; OpenSSL would otherwise accept any salt when verifying.
 * EdDSA: pure Ed25519, no digest (EVP_SIGNATURE-ED25519(7)).
 */
static int
evp_verify(const struct vkey *k, const struct tok *t)
{
	const struct alg_info *ai = &jwt_algtab[k->alg];
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	const unsigned char *sig = t->sig;
	size_t inlen, siglen = t->siglen, derlen = 0;
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md_alg;
	int rc = -1;

	/* The signing input is "header.payload", contiguous in the token. */
	inlen = t->seglen[0] + 1 + t->seglen[1];
	if (k->alg == ALG_HS256) {
		if (k->matlen > INT_MAX ||
		    HMAC(EVP_sha256(), k->mat, (int)k->matlen,
		         (const unsigned char *)t->seg[0], inlen, md,
		         &mdlen) == NULL)
			goto out;
		rc = gw_ct_equal(md, mdlen, sig, siglen) ? 0 : -1;
		goto out;
	}
	if (k->pkey == NULL || EVP_PKEY_get_base_id(k->pkey) != ai->pkey_type)
		goto out;
	if (ai->half != 0) {
		der = gw_jws_ecdsa_der(sig, siglen, ai->half, &derlen);
		if (der == NULL)
			goto out;
		sig = der;
		siglen = derlen;
	}
	md_alg = ai->md != NULL ? ai->md() : NULL;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL ||
	    EVP_DigestVerifyInit(ctx, &pctx, md_alg, NULL, k->pkey) != 1)
		goto out;
	if (ai->pss &&
	    (md_alg == NULL ||
	     EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) !=
	         1 ||
	     EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md_alg) != 1))
		goto out;
	if (EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)t->seg[0],
	                     inlen) == 1)
		rc = 0;
out:
	gw_wipe(md, sizeof(md));
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return rc;
}

/*
 * libjwt's independent check: must verify and agree on the alg.  libjwt
 * 1.10.2 has no PS* or EdDSA (jwt_alg_t in jwt.h ends at ES512): for those
 * the second check cannot run and is skipped here, on purpose; OpenSSL's
 * check above with the pinned alg is the one that counts for them.
 */
static int
libjwt_verify(const struct vkey *k, const char *token)
{
	jwt_t *j = NULL;
	int rc = -1;

	if (libjwt_alg[k->alg] == JWT_ALG_INVAL)
		return 0;
	if (k->mat == NULL || k->matlen > INT_MAX)
		return -1;
	if (jwt_decode(&j, token, k->mat, (int)k->matlen) == 0 && j != NULL &&
	    jwt_get_alg(j) == libjwt_alg[k->alg])
		rc = 0;
	jwt_free(j);
	return rc;
}

static void
vkey_of_key(const struct key *k, struct vkey *vk)
{
	vk->alg = k->alg;
	vk->pkey = k->pkey;
	vk->mat = k->mat;
	vk->matlen = k->matlen;
	vk->tag = 0;
}

/*
 * Chooses a configured key and checks the signature with OpenSSL.  With a
 * kid, the kid must name one of the issuer's keys; without, the issuer's
 * kid-less keys are tried, or its only key.  The header alg must equal the
 * key's pinned alg.  1 with *vk the key that verified, 0 when no key is a
 * candidate (the JWK Set may have one), -1 on failure; reason set.
 */
static int
verify_sig(const struct issuer *is, const struct tok *t, struct vkey *vk,
           const char **reason)
{
	const struct key *k;
	size_t i, tried = 0;
	int candidates = 0;

	for (i = 0; i < is->nkeys; i++) {
		k = &is->keys[i];
		if (t->kid != NULL) {
			if (k->kid == NULL || strcmp(k->kid, t->kid) != 0)
				continue;
		} else if (k->kid != NULL && is->nkeys != 1)
			continue;
		candidates++;
		if (k->alg != t->alg)
			continue;
		tried++;
		vkey_of_key(k, vk);
		if (evp_verify(vk, t) == 0)
			return 1;
	}
	if (candidates == 0) {
		*reason = t->kid != NULL ? "unknown kid" : "token needs a kid";
		return 0;
	}
	*reason = tried == 0 ? "token algorithm not allowed for this key"
	                     : "bad signature";
	return -1;
}

/* Whether a JWK may verify alg: type and curve fit, its own alg agrees. */
static int
jwk_fits(const struct gw_jwk *k, enum alg alg)
{
	if (k->kty != jwt_algtab[alg].kty)
		return 0;
	if (jwt_algtab[alg].bits != 0 && k->bits != jwt_algtab[alg].bits)
		return 0;
	/* RFC 7517 4.4, RFC 8725 3.1: a key's alg binds it to one alg. */
	return k->alg[0] == '\0' || strcmp(k->alg, jwt_algtab[alg].name) == 0;
}

/*
 * The JWK Set's keys for the token: with a kid, the keys of that kid;
 * without, every key whose type fits the alg.  1 verified (*vk), 0 no key
 * has the kid, -1 failed; reason set.
 */
static int
try_set(const struct gw_jwks_set *set, const struct tok *t, struct vkey *vk,
        const char **reason)
{
	const struct gw_jwk *k;
	size_t i, tried = 0;
	int candidates = 0;

	for (i = 0; i < set->n; i++) {
		k = &set->keys[i];
		if (t->kid != NULL &&
		    (k->kid == NULL || strcmp(k->kid, t->kid) != 0))
			continue;
		candidates++;
		if (!jwk_fits(k, t->alg))
			continue;
		tried++;
		vk->alg = t->alg;
		vk->pkey = k->pkey;
		vk->mat = k->pem;
		vk->matlen = k->pemlen;
		vk->tag = k->tag;
		if (evp_verify(vk, t) == 0)
			return 1;
	}
	if (candidates == 0 && t->kid != NULL) {
		*reason = "unknown kid";
		return 0;
	}
	if (tried == 0)
		*reason = "token algorithm not allowed for this key";
	else
		*reason = "bad signature";
	return -1;
}

/*
 * Verifies against the issuer's JWK Set.  The alg must be in the
 * issuer's allow-list before any key is looked at.  An unknown kid asks
 * the source for one refetch (rate-limited there) and looks again.  On
 * success *held is the set vk points into (the caller frees it after the
 * last use of vk).  GW_OK, GW_ERR_TOKEN_INVALID, or GW_ERR_JWKS_STALE when
 * no set is usable: then tokens fail closed.
 */
static enum gw_err
verify_jwks(const struct issuer *is, const struct tok *t, int64_t now,
            struct gw_jwks_set **held, struct vkey *vk, const char **reason)
{
	struct gw_jwks_set *set = NULL;
	int r;

	if ((is->allow & (1U << t->alg)) == 0) {
		*reason = "token algorithm not allowed for this issuer";
		return GW_ERR_TOKEN_INVALID;
	}
	set = gw_jwks_src_get(is->src, now);
	if (set == NULL) {
		*reason = "identity provider keys unavailable";
		return GW_ERR_JWKS_STALE;
	}
	r = try_set(set, t, vk, reason);
	/* An unknown kid: the refresher refetches; this token is refused
	 * now rather than hold a worker through discovery and a fetch. */
	if (r == 0)
		(void)gw_jwks_src_unknown_kid(is->src, now);
	if (r != 1) {
		gw_jwks_set_free(set);
		return GW_ERR_TOKEN_INVALID;
	}
	*held = set;
	return GW_OK;
}

static int
aud_ok(const struct issuer *is, const char *aud)
{
	size_t i;

	for (i = 0; i < is->naud; i++)
		if (strcmp(is->aud[i], aud) == 0)
			return 1;
	return 0;
}

/* Shape of one registered claim per claimtab; 0 or -1. */
static int
check_shape(json_object *v, enum ctype type)
{
	size_t i, n;
	int64_t d;

	switch (type) {
	case C_STRING:
		return json_object_is_type(v, json_type_string) &&
		               json_object_get_string_len(v) > 0
		           ? 0
		           : -1;
	case C_DATE:
		return jwt_numeric_date(v, &d);
	case C_AUD:
		if (json_object_is_type(v, json_type_string))
			return 0;
		if (!json_object_is_type(v, json_type_array))
			return -1;
		n = json_object_array_length(v);
		for (i = 0; i < n; i++)
			if (!json_object_is_type(
			        json_object_array_get_idx(v, i),
			        json_type_string))
				return -1;
		return 0;
	}
	return -1;
}

/* Registered claims (RFC 7519 4.1), checked after the signature. */
static int
check_claims(const struct gw_jwt_keyset *ks, const struct issuer *is,
             json_object *pl, int64_t now, const char **reason)
{
	json_object *v = NULL, *aud = NULL;
	int64_t exp = 0, nbf = 0;
	size_t i, n;
	int found = 0;

	for (i = 0; i < sizeof(claimtab) / sizeof(claimtab[0]); i++) {
		if (!json_object_object_get_ex(pl, claimtab[i].name, &v)) {
			if (claimtab[i].required) {
				*reason = claimtab[i].missing;
				return -1;
			}
			continue;
		}
		if (check_shape(v, claimtab[i].type) == -1) {
			*reason = claimtab[i].bad;
			return -1;
		}
	}
	json_object_object_get_ex(pl, "exp", &v);
	jwt_numeric_date(v, &exp);
	/* RFC 7519 4.1.4: reject when now is past exp, allowing leeway. */
	if (exp + ks->leeway < now) {
		*reason = "token expired";
		return -1;
	}
	if (json_object_object_get_ex(pl, "nbf", &v) &&
	    jwt_numeric_date(v, &nbf) == 0 && now < nbf - ks->leeway) {
		*reason = "token not yet valid";
		return -1;
	}
	json_object_object_get_ex(pl, "aud", &aud);
	if (json_object_is_type(aud, json_type_string))
		found = aud_ok(is, json_object_get_string(aud));
	n = json_object_is_type(aud, json_type_array)
	        ? json_object_array_length(aud)
	        : 0;
	for (i = 0; i < n && !found; i++)
		found = aud_ok(is, json_object_get_string(
		                       json_object_array_get_idx(aud, i)));
	if (!found) {
		*reason = "token audience not accepted";
		return -1;
	}
	return 0;
}

/*
 * The cache's answer for a token's digest: 1 with *out a reference to
 * the cached claims, -1 if the cached token is expired or not yet valid at
 * now (the same rules as check_claims: the cache remembers a signature,
 * never a verdict on time), 0 on a miss.  Same keyset, same bytes: every other
 * check gave the same answer when the entry was made.
 */
static int
cache_hit(const struct gw_jwt_keyset *ks, const unsigned char *digest,
          int64_t now, struct gw_claims **out, const char **reason)
{
	const struct issuer *is;
	struct gw_jwks_set *set;
	struct gw_claims *c;
	uint64_t tag = 0;
	int gone;

	c = gw_jwtc_get(ks->cache, digest, &tag);
	if (c == NULL)
		return 0;
	/* A JWK verified it: only while the key is still in the set. */
	if (tag != 0) {
		is = find_issuer(ks, c->iss);
		set = is != NULL && is->src != NULL
		          ? gw_jwks_src_get(is->src, now)
		          : NULL;
		gone = gw_jwks_find_tag(set, tag) == NULL;
		gw_jwks_set_free(set);
		if (gone) {
			gw_claims_free(c);
			return 0;
		}
	}
	if (c->exp + ks->leeway < now) {
		*reason = "token expired";
		gw_claims_free(c);
		return -1;
	}
	if (now < c->nbf - ks->leeway) {
		*reason = "token not yet valid";
		gw_claims_free(c);
		return -1;
	}
	*out = c;
	return 1;
}

/* Verifies a compact JWS at now_s; GW_ERR_TOKEN_INVALID with a reason. */
enum gw_err
gw_jwt_verify(const struct gw_jwt_keyset *ks, const char *token, int64_t now_s,
              struct gw_claims **out, struct gw_fault *f)
{
	struct tok t;
	struct vkey vk;
	struct gw_jwks_set *held = NULL;
	const struct issuer *is = NULL;
	const char *reason = "malformed token";
	enum gw_err err = GW_ERR_TOKEN_INVALID;
	unsigned char digest[GW_JWTC_KEY_LEN];
	size_t len;
	int hit, r;

	memset(&t, 0, sizeof(t));
	memset(&vk, 0, sizeof(vk));
	if (out != NULL)
		*out = NULL;
	if (ks == NULL || out == NULL) {
		err = GW_ERR_INTERNAL;
		reason = "token verifier not ready";
		goto out;
	}
	if (token == NULL) {
		reason = "missing token";
		goto out;
	}
	/* The cap comes first: nothing below runs on an oversized token. */
	len = strnlen(token, ks->max_token + 1);
	if (len > ks->max_token) {
		reason = "token too large";
		goto out;
	}
	if (ks->cache != NULL && gw_sha256(token, len, digest) == 0) {
		hit = cache_hit(ks, digest, now_s, out, &reason);
		if (hit != 0) {
			err = hit > 0 ? GW_OK : GW_ERR_TOKEN_INVALID;
			goto out;
		}
	}
	if (split(token, len, &t) == -1)
		goto out;
	t.hdr = decode_json(t.seg[0], t.seglen[0]);
	if (t.hdr == NULL) {
		reason = "malformed token header";
		goto out;
	}
	if (check_header(&t, &reason) == -1)
		goto out;
	t.pl = decode_json(t.seg[1], t.seglen[1]);
	if (t.pl == NULL) {
		reason = "malformed token payload";
		goto out;
	}
	if (gw_b64url_decode(t.seg[2], t.seglen[2], &t.sig, &t.siglen) == -1) {
		reason = "malformed token signature";
		goto out;
	}
	/* The unverified iss only chooses candidate keys. */
	is = find_issuer(ks, jwt_get_str(t.pl, "iss"));
	if (is == NULL) {
		reason = "unknown token issuer";
		goto out;
	}
	r = verify_sig(is, &t, &vk, &reason);
	if (r == 0 && is->src != NULL) {
		err = verify_jwks(is, &t, now_s, &held, &vk, &reason);
		if (err != GW_OK)
			goto out;
		err = GW_ERR_TOKEN_INVALID;
		r = 1;
	}
	if (r != 1)
		goto out;
	if (check_claims(ks, is, t.pl, now_s, &reason) == -1)
		goto out;
	/* Last gate: libjwt must agree (a second parser; see the top). */
	if (libjwt_verify(&vk, token) == -1) {
		reason = "token failed second verification";
		goto out;
	}
	err = jwt_build_claims(t.pl, out, &reason);
	if (err == GW_ERR_NOMEM)
		reason = "out of memory";
	/* Only what passed every check above is cached (no failures). */
	if (err == GW_OK && ks->cache != NULL)
		gw_jwtc_put(ks->cache, digest, *out, vk.tag,
		            now_s - ks->leeway - LEEWAY_MAX);
out:
	gw_jwks_set_free(held);
	json_object_put(t.hdr);
	json_object_put(t.pl);
	free(t.sig);
	if (err != GW_OK)
		gw_fault_set(f, err, FIELD, "%s", reason);
	return err;
}

/* The verified-token cache's hits and misses; zeros when it is off. */
void
gw_jwt_cache_stats(const struct gw_jwt_keyset *ks, uint64_t *hits,
                   uint64_t *misses)
{
	gw_jwtc_stats(ks != NULL ? ks->cache : NULL, hits, misses);
}

/* The i-th issuer with a JWK Set source, or NULL. */
static const struct issuer *
jwks_issuer(const struct gw_jwt_keyset *ks, size_t i)
{
	size_t j;

	for (j = 0; ks != NULL && j < ks->niss; j++)
		if (ks->iss[j].src != NULL && i-- == 0)
			return &ks->iss[j];
	return NULL;
}

/*
 * Fetches what is due; how many JWKS issuers have no usable set.  err:
 * the first such issuer's reason, else the first fetch refused this
 * time while the last good set stays, else "".
 */
int
gw_jwt_keyset_tick(const struct gw_jwt_keyset *ks, int64_t now_s, char *err,
                   size_t errlen)
{
	const struct issuer *is;
	char why[192];
	size_t i;
	int failed = 0, r, kept = 0;

	if (errlen > 0)
		err[0] = '\0';
	for (i = 0; (is = jwks_issuer(ks, i)) != NULL; i++) {
		r = gw_jwks_src_tick(is->src, now_s, why, sizeof(why));
		if (r == 0 || (r == 1 && (failed > 0 || kept++ > 0)))
			continue;
		if (r == -1 && failed++ > 0)
			continue;
		snprintf(err, errlen, "jwt issuer %s: JWK Set: %s%s", is->name,
		         why, r == 1 ? " (keeping the last good set)" : "");
	}
	return failed;
}

/* The first JWKS issuer that would fail tokens closed, or NULL. */
const char *
gw_jwt_keyset_unready(const struct gw_jwt_keyset *ks, int64_t now_s)
{
	const struct issuer *is;
	struct gw_jwks_set *set;
	size_t i;

	for (i = 0; (is = jwks_issuer(ks, i)) != NULL; i++) {
		set = gw_jwks_src_get(is->src, now_s);
		if (set == NULL)
			return is->name;
		gw_jwks_set_free(set);
	}
	return NULL;
}

/* Reload: the new keyset starts with the sets the old one holds. */
void
gw_jwt_keyset_adopt(struct gw_jwt_keyset *next, const struct gw_jwt_keyset *old)
{
	const struct issuer *a, *b;
	size_t i, j;

	for (i = 0; (a = jwks_issuer(next, i)) != NULL; i++)
		for (j = 0; (b = jwks_issuer(old, j)) != NULL; j++)
			gw_jwks_src_adopt(a->src, b->src);
}

/* The i-th JWKS issuer's counters; its name, or NULL past the end. */
const char *
gw_jwt_jwks_stats(const struct gw_jwt_keyset *ks, size_t i, int64_t now_s,
                  struct gw_jwks_stats *out)
{
	const struct issuer *is = jwks_issuer(ks, i);

	if (is == NULL)
		return NULL;
	gw_jwks_src_stats(is->src, now_s, out);
	return is->name;
}
