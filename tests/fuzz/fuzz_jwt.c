/*
 * libFuzzer harness for the JWT verifier.  The first input byte picks the
 * mode: odd, the rest is a raw bearer token; even, the rest is a payload
 * that the harness signs with the HS256 key under a fixed header, so the
 * fuzzer also reaches the claim checks, claim extraction and the libjwt
 * gate.  The secret is random, written once to a private temp dir.  Looks
 * for crashes, leaks and UB; an accepted raw token would mean a forged
 * HMAC and aborts.  The verified-token cache is on (small, so it evicts):
 * an accepted token must be accepted again, from the cache, with the same
 * claims; and gw_claims_parse (policy explain --claims) over the signed
 * payload must accept what verification accepted.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "jwtv.h"

#define NOW 1700000000LL

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct gw_jwt_keyset *ks;
static char secret[65];

/* Hand-rolled base64url so the harness does not trust the code it tests. */
static size_t
b64url(const unsigned char *p, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                          "abcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned long acc = 0;
	size_t i, o = 0;
	int bits = 0;

	for (i = 0; i < n; i++) {
		acc = ((acc << 8) | p[i]) & 0xffff;
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = tab[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = tab[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return o;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/fuzz_jwt.XXXXXX";
	static char path[64];
	static char *auds[] = {"hssgw"};
	static struct gw_conf_jwt_key key = {NULL, "HS256", path};
	static struct gw_conf_issuer iss = {.issuer = "https://idp",
	                                    .audiences = auds,
	                                    .naudiences = 1,
	                                    .keys = &key,
	                                    .nkeys = 1};
	struct gw_config c;
	unsigned char raw[32];
	char err[256];
	size_t i;
	int fd;

	(void)argc;
	(void)argv;
	if (mkdtemp(dir) == NULL || RAND_bytes(raw, sizeof(raw)) != 1)
		abort();
	for (i = 0; i < sizeof(raw); i++)
		snprintf(secret + 2 * i, 3, "%02x", raw[i]);
	snprintf(path, sizeof(path), "%s/hs.secret", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd == -1 || write(fd, secret, 64) != 64)
		abort();
	close(fd);
	memset(&c, 0, sizeof(c));
	c.jwt_leeway_s = 60;
	c.jwt_max_token_bytes = 8192;
	c.jwt_cache_entries = 16;
	c.issuers = &iss;
	c.nissuers = 1;
	ks = gw_jwt_keyset_load(&c, err, sizeof(err));
	if (ks == NULL) {
		fprintf(stderr, "fuzz_jwt: %s\n", err);
		abort();
	}
	unlink(path);
	rmdir(dir);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	struct gw_claims *claims = NULL, *again = NULL, *parsed = NULL;
	const char *why = NULL;
	struct gw_fault f;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *tok = NULL;
	size_t n;
	enum gw_err e;

	if (size < 1 || size > 16384)
		return 0;
	if (data[0] & 1) {
		tok = malloc(size);
		if (tok == NULL)
			return 0;
		memcpy(tok, data + 1, size - 1);
		tok[size - 1] = '\0';
	} else {
		tok = malloc(2 * size + 128);
		if (tok == NULL)
			return 0;
		n = b64url((const unsigned char *)hdr, sizeof(hdr) - 1, tok);
		tok[n++] = '.';
		n += b64url(data + 1, size - 1, tok + n);
		if (HMAC(EVP_sha256(), secret, 64, (unsigned char *)tok, n, md,
		         &mdlen) == NULL)
			abort();
		tok[n++] = '.';
		b64url(md, mdlen, tok + n);
	}
	memset(&f, 0, sizeof(f));
	e = gw_jwt_verify(ks, tok, NOW, &claims, &f);
	if ((e == GW_OK) != (claims != NULL))
		abort();
	if (e == GW_OK && (data[0] & 1))
		abort(); /* a raw token we never signed was accepted */
	if (e == GW_OK) {
		memset(&f, 0, sizeof(f));
		if (gw_jwt_verify(ks, tok, NOW, &again, &f) != GW_OK ||
		    again == NULL || strcmp(again->sub, claims->sub) != 0 ||
		    again->n != claims->n)
			abort(); /* the cache changed the answer */
		if (gw_claims_parse((const char *)data + 1, size - 1, &parsed,
		                    &why) != GW_OK)
			abort(); /* explain refuses what enforcement accepts */
	}
	gw_claims_free(parsed);
	gw_claims_free(again);
	gw_claims_free(claims);
	free(tok);
	return 0;
}
