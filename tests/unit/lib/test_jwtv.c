/*
 * Unit tests for jwtv: verification, algorithm attacks, claims, token
 * structure, claims output, key loading, minting and concurrent use of one
 * keyset.  Keys (RSA 2048 and 1024, EC P-256, an HS256 secret) are
 * generated at run time in a temp dir by the shared fixture in jwt_fixture.c;
 * nothing secret is committed.  The clock is a fixed NOW, so the expiry
 * edges are exact.  Every attack test names the gap it pins and carries a
 * positive control proving the rejection is not an accident.  The
 * verified-token cache has its own file, test_jwtcache.c.
 *
 * This file includes <jwt.h> for one reason only: the key-confusion
 * positive control must show that plain libjwt accepts the forged token.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "jwt_fixture.h"
#include "jwtv.h"

/* ---- valid tokens ----------------------------------------------------- */

static void
test_valid_all_algs(void **state)
{
	static const struct {
		const char *alg, *kid;
	} rows[] = {{"RS256", "rsa1"}, {"ES256", "ec1"}, {"HS256", "hs1"}};
	struct gw_claims *c = NULL;
	struct gw_fault f;
	size_t i;
	char *t;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		t = mint(rows[i].alg, rows[i].kid, claims(",\"jti\":\"j-1\""));
		memset(&f, 0, sizeof(f));
		assert_int_equal(gw_jwt_verify(fx.ks, t, NOW, &c, &f), GW_OK);
		assert_string_equal(c->iss, ISS);
		assert_string_equal(c->sub, "alice");
		assert_string_equal(c->jti, "j-1");
		assert_int_equal(c->exp, NOW + 300);
		assert_int_equal(c->iat, NOW);
		assert_int_equal(c->nbf, 0);
		gw_claims_free(c);
		c = NULL;
		free(t);
	}
}

/* Gap: a token without kid must go to its issuer's kid-less key only. */
static void
test_kidless_selection(void **state)
{
	char *t, *t2;
	char err[256];

	(void)state;
	/* Control: ISS2 has one kid-less RSA key; signed by it, accepted. */
	t = gw_jwt_mint("RS256", NULL, fx.rsa2_priv.p, fx.rsa2_priv.len,
	                "{\"iss\":\"" ISS2 "\",\"sub\":\"bob\",\"aud\":\"" AUD
	                "\",\"exp\":1700000300}",
	                err, sizeof(err));
	assert_non_null(t);
	expect_ok(t);
	/* ISS's keys all carry a kid: a kid-less token cannot pick one. */
	t2 = mint("RS256", NULL, claims(""));
	expect_bad(t2, "needs a kid");
	free(t);
	free(t2);
}

/* ---- algorithm attacks ------------------------------------------------ */

/* Gap: alg "none" (RFC 7518 3.6) must never stand in for a signature. */
static void
test_alg_none(void **state)
{
	char hdr[256], pl[1024], *t, *good, *sig;
	char tok[4096];
	const char *p = claims("");

	(void)state;
	good = mint("RS256", "rsa1", p);
	expect_ok(good); /* control: the same claims, signed, pass */
	sig = strrchr(good, '.') + 1;
	b64url((const unsigned char *)"{\"alg\":\"none\",\"typ\":\"JWT\"}", 26,
	       hdr, sizeof(hdr));
	b64url((const unsigned char *)p, strlen(p), pl, sizeof(pl));
	/* Unsecured JWS form: empty third segment. */
	snprintf(tok, sizeof(tok), "%s.%s.", hdr, pl);
	expect_bad(tok, NULL);
	/* With a (real, but foreign) signature attached. */
	snprintf(tok, sizeof(tok), "%s.%s.%s", hdr, pl, sig);
	expect_bad(tok, "algorithm not allowed");
	/* Case games: "None", "NONE" are not "none" but still not allowed. */
	t = hs_token("{\"alg\":\"None\",\"kid\":\"hs1\"}", p);
	expect_bad(t, "algorithm not allowed");
	free(t);
	/* "hs256" differs from "HS256" (RFC 7515 4.1.1 is case-sensitive). */
	t = hs_token("{\"alg\":\"hs256\",\"kid\":\"hs1\"}", p);
	expect_bad(t, "algorithm not allowed");
	free(t);
	/* Control for the hand-built path: same header, proper alg. */
	t = hs_token("{\"alg\":\"HS256\",\"kid\":\"hs1\"}", p);
	expect_ok(t);
	free(t);
	free(good);
}

/*
 * Gap: the RS256 -> HS256 key confusion.  An attacker HMACs a token with the
 * RSA public key PEM (public knowledge).  libjwt 1.10.2 picks the alg from
 * the header, so handed the PEM as "key" it verifies the forgery.  hssgw
 * pins RS256 on that key and must refuse.
 */
