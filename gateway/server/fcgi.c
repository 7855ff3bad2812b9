/*
 * The FastCGI front's workers: the only file that includes <fcgiapp.h>.
 * The front thread (fcgi_front.c) accepts on the listening socket (a unix
 * socket or TCP address from config, or the inherited fd 0 as spawn-fcgi
 * and systemd pass it), waits until a request's FastCGI stream has arrived
 * in the one record order a request has, and delivers it (fcgi_queue.c);
 * N worker threads hand each one to FCGX_Accept_r as an open ipcFd
 * (libfcgi never accepts or locks), turn FastCGI params into a
 * gw_http_req, run the pipeline and write the response, or park it for
 * the finisher thread, which sends it once its audit record is durable.
 * Reading a request and writing its answer have total deadlines, which
 * the front thread's watchdog enforces, so no peer of the socket can hold
 * a worker or block another.  Started and stopped by the daemon
 * (daemon.c), which owns signals, reloads and the once-a-second refresh.
 * Reads only the params nginx sets from trusted variables; never any
 * other caller-controlled header.
 */
/* F_DUPFD_CLOEXEC: Linux. */
#define _GNU_SOURCE
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "config.h"
#include "fcgi.h"
#include "fcgi_int.h"
#include "metrics.h"
#include "pipeline.h"
#include "sd.h"

#define HEAD_MAX (16 * 1024) /* a response head: our own headers only */
/* How long a worker waits on a kept connection for its next request
 * before handing it back to the front (linger). */
#define LINGER_MS 1
/*
 * A request queued this recently is served without first asking the
 * kernel whether its peer is still there (stale): nginx gives up after
 * seconds, not microseconds.
 */
#define FRESH_US 5000

/* One worker's request: libfcgi's state plus the watchdog slot. */
struct work {
	struct server *sv;
	struct slot *slot;
	struct gw_worker *w;
	FCGX_Request r;
	struct parked *park; /* offered to the pipeline (resp.defer) */
	struct idler idle;   /* asleep in take (fcgi_int.h) */
	int sem_up;
	/* Held across back-to-back requests while the gateway's generation
	 * stays; released before the worker sleeps. */
	const struct gw_snapshot *snap;
	unsigned long gen;
	int64_t send_left_ms; /* what is left of response_send_timeout_ms */
	unsigned char *buf;   /* PEEK_MAX: linger's peek */
};

/*
 * Writes to nginx are bounded in total (response_send_timeout_ms): a
 * reader that stops or trickles cannot keep the worker.  The deadline is
 * armed only while a write may block, so waiting for HSS between the
 * chunks of a download does not count.
 */
static void
send_begin(struct work *wk)
{
	fcgi_slot_deadline(wk->slot,
	                   fcgi_mono_ms() +
	                       (wk->send_left_ms > 0 ? wk->send_left_ms : 1));
}

static int
send_end(struct work *wk, int64_t t0)
{
	fcgi_slot_deadline(wk->slot, 0);
	wk->send_left_ms -= fcgi_mono_ms() - t0;
	return wk->send_left_ms > 0 ? 0 : -1;
}

static const char *
param(FCGX_Request *r, const char *name)
{
	return FCGX_GetParam(name, r->envp);
}

/*
 * Reads at most max bytes of body; *too_large is set when more was
 * announced or sent.  The rest is left to libfcgi, which drains it.  The
 * buffer is sized to CONTENT_LENGTH (a status poll's is 0), not to max:
 * a 64 KiB allocation per request made malloc consolidate its free lists
 * each time (perf, issue 23); a stream longer than announced is read on
 * up to max, as before.
 */
static char *
read_body(FCGX_Request *r, size_t max, size_t *len, int *too_large)
{
	const char *cl = param(r, "CONTENT_LENGTH");
	long long want = -1;
	size_t cap, got;
	char *buf, *nb;
	int n;

	*len = 0;
	*too_large = 0;
	if (cl != NULL && *cl != '\0' &&
	    gw_strtonum(cl, 0, 1LL << 40, &want) == -1)
		want = -1;
	if (want > 0 && (unsigned long long)want > max) {
		*too_large = 1;
		return NULL;
	}
	cap = want >= 0 ? (size_t)want : max;
	buf = malloc(cap + 2);
	if (buf == NULL)
		return NULL;
	n = FCGX_GetStr(buf, (int)cap + 1, r->in);
	got = n > 0 ? (size_t)n : 0;
	if (got > cap && cap < max) {
		/* More than announced: the rest, up to max and one more. */
		nb = realloc(buf, max + 2);
		if (nb == NULL) {
			free(buf);
			return NULL;
		}
		buf = nb;
		n = FCGX_GetStr(buf + got, (int)(max + 1 - got), r->in);
		if (n > 0)
			got += (size_t)n;
	}
	if (got > max) {
		*too_large = 1;
		got = 0;
	}
	buf[got] = '\0';
	*len = got;
	return buf;
}

