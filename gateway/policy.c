/*
 * Policy engine: compiles IAM-shaped JSON documents into an immutable set of
 * statements (strings copied, glob patterns pre-split into literal segments,
 * no json-c reference kept) and evaluates them as a pure function: default
 * deny, any applicable Deny wins, else the first applicable Allow.  It owns
 * the compiled set and its revision (SHA-256 over the documents).  It must
 * never allocate, log or do I/O while evaluating, never accept an element it
 * does not enforce, and never let a malformed document load partially.
 */
#include <sys/stat.h>

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
#define POL_VALUE_MAX   1024 /* Principal values */
#define POL_FILES_MAX   GW_POL_STATEMENTS_MAX
#define POL_DEPTH       16 /* the format nests 5 deep */

/* A glob pattern split on '*': segs[0] anchors the start, the last the end. */
struct glob {
	char *pat;
	size_t len;
	struct seg {
		size_t off, len;
	} * segs;
	size_t nsegs; /* number of '*' plus one */
};

struct glist {
	struct glob *v;
	size_t n;
};

/* "jwt:<name>": one of the token's values for name must match one of vals. */
struct pclaim {
	char *name;
	struct glist vals;
};

struct principal {
	int any; /* "*" */
	struct pclaim *v;
	size_t n;
};

/*
 * A condition: the request context key must hold a value matching one of
 * vals.  The loader builds none yet (Condition is rejected until its
 * operators land); the evaluator already requires every one to hold.
 */
struct cond {
	char *key;
	struct glist vals;
};

struct stmt {
	enum gw_pol_effect effect; /* GW_POL_ALLOW or GW_POL_EXPLICIT_DENY */
	const char *file;          /* borrowed from the set's file list */
	char sid[POL_SID_MAX + 1]; /* Sid, or "#<index in file>" */
	int has_sid;
	size_t index; /* in its file's Statement list */
	struct principal principal;
	struct glist actions;
	struct glist resources;
	struct cond *conds;
	size_t nconds;
};

struct gw_pol_set {
	struct stmt *st;
	size_t n, cap;
	char **files;
	size_t nfiles, capfiles;
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
};

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

/* ---- glob matching: no recursion, no backtracking past one segment ---- */

static int
fold(int ch, int icase)
{
	if (icase && ch >= 'A' && ch <= 'Z')
		return ch - 'A' + 'a';
	return ch;
}

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
 * Matches one '*'-free segment at t[i]; '?' takes exactly one character.
 * Returns the end offset, or SIZE_MAX.  The end is fixed by i, so a later
 * start never ends earlier: leftmost-first is optimal for the middle
 * segments, which makes the whole match O(len(t) * len(pattern)).
 */
static size_t
seg_at(const char *p, size_t plen, const char *t, size_t tlen, size_t i,
       int icase)
{
	size_t k;

	for (k = 0; k < plen; k++) {
		if (i >= tlen)
			return SIZE_MAX;
		if (p[k] == '?') {
			i += char_len(t, tlen, i);
			continue;
		}
		if (fold((unsigned char)p[k], icase) !=
		    fold((unsigned char)t[i], icase))
			return SIZE_MAX;
		i++;
	}
	return i;
}

static int
is_boundary(const char *t, size_t i)
{
	return ((unsigned char)t[i] & 0xc0) != 0x80;
}

static int
glob_match(const struct glob *g, const char *t, int icase)
{
	const struct seg *s = NULL;
	size_t tlen, pos, end, i, last;

	tlen = strlen(t);
	s = &g->segs[0];
	pos = seg_at(g->pat + s->off, s->len, t, tlen, 0, icase);
	if (pos == SIZE_MAX)
		return 0;
	if (g->nsegs == 1)
		return pos == tlen;
	last = g->nsegs - 1;
	for (i = 1; i < last; i++) {
		s = &g->segs[i];
		end = SIZE_MAX;
		for (; pos <= tlen && end == SIZE_MAX; pos++)
			if (pos == tlen || is_boundary(t, pos))
				end = seg_at(g->pat + s->off, s->len, t, tlen,
				             pos, icase);
		if (end == SIZE_MAX)
			return 0;
		pos = end;
	}
	s = &g->segs[last];
	for (; pos <= tlen; pos++) {
		if (pos < tlen && !is_boundary(t, pos))
			continue;
		end = seg_at(g->pat + s->off, s->len, t, tlen, pos, icase);
		if (end == tlen)
			return 1;
	}
	return 0;
}