static void
test_key_confusion(void **state)
{
	char err[256] = "", *forged, *forged2;
	jwt_t *j = NULL;

	(void)state;
	forged = gw_jwt_mint("HS256", "rsa1", fx.rsa_pubpem.p,
	                     fx.rsa_pubpem.len, claims(""), err, sizeof(err));
	assert_non_null(forged);
	/* Positive control: plain libjwt accepts it, so the attack is real. */
	assert_int_equal(
	    jwt_decode(&j, forged, fx.rsa_pubpem.p, (int)fx.rsa_pubpem.len), 0);
	assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
	jwt_free(j);
	j = NULL;
	expect_bad(forged, "not allowed for this key");

	/* Same against ISS2, whose only key is kid-less RS256. */
	forged2 =
	    gw_jwt_mint("HS256", NULL, fx.rsa2_pubpem.p, fx.rsa2_pubpem.len,
	                "{\"iss\":\"" ISS2 "\",\"sub\":\"bob\",\"aud\":\"" AUD
	                "\",\"exp\":1700000300}",
	                err, sizeof(err));
	assert_non_null(forged2);
	assert_int_equal(
	    jwt_decode(&j, forged2, fx.rsa2_pubpem.p, (int)fx.rsa2_pubpem.len),
	    0);
	jwt_free(j);
	expect_bad(forged2, "not allowed for this key");
	free(forged);
	free(forged2);
}

/* Gap: a token's alg must equal its key's pinned alg, whatever it is. */
static void
test_alg_mismatch(void **state)
{
	static const struct {
		const char *alg, *good_kid, *bad_kid;
	} rows[] = {
	    {"RS256", "rsa1", "ec1"},
	    {"ES256", "ec1", "rsa1"},
	    {"HS256", "hs1", "rsa1"},
	    {"RS256", "rsa1", "hs1"},
	};
	size_t i;
	char *t;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		t = mint(rows[i].alg, rows[i].good_kid, claims(""));
		expect_ok(t); /* control */
		free(t);
		t = mint(rows[i].alg, rows[i].bad_kid, claims(""));
		expect_bad(t, "not allowed for this key");
		free(t);
	}
}

/* Gap: an unknown kid must not fall back to trying every key. */
static void
test_unknown_kid(void **state)
{
	char *t;
	char err[256];

	(void)state;
	t = mint("RS256", "rsa1", claims(""));
	expect_ok(t); /* control */
	free(t);
	t = mint("RS256", "rsa9", claims(""));
	expect_bad(t, "unknown kid");
	free(t);
	/* Cross-issuer: ISS2 claimed, but kid names an ISS key. */
	t = gw_jwt_mint("RS256", "rsa1", fx.rsa_priv.p, fx.rsa_priv.len,
	                "{\"iss\":\"" ISS2 "\",\"sub\":\"bob\",\"aud\":\"" AUD
	                "\",\"exp\":1700000300}",
	                err, sizeof(err));
	assert_non_null(t);
	expect_bad(t, "unknown kid");
	free(t);
	/* kid of the wrong type. */
	t = hs_token("{\"alg\":\"HS256\",\"kid\":7}", claims(""));
	expect_bad(t, "malformed kid");
	free(t);
}

/* Gap: a signature made by a different key of the right type. */
static void
test_wrong_key_same_alg(void **state)
{
	char err[256], *t;

	(void)state;
	t = gw_jwt_mint("RS256", "rsa1", fx.rsa2_priv.p, fx.rsa2_priv.len,
	                claims(""), err, sizeof(err));
	assert_non_null(t);
	expect_bad(t, "bad signature");
	free(t);
	t = mint("RS256", "rsa1", claims(""));
	expect_ok(t); /* control */
	free(t);
}

/* ---- claims ----------------------------------------------------------- */

/* Gap: libjwt 1.10.2 never checks exp; the edge is exp + leeway. */
static void
test_expiry_edges(void **state)
{
	char p[512], *t;

	(void)state;
	snprintf(p, sizeof(p),
	         "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"" AUD
	         "\",\"exp\":%lld}",
	         NOW);
	t = mint("ES256", "ec1", p);
	expect_ok_at(t, NOW);
	expect_ok_at(t, NOW + LEEWAY); /* just within leeway */
	expect_bad_at(t, NOW + LEEWAY + 1, "token expired"); /* just past */
	free(t);
}

/* Gap: nbf in the future; the edge is nbf - leeway. */
static void
test_nbf_future(void **state)
{
	char *t;

	(void)state;
	t = mint("HS256", "hs1", claims(",\"nbf\":1700000100"));
	expect_bad_at(t, NOW, "not yet valid");
	expect_bad_at(t, NOW + 100 - LEEWAY - 1, "not yet valid");
	expect_ok_at(t, NOW + 100 - LEEWAY); /* control: just within */
	free(t);
}

