/*
 * Ship: follows an instance's audit trail for "hssgw audit ship" and keeps
 * its cursor and metrics (ship.h).  The follower holds the file it reads
 * open, so a rotation (a rename by logrotate, or hssgw's own link and
 * unlink) never loses the records still being appended to the old name;
 * when it reaches the end of a file that is no longer the live one, it
 * looks again for the file holding the next seq.  Files are told apart by
 * the seq of their first record, not by their names, so any rotated name
 * (<file>.<UTC time>, logrotate's) works after a restart.  It never
 * writes the trail and never skips a record: a gap or a chain that does
 * not continue stops it where it is, with the reason.  Also the gateway's
 * watch on the cursor (gw_ship_lag_*), which only reads it.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "gw.h"
#include "ship.h"

#define CHUNK      (256 * 1024)
#define LOCATE_MS  200 /* at most this often, a new look at the files */
#define CKPT_MAX   512
#define CURSOR_MAX 4096
#define HASH_HEX   GW_AUDIT_HASH_HEX

struct gw_ship_follow {
	char *path, *dir, *base, *ckpt;
	size_t baselen;
	int fd;
	dev_t dev;
	ino_t ino;
	char *buf;
	size_t cap, len, pos;
	off_t boff;     /* file offset of buf[0] */
	long long next; /* 0: the oldest record there is */
	char prev[HASH_HEX + 1];
	int have_prev;
	int64_t last_locate_ms;
	long long head;
};

