/*
 * Reading the audit trail.  Verification walks the files in rotation
 * order, checking each record's own hash, that sequence numbers run on
 * by one, and that each record's "prev" is its predecessor's hash; the
 * first failure is reported with its file, line and seq.  To say what
 * the failure is (a gap, or a record moved later; a resend, or a record
 * inserted) it needs every sequence number first: so a trail that fails
 * is walked again after a first pass that collects them.  The checkpoint
 * then tells whether the tail was cut off.  Query prints the records
 * that match.  Lines are read by auditq_scan.c's scanner when it
 * recognises them and by json-c otherwise (auditq_int.h).  Read-only:
 * never writes a trail or a checkpoint.
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
#include "auditq_int.h"
#include "gw.h"

#define SEQS_MAX (64LL * 1024 * 1024)
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
aq_chain_json(const char *line, size_t len, struct gw_auditq_chain *c)
{
	static const char pre[] = ",\"hash\":\"";
	struct json_object *o = NULL;
	const char *suf;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (len < AQ_HASH_SUFFIX_LEN + 2)
		goto out;
	suf = line + len - AQ_HASH_SUFFIX_LEN;
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
	rc = 0;
out:
	json_object_put(o);
	return rc;
}

/*
 * A record's chain members: the scanner's reading when it recognises the
 * line, else json-c's (auditq_int.h); with md, its own hash checked too.
 * 0, or -1 when the line is not a record.
 */
static int
chain_read(const char *line, size_t len, EVP_MD_CTX *md, int hash,
           struct gw_auditq_chain *c)
{
	if (aq_scan_chain(line, len, c) == 0 &&
	    aq_chain_json(line, len, c) == -1)
		return -1;
	return hash ? aq_chain_hash(md, line, len, c) : 0;
}

