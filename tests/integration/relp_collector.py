"""The collector side for the shipping tests and bench/ship.py: a real
rsyslog with imrelp run from deploy/rsyslog/hssgw-collector.conf (rendered
with a loopback port and directories under a state dir, in the
foreground, as a child of the caller), a fake RELP server whose answers
can be hostile, the checks a collected trail must pass, and the shipper
(hssgw audit ship) as a child process with its config section.  Python 3
stdlib only."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
SEQ = re.compile(rb'^\{"v":\d+,"seq":(\d+),')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    """True once 127.0.0.1:PORT accepts.  The probe connects and closes
    without a word, which a TLS imrelp logs as "TLS handshake failed
    [gnutls error -110 ...]": that line is the probe's, not a shipper's."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class Collector:
    """rsyslogd -n -f <rendered conf> -i <pid file> on 127.0.0.1:port."""

    def __init__(self, srcdir, state, port=None, sync=True, tls=None):
        self.srcdir, self.state = srcdir, state
        self.port = port or free_port()
        self.dir = os.path.join(state, "collected")
        self.spool = os.path.join(state, "rsyslog-spool")
        self.conf = os.path.join(state, "hssgw-collector.conf")
        self.pid = os.path.join(state, "rsyslog.pid")
        self.log = os.path.join(state, "rsyslog.log")
        self.proc = None
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(self.spool, exist_ok=True)
        with open(os.path.join(srcdir, "deploy", "rsyslog",
                               "hssgw-collector.conf")) as f:
            text = f.read()
        text = text.replace("/var/log/hssgw-collector", self.dir)
        text = text.replace("/var/spool/hssgw-collector", self.spool)
        # tls: {"ca", "cert", "key", "peer"}: the commented TLS input of
        # the shipped file, with client certificates checked by name.
        extra = ""
        if tls is not None:
            extra = (' tls="on" tls.caCert="%s" tls.myCert="%s" '
                     'tls.myPrivKey="%s" tls.authMode="name" '
                     'tls.permittedPeer=["%s"]' % (
                         tls["ca"], tls["cert"], tls["key"], tls["peer"]))
        text = text.replace('\ninput(type="imrelp" port="2514"',
                            '\ninput(type="imrelp" port="%d" '
                            'address="127.0.0.1"%s' % (self.port, extra))
        if not sync:
            text = text.replace('sync="on"', 'sync="off"')
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self):
        if os.path.exists(self.pid):
            os.unlink(self.pid)
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", self.conf, "-i", self.pid],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        out.close()
        if not wait_port(self.port):
            raise RuntimeError("rsyslog not listening:\n" + self.log_tail())
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def log_tail(self, n=3000):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def file(self, instance):
        return os.path.join(self.dir, instance + ".jsonl")

    def lines(self, instance):
        try:
            with open(self.file(instance), "rb") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


def trail_lines(audit_file):
    """Every record line of a trail, rotated files included, in seq
    order (the rotated files' names sort by time; the live file last)."""
    d, base = os.path.split(audit_file)
    names = sorted(n for n in os.listdir(d)
                   if n.startswith(base + ".") and not n.endswith(
                       (".checkpoint", ".tmp")))
    out = []
    for n in names + [base]:
        try:
            with open(os.path.join(d, n), "rb") as f:
                out += [l for l in f.read().splitlines() if SEQ.match(l)]
        except FileNotFoundError:
            pass
    out.sort(key=lambda l: int(SEQ.match(l).group(1)))
    return out


