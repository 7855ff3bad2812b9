/*
 * Upstream: sends one gw_upreq to HSS with libcurl and hands back a capped
 * gw_upresp.  The only file that includes <curl/curl.h>.  A gw_upstream is
 * worker-lifetime state: one easy handle kept for the worker's life so
 * connections and TLS sessions are reused (curl_easy_reset keeps "live
 * connections, the Session ID cache, the DNS cache", curl_easy_reset(3)),
 * except by a POST, which always gets a connection of its own so that
 * libcurl never resends it (see up_methods).
 * Everything else is request-lifetime and freed before gw_up_send returns.
 * Rules: https only, TLS always verified, redirects never followed, no
 * proxy from the environment, responses capped, only three response
 * headers kept (X-Subject-Token, IAM's token, as a secret wiped on reset). This
 * module must never log or copy header values (the credential is one) and never
 * put a URL or a header value into a fault.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "upstream.h"

/* CURLOPT_PROTOCOLS_STR arrived in 7.85.0; we build against 7.88. */
#define UP_CURL_MIN 0x075500
/* Caps on the response headers we keep. */
#define UP_HDR_VALUE_MAX 256
/* IAM's X-Subject-Token: HSS accepts X-Auth-Token up to 32768 characters. */
#define UP_SUBJECT_TOKEN_MAX 32768
/* Timeouts accepted from the config, in milliseconds. */
#define UP_TIMEOUT_MAX 600000

struct gw_upstream {
	CURL *curl;
};

/* Response headers kept: everything else is dropped on the floor. */
enum up_hdr {
	UP_HDR_CONTENT_TYPE,
	UP_HDR_REQUEST_ID,
	UP_HDR_RETRY_AFTER,
	UP_HDR_CACHE_CONTROL,
	UP_HDR__MAX
};

static const char *const up_hdr_names[] = {
    [UP_HDR_CONTENT_TYPE] = "Content-Type",
    [UP_HDR_REQUEST_ID] = "X-Request-Id",
    [UP_HDR_RETRY_AFTER] = "Retry-After",
    [UP_HDR_CACHE_CONTROL] = "Cache-Control",
};
_Static_assert(sizeof(up_hdr_names) / sizeof(up_hdr_names[0]) == UP_HDR__MAX,
               "every kept header needs a name");

/* Request lifetime: what the callbacks fill during one transfer. */
struct up_xfer {
	struct gw_buf body;
	int too_large;
	int nomem;
	char hdr[UP_HDR__MAX][UP_HDR_VALUE_MAX];
	struct gw_buf subject; /* X-Subject-Token: secret, wiped */
	/* gw_up_stream only */
	CURL *curl;
	const struct gw_upsink *sink;
	int decided;   /* the status of the final response is known */
	int streaming; /* a 200: body goes to the sink */
	int sink_failed;
	long long streamed, max_stream;
};

/*
 * libcurl failures as client-safe faults.  Codes not listed are a dropped
 * or failed transfer (GW_ERR_UPSTREAM).  Messages name the kind of failure
 * only: no URL, host, certificate subject or header value.
 */
