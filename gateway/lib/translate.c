/*
 * Translation: validates the caller's simplified export request against
 * the field table (fields.c) and turns it into the exact HSS call, and
 * checks HSS wire requests the way HSS would (for the emulator).  Owns the
 * parsed request (body, effective values, the policy context and the
 * strings behind it).  Never sees or adds credentials, never lets a caller
 * choose the project, region or endpoint, and never forwards a field it did
 * not validate: the HSS body is re-serialised from validated values only.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fields.h"
#include "translate.h"

/* Object -> array of strings is all the nesting a request needs. */
#define JSON_DEPTH 4
/* Upper bound of a built URL: endpoint, segments and query, encoded. */
#define URL_MAX 8192
/* A query component of an HSS wire request. */
#define QUERY_PART_MAX 4096

enum mode {
	MODE_CALLER, /* the simplified request from a caller */
	MODE_WIRE,   /* an HSS wire request, as HSS checks it */
};

/* Request-lifetime allocations behind ctx, freed in one place. */
struct pool {
	void **p;
	size_t n, cap;
};

static void *
pool_keep(struct pool *pl, void *p)
{
	void **np = NULL;
	size_t ncap;

	if (p == NULL)
		return NULL;
	if (pl->n == pl->cap) {
		ncap = pl->cap ? pl->cap * 2 : 32;
		np = realloc(pl->p, ncap * sizeof(*np));
		if (np == NULL) {
			free(p);
			return NULL;
		}
		pl->p = np;
		pl->cap = ncap;
	}
	pl->p[pl->n++] = p;
	return p;
}

static void
pool_free(struct pool *pl)
{
	size_t i;

	if (pl == NULL)
		return;
	for (i = 0; i < pl->n; i++)
		free(pl->p[i]);
	free(pl->p);
	free(pl);
}

/*
 * Sets a fault naming a field.  The name may be the caller's own unknown
 * key: cut it at a UTF-8 boundary so the error answer stays valid UTF-8.
 */
static enum gw_err
fault_at(struct gw_fault *fault, enum gw_err err, const char *field,
         const char *msg)
{
	size_t n = strlen(field);

	if (n >= sizeof(fault->field)) {
		n = sizeof(fault->field) - 1;
		while (n > 0 && ((unsigned char)field[n] & 0xc0) == 0x80)
			n--;
	}
	gw_fault_set(fault, err, NULL, "%s", msg);
	memcpy(fault->field, field, n);
	fault->field[n] = '\0';
	return err;
}

static enum gw_err
nomem(struct gw_fault *fault)
{
	return gw_fault_set(fault, GW_ERR_NOMEM, "", "out of memory");
}

static enum gw_err
fault_rule(struct gw_fault *fault, const struct gw_tr_field *f,
           const char *field, enum mode m)
{
	char rule[256];

	return fault_at(fault, GW_ERR_FIELD, field,
	                gw_tr_rule(f, m == MODE_WIRE, rule, sizeof(rule)));
}

