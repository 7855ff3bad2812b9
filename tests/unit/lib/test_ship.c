/*
 * Ship's follower, cursor and frame over trails written by the real
 * writer (gw_audit_emit): every record in seq order across size rotation
 * and across a logrotate-style rename while hssgw still appends to the
 * old name; a restart from a cursor resumes at the next record and
 * checks the chain against the acknowledged hash; a torn last line is
 * not read until complete; a gap and a rewritten record stop it (and it
 * stays there, never skipping); the cursor survives a save/load and a
 * foreign file is refused; the RFC 5424 frame carries the line as is;
 * the gateway's watch on the cursor (audit.ship.max_lag_s).
 */
#include <sys/stat.h>

#include <time.h>

#include <fcntl.h>
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
#include "gw.h"
#include "ship.h"

struct dir {
	char path[256];
	char trail[300];
};

static void
mkdir_tmp(struct dir *d)
{
	snprintf(d->path, sizeof(d->path), "/tmp/hssgw-ship-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	snprintf(d->trail, sizeof(d->trail), "%s/audit.jsonl", d->path);
}

static void
rm_tmp(struct dir *d)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
	assert_int_equal(system(cmd), 0);
}

static void
emit(struct gw_audit *a, int n)
{
	struct gw_audit_rec r;
	char err[256];
	int i;

	for (i = 0; i < n; i++) {
		memset(&r, 0, sizeof(r));
		r.time_ms = gw_now_ms();
		r.request_id = "req";
		r.subject = "alice";
		r.path = "/v1/exports/image-baseline\x7f\xc3\xa9";
		r.status = 403;
		r.decision = "explicit_deny";
		assert_int_equal(gw_audit_emit(a, &r, err, sizeof(err)), GW_OK);
	}
}

static struct gw_audit *
open_trail(const char *path, long long rotate)
{
	struct gw_audit_opts o;
	char err[256];
	struct gw_audit *a;

	memset(&o, 0, sizeof(o));
	o.nosync = 1;
	o.rotate_bytes = rotate;
	o.instance = "gw-t";
	a = gw_audit_open_opts(path, &o, err, sizeof(err));
	assert_non_null(a);
	return a;
}

/* Reads what is there; returns the count, checks seqs from FIRST. */
static int
drain(struct gw_ship_follow *f, long long first, char *lasthash)
{
	struct gw_ship_rec r;
	char err[512];
	int n = 0, rc;

	while ((rc = gw_ship_next(f, &r, err, sizeof(err))) == 1) {
		assert_int_equal(r.seq, first + n);
		assert_int_equal(r.line[r.len], '\n');
		assert_true(r.time_ms > 0);
		if (lasthash != NULL)
			memcpy(lasthash, r.hash, GW_AUDIT_HASH_HEX + 1);
		n++;
	}
	assert_int_equal(rc, 0);
	return n;
}

static void
follows_size_rotation(void **state)
{
	struct dir d;
	struct gw_audit *a;
	struct gw_ship_follow *f;
	int got;

	(void)state;
	mkdir_tmp(&d);
	a = open_trail(d.trail, 4096);
	f = gw_ship_follow_new(d.trail, NULL);
	assert_non_null(f);
	emit(a, 10);
	got = drain(f, 1, NULL);
	emit(a, 90); /* rotates several times */
	/* A new look at the files waits LOCATE_MS after an end of file. */
	for (int i = 0; i < 30 && got < 100; i++) {
		got += drain(f, 1 + got, NULL);
		nanosleep(&(struct timespec){0, 50000000L}, NULL);
	}
	assert_int_equal(got, 100);
	assert_true(gw_ship_head_seq(f) >= 100);
	gw_ship_follow_free(f);
	gw_audit_close(a);
	rm_tmp(&d);
}

