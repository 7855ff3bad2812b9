/*
 * Credentials: one provider per credentials entry, behind one interface.
 * A provider decorates an upstream request with what authenticates it
 * (today: X-Auth-Token from a token file), marking those headers secret.
 * Later providers (IAM password, agency, AK/SK signing) plug in here.
 * Never logs or returns secret values except into the request it decorates.
 */
#ifndef GW_CRED_H
#define GW_CRED_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gw.h"
#include "upreq.h"

struct gw_cred;

/* Creates the provider of a credentials entry; NULL with a reason. */
struct gw_cred *gw_cred_new(const struct gw_conf_cred *, char *err,
                            size_t errlen);
/* Frees a provider, wiping secrets; accepts NULL. */
void gw_cred_free(struct gw_cred *);
/*
 * Adds authentication to req at time now_ms.  fp receives a short
 * fingerprint of the credential used (for audit).  Returns
 * GW_ERR_CREDENTIALS when none is available.
 */
enum gw_err gw_cred_apply(struct gw_cred *, struct gw_upreq *req,
                          int64_t now_ms, char fp[17], struct gw_fault *);
/* The entry's name, borrowed. */
const char *gw_cred_name(const struct gw_cred *);

#endif
