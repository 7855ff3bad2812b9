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

Like systemd with FileDescriptorStoreMax= set, it also keeps a file
descriptor store (fdstore=True, the default): a NOTIFY_SOCKET of its own
(unless env names one) takes FDSTORE=1/FDNAME= messages with their
descriptors and FDSTOREREMOVE=1; the next process gets the stored ones
after the socket, fd 4 on, named in LISTEN_FDNAMES.  That is how kept
FastCGI connections outlive a restart (hssgw's fcgi.c).
"""

import array
import fcntl
import os
import signal
import socket
import subprocess
import tempfile
import threading

BACKLOG = 4096  # hssgw.socket's Backlog=


def fcntl_dup_above(fd, low):
    """fd moved to a number >= low (F_DUPFD), the old one closed."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD, low)
    os.close(fd)
    return new


class Holder:
    """One listening socket held across the service's processes."""

    def __init__(self, path, mode=0o660, fdstore=True):
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
        self.store = []  # [(name, fd)], the file descriptor store
        self.store_lock = threading.Lock()
        self.notify = None
        self.barrier = threading.Condition()
        self.barriers = 0  # barrier messages the thread has read
        if fdstore:
            self.notify_dir = tempfile.mkdtemp(prefix="sockhold.")
            self.notify_path = os.path.join(self.notify_dir, "notify")
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.notify.bind(self.notify_path)
            threading.Thread(target=self._notifications,
                             daemon=True).start()

    def _notifications(self):
        """FDSTORE=1 and FDSTOREREMOVE=1, as systemd takes them."""
        while True:
            fds = array.array("i")
            try:
                msg, anc, _, _ = self.notify.recvmsg(
                    4096, socket.CMSG_SPACE(253 * fds.itemsize))
            except OSError:
                return
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            kv = dict(line.split("=", 1) for line in
                      msg.decode(errors="replace").splitlines() if "=" in line)
            if "SOCKHOLD_BARRIER" in kv:
                with self.barrier:
                    self.barriers += 1
                    self.barrier.notify_all()
                continue
            name = kv.get("FDNAME", "stored")
            with self.store_lock:
                if kv.get("FDSTORE") == "1":
                    self.store.extend((name, fd) for fd in fds)
                    fds = []
                if kv.get("FDSTOREREMOVE") == "1":
                    for n, fd in [e for e in self.store if e[0] == name]:
                        os.close(fd)
                    self.store = [e for e in self.store if e[0] != name]
            for fd in fds:
                os.close(fd)

    def _sync(self):
        """Waits until every message sent before now has been read (as
        systemd reads a service's notifications before its exit): a
        message of our own, queued behind them."""
        if self.notify is None:
            return
        with self.barrier:
            want = self.barriers + 1
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.sendto(b"SOCKHOLD_BARRIER=1", self.notify_path)
        finally:
            s.close()
        with self.barrier:
            self.barrier.wait_for(lambda: self.barriers >= want, timeout=10)

    def stored(self):
        """How many descriptors the store holds now."""
        with self.store_lock:
            return len(self.store)

    def spawn(self, argv, env=None, **popen_kw):
        """Starts argv with the socket as fd 3 and the store's descriptors
        after it (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID the child's pid);
        env is added to the environment.  The Popen."""
        fd = self.sock.fileno()
        extra = dict(env or {})
        if self.notify is not None:
            extra.setdefault("NOTIFY_SOCKET", self.notify_path)
        with self.store_lock:
            stored = list(self.store)
        srcs = [fd] + [f for _, f in stored]
        names = ["hssgw.socket"] + [n for n, _ in stored]

        def child():
            # After fork, before exec: the child's own pid, fd 3 on.
            # Each source first moves above the targets, so none is
            # overwritten before it is copied.
            high = [os.dup(s) for s in srcs]
            high = [fcntl_dup_above(h, 3 + len(srcs)) for h in high]
            for i, h in enumerate(high):
                os.dup2(h, 3 + i)
            os.environ["LISTEN_FDS"] = str(len(srcs))
            os.environ["LISTEN_PID"] = str(os.getpid())
            os.environ["LISTEN_FDNAMES"] = ":".join(names)
            for k, v in extra.items():
                os.environ[k] = v

        return subprocess.Popen(argv, pass_fds=tuple(range(3, 3 + len(srcs))),
                                preexec_fn=child, **popen_kw)

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
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
            rc = -9
        self._sync()
        return rc

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
        with self.store_lock:
            for _, fd in self.store:
                os.close(fd)
            self.store = []
        if self.notify is not None:
            self.notify.close()
            os.unlink(self.notify_path)
            os.rmdir(self.notify_dir)
        if os.path.exists(self.path):
            os.unlink(self.path)
