/*
 * Development tokens (gw_jwt_mint, for hssgw mint-token and the tests): the
 * header and payload written by json-c, signed with OpenSSL under the rules
 * of the pinned algorithm table (jwtv_int.h), HMAC for HS256.  It must never
 * run on the request path, never include <jwt.h> (jwtv.c alone does), and
 * never keep, log or return key bytes.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "jwks.h"
#include "jwtv.h"
#include "jwtv_int.h"

#define MINT_MAX ((size_t)256 * 1024)

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
 * Signs the input with a PEM private key under alg's rules (PSS salt =
 * hash length, raw R||S for ES, pure Ed25519); malloc'd, or NULL.
 */
static unsigned char *
pem_sign(enum alg alg, const unsigned char *key, size_t keylen, const char *in,
         size_t inlen, size_t *siglen, char *err, size_t errlen)
{
	const struct alg_info *ai = &jwt_algtab[alg];
	char why[128];
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md_alg;
	unsigned char *der = NULL, *ret = NULL;
	size_t derlen = 0;

	snprintf(err, errlen, "signing failed");
	bio = keylen <= INT_MAX ? BIO_new_mem_buf(key, (int)keylen) : NULL;
	if (bio != NULL)
		pkey =
		    PEM_read_bio_PrivateKey(bio, NULL, jwt_no_passphrase, NULL);
	if (pkey == NULL) {
		snprintf(err, errlen, "not an unencrypted PEM private key");
		goto out;
	}
	if (jwt_check_pkey(pkey, alg, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s", why);
		goto out;
	}
	md_alg = ai->md != NULL ? ai->md() : NULL;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL ||
	    EVP_DigestSignInit(ctx, &pctx, md_alg, NULL, pkey) != 1)
		goto out;
	if (jwt_pss_setup(pctx, ai, md_alg) == -1)
		goto out;
	if (EVP_DigestSign(ctx, NULL, &derlen, (const unsigned char *)in,
	                   inlen) != 1)
		goto out;
	der = malloc(derlen);
	if (der == NULL ||
	    EVP_DigestSign(ctx, der, &derlen, (const unsigned char *)in,
	                   inlen) != 1)
		goto out;
	if (ai->half == 0) {
		*siglen = derlen;
		ret = der;
		der = NULL;
		goto out;
	}
	ret = gw_jws_ecdsa_raw(der, derlen, ai->half);
	*siglen = 2 * ai->half;
out:
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
	a = jwt_alg_lookup(alg);
	if (a < 0 || key == NULL || keylen == 0 || claims_json == NULL) {
		snprintf(err, errlen,
		         "mint: alg must be RS256..512, PS256..512, "
		         "ES256..512, EdDSA or HS256, with a key");
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
	        hdr, "alg", json_object_new_string(jwt_algtab[a].name)) != 0 ||
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
