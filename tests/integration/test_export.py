#!/usr/bin/env python3
"""Integration tests: the real nginx (from nginx/*.conf.in), hssgw and
hss-emulator on loopback ports chosen at run time, each test class from a
clean state dir (stack.py).  Run as

    test_export.py --bin BUILD/bin --src REPO

Prints "N passed, N failed" last and exits non-zero on any failure.
Set HSSGW_IT_KEEP=1 to keep the state dirs for a post-mortem.
"""

import json
import os
import re
import resource
import signal
import sys
import threading
import time
import unittest

# Keep the source tree clean: no __pycache__ next to the tests.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runner  # noqa: E402
import stack as st  # noqa: E402
from fixtures import ARGS  # noqa: E402


EXPORT_PATH_HSS = "/v5/%s/image/baseline/export" % st.PROJECT_ID
HSS_CONTENT_TYPE = "application/json;charset=utf-8"


class StackCase(unittest.TestCase):
    """One stack per class; every request goes through call(), which also
    checks the audit trail and that the upstream token never leaks."""

    stack_kw = {}
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = st.Stack(ARGS.bin, ARGS.src, **cls.stack_kw).start()

    @classmethod
    def tearDownClass(cls):
        if cls.stack is not None:
            cls.stack.stop()
            cls.stack = None

    def setUp(self):
        r = self.stack.emulator_control("reset", {})
        self.assertEqual(r.status // 100, 2, r)

    def tearDown(self):
        # The injected IAM token appears in no audit line and no hssgw log
        # line, whatever the test did.
        tok = self.stack.upstream_token.encode()
        self.assertNotIn(tok, self.stack.read_raw("audit", "audit.jsonl")
                         if os.path.exists(self.stack.path(
                             "audit", "audit.jsonl")) else b"")
        self.assertNotIn(tok, self.stack.read_raw("logs", "hssgw.log"))
        self.assertNotIn(tok, self.stack.read_raw("logs", "error.log"))

    # -- helpers ------------------------------------------------------
    def wait_lines(self, getter, n, timeout=3.0):
        deadline = time.monotonic() + timeout
        lines = getter()
        while len(lines) < n and time.monotonic() < deadline:
            time.sleep(0.02)
            lines = getter()
        return lines

    def call(self, fn, *a, audited=True, **kw):
        """Runs one request; with audited, asserts exactly one new audit
        line carrying the X-Request-Id of the answer, and returns
        (response, audit line)."""
        before = len(self.stack.audit_lines())
        r = fn(*a, **kw)
        tok = self.stack.upstream_token.encode()
        self.assertNotIn(tok, r.body)
        self.assertFalse(any(self.stack.upstream_token in v
                             for v in r.headers.values()))
        if not audited:
            time.sleep(0.2)
            self.assertEqual(len(self.stack.audit_lines()), before)
            return r, None
        lines = self.wait_lines(self.stack.audit_lines, before + 1)
        time.sleep(0.05)
        lines = self.stack.audit_lines()
        rid = r.header("X-Request-Id")
        self.assertTrue(rid and re.fullmatch(r"[0-9a-f]{32}", rid), r.headers)
        self.assertEqual(r.count("X-Request-Id"), 1, r.header_list)
        new = lines[before:]
        # One record per answer; an export that went upstream has two,
        # the intent (durable before HSS saw it) and the outcome.
        self.assertIn(len(new), (1, 2), "audit lines for %r" % r)
        self.assertTrue(all(l["request_id"] == rid for l in new), new)
        if len(new) == 2:
            self.assertEqual(new[0]["phase"], "intent")
            self.assertIsNone(new[0]["status"])
            self.assertEqual(new[1]["phase"], "outcome")
        else:
            self.assertEqual(new[0]["phase"], "final")
        line = lines[-1]
        self.assertEqual(line["request_id"], rid)
        self.assertEqual(line["status"], r.status)
        return r, line

    def policy(self, doc):
        path = self.stack.path("policies", "demo.json")
        with open(path + ".tmp", "w") as f:
            json.dump(doc, f)
        os.replace(path + ".tmp", path)

    def sighup_and_wait(self, marker):
        n = self.stack.log_tail("hssgw", 1 << 20).count(marker)
        self.stack.procs["hssgw"].send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.stack.log_tail("hssgw", 1 << 20).count(marker) == n:
            self.assertLess(time.monotonic(), deadline, "no %r" % marker)
            time.sleep(0.02)

    def export(self, body, token="default", **kw):
        if token == "default":
            token = self.stack.mint()
        return self.call(self.stack.export, body, token, **kw)

    def assert_error(self, r, status, code, field=None):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.header("Content-Type") or "".startswith(
            "application/json"), r.headers)
        doc = r.json()
        self.assertEqual(doc["error_code"], code, doc)
        self.assertIsInstance(doc["error_msg"], str)
        self.assertEqual(doc["request_id"], r.header("X-Request-Id"))
        if field is not None:
            self.assertEqual(doc.get("field"), field, doc)
        return doc


