/*
 * Audit trail writer: records are complete chained JSON lines that never
 * hold a secret and validate against docs/audit.schema.json; group commit
 * under 8 threads writes each record exactly once with contiguous seq; an
 * unwritable trail fails closed and a reopen brings it back; rotation (by
 * size, or rename + reopen under load) keeps the chain verifiable across
 * files; a restart continues the chain, also over a cut-off tail.  Caller
 * strings come out capped and valid UTF-8; an anonymous flood is counted
 * into summary records within its byte bound; a broken trail heals with
 * no reopen once writes work.  Signed checkpoint records land at rotation
 * and close, chain across a restart and verify with the public key only.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <glob.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit.h"
#include "auditq.h"
#include "gw.h"
#include "upreq.h"

#define SECRET     "tok-SECRET-never-in-audit"
#define THREADS    8
#define PER_THREAD 200

static struct json_object *schema;

/*
 * A validator for the JSON Schema subset docs/audit.schema.json uses.
 * Any other keyword makes validation fail, so the schema cannot quietly
 * rely on something this does not check.
 */
static int validate(struct json_object *s, struct json_object *v,
                    const char *where, char *why, size_t whylen);

static int
type_is(struct json_object *v, const char *t)
{
	enum json_type jt = json_object_get_type(v);

	if (strcmp(t, "null") == 0)
		return jt == json_type_null;
	if (strcmp(t, "string") == 0)
		return jt == json_type_string;
	if (strcmp(t, "integer") == 0)
		return jt == json_type_int;
	if (strcmp(t, "number") == 0)
		return jt == json_type_int || jt == json_type_double;
	if (strcmp(t, "object") == 0)
		return jt == json_type_object;
	if (strcmp(t, "array") == 0)
		return jt == json_type_array;
	if (strcmp(t, "boolean") == 0)
		return jt == json_type_boolean;
	return 0;
}

static int
bad(char *why, size_t whylen, const char *where, const char *what)
{
	/* A cut message is fine: it only explains a failure. */
	if (snprintf(why, whylen, "%s: %s", where, what) >= (int)whylen)
		why[whylen - 1] = '\0';
	return -1;
}

static int
check_type(struct json_object *t, struct json_object *v)
{
	size_t i;

	if (json_object_is_type(t, json_type_string))
		return type_is(v, json_object_get_string(t));
	for (i = 0; i < json_object_array_length(t); i++)
		if (type_is(v, json_object_get_string(
		                   json_object_array_get_idx(t, i))))
			return 1;
	return 0;
}

