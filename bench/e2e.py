"""End-to-end benchmark: requests per second and latency through the whole
stack, every row behind the same nginx in the same run, each reported as a
ratio to the ceiling measured at the same connection count.  Rows, by the
key --only takes:

  ceiling    ceiling (keepalive TLS upstream): nginx's TLS front -> an
             `upstream` block (keepalive 64, proxy_http_version 1.1,
             Connection "", proxy_ssl_session_reuse on, the certificate
             checked against the stack's CA) -> a static TLS server in the
             same nginx answering `return 200` with the body hssgw gave to
             the first export; no auth.  A kept-alive TLS connection is how
             hssgw reaches HSS, so this is what a proxy in hssgw's place
             costs at best.
  poll       hssgw: GET /v1/exports/image-baseline/{handle}: JWT, policy,
             the status cache (a hit, checked before), durable audit; 200
  coalesced  hssgw: POST of an export identical to one in flight within
             tasks.coalesce_window_ms: JWT, validation, policy, the
             coalescing table, durable audit, no HSS call; 200
  denied     hssgw: the same export from a group no policy allows;
             expected 403, audited
  badsig     hssgw: a well-formed RS256 token with a wrong signature;
             expected 401
  haproxy    HAProxy 2.6 (Debian's haproxy) on loopback behind a TLS front
             like the ceiling's (an nginx upstream block with keepalive 64
             to it).  On every request, from its generated configuration:
             the bearer token (http_auth_bearer), its header's alg
             (jwt_header_query) must be RS256, jwt_verify with the RS256
             public key hssgw trusts (exported as PEM at run time) must
             answer 1, then aud, exp against date() with hssgw's leeway and
             the groups claim (one of its first 8 entries must be the
             allowed group) from the payload (jwt_payload_query); 401 or
             403 otherwise.  Then a static X-Auth-Token and a kept-alive
             TLS connection (http-reuse always, certificate checked) to the
             ceiling's static server; 200.  No cache of verified tokens:
             HAProxy has none, which is what the row measures.  Skipped with
             a note on stderr when haproxy is not installed, or --no-haproxy.
  newconn    nginx, new upstream connection per request (plain HTTP): the
             TLS front -> proxy_pass to a plain-HTTP port of the static
             server without an upstream block (the ceiling before issue 23).
  node-cache, node-nocache
             with --node: bench/node/gateway.js (fastify + jsonwebtoken +
             undici) behind a TLS front like the ceiling's (keepalive 64 to
             its unix socket): the same RS256 key, policy file and export, a
             durable hash-chained audit line (group-committed fdatasync),
             then the export through a kept-alive TLS pool to the ceiling's
             static server; 200.  With a verified-token cache (--node-cache,
             default 4096 like hssgw's jwt.cache_entries) and with none.
             Skipped, with a note on stderr, when node or
             bench/node/node_modules is missing (npm ci --prefix bench/node).

Validity: wrk's Lua script counts every answer whose status is not the
row's expected one (200, or 403 and 401 for denied and badsig), and wrk
reports socket errors (connect, read, write, timeout).  A row with any of
either, or with no request completed, is INVALID: its req/s, latency and
ratio are not printed (null in --json), "INVALID (n non-2xx, m socket
errors)" (or "n not 403") is, and the script exits 1.  An error answer is
usually cheaper than the real one, so a throughput counting them says
nothing about the work the row names.

nginx's per-client limit_req is lifted through the template's GW_RATE and
GW_BURST.  Needs wrk (Debian package).  Numbers, never assertions.

usage: python3 bench/e2e.py --bin BUILD/bin --src . [--seconds 10]
       [--connections 32[,128,...]] [--only KEY[,KEY...]] [--no-haproxy]
       [--threads N] [--jwt-cache N] [--json] [--perf]
       [--node [--node-cache N]] [--ship]
       [--soak [REQUESTS]]   (default 1000000: RSS of hssgw, start and end)
"""

import argparse
import base64
import json
import os
import re
import secrets
import shlex
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
# Every row's key, in the order they run at each connection count.
ROW_KEYS = ("ceiling", "poll", "coalesced", "denied", "badsig", "haproxy",
            "newconn", "node-cache", "node-nocache")