static const char *
reason(int status)
{
	static const struct {
		int status;
		const char *text;
	} tab[] = {
	    {200, "OK"},
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {413, "Payload Too Large"},
	    {415, "Unsupported Media Type"},
	    {429, "Too Many Requests"},
	    {500, "Internal Server Error"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (tab[i].status == status)
			return tab[i].text;
	return "Status";
}

/* Streaming answers (downloads): headers now, the body chunk by chunk. */
/*
 * The CGI response head (Status, the headers, Content-Length when length
 * >= 0, the blank line) in one piece: formatted here, not with libfcgi's
 * FCGX_FPrintF, which is slow and knows no %lld.  0 or -1.
 */
static void
format_head(struct gw_buf *b, const struct gw_http_resp *resp, long long length)
{
	size_t i;

	gw_buf_printf(b, "Status: %d %s\r\n", resp->status,
	              reason(resp->status));
	for (i = 0; i < resp->nheaders; i++)
		gw_buf_printf(b, "%s: %s\r\n", resp->headers[i].name,
		              resp->headers[i].value);
	if (length >= 0)
		gw_buf_printf(b, "Content-Length: %lld\r\n", length);
	gw_buf_add(b, "\r\n", 2);
}

static int
put_head(FCGX_Stream *out, const struct gw_http_resp *resp, long long length)
{
	struct gw_buf b;
	int rc;

	gw_buf_init(&b, HEAD_MAX);
	format_head(&b, resp, length);
	rc = b.overflow || FCGX_PutStr(b.p, (int)b.len, out) != (int)b.len ? -1
	                                                                   : 0;
	gw_buf_reset(&b);
	return rc;
}

/*
 * A whole answer as the FastCGI records that carry it (head, body, end),
 * into p->out for the finisher.  0 or -1 (then nothing is deferred: the
 * caller answers as the record's own emitter would).
 */
static int
frame(struct parked *p, unsigned id, const struct gw_http_resp *resp)
{
	struct gw_buf cgi;
	int rc;

	gw_buf_init(&cgi, HEAD_MAX + resp->bodylen);
	format_head(&cgi, resp, (long long)resp->bodylen);
	if (resp->bodylen > 0)
		gw_buf_add(&cgi, resp->body, resp->bodylen);
	p->out.len = 0;
	p->out.overflow = 0;
	p->out.max = cgi.len + (cgi.len / 65535 + 3) * GW_FCGI_HEADER_LEN + 8;
	p->off = 0;
	rc = cgi.overflow ? -1
	                  : gw_fcgi_frame_answer(&p->out, id, cgi.p, cgi.len);
	gw_buf_reset(&cgi);
	return rc;
}

static int
stream_head(void *ctx, const struct gw_http_resp *resp, long long length)
{
	struct work *wk = ctx;
	int64_t t0 = fcgi_mono_ms();
	int rc;

	send_begin(wk);
	rc = put_head(wk->r.out, resp, length);
	return send_end(wk, t0) == -1 ? -1 : rc;
}

static int
stream_body(void *ctx, const void *p, size_t len)
{
	struct work *wk = ctx;
	const char *c = p;
	int64_t t0 = fcgi_mono_ms();
	int n, rc = 0;

	send_begin(wk);
	/* FCGX_PutStr takes an int: feed it in bounded pieces. */
	while (len > 0) {
		n = len > 65536 ? 65536 : (int)len;
		if (FCGX_PutStr(c, n, wk->r.out) != n) {
			rc = -1;
			break;
		}
		c += n;
		len -= (size_t)n;
	}
	return send_end(wk, t0) == -1 ? -1 : rc;
}

/*
 * Closing the connection before FCGI_END_REQUEST makes nginx see
 * "upstream prematurely closed" and cut the client's transfer, which
 * then falls short of its Content-Length: never a complete-looking file.
 */
static void
stream_abort(void *ctx)
{
	struct work *wk = ctx;

	shutdown(wk->r.ipcFd, SHUT_RDWR);
}

/*
 * Waits for a deferred answer's record and counts the request; a record
 * the trail lost turns resp into the unaudited 503.  1: it is durable.
 */
static int
deferred_end(struct server *sv, const struct gw_deferred *d,
             struct gw_http_resp *resp)
{
	char err[256];
	int ok;

	err[0] = '\0';
	ok = gw_audit_wait(d->audit, &d->ticket, err, sizeof(err)) == 0;
	gw_pipe_deferred_done(sv->metrics, d, ok, err, resp);
	return ok;
}

/* The snapshot for the worker's next request: the one it holds, unless a
 * reload swapped it since. */
static const struct gw_snapshot *
snapshot(struct work *wk)
{
	unsigned long gen = gw_gateway_generation(wk->sv->gw);

	if (wk->snap != NULL && wk->gen == gen)
		return wk->snap;
	if (wk->snap != NULL)
		gw_gateway_release(wk->sv->gw, wk->snap);
	wk->gen = gen;
	wk->snap = gw_gateway_acquire(wk->sv->gw);
	return wk->snap;
}

/*
 * Serves the request libfcgi read.  With ok_defer (the whole stream was
 * read, so nothing is left to wait for on the socket) the pipeline may
 * defer the answer: then 1, and wk->park holds it framed; else 0, the
 * answer was written.
 */
static int
serve_one(struct work *wk, int ok_defer)
{
	const struct gw_http_stream stream = {stream_head, stream_body,
	                                      stream_abort, wk};
	struct server *sv = wk->sv;
	FCGX_Request *r = &wk->r;
	const struct gw_snapshot *snap = snapshot(wk);
	const struct gw_config *conf = gw_pipe_config(snap);
	struct gw_http_req req;
	struct gw_http_resp resp;
	char *body = NULL;
	int64_t t0;
	int parked = 0;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	if (ok_defer && wk->park != NULL)
		resp.defer = &wk->park->d;
	req.method = param(r, "REQUEST_METHOD");
	req.path = param(r, "DOCUMENT_URI");
	req.content_type = param(r, "CONTENT_TYPE");
	req.authorization = param(r, "HTTP_AUTHORIZATION");
	/* Set by nginx from $remote_addr and $request_id, never headers. */
	req.client_addr = param(r, "HSSGW_CLIENT_ADDR");
	req.request_id = param(r, "HSSGW_REQUEST_ID");
	/* Still under the read deadline the worker armed at the start. */
	body = read_body(r, (size_t)conf->max_body_bytes, &req.bodylen,
	                 &req.body_too_large);
	fcgi_slot_deadline(wk->slot, 0);
	req.body = body != NULL ? body : "";
	req.now_ms = gw_now_ms();
	req.waiting = &sv->waiting;
	req.waiting_max = sv->waiting_max;
	resp.stream = &stream;
	gw_pipe_handle(snap, wk->w, &req, &resp);
	if (resp.deferred) {
		if (frame(wk->park, (unsigned)r->requestId, &resp) == 0) {
			parked = 1;
			goto out;
		}
		/* Cannot be framed: wait for the record here instead. */
		(void)deferred_end(sv, &wk->park->d, &resp);
	}
	if (resp.streamed)
		goto out;

	t0 = fcgi_mono_ms();
	send_begin(wk);
	if (put_head(r->out, &resp, (long long)resp.bodylen) == 0 &&
	    resp.bodylen > 0)
		FCGX_PutStr(resp.body, (int)resp.bodylen, r->out);
	(void)send_end(wk, t0);
out:
	gw_http_resp_reset(&resp);
	free(body);
	return parked;
}

/* The next connection to serve, or -1 once the front stopped and the
 * queue is empty (and no deferred answer is out). */
static int
take(struct work *wk, struct conn *c)
{
	struct server *sv = wk->sv;
	int rc = -1;

	pthread_mutex_lock(&sv->qlock);
	/* Stopping, the workers stay while deferred answers are out: one
	 * whose socket is full comes back to them. */
	while (sv->qlen == 0 && (!sv->qclosed || sv->nparked > 0)) {
		if (wk->snap != NULL) {
			/* Idle workers hold no snapshot: a reload frees
			 * the old one once its requests are done. */
			pthread_mutex_unlock(&sv->qlock);
			gw_gateway_release(sv->gw, wk->snap);
			wk->snap = NULL;
			pthread_mutex_lock(&sv->qlock);
			continue;
		}
		/* Idle, on top of the stack: the next request is handed to
		 * this worker directly (deliver), or it is woken to look
		 * again (wake_idle). */
		wk->idle.mailed = 0;
		wk->idle.next_idle = sv->idle;
		sv->idle = &wk->idle;
		pthread_mutex_unlock(&sv->qlock);
		while (sem_wait(&wk->idle.sem) == -1 && errno == EINTR)
			;
		if (wk->idle.mailed) {
			*c = wk->idle.mail;
			return 0;
		}
		pthread_mutex_lock(&sv->qlock);
	}
	if (sv->qlen > 0) {
		*c = sv->q[sv->qhead];
		sv->qhead = (sv->qhead + 1) % QUEUE_MAX;
		sv->qlen--;
		rc = 0;
	}
	pthread_mutex_unlock(&sv->qlock);
	return rc;
}

/*
 * Reads whatever is left on fd without waiting (at most 1 MiB: nginx
 * bounds a body well below); 1 if nothing is left unread, 0 if the caller
 * should fall back to libfcgi's lingering close.
 */
static int
drain(int fd)
{
	char trash[8192];
	ssize_t n;
	int i;

	for (i = 0; i < 128; i++) {
		n = recv(fd, trash, sizeof(trash), MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno == EAGAIN))
			return 1;
		if (n == -1 && errno != EINTR)
			return 0;
	}
	return 0;
}

/*
 * What the handler left of the request's body, read to its end so the
 * next request on a kept connection starts at a record boundary.  The
 * stream has ended (the front saw its empty FCGI_STDIN), so this reads
 * what is buffered and never waits; at most PEEK_MAX bytes.
 */
static int
finish_stdin(FCGX_Request *r)
{
	char trash[4096];
	size_t total = 0;
	int n;

	while ((n = FCGX_GetStr(trash, sizeof(trash), r->in)) > 0)
		if ((total += (size_t)n) > PEEK_MAX)
			return -1;
	return FCGX_GetError(r->in) == 0 ? 0 : -1;
}

/* A deferred answer's room, new; NULL: none (the worker then waits for
 * its records itself).  fcgi_park() hands out used ones. */
static struct parked *
park_new(void)
{
	struct parked *p = calloc(1, sizeof(*p));

	if (p != NULL) {
		gw_buf_init(&p->out, 0);
		p->fd = -1;
	}
	return p;
}

/*
 * One request on a connection.  libfcgi gets a duplicate of the socket
 * (FCGX_Accept_r reads from an open ipcFd without accept(2)); it may close
 * its copy on a protocol error, while the worker's copy keeps the number
 * valid for the watchdog until the slot is cleared.  1 when the
 * connection is kept for the next request (nginx's fastcgi_keep_conn
 * sets FCGI_KEEP_CONN, and the whole request was read): the caller hands
 * it back to the front; 0 when it is done and closed here; 2 when its
 * answer was deferred: the connection is the finisher's now.
 */
static int
serve_conn(struct work *wk, const struct conn *c)
{
	struct parked *p;
	int lfd, keep = 0;

	/*
	 * A whole stream reads without blocking: libfcgi reads the socket
	 * itself, with no watchdog slot armed while it may close it
	 * (FCGX_Accept_r does on a protocol error), and gets a copy only
	 * before FCGX_Finish_r, the other place it may close it.  A deferred
	 * answer, the common case, so costs no dup(2) and no close(2).  A
	 * stream still arriving is read from a copy under the accept-time
	 * deadline: no peer buys a fresh window by handing over early
	 * (issue 21).
	 */
	lfd = c->fd;
	if (!c->complete) {
		fcgi_slot_set(wk->slot, c->fd, c->deadline_ms);
		lfd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
		if (lfd == -1)
			goto out;
	}
	wk->r.ipcFd = lfd;
	/* FCGX_Accept_r first "finishes" the previous request, which would
	 * close an ipcFd not marked kept. */
	wk->r.keepConnection = 1;
	wk->send_left_ms = wk->sv->send_ms;
	if (FCGX_Accept_r(&wk->r) != 0) {
		if (lfd == c->fd) {
			wk->r.ipcFd = -1;
			return 0; /* libfcgi closed it */
		}
		goto out; /* libfcgi closed lfd */
	}
	if (lfd == c->fd)
		fcgi_slot_set(wk->slot, c->fd, c->deadline_ms);
	if (wk->park == NULL)
		wk->park = park_new();
	/* Deferred only when the stream was whole: nothing is left of it to
	 * wait for on the socket. */
	keep = serve_one(wk, c->complete);
	fcgi_slot_deadline(wk->slot, fcgi_mono_ms() + wk->sv->read_ms);
	/* Kept only at a record boundary: a stream the front saw end, read
	 * to its end.  Also while stopping: then it is retired. */
	if (wk->r.keepConnection)
		wk->r.keepConnection = c->complete && finish_stdin(&wk->r) == 0;
	if (keep) {
		/* libfcgi's request ends with nothing written: the finisher
		 * writes the whole answer once its record is durable. */
		p = wk->park;
		wk->park = NULL;
		p->fd = c->fd;
		p->id = (unsigned)wk->r.requestId;
		p->keep = wk->r.keepConnection;
		if (!p->keep)
			(void)drain(c->fd); /* then closed without lingering */
		FCGX_Free(&wk->r, 0);
		if (lfd != c->fd)
			close(lfd);
		wk->r.ipcFd = -1;
		fcgi_slot_set(wk->slot, -1, 0);
		wk->park = fcgi_park(wk->sv, p);
		return 2;
	}
	if (lfd == c->fd) {
		/* FCGX_Finish_r may close its ipcFd: a copy, so the number the
		 * watchdog knows stays ours. */
		lfd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
		if (lfd == -1) {
			FCGX_Free(&wk->r, 0);
			wk->r.ipcFd = -1;
			goto out;
		}
		wk->r.ipcFd = lfd;
	}
	/*
	 * Closing: libfcgi's close shuts down its side and then waits (up to
	 * 2 s) for nginx to close, so that no unread byte makes close(2)
	 * reset the peer.  A whole stream has nothing more to come: what the
	 * handler left unread is read now without waiting, and the
	 * connection is closed at once (nginx closes on FCGI_END_REQUEST
	 * anyway).
	 */
	if (!wk->r.keepConnection && c->complete && drain(lfd))
		wk->r.detached = 1;
	/* Writes FCGI_END_REQUEST; closes lfd unless kept (then ipcFd
	 * stays), draining the peer for up to 2 s when not detached. */
	FCGX_Finish_r(&wk->r);
	if (wk->r.ipcFd >= 0) {
		/* Left open only when kept: the worker's copy is the one. */
		close(wk->r.ipcFd);
		wk->r.ipcFd = -1;
		keep = 1;
	}
out:
	fcgi_slot_set(wk->slot, -1, 0);
	if (!keep)
		close(c->fd);
	return keep;
}

/*
 * Why a queued connection must not run, or GW_MET_FCGI__MAX: its deadline
 * passed, its peer has gone (nginx gave up at fastcgi_read_timeout, or
 * the client left and nginx closed), or it sent FCGI_ABORT_REQUEST.  An
 * export nobody waits for would spend HSS's budget for nothing.
 */
static enum gw_met_fcgi
stale(struct conn *c)
{
	struct pollfd pfd;
	unsigned char b[64];
	ssize_t n;

	if (fcgi_mono_ms() >= c->deadline_ms || c->cut)
		return GW_MET_FCGI_EXPIRED;
	if (gw_mono_us() - c->queued_us < FRESH_US)
		return GW_MET_FCGI__MAX;
	memset(&pfd, 0, sizeof(pfd));
	pfd.fd = c->fd;
	pfd.events = POLLIN | POLLRDHUP;
	if (poll(&pfd, 1, 0) != 1)
		return GW_MET_FCGI__MAX;
	if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))
		return GW_MET_FCGI_GONE;
	/* Bytes after a whole request: only the record walk's offset says
	 * where they start, so without SO_PEEK_OFF they are libfcgi's. */
	if (!c->complete || !c->peek_off || !(pfd.revents & POLLIN))
		return GW_MET_FCGI__MAX;
	n = recv(c->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
	if (n > 0 && gw_fcgi_walk(&c->walk, b, (size_t)n) == -1)
		return c->walk.reject == GW_FCGI_REJ_ABORTED
		           ? GW_MET_FCGI_ABORTED
		           : GW_MET_FCGI_ORDER;
	return GW_MET_FCGI__MAX;
}

