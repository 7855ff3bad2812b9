/*
 * Policy: IAM-shaped JSON documents compiled once into an immutable set and
 * evaluated as a pure function of (set, claims, request context).  Default
 * deny; any applicable Deny wins; otherwise an applicable Allow is needed.
 * Conditions, NotAction/NotResource/NotPrincipal and policy variables follow
 * AWS IAM's documented semantics (docs/POLICIES.md).  Does no I/O after
 * load, never allocates while evaluating and never logs.
 */
#ifndef GW_POLICY_H
#define GW_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "claims.h"
#include "gw.h"

/* Load caps: a document larger or longer than these is an error. */
#define GW_POL_FILE_MAX       ((size_t)1 << 20) /* bytes per document */
#define GW_POL_STATEMENTS_MAX 10000             /* statements per set */
#define GW_POL_VALUES_MAX     1000              /* values per list */
#define GW_POL_KEYS_MAX       256 /* distinct condition keys per set */
#define GW_POL_DECIDING_MAX   8   /* deciding statements kept */

struct gw_pol_set;

enum gw_pol_effect {
	GW_POL_IMPLICIT_DENY = 0, /* zero value denies */
	GW_POL_ALLOW,
	GW_POL_EXPLICIT_DENY,
	GW_POL_EFFECT__MAX
};

/*
 * What is evaluated.  ctx holds the condition keys other than jwt:<claim>
 * (hss:<field>, hss:project, hss:region, gw:client_ip, gw:current_time);
 * jwt:<claim> keys always come from claims, never from ctx.
 */
struct gw_pol_request {
	const struct gw_claims *claims;
	const char *action;      /* "hss:ExportImageBaseline" */
	const char *resource;    /* "hss:<region>:<project-alias>" */
	const struct gw_kv *ctx; /* condition keys, for conditions */
	size_t nctx;
};

/*
 * The whole request context policies see: translation's keys plus the two
 * the gateway adds, gw:current_time (RFC 3339 UTC) and gw:client_ip
 * (nginx's $remote_addr; NULL or "" is an unusable address, on which
 * address conditions fail closed).  Storage for the copy.
 */
#define GW_POL_CTX_MAX 96
struct gw_pol_ctx {
	struct gw_kv kv[GW_POL_CTX_MAX];
	size_t n;
	char now[40];
	const char *nowv[1];
	const char *ipv[1];
};

/* Fills c from ctx plus the gw: keys; 0, or -1 over GW_POL_CTX_MAX. */
int gw_pol_ctx_build(struct gw_pol_ctx *c, const struct gw_kv *ctx, size_t n,
                     int64_t now_ms, const char *client_ip);

/* A statement named by its file and Sid ("#<index>" when it has none). */
struct gw_pol_ref {
	char file[128];
	char sid[128];
};

