/*
 * hss-emulator: a strict stand-in for Huawei Cloud HSS
 * POST /v5/{project_id}/image/baseline/export and for IAM's
 * POST /v3/auth/tokens, served over FastCGI behind nginx (TLS) for the
 * integration tests.  HSS requests authenticate with a configured or
 * IAM-issued X-Auth-Token, or an SDK-HMAC-SHA256 signature.  It checks every
 * request the way the real service does (/work/shared/reference: the API page
 * and the SDK notes), records each request it receives as one JSON line, and
 * misbehaves on demand through /_emulator/control.
 *
 * It owns the config (immutable after load, shared read-only by the
 * workers), the record file and the failure-injection state (one mutex).
 * It must never crash or exit on any request input, and never be deployed
 * in front of real credentials: it records tokens in full on purpose, so
 * the tests can assert exactly what hssgw sent.
 *
 * docs/EMULATOR.md lists every behaviour; keep the two in step.
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "gw.h"
#include "translate.h"

#define EMU_BODY_MAX ((size_t)1024 * 1024) /* brief: over 1 MiB -> 413 */
#define EMU_DRAIN_MAX                                                          \
	((size_t)64 * 1024 * 1024) /* read and drop past the cap */
#define EMU_CTL_BODY_MAX   4096
#define EMU_CONF_MAX       ((size_t)1024 * 1024)
#define EMU_PATH_MAX       8192
#define EMU_PID_MAX        256   /* API page, Table 1: 1 to 256 chars */
#define EMU_TOKEN_MAX      32768 /* API page, Table 3: 1 to 32,768 chars */
#define EMU_REGION_MAX     128   /* API page, Table 3: 1 to 128 chars */
#define EMU_RECORD_MAX     2147483647LL /* API page, Table 5 */
#define EMU_HDR_MAX        256
#define EMU_HDR_BYTES      ((size_t)256 * 1024)
#define EMU_HDR_NAME_MAX   256
#define EMU_THREADS_MAX    64
#define EMU_THREADS_DEF    4
#define EMU_PROJECTS_MAX   1024
#define EMU_TOKENS_MAX     1024
#define EMU_DELAY_MAX      300000LL
#define EMU_COUNT_MAX      1000000000LL
#define EMU_GRACE_MS       500
#define EMU_DROP_STATUS    444 /* what nginx's "return 444" gives */
#define EMU_PRINCIPALS_MAX 256
#define EMU_ISSUED_MAX     ((size_t)1 << 20)
#define EMU_TTL_DEF        86400LL /* hss-api-notes.md 4.1: 24 hours */
#define EMU_TTL_MAX        86400LL
#define EMU_SDK_WINDOW_MS  (15 * 60 * 1000LL) /* 5: 15 minutes */
#define EMU_TASKS_MAX      4096
#define EMU_LIMIT_MAX      600 /* hss-api-notes.md 6: 600 per API */

static const char export_prefix[] = "/v5/";
static const char export_suffix[] = "/image/baseline/export";
static const char ctl_prefix[] = "/_emulator/";
static const char drop_location[] = "/_emulator/drop";
static const char malformed_body[] = "{\"record_total_num\": ";
static const char json_type_hdr[] = "application/json;charset=UTF-8";

/* The emulator's own answers, in the order the export checks run. */
enum emu_err {
	EE_NOT_FOUND,
	EE_METHOD,
	EE_NO_TOKEN,
	EE_BAD_TOKEN,
	EE_TOKEN_EXPIRED,
	EE_AKSK,
	EE_DENIED,
	EE_PARAM,
	EE_PARSE,
	EE_TOO_LARGE,
	EE_CONTROL,
	EE_INTERNAL,
	EE__MAX
};

/*
 * Codes and messages from the reference (hss-api-notes.md 3.4, 3.5).  A
 * wrong method gets APIG's "The API does not exist." (the APIG error-code
 * page answers that case with 404; the brief asks for 405 and Allow).
 * HSS.0010 for a project the token does not cover is the emulator's
 * choice: the reference does not say what HSS answers there.
 */
