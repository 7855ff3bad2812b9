/*
 * Shared state across instances (issue #14, docs/SHARED_STATE.md): the
 * upstream budget's sliding window and fair shares as one atomic script
 * on Redis (or Valkey) with Redis's clock, the coalesced export answers
 * and claims, and the status cache, so several hssgw instances spend one
 * HSS budget.  When Redis is slow or down the module says so (-1 from
 * every call, at most one probe a second) and the caller falls back to
 * its local budget of budget / expected_instances.  Thread-safe: a pool
 * of connections, one per worker.  Keys and values are copied; cache
 * keys are hashed, so nothing a caller sends reaches Redis as a key.
 * Nothing secret may be put in (callers key by the redacted request).
 */
#ifndef GW_SHARED_H
#define GW_SHARED_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define GW_SHARED_GRANT_MAX 64 /* a grant's id, for a refund */
#define GW_SHARED_TOKEN_MAX 64 /* a claim's token */

struct gw_shared;

/*
 * A client for conf's shared_state, or NULL with a reason (bad password
 * file, ENOMEM).  Connects lazily: a Redis that is down at start makes a
 * degraded instance, not a failed start.  pool: how many threads call at
 * once (the worker count, plus one for the health probe).
 */
struct gw_shared *gw_shared_new(const struct gw_config *, size_t pool,
                                char *err, size_t errlen);
/* Frees the client and wipes its password; accepts NULL. */
void gw_shared_free(struct gw_shared *);

/*
 * Takes one call from bucket for caller with Redis's clock: at most
 * per_minute grants in any hold_ms, each caller at most
 * ceil(per_minute / callers seen in the last window_ms).  0 when granted
 * (grant names it, for gw_shared_budget_refund); 1 when refused, with
 * *retry_ms (>= 1) until the grant that blocks leaves the window; -1
 * when Redis cannot answer: degraded (gw_shared_degraded: the caller
 * falls back), or, rarely, every pooled connection busy (refuse).  With
 * Sentinels, 1 also for hold_ms after this instance lost a master that
 * failed over (the new one may lack the last grants).
 */
int gw_shared_budget_take(struct gw_shared *, const char *bucket,
                          const char *caller, long long per_minute,
                          int64_t hold_ms, int64_t window_ms, int64_t now_ms,
                          int64_t *retry_ms,
                          char grant[GW_SHARED_GRANT_MAX + 1]);
/* Gives back a grant when nothing was sent with it; best effort. */
void gw_shared_budget_refund(struct gw_shared *, const char *bucket,
                             const char *caller, const char *grant,
                             int64_t now_ms);
/*
 * The call of grant has completed (answer, error or timeout): the grant
 * now counts hold_ms from Redis's time (gw_budget_done's rule, with the
 * clock that granted it).  Best effort within the usual timeouts: a
 * grant gone or refunded, or a Redis that is down (degraded: the local
 * budget takes over), changes nothing.
 */
void gw_shared_budget_done(struct gw_shared *, const char *bucket,
                           const char *caller, const char *grant,
                           int64_t hold_ms, int64_t now_ms);

/*
 * While degraded: 0 when the local fallback budget may grant, 1 during
 * the first hold_ms after Redis was lost (other instances may have spent
 * the window through Redis just before), with *retry_ms until then.
 */
int gw_shared_fallback(struct gw_shared *, int64_t hold_ms, int64_t now_ms,
                       int64_t *retry_ms);
/*
 * 1 when a grant must also pass the local fallback budget: while
 * degraded and for hold_ms after Redis came back (Redis may have lost the
 * grants, and the local ones of every instance are not in Redis).
 */
int gw_shared_armed(struct gw_shared *, int64_t hold_ms, int64_t now_ms);

/*
 * The value under (ns, key), as a copy the caller frees; NULL when absent,
 * on error or while degraded.
 */
char *gw_shared_get(struct gw_shared *, const char *ns, const char *key,
                    int64_t now_ms);
/*
 * Stores value under (ns, key) for ttl_ms; with add_only an existing
 * value stays and 1 is returned.  0 stored, -1 on error or degraded.
 */
int gw_shared_put(struct gw_shared *, const char *ns, const char *key,
                  const char *value, int64_t ttl_ms, int add_only,
                  int64_t now_ms);
/*
 * Claims (ns, key) for ttl_ms (SET NX PX).  1 claimed, with token for the
 * release; 0 held by another; -1 on error or degraded.
 */
int gw_shared_claim(struct gw_shared *, const char *ns, const char *key,
                    int64_t ttl_ms, char token[GW_SHARED_TOKEN_MAX + 1],
                    int64_t now_ms);
/* Releases a claim if still ours (compare and delete); best effort. */
void gw_shared_release(struct gw_shared *, const char *ns, const char *key,
                       const char *token, int64_t now_ms);

/*
 * Pings Redis (when degraded, at most once a second) and returns 1 when
 * degraded, 0 when shared; for /healthz.
 */
int gw_shared_check(struct gw_shared *, int64_t now_ms);
/* 1 when degraded (the last call or probe failed), else 0. */
int gw_shared_degraded(struct gw_shared *);

#endif
