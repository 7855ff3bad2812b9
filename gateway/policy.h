/*
 * Policy: IAM-shaped JSON documents compiled once into an immutable set and
 * evaluated as a pure function of (set, claims, request).  Default deny; any
 * applicable Deny wins; otherwise an applicable Allow is needed.  Does no
 * I/O after load and never logs.
 */
#ifndef GW_POLICY_H
#define GW_POLICY_H

#include <stddef.h>

#include "claims.h"
#include "gw.h"

/* Load caps: a document larger or longer than these is an error. */
#define GW_POL_FILE_MAX       ((size_t)1 << 20) /* bytes per document */
#define GW_POL_STATEMENTS_MAX 10000             /* statements per set */
#define GW_POL_VALUES_MAX     1000              /* values per list */

struct gw_pol_set;

enum gw_pol_effect {
	GW_POL_IMPLICIT_DENY = 0, /* zero value denies */
	GW_POL_ALLOW,
	GW_POL_EXPLICIT_DENY,
	GW_POL_EFFECT__MAX
};

struct gw_pol_request {
	const struct gw_claims *claims;
	const char *action;      /* "hss:ExportImageBaseline" */
	const char *resource;    /* "hss:<region>:<project-alias>" */
	const struct gw_kv *ctx; /* condition keys, for conditions */
	size_t nctx;
};

struct gw_pol_decision {
	enum gw_pol_effect effect;
	char file[128]; /* deciding statement's file name, "" if none */
	char sid[128];  /* its Sid, or "#<index>" when it has none */
};

/*
 * Loads and compiles every *.json file in dir (sorted by name).  NULL with a
 * reason naming the file and JSON path on any error.
 */
struct gw_pol_set *gw_pol_load_dir(const char *dir, char *err, size_t errlen);
/*
 * Compiles one document from memory as a set of its own, named name (used
 * in errors and decisions).  NULL with a reason on any error.
 */
struct gw_pol_set *gw_pol_load_buf(const char *name, const char *json,
                                   size_t len, char *err, size_t errlen);
/* Number of statements in a set; 0 for NULL or an empty set. */
size_t gw_pol_count(const struct gw_pol_set *);
/* Frees a set; accepts NULL. */
void gw_pol_free(struct gw_pol_set *);
/* Evaluates; always fills *out (deny unless a statement allows). */
void gw_pol_eval(const struct gw_pol_set *, const struct gw_pol_request *,
                 struct gw_pol_decision *out);
/* Hex SHA-256 of the loaded documents: the policy revision. Borrowed. */
const char *gw_pol_revision(const struct gw_pol_set *);
/* "allow", "explicit_deny" or "implicit_deny". */
const char *gw_pol_effect_name(enum gw_pol_effect);

#endif
