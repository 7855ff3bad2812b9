/*
 * Audit trail writer.  A record's content is formatted outside any lock;
 * under the lock it gets the next sequence number and the previous
 * record's hash, is hashed (SHA-256 over the line without its "hash"
 * member, see docs/AUDIT.md) and joins the pending batch.  Group commit:
 * the first emitter to find no writer becomes the leader, writes the whole
 * batch with write(2), fdatasyncs it, wakes the followers whose records
 * the batch held, rewrites the checkpoint (at most once a second) and
 * hands the leader's role to the first follower whose record came too
 * late for the batch.  Followers sleep on their own semaphore, not on
 * the lock, so a commit wakes each of them once, with no stampede back
 * into the mutex (struct waiter).  Any failure
 * marks the trail broken (fail closed); the next emit or readiness check
 * after GW_AUDIT_HEAL_MS reopens it and writes a "summary" record saying
 * so, and the trail is ready again once that record is on disk.  Every
 * string is copied capped and as valid UTF-8 (put_capped, audit_format.c).
 * Anonymous records beyond a byte rate are counted, per client address and
 * answer, into a summary record per interval instead of written.  Never
 * receives a secret: the upstream request is printed redacted.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit.h"
#include "audit_int.h"
#include "auditq.h"

#define AUDIT_MAX_RECORD  (256 * 1024)
#define AUDIT_PENDING_MAX (16 * 1024 * 1024)
/* Anonymous summaries: table size, defaults (docs/AUDIT.md). */
#define ANON_SLOTS            64
#define ANON_DEFAULT_PER_HOUR (10LL * 1024 * 1024)
#define ANON_DEFAULT_INTERVAL 60000
#define ANON_MIN_BURST        (16 * 1024) /* one big anonymous record */
/*
 * The checkpoint is rewritten at most this often (and at rotation and
 * close; gw_audit_tick catches up an idle trail): its temporary file,
 * fsync and rename cost more than the records they follow, so once per
 * record would cap the trail at a few thousand records a second.
 */
#define CKPT_MAX_LAG_MS   1000
#define AUDIT_SPARE_MAX   (1024 * 1024) /* batch buffer kept for reuse */
#define AUDIT_SUMMARY_MAX (32 * 1024)   /* ANON_SLOTS entries, capped */
#define CHAIN_OVERHEAD    200           /* v, seq, prev and hash members */
#define AUDIT_GENESIS                                                          \
	"0000000000000000000000000000000000000000000000000000000000000000"

/*
 * An emitter waiting for its record (on its own stack, in the trail's
 * list in seq order until a writer takes it off and posts sem).
 */
enum waiter_state { W_WAIT, W_DONE, W_FAIL, W_LEAD };

struct waiter {
	struct waiter *next;
	long long seq;
	enum waiter_state state;
	sem_t sem;
};

/* Anonymous answers counted instead of written, by address and answer. */
struct anon_slot {
	char addr[CAP_ADDR + 1];
	char code[24];
	int status;
	long long count;
};

struct gw_audit {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *path;
	char *ckpt; /* <path>.checkpoint */
	int fd;
	int regular;    /* checkpoints and rotation only for regular files */
	long long size; /* bytes in the current file, for rotation */
	struct gw_audit_opts opts;
	char *instance; /* opts.instance, owned */
	int healthy;
	int writer;      /* a thread owns fd: a batch leader or a reopen */
	int want_writer; /* threads waiting on cond for the writer's role */
	struct waiter *wait_head, *wait_tail;
	struct gw_buf spare; /* the last batch's buffer, kept for reuse */
	unsigned epoch; /* bumped on failure: waiters of older epochs fail */
	/* durable_seq when the last epoch ended (gw_audit_wait's tickets) */
	long long broke_durable;
	struct gw_buf pending;
	long long last_seq; /* last assigned */
	char last_hash[GW_AUDIT_HASH_HEX + 1];
	long long durable_seq; /* last on disk */
	long long commits;     /* group commits done */
	char durable_hash[GW_AUDIT_HASH_HEX + 1];
	char reason[256]; /* why the trail broke */
	/* Self-healing (lock): when it broke, what it refused since. */
	int64_t broken_ms, heal_try_us;
	long long refused;
	int64_t ckpt_us;    /* writer only: last checkpoint rewrite */
	long long ckpt_seq; /* writer only: the seq it names */
	/* Anonymous records (lock): a byte bucket and this interval's counts.
	 */
	double anon_tokens;
	int64_t anon_ms, sum_start_ms;
	struct anon_slot slots[ANON_SLOTS];
	size_t nslots;
	long long sum_others, summarised;
	/* Set before the first record: read by the writer unlocked. */
	void (*sync_hook)(void *, int64_t);
	void *sync_arg;
	/*
	 * Signed checkpoints (audit_sign.c), NULL key: none.  sign_seq and
	 * sign_hash (lock): the last "checkpoint" record chained, which the
	 * next one names; sign_dseq and sign_dhash: the last known durable,
	 * for the side file and to fall back to when a batch is lost.
	 */
	EVP_PKEY *sign_key;
	char key_id[AUD_KEY_ID_HEX + 1];
	int64_t sign_every_us, sign_us;
	long long sign_seq, sign_dseq, nsigned;
	char sign_hash[GW_AUDIT_HASH_HEX + 1],
	    sign_dhash[GW_AUDIT_HASH_HEX + 1];
};

/* The last checkpoint record a trail's files show (recover). */
struct sign_head {
	long long seq; /* 0: none */
	char hash[GW_AUDIT_HASH_HEX + 1];
};

