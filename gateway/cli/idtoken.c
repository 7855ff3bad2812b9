/*
 * The client's token sources (idtoken.h, docs/CI.md).  Owns the token it
 * holds (wiped when replaced and at the free) and, for github-actions,
 * one upstream handle to the token endpoint, verified with the system
 * trust store or --id-token-cacert like every HTTPS call of hssgw (the
 * request goes through upstream.c).  The expiry is read from the token's
 * payload without verifying it: it only decides when to fetch again, the
 * gateway verifies.  Never prints, and no message quotes, a token, the
 * request token or a body; nothing is passed to a child process.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"
#include "gw.h"
#include "idtoken.h"
#include "jwks.h"
#include "upreq.h"
#include "upstream.h"

#define TOKEN_MAX  16384 /* the gateway's max_token_bytes is smaller */
#define ANSWER_MAX (64 * 1024)
#define URL_MAX    8192
#define MARGIN_S   60

enum kind { K_FIXED, K_GITHUB, K_ENV, K_FILE };

struct gw_idtok {
	enum kind kind;
	char *arg;     /* the audience, variable or path */
	char *token;   /* held (a secret), or NULL */
	int64_t due_s; /* fetch again at or after this time; 0: at once */
	unsigned fetches;
	struct gw_config conf; /* the token endpoint's TLS and limits */
	struct gw_upstream *up;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

struct gw_idtok *
gw_idtok_new(const char *source, const char *audience, const char *cacert,
             char *err, size_t errlen)
{
	struct gw_idtok *t = calloc(1, sizeof(*t));
	const char *arg = NULL;

	if (t == NULL) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	if (strcmp(source, "github-actions") == 0) {
		t->kind = K_GITHUB;
		arg = audience != NULL ? audience : GW_IDTOK_AUDIENCE;
	} else if (strncmp(source, "github-actions:", 15) == 0) {
		t->kind = K_GITHUB;
		arg = source + 15;
	} else if (strncmp(source, "env:", 4) == 0) {
		t->kind = K_ENV;
		arg = source + 4;
	} else if (strncmp(source, "file:", 5) == 0) {
		t->kind = K_FILE;
		arg = source + 5;
	}
	if (arg == NULL || *arg == '\0' || strlen(arg) > 1024) {
		seterr(err, errlen,
		       "--id-token: want github-actions[:AUDIENCE], env:VAR "
		       "or file:PATH");
		gw_idtok_free(t);
		return NULL;
	}
	t->arg = strdup(arg);
	t->conf.up_ca_file = cacert != NULL ? strdup(cacert) : NULL;
	t->conf.up_connect_timeout_ms = 10000;
	t->conf.up_timeout_ms = 30000;
	t->conf.up_max_response_bytes = ANSWER_MAX;
	if (t->arg == NULL || (cacert != NULL && t->conf.up_ca_file == NULL)) {
		seterr(err, errlen, "out of memory");
		gw_idtok_free(t);
		return NULL;
	}
	return t;
}

struct gw_idtok *
gw_idtok_fixed(const char *token)
{
	struct gw_idtok *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->kind = K_FIXED;
	t->token = strdup(token);
	if (t->token == NULL) {
		free(t);
		return NULL;
	}
	t->due_s = INT64_MAX;
	return t;
}

void
gw_idtok_free(struct gw_idtok *t)
{
	if (t == NULL)
		return;
	gw_secret_free(t->token);
	free(t->arg);
	free(t->conf.up_ca_file);
	gw_up_free(t->up);
	free(t);
}

unsigned
gw_idtok_fetches(const struct gw_idtok *t)
{
	return t != NULL ? t->fetches : 0;
}

/*
 * A compact JWS's payload, decoded into out (NUL-terminated) by the
 * gateway's own strict base64url (gw_b64url_decode); 0, or -1 when tok
 * is not three base64url parts or the payload is too large.
 */
static int
payload(const char *tok, char *out, size_t cap)
{
	const char *p = strchr(tok, '.'), *end;
	unsigned char *raw;
	size_t n;

	if (p == NULL || (end = strchr(p + 1, '.')) == NULL ||
	    strchr(end + 1, '.') != NULL || end[1] == '\0' || p == tok)
		return -1;
	if (gw_b64url_decode(p + 1, (size_t)(end - p - 1), &raw, &n) == -1)
		return -1;
	if (n >= cap) {
		free(raw);
		return -1;
	}
	memcpy(out, raw, n);
	out[n] = '\0';
	free(raw);
	return 0;
}

/* An integer claim of a payload, or 0 when absent or not an integer. */
static int64_t
claim_int(struct json_object *o, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_int))
		return 0;
	return json_object_get_int64(v);
}