/* Gap: a token with no exp would never expire. */
static void
test_missing_exp(void **state)
{
	char *t;

	(void)state;
	t = mint("RS256", "rsa1",
	         "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"" AUD "\"}");
	expect_bad(t, "missing exp");
	free(t);
	t = mint("RS256", "rsa1",
	         "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"" AUD
	         "\",\"exp\":1700000300}");
	expect_ok(t); /* control */
	free(t);
}

/* Gap: numeric claims as strings (or other types) must not be coerced. */
static void
test_numeric_claim_types(void **state)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
	    {"\"exp\":\"1700000300\"", "exp must be a number"},
	    {"\"exp\":true", "exp must be a number"},
	    {"\"exp\":-5", "exp must be a number"},
	    {"\"exp\":99999999999999999999", "exp must be a number"},
	    {"\"exp\":1700000300,\"nbf\":\"0\"", "nbf must be a number"},
	    {"\"exp\":1700000300,\"iat\":\"1700000000\"",
	     "iat must be a number"},
	};
	char p[512], *t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(p, sizeof(p),
		         "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"" AUD
		         "\",%s}",
		         bad[i].json);
		t = mint("HS256", "hs1", p);
		expect_bad(t, bad[i].why);
		free(t);
	}
	/* Control: NumericDate may be fractional (RFC 7519 2). */
	t = mint(
	    "HS256", "hs1",
	    "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":\"" AUD
	    "\",\"exp\":1700000300.5,\"nbf\":1699999999,\"iat\":1699999999}");
	expect_ok(t);
	free(t);
}

/* Gap: iss must equal a configured issuer exactly. */
static void
test_wrong_iss(void **state)
{
	static const char *bad[] = {
	    "{\"iss\":\"https://evil.example.com\",\"sub\":\"a\","
	    "\"aud\":\"" AUD "\",\"exp\":1700000300}",
	    "{\"iss\":\"HTTPS://IDP.EXAMPLE.COM\",\"sub\":\"a\","
	    "\"aud\":\"" AUD "\",\"exp\":1700000300}",
	    "{\"iss\":\"" ISS "/\",\"sub\":\"a\",\"aud\":\"" AUD
	    "\",\"exp\":1700000300}",
	    "{\"sub\":\"a\",\"aud\":\"" AUD "\",\"exp\":1700000300}",
	    "{\"iss\":[\"" ISS "\"],\"sub\":\"a\",\"aud\":\"" AUD
	    "\",\"exp\":1700000300}",
	};
	size_t i;
	char *t;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = mint("RS256", "rsa1", bad[i]);
		expect_bad(t, "unknown token issuer");
		free(t);
	}
	t = mint("RS256", "rsa1", claims(""));
	expect_ok(t); /* control */
	free(t);
}

/* Gap: a token minted for another audience must not be accepted here. */
static void
test_audience(void **state)
{
	static const struct {
		const char *aud, *why;
	} rows[] = {
	    {"\"other\"", "audience not accepted"},
	    {"[\"x\",\"y\"]", "audience not accepted"},
	    {"[]", "audience not accepted"},
	    {"\"HSSGW\"", "audience not accepted"},
	    {"[1]", "aud must be"},
	    {"[\"" AUD "\",1]", "aud must be"},
	    {"{\"a\":\"" AUD "\"}", "aud must be"},
	    {NULL, "missing aud"},
	};
	char p[512], *t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].aud != NULL)
			snprintf(p, sizeof(p),
			         "{\"iss\":\"" ISS
			         "\",\"sub\":\"a\",\"aud\":%s,"
			         "\"exp\":1700000300}",
			         rows[i].aud);
		else
			snprintf(p, sizeof(p),
			         "{\"iss\":\"" ISS "\",\"sub\":\"a\","
			         "\"exp\":1700000300}");
		t = mint("ES256", "ec1", p);
		expect_bad(t, rows[i].why);
		free(t);
	}
	/* Controls: an array holding our audience, and the plain string. */
	t = mint("ES256", "ec1",
	         "{\"iss\":\"" ISS "\",\"sub\":\"a\",\"aud\":[\"x\",\"" AUD
	         "\"],\"exp\":1700000300}");
	expect_ok(t);
	free(t);
	t = mint("ES256", "ec1", claims(""));
	expect_ok(t);
	free(t);
}

/* Gap: sub names the caller for policy and audit: required, non-empty. */
static void
test_sub_required(void **state)
{
	static const char *bad[] = {
	    "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1700000300}",
	    "{\"iss\":\"" ISS "\",\"sub\":\"\",\"aud\":\"" AUD
	    "\",\"exp\":1700000300}",
	    "{\"iss\":\"" ISS "\",\"sub\":42,\"aud\":\"" AUD
	    "\",\"exp\":1700000300}",
	};
	size_t i;
	char *t;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = mint("HS256", "hs1", bad[i]);
		expect_bad(t, "sub");
		free(t);
	}
}

/*
 * Gap: "admin\u0000x" would be read as "admin" by every C consumer
 * (policy, audit): a NUL escape anywhere in the JSON is refused.
 */
