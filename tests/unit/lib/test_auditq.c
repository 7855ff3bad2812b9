/*
 * Audit verification and query.  Each kind of tampering (edit, edit with
 * the record's own hash recomputed, delete, reorder, insert, tail cut,
 * chain rewritten from some record on) is detected on its own, named, and
 * located by line and seq, with an untouched trail as the positive
 * control.  Query filters select exactly the records asked for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "audit.h"
#include "auditq.h"
#include "gw.h"

#define N 10

struct trail {
	char dir[64];
	char path[128];
	char ckpt[160];
	char *lines[N];
};

static const char *const subjects[] = {"alice", "bob"};
static const char *const projects[] = {"demo", "prod"};

/* Ten records: alternating subjects and projects, task ids on odd seq. */
static int
setup(void **state)
{
	struct trail *t = calloc(1, sizeof(*t));
	struct gw_audit_rec r;
	struct gw_upreq *up;
	struct gw_audit *a;
	char err[256], rid[16], task[16], line[65536];
	FILE *f;
	int i;

	snprintf(t->dir, sizeof(t->dir), "/tmp/hssgw-auditq-XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/audit.jsonl", t->dir);
	snprintf(t->ckpt, sizeof(t->ckpt), "%s.checkpoint", t->path);
	a = gw_audit_open(t->path, err, sizeof(err));
	up = gw_upreq_new("POST", "https://hss.example/v5/p/image/baseline/"
	                          "export");
	if (a == NULL || up == NULL)
		return -1;
	for (i = 0; i < N; i++) {
		memset(&r, 0, sizeof(r));
		snprintf(rid, sizeof(rid), "req-%d", i + 1);
		snprintf(task, sizeof(task), "task-%d", i + 1);
		r.time_ms = 1767225600000LL + i * 60000LL; /* a minute apart */
		r.request_id = rid;
		r.subject = subjects[i % 2];
		r.project = projects[(i / 2) % 2];
		r.decision = i == 9 ? "implicit_deny" : "allow";
		r.status = i == 9 ? 403 : 200;
		r.task_id = i % 2 == 0 ? task : NULL;
		r.record_total_num = -1;
		r.upreq = up;
		if (gw_audit_emit(a, &r, err, sizeof(err)) != GW_OK)
			return -1;
	}
	gw_audit_close(a);
	gw_upreq_free(up);
	f = fopen(t->path, "r");
	for (i = 0; i < N && fgets(line, sizeof(line), f) != NULL; i++)
		t->lines[i] = strdup(line);
	fclose(f);
	*state = t;
	return i == N ? 0 : -1;
}

static int
teardown(void **state)
{
	struct trail *t = *state;
	char cmd[128];
	int i;

	for (i = 0; i < N; i++)
		free(t->lines[i]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	free(t);
	return system(cmd) == 0 ? 0 : -1;
}

/* Writes the given lines (indexes into the trail, -1 ends) to path. */
static void
write_lines(const struct trail *t, const char *path, const int *idx,
            const char *extra)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	for (; *idx != -1; idx++)
		fputs(t->lines[*idx], f);
	if (extra != NULL)
		fputs(extra, f);
	fclose(f);
}

static const int all[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1};

static int
verify(const struct trail *t, const char *ckpt, struct gw_auditq_report *rep)
{
	const char *files[] = {t->path};

	return gw_auditq_verify(files, 1, ckpt, 1, rep);
}

static void
expect(const struct trail *t, enum gw_auditq_problem p, long long line,
       long long seq)
{
	struct gw_auditq_report rep;

	assert_int_equal(verify(t, t->ckpt, &rep), -1);
	if (rep.problem != p)
		fail_msg("wanted %s, got %s: %s", gw_auditq_problem_name(p),
		         gw_auditq_problem_name(rep.problem), rep.msg);
	assert_int_equal(rep.line, line);
	assert_int_equal(rep.seq, seq);
}