static void
follows_rename_while_appending(void **state)
{
	struct dir d;
	struct gw_audit *a;
	struct gw_ship_follow *f;
	char moved[400], err[256];
	int got;

	(void)state;
	mkdir_tmp(&d);
	a = open_trail(d.trail, 0);
	f = gw_ship_follow_new(d.trail, NULL);
	emit(a, 5);
	got = drain(f, 1, NULL);
	/* logrotate renames; hssgw writes on into the old file until
	 * SIGUSR1 makes it reopen the path. */
	snprintf(moved, sizeof(moved), "%s.20260101T000000", d.trail);
	assert_int_equal(rename(d.trail, moved), 0);
	emit(a, 5);
	assert_int_equal(gw_audit_reopen(a, err, sizeof(err)), GW_OK);
	emit(a, 5);
	for (int i = 0; i < 30 && got < 15; i++) {
		got += drain(f, 1 + got, NULL);
		nanosleep(&(struct timespec){0, 50000000L}, NULL);
	}
	assert_int_equal(got, 15);
	gw_ship_follow_free(f);
	gw_audit_close(a);
	rm_tmp(&d);
}

static void
resumes_from_cursor_and_checks_chain(void **state)
{
	struct dir d;
	struct gw_audit *a;
	struct gw_ship_follow *f;
	struct gw_ship_cursor c, back;
	struct gw_ship_rec r;
	char cpath[400], err[512], cmd[400];

	(void)state;
	mkdir_tmp(&d);
	a = open_trail(d.trail, 2048);
	emit(a, 30);
	memset(&c, 0, sizeof(c));
	snprintf(c.instance, sizeof(c.instance), "gw-t");
	f = gw_ship_follow_new(d.trail, NULL);
	for (int i = 0; i < 12; i++)
		assert_int_equal(gw_ship_next(f, &r, err, sizeof(err)), 1);
	c.seq = r.seq;
	memcpy(c.hash, r.hash, sizeof(c.hash));
	c.time_ms = r.time_ms;
	gw_ship_follow_free(f);
	snprintf(cpath, sizeof(cpath), "%s/ship.cursor", d.path);
	assert_int_equal(gw_ship_cursor_load(cpath, &back, err, sizeof(err)),
	                 0);
	assert_int_equal(gw_ship_cursor_save(cpath, &c, err, sizeof(err)), 0);
	assert_int_equal(gw_ship_cursor_load(cpath, &back, err, sizeof(err)),
	                 1);
	assert_int_equal(back.seq, 12);
	assert_string_equal(back.hash, c.hash);
	assert_string_equal(back.instance, "gw-t");
	assert_true(back.time_ms == c.time_ms);
	/* The restart: from seq 13 on, in whatever file it is. */
	f = gw_ship_follow_new(d.trail, &back);
	assert_int_equal(drain(f, 13, NULL), 18);
	gw_ship_follow_free(f);
	/* A cursor whose hash is not the trail's (rewritten after it was
	 * shipped): stops at seq 13, and stays stopped. */
	back.hash[0] = back.hash[0] == '0' ? '1' : '0';
	f = gw_ship_follow_new(d.trail, &back);
	assert_int_equal(gw_ship_next(f, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "rewritten"));
	assert_int_equal(gw_ship_next(f, &r, err, sizeof(err)), -1);
	gw_ship_follow_free(f);
	/* A new trail under the old name (the files replaced): seq 12 is
	 * there but is not the record acknowledged. */
	memcpy(back.hash, c.hash, sizeof(back.hash));
	gw_audit_close(a);
	snprintf(cmd, sizeof(cmd), "rm -f '%s'/audit.jsonl*", d.path);
	assert_int_equal(system(cmd), 0);
	a = open_trail(d.trail, 0);
	emit(a, 20);
	f = gw_ship_follow_new(d.trail, &back);
	assert_int_equal(gw_ship_next(f, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "acknowledged"));
	gw_ship_follow_free(f);
	/* Not a cursor. */
	assert_int_equal(gw_ship_cursor_load(d.trail, &back, err, sizeof(err)),
	                 -1);
	gw_audit_close(a);
	rm_tmp(&d);
}

