#!/usr/bin/env python3
"""Export tasks end to end through nginx + hssgw + hss-emulator: status and
download by signed handle, ownership (404 for anyone else, same as a
missing task, unless the policy lets the caller act for the task's
subject), the upstream budget under 20 concurrent callers, HSS's
Retry-After, single flight of identical exports, and a download of
hundreds of megabytes with hssgw's peak RSS measured.

Run: test_tasks.py --bin BUILD/bin --src SRC.  Python 3 stdlib only.
"""

import concurrent.futures
import copy
import json
import os
import secrets
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402
import stack as stk  # noqa: E402
from fixtures import (ARGS, TASK_BODY as BODY, TASK_POLICY,  # noqa: E402
                      TaskStack, check_bytes, max_in_window)


class Flow(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 600, "status_cache_ttl_s": 1}).start()
        cls.alice = cls.s.mint(sub="dev-alice")
        cls.bob = cls.s.mint(sub="dev-bob")

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def export(self, token):
        r = self.s.export(BODY, token=token)
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertIn("task_id", doc)
        self.assertIn("record_total_num", doc)
        self.assertEqual(doc["handle"], r.header("X-Export-Handle"))
        return doc

    def poll(self, handle, token, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            r = self.s.get(stk.EXPORT_PATH + "/" + handle, token)
            self.assertEqual(r.status, 200, r)
            if r.json()["task_status"] != "running":
                return r
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.3)

    def test_export_poll_download(self):
        self.s.tasks_ctl({"delay_ms": 1500, "file_bytes": 100000})
        doc = self.export(self.alice)
        first = self.s.get(stk.EXPORT_PATH + "/" + doc["handle"],
                           self.alice)
        self.assertEqual(first.json()["task_status"], "running")
        r = self.poll(doc["handle"], self.alice)
        st = r.json()
        self.assertEqual(st["task_status"], "success")
        self.assertEqual(st["task_id"], doc["task_id"])
        f = self.s.get(stk.EXPORT_PATH + "/" + doc["handle"] + "/file",
                       self.alice)
        self.assertEqual(f.status, 200, f)
        self.assertEqual(len(f.body), 100000)
        self.assertEqual(f.header("Content-Length"), "100000")
        self.assertEqual(f.header("Content-Type"), "application/zip")
        self.assertEqual(f.header("Content-Disposition"),
                         'attachment; filename="%s"' % st["file_name"])
        self.assertTrue(check_bytes(f.body, st["file_id"]))
        # Negative control for the byte check itself.
        self.assertFalse(check_bytes(b"x" + f.body[1:], st["file_id"]))
        recs = [a for a in self.s.audit_lines()
                if a.get("action") == "hss:DownloadExportFile"]
        self.assertTrue(recs)
        self.assertEqual(recs[-1]["status"], 200)
        self.assertEqual(recs[-1]["upstream"]["task_id"], doc["task_id"])

    def test_not_ready_is_409(self):
        self.s.tasks_ctl({"delay_ms": 60000, "file_bytes": 10})
        doc = self.export(self.alice)
        f = self.s.get(stk.EXPORT_PATH + "/" + doc["handle"] + "/file",
                       self.alice)
        self.assertEqual(f.status, 409, f)
        self.assertEqual(f.json()["error_code"], "HSSGW.0009")
        self.s.tasks_ctl({"delay_ms": 0})

    def test_foreign_and_guessed_handles_are_404(self):
        """Gap pinned: a task is visible only to the subject that made it,
        and a foreign handle answers exactly like a made-up one."""
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 10})
        doc = self.export(self.alice)
        base = stk.EXPORT_PATH + "/" + doc["handle"]
        # Positive control: the owner sees it.
        self.assertEqual(self.s.get(base, self.alice).status, 200)
        answers = []
        for path, tok in ((base, self.bob), (base + "/file", self.bob),
                          (stk.EXPORT_PATH + "/" + doc["task_id"],
                           self.alice),
                          (stk.EXPORT_PATH + "/" + doc["handle"][:-2] + "AA",
                           self.alice)):
            r = self.s.get(path, tok)
            self.assertEqual(r.status, 404, (path, r))
            d = r.json()
            answers.append((d["error_code"], d["error_msg"]))
        self.assertEqual(len(set(answers)), 1, answers)
        self.assertEqual(answers[0][0], "HSSGW.0008")
        # Without a token: 401, before anything about the handle.
        self.assertEqual(self.s.get(base, None).status, 401)

    def test_large_download_flat_memory(self):
        size = 300 * 1024 * 1024
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": size})
        doc = self.export(self.alice)
        st = self.poll(doc["handle"], self.alice).json()
        pid = self.s.procs["hssgw"].pid

        def vm(key):
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1]) * 1024
            raise AssertionError(key)

        before = vm("VmHWM")
        c = self.s._conn(self.s.gw_port)
        c.request("GET", stk.EXPORT_PATH + "/" + doc["handle"] + "/file",
                  headers={"Authorization": "Bearer " + self.alice})
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(int(r.getheader("Content-Length")), size)
        n, ok, off, pending = 0, True, 0, b""
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
            # Whole blocks are checked; a chunk ending mid-block is
            # carried over to the next read.
            buf = pending + chunk
            whole = len(buf) - len(buf) % 4096
            ok = ok and check_bytes(buf[:whole], st["file_id"], off)
            off += whole
            pending = buf[whole:]
        c.close()
        self.assertEqual(n, size)
        self.assertTrue(ok and check_bytes(pending, st["file_id"], off))
        growth = vm("VmHWM") - before
        print("download of %d MiB: hssgw peak RSS grew %.1f MiB" % (
            size >> 20, growth / 1048576.0), file=sys.stderr)
        self.assertLess(growth, 64 * 1024 * 1024)

