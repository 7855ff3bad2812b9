/*
 * Translation: the caller's simplified export request -> the exact HSS call
 * POST {endpoint}/v5/{project_id}/image/baseline/export.  Driven by one
 * static table of HSS fields (fields.c) taken from the API reference; the
 * same table validates, translates, checks HSS wire requests (for the
 * emulator) and generates the field documentation.  Never sees secrets.
 */
#ifndef GW_TRANSLATE_H
#define GW_TRANSLATE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gw.h"
#include "upreq.h"

/* A validated export request; ctx lists every set field as hss:<name>. */
struct gw_export_req {
	const struct gw_conf_project *project; /* borrowed from config */
	char *enterprise_project_id;           /* effective value */
	long long export_size;                 /* effective value */
	char *body;                            /* compact HSS body JSON */
	size_t bodylen;
	struct gw_kv *ctx; /* hss:project, hss:region, hss:<field>... */
	size_t nctx;
	void *priv; /* storage behind ctx */
};

/*
 * Parses and validates a simplified request body (JSON, UTF-8, capped by
 * the caller).  On failure fills the fault naming the field and the rule.
 */
enum gw_err gw_tr_parse(const struct gw_config *, const char *body, size_t len,
                        struct gw_export_req **out, struct gw_fault *);
/* Frees a parsed request; accepts NULL. */
void gw_tr_req_free(struct gw_export_req *);

/*
 * Builds the upstream request (method, url with query, region and
 * Content-Type headers, body) without credentials.  Caller frees.
 */
enum gw_err gw_tr_build(const struct gw_export_req *, struct gw_upreq **out,
                        struct gw_fault *);

/*
 * Checks an HSS wire request as real HSS would: the raw query string and
 * body of POST /v5/{project_id}/image/baseline/export.  Used by the
 * emulator.  On failure fills the fault naming the field and the rule.
 */
enum gw_err gw_tr_check_hss(const char *query, const char *body, size_t len,
                            struct gw_fault *);

/* A query parameter of an HSS URL, raw (unencoded); NULL value: left out. */
struct gw_tr_qparam {
	const char *name;
	const char *value;
};

/*
 * THE URL rule for every HSS API (docs/TASKS.md): the endpoint as config
 * load normalised it (no trailing '/'), then "/" and each path segment,
 * then "?" and name=value pairs joined by '&', every segment, name and
 * value percent-encoded by gw_pct_encode, the encoder the AK/SK signer
 * canonicalises with, so the URL sent and the URL signed cannot differ.
 * A segment that is empty, "." or ".." would change the path: refused
 * (GW_ERR_CONFIG naming what).  *out is the caller's to free.
 */
enum gw_err gw_tr_url(const char *endpoint, const char *const *segs,
                      size_t nsegs, const struct gw_tr_qparam *q, size_t nq,
                      char **out, struct gw_fault *);

/* The HSS task APIs (reference 2.1, 2.2). */
enum gw_tr_task_api {
	GW_TR_TASK_STATUS,   /* GET /v5/{project_id}/export-task/{task_id} */
	GW_TR_TASK_DOWNLOAD, /* GET /v5/{project_id}/download/{file_id} */
	GW_TR_TASK__MAX
};

/*
 * Builds the GET of a task API for id in project p under enterprise
 * project eps (NULL: none sent), with the region header and no
 * credentials, by gw_tr_url.  Caller frees *out.
 */
enum gw_err gw_tr_task_build(const struct gw_conf_project *p, const char *eps,
                             enum gw_tr_task_api, const char *id,
                             struct gw_upreq **out, struct gw_fault *);

/* Appends the field table as a Markdown table (for docs); 0 or -1. */
int gw_tr_fields_markdown(struct gw_buf *);

#endif