/* Characters are Unicode code points, as the reference counts them. */
static size_t
utf8_chars(const char *s, size_t n)
{
	size_t i, c = 0;

	for (i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			c++;
	return c;
}

/*
 * Checks a string value of a string, enum or list-element field.  An
 * embedded NUL is refused: policies and audit read C strings, so
 * "a\u0000b" would be judged as "a" while HSS received "a\u0000b".
 */
static enum gw_err
check_str(const struct gw_tr_field *f, const char *field, int elem,
          const char *s, size_t n, enum mode m, struct gw_fault *fault)
{
	char rule[256];
	size_t i, chars;

	if (memchr(s, '\0', n) != NULL)
		return fault_at(fault, GW_ERR_FIELD, field,
		                "must not contain NUL characters");
	if (!gw_utf8_valid(s, n))
		return fault_at(fault, GW_ERR_FIELD, field,
		                "must be valid UTF-8");
	if (f->type == GW_TR_ENUM) {
		for (i = 0; f->enums[i] != NULL; i++)
			if (strcmp(f->enums[i], s) == 0)
				return GW_OK;
		return fault_rule(fault, f, field, m);
	}
	chars = utf8_chars(s, n);
	if ((long long)chars < f->min || (long long)chars > f->max) {
		if (elem)
			return fault_at(fault, GW_ERR_FIELD, field,
			                gw_tr_elem_rule(f, rule, sizeof(rule)));
		return fault_rule(fault, f, field, m);
	}
	return GW_OK;
}

/*
 * A JSON integer as int64, or -1.  json-c clamps integers beyond int64 to
 * INT64_MIN or INT64_MAX (keeping those up to UINT64_MAX as uint64), so a
 * clamp point is taken as overflow unless it is exactly INT64_MAX; no
 * field accepts a negative value, so INT64_MIN itself is never valid.
 */
static int
json_int(struct json_object *v, long long *out)
{
	int64_t i;

	if (!json_object_is_type(v, json_type_int))
		return -1;
	i = json_object_get_int64(v);
	if (i == INT64_MIN)
		return -1;
	if (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
		return -1;
	*out = (long long)i;
	return 0;
}

static enum gw_err
check_int(const struct gw_tr_field *f, const char *field, struct json_object *v,
          enum mode m, struct json_object **norm, struct gw_fault *fault)
{
	long long n = 0;
	int64_t ms = 0;

	if (json_int(v, &n) == 0) {
		if (n < f->min || n > f->max)
			return fault_rule(fault, f, field, m);
	} else if (f->type == GW_TR_TIME && m == MODE_CALLER &&
	           json_object_is_type(v, json_type_string)) {
		/* Callers may write times as RFC 3339; HSS takes ms. */
		if (memchr(json_object_get_string(v), '\0',
		           (size_t)json_object_get_string_len(v)) != NULL ||
		    gw_rfc3339_ms(json_object_get_string(v), &ms) == -1 ||
		    ms < f->min || ms > f->max)
			return fault_rule(fault, f, field, m);
		n = (long long)ms;
	} else
		return fault_rule(fault, f, field, m);
	if (norm != NULL) {
		*norm = json_object_new_int64(n);
		if (*norm == NULL)
			return nomem(fault);
	}
	return GW_OK;
}

static enum gw_err
check_list(const struct gw_tr_field *f, const char *field,
           struct json_object *v, enum mode m, struct gw_fault *fault)
{
	struct json_object *e = NULL;
	char efield[sizeof(fault->field)], rule[256];
	enum gw_err rc;
	size_t i, n;

	if (!json_object_is_type(v, json_type_array))
		return fault_rule(fault, f, field, m);
	n = json_object_array_length(v);
	if (n > f->max_items)
		return fault_rule(fault, f, field, m);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(v, i);
		snprintf(efield, sizeof(efield), "%s[%zu]", field, i);
		if (!json_object_is_type(e, json_type_string))
			return fault_at(fault, GW_ERR_FIELD, efield,
			                gw_tr_elem_rule(f, rule, sizeof(rule)));
		rc = check_str(f, efield, 1, json_object_get_string(e),
		               (size_t)json_object_get_string_len(e), m, fault);
		if (rc != GW_OK)
			return rc;
	}
	return GW_OK;
}

/*
 * Checks one value against its row.  When norm is set it receives a new
 * reference to the value HSS gets (times converted to milliseconds).
 */
static enum gw_err
check_value(const struct gw_tr_field *f, struct json_object *v, enum mode m,
            struct json_object **norm, struct gw_fault *fault)
{
	enum gw_err rc = GW_OK;

	switch (f->type) {
	case GW_TR_STRING:
	case GW_TR_ENUM:
		if (!json_object_is_type(v, json_type_string))
			return fault_rule(fault, f, f->name, m);
		rc = check_str(f, f->name, 0, json_object_get_string(v),
		               (size_t)json_object_get_string_len(v), m, fault);
		break;
	case GW_TR_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return fault_rule(fault, f, f->name, m);
		break;
	case GW_TR_INT:
	case GW_TR_TIME:
		return check_int(f, f->name, v, m, norm, fault);
	case GW_TR_STRLIST:
		rc = check_list(f, f->name, v, m, fault);
		break;
	default:
		return gw_fault_set(fault, GW_ERR_INTERNAL, f->name,
		                    "field has no type");
	}
	if (rc == GW_OK && norm != NULL)
		*norm = json_object_get(v);
	return rc;
}

/*
 * Parses a request body that must be one JSON object: well-formed UTF-8,
 * no NUL byte, strict JSON, shallow.  Returns the object or a fault.
 */
static enum gw_err
parse_object(const char *body, size_t len, struct json_object **out,
             struct gw_fault *fault)
{
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL;
	enum gw_err rc = GW_ERR_BAD_REQUEST;

	*out = NULL;
	if (body == NULL || len == 0 || memchr(body, '\0', len) != NULL) {
		gw_fault_set(fault, rc, "body", "must be valid JSON");
		goto out;
	}
	if (len >= INT_MAX) {
		rc = gw_fault_set(fault, GW_ERR_TOO_LARGE, "body",
		                  "is too large");
		goto out;
	}
	if (!gw_utf8_valid(body, len)) {
		gw_fault_set(fault, rc, "body", "must be valid UTF-8");
		goto out;
	}
	tok = json_tokener_new_ex(JSON_DEPTH);
	if (tok == NULL) {
		rc = nomem(fault);
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, body, (int)len);
	/* A bare number only ends at end of input: feed the terminator. */
	if (o == NULL && json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		gw_fault_set(fault, rc, "body", "must be valid JSON");
		goto out;
	}
	/* json-c gives NULL for a JSON null: valid, but not an object. */
	if (!json_object_is_type(o, json_type_object)) {
		gw_fault_set(fault, rc, "body", "must be a JSON object");
		goto out;
	}
	*out = o;
	o = NULL;
	rc = GW_OK;
out:
	json_object_put(o);
	if (tok != NULL)
		json_tokener_free(tok);
	return rc;
}

static const struct gw_conf_project *
project_get(const struct gw_config *conf, const char *alias)
{
	size_t i;

	if (alias == NULL)
		return NULL;
	for (i = 0; i < conf->nprojects; i++)
		if (conf->projects[i].alias != NULL &&
		    strcmp(conf->projects[i].alias, alias) == 0)
			return &conf->projects[i];
	return NULL;
}

/* Adds hss:<name> with the given values (copied into the pool). */
static int
ctx_add(struct gw_export_req *r, struct pool *pl, const char *name,
        const char *const *vals, size_t n)
{
	struct gw_kv *kv = &r->ctx[r->nctx];
	const char **v = NULL;
	char *key = NULL;
	size_t i, klen = strlen(name) + 5;

	key = pool_keep(pl, malloc(klen));
	v = pool_keep(pl, calloc(n ? n : 1, sizeof(*v)));
	if (key == NULL || v == NULL)
		return -1;
	snprintf(key, klen, "hss:%s", name);
	for (i = 0; i < n; i++) {
		v[i] = pool_keep(pl, gw_strdup(vals[i]));
		if (v[i] == NULL)
			return -1;
	}
	kv->key = key;
	kv->values = v;
	kv->nvalues = n;
	r->nctx++;
	return 0;
}

/* Adds hss:<name> for a validated JSON value, as policies read it. */
static int
ctx_add_json(struct gw_export_req *r, struct pool *pl, const char *name,
             struct json_object *v)
{
	const char **vals = NULL;
	const char *one = NULL;
	char num[32];
	size_t i, n;
	int rc = -1;

	if (json_object_is_type(v, json_type_array)) {
		n = json_object_array_length(v);
		vals = calloc(n ? n : 1, sizeof(*vals));
		if (vals == NULL)
			goto out;
		for (i = 0; i < n; i++)
			vals[i] = json_object_get_string(
			    json_object_array_get_idx(v, i));
		rc = ctx_add(r, pl, name, vals, n);
		goto out;
	}
	if (json_object_is_type(v, json_type_boolean))
		one = json_object_get_boolean(v) ? "true" : "false";
	else if (json_object_is_type(v, json_type_int)) {
		snprintf(num, sizeof(num), "%lld",
		         (long long)json_object_get_int64(v));
		one = num;
	} else
		one = json_object_get_string(v);
	rc = ctx_add(r, pl, name, &one, 1);
out:
	free(vals);
	return rc;
}

/* Builds ctx: alias, region, effective query values, then body fields. */
static int
build_ctx(struct gw_export_req *r, const char *alias,
          struct json_object *const *vals)
{
	struct pool *pl = r->priv;
	const char *one = NULL;
	char num[32];
	size_t i;

	r->ctx = pool_keep(pl, calloc(gw_tr_nfields + 4, sizeof(*r->ctx)));
	if (r->ctx == NULL)
		return -1;
	one = alias;
	if (ctx_add(r, pl, "project", &one, 1) == -1)
		return -1;
	one = r->project->region;
	if (one != NULL && ctx_add(r, pl, "region", &one, 1) == -1)
		return -1;
	snprintf(num, sizeof(num), "%lld", r->export_size);
	one = num;
	if (ctx_add(r, pl, "export_size", &one, 1) == -1)
		return -1;
	one = r->enterprise_project_id;
	if (one != NULL &&
	    ctx_add(r, pl, "enterprise_project_id", &one, 1) == -1)
		return -1;
	for (i = 0; i < gw_tr_nfields; i++)
		if (gw_tr_fields[i].where == GW_TR_BODY && vals[i] != NULL &&
		    ctx_add_json(r, pl, gw_tr_fields[i].name, vals[i]) == -1)
			return -1;
	return 0;
}

/*
 * Validates every member of the caller's object into vals (indexed like
 * gw_tr_fields).  Gateway-only names first, case-insensitively, so that
 * "X-AUTH-TOKEN" is refused as such and not merely as unknown.
 */
static enum gw_err
collect(struct json_object *o, enum mode m, struct json_object **vals,
        struct gw_fault *fault)
{
	const struct gw_tr_field *f = NULL;
	struct json_object **slot = NULL;
	enum gw_err rc;

	for (struct json_object_iterator it_ = json_object_iter_begin(o),
	                                 end_ = json_object_iter_end(o);
	     !json_object_iter_equal(&it_, &end_);
	     json_object_iter_next(&it_)) {
		const char *key = json_object_iter_peek_name(&it_);
		struct json_object *val = json_object_iter_peek_value(&it_);
		if (m == MODE_CALLER && gw_tr_forbidden(key))
			return fault_at(fault, GW_ERR_FIELD, key,
			                GW_TR_FORBIDDEN_RULE);
		f = gw_tr_field_get(key);
		if (f == NULL || (m == MODE_WIRE && f->where != GW_TR_BODY))
			return fault_at(fault, GW_ERR_FIELD, key,
			                "unknown field");
		slot = vals != NULL ? &vals[f - gw_tr_fields] : NULL;
		if (slot != NULL) {
			json_object_put(*slot);
			*slot = NULL;
		}
		rc = check_value(f, val, m, slot, fault);
		if (rc != GW_OK)
			return rc;
	}
	return GW_OK;
}

/*
 * Whether a caller may name enterprise project eps on project p: its
 * configured enterprise_project_id, one its entry lists in
 * enterprise_projects, or any when that list holds "*".  The default is
 * only the configured one: the alias a policy allows must not be a door
 * to every enterprise project the credentials reach ("all_granted_eps").
 */
static int
eps_allowed(const struct gw_conf_project *p, const char *eps)
{
	size_t i;

	if (p->enterprise_project_id != NULL &&
	    strcmp(p->enterprise_project_id, eps) == 0)
		return 1;
	for (i = 0; i < p->nenterprise_projects; i++)
		if (strcmp(p->enterprise_projects[i], "*") == 0 ||
		    strcmp(p->enterprise_projects[i], eps) == 0)
			return 1;
	return 0;
}

/* Effective query values: the caller's, else the project's defaults. */
static enum gw_err
effective(struct gw_export_req *r, const struct gw_config *conf,
          struct json_object *const *vals, struct gw_fault *fault)
{
	const struct gw_tr_field *eps =
	    gw_tr_field_get("enterprise_project_id");
	const struct gw_tr_field *size = gw_tr_field_get("export_size");
	struct json_object *v = NULL;

	v = vals[eps - gw_tr_fields];
	if (v != NULL && !eps_allowed(r->project, json_object_get_string(v)))
		return fault_at(fault, GW_ERR_FIELD, "enterprise_project_id",
		                "must be the project's enterprise project or "
		                "one its entry allows (enterprise_projects)");
	r->enterprise_project_id =
	    gw_strdup(v != NULL ? json_object_get_string(v)
	                        : r->project->enterprise_project_id);
	if (r->enterprise_project_id == NULL &&
	    (v != NULL || r->project->enterprise_project_id != NULL))
		return nomem(fault);
	v = vals[size - gw_tr_fields];
	r->export_size = v != NULL ? (long long)json_object_get_int64(v)
	                           : conf->default_export_size;
	if (r->export_size < size->min || r->export_size > size->max)
		return gw_fault_set(fault, GW_ERR_CONFIG, "",
		                    "default_export_size is out of range");
	return GW_OK;
}

enum gw_err
gw_tr_parse(const struct gw_config *conf, const char *body, size_t len,
            struct gw_export_req **out, struct gw_fault *fault)
{
	struct json_object *o = NULL, *hss = NULL;
	struct json_object **vals = NULL;
	struct gw_export_req *r = NULL;
	const struct gw_tr_field *f = NULL;
	const char *alias = NULL, *s = NULL;
	enum gw_err rc;
	struct gw_fault scratch;
	size_t i;

	if (fault == NULL)
		fault = &scratch;
	*out = NULL;
	rc = parse_object(body, len, &o, fault);
	if (rc != GW_OK)
		goto out;
	rc = nomem(fault);
	vals = calloc(gw_tr_nfields, sizeof(struct json_object *));
	r = calloc(1, sizeof(*r));
	if (vals == NULL || r == NULL)
		goto out;
	r->priv = calloc(1, sizeof(struct pool));
	hss = json_object_new_object();
	if (r->priv == NULL || hss == NULL)
		goto out;
	rc = collect(o, MODE_CALLER, vals, fault);
	if (rc != GW_OK)
		goto out;
	for (i = 0; i < gw_tr_nfields; i++) {
		f = &gw_tr_fields[i];
		if ((f->flags & GW_TR_CALLER_REQUIRED) && vals[i] == NULL) {
			rc = fault_at(fault, GW_ERR_FIELD, f->name,
			              "is required");
			goto out;
		}
		if (f->where == GW_TR_ALIAS)
			alias = json_object_get_string(vals[i]);
		if (f->where == GW_TR_BODY && vals[i] != NULL &&
		    json_object_object_add(hss, f->name,
		                           json_object_get(vals[i])) != 0) {
			rc = nomem(fault);
			goto out;
		}
	}
	r->project = project_get(conf, alias);
	if (r->project == NULL) {
		rc = fault_at(
		    fault, GW_ERR_FIELD, "project",
		    "must be a project alias configured on the gateway");
		goto out;
	}
	rc = effective(r, conf, vals, fault);
	if (rc != GW_OK)
		goto out;
	s = json_object_to_json_string_ext(
	    hss, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	r->body = gw_strdup(s);
	if (r->body == NULL) {
		rc = nomem(fault);
		goto out;
	}
	r->bodylen = strlen(r->body);
	if (build_ctx(r, alias, vals) == -1) {
		rc = nomem(fault);
		goto out;
	}
	*out = r;
	r = NULL;
	memset(fault, 0, sizeof(*fault));
out:
	for (i = 0; vals != NULL && i < gw_tr_nfields; i++)
		json_object_put(vals[i]);
	free(vals);
	json_object_put(hss);
	json_object_put(o);
	gw_tr_req_free(r);
	return rc;
}

void
gw_tr_req_free(struct gw_export_req *r)
{
	if (r == NULL)
		return;
	free(r->enterprise_project_id);
	free(r->body);
	pool_free(r->priv);
	free(r);
}

/*
 * A path segment must keep the path it is in: "." and ".." are unreserved,
 * so encoding alone would let them climb (RFC 3986 section 5.2.4), and an
 * empty one makes "//", which a front may merge.
 */
static int
segment_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strcmp(s, ".") != 0 &&
	       strcmp(s, "..") != 0;
}

enum gw_err
gw_tr_url(const char *endpoint, const char *const *segs, size_t nsegs,
          const struct gw_tr_qparam *q, size_t nq, char **out,
          struct gw_fault *fault)
{
	struct gw_buf url;
	const char *sep = "?";
	size_t i, elen;
	enum gw_err rc = GW_ERR_CONFIG;

	*out = NULL;
	gw_buf_init(&url, URL_MAX);
	elen = endpoint != NULL ? strlen(endpoint) : 0;
	/* Normalised at config load (config.c): one spelling, one path. */
	if (elen == 0 || endpoint[elen - 1] == '/') {
		gw_fault_set(fault, rc, "",
		             "project endpoint is not normalised");
		goto out;
	}
	gw_buf_add(&url, endpoint, elen);
	for (i = 0; i < nsegs; i++) {
		if (!segment_ok(segs[i])) {
			gw_fault_set(fault, rc, "",
			             "upstream path segment %zu is empty, "
			             "\".\" or \"..\"",
			             i);
			goto out;
		}
		gw_buf_puts(&url, "/");
		gw_pct_encode(&url, segs[i], strlen(segs[i]));
	}
	for (i = 0; i < nq; i++) {
		if (q[i].value == NULL)
			continue;
		gw_buf_puts(&url, sep);
		gw_pct_encode(&url, q[i].name, strlen(q[i].name));
		gw_buf_puts(&url, "=");
		gw_pct_encode(&url, q[i].value, strlen(q[i].value));
		sep = "&";
	}
	if (url.overflow) {
		rc = gw_fault_set(fault, GW_ERR_INTERNAL, "",
		                  "upstream URL too long");
		goto out;
	}
	*out = gw_buf_take(&url, NULL);
	rc = *out != NULL ? GW_OK : nomem(fault);
out:
	gw_buf_reset(&url);
	return rc;
}

/* The project's own values must make a sane request (region: a header). */
static int
project_ok(const struct gw_conf_project *p)
{
	return p != NULL && p->endpoint != NULL && p->project_id != NULL &&
	       p->region != NULL && p->region[0] != '\0';
}

enum gw_err
gw_tr_build(const struct gw_export_req *r, struct gw_upreq **out,
            struct gw_fault *fault)
{
	struct gw_upreq *up = NULL;
	const char *segs[6];
	struct gw_tr_qparam q[2];
	char size[32], *url = NULL;
	struct gw_fault scratch;
	enum gw_err rc = GW_ERR_NOMEM;

	if (fault == NULL)
		fault = &scratch;
	*out = NULL;
	if (r == NULL || !project_ok(r->project)) {
		rc = gw_fault_set(fault, GW_ERR_CONFIG, "",
		                  "project configuration is incomplete");
		goto out;
	}
	/* POST /v5/{project_id}/image/baseline/export (reference 1.2). */
	segs[0] = "v5";
	segs[1] = r->project->project_id;
	segs[2] = "image";
	segs[3] = "baseline";
	segs[4] = "export";
	snprintf(size, sizeof(size), "%lld", r->export_size);
	q[0] = (struct gw_tr_qparam){"enterprise_project_id",
	                             r->enterprise_project_id};
	q[1] = (struct gw_tr_qparam){"export_size", size};
	rc = gw_tr_url(r->project->endpoint, segs, 5, q, 2, &url, fault);
	if (rc != GW_OK)
		goto out;
	up = gw_upreq_new("POST", url);
	/* HSS requires a body (SDK NON_NULL_NON_EMPTY): at least {}. */
	if (up != NULL)
		up->body = gw_strdup(r->body != NULL ? r->body : "{}");
	if (up == NULL || up->body == NULL ||
	    gw_upreq_set_header(up, "region", r->project->region, 0) == -1 ||
	    gw_upreq_set_header(up, "Content-Type",
	                        "application/json;charset=utf-8", 0) == -1) {
		rc = nomem(fault);
		goto out;
	}
	up->bodylen = strlen(up->body);
	up->body_json = 1; /* json-c wrote it (gw_tr_parse), or "{}" */
	*out = up;
	up = NULL;
	rc = GW_OK;
out:
	gw_upreq_free(up);
	free(url);
	return rc;
}

enum gw_err
gw_tr_task_build(const struct gw_conf_project *p, const char *eps,
                 enum gw_tr_task_api api, const char *id, struct gw_upreq **out,
                 struct gw_fault *fault)
{
	static const char *const what[GW_TR_TASK__MAX] = {
	    [GW_TR_TASK_STATUS] = "export-task",
	    [GW_TR_TASK_DOWNLOAD] = "download",
	};
	struct gw_upreq *up = NULL;
	const char *segs[4];
	struct gw_tr_qparam q;
	char *url = NULL;
	struct gw_fault scratch;
	enum gw_err rc;

	if (fault == NULL)
		fault = &scratch;
	*out = NULL;
	if (!project_ok(p) || (unsigned)api >= GW_TR_TASK__MAX) {
		rc = gw_fault_set(fault, GW_ERR_CONFIG, "",
		                  "project configuration is incomplete");
		goto out;
	}
	/* GET /v5/{project_id}/{export-task|download}/{id} (2.1, 2.2). */
	segs[0] = "v5";
	segs[1] = p->project_id;
	segs[2] = what[api];
	segs[3] = id;
	q = (struct gw_tr_qparam){"enterprise_project_id", eps};
	rc = gw_tr_url(p->endpoint, segs, 4, &q, 1, &url, fault);
	if (rc != GW_OK)
		goto out;
	up = gw_upreq_new("GET", url);
	if (up == NULL ||
	    gw_upreq_set_header(up, "region", p->region, 0) == -1) {
		rc = nomem(fault);
		goto out;
	}
	*out = up;
	up = NULL;
out:
	gw_upreq_free(up);
	free(url);
	return rc;
}

/*
 * Decodes one query component of n bytes into dst (cap bytes): %XX and,
 * as servlet containers do, '+' as a space.  Returns the length or -1.
 */
static long
pct_decode(const char *s, size_t n, char *dst, size_t cap)
{
	size_t len = 0;
	char *d = gw_pct_decode(s, n, 1, &len);

	if (d == NULL || len + 1 > cap) {
		free(d);
		return -1;
	}
	memcpy(dst, d, len + 1);
	free(d);
	return (long)len;
}

/* Checks one name=value query parameter of an HSS wire request. */
static enum gw_err
check_param(const char *p, size_t n, unsigned char *seen,
            struct gw_fault *fault)
{
	const struct gw_tr_field *f = NULL;
	const char *eq = memchr(p, '=', n);
	char name[QUERY_PART_MAX] = "", val[QUERY_PART_MAX] = "";
	size_t nlen = eq != NULL ? (size_t)(eq - p) : n;
	long vlen, nd;
	long long num;

	vlen = eq != NULL ? pct_decode(eq + 1, n - nlen - 1, val, sizeof(val))
	                  : pct_decode("", 0, val, sizeof(val));
	nd = pct_decode(p, nlen, name, sizeof(name));
	if (nd < 0 || vlen < 0)
		return gw_fault_set(
		    fault, GW_ERR_BAD_REQUEST, "query",
		    "malformed percent-encoding or component too long");
	/* "export_size%00x" must not pass as export_size. */
	if (strlen(name) != (size_t)nd || strlen(val) != (size_t)vlen)
		return fault_at(fault, GW_ERR_FIELD, name,
		                "must not contain NUL characters");
	f = gw_tr_field_get(name);
	if (f == NULL || f->where != GW_TR_QUERY)
		return fault_at(fault, GW_ERR_FIELD, name,
		                "unknown query parameter");
	if (seen[f - gw_tr_fields])
		return fault_at(fault, GW_ERR_FIELD, name,
		                "must appear at most once");
	seen[f - gw_tr_fields] = 1;
	if (f->type == GW_TR_INT) {
		if (gw_strtonum(val, f->min, f->max, &num) == -1)
			return fault_rule(fault, f, f->name, MODE_WIRE);
		return GW_OK;
	}
	return check_str(f, f->name, 0, val, (size_t)vlen, MODE_WIRE, fault);
}

enum gw_err
gw_tr_check_hss(const char *query, const char *body, size_t len,
                struct gw_fault *fault)
{
	struct json_object *o = NULL;
	unsigned char *seen = NULL;
	const char *p = query != NULL ? query : "", *amp = NULL;
	size_t i, n;
	struct gw_fault scratch;
	enum gw_err rc = GW_ERR_NOMEM;

	if (fault == NULL)
		fault = &scratch;
	seen = calloc(gw_tr_nfields, 1);
	if (seen == NULL) {
		gw_fault_set(fault, rc, "", "out of memory");
		goto out;
	}
	while (*p != '\0') {
		amp = strchr(p, '&');
		n = amp != NULL ? (size_t)(amp - p) : strlen(p);
		if (n > 0) {
			rc = check_param(p, n, seen, fault);
			if (rc != GW_OK)
				goto out;
		}
		p += n + (amp != NULL);
	}
	for (i = 0; i < gw_tr_nfields; i++)
		if ((gw_tr_fields[i].flags & GW_TR_WIRE_REQUIRED) && !seen[i]) {
			rc = fault_at(fault, GW_ERR_FIELD, gw_tr_fields[i].name,
			              "is required");
			goto out;
		}
	rc = parse_object(body, len, &o, fault);
	if (rc != GW_OK)
		goto out;
	rc = collect(o, MODE_WIRE, NULL, fault);
	if (rc != GW_OK)
		goto out;
	memset(fault, 0, sizeof(*fault));
out:
	json_object_put(o);
	free(seen);
	return rc;
}
