/*
 * Audit trail writer.  A record's content is formatted outside any lock;
 * under the lock it gets the next sequence number and the previous
 * record's hash, is hashed (SHA-256 over the line without its "hash"
 * member, see docs/AUDIT.md) and joins the pending batch.  Group commit:
 * the first emitter to find no writer becomes the leader, writes the whole
 * batch with write(2), fdatasyncs it, rewrites the checkpoint atomically
 * and wakes the followers whose records the batch held.  Any failure
 * marks the trail broken (fail closed) until gw_audit_reopen.  Never
 * receives a secret: the upstream request is printed redacted.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "audit.h"
#include "auditq.h"

#define AUDIT_MAX_RECORD  (256 * 1024)
#define AUDIT_PENDING_MAX (16 * 1024 * 1024)
#define AUDIT_GENESIS                                                          \
	"0000000000000000000000000000000000000000000000000000000000000000"

struct gw_audit {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *path;
	char *ckpt; /* <path>.checkpoint */
	int fd;
	int regular;    /* checkpoints and rotation only for regular files */
	long long size; /* bytes in the current file, for rotation */
	struct gw_audit_opts opts;
	int healthy;
	int writer;     /* a thread owns fd: a batch leader or a reopen */
	unsigned epoch; /* bumped on failure: waiters of older epochs fail */
	struct gw_buf pending;
	long long last_seq; /* last assigned */
	char last_hash[GW_AUDIT_HASH_HEX + 1];
	long long durable_seq; /* last on disk */
	long long commits;     /* group commits done */
	char durable_hash[GW_AUDIT_HASH_HEX + 1];
	char reason[256]; /* why the trail broke */
};

static const char *const phasename[GW_AUDIT_PHASE__MAX] = {
    [GW_AUDIT_FINAL] = "final",
    [GW_AUDIT_INTENT] = "intent",
    [GW_AUDIT_OUTCOME] = "outcome",
};

static void
add_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static double
ms(int64_t us)
{
	return (double)us / 1000.0;
}

static struct json_object *
upstream_obj(const struct gw_audit_rec *r, struct gw_buf *rb)
{
	struct json_object *up;

	up = json_object_new_object();
	if (up == NULL)
		return NULL;
	json_object_object_add(up, "request",
	                       gw_upreq_json(r->upreq, rb) == 0
	                           ? json_tokener_parse(rb->p)
	                           : NULL);
	json_object_object_add(
	    up, "status",
	    r->up_status ? json_object_new_int64(r->up_status) : NULL);
	add_str(up, "error_code", r->up_error_code);
	add_str(up, "task_id", r->task_id);
	json_object_object_add(up, "record_total_num",
	                       r->record_total_num >= 0
	                           ? json_object_new_int64(r->record_total_num)
	                           : NULL);
	return up;
}

/* Every deciding statement, in load order (an empty array when none). */
static struct json_object *
statements_json(const struct gw_audit_rec *r)
{
	struct json_object *a, *st;
	size_t i;

	a = json_object_new_array();
	for (i = 0; a != NULL && i < r->nstmts; i++) {
		st = json_object_new_object();
		add_str(st, "file", r->stmt_files[i]);
		add_str(st, "sid", r->stmt_sids[i]);
		json_object_array_add(a, st);
	}
	return a;
}

/* The shadow decision, or NULL when none was evaluated. */
static struct json_object *
shadow_json(const struct gw_audit_rec *r)
{
	struct json_object *o, *st = NULL;

	if (r->shadow_decision == NULL)
		return NULL;
	o = json_object_new_object();
	add_str(o, "decision", r->shadow_decision);
	if (r->shadow_stmt_file != NULL) {
		st = json_object_new_object();
		add_str(st, "file", r->shadow_stmt_file);
		add_str(st, "sid", r->shadow_stmt_sid);
	}
	json_object_object_add(o, "statement", st);
	add_str(o, "policy_revision", r->shadow_revision);
	return o;
}