class ExportTests(StackCase):
    """The happy path and what HSS receives."""

    def test_valid_request_reaches_hss_exactly(self):
        n = len(self.stack.emulator_lines())
        r, audit = self.export({"project": "demo", "image_type": "cicd"})
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertIsInstance(doc["task_id"], str)
        self.assertTrue(doc["task_id"])
        lines = self.stack.emulator_lines()
        self.assertEqual(len(lines), n + 1)
        e = lines[-1]
        self.assertEqual(e["method"], "POST")
        self.assertEqual(e["path"], EXPORT_PATH_HSS)
        self.assertEqual(e["query"], "enterprise_project_id=0&export_size=1000")
        h = e["headers"]
        self.assertEqual(h["x-auth-token"],
                         self.stack.read_raw("secrets", "demo.token").decode())
        self.assertEqual(h["region"], st.REGION)
        self.assertEqual(h["content-type"], HSS_CONTENT_TYPE)
        self.assertEqual(e["body"], '{"image_type":"cicd"}')
        self.assertEqual(e["status"], 200)
        # The audit record tells who did what and what HSS answered.
        self.assertEqual(audit["client_addr"], "127.0.0.1")
        self.assertEqual(audit["subject"], "dev-alice")
        self.assertEqual(audit["issuer"], st.ISSUER)
        self.assertEqual(audit["action"], "hss:ExportImageBaseline")
        self.assertEqual(audit["project"], "demo")
        self.assertIn("demo", audit["resource"])
        self.assertEqual(audit["decision"], "allow")
        self.assertEqual(audit["statement"]["sid"], st.ALLOW_SID)
        self.assertEqual(audit["statement"]["file"], "demo.json")
        self.assertIsNone(audit["error_code"])
        up = audit["upstream"]
        self.assertEqual(up["status"], 200)
        self.assertEqual(up["task_id"], doc["task_id"])
        self.assertEqual(up["record_total_num"], doc.get("record_total_num"))
        self.assertIn("<redacted>", json.dumps(up["request"]))
        lat = audit["latency_ms"]
        if isinstance(lat, dict):  # per-stage breakdown with a total
            lat = lat["total"]
        self.assertIsInstance(lat, (int, float))
        self.assertIsInstance(audit["time"], str)

    def test_body_fields_and_overrides(self):
        body = {"project": "demo", "operate_all": True,
                "image_type": "private_image", "severity_level": "High",
                "image_id_list": ["a", "b"], "start_latest_scan_time":
                1700000000000, "export_size": 5,
                "enterprise_project_id": "0"}
        # Only the project's own enterprise project by default (#11 item
        # 10; others need projects[].enterprise_projects, test_tasks.py).
        r, _ = self.export(body)
        self.assertEqual(r.status, 200, r)
        e = self.stack.emulator_lines()[-1]
        self.assertEqual(e["query"],
                         "enterprise_project_id=0&export_size=5")
        want = {k: v for k, v in body.items() if k not in (
            "project", "export_size", "enterprise_project_id")}
        self.assertEqual(json.loads(e["body"]), want)
        self.assertNotIn(" ", e["body"])  # compact, as built

    def test_every_signing_algorithm(self):
        for alg in ("RS256", "ES256", "HS256"):
            with self.subTest(alg=alg):
                r, _ = self.export({"project": "demo", "image_type": "cicd"},
                                   token=self.stack.mint(alg=alg))
                self.assertEqual(r.status, 200, r)

    def test_healthz_not_audited(self):
        r, _ = self.call(self.stack.request, "GET", "/healthz",
                         audited=False)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})

    def test_paths_and_methods(self):
        # nginx answers paths outside /v1/exports/ itself: JSON, no audit.
        r, _ = self.call(self.stack.request, "GET", "/admin", audited=False)
        self.assert_error(r, 404, "HSSGW.0004")
        # hssgw's router answers unknown routes and methods before any
        # export starts; every request hssgw answers is audited, with no
        # action (only /healthz is not).
        r, audit = self.call(self.stack.request, "POST", "/v1/exports/other",
                             "{}", {"Content-Type": "application/json",
                                    "Authorization": "Bearer " +
                                    self.stack.mint()})
        self.assert_error(r, 404, "HSSGW.0004")
        self.assertEqual(audit["status"], 404)
        self.assertIsNone(audit["action"])
        self.assertEqual(audit["path"], "/v1/exports/other")
        r, audit = self.call(self.stack.request, "GET", st.EXPORT_PATH, None,
                             {"Authorization": "Bearer " +
                              self.stack.mint()})
        self.assert_error(r, 405, "HSSGW.0005")
        self.assertEqual(audit["error_code"], "HSSGW.0005")