static const struct {
	CURLcode code;
	enum gw_err err;
	const char *msg;
} up_errs[] = {
    {CURLE_OPERATION_TIMEDOUT, GW_ERR_UPSTREAM_TIMEOUT,
     "upstream did not answer in time"},
    {CURLE_UNSUPPORTED_PROTOCOL, GW_ERR_UPSTREAM,
     "upstream URL scheme not allowed (https only)"},
    {CURLE_URL_MALFORMAT, GW_ERR_UPSTREAM, "upstream URL malformed"},
    {CURLE_COULDNT_RESOLVE_HOST, GW_ERR_UPSTREAM, "upstream host not found"},
    {CURLE_COULDNT_CONNECT, GW_ERR_UPSTREAM, "upstream refused connection"},
    {CURLE_PEER_FAILED_VERIFICATION, GW_ERR_UPSTREAM,
     "TLS verification failed"},
    {CURLE_SSL_CACERT_BADFILE, GW_ERR_UPSTREAM, "TLS CA file unusable"},
    {CURLE_SSL_CERTPROBLEM, GW_ERR_UPSTREAM, "TLS verification failed"},
    {CURLE_SSL_ISSUER_ERROR, GW_ERR_UPSTREAM, "TLS verification failed"},
    {CURLE_SSL_PINNEDPUBKEYNOTMATCH, GW_ERR_UPSTREAM,
     "TLS verification failed"},
    {CURLE_SSL_INVALIDCERTSTATUS, GW_ERR_UPSTREAM, "TLS verification failed"},
    {CURLE_SSL_CONNECT_ERROR, GW_ERR_UPSTREAM, "TLS handshake failed"},
    {CURLE_SSL_CIPHER, GW_ERR_UPSTREAM, "TLS handshake failed"},
    {CURLE_GOT_NOTHING, GW_ERR_UPSTREAM, "connection dropped"},
    {CURLE_RECV_ERROR, GW_ERR_UPSTREAM, "connection dropped"},
    {CURLE_SEND_ERROR, GW_ERR_UPSTREAM, "connection dropped"},
    {CURLE_PARTIAL_FILE, GW_ERR_UPSTREAM, "connection dropped"},
    {CURLE_HTTP2, GW_ERR_UPSTREAM, "connection dropped"},
    {CURLE_HTTP2_STREAM, GW_ERR_UPSTREAM, "connection dropped"},
    {CURLE_WEIRD_SERVER_REPLY, GW_ERR_UPSTREAM_BAD,
     "upstream answered malformed HTTP"},
    {CURLE_BAD_CONTENT_ENCODING, GW_ERR_UPSTREAM_BAD,
     "upstream answered malformed HTTP"},
    {CURLE_FILESIZE_EXCEEDED, GW_ERR_UPSTREAM_BAD, "response too large"},
    {CURLE_OUT_OF_MEMORY, GW_ERR_NOMEM, "out of memory"},
};

/*
 * Methods we send, whether they carry a body and whether they may ride a
 * kept-alive connection.  libcurl silently resends a request when a
 * reused connection dies before any answer byte (Curl_retry_request:
 * "conn->bits.reuse" and nothing received), so a POST that HSS did
 * receive on a connection it then dropped reached HSS twice (issue #11
 * item 5).  CURLOPT_FORBID_RETRY_ON_REUSE only arrived in libcurl
 * 8.16.0 (Debian 12 has 7.88), so a non-idempotent request gets a
 * connection of its own instead (CURLOPT_FRESH_CONNECT, which is never
 * a reuse, so never retried; CURLOPT_FORBID_REUSE, so it is not parked
 * for the next request either).  Exports are 5 a minute: the extra
 * handshake costs nothing.  GETs keep reusing connections.
 */
static const struct {
	const char *name;
	int body;
	int fresh;
} up_methods[] = {
    {"GET", 0, 0},
    {"POST", 1, 1},
    {"PUT", 1, 0},
    {"DELETE", 0, 0},
};

int
gw_up_global_init(void)
{
	const curl_version_info_data *v = NULL;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	v = curl_version_info(CURLVERSION_NOW);
	/* No TLS or too old for the _STR protocol options: refuse to run. */
	if (v == NULL || v->version_num < UP_CURL_MIN ||
	    (v->features & CURL_VERSION_SSL) == 0)
		return -1;
	return 0;
}

struct gw_upstream *
gw_up_new(void)
{
	struct gw_upstream *u = NULL;

	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return NULL;
	u->curl = curl_easy_init();
	if (u->curl == NULL) {
		free(u);
		return NULL;
	}
	return u;
}

void
gw_up_free(struct gw_upstream *u)
{
	if (u == NULL)
		return;
	curl_easy_cleanup(u->curl);
	free(u);
}