# An enterprise project holding every character the URL builder must
# encode (#16): space, '+', '/', '%', '&', '=', non-ASCII and an emoji.
EPS_ODD = "eps 1+/%&=\u00e9\U0001F642"
EPS_OTHER = "other eps/2"
PID_EPS = "e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9"
EPS_AK = "AKEPS0123456789ABCDEF"
EPS_SK = "SK" + secrets.token_hex(20)


class EpsStack(TaskStack):
    """TaskStack plus project "eps": AK/SK signed (the emulator verifies
    every signature), its enterprise project EPS_ODD, EPS_OTHER allowed."""

    def _configs(self):
        super()._configs()
        stk.write_file(self.path("secrets", "eps.sk"), EPS_SK + "\n", 0o600)
        stk.write_file(self.path("emulator.json"), json.dumps({
            "projects": [{"project_id": stk.PROJECT_ID,
                          "tokens": [self.upstream_token]},
                         {"project_id": PID_EPS, "tokens": []}],
            "aksk": [{"access_key": EPS_AK, "secret_key": EPS_SK,
                      "projects": [PID_EPS]}]}), 0o600)
        pol = copy.deepcopy(stk.DEMO_POLICY)
        pol["Statement"][1]["Resource"] = "hss:*:*"
        stk.write_file(self.path("policies", "demo.json"), json.dumps(pol))
        tpol = copy.deepcopy(TASK_POLICY)
        tpol["Statement"][0]["Resource"] = "hss:*:*"
        stk.write_file(self.path("policies", "tasks.json"), json.dumps(tpol))
        self.config["credentials"].append(
            {"name": "eps", "type": "aksk", "access_key": EPS_AK,
             "secret_key_file": "secrets/eps.sk"})
        self.config["projects"].append({
            "alias": "eps", "project_id": PID_EPS, "region": stk.REGION,
            "endpoint": "https://127.0.0.1:%d/" % self.emu_port,
            "enterprise_project_id": EPS_ODD,
            "enterprise_projects": [EPS_OTHER], "credentials": "eps"})
        stk.write_file(self.config_path, json.dumps(self.config, indent=1))


def query_eps(line):
    """The decoded enterprise_project_id of an emulator log line, or None."""
    q = urllib.parse.parse_qs(line.get("query", ""), keep_blank_values=True)
    v = q.get("enterprise_project_id")
    return v[0] if v else None


