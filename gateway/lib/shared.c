/*
 * Shared state over Redis or Valkey (shared.h); with shared_redis.c and
 * shared_sentinel.c (shared_int.h) the only <hiredis/hiredis.h> users.
 * Owns a pool of connections (one per worker, each with connect and
 * command timeouts), the budget script, and the degraded flag: any failed
 * command marks Redis lost (logged once), and while lost at most one
 * caller a second probes it again, so a dead Redis costs a request
 * nothing but the probe.  Uses only commands Redis 5+ and Valkey share
 * (EVALSHA, SCRIPT LOAD, SET NX PX, GET, ZREM, PING, AUTH, SELECT).
 * Never logs the password, and wipes it when freed.
 *
 * With Sentinels (shared_state.sentinels), every connection starts by
 * asking them where the master is (SENTINEL get-master-addr-by-name) and
 * checks that the server it reached says ROLE master.  Two things make it
 * ask again: an error on the master (it died, or a demoted one answers
 * READONLY) marks Redis lost like any other, and the next probe asks; and
 * the watcher (shared_sentinel.c, started by the first call) hears a
 * +switch-master for our master name and asks at once, from its own
 * thread, without waiting for an error (a manual failover leaves the old
 * master up and writable for seconds).  A master at a new address
 * retires every pooled connection (a generation count: idle ones closed
 * at once, busy ones when given back) and is treated as a Redis that lost
 * its data (replication is asynchronous: the last grants may be
 * missing): no grant for a hold window from when the old one was lost,
 * so HSS never sees more than its budget.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "gw.h"
#include "shared.h"
#include "shared_int.h"

#define PROBE_MS  1000 /* while degraded, one probe a second */
#define KEY_MAX   256
#define ID_HEX    16 /* random bytes in a grant or claim id */
#define VALUE_MAX 65536

/*
 * The budget, atomically on the server with the server's clock, so
 * instances with skewed clocks agree.  KEYS[1]: the grants (member: a
 * fixed-length random id then the caller; score: Redis time in ms);
 * KEYS[2]: the callers seen (score: last seen).  ARGV: per_minute,
 * caller, hold_ms, window_ms, the new grant's id.  The same rules as
 * budget.c: a grant counts while younger than hold_ms; a caller is
 * active for window_ms; the share is ceil(per_minute / active); at most
 * per_minute grants in any hold_ms.  Returns {1, 0} granted or {0, retry
 * ms}.  Redis < 7 replicates a script that read TIME only as effects,
 * which redis.replicate_commands() asks for (a no-op on 7 and Valkey).
 */
static const char budget_lua[] =
    "if redis.replicate_commands ~= nil then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local per = tonumber(ARGV[1])\n"
    "local caller = ARGV[2]\n"
    "local hold = tonumber(ARGV[3])\n"
    "local win = tonumber(ARGV[4])\n"
    "local idlen = string.len(ARGV[5])\n"
    "local function n(x) return string.format('%.0f', x) end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', n(now - hold))\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', n(now - win))\n"
    "redis.call('ZADD', KEYS[2], n(now), caller)\n"
    "redis.call('PEXPIRE', KEYS[2], n(win))\n"
    "local active = redis.call('ZCARD', KEYS[2])\n"
    "local share = math.floor((per + active - 1) / active)\n"
    "local g = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')\n"
    "local used, mine = 0, nil\n"
    "for i = 1, #g, 2 do\n"
    "  if string.sub(g[i], idlen + 1) == caller then\n"
    "    used = used + 1\n"
    "    local s = tonumber(g[i + 1])\n"
    "    if mine == nil or s < mine then mine = s end\n"
    "  end\n"
    "end\n"
    "if used >= share then return {0, mine + hold - now} end\n"
    "if #g / 2 >= per then return {0, tonumber(g[2]) + hold - now} end\n"
    "redis.call('ZADD', KEYS[1], n(now), ARGV[5] .. caller)\n"
    "redis.call('PEXPIRE', KEYS[1], n(hold))\n"
    "return {1, 0}\n";

