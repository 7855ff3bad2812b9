/*
 * The metrics registry and the text exposition format 0.0.4: every
 * family the issue names has one HELP and one TYPE line before its
 * samples; label values and HELP text are escaped; histogram buckets
 * are cumulative, end in +Inf and agree with _count; status and API
 * labels stay within their tables whatever is recorded; counters are
 * exact under concurrent increments (no lock, no lost update).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

/* The registry's scrape, owned by the caller. */
static char *
scrape(const struct gw_metrics *m)
{
	struct gw_buf b;

	gw_buf_init(&b, GW_MET_OUT_MAX);
	gw_metrics_write(m, &b);
	gw_metrics_write_process(&b);
	assert_false(b.overflow);
	return gw_buf_take(&b, NULL);
}

/* Whether text holds line as a whole line. */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p += n;
	}
	return 0;
}

static size_t
count_prefix(const char *text, const char *prefix)
{
	size_t k = 0, n = strlen(prefix);
	const char *p = text;

	while ((p = strstr(p, prefix)) != NULL) {
		if (p == text || p[-1] == '\n')
			k++;
		p += n;
	}
	return k;
}

static void
families(void **state)
{
	static const struct {
		const char *name, *type;
	} want[] = {
	    {"hssgw_requests_total", "counter"},
	    {"hssgw_request_duration_seconds", "histogram"},
	    {"hssgw_policy_decisions_total", "counter"},
	    {"hssgw_upstream_requests_total", "counter"},
	    {"hssgw_upstream_duration_seconds", "histogram"},
	    {"hssgw_coalesced_total", "counter"},
	    {"hssgw_status_cache_hits_total", "counter"},
	    {"hssgw_audit_records_total", "counter"},
	    {"hssgw_audit_sync_duration_seconds", "histogram"},
	    {"hssgw_audit_failures_total", "counter"},
	    {"hssgw_jwt_verifications_total", "counter"},
	    {"hssgw_config_reloads_total", "counter"},
	    {"hssgw_fcgi_rejected_total", "counter"},
	    {"process_cpu_seconds_total", "counter"},
	    {"process_resident_memory_bytes", "gauge"},
	    {"process_virtual_memory_bytes", "gauge"},
	    {"process_open_fds", "gauge"},
	    {"process_max_fds", "gauge"},
	    {"process_start_time_seconds", "gauge"},
	};
	struct gw_metrics *m = gw_metrics_new();
	char line[256], *text;
	const char *help, *type, *sample;
	size_t i;

	(void)state;
	assert_non_null(m);
	gw_metrics_decision(m, GW_MET_DEC_DENY);
	gw_metrics_fcgi_rejected(m, GW_MET_FCGI_FOREIGN_ID);
	gw_metrics_fcgi_rejected(m, GW_MET_FCGI__MAX); /* ignored */
	text = scrape(m);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(line, sizeof(line), "# HELP %s ", want[i].name);
		assert_int_equal(count_prefix(text, line), 1);
		help = strstr(text, line);
		snprintf(line, sizeof(line), "# TYPE %s %s", want[i].name,
		         want[i].type);
		assert_true(has_line(text, line));
		type = strstr(text, line);
		/* HELP, TYPE, then the samples of that name. */
		assert_true(help < type);
		snprintf(line, sizeof(line), "\n%s", want[i].name);
		sample = strstr(text, line);
		if (sample != NULL)
			assert_true(sample > type);
	}
	/* Fixed label sets are exported at 0 too ("avoid missing
	 * metrics"); the JWKS family is the scraper's (config labels). */
	assert_true(has_line(
	    text, "hssgw_policy_decisions_total{decision=\"allow\"} 0"));
	assert_true(has_line(
	    text, "hssgw_policy_decisions_total{decision=\"deny\"} 1"));
	assert_true(
	    has_line(text, "hssgw_config_reloads_total{result=\"ok\"} 0"));
	assert_true(has_line(
	    text, "hssgw_fcgi_rejected_total{reason=\"foreign_id\"} 1"));
	assert_true(has_line(
	    text, "hssgw_fcgi_rejected_total{reason=\"peer_gone\"} 0"));
	assert_null(strstr(text, "hssgw_jwks_fetches_total"));
	assert_int_equal(text[strlen(text) - 1], '\n');
	free(text);
	gw_metrics_free(m);
}