class EnterpriseProjects(unittest.TestCase):
    """#16 and #11 item 10: status and download are built by the same URL
    rule as the export and go under the enterprise project the export was
    made with; a project entry fixes which enterprise projects a caller
    may name."""

    @classmethod
    def setUpClass(cls):
        cls.s = EpsStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 600, "status_cache_ttl_s": 0,
            "coalesce_window_ms": 0}).start()
        cls.alice = cls.s.mint(sub="dev-alice")

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def flow(self, body, want_eps):
        """Export, poll, download through nginx; every HSS call of the
        task carries want_eps, decoded, and passed the AK/SK check."""
        self.s.tasks_ctl({"delay_ms": 300, "file_bytes": 5000})
        seen = len(self.s.emulator_lines())
        r = self.s.export(body, token=self.alice)
        self.assertEqual(r.status, 200, r)
        h = r.json()["handle"]
        deadline = time.monotonic() + 15
        while True:
            st = self.s.get(stk.EXPORT_PATH + "/" + h, self.alice)
            self.assertEqual(st.status, 200, st)
            if st.json()["task_status"] != "running":
                break
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.2)
        self.assertEqual(st.json()["task_status"], "success")
        f = self.s.get(stk.EXPORT_PATH + "/" + h + "/file", self.alice)
        self.assertEqual(f.status, 200, f)
        self.assertEqual(len(f.body), 5000)
        self.assertTrue(check_bytes(f.body, st.json()["file_id"]))
        lines = [e for e in self.s.emulator_lines()[seen:]
                 if ("/v5/%s/" % PID_EPS) in e.get("path", "")]
        kinds = {"export": 0, "export-task": 0, "download": 0}
        for e in lines:
            for k in kinds:
                if "/%s" % k in e["path"] and e.get("status") == 200:
                    kinds[k] += 1
                    self.assertEqual(query_eps(e), want_eps, e)
        self.assertTrue(all(kinds.values()), kinds)

    def test_odd_enterprise_project_exports_polls_downloads(self):
        """Gap pinned: with EPS_ODD configured, exports worked and every
        status or download answered 502 HSSGW.0201 (raw value in the
        URL); the endpoint's trailing '/' made "//v5". Now all three
        calls carry the value, percent-encoded, signed and verified."""
        self.flow({"project": "eps", "image_type": "private_image"},
                  EPS_ODD)

    def test_export_with_other_eps_is_polled_under_it(self):
        """Gap pinned: an export made with another (allowed) enterprise
        project was polled under the project's default, where HSS (the
        emulator) does not find the task."""
        self.flow({"project": "eps", "image_type": "private_image",
                   "enterprise_project_id": EPS_OTHER}, EPS_OTHER)

    def test_translate_handle(self):
        """hssgw translate --handle prints the status and download
        requests the server sends for that handle: the same query HSS
        got, ids encoded into one segment, secrets redacted."""
        seen = len(self.s.emulator_lines())
        r = self.s.export({"project": "eps", "image_type": "cicd",
                           "enterprise_project_id": EPS_OTHER},
                          token=self.alice)
        self.assertEqual(r.status, 200, r)
        h = r.json()["handle"]
        st = self.s.get(stk.EXPORT_PATH + "/" + h, self.alice)
        self.assertEqual(st.status, 200, st)
        p = subprocess.run([self.s.hssgw, "translate", "--config",
                            self.s.config_path, "--handle", h,
                            "--file-id", "f/../1 +"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        base = "https://127.0.0.1:%d/v5/%s/" % (self.s.emu_port, PID_EPS)
        q = "?enterprise_project_id=other%20eps%2F2"
        self.assertEqual(doc["status"]["method"], "GET")
        self.assertEqual(doc["status"]["url"], base + "export-task/" +
                         r.json()["task_id"] + q)
        self.assertEqual(doc["download"]["url"],
                         base + "download/f%2F..%2F1%20%2B" + q)
        self.assertEqual(doc["status"]["headers"]["Authorization"],
                         "<redacted>")
        self.assertNotIn(EPS_SK, p.stdout)
        got = [e for e in self.s.emulator_lines()[seen:]
               if "/export-task/" in e.get("path", "")]
        self.assertEqual("?" + got[-1]["query"], q)
        # Attack: a handle under another key does not open.
        p = subprocess.run([self.s.hssgw, "translate", "--config",
                            self.s.config_path, "--handle", h[:-2] + "AA"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("does not open", p.stderr)

    def test_attack_all_granted_eps_on_demo(self):
        """Attack (#11 item 10): a caller allowed on alias demo names
        "all_granted_eps": 400 naming the field and the rule, and HSS
        gets nothing.  Positive control: the configured one passes."""
        before = self.s.tasks_ctl()["export_calls"]
        r = self.s.export({"project": stk.PROJECT_ALIAS,
                           "enterprise_project_id": "all_granted_eps"},
                          token=self.alice)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json()["error_code"], "HSSGW.0002")
        self.assertEqual(r.json()["field"], "enterprise_project_id")
        self.assertIn("enterprise_projects", r.json()["error_msg"])
        self.assertEqual(self.s.tasks_ctl()["export_calls"], before)
        r = self.s.export({"project": stk.PROJECT_ALIAS,
                           "enterprise_project_id": "0"}, token=self.alice)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.s.tasks_ctl()["export_calls"], before + 1)


class Budget(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, threads=8,
                          tasks={"budget_per_minute": 5}).start()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_twenty_callers(self):
        """20 callers at once: at most 5 reach HSS, HSS never throttles,
        the rest get 429 + Retry-After + HSSGW.0205, all audited."""
        self.s.tasks_ctl({"limit_per_minute": 5})
        toks = [self.s.mint(sub="team-%d" % i) for i in range(20)]
        with concurrent.futures.ThreadPoolExecutor(20) as ex:
            rs = list(ex.map(lambda t: self.s.export(BODY, token=t), toks))
        ok = [r for r in rs if r.status == 200]
        busy = [r for r in rs if r.status == 429]
        self.assertEqual(len(ok) + len(busy), 20, rs)
        self.assertEqual(len(ok), 5)
        for r in busy:
            self.assertEqual(r.json()["error_code"], "HSSGW.0205")
            self.assertGreaterEqual(int(r.header("Retry-After")), 1)
        c = self.s.tasks_ctl()
        self.assertEqual(c["export_calls"], 5)
        self.assertEqual(c["throttled"], 0)
        recs = [a for a in self.s.audit_lines()
                if a.get("error_code") == "HSSGW.0205"]
        self.assertEqual(len(recs), 15)
        # A budget refusal sends nothing: ONE final record per request
        # (#16, docs/AUDIT.md), no intent claiming an HSS call.  Positive
        # control: the 5 sent exports have an intent and an outcome.
        by_id = {}
        for a in self.s.audit_lines():
            if a.get("action") == "hss:ExportImageBaseline":
                by_id.setdefault(a["request_id"], []).append(a["phase"])
        refused = {a["request_id"] for a in recs}
        for rid in refused:
            self.assertEqual(by_id[rid], ["final"], rid)
        sent = [p for rid, p in by_id.items() if rid not in refused]
        self.assertEqual(len(sent), 5)
        for p in sent:
            self.assertEqual(sorted(p), ["intent", "outcome"])


class SlidingBudget(unittest.TestCase):
    """Issue #14: at most budget_per_minute HSS calls in ANY 60 s."""

    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 5}).start()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_round_robin_stream_never_over_five_a_minute(self):
        """Gap pinned: the token bucket let 9 calls through in one
        60-second window of a steady stream (5 full + a refill every
        12 s).  10 subjects round robin, one request every 1.5 s for
        75 s: HSS (limit on, sliding window) sees at most 5 export calls
        in any 60 s and never throttles; positive control: the budget
        still grants, 5 in the first minute and more after it."""
        self.s.tasks_ctl({"limit_per_minute": 5, "delay_ms": 0,
                          "file_bytes": 10})
        toks = [self.s.mint(sub="rr-team-%d" % i) for i in range(10)]
        t0 = time.monotonic()
        statuses = []
        for i in range(51):  # 0 .. 75 s
            delay = t0 + 1.5 * i - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            r = self.s.export(dict(BODY, image_name="img-%d" % i),
                              token=toks[i % 10])
            self.assertIn(r.status, (200, 429), r)
            if r.status == 429:
                self.assertEqual(r.json()["error_code"], "HSSGW.0205", r)
                self.assertGreaterEqual(int(r.header("Retry-After")), 1)
            statuses.append(r.status)
        calls = [e["time_ms"] for e in self.s.emulator_lines()
                 if e["method"] == "POST" and
                 e["path"].endswith("/image/baseline/export")]
        c = self.s.tasks_ctl()
        print("round robin: %d HSS calls, at most %d in any 60 s, "
              "%d throttled by HSS" % (len(calls), max_in_window(calls),
                                       c["throttled"]), file=sys.stderr)
        self.assertEqual(c["throttled"], 0)
        self.assertLessEqual(max_in_window(calls), 5)
        self.assertEqual(len(calls), statuses.count(200))
        self.assertGreater(len(calls), 5)


