#!/usr/bin/env python3
"""Integration tests for the gateway's own credentials (issue 4): IAM
tokens obtained from the emulator's IAM, refreshed ahead of expiry under a
steady stream, one IAM call for 50 concurrent requests at expiry, a revoked
token refreshed and retried once, a doubly rejected credential answered 502
(never 401), a bad password failing readiness, agency tokens, AK/SK
signatures checked by the emulator's independent verifier, and a search of
every log, audit record and response for the secrets.  Everything runs
through real nginx + hssgw + hss-emulator (stack.py); "hssgw translate" is
checked for the headers each credential type adds.  Run as

    test_credentials.py --bin BUILD/bin --src REPO

Prints "N passed, N failed" last and exits non-zero on any failure.
Set HSSGW_IT_KEEP=1 to keep the state dirs for a post-mortem.
"""

import copy
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import unittest

# Keep the source tree clean: no __pycache__ next to the tests.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runner  # noqa: E402
import stack as st  # noqa: E402
from fixtures import ARGS, fp  # noqa: E402


PID_AGENCY = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"
PID_SIGNED = "5155155155155155155155155155155a"
PID_BADSK = "bad5bad5bad5bad5bad5bad5bad5bad5"
IAM_USER, IAM_DOMAIN = "svc-hssgw", "acme"
OPS_USER, OPS_DOMAIN = "ops-agent", "acme-ops"
AGENCY = "hss-export"
ACCESS_KEY = "AKEMU" + "0123456789ABCDEF"
EXPORT_HSS = "/v5/%s/image/baseline/export"


def pw():
    return "pw-" + secrets.token_urlsafe(24)


