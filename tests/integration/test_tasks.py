#!/usr/bin/env python3
"""Export tasks end to end through nginx + hssgw + hss-emulator: status and
download by signed handle, ownership (404 for anyone else, same as a
missing task), the upstream budget under 20 concurrent callers, and a
download of hundreds of megabytes with hssgw's peak RSS measured.

Run: test_tasks.py --bin BUILD/bin --src SRC.  Python 3 stdlib only.
"""

import argparse
import concurrent.futures
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack as stk  # noqa: E402

ARGS = None
TASK_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Sid": "AllowTasksDemo", "Effect": "Allow",
        "Principal": {"jwt:groups": stk.ALLOWED_GROUP},
        "Action": ["hss:GetExportTask", "hss:DownloadExportFile"],
        "Resource": "hss:*:%s" % stk.PROJECT_ALIAS}],
}
BODY = {"project": stk.PROJECT_ALIAS, "image_type": "private_image",
        "operate_all": True}


class TaskStack(stk.Stack):
    """The shared stack plus a handle key, a task policy and tasks keys."""

    def __init__(self, *a, tasks=None, **kw):
        super().__init__(*a, **kw)
        self.tasks = tasks or {}

    def _configs(self):
        super()._configs()
        stk.write_file(self.path("secrets", "task.key"),
                       os.urandom(32).hex(), 0o600)
        stk.write_file(self.path("policies", "tasks.json"),
                       json.dumps(TASK_POLICY))
        t = {"handle_key_file": "secrets/task.key"}
        t.update(self.tasks)
        self.config["tasks"] = t
        stk.write_file(self.config_path, json.dumps(self.config, indent=1))

    def get(self, path, token):
        h = {"Authorization": "Bearer " + token} if token else {}
        return self.request("GET", path, None, h)

    def tasks_ctl(self, doc=None):
        if doc is None:
            r = self.request("GET", "/_emulator/tasks", port=self.emu_port)
        else:
            r = self.emulator_control("tasks", doc)
        assert r.status == 200, r
        return r.json()


def check_bytes(data, file_id, start=0):
    """Every byte as the emulator generates it (hss_emulator.c task_new);
    data begins at file offset start, a multiple of 4096."""
    seed = sum(file_id.encode()) % 256
    base = bytes((seed + k) % 256 for k in range(4096 + 251))
    for off in range(0, len(data), 4096):
        i = (start + off) // 4096
        want = i.to_bytes(8, "big") + base[i % 251 + 8:i % 251 + 4096]
        got = data[off:off + 4096]
        if got != want[:len(got)]:
            return False
    return True


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


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--src", required=True)
    ARGS, rest = p.parse_known_args()
    # Under ASan, freed memory sits in a 256 MiB quarantine and would show
    # as peak RSS; a small one measures what hssgw itself keeps.
    opts = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + \
        "quarantine_size_mb=1"
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
