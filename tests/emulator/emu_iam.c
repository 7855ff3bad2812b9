/*
 * IAM stand-in (hss-api-notes.md 4.1, 4.2): POST /v3/auth/tokens issues
 * project- or domain-scoped tokens for configured users and agencies,
 * token in X-Subject-Token, 201 with a Keystone-shaped body.  Issued
 * tokens live in e->issued (under e->iamlock) until the process ends;
 * /_emulator/revoke marks them revoked.  Keystone-style errors:
 * {"error":{"code":N,"message":"...","title":"..."}} (3.3).  Also the
 * SDK-HMAC-SHA256 (AK/SK) verification the HSS APIs accept instead of a
 * token (hss-api-notes.md 5).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "emu.h"

static void
iam_error(struct emu_answer *a, int status, const char *msg)
{
	struct json_object *o = json_object_new_object(),
	                   *er = json_object_new_object();

	a->kind = ANS_RAW;
	a->status = status;
	if (o == NULL || er == NULL) {
		json_object_put(o);
		json_object_put(er);
		emu_answer_err(a, EE_INTERNAL, NULL);
		return;
	}
	json_object_object_add(er, "code", json_object_new_int(status));
	json_object_object_add(er, "message", json_object_new_string(msg));
	json_object_object_add(er, "title",
	                       json_object_new_string(emu_reason(status)));
	json_object_object_add(o, "error", er);
	a->raw = gw_strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	if (a->raw == NULL)
		emu_answer_err(a, EE_INTERNAL, NULL);
}

/* A string at a path of object keys, or NULL. */
static const char *
jpath(struct json_object *o, const char *const *keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, keys[i], &o))
			return NULL;
	return json_object_is_type(o, json_type_string)
	           ? json_object_get_string(o)
	           : NULL;
}

static int
principal_has_project(const struct emu_principal *p, const char *pid)
{
	size_t i;

	for (i = 0; i < p->nprojects; i++)
		if (strcmp(p->projects[i], pid) == 0)
			return 1;
	return 0;
}

/* IAM's time format: UTC, microseconds, "Z" (hss-api-notes.md 4.1). */
static void
fmt_us(long long ms, char *buf, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char d[32];

	gmtime_r(&t, &tm);
	strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, cap, "%s.%03lld000Z", d, ms % 1000);
}

/* Looks up an issued token; copies it out under the lock. */
static int
issued_find(struct emu *e, const char *tok, struct emu_token *out)
{
	size_t i, len = strlen(tok);
	int found = 0;

	pthread_mutex_lock(&e->iamlock);
	for (i = 0; i < e->nissued; i++) {
		if (gw_ct_equal(tok, len, e->issued[i].tok,
		                strlen(e->issued[i].tok))) {
			*out = e->issued[i];
			found = 1;
		}
	}
	pthread_mutex_unlock(&e->iamlock);
	return found;
}

/* Issues a token; 0 or -1 (store full). */
static int
issue(struct emu *e, const char *scope_project, const char *domain,
      long long now, struct emu_token *out)
{
	struct emu_token t, *n;
	char rnd[65];
	int rc = -1;

	memset(&t, 0, sizeof(t));
	if (gw_random_hex(rnd, 32) == -1)
		return -1;
	/* Real tokens start "MII"; the rest is throwaway randomness. */
	snprintf(t.tok, sizeof(t.tok), "MIIemu%s", rnd);
	gw_fingerprint(t.tok, strlen(t.tok), t.fp);
	snprintf(t.project, sizeof(t.project), "%s", scope_project);
	snprintf(t.domain, sizeof(t.domain), "%s", domain);
	t.issued_ms = now;
	t.expires_ms = now + e->conf->token_ttl_s * 1000;
	pthread_mutex_lock(&e->iamlock);
	if (e->nissued == e->capissued) {
		if (e->capissued == EMU_ISSUED_MAX)
			goto out;
		n = realloc(e->issued, (e->capissued ? e->capissued * 2 : 64) *
		                           sizeof(*n));
		if (n == NULL)
			goto out;
		e->issued = n;
		e->capissued = e->capissued ? e->capissued * 2 : 64;
	}
	e->issued[e->nissued++] = t;
	*out = t;
	rc = 0;
out:
	pthread_mutex_unlock(&e->iamlock);
	return rc;
}

