/*
 * The FastCGI front: accepts, reads each request's FastCGI stream and
 * hands it to worker threads that serve it (fcgi.c, fcgi_record.c).  The
 * daemon (daemon.h) starts and stops it.
 */
#ifndef GW_FCGI_H
#define GW_FCGI_H

#include <stddef.h>

struct gw_gateway;
/* A running front: its listener, front thread and worker threads. */
struct gw_fcgi;

/*
 * Opens the configured listener and starts the worker threads and the
 * front thread, which inherit the caller's signal mask (block the signals
 * first).  *threads is the number of workers started.  NULL with a
 * reason; the caller owns the result (gw_fcgi_stop).
 */
struct gw_fcgi *gw_fcgi_start(struct gw_gateway *, size_t *threads, char *err,
                              size_t errlen);
/* Stops accepting, lets the workers finish what is queued, frees; NULL ok. */
void gw_fcgi_stop(struct gw_fcgi *);

/*
 * 1 when the n bytes at p hold a whole FastCGI request (up to its empty
 * FCGI_STDIN record), else 0 (fcgi_record.c).
 */
int gw_fcgi_stream_ended(const unsigned char *p, size_t n);

#endif
