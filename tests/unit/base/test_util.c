/*
 * Basics: the checked number parser, UTF-8 validation, RFC 3339 parsing,
 * capped buffers, secret-file permission checks and the error table.
 * Table-driven: each row is an input and the answer it must get.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "gw.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
strtonum_cases(void **state)
{
	static const struct {
		const char *s;
		long long min, max;
		int ok;
		long long want;
	} t[] = {
	    {"0", 0, 10, 1, 0},
	    {"10", 0, 10, 1, 10},
	    {"11", 0, 10, 0, 0},
	    {"-1", 0, 10, 0, 0},
	    {"-5", -10, 10, 1, -5},
	    {"9223372036854775807", 0, INT64_MAX, 1, INT64_MAX},
	    {"9223372036854775808", 0, INT64_MAX, 0, 0}, /* overflow */
	    {"", 0, 10, 0, 0},
	    {" 5", 0, 10, 0, 0}, /* strtoll would accept: we do not */
	    {"+5", 0, 10, 0, 0},
	    {"5 ", 0, 10, 0, 0},
	    {"5x", 0, 10, 0, 0},
	    {"0x10", 0, 100, 0, 0},
	};
	long long v;
	size_t i;

	(void)state;
	for (i = 0; i < N(t); i++) {
		v = -42;
		if ((gw_strtonum(t[i].s, t[i].min, t[i].max, &v) == 0) !=
		    t[i].ok)
			fail_msg("row %zu (\"%s\")", i, t[i].s);
		if (t[i].ok)
			assert_int_equal(v, t[i].want);
		else
			assert_int_equal(v, -42); /* untouched on failure */
	}
}

static void
utf8_cases(void **state)
{
	static const struct {
		const char *s;
		int ok;
	} t[] = {
	    {"plain ascii", 1},
	    {"caf\xc3\xa9", 1},
	    {"\xe4\xb8\xad\xe6\x96\x87", 1},
	    {"\xf0\x9f\x98\x80", 1},
	    {"\xc3", 0},             /* truncated */
	    {"\xc0\xaf", 0},         /* overlong '/' */
	    {"\xe0\x80\xaf", 0},     /* overlong */
	    {"\xed\xa0\x80", 0},     /* surrogate */
	    {"\xf4\x90\x80\x80", 0}, /* above U+10FFFF */
	    {"\xff", 0},
	    {"a\x80", 0}, /* stray continuation */
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(t); i++)
		if (gw_utf8_valid(t[i].s, strlen(t[i].s)) != t[i].ok)
			fail_msg("row %zu", i);
}

static void
rfc3339_cases(void **state)
{
	static const struct {
		const char *s;
		int ok;
		int64_t ms;
	} t[] = {
	    {"1970-01-01T00:00:00Z", 1, 0},
	    {"2026-01-01T00:00:00Z", 1, 1767225600000LL},
	    {"2026-01-01T00:00:00.5Z", 1, 1767225600500LL},
	    {"2026-01-01T00:00:00.123456Z", 1, 1767225600123LL},
	    {"2026-01-01T08:00:00+08:00", 1, 1767225600000LL},
	    {"2025-12-31T19:00:00-05:00", 1, 1767225600000LL},
	    {"2024-02-29T00:00:00Z", 1, 1709164800000LL},
	    {"2025-02-29T00:00:00Z", 0, 0}, /* not a leap year */
	    {"2026-13-01T00:00:00Z", 0, 0},
	    {"2026-01-01 00:00:00Z", 0, 0},
	    {"2026-01-01T00:00:00", 0, 0}, /* no offset */
	    {"2026-01-01T24:00:00Z", 0, 0},
	    {"2026-01-01T00:00:00.Z", 0, 0},
	    {"2026-01-01T00:00:00Zjunk", 0, 0},
	    {"1767225600000", 0, 0},
	};
	int64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < N(t); i++) {
		v = 0;
		if ((gw_rfc3339_ms(t[i].s, &v) == 0) != t[i].ok)
			fail_msg("row %zu (%s)", i, t[i].s);
		if (t[i].ok && v != t[i].ms)
			fail_msg("row %zu: %lld", i, (long long)v);
	}
}

static void
buf_cap(void **state)
{
	struct gw_buf b;
	char *p;
	size_t len;

	(void)state;
	gw_buf_init(&b, 8);
	assert_int_equal(gw_buf_puts(&b, "12345678"), 0);
	assert_int_equal(gw_buf_puts(&b, "9"), -1); /* one past the cap */
	assert_true(b.overflow);
	assert_int_equal(b.len, 8);
	gw_buf_reset(&b);
	gw_buf_init(&b, 1 << 20);
	assert_int_equal(gw_buf_printf(&b, "%0600d", 7), 0);
	assert_int_equal(b.len, 600);
	p = gw_buf_take(&b, &len);
	assert_int_equal(len, 600);
	assert_null(b.p);
	free(p);
}

/*
 * gw_buf_json_str escapes exactly as json-c does with NOSLASHESCAPE (the
 * audit trail and the upstream request were printed by json-c before):
 * every byte value, compared with json-c's own output; a cut buffer fails.
 */
