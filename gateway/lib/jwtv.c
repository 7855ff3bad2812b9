/*
 * JWT verification and minting: the only file that includes <jwt.h>.
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

#include "jwtcache.h"
#include "jwtv.h"

#define KEY_FILE_MAX    ((size_t)64 * 1024) /* PEM public key file */
#define SECRET_FILE_MAX 4096                /* HS256 secret file */
#define SECRET_MIN      32                  /* RFC 7518 3.2: key >= hash size */
#define RSA_MIN_BITS    2048
#define ES256_HALF      32 /* RFC 7518 3.4: R||S, 32 bytes each */
#define ES256_SIG_LEN   ((size_t)64)
#define JSON_DEPTH      16
#define DATE_MAX        253402300799LL /* 9999-12-31T23:59:59Z */
#define LEEWAY_MAX      3600
#define TOKEN_MAX_LIMIT (1024LL * 1024)
#define MINT_MAX        ((size_t)256 * 1024)
#define FIELD           "Authorization"

enum alg { ALG_RS256, ALG_ES256, ALG_HS256, ALG__MAX };

/* The pinned algorithms: everything else, "none" included, is refused. */
static const struct alg_info {
	const char *name;
	jwt_alg_t jwt;
	int pkey_type; /* EVP_PKEY_NONE: HMAC secret */
} algtab[ALG__MAX] = {
    [ALG_RS256] = {"RS256", JWT_ALG_RS256, EVP_PKEY_RSA},
    [ALG_ES256] = {"ES256", JWT_ALG_ES256, EVP_PKEY_EC},
    [ALG_HS256] = {"HS256", JWT_ALG_HS256, EVP_PKEY_NONE},
};

_Static_assert(sizeof(algtab) / sizeof(algtab[0]) == ALG__MAX,
               "every alg needs a row");

struct key {
	char *kid;          /* NULL: for tokens without kid */
	enum alg alg;       /* pinned */
	EVP_PKEY *pkey;     /* RS256/ES256 */
	unsigned char *mat; /* PEM of pkey (for libjwt) or HMAC secret */
	size_t matlen;
	int secret; /* mat is a secret: wipe it */
};

struct issuer {
	char *name;
	char **aud;
	size_t naud;
	struct key *keys;
	size_t nkeys;
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
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

static int
alg_lookup(const char *name)
{
	int i;

	/* RFC 7515 4.1.1: alg values are case-sensitive. */
	for (i = 0; i < ALG__MAX; i++)
		if (name != NULL && strcmp(name, algtab[i].name) == 0)
			return i;
	return -1;
}

static int
b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict base64url without padding (RFC 7515 2, appendix C): only the URL
 * alphabet, no '=', no whitespace, and unused trailing bits must be zero so
 * every byte string has exactly one encoding.
 */
static int
b64url_decode(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
	unsigned char *buf = NULL;
	unsigned long acc = 0;
	size_t i, len = 0;
	int bits = 0, v, rc = -1;

	if (n % 4 == 1)
		goto out;
	buf = malloc(n / 4 * 3 + 3);
	if (buf == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		v = b64_val((unsigned char)s[i]);
		if (v < 0)
			goto out;
		acc = (acc << 6) | (unsigned long)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[len++] = (unsigned char)(acc >> bits);
			acc &= (1UL << bits) - 1;
		}
	}
	if (acc != 0)
		goto out;
	*out = buf;
	*outlen = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	return rc;
}

static int
b64url_encode(struct gw_buf *b, const unsigned char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                          "abcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned long acc = 0;
	size_t i;
	int bits = 0;
	char c;

	for (i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			c = tab[(acc >> bits) & 63];
			if (gw_buf_add(b, &c, 1) == -1)
				return -1;
		}
		acc &= (1UL << bits) - 1;
	}
	if (bits > 0) {
		c = tab[(acc << (6 - bits)) & 63];
		if (gw_buf_add(b, &c, 1) == -1)
			return -1;
	}
	return 0;
}

/*
 * Finds the JSON escape for U+0000.  json-c would accept it and C strings
 * would cut at it ("admin\u0000x" read as "admin"), so it is refused.  An
 * escaped backslash before "u0000" is a false positive we accept.
 */
