/*
 * Policy engine: compiles IAM-shaped JSON documents into an immutable set of
 * statements (strings copied, patterns pre-split into literal text and
 * policy variables, condition values parsed into numbers, dates and
 * networks, condition keys interned; no json-c reference kept) and
 * evaluates them as a pure function: default deny, any applicable Deny
 * wins, else an applicable Allow.  Conditions, NotAction, NotResource,
 * NotPrincipal and policy variables follow AWS IAM's documented semantics.
 * It owns the compiled set and its revision (SHA-256 over the documents).
 * It must never allocate, log or do I/O while evaluating (gw_pol_explain,
 * for the CLI, is the one exception), never accept an element, operator or
 * key it does not enforce, and never let a malformed document load
 * partially.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "policy.h"

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

/* The condition operators of the IAM reference that apply to hssgw. */
static const struct opdef {
	const char *name;
	enum vtype type;
	enum cmp cmp;
	int negated;
} ops[] = {
    {"StringEquals", VT_STRING, CMP_EQ, 0},
    {"StringNotEquals", VT_STRING, CMP_EQ, 1},
    {"StringEqualsIgnoreCase", VT_STRING, CMP_EQ_IC, 0},
    {"StringNotEqualsIgnoreCase", VT_STRING, CMP_EQ_IC, 1},
    {"StringLike", VT_STRING, CMP_LIKE, 0},
    {"StringNotLike", VT_STRING, CMP_LIKE, 1},
    {"NumericEquals", VT_NUMERIC, CMP_EQ, 0},
    {"NumericNotEquals", VT_NUMERIC, CMP_EQ, 1},
    {"NumericLessThan", VT_NUMERIC, CMP_LT, 0},
    {"NumericLessThanEquals", VT_NUMERIC, CMP_LE, 0},
    {"NumericGreaterThan", VT_NUMERIC, CMP_GT, 0},
    {"NumericGreaterThanEquals", VT_NUMERIC, CMP_GE, 0},
    {"DateEquals", VT_DATE, CMP_EQ, 0},
    {"DateNotEquals", VT_DATE, CMP_EQ, 1},
    {"DateLessThan", VT_DATE, CMP_LT, 0},
    {"DateLessThanEquals", VT_DATE, CMP_LE, 0},
    {"DateGreaterThan", VT_DATE, CMP_GT, 0},
    {"DateGreaterThanEquals", VT_DATE, CMP_GE, 0},
    {"Bool", VT_BOOL, CMP_EQ, 0},
    {"IpAddress", VT_IP, CMP_EQ, 0},
    {"NotIpAddress", VT_IP, CMP_EQ, 1},
    {"Null", VT_NULL, CMP_EQ, 0},
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))

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

struct gw_pol_set {
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

/* The actions hssgw knows; every Action pattern must match one of them. */
static const char *const known_actions[] = {
    "hss:ExportImageBaseline",
    "hss:GetExportTask",
    "hss:DownloadExportFile",
    /* using a task another subject created (docs/TASKS.md) */
    "hss:ActForSubject",
};
#define NKNOWN_ACTIONS (sizeof(known_actions) / sizeof(known_actions[0]))

/*
 * The hss:<name> keys translation puts in the request context: the alias,
 * the region, the two query values and every body field of gw_tr_fields
 * (fields.c).  Kept here because modules do not call each other;
 * tests/unit/test_policy.c fails when the two drift apart.
 */
static const struct {
	const char *name;
	int time_ms;
} hss_keys[] = {
    {"project", 0},
    {"region", 0},
    {"export_size", 0},
    {"enterprise_project_id", 0},
    {"image_id_list", 0},
    {"operate_all", 0},
    {"image_type", 0},
    {"vul_type", 0},
    {"scan_status", 0},
    {"namespace", 0},
    {"image_name", 0},
    {"image_version", 0},
    {"image_id", 0},
    {"latest_version", 0},
    {"image_size", 0},
    {"start_latest_update_time", 1},
    {"end_latest_update_time", 1},
    {"start_latest_scan_time", 1},
    {"end_latest_scan_time", 1},
    {"has_malicious_file", 0},
    {"has_vul", 0},
    {"has_unsafe_setting", 0},
    {"risky", 0},
    {"severity_level", 0},
    {"instance_name", 0},
    {"instance_id", 0},
    {"cicd_name", 0},
    {"build_command_risk_level", 0},
    {"build_command_risk_name", 0},
    {"build_command_rule_id_list", 0},
    {"has_container", 0},
    {"vul_id_list", 0},
};
#define NHSS_KEYS (sizeof(hss_keys) / sizeof(hss_keys[0]))

/*
 * Keys the pipeline adds; gw:current_time is RFC 3339 UTC.  On the task
 * routes, hss:task_issuer and hss:task_subject name the task's creator
 * (from its handle), for hss:ActForSubject; not translation fields.
 */
static const char *const gw_keys[] = {"gw:client_ip", "gw:current_time",
                                      "hss:task_issuer", "hss:task_subject"};

static const char *const effect_names[GW_POL_EFFECT__MAX] = {
    [GW_POL_IMPLICIT_DENY] = "implicit_deny",
    [GW_POL_ALLOW] = "allow",
    [GW_POL_EXPLICIT_DENY] = "explicit_deny",
};
_Static_assert(sizeof(effect_names) / sizeof(effect_names[0]) ==
                   GW_POL_EFFECT__MAX,
               "one name per effect");

static const struct {
	const char *name;
	enum gw_pol_effect effect;
} effects[] = {
    {"Allow", GW_POL_ALLOW},
    {"Deny", GW_POL_EXPLICIT_DENY},
};

static int cfail(struct cc *, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records "<file>: <path>: <message>"; always returns -1. */
static int
cfail(struct cc *c, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err != NULL && c->errlen > 0)
		snprintf(c->err, c->errlen, "%s: %s: %s", c->file, path, msg);
	return -1;
}

/* ---- text helpers: ASCII case folding, never the locale's ---- */

static int
fold(int ch, int icase)
{
	if (icase && ch >= 'A' && ch <= 'Z')
		return ch - 'A' + 'a';
	return ch;
}

static int
ieqn(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (fold((unsigned char)a[i], 1) !=
		    fold((unsigned char)b[i], 1))
			return 0;
	return 1;
}

/* Equality of short byte runs, cheaper inline than a memcmp call. */
static inline int
bytes_eq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

static int
ieq(const char *a, const char *b)
{
	size_t la = strlen(a);

	return la == strlen(b) && ieqn(a, b, la);
}

static int
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* ---- wildcard matching: iterative, O(len(text) * len(pattern)) ---- */

/* Length of the UTF-8 character at t[i] (continuation bytes included). */
static size_t
char_len(const char *t, size_t tlen, size_t i)
{
	size_t j = i + 1;

	while (j < tlen && ((unsigned char)t[j] & 0xc0) == 0x80)
		j++;
	return j - i;
}

/*
 * Matches text t against pattern p whose bytes flagged in w are wildcards:
 * '*' any run of characters, '?' exactly one UTF-8 character.  The classic
 * greedy matcher that backtracks only to the last '*': no recursion, at most
 * O(tlen * plen) steps.
 */
static int
wmatch(const char *p, const unsigned char *w, size_t plen, const char *t,
       size_t tlen, int icase)
{
	size_t pi = 0, ti = 0, star = SIZE_MAX, mark = 0;

	while (ti < tlen) {
		if (pi < plen && w[pi] && p[pi] == '?') {
			ti += char_len(t, tlen, ti);
			pi++;
		} else if (pi < plen && w[pi] && p[pi] == '*') {
			star = pi++;
			mark = ti;
		} else if (pi < plen && !w[pi] &&
		           fold((unsigned char)p[pi], icase) ==
		               fold((unsigned char)t[ti], icase)) {
			pi++;
			ti++;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			mark += char_len(t, tlen, mark);
			ti = mark;
		} else {
			return 0;
		}
	}
	while (pi < plen && w[pi] && p[pi] == '*')
		pi++;
	return pi == plen;
}

static int
kmatch(int kind, const char *p, const unsigned char *w, size_t plen,
       const char *t, size_t tlen, int icase)
{
	switch (kind) {
	case PK_LIT:
		return plen == tlen &&
		       (icase ? ieqn(p, t, tlen) : bytes_eq(p, t, tlen));
	case PK_PREFIX:
		return tlen >= plen - 1 && (icase ? ieqn(p, t, plen - 1)
		                                  : bytes_eq(p, t, plen - 1));
	default:
		return wmatch(p, w, plen, t, tlen, icase);
	}
}

/* ---- evaluation ---- */

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

static int
name_eq(const char *a, const char *b, int exact)
{
	return exact ? strcmp(a, b) == 0 : ieq(a, b);
}

static void
resolve_claim(const struct gw_claims *cl, const char *name, int exact,
              struct view *vw)
{
	size_t i;