/* Recomputes a line's own hash after setting its prev, as a forger would. */
static void
rehash(char *line, const char *prev)
{
	unsigned char md[32];
	unsigned int mdlen;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *p, *h;
	int i;

	p = strstr(line, "\"prev\":\"") + 8;
	if (prev != NULL)
		memcpy(p, prev, 64);
	h = strstr(line, ",\"hash\":\"");
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, line, (size_t)(h - line));
	EVP_DigestUpdate(ctx, "}", 1);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < 32; i++)
		snprintf(h + 9 + 2 * i, 3, "%02x", md[i]);
	h[9 + 64] = '"';
}

static void
hash_of(const char *line, char out[65])
{
	memcpy(out, strstr(line, ",\"hash\":\"") + 9, 64);
	out[64] = '\0';
}

/* Positive control: the untouched trail verifies, checkpoint included. */
static void
untouched_verifies(void **state)
{
	struct trail *t = *state;
	struct gw_auditq_report rep;

	write_lines(t, t->path, all, NULL);
	assert_int_equal(verify(t, t->ckpt, &rep), 0);
	assert_int_equal(rep.records, N);
	assert_int_equal(rep.first_seq, 1);
	assert_int_equal(rep.last_seq, N);
	assert_int_equal(rep.checkpoint_checked, 1);
	assert_int_equal(rep.torn_tail, 0);
}

/* The gap: a record edited in place (the subject changed). */
static void
edit_detected(void **state)
{
	struct trail *t = *state;
	char *saved = t->lines[4], *p;

	t->lines[4] = strdup(saved);
	p = strstr(t->lines[4], "\"subject\":\"alice\"");
	assert_non_null(p);
	memcpy(p + 11, "mallo", 5);
	write_lines(t, t->path, all, NULL);
	expect(t, GW_AQ_MODIFIED, 5, 5);
	/* The forger recomputes the record's own hash: the next breaks. */
	rehash(t->lines[4], NULL);
	write_lines(t, t->path, all, NULL);
	expect(t, GW_AQ_CHAIN, 6, 6);
	free(t->lines[4]);
	t->lines[4] = saved;
}

/* The gap: a record deleted from the middle. */
static void
delete_detected(void **state)
{
	static const int idx[] = {0, 1, 2, 3, 5, 6, 7, 8, 9, -1};
	struct trail *t = *state;
	struct gw_auditq_report rep;

	write_lines(t, t->path, idx, NULL);
	expect(t, GW_AQ_REMOVED, 5, 6);
	assert_int_equal(verify(t, t->ckpt, &rep), -1);
	assert_non_null(strstr(rep.msg, "seq 5 to 5 missing"));
}

/* The gap: two records swapped. */
static void
reorder_detected(void **state)
{
	static const int idx[] = {0, 1, 2, 4, 3, 5, 6, 7, 8, 9, -1};
	struct trail *t = *state;

	write_lines(t, t->path, idx, NULL);
	expect(t, GW_AQ_REORDERED, 4, 5);
}

/* The gap: a record inserted, as a replayed copy and as a forgery. */
static void
insert_detected(void **state)
{
	static const int copy[] = {0, 1, 2, 3, 4, 5, 6, 2, 7, 8, 9, -1};
	static const int forged[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1};
	struct trail *t = *state;
	char prev[65], *saved = t->lines[4];
	FILE *f;
	int i;

	/* An exact copy (a collector's resend) is counted, not an error. */
	write_lines(t, t->path, copy, NULL);
	{
		struct gw_auditq_report rep;

		assert_int_equal(verify(t, t->ckpt, &rep), 0);
		assert_int_equal(rep.duplicates, 1);
	}
	/*
	 * A forged record after seq 4 claiming seq 5 and chained to seq 4:
	 * it verifies by itself, the genuine seq 5 then appears twice.
	 */
	t->lines[4] = strdup(saved);
	memcpy(strstr(t->lines[4], "\"subject\":\"alice\"") + 11, "mallo", 5);
	hash_of(t->lines[3], prev);
	rehash(t->lines[4], prev);
	f = fopen(t->path, "w");
	for (i = 0; forged[i] != -1; i++) {
		fputs(t->lines[forged[i]], f);
		if (i == 4)
			fputs(saved, f);
	}
	fclose(f);
	expect(t, GW_AQ_INSERTED, 6, 5);
	free(t->lines[4]);
	t->lines[4] = saved;
}

