/*
 * The server's internals: the snapshot, the gateway, the per-request state
 * and the stages every route shares (stages.c).  For the files of
 * gateway/server/ only: the rest of hssgw sees pipeline.h.
 */
#ifndef GW_STAGES_H
#define GW_STAGES_H

#include <pthread.h>
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
#include "tasks.h"
#include "translate.h"
#include "upstream.h"

struct json_object;

#define ACTION_EXPORT "hss:ExportImageBaseline"
#define RESP_MAX      (64 * 1024)

struct gw_snapshot {
	struct gw_config *conf;
	struct gw_jwt_keyset *keys;
	struct gw_pol_set *pol;
	struct gw_pol_set *shadow; /* evaluated and audited, never enforced */
	struct gw_cred **creds;    /* parallel to conf->creds */
	struct gw_audit *audit;
	int owns_audit; /* else borrowed from the gateway */
	unsigned refs;  /* requests holding it; gateway lock */
	/* tasks (docs/TASKS.md); under a gateway the budget, the caches
	 * and a random key belong to it (they survive reloads) */
	struct gw_task_key *tkey;
	struct gw_budget *budget;
	struct gw_cache *status_cache;
	struct gw_cache *coalesce; /* export key -> HSS's export answer */
	struct gw_flight *flight;  /* identical exports in the air */
	struct gw_shared *shared;  /* shared_state, or NULL (SHARED_STATE.md) */
	int tkey_borrowed;
	int tasks_borrowed;         /* budget and caches */
	struct gw_metrics *metrics; /* under a gateway, the gateway's */
	int metrics_borrowed;
};

struct gw_gateway {
	pthread_mutex_t lock;
	struct gw_snapshot *cur;
	struct gw_audit *audit;
	char *path;
	/* Outlive snapshots, so a reload neither refills the budget, empties
	 * the caches nor (without a key file) voids every handle. */
	struct gw_task_key *rkey; /* the random key, when one was drawn */
	struct gw_budget *budget;
	struct gw_cache *status_cache;
	struct gw_cache *coalesce;
	struct gw_flight *flight;
	struct gw_shared *shared;
	long long budget_per_minute; /* the rate the budget was made with */
	struct gw_metrics *metrics;  /* outlives snapshots, like the budget */
};

struct gw_worker {
	struct gw_upstream *up;
};

/* What one request accumulates on its way through the stages. */
struct reqstate {
	const struct gw_snapshot *snap;
	const struct gw_http_req *req;
	struct gw_fault fault;
	struct gw_claims *claims;
	struct gw_export_req *xreq;
	struct gw_upreq *upreq;
	struct gw_upresp upresp;
	struct gw_pol_decision decision;
	struct gw_pol_decision shadow;
	const char *stmt_files[GW_POL_DECIDING_MAX];
	const char *stmt_sids[GW_POL_DECIDING_MAX];
	int decided;
	const char *action; /* NULL when the route is unknown */
	char token_fp[17];  /* fingerprint of the bearer token */
	int intent;         /* the intent record is on disk */
	char resource[512];
	char cred_fp[17];
	const char *cred_name;
	char *up_error_code;
	char *task_id;
	long long record_total_num;
	int64_t t_start, lat_auth, lat_policy, lat_upstream;
	int passthrough;          /* answer with HSS's own status and body */
	const char *task_project; /* tasks: the project alias of the handle */
	int64_t retry_after_s;    /* > 0: answer with Retry-After */
	int retries;              /* HSS 429s retried */
	int coalesced;            /* the export answer is an earlier one's */
	int cached;               /* the status answer came from the cache */
	char *coalesce_key;       /* project and redacted request, or NULL */
	int flight_lead;          /* leads the single flight of coalesce_key */
	/* shared_state: the claim on coalesce_key, the budget's grant */
	char claim[GW_SHARED_TOKEN_MAX + 1];
	char grant[GW_SHARED_GRANT_MAX + 1];
	uint64_t local_id; /* the local budget granted: refund, done; 0: not */
	/* tasks: the creator named by the handle (borrowed from taskq) */
	const char *task_iss, *task_sub;
	/* hss:ActForSubject, evaluated when the caller is not the creator */
	struct gw_pol_decision actfor;
	int acted_for;
	/* why the token was refused: audited, never told the caller */
	char auth_error[256];
	/* every upstream attempt (gw_pipe_attempt), for the outcome record */
	struct gw_audit_attempt attempts[GW_AUDIT_ATTEMPTS_MAX];
	char *attempt_codes[GW_AUDIT_ATTEMPTS_MAX];
	size_t nattempts;
	const char *api; /* the budget's API of the HSS call (metrics) */
};

/* The stages (stages.c), shared by every handler; see each definition. */
void gw_pipe_resp_header(struct gw_http_resp *, const char *name,
                         const char *value);
void gw_pipe_set_body(struct gw_http_resp *, struct gw_buf *);
void gw_pipe_answer_error(const struct gw_http_req *, const struct gw_fault *,
                          struct gw_http_resp *);
const char *gw_pipe_bearer(const char *authorization);
enum gw_err gw_pipe_authenticate(struct reqstate *);
struct gw_cred *gw_pipe_cred_for(const struct gw_snapshot *,
                                 const struct gw_conf_project *);
char *gw_pipe_find_error_code(struct json_object *);
void gw_pipe_reqstate_init(struct reqstate *, const struct gw_snapshot *,
                           const struct gw_http_req *, const char *action);
int64_t gw_pipe_now(const struct reqstate *);
enum gw_err gw_pipe_audit_intent(struct reqstate *);
enum gw_err gw_pipe_audit(struct reqstate *, const struct gw_http_resp *);
void gw_pipe_answer_unaudited(struct reqstate *, struct gw_http_resp *);
int64_t gw_pipe_retry_after_of(const struct gw_upresp *);
enum gw_err gw_pipe_throttled(struct reqstate *, int attempt, const char *api);
void gw_pipe_attempt(struct reqstate *, int64_t latency_us);
void gw_pipe_reqstate_reset(struct reqstate *);
enum gw_err gw_pipe_budget_take(struct reqstate *, const char *cred,
                                const char *api);
/* Gives back the call gw_pipe_budget_take took when nothing was sent. */
void gw_pipe_budget_refund(struct reqstate *, const char *cred,
                           const char *api);
/* The call gw_pipe_budget_take took has completed (it was sent). */
void gw_pipe_budget_done(struct reqstate *, const char *cred, const char *api);
/* The caches (status, coalesced exports): local, then shared_state. */
char *gw_pipe_cache_get(struct reqstate *, struct gw_cache *, const char *ns,
                        const char *key);
void gw_pipe_cache_put(struct reqstate *, struct gw_cache *, const char *ns,
                       const char *key, const char *value, int64_t ttl_ms,
                       int add_only);

#endif