static int
glist_match(const struct glist *l, const char *t, int icase)
{
	size_t i;

	if (t == NULL)
		return 0;
	for (i = 0; i < l->n; i++)
		if (glob_match(&l->v[i], t, icase))
			return 1;
	return 0;
}

static int
glob_init(struct glob *g, const char *s, size_t len)
{
	size_t i, n = 1, start = 0;

	g->pat = malloc(len + 1);
	if (g->pat == NULL)
		return -1;
	memcpy(g->pat, s, len);
	g->pat[len] = '\0';
	g->len = len;
	for (i = 0; i < len; i++)
		if (s[i] == '*')
			n++;
	g->segs = calloc(n, sizeof(*g->segs));
	if (g->segs == NULL)
		return -1;
	g->nsegs = n;
	n = 0;
	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != '*')
			continue;
		g->segs[n].off = start;
		g->segs[n].len = i - start;
		n++;
		start = i + 1;
	}
	return 0;
}

static void
glist_free(struct glist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].pat);
		free(l->v[i].segs);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* ---- evaluation ---- */

/*
 * Whether one of the token's values for the claim matches one of the
 * listed values.  A missing claim never matches.  Walks the claims
 * directly, not through
 * gw_claims_get (not part of gw_util, and modules do not call each other);
 * iss, sub and jti also live in their own fields, so they are found even
 * when the claim list leaves them out.
 */
static int
claim_match(const struct gw_claims *cl, const struct pclaim *pc)
{
	const char *fixed = NULL;
	size_t i, j;

	for (i = 0; i < cl->n; i++) {
		if (cl->v[i].name == NULL ||
		    strcmp(cl->v[i].name, pc->name) != 0)
			continue;
		for (j = 0; j < cl->v[i].nvalues; j++)
			if (glist_match(&pc->vals, cl->v[i].values[j], 0))
				return 1;
		return 0;
	}
	if (strcmp(pc->name, "iss") == 0)
		fixed = cl->iss;
	else if (strcmp(pc->name, "sub") == 0)
		fixed = cl->sub;
	else if (strcmp(pc->name, "jti") == 0)
		fixed = cl->jti;
	return glist_match(&pc->vals, fixed, 0);
}

static int
principal_match(const struct principal *p, const struct gw_claims *cl)
{
	size_t i;

	if (p->any)
		return 1;
	for (i = 0; i < p->n; i++)
		if (!claim_match(cl, &p->v[i]))
			return 0;
	return p->n > 0;
}

static int
cond_match(const struct cond *c, const struct gw_pol_request *req)
{
	size_t i, j;

	for (i = 0; i < req->nctx; i++) {
		if (req->ctx[i].key == NULL ||
		    strcmp(req->ctx[i].key, c->key) != 0)
			continue;
		for (j = 0; j < req->ctx[i].nvalues; j++)
			if (glist_match(&c->vals, req->ctx[i].values[j], 0))
				return 1;
	}
	return 0;
}

static int
applies(const struct stmt *st, const struct gw_pol_request *req)
{
	size_t i;

	/* IAM compares action names case-insensitively, resources exactly. */
	if (!glist_match(&st->actions, req->action, 1))
		return 0;
	if (!glist_match(&st->resources, req->resource, 0))
		return 0;
	if (!principal_match(&st->principal, req->claims))
		return 0;
	for (i = 0; i < st->nconds; i++)
		if (!cond_match(&st->conds[i], req))
			return 0;
	return 1;
}

static void
decide(struct gw_pol_decision *out, const struct stmt *st)
{
	out->effect = st->effect;
	snprintf(out->file, sizeof(out->file), "%s", st->file);
	snprintf(out->sid, sizeof(out->sid), "%s", st->sid);
}

