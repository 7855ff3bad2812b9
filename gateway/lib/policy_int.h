/*
 * Internal to the policy engine: for gateway/lib/policy*.c only, never
 * included anywhere else (the public API is policy.h).  It holds the
 * compiled set's structures, shared by compiling (policy_compile.c,
 * policy_cond.c), matching (policy_match.c), the request's key values
 * (policy_lookup.c), the pre-filter (policy_index.c), evaluation
 * (policy_eval.c) and explain/check (policy_explain.c), and the functions
 * they call across files, all named pol_*.  Calls go one way: eval ->
 * index -> lookup, eval -> lookup.
 */
#ifndef GW_POLICY_INT_H
#define GW_POLICY_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy.h"

struct json_object;

#define POL_VERSION     "2012-10-17"
#define POL_NAME_MAX    127 /* file names: fit gw_pol_decision.file */
#define POL_SID_MAX     100
#define POL_CLAIM_MAX   127  /* claim name after "jwt:" */
#define POL_PCLAIMS_MAX 64   /* claims named by one Principal */
#define POL_PATTERN_MAX 256  /* Action and Resource patterns */
#define POL_VALUE_MAX   1024 /* Principal and condition values */
#define POL_CONDS_MAX   64   /* conditions per statement */
#define POL_EXPAND_MAX  4096 /* a value after variable substitution */
#define POL_FILES_MAX   GW_POL_STATEMENTS_MAX
#define POL_DEPTH       16 /* the format nests 5 deep */
#define POL_PATH_MAX    320
#define POL_MEMO_MAX    1024 /* distinct elements evaluated once per request */

/*
 * A pattern: literal text with a wildcard flag per byte ('*' and '?' are
 * wildcards only where the element allows them; ${*}, ${?} and ${$} are
 * always literal).  With policy variables, parts lists the literal runs of
 * text and the variables between them, substituted at evaluation into a
 * stack buffer; substituted text is always literal.
 */
struct part {
	int var;         /* 0: text[off, off + len) */
	size_t off, len; /* literal run */
	size_t key;      /* var: index in the set's key table */
	char *def;       /* var: default value ${key, 'def'}, or NULL */
	size_t deflen;
};

struct pat {
	char *src; /* as written, for messages */
	char *text;
	unsigned char *wild;
	size_t len;
	struct part *parts;
	size_t nparts;
	int has_vars;
	int kind; /* PK_*: how to match, fixed by where the wildcards are */
};

/* Most patterns are literals or prefixes: match those without wmatch. */
enum { PK_GEN = 0, PK_LIT, PK_PREFIX };

/*
 * memo: identical lists (and principals, conditions) across statements
 * share an id, so a request evaluates each distinct one once; -1: none.
 */
struct plist {
	struct pat *v;
	size_t n;
	int memo;
};

/* "jwt:<name>": one of the token's values for name must match one of vals. */
struct pclaim {
	char *name;
	size_t key; /* KS_PCLAIM key */
	struct plist vals;
};

struct principal {
	int any; /* "*" */
	struct pclaim *v;
	size_t n;
	int memo;
};

enum vtype { VT_STRING, VT_NUMERIC, VT_DATE, VT_BOOL, VT_IP, VT_NULL };
enum cmp { CMP_EQ, CMP_EQ_IC, CMP_LIKE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };
enum qual { Q_NONE, Q_ANY, Q_ALL };

/* A condition operator of the IAM reference that applies to hssgw. */
struct opdef {
	const char *name;
	enum vtype type;
	enum cmp cmp;
	int negated;
};

struct cidr {
	int af; /* AF_INET or AF_INET6 */
	unsigned char a[16];
	unsigned bits;
};

struct cval {
	struct pat pat;  /* VT_STRING */
	long long num;   /* VT_NUMERIC; VT_DATE in ms; VT_BOOL, VT_NULL 0/1 */
	struct cidr net; /* VT_IP */
};

/* One key under one operator: a value must match (values are ORed). */
struct cond {
	const struct opdef *op;
	enum qual qual;
	int ifexists;
	size_t key;
	char *path; /* "Condition.<operator>.<key>" for explain */
	struct cval *v;
	size_t n;
	int memo;
};

struct stmt {
	enum gw_pol_effect effect; /* GW_POL_ALLOW or GW_POL_EXPLICIT_DENY */
	const char *file;          /* borrowed from the set's file list */
	char sid[POL_SID_MAX + 1]; /* Sid, or "#<index in file>" */
	int has_sid;
	size_t index;  /* in its file's Statement list */
	char path[32]; /* "Statement[3]" or "Statement" */
	int not_principal, not_action, not_resource;
	struct principal principal;
	struct plist actions;
	struct plist resources;
	struct cond *conds;
	size_t nconds;
	int has_vars;
};

/* Where a condition key's values come from. */
enum ksrc {
	KS_CTX,
	KS_CLAIM,  /* condition keys: claim names case-insensitive */
	KS_PCLAIM, /* Principal: claim names exact, as always */
};

struct keydef {
	char *name;    /* canonical: lower case except a claim name */
	enum ksrc src; /* KS_CLAIM: name + 4 is the claim */
	int time_ms;   /* integers are ms since the epoch */
};

/* The actions hssgw knows (policy_cond.c); every Action must match one. */
#define POL_NKNOWN_ACTIONS 4
extern const char *const pol_known_actions[POL_NKNOWN_ACTIONS];

/*
 * The pre-filter (policy_index.c): one hash table slot per distinct
 * (Principal claim key, literal value), listing the statements that value
 * lets through; val borrows the pattern text, NULL marks an empty slot.
 */
struct pol_slot {
	const char *val;
	size_t len;
	size_t key;
	uint32_t hash;
	uint32_t off, n; /* the statements: stmts[off, off + n) */
	uint32_t fill, last;
};

