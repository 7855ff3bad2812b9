/*
 * Internals of "audit verify" and "audit query" (auditq.c), shared with
 * their fast path (auditq_scan.c): a trail file read in large blocks, a
 * line at a time, and a strict scanner that reads a record's chain
 * members, or the members query filters on, straight from lines in the
 * form hssgw writes (audit.c, audit_format.c).  The scanner only ever
 * says "recognised" or "not recognised": json-c (auditq.c) decides every
 * line it does not recognise, so the fast path never changes a verdict.
 * Internal to lib/.
 */
#ifndef GW_AUDITQ_INT_H
#define GW_AUDITQ_INT_H

#include <stddef.h>

#include <openssl/evp.h>

#include "auditq.h"

/* ,"hash":"<64 hex>"} ends every record (docs/AUDIT.md). */
#define AQ_HASH_SUFFIX_LEN (sizeof(",\"hash\":\"") - 1 + 64 + 2)
/* Bytes of one reader's buffer: a whole line always fits, twice. */
#define AQ_READ_BUF (2 * (GW_AUDITQ_LINE_MAX + 2))

/* One file, read with read(2) in blocks of up to AQ_READ_BUF bytes. */
struct aq_reader {
	int fd;
	char *buf;
	size_t pos, end; /* the bytes not handed out yet: buf[pos..end) */
	int eof;
	int err;    /* errno of a failed read(2), which ends the file */
	char *line; /* the last line, NUL-terminated in place */
	size_t len;
	long long lineno;
};

/* Opens path for reading; 0, or -1 with errno set. */
int aq_reader_open(struct aq_reader *, const char *path);
/*
 * The next line into r->line and r->len, its newline dropped (terminated
 * says whether there was one; only the file's last line may lack it).
 * 1: a line, valid until the next call; 0: the end (or a read error, in
 * r->err); -1: a line longer than GW_AUDITQ_LINE_MAX, where the reader
 * stops.
 */
int aq_reader_next(struct aq_reader *, int *terminated);
/* Closes the file and frees the buffer; a zeroed reader is fine. */
void aq_reader_close(struct aq_reader *);

/*
 * Reads a record's chain members (v, seq, prev, hash; hash_ok left 0)
 * when the line is a JSON object in the form hssgw writes: those four
 * members first and last, unescaped, each once, and every value in
 * between strict JSON that json-c reads the same way.  1: recognised, c
 * filled; 0: not recognised, c undefined (aq_chain_json decides).
 */
int aq_scan_chain(const char *line, size_t len, struct gw_auditq_chain *c);
/*
 * The json-c reading of the same (auditq.c): 0 with c filled, or -1 when
 * the line is not a record.  Never fast, always right.
 */
int aq_chain_json(const char *line, size_t len, struct gw_auditq_chain *c);
/*
 * Sets c->hash_ok: SHA-256 of the line without its ,"hash":"..." member
 * against c->hash.  md: a context to reuse, or NULL.  0, or -1 when the
 * digest fails.
 */
int aq_chain_hash(EVP_MD_CTX *md, const char *line, size_t len,
                  struct gw_auditq_chain *c);

/* Bytes of a record's "time" query sorts on, its NUL included. */
#define AQ_TIME_CAP 40

/* A string member as query reads it: p NULL when absent or null. */
struct aq_str {
	const char *p; /* into the line, not NUL-terminated */
	size_t n;
};

/* The members "audit query" filters and sorts on. */
struct aq_fields {
	struct aq_str time, subject, decision, project;
	struct aq_str task_id; /* upstream.task_id */
};

/*
 * Reads those members when the line is strict JSON, an object, each of
 * them (and upstream) at most once, none behind an escaped key, and each
 * absent, null or a string without escapes (upstream: an object, or any
 * other value, which has no task_id).  1: recognised; 0: not recognised
 * (json-c decides).
 */
int aq_scan_fields(const char *line, size_t len, struct aq_fields *f);
/*
 * One line as "audit query" reads it (auditq.c): -1 not a record, 0 a
 * record f leaves out, 1 a match, its "time" into time.  fast: the
 * scanner first, as query reads; 0: json-c alone.
 */
int aq_query_line(const char *line, size_t len,
                  const struct gw_auditq_filter *f, int fast,
                  char time[AQ_TIME_CAP]);

#endif