/*
 * A granted call completed: its grant (KEYS[1], member ARGV[1]) now
 * counts from Redis's time, the clock it was granted by, never earlier
 * than before (a grant refunded or aged out is gone: nothing to move).
 * ARGV[2]: hold_ms, the grants' key's life from now.  Returns 1 moved, 0
 * not.  Reads the set with ZRANGE (at most per_minute grants) rather
 * than ZSCORE, so an ACL user granted the budget script's commands
 * (docs/SHARED_STATE.md) needs nothing more.
 */
static const char done_lua[] =
    "if redis.replicate_commands ~= nil then redis.replicate_commands() end\n"
    "local g = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')\n"
    "local s = nil\n"
    "for i = 1, #g, 2 do\n"
    "  if g[i] == ARGV[1] then s = g[i + 1] end\n"
    "end\n"
    "if s == nil then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "if now <= tonumber(s) then return 0 end\n"
    "redis.call('ZADD', KEYS[1], 'XX', string.format('%.0f', now), ARGV[1])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "return 1\n";

/* Deletes a claim only when it is still ours (it may have expired). */
static const char release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

enum script { SCRIPT_BUDGET, SCRIPT_RELEASE, SCRIPT_DONE, SCRIPT__MAX };

static const char *const script_src[SCRIPT__MAX] = {
    [SCRIPT_BUDGET] = budget_lua,
    [SCRIPT_RELEASE] = release_lua,
    [SCRIPT_DONE] = done_lua,
};

struct conn {
	redisContext *c;
	int busy;
	uint64_t gen; /* the master generation it was dialled in */
};

struct gw_shared {
	pthread_mutex_t lock;
	char *unix_path, *host, *username, *password, *prefix;
	int port, db;
	/* Sentinels (sent != NULL): where master_name's master is */
	struct shr_sentinels *sent;
	atomic_int watching; /* the watcher was started */
	char master[300];    /* under lock: the master's "host:port", or "" */
	int64_t hold_from;   /* under lock: a new master since; 0: none */
	/*
	 * Under lock: gen counts retirements of the pool (a new master, or
	 * one the watcher could not confirm); hold_gen is the gen of the
	 * last new master; found counts the masters noted, so a dial that
	 * asked a Sentinel before a newer answer was noted cannot undo it.
	 */
	uint64_t gen, hold_gen, found;
	struct timeval tv;
	struct conn *conns;
	size_t nconns;
	char sha[SCRIPT__MAX][41]; /* SHA-1 of each script, for EVALSHA */
	/* under lock */
	int degraded;
	int64_t degraded_since, recovered_at, next_probe;
};

static int
sha1_hex(const char *s, char out[41])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		return -1;
	for (i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[40] = '\0';
	return 0;
}

struct gw_shared *
gw_shared_new(const struct gw_config *conf, size_t pool, char *err,
              size_t errlen)
{
	struct gw_shared *sh = NULL, *ret = NULL;
	size_t i;

	if (!gw_conf_shared(conf) || pool < 1 || pool > 1024) {
		snprintf(err, errlen, "shared_state: no redis");
		return NULL;
	}
	sh = calloc(1, sizeof(*sh));
	if (sh == NULL)
		goto nomem;
	pthread_mutex_init(&sh->lock, NULL);
	atomic_init(&sh->watching, 0);
	sh->conns = calloc(pool, sizeof(*sh->conns));
	sh->nconns = pool;
	sh->unix_path = gw_strdup(conf->shared_unix);
	sh->host = gw_strdup(conf->shared_host);
	sh->username = gw_strdup(conf->shared_username);
	sh->prefix =
	    strdup(conf->shared_key_prefix != NULL ? conf->shared_key_prefix
	                                           : "hssgw:");
	if (sh->conns == NULL || sh->prefix == NULL ||
	    (conf->shared_unix != NULL && sh->unix_path == NULL) ||
	    (conf->shared_host != NULL && sh->host == NULL) ||
	    (conf->shared_username != NULL && sh->username == NULL))
		goto nomem;
	sh->port = (int)conf->shared_port;
	sh->db = (int)conf->shared_db;
	sh->tv.tv_sec = (time_t)(conf->shared_timeout_ms / 1000);
	sh->tv.tv_usec = (suseconds_t)(conf->shared_timeout_ms % 1000) * 1000;
	if (conf->nshared_sentinels > 0) {
		sh->sent = shr_sent_new(conf, sh->tv, err, errlen);
		if (sh->sent == NULL)
			goto out;
	}
	if (conf->shared_password_file != NULL &&
	    shr_secret_read(conf->shared_password_file, "password_file",
	                    &sh->password, err, errlen) == -1)
		goto out;
	for (i = 0; i < SCRIPT__MAX; i++)
		if (sha1_hex(script_src[i], sh->sha[i]) == -1) {
			snprintf(err, errlen, "shared_state: no SHA-1");
			goto out;
		}
	sh->next_probe = 0;
	ret = sh;
	sh = NULL;
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	gw_shared_free(sh);
	return ret;
}