static void
iam_success(struct emu *e, struct emu_answer *a, const struct emu_token *t,
            const char *method, const char *user, const char *udomain)
{
	struct json_object *o = json_object_new_object(),
	                   *tk = json_object_new_object(),
	                   *m = json_object_new_array(),
	                   *u = json_object_new_object(),
	                   *ud = json_object_new_object(), *sc = NULL,
	                   *sd = NULL;
	char exp[64], iss[64];

	(void)e;
	if (o == NULL || tk == NULL || m == NULL || u == NULL || ud == NULL) {
		json_object_put(o);
		json_object_put(tk);
		json_object_put(m);
		json_object_put(u);
		json_object_put(ud);
		emu_answer_err(a, EE_INTERNAL, NULL);
		return;
	}
	fmt_us(t->expires_ms, exp, sizeof(exp));
	fmt_us(t->issued_ms, iss, sizeof(iss));
	json_object_object_add(tk, "expires_at", json_object_new_string(exp));
	json_object_object_add(tk, "issued_at", json_object_new_string(iss));
	json_object_array_add(m, json_object_new_string(method));
	json_object_object_add(tk, "methods", m);
	sc = json_object_new_object();
	sd = json_object_new_object();
	if (sc != NULL && sd != NULL) {
		json_object_object_add(sd, "name",
		                       json_object_new_string(t->domain));
		if (t->project[0] != '\0') {
			json_object_object_add(
			    sc, "id", json_object_new_string(t->project));
			json_object_object_add(
			    sc, "name", json_object_new_string(t->project));
			json_object_object_add(sc, "domain", sd);
			json_object_object_add(tk, "project", sc);
		} else {
			json_object_put(sc);
			json_object_object_add(tk, "domain", sd);
		}
	}
	json_object_object_add(ud, "name", json_object_new_string(udomain));
	json_object_object_add(u, "name", json_object_new_string(user));
	json_object_object_add(u, "domain", ud);
	json_object_object_add(tk, "user", u);
	json_object_object_add(o, "token", tk);
	a->raw = gw_strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	a->subject_token = gw_strdup(t->tok);
	json_object_put(o);
	if (a->raw == NULL || a->subject_token == NULL) {
		emu_answer_err(a, EE_INTERNAL, NULL);
		return;
	}
	a->kind = ANS_RAW;
	a->status = 201;
}