/*
 * After answering on a kept connection, with nothing queued for it, the
 * worker waits up to LINGER_MS for the connection's next request itself
 * (nginx reuses the connection it freed last, so it often comes), which
 * spares the front thread two wake-ups per request.  The request must
 * arrive whole and in the one record order (the front's walk, on the
 * same peeked bytes); 1: it did, c is ready to serve; 0: not yet (the
 * front takes the connection back and reads on); -1: its records broke
 * the order and the connection is closed.  Bounded: a worker never waits
 * longer, and never while a request is queued.
 */
static int
linger(struct server *sv, struct conn *c, unsigned char *buf)
{
	struct pollfd pfd;
	ssize_t n;
	int off = 0, rc;

	if (atomic_load(&sv->stopping) || !fcgi_queue_empty(sv))
		return 0;
	memset(&pfd, 0, sizeof(pfd));
	pfd.fd = c->fd;
	pfd.events = POLLIN | POLLRDHUP;
	if (poll(&pfd, 1, LINGER_MS) != 1 ||
	    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) ||
	    !(pfd.revents & POLLIN))
		return 0;
	/* From the request's first byte: the offset libfcgi's reads left. */
	if (c->peek_off)
		(void)setsockopt(c->fd, SOL_SOCKET, SO_PEEK_OFF, &off,
		                 sizeof(off));
	n = recv(c->fd, buf, PEEK_MAX, MSG_PEEK | MSG_DONTWAIT);
	if (n <= 0)
		return 0;
	gw_fcgi_walk_init(&c->walk);
	rc = gw_fcgi_walk(&c->walk, buf, (size_t)n);
	if (rc == -1) {
		fcgi_rejected(sv, &c->walk);
		close(c->fd);
		return -1;
	}
	if (rc == 0)
		return 0;
	c->complete = 1;
	c->cut = 0;
	c->deadline_ms = fcgi_mono_ms() + sv->read_ms;
	return 1;
}