	if (cl == NULL)
		return;
	/* Condition keys are case-insensitive in IAM, claims included. */
	for (i = 0; i < cl->n; i++) {
		if (cl->v[i].name == NULL ||
		    !name_eq(cl->v[i].name, name, exact))
			continue;
		if (cl->v[i].values == NULL)
			return;
		vw->v = (const char *const *)cl->v[i].values;
		vw->n = cl->v[i].nvalues;
		return;
	}
	/* iss, sub and jti also live in their own fields. */
	if (name_eq(name, "iss", exact))
		vw->one = cl->iss;
	else if (name_eq(name, "sub", exact))
		vw->one = cl->sub;
	else if (name_eq(name, "jti", exact))
		vw->one = cl->jti;
	if (vw->one != NULL) {
		vw->v = &vw->one;
		vw->n = 1;
	}
}

static struct view *
resolve(struct ev *e, size_t k)
{
	const struct keydef *kd = &e->set->keys[k];
	struct view *vw = &e->views[k];
	size_t i;

	e->done[k] = 1;
	memset(vw, 0, sizeof(*vw));
	if (kd->src != KS_CTX) {
		resolve_claim(e->req->claims, kd->name + 4,
		              kd->src == KS_PCLAIM, vw);
		if (vw->n > 0 && vw->v[0] != NULL)
			vw->len0 = strlen(vw->v[0]);
		return vw;
	}
	for (i = 0; i < e->req->nctx; i++) {
		if (e->req->ctx[i].key == NULL ||
		    !ieq(e->req->ctx[i].key, kd->name))
			continue;
		if (e->req->ctx[i].values != NULL) {
			vw->v = e->req->ctx[i].values;
			vw->n = e->req->ctx[i].nvalues;
		}
		break;
	}
	if (vw->n > 0 && vw->v[0] != NULL)
		vw->len0 = strlen(vw->v[0]);
	return vw;
}

/* A key's values, resolved on first use and then read from the cache. */
static inline struct view *
lookup(struct ev *e, size_t k)
{
	if (e->done[k])
		return &e->views[k];
	return resolve(e, k);
}

/*
 * Substitutes a pattern's variables into buf/w (cap bytes each).  A
 * variable resolves when its key has exactly one value (IAM: multivalued
 * keys cannot be variables), else to its default; -1 when one cannot be
 * resolved or the result does not fit: the pattern then matches nothing.
 */
static int
expand(struct ev *e, const struct pat *p, char *buf, unsigned char *w,
       size_t cap, size_t *outlen)
{
	const struct part *pt = NULL;
	const struct view *vw = NULL;
	const char *s = NULL;
	size_t i, len = 0, n;

	for (i = 0; i < p->nparts; i++) {
		pt = &p->parts[i];
		if (!pt->var) {
			if (cap - len < pt->len)
				return -1;
			memcpy(buf + len, p->text + pt->off, pt->len);
			memcpy(w + len, p->wild + pt->off, pt->len);
			len += pt->len;
			continue;
		}
		vw = lookup(e, pt->key);
		if (vw->n == 1 && vw->v[0] != NULL) {
			s = vw->v[0];
			n = strlen(s);
		} else if (pt->def != NULL) {
			s = pt->def;
			n = pt->deflen;
		} else {
			return -1;
		}
		if (cap - len < n)
			return -1;
		memcpy(buf + len, s, n);
		memset(w + len, 0, n);
		len += n;
	}
	*outlen = len;
	return 0;
}

/* The value a variable part resolves to, or NULL. */
static const char *
part_value(struct ev *e, const struct part *pt, size_t *n)
{
	const struct view *vw = lookup(e, pt->key);

	if (vw->n == 1 && vw->v[0] != NULL) {
		*n = vw->len0;
		return vw->v[0];
	}
	*n = pt->deflen;
	return pt->def;
}

/*
 * Matches a PK_LIT or PK_PREFIX pattern with variables piece by piece,
 * without substituting into a buffer: 1, 0, or -1 when a variable cannot
 * be resolved or the substituted text would pass POL_EXPAND_MAX (exactly
 * when expand() fails, so both paths decide alike).  Without exact, -1 and
 * 0 may be confused (one pass, stopping at the first difference): for
 * callers to whom both mean "does not match".
 */
static int
parts_match(struct ev *e, const struct pat *p, const char *t, size_t tlen,
            int icase, int exact)
{
	const struct part *pt = NULL;
	const char *s = NULL;
	size_t i, n, pos = 0, total = 0;

	for (i = 0; exact && i < p->nparts; i++) {
		n = p->parts[i].len;
		if (p->parts[i].var && part_value(e, &p->parts[i], &n) == NULL)
			return -1;
		total += n;
	}
	if (total > POL_EXPAND_MAX)
		return -1;
	for (i = 0; i < p->nparts; i++) {
		pt = &p->parts[i];
		if (pt->var) {
			s = part_value(e, pt, &n);
			if (s == NULL)
				return -1;
		} else {
			s = p->text + pt->off;
			n = pt->len;
			if (p->kind == PK_PREFIX && i == p->nparts - 1)
				n--;
		}
		if (tlen - pos < n ||
		    !(icase ? ieqn(s, t + pos, n) : bytes_eq(s, t + pos, n)))
			return 0;
		pos += n;
	}
	if (pos + (p->kind == PK_PREFIX) > POL_EXPAND_MAX)
		return -1;
	return p->kind == PK_PREFIX || pos == tlen;
}

/*
 * Whether t matches one pattern of the list; *unresolved is set when a
 * pattern with a variable could not be resolved (it then matches nothing).
 */
static int
plist_match(struct ev *e, const struct plist *l, const char *t, int icase,
            int *unresolved)
{
	char buf[POL_EXPAND_MAX];
	unsigned char w[POL_EXPAND_MAX];
	size_t i, tlen, len;
	int r;

	if (t == NULL)
		return 0;
	tlen = strlen(t);
	for (i = 0; i < l->n; i++) {
		if (!l->v[i].has_vars) {
			if (kmatch(l->v[i].kind, l->v[i].text, l->v[i].wild,
			           l->v[i].len, t, tlen, icase))
				return 1;
			continue;
		}
		if (l->v[i].kind != PK_GEN) {
			r = parts_match(e, &l->v[i], t, tlen, icase, 1);
			if (r == 1)
				return 1;
			*unresolved |= r == -1;
			continue;
		}
		if (expand(e, &l->v[i], buf, w, sizeof(buf), &len) == -1) {
			*unresolved = 1;
			continue;
		}
		if (kmatch(l->v[i].kind, buf, w, len, t, tlen, icase))
			return 1;
	}
	return 0;
}

/*
 * Principal: whether one of the token's values for the claim matches one
 * of the listed values.  A missing claim never matches.  Claim names are
 * matched exactly here, as they always were for Principal.
 */
static int
claim_match(struct ev *e, const struct pclaim *pc)
{
	const struct view *vw = lookup(e, pc->key);
	size_t j;
	int unres = 0;

	for (j = 0; j < vw->n; j++)
		if (plist_match(e, &pc->vals, vw->v[j], 0, &unres))
			return 1;
	return 0;
}

static int
principal_match(struct ev *e, const struct principal *p)
{
	size_t i;

	if (p->any)
		return 1;
	for (i = 0; i < p->n; i++)
		if (!claim_match(e, &p->v[i]))
			return 0;
	return p->n > 0;
}

/* Parses an address; IPv4-mapped IPv6 addresses count as IPv4. */
static int
parse_ip(const char *s, struct cidr *out)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
	                                         0, 0, 0, 0, 0xff, 0xff};

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, out->a) == 1) {
		out->af = AF_INET;
		out->bits = 32;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->a) != 1)
		return -1;
	out->af = AF_INET6;
	out->bits = 128;
	if (memcmp(out->a, mapped, sizeof(mapped)) == 0) {
		memmove(out->a, out->a + 12, 4);
		memset(out->a + 4, 0, 12);
		out->af = AF_INET;
		out->bits = 32;
	}
	return 0;
}

