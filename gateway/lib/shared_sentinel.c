/*
 * The Redis Sentinel client of shared state (shared_int.h): asks the
 * Sentinels where master_name's master is (SENTINEL
 * get-master-addr-by-name, the one that answered last first, each with
 * the Sentinels' own user and password), and runs one watcher thread
 * subscribed to +switch-master on one reachable Sentinel, following the
 * Sentinel client spec (redis.io, "Subscribe to Sentinel events").
 *
 * The watcher reads its subscription itself into one capped buffer
 * (SUB_BUF_MAX) with a strict parser of the only frames it expects, so a
 * hostile Sentinel cannot make it allocate; it waits in poll() with a
 * stop pipe, PINGs each second and treats a Sentinel silent for a second
 * plus timeout_ms as lost, then tries the next one after a backoff.  A
 * +switch-master for our master name makes it call shared.c back, which
 * asks the Sentinels again: the address in a message is never used, so a
 * stale or forged message can cost a query, never point anywhere.  It
 * holds no lock across network I/O and never logs a password.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "gw.h"
#include "shared_int.h"

#define SUB_BUF_MAX    16384 /* unread subscription bytes; a message < 700 */
#define SUB_ELEM_MAX   1024  /* one string in a frame */
#define PING_MS        1000  /* a PING on the subscription each second */
#define CHECK_MIN_MS   250   /* at most four checks a second */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct shr_sentinels {
	pthread_mutex_t lock;
	char **hosts, *name, *user, *password;
	int *ports;
	size_t n;
	size_t next; /* under lock: the one that answered last */
	struct timeval tv;
	int64_t tv_ms;
	/* the watcher: started under lock, then its own */
	int started;
	pthread_t thread;
	atomic_int stop;
	int stopfd[2]; /* shr_sent_free writes a byte: poll() wakes */
	void (*changed)(void *, size_t);
	void *arg;
	char sub[SUB_BUF_MAX]; /* the subscription's unread bytes */
	size_t sub_used;
	int malformed_logged; /* once per subscription */
};

/* One frame of the subscription: an array of 1 to 3 elements. */
struct frame {
	size_t n;
	const char *s[3]; /* NULL: an integer */
	size_t len[3];
};

static int64_t
mono_ms(void)
{
	return gw_mono_us() / 1000;
}

