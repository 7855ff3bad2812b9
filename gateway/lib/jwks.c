/*
 * JWK Sets: parsing (RFC 7517, RFC 7518 6, RFC 8037), the refcounted
 * immutable set, and per issuer the source that fetches, refreshes and
 * keeps it (docs/IDP.md).
 *
 * Parsing is strict where a mistake could let a forged token in and
 * lenient where the RFC says to be (7517 5: keys we cannot use are
 * skipped, so one post-quantum key does not break an issuer).  Every key
 * is built by OpenSSL 3 from its JWK members; the modulus, exponent and
 * points are never interpreted here.
 *
 * The source (process lifetime, one per JWKS issuer of a keyset) is the
 * only mutable state: a mutex guards the current set pointer and the
 * timing, never a fetch.  A fetch runs with the lock released under a
 * single-flight flag, then swaps the new set in (RCU-like: readers hold a
 * reference to the set they started with, the last one frees it).  Never
 * logs: failures go to the caller's buffer and last_error.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "jwks.h"
#include "upstream.h"

#define RSA_MIN_BITS   2048
#define RSA_MAX_BITS   8192
#define RSA_E_MAX      8 /* bytes of public exponent */
#define JSON_DEPTH     8
#define TTL_DEFAULT_S  3600
#define TTL_MIN_S      300
#define TTL_MAX_S      86400
#define RETRY_MAX_S    30
#define STALE_DEFAULT  86400
#define CONNECT_MS     3000
#define TIMEOUT_MS     5000
#define DISCOVERY_PATH "/.well-known/openid-configuration"
#define ERR_MAX        320 /* holds a gw_fault message (256) and context */

/* The curves we verify with, by JWK name (RFC 7518 6.2.1.1, RFC 8037). */
static const struct curve {
	const char *crv;
	enum gw_jwk_kty kty;
	const char *group; /* OpenSSL group name; NULL: raw key (OKP) */
	size_t coord;      /* bytes of x (and y) */
	int bits;
} curvetab[] = {
    {"P-256", GW_JWK_EC, "P-256", 32, 256},
    {"P-384", GW_JWK_EC, "P-384", 48, 384},
    {"P-521", GW_JWK_EC, "P-521", 66, 521},
    {"Ed25519", GW_JWK_OKP, NULL, 32, 256},
};

/* Curves that exist but do not sign for us: such keys are skipped. */
static const char *const skipcrv[] = {"Ed448", "X25519", "X448", "secp256k1",
                                      NULL};

/* The JWS algorithms a JWK may name (RFC 7518 3.1, RFC 8037 3.1). */
static const struct {
	const char *alg;
	enum gw_jwk_kty kty;
	int bits; /* EC: the curve; 0: any size */
} algfit[] = {
    {"RS256", GW_JWK_RSA, 0},  {"RS384", GW_JWK_RSA, 0},
    {"RS512", GW_JWK_RSA, 0},  {"PS256", GW_JWK_RSA, 0},
    {"PS384", GW_JWK_RSA, 0},  {"PS512", GW_JWK_RSA, 0},
    {"ES256", GW_JWK_EC, 256}, {"ES384", GW_JWK_EC, 384},
    {"ES512", GW_JWK_EC, 521}, {"EdDSA", GW_JWK_OKP, 0},
};

/* Members that only a private or symmetric key has (RFC 7518 6.3.2). */
static const char *const privmembers[] = {"d",  "p",   "q", "dp", "dq",
                                          "qi", "oth", "k", NULL};

struct gw_jwks_src {
	struct gw_jwks_src_conf c; /* strings owned */
	pthread_mutex_t mu;
	/* Under mu. */
	struct gw_jwks_set *set;
	char *uri; /* jwks_uri in use (configured or discovered) */
	int64_t last_ok_s, next_s, last_kid_s;
	int busy;
	int kid_wanted; /* an unknown kid asked the next tick to refetch */
	char last_error[ERR_MAX];
	struct gw_jwks_stats st;
};

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

