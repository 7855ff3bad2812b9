#!/usr/bin/env python3
"""systemd integration (issue 25): the packaged units pass
systemd-analyze verify; "listen": "systemd" takes the one socket passed
with LISTEN_FDS/LISTEN_PID and refuses to start without one (or with two,
or a datagram socket, or another process's); Type=notify: a NOTIFY_SOCKET
the test owns hears READY=1 only after the first JWKS fetch succeeded (the
IdP answers 503 first), STATUS= lines, WATCHDOG=1 at half WATCHDOG_USEC,
none while the main loop is stopped (SIGSTOP) and again after SIGCONT,
RELOADING=1 with MONOTONIC_USEC= then READY=1 around SIGHUP, STOPPING=1
on SIGTERM.  No systemd runs as PID 1: sockhold.Holder passes the socket
as systemd would.

Run: test_systemd.py --bin BUILD/bin --src SRC.  Python 3 stdlib plus
Debian's python3-jwcrypto (the test IdP).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import jwcrypto  # noqa: F401  (Debian's python3-jwcrypto)
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists(
            "/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import idp as idpmod  # noqa: E402
import runner  # noqa: E402
import sockhold  # noqa: E402
import stack as stk  # noqa: E402
from fixtures import ARGS  # noqa: E402

WATCHDOG_USEC = 1000000  # pings every 0.5 s


class Notify:
    """A NOTIFY_SOCKET (AF_UNIX datagram) the test owns: every message
    with its arrival time (monotonic)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.msgs = []
        self.lock = threading.Lock()
        self.done = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.msgs.append((time.monotonic(),
                                  data.decode("utf-8", "replace")))

    def since(self, t0, key=None):
        """Messages from t0 on; with key ("READY"), those holding
        key=..."""
        with self.lock:
            got = [(t, m) for t, m in self.msgs if t >= t0]
        if key is None:
            return got
        return [(t, m) for t, m in got
                if any(ln.startswith(key + "=") for ln in m.split("\n"))]

    def wait(self, key, t0, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.since(t0, key)
            if got:
                return got[0]
            time.sleep(0.05)
        raise AssertionError("no %s= since t0 within %.0fs; got %r" % (
            key, timeout, self.since(t0)))

    def close(self):
        self.done = True
        self.sock.close()


class NotifyStack(stk.Stack):
    """The usual stack plus an issuer whose keys come from the test IdP
    (answering 503 until told otherwise), hssgw socket-activated by a
    Holder and notifying the test's socket."""

    def __init__(self, *a, keys=(), **kw):
        super().__init__(*a, **kw)
        self.initial_keys = keys
        self.idp = None

    def _configs(self):
        super()._configs()
        self.idp = idpmod.IdP(self.path("tls", "server.pem"),
                              self.path("tls", "server.key")).start()
        self.idp.set_keys(self.initial_keys)
        self.idp.serve("down")
        self.config["jwt"]["issuers"].append({
            "issuer": self.idp.issuer, "audiences": [stk.AUDIENCE],
            "discovery_url": self.idp.issuer +
            "/.well-known/openid-configuration",
            "algorithms": ["RS256"], "jwks_ca_file": "tls/ca.pem",
            "jwks_refresh_s": 1})
        self.config["listen"] = "systemd"
        stk.write_file(self.config_path, json.dumps(self.config, indent=1))

    def _start_hssgw(self):
        stk.run([self.hssgw, "check-config", "--offline", "--config",
                 self.config_path])
        self.notify = Notify(self.path("notify.sock"))
        self.holder = sockhold.Holder(self.gw_sock)
        out = open(self.path("logs", "hssgw.log"), "ab")
        self.logs["hssgw"] = out
        self.procs["hssgw"] = self.holder.start(
            [self.hssgw, "serve", "--config", self.config_path],
            env={"NOTIFY_SOCKET": self.notify.path,
                 "WATCHDOG_USEC": str(WATCHDOG_USEC)},
            stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            cwd=self.state)

    def _wait_ready(self, timeout=20.0):
        # Not ready by design (the IdP is down): hssgw answers 503.
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if self.request("GET", "/healthz").status in (200, 503):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise stk.StackError("hssgw never answered /healthz\n" +
                             self.log_tail("hssgw"))

    def stop(self):
        holder = getattr(self, "holder", None)
        super().stop_backend()
        if holder is not None:
            holder.close()
        n = getattr(self, "notify", None)
        if n is not None:
            n.close()
        super().stop()
        if self.idp is not None:
            self.idp.stop()


def pings(msgs):
    return [t for t, m in msgs if m == "WATCHDOG=1"]


class Units(unittest.TestCase):
    """deploy/hssgw.service and deploy/hssgw.socket as systemd reads
    them."""

    def verify(self, service_text, socket_text):
        d = tempfile.mkdtemp(prefix="hssgw-units-")
        try:
            for name, text in (("hssgw.service", service_text),
                               ("hssgw.socket", socket_text)):
                with open(os.path.join(d, name), "w") as f:
                    f.write(text)
            return subprocess.run(
                ["systemd-analyze", "verify",
                 os.path.join(d, "hssgw.socket"),
                 os.path.join(d, "hssgw.service")],
                capture_output=True, text=True, timeout=60)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def units(self):
        with open(os.path.join(ARGS.src, "deploy", "hssgw.service")) as f:
            service = f.read()
        with open(os.path.join(ARGS.src, "deploy", "hssgw.socket")) as f:
            sock = f.read()
        # The binary where this build put it (verify checks ExecStart=).
        hssgw = os.path.abspath(os.path.join(ARGS.bin, "hssgw"))
        return service.replace("/usr/local/bin/hssgw", hssgw), sock

    def test_units_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze not installed")
        service, sock = self.units()
        p = self.verify(service, sock)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))
        # Positive controls: verify does read them (a bad key is reported,
        # a missing binary fails).
        p = self.verify(service, sock.replace("[Socket]",
                                              "[Socket]\nListenStrem=x"))
        self.assertIn("ListenStrem", p.stderr)
        p = self.verify(service.replace(
            os.path.abspath(os.path.join(ARGS.bin, "hssgw")),
            "/nonexistent/hssgw"), sock)
        self.assertNotEqual(p.returncode, 0)

    def test_units_say_notify_and_socket(self):
        service, sock = self.units()
        for want in ("Type=notify", "NotifyAccess=main", "WatchdogSec=",
                     "Requires=hssgw.socket", "ExecReload=",
                     "RuntimeDirectoryPreserve=yes"):
            self.assertIn(want, service)
        for want in ("ListenStream=/run/hssgw/hssgw.sock",
                     "SocketGroup=hssgw", "SocketMode=0660",
                     "WantedBy=sockets.target"):
            self.assertIn(want, sock)
        self.assertNotRegex(sock, r"(?m)^Accept=yes")