# wrk's own timeout: a slow answer at hundreds of connections on a small
# machine is measured, not counted as a socket error (bench/concurrency.py
# does the same; nginx's fastcgi_read_timeout is the stack's real bound).
WRK_TIMEOUT_S = 30
# How many entries of the groups claim HAProxy looks at: its json_query
# answers nothing for an array, only for one element at a time.
HAPROXY_GROUPS = 8
# The front every proxied row shares: TLS as hssgw's, and the access log
# of the template's http block, as hssgw's front has.
TLS_FRONT = """	listen 127.0.0.1:%(front)d ssl;
	ssl_certificate %(cert)s;
	ssl_certificate_key %(key)s;
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_session_cache shared:bench_tls:1m;
	client_max_body_size 64k;
"""
KEEPALIVE_PROXY = """		proxy_http_version 1.1;
		proxy_set_header Connection "";
"""
# Every kept-alive upstream: 64 idle connections, the ceiling's.
UPSTREAM = """upstream %s {
	server %s;
	keepalive 64;
}
"""
CEILING_CONF = """
# bench/e2e.py: the ceilings.  A static server answering the export's 200
# over TLS (and over plain HTTP for the new-connection row), and TLS
# fronts proxying to it, in the same nginx as hssgw's front.  The static
# server echoes the X-Auth-Token it was sent (HAProxy's row sets one), so
# the bench can check the header arrived.
server {
	listen 127.0.0.1:%(up)d ssl;
	listen 127.0.0.1:%(plain)d;
	ssl_certificate %(cert)s;
	ssl_certificate_key %(key)s;
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_session_cache shared:bench_up:1m;
	access_log off;
	location / {
		default_type application/json;
		add_header X-Bench-Saw-Token $http_x_auth_token;
		return 200 '%(body)s';
	}
}
%(upstream)sserver {
%(tls_ceiling)s	location / {
		proxy_pass https://bench_static;
%(keepalive)s		proxy_ssl_session_reuse on;
		proxy_ssl_verify on;
		proxy_ssl_trusted_certificate %(ca)s;
		proxy_ssl_name localhost;
		proxy_ssl_server_name on;
	}
}
server {
%(tls_newconn)s	location / {
		proxy_pass http://127.0.0.1:%(plain)d;
%(keepalive)s	}
}
"""
HAPROXY_FRONT_CONF = """
# bench/e2e.py: HAProxy's TLS front, the ceiling's with HAProxy (plain
# HTTP on loopback) as its kept-alive upstream.
%(upstream)sserver {
%(tls)s	location / {
		proxy_pass http://bench_haproxy;
%(keepalive)s	}
}
"""

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
NODE_CONF = """
# bench/e2e.py: the Node.js gateway's TLS front, the ceiling's server with
# the gateway (bench/node/gateway.js, on a unix socket) as its kept-alive
# upstream.
%(upstream)sserver {
%(tls)s	location / {
		proxy_pass http://bench_%(name)s;
%(keepalive)s		proxy_set_header X-Real-IP $remote_addr;
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


def haproxy_missing():
    """Why the HAProxy row cannot run, or None."""
    if shutil.which("haproxy") is None:
        return ("haproxy not installed (Debian package haproxy; "
                "bench/run.sh installs it)")
    return None


def haproxy_config(port, up, ca, pubkey, token, leeway):
    """HAProxy's configuration for the haproxy row: listens on
    127.0.0.1:port, checks the bearer token on every request as the
    module docstring says, proxies to the static TLS server at up."""
    for p in (ca, pubkey):
        if re.search(r"[\s\"'\\]", p):
            raise st.StackError("path unfit for haproxy.cfg: %r" % p)
    grp = "\n".join(
        "\tacl allowed_group var(txn.bearer),jwt_payload_query("
        "'$.groups[%d]') "
        "-m str %s" % (i, st.ALLOWED_GROUP) for i in range(HAPROXY_GROUPS))
    return """# bench/e2e.py: the haproxy row (generated at run time).
global
	maxconn 8192

defaults
	mode http
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	timeout http-request 10s
	timeout http-keep-alive 60s

frontend bench_jwt
	bind 127.0.0.1:%(port)d
	http-request set-var(txn.bearer) http_auth_bearer
	http-request deny deny_status 401 unless { var(txn.bearer) -m found }
	http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
	http-request deny deny_status 401 unless { var(txn.alg) -m str RS256 }
	http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"%(pubkey)s") -m int 1 }
	http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('$.aud') -m str %(aud)s }
	http-request set-var(txn.now) date
	http-request set-var(txn.ttl) var(txn.bearer),jwt_payload_query('$.exp','int'),add(%(leeway)d),sub(txn.now)
	http-request deny deny_status 401 unless { var(txn.ttl) -m int ge 0 }
%(groups)s
	http-request deny deny_status 403 unless allowed_group
	http-request del-header Authorization
	http-request set-header X-Auth-Token %(token)s
	default_backend bench_static

backend bench_static
	http-reuse always
	server static 127.0.0.1:%(up)d ssl verify required ca-file %(ca)s sni str(localhost) verifyhost localhost
