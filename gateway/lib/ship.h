/*
 * Ship: what "hssgw audit ship" needs besides RELP.  Follows an instance's
 * trail (the live file and its rotated copies, <file>.<anything>) from a
 * given seq on, record by record and in order, across rotation and
 * restarts, and refuses to go past a gap or a broken chain (it waits and
 * says why, never skips); keeps the durable cursor (the last record the
 * collector acknowledged) and the shipper's metrics textfile.  Reads the
 * trail only; never writes it.  Knows nothing of RELP (relp.c does).
 */
#ifndef GW_SHIP_H
#define GW_SHIP_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h" /* GW_AUDIT_HASH_HEX only: ship.c calls nothing of it */

/*
 * The longest record shipped: the collector's maxMessageSize is 4 MiB
 * (deploy/rsyslog/hssgw-collector.conf) and the RFC 5424 header takes
 * the rest.
 */
#define GW_SHIP_LINE_MAX (4 * 1024 * 1024 - 1024)

struct gw_ship_follow;

/* The position the collector acknowledged: seq 0 is "nothing yet". */
struct gw_ship_cursor {
	char instance[128];
	long long seq;
	char hash[GW_AUDIT_HASH_HEX + 1];
	int64_t time_ms; /* the record's "time"; 0 unknown */
};

/* One record as read: borrowed, valid until the next gw_ship_next. */
struct gw_ship_rec {
	const char *line; /* without the newline */
	size_t len;
	long long seq;
	char hash[GW_AUDIT_HASH_HEX + 1];
	int64_t time_ms; /* 0 when the record has no readable time */
};

/* A follower of the trail at PATH, from the record after CUR (seq 0:
 * the oldest record there is); NULL on no memory.  Free with _free. */
struct gw_ship_follow *gw_ship_follow_new(const char *path,
                                          const struct gw_ship_cursor *cur);
/* Frees a follower; accepts NULL. */
void gw_ship_follow_free(struct gw_ship_follow *);
/*
 * The next record in seq order: 1 and *REC filled, 0 when it is not
 * written yet (poll again), -1 when the trail cannot go on (a gap, a
 * broken chain, a line that is not a record, an I/O error: ERR says
 * which; the follower stays where it was, so a retry re-checks).
 */
int gw_ship_next(struct gw_ship_follow *, struct gw_ship_rec *rec, char *err,
                 size_t errlen);
/* The highest seq the trail's checkpoint or the follower has seen. */
long long gw_ship_head_seq(struct gw_ship_follow *);

/*
 * Parses a record's chain members (seq, prev, hash, time) from LINE; 0,
 * or -1 when it is not a record line (docs/AUDIT.md's fixed shape).
 */
int gw_ship_parse(const char *line, size_t len, long long *seq, char *prev,
                  char *hash, int64_t *time_ms);

/* Reads the cursor file: 1 read, 0 absent (nothing acknowledged yet),
 * -1 unreadable or malformed (ERR says why). */
int gw_ship_cursor_load(const char *path, struct gw_ship_cursor *cur, char *err,
                        size_t errlen);
/* Replaces the cursor file durably (temporary file, fsync, rename,
 * directory fsync); -1 with ERR on failure, the old cursor intact. */
int gw_ship_cursor_save(const char *path, const struct gw_ship_cursor *cur,
                        char *err, size_t errlen);

/* What the shipper reports (docs/AUDIT.md, "Shipping metrics"). */
struct gw_ship_stats {
	long long acked_seq;       /* the cursor's seq */
	long long head_seq;        /* the trail's newest seq seen */
	int64_t oldest_unacked_ms; /* time of the record after the cursor,
	                            * 0 when there is none */
	long long shipped;         /* records acknowledged since start */
	long long resends;         /* records sent again after a failure */
	long long failures;        /* batches not acknowledged */
	int64_t last_ack_ms;       /* 0: none since start */
	int blocked;               /* the trail cannot go on (a gap...) */
};

/* Writes the Prometheus textfile atomically; -1 with ERR on failure. */
int gw_ship_metrics_write(const char *path, const char *instance,
                          const struct gw_ship_stats *st, int64_t now_ms,
                          char *err, size_t errlen);

/*
 * The gateway's side (audit.ship.max_lag_s, docs/AUDIT.md "Fail closed"):
 * hssgw serve watches the shipper's cursor once a second and notes its
 * own trail's durable seq with the time, so it knows how old the oldest
 * record the collector has not acknowledged is (at one-second
 * resolution, never overstated; records from before hssgw started count
 * from its start).  Updated by one thread; read by any, lock-free.
 */
struct gw_ship_lag;

/*
 * A watch over CURSOR_FILE for INSTANCE's trail (NULL: any instance);
 * MAX_LAG_S 0 never refuses.  NULL on no memory.  Free with _free.
 */
struct gw_ship_lag *gw_ship_lag_new(const char *cursor_file,
                                    const char *instance, long long max_lag_s);
/* Frees a watch; accepts NULL. */
void gw_ship_lag_free(struct gw_ship_lag *);
/*
 * From one thread, about once a second: the trail is durable up to
 * DURABLE_SEQ at NOW_MS; re-reads the cursor.  0, or -1 with ERR when the
 * cursor could not be read or names another instance (the last good one
 * is kept; another instance's counts as nothing acknowledged).
 */
int gw_ship_lag_update(struct gw_ship_lag *, long long durable_seq,
                       int64_t now_ms, char *err, size_t errlen);
/* 1 while exports are to be refused (the lag is past max_lag_s); NULL: 0. */
int gw_ship_lag_refusing(const struct gw_ship_lag *);
/* The age in ms of the oldest record not acknowledged; 0 caught up. */
long long gw_ship_lag_ms(const struct gw_ship_lag *);
/* Durable records past the cursor. */
long long gw_ship_lag_records(const struct gw_ship_lag *);

/*
 * Formats the RFC 5424 message carrying LINE byte for byte as its MSG:
 * "<86>1 TIME INSTANCE hssgw - audit - LINE" (authpriv.info).  Appends
 * to OUT; -1 when it does not fit.
 */
int gw_ship_frame(struct gw_buf *out, const char *instance, int64_t now_ms,
                  const char *line, size_t len);

#endif
