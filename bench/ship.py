#!/usr/bin/env python3
"""Records shipped per second: hssgw audit ship sending a trail written by
the real writer (report-trail, N requests) to a local rsyslog + imrelp
run from deploy/rsyslog/hssgw-collector.conf, timed from the shipper's
start to the cursor naming the last record.  Rows: the shipped
collector config (omfile sync="on": every record fsync'd before its
acknowledgement) and the same with sync="off" (acknowledged once in the
page cache), each at the default batch size and a larger one.  Numbers,
never assertions; the collected file is checked against the trail.

    bench/ship.py --bin BUILD/bin --src REPO [--records N]

Python 3 stdlib only."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))

import relp_collector as rc  # noqa: E402


def config(state, trail, port, batch):
    return {
        "listen": "unix:" + os.path.join(state, "x.sock"),
        "instance": "bench",
        "jwt": {"issuers": [{"issuer": "i", "audiences": ["a"], "keys": [
            {"kid": "k", "alg": "HS256", "file": "k"}]}]},
        "policies_dir": state,
        "credentials": [{"name": "c", "type": "token_file", "file": "t"}],
        "projects": [{"alias": "p", "project_id": "x", "region": "r",
                      "endpoint": "https://h", "credentials": "c"}],
        "audit": {"file": trail, "ship": {
            "relp": "127.0.0.1:%d" % port,
            "cursor_file": os.path.join(state, "ship.cursor"),
            "batch_size": batch}},
    }


def row(args, state, trail, last, sync, batch):
    d = tempfile.mkdtemp(dir=state)
    col = rc.Collector(args.src, d, sync=sync).start()
    cfgp = os.path.join(d, "ship.json")
    with open(cfgp, "w") as f:
        json.dump(config(d, trail, col.port, batch), f)
    log = open(os.path.join(d, "ship.log"), "wb")
    t0 = time.monotonic()
    p = subprocess.Popen([os.path.join(args.bin, "hssgw"), "audit", "ship",
                          "--config", cfgp], stdout=log, stderr=log)
    try:
        while True:
            c = rc.read_json(os.path.join(d, "ship.cursor")) or {}
            if c.get("seq", 0) >= last:
                break
            if p.poll() is not None or time.monotonic() - t0 > 600:
                raise SystemExit("shipper stopped or too slow; see %s" % d)
            time.sleep(0.02)
        dt = time.monotonic() - t0
    finally:
        p.terminate()
        p.wait(30)
        col.kill()
        log.close()
    got = col.lines("bench")
    bad = rc.check_collected(got, rc.trail_lines(trail))
    return dt, bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--records", type=int, default=20000,
                    help="requests in the trail (allowed exports write two)")
    args = ap.parse_args()
    state = tempfile.mkdtemp(prefix="hssgw-bench-ship-")
    try:
        trail = os.path.join(state, "audit.jsonl")
        subprocess.run([os.path.join(args.bin, "report-trail"), trail,
                        str(args.records), "1000", "--fast"], check=True,
                       stdout=subprocess.DEVNULL)
        lines = rc.trail_lines(trail)
        last = int(rc.SEQ.match(lines[-1]).group(1))
        size = sum(len(l) + 1 for l in lines)
        print("trail: %d records, %.1f MB, mean %d bytes" % (
            len(lines), size / 1e6, size // len(lines)))
        print("%-34s %10s %12s" % ("collector / batch", "seconds",
                                   "records/s"))
        for sync, batch in ((True, 256), (True, 2000), (False, 256),
                            (False, 2000)):
            dt, bad = row(args, state, trail, last, sync, batch)
            name = "sync=%s (%s) / %d" % (
                "on" if sync else "off",
                "shipped conf" if sync else "page cache", batch)
            print("%-34s %10.2f %12.0f%s" % (name, dt, len(lines) / dt,
                                            "  BAD: " + bad if bad else ""))
    finally:
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