""" % {"port": port, "up": up, "ca": ca, "pubkey": pubkey, "token": token,
       "leeway": leeway, "aud": st.AUDIENCE, "groups": grp}


class BenchStack(st.Stack):
    """The integration stack plus task handles, coalescing and an include
    for the ceilings' and the peers' server blocks."""

    def __init__(self, *a, jwt_cache=None, **kw):
        super().__init__(*a, **kw)
        self.jwt_cache = jwt_cache
        self.ports = {}

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
        # The status cache outlives the run: at 12 s every poller missed at
        # once on expiry, and those are real HSS calls, not cached polls.
        self.config["tasks"] = {
            "handle_key_file": "secrets/task.key",
            "budget_per_minute": 600,
            "coalesce_window_ms": 3600000,
            "status_cache_ttl_s": 3600,
        }
        st.write_file(self.config_path, json.dumps(self.config, indent=1))
        with open(self.path("nginx", "emulator.conf"), "a") as f:
            f.write("\ninclude %s;\n" % self.path("nginx", "ceiling*.conf"))
            f.write("include %s;\n" % self.path("nginx", "node-*.conf"))
        os.makedirs(self.path("bench"), mode=0o700, exist_ok=True)

    def tls_front(self, port):
        return TLS_FRONT % {"front": port,
                            "cert": self.path("tls", "server.pem"),
                            "key": self.path("tls", "server.key")}

    def new_ports(self, *names):
        """A distinct free loopback port for each name, in self.ports."""
        taken = set(self.ports.values())
        for n in names:
            p = st.free_port()
            while p in taken:
                p = st.free_port()
            taken.add(p)
            self.ports[n] = p

    def reload_until(self, probe, what, proc=None, timeout=20, hup=True):
        """SIGHUP to nginx (unless not hup), then probe() until it answers
        200 (returns it); raises quoting the logs after timeout s or if
        proc exits."""
        if hup:
            self.procs["nginx"].send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if proc is not None and self.procs[proc].poll() is not None:
                raise st.StackError("%s exited:\n%s" % (
                    proc, self.log_tail(proc)))
            try:
                last = probe()
                if last.status == 200:
                    return last
            except OSError as e:
                last = e
            if time.monotonic() > deadline:
                raise st.StackError("%s not up: %r\n%s%s" % (
                    what, last, self.log_tail(proc or "nginx"),
                    self.log_tail("nginx")))
            time.sleep(0.1)

    def add_ceiling(self, body):
        """Writes the static server and the two ceiling fronts, reloads
        nginx; returns the ceiling front's port (self.ports has the
        others: static TLS "up", "plain", "newconn")."""
        self.new_ports("up", "plain", "ceiling", "newconn")
        body = body.replace("\\", "\\\\").replace("'", "\\'")
        st.write_file(self.path("nginx", "ceiling.conf"), CEILING_CONF % {
            "up": self.ports["up"], "plain": self.ports["plain"],
            "body": body, "ca": self.ca, "keepalive": KEEPALIVE_PROXY,
            "upstream": UPSTREAM % ("bench_static",
                                    "127.0.0.1:%d" % self.ports["up"]),
            "tls_ceiling": self.tls_front(self.ports["ceiling"]),
            "tls_newconn": self.tls_front(self.ports["newconn"]),
            "cert": self.path("tls", "server.pem"),
            "key": self.path("tls", "server.key")})
        for key in ("ceiling", "newconn"):
            self.reload_until(lambda: self.request(
                "POST", st.EXPORT_PATH, "{}", {}, port=self.ports[key]), key,
                hup=key == "ceiling")
        return self.ports["ceiling"]

    def add_haproxy(self, probe):
        """Exports the RS256 public key hssgw trusts as PEM, generates and
        checks (haproxy -c) HAProxy's configuration, starts it and its
        TLS front; returns the front's port once probe(port) answers 200.
        The upstream token it sets is self.haproxy_token."""
        self.new_ports("hap", "haproxy")
        key = next(k for k in self.config["jwt"]["issuers"][0]["keys"]
                   if k["alg"] == "RS256")
        pub = self.path("bench", "haproxy-rs256.pub.pem")
        st.run(["openssl", "pkey", "-pubin", "-in", self.path(key["file"]),
                "-out", pub])
        self.haproxy_token = "MIIT" + secrets.token_urlsafe(32)
        cfg = self.path("bench", "haproxy.cfg")
        st.write_file(cfg, haproxy_config(
            self.ports["hap"], self.ports["up"], self.ca, pub,
            self.haproxy_token, self.config["jwt"]["leeway_seconds"]),
            0o600)
        p = subprocess.run(["haproxy", "-c", "-f", cfg],
                           capture_output=True, text=True)
        if p.returncode != 0 or "WARNING" in p.stdout + p.stderr:
            raise st.StackError("haproxy -c -f %s: %s%s" % (
                cfg, p.stdout, p.stderr))
        self._spawn("haproxy", ["haproxy", "-db", "-f", cfg])
        st.write_file(self.path("nginx", "ceiling-haproxy.conf"),
                      HAPROXY_FRONT_CONF % {
                          "upstream": UPSTREAM % (
                              "bench_haproxy",
                              "127.0.0.1:%d" % self.ports["hap"]),
                          "tls": self.tls_front(self.ports["haproxy"]),
                          "keepalive": KEEPALIVE_PROXY})
        self.reload_until(lambda: probe(self.ports["haproxy"]), "haproxy",
                          proc="haproxy")
        return self.ports["haproxy"]

    def add_node(self, name, cache, probe):
        """Starts bench/node/gateway.js as `name` (token cache of `cache`
        entries) proxying to the ceiling's static TLS server, behind its
        own TLS front in this nginx; returns the front's port once `probe`
        (a request through it) answers 200.  Its trail:
        audit/<name>.jsonl."""
        sock = self.path(name + ".sock")
        self._spawn(name, [
            "node", os.path.join(NODE_DIR, "gateway.js"),
            "--listen", "unix:" + sock,
            "--key", self.path("keys", "idp-rs256.pub.pem"),
            "--kid", "dev-rs256", "--issuer", st.ISSUER,
            "--audience", st.AUDIENCE,
            "--policy", self.path("policies", "demo.json"),
            "--project", "%s=%s" % (st.PROJECT_ALIAS, st.REGION),
            "--upstream", "https://127.0.0.1:%d" % self.ports["up"],
            "--ca", self.ca,
            "--audit", self.node_audit(name),
            "--leeway", str(self.config["jwt"]["leeway_seconds"]),
            "--cache", str(cache)])
        self.new_ports(name)
        st.write_file(self.path("nginx", name + ".conf"), NODE_CONF % {
            "name": name, "keepalive": KEEPALIVE_PROXY,
            "upstream": UPSTREAM % ("bench_" + name, "unix:" + sock),
            "tls": self.tls_front(self.ports[name])})
        self.reload_until(lambda: probe(self.ports[name]), name, proc=name)
        return self.ports[name]

    def node_audit(self, name):
        return self.path("audit", name + ".jsonl")

    def stop(self):
        for name in [n for n in self.procs
                     if n.startswith("node-") or n == "haproxy"]:
            self._terminate(self.procs.pop(name))
        super().stop()

    def rss_kb(self):
        with open("/proc/%d/status" % self.procs["hssgw"].pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


# The status check each thread makes per response, summed over the
# threads when wrk is done (thread:get copies each thread's globals).
LUA_CHECK = """
local want = %d
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) unexpected = 0; statuses = {} end
function response(status, headers, body)
	if status ~= want then
		unexpected = unexpected + 1
		statuses[status] = (statuses[status] or 0) + 1
	end