class SlowCallBudget(unittest.TestCase):
    """A grant is held a minute (and the margin) from its call's
    COMPLETION: HSS counts a call when it arrives, anywhere up to then."""

    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, timeout_ms=8000, tasks={
            "budget_per_minute": 5}).start()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_slow_call_holds_its_slot_from_completion(self):
        """Gap pinned: a grant was held 62 s from the grant, so a call
        HSS answered 4 s late freed its slot 4 s too early (a sixth call
        could arrive within 60 s of it).  4 fast exports and one 4 s slow
        one: at 63 s after them the four fast slots are free again (the
        positive control: 4 granted) but the fifth is refused (429
        HSSGW.0205) with Retry-After pointing at the slow call's
        completion + 62 s, and granted once that passed."""
        self.s.tasks_ctl({"limit_per_minute": 5, "delay_ms": 0,
                          "file_bytes": 10})
        for i in range(4):
            r = self.s.export(dict(BODY, image_name="fast-%d" % i),
                              token=self.s.mint(sub="slow-a-%d" % i))
            self.assertEqual(r.status, 200, r)
        fast_done = time.monotonic()
        r = self.s.emulator_control("control", {"mode": "delay",
                                                "delay_ms": 4000,
                                                "count": 1})
        self.assertEqual(r.status, 200, r)
        r = self.s.export(dict(BODY, image_name="slow"),
                          token=self.s.mint(sub="slow-a-4"))
        self.assertEqual(r.status, 200, r)
        slow_done = time.monotonic()
        self.assertGreater(slow_done - fast_done, 3.5)
        time.sleep(max(0.0, fast_done + 63 - time.monotonic()))
        for i in range(4):
            r = self.s.export(dict(BODY, image_name="late-%d" % i),
                              token=self.s.mint(sub="slow-b-%d" % i))
            self.assertEqual(r.status, 200, r)
        tok = self.s.mint(sub="slow-b-4")
        r = self.s.export(dict(BODY, image_name="late-4"), token=tok)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["error_code"], "HSSGW.0205", r)
        ra = int(r.header("Retry-After"))
        left = slow_done + 62 - time.monotonic()
        self.assertGreaterEqual(ra, 1)
        self.assertLessEqual(abs(ra - left), 1.5, (ra, left))
        time.sleep(ra + 0.2)
        r = self.s.export(dict(BODY, image_name="late-4"), token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.s.tasks_ctl()["throttled"], 0)


class ReauthBudget(unittest.TestCase):
    """HSS 401 answered by fresh credentials and a resend: the resend is
    an HSS call of its own and takes a grant (export.c send_upstream)."""

    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 3, "coalesce_window_ms": 0}).start()
        cls.tok = cls.s.mint(sub="dev-reauth")

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def exports_seen(self):
        return [e for e in self.s.emulator_lines()
                if e["method"] == "POST" and
                e["path"].endswith("/image/baseline/export")]

    def test_resend_after_401_takes_a_grant(self):
        """Gap pinned: the resend went out under the first send's grant,
        so a budget of 3 let 4 calls reach HSS in a minute.  Now: one
        export (1 grant), one rejected once (2 grants: [401, 200]), and
        the next export is refused by the budget; with the old code it
        was sent (200).  Positive control: the export before, within the
        budget, goes through."""
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 10})
        r = self.s.export(dict(BODY, image_name="r1"), token=self.tok)
        self.assertEqual(r.status, 200, r)
        n0 = len(self.exports_seen())
        self.s.emulator_control("control", {"mode": "status",
                                            "status": 401, "count": 1})
        r = self.s.export(dict(BODY, image_name="r2"), token=self.tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([e["status"] for e in self.exports_seen()[n0:]],
                         [401, 200])
        r = self.s.export(dict(BODY, image_name="r3"), token=self.tok)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["error_code"], "HSSGW.0205")
        self.assertEqual(len(self.exports_seen()[n0:]), 2)


class DroppedExport(unittest.TestCase):
    """Issue #11 item 5: an export is never sent to HSS twice."""

    @classmethod
    def setUpClass(cls):
        # One worker: its kept-alive connection is the one the export
        # would reuse.
        cls.s = TaskStack(ARGS.bin, ARGS.src, threads=1, tasks={
            "budget_per_minute": 600}).start()
        cls.tok = cls.s.mint(sub="dev-drop")

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def exports_seen(self):
        return [e for e in self.s.emulator_lines()
                if e["method"] == "POST" and
                e["path"].endswith("/image/baseline/export")]

    def test_dropped_export_sent_once(self):
        """Gap pinned: HSS read an export on a kept-alive connection and
        dropped it; libcurl resent it on a new connection, so HSS saw two
        exports (and answered the second) while hssgw counted one.  Now
        HSS sees exactly one, the caller gets 502 HSSGW.0201 and the
        outcome record says so.  Positive control: without the fault the
        same export succeeds, once."""
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 10})
        # A status poll leaves the worker a kept-alive connection.
        r = self.s.export(dict(BODY, image_name="warm"), token=self.tok)
        self.assertEqual(r.status, 200, r)
        st = self.s.get(stk.EXPORT_PATH + "/" + r.json()["handle"],
                        self.tok)
        self.assertEqual(st.status, 200, st)
        n0 = len(self.exports_seen())
        r = self.s.emulator_control("control", {"mode": "drop", "count": 1})
        self.assertEqual(r.status, 200, r)
        r = self.s.export(dict(BODY, image_name="dropped"), token=self.tok)
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json()["error_code"], "HSSGW.0201")
        seen = self.exports_seen()[n0:]
        self.assertEqual(len(seen), 1, seen)
        self.assertEqual(seen[0]["status"], 444)
        out = [a for a in self.s.audit_lines()
               if a.get("request_id") == r.header("X-Request-Id")]
        self.assertEqual([a["phase"] for a in out], ["intent", "outcome"])
        self.assertEqual(out[-1]["status"], 502)
        self.assertEqual(out[-1]["error_code"], "HSSGW.0201")
        # Positive control: the fault is spent; the next export goes
        # through, once.
        r = self.s.export(dict(BODY, image_name="after"), token=self.tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(self.exports_seen()[n0:]), 2)