/*
 * As much of p's answer as its socket takes: 1 all of it, 0 the socket
 * is full (flags MSG_DONTWAIT), -1 the peer has gone.
 */
static int
send_rest(struct parked *p, int flags)
{
	ssize_t n;

	while (p->off < p->out.len) {
		n = send(p->fd, p->out.p + p->off, p->out.len - p->off,
		         flags | MSG_NOSIGNAL);
		if (n > 0)
			p->off += (size_t)n;
		else if (n == -1 && errno == EINTR)
			continue;
		else
			return n == -1 && errno == EAGAIN ? 0 : -1;
	}
	return 1;
}

/*
 * A deferred answer whose record is now durable (or lost: then the
 * unaudited 503 goes instead) goes out as far as its socket takes it at
 * once: the finisher never waits on a socket.  p->sent: 1 all of it, 0
 * the socket is full, -1 unanswered (the peer has gone).
 */
static void
finish(struct server *sv, struct parked *p)
{
	struct gw_http_resp alt;

	memset(&alt, 0, sizeof(alt));
	if (!deferred_end(sv, &p->d, &alt) && frame(p, p->id, &alt) == -1)
		p->out.len = 0; /* unanswered: closed */
	gw_http_resp_reset(&alt);
	p->sent = p->out.len > 0 ? send_rest(p, MSG_DONTWAIT) : -1;
}

