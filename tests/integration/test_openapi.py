#!/usr/bin/env python3
"""docs/openapi.yaml cannot drift from the gateway: a well-kept OpenAPI 3.1
validator (npm's @seriousme/openapi-schema-validator, installed by
tests/run.sh into BUILD/npm) accepts it; every code of gateway/base/err.c
is in it with its status; the export request schema is `hssgw fields`;
and real answers of a running stack (export, status poll, download,
health, the error cases) match the status, headers and JSON body the
document declares for them, an undeclared status being a failure.

Run: test_openapi.py --bin BUILD/bin --src SRC.  Needs python3-yaml and
python3-jsonschema (Debian); prints 'N passed, N failed'.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402
import stack as stk  # noqa: E402
from fixtures import ARGS, TASK_BODY as BODY, TaskStack  # noqa: E402

VALIDATOR_PKG = "@seriousme/openapi-schema-validator"


def load_doc():
    with open(os.path.join(ARGS.src, "docs", "openapi.yaml")) as f:
        return yaml.safe_load(f)


def validator_bin():
    """validate-api from tests/run.sh's npm install next to the build (or
    HSSGW_OPENAPI_VALIDATOR)."""
    p = os.environ.get("HSSGW_OPENAPI_VALIDATOR") or os.path.join(
        ARGS.bin, "..", "npm", "node_modules", ".bin", "validate-api")
    return os.path.abspath(p)


def deref(node, doc, depth=0):
    """node with every local "$ref" replaced by what it points at, so
    jsonschema (4.10 in Debian 12, or newer) needs no resolver."""
    assert depth < 50, "a $ref cycle"
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            target = doc
            for part in ref[2:].split("/"):
                target = target[part]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            out = deref(target, doc, depth + 1)
            if rest:
                out = {"allOf": [out, deref(rest, doc, depth + 1)]}
            return out
        return {k: deref(v, doc, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [deref(v, doc, depth) for v in node]
    return node


def match_path(doc, path):
    """The document's path template for a request path, or None."""
    for tpl in doc["paths"]:
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(tpl)) + "$"
        if re.match(rx, path):
            return tpl
    return None


def media_type(text):
    """(type/subtype, {parameter: value}) of a Content-Type or a content
    key, lower-cased (RFC 9110 8.3.1: both are case-insensitive)."""
    parts = [p.strip() for p in (text or "").split(";")]
    params = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        params[k.strip().lower()] = v.strip().strip('"').lower()
    return parts[0].lower(), params


def media_declared(content, header):
    """Whether a content key admits the real Content-Type: same type, and
    every parameter the key names with the same value (`text/plain;
    version=0.0.4` pins the Prometheus format's version)."""
    got, got_params = media_type(header)
    for key in content:
        want, want_params = media_type(key)
        if want in (got, "*/*") and all(got_params.get(k) == v for k, v
                                        in want_params.items()):
            return True
    return False


def check_response(doc, method, path, resp):
    """Problems (a list of strings) of a real answer against the document:
    undeclared path, method or status; a missing or malformed declared
    header; a body the declared schema refuses."""
    tpl = match_path(doc, path.split("?")[0])
    if tpl is None:
        responses, where = doc["x-hssgw-other-paths"], "other paths"
    elif method.lower() not in doc["paths"][tpl]:
        responses = doc["x-hssgw-other-methods"]
        where = "other methods on " + tpl
    else:
        responses = doc["paths"][tpl][method.lower()]["responses"]
        where = "%s %s" % (method, tpl)
    decl = responses.get(str(resp.status))
    if decl is None:
        return ["%s: status %d not declared" % (where, resp.status)]
    decl = deref(decl, doc)
    problems = []
    for name, h in decl.get("headers", {}).items():
        got = resp.header(name)
        if got is None:
            if h.get("required"):
                problems.append("header %s missing" % name)
            continue
        try:
            jsonschema.Draft202012Validator(h["schema"]).validate(got)
        except jsonschema.ValidationError as e:
            problems.append("header %s: %s" % (name, e.message))
    content = decl.get("content", {})
    ctype = (resp.header("Content-Type") or "").split(";")[0].strip()
    if "application/json" in content and ctype == "application/json":
        try:
            body = resp.json()
        except ValueError:
            return problems + ["body is not JSON"]
        try:
            jsonschema.Draft202012Validator(
                content["application/json"]["schema"]).validate(body)
        except jsonschema.ValidationError as e:
            problems.append("body: %s at %s" % (e.message,
                                                list(e.absolute_path)))
    elif not media_declared(content, resp.header("Content-Type")):
        problems.append("content type %r not declared" %
                        resp.header("Content-Type"))
    return problems