static int
check_pattern(const char *pat, const char *s)
{
	regex_t re;
	int ok;

	if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static int
check_object(struct json_object *s, struct json_object *v, const char *where,
             char *why, size_t whylen)
{
	struct json_object *props = NULL, *req = NULL, *addl = NULL, *ps;
	char sub[512];
	size_t i;

	json_object_object_get_ex(s, "properties", &props);
	json_object_object_get_ex(s, "additionalProperties", &addl);
	if (json_object_object_get_ex(s, "required", &req))
		for (i = 0; i < json_object_array_length(req); i++)
			if (!json_object_object_get_ex(
			        v,
			        json_object_get_string(
			            json_object_array_get_idx(req, i)),
			        NULL))
				return bad(
				    why, whylen, where,
				    json_object_get_string(
				        json_object_array_get_idx(req, i)));
	json_object_object_foreach(v, k, val)
	{
		snprintf(sub, sizeof(sub), "%s.%s", where, k);
		if (props != NULL && json_object_object_get_ex(props, k, &ps)) {
			if (validate(ps, val, sub, why, whylen) == -1)
				return -1;
		} else if (addl != NULL &&
		           json_object_is_type(addl, json_type_boolean)) {
			if (!json_object_get_boolean(addl))
				return bad(why, whylen, sub, "not allowed");
		} else if (addl != NULL &&
		           validate(addl, val, sub, why, whylen) == -1)
			return -1;
	}
	return 0;
}

static int
validate(struct json_object *s, struct json_object *v, const char *where,
         char *why, size_t whylen)
{
	static const char *const ignored[] = {
	    "$schema", "$id",        "title",    "description",
	    "$defs",   "properties", "required", "additionalProperties",
	};
	struct json_object *x = NULL;
	const char *ref;
	char sub[512];
	size_t i, n;
	int hit;

	json_object_object_foreach(s, kw, arg)
	{
		(void)arg;
		for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
			if (strcmp(kw, ignored[i]) == 0)
				break;
		if (i < sizeof(ignored) / sizeof(ignored[0]))
			continue;
		if (strcmp(kw, "type") == 0) {
			if (!check_type(arg, v))
				return bad(why, whylen, where, "wrong type");
		} else if (strcmp(kw, "const") == 0) {
			if (!json_object_equal(arg, v))
				return bad(why, whylen, where, "not the const");
		} else if (strcmp(kw, "enum") == 0) {
			n = json_object_array_length(arg);
			for (i = 0, hit = 0; i < n && !hit; i++)
				hit = json_object_equal(
				    json_object_array_get_idx(arg, i), v);
			if (!hit)
				return bad(why, whylen, where, "not in enum");
		} else if (strcmp(kw, "pattern") == 0) {
			if (json_object_is_type(v, json_type_string) &&
			    !check_pattern(json_object_get_string(arg),
			                   json_object_get_string(v)))
				return bad(why, whylen, where, "pattern");
		} else if (strcmp(kw, "minimum") == 0) {
			if (type_is(v, "number") &&
			    json_object_get_double(v) <
			        json_object_get_double(arg))
				return bad(why, whylen, where, "below minimum");
		} else if (strcmp(kw, "maximum") == 0) {
			if (type_is(v, "number") &&
			    json_object_get_double(v) >
			        json_object_get_double(arg))
				return bad(why, whylen, where, "above maximum");
		} else if (strcmp(kw, "items") == 0) {
			if (json_object_is_type(v, json_type_array))
				for (i = 0; i < json_object_array_length(v);
				     i++) {
					snprintf(sub, sizeof(sub), "%s[%zu]",
					         where, i);
					if (validate(
					        arg,
					        json_object_array_get_idx(v, i),
					        sub, why, whylen) == -1)
						return -1;
				}
		} else if (strcmp(kw, "$ref") == 0) {
			ref = json_object_get_string(arg);
			if (strncmp(ref, "#/$defs/", 8) != 0 ||
			    !json_object_object_get_ex(schema, "$defs", &x) ||
			    !json_object_object_get_ex(x, ref + 8, &x))
				return bad(why, whylen, where, "bad $ref");
			if (validate(x, v, where, why, whylen) == -1)
				return -1;
		} else
			return bad(why, whylen, kw, "keyword not supported");
	}
	if (json_object_is_type(v, json_type_object))
		return check_object(s, v, where, why, whylen);
	return 0;
}

/* Validates one record line; fails the test with the reason. */
static void
assert_valid(const char *line)
{
	struct json_object *o;
	char why[512];

	o = json_tokener_parse(line);
	if (o == NULL)
		fail_msg("not JSON: %.120s", line);
	if (validate(schema, o, "$", why, sizeof(why)) == -1)
		fail_msg("schema: %s in %.200s", why, line);
	json_object_put(o);
}

static int
is_valid(const char *line)
{
	struct json_object *o;
	char why[512];
	int ok;

	o = json_tokener_parse(line);
	ok = o != NULL && validate(schema, o, "$", why, sizeof(why)) == 0;
	json_object_put(o);
	return ok;
}

static int
setup(void **state)
{
	(void)state;
	schema = json_object_from_file(GW_SOURCE_DIR "/docs/audit.schema.json");
	return schema == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	json_object_put(schema);
	return 0;
}

static void
fill(struct gw_audit_rec *r, const struct gw_upreq *up)
{
	static const char *const groups[] = {"hss-exporters", "team-a"};

	memset(r, 0, sizeof(*r));
	r->time_ms = 1767225600123LL;
	r->request_id = "abc123";
	r->client_addr = "127.0.0.1";
	r->subject = "dev-alice";
	r->token_fp = "0123456789abcdef";
	r->groups = groups;
	r->ngroups = 2;
	r->decision = "allow";
	r->stmt_file = "demo.json";
	r->stmt_sid = "AllowExporters";
	r->status = 200;
	r->upreq = up;
	r->up_status = 200;
	r->task_id = "task-1";
	r->record_total_num = 42;
	r->lat_total_us = 1500;
}

static char *
tmpdir(void)
{
	char tmpl[] = "/tmp/hssgw-audit-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return strdup(tmpl);
}

static void
rmtree(char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

/* Reads every line of a file; the caller frees lines and the array. */
static size_t
read_lines(const char *path, char ***out)
{
	static char line[GW_AUDITQ_LINE_MAX + 2];
	char **v = NULL;
	size_t n = 0;
	FILE *f;

	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		v = realloc(v, (n + 1) * sizeof(*v));
		line[strcspn(line, "\n")] = '\0';
		v[n++] = strdup(line);
	}
	fclose(f);
	*out = v;
	return n;
}

static void
free_lines(char **v, size_t n)
{
	while (n > 0)
		free(v[--n]);
	free(v);
}

static void
verify_ok(const char *const *files, size_t n, const char *ckpt,
          long long records)
{
	struct gw_auditq_report rep;

	if (gw_auditq_verify(files, n, ckpt, 1, &rep) != 0)
		fail_msg("verify: %s at %s:%lld: %s",
		         gw_auditq_problem_name(rep.problem), rep.file,
		         rep.line, rep.msg);
	assert_int_equal(rep.records, records);
	assert_int_equal(rep.checkpoint_checked, 1);
}

/* 1 when s is well-formed UTF-8 throughout (what strict readers want). */
static int
utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0, k, j;
	unsigned cp;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf)
			k = 2;
		else if (s[i] >= 0xe0 && s[i] <= 0xef)
			k = 3;
		else if (s[i] >= 0xf0 && s[i] <= 0xf4)
			k = 4;
		else
			return 0;
		if (i + k > n)
			return 0;
		cp = s[i] & (k == 2 ? 0x1fu : k == 3 ? 0x0fu : 0x07u);
		for (j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3fu);
		}
		if ((k == 3 &&
		     (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		i += k;
	}
	return 1;
}

static const char *
member(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v))
		return NULL;
	return json_object_get_string(v);
}

/*
 * The gap: a 16 KB path of control bytes became a 32 KB record, and
 * invalid UTF-8 reached the trail raw (strict readers reject the file).
 * Every caller string is capped with its length and SHA-256 kept, and
 * invalid bytes become U+FFFD.  Positive control: short, valid values
 * (UTF-8 included) are recorded byte for byte.
 */
