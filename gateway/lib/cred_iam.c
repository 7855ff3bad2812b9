/*
 * The IAM providers, iam_password and iam_agency: tokens from IAM's
 * POST /v3/auth/tokens (hss-api-notes.md 4.1, 4.2), cached per project
 * scope.
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
 * Tokens are wiped when replaced or freed; the password is read from its
 * file for each IAM call and wiped right after.  Never prints, logs or
 * returns a secret: faults name the entry, never what IAM said.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cred_int.h"

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
		if (gw_cred_secret_read("", cc->password_file, &pw, &pwsize,
		                        err, sizeof(err)) == -1) {
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
	if (!gw_cred_token_ok(resp.subject_token) ||
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

	if (gw_cred_secret_read(name, file, &pw, &size, err, errlen) == -1)
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
iam_expiry(struct gw_cred *c, const char *scope)
{
	struct iam *st = c->state;
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

/* Tests: every cache of the entry (its base's too) calls IAM through fn. */
static void
iam_set_sender(struct gw_cred *c, gw_cred_send_fn fn, void *arg)
{
	struct iam *st;

	for (st = c->state; st != NULL; st = st->base) {
		st->send = fn;
		st->send_arg = arg;
	}
}

/* Both iam_password and iam_agency (iam_load tells them apart). */
const struct cred_ops gw_cred_iam_ops = {
    .load = iam_load,
    .apply = iam_apply,
    .free = iam_free,
    .invalidate = iam_invalidate,
    .prime = iam_prime,
    .ready = iam_ready,
    .expiry = iam_expiry,
    .set_sender = iam_set_sender,
};
