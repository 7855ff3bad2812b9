/*
 * SDK-HMAC-SHA256 request signing (hss-api-notes.md section 5; the Go SDK's
 * core/auth/signer/signer.go is the reference implementation, and its two
 * test vectors are unit tests in tests/unit/lib/test_aksk.c).
 *
 *   CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n
 *                      CanonicalHeaders \n SignedHeaders \n hex(SHA256(body))
 *   StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n
 *                      hex(SHA256(CanonicalRequest))
 *   Signature        = hex(HMAC-SHA256(SK, StringToSign))
 *
 * The path and the query are decoded and re-encoded here (RFC 3986
 * unreserved characters kept, everything else %XX with upper-case hex), so
 * what is signed does not depend on how the URL was escaped.  This module
 * owns nothing: every call borrows its inputs and frees what it made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "aksk.h"

#define AKSK_ALG "SDK-HMAC-SHA256"
/* Caps: a canonical request is a few hundred bytes for HSS. */
#define AKSK_CANON_MAX   (64 * 1024)
#define AKSK_PARAMS_MAX  64
#define AKSK_HEADERS_MAX 16
#define AKSK_SIGNED_MAX  256
#define AKSK_AUTH_MAX    1024

/* One decoded query parameter (request lifetime, owned by the caller). */
struct qparam {
	char *key;
	char *val;
};

/*
 * Decodes %XX escapes of s[0..len) into a new NUL-terminated string; with
 * form set, '+' is a space (query strings, as the server parses them).
 * NULL on a malformed escape, an encoded NUL or no memory.
 */
static char *
pct_decode(const char *s, size_t len, int form)
{
	size_t n = 0;
	char *d = gw_pct_decode(s, len, form, &n);

	if (d != NULL && strlen(d) != n) {
		free(d);
		return NULL;
	}
	return d;
}

/* Appends s percent-encoded (upper-case hex); 0 or -1. */
static int
pct_encode(struct gw_buf *b, const char *s)
{
	return gw_pct_encode(b, s, strlen(s));
}

/*
 * Canonical URI: every segment decoded and re-encoded, always ending in
 * "/" (the slash exists only in the canonical form, never in the URL).
 */
static int
canon_uri(struct gw_buf *b, const char *path)
{
	const char *seg, *end;
	char *dec = NULL;
	int rc = -1;

	if (path == NULL || path[0] != '/')
		goto out;
	seg = path + 1;
	for (;;) {
		end = strchr(seg, '/');
		if (end == NULL)
			end = seg + strlen(seg);
		dec = pct_decode(seg, (size_t)(end - seg), 0);
		if (dec == NULL || gw_buf_add(b, "/", 1) == -1 ||
		    pct_encode(b, dec) == -1)
			goto out;
		free(dec);
		dec = NULL;
		if (*end == '\0')
			break;
		seg = end + 1;
	}
	if (b->len == 0 || b->p[b->len - 1] != '/')
		if (gw_buf_add(b, "/", 1) == -1)
			goto out;
	rc = 0;
out:
	free(dec);
	return rc;
}

static int
qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : strcmp(x->val, y->val);
}

/* Splits, decodes and counts the query; 0 or -1 (bad escape, cap, memory). */
static int
parse_query(const char *q, struct qparam *ps, size_t *n)
{
	const char *p = q, *amp, *eq;

	*n = 0;
	while (p != NULL && *p != '\0') {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = p + strlen(p);
		if (amp > p) {
			if (*n == AKSK_PARAMS_MAX)
				return -1;
			eq = memchr(p, '=', (size_t)(amp - p));
			if (eq == NULL)
				eq = amp;
			ps[*n].key = pct_decode(p, (size_t)(eq - p), 1);
			ps[*n].val =
			    eq < amp
			        ? pct_decode(eq + 1, (size_t)(amp - eq - 1), 1)
			        : strdup("");
			(*n)++;
			if (ps[*n - 1].key == NULL || ps[*n - 1].val == NULL)
				return -1;
		}
		p = *amp == '&' ? amp + 1 : NULL;
	}
	return 0;
}

/* Canonical query: sorted by key then value, "k=v" joined by "&". */
static int
canon_query(struct gw_buf *b, const char *q)
{
	struct qparam ps[AKSK_PARAMS_MAX];
	size_t n = 0, i;
	int rc = -1;

	memset(ps, 0, sizeof(ps));
	if (parse_query(q, ps, &n) == -1)
		goto out;
	qsort(ps, n, sizeof(ps[0]), qparam_cmp);
	for (i = 0; i < n; i++)
		if ((i > 0 && gw_buf_add(b, "&", 1) == -1) ||
		    pct_encode(b, ps[i].key) == -1 ||
		    gw_buf_add(b, "=", 1) == -1 ||
		    pct_encode(b, ps[i].val) == -1)
			goto out;
	rc = 0;
out:
	for (i = 0; i < AKSK_PARAMS_MAX; i++) {
		free(ps[i].key);
		free(ps[i].val);
	}
	return rc;
}

