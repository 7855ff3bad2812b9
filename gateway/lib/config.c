/*
 * Configuration loader.  The file's shape is a set of static key tables
 * walked by one function (load_obj): each key names its JSON type, where it
 * lands in the config structs, its bounds and whether it is required.
 * Unknown keys are errors; every error names the key by its JSON path.
 * Relative paths are resolved against the config file's directory.  Reads
 * no secret: key, token and secret files are opened by their modules.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "gw.h"

#define CONF_MAX_BYTES (1024 * 1024)
#define CONF_MAX_ITEMS 256

enum ckind {
	K_STR,     /* string, length in [min, max] */
	K_PATH,    /* string, resolved against the config directory */
	K_INT,     /* integer in [min, max] */
	K_STRLIST, /* array of strings, each 1..max, count at countoff */
	K_OBJ,     /* nested object, keys in sub, same target struct */
	K_ARRAY,   /* array of objects, elements of elemsize, keys in sub */
	K_BOOL,    /* true or false, stored as 1 or 0 in a long long */
	K__MAX
};

struct ckey {
	const char *name;
	enum ckind kind;
	size_t off;
	int required;
	long long min, max;
	const char *const *oneof; /* K_STR: allowed values, NULL-ended */
	const struct ckey *sub;
	size_t elemsize;
	size_t countoff;
};

struct loadctx {
	const char *dir;
	char *err;
	size_t errlen;
};

static const char *const algs[] = {"RS256", "RS384", "RS512", "PS256",
                                   "PS384", "PS512", "ES256", "ES384",
                                   "ES512", "EdDSA", "HS256", NULL};
static const char *const credtypes[] = {"token_file", "iam_password",
                                        "iam_agency", "aksk", NULL};

#define F(s, m) offsetof(struct s, m)
#define END                                                                    \
	{                                                                      \
		NULL, K__MAX, 0, 0, 0, 0, NULL, NULL, 0, 0                     \
	}

static const struct ckey keykeys[] = {
    {"kid", K_STR, F(gw_conf_jwt_key, kid), 0, 1, 256, NULL, NULL, 0, 0},
    {"alg", K_STR, F(gw_conf_jwt_key, alg), 1, 1, 16, algs, NULL, 0, 0},
    {"file", K_PATH, F(gw_conf_jwt_key, file), 1, 1, PATH_MAX, NULL, NULL, 0,
     0},
    END,
};

static const struct ckey issuerkeys[] = {
    {"issuer", K_STR, F(gw_conf_issuer, issuer), 1, 1, 1024, NULL, NULL, 0, 0},
    {"audiences", K_STRLIST, F(gw_conf_issuer, audiences), 1, 1, 1024, NULL,
     NULL, 0, F(gw_conf_issuer, naudiences)},
    /* keys or a JWKS source, or both: checked by jwtv at load. */
    {"keys", K_ARRAY, F(gw_conf_issuer, keys), 0, 0, 64, NULL, keykeys,
     sizeof(struct gw_conf_jwt_key), F(gw_conf_issuer, nkeys)},
    {"discovery_url", K_STR, F(gw_conf_issuer, discovery_url), 0, 9, 2048, NULL,
     NULL, 0, 0},
    {"jwks_uri", K_STR, F(gw_conf_issuer, jwks_uri), 0, 9, 2048, NULL, NULL, 0,
     0},
    {"jwks_file", K_PATH, F(gw_conf_issuer, jwks_file), 0, 1, PATH_MAX, NULL,
     NULL, 0, 0},
    /* Names checked against jwtv's table at load. */
    {"algorithms", K_STRLIST, F(gw_conf_issuer, algorithms), 0, 1, 16, NULL,
     NULL, 0, F(gw_conf_issuer, nalgorithms)},
    {"jwks_ca_file", K_PATH, F(gw_conf_issuer, jwks_ca_file), 0, 1, PATH_MAX,
     NULL, NULL, 0, 0},
    {"jwks_refresh_s", K_INT, F(gw_conf_issuer, jwks_refresh_s), 0, 1, 86400,
     NULL, NULL, 0, 0},
    {"jwks_max_stale_s", K_INT, F(gw_conf_issuer, jwks_max_stale_s), 0, 1,
     2592000, NULL, NULL, 0, 0},
    END,
};

static const struct ckey jwtkeys[] = {
    {"leeway_seconds", K_INT, F(gw_config, jwt_leeway_s), 0, 0, 600, NULL, NULL,
     0, 0},
    {"max_token_bytes", K_INT, F(gw_config, jwt_max_token_bytes), 0, 256, 65536,
     NULL, NULL, 0, 0},
    /* Upper bound: GW_JWTC_MAX in jwtcache.h. */
    {"cache_entries", K_INT, F(gw_config, jwt_cache_entries), 0, 0, 1048576,
     NULL, NULL, 0, 0},
    {"issuers", K_ARRAY, F(gw_config, issuers), 1, 1, 64, NULL, issuerkeys,
     sizeof(struct gw_conf_issuer), F(gw_config, nissuers)},
    END,
};

/*
 * Which keys a type requires is in credrules below: the key table only
 * bounds them.  IAM names: user and domain names are 1..64 characters in
 * IAM; agency names 1..64; access keys are 20 characters today (128 cap).
 */