class AuthTests(StackCase):
    """Authentication and authorization.  Each attack sits next to its
    positive control: the same request with a good token succeeds."""

    BODY = {"project": "demo", "image_type": "cicd"}

    def assert_401(self, token, code="HSSGW.0102"):
        n = len(self.stack.emulator_lines())
        r, audit = self.export(self.BODY, token=token)
        self.assert_error(r, 401, code)
        self.assertIn("Bearer", r.header("WWW-Authenticate") or "")
        if code == "HSSGW.0102":
            self.assertIn('error="invalid_token"',
                          r.header("WWW-Authenticate"))
        self.assertEqual(len(self.stack.emulator_lines()), n)
        return audit

    def test_positive_control(self):
        r, _ = self.export(self.BODY)
        self.assertEqual(r.status, 200, r)

    def test_missing_token(self):
        # Gap: a request without credentials must never reach HSS.
        self.assert_401(None, "HSSGW.0101")
        r, _ = self.call(self.stack.export, self.BODY, None,
                         headers={"Authorization": "Basic Zm9vOmJhcg=="})
        self.assert_error(r, 401, "HSSGW.0101")

    def test_expired_token(self):
        # Gap: exp must be enforced (beyond the 60 s leeway).
        now = int(time.time())
        self.assert_401(self.stack.mint(ttl=-3600))
        # Same check on a token Python signs itself (HS256), plus control.
        self.assert_401(self.stack.hs_token(exp=now - 3600, iat=now - 7200,
                                            nbf=now - 7200))
        r, _ = self.export(self.BODY, token=self.stack.hs_token())
        self.assertEqual(r.status, 200, r)

    def test_forged_signature(self):
        # Gap: a token signed by a key the gateway does not trust, even
        # under a trusted kid.
        self.assert_401(self.stack.mint(key="other-rs256.pem",
                                        kid="dev-rs256"))

    def test_alg_none(self):
        # Gap: "alg":"none" must never be accepted (RFC 8725 3.1).
        good = self.stack.hs_token()
        head, claims, _ = good.split(".")
        none = st.b64url(json.dumps({"alg": "none", "typ": "JWT",
                                     "kid": "dev-hs256"}).encode())
        self.assert_401(none + "." + claims + ".")
        r, _ = self.export(self.BODY, token=good)
        self.assertEqual(r.status, 200, r)

    def test_alg_confusion(self):
        # Gap: an RS256 key's public PEM used as an HMAC secret (the
        # algorithm is pinned per key, not taken from the token).
        pub = self.stack.read_raw("keys", "idp-rs256.pub.pem")
        now = int(time.time())
        tok = st.hs256_jwt(pub, {"alg": "HS256", "typ": "JWT",
                                 "kid": "dev-rs256"},
                           {"iss": st.ISSUER, "aud": st.AUDIENCE,
                            "sub": "mallory", "groups": [st.ALLOWED_GROUP],
                            "iat": now, "exp": now + 300})
        self.assert_401(tok)

    def test_wrong_audience_and_issuer(self):
        # Gap: tokens minted for another service or by another IdP.
        self.assert_401(self.stack.mint(aud="someone-else"))
        self.assert_401(self.stack.mint(iss="https://evil.test"))

    def test_tampered_claims(self):
        # Gap: changing the payload after signing (group escalation).
        tok = self.stack.mint(groups=("others",))
        head, _, sig = tok.split(".")
        now = int(time.time())
        forged = st.b64url(json.dumps({
            "iss": st.ISSUER, "aud": st.AUDIENCE, "sub": "dev-alice",
            "groups": [st.ALLOWED_GROUP], "iat": now,
            "exp": now + 300}).encode())
        self.assert_401(head + "." + forged + "." + sig)

    def test_policy_denies(self):
        # Gap: a valid identity the policy does not allow must not reach
        # HSS; the audit says why.
        n = len(self.stack.emulator_lines())
        r, audit = self.export(self.BODY,
                               token=self.stack.mint(sub="dev-bob",
                                                     groups=("others",)))
        self.assert_error(r, 403, "HSSGW.0103")
        self.assertEqual(len(self.stack.emulator_lines()), n)
        self.assertEqual(audit["decision"], "implicit_deny")
        self.assertEqual(audit["subject"], "dev-bob")
        self.assertEqual(audit["error_code"], "HSSGW.0103")
        # Control: the same body with an allowed group goes through.
        r, _ = self.export(self.BODY)
        self.assertEqual(r.status, 200, r)

    def test_explicit_deny_wins(self):
        # Gap: an Allow must not outweigh an applicable Deny.
        n = len(self.stack.emulator_lines())
        tok = self.stack.mint(groups=(st.ALLOWED_GROUP, st.DENY_GROUP))
        r, audit = self.export(self.BODY, token=tok)
        self.assert_error(r, 403, "HSSGW.0103")
        self.assertEqual(audit["decision"], "explicit_deny")
        self.assertEqual(audit["statement"]["sid"], st.DENY_SID)
        self.assertEqual(len(self.stack.emulator_lines()), n)


