/*
 * The front's FastCGI record walk (server/fcgi_record.c): a request is
 * whole only at the empty FCGI_STDIN record of its own id after its
 * PARAMS stream ended, and any record out of that order rejects the
 * connection.  Attack tests (issue 21: an empty STDIN record of another
 * id made a stream look whole, and libfcgi then blocked a worker on the
 * missing PARAMS), each beside its positive control; the walk fed byte by
 * byte decides exactly as fed at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fcgi.h"
#include "gw.h"

#define BEGIN      1
#define ABORT      2
#define PARAMS     4
#define STDIN      5
#define DATA       8
#define GET_VALUES 9

struct msg {
	unsigned char b[80000];
	size_t n;
};

static void
rec_v(struct msg *m, unsigned ver, unsigned type, unsigned id, size_t clen,
      unsigned pad)
{
	unsigned char *h = m->b + m->n;

	assert_true(m->n + 8 + clen + pad <= sizeof(m->b));
	h[0] = (unsigned char)ver;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(clen >> 8);
	h[5] = (unsigned char)clen;
	h[6] = (unsigned char)pad;
	h[7] = 0;
	memset(h + 8, 'x', clen + pad);
	if (type == BEGIN && clen == 8) /* role responder, no keep-conn */
		memcpy(h + 8, "\0\1\0\0\0\0\0\0", 8);
	m->n += 8 + clen + pad;
}

static void
rec(struct msg *m, unsigned type, unsigned id, size_t clen)
{
	rec_v(m, 1, type, id, clen, 0);
}

/* What nginx sends: BEGIN, params, their end, a body, its end. */
static void
whole(struct msg *m, unsigned id)
{
	rec(m, BEGIN, id, 8);
	rec_v(m, 1, PARAMS, id, 300, 4);
	rec(m, PARAMS, id, 0);
	rec_v(m, 1, STDIN, id, 17, 7);
	rec(m, STDIN, id, 0);
}

/* The walk of all of m at once, checked against the walk byte by byte. */
static int
walk_all(const struct msg *m, enum gw_fcgi_reject *why)
{
	struct gw_fcgi_walk a, b;
	int ra, rb = 0;
	size_t i;

	gw_fcgi_walk_init(&a);
	gw_fcgi_walk_init(&b);
	ra = gw_fcgi_walk(&a, m->b, m->n);
	for (i = 0; i < m->n && rb != -1; i++)
		rb = gw_fcgi_walk(&b, m->b + i, 1);
	assert_int_equal(ra, rb);
	assert_int_equal(a.reject, b.reject);
	*why = a.reject;
	return ra;
}

static void
positive_whole_request(void **state)
{
	struct msg m = {.n = 0};
	enum gw_fcgi_reject why;
	struct gw_fcgi_walk w;
	size_t i;

	(void)state;
	whole(&m, 1);
	assert_int_equal(walk_all(&m, &why), 1);
	assert_int_equal(why, GW_FCGI_REJ_NONE);
	assert_int_equal(gw_fcgi_stream_ended(m.b, m.n), 1);
	/* Every strict prefix is incomplete, never rejected. */
	for (i = 0; i < m.n; i++)
		assert_int_equal(gw_fcgi_stream_ended(m.b, i), 0);
	/* The walk's end is the request's last byte. */
	gw_fcgi_walk_init(&w);
	assert_int_equal(gw_fcgi_walk(&w, m.b, m.n), 1);
	assert_int_equal(w.end, m.n);
	/* Any request id, the largest record lengths. */
	m.n = 0;
	rec(&m, BEGIN, 65535, 8);
	rec_v(&m, 1, PARAMS, 65535, 65535, 255);
	rec(&m, PARAMS, 65535, 0);
	rec(&m, STDIN, 65535, 0);
	assert_int_equal(walk_all(&m, &why), 1);
}

static void
need_counts_to_the_next_decision(void **state)
{
	struct msg m = {.n = 0};
	struct gw_fcgi_walk w;

	(void)state;
	gw_fcgi_walk_init(&w);
	assert_int_equal(gw_fcgi_walk_need(&w), 8);
	rec(&m, BEGIN, 1, 8);
	rec_v(&m, 1, PARAMS, 1, 100, 4);
	assert_int_equal(gw_fcgi_walk(&w, m.b, 3), 0);
	assert_int_equal(gw_fcgi_walk_need(&w), 5);
	assert_int_equal(gw_fcgi_walk(&w, m.b + 3, 16 + 8 - 3), 0);
	/* Inside PARAMS' content: the rest of it, then a header. */
	assert_int_equal(gw_fcgi_walk_need(&w), 104 + 8);
}