void
gw_upresp_reset(struct gw_upresp *r)
{
	if (r == NULL)
		return;
	free(r->body);
	free(r->content_type);
	free(r->request_id);
	gw_secret_free(r->subject_token);
	memset(r, 0, sizeof(*r));
}

/* First body byte of the final response: stream it if it is a 200. */
static int
decide(struct up_xfer *x)
{
	curl_off_t cl = -1;
	long status = 0;

	x->decided = 1;
	if (curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status) !=
	        CURLE_OK ||
	    status != 200)
		return 0;
	if (curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
	                      &cl) != CURLE_OK)
		cl = -1;
	if (cl > x->max_stream) {
		x->too_large = 1;
		return -1;
	}
	x->streaming = 1;
	if (x->sink->head(x->sink->arg,
	                  x->hdr[UP_HDR_CONTENT_TYPE][0] != '\0'
	                      ? x->hdr[UP_HDR_CONTENT_TYPE]
	                      : NULL,
	                  (long long)cl) == -1) {
		x->sink_failed = 1;
		return -1;
	}
	return 0;
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct up_xfer *x = arg;
	size_t len = size * n; /* curl guarantees size == 1 */

	if (x->sink != NULL && !x->decided && decide(x) == -1)
		return 0;
	if (x->streaming && x->sink != NULL) {
		if ((long long)len > x->max_stream - x->streamed) {
			x->too_large = 1;
			return 0;
		}
		x->streamed += (long long)len;
		if (x->sink->chunk(x->sink->arg, data, len) == -1) {
			x->sink_failed = 1;
			return 0;
		}
		return len;
	}

	/* Checked here: gw_buf's overflow flag also means "realloc failed". */
	if (len > x->body.max - x->body.len) {
		x->too_large = 1;
		return 0; /* aborts with CURLE_WRITE_ERROR */
	}
	if (gw_buf_add(&x->body, data, len) == -1) {
		x->nomem = 1;
		return 0;
	}
	return len;
}

/* Visible ASCII and inner spaces only: what we hand back must be loggable. */
static int
hdr_value_ok(const char *v, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			return 0;
	return 1;
}

/*
 * Called once per header line, CRLF included.  A status line starts a new
 * response (after a 1xx), so what was kept so far is forgotten.  Values
 * over UP_HDR_VALUE_MAX or with odd bytes are dropped, not truncated.
 */
static size_t
on_header(char *line, size_t size, size_t n, void *arg)
{
	struct up_xfer *x = arg;
	size_t len = size * n, nlen, vlen, i;
	const char *colon = NULL, *v = NULL;

	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		memset(x->hdr, 0, sizeof(x->hdr));
		gw_buf_reset(&x->subject);
		return len;
	}
	colon = memchr(line, ':', len);
	if (colon == NULL)
		return len;
	nlen = (size_t)(colon - line);
	v = colon + 1;
	vlen = len - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
	                    v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (nlen == 15 && strncasecmp(line, "X-Subject-Token", nlen) == 0) {
		/* Kept whole or not at all; a second one replaces the first. */
		gw_buf_reset(&x->subject);
		if (vlen > 0 && vlen <= UP_SUBJECT_TOKEN_MAX &&
		    hdr_value_ok(v, vlen) && memchr(v, ' ', vlen) == NULL &&
		    gw_buf_add(&x->subject, v, vlen) == -1)
			gw_buf_reset(&x->subject);
		return len;
	}
	for (i = 0; i < UP_HDR__MAX; i++) {
		if (strlen(up_hdr_names[i]) != nlen ||
		    strncasecmp(line, up_hdr_names[i], nlen) != 0)
			continue;
		if (vlen == 0 || vlen >= UP_HDR_VALUE_MAX ||
		    !hdr_value_ok(v, vlen))
			break;
		memcpy(x->hdr[i], v, vlen);
		x->hdr[i][vlen] = '\0';
		break;
	}
	return len;
}

