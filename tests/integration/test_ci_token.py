"""Integration: CI jobs' own OIDC tokens and GET /v1/whoami (issue 26).

A local HTTPS stand-in for GitHub's token endpoint (the stack's TLS
certificate) checks each request exactly (Authorization: Bearer with the
job's request token, the query api-version=2.0&audience=AUD) and answers
{"value": JWT} with a token signed by `hssgw mint-token` with a key of a
GitHub-named issuer the stack trusts (jwt.leeway_seconds 0, so an expired
token is refused).  Pins: `hssgw export --id-token github-actions:hssgw`
exports and downloads; a token that expires during the wait is replaced
by a new request; file: follows a rotated file; env:; every error path
exits 1 with no token (nor the request token) in stdout, stderr, the
audit trail or the gateway's log.  /v1/whoami (through nginx) for an
allowed, a partly allowed and a denied caller, checked against `hssgw
policy explain`; anonymous is 401; its record is audited; nginx's rate
limit covers it.  Python 3 stdlib only.
"""

import hashlib
import http.server
import json
import os
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

import runner
import stack as stk
from fixtures import ARGS, TaskStack, check_bytes, fp, hssgw

GH_ISSUER = "https://token.actions.githubusercontent.com"
GL_ISSUER = "https://gitlab.example.com"
K8S_ISSUER = "https://kubernetes.default.svc.cluster.local"
REQ_TOKEN = "ghs_" + hashlib.sha256(os.urandom(16)).hexdigest()
GH_CLAIMS = {"repository": "acme/images", "repository_id": "812345",
             "ref": "refs/heads/main", "repository_owner": "acme"}
GL_CLAIMS = {"project_id": "1204", "ref_protected": "true",
             "project_path": "sec/images"}
K8S_SUB = "system:serviceaccount:security:hss-baseline"
EXAMPLES = ("62-ci-github.json", "63-ci-gitlab.json", "64-ci-kubernetes.json")
# whoami's partly allowed caller: task status on staging, nothing else.
AUDITORS = {"Version": "2012-10-17", "Statement": [{
    "Sid": "AuditorsStatusStaging", "Effect": "Allow",
    "Principal": {"jwt:groups": "auditors"},
    "Action": "hss:GetExportTask", "Resource": "hss:*:staging"}]}


class TokenEndpoint:
    """GitHub's ACTIONS_ID_TOKEN_REQUEST_URL, strictly.  mode: "ok",
    "garbage" (200, not JSON), "novalue" (200, JSON without value),
    "notjwt" (value is not a JWT), "anyaud" (issues for any audience)."""

    def __init__(self, st):
        self.st = st
        self.mode = "ok"
        self.ttl = 300
        self.audience = "hssgw"
        self.requests = []   # (audience, accepted)
        self.issued = []     # every token handed out
        self.lock = threading.Lock()
        self.server = None

    @property
    def url(self):
        return "https://127.0.0.1:%d/_apis/idtoken?api-version=2.0" % (
            self.server.server_address[1])

    def _answer(self, h):
        u = urllib.parse.urlsplit(h.path)
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        aud = q.get("audience", [None])[0]
        auth = h.headers.get("Authorization", "")
        scheme, _, cred = auth.partition(" ")
        with self.lock:
            mode, ttl, want = self.mode, self.ttl, self.audience
        ok = (h.command == "GET" and u.path == "/_apis/idtoken" and
              sorted(q) == ["api-version", "audience"] and
              q["api-version"] == ["2.0"] and len(q["audience"]) == 1 and
              scheme.lower() == "bearer" and cred == REQ_TOKEN and
              (aud == want or mode == "anyaud"))
        with self.lock:
            self.requests.append((aud, ok))
        if not ok:
            return 403, b'{"message":"refused"}'
        if mode == "garbage":
            return 200, b"<html>oops"
        if mode == "novalue":
            return 200, b'{"count":1}'
        if mode == "notjwt":
            tok = "not-a-jwt-" + REQ_TOKEN[-8:]
            with self.lock:
                self.issued.append(tok)
            return 200, json.dumps({"value": tok}).encode()
        tok = self.st.mint_ci("gh", "repo:acme/images:ref:refs/heads/main",
                              GH_CLAIMS, ttl=ttl, aud=aud)
        with self.lock:
            self.issued.append(tok)
        return 200, json.dumps({"count": 1, "value": tok}).encode()

    def start(self, cert, key):
        ep = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                status, body = ep._answer(self)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket,
                                             server_side=True)
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def fetches(self):
        with self.lock:
            return sum(1 for _, ok in self.requests if ok)


