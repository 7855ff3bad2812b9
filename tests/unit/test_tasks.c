/*
 * Task handles: a handle opens only for the caller it was minted for,
 * and every tampered, foreign or malformed handle fails the same way.
 * Attack tests each start from a positive control (the honest handle
 * opens), so a failure of the attack cannot be a broken setup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tasks.h"

#define ISS  "https://idp.example"
#define KEYA "0123456789abcdef0123456789abcdef-key-a"
#define KEYB "0123456789abcdef0123456789abcdef-key-b"

static struct gw_task_key *
key(const char *k)
{
	struct gw_task_key *t = gw_task_key_new(k, strlen(k));

	assert_non_null(t);
	return t;
}

static void
roundtrip(void **state)
{
	struct gw_task_key *k = key(KEYA);
	struct gw_task_ref r;
	char h[GW_TASK_HANDLE_MAX + 1];
	const char *p;

	(void)state;
	assert_int_equal(gw_task_seal(k, "task-123", "demo", ISS, "alice",
	                              1700000000123LL, h, sizeof(h)),
	                 0);
	for (p = h; *p; p++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
		                       "nopqrstuvwxyz0123456789-_.",
		                       *p));
	/* The subject is bound, not carried. */
	assert_null(strstr(h, "alice"));
	assert_int_equal(gw_task_open(k, h, ISS, "alice", &r), 0);
	assert_string_equal(r.task_id, "task-123");
	assert_string_equal(r.project, "demo");
	assert_int_equal(r.created_ms, 1700000000123LL);
	gw_task_key_free(k);
}

/* Gap pinned: a handle must not open for another subject or issuer. */
static void
foreign_caller(void **state)
{
	struct gw_task_key *k = key(KEYA);
	struct gw_task_ref r;
	char h[GW_TASK_HANDLE_MAX + 1];

	(void)state;
	assert_int_equal(
	    gw_task_seal(k, "t1", "demo", ISS, "alice", 1, h, sizeof(h)), 0);
	assert_int_equal(gw_task_open(k, h, ISS, "alice", &r), 0);
	assert_int_equal(gw_task_open(k, h, ISS, "bob", &r), -1);
	assert_int_equal(gw_task_open(k, h, "https://other", "alice", &r), -1);
	/* Length-prefixing: ("ab","c") and ("a","bc") are different. */
	assert_int_equal(
	    gw_task_seal(k, "t1", "demo", "ab", "c", 1, h, sizeof(h)), 0);
	assert_int_equal(gw_task_open(k, h, "ab", "c", &r), 0);
	assert_int_equal(gw_task_open(k, h, "a", "bc", &r), -1);
	gw_task_key_free(k);
}

/* Gap pinned: another instance's key (or a guess) must not verify. */
static void
other_key(void **state)
{
	struct gw_task_key *a = key(KEYA), *b = key(KEYB);
	struct gw_task_ref r;
	char h[GW_TASK_HANDLE_MAX + 1];

	(void)state;
	assert_int_equal(
	    gw_task_seal(b, "t1", "demo", ISS, "alice", 1, h, sizeof(h)), 0);
	assert_int_equal(gw_task_open(b, h, ISS, "alice", &r), 0);
	assert_int_equal(gw_task_open(a, h, ISS, "alice", &r), -1);
	gw_task_key_free(a);
	gw_task_key_free(b);
}

/* Gap pinned: flipping any character of the handle must break it. */
static void
tamper_every_char(void **state)
{
	struct gw_task_key *k = key(KEYA);
	struct gw_task_ref r;
	char h[GW_TASK_HANDLE_MAX + 1], t[GW_TASK_HANDLE_MAX + 1];
	size_t i, n;

	(void)state;
	assert_int_equal(
	    gw_task_seal(k, "task-xyz", "demo", ISS, "alice", 42, h, sizeof(h)),
	    0);
	assert_int_equal(gw_task_open(k, h, ISS, "alice", &r), 0);
	n = strlen(h);
	for (i = 0; i < n; i++) {
		memcpy(t, h, n + 1);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		assert_int_equal(gw_task_open(k, t, ISS, "alice", &r), -1);
	}
	/* Truncated, extended, empty, junk, no dot. */
	memcpy(t, h, n + 1);
	t[n - 1] = '\0';
	assert_int_equal(gw_task_open(k, t, ISS, "alice", &r), -1);
	memcpy(t, h, n);
	t[n] = 'A';
	t[n + 1] = '\0';
	assert_int_equal(gw_task_open(k, t, ISS, "alice", &r), -1);
	assert_int_equal(gw_task_open(k, "", ISS, "alice", &r), -1);
	assert_int_equal(gw_task_open(k, "task-xyz", ISS, "alice", &r), -1);
	assert_int_equal(gw_task_open(k, "a.b", ISS, "alice", &r), -1);
	assert_int_equal(gw_task_open(k, "../x", ISS, "alice", &r), -1);
	gw_task_key_free(k);
}

static void
bounds(void **state)
{
	struct gw_task_key *k = key(KEYA);
	char h[GW_TASK_HANDLE_MAX + 1], id[GW_TASK_ID_MAX + 2];

	(void)state;
	assert_null(gw_task_key_new("short", 5));
	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	assert_int_equal(gw_task_seal(k, id, "demo", ISS, "a", 1, h, sizeof(h)),
	                 -1);
	id[GW_TASK_ID_MAX] = '\0';
	assert_int_equal(gw_task_seal(k, id, "demo", ISS, "a", 1, h, sizeof(h)),
	                 0);
	assert_int_equal(gw_task_seal(k, "", "demo", ISS, "a", 1, h, sizeof(h)),
	                 -1);
	assert_int_equal(gw_task_seal(k, "t", "demo", ISS, "a", 1, h, 16), -1);
	gw_task_key_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(roundtrip), cmocka_unit_test(foreign_caller),
	    cmocka_unit_test(other_key), cmocka_unit_test(tamper_every_char),
	    cmocka_unit_test(bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
