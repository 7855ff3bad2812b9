/*
 * The FastCGI front: the only file that includes <fcgiapp.h>.  N worker
 * threads each run FCGX_Accept_r on one listening socket (a unix socket or
 * TCP address from config, or the inherited fd 0 as spawn-fcgi and systemd
 * pass it), turn FastCGI params into a gw_http_req, run the pipeline and
 * write the response.  The main thread waits for signals: SIGTERM/SIGINT
 * shut the listener so workers finish their request in flight and exit,
 * SIGHUP reloads config, keys and policies, SIGUSR1 reopens the audit file.
 * Reads only the params nginx sets from trusted variables; never any other
 * caller-controlled header.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "config.h"
#include "fcgi.h"
#include "pipeline.h"
#include "upstream.h"

struct server {
	struct gw_gateway *gw;
	int listen_fd;
	pthread_mutex_t accept_lock;
	volatile sig_atomic_t stopping;
	int cred_failing; /* main thread only: log transitions once */
};

static const char *
param(FCGX_Request *r, const char *name)
{
	return FCGX_GetParam(name, r->envp);
}

/*
 * Reads at most max bytes of body; *too_large is set when more was
 * announced or sent.  The rest is left to libfcgi, which drains it.
 */
static char *
read_body(FCGX_Request *r, size_t max, size_t *len, int *too_large)
{
	const char *cl = param(r, "CONTENT_LENGTH");
	long long want = 0;
	char *buf;
	int n;

	*len = 0;
	*too_large = 0;
	if (cl != NULL && *cl != '\0' &&
	    gw_strtonum(cl, 0, 1LL << 40, &want) == -1)
		want = 0;
	if ((unsigned long long)want > max) {
		*too_large = 1;
		return NULL;
	}
	buf = malloc(max + 2);
	if (buf == NULL)
		return NULL;
	n = FCGX_GetStr(buf, (int)max + 1, r->in);
	if (n < 0)
		n = 0;
	if ((size_t)n > max) {
		*too_large = 1;
		n = 0;
	}
	buf[n] = '\0';
	*len = (size_t)n;
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
static int
stream_head(void *ctx, const struct gw_http_resp *resp, long long length)
{
	FCGX_Request *r = ctx;
	char cl[64];
	size_t i;

	FCGX_FPrintF(r->out, "Status: %d %s\r\n", resp->status,
	             reason(resp->status));
	for (i = 0; i < resp->nheaders; i++)
		FCGX_FPrintF(r->out, "%s: %s\r\n", resp->headers[i].name,
		             resp->headers[i].value);
	/* libfcgi's printf knows no %lld: format it here. */
	if (length >= 0) {
		snprintf(cl, sizeof(cl), "Content-Length: %lld\r\n", length);
		FCGX_PutS(cl, r->out);
	}
	return FCGX_PutS("\r\n", r->out) < 0 ? -1 : 0;
}

static int
stream_body(void *ctx, const void *p, size_t len)
{
	FCGX_Request *r = ctx;
	const char *c = p;
	int n;

	/* FCGX_PutStr takes an int: feed it in bounded pieces. */
	while (len > 0) {
		n = len > 65536 ? 65536 : (int)len;
		if (FCGX_PutStr(c, n, r->out) != n)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Closing the connection before FCGI_END_REQUEST makes nginx see
 * "upstream prematurely closed" and cut the client's transfer, which
 * then falls short of its Content-Length: never a complete-looking file.
 */
static void
stream_abort(void *ctx)
{
	FCGX_Request *r = ctx;

	shutdown(r->ipcFd, SHUT_RDWR);
}

static void
serve_one(struct server *sv, struct gw_worker *w, FCGX_Request *r)
{
	const struct gw_http_stream stream = {stream_head, stream_body,
	                                      stream_abort, r};
	const struct gw_snapshot *snap = gw_gw_acquire(sv->gw);
	const struct gw_config *conf = gw_pipe_config(snap);
	struct gw_http_req req;
	struct gw_http_resp resp;
	char *body = NULL;
	size_t i;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.method = param(r, "REQUEST_METHOD");
	req.path = param(r, "DOCUMENT_URI");
	req.content_type = param(r, "CONTENT_TYPE");
	req.authorization = param(r, "HTTP_AUTHORIZATION");
	/* Set by nginx from $remote_addr and $request_id, never headers. */
	req.client_addr = param(r, "HSSGW_CLIENT_ADDR");
	req.request_id = param(r, "HSSGW_REQUEST_ID");
	body = read_body(r, (size_t)conf->max_body_bytes, &req.bodylen,
	                 &req.body_too_large);
	req.body = body != NULL ? body : "";
	req.now_ms = gw_now_ms();
	resp.stream = &stream;
	gw_pipe_handle(snap, w, &req, &resp);
	gw_gw_release(sv->gw, snap);
	if (resp.streamed)
		goto out;

	FCGX_FPrintF(r->out, "Status: %d %s\r\n", resp.status,
	             reason(resp.status));
	for (i = 0; i < resp.nheaders; i++)
		FCGX_FPrintF(r->out, "%s: %s\r\n", resp.headers[i].name,
		             resp.headers[i].value);
	/* libfcgi's FCGX_FPrintF knows no %zu: it would end the headers. */
	FCGX_FPrintF(r->out, "Content-Length: %lu\r\n\r\n",
	             (unsigned long)resp.bodylen);
	if (resp.bodylen > 0)
		FCGX_PutStr(resp.body, (int)resp.bodylen, r->out);
out:
	gw_http_resp_reset(&resp);
	free(body);
}

static void *
worker(void *arg)
{
	struct server *sv = arg;
	struct gw_worker *w = NULL;
	FCGX_Request r;
	int rc;

	w = gw_pipe_worker_new();
	if (w == NULL) {
		fprintf(stderr, "hssgw: worker: out of memory\n");
		return NULL;
	}
	if (FCGX_InitRequest(&r, sv->listen_fd, 0) != 0) {
		gw_pipe_worker_free(w);
		return NULL;
	}
	while (!sv->stopping) {
		/* Serialize accept(2), as libfcgi's threaded example does. */
		pthread_mutex_lock(&sv->accept_lock);
		rc = sv->stopping ? -1 : FCGX_Accept_r(&r);
		pthread_mutex_unlock(&sv->accept_lock);
		if (rc < 0)
			break;
		serve_one(sv, w, &r);
		FCGX_Finish_r(&r);
	}
	FCGX_Free(&r, 1);
	gw_pipe_worker_free(w);
	return NULL;
}

static int
open_listener(const char *listen, char *err, size_t errlen)
{
	const char *path;
	int fd;

	if (strcmp(listen, "fd:0") == 0)
		return 0;
	if (strncmp(listen, "unix:", 5) == 0) {
		path = listen + 5;
		/* A stale socket from a previous run blocks bind(2). */
		if (unlink(path) == -1 && errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return -1;
		}
	} else
		path = listen; /* "host:port": libfcgi opens TCP */
	fd = FCGX_OpenSocket(path, 128);
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

/*
 * Once a second, off the request path: fetch or refresh every project's
 * credential when it is missing or due (IAM tokens ahead of expiry, with
 * the provider's backoff), so an idle gateway stays ready and one whose
 * IAM was down becomes ready again without waiting for a request.
 */
static void
refresh(struct server *sv)
{
	const struct gw_snapshot *s = gw_gw_acquire(sv->gw);
	char err[512];
	int failed;

	failed = gw_pipe_prime(s, gw_now_ms(), err, sizeof(err));
	if (failed > 0 && !sv->cred_failing)
		fprintf(stderr, "hssgw: credentials not ready: %s\n", err);
	else if (failed == 0 && sv->cred_failing)
		fprintf(stderr, "hssgw: credentials ready\n");
	sv->cred_failing = failed > 0;
	gw_gw_release(sv->gw, s);
}

/* SIGHUP: a new snapshot, or the old one kept with the reason logged. */
static void
reload(struct server *sv)
{
	const struct gw_snapshot *s;
	char err[1024];

	if (gw_gw_reload(sv->gw, err, sizeof(err)) == -1) {
		fprintf(stderr, "hssgw: reload refused, old config kept: %s\n",
		        err);
		return;
	}
	s = gw_gw_acquire(sv->gw);
	fprintf(stderr, "hssgw: reloaded: policy revision %s\n",
	        gw_pipe_revision(s));
	gw_gw_release(sv->gw, s);
}

int
gw_fcgi_serve(struct gw_gateway *gw, char *err, size_t errlen)
{
	const struct gw_snapshot *snap = gw_gw_acquire(gw);
	const struct gw_config *conf = gw_pipe_config(snap);
	struct server sv;
	pthread_t *tids = NULL;
	sigset_t set;
	const struct timespec tick = {1, 0};
	size_t i, started = 0;
	int sig = 0, rc = -1;

	memset(&sv, 0, sizeof(sv));
	sv.gw = gw;
	sv.listen_fd = -1;
	pthread_mutex_init(&sv.accept_lock, NULL);
	if (FCGX_Init() != 0 || gw_up_global_init() != 0) {
		snprintf(err, errlen, "library initialisation failed");
		goto out;
	}
	/* Not fatal: readiness (/healthz) reports it, requests get 503. */
	if (gw_pipe_prime(snap, gw_now_ms(), err, errlen) > 0)
		fprintf(stderr, "hssgw: credentials not ready: %s\n", err);
	sv.listen_fd = open_listener(conf->listen, err, errlen);
	if (sv.listen_fd < 0)
		goto out;

	/* Workers never see signals; the main thread waits for them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	tids = calloc((size_t)conf->threads, sizeof(*tids));
	if (tids == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < (size_t)conf->threads; i++) {
		if (pthread_create(&tids[i], NULL, worker, &sv) != 0)
			break;
		started++;
	}
	if (started == 0) {
		snprintf(err, errlen, "cannot start worker threads");
		goto out;
	}
	fprintf(stderr,
	        "hssgw: serving on %s with %zu threads, policy revision %s\n",
	        conf->listen, started, gw_pipe_revision(snap));
	for (;;) {
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == -1) {
			if (errno == EAGAIN)
				refresh(&sv);
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			reload(&sv);
		if (sig == SIGUSR1 && gw_gw_audit_reopen(gw, err, errlen) == -1)
			fprintf(stderr, "hssgw: audit reopen failed: %s\n",
			        err);
		/* SIGPIPE: ignored; writes fail with EPIPE instead. */
	}
	fprintf(stderr, "hssgw: signal %d: finishing requests in flight\n",
	        sig);
	sv.stopping = 1;
	FCGX_ShutdownPending();
	/* Wakes every accept(2) blocked on the listener; Linux: EINVAL. */
	shutdown(sv.listen_fd, SHUT_RDWR);
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	rc = 0;
out:
	gw_gw_release(gw, snap);
	free(tids);
	if (sv.listen_fd > 0)
		close(sv.listen_fd);
	pthread_mutex_destroy(&sv.accept_lock);
	return rc;
}