class CiStack(TaskStack):
    """The task stack plus three CI issuers (static keys), a second
    project (staging), leeway 0, the CI example policies and the
    auditors' policy."""

    def __init__(self, *a, **kw):
        # No status cache and no coalescing: each test's task is its own
        # and each poll sees HSS's (the emulator's) current status.
        super().__init__(*a, policies=EXAMPLES, tasks={
            "status_cache_ttl_s": 0, "coalesce_window_ms": 0,
            "budget_per_minute": 600}, **kw)
        self.endpoint = None

    def _configs(self):
        super()._configs()
        for name, iss in (("gh", GH_ISSUER), ("gl", GL_ISSUER),
                          ("k8s", K8S_ISSUER)):
            self.config["jwt"]["issuers"].append({
                "issuer": iss, "audiences": [stk.AUDIENCE],
                "keys": [{"kid": name + "-rs256", "alg": "RS256",
                          "file": "keys/idp-rs256.pub.pem"}]})
        self.config["jwt"]["leeway_seconds"] = 0
        staging = dict(self.config["projects"][0], alias="staging")
        self.config["projects"].append(staging)
        stk.write_file(self.path("policies", "auditors.json"),
                       json.dumps(AUDITORS))
        stk.write_file(self.config_path, json.dumps(self.config, indent=1))
        self.endpoint = TokenEndpoint(self).start(
            self.path("tls", "server.pem"), self.path("tls", "server.key"))

    def stop(self):
        if self.endpoint is not None:
            self.endpoint.stop()
        super().stop()

    def mint_ci(self, kind, sub, claims, ttl=300, aud=stk.AUDIENCE):
        iss = {"gh": GH_ISSUER, "gl": GL_ISSUER, "k8s": K8S_ISSUER}[kind]
        return self.mint(sub=sub, groups=(), kid=kind + "-rs256", ttl=ttl,
                         claims=claims or None, iss=iss, aud=aud)


STACK = []  # the one CiStack every test class shares (setUpModule)


def setUpModule():
    STACK.append(CiStack(ARGS.bin, ARGS.src).start())


def tearDownModule():
    while STACK:
        STACK.pop().stop()