static void
test_nul_in_claim(void **state)
{
	char *t;

	(void)state;
	t = hs_token(HS_HDR, "{\"iss\":\"" ISS "\",\"sub\":\"admin\\u0000x\","
	                     "\"aud\":\"" AUD "\",\"exp\":1700000300}");
	expect_bad(t, "malformed token payload");
	free(t);
	t = hs_token(HS_HDR, "{\"iss\":\"" ISS "\",\"sub\":\"admin\","
	                     "\"aud\":\"" AUD "\",\"exp\":1700000300}");
	expect_ok(t); /* control */
	free(t);
}

/* ---- structure -------------------------------------------------------- */

/* Gap: the size cap comes before any decoding. */
static void
test_oversized(void **state)
{
	struct gw_jwt_keyset *ks = NULL;
	struct gw_config c;
	struct gw_fault f;
	char extra[9000], err[256], *t;
	size_t len;

	(void)state;
	snprintf(extra, sizeof(extra), ",\"pad\":\"%08000d\"", 0);
	t = mint("HS256", "hs1", claims(extra));
	assert_true(strlen(t) > 8192);
	expect_bad(t, "token too large");
	free(t);
	/* Exact edge: a cap equal to the length passes, one less fails. */
	t = mint("HS256", "hs1", claims(""));
	len = strlen(t);
	make_conf(&c, (long long)len);
	ks = gw_jwt_keyset_load(&c, err, sizeof(err));
	assert_non_null(ks);
	assert_int_equal(verify_at(ks, t, NOW, &f), GW_OK);
	gw_jwt_keyset_free(ks);
	make_conf(&c, (long long)len - 1);
	ks = gw_jwt_keyset_load(&c, err, sizeof(err));
	assert_non_null(ks);
	assert_int_equal(verify_at(ks, t, NOW, &f), GW_ERR_TOKEN_INVALID);
	assert_string_equal(f.msg, "token too large");
	gw_jwt_keyset_free(ks);
	free(t);
}

/* Gap: anything but exactly three canonical base64url JSON segments. */
static void
test_malformed(void **state)
{
	char *good, *h, *p, *s, *t, buf[8192], enc[1024];
	size_t i;
	const char *pl = claims("");

	(void)state;
	good = mint("HS256", "hs1", pl);
	expect_ok(good); /* control: the pieces below come from it */
	h = strdup(good);
	p = strchr(h, '.');
	*p++ = '\0';
	s = strchr(p, '.');
	*s++ = '\0';
	{
		/* Each row: the pieces of one bad token, concatenated. */
		const char *rows[][8] = {
		    {h, ".", p},                 /* two segments */
		    {h, ".", p, ".", s, ".", s}, /* four segments */
		    {".", p, ".", s},            /* empty header */
		    {h, "..", s},                /* empty payload */
		    {h, ".", p, "."},            /* empty signature */
		    {h, ".", p, ".", s, "="},    /* padding */
		    {h, ".", p, ".*", s},        /* bad alphabet */
		    {" ", h, ".", p, ".", s},    /* leading space */
		    {h, ".", p, ".", s, "\n"},   /* trailing newline */
		    {h, ".", p, "+.", s},        /* standard base64 char */
		    {""},                        /* empty token */
		    {"..."},                     /* dots only */
		};
		size_t k;

		for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
			buf[0] = '\0';
			for (k = 0; k < 8 && rows[i][k] != NULL; k++)
				snprintf(buf + strlen(buf),
				         sizeof(buf) - strlen(buf), "%s",
				         rows[i][k]);
			expect_bad(buf, NULL);
		}
	}
	/* Non-canonical base64: a 43-char HS256 signature has two spare
	 * bits that must be zero, or one signature has many encodings. */
	snprintf(buf, sizeof(buf), "%s.%s.%s", h, p, s);
	i = strlen(buf) - 1;
	assert_true(strlen(s) == 43);
	buf[i] = (char)(buf[i] == 'A' ? 'B' : buf[i] + 1);
	expect_bad(buf, "malformed token signature");
	/* A length of 4n+1 is never base64url, even with zero bits. */
	snprintf(buf, sizeof(buf), "%s.%s.%sAA", h, p, s);
	expect_bad(buf, "malformed token signature");

	/* Header and payload that are not JSON objects, properly signed. */
	t = hs_token("not json", pl);
	expect_bad(t, "malformed token header");
	free(t);
	t = hs_token("[\"HS256\"]", pl);
	expect_bad(t, "malformed token header");
	free(t);
	t = hs_token(HS_HDR "x", pl);
	expect_bad(t, "malformed token header");
	free(t);
	t = hs_token("{\"typ\":\"JWT\"}", pl);
	expect_bad(t, "no alg");
	free(t);
	t = hs_token(HS_HDR, "[1,2]");
	expect_bad(t, "malformed token payload");
	free(t);
	t = hs_token(HS_HDR, "12345");
	expect_bad(t, "malformed token payload");
	free(t);
	t = hs_token(HS_HDR, "{\"iss\":");
	expect_bad(t, "malformed token payload");
	free(t);
	/* Invalid UTF-8 in the payload. */
	snprintf(buf, sizeof(buf),
	         "{\"iss\":\"" ISS "\",\"sub\":\"\xc0\xaf\",\"aud\":\"" AUD
	         "\",\"exp\":1700000300}");
	t = hs_token(HS_HDR, buf);
	expect_bad(t, "malformed token payload");
	free(t);
	/* Base64 of a JSON text, but the segment holds a raw NUL byte. */
	b64url((const unsigned char *)"{\"a\":1}\0", 8, enc, sizeof(enc));
	snprintf(buf, sizeof(buf), "%s.%s.%s", h, enc, s);
	expect_bad(buf, "malformed token payload");
	expect_bad(NULL, "missing token");
	free(h);
	free(good);
}