/* POST /v3/auth/tokens: password or assume_role, project/domain scope. */
void
emu_handle_iam(struct emu *e, struct emu_req *r, struct emu_answer *a)
{
	static const char *const k_methods[] = {"auth", "identity"};
	static const char *const k_user[] = {"auth", "identity", "password",
	                                     "user", "name"};
	static const char *const k_pw[] = {"auth", "identity", "password",
	                                   "user", "password"};
	static const char *const k_udom[] = {"auth", "identity", "password",
	                                     "user", "domain",   "name"};
	static const char *const k_ardom[] = {"auth", "identity", "assume_role",
	                                      "domain_name"};
	static const char *const k_agency[] = {"auth", "identity",
	                                       "assume_role", "agency_name"};
	static const char *const k_pid[] = {"auth", "scope", "project", "id"};
	static const char *const k_sdom[] = {"auth", "scope", "domain", "name"};
	struct json_object *root = NULL, *id = NULL, *methods = NULL;
	const struct emu_principal *p = NULL;
	struct emu_token t, base;
	const char *method, *pid, *sdom, *name, *dom, *pw, *xtok;
	char err[256];
	long long now = gw_now_ms();
	size_t i;

	pthread_mutex_lock(&e->iamlock);
	e->iam_calls++;
	pthread_mutex_unlock(&e->iamlock);
	if (strcmp(r->method, "POST") != 0) {
		emu_answer_err(a, EE_METHOD, NULL);
		a->allow = "POST";
		return;
	}
	if (r->body_over ||
	    !emu_media_is_json(emu_param_get(r->envp, "CONTENT_TYPE", NULL))) {
		iam_error(a, 400, "The request body is invalid.");
		return;
	}
	root = emu_json_parse_strict(r->body.p != NULL ? r->body.p : "",
	                             r->body.len, err, sizeof(err));
	id = root;
	for (i = 0; i < NELEM(k_methods); i++)
		if (id == NULL ||
		    !json_object_object_get_ex(id, k_methods[i], &id))
			id = NULL;
	if (id == NULL || !json_object_object_get_ex(id, "methods", &methods) ||
	    !json_object_is_type(methods, json_type_array) ||
	    json_object_array_length(methods) != 1 ||
	    !json_object_is_type(json_object_array_get_idx(methods, 0),
	                         json_type_string)) {
		iam_error(a, 400, "The request body is invalid.");
		goto out;
	}
	method = json_object_get_string(json_object_array_get_idx(methods, 0));
	pid = jpath(root, k_pid, NELEM(k_pid));
	sdom = jpath(root, k_sdom, NELEM(k_sdom));
	if ((pid == NULL) == (sdom == NULL)) {
		iam_error(a, 400, "The request body is invalid: scope.");
		goto out;
	}
	if (strcmp(method, "password") == 0) {
		name = jpath(root, k_user, NELEM(k_user));
		pw = jpath(root, k_pw, NELEM(k_pw));
		dom = jpath(root, k_udom, NELEM(k_udom));
		if (name == NULL || pw == NULL || dom == NULL) {
			iam_error(a, 400, "The request body is invalid.");
			goto out;
		}
		for (i = 0; i < e->conf->nusers; i++) {
			const struct emu_principal *u = &e->conf->users[i];

			if (strcmp(u->name, name) == 0 &&
			    strcmp(u->domain, dom) == 0 &&
			    gw_ct_equal(u->secret, u->secretlen, pw,
			                strlen(pw)))
				p = u;
		}
		if (p == NULL) {
			iam_error(a, 401, "The username or password is wrong.");
			goto out;
		}
		if ((pid != NULL && !principal_has_project(p, pid)) ||
		    (sdom != NULL && strcmp(sdom, p->domain) != 0)) {
			iam_error(a, 403,
			          "You have no permission on the scope.");
			goto out;
		}
		if (issue(e, pid != NULL ? pid : "", p->domain, now, &t) ==
		    -1) {
			emu_answer_err(a, EE_INTERNAL, "token store full");
			goto out;
		}
		iam_success(e, a, &t, "password", p->name, p->domain);
		goto out;
	}
	if (strcmp(method, "assume_role") != 0) {
		iam_error(a, 400, "The request body is invalid: methods.");
		goto out;
	}
	/* 4.2: authenticated by a valid token of the delegated account. */
	xtok = emu_param_get(r->envp, "HTTP_X_AUTH_TOKEN", NULL);
	if (xtok == NULL || !issued_find(e, xtok, &base) || base.revoked ||
	    now >= base.expires_ms) {
		iam_error(a, 401,
		          "The request you have made requires "
		          "authentication.");
		goto out;
	}
	dom = jpath(root, k_ardom, NELEM(k_ardom));
	name = jpath(root, k_agency, NELEM(k_agency));
	for (i = 0; dom != NULL && name != NULL && i < e->conf->nagencies; i++)
		if (strcmp(e->conf->agencies[i].name, name) == 0 &&
		    strcmp(e->conf->agencies[i].domain, dom) == 0)
			p = &e->conf->agencies[i];
	if (p == NULL || pid == NULL || !principal_has_project(p, pid)) {
		iam_error(a, 403, "You have no permission on the agency.");
		goto out;
	}
	if (issue(e, pid, p->domain, now, &t) == -1) {
		emu_answer_err(a, EE_INTERNAL, "token store full");
		goto out;
	}
	iam_success(e, a, &t, "assume_role", p->name, p->domain);
out:
	json_object_put(root);
}

/* Appends s percent-encoded, RFC 3986 unreserved kept (section 5). */
static int
aksk_enc(struct gw_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;
	char x[3] = {'%', 0, 0};
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (isalnum(c) || c == '-' || c == '_' || c == '.' ||
		    c == '~') {
			if (gw_buf_add(b, &s[i], 1) == -1)
				return -1;
			continue;
		}
		x[1] = hex[c >> 4];
		x[2] = hex[c & 15];
		if (gw_buf_add(b, x, 3) == -1)
			return -1;
	}
	return 0;
}