/*
 * Builds the chained line in line: header + content without its "{", the
 * SHA-256 of exactly those bytes, then the closing "}" replaced by
 * ,"hash":"<hex>"} and a newline.  Returns 0 or -1.
 */
static int
chain_line(long long seq, const char *prev, const struct gw_buf *content,
           struct gw_buf *line, char hash[GW_AUDIT_HASH_HEX + 1])
{
	unsigned char md[32];
	size_t body;

	if (content->len < 3 || content->p[0] != '{' ||
	    content->p[content->len - 1] != '}')
		return -1;
	if (gw_buf_printf(line, "{\"v\":%d,\"seq\":%lld,\"prev\":\"%s\",",
	                  GW_AUDIT_SCHEMA_VERSION, seq, prev) == -1 ||
	    gw_buf_add(line, content->p + 1, content->len - 1) == -1)
		return -1;
	body = line->len;
	if (gw_sha256(line->p, body, md) == -1)
		return -1;
	aud_hex32(md, hash);
	line->len = body - 1; /* drop "}" */
	if (gw_buf_add(line, ",\"hash\":\"", 9) == -1 ||
	    gw_buf_add(line, hash, GW_AUDIT_HASH_HEX) == -1 ||
	    gw_buf_add(line, "\"}\n", 3) == -1)
		return -1;
	return 0;
}

/*
 * Rewrites <path>.checkpoint via a temporary file and rename(2); with
 * signed checkpoints, it also names the last durable "checkpoint" record
 * (sh, may be NULL), which the next one must chain to after a restart.
 */