/* Swaps in another payload under a valid signature of the same key. */
static void
tamper_each(const char *alg, const char *kid)
{
	char *good, *evil, *d, *ed, buf[8192];

	good = mint(alg, kid, claims(""));
	evil = mint(alg, kid, claims(",\"role\":\"admin\""));
	expect_ok(good); /* control */
	d = strrchr(good, '.');
	ed = strrchr(evil, '.');
	snprintf(buf, sizeof(buf), "%.*s%s", (int)(ed - evil), evil, d);
	expect_bad(buf, "bad signature");
	free(good);
	free(evil);
}

/* Gap: a signature must cover the payload actually used. */
static void
test_tampered(void **state)
{
	char *good, *evil, buf[8192];
	char *dot1, *dot2, *edot1, *edot2;

	(void)state;
	good = mint("RS256", "rsa1", claims(""));
	evil = mint("RS256", "rsa1",
	            "{\"iss\":\"" ISS "\",\"sub\":\"root\",\"aud\":\"" AUD
	            "\",\"exp\":1700000300,\"iat\":1700000000}");
	expect_ok(good);
	expect_ok(evil); /* control: both are valid on their own */
	dot1 = strchr(good, '.');
	dot2 = strchr(dot1 + 1, '.');
	edot1 = strchr(evil, '.');
	edot2 = strchr(edot1 + 1, '.');
	/* evil's header and payload with good's signature. */
	snprintf(buf, sizeof(buf), "%.*s%s", (int)(edot2 - evil), evil, dot2);
	expect_bad(buf, "bad signature");
	/* One flipped bit in the signature's first byte. */
	snprintf(buf, sizeof(buf), "%s", good);
	buf[dot2 - good + 1] = (char)(buf[dot2 - good + 1] == 'A' ? 'Q' : 'A');
	expect_bad(buf, "bad signature");
	(void)dot1;
	free(good);
	free(evil);
	/* Each alg's own check (not only the libjwt gate) must catch it. */
	tamper_each("HS256", "hs1");
	tamper_each("ES256", "ec1");
	tamper_each("RS256", "rsa1");
}

/*
 * Gap: the two parsers must agree.  jansson (inside libjwt) refuses an
 * integer past int64 that json-c accepts; the token, validly signed, must
 * then fail at the libjwt gate instead of passing on json-c's word.
 */
static void
test_second_parser(void **state)
{
	char *t;

	(void)state;
	t = mint("HS256", "hs1", claims(",\"big\":99999999999999999999"));
	expect_bad(t, "second verification");
	free(t);
	t = mint("HS256", "hs1", claims(",\"big\":9999999999"));
	expect_ok(t); /* control */
	free(t);
}

/* Gap: crit names extensions we do not understand (RFC 7515 4.1.11). */
static void
test_crit_and_typ(void **state)
{
	char *t;
	const char *p = claims("");

	(void)state;
	t = hs_token("{\"alg\":\"HS256\",\"kid\":\"hs1\",\"crit\":[\"exp\"],"
	             "\"exp\":1}",
	             p);
	expect_bad(t, "critical");
	free(t);
	t = hs_token("{\"alg\":\"HS256\",\"kid\":\"hs1\",\"typ\":\"JOSE\"}", p);
	expect_bad(t, "type must be JWT");
	free(t);
	t = hs_token("{\"alg\":\"HS256\",\"kid\":\"hs1\",\"typ\":1}", p);
	expect_bad(t, "type must be JWT");
	free(t);
	/* Controls: typ case-insensitive, or absent. */
	t = hs_token("{\"alg\":\"HS256\",\"kid\":\"hs1\",\"typ\":\"jwt\"}", p);
	expect_ok(t);
	free(t);
	t = hs_token("{\"alg\":\"HS256\",\"kid\":\"hs1\"}", p);
	expect_ok(t);
	free(t);
}

/* ---- claims output ---------------------------------------------------- */