/* Decodes a query component (form rules: '+' is a space); NULL if bad. */
static char *
aksk_dec(const char *s, size_t n)
{
	char *o = malloc(n + 1), h[3] = {0, 0, 0};
	size_t i, j = 0;
	char *end = NULL;

	if (o == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '+') {
			o[j++] = ' ';
		} else if (s[i] == '%') {
			if (i + 2 >= n) {
				free(o);
				return NULL;
			}
			h[0] = s[i + 1];
			h[1] = s[i + 2];
			o[j] = (char)strtol(h, &end, 16);
			if (end != h + 2 || !isxdigit((unsigned char)h[0])) {
				free(o);
				return NULL;
			}
			j++;
			i += 2;
		} else {
			o[j++] = s[i];
		}
	}
	o[j] = '\0';
	return o;
}

struct emu_qp {
	char *k, *v;
};

static int
qp_cmp(const void *x, const void *y)
{
	const struct emu_qp *a = x, *b = y;
	int c = strcmp(a->k, b->k);

	return c ? c : strcmp(a->v, b->v);
}

/* The header's value as nginx passes it (HTTP_*, CONTENT_TYPE). */
static const char *
aksk_header(char **envp, const char *lname, size_t *count)
{
	char pname[EMU_HDR_NAME_MAX + 8];
	size_t i, n = strlen(lname);

	if (strcmp(lname, "content-type") == 0)
		return emu_param_get(envp, "CONTENT_TYPE", count);
	if (n + 6 >= sizeof(pname))
		return NULL;
	memcpy(pname, "HTTP_", 5);
	for (i = 0; i < n; i++)
		pname[5 + i] = lname[i] == '-'
		                   ? '_'
		                   : (char)toupper((unsigned char)lname[i]);
	pname[5 + n] = '\0';
	return emu_param_get(envp, pname, count);
}

/* Builds the canonical request the way the API gateway would; 0 or -1. */
static int
aksk_canon(const struct emu_req *r, const char *signed_hdrs, struct gw_buf *c)
{
	struct emu_qp qp[64];
	const char *p, *seg, *amp, *eq, *v;
	char name[EMU_HDR_NAME_MAX];
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t nq = 0, i, n, count;
	int rc = -1;

	memset(qp, 0, sizeof(qp));
	if (gw_buf_puts(c, r->method) == -1 || gw_buf_puts(c, "\n") == -1)
		goto out;
	/* DOCUMENT_URI is decoded by nginx: encode each segment, end "/". */
	for (seg = r->path + 1;; seg = p + 1) {
		p = strchr(seg, '/');
		n = p != NULL ? (size_t)(p - seg) : strlen(seg);
		if (gw_buf_puts(c, "/") == -1 || aksk_enc(c, seg, n) == -1)
			goto out;
		if (p == NULL)
			break;
	}
	if (c->p[c->len - 1] != '/' && gw_buf_puts(c, "/") == -1)
		goto out;
	if (gw_buf_puts(c, "\n") == -1)
		goto out;
	for (p = r->query; *p != '\0'; p = *amp ? amp + 1 : amp) {
		amp = p + strcspn(p, "&");
		if (amp == p)
			continue;
		if (nq == NELEM(qp))
			goto out;
		eq = memchr(p, '=', (size_t)(amp - p));
		qp[nq].k = aksk_dec(p, (size_t)((eq ? eq : amp) - p));
		qp[nq].v = eq ? aksk_dec(eq + 1, (size_t)(amp - eq - 1))
		              : gw_strdup("");
		if (qp[nq].k == NULL || qp[nq++].v == NULL)
			goto out;
	}
	qsort(qp, nq, sizeof(qp[0]), qp_cmp);
	for (i = 0; i < nq; i++)
		if ((i && gw_buf_puts(c, "&") == -1) ||
		    aksk_enc(c, qp[i].k, strlen(qp[i].k)) == -1 ||
		    gw_buf_puts(c, "=") == -1 ||
		    aksk_enc(c, qp[i].v, strlen(qp[i].v)) == -1)
			goto out;
	if (gw_buf_puts(c, "\n") == -1)
		goto out;
	/* Headers in the order SignedHeaders lists them (sorted, checked). */
	for (p = signed_hdrs; *p != '\0'; p = *amp ? amp + 1 : amp) {
		amp = p + strcspn(p, ";");
		n = (size_t)(amp - p);
		if (n == 0 || n >= sizeof(name))
			goto out;
		memcpy(name, p, n);
		name[n] = '\0';
		v = aksk_header(r->envp, name, &count);
		if (v == NULL || count != 1)
			goto out;
		while (*v == ' ')
			v++;
		n = strlen(v);
		while (n > 0 && v[n - 1] == ' ')
			n--;
		if (gw_buf_printf(c, "%s:%.*s\n", name, (int)n, v) == -1)
			goto out;
	}
	if (gw_buf_printf(c, "\n%s\n", signed_hdrs) == -1)
		goto out;
	SHA256((const unsigned char *)(r->body.p ? r->body.p : ""), r->body.len,
	       md);
	for (i = 0; i < sizeof(md); i++)
		if (gw_buf_printf(c, "%02x", md[i]) == -1)
			goto out;
	rc = 0;
out:
	for (i = 0; i < NELEM(qp); i++) {
		free(qp[i].k);
		free(qp[i].v);
	}
	return rc;
}

