/*
 * Pipeline: runs one request through the stages in order (route, size,
 * authentication, validation, policy, translation, credentials, audit
 * readiness, upstream) and maps every outcome to one HTTP answer and one
 * audit record.  Knows nothing of FastCGI: the front hands it a plain
 * request and writes the plain response, so tests drive it directly.
 */
#ifndef GW_PIPELINE_H
#define GW_PIPELINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "config.h"
#include "gw.h"

/* Everything loaded at start: immutable and shared by worker threads. */
struct gw_snapshot;
/* Per-worker state (the upstream connection cache). */
struct gw_worker;

struct gw_http_req {
	const char *method;
	const char *path; /* DOCUMENT_URI: no query */
	const char *content_type;
	const char *authorization;
	const char *client_addr; /* set by nginx from $remote_addr */
	const char *request_id;  /* set by nginx from $request_id */
	const char *body;
	size_t bodylen;
	int body_too_large; /* the body passed max_body_bytes */
	int64_t now_ms;     /* the clock; tests set it */
	/* Requests that may wait on HSS now, and how many may (threads
	 * minus reserve_threads); NULL: no cap (tests, the CLI). */
	atomic_int *waiting;
	int waiting_max;
};

#define GW_RESP_HEADERS_MAX 8

struct gw_http_resp;

/*
 * How a handler streams a body too large to hold (downloads), provided
 * by the front.  head sends status and headers (and Content-Length when
 * length >= 0) once; body sends a chunk; abort cuts the answer short so
 * the client sees a truncated transfer, never a complete-looking one.
 * head and body return 0, or -1 when the client went away.
 */
struct gw_http_stream {
	int (*head)(void *ctx, const struct gw_http_resp *, long long length);
	int (*body)(void *ctx, const void *, size_t);
	void (*abort)(void *ctx);
	void *ctx;
};

/*
 * An answer whose audit record is chained but not yet on disk.  The front
 * may offer one (resp->defer) for gw_pipe_handle to fill; when it did
 * (resp->deferred), the front sends the answer only once gw_audit_wait
 * says the ticket's record is durable, and then calls
 * gw_pipe_deferred_done, which counts the request and, if the record was
 * lost, turns the answer into the unaudited 503.  Nothing is acknowledged
 * before its record is durable; the worker serves its next request
 * meanwhile.  Plain data, copied strings: it outlives the request.
 */
#define GW_DEFER_ID_MAX 128
struct gw_deferred {
	struct gw_audit *audit;
	struct gw_audit_ticket ticket;
	int route;       /* enum gw_met_route */
	int64_t t_start; /* gw_mono_us at the request's start */
	int status;
	enum gw_err err;
	char request_id[GW_DEFER_ID_MAX + 1]; /* "": none */
	char task_id[GW_DEFER_ID_MAX + 1];    /* "": none */
};

struct gw_http_resp {
	int status;
	struct gw_header headers[GW_RESP_HEADERS_MAX];
	size_t nheaders;
	char *body;
	size_t bodylen;
	/* Set by the front before gw_pipe_handle (may be NULL: no
	 * streaming); kept by gw_pipe_handle and gw_http_resp_reset. */
	const struct gw_http_stream *stream;
	int streamed; /* head was sent: the front writes nothing more */
	/* Set by the front (may be NULL: never deferred); kept like
	 * stream.  deferred: filled, the record is not yet durable. */
	struct gw_deferred *defer;
	int deferred;
	enum gw_err err; /* the error answered, GW_OK else (metrics) */
};

/*
 * Loads config, keys, policies and credentials and opens the audit trail
 * (unless open_audit is 0, for check-config).  NULL with a reason.
 */
struct gw_snapshot *gw_pipe_load(const char *config_path, int open_audit,
                                 char *err, size_t errlen);
/* Frees a snapshot; accepts NULL. */
void gw_pipe_free(struct gw_snapshot *);
/* The loaded config, borrowed. */
const struct gw_config *gw_pipe_config(const struct gw_snapshot *);

