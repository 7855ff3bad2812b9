/*
 * The fast path of audit verify and query (lib/auditq_scan.c): the block
 * reader, and the scanner against json-c on the same lines.  The rule it
 * pins: on every line, hostile ones above all (a duplicate or escaped key
 * json-c would read as a chain member, members in another order, escaped
 * quotes, a NUL byte, controls, nesting, a very long line), the verdict
 * with the scanner (what verify and query run) is json-c's alone.  The
 * cases say whether the scanner must recognise the line (the records
 * hssgw writes: the positive controls, which keep the fast path fast) or
 * must hand it to json-c.  Reaches lib/'s internals (auditq_int.h), as
 * tests/CMakeLists.txt notes beside its gw_unit line.
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

#include "audit.h"
#include "auditq.h"
#include "auditq_fixture.h"
#include "auditq_int.h"
#include "gw.h"

#define LINE_CAP (GW_AUDITQ_LINE_MAX + 4096)

static const char zeros[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* One line's case: the scanner must (1) or must not (0) recognise it;
 * json-c's verdict: a record (1) or not (0). */
struct lcase {
	const char *text;
	int fast, record;
};

/*
 * Members put between a record's chain header and its last members (as
 * body_with writes them).  json-c reads duplicate keys as the last one
 * and decodes escaped keys: either could hide a chain member from a
 * scanner that read the first.
 */
static const struct lcase middles[] = {
    {"", 1, 1},            /* positive control */
    {"\"seq\":99,", 0, 1}, /* json-c: seq 99 */
    {"\"v\":2,", 0, 1},    /* json-c: version 2 */
    {"\"s\\u0065q\":9,", 0, 1},
    {"\"pr\\u0065v\":\"x\",", 0, 0},
    {"\"hash\":\"00\",", 0, 1}, /* json-c: the last hash */
    /* A key that merely looks like one, escaped at a depth not read. */
    {"\"o\":{\"s\\u0065q\":1,\"seq\":2,\"seq\":3},", 1, 1},
    /* Escaped quotes and backslashes; strings mimicking the suffix. */
    {"\"a\":\"x\\\"y\\\\\\\"z\\\\\",", 1, 1},
    {"\"a\":\"\\\\\",\"b\":\"\\\"\",", 1, 1},
    {"\"a\":\",\\\"hash\\\":\\\"00\\\"}\",", 1, 1},
    {"\"a\":\"\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC\",", 1, 1},
    {"\"a\":\"\\x\",", 0, 0},     /* no such escape */
    {"\"a\":\"\\u12\",", 0, 0},   /* a cut \u */
    {"\"a\":\"\\u0000\",", 0, 1}, /* json-c cuts there */
    {"\"a\":\"\\ud800\",", 0, 1}, /* a lone surrogate */
    {"\"a\":\"\\ud83d\\ude00\",", 0, 1},
    {"\"a\":\"\x01\",", 0, 1},         /* json-c takes controls */
    {"\"a\":\"\xc0\xaf\xff\",", 1, 1}, /* bytes, as json-c takes them */
    /* What json-c takes and RFC 8259 does not: json-c's to read. */
    {"\"a\":tRue,", 0, 1},
    {"\"a\":01,", 0, 1},
    {"\"a\":1.,", 0, 1},
    {"\"a\":NaN,", 0, 1},
    {"\"a\":'x',", 0, 1},
    {"\"a\":/*c*/1,", 0, 1},
    {"\"a\":[1,],", 0, 1},
    {"\"a\":{\"b\":1,},", 0, 1},
    {"\"a\":99999999999999999999999999999999999999999999,", 0, 1},
    {"\"a\":-,", 0, 0},
    {"\"a\":.5,", 0, 0},
    {"\"a\":1e5.5,", 0, 0},
    {"\"a\":", 0, 0}, /* a key without a value */
    /* Numbers RFC 8259 allows, and whitespace where it allows it. */
    {"\"a\":-0.0e-0,\"b\":1E+5,\"c\":1e400,\"d\":-12,", 1, 1},
    {"\"a\" : [ 1 , { \"b\" : null } ] ,\t", 1, 1},
};