/* Parses an X-Sdk-Date (YYYYMMDDTHHMMSSZ) into ms; -1 if malformed. */
static long long
sdk_date_ms(const char *s)
{
	struct tm tm;
	const char *end;

	if (s == NULL || strlen(s) != 16)
		return -1;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y%m%dT%H%M%SZ", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	return (long long)timegm(&tm) * 1000;
}

/*
 * Verifies an SDK-HMAC-SHA256 Authorization (hss-api-notes.md 5) and that
 * the AK covers project pid.  Returns 0, or -1 with the answer set.
 */
int
emu_aksk_verify(struct emu *e, struct emu_req *r, const char *auth,
                const char *pid, struct emu_answer *a)
{
	static const char pre[] = "SDK-HMAC-SHA256 Access=";
	const struct emu_principal *k = NULL;
	const char *ak, *sh, *sig, *date, *xpid;
	char akbuf[129], shbuf[512], want[65], sts[256];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct gw_buf c, hx;
	long long dms, now = gw_now_ms();
	size_t i, n;
	int rc = -1;

	gw_buf_init(&c, 256 * 1024);
	gw_buf_init(&hx, 128);
	if (strncmp(auth, pre, sizeof(pre) - 1) != 0)
		goto bad;
	ak = auth + sizeof(pre) - 1;
	n = strcspn(ak, ",");
	if (n == 0 || n >= sizeof(akbuf) ||
	    strncmp(ak + n, ", SignedHeaders=", 16) != 0)
		goto bad;
	memcpy(akbuf, ak, n);
	akbuf[n] = '\0';
	sh = ak + n + 16;
	n = strcspn(sh, ",");
	if (n == 0 || n >= sizeof(shbuf) ||
	    strncmp(sh + n, ", Signature=", 12) != 0)
		goto bad;
	memcpy(shbuf, sh, n);
	shbuf[n] = '\0';
	sig = sh + n + 12;
	if (strlen(sig) != 64)
		goto bad;
	/* host and x-sdk-date must be signed; the list sorted, lower case. */
	{
		char tmp[520];

		snprintf(tmp, sizeof(tmp), ";%s;", shbuf);
		if (strstr(tmp, ";host;") == NULL ||
		    strstr(tmp, ";x-sdk-date;") == NULL)
			goto bad;
		for (i = 0; shbuf[i] != '\0'; i++)
			if (isupper((unsigned char)shbuf[i]))
				goto bad;
	}
	for (i = 0; i < e->conf->naksks; i++)
		if (strcmp(e->conf->aksks[i].name, akbuf) == 0)
			k = &e->conf->aksks[i];
	if (k == NULL)
		goto bad;
	date = emu_param_get(r->envp, "HTTP_X_SDK_DATE", NULL);
	dms = sdk_date_ms(date);
	if (dms < 0 || dms < now - EMU_SDK_WINDOW_MS ||
	    dms > now + EMU_SDK_WINDOW_MS)
		goto bad;
	if (aksk_canon(r, shbuf, &c) == -1)
		goto bad;
	SHA256((const unsigned char *)c.p, c.len, md);
	for (i = 0; i < SHA256_DIGEST_LENGTH; i++)
		gw_buf_printf(&hx, "%02x", md[i]);
	snprintf(sts, sizeof(sts), "SDK-HMAC-SHA256\n%s\n%s", date,
	         hx.p != NULL ? hx.p : "");
	if (HMAC(EVP_sha256(), k->secret, (int)k->secretlen,
	         (const unsigned char *)sts, strlen(sts), md, &mdlen) == NULL)
		goto bad;
	for (i = 0; i < mdlen; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	if (!gw_ct_equal(want, 64, sig, 64))
		goto bad;
	xpid = emu_param_get(r->envp, "HTTP_X_PROJECT_ID", NULL);
	if (!principal_has_project(k, pid) ||
	    (xpid != NULL && strcmp(xpid, pid) != 0)) {
		emu_answer_err(a, EE_DENIED, NULL);
		goto out;
	}
	rc = 0;
	goto out;
bad:
	emu_answer_err(a, EE_AKSK, NULL);
out:
	gw_buf_reset(&c);
	gw_buf_reset(&hx);
	return rc;
}

/*
 * Step 2 for tokens IAM issued: unknown is not ours (0), expired or
 * revoked is 401, another project is 403.  1: accepted.  -1: answered.
 */
int
emu_issued_check(struct emu *e, const char *tok, const char *pid, size_t pidlen,
                 struct emu_answer *a)
{
	struct emu_token t;
	char detail[96];

	if (!issued_find(e, tok, &t))
		return 0;
	if (t.revoked) {
		emu_answer_err(a, EE_BAD_TOKEN, NULL);
		return -1;
	}
	if (gw_now_ms() >= t.expires_ms) {
		fmt_us(t.expires_ms, detail, sizeof(detail));
		emu_answer_err(a, EE_TOKEN_EXPIRED, detail);
		return -1;
	}
	if (strlen(t.project) != pidlen ||
	    memcmp(t.project, pid, pidlen) != 0) {
		emu_answer_err(a, EE_DENIED, NULL);
		return -1;
	}
	return 1;
}

/* POST /_emulator/revoke {"token_fp": "<16 hex>"} or {"all": true}. */
void
emu_handle_revoke(struct emu *e, struct emu_req *r, struct emu_answer *a)
{
	static const struct emu_key keys[] = {
	    {"token_fp", json_type_string, 0},
	    {"all", json_type_boolean, 0},
	};
	struct json_object *root = NULL, *v = NULL;
	const char *fp = NULL;
	char err[256];
	long long n = 0;
	size_t i;
	int all = 0;

	root = emu_json_parse_strict(r->body.p != NULL ? r->body.p : "",
	                             r->body.len, err, sizeof(err));
	if (root == NULL || emu_keys_check(root, keys, NELEM(keys), "revoke",
	                                   err, sizeof(err)) == -1) {
		emu_answer_err(a, EE_CONTROL, root == NULL ? "not JSON" : err);
		goto out;
	}
	if (json_object_object_get_ex(root, "token_fp", &v))
		fp = json_object_get_string(v);
	if (json_object_object_get_ex(root, "all", &v))
		all = json_object_get_boolean(v);
	if ((fp == NULL) == !all) {
		emu_answer_err(a, EE_CONTROL, "give token_fp or \"all\": true");
		goto out;
	}
	pthread_mutex_lock(&e->iamlock);
	for (i = 0; i < e->nissued; i++)
		if (!e->issued[i].revoked &&
		    (all || strcmp(e->issued[i].fp, fp) == 0)) {
			e->issued[i].revoked = 1;
			n++;
		}
	pthread_mutex_unlock(&e->iamlock);
	snprintf(err, sizeof(err), "{\"revoked\": %lld}", n);
	a->raw = gw_strdup(err);
	a->kind = a->raw != NULL ? ANS_RAW : ANS_ERROR;
	a->status = a->raw != NULL ? 200 : 500;
out:
	json_object_put(root);
}

/* GET /_emulator/iam-calls: {"iam_calls": N, "tokens_issued": M}. */
void
emu_handle_iam_calls(struct emu *e, struct emu_answer *a)
{
	char buf[128];

	pthread_mutex_lock(&e->iamlock);
	snprintf(buf, sizeof(buf),
	         "{\"iam_calls\": %lld, \"tokens_issued\": %zu}", e->iam_calls,
	         e->nissued);
	pthread_mutex_unlock(&e->iamlock);
	a->raw = gw_strdup(buf);
	a->kind = a->raw != NULL ? ANS_RAW : ANS_ERROR;
	a->status = a->raw != NULL ? 200 : 500;
}