static const struct ckey credkeys[] = {
    {"name", K_STR, F(gw_conf_cred, name), 1, 1, 128, NULL, NULL, 0, 0},
    {"type", K_STR, F(gw_conf_cred, type), 1, 1, 32, credtypes, NULL, 0, 0},
    {"file", K_PATH, F(gw_conf_cred, file), 0, 1, PATH_MAX, NULL, NULL, 0, 0},
    {"iam_endpoint", K_STR, F(gw_conf_cred, iam_endpoint), 0, 9, 2048, NULL,
     NULL, 0, 0},
    {"user", K_STR, F(gw_conf_cred, user), 0, 1, 64, NULL, NULL, 0, 0},
    {"domain", K_STR, F(gw_conf_cred, domain), 0, 1, 64, NULL, NULL, 0, 0},
    {"password_file", K_PATH, F(gw_conf_cred, password_file), 0, 1, PATH_MAX,
     NULL, NULL, 0, 0},
    {"base", K_STR, F(gw_conf_cred, base), 0, 1, 128, NULL, NULL, 0, 0},
    {"agency", K_STR, F(gw_conf_cred, agency), 0, 1, 64, NULL, NULL, 0, 0},
    {"access_key", K_STR, F(gw_conf_cred, access_key), 0, 1, 128, NULL, NULL, 0,
     0},
    {"secret_key_file", K_PATH, F(gw_conf_cred, secret_key_file), 0, 1,
     PATH_MAX, NULL, NULL, 0, 0},
    /* IAM tokens live 24 h (hss-api-notes.md 4.1): at most 12 h early. */
    {"refresh_margin_s", K_INT, F(gw_conf_cred, refresh_margin_s), 0, 1, 43200,
     NULL, NULL, 0, 0},
    END,
};

/*
 * Per credentials type: the string keys it requires (every other string
 * key of credkeys must be absent) and whether it refreshes tokens.
 */
static const struct {
	const char *type;
	const char *const keys[5];
	int refreshes;
} credrules[] = {
    {"token_file", {"file"}, 0},
    {"iam_password", {"iam_endpoint", "user", "domain", "password_file"}, 1},
    {"iam_agency", {"iam_endpoint", "base", "domain", "agency"}, 1},
    {"aksk", {"access_key", "secret_key_file"}, 0},
};

static const struct ckey projkeys[] = {
    {"alias", K_STR, F(gw_conf_project, alias), 1, 1, 64, NULL, NULL, 0, 0},
    /* Reference, table 1: project_id is 1 to 256 characters. */
    {"project_id", K_STR, F(gw_conf_project, project_id), 1, 1, 256, NULL, NULL,
     0, 0},
    /* Reference, table 3: region is 1 to 128 characters. */
    {"region", K_STR, F(gw_conf_project, region), 1, 1, 128, NULL, NULL, 0, 0},
    {"endpoint", K_STR, F(gw_conf_project, endpoint), 1, 9, 2048, NULL, NULL, 0,
     0},
    /* Reference, table 2: enterprise_project_id is 1 to 256 characters. */
    {"enterprise_project_id", K_STR, F(gw_conf_project, enterprise_project_id),
     0, 1, 256, NULL, NULL, 0, 0},
    /* Which others a caller may name (#11 item 10); "*": any. */
    {"enterprise_projects", K_STRLIST, F(gw_conf_project, enterprise_projects),
     0, 0, 256, NULL, NULL, 0, F(gw_conf_project, nenterprise_projects)},
    {"credentials", K_STR, F(gw_conf_project, credentials), 1, 1, 128, NULL,
     NULL, 0, 0},
    END,
};

static const struct ckey upkeys[] = {
    {"connect_timeout_ms", K_INT, F(gw_config, up_connect_timeout_ms), 0, 1,
     60000, NULL, NULL, 0, 0},
    {"timeout_ms", K_INT, F(gw_config, up_timeout_ms), 0, 1, 300000, NULL, NULL,
     0, 0},
    {"max_response_bytes", K_INT, F(gw_config, up_max_response_bytes), 0, 1024,
     64 * 1024 * 1024, NULL, NULL, 0, 0},
    {"ca_file", K_PATH, F(gw_config, up_ca_file), 0, 1, PATH_MAX, NULL, NULL, 0,
     0},
    END,
};

static const char *const authmodes[] = {"name", "fingerprint", "certvalid",
                                        NULL};

/*
 * audit.ship: the shipper's own keys (hssgw audit ship, docs/AUDIT.md);
 * hssgw serve reads only cursor_file and max_lag_s (it watches the
 * cursor).  A record is a RELP message of its own, so the batch is the
 * records acknowledged together before the cursor moves.
 */
static const struct ckey shipkeys[] = {
    {"relp", K_STR, F(gw_config, ship_relp), 1, 3, 300, NULL, NULL, 0, 0},
    {"cursor_file", K_PATH, F(gw_config, ship_cursor_file), 1, 1, PATH_MAX,
     NULL, NULL, 0, 0},
    {"metrics_file", K_PATH, F(gw_config, ship_metrics_file), 0, 1, PATH_MAX,
     NULL, NULL, 0, 0},
    {"batch_size", K_INT, F(gw_config, ship_batch_size), 0, 1, 10000, NULL,
     NULL, 0, 0},
    {"timeout_s", K_INT, F(gw_config, ship_timeout_s), 0, 1, 300, NULL, NULL, 0,
     0},
    {"tls", K_BOOL, F(gw_config, ship_tls), 0, 0, 1, NULL, NULL, 0, 0},
    {"tls_ca_file", K_PATH, F(gw_config, ship_tls_ca_file), 0, 1, PATH_MAX,
     NULL, NULL, 0, 0},
    {"tls_cert_file", K_PATH, F(gw_config, ship_tls_cert_file), 0, 1, PATH_MAX,
     NULL, NULL, 0, 0},
    {"tls_key_file", K_PATH, F(gw_config, ship_tls_key_file), 0, 1, PATH_MAX,
     NULL, NULL, 0, 0},
    {"tls_auth_mode", K_STR, F(gw_config, ship_tls_auth_mode), 0, 1, 16,
     authmodes, NULL, 0, 0},
    {"tls_permitted_peers", K_STRLIST, F(gw_config, ship_tls_permitted_peers),
     0, 1, 255, NULL, NULL, 0, F(gw_config, nship_tls_permitted_peers)},
    /* Fail closed past it (Vault's rule, opt-in); 0: off. */
    {"max_lag_s", K_INT, F(gw_config, ship_max_lag_s), 0, 0, 86400, NULL, NULL,
     0, 0},
    END,
};

