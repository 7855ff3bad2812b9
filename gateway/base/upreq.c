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
	struct json_object *body = NULL;
	const char *s;
	size_t i;
	int rc = -1;

	gw_buf_puts(buf, "{\"method\":");
	gw_buf_json_str(buf, r->method, strlen(r->method));
	gw_buf_puts(buf, ",\"url\":");
	gw_buf_json_str(buf, r->url, strlen(r->url));
	gw_buf_puts(buf, ",\"headers\":{");
	for (i = 0; i < r->nheaders; i++) {
		s = r->headers[i].secret ? "<redacted>" : r->headers[i].value;
		if (i > 0)
			gw_buf_add(buf, ",", 1);
		gw_buf_json_str(buf, r->headers[i].name,
		                strlen(r->headers[i].name));
		gw_buf_add(buf, ":", 1);
		gw_buf_json_str(buf, s, strlen(s));
	}
	gw_buf_puts(buf, "},\"body\":");
	if (r->body == NULL)
		gw_buf_puts(buf, "null");
	else if (r->body_json)
		gw_buf_add(buf, r->body, r->bodylen);
	else if ((body = json_tokener_parse(r->body)) != NULL) {
		s = json_object_to_json_string_ext(
		    body,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (s == NULL)
			goto out;
		gw_buf_puts(buf, s);
	} else
		gw_buf_json_str(buf, r->body, r->bodylen);
	gw_buf_add(buf, "}", 1);
	rc = buf->overflow ? -1 : 0;
out:
	json_object_put(body);
	return rc;
}