static int
has_nul_escape(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i + 6 <= n; i++)
		if (p[i] == '\\' && p[i + 1] == 'u' && p[i + 2] == '0' &&
		    p[i + 3] == '0' && p[i + 4] == '0' && p[i + 5] == '0')
			return 1;
	return 0;
}

/*
 * Parses JSON text into an object, strictly (no NUL, valid UTF-8, no
 * \u0000, nothing after it); NULL if it is anything else.
 */
static json_object *
parse_json(const unsigned char *raw, size_t len)
{
	json_tokener *tk = NULL;
	json_object *obj = NULL;

	if (raw == NULL || len == 0 || len > INT_MAX)
		goto out;
	if (memchr(raw, '\0', len) != NULL ||
	    !gw_utf8_valid((const char *)raw, len) || has_nul_escape(raw, len))
		goto out;
	tk = json_tokener_new_ex(JSON_DEPTH);
	if (tk == NULL)
		goto out;
	json_tokener_set_flags(tk, JSON_TOKENER_STRICT |
	                               JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tk, (const char *)raw, (int)len);
	if (obj == NULL || json_tokener_get_error(tk) != json_tokener_success ||
	    json_tokener_get_parse_end(tk) != len ||
	    !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = NULL;
	}
out:
	if (tk != NULL)
		json_tokener_free(tk);
	return obj;
}

/* Decodes one segment into a JSON object; NULL if it is anything else. */
static json_object *
decode_json(const char *seg, size_t n)
{
	json_object *obj = NULL;
	unsigned char *raw = NULL;
	size_t len = 0;

	if (b64url_decode(seg, n, &raw, &len) == 0)
		obj = parse_json(raw, len);
	free(raw);
	return obj;
}

/* Borrowed string member, or NULL if absent or not a string. */
static const char *
get_str(json_object *o, const char *name)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A NumericDate (RFC 7519 2): a JSON number, never a string. */
static int
numeric_date(json_object *v, int64_t *out)
{
	double d;
	int64_t i;

	switch (json_object_get_type(v)) {
	case json_type_int:
		/* json-c clamps values past int64 to INT64_MAX: out of range.
		 */
		i = json_object_get_int64(v);
		if (i < 0 || i > DATE_MAX)
			return -1;
		*out = i;
		return 0;
	case json_type_double:
		d = json_object_get_double(v);
		if (!(d >= 0 && d <= (double)DATE_MAX))
			return -1;
		*out = (int64_t)d;
		return 0;
	default:
		return -1;
	}
}

/* Checks that a key's type matches its pinned alg. */
static int
check_pkey(EVP_PKEY *pkey, enum alg alg, char *err, size_t errlen)
{
	char group[64];

	if (EVP_PKEY_get_base_id(pkey) != algtab[alg].pkey_type) {
		snprintf(err, errlen, "key type does not match %s",
		         algtab[alg].name);
		return -1;
	}
	if (alg == ALG_RS256 && EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS) {
		snprintf(err, errlen, "RSA key has %d bits, %d required",
		         EVP_PKEY_get_bits(pkey), RSA_MIN_BITS);
		return -1;
	}
	if (alg == ALG_ES256 &&
	    (EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1 ||
	     (strcmp(group, "prime256v1") != 0 &&
	      strcmp(group, "P-256") != 0))) {
		snprintf(err, errlen, "ES256 needs an EC key on P-256");
		return -1;
	}
	return 0;
}