static const struct ckey auditkeys[] = {
    {"file", K_PATH, F(gw_config, audit_file), 1, 1, PATH_MAX, NULL, NULL, 0,
     0},
    {"fsync", K_BOOL, F(gw_config, audit_fsync), 0, 0, 1, NULL, NULL, 0, 0},
    /* 0: no size-based rotation; at most 1 TiB. */
    {"rotate_bytes", K_INT, F(gw_config, audit_rotate_bytes), 0, 0, 1LL << 40,
     NULL, NULL, 0, 0},
    {"syslog", K_BOOL, F(gw_config, audit_syslog), 0, 0, 1, NULL, NULL, 0, 0},
    /* Anonymous records past this rate are summarised (docs/AUDIT.md). */
    {"anon_bytes_per_hour", K_INT, F(gw_config, audit_anon_bytes_per_hour), 0,
     4096, 1LL << 40, NULL, NULL, 0, 0},
    {"summary_interval_ms", K_INT, F(gw_config, audit_summary_interval_ms), 0,
     1000, 3600000, NULL, NULL, 0, 0},
    /* Signed checkpoint records (docs/AUDIT.md); the key read at load. */
    {"signing_key_file", K_PATH, F(gw_config, audit_signing_key_file), 0, 1,
     PATH_MAX, NULL, NULL, 0, 0},
    {"signed_checkpoint_interval_s", K_INT,
     F(gw_config, audit_signed_checkpoint_interval_s), 0, 1, 86400, NULL, NULL,
     0, 0},
    {"ship", K_OBJ, 0, 0, 0, 0, NULL, shipkeys, 0, 0},
    END,
};

/* hss-api-notes.md section 6: 5 calls a minute per user, 600 per API. */
static const struct ckey taskkeys[] = {
    {"handle_key_file", K_PATH, F(gw_config, tasks_handle_key_file), 0, 1,
     PATH_MAX, NULL, NULL, 0, 0},
    {"budget_per_minute", K_INT, F(gw_config, tasks_budget_per_minute), 0, 1,
     600, NULL, NULL, 0, 0},
    {"fair_share_claim", K_STR, F(gw_config, tasks_fair_share_claim), 0, 1, 128,
     NULL, NULL, 0, 0},
    {"coalesce_window_ms", K_INT, F(gw_config, tasks_coalesce_window_ms), 0, 0,
     3600000, NULL, NULL, 0, 0},
    {"status_cache_ttl_s", K_INT, F(gw_config, tasks_status_cache_ttl_s), 0, 0,
     3600, NULL, NULL, 0, 0},
    {"download_timeout_ms", K_INT, F(gw_config, tasks_download_timeout_ms), 0,
     1000, 600000, NULL, NULL, 0, 0},
    {"max_file_bytes", K_INT, F(gw_config, tasks_max_file_bytes), 0, 1,
     1LL << 40, NULL, NULL, 0, 0},
    {"retry_deadline_ms", K_INT, F(gw_config, tasks_retry_deadline_ms), 0, 0,
     600000, NULL, NULL, 0, 0},
    END,
};

/*
 * Shared state across instances (issue #14, docs/SHARED_STATE.md).  The
 * password lives in a file, never in the config; the prefix keeps keys
 * to printable characters without spaces, so it cannot split a command.
 */
static const struct ckey sharedkeys[] = {
    /* One endpoint, or Sentinels and a master name (check_shared). */
    {"redis", K_STR, F(gw_config, shared_redis), 0, 6, PATH_MAX, NULL, NULL, 0,
     0},
    {"sentinels", K_STRLIST, F(gw_config, shared_sentinels), 0, 1, 261, NULL,
     NULL, 0, F(gw_config, nshared_sentinels)},
    {"master_name", K_STR, F(gw_config, shared_master_name), 0, 1, 128, NULL,
     NULL, 0, 0},
    {"sentinel_username", K_STR, F(gw_config, shared_sentinel_username), 0, 1,
     128, NULL, NULL, 0, 0},
    {"sentinel_password_file", K_PATH,
     F(gw_config, shared_sentinel_password_file), 0, 1, PATH_MAX, NULL, NULL, 0,
     0},
    {"username", K_STR, F(gw_config, shared_username), 0, 1, 128, NULL, NULL, 0,
     0},
    {"password_file", K_PATH, F(gw_config, shared_password_file), 0, 1,
     PATH_MAX, NULL, NULL, 0, 0},
    {"key_prefix", K_STR, F(gw_config, shared_key_prefix), 0, 1, 64, NULL, NULL,
     0, 0},
    {"timeout_ms", K_INT, F(gw_config, shared_timeout_ms), 0, 10, 10000, NULL,
     NULL, 0, 0},
    {"expected_instances", K_INT, F(gw_config, shared_expected_instances), 0, 1,
     64, NULL, NULL, 0, 0},
    END,
};

static const struct ckey metricskeys[] = {
    {"enabled", K_BOOL, F(gw_config, metrics_enabled), 0, 0, 1, NULL, NULL, 0,
     0},
    END,
};

