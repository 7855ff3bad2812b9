/*
 * The emulator's server side: reads a FastCGI request, routes it to the
 * API it names (emu_handle), writes the answer and records the request as
 * one JSON line.  Also the strict JSON helpers and request helpers every
 * API shares, and the error table behind emu_answer_err.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "emu.h"

const char emu_export_prefix[sizeof(EMU_EXPORT_PREFIX)] = EMU_EXPORT_PREFIX;

static const char export_suffix[] = "/image/baseline/export";
static const char ctl_prefix[] = "/_emulator/";
static const char drop_location[] = "/_emulator/drop";
static const char malformed_body[] = "{\"record_total_num\": ";
static const char json_type_hdr[] = "application/json;charset=UTF-8";

/*
 * Codes and messages from the reference (hss-api-notes.md 3.4, 3.5).  A
 * wrong method gets APIG's "The API does not exist." (the APIG error-code
 * page answers that case with 404; the brief asks for 405 and Allow).
 * HSS.0010 for a project the token does not cover is the emulator's
 * choice: the reference does not say what HSS answers there.
 */
static const struct emu_errdef errtab[EE__MAX] = {
    [EE_NOT_FOUND] = {404, "APIGW.0101",
                      "The API does not exist or has not been published in the "
                      "environment"},
    [EE_METHOD] = {405, "APIGW.0101", "The API does not exist."},
    [EE_NO_TOKEN] =
        {401, "APIGW.0301",
         "Incorrect IAM authentication information: x-auth-token not "
         "found"},
    [EE_BAD_TOKEN] =
        {401, "APIGW.0301",
         "Incorrect IAM authentication information: decrypt token fail"},
    [EE_TOKEN_EXPIRED] =
        {401, "APIGW.0301",
         "Incorrect IAM authentication information: token expires, "
         "expires_at"},
    [EE_AKSK] = {401, "APIGW.0301",
                 "Incorrect IAM authentication information: verify aksk "
                 "signature fail"},
    [EE_DENIED] = {403, "HSS.0010", "access denied"},
    [EE_PARAM] = {400, "HSS.0001", "invalid parameter"},
    [EE_PARSE] = {400, "HSS.0002", "failed to parse request"},
    [EE_TOO_LARGE] = {413, "APIGW.0201", "Request entity too large"},
    [EE_CONTROL] = {400, "EMU.0001", "invalid control request"},
    [EE_INTERNAL] = {500, "EMU.0500", "emulator internal error"},
};

_Static_assert(sizeof(errtab) / sizeof(errtab[0]) == EE__MAX,
               "every emu_err needs a row");