static int
in_net(const struct cidr *addr, const struct cidr *net)
{
	unsigned full = net->bits / 8, rest = net->bits % 8;
	unsigned char mask;

	if (addr->af != net->af)
		return 0;
	if (memcmp(addr->a, net->a, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (addr->a[full] & mask) == (net->a[full] & mask);
}

static int
ms_from_secs(long long s, long long *ms)
{
	if (s > LLONG_MAX / 1000 || s < LLONG_MIN / 1000)
		return -1;
	*ms = s * 1000;
	return 0;
}

/*
 * A date: RFC 3339, or an integer: seconds since the epoch as in IAM, or
 * milliseconds for the HSS time fields (time_ms).
 */
static int
parse_date(const char *s, int time_ms, long long *ms)
{
	long long n;
	int64_t v;

	if (gw_strtonum(s, LLONG_MIN, LLONG_MAX, &n) == 0) {
		if (time_ms) {
			*ms = n;
			return 0;
		}
		return ms_from_secs(n, ms);
	}
	if (gw_rfc3339_ms(s, &v) == -1)
		return -1;
	*ms = v;
	return 0;
}

static int
parse_bool(const char *s, long long *b)
{
	if (ieq(s, "true"))
		*b = 1;
	else if (ieq(s, "false"))
		*b = 0;
	else
		return -1;
	return 0;
}

static int
cmp_num(enum cmp op, long long a, long long b)
{
	switch (op) {
	case CMP_LT:
		return a < b;
	case CMP_LE:
		return a <= b;
	case CMP_GT:
		return a > b;
	case CMP_GE:
		return a >= b;
	default:
		return a == b;
	}
}

static int
str_cmp(const struct cond *c, int kind, const char *p, const unsigned char *w,
        size_t plen, const char *t, size_t tlen)
{
	switch (c->op->cmp) {
	case CMP_EQ_IC:
		return plen == tlen && ieqn(p, t, tlen);
	case CMP_LIKE:
		return kmatch(kind, p, w, plen, t, tlen, 0);
	default:
		return plen == tlen && bytes_eq(p, t, tlen);
	}
}

/*
 * Whether one request value matches one of the condition's values, in the
 * operator's positive sense: 1 or 0, or -1 when the request value is not
 * of the operator's type, or (negated operators) a policy variable could
 * not be resolved.  Either makes the whole condition false.
 */
/*
 * Parses request value i of a key as the operator's type, caching the
 * first value in the view.  0 or -1.
 */
static int
parse_req(struct ev *e, const struct cond *c, struct view *vw, size_t i,
          long long *x, struct cidr *addr)
{
	signed char *st = NULL;
	long long *slot = NULL;
	const char *t = vw->v[i];
	int rc;

	if (t == NULL)
		return -1;
	switch (c->op->type) {
	case VT_NUMERIC:
		st = &vw->st_num;
		slot = &vw->num;
		break;
	case VT_DATE:
		st = &vw->st_date;
		slot = &vw->date;
		break;
	case VT_BOOL:
		st = &vw->st_bool;
		slot = &vw->b;
		break;
	case VT_IP:
		if (i == 0 && vw->st_ip != 0) {
			*addr = vw->ip;
			return vw->st_ip == 1 ? 0 : -1;
		}
		rc = parse_ip(t, addr);
		if (i == 0) {
			vw->ip = *addr;
			vw->st_ip = rc == 0 ? 1 : -1;
		}
		return rc;
	default:
		return -1;
	}
	if (i == 0 && *st != 0) {
		*x = *slot;
		return *st == 1 ? 0 : -1;
	}
	if (c->op->type == VT_NUMERIC)
		rc = gw_strtonum(t, LLONG_MIN, LLONG_MAX, x);
	else if (c->op->type == VT_DATE)
		rc = parse_date(t, e->set->keys[c->key].time_ms, x);
	else
		rc = parse_bool(t, x);
	if (i == 0) {
		*slot = *x;
		*st = rc == 0 ? 1 : -1;
	}
	return rc;
}

static int
value_match(struct ev *e, const struct cond *c, struct view *vw, size_t vi)
{
	const char *t = vw->v[vi];
	char buf[POL_EXPAND_MAX];
	unsigned char w[POL_EXPAND_MAX];
	const struct cval *cv = NULL;
	struct cidr addr;
	long long x;
	size_t i, tlen, len;
	int unres = 0, r;

	if (t == NULL)
		return -1;
	switch (c->op->type) {
	case VT_STRING:
		tlen = vi == 0 ? vw->len0 : strlen(t);
		for (i = 0; i < c->n; i++) {
			cv = &c->v[i];
			if (!cv->pat.has_vars) {
				if (str_cmp(c, cv->pat.kind, cv->pat.text,
				            cv->pat.wild, cv->pat.len, t, tlen))
					return 1;
				continue;
			}
			if (cv->pat.kind != PK_GEN) {
				/* Only negated operators tell -1 from 0. */
				r = parts_match(e, &cv->pat, t, tlen,
				                c->op->cmp == CMP_EQ_IC,
				                c->op->negated);
				if (r == 1)
					return 1;
				unres |= r == -1;
				continue;
			}
			if (expand(e, &cv->pat, buf, w, sizeof(buf), &len) ==
			    -1) {
				unres = 1;
				continue;
			}
			if (str_cmp(c, cv->pat.kind, buf, w, len, t, tlen))
				return 1;
		}
		if (unres) {
			e->why = "a policy variable could not be resolved";
			/* IAM: the element with the variable does not match. */
			return c->op->negated ? -1 : 0;
		}
		return 0;
	case VT_NUMERIC:
	case VT_DATE:
	case VT_BOOL:
		if (parse_req(e, c, vw, vi, &x, &addr) == -1)
			goto badtype;
		break;
	case VT_IP:
		if (parse_req(e, c, vw, vi, &x, &addr) == -1)
			goto badtype;
		for (i = 0; i < c->n; i++)
			if (in_net(&addr, &c->v[i].net))
				return 1;
		return 0;
	default:
		return -1;
	}
	for (i = 0; i < c->n; i++)
		if (cmp_num(c->op->cmp, x, c->v[i].num))
			return 1;
	return 0;
badtype:
	e->why = "a request value is not of the operator's type";
	return -1;
}

/*
 * One condition, as the IAM reference says: a missing key (or an empty
 * set) fails a plain operator and satisfies a negated one; ...IfExists is
 * satisfied by a missing key; ForAllValues holds for a missing key or an
 * empty set, ForAnyValue does not; values are ORed per request value.
 */
static int
cond_eval(struct ev *e, const struct cond *c)
{
	struct view *vw = lookup(e, c->key);
	int present = vw->n > 0, any = 0, all = 1, r, m;
	size_t i;

	if (c->op->type == VT_NULL) {
		if ((c->v[0].num != 0) == !present)
			return 1;
		e->why = present ? "the key is present" : "the key is missing";
		return 0;
	}
	if (!present) {
		if (c->ifexists || c->qual == Q_ALL)
			return 1;
		if (c->qual == Q_NONE && c->op->negated)
			return 1;
		e->why = "the key is missing";
		return 0;
	}
	for (i = 0; i < vw->n; i++) {
		r = value_match(e, c, vw, i);
		if (r == -1)
			return 0;
		m = c->op->negated ? !r : r;
		any |= m;
		all &= m;
	}
	if (c->qual == Q_ALL)
		r = all;
	else if (c->qual == Q_ANY)
		r = any;
	else
		r = c->op->negated ? all : any;
	if (!r && c->op->negated && e->why != NULL &&
	    strcmp(e->why, "no value matched") == 0)
		e->why = "a value matched an excluded value";
	return r;
}

static int
fail(struct ev *e, const char *el, const struct cond *c, const char *why)
{
	if (e->tr != NULL) {
		e->tr->el = el;
		e->tr->cond = c;
		e->tr->why = why;
	}
	return 0;
}

/* A memoised result (0 or 1, or 2 + unresolved), or -1 when unknown. */
static int
memo_get(const struct ev *e, int id)
{
	if (e->memo == NULL || id < 0 || e->memo[id] == 0)
		return -1;
	return e->memo[id] - 1;
}

static void
memo_put(struct ev *e, int id, int v)
{
	if (e->memo != NULL && id >= 0)
		e->memo[id] = (unsigned char)(v + 1);
}

static int
plist_memo(struct ev *e, const struct plist *l, const char *t, int icase,
           int *unresolved)
{
	int m = memo_get(e, l->memo);

	if (m != -1) {
		*unresolved = m >> 1;
		return m & 1;
	}
	m = plist_match(e, l, t, icase, unresolved);
	memo_put(e, l->memo, m | (*unresolved << 1));
	return m;
}

/* Elements in a fixed order: Action, Resource, Principal, Condition. */
static int
applies(struct ev *e, const struct stmt *st)
{
	int m, unres = 0;
	size_t i;

	m = plist_memo(e, &st->actions, e->req->action, 1, &unres);
	if (m == st->not_action)
		return fail(e, st->not_action ? "NotAction" : "Action", NULL,
		            st->not_action ? "the action is excluded"
		                           : "no pattern matches the action");
	unres = 0;
	m = plist_memo(e, &st->resources, e->req->resource, 0, &unres);
	if (st->not_resource && unres)
		return fail(e, "NotResource", NULL,
		            "a policy variable could not be resolved");
	if (m == st->not_resource)
		return fail(e, st->not_resource ? "NotResource" : "Resource",
		            NULL,
		            st->not_resource ? "the resource is excluded"
		            : unres ? "no pattern matches the resource (a "
		                      "policy variable could not be resolved)"
		                    : "no pattern matches the resource");
	m = memo_get(e, st->principal.memo);
	if (m == -1) {
		m = principal_match(e, &st->principal);
		memo_put(e, st->principal.memo, m);
	}
	if (m == st->not_principal)
		return fail(e, st->not_principal ? "NotPrincipal" : "Principal",
		            NULL,
		            st->not_principal ? "the caller is excluded"
		                              : "the claims do not match");
	for (i = 0; i < st->nconds; i++) {
		e->why = "no value matched";
		m = memo_get(e, st->conds[i].memo);
		if (m == -1) {
			m = cond_eval(e, &st->conds[i]);
			memo_put(e, st->conds[i].memo, m);
		}
		if (!m)
			return fail(e, "Condition", &st->conds[i], e->why);
	}
	return 1;
}

static void
ref_set(struct gw_pol_ref *r, const struct stmt *st)
{
	snprintf(r->file, sizeof(r->file), "%s", st->file);
	snprintf(r->sid, sizeof(r->sid), "%s", st->sid);
}

/* Called by run() with each statement's result when explaining. */
struct explainer {
	void (*fn)(struct explainer *, struct ev *, const struct stmt *,
	           int applied);
};

static int
request_ok(const struct gw_pol_set *set, const struct gw_pol_request *req)
{
	return set != NULL && req != NULL && req->claims != NULL &&
	       req->action != NULL && req->resource != NULL &&
	       (req->nctx == 0 || req->ctx != NULL);
}

static void
run(const struct gw_pol_set *set, const struct gw_pol_request *req,
    struct gw_pol_decision *out, struct explainer *x)
{
	struct view views[GW_POL_KEYS_MAX];
	unsigned char done[GW_POL_KEYS_MAX];
	unsigned char memo[POL_MEMO_MAX];
	size_t deny[GW_POL_DECIDING_MAX], allow[GW_POL_DECIDING_MAX];
	size_t ndeny = 0, nallow = 0, i, n;
	const size_t *pick = NULL;
	struct trace tr;
	struct ev e;
	int ok;

	memset(out, 0, sizeof(*out));
	if (!request_ok(set, req))
		return;
	memset(done, 0, set->nkeys);
	memset(&e, 0, sizeof(e));
	e.set = set;
	e.req = req;
	e.views = views;
	e.done = done;
	/* Explain records why each element failed: no shortcuts there. */
	if (x == NULL) {
		memset(memo, 0, set->nsigs);
		e.memo = memo;
	}
	for (i = 0; i < set->n; i++) {
		/* Once a Deny applied no Allow can decide: skip them. */
		if (x == NULL && ndeny > 0 && set->st[i].effect == GW_POL_ALLOW)
			continue;
		memset(&tr, 0, sizeof(tr));
		e.tr = x != NULL ? &tr : NULL;
		ok = applies(&e, &set->st[i]);
		if (x != NULL)
			x->fn(x, &e, &set->st[i], ok);
		if (!ok)
			continue;
		if (set->st[i].effect == GW_POL_EXPLICIT_DENY) {
			if (ndeny < GW_POL_DECIDING_MAX)
				deny[ndeny] = i;
			ndeny++;
		} else {
			if (nallow < GW_POL_DECIDING_MAX)
				allow[nallow] = i;
			nallow++;
		}
	}
	if (ndeny > 0) {
		out->effect = GW_POL_EXPLICIT_DENY;
		pick = deny;
		out->ndeciding_total = ndeny;
	} else if (nallow > 0) {
		out->effect = GW_POL_ALLOW;
		pick = allow;
		out->ndeciding_total = nallow;
	} else {
		return;
	}
	n = out->ndeciding_total;
	if (n > GW_POL_DECIDING_MAX)
		n = GW_POL_DECIDING_MAX;
	for (i = 0; i < n; i++)
		ref_set(&out->deciding[i], &set->st[pick[i]]);
	out->ndeciding = n;
	memcpy(out->file, out->deciding[0].file, sizeof(out->file));
	memcpy(out->sid, out->deciding[0].sid, sizeof(out->sid));
}

void
gw_pol_eval(const struct gw_pol_set *set, const struct gw_pol_request *req,
            struct gw_pol_decision *out)
{
	if (out == NULL)
		return;
	run(set, req, out, NULL);
}

const char *
gw_pol_effect_name(enum gw_pol_effect e)
{
	if ((unsigned)e >= GW_POL_EFFECT__MAX)
		return effect_names[GW_POL_IMPLICIT_DENY];
	return effect_names[e];
}

const char *
gw_pol_revision(const struct gw_pol_set *set)
{
	return set == NULL ? "" : set->rev;
}

size_t
gw_pol_count(const struct gw_pol_set *set)
{
	return set == NULL ? 0 : set->n;
}

const char *
gw_pol_hss_key(size_t i, int *is_time)
{
	if (i >= NHSS_KEYS)
		return NULL;
	if (is_time != NULL)
		*is_time = hss_keys[i].time_ms;
	return hss_keys[i].name;
}

/* ---- explain: allocates, for the CLI and tests ---- */

struct xstate {
	struct explainer base;
	struct json_object *applied, *not_applied;
	unsigned char missing[GW_POL_KEYS_MAX];
	int nomem;
};

static int
jadd(struct json_object *o, const char *k, struct json_object *v)
{
	if (v == NULL || json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static int
jstr(struct json_object *o, const char *k, const char *s)
{
	return jadd(o, k, json_object_new_string(s));
}

static int
jpush(struct json_object *a, struct json_object *v)
{
	if (v == NULL || json_object_array_add(a, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/* Marks in miss[] each key the statement reads that the request lacks. */
static void
stmt_missing(struct ev *e, const struct stmt *st, unsigned char *miss)
{
	const struct plist *lists[2] = {&st->resources, NULL};
	size_t i, j, k;

	for (i = 0; i < st->nconds; i++) {
		if (lookup(e, st->conds[i].key)->n == 0)
			miss[st->conds[i].key] = 1;
		for (j = 0; j < st->conds[i].n; j++)
			for (k = 0; k < st->conds[i].v[j].pat.nparts; k++)
				if (st->conds[i].v[j].pat.parts[k].var &&
				    lookup(e,
				           st->conds[i].v[j].pat.parts[k].key)
				            ->n == 0)
					miss[st->conds[i]
					         .v[j]
					         .pat.parts[k]
					         .key] = 1;
	}
	for (i = 0; lists[i] != NULL; i++)
		for (j = 0; j < lists[i]->n; j++)
			for (k = 0; k < lists[i]->v[j].nparts; k++)
				if (lists[i]->v[j].parts[k].var &&
				    lookup(e, lists[i]->v[j].parts[k].key)->n ==
				        0)
					miss[lists[i]->v[j].parts[k].key] = 1;
}

static void
x_stmt(struct explainer *base, struct ev *e, const struct stmt *st, int applied)
{
	struct xstate *x = (struct xstate *)base;
	struct json_object *o = NULL, *keys = NULL;
	unsigned char miss[GW_POL_KEYS_MAX];
	size_t k;

	memset(miss, 0, sizeof(miss));
	stmt_missing(e, st, miss);
	o = json_object_new_object();
	if (o == NULL || jstr(o, "file", st->file) == -1 ||
	    jstr(o, "sid", st->sid) == -1 ||
	    jstr(o, "effect", st->effect == GW_POL_ALLOW ? "Allow" : "Deny") ==
	        -1)
		goto nomem;
	if (!applied) {
		if (jstr(o, "failed",
		         e->tr->cond != NULL ? e->tr->cond->path : e->tr->el) ==
		        -1 ||
		    jstr(o, "reason", e->tr->why) == -1)
			goto nomem;
		keys = json_object_new_array();
		if (jadd(o, "missing_keys", keys) == -1)
			goto nomem;
		for (k = 0; k < e->set->nkeys; k++)
			if (miss[k] &&
			    jpush(keys, json_object_new_string(
			                    e->set->keys[k].name)) == -1)
				goto nomem;
	}
	for (k = 0; k < e->set->nkeys; k++)
		x->missing[k] |= miss[k];
	if (jpush(applied ? x->applied : x->not_applied, o) == -1) {
		o = NULL;
		goto nomem;
	}
	return;
nomem:
	json_object_put(o);
	x->nomem = 1;
}

char *
gw_pol_explain(const struct gw_pol_set *set, const struct gw_pol_request *req,
               struct gw_pol_decision *out)
{
	struct json_object *root = NULL, *dec = NULL, *keys = NULL, *r = NULL;
	struct gw_pol_decision d;
	struct xstate x;
	char *ret = NULL;
	size_t i;

	memset(&x, 0, sizeof(x));
	x.base.fn = x_stmt;
	root = json_object_new_object();
	x.applied = json_object_new_array();
	x.not_applied = json_object_new_array();
	if (root == NULL || x.applied == NULL || x.not_applied == NULL)
		goto out;
	run(set, req, &d, &x.base);
	if (out != NULL)
		*out = d;
	if (x.nomem || jstr(root, "decision", gw_pol_effect_name(d.effect)) ||
	    jstr(root, "revision", gw_pol_revision(set)) == -1 ||
	    jstr(root, "action",
	         req != NULL && req->action ? req->action : "") == -1 ||
	    jstr(root, "resource",
	         req != NULL && req->resource ? req->resource : "") == -1)
		goto out;
	dec = json_object_new_array();
	if (jadd(root, "deciding", dec) == -1)
		goto out;
	for (i = 0; i < d.ndeciding; i++) {
		r = json_object_new_object();
		if (r == NULL || jstr(r, "file", d.deciding[i].file) == -1 ||
		    jstr(r, "sid", d.deciding[i].sid) == -1 ||
		    jpush(dec, r) == -1) {
			json_object_put(r);
			goto out;
		}
	}
	if (jadd(root, "applied", x.applied) == -1) {
		x.applied = NULL;
		goto out;
	}
	x.applied = NULL;
	if (jadd(root, "not_applied", x.not_applied) == -1) {
		x.not_applied = NULL;
		goto out;
	}
	x.not_applied = NULL;
	keys = json_object_new_array();
	if (jadd(root, "missing_keys", keys) == -1)
		goto out;
	for (i = 0; set != NULL && i < set->nkeys; i++)
		if (x.missing[i] && jpush(keys, json_object_new_string(
		                                    set->keys[i].name)) == -1)
			goto out;
	ret = gw_strdup(json_object_to_json_string_ext(
	    root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	              JSON_C_TO_STRING_NOSLASHESCAPE));
out:
	json_object_put(x.applied);
	json_object_put(x.not_applied);
	json_object_put(root);
	return ret;
}

/* ---- check: warnings about statements that can never apply ---- */

static int warn(struct gw_buf *, const struct stmt *, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
warn(struct gw_buf *b, const struct stmt *st, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gw_buf_printf(b, "%s: %s (%s): warning: %s\n", st->file, st->path,
	              st->sid, msg);
	return 1;
}

/* Whether a variable-free pattern list matches every text in probes. */
static int
covers(const struct plist *l, const char *const *probes, size_t n, int icase)
{
	size_t i, j;
	int hit;

	for (i = 0; i < n; i++) {
		hit = 0;
		for (j = 0; j < l->n && !hit; j++)
			hit = !l->v[j].has_vars &&
			      wmatch(l->v[j].text, l->v[j].wild, l->v[j].len,
			             probes[i], strlen(probes[i]), icase);
		if (!hit)
			return 0;
	}
	return 1;
}

static const char *const res_probes[] = {"hss:cn-north-4:demo", "hss:a:b",
                                         "hss:ap-southeast-1:Prod_x.y-z"};
#define NRES_PROBES (sizeof(res_probes) / sizeof(res_probes[0]))

/* A plain (no qualifier, no IfExists, not negated) numeric/date bound. */
static int
plain_bound(const struct cond *c)
{
	return c->qual == Q_NONE && !c->ifexists && !c->op->negated &&
	       (c->op->type == VT_NUMERIC || c->op->type == VT_DATE);
}

/* Lower and upper bounds a plain condition puts on its key. */
static void
bounds(const struct cond *c, long long *lo, long long *hi)
{
	long long v = c->v[0].num;
	size_t i;

	/* Values are ORed: the loosest one bounds. */
	for (i = 1; i < c->n; i++)
		if ((c->op->cmp == CMP_GT || c->op->cmp == CMP_GE)
		        ? c->v[i].num < v
		        : c->v[i].num > v)
			v = c->v[i].num;
	*lo = LLONG_MIN;
	*hi = LLONG_MAX;
	switch (c->op->cmp) {
	case CMP_GT:
		*lo = v == LLONG_MAX ? v : v + 1;
		break;
	case CMP_GE:
		*lo = v;
		break;
	case CMP_LT:
		*hi = v == LLONG_MIN ? v : v - 1;
		break;
	case CMP_LE:
		*hi = v;
		break;
	default:
		if (c->n == 1) {
			*lo = v;
			*hi = v;
		}
	}
}

static size_t
check_conds(const struct gw_pol_set *set, const struct stmt *st, int64_t now_ms,
            struct gw_buf *b)
{
	const struct cond *c = NULL, *d = NULL;
	const char *kname = NULL;
	long long lo, hi, lo2, hi2;
	size_t i, j, n = 0;

	for (i = 0; i < st->nconds; i++) {
		c = &st->conds[i];
		kname = set->keys[c->key].name;
		if (plain_bound(c) && c->op->type == VT_DATE &&
		    strcmp(kname, "gw:current_time") == 0) {
			bounds(c, &lo, &hi);
			if (hi < now_ms)
				n += warn(b, st,
				          "%s: every date is in the past: the "
				          "statement no longer applies",
				          c->path);
		}
		if (c->qual == Q_ALL && !c->ifexists &&
		    st->effect == GW_POL_ALLOW)
			n += warn(b, st,
			          "%s: ForAllValues also holds when %s is "
			          "missing or empty; add a Null condition",
			          c->path, kname);
		for (j = i + 1; j < st->nconds; j++) {
			d = &st->conds[j];
			if (d->key != c->key)
				continue;
			if (c->op->type == VT_NULL && d->op->type == VT_NULL &&
			    c->v[0].num != d->v[0].num)
				n += warn(b, st,
				          "%s and %s contradict: the statement "
				          "can never apply",
				          c->path, d->path);
			if ((c->op->type == VT_NULL && c->v[0].num &&
			     d->op->type != VT_NULL && !d->ifexists &&
			     !d->op->negated && d->qual != Q_ALL) ||
			    (d->op->type == VT_NULL && d->v[0].num &&
			     c->op->type != VT_NULL && !c->ifexists &&
			     !c->op->negated && c->qual != Q_ALL))
				n += warn(
				    b, st,
				    "%s and %s contradict (the key must be "
				    "both missing and present): the "
				    "statement can never apply",
				    c->path, d->path);
			if (plain_bound(c) && plain_bound(d) &&
			    c->op->type == d->op->type) {
				bounds(c, &lo, &hi);
				bounds(d, &lo2, &hi2);
				if ((lo > lo2 ? lo : lo2) >
				    (hi < hi2 ? hi : hi2))
					n += warn(
					    b, st,
					    "%s and %s admit no value: the "
					    "statement can never apply",
					    c->path, d->path);
			}
		}
	}
	return n;
}

/* An unconditional Deny of everything for everyone. */
static int
denies_all(const struct stmt *st)
{
	return st->effect == GW_POL_EXPLICIT_DENY && st->principal.any &&
	       !st->not_principal && !st->not_action && !st->not_resource &&
	       st->nconds == 0 &&
	       covers(&st->actions, known_actions, NKNOWN_ACTIONS, 1) &&
	       covers(&st->resources, res_probes, NRES_PROBES, 0);
}

/*
 * An Allow that grants hss:ActForSubject through a wildcard or NotAction:
 * its principals may see and download other subjects' export tasks,
 * which the author may not have meant (docs/TASKS.md).
 */
static int
acts_for_by_wildcard(const struct stmt *st)
{
	static const char *const act_for[] = {"hss:ActForSubject"};
	static const char *const others[] = {"hss:ExportImageBaseline"};

	if (st->effect != GW_POL_ALLOW)
		return 0;
	if (st->not_action)
		return !covers(&st->actions, act_for, 1, 1);
	return covers(&st->actions, act_for, 1, 1) &&
	       covers(&st->actions, others, 1, 1);
}

size_t
gw_pol_check(const struct gw_pol_set *set, int64_t now_ms, struct gw_buf *b)
{
	const struct stmt *st = NULL, *all = NULL;
	size_t i, n = 0;

	if (set == NULL || b == NULL)
		return 0;
	for (i = 0; i < set->n && all == NULL; i++)
		if (denies_all(&set->st[i]))
			all = &set->st[i];
	for (i = 0; i < set->n; i++) {
		st = &set->st[i];
		if (st->not_action &&
		    covers(&st->actions, known_actions, NKNOWN_ACTIONS, 1))
			n += warn(b, st,
			          "NotAction excludes every known action: the "
			          "statement can never apply");
		if (st->not_resource &&
		    covers(&st->resources, res_probes, NRES_PROBES, 0))
			n += warn(b, st,
			          "NotResource excludes every resource: the "
			          "statement can never apply");
		if (st->not_principal && st->principal.any)
			n += warn(b, st,
			          "NotPrincipal \"*\" excludes every caller: "
			          "the statement can never apply");
		if (st->effect == GW_POL_ALLOW && all != NULL)
			n += warn(b, st,
			          "%s %s denies everything: this Allow can "
			          "never decide",
			          all->file, all->sid);
		if (acts_for_by_wildcard(st))
			n += warn(b, st,
			          "this Allow also grants hss:ActForSubject: "
			          "its principals may see and download other "
			          "subjects' export tasks; list the actions it "
			          "needs instead");
		if (st->effect == GW_POL_EXPLICIT_DENY && st->has_vars)
			n += warn(
			    b, st,
			    "a Deny with a policy variable does not apply "
			    "when the variable cannot be resolved; give it "
			    "a default (${key, 'x'}) or add a Null "
			    "condition");
		n += check_conds(set, st, now_ms, b);
	}
	return n;
}

/* ---- compiling ---- */

static void
pat_free(struct pat *p)
{
	size_t i;

	for (i = 0; i < p->nparts; i++)
		free(p->parts[i].def);
	free(p->parts);
	free(p->src);
	free(p->text);
	free(p->wild);
	memset(p, 0, sizeof(*p));
}

static void
plist_free(struct plist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		pat_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
stmt_free(struct stmt *st)
{
	size_t i, j;

	for (i = 0; i < st->principal.n; i++) {
		free(st->principal.v[i].name);
		plist_free(&st->principal.v[i].vals);
	}
	free(st->principal.v);
	plist_free(&st->actions);
	plist_free(&st->resources);
	for (i = 0; i < st->nconds; i++) {
		for (j = 0; j < st->conds[i].n; j++)
			pat_free(&st->conds[i].v[j].pat);
		free(st->conds[i].v);
		free(st->conds[i].path);
	}
	free(st->conds);
}

void
gw_pol_free(struct gw_pol_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++)
		stmt_free(&set->st[i]);
	free(set->st);
	for (i = 0; i < set->nfiles; i++)
		free(set->files[i]);
	free(set->files);
	for (i = 0; i < set->nkeys; i++)
		free(set->keys[i].name);
	for (i = 0; i < set->nsigs; i++)
		free(set->sigs[i]);
	free(set);
}

/*
 * Interns a condition key (case-insensitive, as in IAM) and returns its
 * index, or -1 with an error: unknown keys are load errors, so a typo in
 * a key never silently turns a condition off.
 */
static int
key_intern_src(struct cc *c, const char *path, const char *s, size_t len,
               int principal, size_t *out)
{
	struct gw_pol_set *set = c->set;
	char name[4 + POL_CLAIM_MAX + 1] = "";
	struct keydef kd;
	size_t i;

	memset(&kd, 0, sizeof(kd));
	if (len > 4 && ieqn(s, "jwt:", 4)) {
		if (len - 4 > POL_CLAIM_MAX || memchr(s, '\0', len) != NULL)
			return cfail(c, path, "claim name longer than %d bytes",
			             POL_CLAIM_MAX);
		memcpy(name, "jwt:", 4);
		memcpy(name + 4, s + 4, len - 4);
		name[len] = '\0';
		if (!printable(name))
			return cfail(c, path,
			             "claim name must be printable bytes");
		kd.src = principal ? KS_PCLAIM : KS_CLAIM;
	} else {
		if (len >= sizeof(name))
			goto unknown;
		for (i = 0; i < len; i++)
			name[i] = (char)fold((unsigned char)s[i], 1);
		name[len] = '\0';
		kd.src = KS_CTX;
		for (i = 0; i < sizeof(gw_keys) / sizeof(gw_keys[0]); i++)
			if (strcmp(name, gw_keys[i]) == 0)
				break;
		if (i == sizeof(gw_keys) / sizeof(gw_keys[0])) {
			if (strncmp(name, "hss:", 4) != 0)
				goto unknown;
			for (i = 0; i < NHSS_KEYS; i++)
				if (strcmp(name + 4, hss_keys[i].name) == 0)
					break;
			if (i == NHSS_KEYS)
				goto unknown;
			kd.time_ms = hss_keys[i].time_ms;
		}
	}
	for (i = 0; i < set->nkeys; i++) {
		if (set->keys[i].src == kd.src &&
		    name_eq(set->keys[i].name, name, kd.src == KS_PCLAIM)) {
			*out = i;
			return 0;
		}
	}
	if (set->nkeys == GW_POL_KEYS_MAX)
		return cfail(c, path, "more than %d distinct condition keys",
		             GW_POL_KEYS_MAX);
	kd.name = gw_strdup(name);
	if (kd.name == NULL)
		return cfail(c, path, "out of memory");
	set->keys[set->nkeys] = kd;
	*out = set->nkeys++;
	return 0;
unknown:
	return cfail(c, path,
	             "unknown condition key \"%.*s\" (known: hss:<field>, "
	             "hss:project, hss:region, hss:task_issuer, "
	             "hss:task_subject, jwt:<claim>, gw:client_ip, "
	             "gw:current_time)",
	             (int)(len > 140 ? 140 : len), s);
}

static int
key_intern(struct cc *c, const char *path, const char *s, size_t len,
           size_t *out)
{
	return key_intern_src(c, path, s, len, 0, out);
}

/* Appends a literal byte to a pattern under construction. */
static void
pat_put(struct pat *p, char ch, int wild)
{
	p->text[p->len] = ch;
	p->wild[p->len] = (unsigned char)wild;
	p->len++;
}

static int
part_add(struct cc *c, const char *path, struct pat *p, size_t cap,
         const struct part *pt)
{
	if (p->nparts == cap)
		return cfail(c, path, "too many policy variables");
	p->parts[p->nparts++] = *pt;
	return 0;
}

/* Closes the literal run that started at *runstart. */
static int
close_run(struct cc *c, const char *path, struct pat *p, size_t cap,
          size_t *runstart)
{
	struct part pt;

	if (p->len == *runstart)
		return 0;
	memset(&pt, 0, sizeof(pt));
	pt.off = *runstart;
	pt.len = p->len - *runstart;
	*runstart = p->len;
	return part_add(c, path, p, cap, &pt);
}

/*
 * Parses "${...}" at s (s[0] == '$', s[1] == '{'), up to and including its
 * '}'.  Sets *lit to the escaped character for ${*}, ${?} and ${$}, else
 * fills *pt with the variable.  Returns the length consumed, or 0 (error
 * already reported).  Syntax as IAM's: ${key} or ${key, 'default'}, spaces
 * around the key and the default ignored, '' for a quote in the default.
 */
static size_t
parse_var(struct cc *c, const char *path, const char *s, size_t len, char *lit,
          struct part *pt)
{
	size_t i = 2, ks, ke, dl = 0;
	char *def = NULL;

	*lit = '\0';
	while (i < len && s[i] == ' ')
		i++;
	if (i + 1 < len && strchr("*?$", s[i]) != NULL && s[i + 1] == '}') {
		*lit = s[i];
		return i + 2;
	}
	ks = i;
	while (i < len && s[i] != ' ' && s[i] != ',' && s[i] != '}')
		i++;
	ke = i;
	while (i < len && s[i] == ' ')
		i++;
	if (ke == ks) {
		cfail(c, path, "empty policy variable");
		return 0;
	}
	if (key_intern(c, path, s + ks, ke - ks, &pt->key) == -1)
		return 0;
	if (i < len && s[i] == ',') {
		i++;
		while (i < len && s[i] == ' ')
			i++;
		if (i >= len || s[i] != '\'') {
			cfail(c, path,
			      "a variable's default must be in single quotes");
			return 0;
		}
		def = malloc(len);
		if (def == NULL) {
			cfail(c, path, "out of memory");
			return 0;
		}
		for (i++; i < len; i++) {
			if (s[i] == '\'' && i + 1 < len && s[i + 1] == '\'') {
				def[dl++] = '\'';
				i++;
			} else if (s[i] == '\'') {
				break;
			} else {
				def[dl++] = s[i];
			}
		}
		if (i >= len) {
			free(def);
			cfail(c, path, "unterminated default in a variable");
			return 0;
		}
		def[dl] = '\0';
		for (i++; i < len && s[i] == ' '; i++)
			;
	}
	if (i >= len || s[i] != '}') {
		free(def);
		cfail(c, path,
		      "unterminated policy variable (\"${\" needs "
		      "\"}\"; write ${$} for a literal '$')");
		return 0;
	}
	pt->var = 1;
	pt->def = def;
	pt->deflen = dl;
	return i + 1;
}

/*
 * PK_LIT without wildcards; PK_PREFIX with one '*' at the very end (also
 * after substitution: the last part is literal); else PK_GEN.
 */
static int
pat_kind(const struct pat *p)
{
	size_t i, nwild = 0;

	for (i = 0; i < p->len; i++)
		nwild += p->wild[i];
	if (nwild == 0)
		return PK_LIT;
	if (nwild == 1 && p->wild[p->len - 1] && p->text[p->len - 1] == '*' &&
	    (!p->has_vars ||
	     (!p->parts[p->nparts - 1].var &&
	      p->parts[p->nparts - 1].off + p->parts[p->nparts - 1].len ==
	          p->len)))
		return PK_PREFIX;
	return PK_GEN;
}

/*
 * Compiles one pattern.  wildcards: '*' and '?' are wildcards; vars_ok:
 * ${...} is a policy variable (else "${" is an error, so nobody believes
 * a variable is substituted where it is not).
 */
static int
pat_compile(struct cc *c, const char *path, const char *s, size_t len,
            int wildcards, int vars_ok, struct pat *p)
{
	size_t i, used, runstart = 0, cap = 0;
	struct part pt;
	char lit;

	p->src = malloc(len + 1);
	p->text = malloc(len + 1);
	p->wild = malloc(len + 1);
	if (p->src == NULL || p->text == NULL || p->wild == NULL)
		return cfail(c, path, "out of memory");
	memcpy(p->src, s, len);
	p->src[len] = '\0';
	for (i = 0; i + 1 < len; i++)
		if (s[i] == '$' && s[i + 1] == '{')
			cap += 2;
	if (cap > 0) {
		if (!vars_ok)
			return cfail(c, path,
			             "policy variables are not allowed here");
		cap++;
		p->parts = calloc(cap, sizeof(*p->parts));
		if (p->parts == NULL)
			return cfail(c, path, "out of memory");
	}
	for (i = 0; i < len;) {
		if (s[i] != '$' || i + 1 >= len || s[i + 1] != '{') {
			pat_put(p, s[i], wildcards && strchr("*?", s[i]));
			i++;
			continue;
		}
		memset(&pt, 0, sizeof(pt));
		used = parse_var(c, path, s + i, len - i, &lit, &pt);
		if (used == 0)
			return -1;
		i += used;
		if (lit != '\0') {
			pat_put(p, lit, 0);
			continue;
		}
		if (close_run(c, path, p, cap, &runstart) == -1 ||
		    part_add(c, path, p, cap, &pt) == -1) {
			free(pt.def);
			return -1;
		}
		p->has_vars = 1;
	}
	if (p->has_vars && close_run(c, path, p, cap, &runstart) == -1)
		return -1;
	if (!p->has_vars) {
		/* Escapes only: no parts needed at evaluation. */
		free(p->parts);
		p->parts = NULL;
		p->nparts = 0;
	}
	p->text[p->len] = '\0';
	p->kind = pat_kind(p);
	return 0;
}

/* What a list holds; check returns a reason the item is wrong, or NULL. */
struct listkind {
	size_t maxlen;
	int scalars; /* integers and booleans allowed, compared as text */
	int wildcards;
	int vars;
	const char *(*check)(const struct pat *);
};

static const char *
check_action(const struct pat *p)
{
	size_t i;

	for (i = 0; i < p->len; i++)
		if (strchr(
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		        "0123456789:*?",
		        p->text[i]) == NULL)
			return "may hold only letters, digits, ':', '*' and "
			       "'?'";
	/* A mistyped action in a Deny would silently stop denying. */
	for (i = 0; i < NKNOWN_ACTIONS; i++)
		if (wmatch(p->text, p->wild, p->len, known_actions[i],
		           strlen(known_actions[i]), 1))
			return NULL;
	return "matches no known action (known: hss:ExportImageBaseline, "
	       "hss:GetExportTask, hss:DownloadExportFile, "
	       "hss:ActForSubject)";
}

/*
 * Resource shape.  A variable counts as one non-empty run of allowed
 * characters, so "hss:*:${jwt:team}" and "hss:r:${jwt:team}-x" check.
 */
static const char *
check_resource(const struct pat *p)
{
	char skel[POL_PATTERN_MAX * 2 + 8];
	size_t i, j, n = 0, colons = 0, partlen = 0;
	int star = 0;

	for (i = 0; i < (p->has_vars ? p->nparts : 1); i++) {
		if (p->has_vars && p->parts[i].var) {
			skel[n++] = 'v';
			continue;
		}
		for (j = p->has_vars ? p->parts[i].off : 0;
		     j <
		     (p->has_vars ? p->parts[i].off + p->parts[i].len : p->len);
		     j++) {
			if (strchr("abcdefghijklmnopqrstuvwxyz"
			           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:._-",
			           p->text[j]) == NULL &&
			    !p->wild[j])
				return "may hold only letters, digits, "
				       "\":*?._-\" and policy variables";
			star |= p->wild[j] && p->text[j] == '*';
			skel[n++] = p->text[j];
		}
	}
	skel[n] = '\0';
	if (strcmp(skel, "*") == 0)
		return NULL;
	if (strncmp(skel, "hss:", 4) != 0)
		return "must be \"*\" or start with \"hss:\"";
	if (star)
		return NULL;
	/* Without '*' it must have the shape of a real resource. */
	for (i = 0; i <= n; i++) {
		if (i < n && skel[i] != ':') {
			partlen++;
			continue;
		}
		if (partlen == 0)
			return "must be hss:<region>:<project-alias>";
		partlen = 0;
		colons += i < n;
	}
	if (colons != 2)
		return "must be hss:<region>:<project-alias>";
	return NULL;
}

static const struct listkind kind_action = {POL_PATTERN_MAX, 0, 1, 0,
                                            check_action};
static const struct listkind kind_resource = {POL_PATTERN_MAX, 0, 1, 1,
                                              check_resource};
static const struct listkind kind_value = {POL_VALUE_MAX, 1, 1, 0, NULL};

/* The text of a scalar, or NULL if its type is not allowed. */
static const char *
item_text(struct json_object *jv, int scalars, size_t *len)
{
	const char *s = NULL;

	switch (json_object_get_type(jv)) {
	case json_type_string:
		s = json_object_get_string(jv);
		*len = (size_t)json_object_get_string_len(jv);
		return s;
	case json_type_int:
	case json_type_boolean:
		if (!scalars)
			return NULL;
		/* Claims hold numbers in decimal and booleans as words. */
		s = json_object_to_json_string_ext(jv, JSON_C_TO_STRING_PLAIN);
		*len = s == NULL ? 0 : strlen(s);
		return s;
	default:
		return NULL;
	}
}

/* Common checks of a scalar item; its text in *s, *len. */
static int
scalar(struct cc *c, struct json_object *jv, const char *path, int scalars,
       size_t maxlen, const char **s, size_t *len)
{
	*len = 0;
	*s = item_text(jv, scalars, len);
	if (*s == NULL)
		return cfail(c, path, "must be a string%s",
		             scalars ? ", an integer or a boolean" : "");
	if (*len == 0)
		return cfail(c, path, "must not be empty");
	/* json-c saturates out-of-range integers instead of failing. */
	if (json_object_is_type(jv, json_type_int) &&
	    (strcmp(*s, "18446744073709551615") == 0 ||
	     strcmp(*s, "-9223372036854775808") == 0))
		return cfail(c, path, "integer out of range");
	if (*len > maxlen)
		return cfail(c, path, "longer than %zu bytes", maxlen);
	if (memchr(*s, '\0', *len) != NULL)
		return cfail(c, path, "must not contain NUL");
	return 0;
}

static int
compile_item(struct cc *c, struct json_object *jv, const char *path,
             const struct listkind *k, struct pat *p)
{
	const char *s = NULL, *why = NULL;
	size_t len = 0;

	if (scalar(c, jv, path, k->scalars, k->maxlen, &s, &len) == -1)
		return -1;
	if (pat_compile(c, path, s, len, k->wildcards, k->vars, p) == -1)
		return -1;
	if (k->check != NULL)
		why = k->check(p);
	if (why != NULL)
		return cfail(c, path, "\"%s\" %s", p->src, why);
	return 0;
}

/* Items of a string or a non-empty array; *n set, *arr the array or NULL. */
static int
list_items(struct cc *c, struct json_object *jv, const char *path, size_t *n)
{
	if (!json_object_is_type(jv, json_type_array)) {
		*n = 1;
		return 0;
	}
	*n = json_object_array_length(jv);
	if (*n == 0)
		return cfail(c, path, "must not be an empty list");
	if (*n > GW_POL_VALUES_MAX)
		return cfail(c, path, "more than %d values", GW_POL_VALUES_MAX);
	return 0;
}

static struct json_object *
list_item(struct json_object *jv, size_t i, const char *path, char *ipath,
          size_t cap)
{
	if (!json_object_is_type(jv, json_type_array)) {
		snprintf(ipath, cap, "%s", path);
		return jv;
	}
	snprintf(ipath, cap, "%s[%zu]", path, i);
	return json_object_array_get_idx(jv, i);
}

/* A string or a non-empty array of items, each compiled into a pattern. */
static int
compile_list(struct cc *c, struct json_object *jv, const char *path,
             const struct listkind *k, struct plist *out)
{
	char ipath[POL_PATH_MAX];
	size_t i, n;

	if (list_items(c, jv, path, &n) == -1)
		return -1;
	out->v = calloc(n, sizeof(*out->v));
	if (out->v == NULL)
		return cfail(c, path, "out of memory");
	for (i = 0; i < n; i++) {
		out->n = i + 1;
		if (compile_item(c,
		                 list_item(jv, i, path, ipath, sizeof(ipath)),
		                 ipath, k, &out->v[i]) == -1)
			return -1;
	}
	return 0;
}

static int
plist_has_vars(const struct plist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i].has_vars)
			return 1;
	return 0;
}

static int
el_sid(struct cc *c, struct stmt *st, struct json_object *jv, const char *path)
{
	const char *s = NULL;
	size_t len;

	if (!json_object_is_type(jv, json_type_string))
		return cfail(c, path, "must be a string");
	s = json_object_get_string(jv);
	len = (size_t)json_object_get_string_len(jv);
	if (len == 0 || len > POL_SID_MAX)
		return cfail(c, path, "must be 1 to %d characters",
		             POL_SID_MAX);
	if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	              "0123456789_.:-") != len)
		return cfail(c, path,
		             "may hold only letters, digits and \"_.:-\"");
	memcpy(st->sid, s, len);
	st->sid[len] = '\0';
	st->has_sid = 1;
	return 0;
}

static int
el_effect(struct cc *c, struct stmt *st, struct json_object *jv,
          const char *path)
{
	const char *s = NULL;
	size_t i;

	if (json_object_is_type(jv, json_type_string)) {
		s = json_object_get_string(jv);
		for (i = 0; i < sizeof(effects) / sizeof(effects[0]); i++) {
			if (strcmp(s, effects[i].name) == 0) {
				st->effect = effects[i].effect;
				return 0;
			}
		}
	}
	return cfail(c, path, "must be \"Allow\" or \"Deny\"");
}

static int
el_principal(struct cc *c, struct stmt *st, struct json_object *jv,
             const char *path)
{
	struct json_object_iterator it, end;
	struct pclaim *pc = NULL;
	const char *key = NULL;
	char kpath[POL_PATH_MAX];
	size_t n;

	if (json_object_is_type(jv, json_type_string) &&
	    strcmp(json_object_get_string(jv), "*") == 0) {
		st->principal.any = 1;
		return 0;
	}
	if (!json_object_is_type(jv, json_type_object))
		return cfail(
		    c, path,
		    "must be \"*\" or an object of \"jwt:<claim>\" keys");
	n = (size_t)json_object_object_length(jv);
	if (n == 0)
		return cfail(c, path, "must name at least one claim");
	if (n > POL_PCLAIMS_MAX)
		return cfail(c, path, "more than %d claims", POL_PCLAIMS_MAX);
	st->principal.v = calloc(n, sizeof(*st->principal.v));
	if (st->principal.v == NULL)
		return cfail(c, path, "out of memory");
	it = json_object_iter_begin(jv);
	end = json_object_iter_end(jv);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		key = json_object_iter_peek_name(&it);
		snprintf(kpath, sizeof(kpath), "%s.%s", path, key);
		if (strncmp(key, "jwt:", 4) != 0 || key[4] == '\0')
			return cfail(c, kpath, "keys must be \"jwt:<claim>\"");
		if (strlen(key + 4) > POL_CLAIM_MAX || !printable(key + 4))
			return cfail(
			    c, kpath,
			    "claim name must be 1 to %d printable bytes",
			    POL_CLAIM_MAX);
		pc = &st->principal.v[st->principal.n++];
		pc->name = gw_strdup(key + 4);
		if (pc->name == NULL)
			return cfail(c, kpath, "out of memory");
		if (key_intern_src(c, kpath, key, strlen(key), 1, &pc->key) ==
		    -1)
			return -1;
		if (compile_list(c, json_object_iter_peek_value(&it), kpath,
		                 &kind_value, &pc->vals) == -1)
			return -1;
	}
	return 0;
}

static int
el_not_principal(struct cc *c, struct stmt *st, struct json_object *jv,
                 const char *path)
{
	st->not_principal = 1;
	return el_principal(c, st, jv, path);
}

static int
el_action(struct cc *c, struct stmt *st, struct json_object *jv,
          const char *path)
{
	return compile_list(c, jv, path, &kind_action, &st->actions);
}

static int
el_not_action(struct cc *c, struct stmt *st, struct json_object *jv,
              const char *path)
{
	st->not_action = 1;
	return el_action(c, st, jv, path);
}

static int
el_resource(struct cc *c, struct stmt *st, struct json_object *jv,
            const char *path)
{
	if (compile_list(c, jv, path, &kind_resource, &st->resources) == -1)
		return -1;
	st->has_vars |= plist_has_vars(&st->resources);
	return 0;
}

static int
el_not_resource(struct cc *c, struct stmt *st, struct json_object *jv,
                const char *path)
{
	st->not_resource = 1;
	return el_resource(c, st, jv, path);
}

/*
 * Splits "ForAnyValue:StringLikeIfExists" into its qualifier, operator and
 * IfExists suffix.  NULL for an unknown operator.
 */
static const struct opdef *
parse_op(const char *s, enum qual *q, int *ifexists)
{
	static const char sfx[] = "IfExists";
	size_t i, len;

	*q = Q_NONE;
	*ifexists = 0;
	if (strncmp(s, "ForAnyValue:", 12) == 0) {
		*q = Q_ANY;
		s += 12;
	} else if (strncmp(s, "ForAllValues:", 13) == 0) {
		*q = Q_ALL;
		s += 13;
	}
	len = strlen(s);
	if (len > sizeof(sfx) - 1 &&
	    strcmp(s + len - (sizeof(sfx) - 1), sfx) == 0) {
		*ifexists = 1;
		len -= sizeof(sfx) - 1;
	}
	for (i = 0; i < NOPS; i++)
		if (strlen(ops[i].name) == len &&
		    strncmp(ops[i].name, s, len) == 0)
			return &ops[i];
	return NULL;
}

/*
 * "a.b.c.d/n", "x::y/n" or a bare address.  Host bits set under the prefix
 * are an error: "10.0.0.1/8" is more likely a typo than a network.
 */
static int
compile_cidr(struct cc *c, const char *path, const char *s, struct cval *cv)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	long long bits;
	size_t alen;
	struct cidr net;
	unsigned i;

	alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		return cfail(c, path, "\"%s\" is not a CIDR", s);
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	/* A mapped IPv6 network would silently become an IPv4 one. */
	if (parse_ip(addr, &net) == -1 ||
	    (net.af == AF_INET && strchr(addr, ':') != NULL))
		return cfail(c, path, "\"%s\" is not a CIDR", s);
	if (slash != NULL) {
		if (gw_strtonum(slash + 1, 0, net.bits, &bits) == -1 ||
		    slash[1] == '-' || (slash[1] == '0' && slash[2] != '\0'))
			return cfail(c, path,
			             "\"%s\": prefix length must be 0 to %u", s,
			             net.bits);
		net.bits = (unsigned)bits;
	}
	for (i = net.bits; i < (net.af == AF_INET ? 32u : 128u); i++)
		if (net.a[i / 8] & (0x80 >> (i % 8)))
			return cfail(
			    c, path,
			    "\"%s\" has host bits set under the prefix", s);
	cv->net = net;
	return 0;
}

/* One condition value, parsed as its operator's type. */
static int
compile_cval(struct cc *c, struct json_object *jv, const char *path,
             const struct cond *cd, struct cval *cv)
{
	const char *s = NULL;
	size_t len = 0;

	if (scalar(c, jv, path, 1, POL_VALUE_MAX, &s, &len) == -1)
		return -1;
	switch (cd->op->type) {
	case VT_STRING:
		return pat_compile(c, path, s, len, cd->op->cmp == CMP_LIKE, 1,
		                   &cv->pat);
	case VT_NUMERIC:
		if (json_object_is_type(jv, json_type_boolean) ||
		    gw_strtonum(s, LLONG_MIN + 1, LLONG_MAX - 1, &cv->num) ==
		        -1)
			return cfail(c, path, "\"%s\" is not an integer", s);
		return 0;
	case VT_DATE:
		if (json_object_is_type(jv, json_type_boolean) ||
		    parse_date(s, 0, &cv->num) == -1)
			return cfail(c, path,
			             "\"%s\" is not an RFC 3339 date-time or "
			             "epoch seconds",
			             s);
		return 0;
	case VT_BOOL:
	case VT_NULL:
		if (parse_bool(s, &cv->num) == -1)
			return cfail(c, path, "must be true or false");
		return 0;
	case VT_IP:
		return compile_cidr(c, path, s, cv);
	}
	return cfail(c, path, "unknown operator type");
}

/*
 * "Condition": {"<operator>": {"<key>": value or [values]}}.  Operators
 * are ANDed, keys under one operator are ANDed, values are ORed.
 */
static int
el_condition(struct cc *c, struct stmt *st, struct json_object *jv,
             const char *path)
{
	struct json_object_iterator it, end, kit, kend;
	struct json_object *keys = NULL, *vals = NULL;
	const struct opdef *op = NULL;
	const char *opname = NULL, *key = NULL;
	char opath[POL_PATH_MAX], kpath[POL_PATH_MAX + 64];
	char vpath[POL_PATH_MAX + 96];
	struct cond *cd = NULL;
	size_t total = 0, i, n;
	enum qual q;
	int ifx;

	if (!json_object_is_type(jv, json_type_object) ||
	    json_object_object_length(jv) == 0)
		return cfail(c, path,
		             "must be a non-empty object of operators");
	it = json_object_iter_begin(jv);
	end = json_object_iter_end(jv);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		keys = json_object_iter_peek_value(&it);
		if (json_object_is_type(keys, json_type_object))
			total += (size_t)json_object_object_length(keys);
	}
	if (total > POL_CONDS_MAX)
		return cfail(c, path, "more than %d conditions", POL_CONDS_MAX);
	st->conds = calloc(total ? total : 1, sizeof(*st->conds));
	if (st->conds == NULL)
		return cfail(c, path, "out of memory");
	it = json_object_iter_begin(jv);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		opname = json_object_iter_peek_name(&it);
		keys = json_object_iter_peek_value(&it);
		snprintf(opath, sizeof(opath), "%s.%s", path, opname);
		op = parse_op(opname, &q, &ifx);
		if (op == NULL)
			return cfail(c, opath, "unknown condition operator");
		if (op->type == VT_NULL && (q != Q_NONE || ifx))
			return cfail(c, opath,
			             "Null takes no set qualifier and no "
			             "IfExists");
		if (!json_object_is_type(keys, json_type_object) ||
		    json_object_object_length(keys) == 0)
			return cfail(c, opath,
			             "must be a non-empty object of condition "
			             "keys");
		kit = json_object_iter_begin(keys);
		kend = json_object_iter_end(keys);
		for (; !json_object_iter_equal(&kit, &kend);
		     json_object_iter_next(&kit)) {
			key = json_object_iter_peek_name(&kit);
			vals = json_object_iter_peek_value(&kit);
			snprintf(kpath, sizeof(kpath), "%s.%s", opath, key);
			cd = &st->conds[st->nconds++];
			cd->op = op;
			cd->qual = q;
			cd->ifexists = ifx;
			cd->path = gw_strdup(kpath + strlen(path) -
			                     strlen("Condition"));
			if (cd->path == NULL)
				return cfail(c, kpath, "out of memory");
			if (key_intern(c, kpath, key, strlen(key), &cd->key) ==
			    -1)
				return -1;
			if (list_items(c, vals, kpath, &n) == -1)
				return -1;
			if (op->type == VT_NULL && n != 1)
				return cfail(c, kpath,
				             "Null takes exactly one value");
			cd->v = calloc(n, sizeof(*cd->v));
			if (cd->v == NULL)
				return cfail(c, kpath, "out of memory");
			for (i = 0; i < n; i++) {
				cd->n = i + 1;
				if (compile_cval(c,
				                 list_item(vals, i, kpath,
				                           vpath,
				                           sizeof(vpath)),
				                 vpath, cd, &cd->v[i]) == -1)
					return -1;
				st->has_vars |= cd->v[i].pat.has_vars;
			}
		}
	}
	return 0;
}