static void
waits_for_torn_line_and_stops_at_gap(void **state)
{
	struct dir d;
	struct gw_audit *a;
	struct gw_ship_follow *f;
	struct gw_ship_rec r;
	char err[512], *text = NULL, *nl, *end2, *rest, *l3;
	size_t len, n3;
	int fd;

	(void)state;
	mkdir_tmp(&d);
	a = open_trail(d.trail, 0);
	emit(a, 3);
	gw_audit_close(a);
	assert_int_equal(
	    gw_read_file(d.trail, 1 << 20, 0, &text, &len, err, sizeof(err)),
	    0);
	/* Rewrite: records 1 and 3 whole, then half of 2 (torn). */
	nl = strchr(text, '\n');
	fd = open(d.trail, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, (size_t)(nl - text + 1)),
	                 nl - text + 1);
	assert_int_equal(write(fd, nl + 1, 40), 40);
	f = gw_ship_follow_new(d.trail, NULL);
	assert_int_equal(drain(f, 1, NULL), 1);
	/* The torn line is not a record yet: nothing, no error. */
	assert_int_equal(gw_ship_next(f, &r, err, sizeof(err)), 0);
	/* Completed: it arrives. */
	end2 = strchr(nl + 1, '\n');
	rest = nl + 1 + 40;
	assert_int_equal(write(fd, rest, (size_t)(end2 - rest + 1)),
	                 end2 - rest + 1);
	assert_int_equal(gw_ship_next(f, &r, err, sizeof(err)), 1);
	assert_int_equal(r.seq, 2);
	/* Then a record whose seq jumps (record 3 with seq 9): a gap. */
	l3 = end2 + 1;
	n3 = (size_t)(strchr(l3, '\n') - l3 + 1);
	assert_int_equal(strncmp(l3, "{\"v\":1,\"seq\":3,", 15), 0);
	l3[13] = '9';
	assert_int_equal(write(fd, l3, n3), (ssize_t)n3);
	close(fd);
	assert_int_equal(gw_ship_next(f, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing"));
	/* It stays at the gap: never the record after it. */
	assert_int_equal(gw_ship_next(f, &r, err, sizeof(err)), -1);
	gw_ship_follow_free(f);
	free(text);
	rm_tmp(&d);
}

static void
parses_and_frames(void **state)
{
	static const char line[] =
	    "{\"v\":1,\"seq\":42,\"prev\":\"0000000000000000000000000000000000"
	    "000000000000000000000000000000\",\"phase\":\"final\",\"time\":"
	    "\"2026-01-01T00:00:01.500Z\",\"x\":\"pad pad pad pad pad pad pad "
	    "pad pad pad pad pad "
	    "pad\",\"hash\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}";
	char prev[65], hash[65];
	long long seq;
	int64_t t;
	struct gw_buf b;

	(void)state;
	assert_int_equal(
	    gw_ship_parse(line, strlen(line), &seq, prev, hash, &t), 0);
	assert_int_equal(seq, 42);
	assert_true(t == 1767225601500LL);
	assert_int_equal(hash[0], 'a');
	assert_int_equal(
	    gw_ship_parse(line, strlen(line) - 3, &seq, prev, hash, &t), -1);
	assert_int_equal(gw_ship_parse("{\"v\":1}", 7, &seq, prev, hash, &t),
	                 -1);
	gw_buf_init(&b, 4096);
	assert_int_equal(
	    gw_ship_frame(&b, "gw-a", 1767225601500LL, line, strlen(line)), 0);
	assert_string_equal(b.p + strlen(b.p) - strlen(line), line);
	{
		static const char head[] =
		    "<86>1 2026-01-01T00:00:01.500Z gw-a hssgw - audit - {";

		assert_int_equal(strncmp(b.p, head, strlen(head)), 0);
	}
	gw_buf_reset(&b);
}

/* Writes a cursor for instance gw-t at seq (any hash). */
static void
put_cursor(const char *path, const char *instance, long long seq)
{
	struct gw_ship_cursor c;
	char err[256];

	memset(&c, 0, sizeof(c));
	snprintf(c.instance, sizeof(c.instance), "%s", instance);
	c.seq = seq;
	memset(c.hash, 'a', GW_AUDIT_HASH_HEX);
	assert_int_equal(gw_ship_cursor_save(path, &c, err, sizeof(err)), 0);
}

/*
 * The gateway's watch (audit.ship.max_lag_s): the age of the oldest
 * record past the cursor, never overstated; no cursor is nothing
 * acknowledged; refusing only past max_lag_s and only while behind;
 * another instance's cursor counts as nothing; an unreadable one keeps
 * the last good; thinning a full ring keeps a lower bound.
 */
static void
lag_watch(void **state)
{
	struct gw_ship_lag *l;
	struct dir d;
	char cpath[320], err[256];
	int64_t t0 = 1000000;
	long long i;
	FILE *f;

	(void)state;
	mkdir_tmp(&d);
	snprintf(cpath, sizeof(cpath), "%s/ship.cursor", d.path);
	assert_int_equal(gw_ship_lag_refusing(NULL), 0);
	l = gw_ship_lag_new(cpath, "gw-t", 10);
	assert_non_null(l);
	/* No cursor yet: everything durable is unshipped, from its note. */
	assert_int_equal(gw_ship_lag_update(l, 5, t0, err, sizeof(err)), 0);
	assert_int_equal(gw_ship_lag_records(l), 5);
	assert_int_equal(gw_ship_lag_ms(l), 0);
	assert_int_equal(gw_ship_lag_update(l, 8, t0 + 1000, err, sizeof(err)),
	                 0);
	assert_int_equal(gw_ship_lag_update(l, 9, t0 + 11000, err, sizeof(err)),
	                 0);
	assert_int_equal(gw_ship_lag_ms(l), 11000);
	assert_int_equal(gw_ship_lag_refusing(l), 1);
	/* Up to 5 acknowledged: the oldest left was durable by t0 + 1 s. */
	put_cursor(cpath, "gw-t", 5);
	assert_int_equal(gw_ship_lag_update(l, 9, t0 + 11000, err, sizeof(err)),
	                 0);
	assert_int_equal(gw_ship_lag_records(l), 4);
	assert_int_equal(gw_ship_lag_ms(l), 10000);
	/* Positive control: exactly max_lag_s is not past it. */
	assert_int_equal(gw_ship_lag_refusing(l), 0);
	put_cursor(cpath, "gw-t", 9);
	assert_int_equal(gw_ship_lag_update(l, 9, t0 + 20000, err, sizeof(err)),
	                 0);
	assert_int_equal(gw_ship_lag_records(l), 0);
	assert_int_equal(gw_ship_lag_ms(l), 0);
	/* The gap this pins: a foreign cursor must not hide our backlog. */
	put_cursor(cpath, "gw-other", 100);
	assert_int_equal(
	    gw_ship_lag_update(l, 10, t0 + 21000, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "gw-other"));
	assert_int_equal(gw_ship_lag_records(l), 10);
	/* Unreadable: the last good cursor (here: nothing) stands. */
	f = fopen(cpath, "w");
	assert_non_null(f);
	fputs("{not json", f);
	fclose(f);
	assert_int_equal(
	    gw_ship_lag_update(l, 10, t0 + 22000, err, sizeof(err)), -1);
	assert_int_equal(gw_ship_lag_records(l), 10);
	/* 10,000 notes, one a second: thinned, the age stays a lower bound
	 * within the ring's resolution. */
	put_cursor(cpath, "gw-t", 10);
	for (i = 11; i <= 10010; i++)
		assert_int_equal(
		    gw_ship_lag_update(l, i, t0 + i * 1000, err, sizeof(err)),
		    0);
	assert_int_equal(gw_ship_lag_records(l), 10000);
	assert_true(gw_ship_lag_ms(l) <= (10010 - 11) * 1000LL);
	assert_true(gw_ship_lag_ms(l) >= (10010 - 11) * 1000LL - 8000);
	gw_ship_lag_free(l);
	/* max_lag_s 0: counts, never refuses. */
	l = gw_ship_lag_new(cpath, NULL, 0);
	assert_int_equal(gw_ship_lag_update(l, 50, t0, err, sizeof(err)), 0);
	assert_int_equal(
	    gw_ship_lag_update(l, 51, t0 + 99000, err, sizeof(err)), 0);
	assert_int_equal(gw_ship_lag_ms(l), 99000);
	assert_int_equal(gw_ship_lag_refusing(l), 0);
	gw_ship_lag_free(l);
	rm_tmp(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(follows_size_rotation),
	    cmocka_unit_test(follows_rename_while_appending),
	    cmocka_unit_test(resumes_from_cursor_and_checks_chain),
	    cmocka_unit_test(waits_for_torn_line_and_stops_at_gap),
	    cmocka_unit_test(parses_and_frames),
	    cmocka_unit_test(lag_watch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