void
gw_pol_eval(const struct gw_pol_set *set, const struct gw_pol_request *req,
            struct gw_pol_decision *out)
{
	const struct stmt *allow = NULL;
	size_t i;

	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	if (set == NULL || req == NULL || req->claims == NULL ||
	    req->action == NULL || req->resource == NULL)
		return;
	if (req->nctx > 0 && req->ctx == NULL)
		return;
	for (i = 0; i < set->n; i++) {
		if (!applies(&set->st[i], req))
			continue;
		if (set->st[i].effect == GW_POL_EXPLICIT_DENY) {
			decide(out, &set->st[i]);
			return;
		}
		if (allow == NULL)
			allow = &set->st[i];
	}
	if (allow != NULL)
		decide(out, allow);
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

/* ---- compiling ---- */

static void
stmt_free(struct stmt *st)
{
	size_t i;

	for (i = 0; i < st->principal.n; i++) {
		free(st->principal.v[i].name);
		glist_free(&st->principal.v[i].vals);
	}
	free(st->principal.v);
	glist_free(&st->actions);
	glist_free(&st->resources);
	for (i = 0; i < st->nconds; i++) {
		free(st->conds[i].key);
		glist_free(&st->conds[i].vals);
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
	free(set);
}

/* What a list holds; check returns a reason the item is wrong, or NULL. */
struct listkind {
	size_t maxlen;
	int scalars; /* integers and booleans allowed, compared as text */
	const char *(*check)(const struct glob *);
};

static const char *
check_action(const struct glob *g)
{
	size_t i;

	for (i = 0; i < g->len; i++)
		if (strchr(
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		        "0123456789:*?",
		        g->pat[i]) == NULL)
			return "may hold only letters, digits, ':', '*' and "
			       "'?'";
	/* A mistyped action in a Deny would silently stop denying. */
	for (i = 0; i < sizeof(known_actions) / sizeof(known_actions[0]); i++)
		if (glob_match(g, known_actions[i], 1))
			return NULL;
	return "matches no known action (known: hss:ExportImageBaseline)";
}

static const char *
check_resource(const struct glob *g)
{
	size_t i, colons = 0, partlen = 0;

	if (strcmp(g->pat, "*") == 0)
		return NULL;
	if (strncmp(g->pat, "hss:", 4) != 0)
		return "must be \"*\" or start with \"hss:\"";
	for (i = 0; i < g->len; i++)
		if (strchr(
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		        "0123456789:*?._-",
		        g->pat[i]) == NULL)
			return "may hold only letters, digits and \":*?._-\"";
	if (strchr(g->pat, '*') != NULL)
		return NULL;
	/* Without '*' it must have the shape of a real resource. */
	for (i = 0; i <= g->len; i++) {
		if (i < g->len && g->pat[i] != ':') {
			partlen++;
			continue;
		}
		if (partlen == 0)
			return "must be hss:<region>:<project-alias>";
		partlen = 0;
		colons += i < g->len;
	}
	if (colons != 2)
		return "must be hss:<region>:<project-alias>";
	return NULL;
}

static const struct listkind kind_action = {POL_PATTERN_MAX, 0, check_action};
static const struct listkind kind_resource = {POL_PATTERN_MAX, 0,
                                              check_resource};
static const struct listkind kind_value = {POL_VALUE_MAX, 1, NULL};

/* The text of a list item, or NULL if its type is not allowed. */
static const char *
item_text(struct json_object *jv, const struct listkind *k, size_t *len)
{
	const char *s = NULL;

	switch (json_object_get_type(jv)) {
	case json_type_string:
		s = json_object_get_string(jv);
		*len = (size_t)json_object_get_string_len(jv);
		return s;
	case json_type_int:
	case json_type_boolean:
		if (!k->scalars)
			return NULL;
		/* Claims hold numbers in decimal and booleans as words. */
		s = json_object_to_json_string_ext(jv, JSON_C_TO_STRING_PLAIN);
		*len = s == NULL ? 0 : strlen(s);
		return s;
	default:
		return NULL;
	}
}

static int
compile_item(struct cc *c, struct json_object *jv, const char *path,
             const struct listkind *k, struct glob *g)
{
	const char *s = NULL, *why = NULL;
	size_t len = 0;

	s = item_text(jv, k, &len);
	if (s == NULL)
		return cfail(c, path, "must be a string%s",
		             k->scalars ? ", an integer or a boolean" : "");
	if (len == 0)
		return cfail(c, path, "must not be empty");
	/* json-c saturates out-of-range integers instead of failing. */
	if (json_object_is_type(jv, json_type_int) &&
	    (strcmp(s, "18446744073709551615") == 0 ||
	     strcmp(s, "-9223372036854775808") == 0))
		return cfail(c, path, "integer out of range");
	if (len > k->maxlen)
		return cfail(c, path, "longer than %zu bytes", k->maxlen);
	if (memchr(s, '\0', len) != NULL)
		return cfail(c, path, "must not contain NUL");
	if (glob_init(g, s, len) == -1)
		return cfail(c, path, "out of memory");
	if (k->check != NULL)
		why = k->check(g);
	if (why != NULL)
		return cfail(c, path, "\"%s\" %s", g->pat, why);
	return 0;
}

/* A string or a non-empty array of items, each compiled into a glob. */
static int
compile_list(struct cc *c, struct json_object *jv, const char *path,
             const struct listkind *k, struct glist *out)
{
	char ipath[320];
	size_t i, n;

	if (json_object_is_type(jv, json_type_array)) {
		n = json_object_array_length(jv);
		if (n == 0)
			return cfail(c, path, "must not be an empty list");
		if (n > GW_POL_VALUES_MAX)
			return cfail(c, path, "more than %d values",
			             GW_POL_VALUES_MAX);
	} else {
		n = 1;
	}
	out->v = calloc(n, sizeof(*out->v));
	if (out->v == NULL)
		return cfail(c, path, "out of memory");
	if (!json_object_is_type(jv, json_type_array)) {
		out->n = 1;
		return compile_item(c, jv, path, k, &out->v[0]);
	}
	for (i = 0; i < n; i++) {
		out->n = i + 1;
		snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
		if (compile_item(c, json_object_array_get_idx(jv, i), ipath, k,
		                 &out->v[i]) == -1)
			return -1;
	}
	return 0;
}

static int
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
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
	char kpath[320];
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
		if (compile_list(c, json_object_iter_peek_value(&it), kpath,
		                 &kind_value, &pc->vals) == -1)
			return -1;
	}
	return 0;
}

