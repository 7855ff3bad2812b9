/*
 * The strict JSON readers every JWT file shares (jwtv_int.h): a header,
 * payload or claims file parsed with no NUL, valid UTF-8, no \u0000 and
 * nothing after the object; a string member; a NumericDate.  Owns
 * nothing (json-c objects go to the caller).  Calls no other hssgw file
 * but base, so jwtv.c and jwt_claims.c both call down into it.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "gw.h"
#include "jwtv_int.h"

#define JSON_DEPTH 16
#define DATE_MAX   253402300799LL /* 9999-12-31T23:59:59Z */

/*
 * Finds the JSON escape for U+0000.  json-c would accept it and C strings
 * would cut at it ("admin\u0000x" read as "admin"), so it is refused.  An
 * escaped backslash before "u0000" is a false positive we accept.
 */
static int
has_nul_escape(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i + 6 <= n; i++)
		if (p[i] == '\\' && p[i + 1] == 'u' && p[i + 2] == '0' &&
		    p[i + 3] == '0' && p[i + 4] == '0' && p[i + 5] == '0')
			return 1;
	return 0;
}

/*
 * Parses JSON text into an object, strictly (no NUL, valid UTF-8, no
 * \u0000, nothing after it); NULL if it is anything else.
 */
json_object *
jwt_parse_json(const unsigned char *raw, size_t len)
{
	json_tokener *tk = NULL;
	json_object *obj = NULL;

	if (raw == NULL || len == 0 || len > INT_MAX)
		goto out;
	if (memchr(raw, '\0', len) != NULL ||
	    !gw_utf8_valid((const char *)raw, len) || has_nul_escape(raw, len))
		goto out;
	tk = json_tokener_new_ex(JSON_DEPTH);
	if (tk == NULL)
		goto out;
	json_tokener_set_flags(tk, JSON_TOKENER_STRICT |
	                               JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tk, (const char *)raw, (int)len);
	if (obj == NULL || json_tokener_get_error(tk) != json_tokener_success ||
	    json_tokener_get_parse_end(tk) != len ||
	    !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = NULL;
	}
out:
	if (tk != NULL)
		json_tokener_free(tk);
	return obj;
}

/* Borrowed string member, or NULL if absent or not a string. */
const char *
jwt_get_str(json_object *o, const char *name)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A NumericDate (RFC 7519 2): a JSON number, never a string. */
int
jwt_numeric_date(json_object *v, int64_t *out)
{
	double d;
	int64_t i;

	switch (json_object_get_type(v)) {
	case json_type_int:
		/* json-c clamps values past int64 to INT64_MAX: out of range.
		 */
		i = json_object_get_int64(v);
		if (i < 0 || i > DATE_MAX)
			return -1;
		*out = i;
		return 0;
	case json_type_double:
		d = json_object_get_double(v);
		if (!(d >= 0 && d <= (double)DATE_MAX))
			return -1;
		*out = (int64_t)d;
		return 0;
	default:
		return -1;
	}
}