static void
requests(void **state)
{
	struct gw_metrics *m = gw_metrics_new();
	char *text;

	(void)state;
	gw_metrics_request(m, GW_MET_ROUTE_EXPORT, 200, GW_OK, 0, 1000);
	gw_metrics_request(m, GW_MET_ROUTE_EXPORT, 200, GW_OK, 0, 1000);
	gw_metrics_request(m, GW_MET_ROUTE_EXPORT, 403, GW_ERR_DENIED, 0, 10);
	gw_metrics_request(m, GW_MET_ROUTE_TASK_STATUS, 404, GW_OK, 1, 10);
	/* A status outside the table is its class; none is "error". */
	gw_metrics_request(m, GW_MET_ROUTE_OTHER, 418, GW_OK, 1, 10);
	gw_metrics_request(m, GW_MET_ROUTE_OTHER, 999, GW_OK, 1, 10);
	/* Out-of-range enums are ignored, not written out of bounds. */
	gw_metrics_request(m, GW_MET_ROUTE__MAX, 200, GW_OK, 0, 10);
	gw_metrics_request(m, GW_MET_ROUTE_EXPORT, 200, GW_ERR__MAX + 5, 0, 10);
	gw_metrics_upstream(m, "export", 200, 30000);
	gw_metrics_upstream(m, "export", 0, 30000);
	gw_metrics_upstream(m, "no-such-api", 200, 30000);
	text = scrape(m);
	assert_true(has_line(text, "hssgw_requests_total{route=\"export\","
	                           "status=\"200\",code=\"HSSGW.0000\"} 2"));
	assert_true(has_line(text, "hssgw_requests_total{route=\"export\","
	                           "status=\"403\",code=\"HSSGW.0103\"} 1"));
	assert_true(has_line(text, "hssgw_requests_total{route=\"task_status\","
	                           "status=\"404\",code=\"upstream\"} 1"));
	assert_true(has_line(text, "hssgw_requests_total{route=\"other\","
	                           "status=\"4xx\",code=\"upstream\"} 1"));
	assert_true(has_line(text, "hssgw_requests_total{route=\"other\","
	                           "status=\"error\",code=\"upstream\"} 1"));
	assert_int_equal(count_prefix(text, "hssgw_requests_total{"), 5);
	assert_true(has_line(text,
	                     "hssgw_upstream_requests_total{api=\"export\","
	                     "status=\"200\"} 1"));
	assert_true(has_line(text,
	                     "hssgw_upstream_requests_total{api=\"export\","
	                     "status=\"error\"} 1"));
	assert_int_equal(count_prefix(text, "hssgw_upstream_requests_total{"),
	                 2);
	assert_null(strstr(text, "no-such-api"));
	free(text);
	gw_metrics_free(m);
}

static void
histogram(void **state)
{
	struct gw_metrics *m = gw_metrics_new();
	char *text;

	(void)state;
	/* 1 ms, 5 ms (on the 0.005 bound: le is inclusive), 0.3 s, 20 s. */
	gw_metrics_request(m, GW_MET_ROUTE_HEALTHZ, 200, GW_OK, 0, 1000);
	gw_metrics_request(m, GW_MET_ROUTE_HEALTHZ, 200, GW_OK, 0, 5000);
	gw_metrics_request(m, GW_MET_ROUTE_HEALTHZ, 200, GW_OK, 0, 300000);
	gw_metrics_request(m, GW_MET_ROUTE_HEALTHZ, 200, GW_OK, 0, 20000000);
	text = scrape(m);
#define B(le, n)                                                               \
	"hssgw_request_duration_seconds_bucket{route=\"healthz\",le=\"" le     \
	"\"} " #n
	assert_true(has_line(text, B("0.005", 2)));
	assert_true(has_line(text, B("0.01", 2)));
	assert_true(has_line(text, B("0.25", 2)));
	assert_true(has_line(text, B("0.5", 3)));
	assert_true(has_line(text, B("10", 3)));
	assert_true(has_line(text, B("+Inf", 4)));
#undef B
	assert_true(has_line(text, "hssgw_request_duration_seconds_sum{route="
	                           "\"healthz\"} 20.306000"));
	assert_true(has_line(text, "hssgw_request_duration_seconds_count{route="
	                           "\"healthz\"} 4"));
	/* +Inf comes after the last finite bound, then _sum, then _count. */
	assert_true(strstr(text, "route=\"healthz\",le=\"10\"") <
	            strstr(text, "route=\"healthz\",le=\"+Inf\""));
	assert_true(strstr(text, "route=\"healthz\",le=\"+Inf\"") <
	            strstr(text, "_sum{route=\"healthz\"}"));
	/* A histogram without labels: the audit sync. */
	gw_metrics_audit_sync(m, 300);
	free(text);
	text = scrape(m);
	assert_true(has_line(
	    text,
	    "hssgw_audit_sync_duration_seconds_bucket{le=\"0.00025\"} 0"));
	assert_true(has_line(
	    text, "hssgw_audit_sync_duration_seconds_bucket{le=\"0.0005\"} 1"));
	assert_true(has_line(
	    text, "hssgw_audit_sync_duration_seconds_bucket{le=\"+Inf\"} 1"));
	assert_true(
	    has_line(text, "hssgw_audit_sync_duration_seconds_sum 0.000300"));
	assert_true(
	    has_line(text, "hssgw_audit_sync_duration_seconds_count 1"));
	free(text);
	gw_metrics_free(m);
}

