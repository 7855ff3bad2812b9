/*
 * Upstream budget and caches, on a clock the test sets: the bucket
 * grants exactly per_minute calls, refills at per_minute a minute, says
 * when to retry, and shares fairly between callers; caches expire
 * exactly and stay bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "budget.h"

#define T0 1700000000000LL

static void
bucket_limit(void **state)
{
	struct gw_budget *b = gw_budget_new(5);
	int64_t retry = 0;
	int i;

	(void)state;
	assert_non_null(b);
	for (i = 0; i < 5; i++)
		assert_int_equal(
		    gw_budget_take(b, "main|export", "alice", T0, &retry), 0);
	assert_int_equal(gw_budget_take(b, "main|export", "alice", T0, &retry),
	                 -1);
	/* The share (5 of 5) is used: retry when the first grant ages out. */
	assert_int_equal(retry, 60000);
	/* Another API or credentials entry has its own bucket. */
	assert_int_equal(gw_budget_take(b, "main|status", "alice", T0, &retry),
	                 0);
	assert_int_equal(gw_budget_take(b, "other|export", "alice", T0, &retry),
	                 0);
	/* One token refills every 12 s. */
	assert_int_equal(
	    gw_budget_take(b, "main|export", "bob", T0 + 11999, &retry), -1);
	assert_int_equal(retry, 1);
	assert_int_equal(
	    gw_budget_take(b, "main|export", "bob", T0 + 12000, &retry), 0);
	assert_int_equal(
	    gw_budget_take(b, "main|export", "bob", T0 + 12000, &retry), -1);
	assert_int_equal(retry, 12000);
	gw_budget_free(b);
}

/* Gap pinned: one busy caller must not take every refilled token. */
static void
fair_share(void **state)
{
	struct gw_budget *b = gw_budget_new(6);
	int64_t retry = 0, t = T0;
	int i, ci = 0, busy = 0;

	(void)state;
	/* Positive control: alone, a caller may use the whole bucket. */
	for (i = 0; i < 6; i++)
		assert_int_equal(gw_budget_take(b, "k", "ci", t, &retry), 0);
	gw_budget_free(b);

	b = gw_budget_new(6);
	/* ci and carol both active: ceil(6/2) = 3 each. */
	assert_int_equal(gw_budget_take(b, "k", "carol", t, &retry), 0);
	for (i = 0; i < 6; i++)
		busy += gw_budget_take(b, "k", "ci", t, &retry) == 0;
	assert_int_equal(busy, 3);
	/* ci keeps hammering as tokens refill; carol still gets hers. */
	for (i = 0; i < 20; i++) {
		t += 2000;
		ci += gw_budget_take(b, "k", "ci", t, &retry) == 0;
	}
	assert_int_equal(ci, 0);
	assert_int_equal(gw_budget_take(b, "k", "carol", t, &retry), 0);
	gw_budget_free(b);
}

static void
bad_input(void **state)
{
	int64_t retry = 0;
	struct gw_budget *b = gw_budget_new(5);

	(void)state;
	assert_null(gw_budget_new(0));
	assert_null(gw_budget_new(601));
	assert_int_equal(gw_budget_take(NULL, "k", "c", T0, &retry), -1);
	assert_int_equal(gw_budget_take(b, "k", NULL, T0, &retry), -1);
	gw_budget_free(b);
}

static void
cache_ttl(void **state)
{
	struct gw_cache *c = gw_cache_new();
	char *v, key[32];
	int i;

	(void)state;
	assert_int_equal(gw_cache_put(c, "k", "v1", T0, 12000, 0), 0);
	v = gw_cache_get(c, "k", T0 + 11999);
	assert_string_equal(v, "v1");
	free(v);
	assert_null(gw_cache_get(c, "k", T0 + 12000));
	assert_null(gw_cache_get(c, "other", T0));
	/* add_only keeps the first (coalescing: the first task wins). */
	assert_int_equal(gw_cache_put(c, "x", "first", T0, 1000, 1), 0);
	assert_int_equal(gw_cache_put(c, "x", "second", T0 + 1, 1000, 1), 1);
	v = gw_cache_get(c, "x", T0 + 2);
	assert_string_equal(v, "first");
	free(v);
	assert_int_equal(gw_cache_put(c, "x", "third", T0 + 1000, 1000, 1), 0);
	v = gw_cache_get(c, "x", T0 + 1000);
	assert_string_equal(v, "third");
	free(v);
	/* Bounded: the oldest goes, the newest stays. */
	for (i = 0; i < GW_CACHE_ENTRIES * 2; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		assert_int_equal(gw_cache_put(c, key, "v", T0, 1000 + i, 0), 0);
	}
	v = gw_cache_get(c, key, T0);
	assert_non_null(v);
	free(v);
	assert_null(gw_cache_get(c, "key0", T0));
	gw_cache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bucket_limit),
	    cmocka_unit_test(fair_share),
	    cmocka_unit_test(bad_input),
	    cmocka_unit_test(cache_ttl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