void
gw_shared_free(struct gw_shared *sh)
{
	size_t i;

	if (sh == NULL)
		return;
	/* First: the watcher's callback uses the pool. */
	shr_sent_free(sh->sent);
	for (i = 0; sh->conns != NULL && i < sh->nconns; i++)
		if (sh->conns[i].c != NULL)
			redisFree(sh->conns[i].c);
	free(sh->conns);
	free(sh->unix_path);
	free(sh->host);
	free(sh->username);
	gw_secret_free(sh->password);
	free(sh->prefix);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
}

/* Under lock: closes the idle connections. */
static void
close_idle_locked(struct gw_shared *sh)
{
	size_t i;

	for (i = 0; i < sh->nconns; i++)
		if (!sh->conns[i].busy && sh->conns[i].c != NULL) {
			redisFree(sh->conns[i].c);
			sh->conns[i].c = NULL;
		}
}

/*
 * Under lock: retires the whole pool, so no connection outlives the
 * master it was dialled to: the idle ones now, the busy ones when given
 * back (conn_put).
 */
static void
retire_locked(struct gw_shared *sh)
{
	sh->gen++;
	close_idle_locked(sh);
}

/*
 * Redis is lost: log once per transition, probe again in a second.  The
 * idle connections go too: they lead to the same lost server, and each
 * failing once after it returns would mark it lost again.
 */
static void
mark_down(struct gw_shared *sh, const char *why, int64_t now)
{
	pthread_mutex_lock(&sh->lock);
	close_idle_locked(sh);
	if (!sh->degraded) {
		sh->degraded = 1;
		sh->degraded_since = now;
		fprintf(stderr,
		        "hssgw: shared state: redis unavailable (%s): "
		        "degraded, local budget\n",
		        why);
	}
	sh->next_probe = now + PROBE_MS;
	pthread_mutex_unlock(&sh->lock);
}

static void
mark_up(struct gw_shared *sh, int64_t now)
{
	pthread_mutex_lock(&sh->lock);
	if (sh->degraded) {
		sh->degraded = 0;
		sh->recovered_at = now;
		fprintf(stderr, "hssgw: shared state: redis is back: shared\n");
	}
	pthread_mutex_unlock(&sh->lock);
}

/* 0 when the server says ROLE master; a replica (or a demoted master
 * not yet told) is no place for the budget. */
static int
is_master(redisContext *c, char *why, size_t cap)
{
	const char *argv[1] = {"ROLE"};
	redisReply *r = shr_command(c, 1, argv);
	int ok;

	ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	     r->element[0]->type == REDIS_REPLY_STRING &&
	     strcmp(r->element[0]->str, "master") == 0;
	if (!ok)
		snprintf(why, cap, "ROLE: %s",
		         r == NULL                      ? c->errstr
		         : r->type == REDIS_REPLY_ERROR ? r->str
		                                        : "not the master");
	if (r != NULL)
		freeReplyObject(r);
	return ok ? 0 : -1;
}