class Reload(unittest.TestCase):
    """SIGHUP builds a new snapshot; the budget, the status cache and (with
    no key file) the random handle key belong to the gateway and stay."""

    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, key_file=False,
                          tasks={"budget_per_minute": 2}).start()
        # HSS's limit on, so a budget that overspends meets its 429.
        cls.s.tasks_ctl({"limit_per_minute": 5})

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_budget_and_random_key_survive_reload(self):
        """Gap pinned: a reload used to hand out a full budget (so every
        SIGHUP bought 5 more HSS calls) and void every handle minted
        under a random key."""
        tok = self.s.mint(sub="dev-reload")
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 10})
        first = self.s.export(BODY, token=tok)
        self.assertEqual(first.status, 200, first)
        self.assertEqual(self.s.export(BODY, token=tok).status, 200)
        # Positive control: the budget is spent before the reload.
        self.assertEqual(self.s.export(BODY, token=tok).status, 429)
        self.s.sighup_and_wait()
        r = self.s.export(BODY, token=tok)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["error_code"], "HSSGW.0205")
        self.assertGreaterEqual(int(r.header("Retry-After")), 1)
        # The handle from before the reload still opens its task.
        h = first.json()["handle"]
        st = self.s.get(stk.EXPORT_PATH + "/" + h, tok)
        self.assertEqual(st.status, 200, st)
        self.assertEqual(st.json()["task_id"], first.json()["task_id"])


class Throttled(unittest.TestCase):
    """HSS 429 (APIGW.0308): retried with backoff (2 s, 4 s, ...) within
    tasks.retry_deadline_ms, then 429 HSSGW.0206 with Retry-After."""

    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 600, "status_cache_ttl_s": 0,
            "retry_deadline_ms": 5000}).start()
        cls.tok = cls.s.mint(sub="dev-retry")

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def tearDown(self):
        self.s.emulator_control("control", {"mode": "ok"})
        self.s.tasks_ctl({"limit_per_minute": 0})

    def test_one_429_is_retried(self):
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 10})
        n = len(self.s.emulator_lines())
        self.s.emulator_control("control", {"mode": "status", "status": 429,
                                            "count": 1})
        t0 = time.monotonic()
        r = self.s.export(BODY, token=self.tok)
        self.assertEqual(r.status, 200, r)
        self.assertGreaterEqual(time.monotonic() - t0, 1.9)
        lines = self.s.emulator_lines()[n:]
        self.assertEqual([e["status"] for e in lines], [429, 200])
        rec = [a for a in self.s.audit_lines()
               if a["request_id"] == r.header("X-Request-Id")][-1]
        self.assertEqual(rec["status"], 200)
        self.assertEqual(rec["upstream"]["status"], 200)
        self.assertEqual(rec["upstream"]["task_id"], r.json()["task_id"])

    def test_export_throttled_past_deadline(self):
        """Gap pinned: HSS's 429 used to reach the caller as HSS's own
        answer, without Retry-After and without a retry."""
        n = len(self.s.emulator_lines())
        self.s.emulator_control("control", {"mode": "status", "status": 429,
                                            "count": 100})
        t0 = time.monotonic()
        r = self.s.export(BODY, token=self.tok)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["error_code"], "HSSGW.0206")
        self.assertEqual(r.header("Retry-After"), "12")
        # 2 s, then 4 s more would pass the 5 s deadline: two calls.
        self.assertEqual(len(self.s.emulator_lines()) - n, 2)
        self.assertLess(took, 5.0)
        rec = [a for a in self.s.audit_lines()
               if a["request_id"] == r.header("X-Request-Id")][-1]
        self.assertEqual(rec["error_code"], "HSSGW.0206")
        self.assertEqual(rec["upstream"]["error_code"], "APIGW.0308")

    def test_status_throttled(self):
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 10})
        doc = self.s.export(BODY, token=self.tok).json()
        path = stk.EXPORT_PATH + "/" + doc["handle"]
        # HSS now allows one status call a minute: the first passes
        # (positive control), the second is throttled past the deadline.
        self.s.tasks_ctl({"limit_per_minute": 1})
        self.assertEqual(self.s.get(path, self.tok).status, 200)
        before = self.s.tasks_ctl()["throttled"]
        r = self.s.get(path, self.tok)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["error_code"], "HSSGW.0206")
        self.assertEqual(r.header("Retry-After"), "12")
        self.assertEqual(self.s.tasks_ctl()["throttled"] - before, 2)