static const struct emu_errdef {
	int status;
	const char *code;
	const char *msg;
} errtab[EE__MAX] = {
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

/* Bodies for mode "status"; other statuses get EMU.0<status>. */
static const struct emu_errdef injtab[] = {
    {400, "HSS.0001", "invalid parameter"},
    {401, "APIGW.0301",
     "Incorrect IAM authentication information: token expires"},
    {403, "APIGW.0302", "The IAM user is not authorized to access the API"},
    {404, "APIGW.0101",
     "The API does not exist or has not been published in the "
     "environment"},
    {413, "APIGW.0201", "Request entity too large"},
    {429, "APIGW.0308",
     "The throttling threshold has been reached: policy user over "
     "ratelimit,limit:5,time:1 minute"},
    {502, "APIGW.0202", "Backend unavailable"},
    {504, "APIGW.0203", "Backend timeout"},
};

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

enum emu_mode {
	MODE_OK = 0,
	MODE_DELAY,
	MODE_STATUS,
	MODE_MALFORMED,
	MODE_DROP,
	MODE__MAX
};

/* Which control keys each mode takes: 1 required, 0 refused. */
static const struct {
	const char *name;
	int delay_ms;
	int status;
	int count_ok;
} modetab[MODE__MAX] = {
    [MODE_OK] = {"ok", 0, 0, 0},
    [MODE_DELAY] = {"delay", 1, 0, 1},
    [MODE_STATUS] = {"status", 0, 1, 1},
    [MODE_MALFORMED] = {"malformed", 0, 0, 1},
    [MODE_DROP] = {"drop", 0, 0, 1},
};

_Static_assert(sizeof(modetab) / sizeof(modetab[0]) == MODE__MAX,
               "every mode needs a row");

/* A JSON object's allowed keys: unknown keys are errors. */
struct emu_key {
	const char *name;
	enum json_type type;
	int required;
};

static const struct emu_key conf_keys[] = {
    {"projects", json_type_array, 1},
    {"record_total_num", json_type_int, 0},
    {"iam", json_type_object, 0},
    {"aksk", json_type_array, 0},
};

static const struct emu_key iam_keys[] = {
    {"users", json_type_array, 1},
    {"agencies", json_type_array, 0},
    {"token_ttl_s", json_type_int, 0},
};

/*
 * Principals: IAM users, agencies and AK/SK pairs share one shape.  The
 * "name" field of a row is its name (user, agency, access key), "secret"
 * its password or secret key, "domain" its account.
 */
static const struct emu_principal_kind {
	const char *where;
	const char *name;
	const char *secret; /* NULL: none */
	const char *domain; /* NULL: none */
	struct emu_key keys[4];
} pkind_user = {"iam.users",
                "name",
                "password",
                "domain",
                {{"domain", json_type_string, 1},
                 {"name", json_type_string, 1},
                 {"password", json_type_string, 1},
                 {"projects", json_type_array, 1}}},
  pkind_agency = {"iam.agencies",
                  "name",
                  NULL,
                  "domain",
                  {{"domain", json_type_string, 1},
                   {"name", json_type_string, 1},
                   {"projects", json_type_array, 1},
                   {"projects", json_type_array, 1}}},
  pkind_aksk = {"aksk",
                "access_key",
                "secret_key",
                NULL,
                {{"access_key", json_type_string, 1},
                 {"secret_key", json_type_string, 1},
                 {"projects", json_type_array, 1},
                 {"projects", json_type_array, 1}}};

static const struct emu_key project_keys[] = {
    {"project_id", json_type_string, 1},
    {"tokens", json_type_array, 1},
};

static const struct emu_key control_keys[] = {
    {"mode", json_type_string, 1},     {"delay_ms", json_type_int, 0},
    {"status", json_type_int, 0},      {"count", json_type_int, 0},
    {"retry_after", json_type_int, 0},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Process lifetime: loaded once, read-only afterwards. */
struct emu_project {
	char *id;
	char **tokens;
	size_t *toklens;
	size_t ntokens;
};

struct emu_principal {
	char *name;
	char *domain; /* NULL for AK/SK */
	char *secret; /* NULL for agencies */
	size_t secretlen;
	char **projects;
	size_t nprojects;
};

struct emu_conf {
	struct emu_project *projects;
	size_t nprojects;
	long long record_total_num;
	struct emu_principal *users, *agencies, *aksks;
	size_t nusers, nagencies, naksks;
	long long token_ttl_s;
};

/* A token IAM issued; project "" for a domain-scoped token. */
struct emu_token {
	char tok[80];
	char fp[17]; /* gw_fingerprint, as hssgw's audit shows it */
	char project[EMU_PID_MAX + 1];
	char domain[129];
	long long issued_ms;
	long long expires_ms;
	int revoked;
};

/* The APIs the per-minute limit counts separately. */
enum emu_api { API_EXPORT, API_STATUS, API_FILE, API__MAX };

/* An export task; created by an accepted export. */
struct emu_task {
	char id[33];
	char file_id[33];
	char project[EMU_PID_MAX + 1];
	long long created_ms;
	long long delay_ms;
	long long file_bytes;
	int fail;
};

/* The last EMU_LIMIT_MAX calls of one API. */
struct emu_window {
	long long t[EMU_LIMIT_MAX];
};

/* The failure injection in force; remaining -1 means until changed. */
struct emu_inject {
	enum emu_mode mode;
	long long delay_ms;
	long long status;
	long long remaining;
	long long retry_after; /* mode status: Retry-After seconds, 0: none */
};

struct emu {
	const struct emu_conf *conf;
	int listenfd;
	int logfd;
	pthread_mutex_t loglock;
	/* failure injection and its counters */
	pthread_mutex_t lock;
	struct emu_inject inj;
	long long exports;  /* export requests taken (POST on the path) */
	long long injected; /* of those, served under a mode other than ok */
	/* lifecycle */
	pthread_mutex_t life;
	pthread_cond_t lifecv;
	int stopping;
	int alive;
	int busy;
	/* IAM: issued tokens and the call counter */
	pthread_mutex_t iamlock;
	struct emu_token *issued;
	size_t nissued, capissued;
	long long iam_calls;
	/* export tasks and the per-minute limit (tlock) */
	pthread_mutex_t tlock;
	struct emu_task *tasks;
	size_t ntasks;
	long long task_delay_ms, file_bytes, limit, throttled;
	int task_fail;
	long long calls[API__MAX];
	struct emu_window win[API__MAX];
};

/* Request lifetime. */
struct emu_req {
	char **envp;
	const char *method;
	const char *query;
	char path[EMU_PATH_MAX];
	int path_over;
	struct gw_buf body;
	int body_over;
	char reqid[33];
	int redact_body; /* IAM requests carry passwords: not recorded */
};

enum emu_kind {
	ANS_ERROR,
	ANS_SUCCESS,
	ANS_MALFORMED,
	ANS_DROP,
	ANS_RAW,
	ANS_FILE
};

struct emu_answer {
	enum emu_kind kind;
	int status;
	char code[32];
	char msg[512];
	const char *allow;     /* Allow header for 405 */
	long long retry_after; /* > 0: a Retry-After header */
	long long delay_ms;
	char *raw;            /* ANS_RAW body, owned */
	char *subject_token;  /* IAM: X-Subject-Token header, owned */
	char task[33];        /* ANS_SUCCESS: the task created */
	struct emu_task file; /* ANS_FILE: the file to stream */
};

static void
answer_err(struct emu_answer *a, enum emu_err err, const char *detail)
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

static void
answer_injected(struct emu_answer *a, int status)
{
	size_t i;

	a->kind = ANS_ERROR;
	a->status = status;
	for (i = 0; i < NELEM(injtab); i++) {
		if (injtab[i].status == status) {
			snprintf(a->code, sizeof(a->code), "%s",
			         injtab[i].code);
			snprintf(a->msg, sizeof(a->msg), "%s", injtab[i].msg);
			return;
		}
	}
	snprintf(a->code, sizeof(a->code), "EMU.0%d", status);
	snprintf(a->msg, sizeof(a->msg), "emulated failure: status %d", status);
}

static const char *
reason(int status)
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
static struct json_object *
json_parse_strict(const char *p, size_t n, char *err, size_t errlen)
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
static int
keys_check(struct json_object *obj, const struct emu_key *keys, size_t nkeys,
           const char *where, char *err, size_t errlen)
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
 * Reads an integer key already type-checked by keys_check.  Returns 1 if
 * present and in [min, max], 0 if absent, -1 if out of range.
 */
static int
int_key(struct json_object *obj, const char *name, long long min, long long max,
        long long *out, char *err, size_t errlen)
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

/* ---- configuration ---- */

static void
principals_free(struct emu_principal *p, size_t n)
{
	size_t i, j;

	for (i = 0; p != NULL && i < n; i++) {
		free(p[i].name);
		free(p[i].domain);
		gw_secret_free(p[i].secret);
		for (j = 0; j < p[i].nprojects; j++)
			free(p[i].projects[j]);
		free(p[i].projects);
	}
	free(p);
}

static void
conf_free(struct emu_conf *c)
{
	size_t i, j;

	if (c == NULL)
		return;
	for (i = 0; i < c->nprojects; i++) {
		free(c->projects[i].id);
		for (j = 0; j < c->projects[i].ntokens; j++)
			gw_secret_free(c->projects[i].tokens[j]);
		free(c->projects[i].tokens);
		free(c->projects[i].toklens);
	}
	free(c->projects);
	principals_free(c->users, c->nusers);
	principals_free(c->agencies, c->nagencies);
	principals_free(c->aksks, c->naksks);
	free(c);
}

/* Visible ASCII only: what can travel in a path segment or header. */
static int
visible_ascii(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

static int
conf_project(struct json_object *jp, size_t idx, struct emu_project *p,
             char *err, size_t errlen)
{
	struct json_object *v = NULL, *t = NULL;
	char where[64];
	const char *s = NULL;
	size_t i, n, len;

	snprintf(where, sizeof(where), "projects[%zu]", idx);
	if (keys_check(jp, project_keys, NELEM(project_keys), where, err,
	               errlen) == -1)
		return -1;
	json_object_object_get_ex(jp, "project_id", &v);
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len < 1 || len > EMU_PID_MAX || !visible_ascii(s, len) ||
	    strchr(s, '/') != NULL) {
		snprintf(
		    err, errlen,
		    "%s.project_id: 1 to %d visible ASCII characters, no '/'",
		    where, EMU_PID_MAX);
		return -1;
	}
	p->id = gw_strdup(s);
	json_object_object_get_ex(jp, "tokens", &v);
	n = json_object_array_length(v);
	if (n > EMU_TOKENS_MAX) {
		snprintf(err, errlen, "%s.tokens: at most %d", where,
		         EMU_TOKENS_MAX);
		return -1;
	}
	p->tokens = calloc(n ? n : 1, sizeof(*p->tokens));
	p->toklens = calloc(n ? n : 1, sizeof(*p->toklens));
	if (p->id == NULL || p->tokens == NULL || p->toklens == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		t = json_object_array_get_idx(v, i);
		if (!json_object_is_type(t, json_type_string)) {
			snprintf(err, errlen,
			         "%s.tokens[%zu]: must be a string", where, i);
			return -1;
		}
		s = json_object_get_string(t);
		len = (size_t)json_object_get_string_len(t);
		if (len < 1 || len > EMU_TOKEN_MAX || !visible_ascii(s, len)) {
			snprintf(
			    err, errlen,
			    "%s.tokens[%zu]: 1 to %d visible ASCII characters",
			    where, i, EMU_TOKEN_MAX);
			return -1;
		}
		p->tokens[i] = gw_strdup(s);
		if (p->tokens[i] == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		p->toklens[i] = len;
		p->ntokens++;
	}
	return 0;
}

/* Loads an array of principals of one kind; 0 or -1 with a reason. */
static int
conf_principals(struct json_object *arr, const struct emu_principal_kind *k,
                struct emu_principal **out, size_t *nout, char *err,
                size_t errlen)
{
	struct json_object *jp, *v, *pr;
	struct emu_principal *p;
	char where[64];
	size_t i, j, n = json_object_array_length(arr), len;
	const char *s;

	if (n > EMU_PRINCIPALS_MAX) {
		snprintf(err, errlen, "%s: at most %d", k->where,
		         EMU_PRINCIPALS_MAX);
		return -1;
	}
	*out = calloc(n ? n : 1, sizeof(**out));
	if (*out == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		p = &(*out)[i];
		(*nout)++;
		jp = json_object_array_get_idx(arr, i);
		snprintf(where, sizeof(where), "%s[%zu]", k->where, i);
		if (keys_check(jp, k->keys, NELEM(k->keys), where, err,
		               errlen) == -1)
			return -1;
		json_object_object_get_ex(jp, k->name, &v);
		p->name = gw_strdup(json_object_get_string(v));
		if (k->domain != NULL) {
			json_object_object_get_ex(jp, k->domain, &v);
			p->domain = gw_strdup(json_object_get_string(v));
		}
		if (k->secret != NULL) {
			json_object_object_get_ex(jp, k->secret, &v);
			p->secret = gw_strdup(json_object_get_string(v));
			p->secretlen = (size_t)json_object_get_string_len(v);
		}
		json_object_object_get_ex(jp, "projects", &pr);
		p->projects =
		    calloc(json_object_array_length(pr) + 1, sizeof(char *));
		if (p->name == NULL || p->projects == NULL ||
		    (k->domain != NULL && p->domain == NULL) ||
		    (k->secret != NULL && p->secret == NULL)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		for (j = 0; j < json_object_array_length(pr); j++) {
			v = json_object_array_get_idx(pr, j);
			s = json_object_get_string(v);
			len = json_object_is_type(v, json_type_string)
			          ? (size_t)json_object_get_string_len(v)
			          : 0;
			if (len < 1 || len > EMU_PID_MAX ||
			    !visible_ascii(s, len)) {
				snprintf(err, errlen,
				         "%s.projects[%zu]: 1 to %d visible "
				         "ASCII characters",
				         where, j, EMU_PID_MAX);
				return -1;
			}
			p->projects[j] = gw_strdup(s);
			if (p->projects[j] == NULL) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			p->nprojects++;
		}
	}
	return 0;
}

/* The optional "iam" and "aksk" sections; 0 or -1 with a reason. */
static int
conf_iam(struct json_object *root, struct emu_conf *c, char *err, size_t errlen)
{
	struct json_object *iam = NULL, *v = NULL;
	char jerr[256];

	c->token_ttl_s = EMU_TTL_DEF;
	if (json_object_object_get_ex(root, "aksk", &v) &&
	    conf_principals(v, &pkind_aksk, &c->aksks, &c->naksks, err,
	                    errlen) == -1)
		return -1;
	if (!json_object_object_get_ex(root, "iam", &iam))
		return 0;
	if (keys_check(iam, iam_keys, NELEM(iam_keys), "iam", err, errlen) ==
	    -1)
		return -1;
	if (int_key(iam, "token_ttl_s", 1, EMU_TTL_MAX, &c->token_ttl_s, jerr,
	            sizeof(jerr)) == -1) {
		snprintf(err, errlen, "iam: %s", jerr);
		return -1;
	}
	json_object_object_get_ex(iam, "users", &v);
	if (conf_principals(v, &pkind_user, &c->users, &c->nusers, err,
	                    errlen) == -1)
		return -1;
	if (json_object_object_get_ex(iam, "agencies", &v) &&
	    conf_principals(v, &pkind_agency, &c->agencies, &c->nagencies, err,
	                    errlen) == -1)
		return -1;
	return 0;
}

/* Loads the config; NULL with a reason naming the key on any error. */
static struct emu_conf *
conf_load(const char *path, char *err, size_t errlen)
{
	struct emu_conf *c = NULL, *res = NULL;
	struct json_object *root = NULL, *v = NULL;
	char *text = NULL, jerr[256];
	size_t len = 0, i, j, n;
	int rc;

	/*
	 * Not read as a secret file: these are throwaway test tokens, and
	 * the record file holds them in full anyway.
	 */
	if (gw_read_file(path, EMU_CONF_MAX, 0, &text, &len, err, errlen) == -1)
		goto out;
	root = json_parse_strict(text, len, jerr, sizeof(jerr));
	if (root == NULL) {
		snprintf(err, errlen, "%s: %s", path, jerr);
		goto out;
	}
	if (keys_check(root, conf_keys, NELEM(conf_keys), "config", err,
	               errlen) == -1)
		goto out;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	c->record_total_num = 1; /* the API page's example response */
	rc = int_key(root, "record_total_num", 0, EMU_RECORD_MAX,
	             &c->record_total_num, jerr, sizeof(jerr));
	if (rc == -1) {
		snprintf(err, errlen, "config: %s", jerr);
		goto out;
	}
	if (conf_iam(root, c, err, errlen) == -1)
		goto out;
	json_object_object_get_ex(root, "projects", &v);
	n = json_object_array_length(v);
	if (n < 1 || n > EMU_PROJECTS_MAX) {
		snprintf(err, errlen, "config: \"projects\" needs 1 to %d",
		         EMU_PROJECTS_MAX);
		goto out;
	}
	c->projects = calloc(n, sizeof(*c->projects));
	if (c->projects == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		c->nprojects++;
		if (conf_project(json_object_array_get_idx(v, i), i,
		                 &c->projects[i], err, errlen) == -1)
			goto out;
		for (j = 0; j < i; j++) {
			if (strcmp(c->projects[j].id, c->projects[i].id) == 0) {
				snprintf(err, errlen,
				         "projects[%zu].project_id: duplicate",
				         i);
				goto out;
			}
		}
	}
	res = c;
	c = NULL;
out:
	conf_free(c);
	json_object_put(root);
	if (text != NULL) {
		gw_wipe(text, len);
		free(text);
	}
	return res;
}

/* ---- failure injection state ---- */

static void
inject_reset(struct emu_inject *i)
{
	i->mode = MODE_OK;
	i->delay_ms = 0;
	i->status = 0;
	i->remaining = -1;
	i->retry_after = 0;
}

/* Takes the mode for one export request; counts it exactly. */
static void
inject_take(struct emu *e, struct emu_inject *out)
{
	pthread_mutex_lock(&e->lock);
	*out = e->inj;
	e->exports++;
	if (e->inj.mode != MODE_OK) {
		e->injected++;
		if (e->inj.remaining > 0)
			e->inj.remaining--;
		if (e->inj.remaining == 0)
			inject_reset(&e->inj);
	}
	pthread_mutex_unlock(&e->lock);
}

/* The control state as JSON text, owned by the caller; NULL on ENOMEM. */
static char *
state_json(struct emu *e)
{
	struct json_object *o = NULL;
	struct emu_inject inj;
	long long exports, injected;
	char *res = NULL;

	pthread_mutex_lock(&e->lock);
	inj = e->inj;
	exports = e->exports;
	injected = e->injected;
	pthread_mutex_unlock(&e->lock);

	o = json_object_new_object();
	if (o == NULL)
		goto out;
	json_object_object_add(o, "mode",
	                       json_object_new_string(modetab[inj.mode].name));
	json_object_object_add(o, "delay_ms",
	                       json_object_new_int64(inj.delay_ms));
	json_object_object_add(o, "status", json_object_new_int64(inj.status));
	json_object_object_add(o, "retry_after",
	                       json_object_new_int64(inj.retry_after));
	json_object_object_add(
	    o, "count",
	    inj.remaining < 0 ? NULL : json_object_new_int64(inj.remaining));
	json_object_object_add(o, "export_requests",
	                       json_object_new_int64(exports));
	json_object_object_add(o, "injected", json_object_new_int64(injected));
	res = gw_strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(o);
	return res;
}

/* Parses a control body into a new injection; -1 with a reason. */
static int
control_parse(const char *body, size_t len, struct emu_inject *out, char *err,
              size_t errlen)
{
	struct json_object *obj = NULL, *v = NULL;
	struct emu_inject inj;
	const char *name = NULL;
	size_t m;
	int rc = -1, has_delay, has_status, has_count, has_ra;

	inject_reset(&inj);
	obj = json_parse_strict(body, len, err, errlen);
	if (obj == NULL)
		goto out;
	if (keys_check(obj, control_keys, NELEM(control_keys), "control", err,
	               errlen) == -1)
		goto out;
	json_object_object_get_ex(obj, "mode", &v);
	name = json_object_get_string(v);
	for (m = 0; m < MODE__MAX; m++)
		if (strcmp(name, modetab[m].name) == 0)
			break;
	if (m == MODE__MAX) {
		snprintf(err, errlen,
		         "\"mode\" must be one of ok, delay, "
		         "status, malformed, drop");
		goto out;
	}
	inj.mode = (enum emu_mode)m;
	has_delay = int_key(obj, "delay_ms", 0, EMU_DELAY_MAX, &inj.delay_ms,
	                    err, errlen);
	has_status = int_key(obj, "status", 400, 599, &inj.status, err, errlen);
	has_count = int_key(obj, "count", 1, EMU_COUNT_MAX, &inj.remaining, err,
	                    errlen);
	has_ra =
	    int_key(obj, "retry_after", 1, 3600, &inj.retry_after, err, errlen);
	if (has_delay == -1 || has_status == -1 || has_count == -1 ||
	    has_ra == -1)
		goto out;
	if (has_ra && m != MODE_STATUS) {
		snprintf(err, errlen,
		         "\"retry_after\" is only allowed with mode "
		         "\"status\"");
		goto out;
	}
	if (has_delay != modetab[m].delay_ms) {
		snprintf(err, errlen, "\"delay_ms\" is %s with mode \"%s\"",
		         modetab[m].delay_ms ? "required" : "not allowed",
		         name);
		goto out;
	}
	if (has_status != modetab[m].status) {
		snprintf(err, errlen, "\"status\" is %s with mode \"%s\"",
		         modetab[m].status ? "required" : "not allowed", name);
		goto out;
	}
	if (has_count && !modetab[m].count_ok) {
		snprintf(err, errlen,
		         "\"count\" is not allowed with mode "
		         "\"ok\"");
		goto out;
	}
	*out = inj;
	rc = 0;
out:
	json_object_put(obj);
	return rc;
}

/* ---- request helpers ---- */

/* First value of a FastCGI param and how many times it was sent. */
static const char *
param_get(char **envp, const char *name, size_t *count)
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
	size_t plen = strlen(path), pre = sizeof(export_prefix) - 1,
	       suf = sizeof(export_suffix) - 1;
	const char *p;

	if (plen <= pre + suf || strncmp(path, export_prefix, pre) != 0 ||
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
static int
media_is_json(const char *ct)
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
static void
token_scan(const struct emu_conf *c, const char *tok, size_t len, long pidx,
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

static long
project_find(const struct emu_conf *c, const char *pid, size_t len)
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

/* ---- IAM and AK/SK ---- */

/*
 * IAM stand-in (hss-api-notes.md 4.1, 4.2): POST /v3/auth/tokens issues
 * project- or domain-scoped tokens for configured users and agencies,
 * token in X-Subject-Token, 201 with a Keystone-shaped body.  Issued
 * tokens live in e->issued (under e->iamlock) until the process ends;
 * /_emulator/revoke marks them revoked.  Keystone-style errors:
 * {"error":{"code":N,"message":"...","title":"..."}} (3.3).
 */
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
		answer_err(a, EE_INTERNAL, NULL);
		return;
	}
	json_object_object_add(er, "code", json_object_new_int(status));
	json_object_object_add(er, "message", json_object_new_string(msg));
	json_object_object_add(er, "title",
	                       json_object_new_string(reason(status)));
	json_object_object_add(o, "error", er);
	a->raw = gw_strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	if (a->raw == NULL)
		answer_err(a, EE_INTERNAL, NULL);
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
		answer_err(a, EE_INTERNAL, NULL);
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
		answer_err(a, EE_INTERNAL, NULL);
		return;
	}
	a->kind = ANS_RAW;
	a->status = 201;
}

/* POST /v3/auth/tokens: password or assume_role, project/domain scope. */
static void
handle_iam(struct emu *e, struct emu_req *r, struct emu_answer *a)
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
		answer_err(a, EE_METHOD, NULL);
		a->allow = "POST";
		return;
	}
	if (r->body_over ||
	    !media_is_json(param_get(r->envp, "CONTENT_TYPE", NULL))) {
		iam_error(a, 400, "The request body is invalid.");
		return;
	}
	root = json_parse_strict(r->body.p != NULL ? r->body.p : "",
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
			answer_err(a, EE_INTERNAL, "token store full");
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
	xtok = param_get(r->envp, "HTTP_X_AUTH_TOKEN", NULL);
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
		answer_err(a, EE_INTERNAL, "token store full");
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
		return param_get(envp, "CONTENT_TYPE", count);
	if (n + 6 >= sizeof(pname))
		return NULL;
	memcpy(pname, "HTTP_", 5);
	for (i = 0; i < n; i++)
		pname[5 + i] = lname[i] == '-'
		                   ? '_'
		                   : (char)toupper((unsigned char)lname[i]);
	pname[5 + n] = '\0';
	return param_get(envp, pname, count);
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
static int
aksk_verify(struct emu *e, struct emu_req *r, const char *auth, const char *pid,
            struct emu_answer *a)
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
	date = param_get(r->envp, "HTTP_X_SDK_DATE", NULL);
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
	xpid = param_get(r->envp, "HTTP_X_PROJECT_ID", NULL);
	if (!principal_has_project(k, pid) ||
	    (xpid != NULL && strcmp(xpid, pid) != 0)) {
		answer_err(a, EE_DENIED, NULL);
		goto out;
	}
	rc = 0;
	goto out;
bad:
	answer_err(a, EE_AKSK, NULL);
out:
	gw_buf_reset(&c);
	gw_buf_reset(&hx);
	return rc;
}

/*
 * Step 2 for tokens IAM issued: unknown is not ours (0), expired or
 * revoked is 401, another project is 403.  1: accepted.  -1: answered.
 */
static int
issued_check(struct emu *e, const char *tok, const char *pid, size_t pidlen,
             struct emu_answer *a)
{
	struct emu_token t;
	char detail[96];

	if (!issued_find(e, tok, &t))
		return 0;
	if (t.revoked) {
		answer_err(a, EE_BAD_TOKEN, NULL);
		return -1;
	}
	if (gw_now_ms() >= t.expires_ms) {
		fmt_us(t.expires_ms, detail, sizeof(detail));
		answer_err(a, EE_TOKEN_EXPIRED, detail);
		return -1;
	}
	if (strlen(t.project) != pidlen ||
	    memcmp(t.project, pid, pidlen) != 0) {
		answer_err(a, EE_DENIED, NULL);
		return -1;
	}
	return 1;
}

/* POST /_emulator/revoke {"token_fp": "<16 hex>"} or {"all": true}. */
static void
handle_revoke(struct emu *e, struct emu_req *r, struct emu_answer *a)
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

	root = json_parse_strict(r->body.p != NULL ? r->body.p : "",
	                         r->body.len, err, sizeof(err));
	if (root == NULL || keys_check(root, keys, NELEM(keys), "revoke", err,
	                               sizeof(err)) == -1) {
		answer_err(a, EE_CONTROL, root == NULL ? "not JSON" : err);
		goto out;
	}
	if (json_object_object_get_ex(root, "token_fp", &v))
		fp = json_object_get_string(v);
	if (json_object_object_get_ex(root, "all", &v))
		all = json_object_get_boolean(v);
	if ((fp == NULL) == !all) {
		answer_err(a, EE_CONTROL, "give token_fp or \"all\": true");
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
static void
handle_iam_calls(struct emu *e, struct emu_answer *a)
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

/* Steps 2 to 7 of the brief, in order; fills the answer. */
static void
export_check(struct emu *e, struct emu_req *r, const char *pid, size_t pidlen,
             struct emu_answer *a)
{
	struct gw_fault fault;
	const char *tok, *region, *auth;
	char detail[400], pidz[EMU_PID_MAX + 1];
	size_t ntok = 0, nregion = 0, nauth = 0, toklen, rlen;
	long pidx;
	int known = 0, mine = 0, issued;

	/* 2. X-Auth-Token (API page, Table 3; APIGW.0301 variants), or
	 * an AK/SK signature when no token is sent (notes section 5). */
	tok = param_get(r->envp, "HTTP_X_AUTH_TOKEN", &ntok);
	auth = param_get(r->envp, "HTTP_AUTHORIZATION", &nauth);
	if ((tok == NULL || *tok == '\0') && auth != NULL) {
		if (nauth != 1 || pidlen > EMU_PID_MAX) {
			answer_err(a, EE_AKSK, NULL);
			return;
		}
		memcpy(pidz, pid, pidlen);
		pidz[pidlen] = '\0';
		if (aksk_verify(e, r, auth, pidz, a) == -1)
			return;
		pidx = project_find(e->conf, pid, pidlen);
		if (pidx < 0) {
			answer_err(a, EE_DENIED, NULL);
			return;
		}
		goto checked;
	}
	if (tok == NULL || *tok == '\0') {
		answer_err(a, EE_NO_TOKEN, NULL);
		return;
	}
	toklen = strlen(tok);
	/* Two tokens are ambiguous: never guess which one counts. */
	if (ntok > 1 || toklen > EMU_TOKEN_MAX) {
		answer_err(a, EE_BAD_TOKEN, NULL);
		return;
	}
	pidx = project_find(e->conf, pid, pidlen);
	token_scan(e->conf, tok, toklen, pidx, &known, &mine);
	if (!known) {
		/* Not configured: maybe IAM issued it (expired, revoked?). */
		issued = issued_check(e, tok, pid, pidlen, a);
		if (issued == -1)
			return;
		known = mine = issued;
	}
	if (!known) {
		answer_err(a, EE_BAD_TOKEN, NULL);
		return;
	}
	/* 3. project_id 1..256 (Table 1), configured, covered by token. */
	if (pidx < 0 || !mine) {
		answer_err(a, EE_DENIED, NULL);
		return;
	}
checked:
	/* 4. region header: optional, 1..128 (Table 3). */
	region = param_get(r->envp, "HTTP_REGION", &nregion);
	if (nregion > 1) {
		answer_err(a, EE_PARAM, "region: must be sent once");
		return;
	}
	rlen = region != NULL ? strlen(region) : 0;
	if (nregion == 1 && (rlen < 1 || rlen > EMU_REGION_MAX)) {
		answer_err(a, EE_PARAM, "region: length must be 1 to 128");
		return;
	}
	/* 5. Content-Type (SDK: application/json). */
	if (!media_is_json(param_get(r->envp, "CONTENT_TYPE", NULL))) {
		answer_err(a, EE_PARSE, NULL);
		return;
	}
	/* 6. Body cap, then query and body as HSS checks them. */
	if (r->body_over) {
		answer_err(a, EE_TOO_LARGE, NULL);
		return;
	}
	memset(&fault, 0, sizeof(fault));
	if (gw_tr_check_hss(r->query, r->body.p != NULL ? r->body.p : "",
	                    r->body.len, &fault) != GW_OK) {
		if (fault.field[0] != '\0')
			snprintf(detail, sizeof(detail), "%s: %s", fault.field,
			         fault.msg);
		else
			snprintf(detail, sizeof(detail), "%s",
			         fault.msg[0] != '\0' ? fault.msg : "rejected");
		answer_err(a, EE_PARAM, detail);
		return;
	}
	/* 7. Success (Table 5). */
	a->kind = ANS_SUCCESS;
	a->status = 200;
}

/* ---- export tasks, downloads and the per-minute limit ---- */

/*
 * Export tasks (hss-api-notes.md 2.1, 2.2): every accepted export becomes
 * a task that stays "running" for the configured delay, then turns
 * "success" (or "failure") with a file of the configured size.  Files
 * are generated, never stored: block i (4096 bytes) is i as 8 big-endian
 * bytes, then 4088 bytes of (seed + i % 251 + k) mod 256, seed the sum of
 * the file id's bytes, so a test can check every byte it received.
 */
static int
task_new(struct emu *e, const char *pid, size_t pidlen, char task[33])
{
	struct emu_task *t;
	int rc = -1;

	if (gw_random_hex(task, 16) == -1 || pidlen > EMU_PID_MAX)
		return -1;
	pthread_mutex_lock(&e->tlock);
	if (e->ntasks < EMU_TASKS_MAX) {
		t = &e->tasks[e->ntasks++];
		memset(t, 0, sizeof(*t));
		memcpy(t->id, task, 33);
		memcpy(t->project, pid, pidlen);
		if (gw_random_hex(t->file_id, 16) == -1)
			snprintf(t->file_id, sizeof(t->file_id), "f%s", task);
		t->created_ms = gw_now_ms();
		t->delay_ms = e->task_delay_ms;
		t->file_bytes = e->file_bytes;
		t->fail = e->task_fail;
		rc = 0;
	}
	pthread_mutex_unlock(&e->tlock);
	return rc;
}

/* Finds a task by id or by file id in project pid; 1 if found. */
static int
task_find(struct emu *e, const char *pid, size_t pidlen, const char *id,
          int by_file, struct emu_task *out)
{
	size_t i;
	int found = 0;

	pthread_mutex_lock(&e->tlock);
	for (i = 0; i < e->ntasks && !found; i++) {
		const struct emu_task *t = &e->tasks[i];

		if (strcmp(by_file ? t->file_id : t->id, id) == 0 &&
		    strlen(t->project) == pidlen &&
		    memcmp(t->project, pid, pidlen) == 0) {
			*out = *t;
			found = 1;
		}
	}
	pthread_mutex_unlock(&e->tlock);
	return found;
}

/*
 * HSS's limit (hss-api-notes.md 6): at most limit calls per API in any
 * 60 s.  hssgw is one user on one IP, so every call counts together.
 * 1: allowed and counted; 0: throttled.
 */
static int
limit_take(struct emu *e, enum emu_api api)
{
	struct emu_window *w = &e->win[api];
	long long now = gw_now_ms();
	size_t i, n = 0, slot = 0;
	int ok = 1;

	pthread_mutex_lock(&e->tlock);
	e->calls[api]++;
	if (e->limit > 0) {
		for (i = 0; i < (size_t)e->limit; i++) {
			if (w->t[i] != 0 && now - w->t[i] < 60000)
				n++;
			else
				slot = i;
		}
		if (n >= (size_t)e->limit) {
			ok = 0;
			e->throttled++;
		} else
			w->t[slot] = now;
	}
	pthread_mutex_unlock(&e->tlock);
	return ok;
}

/* The token checks of the export (steps 2 and 3) for a GET. */
static int
get_auth(struct emu *e, struct emu_req *r, const char *pid, size_t pidlen,
         struct emu_answer *a)
{
	const char *tok, *auth;
	size_t ntok = 0, nauth = 0, toklen;
	char pidz[EMU_PID_MAX + 1];
	long pidx;
	int known = 0, mine = 0, issued;

	tok = param_get(r->envp, "HTTP_X_AUTH_TOKEN", &ntok);
	auth = param_get(r->envp, "HTTP_AUTHORIZATION", &nauth);
	pidx = project_find(e->conf, pid, pidlen);
	if ((tok == NULL || *tok == '\0') && auth != NULL) {
		if (nauth != 1 || pidlen > EMU_PID_MAX) {
			answer_err(a, EE_AKSK, NULL);
			return -1;
		}
		memcpy(pidz, pid, pidlen);
		pidz[pidlen] = '\0';
		if (aksk_verify(e, r, auth, pidz, a) == -1)
			return -1;
		if (pidx < 0) {
			answer_err(a, EE_DENIED, NULL);
			return -1;
		}
		return 0;
	}
	if (tok == NULL || *tok == '\0') {
		answer_err(a, EE_NO_TOKEN, NULL);
		return -1;
	}
	toklen = strlen(tok);
	if (ntok > 1 || toklen > EMU_TOKEN_MAX) {
		answer_err(a, EE_BAD_TOKEN, NULL);
		return -1;
	}
	token_scan(e->conf, tok, toklen, pidx, &known, &mine);
	if (!known) {
		issued = issued_check(e, tok, pid, pidlen, a);
		if (issued == -1)
			return -1;
		known = mine = issued;
	}
	if (!known) {
		answer_err(a, EE_BAD_TOKEN, NULL);
		return -1;
	}
	if (pidx < 0 || !mine) {
		answer_err(a, EE_DENIED, NULL);
		return -1;
	}
	return 0;
}

/* /v5/{pid}/export-task/{id} or /v5/{pid}/download/{id}: the API or -1. */
static int
task_path(const char *path, const char **pid, size_t *pidlen, const char **id)
{
	static const struct {
		const char *seg;
		enum emu_api api;
	} segs[] = {{"/export-task/", API_STATUS}, {"/download/", API_FILE}};
	const char *p, *q;
	size_t i, n;

	if (strncmp(path, export_prefix, sizeof(export_prefix) - 1) != 0)
		return -1;
	p = path + sizeof(export_prefix) - 1;
	q = strchr(p, '/');
	if (q == NULL || q == p)
		return -1;
	for (i = 0; i < NELEM(segs); i++) {
		n = strlen(segs[i].seg);
		if (strncmp(q, segs[i].seg, n) == 0 && q[n] != '\0' &&
		    strchr(q + n, '/') == NULL && strlen(q + n) <= 64) {
			*pid = p;
			*pidlen = (size_t)(q - p);
			*id = q + n;
			return (int)segs[i].api;
		}
	}
	return -1;
}

static void
handle_task(struct emu *e, struct emu_req *r, int api, const char *pid,
            size_t pidlen, const char *id, struct emu_answer *a)
{
	struct json_object *o = NULL;
	struct emu_task t;
	long long now = gw_now_ms();
	const char *st;

	if (strcmp(r->method, "GET") != 0) {
		answer_err(a, EE_METHOD, NULL);
		a->allow = "GET";
		return;
	}
	if (get_auth(e, r, pid, pidlen, a) == -1)
		return;
	if (!limit_take(e, (enum emu_api)api)) {
		answer_injected(a, 429);
		return;
	}
	if (!task_find(e, pid, pidlen, id, api == API_FILE, &t)) {
		answer_err(a, EE_NOT_FOUND, "no such task or file");
		return;
	}
	st = now - t.created_ms < t.delay_ms ? "running"
	     : t.fail                        ? "failure"
	                                     : "success";
	if (api == API_FILE) {
		if (strcmp(st, "success") != 0) {
			answer_err(a, EE_NOT_FOUND, "file not ready");
			return;
		}
		a->kind = ANS_FILE;
		a->status = 200;
		a->file = t;
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "task_id", json_object_new_string(t.id));
	json_object_object_add(o, "task_name",
	                       json_object_new_string("image_baseline_export"));
	json_object_object_add(o, "task_status", json_object_new_string(st));
	if (strcmp(st, "success") == 0) {
		char name[80];

		snprintf(name, sizeof(name), "hss-image-baseline-%.16s.zip",
		         t.id);
		json_object_object_add(o, "file_id",
		                       json_object_new_string(t.file_id));
		json_object_object_add(o, "file_name",
		                       json_object_new_string(name));
	}
	a->raw = gw_strdup(json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	a->kind = a->raw != NULL ? ANS_RAW : ANS_ERROR;
	a->status = a->raw != NULL ? 200 : 500;
}

/* Streams a generated file (see task_new) in 64 KiB writes. */
static void
respond_file(FCGX_Request *fr, const struct emu_task *t, const char *reqid)
{
	unsigned char base[4096 + 251], block[4096];
	unsigned seed = 0;
	long long off = 0, blk;
	size_t i, n;

	for (i = 0; t->file_id[i] != '\0'; i++)
		seed += (unsigned char)t->file_id[i];
	for (i = 0; i < sizeof(base); i++)
		base[i] = (unsigned char)((seed + i) & 0xff);
	FCGX_FPrintF(fr->out,
	             "Status: 200 OK\r\nContent-Type: application/zip\r\n"
	             "X-Request-Id: %s\r\n",
	             reqid);
	snprintf((char *)block, sizeof(block), "Content-Length: %lld\r\n\r\n",
	         t->file_bytes);
	FCGX_PutS((char *)block, fr->out);
	while (off < t->file_bytes) {
		blk = off / 4096;
		for (i = 0; i < 8; i++)
			block[i] = (unsigned char)((unsigned long long)blk >>
			                           (56 - 8 * i));
		memcpy(block + 8, base + blk % 251 + 8, 4088);
		n = t->file_bytes - off < 4096 ? (size_t)(t->file_bytes - off)
		                               : 4096;
		if (FCGX_PutStr((char *)block, (int)n, fr->out) != (int)n)
			return;
		off += (long long)n;
	}
}

/* POST /_emulator/tasks: {"delay_ms", "file_bytes", "fail",
 * "limit_per_minute"}; GET: the same plus call counters. */
static void
handle_tasks_ctl(struct emu *e, struct emu_req *r, struct emu_answer *a)
{
	static const struct emu_key keys[] = {
	    {"delay_ms", json_type_int, 0},
	    {"file_bytes", json_type_int, 0},
	    {"fail", json_type_boolean, 0},
	    {"limit_per_minute", json_type_int, 0},
	};
	struct json_object *root = NULL, *v = NULL;
	long long delay = -1, bytes = -1, limit = -1;
	char err[256], buf[512];

	if (strcmp(r->method, "POST") == 0) {
		root = json_parse_strict(r->body.p != NULL ? r->body.p : "",
		                         r->body.len, err, sizeof(err));
		if (root == NULL ||
		    keys_check(root, keys, NELEM(keys), "tasks", err,
		               sizeof(err)) == -1 ||
		    int_key(root, "delay_ms", 0, EMU_DELAY_MAX, &delay, err,
		            sizeof(err)) == -1 ||
		    int_key(root, "file_bytes", 0, 1LL << 32, &bytes, err,
		            sizeof(err)) == -1 ||
		    int_key(root, "limit_per_minute", 0, EMU_LIMIT_MAX, &limit,
		            err, sizeof(err)) == -1) {
			answer_err(a, EE_CONTROL, err);
			goto out;
		}
		pthread_mutex_lock(&e->tlock);
		if (delay >= 0)
			e->task_delay_ms = delay;
		if (bytes >= 0)
			e->file_bytes = bytes;
		if (limit >= 0) {
			e->limit = limit;
			memset(e->win, 0, sizeof(e->win));
		}
		if (json_object_object_get_ex(root, "fail", &v))
			e->task_fail = json_object_get_boolean(v);
		pthread_mutex_unlock(&e->tlock);
	} else if (strcmp(r->method, "GET") != 0) {
		answer_err(a, EE_METHOD, NULL);
		a->allow = "GET, POST";
		goto out;
	}
	pthread_mutex_lock(&e->tlock);
	snprintf(buf, sizeof(buf),
	         "{\"delay_ms\": %lld, \"file_bytes\": %lld, \"fail\": %s, "
	         "\"limit_per_minute\": %lld, \"tasks\": %zu, "
	         "\"export_calls\": %lld, \"status_calls\": %lld, "
	         "\"download_calls\": %lld, \"throttled\": %lld}",
	         e->task_delay_ms, e->file_bytes,
	         e->task_fail ? "true" : "false", e->limit, e->ntasks,
	         e->calls[API_EXPORT], e->calls[API_STATUS], e->calls[API_FILE],
	         e->throttled);
	pthread_mutex_unlock(&e->tlock);
	a->raw = gw_strdup(buf);
	a->kind = a->raw != NULL ? ANS_RAW : ANS_ERROR;
	a->status = a->raw != NULL ? 200 : 500;
out:
	json_object_put(root);
}

static void
handle_export(struct emu *e, struct emu_req *r, const char *pid, size_t pidlen,
              struct emu_answer *a)
{
	struct emu_inject inj;

	if (strcmp(r->method, "POST") != 0) {
		answer_err(a, EE_METHOD, NULL);
		a->allow = "POST";
		return;
	}
	inject_take(e, &inj);
	export_check(e, r, pid, pidlen, a);
	if (a->kind == ANS_SUCCESS && !limit_take(e, API_EXPORT))
		answer_injected(a, 429);
	if (a->kind == ANS_SUCCESS && inj.mode == MODE_OK &&
	    task_new(e, pid, pidlen, a->task) == -1)
		answer_err(a, EE_INTERNAL, "task table full");
	/* An invalid request is never masked by an injected failure. */
	if (a->kind == ANS_SUCCESS) {
		if (inj.mode == MODE_STATUS) {
			answer_injected(a, (int)inj.status);
			a->retry_after = inj.retry_after;
		} else if (inj.mode == MODE_MALFORMED)
			a->kind = ANS_MALFORMED;
		else if (inj.mode == MODE_DROP)
			a->kind = ANS_DROP;
	}
	if (inj.mode == MODE_DELAY)
		a->delay_ms = inj.delay_ms;
}

static void
handle_control(struct emu *e, struct emu_req *r, struct emu_answer *a)
{
	struct emu_inject inj;
	char err[256];
	int is_ctl = strcmp(r->path, "/_emulator/control") == 0;
	int is_reset = strcmp(r->path, "/_emulator/reset") == 0;
	int get = strcmp(r->method, "GET") == 0;
	int post = strcmp(r->method, "POST") == 0;

	if (strcmp(r->path, "/_emulator/tasks") == 0) {
		if (r->body_over || r->body.len > EMU_CTL_BODY_MAX)
			answer_err(a, EE_TOO_LARGE, NULL);
		else
			handle_tasks_ctl(e, r, a);
		return;
	}
	if (strcmp(r->path, "/_emulator/revoke") == 0 ||
	    strcmp(r->path, "/_emulator/iam-calls") == 0) {
		int rv = r->path[11] == 'r';

		if (rv ? !post : !get) {
			answer_err(a, EE_METHOD, NULL);
			a->allow = rv ? "POST" : "GET";
		} else if (rv &&
		           (r->body_over || r->body.len > EMU_CTL_BODY_MAX)) {
			answer_err(a, EE_TOO_LARGE, NULL);
		} else if (rv) {
			handle_revoke(e, r, a);
		} else {
			handle_iam_calls(e, a);
		}
		return;
	}
	if (!is_ctl && !is_reset) {
		answer_err(a, EE_NOT_FOUND, NULL);
		return;
	}
	if (!(post || (get && is_ctl))) {
		answer_err(a, EE_METHOD, NULL);
		a->allow = is_ctl ? "GET, POST" : "POST";
		return;
	}
	if (post && (r->body_over || r->body.len > EMU_CTL_BODY_MAX)) {
		answer_err(a, EE_TOO_LARGE, NULL);
		return;
	}
	if (post && is_ctl) {
		if (control_parse(r->body.p != NULL ? r->body.p : "",
		                  r->body.len, &inj, err, sizeof(err)) == -1) {
			answer_err(a, EE_CONTROL, err);
			return;
		}
		pthread_mutex_lock(&e->lock);
		e->inj = inj;
		pthread_mutex_unlock(&e->lock);
	} else if (post) {
		pthread_mutex_lock(&e->lock);
		inject_reset(&e->inj);
		e->exports = 0;
		e->injected = 0;
		pthread_mutex_unlock(&e->lock);
		pthread_mutex_lock(&e->iamlock);
		e->iam_calls = 0;
		pthread_mutex_unlock(&e->iamlock);
	}
	a->raw = state_json(e);
	if (a->raw == NULL) {
		answer_err(a, EE_INTERNAL, NULL);
		return;
	}
	a->kind = ANS_RAW;
	a->status = 200;
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
	ct = param_get(r->envp, "CONTENT_TYPE", NULL);
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
		              a->status, reason(a->status), json_type_hdr, blen,
		              reqid);
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

static void
sleep_ms(long long ms)
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

static void
handle(struct emu *e, FCGX_Request *fr)
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
	r.method = param_get(r.envp, "REQUEST_METHOD", NULL);
	if (r.method == NULL)
		r.method = "";
	r.query = param_get(r.envp, "QUERY_STRING", NULL);
	if (r.query == NULL)
		r.query = "";
	doc = param_get(r.envp, "DOCUMENT_URI", NULL);
	script = param_get(r.envp, "SCRIPT_NAME", NULL);
	info = param_get(r.envp, "PATH_INFO", NULL);
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
		handle_control(e, &r, &a);
		respond(fr, &a, r.reqid, e->conf);
		goto out;
	}
	if (!r.path_over && export_path(r.path, &pid, &pidlen)) {
		handle_export(e, &r, pid, pidlen, &a);
	} else if (!r.path_over &&
	           (api = task_path(r.path, &pid, &pidlen, &tid)) >= 0) {
		handle_task(e, &r, api, pid, pidlen, tid, &a);
	} else if (strcmp(r.path, "/v3/auth/tokens") == 0) {
		r.redact_body = 1;
		handle_iam(e, &r, &a);
	} else {
		answer_err(&a, EE_NOT_FOUND, NULL);
	}
	record(e, &r, a.kind == ANS_DROP ? EMU_DROP_STATUS : a.status);
	if (a.delay_ms > 0)
		sleep_ms(a.delay_ms);
	if (a.kind == ANS_FILE)
		respond_file(fr, &a.file, r.reqid);
	else
		respond(fr, &a, r.reqid, e->conf);
out:
	free(a.raw);
	free(a.subject_token);
	gw_buf_reset(&r.body);
}

/* ---- threads and lifecycle ---- */

static int
is_stopping(struct emu *e)
{
	int s;

	pthread_mutex_lock(&e->life);
	s = e->stopping;
	pthread_mutex_unlock(&e->life);
	return s;
}

static void
set_busy(struct emu *e, int delta)
{
	pthread_mutex_lock(&e->life);
	e->busy += delta;
	pthread_cond_broadcast(&e->lifecv);
	pthread_mutex_unlock(&e->life);
}

static void *
worker(void *arg)
{
	struct emu *e = arg;
	FCGX_Request fr;
	int rc;

	if (FCGX_InitRequest(&fr, e->listenfd, 0) != 0) {
		fprintf(stderr, "hss-emulator: FCGX_InitRequest failed\n");
		goto out;
	}
	for (;;) {
		rc = FCGX_Accept_r(&fr);
		if (rc < 0) {
			if (is_stopping(e))
				break;
			/* A transient accept failure must not shrink the pool.
			 */
			sleep_ms(100);
			continue;
		}
		set_busy(e, 1);
		handle(e, &fr);
		FCGX_Finish_r(&fr);
		set_busy(e, -1);
		if (is_stopping(e))
			break;
	}
	FCGX_Free(&fr, 1);
out:
	pthread_mutex_lock(&e->life);
	e->alive--;
	pthread_cond_broadcast(&e->lifecv);
	pthread_mutex_unlock(&e->life);
	return NULL;
}

/*
 * Opens the listening socket.  Not FCGX_OpenSocket: libfcgi 2.4 binds TCP
 * to INADDR_ANY and exit()s on errors; this binds 127.0.0.1 only.
 * Returns the descriptor, -2 for a malformed ADDR, -1 for a system error.
 */
static int
listen_open(const char *addr, char *unixpath, size_t cap, char *err,
            size_t errlen)
{
	struct sockaddr_un sun;
	struct sockaddr_in sin;
	struct stat st;
	const char *path;
	long long port;
	int fd = -1, one = 1;

	if (strncmp(addr, "unix:", 5) == 0) {
		path = addr + 5;
		if (*path != '/' || strlen(path) >= sizeof(sun.sun_path) ||
		    strlen(path) >= cap) {
			snprintf(err, errlen,
			         "--listen: unix path must be "
			         "absolute and short");
			return -2;
		}
		/* Replace a stale socket, never any other file. */
		if (lstat(path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				snprintf(
				    err, errlen,
				    "--listen: %s exists and is not a socket",
				    path);
				return -1;
			}
			unlink(path);
		}
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, path, strlen(path) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd == -1 ||
		    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
			goto fail;
		snprintf(unixpath, cap, "%s", path);
	} else if (strncmp(addr, "127.0.0.1:", 10) == 0) {
		if (gw_strtonum(addr + 10, 1, 65535, &port) == -1) {
			snprintf(err, errlen, "--listen: bad port");
			return -2;
		}
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd == -1 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		               sizeof(one)) == -1 ||
		    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
			goto fail;
	} else {
		snprintf(
		    err, errlen,
		    "--listen: expected unix:/path.sock or 127.0.0.1:PORT");
		return -2;
	}
	if (listen(fd, 128) == -1)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "--listen %s: %s", addr, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

struct emu_opts {
	const char *config;
	const char *log;
	const char *listen;
	const char *threads;
};

static const struct {
	const char *name;
	size_t off;
	int required;
} opttab[] = {
    {"--config", offsetof(struct emu_opts, config), 1},
    {"--log", offsetof(struct emu_opts, log), 1},
    {"--listen", offsetof(struct emu_opts, listen), 0},
    {"--threads", offsetof(struct emu_opts, threads), 0},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: hss-emulator --config FILE --log FILE "
	           "[--listen unix:/path.sock|127.0.0.1:PORT] "
	           "[--threads N]\n");
}

/* Parses argv into opts ("--opt VALUE" or "--opt=VALUE"); -1 on error. */
static int
opts_parse(int argc, char **argv, struct emu_opts *o)
{
	const char **slot;
	const char *val;
	size_t i, n;
	int k;

	memset(o, 0, sizeof(*o));
	for (k = 1; k < argc; k++) {
		for (i = 0; i < NELEM(opttab); i++) {
			n = strlen(opttab[i].name);
			if (strncmp(argv[k], opttab[i].name, n) == 0 &&
			    (argv[k][n] == '\0' || argv[k][n] == '='))
				break;
		}
		if (i == NELEM(opttab)) {
			fprintf(stderr, "hss-emulator: unknown option %s\n",
			        argv[k]);
			return -1;
		}
		if (argv[k][n] == '=')
			val = argv[k] + n + 1;
		else if (k + 1 < argc)
			val = argv[++k];
		else {
			fprintf(stderr, "hss-emulator: %s needs a value\n",
			        opttab[i].name);
			return -1;
		}
		slot = (const char **)(void *)((char *)o + opttab[i].off);
		if (*slot != NULL) {
			fprintf(stderr, "hss-emulator: %s given twice\n",
			        opttab[i].name);
			return -1;
		}
		*slot = val;
	}
	for (i = 0; i < NELEM(opttab); i++) {
		slot = (const char **)(void *)((char *)o + opttab[i].off);
		if (opttab[i].required && *slot == NULL) {
			fprintf(stderr, "hss-emulator: %s is required\n",
			        opttab[i].name);
			return -1;
		}
	}
	return 0;
}

static int64_t
mono_ms(void)
{
	return gw_mono_us() / 1000;
}

/*
 * Waits for the workers after SIGTERM: every busy one finishes its
 * request.  Idle ones blocked on a kept-alive FastCGI connection cannot
 * be woken, so after a short grace with nothing in flight they are left
 * to process exit.  Returns the number still alive.
 */
static int
drain_workers(struct emu *e)
{
	struct timespec ts;
	int64_t start = mono_ms();
	int alive;

	pthread_mutex_lock(&e->life);
	while (e->alive > 0 &&
	       !(e->busy == 0 && mono_ms() - start >= EMU_GRACE_MS)) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&e->lifecv, &e->life, &ts);
	}
	alive = e->alive;
	pthread_mutex_unlock(&e->life);
	return alive;
}