/*
 * The master reached is at host:port, as a Sentinel said when found
 * masters had been noted.  0, with *gen the generation a connection to it
 * belongs to; -1 when another master was noted since and this is not it
 * (the answer came from a Sentinel not yet told of a failover: ask
 * again).  Another address than the last one is a failover: the pool is
 * retired and, since the new master may lack the last grants, grants are
 * held from when the old one was lost (now, if this instance saw no
 * error; never earlier than a hold already running), as for a Redis that
 * lost its data.
 */
static int
note_master(struct gw_shared *sh, const char *host, int port, uint64_t found,
            int64_t now, uint64_t *gen)
{
	char addr[sizeof(sh->master)];
	int64_t from;

	snprintf(addr, sizeof(addr), "%s:%d", host, port);
	pthread_mutex_lock(&sh->lock);
	if (strcmp(sh->master, addr) != 0 && sh->found != found) {
		pthread_mutex_unlock(&sh->lock);
		return -1;
	}
	if (sh->master[0] != '\0' && strcmp(sh->master, addr) != 0) {
		from = sh->degraded ? sh->degraded_since : now;
		if (from > sh->hold_from)
			sh->hold_from = from;
		retire_locked(sh);
		sh->hold_gen = sh->gen;
		fprintf(stderr,
		        "hssgw: shared state: new master %s (was %s): "
		        "failover; no grant until a window has passed since "
		        "the old one was lost\n",
		        addr, sh->master);
	}
	memcpy(sh->master, addr, sizeof(addr));
	sh->found++;
	*gen = sh->gen;
	pthread_mutex_unlock(&sh->lock);
	return 0;
}

/*
 * Asks the Sentinels (first: as shr_sent_ask) for the master, connects,
 * authenticates, checks ROLE and notes it (*gen): the connection, or NULL
 * with a reason.  An answer superseded while connecting is asked once
 * more.
 */
static redisContext *
find_master(struct gw_shared *sh, size_t first, int64_t now, uint64_t *gen,
            char *why, size_t cap)
{
	redisContext *c;
	char host[256];
	uint64_t found;
	int port, attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		pthread_mutex_lock(&sh->lock);
		found = sh->found;
		pthread_mutex_unlock(&sh->lock);
		if (shr_sent_ask(sh->sent, first, host, sizeof(host), &port,
		                 why, cap) == -1)
			return NULL;
		c = shr_connect(NULL, host, port, sh->tv, sh->username,
		                sh->password, why, cap);
		if (c == NULL)
			return NULL;
		if (is_master(c, why, cap) == -1) {
			redisFree(c);
			return NULL;
		}
		if (note_master(sh, host, port, found, now, gen) == 0)
			return c;
		redisFree(c);
		snprintf(why, cap,
		         "the Sentinels named another master while "
		         "connecting");
	}
	return NULL;
}

/*
 * Connects (with Sentinels: to the master they name, checked with ROLE),
 * authenticates and selects the db; NULL with a reason.  *gen: the
 * generation the connection belongs to.
 */
static redisContext *
dial(struct gw_shared *sh, int64_t now, uint64_t *gen, char *why, size_t cap)
{
	redisContext *c;
	redisReply *r;
	const char *argv[2];
	char db[16];

	if (sh->sent != NULL)
		return find_master(sh, SHR_SENT_LAST, now, gen, why, cap);
	*gen = 0; /* without Sentinels the pool is never retired */
	c = shr_connect(sh->unix_path, sh->host, sh->port, sh->tv, sh->username,
	                sh->password, why, cap);
	if (c == NULL || sh->db == 0)
		return c;
	snprintf(db, sizeof(db), "%d", sh->db);
	argv[0] = "SELECT";
	argv[1] = db;
	r = shr_command(c, 2, argv);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		snprintf(why, cap, "SELECT: %s",
		         r != NULL ? r->str : c->errstr);
		if (r != NULL)
			freeReplyObject(r);
		redisFree(c);
		return NULL;
	}
	freeReplyObject(r);
	return c;
}

