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

/* Appends the field table as a Markdown table (for docs); 0 or -1. */
int gw_tr_fields_markdown(struct gw_buf *);

#endif