static void
strings_capped_and_utf8(void **state)
{
	static const char *const many[40] = {"g"};
	unsigned char md[32];
	unsigned int mdlen = 0;
	char *path, want[200], hex[65];
	const char *groups[40];
	struct gw_audit_rec r;
	struct json_object *o, *g;
	struct gw_buf b;
	size_t i;

	(void)state;
	path = malloc(16385);
	assert_non_null(path);
	memset(path, 0x01, 16384);
	path[0] = '/';
	path[16384] = '\0';
	fill(&r, NULL);
	r.path = path;
	r.subject = "\xff\xfe-evil-\xc0\xaf-\xed\xa0\x80";
	for (i = 0; i < 40; i++)
		groups[i] = many[0];
	r.groups = groups;
	r.ngroups = 40;
	gw_buf_init(&b, 1 << 20);
	assert_int_equal(gw_audit_format(&r, &b), 0);
	assert_true(b.len < 8192);
	assert_true(utf8_ok((const unsigned char *)b.p, b.len));
	o = json_tokener_parse(b.p);
	EVP_Digest(path, 16384, md, &mdlen, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(want, sizeof(want), "...[truncated 16384 bytes sha256:%s]",
	         hex);
	assert_non_null(strstr(member(o, "path"), want));
	assert_int_equal(strncmp(member(o, "path"), path, 100), 0);
	/* Each invalid byte is U+FFFD, nothing raw. */
	assert_string_equal(member(o, "subject"),
	                    "\xef\xbf\xbd\xef\xbf\xbd-evil-\xef\xbf\xbd\xef\xbf"
	                    "\xbd-\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	assert_true(json_object_object_get_ex(o, "groups", &g));
	assert_int_equal(json_object_array_length(g), 33);
	assert_string_equal(
	    json_object_get_string(json_object_array_get_idx(g, 32)),
	    "...[truncated 40 values]");
	json_object_put(o);
	free(path);

	/* Positive control. */
	fill(&r, NULL);
	r.path = "/v1/exports/image-baseline/\xc3\xbc\xe2\x82\xac";
	r.subject = "dev-alice";
	gw_buf_reset(&b);
	gw_buf_init(&b, 1 << 20);
	assert_int_equal(gw_audit_format(&r, &b), 0);
	o = json_tokener_parse(b.p);
	assert_string_equal(member(o, "path"), r.path);
	assert_string_equal(member(o, "subject"), "dev-alice");
	assert_null(strstr(b.p, "truncated"));
	/* Latencies in ms to the microsecond, read back as numbers. */
	assert_non_null(strstr(b.p, "\"total\":1.500}"));
	json_object_put(o);
	gw_buf_reset(&b);
}

/* Counts "anonymous" entries of every summary record in lines. */
static long long
summary_counts(char **lines, size_t n, const char *addr, size_t *nsum)
{
	struct json_object *o, *s, *arr, *e;
	long long total = 0;
	size_t i, j;

	*nsum = 0;
	for (i = 0; i < n; i++) {
		o = json_tokener_parse(lines[i]);
		if (json_object_object_get_ex(o, "summary", &s)) {
			assert_string_equal(member(o, "phase"), "summary");
			(*nsum)++;
			json_object_object_get_ex(s, "anonymous", &arr);
			for (j = 0; j < json_object_array_length(arr); j++) {
				e = json_object_array_get_idx(arr, j);
				if (strcmp(member(e, "client_addr"), addr) == 0)
					total += json_object_get_int64(
					    json_object_object_get(e, "count"));
			}
		}
		json_object_put(o);
	}
	return total;
}

/*
 * The gap: anonymous answers (no verified token) each wrote a full
 * record, so one address grew the trail by gigabytes an hour.  Past
 * anon_bytes_per_hour they are counted into one summary record per
 * interval, never dropped: written + counted = sent.  Positive control:
 * every authenticated record is written, flood or not.
 */
static void
anonymous_flood_summarised(void **state)
{
	struct gw_audit_opts opts = {.anon_bytes_per_hour = 4096,
	                             .summary_interval_ms = 1000};
	char *dir = tmpdir(), path[256], ckpt[300], err[256];
	const char *files[1];
	struct gw_audit_rec r;
	struct gw_audit *a;
	struct stat sb;
	char **lines;
	size_t n, i, nsum;
	long long anon_written = 0, counted;
	int64_t t0 = 1767225600000LL;

	(void)state;
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	snprintf(ckpt, sizeof(ckpt), "%s.checkpoint", path);
	a = gw_audit_open_opts(path, &opts, err, sizeof(err));
	assert_non_null(a);
	for (i = 0; i < 500; i++) {
		fill(&r, NULL);
		r.time_ms = t0 + (int64_t)i; /* within one interval */
		r.anonymous = 1;
		r.subject = NULL;
		r.groups = NULL;
		r.client_addr = "203.0.113.9";
		r.status = 404;
		r.error_code = "HSSGW.0404";
		assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
		if (i % 50 == 0) {
			/* Authenticated: always its own record. */
			fill(&r, NULL);
			r.time_ms = t0 + (int64_t)i;
			r.request_id = "authenticated";
			assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)),
			                 GW_OK);
		}
	}
	assert_true(gw_audit_summarised(a) > 400);
	assert_int_equal(stat(path, &sb), 0);
	/* The burst is one interval's worth, at least 16 KiB. */
	assert_true(sb.st_size < 16384 + 10 * 2048 + 4096);
	/* The interval ends: the next record brings the summary. */
	fill(&r, NULL);
	r.time_ms = t0 + 5000;
	assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
	gw_audit_close(a);
	n = read_lines(path, &lines);
	for (i = 0; i < n; i++) {
		assert_valid(lines[i]);
		if (strstr(lines[i], "\"client_addr\":\"203.0.113.9\"") &&
		    strstr(lines[i], "\"phase\":\"final\""))
			anon_written++;
	}
	counted = summary_counts(lines, n, "203.0.113.9", &nsum);
	assert_int_equal(nsum, 1);
	assert_int_equal(anon_written + counted, 500);
	assert_true(anon_written > 0 && anon_written < 40);
	for (i = 0, counted = 0; i < n; i++)
		if (strstr(lines[i], "\"request_id\":\"authenticated\""))
			counted++;
	assert_int_equal(counted, 10);
	files[0] = path;
	verify_ok(files, 1, ckpt, (long long)n);
	free_lines(lines, n);
	rmtree(dir);
}

/*
 * The gap: after a failed write the trail refused every request until
 * someone sent SIGUSR1, even with the disk writable again.  Now it heals
 * by itself within GW_AUDIT_HEAL_MS and says so in a summary record;
 * control: while writes still fail it stays not ready.
 */
