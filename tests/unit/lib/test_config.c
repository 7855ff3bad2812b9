/*
 * Config loader: a good file loads with defaults and resolved paths; every
 * rule breaks with an error that names the key by its JSON path.  Cases
 * are data: a replacement applied to the good file and the error expected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "gw.h"

#define GOOD GW_TEST_DATA "/config/good.json"

/* noinline: GCC 12 at -O2 mistakes the result for a pointer to the local
 * it was read through (a -Wdangling-pointer false positive). */
static __attribute__((noinline)) char *
slurp(const char *path)
{
	char *buf = NULL, err[256];
	size_t len;

	assert_int_equal(
	    gw_read_file(path, 1 << 20, 0, &buf, &len, err, sizeof(err)), 0);
	return buf;
}

static void
good_loads(void **state)
{
	struct gw_config *c;
	char err[512];

	(void)state;
	c = gw_conf_load(GOOD, err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->listen, "unix:/run/hssgw/hssgw.sock");
	assert_int_equal(c->threads, 8);
	assert_int_equal(c->metrics_enabled, 1);    /* default */
	assert_int_equal(c->max_body_bytes, 65536); /* default */
	assert_int_equal(c->jwt_leeway_s, 60);      /* default */
	assert_int_equal(c->nissuers, 1);
	assert_int_equal(c->issuers[0].naudiences, 2);
	assert_string_equal(c->issuers[0].audiences[1], "hssgw-ci");
	assert_int_equal(c->issuers[0].nkeys, 2);
	assert_null(c->issuers[0].keys[1].kid);
	/* Relative paths resolve against the config file's directory. */
	assert_string_equal(c->issuers[0].keys[0].file,
	                    GW_TEST_DATA "/config/keys/idp.pub.pem");
	assert_string_equal(c->issuers[0].keys[1].file, "/etc/hssgw/hs.secret");
	assert_string_equal(c->policies_dir, GW_TEST_DATA "/config/policies");
	assert_int_equal(c->nprojects, 2);
	assert_ptr_equal(gw_conf_project_get(c, "prod"), &c->projects[1]);
	assert_null(gw_conf_project_get(c, "nope"));
	assert_ptr_equal(c->projects[0].cred, &c->creds[0]);
	assert_null(c->projects[1].enterprise_project_id);
	assert_int_equal(c->up_timeout_ms, 9000);
	assert_int_equal(c->default_export_size, 500);
	/* The front's defaults: loopback peers, one worker kept. */
	assert_int_equal(c->request_read_timeout_ms, 5000);
	assert_int_equal(c->response_send_timeout_ms, 30000);
	assert_int_equal(c->nlisten_allow, 0);
	assert_int_equal(c->reserve_threads, 1);
	gw_conf_free(c);
}