class CredStack(st.Stack):
    """A Stack whose projects use the credential entries given, against an
    emulator configured with the matching IAM users, agencies and AK/SK
    pairs.  spec keys: projects [(alias, project_id, credentials name)],
    credentials (hssgw entries), secrets {relative path: content} (written
    0600), emulator (extra emulator config keys), ready (whether /healthz
    should come up 200).  Every response is kept for the leak search."""

    def __init__(self, bindir, srcdir, spec, **kw):
        super().__init__(bindir, srcdir, **kw)
        self.spec = spec
        self.responses = []
        self._rlock = threading.Lock()

    def _configs(self):
        super()._configs()
        for rel, text in self.spec.get("secrets", {}).items():
            st.write_file(self.path(rel), text, 0o600)
        emu = {"projects": [{"project_id": st.PROJECT_ID,
                             "tokens": [self.upstream_token]}]}
        emu["projects"] += [{"project_id": p[1], "tokens": []}
                            for p in self.spec["projects"]
                            if p[1] != st.PROJECT_ID]
        emu.update(self.spec.get("emulator", {}))
        st.write_file(self.path("emulator.json"), json.dumps(emu), 0o600)
        # Every project of this stack is open to the exporters group.
        pol = copy.deepcopy(st.DEMO_POLICY)
        pol["Statement"][1]["Resource"] = "hss:*:*"
        st.write_file(self.path("policies", "demo.json"), json.dumps(pol))
        iam = "https://127.0.0.1:%d" % self.emu_port
        creds = copy.deepcopy(self.spec["credentials"])
        for c in creds:
            if "iam_endpoint" in c:
                c["iam_endpoint"] = iam
        self.config["credentials"] = creds
        # These tests send many alike exports: lift the upstream budget to
        # its cap and turn coalescing off, where this build has them.
        self.config.setdefault("tasks", {}).update(
            {"budget_per_minute": 600, "coalesce_window_ms": 0})
        self.config["projects"] = [{
            "alias": alias, "project_id": pid, "region": st.REGION,
            "endpoint": "https://127.0.0.1:%d" % self.emu_port,
            "enterprise_project_id": "0", "credentials": cred}
            for alias, pid, cred in self.spec["projects"]]
        st.write_file(self.config_path, json.dumps(self.config, indent=1))
        p = subprocess.run([self.hssgw, "check-config", "--config",
                            self.config_path], capture_output=True,
                           timeout=60)
        if p.returncode != 0 and b"tasks: unknown key" in p.stderr:
            del self.config["tasks"]
            st.write_file(self.config_path,
                          json.dumps(self.config, indent=1))

    # hssgw fetches its first tokens at start, from IAM behind the
    # emulator's nginx front: start it last, once that front answers, or
    # the first tokens would be lost to a start-up race.
    def _start_hssgw(self):
        pass

    def _start_nginx(self):
        super()._start_nginx()
        deadline = time.monotonic() + 20
        while True:
            try:
                if (os.path.exists(self.emu_sock) and
                        self.emulator_control("reset", {}).status // 100
                        == 2):
                    break
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise st.StackError("emulator front not ready\n" +
                                    self.log_tail("emulator"))
            time.sleep(0.05)
        super()._start_hssgw()

    def _wait_ready(self, timeout=20.0):
        if self.spec.get("ready", True):
            return super()._wait_ready(timeout)
        # Readiness must fail: wait for hssgw to answer /healthz at all.
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise st.StackError("%s exited with %s:\n%s" % (
                        name, proc.returncode, self.log_tail(name)))
            try:
                if os.path.exists(self.gw_sock) and \
                        os.path.exists(self.emu_sock):
                    r = self.request("GET", "/healthz")
                    last = r
                    # HSSGW.0304 is nginx answering for an absent hssgw.
                    if r.status == 503 and b"HSSGW.0304" not in r.body:
                        return
            except (OSError, http.client.HTTPException) as ex:
                last = ex
            time.sleep(0.1)
        raise st.StackError("hssgw not answering: %r\n%s" % (
            last, self.log_tail("hssgw")))

    def request(self, *a, **kw):
        r = super().request(*a, **kw)
        with self._rlock:
            self.responses.append(r)
        return r

    # -- emulator observations -----------------------------------------
    def iam_calls(self):
        r = self.request("GET", "/_emulator/iam-calls", port=self.emu_port)
        assert r.status == 200, r
        return r.json()

    def reset(self):
        r = self.emulator_control("reset", {})
        assert r.status // 100 == 2, r
        r = self.emulator_control("control", {"mode": "ok"})
        assert r.status == 200, r

    def exports_seen(self, pid=st.PROJECT_ID):
        return [l for l in self.emulator_lines()
                if l["path"] == EXPORT_HSS % pid]

    def issued_tokens(self):
        """Every IAM token hssgw sent anywhere, from the emulator's record
        file (which keeps tokens on purpose)."""
        toks = set()
        for l in self.emulator_lines():
            t = l.get("headers", {}).get("x-auth-token")
            if t is not None and t.startswith("MIIemu"):
                toks.add(t)
        return toks


class CredCase(unittest.TestCase):
    """One CredStack per class, started from a clean state dir."""

    spec = None
    stack_kw = {}
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = CredStack(ARGS.bin, ARGS.src, cls.spec,
                              **cls.stack_kw).start()

    @classmethod
    def tearDownClass(cls):
        if cls.stack is not None:
            cls.stack.stop()
            cls.stack = None

    def setUp(self):
        self.stack.reset()

    def wait_audit(self, rid, n, timeout=3.0):
        """The audit records of request rid, once there are n of them."""
        deadline = time.monotonic() + timeout
        while True:
            recs = [l for l in self.stack.audit_lines()
                    if l["request_id"] == rid]
            if len(recs) >= n or time.monotonic() > deadline:
                return recs
            time.sleep(0.02)

    def export(self, alias="demo", token=None):
        return self.stack.export({"project": alias,
                                  "image_type": "private_image"},
                                 token or self.stack.mint())

    def assert_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json()["error_code"], code, r)

    def scan(self, needles):
        """Where any needle occurs: every log file, every audit file, every
        response (status line aside: headers and body) of this stack's run.
        Returns a list of (place, needle fingerprint)."""
        hits = []
        places = []
        for d in ("logs", "audit"):
            for name in sorted(os.listdir(self.stack.path(d))):
                places.append((d + "/" + name,
                               self.stack.read_raw(d, name)))
        with self.stack._rlock:
            resps = list(self.stack.responses)
        for i, r in enumerate(resps):
            blob = r.body + b"\n" + "\n".join(
                "%s: %s" % kv for kv in r.header_list).encode()
            places.append(("response %d" % i, blob))
        for place, data in places:
            for n in needles:
                if n.encode() in data:
                    hits.append((place, fp(n)))
        return hits, len(places)

    def assert_no_secret_anywhere(self, needles):
        needles = [n for n in needles if n]
        self.assertTrue(needles)
        hits, nplaces = self.scan(needles)
        # Never print a secret: only where and its fingerprint.
        self.assertEqual(hits, [], "secrets leaked (place, fp)")
        self.assertGreater(nplaces, 5)
        # Positive control: the same search finds the tokens in the one
        # file that holds them on purpose (the emulator's record file), so
        # an empty result above means absent, not a broken search.
        toks = [n for n in needles if n.startswith("MIIemu")]
        if toks:
            rec = self.stack.read_raw("emulator.jsonl")
            self.assertTrue(all(t.encode() in rec for t in toks))