int
gw_auditq_chain_parse(const char *line, size_t len, struct gw_auditq_chain *c)
{
	return chain_read(line, len, NULL, 1, c);
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
	struct aq_reader r;
	long long *v = NULL, *nv;
	size_t n = 0, cap = 0, i;
	int term, got;

	for (i = 0; i < nfiles; i++) {
		if (aq_reader_open(&r, files[i]) == -1) {
			free(v);
			return problem(rep, GW_AQ_IO, files[i], 0, 0, "%s: %s",
			               files[i], strerror(errno));
		}
		while ((got = aq_reader_next(&r, &term)) == 1) {
			/* Only the seq: pass two checks the hash. */
			if (chain_read(r.line, r.len, NULL, 0, &c) == -1)
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
		aq_reader_close(&r);
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
	struct aq_reader r;
	EVP_MD_CTX *md;
	size_t i;
	int term, got, rc = 0;

	/* One digest context for every record (NULL: one each). */
	md = EVP_MD_CTX_new();
	for (i = 0; i < nfiles && rc == 0; i++) {
		if (aq_reader_open(&r, files[i]) == -1) {
			rc = problem(rep, GW_AQ_IO, files[i], 0, 0, "%s: %s",
			             files[i], strerror(errno));
			break;
		}
		while (rc == 0 && (got = aq_reader_next(&r, &term)) != 0) {
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
			if (chain_read(r.line, r.len, md, 1, &c) == -1) {
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
			         aud_is_checkpoint(r.line, r.len))
				rc = check_signed(w, r.line, r.len, &c,
				                  files[i], r.lineno, rep);
		}
		aq_reader_close(&r);
	}
	EVP_MD_CTX_free(md);
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
	struct walk w, base;
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
	/*
	 * Pass one only tells problems apart (a gap from a move, a resend
	 * from an insertion, in check_record's seq branches): so the files
	 * are walked first without it, and only when that walk meets any
	 * problem, or more records than pass one holds, is the trail
	 * verified again in two passes, whose verdict is the one reported.
	 * Up to its first problem the walk never consults pass one, so an
	 * intact trail gets the same verdict read once.
	 */
	base = w;
	if (walk_files(&w, files, nfiles, rep) == -1 ||
	    rep->records >= SEQS_MAX) {
		memset(rep, 0, sizeof(*rep));
		w = base;
		if (collect_seqs(files, nfiles, &seqs, &nseqs, rep) == -1)
			goto out;
		w.seqs = seqs;
		w.nseqs = nseqs;
		dup_table(&w);
		if (walk_files(&w, files, nfiles, rep) == -1)
			goto out;
	}
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
eq(const char *want, const struct aq_str *have)
{
	return want == NULL || (have->p != NULL && strlen(want) == have->n &&
	                        memcmp(want, have->p, have->n) == 0);
}

/* A member's RFC 3339 time; 0 or -1. */
static int
time_ms(const struct aq_str *t, int64_t *ms)
{
	char s[64];

	/* Longer than any RFC 3339 time (35 bytes at most): none. */
	if (t->p == NULL || t->n >= sizeof(s))
		return -1;
	memcpy(s, t->p, t->n);
	s[t->n] = '\0';
	return gw_rfc3339_ms(s, ms);
}

/* The filter, over either reading of the members (auditq_int.h). */
static int
matches(const struct aq_fields *m, const struct gw_auditq_filter *f)
{
	int64_t ms;

	if (!eq(f->subject, &m->subject) || !eq(f->decision, &m->decision) ||
	    !eq(f->project, &m->project) || !eq(f->task_id, &m->task_id))
		return 0;
	if (f->has_since || f->has_until) {
		if (time_ms(&m->time, &ms) == -1)
			return 0;
		if ((f->has_since && ms < f->since_ms) ||
		    (f->has_until && ms > f->until_ms))
			return 0;
	}
	return 1;
}

static void
set_str(struct aq_str *s, const char *v)
{
	s->p = v;
	s->n = v != NULL ? strlen(v) : 0;
}

/* json-c's reading of the members query filters on, held by o. */
static void
fields_json(struct json_object *o, struct aq_fields *m)
{
	struct json_object *up = NULL;

	json_object_object_get_ex(o, "upstream", &up);
	set_str(&m->time, str_at(o, "time"));
	set_str(&m->subject, str_at(o, "subject"));
	set_str(&m->decision, str_at(o, "decision"));
	set_str(&m->project, str_at(o, "project"));
	set_str(&m->task_id, str_at(up, "task_id"));
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
	struct aq_reader r;
	const char *file;
	int ready;             /* 1: a match is held, 0: at end */
	struct json_object *o; /* its json-c tree, for a table only */
	const char *line;      /* its bytes, as written (in r's buffer) */
	size_t len;
	char time[AQ_TIME_CAP]; /* its "time", RFC 3339: sorts as text */
};

/*
 * One line as query reads it: -1 not a record, 0 a record the filter
 * leaves out, 1 a match, its "time" (a string's, else "") into time.
 * fast: the scanner reads the lines it recognises, json-c the others
 * (auditq_int.h); table: *o gets json-c's tree of a match, for its row.
 */
static int
match_line(const char *line, size_t len, const struct gw_auditq_filter *f,
           int fast, int table, struct json_object **o, char time[AQ_TIME_CAP])
{
	struct json_object *j, *t;
	struct aq_fields m;

	*o = NULL;
	time[0] = '\0';
	if (fast && aq_scan_fields(line, len, &m) == 1) {
		if (!matches(&m, f))
			return 0;
		if (!table) {
			if (m.time.p != NULL)
				snprintf(time, AQ_TIME_CAP, "%.*s",
				         (int)(m.time.n < AQ_TIME_CAP
				                   ? m.time.n
				                   : AQ_TIME_CAP),
				         m.time.p);
			return 1;
		}
	}
	j = parse_whole(line, len);
	if (j == NULL || !json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		return -1;
	}
	fields_json(j, &m);
	if (!matches(&m, f)) {
		json_object_put(j);
		return 0;
	}
	if (json_object_object_get_ex(j, "time", &t) &&
	    json_object_is_type(t, json_type_string))
		snprintf(time, AQ_TIME_CAP, "%s", json_object_get_string(t));
	if (table)
		*o = j;
	else
		json_object_put(j);
	return 1;
}

int
aq_query_line(const char *line, size_t len, const struct gw_auditq_filter *f,
              int fast, char time[AQ_TIME_CAP])
{
	struct json_object *o;

	return match_line(line, len, f, fast, 0, &o, time);
}

/* Advances src to its next matching record; 0, or -1 on a read error. */
static int
qsrc_next(struct qsrc *q, const struct gw_auditq_filter *f, int table)
{
	int term, got, rc;

	json_object_put(q->o);
	q->o = NULL;
	q->ready = 0;
	while ((got = aq_reader_next(&q->r, &term)) != 0) {
		rc = got == 1 && term ? match_line(q->r.line, q->r.len, f, 1,
		                                   table, &q->o, q->time)
		                      : -1;
		if (rc == -1) {
			fprintf(stderr, "%s:%lld: not a record, skipped\n",
			        q->file, q->r.lineno);
			if (got == -1)
				return 0; /* too long: the rest is unread */
			continue;
		}
		if (rc == 0)
			continue;
		q->ready = 1;
		q->line = q->r.line;
		q->len = q->r.len;
		return 0;
	}
	if (q->r.err != 0) {
		errno = q->r.err;
		return -1;
	}
	return 0;
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
		if (aq_reader_open(&q[i].r, files[i]) == -1 ||
		    qsrc_next(&q[i], f, fmt == GW_AUDITQ_TABLE) == -1) {
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
			if (q[i].ready &&
			    (best == NULL || strcmp(q[i].time, best->time) < 0))
				best = &q[i];
		if (best == NULL)
			break;
		printed++;
		if (fmt == GW_AUDITQ_JSON) {
			fwrite(best->line, 1, best->len, out);
			putc('\n', out);
		} else
			table_row(out, best->o);
		if (qsrc_next(best, f, fmt == GW_AUDITQ_TABLE) == -1) {
			snprintf(err, errlen, "%s: %s", best->file,
			         strerror(errno));
			goto out;
		}
	}
	n = printed;
out:
	for (i = 0; i < nfiles; i++) {
		json_object_put(q[i].o);
		if (q[i].r.buf != NULL)
			aq_reader_close(&q[i].r);
	}
	free(q);
	return n;
}

int
gw_auditq_instance_of(const char *path, char *out, size_t cap)
{
	struct json_object *o = NULL, *v;
	struct aq_reader r;
	int term, got, rc = -1;

	out[0] = '\0';
	if (aq_reader_open(&r, path) == -1)
		return -1;
	got = aq_reader_next(&r, &term);
	if (got == 1)
		o = parse_whole(r.line, r.len);
	if (o != NULL && json_object_object_get_ex(o, "instance", &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(out, cap, "%s", json_object_get_string(v));
	rc = 0;
	json_object_put(o);
	aq_reader_close(&r);
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
	struct aq_reader r;
	EVP_MD_CTX *md;
	size_t n = 0, cap = 0, i, j;
	int term, got, rc = -1;

	md = EVP_MD_CTX_new(); /* NULL: one per record */
	for (i = 0; i < nfiles; i++) {
		if (aq_reader_open(&r, files[i]) == -1) {
			problem(rep, GW_AQ_IO, files[i], 0, 0, "%s: %s",
			        files[i], strerror(errno));
			goto out;
		}
		while ((got = aq_reader_next(&r, &term)) == 1) {
			if (!term)
				break; /* never acknowledged: not a record */
			if (chain_read(r.line, r.len, md, 1, &c) == -1 ||
			    !c.hash_ok) {
				problem(rep, GW_AQ_MALFORMED, files[i],
				        r.lineno, c.seq,
				        "line %lld is not an intact record",
				        r.lineno);
				aq_reader_close(&r);
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
		aq_reader_close(&r);
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
	EVP_MD_CTX_free(md);
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
