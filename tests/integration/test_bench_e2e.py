"""bench/e2e.py's honesty rules (issue 23): wrk's Lua script counts every
answer whose status is not the row's, a row with any such answer or any
socket error is INVALID and has no throughput, ratios are only against a
valid ceiling at the same connection count, the options parse as
documented, and the generated HAProxy configuration passes haproxy -c.
No stack: a loopback HTTP server whose answers are known.  Needs wrk
(skipped without); the HAProxy case needs haproxy (skipped without, the
tests never need it).  Python 3 stdlib; prints 'N passed, N failed'."""

import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

import runner
from fixtures import ARGS


def e2e():
    sys.path.insert(0, os.path.join(ARGS.src, "bench"))
    import e2e as mod
    return mod


class Server:
    """HTTP/1.1 keep-alive on loopback answering status(n) to the n-th
    request, counting what it sent."""

    def __init__(self, status):
        self.sent = {}
        self.lock = threading.Lock()
        self.n = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with outer.lock:
                    outer.n += 1
                    code = status(outer.n)
                    outer.sent[code] = outer.sent.get(code, 0) + 1
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever,
                         daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


WRK_OUT = """Running 2s test @ https://127.0.0.1:1/
  Latency Distribution
     50%%    2.10ms
     75%%    3.00ms
     90%%    4.00ms
     99%%    1.20s
  %(total)d requests in 2.00s, 1.00MB read
%(extra)sRequests/sec:   %(rps)s
Transfer/sec:      1.00MB
bench-unexpected: %(unexpected)d
%(statuses)s"""


def canned(total=1000, rps="500.00", unexpected=0, extra="",
           statuses=""):
    return WRK_OUT % {"total": total, "rps": rps, "unexpected": unexpected,
                      "extra": extra, "statuses": statuses}