class RetryAfter(unittest.TestCase):
    """HSS's own Retry-After on a 429 replaces the fixed backoff, within
    the caller's deadline, and is what the caller is told past it."""

    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 600, "status_cache_ttl_s": 0,
            "retry_deadline_ms": 5000}).start()
        cls.tok = cls.s.mint(sub="dev-retry-after")

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def tearDown(self):
        self.s.emulator_control("control", {"mode": "ok"})

    def test_short_retry_after_is_honoured(self):
        """Gap pinned: upstream.c dropped Retry-After, so hssgw always
        waited its own 2 s backoff."""
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 10})
        n = len(self.s.emulator_lines())
        self.s.emulator_control("control", {
            "mode": "status", "status": 429, "count": 1, "retry_after": 1})
        t0 = time.monotonic()
        r = self.s.export(BODY, token=self.tok)
        took = time.monotonic() - t0
        self.assertEqual(r.status, 200, r)
        self.assertEqual([e["status"] for e in
                          self.s.emulator_lines()[n:]], [429, 200])
        # HSS said 1 s: more than 0.9 s, clearly less than the 2 s backoff.
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 1.8)

    def test_long_retry_after_past_deadline(self):
        n = len(self.s.emulator_lines())
        self.s.emulator_control("control", {
            "mode": "status", "status": 429, "count": 100,
            "retry_after": 30})
        t0 = time.monotonic()
        r = self.s.export(BODY, token=self.tok)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["error_code"], "HSSGW.0206")
        # 30 s would end past the 5 s deadline: no retry, HSS's value.
        self.assertEqual(r.header("Retry-After"), "30")
        self.assertEqual(len(self.s.emulator_lines()) - n, 1)
        self.assertLess(time.monotonic() - t0, 1.5)


ACT_FOR_POLICY = "50-act-for-subject.json"


class ActFor(unittest.TestCase):
    """hss:ActForSubject (policies/examples/50-act-for-subject.json): the
    security team may use anyone's task, a team lead its team's; everyone
    else gets the same 404 as for a forged handle."""

    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 600, "status_cache_ttl_s": 0},
            policies=(ACT_FOR_POLICY,)).start()
        g = stk.ALLOWED_GROUP
        cls.alice = cls.s.mint(sub="web-alice", claims={"team": "web"})
        cls.bob = cls.s.mint(sub="web-bob", claims={"team": "web"})
        cls.sec = cls.s.mint(sub="sec-eve", groups=(g, "secops"))
        cls.lead = cls.s.mint(sub="lead-carol", groups=(g, "team-leads"),
                              claims={"team": "web"})
        cls.other_lead = cls.s.mint(sub="lead-olga",
                                    groups=(g, "team-leads"),
                                    claims={"team": "ops"})

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def rec(self, r):
        return [a for a in self.s.audit_lines()
                if a["request_id"] == r.header("X-Request-Id")][-1]

    def test_act_for_subject(self):
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 1000})
        r = self.s.export(BODY, token=self.alice)
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        base = stk.EXPORT_PATH + "/" + doc["handle"]
        # Positive control: the creator.
        own = self.s.get(base, self.alice)
        self.assertEqual(own.status, 200, own)
        # The security team and web's lead may act for web-alice.
        for tok, sid in ((self.sec, "SecurityTeamActsForAnyone"),
                         (self.lead, "TeamLeadActsForOwnTeam")):
            st = self.s.get(base, tok)
            self.assertEqual(st.status, 200, st)
            self.assertEqual(st.json()["task_id"], doc["task_id"])
            f = self.s.get(base + "/file", tok)
            self.assertEqual(f.status, 200, f)
            self.assertEqual(len(f.body), 1000)
            rec = self.rec(f)
            self.assertEqual(rec["action"], "hss:DownloadExportFile")
            self.assertIn(sid, [x["sid"] for x in rec["statements"]])
            self.assertNotEqual(rec["subject"], "web-alice")
            if "task_subject" in self.schema():
                self.assertEqual(rec["task_subject"], "web-alice")
        # Gap pinned: another team's lead and a team mate are not allowed;
        # they get exactly the answer a forged handle gets.
        forged = self.s.get(base[:-2] + ("AA" if base[-2:] != "AA"
                                         else "BB"), self.sec)
        self.assertEqual(forged.status, 404)
        want = (forged.json()["error_code"], forged.json()["error_msg"])
        for tok in (self.other_lead, self.bob):
            for path in (base, base + "/file"):
                d = self.s.get(path, tok)
                self.assertEqual(d.status, 404, (path, d))
                self.assertEqual(
                    (d.json()["error_code"], d.json()["error_msg"]), want)
                rec = self.rec(d)
                self.assertEqual(rec["action"], "hss:ActForSubject")
                self.assertEqual(rec["decision"], "implicit_deny")
                self.assertIsNone(rec["upstream"])  # nothing was sent
        # A task the lead made is theirs: no act-for needed.
        r2 = self.s.export(BODY, token=self.other_lead)
        own2 = self.s.get(stk.EXPORT_PATH + "/" + r2.json()["handle"],
                          self.other_lead)
        self.assertEqual(own2.status, 200, own2)
        self.assertEqual(self.rec(own2)["action"], "hss:GetExportTask")

    @staticmethod
    def schema():
        with open(os.path.join(ARGS.src, "docs", "audit.schema.json")) as f:
            return f.read()