int
main(int argc, char **argv)
{
	struct emu e;
	struct emu_opts o;
	struct emu_conf *conf = NULL;
	pthread_condattr_t ca;
	pthread_t *tids = NULL;
	sigset_t set;
	char err[512], unixpath[sizeof(((struct sockaddr_un *)0)->sun_path)];
	long long nthreads = EMU_THREADS_DEF;
	int sig = 0, i, started = 0, rc = 1, left;

	memset(&e, 0, sizeof(e));
	unixpath[0] = '\0';
	e.listenfd = -1;
	e.logfd = -1;
	if (argc == 2 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (opts_parse(argc, argv, &o) == -1) {
		usage(stderr);
		return 2;
	}
	if (o.threads != NULL &&
	    gw_strtonum(o.threads, 1, EMU_THREADS_MAX, &nthreads) == -1) {
		fprintf(stderr, "hss-emulator: --threads: 1 to %d\n",
		        EMU_THREADS_MAX);
		return 2;
	}
	conf = conf_load(o.config, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "hss-emulator: %s\n", err);
		return 2;
	}
	e.conf = conf;
	inject_reset(&e.inj);
	pthread_mutex_init(&e.lock, NULL);
	pthread_mutex_init(&e.iamlock, NULL);
	pthread_mutex_init(&e.tlock, NULL);
	e.file_bytes = 1024;
	e.tasks = calloc(EMU_TASKS_MAX, sizeof(*e.tasks));
	if (e.tasks == NULL) {
		fprintf(stderr, "hss-emulator: out of memory\n");
		return 1;
	}
	pthread_mutex_init(&e.loglock, NULL);
	pthread_mutex_init(&e.life, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e.lifecv, &ca);
	pthread_condattr_destroy(&ca);

	e.logfd = open(o.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (e.logfd == -1) {
		fprintf(stderr, "hss-emulator: %s: %s\n", o.log,
		        strerror(errno));
		goto out;
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "hss-emulator: FCGX_Init failed\n");
		goto out;
	}
	if (o.listen != NULL) {
		e.listenfd = listen_open(o.listen, unixpath, sizeof(unixpath),
		                         err, sizeof(err));
		if (e.listenfd < 0) {
			fprintf(stderr, "hss-emulator: %s\n", err);
			rc = e.listenfd == -2 ? 2 : 1;
			e.listenfd = -1;
			goto out;
		}
	} else if (FCGX_IsCGI()) {
		fprintf(stderr, "hss-emulator: fd 0 is not a FastCGI listening "
		                "socket; use --listen\n");
		rc = 2;
		goto out;
	} else
		e.listenfd = 0;

	/* Workers inherit the mask; only main takes SIGTERM/SIGINT. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	tids = calloc((size_t)nthreads, sizeof(*tids));
	if (tids == NULL)
		goto out;
	for (i = 0; i < nthreads; i++) {
		pthread_mutex_lock(&e.life);
		e.alive++;
		pthread_mutex_unlock(&e.life);
		if (pthread_create(&tids[i], NULL, worker, &e) != 0) {
			pthread_mutex_lock(&e.life);
			e.alive--;
			pthread_mutex_unlock(&e.life);
			fprintf(stderr,
			        "hss-emulator: pthread_create failed\n");
			break;
		}
		started++;
	}
	if (started == 0)
		goto out;
	fprintf(stderr, "hss-emulator: ready, %d threads on %s\n", started,
	        o.listen != NULL ? o.listen : "fd 0");

	while (sigwait(&set, &sig) != 0)
		;
	pthread_mutex_lock(&e.life);
	e.stopping = 1;
	pthread_mutex_unlock(&e.life);
	FCGX_ShutdownPending();
	/* Wakes every accept(2) blocked on the socket (Linux). */
	shutdown(e.listenfd, SHUT_RDWR);
	left = drain_workers(&e);
	if (left == 0) {
		for (i = 0; i < started; i++)
			pthread_join(tids[i], NULL);
	}
	fprintf(stderr, "hss-emulator: signal %d, stopped\n", sig);
	rc = 0;
	if (left > 0) {
		/* Idle threads still hold e and conf: leave them to exit. */
		if (unixpath[0] != '\0')
			unlink(unixpath);
		fflush(stderr);
		_exit(0);
	}
out:
	if (unixpath[0] != '\0')
		unlink(unixpath);
	if (e.listenfd > 0)
		close(e.listenfd);
	if (e.logfd != -1)
		close(e.logfd);
	free(tids);
	if (e.issued != NULL) {
		gw_wipe(e.issued, e.capissued * sizeof(*e.issued));
		free(e.issued);
	}
	conf_free(conf);
	return rc;
}
