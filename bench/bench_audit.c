/*
 * Audit trail throughput: records per second with 8 emitting threads,
 * durable (fdatasync before gw_audit_emit returns, group commit) against
 * the same run with fsync off, and one thread durable to show what group
 * commit buys.  Records are the size of a real export's.  The trail goes
 * to a fresh directory under argv[2] (default /var/tmp: a disk, where
 * /tmp may be tmpfs and make fsync free).  Numbers, not assertions.
 *
 * "commit" mode (argv[3]; argv[4] threads, default 32, argv[5] rounds,
 * default 3): durable group commit, every round: records/s,
 * fdatasyncs/s, records per commit, the mean fdatasync (the sync hook),
 * the p50 and p99 of gw_audit_emit's wait and the CPUs the process used.
 * In a tree with overlapped commits (GW_AUDIT_MAX_SYNCS, issue 23; not
 * adopted, bench/README.md), each round also runs max_syncs 2 against 1,
 * the order alternating between rounds.
 */
#include <sys/resource.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "gw.h"
#include "upreq.h"

#define THREADS     8
#define MAX_THREADS 64
#define HIST_US     10    /* latency histogram: buckets of 10 us */
#define HIST_N      20000 /* up to 200 ms; longer waits in the last */

static atomic_int stop;
static atomic_llong sync_us, nsyncs; /* the sync hook's sums */

static void
on_sync(void *arg, int64_t us)
{
	(void)arg;
	atomic_fetch_add(&sync_us, (long long)us);
	atomic_fetch_add(&nsyncs, 1);
}

struct run {
	struct gw_audit *a;
	const struct gw_upreq *up;
	long long n;
	int failed;
	unsigned *hist; /* HIST_N buckets of emit waits, or NULL */
};

/* One measurement's settings and results. */
struct res {
	int nosync, nthreads, max_syncs;
	double secs;
	double rps, syncs_ps, batch, p50_us, p99_us, sync_us; /* out */
	double cpu; /* the process's CPU time over the run's wall time */
};

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *
emitter(void *arg)
{
	static const char *const groups[] = {"hss-exporters"};
	struct run *r = arg;
	struct gw_audit_rec rec;
	char err[256];

	memset(&rec, 0, sizeof(rec));
	rec.time_ms = gw_now_ms();
	rec.request_id = "0123456789abcdef0123456789abcdef";
	rec.client_addr = "192.0.2.10";
	rec.method = "POST";
	rec.path = "/v1/exports/image-baseline";
	rec.subject = "dev-alice";
	rec.issuer = "https://idp.example.com";
	rec.jti = "7f3c9a0e5b1d4c2a8e6f0b9d3a7c5e1f";
	rec.token_fp = "0123456789abcdef";
	rec.groups = groups;
	rec.ngroups = 1;
	rec.action = "hss:ExportImageBaseline";
	rec.resource = "hss:cn-north-4:demo:image-baseline";
	rec.project = "demo";
	rec.decision = "allow";
	rec.stmt_file = "demo.json";
	rec.stmt_sid = "AllowExporters";
	rec.policy_revision = "3f2a1b0c";
	rec.phase = GW_AUDIT_INTENT;
	rec.upreq = r->up;
	rec.record_total_num = -1;
	rec.cred_name = "main";
	rec.cred_fp = "fedcba9876543210";
	while (!atomic_load(&stop)) {
		int64_t t0 = now_us(), d;

		if (gw_audit_emit(r->a, &rec, err, sizeof(err)) != GW_OK) {
			r->failed = 1;
			break;
		}
		r->n++;
		if (r->hist != NULL) {
			d = (now_us() - t0) / HIST_US;
			r->hist[d < HIST_N ? d : HIST_N - 1]++;
		}
	}
	return NULL;
}

