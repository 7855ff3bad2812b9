/*
 * Shared state against a real redis-server the test starts on a unix
 * socket in a temp dir (skipped when redis-server is not installed): the
 * budget script's semantics (Redis's clock, the window, fair shares, the
 * refund, NOSCRIPT after a flush), the caches and claims, degraded mode
 * and recovery (probing at most once a second), and an ACL user with a
 * wrong password failing closed (degraded) next to its positive control.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "budget.h"
#include "shared.h"

#define HOLD GW_BUDGET_HOLD_MS
#define WIN  GW_BUDGET_WINDOW_MS

static char dir[] = "/tmp/hssgw-shared-XXXXXX";
static char sock[256];
static pid_t redis_pid = -1;

/* Whether redis-server accepts connections on sock. */
static int
accepting(void)
{
	struct sockaddr_un sa;
	int fd, ok;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sa.sun_path))
		return 0;
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return 0;
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Starts redis-server on sock, with extra "--key value" pairs; 0 or -1. */
static int
redis_start(const char *user_line)
{
	struct stat sb;
	struct timespec ts = {0, 20 * 1000000L};
	char logf[300];
	int i;

	snprintf(logf, sizeof(logf), "%s/redis.log", dir);
	unlink(sock);
	redis_pid = fork();
	if (redis_pid == 0) {
		if (user_line != NULL)
			execlp("redis-server", "redis-server", "--port", "0",
			       "--unixsocket", sock, "--save", "",
			       "--appendonly", "no", "--loglevel", "warning",
			       "--logfile", logf, "--user", "hssgw", "on",
			       user_line, "~hssgw:*", "+@all", "--user",
			       "default", "off", (char *)NULL);
		else
			execlp("redis-server", "redis-server", "--port", "0",
			       "--unixsocket", sock, "--save", "",
			       "--appendonly", "no", "--loglevel", "warning",
			       "--logfile", logf, (char *)NULL);
		_exit(127);
	}
	/* Until it accepts a connection, not merely until the socket file
	 * exists: redis binds before it listens, and on a slow machine a
	 * client in between is refused (tests/fresh-root.sh saw it). */
	for (i = 0; i < 500; i++) {
		if (stat(sock, &sb) == 0 && accepting())
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

static void
redis_stop(void)
{
	if (redis_pid > 0) {
		kill(redis_pid, SIGKILL);
		waitpid(redis_pid, NULL, 0);
	}
	redis_pid = -1;
	unlink(sock);
}

static int
setup(void **state)
{
	(void)state;
	/* As in hssgw (fcgi.c): a write to a dead Redis fails, not kills. */
	signal(SIGPIPE, SIG_IGN);
	if (system("command -v redis-server >/dev/null 2>&1") != 0)
		return 0;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
	return redis_start(NULL);
}

static int
teardown(void **state)
{
	char cmd[512];

	(void)state;
	redis_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct gw_shared *
client(const char *user, const char *pwfile)
{
	static char redis[300];
	struct gw_config conf;
	char err[256];
	struct gw_shared *sh;

	memset(&conf, 0, sizeof(conf));
	snprintf(redis, sizeof(redis), "unix:%s", sock);
	conf.shared_redis = redis;
	conf.shared_unix = sock;
	conf.shared_username = (char *)user;
	conf.shared_password_file = (char *)pwfile;
	conf.shared_timeout_ms = 200;
	conf.shared_expected_instances = 2;
	sh = gw_shared_new(&conf, 4, err, sizeof(err));
	if (sh == NULL)
		fprintf(stderr, "gw_shared_new: %s\n", err);
	return sh;
}

#define SKIP_WITHOUT_REDIS()                                                   \
	do {                                                                   \
		if (redis_pid <= 0)                                            \
			skip();                                                \
	} while (0)

static int
take(struct gw_shared *sh, const char *bucket, const char *caller,
     int64_t *retry, char *grant)
{
	return gw_shared_budget_take(sh, bucket, caller, 5, HOLD, WIN, 1000,
	                             retry, grant);
}

/* At most 5 grants in the window; retry when the oldest leaves it. */
static void
window_limit(void **state)
{
	struct gw_shared *sh;
	char g[GW_SHARED_GRANT_MAX + 1];
	int64_t retry = 0;
	int i;

	(void)state;
	SKIP_WITHOUT_REDIS();
	sh = client(NULL, NULL);
	assert_non_null(sh);
	for (i = 0; i < 5; i++) {
		assert_int_equal(take(sh, "w|export", "alice", &retry, g), 0);
		assert_int_equal(strlen(g), 32);
	}
	assert_int_equal(take(sh, "w|export", "alice", &retry, g), 1);
	/* Redis's clock: the first grant was made a moment ago. */
	assert_true(retry > HOLD - 2000 && retry <= HOLD);
	/* A newcomer is refused too: the bucket holds 5 in the window. */
	assert_int_equal(take(sh, "w|export", "bob", &retry, g), 1);
	assert_true(retry > HOLD - 2000 && retry <= HOLD);
	/* Another bucket is apart. */
	assert_int_equal(take(sh, "w|export-task", "bob", &retry, g), 0);
	assert_int_equal(gw_shared_degraded(sh), 0);
	gw_shared_free(sh);
}

/* Two callers share ceil(5 / 2) = 3 each, across clients (instances). */
static void
fair_share(void **state)
{
	struct gw_shared *a, *b;
	char g[GW_SHARED_GRANT_MAX + 1];
	int64_t retry = 0;
	int i;

	(void)state;
	SKIP_WITHOUT_REDIS();
	a = client(NULL, NULL);
	b = client(NULL, NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(take(b, "f|export", "bob", &retry, g), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(take(a, "f|export", "alice", &retry, g), 0);
	assert_int_equal(take(a, "f|export", "alice", &retry, g), 1);
	assert_int_equal(take(b, "f|export", "bob", &retry, g), 0);
	/* Five in the window: bob's share is not used, the bucket is. */
	assert_int_equal(take(b, "f|export", "bob", &retry, g), 1);
	gw_shared_free(a);
	gw_shared_free(b);
}

/* A refund frees the slot; the script survives SCRIPT FLUSH. */
static void
refund_and_noscript(void **state)
{
	struct gw_shared *sh;
	char g[GW_SHARED_GRANT_MAX + 1], cmd[512];
	int64_t retry = 0;
	int i;

	(void)state;
	SKIP_WITHOUT_REDIS();
	sh = client(NULL, NULL);
	assert_non_null(sh);
	for (i = 0; i < 5; i++)
		assert_int_equal(take(sh, "r|export", "alice", &retry, g), 0);
	gw_shared_budget_refund(sh, "r|export", "alice", g, 1000);
	snprintf(cmd, sizeof(cmd), "redis-cli -s %s SCRIPT FLUSH >/dev/null",
	         sock);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(take(sh, "r|export", "alice", &retry, g), 0);
	assert_int_equal(take(sh, "r|export", "alice", &retry, g), 1);
	assert_int_equal(gw_shared_degraded(sh), 0);
	gw_shared_free(sh);
}

/* Sleeps ms milliseconds (the script reads Redis's clock, not ours). */
static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1)
		continue;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define SLOW_HOLD 2000 /* a short hold, so the test runs in seconds */

/*
 * The slow-call case through Redis (budget.c's slow_call_holds, with
 * Redis's clock and a 2 s hold): 5 grants, 4 done at once, the first done
 * 1 s later.  At 2.2 s four slots are free but the fifth is held until
 * 1 s + 2 s, and Retry-After points there.  Positive control, in another
 * bucket on the same clock: all five done at once, five granted at 2.2 s.
 * A refunded grant's done does not bring it back.
 */
static void
slow_call_holds(void **state)
{
	static const char *const bk[2] = {"s|export", "c|export"};
	static const char *const who[5] = {"a", "b", "c", "d", "e"};
	static const char *const later[5] = {"f", "g", "h", "i", "j"};
	char g[2][5][GW_SHARED_GRANT_MAX + 1], x[GW_SHARED_GRANT_MAX + 1];
	struct gw_shared *sh;
	int64_t retry = 0, t0;
	int i, k;

	(void)state;
	SKIP_WITHOUT_REDIS();
	sh = client(NULL, NULL);
	assert_non_null(sh);
	t0 = mono_ms();
	for (k = 0; k < 2; k++)
		for (i = 0; i < 5; i++)
			assert_int_equal(gw_shared_budget_take(
			                     sh, bk[k], who[i], 5, SLOW_HOLD,
			                     1000, 1000, &retry, g[k][i]),
			                 0);
	for (k = 0; k < 2; k++)
		for (i = k == 0 ? 1 : 0; i < 5; i++)
			gw_shared_budget_done(sh, bk[k], who[i], g[k][i],
			                      SLOW_HOLD, 1000);
	sleep_ms(1000);
	gw_shared_budget_done(sh, bk[0], "a", g[0][0], SLOW_HOLD, 1000);
	sleep_ms(t0 + 2200 - mono_ms());
	for (k = 0; k < 2; k++)
		for (i = 0; i < 4; i++)
			assert_int_equal(gw_shared_budget_take(
			                     sh, bk[k], later[i], 5, SLOW_HOLD,
			                     1000, 1000, &retry, x),
			                 0);
	assert_int_equal(gw_shared_budget_take(sh, bk[1], "j", 5, SLOW_HOLD,
	                                       1000, 1000, &retry, x),
	                 0);
	assert_int_equal(gw_shared_budget_take(sh, bk[0], "j", 5, SLOW_HOLD,
	                                       1000, 1000, &retry, x),
	                 1);
	/* Until 1 s + 2 s from the first grants: about 0.8 s from now. */
	assert_true(retry > 300 && retry <= 1000);
	sleep_ms((long)retry + 50);
	assert_int_equal(gw_shared_budget_take(sh, bk[0], "j", 5, SLOW_HOLD,
	                                       1000, 1000, &retry, x),
	                 0);
	/* Refunded, then done: the slot stays free. */
	for (i = 0; i < 5; i++)
		assert_int_equal(gw_shared_budget_take(sh, "z|export", who[i],
		                                       5, HOLD, WIN, 1000,
		                                       &retry, g[0][i]),
		                 0);
	gw_shared_budget_refund(sh, "z|export", "e", g[0][4], 1000);
	gw_shared_budget_done(sh, "z|export", "e", g[0][4], HOLD, 1000);
	gw_shared_budget_done(sh, "z|export", "e", "no-such-grant", HOLD, 1000);
	assert_int_equal(gw_shared_budget_take(sh, "z|export", "f", 5, HOLD,
	                                       WIN, 1000, &retry, x),
	                 0);
	assert_int_equal(gw_shared_budget_take(sh, "z|export", "g", 5, HOLD,
	                                       WIN, 1000, &retry, x),
	                 1);
	assert_int_equal(gw_shared_degraded(sh), 0);
	gw_shared_free(sh);
}

/*
 * Redis down: done is best effort and returns within the timeouts (the
 * first call dials and fails, then no probe is due), leaving the client
 * degraded for the local budget; Redis back, done works again.
 */
static void
done_redis_down(void **state)
{
	struct gw_shared *sh;
	char g[GW_SHARED_GRANT_MAX + 1];
	int64_t retry = 0, t;

	(void)state;
	SKIP_WITHOUT_REDIS();
	sh = client(NULL, NULL);
	assert_non_null(sh);
	assert_int_equal(take(sh, "q|export", "a", &retry, g), 0);
	redis_stop();
	t = mono_ms();
	gw_shared_budget_done(sh, "q|export", "a", g, HOLD, 7000);
	gw_shared_budget_done(sh, "q|export", "a", g, HOLD, 7001);
	assert_true(mono_ms() - t < 1000);
	assert_int_equal(gw_shared_degraded(sh), 1);
	assert_int_equal(redis_start(NULL), 0);
	assert_int_equal(gw_shared_check(sh, 9000), 0);
	assert_int_equal(take(sh, "q|export", "a", &retry, g), 0);
	gw_shared_budget_done(sh, "q|export", "a", g, HOLD, 9001);
	assert_int_equal(gw_shared_degraded(sh), 0);
	gw_shared_free(sh);
}

static void
cache_and_claim(void **state)
{
	struct gw_shared *a, *b;
	char t1[GW_SHARED_TOKEN_MAX + 1], t2[GW_SHARED_TOKEN_MAX + 1];
	char *v;

	(void)state;
	SKIP_WITHOUT_REDIS();
	a = client(NULL, NULL);
	b = client(NULL, NULL);
	assert_null(gw_shared_get(a, "status", "k\n1", 1000));
	assert_int_equal(
	    gw_shared_put(a, "status", "k\n1", "{\"x\":1}", 5000, 0, 1000), 0);
	v = gw_shared_get(b, "status", "k\n1", 1000);
	assert_string_equal(v, "{\"x\":1}");
	free(v);
	/* add_only keeps the first. */
	assert_int_equal(
	    gw_shared_put(b, "status", "k\n1", "{}", 5000, 1, 1000), 1);
	/* A claim is one holder's; a release by another token does nothing. */
	assert_int_equal(gw_shared_claim(a, "claim", "e", 5000, t1, 1000), 1);
	assert_int_equal(gw_shared_claim(b, "claim", "e", 5000, t2, 1000), 0);
	gw_shared_release(b, "claim", "e", "not-the-token", 1000);
	assert_int_equal(gw_shared_claim(b, "claim", "e", 5000, t2, 1000), 0);
	gw_shared_release(a, "claim", "e", t1, 1000);
	assert_int_equal(gw_shared_claim(b, "claim", "e", 5000, t2, 1000), 1);
	gw_shared_free(a);
	gw_shared_free(b);
}

/* Redis lost: -1, degraded, a hold window of blackout; back by itself. */
static void
degraded_and_back(void **state)
{
	struct gw_shared *sh;
	char g[GW_SHARED_GRANT_MAX + 1];
	int64_t retry = 0, t = 5000;

	(void)state;
	SKIP_WITHOUT_REDIS();
	sh = client(NULL, NULL);
	assert_int_equal(gw_shared_check(sh, t), 0);
	redis_stop();
	assert_int_equal(gw_shared_budget_take(sh, "d|export", "a", 5, HOLD,
	                                       WIN, t, &retry, g),
	                 -1);
	assert_int_equal(gw_shared_degraded(sh), 1);
	assert_int_equal(gw_shared_armed(sh, HOLD, t), 1);
	assert_int_equal(gw_shared_fallback(sh, HOLD, t + 10, &retry), 1);
	assert_int_equal(retry, HOLD - 10);
	assert_int_equal(gw_shared_fallback(sh, HOLD, t + HOLD, &retry), 0);
	assert_null(gw_shared_get(sh, "status", "k", t));
	assert_int_equal(redis_start(NULL), 0);
	/* No probe within the second: still degraded. */
	assert_int_equal(gw_shared_check(sh, t + 999), 1);
	assert_int_equal(gw_shared_check(sh, t + 1000), 0);
	/* Back, but armed for a hold window: local grants count too. */
	assert_int_equal(gw_shared_armed(sh, HOLD, t + 1000), 1);
	assert_int_equal(gw_shared_armed(sh, HOLD, t + 1000 + HOLD), 0);
	assert_int_equal(gw_shared_budget_take(sh, "d|export", "a", 5, HOLD,
	                                       WIN, t + 1001, &retry, g),
	                 0);
	gw_shared_free(sh);
}

static void
write_pw(const char *path, const char *pw)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "%s\n", pw);
	fclose(f);
	chmod(path, 0600);
}

/*
 * ACL user: the right password works (positive control); a wrong one
 * fails closed (degraded: the local budget), never open.  A password
 * file others may read is refused at load.
 */
static void
acl_user(void **state)
{
	struct gw_shared *sh;
	char good[300], bad[300];
	char g[GW_SHARED_GRANT_MAX + 1];
	int64_t retry = 0;

	(void)state;
	SKIP_WITHOUT_REDIS();
	redis_stop();
	assert_int_equal(redis_start(">s3cret-pw"), 0);
	snprintf(good, sizeof(good), "%s/good.pw", dir);
	snprintf(bad, sizeof(bad), "%s/bad.pw", dir);
	write_pw(good, "s3cret-pw");
	write_pw(bad, "wrong");
	sh = client("hssgw", good);
	assert_non_null(sh);
	assert_int_equal(take(sh, "a|export", "alice", &retry, g), 0);
	assert_int_equal(gw_shared_degraded(sh), 0);
	gw_shared_free(sh);
	sh = client("hssgw", bad);
	assert_non_null(sh);
	assert_int_equal(take(sh, "a|export", "alice", &retry, g), -1);
	assert_int_equal(gw_shared_degraded(sh), 1);
	gw_shared_free(sh);
	/* Without a password: the default user is off, refused too. */
	sh = client(NULL, NULL);
	assert_int_equal(take(sh, "a|export", "alice", &retry, g), -1);
	assert_int_equal(gw_shared_degraded(sh), 1);
	gw_shared_free(sh);
	chmod(good, 0644);
	assert_null(client("hssgw", good));
	redis_stop();
	assert_int_equal(redis_start(NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(window_limit),
	    cmocka_unit_test(fair_share),
	    cmocka_unit_test(refund_and_noscript),
	    cmocka_unit_test(slow_call_holds),
	    cmocka_unit_test(done_redis_down),
	    cmocka_unit_test(cache_and_claim),
	    cmocka_unit_test(degraded_and_back),
	    cmocka_unit_test(acl_user),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