/*
 * A finished batch settled under one lock: kept connections back to the
 * front (one wake-up), answers whose socket was full to a worker, which
 * sends the rest under response_send_timeout_ms, the rest closed.
 */
static void
settle(struct server *sv, struct parked *batch)
{
	struct parked *p, *next, *shut = NULL;
	struct idler *w, *woken = NULL;
	struct conn c;
	uint64_t one = 1;
	int wake = 0;

	pthread_mutex_lock(&sv->qlock);
	for (p = batch; p != NULL; p = next) {
		next = p->next;
		if (p->sent == 0) {
			memset(&c, 0, sizeof(c));
			c.fd = p->fd;
			c.rest = p;
			/* Queued longer than a send may take: cut (watch). */
			c.deadline_ms = fcgi_mono_ms() + sv->send_ms;
			/* Room is certain: counted in nparked (QUEUE_MAX). */
			if ((w = fcgi_deliver(sv, &c)) != NULL) {
				w->next_woken = woken;
				woken = w;
			}
			continue;
		}
		if (p->sent == 1 && p->keep && !sv->qclosed &&
		    sv->nback < CONN_MAX) {
			wake |= sv->nback == 0;
			sv->back[sv->nback++] = p->fd;
			p->fd = -1;
		}
		sv->nparked--;
		if (p->fd != -1) {
			/* Closed (or retired) once the lock is dropped. */
			p->next = shut;
			shut = p;
		} else
			fcgi_park_free(sv, p);
	}
	if (sv->nparked == 0 && sv->qclosed)
		fcgi_wake_idle(sv); /* the workers may go */
	pthread_mutex_unlock(&sv->qlock);
	for (; woken != NULL; woken = w) {
		w = woken->next_woken;
		sem_post(&woken->sem);
	}
	if (wake)
		(void)!write(sv->back_efd, &one, sizeof(one));
	if (shut == NULL)
		return;
	for (p = shut; p != NULL; p = p->next) {
		if (p->sent == 1 && p->keep)
			fcgi_retire(sv,
			            p->fd); /* stopping: to the next process */
		else
			close(p->fd);
		p->fd = -1;
	}
	pthread_mutex_lock(&sv->qlock);
	for (p = shut; p != NULL; p = next) {
		next = p->next;
		fcgi_park_free(sv, p);
	}
	pthread_mutex_unlock(&sv->qlock);
}

