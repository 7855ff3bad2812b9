/*
 * Policy engine: compiles IAM-shaped JSON documents into an immutable set of
 * statements (strings copied, patterns pre-split into literal text and
 * policy variables, condition values parsed into numbers, dates and
 * networks, condition keys interned; no json-c reference kept) that
 * policy_eval.c evaluates.  This file loads documents and directories,
 * compiles statements (the elements that hold values in policy_cond.c),
 * gives elements their memo ids, has the pre-filter built
 * (policy_index.c) and frees the set.  It owns the compiled
 * set and its revision (SHA-256 over the documents).  It must never accept
 * an element, operator or key it does not enforce, and never let a
 * malformed document load partially.
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

#include "policy_int.h"

static const struct {
	const char *name;
	enum gw_pol_effect effect;
} effects[] = {
    {"Allow", GW_POL_ALLOW},
    {"Deny", GW_POL_EXPLICIT_DENY},
};

/* Records "<file>: <path>: <message>"; always returns -1. */
int
pol_cfail(struct cc *c, const char *path, const char *fmt, ...)
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
	pol_index_free(&set->ix);
	free(set);
}

static int
el_sid(struct cc *c, struct stmt *st, struct json_object *jv, const char *path)
{
	const char *s = NULL;
	size_t len;

	if (!json_object_is_type(jv, json_type_string))
		return pol_cfail(c, path, "must be a string");
	s = json_object_get_string(jv);
	len = (size_t)json_object_get_string_len(jv);
	if (len == 0 || len > POL_SID_MAX)
		return pol_cfail(c, path, "must be 1 to %d characters",
		                 POL_SID_MAX);
	if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	              "0123456789_.:-") != len)
		return pol_cfail(c, path,
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
	return pol_cfail(c, path, "must be \"Allow\" or \"Deny\"");
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
    {"Principal", 0, G_PRINCIPAL, pol_el_principal},
    {"NotPrincipal", 0, G_PRINCIPAL, pol_el_not_principal},
    {"Action", 0, G_ACTION, pol_el_action},
    {"NotAction", 0, G_ACTION, pol_el_not_action},
    {"Resource", 0, G_RESOURCE, pol_el_resource},
    {"NotResource", 0, G_RESOURCE, pol_el_not_resource},
    {"Condition", 0, G_NONE, pol_el_condition},
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
		return pol_cfail(c, path, "must be an object");
	if (c->set->n >= GW_POL_STATEMENTS_MAX)
		return pol_cfail(c, path, "more than %d statements in the set",
		                 GW_POL_STATEMENTS_MAX);
	if (c->set->n == c->set->cap) {
		ncap = c->set->cap == 0 ? 16 : c->set->cap * 2;
		grown = realloc(c->set->st, ncap * sizeof(*grown));
		if (grown == NULL)
			return pol_cfail(c, path, "out of memory");
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
			return pol_cfail(c, epath, "unknown element");
		if (stmt_elems[i].group != G_NONE &&
		    groups[stmt_elems[i].group]++ > 0)
			return pol_cfail(c, epath, "only one of %s may appear",
			                 group_names[stmt_elems[i].group]);
		seen |= UINT32_C(1) << i;
		if (stmt_elems[i].fn(c, st, json_object_iter_peek_value(&it),
		                     epath) == -1)
			return -1;
	}
	for (i = 0; i < NSTMT_ELEMS; i++)
		if (stmt_elems[i].required && !(seen & (UINT32_C(1) << i)))
			return pol_cfail(c, path, "missing \"%s\"",
			                 stmt_elems[i].name);
	for (i = G_NONE + 1; i < G__MAX; i++)
		if (groups[i] == 0)
			return pol_cfail(c, path, "missing %s", group_names[i]);
	stmt_memo(c->set, st);
	return 0;
}

static int
doc_version(struct cc *c, struct json_object *jv, const char *path)
{
	if (!json_object_is_type(jv, json_type_string) ||
	    strcmp(json_object_get_string(jv), POL_VERSION) != 0)
		return pol_cfail(c, path, "must be \"" POL_VERSION "\"");
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
		return pol_cfail(c, path, "must hold at least one statement");
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
		return pol_cfail(c, "Statement", "out of memory");
	for (i = c->first; i < c->set->n; i++)
		if (c->set->st[i].has_sid)
			v[n++] = &c->set->st[i];
	qsort(v, n, sizeof(const struct stmt *), sid_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(v[i - 1]->sid, v[i]->sid) != 0)
			continue;
		snprintf(path, sizeof(path), "Statement[%zu].Sid", v[i]->index);
		pol_cfail(c, path, "duplicate Sid \"%s\" (also Statement[%zu])",
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
		pol_cfail(c, "(document)", "out of memory");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
	                                JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue) {
		pol_cfail(c, "(document)", "invalid JSON: truncated");
		goto out;
	}
	if (jerr != json_tokener_success || root == NULL) {
		pol_cfail(c, "(document)", "invalid JSON at byte %zu: %s",
		          json_tokener_get_parse_end(tok),
		          json_tokener_error_desc(jerr));
		goto out;
	}
	for (i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (strchr(" \t\r\n", buf[i]) == NULL) {
			pol_cfail(c, "(document)",
			          "invalid JSON: trailing data at byte %zu", i);
			goto out;
		}
	}
	if (parsed_members(root) != raw_members(buf, len)) {
		pol_cfail(c, "(document)", "an object repeats a key");
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
		pol_cfail(c, "(document)", "larger than %zu bytes",
		          GW_POL_FILE_MAX);
		goto out;
	}
	if (memchr(buf, '\0', len) != NULL) {
		pol_cfail(c, "(document)", "contains a NUL byte");
		goto out;
	}
	root = parse_json(c, buf, len);
	if (root == NULL)
		goto out;
	if (!json_object_is_type(root, json_type_object)) {
		pol_cfail(c, "(document)", "must be a JSON object");
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
			pol_cfail(c, key, "unknown element");
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
			pol_cfail(c, doc_elems[i].name, "missing");
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
	    strchr(name, '/') != NULL || !pol_printable(name)) {
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
	if (pol_index_build(set) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
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
