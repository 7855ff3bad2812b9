#!/usr/bin/env python3
"""Redis Sentinel (issue 25): shared_state names three Sentinels and a
master name instead of one Redis.  Debian's redis-server as master and
replica, three redis-sentinel on loopback (quorum 2, down after 1 s),
three hssgw instances behind nginx, the emulator with HSS's limit on (5
a minute).  Each class starts its own.

Failover: a steady stream of distinct exports (one a second), the
master killed with SIGKILL: the Sentinels promote the replica, every
instance follows by itself, and since the new master may lack the last
grants (asynchronous replication) it is treated as a Redis that lost its
data: no grant until a window has passed since the old master was lost.
Pins: HSS never sees more than 5 exports in any 60 s and never answers
429, no export reaches HSS twice, exports resume by themselves; prints
the time from the kill to the first granted export.  About 90 s (the
whole file about 140 s).

ManualFailover: SENTINEL FAILOVER with the old master left up (it stays
a writable master for seconds after the switch, so no error can tell
hssgw): every instance follows on +switch-master alone, within 5 s, with
no request in between, and holds grants as after any failover.

HostileSentinel: a fake Sentinel first in the list (the watcher
subscribes to it) forges +switch-master messages: another master's,
malformed ones, one for our master with a decoy's address (hssgw asks
the Sentinels again and never connects to the decoy), an oversized
frame (the subscription is dropped, not buffered), and, with the fake
naming the replica, ROLE refuses it.

Run: test_sentinel.py --bin BUILD/bin --src SRC.  Needs redis-server,
redis-sentinel and redis-cli.
"""

import os
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
import runner  # noqa: E402
import stack as stk  # noqa: E402
from fixtures import (ARGS, TASK_BODY as BODY, TaskStack,  # noqa: E402
                      max_in_window)

MASTER = "hssgw-it"
EXPORT_SUFFIX = "/image/baseline/export"


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port)] + list(args),
                          capture_output=True, text=True,
                          timeout=10).stdout.split()