/*
 * The watcher's call, from its thread: master_name's master may have
 * changed (a +switch-master for it, a new subscription, or the re-check
 * after a message).  Asks the Sentinels again, k (the one that told)
 * first, never the message's address, and checks ROLE: a new address is
 * a failover (note_master); the same one changes nothing, so a stale or
 * forged message costs a query.  When no master is confirmed the pool is
 * retired all the same: the next call dials through the Sentinels and,
 * failing, degrades (closed), rather than writing on to a master that
 * may be gone.
 */
static void
sentinel_changed(void *arg, size_t k)
{
	struct gw_shared *sh = arg;
	redisContext *c;
	char why[256];
	uint64_t gen;

	c = find_master(sh, k, gw_now_ms(), &gen, why, sizeof(why));
	if (c != NULL) {
		redisFree(c);
		return;
	}
	pthread_mutex_lock(&sh->lock);
	retire_locked(sh);
	pthread_mutex_unlock(&sh->lock);
	fprintf(stderr,
	        "hssgw: shared state: no master confirmed after a word "
	        "from the Sentinels (%s): connections dropped\n",
	        why);
}

/* The watcher, started by the first call (never for a snapshot only
 * loaded, such as check-config's or a reload's that is dropped). */
static void
watch_start(struct gw_shared *sh)
{
	char why[256];

	if (shr_sent_watch(sh->sent, sentinel_changed, sh, why, sizeof(why)) ==
	    -1)
		fprintf(stderr,
		        "hssgw: shared state: no Sentinel watcher (%s): "
		        "failovers followed on errors only\n",
		        why);
}

/*
 * A connection for this call, or NULL: degraded and no probe due (one
 * caller a second gets to probe), or the dial failed.
 */
static struct conn *
conn_get(struct gw_shared *sh, int64_t now)
{
	struct conn *cn = NULL;
	char why[256];
	size_t i;

	if (sh->sent != NULL &&
	    !atomic_load_explicit(&sh->watching, memory_order_relaxed) &&
	    !atomic_exchange(&sh->watching, 1))
		watch_start(sh);
	pthread_mutex_lock(&sh->lock);
	if (sh->degraded) {
		if (now < sh->next_probe) {
			pthread_mutex_unlock(&sh->lock);
			return NULL;
		}
		sh->next_probe = now + PROBE_MS;
	}
	for (i = 0; i < sh->nconns; i++)
		if (!sh->conns[i].busy &&
		    (cn == NULL || (cn->c == NULL && sh->conns[i].c != NULL)))
			cn = &sh->conns[i];
	if (cn != NULL)
		cn->busy = 1;
	pthread_mutex_unlock(&sh->lock);
	if (cn == NULL)
		return NULL; /* more callers than the pool: never waits */
	if (cn->c == NULL)
		cn->c = dial(sh, now, &cn->gen, why, sizeof(why));
	if (cn->c == NULL) {
		mark_down(sh, why, now);
		pthread_mutex_lock(&sh->lock);
		cn->busy = 0;
		pthread_mutex_unlock(&sh->lock);
		return NULL;
	}
	return cn;
}

/*
 * Returns a connection; broken: drop it and mark Redis lost.  One retired
 * while in use is closed; if it was dialled before the last new master,
 * its command may have taken a grant on the old one after the hold
 * began, so the hold runs from now.
 */
static void
conn_put(struct gw_shared *sh, struct conn *cn, const char *broken, int64_t now)
{
	int64_t t;

	if (broken != NULL) {
		redisFree(cn->c);
		cn->c = NULL;
		mark_down(sh, broken, now);
	} else
		mark_up(sh, now);
	pthread_mutex_lock(&sh->lock);
	if (cn->c != NULL && cn->gen != sh->gen) {
		t = gw_now_ms();
		if (cn->gen < sh->hold_gen && t > sh->hold_from)
			sh->hold_from = t;
		redisFree(cn->c);
		cn->c = NULL;
	}
	cn->busy = 0;
	pthread_mutex_unlock(&sh->lock);
}

/*
 * Runs one command on a pooled connection.  The reply (never an error
 * reply) is the caller's, or NULL: the connection or the command failed,
 * and Redis is marked lost (a refused command, such as an ACL's NOPERM,
 * leaves no decision either: fail to the local budget).
 */
