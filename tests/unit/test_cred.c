/*
 * Unit tests for gateway/cred.c: the token_file provider loads only a
 * private, well-formed token file, decorates a request with a secret
 * X-Auth-Token header, fingerprints without leaking, and refuses what it
 * does not know.  Token files are written at run time in a temp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "cred.h"
#include "upreq.h"

#define TOKEN "MIIEXAMPLEtoken-value_0123456789abcdef+/="

struct fixture {
	char dir[64];
	char path[128];
};

static int
setup(void **state)
{
	struct fixture *fx = NULL;

	fx = calloc(1, sizeof(*fx));
	if (fx == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/gwcred.XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/token", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	unlink(fx->path);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Writes len bytes to the fixture's token file with the given mode. */
static void
write_token(struct fixture *fx, const char *data, size_t len, mode_t mode)
{
	int fd;

	unlink(fx->path);
	fd = open(fx->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static struct gw_cred *
load(struct fixture *fx, const char *type, char *err, size_t errlen)
{
	struct gw_conf_cred cc = {"hss-main", (char *)type, fx->path};

	err[0] = '\0';
	return gw_cred_new(&cc, err, errlen);
}

static const struct gw_header *
find_header(const struct gw_upreq *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcmp(r->headers[i].name, name) == 0)
			return &r->headers[i];
	return NULL;
}

static void
test_token_applied(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	struct gw_upreq *r = NULL;
	const struct gw_header *h;
	struct gw_fault f = {0};
	char err[512], fp1[17], fp2[17], want[17];

	/* Trailing newline is trimmed: editors add one. */
	write_token(fx, TOKEN "\n", strlen(TOKEN) + 1, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	assert_string_equal(gw_cred_name(c), "hss-main");

	r = gw_upreq_new("POST", "https://hss.example/v5/p/x");
	assert_non_null(r);
	assert_int_equal(gw_cred_apply(c, r, 0, fp1, &f), GW_OK);
	h = find_header(r, "X-Auth-Token");
	assert_non_null(h);
	assert_string_equal(h->value, TOKEN);
	assert_int_equal(h->secret, 1);

	/* Stable across applies, equal to the documented fingerprint. */
	assert_int_equal(gw_cred_apply(c, r, 12345, fp2, &f), GW_OK);
	assert_string_equal(fp1, fp2);
	gw_fingerprint(TOKEN, strlen(TOKEN), want);
	assert_string_equal(fp1, want);
	assert_int_equal(strlen(fp1), 16);
	assert_int_equal(strspn(fp1, "0123456789abcdef"), 16);
	/* Not the token or a piece of it. */
	assert_null(strstr(TOKEN, fp1));
	assert_int_not_equal(strncmp(fp1, TOKEN, 16), 0);
	/* Apply replaces rather than duplicates the header. */
	assert_int_equal(r->nheaders, 1);

	gw_upreq_free(r);
	gw_cred_free(c);
}

static void
test_fingerprint_stable_across_loads(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *a = NULL, *b = NULL;
	struct gw_upreq *r = NULL;
	struct gw_fault f = {0};
	char err[512], fa[17], fb[17];

	write_token(fx, TOKEN, strlen(TOKEN), 0600);
	a = load(fx, "token_file", err, sizeof(err));
	b = load(fx, "token_file", err, sizeof(err));
	assert_non_null(a);
	assert_non_null(b);
	r = gw_upreq_new("GET", "https://hss.example/");
	assert_non_null(r);
	assert_int_equal(gw_cred_apply(a, r, 0, fa, &f), GW_OK);
	assert_int_equal(gw_cred_apply(b, r, 0, fb, &f), GW_OK);
	assert_string_equal(fa, fb);
	gw_upreq_free(r);
	gw_cred_free(a);
	gw_cred_free(b);
}

/*
 * Gap pinned: a token file readable by other local users leaks the cloud
 * token; it must be refused at load.  Positive control: 0600 loads.
 */
static void
test_mode_0644_refused(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];

	write_token(fx, TOKEN, strlen(TOKEN), 0644);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->path));
	assert_non_null(strstr(err, "hss-main"));
	assert_null(strstr(err, TOKEN));

	write_token(fx, TOKEN, strlen(TOKEN), 0640);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);

	write_token(fx, TOKEN, strlen(TOKEN), 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	gw_cred_free(c);
}