/* A field name is an RFC 9110 token; a value holds no CR, LF or NUL. */
static int
header_ok(const struct gw_header *h)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";
	const unsigned char *p;

	if (h->name == NULL || h->value == NULL || h->name[0] == '\0')
		return 0;
	for (p = (const unsigned char *)h->name; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z') || strchr(tchar, *p) != NULL))
			return 0;
	for (p = (const unsigned char *)h->value; *p != '\0'; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return 0;
	return 1;
}

/*
 * Wipes and frees a header list.  curl_slist_append copies each string, so
 * the secret value also lives in the list; wipe that copy too.
 */
static void
slist_free_wiped(struct curl_slist *l)
{
	struct curl_slist *p;

	for (p = l; p != NULL; p = p->next)
		if (p->data != NULL)
			gw_wipe(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* Appends "Name: value" (or "Name:" to suppress a curl default); 0 or -1. */
static int
slist_add(struct curl_slist **l, const char *name, const char *value)
{
	struct curl_slist *nl = NULL;
	char *line = NULL;
	size_t len;
	int rc = -1;

	len = strlen(name) + 2 + (value ? strlen(value) : 0) + 1;
	line = malloc(len);
	if (line == NULL)
		goto out;
	if (value != NULL)
		snprintf(line, len, "%s: %s", name, value);
	else
		snprintf(line, len, "%s:", name);
	nl = curl_slist_append(*l, line);
	if (nl == NULL)
		goto out;
	*l = nl;
	rc = 0;
out:
	if (line != NULL) {
		gw_wipe(line, len);
		free(line);
	}
	return rc;
}

/* Builds the header list of req; GW_OK or a fault. */
static enum gw_err
build_headers(const struct gw_upreq *req, int body, struct curl_slist **out,
              struct gw_fault *f)
{
	struct curl_slist *l = NULL;
	enum gw_err err = GW_ERR_NOMEM;
	size_t i;

	for (i = 0; i < req->nheaders; i++) {
		if (!header_ok(&req->headers[i])) {
			err = gw_fault_set(
			    f, GW_ERR_INTERNAL, "",
			    "upstream request header %zu is malformed", i);
			goto out;
		}
		if (slist_add(&l, req->headers[i].name,
		              req->headers[i].value) == -1)
			goto out;
	}
	/* No "Expect: 100-continue" round trip (RFC 9110 10.1.1). */
	if (slist_add(&l, "Expect", NULL) == -1)
		goto out;
	/* Never let curl invent a form content type for a JSON body. */
	if (body && gw_upreq_header(req, "Content-Type") == NULL &&
	    slist_add(&l, "Content-Type", NULL) == -1)
		goto out;
	*out = l;
	l = NULL;
	err = GW_OK;
out:
	slist_free_wiped(l);
	if (err == GW_ERR_NOMEM)
		gw_fault_set(f, err, "", "out of memory");
	return err;
}

static int
timeout_ok(long long ms)
{
	return ms >= 1 && ms <= UP_TIMEOUT_MAX;
}

/* Per-request options that take a long: the fixed security posture. */
static const struct {
	CURLoption opt;
	long val;
} up_longopts[] = {
    {CURLOPT_FOLLOWLOCATION, 0L}, /* a 3xx goes back to the caller */
    {CURLOPT_SSL_VERIFYPEER, 1L},
    {CURLOPT_SSL_VERIFYHOST, 2L},
    {CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2},
    /* One request per handle at a time: HTTP/1.1 keep-alive is enough. */
    {CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1},
    {CURLOPT_NOSIGNAL, 1L}, /* threads: no SIGALRM for DNS timeouts */
    {CURLOPT_TCP_KEEPALIVE, 1L},
    {CURLOPT_VERBOSE, 0L}, /* never: it prints header values */
};

/* Sets every per-request option; GW_OK or a fault. */
static enum gw_err
set_options(CURL *c, const struct gw_config *conf, const struct gw_upreq *req,
            int body, struct curl_slist *hdrs, struct up_xfer *x,
            long long timeout_ms, long long maxfile, struct gw_fault *f)
{
	size_t i;
	int bad = 0;

	for (i = 0; i < sizeof(up_longopts) / sizeof(up_longopts[0]); i++)
		bad |= curl_easy_setopt(c, up_longopts[i].opt,
		                        up_longopts[i].val) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_URL, req->url) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https") !=
	       CURLE_OK;
	/* No proxy from https_proxy and friends: the config says where. */
	bad |= curl_easy_setopt(c, CURLOPT_PROXY, "") != CURLE_OK;
	if (conf->up_ca_file != NULL) {
		/* A configured CA is the only trust anchor. */
		bad |= curl_easy_setopt(c, CURLOPT_CAINFO, conf->up_ca_file) !=
		       CURLE_OK;
		bad |= curl_easy_setopt(c, CURLOPT_CAPATH, NULL) != CURLE_OK;
	}
	bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
	                        (long)conf->up_connect_timeout_ms) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms) !=
	       CURLE_OK;
	/* Refuse early what announces its size; on_body caps the rest. */
	bad |= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
	                        (curl_off_t)maxfile) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, x) != CURLE_OK;
	bad |=
	    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
	bad |= curl_easy_setopt(c, CURLOPT_HEADERDATA, x) != CURLE_OK;
	if (strcmp(req->method, "GET") == 0)
		bad |= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) != CURLE_OK;
	else if (strcmp(req->method, "POST") != 0)
		bad |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
		                        req->method) != CURLE_OK;
	if (body) {
		/* POSTFIELDS borrows req->body: it outlives the transfer. */
		bad |=
		    curl_easy_setopt(
		        c, CURLOPT_POSTFIELDSIZE_LARGE,
		        (curl_off_t)(req->body ? req->bodylen : 0)) != CURLE_OK;
		bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDS,
		                        req->body ? req->body : "") != CURLE_OK;
	}
	if (bad)
		return gw_fault_set(f, GW_ERR_INTERNAL, "",
		                    "upstream client setup failed");
	return GW_OK;
}