static void
test_claims_extraction(void **state)
{
	const struct gw_claim *cl;
	struct gw_claims *c = NULL;
	struct gw_fault f;
	char *t;

	(void)state;
	t = mint(
	    "RS256", "rsa1",
	    claims(",\"groups\":[\"dev\",\"ops\"],\"level\":3,\"admin\":true,"
	           "\"guest\":false,\"ratio\":1.5,\"obj\":{\"a\":1},"
	           "\"nul\":null,"
	           "\"nums\":[1,2,true],\"nbf\":1699999000"));
	memset(&f, 0, sizeof(f));
	assert_int_equal(gw_jwt_verify(fx.ks, t, NOW, &c, &f), GW_OK);
	cl = gw_claims_get(c, "groups");
	assert_non_null(cl);
	assert_true(cl->is_array);
	assert_int_equal(cl->nvalues, 2);
	assert_string_equal(cl->values[0], "dev");
	assert_string_equal(cl->values[1], "ops");
	cl = gw_claims_get(c, "level");
	assert_non_null(cl);
	assert_false(cl->is_array);
	assert_int_equal(cl->nvalues, 1);
	assert_string_equal(cl->values[0], "3");
	assert_string_equal(gw_claims_get(c, "admin")->values[0], "true");
	assert_string_equal(gw_claims_get(c, "guest")->values[0], "false");
	assert_string_equal(gw_claims_get(c, "ratio")->values[0], "1.5");
	assert_string_equal(gw_claims_get(c, "exp")->values[0], "1700000300");
	assert_string_equal(gw_claims_get(c, "sub")->values[0], "alice");
	cl = gw_claims_get(c, "nums");
	assert_non_null(cl);
	assert_int_equal(cl->nvalues, 3);
	assert_string_equal(cl->values[2], "true");
	assert_null(gw_claims_get(c, "obj"));
	assert_null(gw_claims_get(c, "nul"));
	assert_null(gw_claims_get(c, "Groups")); /* exact names */
	assert_null(gw_claims_get(c, "nope"));
	assert_int_equal(c->nbf, 1699999000);
	assert_null(c->jti);
	gw_claims_free(c);
	free(t);
}

/* Gap: past the caps the token is refused, never silently truncated. */
static void
test_claim_caps(void **state)
{
	char extra[8192], *t;
	size_t i, n;

	(void)state;
	/* claims("") holds 5 claims: 59 more reach GW_CLAIMS_MAX. */
	for (n = 59; n <= 60; n++) {
		extra[0] = '\0';
		for (i = 0; i < n; i++)
			snprintf(extra + strlen(extra),
			         sizeof(extra) - strlen(extra), ",\"c%zu\":%zu",
			         i, i);
		t = mint("HS256", "hs1", claims(extra));
		if (n == 59)
			expect_ok(t); /* control: exactly at the cap */
		else
			expect_bad(t, "too many claims");
		free(t);
	}
	for (n = GW_CLAIM_VALUES_MAX; n <= GW_CLAIM_VALUES_MAX + 1; n++) {
		snprintf(extra, sizeof(extra), ",\"g\":[");
		for (i = 0; i < n; i++)
			snprintf(extra + strlen(extra),
			         sizeof(extra) - strlen(extra), "%s\"g%zu\"",
			         i ? "," : "", i);
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
		         "]");
		t = mint("HS256", "hs1", claims(extra));
		if (n == GW_CLAIM_VALUES_MAX)
			expect_ok(t);
		else
			expect_bad(t, "too many values");
		free(t);
	}
}

/* ---- key loading ------------------------------------------------------ */

static void
load_one(const char *alg, const char *file, const char *why)
{
	struct gw_conf_jwt_key k = {"k", (char *)alg, (char *)file};
	struct gw_conf_issuer is = {.issuer = ISS,
	                            .audiences = auds,
	                            .naudiences = 1,
	                            .keys = &k,
	                            .nkeys = 1};
	struct gw_config c;
	struct gw_jwt_keyset *ks;
	char err[512] = "";

	memset(&c, 0, sizeof(c));
	c.jwt_leeway_s = LEEWAY;
	c.jwt_max_token_bytes = 8192;
	c.issuers = &is;
	c.nissuers = 1;
	ks = gw_jwt_keyset_load(&c, err, sizeof(err));
	if (why == NULL) {
		if (ks == NULL)
			fail_msg("load failed: %s", err);
		gw_jwt_keyset_free(ks);
		return;
	}
	assert_null(ks);
	if (strstr(err, why) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, why);
	assert_null(strstr(err, fx.secret));
}

/* Gap: a secret readable by others is no secret. */
static void
test_secret_mode(void **state)
{
	(void)state;
	load_one("HS256", fx.hs, NULL); /* control: 0600 loads */
	load_one("HS256", fx.hs644, "group or others");
	load_one("HS256", fx.hs_short, "shorter than 32");
	/* Gap: an HS256 "secret" that is a public key PEM (key confusion). */
	load_one("HS256", fx.hs_pem, "looks like a PEM");
}