class Activation(unittest.TestCase):
    """One socket-activated hssgw and its notifications; the steps run
    in order and share the process."""

    @classmethod
    def setUpClass(cls):
        cls.key = idpmod.new_key("RSA", kid="k1")
        cls.s = NotifyStack(ARGS.bin, ARGS.src,
                            keys=[idpmod.public(cls.key)])
        cls.t_start = time.monotonic()
        cls.s.start()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_1_ready_only_after_first_jwks_fetch(self):
        """While the IdP answers 503, no READY=1 (but STATUS says why and
        the watchdog is fed); READY=1 follows the first good fetch."""
        n = self.s.notify
        self.s.idp.wait_fetches(2, timeout=15)
        time.sleep(1.0)
        self.assertEqual(n.since(self.t_start, "READY"), [])
        status = [m for _, m in n.since(self.t_start, "STATUS")]
        self.assertTrue(any("not ready: jwks" in m for m in status), status)
        self.assertGreater(len(pings(n.since(self.t_start))), 0)
        self.assertEqual(self.s.request("GET", "/healthz").status, 503)
        fetched = self.s.idp.fetches
        t_ok = time.monotonic()
        self.s.idp.serve("ok")
        t, msg = n.wait("READY", t_ok)
        self.assertGreater(self.s.idp.fetches, fetched)
        self.assertIn("STATUS=serving on systemd", msg)
        self.assertEqual(self.s.request("GET", "/healthz").status, 200)
        print("READY=1 %.2fs after the IdP recovered" % (t - t_ok))

    def test_2_watchdog_at_the_rate(self):
        """WATCHDOG_USEC=1 s: a ping every 0.5 s (half), whatever else the
        loop does."""
        t0 = time.monotonic()
        time.sleep(4.0)
        got = pings(self.s.notify.since(t0))
        self.assertGreaterEqual(len(got), 6, got)
        self.assertLessEqual(len(got), 10, got)
        gaps = [b - a for a, b in zip(got, got[1:])]
        self.assertLess(max(gaps), 0.9, gaps)

    def test_3_stopped_loop_stops_the_pings(self):
        """A stopped process (SIGSTOP) sends no ping, so systemd's
        watchdog would fire; after SIGCONT the pings resume."""
        p = self.s.procs["hssgw"]
        os.kill(p.pid, signal.SIGSTOP)
        try:
            time.sleep(0.3)  # a datagram already on its way
            t0 = time.monotonic()
            time.sleep(2.5)
            self.assertEqual(pings(self.s.notify.since(t0)), [])
        finally:
            os.kill(p.pid, signal.SIGCONT)
        t1 = time.monotonic()
        self.s.notify.wait("WATCHDOG", t1, timeout=2.0)

    def test_4_reload_says_reloading_then_ready(self):
        t0 = time.monotonic()
        self.s.holder.reload()
        t_rel, msg = self.s.notify.wait("RELOADING", t0)
        self.assertRegex(msg, r"(?m)^MONOTONIC_USEC=\d+$")
        usec = int(re.search(r"MONOTONIC_USEC=(\d+)", msg).group(1))
        # CLOCK_MONOTONIC, the clock time.monotonic() reads on Linux.
        self.assertLess(abs(usec / 1e6 - t_rel), 2.0)
        t_ready, _ = self.s.notify.wait("READY", t0)
        self.assertGreaterEqual(t_ready, t_rel)
        self.assertEqual(self.s.request("GET", "/healthz").status, 200)

    def test_5_refuses_without_the_socket(self):
        """"listen": "systemd" and no socket, two sockets, a datagram
        socket or another process's LISTEN_PID: exit 1 with a reason."""
        c = dict(self.s.config)
        c["audit"] = {"file": "audit/refused.jsonl"}
        conf = self.s.path("refused.json")
        stk.write_file(conf, json.dumps(c))
        argv = [self.s.hssgw, "serve", "--config", conf]

        def serve(env, pass_fds=()):
            e = {k: v for k, v in os.environ.items()
                 if not k.startswith("LISTEN_")}
            e.update(env)
            return subprocess.run(argv, env=e, pass_fds=pass_fds,
                                  capture_output=True, text=True,
                                  cwd=self.s.state, timeout=60)

        p = serve({})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("listen \"systemd\": no socket passed", p.stderr)
        p = serve({"LISTEN_FDS": "1", "LISTEN_PID": "1"})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("no socket passed", p.stderr)
        for kind, n, want in ((socket.SOCK_DGRAM, 1, "not a listening"),
                              (socket.SOCK_STREAM, 2, "2 sockets passed")):
            with self.subTest(kind=kind, n=n):
                socks = [socket.socket(socket.AF_UNIX, kind)
                         for _ in range(n)]
                fds = [s.fileno() for s in socks]

                def child(fds=fds, n=n):
                    for i, fd in enumerate(fds):
                        os.dup2(fd, 3 + i)
                    os.environ["LISTEN_FDS"] = str(n)
                    os.environ["LISTEN_PID"] = str(os.getpid())
                q = subprocess.run(argv, pass_fds=tuple(range(3, 3 + n)),
                                   preexec_fn=child, capture_output=True,
                                   text=True, cwd=self.s.state, timeout=60)
                for s in socks:
                    s.close()
                self.assertEqual(q.returncode, 1, q.stderr)
                self.assertIn(want, q.stderr)

    def test_6_stopping_on_sigterm(self):
        t0 = time.monotonic()
        rc = self.s.holder.stop()
        self.assertEqual(rc, 0, self.s.log_tail("hssgw"))
        _, msg = self.s.notify.wait("STOPPING", t0, timeout=5)
        self.assertIn("STATUS=stopping", msg)
        # The socket is the holder's: hssgw left its path in place.
        self.assertTrue(os.path.exists(self.s.gw_sock))
        self.s.procs.pop("hssgw", None)


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
