/*
 * Credential providers.  Each credentials entry of the config gets one
 * provider, chosen by its type from the static ops table below:
 *
 *   token_file    an IAM token in a private file, re-read when the file's
 *                 inode, size or mtime changes;
 *   iam_password  POST {iam_endpoint}/v3/auth/tokens with a password
 *                 (hss-api-notes.md 4.1), one token per project scope;
 *   iam_agency    the same call with "assume_role" (4.2), authenticated by
 *                 a domain-scoped token of its base iam_password entry;
 *   aksk          SDK-HMAC-SHA256 signing of every request (5, aksk.c).
 *
 * IAM tokens sit in a cache of slots, one per (entry, project scope), all
 * behind the provider's mutex and shared by every worker thread.  A token
 * is used while now < expires_at and refreshed once now >= expires_at -
 * margin (margin: refresh_margin_s, else 10% of the lifetime capped at one
 * hour; never more than half the lifetime).  Exactly one thread per slot
 * calls IAM (slot->inflight); the others keep using the still-valid token
 * or, when there is none, wait on the condition variable for that one
 * call.  A failed call leaves the cached token in use until it expires and
 * backs off exponentially (1 s doubling to 60 s); with no valid token
 * requests fail fast with GW_ERR_CREDENTIALS (503) until the next try.
 * The IAM call goes through gw_upstream (the one allowed module-to-module
 * call): each slot owns its handle, used only by the thread holding
 * inflight, so no second lock guards it; tests swap the sender.
 *
 * Secrets (tokens, the SK) are process-lifetime inside their slot or state
 * and wiped when replaced or freed; passwords are read from their file for
 * each IAM call and wiped right after.  This module must never print, log
 * or return a secret: faults and errors name the entry and the file, never
 * the contents.  The clock is always a parameter (now_ms), never read here.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sys/stat.h>

#include "aksk.h"
#include "cred.h"

/* An IAM token is a few KiB; 32 KiB is the most HSS accepts in a header. */
#define TOKEN_MAX 32768
/* Room for trailing whitespace after the longest token (editors add "\n"). */
#define TOKEN_FILE_SLACK 1024
/* Passwords and secret keys: far below this; the cap bounds the read. */
#define SECRET_FILE_MAX 4096
/* One slot per project scope; the config holds at most 256 projects. */
#define SLOTS_MAX 257
/* Backoff between failed IAM calls for one slot. */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
/* Default margin: 10% of the lifetime, at most one hour. */
#define MARGIN_DEFAULT_PCT    10
#define MARGIN_DEFAULT_MAX_MS (3600 * 1000LL)
/* IAM answers a token body of a few KiB with nocatalog. */
#define IAM_PATH     "/v3/auth/tokens?nocatalog=true"
#define IAM_BODY_MAX 8192

struct gw_cred;

/*
 * One row per provider type.  load fills c->state (-1 with a reason naming
 * the entry and file on failure); apply is thread-safe; free wipes and
 * frees the state and accepts NULL.  invalidate, prime and ready may be
 * NULL for types without a token cache.
 */
struct cred_ops {
	const char *type;
	int (*load)(struct gw_cred *, const struct gw_conf_cred *, char *err,
	            size_t errlen);
	enum gw_err (*apply)(struct gw_cred *, struct gw_upreq *,
	                     const char *project_id, int64_t now_ms,
	                     char fp[17], struct gw_fault *);
	void (*free)(void *state);
	void (*invalidate)(struct gw_cred *, const char *, const char[17]);
	enum gw_err (*prime)(struct gw_cred *, const char *, int64_t,
	                     struct gw_fault *);
	int (*ready)(struct gw_cred *, int64_t);
};

struct gw_cred {
	char *name;
	const struct gw_config *conf; /* borrowed */
	const struct cred_ops *ops;
	void *state; /* owned by ops */
	/* token fetches by result (metrics); relaxed, each on its own */
	atomic_ullong fetch_ok, fetch_failed;
};

/* ---- token_file ---------------------------------------------------- */

/* token_file state: the token and the file identity it was read from. */
struct token_file {
	pthread_mutex_t mu;
	char *path;
	char *token; /* NUL-terminated, validated */
	size_t size; /* bytes allocated, all wiped on free */
	char fp[17];
	struct stat seen; /* last stat we (tried to) read */
};

/*
 * Only visible ASCII (0x21-0x7e): a CR or LF would let the file inject
 * headers into the upstream request (RFC 9110 5.5 forbids them in field
 * values), and spaces or controls are never part of an IAM token.
 */
