/*
 * Translation tests: the golden cases in tests/data/translate (each
 * NNN-name.in.json gives exactly what "hssgw translate" prints), the HSS
 * wire checker, the policy context, the docs table, and attack tests for
 * the rules that keep a caller from steering the upstream call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "translate.h"

#define GOLDEN_DIR GW_TEST_DATA "/translate"
#define FILE_MAX   (4u << 20)

static struct gw_conf_project projects[] = {
    {.alias = "demo",
     .project_id = "0123456789abcdef0123456789abcdef",
     .region = "cn-north-4",
     .endpoint = "https://hss.cn-north-4.myhuaweicloud.com",
     .enterprise_project_id = "0"},
    {.alias = "noeps",
     .project_id = "fedcba9876543210fedcba9876543210",
     .region = "ap-southeast-1",
     .endpoint = "https://hss.ap-southeast-1.myhuaweicloud.com/",
     .enterprise_project_id = NULL},
    {.alias = "odd",
     .project_id = "pid/with space",
     .region = "cn-north-4",
     .endpoint = "https://hss.example.test:8443",
     .enterprise_project_id = "ep 1"},
};

/*
 * The golden cases' config, loaded as the gateway loads it, so endpoint
 * normalisation (a trailing '/' on "noeps" and "wide") is part of every
 * case.  Mirrors projects[] plus "wide" and "listed" (enterprise_projects).
 */
static struct gw_config *conf;