static redisReply *
run(struct gw_shared *sh, int argc, const char **argv, int64_t now)
{
	struct conn *cn = conn_get(sh, now);
	redisReply *r;
	char why[256];

	if (cn == NULL)
		return NULL;
	r = shr_command(cn->c, argc, argv);
	if (r == NULL) {
		snprintf(why, sizeof(why), "%s: %s", argv[0], cn->c->errstr);
		conn_put(sh, cn, why, now);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "%s: %s", argv[0], r->str);
		freeReplyObject(r);
		conn_put(sh, cn, why, now);
		return NULL;
	}
	conn_put(sh, cn, NULL, now);
	return r;
}

/*
 * EVALSHA, and on NOSCRIPT (a restarted or flushed Redis) SCRIPT LOAD and
 * once more.  argv[0..2] are filled here: the caller leaves them free.
 */
static redisReply *
run_script(struct gw_shared *sh, enum script s, int argc, const char **argv,
           int64_t now)
{
	struct conn *cn = conn_get(sh, now);
	const char *load[3] = {"SCRIPT", "LOAD", script_src[s]};
	redisReply *r = NULL;
	char why[256];
	int attempt;

	if (cn == NULL)
		return NULL;
	argv[0] = "EVALSHA";
	argv[1] = sh->sha[s];
	for (attempt = 0; attempt < 2; attempt++) {
		r = shr_command(cn->c, argc, argv);
		if (r == NULL)
			goto broken;
		if (r->type != REDIS_REPLY_ERROR)
			break;
		if (attempt > 0 || strncmp(r->str, "NOSCRIPT", 8) != 0)
			goto refused;
		freeReplyObject(r);
		r = shr_command(cn->c, 3, load);
		if (r == NULL)
			goto broken;
		if (r->type == REDIS_REPLY_ERROR)
			goto refused;
		freeReplyObject(r);
		r = NULL;
	}
	conn_put(sh, cn, NULL, now);
	return r;
broken:
	snprintf(why, sizeof(why), "EVALSHA: %s", cn->c->errstr);
	conn_put(sh, cn, why, now);
	return NULL;
refused:
	snprintf(why, sizeof(why), "EVALSHA: %s", r->str);
	freeReplyObject(r);
	conn_put(sh, cn, why, now);
	return NULL;
}

