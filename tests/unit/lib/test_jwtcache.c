/*
 * Unit tests for jwtv's verified-token cache: hits and misses, expiry and
 * nbf of cached tokens at the exact edges, reload dropping a key, a token
 * changed in any byte never hitting, a full cache, range checks on
 * jwt.cache_entries, and many threads hammering a cache smaller than their
 * token pool.  Keys, tokens and the fixed clock NOW come from the shared
 * fixture in jwt_fixture.c, as in test_jwtv.c.
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

#include "jwt_fixture.h"
#include "jwtv.h"

/* ---- the verified-token cache ----------------------------------------- */

/* A keyset like fx.ks with the cache on; ISS without key rsa1 if drop. */
static struct gw_jwt_keyset *
cached_keyset(long long entries, int drop_rsa1)
{
	struct gw_config c;
	struct gw_jwt_keyset *ks;
	char err[512] = "";

	make_conf(&c, 8192);
	c.jwt_cache_entries = entries;
	if (drop_rsa1) {
		issuers[0].keys = keys1 + 1;
		issuers[0].nkeys = 2;
	}
	ks = gw_jwt_keyset_load(&c, err, sizeof(err));
	if (ks == NULL)
		fail_msg("keyset: %s", err);
	return ks;
}

static void
stats(const struct gw_jwt_keyset *ks, uint64_t *h, uint64_t *m)
{
	gw_jwt_cache_stats(ks, h, m);
}

/*
 * A hit is a hit (positive control for every cache test below), and the
 * cached claims are the token's.  A token that expires while cached is
 * refused at exp + leeway + 1, exactly as uncached; nbf likewise.
 */
static void
test_cache_expiry(void **state)
{
	struct gw_jwt_keyset *ks = cached_keyset(64, 0);
	struct gw_claims *c = NULL;
	struct gw_fault f;
	uint64_t h, m;
	char *t, *n;

	(void)state;
	t = mint("RS256", "rsa1", claims(",\"jti\":\"j1\""));
	n = mint("ES256", "ec1", claims(",\"nbf\":1700000100"));
	memset(&f, 0, sizeof(f));
	assert_int_equal(gw_jwt_verify(ks, t, NOW, &c, &f), GW_OK);
	gw_claims_free(c);
	c = NULL;
	assert_int_equal(gw_jwt_verify(ks, t, NOW + 1, &c, &f), GW_OK);
	assert_string_equal(c->jti, "j1");
	assert_string_equal(c->sub, "alice");
	gw_claims_free(c);
	stats(ks, &h, &m);
	assert_int_equal(h, 1);
	assert_int_equal(m, 1);
	/* The last accepted second, then the first refused, both hits. */
	assert_int_equal(verify_at(ks, t, NOW + 300 + LEEWAY, &f), GW_OK);
	assert_int_equal(verify_at(ks, t, NOW + 300 + LEEWAY + 1, &f),
	                 GW_ERR_TOKEN_INVALID);
	assert_string_equal(f.msg, "token expired");
	stats(ks, &h, &m);
	assert_int_equal(h, 3);
	/* nbf: cached at a time it is valid, refused earlier. */
	assert_int_equal(verify_at(ks, n, NOW + 100, &f), GW_OK);
	assert_int_equal(verify_at(ks, n, NOW + 100 - LEEWAY - 1, &f),
	                 GW_ERR_TOKEN_INVALID);
	assert_string_equal(f.msg, "token not yet valid");
	stats(ks, &h, &m);
	assert_int_equal(h, 4);
	free(t);
	free(n);
	gw_jwt_keyset_free(ks);
}

/*
 * A reload builds a new keyset: a token cached under the old one whose key
 * left the set is refused by the new one.  Positive controls: the old
 * keyset still answers it from its cache (requests in flight), and a token
 * whose key stayed verifies under the new one.
 */