class Coalesce(unittest.TestCase):
    """Identical exports within tasks.coalesce_window_ms share the first
    one's task; status answers come from the cache within its TTL."""

    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 600, "coalesce_window_ms": 60000,
            "status_cache_ttl_s": 30}).start()
        cls.alice = cls.s.mint(sub="dev-alice")
        cls.bob = cls.s.mint(sub="dev-bob")

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def rec(self, r):
        return [a for a in self.s.audit_lines()
                if a["request_id"] == r.header("X-Request-Id")][-1]

    def test_identical_exports_coalesce(self):
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 10})
        body = dict(BODY, severity_level="High")
        calls = self.s.tasks_ctl()["export_calls"]
        a = self.s.export(body, token=self.alice)
        self.assertEqual(a.status, 200, a)
        self.assertEqual(a.header("X-Hssgw-Coalesced"), "false")
        self.assertNotIn("coalesced", self.rec(a))
        # Bob's identical export: Alice's task, Bob's own handle, no call.
        b = self.s.export(body, token=self.bob)
        self.assertEqual(b.status, 200, b)
        self.assertEqual(b.header("X-Hssgw-Coalesced"), "true")
        self.assertEqual(b.json()["task_id"], a.json()["task_id"])
        self.assertEqual(b.json()["record_total_num"],
                         a.json()["record_total_num"])
        self.assertNotEqual(b.json()["handle"], a.json()["handle"])
        self.assertEqual(self.s.tasks_ctl()["export_calls"], calls + 1)
        rb = self.rec(b)
        self.assertIs(rb["coalesced"], True)
        self.assertEqual(rb["upstream"]["task_id"], a.json()["task_id"])
        self.assertIsNone(rb["upstream"]["status"])
        # Each handle is bound to its own caller.
        bh = stk.EXPORT_PATH + "/" + b.json()["handle"]
        ah = stk.EXPORT_PATH + "/" + a.json()["handle"]
        self.assertEqual(self.s.get(bh, self.bob).status, 200)
        self.assertEqual(self.s.get(ah, self.bob).status, 404)
        self.assertEqual(self.s.get(bh, self.alice).status, 404)
        # A different filter is a different export: a new task.
        c = self.s.export(dict(body, severity_level="Low"), token=self.alice)
        self.assertEqual(c.status, 200, c)
        self.assertEqual(c.header("X-Hssgw-Coalesced"), "false")
        self.assertNotEqual(c.json()["task_id"], a.json()["task_id"])
        self.assertEqual(self.s.tasks_ctl()["export_calls"], calls + 2)

    def test_single_flight(self):
        """Gap pinned: identical exports arriving together all reached HSS
        (only answers already given were shared)."""
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 10})
        body = dict(BODY, severity_level="Medium")
        calls = self.s.tasks_ctl()["export_calls"]
        # HSS takes 0.7 s (below the stack's 1 s upstream timeout) to
        # answer the one export it gets.
        self.s.emulator_control("control", {"mode": "delay",
                                            "delay_ms": 700, "count": 1})
        toks = [self.s.mint(sub="dev-sf%d" % i) for i in range(6)]
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            rs = list(ex.map(lambda t: self.s.export(body, token=t), toks))
        self.s.emulator_control("control", {"mode": "ok"})
        for r in rs:
            self.assertEqual(r.status, 200, r)
        self.assertEqual(len({r.json()["task_id"] for r in rs}), 1)
        self.assertEqual(self.s.tasks_ctl()["export_calls"], calls + 1)
        flags = sorted(r.header("X-Hssgw-Coalesced") for r in rs)
        self.assertEqual(flags, ["false"] + ["true"] * 5)
        # Each its own handle (the emulator keeps no task for an export
        # answered under "delay", so status is not asked here).
        self.assertEqual(len({r.json()["handle"] for r in rs}), 6)
        recs = [a for a in self.s.audit_lines() if a["request_id"] in
                {r.header("X-Request-Id") for r in rs}]
        self.assertEqual(sum(1 for a in recs if a.get("coalesced")), 5)

    def test_status_cache_visible(self):
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 10})
        tok = self.s.mint(sub="dev-dave")
        doc = self.s.export(dict(BODY, severity_level="High"),
                            token=tok).json()
        path = stk.EXPORT_PATH + "/" + doc["handle"]
        calls = self.s.tasks_ctl()["status_calls"]
        r1 = self.s.get(path, tok)
        r2 = self.s.get(path, tok)
        self.assertEqual(r1.status, 200, r1)
        self.assertEqual(r2.status, 200, r2)
        self.assertEqual(r2.json(), r1.json())
        self.assertEqual(r2.header("X-Hssgw-Cache"), "hit")
        self.assertIs(self.rec(r2)["cached"], True)
        self.assertLessEqual(self.s.tasks_ctl()["status_calls"] - calls, 1)


class CoalesceBudget(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 2, "coalesce_window_ms": 60000}).start()
        cls.s.tasks_ctl({"limit_per_minute": 5})

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_coalesced_exports_spend_no_budget(self):
        """Gap pinned: an identical export must not cost one of the
        budget's calls (2 a minute here)."""
        tok = self.s.mint(sub="dev-carol")
        body = dict(BODY, severity_level="Medium")
        self.assertEqual(self.s.export(body, token=tok).status, 200)
        for _ in range(5):
            r = self.s.export(body, token=tok)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("X-Hssgw-Coalesced"), "true")
        r = self.s.export(dict(BODY, severity_level="Low"), token=tok)
        self.assertEqual(r.status, 200, r)
        # Positive control: the budget does apply to this caller.
        r = self.s.export(dict(BODY, severity_level="High"), token=tok)
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["error_code"], "HSSGW.0205")
        # A coalesced answer needs no budget even when it is spent.
        r = self.s.export(body, token=tok)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.s.tasks_ctl()["export_calls"], 2)