/* What "hssgw translate" prints for one request body. */
static void
translate_cmd(const char *in, size_t len, struct gw_buf *out)
{
	struct gw_export_req *req = NULL;
	struct gw_upreq *up = NULL;
	struct json_object *o = NULL;
	struct gw_fault fault;
	enum gw_err rc;

	memset(&fault, 0, sizeof(fault));
	rc = gw_tr_parse(conf, in, len, &req, &fault);
	if (rc == GW_OK)
		rc = gw_tr_build(req, &up, &fault);
	if (rc == GW_OK) {
		assert_int_equal(
		    gw_upreq_set_header(up, "X-Auth-Token", "secret", 1), 0);
		assert_int_equal(gw_upreq_json(up, out), 0);
		goto out;
	}
	assert_int_equal(fault.err, rc);
	o = json_object_new_object();
	json_object_object_add(o, "status",
	                       json_object_new_int(gw_err_status(rc)));
	json_object_object_add(o, "error_code",
	                       json_object_new_string(gw_err_code(rc)));
	json_object_object_add(o, "field", json_object_new_string(fault.field));
	json_object_object_add(o, "error_msg",
	                       json_object_new_string(fault.msg));
	gw_buf_puts(out,
	            json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(o);
	gw_upreq_free(up);
	gw_tr_req_free(req);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Runs one golden case; returns 1 if it matches. */
static int
golden_one(const char *base)
{
	char path[1024], err[256];
	struct json_object *got = NULL, *want = NULL;
	struct gw_buf out;
	char *in = NULL;
	size_t len = 0;
	int ok = 0;

	gw_buf_init(&out, FILE_MAX);
	snprintf(path, sizeof(path), "%s/%s.in.json", GOLDEN_DIR, base);
	assert_int_equal(
	    gw_read_file(path, FILE_MAX, 0, &in, &len, err, sizeof(err)), 0);
	translate_cmd(in, len, &out);
	snprintf(path, sizeof(path), "%s/%s.expected.json", GOLDEN_DIR, base);
	want = json_object_from_file(path);
	if (want == NULL) {
		fprintf(stderr, "%s: missing or invalid expected file\n", base);
		goto out;
	}
	got = json_tokener_parse(out.p);
	ok = got != NULL && json_object_equal(got, want);
	if (!ok && out.len < 4096)
		fprintf(stderr, "%s:\n  got  %s\n  want %s\n", base, out.p,
		        json_object_to_json_string_ext(want,
		                                       JSON_C_TO_STRING_PLAIN));
	else if (!ok)
		fprintf(stderr, "%s: mismatch (output %zu bytes)\n", base,
		        out.len);
out:
	json_object_put(got);
	json_object_put(want);
	free(in);
	gw_buf_reset(&out);
	return ok;
}

static void
test_golden(void **state)
{
	DIR *d = NULL;
	struct dirent *e;
	char *names[512];
	size_t n = 0, i, bad = 0;

	(void)state;
	d = opendir(GOLDEN_DIR);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (!ends_with(e->d_name, ".in.json"))
			continue;
		assert_true(n < sizeof(names) / sizeof(names[0]));
		names[n] = strdup(e->d_name);
		assert_non_null(names[n]);
		names[n][strlen(names[n]) - strlen(".in.json")] = '\0';
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_names);
	for (i = 0; i < n; i++) {
		bad += !golden_one(names[i]);
		free(names[i]);
	}
	fprintf(stderr, "golden: %zu cases, %zu failed\n", n, bad);
	assert_true(n >= 60);
	assert_int_equal(bad, 0);
}

/* docs/FIELDS.md must hold exactly the generated table. */
static void
test_docs_in_sync(void **state)
{
	const char *begin = "<!-- fields:begin -->\n";
	const char *end = "<!-- fields:end -->";
	char err[256], *doc = NULL, *b, *e;
	struct gw_buf md;
	size_t len;

	(void)state;
	gw_buf_init(&md, 1u << 20);
	assert_int_equal(gw_tr_fields_markdown(&md), 0);
	assert_int_equal(gw_read_file(GW_SOURCE_DIR "/docs/FIELDS.md", 1u << 20,
	                              0, &doc, &len, err, sizeof(err)),
	                 0);
	b = strstr(doc, begin);
	assert_non_null(b);
	b += strlen(begin);
	e = strstr(b, end);
	assert_non_null(e);
	if ((size_t)(e - b) != md.len || memcmp(b, md.p, md.len) != 0)
		fprintf(stderr,
		        "docs/FIELDS.md is stale; the table between the "
		        "markers must be:\n%s",
		        md.p);
	assert_int_equal((size_t)(e - b), md.len);
	assert_memory_equal(b, md.p, md.len);
	free(doc);
	gw_buf_reset(&md);
}

/* Parses a request that must succeed. */
static struct gw_export_req *
parse_ok(const char *body)
{
	struct gw_export_req *req = NULL;
	struct gw_fault fault;

	memset(&fault, 0, sizeof(fault));
	if (gw_tr_parse(conf, body, strlen(body), &req, &fault) != GW_OK)
		fprintf(stderr, "%s: %s\n", fault.field, fault.msg);
	assert_non_null(req);
	return req;
}

/* Parses a request that must fail on field with err. */
static void
parse_fails(const char *body, size_t len, enum gw_err err, const char *field)
{
	struct gw_export_req *req = NULL;
	struct gw_fault fault;

	memset(&fault, 0, sizeof(fault));
	assert_int_equal(gw_tr_parse(conf, body, len, &req, &fault), err);
	assert_null(req);
	assert_int_equal(fault.err, err);
	assert_string_equal(fault.field, field);
	assert_true(fault.msg[0] != '\0');
}

static const struct gw_kv *
ctx_get(const struct gw_export_req *req, const char *key)
{
	size_t i;

	for (i = 0; i < req->nctx; i++)
		if (strcmp(req->ctx[i].key, key) == 0)
			return &req->ctx[i];
	return NULL;
}

static void
assert_ctx1(const struct gw_export_req *req, const char *key, const char *val)
{
	const struct gw_kv *kv = ctx_get(req, key);

	assert_non_null(kv);
	assert_int_equal(kv->nvalues, 1);
	assert_string_equal(kv->values[0], val);
}

static void
test_ctx_keys(void **state)
{
	struct gw_export_req *req = NULL;
	const struct gw_kv *kv = NULL;

	(void)state;
	req = parse_ok("{\"project\":\"demo\",\"image_type\":\"cicd\","
	               "\"operate_all\":false,\"image_size\":7,"
	               "\"start_latest_scan_time\":\"2026-01-01T00:00:00Z\","
	               "\"vul_id_list\":[\"CVE-1\",\"CVE-2\"],"
	               "\"image_id_list\":[]}");
	assert_ctx1(req, "hss:project", "demo");
	assert_ctx1(req, "hss:region", "cn-north-4");
	assert_ctx1(req, "hss:export_size", "1000");
	assert_ctx1(req, "hss:enterprise_project_id", "0");
	assert_ctx1(req, "hss:image_type", "cicd");
	assert_ctx1(req, "hss:operate_all", "false");
	assert_ctx1(req, "hss:image_size", "7");
	/* Times reach policies as the milliseconds HSS gets. */
	assert_ctx1(req, "hss:start_latest_scan_time", "1767225600000");
	kv = ctx_get(req, "hss:vul_id_list");
	assert_non_null(kv);
	assert_int_equal(kv->nvalues, 2);
	assert_string_equal(kv->values[0], "CVE-1");
	assert_string_equal(kv->values[1], "CVE-2");
	kv = ctx_get(req, "hss:image_id_list");
	assert_non_null(kv);
	assert_int_equal(kv->nvalues, 0);
	/* Fields the caller did not set are absent, not empty. */
	assert_null(ctx_get(req, "hss:vul_type"));
	assert_int_equal(req->nctx, 10);
	assert_string_equal(req->enterprise_project_id, "0");
	assert_int_equal(req->export_size, 1000);
	assert_string_equal(req->project->alias, "demo");
	gw_tr_req_free(req);

	/* No enterprise project anywhere: no key, no query parameter. */
	req = parse_ok("{\"project\":\"noeps\",\"export_size\":3}");
	assert_null(ctx_get(req, "hss:enterprise_project_id"));
	assert_null(req->enterprise_project_id);
	assert_ctx1(req, "hss:export_size", "3");
	assert_ctx1(req, "hss:region", "ap-southeast-1");
	assert_int_equal(req->nctx, 3);
	gw_tr_req_free(req);

	/* The effective, overridden value is what policies see. */
	req = parse_ok("{\"project\":\"wide\","
	               "\"enterprise_project_id\":\"all_granted_eps\"}");
	assert_ctx1(req, "hss:enterprise_project_id", "all_granted_eps");
	gw_tr_req_free(req);
}

/* The HSS body: only set fields, table order, compact, times as ms. */
static void
test_body_exact(void **state)
{
	struct gw_export_req *req = NULL;
	struct gw_upreq *up = NULL;
	struct gw_fault fault;

	(void)state;
	req = parse_ok("{\"vul_id_list\":[\"a/b\"],\"has_vul\":true,"
	               "\"project\":\"demo\",\"image_type\":\"jfrog\","
	               "\"end_latest_update_time\":\"1970-01-01T00:00:01Z\","
	               "\"image_id_list\":[\"x\"]}");
	assert_string_equal(
	    req->body, "{\"image_id_list\":[\"x\"],\"image_type\":\"jfrog\","
	               "\"end_latest_update_time\":1000,\"has_vul\":true,"
	               "\"vul_id_list\":[\"a/b\"]}");
	assert_int_equal(req->bodylen, strlen(req->body));
	assert_int_equal(gw_tr_build(req, &up, &fault), GW_OK);
	assert_string_equal(up->method, "POST");
	assert_string_equal(up->body, req->body);
	assert_string_equal(gw_upreq_header(up, "region"), "cn-north-4");
	assert_string_equal(gw_upreq_header(up, "content-type"),
	                    "application/json;charset=utf-8");
	/* Credentials are the provider's job, never translation's. */
	assert_null(gw_upreq_header(up, "X-Auth-Token"));
	assert_int_equal(up->nheaders, 2);
	gw_upreq_free(up);
	gw_tr_req_free(req);

	/* HSS requires a body: an empty request still sends {}. */
	req = parse_ok("{\"project\":\"noeps\"}");
	assert_string_equal(req->body, "{}");
	assert_int_equal(gw_tr_build(req, &up, &fault), GW_OK);
	assert_string_equal(
	    up->url, "https://hss.ap-southeast-1.myhuaweicloud.com/v5/"
	             "fedcba9876543210fedcba9876543210/image/baseline/export?"
	             "export_size=1000");
	assert_string_equal(up->body, "{}");
	gw_upreq_free(up);
	gw_tr_req_free(req);
}

/* String bounds too big for golden files, counted in code points. */
static void
test_long_strings(void **state)
{
	static const char pre[] = "{\"project\":\"demo\",\"image_name\":\"";
	static const char ming[] = "\xe5\x90\x8d";
	struct gw_export_req *req = NULL;
	size_t n, i, off;
	char *b = NULL;

	(void)state;
	b = malloc(sizeof(pre) + (size_t)65536 * 3 + 8);
	assert_non_null(b);
	for (n = 65535; n <= 65536; n++) {
		/* "名" is 3 bytes: 65535 of them are 65535 characters. */
		off = sizeof(pre) - 1;
		memcpy(b, pre, off);
		for (i = 0; i < n; i++, off += 3)
			memcpy(b + off, ming, sizeof(ming) - 1);
		memcpy(b + off, "\"}", 3);
		off += 2;
		req = NULL;
		if (n == 65535) {
			req = parse_ok(b);
			gw_tr_req_free(req);
		} else
			parse_fails(b, off, GW_ERR_FIELD, "image_name");
	}
	free(b);
}

/*
 * Every enum value of the reference (table 4), written out here rather
 * than read from the field table, so a typo in the table fails.
 */
static void
test_enum_values_from_reference(void **state)
{
	static const char *const cases[][2] = {
	    {"image_type", "private_image"},
	    {"image_type", "shared_image"},
	    {"image_type", "local_image"},
	    {"image_type", "instance_image"},
	    {"image_type", "harbor"},
	    {"image_type", "jfrog"},
	    {"image_type", "cicd"},
	    {"vul_type", "linux_vul"},
	    {"vul_type", "app_vul"},
	    {"scan_status", "unscan"},
	    {"scan_status", "success"},
	    {"scan_status", "scanning"},
	    {"scan_status", "failed"},
	    {"scan_status", "download_failed"},
	    {"scan_status", "image_oversized"},
	    {"severity_level", "Security"},
	    {"severity_level", "Low"},
	    {"severity_level", "Medium"},
	    {"severity_level", "High"},
	    {"build_command_risk_level", "critical"},
	    {"build_command_risk_level", "high"},
	    {"build_command_risk_level", "medium"},
	    {"build_command_risk_level", "low"},
	};
	char body[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(body, sizeof(body),
		         "{\"project\":\"demo\",\"%s\":\"%s\"}", cases[i][0],
		         cases[i][1]);
		gw_tr_req_free(parse_ok(body));
		/* One character off is refused. */
		snprintf(body, sizeof(body),
		         "{\"project\":\"demo\",\"%s\":\"%s \"}", cases[i][0],
		         cases[i][1]);
		parse_fails(body, strlen(body), GW_ERR_FIELD, cases[i][0]);
	}
}

/*
 * Attack: gateway-only names in any case.  Gap pinned: a caller choosing
 * project_id, region, endpoint or a token would pick another tenant or
 * carry their own credentials past policy.  Positive control: the same
 * request without the name passes.
 */
static void
test_attack_forbidden_names(void **state)
{
	static const char *const names[] = {
	    "project_id",   "PROJECT_ID", "Region",   "x-auth-token",
	    "X-AUTH-TOKEN", "Token",      "endpoint", "CREDENTIALS"};
	char body[256];
	size_t i;

	(void)state;
	gw_tr_req_free(parse_ok("{\"project\":\"demo\"}"));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(body, sizeof(body),
		         "{\"project\":\"demo\",\"%s\":\"evil\"}", names[i]);
		parse_fails(body, strlen(body), GW_ERR_FIELD, names[i]);
	}
}

