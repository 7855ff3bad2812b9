/*
 * Compiling the elements that hold values: Principal, Action, Resource and
 * their Not forms, and Condition.  It interns condition keys, splits
 * patterns into literal text and policy variables, checks actions and
 * resources, and parses condition values into numbers, dates and networks.
 * It owns what hssgw knows: the condition operators, the actions and the
 * hss: and gw: keys (gw_pol_hss_key).  It must never accept an operator,
 * key or action it does not enforce, and never keep a json-c reference.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "policy_int.h"

/* The condition operators of the IAM reference that apply to hssgw. */
static const struct opdef ops[] = {
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

/* The actions hssgw knows; every Action pattern must match one of them. */
const char *const pol_known_actions[] = {
    "hss:ExportImageBaseline",
    "hss:GetExportTask",
    "hss:DownloadExportFile",
    /* using a task another subject created (docs/TASKS.md) */
    "hss:ActForSubject",
};

/*
 * The hss:<name> keys translation puts in the request context: the alias,
 * the region, the two query values and every body field of gw_tr_fields
 * (fields.c).  Kept here because modules do not call each other;
 * tests/unit/lib/test_policy_cond.c fails when the two drift apart.
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
	if (len > 4 && pol_ieqn(s, "jwt:", 4)) {
		if (len - 4 > POL_CLAIM_MAX || memchr(s, '\0', len) != NULL)
			return pol_cfail(c, path,
			                 "claim name longer than %d bytes",
			                 POL_CLAIM_MAX);
		memcpy(name, "jwt:", 4);
		memcpy(name + 4, s + 4, len - 4);
		name[len] = '\0';
		if (!pol_printable(name))
			return pol_cfail(c, path,
			                 "claim name must be printable bytes");
		kd.src = principal ? KS_PCLAIM : KS_CLAIM;
	} else {
		if (len >= sizeof(name))
			goto unknown;
		for (i = 0; i < len; i++)
			name[i] = (char)pol_fold((unsigned char)s[i], 1);
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
		    pol_name_eq(set->keys[i].name, name, kd.src == KS_PCLAIM)) {
			*out = i;
			return 0;
		}
	}
	if (set->nkeys == GW_POL_KEYS_MAX)
		return pol_cfail(c, path,
		                 "more than %d distinct condition keys",
		                 GW_POL_KEYS_MAX);
	kd.name = gw_strdup(name);
	if (kd.name == NULL)
		return pol_cfail(c, path, "out of memory");
	set->keys[set->nkeys] = kd;
	*out = set->nkeys++;
	return 0;
unknown:
	return pol_cfail(c, path,
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
		return pol_cfail(c, path, "too many policy variables");
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
		pol_cfail(c, path, "empty policy variable");
		return 0;
	}
	if (key_intern(c, path, s + ks, ke - ks, &pt->key) == -1)
		return 0;
	if (i < len && s[i] == ',') {
		i++;
		while (i < len && s[i] == ' ')
			i++;
		if (i >= len || s[i] != '\'') {
			pol_cfail(
			    c, path,
			    "a variable's default must be in single quotes");
			return 0;
		}
		def = malloc(len);
		if (def == NULL) {
			pol_cfail(c, path, "out of memory");
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
			pol_cfail(c, path,
			          "unterminated default in a variable");
			return 0;
		}
		def[dl] = '\0';
		for (i++; i < len && s[i] == ' '; i++)
			;
	}
	if (i >= len || s[i] != '}') {
		free(def);
		pol_cfail(c, path,
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
		return pol_cfail(c, path, "out of memory");
	memcpy(p->src, s, len);
	p->src[len] = '\0';
	for (i = 0; i + 1 < len; i++)
		if (s[i] == '$' && s[i + 1] == '{')
			cap += 2;
	if (cap > 0) {
		if (!vars_ok)
			return pol_cfail(
			    c, path, "policy variables are not allowed here");
		cap++;
		p->parts = calloc(cap, sizeof(*p->parts));
		if (p->parts == NULL)
			return pol_cfail(c, path, "out of memory");
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
	for (i = 0; i < POL_NKNOWN_ACTIONS; i++)
		if (pol_wmatch(p->text, p->wild, p->len, pol_known_actions[i],
		               strlen(pol_known_actions[i]), 1))
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
		return pol_cfail(c, path, "must be a string%s",
		                 scalars ? ", an integer or a boolean" : "");
	if (*len == 0)
		return pol_cfail(c, path, "must not be empty");
	/* json-c saturates out-of-range integers instead of failing. */
	if (json_object_is_type(jv, json_type_int) &&
	    (strcmp(*s, "18446744073709551615") == 0 ||
	     strcmp(*s, "-9223372036854775808") == 0))
		return pol_cfail(c, path, "integer out of range");
	if (*len > maxlen)
		return pol_cfail(c, path, "longer than %zu bytes", maxlen);
	if (memchr(*s, '\0', *len) != NULL)
		return pol_cfail(c, path, "must not contain NUL");
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
		return pol_cfail(c, path, "\"%s\" %s", p->src, why);
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
		return pol_cfail(c, path, "must not be an empty list");
	if (*n > GW_POL_VALUES_MAX)
		return pol_cfail(c, path, "more than %d values",
		                 GW_POL_VALUES_MAX);
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
		return pol_cfail(c, path, "out of memory");
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
int
pol_el_principal(struct cc *c, struct stmt *st, struct json_object *jv,
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
		return pol_cfail(
		    c, path,
		    "must be \"*\" or an object of \"jwt:<claim>\" keys");
	n = (size_t)json_object_object_length(jv);
	if (n == 0)
		return pol_cfail(c, path, "must name at least one claim");
	if (n > POL_PCLAIMS_MAX)
		return pol_cfail(c, path, "more than %d claims",
		                 POL_PCLAIMS_MAX);
	st->principal.v = calloc(n, sizeof(*st->principal.v));
	if (st->principal.v == NULL)
		return pol_cfail(c, path, "out of memory");
	it = json_object_iter_begin(jv);
	end = json_object_iter_end(jv);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		key = json_object_iter_peek_name(&it);
		snprintf(kpath, sizeof(kpath), "%s.%s", path, key);
		if (strncmp(key, "jwt:", 4) != 0 || key[4] == '\0')
			return pol_cfail(c, kpath,
			                 "keys must be \"jwt:<claim>\"");
		if (strlen(key + 4) > POL_CLAIM_MAX || !pol_printable(key + 4))
			return pol_cfail(
			    c, kpath,
			    "claim name must be 1 to %d printable bytes",
			    POL_CLAIM_MAX);
		pc = &st->principal.v[st->principal.n++];
		pc->name = gw_strdup(key + 4);
		if (pc->name == NULL)
			return pol_cfail(c, kpath, "out of memory");
		if (key_intern_src(c, kpath, key, strlen(key), 1, &pc->key) ==
		    -1)
			return -1;
		if (compile_list(c, json_object_iter_peek_value(&it), kpath,
		                 &kind_value, &pc->vals) == -1)
			return -1;
	}
	return 0;
}