class Client(unittest.TestCase):
    """hssgw export: export, poll at the pace, download to FILE via
    FILE.part; the server's error on failure."""

    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 600, "status_cache_ttl_s": 0}).start()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def run_client(self, token, out, *extra):
        argv = [self.s.hssgw, "export",
                "--url", "https://127.0.0.1:%d/" % self.s.gw_port,
                "--project", stk.PROJECT_ALIAS,
                "--field", "image_type=private_image",
                "--field", "operate_all=true",
                "--out", out, "--cacert", self.s.ca,
                "--poll-seconds", "1"] + list(extra)
        env = dict(os.environ, HSSGW_TOKEN=token)
        return subprocess.run(argv, env=env, capture_output=True,
                              text=True, timeout=120)

    def test_client_downloads_the_file(self):
        self.s.tasks_ctl({"delay_ms": 1500, "file_bytes": 300000})
        out = self.s.path("tmp", "baseline.zip")
        p = self.run_client(self.s.mint(sub="dev-client"), out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("running", p.stderr)
        self.assertIn("success", p.stderr)
        with open(out, "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 300000)
        st = [a for a in self.s.audit_lines()
              if a.get("action") == "hss:DownloadExportFile"][-1]
        files = [e for e in self.s.emulator_lines()
                 if "/download/" in e["path"]]
        file_id = files[-1]["path"].rsplit("/", 1)[1]
        self.assertEqual(st["status"], 200)
        self.assertTrue(check_bytes(data, file_id))
        self.assertFalse(os.path.exists(out + ".part"))

    def test_client_reports_server_error(self):
        out = self.s.path("tmp", "denied.zip")
        tok = self.s.mint(sub="dev-client", groups=("nobody",))
        p = self.run_client(tok, out)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("HTTP 403 HSSGW.0103", p.stderr)
        self.assertNotIn(tok, p.stderr + p.stdout)
        self.assertFalse(os.path.exists(out))
        self.assertFalse(os.path.exists(out + ".part"))

    def test_client_failed_task(self):
        self.s.tasks_ctl({"delay_ms": 0, "fail": True})
        out = self.s.path("tmp", "failed.zip")
        try:
            p = self.run_client(self.s.mint(sub="dev-client"), out)
        finally:
            self.s.tasks_ctl({"fail": False})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("failure", p.stderr)
        self.assertFalse(os.path.exists(out))

    def test_client_refuses_symlinked_part(self):
        """Gap pinned: hssgw export opened FILE.part with O_TRUNC and
        followed a symlink planted there, truncating its target.  Now the
        victim is untouched, the link stays, the client fails clearly
        before exporting anything.  Positive control: a stale FILE.part
        that is the user's own regular file is replaced and the download
        succeeds."""
        self.s.tasks_ctl({"delay_ms": 0, "file_bytes": 1000})
        victim = self.s.path("tmp", "victim.txt")
        with open(victim, "w") as f:
            f.write("precious")
        out = self.s.path("tmp", "linked.zip")
        os.symlink(victim, out + ".part")
        exports = self.s.tasks_ctl()["export_calls"]
        p = self.run_client(self.s.mint(sub="dev-client"), out)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("linked.zip.part: exists and is not a regular file",
                      p.stderr)
        with open(victim) as f:
            self.assertEqual(f.read(), "precious")
        self.assertTrue(os.path.islink(out + ".part"))
        self.assertFalse(os.path.exists(out))
        self.assertEqual(self.s.tasks_ctl()["export_calls"], exports)
        # Positive control: a stale regular FILE.part of one's own.
        out = self.s.path("tmp", "stale.zip")
        with open(out + ".part", "w") as f:
            f.write("stale")
        p = self.run_client(self.s.mint(sub="dev-client"), out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(os.path.getsize(out), 1000)
        self.assertFalse(os.path.exists(out + ".part"))

    def fake_gateway(self, file_answer):
        """An HTTPS server on loopback with the stack's certificate that
        answers the export and the status like the gateway, and the file
        with the raw bytes file_answer (status line, headers, body).
        Returns its URL; stopped at cleanup."""
        import http.server
        import ssl
        import threading

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, doc):
                b = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.answer({"handle": "H1", "task_id": "t1"})

            def do_GET(self):
                if not self.path.endswith("/file"):
                    self.answer({"task_status": "success"})
                    return
                self.wfile.write(file_answer)
                self.wfile.flush()
                self.close_connection = True

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.s.path("tls", "server.pem"),
                            self.s.path("tls", "server.key"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        return "https://127.0.0.1:%d/" % srv.server_address[1]

    def run_fake(self, file_answer, name):
        url = self.fake_gateway(file_answer)
        out = self.s.path("tmp", name)
        argv = [self.s.hssgw, "export", "--url", url,
                "--project", stk.PROJECT_ALIAS, "--out", out,
                "--cacert", self.s.ca, "--poll-seconds", "1"]
        p = subprocess.run(argv, env=dict(os.environ, HSSGW_TOKEN="t.t.t"),
                           capture_output=True, text=True, timeout=60)
        return p, out

    def test_client_refuses_unframed_and_empty_downloads(self):
        """Issue 21 item 3, the gap pinned: an answer without a length
        (close-delimited) was taken whole however short, and an empty 200
        became a 0-byte FILE, both with exit 0.  Positive control: the
        same server with Content-Length gives FILE and exit 0."""
        data = bytes(range(256)) * 40
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n"
        cases = {
            "close.zip": head + b"Connection: close\r\n\r\n" + data,
            "empty.zip": head + b"Content-Length: 0\r\n\r\n",
            "empty-close.zip": head + b"Connection: close\r\n\r\n",
            "chunked.zip": head + b"Transfer-Encoding: chunked\r\n\r\n" +
            b"%x\r\n" % len(data) + data + b"\r\n0\r\n\r\n",
            "short.zip": head + b"Content-Length: %d\r\n\r\n" %
            (len(data) + 10) + data,
        }
        for name, answer in cases.items():
            with self.subTest(case=name):
                p, out = self.run_fake(answer, name)
                self.assertNotEqual(p.returncode, 0, p.stderr)
                self.assertFalse(os.path.exists(out), p.stderr)
                self.assertFalse(os.path.exists(out + ".part"))
        p, out = self.run_fake(head + b"Content-Length: %d\r\n\r\n" %
                               len(data) + data, "framed.zip")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertIn("%d bytes in" % len(data), p.stderr)

    def test_client_usage(self):
        p = subprocess.run([self.s.hssgw, "export", "--url", "http://x"],
                           capture_output=True, text=True, timeout=10,
                           env={k: v for k, v in os.environ.items()
                                if k != "HSSGW_TOKEN"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: hssgw export", p.stderr)


def main():
    # Under ASan, freed memory sits in a 256 MiB quarantine and would show
    # as peak RSS; a small one measures what hssgw itself keeps.
    opts = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + \
        "quarantine_size_mb=1"
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