/*
 * Whole bodies, '@' standing for 64 zeros, '#' for 63 and '!' for 64
 * ones: the chain members themselves, in another order, twice, or not
 * as json-c reads them.
 */
static const struct lcase bodies[] = {
    {"{\"v\":1,\"seq\":7,\"prev\":\"@\",\"x\":1}", 1, 1},
    {"{\"v\":1,\"seq\":0,\"prev\":\"@\"}", 1, 1}, /* the shortest */
    {"{\"v\":7,\"seq\":1,\"prev\":\"@\"}", 1, 1},
    {"{ \"v\":1,\"seq\":7,\"prev\":\"@\",\"x\":1}", 1, 1},
    {"{\"v\":1,\"seq\":123456789012345678,\"prev\":\"@\"}", 1, 1},
    {"{\"v\":1,\"seq\":1234567890123456789,\"prev\":\"@\"}", 0, 1},
    {"{\"v\":1,\"seq\":-7,\"prev\":\"@\",\"x\":1}", 0, 0},
    {"{\"v\":1,\"seq\":7.0,\"prev\":\"@\",\"x\":1}", 0, 0},
    {"{\"v\":1,\"seq\":07,\"prev\":\"@\",\"x\":1}", 0, 1},
    {"{\"v\":\"1\",\"seq\":7,\"prev\":\"@\",\"x\":1}", 0, 0},
    {"{\"v\":1,\"seq\":7,\"prev\":\"#A\",\"x\":1}", 0, 0},
    {"{\"v\":1,\"seq\":7,\"prev\":\"#\",\"x\":1}", 0, 0},
    {"{\"v\":1,\"seq\":7,\"prev\":\"\\u0030#\",\"x\":1}", 0, 1},
    {"{\"v\":1,\"seq\":7,\"prev\":null}", 0, 0},
    {"{\"v\":1,\"seq\":7,\"x\":1}", 0, 0},
    {"{\"v\":1,\"seq\":7,\"prev\":\"@\",\"prev\":\"!\",\"x\":1}", 0, 1},
    {"{\"seq\":7,\"v\":1,\"prev\":\"@\",\"x\":1}", 0, 1},
    {"{\"prev\":\"@\",\"v\":1,\"seq\":7}", 0, 1},
    /* An unterminated string swallowing the rest. */
    {"{\"v\":1,\"seq\":7,\"prev\":\"@\",\"a\":\"}", 0, 0},
};

/* tmpl with '@', '#' and '!' spelled out (bodies[]). */
static void
expand(char *out, size_t cap, const char *tmpl)
{
	size_t n = 0, k;

	for (; *tmpl != '\0'; tmpl++) {
		k = *tmpl == '@' || *tmpl == '!' ? 64 : *tmpl == '#' ? 63 : 1;
		assert_true(n + k < cap);
		if (k == 1)
			out[n] = *tmpl;
		else
			memset(out + n, *tmpl == '!' ? '1' : '0', k);
		n += k;
	}
	out[n] = '\0';
}

/* The body of a record as hssgw writes one, with middle in the middle. */
static void
body_with(char *out, size_t cap, const char *middle)
{
	snprintf(out, cap,
	         "{\"v\":1,\"seq\":7,\"prev\":\"%s\",\"phase\":\"final\","
	         "\"time\":\"2026-01-01T00:00:00.000Z\",\"subject\":\"alice\","
	         "\"decision\":\"allow\",\"project\":\"demo\",%s"
	         "\"upstream\":{\"task_id\":\"t-1\",\"status\":200},"
	         "\"latency_ms\":{\"auth\":0.125,\"total\":1.500}}",
	         zeros, middle);
}