int
pol_el_not_principal(struct cc *c, struct stmt *st, struct json_object *jv,
                     const char *path)
{
	st->not_principal = 1;
	return pol_el_principal(c, st, jv, path);
}

int
pol_el_action(struct cc *c, struct stmt *st, struct json_object *jv,
              const char *path)
{
	return compile_list(c, jv, path, &kind_action, &st->actions);
}

int
pol_el_not_action(struct cc *c, struct stmt *st, struct json_object *jv,
                  const char *path)
{
	st->not_action = 1;
	return pol_el_action(c, st, jv, path);
}

int
pol_el_resource(struct cc *c, struct stmt *st, struct json_object *jv,
                const char *path)
{
	if (compile_list(c, jv, path, &kind_resource, &st->resources) == -1)
		return -1;
	st->has_vars |= plist_has_vars(&st->resources);
	return 0;
}

int
pol_el_not_resource(struct cc *c, struct stmt *st, struct json_object *jv,
                    const char *path)
{
	st->not_resource = 1;
	return pol_el_resource(c, st, jv, path);
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
		return pol_cfail(c, path, "\"%s\" is not a CIDR", s);
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	/* A mapped IPv6 network would silently become an IPv4 one. */
	if (pol_parse_ip(addr, &net) == -1 ||
	    (net.af == AF_INET && strchr(addr, ':') != NULL))
		return pol_cfail(c, path, "\"%s\" is not a CIDR", s);
	if (slash != NULL) {
		if (gw_strtonum(slash + 1, 0, net.bits, &bits) == -1 ||
		    slash[1] == '-' || (slash[1] == '0' && slash[2] != '\0'))
			return pol_cfail(
			    c, path, "\"%s\": prefix length must be 0 to %u", s,
			    net.bits);
		net.bits = (unsigned)bits;
	}
	for (i = net.bits; i < (net.af == AF_INET ? 32u : 128u); i++)
		if (net.a[i / 8] & (0x80 >> (i % 8)))
			return pol_cfail(
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
			return pol_cfail(c, path, "\"%s\" is not an integer",
			                 s);
		return 0;
	case VT_DATE:
		if (json_object_is_type(jv, json_type_boolean) ||
		    pol_parse_date(s, 0, &cv->num) == -1)
			return pol_cfail(
			    c, path,
			    "\"%s\" is not an RFC 3339 date-time or "
			    "epoch seconds",
			    s);
		return 0;
	case VT_BOOL:
	case VT_NULL:
		if (pol_parse_bool(s, &cv->num) == -1)
			return pol_cfail(c, path, "must be true or false");
		return 0;
	case VT_IP:
		return compile_cidr(c, path, s, cv);
	}
	return pol_cfail(c, path, "unknown operator type");
}