static const struct ckey topkeys[] = {
    {"listen", K_STR, F(gw_config, listen), 1, 1, 108, NULL, NULL, 0, 0},
    {"threads", K_INT, F(gw_config, threads), 0, 1, GW_THREADS_MAX, NULL, NULL,
     0, 0},
    {"max_body_bytes", K_INT, F(gw_config, max_body_bytes), 0, 256, 1024 * 1024,
     NULL, NULL, 0, 0},
    /* A total deadline on reading a request's header and body. */
    {"request_read_timeout_ms", K_INT, F(gw_config, request_read_timeout_ms), 0,
     100, 600000, NULL, NULL, 0, 0},
    /* How long a kept FastCGI connection may idle between requests. */
    {"keepalive_timeout_ms", K_INT, F(gw_config, keepalive_timeout_ms), 0, 100,
     3600000, NULL, NULL, 0, 0},
    /* Total time one response may spend blocked on writing to nginx. */
    {"response_send_timeout_ms", K_INT, F(gw_config, response_send_timeout_ms),
     0, 100, 600000, NULL, NULL, 0, 0},
    /* host:port listeners: peer addresses allowed (default loopback). */
    {"listen_allow", K_STRLIST, F(gw_config, listen_allow), 0, 1, 64, NULL,
     NULL, 0, F(gw_config, nlisten_allow)},
    /* Workers kept for cheap routes: at most threads - this may wait on
     * HSS or on another request's HSS call. */
    {"reserve_threads", K_INT, F(gw_config, reserve_threads), 0, 0, 255, NULL,
     NULL, 0, 0},
    {"jwt", K_OBJ, 0, 1, 0, 0, NULL, jwtkeys, 0, 0},
    {"shadow_policies_dir", K_PATH, F(gw_config, shadow_policies_dir), 0, 1,
     PATH_MAX, NULL, NULL, 0, 0},
    {"policies_dir", K_PATH, F(gw_config, policies_dir), 1, 1, PATH_MAX, NULL,
     NULL, 0, 0},
    {"credentials", K_ARRAY, F(gw_config, creds), 1, 1, CONF_MAX_ITEMS, NULL,
     credkeys, sizeof(struct gw_conf_cred), F(gw_config, ncreds)},
    {"projects", K_ARRAY, F(gw_config, projects), 1, 1, CONF_MAX_ITEMS, NULL,
     projkeys, sizeof(struct gw_conf_project), F(gw_config, nprojects)},
    {"upstream", K_OBJ, 0, 0, 0, 0, NULL, upkeys, 0, 0},
    {"audit", K_OBJ, 0, 1, 0, 0, NULL, auditkeys, 0, 0},
    {"tasks", K_OBJ, 0, 0, 0, 0, NULL, taskkeys, 0, 0},
    {"instance", K_STR, F(gw_config, instance), 0, 1, 64, NULL, NULL, 0, 0},
    {"shared_state", K_OBJ, 0, 0, 0, 0, NULL, sharedkeys, 0, 0},
    {"metrics", K_OBJ, 0, 0, 0, 0, NULL, metricskeys, 0, 0},
    /* Reference, table 2: export_size is 0 to 2,147,483,647. */
    {"default_export_size", K_INT, F(gw_config, default_export_size), 0, 0,
     2147483647LL, NULL, NULL, 0, 0},
    END,
};

static const char *const kindname[K__MAX] = {
    [K_STR] = "a string",       [K_PATH] = "a path string",
    [K_INT] = "an integer",     [K_STRLIST] = "an array of strings",
    [K_OBJ] = "an object",      [K_ARRAY] = "an array of objects",
    [K_BOOL] = "true or false",
};

static int fail(struct loadctx *, const char *, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct loadctx *c, const char *path, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s", path, msg);
	return -1;
}

static char *
resolve(const struct loadctx *c, const char *s)
{
	size_t n;
	char *p;

	if (s[0] == '/')
		return strdup(s);
	n = strlen(c->dir) + 1 + strlen(s) + 1;
	p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s", c->dir, s);
	return p;
}

static int load_obj(struct loadctx *, struct json_object *, const struct ckey *,
                    void *, const char *);

static int
load_strlist(struct loadctx *c, struct json_object *v, const struct ckey *k,
             void *target, const char *path)
{
	char ***dst = (char ***)((char *)target + k->off);
	size_t *cnt = (size_t *)((char *)target + k->countoff);
	struct json_object *e;
	size_t i, n, len;
	char sub[512];

	n = json_object_array_length(v);
	if (n < (size_t)k->min || n > CONF_MAX_ITEMS)
		return fail(c, path, "must hold %lld to %d strings", k->min,
		            CONF_MAX_ITEMS);
	*dst = calloc(n, sizeof(char *));
	if (*dst == NULL)
		return fail(c, path, "out of memory");
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(v, i);
		if (snprintf(sub, sizeof(sub), "%s[%zu]", path, i) >=
		    (int)sizeof(sub))
			return fail(c, path, "nested too deeply");
		if (!json_object_is_type(e, json_type_string))
			return fail(c, sub, "must be a string");
		len = (size_t)json_object_get_string_len(e);
		if (len < 1 || len > (size_t)k->max)
			return fail(c, sub, "must be 1 to %lld characters",
			            k->max);
		(*dst)[i] = strdup(json_object_get_string(e));
		if ((*dst)[i] == NULL)
			return fail(c, sub, "out of memory");
		*cnt = i + 1;
	}
	return 0;
}

static int
load_array(struct loadctx *c, struct json_object *v, const struct ckey *k,
           void *target, const char *path)
{
	void **dst = (void **)((char *)target + k->off);
	size_t *cnt = (size_t *)((char *)target + k->countoff);
	size_t i, n;
	char sub[512];

	n = json_object_array_length(v);
	if (n < (size_t)k->min || n > (size_t)k->max) {
		return fail(c, path, "must hold %lld to %lld entries", k->min,
		            k->max);
	}
	*dst = calloc(n, k->elemsize);
	if (*dst == NULL)
		return fail(c, path, "out of memory");
	*cnt = n;
	for (i = 0; i < n; i++) {
		if (snprintf(sub, sizeof(sub), "%s[%zu]", path, i) >=
		    (int)sizeof(sub))
			return fail(c, path, "nested too deeply");
		if (load_obj(c, json_object_array_get_idx(v, i), k->sub,
		             (char *)*dst + i * k->elemsize, sub) == -1)
			return -1;
	}
	return 0;
}

