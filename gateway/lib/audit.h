/*
 * Audit: a tamper-evident, durable trail of JSON lines, one record per
 * answered request (two for an allowed export: "intent" before anything
 * goes upstream, "outcome" after, sharing the request id).  Each record
 * carries a schema version, a sequence number that continues across
 * rotated files, the hash of the previous record and its own SHA-256, so
 * an edit, removal, reorder or insertion breaks the chain (docs/AUDIT.md
 * gives the exact bytes hashed).  gw_audit_emit returns only once the
 * record is on disk (fdatasync); concurrent emitters share one write and
 * one sync (group commit).  Any write or sync failure marks the trail not
 * ready, so exports fail closed, until it heals by itself (a reopen and a
 * summary record on disk, tried every GW_AUDIT_HEAL_MS) or gw_audit_reopen
 * succeeds.  Anonymous records past a byte rate are counted into summary
 * records instead of written.  Records
 * hold no secret: the upstream request is printed redacted and only
 * fingerprints of tokens and credentials are kept.
 */
#ifndef GW_AUDIT_H
#define GW_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "gw.h"
#include "upreq.h"

#define GW_AUDIT_SCHEMA_VERSION 1
#define GW_AUDIT_HASH_HEX       64 /* hex digits of a SHA-256 */

struct gw_audit;

/*
 * Which record of a request this is.  The zero value, "final", is the one
 * record of a request that never went upstream; an allowed export writes
 * "intent" (durable before the upstream call) and then "outcome".
 */
enum gw_audit_phase {
	GW_AUDIT_FINAL = 0,
	GW_AUDIT_INTENT,
	GW_AUDIT_OUTCOME,
	GW_AUDIT_SUMMARY, /* written by the trail itself: anonymous counts */
	/* Written by the trail itself: a signed checkpoint (docs/AUDIT.md). */
	GW_AUDIT_CHECKPOINT,
	GW_AUDIT_PHASE__MAX
};

/* One upstream attempt of a request (HSS 429s and 401s are retried). */
struct gw_audit_attempt {
	long status;            /* HSS's status; 0: no answer */
	const char *error_code; /* HSS's error_code, or NULL */
	int64_t latency_us;
};

#define GW_AUDIT_ATTEMPTS_MAX 16 /* attempts recorded per request */
#define GW_AUDIT_CLAIMS_MAX   32 /* claims recorded per request */

/*
 * Every field may be NULL/zero when the request never got that far.
 * Strings are copied into the record capped (docs/AUDIT.md: a cut value
 * ends in a marker with its length and SHA-256) and as valid UTF-8.
 */
struct gw_audit_rec {
	int64_t time_ms;
	/* the instance that wrote it; NULL: the trail's (gw_audit_opts) */
	const char *instance;
	const char *request_id;
	const char *client_addr;
	const char *method;
	const char *path;
	const char *subject;
	/* the first value of tasks.fair_share_claim, NULL without one */
	const char *team;
	const char *issuer;
	const char *jti;
	const char *action;
	const char *resource;
	const char *project;
	const char *decision;  /* "allow", ... or NULL: not evaluated */
	const char *stmt_file; /* deciding statement, may be NULL */
	const char *stmt_sid;
	const char *policy_revision;
	/* Every deciding statement (the first is stmt_file/stmt_sid). */
	const char *const *stmt_files;
	const char *const *stmt_sids;
	size_t nstmts;
	/* Shadow policies: evaluated and recorded, never enforced. */
	const char *shadow_decision; /* NULL: no shadow set configured */
	const char *shadow_stmt_file;
	const char *shadow_stmt_sid;
	const char *shadow_revision;
	int status;             /* HTTP status answered; 0: not yet */
	const char *error_code; /* HSSGW.xxxx or HSS's, NULL on success */
	const char *error_field;
	const struct gw_upreq *upreq; /* what was sent, NULL if nothing */
	long up_status;               /* 0: no upstream answer */
	const char *up_error_code;    /* HSS error_code, if any */
	const char *task_id;
	long long record_total_num; /* -1: absent */
	const char *cred_name;
	const char *cred_fp;
	int64_t lat_auth_us, lat_policy_us, lat_upstream_us, lat_total_us;
	/* Added with schema version 1. */
	enum gw_audit_phase phase;
	const char *token_fp;      /* gw_fingerprint of the bearer */
	const char *const *groups; /* the token's groups, borrowed */
	size_t ngroups;
	/* Export tasks (docs/TASKS.md); members written only when 1. */
	int coalesced; /* the export answer is an earlier identical one's */
	int cached;    /* the status answer came from the status cache */
	/* Task status and download: the task's creator, from its handle
	 * (the caller may act for it: hss:ActForSubject); NULL elsewhere. */
	const char *task_issuer;
	const char *task_subject;
	/* No verified token: may be summarised (gw_audit_opts.anon_*). */
	int anonymous;
	/* Why the token was refused; kept here, never told the caller. */
	const char *auth_error;
	/* Every upstream attempt, oldest first; NULL/0 when none. */
	const struct gw_audit_attempt *attempts;
	size_t nattempts;
	/*
	 * What the policies read, written as "policy_input" when either is
	 * set: the claims the loaded sets reference (values NULL: the token
	 * lacks it), and the request's condition keys (hss:...), borrowed.
	 */
	struct gw_kv claims[GW_AUDIT_CLAIMS_MAX];
	size_t nclaims;
	const struct gw_kv *ctx;
	size_t nctx;
};