static enum gw_err
map_curl_error(CURLcode rc, const struct up_xfer *x, struct gw_fault *f)
{
	size_t i;

	if (rc == CURLE_WRITE_ERROR && x->sink_failed)
		return gw_fault_set(f, GW_ERR_UPSTREAM, "",
		                    "download aborted: the caller went away");

	if (rc == CURLE_WRITE_ERROR && x->too_large)
		return gw_fault_set(f, GW_ERR_UPSTREAM_BAD, "",
		                    "response too large");
	if (rc == CURLE_WRITE_ERROR && x->nomem)
		return gw_fault_set(f, GW_ERR_NOMEM, "", "out of memory");
	for (i = 0; i < sizeof(up_errs) / sizeof(up_errs[0]); i++)
		if (up_errs[i].code == rc)
			return gw_fault_set(f, up_errs[i].err, "", "%s",
			                    up_errs[i].msg);
	return gw_fault_set(f, GW_ERR_UPSTREAM, "", "upstream request failed");
}

/*
 * Cache-Control's max-age (RFC 9111 5.2.2.1) in seconds: -1 when absent
 * or unusable, 0 for no-cache or no-store (the caller clamps it).
 */
static long long
max_age(const char *cc)
{
	const char *p = cc;
	char num[24];
	size_t n;
	long long v = -1;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncasecmp(p, "no-cache", 8) == 0 ||
		    strncasecmp(p, "no-store", 8) == 0)
			return 0;
		if (strncasecmp(p, "max-age=", 8) == 0) {
			n = strspn(p + 8, "0123456789");
			if (n > 0 && n < sizeof(num)) {
				memcpy(num, p + 8, n);
				num[n] = '\0';
				if (gw_strtonum(num, 0, 1LL << 40, &v) == -1)
					v = -1;
			}
		}
		p = strchr(p, ',');
	}
	return v;
}