/* prefix + ns + ":" + hex SHA-256 of key; 0 or -1. */
static int
cache_key(const struct gw_shared *sh, const char *ns, const char *key,
          char out[KEY_MAX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	char h[65];
	unsigned int mdlen = 0, i;
	int n;

	if (gw_sha256(key, strlen(key), md) == -1)
		return -1;
	mdlen = 32;
	for (i = 0; i < mdlen; i++) {
		h[2 * i] = hex[md[i] >> 4];
		h[2 * i + 1] = hex[md[i] & 0xf];
	}
	h[64] = '\0';
	n = snprintf(out, KEY_MAX, "%s%s:%s", sh->prefix, ns, h);
	return n > 0 && n < KEY_MAX ? 0 : -1;
}

/*
 * What is left of the hold after a new master (a failover: it may have
 * lost the last grants), in ms; 0 when none.
 */
static int64_t
hold_left(struct gw_shared *sh, int64_t hold_ms, int64_t now)
{
	int64_t left;

	pthread_mutex_lock(&sh->lock);
	left = sh->hold_from != 0 && now < sh->hold_from + hold_ms
	           ? sh->hold_from + hold_ms - now
	           : 0;
	pthread_mutex_unlock(&sh->lock);
	return left;
}

int
gw_shared_budget_take(struct gw_shared *sh, const char *bucket,
                      const char *caller, long long per_minute, int64_t hold_ms,
                      int64_t window_ms, int64_t now_ms, int64_t *retry_ms,
                      char grant[GW_SHARED_GRANT_MAX + 1])
{
	char kg[KEY_MAX], ks[KEY_MAX], per[24], hold[24], win[24];
	char id[2 * ID_HEX + 1];
	const char *argv[10];
	redisReply *r;
	int64_t held;
	int rc = -1;

	*retry_ms = window_ms;
	grant[0] = '\0';
	if (sh == NULL || strlen(bucket) > 160 ||
	    gw_random_hex(id, ID_HEX) == -1)
		return -1;
	held = hold_left(sh, hold_ms, now_ms);
	if (held > 0) {
		*retry_ms = held;
		return 1;
	}
	if (snprintf(kg, sizeof(kg), "%sbudget:{%s}:grants", sh->prefix,
	             bucket) >= (int)sizeof(kg) ||
	    snprintf(ks, sizeof(ks), "%sbudget:{%s}:callers", sh->prefix,
	             bucket) >= (int)sizeof(ks))
		return -1;
	snprintf(per, sizeof(per), "%lld", per_minute);
	snprintf(hold, sizeof(hold), "%lld", (long long)hold_ms);
	snprintf(win, sizeof(win), "%lld", (long long)window_ms);
	argv[2] = "2";
	argv[3] = kg;
	argv[4] = ks;
	argv[5] = per;
	argv[6] = caller;
	argv[7] = hold;
	argv[8] = win;
	argv[9] = id;
	r = run_script(sh, SCRIPT_BUDGET, 10, argv, now_ms);
	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    r->element[1]->type != REDIS_REPLY_INTEGER) {
		mark_down(sh, "the budget script answered in a bad shape",
		          now_ms);
		goto out;
	}
	held = r->element[0]->integer == 1 ? hold_left(sh, hold_ms, now_ms) : 0;
	if (held > 0) {
		/* A new master was noted while the script ran. */
		gw_shared_budget_refund(sh, bucket, caller, id, now_ms);
		*retry_ms = held;
		rc = 1;
	} else if (r->element[0]->integer == 1) {
		snprintf(grant, GW_SHARED_GRANT_MAX + 1, "%s", id);
		rc = 0;
	} else {
		*retry_ms = r->element[1]->integer;
		rc = 1;
	}
out:
	if (*retry_ms < 1)
		*retry_ms = 1;
	freeReplyObject(r);
	return rc;
}

void
gw_shared_budget_refund(struct gw_shared *sh, const char *bucket,
                        const char *caller, const char *grant, int64_t now_ms)
{
	char kg[KEY_MAX], member[GW_SHARED_GRANT_MAX + 512];
	const char *argv[3];
	redisReply *r;

	if (sh == NULL || grant == NULL || grant[0] == '\0' ||
	    snprintf(kg, sizeof(kg), "%sbudget:{%s}:grants", sh->prefix,
	             bucket) >= (int)sizeof(kg) ||
	    snprintf(member, sizeof(member), "%s%s", grant, caller) >=
	        (int)sizeof(member))
		return;
	argv[0] = "ZREM";
	argv[1] = kg;
	argv[2] = member;
	r = run(sh, 3, argv, now_ms);
	if (r != NULL)
		freeReplyObject(r);
}

void
gw_shared_budget_done(struct gw_shared *sh, const char *bucket,
                      const char *caller, const char *grant, int64_t hold_ms,
                      int64_t now_ms)
{
	char kg[KEY_MAX], member[GW_SHARED_GRANT_MAX + 512], hold[24];
	const char *argv[6];
	redisReply *r;

	if (sh == NULL || bucket == NULL || caller == NULL || grant == NULL ||
	    grant[0] == '\0' ||
	    snprintf(kg, sizeof(kg), "%sbudget:{%s}:grants", sh->prefix,
	             bucket) >= (int)sizeof(kg) ||
	    snprintf(member, sizeof(member), "%s%s", grant, caller) >=
	        (int)sizeof(member))
		return;
	snprintf(hold, sizeof(hold), "%lld", (long long)hold_ms);
	argv[2] = "1";
	argv[3] = kg;
	argv[4] = member;
	argv[5] = hold;
	r = run_script(sh, SCRIPT_DONE, 6, argv, now_ms);
	if (r != NULL)
		freeReplyObject(r);
}

