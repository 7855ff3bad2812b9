/*
 * systemd integration: the socket systemd passes and the Type=notify
 * messages (sd.h).  The only file that includes <systemd/sd-daemon.h>.
 * Owns nothing after it returns: the passed descriptors belong to the
 * caller, and the notification socket is opened per message by
 * libsystemd.  Never touches the socket's file system path: the socket
 * unit (or whoever holds the socket across restarts) owns it.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "gw.h"
#include "sd.h"

/* A passed descriptor that is a listening unix or TCP stream socket. */
static int
is_listener(int fd)
{
	return sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) > 0 ||
	       sd_is_socket_inet(fd, 0, SOCK_STREAM, 1, 0) > 0;
}

/* A passed descriptor that is a connected (not listening) one. */
static int
is_connection(int fd)
{
	return sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 0) > 0 ||
	       sd_is_socket_inet(fd, 0, SOCK_STREAM, 0, 0) > 0;
}

int
gw_sd_listen_fd(int *kept, size_t kept_max, size_t *nkept, char *err,
                size_t errlen)
{
	char **names = NULL;
	int i, n, fd = -1, nlisten = 0;

	*nkept = 0;
	n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		snprintf(err, errlen,
		         "listen \"systemd\": bad LISTEN_FDS/LISTEN_PID: %s",
		         strerror(-n));
		return -1;
	}
	for (i = 0; i < n; i++) {
		int d = SD_LISTEN_FDS_START + i;

		/* The previous process's kept connections, from the file
		 * descriptor store: ours now, the rest closed. */
		if (names != NULL && names[i] != NULL &&
		    strcmp(names[i], GW_SD_KEPT_NAME) == 0) {
			if (is_connection(d) && *nkept < kept_max)
				kept[(*nkept)++] = d;
			else
				close(d);
			continue;
		}
		nlisten++;
		fd = d;
	}
	for (i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
	/* systemd keeps its copies until told: a connection closed here
	 * must close for nginx too. */
	if (*nkept > 0)
		gw_sd_notify("FDSTOREREMOVE=1\nFDNAME=" GW_SD_KEPT_NAME);
	if (nlisten == 0) {
		snprintf(err, errlen,
		         "listen \"systemd\": no socket passed (LISTEN_FDS "
		         "unset or for another process): start hssgw.socket, "
		         "or name a socket in listen");
		return -1;
	}
	if (nlisten != 1) {
		snprintf(err, errlen,
		         "listen \"systemd\": %d sockets passed, exactly one "
		         "expected (one ListenStream= in hssgw.socket)",
		         nlisten);
		return -1;
	}
	/* A listening stream socket, unix or TCP: anything else (a
	 * datagram socket, Accept=yes's connection, a FIFO) is refused. */
	if (!is_listener(fd)) {
		snprintf(err, errlen,
		         "listen \"systemd\": fd %d is not a listening unix or "
		         "TCP stream socket",
		         fd);
		return -1;
	}
	return fd;
}

int
gw_sd_fdstore(int fd)
{
	return sd_pid_notify_with_fds(
	           0, 0, "FDSTORE=1\nFDNAME=" GW_SD_KEPT_NAME, &fd, 1) > 0
	           ? 0
	           : -1;
}

void
gw_sd_notify(const char *state)
{
	(void)sd_notify(0, state);
}

void
gw_sd_status(const char *text)
{
	char msg[216];

	snprintf(msg, sizeof(msg), "STATUS=%.200s", text);
	gw_sd_notify(msg);
}

void
gw_sd_reloading(void)
{
	char msg[64];

	/* CLOCK_MONOTONIC, as sd_notify(3) asks for MONOTONIC_USEC. */
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%lld",
	         (long long)gw_mono_us());
	gw_sd_notify(msg);
}

uint64_t
gw_sd_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}
