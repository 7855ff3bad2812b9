/*
 * The FastCGI front's internals, shared by its three files and nothing
 * else: fcgi.c (the workers, the finisher, start and stop; the only
 * <fcgiapp.h> user), fcgi_front.c (the front thread: accept, the record
 * walk, the watchdog) and fcgi_queue.c (what they hand each other: the
 * queue, idle workers, kept connections, deferred answers' rooms).  The
 * calls go fcgi.c -> fcgi_front.c -> fcgi_queue.c and fcgi.c ->
 * fcgi_queue.c, never back.
 */
#ifndef GW_FCGI_INT_H
#define GW_FCGI_INT_H

#include <netinet/in.h>

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fcgi.h"
#include "gw.h"
#include "metrics.h"
#include "pipeline.h"

/* Connections read or queued by the front thread at once; more wait in the
 * kernel's backlog, never on a worker.  Large, so that a peer must hold
 * this many connections open, each cut after request_read_timeout_ms, to
 * delay anyone; descriptors beyond RLIMIT_NOFILE pause accepting (the
 * unit sets LimitNOFILE=4096). */
#define CONN_MAX 1024
/* A request is handed to a worker once its FastCGI stream has ended
 * (the empty FCGI_STDIN record) or this much of it is buffered: larger
 * bodies than a socket buffer holds are read by the worker, still under
 * the total read deadline. */
#define PEEK_MAX (32 * 1024)
/* The front thread's tick: deadlines are enforced this promptly.  Under
 * load it wakes far more often, and its watchdog scan runs at most every
 * WATCH_MS. */
#define TICK_MS  50
#define WATCH_MS 10

/*
 * Kept connections between requests take at most this much of the
 * front's table: the rest is always there for new connections.  Under
 * load nginx holds about one connection per request in flight (plus its
 * idle ones, keepalive 64), and closing one it still counts on is a 502
 * for a POST it sends on it next, so the cap sits well above what 512
 * concurrent clients need (bench/e2e.py measured 503s at 512 with a cap
 * of 512) and leaves 128 entries for new connections.
 */
#define KEPT_MAX (CONN_MAX - CONN_MAX / 8)
/*
 * The workers' queue: the front's requests (at most CONN_MAX with the
 * table and the deferred answers, room()) plus the answers the finisher
 * passes on because their socket was full, which come from the workers
 * (at most one each).
 */
#define QUEUE_MAX (CONN_MAX + GW_THREADS_MAX)
/* Free deferred answers kept for reuse. */
#define PARK_FREE_MAX 256
/* The eventfd's and the listener's marks in the epoll set. */
#define EV_LISTEN UINT64_MAX
#define EV_BACK   (UINT64_MAX - 1)

/*
 * A connection the front thread reads and a worker has yet to take: just
 * accepted, or kept (FCGI_KEEP_CONN) after a request, idle until the next
 * one begins.
 */
struct conn {
	int fd; /* -1: free */
	/* monotonic: read and taken by then.  From accept; for a kept
	 * connection, keepalive_timeout_ms from its last request until the
	 * next one's first byte, then request_read_timeout_ms from that
	 * byte: no request buys a fresh window. */
	int64_t deadline_ms;
	int complete; /* the FastCGI stream has ended */
	int peek_off; /* SO_PEEK_OFF: each peek returns only new bytes */
	int cut;      /* queued: shut down at its deadline */
	int kept;     /* served a request before: idle until walk.fed > 0 */
	struct gw_fcgi_walk walk; /* the records so far (fcgi_record.c) */
	int64_t queued_us;        /* when it was queued (gw_mono_us) */
	/* Not a request: a deferred answer whose socket was full, for a
	 * worker to send the rest of (under the send deadline). */
	struct parked *rest;
};

/*
 * A deferred answer (struct gw_deferred): the request was served, its
 * audit record is chained, and the answer waits here, framed, until the
 * finisher thread sees the record durable (gw_audit_wait) and sends it.
 * The worker meanwhile serves the next request: no worker waits for the
 * disk.  Owns fd.
 */
