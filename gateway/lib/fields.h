/*
 * The HSS field table, private to the translation module: every field a
 * caller may send (the project alias, the two query parameters and the body
 * fields of POST /v5/{project_id}/image/baseline/export), with its JSON
 * type, where it goes and its limits, plus the names only the gateway may
 * set.  One table feeds the validator, the translator, the HSS wire checker
 * and the documentation.  No json-c types here: translate.c walks JSON.
 */
#ifndef GW_FIELDS_H
#define GW_FIELDS_H

#include <stddef.h>

#include "gw.h"

/* JSON type class of a field. */
enum gw_tr_type {
	GW_TR_STRING,  /* string, length in characters */
	GW_TR_ENUM,    /* string, one of a fixed list */
	GW_TR_BOOL,    /* JSON boolean */
	GW_TR_INT,     /* JSON integer in [min, max] */
	GW_TR_TIME,    /* int64 ms >= 0; callers may send RFC 3339 */
	GW_TR_STRLIST, /* array of strings */
	GW_TR_TYPE__MAX
};

/* Where a field goes on the HSS request. */
enum gw_tr_where {
	GW_TR_ALIAS, /* caller only: selects project_id, region, endpoint */
	GW_TR_QUERY, /* query parameter */
	GW_TR_BODY,  /* JSON body member */
	GW_TR_WHERE__MAX
};

/* Field flags. */
#define GW_TR_CALLER_REQUIRED 0x01 /* the caller must send it */
#define GW_TR_WIRE_REQUIRED   0x02 /* HSS requires it on the wire */

struct gw_tr_field {
	const char *name; /* exact, case-sensitive HSS name */
	enum gw_tr_type type;
	enum gw_tr_where where;
	unsigned flags;
	const char *const *enums; /* GW_TR_ENUM: NULL-terminated */
	long long min, max; /* characters (strings, list elements) or value */
	size_t max_items;   /* GW_TR_STRLIST: element cap */
	const char *doc;    /* one line for docs/FIELDS.md */
};

/* The field table, in HSS reference order; gw_tr_nfields rows. */
extern const struct gw_tr_field gw_tr_fields[];
extern const size_t gw_tr_nfields;

/* Borrowed row by exact name, or NULL. */
const struct gw_tr_field *gw_tr_field_get(const char *name);

/* 1 if the name (case-insensitive) is one only the gateway may set. */
int gw_tr_forbidden(const char *name);

/* Client-facing rule of a field, e.g. "must be one of: a, b"; never NULL. */
const char *gw_tr_rule(const struct gw_tr_field *, int wire, char *buf,
                       size_t cap);

/* Rule of one element of a GW_TR_STRLIST field; never NULL. */
const char *gw_tr_elem_rule(const struct gw_tr_field *, char *buf, size_t cap);

/* Rule text for the names only the gateway may set. */
#define GW_TR_FORBIDDEN_RULE "set by the gateway; callers must not send it"

#endif
