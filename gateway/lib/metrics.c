/*
 * Metrics (metrics.h): relaxed atomic counters in fixed tables, fixed-
 * bucket histograms, and the text exposition format 0.0.4 (Prometheus
 * docs, "Exposition formats").  Relaxed order is enough: each counter is
 * independent and a scrape needs no happens-before with the request that
 * moved it.  Owns only its tables; reads /proc at scrape time for the
 * process_* families.  Never takes a label value from a request.
 */
#include <dirent.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "metrics.h"

typedef atomic_ullong counter;

/* Bucket upper bounds in microseconds, with their le="..." labels. */
struct bounds {
	size_t n;
	int64_t us[12];
	const char *le[12];
};

/* client_golang's default buckets (histogram.go DefBuckets). */
static const struct bounds lat_bounds = {
    11,
    {5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
     5000000, 10000000},
    {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
     "10"},
};

/* An fdatasync takes from tens of microseconds to seconds on a sick disk. */
static const struct bounds sync_bounds = {
    12,
    {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
     1000000},
    {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
     "0.05", "0.1", "0.25", "1"},
};

#define HIST_SLOTS 13 /* the most bounds, plus +Inf */

/* Per-bucket (not cumulative) counts; the writer sums them. */
struct hist {
	counter b[HIST_SLOTS];
	counter sum_us;
};

/*
 * Status labels: the exact statuses hssgw and HSS answer, then a class
 * for any other, then "error" for no answer at all (an upstream call
 * that failed before a status).  Bounded whatever HSS sends.
 */
static const int exact_status[] = {200, 201, 202, 204, 206, 304, 400,
                                   401, 403, 404, 405, 409, 413, 415,
                                   416, 429, 500, 502, 503, 504};
#define NEXACT   (sizeof(exact_status) / sizeof(exact_status[0]))
#define NSTATUS  (NEXACT + 6) /* 1xx..5xx, error */
#define ST_ERROR (NEXACT + 5)
static const char *const class_label[] = {"1xx", "2xx", "3xx",
                                          "4xx", "5xx", "error"};

static const char *const route_name[GW_MET_ROUTE__MAX] = {
    [GW_MET_ROUTE_EXPORT] = "export",
    [GW_MET_ROUTE_TASK_STATUS] = "task_status",
    [GW_MET_ROUTE_TASK_FILE] = "task_file",
    [GW_MET_ROUTE_HEALTHZ] = "healthz",
    [GW_MET_ROUTE_METRICS] = "metrics",
    [GW_MET_ROUTE_OTHER] = "other",
};
static const char *const api_name[GW_MET_API__MAX] = {
    [GW_MET_API_EXPORT] = "export",
    [GW_MET_API_EXPORT_TASK] = "export-task",
    [GW_MET_API_DOWNLOAD] = "download",
};
static const char *const decision_name[GW_MET_DEC__MAX] = {
    [GW_MET_DEC_ALLOW] = "allow",
    [GW_MET_DEC_DENY] = "deny",
};
static const char *const jwt_name[GW_MET_JWT__MAX] = {
    [GW_MET_JWT_OK] = "ok",
    [GW_MET_JWT_INVALID] = "invalid",
    [GW_MET_JWT_MISSING] = "missing",
};
static const char *const result_name[GW_MET_RESULT__MAX] = {
    [GW_MET_OK] = "ok",
    [GW_MET_FAILED] = "failed",
};
_Static_assert(sizeof(class_label) / sizeof(class_label[0]) == 6,
               "five classes and error");
_Static_assert(sizeof(route_name) / sizeof(route_name[0]) == GW_MET_ROUTE__MAX,
               "every route needs a name");

static const char *const fcgi_name[GW_MET_FCGI__MAX] = {
    [GW_MET_FCGI_MALFORMED] = "malformed",
    [GW_MET_FCGI_FOREIGN_ID] = "foreign_id",
    [GW_MET_FCGI_ORDER] = "out_of_order",
    [GW_MET_FCGI_MANAGEMENT] = "management",
    [GW_MET_FCGI_ABORTED] = "aborted",
    [GW_MET_FCGI_GONE] = "peer_gone",
    [GW_MET_FCGI_EXPIRED] = "expired",
};
_Static_assert(sizeof(fcgi_name) / sizeof(fcgi_name[0]) == GW_MET_FCGI__MAX,
               "every FastCGI rejection needs a name");