static int
el_action(struct cc *c, struct stmt *st, struct json_object *jv,
          const char *path)
{
	return compile_list(c, jv, path, &kind_action, &st->actions);
}

static int
el_resource(struct cc *c, struct stmt *st, struct json_object *jv,
            const char *path)
{
	return compile_list(c, jv, path, &kind_resource, &st->resources);
}

/* Statement elements; fn NULL means recognised but not enforced yet. */
static const struct {
	const char *name;
	int required;
	int (*fn)(struct cc *, struct stmt *, struct json_object *,
	          const char *);
} stmt_elems[] = {
    {"Sid", 0, el_sid},
    {"Effect", 1, el_effect},
    {"Principal", 1, el_principal},
    {"Action", 1, el_action},
    {"Resource", 1, el_resource},
    {"Condition", 0, NULL},
    {"NotAction", 0, NULL},
    {"NotResource", 0, NULL},
    {"NotPrincipal", 0, NULL},
};
#define NSTMT_ELEMS (sizeof(stmt_elems) / sizeof(stmt_elems[0]))
_Static_assert(NSTMT_ELEMS <= 32, "seen mask is 32 bits");

static int
compile_stmt(struct cc *c, struct json_object *jv, const char *path,
             size_t index)
{
	struct json_object_iterator it, end;
	struct stmt *st = NULL, *grown = NULL;
	const char *key = NULL;
	char epath[320];
	uint32_t seen = 0;
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
		if (stmt_elems[i].fn == NULL)
			return cfail(
			    c, epath,
			    "not supported yet (it would not be enforced)");
		seen |= UINT32_C(1) << i;
		if (stmt_elems[i].fn(c, st, json_object_iter_peek_value(&it),
		                     epath) == -1)
			return -1;
	}
	for (i = 0; i < NSTMT_ELEMS; i++)
		if (stmt_elems[i].required && !(seen & (UINT32_C(1) << i)))
			return cfail(c, path, "missing \"%s\"",
			             stmt_elems[i].name);
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
