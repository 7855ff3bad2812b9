"""Restarts, reloads and upgrades under load (issue 25), the full run:
wrk -t2 -c32 for 60 s through nginx at GET /healthz, plus 3 clients
exporting back to back (HSS answering after 300 ms), while hssgw is
restarted 10 times and reloaded 10 times on a socket held as systemd's
hssgw.socket holds it (tests/integration/sockhold.py); then the same
with every restart switching to a copy of the binary at another path
(an upgrade).  Prints the counts: non-2xx answers and socket errors
should be 0, every export 200.  Numbers, never assertions; the bounded
version is tests/integration/test_restart.py.

usage: python3 bench/restart.py --bin BUILD/bin --src . [--seconds 60]
       [--restarts 10] [--reloads 10] [--connections 32] [--json]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "integration"))
import fixtures  # noqa: E402
import test_restart as tr  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--reloads", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    fixtures.ARGS.bin, fixtures.ARGS.src = a.bin, a.src
    s = tr.ActivatedStack(a.bin, a.src).start()
    d = tempfile.mkdtemp(prefix="hssgw-upg-")
    rows = []
    try:
        r = tr.measure(s, a.seconds, a.restarts, a.reloads,
                       conns=a.connections)
        rows.append(("restart+reload", r))
        copy = os.path.join(d, "hssgw-next")
        shutil.copy2(s.hssgw, copy)
        r = tr.measure(s, a.seconds, a.restarts, a.reloads, upgrade_to=copy,
                       conns=a.connections)
        rows.append(("upgrade+reload", r))
    finally:
        s.stop()
        shutil.rmtree(d, ignore_errors=True)
    for name, r in rows:
        if a.json:
            r = dict(r, name=name)
            r.pop("output", None)
            print(json.dumps(r))
        else:
            print(tr.summary(name, r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
