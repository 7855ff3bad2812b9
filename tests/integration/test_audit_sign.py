#!/usr/bin/env python3
"""Integration tests of signed checkpoint records and of comparing the
host's trail with the collector's copy (issue 22, items 3 and 4).  An
Ed25519 key made with openssl at run time; hssgw writes "checkpoint"
records into its chain every second, at a logrotate rotation (SIGUSR1)
and at shutdown; the real shipper (hssgw audit ship) delivers the trail
to a real rsyslog + imrelp.  Then, on copies: the untouched trail passes
verify --pubkey, on the host and as collected; a changed signed
checkpoint, a wrong public key and a removed checkpoint record each
fail, the chain recomputed so only the signatures can tell; and root's
rewrite of a record with the chain recomputed and every later checkpoint
re-signed with the host's own key passes verify --pubkey on the host but
fails verify --against the collected copy, naming the seq.  Run as

    test_audit_sign.py --bin BUILD/bin --src REPO

Prints "N passed, N failed" last.  Python 3 stdlib only (and openssl).
"""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fixtures import ARGS  # noqa: E402
import relp_collector as rc  # noqa: E402
import runner  # noqa: E402
import stack as st  # noqa: E402

BODY = {"project": st.PROJECT_ALIAS, "image_type": "cicd"}
GENESIS = "0" * 64
INSTANCE = "gw-sign"
# A chained line: header, content, its hash (gateway/lib/audit.c).
LINE = re.compile(rb'^\{"v":(\d+),"seq":(\d+),"prev":"([0-9a-f]{64})",'
                  rb'(.*),"hash":"([0-9a-f]{64})"\}$')
# A checkpoint record's member (gateway/lib/audit_sign.c).
MEMBER = re.compile(rb'"checkpoint":\{"alg":"ed25519","key_id":"([0-9a-f]+)",'
                    rb'"seq":(\d+),"hash":"([0-9a-f]{64})",'
                    rb'"prev_checkpoint":"([0-9a-f]{64})",'
                    rb'"sig":"([A-Za-z0-9+/=]+)"\}')


def is_checkpoint(line):
    return b',"phase":"checkpoint",' in line[:200]


class SignStack(st.Stack):
    """The shared stack plus the audit signing key pair (0600) and a
    second public key hssgw never signed with."""

    def _keys(self):
        super()._keys()
        for name in ("audit-sign", "audit-other"):
            priv = self.path("keys", name + ".pem")
            st.run(["openssl", "genpkey", "-algorithm", "ed25519",
                    "-out", priv])
            os.chmod(priv, 0o600)
            st.run(["openssl", "pkey", "-in", priv, "-pubout", "-out",
                    self.path("keys", name + ".pub.pem")])


