/*
 * Credential providers: the front.  Each credentials entry of the config
 * gets one provider, chosen by its type from the table below, each in a
 * file of its own:
 *
 *   token_file    an IAM token in a private file, re-read when the file's
 *                 inode, size or mtime changes (cred_token.c);
 *   iam_password  POST {iam_endpoint}/v3/auth/tokens with a password
 *                 (hss-api-notes.md 4.1), one token per project scope;
 *   iam_agency    the same call with "assume_role" (4.2), authenticated by
 *                 a domain-scoped token of its base iam_password entry
 *                 (both cred_iam.c);
 *   aksk          SDK-HMAC-SHA256 signing of every request (5, cred_aksk.c
 *                 over aksk.c's signer).
 *
 * This file owns the gw_cred_* interface (cred.h), which reaches a
 * provider only through its ops row (cred_int.h), the readers of the
 * one-line secret files every provider shares, and THE credential header
 * table ("hssgw translate" shows it).
 *
 * Secrets (tokens, the SK) are process-lifetime inside their provider's
 * state and wiped when replaced or freed; passwords are read from their
 * file for each IAM call and wiped right after.  This module must never
 * print, log or return a secret: faults and errors name the entry and the
 * file, never the contents.  The clock is always a parameter (now_ms),
 * never read here.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cred.h"
#include "cred_int.h"

/* An IAM token is a few KiB; 32 KiB is the most HSS accepts in a header. */
#define TOKEN_MAX 32768
/* Room for trailing whitespace after the longest token (editors add "\n"). */
#define TOKEN_FILE_SLACK 1024
/* Passwords and secret keys: far below this; the cap bounds the read. */
#define SECRET_FILE_MAX 4096

/* ---- secret files --------------------------------------------------- */

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

/*
 * The two kinds of one-line secret file, as data: an IAM token (goes into
 * a header: visible ASCII only, trailing whitespace dropped) and a
 * password or secret key (one UTF-8 line without control bytes, trailing
 * CR/LF dropped).
 */
enum secret_kind { SK_TOKEN, SK_LINE, SK__MAX };

static const struct secret_rule {
	size_t file_max;
	size_t max; /* bytes after trimming */
	const char *trim;
	const char *what;
} secret_rules[SK__MAX] = {
    [SK_TOKEN] = {TOKEN_MAX + TOKEN_FILE_SLACK, TOKEN_MAX, "\r\n \t", "token"},
    [SK_LINE] = {SECRET_FILE_MAX, SECRET_FILE_MAX, "\r\n", "secret"},
};

static int
secret_byte_ok(enum secret_kind k, unsigned char c)
{
	if (k == SK_TOKEN)
		return token_byte_ok(c);
	return c >= 0x20 && c != 0x7f;
}

/*
 * Reads a secret file of the given kind into *out (owned; its allocated
 * size, for wiping, in *size).  The reason names the entry, the file and
 * at most an offset, never a byte of the secret.
 */
static int
secret_read_kind(enum secret_kind k, const char *name, const char *file,
                 char **out, size_t *size, char *err, size_t errlen)
{
	const struct secret_rule *r = &secret_rules[k];
	char rerr[512];
	char *buf = NULL;
	size_t len = 0, sz = 0, i;
	int rc = -1;

	if (gw_read_file(file, r->file_max, 1, &buf, &len, rerr,
	                 sizeof(rerr)) == -1) {
		snprintf(err, errlen, "credentials %s: %s", name, rerr);
		goto out;
	}
	sz = len + 1;
	while (len > 0 && strchr(r->trim, buf[len - 1]) != NULL)
		len--;
	buf[len] = '\0';
	if (len == 0 || len > r->max ||
	    (k == SK_LINE && !gw_utf8_valid(buf, len))) {
		snprintf(err, errlen,
		         "credentials %s: %s: %s must be one non-empty line of "
		         "at most %zu bytes",
		         name, file, r->what, r->max);
		goto out;
	}
	for (i = 0; i < len; i++)
		if (!secret_byte_ok(k, (unsigned char)buf[i])) {
			snprintf(err, errlen,
			         "credentials %s: %s: %s has a %s byte at "
			         "offset %zu",
			         name, file, r->what,
			         k == SK_TOKEN ? "space, control or non-ASCII"
			                       : "control",
			         i);
			goto out;
		}
	*out = buf;
	*size = sz;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		gw_wipe(buf, sz);
		free(buf);
	}
	return rc;
}

int
gw_cred_token_read(const char *name, const char *file, char **out, size_t *size,
                   char *err, size_t errlen)
{
	return secret_read_kind(SK_TOKEN, name, file, out, size, err, errlen);
}

int
gw_cred_secret_read(const char *name, const char *file, char **out,
                    size_t *size, char *err, size_t errlen)
{
	return secret_read_kind(SK_LINE, name, file, out, size, err, errlen);
}

/* 1..TOKEN_MAX visible ASCII bytes. */
int
gw_cred_token_ok(const char *t)
{
	size_t i;

	if (t == NULL || t[0] == '\0')
		return 0;
	for (i = 0; t[i] != '\0'; i++)
		if (i == TOKEN_MAX || !token_byte_ok((unsigned char)t[i]))
			return 0;
	return 1;
}

/* ---- the provider table and the interface ------------------------- */

/* The config's credential types and the provider of each. */
static const struct cred_type {
	const char *type;
	const struct cred_ops *ops;
} cred_types[] = {
    {"token_file", &gw_cred_token_file_ops},
    {"iam_password", &gw_cred_iam_ops},
    {"iam_agency", &gw_cred_iam_ops},
    {"aksk", &gw_cred_aksk_ops},
};