#define NCODE (GW_ERR__MAX + 1) /* the last: HSS's answer passed through */

struct gw_metrics {
	counter req[GW_MET_ROUTE__MAX][NSTATUS][NCODE];
	struct hist req_lat[GW_MET_ROUTE__MAX];
	counter decisions[GW_MET_DEC__MAX];
	counter up[GW_MET_API__MAX][NSTATUS];
	struct hist up_lat[GW_MET_API__MAX];
	counter coalesced, status_hits;
	counter audit_records, audit_failures;
	struct hist audit_sync;
	counter jwt[GW_MET_JWT__MAX];
	counter reloads[GW_MET_RESULT__MAX];
	counter fcgi_rejected[GW_MET_FCGI__MAX];
};

static void
inc(counter *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static unsigned long long
get(const counter *c)
{
	return atomic_load_explicit((counter *)c, memory_order_relaxed);
}

static void
observe(struct hist *h, const struct bounds *bd, int64_t us)
{
	size_t i;

	if (us < 0)
		us = 0;
	for (i = 0; i < bd->n && us > bd->us[i]; i++)
		;
	inc(&h->b[i]);
	atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)us,
	                          memory_order_relaxed);
}

const char *
gw_met_api_name(enum gw_met_api a)
{
	return (unsigned)a < GW_MET_API__MAX ? api_name[a] : "";
}

static size_t
status_slot(int status)
{
	size_t i;

	if (status == 0)
		return ST_ERROR;
	for (i = 0; i < NEXACT; i++)
		if (exact_status[i] == status)
			return i;
	if (status < 100 || status > 599)
		return ST_ERROR;
	return NEXACT + (size_t)(status / 100 - 1);
}

static void
status_label(size_t slot, char *buf, size_t cap)
{
	if (slot < NEXACT)
		snprintf(buf, cap, "%d", exact_status[slot]);
	else
		snprintf(buf, cap, "%s", class_label[slot - NEXACT]);
}

struct gw_metrics *
gw_metrics_new(void)
{
	return calloc(1, sizeof(struct gw_metrics));
}

void
gw_metrics_free(struct gw_metrics *m)
{
	free(m);
}

void
gw_metrics_request(struct gw_metrics *m, enum gw_met_route r, int status,
                   enum gw_err e, int passthrough, int64_t latency_us)
{
	size_t code = passthrough ? GW_ERR__MAX : (size_t)e;

	if (m == NULL || (unsigned)r >= GW_MET_ROUTE__MAX || code >= NCODE)
		return;
	inc(&m->req[r][status_slot(status)][code]);
	observe(&m->req_lat[r], &lat_bounds, latency_us);
}

void
gw_metrics_decision(struct gw_metrics *m, enum gw_met_decision d)
{
	if (m != NULL && (unsigned)d < GW_MET_DEC__MAX)
		inc(&m->decisions[d]);
}

void
gw_metrics_upstream(struct gw_metrics *m, const char *api, int status,
                    int64_t latency_us)
{
	size_t i;

	if (m == NULL || api == NULL)
		return;
	for (i = 0; i < GW_MET_API__MAX; i++)
		if (strcmp(api_name[i], api) == 0)
			break;
	if (i == GW_MET_API__MAX)
		return;
	inc(&m->up[i][status_slot(status)]);
	observe(&m->up_lat[i], &lat_bounds, latency_us);
}

void
gw_metrics_coalesced(struct gw_metrics *m)
{
	if (m != NULL)
		inc(&m->coalesced);
}

void
gw_metrics_status_cache_hit(struct gw_metrics *m)
{
	if (m != NULL)
		inc(&m->status_hits);
}

void
gw_metrics_audit_record(struct gw_metrics *m, int ok)
{
	if (m != NULL)
		inc(ok ? &m->audit_records : &m->audit_failures);
}

void
gw_metrics_audit_sync(void *arg, int64_t latency_us)
{
	struct gw_metrics *m = arg;

	if (m != NULL)
		observe(&m->audit_sync, &sync_bounds, latency_us);
}

