/*
 * Where the client's bearer token comes from (--id-token SOURCE,
 * docs/CI.md): a CI job's own OIDC token, fetched when first needed and
 * again when the one held would expire soon.  Sources: github-actions
 * [:AUDIENCE] (GitHub's ACTIONS_ID_TOKEN_REQUEST_URL protocol), env:VAR,
 * file:PATH (read again, as the kubelet rotates a projected token), or a
 * fixed token (--token, HSSGW_TOKEN).  The token is never printed and no
 * message here quotes it, the request token or an answer body.
 */
#ifndef GW_IDTOKEN_H
#define GW_IDTOKEN_H

#include <stddef.h>

struct gw_idtok;

/* The audience github-actions asks for when SOURCE names none. */
#define GW_IDTOK_AUDIENCE "hssgw"

/*
 * A source from its SOURCE text; audience is the default for
 * github-actions (NULL: GW_IDTOK_AUDIENCE), cacert the CA file that
 * verifies the token endpoint (NULL: the system trust store).  NULL with
 * a message in err on a malformed SOURCE.  Free with gw_idtok_free.
 */
struct gw_idtok *gw_idtok_new(const char *source, const char *audience,
                              const char *cacert, char *err, size_t errlen);
/* A fixed token (--token, HSSGW_TOKEN), borrowed; NULL on no memory. */
struct gw_idtok *gw_idtok_fixed(const char *token);
/*
 * The token to send now: the one held, or a new one when there is none
 * yet or the one held expires within its margin (60 s, or half its
 * lifetime when shorter).  Borrowed until the next call or the free;
 * NULL with a message (naming no secret) in err.
 */
const char *gw_idtok_get(struct gw_idtok *, char *err, size_t errlen);
/* How many tokens the source produced so far (tests, messages). */
unsigned gw_idtok_fetches(const struct gw_idtok *);
/* Wipes the token held and frees; accepts NULL. */
void gw_idtok_free(struct gw_idtok *);

#endif
