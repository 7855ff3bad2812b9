#!/usr/bin/env python3
"""Integration tests of shipping the audit trail (issue 22): hssgw audit
ship as its own process, Debian's librelp, a real rsyslog + imrelp
collector run from deploy/rsyslog/hssgw-collector.conf.  A steady stream
of audited requests while the shipper is killed with kill -9 again and
again, rsyslog killed for 30 s and started again, and the trail rotated:
the collector has every record, byte for byte and in order, duplicates
only identical, and the collected file verifies; three instances into
one collector, one verified file each; a collector that answers errors,
never acknowledges or drops the connection leaves the cursor where it
was and skips nothing; TLS both ways with certificates checked by name.
Run as

    test_ship.py --bin BUILD/bin --src REPO

Prints "N passed, N failed" last.  Python 3 stdlib only.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixtures as fx  # noqa: E402
from fixtures import ARGS  # noqa: E402
import relp_collector as rc  # noqa: E402
import runner  # noqa: E402
import stack as st  # noqa: E402


BODY = {"project": st.PROJECT_ALIAS, "image_type": "cicd"}


def verify_collected(test, hssgw, path, lines):
    """hssgw audit verify on the collected file: it passes, and a resend's
    exact copies are counted, never an error."""
    r = subprocess.run([hssgw, "audit", "verify", path],
                       capture_output=True, text=True)
    test.assertEqual(r.returncode, 0, r.stdout + r.stderr)
    dups = len(lines) - len(rc.first_occurrences(lines))
    if dups:
        test.assertIn("note: %d duplicate records" % dups, r.stdout)
    return r.stdout


class Load:
    """A steady stream of audited requests from WORKERS threads: denied
    exports (one final record each) and every fifth an allowed one
    (intent and outcome)."""

    def __init__(self, s, total, workers=3, pause=0.0):
        self.s, self.total, self.pause = s, total, pause
        self.deny = s.mint(sub="dev-mallory", groups=(st.DENY_GROUP,))
        self.allow = s.mint()
        self.sent = 0
        self.errors = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(workers)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self):
        while True:
            with self.lock:
                if self.sent >= self.total:
                    return
                self.sent += 1
                n = self.sent
            tok = self.allow if n % 5 == 0 else self.deny
            try:
                r = self.s.export(BODY, token=tok)
                if r.status not in (200, 403):
                    self.errors.append(r.status)
            except OSError as e:
                self.errors.append(str(e))
            if self.pause:
                time.sleep(self.pause)

    def join(self, timeout):
        for t in self.threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self.threads)


class ShipUnderFire(unittest.TestCase):
    """One gateway, one collector: kill -9 the shipper >= 10 times,
    rsyslog down 30 s, size rotation, all while requests stream in."""

    def test_kill9_outage_rotation(self):
        port = rc.free_port()
        s = st.Stack(ARGS.bin, ARGS.src, threads=8, config_extra={
            "instance": "gw-a",
            "audit": {"file": "audit/audit.jsonl",
                      "rotate_bytes": 400000}})
        s.start()
        col = None
        ship = None
        try:
            col = rc.Collector(ARGS.src, s.state, port).start()
            cfg = rc.with_ship(s.config_path, rc.ship_section(s.state, port),
                            s.path("ship.json"))
            ship = rc.Shipper(s.hssgw, cfg, s.path("logs", "ship.log")).start()
            load = Load(s, 2200, workers=3, pause=0.05).start()
            rng = random.Random(22)
            kills = 0
            lag_seen = 0.0
            t0 = time.monotonic()
            outage_done = False
            cur = cur_mid = None
            while load.sent < load.total or kills < 10:
                time.sleep(rng.uniform(0.2, 1.2))
                ship.kill()
                kills += 1
                ship.start()
                # The collector down for 30 s, a third of the way in.
                if not outage_done and load.sent > load.total // 3:
                    col.kill()
                    down = time.monotonic()
                    while time.monotonic() - down < 30:
                        time.sleep(rng.uniform(0.5, 3))
                        if cur_mid is None:
                            cur_mid = rc.read_json(s.path("ship.cursor"))
                        ship.kill()
                        kills += 1
                        ship.start()
                        m = rc.read_metrics(s.path("ship.prom"))
                        lag_seen = max(lag_seen, m.get(
                            "hssgw_audit_ship_lag_seconds", 0))
                    cur = rc.read_json(s.path("ship.cursor"))
                    col.start()
                    outage_done = True
                self.assertLess(time.monotonic() - t0, 120,
                                "the load did not finish")
            self.assertTrue(load.join(60))
            self.assertEqual(load.errors, [])
            self.assertGreaterEqual(kills, 10)
            trail = rc.trail_lines(s.path("audit", "audit.jsonl"))
            self.assertGreaterEqual(len(trail), 2200)
            last = int(rc.SEQ.match(trail[-1]).group(1))
            self.assertTrue(rc.wait_for(
                lambda: (rc.read_json(s.path("ship.cursor")) or {}).get(
                    "seq", 0) >= last, 30), ship.tail())
            rotated = [n for n in os.listdir(s.path("audit"))
                       if n.startswith("audit.jsonl.2")]
            self.assertGreaterEqual(len(rotated), 2, "no rotation")
            got = col.lines("gw-a")
            self.assertIsNone(rc.check_collected(got, trail))
            verify_collected(self, s.hssgw, col.file("gw-a"), got)
            # The lag rose during the outage and fell once caught up.
            self.assertGreater(lag_seen, 5.0)
            # Nothing acknowledged while the collector was down.
            self.assertIsNotNone(cur)
            self.assertEqual(cur, cur_mid)
            self.assertTrue(rc.wait_for(lambda: rc.read_metrics(
                s.path("ship.prom")).get("hssgw_audit_ship_lag_seconds",
                                         1) == 0, 5))
            m = rc.read_metrics(s.path("ship.prom"))
            self.assertEqual(m["hssgw_audit_ship_lag_records"], 0)
            self.assertEqual(m["hssgw_audit_ship_acked_seq"], last)
            c = rc.read_json(s.path("ship.cursor"))
            self.assertEqual(c["instance"], "gw-a")
            self.assertEqual(c["hash"], json.loads(trail[-1])["hash"])
            print("\n  %d records, %d collected lines (%d duplicates), "
                  "%d kills" % (len(trail), len(got), len(got) - len(trail),
                                kills))
        finally:
            if ship is not None:
                ship.kill()
            if col is not None:
                col.kill()
            s.stop()


class ShipInstances(unittest.TestCase):
    """Three instances, three shippers, one collector; then hostile
    collectors against one of the trails."""

    @classmethod
    def setUpClass(cls):
        cls.s = st.Stack(ARGS.bin, ARGS.src, instances=3)
        cls.s.start()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_three_instances_one_collector(self):
        s = self.s
        port = rc.free_port()
        col = rc.Collector(ARGS.src, s.state, port).start()
        ships = []
        try:
            load = Load(s, 150, workers=3).start()
            # Records with bytes a syslog daemon likes to escape: DEL,
            # UTF-8, a backslash (JSON escapes only the C0 controls).
            for path in ("/v1/%7F%7F", "/v1/%C3%A9t%C3%A9", "/v1/a%5Cb",
                         "/v1/%E2%80%AE"):
                self.assertEqual(s.request("GET", path).status, 404)
            for i in (1, 2, 3):
                cfg = rc.with_ship(s.instance_config(i),
                                rc.ship_section(s.state, port, "-%d" % i),
                                s.path("ship-%d.json" % i))
                ships.append(rc.Shipper(s.hssgw, cfg, s.path(
                    "logs", "ship-%d.log" % i)).start())
            self.assertTrue(load.join(60))
            files = []
            for i in (1, 2, 3):
                trail = rc.trail_lines(s.path("audit", "audit-%d.jsonl" % i))
                self.assertTrue(trail, "instance %d wrote nothing" % i)
                last = int(rc.SEQ.match(trail[-1]).group(1))
                self.assertTrue(rc.wait_for(lambda: (rc.read_json(s.path(
                    "ship-%d.cursor" % i)) or {}).get("seq", 0) >= last, 20),
                    ships[i - 1].tail())
                got = col.lines("gw-%d" % i)
                self.assertIsNone(rc.check_collected(got, trail))
                verify_collected(self, s.hssgw, col.file("gw-%d" % i), got)
                files.append(col.file("gw-%d" % i))
            self.assertEqual(sorted(os.listdir(col.dir)),
                             ["gw-1.jsonl", "gw-2.jsonl", "gw-3.jsonl"])
            # All three at once: verify groups them by instance.
            r = subprocess.run([s.hssgw, "audit", "verify"] + files,
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            for i in (1, 2, 3):
                self.assertIn("instance gw-%d: ok" % i, r.stdout)
        finally:
            for sh in ships:
                sh.kill()
            col.kill()

    def test_hostile_collectors(self):
        s = self.s
        # A trail of its own records to ship.
        load = Load(s, 30, workers=2)
        load.start()
        self.assertTrue(load.join(30))
        trail = rc.trail_lines(s.path("audit", "audit-1.jsonl"))
        self.assertGreater(len(trail), 5)
        cursor = s.path("hostile.cursor")
        for mode in ("error", "silent", "partial"):
            with self.subTest(mode=mode):
                fake = rc.FakeRelp(mode)
                cfg = rc.with_ship(s.instance_config(1), rc.ship_section(
                    s.state, fake.port, "-hostile", cursor_file=cursor,
                    timeout_s=1, batch_size=16), s.path("hostile.json"))
                before = open(cursor, "rb").read() if os.path.exists(
                    cursor) else None
                sh = rc.Shipper(s.hssgw, cfg, s.path(
                    "logs", "hostile-%s.log" % mode)).start()
                try:
                    self.assertTrue(rc.wait_for(lambda: fake.frames >= 16, 10),
                                    sh.tail())
                    time.sleep(2.5)
                    self.assertTrue(rc.wait_for(
                        lambda: rc.read_metrics(s.path(
                            "ship-hostile.prom")).get(
                            "hssgw_audit_ship_failures_total", 0) >= 1, 5),
                        sh.tail())
                finally:
                    sh.kill()
                    fake.close()
                after = open(cursor, "rb").read() if os.path.exists(
                    cursor) else None
                self.assertEqual(before, after, "the cursor moved")
                self.assertIn("not acknowledged", sh.tail())
        # Then a real collector: everything, from the first record.
        port = rc.free_port()
        col = rc.Collector(ARGS.src, s.path("hostile-col"), port)
        col.start()
        try:
            cfg = rc.with_ship(s.instance_config(1), rc.ship_section(
                s.state, port, "-hostile", cursor_file=cursor),
                s.path("hostile.json"))
            sh = rc.Shipper(s.hssgw, cfg, s.path("logs", "hostile-ok.log"))
            sh.start()
            trail = rc.trail_lines(s.path("audit", "audit-1.jsonl"))
            last = int(rc.SEQ.match(trail[-1]).group(1))
            try:
                self.assertTrue(rc.wait_for(lambda: (rc.read_json(
                    cursor) or {}).get("seq", 0) >= last, 20), sh.tail())
            finally:
                sh.kill()
            self.assertIsNone(rc.check_collected(col.lines("gw-1"), trail))
        finally:
            col.kill()


def make_certs(d):
    """A CA, the collector's certificate (localhost) and a gateway's
    (gw-client), with the openssl CLI."""
    os.makedirs(d, exist_ok=True)

    def ossl(*a):
        subprocess.run(("openssl",) + a, check=True, capture_output=True)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
         d + "/ca.key", "-out", d + "/ca.pem", "-days", "2", "-subj",
         "/CN=ship test CA")
    for name in ("localhost", "gw-client"):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout",
             "%s/%s.key" % (d, name), "-out", "%s/%s.csr" % (d, name),
             "-subj", "/CN=" + name)
        with open("%s/%s.ext" % (d, name), "w") as f:
            f.write("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\n"
                    % name)
        ossl("x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA",
             d + "/ca.pem", "-CAkey", d + "/ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "%s/%s.ext" % (d, name), "-out",
             "%s/%s.pem" % (d, name))
    return d


class ShipTls(unittest.TestCase):
    """TLS both ways with librelp and imrelp: the collector checks the
    gateway's certificate by name, the shipper the collector's; a
    shipper expecting another collector name is refused and its cursor
    stays.  The shipper is given "localhost", which a fresh Debian
    resolves to ::1 before 127.0.0.1, where the collector listens."""

    def test_tls_both_ways(self):
        s = st.Stack(ARGS.bin, ARGS.src)
        s.start()
        col = None
        try:
            d = make_certs(s.path("relp-tls"))
            col = rc.Collector(ARGS.src, s.path("tls-col"), tls={
                "ca": d + "/ca.pem", "cert": d + "/localhost.pem",
                "key": d + "/localhost.key", "peer": "gw-client"}).start()
            tok = s.mint(sub="dev-mallory", groups=(st.DENY_GROUP,))
            for _ in range(20):
                self.assertEqual(s.export(BODY, token=tok).status, 403)
            trail = rc.trail_lines(s.path("audit", "audit.jsonl"))
            last = int(rc.SEQ.match(trail[-1]).group(1))
            tls = {"tls": True, "tls_ca_file": d + "/ca.pem",
                   "tls_cert_file": d + "/gw-client.pem",
                   "tls_key_file": d + "/gw-client.key"}
            # The wrong collector name first: nothing acknowledged.
            bad = rc.with_ship(s.config_path, rc.ship_section(
                s.state, col.port, "-tls", relp="localhost:%d" % col.port,
                tls_permitted_peers=["other-collector"], timeout_s=2,
                **tls), s.path("ship-bad.json"))
            sh = rc.Shipper(s.hssgw, bad, s.path("logs", "ship-bad.log"))
            sh.start()
            try:
                self.assertTrue(rc.wait_for(lambda: rc.read_metrics(s.path(
                    "ship-tls.prom")).get("hssgw_audit_ship_failures_total",
                                          0) >= 1, 15), sh.tail())
            finally:
                sh.kill()
            # Refused for the name (librelp's RELP_RET_AUTH_ERR_NAME), not
            # for want of a listener: where "localhost" is ::1 first
            # (Debian's /etc/hosts) and the collector on 127.0.0.1 only,
            # that refusal also shows the shipper moved on to the next
            # address.
            self.assertIn("(librelp 10034)", sh.tail())
            self.assertFalse(os.path.exists(s.path("ship-tls.cursor")))
            self.assertEqual(col.lines(s.config.get("instance") or
                                       json.loads(trail[0])["instance"]),
                             [])
            good = rc.with_ship(s.config_path, rc.ship_section(
                s.state, col.port, "-tls", relp="localhost:%d" % col.port,
                **tls), s.path("ship-good.json"))
            sh = rc.Shipper(s.hssgw, good, s.path("logs", "ship-good.log"))
            sh.start()
            try:
                self.assertTrue(rc.wait_for(lambda: (rc.read_json(s.path(
                    "ship-tls.cursor")) or {}).get("seq", 0) >= last, 20),
                    sh.tail() + col.log_tail())
            finally:
                sh.kill()
            inst = json.loads(trail[0])["instance"]
            self.assertIsNone(rc.check_collected(col.lines(inst), trail))
        finally:
            if col is not None:
                col.kill()
            s.stop()


def scrape(s):
    """hssgw's own /metrics through nginx: {name: value} of the samples
    without labels."""
    r = s.request("GET", "/metrics")
    assert r.status == 200, r
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#") and "{" not in line:
            k, v = line.split()
            out[k] = float(v)
    return out


class ShipFailClosed(unittest.TestCase):
    """audit.ship.max_lag_s (issue 22, item 5): rsyslog killed, exports
    answer 503 HSSGW.0307 with Retry-After once the oldest unshipped
    record is older than that, while status polls, /metrics and /healthz
    (naming the reason) still answer; rsyslog back, exports are 200 again
    by themselves, and the collector has every record."""

    MAX_LAG = 4

    def test_exports_refused_while_unshipped(self):
        port = rc.free_port()
        s = fx.TaskStack(ARGS.bin, ARGS.src, tasks={"budget_per_minute": 600},
                         config_extra={
                             "instance": "gw-lag",
                             "audit": {"file": "audit/audit.jsonl",
                                       "ship": rc.ship_section(
                                           ".", port, max_lag_s=self.MAX_LAG,
                                           timeout_s=1)}})
        s.start()
        col = ship = None
        try:
            col = rc.Collector(ARGS.src, s.path("col"), port).start()
            ship = rc.Shipper(s.hssgw, s.config_path,
                              s.path("logs", "ship.log")).start()
            tok = s.mint()
            r = s.export(BODY, token=tok)
            self.assertEqual(r.status, 200, r)
            task = "/v1/exports/image-baseline/" + r.header("X-Export-Handle")
            self.assertTrue(rc.wait_for(lambda: scrape(s).get(
                "hssgw_audit_unshipped_records", -1) == 0, 15), ship.tail())
            m = scrape(s)
            self.assertEqual(m["hssgw_audit_ship_refusing"], 0)
            self.assertLess(m["hssgw_audit_unshipped_seconds"], 2)
            # The collector gone: nothing is acknowledged from here on.
            col.kill()
            down = time.monotonic()
            first_503 = None
            lag_max = 0.0
            while time.monotonic() - down < self.MAX_LAG + 6:
                r = s.export(BODY, token=tok)
                if r.status == 503:
                    self.assertEqual(r.json()["error_code"], "HSSGW.0307")
                    self.assertEqual(r.header("Retry-After"), "5")
                    if first_503 is None:
                        first_503 = time.monotonic() - down
                else:
                    self.assertEqual(r.status, 200, r)
                    self.assertIsNone(first_503, "200 after a 503: %r" % r)
                if first_503 is not None:
                    # Polls, the scrape and the probe still answer.
                    self.assertEqual(s.get(task, tok).status, 200)
                    h = s.request("GET", "/healthz")
                    self.assertEqual(h.status, 503)
                    self.assertEqual(h.json()["reason"], "audit_shipping")
                    m = scrape(s)
                    self.assertEqual(m["hssgw_audit_ship_refusing"], 1)
                    lag_max = max(lag_max,
                                  m["hssgw_audit_unshipped_seconds"])
                    self.assertGreater(m["hssgw_audit_unshipped_records"],
                                       0)
                time.sleep(0.25)
            self.assertIsNotNone(first_503, "exports never refused")
            # Not before the oldest unshipped record was MAX_LAG old.
            self.assertGreaterEqual(first_503, self.MAX_LAG - 0.5)
            self.assertGreater(lag_max, self.MAX_LAG)
            col.start()
            up = time.monotonic()
            self.assertTrue(rc.wait_for(
                lambda: s.export(BODY, token=tok).status == 200, 20,
                step=0.5), ship.tail())
            print("\n  first 503 %.1f s after the kill, 200 again %.1f s "
                  "after the start, lag up to %.1f s" % (
                      first_503, time.monotonic() - up, lag_max))
            self.assertEqual(s.request("GET", "/healthz").status, 200)
            m = scrape(s)
            self.assertEqual(m["hssgw_audit_ship_refusing"], 0)
            self.assertLess(m["hssgw_audit_unshipped_seconds"], self.MAX_LAG)
            self.assertIn("exports refused", s.log_tail("hssgw"))
            self.assertIn("exports resumed", s.log_tail("hssgw"))
            # Nothing lost: every record reached the collector.
            trail = rc.trail_lines(s.path("audit", "audit.jsonl"))
            last = int(rc.SEQ.match(trail[-1]).group(1))
            self.assertTrue(rc.wait_for(lambda: (rc.read_json(s.path(
                "ship.cursor")) or {}).get("seq", 0) >= last, 20))
            self.assertIsNone(rc.check_collected(col.lines("gw-lag"), trail))
        finally:
            if ship is not None:
                ship.kill()
            if col is not None:
                col.kill()
            s.stop()



class ShipConfig(unittest.TestCase):
    """audit.ship's keys are checked at load (check-config)."""

    def test_bad_keys(self):
        s = st.Stack(ARGS.bin, ARGS.src)
        s._layout = lambda: None
        import tempfile
        d = tempfile.mkdtemp(prefix="hssgw-ship-")
        try:
            base = {"listen": "unix:/tmp/x.sock", "jwt": {"issuers": [{
                "issuer": "i", "audiences": ["a"], "keys": [{
                    "kid": "k", "alg": "HS256", "file": "k"}]}]},
                "policies_dir": d, "credentials": [{
                    "name": "c", "type": "token_file", "file": "t"}],
                "projects": [{"alias": "p", "project_id": "x",
                              "region": "r", "endpoint": "https://h",
                              "credentials": "c"}]}
            cases = [
                ({"relp": "nohost", "cursor_file": "c"}, "audit.ship.relp"),
                ({"relp": "h:99999", "cursor_file": "c"}, "audit.ship.relp"),
                ({"relp": "h:1"}, "audit.ship.cursor_file"),
                ({"relp": "h:1", "cursor_file": "c", "batch_size": 0},
                 "audit.ship.batch_size"),
                ({"relp": "h:1", "cursor_file": "c", "tls": True},
                 "audit.ship.tls_ca_file"),
                ({"relp": "h:1", "cursor_file": "c", "tls_ca_file": "x"},
                 "audit.ship.tls"),
                ({"relp": "h:1", "cursor_file": "c", "tls": True,
                  "tls_ca_file": "x", "tls_cert_file": "y"},
                 "audit.ship.tls_cert_file"),
                ({"relp": "h:1", "cursor_file": "c", "tls": True,
                  "tls_ca_file": "x", "tls_auth_mode": "anon"},
                 "audit.ship.tls_auth_mode"),
                ({"relp": "h:1", "cursor_file": "c", "bogus": 1},
                 "audit.ship.bogus"),
            ]
            for ship, key in cases:
                with self.subTest(key=key):
                    c = dict(base, audit={"file": "a", "ship": ship})
                    p = os.path.join(d, "c.json")
                    st.write_file(p, json.dumps(c))
                    r = subprocess.run([s.hssgw, "audit", "ship", "--config",
                                        p], capture_output=True, text=True,
                                       timeout=10)
                    self.assertEqual(r.returncode, 1, r.stderr)
                    self.assertIn(key, r.stderr)
        finally:
            import shutil
            shutil.rmtree(d, ignore_errors=True)


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
