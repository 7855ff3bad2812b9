/*
 * Metrics: the process's counters and histograms, and the Prometheus text
 * exposition format (version 0.0.4) they are scraped in.  Every label
 * set is fixed by a static table indexed by an enum (route, status, error
 * code, API, decision, result), so recording is one relaxed atomic add
 * and never takes a lock; labels whose values come from the config
 * (credentials, projects, issuers) are written by the scraper from the
 * config it holds, never from a request.  No label ever holds a subject,
 * task id, path or anything else a caller chooses.  A leaf over base:
 * the server records into it; lib modules keep their own counts behind
 * accessors or hooks instead of calling it (docs/ARCHITECTURE.md).
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gw.h"

#define GW_MET_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define GW_MET_OUT_MAX      (1024 * 1024) /* one scrape */

/* hssgw_requests_total{route}: the rows of routes.c's table, and the rest. */
enum gw_met_route {
	GW_MET_ROUTE_EXPORT,
	GW_MET_ROUTE_TASK_STATUS,
	GW_MET_ROUTE_TASK_FILE,
	GW_MET_ROUTE_HEALTHZ,
	GW_MET_ROUTE_METRICS,
	GW_MET_ROUTE_OTHER, /* 404 and 405: no route matched */
	GW_MET_ROUTE__MAX
};

/* hssgw_upstream_*{api}: the budget's API names (stages.c). */
enum gw_met_api {
	GW_MET_API_EXPORT,
	GW_MET_API_EXPORT_TASK,
	GW_MET_API_DOWNLOAD,
	GW_MET_API__MAX
};

/* The API's name, as the budget and the api label spell it. */
const char *gw_met_api_name(enum gw_met_api);

enum gw_met_decision { GW_MET_DEC_ALLOW, GW_MET_DEC_DENY, GW_MET_DEC__MAX };

enum gw_met_jwt {
	GW_MET_JWT_OK,
	GW_MET_JWT_INVALID, /* refused: signature, expiry, issuer... */
	GW_MET_JWT_MISSING, /* no Bearer token at all */
	GW_MET_JWT__MAX
};

enum gw_met_result { GW_MET_OK, GW_MET_FAILED, GW_MET_RESULT__MAX };

/* hssgw_fcgi_rejected_total{reason}: FastCGI connections the front closed
 * before any worker ran them (server/fcgi.c). */
enum gw_met_fcgi {
	GW_MET_FCGI_MALFORMED,  /* not version 1, or a bad BEGIN_REQUEST */
	GW_MET_FCGI_FOREIGN_ID, /* a record of another request id */
	GW_MET_FCGI_ORDER,      /* a record out of the request's order */
	GW_MET_FCGI_MANAGEMENT, /* a management record (request id 0) */
	GW_MET_FCGI_ABORTED,    /* FCGI_ABORT_REQUEST */
	GW_MET_FCGI_GONE,       /* queued, and the peer closed meanwhile */
	GW_MET_FCGI_EXPIRED,    /* queued past request_read_timeout_ms */
	GW_MET_FCGI__MAX
};

struct gw_metrics;

/* A zeroed registry; NULL on ENOMEM. */
struct gw_metrics *gw_metrics_new(void);
/* Frees a registry; accepts NULL. */
void gw_metrics_free(struct gw_metrics *);

/*
 * Recording: each is lock-free and accepts a NULL registry (no metrics),
 * so unit tests and the CLI need none.  Out-of-range enums are ignored.
 */
/* One answer: its route, HTTP status and error (GW_OK for a success;
 * passthrough: HSS's own answer, code label "upstream"). */
void gw_metrics_request(struct gw_metrics *, enum gw_met_route, int status,
                        enum gw_err, int passthrough, int64_t latency_us);
void gw_metrics_decision(struct gw_metrics *, enum gw_met_decision);
/* One HSS call of api ("export", "export-task", "download"): HSS's
 * status, or 0 when none came (label "error"). */
void gw_metrics_upstream(struct gw_metrics *, const char *api, int status,
                         int64_t latency_us);
void gw_metrics_coalesced(struct gw_metrics *);
void gw_metrics_status_cache_hit(struct gw_metrics *);
/* One audit record made durable (ok) or refused (failed). */
void gw_metrics_audit_record(struct gw_metrics *, int ok);
/* The audit trail's group commit: how long one fdatasync took.  Has the
 * shape of gw_audit_set_sync_hook's callback. */
void gw_metrics_audit_sync(void *metrics, int64_t latency_us);
void gw_metrics_jwt(struct gw_metrics *, enum gw_met_jwt);
void gw_metrics_reload(struct gw_metrics *, int ok);
void gw_metrics_fcgi_rejected(struct gw_metrics *, enum gw_met_fcgi);

/*
 * Writing.  A scrape writes each family once: gw_met_family (HELP and
 * TYPE) then its samples.  labels are name/value pairs ending in NULL;
 * values are escaped (\\, \", \n).  Nothing here fails but the buffer's
 * cap, which sets its overflow flag.
 */
void gw_met_family(struct gw_buf *, const char *name, const char *type,
                   const char *help);
void gw_met_sample(struct gw_buf *, const char *name, const char *const *labels,
                   double value);
void gw_met_sample_u(struct gw_buf *, const char *name,
                     const char *const *labels, unsigned long long value);
/* Appends s as a label value between quotes, escaped; 0 or -1. */
int gw_met_label_value(struct gw_buf *, const char *s);

/* Every family the registry owns, with all its samples. */
void gw_metrics_write(const struct gw_metrics *, struct gw_buf *);
/* The process_* families, read from /proc now (each left out when it
 * cannot be read, rather than written wrong). */
void gw_metrics_write_process(struct gw_buf *);

#endif
