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

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "flight.h"
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
	assert_int_equal(gw_task_seal(k, "task-123", "demo", NULL, ISS, "alice",
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
	    gw_task_seal(k, "t1", "demo", NULL, ISS, "alice", 1, h, sizeof(h)),
	    0);
	assert_int_equal(gw_task_open(k, h, &r), 0);
	assert_true(gw_task_is_creator(&r, ISS, "alice"));
	assert_false(gw_task_is_creator(&r, ISS, "bob"));
	assert_false(gw_task_is_creator(&r, ISS, "alic"));
	assert_false(gw_task_is_creator(&r, ISS, "alicex"));
	assert_false(gw_task_is_creator(&r, "https://other", "alice"));
	assert_false(gw_task_is_creator(NULL, ISS, "alice"));
	/* Length-prefixing: ("ab","c") and ("a","bc") are different. */
	assert_int_equal(
	    gw_task_seal(k, "t1", "demo", NULL, "ab", "c", 1, h, sizeof(h)), 0);
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
	    gw_task_seal(b, "t1", "demo", NULL, ISS, "alice", 1, h, sizeof(h)),
	    0);
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
	assert_int_equal(gw_task_seal(k, "task-xyz", "demo", NULL, ISS, "alice",
	                              42, h, sizeof(h)),
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
	assert_int_equal(
	    gw_task_seal(k, id, "demo", NULL, ISS, "a", 1, h, sizeof(h)), -1);
	id[GW_TASK_ID_MAX] = '\0';
	assert_int_equal(
	    gw_task_seal(k, id, "demo", NULL, ISS, "a", 1, h, sizeof(h)), 0);
	assert_int_equal(
	    gw_task_seal(k, "", "demo", NULL, ISS, "a", 1, h, sizeof(h)), -1);
	assert_int_equal(gw_task_seal(k, "t", "demo", NULL, ISS, "a", 1, h, 16),
	                 -1);
	/* The creator: 1..GW_TASK_SUB_MAX bytes; the longest still fits. */
	assert_int_equal(
	    gw_task_seal(k, "t", "demo", NULL, ISS, "", 1, h, sizeof(h)), -1);
	assert_int_equal(
	    gw_task_seal(k, "t", "demo", NULL, "", "a", 1, h, sizeof(h)), -1);
	assert_int_equal(
	    gw_task_seal(k, "t", "demo", NULL, ISS, NULL, 1, h, sizeof(h)), -1);
	{
		char big[GW_TASK_SUB_MAX + 2], bigi[GW_TASK_ISS_MAX + 1];
		char pid[GW_TASK_PROJECT_MAX + 1];
		struct gw_task_ref r;

		memset(big, 's', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(gw_task_seal(k, "t", "demo", NULL, ISS, big, 1,
		                              h, sizeof(h)),
		                 -1);
		big[GW_TASK_SUB_MAX] = '\0';
		memset(bigi, 'i', sizeof(bigi) - 1);
		bigi[sizeof(bigi) - 1] = '\0';
		char beps[GW_TASK_EPS_MAX + 1];

		memset(pid, 'p', sizeof(pid) - 1);
		pid[sizeof(pid) - 1] = '\0';
		memset(beps, 'e', sizeof(beps) - 1);
		beps[sizeof(beps) - 1] = '\0';
		assert_int_equal(
		    gw_task_seal(k, id, pid, beps, bigi, big, 1, h, sizeof(h)),
		    0);
		assert_true(strlen(h) <= GW_TASK_HANDLE_MAX);
		assert_int_equal(gw_task_open(k, h, &r), 0);
		assert_true(gw_task_is_creator(&r, bigi, big));
	}
	gw_task_key_free(k);
}

static const char b64u[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding of n bytes into out; its length. */
static size_t
b64(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;
	unsigned v;

	for (i = 0; i < n; i += 3) {
		v = (unsigned)in[i] << 16 |
		    (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
		    (i + 2 < n ? in[i + 2] : 0);
		out[o++] = b64u[v >> 18 & 63];
		out[o++] = b64u[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = b64u[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = b64u[v & 63];
	}
	out[o] = '\0';
	return o;
}

/* Appends a 16-bit length-prefixed string to p at *off. */
static void
put(unsigned char *p, size_t *off, const char *s)
{
	size_t n = strlen(s);

	p[(*off)++] = (unsigned char)(n >> 8);
	p[(*off)++] = (unsigned char)n;
	memcpy(p + *off, s, n);
	*off += n;
}

/*
 * A handle minted by hand, the way tasks.c lays one out: version byte,
 * 8-byte time, the given fields, MAC over ctx "\0" payload.
 */
static void
mint(const char *k, int version, const char *ctx, const char *const *f,
     size_t nf, char *out)
{
	unsigned char p[2048], msg[2100], m[32];
	unsigned int ml = 0;
	size_t off = 0, i, o, clen = strlen(ctx) + 1;

	p[off++] = (unsigned char)version;
	for (i = 0; i < 7; i++)
		p[off++] = 0;
	p[off++] = 1; /* created_ms 1 */
	for (i = 0; i < nf; i++)
		put(p, &off, f[i]);
	memcpy(msg, ctx, clen);
	memcpy(msg + clen, p, off);
	assert_non_null(
	    HMAC(EVP_sha256(), k, (int)strlen(k), msg, clen + off, m, &ml));
	o = b64(p, off, out);
	out[o++] = '.';
	b64(m, sizeof(m), out + o);
}

/*
 * The enterprise project the export was made under is sealed into the
 * handle (#16: status and download go under that one, not the project's
 * default): it opens as sealed, "" when none was sent.
 */
static void
eps_bound(void **state)
{
	struct gw_task_key *k = key(KEYA);
	struct gw_task_ref r;
	char h[GW_TASK_HANDLE_MAX + 1];

	(void)state;
	assert_int_equal(gw_task_seal(k, "t1", "demo", "eps 1+/%&=\xc3\xa9",
	                              ISS, "alice", 1, h, sizeof(h)),
	                 0);
	assert_int_equal(gw_task_open(k, h, &r), 0);
	assert_int_equal(r.has_eps, 1);
	assert_string_equal(r.eps, "eps 1+/%&=\xc3\xa9");
	assert_int_equal(
	    gw_task_seal(k, "t1", "demo", NULL, ISS, "alice", 1, h, sizeof(h)),
	    0);
	assert_int_equal(gw_task_open(k, h, &r), 0);
	assert_int_equal(r.has_eps, 1);
	assert_string_equal(r.eps, "");
	/* An empty enterprise project is not a value: refused. */
	assert_int_equal(
	    gw_task_seal(k, "t1", "demo", "", ISS, "alice", 1, h, sizeof(h)),
	    -1);
	gw_task_key_free(k);
}

/*
 * Version 2 handles (before the enterprise project was bound) still open,
 * with has_eps 0, so the project's default applies as when they were
 * made.  Attack: a v3 payload relabelled as v2 (or a v2 one as v3, with
 * an enterprise project slipped in) fails, because the version picks the
 * MAC context.  Positive controls: each honest handle opens.
 */
static void
v2_compat(void **state)
{
	static const char *const v2[] = {"t2", "demo", ISS, "alice"};
	static const char *const v3[] = {"t2", "demo", "eps-x", ISS, "alice"};
	struct gw_task_key *k = key(KEYA);
	struct gw_task_ref r;
	char h[GW_TASK_HANDLE_MAX + 1];

	(void)state;
	mint(KEYA, 2, "hssgw-task-v2", v2, 4, h);
	assert_int_equal(gw_task_open(k, h, &r), 0);
	assert_int_equal(r.has_eps, 0);
	assert_string_equal(r.task_id, "t2");
	assert_true(gw_task_is_creator(&r, ISS, "alice"));
	mint(KEYA, 3, "hssgw-task-v3", v3, 5, h);
	assert_int_equal(gw_task_open(k, h, &r), 0);
	assert_int_equal(r.has_eps, 1);
	assert_string_equal(r.eps, "eps-x");
	/* Attacks: the wrong context for the version byte. */
	mint(KEYA, 2, "hssgw-task-v3", v2, 4, h);
	assert_int_equal(gw_task_open(k, h, &r), -1);
	mint(KEYA, 3, "hssgw-task-v2", v3, 5, h);
	assert_int_equal(gw_task_open(k, h, &r), -1);
	mint(KEYA, 1, "hssgw-task-v2", v2, 4, h);
	assert_int_equal(gw_task_open(k, h, &r), -1);
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
	    cmocka_unit_test(flight),    cmocka_unit_test(eps_bound),
	    cmocka_unit_test(v2_compat),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