class FieldTests(StackCase):
    """Input validation: status, code and the field named."""

    CASES = [
        # name, raw body, content type, status, code, field
        ("unknown field", {"project": "demo", "image_type": "cicd",
                           "bogus": 1}, None, 400, "HSSGW.0002", "bogus"),
        ("bad enum", {"project": "demo", "image_type": "floppy"}, None,
         400, "HSSGW.0002", "image_type"),
        ("wrong type", {"project": "demo", "operate_all": "yes"}, None,
         400, "HSSGW.0002", "operate_all"),
        ("too long", {"project": "demo", "image_id": "x" * 129}, None,
         400, "HSSGW.0002", "image_id"),
        ("export_size range", {"project": "demo", "image_type": "cicd",
                               "export_size": -1}, None, 400, "HSSGW.0002",
         "export_size"),
        ("forbidden project_id", {"project": "demo", "image_type": "cicd",
                                  "project_id": "ffff"}, None, 400,
         "HSSGW.0002", "project_id"),
        ("unknown project", {"project": "nope", "image_type": "cicd"},
         None, 400, "HSSGW.0002", "project"),
        ("not JSON", "{not json", None, 400, "HSSGW.0001", None),
        ("not UTF-8", b'{"project":"demo","image_name":"\xff\xfe"}', None,
         400, "HSSGW.0001", None),
        ("too large for hssgw", {"project": "demo",
                                 "image_name": "n" * 20000}, None, 413,
         "HSSGW.0003", None),
        ("wrong content type", {"project": "demo", "image_type": "cicd"},
         "text/plain", 415, "HSSGW.0006", None),
    ]

    def test_cases(self):
        for name, body, ctype, status, code, field in self.CASES:
            with self.subTest(name):
                n = len(self.stack.emulator_lines())
                r, audit = self.export(
                    body, content_type=ctype or "application/json")
                self.assert_error(r, status, code, field)
                self.assertEqual(audit["error_code"], code)
                self.assertEqual(len(self.stack.emulator_lines()), n)

    def test_positive_control(self):
        r, _ = self.export({"project": "demo", "image_type": "cicd",
                            "image_id": "x" * 128, "operate_all": False})
        self.assertEqual(r.status, 200, r)

    def test_too_large_for_nginx(self):
        # Past nginx's 64k cap nginx answers 413 itself (hssgw never sees
        # it, so nothing is audited), still in the JSON error shape.
        r, _ = self.call(self.stack.export, {"project": "demo", "image_name":
                                             "n" * 70000}, self.stack.mint(),
                         audited=False)
        self.assert_error(r, 413, "HSSGW.0003")


