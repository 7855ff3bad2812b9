"""The one runner of the integration suites: parses --bin, --src, -k and -v
into fixtures.ARGS, runs a module's tests and prints the closing
'N passed, N failed' line (subtests counted as tests) that CI reads.
Python 3 stdlib only."""

import argparse
import sys
import unittest

import fixtures


class CountingResult(unittest.TextTestResult):
    """Counts subtests as tests so the summary reflects every case."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is None:
            self.passed += 1


def main(module):
    """Runs module's tests; fixtures.ARGS receives .bin and .src.  Exit
    status."""
    ap = argparse.ArgumentParser(
        description=(module.__doc__ or "").splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("-k", dest="pattern", action="append",
                    help="only tests whose name contains this")
    ap.add_argument("-v", dest="verbosity", action="count", default=1)
    a = ap.parse_args()
    fixtures.ARGS.bin, fixtures.ARGS.src = a.bin, a.src
    loader = unittest.TestLoader()
    if a.pattern:
        loader.testNamePatterns = ["*%s*" % p for p in a.pattern]
    suite = loader.loadTestsFromModule(module)
    res = unittest.TextTestRunner(resultclass=CountingResult,
                                  verbosity=a.verbosity,
                                  stream=sys.stdout).run(suite)
    failed = len(res.failures) + len(res.errors) + len(
        res.unexpectedSuccesses)
    print("%d passed, %d failed" % (res.passed, failed))
    return 0 if failed == 0 and res.testsRun > 0 else 1
