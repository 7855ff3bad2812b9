/*
 * The audit report: "hssgw audit report" streams the trail's records once
 * into bounded tables (teams, subjects, deciding statements, shadow
 * disagreements, anonymous failures by reason and address, per-hour
 * series, the busiest minute per credentials and API) and renders them as
 * one self-contained HTML page with inline CSS and SVG.  It never holds
 * the records: memory is bounded by the caps below, whatever the trail's
 * length; keys past a cap are summed in an "other" row that the page
 * names.  Every string from the trail is HTML-escaped (it is
 * caller-controlled).  Read-only: never writes a trail or a checkpoint.
 */
#ifndef GW_REPORT_H
#define GW_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "auditq.h"

/* Distinct keys kept per table; more are summed in the "other" row. */
#define GW_REPORT_TEAMS_MAX      64
#define GW_REPORT_SUBJECTS_MAX   1000
#define GW_REPORT_STATEMENTS_MAX 256
#define GW_REPORT_ADDRS_MAX      1000
#define GW_REPORT_REASONS_MAX    64
#define GW_REPORT_KEY_MAX        200  /* bytes of a key kept, then "..." */
#define GW_REPORT_HOURS_MAX      9600 /* hours charted (400 days) */

/* What the report is over and how it groups. */
struct gw_report_opts {
	const char *const *files; /* rotation order, the live file last */
	size_t nfiles;
	const char *checkpoint; /* NULL: none compared */
	int checkpoint_required;
	int64_t since_ms, until_ms; /* inclusive, when has_ set */
	int has_since, has_until;
	const char *team_claim;      /* NULL: the team is the subject */
	long long budget_per_minute; /* the limit shown; <= 0: 5 */
	const char *cmdline_files;   /* the FILE... text for captions */
};

enum gw_report_table {
	GW_REPORT_TEAM = 0,
	GW_REPORT_SUBJECT,
	GW_REPORT_STATEMENT, /* deciding statement "file#sid" */
	GW_REPORT_SHADOW,    /* "enforced -> shadow" by shadow statement */
	GW_REPORT_DENIED,    /* callers (subjects) with denials */
	GW_REPORT_REASON,    /* anonymous failures by error code */
	GW_REPORT_ADDR,      /* anonymous failures by client address */
	GW_REPORT_UPKEY,     /* upstream calls by "credentials api" */
	GW_REPORT_TABLE__MAX
};

/* The counters every row has (a table uses some of them). */
enum gw_report_col {
	GW_RC_EXPORTS = 0, /* exports answered 200 (task created or shared) */
	GW_RC_COALESCED,   /* of those, answered with an earlier task */
	GW_RC_ALLOW,
	GW_RC_EXPLICIT,
	GW_RC_IMPLICIT,
	GW_RC_SHADOW_DENY,  /* allowed, the shadow policies would deny */
	GW_RC_SHADOW_ALLOW, /* denied, the shadow policies would allow */
	GW_RC_POLLS,
	GW_RC_POLLS_CACHED,
	GW_RC_DOWNLOADS,
	GW_RC_DOWNLOADS_FAILED,
	GW_RC_BUDGET, /* HSSGW.0205: refused by the gateway's budget */
	GW_RC_HSS429, /* HSS answered 429 */
	GW_RC_COUNT,  /* records (anonymous failures, upstream calls) */
	GW_RC__MAX
};

struct gw_report;

/* What was read, for the page's head and for tests. */
struct gw_report_totals {
	struct gw_auditq_report verify; /* audit verify over the same files */
	int intact;                     /* 1: verify found no problem */
	long long lines;                /* lines read */
	long long unreadable;           /* lines that are not JSON objects */
	long long records;              /* records in the time window */
	int64_t first_ms, last_ms;      /* their time range; 0: none */
	long long summaries;            /* "phase":"summary" records */
	long long no_team;              /* records without the team claim */
	long long outside_chart;        /* records past GW_REPORT_HOURS_MAX */
};

/*
 * Verifies the files, then reads every record once.  Returns the report
 * (caller frees with gw_report_free), or NULL with a reason when a file
 * cannot be read or memory runs out; a broken chain is not a failure, it
 * is the page's first section.
 */
struct gw_report *gw_report_build(const struct gw_report_opts *, char *err,
                                  size_t errlen);
/* Frees a report; accepts NULL. */
void gw_report_free(struct gw_report *);
/* Borrowed totals; never NULL. */
const struct gw_report_totals *gw_report_totals(const struct gw_report *);
/*
 * A counter of a table's row: key NULL is the "other" row.  Returns the
 * count, or -1 when the table has no such row.
 */
long long gw_report_count(const struct gw_report *, enum gw_report_table,
                          const char *key, enum gw_report_col);
/*
 * The projects (what 'p') or HSS fields (what 'f') a row's exports used,
 * sorted and joined by ", " into buf.  Returns 0, or -1 with no such row.
 */
int gw_report_names(const struct gw_report *, enum gw_report_table,
                    const char *key, int what, char *buf, size_t cap);
/*
 * A counter of the hour starting at hour_ms (exports of team, or all teams
 * when team is NULL; GW_RC_BUDGET and GW_RC_HSS429 ignore team).
 */
long long gw_report_hour(const struct gw_report *, int64_t hour_ms,
                         const char *team, enum gw_report_col);
/*
 * The busiest minute of upstream calls for "credentials api": the calls
 * and the minute's start.  Returns 0, or -1 when there were none.
 */
int gw_report_peak(const struct gw_report *, const char *key, long long *calls,
                   int64_t *minute_ms);
/* Writes the HTML page; returns 0 or -1 on a write error. */
int gw_report_html(const struct gw_report *, FILE *out);

#endif
