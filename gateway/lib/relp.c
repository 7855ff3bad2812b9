/*
 * RELP client over librelp (relp.h).  librelp's client reports no
 * acknowledgement per message: relpCltSendSyslog returns once the frame
 * is written and the window has room, and unanswered frames are kept in
 * the session.  So a batch is one session whose window holds the whole
 * batch: connect, send every message, close.  The close waits for the
 * collector's answer to "close", which RELP sends after the answers to
 * every earlier command (librelp doc/relp.md: "Responses must be sent by
 * the server in the exact same order as commands"), and librelp reports
 * every failure on the way (an error answer, a timeout, a broken
 * connection, a TLS or authentication failure) through the engine's
 * error callbacks, which mark the batch failed.  The batch counts as
 * acknowledged only when no error was reported and every call succeeded.
 * The collector's name is resolved here and its addresses tried in turn
 * until one opens a session (librelp itself tries only the first).
 * Only this file includes <librelp.h>.
 */
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <librelp.h>

#include "relp.h"

/* At most this many of the collector's addresses are tried for one batch:
 * one that does not answer costs up to timeout_s. */
#define MAX_ADDRS 8

struct batch {
	int failed;
	char why[256];
};

struct gw_relp {
	relpEngine_t *engine;
	struct gw_relp_opts o;
};

static void
dbg(char *fmt, ...)
{
	(void)fmt; /* librelp calls it unconditionally */
}

static void
note(struct batch *b, const char *what, const char *msg, relpRetVal code)
{
	if (b == NULL)
		return;
	if (!b->failed)
		snprintf(b->why, sizeof(b->why), "%s: %s (librelp %d)",
		         what ? what : "relp", msg ? msg : "error", code);
	b->failed = 1;
}

static void
on_err(void *usr, char *obj, char *msg, relpRetVal code)
{
	note(usr, obj, msg, code);
}

static void
on_auth_err(void *usr, char *info, char *msg, relpRetVal code)
{
	note(usr, info, msg, code);
}

/* No user pointer: cannot name the batch; the calls' results and the
 * close still decide.  Reported so the operator sees it. */
static void
on_generic_err(char *obj, char *msg, relpRetVal code)
{
	fprintf(stderr, "hssgw: relp: %s: %s (librelp %d)\n", obj ? obj : "",
	        msg ? msg : "", code);
}

struct gw_relp *
gw_relp_new(const struct gw_relp_opts *opts, char *err, size_t errlen)
{
	struct gw_relp *r;

	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->o = *opts;
	if (relpEngineConstruct(&r->engine) != RELP_RET_OK ||
	    relpEngineSetDbgprint(r->engine, dbg) != RELP_RET_OK ||
	    relpEngineSetOnErr(r->engine, on_err) != RELP_RET_OK ||
	    relpEngineSetOnAuthErr(r->engine, on_auth_err) != RELP_RET_OK ||
	    relpEngineSetOnGenericErr(r->engine, on_generic_err) !=
	        RELP_RET_OK ||
	    relpEngineSetEnableCmd(r->engine, (unsigned char *)"syslog",
	                           eRelpCmdState_Required) != RELP_RET_OK) {
		snprintf(err, errlen, "relp: cannot set up the engine");
		gw_relp_free(r);
		return NULL;
	}
	return r;
}

void
gw_relp_free(struct gw_relp *r)
{
	if (r == NULL)
		return;
	if (r->engine != NULL)
		relpEngineDestruct(&r->engine);
	free(r);
}

/* librelp takes char * for strings it only copies. */
static char *
mut(const char *s)
{
	return (char *)(uintptr_t)s;
}

static relpRetVal
set_tls(relpClt_t *c, const struct gw_relp_opts *o)
{
	relpRetVal rc;
	size_t i;

	rc = relpCltEnableTLS(c);
	if (rc == RELP_RET_OK)
		rc = relpCltSetCACert(c, mut(o->ca_file));
	if (rc == RELP_RET_OK && o->cert_file != NULL)
		rc = relpCltSetOwnCert(c, mut(o->cert_file));
	if (rc == RELP_RET_OK && o->key_file != NULL)
		rc = relpCltSetPrivKey(c, mut(o->key_file));
	if (rc == RELP_RET_OK)
		rc = relpCltSetAuthMode(
		    c, mut(o->auth_mode ? o->auth_mode : "name"));
	for (i = 0; rc == RELP_RET_OK && i < o->npeers; i++)
		rc = relpCltAddPermittedPeer(c, mut(o->peers[i]));
	/* Name mode with no peer given: the collector's own host name. */
	if (rc == RELP_RET_OK && o->npeers == 0 &&
	    (o->auth_mode == NULL || strcmp(o->auth_mode, "name") == 0))
		rc = relpCltAddPermittedPeer(c, mut(o->host));
	return rc;
}