end
function done(summary, latency, requests)
	local n, seen = 0, {}
	for _, t in ipairs(threads) do
		n = n + t:get("unexpected")
		for s, c in pairs(t:get("statuses")) do seen[s] = (seen[s] or 0) + c end
	end
	io.write(string.format("bench-unexpected: %%d\\n", n))
	for s, c in pairs(seen) do
		io.write(string.format("bench-status: %%d %%d\\n", s, c))
	end
end
"""


def lua(method, body, headers, want=None, where=None):
    """A wrk script sending one request; with want, it also counts the
    answers whose status is not want (wrk() reads the count).  Written
    into the directory where (a temp file by default); returns its path."""
    lines = ['wrk.method = "%s"' % method]
    if body is not None:
        lines.append("wrk.body = %s" % json.dumps(body))
    for k, v in headers.items():
        lines.append("wrk.headers[%s] = %s" % (json.dumps(k), json.dumps(v)))
    text = "\n".join(lines) + "\n"
    if want is not None:
        text += LUA_CHECK % want
    f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False,
                                    dir=where)
    f.write(text)
    f.close()
    return f.name


def parse_wrk(out):
    """wrk's figures from its output (with --latency, and a LUA_CHECK
    script's lines when it had one: unexpected is None without)."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = re.search(r"\s50%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), "
                     r"write (\d+), timeout (\d+)", out)
    unexp = re.search(r"^bench-unexpected: (\d+)$", out, re.M)

    def ms(m):
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v
    return {"rps": rps, "p50_ms": ms(p50), "p99_ms": ms(p99),
            "requests": total,
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": sum(int(x) for x in errs.groups()) if errs
            else 0,
            "socket_detail": errs.group(0) if errs else "",
            "unexpected": int(unexp.group(1)) if unexp else None,
            "statuses": {s: int(c) for s, c in re.findall(
                r"^bench-status: (\d+) (\d+)$", out, re.M)}}


def wrk(target, script, seconds, conns):
    """One wrk -t2 run; its figures (parse_wrk)."""
    out = subprocess.run(["wrk", "-t2", "-c%d" % conns, "-d%ds" % seconds,
                          "--timeout", "%ds" % WRK_TIMEOUT_S, "--latency",
                          "-s", script, target],
                         capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def judge(r):
    """Sets r["valid"] and, for an invalid row, r["invalid"]: the rule of
    the module docstring.  r needs want and parse_wrk's figures."""
    if r["unexpected"] is None:
        raise st.StackError("%s: wrk printed no status count" % r["name"])
    bad = r["unexpected"]
    if r["want"] == 200:
        bad = max(bad, r["non2xx"])
        what = "non-2xx"
    else:
        what = "not %d" % r["want"]
    r["valid"] = bad == 0 and r["socket_errors"] == 0 and r["requests"] > 0
    r["invalid"] = None
    if r["requests"] == 0:
        r["invalid"] = "INVALID (no request completed, %d socket errors)" % (
            r["socket_errors"])
    elif not r["valid"]:
        r["invalid"] = "INVALID (%d %s, %d socket errors)" % (
            bad, what, r["socket_errors"])
    return r


def ratios(results):
    """Each valid row's req/s over the valid ceiling's at the same
    connection count (None without one)."""
    ceil = {r["conns"]: r["rps"] for r in results
            if r["key"] == "ceiling" and r["valid"] and r["rps"] > 0}
    for r in results:
        c = ceil.get(r["conns"])
        r["ratio"] = r["rps"] / c if r["valid"] and c else None


def url(port, path):
    return "https://127.0.0.1:%d%s" % (port, path)


def bad_signature(token):
    """The same token with its signature's first characters changed: a
    well-formed RS256 token that fails the signature check."""
    h, p, s = token.split(".")
    return ".".join((h, p, ("B" if s[0] == "A" else "A") + s[1:]))


def rs256_token(key, claims, kid="dev-rs256"):
    """An RS256 JWT over exactly these claims, signed with the openssl
    CLI (mint-token sets exp itself; the expired control needs its own)."""
    signing = (st.b64url(json.dumps({"alg": "RS256", "typ": "JWT",
                                     "kid": kid}).encode()) + "." +
               st.b64url(json.dumps(claims).encode()))
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                         input=signing.encode(), capture_output=True,
                         check=True).stdout
    return signing + "." + base64.urlsafe_b64encode(sig).rstrip(
        b"=").decode()


class Row:
    """One measured row: what to send where and the status it expects."""

    def __init__(self, key, name, want, port, path, method, body, headers,
                 header=None):
        self.key, self.name, self.want = key, name, want
        self.port, self.path = port, path
        self.method, self.body, self.headers = method, body, headers
        self.header = header  # (name, value) the answer must carry
        self.script = None

    def send(self, s):
        return s.request(self.method, self.path, self.body, self.headers,
                         port=self.port)

    def check(self, s):
        """Twice (the first poll fills the status cache): the status, and
        the header, the row is meant to measure; raises otherwise."""
        for _ in range(2):
            r = self.send(s)
        if r.status != self.want or (
                self.header is not None and
                r.header(self.header[0]) != self.header[1]):
            raise st.StackError("%s: got %r %r" % (self.name, r, r.headers))


