#!/usr/bin/env python3
"""Policy changes tested before they bite (issue 24): `hssgw policy test`
(a passing suite, each kind of failure, JUnit, the shipped case files of
policies/ at 100% coverage, a demo statement whose effect changes) and
`hssgw policy replay` on a trail written by real traffic through nginx +
hssgw + hss-emulator (several teams, allows and denies, status polls)
against candidates: identical, without a team's Allow, with a Deny on a
condition key, with a time window, reading a claim the records lack.

Run: test_policy_test.py --bin BUILD/bin --src SRC.  Python 3 stdlib only.
"""

import copy
import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402
import stack as stk  # noqa: E402
from fixtures import ARGS, TaskStack, hssgw  # noqa: E402

IDP = "https://idp.local.test"
EXPORTER = {"iss": IDP, "sub": "dev-alice", "groups": ["hss-exporters"]}
EXPORT = {"project": "demo", "image_type": "private_image",
          "operate_all": True}


def demo_config(d, policies_dir):
    """A config shaped like deploy/local.sh's (gw_config) in d."""
    conf = {
        "listen": "unix:%s/hssgw.sock" % d,
        "jwt": {"issuers": [{"issuer": IDP, "audiences": ["hssgw"],
                             "keys": [{"kid": "dev-hs256", "alg": "HS256",
                                       "file": "keys/idp-hs256.secret"}]}]},
        "policies_dir": policies_dir,
        "credentials": [{"name": "demo", "type": "token_file",
                         "file": "secrets/demo.token"}],
        "projects": [{"alias": "demo", "project_id": stk.PROJECT_ID,
                      "region": stk.REGION,
                      "endpoint": "https://127.0.0.1:9",
                      "enterprise_project_id": "0", "credentials": "demo"}],
        "audit": {"file": "audit/audit.jsonl"},
        "default_export_size": 1000,
    }
    path = os.path.join(d, "hssgw.json")
    with open(path, "w") as f:
        json.dump(conf, f)
    return path


