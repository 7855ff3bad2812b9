/*
 * Single flight of identical exports: the first of several identical
 * requests leads, the others wait for it to land (in-process), then find
 * its answer in the coalescing cache (cache.h).  Thread-safe; keys are
 * any bytes, only their SHA-256 digests are kept.
 */
#ifndef GW_FLIGHT_H
#define GW_FLIGHT_H

#include <stdint.h>

#include "gw.h"

/* Single flight: what gw_flight_join tells its caller. */
enum gw_flight_rc {
	GW_FLIGHT_LEAD,    /* no identical flight: go, then gw_flight_land */
	GW_FLIGHT_LANDED,  /* an identical flight ended: look for its answer */
	GW_FLIGHT_TIMEOUT, /* it is still flying after wait_ms */
	GW_FLIGHT_NONE     /* no slot free: go alone, do not land */
};

/* At most this many distinct flights at once; more go alone. */
#define GW_FLIGHT_SLOTS 256

struct gw_flight;

/* A flight table (thread-safe; monotonic clock); NULL on ENOMEM. */
struct gw_flight *gw_flight_new(void);
/* Frees a table no thread uses any more; accepts NULL. */
void gw_flight_free(struct gw_flight *);
/*
 * Joins the flight of key (any bytes; only its SHA-256 is kept): leads
 * one if none is in the air, else waits at most wait_ms for it to land.
 */
enum gw_flight_rc gw_flight_join(struct gw_flight *, const char *key,
                                 int64_t wait_ms);
/* Ends the flight of key that gw_flight_join let this caller lead. */
void gw_flight_land(struct gw_flight *, const char *key);

#endif
