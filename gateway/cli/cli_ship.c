/*
 * hssgw audit ship --config FILE: a process of its own that delivers the
 * instance's audit trail to the collector over RELP, every record in
 * order and at least once (docs/AUDIT.md, "Shipping").  It reads records
 * after the cursor (ship.c), sends them in batches (relp.c) and moves the
 * cursor only once the collector acknowledged the whole batch; a batch
 * not acknowledged is sent again, whole, until it is.  So a crash, a
 * kill -9 or a collector restart costs duplicates, never a record.  Never
 * writes the trail; never runs in hssgw serve.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "gw.h"
#include "relp.h"
#include "ship.h"

#define BATCH_BYTES   (32 * 1024 * 1024) /* frames held for one batch */
#define IDLE_MS       50                 /* polling the trail when caught up */
#define BACKOFF_MIN   200  /* first retry after a failed batch, ms */
#define BACKOFF_MAX   5000 /* retries at most this far apart, ms */
#define METRICS_MS    1000 /* the textfile at most this often */
#define REPEAT_LOG_MS 60000

static const char ship_usage[] = "usage: hssgw audit ship --config FILE\n";

struct shipper {
	const struct gw_config *conf;
	struct gw_ship_follow *follow;
	struct gw_relp *relp;
	struct gw_ship_cursor cur;
	struct gw_ship_stats st;
	/* the batch in flight: frames back to back in buf */
	struct gw_buf buf;
	size_t *off, *lens;
	const char **msgs;
	size_t n;
	long long last_seq;
	char last_hash[GW_AUDIT_HASH_HEX + 1];
	int64_t last_time, first_time;
	int64_t metrics_at, logged_at;
	char logged[512];
	sigset_t stop;
};

/* Logs MSG unless it is the one logged last, less than a minute ago. */
static void
say(struct shipper *s, const char *msg)
{
	int64_t now = gw_now_ms();
	size_t n = strnlen(msg, sizeof(s->logged) - 1);

	if (strcmp(msg, s->logged) == 0 && now - s->logged_at < REPEAT_LOG_MS)
		return;
	/* Kept capped (a longer message is simply logged again). */
	memcpy(s->logged, msg, n);
	s->logged[n] = '\0';
	s->logged_at = now;
	fprintf(stderr, "hssgw: ship: %s\n", msg);
}

/* Sleeps MS unless a stop signal comes; 1 when it came. */
static int
nap(struct shipper *s, long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	return sigtimedwait(&s->stop, NULL, &ts) > 0;
}

static int
stopping(struct shipper *s)
{
	static const struct timespec zero = {0, 0};

	return sigtimedwait(&s->stop, NULL, &zero) > 0;
}

static void
metrics(struct shipper *s, int force)
{
	char err[512];
	int64_t now = gw_now_ms();

	if (s->conf->ship_metrics_file == NULL ||
	    (!force && now - s->metrics_at < METRICS_MS))
		return;
	s->metrics_at = now;
	s->st.acked_seq = s->cur.seq;
	s->st.head_seq = gw_ship_head_seq(s->follow);
	if (s->n > 0)
		s->st.oldest_unacked_ms = s->first_time;
	else if (s->st.blocked || s->st.head_seq > s->cur.seq)
		/* Not read yet: at least as old as the last one shipped. */
		s->st.oldest_unacked_ms = s->cur.time_ms;
	else
		s->st.oldest_unacked_ms = 0;
	if (gw_ship_metrics_write(s->conf->ship_metrics_file, s->conf->instance,
	                          &s->st, now, err, sizeof(err)) == -1)
		say(s, err);
}

/* Reads records after the batch's last into it, up to the batch size;
 * the number now in the batch. */
static size_t
gather(struct shipper *s)
{
	struct gw_ship_rec r;
	char err[512];
	size_t start;
	int rc;

	while (s->n < (size_t)s->conf->ship_batch_size &&
	       s->buf.len < BATCH_BYTES / 2) {
		rc = gw_ship_next(s->follow, &r, err, sizeof(err));
		if (rc == -1) {
			s->st.blocked = 1;
			say(s, err);
			break;
		}
		s->st.blocked = 0;
		if (rc == 0)
			break;
		start = s->buf.len;
		if (gw_ship_frame(&s->buf, s->conf->instance, gw_now_ms(),
		                  r.line, r.len) == -1) {
			/* Cannot happen below BATCH_BYTES / 2 + a line. */
			say(s, "out of memory for a batch");
			abort();
		}
		s->off[s->n] = start;
		s->lens[s->n] = s->buf.len - start;
		if (s->n == 0)
			s->first_time = r.time_ms;
		s->n++;
		s->last_seq = r.seq;
		memcpy(s->last_hash, r.hash, sizeof(s->last_hash));
		s->last_time = r.time_ms;
	}
	return s->n;
}

/* The collector acknowledged the batch: the cursor moves, durably. */
static void
acked(struct shipper *s)
{
	char err[512];

	s->cur.seq = s->last_seq;
	memcpy(s->cur.hash, s->last_hash, sizeof(s->cur.hash));
	s->cur.time_ms = s->last_time;
	/* A cursor not saved costs duplicates after a restart, no record. */
	if (gw_ship_cursor_save(s->conf->ship_cursor_file, &s->cur, err,
	                        sizeof(err)) == -1)
		say(s, err);
	s->st.shipped += (long long)s->n;
	s->st.last_ack_ms = gw_now_ms();
	s->n = 0;
	s->buf.len = 0;
}