/*
 * The finisher thread: takes every deferred answer parked so far, waits
 * once for the group commit that holds their records (it leads it, or
 * follows a sync emitter's), sends them and settles the batch; meanwhile
 * the workers serve and park the next one.  One wake-up per batch, not
 * per request.
 */
static void *
finisher(void *arg)
{
	struct server *sv = arg;
	struct parked *batch, *p;

	for (;;) {
		pthread_mutex_lock(&sv->qlock);
		while (sv->park_head == NULL && !sv->pstop) {
			sv->finisher_idle = 1;
			pthread_cond_wait(&sv->pcond, &sv->qlock);
		}
		sv->finisher_idle = 0;
		batch = sv->park_head;
		sv->park_head = sv->park_tail = NULL;
		pthread_mutex_unlock(&sv->qlock);
		if (batch == NULL)
			return NULL; /* stopping, and nothing is parked */
		for (p = batch; p != NULL; p = p->next)
			finish(sv, p);
		settle(sv, batch);
	}
}

/* The rest of a deferred answer whose socket was full, under the send
 * deadline; then settled like the finisher's. */
static void
finish_rest(struct work *wk, struct parked *p)
{
	fcgi_slot_set(wk->slot, p->fd, fcgi_mono_ms() + wk->sv->send_ms);
	p->sent = send_rest(p, 0) == 1 ? 1 : -1;
	fcgi_slot_set(wk->slot, -1, 0);
	p->next = NULL;
	settle(wk->sv, p);
}

static void *
worker(void *arg)
{
	struct work *wk = arg;
	struct conn c;
	enum gw_met_fcgi why;
	locale_t cloc;
	int kept, next = 0;

	/*
	 * The worker runs in glibc's C locale object, the locale hssgw has
	 * anyway (it never calls setlocale).  json-c 0.16 switches
	 * LC_NUMERIC to "C" around every parse (duplocale, newlocale,
	 * freelocale); from the global locale each of those takes glibc's
	 * locale lock for writing, which 32 workers contended for (3.6% of
	 * hssgw's samples on the coalesced export, perf); from the C locale
	 * object glibc returns that same object and takes no lock.
	 */
	cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (cloc != (locale_t)0)
		uselocale(cloc);

	while (take(wk, &c) == 0) {
		if (c.rest != NULL) {
			finish_rest(wk, c.rest);
			continue;
		}
		why = stale(&c);
		if (why == GW_MET_FCGI__MAX) {
			kept = serve_conn(wk, &c);
			next = 0;
			while (kept == 1 &&
			       (next = linger(wk->sv, &c, wk->buf)) == 1)
				kept = serve_conn(wk, &c);
			if (kept == 1 && next == 0)
				fcgi_give_back(wk->sv, c.fd);
			continue;
		}
		gw_metrics_fcgi_rejected(wk->sv->metrics, why);
		close(c.fd);
	}
	if (wk->snap != NULL)
		gw_gateway_release(wk->sv->gw, wk->snap);
	wk->snap = NULL;
	if (cloc != (locale_t)0) {
		uselocale(LC_GLOBAL_LOCALE);
		freelocale(cloc);
	}
	return NULL;
}