/* Bitmaps are words uint64_t long, one bit per statement in load order. */
struct pol_index {
	size_t words;
	uint64_t *always; /* no Principal value can rule these out */
	uint64_t *act[POL_NKNOWN_ACTIONS]; /* Action can apply to action a */
	size_t actlen[POL_NKNOWN_ACTIONS]; /* strlen(pol_known_actions[a]) */
	struct pol_slot *slots;            /* nslots, a power of two */
	size_t nslots;
	uint32_t *stmts;
	size_t keys[GW_POL_KEYS_MAX]; /* the claim keys slots hold */
	size_t nkeys;
};

struct gw_pol_set {
	struct pol_index ix;
	struct stmt *st;
	size_t n, cap;
	char **files;
	size_t nfiles, capfiles;
	struct keydef keys[GW_POL_KEYS_MAX];
	size_t nkeys;
	char *sigs[POL_MEMO_MAX]; /* canonical text of each memo id */
	size_t nsigs;
	char rev[2 * 32 + 1];
};

/* Compiling one document. */
struct cc {
	struct gw_pol_set *set;
	const char *file;
	size_t first; /* set->st index of this file's first statement */
	char *err;
	size_t errlen;
};

/* Evaluating one request (policy_eval.c). */

/* A condition key's values in this request; n == 0 when missing. */
struct view {
	const char *const *v;
	size_t n;
	const char *one;
	size_t len0; /* strlen(v[0]) */
	/*
	 * The first value parsed once per request, not once per statement:
	 * state 0 not yet, 1 parsed, -1 not of the type.
	 */
	signed char st_num, st_date, st_bool, st_ip;
	long long num, date, b;
	struct cidr ip;
};

/* What explain records about one statement. */
struct trace {
	const char *el;          /* element that failed */
	const struct cond *cond; /* condition that failed, or NULL */
	const char *why;
};

/* One evaluation: the request, lazily resolved keys, an optional trace. */
struct ev {
	const struct gw_pol_set *set;
	const struct gw_pol_request *req;
	struct view *views;
	unsigned char *done;
	unsigned char *memo; /* per memo id: 0 unknown, else 1 + result */
	struct trace *tr;
	const char *why; /* set by cond_eval when it fails */
};

/* Called by pol_run() with each statement's result when explaining. */
struct explainer {
	void (*fn)(struct explainer *, struct ev *, const struct stmt *,
	           int applied);
};

/* policy_match.c: ASCII case folding and wildcard matching. */
/*
 * ASCII case folding, never the locale's.  Inline: evaluation compares
 * names on every statement, and a call per character cost 5% of it when
 * these moved out of the one policy.c.
 */
static inline int
pol_fold(int ch, int icase)
{
	if (icase && ch >= 'A' && ch <= 'Z')
		return ch - 'A' + 'a';
	return ch;
}

static inline int
pol_ieqn(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (pol_fold((unsigned char)a[i], 1) !=
		    pol_fold((unsigned char)b[i], 1))
			return 0;
	return 1;
}

/* Equal ignoring ASCII case; one walk, no strlen: most differ early. */
static inline int
pol_ieq(const char *a, const char *b)
{
	for (;; a++, b++) {
		if (pol_fold((unsigned char)*a, 1) !=
		    pol_fold((unsigned char)*b, 1))
			return 0;
		if (*a == '\0')
			return 1;
	}
}

static inline int
pol_name_eq(const char *a, const char *b, int exact)
{
	return exact ? strcmp(a, b) == 0 : pol_ieq(a, b);
}

int pol_printable(const char *s);
int pol_wmatch(const char *p, const unsigned char *w, size_t plen,
               const char *t, size_t tlen, int icase);
int pol_kmatch(int kind, const char *p, const unsigned char *w, size_t plen,
               const char *t, size_t tlen, int icase);

/* Equality of short byte runs, cheaper inline than a memcmp call. */
static inline int
pol_bytes_eq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/* policy_lookup.c: a key's request values, resolved on first use. */
struct view *pol_lookup(struct ev *e, size_t k);

/* policy_eval.c: evaluation, and the value parsers compiling shares. */
void pol_run(const struct gw_pol_set *set, const struct gw_pol_request *req,
             struct gw_pol_decision *out, struct explainer *x);
int pol_parse_ip(const char *s, struct cidr *out);
int pol_parse_date(const char *s, int time_ms, long long *ms);
int pol_parse_bool(const char *s, long long *b);

/* policy_index.c: the pre-filter, built at load. */
/* Builds set->ix over the whole set; 0, or -1 out of memory. */
int pol_index_build(struct gw_pol_set *set);
void pol_index_free(struct pol_index *ix);
/* Sets in cand (ix.words words) the statements that can apply. */
void pol_index_cands(struct ev *e, uint64_t *cand);

/* policy_compile.c */
int pol_cfail(struct cc *, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* policy_cond.c: the elements that hold values. */
int pol_el_principal(struct cc *c, struct stmt *st, struct json_object *jv,
                     const char *path);
int pol_el_not_principal(struct cc *c, struct stmt *st, struct json_object *jv,
                         const char *path);
int pol_el_action(struct cc *c, struct stmt *st, struct json_object *jv,
                  const char *path);
int pol_el_not_action(struct cc *c, struct stmt *st, struct json_object *jv,
                      const char *path);
int pol_el_resource(struct cc *c, struct stmt *st, struct json_object *jv,
                    const char *path);
int pol_el_not_resource(struct cc *c, struct stmt *st, struct json_object *jv,
                        const char *path);
int pol_el_condition(struct cc *c, struct stmt *st, struct json_object *jv,
                     const char *path);

#endif /* GW_POLICY_INT_H */
