/*
 * The daemon: the process's lifecycle around the FastCGI front (fcgi.c),
 * as OpenBSD httpd keeps it in httpd.c.  Initialises the libraries,
 * primes credentials and identity provider keys, blocks the signals and
 * starts the front; then the main thread waits for signals: SIGTERM or
 * SIGINT stop the front so workers finish what is queued, SIGHUP reloads
 * config, keys and policies, SIGUSR1 reopens the audit file, and once a
 * second, off the request path, refreshes credentials and JWKS and ticks
 * the audit trail.  Tells systemd (sd.h) when it is ready (what /healthz
 * calls ready), reloading or stopping, and pings its watchdog from this
 * loop, so a main thread that hangs is restarted.  Never serves a request.
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
#include "sd.h"
#include "upstream.h"

/* What the main thread remembers between ticks: log transitions once. */
struct daemon {
	struct gw_gateway *gw;
	const char *listen; /* the first snapshot's: read at start only */
	int cred_failing;
	int jwks_failing;
	int ready_sent;          /* READY=1 went to the service manager */
	char status[256];        /* the last STATUS= sent */
	int64_t ping_ms;         /* watchdog interval / 2; 0: no watchdog */
	int64_t next_ping_ms;    /* monotonic */
	int64_t next_refresh_ms; /* monotonic */
	int ship_refusing;       /* exports refused: the trail is not shipped */
	int cursor_failing;
};

static int64_t
mono_ms(void)
{
	return gw_mono_us() / 1000;
}

/*
 * Tells systemd where the gateway stands: READY=1 the first time (and
 * after a reload, with after_reload) /healthz would answer 200, and a
 * STATUS= line for systemctl status whenever it changes.
 */
static void
notify_state(struct daemon *d, int after_reload)
{
	const struct gw_snapshot *s = gw_gateway_acquire(d->gw);
	const char *why = gw_pipe_unready(s, gw_now_ms());
	char status[256], msg[300];

	if (why == NULL)
		snprintf(status, sizeof(status),
		         "serving on %s, policy revision %s", d->listen,
		         gw_pipe_revision(s));
	else
		snprintf(status, sizeof(status),
		         "%s: not ready: %s (/healthz answers 503)",
		         d->ready_sent ? "degraded" : "starting", why);
	gw_gateway_release(d->gw, s);
	if ((why == NULL && !d->ready_sent) || after_reload) {
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
		gw_sd_notify(msg);
		d->ready_sent = 1;
	} else if (strcmp(status, d->status) != 0)
		gw_sd_status(status);
	snprintf(d->status, sizeof(d->status), "%s", status);
}

/* WATCHDOG=1 when due: at half the interval, as sd_watchdog_enabled(3)
 * advises. */
static void
ping(struct daemon *d)
{
	int64_t now = mono_ms();

	if (d->ping_ms == 0 || now < d->next_ping_ms)
		return;
	gw_sd_notify("WATCHDOG=1");
	d->next_ping_ms = now + d->ping_ms;
}

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

/*
 * SIGHUP: a new snapshot, or the old one kept with the reason logged.
 * systemd hears RELOADING=1 before and READY=1 after (only once it was
 * ready: a reload while starting leaves it starting).
 */
static void
reload(struct daemon *d)
{
	const struct gw_snapshot *s;
	char err[1024];
	int was_ready = d->ready_sent;

	if (was_ready)
		gw_sd_reloading();
	if (gw_gateway_reload(d->gw, err, sizeof(err)) == -1) {
		fprintf(stderr, "hssgw: reload refused, old config kept: %s\n",
		        err);
		if (was_ready)
			gw_sd_notify("READY=1\nSTATUS=reload refused, old "
			             "config kept (see the journal)");
		return;
	}
	s = gw_gateway_acquire(d->gw);
	fprintf(stderr, "hssgw: reloaded: policy revision %s\n",
	        gw_pipe_revision(s));
	gw_gateway_release(d->gw, s);
	notify_state(d, was_ready);
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

/* How long the loop may sleep: until the next refresh or ping. */
static struct timespec
sleep_for(const struct daemon *d)
{
	int64_t now = mono_ms(), until = d->next_refresh_ms, ms;
	struct timespec ts;

	if (d->ping_ms != 0 && d->next_ping_ms < until)
		until = d->next_ping_ms;
	ms = until > now ? until - now : 0;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	return ts;
}

/*
 * The main thread's loop: signals, and between them the refresh once a
 * second and the watchdog ping, both due whether or not signals arrive.
 */
static int
wait_signals(struct daemon *d, const sigset_t *set, char *err, size_t errlen)
{
	struct timespec ts;
	int sig;

	for (;;) {
		ts = sleep_for(d);
		sig = sigtimedwait(set, NULL, &ts);
		ping(d);
		if (mono_ms() >= d->next_refresh_ms) {
			refresh(d);
			notify_state(d, 0);
			d->next_refresh_ms = mono_ms() + 1000;
			ping(d); /* a refresh may have waited on the network */
		}
		if (sig == -1)
			continue; /* EAGAIN: the timeout; EINTR */
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
	d.listen = conf->listen;
	d.ping_ms = (int64_t)(gw_sd_watchdog_usec() / 2000);
	if (gw_sd_watchdog_usec() != 0 && d.ping_ms == 0)
		d.ping_ms = 1;
	if (gw_up_global_init() != 0) {
		snprintf(err, errlen, "library initialisation failed");
		goto out;
	}
	gw_sd_status("starting: fetching credentials and keys");
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
	ping(&d);
	notify_state(&d, 0);
	d.next_refresh_ms = mono_ms() + 1000;
	sig = wait_signals(&d, &set, err, errlen);
	gw_sd_notify("STOPPING=1\nSTATUS=stopping: finishing requests in "
	             "flight");
	fprintf(stderr, "hssgw: signal %d: finishing requests in flight\n",
	        sig);
	rc = 0;
out:
	gw_fcgi_stop(front);
	gw_gateway_release(gw, snap);
	return rc;
}
