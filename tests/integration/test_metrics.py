#!/usr/bin/env python3
"""GET /metrics end to end: the Prometheus text format through nginx
(promtool check metrics on a real scrape), counters that move with an
export and a denied request, scrapes left out of the audit trail, GET
only, nginx's allow list (a second stack whose list leaves out loopback
gets 403), a real Prometheus scraping the stack and returning
hssgw_requests_total from its query API, and promtool check rules on
deploy/prometheus/hssgw.rules.yml.

Run: test_metrics.py --bin BUILD/bin --src SRC.  Python 3 stdlib only,
plus Debian's prometheus package (prometheus, promtool).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402
import stack as stk  # noqa: E402
from fixtures import ARGS  # noqa: E402

BODY = {"project": stk.PROJECT_ALIAS, "image_type": "cicd"}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset(labels)): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m is None:
            raise AssertionError("not a sample line: %r" % line)
        labels = frozenset(LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def promtool():
    return shutil.which("promtool")


class MetricsCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = stk.Stack(ARGS.bin, ARGS.src).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def scrape(self):
        r = self.stack.request("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        return r, r.body.decode("utf-8")


class ScrapeTests(MetricsCase):
    def test_format_passes_promtool(self):
        if promtool() is None:
            self.skipTest("promtool not installed (Debian: prometheus)")
        self.stack.export(BODY, token=self.stack.mint())
        r, text = self.scrape()
        self.assertEqual(r.header("Content-Type"), CONTENT_TYPE)
        self.assertTrue(text.endswith("\n"))
        p = subprocess.run([promtool(), "check", "metrics"],
                           input=r.body, capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0,
                         p.stdout.decode() + p.stderr.decode())
        # Every name the issue lists is there, with its type.
        for name, typ in (
                ("hssgw_requests_total", "counter"),
                ("hssgw_request_duration_seconds", "histogram"),
                ("hssgw_policy_decisions_total", "counter"),
                ("hssgw_upstream_requests_total", "counter"),
                ("hssgw_upstream_duration_seconds", "histogram"),
                ("hssgw_budget_tokens", "gauge"),
                ("hssgw_budget_rejections_total", "counter"),
                ("hssgw_coalesced_total", "counter"),
                ("hssgw_status_cache_hits_total", "counter"),
                ("hssgw_credential_expiry_seconds", "gauge"),
                ("hssgw_credential_refreshes_total", "counter"),
                ("hssgw_audit_records_total", "counter"),
                ("hssgw_audit_sync_duration_seconds", "histogram"),
                ("hssgw_audit_failures_total", "counter"),
                ("hssgw_jwt_verifications_total", "counter"),
                ("hssgw_jwt_cache_hits_total", "counter"),
                ("hssgw_jwks_fetches_total", "counter"),
                ("hssgw_config_reloads_total", "counter"),
                ("hssgw_fcgi_rejected_total", "counter"),
                ("hssgw_build_info", "gauge"),
                ("hssgw_policy_revision_info", "gauge"),
                ("process_resident_memory_bytes", "gauge"),
                ("process_open_fds", "gauge"),
                ("process_cpu_seconds_total", "counter"),
                ("process_start_time_seconds", "gauge")):
            with self.subTest(name=name):
                self.assertIn("\n# TYPE %s %s\n" % (name, typ), text)

    def test_counts_move(self):
        # An allowed export (200) and a denied one (403) move their
        # series by exactly one each, and nothing else on the route.
        s0 = parse(self.scrape()[1])
        r = self.stack.export(BODY, token=self.stack.mint())
        self.assertEqual(r.status, 200, r)
        r = self.stack.export(BODY, token=self.stack.mint(
            sub="dev-bob", groups=("others",)))
        self.assertEqual(r.status, 403, r)
        s1 = parse(self.scrape()[1])

        def delta(name, **labels):
            return value(s1, name, **labels) - value(s0, name, **labels)

        self.assertEqual(delta("hssgw_requests_total", route="export",
                               status="200", code="HSSGW.0000"), 1)
        self.assertEqual(delta("hssgw_requests_total", route="export",
                               status="403", code="HSSGW.0103"), 1)
        self.assertEqual(delta("hssgw_policy_decisions_total",
                               decision="deny"), 1)
        self.assertEqual(delta("hssgw_policy_decisions_total",
                               decision="allow"), 1)
        self.assertEqual(delta("hssgw_jwt_verifications_total",
                               result="ok"), 2)
        self.assertEqual(delta("hssgw_upstream_requests_total",
                               api="export", status="200"), 1)
        self.assertEqual(delta("hssgw_upstream_duration_seconds_count",
                               api="export"), 1)
        self.assertEqual(delta("hssgw_request_duration_seconds_count",
                               route="export"), 2)
        # Intent + outcome for the export, one final record for the denial.
        self.assertEqual(delta("hssgw_audit_records_total"), 3)
        self.assertGreaterEqual(
            delta("hssgw_audit_sync_duration_seconds_count"), 1)
        # The budget spent one call of demo's export bucket.
        self.assertEqual(delta("hssgw_budget_tokens", credentials="demo",
                               api="export"), -1)
        self.assertEqual(value(s1, "hssgw_build_info", version="0.1.0"), 1)
        self.assertTrue(any(k[0] == "hssgw_policy_revision_info"
                            for k in s1))
        self.assertGreater(value(s1, "process_resident_memory_bytes"), 0)
        self.assertGreater(value(s1, "process_open_fds"), 0)
        # No caller-chosen value became a label: the subject, the task id.
        text = self.scrape()[1]
        self.assertNotIn("dev-bob", text)
        self.assertNotIn("dev-alice", text)

    def test_scrapes_not_audited(self):
        # A scrape every few seconds would fill the trail with nothing:
        # none leaves a record (docs/METRICS.md).
        n = len(self.stack.audit_lines())
        for _ in range(3):
            self.scrape()
        time.sleep(0.2)
        self.assertEqual(len(self.stack.audit_lines()), n)
        # Control: an audited request does add a record.
        self.stack.export(BODY, token=self.stack.mint(
            sub="dev-bob", groups=("others",)))
        self.assertEqual(len(self.stack.audit_lines()), n + 1)

    def test_get_only(self):
        for method in ("POST", "PUT", "DELETE"):
            with self.subTest(method=method):
                r = self.stack.request(method, "/metrics", "x",
                                       {"Content-Type": "text/plain"})
                self.assertEqual(r.status, 405, r)
                self.assertEqual(r.json()["error_code"], "HSSGW.0005")
        r, _ = self.scrape()
        self.assertEqual(r.status, 200)


class ReloadTests(unittest.TestCase):
    """hssgw_config_reloads_total by result, and metrics.enabled."""

    def setUp(self):
        self.stack = stk.Stack(ARGS.bin, ARGS.src).start()

    def tearDown(self):
        self.stack.stop()

    def write_config(self, text):
        path = self.stack.config_path
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)

    def reload_until(self, done):
        # Bounded: the reload runs on hssgw's main thread.
        self.stack.procs["hssgw"].send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:
            r = self.stack.request("GET", "/metrics")
            if done(r):
                return r
            self.assertLess(time.monotonic(), deadline, r)
            time.sleep(0.05)

    def reloads(self, r):
        return {res: value(parse(r.body.decode()),
                           "hssgw_config_reloads_total", result=res)
                for res in ("ok", "failed")}

    def test_reloads_counted_and_metrics_disabled(self):
        good = json.dumps(self.stack.config)
        self.assertEqual(self.reloads(self.stack.request("GET", "/metrics")),
                         {"ok": 0, "failed": 0})
        # A broken config: the old snapshot keeps serving, counted failed.
        self.write_config("{")
        self.reload_until(lambda r: r.status == 200 and
                          self.reloads(r)["failed"] == 1)
        # metrics.enabled false: /metrics is an unknown path (404,
        # audited like one); the rest of the gateway is unchanged.
        off = dict(self.stack.config, metrics={"enabled": False})
        self.write_config(json.dumps(off))
        n = len(self.stack.audit_lines())
        r = self.reload_until(lambda r: r.status == 404)
        self.assertEqual(r.json()["error_code"], "HSSGW.0004")
        self.assertNotIn(b"hssgw_", r.body)
        self.assertGreater(len(self.stack.audit_lines()), n)
        self.assertEqual(self.stack.request("GET", "/healthz").status, 200)
        # Control: enabled again, served, and the counters survived the
        # reloads (they belong to the gateway, not a snapshot).
        self.write_config(good)
        r = self.reload_until(lambda r: r.status == 200)
        self.assertEqual(self.reloads(r), {"ok": 2, "failed": 1})
        self.assertGreaterEqual(
            value(parse(r.body.decode()), "hssgw_requests_total",
                  route="metrics", status="404", code="HSSGW.0004"), 1)


class AllowListTests(unittest.TestCase):
    """nginx is the gate: an address outside METRICS_ALLOW gets 403."""

    def test_not_allowed_address_refused(self):
        # Gap: a scrape from an address the operator did not list must
        # not reach hssgw.  192.0.2.1 (TEST-NET-1) is never the client
        # here, so loopback is outside the list.
        s = stk.Stack(ARGS.bin, ARGS.src)
        s.metrics_allow = "allow 192.0.2.1;"
        s.start()
        try:
            n = len(s.audit_lines())
            r = s.request("GET", "/metrics")
            self.assertEqual(r.status, 403, r)
            self.assertNotIn(b"hssgw_", r.body)
            # Control: the rest of the gateway still answers.
            self.assertEqual(s.request("GET", "/healthz").status, 200)
            self.assertEqual(len(s.audit_lines()), n)
        finally:
            s.stop()


class PrometheusTests(MetricsCase):
    """A real Prometheus scrapes the stack and answers queries."""

    def test_prometheus_scrapes_the_stack(self):
        prom = shutil.which("prometheus")
        if prom is None:
            self.skipTest("prometheus not installed (Debian: prometheus)")
        r = self.stack.export(BODY, token=self.stack.mint())
        self.assertEqual(r.status, 200, r)
        tmp = tempfile.mkdtemp(prefix="hssgw-prom-")
        port = stk.free_port()
        conf = os.path.join(tmp, "prometheus.yml")
        with open(conf, "w") as f:
            json.dump({  # YAML is a superset of JSON
                "global": {"scrape_interval": "1s",
                           "evaluation_interval": "1s"},
                # Relative paths would be taken from the config's dir.
                "rule_files": [os.path.abspath(os.path.join(
                    ARGS.src, "deploy", "prometheus", "hssgw.rules.yml"))],
                "scrape_configs": [{
                    "job_name": "hssgw",
                    "scheme": "https",
                    "metrics_path": "/metrics",
                    "tls_config": {"ca_file": self.stack.ca,
                                   "server_name": "localhost"},
                    "static_configs": [{"targets": [
                        "127.0.0.1:%d" % self.stack.gw_port]}],
                }],
            }, f)
        log = open(os.path.join(tmp, "prometheus.log"), "wb")
        p = subprocess.Popen(
            [prom, "--config.file=" + conf,
             "--storage.tsdb.path=" + os.path.join(tmp, "data"),
             "--web.listen-address=127.0.0.1:%d" % port],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            q = urllib.parse.quote(
                'hssgw_requests_total{route="export",status="200"}')
            url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, q)
            deadline, last = time.monotonic() + 60, None
            while time.monotonic() < deadline:
                if p.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(url, timeout=5) as resp:
                        last = json.load(resp)
                    if last["data"]["result"]:
                        break
                except OSError as e:
                    last = repr(e)
                time.sleep(0.5)
            self.assertIsInstance(last, dict, last)
            res = last["data"]["result"]
            self.assertTrue(res, last)
            self.assertEqual(res[0]["metric"]["code"], "HSSGW.0000")
            self.assertGreaterEqual(float(res[0]["value"][1]), 1)
            # The rules file loaded: Prometheus lists its groups.
            with urllib.request.urlopen(
                    "http://127.0.0.1:%d/api/v1/rules" % port,
                    timeout=5) as resp:
                rules = json.load(resp)
            self.assertTrue(rules["data"]["groups"], rules)
        finally:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
            shutil.rmtree(tmp, ignore_errors=True)


class RulesTests(unittest.TestCase):
    def test_rules_check(self):
        if promtool() is None:
            self.skipTest("promtool not installed (Debian: prometheus)")
        rules = os.path.join(ARGS.src, "deploy", "prometheus",
                             "hssgw.rules.yml")
        p = subprocess.run([promtool(), "check", "rules", rules],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0,
                         p.stdout.decode() + p.stderr.decode())

    def test_rules_fire(self):
        # promtool's rule unit tests: each alert fires on the series it
        # watches (and not before its "for:").
        if promtool() is None:
            self.skipTest("promtool not installed (Debian: prometheus)")
        t = os.path.join(ARGS.src, "tests", "data", "prometheus",
                         "hssgw.rules.test.yml")
        p = subprocess.run([promtool(), "test", "rules", t],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0,
                         p.stdout.decode() + p.stderr.decode())


if __name__ == "__main__":
    sys.exit(runner.main(sys.modules[__name__]))