/* Both readings of line agree; returns what the scanner alone said. */
static int
agrees(const char *line, size_t len)
{
	int rf = aqf_chain_agrees(line, len);

	if (rf == -1)
		fail_msg("the readings differ: %.300s", line);
	return rf;
}

/* body copied into line (cap bytes) and sealed; the line's length. */
static size_t
sealed(const char *body, char *line, size_t cap)
{
	size_t n = strlen(body);

	assert_true(n + 80 < cap);
	memcpy(line, body, n + 1);
	n = aqf_seal(line, n);
	assert_true(n > 0);
	return n;
}

/* body sealed: both readings agree, the scanner and json-c as wanted. */
static void
case_body(const char *body, int want_fast, int want_record)
{
	static char line[LINE_CAP];
	struct gw_auditq_chain c;
	size_t n = sealed(body, line, sizeof(line));

	if (agrees(line, n) != want_fast)
		fail_msg("scanner %s: %.300s", want_fast ? "declined" : "took",
		         line);
	if (gw_auditq_chain_parse(line, n, &c) != (want_record ? 0 : -1))
		fail_msg("json-c: %s: %.300s",
		         want_record ? "not a record" : "a record", line);
}

static void
case_middle(const char *middle, int want_fast, int want_record)
{
	char body[8192];

	body_with(body, sizeof(body), middle);
	case_body(body, want_fast, want_record);
}

static void
middle_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(middles) / sizeof(middles[0]); i++)
		case_middle(middles[i].text, middles[i].fast,
		            middles[i].record);
}

static void
body_cases(void **state)
{
	char body[8192];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		expand(body, sizeof(body), bodies[i].text);
		case_body(body, bodies[i].fast, bodies[i].record);
	}
}

/* Positive control: records the writer wrote take the fast path. */
static void
written_records_are_fast(void **state)
{
	static const char *const groups[] = {"team \"a\"", "b\\c", "\x01"};
	struct gw_audit_opts o = {.nosync = 1};
	struct gw_audit_rec r;
	struct gw_audit *a;
	char dir[] = "/tmp/hssgw-scan-XXXXXX", path[64], err[256];
	char line[65536];
	FILE *fp;
	int i, n = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	a = gw_audit_open_opts(path, &o, err, sizeof(err));
	assert_non_null(a);
	for (i = 0; i < 6; i++) {
		memset(&r, 0, sizeof(r));
		r.time_ms = 1767225600000LL + i;
		r.subject = i % 2 ? "carol \"c\"" : "dave";
		r.path = "/v1/exports/\xff\xfe";
		r.groups = groups;
		r.ngroups = 3;
		r.decision = "allow";
		r.record_total_num = -1;
		r.phase = i % 3 == 0 ? GW_AUDIT_INTENT : GW_AUDIT_FINAL;
		assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
	}
	gw_audit_close(a);
	fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		assert_int_equal(agrees(line, strlen(line)), 1);
		/* An escaped subject goes to json-c; the verdicts agree. */
		assert_int_equal(aqf_query_agrees(line, strlen(line)),
		                 strstr(line, "carol") == NULL);
		n++;
	}
	fclose(fp);
	assert_true(n >= 6);
	snprintf(line, sizeof(line), "rm -rf '%s'", dir);
	assert_int_equal(system(line), 0);
}

