"""Integration tests of `hssgw audit report` (issue 15): a trail written by
the real audit writer (report-trail, cycles of 16 kinds of request, one
with <script> in its subject and path) plus a hand-chained summary record,
rendered by hssgw and opened in headless chromium.  The rendered DOM holds
the counts known by construction; the `hssgw audit query | jq` under each
table reproduces its numbers; the page logs no console message and makes
no network request (chromium's net log, with a page that does as the
positive control); a tampered trail shows the break at the top.  Run as

    test_report.py --bin BUILD/bin --src REPO

Screenshots go to $HSSGW_REPORT_SHOTS (default: a temporary directory,
removed at the end).  Without chromium the suite fails: install Debian's `chromium`.
"""

import collections
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from html.parser import HTMLParser

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runner  # noqa: E402
from fixtures import ARGS, hssgw  # noqa: E402

CYCLES = 10  # report-trail's table has 16 kinds of request
XSS = "<script>alert(1)</script>"
CHAIN_CUT = re.compile(rb',"hash":"([0-9a-f]{64})"}$')
VOID = {"meta", "br", "img", "input", "link", "hr", "area", "base", "col",
        "embed", "source", "track", "wbr"}
CHROME_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu",
    "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-default-apps",
    "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
]


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise unittest.SkipTest("chromium is not installed")