static int
load_value(struct loadctx *c, struct json_object *v, const struct ckey *k,
           void *target, const char *path)
{
	static const enum json_type want[K__MAX] = {
	    [K_STR] = json_type_string,   [K_PATH] = json_type_string,
	    [K_INT] = json_type_int,      [K_STRLIST] = json_type_array,
	    [K_OBJ] = json_type_object,   [K_ARRAY] = json_type_array,
	    [K_BOOL] = json_type_boolean,
	};
	char **sp = (char **)((char *)target + k->off);
	long long *ip = (long long *)((char *)target + k->off);
	const char *const *o;
	const char *s;
	size_t len;
	int64_t iv;

	if (!json_object_is_type(v, want[k->kind]))
		return fail(c, path, "must be %s", kindname[k->kind]);
	switch (k->kind) {
	case K_STR:
	case K_PATH:
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		if (len < (size_t)k->min || len > (size_t)k->max ||
		    strlen(s) != len) {
			return fail(c, path, "must be %lld to %lld characters",
			            k->min, k->max);
		}
		if (k->oneof != NULL) {
			for (o = k->oneof; *o != NULL; o++)
				if (strcmp(*o, s) == 0)
					break;
			if (*o == NULL)
				return fail(c, path, "unsupported value \"%s\"",
				            s);
		}
		free(*sp);
		*sp = k->kind == K_PATH ? resolve(c, s) : strdup(s);
		if (*sp == NULL)
			return fail(c, path, "out of memory");
		return 0;
	case K_INT:
		errno = 0;
		iv = json_object_get_int64(v);
		if (errno != 0 || iv < k->min || iv > k->max) {
			return fail(c, path,
			            "must be an integer from %lld to %lld",
			            k->min, k->max);
		}
		*ip = iv;
		return 0;
	case K_BOOL:
		*ip = json_object_get_boolean(v) ? 1 : 0;
		return 0;
	case K_STRLIST:
		return load_strlist(c, v, k, target, path);
	case K_OBJ:
		return load_obj(c, v, k->sub, target, path);
	case K_ARRAY:
		return load_array(c, v, k, target, path);
	default:
		return fail(c, path, "internal: bad key kind");
	}
}

/* Walks one JSON object against its key table. */
static int
load_obj(struct loadctx *c, struct json_object *o, const struct ckey *keys,
         void *target, const char *path)
{
	const struct ckey *k;
	struct json_object *v;
	char sub[512];

	if (!json_object_is_type(o, json_type_object))
		return fail(c, path[0] ? path : "(top)", "must be an object");
	for (struct json_object_iterator it_ = json_object_iter_begin(o),
	                                 end_ = json_object_iter_end(o);
	     !json_object_iter_equal(&it_, &end_);
	     json_object_iter_next(&it_)) {
		const char *name = json_object_iter_peek_name(&it_);
		struct json_object *val = json_object_iter_peek_value(&it_);
		(void)val;
		for (k = keys; k->name != NULL; k++)
			if (strcmp(k->name, name) == 0)
				break;
		if (k->name == NULL) {
			snprintf(sub, sizeof(sub), "%s%s%s", path,
			         path[0] ? "." : "", name);
			return fail(c, sub, "unknown key");
		}
	}
	for (k = keys; k->name != NULL; k++) {
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "",
		         k->name);
		if (!json_object_object_get_ex(o, k->name, &v)) {
			if (k->required)
				return fail(c, sub, "required key missing");
			continue;
		}
		if (load_value(c, v, k, target, sub) == -1)
			return -1;
	}
	return 0;
}

static int
check_listen(const char *s)
{
	const char *colon;
	long long port;

	if (s == NULL)
		return -1;
	if (strcmp(s, "fd:0") == 0 || strcmp(s, "systemd") == 0)
		return 0;
	if (strncmp(s, "unix:/", 6) == 0)
		return 0;
	colon = strrchr(s, ':');
	if (colon == NULL || colon == s)
		return -1;
	return gw_strtonum(colon + 1, 1, 65535, &port);
}

/* An IPv4 or IPv6 literal, as inet_pton(3) reads it. */
static int
check_ip(const char *s)
{
	unsigned char a[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1)
		return 0;
	return -1;
}

static int
credrule_has(size_t r, const char *key)
{
	size_t i;

	for (i = 0;
	     i < sizeof(credrules[r].keys) / sizeof(credrules[r].keys[0]); i++)
		if (credrules[r].keys[i] != NULL &&
		    strcmp(credrules[r].keys[i], key) == 0)
			return 1;
	return 0;
}

/* One credentials entry against its type's rule. */
static int
check_cred(struct loadctx *c, struct gw_config *conf, size_t i)
{
	struct gw_conf_cred *cc = &conf->creds[i];
	const struct ckey *k;
	char path[160];
	size_t r, j;
	int has;

	for (r = 0; r < sizeof(credrules) / sizeof(credrules[0]); r++)
		if (strcmp(credrules[r].type, cc->type) == 0)
			break;
	if (r == sizeof(credrules) / sizeof(credrules[0])) {
		snprintf(path, sizeof(path), "credentials[%zu].type", i);
		return fail(c, path, "unsupported value \"%s\"", cc->type);
	}
	for (k = credkeys; k->name != NULL; k++) {
		if (k->kind != K_STR && k->kind != K_PATH)
			continue;
		if (strcmp(k->name, "name") == 0 ||
		    strcmp(k->name, "type") == 0)
			continue;
		has = *(char **)((char *)cc + k->off) != NULL;
		snprintf(path, sizeof(path), "credentials[%zu].%s", i, k->name);
		if (has && !credrule_has(r, k->name))
			return fail(c, path, "not used by type %s", cc->type);
		if (!has && credrule_has(r, k->name))
			return fail(c, path, "required for type %s", cc->type);
	}
	if (cc->refresh_margin_s != 0 && !credrules[r].refreshes) {
		snprintf(path, sizeof(path),
		         "credentials[%zu].refresh_margin_s", i);
		return fail(c, path, "not used by type %s", cc->type);
	}
	/* Passwords and tokens never travel over plain http. */
	if (cc->iam_endpoint != NULL &&
	    strncmp(cc->iam_endpoint, "https://", 8) != 0) {
		snprintf(path, sizeof(path), "credentials[%zu].iam_endpoint",
		         i);
		return fail(c, path, "must start with https://");
	}
	if (cc->base == NULL)
		return 0;
	for (j = 0; j < conf->ncreds; j++)
		if (strcmp(conf->creds[j].name, cc->base) == 0)
			cc->base_cred = &conf->creds[j];
	if (cc->base_cred == NULL ||
	    strcmp(cc->base_cred->type, "iam_password") != 0) {
		snprintf(path, sizeof(path), "credentials[%zu].base", i);
		return fail(c, path, "must name an iam_password entry");
	}
	return 0;
}