static void
heals_without_signal(void **state)
{
	struct rlimit old, small;
	struct gw_audit_rec r;
	struct gw_audit *a;
	struct timespec ts = {0, (GW_AUDIT_HEAL_MS + 50) * 1000000L};
	char *dir = tmpdir(), path[256], ckpt[300], err[256];
	const char *files[1];
	char **lines;
	size_t n;

	(void)state;
	fill(&r, NULL);
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	snprintf(ckpt, sizeof(ckpt), "%s.checkpoint", path);
	a = gw_audit_open(path, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 3000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	while (gw_audit_emit(a, &r, err, sizeof(err)) == GW_OK)
		;
	assert_int_equal(gw_audit_ready(a), 0);
	/* Still failing: a heal attempt must not claim readiness. */
	nanosleep(&ts, NULL);
	assert_int_equal(gw_audit_ready(a), 0);
	assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_ERR_AUDIT);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	nanosleep(&ts, NULL);
	assert_int_equal(gw_audit_ready(a), 1);
	assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
	gw_audit_close(a);
	n = read_lines(path, &lines);
	assert_non_null(strstr(lines[n - 2], "\"trail_failure\""));
	assert_non_null(strstr(lines[n - 2], "File too large"));
	assert_valid(lines[n - 2]);
	free_lines(lines, n);
	files[0] = path;
	verify_ok(files, 1, ckpt, (long long)n);
	rmtree(dir);
}

static void
format_redacts(void **state)
{
	struct gw_upreq *up;
	struct gw_audit_rec r;
	struct json_object *o, *v;
	struct gw_buf b;

	(void)state;
	up = gw_upreq_new("POST", "https://hss.example/v5/p/image/baseline/"
	                          "export?export_size=1");
	assert_non_null(up);
	assert_int_equal(gw_upreq_set_header(up, "X-Auth-Token", SECRET, 1), 0);
	assert_int_equal(gw_upreq_set_header(up, "region", "cn-north-4", 0), 0);
	fill(&r, up);
	gw_buf_init(&b, 1 << 20);
	assert_int_equal(gw_audit_format(&r, &b), 0);
	/* The gap this pins: a token copied into the trail. */
	assert_null(strstr(b.p, SECRET));
	assert_non_null(strstr(b.p, "<redacted>"));
	/* Positive control: the non-secret header is there verbatim. */
	assert_non_null(strstr(b.p, "cn-north-4"));
	assert_null(strchr(b.p, '\n'));
	/* The chain header is spliced in before "phase". */
	assert_int_equal(strncmp(b.p, "{\"phase\":\"final\",", 17), 0);
	o = json_tokener_parse(b.p);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "time", &v));
	assert_string_equal(json_object_get_string(v),
	                    "2026-01-01T00:00:00.123Z");
	assert_true(json_object_object_get_ex(o, "groups", &v));
	assert_int_equal(json_object_array_length(v), 2);
	assert_true(json_object_object_get_ex(o, "upstream", &v));
	assert_true(json_object_object_get_ex(v, "task_id", &v));
	assert_string_equal(json_object_get_string(v), "task-1");
	json_object_put(o);
	gw_buf_reset(&b);
	/* A phase outside the enum is refused, not printed. */
	r.phase = GW_AUDIT_PHASE__MAX;
	assert_int_equal(gw_audit_format(&r, &b), -1);
	gw_buf_reset(&b);
	gw_upreq_free(up);
}

/* Every phase, with and without an upstream request, fits the schema. */
static void
records_match_schema(void **state)
{
	static const enum gw_audit_phase ph[] = {
	    GW_AUDIT_FINAL, GW_AUDIT_INTENT, GW_AUDIT_OUTCOME};
	char *dir = tmpdir(), path[256], err[256], **lines;
	struct gw_audit_rec r;
	struct gw_upreq *up;
	struct gw_audit *a;
	size_t i, n;

	(void)state;
	up = gw_upreq_new("POST", "https://hss.example/v5/p/image/baseline/"
	                          "export");
	assert_int_equal(gw_upreq_set_header(up, "X-Auth-Token", SECRET, 1), 0);
	up->body = strdup("{\"a\":1}");
	up->bodylen = 7;
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	a = gw_audit_open(path, err, sizeof(err));
	assert_non_null(a);
	for (i = 0; i < 3; i++) {
		fill(&r, up);
		r.phase = ph[i];
		if (r.phase == GW_AUDIT_INTENT) {
			r.status = 0;
			r.up_status = 0;
			r.task_id = NULL;
			r.record_total_num = -1;
		}
		assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
	}
	/* A request that failed before anything: almost all null. */
	memset(&r, 0, sizeof(r));
	r.status = 401;
	r.error_code = "HSSGW.0101";
	r.record_total_num = -1;
	assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
	gw_audit_close(a);
	n = read_lines(path, &lines);
	assert_int_equal(n, 4);
	for (i = 0; i < n; i++) {
		assert_null(strstr(lines[i], SECRET));
		assert_valid(lines[i]);
	}
	assert_non_null(strstr(lines[1], "\"phase\":\"intent\""));
	assert_non_null(strstr(lines[1], "\"status\":null"));
	/*
	 * The validator can fail: an unknown member, a token that was not
	 * redacted, and a bad hash are each rejected.
	 */
	assert_false(is_valid("{\"v\":1}"));
	{
		char *e = strdup(lines[0]), *p;

		p = strstr(e, "\"phase\"");
		memcpy(p, "\"phasX\"", 7);
		assert_false(is_valid(e));
		free(e);
		e = strdup(lines[0]);
		p = strstr(e, "<redacted>");
		memcpy(p, "tok-SECRE>", 10);
		assert_false(is_valid(e));
		free(e);
		e = strdup(lines[0]);
		p = strstr(e, "\"hash\":\"") + 8;
		*p = 'X';
		assert_false(is_valid(e));
		free(e);
	}
	free_lines(lines, n);
	gw_upreq_free(up);
	rmtree(dir);
}

