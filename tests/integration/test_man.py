"""The man pages cannot drift: hssgw(8) and hssgw.json(5) are mandoc-lint
clean at warning level, hssgw.json(5) documents exactly the keys of
gateway/lib/config.c's key tables, hssgw(8) every subcommand, option and
signal the binary has, and README's configuration table names no key the
tables lack.  Python 3 stdlib, mandoc(1); prints 'N passed, N failed'."""

import os
import re
import subprocess
import sys
import unittest

import runner
from fixtures import ARGS, hssgw


def src(*p):
    return os.path.join(ARGS.src, *p)


def read(*p):
    with open(src(*p), encoding="utf-8") as f:
        return f.read()


def config_keys():
    """Every key path of config.c's tables: `jwt`, `jwt.issuers`,
    `jwt.issuers[].keys[].alg`...  K_OBJ members join with a dot, K_ARRAY
    element members with `[].`."""
    text = read("gateway", "lib", "config.c")
    tables = {}
    for m in re.finditer(r"static const struct ckey (\w+)\[\] = \{(.*?)"
                         r"\n\};", text, re.S):
        tables[m.group(1)] = [
            (e.group(1), e.group(2), e.group(3)) for e in re.finditer(
                r"\{\s*\"(\w+)\",\s*(K_\w+),([^{}]*)\}", m.group(2))]
    if "topkeys" not in tables:
        raise AssertionError("config.c: no topkeys table found")

    def walk(name, prefix):
        for key, kind, rest in tables[name]:
            path = prefix + key
            yield path
            sub = [t for t in re.findall(r"\b(\w+)\b", rest) if t in tables]
            if kind == "K_OBJ":
                yield from walk(sub[0], path + ".")
            elif kind == "K_ARRAY":
                yield from walk(sub[0], path + "[].")
    return list(walk("topkeys", ""))


class Lint(unittest.TestCase):
    def test_mandoc_lint_clean(self):
        # -W warning: warnings and errors fail.  Style notes are not
        # checked: they only say that referenced pages (logrotate(8),
        # hssgw(8) before install) are not in this machine's man database.
        for page in ("hssgw.8", "hssgw.json.5"):
            with self.subTest(page=page):
                p = subprocess.run(["mandoc", "-T", "lint", "-W", "warning",
                                    src("man", page)],
                                   capture_output=True, text=True)
                self.assertEqual((p.returncode, p.stdout + p.stderr),
                                 (0, ""))

    def test_lint_catches_a_broken_page(self):
        # Positive control: the same command fails on a page with a fault.
        bad = read("man", "hssgw.8").replace(".Sh SEE ALSO",
                                             ".Sh SEE ALSO\n.Xr")
        p = subprocess.run(["mandoc", "-T", "lint", "-W", "warning"],
                           input=bad, capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)


class ConfigPage(unittest.TestCase):
    def test_every_key_documented_and_no_other(self):
        keys = config_keys()
        self.assertGreater(len(keys), 50)
        self.assertIn("jwt.issuers[].keys[].alg", keys)
        self.assertIn("tasks.retry_deadline_ms", keys)
        page = read("man", "hssgw.json.5")
        documented = re.findall(r"^\.It Cm (\S+)$", page, re.M)
        for k in keys:
            with self.subTest(key=k):
                self.assertTrue(k in documented,
                                "hssgw.json.5 lacks a .It Cm for " + k)
        for k in documented:
            with self.subTest(documented=k):
                self.assertTrue(k in keys, "hssgw.json.5 documents a "
                                "key config.c does not have: " + k)

    def test_readme_names_only_real_keys(self):
        # The README's overview names a handful of keys and points at
        # hssgw.json(5): each must be a real key the page documents.
        keys = set(config_keys())
        page = read("man", "hssgw.json.5")
        documented = set(re.findall(r"^\.It Cm (\S+)$", page, re.M))
        text = read("README.md")
        section = text.split("## Configuration", 1)[1].split("\n#", 1)[0]
        self.assertIn("man/hssgw.json.5", section)
        rows = [ln for ln in section.splitlines()
                if ln.startswith("| `")]
        self.assertGreater(len(rows), 5)
        for row in rows:
            first = row.split("|")[1]
            names = re.findall(r"`([^`]+)`", first)
            base = names[0].rsplit(".", 1)[0] if "." in names[0] else ""
            for n in names:
                path = base + n if n.startswith(".") else n
                if path.endswith("[]"):
                    path = path[:-2]
                with self.subTest(readme=path):
                    self.assertTrue(path in keys, "README names " + path)
                    self.assertTrue(path in documented,
                                    "hssgw.json.5 lacks " + path)


class CommandPage(unittest.TestCase):
    def test_every_subcommand_and_option(self):
        page = read("man", "hssgw.8")
        synopsis = page.split(".Sh SYNOPSIS", 1)[1].split(".Sh ", 1)[0]
        _, top, _ = hssgw("--help")
        names = re.findall(r"^  ([a-z][a-z-]*) +(\S+)", top, re.M)
        self.assertGreater(len(names), 8)
        for name, first in names:
            cmds = [name]
            if re.fullmatch(r"[a-z]+(\|[a-z]+)+", first):
                cmds = [name + " " + v for v in first.split("|")]
            for cmd in cmds:
                with self.subTest(cmd=cmd):
                    self.assertRegex(synopsis,
                                     r"\n\.Cm %s\n" % re.escape(cmd))
                    _, use, _ = hssgw(*cmd.split(), "--help")
                    for opt in set(re.findall(r"--([a-z][a-z-]*)", use)):
                        self.assertIn("Fl \\-" + opt, page,
                                      "%s --%s" % (cmd, opt))

    def test_every_signal(self):
        page = read("man", "hssgw.8")
        sigs = page.split(".Sh SIGNALS", 1)[1].split(".Sh ", 1)[0]
        daemon = read("gateway", "server", "daemon.c")
        handled = set(re.findall(r"sigaddset\(&set, (SIG\w+)\)", daemon))
        self.assertLessEqual({"SIGTERM", "SIGHUP", "SIGUSR1"}, handled)
        for s in handled:
            with self.subTest(signal=s):
                self.assertIn(s, sigs)

    def test_environment(self):
        page = read("man", "hssgw.8")
        for var in set(re.findall(r'getenv\("(\w+)"\)',
                                  read("gateway", "cli", "client.c"))):
            self.assertIn(".It Ev " + var, page)


def main():
    return runner.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
