/*
 * Two small TTL caches that save upstream budget (budget.h): identical
 * exports within a window share one task (coalescing) and status answers
 * are reused for a while.  Thread-safe (one mutex each); time is passed
 * in (now_ms), so tests drive the clock.  Keys and values are copied;
 * nothing secret may be put in (callers key by the redacted request).
 */
#ifndef GW_CACHE_H
#define GW_CACHE_H

#include <stdint.h>

#define GW_CACHE_ENTRIES   256
#define GW_CACHE_KEY_MAX   65536
#define GW_CACHE_VALUE_MAX 65536

struct gw_cache;

/* A cache of at most GW_CACHE_ENTRIES entries; NULL on ENOMEM. */
struct gw_cache *gw_cache_new(void);
/* Frees a cache; accepts NULL. */
void gw_cache_free(struct gw_cache *);
/*
 * The value cached under key and unexpired at now_ms, as a copy the
 * caller frees; NULL when absent, expired or on ENOMEM.
 */
char *gw_cache_get(struct gw_cache *, const char *key, int64_t now_ms);
/*
 * Caches a copy of value under key until now_ms + ttl_ms, replacing what
 * was there; when full, the entry nearest expiry goes.  0 or -1 (bounds,
 * ENOMEM).  With add_only, an unexpired entry is kept and 1 returned.
 */
int gw_cache_put(struct gw_cache *, const char *key, const char *value,
                 int64_t now_ms, int64_t ttl_ms, int add_only);

#endif