static int
token_byte_ok(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

/*
 * The two kinds of one-line secret file, as data: an IAM token (goes into
 * a header: visible ASCII only, trailing whitespace dropped) and a
 * password or secret key (one UTF-8 line without control bytes, trailing
 * CR/LF dropped).
 */
enum secret_kind { SK_TOKEN, SK_LINE, SK__MAX };

static const struct secret_rule {
	size_t file_max;
	size_t max; /* bytes after trimming */
	const char *trim;
	const char *what;
} secret_rules[SK__MAX] = {
    [SK_TOKEN] = {TOKEN_MAX + TOKEN_FILE_SLACK, TOKEN_MAX, "\r\n \t", "token"},
    [SK_LINE] = {SECRET_FILE_MAX, SECRET_FILE_MAX, "\r\n", "secret"},
};

static int
secret_byte_ok(enum secret_kind k, unsigned char c)
{
	if (k == SK_TOKEN)
		return token_byte_ok(c);
	return c >= 0x20 && c != 0x7f;
}

/*
 * Reads a secret file of the given kind into *out (owned; its allocated
 * size, for wiping, in *size).  The reason names the entry, the file and
 * at most an offset, never a byte of the secret.
 */
static int
secret_read_kind(enum secret_kind k, const char *name, const char *file,
                 char **out, size_t *size, char *err, size_t errlen)
{
	const struct secret_rule *r = &secret_rules[k];
	char rerr[512];
	char *buf = NULL;
	size_t len = 0, sz = 0, i;
	int rc = -1;

	if (gw_read_file(file, r->file_max, 1, &buf, &len, rerr,
	                 sizeof(rerr)) == -1) {
		snprintf(err, errlen, "credentials %s: %s", name, rerr);
		goto out;
	}
	sz = len + 1;
	while (len > 0 && strchr(r->trim, buf[len - 1]) != NULL)
		len--;
	buf[len] = '\0';
	if (len == 0 || len > r->max ||
	    (k == SK_LINE && !gw_utf8_valid(buf, len))) {
		snprintf(err, errlen,
		         "credentials %s: %s: %s must be one non-empty line of "
		         "at most %zu bytes",
		         name, file, r->what, r->max);
		goto out;
	}
	for (i = 0; i < len; i++)
		if (!secret_byte_ok(k, (unsigned char)buf[i])) {
			snprintf(err, errlen,
			         "credentials %s: %s: %s has a %s byte at "
			         "offset %zu",
			         name, file, r->what,
			         k == SK_TOKEN ? "space, control or non-ASCII"
			                       : "control",
			         i);
			goto out;
		}
	*out = buf;
	*size = sz;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		gw_wipe(buf, sz);
		free(buf);
	}
	return rc;
}

/* Reads and validates a token file. */
static int
token_read(const char *name, const char *file, char **out, size_t *size,
           char *err, size_t errlen)
{
	return secret_read_kind(SK_TOKEN, name, file, out, size, err, errlen);
}

/* Reads a one-line secret (password, SK). */
static int
secret_read(const char *name, const char *file, char **out, size_t *size,
            char *err, size_t errlen)
{
	return secret_read_kind(SK_LINE, name, file, out, size, err, errlen);
}

