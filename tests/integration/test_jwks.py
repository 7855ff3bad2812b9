"""Integration: tokens from an identity provider's JWK Set (issue 12).

A test IdP (idp.py, TLS with the stack's CA) serves OIDC discovery and a
JWKS; tokens are signed by python3-jwcrypto for every algorithm.  Pins:
discovery and every algorithm verify (positive controls); the attack
battery against JWKS keys; an unknown-kid flood causes at most one fetch;
rotation with overlap, and the verified-token cache dropping a token whose
key left the set; hostile sets keep the last good set; an outage keeps
the keys up to jwks_max_stale_s, then fails closed (503 HSSGW.0306,
/healthz "jwks") and recovers; an issuer is not ready until its first
fetch; check-config fetches unless --offline; every fetch result is
counted in hssgw_jwks_fetches_total, scraped through nginx.
"""

import base64
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time
import unittest

try:
    import jwcrypto  # noqa: F401  (Debian's python3-jwcrypto)
except ImportError:
    # A pyenv python3 first on PATH lacks Debian's packages.
    if sys.executable != "/usr/bin/python3" and os.path.exists(
            "/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import idp as idpmod
import runner
import stack as stk
from fixtures import ARGS

BOGUS = stk.EXPORT_PATH + "/" + "A" * 40


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class JwksStack(stk.Stack):
    """The usual stack plus a second issuer whose keys come from the IdP
    through discovery."""

    def __init__(self, *a, refresh_s=None, max_stale_s=None, idp_mode="ok",
                 keys=(), cache_control="max-age=600", **kw):
        super().__init__(*a, **kw)
        self.cache_control = cache_control
        self.refresh_s, self.max_stale_s = refresh_s, max_stale_s
        self.idp_mode, self.initial_keys = idp_mode, keys
        self.idp = None

    def _configs(self):
        super()._configs()
        self.idp = idpmod.IdP(self.path("tls", "server.pem"),
                              self.path("tls", "server.key")).start()
        self.idp.set_keys(self.initial_keys)
        self.idp.cache_control = self.cache_control
        if self.idp_mode != "ok":
            self.idp.serve(self.idp_mode)
        iss = {"issuer": self.idp.issuer, "audiences": [stk.AUDIENCE],
               "discovery_url": self.idp.issuer +
               "/.well-known/openid-configuration",
               "algorithms": sorted(idpmod.ALGS),
               "jwks_ca_file": "tls/ca.pem"}
        if self.refresh_s:
            iss["jwks_refresh_s"] = self.refresh_s
        if self.max_stale_s:
            iss["jwks_max_stale_s"] = self.max_stale_s
        self.config["jwt"]["issuers"].append(iss)
        self.config["jwt"]["cache_entries"] = 1024
        stk.write_file(self.config_path, json.dumps(self.config, indent=1))

    def _start_hssgw(self):
        argv = [self.hssgw, "check-config", "--config", self.config_path]
        if self.idp_mode != "ok":
            argv.append("--offline")
        stk.run(argv)
        self._spawn("hssgw", [self.hssgw, "serve", "--config",
                              self.config_path])

    def _wait_ready(self, timeout=20.0):
        if self.idp_mode == "ok":
            return super()._wait_ready(timeout)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if self.request("GET", "/healthz").status in (200, 503):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise stk.StackError("hssgw never answered /healthz")

    def stop(self):
        super().stop()
        if self.idp is not None:
            self.idp.stop()

    def claims(self, **over):
        now = int(time.time())
        c = {"iss": self.idp.issuer, "aud": stk.AUDIENCE, "sub": "ci-job",
             "groups": [stk.ALLOWED_GROUP], "iat": now, "exp": now + 300}
        c.update(over)
        return c

    def auth(self, tok):
        """Status and error code of an authenticated no-op: a made-up
        task handle is 404 once the token passed, 401 if it did not."""
        r = self.request("GET", BOGUS, headers={
            "Authorization": "Bearer " + tok})
        try:
            code = r.json().get("error_code")
        except ValueError:
            code = None
        return r.status, code

    def health(self):
        r = self.request("GET", "/healthz")
        return r.status, r.json().get("reason")

    def jwks_fetches(self):
        """{result: count} of the IdP issuer's hssgw_jwks_fetches_total,
        scraped through nginx like Prometheus does."""
        r = self.request("GET", "/metrics")
        if r.status != 200:
            raise AssertionError("scrape: %d" % r.status)
        pat = re.compile(r'^hssgw_jwks_fetches_total\{issuer="%s",'
                         r'result="([a-z]+)"\} (\d+)$' %
                         re.escape(self.idp.issuer), re.M)
        return {m.group(1): int(m.group(2))
                for m in pat.finditer(r.body.decode())}

    def wait_fetches_counted(self, result, at_least, timeout=8.0):
        """The counter is bumped once the fetch is over, a moment after
        the IdP saw it: poll.  The last counts."""
        end = time.monotonic() + timeout
        got = self.jwks_fetches()
        while got.get(result, 0) < at_least and time.monotonic() < end:
            time.sleep(0.2)
            got = self.jwks_fetches()
        return got


def keys_for_every_alg():
    """One private key per algorithm family, kid = alg name."""
    ks = {}
    for alg, (kty, crv) in idpmod.ALGS.items():
        ks[alg] = idpmod.new_key(kty, crv, kid="k-" + alg)
    return ks


class TestJwksSteady(unittest.TestCase):
    """A stack whose IdP asks for max-age=1, which hssgw clamps to 5
    minutes: no background refresh disturbs the fetch counts."""

    @classmethod
    def setUpClass(cls):
        cls.k = keys_for_every_alg()
        cls.s = JwksStack(ARGS.bin, ARGS.src, cache_control="max-age=1",
                          keys=[idpmod.public(k, use="sig")
                                for k in cls.k.values()]).start()

    def test_cache_control_clamped(self):
        """Cache-Control max-age=1 is clamped to 300 s: an IdP cannot
        make hssgw poll it every second."""
        n = self.s.idp.count()
        time.sleep(3)
        self.assertEqual(self.s.idp.count(), n)

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_fetches_counted(self):
        """Positive control for the metric: the first fetch is counted
        ok, nothing failed, and the result label is the bounded set."""
        got = self.s.wait_fetches_counted("ok", 1)
        self.assertGreaterEqual(got.get("ok", 0), 1)
        self.assertEqual(got.get("error"), 0)
        self.assertEqual(got.get("rejected"), 0)
        self.assertEqual(sorted(got), ["error", "limited", "ok", "rejected"])

    def test_every_algorithm_from_jwcrypto(self):
        """Positive controls: discovery found the JWKS, and a jwcrypto
        token of each algorithm verifies, with and without kid."""
        for alg, key in self.k.items():
            with self.subTest(alg=alg):
                t = idpmod.token(key, alg, self.s.claims())
                self.assertEqual(self.s.auth(t), (404, "HSSGW.0008"))
                t = idpmod.token(key, alg, self.s.claims(), kid=False)
                self.assertEqual(self.s.auth(t), (404, "HSSGW.0008"))

    def test_mint_token_every_algorithm(self):
        """hssgw mint-token signs with each algorithm, and jwcrypto (an
        independent implementation) accepts what it made: JOSE's R||S
        for ES*, PSS with salt = hash length, pure Ed25519."""
        from jwcrypto import jwt as jjwt
        for alg, key in self.k.items():
            with self.subTest(alg=alg):
                f = self.s.path("keys", "mint-%s.pem" % alg)
                stk.write_file(f, key.export_to_pem(private_key=True,
                                                    password=None), 0o600)
                tok = stk.run([self.s.hssgw, "mint-token", "--key", f,
                               "--alg", alg, "--kid", "k-" + alg,
                               "--iss", self.s.idp.issuer,
                               "--aud", stk.AUDIENCE, "--sub", "ci-job",
                               "--groups", stk.ALLOWED_GROUP]).strip()
                jjwt.JWT(jwt=tok, key=key, algs=[alg])  # raises if bad
                self.assertEqual(self.s.auth(tok), (404, "HSSGW.0008"))

    def test_attack_battery(self):
        """Each forgery next to its positive control."""
        s, rsa = self.s, self.k["RS256"]
        good = idpmod.token(rsa, "RS256", s.claims())
        self.assertEqual(s.auth(good)[0], 404)
        h, p, sig = good.split(".")
        # alg none, with and without a signature.
        for hdr in ({"alg": "none", "kid": idpmod.kid_of(rsa)},
                    {"alg": "RS256", "kid": idpmod.kid_of(rsa), "crit": ["exp"]},
                    {"alg": "HS256", "kid": idpmod.kid_of(rsa)},
                    {"alg": "ES256", "kid": idpmod.kid_of(rsa)},
                    {"alg": "RS256", "kid": "k-ES256"},
                    {"alg": "RS256", "kid": "k-RS256", "jku":
                     "https://evil.example/jwks"}):
            forged = b64u(json.dumps(hdr).encode()) + "." + p + "." + sig
            with self.subTest(hdr=hdr):
                self.assertEqual(s.auth(forged), (401, "HSSGW.0102"))
        # HS256 keyed with the RSA key's public PEM (alg confusion).
        pem = rsa.export_to_pem().decode()
        from jwcrypto import jwk as jj
        hk = jj.JWK(kty="oct", k=b64u(pem.encode()), kid=idpmod.kid_of(rsa))
        forged = idpmod.token(hk, "HS256", s.claims())
        self.assertEqual(s.auth(forged), (401, "HSSGW.0102"))
        # Claim checks: issuer, audience, expiry.
        for over in ({"aud": "someone-else"}, {"exp": int(time.time()) -
                                                3600},
                     {"iss": s.idp.issuer + "/"}):
            with self.subTest(claims=over):
                t = idpmod.token(rsa, "RS256", s.claims(**over))
                self.assertEqual(s.auth(t), (401, "HSSGW.0102"))
        # A key of an algorithm signing as another of its family (RS key
        # signing PS256 is allowed: same kty; ES384 key as ES256 is not).
        t = idpmod.token(self.k["ES384"], "ES384", s.claims())
        h2, p2, s2 = t.split(".")
        hdr = {"alg": "ES256", "kid": "k-ES384"}
        forged = b64u(json.dumps(hdr).encode()) + "." + p2 + "." + s2
        self.assertEqual(s.auth(forged), (401, "HSSGW.0102"))
        self.assertEqual(s.auth(t)[0], 404)

    def test_es256_der_signature_refused(self):
        """JOSE ECDSA is raw R||S; the DER form OpenSSL emits must fail."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        key = self.k["ES256"]
        good = idpmod.token(key, "ES256", self.s.claims())
        self.assertEqual(self.s.auth(good)[0], 404)
        h, p, _ = good.split(".")
        priv = key.get_op_key("sign")
        der = priv.sign((h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))
        self.assertEqual(self.s.auth(h + "." + p + "." + b64u(der)),
                         (401, "HSSGW.0102"))

    def test_unknown_kid_flood_one_fetch(self):
        """Forged tokens with random kids drive at most one refetch per
        30 s per issuer, however many arrive; with the IdP answering
        slowly no worker waits for it: the refresher refetches, every
        token with an unknown kid is refused at once (issue 21: the first
        one's worker ran discovery and the fetch inline, up to 5 s)."""
        rsa = self.k["RS256"]
        good = idpmod.token(rsa, "RS256", self.s.claims())
        before = self.s.idp.count()
        self.s.idp.serve("slow", delay=8.0)

        def forged(i):
            t = idpmod.token(rsa, "RS256", self.s.claims(), header={
                "kid": "random-%d-%f" % (i, time.time())})
            t0 = time.monotonic()
            st = self.s.auth(t)[0]
            return st, time.monotonic() - t0

        try:
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                first = ex.submit(forged, 0)
                self.s.idp.wait_fetches(before + 1)
                # While the refetch hangs: known kids answer at once,
                # other unknown kids are refused at once.
                t0 = time.monotonic()
                self.assertEqual(self.s.auth(good)[0], 404)
                self.assertLess(time.monotonic() - t0, 2.0)
                rest = list(ex.map(forged, range(1, 40)))
                st, took = first.result()
            self.assertEqual(st, 401)
            self.assertLess(took, 2.0)
            for st, took in rest:
                self.assertEqual(st, 401)
                self.assertLess(took, 2.0)
            # Exactly one: the first unknown kid refetched, the other 39
            # hit the rate limit.
            self.assertEqual(self.s.idp.count() - before, 1)
        finally:
            self.s.idp.set_keys([idpmod.public(k, use="sig")
                                 for k in self.k.values()])
        # Positive control: known kids still verify.
        self.assertEqual(self.s.auth(good)[0], 404)

    def test_check_config_fetches(self):
        """check-config validates the JWKS (online), --offline skips it."""
        out = subprocess.run([self.s.hssgw, "check-config", "--config",
                              self.s.config_path], capture_output=True,
                             text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.s.idp.serve("garbage")
        try:
            out = subprocess.run([self.s.hssgw, "check-config", "--config",
                                  self.s.config_path], capture_output=True,
                                 text=True)
            self.assertEqual(out.returncode, 1)
            self.assertIn("JWK Set", out.stderr)
            out = subprocess.run([self.s.hssgw, "check-config", "--offline",
                                  "--config", self.s.config_path],
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            # Discovery naming another issuer (here: one trailing slash
            # apart) is refused: OIDC Discovery 4.3, byte-exact.
            self.s.idp.set_keys([idpmod.public(k)
                                 for k in self.k.values()])
            conf = json.loads(json.dumps(self.s.config))
            conf["jwt"]["issuers"][1]["issuer"] = self.s.idp.issuer + "/"
            path = self.s.path("other-issuer.json")
            stk.write_file(path, json.dumps(conf))
            out = subprocess.run([self.s.hssgw, "check-config", "--config",
                                  path], capture_output=True, text=True)
            self.assertEqual(out.returncode, 1)
            self.assertIn("discovery issuer differs", out.stderr)
        finally:
            self.s.idp.set_keys([idpmod.public(k)
                                 for k in self.k.values()])


class TestJwksNewKid(unittest.TestCase):
    """A key published after the last fetch (no background refresh for
    5 minutes): only the unknown-kid refetch can find it."""

    @classmethod
    def setUpClass(cls):
        cls.old = idpmod.new_key("RSA", kid="kid-old")
        cls.new = idpmod.new_key("EC", "P-256", kid="kid-new")
        cls.s = JwksStack(ARGS.bin, ARGS.src, cache_control="max-age=1",
                          keys=[idpmod.public(cls.old)]).start()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def test_unknown_kid_refused_at_once_then_verifies(self):
        """Issue 21 item 4, the gap pinned: a token with a new kid made its
        worker run discovery and the JWKS fetch inline (here a 3 s IdP:
        the token waited 3 s).  Now it is refused at once, the refresher
        fetches, and the next token with that kid verifies."""
        s = self.s
        old = idpmod.token(self.old, "RS256", s.claims())
        new = idpmod.token(self.new, "ES256", s.claims())
        self.assertEqual(s.auth(old)[0], 404)  # positive control
        n = s.idp.count()
        s.idp.set_keys([idpmod.public(self.old), idpmod.public(self.new)])
        s.idp.serve("slow", delay=3.0)
        t0 = time.monotonic()
        got = s.auth(new)
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assertEqual(got, (401, "HSSGW.0102"))
        s.idp.wait_fetches(n + 1)
        # While the refresher waits on the IdP, known kids still verify.
        t0 = time.monotonic()
        self.assertEqual(s.auth(old)[0], 404)
        self.assertLess(time.monotonic() - t0, 1.5)
        end = time.monotonic() + 10
        while s.auth(new)[0] != 404:
            self.assertLess(time.monotonic(), end, "new kid never verified")
            time.sleep(0.2)
        self.assertEqual(s.idp.count(), n + 1)


class TestJwksChanging(unittest.TestCase):
    """A stack that refreshes every second and goes stale after 4 s."""

    @classmethod
    def setUpClass(cls):
        cls.k1 = idpmod.new_key("RSA", kid="old")
        cls.k2 = idpmod.new_key("EC", "P-256", kid="new")
        cls.s = JwksStack(ARGS.bin, ARGS.src, refresh_s=1, max_stale_s=4,
                          idp_mode="down", keys=[idpmod.public(cls.k1)])
        cls.s.start()

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def wait_auth(self, tok, want, timeout=8.0):
        end = time.monotonic() + timeout
        got = None
        while time.monotonic() < end:
            got = self.s.auth(tok)
            if got[0] == want:
                return got
            time.sleep(0.2)
        self.fail("wanted %s, still %r" % (want, got))

    def wait_health(self, want, timeout=8.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.s.health()[0] == want:
                return
            time.sleep(0.2)
        self.fail("healthz never %d: %r" % (want, self.s.health()))

    def test_1_not_ready_until_first_fetch(self):
        """The IdP is down at start: /healthz says jwks, tokens get 503
        HSSGW.0306; once it answers, ready without a restart."""
        t = idpmod.token(self.k1, "RS256", self.s.claims())
        # Wait for hssgw itself: until it listens, nginx answers 503
        # with no reason (a slow fresh machine lost that race).
        end = time.monotonic() + 20
        while self.s.health()[1] is None and time.monotonic() < end:
            time.sleep(0.1)
        self.assertEqual(self.s.health(), (503, "jwks"))
        self.assertEqual(self.s.auth(t), (503, "HSSGW.0306"))
        # Each failed fetch is counted as error, none ok yet.
        got = self.s.wait_fetches_counted("error", 1)
        self.assertGreaterEqual(got["error"], 1)
        self.assertEqual(got["ok"], 0)
        self.s.idp.set_keys([idpmod.public(self.k1)])
        self.wait_health(200)
        self.assertEqual(self.s.auth(t)[0], 404)
        self.assertGreaterEqual(self.s.wait_fetches_counted("ok", 1)["ok"],
                                1)

    def test_2_rotation_with_overlap(self):
        """Old and new kid both valid while both are published; the old
        one refused once it left the set, even from the token cache."""
        self.s.idp.set_keys([idpmod.public(self.k1)])
        self.wait_health(200)
        old = idpmod.token(self.k1, "RS256", self.s.claims())
        self.assertEqual(self.s.auth(old)[0], 404)
        self.assertEqual(self.s.auth(old)[0], 404)  # now cached
        new = idpmod.token(self.k2, "ES256", self.s.claims())
        self.s.idp.set_keys([idpmod.public(self.k1),
                             idpmod.public(self.k2)])
        self.wait_auth(new, 404)
        self.assertEqual(self.s.auth(old)[0], 404)
        self.s.idp.set_keys([idpmod.public(self.k2)])
        self.wait_auth(old, 401)
        self.assertEqual(self.s.auth(new)[0], 404)

    def test_3_hostile_sets_keep_last_good(self):
        """Each malformed or hostile answer is refused whole and the last
        good set keeps verifying."""
        good_keys = [idpmod.public(self.k2)]
        self.s.idp.set_keys(good_keys)
        tok = idpmod.token(self.k2, "ES256", self.s.claims())
        self.wait_auth(tok, 404)
        before = self.s.jwks_fetches()
        small = idpmod.new_key("RSA", kid="small", size=1024)
        other = idpmod.new_key("EC", "P-256", kid="new")
        pub2 = idpmod.public(self.k2)
        hostile = {
            "oversized": {"keys": good_keys, "pad": "x" * 70000},
            "duplicate kid": {"keys": [pub2, idpmod.public(other)]},
            "rsa-1024": {"keys": [pub2, idpmod.public(small)]},
            "kty/crv mismatch": {"keys": [dict(pub2, crv="Ed25519")]},
            "wrong alg": {"keys": [dict(pub2, alg="RS256")]},
            "private key": {"keys": [json.loads(self.k2.export_private())]},
            "too many keys": {"keys": [pub2] + [
                {"kty": "AKP", "kid": str(i)} for i in range(64)]},
        }
        for name, doc in hostile.items():
            with self.subTest(hostile=name):
                n = self.s.idp.count()
                self.s.idp.serve("body", json.dumps(doc).encode())
                self.s.idp.wait_fetches(n + 1)
                self.assertEqual(self.s.auth(tok)[0], 404)
                self.s.idp.set_keys(good_keys)
                self.s.idp.wait_fetches(n + 2)
        with self.subTest(hostile="garbage"):
            n = self.s.idp.count()
            self.s.idp.serve("garbage")
            self.s.idp.wait_fetches(n + 1)
            self.assertEqual(self.s.auth(tok)[0], 404)
            self.s.idp.set_keys(good_keys)
            self.s.idp.wait_fetches(n + 2)  # the garbage one is logged
        # Refused answers count as rejected, not error.
        got = self.s.wait_fetches_counted("rejected", before["rejected"] + 1)
        self.assertGreater(got["rejected"], before["rejected"])
        # Each refused answer is logged with its reason.
        log = self.s.log_tail("hssgw", 50000)
        for why in ("keeping the last good set", "2048 bits",
                    "share a kid", "kty and crv", "alg does not fit",
                    "private", "more than 64 keys", "response too large",
                    "not a JWK Set"):
            self.assertIn(why, log)

    def test_4_outage_then_fail_closed_then_recover(self):
        """IdP down: last good keys up to jwks_max_stale_s (4 s), then
        503 HSSGW.0306 and /healthz jwks; back up: recovers alone."""
        self.s.idp.set_keys([idpmod.public(self.k2)])
        tok = idpmod.token(self.k2, "ES256", self.s.claims())
        self.wait_auth(tok, 404)
        before = self.s.jwks_fetches()
        n = self.s.idp.count()
        self.s.idp.serve("down")
        self.s.idp.wait_fetches(n + 1)
        self.assertEqual(self.s.auth(tok)[0], 404)
        # The IdP's 503 moves result="error", and only that.
        got = self.s.wait_fetches_counted("error", before["error"] + 1)
        self.assertGreater(got["error"], before["error"])
        self.assertEqual(got["rejected"], before["rejected"])
        got = self.wait_auth(tok, 503)
        self.assertEqual(got, (503, "HSSGW.0306"))
        self.assertEqual(self.s.health(), (503, "jwks"))
        self.s.idp.set_keys([idpmod.public(self.k2)])
        self.wait_auth(tok, 404)
        self.wait_health(200)


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
