"""A test identity provider: OIDC discovery and a JWK Set over TLS.

IdP(cert, key, issuer_path).start() serves, on a loopback port chosen at
run time, /<path>/.well-known/openid-configuration and /<path>/jwks.
Tests switch what /jwks answers (mode): "ok" (the published keys),
"down" (503), "slow" (the keys after `delay` seconds), "garbage",
"body" (any bytes, for hostile sets); they rotate keys by setting
`published`, and read `fetches` (JWKS GETs so far).  Keys and tokens are
made with python3-jwcrypto, an independent JOSE implementation, so hssgw
is checked against someone else's encoding.
"""

import http.server
import json
import socketserver
import ssl
import threading
import time

from jwcrypto import jwk, jwt

# The algorithms hssgw verifies, and the key each needs.
ALGS = {
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "PS256": ("RSA", None), "PS384": ("RSA", None), "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"), "EdDSA": ("OKP", "Ed25519"),
}


def new_key(kty, crv=None, kid=None, size=2048):
    """A fresh private JWK with kid."""
    if kty == "RSA":
        return jwk.JWK.generate(kty="RSA", size=size, kid=kid)
    return jwk.JWK.generate(kty=kty, crv=crv, kid=kid)


def public(key, **extra):
    """The public half of key as a dict, with extra members."""
    d = json.loads(key.export_public())
    d.update(extra)
    return d


def kid_of(key):
    """The kid of a jwcrypto key (key_id is deprecated in 1.x)."""
    return json.loads(key.export()).get("kid")


def token(key, alg, claims, kid=True, header=None):
    """A compact JWS signed by jwcrypto."""
    h = {"alg": alg, "typ": "JWT"}
    if kid:
        h["kid"] = kid_of(key)
    h.update(header or {})
    t = jwt.JWT(header=h, claims=claims)
    t.make_signed_token(key)
    return t.serialize()


class IdP:
    """One running test IdP (a thread); stop() shuts it down."""

    def __init__(self, cert, key, path="/realms/test"):
        self.cert, self.key, self.path = cert, key, path
        self.mode = "ok"
        self.published = []   # dicts (public JWKs)
        self.body = b""
        self.delay = 0.0
        self.cache_control = "max-age=600"
        self.fetches = 0
        self.discoveries = 0
        self.lock = threading.Lock()
        self.server = None
        self.port = None

    @property
    def issuer(self):
        return "https://127.0.0.1:%d%s" % (self.port, self.path)

    def set_keys(self, keys):
        """Publishes these JWKs (dicts) and serves them."""
        with self.lock:
            self.published = list(keys)
            self.mode = "ok"

    def serve(self, mode, body=b"", delay=0.0):
        with self.lock:
            self.mode, self.body, self.delay = mode, body, delay

    def count(self):
        with self.lock:
            return self.fetches

    def wait_fetches(self, n, timeout=10.0):
        """Waits until at least n JWKS fetches happened; the count."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.count() >= n:
                return self.count()
            time.sleep(0.05)
        raise AssertionError("IdP saw %d fetches, wanted %d" %
                             (self.count(), n))

    def start(self):
        idp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send(self, status, body, cc=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if cc:
                    self.send_header("Cache-Control", cc)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == idp.path + "/.well-known/openid-configuration":
                    with idp.lock:
                        idp.discoveries += 1
                    doc = {"issuer": idp.issuer,
                           "jwks_uri": idp.issuer + "/jwks",
                           "id_token_signing_alg_values_supported":
                               sorted(ALGS)}
                    return self.send(200, json.dumps(doc).encode())
                if self.path != idp.path + "/jwks":
                    return self.send(404, b"{}")
                with idp.lock:
                    idp.fetches += 1
                    mode, body, delay = idp.mode, idp.body, idp.delay
                    keys, cc = list(idp.published), idp.cache_control
                if mode == "down":
                    return self.send(503, b"{}")
                if mode == "garbage":
                    return self.send(200, b"<html>not json")
                if mode == "body":
                    return self.send(200, body, cc)
                if mode == "slow":
                    time.sleep(delay)
                self.send(200, json.dumps({"keys": keys}).encode(), cc)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.server.socket = ctx.wrap_socket(self.server.socket,
                                             server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