/* Strict base64url, no padding, zero trailing bits (RFC 7515 2, C). */
int
gw_b64url_decode(const char *s, size_t n, unsigned char **out, size_t *outlen)
{
	unsigned char *buf = NULL;
	unsigned long acc = 0;
	size_t i, len = 0;
	int bits = 0, v, rc = -1;

	if (n % 4 == 1 || n > SIZE_MAX / 3 - 3)
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

/* R||S -> DER; the exact length is the only form JOSE allows. */
unsigned char *
gw_jws_ecdsa_der(const unsigned char *sig, size_t siglen, size_t half,
                 size_t *derlen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int n;

	if (half == 0 || half > 66 || siglen != 2 * half)
		goto out;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(sig, (int)half, NULL);
	s = BN_bin2bn(sig + half, (int)half, NULL);
	if (es == NULL || r == NULL || s == NULL ||
	    ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL; /* owned by es now (ECDSA_SIG_new(3)) */
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

/* DER -> R||S, each left-padded to half bytes. */
unsigned char *
gw_jws_ecdsa_raw(const unsigned char *der, size_t derlen, size_t half)
{
	ECDSA_SIG *es = NULL;
	const unsigned char *p = der;
	unsigned char *sig = NULL, *ret = NULL;

	if (half == 0 || half > 66 || derlen > LONG_MAX)
		goto out;
	es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	sig = malloc(2 * half);
	if (es == NULL || sig == NULL || p != der + derlen ||
	    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, (int)half) != (int)half ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + half, (int)half) !=
	        (int)half)
		goto out;
	ret = sig;
	sig = NULL;
out:
	free(sig);
	ECDSA_SIG_free(es);
	return ret;
}

static const char *
str_member(json_object *o, const char *name, int *present)
{
	json_object *v = NULL;

	*present = json_object_object_get_ex(o, name, &v);
	if (!*present || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A base64url member, decoded; -1 if absent or malformed. */
static int
b64_member(json_object *o, const char *name, unsigned char **out,
           size_t *outlen)
{
	int present;
	const char *s = str_member(o, name, &present);

	if (s == NULL)
		return -1;
	return gw_b64url_decode(s, strlen(s), out, outlen);
}

static EVP_PKEY *
fromdata(const char *type, OSSL_PARAM_BLD *b)
{
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM *p = NULL;
	EVP_PKEY *pkey = NULL;

	p = OSSL_PARAM_BLD_to_param(b);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (p == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, p) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(p);
	return pkey;
}

/* RSA from n and e (RFC 7518 6.3.1); why set on failure. */
static EVP_PKEY *
rsa_key(json_object *o, int *bits, const char **why)
{
	unsigned char *n = NULL, *e = NULL;
	size_t nlen = 0, elen = 0;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *b = NULL;
	EVP_PKEY *pkey = NULL;

	*why = "RSA key needs base64url n and e";
	if (b64_member(o, "n", &n, &nlen) == -1 ||
	    b64_member(o, "e", &e, &elen) == -1 || nlen == 0 || elen == 0)
		goto out;
	*why = "RSA exponent out of range";
	if (elen > RSA_E_MAX || (e[elen - 1] & 1) == 0)
		goto out;
	/* Bits before building: a huge modulus costs nothing to refuse. */
	*why = "RSA key size out of range";
	if (nlen > RSA_MAX_BITS / 8 + 1)
		goto out;
	*why = "RSA key unusable";
	bn = BN_bin2bn(n, (int)nlen, NULL);
	be = BN_bin2bn(e, (int)elen, NULL);
	b = OSSL_PARAM_BLD_new();
	if (bn == NULL || be == NULL || b == NULL || BN_is_one(be) ||
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	    OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be) != 1)
		goto out;
	pkey = fromdata("RSA", b);
	if (pkey == NULL)
		goto out;
	*bits = EVP_PKEY_get_bits(pkey);
	if (*bits < RSA_MIN_BITS || *bits > RSA_MAX_BITS) {
		/* RFC 7518 3.3: 2048 bits or larger MUST be used. */
		*why = "RSA key shorter than 2048 bits or over 8192";
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
out:
	BN_free(bn);
	BN_free(be);
	OSSL_PARAM_BLD_free(b);
	free(n);
	free(e);
	return pkey;
}

/* EC (x, y on crv) or OKP (x); OpenSSL checks the point is on the curve. */
static EVP_PKEY *
curve_key(json_object *o, const struct curve *cv, const char **why)
{
	unsigned char *x = NULL, *y = NULL, *pub = NULL;
	size_t xlen = 0, ylen = 0;
	OSSL_PARAM_BLD *b = NULL;
	EVP_PKEY *pkey = NULL;

	*why = "key needs a base64url x of the curve's size";
	if (b64_member(o, "x", &x, &xlen) == -1 || xlen != cv->coord)
		goto out;
	if (cv->group == NULL) {
		*why = "OKP key unusable";
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x,
		                                   xlen);
		goto out;
	}
	/* RFC 7518 6.2.1.2-3: full-size coordinates, no point compression. */
	*why = "EC key needs a base64url y of the curve's size";
	if (b64_member(o, "y", &y, &ylen) == -1 || ylen != cv->coord)
		goto out;
	*why = "EC point not on the curve";
	pub = malloc(1 + 2 * cv->coord);
	b = OSSL_PARAM_BLD_new();
	if (pub == NULL || b == NULL)
		goto out;
	pub[0] = POINT_CONVERSION_UNCOMPRESSED;
	memcpy(pub + 1, x, cv->coord);
	memcpy(pub + 1 + cv->coord, y, cv->coord);
	if (OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME,
	                                    cv->group, 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub,
	                                     1 + 2 * cv->coord) != 1)
		goto out;
	pkey = fromdata("EC", b);
out:
	OSSL_PARAM_BLD_free(b);
	free(pub);
	free(x);
	free(y);
	return pkey;
}

int
gw_jwk_pem(EVP_PKEY *pkey, size_t max, unsigned char **out, size_t *outlen)
{
	BIO *mem = NULL;
	char *pem = NULL;
	long pemlen;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL || PEM_write_bio_PUBKEY(mem, pkey) != 1)
		goto out;
	pemlen = BIO_get_mem_data(mem, &pem);
	if (pemlen <= 0 || (size_t)pemlen > max)
		goto out;
	*out = malloc((size_t)pemlen + 1);
	if (*out == NULL)
		goto out;
	memcpy(*out, pem, (size_t)pemlen);
	(*out)[pemlen] = '\0';
	*outlen = (size_t)pemlen;
	rc = 0;
out:
	BIO_free(mem);
	return rc;
}