/* The memo id of a canonical text; -1 when the table is full. */
static int
memo_id(struct gw_pol_set *set, struct gw_buf *sig)
{
	size_t i;

	if (sig->overflow || sig->p == NULL)
		return -1;
	for (i = 0; i < set->nsigs; i++)
		if (strcmp(set->sigs[i], sig->p) == 0)
			return (int)i;
	if (set->nsigs == POL_MEMO_MAX)
		return -1;
	set->sigs[set->nsigs] = gw_strdup(sig->p);
	if (set->sigs[set->nsigs] == NULL)
		return -1;
	return (int)set->nsigs++;
}

static void
sig_plist(struct gw_buf *b, const struct plist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		gw_buf_puts(b, l->v[i].src);
		gw_buf_add(b, "\x1f", 1);
	}
}

static int
plist_memo_id(struct gw_pol_set *set, const char *tag, const struct plist *l)
{
	struct gw_buf b;
	int id;

	gw_buf_init(&b, 1 << 20);
	gw_buf_puts(&b, tag);
	sig_plist(&b, l);
	id = memo_id(set, &b);
	gw_buf_reset(&b);
	return id;
}

/*
 * Gives the statement's elements their memo ids.  The canonical text
 * holds everything a result depends on (key indices, operator with its
 * qualifier and suffix, values as written), so equal texts evaluate
 * equally for any one request.
 */