class PolicyTest(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp(prefix="hssgw-pt-")
        self.src = os.path.abspath(ARGS.src)
        self.conf = demo_config(self.d, os.path.join(self.src, "policies"))

    def tearDown(self):
        shutil.rmtree(self.d, ignore_errors=True)

    def cases(self, cases, name="cases.json"):
        path = os.path.join(self.d, name)
        with open(path, "w") as f:
            json.dump({"cases": cases}, f)
        return path

    def test_shipped_demo_cases_pass_at_full_coverage(self):
        junit = os.path.join(self.d, "junit.xml")
        rc, out, err = hssgw(
            "policy", "test", "--config", self.conf, "--min-coverage", "100",
            "--junit", junit,
            os.path.join(self.src, "policies", "tests", "demo.json"))
        self.assertEqual(rc, 0, out + err)
        self.assertIn("coverage: 2/2 statements (100.0%)", out)
        self.assertNotIn("FAIL", out)
        root = ET.parse(junit).getroot()
        self.assertEqual(root.tag, "testsuites")
        self.assertEqual(root.get("failures"), "0")
        names = [c.get("name") for c in root.iter("testcase")]
        self.assertIn("an exporter may export the demo project", names)

    def test_shipped_example_cases_pass_at_full_coverage(self):
        d = os.path.join(self.src, "policies", "tests", "examples")
        files = sorted(os.path.join(d, f) for f in os.listdir(d)
                       if f[0].isdigit())
        examples = sorted(os.listdir(
            os.path.join(self.src, "policies", "examples")))
        # One case file per example, named alike.
        self.assertEqual([os.path.basename(f) for f in files], examples)
        rc, out, err = hssgw("policy", "test", "--config",
                             os.path.join(d, "hssgw.json"),
                             "--min-coverage", "100", *files)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("(100.0%)", out)
        self.assertNotIn("not reached", out)

    def test_a_demo_statement_changing_its_effect_fails(self):
        """A modified copy of policies/demo.json: DenySuspended becomes an
        Allow.  The shipped cases catch it (exit 1); the copy unmodified
        passes (the positive control)."""
        pol = os.path.join(self.d, "pol")
        os.mkdir(pol)
        with open(os.path.join(self.src, "policies", "demo.json")) as f:
            text = f.read()
        cases = os.path.join(self.src, "policies", "tests", "demo.json")
        with open(os.path.join(pol, "demo.json"), "w") as f:
            f.write(text)
        conf = demo_config(self.d, pol)
        rc, out, err = hssgw("policy", "test", "--config", conf,
                             "--min-coverage", "100", cases)
        self.assertEqual(rc, 0, out + err)
        doc = json.loads(text)
        doc["Statement"][0]["Effect"] = "Allow"
        with open(os.path.join(pol, "demo.json"), "w") as f:
            json.dump(doc, f)
        rc, out, err = hssgw("policy", "test", "--config", conf,
                             "--min-coverage", "100", cases)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("expected explicit_deny (demo.json#DenySuspended), "
                      "got allow (demo.json#DenySuspended)", out)

    def test_wrong_decision(self):
        c = self.cases([{"name": "outsider", "claims": {"iss": IDP,
                                                        "sub": "eve"},
                         "request": EXPORT, "decision": "allow"}])
        rc, out, err = hssgw("policy", "test", "--config", self.conf, c)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('FAIL %s: cases[0] "outsider": expected allow, got '
                      'implicit_deny (no statement)' % c, out)

    def test_wrong_statement(self):
        c = self.cases([{"name": "exporter", "claims": EXPORTER,
                         "request": EXPORT, "decision": "allow",
                         "statement": "demo.json#DenySuspended"}])
        rc, out, err = hssgw("policy", "test", "--config", self.conf, c)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("expected allow (demo.json#DenySuspended), got allow "
                      "(demo.json#AllowExportersDemo)", out)

    def test_coverage_below_threshold(self):
        c = self.cases([{"name": "exporter", "claims": EXPORTER,
                         "request": EXPORT, "decision": "allow",
                         "statement": "demo.json#AllowExportersDemo"}])
        # Passing cases, no threshold: exit 0 (the control).
        rc, out, err = hssgw("policy", "test", "--config", self.conf, c)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("coverage: 1/2 statements (50.0%)", out)
        self.assertIn("not reached by any case:\n  demo.json#DenySuspended",
                      out)
        junit = os.path.join(self.d, "j.xml")
        rc, out, err = hssgw("policy", "test", "--config", self.conf,
                             "--min-coverage", "60", "--junit", junit, c)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("FAIL coverage 50.0% is below --min-coverage 60", out)
        root = ET.parse(junit).getroot()
        self.assertEqual(root.get("failures"), "1")
        fails = [f.get("type") for f in root.iter("failure")]
        self.assertEqual(fails, ["coverage"])
        rc, out, err = hssgw("policy", "test", "--config", self.conf,
                             "--min-coverage", "50", c)
        self.assertEqual(rc, 0, out + err)

    def test_malformed_cases_name_file_and_path(self):
        good = {"name": "ok", "claims": EXPORTER, "request": EXPORT,
                "decision": "allow"}
        bad = [
            (dict(good, decision="permit"), "cases[1].decision: must be"),
            (dict(good, statment="x"), "cases[1].statment: unknown member"),
            ({k: v for k, v in good.items() if k != "claims"},
             'cases[1]: exactly one of "claims" or "token"'),
            (dict(good, request={"project": "nope"}),
             "cases[1].request.project"),
            (dict(good, time="yesterday"), "cases[1].time: not an RFC 3339"),
            (dict(good, task={"action": "hss:Nope", "project": "demo"},
                  request=None), None),
        ]
        for case, want in bad:
            if case.get("request", 1) is None:
                del case["request"]
                want = "cases[1].task.action: must be"
            with self.subTest(want=want):
                c = self.cases([good, case])
                rc, out, err = hssgw("policy", "test", "--config",
                                     self.conf, c)
                self.assertEqual(rc, 1, out + err)
                self.assertIn("FAIL %s: %s" % (c, want), out)
                self.assertIn("2 cases, 1 passed, 1 failed", out)
        path = os.path.join(self.d, "broken.json")
        with open(path, "w") as f:
            f.write("{\"cases\": [")
        rc, out, err = hssgw("policy", "test", "--config", self.conf, path)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("FAIL %s: (document)" % path, out)

    def test_usage(self):
        rc, out, err = hssgw("policy", "test", "--config", self.conf)
        self.assertEqual(rc, 2)
        rc, out, err = hssgw("policy", "test", "--config", self.conf,
                             "--min-coverage", "101", "x.json")
        self.assertEqual(rc, 2)


# The live set of the replay stack: two teams allowed, suspended denied.
LIVE = {"Version": "2012-10-17", "Statement": [
    {"Sid": "DenySuspended", "Effect": "Deny",
     "Principal": {"jwt:groups": "suspended"}, "Action": "*",
     "Resource": "*"},
    {"Sid": "AllowAlpha", "Effect": "Allow",
     "Principal": {"jwt:team": "alpha"},
     "Action": ["hss:ExportImageBaseline", "hss:GetExportTask"],
     "Resource": "hss:*:demo"},
    {"Sid": "AllowBeta", "Effect": "Allow",
     "Principal": {"jwt:team": "beta"},
     "Action": ["hss:ExportImageBaseline", "hss:GetExportTask"],
     "Resource": "hss:*:demo"},
]}


class Replay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = TaskStack(ARGS.bin, ARGS.src, tasks={
            "budget_per_minute": 600, "fair_share_claim": "team"}).start()
        s = cls.s
        for f in os.listdir(s.path("policies")):
            os.remove(s.path("policies", f))
        stk.write_file(s.path("policies", "live.json"), json.dumps(LIVE))
        s.sighup_and_wait()
        tok = {}
        for sub, team, groups in (("a1", "alpha", ["hss-exporters"]),
                                  ("a2", "alpha", ["hss-exporters"]),
                                  ("b1", "beta", ["hss-exporters"]),
                                  ("g1", "gamma", ["hss-exporters"]),
                                  ("s1", "alpha", ["suspended"])):
            tok[sub] = s.mint(sub=sub, groups=groups,
                              claims={"team": team})
        size = [100]

        def export(sub, image_type="private_image", want=200):
            size[0] += 1  # distinct bodies: no coalescing
            r = s.export({"project": "demo", "image_type": image_type,
                          "operate_all": True, "export_size": size[0]},
                         token=tok[sub])
            assert r.status == want, r
            return r.json().get("handle")

        handles = [export("a1"), export("b1", "shared_image")]
        export("g1", want=403)
        export("s1", want=403)
        for h, sub in ((handles[0], "a1"), (handles[1], "b1")):
            assert s.get(stk.EXPORT_PATH + "/" + h, tok[sub]).status == 200
        time.sleep(1.2)
        cls.mid = time.time()
        time.sleep(1.2)
        export("a2")
        export("b1")
        export("a2", "shared_image")
        export("g1", want=403)
        assert s.get(stk.EXPORT_PATH + "/" + handles[0],
                     tok["a1"]).status == 200
        cls.trail = s.path("audit", "audit.jsonl")
        cls.recs = s.audit_lines()
        cls.decisions = [r for r in cls.recs
                         if r.get("decision") is not None
                         and r["phase"] != "outcome"]

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def candidate(self, name, statements):
        d = self.s.path("cand-" + name)
        os.makedirs(d, exist_ok=True)
        stk.write_file(os.path.join(d, "live.json"), json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
        conf = copy.deepcopy(self.s.config)
        conf["policies_dir"] = d
        path = self.s.path("cand-%s.json" % name)
        stk.write_file(path, json.dumps(conf))
        return path

    def replay(self, conf, *extra):
        rc, out, err = hssgw("policy", "replay", "--config", conf,
                             "--format", "json", *extra, self.trail)
        lines = [json.loads(l) for l in out.splitlines()]
        self.assertIn("summary", lines[-1], out + err)
        return rc, lines[:-1], lines[-1]["summary"], err

    def test_trail_has_what_replay_needs(self):
        kinds = {(r["phase"], r["action"], r["decision"])
                 for r in self.decisions}
        self.assertIn(("intent", "hss:ExportImageBaseline", "allow"), kinds)
        self.assertIn(("final", "hss:ExportImageBaseline", "implicit_deny"),
                      kinds)
        self.assertIn(("final", "hss:ExportImageBaseline", "explicit_deny"),
                      kinds)
        self.assertTrue(any(a == "hss:GetExportTask" for _, a, _ in kinds))
        intent = next(r for r in self.decisions if r["phase"] == "intent")
        pin = intent["policy_input"]
        self.assertEqual(pin["claims"]["team"], [intent["team"]])
        self.assertIn("groups", pin["claims"])
        self.assertIn(pin["context"]["hss:image_type"],
                      (["private_image"], ["shared_image"]))

    def test_identical_candidate_flips_nothing(self):
        rc, flips, summ, err = self.replay(
            self.candidate("same", LIVE["Statement"]))
        self.assertEqual(rc, 0, err)
        self.assertEqual(flips, [])
        self.assertEqual(summ["decisions"], len(self.decisions))
        self.assertEqual(summ["unknown"], 0)

    def test_removing_a_team_allow_flips_exactly_its_allows(self):
        st = [s for s in LIVE["Statement"] if s["Sid"] != "AllowBeta"]
        rc, flips, summ, err = self.replay(self.candidate("nobeta", st))
        self.assertEqual(rc, 1, err)
        want = sorted((r["request_id"], r["action"])
                      for r in self.decisions
                      if r.get("team") == "beta" and r["decision"] == "allow")
        self.assertGreaterEqual(len(want), 3)
        self.assertEqual(sorted((f["request_id"], f["action"])
                                for f in flips), want)
        for f in flips:
            self.assertEqual((f["team"], f["before"], f["after"]),
                             ("beta", "allow", "implicit_deny"))
            for k in ("time", "subject", "resource", "statement"):
                self.assertIn(k, f)
        self.assertEqual(summ["teams"], [{"team": "beta",
                                          "new_denies": len(want),
                                          "new_allows": 0}])
        self.assertEqual(summ["statements"],
                         [{"statement": "live.json#AllowBeta",
                           "new_denies": len(want), "new_allows": 0}])
        # The table says the same.
        rc, out, err = hssgw("policy", "replay", "--config",
                             self.candidate("nobeta", st), "--format",
                             "table", self.trail)
        self.assertEqual(rc, 1, err)
        self.assertIn("new denies %d" % len(want), out)

    def test_a_deny_on_a_condition_key_flips_exactly_the_matching(self):
        deny = {"Sid": "NoShared", "Effect": "Deny", "Principal": "*",
                "Action": "hss:ExportImageBaseline", "Resource": "*",
                "Condition": {"StringEquals": {
                    "hss:image_type": "shared_image"}}}
        rc, flips, summ, err = self.replay(
            self.candidate("noshared", LIVE["Statement"] + [deny]))
        self.assertEqual(rc, 1, err)
        want = sorted(r["request_id"] for r in self.decisions
                      if r["decision"] == "allow"
                      and r["action"] == "hss:ExportImageBaseline"
                      and r["policy_input"]["context"]["hss:image_type"]
                      == ["shared_image"])
        self.assertEqual(len(want), 2)
        self.assertEqual(sorted(f["request_id"] for f in flips), want)
        self.assertTrue(all(f["after"] == "explicit_deny" and
                            f["statement"] == "live.json#NoShared"
                            for f in flips))
        self.assertEqual(summ["new_denies"], 2)

    def test_a_time_window_is_judged_at_the_record_time(self):
        mid = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.mid)) + \
            ".%03dZ" % int((self.mid % 1) * 1000)
        deny = {"Sid": "Freeze", "Effect": "Deny", "Principal": "*",
                "Action": "*", "Resource": "*",
                "Condition": {"DateGreaterThan": {"gw:current_time": mid}}}
        rc, flips, summ, err = self.replay(
            self.candidate("freeze", LIVE["Statement"] + [deny]))
        self.assertEqual(rc, 1, err)
        want = sorted(r["request_id"] for r in self.decisions
                      if r["decision"] == "allow" and r["time"] > mid)
        self.assertGreaterEqual(len(want), 3)
        self.assertEqual(sorted(f["request_id"] for f in flips), want)
        # --since past the window's start: the same flips, fewer decisions.
        rc2, flips2, summ2, err = self.replay(
            self.candidate("freeze", LIVE["Statement"] + [deny]),
            "--since", mid)
        self.assertEqual(sorted(f["request_id"] for f in flips2), want)
        self.assertLess(summ2["decisions"], summ["decisions"])

    def test_a_claim_the_records_lack_is_unknown(self):
        allow = {"Sid": "AllowDept", "Effect": "Allow",
                 "Principal": {"jwt:department": "sec"},
                 "Action": "*", "Resource": "*"}
        rc, lines, summ, err = self.replay(
            self.candidate("dept", LIVE["Statement"] + [allow]))
        self.assertEqual(rc, 0, err)  # unknown is not a flip
        self.assertEqual(summ["unknown"], len(self.decisions))
        self.assertEqual(summ["flips"], 0)
        self.assertEqual(len(lines), len(self.decisions))
        for l in lines:
            self.assertTrue(l["unknown"])
            self.assertIn("jwt:department", l["reason"])

    def test_errors_exit_2(self):
        conf = self.candidate("same", LIVE["Statement"])
        bad = self.s.path("bad.jsonl")
        stk.write_file(bad, "not json\n")
        rc, out, err = hssgw("policy", "replay", "--config", conf, bad)
        self.assertEqual(rc, 2)
        self.assertIn("bad.jsonl:1: not a record", err)
        rc, out, err = hssgw("policy", "replay", "--config", conf,
                             self.s.path("missing.jsonl"))
        self.assertEqual(rc, 2)
        rc, out, err = hssgw("policy", "replay", "--config", conf,
                             "--format", "xml", self.trail)
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    sys.exit(runner.main(sys.modules[__name__]))