static int
hdr_cmp(const void *a, const void *b)
{
	const struct gw_header *const *x = a, *const *y = b;

	return strcasecmp((*x)->name, (*y)->name);
}

/* Appends s lower-cased; 0 or -1. */
static int
add_lower(struct gw_buf *b, const char *s)
{
	char c;

	for (; *s != '\0'; s++) {
		c = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
		if (gw_buf_add(b, &c, 1) == -1)
			return -1;
	}
	return 0;
}

/*
 * Canonical headers ("name:trimmed value\n" each, sorted by lower-case
 * name) into b and the signed-header list into sh.  Duplicate names are
 * refused: the server would see one of them, we cannot know which.
 */
static int
canon_headers(struct gw_buf *b, const struct gw_aksk_msg *m, struct gw_buf *sh)
{
	const struct gw_header *hs[AKSK_HEADERS_MAX];
	const char *v;
	size_t i, vlen;

	if (m->nheaders == 0 || m->nheaders > AKSK_HEADERS_MAX)
		return -1;
	for (i = 0; i < m->nheaders; i++) {
		if (m->headers[i].name == NULL || m->headers[i].value == NULL)
			return -1;
		hs[i] = &m->headers[i];
	}
	qsort(hs, m->nheaders, sizeof(const struct gw_header *), hdr_cmp);
	for (i = 0; i < m->nheaders; i++) {
		if (i > 0 && strcasecmp(hs[i - 1]->name, hs[i]->name) == 0)
			return -1;
		v = hs[i]->value;
		while (*v == ' ' || *v == '\t')
			v++;
		vlen = strlen(v);
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (add_lower(b, hs[i]->name) == -1 ||
		    gw_buf_add(b, ":", 1) == -1 ||
		    gw_buf_add(b, v, vlen) == -1 ||
		    gw_buf_add(b, "\n", 1) == -1)
			return -1;
		if ((i > 0 && gw_buf_add(sh, ";", 1) == -1) ||
		    add_lower(sh, hs[i]->name) == -1)
			return -1;
	}
	return 0;
}

static void
hex_encode(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static void
sha256_hex(const void *d, size_t n, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(d, n, md);
	hex_encode(md, sizeof(md), out);
}

int
gw_aksk_canonical(const struct gw_aksk_msg *m, struct gw_buf *out,
                  char *signed_hdrs, size_t cap)
{
	struct gw_buf sh;
	char hash[65];
	int rc = -1;

	gw_buf_init(&sh, AKSK_SIGNED_MAX);
	if (m == NULL || m->method == NULL || cap == 0)
		goto out;
	if (gw_buf_puts(out, m->method) == -1 ||
	    gw_buf_add(out, "\n", 1) == -1 || canon_uri(out, m->path) == -1 ||
	    gw_buf_add(out, "\n", 1) == -1 ||
	    canon_query(out, m->query) == -1 ||
	    gw_buf_add(out, "\n", 1) == -1 ||
	    canon_headers(out, m, &sh) == -1 ||
	    gw_buf_add(out, "\n", 1) == -1 ||
	    gw_buf_add(out, sh.p, sh.len) == -1 ||
	    gw_buf_add(out, "\n", 1) == -1)
		goto out;
	sha256_hex(m->body != NULL ? m->body : "", m->body ? m->bodylen : 0,
	           hash);
	if (gw_buf_puts(out, hash) == -1 || sh.len >= cap)
		goto out;
	memcpy(signed_hdrs, sh.p, sh.len + 1);
	rc = 0;
out:
	gw_buf_reset(&sh);
	return rc;
}

int
gw_aksk_signature(const struct gw_aksk_msg *m, const char *sdk_date,
                  const void *sk, size_t sklen, char *signed_hdrs, size_t cap,
                  char sig[GW_AKSK_SIG_LEN])
{
	struct gw_buf canon, sts;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hash[65];
	int rc = -1;

	gw_buf_init(&canon, AKSK_CANON_MAX);
	gw_buf_init(&sts, 256);
	if (sdk_date == NULL || sk == NULL || sklen == 0 || sklen > INT32_MAX)
		goto out;
	if (gw_aksk_canonical(m, &canon, signed_hdrs, cap) == -1)
		goto out;
	sha256_hex(canon.p, canon.len, hash);
	if (gw_buf_printf(&sts, "%s\n%s\n%s", AKSK_ALG, sdk_date, hash) == -1)
		goto out;
	/* No derived-key chain, unlike SigV4: the SK itself is the key. */
	if (HMAC(EVP_sha256(), sk, (int)sklen, (const unsigned char *)sts.p,
	         sts.len, md, &mdlen) == NULL ||
	    mdlen != SHA256_DIGEST_LENGTH)
		goto out;
	hex_encode(md, mdlen, sig);
	rc = 0;
out:
	gw_wipe(md, sizeof(md));
	gw_buf_reset(&canon);
	gw_buf_reset(&sts);
	return rc;
}

int
gw_aksk_date(int64_t now_ms, char out[GW_AKSK_DATE_LEN])
{
	struct tm tm;
	time_t t;

	if (now_ms < 0)
		return -1;
	t = (time_t)(now_ms / 1000);
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, GW_AKSK_DATE_LEN, "%Y%m%dT%H%M%SZ", &tm) !=
	        GW_AKSK_DATE_LEN - 1)
		return -1;
	return 0;
}

