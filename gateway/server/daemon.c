/*
 * The daemon: the process's lifecycle around the FastCGI front (fcgi.c),
 * as OpenBSD httpd keeps it in httpd.c.  Initialises the libraries,
 * primes credentials and identity provider keys, blocks the signals and
 * starts the front; then the main thread waits for signals: SIGTERM or
 * SIGINT stop the front so workers finish what is queued, SIGHUP reloads
 * config, keys and policies, SIGUSR1 reopens the audit file, and once a
 * second, off the request path, refreshes credentials and JWKS and ticks
 * the audit trail.  Never serves a request.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "daemon.h"
#include "fcgi.h"
#include "pipeline.h"
#include "upstream.h"

/* What the main thread remembers between ticks: log transitions once. */
struct daemon {
	struct gw_gateway *gw;
	int cred_failing;
	int jwks_failing;
	int ship_refusing; /* exports refused: the trail is not shipped */
	int cursor_failing;
};

/* The shipper's cursor (audit.ship): each change of state logged once. */
static void
ship_tick(struct daemon *d)
{
	char err[512];
	int refusing = gw_gateway_ship_tick(d->gw, err, sizeof(err));

	if (refusing && !d->ship_refusing)
		fprintf(stderr, "hssgw: exports refused: the audit trail's "
		                "oldest unshipped record is older than "
		                "audit.ship.max_lag_s\n");
	else if (!refusing && d->ship_refusing)
		fprintf(stderr, "hssgw: exports resumed: the audit trail is "
		                "shipped\n");
	d->ship_refusing = refusing;
	if (err[0] != '\0' && !d->cursor_failing)
		fprintf(stderr, "hssgw: audit shipping cursor: %s\n", err);
	d->cursor_failing = err[0] != '\0';
}

/*
 * Once a second, off the request path: fetch or refresh every project's
 * credential when it is missing or due (IAM tokens ahead of expiry, with
 * the provider's backoff), so an idle gateway stays ready and one whose
 * IAM was down becomes ready again without waiting for a request.  Then
 * the audit trail's tick (a lagging checkpoint, a due summary or signed
 * checkpoint) and the shipper's cursor read against it.
 */
static void
refresh(struct daemon *d)
{
	const struct gw_snapshot *s = gw_gateway_acquire(d->gw);
	char err[512];
	int failed;

	failed = gw_pipe_prime(s, gw_now_ms(), err, sizeof(err));
	if (failed > 0 && !d->cred_failing)
		fprintf(stderr, "hssgw: credentials not ready: %s\n", err);
	else if (failed == 0 && d->cred_failing)
		fprintf(stderr, "hssgw: credentials ready\n");
	d->cred_failing = failed > 0;
	/* JWK Sets: refresh when due; log each change of state once. */
	failed = gw_pipe_prime_keys(s, gw_now_ms(), err, sizeof(err));
	if (failed > 0 && !d->jwks_failing)
		fprintf(stderr, "hssgw: identity provider keys not ready: %s\n",
		        err);
	else if (failed == 0 && d->jwks_failing)
		fprintf(stderr, "hssgw: identity provider keys ready\n");
	else if (failed == 0 && err[0] != '\0')
		/* A malformed or hostile answer, or an outage: each logged. */
		fprintf(stderr, "hssgw: %s\n", err);
	d->jwks_failing = failed > 0;
	gw_gateway_release(d->gw, s);
	gw_gateway_audit_tick(d->gw);
	ship_tick(d);
}

/* SIGHUP: a new snapshot, or the old one kept with the reason logged. */
static void
reload(struct daemon *d)
{
	const struct gw_snapshot *s;
	char err[1024];

	if (gw_gateway_reload(d->gw, err, sizeof(err)) == -1) {
		fprintf(stderr, "hssgw: reload refused, old config kept: %s\n",
		        err);
		return;
	}
	s = gw_gateway_acquire(d->gw);
	fprintf(stderr, "hssgw: reloaded: policy revision %s\n",
	        gw_pipe_revision(s));
	gw_gateway_release(d->gw, s);
}

/* Not fatal: readiness (/healthz) reports it, requests get 503. */
static void
prime(struct daemon *d, const struct gw_snapshot *snap, char *err,
      size_t errlen)
{
	if (gw_pipe_prime(snap, gw_now_ms(), err, errlen) > 0)
		fprintf(stderr, "hssgw: credentials not ready: %s\n", err);
	if (gw_pipe_prime_keys(snap, gw_now_ms(), err, errlen) > 0) {
		fprintf(stderr, "hssgw: identity provider keys not ready: %s\n",
		        err);
		d->jwks_failing = 1;
	}
}

/* The main thread's loop: signals, and the refresh between them. */
static int
wait_signals(struct daemon *d, const sigset_t *set, char *err, size_t errlen)
{
	const struct timespec tick = {1, 0};
	int sig;

	for (;;) {
		sig = sigtimedwait(set, NULL, &tick);
		if (sig == -1) {
			if (errno == EAGAIN)
				refresh(d);
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT)
			return sig;
		if (sig == SIGHUP)
			reload(d);
		if (sig == SIGUSR1 &&
		    gw_gateway_audit_reopen(d->gw, err, errlen) == -1)
			fprintf(stderr, "hssgw: audit reopen failed: %s\n",
			        err);
		/* SIGPIPE: ignored; writes fail with EPIPE instead. */
	}
}

int
gw_daemon_run(struct gw_gateway *gw, char *err, size_t errlen)
{
	const struct gw_snapshot *snap = gw_gateway_acquire(gw);
	const struct gw_config *conf = gw_pipe_config(snap);
	struct daemon d;
	struct gw_fcgi *front = NULL;
	sigset_t set;
	size_t threads = 0;
	int sig, rc = -1;

	memset(&d, 0, sizeof(d));
	d.gw = gw;
	if (gw_up_global_init() != 0) {
		snprintf(err, errlen, "library initialisation failed");
		goto out;
	}
	prime(&d, snap, err, errlen);
	/* Workers never see signals; the main thread waits for them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	front = gw_fcgi_start(gw, &threads, err, errlen);
	if (front == NULL)
		goto out;
	fprintf(stderr,
	        "hssgw: serving on %s with %zu threads, policy revision %s\n",
	        conf->listen, threads, gw_pipe_revision(snap));
	sig = wait_signals(&d, &set, err, errlen);
	fprintf(stderr, "hssgw: signal %d: finishing requests in flight\n",
	        sig);
	rc = 0;
out:
	gw_fcgi_stop(front);
	gw_gateway_release(gw, snap);
	return rc;
}