void
gw_metrics_jwt(struct gw_metrics *m, enum gw_met_jwt r)
{
	if (m != NULL && (unsigned)r < GW_MET_JWT__MAX)
		inc(&m->jwt[r]);
}

void
gw_metrics_reload(struct gw_metrics *m, int ok)
{
	if (m != NULL)
		inc(&m->reloads[ok ? GW_MET_OK : GW_MET_FAILED]);
}

void
gw_metrics_fcgi_rejected(struct gw_metrics *m, enum gw_met_fcgi r)
{
	if (m != NULL && (unsigned)r < GW_MET_FCGI__MAX)
		inc(&m->fcgi_rejected[r]);
}

/* ---- the text format ------------------------------------------------ */

/* HELP text: backslash and newline escaped (the format's rule). */
static void
help_text(struct gw_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			gw_buf_puts(b, "\\\\");
		else if (*s == '\n')
			gw_buf_puts(b, "\\n");
		else
			gw_buf_add(b, s, 1);
	}
}

int
gw_met_label_value(struct gw_buf *b, const char *s)
{
	int rc = gw_buf_puts(b, "\"");

	for (; rc == 0 && *s != '\0'; s++) {
		if (*s == '\\')
			rc = gw_buf_puts(b, "\\\\");
		else if (*s == '"')
			rc = gw_buf_puts(b, "\\\"");
		else if (*s == '\n')
			rc = gw_buf_puts(b, "\\n");
		else
			rc = gw_buf_add(b, s, 1);
	}
	return rc == 0 ? gw_buf_puts(b, "\"") : rc;
}