static const struct badcase {
	const char *find;
	const char *replace;
	const char *error; /* substring of the message */
} bad[] = {
    {"\"threads\": 8", "\"threads\": 8, \"thread\": 1", "thread: unknown key"},
    {"\"threads\": 8", "\"threads\": 0",
     "threads: must be an integer from 1 to 256"},
    {"\"threads\": 8", "\"threads\": 8, \"metrics\": {\"enabled\": 1}",
     "metrics.enabled: must be true or false"},
    {"\"threads\": 8", "\"threads\": 8, \"metrics\": {\"on\": true}",
     "metrics.on: unknown key"},
    {"\"threads\": 8", "\"threads\": \"8\"", "threads: must be an integer"},
    {"\"threads\": 8", "\"threads\": 8.5", "threads: must be an integer"},
    {"\"alg\": \"RS256\"", "\"alg\": \"none\"",
     "jwt.issuers[0].keys[0].alg: unsupported value \"none\""},
    {"\"alg\": \"RS256\"", "\"alg\": \"RS256\", \"x\": 1",
     "jwt.issuers[0].keys[0].x: unknown key"},
    {"\"audiences\": [\"hssgw\", \"hssgw-ci\"]", "\"audiences\": []",
     "jwt.issuers[0].audiences: must hold 1"},
    {"\"audiences\": [\"hssgw\", \"hssgw-ci\"]", "\"audiences\": [1]",
     "jwt.issuers[0].audiences[0]: must be a string"},
    {"\"policies_dir\": \"policies\",", "",
     "policies_dir: required key missing"},
    {"\"endpoint\": \"https://hss.cn-north-4", "\"endpoint\": \"http://hss",
     "projects[0].endpoint: must start with https://"},
    {"\"credentials\": \"main\"},", "\"credentials\": \"other\"},",
     "projects[0].credentials: no credentials entry \"other\""},
    {"\"alias\": \"prod\"", "\"alias\": \"demo\"",
     "projects[1].alias: duplicate alias"},
    {"\"type\": \"token_file\"", "\"type\": \"magic\"",
     "credentials[0].type: unsupported value"},
    {"\"listen\": \"unix:/run/hssgw/hssgw.sock\"", "\"listen\": \"nowhere\"",
     "listen: must be"},
    {"\"default_export_size\": 500", "\"default_export_size\": 2147483648",
     "default_export_size: must be an integer from 0 to 2147483647"},
    {"\"default_export_size\": 500", "\"default_export_size\": -1",
     "default_export_size: must be an integer"},
    {"\"project_id\": \"0123456789abcdef0123456789abcdef\"",
     "\"project_id\": \"\"", "projects[0].project_id: must be 1 to 256"},
    {"\"audit\": {\"file\": \"/var/log/hssgw/audit.jsonl\"}",
     "\"audit\": \"audit.jsonl\"", "audit: must be an object"},
    {"{\n  \"listen\"", "[{\n  \"listen\"", "invalid JSON"},
    {"\"threads\": 8", "\"threads\": 8, \"request_read_timeout_ms\": 99",
     "request_read_timeout_ms: must be an integer from 100 to 600000"},
    {"\"threads\": 8", "\"threads\": 8, \"response_send_timeout_ms\": 0",
     "response_send_timeout_ms: must be an integer from 100 to 600000"},
    /* A name would be resolved at accept time: only literals. */
    {"\"threads\": 8", "\"threads\": 8, \"listen_allow\": [\"localhost\"]",
     "listen_allow[0]: must be an IPv4 or IPv6 address"},
    {"\"threads\": 8", "\"threads\": 8, \"listen_allow\": [\"10.0.0.0/8\"]",
     "listen_allow[0]: must be an IPv4 or IPv6 address"},
    /* Sentinels: one way to name the server, with its master name. */
    {"\"threads\": 8",
     "\"threads\": 8, \"shared_state\": {\"redis\": \"unix:/r.sock\", "
     "\"sentinels\": [\"h:1\"], \"master_name\": \"m\"}",
     "shared_state: either redis or sentinels, not both"},
    {"\"threads\": 8",
     "\"threads\": 8, \"shared_state\": {\"sentinels\": [\"h:1\"]}",
     "shared_state.master_name: required with sentinels"},
    {"\"threads\": 8",
     "\"threads\": 8, \"shared_state\": {\"sentinels\": [\"h:0\"], "
     "\"master_name\": \"m\"}",
     "shared_state.sentinels[0]: must be \"host:port\""},
    {"\"threads\": 8",
     "\"threads\": 8, \"shared_state\": {\"redis\": \"unix:/r.sock\", "
     "\"master_name\": \"m\"}",
     "shared_state.master_name: only with sentinels"},
    {"\"threads\": 8",
     "\"threads\": 8, \"shared_state\": {\"username\": \"u\"}",
     "shared_state: redis or sentinels required"},
    /* No worker left for exports would refuse every one. */
    {"\"threads\": 8", "\"threads\": 8, \"reserve_threads\": 8",
     "reserve_threads: must be below threads"},
};

static char *
replace(const char *s, const char *find, const char *with)
{
	const char *at = strstr(s, find);
	size_t n, off;
	char *out;

	if (at == NULL) /* the case must apply to the good file */
		fail_msg("\"%s\" not in the good file", find);
	off = (size_t)(at - s);
	n = strlen(s) - strlen(find) + strlen(with) + 1;
	out = malloc(n);
	assert_non_null(out);
	memcpy(out, s, off);
	snprintf(out + off, n - off, "%s%s", with, s + off + strlen(find));
	return out;
}

static void
bad_cases(void **state)
{
	char *good = slurp(GOOD), *text, err[512];
	char path[] = "/tmp/hssgw-conf-XXXXXX";
	struct gw_config *c;
	size_t i;
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		text = replace(good, bad[i].find, bad[i].replace);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(text, f);
		fclose(f);
		err[0] = '\0';
		c = gw_conf_load(path, err, sizeof(err));
		if (c != NULL || strstr(err, bad[i].error) == NULL)
			fail_msg("case %zu: want \"%s\", got \"%s\"", i,
			         bad[i].error, c ? "(loaded)" : err);
		free(text);
	}
	/* Positive control: the same path with the good text loads. */
	f = fopen(path, "w");
	fputs(good, f);
	fclose(f);
	c = gw_conf_load(path, err, sizeof(err));
	assert_non_null(c);
	gw_conf_free(c);
	unlink(path);
	free(good);
}