/* A token we may put into a header: 1..TOKEN_MAX visible ASCII bytes. */
static int
token_ok(const char *t)
{
	size_t i;

	if (t == NULL || t[0] == '\0')
		return 0;
	for (i = 0; t[i] != '\0'; i++)
		if (i == TOKEN_MAX || !token_byte_ok((unsigned char)t[i]))
			return 0;
	return 1;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int
token_file_load(struct gw_cred *c, const struct gw_conf_cred *cc, char *err,
                size_t errlen)
{
	struct token_file *t = NULL;
	int rc = -1;

	t = calloc(1, sizeof(*t));
	if (t == NULL || pthread_mutex_init(&t->mu, NULL) != 0) {
		free(t);
		snprintf(err, errlen, "credentials %s: out of memory", c->name);
		return -1;
	}
	c->state = t;
	t->path = strdup(cc->file);
	if (t->path == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory", c->name);
		goto out;
	}
	/* stat first: a change between stat and read is seen next time. */
	if (stat(t->path, &t->seen) == -1)
		memset(&t->seen, 0, sizeof(t->seen));
	if (token_read(c->name, t->path, &t->token, &t->size, err, errlen) ==
	    -1)
		goto out;
	gw_fingerprint(t->token, strlen(t->token), t->fp);
	rc = 0;
out:
	return rc;
}

/*
 * Re-reads the file when it changed since the last look.  A new file that
 * fails the checks leaves the old token in use (the operator is mid-edit
 * or made a mistake; the next change is tried again).  Called locked.
 */
static void
token_file_refresh(struct gw_cred *c, struct token_file *t)
{
	struct stat st;
	char err[8];
	char *tok = NULL;
	size_t size = 0;

	if (stat(t->path, &st) == -1 || same_file(&st, &t->seen))
		return;
	t->seen = st;
	if (token_read(c->name, t->path, &tok, &size, err, sizeof(err)) == -1)
		return;
	if (t->token != NULL) {
		gw_wipe(t->token, t->size);
		free(t->token);
	}
	t->token = tok;
	t->size = size;
	gw_fingerprint(tok, strlen(tok), t->fp);
}

static enum gw_err
token_file_apply(struct gw_cred *c, struct gw_upreq *req,
                 const char *project_id, int64_t now_ms, char fp[17],
                 struct gw_fault *f)
{
	struct token_file *t = c->state;
	enum gw_err rc = GW_OK;

	(void)project_id; /* the operator scoped the token */
	(void)now_ms;     /* a token file does not expire on our clock */
	pthread_mutex_lock(&t->mu);
	token_file_refresh(c, t);
	if (t->token == NULL)
		rc =
		    gw_fault_set(f, GW_ERR_CREDENTIALS, "",
		                 "no token loaded for credentials %s", c->name);
	else if (gw_upreq_set_header(req, "X-Auth-Token", t->token, 1) == -1)
		rc = gw_fault_set(f, GW_ERR_INTERNAL, "",
		                  "could not add the credential header");
	else
		memcpy(fp, t->fp, 17);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

static void
token_file_free(void *state)
{
	struct token_file *t = state;

	if (t == NULL)
		return;
	if (t->token != NULL) {
		gw_wipe(t->token, t->size);
		free(t->token);
	}
	free(t->path);
	pthread_mutex_destroy(&t->mu);
	gw_wipe(t, sizeof(*t));
	free(t);
}

/* ---- aksk ---------------------------------------------------------- */

struct aksk {
	char *ak;
	char *sk; /* secret, NUL-terminated */
	size_t sksize;
	char fp[17]; /* of the AK: audit names the key, never the secret */
};

static int
aksk_load(struct gw_cred *c, const struct gw_conf_cred *cc, char *err,
          size_t errlen)
{
	struct aksk *a = NULL;

	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory", c->name);
		return -1;
	}
	c->state = a;
	a->ak = strdup(cc->access_key);
	if (a->ak == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory", c->name);
		return -1;
	}
	gw_fingerprint(a->ak, strlen(a->ak), a->fp);
	return secret_read(c->name, cc->secret_key_file, &a->sk, &a->sksize,
	                   err, errlen);
}

static enum gw_err
aksk_apply(struct gw_cred *c, struct gw_upreq *req, const char *project_id,
           int64_t now_ms, char fp[17], struct gw_fault *f)
{
	const struct aksk *a = c->state;
	char err[128];

	if (a->sk == NULL)
		return gw_fault_set(f, GW_ERR_CREDENTIALS, "",
		                    "no secret key loaded for credentials %s",
		                    c->name);
	if (gw_aksk_sign(req, a->ak, a->sk, strlen(a->sk), project_id, now_ms,
	                 err, sizeof(err)) == -1)
		return gw_fault_set(f, GW_ERR_INTERNAL, "",
		                    "the upstream request could not be signed");
	memcpy(fp, a->fp, 17);
	return GW_OK;
}

static void
aksk_free(void *state)
{
	struct aksk *a = state;

	if (a == NULL)
		return;
	if (a->sk != NULL) {
		gw_wipe(a->sk, a->sksize);
		free(a->sk);
	}
	free(a->ak);
	gw_wipe(a, sizeof(*a));
	free(a);
}

/* ---- IAM token cache (iam_password, iam_agency) -------------------- */

/*
 * Why a slot has no usable token: client-safe, constant strings, never
 * formatted with anything IAM or the files said.
 */
enum iam_why {
	WHY_NONE,
	WHY_UNREACHABLE,
	WHY_REJECTED,
	WHY_STATUS,
	WHY_ANSWER,
	WHY_EXPIRED,
	WHY_SECRET,
	WHY_BASE,
	WHY_NOMEM,
	WHY__MAX
};

static const char *const iam_whys[] = {
    [WHY_NONE] = "no token yet",
    [WHY_UNREACHABLE] = "IAM is unreachable",
    [WHY_REJECTED] = "IAM rejected the gateway's credentials",
    [WHY_STATUS] = "IAM answered an unexpected status",
    [WHY_ANSWER] = "IAM answered without a usable token",
    [WHY_EXPIRED] = "IAM issued a token that is already expired",
    [WHY_SECRET] = "the password file cannot be read",
    [WHY_BASE] = "the base credentials have no token",
    [WHY_NOMEM] = "out of memory",
};
_Static_assert(sizeof(iam_whys) / sizeof(iam_whys[0]) == WHY__MAX,
               "every reason needs a message");

/* One cached token: all fields but up are guarded by iam->mu. */
struct slot {
	char *scope; /* project_id, or "" for the domain scope */
	char *token; /* secret; NULL when none */
	char fp[17];
	int64_t expires_ms;
	int64_t refresh_ms; /* refresh from here on */
	int64_t next_try_ms;
	int64_t backoff_ms;
	enum iam_why why;
	int inflight;
	struct gw_upstream *up; /* used only by the inflight thread */
};

struct iam {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct gw_cred *c; /* owner, for name and conf */
	const struct gw_conf_cred *cc;
	struct iam *base; /* iam_agency: the delegated account's cache */
	gw_cred_send_fn send;
	void *send_arg;
	struct slot slots[SLOTS_MAX];
	size_t nslots;
};

/* Appends s as a JSON string (RFC 8259 7); 0 or -1. */
static int
json_str(struct gw_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;
	char e[6] = {'\\', 'u', '0', '0', 0, 0};

	if (gw_buf_add(b, "\"", 1) == -1)
		return -1;
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\') {
			if (gw_buf_add(b, "\\", 1) == -1 ||
			    gw_buf_add(b, p, 1) == -1)
				return -1;
		} else if (*p < 0x20) {
			e[4] = hex[*p >> 4];
			e[5] = hex[*p & 15];
			if (gw_buf_add(b, e, 6) == -1)
				return -1;
		} else if (gw_buf_add(b, p, 1) == -1) {
			return -1;
		}
	}
	return gw_buf_add(b, "\"", 1);
}