int
gw_audit_format(const struct gw_audit_rec *r, struct gw_buf *buf)
{
	struct json_object *o = NULL, *lat = NULL, *st = NULL, *g = NULL;
	struct gw_buf rb;
	const char *s;
	char when[40];
	size_t i;
	int rc = -1;

	gw_buf_init(&rb, AUDIT_MAX_RECORD);
	if ((unsigned)r->phase >= GW_AUDIT_PHASE__MAX)
		goto out;
	o = json_object_new_object();
	lat = json_object_new_object();
	if (o == NULL || lat == NULL)
		goto out;
	/* "phase" first: the chain header is spliced in before it. */
	add_str(o, "phase", phasename[r->phase]);
	gw_fmt_time_ms(r->time_ms, when, sizeof(when));
	add_str(o, "time", when);
	add_str(o, "request_id", r->request_id);
	add_str(o, "client_addr", r->client_addr);
	add_str(o, "method", r->method);
	add_str(o, "path", r->path);
	add_str(o, "subject", r->subject);
	add_str(o, "issuer", r->issuer);
	add_str(o, "jti", r->jti);
	add_str(o, "token_fp", r->token_fp);
	if (r->groups != NULL) {
		g = json_object_new_array();
		for (i = 0; g != NULL && i < r->ngroups; i++)
			json_object_array_add(
			    g, json_object_new_string(r->groups[i]));
	}
	json_object_object_add(o, "groups", g);
	add_str(o, "action", r->action);
	add_str(o, "resource", r->resource);
	add_str(o, "project", r->project);
	add_str(o, "decision", r->decision);
	if (r->stmt_file != NULL) {
		st = json_object_new_object();
		add_str(st, "file", r->stmt_file);
		add_str(st, "sid", r->stmt_sid);
	}
	json_object_object_add(o, "statement", st);
	json_object_object_add(o, "statements", statements_json(r));
	add_str(o, "policy_revision", r->policy_revision);
	json_object_object_add(o, "shadow", shadow_json(r));
	json_object_object_add(
	    o, "status", r->status ? json_object_new_int(r->status) : NULL);
	add_str(o, "error_code", r->error_code);
	add_str(o, "error_field", r->error_field);
	add_str(o, "credentials", r->cred_name);
	add_str(o, "credential_fp", r->cred_fp);
	if (r->coalesced)
		json_object_object_add(o, "coalesced",
		                       json_object_new_boolean(1));
	if (r->cached)
		json_object_object_add(o, "cached", json_object_new_boolean(1));
	if (r->task_subject != NULL) {
		add_str(o, "task_issuer", r->task_issuer);
		add_str(o, "task_subject", r->task_subject);
	}
	json_object_object_add(o, "upstream",
	                       r->upreq != NULL ? upstream_obj(r, &rb) : NULL);
	json_object_object_add(lat, "auth",
	                       json_object_new_double(ms(r->lat_auth_us)));
	json_object_object_add(lat, "policy",
	                       json_object_new_double(ms(r->lat_policy_us)));
	json_object_object_add(lat, "upstream",
	                       json_object_new_double(ms(r->lat_upstream_us)));
	json_object_object_add(lat, "total",
	                       json_object_new_double(ms(r->lat_total_us)));
	json_object_object_add(o, "latency_ms", lat);
	lat = NULL;
	s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	rc = s == NULL ? -1 : gw_buf_puts(buf, s);
out:
	gw_buf_reset(&rb);
	json_object_put(lat);
	json_object_put(o);
	return rc;
}