static int
run(struct shipper *s)
{
	char err[512], msg[700];
	long backoff = BACKOFF_MIN;
	size_t i;

	while (!stopping(s)) {
		if (s->n == 0 && gather(s) == 0) {
			metrics(s, 0);
			if (nap(s, s->st.blocked ? BACKOFF_MAX : IDLE_MS))
				break;
			continue;
		}
		for (i = 0; i < s->n; i++)
			s->msgs[i] = s->buf.p + s->off[i];
		if (gw_relp_send(s->relp, s->msgs, s->lens, s->n, err,
		                 sizeof(err)) == 0) {
			acked(s);
			backoff = BACKOFF_MIN;
			metrics(s, 0);
			continue;
		}
		s->st.failures++;
		s->st.resends += (long long)s->n;
		snprintf(msg, sizeof(msg),
		         "records %lld..%lld not acknowledged, sending them "
		         "again: %s",
		         s->cur.seq + 1, s->last_seq, err);
		say(s, msg);
		metrics(s, 0);
		if (nap(s, backoff))
			break;
		backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
	}
	metrics(s, 1);
	return 0;
}

/* RFC 5424's HOSTNAME is 1..255 printable US-ASCII. */
static int
hostname_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 255)
		return 0;
	for (; *s != '\0'; s++)
		if (*s < 33 || *s > 126)
			return 0;
	return 1;
}

static int
setup(struct shipper *s, char *err, size_t errlen)
{
	const struct gw_config *c = s->conf;
	struct gw_relp_opts o;
	int r;

	if (c->ship_relp == NULL) {
		snprintf(err, errlen, "%s: no audit.ship section", c->path);
		return -1;
	}
	if (!hostname_ok(c->instance)) {
		snprintf(err, errlen,
		         "instance \"%s\": must be printable ASCII to be an "
		         "RFC 5424 HOSTNAME",
		         c->instance);
		return -1;
	}
	r = gw_ship_cursor_load(c->ship_cursor_file, &s->cur, err, errlen);
	if (r == -1)
		return -1;
	if (r == 1 && strcmp(s->cur.instance, c->instance) != 0) {
		snprintf(err, errlen,
		         "%s: the cursor of instance \"%s\", not \"%s\"",
		         c->ship_cursor_file, s->cur.instance, c->instance);
		return -1;
	}
	snprintf(s->cur.instance, sizeof(s->cur.instance), "%s", c->instance);
	s->follow = gw_ship_follow_new(c->audit_file, &s->cur);
	s->off = calloc((size_t)c->ship_batch_size, sizeof(*s->off));
	s->lens = calloc((size_t)c->ship_batch_size, sizeof(*s->lens));
	s->msgs = calloc((size_t)c->ship_batch_size, sizeof(*s->msgs));
	if (s->follow == NULL || s->off == NULL || s->lens == NULL ||
	    s->msgs == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	gw_buf_init(&s->buf, BATCH_BYTES);
	memset(&o, 0, sizeof(o));
	o.host = c->ship_host;
	o.port = c->ship_port;
	o.timeout_s = (int)c->ship_timeout_s;
	o.tls = (int)c->ship_tls;
	o.ca_file = c->ship_tls_ca_file;
	o.cert_file = c->ship_tls_cert_file;
	o.key_file = c->ship_tls_key_file;
	o.auth_mode = c->ship_tls_auth_mode;
	o.peers = (const char *const *)c->ship_tls_permitted_peers;
	o.npeers = c->nship_tls_permitted_peers;
	s->relp = gw_relp_new(&o, err, errlen);
	return s->relp == NULL ? -1 : 0;
}

int
gw_cli_audit_ship(int argc, char *argv[])
{
	struct shipper s;
	struct gw_config *conf = NULL;
	const char *path;
	char err[1024];
	int rc = 1;

	if (gw_cli_help(argc, argv, ship_usage))
		return 0;
	path = gw_cli_config_arg(argc, argv);
	if (path == NULL) {
		fputs(ship_usage, stderr);
		return 2;
	}
	memset(&s, 0, sizeof(s));
	/* Stop signals are taken between batches, never mid-batch. */
	sigemptyset(&s.stop);
	sigaddset(&s.stop, SIGTERM);
	sigaddset(&s.stop, SIGINT);
	sigaddset(&s.stop, SIGHUP);
	sigprocmask(SIG_BLOCK, &s.stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	conf = gw_conf_load(path, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "hssgw: %s\n", err);
		return 1;
	}
	s.conf = conf;
	if (setup(&s, err, sizeof(err)) == -1) {
		fprintf(stderr, "hssgw: ship: %s\n", err);
		goto out;
	}
	fprintf(stderr, "hssgw: ship: %s (instance %s) to %s from seq %lld\n",
	        conf->audit_file, conf->instance, conf->ship_relp,
	        s.cur.seq + 1);
	rc = run(&s);
out:
	gw_relp_free(s.relp);
	gw_ship_follow_free(s.follow);
	gw_buf_reset(&s.buf);
	free(s.off);
	free(s.lens);
	free(s.msgs);
	gw_conf_free(conf);
	return rc;
}
