/*
 * The aksk provider: an access key from the config and its secret key
 * from a private file, signing every request with SDK-HMAC-SHA256
 * (hss-api-notes.md 5; the signer is aksk.c).  Owns the SK, wiped on free;
 * audit names the key by the AK's fingerprint, never the secret.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aksk.h"
#include "cred_int.h"

struct aksk {
	char *ak;
	char *sk; /* secret, NUL-terminated */
	size_t sksize;
	char fp[17]; /* of the AK: audit names the key, never the secret */
};

static int
aksk_load(struct gw_cred *c, const struct gw_conf_cred *cc, char *err,
          size_t errlen)
{
	struct aksk *a = NULL;

	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory", c->name);
		return -1;
	}
	c->state = a;
	a->ak = strdup(cc->access_key);
	if (a->ak == NULL) {
		snprintf(err, errlen, "credentials %s: out of memory", c->name);
		return -1;
	}
	gw_fingerprint(a->ak, strlen(a->ak), a->fp);
	return gw_cred_secret_read(c->name, cc->secret_key_file, &a->sk,
	                           &a->sksize, err, errlen);
}

static enum gw_err
aksk_apply(struct gw_cred *c, struct gw_upreq *req, const char *project_id,
           int64_t now_ms, char fp[17], struct gw_fault *f)
{
	const struct aksk *a = c->state;
	char err[128];

	if (a->sk == NULL)
		return gw_fault_set(f, GW_ERR_CREDENTIALS, "",
		                    "no secret key loaded for credentials %s",
		                    c->name);
	if (gw_aksk_sign(req, a->ak, a->sk, strlen(a->sk), project_id, now_ms,
	                 err, sizeof(err)) == -1)
		return gw_fault_set(f, GW_ERR_INTERNAL, "",
		                    "the upstream request could not be signed");
	memcpy(fp, a->fp, 17);
	return GW_OK;
}

static void
aksk_free(void *state)
{
	struct aksk *a = state;

	if (a == NULL)
		return;
	if (a->sk != NULL) {
		gw_wipe(a->sk, a->sksize);
		free(a->sk);
	}
	free(a->ak);
	gw_wipe(a, sizeof(*a));
	free(a);
}

const struct cred_ops gw_cred_aksk_ops = {
    .load = aksk_load,
    .apply = aksk_apply,
    .free = aksk_free,
};