/* A NUL byte, a modified byte, a torn or doubled line, cut suffixes. */
static void
bytes_and_damage(void **state)
{
	char body[8192], line[16384];
	size_t n;

	(void)state;
	body_with(body, sizeof(body), "\"a\":\"xyz\",");
	n = sealed(body, line, sizeof(line));
	assert_int_equal(agrees(line, n), 1);
	/* Modified after sealing: a record, its hash wrong, both ways. */
	*strstr(line, "xyz") = 'X';
	assert_int_equal(agrees(line, n), 1);
	*strstr(line, "Xyz") = '\0'; /* a NUL byte: not a record */
	assert_int_equal(agrees(line, n), 0);
	n = sealed(body, line, sizeof(line));
	line[n - 1] = ']'; /* the closing brace */
	assert_int_equal(agrees(line, n), 0);
	n = sealed(body, line, sizeof(line));
	assert_int_equal(agrees(line, n - 1), 0); /* torn */
	assert_int_equal(agrees(line, 0), 0);     /* empty */
	assert_int_equal(agrees(line + 1, n - 1), 0);
	/* Two objects on one line, the second a record. */
	memmove(line + 8, line, n + 1);
	memcpy(line, "{\"a\":1}", 7);
	line[7] = ' ';
	assert_int_equal(agrees(line, n + 8), 0);
	/* Upper-case hex in the suffix. */
	n = sealed(body, line, sizeof(line));
	line[n - 3] = 'A';
	assert_int_equal(agrees(line, n), 0);
}

/* depth arrays around a 1, then a comma: a member's value. */
static void
nested(char *out, size_t depth)
{
	size_t i;

	for (i = 0; i < depth; i++)
		out[i] = '[';
	out[depth] = '1';
	for (i = 0; i < depth; i++)
		out[depth + 1 + i] = ']';
	snprintf(out + 2 * depth + 1, 2, ",");
}

/* Nesting past the scanner's limit, and past json-c's; long lines. */
static void
deep_and_long(void **state)
{
	char mid[256], *body, *line;
	size_t n, i, off;

	(void)state;
	nested(mid, 10);
	memmove(mid + 4, mid, strlen(mid) + 1);
	memcpy(mid, "\"a\":", 4);
	case_middle(mid, 1, 1);
	nested(mid + 4, 20); /* deeper than the scanner goes */
	case_middle(mid, 0, 1);
	nested(mid + 4, 40); /* deeper than json-c goes */
	case_middle(mid, 0, 0);
	/* A very long line: just under the limit, and just over it. */
	body = malloc(LINE_CAP);
	line = malloc(LINE_CAP);
	assert_non_null(body);
	assert_non_null(line);
	for (i = 0; i < 2; i++) {
		n = GW_AUDITQ_LINE_MAX - 300 + i * 400;
		off = (size_t)snprintf(body, LINE_CAP,
		                       "{\"v\":1,\"seq\":7,\"prev\":\"%s\","
		                       "\"a\":\"",
		                       zeros);
		memset(body + off, 'x', n);
		snprintf(body + off + n, LINE_CAP - off - n, "\"}");
		n = sealed(body, line, LINE_CAP);
		assert_int_equal(agrees(line, n), i == 0 ? 1 : 0);
	}
	free(body);
	free(line);
}

/* Query: one line, every filter, both readings. */
static void
query_agrees(const char *line, int want_fast)
{
	int rf = aqf_query_agrees(line, strlen(line));

	if (rf == -1)
		fail_msg("the readings differ: %s", line);
	if (rf != want_fast)
		fail_msg("scanner %s: %s", want_fast ? "declined" : "took",
		         line);
}