class CiBase(unittest.TestCase):
    def setUp(self):
        self.s = STACK[0]
        self.ep = self.s.endpoint
        self.ep.mode, self.ep.ttl, self.ep.audience = "ok", 300, "hssgw"
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 8192})
        self.secrets = [REQ_TOKEN]

    def url(self):
        return "https://127.0.0.1:%d" % self.s.gw_port

    def run_client(self, *argv, env=None, timeout=60):
        """hssgw with env (added to a clean environment), as a CI job
        runs it; (status, stdout, stderr)."""
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        e.update(env or {})
        p = subprocess.run([os.path.join(ARGS.bin, "hssgw")] + list(argv),
                           capture_output=True, timeout=timeout, env=e,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def gh_env(self, **over):
        e = {"ACTIONS_ID_TOKEN_REQUEST_URL": self.ep.url,
             "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQ_TOKEN}
        e.update(over)
        return {k: v for k, v in e.items() if v is not None}

    def export_argv(self, source, out, *extra):
        return ["export", "--url", self.url(), "--cacert", self.s.ca,
                "--id-token", source, "--project", stk.PROJECT_ALIAS,
                "--field", "image_type=private_image",
                "--field", "operate_all=true", "--out", out,
                "--poll-seconds", "1", "--max-wait-seconds", "60"] + list(
                    extra)

    def out_path(self, name):
        return self.s.path("tmp", name)

    def assert_no_secret(self, *texts):
        """No token handed out, nor the request token, in texts, the
        audit trail or the gateway's log."""
        hay = list(texts) + [
            self.s.read_raw("audit", "audit.jsonl").decode("utf-8",
                                                           "replace"),
            self.s.log_tail("hssgw", 1 << 24)]
        for sec in self.secrets + list(self.ep.issued):
            for h in hay:
                self.assertNotIn(sec, h)
                # A JWT's signature alone would be a leak too.
                if sec.count(".") == 2:
                    self.assertNotIn(sec.rsplit(".", 1)[1], h)

    def fps_since(self, n0):
        return [r.get("token_fp") for r in self.s.audit_lines()[n0:]
                if r.get("token_fp")]


class GitHubActions(CiBase):
    def test_export_and_download(self):
        out = self.out_path("gh.zip")
        n0 = len(self.s.audit_lines())
        f0 = self.ep.fetches()
        rc, so, se = self.run_client(
            *self.export_argv("github-actions:hssgw", out,
                              "--id-token-cacert", self.s.ca),
            env=self.gh_env())
        self.assertEqual(rc, 0, se)
        with open(out, "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 8192)
        self.assertEqual(self.ep.fetches() - f0, 1)
        self.assertEqual(self.ep.requests[-1], ("hssgw", True))
        recs = self.s.audit_lines()[n0:]
        self.assertTrue(any(r["path"].endswith("/file") and
                            r["status"] == 200 and
                            r["issuer"] == GH_ISSUER for r in recs), recs)
        self.assertEqual(set(self.fps_since(n0)), {fp(self.ep.issued[-1])})
        self.assertTrue(check_bytes(data, self.file_id()))
        self.assert_no_secret(so, se)

    def file_id(self):
        """The file id of the emulator's last download."""
        for r in reversed(self.s.emulator_lines()):
            path = r.get("path", "")
            if "/download/" in path:
                return path.rsplit("/", 1)[1].split("?")[0]
        self.fail("no download in the emulator's log")

    def test_default_audience_option_and_env(self):
        # No :AUDIENCE: --id-token-audience, else HSSGW_ID_TOKEN_AUDIENCE,
        # else "hssgw".
        self.ep.audience = "hssgw"
        rc, so, se = self.run_client(
            "whoami", "--url", self.url(), "--cacert", self.s.ca,
            "--id-token", "github-actions", "--id-token-cacert", self.s.ca,
            env=self.gh_env())
        self.assertEqual(rc, 0, se)
        self.assertEqual(self.ep.requests[-1], ("hssgw", True))
        self.ep.audience = "hssgw-prod"
        for argv, env in ((["--id-token-audience", "hssgw-prod"], {}),
                          ([], {"HSSGW_ID_TOKEN_AUDIENCE": "hssgw-prod"})):
            # The endpoint asked for hssgw-prod; the gateway wants hssgw:
            # the request is right, the gateway refuses the token.
            rc, so, se = self.run_client(
                "whoami", "--url", self.url(), "--cacert", self.s.ca,
                "--id-token", "github-actions", "--id-token-cacert",
                self.s.ca, *argv, env=self.gh_env(**env))
            self.assertEqual(self.ep.requests[-1], ("hssgw-prod", True))
            self.assertEqual(rc, 1)
            self.assertIn("HTTP 401", se)
            self.assert_no_secret(so, se)

    def test_token_expiring_during_the_wait_is_replaced(self):
        # Tokens live 4 s (leeway 0), the task runs 7 s: the status polls
        # and the download outlive the first token.  A new request every
        # half lifetime keeps them valid.
        self.ep.ttl = 4
        self.s.tasks_ctl({"delay_ms": 7000, "file_bytes": 8192})
        out = self.out_path("gh-long.zip")
        n0 = len(self.s.audit_lines())
        f0 = self.ep.fetches()
        rc, so, se = self.run_client(
            *self.export_argv("github-actions:hssgw", out,
                              "--id-token-cacert", self.s.ca),
            env=self.gh_env())
        self.assertEqual(rc, 0, se)
        self.assertGreaterEqual(self.ep.fetches() - f0, 3)
        fps = self.fps_since(n0)
        self.assertGreaterEqual(len(set(fps)), 3)
        recs = self.s.audit_lines()[n0:]
        self.assertFalse([r for r in recs if r["status"] == 401], recs)
        self.assertTrue(os.path.exists(out))
        self.assert_no_secret(so, se)


class FileAndEnv(CiBase):
    def test_file_follows_a_rotated_token(self):
        # The kubelet's projected token: a file rewritten (renamed into
        # place) before the token in it expires.
        tok_path = self.s.path("tmp", "k8s-token")
        first = self.s.mint_ci("k8s", K8S_SUB, None, ttl=4)
        second = self.s.mint_ci("k8s", K8S_SUB, None, ttl=300)
        self.secrets += [first, second]
        stk.write_file(tok_path, first + "\n", 0o600)
        self.s.tasks_ctl({"delay_ms": 6000, "file_bytes": 8192})
        out = self.out_path("k8s.zip")
        n0 = len(self.s.audit_lines())
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        p = subprocess.Popen(
            [os.path.join(ARGS.bin, "hssgw")] +
            self.export_argv("file:" + tok_path, out),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
            stdin=subprocess.DEVNULL)
        time.sleep(1.0)
        stk.write_file(tok_path + ".new", second, 0o600)
        os.rename(tok_path + ".new", tok_path)
        so, se = p.communicate(timeout=60)
        so, se = so.decode(), se.decode()
        self.assertEqual(p.returncode, 0, se)
        fps = self.fps_since(n0)
        self.assertEqual(fps[0], fp(first))
        self.assertIn(fp(second), fps)
        # Only the second after the first expired: it was read again.
        self.assertEqual(fps[-1], fp(second))
        self.assert_no_secret(so, se)

    def test_env(self):
        # GitLab's id_tokens: puts the JWT in the named variable.
        tok = self.s.mint_ci(
            "gl", "project_path:sec/images:ref_type:branch:ref:main",
            GL_CLAIMS)
        self.secrets.append(tok)
        out = self.out_path("gl.zip")
        n0 = len(self.s.audit_lines())
        rc, so, se = self.run_client(
            *self.export_argv("env:HSSGW_ID_TOKEN", out),
            env={"HSSGW_ID_TOKEN": tok + "\n"})
        self.assertEqual(rc, 0, se)
        self.assertEqual(set(self.fps_since(n0)), {fp(tok)})
        self.assert_no_secret(so, se)


class ErrorPaths(CiBase):
    def check_fails(self, source, want, env=None, extra=()):
        out = self.out_path("never.zip")
        n0 = len(self.s.audit_lines())
        rc, so, se = self.run_client(*self.export_argv(source, out, *extra),
                                     env=env)
        self.assertEqual(rc, 1, se)
        self.assertIn(want, se)
        self.assertFalse(os.path.exists(out))
        self.assertFalse(os.path.exists(out + ".part"))
        self.assert_no_secret(so, se)
        return self.s.audit_lines()[n0:]

    def test_env_missing_and_empty(self):
        self.assertEqual(self.check_fails("env:NOPE", "no such variable"),
                         [])
        self.check_fails("env:T", "empty", env={"T": "\n"})
        junk = "junk-" + REQ_TOKEN
        self.secrets.append(junk)
        self.check_fails("env:T", "not a JWT", env={"T": junk})

    def test_file_missing_and_malformed(self):
        self.check_fails("file:" + self.s.path("tmp", "absent"),
                         "--id-token file:")
        p = self.s.path("tmp", "bad-token")
        junk = "a.b" + REQ_TOKEN
        self.secrets.append(junk)
        stk.write_file(p, junk, 0o600)
        self.check_fails("file:" + p, "not a JWT")

    def test_bad_source(self):
        self.check_fails("vault:x", "want github-actions[:AUDIENCE]")
        self.check_fails("env:", "want github-actions[:AUDIENCE]")

    def test_github_not_in_a_job(self):
        self.check_fails("github-actions:hssgw", "id-token: write",
                         env={}, extra=("--id-token-cacert", self.s.ca))
        self.check_fails("github-actions:hssgw",
                         "ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set",
                         env=self.gh_env(ACTIONS_ID_TOKEN_REQUEST_TOKEN=None),
                         extra=("--id-token-cacert", self.s.ca))
        self.check_fails(
            "github-actions:hssgw", "not an https:// URL",
            env=self.gh_env(ACTIONS_ID_TOKEN_REQUEST_URL=self.ep.url.replace(
                "https:", "http:")),
            extra=("--id-token-cacert", self.s.ca))

    def test_github_refused(self):
        # Wrong request token, wrong audience: the endpoint's 403.
        self.check_fails("github-actions:hssgw", "refused the request: "
                         "HTTP 403",
                         env=self.gh_env(
                             ACTIONS_ID_TOKEN_REQUEST_TOKEN="ghs_wrong"),
                         extra=("--id-token-cacert", self.s.ca))
        self.assertEqual(self.ep.requests[-1], ("hssgw", False))
        self.check_fails("github-actions:other", "HTTP 403",
                         env=self.gh_env(),
                         extra=("--id-token-cacert", self.s.ca))
        self.assertEqual(self.ep.requests[-1], ("other", False))

    def test_github_malformed_answers(self):
        for mode, want in (("garbage", "malformed answer"),
                           ("novalue", "malformed answer"),
                           ("notjwt", "not a JWT")):
            with self.subTest(mode=mode):
                self.ep.mode = mode
                self.check_fails("github-actions:hssgw", want,
                                 env=self.gh_env(),
                                 extra=("--id-token-cacert", self.s.ca))

    def test_github_endpoint_verified(self):
        # No --id-token-cacert: the system trust store does not know the
        # test CA, so nothing is sent and nothing is trusted.
        n = len(self.ep.requests)
        self.check_fails("github-actions:hssgw", "the token endpoint:",
                         env=self.gh_env())
        self.assertEqual(len(self.ep.requests), n)

    def test_gateway_refuses_the_token(self):
        # Issued for another audience: the gateway's 401, the token in
        # no output.
        self.ep.mode = "anyaud"
        recs = self.check_fails("github-actions:elsewhere", "HTTP 401",
                                env=self.gh_env(),
                                extra=("--id-token-cacert", self.s.ca))
        self.assertEqual([r["status"] for r in recs], [401])

    def test_no_token_in_ps(self):
        # A source, not a token, is what argv holds.
        tok = self.s.mint_ci("k8s", K8S_SUB, None)
        self.secrets.append(tok)
        path = self.s.path("tmp", "ps-token")
        stk.write_file(path, tok, 0o600)
        self.s.tasks_ctl({"delay_ms": 1500, "file_bytes": 8192})
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        p = subprocess.Popen(
            [os.path.join(ARGS.bin, "hssgw")] +
            self.export_argv("file:" + path, self.out_path("ps.zip")),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        time.sleep(0.5)
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            cmdline = f.read().decode("utf-8", "replace")
        so, se = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, se)
        self.assertNotIn(tok, cmdline)
        self.assert_no_secret(so.decode(), se.decode(), cmdline)


class WhoAmI(CiBase):
    CALLERS = {
        "allowed": ["hss-exporters"],
        "partly": ["auditors"],
        "denied": ["hss-exporters", stk.DENY_GROUP],
    }
    WANT = {
        "allowed": [{"project": "demo", "region": stk.REGION,
                     "actions": ["export", "status", "download"]}],
        "partly": [{"project": "staging", "region": stk.REGION,
                    "actions": ["status"]}],
        "denied": [],
    }

    def whoami(self, tok):
        return self.s.request("GET", "/v1/whoami",
                              headers={"Authorization": "Bearer " + tok})

    def explain(self, tok, alias):
        rc, so, se = hssgw("policy", "explain", "--config",
                           self.s.config_path, "--token", tok,
                           stdin=json.dumps({"project": alias}).encode())
        self.assertEqual(rc, 0, se)
        return json.loads(so)["decision"]

    def test_callers_against_policy_explain(self):
        for who, groups in self.CALLERS.items():
            with self.subTest(caller=who):
                tok = self.s.mint(sub="dev-" + who, groups=groups,
                                  claims={"email": who + "@example.com"})
                self.secrets.append(tok)
                r = self.whoami(tok)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header("Cache-Control"), "no-store")
                doc = r.json()
                self.assertEqual(doc["subject"], "dev-" + who)
                self.assertEqual(doc["issuer"], stk.ISSUER)
                # The claims the policies read (the CI examples read iss
                # and sub), and only those: not email.
                self.assertEqual(doc["claims"], {
                    "groups": groups, "iss": stk.ISSUER,
                    "sub": "dev-" + who})
                self.assertEqual(doc["projects"], self.WANT[who])
                for alias in ("demo", "staging"):
                    listed = any(p["project"] == alias and
                                 "export" in p["actions"]
                                 for p in doc["projects"])
                    self.assertEqual(listed,
                                     self.explain(tok, alias) == "allow",
                                     (who, alias))
                # No policy text in the answer.
                for word in ("Sid", "Statement", stk.ALLOW_SID,
                             stk.DENY_SID, "auditors.json", "Allow"):
                    self.assertNotIn(word, r.body.decode())

    def test_ci_tokens(self):
        gh = self.s.mint_ci("gh", "repo:acme/images:ref:refs/heads/main",
                            GH_CLAIMS)
        self.secrets.append(gh)
        doc = self.whoami(gh).json()
        self.assertEqual(doc["claims"], {
            "repository_id": "812345", "ref": "refs/heads/main",
            "iss": GH_ISSUER,
            "sub": "repo:acme/images:ref:refs/heads/main"})
        self.assertEqual(doc["projects"][0]["actions"],
                         ["export", "status", "download"])
        dev = self.s.mint_ci("gh", "repo:acme/images:ref:refs/heads/dev",
                             dict(GH_CLAIMS, ref="refs/heads/dev"))
        self.secrets.append(dev)
        self.assertEqual(self.whoami(dev).json()["projects"], [])

    def test_cli(self):
        tok = self.s.mint(sub="dev-cli", groups=["auditors"])
        self.secrets.append(tok)
        rc, so, se = self.run_client(
            "whoami", "--url", self.url(), "--cacert", self.s.ca,
            "--id-token", "env:TOK", env={"TOK": tok})
        self.assertEqual(rc, 0, se)
        self.assertEqual(json.loads(so)["projects"], self.WANT["partly"])
        rc, so, se = self.run_client(
            "whoami", "--url", self.url(), "--cacert", self.s.ca,
            "--id-token", "github-actions:hssgw", "--id-token-cacert",
            self.s.ca, env=self.gh_env())
        self.assertEqual(rc, 0, se)
        self.assertEqual(json.loads(so)["issuer"], GH_ISSUER)
        self.assert_no_secret(so, se)

    def test_anonymous_and_audited(self):
        n0 = len(self.s.audit_lines())
        r = self.s.request("GET", "/v1/whoami")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error_code"], "HSSGW.0101")
        self.assertIn("Bearer", r.header("WWW-Authenticate"))
        r = self.whoami("x.y.z")
        self.assertEqual(r.status, 401)
        self.assertEqual(self.s.request("POST", "/v1/whoami", "{}").status,
                         405)
        tok = self.s.mint(sub="dev-audited")
        self.secrets.append(tok)
        self.assertEqual(self.whoami(tok).status, 200)
        recs = [x for x in self.s.audit_lines()[n0:]
                if x["path"] == "/v1/whoami"]
        self.assertEqual([x["status"] for x in recs], [401, 401, 405, 200])
        last = recs[-1]
        self.assertEqual((last["phase"], last["subject"], last["token_fp"]),
                         ("final", "dev-audited", fp(tok)))
        self.assertIsNone(last["decision"])
        self.assert_no_secret()


class RateLimited(unittest.TestCase):
    """nginx's per-client limit covers /v1/whoami like every route."""

    def test_whoami_is_rate_limited(self):
        s = stk.Stack(ARGS.bin, ARGS.src, rate=1, burst=1).start()
        try:
            tok = s.mint()
            got = [s.request("GET", "/v1/whoami", headers={
                "Authorization": "Bearer " + tok}) for _ in range(6)]
            codes = [r.status for r in got]
            self.assertIn(200, codes)
            self.assertIn(429, codes)
            self.assertEqual(
                [r.json()["error_code"] for r in got if r.status == 429][0],
                "HSSGW.0007")
        finally:
            s.stop()


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
