/*
 * Upstream budget and caches, on a clock the test sets: the budget
 * grants at most per_minute calls in any 60-second window, says when to
 * retry, and shares fairly between callers; caches expire
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
#include "cache.h"

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
	/* The share (5 of 5) is used: retry when the first grant ages out
	 * (a minute and the margin). */
	assert_int_equal(retry, GW_BUDGET_HOLD_MS);
	/* Another API or credentials entry has its own bucket. */
	assert_int_equal(gw_budget_take(b, "main|status", "alice", T0, &retry),
	                 0);
	assert_int_equal(gw_budget_take(b, "other|export", "alice", T0, &retry),
	                 0);
	/*
	 * bob is new but the bucket's 5 grants are all within the minute:
	 * refused until the oldest leaves the window (no refill every 12 s,
	 * which let 9 through in one minute).
	 */
	assert_int_equal(
	    gw_budget_take(b, "main|export", "bob", T0 + 11999, &retry), -1);
	assert_int_equal(retry, GW_BUDGET_HOLD_MS - 11999);
	assert_int_equal(gw_budget_take(b, "main|export", "bob",
	                                T0 + GW_BUDGET_HOLD_MS - 1, &retry),
	                 -1);
	assert_int_equal(retry, 1);
	assert_int_equal(gw_budget_take(b, "main|export", "bob",
	                                T0 + GW_BUDGET_HOLD_MS, &retry),
	                 0);
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

/* The most grants of times[0..n) (ascending) in any 60-second window. */
static int
max_in_window(const int64_t *times, int n)
{
	int i, j, best = 0;

	for (i = 0; i < n; i++) {
		for (j = i; j < n && times[j] - times[i] < 60000; j++)
			;
		if (j - i > best)
			best = j - i;
	}
	return best;
}

/*
 * The old budget, as a model: a bucket of 5 tokens refilling one every
 * 12 s, with the same fair share.  Only here to show that the stream
 * below does catch an overspending budget.
 */
static int
old_bucket_take(int64_t *units, int64_t *at, int64_t now)
{
	*units += (now - *at) * 5;
	if (*units > 5 * 60000)
		*units = 5 * 60000;
	*at = now;
	if (*units < 60000)
		return -1;
	*units -= 60000;
	return 0;
}

/*
 * Gap pinned (issue #14): a steady round-robin stream of 10 callers, one
 * request every 1.5 s for 75 s, got 9 calls through in one 60-second
 * window from the token bucket, where HSS allows 5.  The sliding window
 * never grants more than 5 in any 60 s, yet keeps granting (positive
 * control: 5 in the first minute, more after it), says when to retry,
 * and the old bucket's model on the same stream gives 9 (the checker
 * can fail).
 */
static void
sliding_window_round_robin(void **state)
{
	struct gw_budget *b = gw_budget_new(5);
	int64_t grants[64], old[64], retry = 0, t, units = 5 * 60000, at = T0;
	int i, n = 0, nold = 0;
	char who[16];

	(void)state;
	assert_non_null(b);
	for (i = 0; i * 1500 <= 75000; i++) {
		t = T0 + (int64_t)i * 1500;
		snprintf(who, sizeof(who), "team-%d", i % 10);
		if (gw_budget_take(b, "main|export", who, t, &retry) == 0) {
			assert_true(n < 64);
			grants[n++] = t;
		} else {
			/* Retry-After: when the window's oldest grant ages
			 * out, never earlier. */
			assert_true(retry >= 1 && retry <= GW_BUDGET_HOLD_MS);
			assert_true(n < 5 ||
			            t + retry >=
			                grants[n - 5] + GW_BUDGET_HOLD_MS);
		}
		if (old_bucket_take(&units, &at, t) == 0)
			old[nold++] = t;
	}
	assert_int_equal(max_in_window(grants, n), 5);
	assert_true(n > 5);
	assert_int_equal(max_in_window(old, nold), 9);
	gw_budget_free(b);
}

