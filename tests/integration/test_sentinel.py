#!/usr/bin/env python3
"""Redis Sentinel (issue 25): shared_state names three Sentinels and a
master name instead of one Redis.  Debian's redis-server as master and
replica, three redis-sentinel on loopback (quorum 2, down after 1 s),
three hssgw instances behind nginx, the emulator with HSS's limit on (5
a minute) and a steady stream of distinct exports (one a second).  The
master is killed with SIGKILL: the Sentinels promote the replica, every
instance follows by itself, and since the new master may lack the last
grants (asynchronous replication) it is treated as a Redis that lost its
data: no grant until a window has passed since the old master was lost.
Pins: HSS never sees more than 5 exports in any 60 s and never answers
429, no export reaches HSS twice, exports resume by themselves; prints
the time from the kill to the first granted export.  About 90 s.

Run: test_sentinel.py --bin BUILD/bin --src SRC.  Needs redis-server,
redis-sentinel and redis-cli.
"""

import os
import shutil
import signal
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


class Failover(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for b in ("redis-server", "redis-sentinel", "redis-cli"):
            if shutil.which(b) is None:
                raise unittest.SkipTest(b + " not installed")
        cls.sn = Sentinels().start()
        cls.s = SentinelStack(
            ARGS.bin, ARGS.src, threads=4, instances=3,
            config_extra={"shared_state": {
                "sentinels": ["127.0.0.1:%d" % p
                              for p in cls.sn.sentinel_ports],
                "master_name": MASTER, "expected_instances": 3,
                "timeout_ms": 200}},
            tasks={"budget_per_minute": 5})
        try:
            cls.s.start()
        except BaseException:
            cls.sn.close()
            raise
        cls.s.tasks_ctl({"limit_per_minute": 5})

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        cls.sn.close()

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


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