static int
open_listener(struct server *sv, const char *listen, char *err, size_t errlen)
{
	const char *path;
	int fd;

	if (strcmp(listen, "fd:0") == 0)
		return 0;
	/* Socket activation: the socket and its path belong to systemd. */
	if (strcmp(listen, "systemd") == 0)
		return gw_sd_listen_fd(sv->inherit, KEPT_MAX, &sv->ninherit,
		                       err, errlen);
	if (strncmp(listen, "unix:", 5) == 0) {
		path = listen + 5;
		/* A stale socket from a previous run blocks bind(2). */
		if (unlink(path) == -1 && errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
	} else
		path = listen; /* "host:port": libfcgi opens TCP */
	/*
	 * nginx connects without blocking: with the backlog full, connect(2)
	 * on a unix socket fails at once (EAGAIN) and the client gets a 502.
	 * 128 did at 512 concurrent clients (bench/concurrency.py), while
	 * the front was still accepting; as deep as the front's table (the
	 * kernel caps it at net.core.somaxconn).
	 */
	fd = FCGX_OpenSocket(path, CONN_MAX);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot listen", listen);
		return -1;
	}
	if (strncmp(listen, "unix:", 5) == 0 && chmod(path, 0660) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* listen_allow as addresses; loopback when the config names none. */
static int
load_allow(struct server *sv, const struct gw_config *conf)
{
	static const char *const loopback[] = {"127.0.0.1", "::1"};
	const char *const *v = (const char *const *)conf->listen_allow;
	size_t i, n = conf->nlisten_allow;
	struct in_addr a4;

	if (n == 0) {
		v = loopback;
		n = sizeof(loopback) / sizeof(loopback[0]);
	}
	sv->allow = calloc(n, sizeof(*sv->allow));
	if (sv->allow == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (inet_pton(AF_INET6, v[i], &sv->allow[i]) == 1)
			continue;
		if (inet_pton(AF_INET, v[i], &a4) != 1)
			return -1; /* config.c checked them */
		sv->allow[i].s6_addr[10] = sv->allow[i].s6_addr[11] = 0xff;
		memcpy(&sv->allow[i].s6_addr[12], &a4, 4);
	}
	sv->nallow = n;
	return 0;
}

/* Whether the listener is TCP (configured or inherited as fd 0). */
static int
is_tcp(int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);

	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, (struct sockaddr *)&sa, &len) == -1)
		return 0;
	return sa.ss_family == AF_INET || sa.ss_family == AF_INET6;
}

/* The running front: its state, the worker threads and the front thread. */
struct gw_fcgi {
	struct server sv;
	const struct gw_snapshot *snap; /* held while serving: conf */
	struct work *wks;
	pthread_t *tids, ftid, fin_tid;
	size_t started;
	int front_up, finisher_up;
};

void
gw_fcgi_stop(struct gw_fcgi *f)
{
	struct server *sv;
	size_t i;

	if (f == NULL)
		return;
	sv = &f->sv;
	atomic_store(&sv->stopping, 1);
	if (f->front_up)
		pthread_join(f->ftid, NULL);
	else {
		pthread_mutex_lock(&sv->qlock);
		sv->qclosed = 1;
		fcgi_wake_idle(sv);
		pthread_mutex_unlock(&sv->qlock);
	}
	/* The workers go once nothing is queued or deferred; then the
	 * finisher, with nothing left to finish. */
	for (i = 0; i < f->started; i++)
		pthread_join(f->tids[i], NULL);
	if (f->finisher_up) {
		pthread_mutex_lock(&sv->qlock);
		sv->pstop = 1;
		pthread_cond_signal(&sv->pcond);
		pthread_mutex_unlock(&sv->qlock);
		pthread_join(f->fin_tid, NULL);
	}
	while (sv->pfree != NULL) {
		struct parked *p = sv->pfree;

		sv->pfree = p->next;
		gw_buf_reset(&p->out);
		free(p);
	}
	if (f->snap != NULL)
		gw_gateway_release(sv->gw, f->snap);
	for (i = 0; f->wks != NULL && i < sv->nslots; i++) {
		if (f->wks[i].w != NULL)
			FCGX_Free(&f->wks[i].r, 1);
		gw_pipe_worker_free(f->wks[i].w);
		free(f->wks[i].buf);
		if (f->wks[i].sem_up)
			sem_destroy(&f->wks[i].idle.sem);
		if (f->wks[i].park != NULL) {
			gw_buf_reset(&f->wks[i].park->out);
			free(f->wks[i].park);
		}
	}
	for (i = 0; sv->slots != NULL && i < sv->nslots; i++)
		pthread_mutex_destroy(&sv->slots[i].lock);
	free(sv->slots);
	free(f->wks);
	free(f->tids);
	free(sv->allow);
	if (sv->listen_fd > 0)
		close(sv->listen_fd);
	if (sv->back_efd != -1)
		close(sv->back_efd);
	for (i = 0; i < sv->ninherit; i++)
		close(sv->inherit[i]);
	pthread_cond_destroy(&sv->pcond);
	pthread_mutex_destroy(&sv->qlock);
	free(f);
}

