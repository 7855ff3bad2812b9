/*
 * Upstream budget: what keeps hssgw inside HSS's documented limit of 5
 * calls per minute per user and per API (hss-api-notes.md section 6).
 * A sliding-window log per (credentials entry, API) grants at most
 * per_minute calls in any 60-second window; within a bucket each caller
 * (a subject, or a claim such as team) gets a fair share:
 * ceil(per_minute / callers seen in the last minute) calls a minute, so
 * one busy pipeline cannot starve the rest.
 * The caches that also save budget are cache.h.  Thread-safe (one
 * mutex); time is passed in (now_ms), so tests drive the clock.
 */
#ifndef GW_BUDGET_H
#define GW_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "gw.h"

#define GW_BUDGET_WINDOW_MS 60000 /* "per minute" */
/*
 * HSS counts a call when it arrives, some time after hssgw granted it
 * (the intent record's fdatasync, the TLS handshake of a fresh
 * connection) and before the call completed.  A grant is therefore held
 * from the grant until a window after the call's completion
 * (gw_budget_done moves its time there), which covers HSS's minute
 * whatever the latency.  The margin is only for what is left: hssgw's
 * and HSS's clocks differ by a little, so a window measured here may end
 * a little before HSS's.  (A call still in flight a whole hold after its
 * grant stops counting until it completes; its request left within
 * upstream.connect_timeout_ms, 3 s by default, so HSS counted it long
 * before.)
 */
#define GW_BUDGET_MARGIN_MS  2000
#define GW_BUDGET_HOLD_MS    (GW_BUDGET_WINDOW_MS + GW_BUDGET_MARGIN_MS)
#define GW_BUDGET_BUCKETS    256 /* (credentials, API) pairs */
#define GW_BUDGET_CALLERS    64  /* callers tracked per bucket */
#define GW_BUDGET_PER_MINUTE 600 /* HSS's total per API (section 6) */

struct gw_budget;

/* The length of gw_budget_caller_key's key, in hex digits. */
#define GW_BUDGET_CALLER_KEY_LEN 64

/*
 * The fair-share key of a caller: the hex SHA-256 of issuer, a NUL and
 * who (a subject or a claim value), so callers of any length stay apart
 * (cutting "iss sub" at 255 bytes merged two long subjects with a common
 * prefix into one share, issue 21) and none is longer than a key may be.
 * 0, or -1 with out empty.
 */
int gw_budget_caller_key(const char *iss, const char *who,
                         char out[GW_BUDGET_CALLER_KEY_LEN + 1]);

/* A budget of per_minute (1..600) calls per bucket; NULL on bad input. */
struct gw_budget *gw_budget_new(long long per_minute);
/* Frees a budget; accepts NULL. */
void gw_budget_free(struct gw_budget *);
/*
 * Takes one call from bucket (e.g. "main|export") for caller at now_ms.
 * 0 when granted; -1 when per_minute grants already lie in the last
 * GW_BUDGET_HOLD_MS or the caller used its share, with *retry_ms (>= 1)
 * until the oldest of those grants leaves that window.  A full bucket table
 * also refuses (retry after a window).  A grant counts GW_BUDGET_HOLD_MS
 * from now_ms, or from its call's completion once gw_budget_done moved it
 * there (gw_budget_take_id names the grant for that).
 */
int gw_budget_take(struct gw_budget *, const char *bucket, const char *caller,
                   int64_t now_ms, int64_t *retry_ms);
/* gw_budget_take, and when granted *grant (>= 1) names the grant. */
int gw_budget_take_id(struct gw_budget *, const char *bucket,
                      const char *caller, int64_t now_ms, int64_t *retry_ms,
                      uint64_t *grant);
/*
 * The call of grant (from gw_budget_take_id for bucket and caller) has
 * completed at now_ms (an answer, an error or a timeout: anything once
 * the request may have left): the grant now counts until
 * GW_BUDGET_HOLD_MS after now_ms, never less than before.  Does nothing
 * when the grant is gone (refunded, or its slot reused after it left
 * the window) or unknown.
 */
void gw_budget_done(struct gw_budget *, const char *bucket, const char *caller,
                    uint64_t grant, int64_t now_ms);

/*
 * Gives back the latest call caller took from bucket, when nothing was
 * sent with it (an export whose intent record could not be written):
 * its grant no longer counts against the caller's share and the bucket
 * gets its token back.  Does nothing when there is no such grant.
 */
void gw_budget_refund(struct gw_budget *, const char *bucket,
                      const char *caller);

/*
 * Counts one call refused for bucket (for the metrics), by this budget or
 * by the shared one (docs/SHARED_STATE.md), so the count covers both.
 */
void gw_budget_refused(struct gw_budget *, const char *bucket);
/*
 * Reads bucket without taking from it (for the metrics): the calls it
 * could still grant at now_ms (*left, ignoring fair shares; this
 * instance's own budget, which with shared_state is the degraded-mode
 * one) and the refusals counted by gw_budget_refused (*refused).  A bucket
 * never used has all per_minute left and 0 refused.
 */
void gw_budget_peek(struct gw_budget *, const char *bucket, int64_t now_ms,
                    long long *left, unsigned long long *refused);

#endif