/* The scope object: a project by id, or the entry's domain by name. */
static int
json_scope(struct gw_buf *b, const char *scope, const char *domain)
{
	if (scope[0] != '\0')
		return gw_buf_puts(b, "\"scope\":{\"project\":{\"id\":") ||
		               json_str(b, scope) || gw_buf_puts(b, "}}}}")
		           ? -1
		           : 0;
	return gw_buf_puts(b, "\"scope\":{\"domain\":{\"name\":") ||
	               json_str(b, domain) || gw_buf_puts(b, "}}}}")
	           ? -1
	           : 0;
}

/* hss-api-notes.md 4.1: password identity, project (or domain) scope. */
static int
body_password(struct gw_buf *b, const struct gw_conf_cred *cc,
              const char *password, const char *scope)
{
	return gw_buf_puts(b, "{\"auth\":{\"identity\":{\"methods\":["
	                      "\"password\"],\"password\":{\"user\":{"
	                      "\"name\":") ||
	               json_str(b, cc->user) ||
	               gw_buf_puts(b, ",\"password\":") ||
	               json_str(b, password) ||
	               gw_buf_puts(b, ",\"domain\":{\"name\":") ||
	               json_str(b, cc->domain) || gw_buf_puts(b, "}}}},") ||
	               json_scope(b, scope, cc->domain)
	           ? -1
	           : 0;
}

/* hss-api-notes.md 4.2: assume_role identity, project scope. */
static int
body_agency(struct gw_buf *b, const struct gw_conf_cred *cc, const char *scope)
{
	return gw_buf_puts(b, "{\"auth\":{\"identity\":{\"methods\":["
	                      "\"assume_role\"],\"assume_role\":{"
	                      "\"domain_name\":") ||
	               json_str(b, cc->domain) ||
	               gw_buf_puts(b, ",\"agency_name\":") ||
	               json_str(b, cc->agency) || gw_buf_puts(b, "}},") ||
	               json_scope(b, scope, cc->domain)
	           ? -1
	           : 0;
}