/* The key's identity and the PEM libjwt reads; 0 or -1. */
static int
finish_key(struct gw_jwk *k)
{
	unsigned char md[SHA256_DIGEST_LENGTH], *der = NULL;
	int n, i, rc = -1;

	n = i2d_PUBKEY(k->pkey, &der);
	if (n <= 0)
		goto out;
	SHA256(der, (size_t)n, md);
	for (i = 0; i < 8; i++)
		k->tag = (k->tag << 8) | md[i];
	if (k->tag == 0)
		k->tag = 1;
	if (gw_jwk_pem(k->pkey, GW_JWKS_MAX_BYTES, &k->pem, &k->pemlen) == -1)
		goto out;
	rc = 0;
out:
	OPENSSL_free(der);
	return rc;
}

static void
jwk_reset(struct gw_jwk *k)
{
	free(k->kid);
	EVP_PKEY_free(k->pkey);
	free(k->pem);
	memset(k, 0, sizeof(*k));
}

/* Whether the key is meant for signatures (RFC 7517 4.2, 4.3). */
static int
for_signing(json_object *o)
{
	json_object *ops = NULL, *e;
	const char *use;
	size_t i, n;
	int present;

	use = str_member(o, "use", &present);
	if (present && (use == NULL || strcmp(use, "sig") != 0))
		return 0;
	if (!json_object_object_get_ex(o, "key_ops", &ops))
		return 1;
	if (!json_object_is_type(ops, json_type_array))
		return 0;
	n = json_object_array_length(ops);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(ops, i);
		if (json_object_is_type(e, json_type_string) &&
		    strcmp(json_object_get_string(e), "verify") == 0)
			return 1;
	}
	return 0;
}