/* A name without spaces or controls: instance names, key prefixes. */
static int
is_token(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s == 0x7f)
			return 0;
	return 1;
}

/*
 * shared_state.sentinels: each "host:port" (a name or an IPv4 address,
 * as in shared_state.redis), split into shared_sentinel_hosts and
 * _ports.  At most GW_CONF_SENTINELS_MAX.
 */
static int
check_sentinels(struct loadctx *c, struct gw_config *conf)
{
	char path[64];
	const char *colon;
	size_t i, n = conf->nshared_sentinels;

	if (conf->shared_master_name == NULL ||
	    !is_token(conf->shared_master_name))
		return fail(
		    c, "shared_state.master_name",
		    "required with sentinels, without spaces or control "
		    "characters");
	if (n > GW_CONF_SENTINELS_MAX)
		return fail(c, "shared_state.sentinels", "at most 16");
	if (conf->shared_sentinel_username != NULL &&
	    !is_token(conf->shared_sentinel_username))
		return fail(c, "shared_state.sentinel_username",
		            "must hold no spaces or control characters");
	conf->shared_sentinel_hosts = calloc(n, sizeof(char *));
	conf->shared_sentinel_ports = calloc(n, sizeof(long long));
	if (conf->shared_sentinel_hosts == NULL ||
	    conf->shared_sentinel_ports == NULL)
		return fail(c, "", "no memory");
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "shared_state.sentinels[%zu]", i);
		colon = strrchr(conf->shared_sentinels[i], ':');
		if (colon == NULL || colon == conf->shared_sentinels[i] ||
		    !is_token(conf->shared_sentinels[i]) ||
		    strchr(conf->shared_sentinels[i], '@') != NULL ||
		    gw_strtonum(colon + 1, 1, 65535,
		                &conf->shared_sentinel_ports[i]) == -1)
			return fail(c, path, "must be \"host:port\"");
		conf->shared_sentinel_hosts[i] =
		    strndup(conf->shared_sentinels[i],
		            (size_t)(colon - conf->shared_sentinels[i]));
		if (conf->shared_sentinel_hosts[i] == NULL)
			return fail(c, "", "no memory");
	}
	return 0;
}

/*
 * shared_state.redis: "unix:/path" or "redis://host:port[/db]" (db 0..15,
 * Redis's default databases), split here so shared.c parses nothing; or
 * shared_state.sentinels with master_name instead.
 */
static int
check_shared(struct loadctx *c, struct gw_config *conf)
{
	const char *s = conf->shared_redis, *h, *colon, *slash;
	char num[16];
	size_t n;

	if (s != NULL && conf->nshared_sentinels > 0)
		return fail(c, "shared_state",
		            "either redis or sentinels, not both");
	if (s == NULL && conf->nshared_sentinels == 0) {
		/* An object with neither names no server: say so. */
		if (conf->shared_username != NULL ||
		    conf->shared_password_file != NULL ||
		    conf->shared_key_prefix != NULL ||
		    conf->shared_master_name != NULL ||
		    conf->shared_sentinel_username != NULL ||
		    conf->shared_sentinel_password_file != NULL)
			return fail(c, "shared_state",
			            "redis or sentinels required");
		return 0;
	}
	if ((conf->shared_master_name != NULL ||
	     conf->shared_sentinel_username != NULL ||
	     conf->shared_sentinel_password_file != NULL) &&
	    conf->nshared_sentinels == 0)
		return fail(c, "shared_state.master_name",
		            "only with sentinels");
	if (conf->shared_key_prefix != NULL &&
	    !is_token(conf->shared_key_prefix))
		return fail(c, "shared_state.key_prefix",
		            "must hold no spaces or control characters");
	if (conf->shared_username != NULL && !is_token(conf->shared_username))
		return fail(c, "shared_state.username",
		            "must hold no spaces or control characters");
	if (s == NULL)
		return check_sentinels(c, conf);
	if (strncmp(s, "unix:/", 6) == 0) {
		conf->shared_unix = strdup(s + 5);
		return conf->shared_unix != NULL ? 0 : fail(c, "", "no memory");
	}
	if (strncmp(s, "redis://", 8) != 0)
		goto bad;
	h = s + 8;
	colon = strchr(h, ':');
	if (colon == NULL || colon == h || strchr(h, '@') != NULL)
		goto bad;
	slash = strchr(colon, '/');
	n = (size_t)((slash != NULL ? slash : colon + strlen(colon)) - colon -
	             1);
	if (n == 0 || n >= sizeof(num))
		goto bad;
	memcpy(num, colon + 1, n);
	num[n] = '\0';
	if (gw_strtonum(num, 1, 65535, &conf->shared_port) == -1)
		goto bad;
	if (slash != NULL &&
	    gw_strtonum(slash + 1, 0, 15, &conf->shared_db) == -1)
		goto bad;
	conf->shared_host = strndup(h, (size_t)(colon - h));
	return conf->shared_host != NULL ? 0 : fail(c, "", "no memory");
bad:
	/* The value is no secret (the password is in a file): say it. */
	return fail(c, "shared_state.redis",
	            "must be \"unix:/path\" or \"redis://host:port[/db]\" "
	            "(db 0..15, no user or password in it)");
}

/*
 * audit.ship.relp: "host:port" or "[v6]:port", split for librelp; the
 * TLS files are all or nothing as librelp needs them.
 */