/* Gap: weak or mistyped public keys are refused at load. */
static void
test_pubkey_types(void **state)
{
	(void)state;
	load_one("RS256", fx.rsa_pub, NULL); /* control: RSA-2048 */
	load_one("ES256", fx.ec_pub, NULL);  /* control: P-256 */
	load_one("RS256", fx.rsa1024_pub, "1024 bits");
	load_one("RS256", fx.ec_pub, "does not match RS256");
	load_one("ES256", fx.rsa_pub, "does not match ES256");
	load_one("RS256", fx.hs, "not a PEM public key");
	load_one("HS512", fx.hs, "alg must be");
	load_one("none", fx.hs, "alg must be");
	load_one("RS256", "/nonexistent/key.pem", "No such file");
}

static void
test_load_config_rules(void **state)
{
	struct gw_conf_jwt_key k[2] = {{"a", "HS256", NULL},
	                               {"a", "HS256", NULL}};
	struct gw_conf_issuer is[2] = {{.issuer = ISS,
	                                .audiences = auds,
	                                .naudiences = 1,
	                                .keys = k,
	                                .nkeys = 2},
	                               {.issuer = ISS,
	                                .audiences = auds,
	                                .naudiences = 1,
	                                .keys = k,
	                                .nkeys = 1}};
	struct gw_config c;
	char err[512] = "";

	(void)state;
	k[0].file = k[1].file = fx.hs;
	memset(&c, 0, sizeof(c));
	c.jwt_leeway_s = LEEWAY;
	c.jwt_max_token_bytes = 8192;
	c.issuers = is;
	c.nissuers = 1;
	assert_null(gw_jwt_keyset_load(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "duplicate kid"));
	is[0].nkeys = 1;
	c.nissuers = 2;
	assert_null(gw_jwt_keyset_load(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "configured twice"));
	c.nissuers = 1;
	c.jwt_leeway_s = -1;
	assert_null(gw_jwt_keyset_load(&c, err, sizeof(err)));
	c.jwt_leeway_s = LEEWAY;
	c.jwt_max_token_bytes = 0;
	assert_null(gw_jwt_keyset_load(&c, err, sizeof(err)));
	c.jwt_max_token_bytes = 8192;
	is[0].naudiences = 0;
	assert_null(gw_jwt_keyset_load(&c, err, sizeof(err)));
	is[0].naudiences = 1;
	gw_jwt_keyset_free(gw_jwt_keyset_load(&c, err, sizeof(err)));
	gw_jwt_keyset_free(NULL);
	gw_claims_free(NULL);
}

static void
test_mint_errors(void **state)
{
	char err[256] = "";

	(void)state;
	assert_null(gw_jwt_mint("none", NULL, (const unsigned char *)"k", 1,
	                        "{}", err, sizeof(err)));
	assert_null(gw_jwt_mint("HS256", NULL, (const unsigned char *)fx.secret,
	                        strlen(fx.secret), "[1]", err, sizeof(err)));
	assert_null(gw_jwt_mint("HS256", NULL, (const unsigned char *)"short",
	                        5, "{}", err, sizeof(err)));
	/* An EC key cannot mint RS256, nor a weak RSA key. */
	assert_null(gw_jwt_mint("RS256", NULL, fx.ec_priv.p, fx.ec_priv.len,
	                        "{}", err, sizeof(err)));
	assert_null(gw_jwt_mint("RS256", NULL, fx.rsa1024_priv.p,
	                        fx.rsa1024_priv.len, "{}", err, sizeof(err)));
}

/* ---- concurrency ------------------------------------------------------ */

static void *
worker(void *arg)
{
	char **toks = arg;
	struct gw_claims *c = NULL;
	struct gw_fault f;
	intptr_t bad = 0;
	int i, k;

	for (i = 0; i < 40; i++)
		for (k = 0; k < 3; k++) {
			if (gw_jwt_verify(fx.ks, toks[k], NOW, &c, &f) != GW_OK)
				bad++;
			gw_claims_free(c);
			c = NULL;
		}
	return (void *)bad;
}

/* The shared keyset verifies from several threads at once. */
static void
test_concurrent(void **state)
{
	pthread_t th[4];
	char *toks[3];
	void *r;
	int i;

	(void)state;
	toks[0] = mint("RS256", "rsa1", claims(""));
	toks[1] = mint("ES256", "ec1", claims(""));
	toks[2] = mint("HS256", "hs1", claims(""));
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, toks), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], &r), 0);
		assert_int_equal((intptr_t)r, 0);
	}
	for (i = 0; i < 3; i++)
		free(toks[i]);
}

/*
 * Gap (issue #11 item 8): an array claim with one non-scalar element was
 * dropped whole, so groups ["suspended", {"x":1}] hid "suspended" from a
 * DenySuspended statement.  Such a token is refused now.  Positive
 * control: the same groups without the object verify and keep both.
 */
