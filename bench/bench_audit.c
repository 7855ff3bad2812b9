/*
 * Audit trail throughput: records per second with 8 emitting threads,
 * durable (fdatasync before gw_audit_emit returns, group commit) against
 * the same run with fsync off, and one thread durable to show what group
 * commit buys.  Records are the size of a real export's.  The trail goes
 * to a fresh directory under argv[2] (default /var/tmp: a disk, where
 * /tmp may be tmpfs and make fsync free).  Numbers, not assertions.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "gw.h"
#include "upreq.h"

#define THREADS 8

static atomic_int stop;

struct run {
	struct gw_audit *a;
	const struct gw_upreq *up;
	long long n;
	int failed;
};

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
		if (gw_audit_emit(r->a, &rec, err, sizeof(err)) != GW_OK) {
			r->failed = 1;
			break;
		}
		r->n++;
	}
	return NULL;
}

/* Records per second over secs with nthreads; commits via *batches. */
static double
measure(const char *base, int nosync, int nthreads, double secs, double *batch)
{
	struct gw_audit_opts opts = {.nosync = nosync};
	struct run runs[THREADS];
	pthread_t t[THREADS];
	struct gw_audit *a;
	struct gw_upreq *up;
	struct timespec t0, t1;
	char dir[512], path[600], cmd[700], err[256];
	long long total = 0;
	double el;
	int i;

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
	atomic_store(&stop, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < nthreads; i++) {
		memset(&runs[i], 0, sizeof(runs[i]));
		runs[i].a = a;
		runs[i].up = up;
		pthread_create(&t[i], NULL, emitter, &runs[i]);
	}
	nanosleep(&(struct timespec){(time_t)secs,
	                             (long)((secs - (time_t)secs) * 1e9)},
	          NULL);
	atomic_store(&stop, 1);
	for (i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		if (runs[i].failed) {
			fprintf(stderr, "bench: audit write failed\n");
			exit(1);
		}
		total += runs[i].n;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	el = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	*batch = (double)total /
	         (double)(gw_audit_commits(a) ? gw_audit_commits(a) : 1);
	gw_audit_close(a);
	gw_upreq_free(up);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", dir);
	return (double)total / el;
}

int
main(int argc, char *argv[])
{
	const char *base = argc > 2 ? argv[2] : "/var/tmp";
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	double on, off, one, bon, boff, bone;

	if (secs <= 0 || secs > 600)
		secs = 1.0;
	on = measure(base, 0, THREADS, secs, &bon);
	off = measure(base, 1, THREADS, secs, &boff);
	one = measure(base, 0, 1, secs, &bone);
	printf("audit trail in %s, %.1f s per run\n", base, secs);
	printf("%-34s %12s %14s\n", "", "records/s", "records/commit");
	printf("%-34s %12.0f %14.1f\n", "8 threads, fdatasync (default)", on,
	       bon);
	printf("%-34s %12.0f %14.1f\n", "8 threads, fsync off", off, boff);
	printf("%-34s %12.0f %14.1f\n", "1 thread, fdatasync", one, bone);
	printf("durable / fsync off: %.3f\n", on / off);
	printf("group commit gain (8 threads / 1 thread, durable): %.2fx\n",
	       on / one);
	return 0;
}
