/*
 * Basics shared by every module: the one error vocabulary, the fault that
 * carries a client-safe explanation, checked number parsing, capped
 * buffers, constant-time comparison, secret wiping and capped file reads.
 * Nothing here knows about HTTP, JSON, JWT or HSS.
 */
#ifndef GW_H
#define GW_H

#include <stddef.h>
#include <stdint.h>

#define GW_VERSION "0.1.0"

/*
 * The one error vocabulary that crosses module boundaries.  Each value maps
 * to exactly one HTTP status and one stable HSSGW.xxxx code in err.c.
 */
enum gw_err {
	GW_OK = 0,
	GW_ERR_BAD_REQUEST,      /* malformed request: not JSON, bad UTF-8 */
	GW_ERR_FIELD,            /* a field broke a rule (fault names it) */
	GW_ERR_UNAUTHENTICATED,  /* no bearer token */
	GW_ERR_TOKEN_INVALID,    /* bearer token failed verification */
	GW_ERR_DENIED,           /* policy denied the request */
	GW_ERR_NOT_FOUND,        /* unknown path */
	GW_ERR_METHOD,           /* method not allowed on the path */
	GW_ERR_TOO_LARGE,        /* body over the cap */
	GW_ERR_MEDIA_TYPE,       /* body is not application/json */
	GW_ERR_UPSTREAM,         /* HSS unreachable or connection dropped */
	GW_ERR_UPSTREAM_BAD,     /* HSS answered something unusable */
	GW_ERR_UPSTREAM_TIMEOUT, /* HSS did not answer in time */
	GW_ERR_UPSTREAM_AUTH,    /* HSS rejected the gateway credentials */
	GW_ERR_CREDENTIALS,      /* gateway credentials unavailable */
	GW_ERR_AUDIT,            /* audit record could not be written */
	GW_ERR_NOMEM,            /* allocation failed */
	GW_ERR_RATE_LIMITED,     /* too many requests (nginx limit_req) */
	GW_ERR_UNAVAILABLE,      /* hssgw down: nginx answers for it */
	GW_ERR_CONFIG,           /* configuration, key or policy invalid */
	GW_ERR_INTERNAL,         /* a bug: should not happen */
	GW_ERR_TASK_NOT_FOUND,   /* no such export task for this caller */
	GW_ERR_BUDGET,           /* hssgw's upstream budget is spent */
	GW_ERR_UPSTREAM_BUSY,    /* HSS throttled (APIGW.0308) past retries */
	GW_ERR_TASK_NOT_READY,   /* the export task has no file (yet) */
	GW_ERR_BUSY,             /* every worker that may wait on HSS is busy */
	GW_ERR_FRONT_REQUEST,    /* nginx refused the request line/headers */
	GW_ERR_JWKS_STALE,       /* an issuer's JWK Set missing or too old */
	GW_ERR_SHIP_LAG, /* the trail not shipped: audit.ship.max_lag_s */
	GW_ERR__MAX
};

/* Short description of an error; never NULL. */
const char *gw_strerror(enum gw_err);
/* HTTP status that answers an error (200 for GW_OK). */
int gw_err_status(enum gw_err);
/* Stable machine-readable code, e.g. "HSSGW.0400"; never NULL. */
const char *gw_err_code(enum gw_err);

/*
 * A failure explained to the client: the error, the offending field (may be
 * empty) and a message naming the rule.  Both strings are client-safe: they
 * never hold secrets or key material.  A zeroed fault is "no fault".
 */
struct gw_fault {
	enum gw_err err;
	char field[128];
	char msg[256];
};