/* The gap: the tail cut off; only the checkpoint can tell. */
static void
truncation_detected(void **state)
{
	static const int idx[] = {0, 1, 2, 3, 4, 5, 6, 7, -1};
	struct trail *t = *state;
	struct gw_auditq_report rep;

	write_lines(t, t->path, idx, NULL);
	expect(t, GW_AQ_TRUNCATED, 0, N);
	/* Without the checkpoint the cut is invisible: that is its job. */
	assert_int_equal(verify(t, NULL, &rep), 0);
	assert_int_equal(rep.checkpoint_checked, 0);
	/* A required checkpoint that is missing is a problem itself. */
	assert_int_equal(verify(t, "/nonexistent.checkpoint", &rep), -1);
	assert_int_equal(rep.problem, GW_AQ_IO);
}

/*
 * The gap: a copy of an earlier checkpoint (seq 3), kept off the host, is
 * required, but the head up to seq 5 was cut: verify passed, since the
 * records after the cut still chain.  The copy must make it fail.
 */
static void
head_cut_under_required_checkpoint(void **state)
{
	static const int idx[] = {5, 6, 7, 8, 9, -1};
	struct trail *t = *state;
	struct gw_auditq_report rep;
	const char *files[] = {t->path};
	char old[300], hash[65];
	FILE *f;

	snprintf(old, sizeof(old), "%s/old.checkpoint", t->dir);
	hash_of(t->lines[2], hash);
	f = fopen(old, "w");
	assert_non_null(f);
	fprintf(f, "{\"v\":1,\"seq\":3,\"hash\":\"%s\"}\n", hash);
	fclose(f);
	/* Positive control: the whole trail verifies against the copy. */
	write_lines(t, t->path, all, NULL);
	assert_int_equal(verify(t, old, &rep), 0);
	assert_int_equal(rep.checkpoint_checked, 1);
	write_lines(t, t->path, idx, NULL);
	assert_int_equal(verify(t, old, &rep), -1);
	assert_int_equal(rep.problem, GW_AQ_REMOVED);
	assert_int_equal(rep.seq, 3);
	/* Not required (the default checkpoint; retention cut old files):
	 * the rest still verifies, as before. */
	assert_int_equal(gw_auditq_verify(files, 1, old, 0, &rep), 0);
	write_lines(t, t->path, all, NULL);
}

/* The gap: the whole chain recomputed from seq 9 on. */
static void
rewrite_detected(void **state)
{
	struct trail *t = *state;
	char *s8 = t->lines[8], *s9 = t->lines[9], prev[65];

	t->lines[8] = strdup(s8);
	t->lines[9] = strdup(s9);
	memcpy(strstr(t->lines[8], "\"subject\":\"alice\"") + 11, "mallo", 5);
	rehash(t->lines[8], NULL);
	hash_of(t->lines[8], prev);
	rehash(t->lines[9], prev);
	write_lines(t, t->path, all, NULL);
	expect(t, GW_AQ_CHECKPOINT, 0, N);
	free(t->lines[8]);
	free(t->lines[9]);
	t->lines[8] = s8;
	t->lines[9] = s9;
}

/* A torn last line (crash mid-write) is noted, not an error. */
static void
torn_tail_and_junk(void **state)
{
	static const int head[] = {0, 1, 2, -1};
	struct trail *t = *state;
	struct gw_auditq_report rep;

	write_lines(t, t->path, all, "{\"v\":1,\"seq\":11,\"pr");
	assert_int_equal(verify(t, t->ckpt, &rep), 0);
	assert_int_equal(rep.torn_tail, 1);
	assert_int_equal(rep.records, N);
	write_lines(t, t->path, head, "not a record\n");
	expect(t, GW_AQ_MALFORMED, 4, 0);
}

