/*
 * The server's internals: the per-request state and the stages every
 * route shares (stages.c); the snapshot's types are in snapshot.h.  For the
 * files of gateway/server/ only: the rest of hssgw sees pipeline.h.
 */
#ifndef GW_STAGES_H
#define GW_STAGES_H

#include <stdint.h>

#include "audit.h"
#include "budget.h"
#include "cache.h"
#include "claims.h"
#include "config.h"
#include "cred.h"
#include "flight.h"
#include "jwtv.h"
#include "metrics.h"
#include "pipeline.h"
#include "policy.h"
#include "shared.h"
#include "snapshot.h"
#include "tasks.h"
#include "translate.h"
#include "upstream.h"

struct json_object;

#define ACTION_EXPORT "hss:ExportImageBaseline"
#define RESP_MAX      (64 * 1024)

struct reqstate;

/*
 * A route's own context (nginx: a module's ctx): what only that route
 * knows, its fields of the audit record and its teardown.  The handler
 * holds the context; the request state points at it and calls these.
 */
struct gw_route_ops {
	/* Adds the route's fields to a record whose phase is set; or NULL. */
	void (*fill_rec)(struct reqstate *, void *ctx, struct gw_audit_rec *);
	/* Frees what ctx owns; called once, by gw_pipe_reqstate_reset. */
	void (*reset)(void *ctx);
};

/*
 * The core of one request: what it accumulates on its way through the
 * stages every route shares.  Owned by stages.c: gw_pipe_reqstate_init
 * starts it, gw_pipe_reqstate_reset frees everything it owns (marked
 * "owned") and the route's context with it; no handler frees a field.
 */
struct reqstate {
	const struct gw_snapshot *snap;
	const struct gw_http_req *req;
	struct gw_fault fault;
	struct gw_claims *claims; /* owned */
	struct gw_upreq *upreq;   /* owned */
	struct gw_upresp upresp;  /* owned */
	struct gw_pol_decision decision;
	struct gw_pol_decision shadow;
	const char *stmt_files[GW_POL_DECIDING_MAX];
	const char *stmt_sids[GW_POL_DECIDING_MAX];
	int decided;
	const char *action; /* NULL when the route is unknown */
	char token_fp[17];  /* fingerprint of the bearer token */
	int intent;         /* the intent record is on disk */
	char resource[512];
	const char *project; /* the project alias the request names */
	char cred_fp[17];
	const char *cred_name;
	char *up_error_code; /* owned */
	char *task_id;       /* owned */
	int64_t t_start, lat_auth, lat_policy, lat_upstream;
	int passthrough;       /* answer with HSS's own status and body */
	int64_t retry_after_s; /* > 0: answer with Retry-After */
	int retries;           /* HSS 429s retried */
	/* shared_state: the budget's grant */
	char grant[GW_SHARED_GRANT_MAX + 1];
	uint64_t local_id; /* the local budget granted: refund, done; 0: not */
	/* why the token was refused: audited, never told the caller */
	char auth_error[256];
	/* every upstream attempt (gw_pipe_attempt), for the outcome record */
	struct gw_audit_attempt attempts[GW_AUDIT_ATTEMPTS_MAX];
	char *attempt_codes[GW_AUDIT_ATTEMPTS_MAX]; /* owned */
	size_t nattempts;
	const char *api; /* the budget's API of the HSS call (metrics) */
	int wait_slot;   /* holds one of req->waiting (gw_pipe_wait_slot) */
	/* the route's context (gw_pipe_reqstate_route), or NULL */
	const struct gw_route_ops *route;
	void *route_ctx;
};

/* The stages (stages.c), shared by every handler; see each definition. */
void gw_pipe_resp_header(struct gw_http_resp *, const char *name,
                         const char *value);
void gw_pipe_set_body(struct gw_http_resp *, struct gw_buf *);
void gw_pipe_answer_error(const struct gw_http_req *, const struct gw_fault *,
                          struct gw_http_resp *);
const char *gw_pipe_bearer(const char *authorization);
enum gw_err gw_pipe_authenticate(struct reqstate *);
char *gw_pipe_find_error_code(struct json_object *);
/* Starts a request's state; gw_pipe_reqstate_reset ends it. */
void gw_pipe_reqstate_init(struct reqstate *, const struct gw_snapshot *,
                           const struct gw_http_req *, const char *action);
/* Attaches the route's context, which the reset tears down with it. */
void gw_pipe_reqstate_route(struct reqstate *, const struct gw_route_ops *,
                            void *ctx);
int64_t gw_pipe_now(const struct reqstate *);
enum gw_err gw_pipe_audit_intent(struct reqstate *);
enum gw_err gw_pipe_audit(struct reqstate *, struct gw_http_resp *);
void gw_pipe_answer_unaudited(struct reqstate *, struct gw_http_resp *);
int64_t gw_pipe_retry_after_of(const struct gw_upresp *);
enum gw_err gw_pipe_throttled(struct reqstate *, int attempt, const char *api);
void gw_pipe_attempt(struct reqstate *, int64_t latency_us);
/* The request's one teardown: the route's context, then all it owns. */
void gw_pipe_reqstate_reset(struct reqstate *);
enum gw_err gw_pipe_budget_take(struct reqstate *, const char *cred,
                                const char *api);
/* Gives back the call gw_pipe_budget_take took when nothing was sent. */
void gw_pipe_budget_refund(struct reqstate *, const char *cred,
                           const char *api);
/* The call gw_pipe_budget_take took has completed (it was sent). */
void gw_pipe_budget_done(struct reqstate *, const char *cred, const char *api);
/* A slot to wait on HSS, after the budget; GW_ERR_BUSY (refunded) if none. */
enum gw_err gw_pipe_wait_slot(struct reqstate *);
/* The caches (status, coalesced exports): local, then shared_state. */
char *gw_pipe_cache_get(struct reqstate *, struct gw_cache *, const char *ns,
                        const char *key);
void gw_pipe_cache_put(struct reqstate *, struct gw_cache *, const char *ns,
                       const char *key, const char *value, int64_t ttl_ms,
                       int add_only);

#endif
