/*
 * Shared fixture for the jwtv unit tests, compiled into test_jwtv and
 * test_jwtcache: run-time key generation into a temp dir, the config in
 * code, token minting and the verify/expect helpers.  See jwt_fixture.h.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "jwt_fixture.h"
#include "jwtv.h"

struct jwt_fx fx;

/* ---- fixture helpers -------------------------------------------------- */

void
write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

struct pem
bio_take(BIO *b)
{
	struct pem r = {NULL, 0};
	char *p = NULL;
	long n;

	n = BIO_get_mem_data(b, &p);
	assert_true(n > 0);
	r.p = malloc((size_t)n + 1);
	assert_non_null(r.p);
	memcpy(r.p, p, (size_t)n);
	r.p[n] = '\0';
	r.len = (size_t)n;
	BIO_free(b);
	return r;
}

/* Writes the public PEM to path; returns the private and public PEMs. */
void
save_key(EVP_PKEY *k, const char *path, struct pem *priv, struct pem *pub)
{
	BIO *b;
	struct pem p;

	b = BIO_new(BIO_s_mem());
	assert_int_equal(
	    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	*priv = bio_take(b);
	b = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
	p = bio_take(b);
	write_file(path, p.p, p.len, 0644);
	if (pub != NULL)
		*pub = p;
	else
		free(p.p);
	EVP_PKEY_free(k);
}

struct gw_conf_jwt_key keys1[3];
struct gw_conf_jwt_key keys2[1];
char *auds[1] = {AUD};
struct gw_conf_issuer issuers[2];

/* A config in code: ISS has three kid'd keys, ISS2 one kid-less RSA key. */
void
make_conf(struct gw_config *c, long long max_token)
{
	keys1[0] = (struct gw_conf_jwt_key){"rsa1", "RS256", fx.rsa_pub};
	keys1[1] = (struct gw_conf_jwt_key){"ec1", "ES256", fx.ec_pub};
	keys1[2] = (struct gw_conf_jwt_key){"hs1", "HS256", fx.hs};
	keys2[0] = (struct gw_conf_jwt_key){NULL, "RS256", fx.rsa2_pub};
	issuers[0] = (struct gw_conf_issuer){.issuer = ISS,
	                                     .audiences = auds,
	                                     .naudiences = 1,
	                                     .keys = keys1,
	                                     .nkeys = 3};
	issuers[1] = (struct gw_conf_issuer){.issuer = ISS2,
	                                     .audiences = auds,
	                                     .naudiences = 1,
	                                     .keys = keys2,
	                                     .nkeys = 1};
	memset(c, 0, sizeof(*c));
	c->jwt_leeway_s = LEEWAY;
	c->jwt_max_token_bytes = max_token;
	c->issuers = issuers;
	c->nissuers = 2;
}

int
setup(void **state)
{
	struct gw_config c;
	unsigned char raw[32];
	char err[512] = "";
	size_t i;

	(void)state;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_jwtv.XXXXXX");
	assert_non_null(mkdtemp(fx.dir));
#define P(f, n) snprintf(fx.f, sizeof(fx.f), "%s/%s", fx.dir, n)
	P(rsa_pub, "rsa.pem");
	P(ec_pub, "ec.pem");
	P(rsa2_pub, "rsa2.pem");
	P(rsa1024_pub, "rsa1024.pem");
	P(hs, "hs.secret");
	P(hs644, "hs644.secret");
	P(hs_short, "short.secret");
	P(hs_pem, "pem.secret");
#undef P
	save_key(EVP_RSA_gen(2048), fx.rsa_pub, &fx.rsa_priv, &fx.rsa_pubpem);
	save_key(EVP_EC_gen("P-256"), fx.ec_pub, &fx.ec_priv, NULL);
	save_key(EVP_RSA_gen(2048), fx.rsa2_pub, &fx.rsa2_priv,
	         &fx.rsa2_pubpem);
	save_key(EVP_RSA_gen(1024), fx.rsa1024_pub, &fx.rsa1024_priv, NULL);
	assert_int_equal(RAND_bytes(raw, sizeof(raw)), 1);
	for (i = 0; i < sizeof(raw); i++)
		snprintf(fx.secret + 2 * i, 3, "%02x", raw[i]);
	/* The file has a trailing newline, which the loader strips. */
	write_file(fx.hs, fx.secret, strlen(fx.secret), 0600);
	{
		int fd = open(fx.hs, O_WRONLY | O_APPEND);
		assert_int_equal(write(fd, "\n", 1), 1);
		close(fd);
	}
	write_file(fx.hs644, fx.secret, strlen(fx.secret), 0644);
	write_file(fx.hs_short, "short-secret\n", 13, 0600);
	write_file(fx.hs_pem, fx.rsa_pubpem.p, fx.rsa_pubpem.len, 0600);
	make_conf(&c, 8192);
	fx.ks = gw_jwt_keyset_load(&c, err, sizeof(err));
	if (fx.ks == NULL)
		fprintf(stderr, "keyset: %s\n", err);
	assert_non_null(fx.ks);
	return 0;
}

int
teardown(void **state)
{
	static const char *names[] = {
	    "rsa.pem",   "ec.pem",       "rsa2.pem",     "rsa1024.pem",
	    "hs.secret", "hs644.secret", "short.secret", "pem.secret"};
	char path[256];
	size_t i;

	(void)state;
	gw_jwt_keyset_free(fx.ks);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", fx.dir, names[i]);
		unlink(path);
	}
	rmdir(fx.dir);
	free(fx.rsa_priv.p);
	free(fx.ec_priv.p);
	free(fx.rsa2_priv.p);
	free(fx.rsa1024_priv.p);
	free(fx.rsa_pubpem.p);
	free(fx.rsa2_pubpem.p);
	return 0;
}