static const struct curve *
curve_lookup(const char *crv)
{
	size_t i;

	for (i = 0; crv != NULL && i < sizeof(curvetab) / sizeof(curvetab[0]);
	     i++)
		if (strcmp(curvetab[i].crv, crv) == 0)
			return &curvetab[i];
	return NULL;
}

static int
skipped_curve(const char *crv)
{
	size_t i;

	for (i = 0; crv != NULL && skipcrv[i] != NULL; i++)
		if (strcmp(skipcrv[i], crv) == 0)
			return 1;
	return 0;
}

/*
 * One JWK: 1 built into *k, 0 skipped (not ours to use), -1 hostile or
 * malformed with why set.
 */
static int
parse_key(json_object *o, struct gw_jwk *k, const char **why)
{
	const struct curve *cv = NULL;
	const char *kty, *crv, *alg, *kid;
	size_t i;
	int present, fits = 0;

	*why = "a key is not a JSON object";
	if (!json_object_is_type(o, json_type_object))
		return -1;
	*why = "a key has no kty";
	kty = str_member(o, "kty", &present);
	if (kty == NULL)
		return -1;
	/* Discovery 3: a published set MUST NOT hold private or symmetric
	 * key values; an issuer that leaks them is not to be trusted. */
	*why = "a key holds private or symmetric key material";
	if (strcmp(kty, "oct") == 0)
		return -1;
	for (i = 0; privmembers[i] != NULL; i++)
		if (json_object_object_get_ex(o, privmembers[i], NULL))
			return -1;
	if (!for_signing(o))
		return 0;
	*why = "a key's kid must be a string of 1 to 256 bytes";
	kid = str_member(o, "kid", &present);
	if (present &&
	    (kid == NULL || kid[0] == '\0' || strlen(kid) > GW_JWKS_KID_MAX))
		return -1;
	crv = str_member(o, "crv", &present);
	if (strcmp(kty, "RSA") == 0) {
		k->kty = GW_JWK_RSA;
		if (present) {
			*why = "an RSA key has a crv";
			return -1;
		}
	} else if (strcmp(kty, "EC") == 0 || strcmp(kty, "OKP") == 0) {
		k->kty = kty[0] == 'E' ? GW_JWK_EC : GW_JWK_OKP;
		if (skipped_curve(crv))
			return 0;
		cv = curve_lookup(crv);
		*why = "a key's kty and crv do not match";
		if (cv == NULL || cv->kty != k->kty)
			return -1;
		k->bits = cv->bits;
	} else
		return 0; /* RFC 7517 5: a kty we do not know is skipped */
	alg = str_member(o, "alg", &present);
	if (present) {
		*why = "a key's alg does not fit its type";
		for (i = 0;
		     alg != NULL && i < sizeof(algfit) / sizeof(algfit[0]); i++)
			if (strcmp(algfit[i].alg, alg) == 0)
				fits = algfit[i].kty == k->kty &&
				       (algfit[i].bits == 0 ||
				        algfit[i].bits == k->bits);
		if (!fits)
			return -1;
		memcpy(k->alg, alg, strlen(alg) + 1);
	}
	if (k->kty == GW_JWK_RSA)
		k->pkey = rsa_key(o, &k->bits, why);
	else
		k->pkey = curve_key(o, cv, why);
	if (k->pkey == NULL)
		return -1;
	*why = "out of memory";
	if (kid != NULL) {
		k->kid = gw_strdup(kid);
		if (k->kid == NULL)
			return -1;
	}
	if (finish_key(k) == -1)
		return -1;
	return 1;
}

/*
 * RFC 7517 4.5 lets one kid name keys of different kty; two different
 * keys under one (kid, kty) would make the choice a guess, so the answer
 * fails.  A byte-identical repeat is dropped (GitLab deduplicates too).
 * 1: keep, 0: drop, -1: conflict.
 */
static int
dup_check(const struct gw_jwks_set *s, const struct gw_jwk *k)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (s->keys[i].kty != k->kty)
			continue;
		if (s->keys[i].tag == k->tag &&
		    (s->keys[i].kid == NULL) == (k->kid == NULL) &&
		    (k->kid == NULL || strcmp(s->keys[i].kid, k->kid) == 0))
			return 0;
		if (k->kid != NULL && s->keys[i].kid != NULL &&
		    strcmp(s->keys[i].kid, k->kid) == 0)
			return -1;
	}
	return 1;
}