class Document(unittest.TestCase):
    def test_validator_accepts_the_document(self):
        v = validator_bin()
        self.assertTrue(os.access(v, os.X_OK),
                        "%s missing: tests/run.sh installs %s with npm"
                        % (v, VALIDATOR_PKG))
        p = subprocess.run([v, os.path.join(ARGS.src, "docs",
                                            "openapi.yaml")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(json.loads(p.stdout)["valid"], p.stdout)

    def test_validator_refuses_a_broken_document(self):
        # Positive control: the same validator on a document with a
        # response that has no description (required in 3.1).
        doc = load_doc()
        del doc["paths"]["/healthz"]["get"]["responses"]["200"][
            "description"]
        d = tempfile.mkdtemp(prefix="hssgw-oas-")
        try:
            bad = os.path.join(d, "bad.json")
            with open(bad, "w") as f:
                json.dump(doc, f)
            p = subprocess.run([validator_bin(), bad], capture_output=True,
                               text=True, timeout=60)
            self.assertFalse(p.returncode == 0 and
                             json.loads(p.stdout)["valid"], p.stdout)
        finally:
            shutil.rmtree(d)

    def test_every_error_code_with_its_status(self):
        with open(os.path.join(ARGS.src, "gateway", "base", "err.c")) as f:
            table = re.findall(r'\{(\d{3}), "(HSSGW\.\d{4})"', f.read())
        self.assertGreater(len(table), 20)
        doc = load_doc()
        desc = doc["info"]["description"]
        # Which codes the error schemas declared under each status name,
        # on the operations and for other methods and paths.
        declared = {}
        sets = [op["responses"] for pth in doc["paths"].values()
                for op in pth.values()
                if isinstance(op, dict) and "responses" in op]
        sets += [doc["x-hssgw-other-methods"], doc["x-hssgw-other-paths"]]
        for responses in sets:
            for status, r in responses.items():
                for c in re.findall(r"HSSGW\.\d{4}",
                                    json.dumps(deref(r, doc))):
                    declared.setdefault(c, set()).add(int(status))
        for status, code in table:
            if code == "HSSGW.0000":
                continue  # success, never an error body
            with self.subTest(code=code):
                self.assertRegex(desc, r"\| %s \| %s \|" % (
                    re.escape(code), status))
                self.assertIn(int(status), declared.get(code, set()),
                              "%s not declared under %s" % (code, status))

    def test_export_schema_is_the_field_table(self):
        p = subprocess.run([os.path.join(ARGS.bin, "hssgw"), "fields"],
                           capture_output=True, text=True, check=True)
        rows = {}
        for ln in p.stdout.splitlines():
            m = re.match(r"^\| `([^`]+)` \| ([^|]+) \| (\w+) \| ([^|]+) \|",
                         ln)
            if m and m.group(3) != "never":
                rows[m.group(1)] = (m.group(2).strip(), m.group(4).strip())
        doc = load_doc()
        schema = deref(doc["components"]["schemas"]["ExportRequest"], doc)
        props = schema["properties"]
        self.assertEqual(set(props), set(rows))
        self.assertFalse(schema["additionalProperties"])
        for name, (jtype, rule) in rows.items():
            with self.subTest(field=name):
                s = props[name]
                nums = [int(n) for n in re.findall(r"\d+", rule)]
                if jtype == "string" and "one of" in rule:
                    self.assertEqual(
                        s["enum"], [v.strip() for v in
                                    rule.split("one of:")[1].split(",")])
                elif jtype == "string":
                    self.assertEqual((s["type"], s["minLength"],
                                      s["maxLength"]),
                                     ("string", nums[0], nums[1]))
                elif jtype == "integer":
                    self.assertEqual((s["type"], s["minimum"],
                                      s["maximum"]),
                                     ("integer", nums[0], nums[1]))
                elif jtype == "boolean":
                    self.assertEqual(s["type"], "boolean")
                elif jtype == "array of strings":
                    self.assertEqual((s["type"], s["maxItems"],
                                      s["items"]["minLength"],
                                      s["items"]["maxLength"]),
                                     ("array", nums[0], nums[1], nums[2]))
                else:
                    self.assertIn("RFC 3339", jtype)
                    ints = [o for o in s["oneOf"] if o["type"] == "integer"]
                    self.assertEqual((ints[0]["minimum"],
                                      ints[0]["maximum"]),
                                     (nums[0], nums[1]))
        # Required: the schema's and the table's notes agree on project.
        self.assertEqual(schema["required"], ["project"])


class Live(unittest.TestCase):
    """Real answers through nginx + hssgw + hss-emulator."""

    @classmethod
    def setUpClass(cls):
        cls.doc = load_doc()
        cls.s = TaskStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 600, "status_cache_ttl_s": 1,
            "retry_deadline_ms": 0}).start()
        cls.alice = cls.s.mint(sub="dev-alice")
        cls.seen = set()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def call(self, method, path, body=None, token=None, headers=None,
             want=None):
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, dict):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        r = self.s.request(method, path, body, h)
        if want is not None:
            self.assertEqual(r.status, want, r)
        self.assertEqual(check_response(self.doc, method, path, r), [],
                         (method, path, r))
        self.seen.add((method, match_path(self.doc, path.split("?")[0]),
                       r.status))
        return r

    def export(self):
        return self.call("POST", stk.EXPORT_PATH, BODY, self.alice,
                         want=200).json()

    def test_export_status_download(self):
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 5000})
        doc = self.export()
        base = stk.EXPORT_PATH + "/" + doc["handle"]
        deadline = time.monotonic() + 15
        while self.call("GET", base, token=self.alice,
                        want=200).json()["task_status"] == "running":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.3)
        f = self.call("GET", base + "/file", token=self.alice, want=200)
        self.assertEqual(len(f.body), 5000)

    def test_health(self):
        self.call("GET", "/healthz", want=200)
        self.call("POST", "/healthz", body="{}", want=405)

    def test_metrics(self):
        """The scrape through nginx from an allowed address: 200 with the
        0.0.4 text format the document declares; other methods 405."""
        r = self.call("GET", "/metrics", want=200)
        self.assertIn(b"\nhssgw_requests_total{", r.body)
        self.call("POST", "/metrics", body="{}", want=405)

    def test_gateway_errors(self):
        bad = self.s.mint(sub="dev-mallory", groups=("nobody",))
        cases = [
            ("POST", stk.EXPORT_PATH, BODY, None, None, 401),
            ("POST", stk.EXPORT_PATH, BODY, "not.a.jwt", None, 401),
            ("POST", stk.EXPORT_PATH, BODY, bad, None, 403),
            ("POST", stk.EXPORT_PATH, dict(BODY, image_type="x"),
             self.alice, None, 400),
            ("POST", stk.EXPORT_PATH, "{not json", self.alice,
             {"Content-Type": "application/json"}, 400),
            ("POST", stk.EXPORT_PATH, "{}", self.alice,
             {"Content-Type": "text/plain"}, 415),
            ("POST", stk.EXPORT_PATH, "x" * 20000, self.alice,
             {"Content-Type": "application/json"}, 413),
            ("GET", stk.EXPORT_PATH + "/forged.handle", None, self.alice,
             None, 404),
            ("DELETE", stk.EXPORT_PATH + "/forged.handle", None,
             self.alice, None, 405),
            ("GET", stk.EXPORT_PATH, None, self.alice, None, 405),
            ("GET", "/v1/exports/other", None, self.alice, None, 404),
            ("GET", "/nowhere", None, None, None, 404),
        ]
        for method, path, body, tok, hdrs, status in cases:
            with self.subTest(method=method, status=status):
                self.call(method, path, body, tok, hdrs, want=status)

    def test_not_ready_is_409(self):
        self.s.tasks_ctl({"delay_ms": 60000, "file_bytes": 10})
        try:
            doc = self.export()
            self.call("GET", stk.EXPORT_PATH + "/" + doc["handle"] +
                      "/file", token=self.alice, want=409)
        finally:
            self.s.tasks_ctl({"delay_ms": 0})

    def test_upstream_answers(self):
        # HSS's own errors pass through; its 401 and 429, a malformed
        # answer and a dropped connection become hssgw's.
        for mode, status in (({"mode": "status", "status": 400}, 400),
                             ({"mode": "status", "status": 403}, 403),
                             ({"mode": "status", "status": 404}, 404),
                             ({"mode": "status", "status": 500}, 500),
                             ({"mode": "status", "status": 502}, 502),
                             ({"mode": "status", "status": 504}, 504),
                             ({"mode": "status", "status": 413}, 413),
                             # twice: one 401 is retried with a new token
                             ({"mode": "status", "status": 401,
                               "count": 2}, 502),
                             ({"mode": "status", "status": 429}, 429),
                             ({"mode": "malformed"}, 502),
                             ({"mode": "drop"}, 502)):
            with self.subTest(mode=mode):
                r = self.s.emulator_control("control",
                                            dict({"count": 1}, **mode))
                self.assertEqual(r.status // 100, 2, r)
                self.call("POST", stk.EXPORT_PATH, BODY, self.alice,
                          want=status)
        self.s.emulator_control("reset", {})

    def test_checker_catches_drift(self):
        # Positive controls for check_response itself.
        r = self.s.request("GET", "/healthz")
        self.assertEqual(check_response(self.doc, "GET", "/healthz", r), [])
        r.status = 418
        self.assertTrue(check_response(self.doc, "GET", "/healthz", r))
        r.status = 200
        r.body = b'{"status":"fine"}'
        self.assertTrue(check_response(self.doc, "GET", "/healthz", r))
        r.body = b'{"status":"ok"}'
        r.headers = {k: v for k, v in r.headers.items()
                     if k != "x-request-id"}
        self.assertTrue(check_response(self.doc, "GET", "/healthz", r))
        self.assertTrue(check_response(self.doc, "GET", "/v2/x", r))
        # The scrape's media type parameters count: another version of
        # the text format is not the declared one.
        r = self.s.request("GET", "/metrics")
        self.assertEqual(check_response(self.doc, "GET", "/metrics", r), [])
        r.headers = dict(r.headers)
        r.headers["content-type"] = "text/plain; version=1.0.0"
        self.assertTrue(check_response(self.doc, "GET", "/metrics", r))


class Down(unittest.TestCase):
    """nginx's own answers while hssgw is down (503 HSSGW.0304)."""

    def test_backend_down(self):
        doc = load_doc()
        s = stk.Stack(ARGS.bin, ARGS.src).start()
        try:
            tok = s.mint()
            s.stop_backend()
            for method, path, body in (("GET", "/healthz", None),
                                       ("GET", "/metrics", None),
                                       ("POST", stk.EXPORT_PATH,
                                        json.dumps(BODY))):
                with self.subTest(path=path):
                    r = s.request(method, path, body, {
                        "Authorization": "Bearer " + tok,
                        "Content-Type": "application/json"})
                    self.assertEqual(r.status, 503, r)
                    self.assertEqual(r.json()["error_code"], "HSSGW.0304")
                    self.assertEqual(check_response(doc, method, path, r),
                                     [])
        finally:
            s.stop()


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