def sign(key, msg):
    """Ed25519 signature of msg with the PEM key, base64 (openssl)."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(msg)
        f.flush()
        p = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key,
                            "-rawin", "-in", f.name], capture_output=True,
                           check=True)
    return base64.b64encode(p.stdout)


def rechain(lines, change=None, drop=None, key=None):
    """What root on the host can do: the lines with line CHANGE passed
    through change_fn, line DROP left out, every seq, prev and hash
    recomputed; with KEY every checkpoint record after the edit made to
    cover its new predecessor and signed again with that private key
    (KEY "keep": its old signature kept)."""
    out, prev, ck_prev, seq = [], GENESIS.encode(), GENESIS.encode(), 0
    edited = False
    for i, line in enumerate(lines):
        if i == drop:
            edited = True
            continue
        if i == change:
            line = change_fn(line)
            edited = True
        m = LINE.match(line)
        assert m, line
        content = m.group(4)
        seq += 1
        if key is not None and edited and is_checkpoint(line):
            mm = MEMBER.search(content)
            msg = b"hssgw-audit-checkpoint-v1\n%d\n%s\n%s\n%s" % (
                seq - 1, prev, ck_prev, INSTANCE.encode())
            content = content.replace(mm.group(0), (
                b'"checkpoint":{"alg":"ed25519","key_id":"%s","seq":%d,'
                b'"hash":"%s","prev_checkpoint":"%s","sig":"%s"}' % (
                    mm.group(1), seq - 1, prev, ck_prev,
                mm.group(5) if key == "keep" else sign(key, msg))))
        body = b'{"v":%s,"seq":%d,"prev":"%s",%s}' % (
            m.group(1), seq, prev, content)
        h = hashlib.sha256(body).hexdigest().encode()
        out.append(body[:-1] + b',"hash":"%s"}' % h)
        prev = h
        if is_checkpoint(line):
            ck_prev = h
    return out


change_fn = None  # set by the tests that rewrite a record


def deny_to_allow(line):
    return line.replace(b'"decision":"explicit_deny"',
                        b'"decision":"allow"', 1)


class SignedTrail(unittest.TestCase):
    """One gateway signing every second, rotated once by logrotate's
    way, stopped; its trail shipped to one collector."""

    @classmethod
    def setUpClass(cls):
        cls.s = s = SignStack(ARGS.bin, ARGS.src, config_extra={
            "instance": INSTANCE,
            "audit": {"file": "audit/audit.jsonl",
                      "signing_key_file": "keys/audit-sign.pem",
                      "signed_checkpoint_interval_s": 1}})
        s.start()
        cls.col = cls.ship = None
        cls.tmp = tempfile.mkdtemp(prefix="hssgw-sign-")
        try:
            port = rc.free_port()
            cls.col = rc.Collector(ARGS.src, s.path("col"), port).start()
            cfg = rc.with_ship(s.config_path, rc.ship_section(s.state, port),
                               s.path("ship.json"))
            cls.ship = rc.Shipper(s.hssgw, cfg,
                                  s.path("logs", "ship.log")).start()
            allow, deny = s.mint(), s.mint(sub="dev-mallory",
                                           groups=(st.DENY_GROUP,))
            cls.send(allow, deny, 12)
            time.sleep(1.6)  # the interval's checkpoint
            cls.send(allow, deny, 12)
            cls.live = s.path("audit", "audit.jsonl")
            cls.rotated = cls.live + ".1"
            os.rename(cls.live, cls.rotated)
            s.procs["hssgw"].send_signal(signal.SIGUSR1)
            time.sleep(0.5)
            cls.send(allow, deny, 12)
            s.stop_backend()  # SIGTERM: the last record is signed
            cls.trail = rc.trail_lines(cls.live)
            last = int(rc.SEQ.match(cls.trail[-1]).group(1))
            if not rc.wait_for(lambda: (rc.read_json(s.path(
                    "ship.cursor")) or {}).get("seq", 0) >= last, 30):
                raise AssertionError("not shipped:\n" + cls.ship.tail())
            cls.collected = cls.col.file(INSTANCE)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.ship is not None:
            cls.ship.kill()
        if cls.col is not None:
            cls.col.kill()
        cls.s.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def send(cls, allow, deny, n):
        for i in range(n):
            r = cls.s.export(BODY, token=allow if i % 3 == 0 else deny)
            assert r.status in (200, 403), r

    def key(self, name):
        return self.s.path("keys", name)

    def verify(self, *argv):
        r = subprocess.run([self.s.hssgw, "audit", "verify"] + list(argv),
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr

    def copy(self, lines, name="trail.jsonl"):
        """lines as one trail file with a checkpoint file beside it, as
        root would leave them; the path."""
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(b"".join(l + b"\n" for l in lines))
        last = json.loads(lines[-1])
        with open(path + ".checkpoint", "w") as f:
            json.dump({"v": last["v"], "seq": last["seq"],
                       "hash": last["hash"]}, f)
        return path

    def checkpoints(self, lines=None):
        return [i for i, l in enumerate(lines or self.trail)
                if is_checkpoint(l)]

    def test_checkpoint_records_in_place(self):
        cks = self.checkpoints()
        # The interval's, the rotation's, the shutdown's at least.
        self.assertGreaterEqual(len(cks), 3, cks)
        with open(self.rotated, "rb") as f:
            rot = f.read().splitlines()
        self.assertTrue(is_checkpoint(rot[-1]), "rotated file not signed")
        self.assertTrue(is_checkpoint(self.trail[-1]), "shutdown not signed")
        self.assertTrue(any(i < len(rot) - 1 for i in cks),
                        "no interval checkpoint")
        ck_prev = GENESIS
        for i in cks:
            rec = json.loads(self.trail[i])
            prev = json.loads(self.trail[i - 1])
            c = rec["checkpoint"]
            self.assertEqual((c["seq"], c["hash"]),
                             (prev["seq"], prev["hash"]))
            self.assertEqual(c["prev_checkpoint"], ck_prev)
            self.assertEqual(rec["instance"], INSTANCE)
            self.assertEqual(len(base64.b64decode(c["sig"])), 64)
            ck_prev = rec["hash"]
        # The checkpoint file names the last signed record.
        with open(self.live + ".checkpoint") as f:
            side = json.load(f)
        last = json.loads(self.trail[-1])
        self.assertEqual((side["signed_seq"], side["signed_hash"]),
                         (last["seq"], last["hash"]))

    def test_check_config_loads_the_key(self):
        with open(self.s.config_path) as f:
            c = json.load(f)
        loose = os.path.join(self.tmp, "loose.pem")
        shutil.copy(self.key("audit-sign.pem"), loose)
        os.chmod(loose, 0o640)
        c["audit"]["signing_key_file"] = loose
        cfg = self.s.path("loose.json")
        with open(cfg, "w") as f:
            json.dump(c, f)
        argv = [self.s.hssgw, "check-config", "--offline", "--config", cfg]
        r = subprocess.run(argv, capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(loose + ": secret file is accessible", r.stderr)
        # Positive control: owner-only, it loads.
        os.chmod(loose, 0o600)
        r = subprocess.run(argv, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # A public key where the private one belongs.
        shutil.copy(self.key("audit-sign.pub.pem"), loose)
        os.chmod(loose, 0o600)
        r = subprocess.run(argv, capture_output=True, text=True)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("not an Ed25519 private key", r.stderr)

    def test_untouched_trail_passes(self):
        code, out = self.verify("--pubkey", self.key("audit-sign.pub.pem"),
                                self.rotated, self.live)
        self.assertEqual(code, 0, out)
        self.assertIn("signed: %d checkpoint records verified"
                      % len(self.checkpoints()), out)
        self.assertIn("0 records after it not yet signed", out)
        # Authenticated end to end: the collector's copy as well.
        code, out = self.verify("--pubkey", self.key("audit-sign.pub.pem"),
                                self.collected)
        self.assertEqual(code, 0, out)
        code, out = self.verify("--against", self.collected, self.rotated,
                                self.live)
        self.assertEqual(code, 0, out)
        self.assertIn("as the collector received them", out)

    def test_wrong_public_key_fails(self):
        code, out = self.verify("--pubkey", self.key("audit-other.pub.pem"),
                                self.rotated, self.live)
        self.assertEqual(code, 1, out)
        self.assertIn("signature", out)
        self.assertIn("does not verify with this public key", out)

    def test_changed_checkpoint_fails(self):
        i = self.checkpoints()[1]
        rec = json.loads(self.trail[i - 2])

        def edit(line):
            # The checkpoint now claims to cover an older record.
            m = MEMBER.search(line)
            return line.replace(m.group(0), m.group(0).replace(
                m.group(3), rec["hash"].encode()))
        global change_fn
        change_fn = edit
        path = self.copy(rechain(self.trail, change=i))
        code, out = self.verify("--no-checkpoint", path)
        self.assertEqual(code, 0, "the chain alone cannot tell: " + out)
        code, out = self.verify("--pubkey", self.key("audit-sign.pub.pem"),
                                path)
        self.assertEqual(code, 1, out)
        self.assertIn("seq %d: signature" % (i + 1), out)

    def test_record_changed_checkpoints_not_resigned_fails(self):
        # A denied export made an allowed one, the chain and the
        # checkpoints' members recomputed, their signatures kept: root
        # without the key.
        first = self.checkpoints()[0]
        i = next(n for n, l in enumerate(self.trail)
                 if n > first and b'"decision":"explicit_deny"' in l)
        nxt = next(n for n in self.checkpoints() if n > i)
        global change_fn
        change_fn = deny_to_allow
        path = self.copy(rechain(self.trail, change=i, key="keep"))
        code, out = self.verify(path)
        self.assertEqual(code, 0, "the chain alone cannot tell: " + out)
        code, out = self.verify("--pubkey", self.key("audit-sign.pub.pem"),
                                path)
        self.assertEqual(code, 1, out)
        self.assertIn("seq %d: signature" % (nxt + 1), out)
        self.assertIn("does not verify with this public key", out)

    def test_removed_checkpoint_record_fails(self):
        i = self.checkpoints()[1]
        path = self.copy(rechain(self.trail, drop=i))
        code, out = self.verify(path)
        self.assertEqual(code, 0, "the chain alone cannot tell: " + out)
        code, out = self.verify("--pubkey", self.key("audit-sign.pub.pem"),
                                path)
        self.assertEqual(code, 1, out)
        self.assertIn("signature", out)
        # Its own copy, cut off after the removed one: the chain of
        # checkpoints breaks where the next one names it.
        nxt = self.checkpoints()[2]
        msg = json.loads(self.trail[nxt])["checkpoint"]
        self.assertEqual(msg["prev_checkpoint"],
                         json.loads(self.trail[i])["hash"])

    def test_rewrite_resigned_fails_against_collected(self):
        # A denied export made an allowed one, the chain and every later
        # checkpoint recomputed with the host's own key: as root could.
        i = next(n for n, l in enumerate(self.trail)
                 if b'"decision":"explicit_deny"' in l)
        global change_fn
        change_fn = deny_to_allow
        forged = rechain(self.trail, change=i,
                         key=self.key("audit-sign.pem"))
        path = self.copy(forged)
        code, out = self.verify("--pubkey", self.key("audit-sign.pub.pem"),
                                path)
        self.assertEqual(code, 0, "the forgery should pass on the host: "
                         + out)
        code, out = self.verify("--against", self.collected, path)
        self.assertEqual(code, 1, out)
        self.assertIn("seq %d: differs from the collected copy" % (i + 1),
                      out)
        self.assertIn("rewritten on the host", out)
        # A record removed, the rest renumbered: the first seq from it on
        # differs.
        j = i + 3
        path = self.copy(rechain(self.trail, drop=j,
                                 key=self.key("audit-sign.pem")), "cut.jsonl")
        code, out = self.verify("--against", self.collected, path)
        self.assertEqual(code, 1, out)
        self.assertIn("seq %d: differs" % (j + 1), out)


if __name__ == "__main__":
    sys.exit(runner.main(sys.modules[__name__]))