int
gw_jwks_parse(const char *json, size_t len, struct gw_jwks_set **out, char *err,
              size_t errlen)
{
	json_tokener *tk = NULL;
	json_object *root = NULL, *keys = NULL;
	struct gw_jwks_set *s = NULL;
	struct gw_jwk k;
	const char *why = "not a JWK Set";
	size_t i, n;
	int rc = -1, r;

	*out = NULL;
	memset(&k, 0, sizeof(k));
	if (json == NULL || len == 0 || len > GW_JWKS_MAX_BYTES) {
		why = "JWK Set empty or over 64 KiB";
		goto out;
	}
	if (memchr(json, '\0', len) != NULL || !gw_utf8_valid(json, len))
		goto out;
	tk = json_tokener_new_ex(JSON_DEPTH);
	if (tk == NULL)
		goto out;
	json_tokener_set_flags(tk, JSON_TOKENER_STRICT |
	                               JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tk, json, (int)len);
	if (root == NULL ||
	    json_tokener_get_error(tk) != json_tokener_success ||
	    json_tokener_get_parse_end(tk) != len ||
	    !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "keys", &keys) ||
	    !json_object_is_type(keys, json_type_array))
		goto out;
	n = json_object_array_length(keys);
	if (n > GW_JWKS_MAX_KEYS) {
		why = "JWK Set has more than 64 keys";
		goto out;
	}
	why = "out of memory";
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto out;
	atomic_init(&s->refs, 0);
	s->keys = calloc(n ? n : 1, sizeof(*s->keys));
	if (s->keys == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		r = parse_key(json_object_array_get_idx(keys, i), &k, &why);
		if (r == 1) {
			r = dup_check(s, &k);
			why = "two different keys share a kid";
		}
		if (r == -1)
			goto out;
		if (r == 1) {
			s->keys[s->n++] = k;
			memset(&k, 0, sizeof(k));
		}
		jwk_reset(&k);
	}
	if (s->n == 0) {
		why = "JWK Set has no usable signing key";
		goto out;
	}
	*out = s;
	s = NULL;
	rc = 0;
out:
	if (rc == -1)
		snprintf(err, errlen, "%s", why);
	jwk_reset(&k);
	gw_jwks_set_free(s);
	json_object_put(root);
	if (tk != NULL)
		json_tokener_free(tk);
	return rc;
}

struct gw_jwks_set *
gw_jwks_set_ref(struct gw_jwks_set *s)
{
	if (s != NULL)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void
gw_jwks_set_free(struct gw_jwks_set *s)
{
	size_t i;

	if (s == NULL)
		return;
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) > 0)
		return;
	for (i = 0; i < s->n; i++)
		jwk_reset(&s->keys[i]);
	free(s->keys);
	free(s);
}

const struct gw_jwk *
gw_jwks_find_tag(const struct gw_jwks_set *s, uint64_t tag)
{
	size_t i;

	for (i = 0; s != NULL && i < s->n; i++)
		if (s->keys[i].tag == tag)
			return &s->keys[i];
	return NULL;
}

static char *
dup_or_null(const char *s, int *bad)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = gw_strdup(s);
	if (d == NULL)
		*bad = 1;
	return d;
}

struct gw_jwks_src *
gw_jwks_src_new(const struct gw_jwks_src_conf *c, struct gw_jwks_set *initial)
{
	struct gw_jwks_src *src;
	int bad = 0;

	src = calloc(1, sizeof(*src));
	if (src == NULL) {
		gw_jwks_set_free(initial);
		return NULL;
	}
	src->c = *c;
	src->c.issuer = dup_or_null(c->issuer, &bad);
	src->c.discovery_url = dup_or_null(c->discovery_url, &bad);
	src->c.jwks_uri = dup_or_null(c->jwks_uri, &bad);
	src->c.ca_file = dup_or_null(c->ca_file, &bad);
	src->uri = dup_or_null(c->jwks_uri, &bad);
	if (src->c.max_stale_s <= 0)
		src->c.max_stale_s = STALE_DEFAULT;
	if (src->c.connect_ms <= 0)
		src->c.connect_ms = CONNECT_MS;
	if (src->c.timeout_ms <= 0)
		src->c.timeout_ms = TIMEOUT_MS;
	pthread_mutex_init(&src->mu, NULL);
	src->set = initial;
	if (initial != NULL) {
		/* A file never goes stale: it is read again on reload. */
		src->c.max_stale_s = INT64_MAX / 2;
		src->last_ok_s = 1;
		src->next_s = INT64_MAX;
		src->st.fetches[GW_JWKS_OK]++;
	}
	if (bad) {
		gw_jwks_src_free(src);
		return NULL;
	}
	return src;
}