class TestBenchE2E(unittest.TestCase):
    def setUp(self):
        self.e2e = e2e()
        self.tmp = tempfile.mkdtemp(prefix="hssgw-bench-t-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def row(self, out, want=200, key="poll", conns=32):
        r = self.e2e.parse_wrk(out)
        r.update(key=key, name=key, want=want, conns=conns)
        return self.e2e.judge(r)

    def test_parse_and_judge(self):
        """A clean row is valid with its figures; any unexpected status,
        non-2xx or socket error makes it INVALID with the counts; none
        completed is INVALID too."""
        r = self.row(canned())
        self.assertTrue(r["valid"])
        self.assertEqual((r["rps"], r["p50_ms"], r["p99_ms"]),
                         (500.0, 2.1, 1200.0))
        r = self.row(canned(extra="  Socket errors: connect 1, read 2, "
                            "write 0, timeout 3\n"))
        self.assertEqual(r["invalid"], "INVALID (0 non-2xx, 6 socket errors)")
        r = self.row(canned(unexpected=4, extra="  Non-2xx or 3xx "
                            "responses: 4\n", statuses="bench-status: 502 4"))
        self.assertEqual(r["invalid"], "INVALID (4 non-2xx, 0 socket errors)")
        self.assertEqual(r["statuses"], {"502": 4})
        # A 403 row: every answer non-2xx is what it measures...
        r = self.row(canned(extra="  Non-2xx or 3xx responses: 1000\n"),
                     want=403)
        self.assertTrue(r["valid"])
        # ...and one 502 among them is not.
        r = self.row(canned(unexpected=1, extra="  Non-2xx or 3xx "
                            "responses: 1000\n"), want=403)
        self.assertEqual(r["invalid"], "INVALID (1 not 403, 0 socket errors)")
        r = self.row(canned(total=0, rps="0.00"))
        self.assertEqual(r["invalid"],
                         "INVALID (no request completed, 0 socket errors)")
        # No status count at all (a script without the check): an error,
        # never a valid row by default.
        with self.assertRaises(Exception):
            self.row(canned().replace("bench-unexpected: 0\n", ""))

    def test_ratio_against_valid_ceiling_same_conns(self):
        rows = [self.row(canned(rps="1000"), key="ceiling", conns=32),
                self.row(canned(rps="500"), conns=32),
                self.row(canned(rps="900", unexpected=1), key="ceiling",
                         conns=128),
                self.row(canned(rps="400"), conns=128)]
        self.e2e.ratios(rows)
        self.assertEqual([r["ratio"] for r in rows], [1.0, 0.5, None, None])

    def test_rounds_merge_and_versus(self):
        """--rounds: a row's rounds merge into one row whose statuses and
        errors are summed, so one bad round makes the whole row INVALID;
        req/s is the rounds' mean, p99 the worst round's; the ratios to a
        peer are given merged and round by round."""
        a = self.e2e.parse_wrk(canned(rps="1000"))
        b = self.e2e.parse_wrk(canned(rps="3000"))
        m = self.e2e.merge([a, b])
        self.assertEqual(m["rps"], 2000.0)
        self.assertEqual(m["requests"], a["requests"] + b["requests"])
        self.assertEqual(m["rounds_rps"], [1000.0, 3000.0])
        self.assertEqual(m["p99_ms"], max(a["p99_ms"], b["p99_ms"]))
        m.update(key="poll", name="poll", want=200, conns=32)
        self.assertTrue(self.e2e.judge(m)["valid"])
        bad = self.e2e.parse_wrk(canned(
            unexpected=2, extra="  Non-2xx or 3xx responses: 2\n",
            statuses="bench-status: 503 2"))
        m = self.e2e.merge([a, bad, b])
        m.update(key="poll", name="poll", want=200, conns=32)
        self.assertEqual(self.e2e.judge(m)["invalid"],
                         "INVALID (2 non-2xx, 0 socket errors)")
        self.assertEqual(m["statuses"], {"503": 2})
        h = self.e2e.merge([self.e2e.parse_wrk(canned(rps="500")),
                            self.e2e.parse_wrk(canned(rps="2000"))])
        h.update(key="haproxy", name="haproxy", want=200, conns=32)
        p = self.e2e.merge([a, b])
        p.update(key="poll", name="poll", want=200, conns=32)
        rows = [self.e2e.judge(p), self.e2e.judge(h)]
        self.assertEqual(self.e2e.versus(rows, "haproxy"),
                         ["  poll / haproxy at 32: 1.60 (rounds: 2.00, "
                          "1.50; p99 ms: 1200.0, 1200.0)"])
        _, opts = self.e2e.parse_args(["--bin", "b", "--src", "s"])
        self.assertEqual(opts.rounds, 1)

    def test_options(self):
        p = self.e2e.parse_args
        base = ["--bin", "b", "--src", "s"]
        _, a = p(base)
        self.assertEqual(a.connections, [32])
        self.assertEqual(a.keys, ["ceiling", "poll", "coalesced", "denied",
                                  "badsig", "haproxy", "newconn"])
        _, a = p(base + ["--connections", "32,128,512", "--only",
                         "ceiling,haproxy,poll"])
        self.assertEqual(a.connections, [32, 128, 512])
        self.assertEqual(a.keys, ["ceiling", "poll", "haproxy"])
        _, a = p(base + ["--no-haproxy", "--node", "--only", "node,ceiling"])
        self.assertEqual(a.keys, ["ceiling", "node-cache", "node-nocache"])
        _, a = p(base + ["--no-haproxy"])
        self.assertNotIn("haproxy", a.keys)
        devnull = open(os.devnull, "w")
        old, sys.stderr = sys.stderr, devnull
        try:
            for bad in (["--only", "cieling"], ["--only", "node"],
                        ["--connections", "0"], ["--connections", "32,x"]):
                with self.subTest(bad=bad), self.assertRaises(SystemExit):
                    p(base + bad)
        finally:
            sys.stderr = old
            devnull.close()

    def wrk(self, server, want):
        if shutil.which("wrk") is None:
            self.skipTest("wrk not installed (Debian: wrk)")
        script = self.e2e.lua("GET", None, {}, want, self.tmp)
        out = subprocess.run(
            ["wrk", "-t2", "-c4", "-d1s", "--latency", "-s", script,
             "http://127.0.0.1:%d/" % server.port],
            capture_output=True, text=True, check=True, timeout=60).stdout
        r = self.e2e.parse_wrk(out)
        r.update(key="t", name="t", want=want, conns=4)
        return self.e2e.judge(r)

    def test_lua_counts_each_status(self):
        """Against real answers: every 7th a 502 and every 11th a 403 in a
        200 row are counted by status (up to the 4 answers in flight when
        wrk stopped), and the row is INVALID."""
        srv = Server(lambda n: 502 if n % 7 == 0 else 403 if n % 11 == 0
                     else 200)
        try:
            r = self.wrk(srv, 200)
        finally:
            srv.close()
        self.assertGreater(r["requests"], 50)
        self.assertFalse(r["valid"])
        for code in (502, 403):
            got = r["statuses"].get(str(code), 0)
            self.assertLessEqual(got, srv.sent[code])
            self.assertGreaterEqual(got, srv.sent[code] - 4)
        self.assertEqual(set(r["statuses"]), {"502", "403"})
        self.assertEqual(r["unexpected"], sum(r["statuses"].values()))
        self.assertIn("INVALID (%d non-2xx, 0 socket errors)" %
                      r["unexpected"], r["invalid"])

    def test_lua_expected_403_row(self):
        """A row expecting 403 whose every answer is 403 is valid although
        wrk counts them all as non-2xx; one 200 among them makes it
        INVALID."""
        srv = Server(lambda n: 403)
        try:
            r = self.wrk(srv, 403)
        finally:
            srv.close()
        self.assertTrue(r["valid"], r)
        self.assertEqual(r["non2xx"], r["requests"])
        srv = Server(lambda n: 200 if n == 3 else 403)
        try:
            r = self.wrk(srv, 403)
        finally:
            srv.close()
        self.assertEqual(r["invalid"], "INVALID (1 not 403, 0 socket errors)")

    def test_haproxy_config_checks(self):
        """The generated configuration passes haproxy -c with no warning,
        and checks what the docstring says on every request."""
        cfg = self.e2e.haproxy_config(18080, 18443, "/x/ca.pem",
                                      "/x/pub.pem", "MIITtoken", 60)
        for needle in ("http_auth_bearer", "jwt_header_query('$.alg')",
                       "-m str RS256", 'jwt_verify(txn.alg,"/x/pub.pem") '
                       "-m int 1", "jwt_payload_query('$.aud') -m str hssgw",
                       "jwt_payload_query('$.exp','int'),add(60),"
                       "sub(txn.now)", "'$.groups[7]') -m str hss-exporters",
                       "deny deny_status 403 unless allowed_group",
                       "set-header X-Auth-Token MIITtoken",
                       "http-reuse always", "ssl verify required"):
            self.assertIn(needle, cfg)
        with self.assertRaises(Exception):
            self.e2e.haproxy_config(1, 2, "/x/c a.pem", "/x/p.pem", "t", 0)
        if shutil.which("haproxy") is None:
            self.skipTest("haproxy not installed (Debian: haproxy)")
        ca, pub = os.path.join(self.tmp, "ca.pem"), os.path.join(
            self.tmp, "pub.pem")
        key = os.path.join(self.tmp, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", ca, "-days", "1",
                        "-subj", "/CN=t"], check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out",
                        pub], check=True, capture_output=True)
        path = os.path.join(self.tmp, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(self.e2e.haproxy_config(18080, 18443, ca, pub,
                                            "MIITtoken", 60))
        p = subprocess.run(["haproxy", "-c", "-f", path],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("WARNING", p.stdout + p.stderr)


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