static int
load_pubkey(struct key *k, const char *path, char *err, size_t errlen)
{
	char why[160] = "";
	char *buf = NULL, *pem = NULL;
	size_t len = 0;
	long pemlen;
	BIO *in = NULL, *mem = NULL;
	int rc = -1;

	/* err holds the out-of-memory reason until a failure overwrites it. */
	snprintf(err, errlen, "%s: out of memory", path);
	if (gw_read_file(path, KEY_FILE_MAX, 0, &buf, &len, err, errlen) == -1)
		goto out;
	in = BIO_new_mem_buf(buf, (int)len);
	if (in == NULL)
		goto out;
	k->pkey = PEM_read_bio_PUBKEY(in, NULL, no_passphrase, NULL);
	if (k->pkey == NULL) {
		snprintf(err, errlen, "%s: not a PEM public key", path);
		goto out;
	}
	if (check_pkey(k->pkey, k->alg, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto out;
	}
	/* libjwt gets the canonical PEM of exactly the key checked above. */
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL || PEM_write_bio_PUBKEY(mem, k->pkey) != 1)
		goto out;
	pemlen = BIO_get_mem_data(mem, &pem);
	if (pemlen <= 0 || (size_t)pemlen > KEY_FILE_MAX)
		goto out;
	k->mat = malloc((size_t)pemlen + 1);
	if (k->mat == NULL)
		goto out;
	memcpy(k->mat, pem, (size_t)pemlen);
	k->mat[pemlen] = '\0';
	k->matlen = (size_t)pemlen;
	rc = 0;
out:
	BIO_free(in);
	BIO_free(mem);
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

static int
load_issuer(struct issuer *is, const struct gw_conf_issuer *ci, char *err,
            size_t errlen)
{
	const struct gw_conf_jwt_key *ck;
	char why[384];
	size_t i, j;
	int a;

	if (ci->issuer == NULL || ci->issuer[0] == '\0' ||
	    ci->naudiences == 0 || ci->nkeys == 0) {
		snprintf(err, errlen,
		         "jwt issuer needs a name, audiences and keys");
		return -1;
	}
	/* err holds the out-of-memory reason until a failure overwrites it. */
	snprintf(err, errlen, "jwt issuer %s: out of memory", ci->issuer);
	is->name = gw_strdup(ci->issuer);
	is->aud = calloc(ci->naudiences, sizeof(*is->aud));
	is->keys = calloc(ci->nkeys, sizeof(*is->keys));
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
		a = alg_lookup(ck->alg);
		if (a < 0 || ck->file == NULL) {
			snprintf(
			    err, errlen,
			    "jwt issuer %s: key %zu: alg must be RS256, ES256 "
			    "or HS256, with a file",
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
	return 0;
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
	a = alg_lookup(json_object_get_string(v));
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

/* ES256 signatures are raw R||S (RFC 7518 3.4); OpenSSL wants DER. */
static unsigned char *
es256_der(const unsigned char *sig, size_t siglen, size_t *derlen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int n;

	if (siglen != ES256_SIG_LEN)
		goto out;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, ES256_HALF, NULL);
	s = BN_bin2bn(sig + ES256_HALF, ES256_HALF, NULL);
	if (es == NULL || r == NULL || s == NULL ||
	    ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL; /* owned by es now */
	n = i2d_ECDSA_SIG(es, &der);
	if (n <= 0) {
		der = NULL;
		goto out;
	}
	*derlen = (size_t)n;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return der;
}

/* Our own check of the signature with the pinned alg: 0 if it holds. */
static int
evp_verify(const struct key *k, const struct tok *t)
{
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	const unsigned char *sig = t->sig;
	size_t inlen, siglen = t->siglen, derlen = 0;
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	int rc = -1;

	/* The signing input is "header.payload", contiguous in the token. */
	inlen = t->seglen[0] + 1 + t->seglen[1];
	switch (k->alg) {
	case ALG_HS256:
		if (HMAC(EVP_sha256(), k->mat, (int)k->matlen,
		         (const unsigned char *)t->seg[0], inlen, md,
		         &mdlen) == NULL)
			goto out;
		rc = gw_ct_equal(md, mdlen, sig, siglen) ? 0 : -1;
		goto out;
	case ALG_ES256:
		der = es256_der(sig, siglen, &derlen);
		if (der == NULL)
			goto out;
		sig = der;
		siglen = derlen;
		break;
	case ALG_RS256:
	case ALG__MAX:
		break;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL ||
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1)
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

/* libjwt's independent check: must verify and agree on the alg. */
static int
libjwt_verify(const struct key *k, const char *token)
{
	jwt_t *j = NULL;
	int rc = -1;

	if (k->matlen > INT_MAX)
		return -1;
	if (jwt_decode(&j, token, k->mat, (int)k->matlen) == 0 && j != NULL &&
	    jwt_get_alg(j) == algtab[k->alg].jwt)
		rc = 0;
	jwt_free(j);
	return rc;
}

/*
 * Chooses the key and checks the signature with OpenSSL.  With a kid, the
 * kid must name one of the issuer's keys; without, the issuer's kid-less
 * keys are tried, or its only key.  The header alg must equal the key's
 * pinned alg.  Returns the borrowed key that verified, or NULL.
 */
static const struct key *
verify_sig(const struct issuer *is, const struct tok *t, const char **reason)
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
		if (evp_verify(k, t) == 0)
			return k;
	}
	if (candidates == 0)
		*reason = t->kid != NULL ? "unknown kid" : "token needs a kid";
	else if (tried == 0)
		*reason = "token algorithm not allowed for this key";
	else
		*reason = "bad signature";
	return NULL;
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
		return numeric_date(v, &d);
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
	numeric_date(v, &exp);
	/* RFC 7519 4.1.4: reject when now is past exp, allowing leeway. */
	if (exp + ks->leeway < now) {
		*reason = "token expired";
		return -1;
	}
	if (json_object_object_get_ex(pl, "nbf", &v) &&
	    numeric_date(v, &nbf) == 0 && now < nbf - ks->leeway) {
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
	const char *v = get_str(o, name);

	if (v == NULL)
		return 0;
	*out = gw_strdup(v);
	return *out == NULL ? -1 : 0;
}

static enum gw_err
build_claims(json_object *pl, struct gw_claims **out, const char **reason)
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
	numeric_date(v, &c->exp);
	if (json_object_object_get_ex(pl, "nbf", &v))
		numeric_date(v, &c->nbf);
	if (json_object_object_get_ex(pl, "iat", &v))
		numeric_date(v, &c->iat);
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
	struct gw_claims *c;

	c = gw_jwtc_get(ks->cache, digest);
	if (c == NULL)
		return 0;
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
	const struct issuer *is = NULL;
	const struct key *key = NULL;
	const char *reason = "malformed token";
	enum gw_err err = GW_ERR_TOKEN_INVALID;
	unsigned char digest[GW_JWTC_KEY_LEN];
	size_t len;
	int hit;

	memset(&t, 0, sizeof(t));
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
	if (ks->cache != NULL) {
		SHA256((const unsigned char *)token, len, digest);
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
	if (b64url_decode(t.seg[2], t.seglen[2], &t.sig, &t.siglen) == -1) {
		reason = "malformed token signature";
		goto out;
	}
	/* The unverified iss only chooses candidate keys. */
	is = find_issuer(ks, get_str(t.pl, "iss"));
	if (is == NULL) {
		reason = "unknown token issuer";
		goto out;
	}
	key = verify_sig(is, &t, &reason);
	if (key == NULL)
		goto out;
	if (check_claims(ks, is, t.pl, now_s, &reason) == -1)
		goto out;
	/* Last gate: libjwt must agree (a second parser; see the top). */
	if (libjwt_verify(key, token) == -1) {
		reason = "token failed second verification";
		goto out;
	}
	err = build_claims(t.pl, out, &reason);
	if (err == GW_ERR_NOMEM)
		reason = "out of memory";
	/* Only what passed every check above is cached (no failures). */
	if (err == GW_OK && ks->cache != NULL)
		gw_jwtc_put(ks->cache, digest, *out,
		            now_s - ks->leeway - LEEWAY_MAX);
out:
	json_object_put(t.hdr);
	json_object_put(t.pl);
	free(t.sig);
	if (err != GW_OK)
		gw_fault_set(f, err, FIELD, "%s", reason);
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
	pl = parse_json((const unsigned char *)json, len);
	if (pl == NULL)
		return GW_ERR_TOKEN_INVALID;
	err = build_claims(pl, out, reason);
	if (err == GW_ERR_NOMEM)
		*reason = "out of memory";
	json_object_put(pl);
	return err;
}

/* The verified-token cache's hits and misses; zeros when it is off. */
void
gw_jwt_cache_stats(const struct gw_jwt_keyset *ks, uint64_t *hits,
                   uint64_t *misses)
{
	gw_jwtc_stats(ks != NULL ? ks->cache : NULL, hits, misses);
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

/* Signs the input with a PEM private key; raw R||S for ES256. */
static unsigned char *
pem_sign(enum alg alg, const unsigned char *key, size_t keylen, const char *in,
         size_t inlen, size_t *siglen, char *err, size_t errlen)
{
	char why[128];
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	unsigned char *der = NULL, *sig = NULL, *ret = NULL;
	const unsigned char *p;
	size_t derlen = 0;

	snprintf(err, errlen, "signing failed");
	bio = keylen <= INT_MAX ? BIO_new_mem_buf(key, (int)keylen) : NULL;
	if (bio != NULL)
		pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (pkey == NULL) {
		snprintf(err, errlen, "not an unencrypted PEM private key");
		goto out;
	}
	if (check_pkey(pkey, alg, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s", why);
		goto out;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &derlen, (const unsigned char *)in,
	                   inlen) != 1)
		goto out;
	der = malloc(derlen);
	if (der == NULL ||
	    EVP_DigestSign(ctx, der, &derlen, (const unsigned char *)in,
	                   inlen) != 1)
		goto out;
	if (alg == ALG_RS256) {
		*siglen = derlen;
		ret = der;
		der = NULL;
		goto out;
	}
	p = der;
	es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	sig = malloc(ES256_SIG_LEN);
	if (es == NULL || sig == NULL ||
	    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, ES256_HALF) != ES256_HALF ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + ES256_HALF, ES256_HALF) !=
	        ES256_HALF)
		goto out;
	*siglen = ES256_SIG_LEN;
	ret = sig;
	sig = NULL;
out:
	ECDSA_SIG_free(es);
	free(sig);
	free(der);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return ret;
}

/* Mints a development token; malloc'd, or NULL with a reason. */
char *
gw_jwt_mint(const char *alg, const char *kid, const unsigned char *key,
            size_t keylen, const char *claims_json, char *err, size_t errlen)
{
	struct gw_buf b;
	json_object *hdr = NULL, *pl = NULL;
	unsigned char md[EVP_MAX_MD_SIZE], *sig = NULL;
	const char *s;
	char *ret = NULL;
	size_t siglen = 0;
	unsigned int mdlen = 0;
	int a;

	gw_buf_init(&b, MINT_MAX);
	snprintf(err, errlen, "mint: out of memory or token too large");
	a = alg_lookup(alg);
	if (a < 0 || key == NULL || keylen == 0 || claims_json == NULL) {
		snprintf(err, errlen,
		         "mint: alg must be RS256, ES256 or HS256, with a key");
		goto out;
	}
	pl = json_tokener_parse(claims_json);
	if (!json_object_is_type(pl, json_type_object)) {
		snprintf(err, errlen, "mint: claims must be a JSON object");
		goto out;
	}
	hdr = json_object_new_object();
	if (hdr == NULL ||
	    json_object_object_add(
	        hdr, "alg", json_object_new_string(algtab[a].name)) != 0 ||
	    json_object_object_add(hdr, "typ", json_object_new_string("JWT")) !=
	        0 ||
	    (kid != NULL && json_object_object_add(
	                        hdr, "kid", json_object_new_string(kid)) != 0))
		goto out;
	s = json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN);
	if (b64url_encode(&b, (const unsigned char *)s, strlen(s)) == -1 ||
	    gw_buf_add(&b, ".", 1) == -1)
		goto out;
	s = json_object_to_json_string_ext(pl, JSON_C_TO_STRING_PLAIN);
	if (b64url_encode(&b, (const unsigned char *)s, strlen(s)) == -1)
		goto out;
	if (a == ALG_HS256) {
		if (keylen < SECRET_MIN || keylen > INT_MAX) {
			snprintf(err, errlen,
			         "mint: HS256 secret shorter than %d bytes",
			         SECRET_MIN);
			goto out;
		}
		if (HMAC(EVP_sha256(), key, (int)keylen,
		         (const unsigned char *)b.p, b.len, md, &mdlen) == NULL)
			goto out;
		sig = md;
		siglen = mdlen;
	} else {
		sig = pem_sign((enum alg)a, key, keylen, b.p, b.len, &siglen,
		               err, errlen);
		if (sig == NULL)
			goto out;
	}
	if (gw_buf_add(&b, ".", 1) == -1 ||
	    b64url_encode(&b, sig, siglen) == -1)
		goto out;
	ret = gw_buf_take(&b, NULL);
out:
	if (sig != NULL && sig != md)
		free(sig);
	gw_wipe(md, sizeof(md));
	json_object_put(hdr);
	json_object_put(pl);
	gw_buf_reset(&b);
	return ret;
}