/* The reproduction: BEGIN_REQUEST (id 1), empty STDIN (id 2). */
static void
attack_empty_stdin_of_another_id(void **state)
{
	struct msg m = {.n = 0};
	enum gw_fcgi_reject why;

	(void)state;
	rec(&m, BEGIN, 1, 8);
	rec(&m, STDIN, 2, 0);
	assert_int_equal(gw_fcgi_stream_ended(m.b, m.n), 0);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_FOREIGN_ID);
	/* Positive control: the same with id 1 after PARAMS ended. */
	m.n = 0;
	rec(&m, BEGIN, 1, 8);
	rec(&m, PARAMS, 1, 0);
	rec(&m, STDIN, 1, 0);
	assert_int_equal(walk_all(&m, &why), 1);
}

/* Gap: an empty STDIN before PARAMS ended looked whole. */
static void
attack_stdin_before_params_end(void **state)
{
	struct msg m = {.n = 0};
	enum gw_fcgi_reject why;

	(void)state;
	rec(&m, BEGIN, 1, 8);
	rec(&m, PARAMS, 1, 40);
	rec(&m, STDIN, 1, 0);
	assert_int_equal(gw_fcgi_stream_ended(m.b, m.n), 0);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_ORDER);
	/* No BEGIN_REQUEST at all. */
	m.n = 0;
	rec(&m, STDIN, 1, 0);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_ORDER);
	/* PARAMS after STDIN began. */
	m.n = 0;
	rec(&m, BEGIN, 1, 8);
	rec(&m, PARAMS, 1, 0);
	rec(&m, STDIN, 1, 5);
	rec(&m, PARAMS, 1, 5);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_ORDER);
	/* FCGI_DATA: a filter's, never a responder's. */
	m.n = 0;
	rec(&m, BEGIN, 1, 8);
	rec(&m, PARAMS, 1, 0);
	rec(&m, DATA, 1, 0);
	assert_int_equal(walk_all(&m, &why), -1);
}

static void
attack_second_begin_request(void **state)
{
	struct msg m = {.n = 0};
	enum gw_fcgi_reject why;

	(void)state;
	rec(&m, BEGIN, 1, 8);
	rec(&m, BEGIN, 1, 8);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_ORDER);
	/* A second request after a whole one (keep-conn pipelining). */
	m.n = 0;
	whole(&m, 1);
	rec(&m, BEGIN, 1, 8);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_ORDER);
	/* Of another id: multiplexing, which hssgw does not do. */
	m.n = 0;
	rec(&m, BEGIN, 1, 8);
	rec(&m, BEGIN, 2, 8);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_FOREIGN_ID);
}

static void
attack_foreign_records_inside(void **state)
{
	struct msg m = {.n = 0};
	enum gw_fcgi_reject why;

	(void)state;
	rec(&m, BEGIN, 1, 8);
	rec(&m, PARAMS, 1, 10);
	rec(&m, PARAMS, 3, 0);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_FOREIGN_ID);
	m.n = 0;
	rec(&m, BEGIN, 1, 8);
	rec(&m, PARAMS, 1, 0);
	rec(&m, STDIN, 1, 10);
	rec(&m, STDIN, 256 + 1, 0); /* the low byte alike */
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_FOREIGN_ID);
}

static void
attack_management_records(void **state)
{
	struct msg m = {.n = 0};
	enum gw_fcgi_reject why;

	(void)state;
	rec(&m, GET_VALUES, 0, 0);
	whole(&m, 1);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_MANAGEMENT);
	m.n = 0;
	rec(&m, BEGIN, 1, 8);
	rec(&m, PARAMS, 1, 0);
	rec(&m, GET_VALUES, 0, 0);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_MANAGEMENT);
	/* A BEGIN_REQUEST with the management id. */
	m.n = 0;
	rec(&m, BEGIN, 0, 8);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_MANAGEMENT);
}

static void
attack_malformed_headers(void **state)
{
	struct msg m = {.n = 0};
	enum gw_fcgi_reject why;

	(void)state;
	rec_v(&m, 2, BEGIN, 1, 8, 0);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_MALFORMED);
	m.n = 0;
	rec(&m, BEGIN, 1, 7);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_MALFORMED);
	/* A later record of another version. */
	m.n = 0;
	rec(&m, BEGIN, 1, 8);
	rec_v(&m, 0, PARAMS, 1, 0, 0);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_MALFORMED);
}