class UpstreamTests(StackCase):
    """What HSS answers, and how the gateway passes it on (timeout_ms is
    1000 in the test config)."""

    BODY = {"project": "demo", "image_type": "cicd"}

    def mode(self, **doc):
        doc.setdefault("count", 1)
        r = self.stack.emulator_control("control", doc)
        self.assertEqual(r.status // 100, 2, r)

    def test_hss_error_passed_through(self):
        # HSS's own 5xx status and body come back unchanged.
        self.mode(mode="status", status=500)
        r, audit = self.export(self.BODY)
        self.assertEqual(r.status, 500, r)
        doc = r.json()
        self.assertFalse(str(doc.get("error_code", "")).startswith("HSSGW."),
                         doc)
        self.assertEqual(audit["upstream"]["status"], 500)
        # The emulator answers the same body to a direct call.
        self.mode(mode="status", status=500)
        direct = self.stack.request(
            "POST", EXPORT_PATH_HSS + "?export_size=1000",
            '{"image_type":"cicd"}',
            {"Content-Type": HSS_CONTENT_TYPE, "region": st.REGION,
             "X-Auth-Token": self.stack.upstream_token},
            port=self.stack.emu_port)
        self.assertEqual(direct.status, 500)
        self.assertEqual(direct.json().get("error_code"),
                         doc.get("error_code"))

    def test_malformed_answer(self):
        self.mode(mode="malformed")
        r, audit = self.export(self.BODY)
        self.assert_error(r, 502, "HSSGW.0202")
        self.assertEqual(audit["error_code"], "HSSGW.0202")

    def test_dropped_connection(self):
        self.mode(mode="drop")
        r, _ = self.export(self.BODY)
        self.assert_error(r, 502, "HSSGW.0201")

    def test_timeout(self):
        self.mode(mode="delay", delay_ms=3000)
        t0 = time.monotonic()
        r, _ = self.export(self.BODY)
        self.assert_error(r, 504, "HSSGW.0203")
        self.assertLess(time.monotonic() - t0, 2.9)

    def test_recovers_after_failure(self):
        # count=1: only the next request fails; the one after succeeds.
        self.mode(mode="malformed", count=1)
        r, _ = self.export(self.BODY)
        self.assertEqual(r.status, 502)
        r, _ = self.export(self.BODY)
        self.assertEqual(r.status, 200, r)


class SpoofTests(StackCase):
    """Identity headers a caller can send do not reach the audit trail."""

    def test_client_addr_and_request_id_not_spoofable(self):
        # Gap: nginx passing caller headers through as FastCGI params.
        spoof = {"X-Forwarded-For": "10.9.8.7", "X-Real-IP": "10.9.8.7",
                 "Forwarded": "for=10.9.8.7",
                 "Hssgw-Client-Addr": "10.9.8.7",
                 "Hssgw-Request-Id": "0" * 32,
                 "X-Request-Id": "1" * 32}
        r, audit = self.export({"project": "demo", "image_type": "cicd"},
                               headers=spoof)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(audit["client_addr"], "127.0.0.1")
        self.assertNotIn(r.header("X-Request-Id"), ("0" * 32, "1" * 32))
        self.assertNotIn("10.9.8.7", json.dumps(audit))


class FrontTests(unittest.TestCase):
    """The nginx template alone, with fcgi_echo in hssgw's place: exactly
    which FastCGI params hssgw receives.  Needs no gateway binary."""

    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = st.Stack(ARGS.bin, ARGS.src, rate=2, burst=2)
        cls.stack.start_front()

    @classmethod
    def tearDownClass(cls):
        if cls.stack is not None:
            cls.stack.stop()

    def setUp(self):
        time.sleep(1.1)  # let the rate limit's bucket drain

    def assert_nginx_error(self, r, status, code):
        """nginx's own answers: the gateway's JSON error shape, with the
        request id in the body and in X-Request-Id, sent once."""
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.header("Content-Type").startswith(
            "application/json"), r.headers)
        doc = r.json()
        self.assertEqual(doc["error_code"], code)
        self.assertRegex(doc["request_id"], r"^[0-9a-f]{32}$")
        self.assertEqual(r.header("X-Request-Id"), doc["request_id"])
        self.assertEqual(r.count("X-Request-Id"), 1, r.header_list)

    def test_param_list_is_exact(self):
        # Gap: an included fastcgi_params or fastcgi_pass_request_headers
        # would hand caller headers (HTTP_X_FORWARDED_FOR, ...) to hssgw.
        r = self.stack.request(
            "POST", st.EXPORT_PATH + "?a=b", '{"x":1}',
            {"Content-Type": "application/json",
             "Authorization": "Bearer abc",
             "X-Forwarded-For": "10.9.8.7", "X-Real-IP": "10.9.8.7",
             "Hssgw-Client-Addr": "10.9.8.7", "Hssgw-Request-Id": "f" * 32})
        self.assertEqual(r.status, 200, r)
        p = r.json()["params"]
        self.assertEqual(sorted(p), sorted([
            "REQUEST_METHOD", "DOCUMENT_URI", "QUERY_STRING", "CONTENT_TYPE",
            "CONTENT_LENGTH", "HTTP_AUTHORIZATION", "HSSGW_REQUEST_ID",
            "HSSGW_CLIENT_ADDR"]))
        self.assertEqual(p["REQUEST_METHOD"], "POST")
        self.assertEqual(p["DOCUMENT_URI"], st.EXPORT_PATH)
        self.assertEqual(p["QUERY_STRING"], "a=b")
        self.assertEqual(p["CONTENT_LENGTH"], "7")
        self.assertEqual(p["HTTP_AUTHORIZATION"], "Bearer abc")
        self.assertEqual(p["HSSGW_CLIENT_ADDR"], "127.0.0.1")
        self.assertRegex(p["HSSGW_REQUEST_ID"], r"^[0-9a-f]{32}$")
        self.assertNotEqual(p["HSSGW_REQUEST_ID"], "f" * 32)
        self.assertEqual(r.json()["body"], '{"x":1}')

    def test_absent_headers_absent_params(self):
        r = self.stack.request("GET", "/healthz")
        self.assertEqual(r.status, 200, r)
        p = r.json()["params"]
        for k in ("HTTP_AUTHORIZATION", "CONTENT_TYPE", "CONTENT_LENGTH"):
            self.assertNotIn(k, p)
        self.assertEqual(p["DOCUMENT_URI"], "/healthz")

    def test_only_two_paths_reach_hssgw(self):
        n = len(self.stack.echo.seen)
        for path in ("/", "/v1/exportsX", "/v1/other", "/_emulator/reset",
                     "/healthz/x"):
            r = self.stack.request("GET", path)
            self.assert_nginx_error(r, 404, "HSSGW.0004")
            time.sleep(0.6)
        self.assertEqual(len(self.stack.echo.seen), n)
        # Control: the gateway path does reach it.
        self.stack.request("GET", st.EXPORT_PATH + "x")
        self.assertEqual(len(self.stack.echo.seen), n + 1)

    def test_body_cap(self):
        r = self.stack.request("POST", st.EXPORT_PATH, "x" * (64 * 1024 + 1),
                               {"Content-Type": "application/json"})
        self.assert_nginx_error(r, 413, "HSSGW.0003")
        time.sleep(0.6)
        r = self.stack.request("POST", st.EXPORT_PATH, "x" * (64 * 1024),
                               {"Content-Type": "application/json"})
        self.assertEqual(r.status, 200)

    def test_rate_limit(self):
        # rate=2r/s burst=2: a quick volley of 8 must see 429s in JSON.
        codes = [self.stack.request("GET", "/healthz") for _ in range(8)]
        limited = [r for r in codes if r.status == 429]
        self.assertTrue(limited, codes)
        self.assert_nginx_error(limited[0], 429, "HSSGW.0007")
        self.assertEqual(limited[0].header("Retry-After"), "1")
        self.assertEqual(codes[0].status, 200)

    def test_zz_backend_down(self):
        # Runs last (name order): hssgw gone -> JSON 503 from nginx.
        self.stack.stop_backend()
        r = self.stack.request("GET", "/healthz")
        self.assert_nginx_error(r, 503, "HSSGW.0304")


