#!/usr/bin/env python3
"""Integration tests of the audit trail (issue 5) through the real nginx,
hssgw and hss-emulator (stack.py): every outcome path writes exactly its
records, each valid against docs/audit.schema.json and free of secrets;
kill -9 under load loses no acknowledged record and the chain verifies and
continues after a restart; tampering with a real trail is caught by
`hssgw audit verify`; an audit file that cannot be written fails closed
(503, nothing reaches HSS); SIGUSR1 rotation under load loses nothing;
`hssgw audit query` finds a subject's exports.  Run as

    test_audit.py --bin BUILD/bin --src REPO

Prints "N passed, N failed" last and exits non-zero on any failure.
Python 3 stdlib only.  HSSGW_IT_KEEP=1 keeps the state dirs.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runner  # noqa: E402
import stack as st  # noqa: E402
from fixtures import ARGS, fp, hssgw  # noqa: E402

BODY = {"project": st.PROJECT_ALIAS, "image_type": "cicd"}
CHAIN_CUT = re.compile(rb',"hash":"([0-9a-f]{64})"}$')


# -- schema -----------------------------------------------------------
class SchemaError(Exception):
    pass


class Validator:
    """Exactly the JSON Schema keywords docs/audit.schema.json uses (the
    subset its description names); any other keyword is an error, so the
    schema cannot grow a rule this validator silently skips.  Not a
    general JSON Schema validator."""

    ANNOTATIONS = {"$schema", "$id", "title", "description", "$defs"}
    KEYWORDS = {"type", "const", "enum", "properties", "required",
                "additionalProperties", "items", "pattern", "minimum",
                "maximum", "$ref"}

    def __init__(self, schema):
        self.root = schema

    @staticmethod
    def _is(t, v):
        if t == "null":
            return v is None
        if t == "boolean":
            return isinstance(v, bool)
        if t == "integer":
            return isinstance(v, int) and not isinstance(v, bool)
        if t == "number":
            return (isinstance(v, (int, float)) and
                    not isinstance(v, bool))
        if t == "string":
            return isinstance(v, str)
        if t == "array":
            return isinstance(v, list)
        if t == "object":
            return isinstance(v, dict)
        raise SchemaError("unknown type %r in schema" % t)

    @staticmethod
    def _same(a, b):
        # JSON equality: true is not 1.
        return type(a) is type(b) and a == b or (
            a is None and b is None)

    def validate(self, v, s=None, where="$"):
        s = self.root if s is None else s
        unknown = set(s) - self.KEYWORDS - self.ANNOTATIONS
        if unknown:
            raise SchemaError("%s: schema keyword(s) %s not supported" % (
                where, sorted(unknown)))
        if "$ref" in s:
            ref = s["$ref"]
            if not ref.startswith("#/$defs/"):
                raise SchemaError("%s: $ref %s unsupported" % (where, ref))
            self.validate(v, self.root["$defs"][ref[len("#/$defs/"):]],
                          where)
        if "type" in s:
            types = s["type"] if isinstance(s["type"], list) else [s["type"]]
            if not any(self._is(t, v) for t in types):
                raise SchemaError("%s: %r is not %s" % (where, v, types))
        if "const" in s and not self._same(v, s["const"]):
            raise SchemaError("%s: %r is not %r" % (where, v, s["const"]))
        if "enum" in s and not any(self._same(v, e) for e in s["enum"]):
            raise SchemaError("%s: %r not in %r" % (where, v, s["enum"]))
        if isinstance(v, str) and "pattern" in s:
            # POSIX ERE as used there (^, $, [..], {n}); $ must not match
            # before a trailing newline as Python's does.
            pat = re.sub(r"(?<!\\)\$$", r"\\Z", s["pattern"])
            if re.search(pat, v) is None:
                raise SchemaError("%s: %r does not match %s" % (
                    where, v, s["pattern"]))
        num = self._is("number", v)
        if num and "minimum" in s and v < s["minimum"]:
            raise SchemaError("%s: %r < %r" % (where, v, s["minimum"]))
        if num and "maximum" in s and v > s["maximum"]:
            raise SchemaError("%s: %r > %r" % (where, v, s["maximum"]))
        if isinstance(v, list) and "items" in s:
            for i, item in enumerate(v):
                self.validate(item, s["items"], "%s[%d]" % (where, i))
        if isinstance(v, dict):
            for k in s.get("required", ()):
                if k not in v:
                    raise SchemaError("%s: %s missing" % (where, k))
            props = s.get("properties", {})
            for k, item in v.items():
                if k in props:
                    self.validate(item, props[k], where + "." + k)
                elif s.get("additionalProperties") is False:
                    raise SchemaError("%s: %s not allowed" % (where, k))
                elif isinstance(s.get("additionalProperties"), dict):
                    self.validate(item, s["additionalProperties"],
                                  where + "." + k)


def load_validator():
    with open(os.path.join(ARGS.src, "docs", "audit.schema.json")) as f:
        return Validator(json.load(f))


# -- trail helpers ----------------------------------------------------
def raw_lines(path):
    """The complete (newline-terminated) lines of a trail file."""
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    return lines[:-1]  # the last element is "" or an unterminated tail


def own_hash(line):
    """hash of a record by docs/AUDIT.md, computed independently of hssgw:
    SHA-256 of the line with its final ,"hash":"..." member removed."""
    m = CHAIN_CUT.search(line)
    if m is None:
        raise AssertionError("no trailing hash member: %r" % line[-120:])
    canon = line[:m.start()] + b"}"
    return hashlib.sha256(canon).hexdigest(), m.group(1).decode()


# -- the stack ----------------------------------------------------------
class AuditStack(st.Stack):
    """A Stack whose audit config can be set and whose hssgw can be
    killed and restarted (optionally under a wrapper such as prlimit)."""

    def __init__(self, bindir, srcdir, audit=None, **kw):
        super().__init__(bindir, srcdir, **kw)
        self.audit_extra = dict(audit or {})

    def _configs(self):
        super()._configs()
        self.config["audit"].update(self.audit_extra)
        st.write_file(self.config_path, json.dumps(self.config, indent=1))

    @property
    def trail(self):
        return self.path("audit", "audit.jsonl")

    def wait_checkpoint(self, timeout=5.0):
        """Waits until the checkpoint names the trail's last record: it
        is rewritten at most once a second (docs/AUDIT.md), by the main
        thread's tick once the trail is idle."""
        deadline = time.monotonic() + timeout
        while True:
            lines = raw_lines(self.trail)
            want = json.loads(lines[-1])["seq"] if lines else 0
            try:
                with open(self.trail + ".checkpoint") as f:
                    if json.load(f)["seq"] == want:
                        return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("checkpoint behind seq %d" % want)
            time.sleep(0.05)

    def kill9(self):
        p = self.procs.pop("hssgw")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        self.logs.pop("hssgw").close()
        return p.returncode

    def restart_hssgw(self, prefix=(), fresh_log=False):
        """Starts hssgw again (after kill9 or stop_backend) and waits for
        /healthz; prefix wraps the command (e.g. prlimit)."""
        if "hssgw" in self.procs:
            self.stop_backend()
        old = self.logs.pop("hssgw", None)
        if old is not None:
            old.close()
        log = self.path("logs", "hssgw.log")
        if fresh_log and os.path.exists(log):
            os.replace(log, log + ".%d" % time.time_ns())
        st.run([self.hssgw, "check-config", "--config", self.config_path])
        self._spawn("hssgw", list(prefix) + [self.hssgw, "serve",
                                             "--config", self.config_path])
        deadline = time.monotonic() + 20
        while True:
            p = self.procs["hssgw"]
            if p.poll() is not None:
                raise st.StackError("hssgw exited %s\n%s" % (
                    p.returncode, self.log_tail("hssgw")))
            try:
                if self.request("GET", "/healthz").status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise st.StackError("hssgw not ready\n" +
                                    self.log_tail("hssgw"))
            time.sleep(0.05)