/* Positive control for the front's keys: explicit values load. */
static void
front_keys_load(void **state)
{
	char *good = slurp(GOOD), *text, err[512];
	char path[] = "/tmp/hssgw-conf-XXXXXX";
	struct gw_config *c;
	FILE *f;
	int fd;

	(void)state;
	text = replace(good, "\"threads\": 8",
	               "\"threads\": 1, \"reserve_threads\": 0, "
	               "\"request_read_timeout_ms\": 250, "
	               "\"response_send_timeout_ms\": 600000, "
	               "\"metrics\": {\"enabled\": false}, "
	               "\"listen_allow\": [\"10.1.2.3\", \"fd00::1\"]");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	c = gw_conf_load(path, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_int_equal(c->reserve_threads, 0);
	assert_int_equal(c->request_read_timeout_ms, 250);
	assert_int_equal(c->response_send_timeout_ms, 600000);
	assert_int_equal(c->metrics_enabled, 0);
	assert_int_equal(c->nlisten_allow, 2);
	assert_string_equal(c->listen_allow[1], "fd00::1");
	gw_conf_free(c);
	/* One thread: the default reserve is 0, not an error. */
	free(text);
	text = replace(good, "\"threads\": 8", "\"threads\": 1");
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	c = gw_conf_load(path, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(c->reserve_threads, 0);
	gw_conf_free(c);
	/* Socket activation: the socket comes from systemd at start. */
	free(text);
	text = replace(good, "\"unix:/run/hssgw/hssgw.sock\"", "\"systemd\"");
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	c = gw_conf_load(path, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->listen, "systemd");
	gw_conf_free(c);
	unlink(path);
	free(text);
	free(good);
}

static void
missing_file(void **state)
{
	char err[512];

	(void)state;
	assert_null(gw_conf_load("/nonexistent/hssgw.json", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/hssgw.json"));
}

/* shared_state parsed: a unix socket, or host, port and db; defaults. */
static void
shared_state(void **state)
{
	char *good = slurp(GOOD), *text, err[512];
	char path[] = "/tmp/hssgw-conf-XXXXXX";
	struct gw_config *c;
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	text = replace(
	    good, "\"default_export_size\": 500",
	    "\"default_export_size\": 500, \"instance\": \"gw-a\", "
	    "\"shared_state\": {\"redis\": \"redis://10.0.0.5:6380/2\", "
	    "\"username\": \"hssgw\", \"expected_instances\": 3}");
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	c = gw_conf_load(path, err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->instance, "gw-a");
	assert_string_equal(c->shared_host, "10.0.0.5");
	assert_int_equal(c->shared_port, 6380);
	assert_int_equal(c->shared_db, 2);
	assert_null(c->shared_unix);
	assert_int_equal(c->shared_expected_instances, 3);
	assert_int_equal(c->shared_timeout_ms, 250);
	gw_conf_free(c);
	free(text);
	/* Sentinels and a master name instead of one endpoint. */
	text = replace(good, "\"default_export_size\": 500",
	               "\"default_export_size\": 500, \"shared_state\": "
	               "{\"sentinels\": [\"10.0.0.1:26379\", "
	               "\"sentinel.b:26380\"], \"master_name\": \"hssgw\", "
	               "\"sentinel_username\": \"watch\"}");
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	c = gw_conf_load(path, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_true(gw_conf_shared(c));
	assert_null(c->shared_redis);
	assert_int_equal(c->nshared_sentinels, 2);
	assert_string_equal(c->shared_sentinel_hosts[1], "sentinel.b");
	assert_int_equal(c->shared_sentinel_ports[1], 26380);
	assert_string_equal(c->shared_master_name, "hssgw");
	gw_conf_free(c);
	free(text);
	/* Without shared_state: nothing shared; the instance is the host. */
	c = gw_conf_load(GOOD, err, sizeof(err));
	assert_non_null(c);
	assert_null(c->shared_redis);
	assert_non_null(c->instance);
	assert_true(strlen(c->instance) > 0);
	gw_conf_free(c);
	unlink(path);
	free(good);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(good_loads),      cmocka_unit_test(bad_cases),
	    cmocka_unit_test(front_keys_load), cmocka_unit_test(shared_state),
	    cmocka_unit_test(missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