/*
 * "Condition": {"<operator>": {"<key>": value or [values]}}.  Operators
 * are ANDed, keys under one operator are ANDed, values are ORed.
 */
int
pol_el_condition(struct cc *c, struct stmt *st, struct json_object *jv,
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
		return pol_cfail(c, path,
		                 "must be a non-empty object of operators");
	it = json_object_iter_begin(jv);
	end = json_object_iter_end(jv);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		keys = json_object_iter_peek_value(&it);
		if (json_object_is_type(keys, json_type_object))
			total += (size_t)json_object_object_length(keys);
	}
	if (total > POL_CONDS_MAX)
		return pol_cfail(c, path, "more than %d conditions",
		                 POL_CONDS_MAX);
	st->conds = calloc(total ? total : 1, sizeof(*st->conds));
	if (st->conds == NULL)
		return pol_cfail(c, path, "out of memory");
	it = json_object_iter_begin(jv);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		opname = json_object_iter_peek_name(&it);
		keys = json_object_iter_peek_value(&it);
		snprintf(opath, sizeof(opath), "%s.%s", path, opname);
		op = parse_op(opname, &q, &ifx);
		if (op == NULL)
			return pol_cfail(c, opath,
			                 "unknown condition operator");
		if (op->type == VT_NULL && (q != Q_NONE || ifx))
			return pol_cfail(c, opath,
			                 "Null takes no set qualifier and no "
			                 "IfExists");
		if (!json_object_is_type(keys, json_type_object) ||
		    json_object_object_length(keys) == 0)
			return pol_cfail(
			    c, opath,
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
				return pol_cfail(c, kpath, "out of memory");
			if (key_intern(c, kpath, key, strlen(key), &cd->key) ==
			    -1)
				return -1;
			if (list_items(c, vals, kpath, &n) == -1)
				return -1;
			if (op->type == VT_NULL && n != 1)
				return pol_cfail(
				    c, kpath, "Null takes exactly one value");
			cd->v = calloc(n, sizeof(*cd->v));
			if (cd->v == NULL)
				return pol_cfail(c, kpath, "out of memory");
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

const char *
gw_pol_hss_key(size_t i, int *is_time)
{
	if (i >= NHSS_KEYS)
		return NULL;
	if (is_time != NULL)
		*is_time = hss_keys[i].time_ms;
	return hss_keys[i].name;
}