/* ---- token helpers ---------------------------------------------------- */

char *
mint(const char *alg, const char *kid, const char *claims)
{
	const struct pem *k = NULL;
	char err[256] = "", *t;

	if (strcmp(alg, "HS256") == 0)
		t = gw_jwt_mint(alg, kid, (const unsigned char *)fx.secret,
		                strlen(fx.secret), claims, err, sizeof(err));
	else {
		k = strcmp(alg, "RS256") == 0 ? &fx.rsa_priv : &fx.ec_priv;
		t = gw_jwt_mint(alg, kid, k->p, k->len, claims, err,
		                sizeof(err));
	}
	if (t == NULL)
		fprintf(stderr, "mint: %s\n", err);
	assert_non_null(t);
	return t;
}

/* Standard claims for ISS plus extra members (",..." or ""). */
char *
claims(const char *extra)
{
	static char buf[16384];

	snprintf(buf, sizeof(buf),
	         "{\"iss\":\"" ISS "\",\"sub\":\"alice\",\"aud\":\"" AUD "\","
	         "\"exp\":%lld,\"iat\":%lld%s}",
	         NOW + 300, NOW, extra);
	return buf;
}

void
b64url(const unsigned char *p, size_t n, char *out, size_t cap)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                          "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, o = 0;
	unsigned long acc = 0;
	int bits = 0;

	for (i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			assert_true(o + 1 < cap);
			out[o++] = tab[(acc >> bits) & 63];
		}
	}
	if (bits > 0) {
		assert_true(o + 1 < cap);
		out[o++] = tab[(acc << (6 - bits)) & 63];
	}
	out[o] = '\0';
}

/* An HS256 token over arbitrary header and payload text, really signed. */
char *
hs_token(const char *hdr, const char *payload)
{
	char *t;
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t cap = 4 * (strlen(hdr) + strlen(payload)) + 128, n;

	t = malloc(cap);
	assert_non_null(t);
	b64url((const unsigned char *)hdr, strlen(hdr), t, cap);
	n = strlen(t);
	t[n++] = '.';
	b64url((const unsigned char *)payload, strlen(payload), t + n, cap - n);
	n = strlen(t);
	assert_non_null(HMAC(EVP_sha256(), fx.secret, (int)strlen(fx.secret),
	                     (const unsigned char *)t, n, md, &mdlen));
	t[n++] = '.';
	b64url(md, mdlen, t + n, cap - n);
	return t;
}

enum gw_err
verify_at(const struct gw_jwt_keyset *ks, const char *tok, int64_t now,
          struct gw_fault *f)
{
	struct gw_claims *c = NULL;
	enum gw_err e;

	memset(f, 0, sizeof(*f));
	e = gw_jwt_verify(ks, tok, now, &c, f);
	if (e == GW_OK)
		assert_non_null(c);
	else
		assert_null(c);
	gw_claims_free(c);
	return e;
}

void
expect_ok_at(const char *tok, int64_t now)
{
	struct gw_fault f;

	if (verify_at(fx.ks, tok, now, &f) != GW_OK)
		fail_msg("expected accept, got \"%s\"", f.msg);
}

void
expect_ok(const char *tok)
{
	expect_ok_at(tok, NOW);
}

/* Rejected with TOKEN_INVALID and a reason containing why. */
void
expect_bad_at(const char *tok, int64_t now, const char *why)
{
	struct gw_fault f;

	assert_int_equal(verify_at(fx.ks, tok, now, &f), GW_ERR_TOKEN_INVALID);
	assert_int_equal(f.err, GW_ERR_TOKEN_INVALID);
	assert_string_equal(f.field, "Authorization");
	if (why != NULL && strstr(f.msg, why) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", f.msg, why);
	/* The fault never echoes the token or the key material. */
	if (tok != NULL && strlen(tok) > 16)
		assert_null(strstr(f.msg, tok + strlen(tok) - 16));
	assert_null(strstr(f.msg, fx.secret));
}

void
expect_bad(const char *tok, const char *why)
{
	expect_bad_at(tok, NOW, why);
}