/*
 * Splits an absolute URL into host[:port] (the default port dropped, as
 * curl sends Host), path and query, each into its own capped buffer.
 */
static int
split_url(const char *url, struct gw_buf *host, struct gw_buf *path,
          struct gw_buf *query)
{
	const char *a, *p, *q;
	size_t alen;

	if (strncmp(url, "https://", 8) == 0)
		a = url + 8;
	else
		return -1; /* upstream sends https only */
	if (strchr(url, '#') != NULL)
		return -1;
	p = a + strcspn(a, "/?");
	alen = (size_t)(p - a);
	if (alen == 0 || memchr(a, '@', alen) != NULL)
		return -1;
	if (alen > 4 && memcmp(a + alen - 4, ":443", 4) == 0)
		alen -= 4;
	if (gw_buf_add(host, a, alen) == -1)
		return -1;
	q = strchr(p, '?');
	if (q == NULL)
		q = p + strlen(p);
	if (q == p) {
		if (gw_buf_puts(path, "/") == -1)
			return -1;
	} else if (gw_buf_add(path, p, (size_t)(q - p)) == -1) {
		return -1;
	}
	if (*q == '?' && gw_buf_puts(query, q + 1) == -1)
		return -1;
	return 0;
}

/* Headers the signer covers when the request carries them. */
static const char *const aksk_signed_opt[] = {"region", "X-Project-Id",
                                              "X-Security-Token"};

int
gw_aksk_sign(struct gw_upreq *req, const char *ak, const void *sk, size_t sklen,
             const char *project_id, int64_t now_ms, char *err, size_t errlen)
{
	struct gw_header
	    hs[2 + sizeof(aksk_signed_opt) / sizeof(aksk_signed_opt[0])];
	struct gw_buf host, path, query, auth;
	struct gw_aksk_msg m;
	char date[GW_AKSK_DATE_LEN], sig[GW_AKSK_SIG_LEN];
	char signed_hdrs[AKSK_SIGNED_MAX];
	const char *v;
	size_t i, n = 0;
	int rc = -1;

	gw_buf_init(&host, 1024);
	gw_buf_init(&path, 8192);
	gw_buf_init(&query, 8192);
	gw_buf_init(&auth, AKSK_AUTH_MAX);
	memset(sig, 0, sizeof(sig));
	if (req == NULL || req->url == NULL || ak == NULL || ak[0] == '\0') {
		snprintf(err, errlen, "aksk: nothing to sign");
		goto out;
	}
	if (split_url(req->url, &host, &path, &query) == -1 || host.p == NULL ||
	    path.p == NULL) {
		snprintf(err, errlen, "aksk: upstream URL not signable");
		goto out;
	}
	if (gw_aksk_date(now_ms, date) == -1 ||
	    gw_upreq_set_header(req, "X-Sdk-Date", date, 0) == -1 ||
	    (project_id != NULL &&
	     gw_upreq_set_header(req, "X-Project-Id", project_id, 0) == -1)) {
		snprintf(err, errlen, "aksk: could not add headers");
		goto out;
	}
	hs[n].name = (char *)"host";
	hs[n++].value = host.p;
	hs[n].name = (char *)"x-sdk-date";
	hs[n++].value = date;
	for (i = 0; i < sizeof(aksk_signed_opt) / sizeof(aksk_signed_opt[0]);
	     i++) {
		v = gw_upreq_header(req, aksk_signed_opt[i]);
		if (v == NULL)
			continue;
		hs[n].name = (char *)aksk_signed_opt[i];
		hs[n++].value = (char *)v;
	}
	memset(&m, 0, sizeof(m));
	m.method = req->method;
	m.path = path.p;
	m.query = query.p;
	m.headers = hs;
	m.nheaders = n;
	m.body = req->body;
	m.bodylen = req->body != NULL ? req->bodylen : 0;
	if (gw_aksk_signature(&m, date, sk, sklen, signed_hdrs,
	                      sizeof(signed_hdrs), sig) == -1) {
		snprintf(err, errlen, "aksk: request could not be signed");
		goto out;
	}
	if (gw_buf_printf(&auth, "%s Access=%s, SignedHeaders=%s, Signature=%s",
	                  AKSK_ALG, ak, signed_hdrs, sig) == -1 ||
	    gw_upreq_set_header(req, "Authorization", auth.p, 1) == -1) {
		snprintf(err, errlen, "aksk: could not add Authorization");
		goto out;
	}
	rc = 0;
out:
	gw_wipe(sig, sizeof(sig));
	gw_buf_reset(&auth);
	gw_buf_reset(&host);
	gw_buf_reset(&path);
	gw_buf_reset(&query);
	return rc;
}
