/*
 * The upstream request as plain data.  Owns its strings; wipes secret
 * header values when freed; prints itself with secrets redacted.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "upreq.h"

struct gw_upreq *
gw_upreq_new(const char *method, const char *url)
{
	struct gw_upreq *r = NULL;

	if (strlen(method) >= sizeof(r->method))
		return NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	strcpy(r->method, method);
	r->url = strdup(url);
	if (r->url == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void
gw_upreq_free(struct gw_upreq *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		if (r->headers[i].secret)
			gw_secret_free(r->headers[i].value);
		else
			free(r->headers[i].value);
	}
	free(r->url);
	free(r->body);
	free(r);
}

int
gw_upreq_set_header(struct gw_upreq *r, const char *name, const char *value,
                    int secret)
{
	struct gw_header *h = NULL;
	char *v;
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			h = &r->headers[i];
	v = strdup(value);
	if (v == NULL)
		return -1;
	if (h == NULL) {
		if (r->nheaders == GW_UPREQ_HEADERS_MAX) {
			gw_secret_free(v);
			return -1;
		}
		h = &r->headers[r->nheaders];
		h->name = strdup(name);
		if (h->name == NULL) {
			gw_secret_free(v);
			return -1;
		}
		r->nheaders++;
	} else if (h->secret)
		gw_secret_free(h->value);
	else
		free(h->value);
	h->value = v;
	h->secret = secret;
	return 0;
}

const char *
gw_upreq_header(const struct gw_upreq *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

int
gw_upreq_json(const struct gw_upreq *r, struct gw_buf *buf)
{
	struct json_object *o = NULL, *h = NULL, *body = NULL;
	const char *s;
	size_t i;
	int rc = -1;

	o = json_object_new_object();
	h = json_object_new_object();
	if (o == NULL || h == NULL)
		goto out;
	for (i = 0; i < r->nheaders; i++)
		json_object_object_add(
		    h, r->headers[i].name,
		    json_object_new_string(r->headers[i].secret
		                               ? "<redacted>"
		                               : r->headers[i].value));
	if (r->body != NULL) {
		body = json_tokener_parse(r->body);
		if (body == NULL)
			body = json_object_new_string_len(r->body,
			                                  (int)r->bodylen);
	}
	json_object_object_add(o, "method", json_object_new_string(r->method));
	json_object_object_add(o, "url", json_object_new_string(r->url));
	json_object_object_add(o, "headers", h);
	h = NULL;
	json_object_object_add(o, "body", body);
	body = NULL;
	s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	rc = s == NULL ? -1 : gw_buf_puts(buf, s);
out:
	json_object_put(h);
	json_object_put(body);
	json_object_put(o);
	return rc;
}