static void
stmt_memo(struct gw_pol_set *set, struct stmt *st)
{
	struct gw_buf b;
	size_t i, j, k;

	st->actions.memo = plist_memo_id(set, "A\x1e", &st->actions);
	st->resources.memo = plist_memo_id(set, "R\x1e", &st->resources);
	gw_buf_init(&b, 1 << 20);
	gw_buf_puts(&b, st->principal.any ? "P*" : "P\x1e");
	for (i = 0; i < st->principal.n; i++) {
		gw_buf_puts(&b, st->principal.v[i].name);
		gw_buf_add(&b, "\x1e", 1);
		sig_plist(&b, &st->principal.v[i].vals);
	}
	st->principal.memo = memo_id(set, &b);
	gw_buf_reset(&b);
	for (i = 0; i < st->nconds; i++) {
		gw_buf_init(&b, 1 << 20);
		gw_buf_printf(&b, "C\x1e%s\x1e%d\x1e%d\x1e%zu\x1e",
		              st->conds[i].op->name, (int)st->conds[i].qual,
		              st->conds[i].ifexists, st->conds[i].key);
		for (j = 0; j < st->conds[i].n; j++) {
			gw_buf_puts(&b, st->conds[i].v[j].pat.src != NULL
			                    ? st->conds[i].v[j].pat.src
			                    : "");
			gw_buf_printf(&b, "\x1f%lld\x1f",
			              st->conds[i].v[j].num);
			for (k = 0; k < sizeof(st->conds[i].v[j].net.a); k++)
				gw_buf_printf(&b, "%02x",
				              st->conds[i].v[j].net.a[k]);
			gw_buf_printf(&b, "/%d/%u\x1f",
			              st->conds[i].v[j].net.af,
			              st->conds[i].v[j].net.bits);
		}
		st->conds[i].memo = memo_id(set, &b);
		gw_buf_reset(&b);
	}
}