void
gw_met_family(struct gw_buf *b, const char *name, const char *type,
              const char *help)
{
	gw_buf_printf(b, "# HELP %s ", name);
	help_text(b, help);
	gw_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void
labels_out(struct gw_buf *b, const char *const *labels)
{
	size_t i;

	if (labels == NULL || labels[0] == NULL)
		return;
	gw_buf_puts(b, "{");
	for (i = 0; labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
		gw_buf_printf(b, "%s%s=", i ? "," : "", labels[i]);
		gw_met_label_value(b, labels[i + 1]);
	}
	gw_buf_puts(b, "}");
}

void
gw_met_sample_u(struct gw_buf *b, const char *name, const char *const *labels,
                unsigned long long v)
{
	gw_buf_puts(b, name);
	labels_out(b, labels);
	gw_buf_printf(b, " %llu\n", v);
}

void
gw_met_sample(struct gw_buf *b, const char *name, const char *const *labels,
              double v)
{
	gw_buf_puts(b, name);
	labels_out(b, labels);
	/* Go's ParseFloat reads both; integers stay exact up to 2^53. */
	if (isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0)
		gw_buf_printf(b, " %.0f\n", v);
	else
		gw_buf_printf(b, " %.9g\n", v);
}

/*
 * A histogram's samples: cumulative buckets in increasing le, +Inf, _sum
 * and _count.  count is the +Inf bucket, summed from the same loads, so
 * the two agree even while requests add to it.
 */
static void
hist_out(struct gw_buf *b, const char *name, const char *lname,
         const char *lvalue, const struct hist *h, const struct bounds *bd)
{
	char bname[128], le[16];
	const char *labels[5];
	unsigned long long cum = 0, sum;
	size_t i, k = 0;

	if (lname != NULL) {
		labels[k++] = lname;
		labels[k++] = lvalue;
	}
	labels[k] = "le";
	labels[k + 1] = le;
	labels[k + 2] = NULL;
	snprintf(bname, sizeof(bname), "%s_bucket", name);
	for (i = 0; i <= bd->n; i++) {
		cum += get(&h->b[i]);
		snprintf(le, sizeof(le), "%s", i < bd->n ? bd->le[i] : "+Inf");
		gw_met_sample_u(b, bname, labels, cum);
	}
	labels[k] = NULL;
	sum = get(&h->sum_us);
	gw_buf_printf(b, "%s_sum", name);
	labels_out(b, labels);
	gw_buf_printf(b, " %llu.%06llu\n", sum / 1000000, sum % 1000000);
	snprintf(bname, sizeof(bname), "%s_count", name);
	gw_met_sample_u(b, bname, labels, cum);
}

static void
write_requests(const struct gw_metrics *m, struct gw_buf *b)
{
	char st[8];
	const char *labels[7] = {"route", NULL, "status", st,
	                         "code",  NULL, NULL};
	size_t r, s, c;
	unsigned long long v;

	gw_met_family(b, "hssgw_requests_total", "counter",
	              "Requests answered by hssgw, by route, HTTP status and "
	              "HSSGW error code (\"upstream\": HSS's answer passed "
	              "through).");
	for (r = 0; r < GW_MET_ROUTE__MAX; r++)
		for (s = 0; s < NSTATUS; s++)
			for (c = 0; c < NCODE; c++) {
				v = get(&m->req[r][s][c]);
				if (v == 0)
					continue;
				labels[1] = route_name[r];
				status_label(s, st, sizeof(st));
				labels[5] = c < GW_ERR__MAX
				                ? gw_err_code((enum gw_err)c)
				                : "upstream";
				gw_met_sample_u(b, "hssgw_requests_total",
				                labels, v);
			}
	gw_met_family(b, "hssgw_request_duration_seconds", "histogram",
	              "Time from a request's arrival at a worker to its "
	              "answer, by route.");
	for (r = 0; r < GW_MET_ROUTE__MAX; r++)
		hist_out(b, "hssgw_request_duration_seconds", "route",
		         route_name[r], &m->req_lat[r], &lat_bounds);
}

static void
write_upstream(const struct gw_metrics *m, struct gw_buf *b)
{
	char st[8];
	const char *labels[5] = {"api", NULL, "status", st, NULL};
	size_t a, s;
	unsigned long long v;

	gw_met_family(b, "hssgw_upstream_requests_total", "counter",
	              "Calls to HSS by API and HSS's HTTP status (\"error\": "
	              "no answer).");
	for (a = 0; a < GW_MET_API__MAX; a++)
		for (s = 0; s < NSTATUS; s++) {
			v = get(&m->up[a][s]);
			if (v == 0)
				continue;
			labels[1] = api_name[a];
			status_label(s, st, sizeof(st));
			gw_met_sample_u(b, "hssgw_upstream_requests_total",
			                labels, v);
		}
	gw_met_family(b, "hssgw_upstream_duration_seconds", "histogram",
	              "Duration of one call to HSS, by API.");
	for (a = 0; a < GW_MET_API__MAX; a++)
		hist_out(b, "hssgw_upstream_duration_seconds", "api",
		         api_name[a], &m->up_lat[a], &lat_bounds);
}

/* A counter family with one label over a fixed table: every row, 0 too. */
static void
labelled(struct gw_buf *b, const char *name, const char *help,
         const char *lname, const char *const *names, const counter *c,
         size_t n)
{
	const char *labels[3] = {lname, NULL, NULL};
	size_t i;

	gw_met_family(b, name, "counter", help);
	for (i = 0; i < n; i++) {
		labels[1] = names[i];
		gw_met_sample_u(b, name, labels, get(&c[i]));
	}
}

static void
single(struct gw_buf *b, const char *name, const char *help, const counter *c)
{
	gw_met_family(b, name, "counter", help);
	gw_met_sample_u(b, name, NULL, get(c));
}

void
gw_metrics_write(const struct gw_metrics *m, struct gw_buf *b)
{
	if (m == NULL)
		return;
	write_requests(m, b);
	labelled(b, "hssgw_policy_decisions_total",
	         "Policy decisions on requests, by effect.", "decision",
	         decision_name, m->decisions, GW_MET_DEC__MAX);
	write_upstream(m, b);
	single(b, "hssgw_coalesced_total",
	       "Exports answered with an identical earlier export's task "
	       "instead of a new HSS call.",
	       &m->coalesced);
	single(b, "hssgw_status_cache_hits_total",
	       "Task status answers served from the status cache.",
	       &m->status_hits);
	single(b, "hssgw_audit_records_total", "Audit records made durable.",
	       &m->audit_records);
	single(b, "hssgw_audit_failures_total",
	       "Audit records that could not be written (the request got "
	       "503).",
	       &m->audit_failures);
	gw_met_family(b, "hssgw_audit_sync_duration_seconds", "histogram",
	              "Duration of the audit trail's fdatasync, one per "
	              "group commit.");
	hist_out(b, "hssgw_audit_sync_duration_seconds", NULL, NULL,
	         &m->audit_sync, &sync_bounds);
	labelled(b, "hssgw_jwt_verifications_total",
	         "Bearer tokens checked, by result.", "result", jwt_name,
	         m->jwt, GW_MET_JWT__MAX);
	labelled(b, "hssgw_config_reloads_total",
	         "Configuration reloads (SIGHUP), by result.", "result",
	         result_name, m->reloads, GW_MET_RESULT__MAX);
	labelled(b, "hssgw_fcgi_rejected_total",
	         "FastCGI connections closed by the front before any worker "
	         "ran them, by reason.",
	         "reason", fcgi_name, m->fcgi_rejected, GW_MET_FCGI__MAX);
}

/* ---- process_* (Prometheus "Writing client libraries") ------------- */

/* Fields 14 (utime), 15 (stime), 22 (starttime), 23 (vsize), 24 (rss)
 * of /proc/self/stat (proc(5)); after the last ')', as comm may hold
 * spaces and parentheses.  0 or -1. */
static int
self_stat(unsigned long long f[25])
{
	char buf[1024], *p, *end;
	size_t n;
	int i;
	FILE *fp = fopen("/proc/self/stat", "re");

	if (fp == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ' || p[2] == '\0')
		return -1;
	p += 3; /* field 3, the state letter */
	p = strchr(p, ' ');
	for (i = 4; i <= 24 && p != NULL; i++) {
		f[i] = strtoull(p + 1, &end, 10);
		if (end == p + 1)
			return -1;
		p = *end == ' ' ? end : NULL;
	}
	return i == 25 ? 0 : -1;
}

/* The boot time, "btime" of /proc/stat, in seconds; 0 or -1. */
static int
boot_time(unsigned long long *bt)
{
	char line[256];
	long long v;
	int rc = -1;
	FILE *fp = fopen("/proc/stat", "re");

	if (fp == NULL)
		return -1;
	while (rc == -1 && fgets(line, sizeof(line), fp) != NULL) {
		if (strncmp(line, "btime ", 6) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		if (gw_strtonum(line + 6, 0, INT64_MAX, &v) == 0) {
			*bt = (unsigned long long)v;
			rc = 0;
		}
	}
	fclose(fp);
	return rc;
}

static long
open_fds(void)
{
	struct dirent *de;
	long n = 0;
	DIR *d = opendir("/proc/self/fd");

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

void
gw_metrics_write_process(struct gw_buf *b)
{
	unsigned long long f[25], bt;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds;
	struct rlimit rl;

	if (self_stat(f) == 0 && tck > 0 && page > 0) {
		gw_met_family(b, "process_cpu_seconds_total", "counter",
		              "Total user and system CPU time spent in "
		              "seconds.");
		gw_met_sample(b, "process_cpu_seconds_total", NULL,
		              (double)(f[14] + f[15]) / (double)tck);
		gw_met_family(b, "process_virtual_memory_bytes", "gauge",
		              "Virtual memory size in bytes.");
		gw_met_sample(b, "process_virtual_memory_bytes", NULL,
		              (double)f[23]);
		gw_met_family(b, "process_resident_memory_bytes", "gauge",
		              "Resident memory size in bytes.");
		gw_met_sample(b, "process_resident_memory_bytes", NULL,
		              (double)f[24] * (double)page);
		if (boot_time(&bt) == 0) {
			gw_met_family(b, "process_start_time_seconds", "gauge",
			              "Start time of the process since unix "
			              "epoch in seconds.");
			gw_met_sample(b, "process_start_time_seconds", NULL,
			              (double)bt + (double)f[22] / (double)tck);
		}
	}
	fds = open_fds();
	if (fds >= 0) {
		gw_met_family(b, "process_open_fds", "gauge",
		              "Number of open file descriptors.");
		gw_met_sample(b, "process_open_fds", NULL, (double)fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY) {
		gw_met_family(b, "process_max_fds", "gauge",
		              "Maximum number of open file descriptors.");
		gw_met_sample(b, "process_max_fds", NULL, (double)rl.rlim_cur);
	}
}