int
gw_shared_fallback(struct gw_shared *sh, int64_t hold_ms, int64_t now_ms,
                   int64_t *retry_ms)
{
	int64_t until;

	pthread_mutex_lock(&sh->lock);
	until = sh->degraded_since + hold_ms;
	pthread_mutex_unlock(&sh->lock);
	*retry_ms = until - now_ms;
	return now_ms < until ? 1 : 0;
}

int
gw_shared_armed(struct gw_shared *sh, int64_t hold_ms, int64_t now_ms)
{
	int armed;

	pthread_mutex_lock(&sh->lock);
	armed = sh->degraded ||
	        (sh->recovered_at != 0 && now_ms < sh->recovered_at + hold_ms);
	pthread_mutex_unlock(&sh->lock);
	return armed;
}

char *
gw_shared_get(struct gw_shared *sh, const char *ns, const char *key,
              int64_t now_ms)
{
	char k[KEY_MAX];
	const char *argv[2];
	redisReply *r;
	char *v = NULL;

	if (sh == NULL || cache_key(sh, ns, key, k) == -1)
		return NULL;
	argv[0] = "GET";
	argv[1] = k;
	r = run(sh, 2, argv, now_ms);
	if (r == NULL)
		return NULL;
	if (r->type == REDIS_REPLY_STRING && r->len <= VALUE_MAX &&
	    strlen(r->str) == r->len)
		v = strdup(r->str);
	freeReplyObject(r);
	return v;
}

int
gw_shared_put(struct gw_shared *sh, const char *ns, const char *key,
              const char *value, int64_t ttl_ms, int add_only, int64_t now_ms)
{
	char k[KEY_MAX], ttl[24];
	const char *argv[6];
	redisReply *r;
	int argc = 5, rc = -1;

	if (sh == NULL || ttl_ms < 1 || strlen(value) > VALUE_MAX ||
	    cache_key(sh, ns, key, k) == -1)
		return -1;
	snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
	argv[0] = "SET";
	argv[1] = k;
	argv[2] = value;
	argv[3] = "PX";
	argv[4] = ttl;
	if (add_only)
		argv[argc++] = "NX";
	r = run(sh, argc, argv, now_ms);
	if (r == NULL)
		return -1;
	rc = r->type == REDIS_REPLY_NIL ? 1 : 0;
	freeReplyObject(r);
	return rc;
}

int
gw_shared_claim(struct gw_shared *sh, const char *ns, const char *key,
                int64_t ttl_ms, char token[GW_SHARED_TOKEN_MAX + 1],
                int64_t now_ms)
{
	char id[2 * ID_HEX + 1];
	int rc;

	token[0] = '\0';
	if (gw_random_hex(id, ID_HEX) == -1)
		return -1;
	rc = gw_shared_put(sh, ns, key, id, ttl_ms, 1, now_ms);
	if (rc == 0)
		snprintf(token, GW_SHARED_TOKEN_MAX + 1, "%s", id);
	return rc == -1 ? -1 : rc == 0 ? 1 : 0;
}

void
gw_shared_release(struct gw_shared *sh, const char *ns, const char *key,
                  const char *token, int64_t now_ms)
{
	char k[KEY_MAX];
	const char *argv[6];
	redisReply *r;

	if (sh == NULL || token == NULL || token[0] == '\0' ||
	    cache_key(sh, ns, key, k) == -1)
		return;
	argv[2] = "1";
	argv[3] = k;
	argv[4] = token;
	r = run_script(sh, SCRIPT_RELEASE, 5, argv, now_ms);
	if (r != NULL)
		freeReplyObject(r);
}

int
gw_shared_check(struct gw_shared *sh, int64_t now_ms)
{
	const char *argv[1] = {"PING"};
	redisReply *r;

	if (sh == NULL)
		return 0;
	r = run(sh, 1, argv, now_ms);
	if (r != NULL)
		freeReplyObject(r);
	return gw_shared_degraded(sh);
}

int
gw_shared_degraded(struct gw_shared *sh)
{
	int d;

	if (sh == NULL)
		return 0;
	pthread_mutex_lock(&sh->lock);
	d = sh->degraded;
	pthread_mutex_unlock(&sh->lock);
	return d;
}