static int
is_hex64(const char *p)
{
	int i;

	for (i = 0; i < HASH_HEX; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		      (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

/* Digits at *P up to END into *OUT, advancing *P; 0 or -1. */
static int
digits(const char **p, const char *end, long long *out)
{
	long long v = 0;
	const char *s = *p;

	if (s >= end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (LLONG_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*p = s;
	*out = v;
	return 0;
}

static int
lit(const char **p, const char *end, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0)
		return -1;
	*p += n;
	return 0;
}

/* The seq of a record from its first bytes (docs/AUDIT.md's prefix);
 * *AFTER, when not NULL, is where the seq ends. */
static int
parse_seq(const char *line, size_t len, long long *seq, const char **after)
{
	const char *p = line, *end = line + len;
	long long v;

	if (lit(&p, end, "{\"v\":") == -1 || digits(&p, end, &v) == -1 ||
	    lit(&p, end, ",\"seq\":") == -1 || digits(&p, end, seq) == -1)
		return -1;
	if (after != NULL)
		*after = p;
	return 0;
}

int
gw_ship_parse(const char *line, size_t len, long long *seq, char *prev,
              char *hash, int64_t *time_ms)
{
	static const char tail[] = ",\"hash\":\"";
	const char *p = line, *end = line + len, *t;
	size_t tl = sizeof(tail) - 1, scan;
	char when[32];

	if (parse_seq(line, len, seq, &p) == -1 ||
	    lit(&p, end, ",\"prev\":\"") == -1 || end - p < HASH_HEX ||
	    !is_hex64(p))
		return -1;
	memcpy(prev, p, HASH_HEX);
	prev[HASH_HEX] = '\0';
	if (len < tl + HASH_HEX + 2 + 100)
		return -1;
	t = end - (tl + HASH_HEX + 2);
	if (memcmp(t, tail, tl) != 0 || !is_hex64(t + tl) ||
	    memcmp(end - 2, "\"}", 2) != 0)
		return -1;
	memcpy(hash, t + tl, HASH_HEX);
	hash[HASH_HEX] = '\0';
	*time_ms = 0;
	scan = len < 400 ? len : 400;
	for (t = line; t + 9 + 24 <= line + scan; t++)
		if (memcmp(t, ",\"time\":\"", 9) == 0) {
			memcpy(when, t + 9, 24);
			when[24] = '\0';
			if (gw_rfc3339_ms(when, time_ms) == -1)
				*time_ms = 0;
			break;
		}
	return 0;
}

struct gw_ship_follow *
gw_ship_follow_new(const char *path, const struct gw_ship_cursor *cur)
{
	struct gw_ship_follow *f;
	char *d = NULL, *b = NULL;

	f = calloc(1, sizeof(*f));
	d = strdup(path);
	b = strdup(path);
	if (f == NULL || d == NULL || b == NULL)
		goto fail;
	f->fd = -1;
	f->path = strdup(path);
	f->dir = strdup(dirname(d));
	f->base = strdup(basename(b));
	f->ckpt = malloc(strlen(path) + sizeof(".checkpoint"));
	if (f->path == NULL || f->dir == NULL || f->base == NULL ||
	    f->ckpt == NULL)
		goto fail;
	sprintf(f->ckpt, "%s.checkpoint", path);
	f->baselen = strlen(f->base);
	if (cur != NULL && cur->seq > 0) {
		f->next = cur->seq + 1;
		memcpy(f->prev, cur->hash, sizeof(f->prev));
		f->have_prev = 1;
		f->head = cur->seq;
	}
	free(d);
	free(b);
	return f;
fail:
	free(d);
	free(b);
	gw_ship_follow_free(f);
	return NULL;
}

void
gw_ship_follow_free(struct gw_ship_follow *f)
{
	if (f == NULL)
		return;
	if (f->fd != -1)
		close(f->fd);
	free(f->path);
	free(f->dir);
	free(f->base);
	free(f->ckpt);
	free(f->buf);
	free(f);
}

/* A file of the trail by its name: the live one or <base>.<suffix>,
 * minus the checkpoint, temporary and compressed files. */
static int
is_trail_name(const struct gw_ship_follow *f, const char *name)
{
	static const char *const skip[] = {".checkpoint", ".tmp", ".gz",
	                                   ".xz",         ".bz2", ".zst"};
	size_t n = strlen(name), i, sl;

	if (strcmp(name, f->base) == 0)
		return 1;
	if (n <= f->baselen + 1 || strncmp(name, f->base, f->baselen) != 0 ||
	    name[f->baselen] != '.')
		return 0;
	for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
		sl = strlen(skip[i]);
		if (n >= sl && strcmp(name + n - sl, skip[i]) == 0)
			return 0;
	}
	return 1;
}

/* The seq of FD's first record; 0 ok, -1 when it has none. */
static int
first_seq(int fd, long long *seq)
{
	char head[128];
	ssize_t n;

	n = pread(fd, head, sizeof(head), 0);
	if (n <= 0)
		return -1;
	return parse_seq(head, (size_t)n, seq, NULL);
}

/*
 * Finds the file that holds f->next: the one whose first record is the
 * greatest seq not past it (the oldest file when starting from nothing).
 * 1 switched to it, 0 nothing new (none yet, or the file already read),
 * -1 when the next seq can be in no file (a gap).
 */
static int
locate(struct gw_ship_follow *f, char *err, size_t errlen)
{
	char name[PATH_MAX];
	struct dirent *de;
	struct stat sb, best_sb;
	long long s, best = -1, lowest = -1;
	int fd, best_fd = -1;
	DIR *d;

	memset(&best_sb, 0, sizeof(best_sb));
	d = opendir(f->dir);
	if (d == NULL) {
		snprintf(err, errlen, "%s: %s", f->dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_trail_name(f, de->d_name) ||
		    snprintf(name, sizeof(name), "%s/%s", f->dir, de->d_name) >=
		        (int)sizeof(name))
			continue;
		fd = open(name, O_RDONLY | O_CLOEXEC);
		if (fd == -1)
			continue;
		if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) ||
		    first_seq(fd, &s) == -1) {
			close(fd);
			continue;
		}
		if (lowest == -1 || s < lowest)
			lowest = s;
		if ((f->next == 0 && (best == -1 || s < best)) ||
		    (f->next > 0 && s <= f->next && s > best)) {
			if (best_fd != -1)
				close(best_fd);
			best_fd = fd;
			best = s;
			best_sb = sb;
		} else
			close(fd);
	}
	closedir(d);
	if (best_fd == -1) {
		if (lowest > f->next) {
			snprintf(err, errlen,
			         "seq %lld is in no file of %s: the oldest "
			         "record there is seq %lld (deleted before "
			         "it was shipped?)",
			         f->next, f->path, lowest);
			return -1;
		}
		return 0;
	}
	if (f->fd != -1 && best_sb.st_dev == f->dev &&
	    best_sb.st_ino == f->ino) {
		close(best_fd);
		return 0;
	}
	if (f->fd != -1)
		close(f->fd);
	f->fd = best_fd;
	f->dev = best_sb.st_dev;
	f->ino = best_sb.st_ino;
	f->boff = 0;
	f->len = f->pos = 0;
	return 1;
}

/* At the end of the file read: 1 when another file is to be read now,
 * 0 when nothing is there yet, -1 on a gap or an error. */
static int
at_eof(struct gw_ship_follow *f, char *err, size_t errlen)
{
	struct stat sb, live;
	int64_t now = gw_now_ms();
	int r;

	if (fstat(f->fd, &sb) == -1) {
		snprintf(err, errlen, "%s: %s", f->path, strerror(errno));
		return -1;
	}
	/* hssgw cut a torn last line (a crash mid-write): read again from
	 * the last complete record. */
	if ((off_t)sb.st_size < f->boff + (off_t)f->len) {
		if ((off_t)sb.st_size < f->boff) {
			snprintf(err, errlen,
			         "%s: shrank below records already read",
			         f->path);
			return -1;
		}
		f->len = f->pos = 0;
		return 0;
	}
	if (stat(f->path, &live) == 0 && live.st_dev == f->dev &&
	    live.st_ino == f->ino)
		return 0; /* the live file: wait for more */
	/* A look that found nothing new waits LOCATE_MS before the next;
	 * one that moved on does not (a backlog of many rotated files). */
	if (now - f->last_locate_ms < LOCATE_MS)
		return 0;
	r = locate(f, err, errlen);
	if (r == 0)
		f->last_locate_ms = now;
	return r;
}

/* Reads more of the file into the buffer: 1 read some, else at_eof's. */
static int
fill(struct gw_ship_follow *f, char *err, size_t errlen)
{
	ssize_t n;
	size_t want;
	char *nb;

	if (f->pos > 0) {
		memmove(f->buf, f->buf + f->pos, f->len - f->pos);
		f->boff += (off_t)f->pos;
		f->len -= f->pos;
		f->pos = 0;
	}
	if (f->len > GW_SHIP_LINE_MAX) {
		snprintf(err, errlen,
		         "%s: a line at offset %lld is longer than %d bytes",
		         f->path, (long long)f->boff, GW_SHIP_LINE_MAX);
		return -1;
	}
	want = f->len + CHUNK;
	if (f->cap < want) {
		nb = realloc(f->buf, want);
		if (nb == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		f->buf = nb;
		f->cap = want;
	}
	do
		n = pread(f->fd, f->buf + f->len, f->cap - f->len,
		          f->boff + (off_t)f->len);
	while (n == -1 && errno == EINTR);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", f->path, strerror(errno));
		return -1;
	}
	if (n > 0) {
		f->len += (size_t)n;
		return 1;
	}
	return at_eof(f, err, errlen);
}

/* Checks the complete line at buf[pos..nl): 1 the next record, 0 an
 * earlier one (skipped), -1 a problem. */
static int
take(struct gw_ship_follow *f, size_t nl, struct gw_ship_rec *rec, char *err,
     size_t errlen)
{
	const char *line = f->buf + f->pos;
	size_t len = nl - f->pos;
	char prev[HASH_HEX + 1];
	long long seq;

	if (gw_ship_parse(line, len, &seq, prev, rec->hash, &rec->time_ms) ==
	    -1) {
		snprintf(err, errlen, "%s: offset %lld: not a record", f->path,
		         (long long)f->boff + (long long)f->pos);
		return -1;
	}
	if (f->next == 0)
		f->next = seq;
	if (seq < f->next) {
		/* Passing the acknowledged record itself: it must be the one
		 * the collector has, or the trail was rewritten or replaced. */
		if (seq == f->next - 1 && f->have_prev &&
		    strcmp(rec->hash, f->prev) != 0) {
			snprintf(err, errlen,
			         "%s: seq %lld is not the record the collector "
			         "acknowledged (the trail was rewritten)",
			         f->path, seq);
			return -1;
		}
		f->pos = nl + 1;
		return 0;
	}
	if (seq > f->next) {
		snprintf(err, errlen,
		         "%s: seq %lld follows seq %lld: records missing",
		         f->path, seq, f->next - 1);
		return -1;
	}
	if (f->have_prev && strcmp(prev, f->prev) != 0) {
		snprintf(err, errlen,
		         "%s: seq %lld: prev is not the hash of seq %lld as "
		         "shipped (the trail was rewritten)",
		         f->path, seq, seq - 1);
		return -1;
	}
	rec->line = line;
	rec->len = len;
	rec->seq = seq;
	memcpy(f->prev, rec->hash, sizeof(f->prev));
	f->have_prev = 1;
	f->next = seq + 1;
	f->pos = nl + 1;
	if (seq > f->head)
		f->head = seq;
	return 1;
}

int
gw_ship_next(struct gw_ship_follow *f, struct gw_ship_rec *rec, char *err,
             size_t errlen)
{
	const char *nl;
	int r;

	for (;;) {
		if (f->fd == -1) {
			r = locate(f, err, errlen);
			if (r <= 0)
				return r;
		}
		nl = f->len > f->pos
		         ? memchr(f->buf + f->pos, '\n', f->len - f->pos)
		         : NULL;
		if (nl != NULL) {
			r = take(f, (size_t)(nl - f->buf), rec, err, errlen);
			if (r != 0)
				return r;
			continue;
		}
		r = fill(f, err, errlen);
		if (r <= 0)
			return r;
	}
}

long long
gw_ship_head_seq(struct gw_ship_follow *f)
{
	char *text = NULL, e[256];
	size_t len;
	const char *p;
	long long seq;

	if (gw_read_file(f->ckpt, CKPT_MAX, 0, &text, &len, e, sizeof(e)) ==
	    0) {
		p = strstr(text, "\"seq\":");
		if (p != NULL) {
			p += 6;
			if (digits(&p, text + len, &seq) == 0 && seq > f->head)
				f->head = seq;
		}
		free(text);
	}
	return f->head;
}

int
gw_ship_cursor_load(const char *path, struct gw_ship_cursor *cur, char *err,
                    size_t errlen)
{
	struct json_object *o = NULL, *v;
	char *text = NULL, e[512];
	const char *s;
	size_t len;
	int rc = -1;

	memset(cur, 0, sizeof(*cur));
	if (access(path, F_OK) == -1 && errno == ENOENT)
		return 0;
	if (gw_read_file(path, CURSOR_MAX, 0, &text, &len, e, sizeof(e)) ==
	    -1) {
		snprintf(err, errlen, "%s", e);
		return -1;
	}
	o = json_tokener_parse(text);
	if (o == NULL || !json_object_object_get_ex(o, "seq", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    (cur->seq = json_object_get_int64(v)) < 0 ||
	    !json_object_object_get_ex(o, "hash", &v) ||
	    (s = json_object_get_string(v)) == NULL || strlen(s) != HASH_HEX ||
	    !is_hex64(s))
		goto bad;
	memcpy(cur->hash, s, sizeof(cur->hash));
	if (!json_object_object_get_ex(o, "instance", &v) ||
	    (s = json_object_get_string(v)) == NULL ||
	    strlen(s) >= sizeof(cur->instance))
		goto bad;
	memcpy(cur->instance, s, strlen(s) + 1);
	if (json_object_object_get_ex(o, "time", &v) &&
	    json_object_is_type(v, json_type_string))
		(void)gw_rfc3339_ms(json_object_get_string(v), &cur->time_ms);
	rc = 1;
	goto out;
bad:
	snprintf(err, errlen, "%s: not a shipping cursor", path);
out:
	json_object_put(o);
	free(text);
	return rc;
}

/* Replaces PATH with TEXT: a temporary file, fsync, rename, and the
 * directory's fsync so the rename survives a crash. */
static int
replace_file(const char *path, const char *text, size_t n, char *err,
             size_t errlen)
{
	char tmp[PATH_MAX], *d = NULL;
	int fd = -1, dfd = -1, rc = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd == -1 || gw_write_all(fd, text, n) == -1 || fsync(fd) == -1)
		goto out;
	if (close(fd) == -1) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto out;
	d = strdup(path);
	if (d == NULL)
		goto out;
	dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1 || fsync(dfd) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	if (fd != -1)
		close(fd);
	if (dfd != -1)
		close(dfd);
	free(d);
	return rc;
}

int
gw_ship_cursor_save(const char *path, const struct gw_ship_cursor *cur,
                    char *err, size_t errlen)
{
	struct gw_buf b;
	char when[40], now[40];
	int rc = -1;

	gw_buf_init(&b, CURSOR_MAX);
	gw_fmt_time_ms(cur->time_ms, when, sizeof(when));
	gw_fmt_time_ms(gw_now_ms(), now, sizeof(now));
	if (gw_buf_puts(&b, "{\"v\":1,\"instance\":") == -1 ||
	    gw_buf_json_str(&b, cur->instance, strlen(cur->instance)) == -1 ||
	    gw_buf_printf(&b,
	                  ",\"seq\":%lld,\"hash\":\"%s\",\"time\":\"%s\","
	                  "\"acked_at\":\"%s\"}\n",
	                  cur->seq, cur->hash, cur->time_ms ? when : "",
	                  now) == -1) {
		snprintf(err, errlen, "%s: cursor too long", path);
		goto out;
	}
	rc = replace_file(path, b.p, b.len, err, errlen);
out:
	gw_buf_reset(&b);
	return rc;
}

int
gw_ship_metrics_write(const char *path, const char *instance,
                      const struct gw_ship_stats *st, int64_t now_ms, char *err,
                      size_t errlen)
{
	struct gw_buf b;
	double lag = 0;
	int rc = -1;

	(void)instance;
	if (st->oldest_unacked_ms > 0 && now_ms > st->oldest_unacked_ms)
		lag = (double)(now_ms - st->oldest_unacked_ms) / 1000.0;
	gw_buf_init(&b, 8192);
	gw_buf_printf(
	    &b,
	    "# HELP hssgw_audit_ship_lag_seconds age of the oldest record "
	    "the collector has not acknowledged; 0 when caught up\n"
	    "# TYPE hssgw_audit_ship_lag_seconds gauge\n"
	    "hssgw_audit_ship_lag_seconds %.3f\n"
	    "# HELP hssgw_audit_ship_lag_records records written but not "
	    "acknowledged by the collector\n"
	    "# TYPE hssgw_audit_ship_lag_records gauge\n"
	    "hssgw_audit_ship_lag_records %lld\n"
	    "# HELP hssgw_audit_ship_acked_seq seq of the last record the "
	    "collector acknowledged (the cursor)\n"
	    "# TYPE hssgw_audit_ship_acked_seq gauge\n"
	    "hssgw_audit_ship_acked_seq %lld\n"
	    "# HELP hssgw_audit_ship_records_total records acknowledged by "
	    "the collector\n"
	    "# TYPE hssgw_audit_ship_records_total counter\n"
	    "hssgw_audit_ship_records_total %lld\n"
	    "# HELP hssgw_audit_ship_resends_total records sent again after "
	    "an unacknowledged batch\n"
	    "# TYPE hssgw_audit_ship_resends_total counter\n"
	    "hssgw_audit_ship_resends_total %lld\n"
	    "# HELP hssgw_audit_ship_failures_total batches the collector did "
	    "not acknowledge\n"
	    "# TYPE hssgw_audit_ship_failures_total counter\n"
	    "hssgw_audit_ship_failures_total %lld\n"
	    "# HELP hssgw_audit_ship_blocked 1 while the trail cannot be "
	    "followed (a gap, a rewritten record)\n"
	    "# TYPE hssgw_audit_ship_blocked gauge\n"
	    "hssgw_audit_ship_blocked %d\n"
	    "# HELP hssgw_audit_ship_updated_timestamp_seconds when the "
	    "shipper last wrote this file\n"
	    "# TYPE hssgw_audit_ship_updated_timestamp_seconds gauge\n"
	    "hssgw_audit_ship_updated_timestamp_seconds %.3f\n",
	    lag,
	    st->head_seq > st->acked_seq ? st->head_seq - st->acked_seq : 0,
	    st->acked_seq, st->shipped, st->resends, st->failures, st->blocked,
	    (double)now_ms / 1000.0);
	if (b.overflow || b.p == NULL)
		snprintf(err, errlen, "%s: metrics too long", path);
	else
		rc = replace_file(path, b.p, b.len, err, errlen);
	gw_buf_reset(&b);
	return rc;
}

int
gw_ship_frame(struct gw_buf *out, const char *instance, int64_t now_ms,
              const char *line, size_t len)
{
	char when[40];

	gw_fmt_time_ms(now_ms, when, sizeof(when));
	/* RFC 5424 section 6: PRI VERSION SP TIMESTAMP SP HOSTNAME SP
	 * APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA SP MSG; PRI 86 is
	 * authpriv (10) * 8 + info (6), where syslog(3) puts the trail. */
	if (gw_buf_printf(out, "<86>1 %s %s hssgw - audit - ", when,
	                  instance) == -1 ||
	    gw_buf_add(out, line, len) == -1)
		return -1;
	return 0;
}

/*
 * The watch: (seq[i], t[i]) oldest first, "records up to seq[i] were
 * durable by t[i]", one entry per update that saw the trail grow.  The
 * oldest record past the cursor was durable by the first entry past it,
 * so its age is at least now minus that entry's time: a lower bound,
 * never an overstatement.  Full, the ring keeps every other entry (each
 * pair's later one, which keeps the statement true), halving resolution
 * instead of losing the oldest.
 */
#define LAG_RING 4096

struct gw_ship_lag {
	char *cursor_file;
	char *instance;
	long long max_lag_ms;
	/* The updating thread's alone. */
	long long seq[LAG_RING];
	int64_t t[LAG_RING];
	size_t head, n;
	long long top, acked;
	/* Read by any thread. */
	_Atomic long long lag_ms, lag_records;
	atomic_int refusing;
};

struct gw_ship_lag *
gw_ship_lag_new(const char *cursor_file, const char *instance,
                long long max_lag_s)
{
	struct gw_ship_lag *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->cursor_file = strdup(cursor_file);
	l->instance = instance != NULL ? strdup(instance) : NULL;
	if (l->cursor_file == NULL ||
	    (instance != NULL && l->instance == NULL)) {
		gw_ship_lag_free(l);
		return NULL;
	}
	l->max_lag_ms = max_lag_s * 1000;
	return l;
}

void
gw_ship_lag_free(struct gw_ship_lag *l)
{
	if (l == NULL)
		return;
	free(l->cursor_file);
	free(l->instance);
	free(l);
}

#define AT(l, i) (((l)->head + (i)) % LAG_RING)

/* Appends (seq, t), thinning a full ring first. */
static void
lag_push(struct gw_ship_lag *l, long long seq, int64_t t)
{
	size_t k;

	if (l->n == LAG_RING) {
		for (k = 0; k < LAG_RING / 2; k++) {
			l->seq[AT(l, k)] = l->seq[AT(l, 2 * k + 1)];
			l->t[AT(l, k)] = l->t[AT(l, 2 * k + 1)];
		}
		l->n = LAG_RING / 2;
	}
	l->seq[AT(l, l->n)] = seq;
	l->t[AT(l, l->n)] = t;
	l->n++;
	l->top = seq;
}

int
gw_ship_lag_update(struct gw_ship_lag *l, long long durable, int64_t now_ms,
                   char *err, size_t errlen)
{
	struct gw_ship_cursor cur;
	long long lag = 0, records = 0;
	int got, rc = 0;

	got = gw_ship_cursor_load(l->cursor_file, &cur, err, errlen);
	if (got == 0)
		l->acked = 0; /* nothing acknowledged yet */
	else if (got == 1 && l->instance != NULL &&
	         strcmp(cur.instance, l->instance) != 0) {
		snprintf(err, errlen,
		         "%s: the cursor of instance %s, not of this one (%s)",
		         l->cursor_file, cur.instance, l->instance);
		l->acked = 0;
		rc = -1;
	} else if (got == 1)
		l->acked = cur.seq;
	else
		rc = -1; /* unreadable: the last good one stands */
	if (durable > l->top)
		lag_push(l, durable, now_ms);
	while (l->n > 0 && l->seq[l->head] <= l->acked) {
		l->head = (l->head + 1) % LAG_RING;
		l->n--;
	}
	if (durable > l->acked) {
		records = durable - l->acked;
		if (l->n > 0 && now_ms > l->t[l->head])
			lag = now_ms - l->t[l->head];
	}
	atomic_store_explicit(&l->lag_ms, lag, memory_order_relaxed);
	atomic_store_explicit(&l->lag_records, records, memory_order_relaxed);
	atomic_store_explicit(&l->refusing,
	                      l->max_lag_ms > 0 && lag > l->max_lag_ms,
	                      memory_order_relaxed);
	return rc;
}

int
gw_ship_lag_refusing(const struct gw_ship_lag *l)
{
	return l != NULL &&
	       atomic_load_explicit(&l->refusing, memory_order_relaxed);
}

long long
gw_ship_lag_ms(const struct gw_ship_lag *l)
{
	return l != NULL
	           ? atomic_load_explicit(&l->lag_ms, memory_order_relaxed)
	           : 0;
}

long long
gw_ship_lag_records(const struct gw_ship_lag *l)
{
	return l != NULL
	           ? atomic_load_explicit(&l->lag_records, memory_order_relaxed)
	           : 0;
}
