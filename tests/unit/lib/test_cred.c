/*
 * Unit tests for gateway/lib/cred.c: the token_file provider loads only a
 * private, well-formed token file (re-read when it changes), decorates a
 * request with a secret X-Auth-Token header, fingerprints without leaking,
 * and refuses what it does not know.  The IAM providers run against an
 * in-process IAM stand-in plugged in through gw_cred_set_sender (the seam
 * replaces only libcurl: body, headers, X-Subject-Token and expires_at
 * parsing are the real code) with a clock the tests set: refresh at the
 * margin, never after expiry, outage keeps the token until expiry then
 * 503, one IAM call for many threads.  Secret files are written at run
 * time in a temp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "cred.h"
#include "upreq.h"

#define TOKEN "MIIEXAMPLEtoken-value_0123456789abcdef+/="

struct fixture {
	char dir[64];
	char path[128];
	char pw[128];
	char sk[128];
	struct gw_conf_cred cc; /* borrowed by providers: outlives them */
};

static int
setup(void **state)
{
	struct fixture *fx = NULL;

	fx = calloc(1, sizeof(*fx));
	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/gwcred.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/token", fx->dir);
	snprintf(fx->pw, sizeof(fx->pw), "%s/password", fx->dir);
	snprintf(fx->sk, sizeof(fx->sk), "%s/sk", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	unlink(fx->path);
	unlink(fx->pw);
	unlink(fx->sk);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Writes len bytes to the fixture's token file with the given mode. */
static void
write_token(struct fixture *fx, const char *data, size_t len, mode_t mode)
{
	int fd;

	unlink(fx->path);
	fd = open(fx->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static struct gw_cred *
load(struct fixture *fx, const char *type, char *err, size_t errlen)
{
	struct gw_conf_cred cc;

	memset(&cc, 0, sizeof(cc));
	cc.name = "hss-main";
	cc.type = (char *)type;
	cc.file = fx->path;
	err[0] = '\0';
	return gw_cred_new(NULL, &cc, err, errlen);
}

static const struct gw_header *
find_header(const struct gw_upreq *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcmp(r->headers[i].name, name) == 0)
			return &r->headers[i];
	return NULL;
}

static void
test_token_applied(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	struct gw_upreq *r = NULL;
	const struct gw_header *h;
	struct gw_fault f = {0};
	char err[512], fp1[17], fp2[17], want[17];

	/* Trailing newline is trimmed: editors add one. */
	write_token(fx, TOKEN "\n", strlen(TOKEN) + 1, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(gw_cred_name(c), "hss-main");

	r = gw_upreq_new("POST", "https://hss.example/v5/p/x");
	assert_non_null(r);
	assert_int_equal(gw_cred_apply(c, r, "p1", 0, fp1, &f), GW_OK);
	h = find_header(r, "X-Auth-Token");
	assert_non_null(h);
	assert_string_equal(h->value, TOKEN);
	assert_int_equal(h->secret, 1);

	/* Stable across applies, equal to the documented fingerprint. */
	assert_int_equal(gw_cred_apply(c, r, "p1", 12345, fp2, &f), GW_OK);
	assert_string_equal(fp1, fp2);
	gw_fingerprint(TOKEN, strlen(TOKEN), want);
	assert_string_equal(fp1, want);
	assert_int_equal(strlen(fp1), 16);
	assert_int_equal(strspn(fp1, "0123456789abcdef"), 16);
	/* Not the token or a piece of it. */
	assert_null(strstr(TOKEN, fp1));
	assert_int_not_equal(strncmp(fp1, TOKEN, 16), 0);
	/* Apply replaces rather than duplicates the header. */
	assert_int_equal(r->nheaders, 1);

	gw_upreq_free(r);
	gw_cred_free(c);
}

static void
test_fingerprint_stable_across_loads(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *a = NULL, *b = NULL;
	struct gw_upreq *r = NULL;
	struct gw_fault f = {0};
	char err[512], fa[17], fb[17];

	write_token(fx, TOKEN, strlen(TOKEN), 0600);
	a = load(fx, "token_file", err, sizeof(err));
	b = load(fx, "token_file", err, sizeof(err));
	assert_non_null(a);
	assert_non_null(b);
	r = gw_upreq_new("GET", "https://hss.example/");
	assert_non_null(r);
	assert_int_equal(gw_cred_apply(a, r, "p1", 0, fa, &f), GW_OK);
	assert_int_equal(gw_cred_apply(b, r, "p1", 0, fb, &f), GW_OK);
	assert_string_equal(fa, fb);
	gw_upreq_free(r);
	gw_cred_free(a);
	gw_cred_free(b);
}

/*
 * Gap pinned: a token file readable by other local users leaks the cloud
 * token; it must be refused at load.  Positive control: 0600 loads.
 */
static void
test_mode_0644_refused(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];

	write_token(fx, TOKEN, strlen(TOKEN), 0644);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->path));
	assert_non_null(strstr(err, "hss-main"));
	assert_null(strstr(err, TOKEN));

	write_token(fx, TOKEN, strlen(TOKEN), 0640);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);

	write_token(fx, TOKEN, strlen(TOKEN), 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	gw_cred_free(c);
}

/*
 * Gap pinned: an empty (or whitespace-only) file would send an empty
 * X-Auth-Token and fail obscurely upstream.  Positive control: one byte.
 */
static void
test_empty_refused(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];

	write_token(fx, "", 0, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->path));

	write_token(fx, " \r\n\t\n", 5, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->path));

	write_token(fx, "x\n", 2, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	gw_cred_free(c);
}

