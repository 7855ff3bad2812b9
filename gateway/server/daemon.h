/*
 * The daemon's lifecycle (daemon.c): library init, startup, the signal
 * loop, reloads and the once-a-second refresh around the FastCGI front.
 */
#ifndef GW_DAEMON_H
#define GW_DAEMON_H

#include <stddef.h>

struct gw_gateway;

/*
 * Serves until SIGTERM or SIGINT; SIGHUP reloads, SIGUSR1 reopens the
 * audit file.  0 after a clean stop, -1 with a reason.
 */
int gw_daemon_run(struct gw_gateway *, char *err, size_t errlen);

#endif