void
gw_jwks_src_free(struct gw_jwks_src *src)
{
	if (src == NULL)
		return;
	gw_jwks_set_free(src->set);
	free((char *)(uintptr_t)src->c.issuer);
	free((char *)(uintptr_t)src->c.discovery_url);
	free((char *)(uintptr_t)src->c.jwks_uri);
	free((char *)(uintptr_t)src->c.ca_file);
	free(src->uri);
	pthread_mutex_destroy(&src->mu);
	free(src);
}

static int
usable(const struct gw_jwks_src *src, int64_t now)
{
	return src->set != NULL && src->last_ok_s > 0 &&
	       now - src->last_ok_s <= src->c.max_stale_s;
}

struct gw_jwks_set *
gw_jwks_src_get(struct gw_jwks_src *src, int64_t now_s)
{
	struct gw_jwks_set *s = NULL;

	pthread_mutex_lock(&src->mu);
	if (usable(src, now_s))
		s = gw_jwks_set_ref(src->set);
	pthread_mutex_unlock(&src->mu);
	return s;
}

/* One GET into *body; result class and err on failure. */
static enum gw_jwks_result
http_get(const struct gw_jwks_src *src, const char *url, char **body,
         size_t *len, long long *max_age, char *err, size_t errlen)
{
	struct gw_upstream *u = NULL;
	struct gw_upresp r = {0};
	struct gw_fault f;
	struct gw_upget g;
	enum gw_jwks_result res = GW_JWKS_ERROR;
	enum gw_err e;

	memset(&f, 0, sizeof(f));
	memset(&g, 0, sizeof(g));
	g.url = url;
	g.ca_file = src->c.ca_file;
	g.connect_timeout_ms = src->c.connect_ms;
	g.timeout_ms = src->c.timeout_ms;
	g.max_bytes = GW_JWKS_MAX_BYTES;
	/* A handle per fetch: fetches are rare and run on any thread. */
	u = gw_up_new();
	if (u == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	e = gw_up_get(u, &g, &r, &f);
	if (e != GW_OK) {
		/* Over the cap is a hostile answer, not an outage. */
		if (e == GW_ERR_UPSTREAM_BAD)
			res = GW_JWKS_REJECTED;
		snprintf(err, errlen, "%s", f.msg);
		goto out;
	}
	if (r.status != 200) {
		snprintf(err, errlen, "answered HTTP %ld", r.status);
		goto out;
	}
	*body = r.body;
	*len = r.bodylen;
	*max_age = r.max_age_s;
	r.body = NULL;
	res = GW_JWKS_OK;
out:
	gw_upresp_reset(&r);
	gw_up_free(u);
	return res;
}

/*
 * OIDC Discovery 1.0 4: GET issuer-derived URL, then "issuer" must equal
 * the configured issuer byte for byte (4.3, go-oidc does the same) and
 * jwks_uri must be https.  *uri malloc'd.
 */
static enum gw_jwks_result
discover(const struct gw_jwks_src *src, char **uri, char *err, size_t errlen)
{
	json_object *doc = NULL, *v = NULL;
	char *body = NULL;
	const char *ju;
	size_t len = 0;
	long long ma;
	enum gw_jwks_result res;

	res =
	    http_get(src, src->c.discovery_url, &body, &len, &ma, err, errlen);
	if (res != GW_JWKS_OK)
		goto out;
	res = GW_JWKS_REJECTED;
	doc = len <= GW_JWKS_MAX_BYTES && memchr(body, '\0', len) == NULL
	          ? json_tokener_parse(body)
	          : NULL;
	if (!json_object_is_type(doc, json_type_object)) {
		snprintf(err, errlen, "discovery document is not JSON");
		goto out;
	}
	if (!json_object_object_get_ex(doc, "issuer", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), src->c.issuer) != 0) {
		snprintf(err, errlen,
		         "discovery issuer differs from the configured one");
		goto out;
	}
	if (!json_object_object_get_ex(doc, "jwks_uri", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "discovery document has no jwks_uri");
		goto out;
	}
	ju = json_object_get_string(v);
	if (strncmp(ju, "https://", 8) != 0 || strlen(ju) > 2048) {
		snprintf(err, errlen, "discovery jwks_uri is not https");
		goto out;
	}
	*uri = gw_strdup(ju);
	if (*uri == NULL) {
		snprintf(err, errlen, "out of memory");
		res = GW_JWKS_ERROR;
		goto out;
	}
	res = GW_JWKS_OK;
out:
	json_object_put(doc);
	free(body);
	return res;
}