static int
check_ship(struct loadctx *c, struct gw_config *conf)
{
	const char *s = conf->ship_relp, *colon, *h, *e;
	long long port;

	if (s == NULL)
		return 0;
	colon = strrchr(s, ':');
	h = s;
	e = colon;
	if (s[0] == '[') {
		h = s + 1;
		e = strchr(s, ']');
		if (e == NULL || e + 1 != colon)
			colon = NULL;
	}
	if (colon == NULL || e <= h || !is_token(s) ||
	    gw_strtonum(colon + 1, 1, 65535, &port) == -1)
		return fail(c, "audit.ship.relp",
		            "must be \"host:port\" or \"[v6]:port\"");
	conf->ship_host = strndup(h, (size_t)(e - h));
	conf->ship_port = strdup(colon + 1);
	if (conf->ship_host == NULL || conf->ship_port == NULL)
		return fail(c, "", "no memory");
	if (conf->ship_tls && conf->ship_tls_ca_file == NULL)
		return fail(c, "audit.ship.tls_ca_file",
		            "required with \"tls\": true");
	if ((conf->ship_tls_cert_file == NULL) !=
	    (conf->ship_tls_key_file == NULL))
		return fail(c, "audit.ship.tls_cert_file",
		            "tls_cert_file and tls_key_file go together");
	if (!conf->ship_tls && (conf->ship_tls_ca_file != NULL ||
	                        conf->ship_tls_cert_file != NULL ||
	                        conf->ship_tls_auth_mode != NULL ||
	                        conf->nship_tls_permitted_peers > 0))
		return fail(c, "audit.ship.tls",
		            "TLS keys given but \"tls\" is not true");
	return 0;
}

/* Cross-references the tables cannot express. */
static int
check_refs(struct loadctx *c, struct gw_config *conf)
{
	size_t i, j, n;
	char path[128];

	if (conf->instance != NULL && !is_token(conf->instance))
		return fail(c, "instance",
		            "must hold no spaces or control characters");
	if (conf->instance == NULL) {
		/* The default names the host (docs/SHARED_STATE.md). */
		char host[65];

		if (gethostname(host, sizeof(host)) == -1)
			snprintf(host, sizeof(host), "hssgw");
		host[sizeof(host) - 1] = '\0';
		conf->instance = strdup(host);
		if (conf->instance == NULL)
			return fail(c, "instance", "out of memory");
	}
	if (check_shared(c, conf) == -1 || check_ship(c, conf) == -1)
		return -1;
	if (check_listen(conf->listen) == -1)
		return fail(
		    c, "listen",
		    "must be \"unix:/path\", \"host:port\", \"fd:0\" or "
		    "\"systemd\"");
	for (i = 0; i < conf->nlisten_allow; i++)
		if (check_ip(conf->listen_allow[i]) == -1) {
			snprintf(path, sizeof(path), "listen_allow[%zu]", i);
			return fail(c, path, "must be an IPv4 or IPv6 address");
		}
	/* Default: one worker kept, unless there is only one. */
	if (conf->reserve_threads == -1)
		conf->reserve_threads = conf->threads > 1 ? 1 : 0;
	else if (conf->reserve_threads >= conf->threads)
		return fail(c, "reserve_threads", "must be below threads");
	for (i = 0; i < conf->ncreds; i++)
		for (j = 0; j < i; j++)
			if (strcmp(conf->creds[i].name, conf->creds[j].name) ==
			    0) {
				snprintf(path, sizeof(path),
				         "credentials[%zu].name", i);
				return fail(c, path, "duplicate name \"%s\"",
				            conf->creds[i].name);
			}
	for (i = 0; i < conf->ncreds; i++)
		if (check_cred(c, conf, i) == -1)
			return -1;
	for (i = 0; i < conf->nprojects; i++) {
		struct gw_conf_project *p = &conf->projects[i];

		for (j = 0; j < i; j++)
			if (strcmp(p->alias, conf->projects[j].alias) == 0) {
				snprintf(path, sizeof(path),
				         "projects[%zu].alias", i);
				return fail(c, path, "duplicate alias \"%s\"",
				            p->alias);
			}
		/* TLS is always verified: plain http is never allowed. */
		if (strncmp(p->endpoint, "https://", 8) != 0) {
			snprintf(path, sizeof(path), "projects[%zu].endpoint",
			         i);
			return fail(c, path, "must start with https://");
		}
		/*
		 * Normalised once, here: every HSS URL is built from it by
		 * appending "/segment"s (gw_tr_url), so a trailing '/' would
		 * make "//", which a front may merge into a path other than
		 * the one signed.  A query or fragment has no place in it.
		 */
		n = strlen(p->endpoint);
		while (n > 8 && p->endpoint[n - 1] == '/')
			p->endpoint[--n] = '\0';
		if (n == 8 || strpbrk(p->endpoint, "?#") != NULL) {
			snprintf(path, sizeof(path), "projects[%zu].endpoint",
			         i);
			return fail(
			    c, path,
			    "must be https://host[:port][/path], without "
			    "a query or fragment");
		}
		for (j = 0; j < conf->ncreds; j++)
			if (strcmp(conf->creds[j].name, p->credentials) == 0)
				p->cred = &conf->creds[j];
		if (p->cred == NULL) {
			snprintf(path, sizeof(path),
			         "projects[%zu].credentials", i);
			return fail(c, path, "no credentials entry \"%s\"",
			            p->credentials);
		}
	}
	return 0;
}

