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

/*
 * 1 when the n bytes at p hold a whole FastCGI request (up to its empty
 * FCGI_STDIN record), else 0 (fcgi_record.c).
 */
int gw_fcgi_stream_ended(const unsigned char *p, size_t n);

#endif