def parse_args(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--seconds", type=int, default=10,
                    help="seconds per row and round")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the rows this many times, taking turns, "
                    "and merge each row's rounds (default 1)")
    ap.add_argument("--connections", default="32", metavar="N[,N...]",
                    help="wrk connections; every row runs at each")
    ap.add_argument("--only", default=None, metavar="KEY[,KEY...]",
                    help="run only these rows: " + ", ".join(ROW_KEYS) +
                    " (node: both node rows)")
    ap.add_argument("--no-haproxy", action="store_true",
                    help="leave out the HAProxy row")
    ap.add_argument("--perf", action="store_true",
                    help="perf record -g -a during hssgw's cached-poll "
                    "row, then perf report")
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
    a = ap.parse_args(argv)
    try:
        a.connections = [int(c) for c in a.connections.split(",")]
    except ValueError:
        ap.error("--connections: a comma-separated list of numbers")
    if not 1 <= min(a.connections) <= max(a.connections) <= 4096:
        ap.error("--connections: 1..4096 each")
    if not 1 <= a.seconds <= 3600:
        ap.error("--seconds must be 1..3600")
    if not 1 <= a.rounds <= 100:
        ap.error("--rounds must be 1..100")
    if a.node and a.soak:
        ap.error("--node and --soak do not go together")
    if not 0 <= a.node_cache <= 1000000:
        ap.error("--node-cache must be 0..1000000")
    a.keys = list(ROW_KEYS)
    if a.only is not None:
        want = [w.strip() for w in a.only.split(",") if w.strip()]
        bad = [w for w in want if w not in ROW_KEYS and w != "node"]
        if bad or not want:
            ap.error("--only: unknown row %s (rows: %s)" % (
                ",".join(bad), ", ".join(ROW_KEYS)))
        if any(w.startswith("node") for w in want) and not a.node:
            ap.error("--only names a node row: add --node")
        a.keys = [k for k in ROW_KEYS if k in want or
                  ("node" in want and k.startswith("node-"))]
    if a.no_haproxy and "haproxy" in a.keys:
        a.keys.remove("haproxy")
    if not a.node or not a.node_cache:
        a.keys = [k for k in a.keys if k != "node-cache"]
    if not a.node:
        a.keys = [k for k in a.keys if k != "node-nocache"]
    return ap, a


def main():
    ap, a = parse_args()
    skip = []
    if a.node and node_missing() is not None:
        skip.append(("node-", "Node rows", node_missing()))
    if "haproxy" in a.keys and haproxy_missing() is not None:
        skip.append(("haproxy", "HAProxy row", haproxy_missing()))
    for prefix, what, why in skip:
        print("e2e.py: %s skipped: %s" % (what, why), file=sys.stderr)
        a.keys = [k for k in a.keys if not k.startswith(prefix)]
    if a.perf and shutil.which("perf") is None:
        print("e2e.py: --perf skipped: perf not installed (Debian package "
              "linux-perf)", file=sys.stderr)
        a.perf = False
    s = BenchStack(a.bin, a.src, rate=1000000, burst=1000000,
                   timeout_ms=5000, threads=a.threads,
                   jwt_cache=a.jwt_cache)
    s.start()
    perf = []
    try:
        s.emulator_control("tasks", {"delay_ms": 0, "file_bytes": 10})
        tok = s.mint(ttl=7200)
        first = s.export(BODY, token=tok)
        if first.status != 200:
            raise st.StackError("first export: %r" % first)
        s.add_ceiling(first.body.decode())
        if a.soak:
            row = hssgw_rows(s, tok, first)[0]
            row.check(s)
            return soak(s, row, a)
        rows = make_rows(s, a, tok, first)
        nodes = [r.key for r in rows if r.key.startswith("node-")]
        # Every row is checked once before it is measured: the status it
        # is meant to measure, never an error by accident.
        for row in rows:
            row.check(s)
            row.script = lua(row.method, row.body, row.headers, row.want,
                             s.path("bench"))
        results = measure(s, a, rows, perf)
        trails = [check_node_trail(s, n) for n in nodes]
        if a.ship:
            trails.append(ship_rows(s, a, hssgw_rows(s, tok, first),
                                    results))
    finally:
        s.stop()
    ratios(results)
    report(a, results, trails, perf)
    return 0 if all(r["valid"] for r in results) else 1


def hssgw_rows(s, tok, first):
    """hssgw's rows (keys poll, coalesced, denied, badsig)."""
    gw, body = s.gw_port, json.dumps(BODY)
    jhdr = {"Content-Type": "application/json"}
    auth = {"Authorization": "Bearer " + tok}
    handle = first.json()["handle"]
    denied = s.mint(ttl=7200, groups=("nobody",))
    return [
        Row("poll", "hssgw: cached status poll (200)", 200, gw,
            st.EXPORT_PATH + "/" + handle, "GET", None, auth,
            ("X-Hssgw-Cache", "hit")),
        Row("coalesced", "hssgw: coalesced export (200)", 200, gw,
            st.EXPORT_PATH, "POST", body, dict(jhdr, **auth),
            ("X-Hssgw-Coalesced", "true")),
        Row("denied", "hssgw: policy-denied export (expected 403)", 403, gw,
            st.EXPORT_PATH, "POST", body,
            dict(jhdr, Authorization="Bearer " + denied)),
        Row("badsig", "hssgw: bad signature (expected 401)", 401, gw,
            st.EXPORT_PATH, "POST", body,
            dict(jhdr, Authorization="Bearer " + bad_signature(tok))),
    ]


