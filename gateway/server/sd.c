/*
 * systemd integration: the socket systemd passes and the Type=notify
 * messages (sd.h).  The only file that includes <systemd/sd-daemon.h>.
 * Owns nothing after it returns: the passed descriptor belongs to the
 * caller, and the notification socket is opened per message by
 * libsystemd.  Never touches the socket's file system path: the socket
 * unit (or whoever holds the socket across restarts) owns it.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "gw.h"
#include "sd.h"

int
gw_sd_listen_fd(char *err, size_t errlen)
{
	int n, fd = SD_LISTEN_FDS_START;

	n = sd_listen_fds(1);
	if (n < 0) {
		snprintf(err, errlen,
		         "listen \"systemd\": bad LISTEN_FDS/LISTEN_PID: %s",
		         strerror(-n));
		return -1;
	}
	if (n == 0) {
		snprintf(err, errlen,
		         "listen \"systemd\": no socket passed (LISTEN_FDS "
		         "unset or for another process): start hssgw.socket, "
		         "or name a socket in listen");
		return -1;
	}
	if (n != 1) {
		snprintf(err, errlen,
		         "listen \"systemd\": %d sockets passed, exactly one "
		         "expected (one ListenStream= in hssgw.socket)",
		         n);
		return -1;
	}
	/* A listening stream socket, unix or TCP: anything else (a
	 * datagram socket, Accept=yes's connection, a FIFO) is refused. */
	if (sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) <= 0 &&
	    sd_is_socket_inet(fd, 0, SOCK_STREAM, 1, 0) <= 0) {
		snprintf(err, errlen,
		         "listen \"systemd\": fd %d is not a listening unix or "
		         "TCP stream socket",
		         fd);
		return -1;
	}
	return fd;
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
