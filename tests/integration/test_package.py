#!/usr/bin/env python3
"""The Debian package end to end: deploy/package.sh builds it (a release
build, cpack -G DEB), lintian reports no error, the control data say what
README "Installing" promises (Depends with the runtime libraries and
ca-certificates, conffiles, maintainer scripts that create the user and
leave the service disabled), and the package unpacked into a scratch root
(dpkg-deb -x) holds every file in its Debian place, and its installed
hssgw check-config accepts the installed example config once the operator's
files (IdP key, token, a policy) are in place, as README says.

Run: test_package.py --bin BUILD/bin --src SRC (BUILD/pkg is the package
build).  Needs dpkg-dev, lintian, mandoc; prints 'N passed, N failed'.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner  # noqa: E402
from fixtures import ARGS  # noqa: E402

# The runtime packages of deploy/lib.sh's build dependencies.
RUNTIME = ("libc6", "libfcgi0ldbl", "libjson-c5", "libcurl4", "libjwt0",
           "librelp0", "libssl3", "libsystemd0", "ca-certificates", "adduser")
FILES = (
    "usr/sbin/hssgw",
    "lib/systemd/system/hssgw.service",
    "lib/systemd/system/hssgw.socket",
    "lib/systemd/system/hssgw-audit-ship.service",
    "usr/share/hssgw/rsyslog/hssgw-collector.conf",
    "etc/hssgw/hssgw.json",
    "etc/hssgw/policies",
    "etc/logrotate.d/hssgw",
    "usr/share/man/man8/hssgw.8.gz",
    "usr/share/man/man5/hssgw.json.5.gz",
    "usr/share/hssgw/nginx/hssgw.conf.in",
    "usr/share/doc/hssgw/copyright",
    "usr/share/doc/hssgw/changelog.Debian.gz",
    "usr/share/doc/hssgw/README.md",
    "usr/share/doc/hssgw/openapi.yaml",
    "usr/share/doc/hssgw/examples/hssgw.example.json",
    "usr/share/doc/hssgw/examples/policies/demo.json",
)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.build = os.path.abspath(os.path.join(ARGS.bin, "..", "pkg"))
        p = run([os.path.join(ARGS.src, "deploy", "package.sh"), cls.build],
                timeout=1200)
        if p.returncode != 0:
            raise AssertionError("package.sh failed:\n" + p.stderr[-4000:])
        cls.deb = p.stdout.split()[-1]
        cls.root = tempfile.mkdtemp(prefix="hssgw-pkg-")
        subprocess.run(["dpkg-deb", "-x", cls.deb, cls.root], check=True)
        cls.ctl = os.path.join(cls.root, "DEBIAN")
        subprocess.run(["dpkg-deb", "-e", cls.deb, cls.ctl], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def p(self, *parts):
        return os.path.join(self.root, *parts)

    def field(self, name):
        return run(["dpkg-deb", "-f", self.deb, name]).stdout.strip()

    def test_lintian_no_errors(self):
        p = run(["lintian", "--fail-on", "error", self.deb], timeout=600)
        errors = [ln for ln in p.stdout.splitlines()
                  if ln.startswith("E:")]
        self.assertEqual(errors, [], p.stdout)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # Warnings are printed for the log; the package has none today.
        print("lintian:", p.stdout.strip() or "clean")

    def test_depends_on_the_runtime_packages(self):
        deps = self.field("Depends")
        names = {re.split(r"[ (]", d.strip())[0]
                 for alt in deps.split(",") for d in alt.split("|")}
        for pkg in RUNTIME:
            with self.subTest(pkg=pkg):
                self.assertIn(pkg, names, deps)
        self.assertIn("nginx", self.field("Recommends"))

    def test_control_files(self):
        with open(os.path.join(self.ctl, "conffiles")) as f:
            conffiles = f.read().split()
        self.assertEqual(sorted(conffiles),
                         ["/etc/hssgw/hssgw.json", "/etc/logrotate.d/hssgw"])
        self.assertTrue(os.path.getsize(os.path.join(self.ctl, "md5sums")))
        with open(os.path.join(self.ctl, "postinst")) as f:
            postinst = f.read()
        for want in ("adduser --system", "addgroup --system",
                     "/var/log/hssgw"):
            self.assertIn(want, postinst)
        # Disabled until configured: nothing enables or starts it, and
        # the package ships no .wants symlink.
        for script in ("postinst", "prerm", "postrm"):
            with open(os.path.join(self.ctl, script)) as f:
                code = "\n".join(ln for ln in f.read().splitlines()
                                 if not ln.lstrip().startswith("#"))
            self.assertNotRegex(code, r"\benable\b|\bstart\b")
            self.assertEqual(run(["sh", "-n", f.name]).returncode, 0)
        self.assertFalse(os.path.exists(self.p("etc", "systemd")))

    def test_files_in_their_places(self):
        for f in FILES:
            with self.subTest(file=f):
                self.assertTrue(os.path.exists(self.p(f)), f)
        # Stripped, executable; the unit runs the installed binary.
        out = run(["file", "-b", self.p("usr/sbin/hssgw")]).stdout
        self.assertIn("stripped", out)
        self.assertNotIn("not stripped", out)
        with open(self.p("lib/systemd/system/hssgw.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/sbin/hssgw serve --config "
                      "/etc/hssgw/hssgw.json", unit)
        self.assertNotIn("/usr/local", unit)
        # Socket activation: the service takes hssgw.socket's socket and
        # the installed example config says so.
        self.assertIn("Requires=hssgw.socket", unit)
        self.assertIn("Type=notify", unit)
        with open(self.p("lib/systemd/system/hssgw.socket")) as f:
            sock = f.read()
        self.assertIn("ListenStream=/run/hssgw/hssgw.sock", sock)
        self.assertNotIn("/usr/local", sock)
        with open(self.p("etc/hssgw/hssgw.json")) as f:
            self.assertEqual(json.load(f)["listen"], "systemd")
        with open(self.p("lib/systemd/system/hssgw-audit-ship.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/sbin/hssgw audit ship --config "
                      "/etc/hssgw/hssgw.json", unit)
        self.assertNotIn("/usr/local", unit)

    def test_installed_man_pages_lint_clean(self):
        for page in ("man8/hssgw.8.gz", "man5/hssgw.json.5.gz"):
            with self.subTest(page=page):
                p = run(["mandoc", "-T", "lint", "-W", "warning",
                         self.p("usr/share/man", page)])
                self.assertEqual((p.returncode, p.stdout + p.stderr),
                                 (0, ""))

    def test_installed_binary_answers(self):
        p = run([self.p("usr/sbin/hssgw"), "version"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^hssgw \d+\.\d+\.\d+")

    def test_check_config_on_the_installed_example(self):
        """What an operator does after installing (README "Installing"):
        put the IdP key, the token and a policy where the example config
        names them, then check-config.  The scratch root stands for /, so
        the config's absolute paths are moved under it in an overlay next
        to the installed file (relative paths resolve as installed)."""
        hssgw = self.p("usr/sbin/hssgw")
        etc = self.p("etc", "hssgw")
        with open(os.path.join(etc, "hssgw.json")) as f:
            conf = json.load(f)

        def moved(v):
            if isinstance(v, str) and v.startswith("/") and \
                    not v.startswith("/run/"):
                return self.root + v
            if isinstance(v, dict):
                return {k: moved(x) for k, x in v.items()}
            if isinstance(v, list):
                return [moved(x) for x in v]
            return v
        overlay = os.path.join(etc, "hssgw.scratch.json")
        with open(overlay, "w") as f:
            json.dump(moved(conf), f)

        # Negative control: as installed, before the operator's files,
        # check-config refuses and names what is missing.
        p = run([hssgw, "check-config", "--config", overlay])
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("idp-2026-01.pub.pem", p.stderr)

        key = conf["jwt"]["issuers"][0]["keys"][0]["file"]
        os.makedirs(os.path.dirname(os.path.join(etc, key)), exist_ok=True)
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA",
                        "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                        os.path.join(self.root, "idp.pem")],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "pkey", "-in",
                        os.path.join(self.root, "idp.pem"), "-pubout",
                        "-out", os.path.join(etc, key)],
                       check=True, capture_output=True)
        token = os.path.join(etc, conf["credentials"][0]["file"])
        os.makedirs(os.path.dirname(token), exist_ok=True)
        fd = os.open(token, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"iam-token-for-the-package-test\n")
        os.close(fd)
        shutil.copy(self.p("usr/share/doc/hssgw/examples/policies/demo.json"),
                    self.root + conf["policies_dir"])
        p = run([hssgw, "check-config", "--config", overlay])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), overlay + ": ok")
        # The token never shows in the output.
        self.assertNotIn("iam-token-for", p.stdout + p.stderr)


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
