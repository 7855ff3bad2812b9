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

#define GW_FCGI_HEADER_LEN 8

/* Why the front closed a connection before any worker saw it
 * (hssgw_fcgi_rejected_total{reason}). */
enum gw_fcgi_reject {
	GW_FCGI_REJ_NONE,
	GW_FCGI_REJ_MALFORMED,  /* not version 1, or a bad BEGIN_REQUEST */
	GW_FCGI_REJ_FOREIGN_ID, /* a record of another request id */
	GW_FCGI_REJ_ORDER,      /* a record where the request has none */
	GW_FCGI_REJ_MANAGEMENT, /* a management record (request id 0) */
	GW_FCGI_REJ_ABORTED,    /* FCGI_ABORT_REQUEST: the peer gave up */
	GW_FCGI_REJ__MAX
};

/*
 * The state of one connection's record walk (fcgi_record.c): fed each
 * byte once, in order, from the connection's first.  Plain data, zeroed
 * by gw_fcgi_walk_init; owns nothing.
 */
struct gw_fcgi_walk {
	unsigned char hdr[GW_FCGI_HEADER_LEN]; /* a header being read */
	size_t hlen;                           /* its bytes held */
	size_t skip; /* content and padding left of this record */
	size_t fed;  /* bytes walked so far */
	size_t end;  /* with ended: where the request's records end */
	unsigned id; /* the BEGIN_REQUEST's request id */
	int stage;   /* fcgi_record.c's enum stage */
	int ended;   /* the empty FCGI_STDIN record (and padding) seen */
	enum gw_fcgi_reject reject; /* set once, then every walk fails */
};

void gw_fcgi_walk_init(struct gw_fcgi_walk *);
/*
 * Walks the next n bytes of the connection: 1 once the request's records
 * have all arrived (more bytes may follow and are still checked: only an
 * FCGI_ABORT_REQUEST or a stray record rejects), 0 while they are
 * incomplete, -1 once they broke the order (w->reject says how).
 */
int gw_fcgi_walk(struct gw_fcgi_walk *, const unsigned char *p, size_t n);
/* Bytes still to come before the walk can decide anything more. */
size_t gw_fcgi_walk_need(const struct gw_fcgi_walk *);
/* The metric label of a rejection ("foreign_id", ...); never NULL. */
const char *gw_fcgi_reject_name(enum gw_fcgi_reject);

/*
 * 1 when the n bytes at p hold a whole, well-ordered FastCGI request (up
 * to its empty FCGI_STDIN record), else 0 (fcgi_record.c).
 */
int gw_fcgi_stream_ended(const unsigned char *p, size_t n);

/*
 * Appends to out the whole answer to request id as FastCGI records: the n
 * bytes at p (the CGI head and body) in FCGI_STDOUT records, the empty
 * FCGI_STDOUT and FCGI_END_REQUEST (request complete, status 0): what
 * libfcgi's FCGX_Finish_r writes, for an answer sent later by another
 * thread (a deferred answer, fcgi.c).  0, or -1 on out's cap or a bad id.
 */
struct gw_buf;
int gw_fcgi_frame_answer(struct gw_buf *out, unsigned id, const void *p,
                         size_t n);

#endif