/* The listener, non-blocking: only the front thread accepts. */
static int
listen_on(struct server *sv, const struct gw_config *conf, char *err,
          size_t errlen)
{
	sv->fdstore = strcmp(conf->listen, "systemd") == 0;
	sv->listen_fd = open_listener(sv, conf->listen, err, errlen);
	if (sv->listen_fd < 0)
		return -1;
	/* Only the front thread accepts, and never blocks in accept(2). */
	if (fcntl(sv->listen_fd, F_SETFL,
	          fcntl(sv->listen_fd, F_GETFL) | O_NONBLOCK) == -1) {
		snprintf(err, errlen, "listener: %s", strerror(errno));
		return -1;
	}
	sv->check_peer = is_tcp(sv->listen_fd);
	return 0;
}

struct gw_fcgi *
gw_fcgi_start(struct gw_gateway *gw, size_t *threads, char *err, size_t errlen)
{
	struct gw_fcgi *f = calloc(1, sizeof(*f));
	const struct gw_config *conf;
	struct server *sv;
	size_t i;

	if (f == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sv = &f->sv;
	f->snap = gw_gateway_acquire(gw);
	conf = gw_pipe_config(f->snap);
	sv->gw = gw;
	sv->metrics = gw_gateway_metrics(gw);
	sv->listen_fd = -1;
	sv->peek_ok = -1;
	atomic_init(&sv->stopping, 0);
	atomic_init(&sv->waiting, 0);
	sv->read_ms = conf->request_read_timeout_ms;
	sv->send_ms = conf->response_send_timeout_ms;
	sv->idle_ms = conf->keepalive_timeout_ms;
	sv->back_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	sv->waiting_max = (int)(conf->threads - conf->reserve_threads);
	for (i = 0; i < CONN_MAX; i++)
		sv->pend[i].fd = -1;
	pthread_mutex_init(&sv->qlock, NULL);
	pthread_cond_init(&sv->pcond, NULL);
	sv->nslots = (size_t)conf->threads;
	sv->slots = calloc(sv->nslots, sizeof(*sv->slots));
	f->wks = calloc(sv->nslots, sizeof(*f->wks));
	f->tids = calloc(sv->nslots, sizeof(*f->tids));
	if (sv->slots == NULL || f->wks == NULL || f->tids == NULL ||
	    sv->back_efd == -1 || load_allow(sv, conf) == -1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < sv->nslots; i++) {
		pthread_mutex_init(&sv->slots[i].lock, NULL);
		sv->slots[i].fd = -1;
	}
	if (FCGX_Init() != 0) {
		snprintf(err, errlen, "library initialisation failed");
		goto fail;
	}
	if (listen_on(sv, conf, err, errlen) == -1)
		goto fail;
	if (pthread_create(&f->fin_tid, NULL, finisher, sv) != 0) {
		snprintf(err, errlen, "cannot start the finisher thread");
		goto fail;
	}
	f->finisher_up = 1;
	for (i = 0; i < sv->nslots; i++) {
		f->wks[i].sv = sv;
		f->wks[i].slot = &sv->slots[i];
		f->wks[i].w = gw_pipe_worker_new();
		f->wks[i].buf = malloc(PEEK_MAX);
		if (sem_init(&f->wks[i].idle.sem, 0, 0) == 0)
			f->wks[i].sem_up = 1;
		/* No listening socket: libfcgi must never accept(2) itself. */
		if (f->wks[i].w == NULL || f->wks[i].buf == NULL ||
		    !f->wks[i].sem_up ||
		    FCGX_InitRequest(&f->wks[i].r, -1, 0) != 0)
			break;
		if (pthread_create(&f->tids[i], NULL, worker, &f->wks[i]) != 0)
			break;
		f->started++;
	}
	if (f->started == 0) {
		snprintf(err, errlen, "cannot start worker threads");
		goto fail;
	}
	if (pthread_create(&f->ftid, NULL, fcgi_front, sv) != 0) {
		snprintf(err, errlen, "cannot start the front thread");
		goto fail;
	}
	f->front_up = 1;
	*threads = f->started;
	return f;
fail:
	gw_fcgi_stop(f);
	return NULL;
}