static void
escaping(void **state)
{
	const char *labels[] = {"credentials", "a\"b\\c\nd", NULL};
	struct gw_buf b;
	char *text;

	(void)state;
	gw_buf_init(&b, 4096);
	gw_met_family(&b, "x_total", "counter", "back\\slash\nnewline \"q\"");
	gw_met_sample_u(&b, "x_total", labels, 7);
	gw_met_sample(&b, "y", NULL, 0.25);
	gw_met_sample(&b, "y", NULL, 1700000000.0);
	text = gw_buf_take(&b, NULL);
	/* HELP escapes \ and newline only; label values also ". */
	assert_true(
	    has_line(text, "# HELP x_total back\\\\slash\\nnewline \"q\""));
	assert_true(
	    has_line(text, "x_total{credentials=\"a\\\"b\\\\c\\nd\"} 7"));
	assert_true(has_line(text, "y 0.25"));
	assert_true(has_line(text, "y 1700000000"));
	free(text);
}

static void
process(void **state)
{
	struct gw_buf b;
	char *text, *p;

	(void)state;
	gw_buf_init(&b, 8192);
	gw_metrics_write_process(&b);
	text = gw_buf_take(&b, NULL);
	p = strstr(text, "\nprocess_resident_memory_bytes ");
	assert_non_null(p);
	assert_true(strtod(p + 31, NULL) > 1024 * 1024);
	p = strstr(text, "\nprocess_open_fds ");
	assert_non_null(p);
	assert_true(strtod(p + 18, NULL) >= 3); /* stdin, stdout, stderr */
	p = strstr(text, "\nprocess_start_time_seconds ");
	assert_non_null(p);
	assert_true(strtod(p + 28, NULL) > 1500000000.0);
	free(text);
}

#define THREADS 4
#define PER     100000

static void *
hammer(void *arg)
{
	int i;

	for (i = 0; i < PER; i++)
		gw_metrics_request(arg, GW_MET_ROUTE_EXPORT, 200, GW_OK, 0, 10);
	return NULL;
}

static void
concurrent(void **state)
{
	struct gw_metrics *m = gw_metrics_new();
	pthread_t t[THREADS];
	char line[128], *text;
	int i;

	(void)state;
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, m), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	text = scrape(m);
	snprintf(line, sizeof(line),
	         "hssgw_requests_total{route=\"export\",status=\"200\","
	         "code=\"HSSGW.0000\"} %d",
	         THREADS * PER);
	assert_true(has_line(text, line));
	snprintf(line, sizeof(line),
	         "hssgw_request_duration_seconds_count{route=\"export\"} %d",
	         THREADS * PER);
	assert_true(has_line(text, line));
	free(text);
	gw_metrics_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(families),  cmocka_unit_test(requests),
	    cmocka_unit_test(histogram), cmocka_unit_test(escaping),
	    cmocka_unit_test(process),   cmocka_unit_test(concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
