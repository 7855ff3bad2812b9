/*
 * Reading the audit trail: parsing a record's chain members, checkpoints,
 * "hssgw audit verify" (the first record modified, removed, reordered or
 * inserted, and tail truncation against the checkpoint) and "hssgw audit
 * query" (filters, JSON lines or a table).  Read-only: never writes a
 * trail or a checkpoint.
 */
#ifndef GW_AUDITQ_H
#define GW_AUDITQ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest record line accepted, newline excluded. */
#define GW_AUDITQ_LINE_MAX (256 * 1024 + 4096)

/* The chain members of one record. */
struct gw_auditq_chain {
	long long v;
	long long seq;
	char prev[65];
	char hash[65];
	int hash_ok; /* 1: hash matches the record's bytes */
};

/*
 * Parses one record line (no newline) and checks its own hash.  Returns
 * 0, or -1 when the line is not a record (hash_ok is then meaningless).
 */
int gw_auditq_chain_parse(const char *line, size_t len,
                          struct gw_auditq_chain *);

/*
 * Reads a checkpoint file into seq and hash.  Returns 1 when read, 0 when
 * the file does not exist, -1 with a reason when it is unreadable.
 */
int gw_auditq_checkpoint_read(const char *path, long long *seq, char hash[65],
                              char *err, size_t errlen);

/*
 * Same, and the last signed "checkpoint" record the file names into sseq
 * and shash (sseq 0, shash untouched: none).
 */
int gw_auditq_checkpoint_read_signed(const char *path, long long *seq,
                                     char hash[65], long long *sseq,
                                     char shash[65], char *err, size_t errlen);

enum gw_auditq_problem {
	GW_AQ_OK = 0,
	GW_AQ_IO,         /* a file could not be read */
	GW_AQ_MALFORMED,  /* a line is not a record */
	GW_AQ_MODIFIED,   /* a record's hash does not match its bytes */
	GW_AQ_REMOVED,    /* sequence numbers skip */
	GW_AQ_REORDERED,  /* a record appears out of order */
	GW_AQ_INSERTED,   /* a sequence number appears twice */
	GW_AQ_CHAIN,      /* prev does not match: a rewritten record */
	GW_AQ_TRUNCATED,  /* the checkpoint is past the last record */
	GW_AQ_CHECKPOINT, /* the checkpoint disagrees with its record */
	GW_AQ_SIGNATURE,  /* a signed checkpoint record fails (--pubkey) */
	GW_AQ_DIFFERS,    /* the host's trail is not what was collected */
	GW_AQ__MAX
};

/* What verify found: the first problem, where, and what it checked. */
struct gw_auditq_report {
	enum gw_auditq_problem problem;
	char file[256]; /* where the problem is, "" for none */
	long long line; /* 1-based line in file, 0 for none */
	long long seq;  /* the record's seq, 0 when unknown */
	long long records, first_seq, last_seq;
	int checkpoint_checked; /* 0: no checkpoint was compared */
	int torn_tail;          /* 1: an unterminated last line was ignored */
	/* Exact copies of a record already seen (a collector's resends). */
	long long duplicates;
	/* With a public key: checkpoint records verified, the last one. */
	long long signed_checkpoints, last_signed_seq;
	/* verify --against: the seqs both copies hold, compared. */
	long long compared_first, compared_last;
	char msg[512];
};

/* Short name of a problem ("modified", ...); never NULL. */
const char *gw_auditq_problem_name(enum gw_auditq_problem);

/*
 * Verifies files given in rotation order against each other and, when
 * checkpoint is not NULL and exists, against it (a missing checkpoint is
 * a problem only when required).  Returns 0 when the chain is intact,
 * else -1 with the first problem in the report.
 */
int gw_auditq_verify(const char *const *files, size_t nfiles,
                     const char *checkpoint, int checkpoint_required,
                     struct gw_auditq_report *);
/*
 * Same, and with pubkey (an Ed25519 public key PEM, or NULL) every
 * "checkpoint" record's signature and their chain are checked; a trail
 * without one fails.  docs/AUDIT.md has the signed bytes.
 */
int gw_auditq_verify_signed(const char *const *files, size_t nfiles,
                            const char *checkpoint, int checkpoint_required,
                            const char *pubkey, struct gw_auditq_report *);
/*
 * Compares a host's trail (files, oldest first) with the collector's
 * copy: over the seqs the collector received, every record must be the
 * same (seq and hash), none missing on the host, none added.  0, or -1
 * with the first differing seq in the report (GW_AQ_DIFFERS).
 */
int gw_auditq_against(const char *collected, const char *const *files,
                      size_t nfiles, struct gw_auditq_report *);

/* Query filters; NULL/unset members match everything. */
struct gw_auditq_filter {
	const char *subject;
	const char *decision;
	const char *project;
	const char *task_id;
	int64_t since_ms, until_ms; /* inclusive, when has_ set */
	int has_since, has_until;
};

enum gw_auditq_format { GW_AUDITQ_JSON = 0, GW_AUDITQ_TABLE, GW_AUDITQ__MAX };

/*
 * Prints the records of files that match the filter to out, the files
 * merged by record time (several instances' trails: one timeline; each
 * file keeps its own order, since a record's time is its request's
 * arrival and concurrent requests finish out of it; in JSON each line as
 * written).  Returns the number printed, or
 * -1 with a reason.
 */
long long gw_auditq_query(const char *const *files, size_t nfiles,
                          const struct gw_auditq_filter *,
                          enum gw_auditq_format, FILE *out, char *err,
                          size_t errlen);

/*
 * The instance named by a file's first record into out ("" when it names
 * none: an empty file, or one written before records named instances).
 * 0, or -1 when the file cannot be opened.
 */
int gw_auditq_instance_of(const char *path, char *out, size_t cap);

#endif
