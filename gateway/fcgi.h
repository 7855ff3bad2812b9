/*
 * The FastCGI front: serves a loaded snapshot until SIGTERM or SIGINT.
 */
#ifndef GW_FCGI_H
#define GW_FCGI_H

#include <stddef.h>

struct gw_snapshot;

/* Serves until a stop signal; 0 after a clean stop, -1 with a reason. */
int gw_fcgi_serve(const struct gw_snapshot *, char *err, size_t errlen);

#endif