def make_rows(s, a, tok, first):
    """The selected rows (a.keys), in ROW_KEYS order, their peers
    (HAProxy, Node) started and checked."""
    body = json.dumps(BODY)
    jhdr = {"Content-Type": "application/json"}
    ok = dict(jhdr, Authorization="Bearer " + tok)
    rows = [
        Row("ceiling", "ceiling (keepalive TLS upstream)", 200,
            s.ports["ceiling"], st.EXPORT_PATH, "POST", body, jhdr),
        Row("newconn", "nginx, new upstream connection per request "
            "(plain HTTP)", 200, s.ports["newconn"], st.EXPORT_PATH,
            "POST", body, jhdr),
    ] + hssgw_rows(s, tok, first)
    if "haproxy" in a.keys:
        port = add_haproxy_row(s, tok, first.body)
        rows.append(Row("haproxy", "haproxy: RS256 JWT checked on every "
                        "request (200)", 200, port, st.EXPORT_PATH, "POST",
                        body, ok, ("X-Bench-Saw-Token", s.haproxy_token)))
    if any(k.startswith("node-") for k in a.keys):
        rows += add_node_rows(s, a, tok)
    rows = [r for r in rows if r.key in a.keys]
    return sorted(rows, key=lambda r: ROW_KEYS.index(r.key))


def measure(s, a, rows, perf):
    """Every row at each connection count, --rounds times, the rows taking
    turns (round 1 of every row, then round 2, ...), so that a machine
    whose speed drifts over seconds (a shared host) slows every row alike
    and the ratios stay fair; each row's rounds are then merged (merge).
    The --perf record of the cached-poll row's first round goes into perf
    (its report's first 60 lines)."""
    results = []
    for c in a.connections:
        runs = {row.key: [] for row in rows}
        for rnd in range(a.rounds):
            for row in rows:
                rec = None
                if a.perf and row.key == "poll" and rnd == 0:
                    rec = perf_start(s.path("bench",
                                            "perf-poll-c%d.data" % c))
                before = audit_counts(s) if row.key in HSSGW_ROWS else None
                r = wrk(url(row.port, row.path), row.script, a.seconds, c)
                if rec is not None:
                    perf.append(perf_stop(rec, row.name, c,
                                          s.procs["hssgw"].pid))
                if before is not None:
                    r["audit"] = audit_delta(before, audit_counts(s))
                runs[row.key].append(r)
        for row in rows:
            r = merge(runs[row.key])
            r.update(key=row.key, name=row.name, want=row.want, conns=c)
            results.append(judge(r))
    return results