/* User + system CPU time of the process so far, in seconds. */
static double
cpu_secs(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Percentile q (0..1) of the merged histogram, in microseconds. */
static double
percentile(const unsigned *hist, long long total, double q)
{
	long long want = (long long)(q * (double)total), seen = 0;
	int i;

	for (i = 0; i < HIST_N; i++) {
		seen += hist[i];
		if (seen > want)
			return (double)(i * HIST_US) + HIST_US / 2.0;
	}
	return (double)(HIST_N * HIST_US);
}

/* Runs r->nthreads emitters for r->secs and fills r's results. */
static void
measure(const char *base, struct res *r)
{
	struct gw_audit_opts opts = {.nosync = r->nosync};
	static struct run runs[MAX_THREADS];
	static pthread_t t[MAX_THREADS];
	static unsigned hist[MAX_THREADS][HIST_N], all[HIST_N];
	struct gw_audit *a;
	struct gw_upreq *up;
	struct timespec t0, t1;
	char dir[512], path[600], cmd[700], err[256];
	long long total = 0, commits;
	double el, c0;
	int i, k;

#ifdef GW_AUDIT_MAX_SYNCS
	opts.max_syncs = r->max_syncs;
#endif
	snprintf(dir, sizeof(dir), "%s/hssgw-bench-audit-XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/audit.jsonl", dir);
	a = gw_audit_open_opts(path, &opts, err, sizeof(err));
	up = gw_upreq_new("POST", "https://hss.cn-north-4.myhuaweicloud.com/v5/"
	                          "0123456789abcdef0123456789abcdef/image/"
	                          "baseline/export?export_size=1000");
	if (a == NULL || up == NULL) {
		fprintf(stderr, "bench: %s\n", err);
		exit(1);
	}
	gw_upreq_set_header(up, "X-Auth-Token", "bench-token", 1);
	gw_upreq_set_header(up, "region", "cn-north-4", 0);
	gw_audit_set_sync_hook(a, on_sync, NULL);
	atomic_store(&stop, 0);
	atomic_store(&sync_us, 0);
	atomic_store(&nsyncs, 0);
	memset(hist, 0, sizeof(hist));
	c0 = cpu_secs();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < r->nthreads; i++) {
		memset(&runs[i], 0, sizeof(runs[i]));
		runs[i].a = a;
		runs[i].up = up;
		runs[i].hist = hist[i];
		pthread_create(&t[i], NULL, emitter, &runs[i]);
	}
	nanosleep(&(struct timespec){(time_t)r->secs,
	                             (long)((r->secs - (time_t)r->secs) * 1e9)},
	          NULL);
	atomic_store(&stop, 1);
	for (i = 0; i < r->nthreads; i++) {
		pthread_join(t[i], NULL);
		if (runs[i].failed) {
			fprintf(stderr, "bench: audit write failed\n");
			exit(1);
		}
		total += runs[i].n;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	el = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	r->cpu = (cpu_secs() - c0) / el;
	commits = gw_audit_commits(a);
	r->rps = (double)total / el;
	r->syncs_ps = r->nosync ? 0 : (double)commits / el;
	r->batch = (double)total / (double)(commits ? commits : 1);
	memset(all, 0, sizeof(all));
	for (i = 0; i < r->nthreads; i++)
		for (k = 0; k < HIST_N; k++)
			all[k] += hist[i][k];
	r->p50_us = percentile(all, total, 0.50);
	r->p99_us = percentile(all, total, 0.99);
	r->sync_us = atomic_load(&nsyncs) ? (double)atomic_load(&sync_us) /
	                                        (double)atomic_load(&nsyncs)
	                                  : 0;
	gw_audit_close(a);
	gw_upreq_free(up);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", dir);
}

/*
 * One fdatasync at a time against overlapped commits, durable, nthreads
 * emitting as fast as they can; the order alternates between rounds so
 * a drift in the machine's load does not favour either.
 */
static void
commit_mode(const char *base, double secs, int nthreads, int rounds)
{
	struct res r;
	int round, k, ms;

	printf("audit trail in %s, %.1f s per run, %d threads, durable\n", base,
	       secs, nthreads);
	printf("%-6s %-10s %10s %12s %8s %9s %9s %9s %6s\n", "round",
	       "max_syncs", "records/s", "fdatasyncs/s", "batch", "sync us",
	       "p50 us", "p99 us", "cpus");
	for (round = 1; round <= rounds; round++)
		for (k = 0; k < 2; k++) {
			ms = (round % 2 == 1) == (k == 0) ? 1 : 2;
#ifndef GW_AUDIT_MAX_SYNCS
			if (ms == 2)
				continue; /* a tree without overlapped commits
				           */
#endif
			memset(&r, 0, sizeof(r));
			r.nthreads = nthreads;
			r.max_syncs = ms;
			r.secs = secs;
			measure(base, &r);
			printf("%-6d %-10d %10.0f %12.0f %8.1f %9.0f %9.0f "
			       "%9.0f %6.2f\n",
			       round, ms, r.rps, r.syncs_ps, r.batch, r.sync_us,
			       r.p50_us, r.p99_us, r.cpu);
			fflush(stdout);
		}
}

int
main(int argc, char *argv[])
{
	const char *base = argc > 2 ? argv[2] : "/var/tmp";
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	struct res on = {.nthreads = THREADS}, off = {.nosync = 1},
	           one = {.nthreads = 1};
	int nthreads, rounds;

	if (secs <= 0 || secs > 600)
		secs = 1.0;
	if (argc > 3 && strcmp(argv[3], "commit") == 0) {
		nthreads = argc > 4 ? atoi(argv[4]) : 32;
		rounds = argc > 5 ? atoi(argv[5]) : 3;
		if (nthreads < 1 || nthreads > MAX_THREADS || rounds < 1 ||
		    rounds > 100) {
			fprintf(stderr, "bench: threads 1-%d, rounds 1-100\n",
			        MAX_THREADS);
			return 2;
		}
		commit_mode(base, secs, nthreads, rounds);
		return 0;
	}
	off.nthreads = THREADS;
	on.secs = off.secs = one.secs = secs;
	measure(base, &on);
	measure(base, &off);
	measure(base, &one);
	printf("audit trail in %s, %.1f s per run\n", base, secs);
	printf("%-34s %12s %14s\n", "", "records/s", "records/commit");
	printf("%-34s %12.0f %14.1f\n", "8 threads, fdatasync (default)",
	       on.rps, on.batch);
	printf("%-34s %12.0f %14.1f\n", "8 threads, fsync off", off.rps,
	       off.batch);
	printf("%-34s %12.0f %14.1f\n", "1 thread, fdatasync", one.rps,
	       one.batch);
	printf("durable / fsync off: %.3f\n", on.rps / off.rps);
	printf("group commit gain (8 threads / 1 thread, durable): %.2fx\n",
	       on.rps / one.rps);
	return 0;
}