/* The retry time given is exact: asking then is granted, 1 ms before not. */
/* The retry time given is exact: asking then is granted, 1 ms before not. */
static void
retry_after_exact(void **state)
{
	struct gw_budget *b = gw_budget_new(3);
	const int64_t H = GW_BUDGET_HOLD_MS;
	int64_t retry = 0;

	(void)state;
	assert_int_equal(gw_budget_take(b, "k", "a", T0, &retry), 0);
	assert_int_equal(gw_budget_take(b, "k", "b", T0 + 10000, &retry), 0);
	assert_int_equal(gw_budget_take(b, "k", "c", T0 + 20000, &retry), 0);
	assert_int_equal(gw_budget_take(b, "k", "d", T0 + 30000, &retry), -1);
	assert_int_equal(retry, H - 30000);
	assert_int_equal(gw_budget_take(b, "k", "d", T0 + H - 1, &retry), -1);
	assert_int_equal(retry, 1);
	assert_int_equal(gw_budget_take(b, "k", "d", T0 + H, &retry), 0);
	/* Next: b's grant leaves at T0 + 10000 + H. */
	assert_int_equal(gw_budget_take(b, "k", "e", T0 + H, &retry), -1);
	assert_int_equal(retry, 10000);
	/* A clock that goes back never frees a slot. */
	assert_int_equal(gw_budget_take(b, "k", "e", T0 - 5000, &retry), -1);
	gw_budget_free(b);
}

/*
 * A grant whose call never left (its intent record could not be written)
 * is given back: the newest grant frees its slot at once; an older one
 * never frees a slot sooner than a real call would (no overspending).
 */
static void
refund(void **state)
{
	int64_t retry = 0;
	struct gw_budget *b = gw_budget_new(2);

	(void)state;
	assert_int_equal(gw_budget_take(b, "k", "a", T0, &retry), 0);
	assert_int_equal(gw_budget_take(b, "k", "b", T0 + 1, &retry), 0);
	/* Positive control: the window is full. */
	assert_int_equal(gw_budget_take(b, "k", "c", T0 + 2, &retry), -1);
	gw_budget_refund(b, "k", "b");
	assert_int_equal(gw_budget_take(b, "k", "c", T0 + 3, &retry), 0);
	assert_int_equal(gw_budget_take(b, "k", "d", T0 + 4, &retry), -1);
	/* "a" is not the newest: its slot stays held until it ages out. */
	gw_budget_refund(b, "k", "a");
	assert_int_equal(gw_budget_take(b, "k", "d", T0 + 5, &retry), -1);
	/* Refunding what was never granted changes nothing. */
	gw_budget_refund(b, "k", "nobody");
	gw_budget_refund(b, "other", "a");
	assert_int_equal(gw_budget_take(b, "k", "d", T0 + 6, &retry), -1);
	gw_budget_free(b);
}

/*
 * Gap pinned: a grant was held 62 s from the GRANT, but HSS counts the
 * call when it arrives, up to its completion.  5 grants at 0 s, the first
 * completing at 10 s (a slow call), the others at once: at 62.5 s the
 * four fast slots are free, but a fifth call then could arrive within
 * 60 s of the slow one's arrival (6 in HSS's minute, a 429), so it is
 * refused until 10 s + 62 s, with Retry-After pointing there.  Positive
 * control: all five complete at once, and all five are granted at 62.5 s.
 */
static void
slow_call_holds(void **state)
{
	const char *who[5] = {"a", "b", "c", "d", "e"};
	const char *later[5] = {"f", "g", "h", "i", "j"};
	int64_t retry = 0;
	uint64_t id[5];
	int i, slow;

	(void)state;
	for (slow = 0; slow < 2; slow++) {
		struct gw_budget *b = gw_budget_new(5);

		for (i = 0; i < 5; i++)
			assert_int_equal(gw_budget_take_id(b, "main|export",
			                                   who[i], T0, &retry,
			                                   &id[i]),
			                 0);
		for (i = 0; i < 5; i++)
			assert_true(id[i] >= 1 && (i == 0 || id[i] != id[0]));
		gw_budget_done(b, "main|export", "a", id[0],
		               slow ? T0 + 10000 : T0 + 1);
		for (i = 1; i < 5; i++)
			gw_budget_done(b, "main|export", who[i], id[i], T0 + 1);
		for (i = 0; i < 4; i++)
			assert_int_equal(gw_budget_take(b, "main|export",
			                                later[i], T0 + 62500,
			                                &retry),
			                 0);
		if (!slow) {
			assert_int_equal(gw_budget_take(b, "main|export", "j",
			                                T0 + 62500, &retry),
			                 0);
			gw_budget_free(b);
			continue;
		}
		assert_int_equal(
		    gw_budget_take(b, "main|export", "j", T0 + 62500, &retry),
		    -1);
		assert_int_equal(retry, 10000 + GW_BUDGET_HOLD_MS - 62500);
		assert_int_equal(
		    gw_budget_take(b, "main|export", "j",
		                   T0 + 10000 + GW_BUDGET_HOLD_MS - 1, &retry),
		    -1);
		assert_int_equal(retry, 1);
		assert_int_equal(gw_budget_take(b, "main|export", "j",
		                                T0 + 10000 + GW_BUDGET_HOLD_MS,
		                                &retry),
		                 0);
		gw_budget_free(b);
	}
}