struct job {
	struct gw_audit *a;
	int id;
	int n;
};

static void *
writer(void *arg)
{
	struct job *j = arg;
	struct gw_audit_rec r;
	char rid[32], err[128];
	int i;

	for (i = 0; i < j->n; i++) {
		fill(&r, NULL);
		snprintf(rid, sizeof(rid), "t%d-%d", j->id, i);
		r.request_id = rid;
		if (gw_audit_emit(j->a, &r, err, sizeof(err)) != GW_OK)
			return (void *)1;
	}
	return NULL;
}

static void
run_writers(struct gw_audit *a, struct job *jobs, pthread_t *t, int n)
{
	int i;

	for (i = 0; i < THREADS; i++) {
		jobs[i].a = a;
		jobs[i].id = i;
		jobs[i].n = n;
		assert_int_equal(pthread_create(&t[i], NULL, writer, &jobs[i]),
		                 0);
	}
}

static void
join_writers(pthread_t *t)
{
	void *res;
	int i;

	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], &res);
		assert_null(res);
	}
}

/* Checks lines hold every t<i>-<j> once and seq runs from first by 1. */
static void
check_once(char **lines, size_t n, long long first)
{
	static char seen[THREADS][PER_THREAD * 4];
	struct json_object *o, *v;
	int th, k;
	size_t i;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < n; i++) {
		o = json_tokener_parse(lines[i]);
		if (o == NULL)
			fail_msg("line %zu is not whole JSON", i);
		assert_true(json_object_object_get_ex(o, "seq", &v));
		assert_int_equal(json_object_get_int64(v),
		                 first + (long long)i);
		assert_true(json_object_object_get_ex(o, "request_id", &v));
		assert_int_equal(
		    sscanf(json_object_get_string(v), "t%d-%d", &th, &k), 2);
		assert_int_equal(seen[th][k], 0);
		seen[th][k] = 1;
		json_object_put(o);
	}
}

static void
group_commit_once_each(void **state)
{
	char *dir = tmpdir(), path[256], ckpt[300], err[256], **lines;
	const char *files[1];
	struct job jobs[THREADS];
	pthread_t t[THREADS];
	struct gw_audit *a;
	size_t n, i;

	(void)state;
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	snprintf(ckpt, sizeof(ckpt), "%s.checkpoint", path);
	a = gw_audit_open(path, err, sizeof(err));
	assert_non_null(a);
	run_writers(a, jobs, t, PER_THREAD);
	join_writers(t);
	assert_int_equal(gw_audit_durable_seq(a), THREADS * PER_THREAD);
	gw_audit_close(a);
	n = read_lines(path, &lines);
	assert_int_equal(n, THREADS * PER_THREAD);
	check_once(lines, n, 1);
	for (i = 0; i < n; i++)
		assert_valid(lines[i]);
	free_lines(lines, n);
	files[0] = path;
	verify_ok(files, 1, ckpt, THREADS * PER_THREAD);
	rmtree(dir);
}

struct fjob {
	struct gw_audit *a;
	int id;
	int ok; /* records acknowledged before the first failure */
};

static void *
until_failure(void *arg)
{
	struct fjob *j = arg;
	struct gw_audit_rec r;
	char rid[32], err[128];

	for (j->ok = 0; j->ok < PER_THREAD * 4; j->ok++) {
		fill(&r, NULL);
		snprintf(rid, sizeof(rid), "t%d-%d", j->id, j->ok);
		r.request_id = rid;
		if (gw_audit_emit(j->a, &r, err, sizeof(err)) != GW_OK)
			break;
	}
	return NULL;
}

/*
 * Followers sleep on their own semaphores (audit.c, struct waiter): when
 * the disk fails under THREADS writers, every one of them must wake with
 * the failure (alarm: a hang fails the test), and every record any of
 * them had acknowledged must be in the file.  Positive control: reopened,
 * the same writers all succeed.
 */