/* The next refresh: configured, else max-age clamped (RFC 9111 5.2.2.1). */
static int64_t
ttl(const struct gw_jwks_src *src, long long max_age)
{
	if (src->c.refresh_s > 0)
		return src->c.refresh_s;
	if (max_age < 0)
		return TTL_DEFAULT_S;
	if (max_age < TTL_MIN_S)
		return TTL_MIN_S;
	return max_age > TTL_MAX_S ? TTL_MAX_S : max_age;
}

/*
 * One fetch, lock released (the caller holds the single-flight flag):
 * discovery when the jwks_uri is not known, then the set.
 */
static void
fetch(struct gw_jwks_src *src, int64_t now, int kid)
{
	struct gw_jwks_set *set = NULL, *old = NULL;
	char err[ERR_MAX] = "", *uri = NULL, *body = NULL;
	size_t len = 0;
	long long ma = -1;
	enum gw_jwks_result res = GW_JWKS_OK;

	pthread_mutex_lock(&src->mu);
	uri = src->uri != NULL ? gw_strdup(src->uri) : NULL;
	pthread_mutex_unlock(&src->mu);
	if (uri == NULL && src->c.discovery_url != NULL)
		res = discover(src, &uri, err, sizeof(err));
	if (res == GW_JWKS_OK && uri == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		res = GW_JWKS_ERROR;
	}
	if (res == GW_JWKS_OK)
		res = http_get(src, uri, &body, &len, &ma, err, sizeof(err));
	if (res == GW_JWKS_OK &&
	    gw_jwks_parse(body, len, &set, err, sizeof(err)) == -1)
		res = GW_JWKS_REJECTED;
	pthread_mutex_lock(&src->mu);
	src->busy = 0;
	src->st.fetches[res]++;
	if (kid)
		src->st.kid_refetches++;
	if (res == GW_JWKS_OK) {
		old = src->set;
		src->set = set;
		set = NULL;
		src->last_ok_s = now;
		src->next_s = now + ttl(src, ma);
		src->last_error[0] = '\0';
		if (src->uri == NULL) {
			src->uri = uri;
			uri = NULL;
		}
	} else {
		snprintf(src->last_error, sizeof(src->last_error), "%s", err);
		src->next_s = now + (ttl(src, -1) < RETRY_MAX_S ? ttl(src, -1)
		                                                : RETRY_MAX_S);
		/* A discovered jwks_uri may have moved: discover again. */
		if (src->c.discovery_url != NULL && res == GW_JWKS_ERROR) {
			free(src->uri);
			src->uri = NULL;
		}
	}
	pthread_mutex_unlock(&src->mu);
	gw_jwks_set_free(old);
	gw_jwks_set_free(set);
	free(uri);
	free(body);
}