/* Moves the body and kept headers of x into r; 0 or -1 (r half-filled). */
static int
take_response(struct up_xfer *x, struct gw_upresp *r)
{
	r->body = gw_buf_take(&x->body, &r->bodylen);
	if (r->body == NULL)
		return -1;
	if (x->hdr[UP_HDR_CONTENT_TYPE][0] != '\0') {
		r->content_type = strdup(x->hdr[UP_HDR_CONTENT_TYPE]);
		if (r->content_type == NULL)
			return -1;
	}
	if (x->hdr[UP_HDR_REQUEST_ID][0] != '\0') {
		r->request_id = strdup(x->hdr[UP_HDR_REQUEST_ID]);
		if (r->request_id == NULL)
			return -1;
	}
	/* delay-seconds only (RFC 9110 10.2.3); an HTTP-date is ignored. */
	if (x->hdr[UP_HDR_RETRY_AFTER][0] != '\0' &&
	    gw_strtonum(x->hdr[UP_HDR_RETRY_AFTER], 1, GW_UP_RETRY_AFTER_MAX,
	                &r->retry_after_s) == -1)
		r->retry_after_s = 0;
	r->max_age_s = max_age(x->hdr[UP_HDR_CACHE_CONTROL]);
	if (x->subject.len > 0) {
		r->subject_token = gw_buf_take(&x->subject, NULL);
		if (r->subject_token == NULL)
			return -1;
	}
	return 0;
}

/* The row of up_methods for method, or -1 when we do not send it. */
static int
method_row(const char *method)
{
	size_t i;

	for (i = 0; i < sizeof(up_methods) / sizeof(up_methods[0]); i++)
		if (strcmp(up_methods[i].name, method) == 0)
			return (int)i;
	return -1;
}

/* One transfer; a sink gets a 200 body (max_stream, timeout_ms). */
static enum gw_err
transfer(struct gw_upstream *u, const struct gw_config *conf,
         const struct gw_upreq *req, const struct gw_upsink *sink,
         long long max_stream, long long timeout_ms, struct gw_upresp *resp,
         struct gw_fault *f)
{
	struct curl_slist *hdrs = NULL;
	struct up_xfer *x = NULL;
	struct gw_upresp r = {0};
	enum gw_err err = GW_ERR_INTERNAL;
	CURLcode rc;
	int body, row;