class Dom(HTMLParser):
    """Tables by id (header, rows of cell texts), the "Reproduce" commands
    by the id of the table, chart or value just before them, texts by id,
    and every start tag seen."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.queries, self.texts = {}, {}, {}
        self.tags = collections.Counter()
        self.classes = {}
        self._table = self._row = self._cell = None
        self._last_id = None
        self._open = []  # [id, depth] of the elements open with an id
        self._in_q = False
        self._q = ""
        self._order = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] += 1
        if "id" in a:
            self._order.append(a["id"])
            self.classes[a["id"]] = a.get("class", "")
            if tag in ("table", "svg", "dd"):
                self._last_id = a["id"]
        if tag not in VOID:
            for o in self._open:
                o[1] += 1
            if "id" in a:
                self._open.append([a["id"], 1])
                self.texts[a["id"]] = ""
        if tag == "table":
            self._table = self.tables.setdefault(
                a.get("id"), {"head": [], "rows": []})
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag == "p" and "q" in a.get("class", "").split():
            self._in_q, self._q = True, ""

    def handle_endtag(self, tag):
        if tag not in VOID:
            for o in self._open:
                o[1] -= 1
            self._open = [o for o in self._open if o[1] > 0]
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._table["head"]:
                self._table["rows"].append(self._row)
            else:
                self._table["head"] = self._row
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "p" and self._in_q:
            self._in_q = False
            if self._q.startswith("Reproduce: ") and "audit query" in self._q:
                self.queries.setdefault(self._last_id, []).append(
                    self._q[len("Reproduce: "):])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._in_q:
            self._q += data
        for o in self._open:
            self.texts[o[0]] += data

    def table(self, tid):
        """{key: {column: value}} of a table; numbers as ints."""
        t = self.tables[tid]
        out = {}
        for row in t["rows"]:
            cells = {}
            for h, v in zip(t["head"][1:], row[1:]):
                cells[h] = int(v) if re.fullmatch(r"-?\d+", v) else v
            out[row[0]] = cells
        return out

    def first_id(self):
        return self._order[0] if self._order else None


def chain_hash(canonical):
    return hashlib.sha256(canonical).hexdigest()


def append_summary(path, counts, time):
    """Appends a "phase":"summary" record chained as docs/AUDIT.md says."""
    with open(path, "rb") as f:
        last = f.read().splitlines()[-1]
    prev = CHAIN_CUT.search(last).group(1).decode()
    seq = json.loads(last)["seq"] + 1
    body = json.dumps({"v": 1, "seq": seq, "prev": prev, "phase": "summary",
                       "time": time, "counts": counts},
                      separators=(",", ":"))
    line = body[:-1] + ',"hash":"%s"}' % chain_hash(body.encode())
    with open(path, "a") as f:
        f.write(line + "\n")


def uniq_c(text):
    """`uniq -c` output -> {rest: count}."""
    out = {}
    for ln in text.splitlines():
        m = re.fullmatch(r"\s*(\d+) (.*)", ln)
        if m:
            out[m.group(2)] = out.get(m.group(2), 0) + int(m.group(1))
    return out


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ARGS.bin = os.path.abspath(ARGS.bin)
        cls.chrome = chromium()
        cls.dir = tempfile.mkdtemp(prefix="hssgw-report-")
        cls.shots = os.environ.get("HSSGW_REPORT_SHOTS") or cls.dir
        os.makedirs(cls.shots, exist_ok=True)
        # (the trail, pages and chromium profiles live in cls.dir)
        cls.trail = os.path.join(cls.dir, "audit.jsonl")
        subprocess.run([os.path.join(ARGS.bin, "report-trail"), cls.trail,
                        str(16 * CYCLES)], check=True, timeout=120)
        append_summary(cls.trail, [
            {"client_addr": "198.51.100.7", "reason": "HSSGW.0102",
             "count": 5},
            {"client_addr": "192.0.2.1", "reason": "HSSGW.0101",
             "count": 3}], "2026-01-01T00:30:00.000Z")
        cls.html = os.path.join(cls.dir, "report.html")
        rc, _, err = hssgw("audit", "report", cls.trail, "--team-claim",
                           "groups", "--out", cls.html, timeout=300)
        assert rc == 0, err
        cls.dom, cls.log = cls.render(cls.html, "report")

    @classmethod
    def tearDownClass(cls):
        # Screenshots asked for in $HSSGW_REPORT_SHOTS stay; the rest goes.
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def render(cls, page, name):
        """Screenshot, DOM and what chromium logged about the page."""
        prof = tempfile.mkdtemp(prefix="prof-", dir=cls.dir)
        net = os.path.join(cls.dir, name + ".netlog.json")
        url = "file://" + page
        flags = CHROME_FLAGS + ["--user-data-dir=" + prof]
        shot = subprocess.run(
            [cls.chrome] + flags + [
                "--window-size=1000,4200",
                "--screenshot=" + os.path.join(cls.shots, name + ".png"),
                url], capture_output=True, text=True, timeout=120)
        dump = subprocess.run(
            [cls.chrome] + flags + ["--log-net-log=" + net, "--dump-dom",
                                    url],
            capture_output=True, text=True, timeout=120)
        assert dump.returncode == 0, dump.stderr
        d = Dom()
        d.feed(dump.stdout)
        return d, {"stderr": shot.stderr + dump.stderr,
                   "requests": page_requests(net)}

    def test_counts_known_by_construction(self):
        c = CYCLES
        t = self.dom.table("exports-team")
        self.assertEqual(t["team-a"]["exports"], 3 * c)
        self.assertEqual(t["team-a"]["coalesced"], c)
        self.assertEqual(t["team-a"]["projects"], "demo, prod")
        self.assertEqual(t["team-b"]["exports"], c)
        self.assertEqual(t["team-c"]["HSS fields used"],
                         "image_type, risk_level")
        s = self.dom.table("exports-subject")
        self.assertEqual(s["alice"]["exports"], 2 * c)
        self.assertEqual(s["bob"]["coalesced"], c)
        self.assertEqual(s[XSS]["exports"], c)
        self.assertEqual(s[XSS]["team"], "team-c")
        d = self.dom.table("decisions-team")
        self.assertEqual(d["team-a"]["allowed"], 6 * c)
        self.assertEqual(d["team-a"]["implicit deny"], c)
        self.assertEqual(d["team-c"]["explicit deny"], 2 * c)
        self.assertEqual(d["team-c"]["shadow would deny"], c)
        self.assertEqual(d["team-c"]["shadow would allow"], c)
        self.assertEqual(d["team-a"]["shadow would deny"], c)
        st = self.dom.table("decisions-statement")
        self.assertEqual(st["policies/teams.json#DenyProd"]["explicit deny"],
                         2 * c)
        b = self.dom.table("budget-team")
        self.assertEqual(b["team-b"]["budget rejections (HSSGW.0205)"], c)
        self.assertEqual(b["team-a"]["HSS 429"], c)
        k = self.dom.table("tasks-team")
        self.assertEqual(k["team-a"]["status polls"], 2 * c)
        self.assertEqual(k["team-a"]["from the status cache"], c)
        self.assertEqual(k["team-c"]["downloads failed"], c)
        # Anonymous failures: records plus the summary's counts.
        self.assertEqual(self.dom.table("anon-reason")["HSSGW.0102"][
            "failures"], c + 5)
        self.assertEqual(self.dom.table("anon-reason")["HSSGW.0101"][
            "failures"], c + 3)
        a = self.dom.table("anon-addr")
        self.assertEqual(a["198.51.100.7"]["failures"], 5)
        self.assertEqual(a["192.0.2.2"]["failures"], c)
        self.assertEqual(self.dom.texts["summaries"].strip(), "1")
        # 16 requests and 6 intents a cycle, and the summary.
        self.assertEqual(int(self.dom.texts["records"]), 22 * c + 1)
        self.assertEqual(self.dom.classes["integrity-status"], "ok")

    def test_every_table_reproduced_by_its_query(self):
        checked = 0
        for tid, cols in (("exports-team", None),
                          ("exports-subject", None),
                          ("decisions-team", "decision"),
                          ("decisions-statement", "decision"),
                          ("shadow", "shadow"),
                          ("budget-team", "budget"),
                          ("anon-reason", None), ("anon-addr", None)):
            with self.subTest(table=tid):
                cmds = self.dom.queries[tid]
                got = {cmd: self.run_query(cmd) for cmd in cmds}
                self.assert_reproduced(tid, cols, cmds, got)
                checked += 1
        # The record count and the busiest minutes.
        # (the caption follows the list, whose last value is "unreadable")
        out = self.run_query(self.dom.queries["unreadable"][0])
        self.assertEqual(int(out), int(self.dom.texts["records"]))
        peaks = {}
        for rest, n in uniq_c(
                self.run_query(self.dom.queries["peaks"][0])).items():
            key = rest.rsplit(" ", 1)[0]
            peaks[key] = max(peaks.get(key, 0), n)
        p = self.dom.table("peaks")
        self.assertTrue(peaks)
        for key, n in peaks.items():
            self.assertEqual(p[key]["peak minute calls"], n, key)
        self.assertEqual(checked, 8)

    @staticmethod
    def run_query(cmd):
        """Runs a caption's command line with this build's hssgw."""
        r = subprocess.run(["bash", "-o", "pipefail", "-c",
                            cmd.replace("hssgw ", os.path.join(
                                ARGS.bin, "hssgw") + " ", 1)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, cmd + r.stderr
        return r.stdout

    def assert_reproduced(self, tid, kind, cmds, got):
        dom = self.dom.table(tid)
        want = collections.Counter()
        if kind is None and tid.startswith("exports"):
            for k, n in uniq_c(got[cmds[0]]).items():
                want[(k, "exports")] += n
        elif kind is None:  # anonymous: records, then summaries
            col = 0 if tid == "anon-reason" else 1
            for k, n in uniq_c(got[cmds[0]]).items():
                want[(k, "failures")] += n
            summaries = self.dom.queries["anon-addr"][-1]
            for ln in self.run_query(summaries).splitlines():
                parts = ln.split()  # "reason addr count"
                want[(parts[col], "failures")] += int(parts[2])
        else:
            names = {"allow": "allowed", "explicit_deny": "explicit deny",
                     "implicit_deny": "implicit deny",
                     "HSSGW.0205": "budget rejections (HSSGW.0205)",
                     "HSS429": "HSS 429"}
            for rest, n in uniq_c(got[cmds[0]]).items():
                k, d = rest.rsplit(" ", 1)
                if kind == "shadow":
                    col = ("would deny (allowed today)" if d == "allow"
                           else "would allow (denied today)")
                else:
                    col = names[d]
                want[(k, col)] += n
        self.assertTrue(want, tid)
        for (k, col), n in want.items():
            self.assertEqual(dom[k][col], n, (tid, k, col))
        # And nothing in the page that the query does not give.
        cols = {col for _, col in want}
        for k, cells in dom.items():
            for col, v in cells.items():
                if col in cols and v:
                    self.assertEqual(want.get((k, col), 0), v,
                                     (tid, k, col))

    def test_escaped_and_no_script(self):
        # The <script> subject and path are text, never elements.
        self.assertEqual(self.dom.tags["script"], 0)
        self.assertIn(XSS, self.dom.table("exports-subject"))
        with open(self.html) as f:
            raw = f.read()
        self.assertNotIn("<script", raw)
        self.assertIn("&lt;script&gt;", raw)

    def test_no_console_message_and_no_network(self):
        self.assertNotIn(":CONSOLE", self.log["stderr"])
        self.assertEqual(self.log["requests"], [])
        self.assertGreater(os.path.getsize(
            os.path.join(self.shots, "report.png")), 20000)

    def test_network_check_positive_control(self):
        # A page with a remote image and a script: both are seen.
        page = os.path.join(self.dir, "leaky.html")
        with open(page, "w") as f:
            f.write('<!DOCTYPE html><img src="http://127.0.0.1:9/x.png">'
                    '<script>console.error("boom")</script>')
        _, log = self.render(page, "leaky")
        self.assertIn(":CONSOLE", log["stderr"])
        self.assertIn("http://127.0.0.1:9/x.png", log["requests"])

    def test_tampered_trail_shows_break_first(self):
        bad = os.path.join(self.dir, "tampered.jsonl")
        with open(self.trail, "rb") as f:
            lines = f.read().split(b"\n")
        # Line 6 is a deny; make it an allow (same length, hash stale).
        self.assertIn(b'"explicit_deny"', lines[5])
        lines[5] = lines[5].replace(b'"explicit_deny"', b'"allow"        ')
        with open(bad, "wb") as f:
            f.write(b"\n".join(lines))
        out = os.path.join(self.dir, "tampered.html")
        rc, _, err = hssgw("audit", "report", bad, "--no-checkpoint",
                           "--out", out, timeout=300)
        self.assertEqual(rc, 1, err)
        dom, log = self.render(out, "tampered")
        self.assertEqual(dom.classes["integrity-status"], "broken")
        text = dom.texts["integrity-status"]
        self.assertIn("BROKEN: modified at %s:6 (seq 6)" % bad, text)
        # Nothing with an id comes before it but the integrity section.
        self.assertEqual(dom.first_id(), "integrity")
        self.assertNotIn(":CONSOLE", log["stderr"])
        # Control: the untouched trail says intact.
        self.assertIn("Intact", self.dom.texts["integrity-status"])


class FastTrailTest(unittest.TestCase):
    def test_fast_mode_writes_what_the_writer_writes(self):
        # The benchmark's --fast trail must be the real writer's, byte for
        # byte, or its timing would be over another format.
        d = tempfile.mkdtemp(prefix="hssgw-report-fast-")
        try:
            paths = [os.path.join(d, n) for n in ("writer", "fast")]
            gen = os.path.join(os.path.abspath(ARGS.bin), "report-trail")
            subprocess.run([gen, paths[0], "40"], check=True, timeout=60)
            subprocess.run([gen, paths[1], "40", "10000", "--fast"],
                           check=True, timeout=60)
            for suffix in ("", ".checkpoint"):
                with open(paths[0] + suffix, "rb") as a, \
                        open(paths[1] + suffix, "rb") as b:
                    self.assertEqual(a.read(), b.read(), suffix)
        finally:
            shutil.rmtree(d)


def page_requests(netlog):
    """URLs the page asked for: chromium's own background requests carry
    the initiator "not an origin"; a file:// page's carry "null"."""
    with open(netlog) as f:
        text = f.read()
    try:
        d = json.loads(text)
    except ValueError:  # a log cut at exit lacks its closing brackets
        d = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {v: k for k, v in d["constants"]["logEventTypes"].items()}
    urls = []
    for e in d["events"]:
        p = e.get("params") or {}
        if (names.get(e["type"]) == "URL_REQUEST_START_JOB"
                and p.get("url")
                and p.get("initiator") != "not an origin"
                and not p["url"].startswith("file:")):
            urls.append(p.get("url"))
    return urls


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