class Load:
    """Client threads streaming allowed exports; each answer is kept as
    (status, request id, body)."""

    def __init__(self, stack, threads=4, token=None):
        self.stack = stack
        self.token = token or stack.mint()
        self.results = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self._run)
                        for _ in range(threads)]

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                r = self.stack.export(BODY, self.token)
                item = (r.status, r.header("X-Request-Id"), r.body)
            except OSError as e:
                item = (None, None, repr(e).encode())
                time.sleep(0.01)
            with self.lock:
                self.results.append(item)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def count(self):
        with self.lock:
            return len(self.results)

    def wait_for(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while self.count() < n and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(60)
        return [r for r in self.results]


class AuditCase(unittest.TestCase):
    stack_kw = {}
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.schema = load_validator()
        cls.stack = AuditStack(ARGS.bin, ARGS.src, **cls.stack_kw).start()

    @classmethod
    def tearDownClass(cls):
        if cls.stack is not None:
            cls.stack.stop()
            cls.stack = None

    def setUp(self):
        r = self.stack.emulator_control("reset", {})
        self.assertEqual(r.status // 100, 2, r)

    def assert_no_secret(self, paths):
        tok = self.stack.upstream_token.encode()
        for p in paths:
            with open(p, "rb") as f:
                self.assertNotIn(tok, f.read(), p)

    def assert_records_valid(self, paths):
        """Every complete line in paths is a schema-valid record whose own
        hash matches and whose chain links to the line before."""
        prev_hash, prev_seq = None, None
        recs = []
        for p in paths:
            for i, line in enumerate(raw_lines(p), 1):
                rec = json.loads(line)
                try:
                    self.schema.validate(rec)
                except SchemaError as e:
                    self.fail("%s:%d: %s" % (p, i, e))
                mine, theirs = own_hash(line)
                self.assertEqual(mine, theirs, "%s:%d" % (p, i))
                if prev_hash is not None:
                    self.assertEqual(rec["seq"], prev_seq + 1,
                                     "%s:%d" % (p, i))
                    self.assertEqual(rec["prev"], prev_hash,
                                     "%s:%d" % (p, i))
                prev_hash, prev_seq = theirs, rec["seq"]
                recs.append(rec)
        self.assert_no_secret(paths)
        return recs

    def verify(self, *files, checkpoint=None):
        argv = ["audit", "verify"]
        if checkpoint is not None:
            argv += ["--checkpoint", checkpoint]
        return hssgw(*(argv + list(files)))

    def assert_every_200_recorded(self, results, recs):
        by_rid = {}
        for r in recs:
            by_rid.setdefault(r["request_id"], []).append(r)
        oks = [rid for status, rid, _ in results if status == 200]
        self.assertTrue(oks, "no request succeeded: %r" % results[:5])
        for rid in oks:
            phases = [r["phase"] for r in by_rid.get(rid, [])]
            self.assertEqual(phases, ["intent", "outcome"], rid)
            self.assertEqual(by_rid[rid][1]["status"], 200)
        return oks


class OutcomeTests(AuditCase):
    """Every outcome path: its records, schema-valid, no secret.  The
    emulator is set up per case for the upstream failures."""

    stack_kw = {"timeout_ms": 1000}

    def new_records(self, before, want, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = raw_lines(self.stack.trail)
            if len(lines) >= before + want:
                break
            time.sleep(0.02)
        time.sleep(0.1)  # nothing more may follow
        return [json.loads(l) for l in raw_lines(self.stack.trail)[before:]]

    def test_every_outcome_path(self):
        s = self.stack
        good = s.mint()
        json_h = {"Content-Type": "application/json"}

        def auth(tok=good):
            h = dict(json_h)
            h["Authorization"] = "Bearer " + tok
            return h

        body = json.dumps(BODY)
        cases = [
            # name, emulator mode, request, status, error code, records
            ("400", None, ("POST", st.EXPORT_PATH,
                           '{"project":"demo","image_type":"floppy"}',
                           auth()), 400, "HSSGW.0002", 1),
            ("401 missing", None, ("POST", st.EXPORT_PATH, body, json_h),
             401, "HSSGW.0101", 1),
            ("401 invalid", None, ("POST", st.EXPORT_PATH, body,
                                   auth(s.mint(aud="other"))),
             401, "HSSGW.0102", 1),
            ("403", None, ("POST", st.EXPORT_PATH, body,
                           auth(s.mint(sub="dev-bob",
                                       groups=("others",)))),
             403, "HSSGW.0103", 1),
            ("404", None, ("POST", "/v1/exports/other", body, auth()),
             404, "HSSGW.0004", 1),
            ("405", None, ("GET", st.EXPORT_PATH, None, auth()),
             405, "HSSGW.0005", 1),
            ("413 from hssgw", None, ("POST", st.EXPORT_PATH, json.dumps(
                {"project": "demo", "image_name": "n" * 20000}), auth()),
             413, "HSSGW.0003", 1),
            ("415", None, ("POST", st.EXPORT_PATH, body,
                           dict(auth(), **{"Content-Type": "text/plain"})),
             415, "HSSGW.0006", 1),
            ("502 malformed", {"mode": "malformed"},
             ("POST", st.EXPORT_PATH, body, auth()), 502, "HSSGW.0202", 2),
            ("502 dropped", {"mode": "drop"},
             ("POST", st.EXPORT_PATH, body, auth()), 502, "HSSGW.0201", 2),
            ("504", {"mode": "delay", "delay_ms": 2500},
             ("POST", st.EXPORT_PATH, body, auth()), 504, "HSSGW.0203", 2),
            ("HSS 500", {"mode": "status", "status": 500},
             ("POST", st.EXPORT_PATH, body, auth()), 500, None, 2),
            ("200", None, ("POST", st.EXPORT_PATH, body, auth()), 200,
             None, 2),
        ]
        for name, mode, req, status, code, nrec in cases:
            with self.subTest(name):
                if mode is not None:
                    mode = dict(mode, count=1)
                    r = s.emulator_control("control", mode)
                    self.assertEqual(r.status // 100, 2, r)
                before = len(raw_lines(s.trail))
                emu0 = len(s.emulator_lines())
                r = s.request(*req)
                self.assertEqual(r.status, status, r)
                rid = r.header("X-Request-Id")
                recs = self.new_records(before, nrec)
                self.assertEqual(len(recs), nrec, recs)
                self.assertTrue(all(x["request_id"] == rid for x in recs))
                self.assertEqual(recs[-1]["status"], status)
                if code is not None:
                    self.assertEqual(r.json()["error_code"], code)
                    self.assertEqual(recs[-1]["error_code"], code)
                if nrec == 1:
                    self.assertEqual(recs[0]["phase"], "final")
                    # Gap: a request refused before policy/upstream never
                    # reaches HSS.
                    self.assertEqual(len(s.emulator_lines()), emu0)
                else:
                    self.assertEqual([x["phase"] for x in recs],
                                     ["intent", "outcome"])
                    self.assertIsNone(recs[0]["status"])
                    self.assertEqual(recs[0]["decision"], "allow")
                    self.assertEqual(
                        recs[0]["upstream"]["request"]["headers"]
                        ["X-Auth-Token"], "<redacted>")
                for x in recs:
                    try:
                        self.schema.validate(x)
                    except SchemaError as e:
                        self.fail(str(e))
                if status == 200:
                    doc = r.json()
                    up = recs[1]["upstream"]
                    self.assertEqual(up["status"], 200)
                    self.assertEqual(up["task_id"], doc["task_id"])
                    self.assertEqual(up["record_total_num"],
                                     doc["record_total_num"])
                    self.assertEqual(recs[1]["token_fp"], fp(good))
                    self.assertEqual(recs[1]["subject"], "dev-alice")
                    self.assertEqual(recs[1]["groups"], [st.ALLOWED_GROUP])
                    self.assertEqual(recs[1]["credentials"], "demo")
                    self.assertNotEqual(recs[1]["credential_fp"], None)
        # Gap: a token in a record.  The upstream token and every bearer
        # token sent appear nowhere in the trail; the whole trail
        # validates and chains.
        raw = s.read_raw("audit", "audit.jsonl")
        self.assertNotIn(good.encode(), raw)
        self.assertNotIn(good.split(".")[2].encode(), raw)
        recs = self.assert_records_valid([s.trail])
        self.assertEqual(len(recs), 18)  # 8 final + 5 x 2
        rc, out, err = self.verify(s.trail)
        self.assertEqual(rc, 0, out + err)

    def test_secret_scan_positive_control(self):
        # The leak check can fail: a trail that holds the token is caught.
        d = tempfile.mkdtemp(prefix="hssgw-at-")
        try:
            p = os.path.join(d, "leak.jsonl")
            with open(p, "wb") as f:
                f.write(self.stack.upstream_token.encode() + b"\n")
            with self.assertRaises(AssertionError):
                self.assert_no_secret([p])
        finally:
            shutil.rmtree(d)

    def test_validator_positive_control(self):
        # The validator rejects what the schema forbids.
        self.stack.export(BODY, self.stack.mint())
        rec = json.loads(raw_lines(self.stack.trail)[-1])
        self.schema.validate(rec)
        bad = [dict(rec, extra=1), dict(rec, seq=0), dict(rec, v=2),
               dict(rec, phase="other"), dict(rec, prev="0" * 63),
               dict(rec, time=rec["time"] + "\n"),
               dict(rec, latency_ms=dict(rec["latency_ms"], total=-1)),
               dict(rec, upstream=dict(rec["upstream"], request=dict(
                   rec["upstream"]["request"], headers={
                       "X-Auth-Token": "MIIT-leaked"}))),
               {k: v for k, v in rec.items() if k != "hash"}]
        for b in bad:
            with self.assertRaises(SchemaError):
                self.schema.validate(b)


class TamperTests(AuditCase):
    """Edits to a real trail are caught by hssgw audit verify, naming the
    line; each next to the untouched copy verifying."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        tok = s.mint()
        for i in range(4):
            s.export(BODY, tok)
            s.export(BODY, s.mint(sub="dev-bob", groups=("others",)))
        s.wait_checkpoint()
        cls.lines = raw_lines(s.trail)
        cls.ckpt_src = s.trail + ".checkpoint"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hssgw-at-")
        self.ckpt = os.path.join(self.dir, "audit.jsonl.checkpoint")
        shutil.copy(self.ckpt_src, self.ckpt)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, lines, name="audit.jsonl"):
        p = os.path.join(self.dir, name)
        with open(p, "wb") as f:
            f.write(b"".join(l + b"\n" for l in lines))
        return p

    def assert_caught(self, lines, line_no, problems, at_ckpt=False):
        # Positive control first: the untouched trail verifies.
        rc, out, err = self.verify(self.write(self.lines, "clean.jsonl"),
                                   checkpoint=self.ckpt)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("ok: %d records" % len(self.lines), out)
        p = self.write(lines)
        rc, out, err = self.verify(p, checkpoint=self.ckpt)
        self.assertEqual(rc, 1, out + err)
        m = re.match(r"(.*):(\d+): seq (-?\d+): ([a-z ]+):", out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(1), self.ckpt if at_ckpt else p, out)
        if not at_ckpt:
            self.assertEqual(int(m.group(2)), line_no, out)
        self.assertIn(m.group(4), problems, out)
        return out

    def test_trail_is_real(self):
        self.assertEqual(len(self.lines), 12)  # 4 x (intent, outcome) + 4
        self.assert_records_valid([self.stack.trail])

    def test_edit(self):
        # Gap: changing who exported (one byte set) without fixing hashes.
        l = list(self.lines)
        l[4] = l[4].replace(b'"dev-alice"', b'"dev-alicf"')
        self.assertNotEqual(l[4], self.lines[4])
        self.assert_caught(l, 5, ("modified",))

    def test_edit_with_hash_recomputed(self):
        # Gap: an edit whose own hash is recomputed breaks the next link.
        l = list(self.lines)
        line = l[4].replace(b'"dev-alice"', b'"dev-mallory"')
        m = CHAIN_CUT.search(line)
        canon = line[:m.start()] + b"}"
        l[4] = (line[:m.start()] + b',"hash":"' +
                hashlib.sha256(canon).hexdigest().encode() + b'"}')
        self.assert_caught(l, 6, ("chain broken",))

    def test_delete(self):
        # Gap: removing a record from the middle.
        l = list(self.lines)
        del l[5]
        self.assert_caught(l, 6, ("removed", "chain broken"))

    def test_reorder(self):
        # Gap: swapping two records.
        l = list(self.lines)
        l[3], l[4] = l[4], l[3]
        self.assert_caught(l, 4, ("reordered",))

    def test_insert_replay(self):
        # An exact copy of an earlier record adds nothing (a collector's
        # resend leaves them, issue 22): counted and reported, not an
        # error; a different record under a seen seq is (insert_forged).
        l = list(self.lines)
        l.insert(7, self.lines[2])
        rc, out, err = self.verify(self.write(l), checkpoint=self.ckpt)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("1 duplicate records", out)

    def test_insert_forged(self):
        # Gap: a forged record with a self-consistent hash slipped in.
        rec = json.loads(self.lines[6])
        rec["subject"] = "ghost"
        del rec["hash"]
        canon = json.dumps(rec, separators=(",", ":")).encode()
        forged = canon[:-1] + b',"hash":"' + \
            hashlib.sha256(canon).hexdigest().encode() + b'"}'
        l = list(self.lines)
        l.insert(7, forged)
        self.assert_caught(l, 8, ("inserted", "chain broken"))

    def test_tail_cut(self):
        # Gap: dropping the newest records leaves a well-chained file;
        # only the checkpoint shows it.
        l = list(self.lines[:-2])
        out = self.assert_caught(l, None, ("truncated",), at_ckpt=True)
        self.assertIn("seq %d" % json.loads(self.lines[-1])["seq"], out)


class CrashTests(AuditCase):
    """kill -9 during a steady stream of requests."""

    stack_kw = {"threads": 4}

    def test_kill9_under_load(self):
        s = self.stack
        load = Load(s, threads=4).start()
        load.wait_for(40)
        rc = s.kill9()
        self.assertEqual(rc, -signal.SIGKILL)
        time.sleep(0.3)
        results = load.stop()
        emu = len(s.emulator_lines())
        # Every 200 has its intent and outcome on disk.
        recs = self.assert_records_valid([s.trail])
        self.assert_every_200_recorded(results, recs)
        # Gap: an export reaching HSS without a durable intent record.
        intents = [r for r in recs if r["phase"] == "intent"]
        self.assertLessEqual(emu, len(intents))
        rc, out, err = self.verify(s.trail)
        self.assertEqual(rc, 0, out + err)
        last = recs[-1]
        # Restart: the chain continues from the last complete record.
        s.restart_hssgw()
        tok = s.mint()
        for _ in range(3):
            self.assertEqual(s.export(BODY, tok).status, 200)
        after = self.assert_records_valid([s.trail])
        new = after[len(recs):]
        self.assertEqual(len(new), 6)
        self.assertEqual(new[0]["seq"], last["seq"] + 1)
        self.assertEqual(new[0]["prev"], last["hash"])
        rc, out, err = self.verify(s.trail)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("ok: %d records" % len(after), out)


class FailClosedTests(AuditCase):
    """An audit file hssgw cannot write: as root mode bits do not stop
    writes (and chattr or a read-only mount need privileges a container
    may lack), so hssgw is restarted under a file size limit (prlimit, as
    systemd's LimitFSIZE= would) just above the trail's size: the next
    write fails with EFBIG."""

    # Runs hssgw with SIGXFSZ ignored, so a write past the limit fails
    # with EFBIG instead of killing the process whatever hssgw does.
    IGNORE_XFSZ = (sys.executable, "-c",
                   "import os, signal, sys; "
                   "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                   "os.execv(sys.argv[1], sys.argv[1:])")

    def refused_under_limit(self, wrapper):
        s = self.stack
        tok = s.mint()
        # Positive control: exports pass before the limit.
        self.assertEqual(s.export(BODY, tok).status, 200)
        s.stop_backend()
        size = os.path.getsize(s.trail)
        # A fresh log file keeps hssgw's stderr under the limit too.
        s.restart_hssgw(prefix=("prlimit", "--fsize=%d" % (size + 64),
                                "--") + wrapper, fresh_log=True)
        emu = len(s.emulator_lines())
        n0 = len(raw_lines(s.trail))
        for i in range(3):
            # Gap: an export going upstream without its audit record.
            r = s.export(BODY, tok)
            p = s.procs["hssgw"]
            if p.poll() is not None:
                self.fail("hssgw died (exit %s) on a write past "
                          "RLIMIT_FSIZE instead of failing closed with "
                          "HSSGW.0302: serve must ignore SIGXFSZ" %
                          p.returncode)
            self.assertEqual(r.status, 503, "%r\n%s" % (
                r, s.log_tail("hssgw")))
            self.assertEqual(r.json()["error_code"], "HSSGW.0302", r)
        self.assertEqual(len(s.emulator_lines()), emu)
        self.assertEqual(s.request("GET", "/healthz").status, 503)
        self.assertIn("audit", s.log_tail("hssgw"))
        self.assertEqual(len(raw_lines(s.trail)), n0)

    def heal(self):
        # Without the limit it heals: a torn write is cut off and the
        # chain continues and verifies.
        s = self.stack
        s.restart_hssgw(fresh_log=True)
        emu = len(s.emulator_lines())
        r = s.export(BODY, s.mint())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(s.emulator_lines()), emu + 1)
        self.assert_records_valid([s.trail])
        rc, out, err = self.verify(s.trail)
        self.assertEqual(rc, 0, out + err)

    def test_a_efbig_refuses_exports(self):
        try:
            self.refused_under_limit(self.IGNORE_XFSZ)
        finally:
            self.heal()

    def test_c_acknowledged_answers_are_on_disk(self):
        # Issue 23: workers chain records and move on; the answers wait
        # for the disk.  The trail breaks midway through a burst of
        # exports the policy denies (each an authenticated record, none
        # sent upstream): every answer that came back 403 has its record
        # on disk, the rest are the unaudited 503, and nothing else comes
        # back.
        s = self.stack
        tok = s.mint(groups=("not-an-exporter",))
        s.stop_backend()
        size = os.path.getsize(s.trail)
        results, lock = [], threading.Lock()

        def burst():
            for _ in range(25):
                r = s.export(BODY, tok)
                with lock:
                    results.append((r.status, r.header("x-request-id"),
                                    r.body))
        try:
            s.restart_hssgw(prefix=("prlimit", "--fsize=%d" % (
                size + 16 * 1024), "--") + self.IGNORE_XFSZ, fresh_log=True)
            threads = [threading.Thread(target=burst) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ok = [rid for status, rid, _ in results if status == 403]
            lost = [b for status, _, b in results if status == 503]
            self.assertEqual(len(ok) + len(lost), len(results), results)
            self.assertTrue(ok, "no answer before the limit")
            self.assertTrue(lost, "the limit was never reached")
            for b in lost:
                self.assertEqual(json.loads(b)["error_code"], "HSSGW.0302")
            with open(s.trail) as f:
                trail = f.read()
            for rid in ok:
                self.assertIn('"%s"' % rid, trail,
                              "an answer was sent before its record "
                              "was on disk")
        finally:
            self.heal()

    def test_b_sigxfsz_default_refuses_exports(self):
        # As systemd or a shell starts it: SIGXFSZ at its default action,
        # which terminates a process that does not ignore it.
        try:
            self.refused_under_limit(())
        finally:
            self.heal()


class AnonymousFloodTests(AuditCase):
    """Issue 11 item 2 and the UTF-8 item: anonymous answers cannot fill
    the disk; every caller string is capped and valid UTF-8."""

    stack_kw = {"audit": {"anon_bytes_per_hour": 4096,
                          "summary_interval_ms": 1000}}

    def test_flood_capped_summarised_authenticated_kept(self):
        s = self.stack
        tok = s.mint()
        size0 = os.path.getsize(s.trail)
        n0 = len(raw_lines(s.trail))
        # Invalid UTF-8 from the path (the first anonymous record, inside
        # the burst, so it is written).
        r = s.request("GET", "/v1/exports/%ff%fe%c0%af")
        self.assertEqual(r.status, 404, r)
        # Gap: a 16 KB request line of %01 became a 32 KB record, and
        # each 404 had its own record: 2.6 GB an hour per address.
        long_path = "/v1/exports/" + "%01" * 5400
        flood, rids = 120, []
        for i in range(flood):
            r = s.request("GET", long_path)
            self.assertEqual(r.status, 404, r)
            if i % 30 == 0:
                # Positive control: authenticated requests keep theirs.
                e = s.export(BODY, tok)
                self.assertEqual(e.status, 200, e)
                rids.append(e.header("X-Request-Id"))
        time.sleep(1.2)  # the interval ends: the next record brings it
        self.assertEqual(s.request("GET", "/v1/exports/x/y/z").status, 404)
        data = open(s.trail, "rb").read()
        # Strict readers accept every line: UTF-8 decoded strictly.
        text = data.decode("utf-8", errors="strict")
        lines = text.split("\n")[n0:-1]
        recs = [json.loads(x) for x in lines]
        self.assert_records_valid([s.trail])
        for x in lines:
            self.assertLess(len(x.encode()), 8192, x[:200])
        bad = [x for x in recs if x["path"] and "%" not in x["path"]
               and x["path"].startswith("/v1/exports/\ufffd")]
        self.assertEqual(len(bad), 1, [x["path"] for x in recs][:5])
        written = [x for x in recs if x["phase"] == "final"
                   and (x["path"] or "").startswith("/v1/exports/\x01")]
        for x in written:
            self.assertRegex(x["path"], r"\.\.\.\[truncated 5412 bytes "
                             r"sha256:[0-9a-f]{64}\]$")
        counted = sum(e["count"] for x in recs if x["phase"] == "summary"
                      for e in x["summary"]["anonymous"]
                      if e["status"] == 404)
        self.assertGreater(counted, 0)
        # Never dropped: written + counted = sent (+ the two 404s above,
        # one of which may sit in the next interval's counts).
        self.assertIn(len(written) + counted, (flood, flood + 1, flood + 2))
        # Bounded: the burst is one interval's worth (16 KiB at least),
        # whereas the uncapped flood wrote about 120 x 32 KB.
        anon_bytes = sum(len(x.encode()) for x, rec in zip(lines, recs)
                         if rec["subject"] is None)
        self.assertLess(anon_bytes, 16384 + 8192)
        self.assertLess(os.path.getsize(s.trail) - size0, 64 * 1024)
        for rid in rids:
            phases = sorted(x["phase"] for x in recs
                            if x["request_id"] == rid)
            self.assertEqual(phases, ["intent", "outcome"], rid)


class AuthErrorTests(AuditCase):
    """Issue 11 "Smaller": 401s say nothing about issuers, kids or
    algorithms; the record keeps the reason."""

    def test_one_generic_401_reason_in_record(self):
        s = self.stack
        toks = {"kid": s.mint(kid="no-such-kid"),
                "issuer": s.mint(iss="https://other.example"),
                "expired": s.mint(ttl=-600)}
        bodies, reasons = set(), set()
        for name, tok in toks.items():
            r = s.export(BODY, tok)
            self.assertEqual(r.status, 401, (name, r))
            d = r.json()
            self.assertEqual(d["error_code"], "HSSGW.0102")
            bodies.add(d["error_msg"])
            rec = [x for x in s.audit_lines()
                   if x["request_id"] == r.header("X-Request-Id")][-1]
            reasons.add(rec["auth_error"])
        # Gap: each refusal named its reason ("unknown token issuer"...).
        self.assertEqual(bodies, {"Authorization: invalid token"})
        # Positive control: the trail still tells them apart.
        self.assertEqual(len(reasons), 3, reasons)
        self.assertEqual(s.export(BODY, s.mint()).status, 200)
        self.assert_records_valid([s.trail])


class TeamStack(AuditStack):
    def _configs(self):
        super()._configs()
        self.config["tasks"]["fair_share_claim"] = "team"
        st.write_file(self.config_path, json.dumps(self.config, indent=1))


class TeamTests(AuditCase):
    """Records name the fair share's team (tasks.fair_share_claim), so the
    audit report groups by it without the claim being recorded whole."""

    @classmethod
    def setUpClass(cls):
        cls.schema = load_validator()
        cls.stack = TeamStack(ARGS.bin, ARGS.src).start()

    def record_of(self, r):
        return [x for x in self.stack.audit_lines()
                if x["request_id"] == r.header("X-Request-Id")][-1]

    def test_team_recorded(self):
        s = self.stack
        r = s.export(BODY, s.mint(claims={"team": "payments"}))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.record_of(r).get("team"), "payments")
        # Positive control: without the claim there is no team member.
        r = s.export(BODY, s.mint())
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("team", self.record_of(r))
        self.assert_records_valid([s.trail])


class AttemptTests(AuditCase):
    """Issue 11 item 7: outcome records after a retry."""

    def mode(self, **doc):
        r = self.stack.emulator_control("control", doc)
        self.assertEqual(r.status // 100, 2, r)

    def outcome(self, r):
        return [x for x in self.stack.audit_lines()
                if x["request_id"] == r.header("X-Request-Id")][-1]

    def test_final_attempt_recorded(self):
        s = self.stack
        tok = s.mint()
        # Positive control: one attempt, no code.
        r = s.export(BODY, tok)
        self.assertEqual(r.status, 200, r)
        up = self.outcome(r)["upstream"]
        self.assertEqual([a["status"] for a in up["attempts"]], [200])
        # Gap: after a 429 then a 200 the record kept APIGW.0308.
        self.mode(mode="status", status=429, count=1, retry_after=1)
        r = s.export(BODY, tok)
        self.assertEqual(r.status, 200, r)
        rec = self.outcome(r)
        self.assertEqual(rec["upstream"]["status"], 200)
        self.assertIsNone(rec["upstream"]["error_code"])
        self.assertIsNone(rec["error_code"])
        self.assertEqual([(a["status"], a["error_code"])
                          for a in rec["upstream"]["attempts"]],
                         [(429, "APIGW.0308"), (200, None)])
        # Gap: a persistent HSS 401 recorded no error code.
        self.mode(mode="status", status=401, count=2)
        r = s.export(BODY, tok)
        self.assertEqual(r.status, 502, r)
        rec = self.outcome(r)
        self.assertEqual(rec["error_code"], "HSSGW.0204")
        self.assertEqual(rec["upstream"]["status"], 401)
        self.assertEqual(rec["upstream"]["error_code"], "APIGW.0301")
        self.assertEqual([a["status"] for a in rec["upstream"]["attempts"]],
                         [401, 401])
        self.assert_records_valid([s.trail])


class SelfHealTests(AuditCase):
    """Issue 11 item 2: after a failed write the trail heals by itself
    once the disk takes writes again, with no signal."""

    def test_heals_without_signal(self):
        s = self.stack
        tok = s.mint()
        self.assertEqual(s.export(BODY, tok).status, 200)
        s.stop_backend()
        size = os.path.getsize(s.trail)
        # Only the soft limit: lifting it later needs no privilege.
        s.restart_hssgw(prefix=("prlimit",
                                "--fsize=%d:unlimited" % (size + 64),
                                "--") + FailClosedTests.IGNORE_XFSZ,
                        fresh_log=True)
        try:
            r = s.export(BODY, tok)
            self.assertEqual(r.status, 503, r)
            # Still failing: retries must not claim readiness.
            time.sleep(0.5)
            h = s.request("GET", "/healthz")
            self.assertEqual(h.status, 503, h)
            self.assertEqual(h.json().get("reason"), "audit", h)
            self.assertEqual(s.export(BODY, tok).status, 503)
            # The disk takes writes again: lift the limit, no signal.
            pid = s.procs["hssgw"].pid
            subprocess.run(["prlimit", "--pid", str(pid),
                            "--fsize=unlimited"], check=True)
            deadline = time.monotonic() + 5
            while s.request("GET", "/healthz").status != 200:
                self.assertLess(time.monotonic(), deadline,
                                s.log_tail("hssgw"))
                time.sleep(0.1)
            r = s.export(BODY, tok)
            self.assertEqual(r.status, 200, r)
            self.assertIs(s.procs["hssgw"].poll(), None)
            recs = s.audit_lines()
            fails = [x for x in recs if x["phase"] == "summary"
                     and "trail_failure" in x["summary"]]
            self.assertEqual(len(fails), 1)
            self.assertGreaterEqual(
                fails[0]["summary"]["trail_failure"]["refused"], 2)
            self.assert_records_valid([s.trail])
            rc, out, err = self.verify(s.trail)
            self.assertEqual(rc, 0, out + err)
        finally:
            s.restart_hssgw(fresh_log=True)


class RotationTests(AuditCase):
    """logrotate's way: rename, then SIGUSR1, while clients stream."""

    stack_kw = {"threads": 4}

    def test_rename_and_sigusr1_under_load(self):
        s = self.stack
        load = Load(s, threads=4).start()
        load.wait_for(20)
        old = s.trail + ".1"
        os.rename(s.trail, old)
        s.procs["hssgw"].send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not os.path.exists(s.trail):
            self.assertLess(time.monotonic(), deadline, "no reopen")
            time.sleep(0.02)
        n = load.count()
        load.wait_for(n + 20)
        results = load.stop()
        s.wait_checkpoint()
        self.assertEqual({st_ for st_, _, _ in results}, {200},
                         [r for r in results if r[0] != 200][:3])
        # No record lost, none split: both files hold complete lines only
        # and chain across the rename.
        for p in (old, s.trail):
            with open(p, "rb") as f:
                self.assertTrue(f.read().endswith(b"\n"), p)
        self.assertGreater(len(raw_lines(s.trail)), 0)
        recs = self.assert_records_valid([old, s.trail])
        self.assert_every_200_recorded(results, recs)
        self.assertEqual(len(recs), 2 * len(results))
        rc, out, err = self.verify(old, s.trail)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("ok: %d records" % len(recs), out)
        # Control: the live file alone (its start is not seq 1) verifies
        # too; the old one alone misses the tail the checkpoint names.
        rc, out, err = self.verify(s.trail)
        self.assertEqual(rc, 0, out + err)
        rc, out, err = self.verify(old, checkpoint=s.trail + ".checkpoint")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("truncated", out)


class SizeRotationTests(AuditCase):
    """audit.rotate_bytes: the leader rotates by size under load."""

    stack_kw = {"threads": 4, "audit": {"rotate_bytes": 16384}}

    def test_size_rotation_under_load(self):
        s = self.stack
        load = Load(s, threads=4).start()
        load.wait_for(60)
        results = load.stop()
        d = s.path("audit")
        rotated = sorted(f for f in os.listdir(d)
                         if f.startswith("audit.jsonl.") and
                         not f.endswith("checkpoint"))
        self.assertGreaterEqual(len(rotated), 2, rotated)
        files = [os.path.join(d, f) for f in rotated] + [s.trail]
        recs = self.assert_records_valid(files)
        self.assert_every_200_recorded(results, recs)
        rc, out, err = self.verify(*files)
        self.assertEqual(rc, 0, out + err)
        for f in files[:-1]:
            # A record is never split: each rotated file ends a line.
            self.assertLess(os.path.getsize(f), 16384 + 8192, f)


    def test_empty_live_file_joins_its_trail(self):
        # Gap: right after a rotation the live file is empty and names no
        # instance; verify took it for a second trail and parted the
        # trail's last file from its checkpoint.
        s = self.stack
        self.assertEqual(s.export(BODY, s.mint()).status, 200)
        s.wait_checkpoint()
        d = tempfile.mkdtemp(prefix="hssgw-at-")
        try:
            old = os.path.join(d, "audit.jsonl.1")
            live = os.path.join(d, "audit.jsonl")
            shutil.copy(s.trail, old)
            open(live, "wb").close()
            shutil.copy(s.trail + ".checkpoint", live + ".checkpoint")
            rc, out, err = self.verify(old, live)
            self.assertEqual(rc, 0, out + err)
            self.assertNotIn("instance", out)
            self.assertNotIn("no checkpoint compared", out)
            # Positive control: a tail cut from the old file is seen.
            lines = raw_lines(old)
            with open(old, "wb") as f:
                f.write(b"".join(l + b"\n" for l in lines[:-1]))
            rc, out, err = self.verify(old, live)
            self.assertEqual(rc, 1, out + err)
            self.assertIn("truncated", out)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class QueryTests(AuditCase):
    """hssgw audit query answers "who exported what, when"."""

    def query(self, *argv):
        rc, out, err = hssgw("audit", "query", self.stack.trail, *argv)
        self.assertEqual(rc, 0, err)
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    def test_query_filters(self):
        s = self.stack
        alice, bob = s.mint(sub="dev-alice"), s.mint(sub="dev-bob")
        carol = s.mint(sub="carol", groups=("others",))
        self.assertEqual(s.export(BODY, alice).status, 200)
        self.assertEqual(s.export(BODY, carol).status, 403)
        time.sleep(1.1)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        time.sleep(0.1)
        r_bob = s.export(BODY, bob)
        self.assertEqual(r_bob.status, 200)
        r_alice = s.export(BODY, alice)
        self.assertEqual(r_alice.status, 200)
        time.sleep(0.1)
        allrecs = [json.loads(l) for l in raw_lines(s.trail)]

        got = self.query("--subject", "dev-alice")
        want = [r for r in allrecs if r["subject"] == "dev-alice"]
        self.assertEqual(got, want)
        self.assertEqual(len(got), 4)
        self.assertEqual(self.query("--subject", "nobody"), [])

        got = self.query("--subject", "dev-alice", "--since", since)
        self.assertEqual([r["request_id"] for r in got],
                         [r_alice.header("X-Request-Id")] * 2)

        got = self.query("--decision", "implicit_deny")
        self.assertEqual([r["subject"] for r in got], ["carol"])
        self.assertEqual(len(self.query("--decision", "allow")), 6)

        task = r_bob.json()["task_id"]
        got = self.query("--task-id", task)
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["phase"], "outcome")
        self.assertEqual(got[0]["subject"], "dev-bob")
        self.assertEqual(got[0]["request_id"], r_bob.header("X-Request-Id"))

        got = self.query("--since", since, "--decision", "allow",
                         "--project", st.PROJECT_ALIAS)
        self.assertEqual({r["subject"] for r in got},
                         {"dev-alice", "dev-bob"})
        self.assertEqual(len(got), 4)

        rc, out, err = hssgw("audit", "query", s.trail, "--task-id", task,
                             "--format", "table")
        self.assertEqual(rc, 0, err)
        self.assertIn("dev-bob", out)
        self.assertIn(task[:20], out)  # the table shortens long ids
        rc, _, err = hssgw("audit", "query", s.trail, "--since", "yesterday")
        self.assertEqual(rc, 2, err)


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