/*
 * Takes tok (owned, a secret) as the token held once it looks like a
 * JWT, and sets when to fetch again: MARGIN_S before exp, or half its
 * lifetime before when that is shorter.  A file without exp is read
 * again at every use; other sources keep such a token.  0, or -1 with
 * tok freed and a message that names the source only.
 */
static int
take(struct gw_idtok *t, char *tok, char *err, size_t errlen)
{
	char *json = malloc(TOKEN_MAX);
	struct json_object *o = NULL;
	int64_t exp, iat, margin = MARGIN_S;
	int rc = -1;

	if (json == NULL || payload(tok, json, TOKEN_MAX) == -1 ||
	    (o = json_tokener_parse(json)) == NULL ||
	    !json_object_is_type(o, json_type_object)) {
		seterr(err, errlen, "--id-token %s: not a JWT",
		       t->kind == K_GITHUB ? "github-actions"
		       : t->kind == K_ENV  ? "env"
		                           : "file");
		gw_secret_free(tok);
		goto out;
	}
	exp = claim_int(o, "exp");
	iat = claim_int(o, "iat");
	if (iat > 0 && exp > iat && (exp - iat) / 2 < margin)
		margin = (exp - iat) / 2;
	if (exp > 0)
		t->due_s = exp - margin;
	else
		t->due_s = t->kind == K_FILE ? 0 : INT64_MAX;
	gw_secret_free(t->token);
	t->token = tok;
	t->fetches++;
	rc = 0;
out:
	json_object_put(o);
	if (json != NULL) {
		gw_wipe(json, TOKEN_MAX);
		free(json);
	}
	return rc;
}

/* Trailing newlines and blanks off a token read from a file or env. */
static char *
trimmed(const char *s, size_t n)
{
	char *r;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' ||
	                 s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0 || memchr(s, '\0', n) != NULL)
		return NULL;
	r = malloc(n + 1);
	if (r != NULL) {
		memcpy(r, s, n);
		r[n] = '\0';
	}
	return r;
}

static int
from_env(struct gw_idtok *t, char *err, size_t errlen)
{
	const char *v = getenv(t->arg);
	char *tok;

	if (v == NULL) {
		seterr(err, errlen, "--id-token env:%s: no such variable",
		       t->arg);
		return -1;
	}
	tok = strlen(v) <= TOKEN_MAX ? trimmed(v, strlen(v)) : NULL;
	if (tok == NULL) {
		seterr(err, errlen, "--id-token env:%s: %s", t->arg,
		       "empty or too long");
		return -1;
	}
	return take(t, tok, err, errlen);
}

static int
from_file(struct gw_idtok *t, char *err, size_t errlen)
{
	char why[512], *buf = NULL, *tok;
	size_t len = 0;

	if (gw_read_file(t->arg, TOKEN_MAX, 0, &buf, &len, why, sizeof(why)) ==
	    -1) {
		/* gw_read_file names the path and errno, never content. */
		seterr(err, errlen, "--id-token file: %s", why);
		return -1;
	}
	tok = trimmed(buf, len);
	gw_wipe(buf, len);
	free(buf);
	if (tok == NULL) {
		seterr(err, errlen, "--id-token file:%s: %s", t->arg,
		       "empty, or holds a NUL byte");
		return -1;
	}
	return take(t, tok, err, errlen);
}

/*
 * The endpoint's URL with &audience= (GitHub's request URL already has a
 * query string; '?' when it has none), into b.  0 or -1.
 */
static int
github_url(const char *base, const char *aud, struct gw_buf *b)
{
	if (gw_buf_puts(b, base) == -1 ||
	    gw_buf_puts(b, strchr(base, '?') != NULL ? "&audience="
	                                             : "?audience=") == -1 ||
	    gw_pct_encode(b, aud, strlen(aud)) == -1)
		return -1;
	return 0;
}

