/*
 * RELP client: delivers a batch of syslog messages to a collector and says
 * whether every one was acknowledged.  The only file that includes
 * <librelp.h> (Debian's librelp, plain TCP or TLS).  Knows nothing of the
 * audit trail; holds no message after the call returns.
 */
#ifndef GW_RELP_H
#define GW_RELP_H

#include <stddef.h>

struct gw_relp;

/* Where and how to connect; strings are borrowed for the handle's life. */
struct gw_relp_opts {
	const char *host;
	const char *port;
	int timeout_s; /* connect, and waiting for acknowledgements */
	int tls;
	const char *ca_file;
	const char *cert_file; /* NULL: no client certificate */
	const char *key_file;
	const char *auth_mode; /* "name", "fingerprint", "certvalid" */
	const char *const *peers;
	size_t npeers;
};

/* A client with its RELP engine; NULL with ERR on failure. */
struct gw_relp *gw_relp_new(const struct gw_relp_opts *opts, char *err,
                            size_t errlen);
/* Frees a client; accepts NULL. */
void gw_relp_free(struct gw_relp *);
/*
 * Sends MSGS[0..N) in one RELP session and closes it: 0 only when the
 * collector acknowledged every message (RELP answers in command order,
 * so the close's answer follows every message's); -1 with ERR otherwise,
 * when any of them may be lost and must be sent again.
 */
int gw_relp_send(struct gw_relp *, const char *const *msgs, const size_t *lens,
                 size_t n, char *err, size_t errlen);

#endif
