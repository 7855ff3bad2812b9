/*
 * The snapshot, the gateway that swaps snapshots and the per-worker state,
 * as the files of gateway/server/ see them (snapshot.c owns them; the rest
 * of hssgw sees the opaque types of pipeline.h), and the lookups that read
 * a snapshot.  Knows no request: stages.c and the handlers include this,
 * never the other way round.
 */
#ifndef GW_SNAPSHOT_H
#define GW_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>

#include "audit.h"
#include "budget.h"
#include "cache.h"
#include "config.h"
#include "cred.h"
#include "flight.h"
#include "jwtv.h"
#include "metrics.h"
#include "pipeline.h"
#include "policy.h"
#include "shared.h"
#include "ship.h"
#include "tasks.h"
#include "upstream.h"

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
	/* The gateway's watch on the shipper's cursor (audit.ship), borrowed;
	 * NULL: none (docs/AUDIT.md, "Fail closed") */
	const struct gw_ship_lag *shiplag;
};

struct gw_gateway {
	pthread_mutex_t lock;
	struct gw_snapshot *cur;
	atomic_ulong generation; /* bumped by each swap of cur */
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
	/* audit.ship at start (audit.* is read at start only), or NULL */
	struct gw_ship_lag *shiplag;
};

struct gw_worker {
	struct gw_upstream *up;
};

/* The credentials of a project of the snapshot's config (borrowed), or
 * NULL when the project has none. */
struct gw_cred *gw_snap_cred_get(const struct gw_snapshot *,
                                 const struct gw_conf_project *);

#endif