/* Sets a fault; returns err so callers can "return gw_fault_set(...)". */
enum gw_err gw_fault_set(struct gw_fault *, enum gw_err, const char *field,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Parses a whole decimal integer in [min, max] (strtonum semantics: no
 * leading junk, no trailing junk, no overflow).  Returns 0 on success, -1
 * otherwise with *out untouched.
 */
int gw_strtonum(const char *, long long min, long long max, long long *out);

/* Constant-time equality of two byte strings; lengths may leak. */
int gw_ct_equal(const void *, size_t, const void *, size_t);

/* Overwrites memory so the compiler cannot elide it. */
void gw_wipe(void *, size_t);

/* Frees a NUL-terminated secret after wiping it; accepts NULL. */
void gw_secret_free(char *);

/* Returns 1 if the bytes are well-formed UTF-8 (RFC 3629), else 0. */
int gw_utf8_valid(const char *, size_t);

/*
 * Parses an RFC 3339 date-time ("2026-01-02T03:04:05.678Z", with "Z" or a
 * numeric offset) into milliseconds since the epoch.  Returns 0 or -1.
 */
int gw_rfc3339_ms(const char *, int64_t *out);

/* Formats milliseconds since the epoch as RFC 3339 UTC with milliseconds. */
void gw_fmt_time_ms(int64_t ms, char *buf, size_t cap);

/* Wall clock in milliseconds since the epoch. */
int64_t gw_now_ms(void);
/* Monotonic clock in microseconds, for latencies. */
int64_t gw_mono_us(void);

/*
 * Reads a whole file of at most cap bytes into a NUL-terminated buffer owned
 * by the caller (*out, *outlen).  When secret is set, the file must be a
 * regular file not readable or writable by group or others, and owned by the
 * current user or root.  Returns 0, or -1 with a reason in err.
 */
int gw_read_file(const char *path, size_t cap, int secret, char **out,
                 size_t *outlen, char *err, size_t errlen);
/*
 * Writes all n bytes to fd, retrying short writes and EINTR.  0, or -1
 * with errno set (EIO for a write that wrote nothing).
 */
int gw_write_all(int fd, const void *, size_t n);
/*
 * fsync(2) of the directory that holds path, so a rename or create in it
 * lasts a crash.  0 or -1 (errno set).
 */
int gw_sync_dir(const char *path);

/*
 * A growable byte buffer with a hard cap fixed at creation.  Appends that
 * would pass the cap fail and set the overflow flag; the buffer is always
 * NUL-terminated.
 */
struct gw_buf {
	char *p;
	size_t len;
	size_t cap;
	size_t max;
	int overflow;
};

void gw_buf_init(struct gw_buf *, size_t max);
/* Appends bytes; returns 0, or -1 on cap or allocation failure. */
int gw_buf_add(struct gw_buf *, const void *, size_t);
/* Makes room for n more bytes without adding any; 0 or -1. */
int gw_buf_reserve(struct gw_buf *, size_t n);
int gw_buf_puts(struct gw_buf *, const char *);
int gw_buf_printf(struct gw_buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Appends s[0..n) as a quoted JSON string, escaped as json-c escapes with
 * JSON_C_TO_STRING_NOSLASHESCAPE ('"', '\\' and the C0 controls; other
 * bytes copied, so valid UTF-8 in gives valid JSON out); 0 or -1.
 */
int gw_buf_json_str(struct gw_buf *, const char *s, size_t n);
/* Hands the NUL-terminated contents to the caller; the buffer is reset. */
char *gw_buf_take(struct gw_buf *, size_t *len);
/* Frees the contents (wiping them); accepts a zeroed buffer. */
void gw_buf_reset(struct gw_buf *);

/* A header of an HTTP message; secret values are redacted in any output. */
struct gw_header {
	char *name;
	char *value;
	int secret;
};

/*
 * A key with its values, borrowed: the request context that policy
 * conditions and audit read (e.g. "hss:image_type" -> {"cicd"}).
 */
struct gw_kv {
	const char *key;
	const char *const *values;
	size_t nvalues;
};

/*
 * Appends n bytes of s percent-encoded: RFC 3986 unreserved characters
 * (section 2.3) kept, every other byte %XX with upper-case hex.  0 or -1.
 */
int gw_pct_encode(struct gw_buf *, const char *s, size_t n);
/*
 * Decodes %XX escapes of n bytes of s into a new NUL-terminated string
 * (caller frees) and its length in *outlen, which differs from strlen when
 * %00 was decoded; with form set, '+' is a space (query strings).  NULL on
 * a malformed escape or no memory.
 */
char *gw_pct_decode(const char *s, size_t n, int form, size_t *outlen);

/* Duplicates a string, NULL in gives NULL out. */
char *gw_strdup(const char *);

/* Fills buf with 2*n lowercase hex digits of n random bytes; 0 or -1. */
int gw_random_hex(char *buf, size_t n);

/*
 * SHA-256 with the digest fetched once: EVP_sha256() makes OpenSSL 3 look
 * the algorithm up in its provider store (a lock and a hash table) on every
 * use, which showed in profiles of every request.  gw_sha256: 0 or -1.
 */
const struct evp_md_st *gw_sha256_md(void);
int gw_sha256(const void *p, size_t n, unsigned char md[32]);
/*
 * HMAC-SHA-256 keyed once (at load; NULL on failure, free with
 * EVP_MAC_CTX_free), then each MAC from a copy of that keyed context:
 * no fetch and no key schedule per call.  gw_hmac_sha256: 0 or -1.
 */
struct evp_mac_ctx_st *gw_hmac_sha256_new(const void *key, size_t len);
int gw_hmac_sha256(const struct evp_mac_ctx_st *keyed, const void *msg,
                   size_t n, unsigned char out[32]);
/* Hex SHA-256 of data, first 16 hex digits: a non-reversible fingerprint. */
void gw_fingerprint(const void *, size_t, char out[17]);

#endif /* GW_H */