/* The JWT in the answer's "value" (oidc-utils.ts), owned; or NULL. */
static char *
answer_value(const struct gw_upresp *resp)
{
	struct json_object *o =
	    json_tokener_parse(resp->body ? resp->body : "");
	struct json_object *v;
	char *tok = NULL;

	if (o != NULL && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "value", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    json_object_get_string_len(v) <= TOKEN_MAX)
		tok = trimmed(json_object_get_string(v),
		              (size_t)json_object_get_string_len(v));
	json_object_put(o);
	return tok;
}

static int
from_github(struct gw_idtok *t, char *err, size_t errlen)
{
	const char *url = getenv("ACTIONS_ID_TOKEN_REQUEST_URL");
	const char *rt = getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
	struct gw_upreq *q = NULL;
	struct gw_upresp resp = {0};
	struct gw_fault f = {0};
	struct gw_buf b, auth;
	char *tok = NULL;
	int rc = -1;

	gw_buf_init(&b, URL_MAX);
	gw_buf_init(&auth, TOKEN_MAX);
	if (url == NULL || rt == NULL || *rt == '\0') {
		seterr(err, errlen,
		       "--id-token github-actions: %s is not set (does the "
		       "job have permissions: id-token: write?)",
		       url == NULL ? "ACTIONS_ID_TOKEN_REQUEST_URL"
		                   : "ACTIONS_ID_TOKEN_REQUEST_TOKEN");
		goto out;
	}
	if (strncmp(url, "https://", 8) != 0 ||
	    github_url(url, t->arg, &b) == -1) {
		seterr(err, errlen,
		       "--id-token github-actions: "
		       "ACTIONS_ID_TOKEN_REQUEST_URL is not an https:// URL "
		       "(or too long)");
		goto out;
	}
	if (gw_buf_printf(&auth, "Bearer %s", rt) == -1 ||
	    (q = gw_upreq_new("GET", b.p)) == NULL ||
	    gw_upreq_set_header(q, "Authorization", auth.p, 1) == -1 ||
	    gw_upreq_set_header(q, "Accept", "application/json", 0) == -1) {
		seterr(err, errlen,
		       "--id-token github-actions: request too large");
		goto out;
	}
	if (t->up == NULL && (t->up = gw_up_new()) == NULL) {
		seterr(err, errlen,
		       "--id-token github-actions: cannot set up HTTPS");
		goto out;
	}
	/* f.msg is upstream.c's own text: never a URL, header or body. */
	if (gw_up_send(t->up, &t->conf, q, &resp, &f) != GW_OK) {
		seterr(err, errlen,
		       "--id-token github-actions: the token endpoint: %s",
		       f.msg);
		goto out;
	}
	if (resp.status != 200) {
		seterr(err, errlen,
		       "--id-token github-actions: the token endpoint refused "
		       "the request: HTTP %ld",
		       resp.status);
		goto out;
	}
	tok = answer_value(&resp);
	if (tok == NULL) {
		seterr(err, errlen,
		       "--id-token github-actions: malformed answer from the "
		       "token endpoint (no string \"value\")");
		goto out;
	}
	rc = take(t, tok, err, errlen);
out:
	if (resp.body != NULL)
		gw_wipe(resp.body, resp.bodylen);
	gw_upresp_reset(&resp);
	gw_upreq_free(q);
	gw_buf_reset(&auth);
	gw_buf_reset(&b);
	return rc;
}

const char *
gw_idtok_get(struct gw_idtok *t, char *err, size_t errlen)
{
	int rc = 0;

	if (t->token != NULL && gw_now_ms() / 1000 < t->due_s)
		return t->token;
	switch (t->kind) {
	case K_FIXED:
		return t->token;
	case K_ENV:
		/* The environment does not change: read it once. */
		if (t->token != NULL)
			return t->token;
		rc = from_env(t, err, errlen);
		break;
	case K_FILE:
		rc = from_file(t, err, errlen);
		break;
	case K_GITHUB:
		rc = from_github(t, err, errlen);
		break;
	}
	return rc == 0 ? t->token : NULL;
}