/*
 * Statement elements.  Of each group (Principal/NotPrincipal, ...)
 * exactly one must appear.
 */
enum group { G_NONE, G_PRINCIPAL, G_ACTION, G_RESOURCE, G__MAX };

static const struct {
	const char *name;
	int required;
	enum group group;
	int (*fn)(struct cc *, struct stmt *, struct json_object *,
	          const char *);
} stmt_elems[] = {
    {"Sid", 0, G_NONE, el_sid},
    {"Effect", 1, G_NONE, el_effect},
    {"Principal", 0, G_PRINCIPAL, el_principal},
    {"NotPrincipal", 0, G_PRINCIPAL, el_not_principal},
    {"Action", 0, G_ACTION, el_action},
    {"NotAction", 0, G_ACTION, el_not_action},
    {"Resource", 0, G_RESOURCE, el_resource},
    {"NotResource", 0, G_RESOURCE, el_not_resource},
    {"Condition", 0, G_NONE, el_condition},
};
#define NSTMT_ELEMS (sizeof(stmt_elems) / sizeof(stmt_elems[0]))
_Static_assert(NSTMT_ELEMS <= 32, "seen mask is 32 bits");

static const char *const group_names[G__MAX] = {
    [G_NONE] = "",
    [G_PRINCIPAL] = "\"Principal\" or \"NotPrincipal\"",
    [G_ACTION] = "\"Action\" or \"NotAction\"",
    [G_RESOURCE] = "\"Resource\" or \"NotResource\"",
};