static void
hex32(const unsigned char *md, char out[GW_AUDIT_HASH_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[GW_AUDIT_HASH_HEX] = '\0';
}

/*
 * Builds the chained line in line: header + content without its "{", the
 * SHA-256 of exactly those bytes, then the closing "}" replaced by
 * ,"hash":"<hex>"} and a newline.  Returns 0 or -1.
 */
static int
chain_line(long long seq, const char *prev, const struct gw_buf *content,
           struct gw_buf *line, char hash[GW_AUDIT_HASH_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	size_t body;
	int rc = -1;

	if (content->len < 3 || content->p[0] != '{' ||
	    content->p[content->len - 1] != '}')
		goto out;
	if (gw_buf_printf(line, "{\"v\":%d,\"seq\":%lld,\"prev\":\"%s\",",
	                  GW_AUDIT_SCHEMA_VERSION, seq, prev) == -1 ||
	    gw_buf_add(line, content->p + 1, content->len - 1) == -1)
		goto out;
	body = line->len;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, line->p, body) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	hex32(md, hash);
	line->len = body - 1; /* drop "}" */
	if (gw_buf_printf(line, ",\"hash\":\"%s\"}\n", hash) == -1)
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Makes a rename or create in path's directory durable. */
static int
sync_dir(const char *path)
{
	char *copy;
	int fd, rc;

	copy = strdup(path);
	if (copy == NULL)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Rewrites <path>.checkpoint via a temporary file and rename(2). */
static int
write_checkpoint(const struct gw_audit *a, long long seq, const char *hash,
                 char *err, size_t errlen)
{
	char tmp[4096], text[160];
	int fd = -1, n, rc = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", a->ckpt) >= (int)sizeof(tmp))
		goto out;
	n = snprintf(text, sizeof(text),
	             "{\"v\":%d,\"seq\":%lld,\"hash\":\"%s\"}\n",
	             GW_AUDIT_SCHEMA_VERSION, seq, hash);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || write_all(fd, text, (size_t)n) == -1 ||
	    (!a->opts.nosync && fsync(fd) == -1))
		goto out;
	if (close(fd) == -1) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, a->ckpt) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		snprintf(err, errlen, "checkpoint %s: %s", a->ckpt,
		         strerror(errno));
	if (fd != -1)
		close(fd);
	return rc;
}

static int
open_file(const struct gw_audit *a, long long *size, int *regular, char *err,
          size_t errlen)
{
	struct stat sb;
	int fd;

	fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1 || fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "%s: %s", a->path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	*regular = S_ISREG(sb.st_mode);
	*size = (long long)sb.st_size;
	/* A newly created file must survive a crash with its name. */
	if (*regular && !a->opts.nosync && sync_dir(a->path) == -1) {
		snprintf(err, errlen, "%s: directory sync: %s", a->path,
		         strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Finds the chain's head: the last complete record of the file or the
 * checkpoint, whichever is further.  A checkpoint past the file means the
 * file lost its tail; continuing from the checkpoint keeps that gap
 * visible to "audit verify" instead of papering over it.  An unterminated
 * last line was never acknowledged (emit returns after the newline is
 * synced), so it is cut off before appending.
 */
static int
recover(const struct gw_audit *a, int fd, long long *size, long long *headseq,
        char head[GW_AUDIT_HASH_HEX + 1], char *err, size_t errlen)
{
	struct gw_auditq_chain ch;
	long long ckseq = 0, seq = 0;
	char ckhash[65], hash[65], *buf = NULL, *end, *start;
	size_t want;
	ssize_t n;
	off_t from;
	int rc = -1, ck;

	snprintf(hash, sizeof(hash), "%s", AUDIT_GENESIS);
	ck = gw_auditq_checkpoint_read(a->ckpt, &ckseq, ckhash, err, errlen);
	if (ck == -1)
		goto out;
	if (*size > 0) {
		want = *size > GW_AUDITQ_LINE_MAX + 2 ? GW_AUDITQ_LINE_MAX + 2
		                                      : (size_t)*size;
		from = (off_t)(*size - (long long)want);
		buf = malloc(want + 1);
		if (buf == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		n = pread(fd, buf, want, from);
		if (n != (ssize_t)want) {
			snprintf(err, errlen, "%s: cannot read tail", a->path);
			goto out;
		}
		buf[want] = '\0';
		end = buf + want;
		while (end > buf && end[-1] != '\n')
			end--;
		if (end != buf + want) {
			if (end == buf && from > 0) {
				snprintf(err, errlen,
				         "%s: last line longer than a record",
				         a->path);
				goto out;
			}
			if (ftruncate(fd, from + (end - buf)) == -1) {
				snprintf(err, errlen,
				         "%s: cutting torn tail: %s", a->path,
				         strerror(errno));
				goto out;
			}
			*size = (long long)from + (end - buf);
		}
		if (end > buf) {
			end--; /* the newline */
			start = end;
			while (start > buf && start[-1] != '\n')
				start--;
			if ((start == buf && from > 0) ||
			    gw_auditq_chain_parse(start, (size_t)(end - start),
			                          &ch) == -1 ||
			    !ch.hash_ok) {
				snprintf(err, errlen,
				         "%s: last record unreadable; run "
				         "\"hssgw audit verify\" and move the "
				         "file aside",
				         a->path);
				goto out;
			}
			seq = ch.seq;
			memcpy(hash, ch.hash, sizeof(hash));
		}
	}
	if (ck == 1 && ckseq > seq) {
		seq = ckseq;
		memcpy(hash, ckhash, sizeof(hash));
	}
	*headseq = seq;
	memcpy(head, hash, sizeof(hash));
	rc = 0;
out:
	free(buf);
	return rc;
}

/* Called with the lock held: the chain continues after seq and hash. */
static void
set_head(struct gw_audit *a, long long seq, const char *hash)
{
	a->last_seq = a->durable_seq = seq;
	memcpy(a->last_hash, hash, sizeof(a->last_hash));
	memcpy(a->durable_hash, hash, sizeof(a->durable_hash));
}

/* Called with the lock held: the trail is broken until reopened. */
static void
breakdown(struct gw_audit *a, const char *why)
{
	a->healthy = 0;
	a->epoch++;
	snprintf(a->reason, sizeof(a->reason), "%s", why);
	/* Records not on disk are forgotten: their emitters fail. */
	a->last_seq = a->durable_seq;
	memcpy(a->last_hash, a->durable_hash, sizeof(a->last_hash));
	gw_buf_reset(&a->pending);
	gw_buf_init(&a->pending, AUDIT_PENDING_MAX);
}

/* Renames the full file to <path>.<UTC time> and starts a new one. */
static int
rotate(struct gw_audit *a, char *err, size_t errlen)
{
	char name[4096], stamp[32];
	struct tm tm;
	int64_t now = gw_now_ms();
	time_t secs = (time_t)(now / 1000);
	long long size;
	int fd, regular, i;

	if (gmtime_r(&secs, &tm) == NULL)
		return -1;
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	/* link(2) never replaces an existing file, unlike rename(2). */
	for (i = 0; i < 100; i++) {
		if (snprintf(name, sizeof(name),
		             i ? "%s.%s.%03dZ-%d" : "%s.%s.%03dZ", a->path,
		             stamp, (int)(now % 1000), i) >= (int)sizeof(name))
			break;
		if (link(a->path, name) == 0)
			break;
		if (errno != EEXIST)
			break;
	}
	if (i == 100 || unlink(a->path) == -1) {
		snprintf(err, errlen, "rotating %s: %s", a->path,
		         strerror(errno));
		return -1;
	}
	fd = open_file(a, &size, &regular, err, errlen);
	if (fd == -1)
		return -1;
	close(a->fd);
	a->fd = fd;
	a->size = size;
	return 0;
}

/*
 * The leader's turn: called and returns with the lock held, drops it for
 * the I/O.  Only one thread is writer at a time, so fd and size are its.
 */
static void
lead(struct gw_audit *a)
{
	struct gw_buf batch = a->pending;
	long long seq = a->last_seq;
	char hash[GW_AUDIT_HASH_HEX + 1], err[256];
	int ok;

	memcpy(hash, a->last_hash, sizeof(hash));
	gw_buf_init(&a->pending, AUDIT_PENDING_MAX);
	a->writer = 1;
	pthread_mutex_unlock(&a->lock);
	err[0] = '\0';
	ok = write_all(a->fd, batch.p, batch.len) == 0;
	if (ok)
		a->size += (long long)batch.len;
	if (!ok)
		snprintf(err, sizeof(err), "audit write: %s", strerror(errno));
	if (ok && !a->opts.nosync && fdatasync(a->fd) == -1) {
		snprintf(err, sizeof(err), "audit fdatasync: %s",
		         strerror(errno));
		ok = 0;
	}
	if (ok && a->regular)
		ok = write_checkpoint(a, seq, hash, err, sizeof(err)) == 0;
	if (ok && a->regular && a->opts.rotate_bytes > 0 &&
	    a->size >= a->opts.rotate_bytes)
		ok = rotate(a, err, sizeof(err)) == 0;
	pthread_mutex_lock(&a->lock);
	a->writer = 0;
	if (ok) {
		a->commits++;
		a->durable_seq = seq;
		memcpy(a->durable_hash, hash, sizeof(hash));
	} else
		breakdown(a, err);
	pthread_cond_broadcast(&a->cond);
	gw_buf_reset(&batch);
}

struct gw_audit *
gw_audit_open_opts(const char *path, const struct gw_audit_opts *opts,
                   char *err, size_t errlen)
{
	struct gw_audit *a = NULL, *ret = NULL;
	char head[GW_AUDIT_HASH_HEX + 1];
	long long seq = 0;
	size_t n;

	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	gw_buf_init(&a->pending, AUDIT_PENDING_MAX);
	if (opts != NULL)
		a->opts = *opts;
	n = strlen(path) + sizeof(".checkpoint");
	a->path = strdup(path);
	a->ckpt = malloc(n);
	if (a->path == NULL || a->ckpt == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	snprintf(a->ckpt, n, "%s.checkpoint", path);
	a->fd = open_file(a, &a->size, &a->regular, err, errlen);
	if (a->fd == -1)
		goto out;
	snprintf(head, sizeof(head), "%s", AUDIT_GENESIS);
	if (a->regular &&
	    recover(a, a->fd, &a->size, &seq, head, err, errlen) == -1)
		goto out;
	set_head(a, seq, head);
	if (a->opts.syslog)
		openlog("hssgw", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
	a->healthy = 1;
	ret = a;
	a = NULL;
out:
	gw_audit_close(a);
	return ret;
}

struct gw_audit *
gw_audit_open(const char *path, char *err, size_t errlen)
{
	return gw_audit_open_opts(path, NULL, err, errlen);
}

void
gw_audit_close(struct gw_audit *a)
{
	if (a == NULL)
		return;
	if (a->fd != -1)
		close(a->fd);
	gw_buf_reset(&a->pending);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a->path);
	free(a->ckpt);
	free(a);
}

int
gw_audit_ready(struct gw_audit *a)
{
	int ok;

	if (a == NULL)
		return 0;
	pthread_mutex_lock(&a->lock);
	ok = a->healthy;
	pthread_mutex_unlock(&a->lock);
	return ok;
}

long long
gw_audit_durable_seq(struct gw_audit *a)
{
	long long seq;

	pthread_mutex_lock(&a->lock);
	seq = a->durable_seq;
	pthread_mutex_unlock(&a->lock);
	return seq;
}

long long
gw_audit_commits(struct gw_audit *a)
{
	long long n;

	pthread_mutex_lock(&a->lock);
	n = a->commits;
	pthread_mutex_unlock(&a->lock);
	return n;
}

enum gw_err
gw_audit_emit(struct gw_audit *a, const struct gw_audit_rec *r, char *err,
              size_t errlen)
{
	struct gw_buf content, line;
	char hash[GW_AUDIT_HASH_HEX + 1];
	enum gw_err rc = GW_ERR_AUDIT;
	long long my;
	unsigned epoch;

	gw_buf_init(&content, AUDIT_MAX_RECORD);
	gw_buf_init(&line, AUDIT_MAX_RECORD + 512);
	if (a == NULL) {
		snprintf(err, errlen, "audit trail not open");
		goto out;
	}
	if (gw_audit_format(r, &content) == -1) {
		snprintf(err, errlen, "audit record could not be formatted");
		goto out;
	}
	pthread_mutex_lock(&a->lock);
	while (a->healthy &&
	       a->pending.len + content.len + 512 > AUDIT_PENDING_MAX)
		pthread_cond_wait(&a->cond, &a->lock);
	if (!a->healthy) {
		snprintf(err, errlen, "audit trail broken: %s", a->reason);
		pthread_mutex_unlock(&a->lock);
		goto out;
	}
	if (chain_line(a->last_seq + 1, a->last_hash, &content, &line, hash) ==
	        -1 ||
	    gw_buf_add(&a->pending, line.p, line.len) == -1) {
		pthread_mutex_unlock(&a->lock);
		snprintf(err, errlen, "audit record could not be chained");
		goto out;
	}
	my = ++a->last_seq;
	memcpy(a->last_hash, hash, sizeof(hash));
	epoch = a->epoch;
	while (a->epoch == epoch && a->durable_seq < my) {
		if (!a->writer)
			lead(a);
		else
			pthread_cond_wait(&a->cond, &a->lock);
	}
	if (a->epoch != epoch) {
		snprintf(err, errlen, "audit trail broken: %s", a->reason);
		pthread_mutex_unlock(&a->lock);
		goto out;
	}
	pthread_mutex_unlock(&a->lock);
	if (a->opts.syslog) {
		line.p[line.len - 1] = '\0';
		syslog(LOG_AUTHPRIV | LOG_INFO, "%s", line.p);
	}
	rc = GW_OK;
out:
	gw_buf_reset(&content);
	gw_buf_reset(&line);
	return rc;
}

enum gw_err
gw_audit_reopen(struct gw_audit *a, char *err, size_t errlen)
{
	char head[GW_AUDIT_HASH_HEX + 1];
	long long size = 0, seq = 0;
	int fd, regular = 0, was_healthy, ok, rebuilt = 0;

	if (a == NULL) {
		snprintf(err, errlen, "audit trail not open");
		return GW_ERR_AUDIT;
	}
	pthread_mutex_lock(&a->lock);
	while (a->writer)
		pthread_cond_wait(&a->cond, &a->lock);
	a->writer = 1;
	was_healthy = a->healthy;
	pthread_mutex_unlock(&a->lock);
	/*
	 * Between batches and as the only writer: every record already
	 * written is in the old file, the next batch goes to the new one.
	 * A failed trail is not ready, so no emitter touches the chain
	 * state while recover() rebuilds it.
	 */
	fd = open_file(a, &size, &regular, err, errlen);
	ok = fd != -1;
	if (ok && !was_healthy && regular) {
		rebuilt = recover(a, fd, &size, &seq, head, err, errlen) == 0;
		if (!rebuilt) {
			close(fd);
			ok = 0;
		}
	}
	pthread_mutex_lock(&a->lock);
	if (ok) {
		close(a->fd);
		a->fd = fd;
		a->size = size;
		a->regular = regular;
		if (rebuilt)
			set_head(a, seq, head);
		a->healthy = 1;
	} else if (was_healthy)
		breakdown(a, err);
	a->writer = 0;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return ok ? GW_OK : GW_ERR_AUDIT;
}