/* Files in rotation order chain into each other. */
static void
across_files(void **state)
{
	static const int first[] = {0, 1, 2, 3, 4, -1};
	static const int second[] = {5, 6, 7, 8, 9, -1};
	static const int second_cut[] = {6, 7, 8, 9, -1};
	struct trail *t = *state;
	struct gw_auditq_report rep;
	char one[160];
	const char *files[2];

	snprintf(one, sizeof(one), "%s.1", t->path);
	files[0] = one;
	files[1] = t->path;
	write_lines(t, one, first, NULL);
	write_lines(t, t->path, second, NULL);
	assert_int_equal(gw_auditq_verify(files, 2, t->ckpt, 1, &rep), 0);
	assert_int_equal(rep.records, N);
	/* Given in the wrong order, they do not. */
	files[0] = t->path;
	files[1] = one;
	assert_int_equal(gw_auditq_verify(files, 2, t->ckpt, 1, &rep), -1);
	/* The first record of the live file removed at rotation. */
	files[0] = one;
	files[1] = t->path;
	write_lines(t, t->path, second_cut, NULL);
	assert_int_equal(gw_auditq_verify(files, 2, t->ckpt, 1, &rep), -1);
	assert_int_equal(rep.problem, GW_AQ_REMOVED);
	assert_string_equal(rep.file, t->path);
	assert_int_equal(rep.line, 1);
	unlink(one);
}

static long long
query(const struct trail *t, const struct gw_auditq_filter *f,
      enum gw_auditq_format fmt, char **out)
{
	const char *files[] = {t->path};
	char err[256];
	size_t len;
	long long n;
	FILE *m;

	m = open_memstream(out, &len);
	assert_non_null(m);
	n = gw_auditq_query(files, 1, f, fmt, m, err, sizeof(err));
	fclose(m);
	return n;
}

static void
query_filters(void **state)
{
	struct trail *t = *state;
	struct gw_auditq_filter f;
	char *out = NULL;

	write_lines(t, t->path, all, NULL);
	memset(&f, 0, sizeof(f));
	assert_int_equal(query(t, &f, GW_AUDITQ_JSON, &out), N);
	/* JSON lines are the records, byte for byte. */
	assert_string_equal(out + strlen(out) - strlen(t->lines[9]),
	                    t->lines[9]);
	free(out);
	f.subject = "bob";
	assert_int_equal(query(t, &f, GW_AUDITQ_JSON, &out), 5);
	assert_null(strstr(out, "\"subject\":\"alice\""));
	free(out);
	f.subject = NULL;
	f.project = "prod"; /* records 3, 4, 7, 8 */
	assert_int_equal(query(t, &f, GW_AUDITQ_JSON, &out), 4);
	free(out);
	f.project = NULL;
	f.decision = "implicit_deny";
	assert_int_equal(query(t, &f, GW_AUDITQ_JSON, &out), 1);
	assert_non_null(strstr(out, "\"seq\":10,"));
	free(out);
	f.decision = NULL;
	f.task_id = "task-3";
	assert_int_equal(query(t, &f, GW_AUDITQ_JSON, &out), 1);
	assert_non_null(strstr(out, "\"request_id\":\"req-3\""));
	free(out);
	f.task_id = NULL;
	/* Records at minutes 0..9; since 00:03, until 00:05 inclusive. */
	assert_int_equal(gw_rfc3339_ms("2026-01-01T00:03:00Z", &f.since_ms), 0);
	assert_int_equal(gw_rfc3339_ms("2026-01-01T00:05:00Z", &f.until_ms), 0);
	f.has_since = f.has_until = 1;
	assert_int_equal(query(t, &f, GW_AUDITQ_JSON, &out), 3);
	free(out);
	f.subject = "alice";
	assert_int_equal(query(t, &f, GW_AUDITQ_TABLE, &out), 1);
	assert_int_equal(strncmp(out, "TIME", 4), 0);
	assert_non_null(strstr(out, "2026-01-01T00:04:00.000Z"));
	assert_non_null(strstr(out, "alice"));
	assert_null(strstr(out, "bob"));
	free(out);
}