static void
test_claim_array_non_scalar(void **state)
{
	static const char *bad[] = {
	    ",\"groups\":[\"suspended\",{\"x\":1}]",
	    ",\"groups\":[\"suspended\",[\"x\"]]",
	    ",\"groups\":[\"suspended\",null]",
	    ",\"groups\":[{\"x\":1}]",
	};
	const struct gw_claim *cl;
	struct gw_claims *c = NULL;
	struct gw_fault f;
	char *t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = mint("RS256", "rsa1", claims(bad[i]));
		expect_bad(t, "a claim array holds an object");
		free(t);
	}
	t = mint("RS256", "rsa1",
	         claims(",\"groups\":[\"suspended\",\"dev\",7,true]"));
	memset(&f, 0, sizeof(f));
	assert_int_equal(gw_jwt_verify(fx.ks, t, NOW, &c, &f), GW_OK);
	cl = gw_claims_get(c, "groups");
	assert_non_null(cl);
	assert_int_equal(cl->nvalues, 4);
	assert_string_equal(cl->values[0], "suspended");
	assert_string_equal(cl->values[2], "7");
	gw_claims_free(c);
	free(t);
}

/*
 * Gap (issue #11 item 8): policy keys match claim names ignoring case, so
 * with "Team" and "team" in one token the value a condition saw depended
 * on their order.  Refused, in either order and for registered names too.
 * Positive control: distinct names that only share a prefix verify.
 */
static void
test_claim_case_collision(void **state)
{
	static const char *bad[] = {
	    ",\"Team\":\"red\",\"team\":\"blue\"",
	    ",\"team\":\"blue\",\"TEAM\":\"red\"",
	    ",\"Groups\":[\"a\"],\"groups\":[\"b\"]",
	    ",\"SUB\":\"mallory\"",
	};
	char *t;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = mint("RS256", "rsa1", claims(bad[i]));
		expect_bad(t, "differ only in case");
		free(t);
	}
	t = mint("RS256", "rsa1", claims(",\"team\":\"blue\",\"teams\":\"x\""));
	expect_ok(t);
	free(t);
}

/*
 * policy explain --claims builds claims with gw_claims_parse, the code
 * that builds a verified token's: the same refusals, the same values.
 */
static void
test_claims_parse(void **state)
{
	static const char *bad[] = {
	    "{\"groups\":[\"suspended\",{\"x\":1}]}",
	    "{\"Team\":\"a\",\"team\":\"b\"}",
	    "[1]",
	    "{\"a\":1} x",
	    "",
	};
	const char *why = NULL, *ok = "{\"sub\":\"bob\",\"groups\":[\"dev\",2],"
	                              "\"obj\":{\"a\":1},\"exp\":5}";
	struct gw_claims *c = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    gw_claims_parse(bad[i], strlen(bad[i]), &c, &why),
		    GW_ERR_TOKEN_INVALID);
		assert_null(c);
		assert_non_null(why);
	}
	assert_int_equal(gw_claims_parse(ok, strlen(ok), &c, &why), GW_OK);
	assert_string_equal(c->sub, "bob");
	assert_null(c->iss);
	assert_int_equal(c->exp, 5);
	assert_int_equal(gw_claims_get(c, "groups")->nvalues, 2);
	assert_string_equal(gw_claims_get(c, "groups")->values[1], "2");
	assert_null(gw_claims_get(c, "obj"));
	gw_claims_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_all_algs),
	    cmocka_unit_test(test_kidless_selection),
	    cmocka_unit_test(test_alg_none),
	    cmocka_unit_test(test_key_confusion),
	    cmocka_unit_test(test_alg_mismatch),
	    cmocka_unit_test(test_unknown_kid),
	    cmocka_unit_test(test_wrong_key_same_alg),
	    cmocka_unit_test(test_expiry_edges),
	    cmocka_unit_test(test_nbf_future),
	    cmocka_unit_test(test_missing_exp),
	    cmocka_unit_test(test_numeric_claim_types),
	    cmocka_unit_test(test_wrong_iss),
	    cmocka_unit_test(test_audience),
	    cmocka_unit_test(test_sub_required),
	    cmocka_unit_test(test_nul_in_claim),
	    cmocka_unit_test(test_oversized),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_tampered),
	    cmocka_unit_test(test_second_parser),
	    cmocka_unit_test(test_crit_and_typ),
	    cmocka_unit_test(test_claims_extraction),
	    cmocka_unit_test(test_claim_caps),
	    cmocka_unit_test(test_secret_mode),
	    cmocka_unit_test(test_pubkey_types),
	    cmocka_unit_test(test_load_config_rules),
	    cmocka_unit_test(test_mint_errors),
	    cmocka_unit_test(test_concurrent),
	    cmocka_unit_test(test_claim_array_non_scalar),
	    cmocka_unit_test(test_claim_case_collision),
	    cmocka_unit_test(test_claims_parse),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