static int
write_checkpoint(const struct gw_audit *a, long long seq, const char *hash,
                 const struct sign_head *sh, char *err, size_t errlen)
{
	char tmp[4096], text[320];
	int fd = -1, n, rc = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", a->ckpt) >= (int)sizeof(tmp))
		goto out;
	if (sh != NULL && sh->seq > 0 && sh->seq <= seq)
		n = snprintf(text, sizeof(text),
		             "{\"v\":%d,\"seq\":%lld,\"hash\":\"%s\","
		             "\"signed_seq\":%lld,\"signed_hash\":\"%s\"}\n",
		             GW_AUDIT_SCHEMA_VERSION, seq, hash, sh->seq,
		             sh->hash);
	else
		n = snprintf(text, sizeof(text),
		             "{\"v\":%d,\"seq\":%lld,\"hash\":\"%s\"}\n",
		             GW_AUDIT_SCHEMA_VERSION, seq, hash);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || gw_write_all(fd, text, (size_t)n) == -1 ||
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
	if (*regular && !a->opts.nosync && gw_sync_dir(a->path) == -1) {
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
        char head[GW_AUDIT_HASH_HEX + 1], struct sign_head *sh, char *err,
        size_t errlen)
{
	struct gw_auditq_chain ch;
	long long ckseq = 0, seq = 0;
	char ckhash[65], hash[65], *buf = NULL, *end, *start;
	size_t want;
	ssize_t n;
	off_t from;
	int rc = -1, ck;

	snprintf(hash, sizeof(hash), "%s", AUDIT_GENESIS);
	memset(sh, 0, sizeof(*sh));
	snprintf(sh->hash, sizeof(sh->hash), "%s", AUDIT_GENESIS);
	ck = gw_auditq_checkpoint_read_signed(a->ckpt, &ckseq, ckhash, &sh->seq,
	                                      sh->hash, err, errlen);
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
			/* The chain header ends before "phase"
			 * (audit_format.c). */
			if (ch.seq > sh->seq &&
			    aud_is_checkpoint(start, (size_t)(end - start))) {
				sh->seq = ch.seq;
				memcpy(sh->hash, ch.hash, sizeof(sh->hash));
			}
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

/*
 * Called with the lock held: the chain continues after seq and hash, the
 * chain of signed checkpoints after sh's (NULL: unchanged).
 */
static void
set_head(struct gw_audit *a, long long seq, const char *hash,
         const struct sign_head *sh)
{
	a->last_seq = a->durable_seq = seq;
	memcpy(a->last_hash, hash, sizeof(a->last_hash));
	memcpy(a->durable_hash, hash, sizeof(a->durable_hash));
	if (sh != NULL) {
		a->sign_seq = a->sign_dseq = sh->seq;
		memcpy(a->sign_hash, sh->hash, sizeof(a->sign_hash));
		memcpy(a->sign_dhash, sh->hash, sizeof(a->sign_dhash));
	}
}

/*
 * Called with the lock held: takes every waiter whose record is durable
 * (seq <= upto; upto -1: every waiter) off the list with state st, as a
 * chain, and posts the first; each waiter posts the next one the moment
 * it wakes (await_durable).  Posting them all from here made the last of
 * a batch wait for the others' answers: a woken thread often preempts
 * the one that woke it, which then posts the next only when it runs
 * again.
 */
static void
wake_upto(struct gw_audit *a, long long upto, enum waiter_state st)
{
	struct waiter *first = a->wait_head, *w, *last = NULL;

	for (w = first; w != NULL && (upto < 0 || w->seq <= upto);
	     w = w->next) {
		w->state = st;
		last = w;
	}
	if (last == NULL)
		return;
	a->wait_head = last->next;
	if (a->wait_head == NULL)
		a->wait_tail = NULL;
	last->next = NULL;
	sem_post(&first->sem);
}

/*
 * Called with the lock held by the writer when it is done: the role goes
 * to the first waiter (its record is pending: it leads the next batch),
 * unless a reopen or heal waits for it or nobody waits; then it is free.
 */
static void
release_writer(struct gw_audit *a)
{
	struct waiter *w = a->wait_head;

	if (w != NULL && a->want_writer == 0 && a->healthy) {
		a->wait_head = w->next;
		if (a->wait_head == NULL)
			a->wait_tail = NULL;
		w->next = NULL;    /* not a chain: only w is woken */
		w->state = W_LEAD; /* a->writer stays set: it is w's */
		sem_post(&w->sem);
	} else
		a->writer = 0;
	pthread_cond_broadcast(&a->cond);
}

/* Called with the lock held: the trail is broken until reopened. */
static void
breakdown(struct gw_audit *a, const char *why)
{
	if (a->healthy) {
		a->broken_ms = gw_now_ms();
		a->refused = 0;
	}
	a->healthy = 0;
	a->broke_durable = a->durable_seq;
	a->epoch++;
	/* The first try to heal comes a while after the failure. */
	a->heal_try_us = gw_mono_us();
	snprintf(a->reason, sizeof(a->reason), "%s", why);
	/* Records not on disk are forgotten: their emitters fail. */
	a->last_seq = a->durable_seq;
	memcpy(a->last_hash, a->durable_hash, sizeof(a->last_hash));
	if (a->sign_seq > a->durable_seq) {
		a->sign_seq = a->sign_dseq;
		memcpy(a->sign_hash, a->sign_dhash, sizeof(a->sign_hash));
	}
	gw_buf_reset(&a->pending);
	wake_upto(a, -1, W_FAIL);
	gw_buf_init(&a->pending, AUDIT_PENDING_MAX);
}

/* Called with the lock held: the interval's counts start again. */
static void
anon_reset(struct gw_audit *a)
{
	a->nslots = 0;
	a->sum_others = 0;
}

static long long
anon_per_hour(const struct gw_audit *a)
{
	return a->opts.anon_bytes_per_hour > 0 ? a->opts.anon_bytes_per_hour
	                                       : ANON_DEFAULT_PER_HOUR;
}

static long long
anon_interval(const struct gw_audit *a)
{
	return a->opts.summary_interval_ms > 0 ? a->opts.summary_interval_ms
	                                       : ANON_DEFAULT_INTERVAL;
}

/*
 * Called with the lock held: 1 when an anonymous record of len bytes
 * fits the byte bucket (refilled at anon_bytes_per_hour, holding at most
 * one interval's worth), which it then spends; else 0.
 */
static int
anon_admit(struct gw_audit *a, int64_t now, size_t len)
{
	double rate = (double)anon_per_hour(a) / 3600000.0; /* per ms */
	double burst = rate * (double)anon_interval(a);

	if (burst < ANON_MIN_BURST)
		burst = ANON_MIN_BURST;
	if (now > a->anon_ms) {
		a->anon_tokens += (double)(now - a->anon_ms) * rate;
		a->anon_ms = now;
	}
	if (a->anon_tokens > burst)
		a->anon_tokens = burst;
	if (a->anon_tokens < (double)len)
		return 0;
	a->anon_tokens -= (double)len;
	return 1;
}

/* Called with the lock held: counts r in this interval's summary. */
static void
anon_count(struct gw_audit *a, const struct gw_audit_rec *r, int64_t now)
{
	const char *addr = r->client_addr != NULL ? r->client_addr : "";
	const char *code = r->error_code != NULL ? r->error_code : "";
	struct anon_slot *sl;
	size_t i;

	if (a->nslots == 0 && a->sum_others == 0)
		a->sum_start_ms = now;
	a->summarised++;
	for (i = 0; i < a->nslots; i++) {
		sl = &a->slots[i];
		if (sl->status == r->status && strcmp(sl->addr, addr) == 0 &&
		    strcmp(sl->code, code) == 0) {
			sl->count++;
			return;
		}
	}
	/* A full table, or a key too long for it: counted, not named. */
	if (a->nslots == ANON_SLOTS || strlen(addr) >= sizeof(sl->addr) ||
	    strlen(code) >= sizeof(sl->code)) {
		a->sum_others++;
		return;
	}
	sl = &a->slots[a->nslots++];
	snprintf(sl->addr, sizeof(sl->addr), "%s", addr);
	snprintf(sl->code, sizeof(sl->code), "%s", code);
	sl->status = r->status;
	sl->count = 1;
}

/* Called with the lock held: an interval with counts has ended. */
static int
summary_due(const struct gw_audit *a, int64_t now)
{
	if (a->nslots == 0 && a->sum_others == 0)
		return 0;
	return now < a->sum_start_ms ||
	       now - a->sum_start_ms >= anon_interval(a);
}

/*
 * Called with the lock held: the "summary" member (docs/AUDIT.md): the
 * anonymous answers counted since the interval began, and with failed,
 * when the trail broke, why, and how many records it refused since,
 * appended to b.  Returns 0 or -1.  The counts are not reset here.
 */
static int
summary_json(const struct gw_audit *a, int64_t now, int failed,
             struct gw_buf *b)
{
	const struct anon_slot *sl;
	char when[40];
	size_t i;

	gw_buf_add(b, "{", 1);
	gw_fmt_time_ms(a->nslots > 0 || a->sum_others > 0 ? a->sum_start_ms
	                                                  : now,
	               when, sizeof(when));
	aud_str(b, "since", when);
	gw_fmt_time_ms(now, when, sizeof(when));
	aud_str(b, "until", when);
	aud_key(b, "anonymous");
	gw_buf_add(b, "[", 1);
	for (i = 0; i < a->nslots; i++) {
		sl = &a->slots[i];
		gw_buf_add(b, i > 0 ? ",{" : "{", i > 0 ? 2 : 1);
		aud_cap(b, "client_addr", sl->addr, CAP_ADDR);
		aud_int(b, "status", sl->status, sl->status == 0);
		aud_str(b, "error_code", sl->code[0] ? sl->code : NULL);
		aud_int(b, "count", sl->count, 0);
		gw_buf_add(b, "}", 1);
	}
	gw_buf_add(b, "]", 1);
	aud_int(b, "others", a->sum_others, 0);
	if (failed) {
		aud_key(b, "trail_failure");
		gw_buf_add(b, "{", 1);
		gw_fmt_time_ms(a->broken_ms, when, sizeof(when));
		aud_str(b, "since", when);
		aud_str(b, "reason", a->reason);
		aud_int(b, "refused", a->refused, 0);
		gw_buf_add(b, "}", 1);
	}
	gw_buf_add(b, "}", 1);
	return b->overflow ? -1 : 0;
}

/* A summary record's content (only "summary" and "time" set). */
static int
summary_content(const struct gw_audit *a, int64_t now, const struct gw_buf *sum,
                struct gw_buf *content)
{
	struct gw_audit_rec r;

	if (sum->overflow || sum->p == NULL)
		return -1;
	memset(&r, 0, sizeof(r));
	r.instance = a->instance;
	r.phase = GW_AUDIT_SUMMARY;
	r.time_ms = now;
	r.record_total_num = -1;
	return aud_format(&r, sum->p, content);
}

/*
 * Called with the lock held on a healthy trail: chains this interval's
 * summary into the pending batch and starts a new interval.  Its bytes
 * count against the anonymous bound.  Returns 0 or -1.
 */
static int
chain_summary(struct gw_audit *a, int64_t now)
{
	struct gw_buf sum, content, line;
	char hash[GW_AUDIT_HASH_HEX + 1];
	int rc = -1;

	gw_buf_init(&sum, AUDIT_SUMMARY_MAX);
	gw_buf_init(&content, AUDIT_MAX_RECORD);
	gw_buf_init(&line, AUDIT_MAX_RECORD + 512);
	if (summary_json(a, now, 0, &sum) == -1 ||
	    summary_content(a, now, &sum, &content) == -1 ||
	    chain_line(a->last_seq + 1, a->last_hash, &content, &line, hash) ==
	        -1 ||
	    gw_buf_add(&a->pending, line.p, line.len) == -1)
		goto out;
	a->last_seq++;
	memcpy(a->last_hash, hash, sizeof(hash));
	a->anon_tokens -= (double)line.len;
	anon_reset(a);
	rc = 0;
out:
	gw_buf_reset(&sum);
	gw_buf_reset(&content);
	gw_buf_reset(&line);
	return rc;
}

/*
 * Called with the lock held on a healthy trail: chains a signed
 * "checkpoint" record covering the last record chained (docs/AUDIT.md),
 * unless nothing was chained since the last one.  Returns 0 (also when
 * there was nothing to sign) or -1.
 */
static int
chain_signed(struct gw_audit *a, int64_t now)
{
	struct gw_buf msg, member, content, line;
	struct gw_audit_rec r;
	char hash[GW_AUDIT_HASH_HEX + 1], sig[AUD_SIG_B64 + 1];
	int rc = -1;

	if (a->sign_key == NULL || a->last_seq == 0 ||
	    a->last_seq == a->sign_seq)
		return 0;
	gw_buf_init(&msg, 4096);
	gw_buf_init(&member, 1024);
	gw_buf_init(&content, AUDIT_SUMMARY_MAX);
	gw_buf_init(&line, AUDIT_SUMMARY_MAX + 512);
	memset(&r, 0, sizeof(r));
	r.instance = a->instance;
	r.phase = GW_AUDIT_CHECKPOINT;
	r.time_ms = now;
	r.record_total_num = -1;
	if (aud_sign_canon(a->last_seq, a->last_hash, a->sign_hash, a->instance,
	                   &msg) == -1 ||
	    aud_sign(a->sign_key, &msg, sig) == -1 ||
	    aud_sign_member(a->last_seq, a->last_hash, a->sign_hash, a->key_id,
	                    sig, &member) == -1 ||
	    aud_format(&r, member.p, &content) == -1 ||
	    chain_line(a->last_seq + 1, a->last_hash, &content, &line, hash) ==
	        -1 ||
	    gw_buf_add(&a->pending, line.p, line.len) == -1)
		goto out;
	a->last_seq++;
	memcpy(a->last_hash, hash, sizeof(hash));
	a->sign_seq = a->last_seq;
	memcpy(a->sign_hash, hash, sizeof(hash));
	a->sign_us = gw_mono_us();
	a->nsigned++;
	rc = 0;
out:
	gw_buf_reset(&msg);
	gw_buf_reset(&member);
	gw_buf_reset(&content);
	gw_buf_reset(&line);
	return rc;
}

/*
 * Called with the lock held: the last signed checkpoint known durable,
 * for the side file; sign_dseq follows the batches as they land.
 */
static void
sign_durable(struct gw_audit *a, struct sign_head *sh)
{
	if (a->sign_seq > a->sign_dseq && a->sign_seq <= a->durable_seq) {
		a->sign_dseq = a->sign_seq;
		memcpy(a->sign_dhash, a->sign_hash, sizeof(a->sign_dhash));
	}
	sh->seq = a->sign_key != NULL ? a->sign_dseq : 0;
	memcpy(sh->hash, a->sign_dhash, sizeof(sh->hash));
}

/*
 * Called with the lock held on a broken trail, and at most every
 * GW_AUDIT_HEAL_MS: reopens the file, takes the chain from it (a torn
 * line is cut) and writes a summary record saying when the trail broke,
 * why and how many records it refused.  Ready again only once that record
 * is on disk, so readiness never reports a disk that still refuses
 * writes.  No signal needed: emit and gw_audit_ready call it.
 */
static void
heal(struct gw_audit *a)
{
	struct gw_buf sum, content, line;
	char head[GW_AUDIT_HASH_HEX + 1], hash[GW_AUDIT_HASH_HEX + 1];
	char err[256];
	struct sign_head sh;
	long long size = 0, seq = 0;
	int64_t now = gw_mono_us(), wall;
	int fd = -1, regular = 0, ok = 0;

	if (a->healthy || a->writer ||
	    now - a->heal_try_us < GW_AUDIT_HEAL_MS * 1000LL)
		return;
	a->heal_try_us = now;
	a->writer = 1;
	wall = gw_now_ms();
	gw_buf_init(&sum, AUDIT_SUMMARY_MAX);
	summary_json(a, wall, 1, &sum); /* checked by summary_content */
	pthread_mutex_unlock(&a->lock);
	gw_buf_init(&content, AUDIT_MAX_RECORD);
	gw_buf_init(&line, AUDIT_MAX_RECORD + 512);
	snprintf(err, sizeof(err), "audit summary could not be formatted");
	/* As the only writer on a broken trail: the chain state is ours. */
	seq = a->durable_seq;
	memcpy(head, a->durable_hash, sizeof(head));
	sh.seq = a->sign_dseq;
	memcpy(sh.hash, a->sign_dhash, sizeof(sh.hash));
	fd = open_file(a, &size, &regular, err, sizeof(err));
	if (fd == -1 || (regular && recover(a, fd, &size, &seq, head, &sh, err,
	                                    sizeof(err)) == -1))
		goto out;
	if (summary_content(a, wall, &sum, &content) == -1 ||
	    chain_line(seq + 1, head, &content, &line, hash) == -1)
		goto out;
	if (gw_write_all(fd, line.p, line.len) == -1 ||
	    (!a->opts.nosync && fdatasync(fd) == -1)) {
		snprintf(err, sizeof(err), "audit write: %s", strerror(errno));
		goto out;
	}
	seq++;
	if (regular &&
	    write_checkpoint(a, seq, hash, &sh, err, sizeof(err)) == -1)
		goto out;
	a->ckpt_seq = seq;
	ok = 1;
out:
	gw_buf_reset(&sum);
	pthread_mutex_lock(&a->lock);
	if (ok) {
		close(a->fd);
		a->fd = fd;
		a->size = size + (long long)line.len;
		a->regular = regular;
		set_head(a, seq, hash, &sh);
		a->healthy = 1;
		a->commits++;
		anon_reset(a);
	} else {
		if (fd != -1)
			close(fd);
		snprintf(a->reason, sizeof(a->reason), "%s", err);
	}
	release_writer(a);
	gw_buf_reset(&content);
	gw_buf_reset(&line);
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
	struct gw_buf batch;
	struct sign_head sh;
	long long seq, was = 0;
	char hash[GW_AUDIT_HASH_HEX + 1], err[256];
	int64_t now = 0;
	int ok, rot, ck = 0;

	/*
	 * A batch that will fill the file ends in a signed checkpoint, so
	 * each rotated file ends signed.  No room: the interval's will do.
	 */
	if (a->sign_key != NULL && a->regular && a->opts.rotate_bytes > 0 &&
	    a->size + (long long)a->pending.len >= a->opts.rotate_bytes)
		(void)chain_signed(a, gw_now_ms());
	batch = a->pending;
	seq = a->last_seq;
	memcpy(hash, a->last_hash, sizeof(hash));
	a->pending = a->spare; /* empty, with the last batch's room */
	gw_buf_init(&a->spare, AUDIT_PENDING_MAX);
	a->writer = 1;
	pthread_cond_broadcast(&a->cond); /* room in pending again */
	pthread_mutex_unlock(&a->lock);
	err[0] = '\0';
	ok = gw_write_all(a->fd, batch.p, batch.len) == 0;
	if (ok)
		a->size += (long long)batch.len;
	if (!ok)
		snprintf(err, sizeof(err), "audit write: %s", strerror(errno));
	if (ok && !a->opts.nosync) {
		int64_t t = gw_mono_us();

		if (fdatasync(a->fd) == -1) {
			snprintf(err, sizeof(err), "audit fdatasync: %s",
			         strerror(errno));
			ok = 0;
		} else if (a->sync_hook != NULL)
			a->sync_hook(a->sync_arg, gw_mono_us() - t);
	}
	rot = ok && a->regular && a->opts.rotate_bytes > 0 &&
	      a->size >= a->opts.rotate_bytes;
	pthread_mutex_lock(&a->lock);
	if (ok) {
		/*
		 * The batch is on disk: its emitters go now, not after the
		 * checkpoint, which is rewritten at most every
		 * CKPT_MAX_LAG_MS (always before a rotation).
		 */
		a->commits++;
		a->durable_seq = seq;
		memcpy(a->durable_hash, hash, sizeof(hash));
		wake_upto(a, seq, W_DONE);
		now = gw_mono_us();
		/* A signed checkpoint just landed: the side file names it. */
		was = a->sign_dseq;
		sign_durable(a, &sh);
		ck = a->regular &&
		     (rot || now - a->ckpt_us >= CKPT_MAX_LAG_MS * 1000LL ||
		      sh.seq != was);
	}
	pthread_mutex_unlock(&a->lock);
	if (ck) {
		ok = write_checkpoint(a, seq, hash, &sh, err, sizeof(err)) == 0;
		a->ckpt_us = now;
		a->ckpt_seq = seq;
	}
	if (ok && rot)
		ok = rotate(a, err, sizeof(err)) == 0;
	pthread_mutex_lock(&a->lock);
	if (!ok)
		breakdown(a, err);
	release_writer(a);
	/* Kept for the next batch unless a burst made it big. */
	if (a->spare.p == NULL && batch.cap <= AUDIT_SPARE_MAX) {
		batch.len = 0;
		batch.overflow = 0;
		a->spare = batch;
	} else
		gw_buf_reset(&batch);
}

/*
 * A waiter into the list in seq order (wake_upto stops at the first
 * record not yet durable).  A deferred answer's ticket (gw_audit_wait) can
 * be older than records whose emitters already wait.
 */
static void
enqueue(struct gw_audit *a, struct waiter *w)
{
	struct waiter **pp = &a->wait_head;

	while (*pp != NULL && (*pp)->seq <= w->seq)
		pp = &(*pp)->next;
	w->next = *pp;
	*pp = w;
	if (w->next == NULL)
		a->wait_tail = w;
}

/*
 * Called with the lock held after chaining record my in epoch; returns
 * with the lock released: 0 once the record is on disk, -1 if the trail
 * broke first.  The first emitter to find no writer leads; the others
 * sleep on their own semaphore until a writer says their record is
 * durable (and return without touching the lock again), that the trail
 * broke, or that the leader's role is theirs.
 */
static int
await_durable(struct gw_audit *a, long long my, unsigned epoch)
{
	struct waiter w;
	enum waiter_state st;
	int rc;

	for (;;) {
		if (a->epoch != epoch || a->durable_seq >= my) {
			rc = a->epoch == epoch ? 0 : -1;
			pthread_mutex_unlock(&a->lock);
			return rc;
		}
		if (!a->writer) {
			lead(a);
			continue;
		}
		if (sem_init(&w.sem, 0, 0) == -1) {
			/* Not on Linux; release_writer broadcasts. */
			pthread_cond_wait(&a->cond, &a->lock);
			continue;
		}
		w.seq = my;
		w.state = W_WAIT;
		enqueue(a, &w);
		pthread_mutex_unlock(&a->lock);
		while (sem_wait(&w.sem) == -1 && errno == EINTR)
			;
		st = w.state;
		if (w.next != NULL) /* the rest of wake_upto's chain */
			sem_post(&w.next->sem);
		sem_destroy(&w.sem);
		if (st == W_DONE)
			return 0;
		if (st == W_FAIL)
			return -1;
		pthread_mutex_lock(&a->lock);
		lead(a); /* W_LEAD: the writer's role was handed to us */
	}
}

struct gw_audit *
gw_audit_open_opts(const char *path, const struct gw_audit_opts *opts,
                   char *err, size_t errlen)
{
	struct gw_audit *a = NULL, *ret = NULL;
	char head[GW_AUDIT_HASH_HEX + 1];
	struct sign_head sh;
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
	gw_buf_init(&a->spare, AUDIT_PENDING_MAX);
	if (opts != NULL)
		a->opts = *opts;
	a->instance = gw_strdup(a->opts.instance);
	a->opts.instance = NULL; /* the caller's: a->instance is ours */
	a->opts.signing_key_file = NULL;
	memset(&sh, 0, sizeof(sh));
	snprintf(sh.hash, sizeof(sh.hash), "%s", AUDIT_GENESIS);
	n = strlen(path) + sizeof(".checkpoint");
	a->path = strdup(path);
	a->ckpt = malloc(n);
	if (a->path == NULL || a->ckpt == NULL ||
	    (opts != NULL && opts->instance != NULL && a->instance == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	snprintf(a->ckpt, n, "%s.checkpoint", path);
	if (opts != NULL && opts->signing_key_file != NULL) {
		a->sign_key =
		    aud_sign_key_load(opts->signing_key_file, 1, err, errlen);
		if (a->sign_key == NULL)
			goto out;
		if (aud_sign_key_id(a->sign_key, a->key_id) == -1) {
			snprintf(err, errlen, "%s: not a usable signing key",
			         opts->signing_key_file);
			goto out;
		}
		a->sign_every_us = (opts->signed_checkpoint_interval_s > 0
		                        ? opts->signed_checkpoint_interval_s
		                        : 60) *
		                   1000000LL;
		a->sign_us = gw_mono_us();
	}
	a->fd = open_file(a, &a->size, &a->regular, err, errlen);
	if (a->fd == -1)
		goto out;
	snprintf(head, sizeof(head), "%s", AUDIT_GENESIS);
	if (a->regular &&
	    recover(a, a->fd, &a->size, &seq, head, &sh, err, errlen) == -1)
		goto out;
	set_head(a, seq, head, &sh);
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
	struct sign_head sh;
	char err[256];

	if (a == NULL)
		return;
	/* No emitter is left: this interval's counts and the checkpoint
	 * go to disk now, or a summary would be lost at shutdown. */
	pthread_mutex_lock(&a->lock);
	if (a->healthy && a->fd != -1 && (a->nslots > 0 || a->sum_others > 0))
		(void)chain_summary(a, gw_now_ms());
	/* The trail's last record is signed: nothing follows unsigned. */
	if (a->healthy && a->fd != -1)
		(void)chain_signed(a, gw_now_ms());
	while (a->healthy && a->fd != -1 && a->durable_seq < a->last_seq)
		lead(a);
	sign_durable(a, &sh);
	if (a->healthy && a->fd != -1 && a->regular &&
	    a->ckpt_seq < a->durable_seq)
		(void)write_checkpoint(a, a->durable_seq, a->durable_hash, &sh,
		                       err, sizeof(err));
	pthread_mutex_unlock(&a->lock);
	EVP_PKEY_free(a->sign_key);
	if (a->fd != -1)
		close(a->fd);
	gw_buf_reset(&a->pending);
	gw_buf_reset(&a->spare);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	free(a->path);
	free(a->ckpt);
	free(a->instance);
	free(a);
}

int
gw_audit_ready(struct gw_audit *a)
{
	int ok;

	if (a == NULL)
		return 0;
	pthread_mutex_lock(&a->lock);
	heal(a);
	ok = a->healthy;
	pthread_mutex_unlock(&a->lock);
	return ok;
}

void
gw_audit_tick(struct gw_audit *a)
{
	char hash[GW_AUDIT_HASH_HEX + 1], err[256];
	struct sign_head sh;
	long long seq;
	int64_t now;
	int ok;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	now = gw_now_ms();
	/* An interval's anonymous counts go out though nobody writes. */
	if (a->healthy && summary_due(a, now) && chain_summary(a, now) == 0) {
		if (await_durable(a, a->last_seq, a->epoch) == -1)
			return;
		pthread_mutex_lock(&a->lock);
	}
	/* And a signed checkpoint every interval, when records came. */
	if (a->healthy && a->sign_key != NULL &&
	    gw_mono_us() - a->sign_us >= a->sign_every_us &&
	    a->last_seq != a->sign_seq) {
		if (chain_signed(a, now) == -1)
			breakdown(a, "audit checkpoint could not be signed");
		else if (await_durable(a, a->last_seq, a->epoch) == -1)
			return;
		else
			pthread_mutex_lock(&a->lock);
	}
	if (!a->healthy || !a->regular || a->writer ||
	    a->ckpt_seq >= a->durable_seq ||
	    gw_mono_us() - a->ckpt_us < CKPT_MAX_LAG_MS * 1000LL) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	/* The writer's role keeps rotation and commits off the file. */
	a->writer = 1;
	seq = a->durable_seq;
	memcpy(hash, a->durable_hash, sizeof(hash));
	sign_durable(a, &sh);
	pthread_mutex_unlock(&a->lock);
	ok = write_checkpoint(a, seq, hash, &sh, err, sizeof(err)) == 0;
	pthread_mutex_lock(&a->lock);
	a->ckpt_us = gw_mono_us();
	if (ok)
		a->ckpt_seq = seq;
	if (!ok)
		breakdown(a, err);
	release_writer(a);
	pthread_mutex_unlock(&a->lock);
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
gw_audit_signed(struct gw_audit *a)
{
	long long n;

	pthread_mutex_lock(&a->lock);
	n = a->nsigned;
	pthread_mutex_unlock(&a->lock);
	return n;
}

long long
gw_audit_summarised(struct gw_audit *a)
{
	long long n;

	pthread_mutex_lock(&a->lock);
	n = a->summarised;
	pthread_mutex_unlock(&a->lock);
	return n;
}

void
gw_audit_set_sync_hook(struct gw_audit *a, void (*fn)(void *, int64_t),
                       void *arg)
{
	pthread_mutex_lock(&a->lock);
	a->sync_hook = fn;
	a->sync_arg = arg;
	pthread_mutex_unlock(&a->lock);
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

/*
 * Formats and chains r into the pending batch.  GW_OK with the lock held
 * and *my the seq to wait for (0: nothing to wait for), *written whether
 * r itself was chained (not only counted in a summary); else an error
 * with the lock released.
 */
static enum gw_err
chain_rec(struct gw_audit *a, const struct gw_audit_rec *r, struct gw_buf *line,
          long long *my, int *written, char *err, size_t errlen)
{
	struct gw_buf content;
	struct gw_audit_rec named;
	char hash[GW_AUDIT_HASH_HEX + 1];
	enum gw_err rc = GW_ERR_AUDIT;
	int64_t now;

	*my = 0;
	*written = 0;
	gw_buf_init(&content, AUDIT_MAX_RECORD);
	if (a == NULL) {
		snprintf(err, errlen, "audit trail not open");
		goto out;
	}
	/* The trail's instance name, unless the caller names another. */
	named = *r;
	if (named.instance == NULL)
		named.instance = a->instance;
	if (gw_audit_format(&named, &content) == -1) {
		snprintf(err, errlen, "audit record could not be formatted");
		goto out;
	}
	now = r->time_ms > 0 ? r->time_ms : gw_now_ms();
	/* The line's room is taken now, not under the lock. */
	if (gw_buf_reserve(line, content.len + CHAIN_OVERHEAD) == -1) {
		snprintf(err, errlen, "audit record could not be chained");
		goto out;
	}
	pthread_mutex_lock(&a->lock);
	heal(a);
	while (a->healthy &&
	       a->pending.len + content.len + 2 * AUDIT_SUMMARY_MAX >
	           AUDIT_PENDING_MAX)
		pthread_cond_wait(&a->cond, &a->lock);
	if (!a->healthy) {
		a->refused++;
		snprintf(err, errlen, "audit trail broken: %s", a->reason);
		pthread_mutex_unlock(&a->lock);
		goto out;
	}
	if (summary_due(a, now)) {
		if (chain_summary(a, now) == -1) {
			pthread_mutex_unlock(&a->lock);
			snprintf(err, errlen,
			         "audit summary could not be chained");
			goto out;
		}
		*my = a->last_seq;
	}
	if (r->anonymous && r->phase == GW_AUDIT_FINAL &&
	    !anon_admit(a, now, content.len + CHAIN_OVERHEAD))
		/* Counted, never dropped: the interval's summary says it. */
		anon_count(a, r, now);
	else if (chain_line(a->last_seq + 1, a->last_hash, &content, line,
	                    hash) == -1 ||
	         gw_buf_add(&a->pending, line->p, line->len) == -1) {
		pthread_mutex_unlock(&a->lock);
		snprintf(err, errlen, "audit record could not be chained");
		goto out;
	} else {
		*my = ++a->last_seq;
		memcpy(a->last_hash, hash, sizeof(hash));
		*written = 1;
	}
	rc = GW_OK;
out:
	gw_buf_reset(&content);
	return rc;
}

static void
broken(struct gw_audit *a, char *err, size_t errlen)
{
	pthread_mutex_lock(&a->lock);
	snprintf(err, errlen, "audit trail broken: %s", a->reason);
	pthread_mutex_unlock(&a->lock);
}

enum gw_err
gw_audit_emit(struct gw_audit *a, const struct gw_audit_rec *r, char *err,
              size_t errlen)
{
	struct gw_buf line;
	enum gw_err rc;
	long long my;
	int written;

	gw_buf_init(&line, AUDIT_MAX_RECORD + 512);
	rc = chain_rec(a, r, &line, &my, &written, err, errlen);
	if (rc != GW_OK)
		goto out;
	if (await_durable(a, my, a->epoch) == -1) {
		broken(a, err, errlen);
		rc = GW_ERR_AUDIT;
		goto out;
	}
	if (a->opts.syslog && written) {
		line.p[line.len - 1] = '\0';
		syslog(LOG_AUTHPRIV | LOG_INFO, "%s", line.p);
	}
out:
	gw_buf_reset(&line);
	return rc;
}

int
gw_audit_can_defer(const struct gw_audit *a)
{
	/* The syslog copy is written by the emitter once the record is
	 * durable: such a trail's emitters wait. */
	return a != NULL && !a->opts.syslog;
}

enum gw_err
gw_audit_emit_async(struct gw_audit *a, const struct gw_audit_rec *r,
                    struct gw_audit_ticket *t, char *err, size_t errlen)
{
	struct gw_buf line;
	enum gw_err rc;
	long long my;
	int written;

	memset(t, 0, sizeof(*t));
	if (!gw_audit_can_defer(a))
		return gw_audit_emit(a, r, err, errlen);
	gw_buf_init(&line, AUDIT_MAX_RECORD + 512);
	rc = chain_rec(a, r, &line, &my, &written, err, errlen);
	if (rc == GW_OK) {
		t->epoch = a->epoch;
		t->seq = my;
		pthread_mutex_unlock(&a->lock);
	}
	gw_buf_reset(&line);
	return rc;
}

int
gw_audit_wait(struct gw_audit *a, const struct gw_audit_ticket *t, char *err,
              size_t errlen)
{
	int rc;

	if (t->seq == 0)
		return 0; /* nothing was chained: counted in a summary */
	pthread_mutex_lock(&a->lock);
	if (t->epoch == a->epoch)
		rc = await_durable(a, t->seq, t->epoch);
	else {
		/* The trail broke since: on disk only if it was by then (one
		 * break back; older tickets fail closed). */
		rc = t->epoch + 1 == a->epoch && t->seq <= a->broke_durable
		         ? 0
		         : -1;
		pthread_mutex_unlock(&a->lock);
	}
	if (rc == -1)
		broken(a, err, errlen);
	return rc;
}

enum gw_err
gw_audit_reopen(struct gw_audit *a, char *err, size_t errlen)
{
	char head[GW_AUDIT_HASH_HEX + 1];
	struct sign_head sh;
	long long size = 0, seq = 0, upto;
	int fd, regular = 0, was_healthy, ok, rebuilt = 0;

	if (a == NULL) {
		snprintf(err, errlen, "audit trail not open");
		return GW_ERR_AUDIT;
	}
	pthread_mutex_lock(&a->lock);
	a->want_writer++; /* so the role is freed, not handed on */
	while (a->writer)
		pthread_cond_wait(&a->cond, &a->lock);
	/*
	 * Rotation by logrotate: the moved file (still ours) ends in a
	 * signed checkpoint covering all it holds.  want_writer is still
	 * set, so lead() frees the role rather than handing it on.
	 */
	if (a->healthy && a->sign_key != NULL && a->fd != -1 &&
	    chain_signed(a, gw_now_ms()) == 0) {
		upto = a->last_seq;
		while (a->healthy && a->durable_seq < upto) {
			if (a->writer) /* an emitter led meanwhile */
				pthread_cond_wait(&a->cond, &a->lock);
			else
				lead(a);
		}
		while (a->writer)
			pthread_cond_wait(&a->cond, &a->lock);
	}
	a->want_writer--;
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
		rebuilt =
		    recover(a, fd, &size, &seq, head, &sh, err, errlen) == 0;
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
			set_head(a, seq, head, &sh);
		a->healthy = 1;
	} else if (was_healthy)
		breakdown(a, err);
	release_writer(a);
	pthread_mutex_unlock(&a->lock);
	return ok ? GW_OK : GW_ERR_AUDIT;
}