struct parked {
	struct parked *next;
	int fd;
	int keep;    /* kept (FCGI_KEEP_CONN) once the answer is out */
	unsigned id; /* the FastCGI request id */
	int sent;    /* finish: all of out went */
	struct gw_deferred d;
	struct gw_buf out; /* the answer's records (gw_fcgi_frame_answer) */
	size_t off;        /* sent so far */
};

/*
 * What the watchdog (the front thread) knows of one worker: the socket it
 * serves and when to shut it down.  The worker owns fd and closes it only
 * after clearing it here under the lock, so the watchdog never shuts down
 * a descriptor number the kernel has handed to someone else.
 */
struct slot {
	pthread_mutex_t lock;
	int fd;              /* -1: idle */
	int64_t deadline_ms; /* 0: none */
	int fired;
};

/*
 * A worker asleep in take: on the server's idle stack until woken by sem,
 * with a connection in mail (mailed) or to look again.  Part of the
 * worker (fcgi.c); the queue (fcgi_queue.c) hands it work.
 */
struct idler {
	sem_t sem;
	struct conn mail;
	int mailed;
	struct idler *next_idle, *next_woken;
};

struct server {
	struct gw_gateway *gw;
	struct gw_metrics *metrics; /* hssgw_fcgi_rejected_total */
	int listen_fd;
	int check_peer; /* TCP listener: peers must be in the allow-list */
	atomic_int stopping;
	int64_t read_ms, send_ms, idle_ms;
	/* listen_allow, as addresses (IPv4 in IPv6-mapped form) */
	struct in6_addr *allow;
	size_t nallow;
	/* requests read in full (or far enough), for the workers */
	pthread_mutex_t qlock;
	struct conn q[QUEUE_MAX];
	size_t qhead, qlen;
	int qclosed;        /* the front thread has stopped: drain, then exit */
	struct idler *idle; /* workers asleep, the last to sleep on top */
	/* Deferred answers (under qlock): waiting for the finisher, their
	 * count (the front's room() counts them), the finisher's wake-up,
	 * and a free list. */
	struct parked *park_head, *park_tail;
	size_t nparked;
	pthread_cond_t pcond;
	int finisher_idle; /* asleep on pcond: a new answer signals it */
	int pstop;         /* the workers are gone: finish, then exit */
	struct parked *pfree;
	size_t npfree;
	/* the front thread's connections being read (front thread only) */
	struct conn pend[CONN_MAX];
	size_t npend;
	size_t nidle; /* kept entries of pend with no byte of a request yet */
	/* Kept connections the workers hand back (under qlock), and the
	 * eventfd that wakes the front for them. */
	int back[CONN_MAX];
	size_t nback;
	int back_efd;
	/* "listen": "systemd": kept connections go to systemd's file
	 * descriptor store on the way out, and come back from it (inherit)
	 * to the next process, which serves them on. */
	int fdstore;
	int inherit[KEPT_MAX];
	size_t ninherit;
	struct slot *slots;
	size_t nslots;
	/* requests that may wait on HSS, and the cap (threads - reserve) */
	atomic_int waiting;
	int waiting_max;
	int peek_ok; /* front thread only: SO_PEEK_OFF works; -1: not known */
	int64_t last_log_s;     /* front thread only: one complaint a second */
	int64_t pause_until_ms; /* front thread only: out of descriptors */
};

/* fcgi_queue.c; "Called with qlock held" where it says so. */
int64_t fcgi_mono_ms(void);
void fcgi_slot_set(struct slot *, int fd, int64_t deadline_ms);
void fcgi_slot_deadline(struct slot *, int64_t deadline_ms);
struct idler *fcgi_deliver(struct server *, const struct conn *);
void fcgi_wake_idle(struct server *);
void fcgi_park_free(struct server *, struct parked *);
struct parked *fcgi_park(struct server *, struct parked *);
void fcgi_to_store(struct server *, int fd);
void fcgi_retire(struct server *, int fd);
void fcgi_give_back(struct server *, int fd);
void fcgi_complain(struct server *, const char *what, const char *detail);
void fcgi_rejected(struct server *, const struct gw_fcgi_walk *);
int fcgi_queue_empty(struct server *);
int fcgi_room(struct server *);

/* fcgi_front.c: the front thread's body (arg: the struct server). */
void *fcgi_front(void *arg);

#endif
