/*
 * Internal to the credentials module: for cred.c and its providers
 * (cred_token.c, cred_iam.c, cred_aksk.c) only, never included anywhere
 * else (the public API is cred.h).  It holds the provider interface, the
 * provider handle every gw_cred_* call takes, and the secret-file readers
 * the providers share.  Calls go one way: the providers call cred.c's
 * readers; cred.c reaches a provider only through its ops row.
 */
#ifndef GW_CRED_INT_H
#define GW_CRED_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cred.h"

/*
 * A provider, named by one or more rows of cred.c's type table.  load fills
 * c->state (-1 with a reason naming the entry and file on failure); apply is
 * thread-safe; free wipes and frees the state and accepts NULL.  invalidate,
 * prime, ready, expiry and set_sender are NULL for types without a token cache.
 */
struct cred_ops {
	int (*load)(struct gw_cred *, const struct gw_conf_cred *, char *err,
	            size_t errlen);
	enum gw_err (*apply)(struct gw_cred *, struct gw_upreq *,
	                     const char *project_id, int64_t now_ms,
	                     char fp[17], struct gw_fault *);
	void (*free)(void *state);
	void (*invalidate)(struct gw_cred *, const char *, const char[17]);
	enum gw_err (*prime)(struct gw_cred *, const char *, int64_t,
	                     struct gw_fault *);
	int (*ready)(struct gw_cred *, int64_t);
	/* The expiry of the token held for a project, 0 when none. */
	int64_t (*expiry)(struct gw_cred *, const char *project_id);
	void (*set_sender)(struct gw_cred *, gw_cred_send_fn, void *arg);
};

struct gw_cred {
	char *name;
	const struct gw_config *conf; /* borrowed */
	const struct cred_ops *ops;
	void *state; /* owned by ops */
	/* token fetches by result (metrics); relaxed, each on its own */
	atomic_ullong fetch_ok, fetch_failed;
};

/* The providers (cred_token.c; cred_iam.c, both IAM types; cred_aksk.c). */
extern const struct cred_ops gw_cred_token_file_ops;
extern const struct cred_ops gw_cred_iam_ops;
extern const struct cred_ops gw_cred_aksk_ops;

/*
 * Reads and validates a token file into *out (owned, secret; its allocated
 * size, for wiping, in *size).  -1 with a reason naming the entry, the
 * file and at most an offset, never a byte of the token.
 */
int gw_cred_token_read(const char *name, const char *file, char **out,
                       size_t *size, char *err, size_t errlen);
/* Reads a one-line secret (password, SK); as gw_cred_token_read. */
int gw_cred_secret_read(const char *name, const char *file, char **out,
                        size_t *size, char *err, size_t errlen);
/* A token we may put into a header: 1 or 0. */
int gw_cred_token_ok(const char *t);

#endif
