"""A minimal FastCGI responder that answers every request with the params
and body it received, as JSON.  It stands in for hssgw behind the real
nginx template so the tests can see exactly what nginx hands over: the
parameter list is a security boundary (client address, request id).

Only what nginx sends is implemented: FCGI_BEGIN_REQUEST, FCGI_PARAMS,
FCGI_STDIN, one request per connection (fastcgi_keep_conn off).
"""

import json
import os
import socket
import struct
import threading

BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 3, 4, 5, 6


def _read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed")
        buf += chunk
    return buf


def _record(conn):
    ver, rtype, rid, clen, plen, _ = struct.unpack(
        "!BBHHBB", _read_exact(conn, 8))
    content = _read_exact(conn, clen)
    _read_exact(conn, plen)
    return rtype, rid, content


def _length(data, i):
    if data[i] & 0x80:
        return struct.unpack("!I", data[i:i + 4])[0] & 0x7FFFFFFF, i + 4
    return data[i], i + 1


def parse_params(data):
    """Decodes FastCGI name-value pairs into a dict of str -> str."""
    out, i = {}, 0
    while i < len(data):
        nlen, i = _length(data, i)
        vlen, i = _length(data, i)
        name = data[i:i + nlen].decode("latin-1")
        i += nlen
        out[name] = data[i:i + vlen].decode("latin-1")
        i += vlen
    return out


def _send(conn, rtype, rid, content):
    conn.sendall(struct.pack("!BBHHBB", 1, rtype, rid, len(content), 0, 0) +
                 content)


class EchoServer:
    """Listens on a unix socket; each request's params are also kept in
    .seen for the test to inspect."""

    def __init__(self, path):
        self.path = path
        self.seen = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o600)
        self.sock.listen(16)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def close(self):
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self._serve(conn)
                except (EOFError, OSError):
                    pass

    def _serve(self, conn):
        params, body, rid = b"", b"", 1
        params_done = stdin_done = False
        while not (params_done and stdin_done):
            rtype, rid, content = _record(conn)
            if rtype == PARAMS:
                params_done = not content
                params += content
            elif rtype == STDIN:
                stdin_done = not content
                body += content
        p = parse_params(params)
        self.seen.append(p)
        doc = json.dumps({"params": p,
                          "body": body.decode("utf-8", "replace")}).encode()
        out = (b"Status: 200 OK\r\nContent-Type: application/json\r\n\r\n" +
               doc)
        for i in range(0, len(out), 65535):
            _send(conn, STDOUT, rid, out[i:i + 65535])
        _send(conn, STDOUT, rid, b"")
        _send(conn, END_REQUEST, rid, struct.pack("!IB3x", 0, 0))