int
gw_jwks_src_tick(struct gw_jwks_src *src, int64_t now_s, char *err,
                 size_t errlen)
{
	uint64_t bad = 0;
	int go = 0, ok, failed = 0;

	int kid = 0;

	pthread_mutex_lock(&src->mu);
	if (!src->busy && (now_s >= src->next_s || src->kid_wanted) &&
	    (src->c.jwks_uri != NULL || src->c.discovery_url != NULL)) {
		src->busy = 1;
		go = 1;
		kid = src->kid_wanted;
		src->kid_wanted = 0;
		bad = src->st.fetches[GW_JWKS_ERROR] +
		      src->st.fetches[GW_JWKS_REJECTED];
	}
	pthread_mutex_unlock(&src->mu);
	if (go)
		fetch(src, now_s, kid);
	pthread_mutex_lock(&src->mu);
	ok = usable(src, now_s);
	failed = go && src->st.fetches[GW_JWKS_ERROR] +
	                       src->st.fetches[GW_JWKS_REJECTED] !=
	                   bad;
	if (!ok || failed)
		snprintf(err, errlen, "%s",
		         src->last_error[0] != '\0'
		             ? src->last_error
		             : (src->set != NULL ? "keys older than "
		                                   "jwks_max_stale_s"
		                                 : "no keys fetched yet"));
	pthread_mutex_unlock(&src->mu);
	if (!ok)
		return -1;
	return failed ? 1 : 0;
}

int
gw_jwks_src_unknown_kid(struct gw_jwks_src *src, int64_t now_s)
{
	int go = 0;

	/* Only scheduled: the worker answers its token at once, and the
	 * refresher (gw_jwks_src_tick, once a second) does discovery and the
	 * fetch, up to connect + fetch timeouts off the request path. */
	pthread_mutex_lock(&src->mu);
	if (src->c.jwks_uri == NULL && src->c.discovery_url == NULL)
		go = 0;
	else if (src->busy || src->kid_wanted ||
	         (src->last_kid_s != 0 &&
	          now_s - src->last_kid_s < GW_JWKS_KID_REFETCH_S))
		src->st.fetches[GW_JWKS_LIMITED]++;
	else {
		src->kid_wanted = 1;
		src->last_kid_s = now_s;
		go = 1;
	}
	pthread_mutex_unlock(&src->mu);
	return go;
}

static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	       (a != NULL && b != NULL && strcmp(a, b) == 0);
}

void
gw_jwks_src_adopt(struct gw_jwks_src *src, struct gw_jwks_src *old)
{
	struct gw_jwks_set *s = NULL;
	int64_t last_ok = 0, next = 0, kid = 0;
	char *uri = NULL;

	if (src == NULL || old == NULL || !same(src->c.issuer, old->c.issuer) ||
	    !same(src->c.jwks_uri, old->c.jwks_uri) ||
	    !same(src->c.discovery_url, old->c.discovery_url) ||
	    (src->c.jwks_uri == NULL && src->c.discovery_url == NULL))
		return;
	pthread_mutex_lock(&old->mu);
	s = gw_jwks_set_ref(old->set);
	last_ok = old->last_ok_s;
	next = old->next_s;
	kid = old->last_kid_s;
	uri = old->uri != NULL ? gw_strdup(old->uri) : NULL;
	pthread_mutex_unlock(&old->mu);
	pthread_mutex_lock(&src->mu);
	if (src->set == NULL && s != NULL) {
		src->set = s;
		s = NULL;
		src->last_ok_s = last_ok;
		src->next_s = next;
		src->last_kid_s = kid;
		if (src->uri == NULL) {
			src->uri = uri;
			uri = NULL;
		}
	}
	pthread_mutex_unlock(&src->mu);
	gw_jwks_set_free(s);
	free(uri);
}

void
gw_jwks_src_stats(struct gw_jwks_src *src, int64_t now_s,
                  struct gw_jwks_stats *out)
{
	pthread_mutex_lock(&src->mu);
	*out = src->st;
	out->last_ok_s = src->last_ok_s;
	out->nkeys = src->set != NULL ? src->set->n : 0;
	out->stale = !usable(src, now_s);
	pthread_mutex_unlock(&src->mu);
}

void
gw_jwks_src_last_error(struct gw_jwks_src *src, char *buf, size_t len)
{
	pthread_mutex_lock(&src->mu);
	snprintf(buf, len, "%s", src->last_error);
	pthread_mutex_unlock(&src->mu);
}