/* Writes n records a minute apart from t0 to a trail named inst. */
static void
write_instance(const char *path, const char *inst, int64_t t0, int n)
{
	struct gw_audit_opts o;
	struct gw_audit_rec r;
	struct gw_audit *a;
	char err[256];
	int i;

	memset(&o, 0, sizeof(o));
	o.instance = inst;
	a = gw_audit_open_opts(path, &o, err, sizeof(err));
	assert_non_null(a);
	for (i = 0; i < n; i++) {
		memset(&r, 0, sizeof(r));
		r.time_ms = t0 + i * 60000LL;
		r.request_id = inst;
		r.subject = "alice";
		r.record_total_num = -1;
		assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
	}
	gw_audit_close(a);
}

/*
 * Several instances (issue #14): each record names its instance, each
 * trail verifies as its own chain, and a query over all of them comes
 * out as one timeline however the files are ordered.
 */
static void
several_instances(void **state)
{
	struct trail *t = *state;
	struct gw_auditq_filter f;
	struct gw_auditq_report rep;
	char pa[160], pb[160], err[256], name[128], *buf = NULL, *line, *save;
	const char *files[2];
	char last[40] = "";
	size_t len = 0;
	FILE *m;
	int n = 0;

	snprintf(pa, sizeof(pa), "%s/a.jsonl", t->dir);
	snprintf(pb, sizeof(pb), "%s/b.jsonl", t->dir);
	write_instance(pa, "gw-a", 1767225600000LL, 3);
	write_instance(pb, "gw-b", 1767225600000LL + 30000, 3);
	assert_int_equal(gw_auditq_instance_of(pa, name, sizeof(name)), 0);
	assert_string_equal(name, "gw-a");
	assert_int_equal(gw_auditq_instance_of(t->path, name, sizeof(name)), 0);
	assert_string_equal(name, ""); /* a trail without a name */
	/* Each its own chain; together they are not one. */
	files[0] = pa;
	assert_int_equal(gw_auditq_verify(files, 1, NULL, 0, &rep), 0);
	files[0] = pb;
	assert_int_equal(gw_auditq_verify(files, 1, NULL, 0, &rep), 0);
	files[0] = pa;
	files[1] = pb;
	assert_int_equal(gw_auditq_verify(files, 2, NULL, 0, &rep), -1);
	/* b first on the command line: the output is still by time. */
	files[0] = pb;
	files[1] = pa;
	memset(&f, 0, sizeof(f));
	m = open_memstream(&buf, &len);
	assert_int_equal(
	    gw_auditq_query(files, 2, &f, GW_AUDITQ_JSON, m, err, sizeof(err)),
	    6);
	fclose(m);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), n++) {
		const char *tm = strstr(line, "\"time\":\"");

		assert_non_null(tm);
		assert_true(strncmp(tm + 8, last, 24) >= 0);
		snprintf(last, sizeof(last), "%.24s", tm + 8);
		/* Alternating: a, b, a, b... */
		assert_non_null(strstr(line, n % 2 == 0
		                                 ? "\"instance\":\"gw-a\""
		                                 : "\"instance\":\"gw-b\""));
	}
	assert_int_equal(n, 6);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(untouched_verifies),
	    cmocka_unit_test(several_instances),
	    cmocka_unit_test(edit_detected),
	    cmocka_unit_test(delete_detected),
	    cmocka_unit_test(reorder_detected),
	    cmocka_unit_test(insert_detected),
	    cmocka_unit_test(truncation_detected),
	    cmocka_unit_test(head_cut_under_required_checkpoint),
	    cmocka_unit_test(rewrite_detected),
	    cmocka_unit_test(torn_tail_and_junk),
	    cmocka_unit_test(across_files),
	    cmocka_unit_test(query_filters),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
