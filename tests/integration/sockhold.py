"""What systemd does for a socket-activated service, as a stand-in for the
tests and bench/restart.py (no systemd runs as PID 1 here).

Holder(path).start(argv) binds a unix stream socket once (or adopts one
given as fd), then starts the service with the socket on fd 3,
LISTEN_FDS=1 and LISTEN_PID set to the child's own pid (sd_listen_fds(3)
checks it), so hssgw "listen": "systemd" takes it.  restart() is
systemctl restart: SIGTERM to the running process, wait for it to exit,
start the next one (argv may name another binary: an upgrade) on the same
socket; the socket never closes, so connections that arrive in between
wait in its backlog.  reload() is SIGHUP.  Python 3 stdlib only.
"""

import os
import signal
import socket
import subprocess

BACKLOG = 4096  # hssgw.socket's Backlog=


class Holder:
    """One listening socket held across the service's processes."""

    def __init__(self, path, mode=0o660):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)
        self.sock.bind(path)
        os.chmod(path, mode)
        self.sock.listen(BACKLOG)
        self.proc = None
        self.argv = None
        self.popen_kw = {}

    def spawn(self, argv, env=None, **popen_kw):
        """Starts argv with the socket as fd 3 (LISTEN_FDS=1, LISTEN_PID
        the child's pid); env is added to the environment.  The Popen."""
        fd = self.sock.fileno()
        extra = dict(env or {})

        def child():
            # After fork, before exec: the child's own pid, fd 3.
            os.dup2(fd, 3)
            os.environ["LISTEN_FDS"] = "1"
            os.environ["LISTEN_PID"] = str(os.getpid())
            os.environ["LISTEN_FDNAMES"] = "hssgw.socket"
            for k, v in extra.items():
                os.environ[k] = v

        return subprocess.Popen(argv, pass_fds=(3,), preexec_fn=child,
                                **popen_kw)

    def start(self, argv, env=None, **popen_kw):
        self.argv, self.env, self.popen_kw = list(argv), env, popen_kw
        self.proc = self.spawn(self.argv, env, **popen_kw)
        return self.proc

    def stop(self, timeout=20):
        """SIGTERM, as systemctl stop; SIGKILL after timeout.  Exit code."""
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return None if p is None else p.returncode
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
            return -9

    def restart(self, argv=None):
        """Stop, then start argv (default: the last one) on the same
        socket.  The old process's exit code and the new Popen."""
        rc = self.stop()
        if argv is not None:
            self.argv = list(argv)
        self.proc = self.spawn(self.argv, self.env, **self.popen_kw)
        return rc, self.proc

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def close(self):
        self.stop()
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
