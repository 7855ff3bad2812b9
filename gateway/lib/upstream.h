/*
 * Upstream: sends a gw_upreq with libcurl (the only module that includes
 * <curl/curl.h>).  One handle per worker thread so connections and TLS
 * sessions are reused, except by a POST (an export): it always gets a
 * connection of its own, so libcurl can never resend it on a new one.  TLS is
 * always verified, redirects never followed, responses capped.  Never logs
 * header values.
 */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include <stddef.h>

#include "config.h"
#include "gw.h"
#include "upreq.h"

struct gw_upstream;

/* The longest Retry-After (seconds) kept from an answer: a day. */
#define GW_UP_RETRY_AFTER_MAX 86400

struct gw_upresp {
	long status;
	char *body; /* NUL-terminated, may be empty */
	size_t bodylen;
	char *content_type; /* may be NULL */
	char *request_id;   /* HSS X-Request-Id, may be NULL */
	/* IAM's X-Subject-Token: a secret, wiped by gw_upresp_reset; or NULL */
	char *subject_token;
	int streamed; /* gw_up_stream: the 200 body went to the sink */
	/* Retry-After in seconds (1..GW_UP_RETRY_AFTER_MAX); 0: none/unusable
	 */
	long long retry_after_s;
	/* Cache-Control max-age in seconds; -1: none, 0: no-cache/no-store */
	long long max_age_s;
};

/*
 * A GET outside the HSS settings (an identity provider's discovery
 * document or JWKS): its own CA file, timeouts and size cap.
 */
struct gw_upget {
	const char *url;     /* https only */
	const char *ca_file; /* NULL: the system store */
	long long connect_timeout_ms, timeout_ms;
	long long max_bytes;
};

/*
 * Where gw_up_stream sends a 200 body, chunk by chunk, so a file is never
 * held whole.  head is called once before the first chunk (also for an
 * empty body) with HSS's Content-Type (NULL if none or unusable) and
 * Content-Length (-1 if not announced).  Either returns 0, or -1 to
 * abort the transfer (the caller went away).
 */
struct gw_upsink {
	int (*head)(void *arg, const char *content_type, long long length);
	int (*chunk)(void *arg, const void *data, size_t len);
	void *arg;
};

/* Process-wide libcurl setup; call once before threads start. 0 or -1. */
int gw_up_global_init(void);
/* A worker's upstream handle; NULL on failure. */
struct gw_upstream *gw_up_new(void);
/* Frees a handle; accepts NULL. */
void gw_up_free(struct gw_upstream *);
/*
 * Sends req and fills resp (caller frees with gw_upresp_reset).  Returns
 * GW_OK for any HTTP answer, GW_ERR_UPSTREAM_TIMEOUT, GW_ERR_UPSTREAM
 * (connect/TLS/drop) or GW_ERR_UPSTREAM_BAD (over the size cap).
 */
enum gw_err gw_up_send(struct gw_upstream *, const struct gw_config *,
                       const struct gw_upreq *, struct gw_upresp *,
                       struct gw_fault *);
/*
 * Like gw_up_send, but a 200 answer's body goes to sink instead of memory
 * (resp->streamed set), capped at max_bytes and bounded by timeout_ms
 * for the whole transfer; other statuses are kept in resp->body as
 * gw_up_send keeps them.  After the sink's head was called, a failure
 * still returns its error: the caller must abort what it started.
 */
enum gw_err gw_up_stream(struct gw_upstream *, const struct gw_config *,
                         const struct gw_upreq *, const struct gw_upsink *,
                         long long max_bytes, long long timeout_ms,
                         struct gw_upresp *, struct gw_fault *);
/*
 * Sends a GET as g describes (no redirect followed: a 3xx comes back as
 * the status), filling resp as gw_up_send does, plus max_age_s.
 */
enum gw_err gw_up_get(struct gw_upstream *, const struct gw_upget *g,
                      struct gw_upresp *, struct gw_fault *);
/* Frees what a response holds; accepts a zeroed response. */
void gw_upresp_reset(struct gw_upresp *);

#endif
