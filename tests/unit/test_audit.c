/*
 * Audit trail: records are complete JSON lines, never hold a secret header
 * value, never interleave under concurrent writers, and a trail that
 * cannot be written reports itself not ready (so exports fail closed).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "audit.h"
#include "gw.h"
#include "upreq.h"

#define SECRET     "tok-SECRET-never-in-audit"
#define THREADS    8
#define PER_THREAD 200

static void
fill(struct gw_audit_rec *r, const struct gw_upreq *up)
{
	memset(r, 0, sizeof(*r));
	r->time_ms = 1767225600123LL;
	r->request_id = "abc123";
	r->client_addr = "127.0.0.1";
	r->subject = "dev-alice";
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
	o = json_tokener_parse(b.p);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "time", &v));
	assert_string_equal(json_object_get_string(v),
	                    "2026-01-01T00:00:00.123Z");
	assert_true(json_object_object_get_ex(o, "upstream", &v));
	assert_true(json_object_object_get_ex(v, "task_id", &v));
	assert_string_equal(json_object_get_string(v), "task-1");
	assert_true(json_object_object_get_ex(o, "decision", &v));
	assert_string_equal(json_object_get_string(v), "allow");
	json_object_put(o);
	gw_buf_reset(&b);
	gw_upreq_free(up);
}

struct job {
	struct gw_audit *a;
	int id;
};

static void *
writer(void *arg)
{
	struct job *j = arg;
	struct gw_audit_rec r;
	char rid[32], err[128];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		fill(&r, NULL);
		snprintf(rid, sizeof(rid), "t%d-%d", j->id, i);
		r.request_id = rid;
		if (gw_audit_emit(j->a, &r, err, sizeof(err)) != GW_OK)
			return (void *)1;
	}
	return NULL;
}

static void
concurrent_lines_whole(void **state)
{
	char path[] = "/tmp/hssgw-audit-XXXXXX", line[65536], err[256];
	struct job jobs[THREADS];
	pthread_t t[THREADS];
	struct gw_audit *a;
	struct json_object *o;
	void *res;
	FILE *f;
	int i, fd, n = 0;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	a = gw_audit_open(path, err, sizeof(err));
	assert_non_null(a);
	for (i = 0; i < THREADS; i++) {
		jobs[i].a = a;
		jobs[i].id = i;
		pthread_create(&t[i], NULL, writer, &jobs[i]);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], &res);
		assert_null(res);
	}
	gw_audit_close(a);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		o = json_tokener_parse(line);
		if (o == NULL)
			fail_msg("line %d is not whole JSON: %.80s", n, line);
		json_object_put(o);
		n++;
	}
	fclose(f);
	assert_int_equal(n, THREADS * PER_THREAD);
	unlink(path);
}

static void
unwritable_not_ready(void **state)
{
	struct gw_audit_rec r;
	struct gw_audit *a;
	char err[256];

	(void)state;
	/* /dev/full accepts open(2) and fails every write with ENOSPC. */
	a = gw_audit_open("/dev/full", err, sizeof(err));
	assert_non_null(a);
	assert_int_equal(gw_audit_ready(a), 1);
	fill(&r, NULL);
	assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_ERR_AUDIT);
	assert_int_equal(gw_audit_ready(a), 0);
	gw_audit_close(a);
	assert_null(
	    gw_audit_open("/nonexistent-dir/audit.jsonl", err, sizeof(err)));
	assert_int_equal(gw_audit_ready(NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(format_redacts),
	    cmocka_unit_test(concurrent_lines_whole),
	    cmocka_unit_test(unwritable_not_ready),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