static void
test_cache_reload(void **state)
{
	struct gw_jwt_keyset *old = cached_keyset(64, 0), *nks;
	struct gw_fault f;
	uint64_t h;
	char *t, *e;

	(void)state;
	t = mint("RS256", "rsa1", claims(""));
	e = mint("ES256", "ec1", claims(""));
	assert_int_equal(verify_at(old, t, NOW, &f), GW_OK);
	assert_int_equal(verify_at(old, e, NOW, &f), GW_OK);
	nks = cached_keyset(64, 1);
	assert_int_equal(verify_at(nks, t, NOW, &f), GW_ERR_TOKEN_INVALID);
	assert_string_equal(f.msg, "unknown kid");
	assert_int_equal(verify_at(nks, e, NOW, &f), GW_OK);
	stats(nks, &h, NULL);
	assert_int_equal(h, 0);
	assert_int_equal(verify_at(old, t, NOW, &f), GW_OK);
	stats(old, &h, NULL);
	assert_int_equal(h, 1);
	gw_jwt_keyset_free(nks);
	gw_jwt_keyset_free(old);
	issuers[0].keys = keys1;
	issuers[0].nkeys = 3;
	free(t);
	free(e);
}

/*
 * A token differing from a cached one in any single byte, signature
 * included, misses the cache and is verified in full (so refused).
 * Positive control: the cached token still hits afterwards.
 */
static void
test_cache_any_byte(void **state)
{
	struct gw_jwt_keyset *ks = cached_keyset(64, 0);
	struct gw_fault f;
	uint64_t h0, m0, h, m;
	char *t, *x;
	size_t i, len;

	(void)state;
	t = mint("HS256", "hs1", claims(""));
	len = strlen(t);
	assert_int_equal(verify_at(ks, t, NOW, &f), GW_OK);
	stats(ks, &h0, &m0);
	x = strdup(t);
	assert_non_null(x);
	for (i = 0; i < len; i++) {
		x[i] = t[i] == 'A' ? 'B' : t[i] == '.' ? 'x' : 'A';
		assert_int_equal(verify_at(ks, x, NOW, &f),
		                 GW_ERR_TOKEN_INVALID);
		x[i] = t[i];
	}
	/* A token extended by one byte, or cut by one, also misses. */
	x[len - 1] = '\0';
	assert_int_equal(verify_at(ks, x, NOW, &f), GW_ERR_TOKEN_INVALID);
	stats(ks, &h, &m);
	assert_int_equal(h, h0);
	assert_int_equal(m, m0 + len + 1);
	assert_int_equal(verify_at(ks, t, NOW, &f), GW_OK);
	stats(ks, &h, &m);
	assert_int_equal(h, h0 + 1);
	free(x);
	free(t);
	gw_jwt_keyset_free(ks);
}

/*
 * A full cache stays correct: with 8 entries (one set) and 40 distinct
 * tokens, every token keeps verifying with its own claims, and failures
 * never enter the cache (a flood of bad tokens evicts nothing).
 */
static void
test_cache_full(void **state)
{
	struct gw_jwt_keyset *ks = cached_keyset(8, 0);
	struct gw_claims *c = NULL;
	struct gw_fault f;
	char extra[64], *toks[40], *bad;
	uint64_t h0, h;
	size_t i, round;

	(void)state;
	for (i = 0; i < 40; i++) {
		snprintf(extra, sizeof(extra), ",\"jti\":\"t%zu\"", i);
		toks[i] = mint("HS256", "hs1", claims(extra));
	}
	for (round = 0; round < 3; round++)
		for (i = 0; i < 40; i++) {
			memset(&f, 0, sizeof(f));
			assert_int_equal(
			    gw_jwt_verify(ks, toks[i], NOW, &c, &f), GW_OK);
			snprintf(extra, sizeof(extra), "t%zu", i);
			assert_string_equal(c->jti, extra);
			gw_claims_free(c);
			c = NULL;
		}
	/* Fill with 8 good entries, then flood with bad signatures. */
	for (i = 0; i < 8; i++)
		assert_int_equal(verify_at(ks, toks[i], NOW, &f), GW_OK);
	stats(ks, &h0, NULL);
	bad = strdup(toks[39]);
	assert_non_null(bad);
	for (i = 0; i < 200; i++) {
		bad[strlen(bad) - 2] = "ABCDEFGHIJKLMNOP"[i % 16];
		bad[strlen(bad) - 3] = "QRSTUVWXYZabcdef"[i / 16 % 16];
		if (strcmp(bad, toks[39]) != 0)
			assert_int_equal(verify_at(ks, bad, NOW, &f),
			                 GW_ERR_TOKEN_INVALID);
	}
	for (i = 0; i < 8; i++)
		assert_int_equal(verify_at(ks, toks[i], NOW, &f), GW_OK);
	stats(ks, &h, NULL);
	assert_int_equal(h, h0 + 8);
	free(bad);
	for (i = 0; i < 40; i++)
		free(toks[i]);
	gw_jwt_keyset_free(ks);
}

