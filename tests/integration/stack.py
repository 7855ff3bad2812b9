"""A throw-away hssgw stack for the integration tests.

Stack(bindir, srcdir).start() builds a clean temp state dir, picks free
loopback ports (bind to port 0), generates a TLS CA and server cert and the
JWT keys with the openssl CLI, writes every config (secrets mode 0600),
renders the nginx templates from nginx/*.conf.in, and starts hss-emulator,
hssgw and nginx.  stop() tears everything down and is safe to call twice or
after a failed start.  Python 3 stdlib only.

It never prints a secret: failures quote logs, and the injected upstream
token appears in no message this module builds.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

ISSUER = "https://idp.local.test"
AUDIENCE = "hssgw"
PROJECT_ALIAS = "demo"
PROJECT_ID = "0123456789abcdef0123456789abcdef"
REGION = "cn-north-4"
ALLOWED_GROUP = "hss-exporters"
EXPORT_PATH = "/v1/exports/image-baseline"

# The policy the tests run under (the shape of policies/demo.json): members
# of hss-exporters may export from the demo project, members of suspended
# may do nothing; everything else is denied by default.
DENY_GROUP = "suspended"
ALLOW_SID = "AllowExportersDemo"
DENY_SID = "DenySuspended"
DEMO_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": DENY_SID, "Effect": "Deny",
         "Principal": {"jwt:groups": DENY_GROUP},
         "Action": "*", "Resource": "*"},
        {"Sid": ALLOW_SID, "Effect": "Allow",
         "Principal": {"jwt:groups": ALLOWED_GROUP},
         "Action": "hss:ExportImageBaseline",
         "Resource": "hss:*:%s" % PROJECT_ALIAS},
    ],
}

TEMPLATES = ("nginx.conf", "hssgw.conf", "emulator.conf")
_PLACEHOLDER = re.compile(r"@[A-Z][A-Z0-9_]*@")


class StackError(Exception):
    """The stack could not be brought up; the message quotes the logs."""


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(template, values):
    """Substitutes @NAME@ placeholders; an unknown or leftover one is an
    error, so a template and its renderer cannot drift apart silently."""

    def sub(m):
        name = m.group(0)[1:-1]
        if name not in values:
            raise StackError("template placeholder %s has no value" % name)
        return str(values[name])

    return _PLACEHOLDER.sub(sub, template)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hs256_jwt(secret, header, claims):
    """A JWT signed with HMAC-SHA256 by Python itself, independent of
    hssgw's mint-token (used for the hand-crafted attack tokens)."""
    signing = (b64url(json.dumps(header, separators=(",", ":")).encode())
               + "." +
               b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = hmac.new(secret, signing.encode("ascii"), hashlib.sha256).digest()
    return signing + "." + b64url(sig)


def write_file(path, data, mode=0o644):
    """Creates path with mode set before any byte is written."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def run(argv, **kw):
    """Runs a command; raises StackError quoting stderr on failure."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=60, **kw)
    if p.returncode != 0:
        raise StackError("%s failed (%d): %s" % (
            os.path.basename(argv[0]), p.returncode,
            p.stderr.decode("utf-8", "replace")[-2000:]))
    return p.stdout.decode("utf-8")


class Response:
    """A finished HTTP exchange: status, headers (lowercase), raw body."""

    def __init__(self, status, header_list, body):
        self.status = status
        self.header_list = [(k.lower(), v) for k, v in header_list]
        self.headers = dict(self.header_list)
        self.body = body

    def count(self, name):
        """How many times a header was sent."""
        return sum(1 for k, _ in self.header_list if k == name.lower())

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class Stack:
    """One running nginx + hssgw + hss-emulator on loopback."""

    def __init__(self, bindir, srcdir, timeout_ms=1000, max_body_bytes=16384,
                 threads=4, rate=200, burst=400, instances=1,
                 config_extra=None):
        self.bindir = os.path.abspath(bindir)
        self.srcdir = os.path.abspath(srcdir)
        self.timeout_ms = timeout_ms
        self.max_body_bytes = max_body_bytes
        self.threads = threads
        self.rate, self.burst = rate, burst
        self.echo = None
        self.state = None
        self.procs = {}
        self.logs = {}
        self.upstream_token = None
        # nginx's allow list for /metrics (METRICS_ALLOW in the template)
        self.metrics_allow = "allow 127.0.0.1;"
        # Several hssgw instances behind one nginx upstream (issue #14):
        # hssgw-1.. with their own socket, config, audit file and name;
        # config_extra is merged into every instance's config.
        self.instances = instances
        self.config_extra = config_extra or {}

    # -- paths --------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.state, *parts)

    @property
    def hssgw(self):
        return os.path.join(self.bindir, "hssgw")

    @property
    def emulator(self):
        return os.path.join(self.bindir, "hss-emulator")

    # -- lifecycle ----------------------------------------------------
    def start(self):
        for b in (self.hssgw, self.emulator):
            if not os.access(b, os.X_OK):
                raise StackError("missing binary %s" % b)
        if shutil.which("nginx") is None and not os.path.exists(
                "/usr/sbin/nginx"):
            raise StackError("nginx not installed")
        # Short prefix: unix socket paths are capped at 108 bytes.
        self.state = tempfile.mkdtemp(prefix="hssgw-it-")
        try:
            self._layout()
            self._tls()
            self._keys()
            self._configs()
            self._start_emulator()
            self._start_hssgw()
            self._start_nginx()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def start_front(self):
        """nginx alone with fcgi_echo standing in for hssgw (no emulator):
        pins what the nginx template hands to hssgw."""
        from fcgi_echo import EchoServer
        self.state = tempfile.mkdtemp(prefix="hssgw-it-")
        try:
            self._layout()
            self._tls()
            self._configs()
            self.echo = EchoServer(self.gw_sock)
            self._start_nginx()
            deadline = time.monotonic() + 20
            while True:
                try:
                    if self.request("GET", "/healthz").status == 200:
                        break
                except (OSError, http.client.HTTPException):
                    pass
                if time.monotonic() > deadline:
                    raise StackError("nginx not ready\n" +
                                     self.log_tail("nginx"))
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop_backend(self):
        """Takes hssgw (or the echo stand-in) away, leaving nginx up."""
        if self.echo is not None:
            self.echo.close()
            self.echo = None
        for name in [n for n in self.procs if n.startswith("hssgw")]:
            self._terminate(self.procs.pop(name))

    def stop(self):
        """Stops what this stack started, then removes the state dir."""
        self.stop_backend()
        nginx = self.procs.pop("nginx", None)
        if nginx is not None:
            self._nginx_quit(nginx)
        for name in ("hssgw", "emulator"):
            p = self.procs.pop(name, None)
            if p is not None:
                self._terminate(p)
        for f in self.logs.values():
            f.close()
        self.logs = {}
        if self.state is not None and os.environ.get("HSSGW_IT_KEEP") is None:
            shutil.rmtree(self.state, ignore_errors=True)
            self.state = None

    @staticmethod
    def _terminate(p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def _nginx_quit(self, p):
        # The master stays our child (daemon off), so its pid is ours.
        if p.poll() is None:
            p.send_signal(signal.SIGQUIT)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    # -- setup steps --------------------------------------------------
    def _layout(self):
        for d in ("logs", "tmp", "nginx", "tls", "keys", "secrets",
                  "policies", "audit"):
            os.makedirs(self.path(d), mode=0o700, exist_ok=True)
        os.chmod(self.path("secrets"), 0o700)

    def _tls(self):
        """A throw-away CA and a server cert for 127.0.0.1 and localhost;
        both nginx servers use it and hssgw trusts only this CA."""
        tls = self.path("tls")
        ca_key, ca = os.path.join(tls, "ca.key"), os.path.join(tls, "ca.pem")
        key = os.path.join(tls, "server.key")
        csr = os.path.join(tls, "server.csr")
        crt = os.path.join(tls, "server.pem")
        ext = os.path.join(tls, "server.ext")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key,
             "-out", ca, "-days", "2", "-subj", "/CN=hssgw-it-ca"])
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
             "-out", csr, "-subj", "/CN=127.0.0.1"])
        write_file(ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "basicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey",
             ca_key, "-CAcreateserial", "-out", crt, "-days", "2",
             "-extfile", ext])
        for f in (ca_key, key):
            os.chmod(f, 0o600)
        self.ca = ca

    def _keys(self):
        """IdP signing keys (private halves stay in the state dir, 0600) and
        a second RS256 key the gateway does not know, for forgeries."""
        k = self.path("keys")
        for name, algo in (("idp-rs256", ["-algorithm", "RSA", "-pkeyopt",
                                          "rsa_keygen_bits:2048"]),
                           ("other-rs256", ["-algorithm", "RSA", "-pkeyopt",
                                            "rsa_keygen_bits:2048"]),
                           ("idp-es256", ["-algorithm", "EC", "-pkeyopt",
                                          "ec_paramgen_curve:P-256"])):
            priv = os.path.join(k, name + ".pem")
            run(["openssl", "genpkey"] + algo + ["-out", priv])
            os.chmod(priv, 0o600)
            run(["openssl", "pkey", "-in", priv, "-pubout", "-out",
                 os.path.join(k, name + ".pub.pem")])
        # The HS256 secret is the file's exact bytes (64 hex characters, no
        # newline), for hssgw and for hs256_jwt() alike.
        self.hs_secret = secrets.token_hex(32).encode("ascii")
        write_file(os.path.join(k, "idp-hs256.secret"), self.hs_secret, 0o600)

    def _configs(self):
        self.gw_port = free_port()
        self.emu_port = free_port()
        while self.emu_port == self.gw_port:
            self.emu_port = free_port()
        self.gw_sock = self.path("hssgw.sock")
        self.emu_sock = self.path("emulator.sock")
        self.upstream_token = "MIIT" + secrets.token_urlsafe(48)
        write_file(self.path("secrets", "demo.token"), self.upstream_token,
                   0o600)
        write_file(self.path("emulator.json"), json.dumps({
            "projects": [{"project_id": PROJECT_ID,
                          "tokens": [self.upstream_token]}]}), 0o600)
        write_file(self.path("policies", "demo.json"),
                   json.dumps(DEMO_POLICY, indent=1))
        self.config = {
            "listen": "unix:" + self.gw_sock,
            "threads": self.threads,
            "max_body_bytes": self.max_body_bytes,
            "jwt": {
                "leeway_seconds": 60,
                "max_token_bytes": 8192,
                "issuers": [{
                    "issuer": ISSUER,
                    "audiences": [AUDIENCE],
                    "keys": [
                        {"kid": "dev-rs256", "alg": "RS256",
                         "file": "keys/idp-rs256.pub.pem"},
                        {"kid": "dev-es256", "alg": "ES256",
                         "file": "keys/idp-es256.pub.pem"},
                        {"kid": "dev-hs256", "alg": "HS256",
                         "file": "keys/idp-hs256.secret"},
                    ]}]},
            "policies_dir": self.path("policies"),
            "credentials": [{"name": "demo", "type": "token_file",
                             "file": "secrets/demo.token"}],
            "projects": [{
                "alias": PROJECT_ALIAS, "project_id": PROJECT_ID,
                "region": REGION,
                "endpoint": "https://127.0.0.1:%d" % self.emu_port,
                "enterprise_project_id": "0", "credentials": "demo"}],
            "upstream": {"connect_timeout_ms": 1000,
                         "timeout_ms": self.timeout_ms,
                         "ca_file": "tls/ca.pem",
                         "max_response_bytes": 1048576},
            "audit": {"file": "audit/audit.jsonl"},
            "default_export_size": 1000,
            # The suite exports far more than HSS's 5 a minute; the
            # budget has its own tests (test_tasks.py).
            "tasks": {"budget_per_minute": 600},
            # Suites fire more concurrent exports than threads; the
            # reserve (503 HSSGW.0305) has its own tests
            # (test_hardening.py).
            "reserve_threads": 0,
        }
        self.config.update(self.config_extra)
        self.config_path = self.path("hssgw.json")
        write_file(self.config_path, json.dumps(self.config, indent=1))
        self.write_instance_configs()
        user = ""
        if os.geteuid() == 0:
            user = "user root root;"
        values = {
            "STATE": self.state,
            "USER_DIRECTIVE": user,
            "GW_PORT": self.gw_port,
            "EMU_PORT": self.emu_port,
            "HSSGW_SOCK": self.gw_sock,
            "HSSGW_SERVERS": " ".join("server unix:%s;" % g
                                      for g in self.gw_socks),
            "EMU_SOCK": self.emu_sock,
            "TLS_CERT": self.path("tls", "server.pem"),
            "TLS_KEY": self.path("tls", "server.key"),
            # The default is high enough that the suite never trips it;
            # the rate-limit test builds a stack with a low one.
            "GW_RATE": self.rate,
            "GW_BURST": self.burst,
            "FCGI_READ_TIMEOUT": "%ds" % (self.timeout_ms // 1000 + 10),
            "METRICS_ALLOW": self.metrics_allow,
        }
        self.render_nginx(values)

    def render_nginx(self, values):
        """Renders every nginx template into the state dir."""
        for t in TEMPLATES:
            with open(os.path.join(self.srcdir, "nginx", t + ".in")) as f:
                text = render(f.read(), values)
            dst = (self.path("nginx.conf") if t == "nginx.conf"
                   else self.path("nginx", t))
            write_file(dst, text)
        for d in ("body", "fastcgi", "proxy", "scgi", "uwsgi"):
            os.makedirs(self.path("tmp", d), exist_ok=True)

    def _spawn(self, name, argv):
        out = open(self.path("logs", name + ".log"), "ab")
        self.logs[name] = out
        self.procs[name] = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            cwd=self.state)

    def _start_emulator(self):
        self.emu_log = self.path("emulator.jsonl")
        self._spawn("emulator", [self.emulator, "--config",
                                 self.path("emulator.json"), "--log",
                                 self.emu_log, "--listen",
                                 "unix:" + self.emu_sock, "--threads", "4"])

    def write_instance_configs(self):
        """With several instances, hssgw-i.json per instance from
        self.config: its own socket, audit file and name."""
        self.gw_socks = [self.gw_sock]
        if self.instances < 2:
            return
        self.gw_socks = []
        for i in range(1, self.instances + 1):
            c = dict(self.config)
            c["listen"] = "unix:" + self.path("hssgw-%d.sock" % i)
            c["audit"] = {"file": "audit/audit-%d.jsonl" % i}
            c["instance"] = "gw-%d" % i
            write_file(self.instance_config(i), json.dumps(c, indent=1))
            self.gw_socks.append(self.path("hssgw-%d.sock" % i))

    def instance_config(self, i):
        return self.path("hssgw-%d.json" % i)

    def _start_hssgw(self):
        if self.instances > 1:
            for i in range(1, self.instances + 1):
                self.start_instance(i)
            return
        out = run([self.hssgw, "check-config", "--config", self.config_path])
        del out
        self._spawn("hssgw", [self.hssgw, "serve", "--config",
                              self.config_path])

    def start_instance(self, i):
        """Starts instance i of several (hssgw-i)."""
        run([self.hssgw, "check-config", "--config", self.instance_config(i)])
        self._spawn("hssgw-%d" % i, [self.hssgw, "serve", "--config",
                                     self.instance_config(i)])

    def stop_instance(self, i):
        """Stops instance i (SIGTERM) and waits for it."""
        p = self.procs.pop("hssgw-%d" % i, None)
        if p is not None:
            self._terminate(p)
        f = self.logs.pop("hssgw-%d" % i, None)
        if f is not None:
            f.close()

    def _start_nginx(self):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = self.path("nginx.conf")
        err = self.path("logs", "error.log")
        run([nginx, "-t", "-p", self.state, "-c", conf, "-e", err])
        self._spawn("nginx", [nginx, "-p", self.state, "-c", conf, "-e", err,
                              "-g", "daemon off;"])

    def _wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise StackError("%s exited with %s:\n%s" % (
                        name, p.returncode, self.log_tail(name)))
            try:
                if (all(os.path.exists(g) for g in self.gw_socks) and
                        os.path.exists(self.emu_sock)):
                    r = self.request("GET", "/healthz")
                    e = self.emulator_control("reset", {})
                    if r.status == 200 and e.status // 100 == 2:
                        return
                    last = "healthz %r, emulator reset %r" % (r, e)
            except (OSError, http.client.HTTPException) as ex:
                last = repr(ex)
            time.sleep(0.1)
        raise StackError("stack not ready: %s\n%s" % (last, "\n".join(
            self.log_tail(n) for n in ("hssgw", "emulator", "nginx"))))

    def log_tail(self, name, n=4000):
        paths = {"nginx": self.path("logs", "error.log")}
        p = paths.get(name, self.path("logs", name + ".log"))
        try:
            with open(p, "rb") as f:
                data = f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return "[%s: no log]" % name
        return "[%s]\n%s" % (name, data)

    # -- clients ------------------------------------------------------
    def _conn(self, port):
        ctx = ssl.create_default_context(cafile=self.ca)
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=30,
                                           context=ctx)

    def request(self, method, path, body=None, headers=None,
                port=None):
        """One HTTPS request to the gateway (or port); a fresh connection
        each time so tests do not depend on keep-alive."""
        c = self._conn(port or self.gw_port)
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            hdrs = dict(headers or {})
            if body is not None:
                if isinstance(body, str):
                    body = body.encode("utf-8")
                hdrs.setdefault("Content-Length", str(len(body)))
            for k, v in hdrs.items():
                c.putheader(k, v)
            c.endheaders(body)
            r = c.getresponse()
            data = r.read()
            return Response(r.status, r.getheaders(), data)
        finally:
            c.close()

    def export(self, body, token=None, content_type="application/json",
               headers=None):
        """POST /v1/exports/image-baseline with an optional bearer token;
        dict bodies are sent as JSON."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        h = {}
        if content_type is not None:
            h["Content-Type"] = content_type
        if token is not None:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        return self.request("POST", EXPORT_PATH, body, h)

    def emulator_control(self, what, doc):
        """POST /_emulator/<what> on the emulator's nginx front."""
        return self.request("POST", "/_emulator/" + what, json.dumps(doc),
                            {"Content-Type": "application/json"},
                            port=self.emu_port)

    # -- tokens -------------------------------------------------------
    def mint(self, sub="dev-alice", groups=(ALLOWED_GROUP,), alg="RS256",
             key=None, kid=None, ttl=300, claims=None, iss=ISSUER,
             aud=AUDIENCE):
        """A JWT from hssgw mint-token, by default one the policy allows."""
        default = {"RS256": ("idp-rs256.pem", "dev-rs256"),
                   "ES256": ("idp-es256.pem", "dev-es256"),
                   "HS256": ("idp-hs256.secret", "dev-hs256")}[alg]
        argv = [self.hssgw, "mint-token",
                "--key", self.path("keys", key or default[0]),
                "--alg", alg, "--kid", kid or default[1],
                "--iss", iss, "--aud", aud, "--sub", sub,
                "--ttl", str(ttl)]
        if groups:
            argv += ["--groups", ",".join(groups)]
        if claims is not None:
            argv += ["--claims", json.dumps(claims)]
        return run(argv).strip()

    def hs_token(self, header=None, **claims):
        """An HS256 JWT made by Python with the gateway's HS256 secret."""
        now = int(time.time())
        c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "dev-alice",
             "groups": [ALLOWED_GROUP], "iat": now, "nbf": now,
             "exp": now + 300}
        c.update(claims)
        h = {"alg": "HS256", "typ": "JWT", "kid": "dev-hs256"}
        h.update(header or {})
        return hs256_jwt(self.hs_secret, h, c)

    # -- observations -------------------------------------------------
    @staticmethod
    def _lines(path):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        return [json.loads(l) for l in data.decode("utf-8").splitlines()
                if l.strip()]

    def audit_lines(self):
        return self._lines(self.path("audit", "audit.jsonl"))

    def emulator_lines(self):
        return self._lines(self.emu_log)

    def read_raw(self, *parts):
        with open(self.path(*parts), "rb") as f:
            return f.read()
