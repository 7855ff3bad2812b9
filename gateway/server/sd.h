/*
 * systemd integration (sd.c), the only user of libsystemd: the listening
 * socket systemd passes (socket activation, "listen": "systemd") and the
 * service manager notifications of Type=notify (READY, STATUS, RELOADING,
 * STOPPING, WATCHDOG).  Without NOTIFY_SOCKET every notification is a
 * no-op, so the daemon calls them unconditionally.
 */
#ifndef GW_SD_H
#define GW_SD_H

#include <stddef.h>
#include <stdint.h>

/*
 * The one stream socket systemd passed (LISTEN_FDS/LISTEN_PID, fd 3),
 * close-on-exec; the variables are unset so no child inherits them.  -1
 * with a reason when there is none, more than one, or it is not a
 * listening unix or TCP stream socket.
 */
int gw_sd_listen_fd(char *err, size_t errlen);
/*
 * Sends one notification (newline-separated "KEY=value" lines) to the
 * service manager; a no-op without NOTIFY_SOCKET.  Never fails the caller.
 */
void gw_sd_notify(const char *state);
/* Sends "STATUS=<text>"; text is cut at 200 bytes. */
void gw_sd_status(const char *text);
/* Sends "RELOADING=1" with MONOTONIC_USEC= (systemd 253's reload
 * protocol; older managers ignore the extra line). */
void gw_sd_reloading(void);
/*
 * The watchdog interval in microseconds when the manager set one for this
 * process (WATCHDOG_USEC, WATCHDOG_PID), else 0.
 */
uint64_t gw_sd_watchdog_usec(void);

#endif