class Sentinels:
    """A master, a replica and three Sentinels on loopback TCP."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hssgw-sn-")
        self.master_port = stk.free_port()
        self.replica_port = stk.free_port()
        self.sentinel_ports = [stk.free_port() for _ in range(3)]
        self.procs = {}

    def _server(self, name, port, extra=()):
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--dbfilename", name + ".rdb",
                "--logfile", os.path.join(self.dir, name + ".log")]
        self.procs[name] = subprocess.Popen(
            argv + list(extra), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        self._server("master", self.master_port)
        self._server("replica", self.replica_port,
                     ["--replicaof", "127.0.0.1", str(self.master_port)])
        for i, port in enumerate(self.sentinel_ports):
            conf = os.path.join(self.dir, "sentinel-%d.conf" % i)
            stk.write_file(conf, (
                "port %d\nbind 127.0.0.1\ndir %s\n"
                "logfile %s/sentinel-%d.log\n"
                "sentinel monitor %s 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds %s 1000\n"
                "sentinel failover-timeout %s 10000\n"
                "sentinel parallel-syncs %s 1\n") % (
                    port, self.dir, self.dir, i, MASTER, self.master_port,
                    MASTER, MASTER, MASTER), 0o600)
            self.procs["sentinel-%d" % i] = subprocess.Popen(
                ["redis-sentinel", conf], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Ready: every Sentinel knows the replica and the two others.
        deadline = time.monotonic() + 30
        while True:
            ok = all(
                "127.0.0.1" in cli(p, "SENTINEL", "replicas", MASTER) and
                cli(p, "SENTINEL", "sentinels", MASTER).count("name") == 2
                for p in self.sentinel_ports)
            if ok and cli(self.replica_port, "ROLE")[:1] == ["slave"]:
                return self
            if time.monotonic() > deadline:
                raise AssertionError("Sentinels not ready")
            time.sleep(0.3)

    def master(self):
        return cli(self.sentinel_ports[0], "SENTINEL",
                   "get-master-addr-by-name", MASTER)

    def kill_master(self):
        p = self.procs.pop("master")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=5)

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelStack(TaskStack):
    """TaskStack with several instances (their configs written after
    TaskStack's tasks settings)."""

    def _configs(self):
        super()._configs()
        self.write_instance_configs()

    def healthz(self):
        r = self.request("GET", "/healthz")
        return r.status, r.json()

    def exports_seen(self):
        return [e for e in self.emulator_lines()
                if e["method"] == "POST" and e["path"].endswith(EXPORT_SUFFIX)]


class Stream:
    """One distinct export a second until stop(): (time, status, name)."""

    def __init__(self, s, token):
        self.s, self.token = s, token
        self.seen = []
        self.done = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        i = 0
        while not self.done.is_set():
            t0 = time.monotonic()
            name = "sn%d" % i
            i += 1
            try:
                st = self.s.export(dict(BODY, image_name=name),
                                   token=self.token).status
            except OSError as e:
                st = repr(e)
            self.seen.append((time.monotonic(), st, name))
            self.done.wait(max(0.0, 1.0 - (time.monotonic() - t0)))

    def granted_after(self, t):
        return [x for x in self.seen if x[0] > t and x[1] == 200]

    def stop(self):
        self.done.set()
        self.t.join(timeout=30)


class SentinelCase(unittest.TestCase):
    """Its own master, replica and Sentinels, and a stack of INSTANCES
    over them; extra_sentinels() come first in the list."""
    INSTANCES = 1

    @classmethod
    def extra_sentinels(cls):
        return []

    @classmethod
    def close_extra(cls):
        pass

    @classmethod
    def setUpClass(cls):
        for b in ("redis-server", "redis-sentinel", "redis-cli"):
            if shutil.which(b) is None:
                raise unittest.SkipTest(b + " not installed")
        cls.sn = Sentinels().start()
        try:
            cls.s = SentinelStack(
                ARGS.bin, ARGS.src, threads=4, instances=cls.INSTANCES,
                config_extra={"shared_state": {
                    "sentinels": cls.extra_sentinels() +
                    ["127.0.0.1:%d" % p for p in cls.sn.sentinel_ports],
                    "master_name": MASTER,
                    "expected_instances": cls.INSTANCES,
                    "timeout_ms": 200}},
                tasks={"budget_per_minute": 5})
            cls.s.start()
        except BaseException:
            cls.close_extra()
            cls.sn.close()
            raise
        cls.s.tasks_ctl({"limit_per_minute": 5})

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        cls.close_extra()
        cls.sn.close()


class Failover(SentinelCase):
    INSTANCES = 3

    def test_failover_never_fails_open(self):
        self.assertEqual(self.sn.master(),
                         ["127.0.0.1", str(self.sn.master_port)])
        stream = Stream(self.s, self.s.mint(sub="stream", ttl=3600))
        try:
            # Shared through the master: the budget's keys are there.
            deadline = time.monotonic() + 20
            while len([x for x in stream.seen if x[1] == 200]) < 5:
                self.assertLess(time.monotonic(), deadline, stream.seen)
                time.sleep(0.2)
            self.assertIn("hssgw:budget:",
                          " ".join(cli(self.sn.master_port, "KEYS", "*")))
            time.sleep(1.0)
            self.sn.kill_master()
            t_kill = time.monotonic()
            # The Sentinels promote the replica.
            while self.sn.master() != ["127.0.0.1",
                                       str(self.sn.replica_port)]:
                self.assertLess(time.monotonic(), t_kill + 30)
                time.sleep(0.2)
            t_promoted = time.monotonic()
            while not stream.granted_after(t_kill):
                self.assertLess(time.monotonic(), t_kill + 90,
                                stream.seen[-5:])
                time.sleep(0.2)
            t_first = stream.granted_after(t_kill)[0][0]
            time.sleep(3.0)
        finally:
            stream.stop()
        print("failover: promoted %.1f s after the kill, first granted "
              "export %.1f s after the kill" % (t_promoted - t_kill,
                                                 t_first - t_kill))
        # Every answer was a grant or hssgw's own 429 (budget), never an
        # error; HSS never saw more than its limit and never said 429.
        self.assertEqual({x[1] for x in stream.seen} - {200, 429}, set(),
                         stream.seen)
        calls = self.s.exports_seen()
        self.assertLessEqual(max_in_window([e["time_ms"] for e in calls]),
                             5)
        self.assertEqual(self.s.tasks_ctl()["throttled"], 0)
        # No export sent twice: every body reached HSS at most once.
        bodies = [e["body"] for e in calls]
        self.assertEqual(len(bodies), len(set(bodies)))
        self.assertEqual(len(calls),
                         len([x for x in stream.seen if x[1] == 200]))
        # The new master holds the budget again; instances said why.
        self.assertIn("hssgw:budget:",
                      " ".join(cli(self.sn.replica_port, "KEYS", "*")))
        logs = "".join(self.s.log_tail("hssgw-%d" % i, 1 << 20)
                       for i in range(1, 4))
        self.assertIn("new master 127.0.0.1:%d" % self.sn.replica_port,
                      logs)
        self.assertGreaterEqual(t_first - t_kill, 60.0)
        st, doc = self.s.healthz()
        self.assertEqual((st, doc.get("shared_state")), (200, "ok"))


def wait_for(what, pred, timeout, step=0.1):
    """pred() within timeout seconds; the time it took."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out: " + what)
        time.sleep(step)
    return time.monotonic() - t0


def instance_logs(s, n):
    return ["".join(s.log_tail("hssgw-%d" % i, 1 << 20))
            for i in range(1, n + 1)]


def reach_all(s, n, marker="watching +switch-master"):
    """Requests until every instance's watcher runs (it starts with the
    instance's first call to Redis; nginx spreads /healthz round robin)."""
    def ok():
        s.healthz()
        return all(marker in log for log in instance_logs(s, n))
    wait_for("every instance watching", ok, 20, 0.2)


class ManualFailover(SentinelCase):
    INSTANCES = 2

    def test_switch_master_followed_without_an_error(self):
        token = self.s.mint(sub="manual", ttl=3600)
        for i in range(2):
            r = self.s.export(dict(BODY, image_name="mf%d" % i), token=token)
            self.assertEqual(r.status, 200, r)
        reach_all(self.s, 2)
        self.assertIn("hssgw:budget:",
                      " ".join(cli(self.sn.master_port, "KEYS", "*")))
        new = "new master 127.0.0.1:%d" % self.sn.replica_port
        self.assertFalse(any(new in log
                             for log in instance_logs(self.s, 2)))
        sent_before = len(self.s.exports_seen())
        # No request from here on: only +switch-master can tell them.
        self.assertEqual(cli(self.sn.sentinel_ports[0], "SENTINEL",
                             "FAILOVER", MASTER), ["OK"])
        t0 = time.monotonic()
        wait_for("promotion", lambda: self.sn.master() == [
            "127.0.0.1", str(self.sn.replica_port)], 30)
        t_promoted = time.monotonic() - t0
        wait_for("every instance follows", lambda: all(
            new in log for log in instance_logs(self.s, 2)), 10, 0.05)
        t_followed = time.monotonic() - t0
        # The old master is still a writable master: no error on the
        # instances' connections could have told them.
        self.assertEqual(cli(self.sn.master_port, "ROLE")[:1], ["master"])
        for log in instance_logs(self.s, 2):
            self.assertNotIn("redis unavailable", log)
        self.assertLess(t_followed, 5.0)
        # Held as after any failover: the new master may lack the last
        # grants; nothing reaches HSS, through either master.
        for i in range(2):
            r = self.s.export(dict(BODY, image_name="mf-after%d" % i),
                              token=token)
            self.assertEqual(r.status, 429, r)
            self.assertGreaterEqual(int(r.header("Retry-After")), 50)
        self.assertEqual(len(self.s.exports_seen()), sent_before)
        st, doc = self.s.healthz()
        self.assertEqual((st, doc.get("shared_state")), (200, "ok"))
        wait_for("the old master demoted", lambda: cli(
            self.sn.master_port, "ROLE")[:1] == ["slave"], 60, 0.2)
        t_demoted = time.monotonic() - t0
        print("manual failover: promoted %.1f s after SENTINEL FAILOVER, "
              "every instance on the new master at %.1f s, the old master "
              "a writable master until %.1f s" % (
                  t_promoted, t_followed, t_demoted))


class Listener:
    """A loopback TCP listener calling self.accepted(conn) per client, in
    its own thread; close() stops it."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.accepted(c)

    def close(self):
        self.srv.close()


class FakeSentinel(Listener):
    """A Sentinel that is not one, on loopback: answers AUTH, PING,
    SUBSCRIBE and SENTINEL get-master-addr-by-name (forwarded to a real
    Sentinel, or naming self.answer when set), counts those queries, and
    sends its subscribers whatever it is told to."""

    def __init__(self, real_port):
        self.real_port = real_port
        self.answer = None
        self.queries = 0
        self.subscribes = 0
        self.subs = []
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()  # frames never interleave
        super().__init__()

    def accepted(self, c):
        threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _bulk(s):
        b = s.encode()
        return b"$%d\r\n%s\r\n" % (len(b), b)

    def _reply(self, argv, subscribed):
        cmd = argv[0].upper() if argv else ""
        if cmd == "AUTH":
            return b"+OK\r\n", subscribed
        if cmd == "PING":
            return ((b"*2\r\n" + self._bulk("pong") + self._bulk(""))
                    if subscribed else b"+PONG\r\n"), subscribed
        if cmd == "SUBSCRIBE":
            with self.lock:
                self.subscribes += 1
            return (b"*3\r\n" + self._bulk("subscribe") +
                    self._bulk(argv[1]) + b":1\r\n"), True
        if cmd == "SENTINEL" and len(argv) == 3:
            with self.lock:
                self.queries += 1
            addr = self.answer or cli(self.real_port, *argv)
            return (b"*2\r\n" + self._bulk(addr[0]) +
                    self._bulk(addr[1])), subscribed
        return b"-ERR not in this fake\r\n", subscribed

    def _serve(self, c):
        subscribed = False
        f = c.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line.startswith(b"*"):
                    return
                argv = []
                for _ in range(int(line[1:])):
                    n = int(f.readline()[1:])
                    argv.append(f.read(n + 2)[:-2].decode())
                out, now_sub = self._reply(argv, subscribed)
                if now_sub and not subscribed:
                    with self.lock:
                        self.subs.append(c)
                subscribed = now_sub
                with self.send_lock:
                    c.sendall(out)
        except (OSError, ValueError, IndexError):
            pass
        finally:
            with self.lock:
                if c in self.subs:
                    self.subs.remove(c)
            c.close()

    def publish_raw(self, data):
        with self.lock:
            subs = list(self.subs)
        for c in subs:
            try:
                with self.send_lock:
                    c.sendall(data)
            except OSError:
                pass
        return len(subs)

    def publish(self, payload):
        return self.publish_raw(b"*3\r\n" + self._bulk("message") +
                                self._bulk("+switch-master") +
                                self._bulk(payload))

    def counts(self):
        with self.lock:
            return self.queries, self.subscribes, len(self.subs)

    def close(self):
        super().close()
        with self.lock:
            for c in self.subs:
                c.close()


class Decoy(Listener):
    """A listener that only counts who connects to it."""

    def __init__(self):
        self.connections = 0
        super().__init__()

    def accepted(self, c):
        self.connections += 1
        c.close()


class HostileSentinel(SentinelCase):
    fake = decoy = None

    @classmethod
    def extra_sentinels(cls):
        cls.fake = FakeSentinel(cls.sn.sentinel_ports[0])
        cls.decoy = Decoy()
        return ["127.0.0.1:%d" % cls.fake.port]

    @classmethod
    def close_extra(cls):
        for x in (cls.fake, cls.decoy):
            if x is not None:
                x.close()

    def log(self):
        return self.s.log_tail("hssgw", 1 << 20)

    def settle(self):
        """Subscribed to the fake, its queries quiet for 1.5 s: their
        count."""
        def subscribed():
            if self.fake.counts()[2] >= 1:
                return True
            self.s.healthz()  # the watcher starts with the first call
            return False
        wait_for("subscribed to the fake", subscribed, 20, 0.2)
        last = None
        while True:
            q = self.fake.counts()[0]
            if q == last:
                return q
            last = q
            time.sleep(1.5)

    # The tests run in the order of their names: the third leaves the
    # watcher on a real Sentinel.
    def test_1_forged_and_foreign_messages(self):
        q0 = self.settle()
        m, d = self.sn.master_port, self.decoy.port
        # Attacks: another master's switch, then malformed ones for ours,
        # each pointing at the decoy.
        bad = ["other-master 127.0.0.1 %d 127.0.0.1 %d" % (m, d),
               MASTER + "x 127.0.0.1 %d 127.0.0.1 %d" % (m, d),
               MASTER[:-1] + " 127.0.0.1 %d 127.0.0.1 %d" % (m, d),
               MASTER + " 127.0.0.1 %d 127.0.0.1" % m,
               MASTER + " 127.0.0.1 %d 127.0.0.1 %d extra" % (m, d),
               MASTER + "  127.0.0.1 %d 127.0.0.1 %d" % (m, d),
               MASTER + " 127.0.0.1 %d 127.0.0.1 port" % m,
               MASTER + " 127.0.0.1 %d 127.0.0.1 70000" % m,
               MASTER + " 127.0.0.1 %d 127.0.0.1\n%d" % (m, d),
               MASTER + " 127.0.0.1 %d 127.0.0.1 %d " % (m, d)]
        for payload in bad:
            self.assertEqual(self.fake.publish(payload), 1)
        time.sleep(1.5)
        self.assertEqual(self.fake.counts()[0], q0)
        self.assertIn("ignored a malformed +switch-master message",
                      self.log())
        # Positive control: the same shape for our master makes hssgw ask
        # the Sentinels again (at once and once more later), and never
        # connect to the address the message names.
        self.assertEqual(self.fake.publish(
            MASTER + " 127.0.0.1 %d 127.0.0.1 %d" % (m, d)), 1)
        wait_for("asked again", lambda: self.fake.counts()[0] >= q0 + 1, 2)
        wait_for("asked once more", lambda: self.fake.counts()[0] >= q0 + 2,
                 5)
        self.assertEqual(self.decoy.connections, 0)
        self.assertNotIn("new master", self.log())
        r = self.s.export(dict(BODY, image_name="forged"),
                          token=self.s.mint(sub="hostile", ttl=3600))
        self.assertEqual(r.status, 200, r)
        self.assertIn("hssgw:budget:",
                      " ".join(cli(self.sn.master_port, "KEYS", "*")))

    def test_2_named_replica_is_refused(self):
        """A Sentinel naming a replica (a demoted master that came back):
        ROLE says slave, so hssgw degrades (closed) rather than use it,
        and comes back when the Sentinels name the master again."""
        self.settle()
        self.fake.answer = ["127.0.0.1", str(self.sn.replica_port)]
        try:
            self.assertEqual(self.fake.publish(
                MASTER + " 127.0.0.1 %d 127.0.0.1 %d" % (
                    self.sn.master_port, self.sn.replica_port)), 1)
            wait_for("refused", lambda: "no master confirmed" in self.log(),
                     5)
            self.assertIn("ROLE: not the master", self.log())
            wait_for("degraded", lambda: self.s.healthz()[1].get(
                "shared_state") == "degraded", 5)
        finally:
            self.fake.answer = None
        wait_for("back", lambda: self.s.healthz()[1].get(
            "shared_state") == "ok", 10, 0.3)
        self.assertNotIn("new master", self.log())

    def test_3_oversized_frame_drops_the_subscription(self):
        """A frame over the cap is not buffered: the subscription goes and
        the watcher moves to the next Sentinel."""
        self.settle()
        real = "watching +switch-master on Sentinel 127.0.0.1:%d" % (
            self.sn.sentinel_ports[0])
        self.assertNotIn(real, self.log())
        self.fake.publish_raw(b"*3\r\n" + self.fake._bulk("message") +
                              self.fake._bulk("+switch-master") +
                              b"$1048576\r\n" + b"A" * 65536)
        wait_for("on a real Sentinel", lambda: real in self.log(), 10)
        self.assertIn("lost Sentinel 127.0.0.1:%d's +switch-master (a "
                      "reply that is no message)" % self.fake.port,
                      self.log())
        self.assertEqual(self.fake.counts()[2], 0)
        self.assertEqual(self.decoy.connections, 0)
        st, doc = self.s.healthz()
        self.assertEqual((st, doc.get("shared_state")), (200, "ok"))


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
