/*
 * The one table that maps the error vocabulary to HTTP status, a stable
 * machine-readable code and a short description.  Codes are a public
 * contract (docs/openapi.yaml, "Error codes"): never renumber, only add.
 */
#include "gw.h"

static const struct {
	int status;
	const char *code;
	const char *text;
} errtab[GW_ERR__MAX] = {
    [GW_OK] = {200, "HSSGW.0000", "success"},
    [GW_ERR_BAD_REQUEST] = {400, "HSSGW.0001", "malformed request"},
    [GW_ERR_FIELD] = {400, "HSSGW.0002", "invalid field"},
    [GW_ERR_TOO_LARGE] = {413, "HSSGW.0003", "request body too large"},
    [GW_ERR_NOT_FOUND] = {404, "HSSGW.0004", "no such endpoint"},
    [GW_ERR_METHOD] = {405, "HSSGW.0005", "method not allowed"},
    [GW_ERR_MEDIA_TYPE] = {415, "HSSGW.0006", "unsupported media type"},
    [GW_ERR_UNAUTHENTICATED] = {401, "HSSGW.0101", "missing bearer token"},
    [GW_ERR_TOKEN_INVALID] = {401, "HSSGW.0102", "invalid bearer token"},
    [GW_ERR_DENIED] = {403, "HSSGW.0103", "denied by policy"},
    [GW_ERR_UPSTREAM] = {502, "HSSGW.0201", "upstream unreachable"},
    [GW_ERR_UPSTREAM_BAD] = {502, "HSSGW.0202", "upstream answer unusable"},
    [GW_ERR_UPSTREAM_TIMEOUT] = {504, "HSSGW.0203", "upstream timed out"},
    /* Never a 401: that would tell the caller its own JWT is wrong. */
    [GW_ERR_UPSTREAM_AUTH] = {502, "HSSGW.0204",
                              "HSS rejected the gateway's credentials"},
    [GW_ERR_CREDENTIALS] = {503, "HSSGW.0301",
                            "gateway credentials unavailable"},
    [GW_ERR_AUDIT] = {503, "HSSGW.0302", "audit trail unavailable"},
    [GW_ERR_NOMEM] = {503, "HSSGW.0303", "out of memory"},
    /* Answered by nginx itself (nginx/hssgw.conf.in); listed here so the
     * codes stay unique and in one table. */
    [GW_ERR_RATE_LIMITED] = {429, "HSSGW.0007", "too many requests"},
    [GW_ERR_UNAVAILABLE] = {503, "HSSGW.0304", "gateway unavailable"},
    [GW_ERR_CONFIG] = {500, "HSSGW.0901", "configuration error"},
    [GW_ERR_INTERNAL] = {500, "HSSGW.0902", "internal error"},
    /* One answer for missing, foreign and forged handles alike. */
    [GW_ERR_TASK_NOT_FOUND] = {404, "HSSGW.0008", "no such export task"},
    [GW_ERR_BUDGET] = {429, "HSSGW.0205",
                       "upstream call budget spent: retry later"},
    [GW_ERR_UPSTREAM_BUSY] = {429, "HSSGW.0206",
                              "HSS is throttling: retry later"},
    [GW_ERR_TASK_NOT_READY] = {409, "HSSGW.0009", "export task not finished"},
    /* reserve_threads: cheap routes keep workers while HSS is slow. */
    [GW_ERR_BUSY] = {503, "HSSGW.0305", "gateway busy: retry later"},
    /* Answered by nginx itself: a bad request line or oversized headers. */
    [GW_ERR_FRONT_REQUEST] = {400, "HSSGW.0010", "bad request"},
    /* jwks_max_stale_s passed without a good fetch: fail closed, and
     * not a 401, which would blame the caller's token. */
    [GW_ERR_JWKS_STALE] = {503, "HSSGW.0306",
                           "identity provider keys unavailable"},
    /* audit.ship.max_lag_s: records exist on this host only for too
     * long; fail closed as Vault does without an audit device. */
    [GW_ERR_SHIP_LAG] = {503, "HSSGW.0307",
                         "audit trail not shipped: retry later"},
};

_Static_assert(sizeof(errtab) / sizeof(errtab[0]) == GW_ERR__MAX,
               "every gw_err needs a row");

static int
valid(enum gw_err e)
{
	return (unsigned)e < GW_ERR__MAX && errtab[e].code != NULL;
}

const char *
gw_strerror(enum gw_err e)
{
	return valid(e) ? errtab[e].text : errtab[GW_ERR_INTERNAL].text;
}

int
gw_err_status(enum gw_err e)
{
	return valid(e) ? errtab[e].status : 500;
}

const char *
gw_err_code(enum gw_err e)
{
	return valid(e) ? errtab[e].code : errtab[GW_ERR_INTERNAL].code;
}
