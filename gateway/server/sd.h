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

/* The name kept FastCGI connections carry in systemd's file descriptor
 * store (FDSTORE=1, FDNAME=), and in LISTEN_FDNAMES when passed back. */
#define GW_SD_KEPT_NAME "hssgw-kept"

/*
 * The one listening stream socket systemd passed (LISTEN_FDS/LISTEN_PID,
 * fd 3 on), close-on-exec; the variables are unset so no child inherits
 * them.  -1 with a reason when there is none, more than one, or it is not
 * a listening unix or TCP stream socket.  Descriptors named
 * GW_SD_KEPT_NAME are the previous process's kept connections from the
 * file descriptor store: up to kept_max go to kept (*nkept), the rest
 * are closed, and systemd is told to drop its copies (FDSTOREREMOVE).
 */
int gw_sd_listen_fd(int *kept, size_t kept_max, size_t *nkept, char *err,
                    size_t errlen);
/*
 * Hands a copy of fd to the service manager's file descriptor store
 * (FDSTORE=1, FDNAME=GW_SD_KEPT_NAME): the next process of the service
 * gets it back.  0 when sent (systemd keeps it only with
 * FileDescriptorStoreMax= set), -1 without NOTIFY_SOCKET or on failure.
 * The caller still owns fd and closes it.
 */
int gw_sd_fdstore(int fd);
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