/*
 * Gap pinned: CR or LF inside the token would inject headers into the
 * upstream request ("tok\r\nX-Evil: 1").  Trailing CR/LF is trimmed and
 * fine (positive control); inner ones are refused without printing the
 * token.
 */
static void
test_crlf_inside_refused(void **state)
{
	static const char *const bad[] = {
	    "SECRETPART\r\nX-Evil: 1", "SECRETPART\nmore",
	    "SECRETPART\rmore",        "SECRETPART more",
	    "SECRETPART\x01more",      "SECRETPART\xc3\xa9more",
	};
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_token(fx, bad[i], strlen(bad[i]), 0600);
		c = load(fx, "token_file", err, sizeof(err));
		assert_null(c);
		assert_non_null(strstr(err, fx->path));
		assert_null(strstr(err, "SECRETPART"));
	}
	write_token(fx, "SECRETPART\r\n", 12, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	gw_cred_free(c);
}

/* The token length limit is 32768 bytes: the edge loads, one more fails. */
static void
test_token_length_limit(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];
	char *big = NULL;

	big = malloc(32769 + 1);
	assert_non_null(big);
	memset(big, 'A', 32769);
	big[32769] = '\n';

	write_token(fx, big, 32768, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	gw_cred_free(c);

	write_token(fx, big, 32769 + 1, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->path));
	assert_null(strstr(err, "AAAA"));
	free(big);
}

static void
test_missing_file_refused(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];

	unlink(fx->path);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->path));
}

/*
 * Gap pinned: a typo in "type" must not silently leave requests
 * unauthenticated.  Positive control: "token_file" loads.
 */
static void
test_unknown_type_refused(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];

	write_token(fx, TOKEN, strlen(TOKEN), 0600);
	c = load(fx, "iam_pasword", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "iam_pasword"));
	assert_non_null(strstr(err, "hss-main"));

	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	gw_cred_free(c);
}

/*
 * Gap pinned: audit and "hssgw translate" print the decorated request; the
 * token must show as "<redacted>".  Positive control: a non-secret header
 * of the same request prints its value.
 */