static void
query_hostile(void **state)
{
	static const struct {
		const char *line;
		int fast;
	} cases[] = {
	    {"{\"time\":\"2026-01-01T00:00:00.000Z\",\"subject\":\"alice\","
	     "\"decision\":\"allow\",\"project\":\"demo\","
	     "\"upstream\":{\"task_id\":\"t-1\"}}",
	     1},
	    {"{\"subject\":\"bob\",\"subject\":\"alice\"}", 0},
	    {"{\"subject\":\"al\\u0069ce\"}", 0},
	    {"{\"subj\\u0065ct\":\"alice\"}", 0},
	    {"{\"subject\":5}", 0},
	    {"{\"subject\":null,\"project\":null}", 1},
	    {"{\"subject\":[\"alice\"]}", 0},
	    {"{\"upstream\":{\"task_id\":\"t-2\"},\"upstream\":{\"task_id\":"
	     "\"t-1\"}}",
	     0},
	    {"{\"upstream\":{\"task_id\":\"t-2\",\"task_id\":\"t-1\"}}", 0},
	    {"{\"upstream\":{\"task_\\u0069d\":\"t-1\"}}", 0},
	    {"{\"upstream\":\"t-1\"}", 1},
	    {"{\"upstream\":null}", 1},
	    {"{\"upstream\":{\"x\":{\"task_id\":\"t-1\"}}}", 1},
	    {"{\"time\":1767225600000}", 0},
	    {"{\"time\":\"2026-01-01T00:00:00.000\\u005a\"}", 0},
	    {"{\"time\":\"2026-01-01T00:00:00.000Z\",\"time\":\"1999\"}", 0},
	    {"{\"time\":\"2026-01-01T00:00:00.000000000000000000000000000000"
	     "000000000000000Z\"}",
	     1},
	    {"{\"time\":\"2025-12-31T23:59:59.999Z\"}", 1},
	    {"{\"time\":\"2026-01-01T01:00:00.000+01:00\"}", 1},
	    {"{\"subject\":\"alice\"} ", 0},
	    {"{\"subject\":\"alice\"}{}", 0},
	    {"{\"subject\":\"alice\",}", 0},
	    {"[\"alice\"]", 0},
	    {"{\"subject\":\"alice\"", 0},
	    {"", 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		query_agrees(cases[i].line, cases[i].fast);
}

/*
 * Strings are skipped 8 bytes at a time: a quote, a backslash or a
 * control must stop the skip at any of a word's positions, among any
 * bytes (high ones included, which the word test must not take for a
 * stop nor let hide one).
 */
static void
word_boundaries(void **state)
{
	static const char fill[] = {'a', '\x7f', '\x80', '\xff', ' '};
	char line[256];
	size_t i, j, n;

	(void)state;
	for (i = 0; i < sizeof(fill); i++)
		for (j = 0; j < 20; j++) {
			n = (size_t)snprintf(line, sizeof(line), "{\"a\":\"");
			memset(line + n, fill[i], j);
			n += j;
			/* The quote ends the string: subject is read. */
			snprintf(line + n, sizeof(line) - n,
			         "\",\"subject\":\"alice\",\"b\":\"%.*s\"}",
			         (int)j, "xxxxxxxxxxxxxxxxxxxx");
			query_agrees(line, 1);
			/* An escaped quote does not: the string goes on. */
			snprintf(line + n, sizeof(line) - n,
			         "\\\"\",\"subject\":\"alice\"}");
			query_agrees(line, 1);
			/* An escaped quote, then what would be a member. */
			snprintf(line + n, sizeof(line) - n,
			         "\\\",\\\"subject\\\":\\\"bob\","
			         "\"subject\":\"al\"}");
			query_agrees(line, 1);
			/* A control byte is json-c's to take. */
			snprintf(line + n, sizeof(line) - n,
			         "\x1f\",\"subject\":\"alice\"}");
			query_agrees(line, 0);
		}
}

/* A NUL byte in a query line: json-c's "not a record", both ways. */
static void
query_nul(void **state)
{
	static const char line[] = "{\"subject\":\"ali\0ce\"}";
	struct gw_auditq_filter f = {0};
	char tm[AQ_TIME_CAP];

	(void)state;
	assert_int_equal(aq_query_line(line, sizeof(line) - 1, &f, 1, tm), -1);
	assert_int_equal(aq_query_line(line, sizeof(line) - 1, &f, 0, tm), -1);
}

static void
write_file(const char *path, const char *p, size_t n)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/* The reader: lines as fgets would cut them, limits as verify had them. */
static void
reader_lines(void **state)
{
	char dir[] = "/tmp/hssgw-reader-XXXXXX", path[64], *big, *want, *p;
	struct aq_reader r;
	size_t n, i, off;
	int term;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t", dir);
	write_file(path, "a\n\nb\0c\nlast", 11);
	assert_int_equal(aq_reader_open(&r, path), 0);
	assert_int_equal(aq_reader_next(&r, &term), 1);
	assert_int_equal(term, 1);
	assert_int_equal(r.len, 1);
	assert_string_equal(r.line, "a");
	assert_int_equal(aq_reader_next(&r, &term), 1);
	assert_int_equal(r.len, 0);
	assert_int_equal(aq_reader_next(&r, &term), 1);
	assert_int_equal(r.len, 3); /* the NUL byte kept */
	assert_memory_equal(r.line, "b\0c", 4);
	assert_int_equal(aq_reader_next(&r, &term), 1);
	assert_int_equal(term, 0);
	assert_string_equal(r.line, "last");
	assert_int_equal(r.lineno, 4);
	assert_int_equal(aq_reader_next(&r, &term), 0);
	assert_int_equal(aq_reader_next(&r, &term), 0);
	aq_reader_close(&r);

	/* Lines of every length across many blocks, then the limit. */
	big = malloc(8 * AQ_READ_BUF);
	want = malloc(GW_AUDITQ_LINE_MAX + 2);
	assert_non_null(big);
	assert_non_null(want);
	for (off = 0, i = 0; off + 70000 < 4 * AQ_READ_BUF; i++) {
		n = (i * 7919) % 65536;
		memset(big + off, 'a' + (int)(i % 26), n);
		big[off + n] = '\n';
		off += n + 1;
	}
	memset(big + off, 'z', GW_AUDITQ_LINE_MAX);
	big[off + GW_AUDITQ_LINE_MAX] = '\n';
	n = off + GW_AUDITQ_LINE_MAX + 1;
	memset(big + n, 'y', GW_AUDITQ_LINE_MAX + 1);
	write_file(path, big, n + GW_AUDITQ_LINE_MAX + 1);
	assert_int_equal(aq_reader_open(&r, path), 0);
	for (p = big, i = 0; p < big + off; i++) {
		assert_int_equal(aq_reader_next(&r, &term), 1);
		n = (size_t)((char *)memchr(p, '\n', (size_t)(big + off - p)) -
		             p);
		assert_int_equal(r.len, n);
		assert_memory_equal(r.line, p, n);
		p += n + 1;
	}
	assert_int_equal(aq_reader_next(&r, &term), 1); /* exactly the max */
	assert_int_equal(r.len, GW_AUDITQ_LINE_MAX);
	assert_int_equal(aq_reader_next(&r, &term), -1); /* one more */
	assert_int_equal(r.lineno, (long long)i + 1);
	aq_reader_close(&r);
	/* Unterminated at the end: the max is a line, one more is not. */
	memset(want, 'q', GW_AUDITQ_LINE_MAX + 1);
	write_file(path, want, GW_AUDITQ_LINE_MAX);
	assert_int_equal(aq_reader_open(&r, path), 0);
	assert_int_equal(aq_reader_next(&r, &term), 1);
	assert_int_equal(term, 0);
	aq_reader_close(&r);
	write_file(path, want, GW_AUDITQ_LINE_MAX + 1);
	assert_int_equal(aq_reader_open(&r, path), 0);
	assert_int_equal(aq_reader_next(&r, &term), -1);
	aq_reader_close(&r);
	/* A directory opens and reads as an error, as with stdio. */
	assert_int_equal(aq_reader_open(&r, dir), 0);
	assert_int_equal(aq_reader_next(&r, &term), 0);
	assert_int_not_equal(r.err, 0);
	aq_reader_close(&r);
	assert_int_equal(aq_reader_open(&r, "/nonexistent/x"), -1);
	aq_reader_close(&r);
	free(big);
	free(want);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(written_records_are_fast),
	    cmocka_unit_test(middle_cases),
	    cmocka_unit_test(body_cases),
	    cmocka_unit_test(bytes_and_damage),
	    cmocka_unit_test(deep_and_long),
	    cmocka_unit_test(query_hostile),
	    cmocka_unit_test(word_boundaries),
	    cmocka_unit_test(query_nul),
	    cmocka_unit_test(reader_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
