/*
 * Shared fixture for the jwtv unit tests (test_jwtv.c, test_jwtcache.c):
 * keys generated at run time in a temp dir, a config in code over them,
 * token minting, hand-built HS256 tokens, and verify/expect helpers at a
 * fixed clock NOW.
 */
#ifndef HSSGW_TESTS_JWT_FIXTURE_H
#define HSSGW_TESTS_JWT_FIXTURE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "jwtv.h"

#define NOW    1700000000LL
#define LEEWAY 60
#define ISS    "https://idp.example.com"
#define ISS2   "https://idp2.example.com"
#define AUD    "hssgw"
#define HS_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"hs1\"}"

struct pem {
	unsigned char *p;
	size_t len;
};

struct jwt_fx {
	char dir[64];
	char rsa_pub[128], ec_pub[128], rsa2_pub[128], rsa1024_pub[128];
	char hs[128], hs644[128], hs_short[128], hs_pem[128];
	struct pem rsa_priv, ec_priv, rsa2_priv, rsa1024_priv;
	struct pem rsa_pubpem, rsa2_pubpem;
	char secret[65];
	struct gw_jwt_keyset *ks;
};

extern struct jwt_fx fx;
extern struct gw_conf_jwt_key keys1[3];
extern struct gw_conf_jwt_key keys2[1];
extern char *auds[1];
extern struct gw_conf_issuer issuers[2];

/* ---- fixture helpers ---- */
void write_file(const char *path, const void *p, size_t n, mode_t mode);
struct pem bio_take(BIO *b);
void save_key(EVP_PKEY *k, const char *path, struct pem *priv, struct pem *pub);
void make_conf(struct gw_config *c, long long max_token);
int setup(void **state);
int teardown(void **state);

/* ---- token helpers ---- */
char *mint(const char *alg, const char *kid, const char *claims);
char *claims(const char *extra);
void b64url(const unsigned char *p, size_t n, char *out, size_t cap);
char *hs_token(const char *hdr, const char *payload);
enum gw_err verify_at(const struct gw_jwt_keyset *ks, const char *tok,
                      int64_t now, struct gw_fault *f);
void expect_ok_at(const char *tok, int64_t now);
void expect_ok(const char *tok);
void expect_bad_at(const char *tok, int64_t now, const char *why);
void expect_bad(const char *tok, const char *why);

#endif