static int
compile_stmt(struct cc *c, struct json_object *jv, const char *path,
             size_t index)
{
	struct json_object_iterator it, end;
	struct stmt *st = NULL, *grown = NULL;
	const char *key = NULL;
	char epath[POL_PATH_MAX];
	uint32_t seen = 0;
	unsigned groups[G__MAX] = {0};
	size_t i, ncap;

	if (!json_object_is_type(jv, json_type_object))
		return cfail(c, path, "must be an object");
	if (c->set->n >= GW_POL_STATEMENTS_MAX)
		return cfail(c, path, "more than %d statements in the set",
		             GW_POL_STATEMENTS_MAX);
	if (c->set->n == c->set->cap) {
		ncap = c->set->cap == 0 ? 16 : c->set->cap * 2;
		grown = realloc(c->set->st, ncap * sizeof(*grown));
		if (grown == NULL)
			return cfail(c, path, "out of memory");
		c->set->st = grown;
		c->set->cap = ncap;
	}
	st = &c->set->st[c->set->n++];
	memset(st, 0, sizeof(*st));
	st->file = c->file;
	st->index = index;
	snprintf(st->sid, sizeof(st->sid), "#%zu", index);
	snprintf(st->path, sizeof(st->path), "%s", path);
	it = json_object_iter_begin(jv);
	end = json_object_iter_end(jv);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		key = json_object_iter_peek_name(&it);
		snprintf(epath, sizeof(epath), "%s.%s", path, key);
		for (i = 0; i < NSTMT_ELEMS; i++)
			if (strcmp(key, stmt_elems[i].name) == 0)
				break;
		if (i == NSTMT_ELEMS)
			return cfail(c, epath, "unknown element");
		if (stmt_elems[i].group != G_NONE &&
		    groups[stmt_elems[i].group]++ > 0)
			return cfail(c, epath, "only one of %s may appear",
			             group_names[stmt_elems[i].group]);
		seen |= UINT32_C(1) << i;
		if (stmt_elems[i].fn(c, st, json_object_iter_peek_value(&it),
		                     epath) == -1)
			return -1;
	}
	for (i = 0; i < NSTMT_ELEMS; i++)
		if (stmt_elems[i].required && !(seen & (UINT32_C(1) << i)))
			return cfail(c, path, "missing \"%s\"",
			             stmt_elems[i].name);
	for (i = G_NONE + 1; i < G__MAX; i++)
		if (groups[i] == 0)
			return cfail(c, path, "missing %s", group_names[i]);
	stmt_memo(c->set, st);
	return 0;
}

static int
doc_version(struct cc *c, struct json_object *jv, const char *path)
{
	if (!json_object_is_type(jv, json_type_string) ||
	    strcmp(json_object_get_string(jv), POL_VERSION) != 0)
		return cfail(c, path, "must be \"" POL_VERSION "\"");
	return 0;
}

static int
doc_statement(struct cc *c, struct json_object *jv, const char *path)
{
	char spath[64];
	size_t i, n;

	if (!json_object_is_type(jv, json_type_array))
		return compile_stmt(c, jv, path, 0);
	n = json_object_array_length(jv);
	if (n == 0)
		return cfail(c, path, "must hold at least one statement");
	for (i = 0; i < n; i++) {
		snprintf(spath, sizeof(spath), "%s[%zu]", path, i);
		if (compile_stmt(c, json_object_array_get_idx(jv, i), spath,
		                 i) == -1)
			return -1;
	}
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct cc *, struct json_object *, const char *);
} doc_elems[] = {
    {"Version", doc_version},
    {"Statement", doc_statement},
};
#define NDOC_ELEMS (sizeof(doc_elems) / sizeof(doc_elems[0]))

static int
sid_cmp(const void *a, const void *b)
{
	const struct stmt *x = *(const struct stmt *const *)a;
	const struct stmt *y = *(const struct stmt *const *)b;
	int r;

	r = strcmp(x->sid, y->sid);
	if (r != 0)
		return r;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Sids name the deciding statement in audit: unique within a file. */
static int
check_sids(struct cc *c)
{
	const struct stmt **v = NULL;
	char path[64];
	size_t i, n = 0;
	int rc = -1;

	v = calloc(c->set->n - c->first + 1, sizeof(const struct stmt *));
	if (v == NULL)
		return cfail(c, "Statement", "out of memory");
	for (i = c->first; i < c->set->n; i++)
		if (c->set->st[i].has_sid)
			v[n++] = &c->set->st[i];
	qsort(v, n, sizeof(const struct stmt *), sid_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(v[i - 1]->sid, v[i]->sid) != 0)
			continue;
		snprintf(path, sizeof(path), "Statement[%zu].Sid", v[i]->index);
		cfail(c, path, "duplicate Sid \"%s\" (also Statement[%zu])",
		      v[i]->sid, v[i - 1]->index);
		goto out;
	}
	rc = 0;
out:
	free(v);
	return rc;
}

