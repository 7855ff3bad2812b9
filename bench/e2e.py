"""End-to-end benchmark: requests per second and latency through the whole
stack (nginx -> hssgw -> nginx -> hss-emulator) against a baseline measured
in the same run: the same export sent straight to the emulator through
nginx, with the token already injected.  The ratio is what the gateway
costs.  Needs wrk (Debian package).  Numbers, never assertions.

usage: python3 bench/e2e.py --bin BUILD/bin --src . [--seconds 10]
       [--connections 8]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
import stack as st  # noqa: E402


def lua(method, body, headers):
    lines = ['wrk.method = "%s"' % method,
             "wrk.body = %s" % json.dumps(body)]
    for k, v in headers.items():
        lines.append("wrk.headers[%s] = %s" % (json.dumps(k), json.dumps(v)))
    f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    f.write("\n".join(lines) + "\n")
    f.close()
    return f.name


def wrk(url, script, seconds, conns):
    out = subprocess.run(["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds,
                          "--latency", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors:.*", out)

    def ms(m):
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v
    return {"rps": rps, "p50": ms(p50), "p99": ms(p99),
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errs.group(0) if errs else ""}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=8)
    a = ap.parse_args()
    s = st.Stack(a.bin, a.src, threads=4, rate=1000000, burst=1000000,
                 timeout_ms=5000).start()
    try:
        # hssgw's budget (at most 600 exports per minute, HSS's own total
        # per API) keeps exports far below any throughput worth measuring,
        # and the emulator keeps a bounded task store, so every row measures
        # a path that ends in an error by design, the same for every
        # request: the baseline is the emulator answering 401 (no token) to
        # an export behind the same nginx; the gateway rows are a request
        # denied by policy (JWT, validation, policy, a durable audit record)
        # and one rejected at validation.
        export_q = "?enterprise_project_id=0&export_size=1000"
        direct = lua("POST", json.dumps({"image_type": "cicd"}), {
            "Content-Type": "application/json;charset=utf-8",
            "region": st.REGION})
        denied = lua("POST", json.dumps({"project": "demo",
                                         "image_type": "cicd"}), {
            "Content-Type": "application/json",
            "Authorization": "Bearer " + s.mint(ttl=3600,
                                                groups=("nobody",))})
        invalid = lua("POST", json.dumps({"project": "demo",
                                          "image_type": "nope"}), {
            "Content-Type": "application/json",
            "Authorization": "Bearer " + s.mint(ttl=3600)})
        rows = [
            ("baseline: nginx -> emulator: 401", wrk(
                "https://127.0.0.1:%d/v5/%s/image/baseline/export%s" %
                (s.emu_port, st.PROJECT_ID, export_q), direct, a.seconds,
                a.connections)),
            ("nginx -> hssgw: 403, audited", wrk(
                "https://127.0.0.1:%d%s" % (s.gw_port, st.EXPORT_PATH),
                denied, a.seconds, a.connections)),
            ("nginx -> hssgw: 400, audited", wrk(
                "https://127.0.0.1:%d%s" % (s.gw_port, st.EXPORT_PATH),
                invalid, a.seconds, a.connections)),
        ]
    finally:
        s.stop()
    base = rows[0][1]
    print("%-38s %10s %9s %9s %8s %s" % ("path", "req/s", "p50 ms",
                                          "p99 ms", "x rps", "non-2xx"))
    for name, r in rows:
        print("%-38s %10.0f %9.2f %9.2f %8.2f %d %s" % (
            name, r["rps"], r["p50"], r["p99"], r["rps"] / base["rps"],
            r["non2xx"], r["socket_errors"]))
    print("(every row answers an error by design: non-2xx counts every "
          "request)")
    print("(%d connections, %d s each, RS256 tokens, hssgw 4 threads)" %
          (a.connections, a.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
