"""End-to-end benchmark: requests per second and latency through the whole
stack, every row behind the same nginx in the same run, each reported as a
ratio to the first row, the ceiling:

  ceiling       nginx's TLS front -> proxy_pass to a static upstream (an
                nginx `return 200` server on loopback, in the same nginx)
                answering with the body hssgw gave to the first export: what
                nginx alone costs for the same request and answer, no auth
  status poll   GET /v1/exports/image-baseline/{handle}: JWT, policy, the
                status cache (tasks.status_cache_ttl_s), durable audit; 200
  coalesced     POST of an export identical to one in flight within
                tasks.coalesce_window_ms: JWT, validation, policy, the
                coalescing table, durable audit, no HSS call; 200
  denied        the same export from a group no policy allows: 403, audited
  bad signature a well-formed RS256 token with a wrong signature: 401
  node          with --node: bench/node/gateway.js (fastify + jsonwebtoken
                + undici) behind a TLS front like the ceiling's: the same
                RS256 key, policy file and export, a durable hash-chained
                audit line (group-committed fdatasync), then a proxy to the
                ceiling's static upstream; 200.  Two rows: with a
                verified-token cache (--node-cache, default 4096 like
                hssgw's jwt.cache_entries) and with none.  Skipped, with a
                note on stderr, when node or bench/node/node_modules is
                missing (npm ci --prefix bench/node).

nginx's per-client limit_req is lifted through the template's GW_RATE and
GW_BURST.  Needs wrk (Debian package).  Numbers, never assertions.

usage: python3 bench/e2e.py --bin BUILD/bin --src . [--seconds 10]
       [--connections 32] [--threads N] [--jwt-cache N] [--json]
       [--node [--node-cache N]]
       [--soak [REQUESTS]]   (default 1000000: RSS of hssgw, start and end)
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
import stack as st  # noqa: E402

BODY = {"project": st.PROJECT_ALIAS, "image_type": "private_image",
        "operate_all": True}
TASK_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Sid": "AllowTasksDemo", "Effect": "Allow",
        "Principal": {"jwt:groups": st.ALLOWED_GROUP},
        "Action": ["hss:GetExportTask"],
        "Resource": "hss:*:%s" % st.PROJECT_ALIAS}],
}
CEILING_CONF = """
# bench/e2e.py: the ceiling.  A static upstream answering the export's 200
# and a TLS front proxying to it, in the same nginx as hssgw's front.
server {
	listen 127.0.0.1:%(up)d;
	access_log off;
	location / {
		default_type application/json;
		return 200 '%(body)s';
	}
}
server {
	listen 127.0.0.1:%(front)d ssl;
	ssl_certificate %(cert)s;
	ssl_certificate_key %(key)s;
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_session_cache shared:bench_tls:1m;
	location / {
		proxy_pass http://127.0.0.1:%(up)d;
		proxy_http_version 1.1;
		proxy_set_header Connection "";
	}
}
"""

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
NODE_CONF = """
# bench/e2e.py: the Node.js gateway's TLS front, the ceiling's server with
# the gateway (bench/node/gateway.js, on a unix socket) as its upstream.
server {
	listen 127.0.0.1:%(front)d ssl;
	ssl_certificate %(cert)s;
	ssl_certificate_key %(key)s;
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_session_cache shared:bench_tls:1m;
	client_max_body_size 64k;
	location / {
		proxy_pass http://unix:%(sock)s:;
		proxy_http_version 1.1;
		proxy_set_header Connection "";
		proxy_set_header X-Real-IP $remote_addr;
	}
}
"""


def node_missing():
    """Why the Node rows cannot run, or None."""
    if shutil.which("node") is None:
        return "node not installed (Debian package nodejs)"
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules")):
        return ("bench/node/node_modules missing (npm ci --prefix %s)" %
                NODE_DIR)
    return None


class BenchStack(st.Stack):
    """The integration stack plus task handles, coalescing and an include
    for the ceiling's server blocks."""

    def __init__(self, *a, jwt_cache=None, **kw):
        super().__init__(*a, **kw)
        self.jwt_cache = jwt_cache

    def _configs(self):
        super()._configs()
        if self.jwt_cache is not None:
            self.config["jwt"]["cache_entries"] = self.jwt_cache
        st.write_file(self.path("secrets", "task.key"),
                      os.urandom(32).hex(), 0o600)
        st.write_file(self.path("policies", "tasks.json"),
                      json.dumps(TASK_POLICY))
        if self.threads is None:
            del self.config["threads"]  # hssgw's default
        self.config["tasks"] = {
            "handle_key_file": "secrets/task.key",
            "budget_per_minute": 600,
            "coalesce_window_ms": 3600000,
            "status_cache_ttl_s": 12,
        }
        st.write_file(self.config_path, json.dumps(self.config, indent=1))
        with open(self.path("nginx", "emulator.conf"), "a") as f:
            f.write("\ninclude %s;\n" % self.path("nginx", "ceiling*.conf"))
            f.write("include %s;\n" % self.path("nginx", "node-*.conf"))

    def add_ceiling(self, body):
        """Writes the ceiling's servers, reloads nginx, returns the port."""
        up, front = st.free_port(), st.free_port()
        while front == up:
            front = st.free_port()
        body = body.replace("\\", "\\\\").replace("'", "\\'")
        st.write_file(self.path("nginx", "ceiling.conf"), CEILING_CONF % {
            "up": up, "front": front, "body": body,
            "cert": self.path("tls", "server.pem"),
            "key": self.path("tls", "server.key")})
        self.ceiling_up = up
        self.procs["nginx"].send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.request("POST", st.EXPORT_PATH, "{}", {},
                                port=front).status == 200:
                    return front
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise st.StackError("ceiling not up:\n" +
                                    self.log_tail("nginx"))
            time.sleep(0.05)

    def add_node(self, name, cache, probe):
        """Starts bench/node/gateway.js as `name` (token cache of `cache`
        entries) proxying to the ceiling's upstream, behind its own TLS
        front in this nginx; returns the front's port once `probe` (a
        request through it) answers 200.  Its trail: audit/<name>.jsonl."""
        sock = self.path(name + ".sock")
        self._spawn(name, [
            "node", os.path.join(NODE_DIR, "gateway.js"),
            "--listen", "unix:" + sock,
            "--key", self.path("keys", "idp-rs256.pub.pem"),
            "--kid", "dev-rs256", "--issuer", st.ISSUER,
            "--audience", st.AUDIENCE,
            "--policy", self.path("policies", "demo.json"),
            "--project", "%s=%s" % (st.PROJECT_ALIAS, st.REGION),
            "--upstream", "http://127.0.0.1:%d" % self.ceiling_up,
            "--audit", self.node_audit(name),
            "--leeway", str(self.config["jwt"]["leeway_seconds"]),
            "--cache", str(cache)])
        front = st.free_port()
        st.write_file(self.path("nginx", name + ".conf"), NODE_CONF % {
            "front": front, "sock": sock,
            "cert": self.path("tls", "server.pem"),
            "key": self.path("tls", "server.key")})
        self.procs["nginx"].send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        last = None
        while True:
            if self.procs[name].poll() is not None:
                raise st.StackError("%s exited:\n%s" % (
                    name, self.log_tail(name)))
            try:
                last = probe(front)
                if last.status == 200:
                    return front
            except OSError as e:
                last = e
            if time.monotonic() > deadline:
                raise st.StackError("%s not up: %r\n%s%s" % (
                    name, last, self.log_tail(name),
                    self.log_tail("nginx")))
            time.sleep(0.1)

    def node_audit(self, name):
        return self.path("audit", name + ".jsonl")

    def stop(self):
        for name in [n for n in self.procs if n.startswith("node-")]:
            self._terminate(self.procs.pop(name))
        super().stop()

    def rss_kb(self):
        with open("/proc/%d/status" % self.procs["hssgw"].pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def lua(method, body, headers):
    lines = ['wrk.method = "%s"' % method]
    if body is not None:
        lines.append("wrk.body = %s" % json.dumps(body))
    for k, v in headers.items():
        lines.append("wrk.headers[%s] = %s" % (json.dumps(k), json.dumps(v)))
    f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    f.write("\n".join(lines) + "\n")
    f.close()
    return f.name


def wrk(target, script, seconds, conns):
    out = subprocess.run(["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds,
                          "--latency", "-s", script, target],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors:.*", out)

    def ms(m):
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v
    return {"rps": rps, "p50_ms": ms(p50), "p99_ms": ms(p99),
            "requests": total,
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errs.group(0) if errs else ""}


def url(port, path):
    return "https://127.0.0.1:%d%s" % (port, path)


def bad_signature(token):
    """The same token with its signature's first characters changed: a
    well-formed RS256 token that fails the signature check."""
    h, p, s = token.split(".")
    return ".".join((h, p, ("B" if s[0] == "A" else "A") + s[1:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None,
                    help="hssgw worker threads (default: the config's)")
    ap.add_argument("--jwt-cache", type=int, default=None, metavar="N",
                    help="jwt.cache_entries (default: the config's; 0 "
                    "measures every request verifying in full)")
    ap.add_argument("--json", action="store_true",
                    help="one JSON object per row")
    ap.add_argument("--soak", type=int, nargs="?", const=1000000,
                    default=0, metavar="REQUESTS",
                    help="status polls to send, reporting hssgw's RSS")
    ap.add_argument("--ship", action="store_true",
                    help="then the denied and status rows again with hssgw "
                    "audit ship running into a local rsyslog collector")
    ap.add_argument("--node", action="store_true",
                    help="add the Node.js gateway's rows (bench/node)")
    ap.add_argument("--node-cache", type=int, default=4096, metavar="N",
                    help="the Node gateway's verified-token cache for its "
                    "cached row (default 4096, hssgw's default; 0 runs "
                    "only the uncached row)")
    a = ap.parse_args()
    if a.node and a.soak:
        ap.error("--node and --soak do not go together")
    if not 0 <= a.node_cache <= 1000000:
        ap.error("--node-cache must be 0..1000000")
    if a.node:
        why = node_missing()
        if why is not None:
            print("e2e.py: Node rows skipped: " + why, file=sys.stderr)
            a.node = False
    s = BenchStack(a.bin, a.src, rate=1000000, burst=1000000,
                   timeout_ms=5000, threads=a.threads,
                   jwt_cache=a.jwt_cache)
    s.start()
    try:
        s.emulator_control("tasks", {"delay_ms": 0, "file_bytes": 10})
        tok = s.mint(ttl=7200)
        auth = {"Authorization": "Bearer " + tok}
        first = s.export(BODY, token=tok)
        if first.status != 200:
            raise st.StackError("first export: %r" % first)
        handle = first.json()["handle"]
        ceiling = s.add_ceiling(first.body.decode())
        # Every row is checked once before it is measured: the status it
        # is meant to measure, never an error by accident.
        gw = s.gw_port
        jhdr = {"Content-Type": "application/json"}
        rows = [
            ("ceiling: nginx -> proxy_pass static 200", 200,
             (ceiling, st.EXPORT_PATH), ("POST", json.dumps(BODY), jhdr)),
            ("hssgw: cached status poll (200)", 200,
             (gw, st.EXPORT_PATH + "/" + handle), ("GET", None, auth)),
            ("hssgw: coalesced export (200)", 200, (gw, st.EXPORT_PATH),
             ("POST", json.dumps(BODY), dict(jhdr, **auth))),
            ("hssgw: policy-denied export (403)", 403, (gw, st.EXPORT_PATH),
             ("POST", json.dumps(BODY), dict(jhdr, Authorization="Bearer " +
                                             s.mint(ttl=7200,
                                                    groups=("nobody",))))),
            ("hssgw: bad signature (401)", 401, (gw, st.EXPORT_PATH),
             ("POST", json.dumps(BODY), dict(jhdr, Authorization="Bearer " +
                                             bad_signature(tok)))),
        ]
        nodes = []
        if a.node:
            nodes = add_node_rows(s, a, rows, tok)
        for name, want, (port, path), (method, body, hdr) in rows:
            r = s.request(method, path, body, hdr, port=port)
            if r.status != want:
                raise st.StackError("%s: got %r" % (name, r))
        if a.soak:
            return soak(s, rows[1], a)
        results = []
        for name, want, (port, path), (method, body, hdr) in rows:
            r = wrk(url(port, path), lua(method, body, hdr), a.seconds,
                    a.connections)
            r["name"], r["want"] = name, want
            results.append(r)
        trails = [check_node_trail(s, n) for n in nodes]
        if a.ship:
            trails.append(ship_rows(s, a, rows, results))
    finally:
        s.stop()
    ceil = results[0]["rps"] or 1
    for r in results:
        r["ratio"] = r["rps"] / ceil
    if a.json:
        for r in results:
            print(json.dumps({k: (round(r[k], 3) if isinstance(r[k], float)
                                  else r[k])
                              for k in ("name", "rps", "p50_ms", "p99_ms",
                                        "ratio")}))
        return 0
    print("%-42s %9s %8s %8s %6s %s" % ("row", "req/s", "p50 ms",
                                        "p99 ms", "ratio", "non-2xx"))
    for r in results:
        print("%-42s %9.0f %8.2f %8.2f %6.2f %d %s" % (
            r["name"], r["rps"], r["p50_ms"], r["p99_ms"], r["ratio"],
            r["non2xx"], r["socket_errors"]))
    print("(%d connections, %d s per row, RS256 tokens, hssgw threads: %s, "
          "jwt.cache_entries: %s, durable audit on)" % (
              a.connections, a.seconds, a.threads or "default",
              "default" if a.jwt_cache is None else a.jwt_cache))
    for t in trails:
        print(t)
    return 0


def ship_rows(s, a, rows, results):
    """The status and denied rows again while hssgw audit ship sends the
    trail to a local rsyslog + imrelp (deploy/rsyslog/, sync on); returns
    how far behind the shipper was at the end and how long it took to
    catch up."""
    sys.path.insert(0, os.path.join(a.src, "tests", "integration"))
    import relp_collector as rc
    col = rc.Collector(a.src, s.path("ship-col")).start()
    cfg = dict(s.config)
    cfg["audit"] = dict(cfg["audit"], ship={
        "relp": "127.0.0.1:%d" % col.port,
        "cursor_file": s.path("ship.cursor")})
    cfgp = s.path("ship.json")
    st.write_file(cfgp, json.dumps(cfg))
    s._spawn("ship", [s.hssgw, "audit", "ship", "--config", cfgp])
    try:
        for name, want, (port, path), (method, body, hdr) in rows[1:4:2]:
            r = wrk(url(port, path), lua(method, body, hdr), a.seconds,
                    a.connections)
            r["name"], r["want"] = name + " + ship", want
            results.append(r)
        last = int(rc.SEQ.match(rc.trail_lines(
            s.path("audit", "audit.jsonl"))[-1]).group(1))
        t0 = time.monotonic()
        behind = last - (rc.read_json(s.path("ship.cursor")) or {}).get(
            "seq", 0)
        # >=: hssgw may add a summary record after the last request's.
        while (rc.read_json(s.path("ship.cursor")) or {}).get(
                "seq", 0) < last and time.monotonic() - t0 < 300:
            time.sleep(0.1)
        return ("ship: %d records behind when the load stopped, caught up "
                "%.1f s later (seq %d)" % (behind, time.monotonic() - t0,
                                           last))
    finally:
        s._terminate(s.procs.pop("ship"))
        col.kill()


def add_node_rows(s, a, rows, tok):
    """Starts the Node gateways (one with the token cache, one without),
    appends their rows and checks each refuses what hssgw refuses: a bad
    signature and no token (401), a group no policy allows (403).
    Returns the gateways' names."""
    jhdr = {"Content-Type": "application/json"}
    body = json.dumps(BODY)
    ok = dict(jhdr, Authorization="Bearer " + tok)
    refused = [
        (401, dict(jhdr, Authorization="Bearer " + bad_signature(tok))),
        (401, jhdr),
        (403, dict(jhdr, Authorization="Bearer " +
                   s.mint(ttl=7200, groups=("nobody",)))),
    ]
    gateways = ([("node-cache", a.node_cache,
                  "node: export, token cache (200)")]
                if a.node_cache else [])
    gateways.append(("node-nocache", 0, "node: export, no token cache (200)"))
    names = []
    for name, cache, row in gateways:
        port = s.add_node(name, cache, lambda p: s.request(
            "POST", st.EXPORT_PATH, body, ok, port=p))
        for want, hdr in refused:
            r = s.request("POST", st.EXPORT_PATH, body, hdr, port=port)
            if r.status != want or r.json().get("error_code") is None:
                raise st.StackError("%s: want %d, got %r" % (name, want, r))
        rows.append((row, 200, (port, st.EXPORT_PATH), ("POST", body, ok)))
        names.append(name)
    return names


def check_node_trail(s, name):
    """The Node gateway's trail after its run: `hssgw audit verify` checks
    its chain (the same hashing as hssgw's); returns a one-line summary."""
    s.procs[name].send_signal(signal.SIGTERM)  # flushes and closes
    s.procs[name].wait(timeout=10)
    trail = s.node_audit(name)
    p = subprocess.run([s.hssgw, "audit", "verify", "--no-checkpoint",
                        trail], capture_output=True, text=True)
    with open(trail, "rb") as f:
        n = sum(1 for _ in f)
    if p.returncode != 0:
        raise st.StackError("%s: audit verify: %s%s" % (name, p.stdout,
                                                        p.stderr))
    return "%s: %d audit records, chain intact (hssgw audit verify)" % (
        name, n)


WARMUP = 2


def soak(s, row, a):
    """Sends a.soak status polls in 10 s wrk runs; RSS after the warm-up
    (the first WARMUP runs: 32 threads take about 20 s to bring their
    malloc arenas to size) and at the end, and after every run."""
    name, _, (port, path), (method, body, hdr) = row
    url_ = url(port, path)
    script = lua(method, body, hdr)
    chunk = min(10, a.seconds)
    sent, samples = 0, []
    for _ in range(WARMUP):
        sent += wrk(url_, script, chunk, a.connections)["requests"]
        samples.append(s.rss_kb())
    start_rss = samples[-1]
    while sent < a.soak:
        r = wrk(url_, script, chunk, a.connections)
        sent += r["requests"]
        samples.append(s.rss_kb())
    end_rss = samples[-1]
    out = {"name": "soak: " + name, "requests": sent,
           "rss_start_kb": start_rss, "rss_end_kb": end_rss,
           "rss_max_kb": max(samples[WARMUP - 1:]),
           "rss_growth": round((end_rss - start_rss) / start_rss, 4),
           "rss_samples_kb": samples}
    print(json.dumps(out) if a.json else
          "%s: %d requests, hssgw RSS %d kB after warm-up, %d kB at the "
          "end (max %d kB, growth %.1f%%)" % (
              out["name"], sent, start_rss, end_rss, out["rss_max_kb"],
              100 * out["rss_growth"]) +
          "\nRSS after each 10 s run, kB: %s" % samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
