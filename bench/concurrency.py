"""Concurrency benchmark (issue 21 item 2): answers that wait for nothing
on HSS must never be refused for want of a wait slot (reserve_threads),
however many clients.  Through nginx with wrk, at each of --conns
connections (default 32, 128 and 512), two rows:

  cached status poll  GET /v1/exports/image-baseline/{handle}: JWT,
                      policy, the status cache, durable audit; 200
  coalesced export    POST of an export identical to one HSS accepted
                      within tasks.coalesce_window_ms: JWT, validation,
                      policy, the coalescing table, durable audit; 200

Each row reports requests/s, p99, non-2xx answers and socket errors
(connect, read, write, timeout); a row with any non-2xx or socket error
is INVALID (exit status 1).  hssgw runs with its default threads (32) and
reserve_threads (1) unless --threads says otherwise, the stack of
bench/e2e.py (budget 600 a minute, coalescing window 1 h) and nginx's
per-client limit_req lifted.

usage: python3 bench/concurrency.py --bin BUILD/bin --src .
       [--conns 32,128,512] [--seconds 10] [--threads N] [--json]
Needs wrk (Debian package).  Numbers, never timing assertions.
"""

import argparse
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
import stack as st  # noqa: E402  (on the path through e2e)

# wrk's own timeout: a slow answer at 512 connections on a small machine
# is measured, not counted as a socket error (nginx's fastcgi_read_timeout
# is the stack's real bound).
WRK_TIMEOUT_S = 30


class Stack(e2e.BenchStack):
    """e2e.py's stack with hssgw's own reserve_threads (the integration
    stack turns it off, which would make this benchmark measure nothing)
    and a status cache that outlives the run: at e2e.py's 12 s every
    poller misses at once when it expires, and those are real HSS calls
    (each takes the budget and a wait slot), not cached polls."""

    def _configs(self):
        super()._configs()
        self.config.pop("reserve_threads", None)
        self.config["tasks"]["status_cache_ttl_s"] = 3600
        st.write_file(self.config_path, json.dumps(self.config, indent=1))


def wrk(target, script, seconds, conns):
    """One wrk run; its figures, non-2xx and socket errors."""
    out = subprocess.run(
        ["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds,
         "--timeout", "%ds" % WRK_TIMEOUT_S, "--latency", "-s", script,
         target], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), "
                     r"write (\d+), timeout (\d+)", out)
    v, u = float(p99.group(1)), p99.group(2)
    return {"rps": rps, "requests": total,
            "p99_ms": v / 1000 if u == "us" else v * 1000 if u == "s" else v,
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": sum(int(x) for x in errs.groups()) if errs
            else 0,
            "socket_detail": errs.group(0) if errs else ""}


def busy_503(s):
    """hssgw_requests_total of 503 HSSGW.0305 answers, every route."""
    r = s.request("GET", "/metrics")
    n = 0
    for line in r.body.decode().splitlines():
        if line.startswith("hssgw_requests_total{") and \
                'code="HSSGW.0305"' in line:
            n += int(float(line.rsplit(" ", 1)[1]))
    return n


def why(s, r):
    """For an invalid row: nginx's distinct error lines (stderr)."""
    try:
        with open(s.path("logs", "error.log")) as f:
            lines = f.read().splitlines()
    except OSError:
        return
    seen = {}
    for line in lines:
        key = re.sub(r"^\S+ \S+ |\*\d+ |client: .*", "", line)[:160]
        seen[key] = seen.get(key, 0) + 1
    print("%s at %d: nginx error.log:" % (r["name"], r["conns"]),
          file=sys.stderr)
    for k, n in sorted(seen.items(), key=lambda kv: -kv[1])[:8]:
        print("  %6d x %s" % (n, k), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--conns", default="32,128,512",
                    help="comma-separated connection counts")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None,
                    help="hssgw worker threads (default: the config's)")
    ap.add_argument("--json", action="store_true",
                    help="one JSON object per row")
    a = ap.parse_args()
    conns = [int(c) for c in a.conns.split(",") if c.strip()]
    if not conns or min(conns) < 1 or max(conns) > 4096:
        ap.error("--conns: 1..4096 each")
    s = Stack(a.bin, a.src, rate=1000000, burst=1000000, timeout_ms=5000,
              threads=a.threads)
    s.start()
    results = []
    try:
        tok = s.mint(ttl=7200)
        auth = {"Authorization": "Bearer " + tok}
        first = s.export(e2e.BODY, token=tok)
        if first.status != 200:
            raise st.StackError("first export: %r" % first)
        handle = first.json()["handle"]
        body = json.dumps(e2e.BODY)
        rows = [
            ("cached status poll", st.EXPORT_PATH + "/" + handle,
             e2e.lua("GET", None, auth)),
            ("coalesced export", st.EXPORT_PATH,
             e2e.lua("POST", body, dict(auth, **{
                 "Content-Type": "application/json"}))),
        ]
        # Checked before: the status each row is meant to measure (the
        # first poll fills the status cache).
        s.request("GET", rows[0][1], None, auth)
        r = s.request("GET", rows[0][1], None, auth)
        if r.status != 200 or r.header("X-Hssgw-Cache") != "hit":
            raise st.StackError("status poll: %r" % r)
        r = s.export(e2e.BODY, token=tok)
        if r.status != 200 or r.header("X-Hssgw-Coalesced") != "true":
            raise st.StackError("coalesced export: %r" % r)
        for c in conns:
            for name, path, script in rows:
                before = busy_503(s)
                r = wrk(e2e.url(s.gw_port, path), script, a.seconds, c)
                r["busy_503"] = busy_503(s) - before
                r["name"], r["conns"] = name, c
                r["valid"] = r["non2xx"] == 0 and r["socket_errors"] == 0
                results.append(r)
                if not r["valid"]:
                    why(s, r)
    finally:
        s.stop()
    keys = ("name", "conns", "rps", "p99_ms", "requests", "non2xx",
            "busy_503", "socket_errors", "valid")
    if a.json:
        for r in results:
            print(json.dumps({k: (round(r[k], 2) if isinstance(r[k], float)
                                  else r[k]) for k in keys}))
    else:
        print("%-20s %6s %9s %9s %9s %7s %6s %7s %s" % (
            "row", "conns", "req/s", "p99 ms", "requests", "non-2xx",
            "0305", "sockerr", "valid"))
        for r in results:
            print("%-20s %6d %9.0f %9.2f %9d %7d %6d %7d %s" % (
                r["name"], r["conns"], r["rps"], r["p99_ms"],
                r["requests"], r["non2xx"], r["busy_503"],
                r["socket_errors"], "yes" if r["valid"] else
                "INVALID " + r["socket_detail"]))
        print("(%d s per row, wrk -t2, hssgw threads: %s, durable audit "
              "on)" % (a.seconds, a.threads or "default"))
    return 0 if all(r["valid"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