static const struct {
	int status;
	const char *text;
} reasontab[] = {
    {200, "OK"},
    {201, "Created"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {413, "Content Too Large"},
    {415, "Unsupported Media Type"},
    {429, "Too Many Requests"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

void
emu_answer_err(struct emu_answer *a, enum emu_err err, const char *detail)
{
	const struct emu_errdef *d = &errtab[err];

	a->kind = ANS_ERROR;
	a->status = d->status;
	snprintf(a->code, sizeof(a->code), "%s", d->code);
	if (detail != NULL)
		snprintf(a->msg, sizeof(a->msg), "%s: %s", d->msg, detail);
	else
		snprintf(a->msg, sizeof(a->msg), "%s", d->msg);
	a->allow = NULL;
}

const char *
emu_reason(int status)
{
	size_t i;

	for (i = 0; i < NELEM(reasontab); i++)
		if (reasontab[i].status == status)
			return reasontab[i].text;
	return "Error";
}

/* ---- JSON helpers ---- */

/* Bytes of the UTF-8 sequence a lead byte announces, 0 if none. */
static size_t
utf8_seqlen(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return 2;
	if (c >= 0xe0 && c <= 0xef)
		return 3;
	if (c >= 0xf0 && c <= 0xf4)
		return 4;
	return 0;
}

/*
 * A JSON string of arbitrary bytes: valid UTF-8 as is, otherwise each
 * invalid byte becomes U+FFFD so the record stays valid JSON.
 */
static struct json_object *
jtext(const char *p, size_t n)
{
	struct json_object *o = NULL;
	struct gw_buf b;
	size_t i = 0, k;

	gw_buf_init(&b, n * 3 + 1);
	if (n > INT_MAX / 3)
		goto out;
	if (gw_utf8_valid(p, n)) {
		o = json_object_new_string_len(p, (int)n);
		goto out;
	}
	while (i < n) {
		k = utf8_seqlen((unsigned char)p[i]);
		if (k > 0 && n - i >= k && gw_utf8_valid(p + i, k)) {
			gw_buf_add(&b, p + i, k);
			i += k;
		} else {
			gw_buf_add(&b, "\xef\xbf\xbd", 3);
			i++;
		}
	}
	if (b.overflow || b.p == NULL)
		goto out;
	o = json_object_new_string_len(b.p, (int)b.len);
out:
	gw_buf_reset(&b);
	return o;
}

/*
 * Parses exactly one JSON value from p[0..n): strict RFC 8259 syntax,
 * UTF-8, nothing but whitespace after it.  NULL with a reason otherwise.
 */
struct json_object *
emu_json_parse_strict(const char *p, size_t n, char *err, size_t errlen)
{
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL, *res = NULL;
	enum json_tokener_error jerr;
	size_t end;

	if (n > INT_MAX || memchr(p, '\0', n) != NULL) {
		snprintf(err, errlen, "not a JSON text");
		goto out;
	}
	tok = json_tokener_new();
	if (tok == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	                                JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, p, (int)n);
	jerr = json_tokener_get_error(tok);
	if (obj == NULL || jerr != json_tokener_success) {
		snprintf(err, errlen, "invalid JSON: %s",
		         jerr == json_tokener_continue
		             ? "unexpected end of input"
		             : json_tokener_error_desc(jerr));
		goto out;
	}
	for (end = json_tokener_get_parse_end(tok); end < n; end++) {
		if (strchr(" \t\r\n", p[end]) == NULL) {
			snprintf(err, errlen, "invalid JSON: trailing data");
			goto out;
		}
	}
	res = obj;
	obj = NULL;
out:
	json_object_put(obj);
	if (tok != NULL)
		json_tokener_free(tok);
	return res;
}

/* Checks an object against a key table: no unknown keys, right types. */
int
emu_keys_check(struct json_object *obj, const struct emu_key *keys,
               size_t nkeys, const char *where, char *err, size_t errlen)
{
	struct json_object_iterator it, end;
	struct json_object *v = NULL;
	const char *name = NULL;
	size_t i;

	if (!json_object_is_type(obj, json_type_object)) {
		snprintf(err, errlen, "%s: must be an object", where);
		return -1;
	}
	it = json_object_iter_begin(obj);
	end = json_object_iter_end(obj);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		name = json_object_iter_peek_name(&it);
		for (i = 0; i < nkeys; i++)
			if (strcmp(name, keys[i].name) == 0)
				break;
		if (i == nkeys) {
			snprintf(err, errlen, "%s: unknown key \"%.64s\"",
			         where, name);
			return -1;
		}
	}
	for (i = 0; i < nkeys; i++) {
		if (!json_object_object_get_ex(obj, keys[i].name, &v)) {
			if (keys[i].required) {
				snprintf(err, errlen, "%s: \"%s\" is required",
				         where, keys[i].name);
				return -1;
			}
			continue;
		}
		if (!json_object_is_type(v, keys[i].type)) {
			snprintf(err, errlen, "%s: \"%s\" must be %s", where,
			         keys[i].name, json_type_to_name(keys[i].type));
			return -1;
		}
	}
	return 0;
}

/*
 * Reads an integer key already type-checked by emu_keys_check.  Returns 1 if
 * present and in [min, max], 0 if absent, -1 if out of range.
 */
int
emu_int_key(struct json_object *obj, const char *name, long long min,
            long long max, long long *out, char *err, size_t errlen)
{
	struct json_object *v = NULL;
	int64_t x;

	if (!json_object_object_get_ex(obj, name, &v))
		return 0;
	/* json-c saturates to INT64_MAX past the range: still rejected. */
	x = json_object_get_int64(v);
	if (x < min || x > max) {
		snprintf(err, errlen, "\"%s\" must be %lld to %lld", name, min,
		         max);
		return -1;
	}
	*out = x;
	return 1;
}

/* ---- request helpers ---- */

/* First value of a FastCGI param and how many times it was sent. */
const char *
emu_param_get(char **envp, const char *name, size_t *count)
{
	const char *first = NULL;
	size_t n = strlen(name), c = 0;

	for (; envp != NULL && *envp != NULL; envp++) {
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=') {
			if (first == NULL)
				first = *envp + n + 1;
			c++;
		}
	}
	if (count != NULL)
		*count = c;
	return first;
}

/* Splits /v5/{project_id}/image/baseline/export; 1 if the shape fits. */
static int
export_path(const char *path, const char **pid, size_t *pidlen)
{
	size_t plen = strlen(path), pre = sizeof(emu_export_prefix) - 1,
	       suf = sizeof(export_suffix) - 1;
	const char *p;

	if (plen <= pre + suf || strncmp(path, emu_export_prefix, pre) != 0 ||
	    strcmp(path + plen - suf, export_suffix) != 0)
		return 0;
	p = path + pre;
	if (memchr(p, '/', plen - pre - suf) != NULL)
		return 0;
	*pid = p;
	*pidlen = plen - pre - suf;
	return 1;
}

/* application/json, any case, parameters allowed (RFC 9110 8.3.1). */
int
emu_media_is_json(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;
	const char *p;

	if (ct == NULL || strncasecmp(ct, want, n) != 0)
		return 0;
	for (p = ct + n; *p == ' ' || *p == '\t'; p++)
		;
	return *p == '\0' || *p == ';';
}

/*
 * Looks the token up in every project without an early exit, so timing
 * does not tell which token or project matched; lengths may still leak
 * (gw_ct_equal).  *known: any project has it; *mine: project pidx has it.
 */
void
emu_token_scan(const struct emu_conf *c, const char *tok, size_t len, long pidx,
               int *known, int *mine)
{
	size_t i, j;
	int k = 0, m = 0, eq;

	for (i = 0; i < c->nprojects; i++) {
		for (j = 0; j < c->projects[i].ntokens; j++) {
			eq = gw_ct_equal(tok, len, c->projects[i].tokens[j],
			                 c->projects[i].toklens[j]);
			k |= eq;
			m |= eq & ((long)i == pidx);
		}
	}
	*known = k;
	*mine = m;
}

long
emu_project_find(const struct emu_conf *c, const char *pid, size_t len)
{
	size_t i;

	if (len < 1 || len > EMU_PID_MAX)
		return -1;
	for (i = 0; i < c->nprojects; i++)
		if (strlen(c->projects[i].id) == len &&
		    memcmp(c->projects[i].id, pid, len) == 0)
			return (long)i;
	return -1;
}

/* ---- recording ---- */

/* Adds one header to the record, joining repeats with ", " (RFC 9110). */
static int
header_add(struct json_object *h, const char *name, const char *value)
{
	struct json_object *old = NULL, *v = NULL;
	struct gw_buf b;
	int rc = -1;

	gw_buf_init(&b, EMU_HDR_BYTES);
	if (json_object_object_get_ex(h, name, &old)) {
		if (gw_buf_puts(&b, json_object_get_string(old)) == -1 ||
		    gw_buf_puts(&b, ", ") == -1 || gw_buf_puts(&b, value) == -1)
			goto out;
		v = jtext(b.p, b.len);
	} else
		v = jtext(value, strlen(value));
	if (v == NULL)
		goto out;
	rc = json_object_object_add(h, name, v);
out:
	gw_buf_reset(&b);
	return rc;
}

static struct json_object *
record_headers(char **envp, int *truncated)
{
	struct json_object *h = json_object_new_object();
	const char *eq;
	char name[EMU_HDR_NAME_MAX];
	size_t n, i, count = 0, bytes = 0;

	if (h == NULL)
		return NULL;
	for (; envp != NULL && *envp != NULL; envp++) {
		if (strncmp(*envp, "HTTP_", 5) != 0)
			continue;
		eq = strchr(*envp, '=');
		if (eq == NULL)
			continue;
		n = (size_t)(eq - *envp) - 5;
		bytes += strlen(eq);
		if (n == 0 || n >= sizeof(name) || count >= EMU_HDR_MAX ||
		    bytes > EMU_HDR_BYTES) {
			*truncated = 1;
			continue;
		}
		/* nginx: X-Auth-Token -> HTTP_X_AUTH_TOKEN; undo it. */
		for (i = 0; i < n; i++) {
			name[i] = (*envp)[5 + i];
			if (name[i] == '_')
				name[i] = '-';
			else if (name[i] >= 'A' && name[i] <= 'Z')
				name[i] = (char)(name[i] - 'A' + 'a');
		}
		name[n] = '\0';
		if (header_add(h, name, eq + 1) == 0)
			count++;
	}
	return h;
}

/*
 * Appends one JSON line for a request, in one write(2) under the log
 * mutex on an O_APPEND descriptor, so lines never interleave.
 */
static void
record(struct emu *e, const struct emu_req *r, int status)
{
	struct json_object *o = NULL, *h = NULL;
	const char *text, *ct;
	static const char redacted[] = "<IAM request body not recorded>";
	const char *bp = r->body.p != NULL ? r->body.p : "";
	size_t blen = r->body.len;
	char *line = NULL, *hex = NULL;
	static const char digits[] = "0123456789abcdef";
	size_t len = 0, off = 0, i;
	ssize_t n;
	int htrunc = 0, utf8;

	o = json_object_new_object();
	if (o == NULL)
		goto fail;
	h = record_headers(r->envp, &htrunc);
	if (h == NULL)
		goto fail;
	ct = emu_param_get(r->envp, "CONTENT_TYPE", NULL);
	/*
	 * CONTENT_TYPE is authoritative over HTTP_CONTENT_TYPE; nginx sends
	 * it empty when the request had none.
	 */
	if (ct != NULL && *ct != '\0')
		json_object_object_add(h, "content-type",
		                       jtext(ct, strlen(ct)));
	json_object_object_add(o, "time_ms",
	                       json_object_new_int64(gw_now_ms()));
	json_object_object_add(o, "method",
	                       jtext(r->method, strlen(r->method)));
	json_object_object_add(o, "path", jtext(r->path, strlen(r->path)));
	json_object_object_add(o, "query", jtext(r->query, strlen(r->query)));
	json_object_object_add(o, "headers", h);
	h = NULL;
	if (r->redact_body) {
		bp = redacted;
		blen = sizeof(redacted) - 1;
	}
	json_object_object_add(o, "body", jtext(bp, blen));
	utf8 = gw_utf8_valid(bp, blen);
	if (!utf8) {
		hex = malloc(blen * 2 + 1);
		if (hex == NULL)
			goto fail;
		for (i = 0; i < blen; i++) {
			hex[2 * i] = digits[(unsigned char)bp[i] >> 4];
			hex[2 * i + 1] = digits[(unsigned char)bp[i] & 15];
		}
		hex[2 * blen] = '\0';
		json_object_object_add(o, "body_hex",
		                       json_object_new_string(hex));
	}
	if (r->body_over)
		json_object_object_add(o, "body_truncated",
		                       json_object_new_boolean(1));
	if (htrunc)
		json_object_object_add(o, "headers_truncated",
		                       json_object_new_boolean(1));
	json_object_object_add(o, "status", json_object_new_int(status));
	text = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (text == NULL)
		goto fail;
	line = malloc(len + 1);
	if (line == NULL)
		goto fail;
	memcpy(line, text, len);
	line[len++] = '\n';
	pthread_mutex_lock(&e->loglock);
	while (off < len) {
		n = write(e->logfd, line + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	pthread_mutex_unlock(&e->loglock);
	if (off < len)
		goto fail;
	goto out;
fail:
	fprintf(stderr, "hss-emulator: could not record request %s\n",
	        r->reqid);
out:
	free(line);
	free(hex);
	json_object_put(h);
	json_object_put(o);
}

/* ---- answering ---- */

static void
respond(FCGX_Request *fr, const struct emu_answer *a, const char *reqid,
        const struct emu_conf *c)
{
	struct json_object *o = NULL;
	struct gw_buf h;
	const char *body = NULL;
	char task[33];
	size_t blen = 0;

	gw_buf_init(&h, 4096);
	switch (a->kind) {
	case ANS_ERROR:
		o = json_object_new_object();
		if (o == NULL)
			break;
		json_object_object_add(o, "error_code",
		                       json_object_new_string(a->code));
		json_object_object_add(o, "error_msg",
		                       jtext(a->msg, strlen(a->msg)));
		json_object_object_add(o, "request_id",
		                       json_object_new_string(reqid));
		break;
	case ANS_SUCCESS:
		if (a->task[0] != '\0')
			snprintf(task, sizeof(task), "%s", a->task);
		else if (gw_random_hex(task, 16) == -1)
			snprintf(task, sizeof(task), "%s", reqid);
		o = json_object_new_object();
		if (o == NULL)
			break;
		json_object_object_add(
		    o, "record_total_num",
		    json_object_new_int64(c->record_total_num));
		json_object_object_add(o, "task_id",
		                       json_object_new_string(task));
		break;
	case ANS_MALFORMED:
		body = malformed_body;
		blen = sizeof(malformed_body) - 1;
		break;
	case ANS_RAW:
		body = a->raw;
		blen = strlen(a->raw);
		break;
	case ANS_DROP:
	case ANS_FILE:
		break;
	}
	if (o != NULL)
		body = json_object_to_json_string_length(
		    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		    &blen);
	if (a->kind == ANS_DROP) {
		/* nginx maps the location to "return 444": no answer. */
		gw_buf_printf(&h,
		              "Status: 200 OK\r\nX-Accel-Redirect: %s\r\n"
		              "X-Request-Id: %s\r\n\r\n",
		              drop_location, reqid);
	} else if (body == NULL) {
		gw_buf_printf(&h,
		              "Status: 500 Internal Server Error\r\n"
		              "Content-Length: 0\r\nX-Request-Id: %s\r\n\r\n",
		              reqid);
	} else {
		gw_buf_printf(&h,
		              "Status: %d %s\r\nContent-Type: %s\r\n"
		              "Content-Length: %zu\r\nX-Request-Id: %s\r\n",
		              a->status, emu_reason(a->status), json_type_hdr,
		              blen, reqid);
		if (a->allow != NULL)
			gw_buf_printf(&h, "Allow: %s\r\n", a->allow);
		if (a->retry_after > 0)
			gw_buf_printf(&h, "Retry-After: %lld\r\n",
			              a->retry_after);
		if (a->subject_token != NULL)
			gw_buf_printf(&h, "X-Subject-Token: %s\r\n",
			              a->subject_token);
		gw_buf_puts(&h, "\r\n");
	}
	if (h.p != NULL && !h.overflow)
		FCGX_PutStr(h.p, (int)h.len, fr->out);
	if (body != NULL && a->kind != ANS_DROP)
		FCGX_PutStr(body, (int)blen, fr->out);
	gw_buf_reset(&h);
	json_object_put(o);
}

void
emu_sleep_ms(long long ms)
{
	struct timespec ts, rem;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &rem) == -1 && errno == EINTR)
		ts = rem;
}

/*
 * Reads the whole body: keeps up to EMU_BODY_MAX bytes, drains the rest
 * (so nginx is never left writing into a closed pipe) up to a hard limit.
 */
static void
read_body(FCGX_Stream *in, struct emu_req *r)
{
	char chunk[16384];
	size_t total = 0, room;
	int n;

	for (;;) {
		n = FCGX_GetStr(chunk, (int)sizeof(chunk), in);
		if (n <= 0)
			break;
		total += (size_t)n;
		if (!r->body_over) {
			room = EMU_BODY_MAX - r->body.len;
			if ((size_t)n > room) {
				gw_buf_add(&r->body, chunk, room);
				r->body_over = 1;
			} else if (gw_buf_add(&r->body, chunk, (size_t)n) == -1)
				r->body_over = 1;
		}
		if (total > EMU_DRAIN_MAX)
			break;
	}
}

void
emu_handle(struct emu *e, FCGX_Request *fr)
{
	struct emu_req r;
	struct emu_answer a;
	const char *doc, *script, *info, *pid = NULL, *tid = NULL;
	size_t pidlen = 0;
	int n, api;

	memset(&r, 0, sizeof(r));
	memset(&a, 0, sizeof(a));
	gw_buf_init(&r.body, EMU_BODY_MAX);
	if (gw_random_hex(r.reqid, 16) == -1)
		snprintf(r.reqid, sizeof(r.reqid), "%032d", 0);
	r.envp = fr->envp;
	r.method = emu_param_get(r.envp, "REQUEST_METHOD", NULL);
	if (r.method == NULL)
		r.method = "";
	r.query = emu_param_get(r.envp, "QUERY_STRING", NULL);
	if (r.query == NULL)
		r.query = "";
	doc = emu_param_get(r.envp, "DOCUMENT_URI", NULL);
	script = emu_param_get(r.envp, "SCRIPT_NAME", NULL);
	info = emu_param_get(r.envp, "PATH_INFO", NULL);
	if (doc != NULL && *doc != '\0')
		n = snprintf(r.path, sizeof(r.path), "%s", doc);
	else
		n = snprintf(r.path, sizeof(r.path), "%s%s",
		             script != NULL ? script : "",
		             info != NULL ? info : "");
	r.path_over = n < 0 || (size_t)n >= sizeof(r.path);
	read_body(fr->in, &r);

	if (strncmp(r.path, ctl_prefix, sizeof(ctl_prefix) - 1) == 0) {
		/* Control requests are not recorded. */
		emu_handle_control(e, &r, &a);
		respond(fr, &a, r.reqid, e->conf);
		goto out;
	}
	if (!r.path_over && export_path(r.path, &pid, &pidlen)) {
		emu_handle_export(e, &r, pid, pidlen, &a);
	} else if (!r.path_over &&
	           (api = emu_task_path(r.path, &pid, &pidlen, &tid)) >= 0) {
		emu_handle_task(e, &r, api, pid, pidlen, tid, &a);
	} else if (strcmp(r.path, "/v3/auth/tokens") == 0) {
		r.redact_body = 1;
		emu_handle_iam(e, &r, &a);
	} else {
		emu_answer_err(&a, EE_NOT_FOUND, NULL);
	}
	record(e, &r, a.kind == ANS_DROP ? EMU_DROP_STATUS : a.status);
	if (a.delay_ms > 0)
		emu_sleep_ms(a.delay_ms);
	if (a.kind == ANS_FILE)
		emu_respond_file(fr, &a.file, r.reqid);
	else
		respond(fr, &a, r.reqid, e->conf);
out:
	free(a.raw);
	free(a.subject_token);
	gw_buf_reset(&r.body);
}