class LifecycleTests(StackCase):
    """hssgw serve: SIGTERM finishes the request in flight, then exits."""
    stack_kw = {"timeout_ms": 8000}

    def test_no_core_dumps(self):
        # hssgw holds the IAM token: a core file would hold it too.
        def core_limit(pid):
            with open("/proc/%d/limits" % pid) as f:
                line = [l for l in f if l.startswith("Max core file size")]
            return line[0].split()[4:6]
        self.assertEqual(core_limit(self.stack.procs["hssgw"].pid),
                         ["0", "0"])
        # Positive control: the emulator, started the same way, keeps the
        # limits it inherited (ours).
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        text = ["unlimited" if v == resource.RLIM_INFINITY else str(v)
                for v in (soft, hard)]
        self.assertEqual(core_limit(self.stack.procs["emulator"].pid), text)

    def test_sigterm_finishes_in_flight(self):
        self.stack.emulator_control("control", {"mode": "delay",
                                                "delay_ms": 1500})
        token = self.stack.mint()
        box = {}

        def call():
            box["r"] = self.stack.export({"project": "demo"}, token)

        t = threading.Thread(target=call)
        t.start()
        # Wait until the request has reached the emulator, i.e. hssgw is
        # in the middle of it.
        n0 = len(self.stack.emulator_lines())
        deadline = time.monotonic() + 5
        while (len(self.stack.emulator_lines()) == n0 and
               time.monotonic() < deadline):
            time.sleep(0.02)
        p = self.stack.procs["hssgw"]
        p.send_signal(signal.SIGTERM)
        t.join(10)
        self.assertEqual(p.wait(timeout=10), 0)
        self.assertEqual(box["r"].status, 200, box["r"])
        self.assertIn("task_id", box["r"].json())
        # Its audit record was written before the process went away.
        self.assertEqual(self.stack.audit_lines()[-1]["status"], 200)


