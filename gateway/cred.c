/*
 * Credential providers.  Each credentials entry of the config gets one
 * provider, chosen by its type from the static ops table below; a provider
 * owns its secret (process lifetime: loaded at startup, immutable after, so
 * it is shared read-only by every worker thread) and decorates upstream
 * requests with it as secret headers.  Today: "token_file", an IAM token
 * read from a private file.  Later types (iam_password, iam_agency, aksk)
 * add a row.  This module must never print, log or return a secret: error
 * messages name the entry and the file, never the contents, and every copy
 * is wiped when freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cred.h"

/* An IAM token is a few KiB; 32 KiB is the most HSS accepts in a header. */
#define TOKEN_MAX 32768
/* Room for trailing whitespace after the longest token (editors add "\n"). */
#define TOKEN_FILE_SLACK 1024

struct gw_cred;

/*
 * One row per provider type.  load fills c->state (NULL and -1 with a reason
 * naming the entry and file on failure); apply must be safe to call from
 * many threads at once; free wipes and frees the state and accepts NULL.
 */
struct cred_ops {
	const char *type;
	int (*load)(struct gw_cred *, const struct gw_conf_cred *, char *err,
	            size_t errlen);
	enum gw_err (*apply)(const struct gw_cred *, struct gw_upreq *,
	                     int64_t now_ms, char fp[17], struct gw_fault *);
	void (*free)(void *state);
};

struct gw_cred {
	char *name;
	const struct cred_ops *ops;
	void *state; /* owned by ops */
};

/* token_file state: immutable after load. */
struct token_file {
	char *token; /* NUL-terminated, validated */
	size_t size; /* bytes allocated, all wiped on free */
	char fp[17];
};

static int token_file_load(struct gw_cred *, const struct gw_conf_cred *,
                           char *, size_t);
static enum gw_err token_file_apply(const struct gw_cred *, struct gw_upreq *,
                                    int64_t, char[17], struct gw_fault *);
static void token_file_free(void *);

static const struct cred_ops cred_types[] = {
    {"token_file", token_file_load, token_file_apply, token_file_free},
};

static const struct cred_ops *
ops_get(const char *type)
{
	size_t i;

	for (i = 0; i < sizeof(cred_types) / sizeof(cred_types[0]); i++)
		if (strcmp(cred_types[i].type, type) == 0)
			return &cred_types[i];
	return NULL;
}

/*
 * Only visible ASCII (0x21-0x7e): a CR or LF would let the file inject
 * headers into the upstream request (RFC 9110 5.5 forbids them in field
 * values), and spaces or controls are never part of an IAM token.
 */
static int
token_byte_ok(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

static int
token_file_load(struct gw_cred *c, const struct gw_conf_cred *cc, char *err,
                size_t errlen)
{
	struct token_file *t = NULL;
	char rerr[512];
	char *buf = NULL;
	size_t len = 0, size = 0, i;
	int rc = -1;

	if (cc->file == NULL) {
		snprintf(err, errlen,
		         "credentials %s: token_file needs \"file\"", c->name);
		goto out;
	}
	if (gw_read_file(cc->file, TOKEN_MAX + TOKEN_FILE_SLACK, 1, &buf, &len,
	                 rerr, sizeof(rerr)) == -1) {
		snprintf(err, errlen, "credentials %s: %s", c->name, rerr);
		goto out;
	}
	size = len;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
	                   buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	if (len == 0 || len > TOKEN_MAX) {
		snprintf(
		    err, errlen,
		    "credentials %s: %s: token must be 1..%d bytes (has %zu)",
		    c->name, cc->file, TOKEN_MAX, len);
		goto out;
	}
	for (i = 0; i < len; i++) {
		if (!token_byte_ok((unsigned char)buf[i])) {
			snprintf(
			    err, errlen,
			    "credentials %s: %s: token has a space, control "
			    "or non-ASCII byte at offset %zu",
			    c->name, cc->file, i);
			goto out;
		}
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory", c->name);
		goto out;
	}
	gw_fingerprint(buf, len, t->fp);
	t->token = buf;
	t->size = size;
	buf = NULL;
	c->state = t;
	rc = 0;
out:
	if (buf != NULL) {
		gw_wipe(buf, size);
		free(buf);
	}
	return rc;
}

static enum gw_err
token_file_apply(const struct gw_cred *c, struct gw_upreq *req, int64_t now_ms,
                 char fp[17], struct gw_fault *f)
{
	const struct token_file *t = c->state;

	(void)now_ms; /* a token file does not expire on our clock */
	if (t == NULL || t->token == NULL)
		return gw_fault_set(f, GW_ERR_CREDENTIALS, "",
		                    "no token loaded for credentials %s",
		                    c->name);
	if (gw_upreq_set_header(req, "X-Auth-Token", t->token, 1) == -1)
		return gw_fault_set(f, GW_ERR_INTERNAL, "",
		                    "could not add the credential header");
	memcpy(fp, t->fp, 17);
	return GW_OK;
}

static void
token_file_free(void *state)
{
	struct token_file *t = state;

	if (t == NULL)
		return;
	if (t->token != NULL) {
		gw_wipe(t->token, t->size);
		free(t->token);
	}
	gw_wipe(t, sizeof(*t));
	free(t);
}

struct gw_cred *
gw_cred_new(const struct gw_conf_cred *cc, char *err, size_t errlen)
{
	struct gw_cred *c = NULL, *res = NULL;
	const struct cred_ops *ops = NULL;

	if (cc == NULL || cc->name == NULL || cc->type == NULL) {
		snprintf(err, errlen, "credentials entry needs name and type");
		goto out;
	}
	ops = ops_get(cc->type);
	if (ops == NULL) {
		snprintf(err, errlen, "credentials %s: unknown type \"%s\"",
		         cc->name, cc->type);
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory",
		         cc->name);
		goto out;
	}
	c->ops = ops;
	c->name = strdup(cc->name);
	if (c->name == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory",
		         cc->name);
		goto out;
	}
	if (ops->load(c, cc, err, errlen) == -1)
		goto out;
	res = c;
	c = NULL;
out:
	gw_cred_free(c);
	return res;
}

void
gw_cred_free(struct gw_cred *c)
{
	if (c == NULL)
		return;
	if (c->ops != NULL)
		c->ops->free(c->state);
	free(c->name);
	free(c);
}

enum gw_err
gw_cred_apply(struct gw_cred *c, struct gw_upreq *req, int64_t now_ms,
              char fp[17], struct gw_fault *f)
{
	if (c == NULL || req == NULL)
		return gw_fault_set(f, GW_ERR_CREDENTIALS, "",
		                    "no credentials configured");
	return c->ops->apply(c, req, now_ms, fp, f);
}

const char *
gw_cred_name(const struct gw_cred *c)
{
	return c->name;
}