/* jwt.cache_entries is range-checked at load; 0 turns the cache off. */
static void
test_cache_config(void **state)
{
	struct gw_config c;
	struct gw_jwt_keyset *ks;
	struct gw_fault f;
	char err[256] = "", *t;
	uint64_t h = 1, m = 1;

	(void)state;
	make_conf(&c, 8192);
	c.jwt_cache_entries = -1;
	assert_null(gw_jwt_keyset_load(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "cache_entries"));
	c.jwt_cache_entries = 1048577;
	assert_null(gw_jwt_keyset_load(&c, err, sizeof(err)));
	c.jwt_cache_entries = 0;
	ks = gw_jwt_keyset_load(&c, err, sizeof(err));
	assert_non_null(ks);
	t = mint("RS256", "rsa1", claims(""));
	assert_int_equal(verify_at(ks, t, NOW, &f), GW_OK);
	assert_int_equal(verify_at(ks, t, NOW, &f), GW_OK);
	gw_jwt_cache_stats(ks, &h, &m);
	assert_int_equal(h, 0);
	assert_int_equal(m, 0);
	free(t);
	gw_jwt_keyset_free(ks);
}

struct hammer {
	struct gw_jwt_keyset *ks;
	char **toks;
	size_t ntoks;
	unsigned seed;
	int bad;
};

static void *
hammer_worker(void *arg)
{
	struct hammer *hm = arg;
	struct gw_claims *c = NULL;
	struct gw_fault f;
	char want[32];
	size_t i, k;

	for (i = 0; i < 3000; i++) {
		k = (size_t)rand_r(&hm->seed) % hm->ntoks;
		memset(&f, 0, sizeof(f));
		if (gw_jwt_verify(hm->ks, hm->toks[k], NOW, &c, &f) != GW_OK) {
			hm->bad++;
			continue;
		}
		snprintf(want, sizeof(want), "h%zu", k);
		if (c->jti == NULL || strcmp(c->jti, want) != 0 ||
		    gw_claims_get(c, "groups") == NULL)
			hm->bad++;
		gw_claims_free(c);
		c = NULL;
	}
	return NULL;
}

/*
 * 8 threads hammer a cache smaller than their token pool (hits, misses,
 * evictions of entries other threads still hold), each checking that the
 * claims it got are its token's.  Run under ASan by ctest; built once with
 * -fsanitize=thread as well (see bench/README.md).
 */
static void
test_cache_concurrent(void **state)
{
	struct gw_jwt_keyset *ks = cached_keyset(16, 0);
	struct hammer hm[8];
	pthread_t th[8];
	char extra[96], *toks[48];
	uint64_t h, m;
	size_t i;

	(void)state;
	for (i = 0; i < 48; i++) {
		snprintf(extra, sizeof(extra),
		         ",\"jti\":\"h%zu\",\"groups\":[\"g%zu\"]", i, i);
		toks[i] = mint("HS256", "hs1", claims(extra));
	}
	for (i = 0; i < 8; i++) {
		hm[i] = (struct hammer){ks, toks, 48, (unsigned)i + 1, 0};
		assert_int_equal(
		    pthread_create(&th[i], NULL, hammer_worker, &hm[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(hm[i].bad, 0);
	}
	stats(ks, &h, &m);
	assert_int_equal(h + m, 8 * 3000);
	assert_true(h > 0);
	assert_true(m > 48);
	gw_jwt_keyset_free(ks);
	for (i = 0; i < 48; i++)
		free(toks[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cache_expiry),
	    cmocka_unit_test(test_cache_reload),
	    cmocka_unit_test(test_cache_any_byte),
	    cmocka_unit_test(test_cache_full),
	    cmocka_unit_test(test_cache_config),
	    cmocka_unit_test(test_cache_concurrent),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