struct gw_config *
gw_conf_load(const char *path, char *err, size_t errlen)
{
	struct gw_config *conf = NULL, *ret = NULL;
	struct json_object *root = NULL;
	struct json_tokener *tok = NULL;
	struct loadctx c;
	char *text = NULL, *dcopy = NULL, rerr[512];
	size_t len = 0;

	if (gw_read_file(path, CONF_MAX_BYTES, 0, &text, &len, rerr,
	                 sizeof(rerr)) == -1) {
		snprintf(err, errlen, "%s", rerr);
		goto out;
	}
	tok = json_tokener_new();
	if (tok == NULL)
		goto out;
	root = json_tokener_parse_ex(tok, text, (int)len);
	if (root == NULL || tok->char_offset != (int)len) {
		snprintf(err, errlen, "%s: invalid JSON near byte %d", path,
		         (int)tok->char_offset);
		goto out;
	}
	conf = calloc(1, sizeof(*conf));
	dcopy = strdup(path);
	if (conf == NULL || dcopy == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	conf->path = strdup(path);
	/* One request per thread, held through fdatasync and HSS calls:
	 * sized for 32 concurrent clients (hssgw(8), SIZING). */
	conf->threads = 32;
	conf->max_body_bytes = 65536;
	conf->request_read_timeout_ms = 5000;
	conf->response_send_timeout_ms = 30000;
	/* Longer than nginx's upstream keepalive_timeout (50s in the
	 * template): nginx, not hssgw, closes an idle connection. */
	conf->keepalive_timeout_ms = 60000;
	conf->reserve_threads = -1; /* set in check_refs */
	conf->jwt_leeway_s = 60;
	conf->jwt_max_token_bytes = 8192;
	conf->jwt_cache_entries = 4096;
	conf->up_connect_timeout_ms = 3000;
	conf->up_timeout_ms = 15000;
	conf->up_max_response_bytes = 1024 * 1024;
	conf->default_export_size = 1000;
	conf->tasks_budget_per_minute = 5;
	/* Opt-in: a coalesced export answers with an earlier task. */
	conf->tasks_coalesce_window_ms = 0;
	conf->tasks_status_cache_ttl_s = 12;
	conf->tasks_download_timeout_ms = 600000;
	conf->tasks_max_file_bytes = 4LL << 30;
	/* Below nginx's fastcgi_read_timeout (30 s in deploy/). */
	conf->tasks_retry_deadline_ms = 20000;
	conf->shared_timeout_ms = 250;
	conf->shared_expected_instances = 2;
	conf->audit_fsync = 1;
	conf->metrics_enabled = 1;
	conf->audit_anon_bytes_per_hour = 10LL * 1024 * 1024;
	conf->audit_summary_interval_ms = 60000;
	conf->audit_signed_checkpoint_interval_s = 60;
	conf->ship_batch_size = 256;
	conf->ship_timeout_s = 10;
	c.dir = dirname(dcopy);
	c.err = rerr;
	c.errlen = sizeof(rerr);
	if (load_obj(&c, root, topkeys, conf, "") == -1 ||
	    check_refs(&c, conf) == -1) {
		snprintf(err, errlen, "%s: %s", path, rerr);
		goto out;
	}
	ret = conf;
	conf = NULL;
out:
	gw_conf_free(conf);
	json_object_put(root);
	if (tok != NULL)
		json_tokener_free(tok);
	free(text);
	free(dcopy);
	return ret;
}

static void
free_strv(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int
gw_conf_shared(const struct gw_config *conf)
{
	return conf->shared_redis != NULL || conf->nshared_sentinels > 0;
}

void
gw_conf_free(struct gw_config *conf)
{
	size_t i, j;

	if (conf == NULL)
		return;
	for (i = 0; i < conf->nissuers; i++) {
		struct gw_conf_issuer *is = &conf->issuers[i];

		free(is->issuer);
		free_strv(is->audiences, is->naudiences);
		for (j = 0; j < is->nkeys; j++) {
			free(is->keys[j].kid);
			free(is->keys[j].alg);
			free(is->keys[j].file);
		}
		free(is->keys);
		free(is->discovery_url);
		free(is->jwks_uri);
		free(is->jwks_file);
		free_strv(is->algorithms, is->nalgorithms);
		free(is->jwks_ca_file);
	}
	free(conf->issuers);
	for (i = 0; i < conf->nprojects; i++) {
		struct gw_conf_project *p = &conf->projects[i];

		free(p->alias);
		free(p->project_id);
		free(p->region);
		free(p->endpoint);
		free(p->enterprise_project_id);
		free_strv(p->enterprise_projects, p->nenterprise_projects);
		free(p->credentials);
	}
	free(conf->projects);
	for (i = 0; i < conf->ncreds; i++) {
		free(conf->creds[i].name);
		free(conf->creds[i].type);
		free(conf->creds[i].file);
		free(conf->creds[i].iam_endpoint);
		free(conf->creds[i].user);
		free(conf->creds[i].domain);
		free(conf->creds[i].password_file);
		free(conf->creds[i].base);
		free(conf->creds[i].agency);
		free(conf->creds[i].access_key);
		free(conf->creds[i].secret_key_file);
	}
	free(conf->creds);
	free(conf->path);
	free(conf->listen);
	free_strv(conf->listen_allow, conf->nlisten_allow);
	free(conf->policies_dir);
	free(conf->shadow_policies_dir);
	free(conf->up_ca_file);
	free(conf->audit_file);
	free(conf->ship_relp);
	free(conf->ship_host);
	free(conf->ship_port);
	free(conf->ship_cursor_file);
	free(conf->ship_metrics_file);
	free(conf->ship_tls_ca_file);
	free(conf->ship_tls_cert_file);
	free(conf->ship_tls_key_file);
	free(conf->ship_tls_auth_mode);
	free_strv(conf->ship_tls_permitted_peers,
	          conf->nship_tls_permitted_peers);
	free(conf->tasks_handle_key_file);
	free(conf->audit_signing_key_file);
	free(conf->tasks_fair_share_claim);
	free(conf->instance);
	free(conf->shared_redis);
	free(conf->shared_username);
	free(conf->shared_password_file);
	free(conf->shared_key_prefix);
	free(conf->shared_unix);
	free(conf->shared_host);
	free_strv(conf->shared_sentinels, conf->nshared_sentinels);
	/* Parsed only once every sentinel was loaded: may be NULL. */
	if (conf->shared_sentinel_hosts != NULL)
		free_strv(conf->shared_sentinel_hosts, conf->nshared_sentinels);
	free(conf->shared_sentinel_ports);
	free(conf->shared_master_name);
	free(conf->shared_sentinel_username);
	free(conf->shared_sentinel_password_file);
	free(conf);
}

const struct gw_conf_project *
gw_conf_project_get(const struct gw_config *conf, const char *alias)
{
	size_t i;

	for (i = 0; i < conf->nprojects; i++)
		if (strcmp(conf->projects[i].alias, alias) == 0)
			return &conf->projects[i];
	return NULL;
}
