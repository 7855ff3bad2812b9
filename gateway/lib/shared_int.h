/*
 * Inside the shared-state module (shared.h): the hiredis helpers every
 * connection goes through (shared_redis.c) and the Redis Sentinel client
 * (shared_sentinel.c): asking the Sentinels where the master is, and one
 * thread subscribed to +switch-master on one of them.  shared.c owns the
 * pool and the budget and calls both; shared_sentinel.c calls only
 * shared_redis.c and tells shared.c of a failover through the callback
 * it was given.  Internal to lib/: no header outside includes this one.
 */
#ifndef GW_SHARED_INT_H
#define GW_SHARED_INT_H

#include <stddef.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "config.h"

/* shared_redis.c */

/*
 * Connects to unix_path (or host and port) with connect and command
 * timeouts tv, and authenticates (user may be NULL: requirepass; password
 * NULL: none).  The context is the caller's; NULL with a reason that
 * never names the password.
 */
redisContext *shr_connect(const char *unix_path, const char *host, int port,
                          struct timeval tv, const char *user,
                          const char *password, char *why, size_t cap);
/* A command's reply (the caller's); NULL when the connection failed. */
redisReply *shr_command(redisContext *, int argc, const char **argv);
/*
 * A secret file (owner-only), one trailing newline dropped: 0 with *out
 * the caller's (gw_secret_free), or -1 with a reason naming
 * shared_state.<key>, never the content.
 */
int shr_secret_read(const char *file, const char *key, char **out, char *err,
                    size_t errlen);

/* shared_sentinel.c */

struct shr_sentinels;

/*
 * The Sentinels of conf's shared_state (nshared_sentinels > 0), the
 * master name and the Sentinels' own credentials; NULL with a reason.
 */
struct shr_sentinels *shr_sent_new(const struct gw_config *, struct timeval tv,
                                   char *err, size_t errlen);
/*
 * Stops the watcher (waiting at most for the network step it is in,
 * each bounded by the timeouts), wipes the password; accepts NULL.
 */
void shr_sent_free(struct shr_sentinels *);
/*
 * Asks the Sentinels for the master's address (SENTINEL
 * get-master-addr-by-name), Sentinel first (SHR_SENT_LAST: the one that
 * answered last), then the others in order: 0 with host and port, or -1
 * with the last reason.  Thread-safe.
 */
#define SHR_SENT_LAST ((size_t)-1)
int shr_sent_ask(struct shr_sentinels *, size_t first, char *host,
                 size_t hostcap, int *port, char *why, size_t cap);
/*
 * Starts, once, the watcher thread: subscribed to +switch-master on one
 * reachable Sentinel (the next one, after a backoff, when it is lost), it
 * calls changed(arg, k) from its own thread, k the Sentinel that told,
 * when a well-formed +switch-master for our master name arrives (checks
 * at most four a second), again SHR_RECHECK_MS later, and after every
 * new subscription (a failover may have happened while it had none).
 * changed must ask the Sentinels itself: the message's address is never
 * passed on.  0 started (or already), -1 with a reason.
 */
#define SHR_RECHECK_MS 2500 /* Sentinels spread a new config every 2 s */
int shr_sent_watch(struct shr_sentinels *, void (*changed)(void *, size_t),
                   void *arg, char *why, size_t cap);
/*
 * A +switch-master payload, "<name> <old-ip> <old-port> <new-ip>
 * <new-port>" of len bytes: 1 for name, 0 for another master, -1
 * malformed (then ignored whatever name it starts with).
 */
int shr_switch_parse(const char *payload, size_t len, const char *name);

#endif