/*
 * json-c keeps the last of repeated keys, so {"Effect":"Deny",
 * "Effect":"Allow"} would load as an Allow.  Every member of every object
 * has exactly one ':' outside strings; if json-c kept fewer members than
 * the text has, a key was repeated.
 */
static size_t
raw_members(const char *s, size_t len)
{
	size_t i, n = 0;
	int instr = 0;

	for (i = 0; i < len; i++) {
		if (instr && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			instr = !instr;
		else if (!instr && s[i] == ':')
			n++;
	}
	return n;
}

static size_t
parsed_members(struct json_object *jv)
{
	struct json_object_iterator it, end;
	size_t i, n = 0;

	switch (json_object_get_type(jv)) {
	case json_type_object:
		it = json_object_iter_begin(jv);
		end = json_object_iter_end(jv);
		for (; !json_object_iter_equal(&it, &end);
		     json_object_iter_next(&it))
			n += 1 +
			     parsed_members(json_object_iter_peek_value(&it));
		return n;
	case json_type_array:
		for (i = 0; i < json_object_array_length(jv); i++)
			n += parsed_members(json_object_array_get_idx(jv, i));
		return n;
	default:
		return 0;
	}
}

static struct json_object *
parse_json(struct cc *c, const char *buf, size_t len)
{
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL;
	enum json_tokener_error jerr;
	size_t i;

	tok = json_tokener_new_ex(POL_DEPTH);
	if (tok == NULL) {
		cfail(c, "(document)", "out of memory");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	                                JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue) {
		cfail(c, "(document)", "invalid JSON: truncated");
		goto out;
	}
	if (jerr != json_tokener_success || root == NULL) {
		cfail(c, "(document)", "invalid JSON at byte %zu: %s",
		      json_tokener_get_parse_end(tok),
		      json_tokener_error_desc(jerr));
		goto out;
	}
	for (i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (strchr(" \t\r\n", buf[i]) == NULL) {
			cfail(c, "(document)",
			      "invalid JSON: trailing data at byte %zu", i);
			goto out;
		}
	}
	if (parsed_members(root) != raw_members(buf, len)) {
		cfail(c, "(document)", "an object repeats a key");
		goto out;
	}
	json_tokener_free(tok);
	return root;
out:
	json_object_put(root);
	json_tokener_free(tok);
	return NULL;
}

static int
compile_doc(struct cc *c, const char *buf, size_t len)
{
	struct json_object_iterator it, end;
	struct json_object *root = NULL;
	const char *key = NULL;
	uint32_t seen = 0;
	size_t i;
	int rc = -1;

	if (len > GW_POL_FILE_MAX) {
		cfail(c, "(document)", "larger than %zu bytes",
		      GW_POL_FILE_MAX);
		goto out;
	}
	if (memchr(buf, '\0', len) != NULL) {
		cfail(c, "(document)", "contains a NUL byte");
		goto out;
	}
	root = parse_json(c, buf, len);
	if (root == NULL)
		goto out;
	if (!json_object_is_type(root, json_type_object)) {
		cfail(c, "(document)", "must be a JSON object");
		goto out;
	}
	c->first = c->set->n;
	it = json_object_iter_begin(root);
	end = json_object_iter_end(root);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		key = json_object_iter_peek_name(&it);
		for (i = 0; i < NDOC_ELEMS; i++)
			if (strcmp(key, doc_elems[i].name) == 0)
				break;
		if (i == NDOC_ELEMS) {
			cfail(c, key, "unknown element");
			goto out;
		}
		seen |= UINT32_C(1) << i;
		if (doc_elems[i].fn(c, json_object_iter_peek_value(&it), key) ==
		    -1)
			goto out;
	}
	/* Every document element is required. */
	for (i = 0; i < NDOC_ELEMS; i++) {
		if (!(seen & (UINT32_C(1) << i))) {
			cfail(c, doc_elems[i].name, "missing");
			goto out;
		}
	}
	if (check_sids(c) == -1)
		goto out;
	rc = 0;
out:
	json_object_put(root);
	return rc;
}

/* Takes a copy of name into the set's file list; NULL on failure. */
static const char *
add_file(struct gw_pol_set *set, const char *name)
{
	char **grown = NULL;
	size_t ncap;

	if (set->nfiles == set->capfiles) {
		ncap = set->capfiles == 0 ? 8 : set->capfiles * 2;
		grown = realloc(set->files, ncap * sizeof(*grown));
		if (grown == NULL)
			return NULL;
		set->files = grown;
		set->capfiles = ncap;
	}
	set->files[set->nfiles] = gw_strdup(name);
	if (set->files[set->nfiles] == NULL)
		return NULL;
	return set->files[set->nfiles++];
}

/*
 * The revision hashes, per document in load order: the name, a NUL, the
 * length as 8 big-endian bytes, then the bytes; so no two different
 * document lists hash the same input.
 */
static int
hash_doc(EVP_MD_CTX *md, const char *name, const char *buf, size_t len)
{
	unsigned char be[8];
	size_t i;

	for (i = 0; i < 8; i++)
		be[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	if (EVP_DigestUpdate(md, name, strlen(name) + 1) != 1 ||
	    EVP_DigestUpdate(md, be, sizeof(be)) != 1 ||
	    EVP_DigestUpdate(md, buf, len) != 1)
		return -1;
	return 0;
}

static int
add_doc(struct gw_pol_set *set, EVP_MD_CTX *md, const char *name,
        const char *buf, size_t len, char *err, size_t errlen)
{
	struct cc c = {0};

	c.set = set;
	c.file = name;
	c.err = err;
	c.errlen = errlen;
	if (name == NULL || *name == '\0' || strlen(name) > POL_NAME_MAX ||
	    strchr(name, '/') != NULL || !printable(name)) {
		snprintf(err, errlen,
		         "policy name must be 1 to %d printable "
		         "bytes without '/'",
		         POL_NAME_MAX);
		return -1;
	}
	c.file = add_file(set, name);
	if (c.file == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	if (hash_doc(md, name, buf, len) == -1) {
		snprintf(err, errlen, "%s: cannot hash", name);
		return -1;
	}
	return compile_doc(&c, buf, len);
}

static int
finish(struct gw_pol_set *set, EVP_MD_CTX *md, char *err, size_t errlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	size_t i;

	if (EVP_DigestFinal_ex(md, d, &dlen) != 1 || dlen != 32) {
		snprintf(err, errlen, "cannot compute the policy revision");
		return -1;
	}
	for (i = 0; i < dlen; i++) {
		set->rev[2 * i] = hex[d[i] >> 4];
		set->rev[2 * i + 1] = hex[d[i] & 0xf];
	}
	set->rev[sizeof(set->rev) - 1] = '\0';
	return 0;
}

static struct gw_pol_set *
set_new(EVP_MD_CTX **md, char *err, size_t errlen)
{
	struct gw_pol_set *set = NULL;

	set = calloc(1, sizeof(*set));
	*md = EVP_MD_CTX_new();
	if (set == NULL || *md == NULL ||
	    EVP_DigestInit_ex(*md, EVP_sha256(), NULL) != 1) {
		snprintf(err, errlen, "out of memory");
		free(set);
		EVP_MD_CTX_free(*md);
		*md = NULL;
		return NULL;
	}
	return set;
}

struct gw_pol_set *
gw_pol_load_buf(const char *name, const char *json, size_t len, char *err,
                size_t errlen)
{
	struct gw_pol_set *set = NULL, *ret = NULL;
	EVP_MD_CTX *md = NULL;

	set = set_new(&md, err, errlen);
	if (set == NULL)
		goto out;
	if (json == NULL && len > 0) {
		snprintf(err, errlen, "%s: no document", name ? name : "");
		goto out;
	}
	if (add_doc(set, md, name, json ? json : "", len, err, errlen) == -1)
		goto out;
	if (finish(set, md, err, errlen) == -1)
		goto out;
	ret = set;
	set = NULL;
out:
	gw_pol_free(set);
	EVP_MD_CTX_free(md);
	return ret;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the *.json entries of dir, sorted bytewise; dotfiles skipped. */
static int
list_dir(const char *dir, char ***names, size_t *n, char *err, size_t errlen)
{
	struct dirent *de = NULL;
	char **v = NULL, **grown = NULL;
	size_t len, nv = 0, cap = 0, i;
	DIR *d = NULL;
	int rc = -1;

	d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto out;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (de == NULL)
			break;
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= 5 ||
		    strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		if (nv == POL_FILES_MAX) {
			snprintf(err, errlen, "%s: more than %d policy files",
			         dir, POL_FILES_MAX);
			goto out;
		}
		if (nv == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			grown = realloc(v, cap * sizeof(*v));
			if (grown == NULL)
				goto nomem;
			v = grown;
		}
		v[nv] = gw_strdup(de->d_name);
		if (v[nv] == NULL)
			goto nomem;
		nv++;
	}
	if (errno != 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (nv > 0)
		qsort(v, nv, sizeof(*v), name_cmp);
	*names = v;
	*n = nv;
	v = NULL;
	nv = 0;
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "%s: out of memory", dir);
out:
	for (i = 0; i < nv; i++)
		free(v[i]);
	free(v);
	if (d != NULL)
		closedir(d);
	return rc;
}

struct gw_pol_set *
gw_pol_load_dir(const char *dir, char *err, size_t errlen)
{
	struct gw_pol_set *set = NULL, *ret = NULL;
	EVP_MD_CTX *md = NULL;
	char **names = NULL, *buf = NULL, path[PATH_MAX];
	struct stat sb;
	size_t i, n = 0, len = 0;
	int w;

	if (dir == NULL) {
		snprintf(err, errlen, "no policy directory");
		goto out;
	}
	set = set_new(&md, err, errlen);
	if (set == NULL)
		goto out;
	if (list_dir(dir, &names, &n, err, errlen) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (w < 0 || (size_t)w >= sizeof(path)) {
			snprintf(err, errlen, "%s: path too long", names[i]);
			goto out;
		}
		/*
		 * A *.json that is not a regular file is an error, not
		 * skipped: skipping a symlinked Deny would quietly allow.
		 */
		if (lstat(path, &sb) == -1 || !S_ISREG(sb.st_mode)) {
			snprintf(err, errlen,
			         "%s: not a regular file (symlinks and "
			         "directories are refused)",
			         names[i]);
			goto out;
		}
		if (gw_read_file(path, GW_POL_FILE_MAX, 0, &buf, &len, err,
		                 errlen) == -1)
			goto out;
		if (add_doc(set, md, names[i], buf, len, err, errlen) == -1)
			goto out;
		free(buf);
		buf = NULL;
	}
	if (finish(set, md, err, errlen) == -1)
		goto out;
	ret = set;
	set = NULL;
out:
	free(buf);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	gw_pol_free(set);
	EVP_MD_CTX_free(md);
	return ret;
}

int
gw_pol_ctx_build(struct gw_pol_ctx *c, const struct gw_kv *ctx, size_t n,
                 int64_t now_ms, const char *client_ip)
{
	if (n > GW_POL_CTX_MAX - 2)
		return -1;
	if (n > 0)
		memcpy(c->kv, ctx, n * sizeof(*ctx));
	c->n = n;
	gw_fmt_time_ms(now_ms, c->now, sizeof(c->now));
	c->nowv[0] = c->now;
	c->kv[c->n++] = (struct gw_kv){"gw:current_time", c->nowv, 1};
	if (client_ip != NULL) {
		c->ipv[0] = client_ip;
		c->kv[c->n++] = (struct gw_kv){"gw:client_ip", c->ipv, 1};
	}
	return 0;
}