/*
 * The serving gateway: the current snapshot, swapped whole by a reload,
 * and the audit trail, which outlives snapshots so its records stay in
 * one sequence.  Requests in flight keep the snapshot they started with.
 */
struct gw_gateway;

/* Loads the first snapshot and opens the audit trail; NULL + reason. */
struct gw_gateway *gw_gateway_open(const char *config_path, char *err,
                                   size_t errlen);
/* Frees the gateway; no request may hold a snapshot.  Accepts NULL. */
void gw_gateway_free(struct gw_gateway *);
/*
 * Re-reads config, keys, policies and credentials off the request path and
 * swaps them in atomically.  On failure the old snapshot keeps serving and
 * -1 is returned with the reason.  listen, threads and the audit file are
 * read at start only.
 */
int gw_gateway_reload(struct gw_gateway *, char *err, size_t errlen);
/*
 * Reopens the audit file (SIGUSR1, after logrotate moved it) between two
 * records; the hash chain continues.  0, or -1 with the reason.
 */
int gw_gateway_audit_reopen(struct gw_gateway *, char *err, size_t errlen);
/* Once a second: the trail's lagging checkpoint and due summary. */
void gw_gateway_audit_tick(struct gw_gateway *);
/*
 * Once a second, with audit.ship: the shipper's cursor against the
 * trail.  1 while exports are refused for the lag (audit.ship.max_lag_s),
 * else 0; err holds why the cursor could not be read, or is empty.
 */
int gw_gateway_ship_tick(struct gw_gateway *, char *err, size_t errlen);
/* The gateway's metrics registry, for the front; borrowed, never NULL
 * once open. */
struct gw_metrics;
struct gw_metrics *gw_gateway_metrics(struct gw_gateway *);
/* The current snapshot, held until gw_gateway_release. */
const struct gw_snapshot *gw_gateway_acquire(struct gw_gateway *);
/* Bumped by every reload that swapped the snapshot: a caller that holds
 * one across requests acquires the new one when it changed. */
unsigned long gw_gateway_generation(struct gw_gateway *);
/* Releases a snapshot from gw_gateway_acquire. */
void gw_gateway_release(struct gw_gateway *, const struct gw_snapshot *);
/*
 * Fetches every project's first credential (IAM tokens) so readiness
 * reflects it.  Returns how many failed, the first reason in err.
 */
int gw_pipe_prime(const struct gw_snapshot *, int64_t now_ms, char *err,
                  size_t errlen);
/*
 * Fetches every JWKS issuer's key set that is due (docs/IDP.md), so
 * readiness reflects it.  Returns how many have no usable set, the first
 * reason in err.
 */
int gw_pipe_prime_keys(const struct gw_snapshot *, int64_t now_ms, char *err,
                       size_t errlen);
/*
 * What /healthz calls ready: NULL when the audit trail takes records,
 * every JWKS issuer has a usable key set and every project a credential;
 * else the reason ("audit", "jwks", "credentials"), static.
 */
const char *gw_pipe_unready(const struct gw_snapshot *, int64_t now_ms);
/* The policy revision a snapshot enforces (borrowed). */
const char *gw_pipe_revision(const struct gw_snapshot *);

/* A worker's state; NULL on failure. */
struct gw_worker *gw_pipe_worker_new(void);
/* Frees a worker; accepts NULL. */
void gw_pipe_worker_free(struct gw_worker *);

/*
 * A deferred answer's end (see struct gw_deferred), ok: its record is
 * durable.  Counts the request; when !ok, replaces resp with the
 * unaudited 503 (naming the request and the task HSS accepted, if any).
 * The metrics are the gateway's (gw_gateway_metrics): the answer may
 * outlive the snapshot it was made with.
 */
void gw_pipe_deferred_done(struct gw_metrics *, const struct gw_deferred *,
                           int ok, const char *why, struct gw_http_resp *resp);

/* Handles one request; always fills resp (caller resets it). */
void gw_pipe_handle(const struct gw_snapshot *, struct gw_worker *,
                    const struct gw_http_req *, struct gw_http_resp *);
/* Frees what a response holds; accepts a zeroed response. */
void gw_http_resp_reset(struct gw_http_resp *);

#endif