static void
waiters_fail_together(void **state)
{
	char *dir = tmpdir(), path[256], err[256], want[32], **lines;
	struct fjob jobs[THREADS];
	struct job ok_jobs[THREADS];
	pthread_t t[THREADS];
	struct rlimit old, small;
	struct gw_audit *a;
	size_t n, i;
	int th, k, found;

	(void)state;
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	a = gw_audit_open(path, err, sizeof(err));
	assert_non_null(a);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 200 * 1024; /* about a quarter of the records */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	alarm(60);
	for (th = 0; th < THREADS; th++) {
		jobs[th].a = a;
		jobs[th].id = th;
		assert_int_equal(
		    pthread_create(&t[th], NULL, until_failure, &jobs[th]), 0);
	}
	for (th = 0; th < THREADS; th++)
		pthread_join(t[th], NULL);
	alarm(0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(gw_audit_ready(a), 0);
	n = read_lines(path, &lines);
	assert_true(n > 0);
	for (th = 0; th < THREADS; th++) {
		assert_true(jobs[th].ok < PER_THREAD * 4); /* it failed */
		for (k = 0; k < jobs[th].ok; k++) {
			snprintf(want, sizeof(want), "\"t%d-%d\"", th, k);
			for (found = 0, i = 0; i < n && !found; i++)
				found = strstr(lines[i], want) != NULL;
			if (!found)
				fail_msg("acknowledged %s is not on disk",
				         want);
		}
	}
	free_lines(lines, n);
	/* Positive control: the cause gone, reopened, all succeed. */
	assert_int_equal(gw_audit_reopen(a, err, sizeof(err)), GW_OK);
	run_writers(a, ok_jobs, t, 20);
	join_writers(t);
	assert_int_equal(gw_audit_ready(a), 1);
	gw_audit_close(a);
	rmtree(dir);
}

/*
 * gw_audit_emit_async chains and returns; gw_audit_wait says when the
 * record is durable (the front's deferred answers, issue 23).  A ticket is
 * 0 only once its record is on disk: under a file size limit that breaks
 * the trail midway, every ticket that waited to 0 names a record in the
 * file, at least one fails, a ticket made before the break whose record
 * did land still says 0, and tickets chained after the break fail too.
 */
static void
tickets_say_durable(void **state)
{
	enum { N = 400 };
	char *dir = tmpdir(), path[256], err[256], rid[32], **lines;
	static struct gw_audit_ticket t[N];
	struct gw_audit_rec r;
	struct rlimit old, small;
	struct gw_audit_opts o;
	struct gw_audit *a;
	size_t n, i;
	int k, ok = 0, failed = 0, found;

	(void)state;
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	a = gw_audit_open(path, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(gw_audit_can_defer(a), 1);
	assert_int_equal(gw_audit_can_defer(NULL), 0);
	/* Positive control: chained, then durable once waited for. */
	fill(&r, NULL);
	r.request_id = "first";
	assert_int_equal(gw_audit_emit_async(a, &r, &t[0], err, sizeof(err)),
	                 GW_OK);
	assert_true(t[0].seq > 0);
	assert_int_equal(gw_audit_wait(a, &t[0], err, sizeof(err)), 0);
	assert_true(gw_audit_durable_seq(a) >= t[0].seq);
	/* Waiting again, or for an older ticket, returns at once. */
	assert_int_equal(gw_audit_wait(a, &t[0], err, sizeof(err)), 0);

	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 100 * 1024; /* well short of N records */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	for (k = 0; k < N; k++) {
		fill(&r, NULL);
		snprintf(rid, sizeof(rid), "async-%d", k);
		r.request_id = rid;
		if (gw_audit_emit_async(a, &r, &t[k], err, sizeof(err)) !=
		    GW_OK) {
			t[k].seq = -1; /* refused: nothing chained */
			continue;
		}
		/* Every 8th waits at once: commits interleave with chaining. */
		if (k % 8 == 7)
			(void)gw_audit_wait(a, &t[k], err, sizeof(err));
	}
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	n = read_lines(path, &lines);
	for (k = 0; k < N; k++) {
		if (t[k].seq == -1 ||
		    gw_audit_wait(a, &t[k], err, sizeof(err)) != 0) {
			failed++;
			continue;
		}
		ok++;
		snprintf(rid, sizeof(rid), "\"async-%d\"", k);
		for (found = 0, i = 0; i < n && !found; i++)
			found = strstr(lines[i], rid) != NULL;
		if (!found)
			fail_msg("ticket %d said durable; not on disk", k);
	}
	free_lines(lines, n);
	assert_true(ok > 0);
	assert_true(failed > 0);
	assert_non_null(strstr(err, "audit trail broken"));
	gw_audit_close(a);

	/* audit.syslog: the emitter writes the copy, so it never defers. */
	memset(&o, 0, sizeof(o));
	o.syslog = 1;
	snprintf(path, sizeof(path), "%s/syslog.jsonl", dir);
	a = gw_audit_open_opts(path, &o, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(gw_audit_can_defer(a), 0);
	fill(&r, NULL);
	assert_int_equal(gw_audit_emit_async(a, &r, &t[0], err, sizeof(err)),
	                 GW_OK);
	assert_int_equal(t[0].seq, 0); /* already durable */
	assert_int_equal(gw_audit_durable_seq(a), 1);
	gw_audit_close(a);
	rmtree(dir);
}

static void
unwritable_fails_closed(void **state)
{
	struct rlimit old, small;
	struct gw_audit_rec r;
	struct gw_audit *a;
	char *dir = tmpdir(), path[256], err[256];

	(void)state;
	fill(&r, NULL);
	/* /dev/full accepts open(2) and fails every write with ENOSPC. */
	a = gw_audit_open("/dev/full", err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(gw_audit_ready(a), 1);
	assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_ERR_AUDIT);
	assert_non_null(strstr(err, "No space"));
	assert_int_equal(gw_audit_ready(a), 0);
	/* Broken stays broken: the next record fails without a write. */
	assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_ERR_AUDIT);
	gw_audit_close(a);

	/* A file size limit reached (EFBIG), then lifted and reopened. */
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	a = gw_audit_open(path, err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 1500;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	while (gw_audit_emit(a, &r, err, sizeof(err)) == GW_OK)
		;
	assert_int_equal(gw_audit_ready(a), 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_ERR_AUDIT);
	/* Positive control: once the cause is gone, reopen heals it. */
	assert_int_equal(gw_audit_reopen(a, err, sizeof(err)), GW_OK);
	assert_int_equal(gw_audit_ready(a), 1);
	assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
	gw_audit_close(a);
	{
		const char *files[] = {path};
		struct gw_auditq_report rep;
		char ck[300];

		snprintf(ck, sizeof(ck), "%s.checkpoint", path);
		assert_int_equal(gw_auditq_verify(files, 1, ck, 1, &rep), 0);
	}

	/* A directory that cannot take the file. */
	assert_null(
	    gw_audit_open("/nonexistent-dir/audit.jsonl", err, sizeof(err)));
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/ro", dir);
		assert_int_equal(mkdir(path, 0500), 0);
		strcat(path, "/audit.jsonl");
		assert_null(gw_audit_open(path, err, sizeof(err)));
	} else {
		/* root ignores mode bits: a path through a file fails too. */
		snprintf(path, sizeof(path), "%s/audit.jsonl/x", dir);
		assert_null(gw_audit_open(path, err, sizeof(err)));
	}
	assert_int_equal(gw_audit_ready(NULL), 0);
	rmtree(dir);
}

/* Rotated files first (their names sort by time), the live file last. */
static size_t
trail_files(const char *path, glob_t *g, const char **files, size_t cap)
{
	char pat[300];
	size_t i, n = 0;

	snprintf(pat, sizeof(pat), "%s.2*", path);
	assert_int_equal(glob(pat, 0, NULL, g), 0);
	for (i = 0; i < g->gl_pathc && n + 1 < cap; i++)
		files[n++] = g->gl_pathv[i];
	files[n++] = path;
	return n;
}

static void
rotation_by_size(void **state)
{
	struct gw_audit_opts opts = {.rotate_bytes = 8192};
	char *dir = tmpdir(), path[256], ckpt[300], err[256];
	const char *files[256];
	struct job jobs[THREADS];
	pthread_t t[THREADS];
	struct gw_audit *a;
	glob_t g;
	size_t n;

	(void)state;
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	snprintf(ckpt, sizeof(ckpt), "%s.checkpoint", path);
	a = gw_audit_open_opts(path, &opts, err, sizeof(err));
	assert_non_null(a);
	run_writers(a, jobs, t, 50);
	join_writers(t);
	gw_audit_close(a);
	n = trail_files(path, &g, files, 256);
	assert_true(n > 3);
	verify_ok(files, n, ckpt, THREADS * 50);
	/* Positive control for the order: the rotated files reversed fail. */
	{
		const char *tmp = files[0];
		struct gw_auditq_report rep;

		files[0] = files[1];
		files[1] = tmp;
		assert_int_equal(gw_auditq_verify(files, n, ckpt, 1, &rep), -1);
	}
	globfree(&g);
	rmtree(dir);
}

/* logrotate's way: rename the file, then reopen, while 8 threads write. */
static void
rename_reopen_under_load(void **state)
{
	char *dir = tmpdir(), path[256], ckpt[300], rot[300], err[256];
	const char *files[8];
	struct job jobs[THREADS];
	pthread_t t[THREADS];
	struct gw_audit *a;
	long long total = 0;
	char **lines;
	size_t i, n;
	int k;

	(void)state;
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	snprintf(ckpt, sizeof(ckpt), "%s.checkpoint", path);
	a = gw_audit_open(path, err, sizeof(err));
	assert_non_null(a);
	run_writers(a, jobs, t, PER_THREAD);
	for (k = 0; k < 3; k++) {
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
		snprintf(rot, sizeof(rot), "%s.%d", path, k);
		assert_int_equal(rename(path, rot), 0);
		assert_int_equal(gw_audit_reopen(a, err, sizeof(err)), GW_OK);
	}
	join_writers(t);
	gw_audit_close(a);
	for (k = 0; k < 3; k++) {
		snprintf(rot, sizeof(rot), "%s.%d", path, k);
		files[k] = strdup(rot);
	}
	files[3] = path;
	for (i = 0; i < 4; i++) {
		n = read_lines(files[i], &lines);
		total += (long long)n;
		free_lines(lines, n);
	}
	assert_int_equal(total, THREADS * PER_THREAD);
	verify_ok(files, 4, ckpt, THREADS * PER_THREAD);
	for (k = 0; k < 3; k++)
		free((char *)files[k]);
	rmtree(dir);
}

static void
append(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
emit_n(struct gw_audit *a, int n)
{
	struct gw_audit_rec r;
	char err[256];

	fill(&r, NULL);
	while (n-- > 0)
		assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
}

static void
restart_continues_chain(void **state)
{
	char *dir = tmpdir(), path[256], ckpt[300], err[256], **lines;
	const char *files[1];
	struct gw_auditq_report rep;
	struct gw_audit *a;
	size_t n;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	snprintf(ckpt, sizeof(ckpt), "%s.checkpoint", path);
	files[0] = path;
	a = gw_audit_open(path, err, sizeof(err));
	emit_n(a, 3);
	gw_audit_close(a);
	/* A crash mid-write leaves a torn line; the restart cuts it off. */
	append(path, "{\"v\":1,\"seq\":4,\"prev\":\"00");
	a = gw_audit_open(path, err, sizeof(err));
	assert_non_null(a);
	emit_n(a, 2);
	gw_audit_close(a);
	verify_ok(files, 1, ckpt, 5);

	/*
	 * The gap this pins: a tail cut off while hssgw was down must not
	 * be papered over by a restart chaining onto the shortened file.
	 */
	n = read_lines(path, &lines);
	f = fopen(path, "w");
	fprintf(f, "%s\n%s\n%s\n", lines[0], lines[1], lines[2]);
	fclose(f);
	free_lines(lines, n);
	a = gw_audit_open(path, err, sizeof(err));
	assert_non_null(a);
	emit_n(a, 1);
	gw_audit_close(a);
	assert_int_equal(gw_auditq_verify(files, 1, ckpt, 1, &rep), -1);
	assert_int_equal(rep.problem, GW_AQ_REMOVED);
	assert_int_equal(rep.seq, 6);

	/* A last record that is not a record: refuse to guess the chain. */
	append(path, "garbage\n");
	assert_null(gw_audit_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "last record unreadable"));
	rmtree(dir);
}

/*
 * The checkpoint is rewritten at most once a second, not per record, and
 * the tick catches up an idle trail: records are durable at once either
 * way (the chain verifies), the checkpoint follows within the interval.
 */
static void
checkpoint_interval_and_tick(void **state)
{
	char *dir = tmpdir(), path[256], ckpt[300], err[256], hash[65];
	const char *files[1];
	struct gw_audit *a;
	long long seq = 0;
	long long before;
	struct timespec ts = {1, 100000000L};

	(void)state;
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	snprintf(ckpt, sizeof(ckpt), "%s.checkpoint", path);
	files[0] = path;
	a = gw_audit_open(path, err, sizeof(err));
	assert_non_null(a);
	emit_n(a, 1); /* the first commit writes it */
	assert_int_equal(
	    gw_auditq_checkpoint_read(ckpt, &seq, hash, err, sizeof(err)), 1);
	assert_int_equal(seq, 1);
	before = gw_audit_commits(a);
	emit_n(a, 20);
	/* 20 serial commits, one checkpoint: it still names seq 1. */
	assert_int_equal(gw_audit_commits(a) - before, 20);
	assert_int_equal(
	    gw_auditq_checkpoint_read(ckpt, &seq, hash, err, sizeof(err)), 1);
	assert_int_equal(seq, 1);
	/* Positive control: a tick within the interval changes nothing... */
	gw_audit_tick(a);
	assert_int_equal(
	    gw_auditq_checkpoint_read(ckpt, &seq, hash, err, sizeof(err)), 1);
	assert_int_equal(seq, 1);
	/* ...one past it catches up with the durable records. */
	nanosleep(&ts, NULL);
	gw_audit_tick(a);
	assert_int_equal(
	    gw_auditq_checkpoint_read(ckpt, &seq, hash, err, sizeof(err)), 1);
	assert_int_equal(seq, 21);
	assert_int_equal(gw_audit_ready(a), 1);
	gw_audit_close(a);
	verify_ok(files, 1, ckpt, 21);
	rmtree(dir);
}

/* Writes a fresh Ed25519 key pair as PEM: private (mode), public. */
static void
ed25519_pair(const char *priv, mode_t mode, const char *pub)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	FILE *f;

	assert_non_null(k);
	f = fopen(priv, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL),
	                 1);
	fclose(f);
	assert_int_equal(chmod(priv, mode), 0);
	f = fopen(pub, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PUBKEY(f, k), 1);
	fclose(f);
	EVP_PKEY_free(k);
}