class ReloadTests(StackCase):
    """SIGHUP swaps config, keys and policies atomically; an invalid set is
    refused and the old one keeps serving."""

    def test_reload_under_load(self):
        token = self.stack.mint()
        rev0 = self.export({"project": "demo"}, token)[1]["policy_revision"]
        results, stop = [], threading.Event()

        def stream():
            while not stop.is_set():
                results.append(self.stack.export({"project": "demo"},
                                                 token).status)

        threads = [threading.Thread(target=stream) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        # The new set no longer allows hss-exporters.
        deny = json.loads(json.dumps(st.DEMO_POLICY))
        deny["Statement"][1]["Principal"] = {"jwt:groups": "new-team"}
        self.policy(deny)
        self.sighup_and_wait("reloaded")
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)
        # Not one failed request: each is allowed (old set) or denied (new).
        self.assertTrue(results)
        self.assertEqual(set(results) - {200, 403}, set(), results)
        self.assertIn(200, results)
        self.assertEqual(results[-1], 403)
        # Not one mis-decided request: every record's decision is the one
        # its own policy revision gives.
        recs = [r for r in self.stack.audit_lines()
                if r["action"] == "hss:ExportImageBaseline"]
        revs = {r["policy_revision"] for r in recs}
        self.assertEqual(len(revs), 2, revs)
        for r in recs:
            want = "allow" if r["policy_revision"] == rev0 else \
                "implicit_deny"
            self.assertEqual(r["decision"], want, r)
        self.assertIn(rev0, self.stack.log_tail("hssgw", 1 << 20))
        # Positive control: the new set allows its own group.
        r, _ = self.export({"project": "demo"},
                           self.stack.mint(groups=("new-team",)))
        self.assertEqual(r.status, 200, r)
        # Back to the original set for the other tests.
        self.policy(st.DEMO_POLICY)
        self.sighup_and_wait("reloaded")

    def test_shadow_policies_recorded_not_enforced(self):
        # A shadow set that would deny hss-exporters: the request is still
        # allowed, and the audit record shows whom the change would deny.
        sdir = self.stack.path("shadow-policies")
        os.makedirs(sdir, exist_ok=True)
        shadow = json.loads(json.dumps(st.DEMO_POLICY))
        shadow["Statement"][1]["Principal"] = {"jwt:groups": "new-team"}
        with open(os.path.join(sdir, "next.json"), "w") as f:
            json.dump(shadow, f)
        conf = dict(self.stack.config, shadow_policies_dir=sdir)
        with open(self.stack.config_path, "w") as f:
            json.dump(conf, f)
        try:
            self.sighup_and_wait("reloaded")
            r, rec = self.export({"project": "demo"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(rec["decision"], "allow")
            self.assertEqual(rec["shadow"]["decision"], "implicit_deny")
            self.assertNotEqual(rec["shadow"]["policy_revision"],
                                rec["policy_revision"])
            # The shadow set's own explicit deny names its statement.
            r, rec = self.export({"project": "demo"}, self.stack.mint(
                groups=(st.ALLOWED_GROUP, st.DENY_GROUP)))
            self.assertEqual(r.status, 403)
            self.assertEqual(rec["shadow"]["decision"], "explicit_deny")
            self.assertEqual(rec["shadow"]["statement"]["file"], "next.json")
        finally:
            with open(self.stack.config_path, "w") as f:
                json.dump(self.stack.config, f)
            self.sighup_and_wait("reloaded")
        # Positive control: without a shadow set the member is null.
        r, rec = self.export({"project": "demo"})
        self.assertIsNone(rec["shadow"])

    def test_invalid_reload_refused(self):
        token = self.stack.mint()
        r, before = self.export({"project": "demo"}, token)
        self.assertEqual(r.status, 200)
        bad = json.loads(json.dumps(st.DEMO_POLICY))
        bad["Statement"][1]["Effect"] = "Alow"
        self.policy(bad)
        try:
            self.sighup_and_wait("reload refused")
            self.assertIn("Effect", self.stack.log_tail("hssgw"))
            r, after = self.export({"project": "demo"}, token)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(after["policy_revision"],
                             before["policy_revision"])
        finally:
            self.policy(st.DEMO_POLICY)


class ExamplePolicyTests(StackCase):
    """The shipped example policies (policies/examples/), enforced through
    nginx: an allowed request reaches HSS, a denied one does not and gets
    403 naming the action, resource and request id."""

    def setUp(self):
        super().setUp()
        pdir = self.stack.path("policies")
        os.unlink(os.path.join(pdir, "demo.json"))
        src = os.path.join(ARGS.src, "policies", "examples")
        for name in sorted(os.listdir(src)):
            with open(os.path.join(src, name)) as f, \
                    open(os.path.join(pdir, name), "w") as g:
                g.write(f.read())
        self.sighup_and_wait("reloaded")

    def tearDown(self):
        pdir = self.stack.path("policies")
        for name in os.listdir(pdir):
            os.unlink(os.path.join(pdir, name))
        self.policy(st.DEMO_POLICY)
        self.sighup_and_wait("reloaded")
        super().tearDown()

    def denied(self, body, token):
        n = len(self.stack.emulator_lines())
        r, rec = self.export(body, token)
        doc = self.assert_error(r, 403, "HSSGW.0103")
        self.assertIn("hss:ExportImageBaseline", doc["error_msg"])
        self.assertIn("hss:%s:%s" % (st.REGION, body["project"]),
                      doc["error_msg"])
        self.assertEqual(len(self.stack.emulator_lines()), n)
        return rec

    def allowed(self, body, token):
        n = len(self.stack.emulator_lines())
        r, rec = self.export(body, token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(self.stack.emulator_lines()), n + 1)
        return rec

    def test_team_limited_to_own_namespaces(self):
        tok = self.stack.mint(groups=(), claims={"team": "payments"})
        rec = self.allowed({"project": "demo", "namespace": "payments-api"},
                           tok)
        self.assertEqual(rec["statement"]["sid"], "TeamOwnNamespaces")
        rec = self.denied({"project": "demo", "namespace": "billing"}, tok)
        self.assertEqual(rec["decision"], "implicit_deny")
        # No namespace at all: the condition key is missing, no match.
        self.denied({"project": "demo"}, tok)

    def test_security_team_size_limit(self):
        tok = self.stack.mint(groups=("secops",))
        self.allowed({"project": "demo", "export_size": 5000}, tok)
        self.denied({"project": "demo", "export_size": 5001}, tok)

    def test_guardrail_deny_wins(self):
        tok = self.stack.mint(groups=("secops",),
                              claims={"email_verified": False})
        rec = self.denied({"project": "demo", "export_size": 10}, tok)
        self.assertEqual(rec["decision"], "explicit_deny")
        self.assertEqual(rec["statement"]["sid"], "NoUnverifiedEmail")
        self.assertEqual(rec["statements"][0]["file"], "90-guardrails.json")


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
