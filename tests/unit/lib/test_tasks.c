/*
 * Task handles: a handle opens only with the gateway's key and names its
 * creator exactly; every tampered, foreign-key or malformed handle fails
 * the same way.  Attack tests each start from a positive control (the
 * honest handle opens), so a failure of the attack cannot be a broken
 * setup.  Also the retry delay after HSS's 429 and the single flight.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	assert_int_equal(gw_task_open(k, h, &r), 0);
	assert_string_equal(r.task_id, "task-123");
	assert_string_equal(r.project, "demo");
	/* The creator is carried (signed), for hss:ActForSubject. */
	assert_string_equal(r.iss, ISS);
	assert_string_equal(r.sub, "alice");
	assert_int_equal(r.created_ms, 1700000000123LL);
	gw_task_key_free(k);
}

/*
 * Gap pinned: another subject or issuer is not the creator (the pipeline
 * then asks the policy for hss:ActForSubject, else answers 404).
 */
static void
foreign_caller(void **state)
{
	struct gw_task_key *k = key(KEYA);
	struct gw_task_ref r;
	char h[GW_TASK_HANDLE_MAX + 1];

	(void)state;
	assert_int_equal(
	    gw_task_seal(k, "t1", "demo", ISS, "alice", 1, h, sizeof(h)), 0);
	assert_int_equal(gw_task_open(k, h, &r), 0);
	assert_true(gw_task_is_creator(&r, ISS, "alice"));
	assert_false(gw_task_is_creator(&r, ISS, "bob"));
	assert_false(gw_task_is_creator(&r, ISS, "alic"));
	assert_false(gw_task_is_creator(&r, ISS, "alicex"));
	assert_false(gw_task_is_creator(&r, "https://other", "alice"));
	assert_false(gw_task_is_creator(NULL, ISS, "alice"));
	/* Length-prefixing: ("ab","c") and ("a","bc") are different. */
	assert_int_equal(
	    gw_task_seal(k, "t1", "demo", "ab", "c", 1, h, sizeof(h)), 0);
	assert_int_equal(gw_task_open(k, h, &r), 0);
	assert_true(gw_task_is_creator(&r, "ab", "c"));
	assert_false(gw_task_is_creator(&r, "a", "bc"));
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
	assert_int_equal(gw_task_open(b, h, &r), 0);
	assert_int_equal(gw_task_open(a, h, &r), -1);
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
	assert_int_equal(gw_task_open(k, h, &r), 0);
	n = strlen(h);
	for (i = 0; i < n; i++) {
		memcpy(t, h, n + 1);
		t[i] = t[i] == 'A' ? 'B' : 'A';
		assert_int_equal(gw_task_open(k, t, &r), -1);
	}
	/* Truncated, extended, empty, junk, no dot. */
	memcpy(t, h, n + 1);
	t[n - 1] = '\0';
	assert_int_equal(gw_task_open(k, t, &r), -1);
	memcpy(t, h, n);
	t[n] = 'A';
	t[n + 1] = '\0';
	assert_int_equal(gw_task_open(k, t, &r), -1);
	assert_int_equal(gw_task_open(k, "", &r), -1);
	assert_int_equal(gw_task_open(k, "task-xyz", &r), -1);
	assert_int_equal(gw_task_open(k, "a.b", &r), -1);
	assert_int_equal(gw_task_open(k, "../x", &r), -1);
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
	/* The creator: 1..GW_TASK_SUB_MAX bytes; the longest still fits. */
	assert_int_equal(gw_task_seal(k, "t", "demo", ISS, "", 1, h, sizeof(h)),
	                 -1);
	assert_int_equal(gw_task_seal(k, "t", "demo", "", "a", 1, h, sizeof(h)),
	                 -1);
	assert_int_equal(
	    gw_task_seal(k, "t", "demo", ISS, NULL, 1, h, sizeof(h)), -1);
	{
		char big[GW_TASK_SUB_MAX + 2], bigi[GW_TASK_ISS_MAX + 1];
		char pid[GW_TASK_PROJECT_MAX + 1];
		struct gw_task_ref r;

		memset(big, 's', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(
		    gw_task_seal(k, "t", "demo", ISS, big, 1, h, sizeof(h)),
		    -1);
		big[GW_TASK_SUB_MAX] = '\0';
		memset(bigi, 'i', sizeof(bigi) - 1);
		bigi[sizeof(bigi) - 1] = '\0';
		memset(pid, 'p', sizeof(pid) - 1);
		pid[sizeof(pid) - 1] = '\0';
		assert_int_equal(
		    gw_task_seal(k, id, pid, bigi, big, 1, h, sizeof(h)), 0);
		assert_true(strlen(h) <= GW_TASK_HANDLE_MAX);
		assert_int_equal(gw_task_open(k, h, &r), 0);
		assert_true(gw_task_is_creator(&r, bigi, big));
	}
	gw_task_key_free(k);
}

/* HSS's Retry-After wins over the backoff; without it 2, 4, 8, 16 s. */
static void
retry_delay(void **state)
{
	(void)state;
	assert_int_equal(gw_task_retry_delay_ms(0, 0), 2000);
	assert_int_equal(gw_task_retry_delay_ms(1, 0), 4000);
	assert_int_equal(gw_task_retry_delay_ms(2, 0), 8000);
	assert_int_equal(gw_task_retry_delay_ms(3, 0), 16000);
	assert_int_equal(gw_task_retry_delay_ms(40, 0), 16000);
	assert_int_equal(gw_task_retry_delay_ms(-1, 0), 2000);
	assert_int_equal(gw_task_retry_delay_ms(0, 1), 1000);
	assert_int_equal(gw_task_retry_delay_ms(5, 30), 30000);
	assert_int_equal(gw_task_retry_delay_ms(0, -3), 2000);
}

struct joiner {
	struct gw_flight *f;
	const char *key;
	int64_t wait_ms;
	enum gw_flight_rc rc;
};

static void *
join_thread(void *arg)
{
	struct joiner *j = arg;

	j->rc = gw_flight_join(j->f, j->key, j->wait_ms);
	return NULL;
}

/*
 * Single flight: the first of identical keys leads; the next waits and
 * learns it landed, or times out while it still flies; other keys lead
 * their own; a full table lets callers go alone.
 */
static void
flight(void **state)
{
	struct gw_flight *f = gw_flight_new();
	struct joiner j[3];
	pthread_t th[3];
	char key[32];
	int i;

	(void)state;
	assert_non_null(f);
	assert_int_equal(gw_flight_join(f, "A", 0), GW_FLIGHT_LEAD);
	assert_int_equal(gw_flight_join(f, "B", 0), GW_FLIGHT_LEAD);
	/* A is in the air: a 50 ms wait times out. */
	assert_int_equal(gw_flight_join(f, "A", 50), GW_FLIGHT_TIMEOUT);
	/* Three wait for A; A lands; all three see it land. */
	for (i = 0; i < 3; i++) {
		j[i] = (struct joiner){f, "A", 10000, GW_FLIGHT_LEAD};
		assert_int_equal(
		    pthread_create(&th[i], NULL, join_thread, &j[i]), 0);
	}
	{
		struct timespec ts = {0, 100000000L};

		nanosleep(&ts, NULL);
	}
	gw_flight_land(f, "A");
	for (i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(j[i].rc, GW_FLIGHT_LANDED);
	}
	/* Landed: the next A leads again; B still flies. */
	assert_int_equal(gw_flight_join(f, "A", 0), GW_FLIGHT_LEAD);
	assert_int_equal(gw_flight_join(f, "B", 0), GW_FLIGHT_TIMEOUT);
	gw_flight_land(f, "A");
	gw_flight_land(f, "B");
	/* Full: every slot leads a different key, the next goes alone. */
	for (i = 0; i < GW_FLIGHT_SLOTS; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(gw_flight_join(f, key, 0), GW_FLIGHT_LEAD);
	}
	assert_int_equal(gw_flight_join(f, "one more", 0), GW_FLIGHT_NONE);
	gw_flight_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(roundtrip), cmocka_unit_test(foreign_caller),
	    cmocka_unit_test(other_key), cmocka_unit_test(tamper_every_char),
	    cmocka_unit_test(bounds),    cmocka_unit_test(retry_delay),
	    cmocka_unit_test(flight),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
