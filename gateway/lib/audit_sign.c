/*
 * Signed checkpoints (docs/AUDIT.md, "Signed checkpoint records"): the
 * Ed25519 keys, the canonical bytes a "checkpoint" record signs, its
 * "checkpoint" member, and the signature's check for "audit verify
 * --pubkey".  Owns no state: audit.c keeps the writer's key and chain,
 * auditq.c the verifier's.  Never logs or copies a private key's bytes:
 * errors name the file only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit_int.h"

/* A PEM key is a few hundred bytes; this caps what is read. */
#define KEY_FILE_MAX 16384

/*
 * Loads one PEM key of either kind and checks it is Ed25519.  The
 * private key is a secret file (owner-only, the service user's or
 * root's, as every other secret: gw_read_file) and its bytes are wiped.
 */
EVP_PKEY *
aud_sign_key_load(const char *path, int private, char *err, size_t errlen)
{
	EVP_PKEY *k = NULL;
	BIO *bio = NULL;
	char *text = NULL;
	size_t len = 0;

	if (gw_read_file(path, KEY_FILE_MAX, private, &text, &len, err,
	                 errlen) == -1)
		return NULL;
	bio = BIO_new_mem_buf(text, (int)len);
	if (bio != NULL)
		k = private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
		            : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	gw_wipe(text, len);
	free(text);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "%s: not an Ed25519 %s key in PEM", path,
		         private ? "private" : "public");
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

int
aud_sign_key_id(EVP_PKEY *k, char out[AUD_KEY_ID_HEX + 1])
{
	unsigned char raw[32], md[32];
	char hex[GW_AUDIT_HASH_HEX + 1];
	size_t n = sizeof(raw);

	if (EVP_PKEY_get_raw_public_key(k, raw, &n) != 1 || n != 32 ||
	    gw_sha256(raw, n, md) == -1)
		return -1;
	aud_hex32(md, hex);
	memcpy(out, hex, AUD_KEY_ID_HEX);
	out[AUD_KEY_ID_HEX] = '\0';
	return 0;
}

/*
 * The signed bytes: fixed-format lines first, the instance last and
 * unterminated, so no instance name can imitate another field.
 */
int
aud_sign_canon(long long seq, const char *hash, const char *prev,
               const char *instance, struct gw_buf *out)
{
	return gw_buf_printf(out, "hssgw-audit-checkpoint-v1\n%lld\n%s\n%s\n%s",
	                     seq, hash, prev,
	                     instance != NULL ? instance : "") == -1
	           ? -1
	           : 0;
}

int
aud_sign(EVP_PKEY *k, const struct gw_buf *msg, char out[AUD_SIG_B64 + 1])
{
	unsigned char sig[64];
	size_t n = sizeof(sig);
	EVP_MD_CTX *ctx;
	int rc = -1;

	ctx = EVP_MD_CTX_new();
	/* Ed25519 hashes the message itself: no digest (RFC 8032). */
	if (ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) == 1 &&
	    EVP_DigestSign(ctx, sig, &n, (const unsigned char *)msg->p,
	                   msg->len) == 1 &&
	    n == sizeof(sig) &&
	    EVP_EncodeBlock((unsigned char *)out, sig, (int)n) == AUD_SIG_B64)
		rc = 0;
	EVP_MD_CTX_free(ctx);
	return rc;
}

int
aud_sign_check(EVP_PKEY *pub, const struct gw_buf *msg, const char *b64)
{
	unsigned char sig[66];
	EVP_MD_CTX *ctx;
	int ok = 0;

	if (strlen(b64) != AUD_SIG_B64 ||
	    EVP_DecodeBlock(sig, (const unsigned char *)b64, AUD_SIG_B64) !=
	        66 ||
	    b64[AUD_SIG_B64 - 2] != '=' || b64[AUD_SIG_B64 - 1] != '=')
		return 0;
	ctx = EVP_MD_CTX_new();
	if (ctx != NULL &&
	    EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
	    EVP_DigestVerify(ctx, sig, 64, (const unsigned char *)msg->p,
	                     msg->len) == 1)
		ok = 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

int
aud_sign_member(long long seq, const char *hash, const char *prev,
                const char *key_id, const char *sig, struct gw_buf *out)
{
	return gw_buf_printf(out,
	                     "{\"alg\":\"ed25519\",\"key_id\":\"%s\","
	                     "\"seq\":%lld,\"hash\":\"%s\","
	                     "\"prev_checkpoint\":\"%s\",\"sig\":\"%s\"}",
	                     key_id, seq, hash, prev, sig) == -1
	           ? -1
	           : 0;
}

int
gw_audit_signing_key_check(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *k = aud_sign_key_load(path, 1, err, errlen);

	EVP_PKEY_free(k);
	return k != NULL ? 0 : -1;
}