static const struct cred_ops *
ops_get(const char *type)
{
	size_t i;

	for (i = 0; i < sizeof(cred_types) / sizeof(cred_types[0]); i++)
		if (strcmp(cred_types[i].type, type) == 0)
			return cred_types[i].ops;
	return NULL;
}

/* The keys a type reads, checked again here: tests skip config.c. */
static int
keys_present(const struct gw_conf_cred *cc)
{
	if (strcmp(cc->type, "token_file") == 0)
		return cc->file != NULL;
	if (strcmp(cc->type, "iam_password") == 0)
		return cc->user != NULL && cc->domain != NULL &&
		       cc->password_file != NULL;
	if (strcmp(cc->type, "iam_agency") == 0)
		return cc->domain != NULL && cc->agency != NULL &&
		       cc->base_cred != NULL && cc->base_cred->user != NULL &&
		       cc->base_cred->domain != NULL &&
		       cc->base_cred->iam_endpoint != NULL;
	return cc->access_key != NULL && cc->secret_key_file != NULL;
}

struct gw_cred *
gw_cred_new(const struct gw_config *conf, const struct gw_conf_cred *cc,
            char *err, size_t errlen)
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
	if (!keys_present(cc)) {
		snprintf(err, errlen,
		         "credentials %s: missing keys for type %s", cc->name,
		         cc->type);
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory",
		         cc->name);
		goto out;
	}
	c->ops = ops;
	c->conf = conf;
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

void
gw_cred_set_sender(struct gw_cred *c, gw_cred_send_fn fn, void *arg)
{
	if (c == NULL || c->ops->set_sender == NULL)
		return;
	c->ops->set_sender(c, fn, arg);
}

enum gw_err
gw_cred_apply(struct gw_cred *c, struct gw_upreq *req, const char *project_id,
              int64_t now_ms, char fp[17], struct gw_fault *f)
{
	if (c == NULL || req == NULL)
		return gw_fault_set(f, GW_ERR_CREDENTIALS, "",
		                    "no credentials configured");
	return c->ops->apply(c, req, project_id, now_ms, fp, f);
}

void
gw_cred_invalidate(struct gw_cred *c, const char *project_id, const char fp[17])
{
	if (c != NULL && project_id != NULL && fp != NULL &&
	    c->ops->invalidate != NULL)
		c->ops->invalidate(c, project_id, fp);
}

enum gw_err
gw_cred_prime(struct gw_cred *c, const char *project_id, int64_t now_ms,
              struct gw_fault *f)
{
	if (c == NULL)
		return gw_fault_set(f, GW_ERR_CREDENTIALS, "",
		                    "no credentials configured");
	if (c->ops->prime == NULL)
		return GW_OK;
	if (project_id == NULL || project_id[0] == '\0')
		return gw_fault_set(f, GW_ERR_INTERNAL, "",
		                    "no project scope for credentials");
	return c->ops->prime(c, project_id, now_ms, f);
}

int
gw_cred_ready(struct gw_cred *c, int64_t now_ms)
{
	if (c == NULL)
		return 0;
	if (c->ops->ready == NULL)
		return 1;
	return c->ops->ready(c, now_ms);
}

const char *
gw_cred_name(const struct gw_cred *c)
{
	return c->name;
}

int
gw_cred_expiry(struct gw_cred *c, const char *project_id, int64_t *exp_ms)
{
	*exp_ms = 0;
	if (c == NULL || c->ops->expiry == NULL || project_id == NULL)
		return 0;
	*exp_ms = c->ops->expiry(c, project_id);
	return 1;
}

void
gw_cred_refreshes(const struct gw_cred *c, unsigned long long *ok,
                  unsigned long long *failed)
{
	*ok = *failed = 0;
	if (c == NULL)
		return;
	*ok = atomic_load_explicit(&((struct gw_cred *)c)->fetch_ok,
	                           memory_order_relaxed);
	*failed = atomic_load_explicit(&((struct gw_cred *)c)->fetch_failed,
	                               memory_order_relaxed);
}

static const struct gw_cred_header cred_headers[] = {
    {"token_file", "X-Auth-Token", "<redacted>", 1},
    {"iam_password", "X-Auth-Token", "<redacted>", 1},
    {"iam_agency", "X-Auth-Token", "<redacted>", 1},
    {"aksk", "X-Sdk-Date", "<YYYYMMDDTHHMMSSZ at send time>", 0},
    {"aksk", "X-Project-Id", NULL, 0},
    {"aksk", "Authorization", "<redacted>", 1},
};

const struct gw_cred_header *
gw_cred_headers(size_t *n)
{
	*n = sizeof(cred_headers) / sizeof(cred_headers[0]);
	return cred_headers;
}

int
gw_cred_show_headers(struct gw_upreq *req, const char *type,
                     const char *project_id)
{
	const struct gw_cred_header *h;
	const char *v;
	size_t i;
	int found = 0;

	if (req == NULL || type == NULL)
		return -1;
	for (i = 0; i < sizeof(cred_headers) / sizeof(cred_headers[0]); i++) {
		h = &cred_headers[i];
		if (strcmp(h->type, type) != 0)
			continue;
		found = 1;
		v = h->shown != NULL ? h->shown : project_id;
		if (v == NULL ||
		    gw_upreq_set_header(req, h->name, v, h->secret) == -1)
			return -1;
	}
	return found ? 0 : -1;
}