struct shr_sentinels *
shr_sent_new(const struct gw_config *conf, struct timeval tv, char *err,
             size_t errlen)
{
	struct shr_sentinels *s = NULL;
	size_t i, n = conf->nshared_sentinels;

	if (n < 1 || conf->shared_master_name == NULL) {
		snprintf(err, errlen, "shared_state: no sentinels");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto nomem;
	pthread_mutex_init(&s->lock, NULL);
	atomic_init(&s->stop, 0);
	s->stopfd[0] = s->stopfd[1] = -1;
	s->tv = tv;
	s->tv_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
	s->hosts = calloc(n, sizeof(*s->hosts));
	s->ports = calloc(n, sizeof(*s->ports));
	s->name = gw_strdup(conf->shared_master_name);
	s->user = gw_strdup(conf->shared_sentinel_username);
	if (s->hosts == NULL || s->ports == NULL || s->name == NULL ||
	    (conf->shared_sentinel_username != NULL && s->user == NULL))
		goto nomem;
	s->n = n;
	for (i = 0; i < n; i++) {
		s->hosts[i] = gw_strdup(conf->shared_sentinel_hosts[i]);
		s->ports[i] = (int)conf->shared_sentinel_ports[i];
		if (s->hosts[i] == NULL)
			goto nomem;
	}
	if (conf->shared_sentinel_password_file != NULL &&
	    shr_secret_read(conf->shared_sentinel_password_file,
	                    "sentinel_password_file", &s->password, err,
	                    errlen) == -1) {
		shr_sent_free(s);
		return NULL;
	}
	return s;
nomem:
	snprintf(err, errlen, "out of memory");
	shr_sent_free(s);
	return NULL;
}

void
shr_sent_free(struct shr_sentinels *s)
{
	size_t i;
	int started;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	started = s->started;
	pthread_mutex_unlock(&s->lock);
	if (started) {
		atomic_store(&s->stop, 1);
		if (write(s->stopfd[1], "x", 1) != 1)
			fprintf(stderr, "hssgw: shared state: cannot wake the "
			                "Sentinel watcher: waiting for it\n");
		pthread_join(s->thread, NULL);
	}
	for (i = 0; i < 2; i++)
		if (s->stopfd[i] >= 0)
			close(s->stopfd[i]);
	for (i = 0; s->hosts != NULL && i < s->n; i++)
		free(s->hosts[i]);
	free(s->hosts);
	free(s->ports);
	free(s->name);
	free(s->user);
	gw_secret_free(s->password);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* A reply of two strings, the second a port: SENTINEL's master address. */
static int
master_addr(const redisReply *r, char *host, size_t hostcap, int *port)
{
	long long p;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[0]->len == 0 || r->element[0]->len >= hostcap ||
	    strlen(r->element[0]->str) != r->element[0]->len ||
	    gw_strtonum(r->element[1]->str, 1, 65535, &p) == -1)
		return -1;
	memcpy(host, r->element[0]->str, r->element[0]->len + 1);
	*port = (int)p;
	return 0;
}

int
shr_sent_ask(struct shr_sentinels *s, size_t first, char *host, size_t hostcap,
             int *port, char *why, size_t cap)
{
	const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", s->name};
	redisContext *c;
	redisReply *r;
	char e[200];
	size_t i, k;

	pthread_mutex_lock(&s->lock);
	if (first >= s->n)
		first = s->next;
	pthread_mutex_unlock(&s->lock);
	snprintf(why, cap, "no Sentinel answered");
	for (i = 0; i < s->n && !atomic_load(&s->stop); i++) {
		k = (first + i) % s->n;
		c = shr_connect(NULL, s->hosts[k], s->ports[k], s->tv, s->user,
		                s->password, e, sizeof(e));
		r = c != NULL ? shr_command(c, 3, argv) : NULL;
		if (c != NULL && master_addr(r, host, hostcap, port) == 0) {
			freeReplyObject(r);
			redisFree(c);
			pthread_mutex_lock(&s->lock);
			s->next = k;
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		if (c != NULL)
			snprintf(e, sizeof(e), "%s",
			         r == NULL ? c->errstr
			         : r->type == REDIS_REPLY_ERROR
			             ? r->str
			             : "no master of that name");
		snprintf(why, cap, "Sentinel %s:%d: %s", s->hosts[k],
		         s->ports[k], e);
		if (r != NULL)
			freeReplyObject(r);
		if (c != NULL)
			redisFree(c);
	}
	return -1;
}

/* An address in a message: a name, IPv4 or IPv6, 1 to 255 bytes. */
static int
addr_ok(const char *p, size_t len)
{
	size_t i;

	if (len < 1 || len > 255)
		return 0;
	for (i = 0; i < len; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') ||
		      (p[i] >= 'A' && p[i] <= 'Z') ||
		      (p[i] >= '0' && p[i] <= '9') || p[i] == '.' ||
		      p[i] == ':' || p[i] == '-' || p[i] == '_'))
			return 0;
	return 1;
}

int
shr_switch_parse(const char *payload, size_t len, const char *name)
{
	const char *tok[5];
	size_t tlen[5], i, n = 0, start = 0;
	char port[8];
	long long v;

	for (i = 0; i <= len; i++) {
		if (i < len && payload[i] != ' ') {
			/* master_name is printable ASCII (config.c) */
			if (payload[i] < 0x21 || payload[i] > 0x7e)
				return -1;
			continue;
		}
		if (i == start || n == 5)
			return -1; /* an empty token or a sixth one */
		tok[n] = payload + start;
		tlen[n++] = i - start;
		start = i + 1;
	}
	if (n != 5)
		return -1;
	for (i = 1; i < 5; i += 2) {
		if (!addr_ok(tok[i], tlen[i]) || tlen[i + 1] >= sizeof(port))
			return -1;
		memcpy(port, tok[i + 1], tlen[i + 1]);
		port[tlen[i + 1]] = '\0';
		if (gw_strtonum(port, 1, 65535, &v) == -1)
			return -1;
	}
	return tlen[0] == strlen(name) && memcmp(tok[0], name, tlen[0]) == 0;
}

/*
 * A header line at buf[*pos]: type, a decimal in [lo, hi], CRLF.  1 read
 * (*pos past it), 0 incomplete, -1 malformed.
 */
static int
header(const char *buf, size_t len, size_t *pos, char type, long long lo,
       long long hi, long long *v)
{
	char num[24];
	size_t i = *pos, j;

	if (i >= len)
		return 0;
	if (buf[i] != type)
		return -1;
	for (j = i + 1; j < len && buf[j] != '\r'; j++)
		if (j - i > sizeof(num))
			return -1;
	if (j + 1 >= len)
		return j - i > sizeof(num) ? -1 : 0;
	if (buf[j + 1] != '\n' || j - i - 1 < 1 || j - i - 1 >= sizeof(num))
		return -1;
	memcpy(num, buf + i + 1, j - i - 1);
	num[j - i - 1] = '\0';
	if (gw_strtonum(num, lo, hi, v) == -1)
		return -1;
	*pos = j + 2;
	return 1;
}

/*
 * One RESP2 frame at buf: an array of 1 to 3 bulk strings (at most
 * SUB_ELEM_MAX bytes) or integers, the only shapes a subscription to
 * one channel answers.  Bytes used (> 0), 0 incomplete, -1 anything
 * else (an error reply too).
 */
static long
frame_parse(const char *buf, size_t len, struct frame *f)
{
	size_t pos = 0, i;
	long long n, v;
	int rc;

	rc = header(buf, len, &pos, '*', 1, 3, &n);
	if (rc != 1)
		return rc;
	f->n = (size_t)n;
	for (i = 0; i < f->n; i++) {
		if (pos < len && buf[pos] == ':') {
			rc = header(buf, len, &pos, ':', 0, 1000000, &v);
			if (rc != 1)
				return rc;
			f->s[i] = NULL;
			f->len[i] = 0;
			continue;
		}
		rc = header(buf, len, &pos, '$', 0, SUB_ELEM_MAX, &v);
		if (rc != 1)
			return rc;
		if (len - pos < (size_t)v + 2)
			return 0;
		if (buf[pos + v] != '\r' || buf[pos + v + 1] != '\n')
			return -1;
		f->s[i] = buf + pos;
		f->len[i] = (size_t)v;
		pos += (size_t)v + 2;
	}
	return (long)pos;
}

/* Element i of f is the string want. */
static int
elem_is(const struct frame *f, size_t i, const char *want)
{
	return i < f->n && f->s[i] != NULL && f->len[i] == strlen(want) &&
	       memcmp(f->s[i], want, f->len[i]) == 0;
}

/* why: a line of the Sentinel's, printable (it reaches the log). */
static void
describe(const char *buf, size_t len, char *why, size_t cap)
{
	char line[121];
	size_t i;

	if (len == 0 || buf[0] != '-') {
		snprintf(why, cap, "a reply that is no message");
		return;
	}
	for (i = 0; i + 1 < len && i < sizeof(line) - 1 && buf[i + 1] != '\r';
	     i++)
		line[i] =
		    buf[i + 1] >= 0x20 && buf[i + 1] < 0x7f ? buf[i + 1] : '?';
	line[i] = '\0';
	snprintf(why, cap, "Sentinel: %s", line);
}

/*
 * The complete frames in the buffer: *ours counts the +switch-master
 * messages for our master; others and pongs are dropped.  How many
 * frames, or -1 with why (the subscription is then lost: its framing
 * cannot be trusted).
 */
static int
take_frames(struct shr_sentinels *s, int *ours, char *why, size_t cap)
{
	struct frame f = {0};
	size_t off = 0;
	long used;
	int m, frames = 0;

	while (off < s->sub_used) {
		used = frame_parse(s->sub + off, s->sub_used - off, &f);
		if (used == 0)
			break;
		if (used < 0) {
			describe(s->sub + off, s->sub_used - off, why, cap);
			return -1;
		}
		off += (size_t)used;
		frames++;
		if (f.n != 3 || !elem_is(&f, 0, "message") ||
		    !elem_is(&f, 1, "+switch-master") || f.s[2] == NULL)
			continue;
		m = shr_switch_parse(f.s[2], f.len[2], s->name);
		if (m == 1)
			(*ours)++;
		else if (m == -1 && !s->malformed_logged) {
			s->malformed_logged = 1;
			fprintf(stderr, "hssgw: shared state: ignored a "
			                "malformed +switch-master message\n");
		}
	}
	memmove(s->sub, s->sub + off, s->sub_used - off);
	s->sub_used -= off;
	return frames;
}

/* Connects to Sentinel k and subscribes; NULL with a reason. */
static redisContext *
subscribe(struct shr_sentinels *s, size_t k, char *why, size_t cap)
{
	const char *argv[2] = {"SUBSCRIBE", "+switch-master"};
	redisContext *c;
	redisReply *r;
	size_t left;

	c = shr_connect(NULL, s->hosts[k], s->ports[k], s->tv, s->user,
	                s->password, why, cap);
	if (c == NULL)
		return NULL;
	r = shr_command(c, 2, argv);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "subscribe") != 0) {
		snprintf(why, cap, "SUBSCRIBE: %s",
		         r == NULL ? c->errstr
		         : r->type == REDIS_REPLY_ERROR
		             ? r->str
		             : "an unexpected answer");
		goto fail;
	}
	freeReplyObject(r);
	r = NULL;
	/* What hiredis read past the confirmation is ours to parse. */
	left = c->reader->len - c->reader->pos;
	if (left > sizeof(s->sub)) {
		snprintf(why, cap, "SUBSCRIBE: too long an answer");
		goto fail;
	}
	memcpy(s->sub, c->reader->buf + c->reader->pos, left);
	s->sub_used = left;
	s->malformed_logged = 0;
	return c;