static void
test_json_redacts_token(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	struct gw_upreq *r = NULL;
	struct gw_fault f = {0};
	struct gw_buf b;
	char err[512], fp[17];

	write_token(fx, TOKEN, strlen(TOKEN), 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	r = gw_upreq_new("POST", "https://hss.example/v5/p/x");
	assert_non_null(r);
	assert_int_equal(gw_upreq_set_header(r, "X-Project-Tag", "visible", 0),
	                 0);
	assert_int_equal(gw_cred_apply(c, r, "p1", 0, fp, &f), GW_OK);

	gw_buf_init(&b, 65536);
	assert_int_equal(gw_upreq_json(r, &b), 0);
	assert_non_null(strstr(b.p, "\"X-Auth-Token\":\"<redacted>\""));
	assert_non_null(strstr(b.p, "\"X-Project-Tag\":\"visible\""));
	assert_null(strstr(b.p, TOKEN));
	assert_null(strstr(b.p, "MIIEXAMPLE"));
	gw_buf_reset(&b);
	gw_upreq_free(r);
	gw_cred_free(c);
}

/* Writes a private file at path (replacing it) with mode. */
static void
write_file(const char *path, const char *data, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/*
 * Gap pinned: an operator rotates the token file; the gateway must use the
 * new token without a restart, and must not swap in a broken file.
 */
static void
test_token_file_reread(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	struct gw_upreq *r = NULL;
	struct gw_fault f = {0};
	char err[512], fp[17];

	write_token(fx, TOKEN, strlen(TOKEN), 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	r = gw_upreq_new("POST", "https://hss.example/v5/p/x");
	assert_int_equal(gw_cred_apply(c, r, "p1", 0, fp, &f), GW_OK);
	assert_string_equal(gw_upreq_header(r, "X-Auth-Token"), TOKEN);
	/* A new file (new inode, size): the new token. */
	write_token(fx, "second-token\n", 13, 0600);
	assert_int_equal(gw_cred_apply(c, r, "p1", 0, fp, &f), GW_OK);
	assert_string_equal(gw_upreq_header(r, "X-Auth-Token"), "second-token");
	/* A broken file (CR inside) keeps the last good token. */
	write_token(fx, "bad\rtoken", 9, 0600);
	assert_int_equal(gw_cred_apply(c, r, "p1", 0, fp, &f), GW_OK);
	assert_string_equal(gw_upreq_header(r, "X-Auth-Token"), "second-token");
	gw_upreq_free(r);
	gw_cred_free(c);
}

/* ---- the IAM stand-in ---------------------------------------------- */

#define PASSWORD "s3cret-\"pass\\word"
#define T0       1767225600000LL /* 2026-01-01T00:00:00Z */
#define HOUR     3600000LL

enum fake_mode { FAKE_OK, FAKE_DOWN, FAKE_REJECT, FAKE_EXPIRED };

/* What IAM answers and what it saw; all under mu. */
struct fake_iam {
	pthread_mutex_t mu;
	enum fake_mode mode;
	int64_t now_ms; /* IAM's clock: issued_at */
	int64_t ttl_ms;
	int delay_ms;
	int calls;
	char last_url[256];
	char last_body[2048];
	char last_auth[64]; /* X-Auth-Token sent (agency calls) */
};

static void
fmt_us(int64_t ms, char *buf, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char d[32];

	gmtime_r(&t, &tm);
	strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
	/* IAM's format: microseconds and Z (hss-api-notes.md 4.1). */
	snprintf(buf, cap, "%s.%03d000Z", d, (int)(ms % 1000));
}

static enum gw_err
fake_send(void *arg, const struct gw_upreq *req, struct gw_upresp *resp,
          struct gw_fault *f)
{
	struct fake_iam *fk = arg;
	const char *auth;
	char exp[64], iss[64], body[512], tok[32];
	enum fake_mode mode;
	int n;

	memset(resp, 0, sizeof(*resp));
	pthread_mutex_lock(&fk->mu);
	n = ++fk->calls;
	mode = fk->mode;
	snprintf(fk->last_url, sizeof(fk->last_url), "%s", req->url);
	snprintf(fk->last_body, sizeof(fk->last_body), "%.*s",
	         (int)req->bodylen, req->body);
	auth = gw_upreq_header(req, "X-Auth-Token");
	snprintf(fk->last_auth, sizeof(fk->last_auth), "%s",
	         auth != NULL ? auth : "");
	fmt_us(fk->now_ms, iss, sizeof(iss));
	fmt_us(mode == FAKE_EXPIRED ? fk->now_ms - 1000
	                            : fk->now_ms + fk->ttl_ms,
	       exp, sizeof(exp));
	pthread_mutex_unlock(&fk->mu);
	if (fk->delay_ms > 0)
		nanosleep(&(struct timespec){0, fk->delay_ms * 1000000L}, NULL);
	if (mode == FAKE_DOWN)
		return gw_fault_set(f, GW_ERR_UPSTREAM, "",
		                    "upstream refused connection");
	if (mode == FAKE_REJECT) {
		resp->status = 401;
		resp->body = strdup("{\"error\":{\"code\":401}}");
		resp->bodylen = strlen(resp->body);
		return GW_OK;
	}
	snprintf(tok, sizeof(tok), "tok-%d", n);
	snprintf(body, sizeof(body),
	         "{\"token\":{\"expires_at\":\"%s\",\"issued_at\":\"%s\","
	         "\"methods\":[\"password\"]}}",
	         exp, iss);
	resp->status = 201;
	resp->body = strdup(body);
	resp->bodylen = strlen(body);
	resp->subject_token = strdup(tok);
	return GW_OK;
}

static struct gw_cred *
iam_new(struct fixture *fx, struct fake_iam *fk, long long margin_s, char *err,
        size_t errlen)
{
	struct gw_conf_cred *cc = &fx->cc;
	struct gw_cred *c = NULL;

	memset(cc, 0, sizeof(*cc));
	cc->name = "iam-main";
	cc->type = "iam_password";
	cc->iam_endpoint = "https://iam.example.com/";
	cc->user = "svc-hssgw";
	cc->domain = "acme";
	cc->password_file = fx->pw;
	cc->refresh_margin_s = margin_s;
	c = gw_cred_new(NULL, cc, err, errlen);
	if (c != NULL)
		gw_cred_set_sender(c, fake_send, fk);
	return c;
}

static void
fake_init(struct fake_iam *fk, int64_t now, int64_t ttl)
{
	memset(fk, 0, sizeof(*fk));
	pthread_mutex_init(&fk->mu, NULL);
	fk->now_ms = now;
	fk->ttl_ms = ttl;
}

/* Applies at now; returns the error and copies the token header (or ""). */
static enum gw_err
apply_at(struct gw_cred *c, int64_t now, char *tok, size_t cap,
         struct gw_fault *f)
{
	struct gw_upreq *r = gw_upreq_new("POST", "https://hss.example/v5/p1");
	const char *h;
	char fp[17];
	enum gw_err rc;

	assert_non_null(r);
	memset(f, 0, sizeof(*f));
	rc = gw_cred_apply(c, r, "p1", now, fp, f);
	h = gw_upreq_header(r, "X-Auth-Token");
	snprintf(tok, cap, "%s", h != NULL ? h : "");
	gw_upreq_free(r);
	return rc;
}

/* The IAM call: URL, body per hss-api-notes.md 4.1, token from header. */
static void
test_iam_password_call(void **state)
{
	struct fixture *fx = *state;
	struct fake_iam fk;
	struct gw_cred *c = NULL;
	struct gw_upreq *r = NULL;
	struct gw_fault f = {0};
	char err[512], fp[17], want[17];

	write_file(fx->pw, PASSWORD "\n", 0600);
	fake_init(&fk, T0, 24 * HOUR);
	c = iam_new(fx, &fk, 0, err, sizeof(err));
	assert_non_null(c);
	r = gw_upreq_new("POST", "https://hss.example/v5/p1");
	assert_int_equal(gw_cred_apply(c, r, "p1", T0, fp, &f), GW_OK);
	assert_int_equal(fk.calls, 1);
	assert_string_equal(fk.last_url,
	                    "https://iam.example.com/v3/auth/tokens"
	                    "?nocatalog=true");
	assert_string_equal(
	    fk.last_body,
	    "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":"
	    "{\"user\":{\"name\":\"svc-hssgw\",\"password\":\"s3cret-\\\"pass"
	    "\\\\word\",\"domain\":{\"name\":\"acme\"}}}},\"scope\":{"
	    "\"project\":{\"id\":\"p1\"}}}}");
	assert_string_equal(gw_upreq_header(r, "X-Auth-Token"), "tok-1");
	gw_fingerprint("tok-1", 5, want);
	assert_string_equal(fp, want);
	gw_upreq_free(r);
	/* Another project scope is another token. */
	r = gw_upreq_new("POST", "https://hss.example/v5/p2");
	assert_int_equal(gw_cred_apply(c, r, "p2", T0, fp, &f), GW_OK);
	assert_string_equal(gw_upreq_header(r, "X-Auth-Token"), "tok-2");
	assert_non_null(strstr(fk.last_body, "{\"id\":\"p2\"}"));
	gw_upreq_free(r);
	gw_cred_free(c);
}

/*
 * Gap pinned: refresh must happen at the margin (default: 10% of the
 * lifetime capped at 1 h, so 23 h into a 24 h token), not before, and a
 * configured margin wins.
 */
static void
test_refresh_at_margin(void **state)
{
	struct fixture *fx = *state;
	struct fake_iam fk;
	struct gw_cred *c = NULL;
	struct gw_fault f;
	char err[512], tok[64];

	write_file(fx->pw, PASSWORD, 0600);
	fake_init(&fk, T0, 24 * HOUR);
	c = iam_new(fx, &fk, 0, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(apply_at(c, T0, tok, sizeof(tok), &f), GW_OK);
	assert_string_equal(tok, "tok-1");
	assert_int_equal(apply_at(c, T0 + 23 * HOUR - 1, tok, sizeof(tok), &f),
	                 GW_OK);
	assert_string_equal(tok, "tok-1");
	assert_int_equal(fk.calls, 1);
	fk.now_ms = T0 + 23 * HOUR;
	assert_int_equal(apply_at(c, T0 + 23 * HOUR, tok, sizeof(tok), &f),
	                 GW_OK);
	assert_string_equal(tok, "tok-2");
	assert_int_equal(fk.calls, 2);
	gw_cred_free(c);

	/* refresh_margin_s = 600: refresh 10 min before expiry. */
	fake_init(&fk, T0, 24 * HOUR);
	c = iam_new(fx, &fk, 600, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(apply_at(c, T0, tok, sizeof(tok), &f), GW_OK);
	assert_int_equal(
	    apply_at(c, T0 + 24 * HOUR - 600001, tok, sizeof(tok), &f), GW_OK);
	assert_int_equal(fk.calls, 1);
	assert_int_equal(
	    apply_at(c, T0 + 24 * HOUR - 600000, tok, sizeof(tok), &f), GW_OK);
	assert_int_equal(fk.calls, 2);
	assert_string_equal(tok, "tok-2");
	gw_cred_free(c);
}

/*
 * Gap pinned: with IAM down the cached token stays in use until it
 * expires, never after (the mistake Envoy's credential injector shipped);
 * then 503 with no token, and recovery once IAM is back.
 */
static void
test_outage_until_expiry(void **state)
{
	struct fixture *fx = *state;
	struct fake_iam fk;
	struct gw_cred *c = NULL;
	struct gw_fault f;
	char err[512], tok[64];
	const int64_t exp = T0 + HOUR;

	write_file(fx->pw, PASSWORD, 0600);
	fake_init(&fk, T0, HOUR);
	c = iam_new(fx, &fk, 0, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(apply_at(c, T0, tok, sizeof(tok), &f), GW_OK);
	fk.mode = FAKE_DOWN;
	/* In the margin (6 min): one try, fails, the old token is used. */
	assert_int_equal(apply_at(c, exp - 300000, tok, sizeof(tok), &f),
	                 GW_OK);
	assert_string_equal(tok, "tok-1");
	assert_int_equal(fk.calls, 2);
	/* Backing off: no call within the next second. */
	assert_int_equal(apply_at(c, exp - 299500, tok, sizeof(tok), &f),
	                 GW_OK);
	assert_int_equal(fk.calls, 2);
	assert_string_equal(tok, "tok-1");
	/* The last millisecond: a retry (backoff passed), still tok-1. */
	assert_int_equal(apply_at(c, exp - 1, tok, sizeof(tok), &f), GW_OK);
	assert_string_equal(tok, "tok-1");
	assert_int_equal(fk.calls, 3);
	/* At expiry: 503, no header, the reason is client-safe. */
	assert_int_equal(apply_at(c, exp, tok, sizeof(tok), &f),
	                 GW_ERR_CREDENTIALS);
	assert_string_equal(tok, "");
	assert_int_equal(gw_err_status(f.err), 503);
	assert_int_equal(fk.calls, 3); /* still backing off: 2 s */
	assert_non_null(strstr(f.msg, "IAM is unreachable"));
	assert_null(strstr(f.msg, "tok-"));
	assert_null(strstr(f.msg, "s3cret"));
	assert_int_equal(gw_cred_ready(c, exp), 0);
	assert_int_equal(gw_cred_ready(c, exp - 1), 1);
	/* IAM back: after the backoff the next request gets a token. */
	fk.mode = FAKE_OK;
	fk.now_ms = exp + 10 * 60000;
	assert_int_equal(apply_at(c, exp + 10 * 60000, tok, sizeof(tok), &f),
	                 GW_OK);
	assert_string_equal(tok, "tok-4");
	gw_cred_free(c);
}

/* Gap pinned: a token that IAM issues already expired is never used. */
static void
test_expired_answer_refused(void **state)
{
	struct fixture *fx = *state;
	struct fake_iam fk;
	struct gw_cred *c = NULL;
	struct gw_fault f;
	char err[512], tok[64];

	write_file(fx->pw, PASSWORD, 0600);
	fake_init(&fk, T0, HOUR);
	fk.mode = FAKE_EXPIRED;
	c = iam_new(fx, &fk, 0, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(apply_at(c, T0, tok, sizeof(tok), &f),
	                 GW_ERR_CREDENTIALS);
	assert_string_equal(tok, "");
	/* Positive control: a good answer is used. */
	fk.mode = FAKE_OK;
	assert_int_equal(apply_at(c, T0 + 2000, tok, sizeof(tok), &f), GW_OK);
	assert_string_equal(tok, "tok-2");
	gw_cred_free(c);
}

struct racer {
	struct gw_cred *c;
	int64_t now;
	enum gw_err rc;
	char tok[64];
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	struct gw_fault f;

	r->rc = apply_at(r->c, r->now, r->tok, sizeof(r->tok), &f);
	return NULL;
}

#define RACERS 32

static void
race_all(struct gw_cred *c, int64_t now, struct racer *rs)
{
	pthread_t th[RACERS];
	int i;

	for (i = 0; i < RACERS; i++) {
		rs[i].c = c;
		rs[i].now = now;
		assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
	}
	for (i = 0; i < RACERS; i++)
		pthread_join(th[i], NULL);
}

/*
 * Gap pinned: a burst of requests with no valid token (startup, expiry)
 * must cause exactly one IAM call; the others wait for it.
 */
static void
test_one_call_many_threads(void **state)
{
	struct fixture *fx = *state;
	struct racer rs[RACERS];
	struct fake_iam fk;
	struct gw_cred *c = NULL;
	char err[512];
	int i;

	write_file(fx->pw, PASSWORD, 0600);
	fake_init(&fk, T0, HOUR);
	fk.delay_ms = 200; /* every thread arrives while IAM is busy */
	c = iam_new(fx, &fk, 0, err, sizeof(err));
	assert_non_null(c);
	memset(rs, 0, sizeof(rs));
	race_all(c, T0, rs);
	assert_int_equal(fk.calls, 1);
	for (i = 0; i < RACERS; i++) {
		assert_int_equal(rs[i].rc, GW_OK);
		assert_string_equal(rs[i].tok, "tok-1");
	}
	/* At the moment of expiry: one more call, everyone gets tok-2. */
	fk.now_ms = T0 + HOUR;
	race_all(c, T0 + HOUR, rs);
	assert_int_equal(fk.calls, 2);
	for (i = 0; i < RACERS; i++)
		assert_string_equal(rs[i].tok, "tok-2");
	/* In the margin: one call; nobody waits on a valid token. */
	race_all(c, T0 + 2 * HOUR - 60000, rs);
	assert_int_equal(fk.calls, 3);
	gw_cred_free(c);
}

/* HSS said 401: the token with that fingerprint is dropped, once. */
static void
test_invalidate(void **state)
{
	struct fixture *fx = *state;
	struct fake_iam fk;
	struct gw_cred *c = NULL;
	struct gw_upreq *r = NULL;
	struct gw_fault f = {0};
	char err[512], fp1[17], fp2[17], tok[64];

	write_file(fx->pw, PASSWORD, 0600);
	fake_init(&fk, T0, HOUR);
	c = iam_new(fx, &fk, 0, err, sizeof(err));
	assert_non_null(c);
	r = gw_upreq_new("POST", "https://hss.example/v5/p1");
	assert_int_equal(gw_cred_apply(c, r, "p1", T0, fp1, &f), GW_OK);
	/* Another project's or another fingerprint: no-op. */
	gw_cred_invalidate(c, "p2", fp1);
	gw_cred_invalidate(c, "p1", "0000000000000000");
	assert_int_equal(apply_at(c, T0, tok, sizeof(tok), &f), GW_OK);
	assert_string_equal(tok, "tok-1");
	gw_cred_invalidate(c, "p1", fp1);
	assert_int_equal(gw_cred_apply(c, r, "p1", T0, fp2, &f), GW_OK);
	assert_string_equal(gw_upreq_header(r, "X-Auth-Token"), "tok-2");
	assert_string_not_equal(fp1, fp2);
	/* A late 401 for the old token does not drop the new one. */
	gw_cred_invalidate(c, "p1", fp1);
	assert_int_equal(apply_at(c, T0, tok, sizeof(tok), &f), GW_OK);
	assert_string_equal(tok, "tok-2");
	assert_int_equal(fk.calls, 2);
	gw_upreq_free(r);
	gw_cred_free(c);
}

/* A bad password: prime fails, not ready, requests 503; then recovery. */
static void
test_rejected_not_ready(void **state)
{
	struct fixture *fx = *state;
	struct fake_iam fk;
	struct gw_cred *c = NULL;
	struct gw_fault f = {0};
	char err[512], tok[64];

	write_file(fx->pw, PASSWORD, 0600);
	fake_init(&fk, T0, HOUR);
	fk.mode = FAKE_REJECT;
	c = iam_new(fx, &fk, 0, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(gw_cred_ready(c, T0), 0); /* nothing asked yet */
	assert_int_equal(gw_cred_prime(c, "p1", T0, &f), GW_ERR_CREDENTIALS);
	assert_non_null(strstr(f.msg, "rejected"));
	assert_null(strstr(f.msg, "s3cret"));
	assert_int_equal(gw_cred_ready(c, T0), 0);
	assert_int_equal(apply_at(c, T0 + 10, tok, sizeof(tok), &f),
	                 GW_ERR_CREDENTIALS);
	assert_int_equal(fk.calls, 1); /* backing off */
	fk.mode = FAKE_OK;
	assert_int_equal(gw_cred_prime(c, "p1", T0 + 1000, &f), GW_OK);
	assert_int_equal(gw_cred_ready(c, T0 + 1000), 1);
	gw_cred_free(c);
}

/*
 * The metrics' read-only view: the token's expiry per project (0 before
 * one is held) and fetches by result; a token_file has no known expiry.
 */
static void
test_expiry_and_refresh_counts(void **state)
{
	struct fixture *fx = *state;
	struct fake_iam fk;
	struct gw_cred *c = NULL;
	struct gw_fault f = {0};
	unsigned long long ok = 9, failed = 9;
	int64_t exp = -1;
	char err[512];

	write_file(fx->pw, PASSWORD, 0600);
	fake_init(&fk, T0, HOUR);
	fk.mode = FAKE_REJECT;
	c = iam_new(fx, &fk, 0, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(gw_cred_expiry(c, "p1", &exp), 1);
	assert_int_equal(exp, 0);
	gw_cred_refreshes(c, &ok, &failed);
	assert_int_equal(ok, 0);
	assert_int_equal(failed, 0);
	assert_int_equal(gw_cred_prime(c, "p1", T0, &f), GW_ERR_CREDENTIALS);
	gw_cred_refreshes(c, &ok, &failed);
	assert_int_equal(ok, 0);
	assert_int_equal(failed, 1);
	assert_int_equal(gw_cred_expiry(c, "p1", &exp), 1);
	assert_int_equal(exp, 0);
	fk.mode = FAKE_OK;
	assert_int_equal(gw_cred_prime(c, "p1", T0 + 1000, &f), GW_OK);
	gw_cred_refreshes(c, &ok, &failed);
	assert_int_equal(ok, 1);
	assert_int_equal(failed, 1);
	assert_int_equal(gw_cred_expiry(c, "p1", &exp), 1);
	assert_int_equal(exp, T0 + HOUR);
	/* Another project has no token yet. */
	assert_int_equal(gw_cred_expiry(c, "p2", &exp), 1);
	assert_int_equal(exp, 0);
	gw_cred_free(c);
	assert_int_equal(gw_cred_expiry(NULL, "p1", &exp), 0);
}

/*
 * Agency: the base entry's domain-scoped token authenticates the
 * assume_role call (hss-api-notes.md 4.2); the agency token is injected.
 */
static void
test_agency(void **state)
{
	struct fixture *fx = *state;
	struct gw_conf_cred base, ag;
	struct fake_iam fk;
	struct gw_cred *c = NULL;
	struct gw_fault f;
	char err[512], tok[64];

	write_file(fx->pw, PASSWORD, 0600);
	fake_init(&fk, T0, HOUR);
	memset(&base, 0, sizeof(base));
	base.name = "b";
	base.type = "iam_password";
	base.iam_endpoint = "https://iam.example.com";
	base.user = "ops";
	base.domain = "delegated";
	base.password_file = fx->pw;
	memset(&ag, 0, sizeof(ag));
	ag.name = "ag";
	ag.type = "iam_agency";
	ag.iam_endpoint = "https://iam.example.com";
	ag.base = "b";
	ag.base_cred = &base;
	ag.domain = "owner";
	ag.agency = "hss-export";
	c = gw_cred_new(NULL, &ag, err, sizeof(err));
	assert_non_null(c);
	gw_cred_set_sender(c, fake_send, &fk);
	assert_int_equal(apply_at(c, T0, tok, sizeof(tok), &f), GW_OK);
	assert_int_equal(fk.calls, 2);
	assert_string_equal(tok, "tok-2");
	assert_string_equal(fk.last_auth, "tok-1");
	assert_string_equal(
	    fk.last_body,
	    "{\"auth\":{\"identity\":{\"methods\":[\"assume_role\"],"
	    "\"assume_role\":{\"domain_name\":\"owner\",\"agency_name\":"
	    "\"hss-export\"}},\"scope\":{\"project\":{\"id\":\"p1\"}}}}");
	gw_cred_free(c);
}

/* Gap pinned: a group-readable password file stops startup, named. */
static void
test_password_file_mode(void **state)
{
	struct fixture *fx = *state;
	struct fake_iam fk;
	struct gw_cred *c = NULL;
	char err[512];

	fake_init(&fk, T0, HOUR);
	write_file(fx->pw, PASSWORD, 0640);
	c = iam_new(fx, &fk, 0, err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->pw));
	assert_null(strstr(err, "s3cret"));
	write_file(fx->pw, PASSWORD, 0600); /* positive control */
	c = iam_new(fx, &fk, 0, err, sizeof(err));
	assert_non_null(c);
	gw_cred_free(c);
}

/* aksk: signed request, secret Authorization, fingerprint of the AK. */
static void
test_aksk_provider(void **state)
{
	struct fixture *fx = *state;
	struct gw_conf_cred cc;
	struct gw_cred *c = NULL;
	struct gw_upreq *r = NULL;
	struct gw_fault f = {0};
	struct gw_buf b;
	char err[512], fp[17], want[17];

	write_file(fx->sk, "SecretKeyValue\n", 0600);
	memset(&cc, 0, sizeof(cc));
	cc.name = "ak";
	cc.type = "aksk";
	cc.access_key = "AKEXAMPLE";
	cc.secret_key_file = fx->sk;
	c = gw_cred_new(NULL, &cc, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(gw_cred_ready(c, 0), 1);
	r = gw_upreq_new("POST", "https://hss.example/v5/p1/x?export_size=1");
	assert_int_equal(gw_cred_apply(c, r, "p1", T0, fp, &f), GW_OK);
	assert_non_null(strstr(gw_upreq_header(r, "Authorization"),
	                       "SDK-HMAC-SHA256 Access=AKEXAMPLE, "
	                       "SignedHeaders=host;x-project-id;x-sdk-date, "
	                       "Signature="));
	assert_string_equal(gw_upreq_header(r, "X-Project-Id"), "p1");
	assert_string_equal(gw_upreq_header(r, "X-Sdk-Date"),
	                    "20260101T000000Z");
	gw_fingerprint("AKEXAMPLE", 9, want);
	assert_string_equal(fp, want);
	gw_buf_init(&b, 65536);
	assert_int_equal(gw_upreq_json(r, &b), 0);
	assert_non_null(strstr(b.p, "\"Authorization\":\"<redacted>\""));
	assert_null(strstr(b.p, "SecretKeyValue"));
	gw_buf_reset(&b);
	gw_upreq_free(r);
	gw_cred_free(c);
	/* A world-readable secret key file is refused. */
	write_file(fx->sk, "SecretKeyValue\n", 0644);
	c = gw_cred_new(NULL, &cc, err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->sk));
}

static void
test_free_accepts_null(void **state)
{
	(void)state;
	gw_cred_free(NULL);
}

/*
 * The credential header table (what "hssgw translate" shows): every type
 * has rows, secrets only as "<redacted>", the project id where the table
 * has no value; an unknown type has none (positive control: aksk).
 */
static void
test_show_headers(void **state)
{
	static const char *const types[] = {"token_file", "iam_password",
	                                    "iam_agency", "aksk"};
	const struct gw_cred_header *t;
	struct gw_upreq *r = NULL;
	size_t i, n = 0;

	(void)state;
	t = gw_cred_headers(&n);
	assert_non_null(t);
	assert_int_equal(n, 6);
	for (i = 0; i < n; i++)
		if (t[i].secret)
			assert_string_equal(t[i].shown, "<redacted>");
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		r = gw_upreq_new("GET", "https://hss.example/");
		assert_non_null(r);
		assert_int_equal(gw_cred_show_headers(r, types[i], "p1"), 0);
		gw_upreq_free(r);
	}
	r = gw_upreq_new("GET", "https://hss.example/");
	assert_non_null(r);
	assert_int_equal(gw_cred_show_headers(r, "aksk", "p1"), 0);
	assert_string_equal(gw_upreq_header(r, "Authorization"), "<redacted>");
	assert_string_equal(gw_upreq_header(r, "X-Project-Id"), "p1");
	assert_int_equal(gw_cred_show_headers(r, "nope", "p1"), -1);
	gw_upreq_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_token_applied, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fingerprint_stable_across_loads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mode_0644_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_empty_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_crlf_inside_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_token_length_limit, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_type_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_json_redacts_token, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_token_file_reread, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_iam_password_call, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_refresh_at_margin, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_outage_until_expiry, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_expired_answer_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_one_call_many_threads, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_invalidate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rejected_not_ready, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_expiry_and_refresh_counts,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_agency, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_password_file_mode, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_aksk_provider, setup,
	                                    teardown),
	    cmocka_unit_test(test_free_accepts_null),
	    cmocka_unit_test(test_show_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