/* A deterministic stream of pseudo-random numbers (no libc state). */
static uint32_t
lcg(uint32_t *x)
{
	*x = *x * 1103515245u + 12345u;
	return (*x >> 8) & 0xffffff;
}

#define SIM_N 256

/*
 * Whether HSS could count more than 5 calls in one minute, each call
 * arriving anywhere in [grant, completion]: 6 calls can all arrive
 * within 60 s when the latest grant is less than 60 s after the earliest
 * completion among them.  For each call k taken as that earliest
 * completion, count the calls completing no sooner and granted before
 * c_k + 60 s.
 */
static int
worst_minute(const int64_t *g, const int64_t *c, int n)
{
	int i, k, cnt, best = 0;

	for (k = 0; k < n; k++) {
		for (cnt = 0, i = 0; i < n; i++)
			cnt += c[i] >= c[k] && g[i] < c[k] + 60000;
		if (cnt > best)
			best = cnt;
	}
	return best;
}

/*
 * A round robin of 10 callers, one request every 1.5 s for 6 simulated
 * minutes, each call taking 0..20 s: however the arrivals fall between
 * grant and completion, HSS never sees more than 5 in a minute, and the
 * budget keeps granting.  Control: the same stream without
 * gw_budget_done (the grant held from the grant only) lets HSS see 6 or
 * more, so the check can fail.
 */
static void
random_latency(void **state)
{
	int64_t g[SIM_N], c[SIM_N], retry = 0, t;
	uint64_t id[SIM_N];
	char who[SIM_N][16];
	int done_on, i, k, n;

	(void)state;
	for (done_on = 0; done_on < 2; done_on++) {
		struct gw_budget *b = gw_budget_new(5);
		uint32_t x = 42;

		n = 0;
		for (i = 0; i * 1500 <= 360000; i++) {
			t = T0 + (int64_t)i * 1500;
			/* Completions due by now, in time order. */
			for (;;) {
				int first = -1;

				for (k = 0; k < n; k++)
					if (id[k] != 0 && c[k] <= t &&
					    (first == -1 || c[k] < c[first]))
						first = k;
				if (first == -1)
					break;
				if (done_on)
					gw_budget_done(b, "k", who[first],
					               id[first], c[first]);
				id[first] = 0;
			}
			assert_true(n < SIM_N);
			snprintf(who[n], sizeof(who[n]), "team-%d", i % 10);
			if (gw_budget_take_id(b, "k", who[n], t, &retry,
			                      &id[n]) != 0)
				continue;
			g[n] = t;
			c[n] = t + (int64_t)(lcg(&x) % 20001);
			n++;
		}
		if (done_on) {
			assert_true(worst_minute(g, c, n) <= 5);
			assert_true(n >= 20); /* about 5 a 72..82 s */
		} else
			assert_true(worst_minute(g, c, n) > 5);
		gw_budget_free(b);
	}
}

/*
 * gw_budget_done on a grant that is gone changes nothing: refunded
 * (newest or not), never given, another bucket's or caller's, or one
 * whose slot a later grant reuses; and bad input does not crash.
 */