fail:
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return NULL;
}

/* Reads what the subscription has; 0, or -1 with why. */
static int
sub_read(struct shr_sentinels *s, redisContext *c, char *why, size_t cap)
{
	ssize_t got;

	if (s->sub_used == sizeof(s->sub)) {
		snprintf(why, cap, "over %d bytes unparsed", SUB_BUF_MAX);
		return -1;
	}
	got = read(c->fd, s->sub + s->sub_used, sizeof(s->sub) - s->sub_used);
	if (got < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (got <= 0) {
		snprintf(why, cap, "%s",
		         got == 0 ? "connection closed" : strerror(errno));
		return -1;
	}
	s->sub_used += (size_t)got;
	return 0;
}

/* A PING on the subscription, written whole within the send timeout. */
static int
send_ping(redisContext *c, char *why, size_t cap)
{
	const char *argv[1] = {"PING"};
	int done = 0;

	if (redisAppendCommandArgv(c, 1, argv, NULL) != REDIS_OK)
		goto fail;
	while (!done)
		if (redisBufferWrite(c, &done) != REDIS_OK)
			goto fail;
	return 0;
fail:
	snprintf(why, cap, "PING: %s", c->errstr);
	return -1;
}

/* The earliest of the pending deadlines (0: none), from now, in ms. */
static int
wait_ms(int64_t now, const int64_t *at, size_t n)
{
	int64_t w = PING_MS;
	size_t i;

	for (i = 0; i < n; i++)
		if (at[i] != 0 && at[i] - now < w)
			w = at[i] - now;
	return w < 0 ? 0 : (int)w;
}

/*
 * Follows the subscription on Sentinel k until it is lost (why) or the
 * watcher stops.  at[]: the PING due, the PONG due, a check due, the
 * re-check due; 0 when none.
 */
static void
follow(struct shr_sentinels *s, redisContext *c, size_t k, char *why,
       size_t cap)
{
	enum { PING, PONG, CHECK, RECHECK, AT__MAX };
	int64_t at[AT__MAX] = {0}, now = mono_ms(), last_check = now;
	struct pollfd pfd[2];
	int n, got, ours = 0;

	at[PING] = now + PING_MS;
	for (;;) {
		pfd[0].fd = c->fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = s->stopfd[0];
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		n = poll(pfd, 2, wait_ms(now, at, AT__MAX));
		if (atomic_load(&s->stop))
			return;
		if (n == -1 && errno != EINTR) {
			snprintf(why, cap, "poll: %s", strerror(errno));
			return;
		}
		now = mono_ms();
		got = 0;
		if (pfd[0].revents != 0) {
			if (sub_read(s, c, why, cap) == -1)
				return;
			got = take_frames(s, &ours, why, cap);
			if (got == -1)
				return;
		}
		if (got > 0)
			at[PONG] = 0; /* a whole frame: it is alive */
		else if (at[PONG] != 0 && now >= at[PONG]) {
			snprintf(why, cap, "no answer to PING");
			return;
		}
		if (ours > 0) {
			ours = 0;
			at[CHECK] = last_check + CHECK_MIN_MS > now
			                ? last_check + CHECK_MIN_MS
			                : now;
			at[RECHECK] = now + SHR_RECHECK_MS;
		}
		if ((at[CHECK] != 0 && now >= at[CHECK]) ||
		    (at[RECHECK] != 0 && now >= at[RECHECK])) {
			if (at[CHECK] != 0 && now >= at[CHECK])
				at[CHECK] = 0;
			else
				at[RECHECK] = 0;
			s->changed(s->arg, k);
			now = last_check = mono_ms();
		}
		if (at[PING] != 0 && now >= at[PING]) {
			if (send_ping(c, why, cap) == -1)
				return;
			at[PING] = now + PING_MS;
			if (at[PONG] == 0)
				at[PONG] = now + PING_MS + s->tv_ms;
		}
	}
}

/* Sleeps ms unless told to stop; -1 when told. */
static int
pause_ms(struct shr_sentinels *s, int64_t ms)
{
	struct pollfd pfd = {.fd = s->stopfd[0], .events = POLLIN};

	if (poll(&pfd, 1, (int)ms) == -1 && errno != EINTR)
		return -1;
	return atomic_load(&s->stop) ? -1 : 0;
}

static void *
watch_main(void *arg)
{
	struct shr_sentinels *s = arg;
	redisContext *c;
	char why[256];
	int64_t backoff = BACKOFF_MIN_MS, since;
	size_t k;
	int failing = 0;

	pthread_mutex_lock(&s->lock);
	k = s->next;
	pthread_mutex_unlock(&s->lock);
	while (!atomic_load(&s->stop)) {
		c = subscribe(s, k, why, sizeof(why));
		if (c != NULL) {
			fprintf(stderr,
			        "hssgw: shared state: watching +switch-master "
			        "on Sentinel %s:%d\n",
			        s->hosts[k], s->ports[k]);
			failing = 0;
			since = mono_ms();
			/* A failover may have passed while unsubscribed. */
			s->changed(s->arg, k);
			follow(s, c, k, why, sizeof(why));
			redisFree(c);
			if (atomic_load(&s->stop))
				break;
			fprintf(stderr,
			        "hssgw: shared state: lost Sentinel %s:%d's "
			        "+switch-master (%s): watching the next\n",
			        s->hosts[k], s->ports[k], why);
			if (mono_ms() - since >= BACKOFF_MAX_MS)
				backoff = BACKOFF_MIN_MS;
		} else if (!failing) {
			failing = 1;
			fprintf(stderr,
			        "hssgw: shared state: cannot watch "
			        "+switch-master on Sentinel %s:%d (%s): trying "
			        "the others; a failover is followed on errors "
			        "meanwhile\n",
			        s->hosts[k], s->ports[k], why);
		}
		k = (k + 1) % s->n;
		if (pause_ms(s, backoff) == -1)
			break;
		backoff =
		    backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

int
shr_sent_watch(struct shr_sentinels *s, void (*changed)(void *, size_t),
               void *arg, char *why, size_t cap)
{
	sigset_t all, old;
	int i, rc = 0;

	pthread_mutex_lock(&s->lock);
	if (s->started)
		goto out;
	rc = -1;
	if (pipe(s->stopfd) == -1) {
		snprintf(why, cap, "pipe: %s", strerror(errno));
		s->stopfd[0] = s->stopfd[1] = -1;
		goto out;
	}
	for (i = 0; i < 2; i++)
		if (fcntl(s->stopfd[i], F_SETFD, FD_CLOEXEC) == -1 ||
		    fcntl(s->stopfd[i], F_SETFL, O_NONBLOCK) == -1) {
			snprintf(why, cap, "fcntl: %s", strerror(errno));
			goto out;
		}
	s->changed = changed;
	s->arg = arg;
	/* The watcher takes no signal: the daemon's main thread does. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	i = pthread_create(&s->thread, NULL, watch_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (i != 0) {
		snprintf(why, cap, "pthread_create: %s", strerror(i));
		goto out;
	}
	s->started = 1;
	rc = 0;
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}