/*
 * Attack: NUL inside a value.  Gap pinned: policies read C strings, so
 * "cicd\u0000x" would be judged as "cicd" while HSS got more.  Positive
 * control: the same value without the NUL passes.
 */
static void
test_attack_nul(void **state)
{
	static const char bad[] = "{\"project\":\"demo\",\"image_id_list\":"
	                          "[\"ok\",\"a\\u0000b\"]}";
	static const char raw[] = "{\"project\":\"demo\",\"x\":\"a\0b\"}";

	(void)state;
	gw_tr_req_free(parse_ok("{\"project\":\"demo\",\"image_id_list\":"
	                        "[\"ok\",\"ab\"]}"));
	parse_fails(bad, strlen(bad), GW_ERR_FIELD, "image_id_list[1]");
	parse_fails("{\"project\":\"de\\u0000mo\"}", 24, GW_ERR_FIELD,
	            "project");
	/* A raw NUL byte ends nothing: the whole body is refused. */
	parse_fails(raw, sizeof(raw) - 1, GW_ERR_BAD_REQUEST, "body");
}

/*
 * Attack: integers json-c would clamp.  Gap pinned: 2^64 would become
 * INT64_MAX silently and pass a time field.  Positive control: INT64_MAX
 * itself passes.
 */
static void
test_attack_int_overflow(void **state)
{
	static const char *const bad[] = {
	    "{\"project\":\"demo\",\"end_latest_scan_time\":"
	    "18446744073709551616}",
	    "{\"project\":\"demo\",\"end_latest_scan_time\":"
	    "9223372036854775808}",
	    "{\"project\":\"demo\",\"end_latest_scan_time\":"
	    "-9223372036854775809}",
	    "{\"project\":\"demo\",\"export_size\":"
	    "4294967296000000000000}",
	};
	size_t i;

	(void)state;
	gw_tr_req_free(parse_ok("{\"project\":\"demo\",\"end_latest_scan_time\""
	                        ":9223372036854775807}"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fails(bad[i], strlen(bad[i]), GW_ERR_FIELD,
		            i < 3 ? "end_latest_scan_time" : "export_size");
}

/*
 * Attack: query injection through enterprise_project_id.  Gap pinned:
 * "0&export_size=1" must stay one value, not add a parameter.  Positive
 * control: the encoded URL passes the HSS wire check with the value whole.
 */
static void
test_attack_query_injection(void **state)
{
	struct gw_export_req *req = NULL;
	struct gw_upreq *up = NULL;
	struct gw_fault fault;
	const char *q;

	(void)state;
	req = parse_ok("{\"project\":\"wide\",\"enterprise_project_id\":"
	               "\"0&export_size=1#x\"}");
	assert_int_equal(gw_tr_build(req, &up, &fault), GW_OK);
	q = strchr(up->url, '?');
	assert_non_null(q);
	assert_string_equal(
	    q,
	    "?enterprise_project_id=0%26export_size%3D1%23x&export_size=1000");
	assert_int_equal(gw_tr_check_hss(q + 1, up->body, up->bodylen, &fault),
	                 GW_OK);
	gw_upreq_free(up);
	gw_tr_req_free(req);
}

/*
 * Attack: a project_id of "." or ".." from a bad config.  Gap pinned: both
 * are unreserved, so encoding alone would let the path climb to another
 * API.  Positive control: a normal project builds.
 */
static void
test_attack_dot_segments(void **state)
{
	struct gw_conf_project p = projects[0];
	struct gw_export_req req;
	struct gw_upreq *up = NULL;
	struct gw_fault fault;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.project = &p;
	req.export_size = 1;
	assert_int_equal(gw_tr_build(&req, &up, &fault), GW_OK);
	assert_string_equal(up->body, "{}");
	gw_upreq_free(up);
	up = NULL;
	p.project_id = "..";
	assert_int_equal(gw_tr_build(&req, &up, &fault), GW_ERR_CONFIG);
	assert_null(up);
	p.project_id = ".";
	assert_int_equal(gw_tr_build(&req, &up, &fault), GW_ERR_CONFIG);
	p.project_id = "";
	assert_int_equal(gw_tr_build(&req, &up, &fault), GW_ERR_CONFIG);
}

/* Unknown names are echoed cut at a UTF-8 boundary, never mid-sequence. */
static void
test_long_unknown_name(void **state)
{
	static const char eacute[] = "\xc3\xa9";
	struct gw_export_req *req = NULL;
	struct gw_fault fault;
	char body[1024];
	size_t off, i;

	(void)state;
	off = (size_t)snprintf(body, sizeof(body), "{\"project\":\"demo\",\"");
	body[off++] = 'a';
	for (i = 0; i < 100; i++, off += 2)
		memcpy(body + off, eacute, sizeof(eacute) - 1);
	memcpy(body + off, "\":1}", 5);
	off += 4;
	assert_int_equal(gw_tr_parse(conf, body, off, &req, &fault),
	                 GW_ERR_FIELD);
	assert_true(strlen(fault.field) < sizeof(fault.field));
	assert_true(strlen(fault.field) >= sizeof(fault.field) - 2);
	assert_true(gw_utf8_valid(fault.field, strlen(fault.field)));
	assert_string_equal(fault.msg, "unknown field");
}

static enum gw_err
hss(const char *query, const char *body, struct gw_fault *fault)
{
	memset(fault, 0, sizeof(*fault));
	return gw_tr_check_hss(query, body, body ? strlen(body) : 0, fault);
}

static void
assert_hss_fails(const char *query, const char *body, enum gw_err err,
                 const char *field, const char *msg)
{
	struct gw_fault fault;

	assert_int_equal(hss(query, body, &fault), err);
	assert_string_equal(fault.field, field);
	if (msg != NULL)
		assert_string_equal(fault.msg, msg);
}

static void
test_check_hss(void **state)
{
	struct gw_fault fault;

	(void)state;
	/* Positive controls. */
	assert_int_equal(hss("export_size=0", "{}", &fault), GW_OK);
	assert_int_equal(hss("enterprise_project_id=all_granted_eps&"
	                     "export_size=2147483647",
	                     "{\"operate_all\":true}", &fault),
	                 GW_OK);
	assert_int_equal(hss("export_size=5&enterprise_project_id=a%20b",
	                     "{\"start_latest_scan_time\":1767225600000,"
	                     "\"image_id_list\":[\"a\"],\"risky\":false}",
	                     &fault),
	                 GW_OK);

	assert_hss_fails("", "{}", GW_ERR_FIELD, "export_size", "is required");
	assert_hss_fails(NULL, "{}", GW_ERR_FIELD, "export_size",
	                 "is required");
	assert_hss_fails("enterprise_project_id=0", "{}", GW_ERR_FIELD,
	                 "export_size", "is required");
	assert_hss_fails("export_size=", "{}", GW_ERR_FIELD, "export_size",
	                 "must be an integer between 0 and 2147483647");
	assert_hss_fails("export_size=2147483648", "{}", GW_ERR_FIELD,
	                 "export_size", NULL);
	assert_hss_fails("export_size=-1", "{}", GW_ERR_FIELD, "export_size",
	                 NULL);
	assert_hss_fails("export_size=1.0", "{}", GW_ERR_FIELD, "export_size",
	                 NULL);
	assert_hss_fails("export_size=%2B1", "{}", GW_ERR_FIELD, "export_size",
	                 NULL);
	assert_hss_fails("export_size=1&export_size=2", "{}", GW_ERR_FIELD,
	                 "export_size", "must appear at most once");
	assert_hss_fails("export_size=1&limit=2", "{}", GW_ERR_FIELD, "limit",
	                 "unknown query parameter");
	/* Body fields are not query parameters. */
	assert_hss_fails("export_size=1&image_type=cicd", "{}", GW_ERR_FIELD,
	                 "image_type", "unknown query parameter");
	assert_hss_fails("export_size=1&enterprise_project_id=", "{}",
	                 GW_ERR_FIELD, "enterprise_project_id",
	                 "must be a string of 1 to 256 characters");
	assert_hss_fails("export_size=1%ZZ", "{}", GW_ERR_BAD_REQUEST, "query",
	                 NULL);
	assert_hss_fails("export_size=1%00x", "{}", GW_ERR_FIELD, "export_size",
	                 "must not contain NUL characters");
	assert_hss_fails("export_size%00x=1", "{}", GW_ERR_FIELD, "export_size",
	                 "must not contain NUL characters");

	/* Body: required, an object, known fields, wire types. */
	assert_hss_fails("export_size=1", NULL, GW_ERR_BAD_REQUEST, "body",
	                 NULL);
	assert_hss_fails("export_size=1", "[]", GW_ERR_BAD_REQUEST, "body",
	                 "must be a JSON object");
	assert_hss_fails("export_size=1", "{\"project\":\"demo\"}",
	                 GW_ERR_FIELD, "project", "unknown field");
	assert_hss_fails("export_size=1", "{\"export_size\":1}", GW_ERR_FIELD,
	                 "export_size", "unknown field");
	assert_hss_fails("export_size=1", "{\"operate_all\":\"true\"}",
	                 GW_ERR_FIELD, "operate_all",
	                 "must be a boolean (true or false)");
	assert_hss_fails("export_size=1", "{\"image_size\":\"1\"}",
	                 GW_ERR_FIELD, "image_size", NULL);
	assert_hss_fails("export_size=1", "{\"image_type\":\"CICD\"}",
	                 GW_ERR_FIELD, "image_type", NULL);
	assert_hss_fails("export_size=1", "{\"vul_id_list\":[1]}", GW_ERR_FIELD,
	                 "vul_id_list[0]", NULL);
	/* RFC 3339 is a gateway convenience; HSS itself takes only ms. */
	assert_hss_fails(
	    "export_size=1",
	    "{\"end_latest_scan_time\":\"2026-01-01T00:00:00Z\"}", GW_ERR_FIELD,
	    "end_latest_scan_time",
	    "must be an integer between 0 and 9223372036854775807");
	assert_hss_fails("export_size=1", "{\"has_vul\":null}", GW_ERR_FIELD,
	                 "has_vul", NULL);
}

/* Every request gw_tr_build makes passes the wire check. */
static void
test_build_passes_wire_check(void **state)
{
	static const char *const bodies[] = {
	    "{\"project\":\"demo\"}",
	    "{\"project\":\"noeps\",\"export_size\":0}",
	    "{\"project\":\"odd\",\"enterprise_project_id\":\"é ü+%\","
	    "\"image_name\":\"名\",\"start_latest_update_time\":"
	    "\"2026-01-01T00:00:00.5+01:00\",\"build_command_rule_id_list\":"
	    "[\"R\"],\"severity_level\":\"Low\"}",
	};
	struct gw_export_req *req = NULL;
	struct gw_upreq *up = NULL;
	struct gw_fault fault;
	const char *q;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		req = parse_ok(bodies[i]);
		assert_int_equal(gw_tr_build(req, &up, &fault), GW_OK);
		q = strchr(up->url, '?');
		assert_non_null(q);
		assert_int_equal(
		    gw_tr_check_hss(q + 1, up->body, up->bodylen, &fault),
		    GW_OK);
		gw_upreq_free(up);
		gw_tr_req_free(req);
	}
}

/*
 * Golden URLs of every HSS API from the one URL builder: project ids,
 * enterprise projects and task/file ids holding space, '+', '/', '%',
 * '&', '=', non-ASCII and emoji each become one encoded segment or
 * value (upper-case hex, as the AK/SK canonical form), never a new path
 * segment or parameter.  Attack: ids "." and ".." and "" (which would
 * change the path) are refused; "../x" stays one segment.
 */
static void
test_url_golden(void **state)
{
	static const char weird[] = "a 1+/%&=\xc3\xa9\xf0\x9f\x99\x82";
#define WEIRD_ENC "a%201%2B%2F%25%26%3D%C3%A9%F0%9F%99%82"
	struct gw_conf_project p = {
	    .alias = "w",
	    .project_id = (char *)weird,
	    .region = "cn-north-4",
	    .endpoint = "https://hss.example.test:8443/base",
	};
	static const struct {
		enum gw_tr_task_api api;
		const char *eps, *id, *url;
	} cases[] = {
	    {GW_TR_TASK_STATUS, NULL, "t1",
	     "https://hss.example.test:8443/base/v5/" WEIRD_ENC
	     "/export-task/t1"},
	    {GW_TR_TASK_STATUS, weird, weird,
	     "https://hss.example.test:8443/base/v5/" WEIRD_ENC
	     "/export-task/" WEIRD_ENC "?enterprise_project_id=" WEIRD_ENC},
	    {GW_TR_TASK_DOWNLOAD, "eps 1", "../x",
	     "https://hss.example.test:8443/base/v5/" WEIRD_ENC
	     "/download/..%2Fx?enterprise_project_id=eps%201"},
	    {GW_TR_TASK_DOWNLOAD, "all_granted_eps", "f-1_.~",
	     "https://hss.example.test:8443/base/v5/" WEIRD_ENC
	     "/download/f-1_.~?enterprise_project_id=all_granted_eps"},
	};
	static const char *const bad_ids[] = {".", "..", ""};
	const struct gw_conf_project *wide, *listed;
	struct gw_export_req req;
	struct gw_upreq *up = NULL, *up2 = NULL;
	struct gw_fault fault;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(gw_tr_task_build(&p, cases[i].eps,
		                                  cases[i].api, cases[i].id,
		                                  &up, &fault),
		                 GW_OK);
		assert_string_equal(up->method, "GET");
		assert_string_equal(up->url, cases[i].url);
		gw_upreq_free(up);
		up = NULL;
	}
	for (i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		assert_int_equal(gw_tr_task_build(&p, NULL, GW_TR_TASK_STATUS,
		                                  bad_ids[i], &up, &fault),
		                 GW_ERR_CONFIG);
		assert_null(up);
	}
	/* The export from the same builder. */
	memset(&req, 0, sizeof(req));
	req.project = &p;
	req.enterprise_project_id = (char *)weird;
	req.export_size = 7;
	assert_int_equal(gw_tr_build(&req, &up, &fault), GW_OK);
	assert_string_equal(
	    up->url, "https://hss.example.test:8443/base/v5/" WEIRD_ENC
	             "/image/baseline/export?enterprise_project_id=" WEIRD_ENC
	             "&export_size=7");
	assert_int_equal(gw_tr_check_hss(strchr(up->url, '?') + 1, up->body,
	                                 up->bodylen, &fault),
	                 GW_OK);
	gw_upreq_free(up);
	up = NULL;
	/* An endpoint the loader did not normalise is refused, not doubled. */
	p.endpoint = "https://hss.example.test/";
	assert_int_equal(
	    gw_tr_task_build(&p, NULL, GW_TR_TASK_STATUS, "t", &up, &fault),
	    GW_ERR_CONFIG);
	/* With and without a trailing slash in the file: the same URL. */
	wide = gw_conf_project_get(conf, "wide");
	listed = gw_conf_project_get(conf, "listed");
	assert_non_null(wide);
	assert_non_null(listed);
	assert_string_equal(wide->endpoint,
	                    "https://hss.cn-north-4.myhuaweicloud.com");
	assert_int_equal(gw_tr_task_build(wide, "e/1", GW_TR_TASK_STATUS, "t 1",
	                                  &up, &fault),
	                 GW_OK);
	assert_int_equal(gw_tr_task_build(listed, "e/1", GW_TR_TASK_STATUS,
	                                  "t 1", &up2, &fault),
	                 GW_OK);
	assert_string_equal(up->url,
	                    "https://hss.cn-north-4.myhuaweicloud.com/v5/"
	                    "0123456789abcdef0123456789abcdef/"
	                    "export-task/t%201?enterprise_project_id=e%2F1");
	assert_string_equal(up->url, up2->url);
	gw_upreq_free(up);
	gw_upreq_free(up2);
#undef WEIRD_ENC
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden),
	    cmocka_unit_test(test_docs_in_sync),
	    cmocka_unit_test(test_ctx_keys),
	    cmocka_unit_test(test_body_exact),
	    cmocka_unit_test(test_long_strings),
	    cmocka_unit_test(test_enum_values_from_reference),
	    cmocka_unit_test(test_attack_forbidden_names),
	    cmocka_unit_test(test_attack_nul),
	    cmocka_unit_test(test_attack_int_overflow),
	    cmocka_unit_test(test_attack_query_injection),
	    cmocka_unit_test(test_attack_dot_segments),
	    cmocka_unit_test(test_long_unknown_name),
	    cmocka_unit_test(test_check_hss),
	    cmocka_unit_test(test_build_passes_wire_check),
	    cmocka_unit_test(test_url_golden),
	};

	char err[512];
	int rc;

	conf = gw_conf_load(GOLDEN_DIR "/config.json", err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	gw_conf_free(conf);
	return rc;
}
