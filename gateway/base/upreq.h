/*
 * The upstream request as plain data: what translation builds, what a
 * credential provider decorates (adding secret headers), what upstream
 * sends and what audit and "hssgw translate" print, secrets redacted.
 */
#ifndef GW_UPREQ_H
#define GW_UPREQ_H

#include <stddef.h>

#include "gw.h"

#define GW_UPREQ_HEADERS_MAX 16

struct gw_upreq {
	char method[8];
	char *url;
	struct gw_header headers[GW_UPREQ_HEADERS_MAX];
	size_t nheaders;
	char *body; /* may be NULL for no body */
	size_t bodylen;
	/* 1: body is JSON this gateway wrote, printed as is by gw_upreq_json */
	int body_json;
};

/* New empty request for method and url; NULL on allocation failure. */
struct gw_upreq *gw_upreq_new(const char *method, const char *url);
/* Frees a request, wiping secret header values; accepts NULL. */
void gw_upreq_free(struct gw_upreq *);
/* Adds (or replaces, by case-insensitive name) a header; 0 or -1. */
int gw_upreq_set_header(struct gw_upreq *, const char *name, const char *value,
                        int secret);
/* Borrowed header value by case-insensitive name, or NULL. */
const char *gw_upreq_header(const struct gw_upreq *, const char *name);
/*
 * Appends the request as a JSON object {"method","url","headers","body"} to
 * buf with every secret header value shown as "<redacted>".  The body is
 * embedded as is when body_json says the gateway wrote it, else as JSON
 * when it parses as JSON, else as a string.  0 or -1.
 */
int gw_upreq_json(const struct gw_upreq *, struct gw_buf *buf);

#endif
