/*
 * The route handlers, named only by the route table (routes.c).  Each
 * answers one route completely, audit record included.
 */
#ifndef GW_HANDLERS_H
#define GW_HANDLERS_H

#include "pipeline.h"

/* POST /v1/exports/image-baseline (export.c). */
void gw_pipe_handle_export(const struct gw_snapshot *, struct gw_worker *,
                           const struct gw_http_req *, struct gw_http_resp *);
/* GET /v1/exports/image-baseline/{handle} (task_routes.c). */
void gw_pipe_handle_task_status(const struct gw_snapshot *, struct gw_worker *,
                                const struct gw_http_req *,
                                struct gw_http_resp *);
/* GET /v1/exports/image-baseline/{handle}/file (task_routes.c). */
void gw_pipe_handle_task_file(const struct gw_snapshot *, struct gw_worker *,
                              const struct gw_http_req *,
                              struct gw_http_resp *);
/* GET /v1/whoami, what the caller's token may do (whoami.c). */
void gw_pipe_handle_whoami(const struct gw_snapshot *, struct gw_worker *,
                           const struct gw_http_req *, struct gw_http_resp *);
/* GET /metrics, the Prometheus scrape; not audited (scrape.c). */
void gw_pipe_handle_metrics(const struct gw_snapshot *, struct gw_worker *,
                            const struct gw_http_req *, struct gw_http_resp *);

#endif