def merge(runs):
    """One row's rounds as one: requests, statuses and errors summed,
    req/s their mean (the rounds last alike), p50 the median round's and
    p99 the worst round's (a bound, not an average); each round's req/s
    kept (rounds_rps)."""
    if len(runs) == 1:
        r = dict(runs[0])
        r["rounds_rps"] = [r["rps"]]
        r["rounds_p99_ms"] = [r["p99_ms"]]
        return r
    out = {"rps": sum(r["rps"] for r in runs) / len(runs),
           "p50_ms": sorted(r["p50_ms"] for r in runs)[len(runs) // 2],
           "p99_ms": max(r["p99_ms"] for r in runs),
           "rounds_rps": [r["rps"] for r in runs],
           "rounds_p99_ms": [r["p99_ms"] for r in runs]}
    for k in ("requests", "non2xx", "socket_errors"):
        out[k] = sum(r[k] for r in runs)
    out["socket_detail"] = "; ".join(r["socket_detail"] for r in runs
                                     if r["socket_errors"])
    out["unexpected"] = (None if any(r["unexpected"] is None for r in runs)
                         else sum(r["unexpected"] for r in runs))
    out["statuses"] = {}
    for r in runs:
        for code, n in r["statuses"].items():
            out["statuses"][code] = out["statuses"].get(code, 0) + n
    if any("audit" in r for r in runs):
        rec = sum(r["audit"]["records"] for r in runs if "audit" in r)
        syncs = sum(r["audit"]["syncs"] for r in runs if "audit" in r)
        ms = sum((r["audit"]["sync_ms"] or 0) * r["audit"]["syncs"]
                 for r in runs if "audit" in r)
        out["audit"] = {"records": rec, "syncs": syncs,
                        "batch": rec / syncs if syncs else None,
                        "sync_ms": ms / syncs if syncs else None}
    return out


HSSGW_ROWS = ("poll", "coalesced", "denied", "badsig")


def audit_counts(s):
    """hssgw's durable records, fdatasyncs and their total seconds, from
    /metrics (hssgw_audit_records_total and the
    hssgw_audit_sync_duration_seconds histogram)."""
    r = s.request("GET", "/metrics")
    want = {"hssgw_audit_records_total": 0.0,
            "hssgw_audit_sync_duration_seconds_count": 0.0,
            "hssgw_audit_sync_duration_seconds_sum": 0.0}
    for line in r.body.decode().splitlines():
        name, _, v = line.partition(" ")
        if name in want:
            want[name] = float(v)
    return want


def audit_delta(a, b):
    """What the durable audit did during a row: records, fdatasyncs, the
    mean batch and the mean fdatasync (the group commit's bound: at c
    connections at most c records share one fdatasync)."""
    rec = b["hssgw_audit_records_total"] - a["hssgw_audit_records_total"]
    n = (b["hssgw_audit_sync_duration_seconds_count"] -
         a["hssgw_audit_sync_duration_seconds_count"])
    t = (b["hssgw_audit_sync_duration_seconds_sum"] -
         a["hssgw_audit_sync_duration_seconds_sum"])
    return {"records": int(rec), "syncs": int(n),
            "batch": rec / n if n else None,
            "sync_ms": 1000.0 * t / n if n else None}


def perf_start(path):
    """perf record -g -a into path, running until perf_stop."""
    log = open(path + ".log", "wb")
    p = subprocess.Popen(["perf", "record", "-g", "-a", "-o", path],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    time.sleep(0.5)  # perf opens its events before the load starts
    return p, path, log


def perf_stop(rec, name, conns, pid):
    """Stops the record (SIGINT writes the file); returns the text to
    print: the first 60 lines of perf report, then hssgw's (pid) flat
    profile and the CPU by command, or why there is none."""
    p, path, log = rec
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=60)  # perf post-processes build ids before exiting
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()
    cmd = "perf report -i %s --stdio --sort comm,dso,sym | head -60" % (
        shlex.quote(path))
    head = "== perf: %s, %d connections (%s)\n$ %s\n" % (
        name, conns, path, cmd)
    if p.returncode not in (0, -signal.SIGINT) or not os.path.exists(path):
        with open(path + ".log", "rb") as f:
            return head + "perf record failed: %s" % f.read()[-500:].decode(
                "utf-8", "replace")
    out = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    # The call graphs fill those 60 lines with a few symbols, and -a
    # records every process on the machine (another job's hssgw has the
    # same comm): a flat view of this run's hssgw alone (its threads, as
    # a share of its own samples) after them.
    try:
        tids = ",".join(sorted(os.listdir("/proc/%d/task" % pid), key=int))
    except OSError:
        tids = str(pid)
    flat = "perf report -i %s --stdio --tid %s --percentage relative " \
        "--no-children -g none --sort dso,sym | grep -v '^#' | " \
        "grep -v '^$' | head -40" % (shlex.quote(path), tids)
    out2 = subprocess.run(flat, shell=True, capture_output=True, text=True)
    # Who had the CPUs: nginx, hssgw, wrk, the peers, other jobs.
    comm = "perf report -i %s --stdio --no-children -g none --sort comm " \
        "| grep -v '^#' | grep -v '^$' | head -12" % shlex.quote(path)
    out3 = subprocess.run(comm, shell=True, capture_output=True, text=True)
    return head + out.stdout + "$ %s\n%s$ %s\n%s" % (
        flat.replace(tids, "<hssgw's %d threads>" % (tids.count(",") + 1)),
        out2.stdout, comm, out3.stdout)


def versus(results, peer):
    """hssgw's rows over a peer's row at the same connections: the merged
    ratio, and each round's (the two rows ran in the same round, minutes
    apart at most: the fairest pairs a drifting machine allows)."""
    lines = []
    base = {r["conns"]: r for r in results
            if r["key"] == peer and r["valid"]}
    for r in results:
        b = base.get(r["conns"])
        if r["key"] not in HSSGW_ROWS or not r["valid"] or b is None:
            continue
        per = ["%.2f" % (x / y) for x, y in zip(r["rounds_rps"],
                                                b["rounds_rps"]) if y]
        p99 = ["%.1f" % x for x in r["rounds_p99_ms"]]
        lines.append("  %s / %s at %d: %.2f%s" % (
            r["key"], peer, r["conns"], r["rps"] / b["rps"],
            "" if len(per) < 2 else " (rounds: %s; p99 ms: %s)" % (
                ", ".join(per), ", ".join(p99))))
    return lines


def report(a, results, trails, perf):
    """The rows as text or JSON (--json), then the trails and perf."""
    if a.json:
        for r in results:
            out = {k: r[k] for k in (
                "key", "name", "conns", "want", "valid", "rps", "p50_ms",
                "p99_ms", "ratio", "requests", "unexpected", "statuses",
                "non2xx", "socket_errors", "socket_detail", "invalid")}
            out["audit"] = r.get("audit")
            out["rounds_rps"] = r.get("rounds_rps")
            out["rounds_p99_ms"] = r.get("rounds_p99_ms")
            if not r["valid"]:
                out["rps"] = out["p50_ms"] = out["p99_ms"] = None
            print(json.dumps({k: (round(v, 3) if isinstance(v, float)
                                  else v) for k, v in out.items()}))
    else:
        print("%-58s %5s %9s %8s %8s %6s" % ("row", "conns", "req/s",
                                             "p50 ms", "p99 ms", "ratio"))
        for r in results:
            if not r["valid"]:
                print("%-58s %5d  %s %s" % (r["name"], r["conns"],
                                            r["invalid"], r["statuses"]))
                continue
            print("%-58s %5d %9.0f %8.2f %8.2f %6s" % (
                r["name"], r["conns"], r["rps"], r["p50_ms"], r["p99_ms"],
                "-" if r["ratio"] is None else "%.2f" % r["ratio"]))
        for r in results:
            au = r.get("audit")
            if au and au["syncs"]:
                print("  audit during %s at %d: %d records in %d fdatasyncs "
                      "(%.1f a batch), %.2f ms a fdatasync" % (
                          r["key"], r["conns"], au["records"], au["syncs"],
                          au["batch"], au["sync_ms"]))
        for line in versus(results, "haproxy"):
            print(line)
        print("(%s s per row%s, wrk -t2 --timeout %ds, every answer's "
              "status checked; RS256 tokens, hssgw threads: %s, "
              "jwt.cache_entries: %s, durable audit on; ratio: req/s over "
              "the ceiling's at the same connections)" % (
                  a.seconds, "" if a.rounds == 1 else
                  " and round, %d rounds taking turns" % a.rounds,
                  WRK_TIMEOUT_S, a.threads or "default",
                  "default" if a.jwt_cache is None else a.jwt_cache))
    for t in trails:
        print(t, file=sys.stderr if a.json else sys.stdout)
    for p in perf:
        print(p, file=sys.stderr if a.json else sys.stdout)


def ship_rows(s, a, rows, results):
    """The status and denied rows again (at the first connection count)
    while hssgw audit ship sends the trail to a local rsyslog + imrelp
    (deploy/rsyslog/, sync on); returns how far behind the shipper was at
    the end and how long it took to catch up."""
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
        for row in (r for r in rows if r.key in ("poll", "denied")):
            script = lua(row.method, row.body, row.headers, row.want,
                         s.path("bench"))
            r = wrk(url(row.port, row.path), script, a.seconds,
                    a.connections[0])
            r.update(key=row.key + "+ship", name=row.name + " + ship",
                     want=row.want, conns=a.connections[0])
            results.append(judge(r))
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


def add_haproxy_row(s, tok, static_body):
    """Starts HAProxy and its front, and checks it refuses what it must:
    no token, a bad signature, a key it does not trust, another alg, the
    wrong audience and an expired token (401), a group no policy allows
    (403); and that an allowed export reaches the static server with the
    X-Auth-Token set and comes back with its body.  Returns the port."""
    body = json.dumps(BODY)
    jhdr = {"Content-Type": "application/json"}

    def bearer(t):
        return dict(jhdr, Authorization="Bearer " + t)

    now = int(time.time())
    claims = {"iss": st.ISSUER, "aud": st.AUDIENCE, "sub": "dev-alice",
              "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600,
              "groups": [st.ALLOWED_GROUP]}
    port = s.add_haproxy(lambda p: s.request("POST", st.EXPORT_PATH, body,
                                             bearer(tok), port=p))
    refused = [
        ("no token", 401, jhdr),
        ("bad signature", 401, bearer(bad_signature(tok))),
        ("untrusted key", 401, bearer(s.mint(key="other-rs256.pem"))),
        ("HS256", 401, bearer(s.mint(alg="HS256"))),
        ("wrong audience", 401, bearer(s.mint(aud="other"))),
        ("expired", 401, bearer(rs256_token(
            s.path("keys", "idp-rs256.pem"), claims))),
        ("group not allowed", 403, bearer(s.mint(groups=("nobody",)))),
        # A control for the expired token's signer: the same claims, alive.
        ("alive", 200, bearer(rs256_token(s.path("keys", "idp-rs256.pem"),
                                          dict(claims, exp=now + 3600)))),
    ]
    for what, want, hdr in refused:
        r = s.request("POST", st.EXPORT_PATH, body, hdr, port=port)
        if r.status != want:
            raise st.StackError("haproxy, %s: want %d, got %r" % (
                what, want, r))
    r = s.request("POST", st.EXPORT_PATH, body, bearer(tok), port=port)
    if r.body != static_body or \
            r.header("X-Bench-Saw-Token") != s.haproxy_token:
        raise st.StackError("haproxy: not the static answer: %r %r" % (
            r, r.headers))
    return port


def add_node_rows(s, a, tok):
    """Starts the Node gateways (one with the token cache, one without),
    returns their rows, having checked each refuses what hssgw refuses: a
    bad signature and no token (401), a group no policy allows (403)."""
    jhdr = {"Content-Type": "application/json"}
    body = json.dumps(BODY)
    ok = dict(jhdr, Authorization="Bearer " + tok)
    refused = [
        (401, dict(jhdr, Authorization="Bearer " + bad_signature(tok))),
        (401, jhdr),
        (403, dict(jhdr, Authorization="Bearer " +
                   s.mint(ttl=7200, groups=("nobody",)))),
    ]
    gateways = [g for g in (
        ("node-cache", a.node_cache, "node: export, token cache (200)"),
        ("node-nocache", 0, "node: export, no token cache (200)"))
        if g[0] in a.keys]
    rows = []
    for name, cache, row in gateways:
        port = s.add_node(name, cache, lambda p: s.request(
            "POST", st.EXPORT_PATH, body, ok, port=p))
        for want, hdr in refused:
            r = s.request("POST", st.EXPORT_PATH, body, hdr, port=port)
            if r.status != want or r.json().get("error_code") is None:
                raise st.StackError("%s: want %d, got %r" % (name, want, r))
        rows.append(Row(name, row, 200, port, st.EXPORT_PATH, "POST", body,
                        ok))
    return rows


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
    """Sends a.soak status polls in 10 s wrk runs (at the first connection
    count); RSS after the warm-up (the first WARMUP runs: 32 threads take
    about 20 s to bring their malloc arenas to size) and at the end, and
    after every run."""
    url_ = url(row.port, row.path)
    script = lua(row.method, row.body, row.headers, row.want,
                 s.path("bench"))
    chunk = min(10, a.seconds)
    conns = a.connections[0]
    sent, samples = 0, []
    for _ in range(WARMUP):
        sent += wrk(url_, script, chunk, conns)["requests"]
        samples.append(s.rss_kb())
    start_rss = samples[-1]
    while sent < a.soak:
        r = wrk(url_, script, chunk, conns)
        sent += r["requests"]
        samples.append(s.rss_kb())
    end_rss = samples[-1]
    out = {"name": "soak: " + row.name, "requests": sent,
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
