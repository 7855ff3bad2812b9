#!/usr/bin/env python3
"""Several hssgw instances sharing one HSS budget through Redis (issue #14):
three instances behind one nginx upstream, a real redis-server on a unix
socket started by the test, the emulator with HSS's limit on (5 a minute).
One budget across instances, fair shares across instances, coalescing and
the status cache across instances, a restart that keeps the budget, Redis
killed mid-run (degraded, local fallback, recovery), an ACL user reached
through a TLS tunnel (stunnel4) and a wrong password failing closed.

Run: test_shared.py --bin BUILD/bin --src SRC.  Python 3 stdlib only.
"""

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402
import stack as stk  # noqa: E402
from fixtures import (ARGS, TASK_BODY as BODY, TaskStack,  # noqa: E402
                      max_in_window)

EXPORT_SUFFIX = "/image/baseline/export"


class Redis:
    """redis-server on a unix socket (no TCP: port 0) in a temp dir, with
    an optional ACL user; kill() and start() again on the same socket."""

    def __init__(self, user=None, password=None):
        self.dir = tempfile.mkdtemp(prefix="hssgw-rd-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.user, self.password = user, password
        self.proc = None

    def start(self):
        argv = ["redis-server", "--port", "0", "--unixsocket", self.sock,
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--logfile", os.path.join(self.dir, "redis.log")]
        if self.user:
            argv += ["--user", self.user, "on", ">" + self.password,
                     "~hssgw:*", "+@all", "--user", "default", "off"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        return self

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def cli(self, *args):
        argv = ["redis-cli", "-s", self.sock]
        if self.user:
            argv += ["--user", self.user, "--pass", self.password]
        return subprocess.run(argv + list(args), capture_output=True,
                              text=True, timeout=10).stdout

    def close(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class SharedStack(TaskStack):
    """TaskStack with several instances; the per-instance configs are
    written after TaskStack's tasks settings."""

    def _configs(self):
        super()._configs()
        self.write_instance_configs()

    def healthz(self):
        r = self.request("GET", "/healthz")
        return r.status, r.json()

    def exports_seen(self):
        return [e for e in self.emulator_lines()
                if e["method"] == "POST" and e["path"].endswith(EXPORT_SUFFIX)]

    def instance_of(self, request_id):
        """Which instance's audit trail holds request_id (1-based)."""
        for i in range(1, self.instances + 1):
            for a in self._lines(self.path("audit", "audit-%d.jsonl" % i)):
                if a.get("request_id") == request_id:
                    return i
        return None

    def wait_socket(self, i):
        sock = self.path("hssgw-%d.sock" % i)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert time.monotonic() < deadline, self.log_tail("hssgw-%d" % i)
            time.sleep(0.05)


def shared_state(redis_url, **kw):
    d = {"redis": redis_url, "expected_instances": 3, "timeout_ms": 200}
    d.update(kw)
    return {"shared_state": d}


class Instances(unittest.TestCase):
    """Three instances, one Redis; the steps share one budget window and
    run in order (test_1 .. test_5)."""

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis().start()
        cls.s = SharedStack(
            ARGS.bin, ARGS.src, threads=4, instances=3,
            config_extra=shared_state("unix:" + cls.redis.sock),
            tasks={"budget_per_minute": 5, "coalesce_window_ms": 60000,
                   "status_cache_ttl_s": 30}).start()
        cls.s.tasks_ctl({"limit_per_minute": 5})

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        cls.redis.close()

    def test_1_coalescing_across_instances(self):
        """Identical exports reach HSS once, whichever instance they
        reach: three at once (the claim) and three after (the shared
        answer), answered by more than one instance."""
        tok = self.s.mint(sub="co-team")
        body = dict(BODY, image_name="coalesced")
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            rs = list(ex.map(lambda _: self.s.export(body, token=tok),
                             range(3)))
        rs += [self.s.export(body, token=tok) for _ in range(3)]
        for r in rs:
            self.assertEqual(r.status, 200, r)
        self.assertEqual(len({r.json()["task_id"] for r in rs}), 1)
        self.assertEqual(len(self.s.exports_seen()), 1)
        self.assertEqual(
            sum(r.header("X-Hssgw-Coalesced") == "true" for r in rs), 5)
        where = {self.s.instance_of(r.header("X-Request-Id")) for r in rs}
        self.assertGreaterEqual(len(where - {None}), 2, where)
        type(self).handle = rs[0].json()["handle"]
        type(self).tok = tok

    def test_2_status_cache_across_instances(self):
        """A status answer one instance cached is served by another."""
        path = stk.EXPORT_PATH + "/" + self.handle
        before = self.s.tasks_ctl()["status_calls"]
        rs = [self.s.get(path, self.tok) for _ in range(3)]
        for r in rs:
            self.assertEqual(r.status, 200, r)
        self.assertEqual(self.s.tasks_ctl()["status_calls"] - before, 1)
        self.assertEqual([r.header("X-Hssgw-Cache") for r in rs],
                         ["miss", "hit", "hit"])
        where = {self.s.instance_of(r.header("X-Request-Id")) for r in rs}
        self.assertGreaterEqual(len(where - {None}), 2, where)

    def test_3_twenty_exporters_one_budget(self):
        """20 teams at once over three instances: HSS sees at most 5
        exports in the minute (one was the coalesced export), never a
        429; each instance alone would have granted 5."""
        toks = [self.s.mint(sub="team-%d" % i) for i in range(20)]
        with concurrent.futures.ThreadPoolExecutor(20) as ex:
            rs = list(ex.map(
                lambda i: self.s.export(dict(BODY, image_name="t%d" % i),
                                        token=toks[i]), range(20)))
        ok = [r for r in rs if r.status == 200]
        busy = [r for r in rs if r.status == 429]
        self.assertEqual(len(ok) + len(busy), 20, rs)
        self.assertEqual(len(ok), 4)
        for r in busy:
            self.assertEqual(r.json()["error_code"], "HSSGW.0205", r)
            self.assertGreaterEqual(int(r.header("Retry-After")), 1)
        c = self.s.tasks_ctl()
        self.assertEqual(c["export_calls"], 5)
        self.assertEqual(c["throttled"], 0)
        where = {self.s.instance_of(r.header("X-Request-Id")) for r in ok}
        print("granted by instances %s" % sorted(where - {None}),
              file=sys.stderr)

    def test_4_restart_keeps_the_budget(self):
        """An instance restarted mid-minute does not hand out a fresh
        budget: every export is still refused, HSS sees nothing more."""
        self.s.stop_instance(1)
        self.s.start_instance(1)
        self.s.wait_socket(1)
        tok = self.s.mint(sub="after-restart")
        for i in range(4):
            r = self.s.export(dict(BODY, image_name="r%d" % i), token=tok)
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.json()["error_code"], "HSSGW.0205")
        self.assertEqual(self.s.tasks_ctl()["export_calls"], 5)

    def test_5_redis_lost_and_back(self):
        """Redis killed: still ready but degraded, no HSS 429; a hold
        window (62 s) of refusals since the others may have spent the
        minute; then the local fallback (5 / 3 = 1 per instance) grants;
        Redis back: shared again by itself.  Logged once per transition."""
        self.redis.kill()
        t_kill = time.monotonic()
        tok = self.s.mint(sub="degraded-team")
        r = self.s.export(dict(BODY, image_name="d0"), token=tok)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["error_code"], "HSSGW.0205")
        self.assertGreater(int(r.header("Retry-After")), 50)
        for _ in range(3):
            st, doc = self.s.healthz()
            self.assertEqual(st, 200)
            self.assertEqual(doc, {"status": "ok",
                                   "shared_state": "degraded"})
        # Wait out the hold window, then the fallback grants.
        time.sleep(max(0, t_kill + 63 - time.monotonic()))
        rs = [self.s.export(dict(BODY, image_name="d%d" % i), token=tok)
              for i in range(1, 7)]
        ok = [r for r in rs if r.status == 200]
        self.assertGreaterEqual(len(ok), 1, rs)
        self.assertLessEqual(len(ok), 3, rs)
        for r in rs:
            if r.status != 200:
                self.assertEqual(r.json()["error_code"], "HSSGW.0205", r)
        calls = [e["time_ms"] for e in self.s.exports_seen()]
        self.assertLessEqual(max_in_window(calls), 5)
        self.assertEqual(self.s.tasks_ctl()["throttled"], 0)
        # Back by itself, probing at most once a second.
        self.redis.start()
        deadline = time.monotonic() + 10
        while True:
            states = {self.s.healthz()[1].get("shared_state")
                      for _ in range(6)}
            if states == {"ok"}:
                break
            self.assertLess(time.monotonic(), deadline, states)
            time.sleep(0.5)
        for i in range(1, 4):
            log = self.s.log_tail("hssgw-%d" % i, 1 << 20)
            self.assertLessEqual(log.count("redis unavailable"), 1, log)
            self.assertEqual(log.count("redis is back"),
                             log.count("redis unavailable"), log)
        # The trails: one chain per instance, one merged timeline.
        trails = [self.s.path("audit", "audit-%d.jsonl" % i)
                  for i in range(1, 4)]
        out = subprocess.run([self.s.hssgw, "audit", "verify"] + trails,
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        for i in range(1, 4):
            self.assertIn("instance gw-%d: ok" % i, out.stdout)
        out = subprocess.run([self.s.hssgw, "audit", "query"] + trails,
                             capture_output=True, text=True, check=True)
        recs = [json.loads(line) for line in out.stdout.splitlines()]
        # A record's time is its request's arrival, so one trail holds
        # concurrent requests a few ms out of order; the merge keeps each
        # trail's order and never steps back in time between trails.
        for i in range(1, 4):
            mine = [r["seq"] for r in recs if r["instance"] == "gw-%d" % i]
            self.assertEqual(mine, sorted(mine))
        for x, y in zip(recs, recs[1:]):
            if x["instance"] != y["instance"]:
                self.assertLessEqual(x["time"], y["time"])
        self.assertEqual({r["instance"] for r in recs},
                         {"gw-1", "gw-2", "gw-3"})


class FairShares(unittest.TestCase):
    """Fair shares hold across instances (a fresh Redis and window)."""

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis().start()
        cls.s = SharedStack(
            ARGS.bin, ARGS.src, threads=4, instances=3,
            config_extra=shared_state("unix:" + cls.redis.sock),
            tasks={"budget_per_minute": 5}).start()
        cls.s.tasks_ctl({"limit_per_minute": 5})

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        cls.redis.close()

    def test_greedy_team_capped_across_instances(self):
        """Two teams active: the greedy one gets ceil(5 / 2) = 3 however
        many instances it spreads over, the other still gets its share."""
        a, b = self.s.mint(sub="greedy"), self.s.mint(sub="modest")
        seq = [(a, 0), (b, 1), (a, 2), (a, 3), (a, 4), (a, 5), (a, 6),
               (b, 7)]
        got = []
        for tok, i in seq:
            r = self.s.export(dict(BODY, image_name="f%d" % i), token=tok)
            got.append(r.status)
        self.assertEqual(got, [200, 200, 200, 200, 429, 429, 429, 200])
        c = self.s.tasks_ctl()
        self.assertEqual((c["export_calls"], c["throttled"]), (5, 0))


def stunnel(conf_path, text):
    stk.write_file(conf_path, text, 0o600)
    return subprocess.Popen(["stunnel4", conf_path],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


class SecuredRedis(unittest.TestCase):
    """Redis with an ACL user, reached through the documented TLS tunnel
    (stunnel4 client -> stunnel4 server -> Redis's unix socket), with
    certificates made at test time.  A wrong password fails closed."""

    @classmethod
    def setUpClass(cls):
        if shutil.which("stunnel4") is None:
            raise unittest.SkipTest("stunnel4 not installed")
        cls.password = os.urandom(16).hex()
        cls.redis = Redis(user="hssgw", password=cls.password).start()
        d = cls.redis.dir
        cls.tunnels = []
        run = stk.run
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             d + "/ca.key", "-out", d + "/ca.pem", "-days", "1", "-subj",
             "/CN=redis-tunnel-ca"])
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             d + "/srv.key", "-out", d + "/srv.csr", "-subj",
             "/CN=redis.tunnel"])
        stk.write_file(d + "/srv.ext", "subjectAltName=DNS:redis.tunnel\n")
        run(["openssl", "x509", "-req", "-in", d + "/srv.csr", "-CA",
             d + "/ca.pem", "-CAkey", d + "/ca.key", "-CAcreateserial",
             "-out", d + "/srv.pem", "-days", "1", "-extfile",
             d + "/srv.ext"])
        srv_port, cli_port = stk.free_port(), stk.free_port()
        cls.tunnels.append(stunnel(d + "/server.conf", (
            "foreground = yes\npid =\n[redis]\naccept = 127.0.0.1:%d\n"
            "connect = %s\ncert = %s/srv.pem\nkey = %s/srv.key\n"
            "sslVersionMin = TLSv1.2\n") % (srv_port, cls.redis.sock, d, d)))
        cls.tunnels.append(stunnel(d + "/client.conf", (
            "foreground = yes\npid =\n[redis]\nclient = yes\n"
            "accept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\n"
            "CAfile = %s/ca.pem\nverifyChain = yes\n"
            "checkHost = redis.tunnel\nsslVersionMin = TLSv1.2\n")
            % (cli_port, srv_port, d)))
        time.sleep(0.5)
        cls.pwfile = os.path.join(d, "redis.pw")
        stk.write_file(cls.pwfile, cls.password + "\n", 0o600)
        cls.s = SharedStack(
            ARGS.bin, ARGS.src, threads=2,
            config_extra=shared_state(
                "redis://127.0.0.1:%d/0" % cli_port, username="hssgw",
                password_file=cls.pwfile),
            tasks={"budget_per_minute": 5}).start()
        cls.s.tasks_ctl({"limit_per_minute": 5})

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        for t in cls.tunnels:
            t.terminate()
            t.wait(timeout=5)
        cls.redis.close()

    def test_acl_user_through_tunnel(self):
        """Positive control: shared through the tunnel with the ACL user
        (the budget's keys are in Redis); then a wrong password: still
        ready, degraded, exports refused locally (fail closed), and no
        password in any log."""
        self.assertEqual(self.s.healthz(),
                         (200, {"status": "ok", "shared_state": "ok"}))
        tok = self.s.mint(sub="acl-team")
        r = self.s.export(dict(BODY, image_name="acl"), token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertIn("hssgw:budget:", self.redis.cli("KEYS", "hssgw:*"))
        # The wrong password: restart with it.
        self.s.stop_backend()
        stk.write_file(self.pwfile, "not-the-password\n", 0o600)
        os.unlink(self.s.gw_sock)
        self.s._start_hssgw()
        deadline = time.monotonic() + 10
        while not os.path.exists(self.s.gw_sock):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        time.sleep(0.3)
        self.assertEqual(self.s.healthz(),
                         (200, {"status": "ok", "shared_state": "degraded"}))
        r = self.s.export(dict(BODY, image_name="acl2"), token=tok)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["error_code"], "HSSGW.0205")
        self.assertEqual(len(self.s.exports_seen()), 1)
        log = self.s.log_tail("hssgw", 1 << 20)
        self.assertIn("WRONGPASS", log)
        self.assertNotIn(self.password, log)
        self.assertNotIn("not-the-password", log)


if __name__ == "__main__":
    sys.exit(runner.main(sys.modules[__name__]))
