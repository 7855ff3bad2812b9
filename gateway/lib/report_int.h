/*
 * Internal to the audit report: for gateway/lib/report*.c only, never
 * included anywhere else (the public API is report.h).  It holds the
 * report's tables, shared by the aggregation (report.c, which fills them)
 * and the page (report_html.c, which only reads them), and the one
 * function they call across files, named rep_*.
 */
#ifndef GW_REPORT_INT_H
#define GW_REPORT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "report.h"

#define NAMES_MAX  63 /* projects, fields: bit 63 is "other" */
#define RING       16 /* minutes kept per upstream key */
#define HOUR_MS    3600000LL
#define MINUTE_MS  60000LL
#define HOURS_SLOT 32768 /* > 2 * GW_REPORT_HOURS_MAX */
_Static_assert(HOURS_SLOT > 2 * GW_REPORT_HOURS_MAX, "hour index too small");

/* The actions the report tells apart (report.c maps them to budget APIs). */
#define ACT_EXPORT   "hss:ExportImageBaseline"
#define ACT_STATUS   "hss:GetExportTask"
#define ACT_DOWNLOAD "hss:DownloadExportFile"

struct ring {
	int64_t min[RING]; /* minute number, -1: empty */
	long long n[RING];
	long long peak;
	int64_t peak_min;
};

struct row {
	char *key;
	long long c[GW_RC__MAX];
	uint64_t projects, fields; /* bits into the report's names */
	int team;                  /* subjects: their team's row, -1 none */
	struct ring *ring;         /* upstream keys only */
};

struct table {
	size_t cap, n, mask;
	struct row *rows;
	uint32_t *index; /* open addressing: row + 1, 0 empty */
	struct row other;
	int other_used;
};

struct names {
	char *v[NAMES_MAX];
	size_t n;
};

struct hour {
	int64_t h; /* hour number since the epoch */
	long long exports[GW_REPORT_TEAMS_MAX + 1]; /* last: other teams */
	long long budget, hss429;
};

struct gw_report {
	struct gw_report_opts opts;
	struct gw_report_totals t;
	struct table tab[GW_REPORT_TABLE__MAX];
	struct names projects, fields;
	struct hour *hours;
	size_t nhours;
	int32_t hindex[HOURS_SLOT]; /* hour row + 1, 0 empty */
	char claimexpr[300];        /* the team's jq expression */
};

/* The names of bits, sorted, joined by ", "; "other" for bit 63. */
void rep_join_names(const struct names *d, uint64_t bits, char *buf,
                    size_t cap);

#endif /* GW_REPORT_INT_H */