/* Reads token.expires_at (and issued_at) from IAM's answer; 0 or -1. */
static int
parse_expiry(const char *body, size_t len, int64_t *exp, int64_t *iss)
{
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL, *t = NULL, *v = NULL;
	int rc = -1;

	*iss = -1;
	tok = json_tokener_new();
	if (tok == NULL || body == NULL || len > INT32_MAX)
		goto out;
	root = json_tokener_parse_ex(tok, body, (int)len);
	if (root == NULL || !json_object_object_get_ex(root, "token", &t) ||
	    !json_object_is_type(t, json_type_object) ||
	    !json_object_object_get_ex(t, "expires_at", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    gw_rfc3339_ms(json_object_get_string(v), exp) == -1)
		goto out;
	if (json_object_object_get_ex(t, "issued_at", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    gw_rfc3339_ms(json_object_get_string(v), iss) == -1)
		*iss = -1;
	rc = 0;
out:
	json_object_put(root);
	if (tok != NULL)
		json_tokener_free(tok);
	return rc;
}

static int64_t
margin_ms(const struct gw_conf_cred *cc, int64_t lifetime)
{
	int64_t m;

	if (cc->refresh_margin_s > 0)
		m = cc->refresh_margin_s * 1000;
	else {
		m = lifetime * MARGIN_DEFAULT_PCT / 100;
		if (m > MARGIN_DEFAULT_MAX_MS)
			m = MARGIN_DEFAULT_MAX_MS;
	}
	/* Half the lifetime at most, so a fresh token is fresh for a while. */
	return m < lifetime / 2 ? m : lifetime / 2;
}

static enum iam_why get_token(struct iam *, const char *scope, int64_t now,
                              char **tok, char fp[17]);
static void iam_drop(struct iam *, const char *scope, const char fp[17]);

static enum gw_err
iam_send(struct iam *st, struct slot *s, const struct gw_upreq *req,
         struct gw_upresp *resp, struct gw_fault *f)
{
	if (st->send != NULL)
		return st->send(st->send_arg, req, resp, f);
	if (st->c->conf == NULL)
		return gw_fault_set(f, GW_ERR_CONFIG, "", "no upstream limits");
	if (s->up == NULL)
		s->up = gw_up_new();
	if (s->up == NULL)
		return gw_fault_set(f, GW_ERR_NOMEM, "", "out of memory");
	return gw_up_send(s->up, st->c->conf, req, resp, f);
}

/*
 * One IAM call for slot s, made unlocked by the thread holding inflight.
 * On success *tok (owned, secret) and *exp are set.
 */
static enum iam_why
fetch(struct iam *st, struct slot *s, int64_t now, char **tok, int64_t *exp)
{
	const struct gw_conf_cred *cc = st->cc;
	struct gw_upreq *req = NULL;
	struct gw_upresp resp = {0};
	struct gw_fault f = {0};
	struct gw_buf url, body;
	char err[8], base_fp[17] = {0};
	char *pw = NULL, *base_tok = NULL;
	size_t pwsize = 0;
	int64_t iss = -1;
	enum iam_why why = WHY_NOMEM;
	enum gw_err rc;

	gw_buf_init(&url, 4096);
	gw_buf_init(&body, IAM_BODY_MAX);
	if (gw_buf_add(&url, cc->iam_endpoint,
	               strlen(cc->iam_endpoint) -
	                   (cc->iam_endpoint[strlen(cc->iam_endpoint) - 1] ==
	                    '/')) == -1 ||
	    gw_buf_puts(&url, IAM_PATH) == -1)
		goto out;
	req = gw_upreq_new("POST", url.p);
	if (req == NULL ||
	    gw_upreq_set_header(req, "Content-Type",
	                        "application/json;charset=utf8", 0) == -1)
		goto out;
	if (st->base != NULL) {
		why = get_token(st->base, "", now, &base_tok, base_fp);
		if (why != WHY_NONE) {
			why = WHY_BASE;
			goto out;
		}
		why = WHY_NOMEM;
		if (gw_upreq_set_header(req, "X-Auth-Token", base_tok, 1) ==
		        -1 ||
		    body_agency(&body, cc, s->scope) == -1)
			goto out;
	} else {
		if (secret_read("", cc->password_file, &pw, &pwsize, err,
		                sizeof(err)) == -1) {
			why = WHY_SECRET;
			goto out;
		}
		if (body_password(&body, cc, pw, s->scope) == -1)
			goto out;
	}
	req->bodylen = body.len;
	req->body = gw_buf_take(&body, NULL);
	if (req->body == NULL)
		goto out;
	rc = iam_send(st, s, req, &resp, &f);
	if (rc != GW_OK) {
		why = rc == GW_ERR_NOMEM ? WHY_NOMEM : WHY_UNREACHABLE;
		goto out;
	}
	if (resp.status == 401 || resp.status == 403) {
		/* An agency call refused: maybe the base token was revoked. */
		if (st->base != NULL)
			iam_drop(st->base, "", base_fp);
		why = WHY_REJECTED;
		goto out;
	}
	if (resp.status != 201) {
		why = WHY_STATUS;
		goto out;
	}
	if (!token_ok(resp.subject_token) ||
	    parse_expiry(resp.body, resp.bodylen, exp, &iss) == -1) {
		why = WHY_ANSWER;
		goto out;
	}
	/* Our clock may run ahead of IAM's: trust the lifetime, not the
	 * end, whichever comes first. */
	if (iss != -1 && *exp > iss && now + (*exp - iss) < *exp)
		*exp = now + (*exp - iss);
	if (*exp <= now) {
		why = WHY_EXPIRED;
		goto out;
	}
	*tok = resp.subject_token;
	resp.subject_token = NULL;
	why = WHY_NONE;
out:
	if (pw != NULL) {
		gw_wipe(pw, pwsize);
		free(pw);
	}
	gw_secret_free(base_tok);
	if (req != NULL && req->body != NULL)
		gw_wipe(req->body, req->bodylen);
	gw_upreq_free(req);
	gw_upresp_reset(&resp);
	gw_buf_reset(&body);
	gw_buf_reset(&url);
	return why;
}

static void
slot_clear_token(struct slot *s)
{
	gw_secret_free(s->token);
	s->token = NULL;
	memset(s->fp, 0, sizeof(s->fp));
	s->expires_ms = s->refresh_ms = 0;
}

/* The slot of scope, added when new; NULL when full.  Called locked. */
static struct slot *
slot_get(struct iam *st, const char *scope)
{
	size_t i;

	for (i = 0; i < st->nslots; i++)
		if (strcmp(st->slots[i].scope, scope) == 0)
			return &st->slots[i];
	if (st->nslots == SLOTS_MAX)
		return NULL;
	st->slots[st->nslots].scope = strdup(scope);
	if (st->slots[st->nslots].scope == NULL)
		return NULL;
	return &st->slots[st->nslots++];
}

/* Installs a fetched token or records a failure.  Called locked. */
static void
slot_settle(const struct gw_conf_cred *cc, struct slot *s, int64_t now,
            enum iam_why why, char *tok, int64_t exp)
{
	if (why == WHY_NONE) {
		slot_clear_token(s);
		s->token = tok;
		gw_fingerprint(tok, strlen(tok), s->fp);
		s->expires_ms = exp;
		s->refresh_ms = exp - margin_ms(cc, exp - now);
		s->backoff_ms = 0;
		s->next_try_ms = 0;
		s->why = WHY_NONE;
		return;
	}
	s->backoff_ms = s->backoff_ms == 0 ? BACKOFF_MIN_MS : s->backoff_ms * 2;
	if (s->backoff_ms > BACKOFF_MAX_MS)
		s->backoff_ms = BACKOFF_MAX_MS;
	s->next_try_ms = now + s->backoff_ms;
	s->why = why;
}

/*
 * A copy of the token of scope valid at now (owned, secret) and its
 * fingerprint: from the cache, or fetched when due by this thread if no
 * other is fetching.  WHY_NONE, or why there is none.
 */
static enum iam_why
get_token(struct iam *st, const char *scope, int64_t now, char **tok,
          char fp[17])
{
	struct slot *s = NULL;
	char *fresh = NULL;
	int64_t exp = 0;
	enum iam_why why = WHY_NOMEM;
	int fetched = 0;

	*tok = NULL;
	pthread_mutex_lock(&st->mu);
	s = slot_get(st, scope);
	if (s == NULL)
		goto out;
	for (;;) {
		/* Never hand out a token at or after its expiry. */
		int valid = s->token != NULL && now < s->expires_ms;

		if (valid && (now < s->refresh_ms || fetched || s->inflight ||
		              now < s->next_try_ms)) {
			*tok = strdup(s->token);
			memcpy(fp, s->fp, 17);
			why = *tok != NULL ? WHY_NONE : WHY_NOMEM;
			goto out;
		}
		if (!s->inflight && !fetched && now >= s->next_try_ms) {
			s->inflight = 1;
			pthread_mutex_unlock(&st->mu);
			why = fetch(st, s, now, &fresh, &exp);
			atomic_fetch_add_explicit(why == WHY_NONE
			                              ? &st->c->fetch_ok
			                              : &st->c->fetch_failed,
			                          1, memory_order_relaxed);
			pthread_mutex_lock(&st->mu);
			slot_settle(st->cc, s, now, why, fresh, exp);
			fresh = NULL;
			s->inflight = 0;
			fetched = 1;
			pthread_cond_broadcast(&st->cv);
			continue;
		}
		if (s->inflight) {
			pthread_cond_wait(&st->cv, &st->mu);
			/* The fetch we waited for counts as ours. */
			fetched = s->inflight == 0;
			continue;
		}
		why = s->why != WHY_NONE ? s->why : WHY_EXPIRED;
		goto out;
	}
out:
	pthread_mutex_unlock(&st->mu);
	return why;
}

/* Drops the token of scope when its fingerprint is fp. */
static void
iam_drop(struct iam *st, const char *scope, const char fp[17])
{
	size_t i;

	pthread_mutex_lock(&st->mu);
	for (i = 0; i < st->nslots; i++) {
		struct slot *s = &st->slots[i];

		if (strcmp(s->scope, scope) != 0 || s->token == NULL ||
		    !gw_ct_equal(s->fp, 16, fp, 16))
			continue;
		slot_clear_token(s);
		/* HSS said no: try IAM at once, whatever the backoff. */
		s->next_try_ms = 0;
		s->backoff_ms = 0;
	}
	pthread_mutex_unlock(&st->mu);
}

static void
iam_state_free(struct iam *st)
{
	size_t i;

	if (st == NULL)
		return;
	iam_state_free(st->base);
	for (i = 0; i < st->nslots; i++) {
		slot_clear_token(&st->slots[i]);
		free(st->slots[i].scope);
		gw_up_free(st->slots[i].up);
	}
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

static struct iam *
iam_state_new(struct gw_cred *c, const struct gw_conf_cred *cc)
{
	struct iam *st = NULL;

	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	if (pthread_mutex_init(&st->mu, NULL) != 0) {
		free(st);
		return NULL;
	}
	if (pthread_cond_init(&st->cv, NULL) != 0) {
		pthread_mutex_destroy(&st->mu);
		free(st);
		return NULL;
	}
	st->c = c;
	st->cc = cc;
	return st;
}

/* Checks the password file now, so a bad one stops startup. */
static int
password_check(const char *name, const char *file, char *err, size_t errlen)
{
	char *pw = NULL;
	size_t size = 0;

	if (secret_read(name, file, &pw, &size, err, errlen) == -1)
		return -1;
	gw_wipe(pw, size);
	free(pw);
	return 0;
}

static int
iam_load(struct gw_cred *c, const struct gw_conf_cred *cc, char *err,
         size_t errlen)
{
	struct iam *st = NULL;

	if (cc->iam_endpoint == NULL || cc->iam_endpoint[0] == '\0') {
		snprintf(err, errlen, "credentials %s: needs iam_endpoint",
		         c->name);
		return -1;
	}
	st = iam_state_new(c, cc);
	if (st == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory", c->name);
		return -1;
	}
	c->state = st;
	if (strcmp(cc->type, "iam_agency") == 0) {
		if (cc->base_cred == NULL ||
		    cc->base_cred->password_file == NULL) {
			snprintf(err, errlen,
			         "credentials %s: base must name an "
			         "iam_password entry",
			         c->name);
			return -1;
		}
		st->base = iam_state_new(c, cc->base_cred);
		if (st->base == NULL) {
			snprintf(err, errlen, "credentials %s: out of memory",
			         c->name);
			return -1;
		}
		return password_check(c->name, cc->base_cred->password_file,
		                      err, errlen);
	}
	return password_check(c->name, cc->password_file, err, errlen);
}

static enum gw_err
iam_fault(struct gw_cred *c, enum iam_why why, struct gw_fault *f)
{
	return gw_fault_set(f, GW_ERR_CREDENTIALS, "",
	                    "the gateway's credentials %s are unavailable: %s",
	                    c->name, iam_whys[why]);
}

static enum gw_err
iam_apply(struct gw_cred *c, struct gw_upreq *req, const char *project_id,
          int64_t now_ms, char fp[17], struct gw_fault *f)
{
	char *tok = NULL;
	enum iam_why why;
	enum gw_err rc = GW_OK;

	if (project_id == NULL || project_id[0] == '\0')
		return gw_fault_set(f, GW_ERR_INTERNAL, "",
		                    "no project scope for credentials");
	why = get_token(c->state, project_id, now_ms, &tok, fp);
	if (why != WHY_NONE)
		rc = iam_fault(c, why, f);
	else if (gw_upreq_set_header(req, "X-Auth-Token", tok, 1) == -1)
		rc = gw_fault_set(f, GW_ERR_INTERNAL, "",
		                  "could not add the credential header");
	gw_secret_free(tok);
	return rc;
}

static void
iam_invalidate(struct gw_cred *c, const char *project_id, const char fp[17])
{
	iam_drop(c->state, project_id, fp);
}

static enum gw_err
iam_prime(struct gw_cred *c, const char *project_id, int64_t now_ms,
          struct gw_fault *f)
{
	char fp[17], *tok = NULL;
	enum iam_why why;

	why = get_token(c->state, project_id, now_ms, &tok, fp);
	gw_secret_free(tok);
	return why == WHY_NONE ? GW_OK : iam_fault(c, why, f);
}

static int
iam_ready(struct gw_cred *c, int64_t now_ms)
{
	struct iam *st = c->state;
	size_t i;
	int ok;

	pthread_mutex_lock(&st->mu);
	ok = st->nslots > 0;
	for (i = 0; i < st->nslots; i++)
		if (st->slots[i].token == NULL ||
		    now_ms >= st->slots[i].expires_ms)
			ok = 0;
	pthread_mutex_unlock(&st->mu);
	return ok;
}

/* The expiry of scope's token, 0 when none; see gw_cred_expiry. */
static int64_t
iam_expiry(struct iam *st, const char *scope)
{
	int64_t exp = 0;
	size_t i;

	pthread_mutex_lock(&st->mu);
	for (i = 0; i < st->nslots; i++)
		if (strcmp(st->slots[i].scope, scope) == 0 &&
		    st->slots[i].token != NULL)
			exp = st->slots[i].expires_ms;
	pthread_mutex_unlock(&st->mu);
	return exp;
}

static void
iam_free(void *state)
{
	iam_state_free(state);
}

/* ---- the provider table and the interface ------------------------- */

static const struct cred_ops cred_types[] = {
    {"token_file", token_file_load, token_file_apply, token_file_free, NULL,
     NULL, NULL},
    {"iam_password", iam_load, iam_apply, iam_free, iam_invalidate, iam_prime,
     iam_ready},
    {"iam_agency", iam_load, iam_apply, iam_free, iam_invalidate, iam_prime,
     iam_ready},
    {"aksk", aksk_load, aksk_apply, aksk_free, NULL, NULL, NULL},
};

static const struct cred_ops *
ops_get(const char *type)
{
	size_t i;

	for (i = 0; i < sizeof(cred_types) / sizeof(cred_types[0]); i++)
		if (strcmp(cred_types[i].type, type) == 0)
			return &cred_types[i];
	return NULL;
}

/* The keys a type reads, checked again here: tests skip config.c. */
static int
keys_present(const struct gw_conf_cred *cc)
{
	if (strcmp(cc->type, "token_file") == 0)
		return cc->file != NULL;
	if (strcmp(cc->type, "iam_password") == 0)
		return cc->user != NULL && cc->domain != NULL &&
		       cc->password_file != NULL;
	if (strcmp(cc->type, "iam_agency") == 0)
		return cc->domain != NULL && cc->agency != NULL &&
		       cc->base_cred != NULL && cc->base_cred->user != NULL &&
		       cc->base_cred->domain != NULL &&
		       cc->base_cred->iam_endpoint != NULL;
	return cc->access_key != NULL && cc->secret_key_file != NULL;
}

struct gw_cred *
gw_cred_new(const struct gw_config *conf, const struct gw_conf_cred *cc,
            char *err, size_t errlen)
{
	struct gw_cred *c = NULL, *res = NULL;
	const struct cred_ops *ops = NULL;

	if (cc == NULL || cc->name == NULL || cc->type == NULL) {
		snprintf(err, errlen, "credentials entry needs name and type");
		goto out;
	}
	ops = ops_get(cc->type);
	if (ops == NULL) {
		snprintf(err, errlen, "credentials %s: unknown type \"%s\"",
		         cc->name, cc->type);
		goto out;
	}
	if (!keys_present(cc)) {
		snprintf(err, errlen,
		         "credentials %s: missing keys for type %s", cc->name,
		         cc->type);
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory",
		         cc->name);
		goto out;
	}
	c->ops = ops;
	c->conf = conf;
	c->name = strdup(cc->name);
	if (c->name == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory",
		         cc->name);
		goto out;
	}
	if (ops->load(c, cc, err, errlen) == -1)
		goto out;
	res = c;
	c = NULL;
out:
	gw_cred_free(c);
	return res;
}

void
gw_cred_free(struct gw_cred *c)
{
	if (c == NULL)
		return;
	if (c->ops != NULL)
		c->ops->free(c->state);
	free(c->name);
	free(c);
}

void
gw_cred_set_sender(struct gw_cred *c, gw_cred_send_fn fn, void *arg)
{
	struct iam *st;

	if (c == NULL || c->ops->prime == NULL)
		return;
	for (st = c->state; st != NULL; st = st->base) {
		st->send = fn;
		st->send_arg = arg;
	}
}

enum gw_err
gw_cred_apply(struct gw_cred *c, struct gw_upreq *req, const char *project_id,
              int64_t now_ms, char fp[17], struct gw_fault *f)
{
	if (c == NULL || req == NULL)
		return gw_fault_set(f, GW_ERR_CREDENTIALS, "",
		                    "no credentials configured");
	return c->ops->apply(c, req, project_id, now_ms, fp, f);
}

void
gw_cred_invalidate(struct gw_cred *c, const char *project_id, const char fp[17])
{
	if (c != NULL && project_id != NULL && fp != NULL &&
	    c->ops->invalidate != NULL)
		c->ops->invalidate(c, project_id, fp);
}

enum gw_err
gw_cred_prime(struct gw_cred *c, const char *project_id, int64_t now_ms,
              struct gw_fault *f)
{
	if (c == NULL)
		return gw_fault_set(f, GW_ERR_CREDENTIALS, "",
		                    "no credentials configured");
	if (c->ops->prime == NULL)
		return GW_OK;
	if (project_id == NULL || project_id[0] == '\0')
		return gw_fault_set(f, GW_ERR_INTERNAL, "",
		                    "no project scope for credentials");
	return c->ops->prime(c, project_id, now_ms, f);
}

int
gw_cred_ready(struct gw_cred *c, int64_t now_ms)
{
	if (c == NULL)
		return 0;
	if (c->ops->ready == NULL)
		return 1;
	return c->ops->ready(c, now_ms);
}

const char *
gw_cred_name(const struct gw_cred *c)
{
	return c->name;
}

int
gw_cred_expiry(struct gw_cred *c, const char *project_id, int64_t *exp_ms)
{
	*exp_ms = 0;
	if (c == NULL || c->ops->apply != iam_apply || project_id == NULL)
		return 0;
	*exp_ms = iam_expiry(c->state, project_id);
	return 1;
}

void
gw_cred_refreshes(const struct gw_cred *c, unsigned long long *ok,
                  unsigned long long *failed)
{
	*ok = *failed = 0;
	if (c == NULL)
		return;
	*ok = atomic_load_explicit(&((struct gw_cred *)c)->fetch_ok,
	                           memory_order_relaxed);
	*failed = atomic_load_explicit(&((struct gw_cred *)c)->fetch_failed,
	                               memory_order_relaxed);
}

static const struct gw_cred_header cred_headers[] = {
    {"token_file", "X-Auth-Token", "<redacted>", 1},
    {"iam_password", "X-Auth-Token", "<redacted>", 1},
    {"iam_agency", "X-Auth-Token", "<redacted>", 1},
    {"aksk", "X-Sdk-Date", "<YYYYMMDDTHHMMSSZ at send time>", 0},
    {"aksk", "X-Project-Id", NULL, 0},
    {"aksk", "Authorization", "<redacted>", 1},
};

const struct gw_cred_header *
gw_cred_headers(size_t *n)
{
	*n = sizeof(cred_headers) / sizeof(cred_headers[0]);
	return cred_headers;
}

int
gw_cred_show_headers(struct gw_upreq *req, const char *type,
                     const char *project_id)
{
	const struct gw_cred_header *h;
	const char *v;
	size_t i;
	int found = 0;

	if (req == NULL || type == NULL)
		return -1;
	for (i = 0; i < sizeof(cred_headers) / sizeof(cred_headers[0]); i++) {
		h = &cred_headers[i];
		if (strcmp(h->type, type) != 0)
			continue;
		found = 1;
		v = h->shown != NULL ? h->shown : project_id;
		if (v == NULL ||
		    gw_upreq_set_header(req, h->name, v, h->secret) == -1)
			return -1;
	}
	return found ? 0 : -1;
}