MAIN_PW, OPS_PW = pw(), pw()
SECRET_KEY = "SK" + secrets.token_hex(20)
WRONG_SECRET_KEY = "SK" + secrets.token_hex(20)


class IamTokens(CredCase):
    """iam_password, iam_agency and aksk side by side, long-lived tokens."""

    spec = {
        "projects": [("demo", st.PROJECT_ID, "main"),
                     ("delegated", PID_AGENCY, "delegated"),
                     ("signed", PID_SIGNED, "signed"),
                     ("badsk", PID_BADSK, "badsk")],
        "credentials": [
            {"name": "main", "type": "iam_password", "iam_endpoint": "",
             "user": IAM_USER, "domain": IAM_DOMAIN,
             "password_file": "secrets/main.pw"},
            {"name": "ops", "type": "iam_password", "iam_endpoint": "",
             "user": OPS_USER, "domain": OPS_DOMAIN,
             "password_file": "secrets/ops.pw"},
            {"name": "delegated", "type": "iam_agency", "iam_endpoint": "",
             "base": "ops", "domain": IAM_DOMAIN, "agency": AGENCY},
            {"name": "signed", "type": "aksk", "access_key": ACCESS_KEY,
             "secret_key_file": "secrets/signed.sk"},
            {"name": "badsk", "type": "aksk", "access_key": ACCESS_KEY,
             "secret_key_file": "secrets/badsk.sk"},
        ],
        "secrets": {"secrets/main.pw": MAIN_PW + "\n",
                    "secrets/ops.pw": OPS_PW + "\n",
                    "secrets/signed.sk": SECRET_KEY + "\n",
                    "secrets/badsk.sk": WRONG_SECRET_KEY + "\n"},
        "emulator": {
            "iam": {"users": [
                {"domain": IAM_DOMAIN, "name": IAM_USER,
                 "password": MAIN_PW, "projects": [st.PROJECT_ID]},
                {"domain": OPS_DOMAIN, "name": OPS_USER,
                 "password": OPS_PW, "projects": []}],
                "agencies": [{"domain": IAM_DOMAIN, "name": AGENCY,
                              "projects": [PID_AGENCY]}],
                "token_ttl_s": 3600},
            "aksk": [{"access_key": ACCESS_KEY, "secret_key": SECRET_KEY,
                      "projects": [PID_SIGNED, PID_BADSK]}],
        },
    }

    def test_token_from_iam_accepted_by_hss(self):
        # Readiness: every project's credential was primed at start.
        self.assertEqual(self.stack.request("GET", "/healthz").status, 200)
        self.assertGreaterEqual(self.stack.iam_calls()["tokens_issued"], 1)
        iam = [l for l in self.stack.emulator_lines()
               if l["path"] == "/v3/auth/tokens"]
        self.assertTrue(iam)
        self.assertTrue(all(l["status"] == 201 for l in iam), iam)
        r = self.export()
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.json()["task_id"], r"^[0-9a-f]{32}$")
        # Primed at start: the request itself needed no IAM call.
        self.assertEqual(self.stack.iam_calls()["iam_calls"], 0)
        rec = self.wait_audit(r.header("X-Request-Id"), 2)[-1]
        self.assertEqual(rec["credentials"], "main")
        self.assertEqual(rec["status"], 200)
        # assertTrue, not assertEqual: a failure must not print the token.
        self.assertTrue(rec["upstream"]["request"]["headers"]
                        ["X-Auth-Token"] == "<redacted>", "not redacted")
        # HSS saw an IAM-issued token, the one the audit fingerprints.
        sent = self.stack.exports_seen()[-1]
        tok = sent["headers"]["x-auth-token"]
        self.assertTrue(tok.startswith("MIIemu"))
        self.assertEqual(sent["status"], 200)
        self.assertEqual(rec["credential_fp"], fp(tok))

    def test_revoked_token_refreshed_once_and_retried(self):
        r = self.export()
        self.assertEqual(r.status, 200, r)
        old = self.wait_audit(r.header("X-Request-Id"), 2)[-1]
        rv = self.stack.emulator_control("revoke",
                                         {"token_fp": old["credential_fp"]})
        self.assertEqual(rv.json(), {"revoked": 1})
        self.stack.reset()
        n_sent = len(self.stack.exports_seen())
        r = self.export()
        # The caller never notices: one refresh, one retry, 200.
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.stack.iam_calls()["iam_calls"], 1)
        recs = self.wait_audit(r.header("X-Request-Id"), 2)
        self.assertEqual([x["phase"] for x in recs], ["intent", "outcome"])
        # The intent names the revoked token, the outcome the fresh one.
        self.assertEqual(recs[0]["credential_fp"], old["credential_fp"])
        self.assertNotEqual(recs[1]["credential_fp"], old["credential_fp"])
        self.assertEqual(recs[1]["status"], 200)
        sent = self.stack.exports_seen()[n_sent:]
        self.assertEqual([s["status"] for s in sent], [401, 200])
        self.assertEqual(fp(sent[0]["headers"]["x-auth-token"]),
                         old["credential_fp"])
        self.assertEqual(fp(sent[1]["headers"]["x-auth-token"]),
                         recs[1]["credential_fp"])
        # The fresh token is cached: no further IAM call.
        self.assertEqual(self.export().status, 200)
        self.assertEqual(self.stack.iam_calls()["iam_calls"], 1)

    def test_rejected_twice_is_502_never_401(self):
        # HSS rejects the token and then the fresh one: the gateway's own
        # credentials are bad, which must not read as the caller's JWT.
        self.stack.emulator_control("control", {"mode": "status",
                                                "status": 401, "count": 2})
        n_sent = len(self.stack.exports_seen())
        r = self.export()
        self.assert_error(r, 502, "HSSGW.0204")
        self.assertIsNone(r.header("WWW-Authenticate"))
        self.assertEqual(self.stack.iam_calls()["iam_calls"], 1)
        sent = self.stack.exports_seen()[n_sent:]
        self.assertEqual([s["status"] for s in sent], [401, 401])
        self.assertNotEqual(sent[0]["headers"]["x-auth-token"],
                            sent[1]["headers"]["x-auth-token"])
        rec = self.wait_audit(r.header("X-Request-Id"), 2)[-1]
        self.assertEqual((rec["status"], rec["error_code"]),
                         (502, "HSSGW.0204"))
        # Positive control: once HSS accepts again, so does the gateway.
        self.assertEqual(self.export().status, 200)

    def test_agency_token(self):
        r = self.export("delegated")
        self.assertEqual(r.status, 200, r)
        rec = self.wait_audit(r.header("X-Request-Id"), 2)[-1]
        self.assertEqual(rec["credentials"], "delegated")
        sent = self.stack.exports_seen(PID_AGENCY)[-1]
        tok = sent["headers"]["x-auth-token"]
        self.assertEqual(rec["credential_fp"], fp(tok))
        # The agency token came from an assume_role call authenticated by
        # the delegated account's own (domain-scoped) token.
        role = [l for l in self.stack.emulator_lines()
                if l["path"] == "/v3/auth/tokens"
                and "x-auth-token" in l["headers"]]
        self.assertTrue(role)
        self.assertEqual(role[-1]["status"], 201)
        self.assertNotEqual(role[-1]["headers"]["x-auth-token"], tok)

    def test_aksk_signed_and_verified(self):
        n_sent = len(self.stack.exports_seen(PID_SIGNED))
        r = self.export("signed")
        self.assertEqual(r.status, 200, r)
        sent = self.stack.exports_seen(PID_SIGNED)[n_sent:]
        self.assertEqual(len(sent), 1)
        h = sent[0]["headers"]
        self.assertNotIn("x-auth-token", h)
        self.assertRegex(h["authorization"],
                         r"^SDK-HMAC-SHA256 Access=%s, SignedHeaders=[a-z;-]+"
                         r", Signature=[0-9a-f]{64}$" % ACCESS_KEY)
        self.assertRegex(h["x-sdk-date"], r"^\d{8}T\d{6}Z$")
        self.assertEqual(h["x-project-id"], PID_SIGNED)
        rec = self.wait_audit(r.header("X-Request-Id"), 2)[-1]
        self.assertEqual(rec["credentials"], "signed")
        self.assertEqual(rec["credential_fp"], fp(ACCESS_KEY))
        self.assertTrue(rec["upstream"]["request"]["headers"]
                        ["Authorization"] == "<redacted>", "not redacted")

    def test_aksk_wrong_secret_rejected(self):
        # Gap pinned: an emulator verifier that accepted any signature
        # would pass test_aksk_signed_and_verified.  Same AK, wrong SK:
        # both attempts fail verification and the caller gets 502.
        n_sent = len(self.stack.exports_seen(PID_BADSK))
        r = self.export("badsk")
        self.assert_error(r, 502, "HSSGW.0204")
        sent = self.stack.exports_seen(PID_BADSK)[n_sent:]
        self.assertEqual([s["status"] for s in sent], [401, 401])
        # Positive control, same AK and project set, right SK.
        self.assertEqual(self.export("signed").status, 200)

    def test_zz_no_secret_in_logs_audit_or_responses(self):
        toks = self.stack.issued_tokens()
        # At least the main, agency and base tokens, and every token the
        # emulator issued was used (so the search covers all of them).
        self.assertGreaterEqual(len(toks), 3)
        self.assertEqual(len(toks), self.stack.iam_calls()["tokens_issued"])
        self.assert_no_secret_anywhere(
            [MAIN_PW, OPS_PW, SECRET_KEY, WRONG_SECRET_KEY] + sorted(toks))
        # The emulator records IAM calls without their body (the password)
        # and never sees the secret key.
        rec = self.stack.read_raw("emulator.jsonl")
        for s in (MAIN_PW, OPS_PW, SECRET_KEY, WRONG_SECRET_KEY):
            self.assertNotIn(s.encode(), rec)