struct gw_pol_decision {
	enum gw_pol_effect effect;
	char file[128]; /* first deciding statement's file, "" if none */
	char sid[128];  /* its Sid, or "#<index>" when it has none */
	/*
	 * The deciding statements in load order: every applicable Deny for
	 * an explicit deny, else every applicable Allow; at most
	 * GW_POL_DECIDING_MAX, ndeciding_total counts them all.
	 */
	struct gw_pol_ref deciding[GW_POL_DECIDING_MAX];
	size_t ndeciding;
	size_t ndeciding_total;
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
/*
 * The number of statements the pre-filter built at load leaves for req:
 * gw_pol_eval evaluates at most these, all others cannot apply.  0 for a
 * NULL set or an incomplete request.  For tests and benchmarks.
 */
size_t gw_pol_candidates(const struct gw_pol_set *,
                         const struct gw_pol_request *);
/*
 * Evaluates like gw_pol_eval (filling *out when out is not NULL) and
 * explains the decision as a JSON object: decision, revision, deciding and
 * applied statements, for every other statement the first element or
 * condition that failed, and the condition keys missing from the request.
 * Returns a malloc'd string the caller frees, or NULL when out of memory.
 * Allocates: for the CLI and tests, not for the request path.
 */
char *gw_pol_explain(const struct gw_pol_set *, const struct gw_pol_request *,
                     struct gw_pol_decision *out);
/*
 * Appends one line per warning to buf ("<file>: <path>: warning: ...") for
 * statements that can never apply (or stop applying at now_ms) and for
 * risky constructs.  Returns the number of warnings.
 */
size_t gw_pol_check(const struct gw_pol_set *, int64_t now_ms,
                    struct gw_buf *buf);
/*
 * 1 when some statement of the set reads the claim called name (a
 * Principal's jwt:<name>, exact; a condition key or a ${jwt:<name>}
 * variable, case-insensitive as IAM compares them), else 0.  For GET
 * /v1/whoami: which of a caller's claims the policies look at.
 */
int gw_pol_reads_claim(const struct gw_pol_set *, const char *name);
/* Hex SHA-256 of the loaded documents: the policy revision. Borrowed. */
const char *gw_pol_revision(const struct gw_pol_set *);
/* "allow", "explicit_deny" or "implicit_deny". */
const char *gw_pol_effect_name(enum gw_pol_effect);
/*
 * The i-th hss:<name> condition key the loader accepts (name without the
 * prefix), or NULL past the end; *is_time (may be NULL) is set when its
 * integer values are milliseconds since the epoch.  For drift tests.
 */
const char *gw_pol_hss_key(size_t i, int *is_time);

/*
 * The i-th statement of a set in load order: its file, Sid and effect
 * (effect may be NULL).  0, or -1 past the end.  For policy test.
 */
int gw_pol_stmt_at(const struct gw_pol_set *, size_t i, struct gw_pol_ref *out,
                   enum gw_pol_effect *effect);
/*
 * The i-th condition key the set reads, in conditions, variables or
 * Principal ("jwt:<claim>", "hss:<field>", "gw:<key>"), or NULL past the
 * end; *is_claim (may be NULL) is set when it is a jwt: claim, whose name
 * follows the prefix.  A name may appear twice (Principal claims match
 * exactly, condition claims ignoring case).  Borrowed from the set.
 */
const char *gw_pol_key_at(const struct gw_pol_set *, size_t i, int *is_claim);

/*
 * Appends to out[n, max) the claims the set reads, by name (without
 * "jwt:"), not already in out[0, n), each with the token's values (found
 * exactly, else ignoring case), or NULL values when the token lacks it.
 * Values and names are borrowed.  Returns the new count.  For the audit
 * record, so a replay sees what the policies read.
 */
size_t gw_pol_claims_read(const struct gw_pol_set *, const struct gw_claims *,
                          struct gw_kv *out, size_t n, size_t max);

/*
 * One decision as the gateway makes it (policy_decide.c): the request's
 * context plus the gw: keys, then, on a task route whose caller is not
 * the task's creator, hss:ActForSubject first, then the route's action.
 * The server, `policy test` and `policy replay` all decide through
 * gw_pol_decide, so none of them can decide differently.
 */
struct gw_pol_input {
	const struct gw_claims *claims;
	const char *action;      /* the route's action */
	const char *resource;    /* "hss:<region>:<project-alias>" */
	const struct gw_kv *ctx; /* hss: keys (translation's, or the task's) */
	size_t nctx;
	int64_t now_ms;        /* gw:current_time */
	const char *client_ip; /* gw:client_ip; NULL: unusable */
	/* A task route: the creator named by the handle; NULL for exports. */
	const char *task_iss, *task_sub;
	/*
	 * NULL, or one flag per statement of the set (gw_pol_count): set
	 * for every statement that applied.  Visits every statement (as
	 * explain does): for `policy test`'s coverage, not the request path.
	 */
	unsigned char *applied;
};

struct gw_pol_verdict {
	/* The route's action's, or hss:ActForSubject's when that denied. */
	struct gw_pol_decision decision;
	const char *action; /* the action decision is about */
	/* hss:ActForSubject, evaluated when the caller is not the creator */
	struct gw_pol_decision actfor;
	int acted_for; /* evaluated and allowed */
};

/* Decides; 0, or -1 when the context exceeds GW_POL_CTX_MAX (denied). */
int gw_pol_decide(const struct gw_pol_set *, const struct gw_pol_input *,
                  struct gw_pol_verdict *out);

/* The task routes' hss: keys, and storage for them (gw_pol_task_ctx). */
struct gw_pol_task_ctx {
	struct gw_kv kv[5];
	const char *v[5];
	size_t n;
};
/*
 * Fills c with hss:task_issuer, hss:task_subject, hss:project,
 * hss:region and, when eps is not NULL, hss:enterprise_project_id; the
 * strings are borrowed.
 */
void gw_pol_task_ctx_build(struct gw_pol_task_ctx *c, const char *iss,
                           const char *sub, const char *alias,
                           const char *region, const char *eps);

#endif