	memset(resp, 0, sizeof(*resp));
	if (u == NULL || conf == NULL || req == NULL || req->url == NULL) {
		err = gw_fault_set(f, GW_ERR_INTERNAL, "",
		                   "upstream called without a request");
		goto out;
	}
	row = method_row(req->method);
	if (row == -1) {
		err = gw_fault_set(f, GW_ERR_INTERNAL, "",
		                   "upstream method not supported");
		goto out;
	}
	body = up_methods[row].body;
	if (!timeout_ok(conf->up_connect_timeout_ms) ||
	    !timeout_ok(conf->up_timeout_ms) ||
	    conf->up_max_response_bytes < 1 ||
	    (unsigned long long)conf->up_max_response_bytes >= SIZE_MAX) {
		err = gw_fault_set(f, GW_ERR_CONFIG, "",
		                   "upstream limits out of range");
		goto out;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		err = gw_fault_set(f, GW_ERR_NOMEM, "", "out of memory");
		goto out;
	}
	gw_buf_init(&x->body, (size_t)conf->up_max_response_bytes);
	gw_buf_init(&x->subject, UP_SUBJECT_TOKEN_MAX);
	err = build_headers(req, body, &hdrs, f);
	if (err != GW_OK)
		goto out;
	curl_easy_reset(u->curl);
	x->curl = u->curl;
	x->sink = sink;
	x->max_stream = max_stream;
	err = set_options(
	    u->curl, conf, req, body, hdrs, x, timeout_ms,
	    sink != NULL ? max_stream : conf->up_max_response_bytes, f);
	if (err != GW_OK)
		goto out;
	if (up_methods[row].fresh &&
	    (curl_easy_setopt(u->curl, CURLOPT_FRESH_CONNECT, 1L) != CURLE_OK ||
	     curl_easy_setopt(u->curl, CURLOPT_FORBID_REUSE, 1L) != CURLE_OK)) {
		err = gw_fault_set(f, GW_ERR_INTERNAL, "",
		                   "upstream client setup failed");
		goto out;
	}
	rc = curl_easy_perform(u->curl);
	if (rc != CURLE_OK) {
		err = map_curl_error(rc, x, f);
		goto out;
	}
	if (curl_easy_getinfo(u->curl, CURLINFO_RESPONSE_CODE, &r.status) !=
	    CURLE_OK) {
		err = gw_fault_set(f, GW_ERR_UPSTREAM_BAD, "",
		                   "upstream status unknown");
		goto out;
	}
	/* An empty 200 never reached on_body: the sink still gets a head. */
	if (sink != NULL && !x->decided && r.status == 200 && decide(x) == -1) {
		err = map_curl_error(CURLE_WRITE_ERROR, x, f);
		goto out;
	}
	r.streamed = x->streaming;
	if (take_response(x, &r) == -1) {
		err = gw_fault_set(f, GW_ERR_NOMEM, "", "out of memory");
		goto out;
	}
	*resp = r;
	memset(&r, 0, sizeof(r));
	err = GW_OK;
out:
	if (u != NULL && u->curl != NULL) {
		/* Drop our pointers (list, buffers) from the kept handle. */
		curl_easy_setopt(u->curl, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(u->curl, CURLOPT_POSTFIELDS, NULL);
	}
	slist_free_wiped(hdrs);
	if (x != NULL) {
		gw_buf_reset(&x->body);
		gw_buf_reset(&x->subject);
		free(x);
	}
	gw_upresp_reset(&r);
	return err;
}

enum gw_err
gw_up_send(struct gw_upstream *u, const struct gw_config *conf,
           const struct gw_upreq *req, struct gw_upresp *resp,
           struct gw_fault *f)
{
	return transfer(u, conf, req, NULL, 0,
	                conf != NULL ? conf->up_timeout_ms : 0, resp, f);
}

enum gw_err
gw_up_stream(struct gw_upstream *u, const struct gw_config *conf,
             const struct gw_upreq *req, const struct gw_upsink *sink,
             long long max_bytes, long long timeout_ms, struct gw_upresp *resp,
             struct gw_fault *f)
{
	if (sink == NULL || sink->head == NULL || sink->chunk == NULL ||
	    max_bytes < 0 || !timeout_ok(timeout_ms)) {
		memset(resp, 0, sizeof(*resp));
		return gw_fault_set(f, GW_ERR_INTERNAL, "",
		                    "upstream stream called without a sink");
	}
	return transfer(u, conf, req, sink, max_bytes, timeout_ms, resp, f);
}

/* A GET with its own CA, timeouts and cap; see upstream.h. */
enum gw_err
gw_up_get(struct gw_upstream *u, const struct gw_upget *g,
          struct gw_upresp *resp, struct gw_fault *f)
{
	struct gw_config conf;
	struct gw_upreq req;

	memset(resp, 0, sizeof(*resp));
	resp->max_age_s = -1;
	if (g == NULL || g->url == NULL)
		return gw_fault_set(f, GW_ERR_INTERNAL, "",
		                    "upstream GET called without a URL");
	/* transfer() reads only these settings from the config. */
	memset(&conf, 0, sizeof(conf));
	conf.up_ca_file = (char *)(uintptr_t)g->ca_file;
	conf.up_connect_timeout_ms = g->connect_timeout_ms;
	conf.up_timeout_ms = g->timeout_ms;
	conf.up_max_response_bytes = g->max_bytes;
	memset(&req, 0, sizeof(req));
	memcpy(req.method, "GET", 4);
	req.url = (char *)(uintptr_t)g->url;
	return transfer(u, &conf, &req, NULL, 0, g->timeout_ms, resp, f);
}
