/*
 * The shared budget's cost: budget decisions per second with 8 threads
 * through Redis (the Lua script on a redis-server this benchmark starts
 * on a unix socket in a temp dir) against the in-process budget.c in the
 * same run, and the shared status cache's GET against the local cache.
 * Every decision counts, grant or refusal: a refusal runs the whole
 * script too.  Numbers, not assertions.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "cache.h"
#include "config.h"
#include "gw.h"
#include "shared.h"

#define THREADS 8

static atomic_int stop;

struct run {
	struct gw_shared *sh;
	struct gw_budget *local;
	struct gw_cache *cache;
	int what; /* 0 shared budget, 1 local budget, 2 shared GET, 3 local */
	int id;
	long long n;
	int failed;
};

static void *
worker(void *arg)
{
	struct run *r = arg;
	char caller[32], g[GW_SHARED_GRANT_MAX + 1], *v;
	int64_t retry;

	snprintf(caller, sizeof(caller), "https://idp team-%d", r->id);
	while (!atomic_load(&stop)) {
		switch (r->what) {
		case 0:
			if (gw_shared_budget_take(r->sh, "main|export", caller,
			                          5, GW_BUDGET_HOLD_MS,
			                          GW_BUDGET_WINDOW_MS,
			                          gw_now_ms(), &retry, g) == -1)
				r->failed = 1;
			break;
		case 1:
			(void)gw_budget_take(r->local, "main|export", caller,
			                     gw_now_ms(), &retry);
			break;
		case 2:
			v = gw_shared_get(r->sh, "status", "k", gw_now_ms());
			r->failed |= v == NULL;
			free(v);
			break;
		default:
			v = gw_cache_get(r->cache, "k", gw_now_ms());
			r->failed |= v == NULL;
			free(v);
			break;
		}
		r->n++;
	}
	return NULL;
}

static double
measure(struct run *proto, double secs)
{
	struct run runs[THREADS];
	pthread_t t[THREADS];
	struct timespec ts;
	long long total = 0;
	int i;

	atomic_store(&stop, 0);
	for (i = 0; i < THREADS; i++) {
		runs[i] = *proto;
		runs[i].id = i;
		pthread_create(&t[i], NULL, worker, &runs[i]);
	}
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		total += runs[i].n;
		if (runs[i].failed)
			proto->failed = 1;
	}
	return (double)total / secs;
}

int
main(int argc, char *argv[])
{
	char dir[] = "/tmp/hssgw-bench-rd-XXXXXX", sock[256], url[300];
	char err[256], cmd[320];
	struct timespec ts = {0, 20 * 1000000L};
	struct gw_config conf;
	struct run r;
	struct stat sb;
	double secs = argc > 1 ? atof(argv[1]) : 3, shared, local;
	pid_t pid;
	int i, rc = 1;

	signal(SIGPIPE, SIG_IGN);
	if (secs <= 0 || mkdtemp(dir) == NULL)
		return 2;
	snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
	pid = fork();
	if (pid == 0) {
		execlp("redis-server", "redis-server", "--port", "0",
		       "--unixsocket", sock, "--save", "", "--appendonly", "no",
		       "--logfile", "/dev/null", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 250 && stat(sock, &sb) != 0; i++)
		nanosleep(&ts, NULL);
	memset(&conf, 0, sizeof(conf));
	snprintf(url, sizeof(url), "unix:%s", sock);
	conf.shared_redis = url;
	conf.shared_unix = sock;
	conf.shared_timeout_ms = 1000;
	memset(&r, 0, sizeof(r));
	r.sh = gw_shared_new(&conf, THREADS, err, sizeof(err));
	r.local = gw_budget_new(5);
	r.cache = gw_cache_new();
	if (r.sh == NULL || r.local == NULL || r.cache == NULL ||
	    gw_shared_put(r.sh, "status", "k", "{\"task_status\":\"running\"}",
	                  600000, 0, gw_now_ms()) != 0 ||
	    gw_cache_put(r.cache, "k", "{\"task_status\":\"running\"}",
	                 gw_now_ms(), 600000, 0) != 0) {
		fprintf(stderr, "bench_shared: no redis-server: %s\n", err);
		goto out;
	}
	r.what = 0;
	shared = measure(&r, secs);
	r.what = 1;
	local = measure(&r, secs);
	printf("budget decisions/s, %d threads: shared %.0f, local %.0f "
	       "(shared = %.3f x local)\n",
	       THREADS, shared, local, shared / local);
	r.what = 2;
	shared = measure(&r, secs);
	r.what = 3;
	local = measure(&r, secs);
	printf("status cache GET/s, %d threads: shared %.0f, local %.0f "
	       "(shared = %.3f x local)\n",
	       THREADS, shared, local, shared / local);
	rc = r.failed ? 1 : 0;
	if (r.failed)
		fprintf(stderr, "bench_shared: a Redis call failed\n");
out:
	gw_shared_free(r.sh);
	gw_budget_free(r.local);
	gw_cache_free(r.cache);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