static void
done_gone(void **state)
{
	struct gw_budget *b = gw_budget_new(2);
	const int64_t H = GW_BUDGET_HOLD_MS;
	int64_t retry = 0;
	uint64_t a, bb, c;

	(void)state;
	assert_int_equal(gw_budget_take_id(b, "k", "a", T0, &retry, &a), 0);
	assert_int_equal(gw_budget_take_id(b, "k", "b", T0, &retry, &bb), 0);
	/* "b" is the newest: refunded, its slot frees at once, and a late
	 * done does not take it back. */
	gw_budget_refund(b, "k", "b");
	gw_budget_done(b, "k", "b", bb, T0 + 30000);
	assert_int_equal(gw_budget_take_id(b, "k", "c", T0 + 1, &retry, &c), 0);
	/* "a" is not the newest: refunded, held until it ages out from its
	 * grant; a done after that does not move it. */
	gw_budget_refund(b, "k", "a");
	gw_budget_done(b, "k", "a", a, T0 + 30000);
	/* Not found: wrong caller, wrong bucket, unknown id, no id. */
	gw_budget_done(b, "k", "a", c, T0 + 30000);
	gw_budget_done(b, "other", "c", c, T0 + 30000);
	gw_budget_done(b, "k", "c", c + 100, T0 + 30000);
	gw_budget_done(b, "k", "c", 0, T0 + 30000);
	gw_budget_done(NULL, "k", "c", c, T0 + 30000);
	gw_budget_done(b, NULL, "c", c, T0 + 30000);
	gw_budget_done(b, "k", NULL, c, T0 + 30000);
	assert_int_equal(gw_budget_take(b, "k", "d", T0 + H - 1, &retry), -1);
	assert_int_equal(retry, 1);
	assert_int_equal(gw_budget_take(b, "k", "d", T0 + H, &retry), 0);
	/* c's slot held from its grant at T0 + 1 (nothing moved it). */
	assert_int_equal(gw_budget_take(b, "k", "e", T0 + H, &retry), -1);
	assert_int_equal(retry, 1);
	/* A done never moves a grant back in time. */
	gw_budget_done(b, "k", "c", c, T0 - 50000);
	assert_int_equal(gw_budget_take(b, "k", "e", T0 + H + 1, &retry), 0);
	/* c's slot now holds e's grant: c's done must not move it. */
	gw_budget_done(b, "k", "c", c, T0 + H + 30000);
	assert_int_equal(gw_budget_take(b, "k", "f", T0 + H + H + 1, &retry),
	                 0);
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

/* The read-only view the metrics scrape: left in the window, refusals. */
static void
peek(void **state)
{
	struct gw_budget *b = gw_budget_new(3);
	unsigned long long refused = 99;
	long long left = -1;
	int64_t retry = 0;

	(void)state;
	gw_budget_peek(b, "main|export", T0, &left, &refused);
	assert_int_equal(left, 3);
	assert_int_equal(refused, 0);
	assert_int_equal(gw_budget_take(b, "main|export", "a", T0, &retry), 0);
	assert_int_equal(gw_budget_take(b, "main|export", "b", T0, &retry), 0);
	gw_budget_peek(b, "main|export", T0 + 1, &left, &refused);
	assert_int_equal(left, 1);
	assert_int_equal(refused, 0);
	assert_int_equal(gw_budget_take(b, "main|export", "a", T0, &retry), 0);
	assert_int_equal(gw_budget_take(b, "main|export", "a", T0, &retry), -1);
	gw_budget_peek(b, "main|export", T0 + 1, &left, &refused);
	assert_int_equal(left, 0);
	assert_int_equal(refused, 0); /* the caller counts refusals: */
	gw_budget_refused(b, "main|export");
	gw_budget_peek(b, "main|export", T0 + 1, &left, &refused);
	assert_int_equal(refused, 1);
	/* Peeking takes nothing: still one refusal, and the window ages. */
	gw_budget_peek(b, "main|export", T0 + GW_BUDGET_HOLD_MS, &left,
	               &refused);
	assert_int_equal(left, 3);
	assert_int_equal(refused, 1);
	/* Another bucket is untouched. */
	gw_budget_peek(b, "main|download", T0, &left, &refused);
	assert_int_equal(left, 3);
	assert_int_equal(refused, 0);
	gw_budget_free(b);
}

/*
 * Gap pinned (issue 21): the fair-share caller was "iss sub" cut at 255
 * bytes, so two subjects sharing a 300-byte prefix were one caller with
 * one share.  Keyed by a hash of the whole, they are two.
 */
/* stages.c's caller_of before: snprintf "%s %s" into 256 bytes. */
static void
old_key(char out[256], const char *iss, const char *who)
{
	char whole[1024];

	snprintf(whole, sizeof(whole), "%s %s", iss, who);
	whole[255] = '\0';
	memcpy(out, whole, 256);
}

static void
long_callers_keep_their_shares(void **state)
{
	char a[400], b[400], ka[GW_BUDGET_CALLER_KEY_LEN + 1],
	    kb[GW_BUDGET_CALLER_KEY_LEN + 1], old_a[256], old_b[256],
	    again[GW_BUDGET_CALLER_KEY_LEN + 1];
	const char *iss = "https://idp.example";
	struct gw_budget *g;
	int64_t retry = 0;

	(void)state;
	memset(a, 'p', 300);
	memset(b, 'p', 300);
	snprintf(a + 300, sizeof(a) - 300, "-alice");
	snprintf(b + 300, sizeof(b) - 300, "-bob");
	/* The old key: both the same. */
	old_key(old_a, iss, a);
	old_key(old_b, iss, b);
	assert_string_equal(old_a, old_b);
	assert_int_equal(gw_budget_caller_key(iss, a, ka), 0);
	assert_int_equal(gw_budget_caller_key(iss, b, kb), 0);
	assert_int_equal(strlen(ka), GW_BUDGET_CALLER_KEY_LEN);
	assert_string_not_equal(ka, kb);
	/* Stable, and the issuer is part of it (no "iss sub" ambiguity). */
	assert_int_equal(gw_budget_caller_key(iss, a, again), 0);
	assert_string_equal(ka, again);
	assert_int_equal(
	    gw_budget_caller_key("https://idp.example x", "y", again), 0);
	assert_int_equal(gw_budget_caller_key("https://idp.example", "x y", kb),
	                 0);
	assert_string_not_equal(again, kb);
	assert_int_equal(gw_budget_caller_key(iss, b, kb), 0);

	/* In the budget: 4 a minute, two callers, a share of 2 each. */
	g = gw_budget_new(4);
	assert_non_null(g);
	assert_int_equal(gw_budget_take(g, "k", ka, T0, &retry), 0);
	assert_int_equal(gw_budget_take(g, "k", kb, T0 + 1, &retry), 0);
	assert_int_equal(gw_budget_take(g, "k", ka, T0 + 2, &retry), 0);
	/* alice's third: over her share, though the bucket has one left. */
	assert_int_equal(gw_budget_take(g, "k", ka, T0 + 3, &retry), -1);
	/* Positive control: bob still has his. */
	assert_int_equal(gw_budget_take(g, "k", kb, T0 + 4, &retry), 0);
	gw_budget_free(g);
	/* What the old key did: one caller, so alice took bob's share. */
	g = gw_budget_new(4);
	assert_non_null(g);
	assert_int_equal(gw_budget_take(g, "k", old_a, T0, &retry), 0);
	assert_int_equal(gw_budget_take(g, "k", old_b, T0 + 1, &retry), 0);
	assert_int_equal(gw_budget_take(g, "k", old_a, T0 + 2, &retry), 0);
	assert_int_equal(gw_budget_take(g, "k", old_a, T0 + 3, &retry), 0);
	gw_budget_free(g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bucket_limit),
	    cmocka_unit_test(fair_share),
	    cmocka_unit_test(sliding_window_round_robin),
	    cmocka_unit_test(retry_after_exact),
	    cmocka_unit_test(refund),
	    cmocka_unit_test(slow_call_holds),
	    cmocka_unit_test(random_latency),
	    cmocka_unit_test(done_gone),
	    cmocka_unit_test(peek),
	    cmocka_unit_test(bad_input),
	    cmocka_unit_test(cache_ttl),
	    cmocka_unit_test(long_callers_keep_their_shares),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
