/*
 * The FastCGI front: serves a loaded snapshot until SIGTERM or SIGINT.
 */
#ifndef GW_FCGI_H
#define GW_FCGI_H

#include <stddef.h>

struct gw_gateway;

/*
 * Serves until SIGTERM or SIGINT; SIGHUP reloads.  0 after a clean stop,
 * -1 with a reason.
 */
int gw_fcgi_serve(struct gw_gateway *, char *err, size_t errlen);

#endif