/* After the end: an abort is seen, a partial header is not judged. */
static void
abort_after_the_end(void **state)
{
	struct msg m = {.n = 0};
	enum gw_fcgi_reject why;
	struct gw_fcgi_walk w;
	size_t end;

	(void)state;
	whole(&m, 7);
	end = m.n;
	rec(&m, ABORT, 7, 0);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_ABORTED);
	/* The front walks the request, hands it over, then the rest. */
	gw_fcgi_walk_init(&w);
	assert_int_equal(gw_fcgi_walk(&w, m.b, end), 1);
	assert_int_equal(gw_fcgi_walk(&w, m.b + end, 5), 1);
	assert_int_equal(gw_fcgi_walk(&w, m.b + end + 5, 3), -1);
	assert_int_equal(w.reject, GW_FCGI_REJ_ABORTED);
	assert_int_equal(w.end, end);
	/* Aborted midway. */
	m.n = 0;
	rec(&m, BEGIN, 7, 8);
	rec(&m, ABORT, 7, 0);
	assert_int_equal(walk_all(&m, &why), -1);
	assert_int_equal(why, GW_FCGI_REJ_ABORTED);
	/* Positive control: a partial header after the end. */
	m.n = 0;
	whole(&m, 7);
	m.b[m.n++] = 1;
	assert_int_equal(walk_all(&m, &why), 1);
	assert_string_equal(gw_fcgi_reject_name(GW_FCGI_REJ_ABORTED),
	                    "aborted");
}

/*
 * A deferred answer's records, as libfcgi's FCGX_Finish_r would write
 * them: FCGI_STDOUT records of at most 65535 bytes carrying every byte in
 * order, the empty FCGI_STDOUT, and FCGI_END_REQUEST (appStatus 0,
 * FCGI_REQUEST_COMPLETE), all with the request's id.
 */
static void
frame_answer_records(void **state)
{
	static unsigned char body[70000];
	static const unsigned char end[8] = {0};
	struct gw_buf out;
	const unsigned char *p;
	size_t i, off = 0, got = 0;
	int nstdout = 0;

	(void)state;
	for (i = 0; i < sizeof(body); i++)
		body[i] = (unsigned char)(i * 7);
	gw_buf_init(&out, 1 << 20);
	assert_int_equal(gw_fcgi_frame_answer(&out, 258, body, sizeof(body)),
	                 0);
	p = (const unsigned char *)out.p;
	for (;;) {
		size_t clen;

		assert_true(off + 8 <= out.len);
		assert_int_equal(p[off], 1); /* version */
		assert_int_equal((p[off + 2] << 8) | p[off + 3], 258); /* id */
		clen = ((size_t)p[off + 4] << 8) | p[off + 5];
		assert_int_equal(p[off + 6], 0); /* no padding */
		if (p[off + 1] == 3) {           /* FCGI_END_REQUEST */
			assert_int_equal(clen, 8);
			assert_memory_equal(p + off + 8, end, 8);
			off += 16;
			break;
		}
		assert_int_equal(p[off + 1], 6); /* FCGI_STDOUT */
		if (clen > 0) {
			assert_true(clen <= 65535);
			assert_memory_equal(p + off + 8, body + got, clen);
			got += clen;
			nstdout++;
		} else
			assert_int_equal(got, sizeof(body)); /* the last */
		off += 8 + clen;
	}
	assert_int_equal(off, out.len);
	assert_int_equal(got, sizeof(body));
	assert_int_equal(nstdout, 2);
	/* An empty answer is the empty FCGI_STDOUT and the end only. */
	out.len = 0;
	assert_int_equal(gw_fcgi_frame_answer(&out, 1, "", 0), 0);
	assert_int_equal(out.len, 24);
	/* Ids a responder never has; a cap too small: refused. */
	assert_int_equal(gw_fcgi_frame_answer(&out, 0, "x", 1), -1);
	assert_int_equal(gw_fcgi_frame_answer(&out, 65536, "x", 1), -1);
	gw_buf_reset(&out);
	gw_buf_init(&out, 100);
	assert_int_equal(gw_fcgi_frame_answer(&out, 1, body, 200), -1);
	gw_buf_reset(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(positive_whole_request),
	    cmocka_unit_test(need_counts_to_the_next_decision),
	    cmocka_unit_test(attack_empty_stdin_of_another_id),
	    cmocka_unit_test(attack_stdin_before_params_end),
	    cmocka_unit_test(attack_second_begin_request),
	    cmocka_unit_test(attack_foreign_records_inside),
	    cmocka_unit_test(attack_management_records),
	    cmocka_unit_test(attack_malformed_headers),
	    cmocka_unit_test(abort_after_the_end),
	    cmocka_unit_test(frame_answer_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