/* 1 when the file's last line is a "checkpoint" record valid by schema. */
static int
ends_signed(const char *path)
{
	char **lines;
	size_t n, i;
	int ok;

	n = read_lines(path, &lines);
	for (i = 0; i < n; i++)
		assert_valid(lines[i]);
	ok =
	    n > 0 && strstr(lines[n - 1], ",\"phase\":\"checkpoint\",") != NULL;
	free_lines(lines, n);
	return ok;
}

/*
 * Signed checkpoints: the key is a secret file (a group-readable one is
 * refused, naming it); a rotation by rename + reopen leaves the moved file
 * ending in a checkpoint record, as does every close; after a restart the
 * next one chains to the last; verify --pubkey passes with the key and
 * fails with another one.
 */
static void
signed_checkpoints(void **state)
{
	char *dir = tmpdir(), path[256], moved[300], key[256], pub[256];
	char other[256], otherpriv[256], err[256];
	const char *files[2];
	struct gw_auditq_report rep;
	struct gw_audit_opts o;
	struct gw_audit *a;

	(void)state;
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	snprintf(moved, sizeof(moved), "%s.1", path);
	snprintf(key, sizeof(key), "%s/sign.pem", dir);
	snprintf(pub, sizeof(pub), "%s/sign.pub.pem", dir);
	snprintf(otherpriv, sizeof(otherpriv), "%s/other.pem", dir);
	snprintf(other, sizeof(other), "%s/other.pub.pem", dir);
	ed25519_pair(key, 0644, pub);
	ed25519_pair(otherpriv, 0600, other);
	memset(&o, 0, sizeof(o));
	o.signing_key_file = key;
	o.instance = "gw-unit";
	/* The gap this pins: a signing key others can read is no secret. */
	assert_null(gw_audit_open_opts(path, &o, err, sizeof(err)));
	assert_non_null(strstr(err, "secret file is accessible"));
	assert_int_equal(chmod(key, 0600), 0);
	/* Positive control: not a key at all is refused too. */
	o.signing_key_file = pub;
	assert_null(gw_audit_open_opts(path, &o, err, sizeof(err)));
	o.signing_key_file = key;
	a = gw_audit_open_opts(path, &o, err, sizeof(err));
	assert_non_null(a);
	emit_n(a, 3);
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(gw_audit_reopen(a, err, sizeof(err)), GW_OK);
	assert_true(ends_signed(moved));
	assert_int_equal(gw_audit_signed(a), 1);
	emit_n(a, 2);
	gw_audit_close(a);
	assert_true(ends_signed(path));
	/* A restart: the next checkpoint chains to the last one. */
	a = gw_audit_open_opts(path, &o, err, sizeof(err));
	assert_non_null(a);
	emit_n(a, 1);
	gw_audit_close(a);
	assert_true(ends_signed(path));
	files[0] = moved;
	files[1] = path;
	if (gw_auditq_verify_signed(files, 2, NULL, 0, pub, &rep) != 0)
		fail_msg("verify: %s at %s:%lld: %s",
		         gw_auditq_problem_name(rep.problem), rep.file,
		         rep.line, rep.msg);
	assert_int_equal(rep.signed_checkpoints, 3);
	assert_int_equal(rep.last_signed_seq, rep.last_seq);
	assert_int_equal(rep.records, 9);
	assert_int_equal(
	    gw_auditq_verify_signed(files, 2, NULL, 0, other, &rep), -1);
	assert_int_equal(rep.problem, GW_AQ_SIGNATURE);
	/* Without the rotated file: its first is unchained-to, still ok. */
	assert_int_equal(
	    gw_auditq_verify_signed(files + 1, 1, NULL, 0, pub, &rep), 0);
	assert_int_equal(rep.signed_checkpoints, 2);
	rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(format_redacts),
	    cmocka_unit_test(strings_capped_and_utf8),
	    cmocka_unit_test(anonymous_flood_summarised),
	    cmocka_unit_test(heals_without_signal),
	    cmocka_unit_test(records_match_schema),
	    cmocka_unit_test(group_commit_once_each),
	    cmocka_unit_test(unwritable_fails_closed),
	    cmocka_unit_test(waiters_fail_together),
	    cmocka_unit_test(tickets_say_durable),
	    cmocka_unit_test(rotation_by_size),
	    cmocka_unit_test(rename_reopen_under_load),
	    cmocka_unit_test(restart_continues_chain),
	    cmocka_unit_test(checkpoint_interval_and_tick),
	    cmocka_unit_test(signed_checkpoints),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
