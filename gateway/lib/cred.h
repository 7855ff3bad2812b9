/*
 * Credentials: one provider per credentials entry, behind one interface.
 * A provider decorates an upstream request with what authenticates it,
 * marking those headers secret: X-Auth-Token from a token file or from
 * IAM (iam_password, iam_agency; cached per project scope and refreshed
 * ahead of expiry), or an SDK-HMAC-SHA256 signature (aksk).  Providers are
 * process-lifetime and shared by every worker thread; all calls are
 * thread-safe.  Time is always passed in (now_ms, wall clock in ms), never
 * read here, so tests drive expiry exactly.  Never logs or returns a
 * secret except into the request it decorates.
 */
#ifndef GW_CRED_H
#define GW_CRED_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gw.h"
#include "upreq.h"
#include "upstream.h"

struct gw_cred;

/*
 * How a provider reaches IAM: same contract as gw_up_send.  The default
 * sends with a gw_upstream handle owned by each token slot, used only by
 * the one thread that holds the slot's refresh.  Tests replace it.
 */
typedef enum gw_err (*gw_cred_send_fn)(void *arg, const struct gw_upreq *,
                                       struct gw_upresp *, struct gw_fault *);

/*
 * Creates the provider of a credentials entry; NULL with a reason naming
 * the entry and file (never a secret).  conf and the entry are borrowed
 * and must outlive the provider (both live in the snapshot); conf gives
 * IAM calls their timeouts and CA and may be NULL for token_file and aksk.
 * Secret files are checked here (owner, mode).
 */
struct gw_cred *gw_cred_new(const struct gw_config *conf,
                            const struct gw_conf_cred *, char *err,
                            size_t errlen);
/* Frees a provider, wiping secrets; accepts NULL. */
void gw_cred_free(struct gw_cred *);
/* Replaces how IAM is called (tests); call before any thread uses c. */
void gw_cred_set_sender(struct gw_cred *, gw_cred_send_fn, void *arg);
/*
 * Adds authentication to req for project_id at time now_ms.  fp receives
 * a short fingerprint of the credential used (for audit).  Returns
 * GW_ERR_CREDENTIALS (503) when no valid credential is available, never an
 * expired token.  May block for one IAM call when the token is due.
 */
enum gw_err gw_cred_apply(struct gw_cred *, struct gw_upreq *req,
                          const char *project_id, int64_t now_ms, char fp[17],
                          struct gw_fault *);
/*
 * Drops the cached token of project_id if its fingerprint is fp (HSS
 * answered 401 with it), so the next apply fetches a fresh one without
 * waiting for backoff.  A stale fp (already replaced) is a no-op.
 */
void gw_cred_invalidate(struct gw_cred *, const char *project_id,
                        const char fp[17]);
/*
 * Fetches the token of project_id now unless a fresh one is cached
 * (startup).  GW_OK or GW_ERR_CREDENTIALS with the reason in the fault.
 */
enum gw_err gw_cred_prime(struct gw_cred *, const char *project_id,
                          int64_t now_ms, struct gw_fault *);
/*
 * Readiness: 1 if every project scope asked for so far holds a token valid
 * at now_ms (and at least one was asked for), 0 otherwise.  Always 1 for
 * token_file and aksk once loaded.
 */
int gw_cred_ready(struct gw_cred *, int64_t now_ms);
/* The entry's name, borrowed. */
const char *gw_cred_name(const struct gw_cred *);
/*
 * For the metrics: 1 and the expiry of the token held for project_id in
 * *exp_ms (0 when none is held) for types with expiring tokens (IAM);
 * 0 for types whose expiry hssgw does not know (token_file, aksk).
 */
int gw_cred_expiry(struct gw_cred *, const char *project_id, int64_t *exp_ms);
/* For the metrics: the token fetches made since load, by result. */
void gw_cred_refreshes(const struct gw_cred *, unsigned long long *ok,
                       unsigned long long *failed);

/*
 * The headers each credential type adds at send time, one row per header,
 * as shown without sending ("hssgw translate"): shown is "<redacted>" for a
 * secret, a placeholder for the signing time, NULL for the project id
 * (no secret).  The one table of them; static, never freed.
 */
struct gw_cred_header {
	const char *type; /* the credentials entry's type, e.g. "aksk" */
	const char *name; /* e.g. "X-Auth-Token" */
	const char *shown;
	int secret;
};

/* The table above and its length in *n; never NULL. */
const struct gw_cred_header *gw_cred_headers(size_t *n);
/*
 * Adds type's headers to req as shown (placeholders, never a secret;
 * project_id where shown is NULL).  0, or -1 when type has no row (a
 * request that could not be sent) or on ENOMEM.
 */
int gw_cred_show_headers(struct gw_upreq *req, const char *type,
                         const char *project_id);

#endif