/* How the trail is kept; the zero value is the safe default. */
struct gw_audit_opts {
	int nosync;             /* 1: skip fdatasync (benchmarks only) */
	long long rotate_bytes; /* >0: rotate once the file reaches this */
	int syslog;             /* 1: copy each record to LOG_AUTHPRIV */
	/*
	 * Anonymous records (no verified token) past this many bytes an hour
	 * are counted in "summary" records instead; 0: the default, 10 MiB.
	 */
	long long anon_bytes_per_hour;
	long long summary_interval_ms; /* 0: the default, 60 s */
	/*
	 * This instance's name in every record, its own summaries too
	 * (several instances, one trail each: docs/SHARED_STATE.md); NULL:
	 * null in the record.  Copied at open.
	 */
	const char *instance;
	/*
	 * An Ed25519 private key (PEM): "checkpoint" records, signed, are
	 * chained into the trail every signed_checkpoint_interval_s (0: 60)
	 * and at rotation and close.  NULL: none.  Loaded at open.
	 */
	const char *signing_key_file;
	long long signed_checkpoint_interval_s;
};

/*
 * Opens (creating, mode 0600) the audit file for appending with default
 * options and continues the chain from its last record or checkpoint;
 * NULL + reason.
 */
struct gw_audit *gw_audit_open(const char *path, char *err, size_t errlen);
/* Same with options (NULL: defaults); NULL + reason. */
struct gw_audit *gw_audit_open_opts(const char *path,
                                    const struct gw_audit_opts *, char *err,
                                    size_t errlen);
/* Closes; accepts NULL. */
void gw_audit_close(struct gw_audit *);
/*
 * 1 when the trail can take records (last write succeeded), else 0.  A
 * broken trail tries to reopen itself here and in gw_audit_emit, at most
 * every GW_AUDIT_HEAL_MS, so it heals with no signal once writes work.
 */
#define GW_AUDIT_HEAL_MS 200
int gw_audit_ready(struct gw_audit *);
/*
 * Once a second from the main thread: writes an interval's anonymous
 * summary and a checkpoint that lags the durable records, so an idle
 * trail catches up.  A failure breaks the trail as a commit's would.
 */
void gw_audit_tick(struct gw_audit *);
/*
 * Serializes a record's content to one JSON object (no trailing newline,
 * no chain members) in buf.  Returns 0 or -1.
 */
int gw_audit_format(const struct gw_audit_rec *, struct gw_buf *buf);
/*
 * Appends a record and returns once it is durable: GW_OK, or GW_ERR_AUDIT
 * with a reason (the trail is then not ready).  Thread-safe.
 */
enum gw_err gw_audit_emit(struct gw_audit *, const struct gw_audit_rec *,
                          char *err, size_t errlen);
/*
 * A record chained but perhaps not yet durable: what gw_audit_wait waits
 * for.  Plain data; seq 0 means nothing to wait for.
 */
struct gw_audit_ticket {
	unsigned epoch; /* the trail's epoch when it was chained */
	long long seq;
};
/* Whether gw_audit_emit_async returns before the record is durable (not
 * with audit.syslog, whose copy is written once it is).  NULL: 0. */
int gw_audit_can_defer(const struct gw_audit *);
/*
 * gw_audit_emit without the wait: the record is chained into the next
 * group commit and *ticket says which it is; nothing may be acknowledged
 * until gw_audit_wait says it is durable.  GW_OK, or GW_ERR_AUDIT with a
 * reason (nothing was chained).  On a trail that cannot defer, waits as
 * gw_audit_emit does (the ticket is then already durable).
 */
enum gw_err gw_audit_emit_async(struct gw_audit *, const struct gw_audit_rec *,
                                struct gw_audit_ticket *ticket, char *err,
                                size_t errlen);
/*
 * Returns once the ticket's record is on disk: 0; or -1 with a reason if
 * the trail broke before it was (its record was then never written).  The
 * waiter takes part in the group commit as an emitter does: it leads a
 * batch or sleeps until one holds its record.  Thread-safe.
 */
int gw_audit_wait(struct gw_audit *, const struct gw_audit_ticket *, char *err,
                  size_t errlen);
/*
 * Reopens the file by path (after logrotate renamed it) between two
 * group commits, so no record is lost or split; the chain continues.  On
 * a trail that had failed, the chain is taken again from the file and
 * checkpoint, and the trail is ready again.  Not async-signal-safe: call
 * it from a thread, not a signal handler.  GW_OK or GW_ERR_AUDIT.
 */
enum gw_err gw_audit_reopen(struct gw_audit *, char *err, size_t errlen);
/* Highest sequence number on disk (0: none yet); for tests and health. */
long long gw_audit_durable_seq(struct gw_audit *);
/* Group commits (write + sync) so far; records / commits = batch size. */
long long gw_audit_commits(struct gw_audit *);
/*
 * Calls fn(arg, microseconds) after each group commit's fdatasync (the
 * metrics' sync histogram).  Set once, before records are emitted.
 */
void gw_audit_set_sync_hook(struct gw_audit *, void (*fn)(void *, int64_t),
                            void *arg);
/*
 * Loads audit.signing_key_file as the trail would (a secret file holding
 * an Ed25519 private key) and drops it: check-config's test.  0, or -1
 * with the reason (the file named, never its bytes).
 */
int gw_audit_signing_key_check(const char *path, char *err, size_t errlen);
/* "checkpoint" records chained so far (signed checkpoints). */
long long gw_audit_signed(struct gw_audit *);
/* Anonymous records counted in summaries instead of written, so far. */
long long gw_audit_summarised(struct gw_audit *);

#endif
