/*
 * Reading the audit trail.  Verification walks the files in rotation
 * order twice: the first pass collects every sequence number (so a gap
 * can be told apart from a record moved later), the second checks each
 * record's own hash, that sequence numbers run on by one, and that each
 * record's "prev" is its predecessor's hash; the first failure is
 * reported with its file, line and seq.  The checkpoint then tells
 * whether the tail was cut off.  Query prints the records that match.
 * Read-only: never writes a trail or a checkpoint.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "audit.h"
#include "audit_int.h"
#include "auditq.h"
#include "gw.h"

#define HASH_SUFFIX_LEN (sizeof(",\"hash\":\"") - 1 + 64 + 2)
#define SEQS_MAX        (64LL * 1024 * 1024)
#define GENESIS                                                                \
	"0000000000000000000000000000000000000000000000000000000000000000"

static const char *const problemname[GW_AQ__MAX] = {
    [GW_AQ_OK] = "ok",
    [GW_AQ_IO] = "unreadable",
    [GW_AQ_MALFORMED] = "malformed",
    [GW_AQ_MODIFIED] = "modified",
    [GW_AQ_REMOVED] = "removed",
    [GW_AQ_REORDERED] = "reordered",
    [GW_AQ_INSERTED] = "inserted",
    [GW_AQ_CHAIN] = "chain broken",
    [GW_AQ_TRUNCATED] = "truncated",
    [GW_AQ_CHECKPOINT] = "checkpoint mismatch",
    [GW_AQ_SIGNATURE] = "signature",
    [GW_AQ_DIFFERS] = "differs from the collected copy",
};
_Static_assert(sizeof(problemname) / sizeof(problemname[0]) == GW_AQ__MAX,
               "one name per problem");

const char *
gw_auditq_problem_name(enum gw_auditq_problem p)
{
	if ((unsigned)p >= GW_AQ__MAX)
		return "unknown";
	return problemname[p];
}

static int
is_hex64(const char *s, size_t n)
{
	size_t i;

	if (n != 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
get_hex(struct json_object *o, const char *k, char out[65])
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    !is_hex64(json_object_get_string(v),
	              (size_t)json_object_get_string_len(v)))
		return -1;
	memcpy(out, json_object_get_string(v), 65);
	return 0;
}

static int
get_int(struct json_object *o, const char *k, long long *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	errno = 0;
	*out = (long long)json_object_get_int64(v);
	return errno == 0 && *out >= 0 ? 0 : -1;
}

/* The whole line must be one JSON value, nothing after it. */
static struct json_object *
parse_whole(const char *s, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o;

	if (len > GW_AUDITQ_LINE_MAX || strlen(s) < len)
		return NULL;
	tok = json_tokener_new();
	if (tok == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o != NULL && (size_t)tok->char_offset != len) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

int
gw_auditq_chain_parse(const char *line, size_t len, struct gw_auditq_chain *c)
{
	static const char pre[] = ",\"hash\":\"";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct json_object *o = NULL;
	EVP_MD_CTX *ctx = NULL;
	const char *suf;
	char hex[65];
	int rc = -1, i;

	memset(c, 0, sizeof(*c));
	if (len < HASH_SUFFIX_LEN + 2)
		goto out;
	suf = line + len - HASH_SUFFIX_LEN;
	if (memcmp(suf, pre, sizeof(pre) - 1) != 0 ||
	    memcmp(line + len - 2, "\"}", 2) != 0 ||
	    !is_hex64(suf + sizeof(pre) - 1, 64))
		goto out;
	o = parse_whole(line, len);
	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    get_int(o, "v", &c->v) == -1 || get_int(o, "seq", &c->seq) == -1 ||
	    get_hex(o, "prev", c->prev) == -1 ||
	    get_hex(o, "hash", c->hash) == -1 ||
	    memcmp(c->hash, suf + sizeof(pre) - 1, 64) != 0)
		goto out;
	/* docs/AUDIT.md: SHA-256 of the line without ,"hash":"..." */
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, gw_sha256_md(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, line, (size_t)(suf - line)) != 1 ||
	    EVP_DigestUpdate(ctx, "}", 1) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	/* By hand, not snprintf: this runs twice per record in verify. */
	for (i = 0; i < 32; i++) {
		hex[2 * i] = "0123456789abcdef"[md[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
	}
	hex[64] = '\0';
	c->hash_ok = gw_ct_equal(hex, 64, c->hash, 64);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	json_object_put(o);
	return rc;
}

int
gw_auditq_checkpoint_read(const char *path, long long *seq, char hash[65],
                          char *err, size_t errlen)
{
	char shash[65];
	long long sseq;

	return gw_auditq_checkpoint_read_signed(path, seq, hash, &sseq, shash,
	                                        err, errlen);
}

int
gw_auditq_checkpoint_read_signed(const char *path, long long *seq,
                                 char hash[65], long long *sseq, char shash[65],
                                 char *err, size_t errlen)
{
	struct json_object *o = NULL;
	char *text = NULL, rerr[256];
	size_t len = 0;
	long long v;
	int rc = -1;
	FILE *f;

	f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	fclose(f);
	if (gw_read_file(path, 4096, 0, &text, &len, rerr, sizeof(rerr)) ==
	    -1) {
		snprintf(err, errlen, "%s", rerr);
		goto out;
	}
	while (len > 0 && text[len - 1] == '\n')
		text[--len] = '\0';
	o = parse_whole(text, len);
	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    get_int(o, "v", &v) == -1 || v != GW_AUDIT_SCHEMA_VERSION ||
	    get_int(o, "seq", seq) == -1 || get_hex(o, "hash", hash) == -1) {
		snprintf(err, errlen, "%s: not a checkpoint", path);
		goto out;
	}
	/* Optional: the last signed checkpoint record (audit.c). */
	if (get_int(o, "signed_seq", sseq) == 0) {
		if (get_hex(o, "signed_hash", shash) == -1) {
			snprintf(err, errlen, "%s: not a checkpoint", path);
			goto out;
		}
	} else
		*sseq = 0;
	rc = 1;
out:
	json_object_put(o);
	free(text);
	return rc;
}

/* Reads lines of at most GW_AUDITQ_LINE_MAX bytes. */
struct reader {
	FILE *f;
	char *buf;
	size_t len;
	long long lineno;
};

/* 1: a line (terminated says if it ended in "\n"), 0: end, -1: too long. */
static int
next_line(struct reader *r, int *terminated)
{
	int ch;

	r->len = 0;
	*terminated = 0;
	/* One thread per reader: no stdio lock per byte. */
	while ((ch = getc_unlocked(r->f)) != EOF) {
		if (ch == '\n') {
			*terminated = 1;
			break;
		}
		if (r->len >= GW_AUDITQ_LINE_MAX)
			return -1;
		r->buf[r->len++] = (char)ch;
	}
	r->buf[r->len] = '\0';
	if (ch == EOF && r->len == 0)
		return 0;
	r->lineno++;
	return 1;
}

static int
open_reader(struct reader *r, const char *path)
{
	memset(r, 0, sizeof(*r));
	r->buf = malloc(GW_AUDITQ_LINE_MAX + 1);
	if (r->buf == NULL)
		return -1;
	r->f = fopen(path, "r");
	if (r->f == NULL) {
		free(r->buf);
		r->buf = NULL;
		return -1;
	}
	return 0;
}

static void
close_reader(struct reader *r)
{
	if (r->f != NULL)
		fclose(r->f);
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

static int problem(struct gw_auditq_report *rep, enum gw_auditq_problem p,
                   const char *file, long long line, long long seq,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int
problem(struct gw_auditq_report *rep, enum gw_auditq_problem p,
        const char *file, long long line, long long seq, const char *fmt, ...)
{
	va_list ap;

	rep->problem = p;
	snprintf(rep->file, sizeof(rep->file), "%s", file ? file : "");
	rep->line = line;
	rep->seq = seq;
	va_start(ap, fmt);
	vsnprintf(rep->msg, sizeof(rep->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* How many times seq occurs in the sorted array. */
static size_t
occurrences(const long long *v, size_t n, long long seq)
{
	size_t lo = 0, hi = n, mid, c = 0;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (v[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo + c < n && v[lo + c] == seq)
		c++;
	return c;
}

/* Pass one: every parseable record's seq, sorted. */
static int
collect_seqs(const char *const *files, size_t nfiles, long long **out,
             size_t *nout, struct gw_auditq_report *rep)
{
	struct gw_auditq_chain c;
	struct reader r;
	long long *v = NULL, *nv;
	size_t n = 0, cap = 0, i;
	int term, got;

	for (i = 0; i < nfiles; i++) {
		if (open_reader(&r, files[i]) == -1) {
			free(v);
			return problem(rep, GW_AQ_IO, files[i], 0, 0, "%s: %s",
			               files[i], strerror(errno));
		}
		while ((got = next_line(&r, &term)) == 1) {
			if (gw_auditq_chain_parse(r.buf, r.len, &c) == -1)
				continue;
			if (n == cap) {
				if (cap >= (size_t)SEQS_MAX)
					break;
				cap = cap ? cap * 2 : 1024;
				nv = realloc(v, cap * sizeof(*v));
				if (nv == NULL)
					break;
				v = nv;
			}
			v[n++] = c.seq;
		}
		close_reader(&r);
		if (got == 1) {
			free(v);
			return problem(rep, GW_AQ_IO, files[i], 0, 0,
			               "too many records or out of memory");
		}
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_ll);
	*out = v;
	*nout = n;
	return 0;
}

/* Where pass two is in the chain. */
struct walk {
	const long long *seqs;
	size_t nseqs;
	long long expected; /* -1: before the first record */
	char prev[65];
	long long ckseq;
	char ckhash[65];
	int ckfound; /* 1: the checkpoint's record was seen */
	int ckmatch;
	/*
	 * Only when pass one saw a seq twice: each accepted record's hash
	 * by seq - dupbase, so an exact copy (a collector's resend) is told
	 * from a different record under a seen seq.
	 */
	char (*dup)[65];
	long long dupbase, ndup;
	/* verify --pubkey: the key, the last checkpoint record's hash. */
	EVP_PKEY *pub;
	char sighash[65];
};

static int
check_record(struct walk *w, const struct gw_auditq_chain *c, const char *file,
             long long line, struct gw_auditq_report *rep)
{
	long long s = c->seq;

	if (c->v != GW_AUDIT_SCHEMA_VERSION)
		return problem(rep, GW_AQ_MALFORMED, file, line, s,
		               "unsupported schema version %lld", c->v);
	if (!c->hash_ok)
		return problem(rep, GW_AQ_MODIFIED, file, line, s,
		               "record seq %lld was modified: its hash does "
		               "not match its contents",
		               s);
	if (w->expected == -1) {
		if (s == 1 && strcmp(c->prev, GENESIS) != 0)
			return problem(rep, GW_AQ_CHAIN, file, line, s,
			               "seq 1 does not start the chain");
		rep->first_seq = s;
	} else if (s < w->expected) {
		if (w->dup != NULL && s >= w->dupbase &&
		    s - w->dupbase < w->ndup && w->dup[s - w->dupbase][0]) {
			if (strcmp(w->dup[s - w->dupbase], c->hash) != 0)
				return problem(rep, GW_AQ_INSERTED, file, line,
				               s,
				               "seq %lld appears again as a "
				               "different record",
				               s);
			rep->duplicates++;
			return 1; /* the same record again: adds nothing */
		}
		if (occurrences(w->seqs, w->nseqs, s) > 1)
			return problem(rep, GW_AQ_INSERTED, file, line, s,
			               "seq %lld appears more than once: a "
			               "record was inserted",
			               s);
		return problem(rep, GW_AQ_REORDERED, file, line, s,
		               "seq %lld found where seq %lld belongs: "
		               "records were reordered",
		               s, w->expected);
	} else if (s > w->expected) {
		if (occurrences(w->seqs, w->nseqs, w->expected) > 0)
			return problem(rep, GW_AQ_REORDERED, file, line, s,
			               "seq %lld found where seq %lld belongs: "
			               "records were reordered",
			               s, w->expected);
		return problem(rep, GW_AQ_REMOVED, file, line, s,
		               "seq %lld to %lld missing before this record: "
		               "records were removed",
		               w->expected, s - 1);
	} else if (strcmp(c->prev, w->prev) != 0)
		return problem(rep, GW_AQ_CHAIN, file, line, s,
		               "seq %lld does not chain to the record before "
		               "it: that record was rewritten or inserted",
		               s);
	if (s == w->ckseq) {
		w->ckfound = 1;
		w->ckmatch = strcmp(c->hash, w->ckhash) == 0;
	}
	if (w->dup != NULL && s >= w->dupbase && s - w->dupbase < w->ndup)
		memcpy(w->dup[s - w->dupbase], c->hash, 65);
	w->expected = s + 1;
	memcpy(w->prev, c->hash, sizeof(w->prev));
	rep->last_seq = s;
	rep->records++;
	return 0;
}

static const char *
member_str(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/*
 * A "checkpoint" record (already chained in): it covers the record just
 * before it, names the previous checkpoint record's hash (the genesis
 * value for a trail's first) and its signature verifies with the key.
 */
static int
check_signed(struct walk *w, const char *line, size_t len,
             const struct gw_auditq_chain *c, const char *file,
             long long lineno, struct gw_auditq_report *rep)
{
	struct json_object *o = NULL, *ck = NULL;
	struct gw_buf msg;
	char hash[65], prev[65];
	const char *sig, *alg;
	long long cseq = -1;
	int rc = -1;

	gw_buf_init(&msg, 4096);
	o = parse_whole(line, len);
	if (o == NULL || !json_object_object_get_ex(o, "checkpoint", &ck) ||
	    !json_object_is_type(ck, json_type_object) ||
	    get_int(ck, "seq", &cseq) == -1 ||
	    get_hex(ck, "hash", hash) == -1 ||
	    get_hex(ck, "prev_checkpoint", prev) == -1) {
		problem(rep, GW_AQ_SIGNATURE, file, lineno, c->seq,
		        "checkpoint record seq %lld is malformed", c->seq);
		goto out;
	}
	sig = member_str(ck, "sig");
	alg = member_str(ck, "alg");
	if (cseq != c->seq - 1 || strcmp(hash, c->prev) != 0) {
		problem(rep, GW_AQ_SIGNATURE, file, lineno, c->seq,
		        "checkpoint record seq %lld does not cover the record "
		        "before it",
		        c->seq);
		goto out;
	}
	/* The first one given: the trail's first, or one we cannot see. */
	if ((rep->signed_checkpoints > 0 || rep->first_seq == 1) &&
	    strcmp(prev, w->sighash) != 0) {
		problem(rep, GW_AQ_SIGNATURE, file, lineno, c->seq,
		        "checkpoint record seq %lld does not chain to the "
		        "signed checkpoint before it (seq %lld): a checkpoint "
		        "record was removed or rewritten",
		        c->seq, rep->last_signed_seq);
		goto out;
	}
	if (sig == NULL || alg == NULL || strcmp(alg, "ed25519") != 0 ||
	    aud_sign_canon(cseq, hash, prev, member_str(o, "instance"), &msg) ==
	        -1 ||
	    !aud_sign_check(w->pub, &msg, sig)) {
		problem(rep, GW_AQ_SIGNATURE, file, lineno, c->seq,
		        "checkpoint record seq %lld: the signature does not "
		        "verify with this public key (changed, or another "
		        "key)",
		        c->seq);
		goto out;
	}
	memcpy(w->sighash, c->hash, sizeof(w->sighash));
	rep->signed_checkpoints++;
	rep->last_signed_seq = c->seq;
	rc = 0;
out:
	gw_buf_reset(&msg);
	json_object_put(o);
	return rc;
}

static int
walk_files(struct walk *w, const char *const *files, size_t nfiles,
           struct gw_auditq_report *rep)
{
	struct gw_auditq_chain c;
	struct reader r;
	size_t i;
	int term, got, rc = 0;

	for (i = 0; i < nfiles && rc == 0; i++) {
		if (open_reader(&r, files[i]) == -1)
			return problem(rep, GW_AQ_IO, files[i], 0, 0, "%s: %s",
			               files[i], strerror(errno));
		while (rc == 0 && (got = next_line(&r, &term)) != 0) {
			if (got == -1) {
				rc = problem(rep, GW_AQ_MALFORMED, files[i],
				             r.lineno + 1, 0,
				             "line longer than a record");
				break;
			}
			/*
			 * A crash mid-write leaves an unterminated last
			 * line that was never acknowledged: not a record.
			 */
			if (!term && i == nfiles - 1) {
				rep->torn_tail = 1;
				break;
			}
			if (gw_auditq_chain_parse(r.buf, r.len, &c) == -1) {
				rc = problem(rep, GW_AQ_MALFORMED, files[i],
				             r.lineno, 0,
				             "line %lld is not an "
				             "audit record",
				             r.lineno);
				break;
			}
			rc = check_record(w, &c, files[i], r.lineno, rep);
			if (rc == 1)
				rc = 0; /* an exact copy, counted */
			else if (rc == 0 && w->pub != NULL &&
			         aud_is_checkpoint(r.buf, r.len))
				rc = check_signed(w, r.buf, r.len, &c, files[i],
				                  r.lineno, rep);
		}
		close_reader(&r);
	}
	return rc;
}

/*
 * Pass one found a seq twice: room for each seq's hash, so pass two can
 * tell a resend from a forgery.  Not when the seqs span far more than the
 * records (a gap, reported anyway) or memory is short: then a repeated
 * seq is "inserted", as without duplicates.
 */
static void
dup_table(struct walk *w)
{
	size_t i;

	for (i = 1; i < w->nseqs && w->seqs[i] != w->seqs[i - 1]; i++)
		continue;
	if (i >= w->nseqs)
		return;
	w->dupbase = w->seqs[0];
	w->ndup = w->seqs[w->nseqs - 1] - w->seqs[0] + 1;
	if (w->ndup > (long long)w->nseqs + 1024)
		return;
	w->dup = calloc((size_t)w->ndup, sizeof(*w->dup));
}

int
gw_auditq_verify(const char *const *files, size_t nfiles,
                 const char *checkpoint, int checkpoint_required,
                 struct gw_auditq_report *rep)
{
	return gw_auditq_verify_signed(files, nfiles, checkpoint,
	                               checkpoint_required, NULL, rep);
}

int
gw_auditq_verify_signed(const char *const *files, size_t nfiles,
                        const char *checkpoint, int checkpoint_required,
                        const char *pubkey, struct gw_auditq_report *rep)
{
	struct walk w;
	long long *seqs = NULL;
	size_t nseqs = 0;
	char err[256];
	int ck = 0, rc = -1;

	memset(rep, 0, sizeof(*rep));
	memset(&w, 0, sizeof(w));
	w.expected = -1;
	w.ckseq = -1;
	snprintf(w.sighash, sizeof(w.sighash), "%s", GENESIS);
	if (pubkey != NULL) {
		w.pub = aud_sign_key_load(pubkey, 0, err, sizeof(err));
		if (w.pub == NULL) {
			problem(rep, GW_AQ_IO, pubkey, 0, 0, "%s", err);
			goto out;
		}
	}
	if (checkpoint != NULL) {
		ck = gw_auditq_checkpoint_read(checkpoint, &w.ckseq, w.ckhash,
		                               err, sizeof(err));
		if (ck == -1 || (ck == 0 && checkpoint_required)) {
			problem(rep, GW_AQ_IO, checkpoint, 0, 0, "%s",
			        ck == -1 ? err : "checkpoint missing");
			goto out;
		}
		if (ck == 0)
			w.ckseq = -1;
	}
	if (collect_seqs(files, nfiles, &seqs, &nseqs, rep) == -1)
		goto out;
	w.seqs = seqs;
	w.nseqs = nseqs;
	dup_table(&w);
	if (walk_files(&w, files, nfiles, rep) == -1)
		goto out;
	if (w.pub != NULL && rep->signed_checkpoints == 0) {
		problem(rep, GW_AQ_SIGNATURE, files[nfiles - 1], 0, 0,
		        "no signed checkpoint record in the files given");
		goto out;
	}
	if (ck == 1) {
		if (w.ckseq > rep->last_seq) {
			problem(
			    rep, GW_AQ_TRUNCATED, checkpoint, 0, w.ckseq,
			    "the checkpoint is at seq %lld but the last "
			    "record is seq %lld: the tail was cut off (or the "
			    "file holding it was not given)",
			    w.ckseq, rep->last_seq);
			goto out;
		}
		/*
		 * A required checkpoint vouches for its record: when that
		 * record is missing from the files given while later ones
		 * are there, the head it covered was cut (or a file left
		 * out), and nothing here can prove the rest is the chain
		 * the checkpoint saw.
		 */
		if (checkpoint_required && w.ckseq > 0 && !w.ckfound) {
			problem(rep, GW_AQ_REMOVED, checkpoint, 0, w.ckseq,
			        "the checkpoint names seq %lld but the first "
			        "record given is seq %lld: records it covers "
			        "were cut from the head (or the file holding "
			        "them was not given)",
			        w.ckseq, rep->first_seq);
			goto out;
		}
		if (w.ckfound && !w.ckmatch) {
			problem(rep, GW_AQ_CHECKPOINT, checkpoint, 0, w.ckseq,
			        "record seq %lld differs from the checkpoint: "
			        "the chain was rewritten",
			        w.ckseq);
			goto out;
		}
		rep->checkpoint_checked = w.ckfound || w.ckseq == 0;
	}
	rc = 0;
out:
	free(seqs);
	free(w.dup);
	EVP_PKEY_free(w.pub);
	return rc;
}

static const char *
str_at(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, k, &v) ||
	    json_object_is_type(v, json_type_null))
		return NULL;
	return json_object_get_string(v);
}

static int
eq(const char *want, const char *have)
{
	return want == NULL || (have != NULL && strcmp(want, have) == 0);
}

static int
matches(struct json_object *o, const struct gw_auditq_filter *f)
{
	struct json_object *up = NULL;
	const char *t;
	int64_t ms;

	json_object_object_get_ex(o, "upstream", &up);
	if (!eq(f->subject, str_at(o, "subject")) ||
	    !eq(f->decision, str_at(o, "decision")) ||
	    !eq(f->project, str_at(o, "project")) ||
	    !eq(f->task_id, str_at(up, "task_id")))
		return 0;
	if (f->has_since || f->has_until) {
		t = str_at(o, "time");
		if (t == NULL || gw_rfc3339_ms(t, &ms) == -1)
			return 0;
		if ((f->has_since && ms < f->since_ms) ||
		    (f->has_until && ms > f->until_ms))
			return 0;
	}
	return 1;
}

static const char *
dash(const char *s)
{
	return s != NULL && *s ? s : "-";
}

static void
table_row(FILE *out, struct json_object *o)
{
	struct json_object *up = NULL;

	json_object_object_get_ex(o, "upstream", &up);
	fprintf(out,
	        "%-24.24s %8s %-7.7s %-20.20s %-16.16s %-13.13s %-10.10s "
	        "%-6s %-24.24s %s\n",
	        dash(str_at(o, "time")), dash(str_at(o, "seq")),
	        dash(str_at(o, "phase")), dash(str_at(o, "request_id")),
	        dash(str_at(o, "subject")), dash(str_at(o, "decision")),
	        dash(str_at(o, "project")), dash(str_at(o, "status")),
	        dash(str_at(up, "task_id")),
	        dash(str_at(up, "record_total_num")));
}

/* One file of a query: its reader and its next matching record. */
struct qsrc {
	struct reader r;
	const char *file;
	struct json_object *o; /* the next match, NULL at end */
	char *line;            /* its bytes, as written */
	char time[40];         /* its "time", RFC 3339: sorts as text */
};

/* Advances src to its next matching record; 0, or -1 on a read error. */
static int
qsrc_next(struct qsrc *q, const struct gw_auditq_filter *f)
{
	struct json_object *o, *t;
	int term, got;

	json_object_put(q->o);
	q->o = NULL;
	free(q->line);
	q->line = NULL;
	while ((got = next_line(&q->r, &term)) != 0) {
		o = got == 1 && term ? parse_whole(q->r.buf, q->r.len) : NULL;
		if (o == NULL || !json_object_is_type(o, json_type_object)) {
			fprintf(stderr, "%s:%lld: not a record, skipped\n",
			        q->file, q->r.lineno);
			json_object_put(o);
			if (got == -1)
				return 0; /* too long: the rest is unread */
			continue;
		}
		if (!matches(o, f)) {
			json_object_put(o);
			continue;
		}
		q->line = strdup(q->r.buf);
		if (q->line == NULL) {
			json_object_put(o);
			return -1;
		}
		q->o = o;
		q->time[0] = '\0';
		if (json_object_object_get_ex(o, "time", &t) &&
		    json_object_is_type(t, json_type_string))
			snprintf(q->time, sizeof(q->time), "%s",
			         json_object_get_string(t));
		return 0;
	}
	return ferror(q->r.f) ? -1 : 0;
}

/*
 * Several instances' trails (docs/SHARED_STATE.md), each in time order:
 * a merge of all files by "time", so the output is one timeline; the
 * earlier file wins a tie.  One record per file in memory.
 */
long long
gw_auditq_query(const char *const *files, size_t nfiles,
                const struct gw_auditq_filter *f, enum gw_auditq_format fmt,
                FILE *out, char *err, size_t errlen)
{
	struct qsrc *q = NULL, *best;
	long long n = -1, printed = 0;
	size_t i;

	if ((unsigned)fmt >= GW_AUDITQ__MAX) {
		snprintf(err, errlen, "unknown format");
		return -1;
	}
	q = calloc(nfiles > 0 ? nfiles : 1, sizeof(*q));
	if (q == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < nfiles; i++) {
		q[i].file = files[i];
		if (open_reader(&q[i].r, files[i]) == -1 ||
		    qsrc_next(&q[i], f) == -1) {
			snprintf(err, errlen, "%s: %s", files[i],
			         strerror(errno));
			goto out;
		}
	}
	if (fmt == GW_AUDITQ_TABLE)
		fprintf(
		    out,
		    "%-24s %8s %-7s %-20s %-16s %-13s %-10s %-6s %-24s %s\n",
		    "TIME", "SEQ", "PHASE", "REQUEST", "SUBJECT", "DECISION",
		    "PROJECT", "STATUS", "TASK", "RECORDS");
	for (;;) {
		best = NULL;
		for (i = 0; i < nfiles; i++)
			if (q[i].o != NULL &&
			    (best == NULL || strcmp(q[i].time, best->time) < 0))
				best = &q[i];
		if (best == NULL)
			break;
		printed++;
		if (fmt == GW_AUDITQ_JSON)
			fprintf(out, "%s\n", best->line);
		else
			table_row(out, best->o);
		if (qsrc_next(best, f) == -1) {
			snprintf(err, errlen, "%s: %s", best->file,
			         strerror(errno));
			goto out;
		}
	}
	n = printed;
out:
	for (i = 0; i < nfiles; i++) {
		json_object_put(q[i].o);
		free(q[i].line);
		if (q[i].r.buf != NULL)
			close_reader(&q[i].r);
	}
	free(q);
	return n;
}

int
gw_auditq_instance_of(const char *path, char *out, size_t cap)
{
	struct json_object *o = NULL, *v;
	struct reader r;
	int term, got, rc = -1;

	out[0] = '\0';
	if (open_reader(&r, path) == -1)
		return -1;
	got = next_line(&r, &term);
	if (got == 1)
		o = parse_whole(r.buf, r.len);
	if (o != NULL && json_object_object_get_ex(o, "instance", &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(out, cap, "%s", json_object_get_string(v));
	rc = 0;
	json_object_put(o);
	close_reader(&r);
	return rc;
}

/* One record by seq and hash, for verify --against. */
struct seqhash {
	long long seq;
	char hash[65];
	const char *file; /* the host's copy: where, for the report */
	long long line;
};

static int
cmp_seqhash(const void *a, const void *b)
{
	const struct seqhash *x = a, *y = b;

	if (x->seq != y->seq)
		return (x->seq > y->seq) - (x->seq < y->seq);
	return strcmp(x->hash, y->hash);
}

/*
 * Every record of files (a torn last line skipped), sorted by seq, exact
 * copies folded into one.  -1 with a problem: unreadable, not a record,
 * or two different records under one seq.
 */
static int
load_seqhash(const char *const *files, size_t nfiles, struct seqhash **out,
             size_t *nout, struct gw_auditq_report *rep)
{
	struct gw_auditq_chain c;
	struct seqhash *v = NULL, *nv;
	struct reader r;
	size_t n = 0, cap = 0, i, j;
	int term, got, rc = -1;

	for (i = 0; i < nfiles; i++) {
		if (open_reader(&r, files[i]) == -1) {
			problem(rep, GW_AQ_IO, files[i], 0, 0, "%s: %s",
			        files[i], strerror(errno));
			goto out;
		}
		while ((got = next_line(&r, &term)) == 1) {
			if (!term)
				break; /* never acknowledged: not a record */
			if (gw_auditq_chain_parse(r.buf, r.len, &c) == -1 ||
			    !c.hash_ok) {
				problem(rep, GW_AQ_MALFORMED, files[i],
				        r.lineno, c.seq,
				        "line %lld is not an intact record",
				        r.lineno);
				close_reader(&r);
				goto out;
			}
			if (n == cap) {
				nv = cap < (size_t)SEQS_MAX
				         ? realloc(v, (cap ? cap * 2 : 1024) *
				                          sizeof(*v))
				         : NULL;
				if (nv == NULL) {
					got = -1;
					break;
				}
				v = nv;
				cap = cap ? cap * 2 : 1024;
			}
			v[n].seq = c.seq;
			memcpy(v[n].hash, c.hash, sizeof(v[n].hash));
			v[n].file = files[i];
			v[n].line = r.lineno;
			n++;
		}
		close_reader(&r);
		if (got == -1) {
			problem(rep, GW_AQ_IO, files[i], 0, 0,
			        "a line too long, too many records or out of "
			        "memory");
			goto out;
		}
	}
	/* mergesort would keep file order; qsort is enough: the first of
	 * equal entries is only used to name a place. */
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_seqhash);
	for (i = 0, j = 0; i < n; i++) {
		if (j > 0 && v[j - 1].seq == v[i].seq) {
			if (strcmp(v[j - 1].hash, v[i].hash) == 0)
				continue;
			problem(rep, GW_AQ_INSERTED, v[i].file, v[i].line,
			        v[i].seq,
			        "seq %lld appears as two different records",
			        v[i].seq);
			goto out;
		}
		v[j++] = v[i];
	}
	*out = v;
	*nout = j;
	v = NULL;
	rc = 0;
out:
	free(v);
	return rc;
}

int
gw_auditq_against(const char *collected, const char *const *files,
                  size_t nfiles, struct gw_auditq_report *rep)
{
	struct seqhash *h = NULL, *k = NULL;
	size_t nh = 0, nk = 0, i = 0, j = 0;
	long long lo, hi;
	int rc = -1;

	memset(rep, 0, sizeof(*rep));
	if (load_seqhash(&collected, 1, &k, &nk, rep) == -1 ||
	    load_seqhash(files, nfiles, &h, &nh, rep) == -1)
		goto out;
	if (nk == 0 || nh == 0) {
		problem(rep, GW_AQ_DIFFERS, nk == 0 ? collected : files[0], 0,
		        0, "%s holds no record to compare",
		        nk == 0 ? "the collected copy" : "the host's trail");
		goto out;
	}
	/*
	 * Compared: the collector's seqs from the host's first on (older
	 * files may have been removed from the host) up to the last the
	 * collector got (newer ones may not be shipped yet).
	 */
	lo = h[0].seq > k[0].seq ? h[0].seq : k[0].seq;
	hi = k[nk - 1].seq;
	while (j < nk && k[j].seq < lo)
		j++;
	while (i < nh && h[i].seq < lo)
		i++;
	for (; j < nk || (i < nh && h[i].seq <= hi);) {
		if (i >= nh || (j < nk && k[j].seq < h[i].seq)) {
			problem(rep, GW_AQ_DIFFERS, collected, 0, k[j].seq,
			        "seq %lld reached the collector but is not in "
			        "the host's trail: removed on the host",
			        k[j].seq);
			goto out;
		}
		if (j >= nk || h[i].seq < k[j].seq) {
			problem(rep, GW_AQ_DIFFERS, h[i].file, h[i].line,
			        h[i].seq,
			        "seq %lld is in the host's trail but the "
			        "collector never received it: inserted on the "
			        "host",
			        h[i].seq);
			goto out;
		}
		if (strcmp(h[i].hash, k[j].hash) != 0) {
			problem(rep, GW_AQ_DIFFERS, h[i].file, h[i].line,
			        h[i].seq,
			        "seq %lld differs from the collector's copy: "
			        "rewritten on the host after it was shipped",
			        h[i].seq);
			goto out;
		}
		rep->records++;
		i++;
		j++;
	}
	rep->compared_first = lo;
	rep->compared_last = hi;
	rep->first_seq = h[0].seq;
	rep->last_seq = h[nh - 1].seq;
	rc = 0;
out:
	free(h);
	free(k);
	return rc;
}