/*
 * Gap pinned: an empty (or whitespace-only) file would send an empty
 * X-Auth-Token and fail obscurely upstream.  Positive control: one byte.
 */
static void
test_empty_refused(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];

	write_token(fx, "", 0, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->path));

	write_token(fx, " \r\n\t\n", 5, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->path));

	write_token(fx, "x\n", 2, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	gw_cred_free(c);
}

/*
 * Gap pinned: CR or LF inside the token would inject headers into the
 * upstream request ("tok\r\nX-Evil: 1").  Trailing CR/LF is trimmed and
 * fine (positive control); inner ones are refused without printing the
 * token.
 */
static void
test_crlf_inside_refused(void **state)
{
	static const char *const bad[] = {
	    "SECRETPART\r\nX-Evil: 1", "SECRETPART\nmore",
	    "SECRETPART\rmore",        "SECRETPART more",
	    "SECRETPART\x01more",      "SECRETPART\xc3\xa9more",
	};
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_token(fx, bad[i], strlen(bad[i]), 0600);
		c = load(fx, "token_file", err, sizeof(err));
		assert_null(c);
		assert_non_null(strstr(err, fx->path));
		assert_null(strstr(err, "SECRETPART"));
	}
	write_token(fx, "SECRETPART\r\n", 12, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	gw_cred_free(c);
}

/* The token length limit is 32768 bytes: the edge loads, one more fails. */
static void
test_token_length_limit(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];
	char *big = NULL;

	big = malloc(32769 + 1);
	assert_non_null(big);
	memset(big, 'A', 32769);
	big[32769] = '\n';

	write_token(fx, big, 32768, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	gw_cred_free(c);

	write_token(fx, big, 32769 + 1, 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->path));
	assert_null(strstr(err, "AAAA"));
	free(big);
}

static void
test_missing_file_refused(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];

	unlink(fx->path);
	c = load(fx, "token_file", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, fx->path));
}

/*
 * Gap pinned: a typo in "type" must not silently leave requests
 * unauthenticated.  Positive control: "token_file" loads.
 */
static void
test_unknown_type_refused(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	char err[512];

	write_token(fx, TOKEN, strlen(TOKEN), 0600);
	c = load(fx, "iam_pasword", err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "iam_pasword"));
	assert_non_null(strstr(err, "hss-main"));

	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	gw_cred_free(c);
}

/*
 * Gap pinned: audit and "hssgw translate" print the decorated request; the
 * token must show as "<redacted>".  Positive control: a non-secret header
 * of the same request prints its value.
 */
static void
test_json_redacts_token(void **state)
{
	struct fixture *fx = *state;
	struct gw_cred *c = NULL;
	struct gw_upreq *r = NULL;
	struct gw_fault f = {0};
	struct gw_buf b;
	char err[512], fp[17];

	write_token(fx, TOKEN, strlen(TOKEN), 0600);
	c = load(fx, "token_file", err, sizeof(err));
	assert_non_null(c);
	r = gw_upreq_new("POST", "https://hss.example/v5/p/x");
	assert_non_null(r);
	assert_int_equal(gw_upreq_set_header(r, "X-Project-Tag", "visible", 0),
	                 0);
	assert_int_equal(gw_cred_apply(c, r, 0, fp, &f), GW_OK);

	gw_buf_init(&b, 65536);
	assert_int_equal(gw_upreq_json(r, &b), 0);
	assert_non_null(strstr(b.p, "\"X-Auth-Token\":\"<redacted>\""));
	assert_non_null(strstr(b.p, "\"X-Project-Tag\":\"visible\""));
	assert_null(strstr(b.p, TOKEN));
	assert_null(strstr(b.p, "MIIEXAMPLE"));
	gw_buf_reset(&b);
	gw_upreq_free(r);
	gw_cred_free(c);
}

static void
test_free_accepts_null(void **state)
{
	(void)state;
	gw_cred_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_token_applied, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_fingerprint_stable_across_loads, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mode_0644_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_empty_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_crlf_inside_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_token_length_limit, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_type_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_json_redacts_token, setup,
	                                    teardown),
	    cmocka_unit_test(test_free_accepts_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