def check_collected(collected, trail):
    """None when COLLECTED holds every line of TRAIL byte for byte, in
    order (a line never comes before one with a lower seq that was not
    yet sent), duplicates only identical; else what is wrong."""
    by_seq = {int(SEQ.match(l).group(1)): l for l in trail}
    seen = {}
    top = 0
    first = min(by_seq) if by_seq else 1
    for i, l in enumerate(collected):
        m = SEQ.match(l)
        if m is None:
            return "collected line %d is not a record: %r" % (i + 1, l[:80])
        s = int(m.group(1))
        if s in seen and seen[s] != l:
            return "seq %d collected twice with different bytes" % s
        if s not in by_seq or by_seq[s] != l:
            return "seq %d collected is not the trail's record" % s
        if s > top + 1 and top > 0:
            return "seq %d collected right after seq %d: skipped" % (s, top)
        if top == 0 and s != first:
            return "collection starts at seq %d, trail at %d" % (s, first)
        seen[s] = l
        top = max(top, s)
    missing = sorted(set(by_seq) - set(seen))
    if missing:
        return "%d records never collected, first seq %d" % (
            len(missing), missing[0])
    return None


def first_occurrences(collected):
    seen, out = set(), []
    for l in collected:
        s = SEQ.match(l).group(1)
        if s not in seen:
            seen.add(s)
            out.append(l)
    return out


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def read_metrics(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                k, v = line.split()
                out[k] = float(v)
    except FileNotFoundError:
        pass
    return out


def ship_section(state, port, name="", **extra):
    s = {"relp": "127.0.0.1:%d" % port,
         "cursor_file": os.path.join(state, "ship%s.cursor" % name),
         "metrics_file": os.path.join(state, "ship%s.prom" % name),
         "batch_size": 64, "timeout_s": 2}
    s.update(extra)
    return s


class Shipper:
    """hssgw audit ship --config FILE as a child process."""

    def __init__(self, hssgw, config, log):
        self.hssgw, self.config, self.log = hssgw, config, log
        self.proc = None

    def start(self):
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.hssgw, "audit", "ship", "--config", self.config],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        out.close()
        return self

    def kill(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)
        self.proc = None

    def tail(self, n=3000):
        with open(self.log, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")


def with_ship(config_path, section, out_path):
    with open(config_path) as f:
        c = json.load(f)
    c["audit"] = dict(c["audit"], ship=section)
    with open(out_path, "w") as f:
        json.dump(c, f, indent=1)
    return out_path


def wait_for(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class FakeRelp:
    """A RELP server (librelp doc/relp.md framing: TXNR SP COMMAND SP
    DATALEN [SP DATA] LF) that answers "open" properly and then, by
    MODE: "error" answers every syslog frame 500; "silent" never answers
    one; "partial" acknowledges the first ACK_FIRST frames of a session
    and then drops the connection.  Counts the syslog frames it
    received."""

    def __init__(self, mode, ack_first=3):
        self.mode, self.ack_first = mode, ack_first
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.frames = 0
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._session, args=(c,),
                             daemon=True).start()

    @staticmethod
    def _frames(c):
        buf = b""
        while True:
            m = re.match(rb"(\d+) ([a-z]+) (\d+)", buf)
            if m is not None:
                n = int(m.group(3))
                start = m.end() + (1 if n > 0 else 0)
                if len(buf) >= start + n + 1:
                    yield int(m.group(1)), m.group(2), buf[start:start + n]
                    buf = buf[start + n + 1:]
                    continue
            d = c.recv(65536)
            if not d:
                return
            buf += d

    @staticmethod
    def _rsp(c, txnr, text):
        c.sendall(b"%d rsp %d %s\n" % (txnr, len(text), text))

    def _session(self, c):
        acked = 0
        try:
            for txnr, cmd, _data in self._frames(c):
                if cmd == b"open":
                    self._rsp(c, txnr, b"200 OK\nrelp_version=0\n"
                              b"relp_software=fake\ncommands=syslog")
                elif cmd == b"syslog":
                    self.frames += 1
                    if self.mode == "error":
                        self._rsp(c, txnr, b"500 not today")
                    elif self.mode == "partial":
                        if acked >= self.ack_first:
                            c.close()
                            return
                        acked += 1
                        self._rsp(c, txnr, b"200 OK")
                elif cmd == b"close":
                    if self.mode != "silent":
                        self._rsp(c, txnr, b"")
        except OSError:
            pass