/* A client for one address of the collector, connected (TLS and RELP's
 * "open" included); NULL when it could not be, with the reason in B. */
static relpClt_t *
open_clt(struct gw_relp *r, int family, const char *addr, size_t n,
         struct batch *b)
{
	relpClt_t *c = NULL;
	relpRetVal rc;

	rc = relpEngineCltConstruct(r->engine, &c);
	if (rc == RELP_RET_OK)
		rc = relpCltSetUsrPtr(c, b);
	if (rc == RELP_RET_OK)
		rc = relpCltSetTimeout(c, (unsigned)r->o.timeout_s);
	if (rc == RELP_RET_OK)
		rc = relpCltSetConnTimeout(c, r->o.timeout_s);
	/* The whole batch in flight: the window never fills, and what
	 * decides is the answer to the close. */
	if (rc == RELP_RET_OK)
		rc = relpCltSetWindowSize(c, (int)n + 1);
	if (rc == RELP_RET_OK && r->o.tls)
		rc = set_tls(c, &r->o);
	if (rc == RELP_RET_OK)
		rc = relpCltConnect(c, family, (unsigned char *)mut(r->o.port),
		                    (unsigned char *)mut(addr));
	if (rc != RELP_RET_OK) {
		if (!b->failed)
			snprintf(
			    b->why, sizeof(b->why),
			    "relp connect to %s port %s failed (librelp %d)",
			    addr, r->o.port, rc);
		b->failed = 1;
		if (c != NULL)
			relpEngineCltDestruct(r->engine, &c);
		return NULL;
	}
	return c;
}

/* Appends "ADDR: WHY" to ERR, after " / " when ERR holds a reason
 * already (librelp's own reasons contain "; "), cut at ERRLEN. */
static void
add_reason(char *err, size_t errlen, const char *addr, const char *why)
{
	size_t used = strnlen(err, errlen);

	if (used + 1 >= errlen)
		return;
	snprintf(err + used, errlen - used, "%s%s: %s", used ? " / " : "", addr,
	         why);
}

int
gw_relp_send(struct gw_relp *r, const char *const *msgs, const size_t *lens,
             size_t n, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct batch b;
	relpClt_t *c = NULL;
	relpRetVal rc = RELP_RET_OK;
	char addr[64]; /* numeric: INET6_ADDRSTRLEN, "%", an interface */
	size_t i, tried = 0;
	int gai;

	if (errlen == 0)
		return -1;
	err[0] = '\0';
	memset(&b, 0, sizeof(b));
	/*
	 * librelp connects to the first address the name resolves to and
	 * to no other (src/tcp.c relpTcpConnect, 1.11): "localhost" is ::1
	 * first wherever /etc/hosts lists it (Debian's default), and a
	 * collector listening on 127.0.0.1 alone is then never reached.
	 * So the name is resolved here and each address tried in turn,
	 * by number; the TLS name check still uses the name (set_tls).
	 */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	gai = getaddrinfo(r->o.host, r->o.port, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "relp: cannot resolve %s port %s: %s",
		         r->o.host, r->o.port, gai_strerror(gai));
		return -1;
	}
	for (ai = res; ai != NULL && c == NULL && tried < MAX_ADDRS;
	     ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr),
		                NULL, 0, NI_NUMERICHOST) != 0)
			continue;
		tried++;
		memset(&b, 0, sizeof(b));
		c = open_clt(r, ai->ai_family, addr, n, &b);
		if (c == NULL)
			add_reason(err, errlen, addr, b.why);
	}
	freeaddrinfo(res);
	if (c == NULL) {
		if (tried == 0)
			snprintf(err, errlen, "relp: %s has no usable address",
			         r->o.host);
		return -1;
	}
	err[0] = '\0';
	relpCltHintBurstBegin(c);
	for (i = 0; i < n && rc == RELP_RET_OK && !b.failed; i++)
		rc = relpCltSendSyslog(c, (unsigned char *)mut(msgs[i]),
		                       lens[i]);
	relpCltHintBurstEnd(c);
	/* Closes the session, waiting for the close's answer. */
	relpEngineCltDestruct(r->engine, &c);
	if (rc != RELP_RET_OK || b.failed) {
		if (b.failed)
			snprintf(err, errlen, "%s", b.why);
		else
			snprintf(err, errlen,
			         "relp send to %s port %s failed (librelp %d)",
			         addr, r->o.port, rc);
		return -1;
	}
	return 0;
}
