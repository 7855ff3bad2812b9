/*
 * AK/SK signing: SDK-HMAC-SHA256, the API gateway's request signature
 * (hss-api-notes.md section 5, Go SDK core/auth/signer/signer.go).  Pure
 * functions over plain data: no I/O, no clock, no state.  The secret key is
 * borrowed for the call and never copied except into OpenSSL's HMAC context,
 * which is cleaned before returning.  Never prints the secret key; the
 * signature only goes into the Authorization header it signs.
 */
#ifndef GW_AKSK_H
#define GW_AKSK_H

#include <stddef.h>
#include <stdint.h>

#include "gw.h"
#include "upreq.h"

/* "YYYYMMDDTHHMMSSZ" plus NUL. */
#define GW_AKSK_DATE_LEN 17
/* Hex HMAC-SHA256 plus NUL. */
#define GW_AKSK_SIG_LEN 65

/*
 * One request as the signer sees it.  path is the URL path as sent
 * (percent-encoded, no query); query is the raw query without "?" (NULL or
 * "" for none); headers are the ones to sign, names in any case, values as
 * sent (x-sdk-date among them); body is the exact bytes sent.
 */
struct gw_aksk_msg {
	const char *method;
	const char *path;
	const char *query;
	const struct gw_header *headers;
	size_t nheaders;
	const void *body;
	size_t bodylen;
};

/* Formats now_ms as an X-Sdk-Date value (UTC); 0 or -1. */
int gw_aksk_date(int64_t now_ms, char out[GW_AKSK_DATE_LEN]);
/*
 * Appends the canonical request of m to out (caller owns and resets out).
 * The signed-header list is written to signed_hdrs (NUL-terminated, capped
 * at cap).  Returns 0, or -1 on a malformed path or query, or a cap.
 */
int gw_aksk_canonical(const struct gw_aksk_msg *m, struct gw_buf *out,
                      char *signed_hdrs, size_t cap);
/*
 * Computes the hex signature of m at sdk_date with the secret key sk.
 * Fills signed_hdrs like gw_aksk_canonical.  Returns 0 or -1.
 */
int gw_aksk_signature(const struct gw_aksk_msg *m, const char *sdk_date,
                      const void *sk, size_t sklen, char *signed_hdrs,
                      size_t cap, char sig[GW_AKSK_SIG_LEN]);
/*
 * Signs req in place at now_ms: sets X-Sdk-Date, X-Project-Id (when
 * project_id is not NULL) and the secret Authorization header, signing
 * host, x-sdk-date and, when present, region and x-project-id.  Returns 0,
 * or -1 with a reason (never holding a secret) in err.
 */
int gw_aksk_sign(struct gw_upreq *req, const char *ak, const void *sk,
                 size_t sklen, const char *project_id, int64_t now_ms,
                 char *err, size_t errlen);

#endif