SHORT_PW = pw()
TTL_S = 3


class ShortLivedTokens(CredCase):
    """Tokens that live TTL_S seconds, refreshed 1 s ahead of expiry."""

    stack_kw = {"threads": 8}
    spec = {
        "projects": [("demo", st.PROJECT_ID, "main")],
        "credentials": [
            {"name": "main", "type": "iam_password", "iam_endpoint": "",
             "user": IAM_USER, "domain": IAM_DOMAIN,
             "password_file": "secrets/main.pw", "refresh_margin_s": 1}],
        "secrets": {"secrets/main.pw": SHORT_PW},
        "emulator": {"iam": {"users": [
            {"domain": IAM_DOMAIN, "name": IAM_USER, "password": SHORT_PW,
             "projects": [st.PROJECT_ID]}], "token_ttl_s": TTL_S}},
    }

    def test_50_concurrent_at_expiry_one_iam_call(self):
        jwt = self.stack.mint()
        # hssgw refreshes ahead of expiry on its own, even idle, so the
        # moment "no valid cached token" is made here: wait for one of its
        # refreshes (the next is then about a lifetime minus the margin
        # away), then revoke every token.  All 50 requests hit the dead
        # token at once; exactly one of them may go to IAM.
        c0 = self.stack.iam_calls()["iam_calls"]
        deadline = time.monotonic() + 2 * TTL_S
        while self.stack.iam_calls()["iam_calls"] == c0:
            self.assertLess(time.monotonic(), deadline, "no refresh")
            time.sleep(0.01)
        rv = self.stack.emulator_control("revoke", {"all": True})
        self.assertEqual(rv.status, 200, rv)
        self.stack.reset()
        n_sent = len(self.stack.exports_seen())
        barrier = threading.Barrier(50)
        results = [None] * 50

        def call(i):
            barrier.wait()
            try:
                results[i] = self.export(token=jwt).status
            except Exception as ex:  # noqa: BLE001 - reported below
                results[i] = repr(ex)

        ts = [threading.Thread(target=call, args=(i,)) for i in range(50)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(results, [200] * 50)
        self.assertEqual(self.stack.iam_calls()["iam_calls"], 1)
        # All 50 waited for the one fresh token: none sent the expired one.
        # Each sent the revoked token once (401), then the one fresh token.
        sent = self.stack.exports_seen()[n_sent:]
        ok = [x for x in sent if x["status"] == 200]
        self.assertEqual(len(ok), 50)
        self.assertEqual(len({x["headers"]["x-auth-token"] for x in ok}), 1)
        self.assertTrue(all(x["status"] in (200, 401) for x in sent), sent)

    # The gap this pins: /healthz only reads the token cache; if only
    # export requests refreshed it, an idle spell longer than a token's
    # lifetime (or an IAM outage at start) would leave readiness at 503
    # until an export arrived, which a readiness-gated load balancer never
    # sends.  hssgw's main thread refreshes credentials once a second.
    def test_readiness_recovers_after_idle_expiry(self):
        self.assertEqual(self.stack.request("GET", "/healthz").status, 200)
        time.sleep(TTL_S + 0.5)
        deadline = time.monotonic() + 3
        while self.stack.request("GET", "/healthz").status != 200:
            self.assertLess(time.monotonic(), deadline, "still not ready")
            time.sleep(0.2)

    def test_steady_stream_over_two_lifetimes(self):
        jwt = self.stack.mint()
        self.assertEqual(self.export(token=jwt).status, 200)
        self.stack.reset()
        before = self.stack.iam_calls()["tokens_issued"]
        n_sent = len(self.stack.exports_seen())
        results = []
        lock = threading.Lock()
        stop = time.monotonic() + 2 * TTL_S + 1

        def stream():
            while time.monotonic() < stop:
                try:
                    s = self.export(token=jwt).status
                except Exception as ex:  # noqa: BLE001 - reported below
                    s = repr(ex)
                with lock:
                    results.append(s)
                time.sleep(0.1)

        ts = [threading.Thread(target=stream) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertGreater(len(results), 20)
        self.assertEqual([s for s in results if s != 200], [])
        self.assertGreaterEqual(
            self.stack.iam_calls()["tokens_issued"] - before, 2)
        sent = self.stack.exports_seen()[n_sent:]
        self.assertGreaterEqual(
            len({s["headers"]["x-auth-token"] for s in sent}), 3)
        # Refreshed ahead: HSS never saw an expired token (a 401 here would
        # be one, even if the retry hid it from the caller).
        self.assertEqual([s["status"] for s in sent if s["status"] != 200],
                         [])

    def test_zz_no_secret_in_logs_audit_or_responses(self):
        toks = self.stack.issued_tokens()
        self.assertGreaterEqual(len(toks), 3)
        self.assert_no_secret_anywhere([SHORT_PW] + sorted(toks))


BAD_PW = pw()


class BadPassword(CredCase):
    """The password file holds the wrong password."""

    spec = {
        "projects": [("demo", st.PROJECT_ID, "main")],
        "credentials": [
            {"name": "main", "type": "iam_password", "iam_endpoint": "",
             "user": IAM_USER, "domain": IAM_DOMAIN,
             "password_file": "secrets/main.pw"}],
        "secrets": {"secrets/main.pw": BAD_PW + "\n"},
        "emulator": {"iam": {"users": [
            {"domain": IAM_DOMAIN, "name": IAM_USER, "password": pw(),
             "projects": [st.PROJECT_ID]}]}},
        "ready": False,
    }

    def test_not_ready_and_exports_503(self):
        # The positive control (right password, /healthz 200) is
        # IamTokens.test_token_from_iam_accepted_by_hss.
        h = self.stack.request("GET", "/healthz")
        self.assertEqual(h.status, 503, h)
        r = self.export()
        self.assert_error(r, 503, "HSSGW.0301")
        self.assertIn("main", r.json()["error_msg"])
        rec = self.wait_audit(r.header("X-Request-Id"), 1)[-1]
        self.assertEqual((rec["status"], rec["error_code"]),
                         (503, "HSSGW.0301"))
        self.assertEqual(rec["credentials"], "main")
        self.assertEqual(self.stack.exports_seen(), [])
        iam = [l for l in self.stack.emulator_lines()
               if l["path"] == "/v3/auth/tokens"]
        self.assertTrue(iam)
        self.assertTrue(all(l["status"] == 401 for l in iam), iam)
        self.assertEqual(self.stack.iam_calls()["tokens_issued"], 0)

    def test_zz_no_secret_in_logs_audit_or_responses(self):
        self.assert_no_secret_anywhere([BAD_PW])
        self.assertNotIn(BAD_PW.encode(),
                         self.stack.read_raw("emulator.jsonl"))


class TranslateShowsCredentialHeaders(unittest.TestCase):
    """hssgw translate prints the headers the project's credential type
    adds, every secret "<redacted>"."""

    REQ = b'{"project":"demo","image_type":"private_image"}'
    PID = "0123456789abcdef0123456789abcdef"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hssgw-tr-")
        with open(os.path.join(ARGS.src, "tests", "data", "translate",
                               "config.json")) as f:
            self.conf = json.load(f)
        self.secret = "S3CRET" + secrets.token_hex(16)
        for name in ("cred.token", "cred.pw", "cred.sk"):
            st.write_file(os.path.join(self.dir, name), self.secret, 0o600)

    def tearDown(self):
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    def translate(self, creds):
        self.conf["credentials"] = creds
        for p in self.conf["projects"]:
            p["credentials"] = creds[-1]["name"]
        path = os.path.join(self.dir, "hssgw.json")
        st.write_file(path, json.dumps(self.conf))
        p = subprocess.run([os.path.join(ARGS.bin, "hssgw"), "translate",
                            "--config", path], input=self.REQ,
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(self.secret.encode(), p.stdout + p.stderr)
        return json.loads(p.stdout)["headers"]

    def base(self):
        return {"region": "cn-north-4",
                "Content-Type": "application/json;charset=utf-8"}

    def test_token_types(self):
        iam = {"name": "main", "type": "iam_password",
               "iam_endpoint": "https://iam.example.test", "user": "u",
               "domain": "d", "password_file": "cred.pw"}
        cases = {
            "token_file": [{"name": "main", "type": "token_file",
                            "file": "cred.token"}],
            "iam_password": [iam],
            "iam_agency": [dict(iam, name="base"),
                           {"name": "main", "type": "iam_agency",
                            "iam_endpoint": "https://iam.example.test",
                            "base": "base", "domain": "d2",
                            "agency": "a"}],
        }
        for kind, creds in cases.items():
            with self.subTest(type=kind):
                want = self.base()
                want["X-Auth-Token"] = "<redacted>"
                self.assertEqual(self.translate(creds), want)

    def test_aksk(self):
        h = self.translate([{"name": "main", "type": "aksk",
                             "access_key": "AKX",
                             "secret_key_file": "cred.sk"}])
        self.assertEqual(h.pop("Authorization"), "<redacted>")
        self.assertEqual(h.pop("X-Project-Id"), self.PID)
        self.assertTrue(re.fullmatch(r"<.*>", h.pop("X-Sdk-Date")))
        self.assertEqual(h, self.base())


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