static void
json_str_as_json_c(void **state)
{
	struct json_object *j;
	struct gw_buf b;
	char all[256];
	const char *ref;
	int i;

	(void)state;
	for (i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	j = json_object_new_string_len(all, 255);
	ref = json_object_to_json_string_ext(
	    j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	gw_buf_init(&b, 4096);
	assert_int_equal(gw_buf_json_str(&b, all, 255), 0);
	assert_string_equal(b.p, ref);
	assert_non_null(strstr(b.p, "\\u001f"));
	assert_non_null(strstr(b.p, "\\\"")); /* the quote */
	assert_non_null(strstr(b.p, "./0"));  /* '/' stays as is */
	gw_buf_reset(&b);
	json_object_put(j);
	gw_buf_init(&b, 8);
	assert_int_equal(gw_buf_json_str(&b, "\n\n\n\n", 4), -1);
	assert_true(b.overflow);
	gw_buf_reset(&b);
}

/* The digest and MAC fetched once give the published answers. */
static void
sha256_hmac_vectors(void **state)
{
	/* FIPS 180-2 "abc"; RFC 4231 test case 2. */
	static const char abc[] = "ba7816bf8f01cfea414140de5dae2223"
	                          "b00361a396177a9cb410ff61f20015ad";
	static const char jefe[] = "5bdcc146bf60754e6a042426089575c7"
	                           "5a003f089d2739839dec58b964ec3843";
	static const char msg[] = "what do ya want for nothing?";
	struct evp_mac_ctx_st *k;
	unsigned char md[32];
	char hex[65];
	int i;

	(void)state;
	assert_int_equal(gw_sha256("abc", 3, md), 0);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(hex, abc);
	k = gw_hmac_sha256_new("Jefe", 4);
	assert_non_null(k);
	for (i = 0; i < 3; i++) { /* the keyed context is reused */
		memset(md, 0, sizeof(md));
		assert_int_equal(gw_hmac_sha256(k, msg, strlen(msg), md), 0);
		for (int j = 0; j < 32; j++)
			snprintf(hex + 2 * j, 3, "%02x", md[j]);
		assert_string_equal(hex, jefe);
	}
	/* Negative control: another message, another MAC. */
	assert_int_equal(gw_hmac_sha256(k, msg, strlen(msg) - 1, md), 0);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_not_equal(hex, jefe);
	EVP_MAC_CTX_free(k);
	assert_int_equal(gw_hmac_sha256(NULL, msg, 1, md), -1);
}

static void
ct_equal(void **state)
{
	(void)state;
	assert_true(gw_ct_equal("abc", 3, "abc", 3));
	assert_false(gw_ct_equal("abc", 3, "abd", 3));
	assert_false(gw_ct_equal("abc", 3, "abcd", 4));
	assert_true(gw_ct_equal("", 0, "", 0));
}

static void
secret_file_modes(void **state)
{
	char path[] = "/tmp/hssgw-secret-XXXXXX", err[256], *out = NULL;
	size_t len;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "s3cret", 6), 6);
	close(fd);
	/* The gap: a secret any local user can read. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(
	    gw_read_file(path, 64, 1, &out, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "group or others"));
	assert_null(strstr(err, "s3cret"));
	/* Non-secret reads do not care about the mode. */
	assert_int_equal(
	    gw_read_file(path, 64, 0, &out, &len, err, sizeof(err)), 0);
	free(out);
	/* Positive control: 0600 is accepted. */
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(
	    gw_read_file(path, 64, 1, &out, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 6);
	assert_string_equal(out, "s3cret");
	gw_secret_free(out);
	/* Over the cap. */
	assert_int_equal(gw_read_file(path, 5, 1, &out, &len, err, sizeof(err)),
	                 -1);
	unlink(path);
}

/* The API reference's error table (docs/openapi.yaml, info.description)
 * documents every code, with its status. */
static void
error_codes_documented(void **state)
{
	char *doc = NULL, err[256], row[64];
	size_t len;
	int e;

	(void)state;
	assert_int_equal(gw_read_file(GW_SOURCE_DIR "/docs/openapi.yaml",
	                              1 << 20, 0, &doc, &len, err, sizeof(err)),
	                 0);
	for (e = 1; e < GW_ERR__MAX; e++) {
		snprintf(row, sizeof(row), "| %s | %d |",
		         gw_err_code((enum gw_err)e),
		         gw_err_status((enum gw_err)e));
		if (strstr(doc, row) == NULL)
			fail_msg("docs/openapi.yaml lacks the row %s", row);
	}
	free(doc);
}

static void
error_table(void **state)
{
	int e, f;

	(void)state;
	for (e = 0; e < GW_ERR__MAX; e++) {
		assert_non_null(gw_strerror((enum gw_err)e));
		assert_true(gw_err_status((enum gw_err)e) >= 200);
		assert_int_equal(
		    strncmp(gw_err_code((enum gw_err)e), "HSSGW.", 6), 0);
		for (f = 0; f < e; f++)
			assert_string_not_equal(gw_err_code((enum gw_err)e),
			                        gw_err_code((enum gw_err)f));
	}
	assert_int_equal(gw_err_status(GW_ERR_DENIED), 403);
	assert_int_equal(gw_err_status(GW_ERR_RATE_LIMITED), 429);
	assert_int_equal(gw_err_status(GW_ERR_UPSTREAM_TIMEOUT), 504);
	assert_int_equal(gw_err_status((enum gw_err)999), 500);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(strtonum_cases),
	    cmocka_unit_test(utf8_cases),
	    cmocka_unit_test(rfc3339_cases),
	    cmocka_unit_test(buf_cap),
	    cmocka_unit_test(json_str_as_json_c),
	    cmocka_unit_test(sha256_hmac_vectors),
	    cmocka_unit_test(ct_equal),
	    cmocka_unit_test(secret_file_modes),
	    cmocka_unit_test(error_table),
	    cmocka_unit_test(error_codes_documented),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
